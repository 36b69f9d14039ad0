/*
 * call_trace_store.c — the ring of preallocated sample slots.
 *
 * A writer takes the next index from an atomic cursor and moves that slot
 * FREE -> WRITING with one CAS; if the slot is not FREE (the reader is a
 * whole lap behind, or another writer holds it) it tries the next index, a
 * few times, then drops the sample. The reader scans every slot and moves
 * READY ones back to FREE, so a skipped index never stalls it. Slot states
 * live in their own dense array so that the reader's scan touches a few
 * cache lines, not every record.
 *
 * A drain that leaves nothing pending sends the cursor back to slot 0: at
 * ordinary rates the writers then keep reusing the same few slots, whose
 * pages are resident and cached, instead of touching all of them in turn
 * (1024 slots of 513 frames are ~12 MB; a first touch is a page fault in
 * a signal handler).
 */
#include "call_trace_store.h"

#include <stdlib.h>

#include "contprof.h"

enum { SLOT_FREE = 0, SLOT_WRITING = 1, SLOT_READY = 2, CLAIM_TRIES = 8 };

static cp__trace_rec *g_slots;     /* never freed: late signals may write */
static atomic_int *g_states;       /* g_states[i] is the state of g_slots[i] */
static size_t g_nslots;
static atomic_size_t g_cursor;
static atomic_size_t g_ready;      /* committed, not yet drained */
static void (*g_half_full)(void);

int cp__store_init(size_t nslots, int depth)
{
    cp__trace_rec *slots = calloc(nslots, sizeof *slots);
    cp__agct_frame *frames = calloc(nslots * (size_t)depth, sizeof *frames);
    atomic_int *states = calloc(nslots, sizeof *states);
    uintptr_t *native = calloc(nslots * (size_t)depth, sizeof *native);

    if (slots == NULL || frames == NULL || states == NULL || native == NULL) {
        free(slots);
        free(frames);
        free(states);
        free(native);
        return CP_ENOMEM;
    }
    g_states = states;
    for (size_t i = 0; i < nslots; i++)
        slots[i].frames = frames + i * (size_t)depth;
    for (size_t i = 0; i < nslots; i++)
        slots[i].native = native + i * (size_t)depth;
    g_slots = slots;
    g_nslots = nslots;
    return CP_OK;
}

cp__trace_rec *cp__store_reserve(void)
{
    if (g_nslots == 0)
        return NULL;
    cp__trace_rec *r = NULL;

    /* No waiting here: a signal handler must never spin on the reader. */
    for (int t = 0; t < CLAIM_TRIES && r == NULL; t++) {
        size_t i = atomic_fetch_add_explicit(&g_cursor, 1, memory_order_relaxed) % g_nslots;
        int expect = SLOT_FREE;
        if (atomic_compare_exchange_strong_explicit(&g_states[i], &expect, SLOT_WRITING,
                                                    memory_order_acquire, memory_order_relaxed))
            r = &g_slots[i];
    }
    if (r == NULL) {
        cp_metrics_add_dropped(1);
        return NULL;
    }
    r->heap_slot = -1;
    r->thread_slot = -1;
    r->pc = 0;
    r->java_pc = 0;
    r->total_frames = CP__DEPTH_UNKNOWN;
    r->class_name[0] = '\0';
    r->java = true;
    r->num_native = 0;
    r->size = 0;
    return r;
}

void cp__store_on_half_full(void (*fn)(void)) { g_half_full = fn; }

void cp__store_commit(cp__trace_rec *r)
{
    atomic_store_explicit(&g_states[r - g_slots], SLOT_READY, memory_order_release);
    /* Exactly one writer sees the count cross half: it wakes the reader
     * early, so a burst is drained before the store fills. */
    if (atomic_fetch_add_explicit(&g_ready, 1, memory_order_relaxed) + 1 == g_nslots / 2 && g_half_full)
        g_half_full();
}

void cp__store_cancel(cp__trace_rec *r)
{
    atomic_store_explicit(&g_states[r - g_slots], SLOT_FREE, memory_order_release);
}

size_t cp__store_drain(cp__store_visit fn, void *ctx)
{
    size_t n = 0;

    for (size_t i = 0; i < g_nslots; i++) {
        if (atomic_load_explicit(&g_states[i], memory_order_acquire) != SLOT_READY)
            continue;
        fn(&g_slots[i], ctx);
        atomic_store_explicit(&g_states[i], SLOT_FREE, memory_order_release);
        atomic_fetch_sub_explicit(&g_ready, 1, memory_order_relaxed);
        n++;
    }
    /* Nothing pending: writers start again from the front (see above). A
     * writer that took an index before this store, or commits after the
     * check, only makes the next claims skip a busy slot. */
    if (atomic_load_explicit(&g_ready, memory_order_relaxed) == 0)
        atomic_store_explicit(&g_cursor, 0, memory_order_relaxed);
    return n;
}
