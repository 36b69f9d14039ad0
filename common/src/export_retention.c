/*
 * export_retention.c — keeps the output directory bounded.
 *
 * The file exporter writes two files per profile (<base>.pprof.gz and
 * <base>.json, base = <service>.<pid>.<seq>[.<runtime-id prefix>]); at one
 * profile a minute that is 2,880 files a day per process. After every
 * write this pass lists the directory once and deletes, pair by pair:
 *   1. this service's profiles older than output_max_age_h;
 *   2. while all profiles in the directory exceed output_max_mb, the
 *      oldest — this service's first, then other services' (their own
 *      processes would do the same) — never the profile just written;
 *   3. this service's temp files older than an hour (a crash mid-write).
 * Files that do not look like contprof's are never counted or touched.
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "export.h"
#include "profile_internal.h" /* cp__grow_array */

enum { STALE_TEMP_S = 3600, NAME_MAX_LEN = 480 };

typedef struct entry {
    char base[NAME_MAX_LEN];
    int64_t bytes;  /* both files of the pair */
    int64_t mtime;  /* newest of the pair     */
    bool own;       /* this service's         */
} entry;

typedef struct listing {
    entry *e;
    size_t n, cap;
} listing;

/* The listing is reused from one pass to the next and the directory is
 * read with getdents64 into a stack buffer, and sorted in place: once the
 * listing has grown, a pass allocates nothing. That matters in a process
 * that forks: a child forked while this thread sat inside an allocator
 * that has no fork handling (sanitizer runtimes) would hang. One pass at a
 * time (trylock: a second exporter skips its pass). */
static pthread_mutex_t g_list_mu = PTHREAD_MUTEX_INITIALIZER;
static listing g_list;

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

/* Length of the service part of a base "<svc>.<pid>.<seq>[.<8 hex>]", or
 * 0 if base is not shaped like that. */
static size_t service_len(const char *base, size_t n)
{
    const char *end = base + n, *dot = memrchr(base, '.', n);
    if (dot && end - dot == 9 && !all_digits(dot + 1, 8)) { /* runtime-id prefix */
        for (const char *c = dot + 1; c < end; c++)
            if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
                return 0;
        end = dot;
        dot = memrchr(base, '.', (size_t)(end - base));
    }
    for (int field = 0; field < 2; field++) { /* seq, then pid */
        if (!dot || !all_digits(dot + 1, (size_t)(end - dot - 1)))
            return 0;
        end = dot;
        dot = memrchr(base, '.', (size_t)(end - base));
    }
    return (size_t)(end - base);
}

/* The base of a profile file name, or false if it is not one. */
static bool profile_base(const char *name, char *base, size_t cap)
{
    size_t n = strlen(name), sfx;
    if (n > 9 && strcmp(name + n - 9, ".pprof.gz") == 0)
        sfx = 9;
    else if (n > 5 && strcmp(name + n - 5, ".json") == 0)
        sfx = 5;
    else
        return false;
    n -= sfx;
    if (n >= cap || name[0] == '.' || service_len(name, n) == 0)
        return false;
    memcpy(base, name, n);
    base[n] = 0;
    return true;
}

static int add_file(listing *l, const char *base, const char *service, const struct stat *st)
{
    for (size_t i = l->n; i-- > 0 && i + 2 >= l->n;) /* the pair's other file is adjacent */
        if (strcmp(l->e[i].base, base) == 0) {
            l->e[i].bytes += st->st_size;
            if (st->st_mtime > l->e[i].mtime)
                l->e[i].mtime = st->st_mtime;
            return CP_OK;
        }
    if (cp__grow_array((void **)&l->e, &l->cap, l->n + 1, sizeof *l->e) != CP_OK)
        return CP_ENOMEM;
    entry *e = &l->e[l->n++];
    snprintf(e->base, sizeof e->base, "%s", base);
    e->bytes = st->st_size;
    e->mtime = st->st_mtime;
    size_t sl = service_len(base, strlen(base));
    e->own = sl == strlen(service) && strncmp(base, service, sl) == 0;
    return CP_OK;
}

/* ".<service>." temp files of this service, untouched for an hour. */
static void maybe_remove_temp(int dfd, const char *name, const char *service, time_t now)
{
    size_t sl = strlen(service);
    struct stat st;
    if (name[0] != '.' || strncmp(name + 1, service, sl) != 0 || name[1 + sl] != '.' ||
        !strstr(name, ".tmp"))
        return;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        now - st.st_mtime > STALE_TEMP_S)
        unlinkat(dfd, name, 0);
}

struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static int list_dir(int dfd, const char *service, listing *l)
{
    time_t now = time(NULL);
    char base[NAME_MAX_LEN];
    _Alignas(8) char buf[8192];
    long got;
    while ((got = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < got;) {
            const struct dirent64_raw *de = (const void *)(buf + off);
            off += de->d_reclen;
            struct stat st;
            if (!profile_base(de->d_name, base, sizeof base)) {
                maybe_remove_temp(dfd, de->d_name, service, now);
                continue;
            }
            if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
                continue;
            if (add_file(l, base, service, &st) != CP_OK)
                return CP_ENOMEM;
        }
    }
    return got < 0 ? CP_EIO : CP_OK;
}

/* In-place heap sort (qsort may allocate). */
static void sift(entry *e, size_t i, size_t n, int (*cmp)(const void *, const void *))
{
    for (size_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && cmp(&e[c], &e[c + 1]) < 0)
            c++;
        if (cmp(&e[i], &e[c]) >= 0)
            return;
        entry t = e[i];
        e[i] = e[c];
        e[c] = t;
    }
}

static void sort_entries(entry *e, size_t n, int (*cmp)(const void *, const void *))
{
    for (size_t i = n / 2; i-- > 0;)
        sift(e, i, n, cmp);
    for (size_t k = n; k-- > 1;) {
        entry t = e[0];
        e[0] = e[k];
        e[k] = t;
        sift(e, 0, k, cmp);
    }
}

static int by_base(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->base, ((const entry *)b)->base);
}

/* Merge the two files of a pair that readdir did not return together. */
static void merge_pairs(listing *l)
{
    sort_entries(l->e, l->n, by_base);
    size_t w = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (w > 0 && strcmp(l->e[w - 1].base, l->e[i].base) == 0) {
            l->e[w - 1].bytes += l->e[i].bytes;
            if (l->e[i].mtime > l->e[w - 1].mtime)
                l->e[w - 1].mtime = l->e[i].mtime;
            continue;
        }
        l->e[w++] = l->e[i];
    }
    l->n = w;
}

/* Oldest first; equal times by name (seq order within a process). */
static int by_age(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->mtime != y->mtime)
        return x->mtime < y->mtime ? -1 : 1;
    return by_base(a, b);
}

static void remove_pair(int dfd, entry *e)
{
    char name[NAME_MAX_LEN + 16];
    snprintf(name, sizeof name, "%s.pprof.gz", e->base);
    unlinkat(dfd, name, 0);
    snprintf(name, sizeof name, "%s.json", e->base);
    unlinkat(dfd, name, 0);
    e->bytes = 0;
    e->base[0] = 0; /* gone */
}

static void enforce(int dfd, const cp__dest *d, listing *l, const char *keep)
{
    int64_t now = (int64_t)time(NULL), total = 0;
    for (size_t i = 0; i < l->n; i++) {
        entry *e = &l->e[i];
        bool kept = strcmp(e->base, keep) == 0;
        if (e->own && !kept && d->max_age_s > 0 && now - e->mtime > d->max_age_s)
            remove_pair(dfd, e);
        total += e->bytes;
    }
    for (int pass = 0; pass < 2 && d->max_bytes > 0; pass++) /* own first, then others */
        for (size_t i = 0; i < l->n && total > d->max_bytes; i++) {
            entry *e = &l->e[i];
            if (e->base[0] && e->own == (pass == 0) && strcmp(e->base, keep) != 0) {
                total -= e->bytes;
                remove_pair(dfd, e);
            }
        }
}

void cp__retention_apply(const cp__dest *d, const char *service, const char *keep)
{
    if ((d->max_bytes <= 0 && d->max_age_s <= 0) || pthread_mutex_trylock(&g_list_mu) != 0)
        return;
    int dfd = open(d->output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        g_list.n = 0;
        if (list_dir(dfd, service, &g_list) == CP_OK) {
            merge_pairs(&g_list);
            sort_entries(g_list.e, g_list.n, by_age);
            enforce(dfd, d, &g_list, keep);
        }
        close(dfd);
    }
    pthread_mutex_unlock(&g_list_mu);
}

void cp__retention_after_fork(void)
{
    g_list_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
}
