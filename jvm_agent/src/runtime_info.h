/*
 * runtime_info.h — what the JVM is and how it runs, for the core's runtime
 * info (cp_runtime_info_set) and the upload tags.
 */
#ifndef CP_JVM_RUNTIME_INFO_H
#define CP_JVM_RUNTIME_INFO_H

#include <jvmti.h>

/* VMInit: system properties (Java's view), VM name/vendor/version, command
 * line and JAVA_TOOL_OPTIONS & co., heap initial/max and processors (from
 * java.lang.Runtime). Cheap: a few ms. */
void cp__runtime_info_collect(jvmtiEnv *jvmti, JNIEnv *jni);

/* The JVM's input arguments and GC names through java.lang.management
 * (cp__mxbean), and the flags (see runtime_info.c). Any Java exception
 * leaves the key out. */
void cp__runtime_info_collect_late(JNIEnv *jni);
/* Run cp__runtime_info_collect_late once on a short-lived agent thread
 * ("contprof-info", its CPU counted as the profiler's), so that neither the
 * application nor the resolver waits for java.lang.management to start. */
int cp__runtime_info_start_late(jvmtiEnv *jvmti, JNIEnv *jni);

/* A platform MXBean or list of them, by the name and descriptor of its
 * java.lang.management.ManagementFactory getter (e.g. "getRuntimeMXBean",
 * "()Ljava/lang/management/RuntimeMXBean;"), or NULL (exception cleared).
 * Asked of HotSpot's sun.management.ManagementFactoryHelper first, which
 * has the same getters: through ManagementFactory the first call also
 * starts the platform component registry (a ServiceLoader, streams and
 * lambdas), ~20-40 ms of CPU at every JVM start against ~3 ms. JNI is not
 * bound by module exports. Elsewhere, ManagementFactory. */
jobject cp__mxbean(JNIEnv *jni, const char *getter, const char *sig);

/* java.vm.name and java.version (static, never NULL, "" if unknown). */
const char *cp__runtime_vm_name(void);
const char *cp__runtime_java_version(void);

/* A default service name from sun.java.command (main class or jar), or "". */
const char *cp__runtime_default_service(void);

#endif /* CP_JVM_RUNTIME_INFO_H */
