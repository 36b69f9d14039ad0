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
#include <cmocka.h>

#include "fixtures.h"
#include "flame.h"
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
        cmocka_unit_test(test_deep_stack_writes),  cmocka_unit_test(test_measures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
