/*
 * test_export_faults.c — the exporter when things go wrong around it:
 *  - a stalled HTTPS intake (TCP accepted, TLS never answered) at exit:
 *    cp_stop returns within the flush deadline and the exporter thread is
 *    joined, not left running inside curl/OpenSSL;
 *  - fork while the exporter is inside an HTTP upload to a hanging intake:
 *    the child restarts with fresh transfer state, writes its profile and
 *    exits within its deadline; the parent's run is untouched;
 *  - every exporter failing at once (unwritable directory, refused
 *    connection): each lost profile is counted, nothing else is lost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "collector_test_util.h"
#include "contprof.h"
#include "intake_server.h"

static const cp_runtime_desc g_rt = {"python", "python", "CPython", "3.11.7", CP_KIND_CPU};

static void add(void)
{
    cp_frame f[2] = {{"work", NULL, "w.py", 3, CP_FRAME_PYTHON, NULL},
                     {"main", NULL, "w.py", 1, CP_FRAME_PYTHON, NULL}};
    int64_t v[CP_V__COUNT] = {[CP_V_CPU_TIME] = 10000000, [CP_V_CPU_SAMPLES] = 1};
    assert_int_equal(cp_add_sample(f, 2, v, NULL, 0), CP_OK);
}

/* Threads of this process named name (/proc/self/task/N/comm). */
static int threads_named(const char *name)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[300], comm[32] = "";
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f && fgets(comm, sizeof comm, f))
            n += strncmp(comm, name, strlen(name)) == 0;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

/* A TCP listener on 127.0.0.1 that never accepts: connections complete in
 * the kernel, the TLS ClientHello is never answered. */
static int silent_listener(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 16), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return s;
}

static void test_stalled_https_at_exit(void **state)
{
    int port, s = silent_listener(&port);
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    cp_config_reset();
    cp_config_set("agent_url", url, CP_SRC_OPTION);
    cp_config_set("upload_timeout_ms", "60000", CP_SRC_OPTION);
    cp_config_set("flush_deadline_ms", "500", CP_SRC_OPTION);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    assert_int_equal(threads_named("contprof-export"), 1);
    add();
    assert_int_equal(cp_flush(300), CP_ETIMEDOUT); /* the exporter is now inside the handshake */
    ct_capture_begin();
    int64_t t0 = cp_now_ns();
    cp_stop();
    int64_t took = cp_now_ns() - t0;
    free(ct_capture_end());
    print_message("cp_stop with a stalled TLS intake: %.0f ms\n", (double)took / 1e6);
    /* deadline 500 ms; a loaded machine, sanitizers slow everything */
    assert_true(took < (CT_TSAN ? 10000000000LL : CT_SANITIZED ? 5000000000LL : 1500000000LL));
    /* joined: nothing left inside curl (under TSan, 3-5x slower, the
     * thread may have been let go late: it must still end, promptly) */
    for (int i = 0; CT_TSAN && i < 500 && threads_named("contprof-export"); i++)
        nanosleep(&(struct timespec){0, 10 * 1000000}, NULL);
    assert_int_equal(threads_named("contprof-export"), 0);
    close(s);
}

/* Child of test_fork_during_upload: restart, export to files, exit. */
static int child_main(const char *dir)
{
    if (cp_after_fork_child() != CP_OK || !cp_is_running())
        return 10;
    cp_stop();
    cp_config_set("output_dir", dir, CP_SRC_OPTION);
    cp_config_set("upload_timeout_ms", "300", CP_SRC_OPTION);
    cp_config_set("flush_deadline_ms", "500", CP_SRC_OPTION);
    if (cp_start(&g_rt) != CP_OK)
        return 11;
    int64_t v[CP_V__COUNT] = {[CP_V_CPU_TIME] = 1, [CP_V_CPU_SAMPLES] = 1};
    cp_frame f = {"child", NULL, "c.py", 1, CP_FRAME_PYTHON, NULL};
    if (cp_add_sample(&f, 1, v, NULL, 0) != CP_OK)
        return 12;
    cp_flush(3000); /* the file is written; the upload times out (hanging intake) */
    cp_stop();
    return ct_count_files(dir, ".pprof.gz") >= 1 ? 0 : 13;
}


static void test_fork_during_upload(void **state)
{
    CT_SKIP_THREADED_FORK();
    intake *in = intake_start();
    assert_non_null(in);
    intake_set(in, (intake_behaviour){.hang = true});
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", intake_port(in));
    cp_config_reset();
    cp_config_set("agent_url", url, CP_SRC_OPTION);
    cp_config_set("upload_timeout_ms", "30000", CP_SRC_OPTION);
    cp_config_set("upload_retries", "0", CP_SRC_OPTION);
    cp_config_set("flush_deadline_ms", "500", CP_SRC_OPTION);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add();
    assert_int_equal(cp_flush(200), CP_ETIMEDOUT);
    assert_true(intake_wait(in, 1, 5000)); /* the upload is in flight, unanswered */
    char *dir = ct_scratch("fork-upload");
    assert_non_null(dir);
    int64_t t0 = cp_now_ns();
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_main(dir));
    assert_true(pid > 0);
    int rc = ct_wait_child(pid, 20000);
    print_message("child forked during an upload: exit %d after %.0f ms\n", rc,
                  (double)(cp_now_ns() - t0) / 1e6);
    assert_int_equal(rc, 0);
    /* the parent still collects */
    assert_true(cp_is_running());
    add();
    ct_capture_begin();
    cp_stop();
    free(ct_capture_end());
    intake_stop(in);
    ct_rmdir(dir);
    free(dir);
}

/* Both destinations fail: the profile is lost, and counted, once. */
static void test_every_exporter_failing(void **state)
{
    int port, s = silent_listener(&port);
    close(s); /* now the port refuses */
    char url[64], file[600];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    char *dir = ct_scratch("allfail");
    snprintf(file, sizeof file, "%s/not-a-dir", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    cp_config_reset();
    cp_config_set("agent_url", url, CP_SRC_OPTION);
    cp_config_set("output_dir", file, CP_SRC_OPTION); /* a file: mkdir fails */
    cp_config_set("upload_retries", "1", CP_SRC_OPTION);
    cp_metrics m0, m1;
    cp_metrics_get(&m0);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add();
    ct_capture_begin();
    int err = cp_flush(10000);
    add();
    cp_stop();
    char *out = ct_capture_end();
    cp_metrics_get(&m1);
    assert_true(err == CP_EIO || err == CP_ENET);
    assert_int_equal(m1.profiles_exported - m0.profiles_exported, 0);
    assert_int_equal(m1.upload_failures - m0.upload_failures, 2); /* two profiles, one count each */
    assert_int_equal(m1.upload_retries - m0.upload_retries, 2);
    assert_int_equal(m1.profiles_dropped - m0.profiles_dropped, 0);
    assert_non_null(strstr(out, "cannot write profile"));
    assert_non_null(strstr(out, "upload to"));
    free(out);
    ct_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_https_at_exit),
        cmocka_unit_test(test_fork_during_upload),
        cmocka_unit_test(test_every_exporter_failing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
