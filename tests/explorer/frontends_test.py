"""frontends_test.py — integration: a real CPython program (python_ext) and a
real JVM (jvm_agent) upload to a running contprof-explorer on 127.0.0.1; the
profile list must show both with the right facets and measures, and their
flame tables must name the functions that burned the CPU, waited for a lock
(named) and threw (typed); a real browser (chromium through playwright-core,
browser/frontends.browser.js) must show those lock-wait and exception
profile types for both and draw the functions in them.

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
import threading, time, contprof
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
# Lock waits and exceptions, side by side for 2.5 s (profiles last 1 s).
fe_guard = threading.Lock()
def py_contend(end):
    while time.time() < end:
        with fe_guard:
            time.sleep(0.002)
def py_thrower(end):
    n = 0
    while time.time() < end:
        try:
            raise ValueError(n)
        except ValueError:
            n += 1
        if n % 50 == 0:
            time.sleep(0.001)
end = time.time() + 2.5
ts = [threading.Thread(target=py_contend, args=(end,)) for _ in range(2)]
ts.append(threading.Thread(target=py_thrower, args=(end,)))
for t in ts:
    t.start()
for t in ts:
    t.join()
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
    static final class FeGuard {}
    static final FeGuard GUARD = new FeGuard();
    static void contend(long end) {
        while (System.nanoTime() < end) {
            synchronized (GUARD) {
                long t = System.nanoTime() + 2_000_000L;
                while (System.nanoTime() < t) { }
            }
        }
    }
    static long thrower(long end) {
        long n = 0;
        while (System.nanoTime() < end) {
            try {
                throw new IllegalStateException("n=" + n);
            } catch (IllegalStateException e) {
                n++;
            }
            if (n % 50 == 0) {
                try { Thread.sleep(1); } catch (InterruptedException e) { return n; }
            }
        }
        return n;
    }
    public static void main(String[] a) throws Exception {
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        long t0 = mx.getCurrentThreadCpuTime();
        long x = cpuBurner(3.5);
        System.out.println("CPU_NS=" + (mx.getCurrentThreadCpuTime() - t0) + " x=" + x);
        // Monitor contention and exceptions, side by side for 2.5 s.
        long end = System.nanoTime() + 2_500_000_000L;
        Thread[] ts = {new Thread(() -> contend(end)), new Thread(() -> contend(end)), new Thread(() -> thrower(end))};
        for (Thread t : ts) t.start();
        for (Thread t : ts) t.join();
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


def check_events(base, service, lock_fn, lock_name, exc_fn, exc_type):
    """The lock-wait and exception profile types reached the explorer with
    the contending and throwing functions, the lock's name and the
    exception's type. Returns the id of a profile holding both, or None."""
    rows = rows_of(base, service)
    typed = [r["id"] for r in rows if {"lock-acquire-wait", "exception-samples"} <= set(r.get("types") or [])]
    total = lambda pid, typ: get(base, "/api/profiles/%d/flame?type=%s" % (pid, typ))["total"]
    both = [pid for pid in typed if total(pid, "lock-acquire-wait") > 0 and total(pid, "exception-samples") > 0]
    if not check(both, "%s: no profile has both lock-acquire-wait and exception-samples samples (%d have the "
                 "types)" % (service, len(typed))):
        return None
    # The one the browser is to show must hold the two functions: a JVM's
    # first profile can have only class-loading lock waits (the source
    # launcher compiling) and an exception thrown on the way.
    holds = lambda rows, fn: any(fn in r["name"] and r["total"] > 0 for r in rows)
    has = lambda pid, typ, fn: holds(get(base, "/api/profiles/%d/table?type=%s" % (pid, typ))["rows"], fn)
    shown = [pid for pid in both if has(pid, "lock-acquire-wait", lock_fn) and has(pid, "exception-samples", exc_fn)]
    if not check(shown, "%s: no profile holds both %s lock waits and %s exceptions (%d have samples of "
                 "both types)" % (service, lock_fn, exc_fn, len(both))):
        return None
    for typ, fn in (("lock-acquire-wait", lock_fn), ("exception-samples", exc_fn)):
        agg = get(base, "/api/aggregate/table?service=%s&type=%s" % (service, typ))
        names = [r["name"] for r in sorted(agg["rows"], key=lambda r: -r["total"])[:10]]
        check(holds(agg["rows"], fn),
              "%s: %s not in the %s table (top: %s)" % (service, fn, typ, names))
    labels = {}
    for pid in both:
        for lab in get(base, "/api/profiles/%d/labels" % pid)["labels"]:
            labels.setdefault(lab["key"], set()).update(v["value"] for v in lab["values"])
    check(any(lock_name in v for v in labels.get("lock name", ())),
          "%s: lock name %s missing (%s)" % (service, lock_name, sorted(labels.get("lock name", ()))))
    check(any(exc_type in v for v in labels.get("exception type", ())),
          "%s: exception type %s missing (%s)" % (service, exc_type, sorted(labels.get("exception type", ()))))
    return shown[-1]


def node_modules(work):
    """playwright-core for the browser check: a node_modules beside the
    browser tests (developer checkouts), else `npm ci` from the committed
    lockfile into work/npm (no browser download: Debian's chromium)."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser")
    if os.path.isdir(os.path.join(here, "node_modules", "playwright-core")):
        return os.path.join(here, "node_modules")
    npm = os.path.join(work, "npm")
    os.makedirs(npm, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(here, f), npm)
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=npm, timeout=120,
                       env=dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(r.returncode == 0, "npm ci for playwright-core failed: %s" % r.stdout.decode()[-300:])
    return os.path.join(npm, "node_modules")


def check_in_browser(base, work, cases):
    """A real browser (chromium, playwright-core) shows each real profile's
    lock-wait and exception types, and draws the functions in them."""
    chromium = os.environ.get("CONTPROF_CHROMIUM", "/usr/bin/chromium")
    if not check(os.access(chromium, os.X_OK) and shutil.which("node"),
                 "chromium (%s) or node missing: apt-get install chromium nodejs npm" % chromium):
        return
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser", "frontends.browser.js")
    art = os.path.join(work, "artifacts")
    os.makedirs(art, exist_ok=True)
    env = dict(os.environ, NODE_PATH=node_modules(work), EXPLORER_URL=base, CHROMIUM=chromium,
               ARTIFACTS=art, USER_DATA_DIR=os.path.join(work, "chromium-profile"), CASES=json.dumps(cases))
    r = subprocess.run(["node", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = r.stdout.decode(errors="replace")
    sys.stdout.write(out)
    check(r.returncode == 0, "browser check failed: %s" % out.strip().splitlines()[-1:])


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
        events = {"fe-python": ("py_contend", "fe_guard", "py_thrower", "ValueError"),
                  "fe-java": ("contend", "FeGuard", "thrower", "IllegalStateException")}
        cases = []
        for service, _, _ in expected:
            pid = check_events(base, service, *events[service])
            if pid is not None:
                cases.append({"service": service, "id": pid, "lockFn": events[service][0],
                              "excFn": events[service][2]})
        if cases:
            check_in_browser(base, work, cases)
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
