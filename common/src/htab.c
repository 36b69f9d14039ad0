/*
 * htab.c — open-addressing (linear probing) hash index of dense ids.
 *
 * Entries are never removed, so probing needs no tombstones. The table
 * keeps the 32-bit hash of each key to skip most key comparisons and to
 * rehash without touching the keys.
 */
#include "htab.h"

#include <string.h>

#include "alloc.h"
#include "contprof.h"

void cp__htab_init(cp__htab *t)
{
    t->slots = NULL;
    t->mask = 0;
    t->count = 0;
}

void cp__htab_free(cp__htab *t)
{
    cp__free(t->slots);
    cp__htab_init(t);
}

uint32_t cp__htab_find(const cp__htab *t, uint64_t hash, cp__htab_eq eq, const void *ctx,
                       const void *key)
{
    if (!t->slots)
        return CP__HTAB_NONE;
    uint32_t h = (uint32_t)hash;
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const cp__htab_slot *s = &t->slots[i];
        if (s->id1 == 0)
            return CP__HTAB_NONE;
        if (s->hash == h && eq(ctx, s->id1 - 1, key))
            return s->id1 - 1;
    }
}

/* Place (h, id1) in the first empty slot of its probe sequence. */
static void place(cp__htab_slot *slots, size_t mask, uint32_t h, uint32_t id1)
{
    size_t i = h & mask;
    while (slots[i].id1 != 0)
        i = (i + 1) & mask;
    slots[i].hash = h;
    slots[i].id1 = id1;
}

static int grow(cp__htab *t)
{
    size_t cap = t->slots ? (t->mask + 1) * 2 : 64;
    cp__htab_slot *slots = cp__calloc(cap, sizeof *slots);
    if (!slots)
        return CP_ENOMEM;
    if (t->slots) {
        for (size_t i = 0; i <= t->mask; i++)
            if (t->slots[i].id1)
                place(slots, cap - 1, t->slots[i].hash, t->slots[i].id1);
    }
    cp__free(t->slots);
    t->slots = slots;
    t->mask = cap - 1;
    return CP_OK;
}

int cp__htab_insert(cp__htab *t, uint64_t hash, uint32_t id)
{
    if (!t->slots || (t->count + 1) * 10 > (t->mask + 1) * 7) {
        int rc = grow(t);
        if (rc != CP_OK)
            return rc;
    }
    place(t->slots, t->mask, (uint32_t)hash, id + 1);
    t->count++;
    return CP_OK;
}

/* Eight bytes per step (a multiply-xorshift round per word): strings are
 * hashed on every cp_profile_add, so a byte-wise hash would dominate. */
uint64_t cp__hash_bytes(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL), g = ~seed, w, x;
    /* Two independent lanes (the multiplies overlap). Each step is a
     * bijection of the lane for a given word; the final avalanche spreads
     * every bit into the low bits the table uses. */
    for (; n >= 16; n -= 16, p += 16) {
        memcpy(&w, p, 8);
        memcpy(&x, p + 8, 8);
        h = ((h ^ w) * 0xbf58476d1ce4e5b9ULL) + (h >> 41);
        g = ((g ^ x) * 0x94d049bb133111ebULL) + (g >> 37);
    }
    for (; n >= 8; n -= 8, p += 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w ^ ((uint64_t)n << 56) ^ ((g << 17) | (g >> 47))) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 32);
}
