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

/* Bytes kept free in the string table for "[overflow]" (with its NUL). */
enum { OVERFLOW_NAME_SIZE = sizeof "[overflow]" };

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
    if (p->st.n + reserve(p) >= p->lim.max_strings)
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
    return cp__hash_mix(h, f->filename);
}

static bool func_eq(const void *ctx, uint32_t id, const void *key)
{
    const cp__pfunc *a = &((const cp_profile *)ctx)->funcs[id], *b = key;
    return a->name == b->name && a->system_name == b->system_name && a->filename == b->filename;
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
    return cp__hash_mix(cp__hash_mix(0x6c6f63, l->func), (uint64_t)l->line);
}

static bool loc_eq(const void *ctx, uint32_t id, const void *key)
{
    const cp__ploc *a = &((const cp_profile *)ctx)->locs[id], *b = key;
    return a->func == b->func && a->line == b->line;
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

/* Release the string, function and location tables. */
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
    cp__free(p->fcache);
}

static size_t fcache_slot(const cp_frame *f)
{
    uint64_t h = cp__hash_mix((uintptr_t)f->name, (uintptr_t)f->filename);
    h = cp__hash_mix(cp__hash_mix(h, (uintptr_t)f->system_name), (uint64_t)f->line);
    return h & (CP__FCACHE_SIZE - 1);
}

static bool str_is(const cp_profile *p, uint32_t id, const char *s)
{
    return strcmp(p->st.strs[id].s, s) == 0;
}

/* Is e a cached location for f? */
static bool fcache_hit(const cp_profile *p, const cp__fcache_entry *e, const cp_frame *f)
{
    if (e->loc1 == 0 || e->name != f->name || e->file != f->filename)
        return false;
    /* The caller may have reused its buffers for other text since: check
     * the content, which is still much cheaper than hashing it. */
    const cp__ploc *l = &p->locs[e->loc1 - 1];
    const cp__pfunc *fn = &p->funcs[l->func];
    if (l->line != f->line || !str_is(p, fn->name, f->name) ||
        !str_is(p, fn->filename, f->filename ? f->filename : ""))
        return false;
    return f->system_name ? str_is(p, fn->system_name, f->system_name)
                          : fn->system_name == fn->name;
}

/* Two-way: a frame may sit in its slot or the slot's pair (slot ^ 1). */
bool cp__fcache_get(const cp_profile *p, const cp_frame *f, uint32_t *loc)
{
    if (!p->fcache)
        return false;
    size_t s = fcache_slot(f);
    const cp__fcache_entry *e = &p->fcache[s];
    if (!fcache_hit(p, e, f) && !fcache_hit(p, e = &p->fcache[s ^ 1], f))
        return false;
    *loc = e->loc1 - 1;
    return true;
}

void cp__fcache_put(cp_profile *p, const cp_frame *f, uint32_t loc)
{
    if (!p->fcache)
        return;
    size_t s = fcache_slot(f);
    /* Fill an empty way; else evict the pair's second way, moving the
     * first there, so the newest entry is found first. */
    cp__fcache_entry *e = &p->fcache[s];
    if (e->loc1 != 0)
        p->fcache[s ^ 1] = *e;
    e->name = f->name;
    e->file = f->filename;
    e->loc1 = loc + 1;
}
