/*
 * wall_sampler.c — round-robin wall sampling and signal-owner watch.
 */
#include "wall_sampler.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "call_trace_store.h"
#include "cpu_sampler.h"
#include "jvm_agent.h"
#include "sampling_signal.h"
#include "thread_table.h"

/* Until we notice a takeover, our timers feed the new handler: look often. */
enum { OWNER_CHECK_NS = 50 * 1000 * 1000 };
/* A thread that used less CPU than this since its last wall sample has not
 * run (returning from the handler into its wait costs a few µs): its stack
 * is unchanged. */
enum { IDLE_CPU_NS = 20 * 1000 };

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) != 0 && cp__jvm_running()) {
    }
}

/* Record "same stack as last time" for s; false if the store is full. */
static bool repeat_sample(cp__thread_slot *s, int64_t weight)
{
    cp__trace_rec *r = cp__store_reserve();

    if (r == NULL)
        return false;
    r->kind = CP__TRACE_WALL_REPEAT;
    r->num_frames = 0;
    r->thread_serial = s->serial;
    r->tid = s->tid;
    r->thread_slot = cp__threads_index(s);
    r->weight = weight;
    cp__store_commit(r);
    cp_metrics_add_taken(1);
    return true;
}

/* Idle since its last wall sample, and the resolver has that stack? */
static bool is_idle(cp__thread_slot *s)
{
    int64_t before = atomic_load(&s->wall_cpu_ns);
    if (before < 0 || !(atomic_load(&s->wall_state) & 1u))
        return false;
    int64_t now = cp__thread_cpu_ns(s->tid);
    return now >= 0 && now - before < IDLE_CPU_NS;
}

static bool sample_one(cp__thread_slot *s, int64_t weight)
{
    if (is_idle(s))
        return repeat_sample(s, weight);
    /* The previous signal is still pending (the thread has not run, or
     * blocks the signal): another would only queue up behind it. The
     * weight keeps accruing and goes to the sample that does happen. */
    if (atomic_load(&s->wall_handled) != atomic_load(&s->wall_state) >> 1)
        return false;
    /* A new stack is coming: next seq, and no repeats until the resolver
     * has that one (it sets the low bit only if seq is still its own). */
    unsigned st = atomic_load(&s->wall_state);
    while (!atomic_compare_exchange_weak(&s->wall_state, &st, ((st >> 1) + 1) << 1)) {
    }
    return cp__signal_send_wall(s->tid, weight);
}

/* Sample up to wall_threads_max active threads starting at *cursor. */
static void wall_tick(size_t *cursor)
{
    size_t cap = cp__threads_high_water();
    int sent = 0;

    for (size_t scanned = 0; scanned < cap && sent < cp__jvm.wall_threads_max; scanned++) {
        *cursor = *cursor < cap ? *cursor : 0;
        cp__thread_slot *s = cp__threads_slot(*cursor);
        *cursor = (*cursor + 1) % cap;
        if (atomic_load_explicit(&s->state, memory_order_acquire) != CP__SLOT_ACTIVE)
            continue;
        int64_t now = cp_now_ns();
        if (sample_one(s, now - s->last_wall_ns))
            s->last_wall_ns = now;
        sent++;
    }
}

static void watch_owner(void)
{
    int moved_to = 0;

    if (cp__signal_check_owner(&moved_to))
        return;
    cp__cpu_timers_restart_all(moved_to); /* moved_to 0: just stops them */
    /* Wall signals in flight went to the other handler: count them as
     * handled, or those threads would wait for them forever. */
    for (size_t i = 0; i < cp__threads_high_water(); i++) {
        cp__thread_slot *s = cp__threads_slot(i);
        atomic_store(&s->wall_handled, atomic_load(&s->wall_state) >> 1);
    }
}

/* Threads adopted after a late attach have no CPU timer yet. */
static void arm_adopted(void)
{
    if (!cp__threads_take_adopted() || !cp__jvm.cpu_on)
        return;
    for (size_t i = 0; i < cp__threads_high_water(); i++) {
        cp__thread_slot *s = cp__threads_slot(i);
        if (atomic_load(&s->state) == CP__SLOT_ACTIVE && atomic_load(&s->timer_armed) == 0)
            cp__cpu_timer_start(s, cp__signal_current());
    }
}

static void *wall_main(void *arg)
{
    size_t cursor = 0;
    int64_t next_check = cp_now_ns() + OWNER_CHECK_NS;

    (void)arg;
    cp_thread_register_self();
    while (cp__jvm_running()) {
        /* Without wall sampling the thread only watches the signal owner. */
        sleep_ns(cp__jvm.wall_on ? cp__jvm.wall_interval_ns : OWNER_CHECK_NS);
        if (!cp__jvm_running())
            break;
        if (cp_now_ns() >= next_check) {
            watch_owner();
            next_check = cp_now_ns() + OWNER_CHECK_NS;
        }
        arm_adopted();
        if (cp__jvm.wall_on)
            wall_tick(&cursor);
    }
    cp_thread_unregister_self();
    return NULL;
}

int cp__wall_sampler_start(void)
{
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* The new thread inherits this mask: it must never take the host's
     * signals (nor ours). */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&t, &attr, wall_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        pthread_setname_np(t, "contprof-wall");
    return rc == 0 ? CP_OK : CP_EIO;
}
