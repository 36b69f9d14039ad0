/*
 * summary.h — the run-wide "top functions" summary (internal interface).
 *
 * The collector merges every finished profile into one process-wide table
 * of functions and their self values per value column (CP_V_*); a front end
 * prints cp_summary_top() at exit. The table is capped like a profile:
 * functions past the cap are summed under "[overflow]".
 */
#ifndef CP_SUMMARY_H
#define CP_SUMMARY_H

#include <stddef.h>

#include "contprof.h"

/* Add the self values of p (the leaf frame of each sample) to the summary.
 * value_index_of_column[c], for c in 0..ncols-1 (ncols <= CP_V__COUNT), is
 * the index in p's sample types holding column c, or -1 when p lacks it.
 * Thread-safe (takes the summary's mutex). p stays owned by the caller and
 * must not be modified during the call. Returns CP_OK, or CP_ENOMEM when
 * part of p could not be recorded (that part is counted under
 * "[overflow]" if possible). */
int cp__summary_merge(const cp_profile *p, const int *value_index_of_column, size_t ncols);

/* Forget everything (cp_start calls this so a summary covers one run; tests
 * call it to release memory). Thread-safe. */
void cp__summary_reset(void);

/* Cap on distinct functions in the summary (default 65536; tests lower
 * it). Applies to functions added after the call. */
void cp__summary_set_max_functions(size_t n);

/* In a forked child, before any other summary call: renew the lock that a
 * vanished parent thread may have held. */
void cp__summary_after_fork(void);

#endif /* CP_SUMMARY_H */
