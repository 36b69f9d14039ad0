/*
 * agct.h — AsyncGetCallTrace: HotSpot's unofficial, signal-safe stack walker.
 *
 * Not in any JDK header, so its ABI is declared here. It is looked up in
 * libjvm at VMInit. A result with num_frames <= 0 is an error code, kept as
 * a pseudo-frame (cp__agct_error_name) so that the sampled time stays visible.
 */
#ifndef CP_JVM_AGCT_H
#define CP_JVM_AGCT_H

#include <jni.h>
#include <stdbool.h>

/* One frame: lineno is the bytecode index (-3 for a native method). */
typedef struct cp__agct_frame {
    jint lineno;
    jmethodID method_id;
} cp__agct_frame;

typedef struct cp__agct_trace {
    JNIEnv *env_id;
    jint num_frames;
    cp__agct_frame *frames;
} cp__agct_trace;

typedef void (*cp__agct_fn)(cp__agct_trace *trace, jint depth, void *ucontext);

/* AGCT's "ticks_unknown_not_Java" / "ticks_not_walkable_not_Java": in VM or
 * native code, and the last Java frame could not be found / walked. */
#define CP__AGCT_UNKNOWN_NOT_JAVA (-3)
#define CP__AGCT_NOT_WALKABLE_NOT_JAVA (-4)

/* AGCT's "ticks_unknown_Java": in Java code, but no walkable frame. */
#define CP__AGCT_UNKNOWN_JAVA (-5)

/* AGCT's "ticks_not_walkable_Java": in Java code, top frame not decipherable. */
#define CP__AGCT_NOT_WALKABLE_JAVA (-6)

/* Bytecode index AGCT reports for a frame of a native method. */
#define CP__AGCT_NATIVE_BCI (-3)

/* Find AsyncGetCallTrace in the loaded libjvm; `probe` is any function of
 * libjvm (e.g. a JVMTI table entry) used to locate it. Returns NULL if it is
 * absent (the agent then runs without CPU and wall profiles). */
cp__agct_fn cp__agct_lookup(const void *probe);

/* Pseudo-frame name for an AGCT error code (num_frames <= 0), e.g.
 * "[GC_active]". Static strings; never NULL. */
const char *cp__agct_error_name(int code);

#endif /* CP_JVM_AGCT_H */
