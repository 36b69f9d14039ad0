/*
 * profile_internal.h — the layout of cp_profile, shared by the aggregation
 * code (profile.c, profile_tables.c), the pprof encoder and the summary.
 *
 * Ids: strings are indexed from 0 (string 0 is ""); functions and locations
 * are stored at index id-1, so their pprof ids are 1-based and follow
 * insertion order. Samples keep their insertion order too, which makes the
 * encoded output deterministic.
 */
#ifndef CP_PROFILE_INTERNAL_H
#define CP_PROFILE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "contprof.h"
#include "htab.h"

enum {
    CP__MAX_FRAMES_HARD = 599, /* the intake takes 600 locations per sample */
    CP__MAX_TYPES = 64,
    CP__MAX_LABELS = 64,       /* labels per sample */
    CP__MAX_COMMENTS = 256,
    CP__FCACHE_SIZE = 4096,    /* frame index: first size (power of two) */
    CP__MAX_MODULE_MAPPINGS = 4096, /* then native frames share "[native]" */
    CP__SCACHE_SIZE = 64,      /* label string cache slots (power of two) */
    CP__STACKC_MAX_BYTES = 16 << 20, /* id-stack cache keys, at most */
};

/* Id-stack cache key (profile_stackcache.c): a stack of dictionary ids
 * and raw labels added before, and the sample it went to. One allocation:
 * the labels, then the n ids. */
typedef struct cp__stackc_label {
    const char *key, *str, *unit; /* the caller's pointers            */
    int64_t num;
    uint32_t key_id, str_id, unit_id; /* their text, to confirm a hit */
} cp__stackc_label;

typedef struct cp__psample cp__psample;
typedef struct cp__stackc_key {
    cp__psample *sample; /* samples never move once created */
    uint32_t n, nlabels;
    cp__stackc_label labels[];
} cp__stackc_key;

/* Label string cache slot: a caller's string pointer seen before and its
 * string id + 1; a hit is confirmed by comparing the text. */
typedef struct cp__scache_entry {
    const char *s;
    uint32_t id1;
} cp__scache_entry;

typedef struct cp__pfunc {
    uint32_t name, system_name, filename; /* string ids */
    int64_t start_line;                   /* 0 = unknown */
} cp__pfunc;

typedef struct cp__ploc {
    uint32_t func; /* function index (id - 1) */
    uint32_t map1; /* mapping index + 1; 0 = no mapping (kind unspecified) */
    int64_t line;
} cp__ploc;

/* A mapping: one per frame kind, one per native module (see
 * cp_frame_kind_mapping). Only its file name is meaningful. */
typedef struct cp__pmap {
    uint32_t file; /* string id */
} cp__pmap;

typedef struct cp__plabel {
    uint32_t key, str, unit; /* string ids; str 0 = numeric label */
    int64_t num;
} cp__plabel;

/* One sample in a single allocation: the values (ntypes of them), then
 * nlabels labels, then nlocs location indexes (id - 1), leaf first. */
struct cp__psample {
    uint32_t nlocs, nlabels;
    uint64_t hash;
    int64_t values[];
};

typedef struct cp__pstr {
    char *s; /* owned, NUL-terminated */
    size_t len;
} cp__pstr;

typedef struct cp__strtab {
    cp__pstr *strs;
    size_t n, cap, bytes; /* bytes: sum of len+1 */
    cp__htab index;
} cp__strtab;

/* Frame index slot: the caller's string pointers of a frame seen before
 * and the location it interned to. Pointers only pick the slot; a hit is
 * confirmed by comparing contents (see cp__fcache_get). */
typedef struct cp__fcache_entry {
    const char *name, *file, *module;
    uint32_t loc1; /* location index + 1; 0 = empty */
    uint32_t kind;
    uint32_t hash; /* of the pointers, line and kind (cp__fcache_get) */
} cp__fcache_entry;

struct cp_profile {
    cp_limits lim;
    size_t ntypes;
    uint32_t *type_strs; /* 2 * ntypes: type, unit */
    cp__strtab st;
    cp__pfunc *funcs;
    size_t nfuncs, funcs_cap;
    cp__htab func_index;
    cp__ploc *locs;
    size_t nlocs, locs_cap;
    cp__htab loc_index;
    cp__pmap *maps;
    size_t nmaps, maps_cap, module_maps;
    cp__htab map_index;
    uint32_t kind_map1[CP_FRAME__COUNT]; /* generic mapping of each kind */
    cp__fcache_entry *fcache; /* open addressing, fcache_mask + 1 slots */
    size_t fcache_mask, fcache_n; /* NULL/0 until the first put        */
    cp__scache_entry scache[CP__SCACHE_SIZE];
    uint32_t *id_loc;         /* cp_frame_dict id -> location index + 1 */
    cp__htab stackc_index;    /* id-stack cache: hash -> stackc_keys[] */
    cp__stackc_key **stackc_keys;
    size_t stackc_n, stackc_cap, stackc_bytes;
    size_t id_loc_cap;
    size_t omit_n;            /* last "<N frames omitted>": N and ...   */
    uint32_t omit_loc1;       /* ... its location index + 1             */
    cp__psample **samples;
    size_t nsamples, samples_cap;
    cp__htab sample_index;
    long overflow; /* index of the "[overflow]" sample, -1 until needed */
    uint32_t *comments;
    size_t ncomments, comments_cap;
    int64_t time_ns, duration_ns, period;
    uint32_t period_type[2]; /* string ids; 0,0 = not set */
    uint64_t adds, overflowed;
};

static inline cp__plabel *cp__sample_labels(const cp_profile *p, const cp__psample *s)
{
    return (cp__plabel *)(void *)((char *)(void *)s + sizeof *s + p->ntypes * sizeof(int64_t));
}

static inline uint32_t *cp__sample_locs(const cp_profile *p, const cp__psample *s)
{
    return (uint32_t *)(void *)(cp__sample_labels(p, s) + s->nlabels);
}

/* Grow the array *arr of *cap elements of size elem to hold need of them
 * (doubling). CP_ENOMEM leaves it unchanged. */
int cp__grow_array(void **arr, size_t *cap, size_t need, size_t elem);

/* Interning. "capped" entries respect the limits and keep room for the
 * "[overflow]" entries while those do not exist yet (CP_EFULL when full);
 * uncapped ones (sample types, comments, the overflow entries) bypass the
 * caps. The new or existing id goes to *id. CP_ENOMEM on allocation
 * failure. */
int cp__pstr_intern(cp_profile *p, const char *s, bool capped, uint32_t *id);
int cp__pfunc_intern(cp_profile *p, const cp__pfunc *f, bool capped, uint32_t *index);
int cp__ploc_intern(cp_profile *p, const cp__ploc *l, bool capped, uint32_t *index);
/* The mapping of a frame of this kind and module (module only counts for
 * CP_FRAME_NATIVE) into *map1 (index + 1; 0 for an unspecified kind). */
int cp__pmap_intern(cp_profile *p, cp_frame_kind kind, const char *module, bool capped,
                    uint32_t *map1);
void cp__ptables_free(cp_profile *p);
/* Intern a label string through the cache keyed by the caller's pointer
 * (label keys and thread names repeat on every sample). */
int cp__intern_label_str(cp_profile *p, const char *s, uint32_t *id);

/* Frame index: the location index of a frame equal (by content) to f
 * that was interned before, found through the caller's string pointers;
 * false on a miss. cp__fcache_put records f -> loc; it grows the index
 * (at half load) up to max_locations entries, then (or out of memory)
 * records nothing: those frames are hashed by content on every add. */
bool cp__fcache_get(const cp_profile *p, const cp_frame *f, uint32_t *loc);
void cp__fcache_put(cp_profile *p, const cp_frame *f, uint32_t loc);

/* Saturating sums: a counter pinned at INT64_MAX is truer than a wrapped
 * negative one. */
static inline void cp__sum_values(int64_t *dst, const int64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (__builtin_add_overflow(dst[i], src[i], &dst[i]))
            dst[i] = src[i] < 0 ? INT64_MIN : INT64_MAX;
}

/* Id-stack cache: an index of every (ids, label pointers) key added to
 * this profile, up to max_samples keys and CP__STACKC_MAX_BYTES of them.
 * cp__stackc_hash hashes the raw key once; cp__stackc_add sums values
 * into the cached sample of an equal key (true) or misses (false);
 * cp__stackc_put records key -> sample after a slow-path add (silently
 * skipped when out of memory or at a cap). */
uint64_t cp__stackc_hash(const uint32_t *ids, size_t n, const cp_label *labels, size_t nlabels);
bool cp__stackc_add(cp_profile *p, uint64_t h, const uint32_t *ids, size_t n,
                    const cp_label *labels, size_t nlabels, const int64_t *values);
void cp__stackc_put(cp_profile *p, uint64_t h, const uint32_t *ids, size_t n,
                    const cp_label *labels, size_t nlabels, uint32_t sample);
void cp__stackc_free(cp_profile *p);

#endif /* CP_PROFILE_INTERNAL_H */
