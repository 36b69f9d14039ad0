/*
 * lock_sampler.h — monitor contention (synchronized) of the JVM.
 *
 * MonitorContendedEnter runs on the thread that is about to block: the
 * agent takes its stack there (JVMTI GetStackTrace) and publishes it in a
 * per-thread-slot record. MonitorContendedEntered measures the wait, offers
 * it to a cp_rate_sampler (Poisson by wait time) and records a sampled
 * wait with that stack and the monitor's class as "lock name". While the
 * thread is blocked, the wall sampler takes its wall samples from the
 * published stack instead of signalling it (AsyncGetCallTrace cannot walk a
 * thread blocked inside the VM).
 */
#ifndef CP_JVM_LOCK_SAMPLER_H
#define CP_JVM_LOCK_SAMPLER_H

#include <jvmti.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contprof.h"
#include "thread_table.h"

/* Capabilities wanted (can_generate_monitor_events) from those possible. */
void cp__locks_want_caps(const jvmtiCapabilities *pot, jvmtiCapabilities *want);

/* Allocate the per-slot table and enable the two events when lock or wall
 * profiling is on and the capability was granted. VMInit, once. Returns
 * true when lock-wait samples will be produced. */
bool cp__locks_start(jvmtiEnv *jvmti, bool lock_on, bool wall_on);

void JNICALL cp__on_monitor_contended_enter(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread, jobject object);
void JNICALL cp__on_monitor_contended_entered(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread, jobject object);

/* Wall sampler: if the thread of slot s (identity v) is blocked on a
 * monitor now, store a wall sample of weight ns with its published stack
 * and return true. Lock-free. */
bool cp__locks_wall_blocked(cp__thread_slot *s, const cp__thread_view *v, int64_t weight);

/* Resolver: is this (resolved, leaf-first) wall stack a thread parked to
 * acquire a java.util.concurrent lock (LockSupport.park under an
 * AbstractQueuedSynchronizer acquire, not a Condition await)? Then the
 * lock's class (the outermost java.util.concurrent.locks frame's, e.g.
 * java.util.concurrent.locks.ReentrantLock) goes to out and true is
 * returned: its wall time is also lock-acquire-wait. */
bool cp__locks_parked_on(const cp_frame *frames, size_t n, char *out, size_t cap);

#endif /* CP_JVM_LOCK_SAMPLER_H */
