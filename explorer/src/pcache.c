/*
 * pcache.c — the decoded-profile cache (pcache.h): a short array scanned
 * linearly (a few dozen entries at most), one mutex. Decoding happens
 * outside the lock; two requests racing for the same id may both decode,
 * and the second copy is simply dropped.
 */
#include "pcache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define SLOTS 64

struct ex_pcache_ref {
    int64_t id;
    cp_pprof *pp;
    size_t bytes;
    int refs;       /* users + 1 while cached */
    bool cached;
    uint64_t used;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static ex_pcache_ref *slots[SLOTS];
static size_t held, limit = EX_PCACHE_DEFAULT_BYTES;
static uint64_t stamp;

static void unref(ex_pcache_ref *r) /* lock held */
{
    if (--r->refs > 0) return;
    cp_pprof_free(r->pp);
    free(r);
}

static void evict(size_t i) /* lock held */
{
    ex_pcache_ref *r = slots[i];
    slots[i] = NULL;
    held -= r->bytes;
    r->cached = false;
    unref(r);
}

static int lookup(int64_t id) /* lock held */
{
    for (int i = 0; i < SLOTS; i++)
        if (slots[i] && slots[i]->id == id) return i;
    return -1;
}

/* Keep r, evicting the least recently used until it fits. Lock held. */
static void insert(ex_pcache_ref *r)
{
    if (r->bytes > limit / 4 || lookup(r->id) >= 0) return;
    for (;;) {
        int free_i = -1, lru = -1;
        for (int i = 0; i < SLOTS; i++) {
            if (!slots[i]) { if (free_i < 0) free_i = i; continue; }
            if (lru < 0 || slots[i]->used < slots[lru]->used) lru = i;
        }
        if (free_i >= 0 && held + r->bytes <= limit) {
            slots[free_i] = r;
            held += r->bytes;
            r->cached = true;
            r->refs++;
            return;
        }
        if (lru < 0) return;
        evict((size_t)lru);
    }
}

/* Decoded structures take a few times the inflated bytes. */
static size_t estimate(const cp_buf *blob)
{
    const uint8_t *d = blob->data;
    size_t n = blob->len, raw = n;
    if (n >= 18 && d[0] == 0x1f && d[1] == 0x8b)
        raw = (size_t)d[n - 4] | (size_t)d[n - 3] << 8 | (size_t)d[n - 2] << 16 | (size_t)d[n - 1] << 24;
    return raw * 3 + 4096;
}

int ex_pcache_get(ex_store *st, int64_t id, size_t max_inflated, const cp_pprof **pp, ex_pcache_ref **ref)
{
    pthread_mutex_lock(&mu);
    int i = lookup(id);
    if (i >= 0) {
        slots[i]->refs++;
        slots[i]->used = ++stamp;
        *ref = slots[i];
        *pp = slots[i]->pp;
        pthread_mutex_unlock(&mu);
        return CP_OK;
    }
    pthread_mutex_unlock(&mu);
    cp_buf b;
    cp_buf_init(&b, 0);
    cp_pprof *dec = NULL;
    int rc = ex_store_read_blob(st, id, &b);
    if (rc == CP_OK) rc = cp_pprof_decode(b.data, b.len, max_inflated, &dec);
    ex_pcache_ref *r = rc == CP_OK ? calloc(1, sizeof *r) : NULL;
    if (rc == CP_OK && !r) rc = CP_ENOMEM;
    if (rc != CP_OK) {
        if (dec) cp_pprof_free(dec);
        cp_buf_free(&b);
        return rc;
    }
    *r = (ex_pcache_ref){.id = id, .pp = dec, .bytes = estimate(&b), .refs = 1};
    cp_buf_free(&b);
    pthread_mutex_lock(&mu);
    r->used = ++stamp;
    insert(r);
    pthread_mutex_unlock(&mu);
    *ref = r;
    *pp = dec;
    return CP_OK;
}

void ex_pcache_release(ex_pcache_ref *ref)
{
    if (!ref) return;
    pthread_mutex_lock(&mu);
    unref(ref);
    pthread_mutex_unlock(&mu);
}

void ex_pcache_forget(int64_t id)
{
    pthread_mutex_lock(&mu);
    int i = lookup(id);
    if (i >= 0) evict((size_t)i);
    pthread_mutex_unlock(&mu);
}

size_t ex_pcache_bytes(void)
{
    pthread_mutex_lock(&mu);
    size_t h = held;
    pthread_mutex_unlock(&mu);
    return h;
}
