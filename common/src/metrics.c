/*
 * metrics.c — self-metrics: lock-free counters and the profiler's own cost.
 *
 * Counters are relaxed atomics so front ends can bump them from signal
 * handlers. Cost accounting: profiler threads register themselves; at the
 * end of every profile the scheduler reads their CPU clocks (through
 * pthread_getcpuclockid, so another thread's clock can be read) and the
 * process CPU clock, and stores the deltas. A thread that unregisters
 * hands its CPU time to g_retired_ns so its cost is not lost.
 */
#include "metrics.h"
#include "contprof_os.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 32

typedef struct counters {
    _Atomic uint64_t taken, dropped, overflowed, exported, profiles_dropped, failures, retries;
    _Atomic int64_t hook_ns;
} counters;

typedef struct reg_thread {
    bool used;
    pthread_t tid;
    clockid_t clock;
    int64_t base_ns; /* thread CPU when it registered   */
    int64_t last_ns; /* last value read (thread may die) */
} reg_thread;

static counters g_c;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* everything below */
static reg_thread g_threads[MAX_THREADS];
static int64_t g_retired_ns;
static int64_t g_span_proc, g_span_prof, g_span_hook; /* values at span start */
static int64_t g_last_proc, g_last_prof, g_last_hook;
static double g_last_pct;
static char g_last_error[256];

int64_t cp_now_ns(void)
{
    return cp_os_kernel_clock_ns(CLOCK_MONOTONIC); /* signal-safe; see contprof_os.h */
}

void cp_metrics_add_taken(uint64_t n) { atomic_fetch_add_explicit(&g_c.taken, n, memory_order_relaxed); }
void cp_metrics_add_dropped(uint64_t n) { atomic_fetch_add_explicit(&g_c.dropped, n, memory_order_relaxed); }
void cp_metrics_add_hook_ns(int64_t ns) { atomic_fetch_add_explicit(&g_c.hook_ns, ns, memory_order_relaxed); }
void cp__metrics_add_overflowed(uint64_t n) { atomic_fetch_add_explicit(&g_c.overflowed, n, memory_order_relaxed); }
void cp__metrics_add_exported(void) { atomic_fetch_add_explicit(&g_c.exported, 1, memory_order_relaxed); }
void cp__metrics_add_profiles_dropped(uint64_t n) { atomic_fetch_add_explicit(&g_c.profiles_dropped, n, memory_order_relaxed); }
void cp__metrics_add_upload_failure(void) { atomic_fetch_add_explicit(&g_c.failures, 1, memory_order_relaxed); }
void cp__metrics_add_upload_retry(void) { atomic_fetch_add_explicit(&g_c.retries, 1, memory_order_relaxed); }

void cp__metrics_set_error(const char *fmt, ...)
{
    char line[sizeof(g_last_error)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g_lock);
    memcpy(g_last_error, line, sizeof(line));
    pthread_mutex_unlock(&g_lock);
}

void cp_metrics_get(cp_metrics *out)
{
    memset(out, 0, sizeof(*out));
    out->samples_taken = atomic_load(&g_c.taken);
    out->samples_dropped = atomic_load(&g_c.dropped);
    out->samples_overflowed = atomic_load(&g_c.overflowed);
    out->profiles_exported = atomic_load(&g_c.exported);
    out->profiles_dropped = atomic_load(&g_c.profiles_dropped);
    out->upload_failures = atomic_load(&g_c.failures);
    out->upload_retries = atomic_load(&g_c.retries);
    pthread_mutex_lock(&g_lock);
    out->last_profile_cpu_ns = g_last_proc;
    out->last_profiler_cpu_ns = g_last_prof;
    out->last_hook_ns = g_last_hook;
    out->last_overhead_pct = g_last_pct;
    memcpy(out->last_error, g_last_error, sizeof(out->last_error));
    pthread_mutex_unlock(&g_lock);
}

int cp_thread_register_self(void)
{
    clockid_t cid;
    if (pthread_getcpuclockid(pthread_self(), &cid) != 0)
        return CP_EINVAL;
    int64_t now = cp_os_kernel_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    int err = CP_EFULL;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < MAX_THREADS; i++) {
        if (g_threads[i].used && pthread_equal(g_threads[i].tid, pthread_self()))
            err = CP_OK; /* registered already: counting it twice would double its cost */
    }
    for (int i = 0; i < MAX_THREADS && err != CP_OK; i++) {
        if (g_threads[i].used)
            continue;
        g_threads[i] = (reg_thread){true, pthread_self(), cid, now, now};
        err = CP_OK;
    }
    pthread_mutex_unlock(&g_lock);
    return err;
}

void cp_thread_unregister_self(void)
{
    int64_t now = cp_os_kernel_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < MAX_THREADS; i++) {
        if (g_threads[i].used && pthread_equal(g_threads[i].tid, pthread_self())) {
            g_retired_ns += now - g_threads[i].base_ns;
            g_threads[i].used = false;
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
}

/* CPU of every profiler thread since it registered. g_lock held. A thread
 * that exited without unregistering keeps its last value. */
static int64_t profiler_cpu_locked(void)
{
    int64_t sum = g_retired_ns;
    for (int i = 0; i < MAX_THREADS; i++) {
        reg_thread *t = &g_threads[i];
        if (!t->used)
            continue;
        int64_t v = cp_os_kernel_clock_ns(t->clock);
        if (v >= t->last_ns)
            t->last_ns = v;
        sum += t->last_ns - t->base_ns;
    }
    return sum;
}

void cp__metrics_span_begin(void)
{
    pthread_mutex_lock(&g_lock);
    g_span_proc = cp_os_kernel_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    g_span_prof = profiler_cpu_locked();
    g_span_hook = atomic_load(&g_c.hook_ns);
    pthread_mutex_unlock(&g_lock);
}

void cp__metrics_span_end(void)
{
    pthread_mutex_lock(&g_lock);
    int64_t proc = cp_os_kernel_clock_ns(CLOCK_PROCESS_CPUTIME_ID), prof = profiler_cpu_locked();
    int64_t hook = atomic_load(&g_c.hook_ns);
    g_last_proc = proc - g_span_proc;
    g_last_prof = prof - g_span_prof;
    g_last_hook = hook - g_span_hook;
    /* Relative to what the program alone used (process CPU minus ours), as
     * a with/without comparison measures it; the program's share is at
     * least 1% of the process so that the figure stays finite. */
    int64_t cost = g_last_prof + g_last_hook, own = g_last_proc - cost;
    if (own < g_last_proc / 100)
        own = g_last_proc / 100;
    g_last_pct = own > 0 ? 100.0 * (double)cost / (double)own : 0.0;
    g_span_proc = proc;
    g_span_prof = prof;
    g_span_hook = hook;
    pthread_mutex_unlock(&g_lock);
}

void cp__metrics_json(cp__json *j, const char *key, const cp_metrics *m)
{
    cp__json_obj_begin(j, key);
    cp__json_uint(j, "samples_taken", m->samples_taken);
    cp__json_uint(j, "samples_dropped", m->samples_dropped);
    cp__json_uint(j, "samples_overflowed", m->samples_overflowed);
    cp__json_uint(j, "profiles_exported", m->profiles_exported);
    cp__json_uint(j, "profiles_dropped", m->profiles_dropped);
    cp__json_uint(j, "upload_failures", m->upload_failures);
    cp__json_uint(j, "upload_retries", m->upload_retries);
    cp__json_int(j, "profile_cpu_ns", m->last_profile_cpu_ns);
    cp__json_int(j, "profiler_cpu_ns", m->last_profiler_cpu_ns);
    cp__json_int(j, "hook_ns", m->last_hook_ns);
    cp__json_double(j, "overhead_pct", m->last_overhead_pct);
    cp__json_str(j, "last_error", m->last_error);
    cp__json_obj_end(j);
}

void cp__metrics_after_fork(void)
{
    g_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    memset(g_threads, 0, sizeof(g_threads));
    g_retired_ns = g_span_proc = g_span_prof = g_span_hook = 0;
    g_last_proc = g_last_prof = g_last_hook = 0;
    g_last_pct = 0;
    g_last_error[0] = 0;
    atomic_store(&g_c.taken, 0);
    atomic_store(&g_c.dropped, 0);
    atomic_store(&g_c.overflowed, 0);
    atomic_store(&g_c.exported, 0);
    atomic_store(&g_c.profiles_dropped, 0);
    atomic_store(&g_c.failures, 0);
    atomic_store(&g_c.retries, 0);
    atomic_store(&g_c.hook_ns, 0);
}
