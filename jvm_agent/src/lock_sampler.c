/*
 * lock_sampler.c — monitor contention and blocked-thread wall stacks (see
 * lock_sampler.h).
 *
 * Each thread slot has a `blocked` record, allocated by its thread at its
 * first contended enter and reused by later owners of the slot (never
 * freed: the wall sampler may be reading it). The owner thread writes it
 * under a sequence counter (odd while writing); the wall sampler copies the
 * frames out and keeps the copy only if the counter did not move and the
 * thread was still blocked (the seqlock read discipline).
 */
#include "lock_sampler.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "call_trace_store.h"
#include "event_stack.h"
#include "jvm_agent.h"

typedef struct blocked {
    atomic_uint seq;        /* odd while the owner writes                */
    atomic_bool active;     /* between ContendedEnter and ContendedEntered */
    int n;                  /* frames published                          */
    int64_t since_ns;       /* when the thread began to wait             */
    jvmtiFrameInfo *frames; /* walk_depth entries                        */
} blocked;

static struct {
    _Atomic(blocked *) *slots;   /* cp__threads_capacity() entries */
    bool lock_on, wall_on;
    cp_rate_sampler rs;
} g_k;

static __thread cp_rate_state tls_rate; /* JVMTI callbacks only */

void cp__locks_want_caps(const jvmtiCapabilities *pot, jvmtiCapabilities *want)
{
    want->can_generate_monitor_events = pot->can_generate_monitor_events;
}

bool cp__locks_start(jvmtiEnv *jvmti, bool lock_on, bool wall_on)
{
    jvmtiCapabilities caps;
    const cp_config *c = cp_config_get();

    memset(&caps, 0, sizeof caps);
    (*jvmti)->GetCapabilities(jvmti, &caps);
    if (!caps.can_generate_monitor_events || (!lock_on && !wall_on))
        return false;
    g_k.slots = calloc(cp__threads_capacity(), sizeof *g_k.slots);
    if (g_k.slots == NULL)
        return false;
    g_k.lock_on = lock_on;
    g_k.wall_on = wall_on;
    /* Waits under 10 us are mostly the cost of the handoff itself. */
    cp_rate_init(&g_k.rs, 10000.0, (double)c->lock_samples_per_s);
    (*jvmti)->SetEventNotificationMode(jvmti, JVMTI_ENABLE, JVMTI_EVENT_MONITOR_CONTENDED_ENTER, NULL);
    (*jvmti)->SetEventNotificationMode(jvmti, JVMTI_ENABLE, JVMTI_EVENT_MONITOR_CONTENDED_ENTERED, NULL);
    return lock_on;
}

/* The calling thread's record (allocating it on first use), or NULL. */
static blocked *own_record(void)
{
    cp__thread_slot *s = cp__threads_self();
    if (s == NULL || g_k.slots == NULL)
        return NULL;
    _Atomic(blocked *) *p = &g_k.slots[cp__threads_index(s)];
    blocked *b = atomic_load(p);
    if (b != NULL)
        return b;
    b = calloc(1, sizeof *b);
    if (b == NULL || (b->frames = calloc((size_t)cp__jvm.walk_depth, sizeof *b->frames)) == NULL) {
        free(b);
        return NULL;
    }
    blocked *none = NULL;
    if (!atomic_compare_exchange_strong(p, &none, b)) { /* only the slot's owner stores here */
        free(b->frames);
        free(b);
        return none;
    }
    return b;
}

void JNICALL cp__on_monitor_contended_enter(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread, jobject object)
{
    (void)jni, (void)thread, (void)object;
    blocked *b = cp__jvm_running() ? own_record() : NULL;
    jint n = 0;

    if (b == NULL)
        return;
    int64_t t0 = cp_now_ns();
    atomic_fetch_add(&b->seq, 1); /* odd: writing */
    if ((*jvmti)->GetStackTrace(jvmti, NULL, 0, cp__jvm.walk_depth, b->frames, &n) != JVMTI_ERROR_NONE)
        n = 0;
    b->n = n;
    b->since_ns = cp_now_ns();
    atomic_fetch_add(&b->seq, 1); /* even: stable */
    atomic_store(&b->active, n > 0);
    cp_metrics_add_hook_ns(b->since_ns - t0);
}

void JNICALL cp__on_monitor_contended_entered(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread, jobject object)
{
    (void)thread;
    blocked *b = g_k.slots != NULL ? own_record() : NULL;
    int64_t v, count;
    char sig[CP__CLASS_NAME_MAX];

    if (b == NULL || !atomic_load(&b->active))
        return;
    atomic_store(&b->active, false);
    int64_t wait = cp_now_ns() - b->since_ns;
    if (!g_k.lock_on || !cp__jvm_running() || !cp_rate_hit(&g_k.rs, &tls_rate, wait, &v, &count))
        return;
    int64_t t0 = cp_now_ns();
    cp__event_class_sig(jvmti, jni, object, sig, sizeof sig);
    cp__event_record(CP__TRACE_LOCK, b->frames, b->n, v, count, sig);
    cp_metrics_add_hook_ns(cp_now_ns() - t0);
}

bool cp__locks_wall_blocked(cp__thread_slot *s, const cp__thread_view *v, int64_t weight)
{
    if (!g_k.wall_on || g_k.slots == NULL)
        return false;
    blocked *b = atomic_load(&g_k.slots[cp__threads_index(s)]);
    unsigned seq = b != NULL ? atomic_load(&b->seq) : 1u;
    if ((seq & 1u) || !atomic_load(&b->active))
        return false;
    cp__trace_rec *r = cp__store_reserve();
    if (r == NULL)
        return false;
    int n = b->n;
    r->kind = CP__TRACE_WALL;
    r->num_frames = cp__event_frames_to_rec(r, b->frames, n);
    if (atomic_load(&b->seq) != seq || !atomic_load(&b->active) || r->num_frames <= 0) {
        cp__store_cancel(r); /* it moved on meanwhile: the next tick signals it */
        return false;
    }
    r->thread_serial = v->serial;
    r->tid = v->tid;
    r->thread_slot = -1; /* not the stack of a wall signal: no repeats from it */
    r->wall_seq = 0;
    r->weight = weight;
    cp__store_commit(r);
    cp_metrics_add_taken(1);
    return true;
}

static bool starts(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

bool cp__locks_parked_on(const cp_frame *frames, size_t n, char *out, size_t cap)
{
    static const char JUCL[] = "java.util.concurrent.locks.";
    const char *outer = NULL;
    bool aqs = false;
    size_t i = 0;

    if (n == 0 || !(starts(frames[0].name, "jdk.internal.misc.Unsafe.park") ||
                    starts(frames[0].name, "sun.misc.Unsafe.park") || starts(frames[0].name, JUCL)))
        return false;
    for (; i < n && (starts(frames[i].name, JUCL) || starts(frames[i].name, "jdk.internal.misc.Unsafe.") ||
                     starts(frames[i].name, "sun.misc.Unsafe.")); i++) {
        if (strstr(frames[i].name, "$ConditionObject.") != NULL)
            return false; /* waiting for a signal, not for the lock */
        aqs = aqs || strstr(frames[i].name, "AbstractQueued") != NULL || strstr(frames[i].name, "StampedLock") != NULL;
        if (starts(frames[i].name, JUCL))
            outer = frames[i].name;
    }
    const char *dot = outer != NULL ? strrchr(outer, '.') : NULL;
    if (!aqs || dot == NULL || (size_t)(dot - outer) >= cap)
        return false;
    memcpy(out, outer, (size_t)(dot - outer));
    out[dot - outer] = '\0';
    return true;
}
