#!/usr/bin/env python3
"""contprof explorer at scale: list, facet, search and aggregate latency,
RSS and retention with N stored profiles.

    scale_test.py EXPLORER_BIN GEN_STORE_BIN SCRATCH N [--strict]

explorer_gen_store fills SCRATCH/store-N once (kept across runs: the rows
are a pure function of N); the test copies nothing and starts the real
binary on it (127.0.0.1, free port), times each request (best and median
of 5), the aggregation of 10,000 profiles (wall time and the server's CPU
time), the peak RSS, then restarts it with --retain-bytes at half the
store to check that retention brings the stored bytes under the limit
(on a copy of the index, so the cached store stays whole).

Limits: the issue's figures (list/facets 200 ms, search 300 ms, aggregate
2 s, RSS 300 MB) with --strict; without it (ctest on a shared, loaded
machine) latencies get 8x slack and the aggregate is judged on CPU time.
"""
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request


def die(msg):
    print(f"explorer_scale: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def start(binary, data, log, extra=()):
    port_file = os.path.join(os.path.dirname(data), "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--port-file", port_file, "--data", data,
                          *extra], stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if os.path.exists(port_file) and open(port_file).read().strip():
            return p, int(open(port_file).read().strip())
        if p.poll() is not None:
            die("the explorer exited at start")
        time.sleep(0.1)
    p.kill()
    die("no port file within 120 s")


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def get(port, path, timeout=120):
    t0 = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        body = r.read()
        status = r.status
    return status, json.loads(body), (time.monotonic() - t0) * 1000


def timed(port, path, pid, runs=5):
    """Best and median wall ms, and the server's CPU ms per request (user +
    sys, which a loaded machine inflates far less than wall time)."""
    ms = []
    cpu0 = cpu_seconds(pid)
    for _ in range(runs):
        status, body, t = get(port, path)
        if status != 200:
            die(f"GET {path} answered {status}")
        ms.append(t)
    return min(ms), statistics.median(ms), (cpu_seconds(pid) - cpu0) * 1000 / runs, body


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    if len(sys.argv) < 5:
        die("usage: scale_test.py EXPLORER_BIN GEN_STORE_BIN SCRATCH N [--strict]")
    binary, gen, scratch, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    strict = "--strict" in sys.argv[5:]
    slack = 1 if strict else 8
    os.makedirs(scratch, exist_ok=True)
    data = os.path.join(scratch, f"store-{n}")
    if not os.path.exists(os.path.join(data, "complete")):
        shutil.rmtree(data, ignore_errors=True)
        t0 = time.monotonic()
        subprocess.run([gen, data, str(n)], check=True, stdout=subprocess.DEVNULL)
        open(os.path.join(data, "complete"), "w").write(str(n))
        print(f"# generated {n} profiles in {time.monotonic() - t0:.1f} s")
    log = open(os.path.join(scratch, "explorer.log"), "w")
    p, port = start(binary, data, log, ["--retain-days", "0", "--retain-bytes", "0"])
    results, problems = [], []
    try:
        cases = [("list (all)", "/api/profiles", 200), ("facet: one service", "/api/profiles?service=service-03", 200),
                 ("facets: env + host", "/api/profiles?env=prod&host=host-007", 200),
                 ("sort by CPU", "/api/profiles?sort=cpu_cores", 200),
                 ("tag search 'team-7'", "/api/profiles?q=team-7", 300),
                 ("tag search 'host-007 eu-3'", "/api/profiles?q=host-007%20eu-3", 300)]
        for name, path, limit in cases:
            best, med, cpu_ms, body = timed(port, path, p.pid)
            results.append((name, best, med, cpu_ms, limit))
            if body["total"] <= 0:
                problems.append(f"{name}: no match")
            if (strict and med > limit) or (not strict and med > limit * slack and cpu_ms > limit):
                problems.append(f"{name}: median {med:.0f} ms > {limit * slack} ms (server CPU {cpu_ms:.0f} ms)")
        _, body, _ = get(port, "/api/profiles")
        if body["total"] != n:
            problems.append(f"list total {body['total']} != {n}")
        svc = "&".join(f"service=service-{i:02d}" for i in range(20))
        _, lst, _ = get(port, f"/api/profiles?{svc}&limit=1")
        agg_n = min(10000, n)
        # newest agg_n of every service: the aggregation's max_profiles
        cpu0, t0 = cpu_seconds(p.pid), time.monotonic()
        status, agg, _ = get(port, f"/api/aggregate/flame?{svc}&type=cpu-time&max_profiles={agg_n}&wait_ms=60000",
                             timeout=180)
        wall, cpu = time.monotonic() - t0, cpu_seconds(p.pid) - cpu0
        if status != 200 or agg.get("profiles") != agg_n:
            problems.append(f"aggregate: status {status}, {agg.get('profiles')} profiles merged, want {agg_n}")
        elif abs(agg["total"] - agg_n * 7.94e9) > 1e6 * agg_n:
            problems.append(f"aggregate total {agg['total']} != {agg_n} x 7.94 s")
        _, _, again = get(port, f"/api/aggregate/flame?{svc}&type=cpu-time&max_profiles={agg_n}&wait_ms=60000")
        cores = os.cpu_count() or 1
        agg_limit_s = 2.0
        judged = wall if strict else cpu / min(cores, 4)
        if judged > agg_limit_s * (1 if strict else 4):
            problems.append(f"aggregate of {agg_n}: {wall:.2f} s wall, {cpu:.2f} s CPU")
        rss = peak_rss_mb(p.pid)
        if rss > 300:
            problems.append(f"peak RSS {rss:.0f} MB > 300 MB")
    finally:
        stop(p)
    for name, best, med, cpu_ms, limit in results:
        print(f"# {name:28s} best {best:7.1f} ms  median {med:7.1f} ms  server CPU {cpu_ms:6.1f} ms/request"
              f"  (limit {limit} ms)")
    print(f"# aggregate of {agg_n} profiles: {wall:.2f} s wall, {cpu:.2f} s server CPU "
          f"({cores} CPUs); cached repeat {again:.0f} ms")
    print(f"# peak RSS {rss:.0f} MB; load average {os.getloadavg()[0]:.1f}")

    # Retention by size, on a copy of the index (blob links are shared:
    # only the copy's rows are checked, its deleted blobs were links).
    ret = os.path.join(scratch, "retention")
    shutil.rmtree(ret, ignore_errors=True)
    os.makedirs(os.path.join(ret, "pprof"))
    src = sqlite3.connect(os.path.join(data, "index.sqlite3"))
    dst = sqlite3.connect(os.path.join(ret, "index.sqlite3"))
    src.backup(dst)
    src.close()
    total = dst.execute("SELECT sum(pprof_bytes) FROM profiles").fetchone()[0]
    for (digest,) in dst.execute("SELECT digest FROM profiles"):
        os.link(os.path.join(data, "pprof", digest + ".pprof.gz"), os.path.join(ret, "pprof", digest + ".pprof.gz"))
    dst.close()
    limit = total // 2
    p, port = start(binary, ret, log, ["--retain-days", "0", "--retain-bytes", str(limit)])
    stop(p)
    db = sqlite3.connect(os.path.join(ret, "index.sqlite3"))
    kept, kept_bytes = db.execute("SELECT count(*), sum(pprof_bytes) FROM profiles").fetchone()
    db.close()
    files = len(os.listdir(os.path.join(ret, "pprof")))
    print(f"# retention --retain-bytes {limit}: {kept} of {n} profiles kept, {kept_bytes} bytes, {files} blob files")
    if not kept_bytes or kept_bytes > limit or files != kept:
        problems.append(f"retention: {kept_bytes} bytes kept (limit {limit}), {files} files for {kept} rows")
    shutil.rmtree(ret, ignore_errors=True)
    if problems:
        die("; ".join(problems))
    print("explorer_scale: PASS")


if __name__ == "__main__":
    main()
