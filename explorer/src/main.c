/*
 * main.c — contprof-explorer: command line, startup and shutdown.
 *
 *   contprof-explorer [--listen 127.0.0.1:8127] [--data DIR] [--import DIR...]...
 *                     [--watch] [--max-body BYTES] [--max-inflated BYTES] [--port-file FILE]
 *
 * Default port 8127: next to the Datadog agent's 8126 so it is easy to
 * remember, but not equal to it, so the explorer can run on a machine that
 * also runs an agent; front ends point at it with
 * agent_url=http://127.0.0.1:8127 (see explorer/README.md).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "budget.h"
#include "contprof.h"
#include "contprof_os.h"
#include "http.h"
#include "importer.h"
#include "ingest.h"
#include "store.h"

#define DEFAULT_LISTEN "127.0.0.1:8127"
#define DEFAULT_DATA "explorer-data"
#define MAX_IMPORTS 32
#define DEFAULT_RETAIN_DAYS 7
#define DEFAULT_RETAIN_BYTES (4ULL << 30)
#define RETAIN_EVERY_S 60

typedef struct opts {
    const char *listen, *data, *port_file;
    const char *imports[MAX_IMPORTS];
    size_t nimports, max_body, max_inflated, inflate_budget;
    size_t retain_days, retain_bytes; /* 0 = keep forever / no size limit */
    bool watch;
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: contprof-explorer [--listen HOST:PORT] [--data DIR] [--import DIR...]... [--watch]\n"
            "                         [--max-body BYTES] [--max-inflated BYTES] [--port-file FILE]\n"
            "  --listen HOST:PORT  address to serve on (default %s; port 0 = any free port)\n"
            "  --data DIR          where the index and profiles are kept (default ./%s)\n"
            "  --import DIR...     import profiles written by the file exporter (*.pprof.gz + .json);\n"
            "                      several directories may follow, and --import may repeat\n"
            "  --watch             keep importing new files from the --import directories\n"
            "  --max-body BYTES    largest accepted upload (default %u)\n"
            "  --max-inflated BYTES largest pprof after gunzip; bigger is refused as a zip bomb (default %u)\n"
            "  --inflate-budget BYTES memory shared by all uploads being decoded at once (default %u)\n"
            "  --retain-days N     delete profiles that ended more than N days ago (default %d; 0 = never)\n"
            "  --retain-bytes BYTES delete the oldest profiles past this much stored pprof (default %llu; 0 = no limit)\n"
            "  --port-file FILE    write the bound port to FILE once ready (for scripts and tests)\n"
            "Front ends upload with agent_url=http://HOST:PORT; open http://HOST:PORT/ in a browser.\n",
            DEFAULT_LISTEN, DEFAULT_DATA, EX_DEFAULT_MAX_BODY, EX_DEFAULT_MAX_INFLATED, EX_DEFAULT_INFLATE_BUDGET,
            DEFAULT_RETAIN_DAYS, (unsigned long long)DEFAULT_RETAIN_BYTES);
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return -1;
    *out = (size_t)v;
    return 0;
}

/* --import DIR [DIR...]: argv[i] is the first directory; the following
 * arguments up to the next option are directories too. Returns the index
 * of the last one taken. */
static int take_imports(int argc, char **argv, int i, opts *o)
{
    for (; i < argc; i++) {
        if (o->nimports < MAX_IMPORTS) o->imports[o->nimports++] = argv[i];
        if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) break;
    }
    return i;
}

/* Returns 0 to run, 1 to exit successfully (--help), -1 on a bad option. */
static int parse_args(int argc, char **argv, opts *o)
{
    *o = (opts){.listen = DEFAULT_LISTEN, .data = DEFAULT_DATA, .max_body = EX_DEFAULT_MAX_BODY,
                .retain_days = DEFAULT_RETAIN_DAYS, .retain_bytes = (size_t)DEFAULT_RETAIN_BYTES};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 1; }
        if (!strcmp(a, "--version")) { printf("contprof-explorer %s\n", CP_PROFILER_VERSION); return 1; }
        if (!strcmp(a, "--watch")) { o->watch = true; continue; }
        if (!v) { fprintf(stderr, "contprof-explorer: %s needs a value\n", a); return -1; }
        i++;
        if (!strcmp(a, "--listen")) o->listen = v;
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--port-file")) o->port_file = v;
        else if (!strcmp(a, "--import")) i = take_imports(argc, argv, i, o);
        else if (!strcmp(a, "--max-body") && parse_size(v, &o->max_body) == 0 && o->max_body) continue;
        else if (!strcmp(a, "--max-inflated") && parse_size(v, &o->max_inflated) == 0 && o->max_inflated) continue;
        else if (!strcmp(a, "--inflate-budget") && parse_size(v, &o->inflate_budget) == 0 && o->inflate_budget) continue;
        else if (!strcmp(a, "--retain-days") && parse_size(v, &o->retain_days) == 0 && o->retain_days < 100000) continue;
        else if (!strcmp(a, "--retain-bytes") && parse_size(v, &o->retain_bytes) == 0) continue;
        else {
            fprintf(stderr, "contprof-explorer: bad option %s %s\n", a, v);
            return -1;
        }
    }
    return 0;
}

static void import_all(ex_store *st, const opts *o)
{
    for (size_t i = 0; i < o->nimports; i++) {
        ex_import_stats s = {0};
        if (ex_import_dir(st, o->imports[i], o->max_inflated, o->watch, &s))
            fprintf(stderr, "contprof-explorer: cannot read --import directory %s: %s\n", o->imports[i], strerror(errno));
        else
            printf("imported %zu profiles from %s (%zu already known, %zu duplicates, %zu rejected)\n", s.imported,
                   o->imports[i], s.skipped, s.duplicates, s.rejected);
    }
}

/* Retention runs at start and every RETAIN_EVERY_S seconds on its own
 * thread until stop is set. */
typedef struct retainer {
    ex_store *st;
    const opts *o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    pthread_t th;
} retainer;

static void retain_once(retainer *r)
{
    int64_t n = ex_store_retain(r->st, (int64_t)r->o->retain_days * 86400, (int64_t)r->o->retain_bytes);
    if (n > 0)
        cp_log(CP_LOG_INFO, "explorer: retention deleted %lld profiles (older than %zu days or past %zu bytes)",
               (long long)n, r->o->retain_days, r->o->retain_bytes);
}

static void *retain_main(void *arg)
{
    retainer *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += RETAIN_EVERY_S;
        pthread_cond_timedwait(&r->cv, &r->mu, &dl);
        if (r->stop) break;
        pthread_mutex_unlock(&r->mu);
        retain_once(r);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static int retainer_start(retainer *r, ex_store *st, const opts *o)
{
    *r = (retainer){.st = st, .o = o};
    pthread_mutex_init(&r->mu, NULL);
    cp_os_cond_init_monotonic(&r->cv);
    retain_once(r);
    return pthread_create(&r->th, NULL, retain_main, r);
}

static void retainer_stop(retainer *r)
{
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->th, NULL);
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "%u\n", port);
    if (fclose(f) || rename(tmp, path)) return -1;
    return 0;
}

static int serve(ex_store *st, const opts *o)
{
    char err[300];
    sigset_t set;
    int sig;
    ex_http_opts ho = {.listen = o->listen, .max_body = o->max_body, .api = {.store = st, .max_inflated = o->max_inflated}};
    ex_budget_set_limit(o->inflate_budget);
    ex_http *h = ex_http_start(&ho, err, sizeof err);
    if (!h) { fprintf(stderr, "contprof-explorer: %s\n", err); return 1; }
    import_all(st, o);
    retainer ret;
    bool retaining = retainer_start(&ret, st, o) == 0;
    ex_importer *im = o->watch && o->nimports ? ex_importer_start(st, o->imports, o->nimports, o->max_inflated, 1000) : NULL;
    unsigned port = ex_http_port(h);
    char host[100];
    uint16_t ignored;
    if (ex_http_parse_listen(o->listen, host, sizeof host, &ignored)) snprintf(host, sizeof host, "?");
    bool v6 = strchr(host, ':') != NULL;
    printf("contprof-explorer %s: serving %lld profiles on http://%s%s%s:%u/ (data in %s)\n", CP_PROFILER_VERSION,
           (long long)ex_store_count(st), v6 ? "[" : "", host, v6 ? "]" : "", port, o->data);
    printf("  open that address in a browser; profilers upload with agent_url=http://%s%s%s:%u\n", v6 ? "[" : "",
           host, v6 ? "]" : "", port);
    fflush(stdout);
    if (o->port_file && write_port_file(o->port_file, port))
        fprintf(stderr, "contprof-explorer: cannot write --port-file %s\n", o->port_file);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    printf("contprof-explorer: stopping\n");
    ex_importer_stop(im);
    if (retaining) retainer_stop(&ret);
    ex_http_stop(h);
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    char err[300];
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        if (rc < 0) usage(stderr);
        return rc < 0 ? 2 : 0;
    }
    if (o.watch && !o.nimports) {
        fprintf(stderr, "contprof-explorer: --watch needs at least one --import DIR\n");
        return 2;
    }
    /* Block the stop signals in every thread; main waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Accepted uploads are logged at info level (one line each), unless
     * CONTPROF_LOG_LEVEL says otherwise. */
    const char *lvl = getenv("CONTPROF_LOG_LEVEL");
    cp_config_set("log_level", lvl && *lvl ? lvl : "info", CP_SRC_ENV);
    ex_store *st = ex_store_open(o.data, err, sizeof err);
    if (!st) { fprintf(stderr, "contprof-explorer: %s\n", err); return 1; }
    rc = serve(st, &o);
    ex_store_close(st);
    return rc;
}
