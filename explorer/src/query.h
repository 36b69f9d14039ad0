/*
 * query.h — reading the index: filters (facets, time range, free text),
 * the profile list with facet counts, one profile's detail, and id
 * selections for aggregation and metrics. SQL is built with placeholders
 * only; user text never becomes SQL.
 */
#ifndef EX_QUERY_H
#define EX_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "params.h"
#include "store.h"

typedef struct sqlite3_stmt sqlite3_stmt;

enum { EX_FACET_SERVICE, EX_FACET_ENV, EX_FACET_VERSION, EX_FACET_HOST, EX_FACET_RUNTIME,
       EX_FACET_LANGUAGE, EX_FACET__COUNT };
extern const char *const ex_facet_names[EX_FACET__COUNT];

#define EX_FILTER_MAX_VALUES 16
#define EX_FILTER_MAX_WORDS 16

typedef struct ex_filter {
    const char *vals[EX_FACET__COUNT][EX_FILTER_MAX_VALUES]; /* borrowed from params */
    size_t nvals[EX_FACET__COUNT];
    bool has_from, has_to;
    int64_t from_ns, to_ns;
    char words[EX_FILTER_MAX_WORDS][72]; /* "%word%" LIKE patterns (words under 3 characters) */
    size_t nwords;
    char phrases[EX_FILTER_MAX_WORDS][144]; /* "word" FTS5 phrases (3+ characters: trigram index) */
    size_t nphrases;
    bool match_ready; /* the phrases' ids are in temp.qmatch (this request) */
} ex_filter;

/* Filter from request parameters. -1 with a reason for a bad from/to. */
int ex_filter_parse(const ex_params *ps, ex_filter *f, char *err, size_t errlen);

/* A WHERE clause with its bindings. */
typedef struct ex_sql {
    cp_buf text;
    size_t nbind;
    struct { bool is_int; const char *s; int64_t i; } bind[EX_FACET__COUNT * EX_FILTER_MAX_VALUES + EX_FILTER_MAX_WORDS + 8];
} ex_sql;

/* Start a statement with fixed SQL text (never user input); q owns its
 * text until ex_sql_prepare. */
void ex_sql_init(ex_sql *q, const char *select);
/* Append " WHERE ..." for f, leaving out facet skip (-1 = none). */
void ex_sql_where(ex_sql *q, const ex_filter *f, int skip);
/* Prepare q's text (plus tail) and bind; NULL on failure. Caller holds
 * the store lock and finalizes. Frees q's text. */
sqlite3_stmt *ex_sql_prepare(sqlite3 *db, ex_sql *q, const char *tail);

/* GET /api/profiles: writes the whole response. Returns HTTP status. */
int ex_query_list(ex_store *st, const ex_params *ps, ex_jw *w, char *err, size_t errlen);

/* GET /api/profiles/{id}: 200 or 404. */
int ex_query_detail(ex_store *st, int64_t id, ex_jw *w);

/* Raw JSON of a text column of one profile ("info", "tags", "service",
 * "default_type"...). Caller frees; NULL if no such profile. */
char *ex_query_text(ex_store *st, int64_t id, const char *column);

/* Start/end of one profile; -1 if absent. */
int ex_query_times(ex_store *st, int64_t id, int64_t *start_ns, int64_t *end_ns);

/* Ids of profiles matching f, newest first, at most max (*matched =
 * how many matched in all). Caller frees *ids. */
int ex_query_ids(ex_store *st, const ex_filter *f, size_t max, int64_t **ids, size_t *n, size_t *matched);

#endif /* EX_QUERY_H */
