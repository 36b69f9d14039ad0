"""Allocation and live-heap cases (python_ext/src/allochook.c): a live heap
larger than the old fixed table, the PyMem_Raw domain, errno across the
hooks, sub-interpreters with their own GIL. Same conventions as cases.py.
"""
import json
import os
import shutil
import sys

import glob

import pprof
from cases import prog


def heap_by(m, fn):
    return m.total("heap-space", fn, inclusive=True)


def last_profile(t):
    """The heap is a snapshot per profile: only the last one counts."""
    files = glob.glob(os.path.join(t.tmp, "profiles", "*.pprof.gz"))
    t.check(files, "no profiles")
    last = max(files, key=lambda f: int(os.path.basename(f).split(".")[-3]))
    with open(last, "rb") as fh:
        return pprof.Merged([pprof.decode(fh.read())])


def case_heap_early_late(t):
    # 2 x 100 MB live in 64 KiB blocks at a 32 KiB mean: ~2,800 tracked
    # blocks, well past the old 1,024-block table (which kept only early).
    t.write("prog.py", prog("""
        import json
        kept = []
        def early():
            for _ in range(1600):
                kept.append(bytearray(65536))
        def late():
            for _ in range(1600):
                kept.append(bytearray(65536))
        early()
        late()
        info = contprof._c.alloc_info()
        contprof.stop()
        print(json.dumps(info))
    """, ", alloc_interval_bytes=32768"))
    r = t.run(["prog.py"])
    info = json.loads(r.stdout.strip().splitlines()[-1])
    m = last_profile(t)
    real = 1600 * 65536
    e, l = heap_by(m, "early"), heap_by(m, "late")
    t.note("heap-space early %.1f MB, late %.1f MB (real %.1f MB each); tracked %d, evicted %d",
           e / 1e6, l / 1e6, real / 1e6, info["heap_live"], info["heap_evicted"])
    for name, v in (("early", e), ("late", l)):
        t.check(abs(v - real) <= 0.10 * real, "heap-space of %s() = %d, expected %d +- 10%%", name, v, real)
    t.check(info["heap_evicted"] == 0, "%d tracked blocks evicted below the cap", info["heap_evicted"])


ZLIB = ("import zlib\nobjs = []\ndef make():\n    for _ in range(200):\n"
        "        objs.append(zlib.compressobj())\nmake()\n")


def case_raw_domain(t):
    # What 200 compressobj hold, measured by tracemalloc (which sees RAW)...
    t.write("truth.py", "import tracemalloc\ntracemalloc.start()\nbefore = tracemalloc.get_traced_memory()[0]\n"
            + ZLIB + "print(tracemalloc.get_traced_memory()[0] - before)\n")
    truth = int(t.run(["truth.py"]).stdout.strip().splitlines()[-1])
    # ...and what contprof's heap profile says, with the Raw domain on / off.
    got = {}
    for raw in ("True", "False"):
        t.write("prog_%s.py" % raw, prog(ZLIB + "contprof.stop()\n",
                                         ", alloc_interval_bytes=65536, alloc_raw_enabled=%s" % raw))
        t.run(["prog_%s.py" % raw])
        got[raw] = heap_by(last_profile(t), "make")
        shutil.rmtree(os.path.join(t.tmp, "profiles"))
    t.note("200 zlib.compressobj: tracemalloc %.1f MB; heap-space make() %.1f MB (raw on), %.1f MB (raw off)",
           truth / 1e6, got["True"] / 1e6, got["False"] / 1e6)
    t.check(truth > 40e6, "tracemalloc saw only %d bytes", truth)
    t.check(abs(got["True"] - truth) <= 0.10 * truth, "raw on: heap-space %d vs tracemalloc %d (10%%)",
            got["True"], truth)
    t.check(got["False"] <= 0.2 * truth, "raw off still shows %d bytes", got["False"])


def case_errno_kept(t):
    # Every allocation sampled (interval 1 byte): the sampled path runs
    # exp/log and the heap table; errno must come out as the caller set it.
    t.write("prog.py", prog("""
        import ctypes
        api = ctypes.PyDLL(None, use_errno=True)
        for name in ("PyMem_Malloc", "PyMem_RawMalloc", "PyObject_Malloc"):
            f = getattr(api, name)
            f.restype, f.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
            free = getattr(api, name.replace("Malloc", "Free"))
            free.argtypes = [ctypes.c_void_p]
            for size in (16, 600, 1 << 20, 1 << 26):
                ctypes.set_errno(77)
                p = f(size)
                e = ctypes.get_errno()
                free(p)
                assert p, (name, size)
                assert e == 77, "%s(%d) changed errno to %d" % (name, size, e)
        contprof.stop()
        print("errno kept")
    """, ", alloc_interval_bytes=1"))
    r = t.run(["prog.py"])
    t.check("errno kept" in r.stdout, "program did not finish")


def case_subinterp_own_gil(t):
    if sys.version_info < (3, 12):
        t.note("sub-interpreters with their own GIL exist from 3.12; nothing to test on %s",
               sys.version.split()[0])
        return
    # A sub-interpreter with its own GIL allocates (OBJ, MEM and RAW) in a
    # thread while the main interpreter allocates too, at a high sampling
    # rate with the heap on: the hooks run concurrently in both.
    t.write("prog.py", prog("""
        import threading
        try:
            import _interpreters as interpreters
        except ImportError:
            import _xxsubinterpreters as interpreters
        code = '''
        import zlib
        keep = []
        for i in range(60000):
            keep.append(("x%d" % i) * 40)
            keep.append(bytes(700))
            if len(keep) > 5000:
                keep.clear()
            if i % 500 == 0:
                keep.append(zlib.compressobj())
        '''
        done = []
        def sub():
            for _ in range(3):
                interp = interpreters.create()
                interpreters.run_string(interp, code)
                interpreters.destroy(interp)
            done.append(1)
        def main_work():
            keep = []
            for i in range(200000):
                keep.append(("y%d" % i) * 40)
                keep.append(bytearray(700))
                if len(keep) > 5000:
                    keep.clear()
            return len(keep)
        th = threading.Thread(target=sub)
        th.start()
        main_work()
        th.join()
        contprof.stop()
        print("subinterp done", len(done))
    """, ", alloc_interval_bytes=4096"))
    r = t.run(["prog.py"], timeout=120)
    t.check("subinterp done 1" in r.stdout, "sub-interpreter thread did not finish")
    m = t.prof()
    t.check(m.total("alloc-space", "main_work", inclusive=True) > 0, "main interpreter's allocations missing")
