/*
 * metrics.c — metrics series (metrics.h). The profiler's counters in the
 * runtime info are cumulative per process, so samples, drops and upload
 * failures are shown as the increase since the previous profile of the
 * same runtime-id (a process's first profile shows the counter itself).
 */
#include "metrics.h"

#include <math.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

#define MAX_POINTS 5000
#define MAX_GROUPS 12           /* series per chart; the rest is "other" */
#define DOWNSAMPLE_OVER 1000    /* a group with more points is bucketed… */
#define DOWNSAMPLE_BUCKETS 400  /* …into this many [t, mean, min, max, n] */
#define TOTAL_BUCKETS 1000      /* at most this many total intervals */

enum { S_CPU, S_ALLOC, S_HEAP, S_THREADS, S_SAMPLES, S_DROPPED, S_FAILURES, S_OVERHEAD, S__COUNT };
static const char *const NAMES[S__COUNT][2] = {
    {"cpu_cores", "cores"}, {"alloc_rate", "bytes/s"}, {"live_heap", "bytes"}, {"threads", "count"},
    {"samples", "count"}, {"samples_dropped", "count"}, {"upload_failures", "count"}, {"overhead_pct", "%"}};

typedef struct point {
    int64_t t_ms, id;
    char rtid[64], host[64];
    int group;          /* index into the series groups */
    double v[S__COUNT]; /* NAN = no point */
    double cum[3]; /* the profiler's counters (K_*), NAN = absent */
} point;

enum { K_TAKEN, K_DROPPED, K_FAIL };

static double col(sqlite3_stmt *s, int c)
{
    return sqlite3_column_type(s, c) == SQLITE_NULL ? NAN : sqlite3_column_double(s, c);
}

static size_t load_points(ex_store *st, const ex_filter *f, point *pts)
{
    ex_sql q;
    size_t n = 0;
    ex_sql_init(&q, "SELECT start_ns,runtime_id,cpu_cores,alloc_rate,live_heap,threads,m_samples_taken,"
                    "m_samples_dropped,m_upload_failures,m_overhead_pct,id,host FROM profiles");
    ex_sql_where(&q, f, -1);
    sqlite3 *db = ex_store_lock(st);
    /* newest MAX_POINTS, then reversed below to oldest first */
    sqlite3_stmt *s = ex_sql_prepare(db, &q, " ORDER BY start_ns DESC, id DESC LIMIT 5000");
    while (s && n < MAX_POINTS && sqlite3_step(s) == SQLITE_ROW) {
        point *p = &pts[n++];
        p->t_ms = sqlite3_column_int64(s, 0) / 1000000;
        const unsigned char *r = sqlite3_column_text(s, 1);
        snprintf(p->rtid, sizeof p->rtid, "%s", r ? (const char *)r : "");
        for (int i = 0; i < 4; i++) p->v[i] = col(s, 2 + i);
        for (int k = 0; k < 3; k++) p->cum[k] = col(s, 6 + k);
        p->v[S_OVERHEAD] = col(s, 9);
        p->id = sqlite3_column_int64(s, 10);
        const unsigned char *hst = sqlite3_column_text(s, 11);
        snprintf(p->host, sizeof p->host, "%s", hst ? (const char *)hst : "");
    }
    sqlite3_finalize(s);
    ex_store_unlock(st);
    for (size_t i = 0; i < n / 2; i++) {
        point t = pts[i];
        pts[i] = pts[n - 1 - i];
        pts[n - 1 - i] = t;
    }
    return n;
}

/* Increase since the previous point of the same process; a counter that
 * went down means a restart under the same id (fork) → the value itself. */
static double delta(const point *pts, size_t i, int k)
{
    double cur = pts[i].cum[k];
    if (isnan(cur)) return NAN;
    for (size_t j = i; j-- > 0;) {
        if (strcmp(pts[j].rtid, pts[i].rtid) != 0) continue;
        double prev = pts[j].cum[k];
        if (isnan(prev)) continue;
        return cur >= prev ? cur - prev : cur;
    }
    return cur;
}

/* ---- series per process or host, service total, downsampling -------- */

typedef struct groups {
    bool by_host;                 /* else by runtime-id */
    size_t n;
    const char *key[MAX_GROUPS];  /* borrowed from the points; "other" last */
    int64_t width_ms;             /* interval of the service total */
    int64_t t0, t1;
} groups;

/* Series are per host when the service runs on several hosts, else per
 * process (runtime-id); beyond MAX_GROUPS - 1 the rest are "other". */
static void assign_groups(point *pts, size_t n, groups *g)
{
    memset(g, 0, sizeof *g);
    for (size_t i = 1; i < n && !g->by_host; i++) g->by_host = strcmp(pts[i].host, pts[0].host) != 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = g->by_host ? pts[i].host : pts[i].rtid;
        size_t j = 0;
        while (j < g->n && strcmp(g->key[j], k) != 0) j++;
        if (j == g->n && g->n < MAX_GROUPS - 1) g->key[g->n++] = k;
        else if (j == g->n) { g->key[MAX_GROUPS - 1] = "other"; j = MAX_GROUPS - 1; }
        pts[i].group = (int)j;
    }
    if (g->key[MAX_GROUPS - 1]) g->n = MAX_GROUPS;
    g->t0 = n ? pts[0].t_ms : 0;
    g->t1 = n ? pts[n - 1].t_ms : 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The total's interval: the median gap between a group's consecutive
 * profiles (the upload period), at least 1 s and wide enough that the
 * whole range fits in TOTAL_BUCKETS intervals. */
static void total_width(const point *pts, size_t n, groups *g)
{
    int64_t *gaps = malloc((n ? n : 1) * sizeof *gaps), last[MAX_GROUPS];
    size_t m = 0;
    for (size_t j = 0; j < MAX_GROUPS; j++) last[j] = -1;
    for (size_t i = 0; gaps && i < n; i++) {
        int gi = pts[i].group;
        if (last[gi] >= 0 && pts[i].t_ms > last[gi]) gaps[m++] = pts[i].t_ms - last[gi];
        last[gi] = pts[i].t_ms;
    }
    if (m) qsort(gaps, m, sizeof *gaps, cmp_i64);
    g->width_ms = m ? gaps[m / 2] : 60000;
    free(gaps);
    if (g->width_ms < 1000) g->width_ms = 1000;
    int64_t span = g->t1 - g->t0;
    if (span / g->width_ms >= TOTAL_BUCKETS) g->width_ms = span / (TOTAL_BUCKETS - 1) + 1;
}

/* One group's points, or when there are more than DOWNSAMPLE_OVER of them,
 * DOWNSAMPLE_BUCKETS equal-time buckets [t_mid, mean, min, max, count]. */
static void write_group(const point *pts, size_t n, int k, int gi, const groups *g, ex_jw *w)
{
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) cnt += pts[i].group == gi && !isnan(pts[i].v[k]);
    ex_jw_obj(w);
    ex_jw_kstr(w, "key", g->key[gi]);
    bool down = cnt > DOWNSAMPLE_OVER;
    ex_jw_key(w, "downsampled");
    ex_jw_bool(w, down);
    ex_jw_key(w, "points");
    ex_jw_arr(w);
    double sum = 0, lo = 0, hi = 0;
    int64_t bucket = -1, in = 0, span = g->t1 - g->t0 + 1;
    for (size_t i = 0; i <= n; i++) {
        bool take = i < n && pts[i].group == gi && !isnan(pts[i].v[k]);
        if (i < n && !take) continue;
        int64_t b = i < n ? (pts[i].t_ms - g->t0) * DOWNSAMPLE_BUCKETS / span : -2;
        if (down && b != bucket && in) {
            ex_jw_arr(w);
            ex_jw_int(w, g->t0 + (bucket * 2 + 1) * span / (2 * DOWNSAMPLE_BUCKETS));
            ex_jw_num(w, sum / (double)in);
            ex_jw_num(w, lo);
            ex_jw_num(w, hi);
            ex_jw_int(w, in);
            ex_jw_arr_end(w);
            in = 0;
        }
        if (i == n) break;
        double v = pts[i].v[k];
        if (!down) {
            ex_jw_arr(w);
            ex_jw_int(w, pts[i].t_ms);
            ex_jw_num(w, v);
            ex_jw_int(w, pts[i].id);
            ex_jw_arr_end(w);
            continue;
        }
        if (!in) { sum = 0; lo = hi = v; bucket = b; }
        sum += v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        in++;
    }
    ex_jw_arr_end(w);
    ex_jw_obj_end(w);
}

/* Service total per interval: the sum over groups of each group's mean
 * in that interval (a process reporting twice in one interval is not
 * counted twice). */
static void write_total(const point *pts, size_t n, int k, const groups *g, ex_jw *w)
{
    ex_jw_key(w, "total");
    ex_jw_arr(w);
    size_t i = 0;
    while (i < n) {
        int64_t b = (pts[i].t_ms - g->t0) / g->width_ms;
        double sum[MAX_GROUPS] = {0}, tot = 0;
        int cnt[MAX_GROUPS] = {0};
        bool any = false;
        for (; i < n && (pts[i].t_ms - g->t0) / g->width_ms == b; i++) {
            if (isnan(pts[i].v[k])) continue;
            sum[pts[i].group] += pts[i].v[k];
            cnt[pts[i].group]++;
            any = true;
        }
        for (size_t j = 0; j < MAX_GROUPS; j++) tot += cnt[j] ? sum[j] / cnt[j] : 0;
        if (!any) continue;
        ex_jw_arr(w);
        ex_jw_int(w, g->t0 + b * g->width_ms);
        ex_jw_num(w, tot);
        ex_jw_arr_end(w);
    }
    ex_jw_arr_end(w);
}

static void write_series(const point *pts, size_t n, int k, const groups *g, ex_jw *w)
{
    ex_jw_obj(w);
    ex_jw_kstr(w, "name", NAMES[k][0]);
    ex_jw_kstr(w, "unit", NAMES[k][1]);
    ex_jw_key(w, "points");
    ex_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        if (isnan(pts[i].v[k])) continue;
        ex_jw_arr(w);
        ex_jw_int(w, pts[i].t_ms);
        ex_jw_num(w, pts[i].v[k]);
        ex_jw_int(w, pts[i].id);
        ex_jw_arr_end(w);
    }
    ex_jw_arr_end(w);
    ex_jw_kstr(w, "by", g->by_host ? "host" : "runtime_id");
    ex_jw_key(w, "groups");
    ex_jw_arr(w);
    for (size_t gi = 0; gi < g->n; gi++) write_group(pts, n, k, (int)gi, g, w);
    ex_jw_arr_end(w);
    ex_jw_kint(w, "total_interval_ms", g->width_ms);
    write_total(pts, n, k, g, w);
    ex_jw_obj_end(w);
}

int ex_metrics_series(ex_store *st, const ex_params *ps, ex_jw *w, char *err, size_t errlen)
{
    ex_filter f;
    const char *service = ex_param_get(ps, "service");
    if (!service) { snprintf(err, errlen, "'service' is required"); return 400; }
    if (ex_filter_parse(ps, &f, err, errlen)) return 400;
    point *pts = calloc(MAX_POINTS, sizeof *pts);
    if (!pts) { snprintf(err, errlen, "out of memory"); return 500; }
    size_t n = load_points(st, &f, pts);
    for (size_t i = 0; i < n; i++) {
        pts[i].v[S_SAMPLES] = delta(pts, i, K_TAKEN);
        pts[i].v[S_DROPPED] = delta(pts, i, K_DROPPED);
        pts[i].v[S_FAILURES] = delta(pts, i, K_FAIL);
    }
    groups g;
    assign_groups(pts, n, &g);
    total_width(pts, n, &g);
    const char *env = ex_param_get(ps, "env");
    ex_jw_obj(w);
    ex_jw_kstr(w, "service", service);
    ex_jw_kstr(w, "env", env ? env : "");
    ex_jw_kint(w, "profiles", (int64_t)n);
    ex_jw_key(w, "series");
    ex_jw_arr(w);
    for (int k = 0; k < S__COUNT; k++) write_series(pts, n, k, &g, w);
    ex_jw_arr_end(w);
    ex_jw_obj_end(w);
    free(pts);
    return 200;
}
