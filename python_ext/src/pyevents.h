/*
 * pyevents.h — lock-wait and exception samples of the Python front end.
 *
 * pylock.c and pyexc.c decide which events are sampled (cp_rate_sampler)
 * and record them here: the calling thread's own frames are walked
 * directly (it holds the GIL) into a preallocated buffer, with the event's
 * label ("lock name" or "exception type"). The resolver drains the buffer
 * into the core on its own schedule. Producers and the consumer all hold
 * the GIL, which is the lock of everything in this file.
 */
#ifndef CP_PYEVENTS_H
#define CP_PYEVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "rawring.h"

typedef enum { CP_PYEV_LOCK = 0, CP_PYEV_EXC = 1, CP_PYEV_HOLD = 2 } cp_pyev_kind;

/* Allocate the buffer for stacks of max_frames. GIL held. 0 or CP_ENOMEM. */
int cp__pyev_init(uint32_t max_frames);

/* Record one sampled event for the calling thread (GIL held): value and
 * count are the sample's weights (lock: wait ns and acquisitions; hold: held
 * ns and releases; exception: count only). A full buffer drops the event and counts the drop. */
void cp__pyev_record(cp_pyev_kind kind, int64_t value, int64_t count, const char *label);

/* The same, leaving out the skip leaf-most frames (Python frames of the
 * profiler itself, e.g. the asyncio lock's acquire), with the nprefix
 * frames of prefix (leaf first) put in their place: before 3.11 a
 * coroutine cancelled by a throw runs with the frames of the coroutines
 * awaiting it missing from the thread's frame chain. */
void cp__pyev_record_skip(cp_pyev_kind kind, int64_t value, int64_t count, const char *label, uint32_t skip,
                          const cp_rawframe *prefix, uint32_t nprefix);

/* Hand every recorded event to the core (GIL held; called by the resolver). */
void cp__pyev_drain(void);

/* In a forked child: drop the parent's undrained events. */
void cp__pyev_after_fork(void);

#endif
