/*
 * metrics.h — time series over the profiles of one service (and env):
 * CPU cores, allocation rate, live heap, threads and the profiler's own
 * metrics, one point per profile (API.md "Metrics").
 */
#ifndef EX_METRICS_H
#define EX_METRICS_H

#include "json.h"
#include "params.h"
#include "store.h"

/* GET /api/metrics. Writes the response; returns the HTTP status (400
 * with a reason in err when service is missing or from/to are bad). */
int ex_metrics_series(ex_store *st, const ex_params *ps, ex_jw *w, char *err, size_t errlen);

#endif /* EX_METRICS_H */
