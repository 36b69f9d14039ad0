"""Profile child Python processes of `python -m contprof` (setting
follow_children).

The launcher puts this folder first on PYTHONPATH, so every Python process
the program starts (subprocess, os.exec*, multiprocessing spawn and
forkserver) imports this module at start-up. It starts contprof with the
launcher's explicit options (CONTPROF_CHILD_OPTIONS, JSON), then runs the
sitecustomize this one hides, if there is one, so the host's own start-up
code still runs. A child that is another Python version, or that cannot
import contprof, runs unprofiled and unchanged.
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _start():
    import json
    opts = json.loads(os.environ.get("CONTPROF_CHILD_OPTIONS") or "{}")
    try:
        import contprof
    except ImportError:
        # Not on this interpreter's path: the launcher's copy, if it is
        # built for this version; the path is restored either way.
        pkg_parent = os.path.dirname(os.path.dirname(_HERE))
        sys.path.insert(0, pkg_parent)
        try:
            import contprof
        finally:
            sys.path.remove(pkg_parent)
    contprof._start_followed(opts)


def _chain():
    """Import the sitecustomize that this folder shadows."""
    import importlib.machinery
    import importlib.util
    ours = sys.modules.pop("sitecustomize", None)
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        if ours is not None:
            sys.modules["sitecustomize"] = ours
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


# This folder leaves sys.path at once: it holds nothing the program imports.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
try:
    _start()
except Exception:  # the child must run, profiled or not
    pass
_chain()
