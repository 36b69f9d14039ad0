/*
 * frame_dict.c — cp_frame_dict: frames interned once to small integer ids.
 *
 * A front end resolves a raw frame (code object + offset, jmethodID + bci)
 * to a cp_frame once, interns it here and from then on adds samples as id
 * arrays (cp_profile_add_ids, cp_add_sample_ids): no string is hashed or
 * compared per frame on the sampling path. Ids are 1-based, dense, stable
 * for the dictionary's life, and equal frames (by content) share an id.
 *
 * Entries live in fixed-size chunks that never move, and the count is
 * published after an entry is complete, so an id handed out always reads
 * a whole frame, even in a child forked while another thread was
 * interning (the hash index is then rebuilt, see cp__frame_dict_after_fork).
 * Caps: max_frames entries and max_bytes of strings; past them interning
 * answers CP_EFULL with the id of a "[frame dictionary full]" pseudo-frame
 * (always id 1), so samples still count. Not thread-safe: the owner
 * serialises calls (the collector under its lock).
 */
#include <string.h>

#include "alloc.h"
#include "frame_dict.h"
#include "htab.h"

enum {
    CHUNK_SHIFT = 12,
    CHUNK = 1u << CHUNK_SHIFT, /* entries per chunk */
    DEFAULT_MAX_FRAMES = 1u << 20,
    DEFAULT_MAX_BYTES = 64u << 20,
};

struct cp_frame_dict {
    cp_frame **chunks;  /* nchunks pointers, allocated up front */
    size_t nchunks;
    uint32_t n;         /* published entries                    */
    size_t max_frames, max_bytes, bytes;
    cp__htab index;
    bool writing;       /* inside intern: the index may be torn */
};

static const char full_name[] = "[frame dictionary full]";

static cp_frame *slot(const cp_frame_dict *d, uint32_t i)
{
    return &d->chunks[i >> CHUNK_SHIFT][i & (CHUNK - 1)];
}

const cp_frame *cp__frame_dict_get(const cp_frame_dict *d, uint32_t id)
{
    return id >= 1 && id <= d->n ? slot(d, id - 1) : NULL;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool frame_eq(const void *ctx, uint32_t i, const void *key)
{
    const cp_frame *a = slot(ctx, i), *b = key;
    return a->line == b->line && a->start_line == b->start_line && a->kind == b->kind &&
           strcmp(a->name, b->name) == 0 &&
           same_str(a->system_name, b->system_name) && same_str(a->filename, b->filename) &&
           same_str(a->module, b->module);
}

static uint64_t str_hash(const char *s, uint64_t seed)
{
    return s ? cp__hash_bytes(s, strlen(s), seed) : cp__hash_mix(seed, 0x6e756c6c);
}

static uint64_t frame_hash(const cp_frame *f)
{
    uint64_t h = cp__hash_mix((uint64_t)f->line, (uint64_t)f->kind);
    h = cp__hash_mix(h, (uint64_t)f->start_line);
    h = str_hash(f->name, h);
    h = str_hash(f->system_name, h);
    h = str_hash(f->filename, h);
    return str_hash(f->module, h);
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static size_t frame_bytes(const cp_frame *f)
{
    return str_size(f->name) + str_size(f->system_name) + str_size(f->filename) +
           str_size(f->module);
}

static void free_entry(cp_frame *e)
{
    cp__free((void *)(uintptr_t)e->name);
    cp__free((void *)(uintptr_t)e->system_name);
    cp__free((void *)(uintptr_t)e->filename);
    cp__free((void *)(uintptr_t)e->module);
}

/* Copy f's strings into e; CP_ENOMEM leaves e empty. */
static int copy_entry(cp_frame *e, const cp_frame *f)
{
    *e = (cp_frame){cp__strdup(f->name), cp__strdup(f->system_name), cp__strdup(f->filename),
                    f->line, f->kind, cp__strdup(f->module), f->start_line};
    if (!e->name || (f->system_name && !e->system_name) || (f->filename && !e->filename) ||
        (f->module && !e->module)) {
        free_entry(e);
        *e = (cp_frame){0};
        return CP_ENOMEM;
    }
    return CP_OK;
}

/* Append f (no cap checks) as the next id. */
static int append(cp_frame_dict *d, const cp_frame *f, uint64_t h, uint32_t *id)
{
    uint32_t i = d->n;
    size_t c = i >> CHUNK_SHIFT;
    if (!d->chunks[c] && !(d->chunks[c] = cp__calloc(CHUNK, sizeof(cp_frame))))
        return CP_ENOMEM;
    cp_frame *e = slot(d, i);
    if (copy_entry(e, f) != CP_OK)
        return CP_ENOMEM;
    if (cp__htab_insert(&d->index, h, i) != CP_OK) {
        free_entry(e);
        *e = (cp_frame){0};
        return CP_ENOMEM;
    }
    d->bytes += frame_bytes(f);
    __atomic_store_n(&d->n, i + 1, __ATOMIC_RELEASE); /* publish: the entry is complete */
    *id = i + 1;
    return CP_OK;
}

/* A dictionary for at most max_frames frames (0: 1 Mi) and max_bytes of
 * frame text (0: 64 MiB). NULL when out of memory. Owned by the caller. */
cp_frame_dict *cp_frame_dict_new(size_t max_frames, size_t max_bytes)
{
    cp_frame_dict *d = cp__calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->max_frames = max_frames ? max_frames : DEFAULT_MAX_FRAMES;
    if (d->max_frames > UINT32_MAX - 1)
        d->max_frames = UINT32_MAX - 1;
    d->max_bytes = max_bytes ? max_bytes : DEFAULT_MAX_BYTES;
    d->nchunks = (d->max_frames + CHUNK) >> CHUNK_SHIFT; /* + the "full" frame */
    d->chunks = cp__calloc(d->nchunks, sizeof *d->chunks);
    cp__htab_init(&d->index);
    static const cp_frame full = {full_name, NULL, NULL, 0, CP_FRAME_PSEUDO, NULL};
    uint32_t id;
    if (!d->chunks || append(d, &full, frame_hash(&full), &id) != CP_OK) {
        cp_frame_dict_free(d);
        return NULL;
    }
    return d;
}

void cp_frame_dict_free(cp_frame_dict *d)
{
    if (!d)
        return;
    for (uint32_t i = 0; i < d->n; i++)
        free_entry(slot(d, i));
    for (size_t c = 0; d->chunks && c < d->nchunks; c++)
        cp__free(d->chunks[c]);
    cp__free(d->chunks);
    cp__htab_free(&d->index);
    cp__free(d);
}

/* See contprof.h. */
int cp_frame_dict_intern(cp_frame_dict *d, const cp_frame *f, uint32_t *id)
{
    if (!d || !f || !f->name || !id)
        return CP_EINVAL;
    uint64_t h = frame_hash(f);
    uint32_t found = cp__htab_find(&d->index, h, frame_eq, d, f);
    if (found != CP__HTAB_NONE) {
        *id = found + 1;
        return CP_OK;
    }
    *id = 1; /* "[frame dictionary full]" unless appended below */
    if (d->n - 1 >= d->max_frames || d->bytes + frame_bytes(f) > d->max_bytes)
        return CP_EFULL;
    d->writing = true;
    int rc = append(d, f, h, id);
    d->writing = false;
    if (rc != CP_OK)
        *id = 1;
    return rc;
}

size_t cp_frame_dict_size(const cp_frame_dict *d)
{
    return d ? d->n : 0;
}

void cp__frame_dict_after_fork(cp_frame_dict *d)
{
    if (!d || !d->writing)
        return;
    cp__htab fresh;
    cp__htab_init(&fresh);
    for (uint32_t i = 0; i < d->n; i++)
        if (cp__htab_insert(&fresh, frame_hash(slot(d, i)), i) != CP_OK)
            return; /* keep the old index: lookups may miss, ids stay valid */
    d->index = fresh; /* the torn one is abandoned */
    d->writing = false;
}
