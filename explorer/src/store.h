/*
 * store.h — the explorer's storage: a SQLite index (one row per profile)
 * and the original pprof bytes as files under the data directory.
 *
 * Layout of --data DIR:  index.sqlite3, pprof/<digest>.pprof.gz, lock
 * (flock: one explorer per data directory)
 * A profile is stored as: blob to a temp file, fsync, rename; then one row
 * inserted in a transaction. A crash in between leaves at most an unindexed
 * blob (swept at the next open), never a row without its blob.
 */
#ifndef EX_STORE_H
#define EX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contprof.h"

typedef struct sqlite3 sqlite3;
typedef struct ex_store ex_store;

/* What the index knows of one profile. Strings are borrowed for
 * ex_store_add (never NULL; "" when unknown). Measures are NAN when the
 * profile lacks the data (stored as NULL). */
typedef struct ex_meta {
    const char *service, *env, *version, *host, *runtime, *runtime_version;
    const char *language, *family, *runtime_id, *tags, *source;
    int64_t pid;                 /* 0 = unknown */
    int64_t start_ns, end_ns;    /* Unix ns */
    const char *types_json;      /* [{"type":..,"unit":..,"total":..},..] */
    const char *default_type;
    const char *info_json;       /* runtime info object, "{}" if none */
    int64_t samples;             /* pprof samples (distinct stacks) */
    int64_t sample_count;        /* sum of the *-samples count types */
    double cpu_cores, alloc_rate, live_heap, threads;
    double m_samples_taken, m_samples_dropped, m_upload_failures, m_overhead_pct;
} ex_meta;

/* What the free-text search matches (SQL over a profiles row): tags and
 * every facet value; indexed by trigrams in profiles_fts (rowid = id). */
#define EX_STORE_SEARCH_TEXT \
    "(tags||' '||service||' '||env||' '||version||' '||host||' '||runtime||' '||language||' '||runtime_id)"

/* Open (creating) the store under dir. Returns NULL with a one-line
 * reason in err. The store is safe to use from several threads. */
ex_store *ex_store_open(const char *dir, char *err, size_t errlen);
/* Close the database, release the data-directory lock, free st (NULL
 * is ignored). No request may still be using it. */
void ex_store_close(ex_store *st);

/* Store one profile: blob bytes (the original pprof, usually gzip'd) and
 * its metadata. Identical bytes are stored once: *dup is set and *id is
 * the existing row. Returns CP_OK or an error with a reason in err;
 * nothing is left half-written on error. */
int ex_store_add(ex_store *st, const ex_meta *m, const uint8_t *blob, size_t len,
                 int64_t *id, bool *dup, char *err, size_t errlen);

/* Read the stored blob of profile id into out (appended). CP_EINVAL when
 * there is no such profile, CP_EIO when the file cannot be read. */
int ex_store_read_blob(ex_store *st, int64_t id, cp_buf *out);

/* Was this import source (path with size and mtime) already taken?
 * And record that it was. Used by the importer to skip files quickly. */
bool ex_store_seen(ex_store *st, const char *path, int64_t size, int64_t mtime);
void ex_store_mark_seen(ex_store *st, const char *path, int64_t size, int64_t mtime);

/* Number of profiles indexed. */
int64_t ex_store_count(ex_store *st);

/* Delete one profile / every profile of a service (rows, search
 * entries, blobs). Returns how many were deleted, -1 on a database error. */
int64_t ex_store_delete(ex_store *st, int64_t id);
int64_t ex_store_delete_service(ex_store *st, const char *service);

/* Retention: delete profiles that ended more than max_age_s ago, then
 * the oldest until the blobs total at most max_bytes (0 = no limit for
 * either). Returns how many were deleted. */
int64_t ex_store_retain(ex_store *st, int64_t max_age_s, int64_t max_bytes);
/* A number that changes whenever a profile is added or deleted (since
 * this process opened the store): keys of cached results include it. */
int64_t ex_store_generation(ex_store *st);
/* Durability on (default) or off: tests that store thousands of
 * profiles turn fsync off; the explorer itself never does. */
void ex_store_set_sync(ex_store *st, bool sync);
/* Bytes of stored blobs. */
int64_t ex_store_bytes(ex_store *st);

/* Read access for the query layer: hold the lock while using the handle
 * and any statement prepared on it. */
sqlite3 *ex_store_lock(ex_store *st);
void ex_store_unlock(ex_store *st);

#endif /* EX_STORE_H */
