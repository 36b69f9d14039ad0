/*
 * scheduler.c — the run's life cycle: cp_start/cp_stop/cp_flush/fork, and
 * the one scheduler thread that rotates the profile every upload_period.
 *
 * Locks: g_life serialises start/stop/fork and guards g_started and g_exp
 * (cp_flush only takes a reference to the exporter under it); g_smu/g_scv
 * carry requests (stop, flush) to the scheduler thread.
 * Order: g_life before g_smu. The scheduler never takes g_life, so cp_stop
 * can join it while holding g_life.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "collector.h"
#include "config_internal.h"
#include "curl_dl.h"
#include "diagnose.h"
#include "export.h"
#include "metrics.h"
#include "runtime_info.h"
#include "summary.h"
#include "tags.h"
#include "contprof_os.h"

static pthread_mutex_t g_life = PTHREAD_MUTEX_INITIALIZER;
static bool g_started;          /* g_life */
static cp__exporter *g_exp;     /* g_life; read by the scheduler thread while it runs */
static cp__dest g_dest;         /* g_life */
static pthread_t g_thread;      /* g_life */
static pid_t g_owner;           /* g_life; the process that started the run */
static int64_t g_period_ns;     /* fixed while running */

static pthread_mutex_t g_smu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_scv;    /* CLOCK_MONOTONIC, made in init_cond */
static bool g_stop_req;         /* g_smu */
static atomic_bool g_diag_abort; /* ends the start-up checks at stop       */
static bool g_diag_done;        /* checked once per process tree: a forked
                                   child inherits true and does not repeat */
static bool g_sched_done;       /* g_smu: the scheduler made its last rotation */
static uint64_t g_flush_req, g_flush_served, g_flush_job; /* g_smu */

static void init_cond(void)
{
    cp_os_cond_init_monotonic(&g_scv);
}

static pthread_once_t g_cond_once = PTHREAD_ONCE_INIT;

/* Rotate and queue the finished profile; its seq, 0 when none. */
static uint64_t rotate_and_push(bool last)
{
    cp__job *j = cp__collector_rotate(last);
    if (!j)
        return 0;
    uint64_t seq = j->seq;
    cp__exporter_push(g_exp, j);
    return seq;
}

static void wait_for_work(int64_t next)
{
    while (!g_stop_req && g_flush_req == g_flush_served && cp_now_ns() < next)
        cp_os_cond_wait_until(&g_scv, &g_smu, next);
}

static void *scheduler_main(void *arg)
{
    (void)arg;
    cp_thread_register_self();
    if (!g_diag_done) {
        /* Broken destinations are reported now, before the first profile
         * is due (bounded: a few seconds, ended early by cp_stop). */
        g_diag_done = true;
        cp__diagnose_at_start(&g_dest, &g_diag_abort);
    }
    int64_t next = cp_now_ns() + g_period_ns;
    pthread_mutex_lock(&g_smu);
    for (bool last = false; !last;) {
        wait_for_work(next);
        last = g_stop_req;
        uint64_t req = g_flush_req;
        pthread_mutex_unlock(&g_smu);
        uint64_t seq = rotate_and_push(last);
        pthread_mutex_lock(&g_smu);
        g_flush_served = req;
        g_flush_job = seq;
        pthread_cond_broadcast(&g_scv);
        int64_t now = cp_now_ns();
        if (now >= next) /* a late wake-up starts the next period now, no catch-up burst */
            next = now - next > g_period_ns ? now + g_period_ns : next + g_period_ns;
    }
    g_sched_done = true; /* flush requests after this are never served */
    pthread_cond_broadcast(&g_scv);
    pthread_mutex_unlock(&g_smu);
    cp_thread_unregister_self();
    return NULL;
}

static int start_locked(const cp_runtime_desc *rt)
{
    cp__tags_set_runtime(rt);
    const cp_config *c = cp_config_get();
    g_period_ns = c->upload_period_s * 1000000000LL;
    g_owner = getpid();
    int err = cp__collector_open(rt);
    if (err != CP_OK) {
        cp_log(CP_LOG_ERROR, "cannot start: %s", err == CP_EINVAL ? "no profile type is enabled" : cp_strerror(err));
        return err;
    }
    cp__dest_from_config(c, &g_dest);
    /* libcurl only where profiles are uploaded (see curl_dl.h), opened
     * now rather than from the exporter thread. */
    if ((g_dest.url[0] || g_dest.pyroscope_url[0]) && !cp__curl_load())
        cp_log(CP_LOG_DEBUG, "libcurl unavailable: %s", cp__curl_error()); /* the destination check says it */
    cp__dest_outcomes_reset();
    if (g_dest.api_key[0])
        cp_log(CP_LOG_INFO, "agentless upload enabled: profiles go to %s", g_dest.url);
    else if (c->agentless)
        cp_log(CP_LOG_WARN, "agentless=true but no api_key is set: nothing is uploaded to %s", c->site);
    g_exp = cp__exporter_start(&g_dest);
    pthread_mutex_lock(&g_smu);
    g_stop_req = g_sched_done = false;
    atomic_store(&g_diag_abort, false);
    g_flush_req = g_flush_served = g_flush_job = 0;
    pthread_mutex_unlock(&g_smu);
    cp__summary_reset();
    cp__metrics_span_begin();
    if (!g_exp || cp_os_thread_start(&g_thread, scheduler_main, NULL, "contprof-sched") != 0) {
        cp__collector_close();
        cp__exporter_stop(g_exp, cp_now_ns());
        g_exp = NULL;
        cp_log(CP_LOG_ERROR, "cannot start: no memory or threads for the exporter");
        return CP_ENOMEM;
    }
    return CP_OK;
}

/* Forget the parent's run in a forked child that never called
 * cp_after_fork_child (its threads are gone: joining them would hang). */
static void forget_foreign_run(void)
{
    if (g_started && g_owner != getpid())
        cp__after_fork_reset();
}

/* True on the scheduler thread itself (i.e. inside the export hook), where
 * waiting for the scheduler would wait forever. */
static bool on_scheduler(void)
{
    return g_started && pthread_equal(pthread_self(), g_thread);
}

int cp_start(const cp_runtime_desc *rt)
{
    if (!rt)
        return CP_EINVAL;
    pthread_once(&g_cond_once, init_cond);
    forget_foreign_run();
    pthread_mutex_lock(&g_life);
    int err = g_started ? CP_ESTATE : start_locked(rt);
    g_started = g_started || err == CP_OK;
    pthread_mutex_unlock(&g_life);
    if (err == CP_OK && cp_log_enabled(CP_LOG_INFO)) {
        char *where = cp__dest_describe(&g_dest);
        cp_log(CP_LOG_INFO, "started (pid %d, runtime-id %s); %s", (int)getpid(), cp_runtime_id(),
               where ? where : "");
        cp__free(where);
    }
    return err;
}

void cp_stop(void)
{
    forget_foreign_run();
    if (on_scheduler()) {
        cp_log(CP_LOG_ERROR, "cp_stop called from the export hook; ignored");
        return;
    }
    pthread_mutex_lock(&g_life);
    if (!g_started) {
        pthread_mutex_unlock(&g_life);
        return;
    }
    pthread_mutex_lock(&g_smu);
    g_stop_req = true;
    atomic_store(&g_diag_abort, true);
    pthread_cond_broadcast(&g_scv);
    pthread_mutex_unlock(&g_smu);
    pthread_join(g_thread, NULL); /* it exports the last partial profile */
    int64_t deadline = cp_now_ns() + cp_config_get()->flush_deadline_ms * 1000000LL;
    cp__exporter_stop(g_exp, deadline);
    g_exp = NULL;
    g_started = false;
    pthread_mutex_unlock(&g_life);
    cp_metrics m;
    cp_metrics_get(&m);
    cp_log(CP_LOG_INFO, "stopped: %llu profiles exported, %llu dropped, %llu upload failures",
           (unsigned long long)m.profiles_exported, (unsigned long long)m.profiles_dropped,
           (unsigned long long)m.upload_failures);
}

/* Ask the scheduler for a rotation; the seq of the job it made, or 0. */
static int request_rotation(int64_t deadline, uint64_t *seq)
{
    pthread_mutex_lock(&g_smu);
    uint64_t mine = ++g_flush_req;
    pthread_cond_broadcast(&g_scv);
    int rc = 0;
    while (g_flush_served < mine && !g_sched_done && rc == 0)
        rc = cp_os_cond_wait_until(&g_scv, &g_smu, deadline);
    bool served = g_flush_served >= mine;
    int err = served ? CP_OK : g_sched_done ? CP_ESTATE : CP_ETIMEDOUT;
    *seq = g_flush_job;
    pthread_mutex_unlock(&g_smu);
    return err;
}

int cp_flush(int64_t timeout_ms)
{
    int64_t deadline = cp_now_ns() + (timeout_ms > 0 ? timeout_ms : 0) * 1000000LL;
    pthread_once(&g_cond_once, init_cond);
    forget_foreign_run();
    if (on_scheduler())
        return CP_ESTATE;
    /* Hold the exporter rather than g_life while waiting, so a concurrent
     * cp_stop is never delayed by a flush's timeout. */
    pthread_mutex_lock(&g_life);
    cp__exporter *e = g_started ? g_exp : NULL;
    if (e)
        cp__exporter_hold(e);
    pthread_mutex_unlock(&g_life);
    if (!e)
        return CP_ESTATE;
    uint64_t seq = 0;
    int err = request_rotation(deadline, &seq);
    if (err == CP_OK) /* seq 0: the rotation could not make a profile (no memory) */
        err = seq ? cp__exporter_wait(e, seq, deadline) : CP_ENOMEM;
    cp__exporter_release(e);
    return err;
}

void cp__after_fork_reset(void)
{
    /* The parent's threads do not exist here and any lock may have been
     * held by one of them: re-create every lock, abandon shared state. */
    g_life = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    g_smu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    init_cond();
    cp__collector_bury(g_exp);
    g_exp = NULL;
    g_started = false;
    cp__collector_after_fork();
    cp__metrics_after_fork();
    cp__tags_after_fork();
    cp__runtime_info_after_fork();
    cp__summary_after_fork();
    cp__export_after_fork();
    cp__config_after_fork();
}

int cp_after_fork_child(void)
{
    bool was = g_started;
    cp__after_fork_reset();
    if (!was)
        return CP_OK;
    const cp_runtime_desc *old = cp__tags_runtime();
    char fam[128], lang[128], rtn[128], ver[128];
    snprintf(fam, sizeof(fam), "%s", old->family);
    snprintf(lang, sizeof(lang), "%s", old->language);
    snprintf(rtn, sizeof(rtn), "%s", old->runtime);
    snprintf(ver, sizeof(ver), "%s", old->runtime_version);
    cp_runtime_desc rt = {fam, lang, rtn, ver, old->kinds};
    return cp_start(&rt);
}

char *cp_destinations_describe(void)
{
    cp__dest d;
    pthread_mutex_lock(&g_life);
    if (g_started)
        d = g_dest;
    else
        cp__dest_from_config(cp_config_get(), &d);
    pthread_mutex_unlock(&g_life);
    return cp__dest_describe_results(&d);
}
