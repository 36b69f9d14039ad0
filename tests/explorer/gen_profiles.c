/*
 * gen_profiles.c — writes profiles made by the core's encoder:
 *   gen_profiles seeds DIR   fuzz seeds in DIR/pprof and DIR/multipart
 *   gen_profiles demo DIR    exporter-style <base>.pprof.gz + <base>.json
 *                            pairs (used when contprof_demo is not built):
 *                            main → handle_request → parse_json / render
 *                            with a 3:1 CPU split, db_query in wall time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixtures.h"

#define SEC 1000000000LL

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "gen_profiles: cannot write %s\n", path);
        exit(1);
    }
}

static cp_profile *demo_profile(double scale)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples,wall-time,wall-samples,alloc-space,alloc-samples");
    int64_t s = (int64_t)(scale * 100);
    fx_add(p, "main;handle_request;parse_json", (int64_t[]){3 * s * 10000000, 3 * s, 3 * s * 10000000, 3 * s, 48 << 20, 48}, 1, "worker");
    fx_add(p, "main;handle_request;render", (int64_t[]){s * 10000000, s, s * 10000000, s, 16 << 20, 16}, 1, "worker");
    fx_add(p, "main;handle_request;db_query", (int64_t[]){s * 100000, 1, 4 * s * 10000000, 4 * s, 0, 0}, 2, "db");
    return p;
}

static void seeds(const char *dir)
{
    char sub[4096];
    cp_buf gz, raw, body;
    snprintf(sub, sizeof sub, "%s/pprof", dir);
    mkdir(sub, 0755);
    cp_profile *p = demo_profile(1);
    fx_encode(p, fx_now_ns(), 10 * SEC, &gz);
    write_file(sub, "demo.pprof.gz", gz.data, gz.len);
    cp_buf_init(&raw, 0);
    if (cp_profile_encode(p, false, &raw) == CP_OK) write_file(sub, "demo.pprof", raw.data, raw.len);
    cp_profile_free(p);
    p = fx_new("heap-space,heap-live-samples,lock-acquire-wait,lock-acquire,exception-samples");
    char deep[4096] = "main";
    for (int i = 0; i < 70; i++) strcat(deep, ";walk");
    fx_add(p, deep, (int64_t[]){1024, 1, 5, 1, 1}, 7, "t7");
    fx_encode(p, fx_now_ns(), SEC, &raw);
    write_file(sub, "deep.pprof.gz", raw.data, raw.len);
    cp_profile_free(p);
    snprintf(sub, sizeof sub, "%s/multipart", dir);
    mkdir(sub, 0755);
    char *ev = fx_event("service:seed,env:fuzz", fx_now_ns(), fx_now_ns() + SEC, "{\"os\":\"Linux\"}");
    fx_multipart(&body, ev, gz.data, gz.len < 64 ? gz.len : 64);
    cp_buf seed;
    cp_buf_init(&seed, 0);
    cp_buf_append(&seed, FX_CONTENT_TYPE "\n", strlen(FX_CONTENT_TYPE) + 1);
    cp_buf_append(&seed, body.data, body.len);
    write_file(sub, "upload.txt", seed.data, seed.len);
    free(ev);
    cp_buf_free(&gz);
    cp_buf_free(&raw);
    cp_buf_free(&body);
    cp_buf_free(&seed);
}

static void demo(const char *dir)
{
    static const char *const tags[] = {
        "service:contprof-demo,env:demo,version:1.0,host:demo-host,language:python,runtime:CPython,runtime_version:3.11.7",
        "service:contprof-demo-jvm,env:staging,version:2.0,host:demo-host,language:jvm,runtime:OpenJDK,runtime_version:17"};
    int64_t t0 = fx_now_ns() - 10 * 60 * SEC;
    for (int i = 0; i < 6; i++) {
        cp_buf gz;
        char base[64];
        int64_t start = t0 + i * 60 * SEC;
        cp_profile *p = demo_profile(1 + i % 3);
        fx_encode(p, start, 60 * SEC, &gz);
        cp_profile_free(p);
        char *ev = fx_event(tags[i % 2], start, start + 60 * SEC, "{\"os\":\"Linux\",\"demo\":\"generated\"}");
        snprintf(base, sizeof base, "demo.%d.%d", i % 2, i);
        fx_write_pair(dir, base, &gz, ev);
        free(ev);
        cp_buf_free(&gz);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "seeds") && strcmp(argv[1], "demo"))) {
        fprintf(stderr, "usage: gen_profiles seeds|demo DIR\n");
        return 2;
    }
    mkdir(argv[2], 0755);
    if (!strcmp(argv[1], "seeds")) seeds(argv[2]);
    else demo(argv[2]);
    return 0;
}
