/*
 * pprof_internal.h — shared by the pprof decoder files (pprof_decode.c,
 * pprof_parse.c, pprof_index.c). Internal.
 *
 * A decoded cp_pprof lives in one arena (freed at once); the lookup
 * indexes by id are built after parsing.
 */
#ifndef CP_PPROF_INTERNAL_H
#define CP_PPROF_INTERNAL_H

#include "contprof.h"
#include "pb.h"

typedef struct cp__arena_chunk cp__arena_chunk;
typedef struct cp__arena {
    cp__arena_chunk *head;
    size_t used, budget; /* bytes handed out; cap on them (0 = none) */
    bool over_budget;    /* an allocation failed for the budget      */
} cp__arena;

/* n zeroed bytes, 16-byte aligned, owned by the arena; NULL when out of
 * memory, past the budget (over_budget is then set) or n is absurd. */
void *cp__arena_alloc(cp__arena *a, size_t n);
/* count * size bytes, NULL on overflow too. count 0 gives a non-NULL
 * pointer to nothing, without using memory. */
void *cp__arena_array(cp__arena *a, size_t count, size_t size);
void cp__arena_free(cp__arena *a);

typedef struct cp__id_slot {
    uint64_t id;
    size_t index;
} cp__id_slot;

typedef struct cp__pprof_priv {
    cp_pprof pub;               /* first: cp_pprof* casts to this */
    cp__arena arena;
    cp__id_slot *loc_sorted;    /* NULL when ids are dense 1-based */
    cp__id_slot *func_sorted;
    cp__id_slot *map_sorted;
    const char *default_type;   /* raw default_sample_type string */
    size_t n_types_read;        /* sample types parsed so far (pass 3) */
} cp__pprof_priv;

/* String at idx of the decoded table, or false if out of range. */
bool cp__pprof_str(const cp_pprof *pp, uint64_t idx, const char **out);

/* Parsers for the messages of profile.proto (pass 3 of the decoder);
 * each returns CP_OK or CP_ECORRUPT / CP_ENOMEM. */
int cp__pprof_parse_value_type(cp__pprof_priv *pp, cp__pbr r, cp_sample_type *out);
int cp__pprof_parse_sample(cp__pprof_priv *pp, cp__pbr r, cp_pprof_sample *out);
int cp__pprof_parse_location(cp__pprof_priv *pp, cp__pbr r, cp_pprof_location *out);
int cp__pprof_parse_function(cp__pprof_priv *pp, cp__pbr r, cp_pprof_function *out);
int cp__pprof_parse_mapping(cp__pprof_priv *pp, cp__pbr r, cp_pprof_mapping *out);

/* Build the id indexes and check every reference (sample → location,
 * line → function) and id uniqueness. CP_ECORRUPT on a dangling or
 * duplicate id. A location's mapping_file is resolved here; a dangling
 * mapping id is tolerated (mapping_file ""), as pprof readers do not need
 * mappings to show a profile. */
int cp__pprof_index(cp__pprof_priv *pp);

#endif /* CP_PPROF_INTERNAL_H */
