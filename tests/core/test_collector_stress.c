/*
 * test_collector_stress.c — many threads adding samples (string frames,
 * interned frame ids, new frames interned on the way) while another
 * thread forces rotations and the main thread forks children that restart
 * the collector. Nothing may be lost: the parent's profiles on disk sum
 * to exactly the samples its threads added. Built under TSan too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "collector_test_util.h"
#include "contprof.h"

/* Forks only in the plain build: TSan cannot follow such a child (see
 * CT_SKIP_THREADED_FORK), and GCC 12's ASan allocator has no fork
 * handling, so a child forked while an adder thread is inside malloc can
 * hang in the sanitizer runtime itself. */
enum { ADDERS = 6, ADDS = 4000, FORKS = CT_SANITIZED ? 0 : 4 };

static const cp_runtime_desc g_rt = {"python", "python", "CPython", "3.11.7", CP_KIND_CPU};
static atomic_bool g_flushing;
static atomic_int g_flushes;

static void *adder(void *arg)
{
    int me = (int)(intptr_t)arg;
    char names[8][32];
    cp_frame f[8];
    uint32_t ids[8];
    for (int i = 0; i < 8; i++) {
        snprintf(names[i], sizeof names[i], "t%d.fn%d", me, i);
        f[i] = (cp_frame){names[i], NULL, "s.py", i + 1, CP_FRAME_PYTHON, NULL};
        if (cp_frame_intern(&f[i], &ids[i]) != CP_OK)
            return (void *)1;
    }
    cp_label l = {"thread id", NULL, me, NULL};
    int64_t v[CP_V__COUNT] = {[CP_V_CPU_TIME] = 1000, [CP_V_CPU_SAMPLES] = 1};
    for (int i = 0; i < ADDS; i++) {
        int rc;
        if (i % 3 == 0) {
            rc = cp_add_sample(f + i % 4, 4, v, &l, 1);
        } else if (i % 97 == 1) { /* a frame first seen now */
            char name[48];
            uint32_t id;
            snprintf(name, sizeof name, "t%d.late%d", me, i);
            cp_frame nf = {name, NULL, "late.py", 1, CP_FRAME_PYTHON, NULL};
            rc = cp_frame_intern(&nf, &id);
            if (rc == CP_OK)
                rc = cp_add_sample_ids(&id, 1, v, &l, 1);
        } else {
            rc = cp_add_sample_ids(ids + i % 4, 4, v, &l, 1);
        }
        if (rc != CP_OK)
            return (void *)2;
    }
    return NULL;
}

static void *flusher(void *arg)
{
    while (atomic_load(&g_flushing)) {
        if (cp_flush(10000) == CP_OK)
            atomic_fetch_add(&g_flushes, 1);
    }
    return NULL;
}

static int child(void)
{
    if (cp_after_fork_child() != CP_OK)
        return 1;
    uint32_t id;
    cp_frame f = {"child", NULL, "c.py", 1, CP_FRAME_PYTHON, NULL};
    int64_t v[CP_V__COUNT] = {[CP_V_CPU_TIME] = 1, [CP_V_CPU_SAMPLES] = 1};
    if (cp_frame_intern(&f, &id) != CP_OK || cp_add_sample_ids(&id, 1, v, NULL, 0) != CP_OK)
        return 2;
    int rc = cp_flush(10000) == CP_OK ? 0 : 3;
    cp_stop();
    return rc;
}


/* cpu-samples in this process's profiles in dir. */
static int64_t samples_on_disk(const char *dir)
{
    char prefix[64], path[1024];
    snprintf(prefix, sizeof prefix, "stress.%d.", (int)getpid());
    int64_t total = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || n < 9 ||
            strcmp(e->d_name + n - 9, ".pprof.gz") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *data = ct_read(path, &len);
        assert_non_null(data);
        cp_pprof *pp = NULL;
        assert_int_equal(cp_pprof_decode((const uint8_t *)data, len, 0, &pp), CP_OK);
        for (size_t i = 0; i < pp->n_samples; i++)
            total += pp->samples[i].values[1];
        cp_pprof_free(pp);
        free(data);
    }
    if (d)
        closedir(d);
    return total;
}

static void test_add_rotate_fork(void **state)
{
    char *dir = ct_scratch("stress");
    cp_config_reset();
    cp_config_set("output_dir", dir, CP_SRC_OPTION);
    cp_config_set("service", "stress", CP_SRC_OPTION);
    cp_config_set("upload_queue", "64", CP_SRC_OPTION);
    cp_config_set("output_max_mb", "0", CP_SRC_OPTION);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    cp_metrics m0;
    cp_metrics_get(&m0);
    pthread_t add[ADDERS], fl;
    atomic_store(&g_flushing, true);
    assert_int_equal(pthread_create(&fl, NULL, flusher, NULL), 0);
    for (int i = 0; i < ADDERS; i++)
        assert_int_equal(pthread_create(&add[i], NULL, adder, (void *)(intptr_t)i), 0);
    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(child());
        assert_int_equal(ct_wait_child(pid, 30000), 0);
    }
    for (int i = 0; i < ADDERS; i++) {
        void *r;
        pthread_join(add[i], &r);
        assert_null(r);
    }
    atomic_store(&g_flushing, false);
    pthread_join(fl, NULL);
    cp_stop();
    cp_metrics m1;
    cp_metrics_get(&m1);
    print_message("%d flushes while %d threads added %d samples each; %d forks\n",
                  atomic_load(&g_flushes), ADDERS, ADDS, FORKS);
    assert_int_equal(m1.profiles_dropped - m0.profiles_dropped, 0);
    assert_int_equal(m1.samples_overflowed - m0.samples_overflowed, 0);
    assert_int_equal(samples_on_disk(dir), (int64_t)ADDERS * ADDS);
    ct_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_rotate_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
