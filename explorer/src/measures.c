/*
 * measures.c — per-type totals and derived measures of one profile
 * (measures.h). CPU cores is cpu-time over the profile's wall duration,
 * summed over all threads, so it can exceed 1 up to the core count.
 */
#include "measures.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

double ex_type_total(const cp_pprof *pp, int type_idx)
{
    double t = 0;
    if (type_idx < 0 || (size_t)type_idx >= pp->n_sample_types) return 0;
    for (size_t i = 0; i < pp->n_samples; i++) t += (double)pp->samples[i].values[type_idx];
    return t;
}

int ex_type_find(const cp_pprof *pp, const char *canonical)
{
    static const char *const alias[][4] = {
        {"cpu-time", "nanoseconds", "cpu", NULL}, {"wall-time", "nanoseconds", "wall", NULL},
        {"alloc-space", "bytes", "alloc_space", NULL}, {"heap-space", "bytes", "inuse_space", "space"},
        {"heap-live-samples", "count", "inuse_objects", "objects"}, {"alloc-samples", "count", "alloc_objects", NULL},
        {"lock-acquire-wait", "nanoseconds", "delay", NULL}, {"lock-acquire", "count", "contentions", NULL}};
    int t = cp_pprof_type_index(pp, canonical);
    for (size_t i = 0; t < 0 && i < sizeof alias / sizeof alias[0]; i++) {
        if (strcmp(alias[i][0], canonical) != 0) continue;
        for (int k = 2; t < 0 && k < 4 && alias[i][k]; k++) {
            t = cp_pprof_type_index(pp, alias[i][k]);
            const char *unit = t >= 0 ? pp->sample_types[t].unit : NULL;
            if (t >= 0 && (!unit || strcmp(unit, alias[i][1]) != 0)) t = -1;
        }
    }
    return t;
}

const char *ex_default_type(const cp_pprof *pp)
{
    static const char *const pref[] = {"cpu-time", "wall-time", "alloc-space", "heap-space"};
    for (size_t i = 0; i < sizeof pref / sizeof pref[0]; i++) {
        int t = ex_type_find(pp, pref[i]);
        if (t >= 0) return pp->sample_types[t].type;
    }
    return pp->n_sample_types ? pp->sample_types[0].type : NULL;
}

static uint64_t label_hash(const cp_pprof_label *l)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)l->num;
    for (const char *s = l->str; s && *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    h *= 0x9E3779B97F4A7C15ULL;
    return h ? h : 1; /* 0 marks an empty slot */
}

/* Distinct thread ids via a hash set of label hashes (a collision could
 * undercount by one in 2^64; fine for a display measure). */
int64_t ex_thread_count(const cp_pprof *pp)
{
    size_t cap = 1024, n = 0;
    uint64_t *set = calloc(cap, sizeof *set);
    if (!set) return -1;
    for (size_t i = 0; i < pp->n_samples; i++) {
        for (size_t j = 0; j < pp->samples[i].nlabels; j++) {
            const cp_pprof_label *l = &pp->samples[i].labels[j];
            if (!l->key || strcmp(l->key, "thread id") != 0) continue;
            uint64_t h = label_hash(l);
            size_t s = h & (cap - 1);
            while (set[s] && set[s] != h) s = (s + 1) & (cap - 1);
            if (set[s]) continue;
            set[s] = h;
            if (++n * 2 < cap) continue;
            uint64_t *bigger = calloc(cap * 2, sizeof *bigger);
            if (!bigger) { free(set); return -1; }
            for (size_t k = 0; k < cap; k++) {
                if (!set[k]) continue;
                size_t t = set[k] & (cap * 2 - 1);
                while (bigger[t]) t = (t + 1) & (cap * 2 - 1);
                bigger[t] = set[k];
            }
            free(set);
            set = bigger;
            cap *= 2;
        }
    }
    free(set);
    return (int64_t)n;
}

static double rate(const cp_pprof *pp, const char *type, double per_ns_scale, int64_t duration_ns)
{
    int i = ex_type_find(pp, type);
    if (i < 0 || duration_ns < EX_MIN_RATE_DURATION_NS) return NAN;
    return ex_type_total(pp, i) * per_ns_scale / (double)duration_ns;
}

static int types_json(const cp_pprof *pp, ex_measures *m)
{
    cp_buf b;
    ex_jw w;
    cp_buf_init(&b, 0);
    ex_jw_init(&w, &b);
    ex_jw_arr(&w);
    for (size_t i = 0; i < pp->n_sample_types; i++) {
        const cp_sample_type *t = &pp->sample_types[i];
        ex_jw_obj(&w);
        ex_jw_kstr(&w, "type", t->type ? t->type : "");
        ex_jw_kstr(&w, "unit", t->unit ? t->unit : "");
        ex_jw_knum(&w, "total", ex_type_total(pp, (int)i));
        ex_jw_obj_end(&w);
        size_t tl = t->type ? strlen(t->type) : 0;
        if (tl > 8 && strcmp(t->type + tl - 8, "-samples") == 0)
            m->sample_count += (int64_t)ex_type_total(pp, (int)i);
    }
    ex_jw_arr_end(&w);
    if (w.err || ex_buf_cstr(&b)) { cp_buf_free(&b); return CP_ENOMEM; }
    m->types_json = (char *)b.data;
    return CP_OK;
}

int ex_measures_compute(const cp_pprof *pp, int64_t duration_ns, ex_measures *m)
{
    memset(m, 0, sizeof *m);
    if (types_json(pp, m)) return CP_ENOMEM;
    m->default_type = ex_default_type(pp);
    m->samples = (int64_t)pp->n_samples;
    m->cpu_cores = rate(pp, "cpu-time", 1.0, duration_ns);
    m->alloc_rate = rate(pp, "alloc-space", 1e9, duration_ns);
    int h = ex_type_find(pp, "heap-space");
    m->live_heap = h >= 0 ? ex_type_total(pp, h) : NAN;
    int64_t th = ex_thread_count(pp);
    m->threads = th > 0 ? (double)th : NAN;
    return CP_OK;
}

void ex_measures_free(ex_measures *m)
{
    free(m->types_json);
    m->types_json = NULL;
}

/* ---- label keys and values (for label filters) ------------------------ */

typedef struct lv {
    const char *key; /* points into the cp_pprof */
    char *value;     /* owned */
    int64_t samples;
} lv;

static int lv_cmp(const void *a, const void *b)
{
    const lv *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c) return c;
    if (x->samples != y->samples) return x->samples > y->samples ? -1 : 1;
    return strcmp(x->value, y->value);
}

static uint64_t lv_hash(const char *k, const char *v)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;
    for (; *v; v++) h = (h ^ (unsigned char)*v) * 0x100000001b3ULL;
    return h;
}

/* Count samples per (key, value) in an open-addressed table. */
static int lv_count(const cp_pprof *pp, lv **tab, size_t *cap, size_t *used)
{
    for (size_t i = 0; i < pp->n_samples; i++)
        for (size_t j = 0; j < pp->samples[i].nlabels; j++) {
            const cp_pprof_label *l = &pp->samples[i].labels[j];
            char num[32];
            const char *v = l->str && *l->str ? l->str : (snprintf(num, sizeof num, "%lld", (long long)l->num), num);
            if (!l->key) continue;
            if ((*used + 1) * 2 > *cap) {
                size_t nc = *cap ? *cap * 2 : 256;
                lv *b = calloc(nc, sizeof *b);
                if (!b) return CP_ENOMEM;
                for (size_t k = 0; k < *cap; k++) {
                    if (!(*tab)[k].key) continue;
                    size_t h = lv_hash((*tab)[k].key, (*tab)[k].value) & (nc - 1);
                    while (b[h].key) h = (h + 1) & (nc - 1);
                    b[h] = (*tab)[k];
                }
                free(*tab);
                *tab = b;
                *cap = nc;
            }
            size_t h = lv_hash(l->key, v) & (*cap - 1);
            while ((*tab)[h].key && (strcmp((*tab)[h].key, l->key) || strcmp((*tab)[h].value, v))) h = (h + 1) & (*cap - 1);
            if (!(*tab)[h].key) {
                if (!((*tab)[h].value = strdup(v))) return CP_ENOMEM;
                (*tab)[h].key = l->key;
                (*used)++;
            }
            (*tab)[h].samples++;
        }
    return CP_OK;
}

int ex_labels_write(const cp_pprof *pp, ex_jw *w, size_t top)
{
    lv *tab = NULL;
    size_t cap = 0, used = 0;
    int rc = lv_count(pp, &tab, &cap, &used);
    size_t n = 0;
    for (size_t i = 0; i < cap; i++)
        if (tab[i].key) tab[n++] = tab[i];
    if (n) qsort(tab, n, sizeof *tab, lv_cmp);
    ex_jw_obj(w);
    ex_jw_key(w, "labels");
    ex_jw_arr(w);
    for (size_t i = 0; rc == CP_OK && i < n;) {
        size_t j = i;
        while (j < n && !strcmp(tab[j].key, tab[i].key)) j++;
        ex_jw_obj(w);
        ex_jw_kstr(w, "key", tab[i].key);
        ex_jw_kint(w, "distinct", (int64_t)(j - i));
        ex_jw_key(w, "values");
        ex_jw_arr(w);
        for (size_t k = i; k < j && k - i < top; k++) {
            ex_jw_obj(w);
            ex_jw_kstr(w, "value", tab[k].value);
            ex_jw_kint(w, "samples", tab[k].samples);
            ex_jw_obj_end(w);
        }
        ex_jw_arr_end(w);
        ex_jw_obj_end(w);
        i = j;
    }
    ex_jw_arr_end(w);
    ex_jw_obj_end(w);
    for (size_t i = 0; i < n; i++) free(tab[i].value);
    free(tab);
    return rc ? rc : w->err;
}
