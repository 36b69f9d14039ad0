"""python -m contprof [options] script.py [args...] | -m module [args...]

Runs the program as __main__ with its own argv under the profiler; its exit
status and exceptions pass through unchanged. At exit, one line says where
the profiles are and how to view them, then the top 10 functions by CPU.
"""
import json
import os
import runpy
import signal
import sys

import contprof
from contprof import _contprof as _c
from contprof import _config

USAGE = "usage: python -m contprof [options] [--] (script.py | -m module) [args...]"


def _help():
    lines = [USAGE, "", "Profile a Python program (CPU, wall, allocations, live heap).",
             "With no destination set, profiles go to ./profiles.", "", "options:",
             "  -h, --help            show this help and exit",
             "  --diagnose            print the support report (system, runtime, settings and their",
             "                        sources, destinations checked live) and exit 0 if healthy, 1 if not",
             "  --config PATH         config file (INI [contprof], or TOML)",
             "  --NAME VALUE, --NAME=VALUE   any setting below ('-' or '_' in NAME)", "", "settings:"]
    for s in contprof.settings():
        if s["name"] in _config.PYTHON_DEFAULTS:  # this front end's own default
            s = dict(s, default=_config.PYTHON_DEFAULTS[s["name"]])
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
    opts, i, diag = {}, 0, False
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            print(_help())
            sys.exit(0)
        if arg == "--diagnose":  # after every option: they are part of the report
            diag = True
            i += 1
            continue
        if arg == "--":  # end of our options (py-spy's and many tools' habit)
            if i + 1 >= len(argv):
                if diag:
                    _diagnose(opts)
                _usage_error("no program given")
            i += 1
            arg = argv[i]
            if arg != "-m":
                if diag:
                    _diagnose(opts)
                return opts, ("path", arg), argv[i + 1:]
        if diag and (arg == "-m" or not arg.startswith("--")):
            _diagnose(opts)
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
    if diag:
        _diagnose(opts)
    _usage_error("no program given")


def _diagnose(opts):
    """--diagnose: the report a support ticket needs, exit 0 healthy / 1 not."""
    problems, text = contprof.diagnose(**opts)
    sys.stdout.write(text)
    sys.stdout.flush()
    sys.exit(1 if problems else 0)


def _report():
    try:
        sys.stdout.flush()  # the program's output first, then our lines
        path = _c.last_profile_path()
        # what really happened at each destination (never a claim that
        # profiles were written or uploaded where none were)
        for line in (_c.destinations() or "").splitlines():
            if path and line.startswith("profiles written to "):
                line = "profiles in %s; view: go tool pprof -top %s" % (os.path.dirname(path), path)
            sys.stderr.write("contprof: %s\n" % line)
        summary = _c.summary_top(10)
        if summary:
            sys.stderr.write(summary if summary.endswith("\n") else summary + "\n")
    except Exception:  # reporting must never change the exit status
        pass


def _report_child():
    """A forked child's summary: the run's one summary is the parent's, so
    the child's goes to the log at info level (shown with log_level=info)."""
    try:
        pid = os.getpid()
        for line in (_c.destinations() or "").splitlines():
            _c.log(_c.LOG_INFO, "forked child %d: %s" % (pid, line))
        summary = _c.summary_top(10)
        if summary:
            _c.log(_c.LOG_INFO, "forked child %d: %s" % (pid, summary.rstrip("\n")))
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


def _follow_children(opts):
    """Setting follow_children (on by default): child Python processes
    (subprocess, os.exec*, multiprocessing spawn) start contprof too, with
    these options, through a sitecustomize on PYTHONPATH that then runs any
    sitecustomize it hides (see _boot/sitecustomize.py)."""
    cfg = json.loads(_c.config_json() or "{}")
    if not cfg.get("follow_children", True) or not contprof.is_running():
        return
    child = {str(k): contprof._config._text(v) for k, v in opts.items()}
    out = cfg.get("output_dir") or ""
    if out and not os.path.isabs(out):  # children may run elsewhere
        child["output_dir"] = os.path.abspath(out)
    if child.get("config"):
        child["config"] = os.path.abspath(child["config"])
    boot = os.path.join(os.path.dirname(os.path.abspath(contprof.__file__)), "_boot")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = boot + (os.pathsep + old if old else "")
    os.environ["CONTPROF_CHILD_OPTIONS"] = json.dumps(child)


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
    # The service defaults to the program's name (a setting still wins).
    name = target if kind == "module" else os.path.splitext(os.path.basename(target))[0]
    contprof._state["service_default"] = name or None
    if contprof._state.get("followed"):
        contprof.stop()  # a child that is itself `python -m contprof`: its own options win
    try:
        contprof.start(**opts)
        _follow_children(opts)
    except Exception as exc:
        sys.stderr.write("contprof: not profiling: %s\n" % exc)
    contprof._on_stop(_report)
    contprof._state["child_exit_hook"] = _report_child
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
