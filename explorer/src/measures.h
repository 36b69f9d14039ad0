/*
 * measures.h — what the index stores about a decoded profile: per-type
 * totals and the derived measures shown in the list (see API.md).
 */
#ifndef EX_MEASURES_H
#define EX_MEASURES_H

#include <stdint.h>

#include "contprof.h"
#include "json.h"

typedef struct ex_measures {
    char *types_json;          /* [{"type","unit","total"},...], owned  */
    const char *default_type;  /* points into the cp_pprof               */
    int64_t samples;           /* pprof samples                          */
    int64_t sample_count;      /* sum of the "*-samples" count types     */
    double cpu_cores;          /* cpu-time / duration; NAN if absent     */
    double alloc_rate;         /* alloc-space bytes / s; NAN if absent   */
    double live_heap;          /* heap-space bytes; NAN if absent        */
    double threads;            /* distinct "thread id"s; NAN if none     */
} ex_measures;

/* A profile shorter than this (the tail a process flushes at exit, often
 * a few ms) gets no rates: a handful of 10 ms samples over 21 ms would
 * read as 184% CPU. The list marks it as short instead. */
#define EX_MIN_RATE_DURATION_NS 1000000000LL

/* Compute measures of pp over duration_ns (rates need at least
 * EX_MIN_RATE_DURATION_NS; a shorter one gives NAN rates). Returns CP_OK or CP_ENOMEM;
 * release with ex_measures_free. */
int ex_measures_compute(const cp_pprof *pp, int64_t duration_ns, ex_measures *m);
/* Free types_json; m can be computed again afterwards. */
void ex_measures_free(ex_measures *m);

/* Sum of one sample type over all samples (0 if the type is absent). */
double ex_type_total(const cp_pprof *pp, int type_idx);

/* Index of a Datadog-convention sample type (DESIGN.md) in pp, also
 * under the names other pprof writers give it with the same unit:
 * cpu-time = "cpu" (dd-trace Node) or "cpu" of Go; wall-time = "wall";
 * alloc-space = "alloc_space"; heap-space = "inuse_space" or "space"
 * (Node's live heap); heap-live-samples = "inuse_objects" or "objects";
 * alloc-samples = "alloc_objects"; lock-acquire-wait = "delay";
 * lock-acquire = "contentions". -1 when absent. */
int ex_type_find(const cp_pprof *pp, const char *canonical);

/* The type a page shows first: cpu-time, wall-time, alloc-space,
 * heap-space (or an alias, see ex_type_find), else the first one; NULL for a profile without types. */
const char *ex_default_type(const cp_pprof *pp);

/* Write {"labels": [{"key", "distinct", "values": [{"value", "samples"}]}]}:
 * every label key of pp with its top most frequent values (by samples).
 * CP_OK or CP_ENOMEM. */
int ex_labels_write(const cp_pprof *pp, ex_jw *w, size_t top);

/* Distinct values of the "thread id" label (numeric or string). */
int64_t ex_thread_count(const cp_pprof *pp);

#endif /* EX_MEASURES_H */
