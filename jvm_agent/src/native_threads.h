/*
 * native_threads.h — CPU sampling of the threads JVMTI never reports.
 *
 * JIT compiler threads, GC workers, the VM thread, JNI-attached and plain
 * native threads get no ThreadStart, so no per-thread CPU timer from the
 * thread table. Every SCAN_MS the wall-sampler thread reads the thread
 * count (one stat of /proc/self/task) and, when it or the set of registered
 * Java threads changed, or at least every LIST_MS, lists /proc/self/task.
 * It gives each such thread (every thread of the process but the
 * registered Java ones and our own) a CPU-time timer with its own si_value,
 * at startup and after a late attach alike; timers of exited threads are
 * deleted. Their samples carry native frames only (native_frames=true).
 * The entries also keep each thread's OS name (/proc/self/task/N/comm, as
 * HotSpot sets it: "C2 CompilerThre", "GC Thread#0") for the resolver.
 */
#ifndef CP_JVM_NATIVE_THREADS_H
#define CP_JVM_NATIVE_THREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Allocate the table (once, before the wall sampler starts). CP_ENOMEM. */
int cp__native_threads_init(void);

/* Wall-sampler thread: rescan now and then (rate-limited inside). */
void cp__native_threads_tick(int signo);

/* Delete every timer (VMDeath); or delete them and re-create them at the
 * next tick, on the signal it is given (after a signal move). */
void cp__native_threads_stop_all(void);
void cp__native_threads_rescan_soon(void);

/* Export hook: the native unwinder's counters (walks, frames, why walks
 * stopped: end of stack, truncated, code outside every object such as the
 * code cache, no unwind info, unreadable memory) and the native threads
 * sampled, as runtime info key "native_stacks". */
void cp__native_threads_publish_stats(void);

/* Resolver: the OS name of a sampled native thread; false if unknown. */
bool cp__native_thread_name(pid_t tid, char *out, size_t n);

#endif /* CP_JVM_NATIVE_THREADS_H */
