/*
 * test_collector_run.c — the collector end to end through the file
 * exporter: value columns = runtime kinds ∩ enabled settings, period,
 * flush, periodic rotation, the export hook, stop exporting the last
 * partial profile, cp_add_sample after stop, restart, tags, runtime info
 * and self-metrics in the sidecar, the run summary, and fork (the child
 * restarts with a new pid and runtime-id).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "collector_test_util.h"
#include "contprof.h"
#include "json.h"

static char *g_dir;

static const cp_runtime_desc g_rt = {"python", "python", "CPython", "3.11.7", CP_KIND_CPU | CP_KIND_WALL};

static int setup(void **state)
{
    (void)state;
    cp_config_reset();
    g_dir = ct_scratch("collector");
    cp_config_set("output_dir", g_dir, CP_SRC_OPTION);
    cp_config_set("service", "svc", CP_SRC_OPTION);
    cp_config_set("env", "test", CP_SRC_OPTION);
    cp_config_set("upload_period", "60", CP_SRC_OPTION);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cp_stop();
    cp_set_export_hook(NULL, NULL);
    ct_rmdir(g_dir);
    free(g_dir);
    return 0;
}

static const cp_frame g_stack[2] = {{"leaf", NULL, "a.py", 3}, {"root", NULL, "a.py", 1}};

static void add(int64_t cpu, int64_t wall)
{
    int64_t v[CP_V__COUNT] = {0};
    v[CP_V_CPU_TIME] = cpu;
    v[CP_V_CPU_SAMPLES] = 1;
    v[CP_V_WALL_TIME] = wall;
    v[CP_V_WALL_SAMPLES] = 1;
    v[CP_V_ALLOC_SPACE] = 999;
    cp_label l = {"thread name", "main", 0, NULL};
    assert_int_equal(cp_add_sample(g_stack, 2, v, &l, 1), CP_OK);
}

/* Decode the last profile written. */
static cp_pprof *last_profile(void)
{
    char *path = cp_last_profile_path();
    assert_non_null(path);
    assert_true(strstr(path, g_dir) == path);
    size_t len = 0;
    char *data = ct_read(path, &len);
    assert_non_null(data);
    cp_pprof *pp = NULL;
    assert_int_equal(cp_pprof_decode((const uint8_t *)data, len, 0, &pp), CP_OK);
    free(data);
    free(path);
    return pp;
}

static void test_flush_writes_profile(void **state)
{
    (void)state;
    assert_int_equal(cp_start(&g_rt), CP_OK);
    assert_int_equal(cp_start(&g_rt), CP_ESTATE);
    assert_true(cp_is_running());
    add(5000000, 10000000);
    add(7000000, 10000000);
    assert_int_equal(cp_flush(5000), CP_OK);
    cp_pprof *pp = last_profile();
    assert_int_equal(pp->n_sample_types, 4);
    assert_string_equal(pp->sample_types[0].type, "cpu-time");
    assert_string_equal(pp->sample_types[3].type, "wall-samples");
    assert_string_equal(pp->period_type.type, "cpu-time");
    assert_int_equal(pp->period, 10000000);
    assert_int_equal(pp->n_samples, 1);
    assert_int_equal(pp->samples[0].values[0], 12000000);
    assert_int_equal(pp->samples[0].values[1], 2);
    assert_int_equal(pp->samples[0].values[2], 20000000);
    assert_true(pp->duration_nanos > 0 && pp->time_nanos > 1700000000LL * 1000000000LL);
    cp_pprof_free(pp);
    assert_int_equal(ct_count_files(g_dir, ".pprof.gz"), 1);
    assert_int_equal(ct_count_files(g_dir, ".json"), 1);
    assert_int_equal(ct_count_files(g_dir, ".tmp"), 0);
}

static void test_kinds_intersect_settings(void **state)
{
    (void)state;
    cp_config_set("alloc_enabled", "false", CP_SRC_OPTION);
    cp_runtime_desc rt = g_rt;
    rt.kinds = CP_KIND_ALLOC | CP_KIND_WALL | CP_KIND_EXCEPTION;
    assert_int_equal(cp_start(&rt), CP_OK);
    add(1, 2);
    assert_int_equal(cp_flush(5000), CP_OK);
    cp_pprof *pp = last_profile();
    assert_int_equal(pp->n_sample_types, 3);
    assert_string_equal(pp->sample_types[0].type, "wall-time");
    assert_string_equal(pp->sample_types[2].type, "exception-samples");
    assert_string_equal(pp->period_type.type, "wall-time");
    assert_int_equal(pp->samples[0].values[0], 2);
    cp_pprof_free(pp);
    cp_stop();
    cp_config_set("wall_enabled", "false", CP_SRC_OPTION);
    rt.kinds = CP_KIND_ALLOC | CP_KIND_WALL;
    char *out;
    ct_capture_begin();
    assert_int_equal(cp_start(&rt), CP_EINVAL); /* nothing left to collect */
    out = ct_capture_end();
    assert_non_null(strstr(out, "no profile type is enabled"));
    free(out);
    assert_false(cp_is_running());
}

static void test_stop_exports_partial(void **state)
{
    (void)state;
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add(1, 1);
    cp_stop();
    cp_stop(); /* idempotent */
    assert_false(cp_is_running());
    assert_int_equal(ct_count_files(g_dir, ".pprof.gz"), 1);
    int64_t v[CP_V__COUNT] = {0};
    assert_int_equal(cp_add_sample(g_stack, 2, v, NULL, 0), CP_ESTATE);
    assert_int_equal(cp_flush(100), CP_ESTATE);
    assert_int_equal(cp_start(&g_rt), CP_OK); /* restart */
    add(1, 1);
    cp_stop();
    assert_int_equal(ct_count_files(g_dir, ".pprof.gz"), 2); /* distinct names across runs */
}

/* A profile never overwrites an earlier file of the same name (a reused
 * pid): the new one gets the runtime-id's first characters added. */
static void test_no_overwrite(void **state)
{
    (void)state;
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add(1, 1);
    assert_int_equal(cp_flush(5000), CP_OK);
    char *first = cp_last_profile_path(), next[1200];
    char *seq = strrchr(first, '/') + strlen("/svc.") + snprintf(NULL, 0, "%d.", (int)getpid());
    snprintf(next, sizeof(next), "%.*s%llu.pprof.gz", (int)(seq - first), first, strtoull(seq, NULL, 10) + 1);
    FILE *f = fopen(next, "w"); /* as if an earlier process with our pid wrote it */
    fputs("earlier", f);
    fclose(f);
    add(1, 1);
    assert_int_equal(cp_flush(5000), CP_OK);
    char *second = cp_last_profile_path(), expect[1300];
    snprintf(expect, sizeof(expect), "%.*s.%.8s.pprof.gz", (int)(strlen(next) - 9), next, cp_runtime_id());
    assert_string_equal(second, expect);
    char *kept = ct_read(next, NULL);
    assert_string_equal(kept, "earlier");
    free(kept);
    free(first);
    free(second);
}

static void test_periodic(void **state)
{
    (void)state;
    cp_config_set("upload_period", "1", CP_SRC_OPTION);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    for (int i = 0; i < 22; i++) {
        add(1, 1);
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    int n = ct_count_files(g_dir, ".pprof.gz");
    assert_true(n >= 2 && n <= 3);
}

static atomic_int g_hook_calls;

static void hook(void *ctx)
{
    assert_ptr_equal(ctx, &g_hook_calls);
    atomic_fetch_add(&g_hook_calls, 1);
    add(3, 0);
}

static void test_export_hook(void **state)
{
    (void)state;
    cp_set_export_hook(hook, &g_hook_calls);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    assert_int_equal(cp_flush(5000), CP_OK);
    assert_int_equal(atomic_load(&g_hook_calls), 1);
    cp_pprof *pp = last_profile();
    assert_int_equal(pp->n_samples, 1);
    assert_int_equal(pp->samples[0].values[0], 3);
    cp_pprof_free(pp);
    cp_stop();
    assert_int_equal(atomic_load(&g_hook_calls), 2); /* and once more at stop */
}

static void test_sidecar_tags_info(void **state)
{
    (void)state;
    cp_config_set("tags", "team:core  tier:web,,", CP_SRC_OPTION);
    assert_int_equal(cp_runtime_info_set("gc", "{\"gen0\": 700}"), CP_OK);
    assert_int_equal(cp_runtime_info_set("bad", "{\"gen0\": }"), CP_EINVAL);
    assert_int_equal(cp_runtime_info_set_str("executable", "/usr/bin/\"py\""), CP_OK);
    assert_int_equal(cp_runtime_info_set("pid", "1"), CP_OK); /* front end overrides a core key */
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add(1, 1);
    assert_int_equal(cp_flush(5000), CP_OK);
    char *path = cp_last_profile_path(), json[1100];
    snprintf(json, sizeof(json), "%.*s.json", (int)(strlen(path) - strlen(".pprof.gz")), path);
    char *side = ct_read(json, NULL);
    assert_non_null(side);
    assert_true(cp__json_valid(side, strlen(side)));
    char *tags = cp_tags_string(), expect[400];
    snprintf(expect, sizeof(expect), "service:svc,env:test,host:%s,language:python,runtime:CPython,"
             "runtime_version:3.11.7,runtime-id:%s,process_id:%d,profiler_version:0.2.0,team:core,tier:web",
             cp_config_get()->host, cp_runtime_id(), (int)getpid());
    assert_string_equal(tags, expect);
    assert_non_null(strstr(side, expect));
    static const char *keys[] = {"\"version\":\"4\"", "\"family\":\"python\"", "\"gc\":{\"gen0\": 700}",
                                 "\"executable\":\"/usr/bin/\\\"py\\\"\"", "\"os\":\"Linux\"", "\"cpu_count\":",
                                 "\"process_start_time\":\"", "\"settings\":{", "\"metrics\":{\"samples_taken\"",
                                 "\"pid\":1", "\"attachments\":[\"svc."};
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
        if (!strstr(side, keys[i]))
            fail_msg("sidecar lacks %s", keys[i]);
    }
    assert_null(strstr(side, "\"pid\":1,\"pid\"")); /* not twice */
    free(tags);
    free(side);
    free(path);
}

/* Values can never inject another tag; user tags split on ',' and blanks;
 * empty values are left out. */
static void test_tags_sanitised(void **state)
{
    (void)state;
    cp_config_set("service", "my svc,x", CP_SRC_OPTION);
    cp_config_set("env", "", CP_SRC_OPTION);
    cp_config_set("version", "1.0\t2", CP_SRC_OPTION);
    cp_config_set("tags", " a:1 ,b:2\tc:3,, ", CP_SRC_OPTION);
    char *t = cp_tags_string(), expect[300];
    snprintf(expect, sizeof(expect), "service:my_svc_x,version:1.0_2,host:%s,", cp_config_get()->host);
    assert_true(strncmp(t, expect, strlen(expect)) == 0);
    assert_null(strstr(t, "env:"));
    size_t n = strlen(t);
    assert_true(n > 12 && strcmp(t + n - 12, ",a:1,b:2,c:3") == 0);
    assert_true(strlen(cp_runtime_id()) == 36 && cp_runtime_id()[14] == '4');
    free(t);
}

static atomic_bool g_spin, g_burnt;

/* A registered profiler thread that burns 50 ms of its own CPU. */
static void *busy(void *arg)
{
    (void)arg;
    cp_thread_register_self();
    cp_thread_register_self(); /* twice: still counted once */
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    do {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 50000000L);
    atomic_store(&g_burnt, true);
    while (atomic_load(&g_spin)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    cp_thread_unregister_self();
    return NULL;
}

static void test_metrics_and_summary(void **state)
{
    (void)state;
    assert_int_equal(cp_start(&g_rt), CP_OK);
    atomic_store(&g_spin, true);
    pthread_t t;
    pthread_create(&t, NULL, busy, NULL);
    while (!atomic_load(&g_burnt)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    add(100, 1);
    cp_metrics_add_taken(1);
    cp_metrics_add_dropped(2);
    cp_metrics_add_hook_ns(1000);
    assert_int_equal(cp_flush(5000), CP_OK);
    atomic_store(&g_spin, false);
    pthread_join(t, NULL);
    cp_metrics m;
    cp_metrics_get(&m);
    assert_true(m.samples_taken >= 1 && m.samples_dropped >= 2);
    assert_true(m.profiles_exported >= 1);
    assert_true(m.last_profiler_cpu_ns >= 50 * 1000000); /* the busy registered thread */
    assert_true(m.last_profiler_cpu_ns < m.last_profile_cpu_ns); /* not counted twice */
    assert_true(m.last_profile_cpu_ns >= m.last_profiler_cpu_ns);
    assert_true(m.last_overhead_pct > 1.0 && m.last_overhead_pct <= 10000.5); /* vs the program's own CPU */
    char *top = cp_summary_top(CP_V_CPU_TIME, 5);
    assert_non_null(strstr(top, "leaf"));
    free(top);
    char *where = cp_destinations_describe();
    assert_non_null(strstr(where, g_dir));
    free(where);
}

static void test_fork_child_restarts(void **state)
{
    CT_SKIP_THREADED_FORK();
    (void)state;
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add(1, 1);
    char parent_id[40];
    snprintf(parent_id, sizeof(parent_id), "%s", cp_runtime_id());
    pid_t pid = fork();
    if (pid == 0) {
        int bad = cp_after_fork_child() != CP_OK;
        bad |= !cp_is_running() * 2;
        bad |= (strcmp(cp_runtime_id(), parent_id) == 0) * 4;
        int64_t v[CP_V__COUNT] = {1, 1};
        bad |= (cp_add_sample(g_stack, 2, v, NULL, 0) != CP_OK) * 8;
        bad |= (cp_flush(5000) != CP_OK) * 16;
        char *path = cp_last_profile_path(), mine[32];
        snprintf(mine, sizeof(mine), ".%d.1.pprof.gz", (int)getpid());
        bad |= !strstr(path, mine) * 32;
        char *tags = cp_tags_string();
        snprintf(mine, sizeof(mine), "process_id:%d,", (int)getpid());
        bad |= !strstr(tags, mine) * 64;
        free(path);
        free(tags);
        cp_stop();
        _exit(bad);
    }
    int status = -1;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_string_equal(cp_runtime_id(), parent_id);
    assert_int_equal(cp_flush(5000), CP_OK); /* the parent runs on */
    /* child: its flush + its stop; parent: its flush */
    assert_int_equal(ct_count_files(g_dir, ".pprof.gz"), 3);
}

/* A child that never calls cp_after_fork_child can still stop and start:
 * the core notices the foreign run instead of joining absent threads. */
static void test_fork_without_reset(void **state)
{
    CT_SKIP_THREADED_FORK();
    (void)state;
    assert_int_equal(cp_start(&g_rt), CP_OK);
    pid_t pid = fork();
    if (pid == 0) {
        cp_stop();
        int bad = cp_is_running();
        bad |= (cp_start(&g_rt) != CP_OK) * 2;
        bad |= (cp_flush(5000) != CP_OK) * 4;
        cp_stop();
        _exit(bad);
    }
    int status = -1;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(cp_is_running());
}

static atomic_bool g_flushing;

static void *flusher(void *arg)
{
    (void)arg;
    while (atomic_load(&g_flushing)) {
        add(1, 1);
        cp_flush(1000);
    }
    return NULL;
}

/* Wait for pid at most 10 s; its exit status, or -1 (killed) on a hang. */
static int wait_bounded(pid_t pid)
{
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Forks while the scheduler is busy rotating: every child must come up,
 * export and stop (no lock left held by a parent thread). */
static void test_fork_during_rotation(void **state)
{
    CT_SKIP_FORK_WHILE_ALLOCATING();
    (void)state;
    assert_int_equal(cp_start(&g_rt), CP_OK);
    atomic_store(&g_flushing, true);
    pthread_t t;
    pthread_create(&t, NULL, flusher, NULL);
    for (int i = 0; i < 8; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            int bad = cp_after_fork_child() != CP_OK;
            add(1, 1);
            bad |= (cp_flush(5000) != CP_OK) * 2;
            cp_stop();
            _exit(bad);
        }
        assert_int_equal(wait_bounded(pid), 0);
    }
    atomic_store(&g_flushing, false);
    pthread_join(t, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_writes_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinds_intersect_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_exports_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sidecar_tags_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags_sanitised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_and_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_child_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_without_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_during_rotation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
