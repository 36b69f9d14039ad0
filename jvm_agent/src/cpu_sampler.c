/*
 * cpu_sampler.c — creation and deletion of the per-thread CPU timers.
 *
 * timer_armed: 0 = no timer, 1 = armed, 2 = being replaced (signal move).
 * Deleting goes through an exchange so that ThreadEnd, VMDeath and a signal
 * move never delete the same timer id twice (a freed id may already belong
 * to someone else's timer).
 */
#include "cpu_sampler.h"

#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "jvm_agent.h"
#include "sampling_signal.h"

enum { TIMER_NONE = 0, TIMER_ARMED = 1, TIMER_CHANGING = 2 };

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dULL;
    return x ^ (x >> 33);
}

static int create_timer(cp__thread_slot *s, int signo)
{
    struct sigevent sev;
    struct itimerspec its;
    int64_t ns = cp__jvm.cpu_interval_ns;

    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signo;
    sev.sigev_value.sival_ptr = cp__signal_cpu_value();
    sev._sigev_un._tid = s->tid;
    if (timer_create(cp__thread_cpu_clock(s->tid), &sev, &s->timer) != 0)
        return CP_EIO;
    its.it_interval.tv_sec = ns / 1000000000;
    its.it_interval.tv_nsec = ns % 1000000000;
    /* A random first expiry: a thread that lives for less CPU than one
     * interval is still sampled with the right probability, so many
     * short-lived threads are not invisible. */
    int64_t first = 1 + (int64_t)(mix((uint64_t)s->tid ^ (uint64_t)cp_now_ns()) % (uint64_t)ns);
    its.it_value.tv_sec = first / 1000000000;
    its.it_value.tv_nsec = first % 1000000000;
    if (timer_settime(s->timer, 0, &its, NULL) != 0) {
        timer_delete(s->timer);
        return CP_EIO;
    }
    return CP_OK;
}

int cp__cpu_timer_start(cp__thread_slot *s, int signo)
{
    int expect = TIMER_NONE;

    if (signo <= 0 || !atomic_compare_exchange_strong(&s->timer_armed, &expect, TIMER_CHANGING))
        return CP_ESTATE;
    int rc = create_timer(s, signo);
    atomic_store(&s->timer_armed, rc == CP_OK ? TIMER_ARMED : TIMER_NONE);
    return rc;
}

void cp__cpu_timer_stop(cp__thread_slot *s)
{
    for (;;) {
        int v = atomic_load(&s->timer_armed);
        if (v == TIMER_NONE)
            return;
        if (v == TIMER_CHANGING) { /* a start or move in flight: a few µs */
            sched_yield();
            continue;
        }
        if (atomic_compare_exchange_strong(&s->timer_armed, &v, TIMER_NONE)) {
            timer_delete(s->timer);
            return;
        }
    }
}

void cp__cpu_timers_stop_all(void)
{
    for (size_t i = 0; i < cp__threads_high_water(); i++)
        cp__cpu_timer_stop(cp__threads_slot(i));
}

void cp__cpu_timers_restart_all(int signo)
{
    for (size_t i = 0; i < cp__threads_high_water(); i++) {
        cp__thread_slot *s = cp__threads_slot(i);
        int expect = TIMER_ARMED;
        if (!atomic_compare_exchange_strong(&s->timer_armed, &expect, TIMER_CHANGING))
            continue;
        timer_delete(s->timer);
        int rc = signo > 0 ? create_timer(s, signo) : CP_EIO;
        atomic_store(&s->timer_armed, rc == CP_OK ? TIMER_ARMED : TIMER_NONE);
    }
}
