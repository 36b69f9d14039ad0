/*
 * alloc_sampler.h — allocation samples and the live-heap table.
 *
 * The JVM samples allocations itself (SetHeapSamplingInterval: on average
 * one every alloc_interval bytes) and calls SampledObjectAlloc on the
 * allocating thread; the agent records the raw stack and class there and
 * leaves resolution to the resolver. With heap profiling on, each sampled
 * object is tagged with its slot in the live table (heap_table.h);
 * ObjectFree releases the slot, and at every export the objects still alive
 * that a whole GC cycle has examined become heap-space / heap-live-samples.
 */
#ifndef CP_JVM_ALLOC_SAMPLER_H
#define CP_JVM_ALLOC_SAMPLER_H

#include <jvmti.h>

#include "call_trace_store.h"
#include "contprof.h"

/* Allocate the live table (heap profiling) once, sized from the maximum
 * heap (VMInit, after settings are final). CP_ENOMEM. */
int cp__heap_init(JNIEnv *jni);

/* Set the JVM's sampling interval to the configured one (VMInit). */
void cp__alloc_start(jvmtiEnv *jvmti);

/* Resolver, every pass: every 250 ms, scale the interval by powers of two
 * to keep about 200 samples/s (never below the configured interval). Weights use
 * the interval in effect when each sample was taken. */
void cp__alloc_adapt(jvmtiEnv *jvmti);

/* JVMTI callbacks. */
void JNICALL cp__on_sampled_alloc(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread,
                                  jobject object, jclass klass, jlong size);
void JNICALL cp__on_object_free(jvmtiEnv *jvmti, jlong tag);
void JNICALL cp__on_gc_finish(jvmtiEnv *jvmti);

/* Resolver: the sample in r (r->heap_slot >= 0) was resolved to frames
 * (whose strings are never freed) and class (interned, or NULL when
 * unknown); make its live-table slot visible to exports, or release it. */
void cp__heap_publish(JNIEnv *jni, const cp__trace_rec *r, const cp_frame *frames, size_t nframes,
                      const char *class_name);

/* Resolver, around each drain: read the GC cycle counts first; grow or
 * trim the live table after. */
void cp__heap_pass_begin(JNIEnv *jni);
void cp__heap_pass_end(void);

/* Before an export's live heap is read (a Java thread: the resolver, or
 * VMDeath): have the JVM post the ObjectFree events of tagged objects that
 * collections already freed. Since JDK 16 HotSpot posts them lazily, from
 * its service thread some time after the collection; setting ObjectFree's
 * notification mode (here: enabled again) makes it post the pending ones
 * first, through a VM operation. Without it a loaded machine exported dead
 * objects as live: 67 MB of garbage beside a 300 MiB live set at exit. */
void cp__heap_flush_frees(jvmtiEnv *jvmti);

/* Export hook (any thread, not attached to the VM): add one heap sample per
 * object still alive. Touches no JVMTI. */
void cp__heap_export(void);

#endif /* CP_JVM_ALLOC_SAMPLER_H */
