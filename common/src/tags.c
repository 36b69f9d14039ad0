/*
 * tags.c — the profile's tags (tags_profiler) and the process identity.
 *
 * Tags follow Datadog's conventions: "key:value" joined by commas. Values
 * coming from settings are sanitised (commas and whitespace become '_')
 * so a value can never inject another tag. The runtime-id is a UUID v4
 * from getrandom(), drawn once per process and again after fork.
 */
#include "tags.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"

#define RT_STR 128

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* g_rt*, g_id */
static char g_family[RT_STR], g_language[RT_STR], g_runtime[RT_STR], g_version[RT_STR];
static cp_runtime_desc g_rt = {g_family, g_language, g_runtime, g_version, 0};
static char g_id[37];

void cp__tags_set_runtime(const cp_runtime_desc *rt)
{
    pthread_mutex_lock(&g_lock);
    snprintf(g_family, RT_STR, "%s", rt && rt->family ? rt->family : "");
    snprintf(g_language, RT_STR, "%s", rt && rt->language ? rt->language : "");
    snprintf(g_runtime, RT_STR, "%s", rt && rt->runtime ? rt->runtime : "");
    snprintf(g_version, RT_STR, "%s", rt && rt->runtime_version ? rt->runtime_version : "");
    g_rt.kinds = rt ? rt->kinds : 0;
    pthread_mutex_unlock(&g_lock);
}

const cp_runtime_desc *cp__tags_runtime(void)
{
    return &g_rt;
}

/* 16 random bytes: getrandom, else a mix of clocks and pid (still unique
 * enough to tell processes apart, which is all a runtime-id is for). */
static void random16(unsigned char r[16])
{
    ssize_t got = 0;
    while (got < 16) {
        ssize_t n = getrandom(r + got, (size_t)(16 - got), GRND_NONBLOCK);
        if (n <= 0 && errno != EINTR)
            break;
        got += n > 0 ? n : 0;
    }
    if (got == 16)
        return;
    struct timespec a, b;
    clock_gettime(CLOCK_REALTIME, &a);
    clock_gettime(CLOCK_MONOTONIC, &b);
    uint64_t x = (uint64_t)a.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid() << 32 ^ (uint64_t)b.tv_nsec;
    for (int i = 0; i < 16; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        r[i] = (unsigned char)x;
    }
}

static void renew_locked(void)
{
    unsigned char r[16];
    random16(r);
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    snprintf(g_id, sizeof(g_id), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

void cp__runtime_id_renew(void)
{
    pthread_mutex_lock(&g_lock);
    renew_locked();
    pthread_mutex_unlock(&g_lock);
}

const char *cp_runtime_id(void)
{
    pthread_mutex_lock(&g_lock);
    if (!g_id[0])
        renew_locked();
    pthread_mutex_unlock(&g_lock);
    return g_id;
}

void cp__tags_after_fork(void)
{
    g_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    cp__runtime_id_renew();
}

/* Copy s to out replacing bytes that would break a tag list or a path. */
static void sanitize(const char *s, char *out, size_t n, const char *bad)
{
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++)
        out[i] = (strchr(bad, s[i]) || (unsigned char)s[i] < 0x20) ? '_' : s[i];
    out[i] = 0;
}

void cp__service_name(char *out, size_t n)
{
    const char *s = cp_config_get()->service;
    if (!s[0])
        s = program_invocation_short_name && *program_invocation_short_name ? program_invocation_short_name
                                                                          : "unnamed-service";
    sanitize(s, out, n, "/, \t");
}

/* Append ",key:value" (sanitised) unless value is empty. */
static int add_tag(cp_buf *b, const char *key, const char *value)
{
    char clean[512];
    if (!value || !*value)
        return CP_OK;
    sanitize(value, clean, sizeof(clean), ", \t\n");
    int err = b->len ? cp_buf_append(b, ",", 1) : CP_OK;
    if (err == CP_OK && key) {
        err = cp_buf_append(b, key, strlen(key));
        if (err == CP_OK)
            err = cp_buf_append(b, ":", 1);
    }
    return err == CP_OK ? cp_buf_append(b, clean, strlen(clean)) : err;
}

/* User tags: split on commas and whitespace, empties skipped. */
static int add_user_tags(cp_buf *b, const char *tags)
{
    int err = CP_OK;
    for (const char *p = tags; *p && err == CP_OK;) {
        p += strspn(p, ", \t\r\n");
        size_t n = strcspn(p, ", \t\r\n");
        if (n > 0 && n < 512) {
            char one[512];
            memcpy(one, p, n);
            one[n] = 0;
            err = add_tag(b, NULL, one);
        }
        p += n;
    }
    return err;
}

char *cp_tags_string(void)
{
    const cp_config *c = cp_config_get();
    char service[256], pid[24];
    cp__service_name(service, sizeof(service));
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    const char *id = cp_runtime_id();
    cp_buf b;
    cp_buf_init(&b, 1u << 16);
    pthread_mutex_lock(&g_lock);
    int err = add_tag(&b, "service", service);
    const char *keys[] = {"env", "version", "host", "language", "runtime", "runtime_version"};
    const char *vals[] = {c->env, c->version, c->host, g_language, g_runtime, g_version};
    for (size_t i = 0; i < 6 && err == CP_OK; i++)
        err = add_tag(&b, keys[i], vals[i]);
    pthread_mutex_unlock(&g_lock);
    if (err == CP_OK)
        err = add_tag(&b, "runtime-id", id);
    if (err == CP_OK)
        err = add_tag(&b, "process_id", pid);
    if (err == CP_OK)
        err = add_tag(&b, "profiler_version", CP_PROFILER_VERSION);
    if (err == CP_OK)
        err = add_user_tags(&b, c->tags);
    if (err == CP_OK)
        err = cp_buf_append(&b, "", 1);
    if (err != CP_OK) {
        cp_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}
