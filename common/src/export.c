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

#include "config_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "metrics.h"
#include "contprof_os.h"

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

/* Outcomes per destination kind since the run started, so that the exit
 * line says what really happened: [0] files, [1] intake uploads. */
static atomic_uint_fast64_t g_dest_ok[3], g_dest_failed[3]; /* [2] Pyroscope */

static void count_outcome(int kind, int r)
{
    atomic_fetch_add(r == CP_OK ? &g_dest_ok[kind] : &g_dest_failed[kind], 1);
}

/* Export one job to every destination; the first error is the result. */
static int export_job(cp__exporter *e, const cp__job *j)
{
    int err = CP_OK, r;
    if (e->dest.output_dir[0]) {
        count_outcome(0, r = cp__export_file(&e->dest, j));
        err = r;
    }
    if (e->dest.url[0]) {
        count_outcome(1, r = cp__export_http(&e->dest, j, &e->abort));
        if (err == CP_OK)
            err = r;
    }
    if (e->dest.pyroscope_url[0]) {
        count_outcome(2, r = cp__export_pyroscope(&e->dest, j, &e->abort));
        if (err == CP_OK)
            err = r;
    }
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
    pthread_mutex_init(&e->mu, NULL);
    cp_os_cond_init_monotonic(&e->cv);
    e->dest = *d;
    e->refs = 2;
    if (cp_os_thread_start(&e->thread, exporter_main, e, "contprof-export") != 0) {
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

int cp__exporter_wait(cp__exporter *e, uint64_t seq, int64_t deadline_ns)
{
    pthread_mutex_lock(&e->mu);
    int rc = 0;
    while (e->outcome[seq % OUTCOMES].seq < seq && rc == 0)
        rc = cp_os_cond_wait_until(&e->cv, &e->mu, deadline_ns);
    uint64_t got = e->outcome[seq % OUTCOMES].seq;
    /* got > seq: the slot was reused, so seq ended long ago (fine) */
    int err = got < seq ? CP_ETIMEDOUT : got == seq ? e->outcome[seq % OUTCOMES].err : CP_OK;
    pthread_mutex_unlock(&e->mu);
    return err;
}

/* Time kept before the deadline for an aborted transfer to return (its
 * poll wakes every 50 ms); at most half of what is left. */
enum { ABORT_GRACE_NS = 250 * 1000000LL, LATE_JOIN_NS = 2000 * 1000000LL };

void cp__exporter_stop(cp__exporter *e, int64_t deadline_ns)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    int64_t left_ns = deadline_ns - cp_now_ns();
    int64_t grace = left_ns / 2 < ABORT_GRACE_NS ? (left_ns > 0 ? left_ns / 2 : 0) : ABORT_GRACE_NS;
    if (cp_os_join_until(e->thread, deadline_ns - grace)) {
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
    /* An aborted transfer returns within its poll interval; only a thread
     * stuck outside curl (a hung disk) is let go, late, to free itself. */
    if (cp_os_join_until(e->thread, deadline_ns) ||
        cp_os_join_until(e->thread, deadline_ns + LATE_JOIN_NS)) {
        cp__exporter_release(e);
        return;
    }
    cp_log(CP_LOG_WARN, "exporter thread still busy after the flush deadline; leaving it");
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
    d->max_bytes = c->output_max_mb * 1024 * 1024;
    d->max_age_s = c->output_max_age_h * 3600;
    if (c->agent_url[0]) {
        const char *base = c->agent_url;
        if (strncmp(base, "unix://", 7) == 0) {
            snprintf(d->unix_socket, sizeof(d->unix_socket), "%s", base + 7);
            base = "http://localhost";
        }
        snprintf(d->url, sizeof(d->url), "%s/profiling/v1/input", base);
    } else if (c->agentless && c->api_key[0]) {
        /* Profile data leaves the host only on an explicit opt-in: an API
         * key in the environment alone (other tools read DD_API_KEY) sends
         * nothing anywhere. */
        snprintf(d->url, sizeof(d->url), "https://intake.profile.%s/api/v2/profile", c->site);
        snprintf(d->api_key, sizeof(d->api_key), "%s", c->api_key);
    }
    char buf[32];
    snprintf(d->proxy, sizeof(d->proxy), "%s", cp__config_text("proxy_url", buf, sizeof(buf)));
    snprintf(d->ca_file, sizeof(d->ca_file), "%s", cp__config_text("ca_file", buf, sizeof(buf)));
    const char *pyro = cp__config_text("pyroscope_url", buf, sizeof(buf));
    size_t pl = strlen(pyro);
    while (pl && pyro[pl - 1] == '/')
        pl--;
    snprintf(d->pyroscope_url, sizeof(d->pyroscope_url), "%.*s", (int)pl, pyro);
    snprintf(d->pyroscope_auth, sizeof(d->pyroscope_auth), "%s", cp__config_text("pyroscope_basic_auth", buf, sizeof(buf)));
    snprintf(d->pyroscope_tenant, sizeof(d->pyroscope_tenant), "%s", cp__config_text("pyroscope_tenant", buf, sizeof(buf)));
    if (c->output_dir[0] || (!d->url[0] && !d->pyroscope_url[0]))
        absolute(c->output_dir[0] ? c->output_dir : "profiles", d->output_dir, sizeof(d->output_dir));
}

void cp__dest_outcomes_reset(void)
{
    for (int k = 0; k < 3; k++) {
        atomic_store(&g_dest_ok[k], 0);
        atomic_store(&g_dest_failed[k], 0);
    }
}

char *cp__dest_describe_results(const cp__dest *d)
{
    uint64_t ok[3], bad[3], any = 0;
    for (int k = 0; k < 3; k++) {
        ok[k] = atomic_load(&g_dest_ok[k]);
        bad[k] = atomic_load(&g_dest_failed[k]);
        any += ok[k] + bad[k];
    }
    if (!any)
        return cp__dest_describe(d); /* nothing exported yet: where it will go */
    cp_metrics m;
    cp_metrics_get(&m);
    char line[sizeof(d->output_dir) + sizeof(d->url) + sizeof(m.last_error) + 200] = "";
    size_t n = 0;
    if (d->output_dir[0] && ok[0])
        n += (size_t)snprintf(line, sizeof(line), "profiles written to %s (go tool pprof -top <file>)%s",
                              d->output_dir, bad[0] ? "; some writes failed" : "");
    else if (d->output_dir[0])
        n += (size_t)snprintf(line, sizeof(line), "no profile written to %s (%llu failed: %s)", d->output_dir,
                              (unsigned long long)bad[0], m.last_error);
    if (d->url[0] && n < sizeof(line)) {
        const char *sep = n ? "\n" : "";
        if (ok[1])
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%llu profile(s) uploaded to %s%s", sep,
                                  (unsigned long long)ok[1], d->url, bad[1] ? "; some uploads failed" : "");
        else
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%sno profile uploaded to %s (%llu failed: %s)", sep,
                                  d->url, (unsigned long long)bad[1], m.last_error);
    }
    if (d->pyroscope_url[0] && n < sizeof(line)) {
        const char *sep = n ? "\n" : "";
        if (ok[2])
            snprintf(line + n, sizeof(line) - n, "%s%llu profile(s) sent to Pyroscope at %s%s", sep,
                     (unsigned long long)ok[2], d->pyroscope_url, bad[2] ? "; some uploads failed" : "");
        else
            snprintf(line + n, sizeof(line) - n, "%sno profile sent to Pyroscope at %s (%llu failed: %s)", sep,
                     d->pyroscope_url, (unsigned long long)bad[2], m.last_error);
    }
    return cp__strdup(line);
}

char *cp__dest_describe(const cp__dest *d)
{
    char line[sizeof(d->output_dir) + sizeof(d->url) + sizeof(d->unix_socket) + sizeof(d->pyroscope_url) + 200] = "";
    size_t n = 0;
    if (d->output_dir[0])
        n += (size_t)snprintf(line, sizeof(line), "profiles written to %s (go tool pprof -top <file>)",
                              d->output_dir);
    if (d->url[0] && n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%sprofiles uploaded to %s%s%s%s", n ? "\n" : "",
                              d->url, d->unix_socket[0] ? " via unix socket " : "", d->unix_socket,
                              d->api_key[0] ? " (agentless)" : "");
    if (d->pyroscope_url[0] && n < sizeof(line))
        snprintf(line + n, sizeof(line) - n, "%sprofiles sent to Pyroscope at %s/ingest", n ? "\n" : "",
                 d->pyroscope_url);
    return cp__strdup(line);
}
