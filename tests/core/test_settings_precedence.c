/*
 * test_settings_precedence.c — the settings table's precedence rules:
 * option > system property > env > file > default whatever the call
 * order; CONTPROF_* beats DD_* in the environment; agent URL resolution;
 * every class of bad value keeps the previous value and prints exactly
 * one line naming the setting, its origin, the accepted range and the
 * fallback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "collector_test_util.h"
#include "config_internal.h"
#include "contprof.h"

static int reset(void **state)
{
    (void)state;
    static const char *vars[] = {"CONTPROF_SERVICE", "DD_SERVICE", "CONTPROF_UPLOAD_PERIOD",
                                 "DD_PROFILING_UPLOAD_PERIOD", "DD_AGENT_HOST", "DD_TRACE_AGENT_PORT",
                                 "DD_TRACE_AGENT_URL", "CONTPROF_AGENT_URL", "DD_API_KEY", "DD_TAGS",
                                 "CONTPROF_MAX_FRAMES", "DD_PROFILING_MAX_FRAMES", "DD_PROFILING_OUTPUT_PPROF"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    cp_config_reset();
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    const cp_config *c = cp_config_get();
    assert_int_equal(c->upload_period_s, 60);
    assert_int_equal(c->max_frames, 64);
    assert_int_equal(c->upload_timeout_ms, 10000);
    assert_int_equal(c->flush_deadline_ms, 5000);
    assert_int_equal(c->log_level, CP_LOG_WARN);
    assert_string_equal(c->site, "datadoghq.com");
    assert_string_equal(c->agent_url, "");
    assert_true(c->cpu_enabled && c->wall_enabled && c->alloc_enabled && c->heap_enabled);
    assert_true(c->host[0] != 0); /* gethostname */
    size_t n;
    const cp_setting_info *t = cp_settings_table(&n);
    assert_true(n >= 25);
    for (size_t i = 0; i < n; i++) { /* every default parses back as itself */
        assert_int_equal(cp_config_set(t[i].name, t[i].default_str, CP_SRC_DEFAULT), CP_OK);
        assert_non_null(strstr(t[i].env_names, "CONTPROF_"));
    }
}

/* All 5! orders of setting one value from each source end the same. */
static void test_order_independent(void **state)
{
    (void)state;
    static const char *vals[] = {"11", "12", "13", "14", "15"}; /* by source */
    int perm[5] = {0, 1, 2, 3, 4};
    for (int k = 0; k < 120; k++) {
        int p[5], used = 0, x = k;
        for (int i = 5; i > 0; i--) { /* k-th permutation */
            int pick = x % i, seen = -1;
            x /= i;
            for (int j = 0; j < 5; j++) {
                if (used & (1 << j))
                    continue;
                if (++seen == pick) {
                    p[5 - i] = perm[j];
                    used |= 1 << j;
                    break;
                }
            }
        }
        cp_config_reset();
        for (int i = 0; i < 5; i++)
            assert_int_equal(cp_config_set("upload_period", vals[p[i]], (cp_source)p[i]), CP_OK);
        assert_int_equal(cp_config_get()->upload_period_s, 15);
    }
    cp_config_reset();
    cp_config_set("upload_period", "13", CP_SRC_ENV);
    cp_config_set("upload_period", "11", CP_SRC_DEFAULT); /* a front end's default */
    cp_config_set("upload_period", "12", CP_SRC_FILE);
    assert_int_equal(cp_config_get()->upload_period_s, 13);
}

static void test_env_names(void **state)
{
    (void)state;
    setenv("DD_SERVICE", "dd-svc", 1);
    setenv("DD_PROFILING_UPLOAD_PERIOD", "30", 1);
    setenv("DD_PROFILING_MAX_FRAMES", "100", 1);
    setenv("DD_PROFILING_OUTPUT_PPROF", "/tmp/x", 1);
    assert_int_equal(cp_config_load_env(), CP_OK);
    const cp_config *c = cp_config_get();
    assert_string_equal(c->service, "dd-svc");
    assert_int_equal(c->upload_period_s, 30);
    assert_int_equal(c->max_frames, 100);
    assert_string_equal(c->output_dir, "/tmp/x");
    setenv("CONTPROF_SERVICE", "cp-svc", 1);
    setenv("CONTPROF_UPLOAD_PERIOD", "20", 1);
    assert_int_equal(cp_config_load_env(), CP_OK);
    assert_string_equal(c->service, "cp-svc");
    assert_int_equal(c->upload_period_s, 20);
    cp_config_set("service", "opt", CP_SRC_OPTION);
    cp_config_load_env();
    assert_string_equal(cp_config_get()->service, "opt");
}

static void test_agent_url(void **state)
{
    (void)state;
    const cp_config *c = cp_config_get();
    assert_string_equal(c->agent_url, "");
    setenv("DD_AGENT_HOST", "agent.local", 1);
    cp_config_load_env();
    assert_string_equal(c->agent_url, "http://agent.local:8126");
    setenv("DD_TRACE_AGENT_PORT", "9000", 1);
    cp_config_load_env();
    assert_string_equal(c->agent_url, "http://agent.local:9000");
    setenv("DD_AGENT_HOST", "::1", 1);
    cp_config_load_env();
    assert_string_equal(c->agent_url, "http://[::1]:9000");
    setenv("DD_TRACE_AGENT_URL", "http://other:1234/", 1);
    cp_config_load_env();
    assert_string_equal(c->agent_url, "http://other:1234");
    cp_config_set("agent_url", "unix:///var/run/apm.sock", CP_SRC_OPTION);
    assert_string_equal(c->agent_url, "unix:///var/run/apm.sock");
}

/* One bad value: returns err, keeps the previous value, prints one line
 * holding every needle. */
static void check_bad(const char *name, const char *value, cp_source src, int err, const char **needles)
{
    ct_capture_begin();
    int got = cp_config_set(name, value, src);
    char *out = ct_capture_end();
    assert_int_equal(got, err);
    assert_int_equal(ct_count_lines(out), 1);
    for (; *needles; needles++) {
        if (!strstr(out, *needles))
            fail_msg("'%s' lacks '%s'", out, *needles);
    }
    free(out);
}

static void test_bad_values(void **state)
{
    (void)state;
    check_bad("upload_period", "0", CP_SRC_OPTION, CP_ERANGE,
              (const char *[]){"upload_period", "'0'", "from option", "1..3600", "using 60", NULL});
    check_bad("upload_period", "ten", CP_SRC_ENV, CP_EINVAL, (const char *[]){"integer", "using 60", NULL});
    check_bad("upload_period", "", CP_SRC_FILE, CP_EINVAL, (const char *[]){"upload_period", NULL});
    check_bad("upload_period", "99999999999999999999", CP_SRC_OPTION, CP_EINVAL, (const char *[]){"1..3600", NULL});
    check_bad("max_frames", "600", CP_SRC_OPTION, CP_ERANGE, (const char *[]){"1..599", "using 64", NULL});
    check_bad("cpu_enabled", "maybe", CP_SRC_OPTION, CP_EINVAL, (const char *[]){"true/false", "using true", NULL});
    check_bad("log_level", "loud", CP_SRC_OPTION, CP_EINVAL, (const char *[]){"debug", "'warn'", NULL});
    check_bad("agent_url", "ftp://x", CP_SRC_OPTION, CP_EINVAL, (const char *[]){"http://", NULL});
    check_bad("site", "a/b", CP_SRC_OPTION, CP_EINVAL, (const char *[]){"site", NULL});
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    check_bad("tags", big, CP_SRC_OPTION, CP_ETOOBIG, (const char *[]){"at most", NULL});
    check_bad("no_such_setting", "1", CP_SRC_OPTION, CP_EUNKNOWN, (const char *[]){"unknown setting", NULL});
    const cp_config *c = cp_config_get();
    assert_int_equal(c->upload_period_s, 60);
    assert_int_equal(c->max_frames, 64);
    assert_true(c->cpu_enabled);
    assert_int_equal(c->log_level, CP_LOG_WARN);
    /* the environment names the variable it came from */
    setenv("CONTPROF_UPLOAD_PERIOD", "-5", 1);
    ct_capture_begin();
    assert_int_equal(cp_config_load_env(), CP_ERANGE);
    char *out = ct_capture_end();
    assert_non_null(strstr(out, "(from env CONTPROF_UPLOAD_PERIOD)"));
    assert_int_equal(ct_count_lines(out), 1);
    free(out);
    assert_int_equal(c->upload_period_s, 60);
}

static void test_api_key_never_echoed(void **state)
{
    (void)state;
    cp_config_set("api_key", "sekrit-key-123", CP_SRC_OPTION);
    assert_string_equal(cp__config_api_key(), "sekrit-key-123");
    char *json = cp_config_to_json();
    assert_null(strstr(json, "sekrit"));
    assert_non_null(strstr(json, "\"api_key\":\"(redacted)\""));
    free(json);
    cp_config_set("log_level", "debug", CP_SRC_OPTION);
    ct_capture_begin();
    cp_log(CP_LOG_ERROR, "key is sekrit-key-123 here");
    char *out = ct_capture_end();
    assert_null(strstr(out, "sekrit-key-123"));
    free(out);
}

static void test_values_parse(void **state)
{
    (void)state;
    assert_int_equal(cp_config_set("contprof.wall_enabled", "off", CP_SRC_SYSPROP), CP_OK);
    assert_false(cp_config_get()->wall_enabled);
    assert_int_equal(cp_config_set("CPU-ENABLED", "No", CP_SRC_OPTION), CP_OK);
    assert_false(cp_config_get()->cpu_enabled);
    assert_int_equal(cp_config_set("heap_enabled", "", CP_SRC_OPTION), CP_OK); /* bare flag */
    assert_true(cp_config_get()->heap_enabled);
    assert_int_equal(cp_config_set("log_level", "DEBUG", CP_SRC_OPTION), CP_OK);
    assert_int_equal(cp_config_get()->log_level, CP_LOG_DEBUG);
    assert_int_equal(cp_config_set("upload_period", " 7 ", CP_SRC_OPTION), CP_OK);
    assert_int_equal(cp_config_get()->upload_period_s, 7);
    char *json = cp_config_to_json();
    assert_non_null(strstr(json, "\"upload_period\":7"));
    assert_non_null(strstr(json, "\"wall_enabled\":false"));
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, reset),
        cmocka_unit_test_setup(test_order_independent, reset),
        cmocka_unit_test_setup(test_env_names, reset),
        cmocka_unit_test_setup(test_agent_url, reset),
        cmocka_unit_test_setup(test_bad_values, reset),
        cmocka_unit_test_setup(test_api_key_never_echoed, reset),
        cmocka_unit_test_setup(test_values_parse, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
