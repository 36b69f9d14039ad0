/*
 * sampler.c — the GIL-free CPU/wall sampler thread (see sampler.h).
 *
 * Per tick: walk the thread-state list (fault-safe reads), and for each
 * thread (1) read its CPU clock from the kernel tid and, if it advanced,
 * charge the delta to its current stack if the thread is running Python
 * code (holds the GIL) or ran nearly all the time since; otherwise (it
 * came to wait: sleep, I/O, a lock, the GIL) the CPU was burned before,
 * elsewhere, and is held until a tick finds the thread running Python
 * code (see cpu_destination); (2) for a bounded, round-robin
 * subset, charge the wall time elapsed since that thread's last wall
 * sample. A thread whose stack is what it was has its CPU and wall time
 * coalesced into one pending sample (emitted when the stack changes, at
 * least every second, and at exit), so a thread that waits (for the GIL,
 * a lock, I/O) costs a clock read, at most a walk, and no ring slot. Only
 * threads that really ran (used a sixteenth of an interval) are read
 * every tick; the others in bounded round robin, so the per-tick cost
 * grows with running threads, not with threads.
 * Threads report their final CPU clock as they exit (cp__sampler_thread_exit),
 * once the interpreter is done with them, so the part of their last
 * interval and their teardown are not lost.
 * A thread's walk starts with one read that copies the word locating its
 * top frame together with the ranges its frames occupied at its last walk
 * (pywalk's hint), so a thread whose frames stayed in place costs one
 * syscall; a thread whose CPU clock did not move costs no read at all.
 * While no thread runs, ticks come 50 ms apart (quiet mode, quiet_update).
 * Nothing here mallocs, locks against Python, or sends signals; the thread
 * sleeps on a futex, so it holds no file descriptor.
 */
#include <Python.h>

#include "sampler.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "codekeep.h"
#include "cthreads.h"
#include "pynative.h"
#include "contprof.h"
#include "contprof_os.h"
#include "pyasync.h"
#include "pyoffsets.h"
#include "pywalk.h"
#include "resolver.h"
#include "saferead.h"
#include "spinlock.h"

#define MAX_THREADS 1024      /* tracked thread states; more are skipped  */
#define SIGHT_BUCKETS 10       /* exit_wall: lives up to 128 ms */
#define NATIVE_CAP 4096       /* ident -> tid table (power of two)        */
#define COALESCE_NS 1000000000LL /* idle wall time is emitted at least every 1 s */
#define QUIET_TICKS 20           /* CPU ticks that found no thread running ... */
#define QUIET_TICK_NS 50000000LL /* ... before ticks come this far apart      */
#define GONE_SLOTS 64        /* threads reaped before their exit report */
#define RING_SLOTS 4096      /* raw samples in flight; the resolver is kicked at a quarter */
#define CODE_EPOCH_TICKS 10      /* walker's code cache lives this many ticks */
#define CODE_EPOCH_NS 1000000000LL /* and at most this long: well within codekeep's KEEP */
#define FULL_WALK_TICKS 50       /* re-walk the thread list at least this often */
#define CPU_CHECKS_MAX 16        /* idle threads' CPU clocks read per tick   */
#define WALK_STEPS_MAX (4 * MAX_THREADS) /* list entries visited per walk */
#define EXIT_SLOTS 512           /* exit reports in flight (power of two)    */
#define HOLD_MAX_NS 4000000000LL /* CPU of a waiting thread is held at most this long */
#define IDLE_AFTER_NS 1000000000LL /* a thread whose clock stood this long ... */
#define IDLE_CHECK_NS 100000000LL /* ... is looked at this often (jittered)    */
#define WAIT_CAP 1024            /* lock-waiting threads table (power of two) */

typedef struct tslot {
    uintptr_t ts;               /* 0 = free slot                           */
    bool hot;                   /* ran (see CP_HOT_DIV) when last checked  */
    bool exited;                /* final CPU taken from its exit report    */
    bool report_due;            /* unlisted once: its exit report may follow */
    uint64_t thread_id, native_id, seen_gen;
    int64_t last_cpu, last_wall;
    bool stack_valid;
    cp_walkhint hint;           /* where its frames were at the last walk  */
    int64_t stack_cpu;          /* its CPU clock when the cached stack was
                                 * known to be current; -1 = unknown      */
    int64_t clk, clk_before;    /* its last CPU clock reading (at tick
                                 * clk_gen: this tick's if it is g_s.gen)
                                 * and the last one of an earlier tick
                                 * (see read_clock); -1 = none             */
    uint64_t clk_gen;
    uint32_t nframes, omitted;
    cp_rawframe *stack;
    char task[CP_TASK_NAME_MAX]; /* asyncio task running the cached stack, "" = none */
    int64_t pend_cpu_ns, pend_cpu_n, pend_wall_ns, pend_wall_n, pend_since;
    int64_t held_cpu, held_since; /* CPU not yet charged: it ran, then waited */
    bool timed;                 /* had its own CPU timer at its last full CPU sample */
    int64_t idle_clk;           /* its clock when it was last seen to move  */
    int64_t idle_since, idle_next; /* when seen idle first, and next due (idle_wait) */
    int64_t wall_held_ns, wall_held_n; /* wall of ticks it ran throughout while
                                 * its CPU waited (sample_cpu): goes with it */
    int64_t cpu_at;             /* when last_cpu was read                  */
    bool from_start;            /* its CPU is counted from the thread's start */
    int64_t born;               /* when its slot was made (from_start)     */
    bool run_seen;              /* a CPU tick found it running (cpu_destination) */
    uint32_t cap_seq;           /* its timer's capture last taken (native frames) */
    int64_t tick_cpu;           /* its clock at the last CPU tick (quiet_update) */
} tslot;

/* A thread's last CPU clock reading, taken by the thread itself as it ends. */
typedef struct exitrep {
    uint64_t thread_id, native_id;
    int64_t cpu_ns, mono_ns, start_ns;
    int64_t py_from, py_to; /* its CPU clock at its Python code's ends, -1 = unknown */
    int young;              /* its own timer's capture handle (pynative.h), -1 = none */
} exitrep;

typedef struct sampler {
    cp_sampler_opts o;
    pthread_t thr;
    _Atomic uint32_t wake;      /* futex word: 1 = stop requested, 2 = a
                                 * thread ran while we were quiet (kick)   */
    atomic_bool stop, running, flush_req;
    cp_rawring ring;
    tslot *slots;
    size_t slots_hw;            /* slots [slots_hw, MAX_THREADS) never used
                                 * since reset_tables: scans stop there (a
                                 * thread-per-request server keeps a few live
                                 * threads, in the first slots) */
    cp_rawframe *stacks;
    cp_rawframe *scratch;       /* [max_frames]: a walk before it is kept  */
    uint64_t gen;
    int64_t epoch_ns;           /* when the walker's code cache was emptied */
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
    /* CPU ticks so far, and the gaps between ticks at the set interval
     * (not quiet ones): their mean (cpu_tick_gap) */
    uint64_t cpu_ticks, gaps;
    int64_t gap_sum, cpu_tick_last;
    /* Quiet mode (see quiet_update): ticks QUIET_TICK_NS apart while no
     * thread runs; busy: this tick found one that ran */
    bool quiet, busy;
    uint32_t still_ticks;
    uint64_t idle_rng;          /* idle threads' next look (idle_note)     */
    _Atomic uint64_t n_ticks, n_quiet, n_kicks; /* cp__sampler_counts */
    int64_t unseen_cpu;         /* of short threads no tick found running (short_lived) */
    int64_t unseen_outside;     /* their C start-up and teardown (take_exit) */
    struct sight { double n, seen; } sight[SIGHT_BUCKETS]; /* ended threads by life, and how many a look found (exit_wall) */
    tslot young_slot;           /* a short thread's labels and captured stack (take_exit) */
    cp_rawframe *young_stack;   /* [max_frames]                           */
    /* cpu_destination: the main interpreter's GIL (pyoffsets) */
    const volatile uintptr_t *gil_holder;
    const volatile int *gil_locked;
    /* native_frames: one thread's walk and merge (sampler thread only) */
    cp_rawframe *py_scratch, *merged; /* [max_frames] each              */
    uint16_t *groups;                 /* [max_frames]                   */
    cp_pyn_sample *native_sample;
    /* Exit reports: producers take exit_lock, the sampler consumes. */
    exitrep exits[EXIT_SLOTS];
    _Atomic size_t exit_head, exit_tail;
    atomic_flag exit_lock;
    /* Threads started under us whose state went from the list before their
     * exit report came (it is made once the interpreter is done with the
     * thread): the CPU their slot had accounted, so that the report adds
     * only the rest (gone_note, take_exit). */
    struct gone {
        uint64_t thread_id, native_id;
        int64_t cpu_ns;
    } gone[GONE_SLOTS];
    size_t gone_next;
} sampler;

static sampler g_s;

/* Small ident -> value tables: open addressing, lock-free reads, writers
 * holding the GIL (so they never race each other). A value is stored
 * before its key, so a reader that finds the key finds its value. */
typedef struct idtab {
    size_t cap; /* power of two */
    _Atomic uint64_t *key;
    _Atomic int64_t *val;
} idtab;

static _Atomic uint64_t g_native_key[NATIVE_CAP];
static _Atomic int64_t g_native_val[NATIVE_CAP];
static idtab g_native = {NATIVE_CAP, g_native_key, g_native_val};

/* The kernel's CLOCK_MONOTONIC (contprof_os.h): the sampler's futex
 * deadlines must be in the kernel's time, whatever a preloaded
 * clock_gettime makes of it. */
static int64_t mono_ns(void)
{
    return cp_now_ns();
}

/* CPU clock of a kernel thread id. A dead tid gives EINVAL, never another
 * thread's clock, which is why we do not go through a pthread_t here. */
static int64_t thread_cpu_ns(uint64_t tid)
{
    return tid ? cp_os_thread_cpu_ns((pid_t)tid) : -1;
}

/* ---- ident -> native tid (interpreters < 3.11) ---------------------- */

static size_t native_hash(uint64_t k)
{
    return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 52) & (NATIVE_CAP - 1);
}

/* The index of key in t, or -1. */
static long idtab_find(idtab *t, uint64_t key)
{
    size_t h = native_hash(key);
    for (size_t i = 0; i < t->cap; i++) {
        size_t j = (h + i) & (t->cap - 1);
        uint64_t k = atomic_load(&t->key[j]);
        if (k == key)
            return (long)j;
        if (k == 0)
            return -1;
    }
    return -1;
}

/* key -> val, in key's slot or a free one; false when t is full. */
static bool idtab_put(idtab *t, uint64_t key, int64_t val)
{
    size_t h = native_hash(key);
    for (size_t i = 0; i < t->cap; i++) {
        size_t j = (h + i) & (t->cap - 1);
        uint64_t k = atomic_load(&t->key[j]);
        if (k == key || k == 0) {
            atomic_store(&t->val[j], val);
            atomic_store(&t->key[j], key);
            return true;
        }
    }
    return false;
}

static void idtab_clear(idtab *t)
{
    for (size_t j = 0; j < t->cap; j++) {
        atomic_store(&t->key[j], 0);
        atomic_store(&t->val[j], 0);
    }
}

/* key -> val; a table full of long-gone idents is cleared first. */
static void idtab_set(idtab *t, uint64_t key, int64_t val)
{
    if (idtab_put(t, key, val))
        return;
    idtab_clear(t);
    idtab_put(t, key, val);
}

/* ---- ident -> native tid (interpreters < 3.11) ---------------------- */

/* When the table is full of long-gone idents it is cleared: live threads
 * are re-registered by the resolver's periodic refresh, and meanwhile the
 * sampler's slots keep the tid they had. */
void cp__native_id_set(uint64_t thread_id, uint64_t native_id)
{
    idtab_set(&g_native, thread_id, (int64_t)native_id);
}

uint64_t cp__native_id_get(uint64_t thread_id)
{
    long j = idtab_find(&g_native, thread_id);
    return j < 0 ? 0 : (uint64_t)atomic_load(&g_native.val[j]);
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

/* A ring entry for a sample of t's with these values, no frames yet (NULL
 * when the ring is full: counted as dropped). */
static cp_rawsample *ring_sample(const tslot *t, int64_t cpu_ns, int64_t cpu_n, int64_t wall_ns, int64_t wall_n)
{
    cp_rawsample *s = cp__ring_reserve(&g_s.ring);
    if (!s) {
        cp_metrics_add_dropped(1);
        return NULL;
    }
    s->thread_id = t->thread_id;
    s->native_id = t->native_id;
    s->cpu_ns = cpu_ns;
    s->cpu_n = cpu_n;
    s->wall_ns = wall_ns;
    s->wall_n = wall_n;
    s->nframes = s->omitted = 0;
    return s;
}

static void ring_commit(void)
{
    cp__ring_commit(&g_s.ring);
    cp_metrics_add_taken(1);
    if (cp__ring_used(&g_s.ring) >= g_s.ring.nslots / 4)
        cp__resolver_kick();
}

static void emit(const tslot *t, int64_t cpu_ns, int64_t cpu_n, int64_t wall_ns, int64_t wall_n)
{
    cp_rawsample *s = ring_sample(t, cpu_ns, cpu_n, wall_ns, wall_n);
    if (!s)
        return;
    s->nframes = t->nframes;
    s->omitted = t->omitted;
    memcpy(s->frames, t->stack, t->nframes * sizeof(cp_rawframe));
    memcpy(cp__ring_extra(&g_s.ring, s), t->task, sizeof t->task);
    ring_commit();
}

static void flush_pending(tslot *t)
{
    if ((t->pend_wall_n > 0 || t->pend_cpu_n > 0) && t->stack_valid)
        emit(t, t->pend_cpu_ns, t->pend_cpu_n, t->pend_wall_ns, t->pend_wall_n);
    t->pend_cpu_ns = t->pend_cpu_n = t->pend_wall_ns = t->pend_wall_n = 0;
}

/* CPU a Python thread spent outside its Python code, in its C start-up
 * and teardown (thread creation, the thread state made and cleared, 3.11+'s
 * frame stack mapped and unmapped, the GIL taken and let go): charged to
 * [thread start-up and exit] on the thread's outermost Python frame, with
 * t's labels. No tick sees it in a thread that lives a millisecond, and
 * spread over the Python stacks of such threads it made their hottest
 * function read 15-35% over its own thread_time() (test
 * thread_per_request). */
static void emit_outside(const tslot *t, int64_t cpu_ns, int64_t now)
{
    cp_rawsample *s = cpu_ns > 0 ? ring_sample(t, cpu_ns, 1, 0, 0) : NULL;
    if (!s)
        return;
    s->frames[s->nframes++] = (cp_rawframe){CP_PSEUDO_THREAD_OUTSIDE, CP_RAW_PSEUDO, 0};
    const cp_rawframe *base = t->stack_valid && t->nframes ? &t->stack[t->nframes - 1] : NULL;
    if (base && cp_rawframe_is_python(base) && g_s.o.max_frames > 1) {
        cp__codekeep_seen_at(base->code, now);
        s->frames[s->nframes++] = *base;
    }
    memset(cp__ring_extra(&g_s.ring, s), 0, sizeof t->task);
    ring_commit();
}

/* Add to t's pending sample (on its current stack) CPU and wall_n wall
 * samples of wall_ns in all; emitted once it is COALESCE_NS old. */
static void add_pending_n(tslot *t, int64_t cpu_ns, int64_t wall_ns, int64_t wall_n, int64_t now)
{
    /* Its code objects are alive now (the thread is in those frames); if
     * one dies before the sample is resolved, codekeep holds it. */
    for (uint32_t i = 0; i < t->nframes; i++)
        if (cp_rawframe_is_python(&t->stack[i]))
            cp__codekeep_seen_at(t->stack[i].code, now);
    if (t->pend_wall_n == 0 && t->pend_cpu_n == 0)
        t->pend_since = now;
    if (cpu_ns > 0) {
        t->pend_cpu_ns += cpu_ns;
        t->pend_cpu_n += 1;
    }
    if (wall_ns > 0) {
        t->pend_wall_ns += wall_ns;
        t->pend_wall_n += wall_n;
    }
    if (now - t->pend_since >= COALESCE_NS)
        flush_pending(t);
}

static void add_pending(tslot *t, int64_t cpu_ns, int64_t wall_ns, int64_t now)
{
    add_pending_n(t, cpu_ns, wall_ns, 1, now);
}

/* t's CPU is charged to its stack now: the wall it held goes there too. */
static void add_pending_held(tslot *t, int64_t cpu_ns, int64_t now)
{
    add_pending_n(t, cpu_ns, t->wall_held_ns, t->wall_held_n, now);
    t->wall_held_ns = t->wall_held_n = 0;
}

/* Emit all of t's time: CPU held for it (see sample_cpu()) is charged to the
 * stack it last had, for want of a better one. */
static void settle(tslot *t)
{
    if (t->held_cpu > 0 || t->wall_held_n > 0)
        add_pending_held(t, t->held_cpu, mono_ns());
    t->held_cpu = 0;
    flush_pending(t);
}

/* ---- per thread ----------------------------------------------------- */

/* Make frames[0..n) (omitted more), and the asyncio task running them
 * (from the walk's outermost generators gens[0..ngens)), t's stack; its
 * pending time stays when the stack and the task are the same. */
static void set_stack(tslot *t, const cp_rawframe *frames, uint32_t n, uint32_t omitted, const uint64_t *gens,
                      uint32_t ngens)
{
    char task[CP_TASK_NAME_MAX];
    /* The task is part of the stack: the same frames run the same task. */
    cp__aio_task_of(gens, ngens, task, sizeof task);
    if (!t->stack_valid || t->nframes != n || t->omitted != omitted ||
        memcmp(t->stack, frames, n * sizeof *frames) != 0 || strcmp(task, t->task) != 0) {
        flush_pending(t);
        memcpy(t->stack, frames, n * sizeof *frames);
        memcpy(t->task, task, sizeof task);
        t->nframes = n;
        t->omitted = omitted;
    }
    t->stack_valid = true;
}

/* t's CPU clock now (-1 when it cannot be read), remembered for
 * current_at. */
static int64_t read_clock(tslot *t)
{
    int64_t v = thread_cpu_ns(t->native_id);
    if (t->clk_gen != g_s.gen) {
        t->clk_before = t->clk;
        t->clk_gen = g_s.gen;
    }
    t->clk = v;
    return v;
}

/* A tick reads the thread states it walks from at its start, before it
 * reads any thread's clock. So a walk shows the thread as it is at clock
 * value cpu only if the thread had that clock before this tick (it has
 * not run since): otherwise it may have run on after its state was read,
 * into a call and then to sleep, and a stack taken as current at cpu
 * would stay on the frame it left for as long as it sleeps (3.11: a
 * thread's whole sleep charged to Thread.run). Such a walk's stack is
 * used, and is made current by the next look (-1). */
static int64_t current_at(const tslot *t, int64_t cpu)
{
    int64_t before = t->clk_gen == g_s.gen ? t->clk_before : t->clk;
    return cpu >= 0 && cpu == before ? cpu : -1;
}

/* Bring t's cached stack up to date from top (see refresh_stack); cpu is
 * the clock value it is then current at (current_at). */
static void walk_from(tslot *t, uintptr_t top, int64_t cpu)
{
    uint32_t omitted = 0;
    uint32_t n = top ? cp__walk(top, false, g_s.scratch, g_s.o.max_frames, &omitted) : 0;
    if (n && cp__walk_torn()) {
        /* The thread returned from frames while they were read (a code
         * object of one had died): read it again, once, from its top now. */
        cp_tsinfo ti;
        cp__walk_forget();
        top = cp__ts_read(t->ts, false, &ti) && ti.thread_id == t->thread_id ? cp__ts_top(&ti, false) : 0;
        n = top ? cp__walk(top, false, g_s.scratch, g_s.o.max_frames, &omitted) : 0;
    }
    t->stack_cpu = cpu;
    /* set_stack keeps the pending time when frames and task are unchanged. */
    uint64_t gens[CP_WALK_GENS];
    uint32_t ngens = top ? cp__walk_gens(gens) : 0; /* no top: no walk, nothing of it */
    set_stack(t, g_s.scratch, n, omitted, gens, ngens);
}

/* Make t's cached stack current. A thread whose CPU clock has not moved
 * since its stack was last known current has not run since, so its frames
 * (and its asyncio task) are as they were: nothing is read (an idle thread
 * costs one clock read). Otherwise its frames are walked. Whether its top
 * frame is where it was (same address, code and instruction) does not
 * tell: a function that returned and was called again from another caller
 * lands at the same data-stack address, often at the same instruction (a
 * loop, or a call into C), with new callers below it. Reusing the cached
 * stack on that check put a helper's time under whichever caller was
 * walked first: with spin() called by a() (25% of the time) and b(), a()
 * read 1.8-50% (see docs/DECISIONS.md). cpu is this thread's clock as
 * read this tick (read_clock; -1 when not read). */
static void refresh_stack(tslot *t, const cp_tsinfo *ti, int64_t cpu)
{
    if (t->stack_valid && cpu >= 0 && cpu == t->stack_cpu)
        return;
    /* One read: the top frame's locator and where the frames were. */
    walk_from(t, cp__walk_prefetch(ti, &t->hint), current_at(t, cpu));
    cp__walk_hint_save(&t->hint);
}

/* The sampler's one buffer for a thread's own report. */
static cp_pyn_sample *native_sample(void)
{
    cp_pyn_sample *ps = g_s.native_sample;
    ps->py = g_s.py_scratch;
    ps->g = (cp_evalgroups){g_s.groups, g_s.o.max_frames, 0};
    return ps;
}

static void use_native(tslot *t, const cp_pyn_sample *ps, int64_t cpu);

/* refresh_stack with native frames, on request (threads whose timer could
 * not be made): the thread unwinds itself and walks its own Python frames
 * in one signal handler, so both are of one moment; the merge (which names
 * pcs) runs here. No answer in time: Python frames only. */
static void refresh_native(tslot *t, const cp_tsinfo *ti, int64_t cpu)
{
    cp_pyn_sample *ps = native_sample();
    if (!cp__pyn_capture((pid_t)t->native_id, t->ts, t->thread_id, ps)) {
        refresh_stack(t, ti, cpu);
        return;
    }
    use_native(t, ps, cpu); /* answered after cpu was read: current at it */
}

/* Make a thread's own report (a request's answer or its timer's capture)
 * its current stack; cpu is the clock value it is current at (-1: not
 * known, as for a capture its timer made before the clock was read). */
static void use_native(tslot *t, const cp_pyn_sample *ps, int64_t cpu)
{
    uint32_t n, omitted = ps->py_omitted;
    if (ps->npy > 0)
        n = cp__pyn_merge(ps->pcs, ps->npcs, ps->py, ps->npy, ps->py_omitted, &ps->g, g_s.merged,
                          g_s.o.max_frames, &omitted);
    else
        n = cp__pyn_native_only(ps->pcs, ps->npcs, g_s.merged, g_s.o.max_frames, &omitted);
    set_stack(t, g_s.merged, n, omitted, ps->gens, ps->ngens);
    /* The next Python-only refresh walks again, unless the thread has not
     * run since (then this stack is still its stack). */
    t->stack_cpu = cpu;
}

/* The thread is gone (its exit was reported, or its tid now names another
 * thread): emit what is pending and never read its clock again. */
static void retire(tslot *t)
{
    cp__pyn_timer_drop((int)(t - g_s.slots));
    settle(t);
    t->exited = true;
    t->hot = false;
}

/* Threads in a blocking acquire of a profiled lock (pylock.c): ident ->
 * nesting depth. Full of long-gone idents, it is cleared (a thread then
 * waiting is not seen as waiting until its next acquire). */
static _Atomic uint64_t g_wait_key[WAIT_CAP];
static _Atomic int64_t g_wait_depth[WAIT_CAP];
static idtab g_wait = {WAIT_CAP, g_wait_key, g_wait_depth};

void cp__sampler_lock_wait(uint64_t thread_id, bool begin)
{
    long j = idtab_find(&g_wait, thread_id);
    if (j >= 0) {
        int64_t d = atomic_load(&g_wait.val[j]) + (begin ? 1 : -1);
        atomic_store(&g_wait.val[j], d > 0 ? d : 0);
    } else if (begin) {
        idtab_set(&g_wait, thread_id, 1);
    }
}

static bool lock_waiting(uint64_t thread_id)
{
    long j = idtab_find(&g_wait, thread_id);
    return j >= 0 && atomic_load(&g_wait.val[j]) > 0;
}

static void hold(tslot *t, int64_t delta, int64_t now)
{
    if (t->held_cpu == 0)
        t->held_since = now;
    t->held_cpu += delta;
}

/* Where the CPU a thread used since its clock was last read goes. */
typedef enum {
    CPU_HERE,      /* to its stack now, with any CPU held before          */
    CPU_DELTA,     /* this tick's to its stack now; held CPU stays held   */
    CPU_HOLD,      /* held: its stack now is not where that CPU went      */
} cpu_where;

/* A thread that used CPU and then came to wait (sleep, a socket, select,
 * the GIL) is found where it waits, not where its CPU went: a worker that
 * handles a request in 1 ms and then waits 9 ms on its socket would be
 * seen in recv() at nine ticks in ten. So the CPU of a thread that does
 * not hold the GIL is held, and charged at a tick that finds the thread
 * holding it, i.e. running Python code: ticks land on the code a thread
 * runs in proportion to the time it runs it, so the held CPU is spread
 * over stacks as the CPU was, and its sum stays exact. Exception: a thread
 * that ran nearly the whole time since the last reading (a C call that
 * let the GIL go, such as zlib or hashlib on a large buffer) is charged
 * where it is, as before. No system call is made: reading the thread's
 * kernel state (/proc/self/task/N/syscall) was tried and disturbed what
 * it measured (see docs/DECISIONS.md). */
static cpu_where cpu_destination(const tslot *t, int64_t delta, int64_t elapsed)
{
    if (!g_s.gil_locked || (*g_s.gil_locked && *g_s.gil_holder == t->ts))
        return CPU_HERE;
    if (elapsed > 0 && delta >= elapsed - elapsed / 8)
        return CPU_DELTA;
    return CPU_HOLD;
}

static int64_t cpu_tick_gap(void);
static bool young_caps(void);

static bool has_python_frame(const tslot *t)
{
    for (uint32_t i = 0; t->stack_valid && i < t->nframes; i++)
        if (cp_rawframe_is_python(&t->stack[i]))
            return true;
    return false;
}

static void sample_cpu(tslot *t, const cp_tsinfo *ti, bool *fresh, bool *defer, int64_t now)
{
    int64_t cpu = read_clock(t);
    if (cpu < 0)
        return;
    if (t->last_cpu > 0 && cpu < t->last_cpu) {
        /* A clock never runs backwards: the kernel reused the tid of a
         * thread that exited unreported. The new thread is not this one. */
        retire(t);
        return;
    }
    int64_t delta = t->last_cpu >= 0 ? cpu - t->last_cpu : 0;
    t->hot = delta >= g_s.o.cpu_interval_ns / CP_HOT_DIV;
    /* Ran since the last tick (hot counts from the last charged reading,
     * which a thread waiting for its timer's capture keeps). */
    g_s.busy |= cp__ran_since_tick(&t->tick_cpu, cpu, g_s.o.cpu_interval_ns);
    /* Only a thread that ran is asked for its native stack: an idle one is
     * likely blocked, where a signal could cut a poll() short. One that
     * ran less than cp__pyn_min_cpu_ns keeps its clock reading: the CPU
     * is charged at the tick that completes it, with that tick's stacks. */
    bool native = g_s.o.native && t->hot && !cp__saferead_piped();
    /* A young thread not yet found running is read now when there is a
     * pool to take (see short_lived): such threads rarely live to use a
     * whole interval, and a pool nobody takes is lost. */
    bool young = !t->run_seen && t->from_start && now - t->born < cpu_tick_gap();
    g_s.busy |= young;
    /* With young threads' own timers (young_caps), the pool goes to their
     * captures as they end, and a young thread's CPU is held meanwhile:
     * the sampler's ticks are not a fair draw of such threads' CPU (see
     * docs/DECISIONS.md). Otherwise young threads the ticks find running
     * take it. */
    bool yc = young && young_caps();
    bool pool_waits = young && !yc && (g_s.unseen_cpu > 0 || g_s.unseen_outside > 0);
    int64_t elapsed = t->cpu_at > 0 ? now - t->cpu_at : 0;
    /* A thread that ran all the while since its last charged reading is,
     * at any moment, where a draw of its running time finds it, and so of
     * its wall time: while its CPU waits (for more of it, or for its
     * timer's capture: below), its wall waits with it (sample_wall), and
     * both go to the capture, instead of a walk at this tick for the wall
     * alone. */
    bool throughout = elapsed > 0 && 8 * delta >= 7 * elapsed;
    if (native && t->stack_valid && delta < cp__pyn_min_cpu_ns(g_s.o.cpu_interval_ns) && !pool_waits) {
        *defer = throughout && t->timed;
        return;
    }
    /* Python threads give their stacks from their own CPU timer (see
     * cp__pyn_timer_sync): the CPU waits on the clock for the capture
     * that a timer expiry in it made, a whole interval more at most. */
    int idx = (int)(t - g_s.slots);
    bool timed = native && t->ts && cp__pyn_timer_sync(idx, (pid_t)t->native_id, t->ts, t->thread_id,
                                                       g_s.o.max_frames, g_s.o.cpu_interval_ns, &t->cap_seq);
    cp_pyn_sample *cap = timed ? native_sample() : NULL;
    /* A capture without Python frames (its handler found all walk buffers
     * busy, or the thread was between frames) is not this thread's stack. */
    bool got = timed && cp__pyn_take(idx, &t->cap_seq, cap) && cap->npy > 0;
    t->timed = timed;
    if (timed && !got && t->stack_valid && delta < 2 * g_s.o.cpu_interval_ns && !pool_waits) {
        *defer = throughout;
        return;
    }
    /* A capture is where the thread was when its timer expired, a draw
     * from its running time; a wall sample needs where it is now, a draw
     * from its wall time. Only for a thread that ran (nearly) all the time
     * since the last reading are they the same draw: for one that ran and
     * then slept, wall ticks taking the capture charged the work ~one
     * tick's wall per burst (24 threads working 5 ms per 55 ms: 14% of
     * their sleep went to the work). Others are walked for the wall. */
    t->last_cpu = cpu;
    t->cpu_at = now;
    bool overdue = t->held_cpu > 0 && now - t->held_since >= HOLD_MAX_NS;
    if (delta <= 0 && !overdue)
        return;
    /* A thread waiting for a profiled lock (and then for the GIL, in the
     * same acquire), or not running Python code at all, burned this CPU
     * before it came to wait: where it waits is not where that CPU went.
     * It is held, and charged at a tick that finds the thread running
     * Python code, to the stack it has then (after HOLD_MAX_NS, where it
     * is). */
    cpu_where where = CPU_HERE;
    bool takes_pool = false;
    if (delta > 0 && !overdue) {
        /* A capture is where the thread was running: its CPU goes there.
         * With young timers, a young thread's CPU is held: short, it goes
         * with the pool at its exit. */
        bool waiting = !got && lock_waiting(t->thread_id);
        where = got ? CPU_HERE : waiting || yc ? CPU_HOLD : cpu_destination(t, delta, elapsed);
        /* Without young timers: a young thread without the GIL whose
         * clock moves on as we look is running too, in a system call
         * (send, close): it takes the pool as well. Taken by GIL holders
         * only, the pool went to Python code alone, and the handlers of a
         * threading socket server read their compute function +45% (test
         * thread_per_request); +24% so. */
        if (where == CPU_HOLD && young && !yc && !waiting && thread_cpu_ns(t->native_id) > cpu)
            where = CPU_HERE;
        /* First found running, young: it takes the pool (see short_lived). */
        takes_pool = where != CPU_HOLD && young && !yc;
        t->run_seen |= where != CPU_HOLD;
    }
    if (where == CPU_HOLD) {
        hold(t, delta, now);
        /* A stack to charge it to if no better one comes before the
         * thread ends (take_exit, settle). */
        if (!t->stack_valid)
            refresh_stack(t, ti, cpu);
        return;
    }
    if (where == CPU_HERE) {
        delta += t->held_cpu;
        t->held_cpu = 0;
    }
    /* A young thread's state is read again just before its walk: this
     * tick's copy is tens of microseconds old by now (clock reads, its new
     * timer), and a thread that has just started has often entered its
     * first (or a nested) eval loop since. On 3.11/3.12 the copy then
     * names the previous loop's _PyCFrame, whose current frame is the
     * caller's (Thread.run for the target) or none at all: 3.11 charged
     * short threads' pool there, 10-20% of it. */
    cp_tsinfo now_ti;
    if (young && !got && cp__ts_read(t->ts, false, &now_ti) && now_ti.thread_id == t->thread_id)
        ti = &now_ti;
    if (got)
        use_native(t, cap, -1);
    else if (native && !timed)
        refresh_native(t, ti, cpu);
    else
        refresh_stack(t, ti, cpu);
    *fresh = !got || throughout;
    /* Not in its start-up or teardown, where it holds the GIL with no
     * Python frame (3.12 put 7% of a thread-per-request server's handlers'
     * CPU on [no Python frame] so): the pool is its Python code's. */
    int64_t outside = 0;
    if (takes_pool && has_python_frame(t)) {
        delta += g_s.unseen_cpu;
        outside = g_s.unseen_outside;
        g_s.unseen_cpu = g_s.unseen_outside = 0;
    }
    /* Even with no Python frame (native code in a Python thread): the
     * resolver shows it as a pseudo-frame so the CPU stays visible. */
    add_pending_held(t, delta, now);
    emit_outside(t, outside, now);
}

static void sample_wall(tslot *t, const cp_tsinfo *ti, bool fresh, bool defer, int64_t now)
{
    int64_t w = now - t->last_wall;
    t->last_wall = now;
    if (w <= 0)
        return;
    if (defer) {
        t->wall_held_ns += w;
        t->wall_held_n += 1;
        return;
    }
    if (!fresh) {
        /* The clock only tells whether the thread ran since the last
         * refresh; CPU time is charged by sample_cpu alone. */
        int64_t cpu = t->clk_gen == g_s.gen ? t->clk : read_clock(t);
        refresh_stack(t, ti, cpu);
    }
    if (t->nframes == 0)
        return; /* no Python frame: nothing to charge */
    add_pending(t, 0, w, now);
}

/* When threads started under us began (cp__sampler_young_arm): a ring
 * written by threads holding the main interpreter's GIL, read by the
 * sampler with a sequence check. A slot made for a new thread takes its
 * wall from there, not from its first sight: a thread-per-request server's
 * 10 ms handlers had their wall read at 46% of their lives, 100 ms ones at
 * 95%. */
#define BIRTH_SLOTS 256
static struct birth {
    _Atomic uint64_t seq; /* odd while written */
    uintptr_t ts;
    uint64_t thread_id, native_id;
    int64_t at;
} g_births[BIRTH_SLOTS];
static atomic_size_t g_birth_next;
static int64_t g_births_from; /* births before this (an earlier run) do not count */

static void birth_note(uintptr_t ts, uint64_t thread_id, uint64_t native_id, int64_t at)
{
    size_t k = atomic_fetch_add_explicit(&g_birth_next, 1, memory_order_relaxed);
    struct birth *b = &g_births[k % BIRTH_SLOTS];
    uint64_t seq = atomic_load_explicit(&b->seq, memory_order_relaxed);
    atomic_store_explicit(&b->seq, seq | 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    b->ts = ts;
    b->thread_id = thread_id;
    b->native_id = native_id;
    b->at = at;
    atomic_store_explicit(&b->seq, (seq | 1) + 1, memory_order_release);
}

/* When thread state ts with this ident and kernel tid began, if it began
 * under us and not after now; 0 if unknown. Thread states and idents are
 * reused by the next thread at once (freed memory, glibc's cached stacks),
 * kernel tids are not. */
static int64_t birth_of(uintptr_t ts, uint64_t thread_id, uint64_t native_id, int64_t now)
{
    size_t next = atomic_load_explicit(&g_birth_next, memory_order_acquire);
    for (size_t n = 0; n < BIRTH_SLOTS && n < next; n++) {
        const struct birth *b = &g_births[(next - 1 - n) % BIRTH_SLOTS];
        uint64_t seq = atomic_load_explicit(&b->seq, memory_order_acquire);
        if (seq & 1)
            continue;
        uintptr_t bts = b->ts;
        uint64_t tid = b->thread_id, nid = b->native_id;
        int64_t at = b->at;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&b->seq, memory_order_relaxed) != seq)
            continue;
        if (bts == ts && tid == thread_id && nid == native_id)
            return at >= g_births_from && at <= now ? at : 0;
    }
    return 0;
}

/* The slot of thread state ts, made on first sight. Threads found by the
 * first walk predate profiling and count CPU from now; any found later
 * started under us and count from their start. */
static tslot *slot_for(const cp_tsinfo *ti, uintptr_t ts, int64_t now, bool is_new)
{
    tslot *free_slot = NULL;
    for (size_t i = 0; i < g_s.slots_hw; i++) {
        tslot *t = &g_s.slots[i];
        if (t->ts == ts && t->thread_id == ti->thread_id)
            return t;
        if (!t->ts && !free_slot)
            free_slot = t;
    }
    if (!free_slot && g_s.slots_hw < MAX_THREADS)
        free_slot = &g_s.slots[g_s.slots_hw++];
    if (!free_slot)
        return NULL;
    cp_rawframe *stack = free_slot->stack;
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->stack = stack;
    free_slot->ts = ts;
    free_slot->thread_id = ti->thread_id;
    free_slot->last_cpu = is_new ? 0 : -1;
    /* A new thread is read at the next CPU tick (take_exit relies on it). */
    free_slot->from_start = free_slot->hot = is_new;
    free_slot->born = now;
    free_slot->stack_cpu = free_slot->clk = free_slot->clk_before = free_slot->idle_clk = -1;
    free_slot->last_wall = now; /* or its start, once its tid is known (visit) */
    return free_slot;
}

/* ---- thread exits --------------------------------------------------- */

bool cp__sampler_thread_exit(uint64_t thread_id, uint64_t native_id, int64_t cpu_ns, int64_t mono,
                             int64_t start_ns, int64_t py_from, int64_t py_to, int young)
{
    bool queued = false;
    if (!atomic_load(&g_s.running))
        return false;
    cp__spin_lock(&g_s.exit_lock); /* producers: threads as they end, without the GIL (module.c) */
    size_t head = atomic_load_explicit(&g_s.exit_head, memory_order_relaxed);
    if (head - atomic_load_explicit(&g_s.exit_tail, memory_order_acquire) < EXIT_SLOTS) {
        g_s.exits[head % EXIT_SLOTS] = (exitrep){thread_id, native_id, cpu_ns, mono, start_ns, py_from, py_to, young};
        atomic_store_explicit(&g_s.exit_head, head + 1, memory_order_release);
        queued = true;
    } /* else full: the sampler then stops at its last reading */
    cp__spin_unlock(&g_s.exit_lock);
    return queued;
}

/* Young threads' own timers (pynative.h): in use with native frames, when
 * the signal is ours. */
static bool young_caps(void)
{
    return g_s.o.native && g_s.o.cpu && cp__pyn_ready() && !cp__saferead_piped();
}

int cp__sampler_young_arm(uintptr_t ts, uint64_t thread_id, uint64_t native_id, int64_t born_ns)
{
    if (atomic_load(&g_s.running))
        birth_note(ts, thread_id, native_id, born_ns);
    if (!atomic_load(&g_s.running) || !young_caps())
        return -1;
    return cp__pyn_young_arm(ts, thread_id, g_s.o.max_frames);
}

/* Mean gap between CPU ticks so far, quiet ones apart (the interval until
 * there are two). */
static int64_t cpu_tick_gap(void)
{
    if (g_s.gaps == 0 || g_s.gap_sum <= 0)
        return g_s.o.cpu_interval_ns;
    return g_s.gap_sum / (int64_t)g_s.gaps;
}

/* A thread that lives less than the mean gap between CPU ticks is read by
 * one only now and then: a server that starts a thread per request has
 * most of them come and go unseen. Each still reports its exact CPU as it
 * ends, so the CPU of the short ones no tick found running Python code is
 * pooled (their C start-up and teardown apart: emit_outside), and taken,
 * to its stack, by the next short thread whose own timer captured it at a
 * kernel tick (young_caps; take_exit): a uniform draw of the CPU such
 * threads use. Without those timers, by the next thread a sampler tick
 * finds running within its first gap of life (sample_cpu), found running,
 * not found: on a loaded machine a short thread spends much of its life
 * waiting to start, and its start-up stack would take the pool. The total
 * stays exact. A pool nobody takes is dropped at stop. */
static bool short_lived(const exitrep *e)
{
    return e->start_ns > 0 && e->mono_ns > e->start_ns && e->mono_ns - e->start_ns < cpu_tick_gap();
}

/* Of the CPU e's thread used after its clock read `accounted`, the part
 * outside its Python code (see emit_outside): its teardown, and what of
 * its start-up no reading had covered. */
static int64_t outside_after(const exitrep *e, int64_t accounted)
{
    if (e->py_from < 0 || e->py_to < e->py_from || e->cpu_ns < e->py_to)
        return 0; /* not known: all of it goes with its Python code */
    int64_t tail = e->cpu_ns - (e->py_to > accounted ? e->py_to : accounted);
    int64_t head = e->py_from - accounted;
    int64_t out = (tail > 0 ? tail : 0) + (head > 0 ? head : 0);
    int64_t rest = e->cpu_ns - accounted;
    return out < rest ? out : rest;
}

/* Pool what e's thread had not accounted by its clock reading `accounted`
 * (see short_lived): its Python code's part for a young thread's stack,
 * its start-up and teardown for [thread start-up and exit]. */
static void pool_rest(const exitrep *e, int64_t accounted)
{
    if (e->cpu_ns <= accounted)
        return;
    int64_t out = outside_after(e, accounted);
    g_s.unseen_outside += out;
    g_s.unseen_cpu += e->cpu_ns - accounted - out;
}

/* The pools, to the stack of t (a short thread's capture, a uniform draw
 * of such threads' CPU), if any. */
static void take_pool(tslot *t, int64_t now)
{
    if (!t)
        return;
    add_pending(t, g_s.unseen_cpu, 0, now);
    flush_pending(t);
    emit_outside(t, g_s.unseen_outside, now);
    g_s.unseen_cpu = g_s.unseen_outside = 0;
}

/* e's thread's capture (its own timer's, pynative.h) as a stack of the
 * thread's labels: t's, or the young slot's for a thread never seen. */
static tslot *captured(const exitrep *e, tslot *t)
{
    cp_pyn_sample *ps = native_sample();
    if (e->young < 0 || !cp__pyn_young_take(e->young, ps))
        return NULL;
    if (!t) {
        t = &g_s.young_slot;
        memset(t, 0, sizeof *t);
        t->stack = g_s.young_stack;
        t->thread_id = e->thread_id;
        t->native_id = e->native_id;
    }
    use_native(t, ps, e->cpu_ns);
    return t;
}

/* An exited thread's wall time up to its exit, to the stack a wall look
 * last found it in (with its start, cp__sampler_young_arm, a thread seen
 * has all of its life). A thread shorter than the gap between two looks
 * is found by one with odds that grow with its life: a server's 2 ms
 * handlers on threads of their own mostly come and go unseen. Each thread
 * found stands also for the ones like it that were not: it is charged
 * life / P, P the share of the threads of about its life (a power-of-two
 * bucket) that looks found, recent ones counting most; an unseen one is
 * charged nothing. Each kind's expected wall is then its life, on its own
 * stacks (Horvitz-Thompson). P is counted, not modelled: ticks come every
 * ~10 ms, or every 50 ms in quiet mode, or when a thread's own timer wakes
 * the sampler, and a new thread's first look waits for its kernel tid. */
#define SIGHT_UNIT_NS 250000 /* bucket 0: lives under 0.5 ms */
static int sight_bucket(int64_t life)
{
    int64_t u = life / SIGHT_UNIT_NS;
    int b = u > 0 ? 64 - __builtin_clzll((unsigned long long)u) : 0;
    return b < SIGHT_BUCKETS ? b : -1;
}

static void exit_wall(tslot *t, const exitrep *e)
{
    if (!g_s.o.wall)
        return;
    int64_t life = e->start_ns > 0 && e->mono_ns > e->start_ns ? e->mono_ns - e->start_ns : 0;
    bool seen = t && t->nframes;
    int b = life > 0 ? sight_bucket(life) : -1;
    int64_t extra = 0;
    if (b >= 0) {
        struct sight *k = &g_s.sight[b];
        k->n += 1;
        k->seen += seen;
        if (k->n > 1024) { /* the recent ones count */
            k->n /= 2;
            k->seen /= 2;
        }
        /* Too few found yet (a run's first threads): the odds of a look
         * at jittered ticks of the wall interval (cp_wall_unseen_ns). */
        if (seen)
            extra = k->seen >= 8 ? (int64_t)((double)life * (k->n / k->seen - 1.0))
                                 : cp_wall_unseen_ns(life, g_s.o.wall_interval_ns);
    }
    if (seen) {
        int64_t w = (e->mono_ns > t->last_wall ? e->mono_ns - t->last_wall : 0) + extra;
        if (w > 0)
            add_pending(t, 0, w, e->mono_ns);
        flush_pending(t);
    }
    if (t)
        t->last_wall = e->mono_ns;
}

/* Charge an exited thread's CPU since its last reading, and its wall time
 * up to the exit (exit_wall), to its last stack (its teardown to [thread
 * start-up and exit]); or pool it (see short_lived). */
static void take_exit(const exitrep *e)
{
    tslot *t = NULL;
    for (size_t i = 0; i < g_s.slots_hw && !t; i++) {
        tslot *s = &g_s.slots[i];
        if (s->ts && !s->exited && s->native_id == e->native_id && s->thread_id == e->thread_id)
            t = s;
    }
    if (!t) {
        /* Its slot went first (gone_note): the CPU it had not accounted
         * goes to the pool, for a young thread's stack to take. */
        for (size_t k = 0; k < GONE_SLOTS; k++) {
            struct gone *g = &g_s.gone[k];
            if (g->native_id == e->native_id && g->thread_id == e->thread_id) {
                pool_rest(e, g->cpu_ns);
                g->native_id = 0;
                take_pool(captured(e, NULL), e->mono_ns);
                return;
            }
        }
    }
    exit_wall(t, e);
    if (!(t && t->run_seen && t->stack_valid) && short_lived(e)) {
        /* Pooled: all it had not charged to a stack. CPU read from its
         * clock before (held, or charged on a tick that found it running
         * with no stack yet) is not pooled again: a thread-per-request
         * server had its handlers' held CPU counted twice, the profile
         * 3-4% over the process's CPU. (Pooling also the rest of one a
         * tick had found running made the pool's lean worse: see
         * docs/DECISIONS.md.) */
        int64_t charged = 0;
        if (t) {
            charged = (t->last_cpu > 0 ? t->last_cpu : 0) - t->held_cpu;
            t->held_cpu = 0;
        }
        pool_rest(e, charged > 0 ? charged : 0);
        take_pool(captured(e, t), e->mono_ns);
        if (t)
            retire(t);
        return;
    }
    if (!t)
        return; /* never seen and not short: no stack to charge it to */
    int64_t read = t->last_cpu > 0 ? t->last_cpu : 0;
    int64_t out = t->last_cpu >= 0 ? outside_after(e, read) : 0;
    int64_t cpu = t->held_cpu + (t->last_cpu >= 0 && e->cpu_ns > t->last_cpu ? e->cpu_ns - t->last_cpu : 0) - out;
    t->held_cpu = 0;
    if (cpu > 0)
        add_pending(t, cpu, 0, e->mono_ns);
    emit_outside(t, out, e->mono_ns);
    t->last_cpu = e->cpu_ns;
    retire(t);
}

static void take_exits(void)
{
    size_t tail = atomic_load_explicit(&g_s.exit_tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&g_s.exit_head, memory_order_acquire);
    for (; tail != head; tail++) {
        const exitrep *e = &g_s.exits[tail % EXIT_SLOTS];
        take_exit(e);
        cp__pyn_young_release(e->young); /* its capture handle is free again */
    }
    atomic_store_explicit(&g_s.exit_tail, tail, memory_order_release);
}

/* ---- tick ----------------------------------------------------------- */

typedef struct tickctx {
    int64_t now;
    unsigned what;
    size_t wall_stride, cpu_stride;
} tickctx;

/* Not to be looked at yet: idle for a while (see idle_note). */
static bool idle_wait(const tslot *t, const tickctx *c)
{
    return c->now < t->idle_next;
}

/* Whether list entry idx gets its CPU clock / wall time read this tick:
 * CPU if it was busy at its last check or its round-robin turn has come,
 * wall on its round-robin turn. So idle threads cost a bounded number of
 * reads per tick however many there are; a thread that wakes up is caught
 * within one round and from then on checked every tick. A thread idle
 * for a while is looked at only every IDLE_CHECK_NS (idle_note). */
static bool wants_cpu(const tslot *t, size_t idx, const tickctx *c)
{
    return (c->what & 1) && (t->hot || ((idx + g_s.gen) % c->cpu_stride == 0 && !idle_wait(t, c)));
}

static bool wants_wall(const tslot *t, size_t idx, const tickctx *c)
{
    return (c->what & 2) && (idx + g_s.gen) % c->wall_stride == 0 && !idle_wait(t, c);
}

/* A thread whose CPU clock has stood still for IDLE_AFTER_NS (a pool
 * worker waiting for work, a thread in select()) is looked at every
 * IDLE_CHECK_NS, drawn in [1/2, 3/2) of it, instead of at each tick: each
 * look costs a clock read and a share of the thread-state read (20 idle
 * threads beside a busy one cost the sampler ~2 ms of CPU a second, 60
 * ~5). Its wall weighs the time since its last sample, so totals are
 * unchanged. A wake-up is found by the next look, whose time does not
 * depend on the thread, and the time since the last look goes where the
 * thread is then, as at any wall tick: the wall stays unbiased, with
 * fewer samples of a stack that did not change. (Looking sooner when the
 * thread's CPU timer fires would not be: that look would always find it
 * running, and charge it the wait before.) Its CPU waits on its clock as
 * between any two looks, for its timer's captures; a thread that runs
 * again is looked at every tick from then on. */
static void idle_note(tslot *t, int64_t now)
{
    if (t->clk_gen != g_s.gen || t->clk < 0)
        return; /* its clock was not read this tick */
    if (t->clk != t->idle_clk) {
        t->idle_clk = t->clk;
        t->idle_since = t->idle_next = 0;
        return;
    }
    if (t->idle_since == 0)
        t->idle_since = now;
    else if (now - t->idle_since >= IDLE_AFTER_NS)
        t->idle_next = now + cp_jittered_ns(IDLE_CHECK_NS, &g_s.idle_rng);
}

/* Slot t goes before its thread's exit report came: what it accounted. */
static void gone_note(const tslot *t)
{
    if (!t->from_start || t->exited || !t->native_id)
        return;
    g_s.gone[g_s.gone_next++ % GONE_SLOTS] =
        (struct gone){t->thread_id, t->native_id, t->last_cpu > 0 ? t->last_cpu : 0};
}

/* Whether a thread other than t has kernel tid nid. A new thread's state
 * carries its parent's ident and (3.11) tid until the thread writes its
 * own, one store after the other: a tick between the two saw the new
 * ident with the parent's tid, read the parent's CPU clock from zero, and
 * charged all of the parent's CPU to the child (0.2 s at a time in test
 * short_threads on a loaded machine). */
static bool native_id_taken(uint64_t nid, const tslot *t)
{
    for (size_t i = 0; i < g_s.slots_hw; i++) {
        const tslot *s = &g_s.slots[i];
        if (s != t && s->ts && !s->exited && s->native_id == nid)
            return true;
    }
    return false;
}

static void visit(tslot *t, const cp_tsinfo *ti, size_t idx, const tickctx *c)
{
    t->seen_gen = g_s.gen;
    /* Re-read every visit: a thread state and pthread_t can both be reused
     * by a new thread. */
    uint64_t nid = ti->native_id ? ti->native_id : cp__native_id_get(ti->thread_id);
    if (nid && nid != t->native_id) {
        if (native_id_taken(nid, t))
            return; /* its parent's, not yet its own: read it next tick */
        bool replaced = t->native_id != 0;
        if (replaced) {
            /* A new kernel thread behind the same thread state and ident:
             * the old thread's pending wall time is its own, and its cached
             * stack must never be emitted under the new thread's name. */
            cp__pyn_timer_drop((int)(t - g_s.slots));
            settle(t);
            gone_note(t);
            t->stack_valid = false;
            t->stack_cpu = t->clk = t->clk_before = -1;
            t->hot = false;
            t->exited = false;
        }
        t->native_id = nid;
        t->last_cpu = t->last_cpu < 0 ? -1 : 0;
        t->from_start = t->hot = t->last_cpu == 0;
        t->run_seen = t->timed = false;
        t->idle_since = t->idle_next = 0;
        t->idle_clk = -1;
        t->born = c->now;
        /* Its wall from its start, if it started under us (a slot made
         * before it began already counts from then); a thread replacing
         * another counts from its start or from now, not from the other's
         * last look. */
        int64_t began = t->from_start ? birth_of(t->ts, t->thread_id, nid, c->now) : 0;
        if (replaced)
            t->last_wall = began > 0 ? began : c->now;
        else if (began > 0 && began < t->last_wall)
            t->last_wall = began;
    }
    if (t->exited)
        return;
    bool fresh = false, defer = false;
    if (wants_cpu(t, idx, c))
        sample_cpu(t, ti, &fresh, &defer, c->now);
    if (wants_wall(t, idx, c))
        sample_wall(t, ti, fresh, defer, c->now);
    idle_note(t, c->now);
}

static void reap(void)
{
    for (size_t i = 0; i < g_s.slots_hw; i++) {
        tslot *t = &g_s.slots[i];
        if (t->ts && t->seen_gen != g_s.gen) {
            /* A thread started under us reports its exit once it has left
             * the list (module.c): its slot waits one more complete walk
             * for the report, which charges the rest to its last stack. */
            if (t->from_start && !t->exited && !t->report_due) {
                t->report_due = true;
                continue;
            }
            cp__pyn_timer_drop((int)i);
            settle(t);
            gone_note(t);
            t->ts = 0;
        }
    }
}

/* Before 3.12 a thread state made by a parent for a thread it starts
 * carries the parent's ident (and, 3.11, native id) until the new thread
 * runs: such an entry would read the parent's CPU clock from zero, and
 * charge the parent's whole CPU so far to a stack with no frame, once per
 * thread started (a server starting a thread per request). New thread
 * states are put at the head of the list, so of entries list_info[0..n)
 * sharing an ident all but the last (oldest) are such: their ident is
 * zeroed, so the walk skips them (and walks the list again soon). */
static _Atomic uint64_t g_walk_key[2 * MAX_THREADS];
static _Atomic int64_t g_walk_val[2 * MAX_THREADS];
static idtab g_walk_ids = {2 * MAX_THREADS, g_walk_key, g_walk_val};

static void drop_unstarted(size_t n)
{
    if (n < 2)
        return;
    idtab_clear(&g_walk_ids);
    for (size_t k = n; k-- > 0;) {
        uint64_t id = g_s.list_info[k].thread_id;
        if (idtab_find(&g_walk_ids, id) >= 0) {
            g_s.list_info[k].thread_id = 0; /* dropped */
            g_s.starting = true;
        } else {
            idtab_put(&g_walk_ids, id, 1); /* room: twice MAX_THREADS */
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
    /* Bounded in steps, not only in entries kept: torn or reused thread
     * states can chain skipped entries into a cycle. */
    for (size_t steps = 0; n < MAX_THREADS && steps < WALK_STEPS_MAX; steps++, ts = ti.next) {
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
        g_s.list_ts[n] = ts;
        g_s.list_info[n++] = ti;
    }
    drop_unstarted(n);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = g_s.list_info[i].thread_id;
        tslot *t = !id || skipped(id) ? NULL : slot_for(&g_s.list_info[i], g_s.list_ts[i], now, is_new);
        if (!t)
            continue;
        t->seen_gen = g_s.gen;
        t->report_due = false;
        g_s.list_ts[kept] = g_s.list_ts[i];
        g_s.list_info[kept] = g_s.list_info[i];
        g_s.list_slot[kept] = (uint32_t)(t - g_s.slots);
        g_s.list_ok[kept++] = true;
    }
    n = kept;
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
        const tslot *t = &g_s.slots[g_s.list_slot[i]];
        if (wants_cpu(t, i, c) || wants_wall(t, i, c))
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
    /* A cached code fact is trusted without a read: only while the code
     * object cannot have died and been let go by codekeep since. */
    if (++g_s.gen % CODE_EPOCH_TICKS == 0 || now - g_s.epoch_ns >= CODE_EPOCH_NS) {
        g_s.epoch_ns = now;
        cp__walk_new_epoch();
        if (g_s.o.native)
            cp__pyn_new_epoch();
    }
    cp__aio_new_tick();
    if (what & 1) {
        if (g_s.cpu_ticks++ > 0 && !g_s.quiet) {
            g_s.gap_sum += now - g_s.cpu_tick_last;
            g_s.gaps++;
        }
        g_s.cpu_tick_last = now;
    }
    /* Objects loaded since the last tick (an extension just imported) must
     * be known to the unwinder before a thread is asked to unwind through
     * them. */
    if (g_s.o.native) {
        cp_native_refresh();
        cp__pyn_tick_begin();
    }
    take_exits();
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
    if (g_s.o.native && (what & 1))
        g_s.busy |= cp__cthreads_tick(now, g_s.o.cpu_interval_ns, &g_s.ring);
}

void cp__sampler_counts(cp_sampler_counts *out)
{
    out->ticks = atomic_load(&g_s.n_ticks);
    out->quiet_ticks = atomic_load(&g_s.n_quiet);
    out->kicks = atomic_load(&g_s.n_kicks);
}

bool cp__sampler_is_python_tid(uint64_t tid)
{
    for (size_t i = 0; i < g_s.slots_hw; i++)
        if (g_s.slots[i].ts && !g_s.slots[i].exited && g_s.slots[i].native_id == tid)
            return true;
    return false;
}

uint64_t cp__sampler_python_sig(void)
{
    uint64_t sig = g_s.slots_hw;
    for (size_t i = 0; i < g_s.slots_hw; i++)
        if (g_s.slots[i].ts && !g_s.slots[i].exited)
            sig += (g_s.slots[i].native_id << 16) + i + 1;
    return sig;
}

/* Which kinds are due. When one is due, the other is taken too if it is
 * due within half its interval: with +-50% jitter on equal intervals that
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
 * One futex wait with an absolute CLOCK_MONOTONIC deadline: one syscall
 * per tick, no mutex, and no file descriptor that a program closing its
 * descriptors (closefrom(3)) could take from under us. */
static void sleep_until(int64_t wake)
{
    if (wake - mono_ns() <= 0)
        return;
    struct timespec ts = {wake / 1000000000LL, wake % 1000000000LL};
    int saved = errno;
    syscall(SYS_futex, &g_s.wake, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0u, &ts, NULL,
            FUTEX_BITSET_MATCH_ANY);
    errno = saved;
}

/* Each wake-up costs tens of microseconds of CPU in a VM (~50 us here)
 * before any sampling: at 100 per second an idle service paid ~1% of a
 * core for nothing to see. So once QUIET_TICKS CPU ticks in a row found no
 * thread that ran (none used a sixteenth of an interval, no young thread,
 * no busy native thread), ticks come QUIET_TICK_NS apart, until one finds
 * a thread running or a thread's own CPU timer fires (pynative.c kicks us
 * awake through g_s.wake): a thread once sampled running, and every young
 * thread, has such a timer, firing at each interval of its CPU, whose
 * capture takes the CPU where it went, as at the set interval. Wall time
 * is the time between a thread's wall samples, so its totals are
 * unchanged. A thread never sampled running has no timer: it is found at
 * the next quiet tick, its CPU held meanwhile as between any two ticks.
 * Only with those timers (young_caps: native frames on, the default). */
static bool quiet_update(unsigned what, bool kicked)
{
    if (!(what & 1))
        return g_s.quiet;
    if (kicked || g_s.busy || !young_caps())
        g_s.still_ticks = 0;
    else if (g_s.still_ticks < QUIET_TICKS)
        g_s.still_ticks++;
    bool quiet = g_s.still_ticks >= QUIET_TICKS;
    if (quiet != g_s.quiet) {
        g_s.quiet = quiet;
        cp__pyn_kick_on(quiet ? &g_s.wake : NULL);
    }
    return quiet;
}

/* At stop: a thread looked at less often (idle_note) that is still idle
 * has its wall since its last look too, on the stack it has not left. */
static void idle_final(void)
{
    int64_t now = mono_ns();
    for (size_t i = 0; g_s.o.wall && i < g_s.slots_hw; i++) {
        tslot *t = &g_s.slots[i];
        if (!t->ts || t->exited || t->idle_since == 0 || !t->stack_valid || t->nframes == 0 ||
            now <= t->last_wall || thread_cpu_ns(t->native_id) != t->idle_clk)
            continue;
        add_pending(t, 0, now - t->last_wall, now);
        t->last_wall = now;
    }
}

/* Ticks are jittered (cp_jittered_ns, +-50%): with +-25% the phase
 * against a 20 ms cycle took ~50 ticks to spread, and a quarter of such a
 * cycle read 19.5% of the wall time in a 3 s run. */
static void *run(void *arg)
{
    (void)arg;
    uint64_t rng = (uint64_t)mono_ns() | 1;
    g_s.idle_rng = (rng * 0x9E3779B97F4A7C15ULL) | 1;
    cp_thread_register_self();
    int64_t next[2] = {mono_ns(), mono_ns()};
    while (!atomic_load(&g_s.stop)) {
        if (atomic_load(&g_s.flush_req)) {
            take_exits();
            for (size_t i = 0; i < g_s.slots_hw; i++)
                if (g_s.slots[i].ts)
                    flush_pending(&g_s.slots[i]); /* held CPU stays held */
            atomic_store(&g_s.flush_req, false);
        }
        int64_t now = mono_ns();
        uint32_t two = 2;
        bool kicked = atomic_compare_exchange_strong(&g_s.wake, &two, 0u);
        unsigned what = kicked ? (g_s.o.cpu ? 1u : 0u) | (g_s.o.wall ? 2u : 0u) : due(now, next);
        if (what) {
            g_s.busy = false;
            atomic_fetch_add_explicit(&g_s.n_ticks, 1, memory_order_relaxed);
            if (g_s.quiet)
                atomic_fetch_add_explicit(kicked ? &g_s.n_kicks : &g_s.n_quiet, 1, memory_order_relaxed);
            tick(what, now);
            if (quiet_update(what, kicked)) {
                /* One wake-up for both kinds, as far apart as their
                 * intervals if those are longer. */
                int64_t q = QUIET_TICK_NS;
                q = g_s.o.cpu_interval_ns > q ? g_s.o.cpu_interval_ns : q;
                q = g_s.o.wall_interval_ns > q ? g_s.o.wall_interval_ns : q;
                next[0] = next[1] = now + cp_jittered_ns(q, &rng);
            } else if (what == 3u) {
                /* Both came: one draw for both, so that equal intervals
                 * (the defaults) keep one wake-up. Two draws split one
                 * tick in four into a CPU and a wall one: 26% more
                 * wake-ups, and a wall tick without the CPU's walks every
                 * thread that ran, which a CPU tick serves from its
                 * timer's capture. */
                int64_t d = cp_jittered_ns(g_s.o.cpu_interval_ns, &rng);
                next[0] = now + d;
                next[1] = now + d / g_s.o.cpu_interval_ns * g_s.o.wall_interval_ns +
                          d % g_s.o.cpu_interval_ns * g_s.o.wall_interval_ns / g_s.o.cpu_interval_ns;
            } else {
                if (what & 1)
                    next[0] = now + cp_jittered_ns(g_s.o.cpu_interval_ns, &rng);
                if (what & 2)
                    next[1] = now + cp_jittered_ns(g_s.o.wall_interval_ns, &rng);
            }
        }
        sleep_until(next_wake(next));
    }
    cp__pyn_kick_on(NULL);
    take_exits();
    idle_final();
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
    g_s.scratch = calloc(max_frames, sizeof(cp_rawframe));
    g_s.list_ts = calloc(MAX_THREADS, sizeof(uintptr_t));
    g_s.list_slot = calloc(2 * MAX_THREADS, sizeof(uint32_t)); /* + selection scratch */
    g_s.list_info = calloc(MAX_THREADS, sizeof(cp_tsinfo));
    g_s.list_ok = calloc(MAX_THREADS, sizeof(bool));
    g_s.ts_buf = calloc(MAX_THREADS, cp__ts_span());
    g_s.py_scratch = calloc(max_frames, sizeof(cp_rawframe));
    g_s.merged = calloc(max_frames, sizeof(cp_rawframe));
    g_s.groups = calloc(max_frames, sizeof(uint16_t));
    g_s.native_sample = calloc(1, sizeof(cp_pyn_sample));
    g_s.young_stack = calloc(max_frames, sizeof(cp_rawframe));
    if (!g_s.native_sample || !g_s.young_stack || !g_s.scratch || !g_s.py_scratch || !g_s.merged || !g_s.groups || !g_s.slots || !g_s.stacks || !g_s.list_ts || !g_s.list_slot || !g_s.list_info ||
        !g_s.list_ok || !g_s.ts_buf || !cp__ring_init(&g_s.ring, RING_SLOTS, max_frames, CP_TASK_NAME_MAX)) {
        cp__sampler_free();
        return false;
    }
    return true;
}

static void reset_tables(void)
{
    g_s.slots_hw = 0;
    for (size_t i = 0; i < MAX_THREADS; i++) {
        memset(&g_s.slots[i], 0, sizeof(tslot));
        g_s.slots[i].stack = g_s.stacks + i * g_s.o.max_frames;
    }
    atomic_store(&g_s.ring.head, 0);
    atomic_store(&g_s.ring.tail, 0);
    atomic_store(&g_s.ring.base, 0);
    g_s.nlist = 0;
    g_s.list_head = 0;
    g_s.walks = g_s.last_walk_gen = 0;
    g_s.starting = false;
    g_s.cpu_ticks = g_s.gaps = 0;
    g_s.gap_sum = g_s.cpu_tick_last = 0;
    g_s.quiet = g_s.busy = false;
    g_s.still_ticks = 0;
    cp__pyn_kick_on(NULL);
    g_s.unseen_cpu = g_s.unseen_outside = 0;
    memset(g_s.sight, 0, sizeof g_s.sight);
    atomic_store(&g_s.exit_head, 0);
    atomic_store(&g_s.exit_tail, 0);
    /* After a fork, the parent's waiting threads are gone. */
    idtab_clear(&g_wait);
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
    g_births_from = mono_ns();
    cp__pyoff_gil(&g_s.gil_holder, &g_s.gil_locked);
    atomic_store(&g_s.wake, 0);
    for (int i = 0; i < 4; i++)
        atomic_store(&g_s.skip[i], 0);
    atomic_store(&g_s.stop, false);
    /* The thread blocks every signal so that none is ever delivered to it
     * instead of a Python thread (CPython's handlers expect the main one). */
    cp__cthreads_reset();
    int rc = cp_os_thread_start(&g_s.thr, run, NULL, "contprof-sample");
    if (rc != 0)
        return CP_ENOMEM;
    atomic_store(&g_s.running, true);
    return CP_OK;
}

void cp__sampler_stop(void)
{
    if (!atomic_load(&g_s.running))
        return;
    atomic_store(&g_s.stop, true);
    /* Wakes the thread at once; a wake-up that lands before it sleeps is
     * not lost (the futex word is no longer 0, so the wait returns). */
    atomic_store(&g_s.wake, 1);
    syscall(SYS_futex, &g_s.wake, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    pthread_join(g_s.thr, NULL);
    atomic_store(&g_s.running, false);
    /* Reports queued after the sampler's last look: their capture entries
     * are free again (no report is queued from now on). */
    cp__spin_lock(&g_s.exit_lock);
    size_t head = atomic_load(&g_s.exit_head);
    for (size_t i = atomic_load(&g_s.exit_tail); i != head; i++)
        cp__pyn_young_release(g_s.exits[i % EXIT_SLOTS].young);
    atomic_store(&g_s.exit_tail, head);
    cp__spin_unlock(&g_s.exit_lock);
    cp__pyn_young_stop_all();
    for (size_t i = 0; i < MAX_THREADS; i++) {
        cp__pyn_timer_drop((int)i);
        if (g_s.slots[i].ts)
            settle(&g_s.slots[i]);
    }
}

void cp__sampler_flush_pending(int64_t wait_ms)
{
    if (!atomic_load(&g_s.running))
        return;
    atomic_store(&g_s.flush_req, true);
    syscall(SYS_futex, &g_s.wake, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    int64_t end = mono_ns() + wait_ms * 1000000LL;
    struct timespec ms = {0, 1000000};
    while (atomic_load(&g_s.flush_req) && mono_ns() < end)
        nanosleep(&ms, NULL);
}

void cp__sampler_forget(void)
{
    atomic_store(&g_s.running, false);
    cp__pyn_forget();
    if (g_s.slots)
        reset_tables();
}

void cp__sampler_free(void)
{
    free(g_s.slots);
    free(g_s.stacks);
    free(g_s.scratch);
    free(g_s.list_ts);
    free(g_s.list_slot);
    free(g_s.list_info);
    free(g_s.list_ok);
    free(g_s.ts_buf);
    free(g_s.py_scratch);
    free(g_s.merged);
    free(g_s.groups);
    free(g_s.native_sample);
    free(g_s.young_stack);
    g_s.native_sample = NULL;
    g_s.young_stack = NULL;
    g_s.py_scratch = g_s.merged = NULL;
    g_s.groups = NULL;
    g_s.list_ts = NULL;
    g_s.list_slot = NULL;
    g_s.list_info = NULL;
    g_s.list_ok = NULL;
    g_s.ts_buf = NULL;
    cp__ring_free(&g_s.ring);
    g_s.slots = NULL;
    g_s.stacks = NULL;
    g_s.scratch = NULL;
}

cp_rawring *cp__sampler_ring(void)
{
    return g_s.ring.slots ? &g_s.ring : NULL;
}
