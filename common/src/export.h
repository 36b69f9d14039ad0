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
    int64_t timeout_ms;
    int retries;
    unsigned queue_cap;
} cp__dest;

/* Destinations from the settings: files when output_dir is set or when
 * nothing else is; the agent when agent_url resolves; else agentless when
 * api_key is set. */
void cp__dest_from_config(const cp_config *c, cp__dest *d);
/* One line per destination (caller frees). */
char *cp__dest_describe(const cp__dest *d);

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
/* curl_global_init once per process (cp_start calls it). */
void cp__http_global_init(void);

/* event.json for j naming its one attachment (caller frees; NULL when out
 * of memory). The file sidecar is the same document. */
char *cp__event_json(const cp__job *j, const char *attachment);

/* Remember path as the last profile file written (cp_last_profile_path). */
void cp__export_set_last_path(const char *path);
/* In a forked child: fresh lock, no last path. */
void cp__export_after_fork(void);

#endif /* CP_EXPORT_H */
