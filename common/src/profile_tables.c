/*
 * profile_tables.c — interning of strings, functions and locations for
 * cp_profile, with the hard caps from cp_limits.
 *
 * Each table is a dense array plus a cp__htab index. While the "[overflow]"
 * sample does not exist yet, capped inserts keep one free entry (and, for
 * strings, the bytes of "[overflow]") so that the overflow sample can
 * always be created when a table fills up.
 */
#include <string.h>

#include "alloc.h"
#include "profile_internal.h"

/* Bytes kept free in the string table for "[overflow]" and the "[pseudo]"
 * mapping it sits in (with their NULs). */
enum { OVERFLOW_NAME_SIZE = sizeof "[overflow]", PSEUDO_MAP_SIZE = sizeof "[pseudo]" };

int cp__grow_array(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return CP_OK;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    if (ncap > SIZE_MAX / elem)
        return CP_ENOMEM;
    void *a = cp__realloc(*arr, ncap * elem);
    if (!a)
        return CP_ENOMEM;
    *arr = a;
    *cap = ncap;
    return CP_OK;
}

/* Entries kept free for the overflow sample while it does not exist. */
static size_t reserve(const cp_profile *p)
{
    return p->overflow < 0 ? 1 : 0;
}

typedef struct str_key {
    const char *s;
    size_t len;
} str_key;

static bool str_eq(const void *ctx, uint32_t id, const void *key)
{
    const cp__strtab *st = ctx;
    const str_key *k = key;
    return st->strs[id].len == k->len && memcmp(st->strs[id].s, k->s, k->len) == 0;
}

static bool str_fits(const cp_profile *p, size_t len)
{
    size_t extra_bytes = reserve(p) ? OVERFLOW_NAME_SIZE : 0;
    size_t extra = reserve(p);
    if (!p->kind_map1[CP_FRAME_PSEUDO]) {
        extra_bytes += PSEUDO_MAP_SIZE;
        extra++;
    }
    if (p->st.n + extra >= p->lim.max_strings)
        return false;
    return p->st.bytes + len + 1 + extra_bytes <= p->lim.max_string_bytes;
}

/* Append a copy of k to the string table (no cap checks). */
static int str_append(cp__strtab *st, const str_key *k, uint64_t h, uint32_t *id)
{
    if (cp__grow_array((void **)&st->strs, &st->cap, st->n + 1, sizeof *st->strs) != CP_OK)
        return CP_ENOMEM;
    char *copy = cp__strndup(k->s, k->len);
    if (!copy)
        return CP_ENOMEM;
    if (cp__htab_insert(&st->index, h, (uint32_t)st->n) != CP_OK) {
        cp__free(copy);
        return CP_ENOMEM;
    }
    st->strs[st->n].s = copy;
    st->strs[st->n].len = k->len;
    st->bytes += k->len + 1;
    *id = (uint32_t)st->n++;
    return CP_OK;
}

int cp__pstr_intern(cp_profile *p, const char *s, bool capped, uint32_t *id)
{
    size_t len = strlen(s);
    if (len > UINT32_MAX - 1)
        return CP_EFULL;
    str_key k = {s, len};
    uint64_t h = cp__hash_bytes(s, len, 0);
    uint32_t found = cp__htab_find(&p->st.index, h, str_eq, &p->st, &k);
    if (found != CP__HTAB_NONE) {
        *id = found;
        return CP_OK;
    }
    if (capped && !str_fits(p, len))
        return CP_EFULL;
    return str_append(&p->st, &k, h, id);
}

static uint64_t func_hash(const cp__pfunc *f)
{
    uint64_t h = cp__hash_mix(0x66756e63, f->name);
    h = cp__hash_mix(h, f->system_name);
    h = cp__hash_mix(h, (uint64_t)f->start_line);
    return cp__hash_mix(h, f->filename);
}

static bool func_eq(const void *ctx, uint32_t id, const void *key)
{
    const cp__pfunc *a = &((const cp_profile *)ctx)->funcs[id], *b = key;
    return a->name == b->name && a->system_name == b->system_name && a->filename == b->filename &&
           a->start_line == b->start_line;
}

int cp__pfunc_intern(cp_profile *p, const cp__pfunc *f, bool capped, uint32_t *index)
{
    uint64_t h = func_hash(f);
    uint32_t found = cp__htab_find(&p->func_index, h, func_eq, p, f);
    if (found != CP__HTAB_NONE) {
        *index = found;
        return CP_OK;
    }
    if (capped && p->nfuncs + reserve(p) >= p->lim.max_functions)
        return CP_EFULL;
    if (cp__grow_array((void **)&p->funcs, &p->funcs_cap, p->nfuncs + 1, sizeof *p->funcs) != CP_OK ||
        cp__htab_insert(&p->func_index, h, (uint32_t)p->nfuncs) != CP_OK)
        return CP_ENOMEM;
    p->funcs[p->nfuncs] = *f;
    *index = (uint32_t)p->nfuncs++;
    return CP_OK;
}

static uint64_t loc_hash(const cp__ploc *l)
{
    uint64_t h = cp__hash_mix(0x6c6f63, ((uint64_t)l->map1 << 32) | l->func);
    return cp__hash_mix(h, (uint64_t)l->line);
}

static bool loc_eq(const void *ctx, uint32_t id, const void *key)
{
    const cp__ploc *a = &((const cp_profile *)ctx)->locs[id], *b = key;
    return a->func == b->func && a->map1 == b->map1 && a->line == b->line;
}

int cp__ploc_intern(cp_profile *p, const cp__ploc *l, bool capped, uint32_t *index)
{
    uint64_t h = loc_hash(l);
    uint32_t found = cp__htab_find(&p->loc_index, h, loc_eq, p, l);
    if (found != CP__HTAB_NONE) {
        *index = found;
        return CP_OK;
    }
    if (capped && p->nlocs + reserve(p) >= p->lim.max_locations)
        return CP_EFULL;
    if (cp__grow_array((void **)&p->locs, &p->locs_cap, p->nlocs + 1, sizeof *p->locs) != CP_OK ||
        cp__htab_insert(&p->loc_index, h, (uint32_t)p->nlocs) != CP_OK)
        return CP_ENOMEM;
    p->locs[p->nlocs] = *l;
    *index = (uint32_t)p->nlocs++;
    return CP_OK;
}

static bool map_eq(const void *ctx, uint32_t id, const void *key)
{
    return ((const cp_profile *)ctx)->maps[id].file == *(const uint32_t *)key;
}

/* Find or add the mapping whose file is string file. */
static int map_by_file(cp_profile *p, uint32_t file, uint32_t *map1)
{
    uint64_t h = cp__hash_mix(0x6d6170, file);
    uint32_t found = cp__htab_find(&p->map_index, h, map_eq, p, &file);
    if (found != CP__HTAB_NONE) {
        *map1 = found + 1;
        return CP_OK;
    }
    if (cp__grow_array((void **)&p->maps, &p->maps_cap, p->nmaps + 1, sizeof *p->maps) != CP_OK ||
        cp__htab_insert(&p->map_index, h, (uint32_t)p->nmaps) != CP_OK)
        return CP_ENOMEM;
    p->maps[p->nmaps].file = file;
    *map1 = (uint32_t)++p->nmaps;
    return CP_OK;
}

/* Kinds map to one generic mapping each, cached in kind_map1; native
 * frames with a module get one per module, up to CP__MAX_MODULE_MAPPINGS
 * (then the generic "[native]"). A module equal to a kind's name shares
 * that kind's mapping, which is harmless. */
int cp__pmap_intern(cp_profile *p, cp_frame_kind kind, const char *module, bool capped,
                    uint32_t *map1)
{
    *map1 = 0;
    if ((unsigned)kind == CP_FRAME_UNSPECIFIED || (unsigned)kind >= CP_FRAME__COUNT)
        return CP_OK;
    bool by_module = kind == CP_FRAME_NATIVE && module && module[0] &&
                     p->module_maps < CP__MAX_MODULE_MAPPINGS;
    if (!by_module && p->kind_map1[kind]) {
        *map1 = p->kind_map1[kind];
        return CP_OK;
    }
    uint32_t file;
    size_t before = p->nmaps;
    int rc = cp__pstr_intern(p, by_module ? module : cp_frame_kind_mapping(kind), capped, &file);
    if (rc == CP_OK)
        rc = map_by_file(p, file, map1);
    if (rc == CP_OK && by_module)
        p->module_maps += p->nmaps - before;
    if (rc == CP_OK && !by_module)
        p->kind_map1[kind] = *map1;
    return rc;
}

/* Release the string, function, location and mapping tables. */
void cp__ptables_free(cp_profile *p)
{
    for (size_t i = 0; i < p->st.n; i++)
        cp__free(p->st.strs[i].s);
    cp__free(p->st.strs);
    cp__htab_free(&p->st.index);
    cp__free(p->funcs);
    cp__htab_free(&p->func_index);
    cp__free(p->locs);
    cp__htab_free(&p->loc_index);
    cp__free(p->maps);
    cp__htab_free(&p->map_index);
    cp__free(p->fcache);
}

static uint32_t fcache_hash(const cp_frame *f)
{
    uint64_t h = cp__hash_mix((uintptr_t)f->name, (uintptr_t)f->filename);
    h = cp__hash_mix(cp__hash_mix(h, (uintptr_t)f->system_name), (uint64_t)f->line);
    h = cp__hash_mix(h, ((uint64_t)(uintptr_t)f->module << 4) ^ (uint64_t)f->kind);
    return (uint32_t)h;
}

/* Does location l sit in the mapping a frame of f's kind and module gets? */
static bool map_matches(const cp_profile *p, const cp__ploc *l, const cp_frame *f)
{
    if ((unsigned)f->kind == CP_FRAME_UNSPECIFIED || (unsigned)f->kind >= CP_FRAME__COUNT)
        return l->map1 == 0;
    if (l->map1 == 0)
        return false;
    if (l->map1 == p->kind_map1[f->kind])
        return f->kind != CP_FRAME_NATIVE || !f->module || !f->module[0];
    bool by_module = f->kind == CP_FRAME_NATIVE && f->module && f->module[0];
    return by_module && strcmp(p->st.strs[p->maps[l->map1 - 1].file].s, f->module) == 0;
}

static bool str_is(const cp_profile *p, uint32_t id, const char *s)
{
    return strcmp(p->st.strs[id].s, s) == 0;
}

/* Is e a cached location for f? */
static bool fcache_hit(const cp_profile *p, const cp__fcache_entry *e, const cp_frame *f)
{
    if (e->loc1 == 0 || e->name != f->name || e->file != f->filename ||
        e->module != f->module || e->kind != (uint32_t)f->kind)
        return false;
    /* The caller may have reused its buffers for other text since: check
     * the content, which is still much cheaper than hashing it. */
    const cp__ploc *l = &p->locs[e->loc1 - 1];
    const cp__pfunc *fn = &p->funcs[l->func];
    if (l->line != f->line || fn->start_line != f->start_line || !map_matches(p, l, f) ||
        !str_is(p, fn->name, f->name) ||
        !str_is(p, fn->filename, f->filename ? f->filename : ""))
        return false;
    if (f->system_name)
        return str_is(p, fn->system_name, f->system_name);
    return fn->system_name == fn->name || fn->system_name == 0;
}

/* Linear probing from the frame's hash; an empty slot ends the search. */
bool cp__fcache_get(const cp_profile *p, const cp_frame *f, uint32_t *loc)
{
    if (!p->fcache)
        return false;
    uint32_t h = fcache_hash(f);
    for (size_t i = h & p->fcache_mask;; i = (i + 1) & p->fcache_mask) {
        const cp__fcache_entry *e = &p->fcache[i];
        if (e->loc1 == 0)
            return false;
        if (e->hash == h && fcache_hit(p, e, f)) {
            *loc = e->loc1 - 1;
            return true;
        }
    }
}

static void fcache_place(cp__fcache_entry *slots, size_t mask, const cp__fcache_entry *e)
{
    size_t i = e->hash & mask;
    while (slots[i].loc1 != 0)
        i = (i + 1) & mask;
    slots[i] = *e;
}

/* Double the index (or create it); false when out of memory. */
static bool fcache_grow(cp_profile *p)
{
    size_t cap = p->fcache ? (p->fcache_mask + 1) * 2 : CP__FCACHE_SIZE;
    cp__fcache_entry *slots = cp__calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; p->fcache && i <= p->fcache_mask; i++)
        if (p->fcache[i].loc1)
            fcache_place(slots, cap - 1, &p->fcache[i]);
    cp__free(p->fcache);
    p->fcache = slots;
    p->fcache_mask = cap - 1;
    return true;
}

/* A frame whose pointers were cached for other text (a reused buffer)
 * gets a second entry after the stale one: both stay correct. */
void cp__fcache_put(cp_profile *p, const cp_frame *f, uint32_t loc)
{
    if (p->fcache_n >= p->lim.max_locations)
        return;
    if ((!p->fcache || (p->fcache_n + 1) * 2 > p->fcache_mask + 1) && !fcache_grow(p))
        return;
    cp__fcache_entry e = {f->name, f->filename, f->module, loc + 1, (uint32_t)f->kind, fcache_hash(f)};
    fcache_place(p->fcache, p->fcache_mask, &e);
    p->fcache_n++;
}
