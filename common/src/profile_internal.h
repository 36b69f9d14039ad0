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
    CP__FCACHE_SIZE = 8192,    /* frame cache slots (power of two), 2-way */
};

typedef struct cp__pfunc {
    uint32_t name, system_name, filename; /* string ids */
} cp__pfunc;

typedef struct cp__ploc {
    uint32_t func; /* function index (id - 1) */
    int64_t line;
} cp__ploc;

typedef struct cp__plabel {
    uint32_t key, str, unit; /* string ids; str 0 = numeric label */
    int64_t num;
} cp__plabel;

/* One sample in a single allocation: the values (ntypes of them), then
 * nlabels labels, then nlocs location indexes (id - 1), leaf first. */
typedef struct cp__psample {
    uint32_t nlocs, nlabels;
    uint64_t hash;
    int64_t values[];
} cp__psample;

typedef struct cp__pstr {
    char *s; /* owned, NUL-terminated */
    size_t len;
} cp__pstr;

typedef struct cp__strtab {
    cp__pstr *strs;
    size_t n, cap, bytes; /* bytes: sum of len+1 */
    cp__htab index;
} cp__strtab;

/* Frame cache slot: the caller's string pointers of a frame seen before
 * and the location it interned to. Pointers only pick and pre-check the
 * slot; a hit is confirmed by comparing contents (see cp__fcache_get). */
typedef struct cp__fcache_entry {
    const char *name, *file;
    uint32_t loc1; /* location index + 1; 0 = empty */
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
    cp__fcache_entry *fcache; /* CP__FCACHE_SIZE slots, NULL if none */
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
void cp__ptables_free(cp_profile *p);

/* Frame cache: the location index of a frame equal (by content) to f that
 * was interned before, found through the caller's string pointers; false
 * on a miss. cp__fcache_put records f -> loc. Both no-ops without a cache
 * (it is optional: allocated on first use, skipped if that fails). */
bool cp__fcache_get(const cp_profile *p, const cp_frame *f, uint32_t *loc);
void cp__fcache_put(cp_profile *p, const cp_frame *f, uint32_t loc);

#endif /* CP_PROFILE_INTERNAL_H */
