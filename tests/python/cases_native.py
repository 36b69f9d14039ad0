"""Native frames (setting native_frames, on by default): mixed Python/C
stacks, threads that run no Python, unwinding through code without unwind
information. Each case runs a real program under the profiler and checks
the decoded profile; share-based ones retry once with twice the work."""
import json
import os
import shutil
import subprocess

from cases import expect_ok, prog, share
import pprof


# On by default; the cases say so anyway, so that they test native frames
# whatever the environment sets (native_default tests the default).
NATIVE_ON = ", native_frames=True"


def _cc(t, name, source, flags=()):
    """Build a small shared library from C source in the test's directory."""
    cc = shutil.which("cc") or shutil.which("gcc")
    t.check(cc is not None, "no C compiler (cc) to build the test library")
    src = t.write(name + ".c", source)
    out = os.path.join(t.tmp, "lib%s.so" % name)
    r = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", out, src, "-lpthread"] + list(flags),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    t.check(r.returncode == 0, "cc failed: %s", r.stdout)
    return out


def _stats(r):
    """The native_stats() JSON the program printed as its last line."""
    return json.loads(r.stdout.strip().splitlines()[-1])


def _retry(t, once, base):
    """Run once(t, scale); on failure run it again with twice the work."""
    try:
        once(t, base)
    except AssertionError as exc:
        t.note("first run failed (%s); retrying with twice the duration", exc)
        shutil.rmtree(os.path.join(t.tmp, "profiles"), ignore_errors=True)
        once(t, 2 * base)


ZLIB = """
    import json, os, time, zlib
    data = os.urandom(1 << 15) + bytes(range(256)) * 512
    def compress_part():
        end = time.thread_time() + 0.03
        while time.thread_time() < end:
            zlib.compress(data, 6)
    def python_part():
        end = time.thread_time() + 0.01
        s = 0
        while time.thread_time() < end:
            for i in range(3000):
                s += i * i
    def main():
        end = time.thread_time() + %(secs)s
        while time.thread_time() < end:
            compress_part()
            python_part()
    main()
    contprof.stop()
    print(contprof._c.native_stats())
"""


def _zlib_once(t, secs, opts=", cpu_interval_us=2000, native_frames=True", tol=5):
    t.write("prog.py", prog(ZLIB % {"secs": secs}, opts))
    r = t.run(["prog.py"])
    st = _stats(r)
    m = t.prof()
    pct, a, b = share(m, "cpu-time", "compress_part", "python_part", inclusive=True)
    under, answered, interp, order_ok, libz_mod = 0, 0, 0, True, False
    libz_names = set()
    for stack, mods, v, _ in m.rows_modules("cpu-time"):
        names = [f[0] for f in stack]
        if any(n.startswith("_PyEval_EvalFrame") for n in names):
            interp += v
        if "compress_part" not in names:
            continue
        # Samples whose thread answered in time (on a loaded machine some
        # do not, and keep Python frames only).
        if any(md and not md.startswith("[") for md in mods):
            answered += v
        libz = [i for i, md in enumerate(mods) if "libz" in os.path.basename(md)]
        if libz:
            libz_names.update(names[i] for i in libz)
            under += v
            libz_mod = True
            # C frames sit leafward of (before) the Python line that called them.
            order_ok = order_ok and max(libz) < names.index("compress_part")
    t.note("compress_part %.1f%% of compress+python CPU (%.2f s); %.0f%% of compress_part "
           "has native frames, %.0f%% libz frames below it; unwinds %d, timeouts %d", pct,
           (a + b) / 1e9, 100.0 * answered / max(a, 1), 100.0 * under / max(a, 1),
           st["unwinds"], st["timeouts"])
    t.check(st["enabled"], "native frames are off: %s", st)
    t.check(a + b > secs * 0.6e9, "too little CPU recorded: %d ns", a + b)
    t.check(75 - tol <= pct <= 75 + tol, "compress_part got %.1f%% of the CPU, expected 75 +- %d", pct, tol)
    t.check(answered >= 0.3 * a, "native frames in only %.0f%% of compress_part's CPU",
            100.0 * answered / max(a, 1))
    t.check(libz_mod and under >= 0.5 * answered, "libz frames in %.0f%% of compress_part's CPU "
            "with native frames", 100.0 * under / max(answered, 1))
    t.check(order_ok, "a libz frame sits rootward of the Python frame that called it")
    t.check(interp == 0, "eval-loop frames left in stacks (%d ns)", interp)
    # One name per function, stripped or not (libz has a few dozen), not
    # one per pc ("libz.so.1+5e03", "libz.so.1+5e0a", ...).
    t.note("%d distinct libz frame names: %s", len(libz_names), sorted(libz_names)[:6])
    t.check(len(libz_names) <= 40, "libz frames named per pc: %d names", len(libz_names))
    # The frames' kinds: the Python ones map to [python], libz's to its path.
    rows = list(m.rows_modules("cpu-time"))
    kinds = {md for _, mods, _, _ in rows for md in mods}
    t.check("[python]" in kinds, "no [python] mapping: %s", sorted(kinds)[:8])


def case_native_zlib(t):
    """3:1 split between zlib.compress and a pure-Python loop: libz frames
    below the Python function that called compress, the split intact."""
    _retry(t, _zlib_once, 2.0)


def case_native_default(t):
    """The same program at default settings (no option, 100 Hz): native
    frames are on, libz frames sit below compress_part, the split holds
    (a wider margin: 5x fewer samples than native_zlib's 500 Hz)."""
    _retry(t, lambda t, secs: _zlib_once(t, secs, "", 8), 3.0)


CTHREAD_C = r"""
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
volatile double sink;
static atomic_int ready;
static double secs;
static pthread_t th;
static double cpu_now(void) {
    struct timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
__attribute__((noinline)) void spin_inner(void) {
    double x = 0;
    for (int i = 0; i < 200000; i++) x += i * 0.5;
    sink = x;
}
__attribute__((noinline)) void spin_outer(double s) {
    double end = cpu_now() + s;
    while (cpu_now() < end) spin_inner();
}
static void *run(void *a) {
    (void)a;
    pthread_setname_np(pthread_self(), "cworker");
    atomic_store(&ready, 1);
    spin_outer(secs);
    return 0;
}
int cthread_start(double s) {
    secs = s;
    if (pthread_create(&th, 0, run, 0) != 0) return -1;
    while (!atomic_load(&ready)) {}
    return 0;
}
int cthread_join(void) { return pthread_join(th, 0); }
"""


def _cthread_once(t, secs):
    lib = _cc(t, "cwork", CTHREAD_C)
    t.write("prog.py", prog("""
        import ctypes
        lib = ctypes.CDLL(%r)
        assert lib.cthread_start(ctypes.c_double(%s)) == 0
        lib.cthread_join()   # the GIL is released meanwhile
        contprof.stop()
        print(contprof._c.native_stats())
    """ % (lib, secs), NATIVE_ON))
    r = t.run(["prog.py"])
    st = _stats(r)
    m = t.prof()
    spin, named, ordered = 0, set(), True
    for stack, mods, v, labels in m.rows_modules("cpu-time"):
        names = [f[0] for f in stack]
        if "spin_inner" in names or "spin_outer" in names:
            spin += v
            named.add(labels.get("thread name"))
            if "spin_inner" in names and "spin_outer" in names:
                ordered = ordered and names.index("spin_inner") < names.index("spin_outer")
                i = names.index("spin_inner")
                t.check(mods[i] == lib, "spin_inner maps to %r, not %r", mods[i], lib)
    t.note("C thread: %.2f s of CPU with spin_* frames (ran %.1f s), names %s, "
           "native threads %d", spin / 1e9, secs, sorted(n or "" for n in named), st["native_threads"])
    t.check(spin >= 0.7 * secs * 1e9, "the C thread's CPU with its native stack: %.2f s of %.1f s",
            spin / 1e9, secs)
    t.check(named == {"cworker"}, "thread name labels %s, expected cworker", named)
    t.check(ordered, "spin_inner is not leafward of spin_outer")


def case_native_cthread(t):
    """A C thread started through ctypes appears with its native stack."""
    _retry(t, _cthread_once, 1.2)


NOINFO_C = r"""
#include <time.h>
volatile double sink;
static double cpu_now(void) {
    struct timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
void noinfo_spin(double s) {
    double end = cpu_now() + s, x = 0;
    while (cpu_now() < end)
        for (int i = 0; i < 100000; i++) x += i * 0.5;
    sink = x;
}
"""


def case_native_noinfo(t):
    """Code without unwind information (no .eh_frame, no .eh_frame_hdr):
    the unwind stops there cleanly, is counted, and the Python caller is
    still in the stack."""
    lib = _cc(t, "noinfo", NOINFO_C, ["-fno-asynchronous-unwind-tables", "-fno-unwind-tables",
                                      "-Wl,--no-eh-frame-hdr"])
    t.write("prog.py", prog("""
        import ctypes
        lib = ctypes.CDLL(%r)
        lib.noinfo_spin.argtypes = [ctypes.c_double]
        def call_noinfo():
            lib.noinfo_spin(1.0)
        call_noinfo()
        contprof.stop()
        print(contprof._c.native_stats())
    """ % lib, NATIVE_ON))
    r = t.run(["prog.py"])
    st = _stats(r)
    m = t.prof()
    # noinfo_spin, or the clock it reads (whose unwind then stops in it).
    spin = m.total("cpu-time", "noinfo_spin", inclusive=True)
    under = m.total("cpu-time", where=lambda s, l: any(f[0] == "noinfo_spin" for f in s) and
                    any(f[0] == "call_noinfo" for f in s))
    t.note("noinfo_spin %.2f s (%.2f s with call_noinfo below); stops: %s",
           spin / 1e9, under / 1e9, st["stopped"])
    t.check(st["stopped"]["no_unwind_info"] + st["stopped"]["error"] > 0,
            "no unwind stopped for missing unwind info: %s", st["stopped"])
    t.check(spin > 0.2e9, "noinfo_spin got %.2f s", spin / 1e9)  # timeouts keep Python frames only
    t.check(under >= 0.95 * spin, "the Python caller is missing below noinfo_spin")


CALLBACK_C = r"""
typedef void (*fn)(void);
void cb_bridge(fn f, int n) { for (int i = 0; i < n; i++) f(); }
"""


def case_native_callback(t):
    """C between two Python frames: Python calls a C function (through
    ctypes) that calls back into Python. The C frames sit between the two
    Python frames: inner <- ... cb_bridge ... <- outer."""
    lib = _cc(t, "cb", CALLBACK_C)
    t.write("prog.py", prog("""
        import ctypes, time
        lib = ctypes.CDLL(%r)
        CB = ctypes.CFUNCTYPE(None)
        def inner():
            s = 0
            for i in range(20000):
                s += i * i
        cbf = CB(inner)
        def outer():
            end = time.thread_time() + 1.0
            while time.thread_time() < end:
                lib.cb_bridge(cbf, 10)
        outer()
        contprof.stop()
    """ % lib, NATIVE_ON))
    t.run(["prog.py"])
    m = t.prof()
    total = between = 0
    for stack, _, v, _ in m.rows_modules("cpu-time"):
        names = [f[0] for f in stack]
        if "inner" not in names or "outer" not in names:
            continue
        total += v
        i, o = names.index("inner"), names.index("outer")
        if "cb_bridge" in names[i:o]:
            between += v
    t.note("inner: %.2f s, %.0f%% with cb_bridge between it and outer", total / 1e9,
           100.0 * between / max(total, 1))
    t.check(total > 0.4e9, "inner got %.2f s of CPU", total / 1e9)
    t.check(between >= 0.8 * total, "cb_bridge between inner and outer in only %.0f%% of inner's CPU",
            100.0 * between / max(total, 1))


def case_native_syscalls(t):
    """A loop that makes a cheap system call after every ~1 us of Python:
    the CPU charged under the system call stays near the kernel's own share
    of the CPU. A signal sent by the sampler was taken at a system call's
    return nearly every time (99% under getppid for ~10% of kernel time);
    the per-thread CPU timer is raised wherever the thread is."""
    t.write("prog.py", prog("""
        import json, os, resource, time
        def work(n):
            s = 0
            for i in range(n):
                s += i * i
            return s
        def loop():
            end = time.thread_time() + 1.5
            while time.thread_time() < end:
                for _ in range(1000):
                    work(30)
                    os.getppid()
        loop()
        contprof.stop()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        print(json.dumps({"user": ru.ru_utime, "sys": ru.ru_stime}))
    """, NATIVE_ON))
    r = t.run(["prog.py"])
    ru = json.loads(r.stdout.strip().splitlines()[-1])
    kernel = 100.0 * ru["sys"] / (ru["user"] + ru["sys"])
    m = t.prof()
    total = under = native = 0
    for stack, mods, v, _ in m.rows_modules("cpu-time"):
        if "loop" not in [f[0] for f in stack]:
            continue
        total += v
        leafward = pprof.native_leaf(stack, mods)
        native += v if leafward else 0
        under += v if any("getppid" in n for n in leafward) else 0
    pct = 100.0 * under / max(total, 1)
    t.note("kernel %.1f%% of the CPU; %.1f%% of loop()'s CPU under getppid, %.1f%% with native frames",
           kernel, pct, 100.0 * native / max(total, 1))
    t.check(total > 0.5e9, "too little CPU under loop(): %d ns", total)
    t.check(pct <= max(2 * kernel, kernel + 15), "%.1f%% of the CPU under getppid for %.1f%% in the kernel",
            pct, kernel)


def case_native_takeover(t):
    """The program installs its own handler on the signal native frames use:
    once the sampler looks (every 50 ms), no timer signal reaches that handler,
    and the program runs on with Python frames."""
    t.write("prog.py", prog("""
        import json, signal, time
        def burn(secs):
            end = time.thread_time() + secs
            s = 0
            while time.thread_time() < end:
                for i in range(1000):
                    s += i * i
        burn(0.3)  # the thread gets its timer
        st = json.loads(contprof._c.native_stats())
        calls = [0]
        def handler(sig, frame):
            calls[0] += 1
        signal.signal(st["signal"], handler)
        burn(0.2)  # the sampler looks every 50 ms
        before = calls[0]
        burn(0.5)
        contprof.stop()
        end = json.loads(contprof._c.native_stats())
        print(json.dumps({"signal": st["signal"], "timers": st["timers"], "timers_after": end["timers"],
                          "before": before, "after": calls[0] - before}))
    """, NATIVE_ON))
    r = t.run(["prog.py"])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    t.note("contprof's signal %d, %d timer(s), %d after; the program's handler ran %d times before the "
           "sampler noticed, %d after", out["signal"], out["timers"], out["timers_after"], out["before"],
           out["after"])
    t.check(out["timers"] >= 1, "the busy thread had no timer: %s", out)
    t.check(out["timers_after"] == 0, "timers left after the take-over: %s", out)
    t.check(out["after"] == 0, "the program's handler got %d timer signals after the take-over", out["after"])
    t.check("taken over by another handler" in r.stderr, "no warning: %s", r.stderr[-300:])


def case_native_off(t):
    """native_frames=false: Python frames only, and no signal taken."""
    t.write("prog.py", prog("""
        import signal, zlib, os, time
        data = os.urandom(1 << 15)
        end = time.process_time() + 0.5
        while time.process_time() < end:
            zlib.compress(data)
        contprof.stop()
        st = __import__("json").loads(contprof._c.native_stats())
        assert not st["enabled"] and st["requests"] == 0, st
        print("ok")
    """, ", native_frames=False"))
    expect_ok(t, "native_frames=false")
    m = t.prof()
    native = m.total("cpu-time", where=lambda s, l: any(f[0] == "deflate" for f in s))
    t.check(native == 0, "native frames with native_frames=false")
