/*
 * pynative.c — a thread's native and Python stacks, from its own CPU timer
 * (Python threads) or on request (threads without Python frames), and
 * their merge (see pynative.h). The request path:
 *
 * One request is in flight at a time (the sampler thread asks threads one
 * after another). The mailbox's state word is the futex the sampler waits
 * on: (seq << 2) | phase. The sampler publishes REQ and signals; the
 * handler unwinds on its own stack, claims the request (REQ -> FILL, a
 * CAS, so a request the sampler gave up on is never written), writes its
 * pcs and walks its own Python frames into the mailbox, and publishes
 * READY. The thread never waits for the sampler.
 */
#include "pynative.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "contprof.h"
#include "contprof_os.h"
#include "saferead.h"
#include "spinlock.h"

enum { PH_IDLE = 0, PH_REQ = 1, PH_FILL = 2, PH_READY = 3 };
#define MAGIC 0xC9F00000u       /* si_value: MAGIC | seq (20 bits)       */
#define SEQ_MASK 0xFFFFFu
#define WAIT_NS 20000000LL      /* sampler: answer within 20 ms ...      */
#define TICK_WAIT_NS 20000000LL /* ... and all threads of a tick in 20 ms */
#define FILL_WAIT_NS 50000000LL /* a claimed request is a memcpy away    */
#define CLASS_BITS 14           /* pc -> class caches: the interpreter's */
#define OTHER_BITS 12           /* code, and the rest's                  */
#define TIME_EVERY 4u           /* handler CPU timed on 1 request in 4   */
#define TMAGIC 0x7C900000u      /* a timer's si_value: TMAGIC | gen << 10 | slot */
#define YMAGIC 0x5A300000u      /* a young thread's own timer: YMAGIC | gen << 10 | entry */
#define YOUNG_HITS_MAX 4u       /* more kernel ticks than this: not a short thread */
#define YOUNG_INTERVAL_NS 1000000 /* re-armed at once: every kernel tick it runs */
#define YOUNG_AGE_MAX_NS 2000000000LL /* older than this: not a short thread */
#define OWNER_CHECK_NS 50000000LL /* is our signal still ours? (cp__pyn_tick_begin) */

enum { CL_NONE = 0, CL_OTHER, CL_INTERP, CL_EVAL };

/* A thread's own report, as the request mailbox and each timer's capture
 * hold it: the request (whose Python frames: ts 0 for none; cap at most)
 * set by the sampler, and the answer its handler writes: both stacks and
 * the outermost generators. */
typedef struct report {
    uintptr_t ts;
    uint64_t thread_id;
    uint32_t cap;
    int npcs;
    uint32_t npy, py_omitted, ngroups, ngens;
    uintptr_t pcs[CP_PYN_MAX];
    uint64_t gens[CP_WALK_GENS];
    uint16_t groups[CP_PYN_PY_MAX];
    cp_rawframe py[CP_PYN_PY_MAX];
} report;

static struct {
    _Atomic uint32_t state;
    uint32_t seq;               /* sampler's, last sent                 */
    report r;
    atomic_int signo;
    atomic_bool ready;
    pid_t pid;                  /* ours (getpid costs ~1 us in VMs)        */
    uid_t uid;
    int64_t tick_waited;        /* sampler: waiting done this tick       */
    const char *interp_module;  /* the object holding the eval loop       */
    uintptr_t interp_lo, interp_hi; /* its code: never unloaded, so the class
                                 * of a pc in it outlives an epoch         */
    struct pcclass {
        uintptr_t pc;
        int cls;
    } classes[1u << CLASS_BITS], others[1u << OTHER_BITS];
    _Atomic uint64_t requests, answered, timeouts, native_threads;
} g_n;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Wait while *w == val, at most ns. Signal-safe (one syscall). */
static void futex_wait(_Atomic uint32_t *w, uint32_t val, int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
    syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint32_t word(uint32_t seq, uint32_t phase) { return seq << 2 | phase; }

/* ---- the handler (runs on the sampled thread) ------------------------- */

/* Handlers inside the unwinder (libunwind takes a lock there) and whether a
 * fork is under way: fork waits for the first to drain so that a child
 * never inherits that lock held. */
static atomic_int g_inflight;
static atomic_uint g_timed; /* timer signals taken (1 in TIME_EVERY is timed) */
static atomic_bool g_forking;

static void handle(uint32_t v, void *uc);
static void handle_timer(uint32_t v, void *uc);

/* Handler: the calling thread's own Python frames into r's answer. */
static void walk_into(report *r, cp_walkhint *hint)
{
    cp_evalgroups g = {r->groups, r->cap, 0};
    r->ngens = r->py_omitted = 0;
    r->npy = r->ts ? cp__walk_self(r->ts, r->thread_id, hint, r->py, r->cap, &r->py_omitted, &g, r->gens,
                                   &r->ngens) : 0;
    r->ngroups = g.count;
}

/* Sampler: r's answer into out (py and g.n as for cp__pyn_capture); false
 * when its counts do not fit, as in a capture its handler tore. */
static bool give(const report *r, cp_pyn_sample *out)
{
    int npcs = r->npcs;
    uint32_t npy = r->npy, ngroups = r->ngroups, ngens = r->ngens;
    if (npcs < 0 || npcs > CP_PYN_MAX || npy > r->cap || ngroups > out->g.cap || ngens > CP_WALK_GENS ||
        (npy > 0 && out->py == NULL))
        return false;
    out->npcs = npcs;
    memcpy(out->pcs, r->pcs, (size_t)npcs * sizeof *out->pcs);
    out->npy = npy;
    out->py_omitted = r->py_omitted;
    out->g.count = ngroups;
    out->ngens = ngens;
    if (npy > 0) { /* else py and g.n may be NULL (no Python frames asked for) */
        memcpy(out->py, r->py, npy * sizeof *out->py);
        memcpy(out->g.n, r->groups, ngroups * sizeof *out->g.n);
        memcpy(out->gens, r->gens, ngens * sizeof *out->gens);
    }
    return true;
}

/* Run fn(v, uc) unless a fork is under way. The sampled thread's CPU in
 * here is the profiler's cost (its CPU clock: a loaded machine preempts
 * handlers, which a wall clock would count). Timed on one call in
 * TIME_EVERY, counted that many times: each clock read is a system call
 * (~1-2 us). */
static void run(void (*fn)(uint32_t, void *), uint32_t v, bool timed, void *uc)
{
    int64_t t0 = timed ? cpu_ns() : 0;
    atomic_fetch_add(&g_inflight, 1);
    if (!atomic_load(&g_forking))
        fn(v, uc);
    atomic_fetch_sub(&g_inflight, 1);
    if (timed)
        cp_metrics_add_hook_ns((cpu_ns() - t0) * TIME_EVERY);
}

static void handle_young(uint32_t v, void *uc);

/* The sampler's sleep word while its ticks are far apart (NULL otherwise):
 * a thread's CPU timer firing means it ran, so it wakes the sampler. */
static _Atomic(_Atomic uint32_t *) g_kick;

void cp__pyn_kick_on(_Atomic uint32_t *word) { atomic_store(&g_kick, word); }

static void kick(void)
{
    _Atomic uint32_t *w = atomic_load(&g_kick);
    uint32_t zero = 0;
    /* 0 -> 2 only: 1 (stop) is never overwritten. */
    if (w && atomic_compare_exchange_strong(w, &zero, 2u))
        futex_wake(w);
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    (void)sig;
    uint32_t tv = (uint32_t)si->si_value.sival_int, magic = tv & 0xFFF00000u;
    if (si->si_code == SI_TIMER && (magic == TMAGIC || magic == YMAGIC)) {
        run(magic == TMAGIC ? handle_timer : handle_young, tv & 0xFFFFFu,
            (atomic_fetch_add(&g_timed, 1) & (TIME_EVERY - 1)) == 0, uc);
        kick();
    } else if (si->si_code == SI_QUEUE && si->si_pid == g_n.pid &&
               ((uint32_t)(uintptr_t)si->si_value.sival_ptr & 0xFFF00000u) == MAGIC) {
        uint32_t v = (uint32_t)(uintptr_t)si->si_value.sival_ptr;
        run(handle, v, (v & (TIME_EVERY - 1)) == 0, uc);
    } /* else not ours: the signal was free when we took it, so ignore */
    errno = saved;
}

static void handle(uint32_t v, void *uc)
{
    uint32_t seq = v & SEQ_MASK, req = word(seq, PH_REQ);
    if (atomic_load(&g_n.state) == req) {
        uintptr_t pcs[CP_PYN_MAX];
        /* The whole stack: C frames between two Python calls (an
         * extension calling back into Python) are kept by the merge. */
        int n = cp_native_unwind(uc, pcs, CP_PYN_MAX, NULL);
        uint32_t want = req;
        if (atomic_compare_exchange_strong(&g_n.state, &want, word(seq, PH_FILL))) {
            /* Claimed: the sampler now waits for us and no other handler
             * runs this part (cp__walk_self's buffers are ours). */
            for (int i = 0; i < n; i++)
                g_n.r.pcs[i] = pcs[i];
            g_n.r.npcs = n;
            walk_into(&g_n.r, NULL);
            atomic_store(&g_n.state, word(seq, PH_READY));
            futex_wake(&g_n.state);
        }
    }
}

static void fork_prepare(void)
{
    atomic_store(&g_forking, true);
    for (int i = 0; i < 1000 && atomic_load(&g_inflight) > 0; i++) {
        struct timespec ms = {0, 10000};
        nanosleep(&ms, NULL); /* a handler is a few microseconds; 10 ms at most */
    }
}

static void fork_parent(void) { atomic_store(&g_forking, false); }

static void fork_child(void)
{
    atomic_store(&g_inflight, 0);
    atomic_store(&g_forking, false);
    g_n.pid = getpid();
    cp__pyn_forget();
}

/* ---- per-thread CPU timers (see pynative.h) -------------------------------- */

/* One thread's last capture: a seqlock whose only writer is the thread's
 * own handler (handlers of one signal never nest); odd while written. */
typedef struct capture {
    _Atomic uint32_t seq;
    cp_walkhint hint;           /* where the last walk found the frames    */
    report r;                   /* its request is set before the timer is armed */
} capture;

static struct {
    capture *_Atomic cap;       /* made once, kept: a late signal may still come */
    _Atomic uint32_t gen;       /* of the timer now (10 bits): older ones' signals are ignored */
    timer_t id;
    pid_t tid;
    bool on;
    int64_t interval_ns;        /* the mean; each expiry draws the next (rearm) */
    uint64_t rng;               /* its handler's                           */
} g_t[CP_PYN_TIMERS];

/* The interrupted thread's stacks into c (its handler: the only writer). */
static void capture_write(capture *c, void *uc)
{
    uint32_t s = atomic_load(&c->seq);
    atomic_store(&c->seq, s | 1u);
    atomic_thread_fence(memory_order_release);
    c->r.npcs = cp_native_unwind(uc, c->r.pcs, CP_PYN_MAX, NULL);
    walk_into(&c->r, &c->hint);
    atomic_store(&c->seq, (s | 1u) + 1u);
}

/* Sampler: c's capture into out, unless it is the one of seq `old` or is
 * being written; its seq in *got. */
static bool capture_read(capture *c, uint32_t old, cp_pyn_sample *out, uint32_t *got)
{
    uint32_t s = atomic_load_explicit(&c->seq, memory_order_acquire);
    if ((s & 1u) || s == old || !give(&c->r, out))
        return false;
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&c->seq, memory_order_relaxed) != s)
        return false; /* written meanwhile */
    *got = s;
    atomic_fetch_add(&g_n.answered, 1);
    return true;
}

/* Its own thread, at an expiry: the next one after a draw uniform in
 * [1/2, 3/2) of the interval of CPU (timer_settime is async-signal-safe).
 * A timer at a fixed period of the thread's own CPU locks onto code that
 * repeats at a period of CPU: a() taking a quarter of a 10 ms cycle read
 * 60% of the samples, 12% at 20 ms. The mean stays the interval, and the
 * CPU charged to a capture is what the clock says, so totals are as
 * before. A timer the sampler deleted meanwhile fails here (EINVAL). */
static void rearm(uint32_t idx)
{
    if (g_t[idx].interval_ns > 1)
        cp_timer_set_jittered(g_t[idx].id, g_t[idx].interval_ns, &g_t[idx].rng);
}

static void handle_timer(uint32_t v, void *uc)
{
    uint32_t idx = v & 0x3FFu, gen = v >> 10;
    capture *c = idx < CP_PYN_TIMERS ? atomic_load(&g_t[idx].cap) : NULL;
    /* A signal of a deleted timer (its thread's slot may be another's now). */
    if (!c || gen != atomic_load(&g_t[idx].gen))
        return;
    capture_write(c, uc);
    rearm(idx);
}

bool cp__pyn_timer_sync(int idx, pid_t tid, uintptr_t ts, uint64_t thread_id, uint32_t cap,
                        int64_t interval_ns, uint32_t *seq)
{
    if (idx < 0 || idx >= CP_PYN_TIMERS || tid <= 0 || !atomic_load(&g_n.ready))
        return false;
    capture *c = atomic_load(&g_t[idx].cap);
    if (g_t[idx].on && g_t[idx].tid == tid && c->r.ts == ts && c->r.thread_id == thread_id)
        return true;
    cp__pyn_timer_drop(idx);
    uint32_t gen = (atomic_load(&g_t[idx].gen) + 1) & 0x3FFu;
    atomic_store(&g_t[idx].gen, gen);
    if (!c) {
        if (!(c = calloc(1, sizeof *c)))
            return false;
        atomic_store(&g_t[idx].cap, c);
    }
    c->r.ts = ts;
    c->r.thread_id = thread_id;
    c->r.cap = cap < CP_PYN_PY_MAX ? cap : CP_PYN_PY_MAX;
    c->hint.n = 0;
    /* The thread's CPU clock (CPUCLOCK_SCHED, per thread): no call gives
     * one for a tid of this process other than by this encoding. */
    clockid_t clock = (clockid_t)((~(unsigned)tid << 3) | 6u);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = atomic_load(&g_n.signo);
    ev.sigev_value.sival_int = (int)(TMAGIC | gen << 10 | (uint32_t)idx);
    ev._sigev_un._tid = tid;
    g_t[idx].interval_ns = interval_ns;
    g_t[idx].rng = (uint64_t)tid * 0x9E3779B97F4A7C15ull ^ (uint64_t)cpu_ns() ^ 1u;
    if (timer_create(clock, &ev, &g_t[idx].id) != 0)
        return false;
    /* The first expiry drawn as every later one (rearm). */
    if (cp_timer_set_jittered(g_t[idx].id, interval_ns, &g_t[idx].rng) != 0) {
        timer_delete(g_t[idx].id);
        return false;
    }
    g_t[idx].tid = tid;
    g_t[idx].on = true;
    /* What an earlier thread of this slot left is not this thread's. */
    *seq = atomic_load(&c->seq) & ~1u;
    return true;
}

void cp__pyn_timer_drop(int idx)
{
    if (idx < 0 || idx >= CP_PYN_TIMERS || !g_t[idx].on)
        return;
    timer_delete(g_t[idx].id);
    g_t[idx].on = false;
    g_t[idx].tid = 0;
}

bool cp__pyn_take(int idx, uint32_t *seq, cp_pyn_sample *out)
{
    capture *c = idx >= 0 && idx < CP_PYN_TIMERS ? atomic_load(&g_t[idx].cap) : NULL;
    /* Not taken while being written: the next tick takes the newer one. */
    if (!c || !capture_read(c, *seq, out, seq))
        return false;
    return out->npcs > 0 || out->npy > 0;
}

/* ---- young threads' own timers (see pynative.h) ---------------------------- */

/* A handle is entry | gen << 10: a thread's handle goes stale when its
 * entry is reclaimed (below), and then does nothing. Changes of an entry
 * (arm, stop, release, reclaim) take its lock; its handler, on its own
 * thread, only reads. */
static struct {
    capture *_Atomic cap;       /* made once, kept: a late signal may still come */
    _Atomic uint32_t gen;       /* of the timer now (10 bits)              */
    atomic_bool busy;           /* claimed by a thread, until released       */
    atomic_bool on;             /* its timer exists                          */
    atomic_flag lock;
    timer_t id;
    uint32_t seq0;              /* the capture's seq when armed            */
    _Atomic uint32_t hits;      /* kernel ticks that found it: its handler's */
    _Atomic int64_t armed_at;   /* CLOCK_MONOTONIC                         */
    uint64_t rng;               /* its handler's                           */
} g_y[CP_PYN_YOUNG];

/* Its own thread: one kernel tick that found it running. The capture kept
 * is each tick's with odds 1/hits (a reservoir of one), so it is a uniform
 * draw over the ticks, i.e. over the thread's CPU; past YOUNG_HITS_MAX the
 * thread is no short one: the timer is stopped (timer_settime is
 * async-signal-safe) and the entry may be reclaimed. */
static void handle_young(uint32_t v, void *uc)
{
    uint32_t k = v & 0x3FFu, gen = v >> 10;
    capture *c = k < CP_PYN_YOUNG ? atomic_load(&g_y[k].cap) : NULL;
    if (!c || gen != atomic_load(&g_y[k].gen) || !atomic_load(&g_y[k].on))
        return;
    uint32_t n = atomic_load(&g_y[k].hits) + 1;
    atomic_store(&g_y[k].hits, n);
    if (n > YOUNG_HITS_MAX) {
        struct itimerspec off = {{0, 0}, {0, 0}};
        timer_settime(g_y[k].id, 0, &off, NULL);
        return;
    }
    if (cp_xorshift64(&g_y[k].rng) % n == 0)
        capture_write(c, uc);
}

/* Entry k, locked: delete its timer if it has one. */
static void young_off(int k)
{
    if (atomic_exchange(&g_y[k].on, false))
        timer_delete(g_y[k].id);
}

/* The entry of handle h, locked, if h is still its owner's; else -1. */
static int young_lock(int h)
{
    int k = h & 0x3FF;
    if (h < 0 || k >= CP_PYN_YOUNG)
        return -1;
    cp__spin_lock(&g_y[k].lock);
    if (((uint32_t)h >> 10) == atomic_load(&g_y[k].gen))
        return k;
    cp__spin_unlock(&g_y[k].lock);
    return -1;
}

/* Whether entry i's thread is no short one: it ran past YOUNG_HITS_MAX
 * ticks, or it is older than YOUNG_AGE_MAX_NS. */
static bool young_stale(int i, int64_t now)
{
    return atomic_load(&g_y[i].busy) &&
           (atomic_load(&g_y[i].hits) > YOUNG_HITS_MAX || now - atomic_load(&g_y[i].armed_at) > YOUNG_AGE_MAX_NS);
}

/* A free entry, claimed; else one whose thread is no short one (a
 * long-lived thread keeps its entry until it ends: 256 of them, a pool of
 * idle workers, would leave none for short ones), taken from it; -1 when
 * neither. */
static int young_claim(void)
{
    for (int i = 0; i < CP_PYN_YOUNG; i++) {
        bool no = false;
        if (!atomic_load(&g_y[i].busy) && atomic_compare_exchange_strong(&g_y[i].busy, &no, true))
            return i;
    }
    int64_t now = cp_now_ns();
    for (int i = 0; i < CP_PYN_YOUNG; i++) {
        if (!young_stale(i, now) || atomic_flag_test_and_set(&g_y[i].lock))
            continue;
        bool ok = young_stale(i, now);
        if (ok) {
            young_off(i);
            atomic_store(&g_y[i].hits, 0);
            atomic_store(&g_y[i].armed_at, now); /* not stale to the next claimer */
            atomic_store(&g_y[i].gen, (atomic_load(&g_y[i].gen) + 1) & 0x3FFu); /* its owner's handle goes stale */
        }
        cp__spin_unlock(&g_y[i].lock);
        if (ok)
            return i;
    }
    return -1;
}

int cp__pyn_young_arm(uintptr_t ts, uint64_t thread_id, uint32_t cap)
{
    if (!atomic_load(&g_n.ready) || !ts)
        return -1;
    int k = young_claim();
    if (k < 0)
        return -1; /* all in use: this thread's CPU goes by the pool alone */
    cp__spin_lock(&g_y[k].lock);
    capture *c = atomic_load(&g_y[k].cap);
    if (!c && (c = calloc(1, sizeof *c)))
        atomic_store(&g_y[k].cap, c);
    uint32_t gen = (atomic_load(&g_y[k].gen) + 1) & 0x3FFu;
    atomic_store(&g_y[k].gen, gen);
    int h = -1;
    if (c) {
        c->r.ts = ts;
        c->r.thread_id = thread_id;
        c->r.cap = cap < CP_PYN_PY_MAX ? cap : CP_PYN_PY_MAX;
        c->r.npy = 0;
        c->r.npcs = 0;
        c->hint.n = 0;
        g_y[k].seq0 = atomic_load(&c->seq);
        atomic_store(&g_y[k].hits, 0);
        atomic_store(&g_y[k].armed_at, cp_now_ns());
        g_y[k].rng = (uint64_t)ts * 0x9E3779B97F4A7C15ull ^ (uint64_t)cpu_ns() ^ 1u;
        struct sigevent ev;
        memset(&ev, 0, sizeof ev);
        ev.sigev_notify = SIGEV_THREAD_ID;
        ev.sigev_signo = atomic_load(&g_n.signo);
        ev.sigev_value.sival_int = (int)(YMAGIC | gen << 10 | (uint32_t)k);
        ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
        /* First expiry at once: the next kernel tick that finds it running. */
        struct itimerspec its = {{0, YOUNG_INTERVAL_NS}, {0, 1}};
        if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &g_y[k].id) == 0) {
            atomic_store(&g_y[k].on, true);
            if (timer_settime(g_y[k].id, 0, &its, NULL) == 0)
                h = (int)((uint32_t)k | gen << 10);
            else
                young_off(k);
        }
    }
    if (h < 0)
        atomic_store(&g_y[k].busy, false);
    cp__spin_unlock(&g_y[k].lock);
    return h;
}

/* Handle h's timer deleted; its entry freed too if release. */
static void young_end(int h, bool release)
{
    int k = young_lock(h);
    if (k < 0)
        return;
    young_off(k);
    if (release)
        atomic_store(&g_y[k].busy, false);
    cp__spin_unlock(&g_y[k].lock);
}

void cp__pyn_young_stop(int h) { young_end(h, false); }

bool cp__pyn_young_take(int h, cp_pyn_sample *out)
{
    int k = young_lock(h);
    if (k < 0)
        return false;
    capture *c = atomic_load(&g_y[k].cap);
    uint32_t got;
    /* Still armed: its thread has not stopped it. */
    bool ok = c && !atomic_load(&g_y[k].on) && capture_read(c, g_y[k].seq0, out, &got) && out->npy > 0;
    cp__spin_unlock(&g_y[k].lock);
    return ok;
}

void cp__pyn_young_release(int h) { young_end(h, true); }

void cp__pyn_young_stop_all(void)
{
    for (int k = 0; k < CP_PYN_YOUNG; k++) {
        cp__spin_lock(&g_y[k].lock);
        young_off(k);
        cp__spin_unlock(&g_y[k].lock);
    }
}

/* ---- the sampler's side ------------------------------------------------- */

static bool send(pid_t tid, uint32_t value)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = atomic_load(&g_n.signo);
    si.si_code = SI_QUEUE;
    si.si_pid = g_n.pid;
    si.si_uid = g_n.uid;
    si.si_value.sival_ptr = (void *)(uintptr_t)value;
    return syscall(SYS_rt_tgsigqueueinfo, g_n.pid, tid, si.si_signo, &si) == 0;
}

bool cp__pyn_capture(pid_t tid, uintptr_t ts, uint64_t thread_id, cp_pyn_sample *out)
{
    out->npcs = 0;
    out->npy = out->py_omitted = out->ngens = 0;
    out->g.count = 0;
    if (!atomic_load(&g_n.ready) || tid <= 0)
        return false;
    if ((atomic_load(&g_n.state) & 3u) == PH_FILL)
        return false; /* an earlier handler is still writing: skip, never wait */
    uint32_t seq = (g_n.seq + 1) & SEQ_MASK, req = word(seq, PH_REQ);
    g_n.seq = seq;
    g_n.r.ts = ts;
    g_n.r.thread_id = thread_id;
    g_n.r.cap = out->g.cap < CP_PYN_PY_MAX ? out->g.cap : CP_PYN_PY_MAX;
    atomic_store(&g_n.state, req);
    atomic_fetch_add(&g_n.requests, 1);
    if (!send(tid, MAGIC | seq)) {
        atomic_store(&g_n.state, word(seq, PH_IDLE));
        return false;
    }
    /* A thread that is runnable but not running (a loaded machine) answers
     * when it next gets a CPU: wait for it, within the tick's budget. */
    int64_t start = mono_ns(), limit = TICK_WAIT_NS - g_n.tick_waited;
    limit = limit < WAIT_NS ? (limit > 0 ? limit : 0) : WAIT_NS;
    for (;;) {
        uint32_t cur = atomic_load(&g_n.state);
        int64_t waited = mono_ns() - start;
        if (cur == word(seq, PH_READY))
            break;
        if (cur == req && waited >= limit) {
            uint32_t want = req;
            if (atomic_compare_exchange_strong(&g_n.state, &want, word(seq, PH_IDLE))) {
                atomic_fetch_add(&g_n.timeouts, 1);
                g_n.tick_waited += waited;
                return false;
            }
            continue; /* claimed meanwhile */
        }
        if (cur == word(seq, PH_FILL) && waited >= FILL_WAIT_NS) {
            atomic_fetch_add(&g_n.timeouts, 1);
            return false; /* the next capture waits for it to leave FILL */
        }
        futex_wait(&g_n.state, cur, (cur == req ? limit : FILL_WAIT_NS) - waited);
    }
    g_n.tick_waited += mono_ns() - start;
    bool ok = give(&g_n.r, out); /* ours alone until IDLE is stored */
    atomic_store(&g_n.state, word(seq, PH_IDLE));
    if (ok)
        atomic_fetch_add(&g_n.answered, 1);
    return ok;
}

void cp__pyn_tick_begin(void)
{
    static int64_t next_check;
    struct sigaction cur;
    int sig = atomic_load(&g_n.signo);
    int64_t now = mono_ns();
    g_n.tick_waited = 0;
    /* Someone installed their own handler on our signal since: leave it
     * to them (our requests would run their handler) and stop asking.
     * Looked at every OWNER_CHECK_NS, not at each tick: a system call (a
     * fifth of a tick's) for an event that is rare, as the JVM agent's
     * wall thread does. */
    if (now < next_check)
        return;
    next_check = now + OWNER_CHECK_NS;
    if (atomic_load(&g_n.ready) && sig > 0 && sigaction(sig, NULL, &cur) == 0 &&
        (!(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != on_signal)) {
        atomic_store(&g_n.ready, false);
        for (int i = 0; i < CP_PYN_TIMERS; i++)
            cp__pyn_timer_drop(i); /* their signals would run the new handler */
        cp__pyn_young_stop_all();
        cp_log(CP_LOG_WARN, "native_frames: signal %d was taken over by another handler; "
               "Python frames only from now on", sig);
    }
}

void cp__pyn_forget(void)
{
    atomic_store(&g_n.state, 0);
    g_n.seq = 0;
    /* A forked child inherits no timer. */
    for (int i = 0; i < CP_PYN_TIMERS; i++)
        g_t[i].on = false;
    for (int k = 0; k < CP_PYN_YOUNG; k++) {
        atomic_store(&g_y[k].on, false);
        atomic_store(&g_y[k].busy, false);
        atomic_store(&g_y[k].hits, 0);
        atomic_flag_clear(&g_y[k].lock); /* a thread that held it is gone */
    }
}

/* ---- start -------------------------------------------------------------- */

static bool take_signal(void)
{
    struct sigaction old, sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    /* The low real-time signals are left to libraries that hard-code
     * SIGRTMIN+n; one nobody handles is taken, and kept for the life of the
     * process: a default real-time disposition would kill it if a late
     * request arrived after a restore. */
    for (int s = SIGRTMAX - 3; s >= SIGRTMIN + 8; s--) {
        if (sigaction(s, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
            (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN))
            continue;
        if (sigaction(s, &sa, NULL) == 0) {
            atomic_store(&g_n.signo, s);
            return true;
        }
    }
    return false;
}

bool cp__pyn_start(void)
{
    static bool tried;
    if (tried)
        return atomic_load(&g_n.ready);
    tried = true;
    void *eval = dlsym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault");
    cp_frame f = {0};
    if (eval == NULL || cp_native_init() != CP_OK) {
        cp_log(CP_LOG_WARN, "native_frames: the native unwinder is unavailable here; "
               "Python frames only");
        return false;
    }
    cp_native_symbolize((uintptr_t)eval, false, &f);
    if (f.module == NULL || strncmp(f.name, "_PyEval_EvalFrameDefault", 24) != 0) {
        cp_log(CP_LOG_WARN, "native_frames: cannot name the interpreter's eval loop "
               "(stripped?); Python frames only");
        return false;
    }
    g_n.interp_module = f.module;
    if (!cp_native_segment_extent((uintptr_t)eval, &g_n.interp_lo, &g_n.interp_hi))
        g_n.interp_lo = g_n.interp_hi = 0;
    g_n.pid = getpid();
    g_n.uid = getuid();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (!take_signal()) {
        cp_log(CP_LOG_WARN, "native_frames: no free real-time signal; Python frames only");
        return false;
    }
    atomic_store(&g_n.ready, true);
    return true;
}

bool cp__pyn_ready(void) { return atomic_load(&g_n.ready); }

int cp__pyn_signal(void) { return atomic_load(&g_n.signo); }

/* ---- merging ------------------------------------------------------------ */

/* An object unloaded since may have left its addresses to another: classes
 * of pcs outside the interpreter's code are forgotten. The interpreter's
 * own (most pcs: every leaf in the eval loop and the functions it calls)
 * are kept, so that each is named once. */
void cp__pyn_new_epoch(void)
{
    memset(g_n.others, 0, sizeof g_n.others);
}

static int classify(uintptr_t pc, bool ret)
{
    uintptr_t key = ret ? pc - 1 : pc;
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    struct pcclass *e = key >= g_n.interp_lo && key < g_n.interp_hi ? &g_n.classes[h >> (64 - CLASS_BITS)]
                                                                     : &g_n.others[h >> (64 - OTHER_BITS)];
    if (e->pc == key && e->cls != CL_NONE)
        return e->cls;
    cp_frame f = {0};
    cp_native_symbolize(pc, ret, &f);
    int cls = CL_OTHER;
    if (f.module != NULL && g_n.interp_module != NULL && strcmp(f.module, g_n.interp_module) == 0)
        cls = f.name != NULL && strncmp(f.name, "_PyEval_EvalFrameDefault", 24) == 0 ? CL_EVAL : CL_INTERP;
    e->pc = key;
    e->cls = cls;
    return cls;
}

typedef struct outbuf {
    cp_rawframe *f;
    uint32_t n, cap, over;
} outbuf;

static void push(outbuf *o, cp_rawframe f)
{
    if (o->n < o->cap)
        o->f[o->n++] = f;
    else
        o->over++;
}

static cp_rawframe native(uintptr_t pc, int i)
{
    return (cp_rawframe){(uint64_t)pc, CP_RAW_NATIVE, i > 0};
}

uint32_t cp__pyn_merge(const uintptr_t *pcs, int npcs, const cp_rawframe *py, uint32_t npy,
                       uint32_t py_omitted, const cp_evalgroups *g, cp_rawframe *out, uint32_t cap,
                       uint32_t *omitted)
{
    outbuf o = {out, 0, cap, 0};
    uint32_t pi = 0, gi = 0;
    for (int i = 0; i < npcs; i++) {
        int cls = classify(pcs[i], i > 0);
        if (cls == CL_INTERP)
            continue; /* call plumbing; its time is the Python line's */
        if (cls != CL_EVAL) {
            push(&o, native(pcs[i], i));
            continue;
        }
        if (gi < g->count)
            for (uint32_t k = g->n[gi++]; k > 0 && pi < npy; k--)
                push(&o, py[pi++]);
        if (gi >= g->count)
            break; /* what lies below is the thread's start-up */
    }
    /* Calls the unwind did not reach (it stopped early). */
    while (pi < npy)
        push(&o, py[pi++]);
    *omitted = o.over + py_omitted;
    return o.n;
}

uint32_t cp__pyn_native_only(const uintptr_t *pcs, int npcs, cp_rawframe *out, uint32_t cap,
                             uint32_t *omitted)
{
    outbuf o = {out, 0, cap, 0};
    for (int i = 0; i < npcs; i++)
        push(&o, native(pcs[i], i));
    *omitted = o.over;
    return o.n;
}

/* ---- counters ------------------------------------------------------------ */

void cp__pyn_count_native_thread(void) { atomic_fetch_add(&g_n.native_threads, 1); }

void cp__pyn_stats_get(cp_pyn_stats *out)
{
    out->requests = atomic_load(&g_n.requests);
    out->answered = atomic_load(&g_n.answered);
    out->timeouts = atomic_load(&g_n.timeouts);
    out->native_threads = atomic_load(&g_n.native_threads);
}

/* The counters as JSON into buf. */
static void stats_json(char *buf, size_t n)
{
    cp_native_stats st;
    cp_pyn_stats p;
    cp_native_stats_get(&st);
    cp__pyn_stats_get(&p);
    int timers = 0;
    for (int i = 0; i < CP_PYN_TIMERS; i++)
        timers += g_t[i].on;
    snprintf(buf, n,
             "{\"enabled\":%s,\"requests\":%llu,\"answered\":%llu,\"timeouts\":%llu,"
             "\"native_threads\":%llu,\"unwinds\":%llu,\"frames\":%llu,"
             "\"stopped\":{\"end\":%llu,\"truncated\":%llu,\"unknown_pc\":%llu,"
             "\"no_unwind_info\":%llu,\"error\":%llu},\"objects\":%llu,\"symbols_cached\":%llu,"
             "\"signal\":%d,\"timers\":%d}",
             atomic_load(&g_n.ready) ? "true" : "false", (unsigned long long)p.requests,
             (unsigned long long)p.answered, (unsigned long long)p.timeouts,
             (unsigned long long)p.native_threads,
             (unsigned long long)st.unwinds, (unsigned long long)st.frames,
             (unsigned long long)st.stops[CP_UNWIND_END], (unsigned long long)st.stops[CP_UNWIND_TRUNCATED],
             (unsigned long long)st.stops[CP_UNWIND_UNKNOWN_PC], (unsigned long long)st.stops[CP_UNWIND_NO_INFO],
             (unsigned long long)st.stops[CP_UNWIND_ERROR], (unsigned long long)st.modules,
             (unsigned long long)st.symbols_cached, atomic_load(&g_n.signo), timers);
}

void cp__pyn_publish(void)
{
    char json[768];
    if (!atomic_load(&g_n.ready))
        return;
    stats_json(json, sizeof json);
    cp_runtime_info_set("native_stacks", json);
}

const char *cp__pyn_stats_json(void)
{
    static char json[768];
    stats_json(json, sizeof json);
    return json;
}
