/*
 * test_diagnose.c — the support report (cp_diagnose) and the start-up
 * checks: machine facts that match the machine's own files, every setting
 * with its source, secrets never shown, destinations checked for real (a
 * writable and an unwritable directory, a live local intake and a refused
 * port), and the status that decides `--diagnose`'s exit code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector_test_util.h"
#include "contprof.h"
#include "intake_server.h"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    cp_config_reset();
    snprintf(g_dir, sizeof(g_dir), "/tmp/cp-diag-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rmdir(g_dir);
    unsetenv("CONTPROF_SERVICE");
    cp_config_reset();
    return 0;
}

static void test_report_facts_and_sources(void **state)
{
    (void)state;
    setenv("CONTPROF_SERVICE", "diag-svc", 1);
    cp_config_load_env();
    cp_config_set("output_dir", g_dir, CP_SRC_OPTION);
    cp_config_set("api_key", "very-secret-key-42", CP_SRC_FILE);
    cp_config_set("proxy_url", "http://bob:hunter2@127.0.0.1:3128", CP_SRC_OPTION);
    cp_runtime_info_set("runtime_facts", "{\"type\":\"TestVM\",\"version\":\"9.9\"}");
    char *r = NULL;
    int problems = cp_diagnose(&r);
    assert_non_null(r);
    /* the machine's own facts */
    struct utsname u;
    assert_int_equal(uname(&u), 0);
    assert_non_null(strstr(r, u.release));
    assert_non_null(strstr(r, u.machine));
    assert_non_null(strstr(r, "os: "));
    FILE *f = fopen("/etc/os-release", "r");
    if (f) {
        char line[256], want[256] = "";
        while (fgets(line, sizeof(line), f))
            if (strncmp(line, "VERSION_ID=", 11) == 0)
                snprintf(want, sizeof(want), "version %.*s", (int)strcspn(line + 11, "\"\n") + 0,
                         line + 11 + (line[11] == '"'));
        fclose(f);
        want[strcspn(want, "\"")] = 0;
        if (want[0])
            assert_non_null(strstr(r, want));
    }
    assert_non_null(strstr(r, "runtime: {\"type\":\"TestVM\",\"version\":\"9.9\"}"));
    assert_non_null(strstr(r, "contprof: " CP_PROFILER_VERSION));
    /* every setting with its source */
    assert_non_null(strstr(r, "setting service = 'diag-svc' (env CONTPROF_SERVICE)"));
    assert_non_null(strstr(r, "setting output_dir = '"));
    assert_non_null(strstr(r, "(option)"));
    assert_non_null(strstr(r, "setting upload_period = 60 (default)"));
    assert_non_null(strstr(r, "setting api_key = (redacted) (file)"));
    assert_non_null(strstr(r, "setting proxy_url = 'http://bob:***@127.0.0.1:3128' (option)"));
    assert_null(strstr(r, "very-secret-key-42"));
    assert_null(strstr(r, "hunter2"));
    /* the directory is checked for real */
    assert_non_null(strstr(r, "writable"));
    assert_null(strstr(r, "NOT writable"));
    assert_non_null(strstr(r, "status: healthy"));
    assert_int_equal(problems, 0);
    free(r);
}

static void test_unwritable_dir_is_a_problem(void **state)
{
    (void)state;
    cp_config_set("output_dir", "/proc/nonexistent/profiles", CP_SRC_OPTION);
    char *r = NULL;
    int problems = cp_diagnose(&r);
    assert_non_null(r);
    assert_true(problems >= 1);
    assert_non_null(strstr(r, "destination: files in /proc/nonexistent/profiles: NOT writable"));
    assert_non_null(strstr(r, "status: PROBLEMS FOUND"));
    free(r);
}

static void test_intake_checked(void **state)
{
    (void)state;
    intake *in = intake_start();
    assert_non_null(in);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", intake_port(in));
    cp_config_set("agent_url", url, CP_SRC_OPTION);
    char *r = NULL;
    assert_int_equal(cp_diagnose(&r), 0);
    assert_non_null(strstr(r, "/profiling/v1/input"));
    assert_non_null(strstr(r, "reachable (HTTP "));
    free(r);
    intake_stop(in);
    /* the same port, now closed: refused, reported, a problem */
    r = NULL;
    assert_true(cp_diagnose(&r) >= 1);
    assert_non_null(strstr(r, "NOT reachable"));
    free(r);
}

static void test_bad_setting_is_a_problem(void **state)
{
    (void)state;
    cp_config_set("output_dir", g_dir, CP_SRC_OPTION);
    char *r = NULL;
    int before = cp_diagnose(&r);
    free(r);
    ct_capture_begin();
    cp_config_set("upload_period", "soon", CP_SRC_ENV);
    free(ct_capture_end());
    r = NULL;
    assert_true(cp_diagnose(&r) > before);
    assert_non_null(strstr(r, "refused"));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_report_facts_and_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_dir_is_a_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intake_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_setting_is_a_problem, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
