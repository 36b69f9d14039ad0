/*
 * query.c — index reads for the API (query.h). Every statement is built
 * from fixed SQL fragments and '?' placeholders.
 */
#include "query.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tags.h"
#include "timeutil.h"

const char *const ex_facet_names[EX_FACET__COUNT] = {"service", "env", "version", "host", "runtime", "language"};

#define ROW_COLS                                                                                        \
    "id,service,env,version,host,runtime,runtime_version,language,family,runtime_id,pid,start_ns,end_ns," \
    "cpu_cores,alloc_rate,live_heap,threads,types,tags"
/* Facet counting reads only the covering index (facets, times, id):
 * one pass over its entries beats row lookups through a facet's own
 * index when a filter selects a third of 100k rows. */
#define EX_FACET_SCAN "INDEXED BY profiles_facet_scan"

/* ...unless a text search matched: then its ids drive the query. */
static const char *facet_scan(const ex_filter *f)
{
    return f->match_ready ? "" : EX_FACET_SCAN;
}

#define DETAIL_COLS ROW_COLS ",default_type,samples,pprof_bytes,received_ns,source"
enum { C_ID, C_SERVICE, C_ENV, C_VERSION, C_HOST, C_RUNTIME, C_RTVER, C_LANG, C_FAMILY, C_RTID, C_PID,
       C_START, C_END, C_CPU, C_ALLOC, C_HEAP, C_THREADS, C_TYPES, C_TAGS, C_DEFTYPE, C_SAMPLES,
       C_BYTES, C_RECEIVED, C_SOURCE };

const char *ex_param_get(const ex_params *ps, const char *key)
{
    for (size_t i = 0; ps && i < ps->n; i++)
        if (strcmp(ps->p[i].key, key) == 0) return ps->p[i].val;
    return NULL;
}

void ex_param_add(ex_params *ps, const char *key, const char *val)
{
    if (ps->n < EX_MAX_PARAMS) ps->p[ps->n++] = (ex_param){key, val ? val : ""};
}

/* "%word%" with LIKE's wildcards escaped by '\'. */
static void like_pattern(char *out, size_t n, const char *w, size_t wl)
{
    size_t o = 0;
    out[o++] = '%';
    for (size_t i = 0; i < wl && o + 3 < n; i++) {
        if (w[i] == '%' || w[i] == '_' || w[i] == '\\') out[o++] = '\\';
        out[o++] = w[i];
    }
    out[o++] = '%';
    out[o] = 0;
}

/* "word" as an FTS5 phrase: inner quotes doubled. */
static void fts_phrase(char *out, size_t n, const char *w, size_t wl)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < wl && o + 3 < n; i++) {
        if (w[i] == '"') out[o++] = '"';
        out[o++] = w[i];
    }
    out[o++] = '"';
    out[o] = 0;
}

/* Words of 3+ characters go through the trigram index (substring,
 * case-insensitive, like LIKE); shorter ones scan with LIKE. */
static void parse_words(const char *q, ex_filter *f)
{
    while (q && *q && f->nwords + f->nphrases < EX_FILTER_MAX_WORDS) {
        q += strspn(q, " \t");
        size_t n = strcspn(q, " \t");
        if (n >= 3 && n < 64) fts_phrase(f->phrases[f->nphrases++], sizeof f->phrases[0], q, n);
        else if (n) like_pattern(f->words[f->nwords++], sizeof f->words[0], q, n);
        q += n;
    }
}

int ex_filter_parse(const ex_params *ps, ex_filter *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < ps->n; i++) {
        for (int k = 0; k < EX_FACET__COUNT; k++)
            if (strcmp(ps->p[i].key, ex_facet_names[k]) == 0 && f->nvals[k] < EX_FILTER_MAX_VALUES)
                f->vals[k][f->nvals[k]++] = ps->p[i].val;
    }
    const char *from = ex_param_get(ps, "from"), *to = ex_param_get(ps, "to");
    if (from && *from && ex_time_parse_param(from, &f->from_ns)) {
        snprintf(err, errlen, "bad 'from': expected epoch milliseconds or an RFC 3339 time");
        return -1;
    }
    if (to && *to && ex_time_parse_param(to, &f->to_ns)) {
        snprintf(err, errlen, "bad 'to': expected epoch milliseconds or an RFC 3339 time");
        return -1;
    }
    f->has_from = from && *from;
    f->has_to = to && *to;
    parse_words(ex_param_get(ps, "q"), f);
    return 0;
}

void ex_sql_init(ex_sql *q, const char *select)
{
    q->nbind = 0;
    cp_buf_init(&q->text, 0);
    ex_buf_printf(&q->text, "%s", select);
}

static void bind_s(ex_sql *q, const char *s)
{
    q->bind[q->nbind].is_int = false;
    q->bind[q->nbind++].s = s;
}

static void bind_i(ex_sql *q, int64_t i)
{
    q->bind[q->nbind].is_int = true;
    q->bind[q->nbind++].i = i;
}

static void clause(ex_sql *q, bool *first, const char *text)
{
    ex_buf_printf(&q->text, "%s%s", *first ? " WHERE " : " AND ", text);
    *first = false;
}

void ex_sql_where(ex_sql *q, const ex_filter *f, int skip)
{
    bool first = true;
    for (int k = 0; k < EX_FACET__COUNT; k++) {
        if (k == skip || f->nvals[k] == 0) continue;
        clause(q, &first, "");
        ex_buf_printf(&q->text, "%s IN (", ex_facet_names[k]);
        for (size_t i = 0; i < f->nvals[k]; i++) {
            ex_buf_printf(&q->text, i ? ",?" : "?");
            bind_s(q, f->vals[k][i]);
        }
        ex_buf_printf(&q->text, ")");
    }
    if (f->has_from) { clause(q, &first, "end_ns >= ?"); bind_i(q, f->from_ns); }
    if (f->has_to) { clause(q, &first, "start_ns <= ?"); bind_i(q, f->to_ns); }
    if (f->match_ready) {
        clause(q, &first, "id IN temp.qmatch");
    } else {
        for (size_t i = 0; i < f->nphrases; i++) {
            clause(q, &first, "id IN (SELECT rowid FROM profiles_fts WHERE profiles_fts MATCH ?)");
            bind_s(q, f->phrases[i]);
        }
    }
    for (size_t i = 0; i < f->nwords; i++) {
        clause(q, &first, EX_STORE_SEARCH_TEXT " LIKE ? ESCAPE '\\'");
        bind_s(q, f->words[i]);
    }
}

sqlite3_stmt *ex_sql_prepare(sqlite3 *db, ex_sql *q, const char *tail)
{
    sqlite3_stmt *s = NULL;
    if (tail) ex_buf_printf(&q->text, "%s", tail);
    if (ex_buf_cstr(&q->text) == CP_OK &&
        sqlite3_prepare_v2(db, (const char *)q->text.data, -1, &s, NULL) == SQLITE_OK) {
        for (size_t i = 0; i < q->nbind; i++) {
            if (q->bind[i].is_int) sqlite3_bind_int64(s, (int)i + 1, q->bind[i].i);
            else sqlite3_bind_text(s, (int)i + 1, q->bind[i].s, -1, SQLITE_TRANSIENT);
        }
    }
    cp_buf_free(&q->text);
    return s;
}

/* ---- rows ------------------------------------------------------------ */

static const char *col_text(sqlite3_stmt *s, int c)
{
    const unsigned char *t = sqlite3_column_text(s, c);
    return t ? (const char *)t : "";
}

static void col_num_or_null(ex_jw *w, const char *key, sqlite3_stmt *s, int c)
{
    ex_jw_key(w, key);
    if (sqlite3_column_type(s, c) == SQLITE_NULL) ex_jw_null(w);
    else ex_jw_num(w, sqlite3_column_double(s, c));
}

static void write_time(ex_jw *w, const char *key, int64_t ns)
{
    char iso[40], kms[32];
    ex_time_format(ns, iso, sizeof iso);
    ex_jw_kstr(w, key, iso);
    snprintf(kms, sizeof kms, "%s_ms", key);
    ex_jw_kint(w, kms, ns / 1000000);
}

/* "types" as a list of names, from the stored [{"type",..}] JSON. */
static void write_type_names(ex_jw *w, const char *types_json)
{
    ex_jval *v = NULL;
    char err[8];
    ex_jw_key(w, "types");
    ex_jw_arr(w);
    if (ex_json_parse(types_json, strlen(types_json), &v, err, sizeof err) == 0 && v->type == EX_J_ARR)
        for (size_t i = 0; i < v->n; i++) ex_jw_str(w, ex_json_str(&v->items[i], "type"));
    ex_json_free(v);
    ex_jw_arr_end(w);
}

static void write_row_fields(ex_jw *w, sqlite3_stmt *s)
{
    static const struct { const char *k; int c; } strs[] = {
        {"service", C_SERVICE}, {"env", C_ENV}, {"version", C_VERSION}, {"host", C_HOST},
        {"runtime", C_RUNTIME}, {"runtime_version", C_RTVER}, {"language", C_LANG},
        {"family", C_FAMILY}, {"runtime_id", C_RTID}};
    ex_jw_kint(w, "id", sqlite3_column_int64(s, C_ID));
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) ex_jw_kstr(w, strs[i].k, col_text(s, strs[i].c));
    ex_jw_kint(w, "pid", sqlite3_column_int64(s, C_PID));
    int64_t start = sqlite3_column_int64(s, C_START), end = sqlite3_column_int64(s, C_END);
    write_time(w, "start", start);
    write_time(w, "end", end);
    ex_jw_kint(w, "duration_ms", (end - start) / 1000000);
    col_num_or_null(w, "cpu_cores", s, C_CPU);
    col_num_or_null(w, "alloc_rate", s, C_ALLOC);
    col_num_or_null(w, "live_heap", s, C_HEAP);
    col_num_or_null(w, "threads", s, C_THREADS);
    write_type_names(w, col_text(s, C_TYPES));
    ex_jw_kstr(w, "tags", col_text(s, C_TAGS));
}

/* ---- list ------------------------------------------------------------ */

static const char *sort_column(const char *sort)
{
    static const char *const map[][2] = {
        {"start", "start_ns"}, {"end", "end_ns"}, {"duration", "(end_ns-start_ns)"}, {"service", "service"},
        {"env", "env"}, {"version", "version"}, {"host", "host"}, {"runtime", "runtime"},
        {"language", "language"}, {"cpu_cores", "cpu_cores"}, {"alloc_rate", "alloc_rate"},
        {"threads", "threads"}, {"id", "id"}, {"live_heap", "live_heap"}};
    for (size_t i = 0; sort && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(sort, map[i][0]) == 0) return map[i][1];
    return sort && *sort ? NULL : "start_ns";
}

static int64_t int_param(const ex_params *ps, const char *key, int64_t dflt, int64_t lo, int64_t hi)
{
    const char *v = ex_param_get(ps, key);
    char *end;
    if (!v || !*v) return dflt;
    long long x = strtoll(v, &end, 10);
    if (*end) return dflt;
    return x < lo ? lo : x > hi ? hi : x;
}

static int64_t count_matching(sqlite3 *db, const ex_filter *f)
{
    ex_sql q;
    int64_t n = 0;
    ex_sql_init(&q, "SELECT count(*) FROM profiles");
    ex_sql_where(&q, f, -1);
    sqlite3_stmt *s = ex_sql_prepare(db, &q, NULL);
    if (s && sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

static void write_rows(sqlite3 *db, const ex_filter *f, const char *col, bool asc, int64_t limit,
                       int64_t offset, ex_jw *w)
{
    char tail[160];
    ex_sql q;
    ex_sql_init(&q, "SELECT " ROW_COLS " FROM profiles");
    ex_sql_where(&q, f, -1);
    snprintf(tail, sizeof tail, " ORDER BY %s %s, id %s LIMIT %lld OFFSET %lld", col, asc ? "ASC" : "DESC",
             asc ? "ASC" : "DESC", (long long)limit, (long long)offset);
    sqlite3_stmt *s = ex_sql_prepare(db, &q, tail);
    ex_jw_key(w, "profiles");
    ex_jw_arr(w);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        ex_jw_obj(w);
        write_row_fields(w, s);
        ex_jw_obj_end(w);
    }
    ex_jw_arr_end(w);
    sqlite3_finalize(s);
}

static void write_facet(sqlite3 *db, const ex_filter *f, int k, ex_jw *w)
{
    char sel[128], tail[128];
    ex_sql q;
    snprintf(sel, sizeof sel, "SELECT %s, count(*) FROM profiles %s", ex_facet_names[k], facet_scan(f));
    snprintf(tail, sizeof tail, " GROUP BY 1 ORDER BY 2 DESC, 1 ASC LIMIT 500");
    ex_sql_init(&q, sel);
    ex_sql_where(&q, f, k);
    sqlite3_stmt *s = ex_sql_prepare(db, &q, tail);
    ex_jw_key(w, ex_facet_names[k]);
    ex_jw_arr(w);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        ex_jw_obj(w);
        ex_jw_kstr(w, "value", col_text(s, 0));
        ex_jw_kint(w, "count", sqlite3_column_int64(s, 1));
        ex_jw_obj_end(w);
    }
    ex_jw_arr_end(w);
    sqlite3_finalize(s);
}

/* Counts of one facet's values, gathered in one pass over the matching
 * rows (open addressing on the value text). */
typedef struct fcount {
    char *value;
    int64_t n;
} fcount;

typedef struct fcounter {
    fcount *slots;
    size_t cap, used;
} fcounter;

static uint64_t str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    while (*s) h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
    return h;
}

static int fc_add(fcounter *c, const char *v)
{
    if ((c->used + 1) * 2 > c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        fcount *ns = calloc(nc, sizeof *ns);
        if (!ns) return -1;
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->slots[i].value) continue;
            size_t h = str_hash(c->slots[i].value) & (nc - 1);
            while (ns[h].value) h = (h + 1) & (nc - 1);
            ns[h] = c->slots[i];
        }
        free(c->slots);
        c->slots = ns;
        c->cap = nc;
    }
    size_t h = str_hash(v) & (c->cap - 1);
    while (c->slots[h].value && strcmp(c->slots[h].value, v) != 0) h = (h + 1) & (c->cap - 1);
    if (!c->slots[h].value) {
        if (!(c->slots[h].value = strdup(v))) return -1;
        c->used++;
    }
    c->slots[h].n++;
    return 0;
}

static int fc_cmp(const void *x, const void *y)
{
    const fcount *a = x, *b = y;
    if (a->n != b->n) return a->n > b->n ? -1 : 1;
    return strcmp(a->value, b->value);
}

static void fc_write(fcounter *c, const char *key, ex_jw *w)
{
    size_t n = 0;
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].value) c->slots[n++] = c->slots[i];
    if (n) qsort(c->slots, n, sizeof *c->slots, fc_cmp);
    ex_jw_key(w, key);
    ex_jw_arr(w);
    for (size_t i = 0; i < n && i < 500; i++) {
        ex_jw_obj(w);
        ex_jw_kstr(w, "value", c->slots[i].value);
        ex_jw_kint(w, "count", c->slots[i].n);
        ex_jw_obj_end(w);
    }
    ex_jw_arr_end(w);
    for (size_t i = 0; i < n; i++) free(c->slots[i].value);
    free(c->slots);
}

/* Facets: one pass over the rows matching every filter counts each facet
 * that has no filter of its own (and the total); a facet with its own
 * filter is counted under the others only (a query of its own). */
/* No filter but (maybe) facet skip's own. */
static bool unfiltered_but(const ex_filter *f, int skip)
{
    for (int k = 0; k < EX_FACET__COUNT; k++)
        if (k != skip && f->nvals[k]) return false;
    return !f->has_from && !f->has_to && !f->nwords && !f->nphrases;
}

static bool unfiltered(const ex_filter *f)
{
    return unfiltered_but(f, -1);
}

/* One facet's counts over all profiles, from the trigger-kept table. */
static void write_stored_facet(sqlite3 *db, int k, ex_jw *w)
{
    sqlite3_stmt *s = NULL;
    ex_jw_key(w, ex_facet_names[k]);
    ex_jw_arr(w);
    if (sqlite3_prepare_v2(db, "SELECT value, n FROM facet_counts WHERE facet = ? ORDER BY n DESC, value ASC LIMIT 500",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, ex_facet_names[k], -1, SQLITE_STATIC);
        while (sqlite3_step(s) == SQLITE_ROW) {
            ex_jw_obj(w);
            ex_jw_kstr(w, "value", col_text(s, 0));
            ex_jw_kint(w, "count", sqlite3_column_int64(s, 1));
            ex_jw_obj_end(w);
        }
    }
    sqlite3_finalize(s);
    ex_jw_arr_end(w);
}

/* Without any filter: the trigger-kept facet_counts table and count(*). */
static int64_t write_all_facets(sqlite3 *db, ex_jw *w)
{
    ex_jw_key(w, "facets");
    ex_jw_obj(w);
    for (int k = 0; k < EX_FACET__COUNT; k++) write_stored_facet(db, k, w);
    ex_jw_obj_end(w);
    ex_filter none;
    memset(&none, 0, sizeof none);
    return count_matching(db, &none);
}

static int64_t write_facets(sqlite3 *db, const ex_filter *f, ex_jw *w)
{
    if (unfiltered(f)) return write_all_facets(db, w);
    fcounter c[EX_FACET__COUNT];
    int64_t total = 0;
    memset(c, 0, sizeof c);
    ex_sql q;
    char sel[160];
    snprintf(sel, sizeof sel, "SELECT service, env, version, host, runtime, language FROM profiles %s", facet_scan(f));
    ex_sql_init(&q, sel);
    ex_sql_where(&q, f, -1);
    sqlite3_stmt *s = ex_sql_prepare(db, &q, NULL);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        total++;
        for (int k = 0; k < EX_FACET__COUNT; k++)
            if (!f->nvals[k]) fc_add(&c[k], col_text(s, k));
    }
    sqlite3_finalize(s);
    ex_jw_key(w, "facets");
    ex_jw_obj(w);
    for (int k = 0; k < EX_FACET__COUNT; k++) {
        if (f->nvals[k] && unfiltered_but(f, k)) write_stored_facet(db, k, w); /* its own filter only */
        else if (f->nvals[k]) write_facet(db, f, k, w);
        else fc_write(&c[k], ex_facet_names[k], w);
    }
    ex_jw_obj_end(w);
    return total;
}

/* The free-text words of 3+ characters are looked up once per request in
 * the trigram index; the ids land in temp.qmatch, which every query of
 * the request then joins. Caller holds the store lock. */
static void prepare_match(sqlite3 *db, ex_filter *f)
{
    if (!f->nphrases) return;
    sqlite3_exec(db, "CREATE TEMP TABLE IF NOT EXISTS qmatch(id INTEGER PRIMARY KEY); DELETE FROM temp.qmatch;",
                 NULL, NULL, NULL);
    ex_sql q;
    ex_sql_init(&q, "INSERT INTO temp.qmatch SELECT rowid FROM profiles_fts WHERE profiles_fts MATCH ?");
    q.bind[q.nbind].is_int = false;
    q.bind[q.nbind++].s = f->phrases[0];
    for (size_t i = 1; i < f->nphrases; i++) {
        ex_buf_printf(&q.text, " INTERSECT SELECT rowid FROM profiles_fts WHERE profiles_fts MATCH ?");
        q.bind[q.nbind].is_int = false;
        q.bind[q.nbind++].s = f->phrases[i];
    }
    sqlite3_stmt *s = ex_sql_prepare(db, &q, NULL);
    f->match_ready = s && sqlite3_step(s) == SQLITE_DONE;
    sqlite3_finalize(s);
}

int ex_query_list(ex_store *st, const ex_params *ps, ex_jw *w, char *err, size_t errlen)
{
    ex_filter f;
    if (ex_filter_parse(ps, &f, err, errlen)) return 400;
    const char *col = sort_column(ex_param_get(ps, "sort"));
    if (!col) { snprintf(err, errlen, "unknown sort column"); return 400; }
    const char *order = ex_param_get(ps, "order");
    bool asc = order && strcmp(order, "asc") == 0;
    int64_t limit = int_param(ps, "limit", 100, 1, 1000), offset = int_param(ps, "offset", 0, 0, INT32_MAX);
    sqlite3 *db = ex_store_lock(st);
    prepare_match(db, &f);
    ex_jw_obj(w);
    int64_t total = write_facets(db, &f, w);
    ex_jw_kint(w, "total", total);
    ex_jw_kint(w, "offset", offset);
    ex_jw_kint(w, "limit", limit);
    write_rows(db, &f, col, asc, limit, offset, w);
    ex_jw_obj_end(w);
    ex_store_unlock(st);
    return 200;
}

/* ---- detail ---------------------------------------------------------- */

static void write_tag_map(ex_jw *w, const char *tags)
{
    ex_tag_iter it;
    const char *k, *v;
    size_t kn, vn;
    char key[128];
    ex_jw_key(w, "tag_map");
    ex_jw_obj(w);
    ex_tag_iter_init(&it, tags);
    while (ex_tag_next(&it, &k, &kn, &v, &vn)) {
        snprintf(key, sizeof key, "%.*s", (int)kn, k);
        ex_jw_key(w, key);
        ex_jw_strn(w, v, vn);
    }
    ex_jw_obj_end(w);
}

static void write_detail(ex_jw *w, sqlite3_stmt *s)
{
    ex_jw_obj(w);
    write_row_fields(w, s);
    write_tag_map(w, col_text(s, C_TAGS));
    ex_jw_key(w, "type_totals");
    const char *types = col_text(s, C_TYPES);
    ex_jw_raw(w, types, strlen(types));
    ex_jw_kstr(w, "default_type", col_text(s, C_DEFTYPE));
    ex_jw_kint(w, "samples", sqlite3_column_int64(s, C_SAMPLES));
    ex_jw_kint(w, "pprof_bytes", sqlite3_column_int64(s, C_BYTES));
    ex_jw_kint(w, "received_ms", sqlite3_column_int64(s, C_RECEIVED) / 1000000);
    ex_jw_kstr(w, "source", col_text(s, C_SOURCE));
    ex_jw_obj_end(w);
}

int ex_query_detail(ex_store *st, int64_t id, ex_jw *w)
{
    int status = 404;
    sqlite3_stmt *s;
    sqlite3 *db = ex_store_lock(st);
    if (sqlite3_prepare_v2(db, "SELECT " DETAIL_COLS " FROM profiles WHERE id=?", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, id);
        if (sqlite3_step(s) == SQLITE_ROW) {
            write_detail(w, s);
            status = 200;
        }
        sqlite3_finalize(s);
    }
    ex_store_unlock(st);
    return status;
}

char *ex_query_text(ex_store *st, int64_t id, const char *column)
{
    static const char *const allowed[] = {"info", "tags", "service", "env", "default_type", "types", "runtime_id"};
    char sql[96];
    char *out = NULL;
    sqlite3_stmt *s;
    size_t i = 0;
    while (i < sizeof allowed / sizeof allowed[0] && strcmp(allowed[i], column) != 0) i++;
    if (i == sizeof allowed / sizeof allowed[0]) return NULL;
    snprintf(sql, sizeof sql, "SELECT %s FROM profiles WHERE id=?", allowed[i]);
    sqlite3 *db = ex_store_lock(st);
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, id);
        if (sqlite3_step(s) == SQLITE_ROW) out = strdup(col_text(s, 0));
        sqlite3_finalize(s);
    }
    ex_store_unlock(st);
    return out;
}

int ex_query_times(ex_store *st, int64_t id, int64_t *start_ns, int64_t *end_ns)
{
    int rc = -1;
    sqlite3_stmt *s;
    sqlite3 *db = ex_store_lock(st);
    if (sqlite3_prepare_v2(db, "SELECT start_ns,end_ns FROM profiles WHERE id=?", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, id);
        if (sqlite3_step(s) == SQLITE_ROW) {
            *start_ns = sqlite3_column_int64(s, 0);
            *end_ns = sqlite3_column_int64(s, 1);
            rc = 0;
        }
        sqlite3_finalize(s);
    }
    ex_store_unlock(st);
    return rc;
}

int ex_query_ids(ex_store *st, const ex_filter *f, size_t max, int64_t **ids, size_t *n, size_t *matched)
{
    ex_sql q;
    char tail[96];
    *n = 0;
    *ids = calloc(max ? max : 1, sizeof **ids);
    if (!*ids) return CP_ENOMEM;
    sqlite3 *db = ex_store_lock(st);
    *matched = (size_t)count_matching(db, f);
    ex_sql_init(&q, "SELECT id FROM profiles");
    ex_sql_where(&q, f, -1);
    snprintf(tail, sizeof tail, " ORDER BY start_ns DESC, id DESC LIMIT %zu", max);
    sqlite3_stmt *s = ex_sql_prepare(db, &q, tail);
    while (s && *n < max && sqlite3_step(s) == SQLITE_ROW) (*ids)[(*n)++] = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    ex_store_unlock(st);
    return CP_OK;
}
