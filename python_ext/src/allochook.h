/*
 * allochook.h — allocation and live-heap sampling through a
 * PyMem_SetAllocator wrapper on the OBJ and MEM domains.
 *
 * Poisson byte sampling with a per-thread countdown: on average one sample
 * per mean_bytes allocated, weighted so that sums estimate the real bytes
 * and counts. Sampled blocks are tracked in a bounded table until freed,
 * which is the live-heap profile. Everything here runs with the GIL held
 * (those domains require it), so the GIL is the lock.
 */
#ifndef CP_ALLOCHOOK_H
#define CP_ALLOCHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rawring.h"

/* Install (or re-activate) the hooks. GIL held. 0 or CP_ENOMEM. */
int cp__alloc_start(int64_t mean_bytes, bool alloc, bool heap, uint32_t max_frames);

/* Stop sampling: restore the previous allocator if ours is still the
 * installed one, else stay in the chain as a pass-through. GIL held. */
void cp__alloc_stop(void);

/* Sampled allocations waiting for the resolver (NULL before start). */
cp_rawring *cp__alloc_ring(void);

/* Copy of the live sampled blocks' stacks and weights (heap-space in
 * alloc_bytes, heap-live-samples in alloc_n). Caller frees with free();
 * *n receives the count; the stride between entries is *stride bytes.
 * GIL held. NULL when empty or on ENOMEM. */
cp_rawsample *cp__heap_snapshot(size_t *n, size_t *stride);

/* In a forked child: drop the parent's unresolved samples. */
void cp__alloc_after_fork(void);

/* Forget every tracked block (after stop, or to start afresh). GIL held. */
void cp__heap_clear(void);

#endif
