/*
 * rawring.c — SPSC ring of fixed-size raw-sample slots (see rawring.h).
 *
 * head and tail only grow; slot = index % nslots. Acquire/release ordering
 * makes the slot contents visible before the index that publishes them.
 */
#include "rawring.h"

#include <stdlib.h>
#include <string.h>

bool cp__raw_same_stack(const cp_rawsample *a, const cp_rawsample *b)
{
    return a->thread_id == b->thread_id && a->native_id == b->native_id && a->nframes == b->nframes &&
           a->omitted == b->omitted && memcmp(a->frames, b->frames, a->nframes * sizeof(cp_rawframe)) == 0;
}

bool cp__ring_init(cp_rawring *r, size_t nslots, size_t max_frames, size_t extra)
{
    memset(r, 0, sizeof *r);
    r->max_frames = max_frames;
    r->extra = (extra + 7) & ~(size_t)7;
    r->slot_size = sizeof(cp_rawsample) + max_frames * sizeof(cp_rawframe) + r->extra;
    r->slots = calloc(nslots, r->slot_size);
    if (!r->slots)
        return false;
    r->nslots = nslots;
    return true;
}

void cp__ring_free(cp_rawring *r)
{
    free(r->slots);
    memset(r, 0, sizeof *r);
}

void *cp__ring_extra(const cp_rawring *r, cp_rawsample *s)
{
    return r->extra ? (uint8_t *)s + r->slot_size - r->extra : NULL;
}

static cp_rawsample *slot_at(cp_rawring *r, size_t idx)
{
    size_t base = atomic_load_explicit(&r->base, memory_order_relaxed);
    return (cp_rawsample *)(r->slots + ((idx - base) % r->nslots) * r->slot_size);
}

cp_rawsample *cp__ring_reserve(cp_rawring *r)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (!r->slots || head - tail >= r->nslots)
        return NULL;
    /* Empty: the consumer is done with every slot, so the next sample may
     * go to slot 0. While the consumer keeps up, samples reuse the first
     * few slots, whose pages stay resident and cached, instead of touching
     * the whole ring in turn (4096 slots of 64 frames are ~5 MB). The
     * consumer reads base only for indices below head, published (release)
     * after this store, and base cannot move again until it has released
     * them all. */
    if (head == tail)
        atomic_store_explicit(&r->base, head, memory_order_relaxed);
    cp_rawsample *s = slot_at(r, head);
    memset(s, 0, sizeof *s);
    return s;
}

void cp__ring_commit(cp_rawring *r)
{
    atomic_fetch_add_explicit(&r->head, 1, memory_order_release);
}

cp_rawsample *cp__ring_peek(cp_rawring *r)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (!r->slots || tail == head)
        return NULL;
    return slot_at(r, tail);
}

void cp__ring_release(cp_rawring *r)
{
    atomic_fetch_add_explicit(&r->tail, 1, memory_order_release);
}

size_t cp__ring_used(cp_rawring *r)
{
    return atomic_load_explicit(&r->head, memory_order_relaxed) -
           atomic_load_explicit(&r->tail, memory_order_relaxed);
}
