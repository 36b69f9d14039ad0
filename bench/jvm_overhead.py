#!/usr/bin/env python3
"""jvm_overhead.py — overhead of the contprof JVM agent next to JFR.

For each JDK and workload (CPU-bound, allocation-heavy; fixed work, about
10 s each) it runs, round robin so that machine noise hits all alike:
  base   plain java
  agent  -agentpath:libcontprof_jvm.so at default settings (files in a tmp dir)
  agent-noev  the same with lock_enabled=false,exception_enabled=false
  jfr    -XX:StartFlightRecording=settings=profile (the in-box reference)
(with --native instead: base, agent, and agent-nonative, the agent with
native_frames=false: no native frames, no CPU samples of JIT, GC and VM
threads) and reports, relative to base: median and min-run ratios of process CPU
time (user+sys of the whole JVM) and of wall time, RSS added (median of max
RSS), and the agent's own overhead estimate from its runtime info.

and, for each --compare NAME=OPTIONS, one more variant: java with those JVM
options (space-separated; {out} becomes a file in the work dir), e.g. another
profiler's agent at its own defaults, measured in the same rounds.

usage: jvm_overhead.py --agent LIB [--jdk HOME]... [--rounds N] [--work DIR] [--quick] [--workloads cpu,alloc,exc]
                       [--native] [--compare NAME=OPTIONS]...
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_JDKS = ["/usr/lib/jvm/java-17-openjdk-amd64", "/usr/lib/jvm/temurin-25-jdk-amd64"]
WORKLOADS = {"cpu": "1700", "alloc": "2300", "exc": "10"}  # ~10 s of CPU each here
HEAP = ["-Xms256m", "-Xmx256m"]  # fixed heap: GC sizing noise would swamp the signal


def run(cmd):
    """Run cmd; return (cpu_s, wall_s, maxrss_mib)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("benchmark run failed: %s\n%s" % (" ".join(cmd), err))
    return ru.ru_utime + ru.ru_stime, wall, ru.ru_maxrss / 1024.0


def self_overhead(outdir):
    """The agent's own estimate (percent of process CPU) from its last profile."""
    pcts = []
    for f in sorted(glob.glob(os.path.join(outdir, "*.json"))):
        with open(f) as fh:
            m = json.load(fh).get("info", {}).get("metrics", {})
        if "profile_cpu_ns" in m and m["profile_cpu_ns"] > 0:
            pcts.append((m.get("profiler_cpu_ns", 0) + m.get("hook_ns", 0)) * 100.0 / m["profile_cpu_ns"])
    return statistics.mean(pcts) if pcts else float("nan")


def variants(jdk, agent, work, wl, native=False, compare=()):
    java = os.path.join(jdk, "bin", "java")
    base = [java] + HEAP
    tail = ["-cp", os.path.join(work, "classes"), "Workload", wl, WORKLOADS[wl]]
    out = os.path.join(work, "agent-out")
    jfr = "-XX:StartFlightRecording=settings=profile,filename=%s" % os.path.join(work, "rec.jfr")
    if native:
        v = {
            "base": base + tail,
            "agent": base + ["-agentpath:%s=output_dir=%s" % (agent, out)] + tail,
            "agent-nonative": base + ["-agentpath:%s=output_dir=%s,native_frames=false" % (agent, out)] + tail,
        }
    else:
        v = {
        "base": base + tail,
        "agent": base + ["-agentpath:%s=output_dir=%s" % (agent, out)] + tail,
        # the agent without its lock and exception profiles: their own cost
        "agent-noev": base + ["-agentpath:%s=output_dir=%s,lock_enabled=false,exception_enabled=false"
                              % (agent, out)] + tail,
        "jfr": base + [jfr] + tail,
        }
    for name, opts in compare:
        v[name] = base + [o.replace("{out}", os.path.join(work, name + ".out")) for o in opts.split()] + tail
    return v, out


def bench_one(jdk, agent, work, wl, rounds, native=False, compare=()):
    cmds, out = variants(jdk, agent, work, wl, native, compare)
    res = {k: [] for k in cmds}
    selfs = []
    for r in range(rounds):
        order = list(cmds) if r % 2 == 0 else list(reversed(list(cmds)))
        for name in order:
            shutil.rmtree(out, ignore_errors=True)
            res[name].append(run(cmds[name]))
            if name == "agent":
                selfs.append(self_overhead(out))
    return res, selfs


def ratio_line(res, name, base="base"):
    b, v = res[base], res[name]
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    mn = lambda xs, i: min(x[i] for x in xs)
    return ("cpu x%.4f (min-run x%.4f)  wall x%.4f (min-run x%.4f)  rss +%.1f MiB"
            % (med(v, 0) / med(b, 0), mn(v, 0) / mn(b, 0), med(v, 1) / med(b, 1),
               mn(v, 1) / mn(b, 1), med(v, 2) - med(b, 2)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--jdk", action="append")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", default="/tmp/contprof-jvm-bench")
    ap.add_argument("--quick", action="store_true", help="tiny runs: checks the script, measures nothing")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset")
    ap.add_argument("--scale", action="append", default=[], metavar="WL=N", help="another SCALE for a workload")
    ap.add_argument("--native", action="store_true", help="native_frames on (the default) against off")
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=OPTIONS",
                    help="one more variant: java with these JVM options ({out}: a file in the work dir)")
    a = ap.parse_args()
    compare = []
    for kv in a.compare:
        name, sep, opts = kv.partition("=")
        if not sep or not name or name in ("base", "agent", "agent-noev", "agent-nonative", "jfr"):
            sys.exit("jvm_overhead.py: --compare wants NAME=OPTIONS with a new NAME, got %r" % kv)
        compare.append((name, opts))
    if a.quick:
        for wl in WORKLOADS:
            WORKLOADS[wl] = "1" if wl == "exc" else "20"
    for kv in a.scale:
        wl, n = kv.split("=", 1)
        WORKLOADS[wl] = n
    jdks = [j for j in (a.jdk or DEFAULT_JDKS) if os.path.exists(os.path.join(j, "bin", "java"))]
    os.makedirs(a.work, exist_ok=True)
    subprocess.check_call([os.path.join(jdks[0], "bin", "javac"), "--release", "17", "-d",
                           os.path.join(a.work, "classes"), os.path.join(HERE, "jvm_overhead", "Workload.java")])
    for jdk in jdks:
        for wl in a.workloads.split(","):
            res, selfs = bench_one(jdk, a.agent, a.work, wl, a.rounds, a.native, compare)
            b = res["base"]
            print("%s %s: base cpu %.2fs wall %.2fs rss %.0f MiB (median of %d)"
                  % (os.path.basename(jdk), wl, statistics.median(x[0] for x in b),
                     statistics.median(x[1] for x in b), statistics.median(x[2] for x in b), a.rounds))
            print("  agent  " + ratio_line(res, "agent") +
                  "  self-measured %.2f%%" % statistics.median(selfs))
            if a.native:
                print("  agent-nonative  " + ratio_line(res, "agent-nonative"))
                print("  agent vs agent-nonative (native frames' own cost)  " +
                      ratio_line(res, "agent", "agent-nonative"))
            else:
                print("  agent, lock+exception profiles off  " + ratio_line(res, "agent-noev"))
                print("  jfr    " + ratio_line(res, "jfr"))
            for name, _ in compare:
                print("  %s  " % name + ratio_line(res, name))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
