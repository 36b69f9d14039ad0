/*
 * test_store.c — the index and intake without HTTP: ingest valid and
 * invalid uploads (nothing half-written), deduplication, list filters,
 * facets, sort and search, persistence across reopen, the importer, and
 * metrics series.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "budget.h"
#include "fixtures.h"
#include "importer.h"
#include "ingest.h"
#include "intake.h"
#include "json.h"
#include "metrics.h"
#include "query.h"
#include "store.h"
#include "timeutil.h"
#include <unistd.h>

#define SEC 1000000000LL

typedef struct ctx {
    char *dir;
    ex_store *st;
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    char err[200];
    c->dir = fx_tmpdir("store");
    c->st = ex_store_open(c->dir, err, sizeof err);
    assert_non_null(c->st);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    ex_store_close(c->st);
    fx_rmtree(c->dir);
    free(c);
    return 0;
}

/* A profile of svc/env with cpu (cores × dur) and known functions. */
static void make(cp_buf *pprof, int64_t start, int64_t dur, double cores, int salt)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples,wall-time,wall-samples");
    fx_add(p, "main;parse_json", (int64_t[]){(int64_t)(cores * (double)dur * 0.75), 75, dur, 100}, 1, "w");
    fx_add(p, "main;render", (int64_t[]){(int64_t)(cores * (double)dur * 0.25), 25 + salt, dur, 100}, 2, "w");
    fx_encode(p, start, dur, pprof);
    cp_profile_free(p);
}

static int upload(ex_store *st, const char *tags, int64_t start, double cores, int salt, int64_t *id)
{
    cp_buf pprof, body, resp;
    char *ev = fx_event(tags, start, start + 10 * SEC,
                        "{\"metrics\":{\"samples_taken\":100,\"samples_dropped\":3,\"upload_failures\":0,"
                        "\"overhead_pct\":0.5},\"os\":\"Linux\"}");
    make(&pprof, start, 10 * SEC, cores, salt);
    fx_multipart(&body, ev, pprof.data, pprof.len);
    cp_buf_init(&resp, 0);
    int status = ex_intake_handle(st, FX_CONTENT_TYPE, body.data, body.len, 0, &resp);
    if (status == 200 && id) {
        ex_jval *v;
        char err[100];
        assert_int_equal(ex_json_parse((char *)resp.data, resp.len, &v, err, sizeof err), 0);
        *id = (int64_t)ex_json_num(v, "id", 0);
        ex_json_free(v);
    }
    free(ev);
    cp_buf_free(&pprof);
    cp_buf_free(&body);
    cp_buf_free(&resp);
    return status;
}

typedef int (*handler)(ex_store *, const ex_params *, ex_jw *, char *, size_t);

/* Call a query handler with key/value pairs; expect status want; the
 * parsed response (NULL unless 200). */
static ex_jval *call(ex_store *st, handler fn, const char *const *kv, size_t n, int want)
{
    ex_params ps = {0};
    for (size_t i = 0; i + 1 < n; i += 2) ex_param_add(&ps, kv[i], kv[i + 1]);
    cp_buf b;
    ex_jw w;
    char err[200];
    ex_jval *v = NULL;
    cp_buf_init(&b, 0);
    ex_jw_init(&w, &b);
    assert_int_equal(fn(st, &ps, &w, err, sizeof err), want);
    if (want == 200) assert_int_equal(ex_json_parse((char *)b.data, b.len, &v, err, sizeof err), 0);
    cp_buf_free(&b);
    return v;
}

static ex_jval *list(ex_store *st, const char *const *kv, size_t n)
{
    return call(st, ex_query_list, kv, n, 200);
}

static int64_t facet_count(const ex_jval *v, const char *facet, const char *value)
{
    const ex_jval *f = ex_json_get(ex_json_get(v, "facets"), facet);
    for (size_t i = 0; f && i < f->n; i++)
        if (strcmp(ex_json_str(&f->items[i], "value"), value) == 0) return (int64_t)ex_json_num(&f->items[i], "count", 0);
    return 0;
}

static void seed(ex_store *st, int64_t t0)
{
    assert_int_equal(upload(st, "service:shop,env:prod,version:1.0,host:h1,language:python,runtime:CPython", t0, 1.5, 0, NULL), 200);
    assert_int_equal(upload(st, "service:shop,env:prod,version:1.1,host:h2,language:python,runtime:CPython", t0 + 60 * SEC, 0.5, 1, NULL), 200);
    assert_int_equal(upload(st, "service:shop,env:staging,version:1.1,host:h1,language:python,runtime:CPython", t0 + 120 * SEC, 2.0, 2, NULL), 200);
    assert_int_equal(upload(st, "service:billing,env:prod,version:7,host:h3,language:jvm,runtime:OpenJDK", t0 + 180 * SEC, 0.25, 3, NULL), 200);
}

static void test_ingest_and_list(void **state)
{
    ctx *c = *state;
    int64_t t0 = fx_now_ns() - 3600 * SEC;
    seed(c->st, t0);
    ex_jval *v = list(c->st, NULL, 0);
    assert_true(ex_json_num(v, "total", 0) == 4);
    const ex_jval *rows = ex_json_get(v, "profiles");
    assert_int_equal(rows->n, 4);
    /* newest first by default, measures computed */
    assert_string_equal(ex_json_str(&rows->items[0], "service"), "billing");
    assert_true(fabs(ex_json_num(&rows->items[0], "cpu_cores", 0) - 0.25) < 1e-6);
    assert_true(ex_json_num(&rows->items[0], "threads", 0) == 2);
    assert_true(ex_json_num(&rows->items[0], "duration_ms", 0) == 10000);
    assert_true(facet_count(v, "env", "prod") == 3 && facet_count(v, "language", "jvm") == 1);
    ex_json_free(v);
    /* a facet filter narrows the others but not its own facet */
    const char *f1[] = {"env", "prod"};
    v = list(c->st, f1, 2);
    assert_true(ex_json_num(v, "total", 0) == 3);
    assert_true(facet_count(v, "env", "staging") == 1 && facet_count(v, "service", "shop") == 2);
    ex_json_free(v);
    /* sort by CPU ascending, search, time range */
    const char *f2[] = {"sort", "cpu_cores", "order", "asc"};
    v = list(c->st, f2, 4);
    assert_true(fabs(ex_json_num(&ex_json_get(v, "profiles")->items[0], "cpu_cores", 0) - 0.25) < 1e-6);
    ex_json_free(v);
    const char *f3[] = {"q", "h2 CPYTHON"};
    v = list(c->st, f3, 2);
    assert_true(ex_json_num(v, "total", 0) == 1);
    ex_json_free(v);
    char from[32];
    snprintf(from, sizeof from, "%lld", (long long)((t0 + 100 * SEC) / 1000000));
    const char *f4[] = {"from", from, "service", "shop", "service", "billing"};
    v = list(c->st, f4, 6);
    assert_true(ex_json_num(v, "total", 0) == 2);
    ex_json_free(v);
}

static void test_duplicates_and_rejections(void **state)
{
    ctx *c = *state;
    int64_t t0 = fx_now_ns(), id1, id2;
    assert_int_equal(upload(c->st, "service:a", t0, 1, 0, &id1), 200);
    assert_int_equal(upload(c->st, "service:a", t0, 1, 0, &id2), 200);
    assert_true(id1 == id2 && ex_store_count(c->st) == 1);
    cp_buf resp;
    cp_buf_init(&resp, 0);
    const char *junk = "--fxBOUNDARY\r\nContent-Disposition: form-data; name=\"event\"\r\n\r\n{bad\r\n--fxBOUNDARY--";
    assert_int_equal(ex_intake_handle(c->st, FX_CONTENT_TYPE, (const uint8_t *)junk, strlen(junk), 0, &resp), 400);
    assert_int_equal(ex_buf_cstr(&resp), 0);
    assert_non_null(strstr((char *)resp.data, "event.json: invalid JSON"));
    resp.len = 0;
    assert_int_equal(ex_intake_handle(c->st, "application/json", (const uint8_t *)"{}", 2, 0, &resp), 400);
    /* corrupt pprof and a zip bomb (tiny cap) via ex_ingest directly */
    char *ev = fx_event("service:z", t0, t0 + SEC, NULL);
    ex_ingest_req r = {.event = ev, .event_len = strlen(ev), .pprof = (const uint8_t *)"\x1f\x8b garbage",
                       .pprof_len = 10, .source = "test"};
    char err[300];
    int64_t id;
    bool dup;
    assert_int_equal(ex_ingest(c->st, &r, &id, &dup, err, sizeof err), 400);
    cp_buf pprof;
    make(&pprof, t0, SEC, 1, 9);
    r.pprof = pprof.data;
    r.pprof_len = pprof.len;
    r.max_inflated = 64;
    assert_int_equal(ex_ingest(c->st, &r, &id, &dup, err, sizeof err), 413);
    assert_non_null(strstr(err, "zip bomb"));
    /* an event without start/end */
    r.max_inflated = 0;
    r.event = "{\"attachments\":[\"auto.pprof\"]}";
    r.event_len = strlen(r.event);
    assert_int_equal(ex_ingest(c->st, &r, &id, &dup, err, sizeof err), 400);
    assert_true(ex_store_count(c->st) == 1);
    /* nothing half-written: exactly one blob on disk */
    char blobs[4200];
    snprintf(blobs, sizeof blobs, "%s/pprof", c->dir);
    DIR *d = opendir(blobs);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 1);
    free(ev);
    cp_buf_free(&pprof);
    cp_buf_free(&resp);
}

static int post_n(ex_store *st, const char *event, const char *const *names, const cp_buf *pp, size_t n,
                  char *reason, size_t rn)
{
    cp_buf body, resp;
    fx_multipart_n(&body, event, names, pp, n);
    cp_buf_init(&resp, 0);
    int status = ex_intake_handle(st, FX_CONTENT_TYPE, body.data, body.len, 0, &resp);
    snprintf(reason, rn, "%.*s", (int)resp.len, resp.data ? (char *)resp.data : "");
    cp_buf_free(&body);
    cp_buf_free(&resp);
    return status;
}

static double type_total(const ex_jval *detail, const char *type)
{
    const ex_jval *tt = ex_json_get(detail, "type_totals");
    for (size_t i = 0; tt && i < tt->n; i++)
        if (!strcmp(ex_json_str(&tt->items[i], "type"), type)) return ex_json_num(&tt->items[i], "total", -1);
    return -1;
}

/* dd-trace style: three attachments in one upload, no host anywhere, the
 * facts in info: all merged, nothing dropped, the explorer's host filled. */
static void test_multi_attachment(void **state)
{
    ctx *c = *state;
    int64_t t0 = fx_now_ns();
    cp_buf pp[3];
    cp_profile *w = fx_new("wall-samples,wall-time");
    fx_add(w, "main;sleep", (int64_t[]){10, 100}, 1, "main");
    fx_add(w, "main;work", (int64_t[]){30, 300}, 1, "main");
    fx_encode(w, t0, 10 * SEC, &pp[0]);
    cp_profile *h = fx_new("heap-live-samples,heap-space");
    fx_add(h, "main;alloc", (int64_t[]){4, 4096}, 0, NULL);
    fx_encode(h, t0, 10 * SEC, &pp[1]);
    cp_profile *e = fx_new("wall-samples");
    fx_add(e, "gc", (int64_t[]){7}, 0, NULL);
    fx_encode(e, t0, 10 * SEC, &pp[2]);
    const char *names[] = {"wall.pprof", "space.pprof", "events.pprof"};
    char ev[1200], reason[400], start[40], end[40];
    ex_time_format(t0, start, sizeof start);
    ex_time_format(t0 + 10 * SEC, end, sizeof end);
    snprintf(ev, sizeof ev,
             "{\"attachments\":[\"wall.pprof\",\"space.pprof\",\"events.pprof\"],\"start\":\"%s\",\"end\":\"%s\","
             "\"family\":\"node\",\"version\":\"4\",\"tags_profiler\":\"language:javascript,runtime:nodejs,"
             "process_id:42\",\"info\":{\"application\":{\"service\":\"nodesvc\",\"env\":\"dev\","
             "\"version\":\"1.2\"},\"runtime\":{\"engine\":\"nodejs\",\"version\":\"22.23.5\"}}}", start, end);
    assert_int_equal(post_n(c->st, ev, names, pp, 3, reason, sizeof reason), 200);
    assert_true(ex_store_count(c->st) == 1);
    cp_buf out;
    ex_jw jw;
    ex_jval *v;
    char err[100], host[256] = "";
    cp_buf_init(&out, 0);
    ex_jw_init(&jw, &out);
    assert_int_equal(ex_query_detail(c->st, 1, &jw), 200);
    assert_int_equal(ex_json_parse((char *)out.data, out.len, &v, err, sizeof err), 0);
    gethostname(host, sizeof host);
    assert_string_equal(ex_json_str(v, "service"), "nodesvc");
    assert_string_equal(ex_json_str(v, "env"), "dev");
    assert_string_equal(ex_json_str(v, "version"), "1.2");
    assert_string_equal(ex_json_str(v, "host"), host);
    assert_string_equal(ex_json_str(v, "runtime_version"), "22.23.5");
    assert_true(type_total(v, "wall-time") == 400);
    assert_true(type_total(v, "wall-samples") == 40);
    assert_true(type_total(v, "heap-space") == 4096);
    assert_true(type_total(v, "heap-live-samples") == 4);
    assert_true(type_total(v, "wall-samples (events.pprof)") == 7);
    assert_string_equal(ex_json_str(v, "default_type"), "wall-time");
    ex_json_free(v);
    cp_buf_free(&out);
    /* a listed attachment that is missing, an absurd start, a negative value */
    assert_int_equal(post_n(c->st, ev, names, pp, 2, reason, sizeof reason), 400);
    assert_non_null(strstr(reason, "events.pprof"));
    char bad[1300];
    snprintf(bad, sizeof bad, "{\"attachments\":[\"wall.pprof\"],\"start\":\"9999-12-31T00:00:00Z\",\"end\":\"%s\"}", end);
    assert_int_equal(post_n(c->st, bad, names, pp, 1, reason, sizeof reason), 400);
    assert_non_null(strstr(reason, "\\\"start\\\" 9999-12-31"));
    cp_buf neg;
    cp_profile *n = fx_new("cpu-time,cpu-samples");
    fx_add(n, "main", (int64_t[]){-50, 1}, 0, NULL);
    fx_encode(n, t0, 10 * SEC, &neg);
    snprintf(bad, sizeof bad, "{\"attachments\":[\"wall.pprof\"],\"start\":\"%s\",\"end\":\"%s\"}", start, end);
    assert_int_equal(post_n(c->st, bad, names, &neg, 1, reason, sizeof reason), 400);
    assert_non_null(strstr(reason, "negative cpu-time value (-50)"));
    assert_true(ex_store_count(c->st) == 1);
    /* a 21 ms tail profile holding 38 ms of CPU: stored, but no 184% CPU */
    cp_buf tail;
    cp_profile *tp = fx_new("cpu-time,cpu-samples");
    fx_add(tp, "main;exit", (int64_t[]){38000000, 4}, 1, NULL);
    fx_encode(tp, t0, 21000000, &tail);
    ex_time_format(t0 + 21000000, end, sizeof end);
    snprintf(bad, sizeof bad, "{\"attachments\":[\"wall.pprof\"],\"start\":\"%s\",\"end\":\"%s\",\"tags_profiler\":\"service:tail\"}",
             start, end);
    assert_int_equal(post_n(c->st, bad, names, &tail, 1, reason, sizeof reason), 200);
    const char *ft[] = {"service", "tail"};
    ex_jval *lv = list(c->st, ft, 2);
    const ex_jval *row = &ex_json_get(lv, "profiles")->items[0];
    assert_true(ex_json_get(row, "cpu_cores")->type == EX_J_NULL);
    assert_true(ex_json_num(row, "duration_ms", 0) == 21);
    ex_json_free(lv);
    cp_buf_free(&tail);
    cp_profile_free(tp);
    for (int i = 0; i < 3; i++) cp_buf_free(&pp[i]);
    cp_buf_free(&neg);
    cp_profile_free(w);
    cp_profile_free(h);
    cp_profile_free(e);
    cp_profile_free(n);
}

static int blob_files(const char *dir)
{
    char blobs[4200];
    snprintf(blobs, sizeof blobs, "%s/pprof", dir);
    DIR *d = opendir(blobs);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) files += e->d_name[0] != '.';
    closedir(d);
    return files;
}

/* Delete one profile, a whole service, then retention by size and age:
 * rows, facet counts (trigger-kept), search index and blobs follow. */
static void test_delete_and_retention(void **state)
{
    ctx *c = *state;
    int64_t t0 = fx_now_ns(), ids[5];
    const char *tags[] = {"service:a,env:prod,team:blue", "service:a,env:dev,team:blue", "service:b,env:prod",
                          "service:b,env:prod", "service:c,env:prod"};
    for (int i = 0; i < 5; i++) assert_int_equal(upload(c->st, tags[i], t0 - (5 - i) * 100 * SEC, 1, i, &ids[i]), 200);
    assert_int_equal(ex_store_delete(c->st, ids[0]), 1);
    assert_int_equal(ex_store_delete(c->st, ids[0]), 0);
    ex_jval *v = list(c->st, NULL, 0);
    assert_true(ex_json_num(v, "total", 0) == 4);
    assert_int_equal(facet_count(v, "service", "a"), 1);
    assert_int_equal(facet_count(v, "env", "prod"), 3);
    ex_json_free(v);
    const char *q[] = {"q", "team:blue"};
    v = list(c->st, q, 2);
    assert_true(ex_json_num(v, "total", 0) == 1);
    ex_json_free(v);
    assert_int_equal(ex_store_delete_service(c->st, "b"), 2);
    v = list(c->st, NULL, 0);
    assert_true(ex_json_num(v, "total", 0) == 2);
    assert_int_equal(facet_count(v, "service", "b"), 0);
    ex_json_free(v);
    assert_int_equal(blob_files(c->dir), 2);
    /* size: one byte under what both hold -> the older one goes, the newer
     * one fits. (Half the total plus one failed when the newer blob was
     * the larger: the blobs' sizes follow the timestamps they encode.) */
    assert_int_equal(ex_store_retain(c->st, 0, ex_store_bytes(c->st) - 1), 1);
    assert_true(ex_store_count(c->st) == 1);
    v = list(c->st, NULL, 0);
    assert_int_equal(facet_count(v, "service", "c"), 1);
    assert_int_equal(facet_count(v, "service", "a"), 0);
    ex_json_free(v);
    /* age: the last one ended 90 s ago, so a 60 s limit removes it */
    assert_int_equal(ex_store_retain(c->st, 60, 0), 1);
    assert_true(ex_store_count(c->st) == 0);
    assert_int_equal(blob_files(c->dir), 0);
}

/* The inflate budget: reservations wait (bounded) while it is spent; an
 * upload bigger than the whole budget still goes through alone. */
static void test_inflate_budget(void **state)
{
    ctx *c = *state;
    ex_budget_set_limit(100000);
    assert_true(ex_budget_reserve(60000, 0));
    assert_false(ex_budget_reserve(60000, 50)); /* spent: waits 50 ms, refused */
    ex_budget_release(60000);
    assert_true(ex_budget_reserve(60000, 50));
    ex_budget_release(60000);
    assert_true(ex_budget_in_use() == 0);
    int64_t id;
    ex_budget_set_limit(4096); /* less than any upload reserves (4 x (inflated + 1 KiB)) */
    assert_int_equal(upload(c->st, "service:big", fx_now_ns(), 1, 0, &id), 200);
    assert_true(ex_budget_in_use() == 0);
    ex_budget_set_limit(0);
}

static void test_persistence(void **state)
{
    ctx *c = *state;
    char err[200];
    int64_t id;
    assert_int_equal(upload(c->st, "service:keep,env:e", fx_now_ns(), 1, 0, &id), 200);
    /* one explorer per data directory */
    assert_null(ex_store_open(c->dir, err, sizeof err));
    assert_non_null(strstr(err, "in use by another contprof-explorer"));
    ex_store_close(c->st);
    c->st = ex_store_open(c->dir, err, sizeof err);
    assert_non_null(c->st);
    assert_true(ex_store_count(c->st) == 1);
    cp_buf b;
    cp_buf_init(&b, 0);
    assert_int_equal(ex_store_read_blob(c->st, id, &b), CP_OK);
    cp_pprof *pp;
    assert_int_equal(cp_pprof_decode(b.data, b.len, 0, &pp), CP_OK);
    assert_true(cp_pprof_type_index(pp, "cpu-time") == 0);
    cp_pprof_free(pp);
    cp_buf_free(&b);
    char *info = ex_query_text(c->st, id, "info");
    assert_non_null(strstr(info, "\"os\":\"Linux\""));
    free(info);
    assert_int_equal(ex_store_read_blob(c->st, id + 100, &b), CP_EINVAL);
}

static void test_importer(void **state)
{
    ctx *c = *state;
    char *in = fx_tmpdir("import");
    int64_t t0 = fx_now_ns();
    cp_buf a, b;
    make(&a, t0, 5 * SEC, 1, 0);
    make(&b, t0 + 5 * SEC, 5 * SEC, 2, 1);
    char *ev = fx_event("service:imp,env:dev", t0, t0 + 5 * SEC, NULL);
    fx_write_pair(in, "imp.1.1", &a, ev);
    fx_write_pair(in, "imp.1.2", &b, NULL); /* no sidecar yet */
    ex_import_stats s = {0};
    assert_int_equal(ex_import_dir(c->st, in, 0, true, &s), 0);
    assert_int_equal(s.imported, 1);
    memset(&s, 0, sizeof s);
    assert_int_equal(ex_import_dir(c->st, in, 0, false, &s), 0); /* once: takes it without */
    assert_int_equal(s.imported, 1);
    assert_int_equal(s.skipped, 1);
    memset(&s, 0, sizeof s);
    assert_int_equal(ex_import_dir(c->st, in, 0, false, &s), 0);
    assert_int_equal(s.imported + s.rejected, 0);
    assert_int_equal(s.skipped, 2);
    assert_int_equal(ex_import_dir(c->st, "/nonexistent/dir", 0, false, &s), -1);
    const char *f[] = {"service", "imp"};
    ex_jval *v = list(c->st, f, 2);
    assert_true(ex_json_num(v, "total", 0) == 1);
    ex_json_free(v);
    free(ev);
    fx_rmtree(in);
    cp_buf_free(&a);
    cp_buf_free(&b);
}

static void test_metrics_series(void **state)
{
    ctx *c = *state;
    int64_t t0 = fx_now_ns() - 3600 * SEC;
    seed(c->st, t0);
    const char *q[] = {"service", "shop", "env", "prod"};
    ex_jval *v = call(c->st, ex_metrics_series, q, 4, 200);
    assert_true(ex_json_num(v, "profiles", 0) == 2);
    const ex_jval *cpu = &ex_json_get(v, "series")->items[0];
    assert_string_equal(ex_json_str(cpu, "name"), "cpu_cores");
    const ex_jval *pts = ex_json_get(cpu, "points");
    assert_int_equal(pts->n, 2);
    assert_true(fabs(pts->items[0].items[1].num - 1.5) < 1e-6); /* oldest first */
    assert_true(pts->items[0].items[0].num == (double)(t0 / 1000000));
    assert_int_equal(pts->items[0].n, 3); /* [t_ms, value, profile id] */
    assert_true(pts->items[0].items[2].num == 1);
    /* cumulative counters (3 drops in every upload, one process): the
     * first profile shows 3, the next the increase, 0 */
    const ex_jval *drops = &ex_json_get(v, "series")->items[5];
    assert_string_equal(ex_json_str(drops, "name"), "samples_dropped");
    pts = ex_json_get(drops, "points");
    assert_int_equal(pts->n, 2);
    assert_true(pts->items[0].items[1].num == 3 && pts->items[1].items[1].num == 0);
    ex_json_free(v);
    assert_null(call(c->st, ex_metrics_series, NULL, 0, 400)); /* service is required */
}

/* Three hosts at 10/50/90% CPU, one profile each per 10 s: three series
 * (not a saw-tooth), and a service total of 1.5 cores per interval; 1,050
 * profiles of one process are downsampled with min/max. */
static void test_metrics_per_host(void **state)
{
    ctx *c = *state;
    int64_t t0 = fx_now_ns() - 7200 * SEC;
    const double cores[] = {0.1, 0.5, 0.9};
    char tags[120];
    ex_store_set_sync(c->st, false); /* 1,080 uploads: no fsync each */
    for (int i = 0; i < 10; i++)
        for (int h = 0; h < 3; h++) {
            snprintf(tags, sizeof tags, "service:multi,env:prod,host:web-%d,runtime-id:rt-%d", h + 1, h + 1);
            assert_int_equal(upload(c->st, tags, t0 + i * 10 * SEC + h * SEC, cores[h], i, NULL), 200);
        }
    const char *q[] = {"service", "multi"};
    ex_jval *v = call(c->st, ex_metrics_series, q, 2, 200);
    const ex_jval *cpu = &ex_json_get(v, "series")->items[0];
    assert_string_equal(ex_json_str(cpu, "by"), "host");
    const ex_jval *groups = ex_json_get(cpu, "groups");
    assert_int_equal(groups->n, 3);
    for (size_t g = 0; g < 3; g++) {
        const ex_jval *pts = ex_json_get(&groups->items[g], "points");
        assert_int_equal(pts->n, 10);
        double want = cores[ex_json_str(&groups->items[g], "key")[4] - '1'];
        for (size_t i = 0; i < pts->n; i++) assert_true(fabs(pts->items[i].items[1].num - want) < 1e-6);
    }
    const ex_jval *total = ex_json_get(cpu, "total");
    assert_int_equal(total->n, 10);
    for (size_t i = 0; i < total->n; i++) assert_true(fabs(total->items[i].items[1].num - 1.5) < 1e-6);
    ex_json_free(v);
    for (int i = 0; i < 1050; i++)
        assert_int_equal(upload(c->st, "service:busy,host:one,runtime-id:p1", t0 + i * SEC, 0.2 + (i % 2) * 0.6, i, NULL), 200);
    const char *q2[] = {"service", "busy"};
    v = call(c->st, ex_metrics_series, q2, 2, 200);
    cpu = &ex_json_get(v, "series")->items[0];
    assert_string_equal(ex_json_str(cpu, "by"), "runtime_id");
    const ex_jval *g0 = &ex_json_get(cpu, "groups")->items[0];
    assert_true(ex_json_get(g0, "downsampled")->b);
    const ex_jval *b0 = &ex_json_get(g0, "points")->items[0];
    assert_int_equal(b0->n, 5); /* [t, mean, min, max, n] */
    assert_true(fabs(b0->items[2].num - 0.2) < 1e-6 && fabs(b0->items[3].num - 0.8) < 1e-6);
    assert_true(ex_json_get(g0, "points")->n <= 400);
    ex_json_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ingest_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_and_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_attachment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inflate_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_importer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_per_host, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
