/*
 * measures.h — what the index stores about a decoded profile: per-type
 * totals and the derived measures shown in the list (see API.md).
 */
#ifndef EX_MEASURES_H
#define EX_MEASURES_H

#include <stdint.h>

#include "contprof.h"

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

/* Compute measures of pp over duration_ns (must be > 0 for rates; a
 * non-positive duration gives NAN rates). Returns CP_OK or CP_ENOMEM;
 * release with ex_measures_free. */
int ex_measures_compute(const cp_pprof *pp, int64_t duration_ns, ex_measures *m);
/* Free types_json; m can be computed again afterwards. */
void ex_measures_free(ex_measures *m);

/* Sum of one sample type over all samples (0 if the type is absent). */
double ex_type_total(const cp_pprof *pp, int type_idx);

/* The type a page shows first: cpu-time, wall-time, alloc-space,
 * heap-space, else the first one; NULL for a profile without types. */
const char *ex_default_type(const cp_pprof *pp);

/* Distinct values of the "thread id" label (numeric or string). */
int64_t ex_thread_count(const cp_pprof *pp);

#endif /* EX_MEASURES_H */
