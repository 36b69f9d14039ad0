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

from . import _config
from . import _contprof as _c

__version__ = _c.__version__
__all__ = ["start", "stop", "flush", "is_running", "settings"]

_state = {"options": {}, "hooks": False, "exit_hook": None}
_lock = threading.RLock()
settings = _config.settings


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
        return

    def _set_native_id(self):
        orig(self)
        try:
            _register(self)
        except Exception:  # never break the host's thread
            pass

    _set_native_id._contprof = True
    threading.Thread._set_native_id = _set_native_id


def _version():
    return "%d.%d.%d" % sys.version_info[:3]


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
    for key, value in info.items():
        _c.runtime_info_set(key, json.dumps(value))
    _c.runtime_info_set("settings", _c.config_json() or "{}")


def _refresh_runtime_info():
    """Called under the GIL at each export: the values that change."""
    import gc
    _c.runtime_info_set("gc_counts", json.dumps(list(gc.get_count())))
    # len() of threading's dicts, not active_count(): that takes a lock a
    # thread calling stop() might hold, and we run while it waits for us.
    count = len(getattr(threading, "_active", ())) + len(getattr(threading, "_limbo", ()))
    _c.runtime_info_set("thread_count", str(count))
    _c.runtime_info_set("loaded_modules", str(len(sys.modules)))


def _service_default():
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    name = os.path.splitext(os.path.basename(path or ""))[0]
    return name if name and name not in ("-c", "__main__") else "python"


def _after_fork_child():
    # Before 3.11 the sampler learns kernel tids from the threads themselves;
    # in the child the forking thread has a new one.
    t = threading.current_thread()
    _c.register_thread(threading.get_ident(), _c.gettid(), t.name)
    _c.after_fork_child()


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
    if sys.version_info < (3, 11):
        from . import _qualname
        _c.set_qualname_helper(_qualname.qualname)
    atexit.register(stop)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_child)
    _patch_threading()
    from . import _spawn
    _spawn.when_imported(_hook_multiprocessing)


def start(**options):
    """Start profiling this process. Keyword arguments are settings (see
    `python -m contprof --help`); they beat the environment and config file.
    Bad values print one warning and the default is used. Returns True if
    profiling started (False if it was already running)."""
    with _lock:
        if _c.is_running():
            return False
        _state["options"] = dict(options)  # for spawned children (_spawn.py)
        config_file = options.pop("config", None)
        _config.configure(options, _service_default(), config_file)
        _install_hooks()
        for t in threading.enumerate():
            _register(t)
        _static_runtime_info()
        return _c.start(_refresh_runtime_info, _version())


def stop():
    """Stop profiling and write/upload the last profile (bounded wait)."""
    with _lock:
        _c.stop()
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


def _start_spawned(options):
    """Entry point in a multiprocessing spawn child (see _spawn.py)."""
    try:
        start(**options)
    except Exception as exc:  # the child must run even if we cannot
        _c.log(_c.LOG_WARN, "not profiling spawned child: %s" % exc)
