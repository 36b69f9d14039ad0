/*
 * cthreads.c — threads that run no Python (see cthreads.h).
 *
 * Every SCAN_NS the sampler lists /proc/self/task, when something may have
 * changed: the thread count (one stat), the Python threads it samples, or a
 * candidate waiting for its second sighting; and at least every LIST_NS
 * (one thread may end as another starts). A thread that is not a
 * Python thread it samples and not the profiler's own (comm "contprof*")
 * is a candidate; seen so twice in a row it is adopted (before 3.11 a new
 * Python thread reports its kernel tid a moment after it starts). Its CPU
 * counts from its birth when it started while we were profiling, else from
 * the first scan. Each CPU tick reads the adopted threads' clocks; once a
 * thread has used 3/4 of an interval (cp__pyn_min_cpu_ns) it is asked
 * (pynative.c) for its native stack, and the CPU since the last sample is
 * charged to it. A thread that blocks our signal, or did not answer four
 * times in a row, is charged to a pseudo-frame instead (and asked again a
 * second later).
 *
 * Descriptors: the listing (cp_os_list_threads) holds one for the length
 * of the read; comm/status files, read once per new thread, are moved to
 * fd >= 512 before use. Nothing is held between scans.
 *
 * The table is written by the sampler thread only; the resolver reads
 * names lock-free: an entry's tid is cleared before it changes and set
 * after, and a reader checks it on both sides of its copy.
 */
#include "cthreads.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "contprof.h"
#include "contprof_os.h"
#include "pynative.h"
#include "sampler.h"

enum { MAX_CT = 256, NAME_LEN = 16, MISSES_MAX = 4 };
#define SCAN_NS 100000000LL
#define LIST_NS 1000000000LL
#define RETRY_NS 1000000000LL
#define NAME_KEEP_NS 2000000000LL /* an ended thread's name, for its samples still queued */

typedef struct cthread {
    _Atomic int32_t tid;   /* 0 = free                                 */
    bool adopted, seen;
    bool ours;             /* a profiler thread: remembered, never sampled */
    int64_t last_cpu;      /* CPU charged up to here                   */
    int64_t tick_cpu;      /* its clock at the last CPU tick           */
    int64_t no_unwind_until; /* mono ns; INT64_MAX: blocks our signal  */
    int misses;            /* unanswered requests in a row             */
    int64_t ended_at;      /* mono ns it was found gone (0: alive)      */
    char name[NAME_LEN];
} cthread;

static struct {
    cthread t[MAX_CT];
    int64_t next_scan;
    cp_thread_watch watch; /* when to list again                         */
    bool pending;          /* a candidate awaits its second sighting    */
    bool scanned;          /* a first scan happened                     */
    pid_t self;
    bool full_logged;
} g_c;

void cp__cthreads_reset(void)
{
    for (size_t i = 0; i < MAX_CT; i++)
        atomic_store(&g_c.t[i].tid, 0);
    g_c.next_scan = 0;
    g_c.watch = (cp_thread_watch){0};
    g_c.scanned = false;
    g_c.self = 0;
}

static ssize_t read_file(const char *path, char *buf, size_t n)
{
    int fd = cp_os_open_high(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t k = read(fd, buf, n - 1);
    close(fd);
    buf[k > 0 ? k : 0] = '\0';
    return k;
}

static bool read_comm(pid_t tid, char *out)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
    if (read_file(path, out, NAME_LEN) <= 0)
        return false;
    out[strcspn(out, "\n")] = '\0';
    return true;
}

/* Does thread tid block the signal pynative.c uses? (Then it cannot be
 * asked for its stack.) Unknown: no. */
static bool blocks_signal(pid_t tid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    if (read_file(path, buf, sizeof buf) <= 0)
        return false;
    const char *p = strstr(buf, "\nSigBlk:");
    unsigned long long mask = p ? strtoull(p + 8, NULL, 16) : 0;
    int sig = cp__pyn_signal();
    return sig > 0 && (mask >> (sig - 1)) & 1;
}

static cthread *find(pid_t tid)
{
    for (size_t i = 0; i < MAX_CT; i++)
        if (atomic_load_explicit(&g_c.t[i].tid, memory_order_relaxed) == tid)
            return &g_c.t[i];
    return NULL;
}

static void candidate(pid_t tid)
{
    char name[NAME_LEN];
    if (!read_comm(tid, name))
        return;
    /* A profiler thread is kept in the table too, so that its name is
     * read once, not at every scan. */
    bool ours = strncmp(name, "contprof", 8) == 0;
    for (size_t i = 0; i < MAX_CT; i++) {
        cthread *t = &g_c.t[i];
        if (atomic_load(&t->tid) != 0)
            continue;
        memcpy(t->name, name, sizeof name);
        t->adopted = false;
        t->ours = ours;
        t->seen = true;
        /* Born under us: all of its CPU; else from now. */
        t->last_cpu = g_c.scanned ? 0 : cp_os_thread_cpu_ns(tid);
        t->tick_cpu = 0;
        t->no_unwind_until = 0;
        t->misses = 0;
        t->ended_at = 0;
        atomic_store(&t->tid, tid);
        return;
    }
    if (!g_c.full_logged) {
        g_c.full_logged = true;
        cp_log(CP_LOG_WARN, "more than %d threads without Python frames: the extra ones are "
               "not sampled", MAX_CT);
    }
}

static void consider(pid_t tid)
{
    if (tid == g_c.self || cp__sampler_is_python_tid((uint64_t)tid))
        return;
    cthread *t = find(tid);
    if (t != NULL && t->ended_at) { /* the tid now names a new thread */
        atomic_store(&t->tid, 0);
        t = NULL;
    }
    if (t == NULL) {
        candidate(tid);
        return;
    }
    t->seen = true;
    if (!t->adopted && !t->ours) {
        t->adopted = true;
        cp__pyn_count_native_thread();
        if (blocks_signal(tid))
            t->no_unwind_until = INT64_MAX;
    }
}

/* A thread found gone keeps its entry (not sampled) for NAME_KEEP_NS: the
 * resolver names its samples still in the ring from it. */
static void ended(cthread *t, int64_t now)
{
    if (!t->ended_at)
        t->ended_at = now > 0 ? now : 1;
}

/* Lists the threads and matches the table to them; how many were listed
 * (-1: /proc unreadable). */
static long scan(int64_t now)
{
    static pid_t tids[4096];
    long n = cp_os_list_threads(tids, sizeof tids / sizeof tids[0]);
    if (n < 0)
        return -1;
    for (size_t i = 0; i < MAX_CT; i++)
        g_c.t[i].seen = false;
    for (long i = 0; i < n && i < (long)(sizeof tids / sizeof tids[0]); i++)
        consider(tids[i]);
    g_c.scanned = true;
    /* A Python thread after all: forget it. Gone: its name is kept a
     * while (ended). A listing cut short (more threads than fit) proves
     * nothing about the rest. */
    for (size_t i = 0; i < MAX_CT && n <= (long)(sizeof tids / sizeof tids[0]); i++) {
        cthread *t = &g_c.t[i];
        int32_t tid = atomic_load(&t->tid);
        if (tid == 0)
            continue;
        if (cp__sampler_is_python_tid((uint64_t)tid) || (t->ended_at && now - t->ended_at >= NAME_KEEP_NS))
            atomic_store(&t->tid, 0);
        else if (!t->seen)
            ended(t, now);
    }
    g_c.pending = false;
    for (size_t i = 0; i < MAX_CT; i++) {
        cthread *t = &g_c.t[i];
        if (atomic_load(&t->tid) != 0 && !t->adopted && !t->ours && !t->ended_at)
            g_c.pending = true;
    }
    return n;
}


static void emit(pid_t tid, int64_t cpu_ns, const uintptr_t *pcs, int npcs, cp_rawring *ring)
{
    cp_rawsample *s = cp__ring_reserve(ring);
    if (!s) {
        cp_metrics_add_dropped(1);
        return;
    }
    memset(s, 0, sizeof *s);
    s->thread_id = (uint64_t)tid; /* no Python ident: the kernel tid */
    s->native_id = (uint64_t)tid;
    s->cpu_ns = cpu_ns;
    s->cpu_n = 1;
    s->nframes = cp__pyn_native_only(pcs, npcs, s->frames, ring->max_frames, &s->omitted);
    cp__ring_commit(ring);
    cp_metrics_add_taken(1);
}

/* Samples t when it used enough CPU; whether it ran since the last tick
 * (cp__ran_since_tick). */
static bool sample(cthread *t, int64_t now, int64_t interval, cp_rawring *ring)
{
    int32_t tid = atomic_load(&t->tid);
    int64_t cpu = cp_os_thread_cpu_ns(tid);
    if (cpu < 0) { /* gone */
        ended(t, now);
        return false;
    }
    if (cpu < t->last_cpu) { /* the tid now names another thread */
        atomic_store(&t->tid, 0);
        return false;
    }
    bool ran = cp__ran_since_tick(&t->tick_cpu, cpu, interval);
    int64_t delta = cpu - t->last_cpu;
    if (delta < cp__pyn_min_cpu_ns(interval))
        return ran; /* accumulates until it is worth a stack */
    static cp_pyn_sample ps; /* sampler thread only */
    bool got = false;
    if (now >= t->no_unwind_until) {
        ps.g.cap = 0; /* no Python frames asked for */
        got = cp__pyn_capture(tid, 0, 0, &ps);
        /* Not in time (a loaded machine): the CPU waits for the next
         * answer; after a few misses in a row, or when the thread blocks
         * the signal, it is charged to a pseudo-frame. */
        if (!got && ++t->misses < MISSES_MAX)
            return ran;
        if (!got)
            t->no_unwind_until = now + RETRY_NS;
    }
    t->misses = 0;
    t->last_cpu = cpu;
    emit(tid, delta, ps.pcs, got ? ps.npcs : 0, ring);
    return ran;
}

bool cp__cthreads_tick(int64_t now, int64_t interval_ns, cp_rawring *ring)
{
    bool ran = false;
    if (g_c.self == 0)
        g_c.self = (pid_t)syscall(SYS_gettid);
    if (now >= g_c.next_scan) {
        g_c.next_scan = now + SCAN_NS;
        /* Listed when something may have changed (see the top of this file). */
        if (cp_thread_watch_due(&g_c.watch, now, cp__sampler_python_sig(), g_c.pending, LIST_NS))
            cp_thread_watch_listed(&g_c.watch, scan(now));
    }
    for (size_t i = 0; i < MAX_CT; i++)
        if (atomic_load_explicit(&g_c.t[i].tid, memory_order_relaxed) != 0 && g_c.t[i].adopted && !g_c.t[i].ended_at)
            ran |= sample(&g_c.t[i], now, interval_ns, ring);
    return ran;
}

bool cp__cthreads_name(uint64_t tid, char *out, size_t n)
{
    for (size_t i = 0; i < MAX_CT; i++) {
        cthread *t = &g_c.t[i];
        if ((uint64_t)atomic_load(&t->tid) != tid || tid == 0)
            continue;
        char copy[NAME_LEN];
        memcpy(copy, t->name, sizeof copy);
        copy[NAME_LEN - 1] = '\0';
        if ((uint64_t)atomic_load(&t->tid) != tid)
            return false;
        snprintf(out, n, "%s", copy);
        return true;
    }
    return false;
}
