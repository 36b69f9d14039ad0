/*
 * sigexit.c — flush, then die of the same signal (see sigexit.h).
 *
 * The handler is async-signal-safe: it stores the signal number in a
 * futex word and wakes the waiter with one syscall, errno preserved. The
 * waiter blocks every signal, so the re-sent signal is delivered to one of
 * the program's threads, where the default action ends the process.
 */
#include "sigexit.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "contprof.h"
#include "contprof_os.h"
#include "sampler.h"

#define QUIT 0x7fffffff /* futex value: stop waiting, no signal */

static const int k_sigs[] = {SIGTERM, SIGHUP, SIGINT};
#define NSIGS (sizeof k_sigs / sizeof k_sigs[0])

static struct {
    _Atomic uint32_t word;      /* 0 = idle, a signal number, or QUIT */
    bool installed[NSIGS];
    bool running;
    atomic_bool stopping, stop_done; /* stop() is flushing / has flushed */
    _Atomic pid_t pid;          /* the process whose thread waits */
    pthread_t thr;
    int64_t deadline_ms;
} g_x;

static void futex_wake(void)
{
    syscall(SYS_futex, &g_x.word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void on_signal(int sig)
{
    int saved = errno;
    uint32_t idle = 0;
    if (getpid() != atomic_load(&g_x.pid)) {
        /* A child forked without the after-fork hook has no waiter: never
         * swallow its signal. */
        signal(sig, SIG_DFL);
        kill(getpid(), sig);
    } else if (atomic_compare_exchange_strong(&g_x.word, &idle, (uint32_t)sig)) {
        futex_wake();
    } else {
        /* Signalled again while flushing: the default action, now. */
        signal(sig, SIG_DFL);
        kill(getpid(), sig);
    }
    errno = saved;
}

/* Is our handler (still) the disposition of sig? */
static bool ours(int sig)
{
    struct sigaction cur;
    return sigaction(sig, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == on_signal;
}

static void *run(void *arg)
{
    (void)arg;
    uint32_t w;
    while ((w = atomic_load(&g_x.word)) == 0)
        syscall(SYS_futex, &g_x.word, FUTEX_WAIT_PRIVATE, 0u, NULL, NULL, 0);
    if (w == QUIT)
        return NULL;
    int sig = (int)w;
    cp_log(CP_LOG_INFO, "signal %d: writing the last profile, then exiting by the same signal", sig);
    int rc = CP_OK;
    if (!atomic_load(&g_x.stopping)) {
        cp__sampler_flush_pending(50);
        rc = cp_flush(g_x.deadline_ms);
    }
    if (atomic_load(&g_x.stopping)) {
        /* stop() is writing it (a normal exit met the signal): wait. */
        int64_t left = g_x.deadline_ms + 1000;
        struct timespec ms = {0, 1000000};
        while (!atomic_load(&g_x.stop_done) && left-- > 0)
            nanosleep(&ms, NULL);
    } else if (rc != CP_OK) {
        cp_log(CP_LOG_WARN, "the last profile before signal %d was not written: %s", sig, cp_strerror(rc));
    }
    signal(sig, SIG_DFL);
    kill(getpid(), sig);
    return NULL;
}

static int start_thread(void)
{
    /* Every signal blocked in it: the one it waits for is re-raised on the
     * process. Named as the profiler's own: cthreads.c leaves "contprof*"
     * threads out. */
    return cp_os_thread_start(&g_x.thr, run, NULL, "contprof-sigexi") == 0 ? CP_OK : CP_ENOMEM;
}

int cp__sigexit_start(int64_t deadline_ms)
{
    if (g_x.running)
        return CP_ESTATE;
    g_x.deadline_ms = deadline_ms;
    atomic_store(&g_x.word, 0);
    atomic_store(&g_x.stopping, false);
    atomic_store(&g_x.stop_done, false);
    if (start_thread() != CP_OK)
        return CP_ENOMEM;
    atomic_store(&g_x.pid, getpid());
    g_x.running = true;
    for (size_t i = 0; i < NSIGS; i++) {
        struct sigaction cur, sa;
        if (g_x.installed[i] && ours(k_sigs[i]))
            continue; /* inherited through fork */
        g_x.installed[i] = false;
        if (sigaction(k_sigs[i], NULL, &cur) != 0 || (cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL)
            continue; /* the program's (or Python's) own handler, or ignored */
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        g_x.installed[i] = sigaction(k_sigs[i], &sa, NULL) == 0;
    }
    return CP_OK;
}

void cp__sigexit_stopping(void)
{
    atomic_store(&g_x.stopping, true);
}

void cp__sigexit_stop(void)
{
    atomic_store(&g_x.stop_done, true);
    for (size_t i = 0; i < NSIGS; i++) {
        if (g_x.installed[i] && ours(k_sigs[i]))
            signal(k_sigs[i], SIG_DFL);
        g_x.installed[i] = false;
    }
    if (!g_x.running)
        return;
    uint32_t idle = 0;
    if (atomic_compare_exchange_strong(&g_x.word, &idle, QUIT)) {
        futex_wake();
        pthread_join(g_x.thr, NULL);
    } else {
        /* A signal is being handled: that thread ends the process. */
        pthread_detach(g_x.thr);
    }
    g_x.running = false;
}

void cp__sigexit_forget(void)
{
    g_x.running = false;
    atomic_store(&g_x.pid, 0); /* until the child's own waiter runs */
}
