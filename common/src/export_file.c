/*
 * export_file.c — the file exporter: the embedded default destination.
 *
 * Each profile becomes <dir>/<service>.<pid>.<seq>.pprof.gz (seq counts
 * the process's profiles from 1; see base_name for a reused pid) plus a
 * <same>.json sidecar (the event.json document: start, end, tags, runtime
 * info with metrics). Both are written to a temp file in the same
 * directory and renamed, so a reader never sees half a file; the sidecar
 * is renamed last, so a watcher that sees a .json finds its profile.
 */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "metrics.h"

static pthread_mutex_t g_path_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_last_path[PATH_MAX + 64]; /* g_path_lock */

void cp__export_set_last_path(const char *path)
{
    pthread_mutex_lock(&g_path_lock);
    snprintf(g_last_path, sizeof(g_last_path), "%s", path);
    pthread_mutex_unlock(&g_path_lock);
}

char *cp_last_profile_path(void)
{
    pthread_mutex_lock(&g_path_lock);
    char *p = cp__strdup(g_last_path);
    pthread_mutex_unlock(&g_path_lock);
    return p;
}

void cp__export_after_fork(void)
{
    g_path_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    g_last_path[0] = 0;
}

/* mkdir -p; CP_OK when dir exists afterwards. */
static int make_dirs(const char *dir)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
        return CP_ETOOBIG;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return CP_EIO;
        *s = '/';
    }
    return mkdir(p, 0755) == 0 || errno == EEXIST ? CP_OK : CP_EIO;
}

static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CP_EIO;
        p += w;
        n -= (size_t)w;
    }
    return CP_OK;
}

/* Write data to path through "<path>.tmp" + rename. */
static int write_atomic(const char *path, const void *data, size_t n)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return CP_EIO;
    int err = write_all(fd, data, n);
    if (close(fd) != 0 && err == CP_OK)
        err = CP_EIO;
    if (err == CP_OK && rename(tmp, path) != 0)
        err = CP_EIO;
    if (err != CP_OK)
        unlink(tmp);
    return err;
}

static int write_pair(const cp__dest *d, const cp__job *j, const char *base)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s.pprof.gz", d->output_dir, base);
    int err = write_atomic(path, j->pprof.data, j->pprof.len);
    const char *slash = strrchr(path, '/');
    char *sidecar = err == CP_OK ? cp__event_json(j, slash ? slash + 1 : path) : NULL;
    if (err == CP_OK && !sidecar)
        err = CP_ENOMEM;
    if (err == CP_OK) {
        char json[PATH_MAX + 32];
        snprintf(json, sizeof(json), "%s/%s.json", d->output_dir, base);
        err = write_atomic(json, sidecar, strlen(sidecar));
    }
    cp__free(sidecar);
    if (err == CP_OK)
        cp__export_set_last_path(path);
    return err;
}

/* "<service>.<pid>.<seq>"; when a file of that name exists already (a
 * pid reused by a restarted process, containers that all run as pid 1
 * sharing a volume), the runtime-id's first 8 characters are added so no
 * earlier profile is ever overwritten. */
static void base_name(const cp__dest *d, const cp__job *j, char *base, size_t n)
{
    char probe[PATH_MAX + 450];
    snprintf(base, n, "%s.%d.%llu", j->service, j->pid, (unsigned long long)j->seq);
    snprintf(probe, sizeof(probe), "%s/%s.pprof.gz", d->output_dir, base);
    if (access(probe, F_OK) == 0)
        snprintf(base, n, "%s.%d.%llu.%.8s", j->service, j->pid, (unsigned long long)j->seq, cp_runtime_id());
}

int cp__export_file(const cp__dest *d, const cp__job *j)
{
    char base[400];
    base_name(d, j, base, sizeof(base));
    int err = make_dirs(d->output_dir);
    if (err == CP_OK)
        err = write_pair(d, j, base);
    if (err != CP_OK) {
        int e = errno;
        cp__metrics_set_error("cannot write profile to %s: %s (%s)", d->output_dir, cp_strerror(err), strerror(e));
        cp_log(CP_LOG_ERROR, "cannot write profile to %s: %s (%s)", d->output_dir, cp_strerror(err), strerror(e));
    }
    return err;
}
