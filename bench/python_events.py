"""Cost of contprof's lock and exception profiles on CPython.

    python bench/python_events.py --pkg <build>/python/3.11 [--seconds 3] [--runs 5]
                                  [--workloads cpu,raise,lock] [--callgrind]

Workloads (a fixed amount of work, calibrated to take --seconds of CPU
unprofiled; CPU, not wall, since the machine may be loaded):
  cpu    fib(15) on small ints: no locks, no exceptions
  raise  an ordinary exception raised and caught nearby, with enough work
         between raises for about 100k raises per CPU second unprofiled
  lock   an uncontended `with lock:` around a little work, in a loop
Three modes run alternately, each in a fresh process: `off` (no profiler),
`events-off` (the profiler at defaults but lock_enabled and
exception_enabled false) and `on` (defaults: both on). Printed per workload:
min-run and median ratios of process CPU time, on/off and on/events-off
(the second is the lock and exception profiles' own cost).

--callgrind counts instructions (valgrind --tool=callgrind: deterministic,
unlike timings on a loaded machine) per raise, per uncontended
`with lock:` (acquire + release) and of CPU-bound code (fib(10), per 1/100
call: no locks, no exceptions), hooked vs unhooked, as the difference of
two loop lengths so start-up cancels out, with the sampling rate at 1/s so
the count is the unsampled path's. The vDSO clock is not run under valgrind
(it becomes a syscall, uncounted): a path that reads the clock costs ~28 ns
per read more than its count says here.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from python_overhead import callgrind_run  # bench/ is on sys.path when run as a script

CHILD = r'''
import json, sys, threading, time
workload, n, mode, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def fib(k):
    return k if k < 2 else fib(k - 1) + fib(k - 2)

def cpu_work(n):
    acc = 0
    for i in range(n):
        acc += fib(15)
    return acc

def check(i):
    if i % 3 == 0:
        raise ValueError(i)
    return i

def raise_work(n):
    # one raise per iteration, ~10 us of CPU in all unprofiled
    acc = 0
    for i in range(n):
        acc += fib(8)
        try:
            check(3 * i)
        except ValueError:
            acc += 1
    return acc

def lock_work(n):
    lk = threading.Lock()
    acc = 0
    for i in range(n):
        with lk:
            acc += i
    return acc

work = globals()[workload + "_work"]
if mode != "off":
    import contprof
    ev = mode == "on"
    contprof.start(output_dir=outdir, lock_enabled=ev, exception_enabled=ev)
# Process CPU (every thread, the profiler's included) over the work only:
# start-up and the final export are left out.
t0, c0 = time.monotonic(), time.process_time()
work(n)
wall, cpu = time.monotonic() - t0, time.process_time() - c0
if mode != "off":
    contprof.stop()
print(json.dumps({"wall": wall, "cpu": cpu}))
'''

WORKLOADS = ["cpu", "raise", "lock"]
MODES = ["off", "events-off", "on"]


def run(args, workload, n, mode):
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, PYTHONPATH=args.pkg)
        r = subprocess.run([sys.executable, "-c", CHILD, workload, str(n), mode, out], env=env,
                           stdout=subprocess.PIPE, universal_newlines=True, check=True)
        return json.loads(r.stdout.strip().splitlines()[-1])


def calibrate(args, workload):
    n = 1000
    while True:
        t = run(args, workload, n, "off")["cpu"]
        if t >= 0.3:
            return max(1, int(n * args.seconds / t))
        n *= 4


def bench(args, workload):
    n = calibrate(args, workload)
    res = {m: [] for m in MODES}
    for r in range(args.runs):
        for m in (MODES if r % 2 == 0 else list(reversed(MODES))):
            res[m].append(run(args, workload, n, m))

    def ratio(a, b, pick):
        return pick([x["cpu"] for x in res[a]]) / pick([x["cpu"] for x in res[b]])

    base_cpu = statistics.median(x["cpu"] for x in res["off"])
    return {
        "workload": workload, "iterations": n, "runs": args.runs,
        "per_cpu_s_unprofiled": n / base_cpu,
        "on_off_min": ratio("on", "off", min), "on_off_median": ratio("on", "off", statistics.median),
        "on_evoff_min": ratio("on", "events-off", min),
        "on_evoff_median": ratio("on", "events-off", statistics.median),
        "base_cpu_s_median": statistics.median(x["cpu"] for x in res["off"]),
    }


# ---- callgrind ------------------------------------------------------------

CG_CHILD = r'''
import sys, threading
what, n, hooked, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
import contprof
# The same profiler threads in both modes; only the hooks differ. One
# sample per second at most: the counts are the unsampled path's.
contprof.start(output_dir=outdir, cpu_enabled=False, wall_enabled=True, wall_interval_us=1000000,
               upload_period=3600, alloc_enabled=False, heap_enabled=False,
               lock_enabled=hooked, exception_enabled=hooked, lock_samples_per_s=1, exception_samples_per_s=1)
def raise_loop(n):
    for i in range(n):
        try:
            raise ValueError(i)
        except ValueError:
            pass
def lock_loop(n, lk):
    for i in range(n):
        with lk:
            pass
def fib(k):
    return k if k < 2 else fib(k - 1) + fib(k - 2)
if what == "cpu":
    for i in range(n // 100):
        fib(10)
elif what == "raise":
    raise_loop(n)
else:
    lock_loop(n, threading.RLock() if what == "rlock" else threading.Lock())
'''


def callgrind_ir(args, what, n, hooked):
    return callgrind_run(args.pkg, CG_CHILD, [what, n, "1" if hooked else "0"], ["_PyEval_EvalFrameDefault"],
                         env={"PYTHONHASHSEED": "0"})[0]


def callgrind(args):
    n1, n2 = 10000, 40000
    print("callgrind instructions per operation, python %s (unsampled path):" % sys.version.split()[0])
    res = {}
    for what, label in (("cpu", "fib(10) / 100"), ("raise", "raise + catch"), ("lock", "with Lock"),
                        ("rlock", "with RLock")):
        per = []
        for hooked in (False, True):
            a, b = (callgrind_ir(args, what, n, hooked) for n in (n1, n2))
            per.append((b - a) / float(n2 - n1))
        res[what] = per
        print("  %-14s unhooked %7.1f  hooked %7.1f  (%+.1f, %+.1f%%)"
              % (label, per[0], per[1], per[1] - per[0], 100.0 * (per[1] - per[0]) / per[0]))
    print("  " + json.dumps(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pkg", required=True, help="folder holding the built contprof package")
    ap.add_argument("--seconds", type=float, default=3.0, help="target length of one run")
    ap.add_argument("--runs", type=int, default=5, help="runs per mode (alternating)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--callgrind", action="store_true", help="only the callgrind instruction counts")
    args = ap.parse_args()
    if args.callgrind:
        callgrind(args)
        return
    print("python %s, %d runs x %.0f s per mode, CPU time ratios" % (sys.version.split()[0], args.runs, args.seconds))
    for w in args.workloads.split(","):
        r = bench(args, w)
        print("%-6s %8.0f it/CPU-s | on/off x%.4f (min) x%.4f (median) | on/events-off x%.4f (min) x%.4f (median)"
              % (w, r["per_cpu_s_unprofiled"], r["on_off_min"], r["on_off_median"], r["on_evoff_min"],
                 r["on_evoff_median"]))
        print("  " + json.dumps(r))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
