/*
 * intake_server.c — the test intake (libmicrohttpd, one thread per
 * connection so a hanging answer does not block the others) and a small
 * multipart parser for checking what the uploader sent.
 */
#include "intake_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct intake {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    intake_behaviour b;
    int count;
    atomic_bool stopping;
    intake_req last;
};

typedef struct conn {
    uint8_t *body;
    size_t len, cap;
} conn;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void append(conn *c, const char *data, size_t n)
{
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        c->body = realloc(c->body, c->cap);
    }
    memcpy(c->body + c->len, data, n);
    c->len += n;
}

static void header(struct MHD_Connection *mc, const char *name, char *out, size_t n)
{
    const char *v = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, name);
    snprintf(out, n, "%s", v ? v : "");
}

/* Record the finished request; returns the status to answer. */
static int record(intake *in, struct MHD_Connection *mc, const char *method, const char *url, conn *c)
{
    pthread_mutex_lock(&in->mu);
    free(in->last.body);
    memset(&in->last, 0, sizeof(in->last));
    snprintf(in->last.method, sizeof(in->last.method), "%s", method);
    snprintf(in->last.url, sizeof(in->last.url), "%s", url);
    header(mc, "Content-Type", in->last.content_type, sizeof(in->last.content_type));
    header(mc, "DD-API-KEY", in->last.api_key, sizeof(in->last.api_key));
    header(mc, "DD-EVP-ORIGIN", in->last.origin, sizeof(in->last.origin));
    in->last.body = c->body;
    in->last.len = c->len;
    c->body = NULL;
    int n = ++in->count;
    intake_behaviour b = in->b;
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
    while (b.hang && !atomic_load(&in->stopping))
        sleep_ms(10);
    for (int t = 0; t < b.delay_ms && !atomic_load(&in->stopping); t += 10)
        sleep_ms(10);
    return n <= b.fail_first ? 500 : (b.status ? b.status : 200);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)version;
    intake *in = cls;
    conn *c = *con_cls;
    if (!c) {
        *con_cls = calloc(1, sizeof(conn));
        return MHD_YES;
    }
    if (*size) {
        append(c, data, *size);
        *size = 0;
        return MHD_YES;
    }
    int status = record(in, mc, method, url, c);
    static const char msg[] = "{}";
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)msg, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static void on_done(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls, (void)mc, (void)t;
    conn *c = *con_cls;
    if (c)
        free(c->body);
    free(c);
    *con_cls = NULL;
}

/* Start the daemon on 127.0.0.1:0, or on listen_fd when >= 0. */
static intake *start(int listen_fd)
{
    intake *in = calloc(1, sizeof(*in));
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cv, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    if (listen_fd >= 0)
        in->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, in, MHD_OPTION_LISTEN_SOCKET, listen_fd,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_done, in, MHD_OPTION_END);
    else
        in->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, in, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_done, in, MHD_OPTION_END);
    if (!in->d) {
        free(in);
        return NULL;
    }
    return in;
}

intake *intake_start(void)
{
    return start(-1);
}

intake *intake_start_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    return start(fd);
}

int intake_port(const intake *in)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(in->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : 0;
}

void intake_set(intake *in, intake_behaviour b)
{
    pthread_mutex_lock(&in->mu);
    in->b = b;
    in->count = 0;
    pthread_mutex_unlock(&in->mu);
}

int intake_requests(intake *in)
{
    pthread_mutex_lock(&in->mu);
    int n = in->count;
    pthread_mutex_unlock(&in->mu);
    return n;
}

bool intake_wait(intake *in, int n, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 10) {
        if (intake_requests(in) >= n)
            return true;
        sleep_ms(10);
    }
    return intake_requests(in) >= n;
}

bool intake_last(intake *in, intake_req *out)
{
    pthread_mutex_lock(&in->mu);
    bool have = in->count > 0 && in->last.body;
    *out = in->last;
    out->body = have ? malloc(in->last.len + 1) : NULL;
    if (out->body) {
        memcpy(out->body, in->last.body, in->last.len);
        out->body[in->last.len] = 0;
    }
    pthread_mutex_unlock(&in->mu);
    return have;
}

void intake_stop(intake *in)
{
    if (!in)
        return;
    atomic_store(&in->stopping, true);
    MHD_stop_daemon(in->d);
    free(in->last.body);
    pthread_cond_destroy(&in->cv);
    pthread_mutex_destroy(&in->mu);
    free(in);
}

/* ---- multipart ---- */

static const uint8_t *find(const uint8_t *h, size_t hn, const char *needle, size_t nn)
{
    for (size_t i = 0; nn <= hn && i + nn <= hn; i++) {
        if (memcmp(h + i, needle, nn) == 0)
            return h + i;
    }
    return NULL;
}

/* Value of attribute attr="..." in a header block, into out. */
static void attr(const char *hdr, const char *name, char *out, size_t n)
{
    const char *p = strstr(hdr, name);
    out[0] = 0;
    if (!p)
        return;
    p += strlen(name);
    const char *e = strchr(p, '"');
    size_t len = e ? (size_t)(e - p) : 0;
    snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), p);
}

static void part_headers(const char *hdr, mp_part *p)
{
    attr(hdr, " name=\"", p->name, sizeof(p->name));
    attr(hdr, "filename=\"", p->filename, sizeof(p->filename));
    const char *t = strcasestr(hdr, "Content-Type: ");
    p->type[0] = 0;
    if (t)
        snprintf(p->type, sizeof(p->type), "%.*s", (int)strcspn(t + 14, "\r\n"), t + 14);
}

int mp_parse(const char *content_type, const uint8_t *body, size_t len, mp_part *parts, int max)
{
    const char *b = strstr(content_type, "boundary=");
    if (!b)
        return -1;
    char delim[200];
    snprintf(delim, sizeof(delim), "--%s", b + 9);
    size_t dn = strlen(delim);
    const uint8_t *p = find(body, len, delim, dn), *end = body + len;
    int n = 0;
    while (p && n < max) {
        p += dn;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return n; /* closing delimiter */
        const uint8_t *hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend)
            return -1;
        char hdr[1024];
        snprintf(hdr, sizeof(hdr), "%.*s", (int)(hend - p), (const char *)p);
        part_headers(hdr, &parts[n]);
        const uint8_t *data = hend + 4, *next = find(data, (size_t)(end - data), delim, dn);
        if (!next || next - data < 2)
            return -1;
        parts[n].data = data;
        parts[n].len = (size_t)(next - data) - 2; /* minus the CRLF before the delimiter */
        n++;
        p = next;
    }
    return p ? n : -1;
}
