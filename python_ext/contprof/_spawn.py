"""Keep profiling in multiprocessing "spawn" (and forkserver) children.

A spawned child is a fresh interpreter started with
`python -c 'from multiprocessing.spawn import spawn_main; ...'`. We wrap
multiprocessing.spawn.get_command_line so that the -c program first puts
this package's directory on sys.path and starts contprof with the parent's
explicit options (environment and config file are inherited anyway). This
touches only multiprocessing's own children, never other subprocesses, and
needs no sitecustomize or PYTHONPATH change that could shadow the user's.
"""
import importlib.util
import os
import sys

_PREFIX = "from multiprocessing.spawn import spawn_main"


def _bootstrap_code():
    from . import _state
    from ._config import _text
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Settings travel as text, so repr() is always a valid literal.
    opts = {str(k): _text(v) for k, v in _state["options"].items()}
    return ("import sys; sys.path.insert(0, %r); import contprof; "
            "contprof._start_spawned(%r); sys.path.remove(%r); "
            % (pkg_parent, opts, pkg_parent))


def _wrap(orig):
    def get_command_line(**kwds):
        cmd = orig(**kwds)
        try:
            from . import is_running
            if is_running():
                i = cmd.index("-c") + 1
                if cmd[i].startswith(_PREFIX):
                    cmd = cmd[:i] + [_bootstrap_code() + cmd[i]] + cmd[i + 1:]
        except (ValueError, IndexError):
            pass
        return cmd
    get_command_line._contprof = True
    return get_command_line


def _install():
    import multiprocessing.spawn as spawn
    if not getattr(spawn.get_command_line, "_contprof", False):
        spawn.get_command_line = _wrap(spawn.get_command_line)


class _Finder:
    """A meta-path finder that only waits for one module (`multiprocessing`,
    `asyncio`) to finish importing, then runs the hooks; it finds nothing
    itself."""

    def __init__(self, hooks, module="multiprocessing"):
        self.hooks = hooks
        self.module = module

    def find_spec(self, name, path=None, target=None):
        if name != self.module:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        orig, hooks = spec.loader.exec_module, self.hooks

        def exec_module(module):
            orig(module)
            _run(hooks)

        spec.loader.exec_module = exec_module
        return spec


def _run(hooks):
    for hook in hooks:
        try:
            hook()
        except Exception:  # profiling children is best effort
            pass


def when_imported(hook):
    """Run hook (and install the spawn wrapper) once multiprocessing is
    imported: at once if it already is, else right after its import."""
    hooks = [hook, _install]
    if "multiprocessing" in sys.modules:
        _run(hooks)
    elif not any(isinstance(f, _Finder) and f.module == "multiprocessing" for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder(hooks))


def after_import(module, hook):
    """Run hook once `module` is imported: at once if it already is, else
    right after its import (one waiting finder per module)."""
    if module in sys.modules:
        _run([hook])
    elif not any(isinstance(f, _Finder) and f.module == module for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder([hook], module))
