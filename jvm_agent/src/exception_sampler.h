/*
 * exception_sampler.h — sampled thrown exceptions of the JVM.
 *
 * Every Throwable that records a stack trace calls the native
 * Throwable.fillInStackTrace(int) from its constructor. The agent binds
 * that native method to its own function through the JVMTI
 * NativeMethodBind event (enabled at Agent_OnLoad, so it sees the first
 * binding); the function calls the JDK's own implementation and then
 * offers the exception to a cp_rate_sampler (Poisson by count). Per
 * exception that costs a counter and a branch, with no bytecode rewriting,
 * no JVMTI exception events (whose capability makes HotSpot deoptimize on
 * every catch). After a late attach, when the JDK bound the method long
 * before, the agent rebinds it with RegisterNatives, called from a class it
 * defines in the boot loader (from anywhere else the JVM prints a warning).
 * A sampled exception's stack is taken there, on the throwing thread, minus
 * the Throwable constructor frames.
 */
#ifndef CP_JVM_EXCEPTION_SAMPLER_H
#define CP_JVM_EXCEPTION_SAMPLER_H

#include <jvmti.h>
#include <stdbool.h>

/* Capability wanted (can_generate_native_method_bind_events). */
void cp__exceptions_want_caps(const jvmtiCapabilities *pot, jvmtiCapabilities *want);

/* Agent_OnLoad: listen for native method bindings. */
void cp__exceptions_listen(jvmtiEnv *jvmti);

void JNICALL cp__on_native_method_bind(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread, jmethodID method,
                                       void *address, void **new_address_ptr);

/* VMInit or a late attach (late), once, with the settings final: start
 * sampling. At VMInit the JDK binds the method at the first exception,
 * possibly later; after a late attach it was bound before the agent came,
 * and is bound again here. */
bool cp__exceptions_start(jvmtiEnv *jvmti, JNIEnv *jni, bool late);

#endif /* CP_JVM_EXCEPTION_SAMPLER_H */
