/*
 * test_collector_demo.c — runs contprof_demo (path in argv[1]) for a short
 * while with its profiles sent to a scratch directory, then decodes the
 * profile it wrote: CPU time splits 3:1 between parse_json and render
 * (±4 points), db_query holds wall time but almost no CPU, alloc-space
 * splits 3:1, and the sidecar names the service. With go installed (path
 * in argv[2]), the written file also loads in `go tool pprof -raw`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/wait.h>

#include "collector_test_util.h"
#include "contprof.h"

static const char *g_demo, *g_go;

/* `go tool pprof -raw path` must succeed and show the demo's functions. */
static void check_with_go(const char *path)
{
    if (!g_go || !*g_go) {
        print_message("go not found at configure time: go tool pprof check skipped\n");
        return;
    }
    char cmd[2400];
    snprintf(cmd, sizeof(cmd), "HOME='%s/gohome' GOCACHE='%s/gohome/cache' GOFLAGS= GOTOOLCHAIN=local "
             "'%s' tool pprof -raw '%s' 2>&1", CP_TEST_BINARY_DIR, CP_TEST_BINARY_DIR, g_go, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[65536];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = 0;
    int status = pclose(p);
    if (status != 0 || !strstr(out, "cpu-time/nanoseconds") || !strstr(out, "parse_json"))
        fail_msg("go tool pprof -raw failed (%d): %.2000s", status, out);
}

/* Sum of column vi over samples whose leaf function is name. */
static int64_t leaf_total(const cp_pprof *pp, int vi, const char *name)
{
    int64_t sum = 0;
    for (size_t i = 0; i < pp->n_samples; i++) {
        const cp_pprof_location *l = cp_pprof_location_by_id(pp, pp->samples[i].location_ids[0]);
        const cp_pprof_function *f = l ? cp_pprof_function_by_id(pp, l->lines[0].function_id) : NULL;
        if (f && strcmp(f->name, name) == 0)
            sum += pp->samples[i].values[vi];
    }
    return sum;
}

static char *run_demo(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        setenv("CONTPROF_OUTPUT_DIR", dir, 1);
        setenv("CONTPROF_UPLOAD_PERIOD", "60", 1); /* one profile, written at stop */
        execl(g_demo, g_demo, "1.5", (char *)NULL);
        _exit(127);
    }
    int status = -1;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *path = malloc(700);
    snprintf(path, 700, "%s/contprof-demo.%d.1.pprof.gz", dir, (int)pid);
    return path;
}

static void test_demo_profile(void **state)
{
    (void)state;
    char *dir = ct_scratch("demo"), *path = run_demo(dir);
    size_t len = 0;
    char *data = ct_read(path, &len);
    assert_non_null(data);
    cp_pprof *pp = NULL;
    assert_int_equal(cp_pprof_decode((const uint8_t *)data, len, 0, &pp), CP_OK);
    int cpu = cp_pprof_type_index(pp, "cpu-time"), wall = cp_pprof_type_index(pp, "wall-time");
    int alloc = cp_pprof_type_index(pp, "alloc-space");
    assert_true(cpu >= 0 && wall >= 0 && alloc >= 0);
    double parse = (double)leaf_total(pp, cpu, "parse_json"), render = (double)leaf_total(pp, cpu, "render");
    double share = parse / (parse + render);
    print_message("parse_json share of CPU %.1f%%\n", share * 100);
    assert_true(share > 0.71 && share < 0.79);
    assert_true(leaf_total(pp, wall, "db_query") > 1000000000LL);       /* ~1.5 s waiting */
    /* ...for little CPU: under 10% of its wall time (a share of its own
     * time, not of the worker's, so a loaded machine cannot tip it) */
    assert_true(leaf_total(pp, cpu, "db_query") * 10 < leaf_total(pp, wall, "db_query"));
    double ap = (double)leaf_total(pp, alloc, "parse_json"), ar = (double)leaf_total(pp, alloc, "render");
    assert_true(ap / (ap + ar) > 0.70 && ap / (ap + ar) < 0.80);
    cp_pprof_free(pp);
    free(data);
    check_with_go(path);
    strcpy(path + strlen(path) - strlen(".pprof.gz"), ".json");
    char *side = ct_read(path, NULL);
    assert_non_null(side);
    assert_non_null(strstr(side, "service:contprof-demo,"));
    free(side);
    free(path);
    ct_rmdir(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s path/to/contprof_demo\n", argv[0]);
        return 2;
    }
    g_demo = argv[1];
    g_go = argc > 2 ? argv[2] : NULL;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_demo_profile)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
