/*
 * metrics.h — internal side of the self-metrics (public part: contprof.h
 * section 5): counters bumped by the collector and exporters, the
 * per-profile cost accounting, and their JSON form.
 */
#ifndef CP_METRICS_H
#define CP_METRICS_H

#include <stdint.h>

#include "contprof.h"
#include "json.h"

/* Lock-free counter bumps. */
void cp__metrics_add_overflowed(uint64_t n);
void cp__metrics_add_exported(void);
void cp__metrics_add_profiles_dropped(uint64_t n);
void cp__metrics_add_upload_failure(void);
void cp__metrics_add_upload_retry(void);

/* Remember the last export/upload error (one line, no API key). */
void cp__metrics_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Start a cost-accounting span (cp_start) / close the current one and
 * start the next (every profile): fills the last_* fields from the CPU
 * clocks of the process and of the registered profiler threads. */
void cp__metrics_span_begin(void);
void cp__metrics_span_end(void);

/* Write the metrics as the members of a JSON object named key. */
void cp__metrics_json(cp__json *j, const char *key, const cp_metrics *m);

/* In a forked child: fresh locks, no registered threads, zero counters. */
void cp__metrics_after_fork(void);

#endif /* CP_METRICS_H */
