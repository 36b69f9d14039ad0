/*
 * export.h — exporting finished profiles: the job handed from the
 * scheduler to the exporter thread, the destinations, and the two
 * exporters (files, HTTP intake).
 */
#ifndef CP_EXPORT_H
#define CP_EXPORT_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "contprof.h"

/* One finished profile, owned by whoever holds the pointer. */
typedef struct cp__job {
    uint64_t seq;            /* 1-based, per run                    */
    int64_t start_ns, end_ns; /* unix ns                             */
    int pid;
    cp_buf pprof;            /* gzip'd pprof                        */
    char *tags;              /* tags_profiler text                  */
    char *info;              /* runtime info JSON object            */
    char family[32];
    char service[256];
} cp__job;

void cp__job_free(cp__job *j); /* NULL-safe */

/* Where profiles go, fixed when the run starts (so a setting changed
 * mid-run never races with the exporter thread). */
typedef struct cp__dest {
    char output_dir[PATH_MAX]; /* "" = no files                     */
    char url[2200];            /* full intake URL, "" = no upload   */
    char unix_socket[PATH_MAX];/* agent over a unix socket, or ""   */
    char api_key[256];         /* agentless only; never logged      */
    char proxy[1024];          /* proxy_url setting, "" = environment */
    char ca_file[PATH_MAX];    /* extra CA bundle for https, or ""  */
    char pyroscope_url[2200];  /* Pyroscope server base URL, or ""  */
    char pyroscope_auth[512];  /* "user:password" basic auth; never logged */
    char pyroscope_tenant[256];/* X-Scope-OrgID, or ""              */
    int64_t timeout_ms;
    int64_t max_bytes;         /* output_dir cap, 0 = none          */
    int64_t max_age_s;         /* age limit, 0 = none               */
    int retries;
    unsigned queue_cap;
} cp__dest;

/* Destinations from the settings: files when output_dir is set or when
 * nothing else is; the agent when agent_url resolves; else agentless when
 * api_key is set. */
void cp__dest_from_config(const cp_config *c, cp__dest *d);
/* One line per destination (caller frees). */
char *cp__dest_describe(const cp__dest *d);
/* What really happened at each destination since the run started ("no
 * profile written to ... (N failed: why)"); the plan before any export.
 * Caller frees. cp__dest_outcomes_reset starts the count anew. */
char *cp__dest_describe_results(const cp__dest *d);
void cp__dest_outcomes_reset(void);

/* The exporter: a bounded queue drained by its own thread. */
typedef struct cp__exporter cp__exporter;

/* Start the thread. NULL when out of memory or threads. */
cp__exporter *cp__exporter_start(const cp__dest *d);
/* Queue j (ownership passes); when full, the oldest queued profile is
 * dropped and counted. */
void cp__exporter_push(cp__exporter *e, cp__job *j);
/* Wait until job seq has been exported or dropped, or until deadline
 * (CLOCK_MONOTONIC ns). Returns its export result, CP_EFULL when it was
 * dropped from a full queue, CP_ETIMEDOUT. */
int cp__exporter_wait(cp__exporter *e, uint64_t seq, int64_t deadline_ns);
/* Take / drop a reference: e stays valid until its last holder releases
 * it (the owner's reference is dropped by cp__exporter_stop). */
void cp__exporter_hold(cp__exporter *e);
void cp__exporter_release(cp__exporter *e);
/* Drain until deadline, then abort what is left (counted, logged) and
 * release e. A thread stuck past the deadline is left to finish alone
 * and frees its own state; the caller must not touch e afterwards. */
void cp__exporter_stop(cp__exporter *e, int64_t deadline_ns);
/* The exporters. abort is polled during transfers and retry waits. */
int cp__export_file(const cp__dest *d, const cp__job *j);
int cp__export_http(const cp__dest *d, const cp__job *j, atomic_bool *abort);
/* Retention (export_retention.c): after a profile was written, delete
 * this service's profiles older than max_age_s, then, while the
 * directory's profiles exceed max_bytes, the oldest ones — this
 * service's first, then others' — never the one just written (keep, a
 * base name). Also removes this service's temp files left by a crash. */
void cp__retention_apply(const cp__dest *d, const char *service, const char *keep);
/* In a forked child: the pass's lock, fresh. */
void cp__retention_after_fork(void);
/* An upload to shown that cannot start because libcurl cannot be loaded:
 * counted and logged as a failed upload; returns CP_ENET. */
int cp__http_unavailable(const char *shown, atomic_bool *abort);

/* event.json for j naming its one attachment (caller frees; NULL when out
 * of memory). The file sidecar is the same document. */
char *cp__event_json(const cp__job *j, const char *attachment);

/* mkdir -p; CP_OK when dir exists afterwards (CP_EIO, errno set). */
int cp__mkdirs(const char *dir);
/* Network options of a transfer to url (a CURL *): the proxy — d->proxy
 * (the proxy_url setting) if set, else the environment (HTTPS_PROXY /
 * https_proxy for https, HTTP_PROXY / http_proxy for http, ALL_PROXY),
 * NO_PROXY / no_proxy honoured either way — and d->ca_file. */
void cp__http_net_opts(void *curl_handle, const cp__dest *d, const char *url, const char *unix_socket);
/* curl_easy_perform for an easy handle (a CURL *), on a multi handle of
 * its own polled at most 50 ms at a time, given up (CURLE_ABORTED_BY_CALLBACK)
 * within 50 ms of *abort being raised (abort may be NULL): the calling
 * thread can always be joined. Returns a CURLcode. */
int cp__http_perform(void *curl_handle, atomic_bool *abort);
/* The options every transfer of ours sets (a CURL *): url, timeouts, no
 * signals, user agent, discarded body, abort polled (NULL: never), errbuf
 * (CURL_ERROR_SIZE), http/https only, proxy and CA (cp__http_net_opts). */
void cp__http_base_opts(void *curl_handle, const cp__dest *d, const char *url, const char *unix_socket,
                        int64_t timeout_ms, atomic_bool *abort, char *errbuf);
/* "via proxy http://user:***@h:p (from HTTPS_PROXY)", "direct (NO_PROXY
 * matches)" or "direct", for reports; the password is never shown. */
void cp__http_proxy_describe(const cp__dest *d, const char *url, const char *unix_socket, char *out, size_t n);

/* One multipart part; file NULL = a plain form field. */
typedef struct cp__http_part {
    const char *name, *file, *type;
    const void *data;
    size_t len;
} cp__http_part;

/* One upload request: where, what, and how to authenticate. */
typedef struct cp__http_req {
    const char *url;          /* full URL (with query)                 */
    const char *shown;        /* the URL for messages (no query)       */
    const char *unix_socket;  /* or NULL                               */
    const cp__http_part *parts;
    int nparts;
    void *headers;            /* struct curl_slist *, caller's; or NULL */
    const char *userpwd;      /* basic auth "user:password" or NULL    */
} cp__http_req;

/* POST r as multipart/form-data with d's timeout, proxy and CA, bounded
 * retries (network errors and 5xx, never 4xx) and backoff, abort polled;
 * the outcome is counted and logged (r->shown, never credentials). */
int cp__http_upload(const cp__dest *d, const cp__http_req *r, const cp__job *j, atomic_bool *abort);
/* The Pyroscope exporter (POST {pyroscope_url}/ingest, format=pprof). */
int cp__export_pyroscope(const cp__dest *d, const cp__job *j, atomic_bool *abort);

/* Remember path as the last profile file written (cp_last_profile_path). */
void cp__export_set_last_path(const char *path);
/* In a forked child: fresh lock, no last path. */
void cp__export_after_fork(void);

#endif /* CP_EXPORT_H */
