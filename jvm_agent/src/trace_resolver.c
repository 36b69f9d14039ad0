/*
 * trace_resolver.c — draining, resolving and feeding the core.
 */
#include "trace_resolver.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agct.h"
#include "alloc_sampler.h"
#include "call_trace_store.h"
#include "code_map.h"
#include "contprof_os.h"
#include "cpu_sampler.h"
#include "jvm_agent.h"
#include "lock_sampler.h"
#include "method_resolver.h"
#include "native_threads.h"
#include "runtime_info.h"
#include "thread_table.h"
#include "vthreads.h"

/* 1024 store slots drained every 200 ms absorb ~5k samples/s; a burst that
 * fills half the store wakes the resolver at once. Each wake-up costs tens
 * of microseconds of CPU in a VM before any work: passes 50 ms apart were
 * 2.2-2.3 ms/s of the resolver's CPU (JDK 17, bench/jvm_overhead's cpu
 * workload), 200 ms apart 1.0. Parked virtual threads' wall samples come
 * at their own interval (cp__vthreads_wall_tick). */
enum { PASS_PERIOD_MS = 200 };

/* The root-most frame of a stack deeper than max_frames stands for what was
 * cut: "<N frames omitted>" when the true depth is known (the handler walks a
 * truncated stack again to count it), "<more than N frames omitted>" past
 * CP__DEPTH_MAX, "<frames omitted>" when it could not be counted (all the
 * counting buffers were busy in other handlers at once). */

static const char *omitted_name(const cp__trace_rec *r, int kept)
{
    char buf[64];

    if (r->total_frames == CP__DEPTH_UNKNOWN || r->total_frames <= kept)
        return "<frames omitted>";
    snprintf(buf, sizeof buf, "<%s%d frames omitted>",
             r->total_frames >= CP__DEPTH_MAX ? "more than " : "", r->total_frames - kept);
    return cp__intern(buf);
}

/* Scratch of one drain pass; owned by whoever holds g_drain_lock. */
typedef struct drain_ctx {
    jvmtiEnv *jvmti;
    JNIEnv *jni;
    cp_frame *frames;
    cp_frame_kind *kinds;
} drain_ctx;

static pthread_mutex_t g_drain_lock = PTHREAD_MUTEX_INITIALIZER;
static drain_ctx g_ctx;
static pthread_mutex_t g_wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_done;             /* CLOCK_MONOTONIC, see conds_init */
static pthread_once_t g_conds_once = PTHREAD_ONCE_INIT;
static uint64_t g_requested, g_completed; /* under g_wake_lock */
/* Bumped by every wake-up request (export sync, store half full); the
 * resolver sleeps on it with a futex, which a signal handler may wake. */
static atomic_uint g_wake_seq;

static void conds_init(void)
{
    cp_os_cond_init_monotonic(&g_done);
}

/* Async-signal-safe (a store writer may call it from a signal handler). */
static void wake_resolver(void)
{
    int saved = errno;

    atomic_fetch_add(&g_wake_seq, 1);
    syscall(SYS_futex, &g_wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    errno = saved;
}

/* Fill ctx->frames from r's frames (or its AGCT error pseudo-frame). */
static size_t resolve_java(drain_ctx *c, const cp__trace_rec *r)
{
    if (r->num_frames <= 0) {
        c->frames[0] = (cp_frame){cp__agct_error_name(r->num_frames), NULL, NULL, 0,
                                  CP_FRAME_PSEUDO, NULL};
        return 1;
    }
    bool truncated = r->num_frames > cp__jvm.max_frames;
    int n = truncated ? cp__jvm.max_frames - 1 : r->num_frames;
    cp__code_map_kinds(r->kind == CP__TRACE_ALLOC ? 0 : r->pc, r->kind == CP__TRACE_ALLOC ? 0 : r->java_pc,
                       r->frames, n, c->kinds);
    for (int i = 0; i < n; i++) {
        const cp__agct_frame *f = &r->frames[i];
        const cp__method_info *m = cp__method_resolve(c->jvmti, c->jni, f->method_id);
        int64_t line = f->lineno >= 0 ? cp__method_line(m, f->lineno) : 0;
        c->frames[i] = (cp_frame){m->name, m->system_name, m->file, line, c->kinds[i], NULL};
    }
    if (truncated) {
        c->frames[n] = (cp_frame){omitted_name(r, n), NULL, NULL, 0, CP_FRAME_PSEUDO, NULL};
        n++;
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

/* AGCT's answers that only say "no Java code here": a compiler, GC or VM
 * thread, or a Java thread before its first Java frame. With native frames
 * they add nothing; without, they stay as the honest pseudo-frame. */
static bool no_java_here(int code)
{
    return code == 0 || code == -3 || code == -4;
}

/* Native frames (leaf first) then the Java frames they were called from. */
static size_t resolve_frames(drain_ctx *c, const cp__trace_rec *r)
{
    size_t nn = r->kind == CP__TRACE_CPU && r->num_native > 0 ? (size_t)r->num_native : 0;

    if (nn == 0 && r->java)
        return resolve_java(c, r);
    if (nn == 0) {
        c->frames[0] = (cp_frame){"[unknown native]", NULL, NULL, 0, CP_FRAME_PSEUDO, NULL};
        return 1;
    }
    size_t nj = 0;
    if (r->java && !(r->num_frames <= 0 && no_java_here(r->num_frames))) {
        nj = resolve_java(c, r); /* into frames[0..nj): moved below the native ones */
        memmove(c->frames + nn, c->frames, nj * sizeof *c->frames);
    }
    for (size_t i = 0; i < nn; i++)
        cp_native_symbolize(r->native[i], i > 0, &c->frames[i]);
    return nn + nj;
}

static void fill_values(const cp__trace_rec *r, int64_t *v)
{
    memset(v, 0, sizeof(int64_t) * CP_V__COUNT);
    if (r->kind == CP__TRACE_CPU || r->kind == CP__TRACE_CPU_UNSAMPLED) {
        v[CP_V_CPU_TIME] = r->weight;
        v[CP_V_CPU_SAMPLES] = 1;
    } else if (r->kind == CP__TRACE_WALL || r->kind == CP__TRACE_WALL_REPEAT || r->kind == CP__TRACE_WALL_END) {
        v[CP_V_WALL_TIME] = r->weight;
        v[CP_V_WALL_SAMPLES] = 1;
    } else if (r->kind == CP__TRACE_LOCK) {
        v[CP_V_LOCK_WAIT] = r->weight;
        v[CP_V_LOCK_COUNT] = r->size;
    } else if (r->kind == CP__TRACE_EXCEPTION) {
        v[CP_V_EXC_SAMPLES] = r->weight;
    } else {
        v[CP_V_ALLOC_SPACE] = r->weight;
        v[CP_V_ALLOC_SAMPLES] = 1;
    }
}

/* The label naming what a lock or exception sample is about. */
static const char *event_label_key(int kind)
{
    return kind == CP__TRACE_LOCK ? "lock name" : kind == CP__TRACE_EXCEPTION ? "exception type" : NULL;
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

/* The CPU time of a thread that ended before its first CPU sample: where
 * it ran is unknown, it is kept under this pseudo-frame. */
static size_t unsampled_frame(drain_ctx *c)
{
    c->frames[0] = (cp_frame){"[thread_ended_before_sampled]", NULL, NULL, 0, CP_FRAME_PSEUDO, NULL};
    return 1;
}

/* thread id / native id / name labels into labels; returns their count. */
static size_t thread_labels(const cp__trace_rec *r, cp_label *labels, char *tname, size_t n)
{
    int64_t java_id = 0;
    size_t nl = 0;

    if (!cp__thread_info_get(r->thread_serial, tname, n, &java_id) &&
        !cp__native_thread_name(r->tid, tname, n))
        comm_name(r->tid, tname, n);
    if (java_id > 0)
        labels[nl++] = (cp_label){"thread id", NULL, java_id, NULL};
    if (r->tid > 0) /* 0: a parked virtual thread, on no OS thread */
        labels[nl++] = (cp_label){"thread native id", NULL, r->tid, NULL};
    labels[nl++] = (cp_label){"thread name", tname, 0, NULL};
    return nl;
}

/* A thread parked on a j.u.c. lock: its wall time is lock wait too. */
static void add_parked_wait(const cp__trace_rec *r, const cp_frame *frames, size_t nf, cp_label *labels, size_t nl,
                            const char *lock)
{
    int64_t v[CP_V__COUNT] = {0};
    v[CP_V_LOCK_WAIT] = r->weight;
    labels[nl++] = (cp_label){"lock name", lock, 0, NULL};
    cp_add_sample(frames, nf, v, labels, nl);
}

static void visit(const cp__trace_rec *r, void *arg)
{
    drain_ctx *c = arg;
    char tname[64], cls[CP__CLASS_NAME_MAX * 2];
    int64_t values[CP_V__COUNT];
    cp_label labels[5];
    size_t nf = r->kind == CP__TRACE_WALL_REPEAT || r->kind == CP__TRACE_WALL_END ? repeat_frames(c, r)
                : r->kind == CP__TRACE_CPU_UNSAMPLED ? unsampled_frame(c)
                                                     : resolve_frames(c, r);
    size_t nl = thread_labels(r, labels, tname, sizeof tname);

    if (nf == 0)
        return; /* a repeat whose thread moved on: the next tick signals it */
    if (r->kind == CP__TRACE_WALL)
        remember_wall(r, c->frames, nf);
    if (r->kind == CP__TRACE_ALLOC && r->class_name[0] != '\0') {
        cp__class_name_from_signature(r->class_name, cls, sizeof cls);
        labels[nl++] = (cp_label){"class name", cls, 0, NULL};
    }
    if (event_label_key(r->kind) && r->class_name[0] != '\0') {
        cp__class_name_from_signature(r->class_name, cls, sizeof cls);
        labels[nl++] = (cp_label){event_label_key(r->kind), cls, 0, NULL};
    }
    /* Even with no class name (GetClassSignature failed): the slot must be
     * published or released, never left pending. */
    if (r->kind == CP__TRACE_ALLOC && r->heap_slot >= 0)
        cp__heap_publish(c->jni, r, c->frames, nf, r->class_name[0] != '\0' ? cp__intern(cls) : NULL);
    fill_values(r, values);
    cp_add_sample(c->frames, nf, values, labels, nl);
    if ((r->kind == CP__TRACE_WALL || r->kind == CP__TRACE_WALL_REPEAT) && cp__locks_parked_on(c->frames, nf, cls, sizeof cls))
        add_parked_wait(r, c->frames, nf, labels, nl, cls);
}

static void drain_locked(jvmtiEnv *jvmti, JNIEnv *jni)
{
    g_ctx.jvmti = jvmti;
    g_ctx.jni = jni;
    /* Objects loaded since the last drain (libzip at the first Deflater)
     * become known to the unwinder; one dl_iterate_phdr when none were. */
    if (cp__jvm.native_on)
        cp_native_refresh();
    /* Every local reference the pass creates dies with this frame. */
    if ((*jni)->PushLocalFrame(jni, 64) != JNI_OK) {
        (*jni)->ExceptionClear(jni);
        return;
    }
    cp__heap_pass_begin(jni);
    cp__store_drain(visit, &g_ctx);
    cp__heap_pass_end();
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
    pthread_once(&g_conds_once, conds_init);
    pthread_mutex_lock(&g_wake_lock);
    if (seen > g_completed)
        g_completed = seen;
    pthread_cond_broadcast(&g_done);
    pthread_mutex_unlock(&g_wake_lock);
}

/* Sleep until a wake-up, PASS_PERIOD_MS or `due` if it is sooner (0: none;
 * relative futex timeouts run on CLOCK_MONOTONIC). */
static void wait_for_work(unsigned *seen, int64_t due)
{
    int64_t end = cp_now_ns() + (int64_t)PASS_PERIOD_MS * 1000000;
    if (due > 0 && due < end)
        end = due;

    for (;;) {
        unsigned seq = atomic_load(&g_wake_seq);
        int64_t left = end - cp_now_ns();
        if (seq != *seen || left <= 0 || !cp__jvm_running()) {
            *seen = seq;
            return;
        }
        struct timespec ts = {left / 1000000000, left % 1000000000};
        syscall(SYS_futex, &g_wake_seq, FUTEX_WAIT_PRIVATE, seq, &ts, NULL, 0);
    }
}

static void JNICALL resolver_main(jvmtiEnv *jvmti, JNIEnv *jni, void *arg)
{
    uint64_t renamed_at = 0;
    unsigned wake_seen = atomic_load(&g_wake_seq);
    int64_t vt_due = 0;

    (void)arg;
    /* ThreadStart registered this thread like any other: it must not sample
     * itself. Its CPU counts as the profiler's own instead. */
    if (cp__threads_self() != NULL)
        cp__cpu_timer_stop(cp__threads_self());
    cp__threads_unregister_self();
    cp_thread_register_self();
    while (cp__jvm_running()) {
        wait_for_work(&wake_seen, vt_due);
        if (!cp__jvm_running())
            break;
        uint64_t seen = pass_begins();
        vt_due = cp__vthreads_wall_tick(jvmti, jni);
        /* At each export (~1 µs per live thread): renamed threads get their
         * new name from here on. */
        if (seen > renamed_at) {
            renamed_at = seen;
            cp__threads_refresh_names(jvmti, jni);
            if (cp__jvm.heap_on)
                cp__heap_flush_frees(jvmti);
        }
        pthread_mutex_lock(&g_drain_lock);
        drain_locked(jvmti, jni);
        pthread_mutex_unlock(&g_drain_lock);
        complete_pass(seen);

    }
    cp_thread_unregister_self();
}

jthread cp__agent_thread_object(JNIEnv *jni, const char *thread_name)
{
    jclass cls = (*jni)->FindClass(jni, "java/lang/Thread");
    jmethodID init = cls ? (*jni)->GetMethodID(jni, cls, "<init>", "(Ljava/lang/String;)V") : NULL;
    jstring name = init ? (*jni)->NewStringUTF(jni, thread_name) : NULL;
    jthread t = name ? (*jni)->NewObject(jni, cls, init, name) : NULL;

    if ((*jni)->ExceptionCheck(jni))
        (*jni)->ExceptionClear(jni);
    return t;
}

int cp__resolver_start(jvmtiEnv *jvmti, JNIEnv *jni)
{
    size_t n = (size_t)cp__jvm.max_frames;
    jthread t;

    /* Room for the native frames above a full Java stack; the core cuts
     * the whole stack to max_frames. */
    g_ctx.frames = calloc(2 * n + 1, sizeof *g_ctx.frames);
    g_ctx.kinds = calloc(n, sizeof *g_ctx.kinds);
    g_last = calloc(cp__threads_capacity(), sizeof *g_last);
    pthread_once(&g_conds_once, conds_init);
    cp__store_on_half_full(wake_resolver);
    if (g_ctx.frames == NULL || g_ctx.kinds == NULL || g_last == NULL)
        return CP_ENOMEM;
    if ((t = cp__agent_thread_object(jni, "contprof-resolver")) == NULL)
        return CP_EIO;
    if ((*jvmti)->RunAgentThread(jvmti, t, resolver_main, NULL, JVMTI_THREAD_NORM_PRIORITY) !=
        JVMTI_ERROR_NONE)
        return CP_EIO;
    return CP_OK;
}

/* Deadlines are CLOCK_MONOTONIC (contprof_os.h): a wall-clock step can
 * neither stall nor hurry any wait of the resolver. */
void cp__resolver_sync(int64_t timeout_ms)
{
    if (!cp__jvm_running())
        return;
    pthread_once(&g_conds_once, conds_init);
    int64_t deadline = cp_now_ns() + timeout_ms * 1000000;
    pthread_mutex_lock(&g_wake_lock);
    uint64_t want = ++g_requested;
    wake_resolver();
    while (g_completed < want && cp__jvm_running())
        if (cp_os_cond_wait_until(&g_done, &g_wake_lock, deadline) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&g_wake_lock);
}

void cp__resolver_final_drain(jvmtiEnv *jvmti, JNIEnv *jni, int64_t timeout_ms)
{
    if (g_ctx.frames == NULL)
        return;
    int64_t deadline = cp_now_ns() + timeout_ms * 1000000;
    struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
    /* The resolver may be mid-pass; never wait for it past the deadline. */
    if (pthread_mutex_clocklock(&g_drain_lock, CLOCK_MONOTONIC, &ts) != 0) {
        cp_log(CP_LOG_WARN, "resolver busy at VM death: the last samples are dropped");
        return;
    }
    drain_locked(jvmti, jni);
    pthread_mutex_unlock(&g_drain_lock);
}
