/*
 * trace_resolver.h — the resolver: raw samples in, cp_add_sample out.
 *
 * A JVMTI agent thread (a daemon Java thread, so JVMTI calls are legal)
 * wakes every 50 ms, drains the call-trace store, resolves methods through
 * the method cache and thread serials through the thread table, and adds the
 * samples to the core. Drains are serialised by one lock so that VMDeath can
 * run the last one itself.
 */
#ifndef CP_JVM_TRACE_RESOLVER_H
#define CP_JVM_TRACE_RESOLVER_H

#include <jvmti.h>
#include <stdint.h>

/* Allocate the scratch buffers and start the agent thread (VMInit). */
int cp__resolver_start(jvmtiEnv *jvmti, JNIEnv *jni);

/* Export hook: ask the resolver for a pass and wait for it at most
 * timeout_ms (returns at once when the agent is no longer running). */
void cp__resolver_sync(int64_t timeout_ms);

/* VMDeath, on the dying thread: one last drain, waiting at most timeout_ms
 * for a pass already under way. */
void cp__resolver_final_drain(jvmtiEnv *jvmti, JNIEnv *jni, int64_t timeout_ms);

/* A java.lang.Thread object named thread_name for RunAgentThread; NULL on
 * failure (the pending exception is cleared). */
jthread cp__agent_thread_object(JNIEnv *jni, const char *thread_name);

#endif /* CP_JVM_TRACE_RESOLVER_H */
