/*
 * test_export_retention.c — the file exporter keeps its directory bounded
 * (output_max_mb, output_max_age_h) and writes through unique temp files.
 * Runs cp__export_file directly on jobs of known size.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "export.h"

/* Per process: the plain and sanitizer builds may run at once. */
static char g_work[512];

static void rm_rf(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* g_work/name, empty; its path goes to out. */
static const char *fresh_dir(const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", g_work, name);
    rm_rf(out);
    assert_int_equal(mkdir(out, 0755), 0);
    return out;
}

static cp__job *job(const char *service, int pid, uint64_t seq, size_t bytes)
{
    cp__job *j = calloc(1, sizeof *j);
    assert_non_null(j);
    *j = (cp__job){.seq = seq, .start_ns = 1, .end_ns = 2, .pid = pid};
    cp_buf_init(&j->pprof, 0);
    uint8_t *data = calloc(1, bytes);
    assert_non_null(data);
    assert_int_equal(cp_buf_append(&j->pprof, data, bytes), CP_OK);
    free(data);
    j->tags = strdup("service:x");
    j->info = strdup("{}");
    snprintf(j->family, sizeof j->family, "python");
    snprintf(j->service, sizeof j->service, "%s", service);
    return j;
}

static void export_one(const cp__dest *d, const char *service, int pid, uint64_t seq, size_t bytes)
{
    cp__job *j = job(service, pid, seq, bytes);
    assert_int_equal(cp__export_file(d, j), CP_OK);
    cp__job_free(j);
}

typedef struct dir_stats {
    int64_t profile_bytes; /* *.pprof.gz + *.json */
    int profiles, temps, others;
} dir_stats;

static dir_stats scan(const char *dir)
{
    dir_stats s = {0, 0, 0, 0};
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        char path[1024];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, n);
        assert_int_equal(stat(path, &st), 0);
        size_t len = strlen(n);
        if (strstr(n, ".tmp"))
            s.temps++;
        else if (len > 9 && strcmp(n + len - 9, ".pprof.gz") == 0)
            s.profiles++, s.profile_bytes += st.st_size;
        else if (len > 5 && strcmp(n + len - 5, ".json") == 0)
            s.profile_bytes += st.st_size;
        else
            s.others++;
    }
    closedir(d);
    return s;
}

static void dest(cp__dest *d, const char *dir, int64_t max_bytes, int64_t max_age_s)
{
    memset(d, 0, sizeof *d);
    snprintf(d->output_dir, sizeof d->output_dir, "%s", dir);
    d->max_bytes = max_bytes;
    d->max_age_s = max_age_s;
}

static bool exists(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void touch_old(const char *dir, const char *name, int64_t age_s, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    struct timespec t[2];
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= age_s;
    t[1] = t[0];
    assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

/* 10,000 profiles of ~2 KiB into a 100 KiB cap: never above it, the
 * newest kept, no temp file left, foreign files untouched. */
static void test_ten_thousand_under_cap(void **state)
{
    char buf[600];
    const char *dir = fresh_dir("cap", buf, sizeof buf);
    touch_old(dir, "notes.txt", 0, "not a profile");
    cp__dest d;
    dest(&d, dir, 100 << 10, 0);
    int64_t max_seen = 0;
    /* CP_RETENTION_PROFILES: fewer in the sanitizer build (same checks) */
    const char *env = getenv("CP_RETENTION_PROFILES");
    uint64_t n = env && atoi(env) >= 1000 ? (uint64_t)atoi(env) : 10000;
    for (uint64_t seq = 1; seq <= n; seq++) {
        export_one(&d, "svc", 42, seq, 2000);
        if (seq % 250 == 0) {
            dir_stats s = scan(dir);
            if (s.profile_bytes > max_seen)
                max_seen = s.profile_bytes;
            assert_true(s.profile_bytes <= (100 << 10));
            assert_int_equal(s.temps, 0);
            assert_int_equal(s.others, 1);
        }
    }
    dir_stats s = scan(dir);
    print_message("%llu profiles: %d left, %lld bytes (cap 102400, max seen %lld)\n",
                  (unsigned long long)n, s.profiles, (long long)s.profile_bytes, (long long)max_seen);
    assert_true(s.profiles >= 40 && s.profiles <= 52); /* ~2 KiB each */
    char last[64], old[64];
    snprintf(last, sizeof last, "svc.42.%llu.pprof.gz", (unsigned long long)n);
    snprintf(old, sizeof old, "svc.42.%llu.pprof.gz", (unsigned long long)n - 500);
    assert_true(exists(dir, last));
    assert_false(exists(dir, old));
    assert_true(exists(dir, "notes.txt"));
}

/* Oldest of this service go first; other services only when this one has
 * nothing older left; the profile just written is never deleted. */
static void test_own_service_first(void **state)
{
    char buf[600];
    const char *dir = fresh_dir("own", buf, sizeof buf);
    char big[300001];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    touch_old(dir, "other.7.1.pprof.gz", 7200, big); /* older than all of ours */
    touch_old(dir, "other.7.1.json", 7200, "{}");
    cp__dest d;
    dest(&d, dir, 1 << 20, 0);
    for (uint64_t seq = 1; seq <= 6; seq++)
        export_one(&d, "svc", 9, seq, 300000);
    /* 300 KB other + 2 of ours fit under 1 MiB; the rest of ours went */
    assert_true(exists(dir, "other.7.1.pprof.gz"));
    assert_true(exists(dir, "svc.9.6.pprof.gz") && exists(dir, "svc.9.5.pprof.gz"));
    assert_false(exists(dir, "svc.9.4.pprof.gz") || exists(dir, "svc.9.4.json"));
    /* one profile bigger than the cap: the other service's goes, ours stays */
    export_one(&d, "svc", 9, 7, 2 << 20);
    assert_false(exists(dir, "other.7.1.pprof.gz") || exists(dir, "other.7.1.json"));
    assert_true(exists(dir, "svc.9.7.pprof.gz"));
    assert_false(exists(dir, "svc.9.6.pprof.gz"));
}

/* Age limit: this service's old profiles and stale temp files go; other
 * services' old profiles and fresh temp files stay. */
static void test_age_and_stale_temps(void **state)
{
    char buf[600];
    const char *dir = fresh_dir("age", buf, sizeof buf);
    touch_old(dir, "svc.3.1.pprof.gz", 3 * 3600, "old");
    touch_old(dir, "svc.3.1.json", 3 * 3600, "{}");
    touch_old(dir, "svc.4.2.deadbeef.pprof.gz", 3 * 3600, "old, runtime-id suffix");
    touch_old(dir, "other.3.1.pprof.gz", 3 * 3600, "old, other service");
    touch_old(dir, "svc.3.2.pprof.gz", 60, "recent");
    touch_old(dir, ".svc.3.9.pprof.gz.abcdef.tmp", 2 * 3600, "crash leftover");
    touch_old(dir, ".svc.3.9.json.ghijkl.tmp", 60, "being written");
    touch_old(dir, "svc.3.1.pprof.gz.tmp", 0, "the old fixed temp name: never touched");
    cp__dest d;
    dest(&d, dir, 0, 3600);
    export_one(&d, "svc", 5, 1, 100);
    assert_false(exists(dir, "svc.3.1.pprof.gz") || exists(dir, "svc.3.1.json"));
    assert_false(exists(dir, "svc.4.2.deadbeef.pprof.gz"));
    assert_true(exists(dir, "other.3.1.pprof.gz"));
    assert_true(exists(dir, "svc.3.2.pprof.gz"));
    assert_false(exists(dir, ".svc.3.9.pprof.gz.abcdef.tmp"));
    assert_true(exists(dir, ".svc.3.9.json.ghijkl.tmp"));
    assert_true(exists(dir, "svc.3.1.pprof.gz.tmp"));
    assert_true(exists(dir, "svc.5.1.pprof.gz"));
}

/* Caps off: nothing is deleted. */
static void test_no_caps(void **state)
{
    char buf[600];
    const char *dir = fresh_dir("nocap", buf, sizeof buf);
    touch_old(dir, "svc.3.1.pprof.gz", 30 * 86400, "old");
    cp__dest d;
    dest(&d, dir, 0, 0);
    for (uint64_t seq = 1; seq <= 5; seq++)
        export_one(&d, "svc", 5, seq, 1000);
    dir_stats s = scan(dir);
    assert_int_equal(s.profiles, 6);
}

static int setup(void **state)
{
    snprintf(g_work, sizeof g_work, "%s/retention.%d", CP_TEST_BINARY_DIR, (int)getpid());
    return mkdir(g_work, 0755);
}

static int teardown(void **state)
{
    rm_rf(g_work);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ten_thousand_under_cap),
        cmocka_unit_test(test_own_service_first),
        cmocka_unit_test(test_age_and_stale_temps),
        cmocka_unit_test(test_no_caps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
