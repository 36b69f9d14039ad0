/*
 * test_settings_sources.c — parsing of the settings sources: "k=v,k=v"
 * option strings (bare keys, spaces, tags with commas, unknown keys via
 * the front end's callback) and Java-style .properties files (comments,
 * ':' and ' ' separators, continuations, escapes, file:line in errors).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "collector_test_util.h"
#include "contprof.h"

static int reset(void **state)
{
    (void)state;
    cp_config_reset();
    return 0;
}

typedef struct seen {
    char keys[256];
} seen;

static bool on_unknown(const char *key, const char *value, void *ctx)
{
    seen *s = ctx;
    strcat(s->keys, key);
    strcat(s->keys, "=");
    strcat(s->keys, value);
    strcat(s->keys, ";");
    return strcmp(key, "config") == 0 || strcmp(key, "help") == 0;
}

static void test_options(void **state)
{
    (void)state;
    seen s = {""};
    ct_capture_begin();
    int err = cp_config_parse_options(" service = shop , upload_period=5,help,tags=team:a,tier:web,"
                                      "config=/x/y.properties,cpu_enabled,bogus=1",
                                      CP_SRC_OPTION, on_unknown, &s);
    char *out = ct_capture_end();
    assert_int_equal(err, CP_EUNKNOWN); /* the first error; the rest applied */
    const cp_config *c = cp_config_get();
    assert_string_equal(c->service, "shop");
    assert_int_equal(c->upload_period_s, 5);
    assert_string_equal(c->tags, "team:a,tier:web");
    assert_true(c->cpu_enabled);
    assert_string_equal(s.keys, "help=;config=/x/y.properties;bogus=1;");
    assert_int_equal(ct_count_lines(out), 1); /* only bogus is warned about */
    assert_non_null(strstr(out, "bogus"));
    free(out);
    assert_int_equal(cp_config_parse_options("", CP_SRC_OPTION, NULL, NULL), CP_OK);
    assert_int_equal(cp_config_parse_options(",,", CP_SRC_OPTION, NULL, NULL), CP_OK);
    assert_int_equal(cp_config_parse_options(NULL, CP_SRC_OPTION, NULL, NULL), CP_OK);
}

static void test_option_bad_value(void **state)
{
    (void)state;
    ct_capture_begin();
    int err = cp_config_parse_options("max_frames=1000,env=prod", CP_SRC_OPTION, NULL, NULL);
    char *out = ct_capture_end();
    assert_int_equal(err, CP_ERANGE);
    assert_int_equal(ct_count_lines(out), 1);
    assert_int_equal(cp_config_get()->max_frames, 64);
    assert_string_equal(cp_config_get()->env, "prod");
    free(out);
}

static char *write_props(const char *text)
{
    char *dir = ct_scratch("props");
    char *path = malloc(600);
    snprintf(path, 600, "%s/contprof.properties", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(dir);
    return path;
}

static void remove_props(char *path)
{
    unlink(path);
    *strrchr(path, '/') = 0;
    rmdir(path);
    free(path);
}

static void test_properties(void **state)
{
    (void)state;
    char *path = write_props("\xEF\xBB\xBF# a comment after a byte order mark\n"
                             "! another comment\n"
                             "\n"
                             "   contprof.service = billing  \n"
                             "env:staging\n"
                             "version 1.2.3\n"
                             "tags = a:1,\\\n"
                             "       b:2,\\\n"
                             "   c:3\n"
                             "output_dir=/tmp/with\\ space\\u00e9\r\n"
                             "upload_period=45");
    assert_int_equal(cp_config_load_properties(path, CP_SRC_FILE), CP_OK);
    const cp_config *c = cp_config_get();
    assert_string_equal(c->service, "billing"); /* trailing blanks dropped */
    assert_string_equal(c->env, "staging");
    assert_string_equal(c->version, "1.2.3");
    assert_string_equal(c->tags, "a:1,b:2,c:3");
    assert_string_equal(c->output_dir, "/tmp/with space\xc3\xa9");
    assert_int_equal(c->upload_period_s, 45);
    /* the file is the lowest source but defaults */
    cp_config_set("env", "prod", CP_SRC_ENV);
    assert_int_equal(cp_config_load_properties(path, CP_SRC_FILE), CP_OK);
    assert_string_equal(c->env, "prod");
    remove_props(path);
}

static void test_properties_errors(void **state)
{
    (void)state;
    char *path = write_props("service=a\n\nupload_period=abc\nwho=me\n");
    ct_capture_begin();
    int err = cp_config_load_properties(path, CP_SRC_FILE);
    char *out = ct_capture_end();
    assert_int_equal(err, CP_EINVAL);
    assert_non_null(strstr(out, "contprof.properties:3)"));
    assert_non_null(strstr(out, "unknown setting 'who'"));
    assert_int_equal(ct_count_lines(out), 2);
    assert_string_equal(cp_config_get()->service, "a");
    free(out);
    remove_props(path);
    ct_capture_begin();
    assert_int_equal(cp_config_load_properties("/nonexistent/x.properties", CP_SRC_FILE), CP_EIO);
    out = ct_capture_end();
    assert_int_equal(ct_count_lines(out), 1);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_options, reset),
        cmocka_unit_test_setup(test_option_bad_value, reset),
        cmocka_unit_test_setup(test_properties, reset),
        cmocka_unit_test_setup(test_properties_errors, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
