"""Stands in for the _contprof extension inside a sub-interpreter that
refuses it (3.12+ interpreters with their own GIL load no single-phase
extension). Sub-interpreters are never profiled, so every call answers
False and does nothing; `import contprof` / `import contprof.auto` (e.g.
from a sitecustomize.py) then succeed there and print no error into the
program's output."""

__version__ = ""


def in_subinterpreter():
    """True in a sub-interpreter (pure Python: the extension may be refused)."""
    for name in ("_interpreters", "_xxsubinterpreters"):  # 3.13; 3.8-3.12
        try:
            mod = __import__(name)
            cur, main = mod.get_current(), mod.get_main()
        except Exception:
            continue
        cur = cur[0] if isinstance(cur, tuple) else cur
        main = main[0] if isinstance(main, tuple) else main
        return int(cur) != int(main)
    return False


def _false(*args, **kwargs):
    return False


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _false
