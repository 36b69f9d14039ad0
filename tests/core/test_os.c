/*
 * test_os.c — the OS helper layer (contprof_os.h) on real threads and
 * descriptors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "contprof.h"
#include "contprof_os.h"

static void burn_ms(int ms)
{
    int64_t until = cp_os_thread_cpu_ns(cp_os_gettid()) + (int64_t)ms * 1000000;
    while (cp_os_thread_cpu_ns(cp_os_gettid()) < until) {
    }
}

static atomic_int g_tid;
static atomic_bool g_all_blocked, g_go;

static void *worker(void *arg)
{
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    atomic_store(&g_all_blocked, sigismember(&cur, SIGPROF) && sigismember(&cur, SIGINT) &&
                                     sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGRTMIN));
    burn_ms(30);
    atomic_store(&g_tid, cp_os_gettid());
    while (!atomic_load(&g_go))
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    return arg;
}

/* Another thread's CPU clock by tid; the new thread's mask; the thread
 * list; the caller's mask untouched. */
static void test_threads(void **state)
{
    sigset_t before, after;
    pthread_sigmask(SIG_SETMASK, NULL, &before);
    pthread_t t;
    assert_int_equal(cp_os_thread_start(&t, worker, NULL, "cp-os-test"), 0);
    pthread_sigmask(SIG_SETMASK, NULL, &after);
    assert_int_equal(sigismember(&after, SIGPROF), sigismember(&before, SIGPROF));
    while (!atomic_load(&g_tid))
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    pid_t tid = atomic_load(&g_tid);
    assert_true(atomic_load(&g_all_blocked));
    int64_t cpu = cp_os_thread_cpu_ns(tid);
    assert_true(cpu >= 30000000 && cpu < 5000000000LL);
    pid_t tids[64];
    long n = cp_os_list_threads(tids, 64);
    assert_true(n >= 2 && n <= 64);
    bool saw_self = false, saw_worker = false;
    for (long i = 0; i < n; i++) {
        saw_self |= tids[i] == cp_os_gettid();
        saw_worker |= tids[i] == tid;
    }
    assert_true(saw_self && saw_worker);
    assert_int_equal(cp_os_list_threads(tids, 1), n); /* the count even when truncated */
    assert_int_equal(cp_os_thread_count(), n);        /* no thread starts or ends here */
    atomic_store(&g_go, true);
    assert_true(cp_os_join_until(t, cp_now_ns() + 5000000000LL));
    /* The count follows the worker out (its task is reaped a moment later). */
    long after_join = cp_os_thread_count();
    for (int i = 0; i < 2000 && after_join != n - 1; i++) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        after_join = cp_os_thread_count();
    }
    assert_int_equal(after_join, n - 1);
    /* gone: the kernel may release the task a moment after the join
     * returns (the futex is cleared before the task is reaped) */
    int64_t gone = cp_os_thread_cpu_ns(tid);
    for (int i = 0; i < 2000 && gone != -1; i++) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        gone = cp_os_thread_cpu_ns(tid);
    }
    assert_int_equal(gone, -1);
    assert_int_equal(cp_os_thread_cpu_ns(0x3fffffff), -1); /* would alias another clock */
    assert_int_equal(cp_os_thread_cpu_ns(0), -1);
}

/* cp_wall_unseen_ns: the closed form at its edges, and, against ticks drawn
 * by cp_jittered_ns, threads of several lives charged their life plus it
 * when a tick fell within their life, nothing otherwise: on average, their
 * life (within 2% over 200,000 threads of each life). */
static void test_wall_unseen(void **state)
{
    (void)state;
    const int64_t gap = 50000;
    assert_int_equal(cp_wall_unseen_ns(2000, gap), gap - 2000);   /* odds L/gap */
    assert_int_equal(cp_wall_unseen_ns(25000, gap), 25000);       /* half a gap: odds 1/2 */
    assert_int_equal(cp_wall_unseen_ns(75000, gap), 0);           /* always seen */
    assert_int_equal(cp_wall_unseen_ns(0, gap), 0);
    assert_int_equal(cp_wall_unseen_ns(1000, 0), 0);
    assert_true(cp_wall_unseen_ns(40000, gap) > cp_wall_unseen_ns(50000, gap));
    assert_true(cp_wall_unseen_ns(50000, gap) > 0);

    enum { N = 200000, SPAN = 1 << 30 };
    static int64_t ticks[SPAN / 25000 + 16];
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    size_t nt = 0;
    for (int64_t t = cp_jittered_ns(gap, &rng); t < SPAN; t += cp_jittered_ns(gap, &rng))
        ticks[nt++] = t;
    const int64_t lives[] = {1000, 10000, 30000, 60000, 100000};
    for (size_t k = 0; k < sizeof lives / sizeof lives[0]; k++) {
        int64_t life = lives[k];
        double charged = 0;
        for (int i = 0; i < N; i++) {
            int64_t born = gap * 2 + (int64_t)(cp_xorshift64(&rng) % (uint64_t)(SPAN - 4 * gap - life));
            size_t lo = 0, hi = nt; /* first tick at or after born */
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (ticks[mid] < born)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < nt && ticks[lo] < born + life)
                charged += (double)(life + cp_wall_unseen_ns(life, gap));
        }
        double ratio = charged / ((double)N * (double)life);
        assert_true(ratio > 0.98 && ratio < 1.02);
    }
}

/* cp_thread_watch: lists at first, then only when the count or the
 * caller's signature changed, when forced, or at the deadline; a count
 * that keeps disagreeing with the listings is given up. */
static void test_thread_watch(void **state)
{
    (void)state;
    cp_thread_watch w = {0};
    long n = cp_os_thread_count();
    assert_true(n >= 1);
    assert_true(cp_thread_watch_due(&w, 1000, 7, false, 100));  /* first call */
    cp_thread_watch_listed(&w, n);
    assert_false(cp_thread_watch_due(&w, 1050, 7, false, 100)); /* nothing changed */
    assert_true(cp_thread_watch_due(&w, 1050, 8, false, 100));  /* signature */
    cp_thread_watch_listed(&w, n);
    assert_true(cp_thread_watch_due(&w, 1060, 8, true, 100));   /* forced */
    cp_thread_watch_listed(&w, n);
    assert_false(cp_thread_watch_due(&w, 1159, 8, false, 100));
    assert_true(cp_thread_watch_due(&w, 1160, 8, false, 100));  /* deadline */
    /* A /proc whose count is wrong: listings find 5 more threads. */
    cp_thread_watch_listed(&w, n + 5);
    assert_int_equal(w.misses, 1);
    assert_false(cp_thread_watch_due(&w, 1161, 8, false, 100));
    cp_thread_watch_listed(&w, n + 5);
    assert_false(cp_thread_watch_due(&w, 1162, 8, false, 100));
    cp_thread_watch_listed(&w, n + 5);
    assert_int_equal(w.misses, 3);
    assert_true(cp_thread_watch_due(&w, 1163, 8, false, 100)); /* given up: every call lists */
    assert_true(cp_thread_watch_due(&w, 1164, 8, false, 100));
    cp_thread_watch_listed(&w, n); /* no count to check against: misses stay */
    assert_int_equal(w.misses, 3);
}

static void *sleeper(void *arg)
{
    nanosleep(&(struct timespec){0, 300 * 1000000}, NULL);
    return arg;
}

/* Timed waits end at their monotonic deadline. */
static int64_t libc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The kernel's clocks as the vDSO (or the system call) gives them: the
 * same MONOTONIC as libc's here (nothing preloaded), errno untouched,
 * -1 for a clock that does not exist. */
static void test_kernel_clocks(void **state)
{
    (void)state;
#if defined(__x86_64__) || defined(__aarch64__)
    if (getauxval(AT_SYSINFO_EHDR) != 0) /* a kernel that maps a vDSO */
        assert_true(cp_os_kernel_clock_vdso());
#endif
    for (int i = 0; i < 1000; i++) {
        int64_t a = libc_mono_ns();
        errno = EINTR;
        int64_t k = cp_os_kernel_clock_ns(CLOCK_MONOTONIC);
        assert_int_equal(errno, EINTR);
        int64_t b = libc_mono_ns();
        assert_true(a <= k && k <= b);
    }
    int64_t c0 = cp_os_kernel_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    burn_ms(5);
    int64_t c1 = cp_os_kernel_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    assert_true(c0 >= 0 && c1 - c0 >= 4000000);
    errno = EAGAIN;
    assert_int_equal(cp_os_kernel_clock_ns((clockid_t)4321), -1);
    assert_int_equal(errno, EAGAIN);
}

static void test_timed_waits(void **state)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    assert_int_equal(cp_os_cond_init_monotonic(&cv), 0);
    pthread_mutex_lock(&mu);
    int64_t t0 = cp_now_ns();
    int rc;
    while ((rc = cp_os_cond_wait_until(&cv, &mu, t0 + 50000000)) == 0) {
    }
    int64_t took = cp_now_ns() - t0;
    pthread_mutex_unlock(&mu);
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(took >= 50000000 && took < 2000000000);
    pthread_mutex_lock(&mu);
    assert_int_equal(cp_os_cond_wait_until(&cv, &mu, -5), ETIMEDOUT); /* past: at once */
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
    pthread_t t;
    assert_int_equal(cp_os_thread_start(&t, sleeper, NULL, NULL), 0);
    assert_false(cp_os_join_until(t, cp_now_ns() + 20000000)); /* still sleeping */
    assert_true(cp_os_join_until(t, cp_now_ns() + 5000000000LL));
}

/* Descriptors move above the floor, close-on-exec, original closed; a
 * descriptor reused for another file is recognised. */
static void test_fds(void **state)
{
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    int high = cp_os_fd_move_high(fd, 200);
    assert_true(high >= 200);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* the low one is closed */
    assert_true(fcntl(high, F_GETFD) & FD_CLOEXEC);
    assert_true(cp_os_fd_is(high, (uint64_t)st.st_dev, (uint64_t)st.st_ino));
    close(high); /* as a daemon's closefrom would */
    int other = open("/proc/self/stat", O_RDONLY);
    assert_true(dup2(other, high) == high);
    assert_false(cp_os_fd_is(high, (uint64_t)st.st_dev, (uint64_t)st.st_ino));
    close(other);
    close(high);
    assert_int_equal(cp_os_fd_move_high(-1, 200), -1);
}

static int lowest_free_fd(void)
{
    int fd = fcntl(0, F_DUPFD, 0);
    close(fd);
    return fd;
}

static void open_pipe(void *arg)
{
    assert_int_equal(pipe2(arg, O_CLOEXEC), 0);
}

/* A profiler thread's descriptors never take a low number: the short-use
 * open lands at 512 or above, and what a library opens for good inside
 * cp_os_call_fds_high does too, with every placeholder gone after. */
static void test_fds_high(void **state)
{
    (void)state;
    int low = lowest_free_fd();
    int fd = cp_os_open_high("/proc/self/stat", O_RDONLY);
    assert_true(fd >= 512);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    assert_int_equal(cp_os_open_high("/nonexistent/x", O_RDONLY), -1);
    int p[2];
    cp_os_call_fds_high(open_pipe, p);
    assert_true(p[0] >= 512 && p[1] >= 512);
    assert_int_equal(lowest_free_fd(), low); /* placeholders closed */
    assert_int_equal(write(p[1], "x", 1), 1);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_kernel_clocks),
        cmocka_unit_test(test_wall_unseen),
        cmocka_unit_test(test_thread_watch),
        cmocka_unit_test(test_timed_waits),
        cmocka_unit_test(test_fds),
        cmocka_unit_test(test_fds_high),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
