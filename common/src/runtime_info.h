/*
 * runtime_info.h — internal side of runtime info: building the whole JSON
 * object (core keys + front-end keys) for a finished profile.
 */
#ifndef CP_RUNTIME_INFO_H
#define CP_RUNTIME_INFO_H

#include "contprof.h"

/* The runtime info object as JSON text: host, os, kernel, arch, cpu_count,
 * pid, process_start_time, profiler_version, settings, metrics (from m),
 * then every key set by the front end (a front-end key replaces a core key
 * of the same name). Caller frees; NULL when out of memory. */
char *cp__runtime_info_json(const cp_metrics *m);

/* A copy of the JSON value of front-end key, NULL if unset. Caller frees. */
char *cp__runtime_info_get(const char *key);

/* Forget front-end keys (tests). */
void cp__runtime_info_clear(void);

/* In a forked child: a fresh lock (keys are kept). */
void cp__runtime_info_after_fork(void);

#endif /* CP_RUNTIME_INFO_H */
