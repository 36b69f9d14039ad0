/*
 * heap_table.c — sampled objects that may still be alive (see the header).
 */
#include "heap_table.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "contprof.h"

enum { ST_FREE = 0, ST_PENDING = 1, ST_LIVE = 2, ST_DEAD = 3 };
enum { CHUNK_SLOTS = 4096, PROBES = 64 };

typedef struct heap_slot {
    _Atomic uint64_t word;            /* gen << 32 | state                     */
    _Atomic uint64_t seq;             /* claim order: the oldest go first      */
    _Atomic int64_t bytes;
    _Atomic(const cp__heap_node *) stack;
    _Atomic(const char *) class_name;
    _Atomic uint64_t mark_stw, mark_conc, mark_young;
} heap_slot;

static _Atomic(heap_slot *) *g_chunks; /* never freed: ObjectFree may come late */
static size_t g_max_chunks;
static atomic_size_t g_nchunks;
static atomic_size_t g_used;
static _Atomic uint64_t g_cursor, g_seq;

static uint64_t word(uint32_t gen, int state) { return (uint64_t)gen << 32 | (uint64_t)state; }
static int state_of(uint64_t w) { return (int)(w & 0xffffffffu); }
static uint32_t gen_of(uint64_t w) { return (uint32_t)(w >> 32); }

static heap_slot *slot(size_t i)
{
    heap_slot *c = atomic_load_explicit(&g_chunks[i / CHUNK_SLOTS], memory_order_acquire);
    return &c[i % CHUNK_SLOTS];
}

static bool add_chunk(void)
{
    size_t n = atomic_load(&g_nchunks);
    heap_slot *c;

    if (n >= g_max_chunks || (c = calloc(CHUNK_SLOTS, sizeof *c)) == NULL)
        return false;
    atomic_store_explicit(&g_chunks[n], c, memory_order_release);
    atomic_store_explicit(&g_nchunks, n + 1, memory_order_release);
    return true;
}

int cp__heap_table_init(size_t max_slots)
{
    g_max_chunks = (max_slots + CHUNK_SLOTS - 1) / CHUNK_SLOTS;
    if (g_max_chunks == 0)
        g_max_chunks = 1;
    if ((g_chunks = calloc(g_max_chunks, sizeof *g_chunks)) == NULL)
        return CP_ENOMEM;
    return add_chunk() ? CP_OK : CP_ENOMEM;
}

size_t cp__heap_table_capacity(void)
{
    return atomic_load_explicit(&g_nchunks, memory_order_acquire) * CHUNK_SLOTS;
}

size_t cp__heap_table_used(void) { return atomic_load(&g_used); }

/* Probe starts are scattered (Fibonacci hashing of a counter), so objects
 * claimed in a row do not form long occupied runs. */
int32_t cp__heap_table_claim(int64_t bytes, uint32_t *gen)
{
    size_t cap = cp__heap_table_capacity();

    if (cap == 0)
        return -1;
    uint64_t start = (atomic_fetch_add_explicit(&g_cursor, 1, memory_order_relaxed) *
                      0x9e3779b97f4a7c15ULL) >> 17;
    for (size_t n = 0; n < PROBES; n++) {
        size_t i = (size_t)((start + n) % cap);
        heap_slot *s = slot(i);
        uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
        /* A plain load first: no cache-line ping-pong over busy slots. */
        if (state_of(w) != ST_FREE ||
            !atomic_compare_exchange_strong(&s->word, &w, word(gen_of(w), ST_PENDING)))
            continue;
        atomic_fetch_add(&g_used, 1);
        atomic_store_explicit(&s->bytes, bytes, memory_order_relaxed);
        atomic_store_explicit(&s->seq, atomic_fetch_add(&g_seq, 1), memory_order_relaxed);
        *gen = gen_of(w);
        return (int32_t)i;
    }
    return -1;
}

/* CAS slot i from (gen, from) to FREE with the next generation. */
static bool release(heap_slot *s, uint32_t gen, int from)
{
    uint64_t w = word(gen, from);

    if (!atomic_compare_exchange_strong(&s->word, &w, word(gen + 1, ST_FREE)))
        return false;
    atomic_fetch_sub(&g_used, 1);
    return true;
}

static heap_slot *valid_slot(int32_t i)
{
    return i >= 0 && (size_t)i < cp__heap_table_capacity() ? slot((size_t)i) : NULL;
}

void cp__heap_table_unclaim(int32_t i, uint32_t gen)
{
    heap_slot *s = valid_slot(i);
    if (s != NULL)
        release(s, gen, ST_PENDING);
}

/* One loop over the word, not two CASes: between a failed LIVE->FREE and a
 * PENDING->DEAD attempt the resolver may publish (PENDING->LIVE), and the
 * object's only ObjectFree would be lost. */
void cp__heap_table_free(int32_t i, uint32_t gen)
{
    heap_slot *s = valid_slot(i);
    uint64_t w = s != NULL ? atomic_load(&s->word) : 0;

    while (s != NULL && gen_of(w) == gen) {
        if (state_of(w) == ST_LIVE) {
            if (atomic_compare_exchange_weak(&s->word, &w, word(gen + 1, ST_FREE))) {
                atomic_fetch_sub(&g_used, 1);
                return;
            }
        } else if (state_of(w) == ST_PENDING) {
            if (atomic_compare_exchange_weak(&s->word, &w, word(gen, ST_DEAD)))
                return;
        } else {
            return; /* FREE or DEAD already */
        }
    }
}

void cp__heap_table_publish(int32_t i, uint32_t gen, const cp__heap_node *stack,
                            const char *class_name, cp__gc_mark mark)
{
    heap_slot *s = valid_slot(i);
    uint64_t w = word(gen, ST_PENDING);

    if (s == NULL || release(s, gen, ST_DEAD))
        return; /* gone, or died before we got here */
    if (stack == NULL) {
        if (!release(s, gen, ST_PENDING))
            release(s, gen, ST_DEAD);
        return;
    }
    atomic_store_explicit(&s->stack, stack, memory_order_relaxed);
    atomic_store_explicit(&s->class_name, class_name, memory_order_relaxed);
    atomic_store_explicit(&s->mark_stw, mark.stw, memory_order_relaxed);
    atomic_store_explicit(&s->mark_conc, mark.conc, memory_order_relaxed);
    atomic_store_explicit(&s->mark_young, mark.young, memory_order_relaxed);
    /* Release: a reader that sees LIVE sees the fields above. */
    if (!atomic_compare_exchange_strong_explicit(&s->word, &w, word(gen, ST_LIVE),
                                                 memory_order_release, memory_order_relaxed))
        release(s, gen, ST_DEAD); /* freed meanwhile */
}

/* Copy slot s if LIVE and unchanged while copying (copy, validate, then
 * let the caller dereference). */
static bool snapshot(heap_slot *s, cp__heap_entry *e)
{
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);

    if (state_of(w) != ST_LIVE)
        return false;
    /* Acquire loads: the re-check of the word below cannot move above them
     * (a fence would do too, but TSan does not model fences). */
    e->bytes = atomic_load_explicit(&s->bytes, memory_order_acquire);
    e->stack = atomic_load_explicit(&s->stack, memory_order_acquire);
    e->class_name = atomic_load_explicit(&s->class_name, memory_order_acquire);
    e->mark.stw = atomic_load_explicit(&s->mark_stw, memory_order_acquire);
    e->mark.conc = atomic_load_explicit(&s->mark_conc, memory_order_acquire);
    e->mark.young = atomic_load_explicit(&s->mark_young, memory_order_acquire);
    return atomic_load_explicit(&s->word, memory_order_relaxed) == w;
}

void cp__heap_table_each(cp__heap_visit fn, void *ctx)
{
    size_t cap = cp__heap_table_capacity();
    cp__heap_entry e;

    for (size_t i = 0; i < cap; i++)
        if (snapshot(slot(i), &e))
            fn(&e, ctx);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Evict live objects claimed at or before the seq below which `excess` of
 * them lie: the newest stay. */
static size_t evict_oldest(size_t cap, size_t excess)
{
    uint64_t *seqs = malloc(cap * sizeof *seqs);
    size_t n = 0, evicted = 0;

    if (seqs == NULL)
        return 0;
    for (size_t i = 0; i < cap; i++) {
        heap_slot *s = slot(i);
        if (state_of(atomic_load(&s->word)) == ST_LIVE)
            seqs[n++] = atomic_load_explicit(&s->seq, memory_order_relaxed);
    }
    if (n > 0) {
        qsort(seqs, n, sizeof *seqs, cmp_u64);
        uint64_t limit = seqs[(excess < n ? excess : n) - 1];
        for (size_t i = 0; i < cap; i++) {
            heap_slot *s = slot(i);
            uint64_t w = atomic_load(&s->word);
            if (state_of(w) == ST_LIVE && atomic_load_explicit(&s->seq, memory_order_relaxed) <= limit &&
                release(s, gen_of(w), ST_LIVE))
                evicted++;
        }
    }
    free(seqs);
    return evicted;
}

size_t cp__heap_table_maintain(void)
{
    size_t cap = cp__heap_table_capacity(), used = cp__heap_table_used();

    if (used * 2 <= cap)
        return 0;
    if (add_chunk())
        return 0;
    if (used * 8 <= cap * 7)
        return 0;
    return evict_oldest(cap, used - cap * 3 / 4);
}
