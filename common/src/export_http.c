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

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "json.h"
#include "metrics.h"

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 4000

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void cp__http_global_init(void)
{
    pthread_once(&g_curl_once, curl_init_once);
}

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
    return atomic_load((atomic_bool *)ctx) ? 1 : 0; /* non-zero aborts */
}

static int add_part(curl_mime *m, const char *name, const char *file, const char *type, const void *data,
                    size_t n)
{
    curl_mimepart *p = curl_mime_addpart(m);
    if (!p || curl_mime_name(p, name) || curl_mime_filename(p, file) || curl_mime_type(p, type) ||
        curl_mime_data(p, data, n))
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

static void set_opts(CURL *c, const cp__dest *d, curl_mime *m, struct curl_slist *h, atomic_bool *abort,
                     char *errbuf)
{
    curl_easy_setopt(c, CURLOPT_URL, d->url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, m);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)d->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)d->timeout_ms);
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
    if (d->unix_socket[0])
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, d->unix_socket);
}

/* One POST. *status = HTTP status (0 when no response); CP_ENET on a
 * transport error with its text in errbuf. */
static int post_once(const cp__dest *d, const cp__job *j, const char *event, atomic_bool *abort, long *status,
                     char *errbuf)
{
    *status = 0;
    errbuf[0] = 0;
    CURL *c = curl_easy_init();
    curl_mime *m = c ? curl_mime_init(c) : NULL;
    struct curl_slist *h = m ? headers(d) : NULL;
    int err = h ? add_part(m, "event", "event.json", "application/json", event, strlen(event)) : CP_ENOMEM;
    if (err == CP_OK)
        err = add_part(m, "auto.pprof", "auto.pprof", "application/octet-stream", j->pprof.data, j->pprof.len);
    if (err == CP_OK) {
        set_opts(c, d, m, h, abort, errbuf);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK && !errbuf[0])
            snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
        if (rc == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        err = rc == CURLE_OK ? CP_OK : rc == CURLE_OPERATION_TIMEDOUT ? CP_ETIMEDOUT : CP_ENET;
    }
    curl_slist_free_all(h);
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
static int fail(const cp__dest *d, int err, long status, const char *errbuf, int attempts, atomic_bool *abort)
{
    if (atomic_load(abort))
        return CP_ETIMEDOUT;
    cp__metrics_add_upload_failure();
    if (status) {
        cp__metrics_set_error("upload to %s failed: HTTP %ld", d->url, status);
        cp_log(CP_LOG_ERROR, "upload to %s failed: HTTP %ld%s", d->url, status,
               status < 500 ? " (not retried)" : "");
        return CP_EHTTP;
    }
    cp__metrics_set_error("upload to %s failed: %s", d->url, errbuf);
    cp_log(CP_LOG_ERROR, "upload to %s failed after %d attempt(s): %s", d->url, attempts, errbuf);
    return err;
}

int cp__export_http(const cp__dest *d, const cp__job *j, atomic_bool *abort)
{
    char *event = cp__event_json(j, "auto.pprof");
    if (!event)
        return fail(d, CP_ENOMEM, 0, "out of memory", 0, abort);
    char errbuf[CURL_ERROR_SIZE];
    long status = 0;
    int err = CP_OK, attempt = 0;
    int64_t wait_ms = BACKOFF_FIRST_MS;
    for (;; attempt++) {
        err = post_once(d, j, event, abort, &status, errbuf);
        bool retryable = err != CP_OK ? err != CP_ENOMEM : status >= 500;
        if ((err == CP_OK && status < 500) || !retryable || attempt >= d->retries || atomic_load(abort))
            break;
        cp__metrics_add_upload_retry();
        cp_log(CP_LOG_DEBUG, "upload to %s: %s; retrying in %lld ms", d->url,
               status ? "server error" : errbuf, (long long)wait_ms);
        backoff(wait_ms, abort);
        wait_ms = wait_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait_ms * 2;
    }
    cp__free(event);
    if (err == CP_OK && status >= 200 && status < 300) {
        cp_log(CP_LOG_DEBUG, "profile #%llu uploaded to %s (HTTP %ld)", (unsigned long long)j->seq, d->url, status);
        return CP_OK;
    }
    return fail(d, err == CP_OK ? CP_EHTTP : err, err == CP_OK ? status : 0, errbuf, attempt + 1, abort);
}
