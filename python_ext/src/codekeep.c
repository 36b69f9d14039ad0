/*
 * codekeep.c — keep recently sampled code objects alive for a few seconds
 * past their last reference (see codekeep.h).
 *
 * seen[]: a direct-mapped table the sampler thread stamps (address, time)
 * for every code object of every stack it emits or coalesces into. Read by
 * the deallocator wrapper, which may run on any thread: a torn or stale
 * entry only makes it keep a code object it did not need to, or free one
 * the sampler saw just before a colliding address replaced it.
 * kept[]: a FIFO of the code objects kept, in death order; touched only
 * with our interpreter's GIL held.
 */
#include <Python.h>

#include "codekeep.h"
#include "contprof.h"

#include <stdatomic.h>
#include <time.h>

#if PY_VERSION_HEX < 0x030900A4
#define Py_SET_REFCNT(o, n) (Py_REFCNT(o) = (n))
#endif

#define SEEN_CAP 16384          /* power of two */
#define KEEP_CAP 4096           /* code objects kept at once; more die at once */
#define KEEP_NS (10LL * 1000000000LL)

typedef struct seen_entry {
    _Atomic uint64_t addr;
    _Atomic int64_t when_ns;
} seen_entry;

typedef struct kept_entry {
    PyObject *op;
    int64_t died_ns;
} kept_entry;

static struct {
    seen_entry seen[SEEN_CAP];
    kept_entry kept[KEEP_CAP];
    size_t head, tail;          /* kept[tail % CAP .. head % CAP) */
    destructor orig;            /* PyCode_Type's own deallocator     */
    atomic_bool enabled;
    _Atomic uintptr_t interp;   /* the interpreter whose code we keep */
    PyObject *releasing;        /* the object being let go right now */
} g_k;

static int64_t mono_ns(void)
{
    return cp_now_ns();
}

static size_t seen_slot(uint64_t addr)
{
    return (size_t)((addr * 0x9E3779B97F4A7C15ull) >> 50) & (SEEN_CAP - 1);
}

void cp__codekeep_seen(uint64_t addr)
{
    seen_entry *e = &g_k.seen[seen_slot(addr)];
    atomic_store_explicit(&e->when_ns, mono_ns(), memory_order_relaxed);
    atomic_store_explicit(&e->addr, addr, memory_order_relaxed);
}

static bool recently_seen(PyObject *op, int64_t now)
{
    seen_entry *e = &g_k.seen[seen_slot((uint64_t)(uintptr_t)op)];
    return atomic_load_explicit(&e->addr, memory_order_relaxed) == (uint64_t)(uintptr_t)op &&
           now - atomic_load_explicit(&e->when_ns, memory_order_relaxed) < KEEP_NS;
}

static PyThreadState *tstate_unchecked(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

/* Runs on whichever thread drops the last reference, in any interpreter
 * (PyCode_Type is shared by all of them). */
static void keep_dealloc(PyObject *op)
{
    if (atomic_load_explicit(&g_k.enabled, memory_order_relaxed) && op != g_k.releasing) {
        PyThreadState *ts = tstate_unchecked();
        int64_t now = mono_ns();
        if (ts && (uintptr_t)ts->interp == atomic_load(&g_k.interp) && g_k.head - g_k.tail < KEEP_CAP &&
            recently_seen(op, now)) {
            g_k.kept[g_k.head % KEEP_CAP] = (kept_entry){op, now};
            g_k.head++;
            Py_SET_REFCNT(op, 1); /* ours now; the real deallocator runs later */
            return;
        }
    }
    g_k.orig(op);
}

void cp__codekeep_start(void)
{
    if (!g_k.orig) {
        g_k.orig = PyCode_Type.tp_dealloc;
        PyCode_Type.tp_dealloc = keep_dealloc;
    }
    atomic_store(&g_k.interp, (uintptr_t)PyThreadState_Get()->interp);
    atomic_store(&g_k.enabled, true);
}

void cp__codekeep_release(bool all)
{
    int64_t now = mono_ns();
    /* Pop before letting go: the deallocator can free further code objects
     * (nested ones), which may be kept and pushed meanwhile. */
    while (g_k.tail != g_k.head && (all || now - g_k.kept[g_k.tail % KEEP_CAP].died_ns >= KEEP_NS)) {
        PyObject *op = g_k.kept[g_k.tail % KEEP_CAP].op;
        g_k.tail++;
        PyObject *outer = g_k.releasing;
        g_k.releasing = op;
        Py_DECREF(op);
        g_k.releasing = outer;
    }
}

void cp__codekeep_stop(void)
{
    atomic_store(&g_k.enabled, false);
    cp__codekeep_release(true);
}

size_t cp__codekeep_count(void)
{
    return g_k.head - g_k.tail;
}
