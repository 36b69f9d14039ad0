/*
 * store_stress.c — multithreaded stress of the JVM agent's lock-free
 * tables, as the agent uses them: many writers, one reader. Built plain and
 * under ThreadSanitizer (jvm_store_stress_tsan).
 *
 * 1. Call-trace store: writer threads reserve, fill and commit records
 *    whose fields carry a checksum, while one drainer drains; every
 *    committed record is drained exactly once and intact, every failed
 *    reserve is a counted drop, and the half-full callback fires.
 * 2. Live-heap table: allocator threads claim slots and later free them
 *    (ObjectFree), twice for some (a late duplicate with a stale
 *    generation); one resolver thread publishes the stacks and trims the
 *    table at its cap; one exporter copies live slots and checks that each
 *    copy is consistent. At the end every slot is free again.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call_trace_store.h"
#include "contprof.h"
#include "heap_stacks.h"
#include "heap_table.h"

#define CHECK(c)                                                                   \
    do {                                                                           \
        if (!(c)) {                                                                \
            fprintf(stderr, "store_stress: %s:%d: check failed: %s\n", __FILE__, \
                    __LINE__, #c);                                                 \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

enum { WRITERS = 4, PER_WRITER = 100000, STORE_SLOTS = 256, DEPTH = 4 };

static atomic_ullong g_committed, g_reserve_failed, g_drained, g_half_full;
static atomic_bool g_writers_done;

static void on_half_full(void) { atomic_fetch_add(&g_half_full, 1); }

static int64_t checksum(int64_t weight, int n) { return weight * 31 + n; }

static void *store_writer(void *arg)
{
    int64_t id = (int64_t)(intptr_t)arg;

    for (int64_t k = 0; k < PER_WRITER; k++) {
        cp__trace_rec *r = cp__store_reserve();
        if (r == NULL) {
            atomic_fetch_add(&g_reserve_failed, 1);
            sched_yield();
            continue;
        }
        r->kind = CP__TRACE_CPU;
        r->weight = id << 32 | k;
        r->num_frames = (int)(k % DEPTH) + 1;
        for (int f = 0; f < r->num_frames; f++)
            r->frames[f].lineno = (jint)(k + f);
        r->size = checksum(r->weight, r->num_frames);
        if (k % 97 == 0) { /* some writers give up their slot */
            cp__store_cancel(r);
            continue;
        }
        cp__store_commit(r);
        atomic_fetch_add(&g_committed, 1);
    }
    return NULL;
}

static void check_rec(const cp__trace_rec *r, void *ctx)
{
    (void)ctx;
    CHECK(r->kind == CP__TRACE_CPU);
    CHECK(r->size == checksum(r->weight, r->num_frames));
    for (int f = 0; f < r->num_frames; f++)
        CHECK(r->frames[f].lineno == (jint)((r->weight & 0xffffffff) + f));
    atomic_fetch_add(&g_drained, 1);
}

static void *store_drainer(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_writers_done))
        if (cp__store_drain(check_rec, NULL) == 0)
            sched_yield();
    cp__store_drain(check_rec, NULL);
    return NULL;
}

static void stress_store(void)
{
    pthread_t w[WRITERS], d;
    cp_metrics m0, m1;

    CHECK(cp__store_init(STORE_SLOTS, DEPTH) == CP_OK);
    cp__store_on_half_full(on_half_full);
    cp_metrics_get(&m0);
    CHECK(pthread_create(&d, NULL, store_drainer, NULL) == 0);
    for (intptr_t i = 0; i < WRITERS; i++)
        CHECK(pthread_create(&w[i], NULL, store_writer, (void *)i) == 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(w[i], NULL);
    atomic_store(&g_writers_done, true);
    pthread_join(d, NULL);
    cp_metrics_get(&m1);
    printf("store: %llu committed, %llu drained, %llu drops, half-full wake-ups %llu\n",
           (unsigned long long)g_committed, (unsigned long long)g_drained,
           (unsigned long long)g_reserve_failed, (unsigned long long)g_half_full);
    CHECK(g_drained == g_committed);
    CHECK(m1.samples_dropped - m0.samples_dropped == g_reserve_failed);
    CHECK(g_committed > 0);
}

/* ---- live-heap table ---- */

/* 4 x 900 objects alive at once in a table capped at 4096 slots: the
 * resolver has to evict (the oldest) to keep room. */
enum { ALLOCATORS = 4, PER_ALLOC = 60000, HEAP_SLOTS = 4096, SITES = 16, RING = 1024, KEEP = 900 };

typedef struct claim {
    int32_t i;
    uint32_t gen;
    int site;
} claim;

/* One single-producer single-consumer ring per allocator: claims waiting
 * for the resolver, as the call-trace store carries them in the agent. */
typedef struct spsc {
    claim items[RING];
    atomic_size_t head, tail;
} spsc;

static spsc g_rings[ALLOCATORS];
static atomic_int g_allocators_left = ALLOCATORS;
static atomic_bool g_heap_done;
static atomic_ullong g_exported, g_published, g_evicted;
static const char *g_site_class[SITES];
static char g_site_names[SITES][32];

static void *heap_allocator(void *arg)
{
    int id = (int)(intptr_t)arg;
    spsc *q = &g_rings[id];
    claim *held = calloc(KEEP, sizeof *held);
    unsigned rnd = (unsigned)id * 2654435761u + 1;

    CHECK(held != NULL);
    for (int k = 0; k < KEEP; k++)
        held[k].i = -1; /* nothing held */
    for (int k = 0; k < PER_ALLOC; k++) {
        rnd = rnd * 1103515245u + 12345u;
        claim c = {.site = (int)(rnd >> 16) % SITES};
        c.i = cp__heap_table_claim(1000 + c.site, &c.gen);
        if (c.i < 0)
            continue;
        while (atomic_load(&q->tail) - atomic_load(&q->head) == RING)
            sched_yield();
        q->items[atomic_load(&q->tail) % RING] = c;
        atomic_fetch_add(&q->tail, 1);
        /* The object KEEP claims ago dies: ObjectFree, and now and then a
         * duplicate one for the same (slot, gen) that must change nothing. */
        claim *old = &held[k % KEEP];
        cp__heap_table_free(old->i, old->gen);
        if (k % 7 == 0)
            cp__heap_table_free(old->i, old->gen);
        *old = c;
    }
    /* Wait until the resolver saw every claim, then free the rest. */
    while (atomic_load(&q->head) != atomic_load(&q->tail))
        sched_yield();
    for (int k = 0; k < KEEP; k++)
        cp__heap_table_free(held[k].i, held[k].gen);
    free(held);
    atomic_fetch_sub(&g_allocators_left, 1);
    return NULL;
}

static void *heap_resolver(void *arg)
{
    cp_frame frames[3];

    (void)arg;
    for (;;) {
        bool idle = true;
        for (int a = 0; a < ALLOCATORS; a++) {
            spsc *q = &g_rings[a];
            while (atomic_load(&q->head) != atomic_load(&q->tail)) {
                claim c = q->items[atomic_load(&q->head) % RING];
                atomic_fetch_add(&q->head, 1);
                for (int f = 0; f < 3; f++)
                    frames[f] = (cp_frame){g_site_class[c.site], NULL, NULL, c.site * 10 + f, 0, NULL};
                cp__heap_table_publish(c.i, c.gen, cp__heap_stacks_intern(frames, 3), g_site_class[c.site],
                                       (cp__gc_mark){0, 0});
                atomic_fetch_add(&g_published, 1);
                idle = false;
            }
        }
        atomic_fetch_add(&g_evicted, cp__heap_table_maintain());
        if (idle && atomic_load(&g_allocators_left) == 0)
            break;
        if (idle)
            sched_yield();
    }
    atomic_store(&g_heap_done, true);
    return NULL;
}

static void check_entry(const cp__heap_entry *e, void *ctx)
{
    cp_frame frames[4];
    int site = (int)(e->bytes - 1000);

    (void)ctx;
    CHECK(site >= 0 && site < SITES);
    CHECK(e->class_name == g_site_class[site]);
    CHECK(cp__heap_stacks_get(e->stack, frames, 4) == 3);
    for (int f = 0; f < 3; f++)
        CHECK(frames[f].name == g_site_class[site] && frames[f].line == site * 10 + f);
    atomic_fetch_add(&g_exported, 1);
}

static void *heap_exporter(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_heap_done))
        cp__heap_table_each(check_entry, NULL);
    return NULL;
}

static void count_live(const cp__heap_entry *e, void *ctx)
{
    (void)e;
    ++*(size_t *)ctx;
}

static void stress_heap(void)
{
    pthread_t a[ALLOCATORS], r, x;
    size_t live = 0;

    for (int s = 0; s < SITES; s++) {
        snprintf(g_site_names[s], sizeof g_site_names[s], "Site%d.alloc", s);
        g_site_class[s] = g_site_names[s];
    }
    CHECK(cp__heap_table_init(HEAP_SLOTS) == CP_OK);
    CHECK(cp__heap_stacks_init(1024) == CP_OK);
    CHECK(pthread_create(&r, NULL, heap_resolver, NULL) == 0);
    CHECK(pthread_create(&x, NULL, heap_exporter, NULL) == 0);
    for (intptr_t i = 0; i < ALLOCATORS; i++)
        CHECK(pthread_create(&a[i], NULL, heap_allocator, (void *)i) == 0);
    for (int i = 0; i < ALLOCATORS; i++)
        pthread_join(a[i], NULL);
    pthread_join(r, NULL);
    pthread_join(x, NULL);
    cp__heap_table_each(count_live, &live);
    printf("heap: %llu published, %llu exported copies, %llu evicted, %zu nodes, capacity %zu, "
           "%zu slots in use at the end\n",
           (unsigned long long)g_published, (unsigned long long)g_exported,
           (unsigned long long)g_evicted, cp__heap_stacks_count(), cp__heap_table_capacity(),
           cp__heap_table_used());
    CHECK(g_published > 0 && g_exported > 0);
    CHECK(live == 0 && cp__heap_table_used() == 0);
    CHECK(cp__heap_stacks_count() == SITES * 3);
    CHECK(cp__heap_table_capacity() <= HEAP_SLOTS);
}

int main(void)
{
    stress_store();
    stress_heap();
    printf("store_stress: all checks passed\n");
    return 0;
}
