/*
 * test_pb_wire.c — byte-exact tests of the protobuf writer primitives
 * (pb.c) and the bounds checks of the reader (pb_read.c).
 */
#include "test_profile_util.h"

#include <zlib.h>

#include "pb.h"

/* Run the writer over a fresh raw buffer; the callback writes fields. */
static void expect_bytes(void (*write)(cp__pb *), const uint8_t *want, size_t n)
{
    cp_buf out;
    cp_buf_init(&out, 0);
    cp__pb pb;
    cp__pb_init(&pb, &out, false);
    write(&pb);
    assert_int_equal(cp__pb_finish(&pb), CP_OK);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, want, n);
    cp_buf_free(&out);
}

static void w_varints(cp__pb *pb)
{
    cp__pb_varint(pb, 0);
    cp__pb_varint(pb, 1);
    cp__pb_varint(pb, 127);
    cp__pb_varint(pb, 128);
    cp__pb_varint(pb, 300);
    cp__pb_varint(pb, UINT64_MAX);
}

static void test_varint(void **state)
{
    static const uint8_t want[] = {0x00, 0x01, 0x7f, 0x80, 0x01, 0xac, 0x02, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    expect_bytes(w_varints, want, sizeof want);
    assert_int_equal(cp__pb_varint_size(0), 1);
    assert_int_equal(cp__pb_varint_size(127), 1);
    assert_int_equal(cp__pb_varint_size(128), 2);
    assert_int_equal(cp__pb_varint_size(UINT64_MAX), 10);
}

static void w_scalars(cp__pb *pb)
{
    cp__pb_uint64(pb, 1, 150);     /* 08 96 01 */
    cp__pb_uint64_opt(pb, 2, 0);   /* nothing */
    cp__pb_uint64(pb, 2, 0);       /* 10 00 */
    cp__pb_int64(pb, 3, -1);       /* 18 + 10 bytes */
    cp__pb_int64_opt(pb, 4, 0);    /* nothing */
    cp__pb_uint64(pb, 16, 1);      /* key 16<<3 = 128: 80 01 01 */
}

static void test_scalars(void **state)
{
    static const uint8_t want[] = {0x08, 0x96, 0x01, 0x10, 0x00, 0x18, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x80, 0x01, 0x01};
    expect_bytes(w_scalars, want, sizeof want);
}

static void w_strings(cp__pb *pb)
{
    cp__pb_string(pb, 6, "");
    cp__pb_string(pb, 6, "go");
    cp__pb_string(pb, 6, NULL);
    cp__pb_bytes(pb, 2, "\0x", 2);
}

static void test_strings(void **state)
{
    static const uint8_t want[] = {0x32, 0x00, 0x32, 0x02, 'g', 'o', 0x32, 0x00, 0x12, 0x02, 0x00, 'x'};
    expect_bytes(w_strings, want, sizeof want);
}

static void w_packed(cp__pb *pb)
{
    static const uint32_t ids[] = {0, 1, 299};
    static const int64_t vals[] = {7, -2};
    cp__pb_packed_u32(pb, 1, ids, 3, 1);  /* 1, 2, 300 */
    cp__pb_packed_i64(pb, 2, vals, 2);
    cp__pb_packed_u32(pb, 3, ids, 0, 0);  /* empty: nothing */
}

static void test_packed(void **state)
{
    static const uint8_t want[] = {0x0a, 0x04, 0x01, 0x02, 0xac, 0x02, 0x12, 0x0b, 0x07, 0xfe, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    expect_bytes(w_packed, want, sizeof want);
}

static void w_nested(cp__pb *pb)
{
    size_t outer = cp__pb_start(pb);
    cp__pb_uint64(pb, 1, 5);
    size_t inner = cp__pb_start(pb);
    cp__pb_uint64(pb, 1, 1);
    cp__pb_end(pb, 4, inner);
    cp__pb_end(pb, 4, outer);
    size_t empty = cp__pb_start(pb);
    cp__pb_end(pb, 11, empty);
}

static void test_nested(void **state)
{
    static const uint8_t want[] = {0x22, 0x06, 0x08, 0x05, 0x22, 0x02, 0x08, 0x01, 0x5a, 0x00};
    expect_bytes(w_nested, want, sizeof want);
}

/* A body of 200 bytes needs a two-byte length: the body must be shifted. */
static void w_long_nested(cp__pb *pb)
{
    char s[198];
    memset(s, 'a', sizeof s);
    size_t m = cp__pb_start(pb);
    cp__pb_bytes(pb, 1, s, sizeof s);
    cp__pb_end(pb, 2, m);
}

static void test_long_nested(void **state)
{
    /* 0x12, length 201 (c9 01); then 0x0a, length 198 (c6 01), 198 'a' */
    static const uint8_t head[] = {0x12, 0xc9, 0x01, 0x0a, 0xc6, 0x01};
    cp_buf out;
    cp_buf_init(&out, 0);
    cp__pb pb;
    cp__pb_init(&pb, &out, false);
    w_long_nested(&pb);
    assert_int_equal(cp__pb_finish(&pb), CP_OK);
    assert_int_equal(out.len, sizeof head + 198);
    assert_memory_equal(out.data, head, sizeof head);
    for (size_t i = sizeof head; i < out.len; i++)
        assert_int_equal(out.data[i], 'a');
    cp_buf_free(&out);
}

/* Write n_fields strings at depth 0 (forcing several flushes). */
static void write_many(cp_buf *out, bool gzip, size_t n_fields)
{
    cp__pb pb;
    cp__pb_init(&pb, out, gzip);
    char s[100];
    for (size_t i = 0; i < n_fields; i++) {
        snprintf(s, sizeof s, "string number %zu with some padding to make it longer", i);
        cp__pb_string(&pb, 6, s);
    }
    /* Flushed at depth 0 every 64 KiB: the pending buffer stays small
     * however much was written. */
    assert_true(pb.buf.cap <= 128 * 1024);
    assert_int_equal(cp__pb_finish(&pb), CP_OK);
}

/* gz (gzip) inflates to exactly raw. */
static void expect_inflates_to(const cp_buf *gz, const cp_buf *raw)
{
    uint8_t *back = malloc(raw->len);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = gz->data;
    zs.avail_in = (uInt)gz->len;
    zs.next_out = back;
    zs.avail_out = (uInt)raw->len;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(zs.total_out, raw->len);
    assert_memory_equal(back, raw->data, raw->len);
    inflateEnd(&zs);
    free(back);
}

static void test_gzip_stream_matches_raw(void **state)
{
    cp_buf raw, gz;
    cp_buf_init(&raw, 0);
    cp_buf_init(&gz, 0);
    write_many(&raw, false, 20000); /* ~1.2 MB: many 64 KiB flushes */
    write_many(&gz, true, 20000);
    assert_true(gz.len < raw.len / 4);
    expect_inflates_to(&gz, &raw);
    cp_buf_free(&raw);
    cp_buf_free(&gz);
}

/* Incompressible input (4 MiB of xorshift bytes in 4 KiB fields): the
 * writer steps down to Huffman-only, then to stored blocks; the stream
 * still inflates to exactly the raw bytes, and stored costs only the
 * block headers over the raw size. */
static bool write_noise(cp_buf *out, bool gzip)
{
    cp__pb pb;
    cp__pb_init(&pb, out, gzip);
    uint64_t x = 88172645463325252ULL;
    uint8_t chunk[4096];
    for (int k = 0; k < 1024; k++) {
        for (size_t i = 0; i < sizeof chunk; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk[i] = (uint8_t)x;
        }
        cp__pb_bytes(&pb, 1, chunk, sizeof chunk);
    }
    bool stored = pb.z_stored;
    assert_int_equal(cp__pb_finish(&pb), CP_OK);
    return stored;
}

static void test_gzip_incompressible_steps_down(void **state)
{
    cp_buf raw, gz;
    cp_buf_init(&raw, 0);
    cp_buf_init(&gz, 0);
    write_noise(&raw, false);
    assert_true(write_noise(&gz, true));
    assert_true(gz.len < raw.len + raw.len / 64);
    expect_inflates_to(&gz, &raw);
    cp_buf_free(&raw);
    cp_buf_free(&gz);
}

static void test_output_limit(void **state)
{
    for (int gzip = 0; gzip < 2; gzip++) {
        cp_buf out;
        cp_buf_init(&out, 1000);
        assert_int_equal(cp_buf_append(&out, "abc", 3), CP_OK);
        cp__pb pb;
        cp__pb_init(&pb, &out, gzip);
        char s[100] = {0};
        for (int i = 0; i < 100000; i++)
            cp__pb_bytes(&pb, 6, s, sizeof s);
        assert_int_equal(cp__pb_finish(&pb), CP_ETOOBIG);
        assert_int_equal(out.len, 3); /* restored */
        assert_memory_equal(out.data, "abc", 3);
        cp_buf_free(&out);
    }
}

/* ---- reader ---- */

static cp__pbr view(const uint8_t *d, size_t n)
{
    return (cp__pbr){d, d + n};
}

static void test_read_varint(void **state)
{
    static const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t over64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    static const uint8_t trunc[] = {0x96};
    uint64_t v;
    cp__pbr r = view(max, sizeof max);
    assert_true(cp__pbr_varint(&r, &v));
    assert_true(v == UINT64_MAX);
    assert_ptr_equal(r.p, r.end);
    r = view(over64, sizeof over64);
    assert_false(cp__pbr_varint(&r, &v));
    r = view(eleven, sizeof eleven);
    assert_false(cp__pbr_varint(&r, &v));
    r = view(trunc, sizeof trunc);
    assert_false(cp__pbr_varint(&r, &v));
    r = view(trunc, 0);
    assert_false(cp__pbr_varint(&r, &v));
}

static void test_read_fields(void **state)
{
    static const uint8_t len_past_end[] = {0x32, 0x05, 'a', 'b'};
    static const uint8_t group[] = {0x0b, 0x0c};   /* wire types 3/4 */
    static const uint8_t field0[] = {0x00, 0x01};
    static const uint8_t fixed[] = {0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x15, 1, 2, 3, 4};
    uint32_t f;
    int w;
    cp__pbr sub, r = view(len_past_end, sizeof len_past_end);
    assert_true(cp__pbr_key(&r, &f, &w));
    assert_int_equal(f, 6);
    assert_int_equal(w, CP__WIRE_LEN);
    assert_false(cp__pbr_len(&r, &sub));
    r = view(group, sizeof group);
    assert_false(cp__pbr_key(&r, &f, &w));
    r = view(field0, sizeof field0);
    assert_false(cp__pbr_key(&r, &f, &w));
    r = view(fixed, sizeof fixed);
    assert_true(cp__pbr_key(&r, &f, &w) && cp__pbr_skip(&r, w));
    assert_true(cp__pbr_key(&r, &f, &w) && cp__pbr_skip(&r, w));
    assert_ptr_equal(r.p, r.end);
    r = view(fixed, 5); /* fixed64 cut short */
    assert_true(cp__pbr_key(&r, &f, &w));
    assert_false(cp__pbr_skip(&r, w));
}

static void test_read_repeated(void **state)
{
    static const uint8_t packed[] = {0x0a, 0x04, 0x01, 0x02, 0xac, 0x02};
    static const uint8_t bad_packed[] = {0x0a, 0x02, 0x01, 0x80};
    uint64_t out[3];
    size_t n = 0, count = 0;
    uint32_t f;
    int w;
    cp__pbr r = view(packed, sizeof packed), r2 = r;
    assert_true(cp__pbr_key(&r, &f, &w));
    assert_true(cp__pbr_count_varints(&r, w, &count));
    assert_int_equal(count, 3);
    assert_true(cp__pbr_key(&r2, &f, &w));
    assert_true(cp__pbr_read_varints(&r2, w, out, 3, &n));
    assert_int_equal(n, 3);
    assert_int_equal(out[2], 300);
    r2 = view(packed, sizeof packed);
    n = 0;
    assert_true(cp__pbr_key(&r2, &f, &w));
    assert_false(cp__pbr_read_varints(&r2, w, out, 2, &n)); /* over cap */
    r = view(bad_packed, sizeof bad_packed);
    count = 0;
    assert_true(cp__pbr_key(&r, &f, &w));
    assert_false(cp__pbr_count_varints(&r, w, &count));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_packed),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_long_nested),
        cmocka_unit_test(test_gzip_stream_matches_raw),
        cmocka_unit_test(test_gzip_incompressible_steps_down),
        cmocka_unit_test(test_output_limit),
        cmocka_unit_test(test_read_varint),
        cmocka_unit_test(test_read_fields),
        cmocka_unit_test(test_read_repeated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
