/*
 * profile.c — cp_profile: aggregation of samples keyed by stack + labels.
 *
 * A sample's key is its list of location ids (leaf first) and its labels,
 * sorted so that the caller's label order does not split a sample. Keys
 * live in the samples themselves; cp__htab indexes them. When a cap is
 * reached (or memory runs out) the values go to one "[overflow]" sample so
 * that the profile's totals stay true, and the add is counted.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "frame_dict.h"
#include "profile_internal.h"

static const cp_limits default_limits = {
    .max_samples = 65536,
    .max_locations = 262144,
    .max_functions = 131072,
    .max_strings = 262144,
    .max_string_bytes = 32u << 20,
    .max_frames = 64,
};

/* A field of lim, or its default when 0; ids are 32-bit so cap there. */
static size_t limit_or(size_t v, size_t dflt)
{
    v = v ? v : dflt;
    return v > UINT32_MAX - 2 ? UINT32_MAX - 2 : v;
}

static void set_limits(cp_limits *dst, const cp_limits *lim)
{
    const cp_limits *d = &default_limits;
    cp_limits z = {0};
    if (!lim)
        lim = &z;
    dst->max_samples = limit_or(lim->max_samples, d->max_samples);
    dst->max_locations = limit_or(lim->max_locations, d->max_locations);
    dst->max_functions = limit_or(lim->max_functions, d->max_functions);
    dst->max_strings = limit_or(lim->max_strings, d->max_strings);
    dst->max_string_bytes = limit_or(lim->max_string_bytes, d->max_string_bytes);
    dst->max_frames = lim->max_frames ? lim->max_frames : d->max_frames;
    if (dst->max_frames > CP__MAX_FRAMES_HARD)
        dst->max_frames = CP__MAX_FRAMES_HARD;
}

static int intern_types(cp_profile *p, const cp_sample_type *types)
{
    uint32_t empty;
    int rc = cp__pstr_intern(p, "", false, &empty);
    for (size_t i = 0; rc == CP_OK && i < p->ntypes; i++) {
        if (!types[i].type || !types[i].unit)
            return CP_EINVAL;
        rc = cp__pstr_intern(p, types[i].type, false, &p->type_strs[2 * i]);
        if (rc == CP_OK)
            rc = cp__pstr_intern(p, types[i].unit, false, &p->type_strs[2 * i + 1]);
    }
    return rc;
}

/* A new, empty profile with ntypes (1..64) sample types, copied. lim may
 * be NULL; a 0 field of lim means its default (see cp_limits), max_frames
 * is clamped to 599. Returns NULL on bad arguments or out of memory. The
 * caller owns the profile and releases it with cp_profile_free. */
cp_profile *cp_profile_new(const cp_sample_type *types, size_t ntypes, const cp_limits *lim)
{
    if (!types || ntypes == 0 || ntypes > CP__MAX_TYPES)
        return NULL;
    cp_profile *p = cp__calloc(1, sizeof *p);
    if (!p)
        return NULL;
    set_limits(&p->lim, lim);
    p->overflow = -1;
    cp__htab_init(&p->st.index);
    cp__htab_init(&p->func_index);
    cp__htab_init(&p->loc_index);
    cp__htab_init(&p->sample_index);
    cp__htab_init(&p->stackc_index);
    p->ntypes = ntypes;
    p->type_strs = cp__calloc(2 * ntypes, sizeof *p->type_strs);
    if (!p->type_strs || intern_types(p, types) != CP_OK) {
        cp_profile_free(p);
        return NULL;
    }
    return p;
}

/* Release p and everything it owns. NULL is a no-op. */
void cp_profile_free(cp_profile *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nsamples; i++)
        cp__free(p->samples[i]);
    cp__free(p->samples);
    cp__htab_free(&p->sample_index);
    cp__ptables_free(p);
    cp__free(p->type_strs);
    cp__free(p->comments);
    cp__free(p->id_loc);
    cp__stackc_free(p);
    cp__free(p);
}

/* Is a missing system name written as the name (pprof readers then
 * "demangle" it)? Only for native code and older front ends: for other
 * kinds it stays empty, because `go tool pprof` strips <...> from names
 * equal to their system name, and "<3 frames omitted>" or "<module>"
 * would show as "". */
static bool system_name_is_name(cp_frame_kind kind)
{
    return kind == CP_FRAME_UNSPECIFIED || kind == CP_FRAME_NATIVE || kind == CP_FRAME_KERNEL ||
           (unsigned)kind >= CP_FRAME__COUNT;
}

/* Intern one frame (strings, function, mapping, location); its location
 * index goes to *loc. */
static int intern_frame(cp_profile *p, const cp_frame *fr, bool capped, uint32_t *loc)
{
    cp__pfunc f = {.start_line = fr->start_line};
    int rc = cp__pstr_intern(p, fr->name, capped, &f.name);
    if (rc == CP_OK && fr->system_name)
        rc = cp__pstr_intern(p, fr->system_name, capped, &f.system_name);
    else
        f.system_name = system_name_is_name(fr->kind) ? f.name : 0;
    if (rc == CP_OK)
        rc = cp__pstr_intern(p, fr->filename ? fr->filename : "", capped, &f.filename);
    cp__ploc l = {0, 0, fr->line};
    if (rc == CP_OK)
        rc = cp__pmap_intern(p, fr->kind, fr->module, capped, &l.map1);
    if (rc == CP_OK)
        rc = cp__pfunc_intern(p, &f, capped, &l.func);
    if (rc == CP_OK)
        rc = cp__ploc_intern(p, &l, capped, loc);
    return rc;
}

/* End a truncated stack (locs[0..*nlocs)) with "<n frames omitted>". The
 * last one is cached: deep recursion repeats the same n. */
static int intern_omitted(cp_profile *p, size_t n, uint32_t *locs, size_t *nlocs)
{
    if (p->omit_loc1 && p->omit_n == n) {
        locs[(*nlocs)++] = p->omit_loc1 - 1;
        return CP_OK;
    }
    char name[64];
    snprintf(name, sizeof name, "<%zu frames omitted>", n);
    cp_frame omitted = {name, NULL, NULL, 0, CP_FRAME_PSEUDO, NULL};
    int rc = intern_frame(p, &omitted, true, &locs[*nlocs]);
    if (rc == CP_OK) {
        p->omit_n = n;
        p->omit_loc1 = locs[(*nlocs)++] + 1;
    }
    return rc;
}

/* Intern the stack into locs[]; a stack over max_frames keeps its
 * max_frames-1 leaf-most frames and ends in "<N frames omitted>". */
static int intern_stack(cp_profile *p, const cp_frame *frames, size_t nframes, uint32_t *locs,
                        size_t *nlocs)
{
    size_t keep = nframes <= p->lim.max_frames ? nframes : p->lim.max_frames - 1;
    int rc = CP_OK;
    for (size_t i = 0; rc == CP_OK && i < keep; i++) {
        const cp_frame *f = &frames[i];
        if (cp__fcache_get(p, f, &locs[i]))
            continue;
        rc = intern_frame(p, f, true, &locs[i]);
        if (rc == CP_OK)
            cp__fcache_put(p, f, locs[i]);
    }
    *nlocs = keep;
    return rc != CP_OK || keep == nframes ? rc : intern_omitted(p, nframes - keep, locs, nlocs);
}

static int label_cmp(const cp__plabel *a, const cp__plabel *b)
{
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    if (a->str != b->str)
        return a->str < b->str ? -1 : 1;
    if (a->num != b->num)
        return a->num < b->num ? -1 : 1;
    return a->unit == b->unit ? 0 : (a->unit < b->unit ? -1 : 1);
}

/* Insertion sort: label lists are short (a handful). */
static void sort_labels(cp__plabel *l, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        cp__plabel x = l[i];
        size_t j = i;
        for (; j > 0 && label_cmp(&l[j - 1], &x) > 0; j--)
            l[j] = l[j - 1];
        l[j] = x;
    }
}

int cp__intern_label_str(cp_profile *p, const char *s, uint32_t *id)
{
    cp__scache_entry *e = &p->scache[cp__hash_mix(0, (uintptr_t)s) & (CP__SCACHE_SIZE - 1)];
    if (e->s == s && e->id1 && strcmp(p->st.strs[e->id1 - 1].s, s) == 0) {
        *id = e->id1 - 1;
        return CP_OK;
    }
    int rc = cp__pstr_intern(p, s, true, id);
    if (rc == CP_OK)
        *e = (cp__scache_entry){s, *id + 1};
    return rc;
}

static int intern_labels(cp_profile *p, const cp_label *labels, size_t n, cp__plabel *out)
{
    for (size_t i = 0; i < n; i++) {
        cp__plabel *l = &out[i];
        *l = (cp__plabel){0, 0, 0, labels[i].str ? 0 : labels[i].num};
        int rc = cp__intern_label_str(p, labels[i].key, &l->key);
        if (rc == CP_OK && labels[i].str)
            rc = cp__intern_label_str(p, labels[i].str, &l->str);
        if (rc == CP_OK && !labels[i].str && labels[i].num_unit)
            rc = cp__intern_label_str(p, labels[i].num_unit, &l->unit);
        if (rc != CP_OK)
            return rc;
    }
    sort_labels(out, n);
    return CP_OK;
}

typedef struct sample_key {
    const uint32_t *locs;
    size_t nlocs;
    const cp__plabel *labels;
    size_t nlabels;
} sample_key;

static uint64_t key_hash(const sample_key *k)
{
    uint64_t h = cp__hash_bytes(k->locs, k->nlocs * sizeof *k->locs, k->nlabels);
    for (size_t i = 0; i < k->nlabels; i++) {
        const cp__plabel *l = &k->labels[i];
        h = cp__hash_mix(h, ((uint64_t)l->key << 32) | l->str);
        h = cp__hash_mix(cp__hash_mix(h, (uint64_t)l->num), l->unit);
    }
    return h;
}

static bool sample_eq(const void *ctx, uint32_t id, const void *key)
{
    const cp_profile *p = ctx;
    const cp__psample *s = p->samples[id];
    const sample_key *k = key;
    if (s->nlocs != k->nlocs || s->nlabels != k->nlabels)
        return false;
    if (memcmp(cp__sample_locs(p, s), k->locs, k->nlocs * sizeof *k->locs) != 0)
        return false;
    const cp__plabel *l = cp__sample_labels(p, s);
    for (size_t i = 0; i < k->nlabels; i++)
        if (label_cmp(&l[i], &k->labels[i]) != 0)
            return false;
    return true;
}


static int new_sample(cp_profile *p, const sample_key *k, uint64_t h, const int64_t *values,
                      bool capped, uint32_t *index)
{
    if (capped && p->nsamples + (p->overflow < 0 ? 1 : 0) >= p->lim.max_samples)
        return CP_EFULL;
    size_t size = sizeof(cp__psample) + p->ntypes * sizeof(int64_t) +
                  k->nlabels * sizeof(cp__plabel) + k->nlocs * sizeof(uint32_t);
    cp__psample *s = cp__malloc(size);
    if (!s || cp__grow_array((void **)&p->samples, &p->samples_cap, p->nsamples + 1,
                             sizeof *p->samples) != CP_OK ||
        cp__htab_insert(&p->sample_index, h, (uint32_t)p->nsamples) != CP_OK) {
        cp__free(s);
        return CP_ENOMEM;
    }
    s->nlocs = (uint32_t)k->nlocs;
    s->nlabels = (uint32_t)k->nlabels;
    s->hash = h;
    memcpy(s->values, values, p->ntypes * sizeof *values);
    if (k->nlabels) /* labels may be NULL when there are none */
        memcpy(cp__sample_labels(p, s), k->labels, k->nlabels * sizeof *k->labels);
    if (k->nlocs)
        memcpy(cp__sample_locs(p, s), k->locs, k->nlocs * sizeof *k->locs);
    p->samples[p->nsamples] = s;
    *index = (uint32_t)p->nsamples++;
    return CP_OK;
}

/* Sum values into the sample with key k, creating it if needed. */
static int add_values(cp_profile *p, const sample_key *k, const int64_t *values, bool capped,
                      uint32_t *index)
{
    uint64_t h = key_hash(k);
    uint32_t id = cp__htab_find(&p->sample_index, h, sample_eq, p, k);
    if (id != CP__HTAB_NONE) {
        cp__sum_values(p->samples[id]->values, values, p->ntypes);
        *index = id;
        return CP_OK;
    }
    return new_sample(p, k, h, values, capped, index);
}

/* Route values of a rejected add (cause = CP_EFULL or CP_ENOMEM) to the
 * "[overflow]" sample, creating it on first use; returns cause, or
 * CP_ENOMEM if even that failed (the values are then lost). */
static int add_overflow(cp_profile *p, const int64_t *values, int cause)
{
    if (p->overflow >= 0) {
        cp__sum_values(p->samples[p->overflow]->values, values, p->ntypes);
        p->overflowed++;
        return cause;
    }
    static const cp_frame overflow = {"[overflow]", NULL, NULL, 0, CP_FRAME_PSEUDO, NULL};
    uint32_t loc, idx;
    int rc = intern_frame(p, &overflow, false, &loc);
    sample_key k = {&loc, 1, NULL, 0};
    if (rc == CP_OK)
        rc = add_values(p, &k, values, false, &idx);
    if (rc != CP_OK)
        return CP_ENOMEM;
    p->overflow = (long)idx;
    p->overflowed++;
    return cause;
}

/* Second half of an add: labels, then the sample for locs[nlocs] (rc is
 * the stack's interning result); a full table or no memory routes the
 * values to [overflow]. */
static int add_stack(cp_profile *p, int rc, const uint32_t *locs, size_t nlocs,
                     const int64_t *values, const cp_label *labels, size_t nlabels, uint32_t *idx)
{
    cp__plabel labs[CP__MAX_LABELS];
    sample_key k = {locs, nlocs, labs, nlabels};
    if (rc == CP_OK)
        rc = intern_labels(p, labels, nlabels, labs);
    if (rc == CP_OK)
        rc = add_values(p, &k, values, true, idx);
    if (rc == CP_EFULL || rc == CP_ENOMEM)
        return add_overflow(p, values, rc);
    return rc;
}

static int check_add_args(const cp_profile *p, const cp_frame *frames, size_t nframes,
                          const int64_t *values, const cp_label *labels, size_t nlabels)
{
    if (!p || !values || (nframes && !frames) || (nlabels && !labels) || nlabels > CP__MAX_LABELS)
        return CP_EINVAL;
    for (size_t i = 0; i < nframes; i++)
        if (!frames[i].name)
            return CP_EINVAL;
    for (size_t i = 0; i < nlabels; i++)
        if (!labels[i].key)
            return CP_EINVAL;
    return CP_OK;
}

/* See contprof.h. Arguments are validated first (CP_EINVAL: nothing
 * recorded): frame names and label keys must not be NULL, at most 64
 * labels. Not thread-safe: the owner serialises calls on one profile. */
int cp_profile_add(cp_profile *p, const cp_frame *frames, size_t nframes, const int64_t *values,
                   const cp_label *labels, size_t nlabels)
{
    int rc = check_add_args(p, frames, nframes, values, labels, nlabels);
    if (rc != CP_OK)
        return rc;
    p->adds++;
    uint32_t locs[CP__MAX_FRAMES_HARD];
    size_t nlocs = 0;
    rc = intern_stack(p, frames, nframes, locs, &nlocs);
    uint32_t idx;
    return add_stack(p, rc, locs, nlocs, values, labels, nlabels, &idx);
}

/* Location of dictionary id, interning its frame on first use in p. */
static int id_location(cp_profile *p, const cp_frame_dict *d, uint32_t id, uint32_t *loc)
{
    const cp_frame *f = cp__frame_dict_get(d, id);
    int rc = intern_frame(p, f, true, loc);
    if (rc == CP_OK)
        p->id_loc[id] = *loc + 1;
    return rc;
}

/* Grow id_loc (zero-filled) to cover every id of d. */
static int id_loc_cover(cp_profile *p, const cp_frame_dict *d)
{
    size_t need = cp_frame_dict_size(d) + 1, old = p->id_loc_cap;
    if (need <= old)
        return CP_OK;
    int rc = cp__grow_array((void **)&p->id_loc, &p->id_loc_cap, need, sizeof *p->id_loc);
    if (rc == CP_OK)
        memset(p->id_loc + old, 0, (p->id_loc_cap - old) * sizeof *p->id_loc);
    return rc;
}

/* The ids' locations into locs[] when every frame was seen in p before:
 * one load per frame. Returns how many it did: keep, or the index of the
 * first id not yet in p (or invalid, or all of them if p has no map). */
static size_t translate_seen(const cp_profile *p, const uint32_t *ids, size_t keep, uint32_t max,
                             uint32_t *locs)
{
    if (max >= p->id_loc_cap)
        return 0;
    const uint32_t *map = p->id_loc;
    size_t i = 0;
    for (; i < keep; i++) {
        uint32_t id = ids[i];
        if (id - 1u >= max || !map[id]) /* id 0 wraps to UINT32_MAX */
            break;
        locs[i] = map[id] - 1;
    }
    return i;
}

/* The ids' locations into locs[], truncated like intern_stack; CP_EINVAL
 * (only new frames interned) for an id d never handed out. */
static int translate_stack(cp_profile *p, const cp_frame_dict *d, const uint32_t *ids, size_t n,
                           uint32_t *locs, size_t *nlocs)
{
    uint32_t max = (uint32_t)cp_frame_dict_size(d);
    size_t keep = n <= p->lim.max_frames ? n : p->lim.max_frames - 1;
    size_t i = translate_seen(p, ids, keep, max, locs);
    int rc = i == keep ? CP_OK : id_loc_cover(p, d);
    for (; rc == CP_OK && i < keep; i++) {
        uint32_t id = ids[i];
        if (id - 1u >= max)
            return CP_EINVAL;
        if (p->id_loc[id])
            locs[i] = p->id_loc[id] - 1;
        else
            rc = id_location(p, d, id, &locs[i]);
    }
    for (i = keep; i < n; i++) /* the truncated part is checked too */
        if (ids[i] - 1u >= max)
            return CP_EINVAL;
    *nlocs = keep;
    return rc != CP_OK || keep == n ? rc : intern_omitted(p, n - keep, locs, nlocs);
}

/* See contprof.h. Not thread-safe, like cp_profile_add. */
int cp_profile_add_ids(cp_profile *p, const cp_frame_dict *d, const uint32_t *ids, size_t n,
                       const int64_t *values, const cp_label *labels, size_t nlabels)
{
    if (!p || !values || (nlabels && !labels) || nlabels > CP__MAX_LABELS || !d || (n && !ids))
        return CP_EINVAL;
    for (size_t i = 0; i < nlabels; i++)
        if (!labels[i].key)
            return CP_EINVAL;
    int rc;
    uint64_t h = cp__stackc_hash(ids, n, labels, nlabels);
    if (cp__stackc_add(p, h, ids, n, labels, nlabels, values)) {
        p->adds++;
        return CP_OK;
    }
    uint32_t locs[CP__MAX_FRAMES_HARD];
    size_t nlocs = 0;
    rc = translate_stack(p, d, ids, n, locs, &nlocs);
    if (rc == CP_EINVAL)
        return rc;
    p->adds++;
    uint32_t idx;
    rc = add_stack(p, rc, locs, nlocs, values, labels, nlabels, &idx);
    if (rc == CP_OK)
        cp__stackc_put(p, h, ids, n, labels, nlabels, idx);
    return rc;
}

/* Start of the profile (Unix ns) and its length (ns). */
void cp_profile_set_time(cp_profile *p, int64_t start_unix_ns, int64_t duration_ns)
{
    if (!p)
        return;
    p->time_ns = start_unix_ns;
    p->duration_ns = duration_ns;
}

/* The sampling period, e.g. {"cpu","nanoseconds"}, 10000000. Strings are
 * copied. Out of memory leaves the period type unset (the period is kept). */
void cp_profile_set_period(cp_profile *p, const cp_sample_type *period_type, int64_t period)
{
    if (!p)
        return;
    p->period = period;
    uint32_t t, u;
    if (period_type && period_type->type && period_type->unit &&
        cp__pstr_intern(p, period_type->type, false, &t) == CP_OK &&
        cp__pstr_intern(p, period_type->unit, false, &u) == CP_OK) {
        p->period_type[0] = t;
        p->period_type[1] = u;
    }
}

/* Append a comment (copied). CP_EFULL past 256 comments. */
int cp_profile_add_comment(cp_profile *p, const char *comment)
{
    if (!p || !comment)
        return CP_EINVAL;
    if (p->ncomments >= CP__MAX_COMMENTS)
        return CP_EFULL;
    uint32_t id;
    int rc = cp__grow_array((void **)&p->comments, &p->comments_cap, p->ncomments + 1,
                            sizeof *p->comments);
    if (rc == CP_OK)
        rc = cp__pstr_intern(p, comment, false, &id);
    if (rc == CP_OK)
        p->comments[p->ncomments++] = id;
    return rc;
}

/* Table sizes and counters of p, for metrics and tests. */
void cp_profile_stats_get(const cp_profile *p, cp_profile_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!p)
        return;
    out->samples = p->nsamples;
    out->locations = p->nlocs;
    out->functions = p->nfuncs;
    out->strings = p->st.n;
    out->adds = p->adds;
    out->overflowed = p->overflowed;
}
