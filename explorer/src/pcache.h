/*
 * pcache.h — decoded profiles kept for repeated views (a profile page asks
 * for flame, table and analysis of the same profile; a second look at it
 * should not gunzip and decode again). LRU, bounded by an estimate of the
 * decoded size; entries are reference-counted so one can be evicted while
 * a request still uses it.
 */
#ifndef EX_PCACHE_H
#define EX_PCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "contprof.h"
#include "store.h"

#define EX_PCACHE_DEFAULT_BYTES (64u * 1024 * 1024)

typedef struct ex_pcache_ref ex_pcache_ref;

/* The decoded profile id, from the cache or read and decoded now (and
 * kept). CP_OK with *pp and *ref set (release with ex_pcache_release),
 * CP_EINVAL no such profile, CP_EIO unreadable, or a decoder error. */
int ex_pcache_get(ex_store *st, int64_t id, size_t max_inflated, const cp_pprof **pp, ex_pcache_ref **ref);
void ex_pcache_release(ex_pcache_ref *ref);
/* Forget id (deleted). */
void ex_pcache_forget(int64_t id);
/* Bytes the cache holds by its estimate (tests, logs). */
size_t ex_pcache_bytes(void);

#endif /* EX_PCACHE_H */
