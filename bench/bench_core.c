/*
 * bench_core.c — the core's benchmark (bench/ target `bench`).
 *
 * Prints, as figures:
 *   1. samples/s added for repeated stacks (the steady state of an
 *      always-on profiler: few distinct stacks, many samples): as frame-id
 *      arrays through the collector (cp_add_sample_ids: lock + add, what
 *      python_ext calls), as id arrays on a bare profile, and as string
 *      frames (cp_profile_add: jvm_agent's cp_add_sample path, minus the
 *      lock);
 *   2. time and peak RSS to build and encode (gzip) a profile of 100 000
 *      distinct 32-frame stacks, the encoded size, and the time to decode
 *      it back.
 * Usage: bench_core [scale]   (scale divides the work, e.g. 10 for a quick
 * smoke run; default 1).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "contprof.h"

enum { DEPTH = 32, NFUNCS = 5000 };

static const cp_sample_type types[2] = {{"cpu-time", "nanoseconds"}, {"cpu-samples", "count"}};
static char g_names[NFUNCS][48];
static char g_files[64][32];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This thread's CPU time: on a shared machine the rate "on one core" is
 * samples per CPU second, not per wall second. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Stack number k: a fixed pseudo-random walk over the function pool. */
static void make_stack(uint64_t k, cp_frame *f)
{
    uint64_t s = k * 0x9e3779b97f4a7c15ULL + 1;
    for (int d = 0; d < DEPTH; d++) {
        uint64_t fn = rng(&s) % NFUNCS;
        f[d] = (cp_frame){g_names[fn], NULL, g_files[fn % 64], (int64_t)(fn % 500) + 1};
    }
}

static void init_names(void)
{
    for (int i = 0; i < NFUNCS; i++)
        snprintf(g_names[i], sizeof g_names[i], "service.module%d.Class%d.method_%d", i % 97,
                 i % 13, i);
    for (int i = 0; i < 64; i++)
        snprintf(g_files[i], sizeof g_files[i], "service/module%d.py", i);
}

enum { DISTINCT = 200 };
static cp_frame g_stacks[DISTINCT][DEPTH];
static uint32_t g_ids[DISTINCT][DEPTH];

static double g_cpu0;

static void report(const char *what, long n, double dt)
{
    double cpu = cpu_s() - g_cpu0;
    printf("repeated stacks, %s: %ld adds of %d-frame stacks (%d distinct x 4 threads):"
           " %.0f samples/s of CPU (%.1f ns/sample; wall %.3f s = %.0f/s)\n",
           what, n, DEPTH, DISTINCT, (double)n / cpu, cpu * 1e9 / (double)n, dt, (double)n / dt);
}

static void must(int rc, const char *what)
{
    if (rc != CP_OK) {
        fprintf(stderr, "%s failed: %s\n", what, cp_strerror(rc));
        exit(1);
    }
}

/* On a bare profile: string frames (cp_profile_add) or, with ids, frame
 * ids (cp_profile_add_ids). */
static void bench_repeated_profile(long n, bool ids)
{
    cp_frame_dict *d = cp_frame_dict_new(0, 0);
    for (int k = 0; ids && k < DISTINCT; k++)
        for (int f = 0; f < DEPTH; f++)
            must(cp_frame_dict_intern(d, &g_stacks[k][f], &g_ids[k][f]), "intern");
    cp_profile *p = cp_profile_new(types, 2, NULL);
    cp_label l[2] = {{"thread id", NULL, 0, NULL}, {"thread name", "MainThread", 0, NULL}};
    int64_t v[2] = {10000000, 1};
    double t0 = now_s();
    g_cpu0 = cpu_s();
    for (long i = 0; i < n; i++) {
        l[0].num = i % 4;
        int k = (int)(i % DISTINCT);
        must(ids ? cp_profile_add_ids(p, d, g_ids[k], DEPTH, v, l, 2)
                 : cp_profile_add(p, g_stacks[k], DEPTH, v, l, 2), "add");
    }
    report(ids ? "frame ids, cp_profile_add_ids" : "string frames, cp_profile_add", n, now_s() - t0);
    cp_profile_free(p);
    cp_frame_dict_free(d);
}

/* Id arrays through the running collector (cp_add_sample_ids). */
static void bench_repeated_collector(long n)
{
    char dir[] = "/tmp/contprof-bench-XXXXXX";
    if (!mkdtemp(dir))
        exit(1);
    cp_config_set("output_dir", dir, CP_SRC_OPTION);
    cp_config_set("upload_period", "3600", CP_SRC_OPTION);
    cp_runtime_desc rt = {"python", "python", "bench", "0", CP_KIND_CPU};
    must(cp_start(&rt), "start");
    for (int k = 0; k < DISTINCT; k++)
        for (int f = 0; f < DEPTH; f++)
            must(cp_frame_intern(&g_stacks[k][f], &g_ids[k][f]), "intern");
    cp_label l[2] = {{"thread id", NULL, 0, NULL}, {"thread name", "MainThread", 0, NULL}};
    int64_t v[CP_V__COUNT] = {[CP_V_CPU_TIME] = 10000000, [CP_V_CPU_SAMPLES] = 1};
    double t0 = now_s();
    g_cpu0 = cpu_s();
    for (long i = 0; i < n; i++) {
        l[0].num = i % 4;
        must(cp_add_sample_ids(g_ids[i % DISTINCT], DEPTH, v, l, 2), "add_sample_ids");
    }
    report("frame ids, cp_add_sample_ids (collector)", n, now_s() - t0);
    cp_stop();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void bench_repeated(long n)
{
    for (int k = 0; k < DISTINCT; k++)
        make_stack((uint64_t)k, g_stacks[k]);
    bench_repeated_collector(n * 5);
    bench_repeated_profile(n * 5, true);
    bench_repeated_profile(n / 4, false);
}

static void bench_distinct(long n)
{
    cp_limits lim = {.max_samples = (size_t)n + 1, .max_frames = DEPTH};
    cp_profile *p = cp_profile_new(types, 2, &lim);
    cp_frame f[DEPTH];
    int64_t v[2] = {10000000, 1};
    double rss0 = peak_rss_mib(), c0 = cpu_s();
    for (long k = 0; k < n; k++) {
        make_stack((uint64_t)k + 1000, f);
        if (cp_profile_add(p, f, DEPTH, v, NULL, 0) != CP_OK) {
            fprintf(stderr, "add failed\n");
            exit(1);
        }
    }
    double t1 = now_s(), c1 = cpu_s();
    cp_buf out;
    cp_buf_init(&out, 0);
    int rc = cp_profile_encode(p, true, &out);
    double t2 = now_s(), c2 = cpu_s();
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    printf("distinct stacks: %ld x %d frames (%zu locations, %zu functions): build %.3f s CPU,"
           " encode+gzip %.1f ms CPU (wall %.1f ms) -> %.2f MiB (%s), peak RSS %.1f MiB"
           " (%.1f MiB before)\n",
           n, DEPTH, st.locations, st.functions, c1 - c0, (c2 - c1) * 1e3, (t2 - t1) * 1e3,
           (double)out.len / 1048576.0, cp_strerror(rc), peak_rss_mib(), rss0);
    cp_profile_free(p);
    cp_pprof *pp = NULL;
    double t3 = now_s();
    rc = cp_pprof_decode(out.data, out.len, 0, &pp);
    printf("decode: %.3f s (%s, %zu samples)\n", now_s() - t3, cp_strerror(rc),
           pp ? pp->n_samples : 0);
    cp_pprof_free(pp);
    cp_buf_free(&out);
}

int main(int argc, char **argv)
{
    long scale = argc > 1 ? atol(argv[1]) : 1;
    if (scale < 1)
        scale = 1;
    init_names();
    bench_repeated(2000000 / scale);
    bench_distinct(100000 / scale);
    return 0;
}
