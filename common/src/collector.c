/*
 * collector.c — the process-wide current profile.
 *
 * Front ends add samples with cp_add_sample under g_mu; the scheduler
 * swaps in a fresh profile (allocated before taking the lock, so the lock
 * is held only for a pointer swap) and encodes the old one off the lock:
 * collection never waits on encoding or export. After the final swap
 * g_cur is NULL and cp_add_sample answers CP_ESTATE, so a late thread can
 * never reach freed state; g_mu itself is static and never destroyed.
 */
#include "collector.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "frame_dict.h"
#include "metrics.h"
#include "runtime_info.h"
#include "summary.h"
#include "tags.h"

#define GRAVEYARD 16

static const cp_sample_type g_all_types[CP_V__COUNT] = {
    {"cpu-time", "nanoseconds"},   {"cpu-samples", "count"},  {"wall-time", "nanoseconds"},
    {"wall-samples", "count"},     {"alloc-space", "bytes"},  {"alloc-samples", "count"},
    {"heap-space", "bytes"},       {"heap-live-samples", "count"},
    {"lock-acquire-wait", "nanoseconds"}, {"lock-acquire", "count"}, {"exception-samples", "count"},
    {"lock-release-hold", "nanoseconds"}, {"lock-release", "count"},
};

/* Column -> kind: pairs in order, then the hold pair. */
static unsigned kind_of_column(int i)
{
    return i >= CP_V_LOCK_HOLD ? CP_KIND_LOCK_HOLD : 1u << (i / 2);
}

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* the six below */
static cp_frame_dict *g_dict;                      /* process lifetime, never freed */
static cp_profile *g_cur;
static int64_t g_cur_start_ns;                     /* CLOCK_MONOTONIC ns (see rotate) */
static cp_export_hook g_hook;
static void *g_hook_ctx;
static uint64_t g_seq;                             /* profiles made, process-wide */

/* Fixed while running (set by open before any reader exists). */
static int g_col_of[CP_V__COUNT];                  /* column -> type index, -1 */
static int g_col_src[CP_V__COUNT];                 /* type index -> column     */
static cp_sample_type g_types[CP_V__COUNT];
static size_t g_ntypes;
static cp_sample_type g_period_type;
static int64_t g_period;
static cp_limits g_limits;

/* Held while a finished profile is summarised and encoded, and by fork()
 * (pthread_atfork), so a child is never forked while the scheduler holds
 * a lock inside that work (the run summary's, the metrics') that the
 * child would then find locked forever. */
static pthread_mutex_t g_rot = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void *g_graveyard[GRAVEYARD];               /* see cp__collector_after_fork */
static unsigned g_graves;

static int64_t unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cp_set_export_hook(cp_export_hook fn, void *ctx)
{
    pthread_mutex_lock(&g_mu);
    g_hook = fn;
    g_hook_ctx = ctx;
    pthread_mutex_unlock(&g_mu);
}

static unsigned enabled_kinds(const cp_runtime_desc *rt, const cp_config *c)
{
    unsigned on = (c->lock_enabled ? CP_KIND_LOCK | CP_KIND_LOCK_HOLD : 0u) | (c->exception_enabled ? CP_KIND_EXCEPTION : 0u);
    on |= (c->cpu_enabled ? CP_KIND_CPU : 0u) | (c->wall_enabled ? CP_KIND_WALL : 0u);
    on |= (c->alloc_enabled ? CP_KIND_ALLOC : 0u) | (c->heap_enabled ? CP_KIND_HEAP : 0u);
    return rt->kinds & on;
}

/* Period: the first enabled of cpu, wall, alloc (what one sample means). */
static void pick_period(unsigned kinds, const cp_config *c)
{
    g_period_type = (cp_sample_type){NULL, NULL};
    g_period = 0;
    if (kinds & CP_KIND_CPU)
        g_period_type = g_all_types[CP_V_CPU_TIME], g_period = c->cpu_interval_us * 1000;
    else if (kinds & CP_KIND_WALL)
        g_period_type = g_all_types[CP_V_WALL_TIME], g_period = c->wall_interval_us * 1000;
    else if (kinds & CP_KIND_ALLOC)
        g_period_type = g_all_types[CP_V_ALLOC_SPACE], g_period = c->alloc_interval_bytes;
}

static void rot_lock(void) { pthread_mutex_lock(&g_rot); }
static void rot_unlock(void) { pthread_mutex_unlock(&g_rot); }
static void rot_child(void) { g_rot = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER; }
static void register_atfork(void) { pthread_atfork(rot_lock, rot_unlock, rot_child); }

int cp__collector_open(const cp_runtime_desc *rt)
{
    pthread_once(&g_atfork_once, register_atfork);
    const cp_config *c = cp_config_get();
    unsigned kinds = enabled_kinds(rt, c);
    g_ntypes = 0;
    for (int i = 0; i < CP_V__COUNT; i++) {
        bool on = kinds & kind_of_column(i);
        g_col_of[i] = on ? (int)g_ntypes : -1;
        if (on) {
            g_col_src[g_ntypes] = i;
            g_types[g_ntypes++] = g_all_types[i];
        }
    }
    if (!g_ntypes)
        return CP_EINVAL;
    pick_period(kinds, c);
    g_limits = (cp_limits){.max_samples = (size_t)c->max_samples, .max_frames = (unsigned)c->max_frames};
    cp_profile *p = cp_profile_new(g_types, g_ntypes, &g_limits);
    if (!p)
        return CP_ENOMEM;
    pthread_mutex_lock(&g_mu);
    g_cur = p;
    g_cur_start_ns = cp_now_ns();
    pthread_mutex_unlock(&g_mu);
    return CP_OK;
}

void cp__collector_close(void)
{
    pthread_mutex_lock(&g_mu);
    cp_profile *p = g_cur;
    g_cur = NULL;
    pthread_mutex_unlock(&g_mu);
    cp_profile_free(p);
}

/* The dictionary lives as long as the process: front ends cache its ids
 * across stop/start and fork. */
int cp_frame_intern(const cp_frame *f, uint32_t *id)
{
    if (!f || !f->name || !id)
        return CP_EINVAL;
    pthread_mutex_lock(&g_mu);
    if (!g_dict)
        g_dict = cp_frame_dict_new(0, 0);
    int err = g_dict ? cp_frame_dict_intern(g_dict, f, id) : CP_ENOMEM;
    pthread_mutex_unlock(&g_mu);
    return err;
}

/* Add a stack given as frames or (frames NULL) as dictionary ids. */
static int add_sample(const cp_frame *frames, const uint32_t *ids, size_t nframes,
                      const int64_t *values, const cp_label *labels, size_t nlabels)
{
    if (!values || (nframes && !frames && !ids) || (nlabels && !labels))
        return CP_EINVAL;
    int64_t v[CP_V__COUNT];
    pthread_mutex_lock(&g_mu);
    if (!g_cur || (!frames && nframes && !g_dict)) {
        pthread_mutex_unlock(&g_mu);
        return g_cur ? CP_EINVAL : CP_ESTATE; /* no dictionary: no id is valid */
    }
    for (size_t t = 0; t < g_ntypes; t++)
        v[t] = values[g_col_src[t]];
    int err = frames || !nframes ? cp_profile_add(g_cur, frames, nframes, v, labels, nlabels)
                                 : cp_profile_add_ids(g_cur, g_dict, ids, nframes, v, labels, nlabels);
    pthread_mutex_unlock(&g_mu);
    return err;
}

int cp_add_sample(const cp_frame *frames, size_t nframes, const int64_t *values, const cp_label *labels,
                  size_t nlabels)
{
    return add_sample(frames, NULL, nframes, values, labels, nlabels);
}

int cp_add_sample_ids(const uint32_t *ids, size_t nframes, const int64_t *values,
                      const cp_label *labels, size_t nlabels)
{
    if (nframes && !ids)
        return CP_EINVAL;
    return add_sample(NULL, ids, nframes, values, labels, nlabels);
}

bool cp_is_running(void)
{
    pthread_mutex_lock(&g_mu);
    bool on = g_cur != NULL;
    pthread_mutex_unlock(&g_mu);
    return on;
}

static void run_hook(void)
{
    pthread_mutex_lock(&g_mu);
    cp_export_hook fn = g_hook;
    void *ctx = g_hook_ctx;
    pthread_mutex_unlock(&g_mu);
    if (fn)
        fn(ctx); /* outside g_mu: the hook adds samples */
}

/* Encode p into a new job; p stays owned by the caller. */
static cp__job *make_job(cp_profile *p, int64_t start, int64_t end, uint64_t seq)
{
    cp_metrics m;
    cp_metrics_get(&m);
    cp__job *j = cp__calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    *j = (cp__job){.seq = seq, .start_ns = start, .end_ns = end, .pid = (int)getpid()};
    cp_buf_init(&j->pprof, 0);
    snprintf(j->family, sizeof(j->family), "%s", cp__tags_runtime()->family);
    cp__service_name(j->service, sizeof(j->service));
    int err = cp_profile_encode(p, true, &j->pprof);
    j->tags = err == CP_OK ? cp_tags_string() : NULL;
    j->info = j->tags ? cp__runtime_info_json(&m) : NULL;
    if (!j->info) {
        cp__metrics_set_error("cannot encode profile #%llu: %s", (unsigned long long)seq,
                              cp_strerror(err != CP_OK ? err : CP_ENOMEM));
        cp__job_free(j);
        return NULL;
    }
    return j;
}

/* Stamp, account and summarise a finished profile, then encode it. */
static cp__job *finish(cp_profile *p, int64_t start, int64_t end, uint64_t seq)
{
    cp_profile_set_time(p, start, end - start);
    if (g_period_type.type)
        cp_profile_set_period(p, &g_period_type, g_period);
    cp_profile_add_comment(p, "contprof " CP_PROFILER_VERSION);
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    cp__metrics_add_overflowed(st.overflowed);
    cp__summary_merge(p, g_col_of, CP_V__COUNT);
    cp__metrics_span_end();
    cp__job *j = make_job(p, start, end, seq);
    if (cp_log_enabled(CP_LOG_DEBUG)) {
        static uint64_t dropped_before; /* scheduler thread only */
        cp_metrics m;
        cp_metrics_get(&m);
        uint64_t dropped = m.samples_dropped - dropped_before;
        dropped_before = m.samples_dropped;
        cp_log(CP_LOG_DEBUG, "profile #%llu (%.1f s): %zu distinct samples from %llu adds; %llu dropped by the front "
               "end (buffers full or contended), %llu into [overflow] (tables full); profiler cost %.3f%% "
               "(threads %lld us + hooks %lld us of %lld us process CPU)%s", (unsigned long long)seq,
               (double)(end - start) / 1e9, st.samples, (unsigned long long)st.adds, (unsigned long long)dropped,
               (unsigned long long)st.overflowed, m.last_overhead_pct, (long long)m.last_profiler_cpu_ns / 1000,
               (long long)m.last_hook_ns / 1000, (long long)m.last_profile_cpu_ns / 1000,
               seq == 1 ? " (the first profile includes start-up)" : "");
    }
    return j;
}

cp__job *cp__collector_rotate(bool last)
{
    run_hook();
    cp_profile *fresh = last ? NULL : cp_profile_new(g_types, g_ntypes, &g_limits);
    if (!last && !fresh)
        return NULL; /* keep collecting into the current one; retry next period */
    /* A profile's length is measured on CLOCK_MONOTONIC and its end stamped
     * with the wall clock now: a wall-clock step (NTP, an operator, a VM
     * resume) between two rotations never yields a negative or hour-long
     * duration; the profile then starts at end - duration. */
    int64_t mono = cp_now_ns(), now = unix_ns();
    pthread_mutex_lock(&g_mu);
    cp_profile *old = g_cur;
    int64_t start = g_cur_start_ns;
    g_cur = fresh;
    g_cur_start_ns = mono;
    uint64_t seq = old ? ++g_seq : 0;
    pthread_mutex_unlock(&g_mu);
    if (!old)
        return NULL;
    int64_t len = mono > start ? mono - start : 0;
    rot_lock();
    cp__job *j = finish(old, now - len, now, seq);
    cp_profile_free(old);
    rot_unlock();
    return j;
}

void cp__collector_after_fork(void)
{
    g_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    cp__frame_dict_after_fork(g_dict); /* ids the front end holds stay valid */
    /* A parent thread may have been inside cp_profile_add at fork time, so
     * the copy may be inconsistent: never touch it, keep it reachable. */
    if (g_cur && g_graves < GRAVEYARD)
        g_graveyard[g_graves++] = g_cur;
    g_cur = NULL;
    g_seq = 0;
}

void *cp__collector_bury(void *p)
{
    if (p && g_graves < GRAVEYARD)
        g_graveyard[g_graves++] = p;
    return p;
}
