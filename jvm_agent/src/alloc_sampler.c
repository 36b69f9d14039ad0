/*
 * alloc_sampler.c — SampledObjectAlloc, ObjectFree, live-heap export.
 *
 * Live slot life cycle (state, with a generation bumped at every claim so a
 * stale tag or reader can tell the slot moved on):
 *   FREE -> PENDING (claimed and tagged by the allocating thread)
 *        -> LIVE    (resolver stored its frames)   -> FREE (ObjectFree)
 *   PENDING -> DEAD (ObjectFree came before the resolver) -> FREE (resolver)
 * Only objects that have lived through at least one GC are exported as
 * live: a young object may already be garbage that no GC has looked at, and
 * with a large sampling weight it would claim megabytes that do not exist.
 */
#include "alloc_sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jvm_agent.h"
#include "thread_table.h"

enum { HEAP_FREE = 0, HEAP_PENDING = 1, HEAP_LIVE = 2, HEAP_DEAD = 3 };
enum { MAX_STACK = 600 };
/* At most ~this many allocation samples per second: beyond it the interval
 * grows by powers of two (and comes back down, never below the configured one, when the
 * rate falls), so an allocation storm cannot make the profiler expensive. */
enum { ALLOC_TARGET_PER_S = 200 };
#define ADAPT_PERIOD_NS 250000000LL /* quick enough for a start-up burst */
enum { HEAP_PROBES = 64 };

typedef struct heap_slot {
    atomic_int state;
    atomic_uint gen;
    int64_t bytes;                    /* estimated bytes this sample stands for */
    unsigned gc_epoch;                /* g_gc_epoch when allocated              */
    const char *class_name;           /* interned                               */
    int nframes;
    const cp__method_info **methods;  /* max_frames, preallocated               */
    int32_t *lines;
} heap_slot;

static heap_slot *g_heap;             /* never freed: ObjectFree may come late */
static size_t g_heap_n;
static atomic_size_t g_heap_cursor;
static int g_heap_frames;
static atomic_llong g_interval;       /* interval in effect, bytes          */
static atomic_uint g_gc_epoch;        /* GCs finished so far                */
static atomic_bool g_heap_full_logged;
static atomic_ullong g_alloc_count;   /* samples taken so far               */
static int64_t g_adapt_ns;            /* resolver only                      */
static uint64_t g_adapt_count;

int cp__heap_init(size_t nslots, int max_frames)
{
    heap_slot *h = calloc(nslots, sizeof *h);
    const cp__method_info **m = calloc(nslots * (size_t)max_frames, sizeof *m);
    int32_t *l = calloc(nslots * (size_t)max_frames, sizeof *l);

    if (h == NULL || m == NULL || l == NULL) {
        free(h), free(m), free(l);
        return CP_ENOMEM;
    }
    for (size_t i = 0; i < nslots; i++) {
        h[i].methods = m + i * (size_t)max_frames;
        h[i].lines = l + i * (size_t)max_frames;
    }
    g_heap_frames = max_frames;
    g_heap_n = nslots;
    g_heap = h;
    return CP_OK;
}

/* Tag = generation << 32 | (slot index + 1); 0 is "untagged". */
static jlong make_tag(size_t i, unsigned gen) { return (jlong)(((uint64_t)gen << 32) | (i + 1)); }

/* Claim a free live slot and tag obj with it; -1 when none is found within
 * HEAP_PROBES slots (the table is about full: counted, logged once). */
static int32_t heap_track(jvmtiEnv *jvmti, jobject obj, int64_t bytes, uint32_t *gen)
{
    for (size_t n = 0; n < HEAP_PROBES; n++) {
        size_t i = atomic_fetch_add(&g_heap_cursor, 1) % g_heap_n;
        heap_slot *s = &g_heap[i];
        int expect = HEAP_FREE;
        /* A plain load first: no cache-line ping-pong over busy slots. */
        if (atomic_load_explicit(&s->state, memory_order_relaxed) != HEAP_FREE ||
            !atomic_compare_exchange_strong(&s->state, &expect, HEAP_PENDING))
            continue;
        *gen = atomic_fetch_add(&s->gen, 1) + 1;
        s->bytes = bytes;
        s->gc_epoch = atomic_load(&g_gc_epoch);
        if ((*jvmti)->SetTag(jvmti, obj, make_tag(i, *gen)) != JVMTI_ERROR_NONE) {
            atomic_store(&s->state, HEAP_FREE);
            return -1;
        }
        return (int32_t)i;
    }
    cp_metrics_add_dropped(1);
    if (!atomic_exchange(&g_heap_full_logged, true))
        cp_log(CP_LOG_WARN, "live-heap table full (%zu sampled objects alive): newer live "
               "objects are not tracked until some are freed", g_heap_n);
    return -1;
}

void JNICALL cp__on_gc_finish(jvmtiEnv *jvmti)
{
    (void)jvmti; /* a restricted callback: one atomic increment, nothing else */
    atomic_fetch_add(&g_gc_epoch, 1);
}

void JNICALL cp__on_object_free(jvmtiEnv *jvmti, jlong tag)
{
    uint64_t t = (uint64_t)tag;
    size_t i = (size_t)(t & 0xffffffffu) - 1;
    unsigned gen = (unsigned)(t >> 32);

    if (i >= g_heap_n || atomic_load(&g_heap[i].gen) != gen)
        return;
    int expect = HEAP_LIVE;
    if (!atomic_compare_exchange_strong(&g_heap[i].state, &expect, HEAP_FREE)) {
        expect = HEAP_PENDING;
        atomic_compare_exchange_strong(&g_heap[i].state, &expect, HEAP_DEAD);
    }
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
    r->thread_serial = cp__tls_serial;
    r->tid = (pid_t)syscall(SYS_gettid);
    record_stack(jvmti, thread, r);
    record_class(jvmti, klass, r);
    if (cp__jvm.heap_on && g_heap_n > 0)
        r->heap_slot = heap_track(jvmti, object, r->weight, &r->heap_gen);
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

void cp__heap_publish(const cp__trace_rec *r, const cp__method_info *const *methods,
                      const int32_t *lines, int nframes, const char *class_name)
{
    if (r->heap_slot < 0 || (size_t)r->heap_slot >= g_heap_n)
        return;
    heap_slot *s = &g_heap[r->heap_slot];
    if (atomic_load(&s->gen) != r->heap_gen)
        return;
    int expect = HEAP_DEAD;
    if (atomic_compare_exchange_strong(&s->state, &expect, HEAP_FREE))
        return; /* died before we got here */
    if (nframes > g_heap_frames)
        nframes = g_heap_frames;
    memcpy(s->methods, methods, (size_t)nframes * sizeof *methods);
    memcpy(s->lines, lines, (size_t)nframes * sizeof *lines);
    s->nframes = nframes;
    s->class_name = class_name;
    expect = HEAP_PENDING;
    if (!atomic_compare_exchange_strong(&s->state, &expect, HEAP_LIVE))
        atomic_store(&s->state, HEAP_FREE); /* freed meanwhile */
}

/* Copy slot i if it is LIVE and stays so while copying (seqlock on gen). */
static bool heap_snapshot(size_t i, cp_frame *frames, int *n, int64_t *bytes, const char **cls)
{
    heap_slot *s = &g_heap[i];
    unsigned gen = atomic_load(&s->gen);

    if (atomic_load(&s->state) != HEAP_LIVE || s->gc_epoch == atomic_load(&g_gc_epoch))
        return false;
    *n = s->nframes;
    for (int k = 0; k < *n; k++) {
        const cp__method_info *m = s->methods[k];
        frames[k] = (cp_frame){m->name, NULL, m->file, s->lines[k]};
    }
    *bytes = s->bytes;
    *cls = s->class_name;
    return atomic_load(&s->state) == HEAP_LIVE && atomic_load(&s->gen) == gen;
}

void cp__heap_export(void)
{
    cp_frame *frames = g_heap_n ? calloc((size_t)g_heap_frames, sizeof *frames) : NULL;
    int64_t values[CP_V__COUNT];

    if (frames == NULL)
        return;
    for (size_t i = 0; i < g_heap_n; i++) {
        int n;
        int64_t bytes;
        const char *cls;
        if (!heap_snapshot(i, frames, &n, &bytes, &cls) || n <= 0)
            continue;
        memset(values, 0, sizeof values);
        values[CP_V_HEAP_SPACE] = bytes;
        values[CP_V_HEAP_SAMPLES] = 1;
        cp_label label = {"class name", cls, 0, NULL};
        cp_add_sample(frames, (size_t)n, values, &label, cls ? 1 : 0);
    }
    free(frames);
}
