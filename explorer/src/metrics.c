/*
 * metrics.c — metrics series (metrics.h). The profiler's counters in the
 * runtime info are cumulative per process, so samples, drops and upload
 * failures are shown as the increase since the previous profile of the
 * same runtime-id (a process's first profile shows the counter itself).
 */
#include "metrics.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

#define MAX_POINTS 5000

enum { S_CPU, S_ALLOC, S_HEAP, S_THREADS, S_SAMPLES, S_DROPPED, S_FAILURES, S_OVERHEAD, S__COUNT };
static const char *const NAMES[S__COUNT][2] = {
    {"cpu_cores", "cores"}, {"alloc_rate", "bytes/s"}, {"live_heap", "bytes"}, {"threads", "count"},
    {"samples", "count"}, {"samples_dropped", "count"}, {"upload_failures", "count"}, {"overhead_pct", "%"}};

typedef struct point {
    int64_t t_ms, id;
    char rtid[64];
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
                    "m_samples_dropped,m_upload_failures,m_overhead_pct,id FROM profiles");
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

static void write_series(const point *pts, size_t n, int k, ex_jw *w)
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
    const char *env = ex_param_get(ps, "env");
    ex_jw_obj(w);
    ex_jw_kstr(w, "service", service);
    ex_jw_kstr(w, "env", env ? env : "");
    ex_jw_kint(w, "profiles", (int64_t)n);
    ex_jw_key(w, "series");
    ex_jw_arr(w);
    for (int k = 0; k < S__COUNT; k++) write_series(pts, n, k, w);
    ex_jw_arr_end(w);
    ex_jw_obj_end(w);
    free(pts);
    return 200;
}
