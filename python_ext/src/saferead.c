/*
 * saferead.c — fault-safe memory reads (see saferead.h).
 *
 * process_vm_readv on our own pid costs one syscall and never faults. Some
 * sandboxes forbid it (seccomp); then a write() of the range into a
 * non-blocking pipe does the same job, since the kernel validates the
 * source buffer and fails with EFAULT.
 */
#include "saferead.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

static pid_t g_pid;
static int g_use_pipe;
static int g_pipe[2] = {-1, -1};

/* Guards the pipe, which the sampler and the resolver share. Only taken in
 * the fallback mode; never held while waiting for anything but the pipe. */
static pthread_mutex_t g_pipe_mu = PTHREAD_MUTEX_INITIALIZER;

static bool pipe_read(void *dst, uintptr_t addr, size_t n)
{
    bool ok = false;
    if (n > 32768) /* well under the pipe's 64 KiB capacity: never blocks */
        return false;
    pthread_mutex_lock(&g_pipe_mu);
    ssize_t w = write(g_pipe[1], (const void *)addr, n);
    /* A fault midway writes a prefix: read it back all the same, so the
     * pipe is empty for the next caller. */
    if (w > 0)
        ok = read(g_pipe[0], dst, (size_t)w) == w && (size_t)w == n;
    pthread_mutex_unlock(&g_pipe_mu);
    return ok;
}

static bool pipe_open(void)
{
    if (g_pipe[0] >= 0)
        return true;
    if (pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        return false;
    return true;
}

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
    if (!pipe_open())
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
