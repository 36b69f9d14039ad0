/*
 * fixtures.c — profile and upload fixtures for the explorer tests
 * (fixtures.h). Everything pprof is produced by the core's encoder.
 */
#include "fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "fixture failure: %s\n", what);
    abort();
}

static const char *unit_of(const char *type)
{
    size_t n = strlen(type);
    if (n > 5 && strcmp(type + n - 5, "-time") == 0) return "nanoseconds";
    if (strcmp(type, "lock-acquire-wait") == 0) return "nanoseconds";
    if (n > 6 && strcmp(type + n - 6, "-space") == 0) return "bytes";
    return "count";
}

cp_profile *fx_new(const char *types_csv)
{
    static char names[16][48];
    cp_sample_type t[16];
    size_t n = 0;
    for (const char *s = types_csv; *s && n < 16;) {
        size_t l = strcspn(s, ",");
        snprintf(names[n], sizeof names[n], "%.*s", (int)l, s);
        t[n].type = names[n];
        t[n].unit = unit_of(names[n]);
        n++;
        s += l + (s[l] == ',');
    }
    cp_profile *p = cp_profile_new(t, n, NULL);
    if (!p) die("cp_profile_new");
    return p;
}

void fx_add(cp_profile *p, const char *folded, const int64_t *values, int64_t tid, const char *tname)
{
    char buf[4096], *names[600];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", folded);
    for (char *save, *tok = strtok_r(buf, ";", &save); tok && n < 600; tok = strtok_r(NULL, ";", &save))
        names[n++] = tok;
    cp_frame fr[600];
    for (size_t i = 0; i < n; i++) { /* leaf first for the core; "name@N" sets line N */
        char *at = strchr(names[n - 1 - i], '@');
        int64_t line = at ? strtoll(at + 1, NULL, 10) : (int64_t)(i + 1);
        if (at) *at = 0;
        fr[i] = (cp_frame){.name = names[n - 1 - i], .filename = "app.py", .line = line};
    }
    cp_label l[2];
    size_t nl = 0;
    if (tid) l[nl++] = (cp_label){.key = "thread id", .num = tid};
    if (tname) l[nl++] = (cp_label){.key = "thread name", .str = tname};
    int rc = cp_profile_add(p, fr, n, values, l, nl);
    if (rc != CP_OK) die("cp_profile_add");
}

void fx_encode(cp_profile *p, int64_t start_ns, int64_t dur_ns, cp_buf *out)
{
    cp_buf_init(out, 0);
    cp_profile_set_time(p, start_ns, dur_ns);
    if (cp_profile_encode(p, true, out) != CP_OK) die("cp_profile_encode");
}

cp_pprof *fx_decoded(cp_profile *p, int64_t dur_ns)
{
    cp_buf b;
    cp_pprof *pp = NULL;
    fx_encode(p, fx_now_ns(), dur_ns, &b);
    if (cp_pprof_decode(b.data, b.len, 0, &pp) != CP_OK) die("cp_pprof_decode");
    cp_buf_free(&b);
    cp_profile_free(p);
    return pp;
}

static void rfc3339(int64_t ns, char *out, size_t n)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t l = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + l, n - l, ".%09lldZ", (long long)(ns % 1000000000));
}

char *fx_event(const char *tags, int64_t start_ns, int64_t end_ns, const char *info_json)
{
    char s[64], e[64];
    rfc3339(start_ns, s, sizeof s);
    rfc3339(end_ns, e, sizeof e);
    size_t n = strlen(tags) + (info_json ? strlen(info_json) : 2) + 512;
    char *out = malloc(n);
    if (!out) die("malloc");
    snprintf(out, n,
             "{\"attachments\":[\"auto.pprof\"],\"start\":\"%s\",\"end\":\"%s\",\"family\":\"python\","
             "\"version\":\"4\",\"tags_profiler\":\"%s\",\"info\":%s}",
             s, e, tags, info_json ? info_json : "{}");
    return out;
}

static void add_s(cp_buf *b, const char *s)
{
    if (cp_buf_append(b, s, strlen(s))) die("cp_buf_append");
}

void fx_multipart(cp_buf *out, const char *event, const uint8_t *pprof, size_t len)
{
    cp_buf_init(out, 0);
    add_s(out, "--fxBOUNDARY\r\nContent-Disposition: form-data; name=\"event\"; filename=\"event.json\"\r\n"
               "Content-Type: application/json\r\n\r\n");
    add_s(out, event);
    add_s(out, "\r\n--fxBOUNDARY\r\nContent-Disposition: form-data; name=\"auto.pprof\"; filename=\"auto.pprof\"\r\n"
               "Content-Type: application/octet-stream\r\n\r\n");
    if (cp_buf_append(out, pprof, len)) die("cp_buf_append");
    add_s(out, "\r\n--fxBOUNDARY--\r\n");
}

void fx_multipart_n(cp_buf *out, const char *event, const char *const *names, const cp_buf *pprofs, size_t n)
{
    char head[400];
    cp_buf_init(out, 0);
    add_s(out, "--fxBOUNDARY\r\nContent-Disposition: form-data; name=\"event\"; filename=\"event.json\"\r\n"
               "Content-Type: application/json\r\n\r\n");
    add_s(out, event);
    for (size_t i = 0; i < n; i++) {
        snprintf(head, sizeof head, "\r\n--fxBOUNDARY\r\nContent-Disposition: form-data; name=\"%s\"; "
                 "filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n", names[i], names[i]);
        add_s(out, head);
        if (cp_buf_append(out, pprofs[i].data, pprofs[i].len)) die("cp_buf_append");
    }
    add_s(out, "\r\n--fxBOUNDARY--\r\n");
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) die(path);
}

void fx_write_pair(const char *dir, const char *base, const cp_buf *pprof, const char *event)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.pprof.gz", dir, base);
    write_file(path, pprof->data, pprof->len);
    if (!event) return;
    snprintf(path, sizeof path, "%s/%s.json", dir, base);
    write_file(path, event, strlen(event));
}

char *fx_tmpdir(const char *name)
{
    char *path = malloc(4096), cmd[4200];
    if (!path) die("malloc");
    snprintf(path, 4096, "%s/tmp-%s-%d", CP_TEST_BINARY_DIR, name, (int)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) die("rm -rf");
    if (mkdir(path, 0755)) die("mkdir");
    return path;
}

void fx_rmtree(char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) die("rm -rf");
    free(path);
}

int64_t fx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + (ts.tv_nsec / 1000000) * 1000000;
}

/* ---- a stack deeper than the core's encoder makes (max 599 frames) ---- */

static void pb_varint(cp_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) { t[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    t[n++] = (uint8_t)v;
    if (cp_buf_append(b, t, n)) die("cp_buf_append");
}

static void pb_field(cp_buf *b, unsigned field, const cp_buf *msg)
{
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, msg->len);
    if (msg->len && cp_buf_append(b, msg->data, msg->len)) die("cp_buf_append");
}

static void pb_kv(cp_buf *b, unsigned field, uint64_t v)
{
    pb_varint(b, (uint64_t)field << 3);
    pb_varint(b, v);
}

static void pb_str(cp_buf *b, const char *s)
{
    cp_buf m = {0};
    if (cp_buf_append(&m, s, strlen(s))) die("cp_buf_append");
    pb_field(b, 6, &m);
    cp_buf_free(&m);
}

void fx_deep_pprof(size_t depth, int64_t value, cp_buf *out)
{
    /* strings: 0 "", 1 cpu-time, 2 nanoseconds, 3 main, 4 leaf_fn, 5 deep.py, 6 mid */
    static const char *const strs[] = {"", "cpu-time", "nanoseconds", "main", "leaf_fn", "deep.py", "mid"};
    cp_buf m = {0}, packed = {0};
    cp_buf_init(out, 0);
    pb_kv(&m, 1, 1);
    pb_kv(&m, 2, 2);
    pb_field(out, 1, &m);
    m.len = 0;
    for (size_t i = 0; i < depth; i++) pb_varint(&packed, i + 1); /* leaf first: location 1 is the leaf */
    pb_field(&m, 1, &packed);
    packed.len = 0;
    pb_varint(&packed, (uint64_t)value);
    pb_field(&m, 2, &packed);
    pb_field(out, 2, &m);
    m.len = 0;
    for (size_t i = 0; i < depth; i++) {   /* location i+1 -> function (leaf 1, root 2, else 3) */
        cp_buf line = {0};
        uint64_t fn = i == 0 ? 1 : i + 1 == depth ? 2 : 3;
        pb_kv(&line, 1, fn);
        pb_kv(&line, 2, i + 1);
        pb_kv(&m, 1, i + 1);
        pb_field(&m, 4, &line);
        pb_field(out, 4, &m);
        m.len = 0;
        cp_buf_free(&line);
    }
    const uint64_t fnames[][2] = {{1, 4}, {2, 3}, {3, 6}};
    for (int i = 0; i < 3; i++) {
        pb_kv(&m, 1, fnames[i][0]);
        pb_kv(&m, 2, fnames[i][1]);
        pb_kv(&m, 4, 5);
        pb_field(out, 5, &m);
        m.len = 0;
    }
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) pb_str(out, strs[i]);
    pb_kv(out, 9, (uint64_t)fx_now_ns());
    pb_kv(out, 10, 1000000000);
    cp_buf_free(&m);
    cp_buf_free(&packed);
}
