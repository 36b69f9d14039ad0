/*
 * test_parse.c — the explorer's input parsers: JSON reader/writer,
 * multipart/form-data (good bodies and every rejection), RFC 3339 times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"
#include "json.h"
#include "multipart.h"
#include "tags.h"
#include "timeutil.h"

static ex_jval *parse_ok(const char *s)
{
    ex_jval *v = NULL;
    char err[160];
    assert_int_equal(ex_json_parse(s, strlen(s), &v, err, sizeof err), 0);
    return v;
}

static void parse_bad(const char *s)
{
    ex_jval *v = NULL;
    char err[160] = "";
    assert_int_equal(ex_json_parse(s, strlen(s), &v, err, sizeof err), -1);
    assert_null(v);
    assert_non_null(strstr(err, "invalid JSON at byte"));
}

static void test_json_values(void **state)
{
    ex_jval *v = parse_ok(" {\"a\": [1, -2.5e1, true, null], \"s\": \"x\\\"\\u00e9\\ud83d\\ude00\", \"n\": \"42\"} ");
    const ex_jval *a = ex_json_get(v, "a");
    assert_non_null(a);
    assert_int_equal(a->type, EX_J_ARR);
    assert_int_equal(a->n, 4);
    assert_true(a->items[1].num == -25.0);
    assert_true(a->items[2].b);
    assert_int_equal(a->items[3].type, EX_J_NULL);
    assert_string_equal(ex_json_str(v, "s"), "x\"\xc3\xa9\xf0\x9f\x98\x80");
    assert_true(ex_json_num(v, "n", 0) == 42.0);
    assert_true(ex_json_num(v, "missing", 7) == 7.0);
    /* spans let the intake keep "info" verbatim */
    assert_int_equal(a->len, strlen("[1, -2.5e1, true, null]"));
    ex_json_free(v);
}

static void test_json_rejects(void **state)
{
    const char *bad[] = {"", "{", "{\"a\" 1}", "[1,]", "[1 2]", "\"abc", "\"\\x\"", "\"\\ud800\"", "tru",
                         "01x", "{\"a\":1}}", "\"tab\there\"", "-", "[\"\\u12\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) parse_bad(bad[i]);
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    ex_jval *v = NULL;
    char err[160];
    assert_int_equal(ex_json_parse(deep, 200, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "nested too deeply"));
}

static void test_json_writer(void **state)
{
    cp_buf b;
    ex_jw w;
    cp_buf_init(&b, 0);
    ex_jw_init(&w, &b);
    ex_jw_obj(&w);
    ex_jw_kstr(&w, "s", "a\"b\\c\n\x01");
    ex_jw_kint(&w, "i", -3);
    ex_jw_knum(&w, "big", 82200000000.0);
    ex_jw_knum(&w, "frac", 1.5);
    ex_jw_knum(&w, "nan", 0.0 / 0.0);
    ex_jw_key(&w, "arr");
    ex_jw_arr(&w);
    ex_jw_int(&w, 1);
    ex_jw_str(&w, NULL);
    ex_jw_arr_end(&w);
    ex_jw_obj_end(&w);
    assert_int_equal(w.err, 0);
    assert_int_equal(ex_buf_cstr(&b), 0);
    assert_string_equal((char *)b.data, "{\"s\":\"a\\\"b\\\\c\\u000a\\u0001\",\"i\":-3,\"big\":82200000000,"
                                        "\"frac\":1.5,\"nan\":null,\"arr\":[1,null]}");
    ex_jval *v = parse_ok((char *)b.data); /* the writer's output reads back */
    assert_string_equal(ex_json_str(v, "s"), "a\"b\\c\n\x01");
    ex_json_free(v);
    cp_buf_free(&b);
}

#define BODY(...) __VA_ARGS__
static const char GOOD[] = BODY("preamble\r\n--XyZ\r\n"
                                "Content-Disposition: form-data; name=\"event\"; filename=\"event.json\"\r\n"
                                "Content-Type: application/json\r\n\r\n{\"a\":1}\r\n"
                                "--XyZ\r\nContent-Disposition: form-data; name=\"auto.pprof\"; filename=\"auto.pprof\"\r\n\r\n"
                                "\x1f\x8b\r\n--X\r\n"
                                "\r\n--XyZ--\r\n");

static int mp(const char *body, size_t len, ex_multipart *m, char *err)
{
    return ex_mp_parse((const uint8_t *)body, len, "XyZ", m, err, 160);
}

static void test_multipart_good(void **state)
{
    ex_multipart m;
    char err[160];
    assert_int_equal(mp(GOOD, sizeof GOOD - 1, &m, err), 0);
    assert_int_equal(m.nparts, 2);
    const ex_mp_part *e = ex_mp_find(&m, "event");
    assert_non_null(e);
    assert_string_equal(e->filename, "event.json");
    assert_string_equal(e->content_type, "application/json");
    assert_int_equal(e->len, 7);
    const ex_mp_part *p = ex_mp_find(&m, "auto.pprof");
    assert_non_null(p);
    /* binary content holding CRLF and a boundary prefix stays intact */
    assert_int_equal(p->len, 2 + 2 + 3 + 2);
    assert_memory_equal(p->data, "\x1f\x8b\r\n--X\r\n", 9);
    assert_null(ex_mp_find(&m, "nope"));
}

static void test_multipart_rejects(void **state)
{
    ex_multipart m;
    char err[160];
    /* every proper prefix of a good body is a truncated body */
    for (size_t n = 0; n + 4 < sizeof GOOD - 1; n += 7) {
        assert_int_equal(mp(GOOD, n, &m, err), -1);
        assert_non_null(strstr(err, "multipart: "));
    }
    const char *nb = "no boundary here";
    assert_int_equal(mp(nb, strlen(nb), &m, err), -1);
    const char *noname = "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--";
    assert_int_equal(mp(noname, strlen(noname), &m, err), -1);
    assert_non_null(strstr(err, "without a name"));
    const char *garbled = "--XyZjunk\r\n\r\n";
    assert_int_equal(mp(garbled, strlen(garbled), &m, err), -1);
}

static void test_boundary(void **state)
{
    char b[128], err[160];
    assert_int_equal(ex_mp_boundary("multipart/form-data; boundary=abc123", b, sizeof b, err, sizeof err), 0);
    assert_string_equal(b, "abc123");
    assert_int_equal(ex_mp_boundary("Multipart/Form-Data;boundary=\"q u\"", b, sizeof b, err, sizeof err), 0);
    assert_string_equal(b, "q u");
    assert_int_equal(ex_mp_boundary("application/json", b, sizeof b, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected Content-Type multipart/form-data"));
    assert_int_equal(ex_mp_boundary(NULL, b, sizeof b, err, sizeof err), -1);
    assert_int_equal(ex_mp_boundary("multipart/form-data", b, sizeof b, err, sizeof err), -1);
    assert_int_equal(ex_mp_boundary("multipart/form-datax; boundary=a", b, sizeof b, err, sizeof err), -1);
}

static void test_times(void **state)
{
    int64_t ns;
    char out[40];
    assert_int_equal(ex_time_parse_rfc3339("2026-01-02T03:04:05.123456789Z", &ns), 0);
    assert_true(ns == 1767323045123456789LL);
    assert_int_equal(ex_time_parse_rfc3339("2026-01-02T04:04:05.123456789+01:00", &ns), 0);
    assert_true(ns == 1767323045123456789LL);
    assert_int_equal(ex_time_parse_rfc3339("2026-01-02T03:04:05Z", &ns), 0);
    ex_time_format(ns, out, sizeof out);
    assert_string_equal(out, "2026-01-02T03:04:05.000Z");
    assert_int_equal(ex_time_parse_rfc3339("2026-13-02T03:04:05Z", &ns), -1);
    assert_int_equal(ex_time_parse_rfc3339("yesterday", &ns), -1);
    assert_int_equal(ex_time_parse_rfc3339("2026-01-02T03:04:05", &ns), -1);
    assert_int_equal(ex_time_parse_param("1767323045123", &ns), 0);
    assert_true(ns == 1767323045123000000LL);
    assert_int_equal(ex_time_parse_param("", &ns), -1);
}

static void expect_tags(const char *tags, const char *const *want, size_t n)
{
    ex_tag_iter it;
    const char *k, *v;
    size_t kn, vn, i = 0;
    char got[200];
    ex_tag_iter_init(&it, tags);
    while (ex_tag_next(&it, &k, &kn, &v, &vn)) {
        assert_true(i < n);
        snprintf(got, sizeof got, "%.*s=%.*s", (int)kn, k, (int)vn, v);
        assert_string_equal(got, want[i++]);
    }
    assert_int_equal(i, n);
}

static void test_tags(void **state)
{
    const char *const a[] = {"service=my app", "env=x:y", "empty="};
    expect_tags("service:my app,,env:x:y,novalue,:nokey,empty:", a, 3);
    const char *const b[] = {"service=a", "env=b"};
    expect_tags("  service:a   env:b ", b, 2);
    expect_tags("", NULL, 0);
    expect_tags(NULL, NULL, 0);
}

static void test_listen_address(void **state)
{
    char host[64];
    uint16_t port;
    assert_int_equal(ex_http_parse_listen("127.0.0.1:8127", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8127);
    assert_int_equal(ex_http_parse_listen("[::1]:0", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    const char *bad[] = {"", "8127", ":8127", "host:", "host:70000", "host:12x", "[::1]8127", "[::1", NULL};
    for (size_t i = 0; bad[i]; i++) assert_int_equal(ex_http_parse_listen(bad[i], host, sizeof host, &port), -1);
    assert_int_equal(ex_http_parse_listen(NULL, host, sizeof host, &port), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_values),     cmocka_unit_test(test_json_rejects),
        cmocka_unit_test(test_json_writer),     cmocka_unit_test(test_multipart_good),
        cmocka_unit_test(test_multipart_rejects), cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_times),           cmocka_unit_test(test_tags),
        cmocka_unit_test(test_listen_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
