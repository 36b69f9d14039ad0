"""Qualified function names for interpreters without co_qualname (< 3.11).

The resolver calls qualname(code) once per code object (its result is
cached in C). We look for the function that owns the code object among
the module's globals and the classes defined there (one level), reading
only plain dicts so no user descriptor or __getattr__ ever runs.
"""
import sys
import types

_by_file = {}
_CAP = 4096


def _module_for(filename):
    mod = _by_file.get(filename)
    if mod is None:
        for m in list(sys.modules.values()):
            f = getattr(m, "__file__", None) if isinstance(m, types.ModuleType) else None
            if f == filename:
                mod = m
                break
        if len(_by_file) >= _CAP:
            _by_file.clear()
        _by_file[filename] = mod if mod is not None else False
    return mod or None


def _unwrap(v):
    if isinstance(v, (staticmethod, classmethod)):
        return v.__func__
    if isinstance(v, property):
        return v.fget
    return v


def _nested(outer, qual, code, depth):
    """code defined inside outer (a closure, lambda or comprehension)."""
    for c in outer.co_consts:
        if isinstance(c, types.CodeType):
            if c is code:
                return "%s.<locals>.%s" % (qual, c.co_name)
            if depth:
                q = _nested(c, "%s.<locals>.%s" % (qual, c.co_name), code, depth - 1)
                if q:
                    return q
    return None


def _search(ns, code, depth):
    for v in list(ns.values()):
        v = _unwrap(v)
        if isinstance(v, types.FunctionType):
            if v.__code__ is code:
                return v.__qualname__
            q = _nested(v.__code__, v.__qualname__, code, 2)
            if q:
                return q
        if depth and isinstance(v, type):
            q = _search(v.__dict__, code, depth - 1)
            if q:
                return q
    return None


def qualname(code):
    mod = _module_for(code.co_filename)
    if mod is not None:
        q = _search(mod.__dict__, code, 1)
        if q:
            return q
    return code.co_name
