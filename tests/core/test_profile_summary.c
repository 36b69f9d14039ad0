/*
 * test_profile_summary.c — the run-wide top-functions summary: self values
 * (leaf frames only) summed across profiles with different column
 * layouts, ranking, units, the cap with "[overflow]", reset.
 */
#include "test_profile_util.h"

#include "summary.h"

static const int cpu_map[CP_V__COUNT] = {0, 1, -1, -1, -1, -1, -1, -1, -1, -1, -1};

static void add(cp_profile *p, const char *leaf, const char *caller, int64_t ns)
{
    cp_frame f[2] = {{leaf, NULL, "s.py", 1}, {caller, NULL, "s.py", 2}};
    int64_t v[2] = {ns, 1};
    assert_int_equal(cp_profile_add(p, f, 2, v, NULL, 0), CP_OK);
}

static void test_top_across_profiles(void **state)
{
    cp__summary_reset();
    cp_profile *p1 = tp_new_cpu(NULL), *p2 = tp_new_cpu(NULL);
    add(p1, "hot", "main", 300000000);
    add(p1, "warm", "main", 100000000);
    add(p1, "main", "start", 50000000); /* main's self time only */
    add(p2, "warm", "other", 250000000);
    assert_int_equal(cp__summary_merge(p1, cpu_map, CP_V__COUNT), CP_OK);
    assert_int_equal(cp__summary_merge(p2, cpu_map, CP_V__COUNT), CP_OK);
    char *top = cp_summary_top(CP_V_CPU_TIME, 2);
    assert_non_null(top);
    /* warm: 350 ms, hot: 300 ms; main (50 ms) is beyond n = 2 */
    char *w = strstr(top, "warm"), *h = strstr(top, "hot");
    assert_non_null(w);
    assert_non_null(h);
    assert_true(w < h);
    assert_non_null(strstr(top, "350.0 ms"));
    assert_non_null(strstr(top, "50.0%")); /* 350 of 700 */
    assert_non_null(strstr(top, "total 700.0 ms"));
    assert_null(strstr(top, "main"));
    free(top);
    top = cp_summary_top(CP_V_CPU_SAMPLES, 10);
    assert_non_null(strstr(top, "main"));
    free(top);
    top = cp_summary_top(CP_V_WALL_TIME, 10);
    assert_non_null(strstr(top, "no wall-time"));
    free(top);
    cp_profile_free(p1);
    cp_profile_free(p2);
    cp__summary_reset();
}

/* A profile whose columns are laid out differently (alloc only). */
static void test_column_mapping(void **state)
{
    cp__summary_reset();
    static const cp_sample_type t[2] = {{"alloc-samples", "count"}, {"alloc-space", "bytes"}};
    cp_profile *p = cp_profile_new(t, 2, NULL);
    cp_frame f = {"alloc_fn", NULL, NULL, 0};
    int64_t v[2] = {2, 3 << 20};
    assert_int_equal(cp_profile_add(p, &f, 1, v, NULL, 0), CP_OK);
    int map[CP_V__COUNT];
    for (int i = 0; i < CP_V__COUNT; i++)
        map[i] = -1;
    map[CP_V_ALLOC_SPACE] = 1;
    map[CP_V_ALLOC_SAMPLES] = 0;
    map[CP_V_CPU_TIME] = 7; /* out of range: ignored */
    assert_int_equal(cp__summary_merge(p, map, CP_V__COUNT), CP_OK);
    char *top = cp_summary_top(CP_V_ALLOC_SPACE, 5);
    assert_non_null(strstr(top, "3.0 MiB"));
    assert_non_null(strstr(top, "alloc_fn"));
    free(top);
    top = cp_summary_top(CP_V_CPU_TIME, 5);
    assert_non_null(strstr(top, "no cpu-time"));
    free(top);
    cp_profile_free(p);
    cp__summary_reset();
}

static void test_cap_overflow(void **state)
{
    cp__summary_reset();
    cp__summary_set_max_functions(4);
    cp_profile *p = tp_new_cpu(NULL);
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        add(p, name, "main", 1000);
    }
    assert_int_equal(cp__summary_merge(p, cpu_map, CP_V__COUNT), CP_OK);
    char *top = cp_summary_top(CP_V_CPU_TIME, 10);
    assert_non_null(strstr(top, "[overflow]"));
    assert_non_null(strstr(top, "7.0 us")); /* 3 kept + 7 in overflow */
    assert_non_null(strstr(top, "total 10.0 us, 4 functions"));
    free(top);
    cp_profile_free(p);
    cp__summary_set_max_functions(65536);
    cp__summary_reset();
}

static void test_bad_args(void **state)
{
    assert_null(cp_summary_top(-1, 5));
    assert_null(cp_summary_top(CP_V__COUNT, 5));
    assert_null(cp_summary_top(0, 0));
    assert_int_equal(cp__summary_merge(NULL, cpu_map, 2), CP_EINVAL);
    cp_profile *p = tp_new_cpu(NULL);
    assert_int_equal(cp__summary_merge(p, NULL, 2), CP_EINVAL);
    assert_int_equal(cp__summary_merge(p, cpu_map, CP_V__COUNT + 1), CP_EINVAL);
    cp_profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_across_profiles),
        cmocka_unit_test(test_column_mapping),
        cmocka_unit_test(test_cap_overflow),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
