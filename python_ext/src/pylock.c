/*
 * pylock.c — the profiled lock types (see pylock.h).
 *
 * A wrapped lock keeps bound references to the real lock's acquire and
 * release, so forwarding is one vectorcall. Its name is found once, at its
 * first sampled event, by contprof._locks.lock_name (Python; it looks for
 * the variable or attribute holding the lock in the calling frames) and
 * cached: "file.py:LINE:name", LINE being where the lock was created.
 * The other methods of the real locks (locked, _at_fork_reinit, and an
 * RLock's _is_owned, _release_save, _acquire_restore, used by Condition)
 * are forwarded.
 *
 * Everything here runs with the GIL held, and every acquire and release
 * of a wrapped lock goes through the wrapper, so it knows whether (and by
 * which thread) the lock is held. An acquire of a free lock is the real
 * call plus a few loads: no clock is read. Only an acquire that will wait
 * is timed (around the real acquire, which drops the GIL while blocked).
 * Hold time is sampled by count when a hold starts (a countdown decrement
 * per acquire); only a sampled hold reads the clock, at its start and at
 * the release, and is charged to the releasing stack.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#include "pylock.h"

#include "codecache.h"
#include "contprof.h"
#include "pyevents.h"
#include "pyoffsets.h"
#include "pywalk.h"
#include "sampler.h"

#if PY_VERSION_HEX < 0x03090000
#define PyObject_Vectorcall _PyObject_Vectorcall
static PyFrameObject *PyFrame_GetBack(PyFrameObject *f)
{
    Py_XINCREF(f->f_back);
    return f->f_back;
}
#endif

typedef struct plock {
    PyObject_HEAD
    PyObject *inner, *acq, *rel;
    PyObject *site_code;  /* code object of the creating frame, or NULL  */
    int32_t site_offset;  /* its instruction's byte offset (-1: unknown) */
    PyObject *name;       /* str, found at the first sampled event       */
    PyObject *weakrefs;
    /* What the wrapper saw (every acquire and release goes through it):
     * depth > 0 while held, by owner (an RLock's recursion depth). */
    long depth;
    unsigned long owner;
    long waiters;         /* threads in a timed (blocking) acquire       */
    int64_t held_since;   /* CLOCK_MONOTONIC ns of a sampled hold, or 0  */
    int64_t hold_count;   /* its weight in holds (1/p)                   */
} plock;

static PyTypeObject g_lock_type, g_rlock_type;

static struct {
    PyObject *real_lock, *real_rlock, *namer;
    bool active;
    cp_rate_sampler rs;   /* waits, by nanoseconds                       */
    cp_rate_state st;     /* GIL (all of g_l)                            */
    int64_t hold_skip;    /* holds before the next sampled one           */
    cp_rate_sampler hold_rs;
    cp_rate_state hold_st;
} g_l;

/* ---- creation site --------------------------------------------------- */

/* threading.py and queue.py build locks for their callers: the site that
 * names a Condition or a Queue's lock is the caller's. Every code object
 * of a module shares its co_filename object, so the answer is kept per
 * filename object (held here, so its address is never another's). */
#define SITE_DEPTH 8
#define FILES_KNOWN 16
static struct {
    PyObject *file;
    bool lib;
} g_files[FILES_KNOWN];
static unsigned g_files_next;
static PyObject *g_lib_suffix[2], *g_s_acquire, *g_s_release;

static bool is_lock_library(PyObject *file)
{
    for (unsigned i = 0; i < FILES_KNOWN; i++)
        if (g_files[i].file == file)
            return g_files[i].lib;
    bool lib = false;
    for (size_t i = 0; i < sizeof g_lib_suffix / sizeof g_lib_suffix[0]; i++)
        if (PyUnicode_Tailmatch(file, g_lib_suffix[i], 0, PY_SSIZE_T_MAX, 1) == 1)
            lib = true;
    PyErr_Clear();
    unsigned k = g_files_next++ % FILES_KNOWN;
    Py_INCREF(file);
    Py_XSETREF(g_files[k].file, file);
    g_files[k].lib = lib;
    return lib;
}

/* The calling thread's top cap frames (GIL held), read in place: no
 * frame objects are made. */
static uint32_t own_frames(cp_rawframe *fr, uint32_t cap)
{
    cp_tsinfo ti;
    if (!cp__ts_read((uintptr_t)PyThreadState_Get(), true, &ti))
        return 0;
    return cp__walk(cp__ts_top(&ti, true), true, fr, cap, NULL);
}

/* The creating frame: the first one outside threading.py and queue.py;
 * its file and line are worked out only if the lock is ever named. */
static void find_site(plock *self)
{
    cp_rawframe fr[SITE_DEPTH];
    uint32_t n = own_frames(fr, SITE_DEPTH);
    for (uint32_t i = 0; i < n; i++) {
        PyCodeObject *co = (PyCodeObject *)(uintptr_t)fr[i].code;
        if (!cp_rawframe_is_python(&fr[i]) || !co || is_lock_library(co->co_filename))
            continue;
        Py_INCREF(co);
        self->site_code = (PyObject *)co;
        self->site_offset = fr[i].offset;
        return;
    }
}

/* "file.py" and the line of the creating frame (new reference, or NULL
 * and *line 0 when unknown). */
static PyObject *site_of(plock *self, int *line)
{
    *line = 0;
    if (!self->site_code)
        return NULL;
    PyCodeObject *co = (PyCodeObject *)self->site_code;
    Py_ssize_t len = PyUnicode_GetLength(co->co_filename);
    Py_ssize_t slash = len < 0 ? -1 : PyUnicode_FindChar(co->co_filename, '/', 0, len, -1);
    PyObject *file = len < 0 || slash < -1 ? NULL : PyUnicode_Substring(co->co_filename, slash + 1, len);
    if (!file) {
        PyErr_Clear();
        return NULL;
    }
    *line = cp__codecache_line(co, self->site_offset);
    return file;
}

static PyObject *make(PyTypeObject *type, PyObject *factory, PyObject *args, PyObject *kw)
{
    if (!factory) {
        PyErr_SetString(PyExc_RuntimeError, "contprof: lock profiling was never started");
        return NULL;
    }
    PyObject *inner = PyObject_Call(factory, args, kw);
    if (!inner)
        return NULL;
    plock *self = (plock *)type->tp_alloc(type, 0);
    if (!self) {
        Py_DECREF(inner);
        return NULL;
    }
    self->inner = inner;
    self->acq = PyObject_GetAttr(inner, g_s_acquire);
    self->rel = PyObject_GetAttr(inner, g_s_release);
    if (!self->acq || !self->rel) {
        Py_DECREF(self);
        return NULL;
    }
    find_site(self);
    return (PyObject *)self;
}

#if PY_VERSION_HEX >= 0x030D0000
static PyObject *lock_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    return make(type, g_l.real_lock, args, kw);
}
#endif


/* As _thread.RLock: subclassable, and a subclass's own __init__ takes the
 * arguments (the real RLock warns about arguments only when it is called
 * itself). */
static PyObject *rlock_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    if (type != &g_rlock_type && type->tp_init != PyBaseObject_Type.tp_init) {
        PyObject *none = PyTuple_New(0);
        PyObject *r = none ? make(type, g_l.real_rlock, none, NULL) : NULL;
        Py_XDECREF(none);
        return r;
    }
    return make(type, g_l.real_rlock, args, kw);
}

static void plock_dealloc(plock *self)
{
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    Py_XDECREF(self->inner);
    Py_XDECREF(self->acq);
    Py_XDECREF(self->rel);
    Py_XDECREF(self->site_code);
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- accounting ------------------------------------------------------ */

/* Before 3.13 the namer's reading of frame.f_locals leaves on each frame
 * a dict holding all its locals until the frame ends, so a variable the
 * program then deletes stays alive (3.8 test_concurrent_futures: a future
 * outlived `del future`). The frames that had no such dict get theirs
 * dropped again after the namer. */
#define NAMER_FRAMES 16
typedef struct frames_snap {
    PyFrameObject *f[NAMER_FRAMES]; /* strong */
    int n;
} frames_snap;

static void snap_frames(frames_snap *s)
{
    s->n = 0;
    PyFrameObject *f = PyEval_GetFrame(); /* borrowed */
    if (!f || !cp__pyoff_frame_locals(f))
        return;
    Py_INCREF(f);
    for (int depth = 0; f && depth < NAMER_FRAMES; depth++) {
        PyObject **slot = cp__pyoff_frame_locals(f);
        if (slot && !*slot) {
            Py_INCREF(f);
            s->f[s->n++] = f;
        }
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    Py_XDECREF(f);
}

static void drop_new_locals(frames_snap *s)
{
    for (int i = 0; i < s->n; i++) {
        PyObject **slot = cp__pyoff_frame_locals(s->f[i]);
        if (slot)
            Py_CLEAR(*slot);
        Py_DECREF(s->f[i]);
    }
    s->n = 0;
}

/* name_lock(namer, *args): namer(*args), its f_locals left as found (the
 * asyncio lock's naming, done from Python). */
PyObject *cp__pylock_name_lock(PyObject *self, PyObject *args)
{
    (void)self;
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError, "name_lock(namer, *args)");
        return NULL;
    }
    PyObject *rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    if (!rest)
        return NULL;
    frames_snap snap;
    snap_frames(&snap);
    PyObject *r = PyObject_Call(PyTuple_GET_ITEM(args, 0), rest, NULL);
    drop_new_locals(&snap);
    Py_DECREF(rest);
    return r;
}

/* Names found, by creation site and the code positions of the naming
 * frames (what contprof._locks keys its own search cache by): a
 * thread-per-request server makes new locks at one site for every request,
 * and each is named at its first sampled event. A hit costs a walk of the
 * thread's own top frames, not a call into Python that makes frame
 * objects. An entry holds its code objects, so no address in a key is
 * reused while it is kept. GIL held. */
#define NAME_CHAIN 6
#define NAMES_CAP 512 /* 4-way sets; a full set replaces its least recently used */
#define NAMES_WAYS 4
typedef struct name_key {
    uint64_t hash;
    uint32_t n;
    int32_t site_offset, off[NAME_CHAIN];
    PyObject *site_code, *code[NAME_CHAIN]; /* borrowed in a key, owned in an entry */
} name_key;
typedef struct name_entry {
    name_key k;
    PyObject *name;
    uint64_t used; /* g_names_clock at its last store or hit */
} name_entry;
static name_entry g_names[NAMES_CAP];
static uint64_t g_names_clock; /* under the GIL, as the table */

static uint64_t mix64(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h;
}

static bool name_key_make(const plock *self, name_key *k)
{
    cp_rawframe fr[NAME_CHAIN];
    if (!self->site_code)
        return false;
    k->site_code = self->site_code;
    k->site_offset = self->site_offset;
    k->n = 0;
    k->hash = mix64((uint64_t)(uintptr_t)k->site_code, (uint64_t)(uint32_t)k->site_offset);
    uint32_t n = own_frames(fr, NAME_CHAIN);
    for (uint32_t i = 0; i < n; i++) {
        if (!cp_rawframe_is_python(&fr[i]) || !fr[i].code)
            return false;
        k->code[k->n] = (PyObject *)(uintptr_t)fr[i].code;
        k->off[k->n++] = fr[i].offset;
        k->hash = mix64(mix64(k->hash, fr[i].code), (uint64_t)(uint32_t)fr[i].offset);
    }
    return k->n > 0;
}

static bool name_key_eq(const name_key *a, const name_key *b)
{
    if (a->hash != b->hash || a->n != b->n || a->site_code != b->site_code || a->site_offset != b->site_offset)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->code[i] != b->code[i] || a->off[i] != b->off[i])
            return false;
    return true;
}

/* The ways of k's set. Direct-mapped, two keys in use at once that fell
 * on one slot (code addresses differ from run to run) replaced each other
 * at every lock: a thread-per-request program called the namer 42-62
 * times for 400 threads' locks in about one run of eight, 3 otherwise. */
static name_entry *names_set(const name_key *k)
{
    return &g_names[k->hash % (NAMES_CAP / NAMES_WAYS) * NAMES_WAYS];
}

static PyObject *names_find(const name_key *k)
{
    name_entry *set = names_set(k);
    for (int i = 0; i < NAMES_WAYS; i++) {
        if (set[i].name && name_key_eq(&set[i].k, k)) {
            set[i].used = ++g_names_clock;
            return set[i].name;
        }
    }
    return NULL;
}

static void names_store(const name_key *k, PyObject *name)
{
    name_entry *set = names_set(k), *e = &set[0];
    for (int i = 1; i < NAMES_WAYS && e->name; i++)
        if (!set[i].name || set[i].used < e->used)
            e = &set[i];
    name_entry old = *e;
    e->used = ++g_names_clock;
    e->k = *k;
    Py_INCREF(k->site_code);
    for (uint32_t i = 0; i < k->n; i++)
        Py_INCREF(k->code[i]);
    Py_INCREF(name);
    e->name = name;
    if (!old.name)
        return;
    Py_DECREF(old.name);
    Py_DECREF(old.k.site_code);
    for (uint32_t i = 0; i < old.k.n; i++)
        Py_DECREF(old.k.code[i]);
}

/* The name from the namer (contprof._locks.lock_name), or NULL. */
static PyObject *call_namer(plock *self)
{
    int line;
    PyObject *file = site_of(self, &line);
    frames_snap snap;
    snap_frames(&snap);
    /* The acquiring frame is still the top frame: no frame of ours sits
     * between it and the namer. */
    PyObject *r = PyObject_CallFunction(g_l.namer, "OOi", (PyObject *)self, file ? file : Py_None, line);
    drop_new_locals(&snap);
    Py_XDECREF(file);
    if (r && !PyUnicode_Check(r))
        Py_CLEAR(r);
    PyErr_Clear(); /* naming is best effort; never disturb the acquire */
    return r;
}

static const char *lock_name(plock *self)
{
    if (!self->name && g_l.namer) {
        name_key k;
        bool keyed = name_key_make(self, &k);
        PyObject *known = keyed ? names_find(&k) : NULL;
        if (known) {
            Py_INCREF(known);
            self->name = known;
        } else if ((self->name = call_namer(self)) && keyed) {
            names_store(&k, self->name);
        }
    }
    const char *u = self->name ? PyUnicode_AsUTF8(self->name) : NULL;
    if (self->name && !u)
        PyErr_Clear(); /* a name with surrogates: unnamed, never an error left set */
    return u;
}

static void account(plock *self, cp_pyev_kind kind, int64_t value, int64_t count)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    const char *name = lock_name(self);
    cp__pyev_record(kind, value, count, name);
    PyErr_Restore(et, ev, tb);
}

static void account_wait(plock *self, int64_t wait_ns)
{
    int64_t v, n;
    if (cp_rate_hit(&g_l.rs, &g_l.st, wait_ns, &v, &n))
        account(self, CP_PYEV_LOCK, v, n);
}

/* ---- holding --------------------------------------------------------- */

/* The calling thread now holds the lock (depth levels of it). A hold is
 * sampled by count at its start, unbiased: its time is read only then. */
static void took(plock *self, long depth)
{
    self->depth = depth;
    self->owner = PyThread_get_thread_ident();
    int64_t v;
    if (g_l.active && --g_l.hold_skip <= 0 &&
        cp_rate_unit_hit(&g_l.hold_rs, &g_l.hold_st, &g_l.hold_skip, &v, &self->hold_count))
        self->held_since = cp_now_ns();
}

/* The lock is free again: a sampled hold is charged to the releasing
 * stack, as hold time times the holds it stands for. */
static void freed(plock *self)
{
    self->depth = 0;
    self->owner = 0;
    if (!self->held_since)
        return;
    int64_t held = cp_now_ns() - self->held_since;
    self->held_since = 0;
    if (g_l.active && held > 0)
        account(self, CP_PYEV_HOLD, held * self->hold_count, self->hold_count);
}

/* ---- methods --------------------------------------------------------- */

/* Whether an acquire by this thread may block: the lock is held by
 * another thread (or, for a Lock, by anyone), or another thread is in a
 * blocking acquire (it takes the real lock before it has the GIL back to
 * say so). Otherwise the lock is free: the real acquire's first,
 * non-blocking try (made with the GIL) takes it at once. */
static bool may_block(plock *self, bool reentrant)
{
    return self->waiters > 0 || (self->depth > 0 && !(reentrant && self->owner == PyThread_get_thread_ident()));
}

/* An acquire that found the lock free returns in well under this (it
 * never drops the GIL); one that waited blocked in the kernel and took the
 * GIL back, which costs more. */
#define CONTENDED_NS 2000

/* The real acquire. One that finds the lock free costs the real call and
 * a few loads; only one that may wait is timed (two clock reads), and its
 * wait goes to the sampler. */
static PyObject *acquire(plock *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (!g_l.active)
        return PyObject_Vectorcall(self->acq, args, (size_t)nargs, kwnames);
    bool reentrant = Py_TYPE(self) != &g_lock_type;
    if (!may_block(self, reentrant)) {
        PyObject *r = PyObject_Vectorcall(self->acq, args, (size_t)nargs, kwnames);
        if (r == Py_True) {
            if (self->depth > 0) /* reentrant, by this thread */
                self->depth++;
            else
                took(self, 1);
        }
        return r;
    }
    self->waiters++;
    unsigned long me = PyThread_get_thread_ident();
    cp__sampler_lock_wait(me, true);
    int64_t t0 = cp_now_ns();
    PyObject *r = PyObject_Vectorcall(self->acq, args, (size_t)nargs, kwnames);
    int64_t wait = cp_now_ns() - t0;
    cp__sampler_lock_wait(me, false);
    self->waiters--;
    if (r != Py_True)
        return r;
    if (self->depth > 0 && reentrant && self->owner == PyThread_get_thread_ident())
        self->depth++;
    else
        took(self, 1);
    if (wait >= CONTENDED_NS)
        account_wait(self, wait);
    return r;
}

static PyObject *plock_acquire(plock *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return acquire(self, args, nargs, kwnames);
}

static PyObject *plock_enter(plock *self, PyObject *noargs)
{
    return acquire(self, NULL, 0, NULL);
}

static PyObject *release(plock *self)
{
    PyObject *r = PyObject_Vectorcall(self->rel, NULL, 0, NULL);
    if (r && self->depth > 0 && --self->depth == 0)
        freed(self);
    return r;
}

static PyObject *plock_release(plock *self, PyObject *noargs)
{
    return release(self);
}

static PyObject *plock_exit(plock *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *r = release(self);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

/* Methods the wrapper does not time are forwarded by name. They are
 * listed, not found through a tp_getattro fallback: a custom tp_getattro
 * would cost every lock.acquire() a bound-method object (the interpreter's
 * method-call fast path needs the generic one). */
static PyObject *forward(plock *self, const char *name, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    PyObject *m = PyObject_GetAttrString(self->inner, name);
    if (!m)
        return NULL;
    PyObject *r = PyObject_Vectorcall(m, args, (size_t)nargs, kwnames);
    Py_DECREF(m);
    return r;
}

#define FORWARD(fn, name)                                                                           \
    static PyObject *fn(plock *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)    \
    {                                                                                               \
        return forward(self, name, args, nargs, kwnames);                                           \
    }
FORWARD(fw_locked, "locked")
FORWARD(fw_is_owned, "_is_owned")
FORWARD(fw_recursion_count, "_recursion_count")

static PyObject *fw_at_fork_reinit(plock *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *r = forward(self, "_at_fork_reinit", args, nargs, kwnames);
    if (r) { /* in a forked child: the lock is new and free */
        self->depth = 0;
        self->owner = 0;
        self->waiters = 0;
        self->held_since = 0;
    }
    return r;
}

/* Condition.wait on an RLock: _release_save frees it whatever its depth,
 * _acquire_restore((depth, owner)) takes it back, waiting like acquire. */
static PyObject *fw_release_save(plock *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *r = forward(self, "_release_save", args, nargs, kwnames);
    if (r && self->depth > 0)
        freed(self);
    return r;
}

static PyObject *fw_acquire_restore(plock *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    bool timed = g_l.active && may_block(self, true);
    self->waiters += timed;
    unsigned long me = timed ? PyThread_get_thread_ident() : 0;
    if (timed)
        cp__sampler_lock_wait(me, true);
    int64_t t0 = timed ? cp_now_ns() : 0;
    PyObject *r = forward(self, "_acquire_restore", args, nargs, kwnames);
    int64_t wait = timed ? cp_now_ns() - t0 : 0;
    if (timed)
        cp__sampler_lock_wait(me, false);
    self->waiters -= timed;
    if (!r)
        return NULL;
    long depth = 1;
    if (nargs == 1 && PyTuple_Check(args[0]) && PyTuple_GET_SIZE(args[0]) >= 1) {
        depth = PyLong_AsLong(PyTuple_GET_ITEM(args[0], 0));
        if (depth < 1) {
            PyErr_Clear();
            depth = 1;
        }
    }
    took(self, depth);
    if (wait >= CONTENDED_NS)
        account_wait(self, wait);
    return r;
}

static PyObject *plock_repr(plock *self)
{
    return PyObject_Repr(self->inner);
}

/* isinstance(lock, _thread.LockType) and friends keep working: isinstance
 * falls back to __class__ when the type itself does not match. */
static PyObject *plock_class(plock *self, void *closure)
{
    PyObject *t = (PyObject *)Py_TYPE(self->inner);
    Py_INCREF(t);
    return t;
}

static PyGetSetDef plock_getset[] = {
    {"__class__", (getter)plock_class, NULL, "the wrapped lock's class", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define FAST(n, f) {n, (PyCFunction)(void (*)(void))f, METH_FASTCALL | METH_KEYWORDS, NULL}
#define COMMON_METHODS                                                                      \
    FAST("acquire", plock_acquire),                                                         \
    {"__enter__", (PyCFunction)(void (*)(void))plock_enter, METH_NOARGS, NULL},             \
    {"release", (PyCFunction)(void (*)(void))plock_release, METH_NOARGS, NULL},             \
    {"__exit__", (PyCFunction)(void (*)(void))plock_exit, METH_FASTCALL, NULL},             \
    FAST("locked", fw_locked), FAST("_at_fork_reinit", fw_at_fork_reinit)

static PyMethodDef lock_methods[] = {
    COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

/* Condition uses these of an RLock when present (and falls back to
 * acquire/release for a Lock, which has none of them). */
static PyMethodDef rlock_methods[] = {
    COMMON_METHODS,
    FAST("_is_owned", fw_is_owned),
    FAST("_release_save", fw_release_save),
    FAST("_acquire_restore", fw_acquire_restore),
    FAST("_recursion_count", fw_recursion_count),
    {NULL, NULL, 0, NULL},
};

#define PLOCK_TYPE(cname, pyname, newfn, methods, flags)                                            \
    static PyTypeObject cname = {                                                          \
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = pyname,                                   \
        .tp_basicsize = sizeof(plock),                                                     \
        .tp_dealloc = (destructor)plock_dealloc,                                           \
        .tp_repr = (reprfunc)plock_repr,                                                   \
        .tp_flags = Py_TPFLAGS_DEFAULT | (flags),                                          \
        .tp_doc = "A threading lock whose contended waits are sampled by contprof.",       \
        .tp_weaklistoffset = offsetof(plock, weakrefs),                                    \
        .tp_methods = methods,                                                             \
        .tp_getset = plock_getset,                                                         \
        .tp_new = newfn,                                                                   \
    }
/* Shaped as the locks they stand in for, so a program (or CPython's
 * test_threading) that inspects them sees what it would without the
 * profiler: `_thread.lock` / `_thread.RLock`. Before 3.13 threading.Lock is
 * the function _thread.allocate_lock and the lock type cannot be
 * instantiated; from 3.13 threading.Lock is the type. What stands in for
 * threading.Lock is named threading.Lock (module "threading", name "Lock"):
 * pickle saves a class or function by the module and name it carries and
 * refuses one that is not what that name resolves to, so under the name
 * `_thread.allocate_lock` / `_thread.lock` a structure holding
 * threading.Lock could not be pickled (multiprocessing's SyncManager
 * registry, sent to a spawned or forkserver manager process). As
 * threading.Lock it unpickles to whatever threading.Lock is there. */
#if PY_VERSION_HEX >= 0x030D0000
#define LOCK_NEW lock_new
#define LOCK_NAME "threading.Lock"
#else
#define LOCK_NEW NULL
#define LOCK_NAME "_thread.lock"
#endif
PLOCK_TYPE(g_lock_type, LOCK_NAME, LOCK_NEW, lock_methods, 0);
PLOCK_TYPE(g_rlock_type, "_thread.RLock", rlock_new, rlock_methods, Py_TPFLAGS_BASETYPE);

static PyObject *allocate_lock(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    return make(&g_lock_type, g_l.real_lock, args, kw);
}

static PyMethodDef g_allocate_lock_def = {"Lock", (PyCFunction)(void (*)(void))allocate_lock,
                                          METH_VARARGS | METH_KEYWORDS,
                                          "allocate_lock() -> lock (profiled by contprof)"};

int cp__pylock_init_module(PyObject *m)
{
    if (PyType_Ready(&g_lock_type) < 0 || PyType_Ready(&g_rlock_type) < 0)
        return -1;
    if (!g_s_acquire) {
        g_lib_suffix[0] = PyUnicode_InternFromString("/threading.py");
        g_lib_suffix[1] = PyUnicode_InternFromString("/queue.py");
        g_s_acquire = PyUnicode_InternFromString("acquire");
        g_s_release = PyUnicode_InternFromString("release");
        if (!g_lib_suffix[0] || !g_lib_suffix[1] || !g_s_acquire || !g_s_release)
            return -1;
    }
#if PY_VERSION_HEX < 0x030D0000
    g_lock_type.tp_new = NULL; /* PyType_Ready inherited object's: not instantiable, as _thread.lock */
#endif
    PyObject *modname = PyUnicode_FromString("threading");
    PyObject *alloc = modname ? PyCFunction_NewEx(&g_allocate_lock_def, NULL, modname) : NULL;
    Py_XDECREF(modname);
    if (!alloc)
        return -1;
    Py_INCREF(&g_lock_type);
    Py_INCREF(&g_rlock_type);
    if (PyModule_AddObject(m, "Lock", (PyObject *)&g_lock_type) < 0 ||
        PyModule_AddObject(m, "RLock", (PyObject *)&g_rlock_type) < 0 ||
        PyModule_AddObject(m, "allocate_lock", alloc) < 0)
        return -1;
    return 0;
}

/* lock_start(real_lock, real_rlock, namer, per_s): the factories of the
 * real locks, the naming function and the sampling rate. */
PyObject *cp__pylock_start(PyObject *self, PyObject *args)
{
    PyObject *lk, *rlk, *namer;
    long long per_s;
    if (!PyArg_ParseTuple(args, "OOOL", &lk, &rlk, &namer, &per_s))
        return NULL;
    Py_INCREF(lk);
    Py_INCREF(rlk);
    Py_INCREF(namer);
    Py_XSETREF(g_l.real_lock, lk);
    Py_XSETREF(g_l.real_rlock, rlk);
    Py_XSETREF(g_l.namer, namer);
    /* Waits under 10 us are mostly the cost of the futex itself. */
    cp_rate_init(&g_l.rs, 10000.0, (double)per_s);
    g_l.st = (cp_rate_state){0};
    cp_rate_init(&g_l.hold_rs, 1.0, (double)per_s);
    g_l.hold_st = (cp_rate_state){0};
    g_l.hold_skip = 0;
    g_l.active = true;
    Py_RETURN_NONE;
}

/* Locks made while profiling stay wrapped after stop (they may be held);
 * they just stop timing. */
PyObject *cp__pylock_stop(PyObject *self, PyObject *noargs)
{
    g_l.active = false;
    Py_RETURN_NONE;
}

/* ---- asyncio.Lock ---------------------------------------------------- */

/* lock_wait_hit(wait_ns): an asyncio lock's contended wait (contprof._locks
 * times it around the suspended acquire) offered to the same sampler as
 * the threading locks' waits. None, or (value, count) when sampled. */
PyObject *cp__pylock_wait_hit(PyObject *self, PyObject *arg)
{
    long long w = PyLong_AsLongLong(arg);
    int64_t v, n;
    if (w == -1 && PyErr_Occurred())
        return NULL;
    if (!g_l.active || w < CONTENDED_NS || !cp_rate_hit(&g_l.rs, &g_l.st, w, &v, &n))
        Py_RETURN_NONE;
    return Py_BuildValue("(LL)", (long long)v, (long long)n);
}

/* lock_wait_record(value, count, name, skip): record a sampled wait with
 * the calling stack minus its skip leaf-most frames (the profiler's
 * acquire, asyncio's __aenter__). */
#define PREFIX_MAX 32

PyObject *cp__pylock_wait_record(PyObject *self, PyObject *args)
{
    long long v, n;
    const char *name;
    unsigned int skip;
    PyObject *frames = NULL; /* ((code, byte offset), ...), leaf first */
    cp_rawframe prefix[PREFIX_MAX];
    uint32_t np = 0;
    if (!PyArg_ParseTuple(args, "LLsI|O!", &v, &n, &name, &skip, &PyTuple_Type, &frames))
        return NULL;
    for (Py_ssize_t i = 0; frames && i < PyTuple_GET_SIZE(frames) && np < PREFIX_MAX; i++) {
        PyObject *code;
        int off;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(frames, i), "O!i", &PyCode_Type, &code, &off))
            return NULL;
        prefix[np++] = (cp_rawframe){(uint64_t)(uintptr_t)code, off, ((PyCodeObject *)code)->co_firstlineno};
    }
    if (g_l.active)
        cp__pyev_record_skip(CP_PYEV_LOCK, v, n, name, skip, prefix, np);
    Py_RETURN_NONE;
}
