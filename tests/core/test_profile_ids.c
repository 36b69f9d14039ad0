/*
 * test_profile_ids.c — the id path: cp_frame_dict and cp_profile_add_ids.
 * The same samples added as string frames and as dictionary ids must
 * encode to the same bytes; truncation, caps, bad ids, a full dictionary
 * and the id-stack cache (label buffers reused for other text) are
 * checked on decoded profiles.
 */
#include "test_profile_util.h"

static const int64_t one[2] = {10, 1};

/* A small program's stacks: 6 frames, stacks of depth 1..6 and 9. */
static cp_frame g_frames[6] = {
    {"leaf", NULL, "a.py", 3, CP_FRAME_PYTHON, NULL},
    {"mid", "mid_sys", "a.py", 9, CP_FRAME_PYTHON, NULL},
    {"deflate", NULL, NULL, 0, CP_FRAME_NATIVE, "/lib/libz.so.1"},
    {"run", NULL, "R.java", 4, CP_FRAME_JAVA_COMPILED, NULL},
    {"run", NULL, "R.java", 4, CP_FRAME_JAVA_INLINED, NULL},
    {"main", NULL, "m.py", 1},
};

static void add_both(cp_profile *ps, cp_profile *pi, cp_frame_dict *d, const int *idx, size_t n,
                     const cp_label *l, size_t nl)
{
    cp_frame f[16];
    uint32_t ids[16];
    for (size_t i = 0; i < n; i++) {
        f[i] = g_frames[idx[i]];
        assert_int_equal(cp_frame_dict_intern(d, &f[i], &ids[i]), CP_OK);
    }
    assert_int_equal(cp_profile_add(ps, f, n, one, l, nl), CP_OK);
    assert_int_equal(cp_profile_add_ids(pi, d, ids, n, one, l, nl), CP_OK);
}

static void expect_same_bytes(const cp_profile *a, const cp_profile *b)
{
    cp_buf x, y;
    cp_buf_init(&x, 0);
    cp_buf_init(&y, 0);
    assert_int_equal(cp_profile_encode(a, false, &x), CP_OK);
    assert_int_equal(cp_profile_encode(b, false, &y), CP_OK);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);
    cp_buf_free(&x);
    cp_buf_free(&y);
}

static void test_ids_encode_like_strings(void **state)
{
    cp_limits lim = {.max_frames = 5};
    cp_profile *ps = tp_new_cpu(&lim), *pi = tp_new_cpu(&lim);
    cp_frame_dict *d = cp_frame_dict_new(0, 0);
    assert_non_null(d);
    static const int s1[] = {0, 1, 5}, s2[] = {2, 1, 5}, s3[] = {4, 3, 5},
                     s4[] = {0, 1, 1, 1, 1, 1, 1, 1, 5}; /* truncated to 4 + omitted */
    cp_label l[2] = {{"thread id", NULL, 7, NULL}, {"thread name", "w", 0, NULL}};
    for (int rep = 0; rep < 3; rep++) {
        add_both(ps, pi, d, s1, 3, l, 2);
        add_both(ps, pi, d, s2, 3, NULL, 0);
        add_both(ps, pi, d, s3, 3, l, 1);
        add_both(ps, pi, d, s4, 9, l, 2);
        add_both(ps, pi, d, s1, 0, l, 2); /* empty stack */
    }
    assert_int_equal(cp_frame_dict_size(d), 7); /* 6 frames + the "full" frame */
    expect_same_bytes(ps, pi);
    cp_pprof *pp = tp_roundtrip(pi, true);
    assert_int_equal(pp->n_samples, 5);
    assert_int_equal(pp->samples[3].nlocs, 5);
    assert_string_equal(tp_loc_name(pp, pp->samples[3].location_ids[4]), "<5 frames omitted>");
    assert_int_equal(tp_total(pp, 1), 15);
    cp_pprof_free(pp);
    cp_profile_free(ps);
    cp_profile_free(pi);
    cp_frame_dict_free(d);
}

static void test_bad_ids(void **state)
{
    cp_profile *p = tp_new_cpu(NULL);
    cp_frame_dict *d = cp_frame_dict_new(0, 0);
    uint32_t id, bad[3];
    assert_int_equal(cp_frame_dict_intern(d, &g_frames[0], &id), CP_OK);
    assert_int_equal(id, 2);
    bad[0] = id;
    bad[1] = 0;
    bad[2] = 99;
    assert_int_equal(cp_profile_add_ids(p, d, bad, 2, one, NULL, 0), CP_EINVAL);
    assert_int_equal(cp_profile_add_ids(p, d, bad + 2, 1, one, NULL, 0), CP_EINVAL);
    assert_int_equal(cp_profile_add_ids(p, NULL, bad, 1, one, NULL, 0), CP_EINVAL);
    assert_int_equal(cp_profile_add_ids(p, d, NULL, 1, one, NULL, 0), CP_EINVAL);
    cp_frame noname = {NULL};
    assert_int_equal(cp_frame_dict_intern(d, &noname, &id), CP_EINVAL);
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    assert_int_equal(st.adds, 0);
    assert_int_equal(st.samples, 0);
    cp_profile_free(p);
    cp_frame_dict_free(d);
}

/* A full dictionary hands out "[frame dictionary full]", which counts. */
static void test_dict_full(void **state)
{
    cp_frame_dict *d = cp_frame_dict_new(2, 0);
    uint32_t ids[4];
    assert_int_equal(cp_frame_dict_intern(d, &g_frames[0], &ids[0]), CP_OK);
    assert_int_equal(cp_frame_dict_intern(d, &g_frames[1], &ids[1]), CP_OK);
    assert_int_equal(cp_frame_dict_intern(d, &g_frames[2], &ids[2]), CP_EFULL);
    assert_int_equal(ids[2], 1);
    assert_int_equal(cp_frame_dict_intern(d, &g_frames[1], &ids[3]), CP_OK); /* still found */
    assert_int_equal(ids[3], ids[1]);
    cp_profile *p = tp_new_cpu(NULL);
    assert_int_equal(cp_profile_add_ids(p, d, ids, 3, one, NULL, 0), CP_OK);
    cp_pprof *pp = tp_roundtrip(p, false);
    assert_string_equal(tp_loc_name(pp, pp->samples[0].location_ids[2]), "[frame dictionary full]");
    const cp_pprof_location *l = cp_pprof_location_by_id(pp, pp->samples[0].location_ids[2]);
    assert_string_equal(l->mapping_file, "[pseudo]");
    cp_pprof_free(pp);
    cp_profile_free(p);
    cp_frame_dict_free(d);
    d = cp_frame_dict_new(0, 8); /* 8 bytes of text: "leaf" + "a.py" + NULs is 10 */
    assert_int_equal(cp_frame_dict_intern(d, &g_frames[0], &ids[0]), CP_EFULL);
    cp_frame_dict_free(d);
}

/* The id-stack cache keys on label pointers but must not alias: the same
 * buffer holding another thread name is another sample. */
static void test_cache_reused_label_buffer(void **state)
{
    cp_profile *p = tp_new_cpu(NULL);
    cp_frame_dict *d = cp_frame_dict_new(0, 0);
    uint32_t id;
    assert_int_equal(cp_frame_dict_intern(d, &g_frames[0], &id), CP_OK);
    char name[16], key[16];
    strcpy(key, "thread name");
    cp_label l = {key, name, 0, NULL};
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "t%d", i % 2);
        assert_int_equal(cp_profile_add_ids(p, d, &id, 1, one, &l, 1), CP_OK);
    }
    strcpy(key, "other key"); /* same pointer, other key */
    assert_int_equal(cp_profile_add_ids(p, d, &id, 1, one, &l, 1), CP_OK);
    cp_label num = {"thread id", NULL, 1, NULL};
    for (int i = 0; i < 4; i++) {
        num.num = i % 2;
        assert_int_equal(cp_profile_add_ids(p, d, &id, 1, one, &num, 1), CP_OK);
    }
    cp_pprof *pp = tp_roundtrip(p, false);
    assert_int_equal(pp->n_samples, 5);
    int64_t want[5] = {3, 3, 1, 2, 2};
    for (int i = 0; i < 5; i++)
        assert_int_equal(pp->samples[i].values[1], want[i]);
    assert_string_equal(pp->samples[0].labels[0].str, "t0");
    assert_string_equal(pp->samples[1].labels[0].str, "t1");
    assert_string_equal(pp->samples[2].labels[0].key, "other key");
    cp_pprof_free(pp);
    cp_profile_free(p);
    cp_frame_dict_free(d);
}

/* Caps: the id path overflows like the string path; totals stay true. */
static void test_ids_caps(void **state)
{
    cp_profile *p = tp_new_cpu(&(cp_limits){.max_samples = 4});
    cp_frame_dict *d = cp_frame_dict_new(0, 0);
    int full = 0;
    for (int rep = 0; rep < 2; rep++)
        for (int i = 0; i < 6; i++) {
            uint32_t id;
            assert_int_equal(cp_frame_dict_intern(d, &g_frames[i], &id), CP_OK);
            int rc = cp_profile_add_ids(p, d, &id, 1, one, NULL, 0);
            assert_true(rc == CP_OK || rc == CP_EFULL);
            full += rc == CP_EFULL;
        }
    cp_profile_stats st;
    cp_profile_stats_get(p, &st);
    assert_int_equal(st.adds, 12);
    assert_int_equal(st.overflowed, (uint64_t)full);
    assert_int_equal(full, 6); /* 3 frames fit (+[overflow]), twice */
    cp_pprof *pp = tp_roundtrip(p, true);
    assert_int_equal(tp_total(pp, 1), 12);
    assert_true(tp_find_sample(pp, "[overflow]") >= 0);
    cp_pprof_free(pp);
    cp_profile_free(p);
    cp_frame_dict_free(d);
}

/* Many distinct keys (more than any fixed-size cache would hold: 3000
 * stacks of 3000 distinct frames x 4 thread names, each added 3 times in
 * rotation), through strings and ids: the same bytes, every sample 3. */
static void test_many_keys(void **state)
{
    enum { NST = 3000, NTH = 4, DEPTH = 8 };
    cp_profile *ps = tp_new_cpu(NULL), *pi = tp_new_cpu(NULL);
    cp_frame_dict *d = cp_frame_dict_new(0, 0);
    static char names[NST][16];
    static cp_frame fr[NST];
    static uint32_t fid[NST];
    for (int i = 0; i < NST; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        fr[i] = (cp_frame){names[i], NULL, "m.py", i % 50 + 1, CP_FRAME_PYTHON, NULL};
        assert_int_equal(cp_frame_dict_intern(d, &fr[i], &fid[i]), CP_OK);
    }
    static const char *tn[NTH] = {"a", "b", "c", "d"};
    for (int rep = 0; rep < 3; rep++)
        for (int k = 0; k < NST * NTH; k++) {
            int st = k / NTH;
            cp_frame f[DEPTH];
            uint32_t ids[DEPTH];
            for (int j = 0; j < DEPTH; j++) {
                int x = (st + j * 7) % NST;
                f[j] = fr[x];
                ids[j] = fid[x];
            }
            cp_label l = {"thread name", tn[k % NTH], 0, NULL};
            assert_int_equal(cp_profile_add(ps, f, DEPTH, one, &l, 1), CP_OK);
            assert_int_equal(cp_profile_add_ids(pi, d, ids, DEPTH, one, &l, 1), CP_OK);
        }
    expect_same_bytes(ps, pi);
    cp_pprof *pp = tp_roundtrip(pi, false);
    assert_int_equal(pp->n_samples, NST * NTH);
    for (size_t i = 0; i < pp->n_samples; i++)
        assert_int_equal(pp->samples[i].values[1], 3);
    cp_pprof_free(pp);
    cp_profile_free(ps);
    cp_profile_free(pi);
    cp_frame_dict_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_encode_like_strings),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_dict_full),
        cmocka_unit_test(test_cache_reused_label_buffer),
        cmocka_unit_test(test_ids_caps),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
