/*
 * flame.c — call tree + function table from decoded pprof (see flame.h).
 *
 * Frames are interned as keys (name, file) in an open-addressing table;
 * tree nodes are found by (parent, key) in a second one. Everything is
 * arrays with indices, so a tree of a million nodes is a few allocations.
 */
#include "flame.h"

#include <inttypes.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLAME_MAX_DEPTH 16384
#define FLAME_DEFAULT_MAX_NODES 2000000

typedef struct fnode {
    uint32_t key, parent, child, sibling; /* child/sibling: index+1, 0 = none */
    double self[2], total[2];
} fnode;

struct ex_flame {
    ex_frow *rows;       /* one per key; key 0 is the root            */
    uint64_t *stamp;     /* per key: last sample that counted total   */
    size_t nkeys, capkeys;
    uint32_t *khash;     /* slots hold key index + 1                   */
    size_t khcap;
    fnode *nodes;
    size_t nnodes, capnodes, max_nodes;
    uint32_t *nhash;     /* slots hold node index + 1                  */
    size_t nhcap;
    uint64_t seq;
    uint32_t limit_node; /* index of "[node limit reached]", 0 = none  */
};

static uint64_t hash_str(const char *s, uint64_t h)
{
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return (h ^ 0xff) * 0x100000001b3ULL;
}

static uint64_t hash_key(const char *name, const char *file)
{
    return hash_str(file, hash_str(name, 0xcbf29ce484222325ULL));
}

static uint64_t hash_node(uint32_t parent, uint32_t key)
{
    uint64_t x = ((uint64_t)parent << 32 | key) * 0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 29);
}

static int rehash_keys(ex_flame *f)
{
    size_t cap = f->khcap ? f->khcap * 2 : 1024;
    uint32_t *h = calloc(cap, sizeof *h);
    if (!h) return CP_ENOMEM;
    for (size_t i = 0; i < f->nkeys; i++) {
        size_t s = hash_key(f->rows[i].name, f->rows[i].file) & (cap - 1);
        while (h[s]) s = (s + 1) & (cap - 1);
        h[s] = (uint32_t)i + 1;
    }
    free(f->khash);
    f->khash = h;
    f->khcap = cap;
    return CP_OK;
}

static int grow_keys(ex_flame *f)
{
    size_t cap = f->capkeys ? f->capkeys * 2 : 256;
    ex_frow *r = realloc(f->rows, cap * sizeof *r);
    if (!r) return CP_ENOMEM;
    f->rows = r;
    uint64_t *st = realloc(f->stamp, cap * sizeof *st);
    if (!st) return CP_ENOMEM;
    f->stamp = st;
    f->capkeys = cap;
    return CP_OK;
}

/* Index of key (name, file), created if new; -1 when out of memory. */
static int64_t intern(ex_flame *f, const char *name, const char *file)
{
    if ((f->nkeys + 1) * 2 > f->khcap && rehash_keys(f)) return -1;
    size_t s = hash_key(name, file) & (f->khcap - 1);
    for (; f->khash[s]; s = (s + 1) & (f->khcap - 1)) {
        const ex_frow *r = &f->rows[f->khash[s] - 1];
        if (strcmp(r->name, name) == 0 && strcmp(r->file, file) == 0) return f->khash[s] - 1;
    }
    if (f->nkeys == f->capkeys && grow_keys(f)) return -1;
    ex_frow *r = &f->rows[f->nkeys];
    memset(r, 0, sizeof *r);
    r->name = strdup(name);
    r->file = strdup(file);
    r->kind = "";
    if (!r->name || !r->file) {
        free((char *)r->name);
        free((char *)r->file);
        return -1;
    }
    f->stamp[f->nkeys] = 0;
    f->khash[s] = (uint32_t)++f->nkeys;
    return (int64_t)f->nkeys - 1;
}

static int rehash_nodes(ex_flame *f)
{
    size_t cap = f->nhcap ? f->nhcap * 2 : 4096;
    uint32_t *h = calloc(cap, sizeof *h);
    if (!h) return CP_ENOMEM;
    for (size_t i = 1; i < f->nnodes; i++) {
        size_t s = hash_node(f->nodes[i].parent, f->nodes[i].key) & (cap - 1);
        while (h[s]) s = (s + 1) & (cap - 1);
        h[s] = (uint32_t)i + 1;
    }
    free(f->nhash);
    f->nhash = h;
    f->nhcap = cap;
    return CP_OK;
}

static int64_t new_node(ex_flame *f, uint32_t parent, uint32_t key)
{
    if (f->nnodes == f->capnodes) {
        size_t cap = f->capnodes ? f->capnodes * 2 : 1024;
        fnode *n = realloc(f->nodes, cap * sizeof *n);
        if (!n) return -1;
        f->nodes = n;
        f->capnodes = cap;
    }
    fnode *n = &f->nodes[f->nnodes];
    memset(n, 0, sizeof *n);
    n->key = key;
    n->parent = parent;
    if (f->nnodes > 0) {
        n->sibling = f->nodes[parent].child;
        f->nodes[parent].child = (uint32_t)f->nnodes + 1;
    }
    return (int64_t)f->nnodes++;
}

/* The child of parent for key; -1 out of memory, -2 node limit. */
static int64_t child_of(ex_flame *f, uint32_t parent, uint32_t key)
{
    if ((f->nnodes + 1) * 2 > f->nhcap && rehash_nodes(f)) return -1;
    size_t s = hash_node(parent, key) & (f->nhcap - 1);
    for (; f->nhash[s]; s = (s + 1) & (f->nhcap - 1)) {
        const fnode *n = &f->nodes[f->nhash[s] - 1];
        if (n->parent == parent && n->key == key) return f->nhash[s] - 1;
    }
    if (f->nnodes >= f->max_nodes) return -2;
    int64_t i = new_node(f, parent, key);
    if (i >= 0) f->nhash[s] = (uint32_t)i + 1;
    return i;
}

ex_flame *ex_flame_new(size_t max_nodes)
{
    ex_flame *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->max_nodes = max_nodes ? max_nodes : FLAME_DEFAULT_MAX_NODES;
    if (f->max_nodes < 2) f->max_nodes = 2;
    if (intern(f, "root", "") != 0 || new_node(f, 0, 0) != 0) {
        ex_flame_free(f);
        return NULL;
    }
    return f;
}

void ex_flame_free(ex_flame *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->nkeys; i++) {
        free((char *)f->rows[i].name);
        free((char *)f->rows[i].file);
        if (f->rows[i].kind[0]) free((char *)f->rows[i].kind);
    }
    free(f->rows);
    free(f->stamp);
    free(f->khash);
    free(f->nodes);
    free(f->nhash);
    free(f);
}

/* Per-add cache: function (by its index in pp->functions) → key, so a
 * frame costs an array lookup instead of hashing its strings. */
typedef struct fcache {
    const cp_pprof *pp;
    int64_t *key; /* n_functions entries, -1 = not yet interned */
} fcache;

/* Key of one (function, line) entry. */
static int64_t func_key(ex_flame *f, fcache *c, uint64_t fid)
{
    const cp_pprof_function *fn = cp_pprof_function_by_id(c->pp, fid);
    if (fn && (fn < c->pp->functions || fn >= c->pp->functions + c->pp->n_functions)) fn = NULL;
    size_t i = fn ? (size_t)(fn - c->pp->functions) : 0;
    if (fn && c->key[i] >= 0) return c->key[i];
    const char *name = fn && fn->name && fn->name[0] ? fn->name
                       : fn && fn->system_name && fn->system_name[0] ? fn->system_name
                                                                      : "[unknown]";
    int64_t k = intern(f, name, fn && fn->filename ? fn->filename : "");
    if (fn) c->key[i] = k;
    return k;
}

/* Remember the frame kind (mapping file) of key k the first time one is
 * seen; -1 out of memory. */
static int set_kind(ex_flame *f, int64_t k, const cp_pprof_location *loc)
{
    if (k < 0 || !loc || !loc->mapping_file || !loc->mapping_file[0] || f->rows[k].kind[0]) return k < 0 ? -1 : 0;
    char *kind = strdup(loc->mapping_file);
    if (!kind) return -1;
    f->rows[k].kind = kind;
    return 0;
}

/* Frames of a sample (inlined lines expanded). */
static size_t sample_depth(const fcache *c, const cp_pprof_sample *s)
{
    size_t d = 0;
    for (size_t i = 0; i < s->nlocs; i++) {
        const cp_pprof_location *loc = cp_pprof_location_by_id(c->pp, s->location_ids[i]);
        d += loc && loc->nlines ? loc->nlines : 1;
    }
    return d;
}

/* Keys of a sample's frames, root first, into keys[]; returns the count
 * or -1. A stack deeper than FLAME_MAX_DEPTH keeps its leaf-most frames
 * (where the time is spent) under a first "<N root-most frames omitted>"
 * frame, so self time stays on the true leaf. */
static int64_t sample_keys(ex_flame *f, fcache *c, const cp_pprof_sample *s, uint32_t *keys)
{
    size_t n = 0, depth = sample_depth(c, s), skip = 0;
    if (depth > FLAME_MAX_DEPTH) {
        char what[64];
        skip = depth - (FLAME_MAX_DEPTH - 1);
        snprintf(what, sizeof what, "<%zu root-most frames omitted>", skip);
        int64_t k = intern(f, what, "");
        if (k < 0) return -1;
        keys[n++] = (uint32_t)k;
    }
    for (size_t i = s->nlocs; i-- > 0 && n < FLAME_MAX_DEPTH;) {
        const cp_pprof_location *loc = cp_pprof_location_by_id(c->pp, s->location_ids[i]);
        size_t lines = loc && loc->nlines ? loc->nlines : 1;
        if (skip >= lines) { skip -= lines; continue; }
        if (!loc || loc->nlines == 0) {
            char addr[40];
            snprintf(addr, sizeof addr, "0x%" PRIx64, loc ? loc->address : s->location_ids[i]);
            int64_t k = intern(f, addr, "");
            if (k < 0) return -1;
            keys[n++] = (uint32_t)k;
            continue;
        }
        size_t partial = skip;
        skip = 0;
        for (size_t j = loc->nlines - partial; j-- > 0 && n < FLAME_MAX_DEPTH;) {
            int64_t k = func_key(f, c, loc->lines[j].function_id);
            if (set_kind(f, k, loc) < 0) return -1;
            keys[n++] = (uint32_t)k;
        }
    }
    return (int64_t)n;
}

static int limit_node(ex_flame *f)
{
    if (f->limit_node) return (int)f->limit_node;
    int64_t k = intern(f, "[node limit reached]", "");
    if (k < 0) return -1;
    /* Beyond max_nodes on purpose: this one node keeps totals exact. */
    int64_t i = new_node(f, 0, (uint32_t)k);
    if (i < 0) return -1;
    f->limit_node = (uint32_t)i;
    return (int)i;
}

static void count_total(ex_flame *f, uint32_t key, int col, double v)
{
    if (f->stamp[key] == f->seq) return;
    f->stamp[key] = f->seq;
    f->rows[key].total[col] += v;
}

static int add_path(ex_flame *f, const uint32_t *keys, size_t n, int col, double v)
{
    uint32_t node = 0;
    f->seq++;
    f->nodes[0].total[col] += v;
    for (size_t i = 0; i < n; i++) {
        int64_t c = child_of(f, node, keys[i]);
        if (c == -1) return CP_ENOMEM;
        if (c == -2) {
            int l = limit_node(f);
            if (l < 0) return CP_ENOMEM;
            node = (uint32_t)l;
            f->nodes[node].total[col] += v;
            break;
        }
        node = (uint32_t)c;
        f->nodes[node].total[col] += v;
        count_total(f, keys[i], col, v);
    }
    f->nodes[node].self[col] += v;
    f->rows[f->nodes[node].key].self[col] += v;
    return CP_OK;
}

/* ---- filters ---------------------------------------------------------- */

/* Per key: does its name match focus / ignore / hide (bit 1/2/4), bit 8 =
 * computed. Grown with the flame's keys. */
typedef struct fmatch {
    uint8_t *bits;
    size_t cap;
} fmatch;

static int key_bits(const ex_flame *f, const ex_flame_filter *flt, fmatch *m, uint32_t key)
{
    if (key >= m->cap) {
        size_t nc = f->capkeys > key ? f->capkeys : (size_t)key + 1;
        uint8_t *b = realloc(m->bits, nc);
        if (!b) return -1;
        memset(b + m->cap, 0, nc - m->cap);
        m->bits = b;
        m->cap = nc;
    }
    if (!(m->bits[key] & 8)) {
        const char *name = f->rows[key].name;
        m->bits[key] = 8 | (flt->focus && !regexec(flt->focus, name, 0, NULL, 0) ? 1 : 0) |
                       (flt->ignore && !regexec(flt->ignore, name, 0, NULL, 0) ? 2 : 0) |
                       (flt->hide && !regexec(flt->hide, name, 0, NULL, 0) ? 4 : 0);
    }
    return m->bits[key];
}

/* A label's value as text: the string, or the number in decimal. */
static const char *label_text(const cp_pprof_label *l, char *buf, size_t n)
{
    if (l->str && *l->str) return l->str;
    snprintf(buf, n, "%" PRId64, l->num);
    return buf;
}

bool ex_sample_time(const cp_pprof_sample *s, int64_t *ns)
{
    for (size_t j = 0; j < s->nlabels; j++) {
        const cp_pprof_label *l = &s->labels[j];
        if (!l->key || (strcmp(l->key, "end_timestamp_ns") && strcmp(l->key, "timestamp_ns"))) continue;
        if (l->str && *l->str) {
            char *end;
            long long v = strtoll(l->str, &end, 10);
            if (*end) continue;
            *ns = v;
        } else {
            *ns = l->num;
        }
        return true;
    }
    return false;
}

static bool labels_pass(const cp_pprof_sample *s, const ex_flame_filter *flt)
{
    int64_t ts;
    if (flt->has_time && (!ex_sample_time(s, &ts) || ts < flt->time_from || ts >= flt->time_to)) return false;
    for (size_t k = 0; k < flt->nlabels; k++) {
        bool hit = false;
        char buf[32];
        for (size_t j = 0; j < s->nlabels && !hit; j++) {
            const cp_pprof_label *l = &s->labels[j];
            hit = l->key && !strcmp(l->key, flt->labels[k].key) &&
                  !regexec(flt->labels[k].re, label_text(l, buf, sizeof buf), 0, NULL, 0);
        }
        if (!hit) return false;
    }
    return true;
}

/* Apply flt to a sample's keys in place: returns the new count (0 when
 * every frame was hidden: the value stays, on the root), DROPPED when the
 * sample is filtered out, -1 out of memory. */
#define DROPPED (-2)
static int64_t filter_keys(const ex_flame *f, const ex_flame_filter *flt, fmatch *m, const cp_pprof_sample *s,
                           uint32_t *keys, int64_t n)
{
    if (!flt) return n;
    if ((flt->nlabels || flt->has_time) && !labels_pass(s, flt)) return DROPPED;
    if (!flt->focus && !flt->ignore && !flt->hide) return n;
    bool focused = !flt->focus;
    int64_t o = 0;
    for (int64_t i = 0; i < n; i++) {
        int b = key_bits(f, flt, m, keys[i]);
        if (b < 0) return -1;
        if (b & 2) return DROPPED;
        if (b & 1) focused = true;
        if (!(b & 4)) keys[o++] = keys[i];
    }
    return focused ? o : DROPPED;
}

int ex_flame_add_filtered(ex_flame *f, const cp_pprof *pp, int type_idx, int col, double scale,
                          const ex_flame_filter *flt)
{
    if (type_idx < 0 || (size_t)type_idx >= pp->n_sample_types || col < 0 || col > 1) return CP_EINVAL;
    uint32_t *keys = malloc(FLAME_MAX_DEPTH * sizeof *keys);
    fcache c = {.pp = pp, .key = malloc((pp->n_functions + 1) * sizeof *c.key)};
    fmatch m = {0};
    int rc = keys && c.key ? CP_OK : CP_ENOMEM;
    for (size_t i = 0; c.key && i <= pp->n_functions; i++) c.key[i] = -1;
    for (size_t i = 0; i < pp->n_samples && rc == CP_OK; i++) {
        const cp_pprof_sample *s = &pp->samples[i];
        double v = (double)s->values[type_idx] * scale;
        if (v == 0) continue;
        int64_t n = sample_keys(f, &c, s, keys);
        if (n >= 0) n = filter_keys(f, flt, &m, s, keys, n);
        if (n == -1) rc = CP_ENOMEM;
        else if (n >= 0) rc = add_path(f, keys, (size_t)n, col, v);
    }
    free(keys);
    free(c.key);
    free(m.bits);
    return rc;
}

int ex_flame_add(ex_flame *f, const cp_pprof *pp, int type_idx, int col, double scale)
{
    return ex_flame_add_filtered(f, pp, type_idx, col, scale, NULL);
}

int ex_flame_timeline(const cp_pprof *pp, int type_idx, size_t nbuckets, const ex_flame_filter *flt,
                      double **out, int64_t *from_ns, int64_t *bucket_ns)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN, ts;
    *out = NULL;
    if (type_idx < 0 || (size_t)type_idx >= pp->n_sample_types || nbuckets == 0) return CP_EINVAL;
    for (size_t i = 0; i < pp->n_samples; i++) {
        if (!ex_sample_time(&pp->samples[i], &ts)) continue;
        lo = ts < lo ? ts : lo;
        hi = ts > hi ? ts : hi;
    }
    if (lo > hi) return CP_EINVAL;
    int64_t width = (hi - lo) / (int64_t)nbuckets + 1;
    double *b = calloc(nbuckets, sizeof *b);
    if (!b) return CP_ENOMEM;
    /* the time window itself is what this view selects: other filters only */
    ex_flame_filter f2;
    if (flt) { f2 = *flt; f2.has_time = false; }
    ex_flame *scratch = flt ? ex_flame_new(0) : NULL;
    uint32_t *keys = flt ? malloc(FLAME_MAX_DEPTH * sizeof *keys) : NULL;
    fcache c = {.pp = pp, .key = flt ? malloc((pp->n_functions + 1) * sizeof *c.key) : NULL};
    fmatch m = {0};
    int rc = !flt || (scratch && keys && c.key) ? CP_OK : CP_ENOMEM;
    for (size_t i = 0; c.key && i <= pp->n_functions; i++) c.key[i] = -1;
    for (size_t i = 0; rc == CP_OK && i < pp->n_samples; i++) {
        const cp_pprof_sample *s = &pp->samples[i];
        if (!ex_sample_time(s, &ts) || s->values[type_idx] == 0) continue;
        if (flt) {
            int64_t k = sample_keys(scratch, &c, s, keys);
            if (k >= 0) k = filter_keys(scratch, &f2, &m, s, keys, k);
            if (k == -1) rc = CP_ENOMEM;
            if (k < 0) continue;
        }
        b[(ts - lo) / width] += (double)s->values[type_idx];
    }
    ex_flame_free(scratch);
    free(keys);
    free(c.key);
    free(m.bits);
    if (rc) { free(b); return rc; }
    *out = b;
    *from_ns = lo;
    *bucket_ns = width;
    return CP_OK;
}

/* ---- sandwich and source lines ---------------------------------------- */

int ex_flame_sandwich(ex_flame *callers, ex_flame *callees, const cp_pprof *pp, int type_idx,
                      const char *name, const char *file, const ex_flame_filter *flt)
{
    if (type_idx < 0 || (size_t)type_idx >= pp->n_sample_types) return CP_EINVAL;
    int64_t target = intern(callees, name, file ? file : "");
    uint32_t *keys = malloc(FLAME_MAX_DEPTH * sizeof *keys), *rev = malloc(FLAME_MAX_DEPTH * sizeof *rev);
    fcache c = {.pp = pp, .key = malloc((pp->n_functions + 1) * sizeof *c.key)};
    fmatch m = {0};
    int64_t *map = NULL; /* callees key -> callers key */
    size_t mapcap = 0;
    int rc = keys && rev && c.key && target >= 0 ? CP_OK : CP_ENOMEM;
    for (size_t i = 0; c.key && i <= pp->n_functions; i++) c.key[i] = -1;
    for (size_t i = 0; i < pp->n_samples && rc == CP_OK; i++) {
        const cp_pprof_sample *s = &pp->samples[i];
        double v = (double)s->values[type_idx];
        if (v == 0) continue;
        int64_t n = sample_keys(callees, &c, s, keys), at = -1;
        if (n >= 0) n = filter_keys(callees, flt, &m, s, keys, n);
        if (n == -1) { rc = CP_ENOMEM; break; }
        for (int64_t k = 0; k < n && at < 0; k++) if (keys[k] == (uint32_t)target) at = k;
        if (at < 0) continue;
        if (callees->nkeys > mapcap) {
            size_t nc = callees->capkeys;
            int64_t *b = realloc(map, nc * sizeof *b);
            if (!b) { rc = CP_ENOMEM; break; }
            for (size_t k = mapcap; k < nc; k++) b[k] = -1;
            map = b;
            mapcap = nc;
        }
        for (int64_t k = at; k >= 0 && rc == CP_OK; k--) {
            uint32_t ck = keys[k];
            if (map[ck] < 0) map[ck] = intern(callers, callees->rows[ck].name, callees->rows[ck].file);
            if (map[ck] < 0) rc = CP_ENOMEM;
            rev[at - k] = (uint32_t)map[ck];
        }
        if (rc == CP_OK) rc = add_path(callees, keys + at, (size_t)(n - at), 0, v);
        if (rc == CP_OK) rc = add_path(callers, rev, (size_t)at + 1, 0, v);
    }
    free(keys);
    free(rev);
    free(c.key);
    free(m.bits);
    free(map);
    return rc;
}

static int line_cmp(const void *a, const void *b)
{
    int64_t x = ((const ex_line_cost *)a)->line, y = ((const ex_line_cost *)b)->line;
    return x < y ? -1 : x > y;
}

/* Slot of line in the open-addressed table (grown by the caller). */
static size_t line_slot(ex_line_cost *t, size_t cap, int64_t line)
{
    size_t h = (size_t)((uint64_t)line * 0x9E3779B97F4A7C15ULL >> 20) & (cap - 1);
    while (t[h].line != INT64_MIN && t[h].line != line) h = (h + 1) & (cap - 1);
    return h;
}

int ex_flame_lines(const cp_pprof *pp, int type_idx, const char *name, const char *file,
                   const ex_flame_filter *flt, ex_line_cost **out, size_t *n)
{
    size_t cap = 256, used = 0;
    ex_line_cost *t = malloc(cap * sizeof *t);
    uint64_t *seen = NULL; /* lines counted in the current sample */
    size_t nseen = 0, seencap = 0;
    ex_flame *scratch = flt ? ex_flame_new(0) : NULL; /* interns keys for the filter */
    uint32_t *keys = flt ? malloc(FLAME_MAX_DEPTH * sizeof *keys) : NULL;
    fcache c = {.pp = pp, .key = flt ? malloc((pp->n_functions + 1) * sizeof *c.key) : NULL};
    fmatch m = {0};
    *out = NULL;
    *n = 0;
    if (!t || (flt && (!scratch || !keys || !c.key))) goto oom;
    for (size_t i = 0; c.key && i <= pp->n_functions; i++) c.key[i] = -1;
    for (size_t i = 0; i < cap; i++) t[i].line = INT64_MIN;
    for (size_t si = 0; si < pp->n_samples; si++) {
        const cp_pprof_sample *s = &pp->samples[si];
        double v = type_idx >= 0 && (size_t)type_idx < pp->n_sample_types ? (double)s->values[type_idx] : 0;
        if (v == 0) continue;
        if (flt) {
            int64_t k = sample_keys(scratch, &c, s, keys);
            if (k >= 0) k = filter_keys(scratch, flt, &m, s, keys, k);
            if (k == -1) goto oom;
            if (k == DROPPED) continue;
        }
        nseen = 0;
        for (size_t li = 0; li < s->nlocs; li++) {
            const cp_pprof_location *loc = cp_pprof_location_by_id(pp, s->location_ids[li]);
            for (size_t j = 0; loc && j < loc->nlines; j++) {
                const cp_pprof_function *fn = cp_pprof_function_by_id(pp, loc->lines[j].function_id);
                if (!fn || !fn->name || strcmp(fn->name, name) || strcmp(fn->filename ? fn->filename : "", file ? file : ""))
                    continue;
                if ((used + 1) * 2 > cap) {
                    size_t nc = cap * 2;
                    ex_line_cost *b = malloc(nc * sizeof *b);
                    if (!b) goto oom;
                    for (size_t k = 0; k < nc; k++) b[k].line = INT64_MIN;
                    for (size_t k = 0; k < cap; k++)
                        if (t[k].line != INT64_MIN) b[line_slot(b, nc, t[k].line)] = t[k];
                    free(t);
                    t = b;
                    cap = nc;
                }
                int64_t line = loc->lines[j].line;
                size_t h = line_slot(t, cap, line);
                if (t[h].line == INT64_MIN) { t[h] = (ex_line_cost){line, 0, 0}; used++; }
                if (li == 0 && j == 0) t[h].self += v;
                bool counted = false;
                for (size_t k = 0; k < nseen && !counted; k++) counted = seen[k] == (uint64_t)line;
                if (counted) continue;
                if (nseen == seencap) {
                    size_t nc = seencap ? seencap * 2 : 64;
                    uint64_t *b = realloc(seen, nc * sizeof *b);
                    if (!b) goto oom;
                    seen = b;
                    seencap = nc;
                }
                seen[nseen++] = (uint64_t)line;
                t[h].total += v;
            }
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < cap; i++)
        if (t[i].line != INT64_MIN) t[k++] = t[i];
    qsort(t, k, sizeof *t, line_cmp);
    *out = t;
    *n = k;
    free(seen);
    ex_flame_free(scratch);
    free(keys);
    free(c.key);
    free(m.bits);
    return CP_OK;
oom:
    free(t);
    free(seen);
    ex_flame_free(scratch);
    free(keys);
    free(c.key);
    free(m.bits);
    return CP_ENOMEM;
}

double ex_flame_total(const ex_flame *f, int col)
{
    return f->nodes[0].total[col];
}

size_t ex_flame_node_count(const ex_flame *f)
{
    return f->nnodes;
}

const ex_frow *ex_flame_rows(const ex_flame *f, size_t *n)
{
    *n = f->nkeys;
    return f->rows;
}

/* ---- output ---------------------------------------------------------- */

typedef struct wctx {
    const ex_flame *f;
    ex_jw *w;
    int ncols;
    double thresh;
    size_t budget, pruned;
} wctx;

static double weight(const fnode *n, int ncols)
{
    double a = fabs(n->total[0]);
    return ncols == 2 && fabs(n->total[1]) > a ? fabs(n->total[1]) : a;
}

static int by_name(const void *a, const void *b, void *ctx)
{
    const ex_flame *f = ctx;
    const fnode *x = &f->nodes[*(const uint32_t *)a], *y = &f->nodes[*(const uint32_t *)b];
    int c = strcmp(f->rows[x->key].name, f->rows[y->key].name);
    return c ? c : strcmp(f->rows[x->key].file, f->rows[y->key].file);
}

static void write_values(wctx *c, const fnode *n)
{
    if (c->ncols == 1) {
        ex_jw_knum(c->w, "self", n->self[0]);
        ex_jw_knum(c->w, "total", n->total[0]);
        return;
    }
    ex_jw_knum(c->w, "a", n->total[0]);
    ex_jw_knum(c->w, "b", n->total[1]);
    ex_jw_knum(c->w, "a_self", n->self[0]);
    ex_jw_knum(c->w, "b_self", n->self[1]);
}

/* Children that pass the threshold, sorted by name; NULL when none. */
static uint32_t *kept_children(wctx *c, const fnode *n, size_t *cnt)
{
    size_t k = 0, all = 0;
    for (uint32_t ch = n->child; ch; ch = c->f->nodes[ch - 1].sibling) all++;
    *cnt = 0;
    if (!all) return NULL;
    uint32_t *kids = malloc(all * sizeof *kids);
    if (!kids) { c->pruned += all; return NULL; }
    for (uint32_t ch = n->child; ch; ch = c->f->nodes[ch - 1].sibling) {
        if (weight(&c->f->nodes[ch - 1], c->ncols) >= c->thresh) kids[k++] = ch - 1;
        else c->pruned++;
    }
    qsort_r(kids, k, sizeof *kids, by_name, (void *)c->f);
    *cnt = k;
    return kids;
}

static void write_node(wctx *c, uint32_t idx)
{
    const fnode *n = &c->f->nodes[idx];
    size_t cnt;
    c->budget--;
    ex_jw_obj(c->w);
    ex_jw_kstr(c->w, "name", c->f->rows[n->key].name);
    ex_jw_kstr(c->w, "file", c->f->rows[n->key].file);
    if (c->f->rows[n->key].kind[0]) ex_jw_kstr(c->w, "kind", c->f->rows[n->key].kind);
    write_values(c, n);
    ex_jw_key(c->w, "children");
    ex_jw_arr(c->w);
    uint32_t *kids = kept_children(c, n, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        if (c->budget == 0) { c->pruned += cnt - i; break; }
        write_node(c, kids[i]);
    }
    free(kids);
    ex_jw_arr_end(c->w);
    ex_jw_obj_end(c->w);
}

void ex_flame_write_tree(const ex_flame *f, ex_jw *w, int ncols, double min_frac, size_t max_out,
                         size_t *pruned)
{
    wctx c = {.f = f, .w = w, .ncols = ncols, .budget = max_out ? max_out : 1};
    c.thresh = weight(&f->nodes[0], ncols) * (min_frac > 0 ? min_frac : 0);
    if (c.thresh <= 0) c.thresh = 1e-300; /* never write all-zero nodes */
    write_node(&c, 0);
    if (pruned) *pruned = c.pruned;
}

static int by_delta(const void *a, const void *b, void *ctx)
{
    const ex_flame *f = ctx;
    const ex_frow *x = &f->rows[*(const uint32_t *)a], *y = &f->rows[*(const uint32_t *)b];
    double dx = fabs(x->self[1] - x->self[0]), dy = fabs(y->self[1] - y->self[0]);
    return dx < dy ? 1 : dx > dy ? -1 : strcmp(x->name, y->name);
}

static int by_self0(const void *a, const void *b, void *ctx)
{
    const ex_flame *f = ctx;
    const ex_frow *x = &f->rows[*(const uint32_t *)a], *y = &f->rows[*(const uint32_t *)b];
    if (x->self[0] != y->self[0]) return x->self[0] < y->self[0] ? 1 : -1;
    if (x->total[0] != y->total[0]) return x->total[0] < y->total[0] ? 1 : -1;
    return strcmp(x->name, y->name);
}

static void write_row(ex_jw *w, const ex_frow *r, int ncols)
{
    ex_jw_obj(w);
    ex_jw_kstr(w, "name", r->name);
    ex_jw_kstr(w, "file", r->file);
    if (r->kind[0]) ex_jw_kstr(w, "kind", r->kind);
    if (ncols == 1) {
        ex_jw_knum(w, "self", r->self[0]);
        ex_jw_knum(w, "total", r->total[0]);
    } else {
        ex_jw_knum(w, "a_self", r->self[0]);
        ex_jw_knum(w, "b_self", r->self[1]);
        ex_jw_knum(w, "a_total", r->total[0]);
        ex_jw_knum(w, "b_total", r->total[1]);
        ex_jw_knum(w, "delta_self", r->self[1] - r->self[0]);
    }
    ex_jw_obj_end(w);
}

void ex_flame_write_rows(const ex_flame *f, ex_jw *w, int ncols, size_t limit)
{
    size_t n = 0;
    uint32_t *idx = f->nkeys > 1 ? malloc((f->nkeys - 1) * sizeof *idx) : NULL;
    for (size_t i = 1; idx && i < f->nkeys; i++) {
        const ex_frow *r = &f->rows[i];
        if (r->total[0] != 0 || (ncols == 2 && r->total[1] != 0)) idx[n++] = (uint32_t)i;
    }
    if (idx) qsort_r(idx, n, sizeof *idx, ncols == 2 ? by_delta : by_self0, (void *)f);
    ex_jw_arr(w);
    for (size_t i = 0; i < n && i < limit; i++) write_row(w, &f->rows[idx[i]], ncols);
    ex_jw_arr_end(w);
    free(idx);
    if (!idx && f->nkeys > 1) w->err = CP_ENOMEM;
}
