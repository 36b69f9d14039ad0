/*
 * ingest.h — turn one uploaded or imported profile (event JSON + pprof
 * bytes) into an indexed, stored profile. Shared by the HTTP intake and
 * the directory importer so both apply the same checks.
 */
#ifndef EX_INGEST_H
#define EX_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Default cap on a pprof's inflated size (zip-bomb guard). */
#define EX_DEFAULT_MAX_INFLATED (256u * 1024 * 1024)

typedef struct ex_ingest_req {
    const char *event;      /* event.json text; NULL = none (import without sidecar) */
    size_t event_len;
    const uint8_t *pprof;   /* pprof bytes, gzip'd or plain */
    size_t pprof_len;
    const char *source;     /* "intake" or "import:<path>" */
    size_t max_inflated;    /* 0 = EX_DEFAULT_MAX_INFLATED */
} ex_ingest_req;

/* Validate, decode, measure and store. Returns an HTTP status: 200 stored
 * (*id, *dup set), 400 bad input, 413 too large, 500 storage failure; on
 * any non-200 a one-line reason is in err and nothing was stored. */
int ex_ingest(ex_store *st, const ex_ingest_req *req, int64_t *id, bool *dup, char *err, size_t errlen);

#endif /* EX_INGEST_H */
