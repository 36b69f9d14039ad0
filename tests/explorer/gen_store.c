/*
 * gen_store.c — fill an explorer data directory with N profiles fast, for
 * the scale test (scale_test.py): K distinct encoder-made profiles are
 * written as blobs once, and N index rows (20 services, 3 envs, 50 hosts,
 * two runtimes, start times one minute apart per process) point at
 * hard links of them, inserted in one transaction straight into the
 * store's database, search index included. Aggregation over those rows
 * then decodes real blobs.
 *
 *   explorer_gen_store DIR N
 */
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "store.h"

#define K 64
#define SEC 1000000000LL

static void die(const char *what)
{
    fprintf(stderr, "explorer_gen_store: %s\n", what);
    exit(1);
}

/* Variant v: a service-like profile with ~200 distinct stacks. */
static void variant(int v, int64_t t0, cp_buf *out)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples,wall-time,wall-samples");
    char stack[256];
    for (int i = 0; i < 200; i++) {
        snprintf(stack, sizeof stack, "main;serve;handler_%d;step_%d;leaf_%d", i % 17, (i + v) % 23, i % 41);
        fx_add(p, stack, (int64_t[]){(i % 7 + 1) * 10000000LL, i % 7 + 1, (i % 5 + 1) * 20000000LL, i % 5 + 1},
               1 + i % 8, "worker");
    }
    fx_encode(p, t0, 60 * SEC, out);
    cp_profile_free(p);
}

static void insert_rows(sqlite3 *db, const char *blobdir, char (*digests)[16], const size_t *sizes, long n,
                        int64_t now)
{
    static const char *sql =
        "INSERT INTO profiles(digest,service,env,version,host,runtime,runtime_version,language,family,runtime_id,"
        "pid,start_ns,end_ns,received_ns,tags,source,pprof_bytes,samples,sample_count,types,default_type,"
        "cpu_cores,alloc_rate,live_heap,threads,info) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'bench',?,200,900,"
        "'[{\"type\":\"cpu-time\",\"unit\":\"nanoseconds\",\"total\":1},{\"type\":\"cpu-samples\",\"unit\":\"count\",\"total\":1},"
        "{\"type\":\"wall-time\",\"unit\":\"nanoseconds\",\"total\":1},{\"type\":\"wall-samples\",\"unit\":\"count\",\"total\":1}]',"
        "'cpu-time',?,NULL,NULL,8,'{}')";
    sqlite3_stmt *s, *f;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO profiles_fts(rowid, text) SELECT id, " EX_STORE_SEARCH_TEXT
                           " FROM profiles WHERE id=?", -1, &f, NULL) != SQLITE_OK)
        die(sqlite3_errmsg(db));
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (long i = 0; i < n; i++) {
        char digest[120], svc[32], env[16], ver[16], host[32], rtid[48], tags[400], src[PATH_MAX + 200], dst[PATH_MAX + 200];
        int v = (int)(i % K), proc = (int)(i % 500);
        bool py = (i / 7) % 2;
        snprintf(digest, sizeof digest, "%s-r%ld", digests[v], i);
        snprintf(src, sizeof src, "%s/%s.pprof.gz", blobdir, digests[v]);
        snprintf(dst, sizeof dst, "%s/%s.pprof.gz", blobdir, digest);
        if (link(src, dst)) die("link");
        snprintf(svc, sizeof svc, "service-%02d", proc % 20);
        snprintf(env, sizeof env, "%s", (const char *[]){"prod", "staging", "dev"}[proc % 3]);
        snprintf(ver, sizeof ver, "1.%d.0", proc % 5);
        snprintf(host, sizeof host, "host-%03d", proc % 50);
        snprintf(rtid, sizeof rtid, "rt-%04d", proc);
        snprintf(tags, sizeof tags, "service:%s,env:%s,version:%s,host:%s,language:%s,runtime:%s,runtime-id:%s,"
                 "team:team-%d,region:eu-%d", svc, env, ver, host, py ? "python" : "jvm",
                 py ? "CPython" : "OpenJDK_64-Bit_Server_VM", rtid, proc % 13, proc % 4);
        int64_t start = now - (n - i) / 500 * 60 * SEC - (int64_t)proc * 100000000LL;
        const char *t[] = {digest, svc, env, ver, host, py ? "CPython" : "OpenJDK_64-Bit_Server_VM",
                           py ? "3.11.7" : "17.0.9", py ? "python" : "jvm", py ? "python" : "java", rtid};
        for (int c = 0; c < 10; c++) sqlite3_bind_text(s, c + 1, t[c], -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 11, 1000 + proc);
        sqlite3_bind_int64(s, 12, start);
        sqlite3_bind_int64(s, 13, start + 60 * SEC);
        sqlite3_bind_int64(s, 14, start + 61 * SEC);
        sqlite3_bind_text(s, 15, tags, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 16, (int64_t)sizes[v]);
        sqlite3_bind_double(s, 17, 0.1 + (double)(proc % 10) / 10);
        if (sqlite3_step(s) != SQLITE_DONE) die(sqlite3_errmsg(db));
        sqlite3_reset(s);
        sqlite3_bind_int64(f, 1, sqlite3_last_insert_rowid(db));
        if (sqlite3_step(f) != SQLITE_DONE) die(sqlite3_errmsg(db));
        sqlite3_reset(f);
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) die(sqlite3_errmsg(db));
    sqlite3_finalize(s);
    sqlite3_finalize(f);
}

int main(int argc, char **argv)
{
    char err[300], blobdir[PATH_MAX], digests[K][16];
    size_t sizes[K];
    if (argc != 3) die("usage: explorer_gen_store DIR N");
    long n = atol(argv[2]);
    ex_store *st = ex_store_open(argv[1], err, sizeof err);
    if (!st) die(err);
    snprintf(blobdir, sizeof blobdir, "%s/pprof", argv[1]);
    int64_t now = fx_now_ns();
    for (int v = 0; v < K; v++) {
        cp_buf b;
        variant(v, now, &b);
        snprintf(digests[v], sizeof digests[v], "bench%02d", v);
        char path[PATH_MAX + 40];
        snprintf(path, sizeof path, "%.2000s/%.15s.pprof.gz", blobdir, digests[v]);
        FILE *fp = fopen(path, "wb");
        if (!fp || fwrite(b.data, 1, b.len, fp) != b.len || fclose(fp)) die("write blob");
        sizes[v] = b.len;
        cp_buf_free(&b);
    }
    sqlite3 *db = ex_store_lock(st);
    insert_rows(db, blobdir, digests, sizes, n, now);
    ex_store_unlock(st);
    for (int v = 0; v < K; v++) { /* the variants themselves have no row */
        char path[PATH_MAX + 40];
        snprintf(path, sizeof path, "%.2000s/%.15s.pprof.gz", blobdir, digests[v]);
        unlink(path);
    }
    ex_store_close(st);
    printf("%ld profiles in %s\n", n, argv[1]);
    return 0;
}
