"""contprof's in-tree PEP 517 build backend: `pip install <checkout>`.

Why in-tree: pip builds in an isolated environment and would have to
download setuptools for it, which an offline machine (or a 3.12+ venv, which
has no setuptools) cannot do. This backend needs nothing but the standard
library, CMake and a C compiler: it runs the project's one build (CMake) for
the interpreter that runs pip, then packs the importable package that the
build assembles (build/python/X.Y/contprof) into a wheel with dist-info, so
pip can list and uninstall it. See docs/DECISIONS.md.

Hooks: build_wheel, build_sdist, get_requires_for_build_{wheel,sdist},
prepare_metadata_for_build_wheel. Environment knobs: CMAKE (the cmake
binary), CONTPROF_BUILD_JOBS (parallel jobs, default: CPU count),
CONTPROF_BUILD_VERBOSE=1 (show the build's output).
"""
import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = "contprof"
SUMMARY = "Always-on CPU, wall, allocation and heap profiler for CPython (pprof output)"
# What an sdist carries: everything the Python-only CMake build reads.
SDIST_PATHS = ["pyproject.toml", "CMakeLists.txt", "README.md", "tools/pep517", "common", "python_ext"]


def _version():
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"project\(\s*contprof\s+VERSION\s+([0-9.]+)", f.read())
    if not m:
        raise RuntimeError("contprof: cannot read the version from CMakeLists.txt")
    return m.group(1)


def _tag():
    impl = "cp%d%d" % sys.version_info[:2]
    plat = re.sub(r"[-.]", "_", sysconfig.get_platform())
    return "%s-%s-%s" % (impl, impl, plat)


def _metadata(version):
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\n"
            "Requires-Python: >=3.8,<3.14\nLicense: see the repository\n" % (NAME, version, SUMMARY))


def _run(cmd, cwd=None):
    verbose = os.environ.get("CONTPROF_BUILD_VERBOSE") == "1"
    r = subprocess.run(cmd, cwd=cwd, stdout=None if verbose else subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True)
    if r.returncode != 0:
        if r.stdout:
            sys.stderr.write(r.stdout[-8000:])
        raise RuntimeError("contprof: build step failed (%d): %s" % (r.returncode, " ".join(cmd)))


def _cmake_build(build_dir):
    """Configure and build the extension for this interpreter; returns the
    package directory the build assembled."""
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        raise RuntimeError("contprof: free-threaded CPython (Py_GIL_DISABLED) is not supported")
    cmake = os.environ.get("CMAKE") or shutil.which("cmake")
    if not cmake:
        raise RuntimeError("contprof: building needs CMake and a C compiler "
                           "(Debian: apt-get install cmake build-essential zlib1g-dev libcurl4-openssl-dev "
                           "libunwind-dev)")
    _run([cmake, "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
          "-DCONTPROF_PYTHONS=" + sys.executable, "-DCONTPROF_BUILD_JVM=OFF", "-DCONTPROF_BUILD_EXPLORER=OFF",
          "-DCONTPROF_BUILD_TESTS=OFF", "-DCONTPROF_BUILD_BENCH=OFF", "-DCONTPROF_SANITIZE_TESTS=OFF"])
    jobs = os.environ.get("CONTPROF_BUILD_JOBS") or str(os.cpu_count() or 2)
    _run([cmake, "--build", build_dir, "-j", jobs, "--target", "contprof_py%d%d" % sys.version_info[:2]])
    pkg = os.path.join(build_dir, "python", "%d.%d" % sys.version_info[:2], NAME)
    if not os.path.isdir(pkg):
        raise RuntimeError("contprof: the build did not produce %s" % pkg)
    return pkg


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


def _write_wheel(pkg, wheel_directory, version):
    tag = _tag()
    dist_info = "%s-%s.dist-info" % (NAME, version)
    path = os.path.join(wheel_directory, "%s-%s-%s.whl" % (NAME, version, tag))
    files = []
    for dirpath, dirnames, filenames in os.walk(pkg):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(dirpath, fn)
            with open(full, "rb") as f:
                files.append((NAME + "/" + os.path.relpath(full, pkg).replace(os.sep, "/"), f.read()))
    files.append((dist_info + "/METADATA", _metadata(version).encode()))
    files.append((dist_info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: contprof_build %s\n"
                                         "Root-Is-Purelib: false\nTag: %s\n" % (version, tag)).encode()))
    files.append((dist_info + "/top_level.txt", (NAME + "\n").encode()))
    record = [_record_line(a, d) for a, d in files] + [dist_info + "/RECORD,,"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files:
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if arcname.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
        z.writestr(dist_info + "/RECORD", "\n".join(record) + "\n")
    return os.path.basename(path)


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    version = _version()
    dist_info = os.path.join(metadata_directory, "%s-%s.dist-info" % (NAME, version))
    os.makedirs(dist_info, exist_ok=True)
    with open(os.path.join(dist_info, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata(version))
    return os.path.basename(dist_info)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    version = _version()
    build_dir = tempfile.mkdtemp(prefix="contprof-wheel-")
    try:
        pkg = _cmake_build(build_dir)
        os.makedirs(wheel_directory, exist_ok=True)
        return _write_wheel(pkg, wheel_directory, version)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)


def build_sdist(sdist_directory, config_settings=None):
    version = _version()
    base = "%s-%s" % (NAME, version)
    path = os.path.join(sdist_directory, base + ".tar.gz")

    def skip(info):
        parts = info.name.split("/")
        return None if "__pycache__" in parts or info.name.endswith(".pyc") else info

    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as t:
        for rel in SDIST_PATHS:
            t.add(os.path.join(ROOT, rel), arcname=base + "/" + rel, filter=skip)
        data = _metadata(version).encode()
        info = tarfile.TarInfo(base + "/PKG-INFO")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return os.path.basename(path)
