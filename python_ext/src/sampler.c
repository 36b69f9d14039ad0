/*
 * sampler.c — the GIL-free CPU/wall sampler thread (see sampler.h).
 *
 * Per tick: walk the thread-state list (fault-safe reads), and for each
 * thread (1) read its CPU clock from the kernel tid and, if it advanced,
 * record a CPU sample weighted by the delta; (2) for a bounded, round-robin
 * subset, record wall time elapsed since that thread's last wall sample.
 * An idle thread whose top frame did not move reuses its cached stack and
 * its wall time is coalesced, so idle threads cost two small reads.
 * Nothing here mallocs, locks against Python, or sends signals.
 */
#include <Python.h>

#include "sampler.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "contprof.h"
#include "pywalk.h"
#include "resolver.h"
#include "saferead.h"

#define MAX_THREADS 1024      /* tracked thread states; more are skipped  */
#define NATIVE_CAP 4096       /* ident -> tid table (power of two)        */
#define COALESCE_NS 1000000000LL /* idle wall time is emitted at least every 1 s */
#define RING_SLOTS 2048      /* raw samples in flight; the resolver is kicked at half */
#define CODE_EPOCH_TICKS 10      /* walker's code cache lives this many ticks */
#define FULL_WALK_TICKS 50       /* re-walk the thread list at least this often */
#define CPU_CHECKS_MAX 16        /* idle threads' CPU clocks read per tick   */

typedef struct tslot {
    uintptr_t ts;               /* 0 = free slot                           */
    bool hot;                   /* used CPU when last checked              */
    uint64_t thread_id, native_id, seen_gen;
    int64_t last_cpu, last_wall;
    uintptr_t top;              /* top frame address of the cached stack   */
    uint64_t top_code, top_instr;
    bool stack_valid;
    uint32_t nframes, omitted;
    cp_rawframe *stack;
    int64_t pend_wall_ns, pend_wall_n, pend_since;
} tslot;

typedef struct sampler {
    cp_sampler_opts o;
    pthread_t thr;
    int wake_fd;                /* eventfd: written once to stop the thread */
    atomic_bool stop, running;
    cp_rawring ring;
    tslot *slots;
    cp_rawframe *stacks;
    uint64_t gen;
    /* The thread-state list as of the last full walk (see tick()). */
    uintptr_t list_head;
    uint64_t walks, last_walk_gen;
    bool starting;              /* a listed thread has not started yet    */
    size_t nlist;
    uintptr_t *list_ts;         /* [MAX_THREADS]                          */
    uint32_t *list_slot;        /* slot index of each                     */
    cp_tsinfo *list_info;       /* this tick's copy of each               */
    bool *list_ok;
    uint8_t *ts_buf;            /* [MAX_THREADS * ts span], batched reads */
    _Atomic uint64_t skip[4];
} sampler;

static sampler g_s;

static struct {
    _Atomic uint64_t key[NATIVE_CAP];
    _Atomic uint64_t val[NATIVE_CAP];
} g_native;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CPU clock of a kernel thread id. A dead tid gives EINVAL, never another
 * thread's clock, which is why we do not go through a pthread_t here. */
static int64_t thread_cpu_ns(uint64_t tid)
{
    struct timespec ts;
    clockid_t cid = (clockid_t)(((unsigned)~(pid_t)tid << 3) | 6); /* CPUCLOCK_SCHED|PERTHREAD */
    if (!tid || clock_gettime(cid, &ts) != 0)
        return -1;
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- ident -> native tid (interpreters < 3.11) ---------------------- */

static size_t native_hash(uint64_t k)
{
    return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 52) & (NATIVE_CAP - 1);
}

static bool native_insert(uint64_t thread_id, uint64_t native_id)
{
    size_t h = native_hash(thread_id);
    for (size_t i = 0; i < NATIVE_CAP; i++) {
        size_t j = (h + i) & (NATIVE_CAP - 1);
        uint64_t k = atomic_load(&g_native.key[j]);
        if (k == thread_id || k == 0) {
            atomic_store(&g_native.val[j], native_id);
            atomic_store(&g_native.key[j], thread_id);
            return true;
        }
    }
    return false;
}

/* Writers hold the GIL, so they never race each other. When the table is
 * full of long-gone idents it is cleared: live threads are re-registered by
 * the resolver's periodic refresh, and meanwhile the sampler's slots keep
 * the tid they had. */
void cp__native_id_set(uint64_t thread_id, uint64_t native_id)
{
    if (native_insert(thread_id, native_id))
        return;
    for (size_t j = 0; j < NATIVE_CAP; j++)
        atomic_store(&g_native.key[j], 0);
    native_insert(thread_id, native_id);
}

uint64_t cp__native_id_get(uint64_t thread_id)
{
    size_t h = native_hash(thread_id);
    for (size_t i = 0; i < NATIVE_CAP; i++) {
        size_t j = (h + i) & (NATIVE_CAP - 1);
        uint64_t k = atomic_load(&g_native.key[j]);
        if (k == 0)
            return 0;
        if (k == thread_id)
            return atomic_load(&g_native.val[j]);
    }
    return 0;
}

void cp__sampler_skip(uint64_t thread_id)
{
    for (int i = 0; i < 4; i++) {
        uint64_t z = 0;
        if (atomic_compare_exchange_strong(&g_s.skip[i], &z, thread_id))
            return;
    }
}

static bool skipped(uint64_t thread_id)
{
    for (int i = 0; i < 4; i++)
        if (atomic_load_explicit(&g_s.skip[i], memory_order_relaxed) == thread_id)
            return true;
    return false;
}

/* ---- emitting ------------------------------------------------------- */

static void emit(const tslot *t, int64_t cpu_ns, int64_t wall_ns, int64_t wall_n)
{
    cp_rawsample *s = cp__ring_reserve(&g_s.ring);
    if (!s) {
        cp_metrics_add_dropped(1);
        return;
    }
    s->thread_id = t->thread_id;
    s->native_id = t->native_id;
    s->cpu_ns = cpu_ns;
    s->cpu_n = cpu_ns > 0;
    s->wall_ns = wall_ns;
    s->wall_n = wall_n;
    s->nframes = t->nframes;
    s->omitted = t->omitted;
    memcpy(s->frames, t->stack, t->nframes * sizeof(cp_rawframe));
    cp__ring_commit(&g_s.ring);
    cp_metrics_add_taken(1);
    if (cp__ring_used(&g_s.ring) == g_s.ring.nslots / 2)
        cp__resolver_kick();
}

static void flush_pending(tslot *t)
{
    if (t->pend_wall_n > 0 && t->stack_valid)
        emit(t, 0, t->pend_wall_ns, t->pend_wall_n);
    t->pend_wall_ns = t->pend_wall_n = 0;
}

/* ---- per thread ----------------------------------------------------- */

/* Make t's cached stack current. Unless forced (the thread just used CPU,
 * so it has surely moved), first check whether the top frame is where it
 * was (same frame, code and instruction): then the cached stack is reused. */
static void refresh_stack(tslot *t, const cp_tsinfo *ti, bool force)
{
    uintptr_t top = cp__ts_top(ti, false);
    cp_topinfo now = {0, 0};
    if (!force && t->stack_valid && top == t->top && top && cp__frame_peek(top, &now) &&
        now.code == t->top_code && now.instr == t->top_instr)
        return;
    flush_pending(t); /* its wall time belongs to the old stack */
    t->omitted = 0;
    t->nframes = top ? cp__walk(top, false, t->stack, g_s.o.max_frames, &t->omitted, &now) : 0;
    t->top = top;
    t->top_code = now.code;
    t->top_instr = now.instr;
    t->stack_valid = true;
}

static void sample_cpu(tslot *t, const cp_tsinfo *ti, bool *fresh)
{
    int64_t cpu = thread_cpu_ns(t->native_id);
    if (cpu < 0)
        return;
    int64_t delta = t->last_cpu >= 0 ? cpu - t->last_cpu : 0;
    t->last_cpu = cpu;
    t->hot = delta > 0;
    if (delta <= 0)
        return;
    refresh_stack(t, ti, true);
    *fresh = true;
    /* Even with no Python frame (native code in a Python thread): the
     * resolver shows it as a pseudo-frame so the CPU stays visible. */
    emit(t, delta, 0, 0);
}

static void sample_wall(tslot *t, const cp_tsinfo *ti, bool fresh, int64_t now)
{
    int64_t w = now - t->last_wall;
    t->last_wall = now;
    if (w <= 0)
        return;
    if (!fresh)
        refresh_stack(t, ti, false);
    if (t->nframes == 0)
        return; /* no Python frame: nothing to charge */
    if (t->pend_wall_n == 0)
        t->pend_since = now;
    t->pend_wall_ns += w;
    t->pend_wall_n += 1;
    if (now - t->pend_since >= COALESCE_NS)
        flush_pending(t);
}

/* The slot of thread state ts, made on first sight. Threads found by the
 * first walk predate profiling and count CPU from now; any found later
 * started under us and count from their start. */
static tslot *slot_for(const cp_tsinfo *ti, uintptr_t ts, int64_t now, bool is_new)
{
    tslot *free_slot = NULL;
    for (size_t i = 0; i < MAX_THREADS; i++) {
        tslot *t = &g_s.slots[i];
        if (t->ts == ts && t->thread_id == ti->thread_id)
            return t;
        if (!t->ts && !free_slot)
            free_slot = t;
    }
    if (!free_slot)
        return NULL;
    cp_rawframe *stack = free_slot->stack;
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->stack = stack;
    free_slot->ts = ts;
    free_slot->thread_id = ti->thread_id;
    free_slot->last_cpu = is_new ? 0 : -1;
    free_slot->last_wall = now;
    return free_slot;
}

/* ---- tick ----------------------------------------------------------- */

typedef struct tickctx {
    int64_t now;
    unsigned what;
    size_t wall_stride, cpu_stride;
} tickctx;

/* Whether list entry idx gets its CPU clock / wall time read this tick:
 * CPU if it was busy at its last check or its round-robin turn has come,
 * wall on its round-robin turn. So idle threads cost a bounded number of
 * reads per tick however many there are; a thread that wakes up is caught
 * within one round and from then on checked every tick. */
static bool wants_cpu(const tslot *t, size_t idx, const tickctx *c)
{
    return (c->what & 1) && (t->hot || (idx + g_s.gen) % c->cpu_stride == 0);
}

static bool wants_wall(size_t idx, const tickctx *c)
{
    return (c->what & 2) && (idx + g_s.gen) % c->wall_stride == 0;
}

static void visit(tslot *t, const cp_tsinfo *ti, size_t idx, const tickctx *c)
{
    t->seen_gen = g_s.gen;
    /* Re-read every visit: a thread state and pthread_t can both be reused
     * by a new thread. */
    uint64_t nid = ti->native_id ? ti->native_id : cp__native_id_get(ti->thread_id);
    if (nid && nid != t->native_id) {
        if (t->native_id) {
            /* A new kernel thread behind the same thread state and ident:
             * the old thread's pending wall time is its own, and its cached
             * stack must never be emitted under the new thread's name. */
            flush_pending(t);
            t->stack_valid = false;
            t->top = 0;
            t->hot = false;
        }
        t->native_id = nid;
        t->last_cpu = t->last_cpu < 0 ? -1 : 0;
    }
    bool fresh = false;
    if (wants_cpu(t, idx, c))
        sample_cpu(t, ti, &fresh);
    if (wants_wall(idx, c))
        sample_wall(t, ti, fresh, c->now);
}

static void reap(void)
{
    for (size_t i = 0; i < MAX_THREADS; i++) {
        tslot *t = &g_s.slots[i];
        if (t->ts && t->seen_gen != g_s.gen) {
            flush_pending(t);
            t->ts = 0;
        }
    }
}

/* Walk the list from head (one read per thread state) and remember it.
 * Slots of threads no longer listed are retired only after a complete
 * walk: a walk cut short by a thread state freed under it proves nothing
 * about the threads after it. */
static void full_walk(uintptr_t head, int64_t now)
{
    size_t n = 0;
    cp_tsinfo ti;
    bool complete = false, is_new = g_s.walks > 0;
    uintptr_t ts = head;
    g_s.starting = false;
    for (; n < MAX_THREADS; ts = ti.next) {
        if (!ts) {
            complete = true;
            break;
        }
        if (!cp__ts_read(ts, false, &ti) || ti.interp != g_s.o.interp)
            break;
        if (ti.thread_id == 0) {
            /* created by its parent, not yet running: look again soon */
            g_s.starting = true;
            continue;
        }
        tslot *t = skipped(ti.thread_id) ? NULL : slot_for(&ti, ts, now, is_new);
        if (!t)
            continue;
        t->seen_gen = g_s.gen;
        g_s.list_ts[n] = ts;
        g_s.list_slot[n] = (uint32_t)(t - g_s.slots);
        g_s.list_info[n] = ti;
        g_s.list_ok[n++] = true;
    }
    g_s.nlist = n;
    g_s.walks++;
    g_s.last_walk_gen = g_s.gen;
    if (complete) {
        g_s.list_head = head;
        reap();
    } else {
        g_s.list_head = 0; /* walk again next tick */
    }
}

/* Read the selected thread states (idx[0..k)) in one vectored read; the
 * kernel stops at the first unreadable one, which we skip. */
static void read_selected(const uint32_t *idx, size_t k)
{
    size_t span = cp__ts_span(), done = 0;
    struct iovec loc[64], rem[64];
    while (done < k) {
        size_t m = k - done < 64 ? k - done : 64;
        for (size_t i = 0; i < m; i++) {
            loc[i] = (struct iovec){g_s.ts_buf + i * span, span};
            rem[i] = (struct iovec){(void *)g_s.list_ts[idx[done + i]], span};
        }
        long got = cp__saferead_vec(loc, rem, (int)m);
        size_t full = got > 0 ? (size_t)got / span : 0;
        for (size_t i = 0; i < full; i++) {
            cp__ts_parse(g_s.ts_buf + i * span, &g_s.list_info[idx[done + i]]);
            g_s.list_ok[idx[done + i]] = true;
        }
        done += full < m ? full + 1 : m; /* skip the one that failed */
    }
}

/* Between full walks: re-read only the entries this tick will look at. */
static void select_and_read(const tickctx *c)
{
    uint32_t *sel = g_s.list_slot + MAX_THREADS; /* scratch after list_slot */
    size_t k = 0;
    for (size_t i = 0; i < g_s.nlist; i++) {
        g_s.list_ok[i] = false;
        if (wants_cpu(&g_s.slots[g_s.list_slot[i]], i, c) || wants_wall(i, c))
            sel[k++] = (uint32_t)i;
    }
    read_selected(sel, k);
}

/* Is list entry i (read this tick) still the thread it was at the last
 * full walk? */
static tslot *still_there(size_t i)
{
    tslot *t = &g_s.slots[g_s.list_slot[i]];
    const cp_tsinfo *ti = &g_s.list_info[i];
    if (!g_s.list_ok[i] || ti->interp != g_s.o.interp || t->ts != g_s.list_ts[i])
        return NULL;
    if (t->thread_id != ti->thread_id) {
        g_s.list_head = 0; /* thread state reused by a new thread: re-walk */
        return NULL;
    }
    return t;
}

static tickctx make_ctx(unsigned what, int64_t now)
{
    size_t n = g_s.nlist, wall = g_s.o.wall_threads_max ? g_s.o.wall_threads_max : 1;
    tickctx c = {now, what, n <= wall ? 1 : (n + wall - 1) / wall,
                 n <= CPU_CHECKS_MAX ? 1 : (n + CPU_CHECKS_MAX - 1) / CPU_CHECKS_MAX};
    return c;
}

static void tick(unsigned what, int64_t now)
{
    uintptr_t head = (uintptr_t)PyInterpreterState_ThreadHead((PyInterpreterState *)g_s.o.interp);
    if (++g_s.gen % CODE_EPOCH_TICKS == 0)
        cp__walk_new_epoch();
    /* New threads are prepended to the list, so a new head means new
     * threads (walked at once); exits are caught by
     * still_there() and by the periodic walk. */
    uint64_t since = g_s.gen - g_s.last_walk_gen;
    bool walk = g_s.walks == 0 || since >= FULL_WALK_TICKS || (head != g_s.list_head && since >= 1) ||
                g_s.list_head == 0 || g_s.starting;
    if (walk)
        full_walk(head, now);
    tickctx c = make_ctx(what, now);
    if (!walk)
        select_and_read(&c);
    for (size_t i = 0; i < g_s.nlist; i++) {
        tslot *t = g_s.list_ok[i] ? still_there(i) : NULL;
        if (t)
            visit(t, &g_s.list_info[i], i, &c);
    }
}

/* Interval with +-25% uniform jitter, so that sampling never locks onto a
 * workload's own period (aliasing would bias the profile). */
static int64_t jittered(int64_t interval, uint64_t *rng)
{
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    return interval - interval / 4 + (int64_t)(*rng % (uint64_t)(interval / 2 + 1));
}

/* Which kinds are due. When one is due, the other is taken too if it is
 * due within half its interval: with +-25% jitter on equal intervals that
 * keeps CPU and wall on one shared wake-up (each wake-up costs ~15 us of
 * CPU in a VM, more than the sampling itself). */
static unsigned due(int64_t now, const int64_t next[2])
{
    bool cpu = g_s.o.cpu && now >= next[0], wall = g_s.o.wall && now >= next[1];
    if (cpu && g_s.o.wall && now >= next[1] - g_s.o.wall_interval_ns / 2)
        wall = true;
    if (wall && g_s.o.cpu && now >= next[0] - g_s.o.cpu_interval_ns / 2)
        cpu = true;
    return (cpu ? 1u : 0u) | (wall ? 2u : 0u);
}

static int64_t next_wake(const int64_t next[2])
{
    if (g_s.o.cpu && g_s.o.wall)
        return next[0] < next[1] ? next[0] : next[1];
    return g_s.o.cpu ? next[0] : next[1];
}

/* Sleep until the absolute monotonic time wake, or until stop is signalled.
 * One ppoll: no mutex, so no extra futex syscalls per tick. */
static void sleep_until(int64_t wake)
{
    int64_t d = wake - mono_ns();
    if (d <= 0)
        return;
    struct pollfd pfd = {g_s.wake_fd, POLLIN, 0};
    struct timespec ts = {d / 1000000000LL, d % 1000000000LL};
    ppoll(&pfd, 1, &ts, NULL);
}

static void *run(void *arg)
{
    (void)arg;
    uint64_t rng = (uint64_t)mono_ns() | 1;
    cp_thread_register_self();
    int64_t next[2] = {mono_ns(), mono_ns()};
    while (!atomic_load(&g_s.stop)) {
        int64_t now = mono_ns();
        unsigned what = due(now, next);
        if (what) {
            tick(what, now);
            if (what & 1)
                next[0] = now + jittered(g_s.o.cpu_interval_ns, &rng);
            if (what & 2)
                next[1] = now + jittered(g_s.o.wall_interval_ns, &rng);
        }
        sleep_until(next_wake(next));
    }
    cp_thread_unregister_self();
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------ */

static bool alloc_tables(uint32_t max_frames)
{
    if (g_s.slots && g_s.ring.max_frames == max_frames)
        return true;
    cp__sampler_free();
    g_s.slots = calloc(MAX_THREADS, sizeof(tslot));
    g_s.stacks = calloc((size_t)MAX_THREADS * max_frames, sizeof(cp_rawframe));
    g_s.list_ts = calloc(MAX_THREADS, sizeof(uintptr_t));
    g_s.list_slot = calloc(2 * MAX_THREADS, sizeof(uint32_t)); /* + selection scratch */
    g_s.list_info = calloc(MAX_THREADS, sizeof(cp_tsinfo));
    g_s.list_ok = calloc(MAX_THREADS, sizeof(bool));
    g_s.ts_buf = calloc(MAX_THREADS, cp__ts_span());
    if (!g_s.slots || !g_s.stacks || !g_s.list_ts || !g_s.list_slot || !g_s.list_info ||
        !g_s.list_ok || !g_s.ts_buf || !cp__ring_init(&g_s.ring, RING_SLOTS, max_frames)) {
        cp__sampler_free();
        return false;
    }
    return true;
}

static void reset_tables(void)
{
    for (size_t i = 0; i < MAX_THREADS; i++) {
        memset(&g_s.slots[i], 0, sizeof(tslot));
        g_s.slots[i].stack = g_s.stacks + i * g_s.o.max_frames;
    }
    atomic_store(&g_s.ring.head, 0);
    atomic_store(&g_s.ring.tail, 0);
    g_s.nlist = 0;
    g_s.list_head = 0;
    g_s.walks = g_s.last_walk_gen = 0;
    g_s.starting = false;
}

static bool init_sync(void)
{
    /* A forked child inherits the fd; a fresh one keeps parent and child
     * from waking each other. */
    if (g_s.wake_fd > 0)
        close(g_s.wake_fd);
    g_s.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return g_s.wake_fd >= 0;
}

int cp__sampler_start(const cp_sampler_opts *opts)
{
    if (atomic_load(&g_s.running))
        return CP_ESTATE;
    if (!cp__saferead_init()) {
        cp_log(CP_LOG_ERROR, "cannot read memory safely (process_vm_readv and pipe both failed); CPU/wall sampling disabled");
        return CP_EIO;
    }
    if (!alloc_tables(opts->max_frames))
        return CP_ENOMEM;
    g_s.o = *opts;
    reset_tables();
    if (!init_sync())
        return CP_EIO;
    for (int i = 0; i < 4; i++)
        atomic_store(&g_s.skip[i], 0);
    atomic_store(&g_s.stop, false);
    sigset_t all, old;
    sigfillset(&all);
    /* The thread blocks every signal so that none is ever delivered to it
     * instead of a Python thread (CPython's handlers expect the main one). */
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&g_s.thr, NULL, run, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return CP_ENOMEM;
    atomic_store(&g_s.running, true);
    return CP_OK;
}

void cp__sampler_stop(void)
{
    if (!atomic_load(&g_s.running))
        return;
    uint64_t one = 1;
    atomic_store(&g_s.stop, true);
    /* Wakes the thread at once; should the write fail it still sees stop
     * within one interval. */
    ssize_t w = write(g_s.wake_fd, &one, sizeof one);
    (void)w;
    pthread_join(g_s.thr, NULL);
    atomic_store(&g_s.running, false);
    for (size_t i = 0; i < MAX_THREADS; i++)
        if (g_s.slots[i].ts)
            flush_pending(&g_s.slots[i]);
}

void cp__sampler_forget(void)
{
    atomic_store(&g_s.running, false);
    if (g_s.slots)
        reset_tables();
}

void cp__sampler_free(void)
{
    free(g_s.slots);
    free(g_s.stacks);
    free(g_s.list_ts);
    free(g_s.list_slot);
    free(g_s.list_info);
    free(g_s.list_ok);
    free(g_s.ts_buf);
    g_s.list_ts = NULL;
    g_s.list_slot = NULL;
    g_s.list_info = NULL;
    g_s.list_ok = NULL;
    g_s.ts_buf = NULL;
    cp__ring_free(&g_s.ring);
    g_s.slots = NULL;
    g_s.stacks = NULL;
}

cp_rawring *cp__sampler_ring(void)
{
    return g_s.ring.slots ? &g_s.ring : NULL;
}
