"""frontends_test.py — integration: a real CPython program (python_ext) and a
real JVM (jvm_agent) upload to a running contprof-explorer on 127.0.0.1; the
profile list must show both with the right facets and measures, and their
flame tables must name the functions that burned the CPU.

usage: frontends_test.py EXPLORER_BIN WORKDIR [--python PY PYTHONPATH] [--java JAVA AGENT_SO]
Standard library only. Exits 0 on success, 1 with one line per failure.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

PY_PROG = r'''
import time, contprof
contprof.start()
def py_busy_loop(seconds):
    # The wall deadline, and on a loaded machine on until the thread has had
    # half of it in CPU (at most a minute more): the answer must not depend
    # on the load.
    end, x, c0 = time.time() + seconds, 0, time.thread_time()
    while time.time() < end or (time.thread_time() - c0 < seconds / 2 and time.time() < end + 60):
        x += 1
    return x
t0 = time.thread_time_ns()
py_busy_loop(3.5)
print("CPU_NS=%d" % (time.thread_time_ns() - t0), flush=True)
contprof.stop()
'''

JAVA_PROG = r'''
public class Busy {
    static long cpuBurner(double seconds) {
        // The wall deadline, and on a loaded machine on until the thread has
        // had half of it in CPU (at most a minute more).
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        long end = System.nanoTime() + (long) (seconds * 1e9), x = 0, c0 = mx.getCurrentThreadCpuTime();
        while (System.nanoTime() < end
               || (mx.getCurrentThreadCpuTime() - c0 < (long) (seconds * 0.5e9)
                   && System.nanoTime() < end + 60_000_000_000L)) {
            x += System.identityHashCode(new Object()) & 7;
        }
        return x;
    }
    public static void main(String[] a) {
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        long t0 = mx.getCurrentThreadCpuTime();
        long x = cpuBurner(3.5);
        System.out.println("CPU_NS=" + (mx.getCurrentThreadCpuTime() - t0) + " x=" + x);
    }
}
'''

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.load(r)


def start_explorer(binary, work):
    data, port_file = os.path.join(work, "data"), os.path.join(work, "port")
    log = open(os.path.join(work, "explorer.log"), "w")
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data", data, "--port-file", port_file],
                         stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        if os.path.exists(port_file) and open(port_file).read().strip():
            return p, "http://127.0.0.1:%s" % open(port_file).read().strip()
        time.sleep(0.1)
    p.kill()
    sys.exit("explorer did not start (see %s/explorer.log)" % work)


def env_for(base, service):
    e = dict(os.environ)
    e.update(CONTPROF_AGENT_URL=base, CONTPROF_SERVICE=service, CONTPROF_ENV="itest",
             CONTPROF_VERSION="9.9", CONTPROF_UPLOAD_PERIOD="1")
    for k in ("CONTPROF_OUTPUT_DIR", "CONTPROF_API_KEY", "DD_API_KEY", "DD_TRACE_AGENT_URL", "DD_AGENT_HOST"):
        e.pop(k, None)  # only the explorer may receive these profiles
    return e


def launch(args, base, work):
    procs = {}
    if args.get("python"):
        py, path = args["python"]
        e = env_for(base, "fe-python")
        e["PYTHONPATH"] = path
        procs["fe-python"] = subprocess.Popen([py, "-c", PY_PROG], env=e, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT)
    if args.get("java"):
        java, agent = args["java"]
        src = os.path.join(work, "Busy.java")
        open(src, "w").write(JAVA_PROG)
        procs["fe-java"] = subprocess.Popen([java, "-agentpath:" + agent, src], env=env_for(base, "fe-java"),
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return procs


def rows_of(base, service):
    return get(base, "/api/profiles?service=%s&limit=1000" % service)["profiles"]


def check_service(base, service, language, func, cpu_ns):
    rows = rows_of(base, service)
    if not check(rows, "%s: no profile reached the explorer" % service):
        return
    check(all(r["language"] == language for r in rows),
          "%s: language %s, want %s" % (service, {r["language"] for r in rows}, language))
    check(all(r["env"] == "itest" and r["version"] == "9.9" for r in rows), "%s: env/version tags wrong" % service)
    check(all(r["runtime"] and r["pid"] > 0 and r["host"] for r in rows), "%s: runtime/pid/host missing" % service)
    best = max((r["cpu_cores"] or 0) for r in rows)
    check(0.05 <= best <= os.cpu_count() + 0.5, "%s: best CPU %.2f cores, want (0, %d]" % (service, best, os.cpu_count()))
    agg = get(base, "/api/aggregate/table?service=%s&type=cpu-time" % service)
    # By total time: with native frames the busy function's self time sits
    # in the natives it calls (clock reads, identityHashCode), and above it
    # are its callers (for Java the source launcher's frames): the busy
    # function must hold at least a third of the largest total.
    top = max((r["total"] for r in agg["rows"]), default=0)
    hot = max((r["total"] for r in agg["rows"] if func in r["name"]), default=0)
    names = [r["name"] for r in sorted(agg["rows"], key=lambda r: -r["total"])[:10]]
    check(top and hot >= top / 3, "%s: %s holds %.2f s of cpu-time, under a third of the largest total "
          "(%.2f s; top by total: %s)" % (service, func, hot / 1e9, top / 1e9, names))
    # The truth: the busy thread's own CPU clock, printed by the program.
    # Its function's cpu-time summed over all profiles must match it.
    seen = sum(r["total"] for r in agg["rows"] if func in r["name"])
    check(cpu_ns and 0.6 <= seen / cpu_ns <= 1.4,
          "%s: %s cpu-time %.2f s in the explorer vs %.2f s measured by the thread" %
          (service, func, seen / 1e9, (cpu_ns or 0) / 1e9))
    prof = get(base, "/api/profiles/%d/flame?type=cpu-time" % rows[0]["id"])
    check(prof["total"] > 0 or len(rows) > 1, "%s: empty cpu flame graph" % service)


def check_facets(base, expected):
    facets = get(base, "/api/profiles?env=itest")["facets"]
    langs = {f["value"]: f["count"] for f in facets["language"]}
    services = {f["value"]: f["count"] for f in facets["service"]}
    for service, language in expected:
        check(services.get(service, 0) >= 1, "facet service:%s missing (%s)" % (service, services))
        check(langs.get(language, 0) >= 1, "facet language:%s missing (%s)" % (language, langs))


def main(argv):
    binary, work = argv[1], argv[2]
    args, i = {}, 3
    while i < len(argv):
        args[argv[i].lstrip("-")] = (argv[i + 1], argv[i + 2])
        i += 3
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    explorer, base = start_explorer(binary, work)
    try:
        procs = launch(args, base, work)
        cpu = {}
        for name, p in procs.items():
            out, _ = p.communicate(timeout=150)
            check(p.returncode == 0, "%s exited %s: %s" % (name, p.returncode, out.decode()[-500:]))
            m = re.search(rb"CPU_NS=(\d+)", out)
            cpu[name] = int(m.group(1)) if m else 0
        expected = [e for e in (("fe-python", "python", "py_busy_loop"), ("fe-java", "jvm", "cpuBurner"))
                    if e[0] in procs]
        for service, language, func in expected:
            check_service(base, service, language, func, cpu.get(service))
        check_facets(base, [(s, l) for s, l, _ in expected])
        check(explorer.poll() is None, "the explorer died")
    finally:
        explorer.send_signal(signal.SIGTERM)
        explorer.wait(timeout=10)
    for f in failures:
        print("FAIL:", f)
    print("frontends: %s (%s)" % ("FAIL" if failures else "PASS", ", ".join(sorted(procs))))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
