/*
 * test_server.c — integration: runs the real contprof-explorer binary on
 * 127.0.0.1 (a free port), seeds it through --import, uploads over HTTP
 * like the core's uploader, sends bad input (wrong type, truncated, too
 * big, bad JSON, corrupt pprof, zip bomb), reads every API endpoint, and
 * restarts it on the same data directory.
 */
#include <signal.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <zlib.h>

#include "fixtures.h"
#include "json.h"

#define SEC 1000000000LL

typedef struct server {
    pid_t pid;
    int port;
} server;

static char *g_data, *g_import;

/* Start the explorer; watch adds --watch on the import directory. */
static server start(const char *max_body, bool watch)
{
    char portfile[4200], cmd_port[16];
    const char *bin = getenv("CONTPROF_EXPLORER_BIN");
    assert_non_null(bin);
    snprintf(portfile, sizeof portfile, "%s/port", g_data);
    unlink(portfile);
    server s = {0};
    s.pid = fork();
    assert_true(s.pid >= 0);
    if (s.pid == 0) {
        /* a failed assertion ends the test: the server must not outlive it */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execl(bin, bin, "--listen", "127.0.0.1:0", "--port-file", portfile, "--data", g_data, "--import", g_import,
              "--max-body", max_body, "--max-inflated", "1048576", watch ? "--watch" : (char *)NULL, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) { /* up to 30 s on a loaded machine */
        FILE *f = fopen(portfile, "r");
        if (f && fgets(cmd_port, sizeof cmd_port, f)) s.port = atoi(cmd_port);
        if (f) fclose(f);
        if (s.port) break;
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    assert_true(s.port > 0);
    return s;
}

static void stop(server *s)
{
    int st;
    kill(s->pid, SIGTERM);
    assert_int_equal(waitpid(s->pid, &st, 0), s->pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    return cp_buf_append(ud, p, sz * n) == CP_OK ? sz * n : 0;
}

/* One request; returns the status, body into out (initialised here). */
static const char *g_extra_header; /* one more request header, or NULL */

static long http(const server *s, const char *method, const char *path, const char *ctype, const cp_buf *body,
                 cp_buf *out)
{
    char url[512], ct[200];
    long status = 0;
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    cp_buf_init(out, 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (g_extra_header) h = curl_slist_append(h, g_extra_header);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
        h = curl_slist_append(h, "Expect:");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    }
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    ex_buf_cstr(out);
    return status;
}

static ex_jval *get_json(const server *s, const char *path)
{
    cp_buf out;
    ex_jval *v = NULL;
    char err[200];
    assert_int_equal(http(s, "GET", path, NULL, NULL, &out), 200);
    if (ex_json_parse((char *)out.data, out.len, &v, err, sizeof err)) fail_msg("%s: %s", path, err);
    cp_buf_free(&out);
    return v;
}

static void make_pprof(cp_buf *out, int64_t start, int salt)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples,wall-time,wall-samples");
    fx_add(p, "main;handle_request;parse_json", (int64_t[]){3 * SEC, 300, 5 * SEC, 500}, 1, "worker");
    fx_add(p, "main;handle_request;render", (int64_t[]){1 * SEC, 100 + salt, 5 * SEC, 500}, 1, "worker");
    fx_encode(p, start, 10 * SEC, out);
    cp_profile_free(p);
}

static long post_upload(const server *s, const char *tags, int64_t start, int salt, cp_buf *pprof_out)
{
    cp_buf pprof, body, out;
    char *ev = fx_event(tags, start, start + 10 * SEC, "{\"os\":\"Linux\",\"metrics\":{\"samples_taken\":1}}");
    make_pprof(&pprof, start, salt);
    fx_multipart(&body, ev, pprof.data, pprof.len);
    long st = http(s, "POST", "/profiling/v1/input", FX_CONTENT_TYPE, &body, &out);
    if (pprof_out) *pprof_out = pprof;
    else cp_buf_free(&pprof);
    free(ev);
    cp_buf_free(&body);
    cp_buf_free(&out);
    return st;
}

static long post_raw(const server *s, const char *ctype, const void *data, size_t n, char *reason, size_t rn)
{
    cp_buf body, out;
    cp_buf_init(&body, 0);
    cp_buf_append(&body, data, n);
    long st = http(s, "POST", "/profiling/v1/input", ctype, &body, &out);
    snprintf(reason, rn, "%s", out.data ? (char *)out.data : "");
    cp_buf_free(&body);
    cp_buf_free(&out);
    return st;
}

static void expect_bad(const server *s, const char *ctype, const void *data, size_t n, long status,
                       const char *needle)
{
    char reason[400];
    long st = post_raw(s, ctype, data, n, reason, sizeof reason);
    if (st != status || !strstr(reason, needle))
        fail_msg("expected %ld with '%s', got %ld: %s", status, needle, st, reason);
    assert_null(strchr(reason, '\n')); /* one line */
}

/* 8 MiB of zeros gzip'd: ~8 KB that inflates past --max-inflated 1 MiB. */
static void zip_bomb(cp_buf *out)
{
    size_t n = 8u << 20;
    uint8_t *zeros = calloc(1, n);
    z_stream z = {0};
    cp_buf_init(out, 0);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
    uint8_t chunk[65536];
    z.next_in = zeros;
    z.avail_in = (uInt)n;
    int rc;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        rc = deflate(&z, Z_FINISH);
        cp_buf_append(out, chunk, sizeof chunk - z.avail_out);
    } while (rc == Z_OK);
    deflateEnd(&z);
    free(zeros);
}

static void bad_inputs(const server *s)
{
    int64_t t0 = fx_now_ns();
    cp_buf pprof, body, bomb;
    make_pprof(&pprof, t0, 50);
    char *ev = fx_event("service:bad", t0, t0 + SEC, NULL);
    fx_multipart(&body, ev, pprof.data, pprof.len);
    expect_bad(s, "application/json", body.data, body.len, 400, "expected Content-Type multipart/form-data");
    expect_bad(s, FX_CONTENT_TYPE, body.data, body.len - 20, 400, "truncated");
    char big[300000];
    memset(big, 'x', sizeof big);
    expect_bad(s, FX_CONTENT_TYPE, big, sizeof big, 413, "larger than the limit");
    cp_buf_free(&body);
    fx_multipart(&body, "{\"start\": oops}", pprof.data, pprof.len);
    expect_bad(s, FX_CONTENT_TYPE, body.data, body.len, 400, "event.json: invalid JSON");
    cp_buf_free(&body);
    fx_multipart(&body, ev, (const uint8_t *)"\x1f\x8b\x08 not really gzip", 20);
    expect_bad(s, FX_CONTENT_TYPE, body.data, body.len, 400, "cannot be decoded as pprof");
    cp_buf_free(&body);
    zip_bomb(&bomb);
    fx_multipart(&body, ev, bomb.data, bomb.len);
    expect_bad(s, FX_CONTENT_TYPE, body.data, body.len, 413, "zip bomb");
    cp_buf out;
    assert_int_equal(http(s, "GET", "/profiling/v1/input", NULL, NULL, &out), 405);
    cp_buf_free(&out);
    /* DNS rebinding and cross-site uploads from web pages */
    g_extra_header = "Host: evil.example:8127";
    assert_int_equal(http(s, "GET", "/api/profiles", NULL, NULL, &out), 403);
    cp_buf_free(&out);
    g_extra_header = "Origin: http://evil.example";
    cp_buf_free(&body);
    fx_multipart(&body, ev, pprof.data, pprof.len);
    assert_int_equal(http(s, "POST", "/profiling/v1/input", FX_CONTENT_TYPE, &body, &out), 403);
    cp_buf_free(&out);
    g_extra_header = "Host: localhost:1234";
    assert_int_equal(http(s, "GET", "/api/health", NULL, NULL, &out), 200);
    cp_buf_free(&out);
    g_extra_header = NULL;
    free(ev);
    cp_buf_free(&pprof);
    cp_buf_free(&body);
    cp_buf_free(&bomb);
}

static const ex_jval *find_row(const ex_jval *list, const char *service)
{
    const ex_jval *rows = ex_json_get(list, "profiles");
    for (size_t i = 0; rows && i < rows->n; i++)
        if (strcmp(ex_json_str(&rows->items[i], "service"), service) == 0) return &rows->items[i];
    return NULL;
}

static void endpoints(const server *s, int64_t id, const cp_buf *uploaded)
{
    char path[200];
    cp_buf out;
    snprintf(path, sizeof path, "/api/profiles/%lld/flame?type=cpu-time", (long long)id);
    ex_jval *v = get_json(s, path);
    assert_true(ex_json_num(v, "total", 0) == 4.0 * SEC);
    ex_json_free(v);
    snprintf(path, sizeof path, "/api/profiles/%lld/table?type=wall-time", (long long)id);
    v = get_json(s, path);
    assert_string_equal(ex_json_str(&ex_json_get(v, "rows")->items[0], "name"), "parse_json");
    ex_json_free(v);
    snprintf(path, sizeof path, "/api/profiles/%lld/analysis", (long long)id);
    v = get_json(s, path);
    assert_string_equal(ex_json_str(&ex_json_get(v, "findings")->items[0], "rule"), "hot-function");
    ex_json_free(v);
    snprintf(path, sizeof path, "/api/profiles/%lld/info", (long long)id);
    v = get_json(s, path);
    assert_string_equal(ex_json_str(v, "os"), "Linux");
    ex_json_free(v);
    snprintf(path, sizeof path, "/api/profiles/%lld/pprof", (long long)id);
    assert_int_equal(http(s, "GET", path, NULL, NULL, &out), 200);
    assert_int_equal(out.len, uploaded->len);
    assert_memory_equal(out.data, uploaded->data, out.len);
    cp_buf_free(&out);
    snprintf(path, sizeof path, "/api/compare?a=%lld&b=%lld&type=cpu-time", (long long)id, (long long)id);
    v = get_json(s, path);
    assert_true(ex_json_num(ex_json_get(v, "a"), "total", 0) == 4.0 * SEC);
    ex_json_free(v);
    v = get_json(s, "/api/aggregate/flame?service=web&type=cpu-time");
    assert_true(ex_json_num(v, "profiles", 0) == 1 && ex_json_num(v, "total", 0) == 4.0 * SEC);
    ex_json_free(v);
    v = get_json(s, "/api/metrics?service=web&env=prod");
    assert_true(ex_json_num(v, "profiles", 0) == 1);
    ex_json_free(v);
    /* hostile parameters: a clear 4xx or a clamped 200, never a crash */
    static const struct { const char *tmpl; long want; } odd[] = {
        {"/api/profiles/{id}/table?limit=-5", 200}, {"/api/profiles/{id}/flame?max_nodes=1e300&min_frac=nan", 200},
        {"/api/profiles/{id}/flame?type=no-such-type", 400}, {"/api/profiles?sort=id;drop%20table", 400},
        {"/api/profiles?from=garbage", 400}, {"/api/aggregate/table?max_profiles=-1", 200},
        {"/api/compare?a={id}&b=abc", 404}, {"/api/profiles?q=%25_%5C&limit=0&offset=-3", 200},
        {"/api/profiles/{id}/../../etc/passwd", 404}, {"/../../etc/passwd", 404}};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        const char *at = strstr(odd[i].tmpl, "{id}");
        if (at)
            snprintf(path, sizeof path, "%.*s%lld%s", (int)(at - odd[i].tmpl), odd[i].tmpl, (long long)id, at + 4);
        else
            snprintf(path, sizeof path, "%s", odd[i].tmpl);
        long st = http(s, "GET", path, NULL, NULL, &out);
        if (st != odd[i].want) fail_msg("%s: %ld, want %ld: %s", path, st, odd[i].want, (char *)out.data);
        cp_buf_free(&out);
    }
    assert_int_equal(http(s, "GET", "/api/profiles/999999", NULL, NULL, &out), 404);
    cp_buf_free(&out);
    assert_int_equal(http(s, "GET", "/api/nope", NULL, NULL, &out), 404);
    cp_buf_free(&out);
}

/* With --watch, a profile the exporter writes later shows up. */
static void watch_picks_up(const server *s, int64_t t0)
{
    cp_buf p;
    make_pprof(&p, t0 + 20 * SEC, 11);
    char *ev = fx_event("service:late,env:dev", t0 + 20 * SEC, t0 + 30 * SEC, NULL);
    fx_write_pair(g_import, "late.1.1", &p, ev);
    double n = 0;
    for (int i = 0; i < 200 && n < 3; i++) { /* up to 20 s on a loaded machine */
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
        ex_jval *v = get_json(s, "/api/health");
        n = ex_json_num(v, "profiles", 0);
        ex_json_free(v);
    }
    assert_true(n == 3);
    free(ev);
    cp_buf_free(&p);
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* 200 clients that send half a request header and stall must not delay a
 * normal request by more than a second; a silent one is closed within the
 * idle timeout (5 s) plus slack. DELETE removes a profile. */
static void trickling_clients(const server *s, int64_t id)
{
    enum { N = 200 };
    int fds[N];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof a), 0);
        const char *part = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
        assert_true(write(fds[i], part, strlen(part)) > 0);
    }
    int64_t t0 = mono_ms();
    ex_jval *v = get_json(s, "/api/health");
    int64_t took = mono_ms() - t0;
    ex_json_free(v);
    if (took > 1000) fail_msg("a normal request took %lld ms behind %d trickling connections", (long long)took, N);
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    char c;
    assert_int_equal(poll(&p, 1, 15000), 1); /* closed by the server, bounded wait */
    assert_true(read(fds[0], &c, 1) <= 0);
    for (int i = 0; i < N; i++) close(fds[i]);
    cp_buf out;
    char path[64];
    snprintf(path, sizeof path, "/api/profiles/%lld", (long long)id);
    assert_int_equal(http(s, "DELETE", path, NULL, NULL, &out), 200);
    cp_buf_free(&out);
    assert_int_equal(http(s, "GET", path, NULL, NULL, &out), 404);
    cp_buf_free(&out);
    assert_int_equal(http(s, "DELETE", path, NULL, NULL, &out), 404);
    cp_buf_free(&out);
}

static void test_server_end_to_end(void **state)
{
    g_data = fx_tmpdir("server-data");
    g_import = fx_tmpdir("server-import");
    int64_t t0 = fx_now_ns() - 60 * SEC;
    cp_buf imp, uploaded;
    make_pprof(&imp, t0, 7);
    char *ev = fx_event("service:imported,env:dev,language:jvm", t0, t0 + 10 * SEC, NULL);
    fx_write_pair(g_import, "imported.1.1", &imp, ev);
    server s = start("200000", false);
    ex_jval *v = get_json(&s, "/api/health");
    assert_true(ex_json_num(v, "profiles", 0) == 1);
    ex_json_free(v);
    assert_int_equal(post_upload(&s, "service:web,env:prod,language:python,host:h1", t0, 0, &uploaded), 200);
    bad_inputs(&s);
    v = get_json(&s, "/api/profiles?sort=service&order=asc");
    assert_true(ex_json_num(v, "total", 0) == 2); /* the bad uploads stored nothing */
    const ex_jval *web = find_row(v, "web");
    assert_non_null(web);
    assert_true(ex_json_num(web, "cpu_cores", 0) == 0.4);
    int64_t id = (int64_t)ex_json_num(web, "id", 0);
    ex_json_free(v);
    endpoints(&s, id, &uploaded);
    stop(&s);
    /* restart on the same data: everything is still there */
    s = start("200000", true);
    v = get_json(&s, "/api/profiles");
    assert_true(ex_json_num(v, "total", 0) == 2);
    assert_non_null(find_row(v, "imported"));
    ex_json_free(v);
    watch_picks_up(&s, t0);
    trickling_clients(&s, id);
    stop(&s);
    free(ev);
    cp_buf_free(&imp);
    cp_buf_free(&uploaded);
    fx_rmtree(g_data);
    fx_rmtree(g_import);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_server_end_to_end)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
