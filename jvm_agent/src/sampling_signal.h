/*
 * sampling_signal.h — the one signal that carries CPU and wall samples.
 *
 * CPU timers (SI_TIMER) and the wall sampler (SI_QUEUE via
 * rt_tgsigqueueinfo) deliver the same signal; a magic value in si_value
 * tells ours from anyone else's, and foreign signals are chained to the
 * handler that was there before. The signal is taken only if nobody owns it
 * (SIG_DFL or SIG_IGN); if another handler replaces ours later (another
 * native profiler, a sun.misc.Signal handler in Java), the wall sampler
 * notices and the agent moves to a free real-time signal. (JDK 25's JFR
 * CPU-time sampler instead refuses to start when SIGPROF is taken, which is
 * why vm_entry.c avoids SIGPROF there.) A third kind of ours, "adopt", asks
 * a thread running before a late attach to register itself.
 */
#ifndef CP_JVM_SAMPLING_SIGNAL_H
#define CP_JVM_SAMPLING_SIGNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agct.h"

/* Parse "SIGPROF", "PROF", "SIGRTMIN+3", "27". Returns the number or -1. */
int cp__signal_parse(const char *name);

/* Install the handler on the configured signal. When it is owned by someone
 * else: fail (-1) if the user chose it explicitly, else fall back to a free
 * real-time signal. Returns the signal in use or -1 (logged). */
int cp__signal_install(const char *configured, bool explicit_choice, cp__agct_fn agct);

/* The signal in use (0 = none). */
int cp__signal_current(void);

/* True while our handler is still the one installed for the current
 * signal. If not, moves to a free real-time signal and returns the new
 * number through *moved_to (0 when no move was possible); logs either way. */
bool cp__signal_check_owner(int *moved_to);

/* si_value for the CPU timer of a thread JVMTI does not report (compiler,
 * GC, native): sampled with native frames only, and ignored on a thread
 * that has its own Java-thread timer by then. */
void *cp__signal_native_cpu_value(void);

/* si_value for a CPU timer, and a wall sample of weight_ns to thread tid. */
void *cp__signal_cpu_value(void);
bool cp__signal_send_wall(pid_t tid, int64_t weight_ns);

/* Late attach: ask thread tid to register itself if it is a Java thread
 * (non-Java threads ignore it). */
bool cp__signal_send_adopt(pid_t tid);

#endif /* CP_JVM_SAMPLING_SIGNAL_H */
