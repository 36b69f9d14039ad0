/*
 * allochook.c — the allocator wrapper (see allochook.h).
 *
 * Fast path per allocation: one TLS countdown subtraction. Per free: one
 * counter test, plus a hash probe only while sampled blocks are live. The
 * sampled path walks the calling thread's own frames directly (it holds the
 * GIL, so they cannot change or be freed under it) into preallocated
 * storage: no malloc, no Python calls, so no re-entry into the allocator.
 */
#include <Python.h>

#include "allochook.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "contprof.h"
#include "pywalk.h"
#include "resolver.h"

#define HEAP_CAP 2048           /* hash slots (power of two)             */
#define HEAP_MAX (HEAP_CAP / 2) /* tracked blocks at most                */
#define ALLOC_RING_SLOTS 1024
#define TLS __thread __attribute__((tls_model("initial-exec")))

typedef struct domain {
    PyMemAllocatorDomain id;
    PyMemAllocatorEx prev, mine;
    bool installed;
} domain;

typedef struct hentry {
    uintptr_t ptr;  /* 0 = empty      */
    uint32_t rec;   /* index in recs  */
} hentry;

static struct {
    domain dom[2];
    volatile bool active, heap;
    double mean;
    uint32_t max_frames;
    cp_rawring ring;
    hentry table[HEAP_CAP];
    size_t live;
    uint8_t *recs;              /* HEAP_MAX cp_rawsample records          */
    size_t rec_size;
    uint32_t free_recs[HEAP_MAX];
    size_t nfree;
} g_a;

static TLS int64_t tl_countdown;
static TLS uint64_t tl_rng;
static TLS bool tl_inited;

/* ---- Poisson countdown ------------------------------------------------ */

static double rng_unit(void)
{
    if (!tl_rng)
        tl_rng = ((uint64_t)(uintptr_t)&tl_rng ^ (uint64_t)time(NULL)) * 0x9E3779B97F4A7C15ull | 1;
    tl_rng ^= tl_rng >> 12;
    tl_rng ^= tl_rng << 25;
    tl_rng ^= tl_rng >> 27;
    uint64_t r = tl_rng * 0x2545F4914F6CDD1Dull;
    return ((double)(r >> 11) + 0.5) / 9007199254740992.0; /* (0,1) */
}

static int64_t next_interval(void)
{
    double v = -log(rng_unit()) * g_a.mean;
    return v < 1 ? 1 : (int64_t)v;
}

/* ---- live-heap table (linear probing, backward-shift delete) ---------- */

static size_t hslot(uintptr_t p)
{
    return (size_t)(((uint64_t)p * 0x9E3779B97F4A7C15ull) >> 40) & (HEAP_CAP - 1);
}

static cp_rawsample *rec_at(uint32_t i)
{
    return (cp_rawsample *)(g_a.recs + (size_t)i * g_a.rec_size);
}

static void heap_remove(uintptr_t p)
{
    size_t i = hslot(p);
    while (g_a.table[i].ptr && g_a.table[i].ptr != p)
        i = (i + 1) & (HEAP_CAP - 1);
    if (!g_a.table[i].ptr)
        return;
    g_a.free_recs[g_a.nfree++] = g_a.table[i].rec;
    g_a.live--;
    for (size_t j = (i + 1) & (HEAP_CAP - 1); g_a.table[j].ptr; j = (j + 1) & (HEAP_CAP - 1)) {
        size_t home = hslot(g_a.table[j].ptr);
        /* move j back into the hole if its home is not in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            g_a.table[i] = g_a.table[j];
            i = j;
        }
    }
    g_a.table[i].ptr = 0;
}

static cp_rawsample *heap_add(uintptr_t p)
{
    if (!g_a.nfree) {
        cp_metrics_add_dropped(1);
        return NULL;
    }
    size_t i = hslot(p);
    while (g_a.table[i].ptr && g_a.table[i].ptr != p)
        i = (i + 1) & (HEAP_CAP - 1);
    if (g_a.table[i].ptr)
        return rec_at(g_a.table[i].rec); /* stale entry for a reused address */
    uint32_t r = g_a.free_recs[--g_a.nfree];
    g_a.table[i].ptr = p;
    g_a.table[i].rec = r;
    g_a.live++;
    return rec_at(r);
}

/* ---- sampling --------------------------------------------------------- */

static PyThreadState *current_tstate(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

static void fill(cp_rawsample *s, const cp_tsinfo *ti, double bytes, double count)
{
    s->thread_id = ti->thread_id;
    s->native_id = ti->native_id;
    s->alloc_bytes = (int64_t)(bytes + 0.5);
    s->alloc_n = (int64_t)(count + 0.5) > 0 ? (int64_t)(count + 0.5) : 1;
    s->nframes = cp__walk(cp__ts_top(ti, true), true, s->frames, g_a.max_frames, &s->omitted, NULL);
}

static void take_sample(void *p, size_t size)
{
    int64_t t0 = cp_now_ns();
    PyThreadState *ts = current_tstate();
    cp_tsinfo ti;
    if (!ts || !cp__ts_read((uintptr_t)ts, true, &ti) || !ti.frame)
        return;
    double prob = 1.0 - exp(-(double)size / g_a.mean);
    double bytes = (double)size / prob, count = 1.0 / prob;
    cp_rawsample *s = cp__ring_reserve(&g_a.ring);
    if (s) {
        fill(s, &ti, bytes, count);
        cp__ring_commit(&g_a.ring);
        cp_metrics_add_taken(1);
        if (cp__ring_used(&g_a.ring) == g_a.ring.nslots / 2)
            cp__resolver_kick();
    } else {
        cp_metrics_add_dropped(1);
    }
    cp_rawsample *h = g_a.heap ? heap_add((uintptr_t)p) : NULL;
    if (h) {
        memset(h, 0, sizeof *h);
        fill(h, &ti, bytes, count);
    }
    cp_metrics_add_hook_ns(cp_now_ns() - t0);
}

/* Rarely taken: the countdown ran out (or this thread never counted). */
static void __attribute__((noinline)) account_slow(void *p, size_t size)
{
    bool first = !tl_inited;
    tl_inited = true;
    tl_countdown = next_interval();
    if (!first && p && g_a.active)
        take_sample(p, size);
}

/* Called on every allocation through a hooked domain: one TLS subtract and
 * a predictable branch. A fresh thread's countdown is 0, which routes its
 * first allocation to account_slow to draw a real interval. */
static inline void account(void *p, size_t size)
{
    int64_t left = tl_countdown - (int64_t)size;
    tl_countdown = left;
    if (__builtin_expect(left > 0, 1))
        return;
    account_slow(p, size);
}

static void *hk_malloc(void *ctx, size_t size)
{
    domain *d = ctx;
    void *p = d->prev.malloc(d->prev.ctx, size);
    account(p, size);
    return p;
}

static void *hk_calloc(void *ctx, size_t nelem, size_t elsize)
{
    domain *d = ctx;
    void *p = d->prev.calloc(d->prev.ctx, nelem, elsize);
    account(p, nelem * elsize);
    return p;
}

static void *hk_realloc(void *ctx, void *ptr, size_t size)
{
    domain *d = ctx;
    void *p = d->prev.realloc(d->prev.ctx, ptr, size);
    if (p && ptr && g_a.live)
        heap_remove((uintptr_t)ptr);
    account(p, size);
    return p;
}

static void hk_free(void *ctx, void *ptr)
{
    domain *d = ctx;
    if (ptr && g_a.live)
        heap_remove((uintptr_t)ptr);
    d->prev.free(d->prev.ctx, ptr);
}

/* ---- lifecycle -------------------------------------------------------- */

static bool alloc_storage(uint32_t max_frames)
{
    if (g_a.recs && g_a.max_frames == max_frames)
        return true;
    if (g_a.live)
        cp__heap_clear();
    free(g_a.recs);
    cp__ring_free(&g_a.ring);
    g_a.rec_size = sizeof(cp_rawsample) + max_frames * sizeof(cp_rawframe);
    g_a.recs = calloc(HEAP_MAX, g_a.rec_size);
    if (!g_a.recs || !cp__ring_init(&g_a.ring, ALLOC_RING_SLOTS, max_frames))
        return false;
    g_a.max_frames = max_frames;
    cp__heap_clear();
    return true;
}

static void install(domain *d, PyMemAllocatorDomain id)
{
    if (d->installed)
        return;
    d->id = id;
    PyMem_GetAllocator(id, &d->prev);
    d->mine = (PyMemAllocatorEx){d, hk_malloc, hk_calloc, hk_realloc, hk_free};
    PyMem_SetAllocator(id, &d->mine);
    d->installed = true;
}

int cp__alloc_start(int64_t mean_bytes, bool alloc, bool heap, uint32_t max_frames)
{
    if (!alloc && !heap)
        return CP_OK;
    g_a.active = false;
    if (!alloc_storage(max_frames))
        return CP_ENOMEM;
    g_a.mean = (double)(mean_bytes > 0 ? mean_bytes : 1048576);
    g_a.heap = heap;
    tl_inited = false;
    tl_countdown = 0;
    install(&g_a.dom[0], PYMEM_DOMAIN_OBJ);
    install(&g_a.dom[1], PYMEM_DOMAIN_MEM);
    g_a.active = true;
    return CP_OK;
}

void cp__alloc_stop(void)
{
    g_a.active = false;
    for (int i = 0; i < 2; i++) {
        domain *d = &g_a.dom[i];
        if (!d->installed)
            continue;
        PyMemAllocatorEx cur;
        PyMem_GetAllocator(d->id, &cur);
        /* Someone (tracemalloc) wrapped us: unhooking would cut them off,
         * so we stay in the chain as a pass-through instead. */
        if (cur.malloc == hk_malloc && cur.ctx == d) {
            PyMem_SetAllocator(d->id, &d->prev);
            d->installed = false;
        }
    }
}

cp_rawring *cp__alloc_ring(void)
{
    return g_a.ring.slots ? &g_a.ring : NULL;
}

void cp__heap_clear(void)
{
    memset(g_a.table, 0, sizeof g_a.table);
    g_a.live = 0;
    g_a.nfree = HEAP_MAX;
    for (uint32_t i = 0; i < HEAP_MAX; i++)
        g_a.free_recs[i] = HEAP_MAX - 1 - i;
}

cp_rawsample *cp__heap_snapshot(size_t *n, size_t *stride)
{
    *n = 0;
    *stride = g_a.rec_size;
    if (!g_a.live || !g_a.recs)
        return NULL;
    uint8_t *out = malloc(g_a.live * g_a.rec_size);
    if (!out)
        return NULL;
    for (size_t i = 0; i < HEAP_CAP; i++) {
        if (!g_a.table[i].ptr)
            continue;
        memcpy(out + *n * g_a.rec_size, rec_at(g_a.table[i].rec), g_a.rec_size);
        (*n)++;
    }
    return (cp_rawsample *)out;
}

void cp__alloc_after_fork(void)
{
    /* Samples taken in the parent but not yet resolved belong to it. */
    atomic_store(&g_a.ring.head, 0);
    atomic_store(&g_a.ring.tail, 0);
    tl_inited = false;
    tl_countdown = 0;
}
