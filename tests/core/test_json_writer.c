/*
 * test_json_writer.c — the core's JSON writer (byte-exact output, escaping,
 * commas, nesting), the well-formedness checker used by
 * cp_runtime_info_set, RFC 3339 times, and allocation failure in the
 * writer (error reported, nothing leaked).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "json.h"

static char *build(void)
{
    cp_buf b;
    cp_buf_init(&b, 0);
    cp__json j;
    cp__json_init(&j, &b);
    cp__json_obj_begin(&j, NULL);
    cp__json_str(&j, "s", "a\"b\\c\n\x01\xc3\xa9");
    cp__json_int(&j, "i", -42);
    cp__json_uint(&j, "u", UINT64_MAX);
    cp__json_bool(&j, "t", true);
    cp__json_double(&j, "d", 0.25);
    cp__json_arr_begin(&j, "a");
    cp__json_str(&j, NULL, "x");
    cp__json_obj_begin(&j, NULL);
    cp__json_obj_end(&j);
    cp__json_raw(&j, NULL, "[1,2]");
    cp__json_arr_end(&j);
    cp__json_str(&j, "n", NULL);
    cp__json_obj_end(&j);
    char *out = NULL;
    int err = cp__json_take(&j, &out);
    if (err != CP_OK)
        return NULL;
    return out;
}

static void test_writer_exact(void **state)
{
    (void)state;
    char *out = build();
    assert_non_null(out);
    assert_string_equal(out, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\",\"i\":-42,\"u\":18446744073709551615,"
                             "\"t\":true,\"d\":0.25,\"a\":[\"x\",{},[1,2]],\"n\":\"\"}");
    assert_true(cp__json_valid(out, strlen(out)));
    free(out);
}

static void test_valid(void **state)
{
    (void)state;
    static const char *good[] = {"{}", "[]", " 1 ", "-0.5e+3", "\"\\u00e9\"", "null", "true",
                                 "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}", "\"\xc3\xa9\""};
    static const char *bad[] = {"", "{", "[1,]", "{\"a\"}", "{a:1}", "01", "1.", "tru", "\"\\x\"", "\"a",
                                "{} {}", "[1 2]", "\"\\u12\"", "-", "{\"a\":1,}", "\"\x01\""};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        assert_true(cp__json_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (cp__json_valid(bad[i], strlen(bad[i])))
            fail_msg("accepted '%s'", bad[i]);
    }
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    assert_false(cp__json_valid(deep, 200)); /* nesting over 64 */
    assert_true(cp__json_valid(deep + 40, 120));
    assert_false(cp__json_valid("1\0", 2)); /* embedded NUL */
}

static void test_rfc3339(void **state)
{
    (void)state;
    char t[40];
    cp__rfc3339(1767323045000000007LL, t, sizeof(t));
    assert_string_equal(t, "2026-01-02T03:04:05.000000007Z");
    cp__rfc3339(0, t, sizeof(t));
    assert_string_equal(t, "1970-01-01T00:00:00.000000000Z");
}

static void test_alloc_failure(void **state)
{
    (void)state;
    for (long n = 1; n < 40; n++) {
        unsigned long before = cp__alloc_injected();
        cp__alloc_fail_after(n);
        char *out = build();
        cp__alloc_fail_after(-1);
        if (cp__alloc_injected() == before) { /* no allocation left to fail */
            assert_non_null(out);
            free(out);
            break;
        }
        assert_null(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_exact),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
