/*
 * http.c — libmicrohttpd glue (http.h). MHD calls the access handler
 * several times per request: first with no body (headers only), then with
 * body chunks, then once more with an empty chunk; the per-request state
 * lives in *con_cls and is freed by the completion callback.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define INTAKE_PATH "/profiling/v1/input"

/* Connections: a thread each (cheap while they wait), so a few hundred
 * slow or trickling clients do not lock others out; one address may hold
 * at most EX_HTTP_MAX_PER_IP; a connection silent for
 * EX_HTTP_IDLE_TIMEOUT_S seconds (headers or body) is closed. */
#define EX_HTTP_MAX_CONNECTIONS 1024
#define EX_HTTP_MAX_PER_IP 512
#define EX_HTTP_IDLE_TIMEOUT_S 5

struct ex_http {
    struct MHD_Daemon *d;
    ex_http_opts o;
    bool loopback; /* bound to a loopback address: enforce local Host names */
};

typedef struct req {
    bool too_big;        /* body over max_body: discard, answer 413  */
    int reject;          /* != 0: discard the body, answer this      */
    const char *why;     /* static reason for reject                 */
    cp_buf body;
} req;

int ex_http_parse_listen(const char *listen, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    size_t hl;
    if (!listen || !*listen) return -1;
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');
        if (!rb || rb[1] != ':') return -1;
        hl = (size_t)(rb - listen - 1);
        listen++;
        colon = rb + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon) return -1;
        hl = (size_t)(colon - listen);
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || colon[1] == 0 || p < 0 || p > 65535 || hl == 0 || hl >= hostlen) return -1;
    memcpy(host, listen, hl);
    host[hl] = 0;
    *port = (uint16_t)p;
    return 0;
}

static enum MHD_Result send_resp(struct MHD_Connection *c, ex_resp *r)
{
    const void *data = r->static_body ? (const void *)r->static_body : r->body.data;
    size_t len = r->static_body ? r->static_len : r->body.len;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, (void *)data, r->static_body ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* The pages load nothing but the explorer itself (explorer/web). */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, r->static_body ? "no-cache" : "no-store");
    if (r->disposition[0]) MHD_add_response_header(resp, "Content-Disposition", r->disposition);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *msg)
{
    ex_resp r;
    ex_resp_init(&r);
    ex_resp_error(&r, status, msg);
    enum MHD_Result ok = send_resp(c, &r);
    ex_resp_free(&r);
    return ok;
}

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    ex_param_add(cls, key, value);
    return MHD_YES;
}

static enum MHD_Result handle_get(ex_http *h, struct MHD_Connection *c, const char *url)
{
    ex_params ps = {0};
    ex_resp r;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, &ps);
    ex_resp_init(&r);
    ex_api_get(&h->o.api, url, &ps, &r);
    enum MHD_Result ok = send_resp(c, &r);
    ex_resp_free(&r);
    return ok;
}

static enum MHD_Result send_too_big(ex_http *h, struct MHD_Connection *c)
{
    char msg[120];
    snprintf(msg, sizeof msg, "request body larger than the limit of %zu bytes (--max-body)", h->o.max_body);
    return send_error(c, 413, msg);
}

static enum MHD_Result finish_intake(ex_http *h, struct MHD_Connection *c, req *q)
{
    ex_resp r;
    if (q->reject) return send_error(c, q->reject, q->why);
    if (q->too_big) return send_too_big(h, c);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    ex_resp_init(&r);
    ex_api_intake(&h->o.api, ct, q->body.data ? q->body.data : (const uint8_t *)"", q->body.len, &r);
    if (r.status != 200)
        cp_log(CP_LOG_WARN, "explorer: rejected upload (%d): %.*s", r.status, (int)r.body.len, (const char *)r.body.data);
    enum MHD_Result ok = send_resp(c, &r);
    ex_resp_free(&r);
    return ok;
}

/* A loopback server only answers requests addressed to a local name, so
 * a web page cannot reach it through DNS rebinding (evil.example resolving
 * to 127.0.0.1) and read profiles. */
static bool host_allowed(const ex_http *h, struct MHD_Connection *c)
{
    static const char *const local[] = {"localhost", "127.", "[::1]"};
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!h->loopback || !host) return true;
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
        size_t n = strlen(local[i]);
        if (strncasecmp(host, local[i], n) != 0) continue;
        if (local[i][n - 1] == '.') return strspn(host + n, "0123456789.:") == strlen(host + n);
        return host[n] == 0 || host[n] == ':';
    }
    return false;
}

/* An Origin header, when present, must name this server's Host. */
static bool origin_allowed(struct MHD_Connection *c)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!origin) return true;
    const char *o = strstr(origin, "://");
    return o && host && strcmp(o + 3, host) == 0;
}

/* A POST is answered only after its body was read (and discarded when
 * refused): answering earlier makes the server close a connection with
 * unread data, which the kernel turns into a reset the client may see
 * instead of the answer. Only a body announced as far too big is refused
 * at once. */
static enum MHD_Result begin_post(ex_http *h, struct MHD_Connection *c, const char *url, void **con_cls)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
    if (announced > h->o.max_body && announced / 4 > h->o.max_body) return send_too_big(h, c);
    req *q = calloc(1, sizeof *q);
    if (!q) return MHD_NO;
    cp_buf_init(&q->body, h->o.max_body);
    q->too_big = announced > h->o.max_body;
    if (strcmp(url, INTAKE_PATH) != 0) {
        q->reject = 404;
        q->why = "POST is only accepted on " INTAKE_PATH;
    } else if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin")) {
        /* Profilers send no Origin; a browser page posting cross-site does. */
        q->reject = 403;
        q->why = "uploads from web pages are not accepted";
    }
    *con_cls = q;
    return MHD_YES;
}

/* First call of a request: decide what it is before any body arrives. */
static enum MHD_Result begin(ex_http *h, struct MHD_Connection *c, const char *url, const char *method,
                             void **con_cls)
{
    bool is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (!strcmp(method, MHD_HTTP_METHOD_DELETE)) {
        if (!host_allowed(h, c)) return send_error(c, 403, "Host header is not a local name (loopback-only server)");
        /* A page of another site cannot send DELETE without a CORS
         * preflight, which the explorer never grants; refuse Origins that
         * are not this server anyway. */
        if (!origin_allowed(c)) return send_error(c, 403, "cross-site requests are not accepted");
        ex_resp r;
        ex_resp_init(&r);
        ex_api_delete(&h->o.api, url, &r);
        enum MHD_Result ok = send_resp(c, &r);
        ex_resp_free(&r);
        return ok;
    }
    bool is_get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
    if (!host_allowed(h, c)) return send_error(c, 403, "Host header is not a local name (loopback-only server)");
    if (strcmp(url, INTAKE_PATH) == 0 && !is_post) return send_error(c, 405, "use POST for the intake");
    if (is_get) return handle_get(h, c, url);
    if (is_post) return begin_post(h, c, url, con_cls);
    return send_error(c, 405, "method not allowed");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    ex_http *h = cls;
    req *q = *con_cls;
    if (!q) return begin(h, c, url, method, con_cls);
    if (*upload_data_size) {
        /* Over the cap: keep reading (discarding) so the client gets the
         * 413 instead of a reset connection. */
        if (!q->too_big && !q->reject && cp_buf_append(&q->body, upload_data, *upload_data_size) != CP_OK) {
            q->too_big = true;
            cp_buf_free(&q->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return finish_intake(h, c, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    req *q = *con_cls;
    if (!q) return;
    cp_buf_free(&q->body);
    free(q);
    *con_cls = NULL;
}

/* MHD's messages come as printf formats of its own. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = 0;
    cp_log(CP_LOG_WARN, "explorer: http: %s", line);
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *sa, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static bool is_loopback(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a);
    }
    return false;
}

static struct MHD_Daemon *start_daemon(ex_http *h, const struct sockaddr_storage *sa)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (sa->ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
                            MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sa,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)EX_HTTP_MAX_CONNECTIONS,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)EX_HTTP_MAX_PER_IP,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)EX_HTTP_IDLE_TIMEOUT_S,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                            MHD_OPTION_END);
}

ex_http *ex_http_start(const ex_http_opts *opts, char *err, size_t errlen)
{
    char host[100];
    uint16_t port;
    struct sockaddr_storage sa;
    if (ex_http_parse_listen(opts->listen, host, sizeof host, &port)) {
        snprintf(err, errlen, "bad --listen '%s': expected HOST:PORT, e.g. 127.0.0.1:8127", opts->listen);
        return NULL;
    }
    if (resolve(host, port, &sa, err, errlen)) return NULL;
    ex_http *h = calloc(1, sizeof *h);
    if (!h) { snprintf(err, errlen, "out of memory"); return NULL; }
    h->o = *opts;
    h->loopback = is_loopback(&sa);
    if (!h->o.max_body) h->o.max_body = EX_DEFAULT_MAX_BODY;
    h->d = start_daemon(h, &sa);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not available)", opts->listen);
        free(h);
        return NULL;
    }
    return h;
}

uint16_t ex_http_port(const ex_http *h)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : 0;
}

void ex_http_stop(ex_http *h)
{
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
}
