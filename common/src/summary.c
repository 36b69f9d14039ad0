/*
 * summary.c — the run-wide top-functions summary (see summary.h).
 *
 * One process-wide table, protected by g_lock, maps (function name, file)
 * of leaf frames to their self values per CP_V_* column. Like a profile
 * it has a hard cap; functions beyond it are summed under "[overflow]" so
 * totals stay true.
 */
#include "summary.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "profile_internal.h"

typedef struct sum_func {
    char *name, *file; /* owned */
    int64_t v[CP_V__COUNT];
} sum_func;

typedef struct name_key {
    const char *name, *file;
} name_key;

/* All protected by g_lock. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static sum_func *g_funcs;
static size_t g_n, g_cap;
static cp__htab g_index;
static size_t g_max = 65536;
static long g_overflow = -1;

/* In a forked child: another parent thread may have held g_lock (e.g. in
 * cp_summary_top) at fork time and is gone. Merges cannot be half-done here
 * (the collector's atfork handlers keep fork out of rotation), so the table
 * is consistent and only the lock needs renewing. No pthread_atfork lock of
 * our own: taken before the collector's rotation lock it would invert the
 * rotation -> summary lock order and deadlock fork against a merge. */
void cp__summary_after_fork(void) { pthread_mutex_init(&g_lock, NULL); }

static const struct {
    const char *type, *unit;
} g_columns[CP_V__COUNT] = {
    {"cpu-time", "nanoseconds"},      {"cpu-samples", "count"},
    {"wall-time", "nanoseconds"},     {"wall-samples", "count"},
    {"alloc-space", "bytes"},         {"alloc-samples", "count"},
    {"heap-space", "bytes"},          {"heap-live-samples", "count"},
    {"lock-acquire-wait", "nanoseconds"}, {"lock-acquire", "count"},
    {"exception-samples", "count"},
    {"lock-release-hold", "nanoseconds"}, {"lock-release", "count"},
};

static bool func_eq(const void *ctx, uint32_t id, const void *key)
{
    const name_key *k = key;
    (void)ctx;
    return strcmp(g_funcs[id].name, k->name) == 0 && strcmp(g_funcs[id].file, k->file) == 0;
}

static uint64_t key_hash(const name_key *k)
{
    return cp__hash_bytes(k->file, strlen(k->file), cp__hash_bytes(k->name, strlen(k->name), 0));
}

/* Append a zeroed entry for k (no cap check). Caller holds g_lock. */
static int append_func(const name_key *k, uint64_t h, uint32_t *id)
{
    if (cp__grow_array((void **)&g_funcs, &g_cap, g_n + 1, sizeof *g_funcs) != CP_OK)
        return CP_ENOMEM;
    sum_func *f = &g_funcs[g_n];
    memset(f, 0, sizeof *f);
    f->name = cp__strdup(k->name);
    f->file = cp__strdup(k->file);
    if (!f->name || !f->file || cp__htab_insert(&g_index, h, (uint32_t)g_n) != CP_OK) {
        cp__free(f->name);
        cp__free(f->file);
        return CP_ENOMEM;
    }
    *id = (uint32_t)g_n++;
    return CP_OK;
}

/* Entry for (name, file), created if needed; past the cap (one entry kept
 * for it) the "[overflow]" entry. Caller holds g_lock. */
static int find_or_add(const name_key *k, uint32_t *id)
{
    uint64_t h = key_hash(k);
    *id = cp__htab_find(&g_index, h, func_eq, NULL, k);
    if (*id != CP__HTAB_NONE)
        return CP_OK;
    if (g_n + (g_overflow < 0 ? 1 : 0) < g_max)
        return append_func(k, h, id);
    if (g_overflow >= 0) {
        *id = (uint32_t)g_overflow;
        return CP_OK;
    }
    name_key ok = {"[overflow]", ""};
    int rc = append_func(&ok, key_hash(&ok), id);
    if (rc == CP_OK)
        g_overflow = (long)*id;
    return rc;
}

static void add_sample(const cp_profile *p, const cp__psample *s, uint32_t id, const int *map,
                       size_t ncols)
{
    for (size_t c = 0; c < ncols; c++) {
        int vi = map[c];
        if (vi < 0 || (size_t)vi >= p->ntypes)
            continue;
        int64_t *dst = &g_funcs[id].v[c];
        if (__builtin_add_overflow(*dst, s->values[vi], dst))
            *dst = s->values[vi] < 0 ? INT64_MIN : INT64_MAX;
    }
}

/* Summary id for profile function fi, through the per-merge cache. */
static int summary_id(const cp_profile *p, uint32_t fi, uint32_t *cache, uint32_t *id)
{
    if (cache && cache[fi] != CP__HTAB_NONE) {
        *id = cache[fi];
        return CP_OK;
    }
    const cp__pfunc *f = &p->funcs[fi];
    name_key k = {p->st.strs[f->name].s, p->st.strs[f->filename].s};
    int rc = find_or_add(&k, id);
    if (rc == CP_OK && cache)
        cache[fi] = *id;
    return rc;
}

int cp__summary_merge(const cp_profile *p, const int *value_index_of_column, size_t ncols)
{
    if (!p || !value_index_of_column || ncols > CP_V__COUNT)
        return CP_EINVAL;
    /* Many samples share a leaf function: cache its summary id. Without
     * the cache (no memory) every sample is looked up by name. */
    uint32_t *cache = cp__malloc((p->nfuncs ? p->nfuncs : 1) * sizeof *cache);
    if (cache)
        memset(cache, 0xff, (p->nfuncs ? p->nfuncs : 1) * sizeof *cache);
    int result = CP_OK;
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < p->nsamples; i++) {
        const cp__psample *s = p->samples[i];
        uint32_t id;
        if (s->nlocs == 0)
            continue;
        uint32_t fi = p->locs[cp__sample_locs(p, s)[0]].func;
        if (summary_id(p, fi, cache, &id) != CP_OK) {
            result = CP_ENOMEM;
            continue;
        }
        add_sample(p, s, id, value_index_of_column, ncols);
    }
    pthread_mutex_unlock(&g_lock);
    cp__free(cache);
    return result;
}

void cp__summary_reset(void)
{
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_n; i++) {
        cp__free(g_funcs[i].name);
        cp__free(g_funcs[i].file);
    }
    cp__free(g_funcs);
    g_funcs = NULL;
    g_n = g_cap = 0;
    cp__htab_free(&g_index);
    g_overflow = -1;
    pthread_mutex_unlock(&g_lock);
}

void cp__summary_set_max_functions(size_t n)
{
    pthread_mutex_lock(&g_lock);
    g_max = n ? n : 1;
    pthread_mutex_unlock(&g_lock);
}

/* A value as people read it, by unit: "1.23 s", "4.0 MiB", "17". */
static void fmt_value(char *out, size_t n, int64_t v, const char *unit)
{
    double a = v < 0 ? -(double)v : (double)v;
    if (strcmp(unit, "nanoseconds") == 0) {
        if (a >= 1e9)
            snprintf(out, n, "%.2f s", (double)v / 1e9);
        else if (a >= 1e6)
            snprintf(out, n, "%.1f ms", (double)v / 1e6);
        else if (a >= 1e3)
            snprintf(out, n, "%.1f us", (double)v / 1e3);
        else
            snprintf(out, n, "%lld ns", (long long)v);
    } else if (strcmp(unit, "bytes") == 0) {
        if (a >= 1073741824.0)
            snprintf(out, n, "%.2f GiB", (double)v / 1073741824.0);
        else if (a >= 1048576.0)
            snprintf(out, n, "%.1f MiB", (double)v / 1048576.0);
        else if (a >= 1024.0)
            snprintf(out, n, "%.1f KiB", (double)v / 1024.0);
        else
            snprintf(out, n, "%lld B", (long long)v);
    } else {
        snprintf(out, n, "%lld", (long long)v);
    }
}

static int appendf(cp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int appendf(cp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CP_EINVAL;
    int rc = cp__buf_reserve(b, (size_t)n + 1);
    if (rc != CP_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CP_OK;
}

typedef struct ranked {
    int64_t v;
    size_t idx;
} ranked;

static int ranked_cmp(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return strcmp(g_funcs[x->idx].name, g_funcs[y->idx].name);
}

/* Rows of entries with a non-zero value in column vi, largest first;
 * *total receives the column's sum. Caller holds g_lock and frees. */
static ranked *rank(int vi, size_t *nrows, int64_t *total)
{
    ranked *r = cp__malloc((g_n ? g_n : 1) * sizeof *r);
    *nrows = 0;
    *total = 0;
    if (!r)
        return NULL;
    for (size_t i = 0; i < g_n; i++) {
        int64_t v = g_funcs[i].v[vi];
        if (v == 0)
            continue;
        r[(*nrows)++] = (ranked){v, i};
        if (__builtin_add_overflow(*total, v, total))
            *total = INT64_MAX;
    }
    qsort(r, *nrows, sizeof *r, ranked_cmp);
    return r;
}

static int format_rows(cp_buf *b, int vi, const ranked *r, size_t nrows, int64_t total, int n)
{
    const char *unit = g_columns[vi].unit;
    char tot[32], val[32];
    fmt_value(tot, sizeof tot, total, unit);
    size_t shown = nrows < (size_t)n ? nrows : (size_t)n;
    int rc = appendf(b, "top %zu functions by self %s over the run (total %s, %zu functions)\n",
                     shown, g_columns[vi].type, tot, nrows);
    if (rc == CP_OK)
        rc = appendf(b, "%12s  %6s  %s\n", "self", "self%", "function");
    for (size_t i = 0; rc == CP_OK && i < shown; i++) {
        const sum_func *f = &g_funcs[r[i].idx];
        fmt_value(val, sizeof val, r[i].v, unit);
        double pct = total ? 100.0 * (double)r[i].v / (double)total : 0.0;
        rc = appendf(b, "%12s  %5.1f%%  %s%s%s%s\n", val, pct, f->name, f->file[0] ? " (" : "",
                     f->file, f->file[0] ? ")" : "");
    }
    return rc;
}

/* See contprof.h. Returns NULL for a bad vi or n <= 0, or out of memory;
 * otherwise a NUL-terminated table the caller frees with free(). When
 * nothing was recorded for the column the text says so. */
char *cp_summary_top(int vi, int n)
{
    if (vi < 0 || vi >= CP_V__COUNT || n <= 0)
        return NULL;
    cp_buf b;
    cp_buf_init(&b, 0);
    size_t nrows;
    int64_t total;
    pthread_mutex_lock(&g_lock);
    ranked *r = rank(vi, &nrows, &total);
    int rc = !r ? CP_ENOMEM
             : nrows ? format_rows(&b, vi, r, nrows, total, n)
                     : appendf(&b, "no %s recorded over the run\n", g_columns[vi].type);
    pthread_mutex_unlock(&g_lock);
    cp__free(r);
    if (rc != CP_OK) {
        cp_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}
