/*
 * cpu_sampler.h — per-thread CPU-time timers.
 *
 * Each registered Java thread gets a POSIX timer on its own CPU-time clock
 * that sends the sampling signal to that very thread (SIGEV_THREAD_ID) every
 * cpu interval of CPU it consumes: an idle thread costs nothing, a busy one
 * ~100 samples per CPU-second at the default 10 ms. Each sample weighs the
 * thread's CPU time since its previous one (read from its CPU clock), and
 * ThreadEnd adds what came after the last, so every thread's CPU is
 * counted in full.
 */
#ifndef CP_JVM_CPU_SAMPLER_H
#define CP_JVM_CPU_SAMPLER_H

#include "call_trace_store.h"
#include "thread_table.h"

/* Allocate each thread slot's copy of its last CPU stack (depth frames).
 * Once, before threads register. CP_ENOMEM. */
int cp__cpu_init(size_t nslots, int depth);

/* In the signal handler of thread `self`, for its CPU sample r (frames
 * filled): the exact weight (its CPU time since the CPU it was last charged
 * for) and a copy of r's stack for the thread's last CPU time. Signal-safe. */
int64_t cp__cpu_sampled(cp__thread_slot *self, const cp__trace_rec *r);

/* ThreadEnd, on the ending thread after its timer is stopped: record the
 * CPU time since its last sample, charged to that sample's stack (or to a
 * pseudo-frame if it never had one). Short threads are so counted in full
 * whether or not a timer expiry caught them (expiries are only seen at
 * kernel ticks: a thread of a few ms often ends before one). */
void cp__cpu_thread_end(cp__thread_slot *self);

/* Arm a timer for slot s (any thread may call it for any live slot). */
int cp__cpu_timer_start(cp__thread_slot *s, int signo);

/* Delete slot s's timer if armed; exactly one caller deletes it. */
void cp__cpu_timer_stop(cp__thread_slot *s);

/* Stop every armed timer (VMDeath), or re-create them all on signo after a
 * signal move. */
void cp__cpu_timers_stop_all(void);
void cp__cpu_timers_restart_all(int signo);

#endif /* CP_JVM_CPU_SAMPLER_H */
