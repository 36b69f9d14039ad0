/*
 * export_file.c — the file exporter: the embedded default destination.
 *
 * Each profile becomes <dir>/<service>.<pid>.<seq>.pprof.gz (seq counts
 * the process's profiles from 1; see base_name for a reused pid) plus a
 * <same>.json sidecar (the event.json document: start, end, tags, runtime
 * info with metrics). Both are written to a unique temp file in the same
 * directory and renamed, so a reader never sees half a file; the sidecar
 * is renamed last, so a watcher that sees a .json finds its profile.
 * Then export_retention.c keeps the directory under its caps.
 */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "metrics.h"

static pthread_mutex_t g_path_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_last_path[PATH_MAX + 512]; /* g_path_lock */

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
    cp__retention_after_fork();
}

int cp__mkdirs(const char *dir)
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

/* Write data to dir/name through a unique temp file ".<name>.XXXXXX.tmp"
 * (mkostemps: O_EXCL, so two processes never share one) + rename. */
static int write_atomic(const char *dir, const char *name, const void *data, size_t n)
{
    char tmp[PATH_MAX + 512], path[PATH_MAX + 512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX.tmp", dir, name) >= (int)sizeof(tmp))
        return CP_ETOOBIG;
    int fd = mkostemps(tmp, 4, O_CLOEXEC);
    if (fd < 0)
        return CP_EIO;
    int err = fchmod(fd, 0644) == 0 ? write_all(fd, data, n) : CP_EIO;
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
    char name[512];
    snprintf(name, sizeof(name), "%s.pprof.gz", base);
    int err = write_atomic(d->output_dir, name, j->pprof.data, j->pprof.len);
    char *sidecar = err == CP_OK ? cp__event_json(j, name) : NULL;
    if (err == CP_OK && !sidecar)
        err = CP_ENOMEM;
    if (err == CP_OK) {
        char json[512];
        snprintf(json, sizeof(json), "%s.json", base);
        err = write_atomic(d->output_dir, json, sidecar, strlen(sidecar));
    }
    cp__free(sidecar);
    if (err == CP_OK) {
        char path[PATH_MAX + 512];
        snprintf(path, sizeof(path), "%s/%s", d->output_dir, name);
        cp__export_set_last_path(path);
    }
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
    int err = cp__mkdirs(d->output_dir);
    if (err == CP_OK)
        err = write_pair(d, j, base);
    if (err == CP_OK)
        cp__retention_apply(d, j->service, base);
    if (err != CP_OK) {
        int e = errno;
        cp__metrics_set_error("cannot write profile to %s: %s (%s)", d->output_dir, cp_strerror(err), strerror(e));
        cp_log(CP_LOG_ERROR, "cannot write profile to %s: %s (%s)", d->output_dir, cp_strerror(err), strerror(e));
    } else {
        cp_log(CP_LOG_DEBUG, "profile #%llu written to %s/%s.pprof.gz (%zu bytes)", (unsigned long long)j->seq,
               d->output_dir, base, j->pprof.len);
    }
    return err;
}
