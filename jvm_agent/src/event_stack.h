/*
 * event_stack.h — stacks of JVMTI events (monitor contention, exceptions)
 * into the call-trace store.
 *
 * Unlike the signal samplers, these run in JVMTI callbacks or native
 * methods on the event's own Java thread, so JVMTI GetStackTrace is legal
 * and exact; its frames (jmethodID + bci) resolve like AGCT's.
 */
#ifndef CP_JVM_EVENT_STACK_H
#define CP_JVM_EVENT_STACK_H

#include <jvmti.h>
#include <stdint.h>

#include "call_trace_store.h"

/* The calling thread's scratch of cap frames (allocated on first use,
 * kept for the thread's life; NULL on ENOMEM). cap is walk_depth + extra. */
jvmtiFrameInfo *cp__event_scratch(int *cap);

/* Store one event record of kind with frames f[0..n) (leaf first), weight,
 * size and the JVM class signature class_sig (may be NULL). The thread
 * labels are the calling thread's. False when the store was full (counted). */
bool cp__event_record(int kind, const jvmtiFrameInfo *f, int n, int64_t weight, int64_t size,
                      const char *class_sig);

/* Copy frames into a store record's AGCT-shaped frames; returns the count
 * kept (at most walk_depth). */
int cp__event_frames_to_rec(cp__trace_rec *r, const jvmtiFrameInfo *f, int n);

/* JVM signature of obj's class into out (n bytes); "" on failure. */
void cp__event_class_sig(jvmtiEnv *jvmti, JNIEnv *jni, jobject obj, char *out, size_t n);

#endif /* CP_JVM_EVENT_STACK_H */
