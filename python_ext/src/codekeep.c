/*
 * codekeep.c — keep recently sampled code objects alive for a few seconds
 * past their last reference (see codekeep.h).
 *
 * seen[]: a set-associative table the sampler thread stamps (address,
 * time) for every code object it reads and every stack it emits or
 * coalesces into. A stamp goes to the address's own entry in its set, or
 * replaces the set's oldest: a direct-mapped table let a module body that
 * shared its slot with a code object of the stack importing it (stamped
 * every tick) lose its stamp and die unkept, and the next code object
 * took its address. Read by the deallocator wrapper, which may run on any
 * thread: a torn or stale entry only makes it keep a code object it did
 * not need to; a code object is freed although seen only when more code
 * objects than a set holds were seen within KEEP of each other.
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
#define SEEN_WAYS 8             /* entries per set; a set is two cache lines */
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

/* The first entry of addr's set. */
static seen_entry *seen_set(uint64_t addr)
{
    size_t set = (size_t)((addr * 0x9E3779B97F4A7C15ull) >> 40) & (SEEN_CAP / SEEN_WAYS - 1);
    return &g_k.seen[set * SEEN_WAYS];
}

void cp__codekeep_seen(uint64_t addr)
{
    if (addr)
        cp__codekeep_seen_at(addr, mono_ns());
}

void cp__codekeep_seen_at(uint64_t addr, int64_t now)
{
    if (!addr)
        return;
    seen_entry *set = seen_set(addr);
    /* Claiming an entry is a compare-and-swap: stamps come from the sampler
     * and from threads that sample allocations or events, and two of them
     * must not both take one entry. Bounded: a lost race only costs what a
     * full set costs. */
    for (int attempt = 0; attempt < 4; attempt++) {
        seen_entry *victim = NULL;
        uint64_t victim_addr = 0;
        int64_t oldest = INT64_MAX;
        for (int i = 0; i < SEEN_WAYS; i++) {
            uint64_t a = atomic_load_explicit(&set[i].addr, memory_order_acquire);
            if (a == addr) {
                atomic_store_explicit(&set[i].when_ns, now, memory_order_release);
                return;
            }
            int64_t w = a ? atomic_load_explicit(&set[i].when_ns, memory_order_relaxed) : INT64_MIN;
            if (w < oldest) {
                oldest = w;
                victim = &set[i];
                victim_addr = a;
            }
        }
        /* The time first: a reader that sees the new address sees it too
         * (the victim's old address briefly looks fresh: kept, not lost). */
        atomic_store_explicit(&victim->when_ns, now, memory_order_release);
        if (atomic_compare_exchange_strong_explicit(&victim->addr, &victim_addr, addr, memory_order_acq_rel,
                                                    memory_order_acquire))
            return;
    }
}

static bool recently_seen(PyObject *op, int64_t now)
{
    const seen_entry *set = seen_set((uint64_t)(uintptr_t)op);
    for (int i = 0; i < SEEN_WAYS; i++)
        if (atomic_load_explicit(&set[i].addr, memory_order_acquire) == (uint64_t)(uintptr_t)op &&
            now - atomic_load_explicit(&set[i].when_ns, memory_order_acquire) < KEEP_NS)
            return true;
    return false;
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
        /* Pairs with the sampler's fence between its stamp and its liveness
         * read (pywalk.c code_read): the reference count has reached zero
         * (a store) before the stamp is looked at (a load), so either the
         * sampler saw the object dead or we see its stamp. */
        atomic_thread_fence(memory_order_seq_cst);
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
