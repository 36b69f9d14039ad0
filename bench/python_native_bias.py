"""Where Python native-frame samples land, against where the CPU went.

    python bench/python_native_bias.py --pkg <build>/python/3.11 [--seconds 1.5]

A loop runs K multiplications of pure Python, then one cheap system call
(os.getppid), for K = 30, 300, 3000, 30000. The kernel's own accounting
(getrusage: system time / all CPU) says how much of the CPU the system call
really takes. The profile, with native_frames on, says how much of the
cpu-time it charges to stacks with `getppid` among the native frames above
the first Python frame. An unbiased sampler reads about the kernel share
(plus the libc wrapper's few instructions).

Python threads give their native stacks from a CPU-time timer on their own
clock, raised by the tick on the thread's CPU wherever it is. Before that
the sampler sent each thread a signal, taken at the thread's next return
to user mode: a thread that entered the kernel more often than the
interrupt forcing delivery arrived (~10-30 us in the reference VM) took it
at a system call's return, and K = 30 read 99% under getppid for ~11% of
kernel time. docs/DECISIONS.md ("Python native frames") has the figures.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import pprof  # noqa: E402  (the tests' independent pprof decoder)

CHILD = r'''
import json, os, resource, sys, time
k, secs, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[4]
import contprof
contprof.start(output_dir=out, upload_period=3600, native_frames=True)
def work(n):
    s = 0
    for i in range(n):
        s += i * i
    return s
end = time.process_time() + secs
while time.process_time() < end:
    for _ in range(max(1, 30000 // k)):
        work(k)
        os.getppid()
contprof.stop()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"user": ru.ru_utime, "sys": ru.ru_stime}))
'''


def run(args, k):
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([sys.executable, "-c", CHILD, str(k), str(args.seconds), "native", out],
                           env=dict(os.environ, PYTHONPATH=args.pkg), stdout=subprocess.PIPE,
                           universal_newlines=True, check=True)
        ru = json.loads(r.stdout.strip().splitlines()[-1])
        m = pprof.load_dir(out)
        total = in_call = 0
        for stack, mods, v, _ in m.rows_modules("cpu-time"):
            total += v
            if any("getppid" in n for n in pprof.native_leaf(stack, mods)):
                in_call += v
        return 100.0 * ru["sys"] / max(ru["user"] + ru["sys"], 1e-9), 100.0 * in_call / max(total, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pkg", required=True, help="folder holding the built contprof package")
    ap.add_argument("--seconds", type=float, default=1.5, help="CPU seconds per run")
    args = ap.parse_args()
    print("python %s: os.getppid() after every K multiplications" % sys.version.split()[0])
    print("%8s  %12s  %14s" % ("K", "kernel share", "under getppid"))
    for k in (30, 300, 3000, 30000):
        kern, on = run(args, k)
        print("%8d  %11.1f%%  %13.1f%%" % (k, kern, on))


if __name__ == "__main__":
    main()
