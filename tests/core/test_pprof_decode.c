/*
 * test_pprof_decode.c — cp_pprof_decode: round trips of what the encoder
 * writes, inputs from other writers (unpacked fields, sparse ids, unknown
 * fields), and hostile input: every truncation, random corruption,
 * oversized varints and lengths, dangling references, zip bombs.
 */
#include "test_profile_util.h"

#include <zlib.h>

#include "buf.h"
#include "pb.h"

/* A profile exercising every encoded field. */
static cp_profile *rich_profile(void)
{
    cp_profile *p = tp_new_cpu(NULL);
    cp_frame s1[3] = {{"leaf", "sys_leaf", "a.py", 3, 0, NULL, 2}, {"mid", NULL, "a.py", 9}, {"main", NULL, "m.py", 1}};
    cp_label l[2] = {{"thread id", NULL, 77, NULL}, {"thread name", "worker-1", 0, NULL}};
    int64_t v1[2] = {1000000, 1}, v2[2] = {-5, 3};
    assert_int_equal(cp_profile_add(p, s1, 3, v1, l, 2), CP_OK);
    assert_int_equal(cp_profile_add(p, s1 + 1, 2, v2, NULL, 0), CP_OK);
    cp_sample_type pt = {"cpu", "nanoseconds"};
    cp_profile_set_period(p, &pt, 10000000);
    cp_profile_set_time(p, 1700000000123456789LL, 60000000000LL);
    assert_int_equal(cp_profile_add_comment(p, "contprof 0.1.0"), CP_OK);
    assert_int_equal(cp_profile_add_comment(p, "second"), CP_OK);
    return p;
}

static void check_rich(const cp_pprof *pp)
{
    assert_int_equal(pp->n_sample_types, 2);
    assert_string_equal(pp->sample_types[0].type, "cpu-time");
    assert_string_equal(pp->sample_types[0].unit, "nanoseconds");
    assert_int_equal(cp_pprof_type_index(pp, "cpu-samples"), 1);
    assert_int_equal(cp_pprof_type_index(pp, "nope"), -1);
    assert_int_equal(pp->n_samples, 2);
    const cp_pprof_sample *s = &pp->samples[0];
    assert_int_equal(s->nlocs, 3);
    assert_int_equal(s->values[0], 1000000);
    assert_int_equal(s->nlabels, 2);
    assert_int_equal(pp->samples[1].values[0], -5);
    const cp_pprof_location *loc = cp_pprof_location_by_id(pp, s->location_ids[0]);
    assert_int_equal(loc->nlines, 1);
    assert_int_equal(loc->lines[0].line, 3);
    const cp_pprof_function *f = cp_pprof_function_by_id(pp, loc->lines[0].function_id);
    assert_string_equal(f->name, "leaf");
    assert_string_equal(f->system_name, "sys_leaf");
    assert_string_equal(f->filename, "a.py");
    assert_int_equal(f->start_line, 2); /* Function.start_line; 0 (absent) for mid */
    loc = cp_pprof_location_by_id(pp, s->location_ids[1]);
    assert_int_equal(cp_pprof_function_by_id(pp, loc->lines[0].function_id)->start_line, 0);
    assert_int_equal(pp->time_nanos, 1700000000123456789LL);
    assert_int_equal(pp->duration_nanos, 60000000000LL);
    assert_string_equal(pp->period_type.type, "cpu");
    assert_string_equal(pp->period_type.unit, "nanoseconds");
    assert_int_equal(pp->period, 10000000);
    assert_int_equal(pp->n_comments, 2);
    assert_string_equal(pp->comments[0], "contprof 0.1.0");
    assert_int_equal(pp->default_sample_type, 0);
    assert_null(cp_pprof_location_by_id(pp, 0));
    assert_null(cp_pprof_location_by_id(pp, 99));
    assert_null(cp_pprof_function_by_id(pp, 99));
}

static void encode(const cp_profile *p, bool gzip, cp_buf *b)
{
    cp_buf_init(b, 0);
    assert_int_equal(cp_profile_encode(p, gzip, b), CP_OK);
}

static void test_roundtrip(void **state)
{
    cp_profile *p = rich_profile();
    for (int gzip = 0; gzip < 2; gzip++) {
        cp_pprof *pp = tp_roundtrip(p, gzip);
        check_rich(pp);
        cp_pprof_free(pp);
    }
    cp_profile_free(p);
}

static void test_empty_input(void **state)
{
    cp_pprof *pp = NULL;
    assert_int_equal(cp_pprof_decode(NULL, 0, 0, &pp), CP_OK);
    assert_int_equal(pp->n_samples, 0);
    assert_int_equal(pp->default_sample_type, -1);
    assert_string_equal(pp->period_type.type, "");
    cp_pprof_free(pp);
    assert_int_equal(cp_pprof_decode(NULL, 3, 0, &pp), CP_EINVAL);
    assert_int_equal(cp_pprof_decode((const uint8_t *)"", 0, 0, NULL), CP_EINVAL);
}

/* Another writer's style: unpacked repeated fields, sparse out-of-order
 * ids, a mapping and unknown fields (all skipped), an inlined location. */
static void write_foreign(cp__pb *pb)
{
    size_t m = cp__pb_start(pb); /* sample_type {1, 2} */
    cp__pb_uint64(pb, 1, 1);
    cp__pb_uint64(pb, 2, 2);
    cp__pb_end(pb, 1, m);
    m = cp__pb_start(pb); /* sample: locs 30, 10 unpacked; value 9 unpacked */
    cp__pb_uint64(pb, 1, 30);
    cp__pb_uint64(pb, 1, 10);
    cp__pb_uint64(pb, 2, 9);
    cp__pb_uint64(pb, 99, 1);
    cp__pb_end(pb, 2, m);
    m = cp__pb_start(pb); /* mapping */
    cp__pb_uint64(pb, 1, 1);
    cp__pb_end(pb, 3, m);
    uint64_t locs[2][2] = {{30, 700}, {10, 500}};
    for (int i = 0; i < 2; i++) {
        m = cp__pb_start(pb);
        cp__pb_uint64(pb, 1, locs[i][0]);
        cp__pb_uint64(pb, 3, 0x1234);
        for (int ln = 0; ln < 2; ln++) {
            size_t l = cp__pb_start(pb);
            cp__pb_uint64(pb, 1, locs[i][1] + (uint64_t)ln);
            cp__pb_int64(pb, 2, 40 + ln);
            cp__pb_end(pb, 4, l);
        }
        cp__pb_end(pb, 4, m);
    }
    uint64_t fids[4] = {501, 500, 700, 701};
    for (int i = 0; i < 4; i++) {
        m = cp__pb_start(pb);
        cp__pb_uint64(pb, 1, fids[i]);
        cp__pb_uint64(pb, 2, 3 + (uint64_t)i);
        cp__pb_end(pb, 5, m);
    }
    const char *strs[] = {"", "wall", "ns", "f501", "f500", "f700", "f701"};
    for (int i = 0; i < 7; i++)
        cp__pb_string(pb, 6, strs[i]);
    cp__pb_uint64(pb, 13, 3); /* unpacked comment */
    cp__pb_uint64(pb, 14, 1); /* default type "wall" */
    cp__pb_bytes(pb, 200, "zz", 2); /* unknown field */
}

static void test_foreign_writer(void **state)
{
    cp_buf b;
    cp_buf_init(&b, 0);
    cp__pb pb;
    cp__pb_init(&pb, &b, true);
    write_foreign(&pb);
    assert_int_equal(cp__pb_finish(&pb), CP_OK);
    cp_pprof *pp = NULL;
    assert_int_equal(cp_pprof_decode(b.data, b.len, 0, &pp), CP_OK);
    assert_int_equal(pp->samples[0].nlocs, 2);
    assert_int_equal(pp->samples[0].values[0], 9);
    const cp_pprof_location *l = cp_pprof_location_by_id(pp, 10);
    assert_non_null(l);
    assert_int_equal(l->address, 0x1234);
    assert_int_equal(l->nlines, 2);
    assert_string_equal(cp_pprof_function_by_id(pp, l->lines[1].function_id)->name, "f501");
    assert_string_equal(cp_pprof_function_by_id(pp, 700)->name, "f700");
    assert_null(cp_pprof_function_by_id(pp, 1));
    assert_string_equal(pp->comments[0], "f501");
    assert_int_equal(pp->default_sample_type, 0);
    cp_pprof_free(pp);
    cp_buf_free(&b);
}

/* Decode bytes written by fn (raw); return the result code. */
static int decode_written(void (*fn)(cp__pb *))
{
    cp_buf b;
    cp_buf_init(&b, 0);
    cp__pb pb;
    cp__pb_init(&pb, &b, false);
    fn(&pb);
    assert_int_equal(cp__pb_finish(&pb), CP_OK);
    cp_pprof *pp = (cp_pprof *)(uintptr_t)1; /* must stay untouched on error */
    int rc = cp_pprof_decode(b.data, b.len, 0, &pp);
    if (rc == CP_OK)
        cp_pprof_free(pp);
    else
        assert_ptr_equal(pp, (cp_pprof *)(uintptr_t)1);
    cp_buf_free(&b);
    return rc;
}

static void w_strings(cp__pb *pb)
{
    cp__pb_string(pb, 6, "");
    cp__pb_string(pb, 6, "t");
}

static void w_type_ok(cp__pb *pb)
{
    size_t m = cp__pb_start(pb);
    cp__pb_uint64(pb, 1, 1);
    cp__pb_end(pb, 1, m);
    w_strings(pb);
}

static void w_bad_string_index(cp__pb *pb)
{
    size_t m = cp__pb_start(pb);
    cp__pb_uint64(pb, 1, 2); /* only 2 strings */
    cp__pb_end(pb, 1, m);
    w_strings(pb);
}

static void w_first_string_not_empty(cp__pb *pb)
{
    cp__pb_string(pb, 6, "x");
}

static void w_dangling_location(cp__pb *pb)
{
    w_type_ok(pb);
    size_t m = cp__pb_start(pb);
    cp__pb_uint64(pb, 1, 5);
    cp__pb_uint64(pb, 2, 1);
    cp__pb_end(pb, 2, m);
}

static void w_dangling_function(cp__pb *pb)
{
    size_t m = cp__pb_start(pb), l;
    cp__pb_uint64(pb, 1, 1);
    l = cp__pb_start(pb);
    cp__pb_uint64(pb, 1, 3);
    cp__pb_end(pb, 4, l);
    cp__pb_end(pb, 4, m);
}

static void w_duplicate_ids(cp__pb *pb)
{
    for (int i = 0; i < 2; i++) {
        size_t m = cp__pb_start(pb);
        cp__pb_uint64(pb, 1, 4);
        cp__pb_end(pb, 5, m);
    }
}

static void w_zero_id(cp__pb *pb)
{
    size_t m = cp__pb_start(pb);
    cp__pb_uint64(pb, 2, 0);
    cp__pb_end(pb, 5, m);
}

static void w_value_count_mismatch(cp__pb *pb)
{
    w_type_ok(pb);
    size_t m = cp__pb_start(pb);
    int64_t v[2] = {1, 2};
    cp__pb_packed_i64(pb, 2, v, 2);
    cp__pb_end(pb, 2, m);
}

static void w_wrong_wire_type(cp__pb *pb)
{
    cp__pb_uint64(pb, 2, 5); /* sample as a varint */
}

static void w_label_wire_type(cp__pb *pb)
{
    w_type_ok(pb);
    size_t m = cp__pb_start(pb);
    cp__pb_uint64(pb, 2, 1);
    cp__pb_uint64(pb, 3, 1); /* label as a varint */
    cp__pb_end(pb, 2, m);
}

static void test_invalid_structure(void **state)
{
    assert_int_equal(decode_written(w_type_ok), CP_OK);
    assert_int_equal(decode_written(w_bad_string_index), CP_ECORRUPT);
    assert_int_equal(decode_written(w_first_string_not_empty), CP_ECORRUPT);
    assert_int_equal(decode_written(w_dangling_location), CP_ECORRUPT);
    assert_int_equal(decode_written(w_dangling_function), CP_ECORRUPT);
    assert_int_equal(decode_written(w_duplicate_ids), CP_ECORRUPT);
    assert_int_equal(decode_written(w_zero_id), CP_ECORRUPT);
    assert_int_equal(decode_written(w_value_count_mismatch), CP_ECORRUPT);
    assert_int_equal(decode_written(w_wrong_wire_type), CP_ECORRUPT);
    assert_int_equal(decode_written(w_label_wire_type), CP_ECORRUPT);
}

static void test_huge_varint_and_length(void **state)
{
    static const uint8_t huge_varint[] = {0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t huge_len[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
    static const uint8_t huge_count[] = {0x12, 0x03, 0x0a, 0x7f, 0x01}; /* packed len 127 */
    cp_pprof *pp = NULL;
    assert_int_equal(cp_pprof_decode(huge_varint, sizeof huge_varint, 0, &pp), CP_ECORRUPT);
    assert_int_equal(cp_pprof_decode(huge_len, sizeof huge_len, 0, &pp), CP_ECORRUPT);
    assert_int_equal(cp_pprof_decode(huge_count, sizeof huge_count, 0, &pp), CP_ECORRUPT);
    assert_null(pp);
}

/* Every prefix of a valid encoding: a clean error or a (shorter) valid
 * profile, never a crash or a leak (checked by the ASan build). */
static void test_every_truncation(void **state)
{
    cp_profile *p = rich_profile();
    cp_buf raw, gz;
    encode(p, false, &raw);
    encode(p, true, &gz);
    for (size_t n = 0; n < raw.len; n++) {
        cp_pprof *pp = NULL;
        int rc = cp_pprof_decode(raw.data, n, 0, &pp);
        assert_true(rc == CP_OK || rc == CP_ECORRUPT);
        cp_pprof_free(pp);
    }
    for (size_t n = 2; n < gz.len; n++) {
        cp_pprof *pp = NULL;
        assert_int_equal(cp_pprof_decode(gz.data, n, 0, &pp), CP_ECORRUPT);
        assert_null(pp);
    }
    cp_buf_free(&raw);
    cp_buf_free(&gz);
    cp_profile_free(p);
}

/* Deterministic xorshift so failures reproduce. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_random_corruption(void **state)
{
    cp_profile *p = rich_profile();
    cp_buf raw;
    encode(p, false, &raw);
    uint8_t *copy = malloc(raw.len);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    int ok = 0, corrupt = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(copy, raw.data, raw.len);
        int flips = 1 + (int)(rng_next(&seed) % 4);
        for (int k = 0; k < flips; k++)
            copy[rng_next(&seed) % raw.len] = (uint8_t)rng_next(&seed);
        cp_pprof *pp = NULL;
        int rc = cp_pprof_decode(copy, raw.len, 0, &pp);
        assert_true(rc == CP_OK || rc == CP_ECORRUPT);
        if (rc == CP_OK) {
            /* whatever decoded must be internally consistent */
            for (size_t i = 0; i < pp->n_samples; i++)
                for (size_t j = 0; j < pp->samples[i].nlocs; j++)
                    assert_non_null(cp_pprof_location_by_id(pp, pp->samples[i].location_ids[j]));
            ok++;
        } else {
            corrupt++;
        }
        cp_pprof_free(pp);
    }
    assert_true(ok > 0 && corrupt > 0);
    free(copy);
    cp_buf_free(&raw);
    cp_profile_free(p);
}

/* Append data, gzip'd as one member, to out. */
static void gzip_bytes(const uint8_t *data, size_t n, cp_buf *out)
{
    uLongf cap = compressBound((uLong)n) + 64;
    assert_int_equal(cp__buf_reserve(out, cap), CP_OK);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)n;
    zs.next_out = out->data + out->len;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out->len += zs.total_out;
    deflateEnd(&zs);
}

/* gzip'd zeros: tiny input, huge output. */
static void gzip_zeros(size_t n, cp_buf *out)
{
    uint8_t *zeros = calloc(1, n);
    cp_buf_init(out, 0);
    gzip_bytes(zeros, n, out);
    free(zeros);
}

static void test_zip_bomb(void **state)
{
    cp_buf bomb;
    gzip_zeros(64u << 20, &bomb); /* 64 MiB of zeros in ~64 KiB */
    assert_true(bomb.len < 200000);
    cp_pprof *pp = NULL;
    assert_int_equal(cp_pprof_decode(bomb.data, bomb.len, 1u << 20, &pp), CP_ETOOBIG);
    assert_null(pp);
    cp_buf_free(&bomb);
    /* Zeros are "field 0": corrupt once inflated within the cap. */
    gzip_zeros(1000, &bomb);
    assert_int_equal(cp_pprof_decode(bomb.data, bomb.len, 1000, &pp), CP_ECORRUPT);
    assert_int_equal(cp_pprof_decode(bomb.data, bomb.len, 999, &pp), CP_ETOOBIG);
    cp_buf_free(&bomb);
}

static void test_gzip_garbage(void **state)
{
    static const uint8_t not_deflate[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
                                          0x00, 0x03, 0xff, 0xff, 0xff, 0xff};
    cp_pprof *pp = NULL;
    assert_int_equal(cp_pprof_decode(not_deflate, sizeof not_deflate, 0, &pp), CP_ECORRUPT);
    /* a valid gzip member followed by junk */
    cp_profile *p = rich_profile();
    cp_buf gz;
    encode(p, true, &gz);
    assert_int_equal(cp_buf_append(&gz, "junk", 4), CP_OK);
    assert_int_equal(cp_pprof_decode(gz.data, gz.len, 0, &pp), CP_ECORRUPT);
    cp_buf_free(&gz);
    /* One encoding gzip'd as two members (as `cat a.gz b.gz`) decodes. */
    cp_buf raw, two;
    encode(p, false, &raw);
    cp_buf_init(&two, 0);
    gzip_bytes(raw.data, raw.len / 2, &two);
    gzip_bytes(raw.data + raw.len / 2, raw.len - raw.len / 2, &two);
    assert_int_equal(cp_pprof_decode(two.data, two.len, 0, &pp), CP_OK);
    check_rich(pp);
    cp_pprof_free(pp);
    cp_buf_free(&two);
    cp_buf_free(&raw);
    cp_profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_foreign_writer),
        cmocka_unit_test(test_invalid_structure),
        cmocka_unit_test(test_huge_varint_and_length),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_zip_bomb),
        cmocka_unit_test(test_gzip_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
