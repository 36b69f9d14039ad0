/*
 * export_http.c — upload to a Datadog-agent-compatible intake (libcurl).
 *
 * POST {agent_url}/profiling/v1/input (or the agentless intake with a
 * DD-API-KEY header) as multipart/form-data: part "event" (event.json)
 * and part "auto.pprof" (the gzip'd profile). Each request has a hard
 * timeout; network errors and 5xx are retried a bounded number of times
 * with exponential backoff, 4xx never. CURLOPT_NOSIGNAL keeps libcurl
 * away from the host's signals; the abort flag (set by cp_stop past its
 * flush deadline) ends a transfer through the progress callback.
 */
#include "export.h"

#include "curl_dl.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "config_internal.h"
#include "json.h"
#include "metrics.h"

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 4000
#define POLL_MS 50 /* longest stay inside curl between abort checks */

char *cp__event_json(const cp__job *j, const char *attachment)
{
    char start[40], end[40];
    cp__rfc3339(j->start_ns, start, sizeof(start));
    cp__rfc3339(j->end_ns, end, sizeof(end));
    cp_buf b;
    cp_buf_init(&b, 16u << 20);
    cp__json w;
    cp__json_init(&w, &b);
    cp__json_obj_begin(&w, NULL);
    cp__json_arr_begin(&w, "attachments");
    cp__json_str(&w, NULL, attachment);
    cp__json_arr_end(&w);
    cp__json_str(&w, "start", start);
    cp__json_str(&w, "end", end);
    cp__json_str(&w, "family", j->family);
    cp__json_str(&w, "version", "4");
    cp__json_str(&w, "tags_profiler", j->tags);
    cp__json_raw(&w, "info", j->info ? j->info : "{}");
    cp__json_obj_end(&w);
    char *out = NULL;
    cp__json_take(&w, &out);
    return out;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p, (void)ctx;
    return size * n;
}

static int on_progress(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return ctx && atomic_load((atomic_bool *)ctx) ? 1 : 0; /* non-zero aborts; NULL: never */
}

static int add_part(curl_mime *m, const cp__http_part *pt)
{
    curl_mimepart *p = curl_mime_addpart(m);
    if (!p || curl_mime_name(p, pt->name) || (pt->file && curl_mime_filename(p, pt->file)) ||
        (pt->type && curl_mime_type(p, pt->type)) || curl_mime_data(p, pt->data, pt->len))
        return CP_ENOMEM;
    return CP_OK;
}

static struct curl_slist *headers(const cp__dest *d)
{
    char key[300];
    struct curl_slist *h = curl_slist_append(NULL, "Expect:"); /* no 100-continue round trip */
    h = h ? curl_slist_append(h, "DD-EVP-ORIGIN: contprof") : NULL;
    h = h ? curl_slist_append(h, "DD-EVP-ORIGIN-VERSION: " CP_PROFILER_VERSION) : NULL;
    if (h && d->api_key[0]) {
        snprintf(key, sizeof(key), "DD-API-KEY: %s", d->api_key);
        struct curl_slist *k = curl_slist_append(h, key);
        memset(key, 0, sizeof(key));
        if (!k)
            curl_slist_free_all(h);
        h = k;
    }
    return h;
}

/* The environment's proxy for url and the variable it came from. curl
 * itself ignores upper-case HTTP_PROXY (a CGI hazard that does not apply
 * to a profiler), so the variables are read here, in curl's order. */
static const char *env_proxy(const char *url, const char **from)
{
    static const char *const https_vars[] = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    static const char *const http_vars[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    const char *const *vars = strncmp(url, "https://", 8) == 0 ? https_vars : http_vars;
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            *from = vars[i];
            return v;
        }
    }
    return NULL;
}

/* NO_PROXY matching as curl does it: "*", or a host equal to an entry or
 * ending in "." + entry (a leading dot in the entry is ignored). */
static bool no_proxy_matches(const char *url)
{
    const char *np = getenv("no_proxy");
    if (!np || !*np)
        np = getenv("NO_PROXY");
    if (!np || !*np)
        return false;
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    const char *at = strpbrk(h, "@/");
    if (at && *at == '@')
        h = at + 1;
    size_t hl = strcspn(h, ":/");
    if (*h == '[') /* [v6]:port */
        hl = strcspn(h, "]") + 1;
    for (const char *e = np; *e;) {
        e += strspn(e, ", ");
        size_t el = strcspn(e, ", ");
        const char *ent = e;
        size_t en = el;
        if (en && ent[0] == '.')
            ent++, en--;
        if ((en == 1 && ent[0] == '*') ||
            (en && hl >= en && strncasecmp(h + hl - en, ent, en) == 0 && (hl == en || h[hl - en - 1] == '.')))
            return true;
        e += el;
    }
    return false;
}

void cp__http_net_opts(void *handle, const cp__dest *d, const char *url, const char *unix_socket)
{
    CURL *c = handle;
    const char *from = "proxy_url";
    const char *proxy = d->proxy[0] ? d->proxy : env_proxy(url, &from);
    if (unix_socket && unix_socket[0])
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_socket);
    if ((unix_socket && unix_socket[0]) || !proxy || no_proxy_matches(url))
        curl_easy_setopt(c, CURLOPT_PROXY, ""); /* "" = no proxy, not even from the environment */
    else
        curl_easy_setopt(c, CURLOPT_PROXY, proxy);
    if (d->ca_file[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, d->ca_file);
}

void cp__http_proxy_describe(const cp__dest *d, const char *url, const char *unix_socket, char *out, size_t n)
{
    const char *from = "proxy_url";
    const char *proxy = d->proxy[0] ? d->proxy : env_proxy(url, &from);
    if ((unix_socket && unix_socket[0]) || !proxy) {
        snprintf(out, n, "direct");
        return;
    }
    if (no_proxy_matches(url)) {
        snprintf(out, n, "direct (NO_PROXY matches)");
        return;
    }
    char shown[sizeof(d->proxy) + 8];
    cp__mask_url_password(proxy, shown, sizeof(shown));
    snprintf(out, n, "via proxy %s (from %s)", shown, from);
}

void cp__http_base_opts(void *handle, const cp__dest *d, const char *url, const char *unix_socket,
                        int64_t timeout_ms, atomic_bool *abort, char *errbuf)
{
    CURL *c = handle;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "contprof/" CP_PROFILER_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, abort);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https"); /* never file://, ftp://... */
#endif
    cp__http_net_opts(c, d, url, unix_socket);
}

static void set_opts(CURL *c, const cp__dest *d, const cp__http_req *r, curl_mime *m, atomic_bool *abort,
                     char *errbuf)
{
    cp__http_base_opts(c, d, r->url, r->unix_socket, d->timeout_ms, abort, errbuf);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, m);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)r->headers);
    if (r->userpwd && r->userpwd[0]) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, r->userpwd);
    }
}

/* Run the transfer on a multi handle of its own, polling at most
 * POLL_MS at a time: the thread is never parked inside curl (DNS, TCP,
 * a TLS handshake that a stalled server never answers) for longer than
 * that, so an abort — cp_stop's deadline — is seen within POLL_MS and the
 * thread can always be joined. No multi handle outlives the transfer, so
 * a forked child never finds one of its parent's. */
int cp__http_perform(void *curl_handle, atomic_bool *abort)
{
    CURL *c = curl_handle;
    CURLM *mh = curl_multi_init();
    if (!mh)
        return CURLE_OUT_OF_MEMORY;
    CURLcode rc = CURLE_OK;
    int running = 1;
    if (curl_multi_add_handle(mh, c) != CURLM_OK)
        rc = CURLE_OUT_OF_MEMORY;
    while (rc == CURLE_OK && running) {
        if (abort && atomic_load(abort)) { /* NULL: never aborted */
            rc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        int nfds;
        if (curl_multi_perform(mh, &running) != CURLM_OK ||
            (running && curl_multi_poll(mh, NULL, 0, POLL_MS, &nfds) != CURLM_OK))
            rc = CURLE_RECV_ERROR;
    }
    int left;
    CURLMsg *msg;
    while (rc == CURLE_OK && (msg = curl_multi_info_read(mh, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE)
            rc = msg->data.result;
    curl_multi_remove_handle(mh, c);
    curl_multi_cleanup(mh);
    return rc;
}

/* One POST. *status = HTTP status (0 when no response); CP_ENET on a
 * transport error with its text in errbuf. */
static int post_once(const cp__dest *d, const cp__http_req *r, atomic_bool *abort, long *status, char *errbuf)
{
    *status = 0;
    errbuf[0] = 0;
    CURL *c = curl_easy_init();
    curl_mime *m = c ? curl_mime_init(c) : NULL;
    int err = m ? CP_OK : CP_ENOMEM;
    for (int i = 0; err == CP_OK && i < r->nparts; i++)
        err = add_part(m, &r->parts[i]);
    if (err == CP_OK) {
        set_opts(c, d, r, m, abort, errbuf);
        CURLcode rc = (CURLcode)cp__http_perform(c, abort);
        if (rc != CURLE_OK && !errbuf[0])
            snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
        if (rc == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        err = rc == CURLE_OK ? CP_OK : rc == CURLE_OPERATION_TIMEDOUT ? CP_ETIMEDOUT : CP_ENET;
    }
    curl_mime_free(m);
    if (c)
        curl_easy_cleanup(c);
    return err;
}

/* Sleep ms unless abort is raised first. */
static void backoff(int64_t ms, atomic_bool *abort)
{
    int64_t until = cp_now_ns() + ms * 1000000;
    while (!atomic_load(abort) && cp_now_ns() < until) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Count and report a failed upload. One abandoned by cp_stop's deadline
 * was already counted and logged there. */
static int fail(const char *url, int err, long status, const char *errbuf, int attempts, atomic_bool *abort)
{
    if (atomic_load(abort))
        return CP_ETIMEDOUT;
    cp__metrics_add_upload_failure();
    if (status) {
        cp__metrics_set_error("upload to %s failed: HTTP %ld", url, status);
        cp_log(CP_LOG_ERROR, "upload to %s failed: HTTP %ld%s", url, status, status < 500 ? " (not retried)" : "");
        return CP_EHTTP;
    }
    cp__metrics_set_error("upload to %s failed: %s", url, errbuf);
    cp_log(CP_LOG_ERROR, "upload to %s failed after %d attempt(s): %s", url, attempts, errbuf);
    return err;
}

int cp__http_unavailable(const char *shown, atomic_bool *abort)
{
    char why[300];
    snprintf(why, sizeof why, "libcurl unavailable: %s", cp__curl_error());
    return fail(shown, CP_ENET, 0, why, 0, abort);
}

/* POST r with bounded retries (network errors and 5xx, never 4xx) and
 * exponential backoff; counts and logs the outcome. */
int cp__http_upload(const cp__dest *d, const cp__http_req *r, const cp__job *j, atomic_bool *abort)
{
    char errbuf[CURL_ERROR_SIZE];
    long status = 0;
    int err = CP_OK, attempt = 0;
    int64_t t0 = cp_now_ns();
    int64_t wait_ms = BACKOFF_FIRST_MS;
    for (;; attempt++) {
        err = post_once(d, r, abort, &status, errbuf);
        bool retryable = err != CP_OK ? err != CP_ENOMEM : status >= 500;
        if ((err == CP_OK && status < 500) || !retryable || attempt >= d->retries || atomic_load(abort))
            break;
        cp__metrics_add_upload_retry();
        cp_log(CP_LOG_DEBUG, "upload to %s: %s; retrying in %lld ms", r->shown, status ? "server error" : errbuf,
               (long long)wait_ms);
        backoff(wait_ms, abort);
        wait_ms = wait_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait_ms * 2;
    }
    if (err == CP_OK && status >= 200 && status < 300) {
        cp_log(CP_LOG_DEBUG, "profile #%llu uploaded to %s (HTTP %ld, %zu bytes, %d attempt(s), %.0f ms)",
               (unsigned long long)j->seq, r->shown, status, j->pprof.len, attempt + 1,
               (double)(cp_now_ns() - t0) / 1e6);
        return CP_OK;
    }
    return fail(r->shown, err == CP_OK ? CP_EHTTP : err, err == CP_OK ? status : 0, errbuf, attempt + 1, abort);
}

int cp__export_http(const cp__dest *d, const cp__job *j, atomic_bool *abort)
{
    if (!cp__curl_load())
        return cp__http_unavailable(d->url, abort);
    char *event = cp__event_json(j, "auto.pprof");
    struct curl_slist *h = event ? headers(d) : NULL;
    if (!h) {
        cp__free(event);
        return fail(d->url, CP_ENOMEM, 0, "out of memory", 0, abort);
    }
    const cp__http_part parts[2] = {
        {"event", "event.json", "application/json", event, strlen(event)},
        {"auto.pprof", "auto.pprof", "application/octet-stream", j->pprof.data, j->pprof.len},
    };
    const cp__http_req r = {d->url, d->url, d->unix_socket, parts, 2, h, NULL};
    int err = cp__http_upload(d, &r, j, abort);
    curl_slist_free_all(h);
    cp__free(event);
    return err;
}
