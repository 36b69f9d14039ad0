/*
 * saferead.c — fault-safe memory reads (see saferead.h).
 *
 * process_vm_readv on our own pid costs one syscall and never faults. Some
 * sandboxes forbid it (seccomp); then a write() of the range into a
 * non-blocking pipe does the same job, since the kernel validates the
 * source buffer and fails with EFAULT.
 *
 * The pipe is a descriptor the host program does not know about: it is
 * moved above the low range (F_DUPFD_CLOEXEC), checked to still be our
 * pipe (same inode) before every use, so a program that closed it and got
 * the number back for a file of its own never sees our bytes, and it is
 * made anew in a forked child, which must not share it with the parent.
 */
#include "saferead.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define FD_FLOOR 512 /* our descriptors live at or above this number */

static pid_t g_pid;
static int g_use_pipe;
static int g_pipe[2] = {-1, -1};
static ino_t g_pipe_ino;
static dev_t g_pipe_dev;
static pid_t g_pipe_pid;

/* Guards the pipe, which the sampler and the resolver share. Only taken in
 * the fallback mode; never held while waiting for anything but the pipe. */
static pthread_mutex_t g_pipe_mu = PTHREAD_MUTEX_INITIALIZER;

/* Is fd still the pipe we made? */
static bool is_our_pipe(int fd)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_ino == g_pipe_ino &&
           st.st_dev == g_pipe_dev;
}

static int move_high(int fd)
{
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, FD_FLOOR);
    if (hi < 0)
        return fd; /* no room up there: keep the low number */
    close(fd);
    return hi;
}

/* Forget the pipe; close its ends only where they are still ours. */
static void pipe_drop(void)
{
    for (int i = 0; i < 2; i++) {
        if (is_our_pipe(g_pipe[i]))
            close(g_pipe[i]);
        g_pipe[i] = -1;
    }
}

static bool pipe_open(void)
{
    int p[2];
    struct stat st;
    if (g_pipe[0] >= 0 && g_pipe_pid == getpid() && is_our_pipe(g_pipe[0]) && is_our_pipe(g_pipe[1]))
        return true;
    pipe_drop();
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return false;
    g_pipe[0] = move_high(p[0]);
    g_pipe[1] = move_high(p[1]);
    if (fstat(g_pipe[0], &st) != 0) {
        close(g_pipe[0]);
        close(g_pipe[1]);
        g_pipe[0] = g_pipe[1] = -1;
        return false;
    }
    g_pipe_ino = st.st_ino;
    g_pipe_dev = st.st_dev;
    g_pipe_pid = getpid();
    return true;
}

static bool pipe_read(void *dst, uintptr_t addr, size_t n)
{
    bool ok = false;
    if (n > 32768) /* well under the pipe's 64 KiB capacity: never blocks */
        return false;
    int saved = errno;
    pthread_mutex_lock(&g_pipe_mu);
    /* Revalidated on every use: the program may have closed our pipe and
     * reopened the number for its own file (daemons closefrom(3)). */
    if (!pipe_open()) {
        pthread_mutex_unlock(&g_pipe_mu);
        errno = saved;
        return false;
    }
    ssize_t w = write(g_pipe[1], (const void *)addr, n);
    /* A fault midway writes a prefix: read it back all the same, so the
     * pipe is empty for the next caller. */
    if (w > 0)
        ok = read(g_pipe[0], dst, (size_t)w) == w && (size_t)w == n;
    pthread_mutex_unlock(&g_pipe_mu);
    errno = saved;
    return ok;
}

bool cp__saferead_piped(void) { return g_use_pipe != 0; }

bool cp__saferead_init(void)
{
    uint64_t probe = 0x5eed, out = 0;
    /* a forked child may inherit the lock held */
    pthread_mutex_init(&g_pipe_mu, NULL);
    g_pid = getpid();
    g_use_pipe = 0;
    /* CONTPROF__PIPE_READS=1 forces the fallback (for its tests). */
    const char *force = getenv("CONTPROF__PIPE_READS");
    if (!(force && *force == '1') && cp__saferead(&out, (uintptr_t)&probe, sizeof probe) && out == probe)
        return true;
    if (!pipe_open()) /* in a forked child: a pipe of its own */
        return false;
    g_use_pipe = 1;
    return cp__saferead(&out, (uintptr_t)&probe, sizeof probe) && out == probe;
}

long cp__saferead_vec(const struct iovec *loc, const struct iovec *rem, int cnt)
{
    if (g_use_pipe) {
        long total = 0;
        for (int i = 0; i < cnt; i++) {
            if (!pipe_read(loc[i].iov_base, (uintptr_t)rem[i].iov_base, rem[i].iov_len))
                break;
            total += (long)rem[i].iov_len;
        }
        return total ? total : -1;
    }
    int saved = errno;
    ssize_t got = process_vm_readv(g_pid, loc, (unsigned long)cnt, rem, (unsigned long)cnt, 0);
    errno = saved;
    return (long)got;
}

bool cp__saferead(void *dst, uintptr_t addr, size_t n)
{
    return cp__saferead2(dst, addr, n, NULL, 0, 0) == 1;
}

int cp__saferead2(void *d1, uintptr_t a1, size_t n1, void *d2, uintptr_t a2, size_t n2)
{
    struct iovec loc[2] = {{d1, n1}, {d2, n2}};
    struct iovec rem[2] = {{(void *)a1, n1}, {(void *)a2, n2}};
    int cnt = a2 ? 2 : 1;
    if (!a1)
        return 0;
    if (g_use_pipe) {
        if (!pipe_read(d1, a1, n1))
            return 0;
        return (cnt == 2 && pipe_read(d2, a2, n2)) ? 2 : 1;
    }
    int saved = errno; /* never disturb the errno of anything we share with */
    ssize_t got = process_vm_readv(g_pid, loc, (unsigned long)cnt, rem, (unsigned long)cnt, 0);
    errno = saved;
    if (got < (ssize_t)n1)
        return 0;
    return got >= (ssize_t)(n1 + n2) && cnt == 2 ? 2 : 1;
}
