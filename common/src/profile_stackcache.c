/*
 * profile_stackcache.c — the id-stack cache of cp_profile_add_ids.
 *
 * An always-on profiler adds the same few stacks over and over. This index
 * keys a sample by what the caller passed: the raw dictionary ids (hashed
 * once, compared with one memcmp) and the labels' pointers and numbers. A
 * hit sums the values into the sample and skips translation, label
 * interning and the sample table. Label pointers only pick the entry: a
 * hit is confirmed against the interned text, so a caller reusing a buffer
 * for another thread name cannot alias a sample.
 *
 * It is an index, not a fixed-size cache: every key added is kept (up to
 * max_samples keys and CP__STACKC_MAX_BYTES), so a service with thousands
 * of distinct stacks does not thrash it. It lives as long as the profile
 * (one upload period) and samples never move, so a key holds its sample's
 * address.
 */
#include <string.h>

#include "alloc.h"
#include "htab.h"
#include "profile_internal.h"

/* 64x64 -> 128-bit multiply folded to 64 bits: one instruction mixes two
 * words. Not a bijection; the hash only finds candidates (a hit is
 * confirmed by memcmp), so speed matters more than quality. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
    __extension__ typedef unsigned __int128 u128;
    u128 r = (u128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

#define K2 0x8ebc6af09c88c6e3ULL
#define K3 0x589965cc75374cc3ULL

/* Hash of the id array: two lanes, each step folding two 64-bit words
 * (four ids) into its lane. */
static inline uint64_t ids_hash(const uint32_t *ids, size_t n)
{
    uint64_t a = n ^ K2, b = K3, w, x, y, z;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, ids + i, 8);
        memcpy(&x, ids + i + 2, 8);
        memcpy(&y, ids + i + 4, 8);
        memcpy(&z, ids + i + 6, 8);
        a = mum(a ^ w, x ^ K2);
        b = mum(b ^ y, z ^ K3);
    }
    for (; i + 2 <= n; i += 2) {
        memcpy(&w, ids + i, 8);
        a = mum(a ^ w, K2);
    }
    if (i < n)
        a = mum(a ^ ids[i], K3);
    return a ^ (b * K2);
}

uint64_t cp__stackc_hash(const uint32_t *ids, size_t n, const cp_label *labels, size_t nlabels)
{
    uint64_t h = ids_hash(ids, n) ^ nlabels;
    for (size_t i = 0; i < nlabels; i++) {
        const cp_label *l = &labels[i];
        uint64_t v = l->str ? (uintptr_t)l->str
                            : (uint64_t)l->num ^ ((uint64_t)(uintptr_t)l->num_unit << 17);
        h = mum(h ^ (uintptr_t)l->key, v ^ K2);
    }
    return mum(h, K3) ^ h;
}

static inline bool text_is(const cp_profile *p, uint32_t id, const char *s)
{
    return strcmp(p->st.strs[id].s, s) == 0;
}

static inline bool label_matches(const cp_profile *p, const cp__stackc_label *e, const cp_label *l)
{
    if (e->key != l->key || e->str != l->str)
        return false;
    if (l->str)
        return text_is(p, e->key_id, l->key) && text_is(p, e->str_id, l->str);
    if (e->num != l->num || e->unit != l->num_unit)
        return false;
    return text_is(p, e->key_id, l->key) && (!l->num_unit || text_is(p, e->unit_id, l->num_unit));
}

static inline uint32_t *key_ids(cp__stackc_key *k)
{
    return (uint32_t *)(void *)(k->labels + k->nlabels);
}

static inline bool key_matches(const cp_profile *p, cp__stackc_key *k, const uint32_t *ids, size_t n,
                               const cp_label *labels, size_t nlabels)
{
    if (k->n != n || k->nlabels != nlabels || (n && memcmp(key_ids(k), ids, n * sizeof *ids) != 0))
        return false;
    for (size_t i = 0; i < nlabels; i++)
        if (!label_matches(p, &k->labels[i], &labels[i]))
            return false;
    return true;
}

bool cp__stackc_add(cp_profile *p, uint64_t h, const uint32_t *ids, size_t n,
                    const cp_label *labels, size_t nlabels, const int64_t *values)
{
    const cp__htab *t = &p->stackc_index;
    if (!t->slots)
        return false;
    uint32_t h32 = (uint32_t)h;
    for (size_t i = h32 & t->mask;; i = (i + 1) & t->mask) {
        const cp__htab_slot *s = &t->slots[i];
        if (s->id1 == 0)
            return false;
        cp__stackc_key *k;
        if (s->hash == h32 && key_matches(p, k = p->stackc_keys[s->id1 - 1], ids, n, labels, nlabels)) {
            cp__sum_values(k->sample->values, values, p->ntypes);
            return true;
        }
    }
}

/* Record the labels' pointers and interned text ids; false if one of
 * them cannot be interned (then nothing is cached). */
static bool put_labels(cp_profile *p, cp__stackc_key *k, const cp_label *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const cp_label *l = &labels[i];
        cp__stackc_label *c = &k->labels[i];
        *c = (cp__stackc_label){l->key, l->str, l->str ? NULL : l->num_unit, l->str ? 0 : l->num,
                                0, 0, 0};
        if (cp__intern_label_str(p, l->key, &c->key_id) != CP_OK ||
            (l->str && cp__intern_label_str(p, l->str, &c->str_id) != CP_OK) ||
            (c->unit && cp__intern_label_str(p, c->unit, &c->unit_id) != CP_OK))
            return false;
    }
    return true;
}

void cp__stackc_put(cp_profile *p, uint64_t h, const uint32_t *ids, size_t n,
                    const cp_label *labels, size_t nlabels, uint32_t sample)
{
    size_t size = sizeof(cp__stackc_key) + nlabels * sizeof(cp__stackc_label) + n * sizeof *ids;
    if ((long)sample == p->overflow || p->stackc_n >= p->lim.max_samples ||
        p->stackc_bytes + size > CP__STACKC_MAX_BYTES)
        return;
    cp__stackc_key *k = cp__malloc(size);
    if (!k)
        return; /* optional: this key then takes the full path every time */
    k->sample = p->samples[sample];
    k->n = (uint32_t)n;
    k->nlabels = (uint32_t)nlabels;
    if (n)
        memcpy(key_ids(k), ids, n * sizeof *ids);
    if (!put_labels(p, k, labels, nlabels) ||
        cp__grow_array((void **)&p->stackc_keys, &p->stackc_cap, p->stackc_n + 1,
                       sizeof *p->stackc_keys) != CP_OK ||
        cp__htab_insert(&p->stackc_index, h, (uint32_t)p->stackc_n) != CP_OK) {
        cp__free(k);
        return;
    }
    p->stackc_keys[p->stackc_n++] = k;
    p->stackc_bytes += size;
}

void cp__stackc_free(cp_profile *p)
{
    for (size_t i = 0; i < p->stackc_n; i++)
        cp__free(p->stackc_keys[i]);
    cp__free(p->stackc_keys);
    cp__htab_free(&p->stackc_index);
}
