/*
 * alloc_sampler.c — SampledObjectAlloc, ObjectFree, live-heap export.
 *
 * Each sampled object (heap profiling on) is tagged with a slot of the live
 * table (heap_table.c): generation << 32 | (index + 1). ObjectFree releases
 * the slot; the resolver stores the object's stack (heap_stacks.c) and the
 * GC cycle counts read after the allocation (gc_cycles.c). An object is
 * exported as live only once a whole GC cycle that began after its
 * allocation has ended: before that it may be garbage no GC has looked at,
 * and with a large sampling weight it would claim megabytes that do not
 * exist.
 */
#include "alloc_sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gc_cycles.h"
#include "heap_stacks.h"
#include "heap_table.h"
#include "jvm_agent.h"
#include "thread_table.h"
#include "vthreads.h"

enum { MAX_STACK = 600 };
/* At most ~this many allocation samples per second: beyond it the interval
 * grows by powers of two (and comes back down, never below the configured one, when the
 * rate falls), so an allocation storm cannot make the profiler expensive. */
enum { ALLOC_TARGET_PER_S = 200 };
#define ADAPT_PERIOD_NS 250000000LL /* quick enough for a start-up burst */
/* Live table bounds: room for 4x the objects a full heap holds at the
 * configured interval (dead objects wait for a GC cycle to be freed), at
 * least 64 Ki slots, at most 1 Mi (56 bytes each, allocated as used). The
 * stack tree keeps at most 256 Ki frames (~15 MiB). */
enum { HEAP_MIN_SLOTS = 65536, HEAP_MAX_SLOTS = 1 << 20, HEAP_MAX_NODES = 1 << 18 };

static atomic_llong g_interval;       /* interval in effect, bytes          */
static atomic_bool g_heap_full_logged, g_heap_evict_logged, g_stacks_full_logged;
static atomic_ullong g_alloc_count;   /* samples taken so far               */
static int64_t g_adapt_ns;            /* resolver only                      */
static uint64_t g_adapt_count;

static int64_t max_heap_bytes(JNIEnv *jni)
{
    jclass rc = (*jni)->FindClass(jni, "java/lang/Runtime");
    jmethodID get = rc ? (*jni)->GetStaticMethodID(jni, rc, "getRuntime", "()Ljava/lang/Runtime;") : NULL;
    jmethodID max = get ? (*jni)->GetMethodID(jni, rc, "maxMemory", "()J") : NULL;
    jobject rt = max ? (*jni)->CallStaticObjectMethod(jni, rc, get) : NULL;
    jlong v = rt && !(*jni)->ExceptionCheck(jni) ? (*jni)->CallLongMethod(jni, rt, max) : 0;

    if ((*jni)->ExceptionCheck(jni)) {
        (*jni)->ExceptionClear(jni);
        v = 0;
    }
    if (rt != NULL)
        (*jni)->DeleteLocalRef(jni, rt);
    if (rc != NULL)
        (*jni)->DeleteLocalRef(jni, rc);
    return v > 0 && v < INT64_MAX ? (int64_t)v : 0;
}

int cp__heap_init(JNIEnv *jni)
{
    int64_t heap = max_heap_bytes(jni), per = cp__jvm.alloc_interval > 0 ? cp__jvm.alloc_interval : 1;
    size_t slots = HEAP_MIN_SLOTS;

    if (heap / per * 4 > (int64_t)slots)
        slots = heap / per * 4 > HEAP_MAX_SLOTS ? HEAP_MAX_SLOTS : (size_t)(heap / per * 4);
    if (cp__heap_table_init(slots) != CP_OK || cp__heap_stacks_init(HEAP_MAX_NODES) != CP_OK)
        return CP_ENOMEM;
    cp_log(CP_LOG_DEBUG, "live heap: up to %zu tracked objects (max heap %lld bytes)", slots, (long long)heap);
    return CP_OK;
}

/* Tag = generation << 32 | (slot index + 1); 0 is "untagged". */
static jlong make_tag(int32_t i, uint32_t gen) { return (jlong)(((uint64_t)gen << 32) | (uint32_t)(i + 1)); }

static void log_once(atomic_bool *flag, const char *what)
{
    cp_metrics_add_dropped(1);
    if (!atomic_exchange(flag, true))
        cp_log(CP_LOG_WARN, "%s", what);
}

/* Claim a live slot and tag obj with it; -1 when none is free (counted). */
static int32_t heap_track(jvmtiEnv *jvmti, jobject obj, int64_t bytes, uint32_t *gen)
{
    int32_t i = cp__heap_table_claim(bytes, gen);

    if (i < 0) {
        log_once(&g_heap_full_logged, "live-heap table full: some sampled objects are not tracked "
                 "(counted as dropped)");
        return -1;
    }
    if ((*jvmti)->SetTag(jvmti, obj, make_tag(i, *gen)) != JVMTI_ERROR_NONE) {
        cp__heap_table_unclaim(i, *gen);
        return -1;
    }
    return i;
}

void JNICALL cp__on_gc_finish(jvmtiEnv *jvmti)
{
    (void)jvmti; /* a restricted callback: one atomic increment, nothing else */
    cp__gc_cycles_on_finish();
}

void JNICALL cp__on_object_free(jvmtiEnv *jvmti, jlong tag)
{
    uint64_t t = (uint64_t)tag;

    (void)jvmti;
    cp__heap_table_free((int32_t)((t & 0xffffffffu) - 1), (uint32_t)(t >> 32));
}

void cp__heap_flush_frees(jvmtiEnv *jvmti)
{
    if ((*jvmti)->SetEventNotificationMode(jvmti, JVMTI_ENABLE, JVMTI_EVENT_OBJECT_FREE, NULL) != JVMTI_ERROR_NONE)
        cp_log(CP_LOG_DEBUG, "live heap: pending ObjectFree events not flushed");
}

static void record_stack(jvmtiEnv *jvmti, jthread thread, cp__trace_rec *r)
{
    jvmtiFrameInfo fi[MAX_STACK];
    jint n = 0;

    if ((*jvmti)->GetStackTrace(jvmti, thread, 0, cp__jvm.walk_depth, fi, &n) != JVMTI_ERROR_NONE)
        n = 0;
    for (jint i = 0; i < n; i++) {
        r->frames[i].method_id = fi[i].method;
        r->frames[i].lineno = (jint)fi[i].location;
    }
    r->num_frames = n > 0 ? n : CP__AGCT_UNKNOWN_JAVA;
    r->total_frames = n;
    if (n >= cp__jvm.walk_depth && (*jvmti)->GetFrameCount(jvmti, thread, &n) == JVMTI_ERROR_NONE)
        r->total_frames = n; /* truncated: its true depth, for "<N frames omitted>" */
}

static void record_class(jvmtiEnv *jvmti, jclass klass, cp__trace_rec *r)
{
    char *sig = NULL;

    if ((*jvmti)->GetClassSignature(jvmti, klass, &sig, NULL) != JVMTI_ERROR_NONE || sig == NULL)
        return;
    snprintf(r->class_name, sizeof r->class_name, "%s", sig);
    (*jvmti)->Deallocate(jvmti, (unsigned char *)sig);
}

/* Poisson sampling takes an object of `size` bytes with probability
 * 1 - exp(-size/interval); dividing by it gives an unbiased byte estimate. */
static int64_t estimated_bytes(jlong size)
{
    double interval = (double)atomic_load_explicit(&g_interval, memory_order_relaxed);
    if (interval <= 0 || size <= 0)
        return size;
    double p = 1.0 - exp(-(double)size / interval);
    return p > 0 ? (int64_t)((double)size / p) : size;
}

void JNICALL cp__on_sampled_alloc(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread,
                                  jobject object, jclass klass, jlong size)
{
    if (!cp__jvm_running())
        return;
    int64_t t0 = cp_now_ns();
    cp__trace_rec *r = cp__store_reserve();
    if (r == NULL)
        return;
    r->kind = CP__TRACE_ALLOC;
    r->size = size;
    r->weight = estimated_bytes(size);
    r->thread_serial = cp__tls_vserial != 0 ? cp__tls_vserial : cp__tls_serial;
    r->tid = (pid_t)syscall(SYS_gettid);
    record_stack(jvmti, thread, r);
    record_class(jvmti, klass, r);
    if (cp__jvm.heap_on) {
        r->gc_seq = cp__gc_cycles_seq();
        r->heap_slot = heap_track(jvmti, object, r->weight, &r->heap_gen);
    }
    cp__store_commit(r);
    atomic_fetch_add_explicit(&g_alloc_count, 1, memory_order_relaxed);
    cp_metrics_add_taken(1);
    cp_metrics_add_hook_ns(cp_now_ns() - t0);
}

void cp__alloc_start(jvmtiEnv *jvmti)
{
    atomic_store(&g_interval, cp__jvm.alloc_interval);
    g_adapt_ns = cp_now_ns();
    (*jvmti)->SetHeapSamplingInterval(jvmti, (jint)cp__jvm.alloc_interval);
}

/* Scale by powers of two until the rate would be within 2x of target. */
static int64_t next_interval(int64_t cur, double rate)
{
    while (rate > 2.0 * ALLOC_TARGET_PER_S && cur <= INT32_MAX / 2)
        cur *= 2, rate /= 2;
    while (rate < 0.5 * ALLOC_TARGET_PER_S && cur / 2 >= cp__jvm.alloc_interval)
        cur /= 2, rate *= 2;
    return cur;
}

void cp__alloc_adapt(jvmtiEnv *jvmti)
{
    int64_t now = cp_now_ns();

    if (!cp__jvm.alloc_on || now - g_adapt_ns < ADAPT_PERIOD_NS)
        return;
    uint64_t count = atomic_load(&g_alloc_count);
    double rate = (double)(count - g_adapt_count) * 1e9 / (double)(now - g_adapt_ns);
    int64_t cur = atomic_load(&g_interval), next = next_interval(cur, rate);
    g_adapt_ns = now;
    g_adapt_count = count;
    if (next == cur || (*jvmti)->SetHeapSamplingInterval(jvmti, (jint)next) != JVMTI_ERROR_NONE)
        return;
    atomic_store(&g_interval, next);
    cp_log(CP_LOG_DEBUG, "allocation sampling interval now %lld bytes (%.0f samples/s)",
           (long long)next, rate);
}

void cp__heap_publish(JNIEnv *jni, const cp__trace_rec *r, const cp_frame *frames, size_t nframes,
                      const char *class_name)
{
    const cp__heap_node *stack = cp__heap_stacks_intern(frames, nframes);

    if (stack == NULL && nframes > 0)
        log_once(&g_stacks_full_logged, "live-heap stack table full: objects allocated at new sites "
                 "are not tracked (counted as dropped)");
    cp__heap_table_publish(r->heap_slot, r->heap_gen, stack, class_name,
                           cp__gc_cycles_mark_after(jni, r->gc_seq));
}

void cp__heap_pass_begin(JNIEnv *jni)
{
    if (cp__jvm.heap_on)
        cp__gc_cycles_poll(jni);
}

void cp__heap_pass_end(void)
{
    size_t evicted = cp__jvm.heap_on ? cp__heap_table_maintain() : 0;

    if (evicted == 0)
        return;
    cp_metrics_add_dropped(evicted - 1);
    log_once(&g_heap_evict_logged, "live-heap table at its cap: the oldest tracked objects are no "
             "longer reported (counted as dropped)");
}

typedef struct export_ctx {
    cp_frame *frames;
    size_t max;
    cp__gc_view *gc;
} export_ctx;

static void export_one(const cp__heap_entry *e, void *arg)
{
    export_ctx *x = arg;
    int64_t values[CP_V__COUNT];
    size_t n;

    if (!cp__gc_cycles_examined(e->mark, x->gc) || (n = cp__heap_stacks_get(e->stack, x->frames, x->max)) == 0)
        return;
    memset(values, 0, sizeof values);
    values[CP_V_HEAP_SPACE] = e->bytes;
    values[CP_V_HEAP_SAMPLES] = 1;
    cp_label label = {"class name", e->class_name, 0, NULL};
    cp_add_sample(x->frames, n, values, &label, e->class_name ? 1 : 0);
}

void cp__heap_export(void)
{
    export_ctx x = {calloc((size_t)MAX_STACK, sizeof(cp_frame)), MAX_STACK, malloc(sizeof(cp__gc_view))};

    if (x.frames != NULL && x.gc != NULL) {
        cp__gc_cycles_view(x.gc);
        cp__heap_table_each(export_one, &x);
    }
    free(x.frames);
    free(x.gc);
}
