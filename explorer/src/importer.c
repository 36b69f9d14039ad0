/*
 * importer.c — directory import (importer.h). The pass is idempotent:
 * the store deduplicates by content and remembers (path, size, mtime), so
 * watching a directory that keeps growing costs one stat per file.
 */
#include "importer.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ingest.h"

#define MAX_PPROF_FILE (64u * 1024 * 1024)
#define MAX_EVENT_FILE (8u * 1024 * 1024)

static int read_file(const char *path, size_t cap, cp_buf *out)
{
    char chunk[65536];
    size_t n;
    FILE *f = fopen(path, "rb");
    if (!f) return CP_EIO;
    cp_buf_init(out, cap);
    int rc = CP_OK;
    while (rc == CP_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0) rc = cp_buf_append(out, chunk, n);
    if (ferror(f)) rc = CP_EIO;
    fclose(f);
    if (rc) cp_buf_free(out);
    return rc;
}

/* "<base>.pprof.gz" or "<base>.pprof" → length of base, 0 otherwise. */
static size_t profile_base(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.') return 0;
    if (n > 9 && strcmp(name + n - 9, ".pprof.gz") == 0) return n - 9;
    if (n > 6 && strcmp(name + n - 6, ".pprof") == 0) return n - 6;
    return 0;
}

static void count(ex_import_stats *s, int status, bool dup)
{
    if (status == 200 && dup) s->duplicates++;
    else if (status == 200) s->imported++;
    else s->rejected++;
}

static int import_one(ex_store *st, const char *path, const char *sidecar, size_t max_inflated,
                      ex_import_stats *stats)
{
    cp_buf pprof, ev = {0};
    char err[300], source[PATH_MAX + 16];
    if (read_file(path, MAX_PPROF_FILE, &pprof)) return -1;
    bool has_ev = sidecar && read_file(sidecar, MAX_EVENT_FILE, &ev) == CP_OK;
    snprintf(source, sizeof source, "import:%s", path);
    ex_ingest_req r = {.event = has_ev ? (const char *)ev.data : NULL, .event_len = has_ev ? ev.len : 0,
                       .pprof = pprof.data, .pprof_len = pprof.len, .source = source,
                       .max_inflated = max_inflated};
    int64_t id;
    bool dup = false;
    int status = ex_ingest(st, &r, &id, &dup, err, sizeof err);
    if (status != 200) cp_log(CP_LOG_WARN, "explorer: not importing %s: %s", path, err);
    count(stats, status, dup);
    cp_buf_free(&pprof);
    if (has_ev) cp_buf_free(&ev);
    return status;
}

static void consider(ex_store *st, const char *dir, const char *name, size_t max_inflated, bool wait,
                     ex_import_stats *stats)
{
    char path[PATH_MAX], sidecar[PATH_MAX];
    struct stat sb, sc;
    size_t base = profile_base(name);
    if (!base) return;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(sidecar, sizeof sidecar, "%s/%.*s.json", dir, (int)base, name);
    if (stat(path, &sb) || !S_ISREG(sb.st_mode)) return;
    if (ex_store_seen(st, path, (int64_t)sb.st_size, (int64_t)sb.st_mtime)) { stats->skipped++; return; }
    bool has_sidecar = stat(sidecar, &sc) == 0 && S_ISREG(sc.st_mode);
    if (!has_sidecar && wait) return; /* the exporter renames the sidecar last */
    int status = import_one(st, path, has_sidecar ? sidecar : NULL, max_inflated, stats);
    /* 500 = our storage failed: retry next pass. Anything else is final. */
    if (status > 0 && status != 500) ex_store_mark_seen(st, path, (int64_t)sb.st_size, (int64_t)sb.st_mtime);
}

int ex_import_dir(ex_store *st, const char *dir, size_t max_inflated, bool wait_for_sidecar,
                  ex_import_stats *stats)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) consider(st, dir, e->d_name, max_inflated, wait_for_sidecar, stats);
    closedir(d);
    return 0;
}

/* ---- watcher --------------------------------------------------------- */

struct ex_importer {
    ex_store *st;
    char **dirs;
    size_t ndirs, max_inflated;
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop; /* mu */
};

static void *watch_main(void *arg)
{
    ex_importer *im = arg;
    pthread_mutex_lock(&im->mu);
    while (!im->stop) {
        pthread_mutex_unlock(&im->mu);
        for (size_t i = 0; i < im->ndirs; i++) {
            ex_import_stats s = {0};
            ex_import_dir(im->st, im->dirs[i], im->max_inflated, true, &s);
            if (s.imported) cp_log(CP_LOG_INFO, "explorer: imported %zu profiles from %s", s.imported, im->dirs[i]);
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += im->interval_ms / 1000;
        until.tv_nsec += (long)(im->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
        pthread_mutex_lock(&im->mu);
        while (!im->stop && pthread_cond_timedwait(&im->cv, &im->mu, &until) != ETIMEDOUT) {}
    }
    pthread_mutex_unlock(&im->mu);
    return NULL;
}

static void importer_free(ex_importer *im)
{
    for (size_t i = 0; i < im->ndirs; i++) free(im->dirs[i]);
    free(im->dirs);
    pthread_mutex_destroy(&im->mu);
    pthread_cond_destroy(&im->cv);
    free(im);
}

ex_importer *ex_importer_start(ex_store *st, const char *const *dirs, size_t ndirs, size_t max_inflated,
                               int interval_ms)
{
    ex_importer *im = calloc(1, sizeof *im);
    if (!im) return NULL;
    im->st = st;
    im->max_inflated = max_inflated;
    im->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    pthread_mutex_init(&im->mu, NULL);
    pthread_cond_init(&im->cv, NULL);
    im->dirs = calloc(ndirs ? ndirs : 1, sizeof *im->dirs);
    for (size_t i = 0; im->dirs && i < ndirs; i++)
        if ((im->dirs[im->ndirs] = strdup(dirs[i]))) im->ndirs++;
    if (!im->dirs || pthread_create(&im->thread, NULL, watch_main, im)) {
        importer_free(im);
        return NULL;
    }
    return im;
}

void ex_importer_stop(ex_importer *im)
{
    if (!im) return;
    pthread_mutex_lock(&im->mu);
    im->stop = true;
    pthread_cond_signal(&im->cv);
    pthread_mutex_unlock(&im->mu);
    pthread_join(im->thread, NULL);
    importer_free(im);
}
