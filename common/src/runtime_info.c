/*
 * runtime_info.c — the runtime info object sent with every profile.
 *
 * The core describes the machine and process; front ends add their
 * runtime's keys as raw JSON through cp_runtime_info_set, validated here
 * so a malformed value can never corrupt event.json. The store is small
 * and capped (MAX_KEYS keys, MAX_VALUE bytes each); g_lock protects it.
 */
#include "runtime_info.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "json.h"
#include "metrics.h"

#define MAX_KEYS 64
#define MAX_KEY 128
#define MAX_VALUE (256u * 1024)

typedef struct entry {
    char key[MAX_KEY];
    char *json; /* owned; NULL = free slot */
} entry;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static entry g_keys[MAX_KEYS]; /* g_lock */

static const char *const g_core_keys[] = {"host", "os", "kernel", "arch", "cpu_count", "pid",
                                          "process_start_time", "profiler_version", "settings", "metrics"};

static entry *find_locked(const char *key)
{
    for (int i = 0; i < MAX_KEYS; i++) {
        if (g_keys[i].json && strcmp(g_keys[i].key, key) == 0)
            return &g_keys[i];
    }
    return NULL;
}

static entry *slot_locked(const char *key)
{
    entry *e = find_locked(key);
    for (int i = 0; !e && i < MAX_KEYS; i++) {
        if (!g_keys[i].json)
            e = &g_keys[i];
    }
    return e;
}

char *cp__runtime_info_get(const char *key)
{
    pthread_mutex_lock(&g_lock);
    entry *e = find_locked(key);
    char *copy = e ? cp__strdup(e->json) : NULL;
    pthread_mutex_unlock(&g_lock);
    return copy;
}

int cp_runtime_info_set(const char *key, const char *json_value)
{
    if (!key || !*key || strlen(key) >= MAX_KEY || !json_value)
        return CP_EINVAL;
    size_t n = strlen(json_value);
    if (n > MAX_VALUE)
        return CP_ETOOBIG;
    if (!cp__json_valid(json_value, n))
        return CP_EINVAL;
    char *copy = cp__strdup(json_value);
    if (!copy)
        return CP_ENOMEM;
    pthread_mutex_lock(&g_lock);
    entry *e = slot_locked(key);
    if (e) {
        cp__free(e->json);
        snprintf(e->key, sizeof(e->key), "%s", key);
        e->json = copy;
    }
    pthread_mutex_unlock(&g_lock);
    if (!e)
        cp__free(copy);
    return e ? CP_OK : CP_EFULL;
}

int cp_runtime_info_set_str(const char *key, const char *value)
{
    cp_buf b;
    cp_buf_init(&b, MAX_VALUE + 8);
    int err = cp__json_escape(&b, value);
    if (err == CP_OK)
        err = cp_buf_append(&b, "", 1);
    if (err == CP_OK)
        err = cp_runtime_info_set(key, (const char *)b.data);
    cp_buf_free(&b);
    return err;
}

void cp__runtime_info_clear(void)
{
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < MAX_KEYS; i++) {
        cp__free(g_keys[i].json);
        g_keys[i].json = NULL;
    }
    pthread_mutex_unlock(&g_lock);
}

void cp__runtime_info_after_fork(void)
{
    g_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
}

/* Process start as unix ns: boot time (/proc/stat btime) + starttime
 * (field 22 of /proc/self/stat, in clock ticks). 0 when unknown. */
static int64_t process_start_ns(void)
{
    char buf[1024];
    long long btime = 0, ticks = 0;
    FILE *f = fopen("/proc/stat", "r");
    while (f && fgets(buf, sizeof(buf), f)) {
        if (sscanf(buf, "btime %lld", &btime) == 1)
            break;
    }
    if (f)
        fclose(f);
    f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* comm may hold spaces and parens */
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    long hz = sysconf(_SC_CLK_TCK);
    if (!p || btime <= 0 || hz <= 0 || sscanf(p + 1, "%lld", &ticks) != 1)
        return 0;
    return btime * 1000000000LL + ticks * (1000000000LL / hz);
}

static void core_keys(cp__json *j, const cp_metrics *m)
{
    struct utsname u;
    if (uname(&u) != 0)
        memset(&u, 0, sizeof(u));
    char kernel[sizeof(u.release) + sizeof(u.version) + 2], start[40] = "";
    snprintf(kernel, sizeof(kernel), "%s %s", u.release, u.version);
    int64_t st = process_start_ns();
    if (st > 0)
        cp__rfc3339(st, start, sizeof(start));
    char *settings = cp_config_to_json();
    const char *text[] = {cp_config_get()->host, u.sysname, kernel, u.machine};
    for (int i = 0; i < 4; i++) {
        if (!find_locked(g_core_keys[i]))
            cp__json_str(j, g_core_keys[i], text[i]);
    }
    if (!find_locked("cpu_count"))
        cp__json_int(j, "cpu_count", sysconf(_SC_NPROCESSORS_ONLN));
    if (!find_locked("pid"))
        cp__json_int(j, "pid", getpid());
    if (!find_locked("process_start_time"))
        cp__json_str(j, "process_start_time", start);
    if (!find_locked("profiler_version"))
        cp__json_str(j, "profiler_version", CP_PROFILER_VERSION);
    if (!find_locked("settings"))
        cp__json_raw(j, "settings", settings ? settings : "{}");
    if (!find_locked("metrics"))
        cp__metrics_json(j, "metrics", m);
    cp__free(settings);
}

char *cp__runtime_info_json(const cp_metrics *m)
{
    cp_buf b;
    cp_buf_init(&b, 8u << 20);
    cp__json j;
    cp__json_init(&j, &b);
    cp__json_obj_begin(&j, NULL);
    pthread_mutex_lock(&g_lock);
    core_keys(&j, m);
    for (int i = 0; i < MAX_KEYS; i++) {
        if (g_keys[i].json)
            cp__json_raw(&j, g_keys[i].key, g_keys[i].json);
    }
    pthread_mutex_unlock(&g_lock);
    cp__json_obj_end(&j);
    char *out = NULL;
    cp__json_take(&j, &out);
    return out;
}
