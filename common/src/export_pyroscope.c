/*
 * export_pyroscope.c — upload to Grafana Pyroscope (or Grafana Alloy's
 * pyroscope.receive_http), the open-source backend that scales past one
 * machine.
 *
 * Pyroscope's ingest API: POST {pyroscope_url}/ingest with the metadata in
 * the query — name=<application>{label=value,...}, from and until (unix
 * seconds), format=pprof, spyName, sampleRate — and the profile as
 * multipart/form-data: part "profile" (file profile.pprof, the gzip'd
 * pprof) and part "sample_type_config" (JSON), which tells the server the
 * units, display name and aggregation of each of our sample types (its
 * defaults only know Go's). The application name is the service; labels
 * come from the tags (env, version, host, language, runtime, user tags),
 * without the per-process ones (runtime-id, process_id) that would make a
 * new series per process. Basic auth (pyroscope_basic_auth "user:password")
 * and the tenant header X-Scope-OrgID (pyroscope_tenant) are optional.
 * Queue, timeout, retries, proxies and redaction are the HTTP exporter's.
 */
#include "export.h"

#include <ctype.h>
#include "curl_dl.h"
#include <stdio.h>
#include <string.h>

#include "alloc.h"

/* Per sample type: Pyroscope's units, display name and aggregation. */
static const char g_sample_type_config[] =
    "{\"cpu-time\":{\"units\":\"nanoseconds\",\"display-name\":\"cpu\"},"
    "\"cpu-samples\":{\"units\":\"samples\",\"display-name\":\"cpu_samples\"},"
    "\"wall-time\":{\"units\":\"nanoseconds\",\"display-name\":\"wall\"},"
    "\"wall-samples\":{\"units\":\"samples\",\"display-name\":\"wall_samples\"},"
    "\"alloc-space\":{\"units\":\"bytes\",\"display-name\":\"alloc_space\"},"
    "\"alloc-samples\":{\"units\":\"objects\",\"display-name\":\"alloc_objects\"},"
    "\"heap-space\":{\"units\":\"bytes\",\"display-name\":\"inuse_space\",\"aggregation\":\"average\"},"
    "\"heap-live-samples\":{\"units\":\"objects\",\"display-name\":\"inuse_objects\",\"aggregation\":\"average\"},"
    "\"lock-acquire-wait\":{\"units\":\"lock_nanoseconds\",\"display-name\":\"lock_time\"},"
    "\"lock-acquire\":{\"units\":\"lock_samples\",\"display-name\":\"lock_count\"},"
    "\"lock-release-hold\":{\"units\":\"lock_nanoseconds\",\"display-name\":\"lock_hold_time\"},"
    "\"lock-release\":{\"units\":\"lock_samples\",\"display-name\":\"lock_release_count\"},"
    "\"exception-samples\":{\"units\":\"exceptions\",\"display-name\":\"exceptions\"}}";

/* Append c to out (bounded) as Pyroscope's name syntax allows: label
 * names [a-zA-Z0-9_.], values without the separators , = { }. */
static size_t put_clean(char *out, size_t n, size_t at, const char *s, size_t len, bool is_name)
{
    for (size_t i = 0; i < len && at + 1 < n; i++) {
        char c = s[i];
        bool ok = is_name ? (isalnum((unsigned char)c) || c == '_' || c == '.')
                          : (c != ',' && c != '=' && c != '{' && c != '}' && (unsigned char)c >= 0x20);
        out[at++] = ok ? c : '_';
    }
    out[at < n ? at : n - 1] = 0;
    return at;
}

static size_t put_raw(char *out, size_t n, size_t at, char c)
{
    if (at + 1 < n)
        out[at++] = c;
    out[at] = 0;
    return at;
}

/* "service{k=v,...}" from the tags string "service:x,env:y,...". */
static void app_name(const char *tags, char *out, size_t n)
{
    static const char *const skip[] = {"service", "runtime-id", "process_id", "profiler_version"};
    const char *svc = "contprof";
    size_t svclen = 8, at;
    for (const char *t = tags; *t; t += strcspn(t, ",") + (t[strcspn(t, ",")] == ',')) {
        size_t len = strcspn(t, ",");
        if (len > 8 && strncmp(t, "service:", 8) == 0)
            svc = t + 8, svclen = len - 8;
    }
    at = put_raw(out, n, put_clean(out, n, 0, svc, svclen, false), '{');
    bool first = true;
    for (const char *t = tags; *t; t += strcspn(t, ",") + (t[strcspn(t, ",")] == ',')) {
        size_t len = strcspn(t, ","), klen = strcspn(t, ":");
        bool keep = klen < len;
        for (size_t i = 0; keep && i < sizeof(skip) / sizeof(skip[0]); i++)
            keep = !(strlen(skip[i]) == klen && strncmp(t, skip[i], klen) == 0);
        if (!keep)
            continue;
        if (!first)
            at = put_raw(out, n, at, ',');
        first = false;
        at = put_raw(out, n, put_clean(out, n, at, t, klen, true), '=');
        at = put_clean(out, n, at, t + klen + 1, len - klen - 1, false);
    }
    put_raw(out, n, at, '}');
}

int cp__export_pyroscope(const cp__dest *d, const cp__job *j, atomic_bool *abort)
{
    char name[2048], url[sizeof(d->pyroscope_url) + 4096], shown[sizeof(d->pyroscope_url) + 16];
    snprintf(shown, sizeof(shown), "%s/ingest", d->pyroscope_url);
    if (!cp__curl_load())
        return cp__http_unavailable(shown, abort);
    app_name(j->tags ? j->tags : "", name, sizeof(name));
    char *esc = curl_easy_escape(NULL, name, 0);
    snprintf(url, sizeof(url), "%s?name=%s&from=%lld&until=%lld&format=pprof&spyName=contprof&sampleRate=%lld",
             shown, esc ? esc : "contprof", (long long)(j->start_ns / 1000000000LL),
             (long long)((j->end_ns + 999999999LL) / 1000000000LL),
             (long long)(cp_config_get()->cpu_interval_us > 0 ? 1000000 / cp_config_get()->cpu_interval_us : 100));
    curl_free(esc);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    char tenant[300];
    if (h && d->pyroscope_tenant[0]) {
        snprintf(tenant, sizeof(tenant), "X-Scope-OrgID: %s", d->pyroscope_tenant);
        struct curl_slist *t = curl_slist_append(h, tenant);
        if (!t)
            curl_slist_free_all(h);
        h = t;
    }
    if (!h)
        return CP_ENOMEM;
    const cp__http_part parts[2] = {
        {"profile", "profile.pprof", "application/octet-stream", j->pprof.data, j->pprof.len},
        {"sample_type_config", "sample_type_config.json", "application/json", g_sample_type_config,
         sizeof(g_sample_type_config) - 1},
    };
    const cp__http_req r = {url, shown, NULL, parts, 2, h, d->pyroscope_auth[0] ? d->pyroscope_auth : NULL};
    int err = cp__http_upload(d, &r, j, abort);
    curl_slist_free_all(h);
    return err;
}
