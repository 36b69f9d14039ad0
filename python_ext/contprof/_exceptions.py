"""Exception profiling: sampled raised exceptions with the raising stack
(see python_ext/src/pyexc.c). On 3.12+ through sys.monitoring's RAISE
event under a free tool id (4 or 3); before, through a hook on the exception
classes' constructors, installed by the native side."""
import sys

from . import _contprof as _c

_state = {}


def _tool_id(mon):
    """A free sys.monitoring tool id. Not PROFILER_ID: cProfile takes it
    (3.12+) and would fail if we held it; 3 and 4 have no owner by
    convention."""
    for tool in (4, 3):
        if mon.get_tool(tool) in (None, "contprof"):
            return tool
    return None


def start(per_s):
    mon = getattr(sys, "monitoring", None)
    if mon is not None:
        tool = _tool_id(mon)
        if tool is None:
            _c.log(_c.LOG_WARN, "exception profiling off: sys.monitoring tools 3 and 4 are both in use")
            return
        if mon.get_tool(tool) is None:
            mon.use_tool_id(tool, "contprof")
        mon.register_callback(tool, mon.events.RAISE, _c.exc_raise_event)
        mon.set_events(tool, mon.get_events(tool) | mon.events.RAISE)
        _state["tool"] = tool
    _c.exc_start(int(per_s))


def stop():
    _c.exc_stop()
    tool = _state.pop("tool", None)
    if tool is not None:
        mon = sys.monitoring
        mon.set_events(tool, 0)
        mon.register_callback(tool, mon.events.RAISE, None)
        mon.free_tool_id(tool)
