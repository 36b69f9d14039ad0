/*
 * store.c — SQLite index + blob files (see store.h for the layout and the
 * crash-safety argument). One mutex serialises every use of the database
 * handle; blob reads happen outside it.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct ex_store {
    sqlite3 *db;
    int lock_fd;        /* flock'd <dir>/lock: one explorer per data dir */
    pthread_mutex_t mu; /* protects db and every statement on it */
    char dir[PATH_MAX];
    char blobdir[PATH_MAX];
    int64_t generation; /* bumped by every add and delete (under mu) */
    bool no_sync;       /* tests only: skip fsync (see ex_store_set_sync) */
};

static const char *const SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS profiles("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, digest TEXT NOT NULL UNIQUE,"
    " service TEXT NOT NULL, env TEXT NOT NULL, version TEXT NOT NULL, host TEXT NOT NULL,"
    " runtime TEXT NOT NULL, runtime_version TEXT NOT NULL, language TEXT NOT NULL,"
    " family TEXT NOT NULL, runtime_id TEXT NOT NULL, pid INTEGER NOT NULL,"
    " start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, received_ns INTEGER NOT NULL,"
    " tags TEXT NOT NULL, source TEXT NOT NULL, pprof_bytes INTEGER NOT NULL,"
    " samples INTEGER NOT NULL, sample_count INTEGER NOT NULL,"
    " types TEXT NOT NULL, default_type TEXT NOT NULL,"
    " cpu_cores REAL, alloc_rate REAL, live_heap REAL, threads REAL,"
    " m_samples_taken REAL, m_samples_dropped REAL, m_upload_failures REAL, m_overhead_pct REAL,"
    " info TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS profiles_start ON profiles(start_ns);"
    "CREATE INDEX IF NOT EXISTS profiles_svc ON profiles(service, env, start_ns);"
    "CREATE TABLE IF NOT EXISTS imported(path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER);"
    /* Indexes for every facet (GROUP BY over an index, no table scan) and
     * sort column; a trigram full-text index for the free-text search. */
    "DROP INDEX IF EXISTS profiles_facets;"
    "CREATE INDEX IF NOT EXISTS profiles_facet_scan ON profiles(service, env, version, host, runtime, language,"
    " start_ns, end_ns);"
    "CREATE INDEX IF NOT EXISTS profiles_env ON profiles(env);"
    "CREATE INDEX IF NOT EXISTS profiles_version ON profiles(version);"
    "CREATE INDEX IF NOT EXISTS profiles_host ON profiles(host);"
    "CREATE INDEX IF NOT EXISTS profiles_runtime ON profiles(runtime);"
    "CREATE INDEX IF NOT EXISTS profiles_language ON profiles(language);"
    "CREATE INDEX IF NOT EXISTS profiles_end ON profiles(end_ns);"
    "CREATE INDEX IF NOT EXISTS profiles_cpu ON profiles(cpu_cores);"
    "CREATE INDEX IF NOT EXISTS profiles_alloc ON profiles(alloc_rate);"
    "CREATE INDEX IF NOT EXISTS profiles_received ON profiles(received_ns);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS profiles_fts USING fts5(text, tokenize='trigram');"
    "INSERT INTO profiles_fts(rowid, text) SELECT id, " EX_STORE_SEARCH_TEXT " FROM profiles"
    " WHERE (SELECT count(*) FROM profiles_fts) = 0;"
    /* Facet value counts over all profiles, kept by triggers: the list
     * without filters reads them instead of counting 100k rows. */
    "CREATE TABLE IF NOT EXISTS facet_counts(facet TEXT NOT NULL, value TEXT NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY(facet, value)) WITHOUT ROWID;"
    "INSERT INTO facet_counts SELECT f, v, count(*) FROM (SELECT 'service' AS f, service AS v FROM profiles UNION ALL SELECT 'env', env FROM profiles UNION ALL SELECT 'version', version FROM profiles UNION ALL SELECT 'host', host FROM profiles UNION ALL SELECT 'runtime', runtime FROM profiles UNION ALL SELECT 'language', language FROM profiles)"
    " WHERE (SELECT count(*) FROM facet_counts) = 0 GROUP BY 1, 2;"
    "CREATE TRIGGER IF NOT EXISTS profiles_facets_ins AFTER INSERT ON profiles BEGIN "
    "INSERT INTO facet_counts VALUES('service', NEW.service, 1) ON CONFLICT DO UPDATE SET n = n + 1;"
    "INSERT INTO facet_counts VALUES('env', NEW.env, 1) ON CONFLICT DO UPDATE SET n = n + 1;"
    "INSERT INTO facet_counts VALUES('version', NEW.version, 1) ON CONFLICT DO UPDATE SET n = n + 1;"
    "INSERT INTO facet_counts VALUES('host', NEW.host, 1) ON CONFLICT DO UPDATE SET n = n + 1;"
    "INSERT INTO facet_counts VALUES('runtime', NEW.runtime, 1) ON CONFLICT DO UPDATE SET n = n + 1;"
    "INSERT INTO facet_counts VALUES('language', NEW.language, 1) ON CONFLICT DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER IF NOT EXISTS profiles_facets_del AFTER DELETE ON profiles BEGIN "
    "UPDATE facet_counts SET n = n - 1 WHERE facet = 'service' AND value = OLD.service;"
    "UPDATE facet_counts SET n = n - 1 WHERE facet = 'env' AND value = OLD.env;"
    "UPDATE facet_counts SET n = n - 1 WHERE facet = 'version' AND value = OLD.version;"
    "UPDATE facet_counts SET n = n - 1 WHERE facet = 'host' AND value = OLD.host;"
    "UPDATE facet_counts SET n = n - 1 WHERE facet = 'runtime' AND value = OLD.runtime;"
    "UPDATE facet_counts SET n = n - 1 WHERE facet = 'language' AND value = OLD.language;"
    " DELETE FROM facet_counts WHERE n <= 0;"
    " END;"
    "PRAGMA user_version=3;";

static int index_text(ex_store *st, int64_t id)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "INSERT INTO profiles_fts(rowid, text) SELECT id, " EX_STORE_SEARCH_TEXT
                           " FROM profiles WHERE id=?", -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(s);
    return rc;
}

static uint64_t fnv1a(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Content digest: two independent 64-bit FNV-1a seeds plus the length;
 * it only needs to tell uploads apart, not resist an adversary. */
static void digest_of(const uint8_t *p, size_t n, char out[64])
{
    snprintf(out, 64, "%016llx%016llx-%zu", (unsigned long long)fnv1a(p, n, 0xcbf29ce484222325ULL),
             (unsigned long long)fnv1a(p, n, 0x84222325cbf29ce4ULL), n);
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *s = '/';
    }
    return (mkdir(tmp, 0755) && errno != EEXIST) ? -1 : 0;
}

static void blob_path(const ex_store *st, const char *digest, char *out, size_t n)
{
    snprintf(out, n, "%s/%s.pprof.gz", st->blobdir, digest);
}

static bool digest_indexed(ex_store *st, const char *digest, int64_t *id)
{
    sqlite3_stmt *s;
    bool hit = false;
    if (sqlite3_prepare_v2(st->db, "SELECT id FROM profiles WHERE digest=?", -1, &s, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        hit = true;
        if (id) *id = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return hit;
}

/* Remove temp files and blobs without a row (a crash between rename and
 * insert, see store.h). */
static void sweep_orphans(ex_store *st)
{
    DIR *d = opendir(st->blobdir);
    struct dirent *e;
    if (!d) return;
    while ((e = readdir(d))) {
        char digest[128], path[PATH_MAX + 300];
        size_t n = strlen(e->d_name);
        bool tmp = strncmp(e->d_name, ".tmp-", 5) == 0;
        if (!tmp && (n < 9 || n - 9 >= sizeof digest || strcmp(e->d_name + n - 9, ".pprof.gz")))
            continue;
        snprintf(digest, sizeof digest, "%.*s", (int)(n - 9), e->d_name);
        if (!tmp && digest_indexed(st, digest, NULL)) continue;
        snprintf(path, sizeof path, "%s/%s", st->blobdir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* Two explorers on one data dir would sweep each other's fresh blobs as
 * orphans: the second one is refused. */
static int lock_dir(ex_store *st, char *err, size_t errlen)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/lock", st->dir);
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) == 0) return 0;
    snprintf(err, errlen, "data directory %s is in use by another contprof-explorer", st->dir);
    return -1;
}

ex_store *ex_store_open(const char *dir, char *err, size_t errlen)
{
    ex_store *st = calloc(1, sizeof *st);
    char dbpath[PATH_MAX + 32], *msg = NULL;
    if (!st) { snprintf(err, errlen, "out of memory"); return NULL; }
    pthread_mutex_init(&st->mu, NULL);
    st->lock_fd = -1;
    snprintf(st->dir, sizeof st->dir, "%s", dir);
    snprintf(st->blobdir, sizeof st->blobdir, "%s/pprof", dir);
    if (mkdir_p(st->blobdir)) {
        snprintf(err, errlen, "cannot create data directory %s: %s", st->blobdir, strerror(errno));
        goto fail;
    }
    if (lock_dir(st, err, errlen)) goto fail;
    snprintf(dbpath, sizeof dbpath, "%s/index.sqlite3", dir);
    if (sqlite3_open_v2(dbpath, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", dbpath, st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    if (sqlite3_exec(st->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot initialise %s: %s", dbpath, msg ? msg : "?");
        sqlite3_free(msg);
        goto fail;
    }
    sweep_orphans(st);
    return st;
fail:
    ex_store_close(st);
    return NULL;
}

void ex_store_close(ex_store *st)
{
    if (!st) return;
    sqlite3_close(st->db);
    if (st->lock_fd >= 0) close(st->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Blob to <blobdir>/.tmp-XXXXXX, fsync, rename to its final name. */
static int write_blob(ex_store *st, const char *digest, const uint8_t *blob, size_t len,
                      char *err, size_t errlen)
{
    char tmp[PATH_MAX + 16], final[PATH_MAX + 100];
    snprintf(tmp, sizeof tmp, "%s/.tmp-XXXXXX", st->blobdir);
    int fd = mkstemp(tmp);
    if (fd < 0) { snprintf(err, errlen, "cannot create blob: %s", strerror(errno)); return CP_EIO; }
    int bad = write_all(fd, blob, len) || (!st->no_sync && fsync(fd));
    bad |= close(fd) != 0;
    blob_path(st, digest, final, sizeof final);
    if (bad || rename(tmp, final)) {
        snprintf(err, errlen, "cannot write blob: %s", strerror(errno));
        unlink(tmp);
        return CP_EIO;
    }
    return CP_OK;
}

static void bind_real(sqlite3_stmt *s, int i, double v)
{
    if (isfinite(v)) sqlite3_bind_double(s, i, v);
    else sqlite3_bind_null(s, i);
}

static int insert_row(ex_store *st, const ex_meta *m, const char *digest, size_t len, int64_t *id)
{
    static const char *sql =
        "INSERT INTO profiles(digest,service,env,version,host,runtime,runtime_version,language,"
        "family,runtime_id,pid,start_ns,end_ns,received_ns,tags,source,pprof_bytes,samples,"
        "sample_count,types,default_type,cpu_cores,alloc_rate,live_heap,threads,m_samples_taken,"
        "m_samples_dropped,m_upload_failures,m_overhead_pct,info) VALUES"
        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    const char *texts[] = {digest, m->service, m->env, m->version, m->host, m->runtime,
                           m->runtime_version, m->language, m->family, m->runtime_id};
    struct timespec now;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) return -1;
    for (int i = 0; i < 10; i++) sqlite3_bind_text(s, i + 1, texts[i] ? texts[i] : "", -1, SQLITE_STATIC);
    clock_gettime(CLOCK_REALTIME, &now);
    sqlite3_bind_int64(s, 11, m->pid);
    sqlite3_bind_int64(s, 12, m->start_ns);
    sqlite3_bind_int64(s, 13, m->end_ns);
    sqlite3_bind_int64(s, 14, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
    sqlite3_bind_text(s, 15, m->tags ? m->tags : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 16, m->source ? m->source : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 17, (int64_t)len);
    sqlite3_bind_int64(s, 18, m->samples);
    sqlite3_bind_int64(s, 19, m->sample_count);
    sqlite3_bind_text(s, 20, m->types_json ? m->types_json : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 21, m->default_type ? m->default_type : "", -1, SQLITE_STATIC);
    const double reals[] = {m->cpu_cores, m->alloc_rate, m->live_heap, m->threads, m->m_samples_taken,
                            m->m_samples_dropped, m->m_upload_failures, m->m_overhead_pct};
    for (int i = 0; i < 8; i++) bind_real(s, 22 + i, reals[i]);
    sqlite3_bind_text(s, 30, m->info_json && m->info_json[0] ? m->info_json : "{}", -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) return -1;
    *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

static int add_locked(ex_store *st, const ex_meta *m, const uint8_t *blob, size_t len,
                      const char *digest, int64_t *id, char *err, size_t errlen)
{
    char final[PATH_MAX + 100];
    int rc = write_blob(st, digest, blob, len, err, errlen);
    if (rc) return rc;
    sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (insert_row(st, m, digest, len, id) == 0 && index_text(st, *id) == 0 &&
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
        st->generation++;
        return CP_OK;
    }
    snprintf(err, errlen, "cannot index profile: %s", sqlite3_errmsg(st->db));
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    blob_path(st, digest, final, sizeof final);
    unlink(final);
    return CP_EIO;
}

int ex_store_add(ex_store *st, const ex_meta *m, const uint8_t *blob, size_t len,
                 int64_t *id, bool *dup, char *err, size_t errlen)
{
    char digest[64];
    digest_of(blob, len, digest);
    pthread_mutex_lock(&st->mu);
    *dup = digest_indexed(st, digest, id);
    int rc = *dup ? CP_OK : add_locked(st, m, blob, len, digest, id, err, errlen);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int blob_digest(ex_store *st, int64_t id, char *digest, size_t n)
{
    sqlite3_stmt *s;
    int rc = CP_EINVAL;
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT digest FROM profiles WHERE id=?", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, id);
        if (sqlite3_step(s) == SQLITE_ROW) {
            snprintf(digest, n, "%s", (const char *)sqlite3_column_text(s, 0));
            rc = CP_OK;
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int ex_store_read_blob(ex_store *st, int64_t id, cp_buf *out)
{
    char digest[128], path[PATH_MAX + 200], chunk[65536];
    if (blob_digest(st, id, digest, sizeof digest)) return CP_EINVAL;
    blob_path(st, digest, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) return CP_EIO;
    size_t n;
    int rc = CP_OK;
    while (rc == CP_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0) rc = cp_buf_append(out, chunk, n);
    if (ferror(f)) rc = CP_EIO;
    fclose(f);
    return rc;
}

bool ex_store_seen(ex_store *st, const char *path, int64_t size, int64_t mtime)
{
    sqlite3_stmt *s;
    bool seen = false;
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM imported WHERE path=? AND size=? AND mtime=?", -1, &s,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, size);
        sqlite3_bind_int64(s, 3, mtime);
        seen = sqlite3_step(s) == SQLITE_ROW;
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mu);
    return seen;
}

void ex_store_mark_seen(ex_store *st, const char *path, int64_t size, int64_t mtime)
{
    sqlite3_stmt *s;
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO imported(path,size,mtime) VALUES(?,?,?)", -1, &s,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, size);
        sqlite3_bind_int64(s, 3, mtime);
        sqlite3_step(s);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mu);
}

int64_t ex_store_count(ex_store *st)
{
    sqlite3_stmt *s;
    int64_t n = 0;
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM profiles", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

sqlite3 *ex_store_lock(ex_store *st)
{
    pthread_mutex_lock(&st->mu);
    return st->db;
}

void ex_store_unlock(ex_store *st)
{
    pthread_mutex_unlock(&st->mu);
}

/* ---- deletion and retention ------------------------------------------ */

/* Delete the rows selected by `where` (fixed SQL with one optional text
 * and one optional integer binding), their search entries and blobs.
 * Rows go in one transaction; blobs are unlinked after it commits (a
 * crash in between leaves orphan blobs, swept at the next open). */
static int64_t delete_where(ex_store *st, const char *where, const char *text, int64_t num, bool has_num)
{
    char sql[512];
    sqlite3_stmt *s;
    char (*digests)[128] = NULL;
    size_t n = 0, cap = 0;
    snprintf(sql, sizeof sql, "SELECT id, digest FROM profiles WHERE %s", where);
    pthread_mutex_lock(&st->mu);
    sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    int ok = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK;
    if (ok) {
        int b = 1;
        if (text) sqlite3_bind_text(s, b++, text, -1, SQLITE_STATIC);
        if (has_num) sqlite3_bind_int64(s, b, num);
        while (sqlite3_step(s) == SQLITE_ROW) {
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                void *bigger = realloc(digests, nc * sizeof *digests);
                if (!bigger) { ok = 0; break; }
                digests = bigger;
                cap = nc;
            }
            snprintf(digests[n++], sizeof digests[0], "%s", (const char *)sqlite3_column_text(s, 1));
        }
        sqlite3_finalize(s);
    }
    snprintf(sql, sizeof sql, "DELETE FROM profiles_fts WHERE rowid IN (SELECT id FROM profiles WHERE %s)", where);
    for (int pass = 0; ok && pass < 2; pass++) {
        if (pass) snprintf(sql, sizeof sql, "DELETE FROM profiles WHERE %s", where);
        ok = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK;
        if (!ok) break;
        int b = 1;
        if (text) sqlite3_bind_text(s, b++, text, -1, SQLITE_STATIC);
        if (has_num) sqlite3_bind_int64(s, b, num);
        ok = sqlite3_step(s) == SQLITE_DONE;
        sqlite3_finalize(s);
    }
    ok = ok && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    if (!ok) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    if (ok && n) st->generation++;
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; ok && i < n; i++) {
        char path[PATH_MAX + 200];
        blob_path(st, digests[i], path, sizeof path);
        unlink(path);
    }
    free(digests);
    return ok ? (int64_t)n : -1;
}

int64_t ex_store_delete(ex_store *st, int64_t id)
{
    return delete_where(st, "id = ?", NULL, id, true);
}

int64_t ex_store_delete_service(ex_store *st, const char *service)
{
    return delete_where(st, "service = ?", service, 0, false);
}

/* The start time below which profiles must go for the store to hold at
 * most max_bytes of blobs (oldest first); 0 when it already fits. */
static int64_t size_cutoff(ex_store *st, int64_t max_bytes)
{
    sqlite3_stmt *s;
    int64_t total = 0, cut = 0;
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT sum(pprof_bytes) FROM profiles", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) total = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    if (total > max_bytes &&
        sqlite3_prepare_v2(st->db, "SELECT start_ns, pprof_bytes FROM profiles ORDER BY start_ns", -1, &s, NULL) ==
            SQLITE_OK) {
        while (total > max_bytes && sqlite3_step(s) == SQLITE_ROW) {
            cut = sqlite3_column_int64(s, 0) + 1;
            total -= sqlite3_column_int64(s, 1);
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mu);
    return cut;
}

int64_t ex_store_retain(ex_store *st, int64_t max_age_s, int64_t max_bytes)
{
    int64_t gone = 0, n;
    if (max_age_s > 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t cut = ((int64_t)now.tv_sec - max_age_s) * 1000000000LL;
        if ((n = delete_where(st, "end_ns < ?", NULL, cut, true)) > 0) gone += n;
    }
    int64_t cut = max_bytes > 0 ? size_cutoff(st, max_bytes) : 0;
    if (cut && (n = delete_where(st, "start_ns < ?", NULL, cut, true)) > 0) gone += n;
    return gone;
}

int64_t ex_store_bytes(ex_store *st)
{
    sqlite3_stmt *s;
    int64_t total = 0;
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT coalesce(sum(pprof_bytes), 0) FROM profiles", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) total = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->mu);
    return total;
}

int64_t ex_store_generation(ex_store *st)
{
    pthread_mutex_lock(&st->mu);
    int64_t g = st->generation;
    pthread_mutex_unlock(&st->mu);
    return g;
}

void ex_store_set_sync(ex_store *st, bool sync)
{
    pthread_mutex_lock(&st->mu);
    st->no_sync = !sync;
    sqlite3_exec(st->db, sync ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=OFF", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->mu);
}
