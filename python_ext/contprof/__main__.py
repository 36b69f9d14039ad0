"""python -m contprof [options] script.py [args...] | -m module [args...]

Runs the program as __main__ with its own argv under the profiler; its exit
status and exceptions pass through unchanged. At exit, one line says where
the profiles are and how to view them, then the top 10 functions by CPU.
"""
import os
import runpy
import signal
import sys

import contprof
from contprof import _contprof as _c

USAGE = "usage: python -m contprof [options] (script.py | -m module) [args...]"


def _help():
    lines = [USAGE, "", "Profile a Python program (CPU, wall, allocations, live heap).",
             "With no destination set, profiles go to ./profiles.", "", "options:",
             "  -h, --help            show this help and exit",
             "  --config PATH         config file (INI [contprof], or TOML)",
             "  --NAME VALUE, --NAME=VALUE   any setting below ('-' or '_' in NAME)", "", "settings:"]
    for s in contprof.settings():
        rng = " [%d..%d]" % (s["min"], s["max"]) if s["type"] == "int" else ""
        unit = " %s" % s["unit"] if s["unit"] else ""
        lines.append("  --%-22s %s (%s, default %r%s%s)" % (
            s["name"].replace("_", "-"), s["help"], s["type"], s["default"], unit, rng))
        if s["env"]:
            lines.append("  %-24s env: %s" % ("", s["env"]))
    lines += ["", "Settings also come from the environment and from contprof.ini / pyproject.toml",
              "([tool.contprof]); explicit options win. View a profile: go tool pprof -top <file>"]
    return "\n".join(lines)


def _usage_error(msg):
    sys.stderr.write("%s\ncontprof: %s\n" % (USAGE, msg))
    sys.exit(2)


def _parse(argv):
    known = {s["name"] for s in contprof.settings()}
    opts, i = {}, 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            print(_help())
            sys.exit(0)
        if arg == "-m":
            if i + 1 >= len(argv):
                _usage_error("-m needs a module name")
            return opts, ("module", argv[i + 1]), argv[i + 2:]
        if not arg.startswith("--"):
            return opts, ("path", arg), argv[i + 1:]
        name, eq, value = arg[2:].partition("=")
        name = name.replace("-", "_")
        if not eq:
            if i + 1 >= len(argv):
                _usage_error("option --%s needs a value" % name)
            i += 1
            value = argv[i]
        if name != "config" and name not in known:
            _usage_error("unknown option --%s (see --help)" % name)
        opts[name] = value
        i += 1
    _usage_error("no program given")


def _report():
    try:
        sys.stdout.flush()  # the program's output first, then our lines
        path = _c.last_profile_path()
        where = _c.destinations()
        if path:
            sys.stderr.write("contprof: profiles in %s; view: go tool pprof -top %s\n"
                             % (os.path.dirname(path), path))
        elif where:
            sys.stderr.write("contprof: %s\n" % where)
        summary = _c.summary_top(10)
        if summary:
            sys.stderr.write(summary if summary.endswith("\n") else summary + "\n")
    except Exception:  # reporting must never change the exit status
        pass


def _trim(tb):
    """Drop our own and runpy's frames so the traceback looks normal."""
    here = os.path.dirname(os.path.abspath(__file__))
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if not (fn.startswith(here) or "runpy" in os.path.basename(fn)):
            break
        tb = tb.tb_next
    return tb


def _run(kind, target):
    if kind == "module":
        sys.argv[0] = target  # runpy replaces it with the module's path
        sys.path.insert(0, os.getcwd())
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
        runpy.run_path(target, run_name="__main__")


def main():
    opts, (kind, target), rest = _parse(sys.argv[1:])
    sys.argv = [target] + rest
    if kind == "path" and not os.path.exists(target):
        # as python itself reports it, with its exit status
        sys.stderr.write("%s: can't open file %r: [Errno 2] No such file or directory\n"
                         % (os.path.basename(sys.executable), os.path.abspath(target)))
        sys.exit(2)
    del sys.path[0]  # the -m contprof entry; the program gets its own
    try:
        contprof.start(**opts)
    except Exception as exc:
        sys.stderr.write("contprof: not profiling: %s\n" % exc)
    contprof._on_stop(_report)
    try:
        _run(kind, target)
    except SystemExit:
        raise
    except BaseException as exc:
        tb = _trim(exc.__traceback__)
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        if not isinstance(exc, KeyboardInterrupt):
            sys.exit(1)
        # Like python itself: die of SIGINT (after flushing our profile).
        contprof.stop()
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        raise


if __name__ == "__main__":
    main()
