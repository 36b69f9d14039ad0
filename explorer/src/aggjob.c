/*
 * aggjob.c — background aggregation jobs and their result cache
 * (aggjob.h). One mutex and condition variable guard the job table; the
 * merge runs without them and only touches its own job's counters under
 * the lock.
 */
#include "aggjob.h"

#include "contprof_os.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct job {
    char *key;              /* NULL = free slot */
    bool done;
    int status;
    size_t progress, total;
    cp_buf body;
    int64_t *ids;
    ex_agg_fn fn;
    void *arg;
    uint64_t used;          /* LRU stamp */
} job;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static job jobs[EX_AGG_JOBS];
static uint64_t clock_stamp;

static void init_cv(void)
{
    cp_os_cond_init_monotonic(&cv);
}

static void progress(void *jp, size_t done)
{
    job *j = jp;
    pthread_mutex_lock(&mu);
    j->progress = done;
    pthread_mutex_unlock(&mu);
}

static void *job_main(void *jp)
{
    job *j = jp;
    cp_buf out;
    cp_buf_init(&out, 0);
    int status = j->fn(j->arg, j->ids, j->total, progress, j, &out);
    pthread_mutex_lock(&mu);
    j->body = out;
    j->status = status;
    j->done = true;
    free(j->ids);
    free(j->arg);
    j->ids = NULL;
    j->arg = NULL;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* A slot for a new job: a free one, else the least recently used
 * finished one (running jobs are never evicted). Lock held. */
static job *free_slot(void)
{
    job *best = NULL;
    for (size_t i = 0; i < EX_AGG_JOBS; i++) {
        if (!jobs[i].key) return &jobs[i];
        if (jobs[i].done && (!best || jobs[i].used < best->used)) best = &jobs[i];
    }
    if (best) {
        free(best->key);
        cp_buf_free(&best->body);
        memset(best, 0, sizeof *best);
    }
    return best;
}

static job *find(const char *key)
{
    for (size_t i = 0; i < EX_AGG_JOBS; i++)
        if (jobs[i].key && strcmp(jobs[i].key, key) == 0) return &jobs[i];
    return NULL;
}

static int start(job *j, const char *key, const int64_t *ids, size_t n, ex_agg_fn fn, void *arg)
{
    pthread_t th;
    pthread_attr_t a;
    j->key = strdup(key);
    j->ids = malloc((n ? n : 1) * sizeof *ids);
    if (!j->key || !j->ids) goto fail;
    if (n) memcpy(j->ids, ids, n * sizeof *ids);
    j->total = n;
    j->fn = fn;
    j->arg = arg;
    cp_buf_init(&j->body, 0);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &a, job_main, j);
    pthread_attr_destroy(&a);
    if (rc == 0) return CP_OK;
fail:
    free(j->key);
    free(j->ids);
    memset(j, 0, sizeof *j);
    return CP_ENOMEM;
}

int ex_agg_run(const char *key, const int64_t *ids, size_t n, ex_agg_fn fn, void *arg, int wait_ms,
               ex_agg_result *res)
{
    struct timespec dl;
    pthread_once(&once, init_cv);
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) { dl.tv_sec++; dl.tv_nsec -= 1000000000L; }
    memset(res, 0, sizeof *res);
    cp_buf_init(&res->body, 0);
    pthread_mutex_lock(&mu);
    job *j = find(key);
    if (j) {
        free(arg);
    } else {
        j = free_slot();
        if (!j || start(j, key, ids, n, fn, arg) != CP_OK) {
            pthread_mutex_unlock(&mu);
            free(arg);
            return CP_ENOMEM;
        }
    }
    /* A finished job may be evicted while we wait: look it up again. */
    while (!j->done && pthread_cond_timedwait(&cv, &mu, &dl) == 0)
        if (!(j = find(key))) break;
    if (!j) {
        pthread_mutex_unlock(&mu);
        res->done = false;
        return CP_OK;
    }
    j->used = ++clock_stamp;
    res->done = j->done;
    res->status = j->status;
    res->progress = j->progress;
    res->total = j->total;
    int rc = j->done ? cp_buf_append(&res->body, j->body.data ? j->body.data : (const uint8_t *)"", j->body.len)
                     : CP_OK;
    pthread_mutex_unlock(&mu);
    return rc;
}
