/*
 * test_profile_agg.c — aggregation semantics of cp_profile: interning and
 * 1-based ids in insertion order, equal stack+labels aggregating, each cap
 * overflowing into a counted "[overflow]" sample, stack truncation, label
 * types, argument checks. Checked through the decoded encoding, i.e. what
 * a reader of the pprof really sees.
 */
#include "test_profile_util.h"

static const int64_t one[2] = {10, 1};

static void test_interning_ids(void **state)
{
    cp_profile *p = tp_new_cpu(NULL);
    cp_frame a[3] = {{"leaf", NULL, "m.py", 10}, {"mid", NULL, "m.py", 20}, {"main", NULL, "m.py", 1}};
    cp_frame b[2] = {{"leaf", NULL, "m.py", 11}, {"main", NULL, "m.py", 1}};
    assert_int_equal(cp_profile_add(p, a, 3, one, NULL, 0), CP_OK);
    assert_int_equal(cp_profile_add(p, b, 2, one, NULL, 0), CP_OK);
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    assert_int_equal(st.functions, 3);  /* leaf, mid, main: line is not part of a function */
    assert_int_equal(st.locations, 4);  /* leaf:10 mid:20 main:1 leaf:11 */
    assert_int_equal(st.samples, 2);
    assert_int_equal(st.adds, 2);
    cp_pprof *pp = tp_roundtrip(p, true);
    assert_string_equal(pp->strings[0], "");
    for (size_t i = 0; i < pp->n_locations; i++)
        assert_int_equal(pp->locations[i].id, i + 1);
    for (size_t i = 0; i < pp->n_functions; i++)
        assert_int_equal(pp->functions[i].id, i + 1);
    /* insertion order: leaf=1 mid=2 main=3; location 4 = leaf:11 */
    assert_string_equal(pp->functions[0].name, "leaf");
    assert_string_equal(pp->functions[2].name, "main");
    assert_int_equal(pp->locations[3].lines[0].function_id, 1);
    assert_int_equal(pp->locations[3].lines[0].line, 11);
    assert_int_equal(pp->samples[1].location_ids[0], 4);
    assert_int_equal(pp->samples[1].location_ids[1], 3);
    /* each string appears once */
    for (size_t i = 0; i < pp->n_strings; i++)
        for (size_t j = i + 1; j < pp->n_strings; j++)
            assert_string_not_equal(pp->strings[i], pp->strings[j]);
    cp_pprof_free(pp);
    cp_profile_free(p);
}

static void test_system_name_and_file(void **state)
{
    cp_profile *p = tp_new_cpu(NULL);
    cp_frame f[2] = {{"C.m", "Lpkg/C;m()V", "C.java", 5}, {"noname", NULL, NULL, 0}};
    assert_int_equal(cp_profile_add(p, f, 2, one, NULL, 0), CP_OK);
    cp_pprof *pp = tp_roundtrip(p, false);
    const cp_pprof_function *fn = cp_pprof_function_by_id(pp, 1);
    assert_string_equal(fn->system_name, "Lpkg/C;m()V");
    assert_string_equal(fn->filename, "C.java");
    fn = cp_pprof_function_by_id(pp, 2);
    assert_string_equal(fn->system_name, "noname"); /* NULL = name */
    assert_string_equal(fn->filename, "");
    cp_pprof_free(pp);
    cp_profile_free(p);
}

/* Front ends reuse their string buffers: the same pointers with new text
 * must not hit the frame cache, and equal text through other pointers
 * must still intern to the same location. */
static void test_reused_buffers(void **state)
{
    cp_profile *p = tp_new_cpu(NULL);
    char name[16], file[16];
    cp_frame f = {name, NULL, file, 1};
    strcpy(name, "alpha");
    strcpy(file, "a.py");
    assert_int_equal(cp_profile_add(p, &f, 1, one, NULL, 0), CP_OK);
    assert_int_equal(cp_profile_add(p, &f, 1, one, NULL, 0), CP_OK); /* cached */
    strcpy(name, "beta");
    assert_int_equal(cp_profile_add(p, &f, 1, one, NULL, 0), CP_OK);
    strcpy(file, "b.py");
    assert_int_equal(cp_profile_add(p, &f, 1, one, NULL, 0), CP_OK);
    f.system_name = "beta_sys";
    assert_int_equal(cp_profile_add(p, &f, 1, one, NULL, 0), CP_OK);
    f.line = 2;
    assert_int_equal(cp_profile_add(p, &f, 1, one, NULL, 0), CP_OK);
    cp_frame other = {"alpha", NULL, "a.py", 1}; /* literal pointers */
    assert_int_equal(cp_profile_add(p, &other, 1, one, NULL, 0), CP_OK);
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    assert_int_equal(st.functions, 4); /* alpha@a, beta@a, beta@b, beta@b/beta_sys */
    assert_int_equal(st.locations, 5);
    assert_int_equal(st.samples, 5);
    cp_pprof *pp = tp_roundtrip(p, false);
    assert_int_equal(pp->samples[0].values[1], 3); /* alpha twice + literal */
    assert_string_equal(tp_loc_name(pp, pp->samples[1].location_ids[0]), "beta");
    cp_pprof_free(pp);
    cp_profile_free(p);
}

static void test_aggregation(void **state)
{
    cp_profile *p = tp_new_cpu(NULL);
    cp_frame s[2] = {{"a", NULL, "f", 1}, {"b", NULL, "f", 2}};
    cp_label l1[2] = {{"thread id", NULL, 7, NULL}, {"thread name", "main", 0, NULL}};
    cp_label l1_swapped[2] = {l1[1], l1[0]};
    cp_label l2[2] = {{"thread id", NULL, 8, NULL}, {"thread name", "main", 0, NULL}};
    int64_t v[2] = {5, 1};
    assert_int_equal(cp_profile_add(p, s, 2, v, l1, 2), CP_OK);
    assert_int_equal(cp_profile_add(p, s, 2, v, l1_swapped, 2), CP_OK); /* same key */
    assert_int_equal(cp_profile_add(p, s, 2, v, l2, 2), CP_OK);        /* other tid */
    assert_int_equal(cp_profile_add(p, s, 1, v, l1, 2), CP_OK);        /* other stack */
    assert_int_equal(cp_profile_add(p, s, 2, v, NULL, 0), CP_OK);      /* no labels */
    cp_pprof *pp = tp_roundtrip(p, true);
    assert_int_equal(pp->n_samples, 4);
    assert_int_equal(pp->samples[0].values[0], 10);
    assert_int_equal(pp->samples[0].values[1], 2);
    assert_int_equal(pp->samples[1].values[0], 5);
    assert_int_equal(pp->samples[2].nlocs, 1);
    assert_int_equal(pp->samples[3].nlabels, 0);
    assert_int_equal(tp_total(pp, 1), 5);
    cp_pprof_free(pp);
    cp_profile_free(p);
}

static void test_label_types(void **state)
{
    cp_profile *p = tp_new_cpu(NULL);
    cp_frame f = {"x", NULL, NULL, 0};
    cp_label l[3] = {{"thread native id", NULL, 4242, NULL},
                     {"bytes", NULL, -3, "bytes"},
                     {"exception type", "ValueError", 0, NULL}};
    assert_int_equal(cp_profile_add(p, &f, 1, one, l, 3), CP_OK);
    cp_pprof *pp = tp_roundtrip(p, false);
    assert_int_equal(pp->samples[0].nlabels, 3);
    int seen = 0;
    for (size_t i = 0; i < 3; i++) {
        const cp_pprof_label *d = &pp->samples[0].labels[i];
        if (strcmp(d->key, "thread native id") == 0) {
            assert_int_equal(d->num, 4242);
            assert_string_equal(d->str, "");
            assert_string_equal(d->num_unit, "");
            seen |= 1;
        } else if (strcmp(d->key, "bytes") == 0) {
            assert_int_equal(d->num, -3);
            assert_string_equal(d->num_unit, "bytes");
            seen |= 2;
        } else {
            assert_string_equal(d->key, "exception type");
            assert_string_equal(d->str, "ValueError");
            assert_int_equal(d->num, 0);
            seen |= 4;
        }
    }
    assert_int_equal(seen, 7);
    cp_pprof_free(pp);
    cp_profile_free(p);
}

static void make_stack(cp_frame *f, size_t n, const char *prefix, char names[][16])
{
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], 16, "%s%zu", prefix, i);
        f[i] = (cp_frame){names[i], NULL, "t.py", (int64_t)i + 1};
    }
}

static void test_truncation(void **state)
{
    cp_limits lim = {.max_frames = 5};
    cp_profile *p = tp_new_cpu(&lim);
    cp_frame f[12];
    char names[12][16];
    make_stack(f, 12, "fn", names);
    assert_int_equal(cp_profile_add(p, f, 12, one, NULL, 0), CP_OK);
    assert_int_equal(cp_profile_add(p, f, 5, one, NULL, 0), CP_OK); /* exactly max: kept */
    cp_pprof *pp = tp_roundtrip(p, true);
    assert_int_equal(pp->samples[0].nlocs, 5);
    assert_string_equal(tp_loc_name(pp, pp->samples[0].location_ids[0]), "fn0"); /* leaf kept */
    assert_string_equal(tp_loc_name(pp, pp->samples[0].location_ids[3]), "fn3");
    assert_string_equal(tp_loc_name(pp, pp->samples[0].location_ids[4]), "<8 frames omitted>");
    assert_int_equal(pp->samples[1].nlocs, 5);
    assert_string_equal(tp_loc_name(pp, pp->samples[1].location_ids[4]), "fn4");
    cp_pprof_free(pp);
    cp_profile_free(p);
}

static void test_truncation_limits(void **state)
{
    cp_limits lim1 = {.max_frames = 1}, lim_big = {.max_frames = 5000};
    cp_frame f[700];
    static char names[700][16];
    make_stack(f, 700, "g", names);
    cp_profile *p = tp_new_cpu(&lim1);
    assert_int_equal(cp_profile_add(p, f, 3, one, NULL, 0), CP_OK);
    cp_pprof *pp = tp_roundtrip(p, false);
    assert_int_equal(pp->samples[0].nlocs, 1);
    assert_string_equal(tp_loc_name(pp, pp->samples[0].location_ids[0]), "<3 frames omitted>");
    cp_pprof_free(pp);
    cp_profile_free(p);
    p = tp_new_cpu(&lim_big); /* clamped to 599: the intake's limit is 600 */
    assert_int_equal(cp_profile_add(p, f, 700, one, NULL, 0), CP_OK);
    pp = tp_roundtrip(p, false);
    assert_int_equal(pp->samples[0].nlocs, 599);
    assert_string_equal(tp_loc_name(pp, pp->samples[0].location_ids[598]), "<102 frames omitted>");
    cp_pprof_free(pp);
    cp_profile_free(p);
}

/* Add n distinct one-frame stacks named prefix<i>; returns how many were
 * rejected with CP_EFULL. */
static int add_distinct(cp_profile *p, int n, const char *prefix, bool distinct_files)
{
    int full = 0;
    for (int i = 0; i < n; i++) {
        char name[32], file[32];
        snprintf(name, sizeof name, "%s%d", prefix, i);
        snprintf(file, sizeof file, "file%d", distinct_files ? i : 0);
        cp_frame f = {name, NULL, file, 1};
        int rc = cp_profile_add(p, &f, 1, one, NULL, 0);
        assert_true(rc == CP_OK || rc == CP_EFULL);
        full += rc == CP_EFULL;
    }
    return full;
}

/* Fill a profile past one cap and check the [overflow] accounting. */
static void check_cap(const cp_limits *lim, int n, int expect_full)
{
    cp_profile *p = tp_new_cpu(lim);
    int full = add_distinct(p, n, "f", false);
    assert_int_equal(full, expect_full);
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    assert_int_equal(st.overflowed, (uint64_t)expect_full);
    assert_int_equal(st.adds, (uint64_t)n);
    cp_pprof *pp = tp_roundtrip(p, true);
    long o = tp_find_sample(pp, "[overflow]");
    assert_true(o >= 0);
    assert_int_equal(pp->samples[o].values[1], expect_full);
    assert_int_equal(tp_total(pp, 1), n); /* nothing lost */
    assert_int_equal(tp_total(pp, 0), 10 * n);
    cp_pprof_free(pp);
    cp_profile_free(p);
}

static void test_caps(void **state)
{
    /* samples: 10 allowed incl. [overflow] -> 9 real */
    check_cap(&(cp_limits){.max_samples = 10}, 30, 21);
    /* locations / functions: 1 slot kept for [overflow] */
    check_cap(&(cp_limits){.max_locations = 8}, 30, 23);
    check_cap(&(cp_limits){.max_functions = 8}, 30, 23);
    /* strings: "", 2 types, 2 units, "file0", then names; 2 kept for
     * "[overflow]" and its "[pseudo]" mapping: 16 - 6 - 2 = 8 */
    check_cap(&(cp_limits){.max_strings = 16}, 30, 22);
    /* string bytes: the cap (with 20 bytes kept for "[overflow]" and
     * "[pseudo]") holds */
    cp_profile *p = tp_new_cpu(&(cp_limits){.max_string_bytes = 80});
    int full = add_distinct(p, 30, "f", false);
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    assert_true(full > 0 && full < 30);
    assert_int_equal(st.overflowed, (uint64_t)full);
    cp_pprof *pp = tp_roundtrip(p, false);
    size_t bytes = 0;
    for (size_t i = 0; i < pp->n_strings; i++)
        bytes += strlen(pp->strings[i]) + 1;
    assert_true(bytes <= 80);
    assert_int_equal(tp_total(pp, 1), 30);
    cp_pprof_free(pp);
    cp_profile_free(p);
}

/* An existing key still aggregates when the tables are full. */
static void test_full_still_aggregates(void **state)
{
    cp_profile *p = tp_new_cpu(&(cp_limits){.max_samples = 3});
    assert_int_equal(add_distinct(p, 5, "h", false), 3);
    assert_int_equal(add_distinct(p, 2, "h", false), 0); /* h0, h1 exist */
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    assert_int_equal(st.samples, 3);
    assert_int_equal(st.overflowed, 3);
    cp_profile_free(p);
}

static void test_saturation(void **state)
{
    cp_profile *p = tp_new_cpu(NULL);
    cp_frame f = {"big", NULL, NULL, 0};
    int64_t v[2] = {INT64_MAX - 1, 1};
    assert_int_equal(cp_profile_add(p, &f, 1, v, NULL, 0), CP_OK);
    assert_int_equal(cp_profile_add(p, &f, 1, v, NULL, 0), CP_OK);
    cp_pprof *pp = tp_roundtrip(p, false);
    assert_true(pp->samples[0].values[0] == INT64_MAX);
    assert_int_equal(pp->samples[0].values[1], 2);
    cp_pprof_free(pp);
    cp_profile_free(p);
}

static void test_bad_args(void **state)
{
    assert_null(cp_profile_new(NULL, 1, NULL));
    assert_null(cp_profile_new(tp_cpu_types, 0, NULL));
    cp_sample_type bad = {"x", NULL};
    assert_null(cp_profile_new(&bad, 1, NULL));
    cp_profile *p = tp_new_cpu(NULL);
    cp_frame f = {NULL, NULL, NULL, 0};
    cp_label l = {NULL, "v", 0, NULL};
    assert_int_equal(cp_profile_add(NULL, NULL, 0, one, NULL, 0), CP_EINVAL);
    assert_int_equal(cp_profile_add(p, NULL, 0, NULL, NULL, 0), CP_EINVAL);
    assert_int_equal(cp_profile_add(p, NULL, 1, one, NULL, 0), CP_EINVAL);
    assert_int_equal(cp_profile_add(p, &f, 1, one, NULL, 0), CP_EINVAL);
    assert_int_equal(cp_profile_add(p, NULL, 0, one, &l, 1), CP_EINVAL);
    assert_int_equal(cp_profile_add_comment(p, NULL), CP_EINVAL);
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    assert_int_equal(st.adds, 0);
    assert_int_equal(st.samples, 0);
    for (int i = 0; i < 256; i++)
        assert_int_equal(cp_profile_add_comment(p, "c"), CP_OK);
    assert_int_equal(cp_profile_add_comment(p, "c"), CP_EFULL);
    cp_profile_free(p);
    cp_profile_free(NULL);
    cp_profile_set_time(NULL, 1, 2);
    cp_profile_set_period(NULL, NULL, 1);
    cp_profile_stats_get(NULL, &st);
    assert_int_equal(st.samples, 0);
}

/* Kind of the location's mapping, through the decoder. */
static cp_frame_kind loc_kind(const cp_pprof *pp, uint64_t id)
{
    const cp_pprof_location *l = cp_pprof_location_by_id(pp, id);
    assert_non_null(l);
    const cp_pprof_mapping *m = cp_pprof_mapping_by_id(pp, l->mapping_id);
    if (m) {
        assert_string_equal(m->filename, l->mapping_file);
        assert_true(m->has_functions && m->has_filenames && m->has_line_numbers);
    }
    return cp_frame_kind_of_mapping(l->mapping_file);
}

/* Kind and module are part of a location's identity (the frame cache
 * too: the same string pointers with another kind are another frame);
 * synthetic frames are [pseudo]; mappings survive a round trip. */
static void test_frame_kinds_roundtrip(void **state)
{
    cp_profile *p = tp_new_cpu(&(cp_limits){.max_frames = 4, .max_samples = 3});
    const char *name = "run", *file = "x.c";
    cp_frame a[6] = {{name, NULL, file, 5, CP_FRAME_JAVA_COMPILED, NULL},
                     {name, NULL, file, 5, CP_FRAME_JAVA_INLINED, NULL},
                     {name, NULL, file, 5, CP_FRAME_NATIVE, "/usr/lib/libz.so.1"},
                     {name, NULL, file, 5, CP_FRAME_NATIVE, "/usr/lib/libc.so.6"},
                     {name, NULL, file, 5, CP_FRAME_NATIVE, NULL},
                     {name, NULL, file, 5, CP_FRAME_UNSPECIFIED, NULL}};
    for (int rep = 0; rep < 2; rep++) /* twice: the second pass hits the cache */
        for (int i = 0; i < 6; i++)
            assert_int_equal(cp_profile_add(p, &a[i], 1, one, NULL, 0), i < 2 ? CP_OK : CP_EFULL);
    assert_int_equal(cp_profile_add(p, a, 6, one, NULL, 0), CP_EFULL); /* 6 > 4 frames */
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    assert_int_equal(st.samples, 3); /* 2 real + [overflow] */
    cp_profile_free(p);

    p = tp_new_cpu(&(cp_limits){.max_frames = 4});
    for (int rep = 0; rep < 2; rep++)
        for (int i = 0; i < 6; i++)
            assert_int_equal(cp_profile_add(p, &a[i], 1, one, NULL, 0), CP_OK);
    assert_int_equal(cp_profile_add(p, a, 6, one, NULL, 0), CP_OK);
    cp_profile_stats_get(p, &st);
    assert_int_equal(st.locations, 7); /* 6 kinds/modules + "<3 frames omitted>" */
    assert_int_equal(st.functions, 3); /* run (system name "" / "run"), omitted */
    cp_pprof *pp = tp_roundtrip(p, true);
    assert_int_equal(pp->n_mappings, 6); /* compiled, inlined, 2 modules, [native], [pseudo] */
    static const cp_frame_kind want[6] = {CP_FRAME_JAVA_COMPILED, CP_FRAME_JAVA_INLINED,
                                          CP_FRAME_NATIVE, CP_FRAME_NATIVE, CP_FRAME_NATIVE,
                                          CP_FRAME_UNSPECIFIED};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(pp->samples[i].nlocs, 1);
        assert_int_equal(pp->samples[i].values[1], 2);
        assert_int_equal(loc_kind(pp, pp->samples[i].location_ids[0]), want[i]);
    }
    const cp_pprof_location *l = cp_pprof_location_by_id(pp, pp->samples[2].location_ids[0]);
    assert_string_equal(l->mapping_file, "/usr/lib/libz.so.1");
    l = cp_pprof_location_by_id(pp, pp->samples[4].location_ids[0]);
    assert_string_equal(l->mapping_file, "[native]");
    l = cp_pprof_location_by_id(pp, pp->samples[5].location_ids[0]);
    assert_int_equal(l->mapping_id, 0);
    assert_string_equal(l->mapping_file, "");
    const cp_pprof_sample *t = &pp->samples[6];
    assert_int_equal(t->nlocs, 4);
    assert_string_equal(tp_loc_name(pp, t->location_ids[3]), "<3 frames omitted>");
    assert_int_equal(loc_kind(pp, t->location_ids[3]), CP_FRAME_PSEUDO);
    cp_pprof_free(pp);
    cp_profile_free(p);

    /* [overflow] is a [pseudo] frame too */
    p = tp_new_cpu(&(cp_limits){.max_samples = 2});
    for (int i = 0; i < 3; i++)
        cp_profile_add(p, &a[i], 1, one, NULL, 0);
    pp = tp_roundtrip(p, false);
    long o = tp_find_sample(pp, "[overflow]");
    assert_true(o >= 0);
    assert_int_equal(loc_kind(pp, pp->samples[o].location_ids[0]), CP_FRAME_PSEUDO);
    cp_pprof_free(pp);
    cp_profile_free(p);
    assert_string_equal(cp_frame_kind_mapping(CP_FRAME_JAVA_NATIVE), "[java:native]");
    assert_string_equal(cp_frame_kind_mapping((cp_frame_kind)99), "");
    assert_int_equal(cp_frame_kind_of_mapping("[kernel]"), CP_FRAME_KERNEL);
    assert_int_equal(cp_frame_kind_of_mapping(NULL), CP_FRAME_UNSPECIFIED);
}

static void test_empty_profile(void **state)
{
    cp_profile *p = tp_new_cpu(NULL);
    cp_sample_type pt = {"cpu", "nanoseconds"};
    cp_profile_set_period(p, &pt, 10000000);
    cp_pprof *pp = tp_roundtrip(p, true);
    assert_int_equal(pp->n_samples, 0);
    assert_int_equal(pp->n_sample_types, 2);
    assert_string_equal(pp->sample_types[1].type, "cpu-samples");
    assert_string_equal(pp->period_type.type, "cpu");
    assert_int_equal(pp->period, 10000000);
    assert_int_equal(pp->default_sample_type, 0);
    cp_pprof_free(pp);
    cp_profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interning_ids),
        cmocka_unit_test(test_system_name_and_file),
        cmocka_unit_test(test_reused_buffers),
        cmocka_unit_test(test_aggregation),
        cmocka_unit_test(test_label_types),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_truncation_limits),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_full_still_aggregates),
        cmocka_unit_test(test_saturation),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_empty_profile),
        cmocka_unit_test(test_frame_kinds_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
