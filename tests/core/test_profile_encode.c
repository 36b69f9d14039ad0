/*
 * test_profile_encode.c — byte-exact encoding of a tiny profile, and the
 * gzip'd form inflating to the same bytes.
 */
#include "test_profile_util.h"

#include <zlib.h>

/* The tiny profile: one sample type, one frame, a comment, times. */
static cp_profile *tiny(void)
{
    static const cp_sample_type t = {"samples", "count"};
    cp_profile *p = cp_profile_new(&t, 1, NULL);
    assert_non_null(p);
    cp_frame f = {"f", NULL, "a.py", 3};
    int64_t v = 7;
    assert_int_equal(cp_profile_add(p, &f, 1, &v, NULL, 0), CP_OK);
    cp_profile_set_time(p, 1000, 2000);
    cp_profile_set_period(p, NULL, 10);
    assert_int_equal(cp_profile_add_comment(p, "hi"), CP_OK);
    return p;
}

static const uint8_t tiny_bytes[] = {
    0x0a, 0x04, 0x08, 0x01, 0x10, 0x02,                   /* sample_type {1, 2}        */
    0x12, 0x06, 0x0a, 0x01, 0x01, 0x12, 0x01, 0x07,       /* sample {loc [1], val [7]} */
    0x22, 0x08, 0x08, 0x01, 0x22, 0x04, 0x08, 0x01, 0x10, 0x03, /* location 1 {line f1:3} */
    0x2a, 0x08, 0x08, 0x01, 0x10, 0x03, 0x18, 0x03, 0x20, 0x04, /* function 1 {3, 3, 4}   */
    0x32, 0x00,                                           /* ""                        */
    0x32, 0x07, 's', 'a', 'm', 'p', 'l', 'e', 's',        /* 1                         */
    0x32, 0x05, 'c', 'o', 'u', 'n', 't',                  /* 2                         */
    0x32, 0x01, 'f',                                      /* 3                         */
    0x32, 0x04, 'a', '.', 'p', 'y',                       /* 4                         */
    0x32, 0x02, 'h', 'i',                                 /* 5                         */
    0x48, 0xe8, 0x07,                                     /* time_nanos 1000           */
    0x50, 0xd0, 0x0f,                                     /* duration_nanos 2000       */
    0x60, 0x0a,                                           /* period 10                 */
    0x6a, 0x01, 0x05,                                     /* comment [5]               */
    0x70, 0x01,                                           /* default_sample_type 1     */
};

/* p encodes (uncompressed) to exactly want[n]; p is freed. */
static void expect_encoding(cp_profile *p, const uint8_t *want, size_t n)
{
    cp_buf b;
    cp_buf_init(&b, 0);
    assert_int_equal(cp_profile_encode(p, false, &b), CP_OK);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    cp_buf_free(&b);
    cp_profile_free(p);
}

static void test_tiny_exact(void **state)
{
    expect_encoding(tiny(), tiny_bytes, sizeof tiny_bytes);
}

static void test_tiny_gzip(void **state)
{
    cp_profile *p = tiny();
    cp_buf b;
    cp_buf_init(&b, 0);
    assert_int_equal(cp_buf_append(&b, "xyz", 3), CP_OK); /* encode appends */
    assert_int_equal(cp_profile_encode(p, true, &b), CP_OK);
    assert_memory_equal(b.data, "xyz", 3);
    uint8_t back[512];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = b.data + 3;
    zs.avail_in = (uInt)(b.len - 3);
    zs.next_out = back;
    zs.avail_out = sizeof back;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(zs.total_out, sizeof tiny_bytes);
    assert_memory_equal(back, tiny_bytes, sizeof tiny_bytes);
    inflateEnd(&zs);
    cp_buf_free(&b);
    cp_profile_free(p);
}

/* Labels: key always, str / num / num_unit only when set; sorted by key
 * string id. Period type is written as a ValueType message. */
static void test_labels_and_period_exact(void **state)
{
    static const cp_sample_type t = {"s", "c"};
    cp_profile *p = cp_profile_new(&t, 1, NULL);
    assert_non_null(p);
    cp_label l[2] = {{"tid", NULL, 5, "id"}, {"name", "main", 0, NULL}};
    int64_t v = 1;
    /* strings in interning order: "" s c tid id name main */
    assert_int_equal(cp_profile_add(p, NULL, 0, &v, l, 2), CP_OK);
    cp_sample_type pt = {"cpu", "c"};
    cp_profile_set_period(p, &pt, 0); /* "cpu" = 7 */
    cp_buf b;
    cp_buf_init(&b, 0);
    assert_int_equal(cp_profile_encode(p, false, &b), CP_OK);
    static const uint8_t sample[] = {
        0x12, 0x11, 0x12, 0x01, 0x01,                   /* no locations; value [1]   */
        0x1a, 0x06, 0x08, 0x03, 0x18, 0x05, 0x20, 0x04, /* {key tid, num 5, unit id}  */
        0x1a, 0x04, 0x08, 0x05, 0x10, 0x06,             /* {key name, str main}       */
    };
    static const uint8_t ptype[] = {0x5a, 0x04, 0x08, 0x07, 0x10, 0x02};
    /* After sample_type (6 bytes); "tid" (id 3) sorts before "name" (5). */
    assert_true(b.len > 6 + sizeof sample + sizeof ptype + 2);
    assert_memory_equal(b.data + 6, sample, sizeof sample);
    /* period_type, then default_sample_type (70 01) ends the message. */
    assert_memory_equal(b.data + b.len - sizeof ptype - 2, ptype, sizeof ptype);
    cp_buf_free(&b);
    cp_profile_free(p);
}

/* Frame kinds: one mapping per kind (file "[python]") and per native
 * module (its path), has_functions/filenames/line_numbers set, every
 * location pointing at its mapping. Only native frames default their
 * system name to the name. */
static void test_mappings_exact(void **state)
{
    static const cp_sample_type t = {"samples", "count"};
    cp_profile *p = cp_profile_new(&t, 1, NULL);
    assert_non_null(p);
    cp_frame f[2] = {{"f", NULL, "a.py", 3, CP_FRAME_PYTHON, NULL},
                     {"g", NULL, NULL, 0, CP_FRAME_NATIVE, "/l.so"}};
    int64_t v = 7;
    assert_int_equal(cp_profile_add(p, f, 2, &v, NULL, 0), CP_OK);
    static const uint8_t want[] = {
        0x0a, 0x04, 0x08, 0x01, 0x10, 0x02,                         /* sample_type {1, 2}      */
        0x12, 0x07, 0x0a, 0x02, 0x01, 0x02, 0x12, 0x01, 0x07,       /* sample {[1 2], [7]}     */
        0x1a, 0x0a, 0x08, 0x01, 0x28, 0x05, 0x38, 0x01, 0x40, 0x01, 0x48, 0x01, /* mapping 1 [python] */
        0x1a, 0x0a, 0x08, 0x02, 0x28, 0x07, 0x38, 0x01, 0x40, 0x01, 0x48, 0x01, /* mapping 2 /l.so    */
        0x22, 0x0a, 0x08, 0x01, 0x10, 0x01, 0x22, 0x04, 0x08, 0x01, 0x10, 0x03, /* loc 1 map 1 f1:3  */
        0x22, 0x08, 0x08, 0x02, 0x10, 0x02, 0x22, 0x02, 0x08, 0x02,             /* loc 2 map 2 f2    */
        0x2a, 0x06, 0x08, 0x01, 0x10, 0x03, 0x20, 0x04,             /* function 1 {3, "", 4}   */
        0x2a, 0x06, 0x08, 0x02, 0x10, 0x06, 0x18, 0x06,             /* function 2 {6, 6}       */
        0x32, 0x00,                                                 /* ""                      */
        0x32, 0x07, 's', 'a', 'm', 'p', 'l', 'e', 's',              /* 1                       */
        0x32, 0x05, 'c', 'o', 'u', 'n', 't',                        /* 2                       */
        0x32, 0x01, 'f',                                            /* 3                       */
        0x32, 0x04, 'a', '.', 'p', 'y',                             /* 4                       */
        0x32, 0x08, '[', 'p', 'y', 't', 'h', 'o', 'n', ']',         /* 5                       */
        0x32, 0x01, 'g',                                            /* 6                       */
        0x32, 0x05, '/', 'l', '.', 's', 'o',                        /* 7                       */
        0x70, 0x01,                                                 /* default_sample_type 1   */
    };
    expect_encoding(p, want, sizeof want);
}

static void test_encode_args(void **state)
{
    cp_buf b;
    cp_buf_init(&b, 0);
    assert_int_equal(cp_profile_encode(NULL, false, &b), CP_EINVAL);
    cp_profile *p = tiny();
    assert_int_equal(cp_profile_encode(p, false, NULL), CP_EINVAL);
    cp_buf small;
    cp_buf_init(&small, 10);
    assert_int_equal(cp_profile_encode(p, true, &small), CP_ETOOBIG);
    assert_int_equal(small.len, 0);
    cp_buf_free(&small);
    cp_profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_exact),
        cmocka_unit_test(test_tiny_gzip),
        cmocka_unit_test(test_labels_and_period_exact),
        cmocka_unit_test(test_encode_args),
        cmocka_unit_test(test_mappings_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
