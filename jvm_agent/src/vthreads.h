/*
 * vthreads.h — virtual threads (JDK 21 and later).
 *
 * A virtual thread runs mounted on a platform "carrier" thread, and parks
 * unmounted, on no OS thread at all. With JVMTI's can_support_virtual_threads:
 *  - identity: HotSpot's VirtualThreadMount/Unmount extension events (and
 *    VirtualThreadStart/End) tell on the carrier which virtual thread it runs;
 *    its serial goes into the carrier's TLS, so CPU and wall samples taken
 *    meanwhile carry the virtual thread's name and Java id (and the
 *    carrier's native id);
 *  - wall time of unmounted ones: live virtual threads are tracked (a weak
 *    reference each, up to a cap), and the resolver takes the stacks of up
 *    to wall_threads_max parked/waiting ones per wall interval, round robin,
 *    with JVMTI GetStackTrace, each weighted by the time since its last one.
 * On JDKs without virtual threads all of this stays off.
 */
#ifndef CP_JVM_VTHREADS_H
#define CP_JVM_VTHREADS_H

#include <jvmti.h>
#include <stdbool.h>
#include <stdint.h>

#include "thread_table.h"

/* Serial of the virtual thread mounted on the calling carrier, 0 if none.
 * Signal handlers read it. */
extern __thread uint32_t cp__tls_vserial CP__TLS;

/* Agent_OnLoad: ask for can_support_virtual_threads in `want` if this JVM
 * has it. */
void cp__vthreads_want(const jvmtiCapabilities *potential, jvmtiCapabilities *want);

/* Agent_OnLoad: put the VirtualThreadStart/End callbacks into the agent's
 * callbacks (before SetEventCallbacks). */
void cp__vthreads_callbacks(jvmtiEventCallbacks *cb);

/* VMInit: allocate the table and enable the events (the mount/unmount
 * extension events get their callbacks here). False when this JVM has no
 * virtual threads or the capability was refused. */
bool cp__vthreads_start(jvmtiEnv *jvmti);

/* Resolver, every pass: wall samples of parked virtual threads, at most
 * once per wall interval. Returns when the next is due (CLOCK_MONOTONIC
 * ns), 0 when no virtual thread is known. */
int64_t cp__vthreads_wall_tick(jvmtiEnv *jvmti, JNIEnv *jni);

#endif /* CP_JVM_VTHREADS_H */
