/*
 * aggjob.h — aggregation over many profiles as background jobs with
 * progress, and a small cache of their results.
 *
 * A request names a job by a key (the query, and the store's generation
 * so new or deleted profiles make a new key). The first request starts
 * the merge on a thread of its own; every request waits a bounded time
 * for it and gets either the finished JSON body or the progress so far.
 * Finished bodies stay cached (the newest EX_AGG_JOBS).
 */
#ifndef EX_AGGJOB_H
#define EX_AGGJOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contprof.h"

#define EX_AGG_JOBS 8

/* The merge itself: called on the job's thread; must add each id's
 * profile in turn and call progress(ctx, done) after each. Writes the
 * finished JSON body to out; returns an HTTP status (200 or 500). */
typedef int (*ex_agg_fn)(void *arg, const int64_t *ids, size_t n, void (*progress)(void *job, size_t done),
                         void *job, cp_buf *out);

typedef struct ex_agg_result {
    bool done;
    int status;        /* when done: the merge's status */
    size_t progress;   /* profiles merged so far */
    size_t total;      /* profiles to merge */
    cp_buf body;       /* when done: a copy of the body (caller frees) */
} ex_agg_result;

/* Find the job for key, or start it with ids (copied; taken over on
 * start) and fn(arg) (arg is freed with free() when the job ends). Waits
 * up to wait_ms for it to finish. CP_OK with *res filled, or CP_ENOMEM. */
int ex_agg_run(const char *key, const int64_t *ids, size_t n, ex_agg_fn fn, void *arg, int wait_ms,
               ex_agg_result *res);

#endif /* EX_AGGJOB_H */
