/*
 * trace_resolver.c — draining, resolving and feeding the core.
 */
#include "trace_resolver.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agct.h"
#include "alloc_sampler.h"
#include "call_trace_store.h"
#include "cpu_sampler.h"
#include "jvm_agent.h"
#include "method_resolver.h"
#include "runtime_info.h"
#include "thread_table.h"

/* 1024 store slots drained every 50 ms absorb ~20k samples/s. */
enum { PASS_PERIOD_MS = 50 };

/* The root-most frame of a stack deeper than max_frames: its true depth is
 * unknown (the walk stops at max_frames + 1), so no count is claimed. */
static char g_omitted_name[] = "<frames omitted>";
static const cp__method_info g_omitted = {NULL, g_omitted_name, NULL, 0, NULL};

/* Scratch of one drain pass; owned by whoever holds g_drain_lock. */
typedef struct drain_ctx {
    jvmtiEnv *jvmti;
    JNIEnv *jni;
    cp_frame *frames;
    const cp__method_info **methods;
    int32_t *lines;
} drain_ctx;

static pthread_mutex_t g_drain_lock = PTHREAD_MUTEX_INITIALIZER;
static drain_ctx g_ctx;
static pthread_mutex_t g_wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER;
static uint64_t g_requested, g_completed; /* under g_wake_lock */

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Fill ctx->frames from r's frames (or its AGCT error pseudo-frame). */
static size_t resolve_frames(drain_ctx *c, const cp__trace_rec *r)
{
    if (r->num_frames <= 0) {
        c->frames[0] = (cp_frame){cp__agct_error_name(r->num_frames), NULL, NULL, 0};
        return 1;
    }
    bool truncated = r->num_frames > cp__jvm.max_frames;
    int n = truncated ? cp__jvm.max_frames : r->num_frames;
    for (int i = 0; i < n; i++) {
        const cp__agct_frame *f = &r->frames[i];
        bool last = truncated && i == n - 1;
        const cp__method_info *m = last ? &g_omitted : cp__method_resolve(c->jvmti, c->jni, f->method_id);
        int64_t line = f->lineno >= 0 && !last ? cp__method_line(m, f->lineno) : 0;
        c->methods[i] = m;
        c->lines[i] = (int32_t)line;
        c->frames[i] = (cp_frame){m->name, NULL, m->file, line};
    }
    return (size_t)n;
}

/* Name of a thread we never registered (started before the agent). */
static void comm_name(pid_t tid, char *out, size_t n)
{
    char path[64];
    FILE *f;

    snprintf(out, n, "[unknown]");
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
    if ((f = fopen(path, "r")) == NULL)
        return;
    if (fgets(out, (int)n, f) != NULL)
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

static void fill_values(const cp__trace_rec *r, int64_t *v)
{
    memset(v, 0, sizeof(int64_t) * CP_V__COUNT);
    if (r->kind == CP__TRACE_CPU) {
        v[CP_V_CPU_TIME] = r->weight;
        v[CP_V_CPU_SAMPLES] = 1;
    } else if (r->kind == CP__TRACE_WALL || r->kind == CP__TRACE_WALL_REPEAT) {
        v[CP_V_WALL_TIME] = r->weight;
        v[CP_V_WALL_SAMPLES] = 1;
    } else {
        v[CP_V_ALLOC_SPACE] = r->weight;
        v[CP_V_ALLOC_SAMPLES] = 1;
    }
}

/* The last wall stack of each thread slot, for WALL_REPEAT records. The
 * frames point at cached, never-freed strings. Resolver only. */
typedef struct last_wall {
    uint32_t serial;
    uint32_t seq;     /* wall_seq of the stored stack */
    size_t n;
    cp_frame *frames; /* max_frames, allocated on first use */
} last_wall;

static last_wall *g_last; /* cp__threads_capacity() entries */

static void remember_wall(const cp__trace_rec *r, const cp_frame *frames, size_t n)
{
    if (r->thread_slot < 0 || g_last == NULL)
        return;
    last_wall *l = &g_last[r->thread_slot];
    cp__thread_slot *s = cp__threads_slot((size_t)r->thread_slot);
    if (l->frames == NULL && (l->frames = calloc((size_t)cp__jvm.max_frames, sizeof *l->frames)) == NULL)
        return;
    /* Drains visit slots in index order, not time order: keep the newest. */
    if (l->serial == r->thread_serial && (int32_t)(r->wall_seq - l->seq) < 0)
        return;
    memcpy(l->frames, frames, n * sizeof *frames);
    l->n = n;
    l->serial = r->thread_serial;
    l->seq = r->wall_seq;
    /* Only when this is the stack of the latest signal may the wall sampler
     * repeat it while the thread stays idle: the CAS fails if another
     * signal went out meanwhile. */
    unsigned expect = r->wall_seq << 1;
    if (s->serial == r->thread_serial)
        atomic_compare_exchange_strong(&s->wall_state, &expect, expect | 1u);
}

/* Frames of the repeated stack into c->frames; 0 if we no longer have it. */
static size_t repeat_frames(drain_ctx *c, const cp__trace_rec *r)
{
    if (r->thread_slot < 0 || g_last == NULL)
        return 0;
    const last_wall *l = &g_last[r->thread_slot];
    if (l->frames == NULL || l->serial != r->thread_serial)
        return 0;
    memcpy(c->frames, l->frames, l->n * sizeof *l->frames);
    return l->n;
}

/* thread id / native id / name labels into labels; returns their count. */
static size_t thread_labels(const cp__trace_rec *r, cp_label *labels, char *tname, size_t n)
{
    int64_t java_id = 0;
    size_t nl = 0;

    if (!cp__thread_info_get(r->thread_serial, tname, n, &java_id))
        comm_name(r->tid, tname, n);
    if (java_id > 0)
        labels[nl++] = (cp_label){"thread id", NULL, java_id, NULL};
    labels[nl++] = (cp_label){"thread native id", NULL, r->tid, NULL};
    labels[nl++] = (cp_label){"thread name", tname, 0, NULL};
    return nl;
}

static void visit(const cp__trace_rec *r, void *arg)
{
    drain_ctx *c = arg;
    char tname[64], cls[CP__CLASS_NAME_MAX * 2];
    int64_t values[CP_V__COUNT];
    cp_label labels[4];
    size_t nf = r->kind == CP__TRACE_WALL_REPEAT ? repeat_frames(c, r) : resolve_frames(c, r);
    size_t nl = thread_labels(r, labels, tname, sizeof tname);

    if (nf == 0)
        return; /* a repeat whose thread moved on: the next tick signals it */
    if (r->kind == CP__TRACE_WALL)
        remember_wall(r, c->frames, nf);
    if (r->kind == CP__TRACE_ALLOC && r->class_name[0] != '\0') {
        cp__class_name_from_signature(r->class_name, cls, sizeof cls);
        labels[nl++] = (cp_label){"class name", cls, 0, NULL};
        if (r->heap_slot >= 0)
            cp__heap_publish(r, c->methods, c->lines, r->num_frames > 0 ? (int)nf : 0,
                             cp__intern(cls));
    }
    fill_values(r, values);
    cp_add_sample(c->frames, nf, values, labels, nl);
}

static void drain_locked(jvmtiEnv *jvmti, JNIEnv *jni)
{
    g_ctx.jvmti = jvmti;
    g_ctx.jni = jni;
    /* Every local reference the pass creates dies with this frame. */
    if ((*jni)->PushLocalFrame(jni, 64) != JNI_OK) {
        (*jni)->ExceptionClear(jni);
        return;
    }
    cp__store_drain(visit, &g_ctx);
    (*jni)->PopLocalFrame(jni, NULL);
    cp__alloc_adapt(jvmti);
}

static uint64_t pass_begins(void)
{
    pthread_mutex_lock(&g_wake_lock);
    uint64_t seen = g_requested;
    pthread_mutex_unlock(&g_wake_lock);
    return seen;
}

/* Requests made before the pass began are now satisfied. */
static void complete_pass(uint64_t seen)
{
    pthread_mutex_lock(&g_wake_lock);
    if (seen > g_completed)
        g_completed = seen;
    pthread_cond_broadcast(&g_done);
    pthread_mutex_unlock(&g_wake_lock);
}

static void wait_for_work(void)
{
    struct timespec ts;

    deadline_in(&ts, PASS_PERIOD_MS);
    pthread_mutex_lock(&g_wake_lock);
    while (g_requested == g_completed && cp__jvm_running())
        if (pthread_cond_timedwait(&g_wake, &g_wake_lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&g_wake_lock);
}

static void JNICALL resolver_main(jvmtiEnv *jvmti, JNIEnv *jni, void *arg)
{
    bool late_info_done = false;
    uint64_t renamed_at = 0;

    (void)arg;
    /* ThreadStart registered this thread like any other: it must not sample
     * itself. Its CPU counts as the profiler's own instead. */
    if (cp__threads_self() != NULL)
        cp__cpu_timer_stop(cp__threads_self());
    cp__threads_unregister_self();
    cp_thread_register_self();
    while (cp__jvm_running()) {
        wait_for_work();
        if (!cp__jvm_running())
            break;
        uint64_t seen = pass_begins();
        /* At each export (~1 µs per live thread): renamed threads get their
         * new name from here on. */
        if (seen > renamed_at) {
            renamed_at = seen;
            cp__threads_refresh_names(jvmti, jni);
        }
        pthread_mutex_lock(&g_drain_lock);
        drain_locked(jvmti, jni);
        pthread_mutex_unlock(&g_drain_lock);
        complete_pass(seen);
        if (seen > 0 && !late_info_done) { /* after the first export's drain */
            late_info_done = true;
            cp__runtime_info_collect_late(jni);
        }
    }
    cp_thread_unregister_self();
}

static jthread new_thread_object(JNIEnv *jni)
{
    jclass cls = (*jni)->FindClass(jni, "java/lang/Thread");
    jmethodID init = cls ? (*jni)->GetMethodID(jni, cls, "<init>", "(Ljava/lang/String;)V") : NULL;
    jstring name = init ? (*jni)->NewStringUTF(jni, "contprof-resolver") : NULL;
    jthread t = name ? (*jni)->NewObject(jni, cls, init, name) : NULL;

    if ((*jni)->ExceptionCheck(jni))
        (*jni)->ExceptionClear(jni);
    return t;
}

int cp__resolver_start(jvmtiEnv *jvmti, JNIEnv *jni)
{
    size_t n = (size_t)cp__jvm.max_frames;
    jthread t;

    g_ctx.frames = calloc(n, sizeof *g_ctx.frames);
    g_ctx.methods = calloc(n, sizeof *g_ctx.methods);
    g_ctx.lines = calloc(n, sizeof *g_ctx.lines);
    g_last = calloc(cp__threads_capacity(), sizeof *g_last);
    if (g_ctx.frames == NULL || g_ctx.methods == NULL || g_ctx.lines == NULL || g_last == NULL)
        return CP_ENOMEM;
    if ((t = new_thread_object(jni)) == NULL)
        return CP_EIO;
    if ((*jvmti)->RunAgentThread(jvmti, t, resolver_main, NULL, JVMTI_THREAD_NORM_PRIORITY) !=
        JVMTI_ERROR_NONE)
        return CP_EIO;
    return CP_OK;
}

void cp__resolver_sync(int64_t timeout_ms)
{
    struct timespec ts;

    if (!cp__jvm_running())
        return;
    deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&g_wake_lock);
    uint64_t want = ++g_requested;
    pthread_cond_signal(&g_wake);
    while (g_completed < want && cp__jvm_running())
        if (pthread_cond_timedwait(&g_done, &g_wake_lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&g_wake_lock);
}

void cp__resolver_final_drain(jvmtiEnv *jvmti, JNIEnv *jni, int64_t timeout_ms)
{
    struct timespec ts;

    if (g_ctx.frames == NULL)
        return;
    deadline_in(&ts, timeout_ms);
    /* The resolver may be mid-pass; never wait for it past the deadline. */
    if (pthread_mutex_timedlock(&g_drain_lock, &ts) != 0) {
        cp_log(CP_LOG_WARN, "resolver busy at VM death: the last samples are dropped");
        return;
    }
    drain_locked(jvmti, jni);
    pthread_mutex_unlock(&g_drain_lock);
}
