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

/* Earliest and latest accepted profile times: 2000-01-01, and a week
 * past the explorer's clock (clients' clocks drift, but not by years). */
#define EX_MIN_TIME_NS 946684800000000000LL
#define EX_MAX_FUTURE_NS (7LL * 86400 * 1000000000)

/* One pprof attachment of an upload. */
typedef struct ex_ingest_part {
    const char *name;       /* attachment name, e.g. "wall.pprof" */
    const uint8_t *data;    /* gzip'd or plain pprof */
    size_t len;
} ex_ingest_part;

typedef struct ex_ingest_req {
    const char *event;      /* event.json text; NULL = none (import without sidecar) */
    size_t event_len;
    const uint8_t *pprof;   /* pprof bytes, gzip'd or plain (when nparts == 0) */
    size_t pprof_len;
    const ex_ingest_part *parts; /* several attachments: merged into one profile */
    size_t nparts;
    const char *source;     /* "intake" or "import:<path>" */
    size_t max_inflated;    /* 0 = EX_DEFAULT_MAX_INFLATED */
    bool fill_host;         /* no host in the upload: use this machine's (as the agent does) */
} ex_ingest_req;

/* Validate, decode (every attachment, within the shared inflate budget of
 * budget.h), merge the attachments, measure and store. Returns an HTTP
 * status: 200 stored (*id, *dup set), 400 bad input, 413 too large, 503
 * inflate budget spent (retry later), 500 storage failure; on any non-200
 * a one-line reason naming the field or attachment is in err and nothing
 * was stored. Accepted uploads are logged at info level. */
int ex_ingest(ex_store *st, const ex_ingest_req *req, int64_t *id, bool *dup, char *err, size_t errlen);

#endif /* EX_INGEST_H */
