"""End-to-end lock, exception and blocked-thread cases of the JVM agent:
runs EventTarget under the agent and checks the pprof against the truth the
program prints (decoded with tests/python/pprof.py).

    python3 events_case.py JDK_HOME AGENT CLASSES WORKDIR CASE

Share-based checks are retried once with a longer run before failing.
"""
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import pprof  # noqa: E402


def run(jdk, agent, classes, work, mode, secs):
    prof = os.path.join(work, "prof")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(prof)
    opts = "output_dir=%s,upload_period=60" % prof
    late, go = mode.endswith("_attach"), os.path.join(work, "go")
    java = [os.path.join(jdk, "bin", "java")]
    if late:  # what users of late attach set on JDK 21+ (JEP 451's warning is the JVM's)
        java.append("-XX:+EnableDynamicAgentLoading")
    else:
        java.append("-agentpath:%s=%s" % (agent, opts))
    args = [mode, str(secs)] + ([go] if late else [])
    p = subprocess.Popen(java + ["-cp", classes, "EventTarget"] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    try:
        if late:
            attach(jdk, agent, opts, p, go)
        out = p.communicate(timeout=90)[0]
    finally:
        p.kill()
    print(out, end="")
    if p.returncode != 0:
        raise AssertionError("exit status %d" % p.returncode)
    if "warning" in out.lower():
        raise AssertionError("the JVM printed a warning")
    truth = dict(re.findall(r"(\w+)=(\d+)", out.split("truth", 1)[1])) if "truth" in out else {}
    return pprof.load_dir(prof), {k: int(v) for k, v in truth.items()}


def attach(jdk, agent, opts, p, go):
    """Late attach with jcmd once the target has thrown for a second; then
    the file go tells it to start the counted part."""
    line = p.stdout.readline()
    if "throwing" not in line:
        raise AssertionError("target did not start: %r" % line)
    time.sleep(1.0)
    r = subprocess.run([os.path.join(jdk, "bin", "jcmd"), str(p.pid), "JVMTI.agent_load", agent, '"%s"' % opts],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    print(r.stdout, end="")
    if r.returncode != 0 or "return code: 0" not in r.stdout:
        raise AssertionError("jcmd attach failed")
    open(go, "w").close()


def labelled(key, value):
    return lambda st, lab: lab.get(key) == value


def check(cond, msg, *args):
    if not cond:
        raise AssertionError(msg % args)


def case_locks(m, truth, name_a="EventTarget$LockA", name_b="EventTarget$LockB", path_a="EventTarget.pathA",
               tol_total=0.2):
    wa = m.total("lock-acquire-wait", where=labelled("lock name", name_a))
    wb = m.total("lock-acquire-wait", where=labelled("lock name", name_b))
    ta, tb = truth["waitA"], truth["waitB"]
    pct, true_pct = 100.0 * wa / max(1, wa + wb), 100.0 * ta / (ta + tb)
    print("  LockA %.1f%% of lock-acquire-wait (program measured %.1f%%); total %.2f s vs %.2f s measured"
          % (pct, true_pct, m.total("lock-acquire-wait") / 1e9, (ta + tb) / 1e9))
    check(abs(pct - true_pct) <= 7, "LockA got %.1f%%, measured %.1f%%", pct, true_pct)
    check(abs(m.total("lock-acquire-wait") - (ta + tb)) <= tol_total * (ta + tb), "total wait off by more than 20%%")
    check(m.total("lock-acquire-wait", path_a, inclusive=True, where=labelled("lock name", name_a)) == wa,
          "%s waits not under %s", name_a, path_a)


def case_juc(m, truth):
    # Parked threads are seen by the wall sampler (50 ms): a statistical estimate.
    case_locks(m, truth, "java.util.concurrent.locks.ReentrantLock",
               "java.util.concurrent.locks.ReentrantReadWriteLock$WriteLock", "EventTarget.jucPath")


def case_exceptions(m, truth):
    a = m.total("exception-samples", "EventTarget.throwState",
                where=labelled("exception type", "java.lang.IllegalStateException"))
    b = m.total("exception-samples", "EventTarget.throwApp",
                where=labelled("exception type", "EventTarget$AppException"))
    pct, total, n = 100.0 * a / max(1, a + b), m.total("exception-samples"), truth["thrown"]
    print("  IllegalStateException %.1f%% of exception-samples; estimated %d (%d at the leaf) of %d thrown"
          % (pct, total, a + b, n))
    check(68 <= pct <= 82, "IllegalStateException got %.1f%%, expected 75 +- 7", pct)
    check(0.7 * n <= a + b <= 1.3 * n, "estimated %d exceptions, %d thrown", a + b, n)


def case_exceptions_attach(m, truth):
    # The agent came with jcmd after the JDK had bound fillInStackTrace.
    case_exceptions(m, truth)


def case_blocked(m, truth):
    waiter = labelled("thread name", "blocked-waiter")
    wall = m.total("wall-time", where=waiter)
    inside = m.total("wall-time", "EventTarget.waitForLock", where=waiter)
    pseudo = sum(v for st, v, lab in m.rows("wall-time")
                 if waiter(st, lab) and st and st[0][0].startswith(("[", "<")))
    print("  blocked-waiter wall %.2f s, %.1f%% in waitForLock (leaf), %.1f%% pseudo-frames"
          % (wall / 1e9, 100.0 * inside / max(1, wall), 100.0 * pseudo / max(1, wall)))
    check(wall >= 1.0e9, "blocked thread has %d ns of wall time", wall)
    check(inside >= 0.9 * wall, "waitForLock has %.1f%% of the blocked thread's wall", 100.0 * inside / wall)
    check(pseudo <= 0.03 * wall, "pseudo-frames are %.1f%% of the blocked thread's wall", 100.0 * pseudo / wall)


def main():
    jdk, agent, classes, work, case = sys.argv[1:6]
    fn = globals()["case_" + case]
    for attempt, secs in enumerate((3.0, 6.0)):
        m, truth = run(jdk, agent, classes, work, case, secs)
        try:
            fn(m, truth)
            return 0
        except AssertionError as exc:
            print("  attempt %d: %s" % (attempt + 1, exc))
    print("FAIL(%s)" % case)
    return 1


if __name__ == "__main__":
    sys.exit(main())
