/*
 * vthreads.c — virtual threads: identity on carriers, wall time of parked
 * ones (see the header).
 *
 * Table slots are claimed lock-free at VirtualThreadStart (or at the first
 * mount seen, for virtual threads older than the agent) and marked ENDED at
 * VirtualThreadEnd; the virtual thread's JVMTI thread-local storage holds
 * (slot + 1) << 32 | serial. Only the resolver uses and deletes the weak
 * references, so none is deleted while in use.
 * Compiled against JDK headers older than 21 (no virtual threads in JVMTI)
 * the functions find nothing to do.
 */
#include "vthreads.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "call_trace_store.h"
#include "jvm_agent.h"

__thread uint32_t cp__tls_vserial CP__TLS;

#if CP_JVMTI_MAJOR >= 21

enum { VT_SLOTS = 1 << 16, MAX_DEPTH = 600 };
/* BUSY: being set up by the thread that claimed it; ENDED: its virtual
 * thread ended, the resolver (the only user of the references) frees it. */
enum { VT_FREE = 0, VT_BUSY = 1, VT_LIVE = 2, VT_ENDED = 3 };
enum { RECLAIM_PER_TICK = 4096 };

typedef struct vt_slot {
    atomic_int state;
    jweak ref;
    uint32_t serial;
    int64_t last_wall_ns; /* resolver only after VT_LIVE */
} vt_slot;

static vt_slot *g_vt;
static atomic_size_t g_vt_high, g_vt_hint;
static atomic_bool g_vt_full_logged;
static bool g_on;
static int64_t g_next_tick_ns; /* resolver only */
static size_t g_cursor, g_reclaim_cursor; /* resolver only */

void cp__vthreads_want(const jvmtiCapabilities *potential, jvmtiCapabilities *want)
{
    want->can_support_virtual_threads = potential->can_support_virtual_threads;
}

static uint64_t tls_value(jvmtiEnv *jvmti, jthread vt)
{
    void *p = NULL;

    if ((*jvmti)->GetThreadLocalStorage(jvmti, vt, &p) != JVMTI_ERROR_NONE)
        return 0;
    return (uint64_t)(uintptr_t)p;
}

static int64_t claim(void)
{
    size_t start = atomic_load(&g_vt_hint);

    for (size_t n = 0; n < VT_SLOTS; n++) {
        size_t i = (start + n) % VT_SLOTS;
        int expect = VT_FREE;
        if (atomic_load_explicit(&g_vt[i].state, memory_order_relaxed) != VT_FREE ||
            !atomic_compare_exchange_strong(&g_vt[i].state, &expect, VT_BUSY))
            continue;
        atomic_store(&g_vt_hint, i + 1);
        size_t high = atomic_load(&g_vt_high);
        while (high < i + 1 && !atomic_compare_exchange_weak(&g_vt_high, &high, i + 1)) {
        }
        return (int64_t)i;
    }
    if (!atomic_exchange(&g_vt_full_logged, true))
        cp_log(CP_LOG_WARN, "more than %d live virtual threads: the others get no wall samples "
               "while parked", VT_SLOTS);
    return -1;
}

/* A virtual thread seen for the first time: a serial (name, id) and, room
 * permitting, a table slot. Returns its serial. */
static uint32_t track(jvmtiEnv *jvmti, JNIEnv *jni, jthread vt)
{
    uint32_t serial = cp__threads_publish(jvmti, jni, vt, "[virtual]");
    int64_t i = cp__jvm.wall_on ? claim() : -1;
    uint64_t tls = serial;

    if (i >= 0) {
        vt_slot *s = &g_vt[i];
        s->ref = (*jni)->NewWeakGlobalRef(jni, vt);
        s->serial = serial;
        s->last_wall_ns = cp_now_ns();
        if (s->ref == NULL) {
            (*jni)->ExceptionClear(jni);
            atomic_store(&s->state, VT_FREE);
        } else {
            atomic_store_explicit(&s->state, VT_LIVE, memory_order_release);
            tls |= (uint64_t)(i + 1) << 32;
        }
    }
    (*jvmti)->SetThreadLocalStorage(jvmti, vt, (void *)(uintptr_t)tls);
    return serial;
}

/* Serial of vt, tracking it if it is new to us. */
static uint32_t serial_of(jvmtiEnv *jvmti, JNIEnv *jni, jthread vt)
{
    uint64_t tls = tls_value(jvmti, vt);

    return tls != 0 ? (uint32_t)tls : track(jvmti, jni, vt);
}

static void JNICALL on_vt_start(jvmtiEnv *jvmti, JNIEnv *jni, jthread vt)
{
    if (cp__jvm_running())
        cp__tls_vserial = serial_of(jvmti, jni, vt);
}

static void JNICALL on_vt_end(jvmtiEnv *jvmti, JNIEnv *jni, jthread vt)
{
    uint64_t tls = tls_value(jvmti, vt);
    int64_t i = (int64_t)(tls >> 32) - 1;
    int expect = VT_LIVE;

    (void)jni;
    cp__tls_vserial = 0;
    if (i >= 0 && i < VT_SLOTS && atomic_compare_exchange_strong(&g_vt[i].state, &expect, VT_ENDED))
        (*jvmti)->SetThreadLocalStorage(jvmti, vt, NULL);
}

/* Extension events: (jvmtiEnv *, JNIEnv *, jthread virtual_thread), on the
 * carrier. */
static void JNICALL on_mount(jvmtiEnv *jvmti, ...)
{
    va_list ap;

    va_start(ap, jvmti);
    JNIEnv *jni = va_arg(ap, JNIEnv *);
    jthread vt = va_arg(ap, jthread);
    va_end(ap);
    if (cp__jvm_running())
        cp__tls_vserial = serial_of(jvmti, jni, vt);
}

static void JNICALL on_unmount(jvmtiEnv *jvmti, ...)
{
    (void)jvmti;
    cp__tls_vserial = 0;
}

static void free_extension_events(jvmtiEnv *jvmti, jvmtiExtensionEventInfo *ev, jint n)
{
    for (jint i = 0; i < n; i++) {
        for (jint k = 0; k < ev[i].param_count; k++)
            (*jvmti)->Deallocate(jvmti, (unsigned char *)ev[i].params[k].name);
        (*jvmti)->Deallocate(jvmti, (unsigned char *)ev[i].params);
        (*jvmti)->Deallocate(jvmti, (unsigned char *)ev[i].id);
        (*jvmti)->Deallocate(jvmti, (unsigned char *)ev[i].short_description);
    }
    (*jvmti)->Deallocate(jvmti, (unsigned char *)ev);
}

/* HotSpot's VirtualThreadMount/Unmount; false if this JVM lacks them. */
static bool enable_mount_events(jvmtiEnv *jvmti)
{
    jint n = 0;
    jvmtiExtensionEventInfo *ev = NULL;
    int found = 0;

    if ((*jvmti)->GetExtensionEvents(jvmti, &n, &ev) != JVMTI_ERROR_NONE || ev == NULL)
        return false;
    for (jint i = 0; i < n; i++) {
        jvmtiExtensionEvent cb = strcmp(ev[i].id, "com.sun.hotspot.events.VirtualThreadMount") == 0 ? on_mount
                                 : strcmp(ev[i].id, "com.sun.hotspot.events.VirtualThreadUnmount") == 0 ? on_unmount
                                                                                                          : NULL;
        if (cb != NULL && (*jvmti)->SetExtensionEventCallback(jvmti, ev[i].extension_event_index, cb) ==
                              JVMTI_ERROR_NONE &&
            (*jvmti)->SetEventNotificationMode(jvmti, JVMTI_ENABLE, (jvmtiEvent)ev[i].extension_event_index,
                                               NULL) == JVMTI_ERROR_NONE)
            found++;
    }
    free_extension_events(jvmti, ev, n);
    return found == 2;
}

void cp__vthreads_callbacks(jvmtiEventCallbacks *cb)
{
    cb->VirtualThreadStart = on_vt_start;
    cb->VirtualThreadEnd = on_vt_end;
}

bool cp__vthreads_start(jvmtiEnv *jvmti)
{
    jvmtiCapabilities caps;

    memset(&caps, 0, sizeof caps);
    if ((*jvmti)->GetCapabilities(jvmti, &caps) != JVMTI_ERROR_NONE || !caps.can_support_virtual_threads) {
        cp_log(CP_LOG_DEBUG, "virtual threads: no can_support_virtual_threads in this JVM");
        return false;
    }
    if ((g_vt = calloc(VT_SLOTS, sizeof *g_vt)) == NULL)
        return false;
    if (!enable_mount_events(jvmti))
        cp_log(CP_LOG_INFO, "no virtual thread mount events in this JVM: samples of virtual "
               "threads carry their carrier's name");
    if ((*jvmti)->SetEventNotificationMode(jvmti, JVMTI_ENABLE, JVMTI_EVENT_VIRTUAL_THREAD_START, NULL) !=
            JVMTI_ERROR_NONE ||
        (*jvmti)->SetEventNotificationMode(jvmti, JVMTI_ENABLE, JVMTI_EVENT_VIRTUAL_THREAD_END, NULL) !=
            JVMTI_ERROR_NONE) {
        cp_log(CP_LOG_DEBUG, "virtual threads: start/end events refused");
        return false;
    }
    g_on = true;
    return true;
}

/* One wall sample of the parked virtual thread in slot s (its stack by
 * JVMTI: it is on no OS thread, AGCT cannot reach it). */
static bool sample_parked(jvmtiEnv *jvmti, JNIEnv *jni, vt_slot *s, int64_t now)
{
    jvmtiFrameInfo fi[MAX_DEPTH];
    jint state = 0, n = 0;
    jthread vt = (*jni)->NewLocalRef(jni, s->ref);

    if (vt == NULL)
        return false;
    bool parked = (*jvmti)->GetThreadState(jvmti, vt, &state) == JVMTI_ERROR_NONE &&
                  (state & JVMTI_THREAD_STATE_ALIVE) && !(state & JVMTI_THREAD_STATE_RUNNABLE);
    /* Running (or about to): its carrier's wall samples cover that time. */
    if (!parked) {
        s->last_wall_ns = now;
        (*jni)->DeleteLocalRef(jni, vt);
        return false;
    }
    int depth = cp__jvm.walk_depth < MAX_DEPTH ? cp__jvm.walk_depth : MAX_DEPTH;
    jvmtiError err = (*jvmti)->GetStackTrace(jvmti, vt, 0, depth, fi, &n);
    (*jni)->DeleteLocalRef(jni, vt);
    cp__trace_rec *r = err == JVMTI_ERROR_NONE && n > 0 ? cp__store_reserve() : NULL;
    if (r == NULL)
        return false;
    for (jint i = 0; i < n; i++) {
        r->frames[i].method_id = fi[i].method;
        r->frames[i].lineno = (jint)fi[i].location;
    }
    r->kind = CP__TRACE_WALL;
    r->num_frames = n;
    r->weight = now - s->last_wall_ns;
    r->thread_serial = s->serial;
    r->tid = 0; /* on no OS thread */
    cp__store_commit(r);
    cp_metrics_add_taken(1);
    s->last_wall_ns = now;
    return true;
}

/* Free the slots of ended virtual threads (a bounded stretch per tick). */
static void reclaim(JNIEnv *jni, size_t high)
{
    for (size_t n = 0; n < RECLAIM_PER_TICK && n < high; n++) {
        vt_slot *s = &g_vt[g_reclaim_cursor % high];
        g_reclaim_cursor = (g_reclaim_cursor + 1) % high;
        if (atomic_load(&s->state) != VT_ENDED)
            continue;
        (*jni)->DeleteWeakGlobalRef(jni, s->ref);
        s->ref = NULL;
        atomic_store_explicit(&s->state, VT_FREE, memory_order_release);
    }
}

int64_t cp__vthreads_wall_tick(jvmtiEnv *jvmti, JNIEnv *jni)
{
    int64_t now = cp_now_ns();
    size_t high = atomic_load(&g_vt_high);
    int sent = 0;

    if (!g_on || !cp__jvm.wall_on || high == 0)
        return 0;
    if (now < g_next_tick_ns)
        return g_next_tick_ns;
    g_next_tick_ns = now + cp__jvm.wall_interval_ns;
    if ((*jni)->PushLocalFrame(jni, 16) != JNI_OK) {
        (*jni)->ExceptionClear(jni);
        return g_next_tick_ns;
    }
    reclaim(jni, high);
    for (size_t scanned = 0; scanned < high && sent < cp__jvm.wall_threads_max; scanned++) {
        vt_slot *s = &g_vt[g_cursor % high];
        g_cursor = (g_cursor + 1) % high;
        /* An ENDED slot's reference may still be used: it is only deleted
         * above, on this thread. */
        if (atomic_load_explicit(&s->state, memory_order_acquire) == VT_LIVE)
            sent += sample_parked(jvmti, jni, s, now);
    }
    (*jni)->PopLocalFrame(jni, NULL);
    return g_next_tick_ns;
}

#else /* JDK headers without virtual threads */

void cp__vthreads_want(const jvmtiCapabilities *potential, jvmtiCapabilities *want)
{
    (void)potential, (void)want;
}

void cp__vthreads_callbacks(jvmtiEventCallbacks *cb) { (void)cb; }

bool cp__vthreads_start(jvmtiEnv *jvmti)
{
    (void)jvmti;
    return false;
}

int64_t cp__vthreads_wall_tick(jvmtiEnv *jvmti, JNIEnv *jni)
{
    (void)jvmti, (void)jni;
    return 0;
}

#endif
