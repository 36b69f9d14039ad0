/*
 * test_profile_alloc.c — allocation-failure injection ("torture") across
 * profile building, encoding, decoding and the summary: the n-th
 * allocation fails, for every n until a run completes without reaching
 * it. Each run must end in a clean error code or a correct result; the
 * ASan build checks there is no crash and no leak.
 */
#include "test_profile_util.h"

#include "alloc.h"
#include "summary.h"

/* Add 40 samples (some truncated, some over the sample cap); returns the
 * number of cpu-samples that the profile must account for. */
static int64_t add_all(cp_profile *p)
{
    int64_t expected = 0;
    char names[17][16];
    cp_frame f[17];
    for (int i = 0; i < 17; i++) {
        snprintf(names[i], sizeof names[i], "fn%d", i);
        f[i] = (cp_frame){names[i], NULL, "x.py", i};
    }
    for (int i = 0; i < 40; i++) {
        cp_label l[2] = {{"thread id", NULL, i % 3, NULL}, {"thread name", "t", 0, NULL}};
        int64_t v[2] = {i + 1, 1};
        cp_profile_stats before, after;
        cp_profile_stats_get(p, &before);
        int rc = cp_profile_add(p, f + (i % 5), (size_t)(i % 12) + 1, v, l, 2);
        cp_profile_stats_get(p, &after);
        assert_true(rc == CP_OK || rc == CP_EFULL || rc == CP_ENOMEM);
        /* a rejected add is accounted for iff it reached [overflow] */
        if (rc == CP_OK || after.overflowed > before.overflowed)
            expected++;
        else
            assert_int_equal(after.overflowed, before.overflowed);
    }
    return expected;
}

/* Encode and decode p; when both succeed, the totals must be exact. */
static void encode_decode_check(const cp_profile *p, int64_t expected)
{
    cp_buf b;
    cp_buf_init(&b, 0);
    int rc = cp_profile_encode(p, true, &b);
    assert_true(rc == CP_OK || rc == CP_ENOMEM);
    if (rc == CP_OK) {
        cp_pprof *pp = NULL;
        rc = cp_pprof_decode(b.data, b.len, 0, &pp);
        assert_true(rc == CP_OK || rc == CP_ENOMEM);
        if (rc == CP_OK)
            assert_int_equal(tp_total(pp, 1), expected);
        else
            assert_null(pp);
        cp_pprof_free(pp);
    } else {
        assert_int_equal(b.len, 0);
    }
    cp_buf_free(&b);
}

static void merge_and_print(const cp_profile *p)
{
    static const int map[CP_V__COUNT] = {0, 1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    int rc = cp__summary_merge(p, map, CP_V__COUNT);
    assert_true(rc == CP_OK || rc == CP_ENOMEM);
    char *top = cp_summary_top(CP_V_CPU_TIME, 5);
    free(top); /* NULL when out of memory: fine */
    cp__summary_reset();
}

static void scenario(void)
{
    cp_limits lim = {.max_frames = 8, .max_samples = 20};
    cp_profile *p = cp_profile_new(tp_cpu_types, 2, &lim);
    if (!p)
        return;
    int64_t expected = add_all(p);
    cp_sample_type pt = {"cpu", "nanoseconds"};
    cp_profile_set_period(p, &pt, 10);
    int rc = cp_profile_add_comment(p, "torture");
    assert_true(rc == CP_OK || rc == CP_ENOMEM);
    encode_decode_check(p, expected);
    merge_and_print(p);
    cp_profile_free(p);
}

/* The id path: a dictionary, then every add twice (the second round hits
 * the id-stack cache), with the same accounting as add_all. */
static void scenario_ids(void)
{
    cp_limits lim = {.max_frames = 8, .max_samples = 20};
    cp_frame_dict *d = cp_frame_dict_new(0, 0);
    cp_profile *p = d ? cp_profile_new(tp_cpu_types, 2, &lim) : NULL;
    char names[17][16];
    uint32_t ids[17];
    for (int i = 0; p && i < 17; i++) {
        snprintf(names[i], sizeof names[i], "fn%d", i);
        cp_frame f = {names[i], NULL, "x.py", i, CP_FRAME_PYTHON, NULL};
        int rc = cp_frame_dict_intern(d, &f, &ids[i]);
        assert_true(rc == CP_OK || rc == CP_ENOMEM);
        assert_true(ids[i] >= 1); /* on failure: the "full" pseudo-frame */
    }
    int64_t expected = 0;
    for (int i = 0; p && i < 80; i++) {
        cp_label l[2] = {{"thread id", NULL, i % 3, NULL}, {"thread name", "t", 0, NULL}};
        int64_t v[2] = {i + 1, 1};
        cp_profile_stats before, after;
        cp_profile_stats_get(p, &before);
        int rc = cp_profile_add_ids(p, d, ids + (i % 5), (size_t)(i % 12) + 1, v, l, 2);
        cp_profile_stats_get(p, &after);
        assert_true(rc == CP_OK || rc == CP_EFULL || rc == CP_ENOMEM);
        if (rc == CP_OK || after.overflowed > before.overflowed)
            expected++;
    }
    if (p)
        encode_decode_check(p, expected);
    cp_profile_free(p);
    cp_frame_dict_free(d);
}

/* Run fn with the n-th allocation failing, for n = 1, 2, ... until a run
 * reaches no injected failure. Returns how many runs had one. */
static int torture(void (*fn)(void))
{
    int n;
    for (n = 1; n < 100000; n++) {
        unsigned long before = cp__alloc_injected();
        cp__alloc_fail_after(n);
        fn();
        cp__alloc_fail_after(-1);
        if (cp__alloc_injected() == before)
            break;
    }
    return n - 1;
}

static void test_torture_profile(void **state)
{
    int runs = torture(scenario);
    print_message("torture: %d runs with an injected failure\n", runs);
    assert_true(runs > 50); /* the scenario really allocates that much */
}

static void test_torture_profile_ids(void **state)
{
    int runs = torture(scenario_ids);
    print_message("torture (ids): %d runs with an injected failure\n", runs);
    assert_true(runs > 30);
}

static uint8_t *g_encoded;
static size_t g_encoded_len;
static int64_t g_expected;

static void decode_only(void)
{
    cp_pprof *pp = NULL;
    int rc = cp_pprof_decode(g_encoded, g_encoded_len, 0, &pp);
    assert_true(rc == CP_OK || rc == CP_ENOMEM);
    if (rc == CP_OK)
        assert_int_equal(tp_total(pp, 1), g_expected);
    cp_pprof_free(pp);
}

static void test_torture_decode(void **state)
{
    cp_profile *p = tp_new_cpu(NULL);
    g_expected = add_all(p);
    cp_buf b;
    cp_buf_init(&b, 0);
    assert_int_equal(cp_profile_encode(p, true, &b), CP_OK);
    g_encoded = b.data;
    g_encoded_len = b.len;
    assert_true(torture(decode_only) >= 3); /* inflate state, buffer, arena */
    cp_buf_free(&b);
    cp_profile_free(p);
}

static void test_hook_semantics(void **state)
{
    unsigned long before = cp__alloc_injected();
    cp__alloc_fail_after(2);
    void *a = cp__malloc(8);
    void *b = cp__malloc(8); /* the 2nd fails */
    void *c = cp__malloc(8); /* later ones succeed again */
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c);
    assert_int_equal(cp__alloc_injected(), before + 1);
    cp__alloc_fail_after(0); /* 0 = the very next */
    assert_null(cp__strdup("x"));
    cp__alloc_fail_after(-1);
    char *d = cp__strndup("abcdef", 3);
    assert_string_equal(d, "abc");
    assert_null(cp__strdup(NULL));
    assert_null(cp__calloc(SIZE_MAX / 2, 4)); /* overflow */
    void *r = cp__realloc(a, 16);
    assert_non_null(r);
    cp__alloc_fail_after(1);
    assert_null(cp__realloc(r, 32)); /* r stays valid */
    cp__free(r);
    cp__free(c);
    cp__free(d);
    cp__free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hook_semantics),
        cmocka_unit_test(test_torture_profile),
        cmocka_unit_test(test_torture_profile_ids),
        cmocka_unit_test(test_torture_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
