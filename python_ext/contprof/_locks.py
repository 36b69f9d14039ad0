"""Lock-contention profiling: while profiling, threading.Lock and
threading.RLock (hence Condition, Semaphore, queue.Queue) make locks of
the native wrapper types in _contprof, which time contended acquires
(see python_ext/src/pylock.c). Locks made before start() are not wrapped.

asyncio.Lock, Event, Condition, Semaphore, BoundedSemaphore and Queue
(with PriorityQueue, LifoQueue; get and put, and join through the queue's
own Event) are replaced by subclasses whose method is the original's fast
path verbatim (no extra cost when it does not wait) and, when it must
wait, times the suspended call and offers the wait to the same sampler.
The subclasses are installed at start() if asyncio is imported, else as
soon as asyncio.locks / asyncio.queues are.

lock_name() is called by the native side once per lock, at its first
sampled wait, with the acquiring Python frame still on top of the stack.
"""
import sys
import threading
import time
from types import FunctionType as _FunctionType
from types import ModuleType as _ModuleType

from . import _contprof as _c

_state = {}

# Containers the standard library builds around a lock: a lock found as
# one of these attributes of a variable is named after the variable.
_INNER = ("_lock", "mutex", "_cond", "_block", "_finished")


def _attrs(value):
    """value's instance __dict__, or None: read without calling the
    object's own __getattr__ or properties, and without raising for the
    many values that have none (an exception costs ~1 us, and a name
    search used to raise hundreds: ~0.3 ms per new lock, which a
    thread-per-request server paid at every request)."""
    if not type(value).__dictoffset__:
        return None
    try:
        attrs = object.__getattribute__(value, "__dict__")
    except Exception:
        return None
    return attrs if type(attrs) is dict else None


def _holds(value, lock, depth=0):
    if value is lock:
        return True
    attrs = _attrs(value) if depth < 2 else None
    if attrs is None:
        return False
    for attr in _INNER:
        inner = attrs.get(attr)
        if inner is not None and _holds(inner, lock, depth + 1):
            return True
    return False


def _name_in(mapping, lock, deep=False):
    """The key of mapping holding the lock; with deep, also 'key.attr' for
    an object in mapping whose attribute holds it (svc.guard)."""
    try:
        items = [(k, v) for k, v in mapping.items() if isinstance(k, str)]
    except Exception:
        return None
    for k, v in items:
        if _holds(v, lock):
            return k
    if not deep:
        return None
    for k, v in items:
        if isinstance(v, (type, _ModuleType, _FunctionType)):
            continue
        attrs = _attrs(v)
        name = _name_in(attrs, lock) if attrs is not None else None
        if name:
            return "%s.%s" % (k, name)
    return None


# (and this file: the asyncio subclasses' own frames)
_LIBRARIES = ("/threading.py", "/queue.py", "/asyncio/locks.py", "/asyncio/queues.py", "/contprof/_locks.py")


def _library(frame):
    return frame.f_code.co_filename.endswith(_LIBRARIES)


def _find(frame, lock):
    """The variable (local, attribute of self, global) holding the lock,
    searched from the acquiring frame outwards past threading/queue."""
    for _ in range(6):
        if frame is None:
            return None
        if not _library(frame):
            local = frame.f_locals
            owner = local.get("self")
            attrs = _attrs(owner) if owner is not None else None
            name = (_name_in(local, lock) or (_name_in(attrs, lock) if attrs is not None else None)
                    or _name_in(local, lock, deep=True) or _name_in(frame.f_globals, lock, deep=True))
            if name:
                return name
        frame = frame.f_back
    return None


# The variable found for a lock made at a site and acquired along a chain
# of code positions (the frames _find may search): a thread-per-request
# server makes new locks at one site for every request, and searching the
# variables again for each cost it ~20-90 us a request (DECISIONS).
_found = {}
_FOUND_MAX = 4096


def _chain(frame):
    """The chain's key, and its code objects: (id, f_lasti) pairs hash and
    compare without hashing code objects or decoding line tables; the
    cache entry holds the code objects, so no id is reused while keyed."""
    key = []
    codes = []
    for _ in range(6):
        if frame is None:
            break
        code = frame.f_code
        key.append(id(code))
        key.append(frame.f_lasti)
        codes.append(code)
        frame = frame.f_back
    return tuple(key), codes


def lock_name(lock, site_file, site_line, skip=0, frame=None):
    """'file.py:LINE:variable' (LINE where the lock was made), as Datadog
    names locks; 'file.py:LINE' when no variable holds it. The search
    starts skip frames above the caller (or at frame)."""
    var = None
    try:
        frame = frame if frame is not None else sys._getframe(1 + skip)
        chain, codes = _chain(frame)
        key = (site_file, site_line, chain)
        hit = _found.get(key)
        if hit is None:
            var = _find(frame, lock)
            if len(_found) >= _FOUND_MAX:
                _found.clear()
            _found[key] = (var, codes)
        else:
            var = hit[0]
    except Exception:
        var = None
    site = "%s:%d" % (site_file, site_line) if site_file else "<unknown>"
    return "%s:%s" % (site, var) if var else site


# ---- asyncio ---------------------------------------------------------------

def _frame(depth):
    """sys._getframe(depth) of the caller, or None where the stack is not
    that deep: a coroutine stepped by a loop written in C (uvloop) has no
    Python frame under it, and a recorder must never raise into the
    awaiting code."""
    try:
        return sys._getframe(depth + 1)
    except ValueError:
        return None


def _site(depth):
    """(base file name, line) of the first frame above depth outside asyncio
    and this file (a Queue's Event, a Condition's Lock: made by the
    subclass's __init__ through asyncio's)."""
    try:
        f = sys._getframe(depth)
        while f is not None and ("/asyncio/" in f.f_code.co_filename or
                                 f.f_code.co_filename.endswith("/contprof/_locks.py")):
            f = f.f_back
        if f is not None:
            return f.f_code.co_filename.rsplit("/", 1)[-1], f.f_lineno
    except Exception:
        pass
    return None, 0


def _awaiting(f):
    """Before 3.11 a coroutine resumed by a throw (the cancellation of a
    timeout) runs with the frames of the coroutines awaiting it missing
    from its f_back chain: the wait's stack would be the event loop's.
    f is the first frame past the library's on that chain. Returns the
    current task's awaiting frames (leaf first, past asyncio's and ours)
    when f is not among them, else ()."""
    if sys.version_info >= (3, 11):
        return ()
    try:
        task = sys.modules["asyncio"].current_task()
        coro = task.get_coro() if task is not None else None
    except Exception:
        return ()
    frames = []
    while coro is not None and len(frames) < 32:
        fr = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if fr is None:
            break
        if fr is f:
            return ()
        if not _library(fr):
            frames.append(fr)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    frames.reverse()
    return frames


def _record(obj, s, depth, f):
    """Record sampled wait s for obj, charged to the awaiting code: f is the
    frame depth levels above the caller (None where the stack is not that
    deep); the frames up to it, this one, and ours and asyncio's from f on
    are dropped, and the task's awaiting frames put in their place when the
    chain lacks them (_awaiting)."""
    skip = depth + 1
    while f is not None and _library(f):
        skip, f = skip + 1, f.f_back
    prefix = _awaiting(f)
    name = obj._cp_name
    if name is None:
        name = obj._cp_name = _c.name_lock(lock_name, obj, obj._cp_site[0], obj._cp_site[1], depth + 1,
                                           prefix[0] if prefix else None)
    if prefix:
        _c.lock_wait_record(s[0], s[1], name, skip, tuple((fr.f_code, fr.f_lasti) for fr in prefix))
    else:
        _c.lock_wait_record(s[0], s[1], name, skip)


def _async_lock_class(base):
    monotonic_ns = time.monotonic_ns if hasattr(time, "monotonic_ns") else None
    hit = _c.lock_wait_hit

    class Lock(base):
        def __init__(self, *args, **kw):
            base.__init__(self, *args, **kw)
            self._cp_site = _site(2)
            self._cp_name = None

        async def acquire(self):
            # the original fast path, verbatim (3.8/3.9 keep a deque, later
            # versions None, in _waiters)
            if (not self._locked and (self._waiters is None or
                                      all(w.cancelled() for w in self._waiters))):
                self._locked = True
                return True
            t0 = monotonic_ns()
            try:
                return await base.acquire(self)
            finally:
                # a wait ends when acquire returns or raises (a timeout's
                # cancellation too), as in _timed below
                s, f = None, _frame(1)
                if f is None or f.f_code not in _REACQUIRE:  # a Condition's: its wait's
                    s = hit(monotonic_ns() - t0)
                if s is not None:
                    # charged to the awaiting code: past this frame and
                    # asyncio's own (__aenter__, Condition)
                    _record(self, s, 1, f)

    Lock.__module__, Lock.__qualname__, Lock.__doc__ = base.__module__, base.__qualname__, base.__doc__
    return Lock


# Code of the original Condition.wait, whose re-acquire of the lock the
# Lock above leaves to the condition's timed wait.
_REACQUIRE = set()


def _waited(obj, t0, monotonic_ns):
    """Offer a suspended call's wait (from t0) to the sampler; charged to
    the awaiting code past the wrapper (whose frame called this one) and
    asyncio's own frames."""
    s = _c.lock_wait_hit(monotonic_ns() - t0)
    if s is None:
        return
    _record(obj, s, 2, _frame(2))


class _Standin(type):
    """Metaclass of the subclasses below: they stand in for their base in
    isinstance/issubclass (asyncio's BoundedSemaphore and PriorityQueue
    derive from the original Semaphore and Queue, and objects made before
    start() are of the original classes). A user's subclass of one of
    them (class MyQueue(asyncio.Queue)) has this metaclass too, and checks
    as usual."""

    def __instancecheck__(cls, obj):
        base = cls.__dict__.get("_cp_base")
        return isinstance(obj, base) if base is not None else type.__instancecheck__(cls, obj)

    def __subclasscheck__(cls, sub):
        base = cls.__dict__.get("_cp_base")
        return issubclass(sub, base) if base is not None else type.__subclasscheck__(cls, sub)


def _standin(base, methods):
    """A subclass of base with these methods, standing in for it, whose
    instances remember where they were made (for their lock name)."""
    def __init__(self, *args, **kw):
        base.__init__(self, *args, **kw)
        self._cp_site = _site(2)
        self._cp_name = None
    ns = dict(methods, __init__=__init__, _cp_base=base, __module__=base.__module__,
              __qualname__=base.__qualname__, __doc__=base.__doc__)
    return _Standin(base.__name__, (base,), ns)


def _async_semaphore_class(base):
    async def acquire(self):
        # 3.11+'s fast path verbatim; the same test on 3.8-3.10, whose
        # locked() is _value == 0 and whose acquire waits while it is
        if not self.locked():
            self._value -= 1
            return True
        return await _timed(self, base.acquire)

    return _standin(base, {"acquire": acquire})


def _async_queue_class(base):
    async def get(self):
        if not self.empty():  # the original waits while empty()
            return self.get_nowait()
        return await _timed(self, base.get)

    async def put(self, item):
        if not self.full():  # the original waits while full()
            return self.put_nowait(item)
        return await _timed(self, lambda q: base.put(q, item))

    return _standin(base, {"get": get, "put": put})


async def _timed(obj, call):
    """await call(obj) (the original's method, about to suspend), its wait
    from here until it returns or raises (a timeout's cancellation ends a
    wait too) offered to the sampler."""
    t0 = time.monotonic_ns()
    try:
        return await call(obj)
    finally:
        _waited(obj, t0, time.monotonic_ns)


def _async_event_class(base):
    async def wait(self):
        if self._value:  # the original's fast path
            return True
        return await _timed(self, base.wait)

    return _standin(base, {"wait": wait})


def _async_condition_class(base):
    _REACQUIRE.add(base.wait.__code__)

    async def wait(self):
        # No fast path: the original always suspends, or raises at once
        # when the lock is not held. wait_for() waits in wait().
        if not self.locked():
            return await base.wait(self)
        return await _timed(self, base.wait)

    return _standin(base, {"wait": wait})


# module -> (class name, subclass maker), patched in this order; a Queue's
# join() waits on its Event (_finished), named after the queue
_ASYNC = {
    "asyncio.locks": (("Lock", _async_lock_class), ("Event", _async_event_class),
                      ("Condition", _async_condition_class), ("Semaphore", _async_semaphore_class),
                      ("BoundedSemaphore", _async_semaphore_class)),
    "asyncio.queues": (("Queue", _async_queue_class), ("PriorityQueue", _async_queue_class),
                       ("LifoQueue", _async_queue_class)),
}


def _patch_asyncio(module):
    if not hasattr(time, "monotonic_ns"):
        return
    patched = _state.setdefault("async", {})
    aio = sys.modules.get("asyncio")
    for cname, make in _ASYNC.get(module.__name__, ()):
        base = getattr(module, cname, None)
        if (module.__name__, cname) in patched or not isinstance(base, type):
            continue
        ours = make(base)
        patched[(module.__name__, cname)] = (base, ours)
        setattr(module, cname, ours)
        if aio is not None and getattr(aio, cname, None) is base:
            setattr(aio, cname, ours)


class _AsyncioFinder:
    """Installs the asyncio subclasses as soon as asyncio.locks and
    asyncio.queues are imported (before asyncio's own `from .locks import
    *`)."""
    pending = set()

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name not in cls.pending:
            return None
        cls.pending.discard(name)  # one use: the next lookup is the real one
        if not cls.pending and cls in sys.meta_path:
            sys.meta_path.remove(cls)
        import importlib.util
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            if _state.get("active"):
                _patch_asyncio(module)
        spec.loader.exec_module = exec_and_patch
        return spec


def _start_asyncio():
    for name in _ASYNC:
        module = sys.modules.get(name)
        if module is not None:
            _patch_asyncio(module)
        else:
            _AsyncioFinder.pending.add(name)
    if _AsyncioFinder.pending and _AsyncioFinder not in sys.meta_path:
        sys.meta_path.insert(0, _AsyncioFinder)


def _stop_asyncio():
    if _AsyncioFinder in sys.meta_path:
        sys.meta_path.remove(_AsyncioFinder)
    _AsyncioFinder.pending.clear()
    aio = sys.modules.get("asyncio")
    for (mname, cname), (base, ours) in _state.pop("async", {}).items():
        module = sys.modules.get(mname)
        if module is not None and getattr(module, cname, None) is ours:
            setattr(module, cname, base)
        if aio is not None and getattr(aio, cname, None) is ours:
            setattr(aio, cname, base)


def start(per_s):
    if "lock" not in _state:
        _state["lock"] = threading.Lock
        _state["rlock"] = threading._CRLock
    real_lock, real_rlock = _state["lock"], _state["rlock"]
    if real_rlock is None:  # no C RLock: the pure-Python one is built on Lock
        real_rlock = threading._PyRLock
    _c.lock_start(real_lock, real_rlock, lock_name, int(per_s))
    # What threading.Lock is without the profiler: a function before 3.13
    # (_thread.allocate_lock), the lock type from 3.13.
    _state["ours"] = _c.Lock if isinstance(real_lock, type) else _c.allocate_lock
    threading.Lock = _state["ours"]
    if _state["rlock"] is not None:
        threading._CRLock = _c.RLock
    _state["active"] = True
    _start_asyncio()


def stop():
    if "lock" not in _state:
        return
    _state["active"] = False
    _stop_asyncio()
    _c.lock_stop()
    if threading.Lock is _state.get("ours"):
        threading.Lock = _state["lock"]
    if threading._CRLock is _c.RLock:
        threading._CRLock = _state["rlock"]
