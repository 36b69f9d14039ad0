/*
 * pprof_index.c — the decoded profile's arena, id lookups and reference
 * checks.
 *
 * Lookups are O(1) when ids are 1..n in order (what contprof, Go and most
 * writers produce); otherwise a sorted copy of (id, index) is searched.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pprof_internal.h"

struct cp__arena_chunk {
    cp__arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

enum { ARENA_CHUNK = 64 * 1024 };

void *cp__arena_alloc(cp__arena *a, size_t n)
{
    if (n > SIZE_MAX - 16)
        return NULL;
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (a->budget && (n > a->budget || a->used > a->budget - n)) {
        a->over_budget = true;
        return NULL;
    }
    cp__arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        if (cap > SIZE_MAX - sizeof *c)
            return NULL;
        c = cp__malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

void *cp__arena_array(cp__arena *a, size_t count, size_t size)
{
    static max_align_t nothing; /* empty arrays are common: no memory */
    if (count == 0 || size == 0)
        return &nothing;
    if (count > (SIZE_MAX - 64) / size)
        return NULL;
    return cp__arena_alloc(a, count * size);
}

void cp__arena_free(cp__arena *a)
{
    while (a->head) {
        cp__arena_chunk *next = a->head->next;
        cp__free(a->head);
        a->head = next;
    }
}

bool cp__pprof_str(const cp_pprof *pp, uint64_t idx, const char **out)
{
    if (idx == 0 && pp->n_strings == 0) {
        *out = "";
        return true;
    }
    if (idx >= pp->n_strings)
        return false;
    *out = pp->strings[idx];
    return true;
}

static int slot_cmp(const void *a, const void *b)
{
    uint64_t x = ((const cp__id_slot *)a)->id, y = ((const cp__id_slot *)b)->id;
    return x < y ? -1 : x > y;
}

/* Build a sorted index of n ids (read through get) unless they are dense
 * 1-based; CP_ECORRUPT on id 0 or duplicates. *sorted stays NULL if
 * dense. */
static int build_index(cp__pprof_priv *pp, size_t n, uint64_t (*get)(const cp_pprof *, size_t),
                       cp__id_slot **sorted)
{
    bool dense = true;
    for (size_t i = 0; i < n && dense; i++)
        dense = get(&pp->pub, i) == i + 1;
    *sorted = NULL;
    if (dense)
        return CP_OK;
    cp__id_slot *s = cp__arena_array(&pp->arena, n, sizeof *s);
    if (!s)
        return CP_ENOMEM;
    for (size_t i = 0; i < n; i++)
        s[i] = (cp__id_slot){get(&pp->pub, i), i};
    qsort(s, n, sizeof *s, slot_cmp);
    for (size_t i = 0; i < n; i++)
        if (s[i].id == 0 || (i > 0 && s[i].id == s[i - 1].id))
            return CP_ECORRUPT;
    *sorted = s;
    return CP_OK;
}

static uint64_t loc_id(const cp_pprof *pp, size_t i)
{
    return pp->locations[i].id;
}

static uint64_t func_id(const cp_pprof *pp, size_t i)
{
    return pp->functions[i].id;
}

static uint64_t map_id(const cp_pprof *pp, size_t i)
{
    return pp->mappings[i].id;
}

/* Index in a table of n entries with the given id, or SIZE_MAX. */
static size_t find(const cp__id_slot *sorted, size_t n, uint64_t id)
{
    if (!sorted)
        return id >= 1 && id <= n ? (size_t)(id - 1) : SIZE_MAX;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && sorted[lo].id == id ? sorted[lo].index : SIZE_MAX;
}

/* The location with this id, or NULL. pp is only read. */
const cp_pprof_location *cp_pprof_location_by_id(const cp_pprof *pp, uint64_t id)
{
    if (!pp)
        return NULL;
    const cp__pprof_priv *pv = (const cp__pprof_priv *)pp;
    size_t i = find(pv->loc_sorted, pp->n_locations, id);
    return i == SIZE_MAX ? NULL : &pp->locations[i];
}

/* The function with this id, or NULL. pp is only read. */
const cp_pprof_function *cp_pprof_function_by_id(const cp_pprof *pp, uint64_t id)
{
    if (!pp)
        return NULL;
    const cp__pprof_priv *pv = (const cp__pprof_priv *)pp;
    size_t i = find(pv->func_sorted, pp->n_functions, id);
    return i == SIZE_MAX ? NULL : &pp->functions[i];
}

/* The mapping with this id, or NULL. pp is only read. */
const cp_pprof_mapping *cp_pprof_mapping_by_id(const cp_pprof *pp, uint64_t id)
{
    if (!pp)
        return NULL;
    const cp__pprof_priv *pv = (const cp__pprof_priv *)pp;
    size_t i = find(pv->map_sorted, pp->n_mappings, id);
    return i == SIZE_MAX ? NULL : &pp->mappings[i];
}

static void resolve_mapping_files(cp_pprof *pp)
{
    for (size_t i = 0; i < pp->n_locations; i++) {
        const cp_pprof_mapping *m = cp_pprof_mapping_by_id(pp, pp->locations[i].mapping_id);
        pp->locations[i].mapping_file = m ? m->filename : "";
    }
}

static int check_refs(const cp_pprof *pp)
{
    for (size_t i = 0; i < pp->n_samples; i++)
        for (size_t j = 0; j < pp->samples[i].nlocs; j++)
            if (!cp_pprof_location_by_id(pp, pp->samples[i].location_ids[j]))
                return CP_ECORRUPT;
    for (size_t i = 0; i < pp->n_locations; i++)
        for (size_t j = 0; j < pp->locations[i].nlines; j++)
            if (!cp_pprof_function_by_id(pp, pp->locations[i].lines[j].function_id))
                return CP_ECORRUPT;
    return CP_OK;
}

int cp__pprof_index(cp__pprof_priv *pp)
{
    int rc = build_index(pp, pp->pub.n_locations, loc_id, &pp->loc_sorted);
    if (rc == CP_OK)
        rc = build_index(pp, pp->pub.n_functions, func_id, &pp->func_sorted);
    if (rc == CP_OK)
        rc = build_index(pp, pp->pub.n_mappings, map_id, &pp->map_sorted);
    if (rc == CP_OK)
        resolve_mapping_files(&pp->pub);
    return rc == CP_OK ? check_refs(&pp->pub) : rc;
}

/* Index of the sample type named type, or -1. */
int cp_pprof_type_index(const cp_pprof *pp, const char *type)
{
    if (!pp || !type)
        return -1;
    for (size_t i = 0; i < pp->n_sample_types; i++)
        if (strcmp(pp->sample_types[i].type, type) == 0)
            return (int)i;
    return -1;
}

/* Release a decoded profile and everything it points to. NULL: no-op. */
void cp_pprof_free(cp_pprof *pp)
{
    if (!pp)
        return;
    cp__pprof_priv *pv = (cp__pprof_priv *)pp;
    cp__arena_free(&pv->arena);
    cp__free(pv);
}
