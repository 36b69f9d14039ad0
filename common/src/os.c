/*
 * os.c — the OS helper layer (see contprof_os.h). Linux only.
 */
#include "contprof_os.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

pid_t cp_os_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* What pthread_getcpuclockid computes for a thread: the kernel's
 * CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD clock of tid. */
int64_t cp_os_thread_cpu_ns(pid_t tid)
{
    /* Past 2^28 the encoding overflows into another clock (a tid of
     * 0x3fffffff would read CLOCK_MONOTONIC_COARSE); pid_max is 2^22. */
    if (tid <= 0 || tid >= (1 << 28))
        return -1;
    return cp_os_kernel_clock_ns((clockid_t)(((unsigned)~tid << 3) | 6));
}

/* The kernel's own clock_gettime in the vDSO, found through the auxiliary
 * vector (no interposer sits between us and it): MONOTONIC without a
 * system call (~25 ns here against ~270 ns), any other clock through the
 * system call it makes itself. It returns 0 or a negative errno and never
 * touches errno. */
typedef long (*vdso_gettime)(clockid_t, struct timespec *);
#if defined(__x86_64__)
#define VDSO_GETTIME "__vdso_clock_gettime"
#elif defined(__aarch64__)
#define VDSO_GETTIME "__kernel_clock_gettime"
#endif

/* Through the image's dynamic section (inside its loaded segment, so
 * mapped) and its SysV hash table (the symbol count), every address
 * checked to lie within the segment. */
static vdso_gettime vdso_find(void)
{
#ifdef VDSO_GETTIME
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)getauxval(AT_SYSINFO_EHDR);
    if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_phentsize != sizeof(ElfW(Phdr)))
        return NULL;
    uintptr_t base = (uintptr_t)eh;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(base + eh->e_phoff), *load = NULL, *dyn = NULL;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && !load)
            load = &ph[i];
        else if (ph[i].p_type == PT_DYNAMIC)
            dyn = &ph[i];
    }
    if (!load || !dyn || load->p_offset != 0)
        return NULL;
    uintptr_t bias = base - load->p_vaddr, end = base + load->p_memsz;
#define IN(p, n) ((uintptr_t)(p) >= base && (uintptr_t)(p) <= end && (size_t)(n) <= end - (uintptr_t)(p))
    const ElfW(Sym) *sym = NULL;
    const char *str = NULL;
    const ElfW(Word) *hash = NULL;
    size_t strsz = 0;
    for (const ElfW(Dyn) *d = (const ElfW(Dyn) *)(bias + dyn->p_vaddr); IN(d, sizeof *d) && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_SYMTAB)
            sym = (const ElfW(Sym) *)(bias + d->d_un.d_ptr);
        else if (d->d_tag == DT_STRTAB)
            str = (const char *)(bias + d->d_un.d_ptr);
        else if (d->d_tag == DT_STRSZ)
            strsz = d->d_un.d_val;
        else if (d->d_tag == DT_HASH)
            hash = (const ElfW(Word) *)(bias + d->d_un.d_ptr);
    }
    if (!sym || !str || !hash || !IN(hash, 2 * sizeof *hash) || !IN(str, strsz))
        return NULL;
    size_t nsym = hash[1]; /* nchain: one per symbol */
    if (!IN(sym, nsym * sizeof *sym))
        return NULL;
    for (size_t k = 0; k < nsym; k++) {
        if (ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC || sym[k].st_shndx == SHN_UNDEF ||
            sym[k].st_name >= strsz || strnlen(str + sym[k].st_name, strsz - sym[k].st_name) == strsz - sym[k].st_name)
            continue;
        uintptr_t fn = bias + sym[k].st_value;
        if (strcmp(str + sym[k].st_name, VDSO_GETTIME) == 0 && IN(fn, 1))
            return (vdso_gettime)fn;
    }
#undef IN
#endif
    return NULL;
}

/* Looked up at the first call (from a signal handler too: no lock, no
 * allocation; racing first calls find the same answer). */
static _Atomic(vdso_gettime) g_vdso;
static atomic_bool g_vdso_looked;

static vdso_gettime vdso_get(void)
{
    if (!atomic_load_explicit(&g_vdso_looked, memory_order_acquire)) {
        atomic_store_explicit(&g_vdso, vdso_find(), memory_order_relaxed);
        atomic_store_explicit(&g_vdso_looked, true, memory_order_release);
    }
    return atomic_load_explicit(&g_vdso, memory_order_relaxed);
}

bool cp_os_kernel_clock_vdso(void)
{
    return vdso_get() != NULL;
}

int64_t cp_os_kernel_clock_ns(clockid_t cid)
{
    struct timespec ts;
    vdso_gettime fn = vdso_get();
    long rc;
    if (fn) {
        rc = fn(cid, &ts);
    } else {
        int saved = errno; /* signal-safe callers expect errno kept */
        rc = syscall(SYS_clock_gettime, cid, &ts);
        errno = saved;
    }
    return rc == 0 ? (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec : -1;
}

int cp_os_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits it */
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0 && name)
        pthread_setname_np(*t, name);
    return rc;
}

int cp_os_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc == 0)
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

static struct timespec abs_ts(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    return (struct timespec){(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
}

int cp_os_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ns)
{
    struct timespec ts = abs_ts(deadline_ns);
#if defined(__SANITIZE_THREAD__)
    return pthread_cond_timedwait(cv, mu, &ts); /* what TSan intercepts; cv is MONOTONIC */
#else
    return pthread_cond_clockwait(cv, mu, CLOCK_MONOTONIC, &ts);
#endif
}

bool cp_os_join_until(pthread_t t, int64_t deadline_ns)
{
#if defined(__SANITIZE_THREAD__)
    /* GCC 12's TSan does not intercept pthread_clockjoin_np, so it would
     * not see the join (false "thread leak", races with atexit): use the
     * intercepted REALTIME variant in the TSan build only. */
    struct timespec now;
    int64_t left = deadline_ns - cp_os_kernel_clock_ns(CLOCK_MONOTONIC);
    clock_gettime(CLOCK_REALTIME, &now);
    struct timespec ts = abs_ts((int64_t)now.tv_sec * 1000000000 + now.tv_nsec + (left > 0 ? left : 0));
    return pthread_timedjoin_np(t, NULL, &ts) == 0;
#else
    struct timespec ts = abs_ts(deadline_ns);
    return pthread_clockjoin_np(t, NULL, CLOCK_MONOTONIC, &ts) == 0;
#endif
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static pid_t parse_tid(const char *s)
{
    pid_t v = 0;
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000)
            return 0;
        v = v * 10 + (*s - '0');
    }
    return v;
}

long cp_os_list_threads(pid_t *tids, size_t max)
{
    int fd = cp_os_open_high("/proc/self/task", O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    _Alignas(8) char buf[4096];
    long n = 0, got;
    while ((got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < got;) {
            const struct linux_dirent64 *d = (const void *)(buf + off);
            pid_t tid = parse_tid(d->d_name);
            if (tid > 0 && (size_t)n < max)
                tids[n] = tid;
            n += tid > 0;
            off += d->d_reclen;
        }
    }
    close(fd);
    return got < 0 ? -1 : n;
}

long cp_os_thread_count(void)
{
    struct stat st;
    if (stat("/proc/self/task", &st) != 0 || st.st_nlink < 3)
        return -1;
    return (long)st.st_nlink - 2; /* ".", ".." and one link per thread */
}

bool cp_thread_watch_due(cp_thread_watch *w, int64_t now, uint64_t sig, bool force, int64_t every_ns)
{
    long count = w->misses < 3 ? cp_os_thread_count() : -1;
    if (count >= 0 && count == w->count && sig == w->sig && !force && now < w->next_list)
        return false;
    w->next_list = now + every_ns;
    w->count = count;
    w->sig = sig;
    return true;
}

void cp_thread_watch_listed(cp_thread_watch *w, long listed)
{
    if (w->count < 0 || listed < 0)
        return;
    /* A thread may start or end between the two reads: only a count that
     * keeps disagreeing is wrong. */
    if (listed == w->count || listed == cp_os_thread_count())
        w->misses = 0;
    else
        w->misses++;
}

int cp_os_fd_move_high(int fd, int floor)
{
    int high = fcntl(fd, F_DUPFD_CLOEXEC, floor);
    if (high < 0)
        return -1;
    close(fd);
    return high;
}

int cp_os_open_high(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    int high = fd < 0 ? -1 : cp_os_fd_move_high(fd, 512);
    return high >= 0 ? high : fd;
}

void cp_os_call_fds_high(void (*fn)(void *), void *arg)
{
    enum { FLOOR = 512 };
    int held[FLOOR];
    size_t n = 0;
    struct rlimit rl;
    struct stat st;
    int null = -1;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > FLOOR + 64 &&
        (null = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0 && fstat(null, &st) == 0) {
        if (null < FLOOR)
            held[n++] = null;
        for (;;) {
            int fd = fcntl(null, F_DUPFD_CLOEXEC, 3);
            if (fd < 0)
                break;
            if (fd >= FLOOR || n == FLOOR) {
                close(fd);
                break;
            }
            held[n++] = fd;
        }
    }
    fn(arg);
    /* Another thread may have dup2()ed over a placeholder meanwhile. */
    for (size_t i = 0; i < n; i++)
        if (cp_os_fd_is(held[i], (uint64_t)st.st_dev, (uint64_t)st.st_ino))
            close(held[i]);
    if (null >= FLOOR)
        close(null);
}

bool cp_os_fd_is(int fd, uint64_t dev, uint64_t ino)
{
    struct stat st;
    return fstat(fd, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}
