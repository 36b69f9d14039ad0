/*
 * demo.c — contprof_demo: a tiny C program that profiles itself through
 * the core, writing real profiles.
 *
 * A "worker" thread serves requests: main → handle_request → parse_json
 * (3 units of CPU work) then → render (1 unit), a known 3:1 CPU split. A
 * "db" thread waits in main → handle_request → db_query (wall time, almost
 * no CPU). Each function measures the CPU it uses (thread CPU clock) and
 * the bytes it allocates; a sampler thread (registered as profiler cost)
 * ticks at the cpu interval, reports those per function, and samples
 * wall time by where each thread is at the tick. The numbers are real
 * measurements of this process; only the stacks are synthetic.
 *
 * Usage: contprof_demo [seconds]   (default 5; settings from CONTPROF_*)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "contprof.h"

enum { F_IDLE, F_PARSE, F_RENDER, F_DB };

typedef struct worker {
    const char *name;
    pthread_t tid;
    _Atomic int where;                     /* F_* the thread is in now      */
    _Atomic int64_t cpu_ns[F_DB + 1];      /* per function, not yet reported */
    _Atomic int64_t alloc_bytes[F_DB + 1]; /* per function, not yet reported */
} worker;

static atomic_bool g_stop;
static worker g_workers[2] = {{.name = "worker"}, {.name = "db"}};

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* About 2 ms of CPU work charged to function f; the checksum keeps the
 * compiler honest. */
static unsigned burn(worker *w, int f, unsigned seed)
{
    int64_t start = clock_ns(CLOCK_THREAD_CPUTIME_ID), now = start;
    while (now < start + 2000000) {
        for (int i = 0; i < 1000; i++)
            seed = seed * 1103515245u + 12345u;
        now = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    }
    atomic_fetch_add(&w->cpu_ns[f], now - start);
    return seed;
}

static const int k_line_parse = __LINE__ + 1; /* where the frame points */
static unsigned parse_json(worker *w, unsigned seed)
{
    atomic_store(&w->where, F_PARSE);
    char *doc = malloc(48 * 1024); /* parsing allocates 3x what rendering does */
    if (doc) {
        memset(doc, (int)seed, 48 * 1024);
        atomic_fetch_add(&w->alloc_bytes[F_PARSE], 48 * 1024);
        seed ^= (unsigned char)doc[seed % (48 * 1024)];
        free(doc);
    }
    for (int i = 0; i < 3; i++)
        seed = burn(w, F_PARSE, seed);
    return seed;
}

static const int k_line_render = __LINE__ + 1; /* where the frame points */
static unsigned render(worker *w, unsigned seed)
{
    atomic_store(&w->where, F_RENDER);
    char *page = malloc(16 * 1024);
    if (page) {
        memset(page, (int)seed, 16 * 1024);
        atomic_fetch_add(&w->alloc_bytes[F_RENDER], 16 * 1024);
        free(page);
    }
    return burn(w, F_RENDER, seed);
}

static const int k_line_db = __LINE__ + 1; /* where the frame points */
static void db_query(worker *w)
{
    atomic_store(&w->where, F_DB);
    struct timespec ts = {0, 5 * 1000000};
    int64_t start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    nanosleep(&ts, NULL);
    atomic_fetch_add(&w->cpu_ns[F_DB], clock_ns(CLOCK_THREAD_CPUTIME_ID) - start);
}

static const int k_line_handle = __LINE__ + 1; /* where the frame points */
static void *handle_request(void *arg)
{
    worker *w = arg;
    unsigned seed = 1;
    while (!atomic_load(&g_stop)) {
        if (w == &g_workers[0])
            seed = render(w, parse_json(w, seed));
        else
            db_query(w);
    }
    atomic_store(&w->where, F_IDLE);
    return (void *)(uintptr_t)seed;
}

static const int k_line_main; /* defined above main() */
static const char *const g_leaf[] = {[F_PARSE] = "parse_json", [F_RENDER] = "render", [F_DB] = "db_query"};

/* Add values v for worker w (thread index) in function f. */
static void add(const worker *w, int index, int f, const int64_t *v)
{
    const int lines[] = {[F_PARSE] = k_line_parse, [F_RENDER] = k_line_render, [F_DB] = k_line_db};
    cp_frame stack[3] = {{g_leaf[f], NULL, "demo.c", lines[f]},
                         {"handle_request", NULL, "demo.c", k_line_handle},
                         {"main", NULL, "demo.c", k_line_main}};
    cp_label labels[2] = {{"thread id", NULL, index + 1, NULL}, {"thread name", w->name, 0, NULL}};
    if (cp_add_sample(stack, 3, v, labels, 2) == CP_OK)
        cp_metrics_add_taken(1);
}

/* One tick for worker w: the wall time since the last tick goes to the
 * function it is in now; CPU and bytes go to the functions that used them. */
static void sample(worker *w, int index, int64_t elapsed_ns)
{
    int where = atomic_load(&w->where);
    int64_t v[CP_V__COUNT] = {0};
    v[CP_V_WALL_TIME] = elapsed_ns;
    v[CP_V_WALL_SAMPLES] = 1;
    if (where != F_IDLE)
        add(w, index, where, v);
    for (int f = F_PARSE; f <= F_DB; f++) {
        int64_t a[CP_V__COUNT] = {0};
        a[CP_V_CPU_TIME] = atomic_exchange(&w->cpu_ns[f], 0);
        a[CP_V_CPU_SAMPLES] = a[CP_V_CPU_TIME] > 0;
        a[CP_V_ALLOC_SPACE] = atomic_exchange(&w->alloc_bytes[f], 0);
        a[CP_V_ALLOC_SAMPLES] = a[CP_V_ALLOC_SPACE] > 0;
        if (a[CP_V_CPU_TIME] > 0 || a[CP_V_ALLOC_SPACE] > 0)
            add(w, index, f, a);
    }
}

static void *sampler(void *arg)
{
    (void)arg;
    cp_thread_register_self();
    int64_t interval = cp_config_get()->cpu_interval_us * 1000, last = cp_now_ns();
    while (!atomic_load(&g_stop)) {
        struct timespec ts = {(time_t)(interval / 1000000000), (long)(interval % 1000000000)};
        nanosleep(&ts, NULL);
        int64_t now = cp_now_ns(); /* a late tick weighs what it really covered */
        for (int i = 0; i < 2; i++)
            sample(&g_workers[i], i, now - last);
        last = now;
    }
    cp_thread_unregister_self();
    return NULL;
}

static void report(void)
{
    char *where = cp_destinations_describe(), *last = cp_last_profile_path();
    char *top = cp_summary_top(CP_V_CPU_TIME, 10);
    fprintf(stderr, "contprof_demo: %s\n", where ? where : "");
    if (last && *last)
        fprintf(stderr, "contprof_demo: last profile %s (go tool pprof -top %s)\n", last, last);
    if (top)
        fprintf(stderr, "%s", top);
    free(where);
    free(last);
    free(top);
}

static const int k_line_main = __LINE__ + 1; /* where the frame points */
int main(int argc, char **argv)
{
    char *end = NULL;
    double seconds = argc > 1 ? strtod(argv[1], &end) : 5.0;
    if (argc > 2 || (end && *end) || !(seconds > 0 && seconds <= 86400)) {
        fprintf(stderr, "usage: %s [seconds]   (default 5; settings from CONTPROF_* variables,\n"
                        "       e.g. CONTPROF_OUTPUT_DIR, CONTPROF_AGENT_URL, CONTPROF_LOG_LEVEL=debug)\n", argv[0]);
        return 2;
    }
    cp_config_set("service", "contprof-demo", CP_SRC_DEFAULT);
    cp_config_set("upload_period", "2", CP_SRC_DEFAULT);
    cp_config_load_env();
    cp_runtime_desc rt = {"native", "c", "contprof-demo", CP_PROFILER_VERSION,
                          CP_KIND_CPU | CP_KIND_WALL | CP_KIND_ALLOC};
    if (cp_start(&rt) != CP_OK)
        return 1;
    cp_runtime_info_set_str("demo", "synthetic stacks, 3:1 CPU split parse_json:render");
    pthread_t s;
    for (int i = 0; i < 2; i++)
        pthread_create(&g_workers[i].tid, NULL, handle_request, &g_workers[i]);
    pthread_create(&s, NULL, sampler, NULL);
    struct timespec run = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&run, NULL);
    atomic_store(&g_stop, true);
    pthread_join(s, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(g_workers[i].tid, NULL);
    cp_stop();
    report();
    return 0;
}
