"""Overhead of the contprof CPython profiler at default settings.

    python bench/python_overhead.py --pkg <build>/python/3.11 [--seconds 10] [--runs 5]
                                    [--workloads intfloat,request,...] [--callgrind]

Workloads (each a fixed amount of work calibrated to take --seconds without
the profiler, with one idle thread sleeping beside it, as services have):
  cpu       fib(15) on small ints: allocates nothing
  intfloat  s += i * i past the small-int cache, float accumulation
  dictattr  objects with attributes, dict inserts/updates/deletes
  strings   string formatting, joins, splits
  json      json.dumps / json.loads of small documents
  request   a request-handler shape: parse, dict/attribute churn, float
            math, formatting, JSON, a small object per request
  threads   a new thread per request (socketserver.ThreadingMixIn's shape)
  alloc     short-lived dicts, lists, strings, objects (the heaviest)
--idle: a process that only waits (what most services do most of the
time): its CPU per second without and with the profiler.
Runs alternate without/with the profiler in fresh processes (--native:
with native_frames off/on, both profiled). Reported per
workload: min-run and median ratios (with/without) of process CPU and wall
time, the RSS added, and the profiler's self-reported overhead (which
includes the calibrated cost of the unsampled allocator path).

--callgrind counts instructions (valgrind --tool=callgrind, deterministic)
of the intfloat loop's integer part and of each PyObject_Malloc/Free pair,
with the allocation hooks on vs off (the same profiler threads running in
both, so only the hooks differ). Exit status is 0; read the numbers.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

# The workloads: <name>_work(n) does n units of work (also exec'ed by
# python_hook_floor.py, which times them in one process).
WORK = r'''
import json, threading

def cpu_work(n):
    def fib(k):
        return k if k < 2 else fib(k - 1) + fib(k - 2)
    acc = 0
    for i in range(n):
        acc += fib(15)
    return acc

def intfloat_work(n):
    s, f = 0, 0.0
    for i in range(1000, 1000 + n):
        s += i * i
        f += i * 0.5
        f *= 0.9999
    return s, f

class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

def dictattr_work(n):
    d = {}
    for i in range(n):
        p = Point(i, i + 1)
        p.z = p.x + p.y
        d["k%d" % (i & 1023)] = p
        if i & 3 == 0:
            d.pop("k%d" % ((i + 512) & 1023), None)
    return len(d)

def strings_work(n):
    out = 0
    for i in range(n):
        s = "user=%s id=%d score=%.2f" % ("bob", i, i / 7.0)
        parts = s.split(" ")
        out += len("-".join(p.upper() for p in parts))
        out += len(f"{i}:{s[:8]}")
    return out

def json_work(n):
    doc = {"id": 1, "name": "item", "tags": ["a", "b", "c"], "price": 9.99, "nested": {"x": 1, "y": [1, 2, 3]}}
    out = 0
    for i in range(n):
        doc["id"] = i
        out += len(json.loads(json.dumps(doc))["tags"])
    return out

class Request:
    def __init__(self, path, query):
        self.path, self.query = path, query
        self.headers = {"content-type": "application/json", "x-id": str(id(self))}

def handle(req):
    params = dict(kv.split("=") for kv in req.query.split("&"))
    qty, price = int(params["qty"]), float(params["price"])
    total = qty * price * 1.2
    discount = total * 0.05 if qty > 10 else 0.0
    body = {"path": req.path, "qty": qty, "total": round(total - discount, 2),
            "items": [{"sku": "s%d" % k, "price": price} for k in range(3)]}
    return "200 OK\r\n" + json.dumps(body)

def request_work(n):
    out = 0
    for i in range(n):
        req = Request("/api/orders/%d" % i, "qty=%d&price=%.2f&user=u%d" % (i % 20, 3.5 + i % 7, i))
        out += len(handle(req))
    return out

class Slot:
    __slots__ = ("x", "y")
    def __init__(self, x, y):
        self.x, self.y = x, y

def threads_work(n):
    # A thread per request, as socketserver.ThreadingMixIn does.
    out = [0]
    def handle(i):
        out[0] += len(json.dumps({"id": i, "v": [k * k for k in range(200)]}))
    for i in range(n):
        t = threading.Thread(target=handle, args=(i,))
        t.start()
        t.join()
    return out[0]

def alloc_work(n):
    keep = []
    for i in range(n):
        d = {"id": i, "name": "item-%d" % i, "tags": [i, i + 1, i + 2]}
        pts = [Slot(j, i) for j in range(8)]
        s = " ".join(str(p.x) for p in pts)
        if i % 1000 == 0:
            keep.append((d, s))
        if len(keep) > 200:
            keep.clear()
    return len(keep)
'''

CHILD = r'''
import json, os, resource, sys, threading, time
workload, n, profile, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
''' + WORK + r'''
work = globals()[workload + "_work"]
idle = threading.Event()
threading.Thread(target=idle.wait, daemon=True).start()
if profile != "0":
    import contprof
    # --native compares native frames on (the default) against off.
    contprof.start(output_dir=outdir, **({"native_frames": profile != "nonative"} if profile in ("nonative", "native") else {}))
t0, c0 = time.monotonic(), time.process_time()
work(n)
wall = time.monotonic() - t0
metrics = {}
if profile != "0":
    contprof.stop()
    metrics = contprof._c.metrics()
idle.set()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_kb": ru.ru_maxrss,
                  "overhead_pct": metrics.get("last_overhead_pct"),
                  "dropped": metrics.get("samples_dropped")}))
'''

WORKLOADS = ["cpu", "intfloat", "dictattr", "strings", "json", "request", "threads", "alloc"]


def run(args, workload, n, profile):
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, PYTHONPATH=args.pkg)
        mode = profile if isinstance(profile, str) else ("1" if profile else "0")
        r = subprocess.run([sys.executable, "-c", CHILD, workload, str(n), mode, out],
                           env=env, stdout=subprocess.PIPE, universal_newlines=True, check=True)
        return json.loads(r.stdout.strip().splitlines()[-1])


def calibrate(args, workload):
    n = 1000
    while True:
        t = run(args, workload, n, False)["cpu"]
        if t >= 0.3:
            return max(1, int(n * args.seconds / t))
        n *= 4


def bench(args, workload):
    n = calibrate(args, workload)
    base, prof = [], []
    # --native: the baseline is the profiler with native_frames=false.
    for _ in range(args.runs):
        base.append(run(args, workload, n, "nonative" if args.native else False))
        prof.append(run(args, workload, n, "native" if args.native else True))

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


# ---- callgrind ------------------------------------------------------------

CG_CHILD = r'''
import sys
n, hooks = int(sys.argv[1]), sys.argv[2] == "1"
import contprof
# Same threads in both modes (a 1 s wall sampler, the resolver); only the
# allocation hooks differ.
contprof.start(output_dir=sys.argv[3], cpu_enabled=False, wall_enabled=True, wall_interval_us=1000000,
               upload_period=3600, alloc_enabled=hooks, heap_enabled=hooks)
def loop(n):
    s = 0
    for i in range(1000, 1000 + n):
        s += i * i          # 3 allocations and 3 frees per iteration
    return s
loop(n)
'''


def callgrind_run(pkg, child, child_args, toggles, env=None):
    """Run `python -c child *child_args <scratch dir>` with pkg on PYTHONPATH
    under callgrind, counting only inside the functions in toggles.
    Returns (instructions collected, the child's stdout)."""
    out = tempfile.mkdtemp()
    try:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        cmd += ["--toggle-collect=%s" % t for t in toggles]
        cmd += [sys.executable, "-c", child] + [str(a) for a in child_args] + [out]
        r = subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=pkg, **(env or {})),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        m = re.search(r"Collected : (\d+)", r.stderr)
        if not m:
            raise RuntimeError("callgrind failed: %s" % r.stderr[-500:])
        return int(m.group(1)), r.stdout
    finally:
        shutil.rmtree(out, ignore_errors=True)


def callgrind_ir(args, n, hooks, toggles):
    return callgrind_run(args.pkg, CG_CHILD, [n, "1" if hooks else "0"], toggles)[0]


def callgrind(args):
    """Per-iteration and per-pair instruction counts by difference of two
    loop lengths (start-up cancels out)."""
    n1, n2 = 50000, 150000
    res = {}
    for hooks in (False, True):
        it = [callgrind_ir(args, n, hooks, ["_PyEval_EvalFrameDefault"]) for n in (n1, n2)]
        pair = [callgrind_ir(args, n, hooks, ["PyObject_Malloc", "PyObject_Free"]) for n in (n1, n2)]
        res[hooks] = ((it[1] - it[0]) / float(n2 - n1), (pair[1] - pair[0]) / float(3 * (n2 - n1)))
    (it0, p0), (it1, p1) = res[False], res[True]
    print("callgrind, s += i * i (3 PyObject_Malloc/Free pairs per iteration), python %s:" % sys.version.split()[0])
    print("  instructions per iteration:      unhooked %.1f, hooked %.1f (+%.1f, +%.2f%%)"
          % (it0, it1, it1 - it0, 100 * (it1 - it0) / it0))
    print("  instructions per malloc/free pair: unhooked %.1f, hooked %.1f (+%.1f)" % (p0, p1, p1 - p0))
    print("  " + json.dumps({"iter_unhooked": it0, "iter_hooked": it1, "pair_unhooked": p0, "pair_hooked": p1}))


CG_NATIVE_CHILD = r'''
import json, os, sys, zlib
import contprof
contprof.start(output_dir=sys.argv[2], upload_period=3600, wall_enabled=False, native_frames=True)
data = os.urandom(1 << 14) + bytes(range(256)) * 64
def nest(k):
    return nest(k - 1) if k else [zlib.compress(data) for _ in range(int(sys.argv[1]))]
nest(8)     # 8 Python frames plus <module> under the compress calls
contprof.stop()
print(contprof._c.native_stats())
'''


def callgrind_native(args):
    """Instructions the sampled thread spends per capture in its CPU
    timer's signal handler: the native unwind (the whole stack) and its
    own Python walk, each divided by the unwinds made (callgrind does not
    count a signal handler's entry as a call, so the two callees are
    measured)."""
    res = {}
    for fn in ("cp__walk_self", "cp_native_unwind"):
        ir, stdout = callgrind_run(args.pkg, CG_NATIVE_CHILD, [300], [fn])
        res[fn] = (ir, json.loads(stdout.strip().splitlines()[-1]))
    (w_ir, w_st), (u_ir, u_st) = res["cp__walk_self"], res["cp_native_unwind"]
    w_n, u_n = max(1, w_st["unwinds"]), max(1, u_st["unwinds"])
    u_frames = u_st["frames"] / float(u_n)
    print("callgrind, native frames (python %s): zlib.compress under 9 Python frames" % sys.version.split()[0])
    print("  cp_native_unwind: %.0f instructions per unwind, %.1f frames, %.0f per frame"
          % (u_ir / u_n, u_frames, u_ir / u_n / max(u_frames, 1)))
    print("  cp__walk_self (the handler's Python walk): %.0f instructions per capture (%d captures)"
          % (w_ir / w_n, w_n))
    print("  " + json.dumps({"unwind_ir": u_ir / u_n, "walk_ir": w_ir / w_n, "frames": u_frames}))


IDLE_CHILD = r'''
import json, resource, sys, threading, time
secs, profile, outdir = float(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
if profile:
    import contprof
    contprof.start(output_dir=outdir)
ev = threading.Event()
for _ in range(4):  # a service's workers, waiting for work
    threading.Thread(target=ev.wait, daemon=True).start()
time.sleep(1.0)     # start-up settles (imports, the first ticks)
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
time.sleep(secs)
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
print(json.dumps({"cpu_ms_per_s": 1000.0 * cpu / (t1 - t0)}))
ev.set()
'''


def idle(args):
    """CPU a second of a process that only waits (a sleeping main thread,
    four threads waiting on an Event), without and with the profiler."""
    res = {False: [], True: []}
    for _ in range(args.runs):
        for prof in (False, True):
            with tempfile.TemporaryDirectory() as out:
                r = subprocess.run([sys.executable, "-c", IDLE_CHILD, str(args.seconds), "1" if prof else "0", out],
                                   env=dict(os.environ, PYTHONPATH=args.pkg), stdout=subprocess.PIPE,
                                   universal_newlines=True, check=True)
                res[prof].append(json.loads(r.stdout.strip().splitlines()[-1])["cpu_ms_per_s"])
    base, prof = statistics.median(res[False]), statistics.median(res[True])
    print("idle     process CPU %.2f ms/s without, %.2f ms/s with the profiler (medians of %d): +%.2f ms/s, "
          "%.2f%% of a core" % (base, prof, args.runs, prof - base, (prof - base) / 10.0))
    print("  " + json.dumps({"workload": "idle", "base_ms_per_s": res[False], "prof_ms_per_s": res[True]}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pkg", required=True, help="folder holding the built contprof package")
    ap.add_argument("--seconds", type=float, default=10.0, help="target length of one run")
    ap.add_argument("--runs", type=int, default=5, help="runs per mode (alternating)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--callgrind", action="store_true", help="only the callgrind instruction counts")
    ap.add_argument("--native", action="store_true",
                    help="compare native_frames on (the default) against off, both profiled")
    ap.add_argument("--callgrind-native", action="store_true",
                    help="only the instructions per native-frames capture (signal handler: "
                         "unwind + Python walk), from callgrind")
    ap.add_argument("--idle", action="store_true",
                    help="only the CPU per second of a process that waits, without and with the profiler")
    args = ap.parse_args()
    if args.idle:
        idle(args)
        return
    if args.callgrind:
        callgrind(args)
        return
    if args.callgrind_native:
        callgrind_native(args)
        return
    print("python %s, %d runs x %.0f s per mode" % (sys.version.split()[0], args.runs, args.seconds))
    for w in args.workloads.split(","):
        r = bench(args, w)
        print("%-8s CPU x%.3f (min) x%.3f (median) | wall x%.3f (min) x%.3f (median) | "
              "RSS +%.1f MB | self-reported %.2f%% | dropped %d"
              % (w, r["cpu_ratio_min"], r["cpu_ratio_median"], r["wall_ratio_min"], r["wall_ratio_median"],
                 r["rss_added_mb"], r["self_overhead_pct_median"], r["samples_dropped"]))
        print("  " + json.dumps(r))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
