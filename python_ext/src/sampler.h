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
    bool native;             /* native frames and threads (cp__pyn_start ok) */
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

/* Have the sampler thread move every coalesced sample into the ring now;
 * waits for it up to wait_ms (any thread but the sampler's). */
void cp__sampler_flush_pending(int64_t wait_ms);

/* Counters since load (any thread): the sampler's ticks, those taken in
 * quiet mode (no thread ran: ticks QUIET_TICK_NS apart, see sampler.c),
 * and the quiet sleeps a thread's CPU timer cut short. */
/* A thread "ran" when it used more than 1/CP_HOT_DIV of an interval. */
#define CP_HOT_DIV 16

/* Sampler thread: whether a thread whose CPU clock now reads cpu ran since
 * the last CPU tick, whose reading *tick_cpu holds (0: none yet); *tick_cpu
 * becomes cpu. Quiet mode (sampler.c) asks it of every thread it reads. */
static inline bool cp__ran_since_tick(int64_t *tick_cpu, int64_t cpu, int64_t interval_ns)
{
    bool ran = *tick_cpu > 0 && cpu - *tick_cpu >= interval_ns / CP_HOT_DIV;
    *tick_cpu = cpu;
    return ran;
}

typedef struct cp_sampler_counts {
    uint64_t ticks, quiet_ticks, kicks;
} cp_sampler_counts;
void cp__sampler_counts(cp_sampler_counts *out);

/* In a forked child: the thread no longer exists; drop its state without
 * joining (its memory is reused by the next start). */
void cp__sampler_forget(void);

/* Sampler thread: is tid the kernel tid of a Python thread it samples? */
bool cp__sampler_is_python_tid(uint64_t tid);

/* Sampler thread: a value that changes whenever a Python thread it samples
 * starts, ends or gets its kernel tid. */
uint64_t cp__sampler_python_sig(void);

/* The ring the resolver drains (NULL when never started). */
cp_rawring *cp__sampler_ring(void);

/* Called by a Python thread as it ends (with or without the GIL), with its
 * own CPU clock and CLOCK_MONOTONIC, now and as its run began (start_ns,
 * 0 = unknown), and its CPU clock as its Python code began and ended
 * (py_from, py_to; -1 = unknown: the CPU outside them, its C start-up and
 * teardown, is charged to the pseudo-frame [thread start-up and exit]),
 * and its own timer's capture handle (young, -1 = none; see below):
 * the sampler charges what it had not yet read to the thread's last stack
 * and stops reading that tid (which the kernel may soon give to another
 * thread). A thread that lived less than a CPU tick's gap stands for the
 * threads like it that no tick saw (see take_exit). */
bool cp__sampler_thread_exit(uint64_t thread_id, uint64_t native_id, int64_t cpu_ns, int64_t mono_ns,
                             int64_t start_ns, int64_t py_from, int64_t py_to, int young);

/* Called by a threading.Thread as its Python code begins (GIL held), with
 * its thread state, kernel tid and the time (CLOCK_MONOTONIC): notes when
 * it began (its wall counts from then) and arms its own timer (cp__pyn_young_arm) when
 * native frames are on; the handle to pass to cp__sampler_thread_exit, or
 * -1. False from cp__sampler_thread_exit: the caller releases the handle. */
int cp__sampler_young_arm(uintptr_t ts, uint64_t thread_id, uint64_t native_id, int64_t born_ns);

/* Ignore the thread with this threading ident (the profiler's own). */
void cp__sampler_skip(uint64_t thread_id);

/* Record ident -> kernel tid for interpreters whose thread state lacks
 * native_thread_id (< 3.11). Called from the thread itself or under the
 * GIL; lock-free for the sampler. */
void cp__native_id_set(uint64_t thread_id, uint64_t native_id);
uint64_t cp__native_id_get(uint64_t thread_id);

/* The calling thread (GIL held) begins (begin) or ends a blocking acquire
 * of a profiled lock: the sampler holds back the CPU it burned before, to
 * charge it where the thread runs next, not where it waits. */
void cp__sampler_lock_wait(uint64_t thread_id, bool begin);

#endif
