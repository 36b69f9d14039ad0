/*
 * collector_test_util.h — helpers for the settings/collector/export tests:
 * capturing stderr (to check the one-line messages), scratch directories
 * and reading files. Header-only; include after the cmocka headers.
 */
#ifndef COLLECTOR_TEST_UTIL_H
#define COLLECTOR_TEST_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ThreadSanitizer cannot follow a child that starts threads after a
 * multithreaded fork ("dup thread with used id"): the fork cases are
 * covered by the plain and ASan builds and skipped under TSan. */
#if defined(__SANITIZE_THREAD__)
#define CT_SKIP_THREADED_FORK() skip()
#define CT_TSAN 1
#else
#define CT_SKIP_THREADED_FORK() ((void)0)
#define CT_TSAN 0
#endif
/* gcc 12's AddressSanitizer allocator takes no lock around fork (glibc's
 * malloc does): a child forked while another thread is inside malloc can
 * block forever on the allocator's mutex, a deadlock of the test build,
 * not of the core. Cases that fork while a parent thread allocates run in
 * the plain build only. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CT_SKIP_FORK_WHILE_ALLOCATING() skip()
#else
#define CT_SKIP_FORK_WHILE_ALLOCATING() ((void)0)
#endif
/* Sanitizer builds run several times slower: timing bounds widen. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CT_SANITIZED 1
#else
#define CT_SANITIZED 0
#endif

static int ct_saved_fd = -1;
static FILE *ct_tmp;

/* Send stderr to a temp file until ct_capture_end. */
static inline void ct_capture_begin(void)
{
    fflush(stderr);
    ct_tmp = tmpfile();
    ct_saved_fd = dup(2);
    dup2(fileno(ct_tmp), 2);
}

/* Restore stderr; what was written meanwhile (caller frees). */
static inline char *ct_capture_end(void)
{
    fflush(stderr);
    dup2(ct_saved_fd, 2);
    close(ct_saved_fd);
    long n = ftell(ct_tmp);
    char *s = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    rewind(ct_tmp);
    size_t got = n > 0 ? fread(s, 1, (size_t)n, ct_tmp) : 0;
    s[got] = 0;
    fclose(ct_tmp);
    return s;
}

static inline int ct_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A fresh directory under the test binary dir (caller frees the path). */
static inline char *ct_scratch(const char *tag)
{
    char *p = malloc(512);
    snprintf(p, 512, "%s/scratch-%s-%d-XXXXXX", CP_TEST_BINARY_DIR, tag, (int)getpid());
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

/* Whole file (caller frees); *len gets its size. NULL if unreadable. */
static inline char *ct_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    fclose(f);
    s[got] = 0;
    if (len)
        *len = got;
    return s;
}

/* Number of directory entries whose name ends with suffix. */
static inline int ct_count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        n += l >= s && strcmp(e->d_name + l - s, suffix) == 0;
    }
    if (d)
        closedir(d);
    return n;
}

/* waitpid bounded by timeout_ms: the child's exit status (128 + signal
 * if killed by one), or -1 after killing a child that hung. */
static inline int ct_wait_child(pid_t pid, int timeout_ms)
{
    int st = 0;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* rm -r of a flat scratch directory. */
static inline void ct_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    char p[1024];
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.'))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

#endif /* COLLECTOR_TEST_UTIL_H */
