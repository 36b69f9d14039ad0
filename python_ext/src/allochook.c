/*
 * allochook.c — the allocator wrappers (see allochook.h).
 *
 * Unsampled path per allocation: one TLS subtraction and a predictable
 * branch, then a tail jump to the previous allocator (the wrapper's context
 * is the previous allocator's own, so nothing is reloaded). Per free:
 * nothing in OBJ/MEM when pymalloc is underneath (sampled blocks come back
 * through RAW); elsewhere one byte load from a 64 KiB table of "some tracked
 * block hashes here" counts before any probe of the heap table.
 *
 * The sampled path walks the calling thread's own frames (they cannot
 * change under it) into preallocated storage: no malloc, no Python calls,
 * so no re-entry into the allocator. errno is preserved.
 */
#include <Python.h>

#include "allochook.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "contprof.h"
#include "codekeep.h"
#include "pywalk.h"
#include "resolver.h"
#include "spinlock.h"

#define TLS __thread __attribute__((tls_model("initial-exec")))
#define D_OBJ 0
#define D_MEM 1
#define D_RAW 2
#define SMALL_MAX 512 /* pymalloc's SMALL_REQUEST_THRESHOLD, 3.8-3.13 */
#define TABLE_BITS 16
#define TABLE_CAP (1u << TABLE_BITS) /* hash slots, 2x the tracked cap */
#define NIL UINT32_MAX
#define ALLOC_RING_SLOTS 1024
#define OVF_SLOTS 1024  /* merged overflow samples (power of two)       */
#define OVF_PROBES 32

/* ---- state --------------------------------------------------------------- */

typedef struct domain {
    PyMemAllocatorDomain id;
    PyMemAllocatorEx mine;
    bool installed;
} domain;

typedef struct hentry {
    uintptr_t ptr; /* 0 = empty          */
    uint32_t rec;  /* index in g_h.meta  */
} hentry;

/* One tracked block. gen is even while the record's stack is stable, odd
 * while it is written; it changes whenever the record is freed or reused,
 * so a reader copies, then checks gen again (seqlock discipline). */
typedef struct hmeta {
    uintptr_t ptr;
    uint32_t prev, next; /* live list in insertion order; free list via next */
    _Atomic uint32_t gen;
} hmeta;

/* Previous allocators: read on every call, kept apart from colder state. */
static PyMemAllocatorEx g_prev[3];

static struct {
    domain dom[3];
    volatile bool active, heap, alloc;
    bool redirect;       /* sampled OBJ/MEM blocks are served through RAW */
    bool raw_counts;     /* RAW malloc/calloc/realloc count bytes          */
    bool large_via_raw;  /* OBJ/MEM requests > SMALL_MAX are RAW's to count */
    bool probed, fwd, exact;
    double mean;
    double ns_per_alloc[3];
    uintptr_t interp;
    uint32_t max_frames;
    atomic_flag ring_lock;
    cp_rawring ring;
} g_a = {.ring_lock = ATOMIC_FLAG_INIT};

/* Samples the ring had no room for while the resolver waited for the GIL
 * (300 threads queueing for it can keep it away for seconds), merged by
 * (thread, stack): a burst repeats a few stacks many times. Written only
 * by threads holding the main interpreter's GIL (OBJ/MEM hooks), emptied
 * by the resolver under it, so it needs no lock. Its pages are touched
 * only when the ring overflows. */
static struct {
    uint8_t *recs;   /* OVF_SLOTS samples of stride bytes              */
    uint64_t *hash;  /* per slot, 0 = free                             */
    cp_rawsample *scratch; /* one sample being merged                  */
    size_t stride, used, cursor;
} g_o;

/* The live-heap table. Everything but home[] is under lock. */
static struct {
    atomic_flag lock;
    hentry *table;           /* TABLE_CAP slots                          */
    hmeta *meta;             /* CP_HEAP_MAX_SAMPLES records              */
    uint8_t *payload;        /* the records' samples, stride bytes each  */
    size_t stride, frames_cap;
    uint32_t head, tail;     /* oldest, newest live                      */
    uint32_t free_head, unused;
    size_t live;
    uint64_t evicted;
} g_h = {.lock = ATOMIC_FLAG_INIT, .head = NIL, .tail = NIL, .free_head = NIL};

/* Per home slot: how many tracked blocks hash there (saturating). Read
 * without the lock on every hooked free. */
static _Atomic uint8_t g_home[TABLE_CAP];

/* Bytes to the next sample: OBJ/MEM share one (their callers hold the GIL;
 * sub-interpreters with their own GIL at worst lose an update, which only
 * moves the next sample), RAW counts per thread (called without the GIL). */
static int64_t g_cd;
static TLS int64_t tl_countdown;
static TLS uint64_t tl_rng;
static TLS bool tl_inited;
static TLS bool tl_excluded;

/* ---- Poisson countdown ---------------------------------------------------- */

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

/* Domain d's countdown ran out: draw the next interval; true if this
 * allocation is to be sampled (a thread's first RAW draw only starts its
 * countdown). */
static bool due(int d)
{
    if (d != D_RAW) {
        g_cd = next_interval();
        return g_a.active;
    }
    bool first = !tl_inited;
    tl_inited = true;
    tl_countdown = next_interval();
    return !first && g_a.active;
}

/* ---- live-heap table ------------------------------------------------------ */

static inline uint32_t home_of(uintptr_t p)
{
    return (uint32_t)(((uint64_t)p * 0x9E3779B97F4A7C15ull) >> (64 - TABLE_BITS));
}

static inline bool home_hit(const void *p)
{
    return atomic_load_explicit(&g_home[home_of((uintptr_t)p)], memory_order_relaxed) != 0;
}

static void home_add(uintptr_t p, int d)
{
    _Atomic uint8_t *c = &g_home[home_of(p)];
    uint8_t v = atomic_load_explicit(c, memory_order_relaxed);
    if (v != UINT8_MAX) /* saturated counts stay: only costs false hits */
        atomic_store_explicit(c, (uint8_t)(v + d), memory_order_relaxed);
}

static cp_rawsample *payload_at(uint32_t r)
{
    return (cp_rawsample *)(g_h.payload + (size_t)r * g_h.stride);
}

static size_t find_slot(uintptr_t p)
{
    size_t i = home_of(p);
    while (g_h.table[i].ptr && g_h.table[i].ptr != p)
        i = (i + 1) & (TABLE_CAP - 1);
    return i;
}

/* Linear probing with backward-shift delete. */
static void delete_slot(size_t i)
{
    for (size_t j = (i + 1) & (TABLE_CAP - 1); g_h.table[j].ptr; j = (j + 1) & (TABLE_CAP - 1)) {
        size_t home = home_of(g_h.table[j].ptr);
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            g_h.table[i] = g_h.table[j];
            i = j;
        }
    }
    g_h.table[i].ptr = 0;
}

static void list_unlink(uint32_t r)
{
    hmeta *m = &g_h.meta[r];
    if (m->prev != NIL)
        g_h.meta[m->prev].next = m->next;
    else
        g_h.head = m->next;
    if (m->next != NIL)
        g_h.meta[m->next].prev = m->prev;
    else
        g_h.tail = m->prev;
}

static void list_append(uint32_t r)
{
    hmeta *m = &g_h.meta[r];
    m->prev = g_h.tail;
    m->next = NIL;
    if (g_h.tail != NIL)
        g_h.meta[g_h.tail].next = r;
    else
        g_h.head = r;
    g_h.tail = r;
}

/* Untrack record r (slot i holds it). Lock held. */
static void untrack(size_t i, uint32_t r)
{
    uintptr_t p = g_h.meta[r].ptr;
    delete_slot(i);
    home_add(p, -1);
    list_unlink(r);
    g_h.meta[r].ptr = 0;
    atomic_fetch_add_explicit(&g_h.meta[r].gen, 2, memory_order_release);
    g_h.meta[r].next = g_h.free_head;
    g_h.free_head = r;
    g_h.live--;
}

/* A record for a new block: a free one, else the oldest live one (the
 * newest samples win; the eviction is counted). NIL if none. Lock held. */
static uint32_t take_record(void)
{
    uint32_t r = g_h.free_head;
    if (r != NIL) {
        g_h.free_head = g_h.meta[r].next;
        return r;
    }
    if (g_h.unused < CP_HEAP_MAX_SAMPLES)
        return g_h.unused++;
    for (r = g_h.head; r != NIL && (atomic_load(&g_h.meta[r].gen) & 1); r = g_h.meta[r].next)
        ; /* skip records still being written */
    if (r == NIL)
        return NIL;
    untrack(find_slot(g_h.meta[r].ptr), r);
    g_h.evicted++;
    cp_metrics_add_dropped(1);
    r = g_h.free_head;
    g_h.free_head = g_h.meta[r].next;
    return r;
}

/* Track block p; returns its record (gen odd: being written) or NIL. */
static uint32_t heap_reserve(uintptr_t p)
{
    cp__spin_lock(&g_h.lock);
    size_t i = find_slot(p);
    uint32_t r;
    if (g_h.table[i].ptr) { /* stale entry: the block was freed unseen */
        r = g_h.table[i].rec;
        list_unlink(r);
    } else {
        r = take_record();
        if (r == NIL) {
            cp__spin_unlock(&g_h.lock);
            cp_metrics_add_dropped(1);
            return NIL;
        }
        i = find_slot(p); /* an eviction may have shifted slots */
        g_h.table[i].ptr = p;
        g_h.table[i].rec = r;
        home_add(p, 1);
        g_h.live++;
    }
    g_h.meta[r].ptr = p;
    atomic_fetch_add_explicit(&g_h.meta[r].gen, 1, memory_order_acq_rel);
    list_append(r);
    cp__spin_unlock(&g_h.lock);
    return r;
}

static void heap_publish(uint32_t r)
{
    atomic_fetch_add_explicit(&g_h.meta[r].gen, 1, memory_order_release);
}

/* A hooked free (or realloc) of p whose home slot is in use. */
static void __attribute__((noinline)) heap_forget(uintptr_t p)
{
    cp__spin_lock(&g_h.lock);
    size_t i = find_slot(p);
    if (g_h.table[i].ptr)
        untrack(i, g_h.table[i].rec);
    cp__spin_unlock(&g_h.lock);
}

static bool heap_storage(uint32_t max_frames)
{
    if (!g_h.table) {
        g_h.table = calloc(TABLE_CAP, sizeof *g_h.table); /* lazily mapped */
        g_h.meta = calloc(CP_HEAP_MAX_SAMPLES, sizeof *g_h.meta);
        if (!g_h.table || !g_h.meta)
            return false;
    }
    if (g_h.payload && g_h.frames_cap >= max_frames)
        return true;
    /* Grows only (the hooks may outlive a stop; an old buffer could still
     * be read by a late writer, so it is not freed). */
    size_t stride = sizeof(cp_rawsample) + max_frames * sizeof(cp_rawframe);
    uint8_t *pl = calloc(CP_HEAP_MAX_SAMPLES, stride);
    if (!pl)
        return false;
    cp__spin_lock(&g_h.lock);
    g_h.payload = pl;
    g_h.stride = stride;
    g_h.frames_cap = max_frames;
    cp__spin_unlock(&g_h.lock);
    return true;
}

/* ---- sampling ------------------------------------------------------------- */

static PyThreadState *current_tstate(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

/* The calling thread's state, if it belongs to the profiled interpreter and
 * has a frame. RAW is called without the GIL, where the "current" thread
 * state (before 3.12) is another thread's: ask for this thread's own. */
static bool this_thread(int d, cp_tsinfo *ti)
{
    if (tl_excluded)
        return false;
    PyThreadState *ts = d == D_RAW ? PyGILState_GetThisThreadState() : current_tstate();
    return ts && cp__ts_read((uintptr_t)ts, true, ti) && ti->frame && ti->interp == g_a.interp;
}

static void fill(cp_rawsample *s, const cp_tsinfo *ti, double bytes, double count)
{
    memset(s, 0, sizeof *s);
    s->thread_id = ti->thread_id;
    s->native_id = ti->native_id;
    s->alloc_bytes = (int64_t)(bytes + 0.5);
    s->alloc_n = (int64_t)(count + 0.5) > 0 ? (int64_t)(count + 0.5) : 1;
    s->nframes = cp__walk(cp__ts_top(ti, true), true, s->frames, g_a.max_frames, &s->omitted);
    int64_t seen_ns = cp_now_ns();
    for (uint32_t i = 0; i < s->nframes; i++)
        cp__codekeep_seen_at(s->frames[i].code, seen_ns); /* alive until the resolver names it */
}

static cp_rawsample *ring_claim(void)
{
    if (atomic_flag_test_and_set_explicit(&g_a.ring_lock, memory_order_acquire))
        return NULL; /* another thread is writing: drop */
    cp_rawsample *s = cp__ring_reserve(&g_a.ring);
    if (!s)
        cp__spin_unlock(&g_a.ring_lock);
    return s;
}

static cp_rawsample *ovf_at(size_t i)
{
    return (cp_rawsample *)(g_o.recs + i * g_o.stride);
}

static uint64_t stack_hash(const cp_rawsample *s)
{
    uint64_t h = 0xcbf29ce484222325ull ^ s->thread_id ^ (s->native_id << 32) ^ ((uint64_t)s->nframes << 48) ^ s->omitted;
    for (uint32_t i = 0; i < s->nframes; i++) {
        h = (h ^ s->frames[i].code) * 0x100000001b3ull;
        h = (h ^ (uint32_t)s->frames[i].offset ^ ((uint64_t)(uint32_t)s->frames[i].firstlineno << 32)) * 0x100000001b3ull;
    }
    h ^= h >> 29;
    return h ? h : 1;
}

/* Add s to the overflow table (GIL held). False when its probe run is
 * full of other stacks: the sample is lost. */
static bool ovf_merge(const cp_rawsample *s)
{
    if (!g_o.recs)
        return false;
    uint64_t h = stack_hash(s);
    for (size_t k = 0; k < OVF_PROBES; k++) {
        size_t i = (h + k) & (OVF_SLOTS - 1);
        cp_rawsample *o = ovf_at(i);
        if (g_o.hash[i] == 0) {
            memcpy(o, s, sizeof *s + s->nframes * sizeof(cp_rawframe));
            g_o.hash[i] = h;
            g_o.used++;
            return true;
        }
        if (g_o.hash[i] == h && cp__raw_same_stack(o, s)) {
            o->alloc_bytes += s->alloc_bytes;
            o->alloc_n += s->alloc_n;
            return true;
        }
    }
    return false;
}

bool cp__alloc_overflow_take(cp_rawsample *dst)
{
    for (size_t k = 0; g_o.used > 0 && k < OVF_SLOTS; k++) {
        size_t i = (g_o.cursor + k) & (OVF_SLOTS - 1);
        if (!g_o.hash[i])
            continue;
        cp_rawsample *o = ovf_at(i);
        memcpy(dst, o, sizeof *o + o->nframes * sizeof(cp_rawframe));
        g_o.hash[i] = 0;
        g_o.used--;
        g_o.cursor = i + 1;
        return true;
    }
    return false;
}

/* Record block p of n requested bytes (domain d) as a sample. */
static void record(void *p, size_t n, int d, const cp_tsinfo *ti)
{
    int64_t t0 = cp_now_ns();
    double prob = -expm1(-(double)n / g_a.mean);
    if (!(prob > 1e-300))
        prob = 1e-300;
    double bytes = (double)n / prob, count = 1.0 / prob;
    uint32_t r = g_a.heap ? heap_reserve((uintptr_t)p) : NIL;
    cp_rawsample *h = r != NIL ? payload_at(r) : NULL;
    cp_rawsample *s = g_a.alloc ? ring_claim() : NULL;
    /* No ring slot: a GIL holder merges it into the overflow table. */
    bool merge = g_a.alloc && !s && d != D_RAW;
    cp_rawsample *dst = s ? s : h ? h : merge ? g_o.scratch : NULL;
    if (dst)
        fill(dst, ti, bytes, count);
    if (s && h)
        memcpy(h, s, sizeof *s + s->nframes * sizeof(cp_rawframe));
    if (g_a.alloc && !s && !(merge && dst && ovf_merge(dst)))
        cp_metrics_add_dropped(1);
    else if (merge && g_o.used == 1)
        cp__resolver_kick();
    if (h)
        heap_publish(r);
    if (s) {
        cp__ring_commit(&g_a.ring);
        bool kick = cp__ring_used(&g_a.ring) == g_a.ring.nslots / 2;
        cp__spin_unlock(&g_a.ring_lock);
        cp_metrics_add_taken(1);
        if (kick)
            cp__resolver_kick();
    }
    /* The unsampled calls this sample stands for cost count x calibrated. */
    cp_metrics_add_hook_ns(cp_now_ns() - t0 + (int64_t)(count * g_a.ns_per_alloc[d]));
}

/* Sampled OBJ/MEM blocks go through RAW (see allochook.h): ask pymalloc
 * for a large block. RAW will count those bytes again; pay them back. */
static size_t redirect_size(int d, size_t n)
{
    if (!g_a.redirect || d == D_RAW)
        return n;
    size_t m = n > SMALL_MAX ? n : SMALL_MAX + 1;
    if (g_a.raw_counts)
        tl_countdown += (int64_t)m;
    return m;
}

/* The slow paths share one shape: decide, allocate, record; errno as the
 * allocator left it. */
#define SLOW_BEGIN                                                             \
    int e_ = errno;                                                            \
    /* pymalloc hands large requests to RAW, which counts and samples them \
     * itself: here the draw is dropped (the process is memoryless, so the \
     * other allocations' chances are unchanged). */                       \
    bool skip_ = d != D_RAW && n > SMALL_MAX && g_a.large_via_raw;             \
    cp_tsinfo ti_;                                                             \
    bool take_ = due(d) && !skip_ && this_thread(d, &ti_);                     \
    errno = e_;
#define SLOW_END(p, n)                                                         \
    if (take_ && (p)) {                                                        \
        e_ = errno;                                                            \
        record((p), (n), d, &ti_);                                             \
        errno = e_;                                                            \
    }                                                                          \
    return (p);

static void *__attribute__((noinline, cold)) slow_malloc(int d, void *c, size_t n)
{
    SLOW_BEGIN
    void *p = g_prev[d].malloc(c, take_ ? redirect_size(d, n) : n);
    SLOW_END(p, n)
}

static void *__attribute__((noinline, cold)) slow_calloc(int d, void *c, size_t e, size_t s, size_t n)
{
    SLOW_BEGIN
    void *p = take_ && g_a.redirect && d != D_RAW ? g_prev[d].calloc(c, 1, redirect_size(d, n))
                                                  : g_prev[d].calloc(c, e, s);
    SLOW_END(p, n)
}

static void *__attribute__((noinline, cold)) slow_realloc(int d, void *c, void *o, size_t n)
{
    SLOW_BEGIN
    void *p = g_prev[d].realloc(c, o, take_ ? redirect_size(d, n) : n);
    SLOW_END(p, n)
}

/* ---- the wrappers ----------------------------------------------------------
 * Per domain D: mal/cal/rea count bytes down (rea_f also untracks the old
 * block), rea_u only untracks, fre untracks. ctx is the previous
 * allocator's own, so the unsampled path is "subtract, branch, jump". */

/* n bytes off countdown c; to out when it ran out. */
#define COUNT_TLS(c, n, out) \
    do { if (__builtin_expect(((c) -= (int64_t)(n)) <= 0, 0)) goto out; } while (0)
/* The same on the shared OBJ/MEM countdown: on x86-64 one read-modify-write
 * and a branch (the compiler would load, subtract, store and test). Not
 * used on TLS: GCC 12 loses the jump target of an asm goto there. */
#if defined(__x86_64__) && defined(__GNUC__)
#define COUNT_GLOBAL(c, n, out) \
    __asm__ goto("subq %1, %0\n\tjle %l[" #out "]" : "+m"(c) : "r"((int64_t)(n)) : "cc" : out)
#else
#define COUNT_GLOBAL COUNT_TLS
#endif

#define UNTRACK(o) \
    do { if (__builtin_expect(home_hit(o), 0) && (o)) heap_forget((uintptr_t)(o)); } while (0)

/* A free whose home slot is in use: untrack if it is ours, then free. */
static void __attribute__((noinline)) fre_tracked(int d, void *c, void *p)
{
    if (p)
        heap_forget((uintptr_t)p);
    g_prev[d].free(c, p);
}

#define HOOKS(D, CD, COUNTER)                                                                   \
    static void *mal_##D(void *c, size_t n)                                            \
    {                                                                                  \
        CD(COUNTER, n, out);                                                       \
        return g_prev[D].malloc(c, n);                                                 \
    out:                                                                               \
        return slow_malloc(D, c, n);                                                   \
    }                                                                                  \
    static void *cal_##D(void *c, size_t e, size_t s)                                  \
    {                                                                                  \
        size_t n;                                                                      \
        if (__builtin_mul_overflow(e, s, &n))                                          \
            return g_prev[D].calloc(c, e, s);                                          \
        CD(COUNTER, n, out);                                                       \
        return g_prev[D].calloc(c, e, s);                                              \
    out:                                                                               \
        return slow_calloc(D, c, e, s, n);                                             \
    }                                                                                  \
    static void *rea_##D(void *c, void *o, size_t n)                                   \
    {                                                                                  \
        CD(COUNTER, n, out);                                                       \
        return g_prev[D].realloc(c, o, n);                                             \
    out:                                                                               \
        return slow_realloc(D, c, o, n);                                               \
    }                                                                                  \
    static void *rea_f_##D(void *c, void *o, size_t n)                                 \
    {                                                                                  \
        UNTRACK(o);                                                                    \
        return rea_##D(c, o, n);                                                       \
    }                                                                                  \
    static void *rea_u_##D(void *c, void *o, size_t n)                                 \
    {                                                                                  \
        UNTRACK(o);                                                                    \
        return g_prev[D].realloc(c, o, n);                                             \
    }                                                                                  \
    static void fre_##D(void *c, void *p)                                              \
    {                                                                                  \
        if (__builtin_expect(home_hit(p), 0))                                          \
            return fre_tracked(D, c, p);                                               \
        g_prev[D].free(c, p);                                                          \
    }

HOOKS(0, COUNT_GLOBAL, g_cd)
HOOKS(1, COUNT_GLOBAL, g_cd)
HOOKS(2, COUNT_TLS, tl_countdown)

typedef struct hookset {
    void *(*mal)(void *, size_t);
    void *(*cal)(void *, size_t, size_t);
    void *(*rea)(void *, void *, size_t), *(*rea_f)(void *, void *, size_t), *(*rea_u)(void *, void *, size_t);
    void (*fre)(void *, void *);
} hookset;

#define HOOKSET(D) {mal_##D, cal_##D, rea_##D, rea_f_##D, rea_u_##D, fre_##D}
static const hookset g_sets[3] = {HOOKSET(0), HOOKSET(1), HOOKSET(2)};

/* ---- probing the allocator under OBJ/MEM ----------------------------------
 * A temporary RAW wrapper notes what reaches RAW while the calling thread
 * allocates through OBJ or MEM. "fwd": large requests reach RAW; "exact":
 * pointers pass unchanged both ways and small ones stay above, i.e. pymalloc
 * (not the debug hooks, not PYTHONMALLOC=malloc, not mimalloc). */

static TLS bool tl_probe;
static TLS void *tl_seen_alloc, *tl_seen_free, *tl_seen_old;

static void *probe_malloc(void *c, size_t n)
{
    void *p = g_prev[D_RAW].malloc(c, n);
    if (tl_probe)
        tl_seen_alloc = p;
    return p;
}

static void *probe_calloc(void *c, size_t e, size_t s)
{
    void *p = g_prev[D_RAW].calloc(c, e, s);
    if (tl_probe)
        tl_seen_alloc = p;
    return p;
}

static void *probe_realloc(void *c, void *o, size_t n)
{
    void *p = g_prev[D_RAW].realloc(c, o, n);
    if (tl_probe) {
        tl_seen_old = o;
        tl_seen_alloc = p;
    }
    return p;
}

static void probe_free(void *c, void *p)
{
    if (tl_probe)
        tl_seen_free = p;
    g_prev[D_RAW].free(c, p);
}

static void seen_reset(void)
{
    tl_seen_alloc = tl_seen_free = tl_seen_old = NULL;
}

/* Allocate through a, expecting RAW to see the same block (or nothing). */
static void *probe_alloc(const PyMemAllocatorEx *a, size_t n, bool zero, bool *fwd, bool *exact)
{
    seen_reset();
    void *p = zero ? a->calloc(a->ctx, 1, n) : a->malloc(a->ctx, n);
    bool large = n > SMALL_MAX;
    if (large && tl_seen_alloc)
        *fwd = true;
    if (!p || (large ? tl_seen_alloc != p : tl_seen_alloc != NULL))
        *exact = false;
    return p;
}

static void probe_release(const PyMemAllocatorEx *a, void *p, bool large, bool *exact)
{
    seen_reset();
    a->free(a->ctx, p);
    if (p && (large ? tl_seen_free != p : tl_seen_free != NULL))
        *exact = false;
}

static void probe_domain(int d, bool *fwd, bool *exact)
{
    const PyMemAllocatorEx *a = &g_prev[d];
    void *big = probe_alloc(a, 600, false, fwd, exact);
    void *small = probe_alloc(a, 16, false, fwd, exact);
    seen_reset();
    void *grown = small ? a->realloc(a->ctx, small, 700) : NULL; /* moves to RAW */
    if (grown) {
        small = NULL;
        if (tl_seen_alloc != grown)
            *exact = false;
    }
    seen_reset();
    void *big2 = big ? a->realloc(a->ctx, big, 1200) : NULL; /* RAW realloc */
    if (big2) {
        if (tl_seen_old != big || tl_seen_alloc != big2)
            *exact = false;
        big = big2;
    }
    void *zeroed = probe_alloc(a, 600, true, fwd, exact);
    probe_release(a, big, true, exact);
    probe_release(a, grown, true, exact);
    probe_release(a, zeroed, true, exact);
    if (small)
        a->free(a->ctx, small);
    if (!grown || !big2)
        *exact = false;
}

static void probe_pymalloc(void)
{
    PyMemAllocatorEx probe = {g_prev[D_RAW].ctx, probe_malloc, probe_calloc, probe_realloc, probe_free};
    bool fwd[2] = {false, false}, exact[2] = {true, true};
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &probe);
    tl_probe = true;
    for (int d = D_OBJ; d <= D_MEM; d++)
        probe_domain(d, &fwd[d], &exact[d]);
    tl_probe = false;
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &g_prev[D_RAW]);
    g_a.fwd = fwd[0] && fwd[1];
    g_a.exact = exact[0] && exact[1];
    g_a.probed = true;
}

/* ---- calibration ------------------------------------------------------------
 * What the wrapper adds to an unsampled malloc/free pair: 15 rounds, each
 * timing 1024 pairs through ours and through the previous allocator
 * directly (in alternating order); the median of the per-round differences
 * (robust to a round disturbed by other load), at start (~1-3 ms). */

static int64_t time_pairs(const PyMemAllocatorEx *a, size_t base)
{
    void *ptrs[64];
    int64_t t0 = cp_now_ns();
    for (int k = 0; k < 16; k++) {
        for (int i = 0; i < 64; i++)
            ptrs[i] = a->malloc(a->ctx, base + (size_t)(i & 7) * 24);
        for (int i = 0; i < 64; i++)
            a->free(a->ctx, ptrs[i]);
    }
    return cp_now_ns() - t0;
}

static double calibrate(int d, size_t base)
{
    enum { ROUNDS = 15 };
    int64_t mine = INT64_MAX, prev = INT64_MAX;
    for (int round = 0; round < ROUNDS; round++) {
        bool mine_first = round & 1;
        int64_t a = time_pairs(mine_first ? &g_a.dom[d].mine : &g_prev[d], base);
        int64_t b = time_pairs(mine_first ? &g_prev[d] : &g_a.dom[d].mine, base);
        int64_t m = mine_first ? a : b, p = mine_first ? b : a;
        mine = m < mine ? m : mine;
        prev = p < prev ? p : prev;
    }
    /* The fastest round of each: other load (preemption, a busy sibling
     * core) only ever adds time, so minima compare the two paths as they
     * run undisturbed, which is what the program mostly sees. */
    double ns = (double)(mine - prev) / 1024.0;
    return ns > 0 ? ns : 0;
}

/* ---- lifecycle ------------------------------------------------------------- */

static void set_domain(int d, PyMemAllocatorDomain id, bool counts, bool untrack)
{
    domain *dm = &g_a.dom[d];
    const hookset *h = &g_sets[d];
    const PyMemAllocatorEx *p = &g_prev[d];
    dm->id = id;
    dm->mine.ctx = p->ctx;
    dm->mine.malloc = counts ? h->mal : p->malloc;
    dm->mine.calloc = counts ? h->cal : p->calloc;
    dm->mine.realloc = counts ? (untrack ? h->rea_f : h->rea) : untrack ? h->rea_u : p->realloc;
    dm->mine.free = untrack ? h->fre : p->free;
    PyMem_SetAllocator(id, &dm->mine);
    dm->installed = true;
}

/* Choose and install the wrappers. With pymalloc underneath and the heap
 * on, sampled blocks are redirected through RAW and OBJ/MEM frees are not
 * wrapped; otherwise frees are wrapped where tracked blocks can be freed. */
static void install_all(const cp_alloc_opts *o)
{
    bool need_raw = o->heap || o->raw;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &g_prev[D_OBJ]);
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &g_prev[D_MEM]);
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &g_prev[D_RAW]);
    if (need_raw && !g_a.probed)
        probe_pymalloc();
    g_a.redirect = o->heap && g_a.exact;
    g_a.raw_counts = o->raw;
    g_a.large_via_raw = o->raw && g_a.fwd;
    if (o->raw || g_a.redirect)
        set_domain(D_RAW, PYMEM_DOMAIN_RAW, o->raw, o->heap);
    bool untrack = o->heap && !g_a.redirect;
    set_domain(D_OBJ, PYMEM_DOMAIN_OBJ, true, untrack);
    set_domain(D_MEM, PYMEM_DOMAIN_MEM, true, untrack);
}

static bool any_installed(void)
{
    return g_a.dom[0].installed || g_a.dom[1].installed || g_a.dom[2].installed;
}

static void ovf_free(void)
{
    free(g_o.recs);
    free(g_o.hash);
    free(g_o.scratch);
    g_o.recs = NULL;
    g_o.hash = NULL;
    g_o.scratch = NULL;
}

/* The overflow table for samples of max_frames frames; false on ENOMEM. */
static bool ovf_storage(uint32_t max_frames)
{
    ovf_free();
    g_o.stride = sizeof(cp_rawsample) + max_frames * sizeof(cp_rawframe);
    g_o.recs = calloc(OVF_SLOTS, g_o.stride); /* untouched until an overflow */
    g_o.hash = calloc(OVF_SLOTS, sizeof *g_o.hash);
    g_o.scratch = malloc(g_o.stride);
    g_o.used = g_o.cursor = 0;
    if (!g_o.recs || !g_o.hash || !g_o.scratch)
        ovf_free();
    return g_o.recs != NULL;
}

static bool ring_storage(uint32_t max_frames)
{
    if (g_a.ring.slots && g_a.ring.max_frames == max_frames)
        return true;
    cp__spin_lock(&g_a.ring_lock);
    cp__ring_free(&g_a.ring);
    bool ok = cp__ring_init(&g_a.ring, ALLOC_RING_SLOTS, max_frames, 0);
    cp__spin_unlock(&g_a.ring_lock);
    return ok && ovf_storage(max_frames);
}

int cp__alloc_start(const cp_alloc_opts *o)
{
    if (!o->alloc && !o->heap)
        return CP_OK;
    g_a.active = false;
    if (!ring_storage(o->max_frames) || !heap_storage(o->max_frames))
        return CP_ENOMEM;
    g_a.max_frames = o->max_frames;
    g_a.mean = (double)(o->mean_bytes > 0 ? o->mean_bytes : 1048576);
    g_a.interp = o->interp;
    g_a.alloc = o->alloc;
    bool heap = o->heap;
    if (!any_installed()) {
        install_all(o);
    } else if (heap && !g_a.redirect && g_a.dom[D_OBJ].mine.free == g_prev[D_OBJ].free) {
        /* Still in another allocator's chain from an earlier run, set up
         * without heap tracking: frees would go unseen. */
        cp_log(CP_LOG_WARN, "live-heap profile off: an allocator installed after contprof's first run wraps it");
        heap = false;
    }
    g_a.heap = heap;
    if (g_a.dom[D_OBJ].installed)
        g_a.ns_per_alloc[D_OBJ] = g_a.ns_per_alloc[D_MEM] = calibrate(D_OBJ, 16);
    if (g_a.dom[D_RAW].installed)
        g_a.ns_per_alloc[D_RAW] = calibrate(D_RAW, 1024);
    tl_inited = false;
    tl_countdown = 0;
    g_cd = next_interval();
    g_a.active = true;
    return CP_OK;
}

void cp__alloc_stop(void)
{
    g_a.active = false;
    /* OBJ and MEM first: their redirected blocks then simply stay RAW's. */
    for (int i = 0; i < 3; i++) {
        domain *d = &g_a.dom[i];
        if (!d->installed)
            continue;
        PyMemAllocatorEx cur;
        PyMem_GetAllocator(d->id, &cur);
        /* Someone (tracemalloc) wrapped us: unhooking would cut them off,
         * so we stay in the chain as a pass-through instead. */
        if (cur.malloc == d->mine.malloc && cur.free == d->mine.free && cur.realloc == d->mine.realloc) {
            PyMem_SetAllocator(d->id, &g_prev[i]);
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
    if (!g_h.table)
        return;
    cp__spin_lock(&g_h.lock);
    while (g_h.head != NIL) {
        uint32_t r = g_h.head;
        untrack(find_slot(g_h.meta[r].ptr), r);
    }
    g_h.evicted = 0;
    cp__spin_unlock(&g_h.lock);
}

typedef struct snapref {
    uint32_t rec, gen;
} snapref;

cp_rawsample *cp__heap_snapshot(size_t *n, size_t *stride)
{
    *n = 0;
    *stride = g_h.stride;
    size_t want = g_h.live; /* a racy read sizes the buffers */
    if (!want || !g_h.payload)
        return NULL;
    want += 64;
    snapref *refs = malloc(want * sizeof *refs);
    uint8_t *out = malloc(want * g_h.stride);
    if (!refs || !out) {
        free(refs);
        free(out);
        return NULL;
    }
    size_t k = 0;
    cp__spin_lock(&g_h.lock);
    for (uint32_t r = g_h.head; r != NIL && k < want; r = g_h.meta[r].next) {
        uint32_t gen = atomic_load_explicit(&g_h.meta[r].gen, memory_order_acquire);
        if (!(gen & 1))
            refs[k++] = (snapref){r, gen};
    }
    cp__spin_unlock(&g_h.lock);
    /* Copy, then check the record was not freed or reused meanwhile. */
    for (size_t i = 0; i < k; i++) {
        cp_rawsample *dst = (cp_rawsample *)(out + *n * g_h.stride);
        memcpy(dst, payload_at(refs[i].rec), g_h.stride);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&g_h.meta[refs[i].rec].gen, memory_order_relaxed) == refs[i].gen)
            (*n)++;
    }
    free(refs);
    if (!*n) {
        free(out);
        return NULL;
    }
    return (cp_rawsample *)out;
}

void cp__alloc_after_fork(void)
{
    /* Only this thread exists now: no lock can be held by anyone alive.
     * Samples taken in the parent but not yet resolved belong to it. */
    atomic_flag_clear(&g_h.lock);
    atomic_flag_clear(&g_a.ring_lock);
    atomic_store(&g_a.ring.head, 0);
    atomic_store(&g_a.ring.tail, 0);
    if (g_o.hash)
        memset(g_o.hash, 0, OVF_SLOTS * sizeof *g_o.hash);
    g_o.used = 0;
    tl_inited = false;
    tl_countdown = 0;
}

void cp__alloc_exclude_thread(void)
{
    tl_excluded = true;
}

void cp__alloc_info(cp_alloc_info *out)
{
    memset(out, 0, sizeof *out);
    out->obj_ns_per_alloc = g_a.ns_per_alloc[D_OBJ];
    out->raw_ns_per_alloc = g_a.ns_per_alloc[D_RAW];
    out->redirect = g_a.redirect;
    out->raw_hooked = g_a.dom[D_RAW].installed;
    out->free_hooked = g_a.dom[D_OBJ].installed && g_a.dom[D_OBJ].mine.free != g_prev[D_OBJ].free;
    out->heap_live = g_h.live;
    out->heap_evicted = g_h.evicted;
}
