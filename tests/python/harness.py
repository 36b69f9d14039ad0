"""Test harness for the contprof Python tests: runs one named case (from
cases.py) in a fresh temporary directory with the interpreter under test.

    python harness.py CASE PACKAGE_DIR

PACKAGE_DIR is the folder holding the built `contprof` package for this
interpreter; programs are run with it on PYTHONPATH. Exit 0 = pass.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pprof  # noqa: E402


class CaseFailed(AssertionError):
    pass


class Env:
    def __init__(self, pkg_dir, tmp):
        self.pkg_dir = pkg_dir
        self.tmp = tmp
        self.log = []

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(textwrap.dedent(text))
        return path

    def environ(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTPROF_", "DD_"))}
        env["PYTHONPATH"] = self.pkg_dir
        env.update(extra or {})
        return env

    def run(self, args, env=None, timeout=60, check_rc=0):
        """Run `python args...`; returns CompletedProcess (text)."""
        cmd = [sys.executable] + list(args)
        try:
            r = subprocess.run(cmd, cwd=self.tmp, env=self.environ(env), timeout=timeout,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        except subprocess.TimeoutExpired as exc:
            raise CaseFailed("timed out after %ss (hang?): %s\n%s" % (timeout, cmd, exc.stderr))
        self.log.append("$ %s\nrc=%s\n--- stdout\n%s--- stderr\n%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
        if check_rc is not None and r.returncode != check_rc:
            raise CaseFailed("exit status %s, expected %s" % (r.returncode, check_rc))
        return r

    def prof(self, sub="profiles", pattern="*.pprof.gz"):
        d = os.path.join(self.tmp, sub)
        if not os.path.isdir(d) or not os.listdir(d):
            raise CaseFailed("no profiles in %s" % d)
        return pprof.load_dir(d, pattern)

    def note(self, msg, *args):
        """Print a measured figure (shown with --output-on-failure / -V)."""
        print("  " + (msg % args if args else msg))

    def check(self, cond, msg, *args):
        if not cond:
            raise CaseFailed(msg % args if args else msg)


def main():
    name, pkg_dir = sys.argv[1], os.path.abspath(sys.argv[2])
    import cases
    import cases_alloc
    import cases_native
    fn = (getattr(cases, "case_" + name, None) or getattr(cases_alloc, "case_" + name, None)
          or getattr(cases_native, "case_" + name))
    tmp = tempfile.mkdtemp(prefix="contprof-%s-" % name)
    env = Env(pkg_dir, tmp)
    try:
        fn(env)
    except CaseFailed as exc:
        print("\n".join(env.log))
        print("FAIL %s (%s): %s" % (name, sys.version.split()[0], exc))
        print("(files kept in %s)" % tmp)
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("PASS %s (%s)" % (name, sys.version.split()[0]))


if __name__ == "__main__":
    main()
