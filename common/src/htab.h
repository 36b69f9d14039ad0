/*
 * htab.h — an open-addressing index from a hash to a dense 32-bit id.
 *
 * The table stores only (hash, id) pairs; the keys themselves live in the
 * owner's arrays, and lookups compare through a callback. Used to intern
 * strings, functions, locations and samples in profiles and the summary.
 */
#ifndef CP_HTAB_H
#define CP_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cp__htab_slot {
    uint32_t hash; /* low 32 bits of the key's hash */
    uint32_t id1;  /* id + 1; 0 = empty slot         */
} cp__htab_slot;

typedef struct cp__htab {
    cp__htab_slot *slots;
    size_t mask;  /* capacity - 1 (capacity is a power of two), 0 if none */
    size_t count;
} cp__htab;

/* Does the entry with this id equal key? */
typedef bool (*cp__htab_eq)(const void *ctx, uint32_t id, const void *key);

#define CP__HTAB_NONE UINT32_MAX

/* An empty table; allocates on the first insert. */
void cp__htab_init(cp__htab *t);
void cp__htab_free(cp__htab *t);

/* The id of the entry equal to key, or CP__HTAB_NONE. */
uint32_t cp__htab_find(const cp__htab *t, uint64_t hash, cp__htab_eq eq, const void *ctx,
                       const void *key);

/* Record id under hash (the caller checked it is absent). Grows the table
 * at 70% load; CP_ENOMEM (table unchanged) when that fails. */
int cp__htab_insert(cp__htab *t, uint64_t hash, uint32_t id);

/* Hashing helpers: bytes (word at a time), and a mixer for fixed-size keys. */
uint64_t cp__hash_bytes(const void *data, size_t n, uint64_t seed);
static inline uint64_t cp__hash_mix(uint64_t h, uint64_t v)
{
    h = (h ^ (v + 0x9e3779b97f4a7c15ULL)) * 0xff51afd7ed558ccdULL;
    return h ^ (h >> 32); /* fold high bits down: the table uses the low ones */
}

#endif /* CP_HTAB_H */
