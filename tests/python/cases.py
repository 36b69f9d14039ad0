"""End-to-end cases for the contprof CPython front end. Each case_* writes
a small program, runs it with the interpreter under test, and asserts on
the real pprof output (decoded by pprof.py) or on the program's behaviour.
"""
import json
import textwrap
import glob
import os
import sys

START = 'import contprof; contprof.start(output_dir="profiles", upload_period=1%s)\n'


def start(extra=""):
    return START % extra


def prog(body, extra=""):
    """A program that starts contprof (test settings) and then runs body."""
    return start(extra) + textwrap.dedent(body)


def share(m, type_name, a, b, **kw):
    va, vb = m.total(type_name, a, **kw), m.total(type_name, b, **kw)
    return (100.0 * va / (va + vb) if va + vb else -1.0), va, vb


# ---- known answers ------------------------------------------------------

def case_cpu_ratio(t):
    t.write("prog.py", prog("""
        import time
        def work(n):
            s = 0
            for i in range(n):
                s += i * i
            return s
        def heavy():
            return work(30000)
        def light():
            return work(10000)
        def loop():
            # leaf frames are 'work'; attribute by caller (inclusive). The
            # clock is read rarely: a syscall exit is where a loaded kernel
            # preempts, which would pile samples onto loop().
            end = time.process_time() + 2.5
            while time.process_time() < end:
                for _ in range(20):
                    heavy(); light()
        loop()
        contprof.stop()
    """, ", cpu_interval_us=2000"))
    t.run(["prog.py"])
    m = t.prof()
    pct, a, b = share(m, "cpu-time", "heavy", "light", inclusive=True)
    t.note("heavy %.1f%% of heavy+light CPU (%.2f s total)", pct, (a + b) / 1e9)
    t.check(a + b > 1.5e9, "too little CPU recorded: %d ns", a + b)
    t.check(68 <= pct <= 82, "heavy got %.1f%% of heavy+light CPU, expected 75 +- 7", pct)


def case_alloc_ratio(t):
    t.write("prog.py", prog("""
        def big():
            return [bytes(1000) for _ in range(4)]
        def small():
            return [bytes(1000)]
        for _ in range(25000):
            big(); small()
        contprof.stop()
    """, ", alloc_interval_bytes=65536"))
    t.run(["prog.py"])
    m = t.prof()
    pct, a, b = share(m, "alloc-space", "big", "small", inclusive=True)
    t.check(a + b > 50e6, "alloc-space estimate too low: %d bytes (real ~125 MB)", a + b)
    t.check(72 <= pct <= 88, "big got %.1f%% of alloc-space, expected 80 +- 8", pct)
    total = m.total("alloc-space")
    t.note("big %.1f%% of big+small alloc-space; total estimate %.0f MB (real ~125 MB + overhead)",
           pct, total / 1e6)
    t.check(0.5 * 125e6 <= total <= 2.0 * 125e6, "total alloc-space %d is not ~125 MB", total)


def case_wall_sleep_names(t):
    t.write("prog.py", prog("""
        import threading, time
        def sleeper():
            time.sleep(1.5)
        def burn():
            end = time.process_time() + 1.0
            while time.process_time() < end:
                sum(i for i in range(1000))
        th = threading.Thread(target=sleeper, name="sleepy-worker")
        th.start()
        burn()
        th.join()
        contprof.stop()
    """))
    t.run(["prog.py"])
    m = t.prof()
    names = m.label_values("thread name")
    t.check("sleepy-worker" in names and "MainThread" in names, "thread names missing: %s", names)
    is_sleepy = lambda st, lab: lab.get("thread name") == "sleepy-worker"
    wall = m.total("wall-time", where=is_sleepy)
    cpu = m.total("cpu-time", where=is_sleepy)
    t.check(wall >= 1.0e9, "sleeping thread wall time %d ns < 1 s", wall)
    t.check(cpu <= 0.05 * wall, "sleeping thread got CPU %d ns", cpu)
    t.check(m.total("wall-time", "sleeper", inclusive=True) >= 1.0e9, "wall not charged to sleeper()")
    t.check(m.total("cpu-time", "burn", inclusive=True) >= 0.6e9, "burn() CPU too low")
    ids = m.label_values("thread native id")
    t.check(len(ids) >= 2, "native ids missing: %s", ids)


def case_heap_live(t):
    t.write("prog.py", prog("""
        kept = []
        def keep():
            kept.append(bytearray(10000))
        def churn():
            x = bytearray(10000)
            del x
        for _ in range(5000):
            keep()
            churn(); churn(); churn()
        contprof.stop()
        print(len(kept))
    """, ", alloc_interval_bytes=65536"))
    t.run(["prog.py"])
    m = t.prof()
    keep = m.total("heap-space", "keep", inclusive=True)
    churn = m.total("heap-space", "churn", inclusive=True)
    t.note("heap-space keep() %.1f MB (real 50 MB), churn() %.1f MB (real 0)", keep / 1e6, churn / 1e6)
    t.check(25e6 <= keep <= 100e6, "heap-space of keep() = %d, expected ~50 MB", keep)
    t.check(churn <= 0.05 * keep, "freed objects still in heap: churn %d vs keep %d", churn, keep)
    t.check(m.total("alloc-space", "churn", inclusive=True) > keep, "churn allocations not seen")


# ---- must hold ----------------------------------------------------------

def events(t, sub="profiles"):
    out = []
    for f in sorted(glob.glob(os.path.join(t.tmp, sub, "*.json"))):
        with open(f) as fh:
            out.append(json.load(fh))
    return out


def tags_of(ev):
    return dict(kv.split(":", 1) for kv in ev["tags_profiler"].split(",") if ":" in kv)


def case_threads(t):
    t.write("prog.py", """
        import threading, time
        # thread_time, not process_time: the main thread spawns 300 threads
        # meanwhile, and each worker must burn its own CPU, not a share.
        # early exists (and runs) before start(), but does its measured work
        # only once profiling is on: importing contprof can take a large
        # part of 0.6 s on slow interpreters.
        go = threading.Event()
        def early_worker():
            go.wait()
            end = time.thread_time() + 0.6
            while time.thread_time() < end:
                sum(range(500))
        early = threading.Thread(target=early_worker, name="early")
        early.start()  # before start()
        import contprof
        contprof.start(output_dir="profiles", upload_period=1)
        go.set()
        def short_task(i):
            return sum(range(i * 10))
        results = []
        for batch in range(10):
            ts = [threading.Thread(target=lambda i=i: results.append(short_task(i)), name="short-%d" % i)
                  for i in range(30)]
            for th in ts: th.start()
            for th in ts: th.join()
        def late_worker():
            end = time.thread_time() + 0.5
            while time.thread_time() < end:
                sum(range(500))
        late = threading.Thread(target=late_worker, name="late")
        late.start(); late.join(); early.join()
        def short_burn():
            t_end = time.thread_time() + 0.02
            while time.thread_time() < t_end:
                sum(range(200))
        for batch in range(10):
            ts = [threading.Thread(target=short_burn) for _ in range(4)]
            for th in ts: th.start()
            for th in ts: th.join()
        contprof.stop()
        print(len(results))
    """)
    r = t.run(["prog.py"])
    t.check(r.stdout.strip() == "300", "short-lived threads lost results: %r", r.stdout)
    m = t.prof()
    names = m.label_values("thread name")
    t.check({"early", "late"} <= names, "thread names: %s", sorted(names)[:10])
    for fn in ("early_worker", "late_worker"):
        t.check(m.total("cpu-time", fn, inclusive=True) > 0.2e9, "%s CPU missing", fn)
    # A dead thread's ident is reused by the next short thread while its
    # last samples are still being resolved: names must follow the sample.
    for fn, want in (("early_worker", "early"), ("late_worker", "late")):
        wrong = {labels.get("thread name") for stack, _, labels in m.rows("wall-time")
                 if any(f[0] == fn for f in stack)} - {want}
        t.check(not wrong, "%s samples labelled %s", fn, sorted(map(str, wrong)))
    # 40 threads of 20 ms CPU each, none alive for long: their CPU counts
    short = m.total("cpu-time", "short_burn", inclusive=True)
    t.note("short-lived threads: %.2f s of 0.8 s CPU", short / 1e9)
    t.check(short > 0.4e9, "short-lived threads' CPU lost: %.2f s of 0.8 s", short / 1e9)


def case_fork(t):
    t.write("prog.py", prog("""
        import os, sys
        def child_work():
            end = __import__("time").process_time() + 0.5
            while __import__("time").process_time() < end:
                sum(range(300))
        pid = os.fork()
        if pid == 0:
            child_work()
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        contprof.stop()
        print(pid, os.getpid(), status)
    """))
    r = t.run(["prog.py"], timeout=30)
    child, parent, status = r.stdout.split()
    t.check(status == "0", "child exit status %s", status)
    evs = events(t)
    pids = {tags_of(e)["process_id"] for e in evs}
    t.check({child, parent} <= pids, "profiles for pids %s, expected %s and %s", pids, child, parent)
    rid = {tags_of(e)["process_id"]: tags_of(e)["runtime-id"] for e in evs}
    t.check(rid[child] != rid[parent], "child kept the parent's runtime-id")
    m = t.prof(pattern="*.%s.*.pprof.gz" % child)
    t.check(m.total("cpu-time", "child_work", inclusive=True) > 0.2e9, "child CPU not profiled")


def case_multiprocessing(t):
    t.write("prog.py", prog("""
        import multiprocessing as mp, os, time
        def work(q):
            end = time.process_time() + 0.4
            while time.process_time() < end:
                sum(range(300))
            q.put(os.getpid())
        if __name__ == "__main__":
            pids = []
            for method in ("fork", "spawn"):
                ctx = mp.get_context(method)
                q = ctx.Queue()
                p = ctx.Process(target=work, args=(q,))
                p.start()
                pids.append(q.get(timeout=30))
                p.join(30)
                assert p.exitcode == 0, p.exitcode
            contprof.stop()
            print(*pids)
    """))
    r = t.run(["prog.py"], timeout=60)
    fork_pid, spawn_pid = r.stdout.split()
    pids = {tags_of(e)["process_id"] for e in events(t)}
    for kind, pid in (("fork", fork_pid), ("spawn", spawn_pid)):
        t.check(pid in pids, "no profile from the %s child %s (have %s)", kind, pid, pids)
        m = t.prof(pattern="*.%s.*.pprof.gz" % pid)
        t.check(m.total("cpu-time", "work", inclusive=True) > 0.1e9, "%s child CPU missing", kind)


def case_asyncio(t):
    t.write("prog.py", prog("""
        import asyncio, time
        async def crunch(n):
            total = 0
            for _ in range(n):
                total += sum(range(2000))
                await asyncio.sleep(0)
            return total
        async def idle():
            await asyncio.sleep(0.3)
            return 1
        async def main():
            r = await asyncio.gather(crunch(1500), crunch(1500), idle())
            return r
        print(asyncio.run(main())[2])
        contprof.stop()
    """))
    r = t.run(["prog.py"])
    t.check(r.stdout.strip() == "1", "asyncio result changed: %r", r.stdout)
    t.check(t.prof().total("cpu-time", "crunch", inclusive=True) > 0, "coroutine not in CPU profile")


def expect_ok(t, what):
    """Run prog.py, which asserts its own behaviour and prints ok."""
    r = t.run(["prog.py"], check_rc=None)
    t.check(r.returncode == 0 and r.stdout.strip() == "ok", "%s: %s", what, r.stderr[-800:])


def case_no_eintr(t):
    t.write("prog.py", prog("""
        import os, select, signal, socket, threading, time
        stop = False
        def burn():
            while not stop:
                sum(range(1000))
        ths = [threading.Thread(target=burn, daemon=True) for _ in range(2)]
        for th in ths: th.start()
        hits = []
        signal.signal(signal.SIGUSR1, lambda s, f: hits.append(s))
        def timed(fn, want):
            t0 = time.monotonic(); fn(); dt = time.monotonic() - t0
            assert dt >= want * 0.95, (fn, dt)
        for _ in range(3):
            timed(lambda: time.sleep(0.2), 0.2)
            r, w = os.pipe()
            timed(lambda: select.select([r], [], [], 0.2), 0.2)
            p = select.poll(); p.register(r, select.POLLIN)
            timed(lambda: p.poll(200), 0.2)
            a, b = socket.socketpair(); a.settimeout(0.2)
            try:
                a.recv(10)
            except socket.timeout:
                pass
            b.send(b"x"); assert a.recv(10) == b"x"
            os.close(r); os.close(w); a.close(); b.close()
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.05)
        assert hits == [signal.SIGUSR1], hits
        # Our native threads must never be able to take a process signal.
        py = {th.native_id for th in threading.enumerate()}
        for tid in os.listdir("/proc/self/task"):
            if int(tid) in py:
                continue
            with open("/proc/self/task/%s/status" % tid) as fh:
                blk = [l for l in fh if l.startswith("SigBlk")][0].split()[1]
            assert int(blk, 16) & (1 << (signal.SIGUSR1 - 1)), ("unblocked", tid, blk)
        stop = True
        contprof.stop()
        print("ok")
    """))
    expect_ok(t, "behaviour changed")


def case_tracing_hooks(t):
    t.write("prog.py", prog("""
        import sys, threading, tracemalloc
        def target(): return 1
        calls = []
        def prof(frame, event, arg):
            if event == "call" and frame.f_code.co_name == "target":
                calls.append(1)
        sys.setprofile(prof)
        for _ in range(100): target()
        sys.setprofile(None)
        lines = []
        def tracer(frame, event, arg):
            if event == "call" and frame.f_code.co_name == "target":
                lines.append(1)
            return None
        sys.settrace(tracer)
        for _ in range(50): target()
        sys.settrace(None)
        assert (len(calls), len(lines)) == (100, 50), (len(calls), len(lines))
        tracemalloc.start()
        def alloc_here():
            return [bytearray(1000) for _ in range(2000)]
        keep = alloc_here()
        snap = tracemalloc.take_snapshot()
        stats = [s for s in snap.statistics("lineno") if s.traceback[0].filename == __file__]
        assert stats and stats[0].size >= 2000 * 1000, stats[:3]
        contprof.stop()          # tracemalloc wrapped us: we must stay a pass-through
        more = [bytearray(1000) for _ in range(1000)]
        snap2 = tracemalloc.take_snapshot()
        assert sum(s.size for s in snap2.statistics("filename")) > sum(s.size for s in stats), "tracemalloc broken"
        tracemalloc.stop()
        del keep, more
        contprof.start(output_dir="profiles2", upload_period=1)
        tracemalloc.start(); tracemalloc.stop()
        contprof.stop()
        print("ok")
    """))
    expect_ok(t, "tracing hooks broken")


def case_restart(t):
    t.write("prog.py", prog("""
        import time
        def first():
            end = time.process_time() + 0.4
            while time.process_time() < end: sum(range(300))
        def second():
            end = time.process_time() + 0.4
            while time.process_time() < end: sum(range(300))
        first()
        contprof.stop()
        contprof.start(output_dir="profiles", upload_period=1)
        second()
        contprof.stop()
        contprof.stop()  # idempotent
    """))
    t.run(["prog.py"])
    m = t.prof()
    for fn in ("first", "second"):
        t.check(m.total("cpu-time", fn, inclusive=True) > 0.15e9, "%s() missing after restart", fn)


def case_shutdown_threads(t):
    t.write("prog.py", prog("""
        import threading, time
        def forever():
            while True:
                sum(range(1000))
        def finishing():
            time.sleep(0.3)
        threading.Thread(target=forever, name="spinner", daemon=True).start()
        threading.Thread(target=finishing).start()
        time.sleep(0.5)
        # no stop(): the atexit hook flushes while "spinner" still runs
    """))
    t.run(["prog.py"], timeout=30)
    t.check(t.prof().total("cpu-time", "forever") > 0, "daemon thread not profiled")


# ---- CLI and settings ---------------------------------------------------

def case_cli_passthrough(t):
    t.write("app.py", """
        import sys
        def fail():
            raise ValueError("boom from app")
        print("argv=%r main=%s" % (sys.argv, __name__))
        if sys.argv[1:] == ["raise"]:
            fail()
        sys.exit(int(sys.argv[1]) if sys.argv[1:] else 0)
    """)
    t.write("pkg/__init__.py", "")
    t.write("pkg/tool.py", """
        import sys
        print("tool argv=%r main=%s" % (sys.argv[1:], __name__))
        sys.exit(4)
    """)
    r = t.run(["-m", "contprof", "--upload-period=1", "app.py", "3", "--flag"], check_rc=3)
    t.check("argv=['app.py', '3', '--flag'] main=__main__" in r.stdout, "argv changed: %r", r.stdout)
    lines = [l for l in r.stderr.splitlines() if "go tool pprof -top" in l]
    t.check(len(lines) == 1 and "profiles" in lines[0], "exit line: %r", r.stderr)
    t.check(os.listdir(os.path.join(t.tmp, "profiles")), "no ./profiles")
    r = t.run(["-m", "contprof", "app.py", "raise"], check_rc=1)
    tb = r.stderr[r.stderr.index("Traceback"):]
    t.check('File "' in tb and "contprof" not in tb.split("ValueError")[0] and "runpy" not in tb,
            "traceback not like a plain run: %s", tb)
    t.check("ValueError: boom from app" in tb, "exception lost: %s", tb)
    t.write("ki.py", "raise KeyboardInterrupt\n")
    plain = t.run(["ki.py"], check_rc=None).returncode
    t.run(["-m", "contprof", "ki.py"], check_rc=plain)  # dies of SIGINT like python
    r = t.run(["-m", "contprof", "-m", "pkg.tool", "a", "-b"], check_rc=4)
    t.check("tool argv=['a', '-b'] main=__main__" in r.stdout, "-m argv: %r", r.stdout)


def case_cli_help(t):
    r = t.run(["-m", "contprof", "--help"])
    t.run(["-c", "import contprof, json; print(json.dumps([s['name'] for s in contprof.settings()]))"])
    names = json.loads(t.log[-1].split("--- stdout\n")[1].split("--- stderr")[0])
    t.check(len(names) > 10, "settings table too small: %s", names)
    for n in names:
        t.check("--" + n.replace("_", "-") in r.stdout, "--help does not document %s", n)


def case_bad_setting(t):
    t.write("prog.py", prog("""
        print("ran", sum(range(10)))
        contprof.stop()
    """, ", cpu_interval_us='fast', max_frames=100000"))
    r = t.run(["prog.py"], env={"CONTPROF_UPLOAD_PERIOD": "often"})
    t.check(r.stdout.strip() == "ran 45", "program did not run on: %r", r.stdout)
    for name in ("cpu_interval_us", "max_frames", "upload_period"):
        t.check(sum(name in l for l in r.stderr.splitlines()) == 1, "no single warning for %s: %s", name, r.stderr)
    t.prof()


def case_config_precedence(t):
    t.write("contprof.ini", """
        [contprof]
        service = fromini
        env = fromini
        version = fromini
        upload_period = 1
        output_dir = profiles
    """)
    t.write("prog.py", """
        import contprof
        contprof.start(version="fromopt")
        contprof.stop()
    """)
    t.run(["prog.py"], env={"CONTPROF_ENV": "fromenv", "DD_VERSION": "fromdd"})
    tags = tags_of(events(t)[-1])
    t.check((tags.get("service"), tags.get("env"), tags.get("version")) == ("fromini", "fromenv", "fromopt"),
            "precedence wrong: %s", tags)
    t.check(tags.get("language") == "python" and tags.get("runtime") == "CPython", "tags: %s", tags)
    t.check(tags.get("runtime_version") == "%d.%d.%d" % sys.version_info[:3], "runtime_version: %s", tags)
    os.remove(os.path.join(t.tmp, "contprof.ini"))
    t.write("custom.ini", "[contprof]\nservice = fromcustom\noutput_dir = p2\n")
    t.run(["prog.py"], env={"CONTPROF_CONFIG": "custom.ini"})
    t.check(tags_of(events(t, "p2")[-1]).get("service") == "fromcustom", "CONTPROF_CONFIG ignored")
    if sys.version_info >= (3, 11):
        t.write("pyproject.toml", '[tool.contprof]\nservice = "fromtoml"\noutput_dir = "p3"\n')
        t.run(["prog.py"])
        t.check(tags_of(events(t, "p3")[-1]).get("service") == "fromtoml", "pyproject.toml ignored")
    ev = events(t, "p2")[-1]
    for key in ("implementation", "version", "executable", "argv", "platform", "flags",
                "gc_thresholds", "gc_counts", "thread_count", "loaded_modules", "settings"):
        t.check(key in ev["info"], "runtime info lacks %s", key)


def case_frames(t):
    t.write("prog.py", prog("""
        import time
        class Worker:
            def run(self):
                end = time.process_time() + 0.4
                while time.process_time() < end:
                    sum(range(200))
        def deep(n):
            if n == 0:
                end = time.process_time() + 0.3
                while time.process_time() < end:
                    sum(range(200))
                return
            deep(n - 1)
        Worker().run()
        deep(100)
        contprof.stop()
    """, ", max_frames=32"))
    t.run(["prog.py"])
    m = t.prof()
    run = [st for st, v, lab in m.rows("cpu-time") if st and st[0][0] == "Worker.run"]
    t.check(run, "no 'Worker.run' leaf frame (qualified names)")
    t.check(run[0][0][1].endswith("prog.py") and run[0][0][2] > 0, "file/line missing: %s", run[0][0])
    deep = [st for st, v, lab in m.rows("cpu-time") if st and st[0][0] == "deep"]
    t.check(deep, "no deep() samples")
    st = deep[0]
    t.check(len(st) == 32, "truncated stack has %d frames, expected max_frames=32", len(st))
    t.check(st[-1][0].startswith("<") and "frames omitted" in st[-1][0], "no omitted marker: %s", st[-1])


def case_demo(t):
    demo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "demo", "python", "app.py")
    r = t.run(["-m", "contprof", demo], env={"DEMO_SECONDS": "3"})
    t.check(r.stdout.startswith("served "), "demo output: %r", r.stdout)
    t.check("go tool pprof -top" in r.stderr and "render_page" in r.stderr, "exit report: %s", r.stderr)
    m = t.prof()
    poller = lambda st, lab: lab.get("thread name") == "db-poller"
    t.check(m.total("wall-time", where=poller) > 2e9, "db-poller wall time missing")
    t.check(m.total("cpu-time", where=poller) < 0.2 * m.total("wall-time", where=poller), "db-poller CPU too high")
    pct, a, b = share(m, "cpu-time", "render_page", "parse_request", inclusive=True)
    t.check(50 <= pct <= 85, "render_page vs parse_request CPU split %.0f%% (designed ~67%%)", pct)
    t.check(m.total("heap-space", "build_cache_entry", inclusive=True) > 0, "cache not in heap profile")


def case_pipe_fallback(t):
    """Where seccomp forbids process_vm_readv, reads go through a pipe."""
    t.write("prog.py", prog("""
        import threading, time
        def spin():
            end = time.process_time() + 0.5
            while time.process_time() < end:
                sum(range(300))
        th = threading.Thread(target=time.sleep, args=(0.6,), name="napper")
        th.start(); spin(); th.join()
        contprof.stop()
    """))
    t.run(["prog.py"], env={"CONTPROF__PIPE_READS": "1"})
    m = t.prof()
    t.check(m.total("cpu-time", "spin") > 0.3e9, "CPU not sampled through the pipe fallback")
    t.check(m.total("wall-time", where=lambda st, lab: lab.get("thread name") == "napper") > 0.4e9,
            "wall not sampled through the pipe fallback")


def case_auto(t):
    """`import contprof.auto` starts from the environment alone."""
    t.write("prog.py", """
        import contprof.auto, contprof
        assert contprof.is_running()
        print(sum(range(100)))
    """)
    r = t.run(["prog.py"], env={"CONTPROF_OUTPUT_DIR": "auto", "CONTPROF_SERVICE": "autosvc"})
    t.check(r.stdout.strip() == "4950", "program output changed: %r", r.stdout)
    t.check(tags_of(events(t, "auto")[-1]).get("service") == "autosvc", "env settings not used")
