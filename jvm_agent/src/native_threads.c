/*
 * native_threads.c — timers for the threads that JVMTI does not report.
 *
 * The table is written by one thread at a time (the wall sampler; VMDeath
 * after the samplers stopped). The resolver reads names lock-free: an
 * entry's tid is cleared before the entry changes and set after, and a
 * reader checks it on both sides of its copy.
 */
#include "native_threads.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "contprof_os.h"
#include "cpu_sampler.h"
#include "jvm_agent.h"
#include "sampling_signal.h"
#include "thread_table.h"

enum { MAX_NATIVE = 2048, NAME_LEN = 16, SCAN_MS = 100, LIST_MS = 1000 };

typedef struct native_thread {
    atomic_int tid;        /* 0 = free                                   */
    bool armed;
    bool seen;             /* in the current scan                        */
    timer_t timer;
    char name[NAME_LEN];
} native_thread;

static native_thread *g_tab;
static atomic_size_t g_used;          /* entries [0, g_used) were ever taken */
static int64_t g_next_scan;
/* A scan lists /proc/self/task only when the thread count or the set of
 * registered Java threads changed since the last listing, or LIST_MS
 * after it (one thread may end as another starts). Wall-sampler thread. */
static cp_thread_watch g_watch;
static atomic_bool g_full_logged;
static atomic_uint g_armed_total;     /* native threads given a timer so far */

int cp__native_threads_init(void)
{
    if (g_tab == NULL && (g_tab = calloc(MAX_NATIVE, sizeof *g_tab)) == NULL)
        return CP_ENOMEM;
    return CP_OK;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dULL;
    return x ^ (x >> 33);
}

/* A CPU-time timer of thread tid: the sampling signal with the native
 * si_value every cpu interval of that thread's CPU. Native samples weigh
 * one interval each, so the first expiry is random within one interval: a
 * thread that lives for less is still sampled with the right probability. */
static bool arm(pid_t tid, int signo, timer_t *out)
{
    struct sigevent sev;
    struct itimerspec its;
    int64_t ns = cp__jvm.cpu_interval_ns;
    int64_t first = 1 + (int64_t)(mix((uint64_t)tid ^ (uint64_t)cp_now_ns()) % (uint64_t)ns);

    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signo;
    sev.sigev_value.sival_ptr = cp__signal_native_cpu_value();
    sev._sigev_un._tid = tid;
    if (timer_create(cp__thread_cpu_clock(tid), &sev, out) != 0)
        return false;
    its.it_interval = (struct timespec){ns / 1000000000, ns % 1000000000};
    its.it_value = (struct timespec){first / 1000000000, first % 1000000000};
    if (timer_settime(*out, 0, &its, NULL) != 0) {
        timer_delete(*out);
        return false;
    }
    return true;
}

static native_thread *find(pid_t tid)
{
    size_t used = atomic_load_explicit(&g_used, memory_order_acquire);
    for (size_t i = 0; i < used; i++)
        if (atomic_load_explicit(&g_tab[i].tid, memory_order_relaxed) == tid)
            return &g_tab[i];
    return NULL;
}

static bool read_comm(pid_t tid, char *out, size_t n)
{
    char path[64];
    FILE *f;

    snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
    if ((f = fopen(path, "re")) == NULL)
        return false;
    bool ok = fgets(out, (int)n, f) != NULL;
    fclose(f);
    out[ok ? strcspn(out, "\n") : 0] = '\0';
    return ok;
}

static bool is_java_registered(pid_t tid)
{
    for (size_t i = 0; i < cp__threads_high_water(); i++) {
        cp__thread_slot *s = cp__threads_slot(i);
        if (atomic_load(&s->state) == CP__SLOT_ACTIVE && s->tid == tid)
            return true;
    }
    return false;
}

/* Exactly one caller deletes a timer (the wall sampler, or VMDeath). */
static void drop(native_thread *t)
{
    if (atomic_exchange(&t->tid, 0) != 0 && t->armed)
        timer_delete(t->timer);
}

static void adopt(pid_t tid, int signo)
{
    char name[NAME_LEN];

    if (!read_comm(tid, name, sizeof name))
        return;
    /* Our own threads (contprof-wall, -resolver, the core's): their cost is
     * accounted separately and they must not sample themselves. They keep
     * an entry without a timer, so later scans do not read their name again. */
    bool ours = strncmp(name, "contprof", 8) == 0;
    for (size_t i = 0; i < MAX_NATIVE; i++) {
        native_thread *t = &g_tab[i];
        if (atomic_load(&t->tid) != 0)
            continue;
        memcpy(t->name, name, sizeof name);
        t->seen = true;
        t->armed = !ours && arm(tid, signo, &t->timer);
        if (t->armed)
            atomic_fetch_add(&g_armed_total, 1);
        atomic_store(&t->tid, tid);
        if (i >= atomic_load(&g_used))
            atomic_store_explicit(&g_used, i + 1, memory_order_release);
        return;
    }
    if (!atomic_exchange(&g_full_logged, true))
        cp_log(CP_LOG_WARN, "more than %d native threads: the extra ones are not sampled", MAX_NATIVE);
}

/* The process's tids, listed by the wall-sampler thread only. */
static pid_t g_tids[16384];

/* Changes whenever a Java thread registers or leaves. */
static uint64_t java_signature(void)
{
    uint64_t sig = 0;
    for (size_t i = 0; i < cp__threads_high_water(); i++) {
        cp__thread_slot *s = cp__threads_slot(i);
        if (atomic_load(&s->state) == CP__SLOT_ACTIVE)
            sig += ((uint64_t)atomic_load(&s->gen) << 20) + i + 1;
    }
    return sig;
}

/* Lists the threads and matches the table to them; how many were listed
 * (-1: /proc unreadable). */
static long scan(int signo)
{
    long n = cp_os_list_threads(g_tids, sizeof g_tids / sizeof g_tids[0]);
    size_t listed = n < 0 ? 0 : (size_t)n < sizeof g_tids / sizeof g_tids[0] ? (size_t)n
                                                                              : sizeof g_tids / sizeof g_tids[0];

    size_t used;

    if (n < 0)
        return -1;
    used = atomic_load(&g_used);
    for (size_t i = 0; i < used; i++)
        g_tab[i].seen = false;
    for (size_t k = 0; k < listed; k++) {
        pid_t tid = g_tids[k];
        native_thread *t = find(tid);
        bool java = is_java_registered(tid);
        if (t != NULL && !java)
            t->seen = true;
        else if (t == NULL && !java)
            adopt(tid, signo);
    }
    if ((size_t)n > listed)
        return n; /* some threads were not listed: drop none this time */
    /* Gone, or registered as a Java thread since: its own timer samples it. */
    for (size_t i = 0; i < used; i++)
        if (atomic_load(&g_tab[i].tid) != 0 && !g_tab[i].seen)
            drop(&g_tab[i]);
    return n;
}

void cp__native_threads_tick(int signo)
{
    int64_t now = cp_now_ns();

    /* Libraries loaded since the last look (libzip at the first Deflater)
     * must be known to the unwinder before their code is on a stack that
     * gets sampled: one dl_iterate_phdr per wall tick when nothing changed. */
    cp_native_refresh();

    if (g_tab == NULL || signo <= 0 || now < g_next_scan || !cp__jvm_running())
        return;
    g_next_scan = now + (int64_t)SCAN_MS * 1000000;
    if (cp_thread_watch_due(&g_watch, now, java_signature(), false, (int64_t)LIST_MS * 1000000))
        cp_thread_watch_listed(&g_watch, scan(signo));
}

void cp__native_threads_stop_all(void)
{
    for (size_t i = 0; g_tab != NULL && i < atomic_load(&g_used); i++)
        if (atomic_load(&g_tab[i].tid) != 0)
            drop(&g_tab[i]);
}

void cp__native_threads_rescan_soon(void)
{
    cp__native_threads_stop_all(); /* the next tick re-arms on its signal */
    g_next_scan = 0;
    g_watch.next_list = 0;
}

void cp__native_threads_publish_stats(void)
{
    cp_native_stats st;
    char json[512];
    cp_native_stats_get(&st);
    snprintf(json, sizeof json,
             "{\"native_threads_sampled\":%u,\"unwinds\":%llu,\"frames\":%llu,\"stopped\":{\"end\":%llu,"
             "\"truncated\":%llu,\"unknown_pc\":%llu,\"no_unwind_info\":%llu,\"error\":%llu},"
             "\"objects\":%llu,\"symbols_cached\":%llu,\"unwind_info_cache\":{\"hits\":%llu,"
             "\"misses\":%llu}}",
             atomic_load(&g_armed_total), (unsigned long long)st.unwinds, (unsigned long long)st.frames,
             (unsigned long long)st.stops[CP_UNWIND_END], (unsigned long long)st.stops[CP_UNWIND_TRUNCATED],
             (unsigned long long)st.stops[CP_UNWIND_UNKNOWN_PC], (unsigned long long)st.stops[CP_UNWIND_NO_INFO],
             (unsigned long long)st.stops[CP_UNWIND_ERROR], (unsigned long long)st.modules,
             (unsigned long long)st.symbols_cached, (unsigned long long)st.proc_info_hits,
             (unsigned long long)st.proc_info_misses);
    cp_runtime_info_set("native_stacks", json);
}

bool cp__native_thread_name(pid_t tid, char *out, size_t n)
{
    native_thread *t = g_tab != NULL && tid > 0 ? find(tid) : NULL;
    char copy[NAME_LEN];

    if (t == NULL)
        return false;
    memcpy(copy, t->name, sizeof copy);
    copy[NAME_LEN - 1] = '\0';
    if (atomic_load(&t->tid) != tid)
        return false;
    snprintf(out, n, "%s", copy);
    return true;
}
