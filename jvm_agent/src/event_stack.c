/*
 * event_stack.c — JVMTI event stacks into the call-trace store (see
 * event_stack.h).
 */
#include "event_stack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agct.h"
#include "jvm_agent.h"
#include "thread_table.h"

/* Extra frames fetched beyond walk_depth, for callers that skip a few. */
enum { SCRATCH_EXTRA = 16 };

/* Global-dynamic TLS: only read from JVMTI callbacks and native methods,
 * never from a signal handler, so it needs no static TLS space. */
static __thread jvmtiFrameInfo *tls_scratch;

jvmtiFrameInfo *cp__event_scratch(int *cap)
{
    *cap = cp__jvm.walk_depth + SCRATCH_EXTRA;
    if (tls_scratch == NULL)
        tls_scratch = calloc((size_t)*cap, sizeof *tls_scratch);
    return tls_scratch;
}

int cp__event_frames_to_rec(cp__trace_rec *r, const jvmtiFrameInfo *f, int n)
{
    if (n > cp__jvm.walk_depth)
        n = cp__jvm.walk_depth;
    for (int i = 0; i < n; i++) {
        /* JVMTI says -1 for a native method, AGCT says -3. */
        r->frames[i].lineno = f[i].location < 0 ? CP__AGCT_NATIVE_BCI : (jint)f[i].location;
        r->frames[i].method_id = f[i].method;
    }
    return n;
}

bool cp__event_record(int kind, const jvmtiFrameInfo *f, int n, int64_t weight, int64_t size,
                      const char *class_sig)
{
    cp__trace_rec *r = cp__store_reserve();
    cp__thread_slot *self = cp__threads_self();

    if (r == NULL)
        return false;
    r->kind = kind;
    r->num_frames = n > 0 ? cp__event_frames_to_rec(r, f, n) : CP__AGCT_UNKNOWN_JAVA;
    r->thread_serial = cp__tls_serial;
    r->tid = (pid_t)syscall(SYS_gettid);
    r->thread_slot = self != NULL ? cp__threads_index(self) : -1;
    r->wall_seq = 0;
    r->weight = weight;
    r->size = size;
    r->heap_slot = -1;
    snprintf(r->class_name, sizeof r->class_name, "%s", class_sig ? class_sig : "");
    cp__store_commit(r);
    cp_metrics_add_taken(1);
    return true;
}

void cp__event_class_sig(jvmtiEnv *jvmti, JNIEnv *jni, jobject obj, char *out, size_t n)
{
    char *sig = NULL;
    jclass k = obj != NULL ? (*jni)->GetObjectClass(jni, obj) : NULL;

    out[0] = '\0';
    if (k != NULL && (*jvmti)->GetClassSignature(jvmti, k, &sig, NULL) == JVMTI_ERROR_NONE && sig != NULL) {
        snprintf(out, n, "%s", sig);
        (*jvmti)->Deallocate(jvmti, (unsigned char *)sig);
    }
    if (k != NULL)
        (*jni)->DeleteLocalRef(jni, k);
}
