/*
 * cpu_sampler.c — creation and deletion of the per-thread CPU timers.
 *
 * timer_armed: 0 = no timer, 1 = armed, 2 = being replaced (signal move).
 * Deleting goes through an exchange so that ThreadEnd, VMDeath and a signal
 * move never delete the same timer id twice (a freed id may already belong
 * to someone else's timer).
 */
#include "cpu_sampler.h"

#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "contprof_os.h"
#include "jvm_agent.h"
#include "sampling_signal.h"

enum { TIMER_NONE = 0, TIMER_ARMED = 1, TIMER_CHANGING = 2 };

/* Each slot's last CPU stack, thread-owned (handler and ThreadEnd run on
 * the thread), never freed. */
typedef struct last_cpu {
    int nframes;     /* > 0 frames; <= 0 an AGCT error; INT_MIN none yet */
    int total_frames;/* its true depth when truncated (see cp__trace_rec) */
    cp__agct_frame *frames;
} last_cpu;

static last_cpu *g_last;
static int g_depth;

int cp__cpu_init(size_t nslots, int depth)
{
    last_cpu *l = calloc(nslots, sizeof *l);
    cp__agct_frame *f = calloc(nslots * (size_t)depth, sizeof *f);

    if (l == NULL || f == NULL) {
        free(l), free(f);
        return CP_ENOMEM;
    }
    for (size_t i = 0; i < nslots; i++)
        l[i] = (last_cpu){INT_MIN, CP__DEPTH_UNKNOWN, f + i * (size_t)depth};
    g_depth = depth;
    g_last = l;
    return CP_OK;
}

static int64_t own_cpu_ns(void)
{
    return cp_os_kernel_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* CPU time since the thread was last charged, and charge it up to now. */
static int64_t charge(cp__thread_slot *self)
{
    int64_t now = own_cpu_ns();
    int64_t before = now < 0 ? -1 : atomic_exchange(&self->cpu_charged_ns, now);

    return before >= 0 && now > before ? now - before : -1;
}

/* The thread's own handler, at an expiry of its CPU timer: the next one
 * after a draw uniform in [1/2, 3/2) of the interval (timer_settime is
 * async-signal-safe). At a fixed period of the thread's own CPU the timer
 * locks onto code that repeats at a period of CPU: a() taking a quarter of
 * a 20 ms cycle read 15.6-21.3%. The mean stays the interval, and a sample
 * weighs the CPU the clock says (charge), so totals are unchanged. A timer
 * deleted meanwhile fails here (EINVAL). */
static void rearm(cp__thread_slot *self, int64_t now_cpu)
{
    int64_t iv = cp__jvm.cpu_interval_ns;

    if (iv <= 1 || atomic_load(&self->timer_armed) != TIMER_ARMED)
        return;
    if (self->rng == 0)
        self->rng = (uint64_t)atomic_load(&self->tid) * 0x9E3779B97F4A7C15ull ^ (uint64_t)now_cpu ^ 1u;
    cp_timer_set_jittered(self->timer, iv, &self->rng);
}

int64_t cp__cpu_sampled(cp__thread_slot *self, const cp__trace_rec *r)
{
    int64_t w = charge(self);

    rearm(self, atomic_load(&self->cpu_charged_ns));
    last_cpu *l = g_last != NULL ? &g_last[cp__threads_index(self)] : NULL;

    if (l != NULL) {
        int n = r->num_frames < g_depth ? r->num_frames : g_depth;
        for (int i = 0; i < n; i++) /* no memcpy: not async-signal-safe by the book */
            l->frames[i] = r->frames[i];
        l->nframes = n;
        l->total_frames = r->total_frames;
    }
    return w >= 0 ? w : r->weight;
}

void cp__cpu_thread_end(cp__thread_slot *self)
{
    int64_t tail = charge(self);
    last_cpu *l = g_last != NULL ? &g_last[cp__threads_index(self)] : NULL;
    cp__trace_rec *r;

    if (tail <= 0 || l == NULL || (r = cp__store_reserve()) == NULL)
        return;
    r->kind = l->nframes == INT_MIN ? CP__TRACE_CPU_UNSAMPLED : CP__TRACE_CPU;
    r->num_frames = l->nframes == INT_MIN ? 0 : l->nframes;
    for (int i = 0; i < r->num_frames; i++)
        r->frames[i] = l->frames[i];
    r->total_frames = l->total_frames;
    l->nframes = INT_MIN; /* the slot's next thread starts afresh */
    r->weight = tail;
    r->thread_serial = atomic_load(&self->serial);
    r->tid = atomic_load(&self->tid);
    r->thread_slot = cp__threads_index(self);
    cp__store_commit(r);
    cp_metrics_add_taken(1);
}

static int create_timer(cp__thread_slot *s, pid_t tid, int signo)
{
    struct sigevent sev;
    struct itimerspec its;
    int64_t ns = cp__jvm.cpu_interval_ns;

    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signo;
    sev.sigev_value.sival_ptr = cp__signal_cpu_value();
    sev._sigev_un._tid = tid;
    if (timer_create(cp__thread_cpu_clock(tid), &sev, &s->timer) != 0)
        return CP_EIO;
    its.it_interval.tv_sec = ns / 1000000000;
    its.it_interval.tv_nsec = ns % 1000000000;
    /* First expiry at once: the first kernel tick that finds the thread
     * running takes a sample (weighted by the CPU used so far), so a short
     * thread gets its stack recorded when any tick catches it at all. */
    its.it_value.tv_sec = 0;
    its.it_value.tv_nsec = 1;
    if (timer_settime(s->timer, 0, &its, NULL) != 0) {
        timer_delete(s->timer);
        return CP_EIO;
    }
    return CP_OK;
}

/* A timer for the thread now in s, checked to belong to it once made: the
 * wall sampler arms adopted threads' slots from another thread, and the
 * occupant may leave (and another arrive, whose own start then finds the
 * slot CHANGING) meanwhile. Never leaves a timer on a slot that is not
 * active. */
static int create_for_occupant(cp__thread_slot *s, int signo)
{
    cp__thread_view v;

    while (cp__threads_read(s, &v)) {
        int rc = create_timer(s, v.tid, signo);
        if (cp__threads_still(s, v.gen))
            return rc;
        if (rc == CP_OK)
            timer_delete(s->timer);
    }
    return CP_ESTATE;
}

int cp__cpu_timer_start(cp__thread_slot *s, int signo)
{
    int expect = TIMER_NONE;

    if (signo <= 0 || !atomic_compare_exchange_strong(&s->timer_armed, &expect, TIMER_CHANGING))
        return CP_ESTATE;
    int rc = create_for_occupant(s, signo);
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
        int rc = signo > 0 ? create_for_occupant(s, signo) : CP_EIO;
        atomic_store(&s->timer_armed, rc == CP_OK ? TIMER_ARMED : TIMER_NONE);
    }
}
