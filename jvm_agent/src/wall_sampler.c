/*
 * wall_sampler.c — round-robin wall sampling and signal-owner watch.
 */
#include "wall_sampler.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "call_trace_store.h"
#include "contprof_os.h"
#include "cpu_sampler.h"
#include "jvm_agent.h"
#include "native_threads.h"
#include "lock_sampler.h"
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
    /* Only an interruption resumes the rest: any other failure (a time
     * faker's wrapper rejecting the call) must not turn this into a spin. */
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR && cp__jvm_running()) {
    }
}

/* The wall sampler's own view of each thread slot (this thread only):
 * which occupant it last saw. */
typedef struct wall_seen {
    unsigned gen;
} wall_seen;

static wall_seen *g_seen; /* cp__threads_capacity() entries */

/* Record wall time on the stack of s's last wall sample (kind
 * WALL_REPEAT or WALL_END, size as that kind says); false if the store is
 * full. */
static bool last_stack_sample(int kind, cp__thread_slot *s, uint32_t serial, pid_t tid, int64_t weight, int64_t size)
{
    cp__trace_rec *r = cp__store_reserve();

    if (r == NULL)
        return false;
    r->kind = kind;
    r->num_frames = 0;
    r->thread_serial = serial;
    r->tid = tid;
    r->thread_slot = cp__threads_index(s);
    r->weight = weight;
    r->size = size;
    cp__store_commit(r);
    cp_metrics_add_taken(1);
    return true;
}

/* Record "same stack as last time" for s; false if the store is full. */
static bool repeat_sample(cp__thread_slot *s, const cp__thread_view *v, int64_t weight)
{
    return last_stack_sample(CP__TRACE_WALL_REPEAT, s, v->serial, v->tid, weight, 0);
}

/* Idle since its last wall sample, and the resolver has that stack? */
static bool is_idle(cp__thread_slot *s, pid_t tid)
{
    int64_t before = atomic_load(&s->wall_cpu_ns);
    if (before < 0 || !(atomic_load(&s->wall_state) & 1u))
        return false;
    int64_t now = cp__thread_cpu_ns(tid);
    return now >= 0 && now - before < IDLE_CPU_NS;
}

static bool sample_one(cp__thread_slot *s, const cp__thread_view *v, int64_t weight)
{
    /* Blocked on a monitor: AGCT cannot walk it, its stack was published. */
    if (cp__locks_wall_blocked(s, v, weight))
        return true;
    if (is_idle(s, v->tid))
        return repeat_sample(s, v, weight);
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
    /* Reused meanwhile: the new occupant gets its counters reset on the
     * next tick (gen differs), no signal goes to a thread that left. */
    return cp__threads_still(s, v->gen) && cp__signal_send_wall(v->tid, weight);
}

/* A new occupant of slot s (this thread saw another gen before): no wall
 * signal of ours is pending for it (its first weight runs from its
 * activation: wall_upto_ns). */
static void adopt_slot(cp__thread_slot *s, wall_seen *w, const cp__thread_view *v)
{
    w->gen = v->gen;
    atomic_store(&s->wall_state, (atomic_load(&s->wall_state) >> 1) << 1);
    atomic_store(&s->wall_handled, atomic_load(&s->wall_state) >> 1);
}

/* Sample up to wall_threads_max active threads starting at *cursor. */
static void wall_tick(size_t *cursor)
{
    size_t cap = cp__threads_high_water();
    int sent = 0;
    cp__thread_view v;

    for (size_t scanned = 0; scanned < cap && sent < cp__jvm.wall_threads_max; scanned++) {
        *cursor = *cursor < cap ? *cursor : 0;
        cp__thread_slot *s = cp__threads_slot(*cursor);
        wall_seen *w = &g_seen[*cursor];
        *cursor = (*cursor + 1) % cap;
        if (!cp__threads_read(s, &v))
            continue;
        if (w->gen != v.gen)
            adopt_slot(s, w, &v);
        /* Claim [upto, now) before the sample goes out: ThreadEnd takes
         * what is left after it, never the same time twice. */
        int64_t now = cp_now_ns();
        int64_t upto = atomic_load(&s->wall_upto_ns);
        if (upto >= now || !atomic_compare_exchange_strong(&s->wall_upto_ns, &upto, now))
            continue; /* ended, or activated just now */
        if (!sample_one(s, &v, now - upto)) {
            int64_t mine = now; /* not taken: the time keeps accruing */
            atomic_compare_exchange_strong(&s->wall_upto_ns, &mine, upto);
        }
        sent++;
    }
}

/* The mean gap between two looks at one Java thread: the wall interval,
 * times the rounds the round robin needs when more threads are active
 * than wall_threads_max. */
static int64_t look_gap(void)
{
    size_t active = 0, max = cp__jvm.wall_threads_max > 0 ? (size_t)cp__jvm.wall_threads_max : 1;
    for (size_t i = 0; i < cp__threads_high_water(); i++)
        active += atomic_load_explicit(&cp__threads_slot(i)->state, memory_order_relaxed) == CP__SLOT_ACTIVE;
    return cp__jvm.wall_interval_ns * (int64_t)(active <= max ? 1 : (active + max - 1) / max);
}

void cp__wall_thread_end(cp__thread_slot *s)
{
    int64_t now = cp_now_ns();
    int64_t upto = atomic_exchange(&s->wall_upto_ns, CP__WALL_ENDED);
    int64_t born = atomic_load(&s->active_ns);

    /* Never looked at (upto is still its start): an unseen thread. */
    if (!cp__jvm.wall_on || upto == CP__WALL_ENDED || upto <= born || now <= upto)
        return;
    last_stack_sample(CP__TRACE_WALL_END, s, atomic_load(&s->serial), atomic_load(&s->tid),
                      now - upto + cp_wall_unseen_ns(now - born, look_gap()), now - born);
}

static void watch_owner(void)
{
    int moved_to = 0;

    if (cp__signal_check_owner(&moved_to))
        return;
    cp__cpu_timers_restart_all(moved_to); /* moved_to 0: just stops them */
    cp__native_threads_rescan_soon();
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
    uint64_t rng = (uint64_t)next_check | 1u;

    (void)arg;
    cp_thread_register_self();
    while (cp__jvm_running()) {
        /* Without wall sampling the thread only watches the signal owner.
         * Ticks are jittered: a sample weighs the time since the thread's
         * last one, and a fixed period locked onto work repeating at a
         * period of wall time (a task scheduled every 50 ms). */
        sleep_ns(cp__jvm.wall_on ? cp_jittered_ns(cp__jvm.wall_interval_ns, &rng) : OWNER_CHECK_NS);
        if (!cp__jvm_running())
            break;
        if (cp_now_ns() >= next_check) {
            watch_owner();
            next_check = cp_now_ns() + OWNER_CHECK_NS;
        }
        arm_adopted();
        if (cp__jvm.native_on)
            cp__native_threads_tick(cp__signal_current());
        if (cp__jvm.wall_on)
            wall_tick(&cursor);
    }
    cp_thread_unregister_self();
    return NULL;
}

int cp__wall_sampler_start(void)
{
    pthread_t t;

    if (g_seen == NULL && (g_seen = calloc(cp__threads_capacity(), sizeof *g_seen)) == NULL)
        return CP_ENOMEM;
    /* Every signal blocked: it must never take the host's signals (nor ours). */
    if (cp_os_thread_start(&t, wall_main, NULL, "contprof-wall") != 0)
        return CP_EIO;
    pthread_detach(t);
    return CP_OK;
}
