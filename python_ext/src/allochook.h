/*
 * allochook.h — allocation and live-heap sampling through PyMem_SetAllocator
 * wrappers on the OBJ, MEM and (optionally) RAW domains.
 *
 * Poisson byte sampling with a per-thread countdown: on average one sample
 * per mean_bytes allocated, weighted so that sums estimate the real bytes
 * and counts. Sampled blocks are tracked until freed (the live-heap
 * profile) in a table bounded at CP_HEAP_MAX_SAMPLES blocks; when it is
 * full the oldest tracked block gives way to the newest, and that is
 * counted as a drop.
 *
 * When the OBJ/MEM allocator is CPython's pymalloc (checked by probing it at
 * start), sampled small blocks are served as large ones, which pymalloc
 * takes from the RAW domain; their frees then come back through RAW, so the
 * OBJ/MEM free path carries no wrapper at all. The RAW domain is called
 * without the GIL (and sub-interpreters with their own GIL run OBJ/MEM
 * concurrently on 3.12+), so the heap table has its own spin lock and only
 * threads of the profiled interpreter take samples.
 */
#ifndef CP_ALLOCHOOK_H
#define CP_ALLOCHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rawring.h"

#define CP_HEAP_MAX_SAMPLES 32768 /* tracked live blocks at most */

typedef struct cp_alloc_opts {
    int64_t mean_bytes;   /* mean bytes between samples               */
    bool alloc, heap;     /* alloc-space samples; live-heap tracking  */
    bool raw;             /* also sample the PyMem_Raw* domain        */
    uint32_t max_frames;
    uintptr_t interp;     /* the profiled interpreter                 */
} cp_alloc_opts;

/* Install (or re-activate) the hooks. GIL held. 0 or CP_ENOMEM. */
int cp__alloc_start(const cp_alloc_opts *o);

/* Stop sampling: restore the previous allocators if ours are still the
 * installed ones, else stay in the chain as a pass-through. GIL held. */
void cp__alloc_stop(void);

/* Sampled allocations waiting for the resolver (NULL before start). */
cp_rawring *cp__alloc_ring(void);

/* Move one merged overflow sample (see allochook.c) into dst, which has
 * room for max_frames frames. False when there is none. GIL held. */
bool cp__alloc_overflow_take(cp_rawsample *dst);

/* Copy of the live sampled blocks' stacks and weights (heap-space in
 * alloc_bytes, heap-live-samples in alloc_n). Caller frees with free();
 * *n receives the count; the stride between entries is *stride bytes.
 * GIL held. NULL when empty or on ENOMEM. */
cp_rawsample *cp__heap_snapshot(size_t *n, size_t *stride);

/* The calling thread (the profiler's own) is never sampled. */
void cp__alloc_exclude_thread(void);

/* In a forked child: drop the parent's unresolved samples, reset locks. */
void cp__alloc_after_fork(void);

/* Forget every tracked block (after stop, or to start afresh). GIL held. */
void cp__heap_clear(void);

/* What the hooks cost and how they are set up, for bench/ and tests:
 * calibrated ns per hooked allocation (wrapper cost, unsampled path) of
 * OBJ/MEM and RAW, and whether sampled blocks are redirected through RAW. */
typedef struct cp_alloc_info {
    double obj_ns_per_alloc, raw_ns_per_alloc;
    bool redirect, raw_hooked, free_hooked;
    uint64_t heap_live, heap_evicted;
} cp_alloc_info;
void cp__alloc_info(cp_alloc_info *out);

#endif
