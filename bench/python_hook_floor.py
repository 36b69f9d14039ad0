#!/usr/bin/env python3
"""The allocation hook's cost where the program pays it, and the API's floor.

    python bench/python_hook_floor.py --pkg build/python/3.11 [--rounds 40]
                                      [--chunk-ms 100] [--workloads int,intfloat,...]

callgrind counts the wrapper's instructions (python_overhead.py --callgrind:
three per PyObject_Malloc), and perf charges it the samples that land on
them; neither sees what an extra hop on every allocation costs the
interpreter around it. This measures that in one process: a fixed chunk of
a workload is timed (the main thread's CPU clock) with

  none       CPython's allocator as it is (twice: the second, `a/a`, gives
             the noise of a ratio on this machine);
  pass       a wrapper that only jumps on to the previous allocator
             (bench/python_hook_floor/passthrough.c, compiled here): the
             least any PyMem_SetAllocator hook can cost;
  contprof   contprof started with CPU, wall, lock and exception profiles
             off and allocation sampling so sparse (1 GiB) that it never
             samples: its unsampled path only;
  sampled    the same at the default allocation interval: the sampled path
             (stack walks, the heap table) too.

Each round runs every mode once, in rotated order, and each mode's ratio to
`none` of the same round is kept; the median and quartiles over rounds are
printed, with the cost per allocator call (calls per chunk are counted by
the pass-through wrapper) and contprof's own calibrated cost per call (what
its self-reported overhead charges for each unsampled call).
"""
import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def int_work(n):
    s = 0
    for i in range(1000, 1000 + n):
        s += i * i          # 3 PyObject_Malloc calls an iteration
    return s


def workloads():
    """int_work here, and python_overhead.py's workloads."""
    import python_overhead
    ns = {}
    exec(python_overhead.WORK, ns)
    found = {k[:-len("_work")]: v for k, v in ns.items() if k.endswith("_work")}
    found["int"] = int_work
    return found


def build_passthrough(tmp):
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    out = os.path.join(tmp, "passthrough" + suffix)
    cc = os.environ.get("CC", "cc")
    subprocess.check_call([cc, "-O2", "-fPIC", "-shared", "-I" + sysconfig.get_paths()["include"],
                           os.path.join(HERE, "python_hook_floor", "passthrough.c"), "-o", out])
    sys.path.insert(0, tmp)
    import passthrough
    return passthrough


def cpu_ns(fn, n):
    t = time.thread_time_ns()
    fn(n)
    return time.thread_time_ns() - t


def size_chunk(fn, ms):
    n = 1000
    while cpu_ns(fn, n) < ms * 1e6 / 8:
        n *= 2
    return max(1, int(n * ms * 1e6 / cpu_ns(fn, n)))


def measure(args, fn, name, pt, contprof, cmod, outdir):
    n = size_chunk(fn, args.chunk_ms)
    pt.install(1)
    before = pt.count()
    fn(n)
    calls = pt.count() - before
    pt.uninstall()
    opts = dict(output_dir=outdir, upload_period=3600, cpu_enabled=False, wall_enabled=False,
                lock_enabled=False, exception_enabled=False)

    def on(mode):
        if mode == "pass":
            pt.install(0)
        elif mode == "contprof":
            contprof.start(alloc_interval_bytes=1 << 30, **opts)
            calibrated.append(cmod.alloc_info()["obj_ns_per_alloc"])
        elif mode == "sampled":
            contprof.start(**opts)

    def off(mode):
        if mode == "pass":
            pt.uninstall()
        elif mode in ("contprof", "sampled"):
            contprof.stop()

    modes = ["none", "a/a", "pass", "contprof", "sampled"]
    calibrated, ratios, base = [], {m: [] for m in modes[1:]}, []
    fn(n)
    for r in range(args.rounds):
        t = {}
        for k in range(len(modes)):
            m = modes[(r + k) % len(modes)]
            on(m)
            t[m] = cpu_ns(fn, n)
            off(m)
        base.append(t["none"])
        for m in modes[1:]:
            ratios[m].append(t[m] / t["none"])
    chunk_ns = statistics.median(base)
    print("%s: %d iterations a chunk (%.0f ms), %d PyObject_Malloc calls (%.2f an iteration), %d rounds"
          % (name, n, chunk_ns / 1e6, calls, calls / float(n), args.rounds))
    for m in modes[1:]:
        q = statistics.quantiles(ratios[m], n=4)
        med = statistics.median(ratios[m])
        # Per call only where calls are dense enough for it to mean anything.
        per_call = ("= %+.2f ns per allocator call" % ((med - 1.0) * chunk_ns / calls)
                    if calls * 1000 > chunk_ns else "")
        print("  %-9s x%.4f median (quartiles %.4f, %.4f) %s" % (m, med, q[0], q[2], per_call))
    print("  contprof's calibrated cost of an unsampled call: median %.2f ns (min %.2f, max %.2f over %d starts)"
          % (statistics.median(calibrated), min(calibrated), max(calibrated), len(calibrated)))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pkg", required=True, help="folder holding the built contprof package")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--chunk-ms", type=float, default=100.0, help="main-thread CPU of one timed chunk")
    ap.add_argument("--workloads", default="int,intfloat,dictattr,request",
                    help="int (s += i * i) or any of python_overhead.py's")
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.pkg))
    known = workloads()
    wanted = args.workloads.split(",")
    for w in wanted:
        if w not in known:
            sys.exit("unknown workload %r (known: %s)" % (w, ", ".join(sorted(known))))
    import contprof
    from contprof import _contprof as cmod
    with tempfile.TemporaryDirectory() as tmp:
        pt = build_passthrough(tmp)
        print("python %s" % sys.version.split()[0])
        for w in wanted:
            measure(args, known[w], w, pt, contprof, cmod, os.path.join(tmp, "out"))


if __name__ == "__main__":
    main()
