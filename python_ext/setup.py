"""pip route for the CPython front end: `pip install ./python_ext` (run from
a checkout: the core's sources in ../common are compiled into the same
extension). The CMake build is the primary one; this builds the same
sources with the same definitions for the interpreter running pip."""
import glob
import os
import sysconfig

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
COMMON = os.path.join(HERE, os.pardir, "common")

if sysconfig.get_config_var("Py_GIL_DISABLED"):
    raise SystemExit("contprof: free-threaded CPython (Py_GIL_DISABLED) is not supported")


def rel(paths):
    return sorted(os.path.relpath(p, HERE) for p in paths)


ext = Extension(
    "contprof._contprof",
    sources=rel(glob.glob(os.path.join(HERE, "src", "*.c")) + glob.glob(os.path.join(COMMON, "src", "*.c"))),
    include_dirs=[os.path.join(HERE, "src"), os.path.join(COMMON, "include"), os.path.join(COMMON, "src")],
    define_macros=[("_GNU_SOURCE", None), ("CONTPROF_VERSION", '"0.1.0"')],
    extra_compile_args=["-std=gnu11", "-fvisibility=hidden"],
    libraries=["z", "curl", "m"],
)

setup(
    name="contprof",
    version="0.1.0",
    description="Always-on CPU, wall, allocation and heap profiler for CPython",
    packages=["contprof"],
    ext_modules=[ext],
    python_requires=">=3.8,<3.14",
)
