/*
 * bench_core.c — the core's benchmark (bench/ target `bench`).
 *
 * Prints, as figures:
 *   1. samples/s added to a profile for repeated stacks (the steady state
 *      of an always-on profiler: few distinct stacks, many samples);
 *   2. time and peak RSS to build and encode (gzip) a profile of 100 000
 *      distinct 32-frame stacks, the encoded size, and the time to decode
 *      it back.
 * Usage: bench_core [scale]   (scale divides the work, e.g. 10 for a quick
 * smoke run; default 1).
 */
#include <stdio.h>
#include <stdlib.h>
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

static void bench_repeated(long n)
{
    enum { DISTINCT = 200 };
    static cp_frame stacks[DISTINCT][DEPTH];
    for (int k = 0; k < DISTINCT; k++)
        make_stack((uint64_t)k, stacks[k]);
    cp_profile *p = cp_profile_new(types, 2, NULL);
    cp_label l[2] = {{"thread id", NULL, 0, NULL}, {"thread name", "MainThread", 0, NULL}};
    int64_t v[2] = {10000000, 1};
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        l[0].num = i % 4;
        if (cp_profile_add(p, stacks[i % DISTINCT], DEPTH, v, l, 2) != CP_OK) {
            fprintf(stderr, "add failed\n");
            exit(1);
        }
    }
    double dt = now_s() - t0;
    printf("repeated stacks: %ld adds of %d-frame stacks (%d distinct x 4 threads) in %.3f s"
           " = %.0f samples/s (%.2f us/sample)\n",
           n, DEPTH, DISTINCT, dt, (double)n / dt, dt * 1e6 / (double)n);
    cp_profile_free(p);
}

static void bench_distinct(long n)
{
    cp_limits lim = {.max_samples = (size_t)n + 1, .max_frames = DEPTH};
    cp_profile *p = cp_profile_new(types, 2, &lim);
    cp_frame f[DEPTH];
    int64_t v[2] = {10000000, 1};
    double rss0 = peak_rss_mib(), t0 = now_s();
    for (long k = 0; k < n; k++) {
        make_stack((uint64_t)k + 1000, f);
        if (cp_profile_add(p, f, DEPTH, v, NULL, 0) != CP_OK) {
            fprintf(stderr, "add failed\n");
            exit(1);
        }
    }
    double t1 = now_s();
    cp_buf out;
    cp_buf_init(&out, 0);
    int rc = cp_profile_encode(p, true, &out);
    double t2 = now_s();
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    printf("distinct stacks: %ld x %d frames (%zu locations, %zu functions): build %.3f s,"
           " encode+gzip %.3f s -> %.2f MiB (%s), peak RSS %.1f MiB (%.1f MiB before)\n",
           n, DEPTH, st.locations, st.functions, t1 - t0, t2 - t1, (double)out.len / 1048576.0,
           cp_strerror(rc), peak_rss_mib(), rss0);
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
