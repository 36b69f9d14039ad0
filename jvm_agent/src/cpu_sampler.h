/*
 * cpu_sampler.h — per-thread CPU-time timers.
 *
 * Each registered Java thread gets a POSIX timer on its own CPU-time clock
 * that sends the sampling signal to that very thread (SIGEV_THREAD_ID) every
 * cpu interval of CPU it consumes: an idle thread costs nothing, a busy one
 * ~100 samples per CPU-second at the default 10 ms.
 */
#ifndef CP_JVM_CPU_SAMPLER_H
#define CP_JVM_CPU_SAMPLER_H

#include "thread_table.h"

/* Arm a timer for slot s (any thread may call it for any live slot). */
int cp__cpu_timer_start(cp__thread_slot *s, int signo);

/* Delete slot s's timer if armed; exactly one caller deletes it. */
void cp__cpu_timer_stop(cp__thread_slot *s);

/* Stop every armed timer (VMDeath), or re-create them all on signo after a
 * signal move. */
void cp__cpu_timers_stop_all(void);
void cp__cpu_timers_restart_all(int signo);

#endif /* CP_JVM_CPU_SAMPLER_H */
