"""Overhead of the contprof CPython profiler at default settings.

    python bench/python_overhead.py --pkg <build>/python/3.11 [--seconds 10] [--runs 3]

Two workloads, each a fixed amount of work calibrated to take --seconds
without the profiler: "cpu" (pure-Python compute) and "alloc"
(allocation-heavy: short-lived dicts, lists, strings, objects). Runs
alternate without/with the profiler in fresh processes. Reported per
workload: min-run and median ratios (with/without) of process CPU time and
wall time, the RSS added, and the profiler's own overhead estimate (core
metrics) as a cross-check. Exit status is 0; read the numbers.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r'''
import json, os, resource, sys, time
workload, n, profile, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]

def cpu_work(n):
    def fib(k):
        return k if k < 2 else fib(k - 1) + fib(k - 2)
    acc = 0
    for i in range(n):
        acc += fib(15)
        acc += len(("%d" % i) * 3)
    return acc

class Point:
    __slots__ = ("x", "y")
    def __init__(self, x, y):
        self.x, self.y = x, y

def alloc_work(n):
    keep = []
    for i in range(n):
        d = {"id": i, "name": "item-%d" % i, "tags": [i, i + 1, i + 2]}
        pts = [Point(j, i) for j in range(8)]
        s = " ".join(str(p.x) for p in pts)
        if i % 1000 == 0:
            keep.append((d, s))
        if len(keep) > 200:
            keep.clear()
    return len(keep)

work = cpu_work if workload == "cpu" else alloc_work
if profile:
    import contprof
    contprof.start(output_dir=outdir)
t0, c0 = time.monotonic(), time.process_time()
work(n)
wall, cpu_main = time.monotonic() - t0, time.process_time() - c0
metrics = {}
if profile:
    contprof.stop()
    metrics = contprof._c.metrics()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_kb": ru.ru_maxrss,
                  "overhead_pct": metrics.get("last_overhead_pct"),
                  "dropped": metrics.get("samples_dropped")}))
'''


def run(args, workload, n, profile):
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, PYTHONPATH=args.pkg)
        r = subprocess.run([sys.executable, "-c", CHILD, workload, str(n), "1" if profile else "0", out],
                           env=env, stdout=subprocess.PIPE, universal_newlines=True, check=True)
        return json.loads(r.stdout.strip().splitlines()[-1])


def calibrate(args, workload):
    n = 1000 if workload == "cpu" else 10000
    while True:
        t = run(args, workload, n, False)["cpu"]
        if t >= 0.5:
            return max(1, int(n * args.seconds / t))
        n *= 4


def bench(args, workload):
    n = calibrate(args, workload)
    base, prof = [], []
    for _ in range(args.runs):
        base.append(run(args, workload, n, False))
        prof.append(run(args, workload, n, True))

    def ratio(key, pick):
        return pick([p[key] for p in prof]) / pick([b[key] for b in base])

    return {
        "workload": workload, "iterations": n, "runs": args.runs,
        "cpu_ratio_min": ratio("cpu", min), "cpu_ratio_median": ratio("cpu", statistics.median),
        "wall_ratio_min": ratio("wall", min), "wall_ratio_median": ratio("wall", statistics.median),
        "rss_added_mb": (statistics.median([p["rss_kb"] for p in prof]) -
                         statistics.median([b["rss_kb"] for b in base])) / 1024.0,
        "self_overhead_pct_median": statistics.median([p["overhead_pct"] or 0.0 for p in prof]),
        "samples_dropped": sum(p["dropped"] or 0 for p in prof),
        "base_cpu_s_median": statistics.median([b["cpu"] for b in base]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pkg", required=True, help="folder holding the built contprof package")
    ap.add_argument("--seconds", type=float, default=10.0, help="target length of one run")
    ap.add_argument("--runs", type=int, default=3, help="runs per mode (alternating)")
    ap.add_argument("--workloads", default="cpu,alloc")
    args = ap.parse_args()
    print("python %s, %d runs x %.0f s per mode" % (sys.version.split()[0], args.runs, args.seconds))
    for w in args.workloads.split(","):
        r = bench(args, w)
        print("%-6s CPU +%.2f%% (min) +%.2f%% (median) | wall +%.2f%% (min) +%.2f%% (median) | "
              "RSS +%.1f MB | self-measured %.2f%% | dropped %d"
              % (w, 100 * (r["cpu_ratio_min"] - 1), 100 * (r["cpu_ratio_median"] - 1),
                 100 * (r["wall_ratio_min"] - 1), 100 * (r["wall_ratio_median"] - 1),
                 r["rss_added_mb"], r["self_overhead_pct_median"], r["samples_dropped"]))
        print("  " + json.dumps(r))


if __name__ == "__main__":
    main()
