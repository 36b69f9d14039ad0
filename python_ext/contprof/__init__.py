"""contprof — always-on CPU, wall, allocation and heap profiler for CPython.

    import contprof
    contprof.start(service="api", env="prod")   # or: import contprof.auto
    ...
    contprof.stop()

Profiles go to ./profiles by default (view: go tool pprof -top <file>), or
to a Datadog-compatible agent when agent_url / DD_AGENT_HOST is set.
"""
import sys
import sysconfig

if sysconfig.get_config_var("Py_GIL_DISABLED"):
    raise ImportError("contprof: free-threaded CPython (Py_GIL_DISABLED) is not supported; "
                      "use a default (GIL) build")

import atexit
import json
import os
import threading

try:
    from . import _contprof as _c
except ImportError:
    from . import _inert as _c
    if not _c.in_subinterpreter():
        raise
    # A sub-interpreter that refuses the extension: the package (and every
    # module of it that imports _contprof) sees the inert stand-in.
    sys.modules[__name__ + "._contprof"] = _c
from . import _config

__version__ = _c.__version__
__all__ = ["start", "stop", "flush", "is_running", "settings", "diagnose"]

_state = {"options": {}, "hooks": False, "exit_hook": None}
_lock = threading.RLock()
settings = _config.settings


def _new_lock_in_child():
    """A child forked while another thread was inside start() or stop()
    inherits _lock held by a thread that does not exist there: its own
    stop() at exit would wait forever. The child gets a fresh lock."""
    global _lock
    _lock = threading.RLock()
    # One exit summary per run: the CLI's is the parent's alone; a forked
    # child logs its own at info level.
    _state["exit_hook"] = _state.get("child_exit_hook") if _state.get("exit_hook") else None


if hasattr(os, "register_at_fork") and _c.in_main_interpreter():
    os.register_at_fork(after_in_child=_new_lock_in_child)


def _register(thread):
    ident = thread.ident
    if ident is not None:
        _c.register_thread(ident, getattr(thread, "native_id", None) or 0, thread.name)


def _patch_threading():
    """Let each new thread tell us its kernel tid (needed for CPU clocks
    before 3.11, where the thread state lacks it) and its name, as it
    starts. Thread._set_native_id runs first thing in the new thread and
    returns at once, so the wrapper never shows up in the thread's stacks."""
    orig = getattr(threading.Thread, "_set_native_id", None)
    if orig is None or getattr(orig, "_contprof", False):
        _patch_thread_exit()
        return

    def _set_native_id(self):
        orig(self)
        try:
            _register(self)
        except Exception:  # never break the host's thread
            pass

    _set_native_id._contprof = True
    threading.Thread._set_native_id = _set_native_id
    _patch_thread_exit()


def _patch_thread_exit():
    """Each thread reports its final CPU clock as it ends, so the sampler
    charges the part of its last interval it had not read yet (and never
    reads that kernel tid again). thread_start arranges for the report to
    be made once the interpreter is done with the thread (its teardown is
    CPU too); thread_exit reports only where that could not be arranged.
    Frames of contprof's own files are hidden from stacks, so this wrapper
    never shows."""
    orig = threading.Thread._bootstrap_inner
    if getattr(orig, "_contprof", False):
        return

    def _bootstrap_inner(self):
        start = _c.thread_start()
        try:
            orig(self)
        finally:
            _c.thread_exit(start)

    _bootstrap_inner._contprof = True
    threading.Thread._bootstrap_inner = _bootstrap_inner


def _version():
    return "%d.%d.%d" % sys.version_info[:3]


def _vendor():
    """Who built this interpreter, as far as it tells."""
    if "deb_system" in sysconfig.get_scheme_names():
        return "Debian"
    if "conda" in sys.version.lower() or "anaconda" in sys.version.lower():
        return "conda"
    if "/.pyenv/" in sys.executable or "/pyenv/" in sys.executable:
        return "pyenv (python.org sources)"
    return "python.org sources (packager unknown)"


def _runtime_facts():
    import platform
    return {"type": platform.python_implementation(), "version": _version(), "vendor": _vendor(),
            "executable": sys.executable, "prefix": sys.prefix, "build": sys.version.replace("\n", " "),
            "compiler": platform.python_compiler()}


def _static_runtime_info():
    flags = {k: getattr(sys.flags, k) for k in dir(sys.flags)
             if not k.startswith(("_", "n_")) and isinstance(getattr(sys.flags, k), (int, bool))}
    import gc
    info = {
        "implementation": sys.implementation.name == "cpython" and "CPython" or sys.implementation.name,
        "version": _version(),
        "executable": sys.executable,
        "argv": list(sys.argv),
        "platform": "%s-%s-%s" % (os.uname().sysname, os.uname().release, sysconfig.get_platform()),
        "flags": flags,
        "gc_thresholds": list(gc.get_threshold()),
    }
    info["runtime_facts"] = _runtime_facts()
    for key, value in info.items():
        _c.runtime_info_set(key, json.dumps(value))
    _c.runtime_info_set("settings", _c.config_json() or "{}")


def _service_default():
    if _state.get("service_default"):  # set by the CLI: its program's name
        return _state["service_default"]
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    if path == "-m":  # a `python -m module` child, before runpy names it
        argv = getattr(sys, "orig_argv", [])
        path = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else ""
    name = os.path.splitext(os.path.basename(path or ""))[0]
    return name if name and name not in ("-c", "__main__") else "python"


def _after_fork_child():
    # Before 3.11 the sampler learns kernel tids from the threads themselves;
    # in the child the forking thread has a new one.
    t = threading.current_thread()
    _c.register_thread(threading.get_ident(), _c.gettid(), t.name)
    _c.after_fork_child()
    if _state.get("fork_filter"):  # the child is not warned: the parent's filter goes
        _fork_filter(False)


# CPython 3.12+ warns at fork() when the process has more than one thread
# (it counts them in /proc/self/stat), to flag locks another thread may hold
# in the child. Our threads hold none across fork, so when they are the only
# other threads the warning is about us alone: then a filter for exactly
# that message is in place. Each fork decides anew just before it (3.13
# warns after the after-fork hooks have run, so the filter cannot be taken
# out there); with a thread of the program's own the warning shows as always.
# The filter takes itself out as it matches the warning (the warnings module
# calls its message's match()), so warnings.filters is the program's again
# once the fork is done (CPython's regrtest flags a test whose fork left a
# filter behind as having altered the environment).
_FORK_WARNING = (r"This process \(pid=\d+\) is multi-threaded, "
                 r"use of fork(pty)?\(\) may lead to deadlocks in the child\.")


class _ForkWarningOnce:
    """The fork-warning filter's message pattern: one match, then the
    filter is gone."""

    def __init__(self):
        import re
        self._re = re.compile(_FORK_WARNING, re.I)

    def match(self, text):
        m = self._re.match(text)
        if m:
            _fork_filter(False)
        return m


def _only_profiler_threads():
    """True when every thread but the caller is one of ours (named
    contprof-*). False when unsure."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return False
    others = 0
    for tid in tasks:
        try:
            with open("/proc/self/task/%s/comm" % tid, "rb") as fh:
                if not fh.read().startswith(b"contprof-"):
                    others += 1
        except OSError:  # ended meanwhile
            pass
    return others <= 1


def _fork_filter(wanted):
    """Put the fork-warning filter in place, or take it out."""
    import warnings
    entry = _state.get("fork_filter")
    present = entry is not None and any(f is entry for f in warnings.filters)
    if wanted and not present:
        # Kept in _state too: the warnings module may still be reading the
        # entry when match() takes it out of the list.
        entry = _state["fork_filter"] = ("ignore", _ForkWarningOnce(), DeprecationWarning, None, 0)
        warnings.filters.insert(0, entry)
    elif not wanted and present:
        try:
            warnings.filters.remove(entry)
        except ValueError:
            return
    else:
        return
    try:
        warnings._filters_mutated()
    except AttributeError:
        pass


def _before_fork():
    if sys.version_info >= (3, 12) and (_c.is_running() or _state.get("fork_filter")):
        _fork_filter(_c.is_running() and _only_profiler_threads())


class _Token:
    """Keeps our multiprocessing after-fork registration alive."""


_MP_TOKEN = _Token()


def _mp_child_started(_token):
    """In a multiprocessing child (fork or spawn), after multiprocessing
    cleared its finalizers: such children end with os._exit (no atexit), so
    flush from multiprocessing's own exit hook."""
    util = sys.modules.get("multiprocessing.util")
    if util is not None and _c.is_running():
        util.Finalize(None, stop, exitpriority=-100)


def _hook_multiprocessing():
    """Called once multiprocessing is imported (now, or later through the
    import hook in _spawn.py, so programs that never use it never load it)."""
    import multiprocessing.util as util
    util.register_after_fork(_MP_TOKEN, _mp_child_started)


def _install_hooks():
    if _state["hooks"]:
        return
    _state["hooks"] = True
    atexit.register(_stop_at_exit)
    runpy = sys.modules.get("runpy")
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory was removed
        cwd = ""
    # As bytes: a path undecodable in the locale (a C-locale process in a
    # non-ASCII directory) holds surrogates that strict UTF-8 rejects.
    _c.set_hidden_files(os.fsencode(os.path.dirname(os.path.abspath(__file__)) + os.sep),
                        os.fsencode(getattr(runpy, "__file__", None) or ""), os.fsencode(cwd))
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_child=_after_fork_child)
    _patch_threading()
    from . import _spawn
    _spawn.when_imported(_hook_multiprocessing)
    _spawn.after_import("asyncio", _arm_asyncio)


class _ProbeLoop:
    """Just enough of an event loop for a Task to be made; it never runs."""

    def get_debug(self):
        return False

    def call_soon(self, *args, **kwargs):
        return None


async def _probe():
    pass


def _arm_asyncio():
    """Label CPU and wall samples with the asyncio task being run (`task
    name`): the sampler reads _asyncio's current-task dict (pyasync.h). A
    throwaway Task shows where this interpreter's Task keeps its coroutine
    and name; it is never scheduled."""
    if _state.get("asyncio_armed"):
        return
    try:
        import _asyncio
    except ImportError:  # no C accelerator: no labels
        return
    current = getattr(_asyncio, "_current_tasks", None)
    tasks = sys.modules.get("asyncio.tasks")
    if not isinstance(current, dict) or getattr(tasks, "_current_tasks", current) is not current:
        return
    coro = _probe()
    name = "contprof-probe-%x" % id(coro)
    task = None
    try:
        task = _asyncio.Task(coro, loop=_ProbeLoop(), name=name)
        _state["asyncio_armed"] = _c.asyncio_arm(current, _asyncio.Task, task, coro, name)
    finally:
        if task is not None:
            task._log_destroy_pending = False
        coro.close()


def start(**options):
    """Start profiling this process. Keyword arguments are settings (see
    `python -m contprof --help`); they beat the environment and config file.
    Bad values print one warning and the default is used. Returns True if
    profiling started (False if it was already running)."""
    with _lock:
        if _c.is_running() or not _c.in_main_interpreter():
            return False  # sub-interpreters are not profiled (see README)
        _state["options"] = dict(options)  # for spawned children (_spawn.py)
        config_file = options.pop("config", None)
        _config.configure(options, _service_default(), config_file)
        _install_hooks()
        for t in threading.enumerate():
            _register(t)
        _static_runtime_info()
        started = _c.start(_version())
        if started:
            _start_events()
        return started


def _start_events():
    """Lock and exception profiling, as the settings say."""
    import json
    try:
        cfg = json.loads(_c.config_json() or "{}")
    except ValueError:
        cfg = {}
    if cfg.get("lock_enabled", True):
        from . import _locks
        _locks.start(cfg.get("lock_samples_per_s", 500))
    if cfg.get("exception_enabled", True):
        from . import _exceptions
        _exceptions.start(cfg.get("exception_samples_per_s", 500))


def _stop_events():
    for name in ("_locks", "_exceptions"):
        mod = sys.modules.get(__name__ + "." + name)
        if mod is not None:
            mod.stop()


def diagnose(**options):
    """The support report: OS, kernel, CPUs, container limits, this
    interpreter, contprof's build, every setting with its source (secrets
    redacted) and each destination checked live. Settings as for start().
    Returns (problems, text); problems == 0 means healthy."""
    with _lock:
        config_file = options.pop("config", None)
        _config.configure(options, _service_default(), config_file)
        _c.runtime_info_set("runtime_facts", json.dumps(_runtime_facts()))
    return _c.diagnose()


def stop():
    """Stop profiling and write/upload the last profile (bounded wait)."""
    _stop(False)


def _stop_at_exit():
    _stop(True)


def _stop(at_exit):
    with _lock:
        _stop_events()
        _c.stop(at_exit)
        if _state.get("fork_filter"):
            _fork_filter(False)
        hook = _state.pop("exit_hook", None)
    if hook:
        hook()


def flush(timeout=5.0):
    """Export the current profile now; True when it was written/uploaded."""
    return _c.flush(int(timeout * 1000))


def is_running():
    return _c.is_running()


def _on_stop(fn):
    """Run fn once after the next stop() (the CLI's summary)."""
    _state["exit_hook"] = fn


def _start_followed(options):
    """Entry point in a child process of `python -m contprof` (setting
    follow_children; see _boot/sitecustomize.py): the launcher's explicit
    options, this process's own name, profiles and runtime-id."""
    _state["followed"] = True
    try:
        start(**options)
    except Exception as exc:  # the child must run even if we cannot
        _c.log(_c.LOG_WARN, "not profiling child process: %s" % exc)


def _start_spawned(options):
    """Entry point in a multiprocessing spawn child (see _spawn.py)."""
    try:
        start(**options)
    except Exception as exc:  # the child must run even if we cannot
        _c.log(_c.LOG_WARN, "not profiling spawned child: %s" % exc)
