/*
 * budget.c — the shared inflate budget (budget.h). One mutex and one
 * condition variable on CLOCK_MONOTONIC; used once per upload, never in a
 * loop, so contention is irrelevant.
 */
#include "budget.h"

#include "contprof_os.h"

#include <pthread.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static pthread_once_t cv_once = PTHREAD_ONCE_INIT;
static size_t limit = EX_DEFAULT_INFLATE_BUDGET, used;

static void cv_init(void)
{
    cp_os_cond_init_monotonic(&cv);
}

void ex_budget_set_limit(size_t bytes)
{
    pthread_mutex_lock(&mu);
    limit = bytes ? bytes : EX_DEFAULT_INFLATE_BUDGET;
    pthread_mutex_unlock(&mu);
}

size_t ex_budget_limit(void)
{
    pthread_mutex_lock(&mu);
    size_t l = limit;
    pthread_mutex_unlock(&mu);
    return l;
}

bool ex_budget_reserve(size_t bytes, int wait_ms)
{
    struct timespec dl;
    pthread_once(&cv_once, cv_init);
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) { dl.tv_sec++; dl.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&mu);
    bool ok = bytes <= limit;
    while (ok && used + bytes > limit)
        if (pthread_cond_timedwait(&cv, &mu, &dl)) ok = used + bytes <= limit;
    if (ok) used += bytes;
    pthread_mutex_unlock(&mu);
    return ok;
}

void ex_budget_release(size_t bytes)
{
    pthread_once(&cv_once, cv_init);
    pthread_mutex_lock(&mu);
    used = bytes > used ? 0 : used - bytes;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

size_t ex_budget_in_use(void)
{
    pthread_mutex_lock(&mu);
    size_t u = used;
    pthread_mutex_unlock(&mu);
    return u;
}
