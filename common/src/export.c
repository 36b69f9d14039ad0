/*
 * export.c — the exporter thread and its bounded queue, and the choice of
 * destinations.
 *
 * The scheduler pushes finished profiles; this thread writes and uploads
 * them so that collection never waits on disk or network. The queue holds
 * at most queue_cap profiles: when the intake is slower than the profiles
 * the oldest waiting one is dropped (counted). The exporter's state is one
 * heap block shared by its owner and its thread through a reference
 * count, so cp_stop can walk away from a thread stuck in a hanging intake
 * and the thread frees the block when it finally returns.
 */
#include "export.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "metrics.h"
#include "threads.h"

#define QUEUE_MAX 64
#define OUTCOMES 128 /* > QUEUE_MAX + 1 in flight: a waited-for job is never overwritten */

struct cp__exporter {
    pthread_mutex_t mu;          /* everything below                     */
    pthread_cond_t cv;           /* CLOCK_MONOTONIC; any state change    */
    pthread_t thread;
    cp__dest dest;
    cp__job *q[QUEUE_MAX];
    unsigned head, n;
    bool stopping, busy;
    atomic_bool abort;           /* read by transfers without mu         */
    struct {
        uint64_t seq;            /* a job exported or dropped...         */
        int err;                 /* ...and how it ended (CP_EFULL: dropped) */
    } outcome[OUTCOMES];         /* by seq % OUTCOMES                    */
    int refs;                    /* owner + thread + cp_flush callers    */
};

void cp__job_free(cp__job *j)
{
    if (!j)
        return;
    cp_buf_free(&j->pprof);
    cp__free(j->tags);
    cp__free(j->info);
    cp__free(j);
}

void cp__exporter_hold(cp__exporter *e)
{
    pthread_mutex_lock(&e->mu);
    e->refs++;
    pthread_mutex_unlock(&e->mu);
}

void cp__exporter_release(cp__exporter *e)
{
    pthread_mutex_lock(&e->mu);
    bool last = --e->refs == 0;
    pthread_mutex_unlock(&e->mu);
    if (!last)
        return;
    for (unsigned i = 0; i < e->n; i++)
        cp__job_free(e->q[(e->head + i) % QUEUE_MAX]);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    cp__free(e);
}

/* Export one job to every destination; the first error is the result. */
static int export_job(cp__exporter *e, const cp__job *j)
{
    int err = CP_OK, r;
    if (e->dest.output_dir[0] && (r = cp__export_file(&e->dest, j)) != CP_OK)
        err = r;
    if (e->dest.url[0] && (r = cp__export_http(&e->dest, j, &e->abort)) != CP_OK && err == CP_OK)
        err = r;
    if (err == CP_OK)
        cp__metrics_add_exported();
    return err;
}

static void *exporter_main(void *arg)
{
    cp__exporter *e = arg;
    cp_thread_register_self();
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->n && !e->stopping)
            pthread_cond_wait(&e->cv, &e->mu);
        if (!e->n)
            break;
        cp__job *j = e->q[e->head];
        e->head = (e->head + 1) % QUEUE_MAX;
        e->n--;
        e->busy = true;
        bool skip = atomic_load(&e->abort);
        pthread_mutex_unlock(&e->mu);
        int err = skip ? CP_ETIMEDOUT : export_job(e, j);
        pthread_mutex_lock(&e->mu);
        e->busy = false;
        e->outcome[j->seq % OUTCOMES].seq = j->seq;
        e->outcome[j->seq % OUTCOMES].err = err;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        cp__job_free(j);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    cp_thread_unregister_self();
    cp__exporter_release(e);
    return NULL;
}

cp__exporter *cp__exporter_start(const cp__dest *d)
{
    cp__exporter *e = cp__calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);
    e->dest = *d;
    e->refs = 2;
    if (cp__thread_spawn(&e->thread, exporter_main, e, "contprof-export") != 0) {
        e->refs = 1;
        cp__exporter_release(e);
        return NULL;
    }
    return e;
}

void cp__exporter_push(cp__exporter *e, cp__job *j)
{
    cp__job *dropped = NULL;
    pthread_mutex_lock(&e->mu);
    unsigned cap = e->dest.queue_cap ? e->dest.queue_cap : 1;
    if (e->n >= cap || e->n >= QUEUE_MAX) {
        dropped = e->q[e->head];
        e->head = (e->head + 1) % QUEUE_MAX;
        e->n--;
        e->outcome[dropped->seq % OUTCOMES].seq = dropped->seq; /* its waiters are answered */
        e->outcome[dropped->seq % OUTCOMES].err = CP_EFULL;
    }
    e->q[(e->head + e->n) % QUEUE_MAX] = j;
    e->n++;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (dropped) {
        cp__metrics_add_profiles_dropped(1);
        cp_log(CP_LOG_WARN, "export queue full: dropped the oldest waiting profile (#%llu)",
               (unsigned long long)dropped->seq);
        cp__job_free(dropped);
    }
}

static struct timespec abs_ts(int64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
}

int cp__exporter_wait(cp__exporter *e, uint64_t seq, int64_t deadline_ns)
{
    struct timespec ts = abs_ts(deadline_ns);
    pthread_mutex_lock(&e->mu);
    int rc = 0;
    while (e->outcome[seq % OUTCOMES].seq < seq && rc == 0)
        rc = pthread_cond_timedwait(&e->cv, &e->mu, &ts);
    uint64_t got = e->outcome[seq % OUTCOMES].seq;
    /* got > seq: the slot was reused, so seq ended long ago (fine) */
    int err = got < seq ? CP_ETIMEDOUT : got == seq ? e->outcome[seq % OUTCOMES].err : CP_OK;
    pthread_mutex_unlock(&e->mu);
    return err;
}

/* Wait for the thread to exit until deadline; true if joined. */
static bool join_until(cp__exporter *e, int64_t deadline_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* pthread_timedjoin_np uses REALTIME */
    int64_t left = deadline_ns - cp_now_ns();
    int64_t at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (left > 0 ? left : 0);
    ts = abs_ts(at);
    return pthread_timedjoin_np(e->thread, NULL, &ts) == 0;
}

void cp__exporter_stop(cp__exporter *e, int64_t deadline_ns)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (join_until(e, deadline_ns)) {
        cp__exporter_release(e);
        return;
    }
    pthread_mutex_lock(&e->mu);
    unsigned left = e->n + (e->busy ? 1u : 0u);
    atomic_store(&e->abort, true); /* transfers and retry waits give up */
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    for (unsigned i = 0; i < left; i++)
        cp__metrics_add_upload_failure();
    cp__metrics_set_error("flush deadline passed: %u profile(s) abandoned", left);
    cp_log(CP_LOG_WARN, "flush deadline passed: abandoning %u profile(s) not yet exported", left);
    /* A moment for the aborted transfer to return; then let it go. */
    if (!join_until(e, cp_now_ns() + 200 * 1000000LL))
        pthread_detach(e->thread);
    cp__exporter_release(e);
}

/* dir made absolute against the current directory now, so the host
 * program changing directory later does not move its profiles. */
static void absolute(const char *dir, char *out, size_t n)
{
    char cwd[PATH_MAX];
    const char *rel = strncmp(dir, "./", 2) == 0 ? dir + 2 : dir;
    if (dir[0] == '/' || !getcwd(cwd, sizeof(cwd)) || snprintf(out, n, "%s/%s", cwd, rel) >= (int)n)
        snprintf(out, n, "%s", dir); /* too long to prefix: keep it relative */
}

void cp__dest_from_config(const cp_config *c, cp__dest *d)
{
    memset(d, 0, sizeof(*d));
    d->timeout_ms = c->upload_timeout_ms;
    d->retries = (int)c->upload_retries;
    d->queue_cap = (unsigned)c->upload_queue;
    if (c->agent_url[0]) {
        const char *base = c->agent_url;
        if (strncmp(base, "unix://", 7) == 0) {
            snprintf(d->unix_socket, sizeof(d->unix_socket), "%s", base + 7);
            base = "http://localhost";
        }
        snprintf(d->url, sizeof(d->url), "%s/profiling/v1/input", base);
    } else if (c->api_key[0]) {
        snprintf(d->url, sizeof(d->url), "https://intake.profile.%s/api/v2/profile", c->site);
        snprintf(d->api_key, sizeof(d->api_key), "%s", c->api_key);
    }
    if (c->output_dir[0] || !d->url[0])
        absolute(c->output_dir[0] ? c->output_dir : "profiles", d->output_dir, sizeof(d->output_dir));
}

char *cp__dest_describe(const cp__dest *d)
{
    char line[sizeof(d->output_dir) + sizeof(d->url) + sizeof(d->unix_socket) + 160] = "";
    size_t n = 0;
    if (d->output_dir[0])
        n += (size_t)snprintf(line, sizeof(line), "profiles written to %s (go tool pprof -top <file>)",
                              d->output_dir);
    if (d->url[0] && n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%sprofiles uploaded to %s%s%s%s", n ? "\n" : "",
                              d->url, d->unix_socket[0] ? " via unix socket " : "", d->unix_socket,
                              d->api_key[0] ? " (agentless)" : "");
    return cp__strdup(line);
}
