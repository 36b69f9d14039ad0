/*
 * sampler.h — the CPU/wall sampler: one native pthread that never takes the
 * GIL. Every tick it walks the interpreter's thread states, reads each
 * thread's CPU clock, and writes raw samples into its ring for the
 * resolver.
 */
#ifndef CP_SAMPLER_H
#define CP_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "rawring.h"

typedef struct cp_sampler_opts {
    uintptr_t interp;        /* PyInterpreterState * to sample            */
    bool cpu, wall;
    int64_t cpu_interval_ns, wall_interval_ns;
    uint32_t wall_threads_max, max_frames;
} cp_sampler_opts;

/* Start the sampler thread (allocates its ring and thread table). Called
 * with the GIL held; returns 0 or a CP_* error. */
int cp__sampler_start(const cp_sampler_opts *opts);

/* Stop and join the thread, then move every coalesced wall sample into the
 * ring. The ring stays readable until cp__sampler_free. */
void cp__sampler_stop(void);
void cp__sampler_free(void);

/* In a forked child: the thread no longer exists; drop its state without
 * joining (its memory is reused by the next start). */
void cp__sampler_forget(void);

/* The ring the resolver drains (NULL when never started). */
cp_rawring *cp__sampler_ring(void);

/* Ignore the thread with this threading ident (the profiler's own). */
void cp__sampler_skip(uint64_t thread_id);

/* Record ident -> kernel tid for interpreters whose thread state lacks
 * native_thread_id (< 3.11). Called from the thread itself or under the
 * GIL; lock-free for the sampler. */
void cp__native_id_set(uint64_t thread_id, uint64_t native_id);
uint64_t cp__native_id_get(uint64_t thread_id);

#endif
