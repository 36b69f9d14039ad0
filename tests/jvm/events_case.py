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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import pprof  # noqa: E402


def run(jdk, agent, classes, work, mode, secs):
    prof = os.path.join(work, "prof")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(prof)
    cmd = [os.path.join(jdk, "bin", "java"), "-agentpath:%s=output_dir=%s,upload_period=60" % (agent, prof),
           "-cp", classes, "EventTarget", mode, str(secs)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    print(r.stdout, end="")
    if r.returncode != 0:
        raise AssertionError("exit status %d" % r.returncode)
    if "warning" in r.stdout.lower():
        raise AssertionError("the JVM printed a warning")
    truth = dict(re.findall(r"(\w+)=(\d+)", r.stdout.split("truth", 1)[1])) if "truth" in r.stdout else {}
    return pprof.load_dir(prof), {k: int(v) for k, v in truth.items()}


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
