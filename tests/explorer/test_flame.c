/*
 * test_flame.c — flame trees, function tables, aggregation, comparison
 * and measures, on known-answer profiles encoded and decoded by the core.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>
#include <cmocka.h>

#include "fixtures.h"
#include "flame.h"
#include "pprof_merge.h"
#include "json.h"
#include "measures.h"

/* main → a → hot (3 units) and main → b (1 unit), thread 1 and 2. */
static cp_pprof *known(int64_t scale)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples");
    fx_add(p, "main;a;hot", (int64_t[]){3 * scale, 3}, 1, "w1");
    fx_add(p, "main;b", (int64_t[]){1 * scale, 1}, 2, "w2");
    return fx_decoded(p, 2000000000);
}

static const ex_frow *row(const ex_flame *f, const char *name)
{
    size_t n;
    const ex_frow *r = ex_flame_rows(f, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(r[i].name, name) == 0) return &r[i];
    return NULL;
}

static ex_jval *tree_json(const ex_flame *f, int ncols, double min_frac, size_t *pruned)
{
    cp_buf b;
    ex_jw w;
    ex_jval *v = NULL;
    char err[160];
    cp_buf_init(&b, 0);
    ex_jw_init(&w, &b);
    ex_flame_write_tree(f, &w, ncols, min_frac, 100000, pruned);
    assert_int_equal(w.err, 0);
    assert_int_equal(ex_json_parse((char *)b.data, b.len, &v, err, sizeof err), 0);
    cp_buf_free(&b);
    return v;
}

static const ex_jval *child(const ex_jval *node, const char *name)
{
    const ex_jval *kids = ex_json_get(node, "children");
    for (size_t i = 0; kids && i < kids->n; i++)
        if (strcmp(ex_json_str(&kids->items[i], "name"), name) == 0) return &kids->items[i];
    return NULL;
}

static void test_tree_and_table(void **state)
{
    cp_pprof *pp = known(1000000);
    ex_flame *f = ex_flame_new(0);
    assert_int_equal(ex_flame_add(f, pp, cp_pprof_type_index(pp, "cpu-time"), 0, 1.0), CP_OK);
    assert_true(ex_flame_total(f, 0) == 4e6);
    size_t pruned = 99;
    ex_jval *t = tree_json(f, 1, 0, &pruned);
    assert_int_equal(pruned, 0);
    const ex_jval *m = child(t, "main"), *a = child(m, "a"), *hot = child(a, "hot"), *b = child(m, "b");
    assert_non_null(hot);
    assert_non_null(b);
    assert_true(ex_json_num(m, "total", 0) == 4e6 && ex_json_num(m, "self", -1) == 0);
    assert_true(ex_json_num(hot, "self", 0) == 3e6 && ex_json_num(b, "total", 0) == 1e6);
    assert_string_equal(ex_json_str(hot, "file"), "app.py");
    /* children sorted by name */
    assert_string_equal(ex_json_str(&ex_json_get(m, "children")->items[0], "name"), "a");
    ex_json_free(t);
    assert_true(row(f, "hot")->self[0] == 3e6 && row(f, "main")->total[0] == 4e6 && row(f, "main")->self[0] == 0);
    /* pruning: b (25%) goes below a 30% threshold, its value stays in main */
    t = tree_json(f, 1, 0.3, &pruned);
    assert_int_equal(pruned, 1);
    assert_null(child(child(t, "main"), "b"));
    assert_true(ex_json_num(child(t, "main"), "total", 0) == 4e6);
    ex_json_free(t);
    ex_flame_free(f);
    cp_pprof_free(pp);
}

static void test_recursion_counted_once(void **state)
{
    cp_profile *p = fx_new("cpu-time");
    fx_add(p, "main;rec;rec;rec;leaf", (int64_t[]){10}, 1, NULL);
    cp_pprof *pp = fx_decoded(p, 1000000000);
    ex_flame *f = ex_flame_new(0);
    assert_int_equal(ex_flame_add(f, pp, 0, 0, 1.0), CP_OK);
    assert_true(row(f, "rec")->total[0] == 10); /* not 30 */
    assert_true(row(f, "rec")->self[0] == 0 && row(f, "leaf")->self[0] == 10);
    assert_int_equal(ex_flame_node_count(f), 6); /* root main rec rec rec leaf */
    ex_flame_free(f);
    cp_pprof_free(pp);
}

static void test_aggregate_and_compare(void **state)
{
    cp_pprof *x = known(1), *y = known(2);
    ex_flame *agg = ex_flame_new(0), *cmp = ex_flame_new(0);
    assert_int_equal(ex_flame_add(agg, x, 0, 0, 1.0), CP_OK);
    assert_int_equal(ex_flame_add(agg, y, 0, 0, 1.0), CP_OK);
    assert_true(ex_flame_total(agg, 0) == 12 && row(agg, "hot")->self[0] == 9);
    assert_int_equal(ex_flame_add(cmp, x, 0, 0, 1.0), CP_OK);
    assert_int_equal(ex_flame_add(cmp, y, 0, 1, 1.0), CP_OK);
    assert_true(row(cmp, "hot")->self[0] == 3 && row(cmp, "hot")->self[1] == 6);
    size_t pruned;
    ex_jval *t = tree_json(cmp, 2, 0, &pruned);
    const ex_jval *b = child(child(t, "main"), "b");
    assert_true(ex_json_num(b, "a", 0) == 1 && ex_json_num(b, "b", 0) == 2);
    ex_json_free(t);
    ex_flame_free(agg);
    ex_flame_free(cmp);
    cp_pprof_free(x);
    cp_pprof_free(y);
}

static void test_node_limit_keeps_totals(void **state)
{
    cp_profile *p = fx_new("cpu-time");
    char stack[64];
    for (int i = 0; i < 50; i++) {
        snprintf(stack, sizeof stack, "main;f%d", i);
        fx_add(p, stack, (int64_t[]){1}, 0, NULL);
    }
    cp_pprof *pp = fx_decoded(p, 1000000000);
    ex_flame *f = ex_flame_new(10);
    assert_int_equal(ex_flame_add(f, pp, 0, 0, 1.0), CP_OK);
    assert_true(ex_flame_total(f, 0) == 50);
    assert_non_null(row(f, "[node limit reached]"));
    assert_true(ex_flame_node_count(f) <= 11);
    ex_flame_free(f);
    cp_pprof_free(pp);
}

/* A 300-frame stack (deeper than any JSON nesting a naive writer allows)
 * writes as one tree. */
/* 5,000 and 20,000 frames (deeper than FLAME_MAX_DEPTH, 16384): the tree
 * writes, self time is on the true leaf, and only root-most frames are
 * folded into one "<N root-most frames omitted>" frame. */
static void test_very_deep_stacks(void **state)
{
    const size_t depths[] = {5000, 20000};
    for (int d = 0; d < 2; d++) {
        cp_buf raw, b;
        cp_pprof *pp;
        fx_deep_pprof(depths[d], 777, &raw);
        assert_int_equal(cp_pprof_decode(raw.data, raw.len, 0, &pp), CP_OK);
        ex_flame *f = ex_flame_new(0);
        assert_int_equal(ex_flame_add(f, pp, 0, 0, 1.0), CP_OK);
        size_t n, pruned;
        const ex_frow *rows = ex_flame_rows(f, &n);
        bool leaf = false;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(rows[i].name, "leaf_fn")) leaf = rows[i].self[0] == 777;
        assert_true(leaf);
        ex_jw w;
        cp_buf_init(&b, 0);
        ex_jw_init(&w, &b);
        ex_flame_write_tree(f, &w, 1, 0, 100000, &pruned);
        assert_int_equal(w.err, 0);
        assert_int_equal(ex_buf_cstr(&b), 0);
        assert_non_null(strstr((char *)b.data, "\"name\":\"leaf_fn\",\"file\":\"deep.py\",\"self\":777"));
        if (depths[d] > 16384) assert_non_null(strstr((char *)b.data, "\"<3617 root-most frames omitted>\""));
        else assert_null(strstr((char *)b.data, "omitted"));
        cp_buf_free(&b);
        cp_buf_free(&raw);
        ex_flame_free(f);
        cp_pprof_free(pp);
    }
}

/* One profile for the viewer features: recursion in handler, two threads
 * of workers and a GC thread, known lines. */
static cp_pprof *viewer_profile(void)
{
    cp_profile *p = fx_new("cpu-time");
    fx_add(p, "main;handler@10;parse@20", (int64_t[]){30}, 1, "worker-1");
    fx_add(p, "main;handler@11;render@30", (int64_t[]){10}, 2, "worker-2");
    fx_add(p, "main;handler@10;handler@12;parse@20", (int64_t[]){5}, 1, "worker-1");
    fx_add(p, "gc@5", (int64_t[]){7}, 3, "gc");
    return fx_decoded(p, 1000000000);
}

static double filtered_total(const cp_pprof *pp, const char *focus, const char *ignore, const char *hide,
                             const char *label_key, const char *label_re)
{
    regex_t re[4];
    ex_flame_filter flt = {0};
    if (focus) { regcomp(&re[0], focus, REG_EXTENDED | REG_NOSUB); flt.focus = &re[0]; }
    if (ignore) { regcomp(&re[1], ignore, REG_EXTENDED | REG_NOSUB); flt.ignore = &re[1]; }
    if (hide) { regcomp(&re[2], hide, REG_EXTENDED | REG_NOSUB); flt.hide = &re[2]; }
    if (label_key) {
        regcomp(&re[3], label_re, REG_EXTENDED | REG_NOSUB);
        flt.labels[0].key = label_key;
        flt.labels[0].re = &re[3];
        flt.nlabels = 1;
    }
    ex_flame *f = ex_flame_new(0);
    assert_int_equal(ex_flame_add_filtered(f, pp, 0, 0, 1.0, &flt), CP_OK);
    double t = ex_flame_total(f, 0);
    if (hide) { /* hidden frames are gone, their callees moved up */
        size_t n;
        const ex_frow *rows = ex_flame_rows(f, &n);
        for (size_t i = 0; i < n; i++) assert_true(strcmp(rows[i].name, "handler") || rows[i].total[0] == 0);
    }
    ex_flame_free(f);
    for (int i = 0; i < 4; i++)
        if ((i == 0 && focus) || (i == 1 && ignore) || (i == 2 && hide) || (i == 3 && label_key)) regfree(&re[i]);
    return t;
}

static void test_focus_ignore_hide_labels(void **state)
{
    cp_pprof *pp = viewer_profile();
    assert_true(filtered_total(pp, NULL, NULL, NULL, NULL, NULL) == 52);
    assert_true(filtered_total(pp, "^parse$", NULL, NULL, NULL, NULL) == 35);
    assert_true(filtered_total(pp, NULL, "render", NULL, NULL, NULL) == 42);
    assert_true(filtered_total(pp, NULL, NULL, "^handler$", NULL, NULL) == 52);
    assert_true(filtered_total(pp, NULL, NULL, NULL, "thread name", "^worker-1$") == 35);
    assert_true(filtered_total(pp, NULL, NULL, NULL, "thread name", "worker") == 45);
    assert_true(filtered_total(pp, "handler", "render", NULL, "thread id", "^1$") == 35);
    cp_buf b;
    ex_jw w;
    cp_buf_init(&b, 0);
    ex_jw_init(&w, &b);
    assert_int_equal(ex_labels_write(pp, &w, 50), CP_OK);
    assert_int_equal(ex_buf_cstr(&b), 0);
    assert_non_null(strstr((char *)b.data, "{\"key\":\"thread name\",\"distinct\":3,\"values\":[{\"value\":\"worker-1\",\"samples\":2}"));
    cp_buf_free(&b);
    cp_pprof_free(pp);
}

static const ex_frow *row_named(const ex_flame *f, const char *name)
{
    size_t n;
    const ex_frow *rows = ex_flame_rows(f, &n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].name, name)) return &rows[i];
    return NULL;
}

static void test_sandwich_and_lines(void **state)
{
    cp_pprof *pp = viewer_profile();
    ex_flame *up = ex_flame_new(0), *down = ex_flame_new(0);
    assert_int_equal(ex_flame_sandwich(up, down, pp, 0, "handler", "app.py", NULL), CP_OK);
    assert_true(ex_flame_total(down, 0) == 45 && ex_flame_total(up, 0) == 45);
    assert_true(row_named(down, "parse")->total[0] == 35);   /* 30 direct + 5 under the recursion */
    assert_true(row_named(down, "render")->total[0] == 10);
    assert_true(row_named(up, "main")->total[0] == 45);      /* the only caller */
    assert_null(row_named(up, "parse"));
    ex_flame_free(up);
    ex_flame_free(down);
    ex_line_cost *lines;
    size_t n;
    assert_int_equal(ex_flame_lines(pp, 0, "handler", "app.py", NULL, &lines, &n), CP_OK);
    assert_int_equal(n, 3);
    assert_true(lines[0].line == 10 && lines[0].total == 35 && lines[0].self == 0);
    assert_true(lines[1].line == 11 && lines[1].total == 10);
    assert_true(lines[2].line == 12 && lines[2].total == 5);
    free(lines);
    assert_int_equal(ex_flame_lines(pp, 0, "parse", "app.py", NULL, &lines, &n), CP_OK);
    assert_true(n == 1 && lines[0].line == 20 && lines[0].self == 35 && lines[0].total == 35);
    free(lines);
    cp_pprof_free(pp);
}

/* Frame kinds travel as mapping file names: the tree and the table say
 * them, and merging attachments keeps them. */
static void test_frame_kinds(void **state)
{
    cp_sample_type st = {"cpu-time", "nanoseconds"};
    cp_profile *p = cp_profile_new(&st, 1, NULL);
    cp_frame fr[3] = {{.name = "longest_match", .filename = "deflate.c", .kind = CP_FRAME_NATIVE, .module = "/usr/lib/libz.so.1"},
                      {.name = "compress", .filename = "app.py", .line = 3, .kind = CP_FRAME_PYTHON},
                      {.name = "<module>", .filename = "app.py", .line = 1, .kind = CP_FRAME_PYTHON}};
    assert_int_equal(cp_profile_add(p, fr, 3, (int64_t[]){9}, NULL, 0), CP_OK);
    cp_buf enc, merged;
    fx_encode(p, fx_now_ns(), 1000000000, &enc);
    cp_profile_free(p);
    cp_pprof *one;
    assert_int_equal(cp_pprof_decode(enc.data, enc.len, 0, &one), CP_OK);
    ex_merge_part parts[2] = {{"a.pprof", one}, {"b.pprof", one}};
    cp_buf_init(&merged, 0);
    assert_int_equal(ex_pprof_merge(parts, 2, &merged), CP_OK);
    cp_pprof *both;
    assert_int_equal(cp_pprof_decode(merged.data, merged.len, 0, &both), CP_OK);
    const cp_pprof *pps[2] = {one, both};
    for (int i = 0; i < 2; i++) {
        ex_flame *f = ex_flame_new(0);
        assert_int_equal(ex_flame_add(f, pps[i], 0, 0, 1.0), CP_OK);
        cp_buf b;
        ex_jw w;
        size_t pruned;
        cp_buf_init(&b, 0);
        ex_jw_init(&w, &b);
        ex_flame_write_tree(f, &w, 1, 0, 1000, &pruned);
        assert_int_equal(ex_buf_cstr(&b), 0);
        assert_non_null(strstr((char *)b.data, "\"name\":\"compress\",\"file\":\"app.py\",\"kind\":\"[python]\""));
        assert_non_null(strstr((char *)b.data, "\"name\":\"longest_match\",\"file\":\"deflate.c\",\"kind\":\"/usr/lib/libz.so.1\""));
        cp_buf_free(&b);
        ex_flame_free(f);
    }
    cp_pprof_free(both);
    cp_pprof_free(one);
    cp_buf_free(&enc);
    cp_buf_free(&merged);
}

/* Samples with end_timestamp_ns labels (dd-trace): the time-ordered view
 * buckets them, and a time window filters the flame graph. */
static void test_timeline(void **state)
{
    cp_sample_type st = {"wall", "nanoseconds"};
    cp_profile *p = cp_profile_new(&st, 1, NULL);
    const int64_t t0 = 1796000000000000000LL;
    for (int i = 0; i < 4; i++) {
        cp_frame fr = {.name = i < 2 ? "phase_one" : "phase_two", .filename = "t.js"};
        cp_label l = {.key = "end_timestamp_ns", .num = t0 + i * 1000000000LL};
        assert_int_equal(cp_profile_add(p, &fr, 1, (int64_t[]){i + 1}, &l, 1), CP_OK);
    }
    cp_pprof *pp = fx_decoded(p, 4000000000LL);
    double *v;
    int64_t from, width;
    assert_int_equal(ex_flame_timeline(pp, 0, 2, NULL, &v, &from, &width), CP_OK);
    assert_true(from == t0 && v[0] == 3 && v[1] == 7);
    free(v);
    ex_flame_filter flt = {.has_time = true, .time_from = t0, .time_to = t0 + 1500000000LL};
    ex_flame *f = ex_flame_new(0);
    assert_int_equal(ex_flame_add_filtered(f, pp, 0, 0, 1.0, &flt), CP_OK);
    assert_true(ex_flame_total(f, 0) == 3);
    const ex_frow *two = row_named(f, "phase_two"); /* interned, but no value: not in the table */
    assert_true(!two || two->total[0] == 0);
    ex_flame_free(f);
    cp_pprof_free(pp);
}

static void test_deep_stack_writes(void **state)
{
    char stack[4096] = "main";
    for (int i = 0; i < 300; i++) strcat(stack, ";d");
    strcat(stack, ";bottom");
    cp_profile *p = fx_new("cpu-time");
    fx_add(p, stack, (int64_t[]){5}, 1, NULL);
    cp_pprof *pp = fx_decoded(p, 1000000000);
    ex_flame *f = ex_flame_new(0);
    assert_int_equal(ex_flame_add(f, pp, 0, 0, 1.0), CP_OK);
    cp_buf b;
    ex_jw w;
    size_t pruned;
    cp_buf_init(&b, 0);
    ex_jw_init(&w, &b);
    ex_flame_write_tree(f, &w, 1, 0, 100000, &pruned);
    assert_int_equal(w.err, 0);
    assert_int_equal(ex_buf_cstr(&b), 0);
    /* the core keeps the leaf-most max_frames (64) frames: "bottom" is there */
    assert_non_null(strstr((char *)b.data, "\"name\":\"bottom\""));
    assert_int_equal(w.depth, 0);
    cp_buf_free(&b);
    ex_flame_free(f);
    cp_pprof_free(pp);
}

static void test_measures(void **state)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples,wall-time,wall-samples,alloc-space,alloc-samples,heap-space");
    /* 3 s of CPU over a 2 s profile = 1.5 cores; 4 MiB over 2 s = 2 MiB/s */
    fx_add(p, "main;x", (int64_t[]){2000000000, 200, 1, 1, 4 << 20, 4, 1000}, 1, NULL);
    fx_add(p, "main;y", (int64_t[]){1000000000, 100, 1, 1, 0, 0, 24}, 2, NULL);
    fx_add(p, "main;z", (int64_t[]){0, 0, 1, 1, 0, 0, 0}, 2, NULL);
    cp_pprof *pp = fx_decoded(p, 2000000000);
    ex_measures m;
    assert_int_equal(ex_measures_compute(pp, 2000000000, &m), CP_OK);
    assert_true(fabs(m.cpu_cores - 1.5) < 1e-9);
    assert_true(fabs(m.alloc_rate - 2.0 * 1024 * 1024) < 1e-3);
    assert_true(m.live_heap == 1024);
    assert_true(m.threads == 2);
    assert_int_equal(m.sample_count, 300 + 3 + 4);
    assert_string_equal(m.default_type, "cpu-time");
    assert_non_null(strstr(m.types_json, "{\"type\":\"cpu-time\",\"unit\":\"nanoseconds\",\"total\":3000000000}"));
    ex_measures_free(&m);
    /* a profile without cpu-time has no CPU measure, not 0 */
    assert_int_equal(ex_measures_compute(pp, 0, &m), CP_OK);
    assert_true(isnan(m.cpu_cores) && isnan(m.alloc_rate));
    ex_measures_free(&m);
    cp_pprof_free(pp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_and_table),       cmocka_unit_test(test_recursion_counted_once),
        cmocka_unit_test(test_aggregate_and_compare), cmocka_unit_test(test_node_limit_keeps_totals),
        cmocka_unit_test(test_deep_stack_writes),  cmocka_unit_test(test_very_deep_stacks),
        cmocka_unit_test(test_focus_ignore_hide_labels), cmocka_unit_test(test_sandwich_and_lines),
        cmocka_unit_test(test_frame_kinds),        cmocka_unit_test(test_timeline),  cmocka_unit_test(test_measures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
