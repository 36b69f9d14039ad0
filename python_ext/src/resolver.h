/*
 * resolver.h — turns raw samples into named frames and feeds the core.
 *
 * Runs with the GIL held: on its own thread (which takes the GIL briefly
 * every ~100 ms and whenever the core's scheduler asks for an export), and
 * on the caller's thread at stop. Code objects are named by codecache.
 */
#ifndef CP_RESOLVER_H
#define CP_RESOLVER_H

#include <Python.h>
#include <stdbool.h>
#include <stdint.h>

#include "contprof.h"
#include "rawring.h"

/* Start the resolver thread and register the core's export hook. GIL held.
 * max_frames caps stacks. */
int cp__resolver_start(uint32_t max_frames);

/* Ask the thread to exit and join it. Must be called WITHOUT the GIL. */
void cp__resolver_stop(void);

/* In a forked child: the thread is gone; reset locks and state. */
void cp__resolver_forget(void);

/* A producer's ring is half full: wake the resolver now rather than at its
 * next period. Lock-free and cheap; callable from any thread (not from a
 * signal handler). */
void cp__resolver_kick(void);

/* Drain both rings into the core now (GIL held). with_heap also adds the
 * live-heap samples and refreshes the runtime info that changes. */
void cp__resolver_drain(bool with_heap);

/* Add one raw sample to the core with its thread labels plus extra (may be
 * NULL), e.g. "lock name". GIL held. */
void cp__resolver_add(const cp_rawsample *s, const int64_t *v, const cp_label *extra);

/* Remember a thread's name (GIL held; the string is copied). */
void cp__resolver_set_thread_name(uint64_t thread_id, uint64_t native_id, const char *name);

/* Release the caches (GIL held, resolver stopped). */
void cp__resolver_clear(bool release_code);

#endif
