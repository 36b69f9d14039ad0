/*
 * test_export_intake.c — the agent-intake uploader against a local test
 * intake on 127.0.0.1: the multipart body (parts, names, file names,
 * content types, event.json fields, a gzip'd pprof that decodes), retries
 * on 500 then success, no retry on 413, connection refused, a hanging
 * intake (per-request timeout; cp_stop bounded by flush_deadline_ms), a
 * slow intake (the queue drops the oldest profile, counted), an agent on
 * a unix socket, agentless destination and the DD-API-KEY header (never
 * logged).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <sys/socket.h>

#include "collector_test_util.h"
#include "contprof.h"
#include "export.h"
#include "intake_server.h"
#include "json.h"

static intake *g_in;
static char g_url[64];
static const cp_runtime_desc g_rt = {"java", "jvm", "OpenJDK 64-Bit Server VM", "17.0.9", CP_KIND_CPU};

/* Metrics now minus at setup (the counters are process-wide). */
static cp_metrics g_m0;

static cp_metrics delta(void)
{
    cp_metrics m;
    cp_metrics_get(&m);
    m.upload_retries -= g_m0.upload_retries;
    m.upload_failures -= g_m0.upload_failures;
    m.profiles_dropped -= g_m0.profiles_dropped;
    return m;
}

static int setup(void **state)
{
    (void)state;
    cp_config_reset();
    g_in = intake_start();
    assert_non_null(g_in);
    snprintf(g_url, sizeof(g_url), "http://127.0.0.1:%d", intake_port(g_in));
    cp_config_set("agent_url", g_url, CP_SRC_OPTION);
    cp_config_set("service", "upsvc", CP_SRC_OPTION);
    cp_config_set("upload_timeout_ms", "3000", CP_SRC_OPTION);
    cp_metrics_get(&g_m0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cp_stop();
    intake_stop(g_in);
    return 0;
}

static void add(void)
{
    cp_frame f[2] = {{"com.x.Foo.bar", NULL, "Foo.java", 12}, {"com.x.Main.main", NULL, "Main.java", 3}};
    int64_t v[CP_V__COUNT] = {0};
    v[CP_V_CPU_TIME] = 10000000;
    v[CP_V_CPU_SAMPLES] = 1;
    assert_int_equal(cp_add_sample(f, 2, v, NULL, 0), CP_OK);
}

static bool matches(const char *re, const char *s)
{
    regex_t r;
    assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

static void check_event(const mp_part *p)
{
    assert_string_equal(p->name, "event");
    assert_string_equal(p->filename, "event.json");
    assert_string_equal(p->type, "application/json");
    char *ev = strndup((const char *)p->data, p->len);
    assert_true(cp__json_valid(ev, strlen(ev)));
    assert_true(strncmp(ev, "{\"attachments\":[\"auto.pprof\"],\"start\":\"", 39) == 0);
    assert_true(matches("\"start\":\"20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z\","
                        "\"end\":\"20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z\","
                        "\"family\":\"java\",\"version\":\"4\",\"tags_profiler\":\"service:upsvc,", ev));
    assert_non_null(strstr(ev, ",language:jvm,runtime:OpenJDK_64-Bit_Server_VM,runtime_version:17.0.9,runtime-id:"));
    assert_non_null(strstr(ev, "\",\"info\":{\"host\":"));
    free(ev);
}

static void check_pprof(const mp_part *p)
{
    assert_string_equal(p->name, "auto.pprof");
    assert_string_equal(p->filename, "auto.pprof");
    assert_string_equal(p->type, "application/octet-stream");
    assert_true(p->len > 2 && p->data[0] == 0x1f && p->data[1] == 0x8b);
    cp_pprof *pp = NULL;
    assert_int_equal(cp_pprof_decode(p->data, p->len, 0, &pp), CP_OK);
    assert_int_equal(pp->n_samples, 1);
    assert_int_equal(pp->samples[0].values[0], 10000000);
    const cp_pprof_location *loc = cp_pprof_location_by_id(pp, pp->samples[0].location_ids[0]);
    assert_string_equal(cp_pprof_function_by_id(pp, loc->lines[0].function_id)->name, "com.x.Foo.bar");
    cp_pprof_free(pp);
}

static void test_upload_body(void **state)
{
    (void)state;
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add();
    assert_int_equal(cp_flush(5000), CP_OK);
    intake_req r;
    assert_true(intake_last(g_in, &r));
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.url, "/profiling/v1/input");
    assert_true(strncmp(r.content_type, "multipart/form-data; boundary=", 30) == 0);
    assert_string_equal(r.api_key, "");
    assert_string_equal(r.origin, "contprof");
    mp_part parts[4];
    assert_int_equal(mp_parse(r.content_type, r.body, r.len, parts, 4), 2);
    check_event(&parts[0]);
    check_pprof(&parts[1]);
    free(r.body);
    char *where = cp_destinations_describe(), expect[128];
    /* what really happened: one upload, and no files (an agent and no output_dir) */
    snprintf(expect, sizeof(expect), "1 profile(s) uploaded to %s/profiling/v1/input", g_url);
    assert_string_equal(where, expect);
    free(where);
    cp_metrics m = delta();
    assert_int_equal(m.upload_failures, 0);
}

static void test_retry_500(void **state)
{
    (void)state;
    intake_set(g_in, (intake_behaviour){.fail_first = 1});
    cp_config_set("upload_retries", "2", CP_SRC_OPTION);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add();
    assert_int_equal(cp_flush(8000), CP_OK);
    assert_int_equal(intake_requests(g_in), 2);
    cp_metrics m = delta();
    assert_int_equal(m.upload_retries, 1);
    assert_int_equal(m.upload_failures, 0);
}

static void test_no_retry_413(void **state)
{
    (void)state;
    intake_set(g_in, (intake_behaviour){.status = 413});
    cp_config_set("upload_retries", "3", CP_SRC_OPTION);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add();
    ct_capture_begin();
    int err = cp_flush(5000);
    char *out = ct_capture_end();
    assert_int_equal(err, CP_EHTTP);
    assert_non_null(strstr(out, "HTTP 413 (not retried)"));
    free(out);
    assert_false(intake_wait(g_in, 2, 600));
    cp_metrics m = delta();
    assert_true(m.upload_failures >= 1);
    assert_non_null(strstr(m.last_error, "413"));
}

static void test_refused(void **state)
{
    (void)state;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, len), 0);
    getsockname(s, (struct sockaddr *)&sa, &len);
    close(s); /* nobody listens there now */
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    cp_config_set("agent_url", url, CP_SRC_OPTION);
    cp_config_set("upload_retries", "1", CP_SRC_OPTION);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add();
    ct_capture_begin();
    int err = cp_flush(5000);
    char *out = ct_capture_end();
    assert_int_equal(err, CP_ENET);
    assert_non_null(strstr(out, "after 2 attempt(s)"));
    free(out);
    cp_metrics m = delta();
    assert_int_equal(m.upload_retries, 1);
}

static void *flush_long(void *arg)
{
    *(int *)arg = cp_flush(10000);
    return NULL;
}

/* A cp_flush waiting on a hanging upload does not delay cp_stop, and
 * returns once the stop abandons the upload. */
static void test_stop_not_delayed_by_flush(void **state)
{
    (void)state;
    intake_set(g_in, (intake_behaviour){.hang = true});
    cp_config_set("upload_retries", "0", CP_SRC_OPTION);
    cp_config_set("upload_timeout_ms", "20000", CP_SRC_OPTION);
    cp_config_set("flush_deadline_ms", "200", CP_SRC_OPTION);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add();
    int flush_err = 1;
    pthread_t t;
    pthread_create(&t, NULL, flush_long, &flush_err);
    assert_true(intake_wait(g_in, 1, 5000)); /* the flush's upload hangs */
    ct_capture_begin();
    int64_t t0 = cp_now_ns();
    cp_stop();
    int64_t took = cp_now_ns() - t0;
    pthread_join(t, NULL);
    int64_t both = cp_now_ns() - t0;
    free(ct_capture_end());
    assert_true(took < 1500000000LL);
    assert_true(both < 2500000000LL);
    assert_int_equal(flush_err, CP_ETIMEDOUT);
}

static void test_hanging_intake(void **state)
{
    (void)state;
    intake_set(g_in, (intake_behaviour){.hang = true});
    cp_config_set("upload_retries", "0", CP_SRC_OPTION);
    cp_config_set("upload_timeout_ms", "400", CP_SRC_OPTION);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add();
    ct_capture_begin();
    int64_t t0 = cp_now_ns();
    int err = cp_flush(5000);
    int64_t took = cp_now_ns() - t0;
    char *out = ct_capture_end();
    free(out);
    assert_int_equal(err, CP_ETIMEDOUT); /* the per-request timeout */
    assert_true(took >= 350000000LL && took < 3000000000LL);
    cp_stop();
    /* now a long request timeout: cp_stop is bounded by flush_deadline_ms */
    cp_config_set("upload_timeout_ms", "20000", CP_SRC_OPTION);
    cp_config_set("flush_deadline_ms", "300", CP_SRC_OPTION);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add();
    ct_capture_begin();
    t0 = cp_now_ns();
    cp_stop();
    took = cp_now_ns() - t0;
    out = ct_capture_end();
    assert_true(took < 1500000000LL);
    assert_non_null(strstr(out, "abandoning 1 profile"));
    free(out);
    cp_metrics m = delta();
    assert_non_null(strstr(m.last_error, "abandoned"));
    /* the timed-out flush, the first stop's final profile (timed out too),
     * the abandoned one of the second stop: each counted once */
    assert_int_equal(m.upload_failures, 3);
}

/* A hand-made job with a tiny (not decoded here) payload. */
static cp__job *job(uint64_t seq)
{
    cp__job *j = calloc(1, sizeof(*j));
    *j = (cp__job){.seq = seq, .start_ns = 1, .end_ns = 2, .pid = 1, .family = "java", .service = "q"};
    cp_buf_init(&j->pprof, 0);
    cp_buf_append(&j->pprof, "\x1f\x8b", 2);
    j->tags = strdup("service:q");
    j->info = strdup("{}");
    return j;
}

static void test_slow_intake_drops_oldest(void **state)
{
    (void)state;
    intake_set(g_in, (intake_behaviour){.delay_ms = 800});
    cp_config_set("upload_queue", "1", CP_SRC_OPTION);
    cp__dest d;
    cp__dest_from_config(cp_config_get(), &d);
    cp__exporter *e = cp__exporter_start(&d);
    assert_non_null(e);
    cp__exporter_push(e, job(1));
    assert_true(intake_wait(g_in, 1, 5000)); /* #1 is now being answered slowly */
    ct_capture_begin();
    for (uint64_t seq = 2; seq <= 4; seq++)
        cp__exporter_push(e, job(seq)); /* #3 pushes #2 out, #4 pushes #3 out */
    char *out = ct_capture_end();
    assert_int_equal(ct_count_lines(out), 2);
    assert_non_null(strstr(out, "dropped the oldest waiting profile (#2)"));
    free(out);
    assert_int_equal(cp__exporter_wait(e, 2, cp_now_ns() + 1000000), CP_EFULL); /* dropped */
    assert_int_equal(cp__exporter_wait(e, 1, cp_now_ns() + 1000000), CP_ETIMEDOUT); /* still uploading */
    assert_int_equal(cp__exporter_wait(e, 4, cp_now_ns() + 5000000000LL), CP_OK);
    cp__exporter_stop(e, cp_now_ns() + 5000000000LL);
    assert_int_equal(intake_requests(g_in), 2); /* #1 and #4 */
    cp_metrics m = delta();
    assert_int_equal(m.profiles_dropped, 2);
    assert_int_equal(m.upload_failures, 0);
}

static void test_unix_socket_agent(void **state)
{
    (void)state;
    char path[108];
    snprintf(path, sizeof(path), "/tmp/contprof-test-%d.sock", (int)getpid());
    intake *ux = intake_start_unix(path);
    assert_non_null(ux);
    char url[128];
    snprintf(url, sizeof(url), "unix://%s", path);
    cp_config_set("agent_url", url, CP_SRC_OPTION);
    assert_int_equal(cp_start(&g_rt), CP_OK);
    add();
    assert_int_equal(cp_flush(5000), CP_OK);
    intake_req r;
    assert_true(intake_last(ux, &r));
    assert_string_equal(r.url, "/profiling/v1/input");
    mp_part parts[4];
    assert_int_equal(mp_parse(r.content_type, r.body, r.len, parts, 4), 2);
    check_pprof(&parts[1]);
    free(r.body);
    cp_stop();
    intake_stop(ux);
    unlink(path);
}

static void test_agentless(void **state)
{
    (void)state;
    cp_config_reset();
    cp_config_set("api_key", "abcd-secret-key", CP_SRC_OPTION);
    cp_config_set("site", "datadoghq.eu", CP_SRC_OPTION);
    cp__dest d;
    /* A key alone (DD_API_KEY read by other tools) sends nothing anywhere:
     * profiles stay in the local directory. */
    cp__dest_from_config(cp_config_get(), &d);
    assert_string_equal(d.url, "");
    assert_string_equal(d.api_key, "");
    assert_non_null(strstr(d.output_dir, "/profiles"));
    /* The opt-in without a key is no destination either. */
    cp_config_reset();
    cp_config_set("agentless", "true", CP_SRC_ENV);
    cp__dest_from_config(cp_config_get(), &d);
    assert_string_equal(d.url, "");
    cp_config_set("api_key", "abcd-secret-key", CP_SRC_OPTION);
    cp_config_set("site", "datadoghq.eu", CP_SRC_OPTION);
    cp__dest_from_config(cp_config_get(), &d);
    assert_string_equal(d.url, "https://intake.profile.datadoghq.eu/api/v2/profile");
    assert_string_equal(d.api_key, "abcd-secret-key");
    assert_string_equal(d.output_dir, "");
    char *where = cp__dest_describe(&d);
    assert_null(strstr(where, "secret"));
    assert_non_null(strstr(where, "(agentless)"));
    free(where);
    cp_config_set("agent_url", g_url, CP_SRC_ENV); /* an agent wins over agentless */
    cp__dest_from_config(cp_config_get(), &d);
    assert_string_equal(d.api_key, "");
    /* the header, sent to the local intake, and no key in any log line */
    snprintf(d.url, sizeof(d.url), "%s/api/v2/profile", g_url);
    snprintf(d.api_key, sizeof(d.api_key), "abcd-secret-key");
    intake_set(g_in, (intake_behaviour){.status = 403});
    cp__job j = {.seq = 1, .start_ns = 1, .end_ns = 2, .family = "python"};
    cp_buf_init(&j.pprof, 0);
    cp_buf_append(&j.pprof, "\x1f\x8b", 2);
    j.tags = "service:x";
    j.info = "{}";
    atomic_bool abort_flag = false;
    cp_config_set("log_level", "debug", CP_SRC_OPTION);
    ct_capture_begin();
    assert_int_equal(cp__export_http(&d, &j, &abort_flag), CP_EHTTP);
    char *out = ct_capture_end();
    assert_null(strstr(out, "abcd-secret-key"));
    free(out);
    cp_buf_free(&j.pprof);
    intake_req r;
    assert_true(intake_last(g_in, &r));
    assert_string_equal(r.url, "/api/v2/profile");
    assert_string_equal(r.api_key, "abcd-secret-key");
    free(r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upload_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_retry_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hanging_intake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_not_delayed_by_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_intake_drops_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agentless, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
