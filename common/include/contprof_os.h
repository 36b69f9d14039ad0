/*
 * contprof_os.h — one home for the OS facts the core and the front ends
 * need (Linux): per-thread CPU clocks, threads started with every signal
 * blocked, waits on CLOCK_MONOTONIC deadlines, the thread list, and file
 * descriptors moved out of the host's low range. A fix lands here once.
 *
 * Deadlines are CLOCK_MONOTONIC nanoseconds (cp_now_ns() + timeout): a
 * wall-clock step never shortens or stretches a wait.
 */
#ifndef CONTPROF_OS_H
#define CONTPROF_OS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The calling thread's kernel id. Signal-safe. */
pid_t cp_os_gettid(void);

/* Clock cid (CLOCK_MONOTONIC, a CPU clock, a dynamic per-thread clock)
 * in ns as the kernel keeps it, or -1: read through the vDSO's own
 * clock_gettime (found in the auxiliary vector) or the raw system call,
 * never through a preloadable clock_gettime. A time faker such as libfaketime
 * shifts every clock it wraps by its fake offset (CPU clocks too, and
 * MONOTONIC to the fake wall time unless told not to), which would make
 * CPU clocks jump or run backwards and deadlines handed to the kernel
 * (futex, clockwait, clockjoin) lie years away. The profiler's clocks are
 * the kernel's; only the wall-clock stamps follow what the program sees.
 * errno kept; signal-safe. (MONOTONIC ~25 ns through the vDSO, ~270 ns
 * as a system call here; CPU clocks take the system call either way,
 * ~0.6 us.) */
int64_t cp_os_kernel_clock_ns(clockid_t cid);

/* Whether cp_os_kernel_clock_ns reads through the vDSO (else the system
 * call). */
bool cp_os_kernel_clock_vdso(void);

/* CPU time (user+sys, ns) of thread tid of this process, or -1 when it
 * has exited. No allocation, no lock: signal-safe. A tid the kernel
 * reused for a new thread reads the new thread's clock: callers that keep
 * tids across time must check the thread is still theirs. */
int64_t cp_os_thread_cpu_ns(pid_t tid);

/* pthread_create with every signal blocked in the new thread (the host's
 * SIGPROF, SIGINT, SIGCHLD... never land on a profiler thread) and named
 * (at most 15 characters). The caller's own mask is unchanged. Returns
 * pthread_create's result. */
int cp_os_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

/* Initialise cv to time its waits on CLOCK_MONOTONIC. 0 or an errno. */
int cp_os_cond_init_monotonic(pthread_cond_t *cv);

/* Wait on cv until deadline_ns (CLOCK_MONOTONIC, kernel time as
 * cp_now_ns reads it; pthread_cond_clockwait, which libfaketime does not
 * wrap: its pthread_cond_timedwait wrapper times out at once on a
 * MONOTONIC cv); cv must come from cp_os_cond_init_monotonic. 0, or
 * ETIMEDOUT once past it. */
int cp_os_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ns);

/* Join t if it exits before deadline_ns (CLOCK_MONOTONIC); true if so. */
bool cp_os_join_until(pthread_t t, int64_t deadline_ns);

/* The tids of this process's threads (/proc/self/task), at most max into
 * tids; returns how many threads there are (may exceed max), -1 when
 * /proc is unreadable. No malloc: usable from a fork child or a sampler. */
long cp_os_list_threads(pid_t *tids, size_t max);

/* How many threads this process has, from one stat of /proc/self/task
 * (procfs counts them in its link count); -1 if unreadable. A tenth of
 * what a listing costs: callers list again only when it changes (and now
 * and then anyway, since one thread may end as another starts). */
long cp_os_thread_count(void);

/* When to list /proc/self/task again (cp_os_list_threads), for a sampler
 * looking for threads its runtime does not report. Zero-initialised (or
 * next_list = 0) lists at the next call. One thread only. */
typedef struct cp_thread_watch {
    int64_t next_list; /* list at the latest then                         */
    long count;        /* cp_os_thread_count at the last listing           */
    uint64_t sig;      /* the caller's signature then                      */
    int misses;        /* listings in a row that disagreed with the count  */
} cp_thread_watch;

/* Whether to list now: the thread count (one stat) or sig (the caller's
 * summary of the threads it already knows) changed since the last listing,
 * force, or every_ns have passed since it. If so, notes count and sig and
 * the next deadline. A count that disagreed with three listings in a row
 * (a /proc that does not count links) is not read again: then every call
 * lists. */
bool cp_thread_watch_due(cp_thread_watch *w, int64_t now, uint64_t sig, bool force, int64_t every_ns);

/* After a listing cp_thread_watch_due asked for: how many threads it found
 * (-1: /proc unreadable). */
void cp_thread_watch_listed(cp_thread_watch *w, long listed);

/* Move fd to the lowest free descriptor >= floor with FD_CLOEXEC set and
 * close the original; returns the new fd, or -1 (fd left as it was). A
 * daemon that closes or dup2s over its low descriptors then never hits a
 * profiler's. */
int cp_os_fd_move_high(int fd, int floor);

/* open(path, flags | O_CLOEXEC) for a profiler thread's short use, moved
 * to a descriptor >= 512 when the limit allows (else left where it is);
 * -1 when the open fails. A host that lists its own descriptors meanwhile
 * (a child before exec, CPython's fd tests, closefrom) then never meets a
 * low one that it did not open. */
int cp_os_open_high(const char *path, int flags);

/* Call fn(arg) while every free descriptor number from 3 to 511 is held
 * by a placeholder, so that descriptors a library opens for good inside fn
 * (libunwind's memory-validation pipe) land at 512 or above, out of the
 * host's sight. Placeholders are closed after, each only if it is still
 * ours. Without room under the descriptor limit fn just runs. */
void cp_os_call_fds_high(void (*fn)(void *), void *arg);

/* Is fd still the same open file as the one whose (st_dev, st_ino) were
 * recorded when it was made? For descriptors kept between uses, which a
 * host's closefrom(3) may have closed and reused for something else. */
bool cp_os_fd_is(int fd, uint64_t dev, uint64_t ino);

/* The next draw of a xorshift64 generator (*state never 0). Signal-safe. */
static inline uint64_t cp_xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* A period drawn uniform in [mean/2, 3*mean/2) (mean itself if < 2), so
 * that sampling never locks onto a period of the program's own: the
 * sampler threads' ticks and the per-thread CPU timers' expiries.
 * Signal-safe. */
static inline int64_t cp_jittered_ns(int64_t mean, uint64_t *state)
{
    return mean < 2 ? mean : mean / 2 + (int64_t)(cp_xorshift64(state) % (uint64_t)mean);
}

/* The wall time that a thread of this life, seen by a tick whose gaps are
 * drawn by cp_jittered_ns around `gap`, stands for beyond its own life:
 * the threads like it that came and went between two ticks, unseen. A
 * tick falls within a life L with odds P(L) = L/gap up to gap/2, then
 * 1 - (3/2 gap - L)^2 / (2 gap^2), and 1 from 3/2 gap on (a stationary
 * renewal process with uniform gaps). A thread seen is charged its life
 * plus L/P(L) - L, an unseen one nothing: each kind of thread's expected
 * wall is then its life (Horvitz-Thompson), and its own stacks carry it.
 * A thread that lived half a gap or less stands for one gap in all. */
static inline int64_t cp_wall_unseen_ns(int64_t life, int64_t gap)
{
    if (life <= 0 || gap <= 0 || 2 * life >= 3 * gap)
        return 0;
    double l = (double)life, g = (double)gap, p;
    if (2 * life <= gap) {
        p = l / g;
    } else {
        double d = 1.5 * g - l;
        p = 1.0 - d * d / (2.0 * g * g);
    }
    return (int64_t)(l / p - l);
}

/* (Re)arm timer id periodic at interval_ns, its next expiry drawn by
 * cp_jittered_ns: a per-thread CPU timer's handler calls it at every
 * expiry, so that no two gaps are alike. Signal-safe (timer_settime).
 * timer_settime's result. */
static inline int cp_timer_set_jittered(timer_t id, int64_t interval_ns, uint64_t *state)
{
    int64_t next = cp_jittered_ns(interval_ns, state);
    struct itimerspec its = {{interval_ns / 1000000000, interval_ns % 1000000000},
                             {next / 1000000000, next % 1000000000}};
    return timer_settime(id, 0, &its, NULL);
}

#ifdef __cplusplus
}
#endif
#endif /* CONTPROF_OS_H */
