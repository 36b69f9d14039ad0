/*
 * settings.c — the one table of every setting, and its precedence rules.
 *
 * Each row names a setting, its type, default, bounds, environment names
 * and where its value lands in cp_config. Values are kept per setting with
 * the source that set them; a set from a lower source than the current one
 * is ignored, so the result does not depend on call order. String values
 * live in fixed static arrays: cp_config_get() can be read from any thread
 * and a pointer it handed out never dangles (it may at worst see a newer
 * value). g_lock serialises writers.
 *
 * Parsing of option strings, .properties files and the environment lives
 * in settings_sources.c; this file owns the table and cp_config_set.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "config_internal.h"
#include "json.h"
#include "contprof.h"

#define STR_MAX 2048

/* Where a row's value goes in cp_config. */
typedef enum { F_NONE, F_STR, F_I64, F_BOOL, F_LOGLEVEL } field_kind;

typedef bool (*str_check)(const char *v, const char **expect);

typedef struct row {
    cp_setting_info info;
    field_kind kind;
    size_t off;       /* offsetof(cp_config, field) when kind != F_NONE */
    str_check check;  /* optional validator for strings               */
} row;

typedef struct setting_value {
    cp_source src;
    int64_t i;
    char s[STR_MAX];
    char origin[96]; /* "env CONTPROF_X", "file a.properties:3", ... */
} setting_value;

static bool check_url(const char *v, const char **expect);
static bool check_site(const char *v, const char **expect);
static bool check_proxy(const char *v, const char **expect);
static bool check_level(const char *v, const char **expect);
static bool check_signal(const char *v, const char **expect);

#define S(n, d, envs, help, fld, chk) \
    {{n, CP_T_STRING, d, 0, 0, "", envs, help}, fld == (size_t)-1 ? F_NONE : F_STR, fld, chk}
#define I(n, d, lo, hi, unit, envs, help, fld) \
    {{n, CP_T_INT, #d, lo, hi, unit, envs, help}, F_I64, offsetof(cp_config, fld), NULL}
#define B(n, d, envs, help, fld) \
    {{n, CP_T_BOOL, d, 0, 1, "", envs, help}, F_BOOL, offsetof(cp_config, fld), NULL}
#define OFF(f) offsetof(cp_config, f)
#define NOFIELD ((size_t)-1)

static const row g_rows[] = {
    S("service", "", "CONTPROF_SERVICE DD_SERVICE", "service name (default: the program name)", OFF(service), NULL),
    S("env", "", "CONTPROF_ENV DD_ENV", "deployment environment tag, e.g. prod", OFF(env), NULL),
    S("version", "", "CONTPROF_VERSION DD_VERSION", "version of the profiled service", OFF(version), NULL),
    S("tags", "", "CONTPROF_TAGS DD_TAGS", "extra tags 'k:v,k:v' or 'k:v k:v'", OFF(tags), NULL),
    S("host", "", "CONTPROF_HOST DD_HOSTNAME", "host tag (default: gethostname)", OFF(host), NULL),
    S("output_dir", "", "CONTPROF_OUTPUT_DIR DD_PROFILING_OUTPUT_PPROF",
      "write profiles here (default ./profiles when no upload is configured)", OFF(output_dir), NULL),
    S("agent_url", "", "CONTPROF_AGENT_URL DD_TRACE_AGENT_URL",
      "agent base URL (http://h:p or unix:///path); uploads to {agent_url}/profiling/v1/input", NOFIELD, check_url),
    S("agent_host", "localhost", "CONTPROF_AGENT_HOST DD_AGENT_HOST",
      "agent host; setting it (or agent_port) enables upload to http://host:port", NOFIELD, NULL),
    {{"agent_port", CP_T_INT, "8126", 1, 65535, "", "CONTPROF_AGENT_PORT DD_TRACE_AGENT_PORT",
      "agent port (see agent_host)"}, F_NONE, NOFIELD, NULL},
    S("api_key", "", "CONTPROF_API_KEY DD_API_KEY",
      "API key for agentless upload (alone it sends nothing anywhere)", OFF(api_key), NULL),
    S("site", "datadoghq.com", "CONTPROF_SITE DD_SITE", "intake site for agentless upload", OFF(site), check_site),
    S("pyroscope_url", "", "CONTPROF_PYROSCOPE_URL PYROSCOPE_SERVER_ADDRESS",
      "also upload to Grafana Pyroscope / Alloy at this base URL (POST {url}/ingest, pprof)", NOFIELD, check_url),
    S("pyroscope_basic_auth", "", "CONTPROF_PYROSCOPE_BASIC_AUTH",
      "'user:password' for Pyroscope basic auth (never logged)", NOFIELD, NULL),
    S("pyroscope_tenant", "", "CONTPROF_PYROSCOPE_TENANT PYROSCOPE_TENANT_ID",
      "Pyroscope tenant (X-Scope-OrgID header) in multi-tenant mode", NOFIELD, NULL),
    S("proxy_url", "", "CONTPROF_PROXY_URL",
      "HTTP(S) proxy for uploads, e.g. http://user:pass@proxy:3128 (default: HTTPS_PROXY/HTTP_PROXY/ALL_PROXY; "
      "NO_PROXY is honoured)", NOFIELD, check_proxy),
    S("ca_file", "", "CONTPROF_CA_FILE", "PEM file of CA certificates to trust for https uploads (in addition "
      "to the system's)", NOFIELD, NULL),
    B("agentless", "false", "CONTPROF_AGENTLESS DD_PROFILING_AGENTLESS",
      "upload straight to https://intake.profile.<site> with api_key (explicit opt-in)", agentless),
    I("upload_period", 60, 1, 3600, "s", "CONTPROF_UPLOAD_PERIOD DD_PROFILING_UPLOAD_PERIOD",
      "seconds per profile", upload_period_s),
    I("upload_timeout_ms", 10000, 100, 600000, "ms", "CONTPROF_UPLOAD_TIMEOUT_MS",
      "timeout of one upload request", upload_timeout_ms),
    I("upload_retries", 3, 0, 10, "", "CONTPROF_UPLOAD_RETRIES",
      "retries after a network error or 5xx (never after 4xx)", upload_retries),
    I("upload_queue", 4, 1, 64, "", "CONTPROF_UPLOAD_QUEUE",
      "profiles waiting for export; when full the oldest is dropped", upload_queue),
    I("output_max_mb", 1024, 0, 1048576, "MiB", "CONTPROF_OUTPUT_MAX_MB",
      "cap on the profiles in output_dir; the oldest of this service go first (0 = no cap)",
      output_max_mb),
    I("output_max_age_h", 168, 0, 876000, "h", "CONTPROF_OUTPUT_MAX_AGE_H",
      "delete this service's profiles in output_dir older than this (0 = keep)", output_max_age_h),
    I("flush_deadline_ms", 5000, 0, 600000, "ms", "CONTPROF_FLUSH_DEADLINE_MS",
      "at stop, wait at most this long for the last profile to be exported", flush_deadline_ms),
    B("cpu_enabled", "true", "CONTPROF_CPU_ENABLED DD_PROFILING_DDPROF_CPU_ENABLED", "collect CPU time", cpu_enabled),
    B("wall_enabled", "true", "CONTPROF_WALL_ENABLED DD_PROFILING_DDPROF_WALL_ENABLED", "collect wall time", wall_enabled),
    B("alloc_enabled", "true", "CONTPROF_ALLOC_ENABLED DD_PROFILING_ALLOCATION_ENABLED DD_PROFILING_MEMORY_ENABLED",
      "collect sampled allocations", alloc_enabled),
    B("heap_enabled", "true", "CONTPROF_HEAP_ENABLED DD_PROFILING_HEAP_ENABLED", "collect live heap", heap_enabled),
    B("lock_enabled", "true", "CONTPROF_LOCK_ENABLED DD_PROFILING_LOCK_ENABLED",
      "collect lock-contention waits (Python threading locks; JVM monitors and j.u.c. locks)", lock_enabled),
    I("lock_samples_per_s", 500, 1, 100000, "", "CONTPROF_LOCK_SAMPLES_PER_S",
      "lock waits sampled per second at most on average (Poisson by wait time; the interval adapts)",
      lock_samples_per_s),
    B("exception_enabled", "true", "CONTPROF_EXCEPTION_ENABLED DD_PROFILING_EXCEPTION_ENABLED",
      "collect sampled thrown exceptions", exception_enabled),
    I("exception_samples_per_s", 500, 1, 100000, "", "CONTPROF_EXCEPTION_SAMPLES_PER_S",
      "exceptions sampled per second at most on average (Poisson by count; the interval adapts)",
      exception_samples_per_s),
    B("alloc_raw_enabled", "true", "CONTPROF_ALLOC_RAW_ENABLED",
      "Python: also sample PyMem_Raw* allocations (C libraries such as zlib)", alloc_raw_enabled),
    {{"follow_children", CP_T_BOOL, "true", 0, 1, "", "CONTPROF_FOLLOW_CHILDREN",
      "python -m contprof: also profile the program's child Python processes (subprocess, os.exec*, "
      "multiprocessing spawn), each with its own profiles, through PYTHONPATH"}, F_NONE, NOFIELD, NULL},
    I("cpu_interval_us", 10000, 100, 1000000, "us", "CONTPROF_CPU_INTERVAL_US", "CPU sampling interval", cpu_interval_us),
    I("wall_interval_us", 10000, 100, 1000000, "us", "CONTPROF_WALL_INTERVAL_US", "wall sampling interval", wall_interval_us),
    I("wall_threads_max", 16, 1, 4096, "", "CONTPROF_WALL_THREADS_MAX", "threads sampled per wall tick", wall_threads_max),
    I("alloc_interval_bytes", 1048576, 1, 1073741824, "bytes", "CONTPROF_ALLOC_INTERVAL_BYTES",
      "mean bytes between allocation samples", alloc_interval_bytes),
    I("max_frames", 64, 1, 599, "", "CONTPROF_MAX_FRAMES DD_PROFILING_MAX_FRAMES", "frames kept per stack", max_frames),
    I("max_samples", 65536, 16, 16777216, "", "CONTPROF_MAX_SAMPLES", "distinct stacks per profile", max_samples),
    B("native_frames", "true", "CONTPROF_NATIVE_FRAMES",
      "native (C/C++) frames in CPU stacks, and CPU samples of every native thread (JVM: JIT, GC, VM)", native_frames),
    S("cpu_signal", "SIGPROF", "CONTPROF_CPU_SIGNAL", "JVM: signal for CPU sampling", OFF(cpu_signal), check_signal),
    B("virtual_threads", "false", "CONTPROF_VIRTUAL_THREADS",
      "JVM 21+: virtual threads' own names on samples and wall time of parked ones (costs at every virtual thread start and mount)",
      virtual_threads),
    {{"log_level", CP_T_STRING, "warn", 0, 0, "", "CONTPROF_LOG_LEVEL",
      "off, error, warn, info or debug"}, F_LOGLEVEL, OFF(log_level), check_level},
};
#define NROWS (sizeof(g_rows) / sizeof(g_rows[0]))

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* writers */
static setting_value g_vals[NROWS];                                   /* g_lock */
static cp_config g_cfg;                                       /* g_lock */
static char g_host[256];
static char g_agent_url[STR_MAX + 32];
static _Atomic bool g_inited;       /* written under g_lock, read lock-free */
static int g_ix_url, g_ix_host, g_ix_port, g_ix_key;          /* set once  */

static const char *const g_levels[] = {"off", "error", "warn", "info", "debug"};

static int level_of(const char *v)
{
    for (int i = 0; i < 5; i++) {
        if (strcasecmp(v, g_levels[i]) == 0)
            return i;
    }
    if (strcasecmp(v, "warning") == 0)
        return CP_LOG_WARN;
    if (v[0] >= '0' && v[0] <= '4' && v[1] == 0)
        return v[0] - '0';
    return -1;
}

static bool check_level(const char *v, const char **expect)
{
    *expect = "one of off, error, warn, info, debug (or 0..4)";
    return level_of(v) >= 0;
}

static bool check_url(const char *v, const char **expect)
{
    *expect = "a URL starting with http://, https:// or unix://";
    return !*v || strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0 ||
           strncmp(v, "unix://", 7) == 0;
}

static bool check_proxy(const char *v, const char **expect)
{
    static const char *const schemes[] = {"http://", "https://", "socks4://", "socks4a://", "socks5://",
                                          "socks5h://"};
    *expect = "a proxy URL such as http://[user:password@]host:port (http, https, socks4, socks5)";
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(v, schemes[i], n) == 0 && v[n])
            return true;
    }
    return !*v;
}

static bool check_site(const char *v, const char **expect)
{
    *expect = "a host name such as datadoghq.com";
    for (const char *p = v; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
            return false;
    }
    return *v != 0;
}

static bool check_signal(const char *v, const char **expect)
{
    *expect = "a signal name such as SIGPROF or SIGVTALRM";
    if (strncmp(v, "SIG", 3) != 0 || !v[3])
        return false;
    for (const char *p = v + 3; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-')
            return false;
    }
    return true;
}

/* Resolve the agent URL: agent_url > http://agent_host:agent_port when
 * either was set above the default > none. Called with g_lock held. */
static void resolve_agent(void)
{
    int url = g_ix_url, host = g_ix_host, port = g_ix_port;
    if (g_vals[url].s[0])
        snprintf(g_agent_url, sizeof(g_agent_url), "%s", g_vals[url].s);
    else if (g_vals[host].src > CP_SRC_DEFAULT || g_vals[port].src > CP_SRC_DEFAULT) {
        bool v6 = strchr(g_vals[host].s, ':') && g_vals[host].s[0] != '['; /* "::1" -> "[::1]" */
        snprintf(g_agent_url, sizeof(g_agent_url), "http://%s%s%s:%lld", v6 ? "[" : "", g_vals[host].s,
                 v6 ? "]" : "", (long long)g_vals[port].i);
    }
    else
        g_agent_url[0] = 0;
    size_t n = strlen(g_agent_url);
    while (n > 0 && g_agent_url[n - 1] == '/')
        g_agent_url[--n] = 0; /* "{agent_url}/profiling/..." must not double the slash */
    g_cfg.agent_url = g_agent_url;
}

/* Copy every value into g_cfg. Called with g_lock held. */
static void rebuild(void)
{
    for (size_t i = 0; i < NROWS; i++) {
        char *f = (char *)&g_cfg + g_rows[i].off;
        switch (g_rows[i].kind) {
        case F_STR: *(const char **)f = g_vals[i].s; break;
        case F_I64: *(int64_t *)f = g_vals[i].i; break;
        case F_BOOL: *(bool *)f = g_vals[i].i != 0; break;
        case F_LOGLEVEL: *(int *)f = level_of(g_vals[i].s); break;
        case F_NONE: break;
        }
    }
    if (!g_cfg.host[0]) {
        if (!g_host[0] && gethostname(g_host, sizeof(g_host) - 1) != 0)
            snprintf(g_host, sizeof(g_host), "unknown");
        g_cfg.host = g_host;
    }
    resolve_agent();
}

static bool parse_bool(const char *v, int64_t *out)
{
    static const char *const yes[] = {"", "1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 5; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return (*out = 1), true;
    }
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, no[i]) == 0)
            return (*out = 0), true;
    }
    return false;
}

static bool parse_int(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    while (end != v && isspace((unsigned char)*end))
        end++;
    if (end == v || *end || errno == ERANGE)
        return false;
    *out = x;
    return true;
}

/* Parse text for row r into *nv. On error writes the expectation. */
static int parse_value(const row *r, const char *text, setting_value *nv, char *expect, size_t en)
{
    const char *what = NULL;
    switch (r->info.type) {
    case CP_T_BOOL:
        snprintf(expect, en, "true/false, yes/no, on/off or 1/0");
        return parse_bool(text, &nv->i) ? CP_OK : CP_EINVAL;
    case CP_T_INT:
        snprintf(expect, en, "an integer in %lld..%lld%s%s%s", (long long)r->info.min,
                 (long long)r->info.max, *r->info.unit ? " (" : "", r->info.unit, *r->info.unit ? ")" : "");
        if (!parse_int(text, &nv->i))
            return CP_EINVAL;
        return nv->i < r->info.min || nv->i > r->info.max ? CP_ERANGE : CP_OK;
    case CP_T_STRING:
        snprintf(expect, en, "at most %d bytes", STR_MAX - 1);
        if (strlen(text) >= STR_MAX)
            return CP_ETOOBIG;
        if (r->check && !r->check(text, &what)) {
            snprintf(expect, en, "%s", what);
            return CP_EINVAL;
        }
        snprintf(nv->s, sizeof(nv->s), "%s", text);
        return CP_OK;
    }
    return CP_EINVAL;
}

static int find_row(const char *name);

static void init_locked(void)
{
    g_ix_url = find_row("agent_url");
    g_ix_host = find_row("agent_host");
    g_ix_port = find_row("agent_port");
    g_ix_key = find_row("api_key");
    for (size_t i = 0; i < NROWS; i++) {
        const row *r = &g_rows[i];
        char expect[160];
        memset(&g_vals[i], 0, sizeof(g_vals[i]));
        if (parse_value(r, r->info.default_str, &g_vals[i], expect, sizeof(expect)) != CP_OK)
            abort(); /* a broken built-in default is a programming error caught by every test */
    }
    rebuild();
    atomic_store_explicit(&g_inited, true, memory_order_release);
}

static void ensure_init(void)
{
    /* Fast path without the lock: cp_config_get runs on every log call. */
    if (atomic_load_explicit(&g_inited, memory_order_acquire))
        return;
    pthread_mutex_lock(&g_lock);
    if (!atomic_load(&g_inited))
        init_locked();
    pthread_mutex_unlock(&g_lock);
}

/* Index of the row called name (case-insensitive, '-' same as '_', an
 * optional "contprof." prefix), or -1. */
static int find_row(const char *name)
{
    if (strncasecmp(name, "contprof.", 9) == 0)
        name += 9;
    for (size_t i = 0; i < NROWS; i++) {
        const char *a = g_rows[i].info.name, *b = name;
        while (*a && (tolower((unsigned char)*b) == *a || (*b == '-' && *a == '_')))
            a++, b++;
        if (!*a && !*b)
            return (int)i;
    }
    return -1;
}

/* Text of the value in effect for row i, for messages. */
static void current_text(size_t i, char *out, size_t n)
{
    if (g_rows[i].info.type == CP_T_STRING)
        snprintf(out, n, "'%s'", strcmp(g_rows[i].info.name, "api_key") == 0 ? "(redacted)" : g_vals[i].s);
    else if (g_rows[i].info.type == CP_T_BOOL)
        snprintf(out, n, "%s", g_vals[i].i ? "true" : "false");
    else
        snprintf(out, n, "%lld", (long long)g_vals[i].i);
}

static const char *const g_src_names[] = {"default", "file", "env", "system property", "option"};

static cp_setting_info g_infos[NROWS]; /* public view, filled once */
static atomic_uint g_invalid;          /* values refused since start  */

static void fill_infos(void)
{
    for (size_t i = 0; i < NROWS; i++)
        g_infos[i] = g_rows[i].info;
}

int cp__config_set_from(const char *name, const char *value, cp_source src, const char *origin)
{
    if (!name || (unsigned)src > CP_SRC_OPTION)
        return CP_EINVAL;
    const char *from = origin && *origin ? origin : g_src_names[src];
    int i = find_row(name);
    if (i < 0) {
        cp_log(CP_LOG_WARN, "unknown setting '%s' (from %s); ignored", name, from);
        return CP_EUNKNOWN;
    }
    ensure_init();
    char expect[160], cur[STR_MAX + 16], *shown = cur;
    static setting_value nv; /* g_lock; 2 KiB kept off callers' (possibly small) stacks */
    pthread_mutex_lock(&g_lock);
    int err = CP_OK;
    if (src >= g_vals[i].src) {
        nv = g_vals[i];
        err = parse_value(&g_rows[i], value ? value : "", &nv, expect, sizeof(expect));
        if (err == CP_OK) {
            nv.src = src;
            snprintf(nv.origin, sizeof(nv.origin), "%s", from);
            g_vals[i] = nv;
            rebuild();
        }
        current_text((size_t)i, cur, sizeof(cur));
    }
    pthread_mutex_unlock(&g_lock);
    if (err != CP_OK) {
        atomic_fetch_add(&g_invalid, 1);
        bool secret = strcmp(g_rows[i].info.name, "api_key") == 0;
        cp_log(CP_LOG_ERROR, "invalid value '%.200s' for %s (from %s): expected %s; using %.200s",
               secret ? "(redacted)" : (value ? value : ""), g_rows[i].info.name, from, expect, shown);
    }
    return err;
}

int cp_config_set(const char *name, const char *value, cp_source src)
{
    return cp__config_set_from(name, value, src, NULL);
}

void cp_config_reset(void)
{
    pthread_mutex_lock(&g_lock);
    init_locked();
    pthread_mutex_unlock(&g_lock);
}

void cp__config_after_fork(void)
{
    g_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
}

const cp_config *cp_config_get(void)
{
    ensure_init();
    return &g_cfg;
}

const char *cp__config_text(const char *name, char *buf, size_t n)
{
    int i = find_row(name);
    if (i < 0)
        return NULL;
    ensure_init();
    if (g_rows[i].info.type == CP_T_STRING)
        return g_vals[i].s;
    if (g_rows[i].info.type == CP_T_BOOL)
        return g_vals[i].i ? "true" : "false";
    snprintf(buf, n, "%lld", (long long)g_vals[i].i);
    return buf;
}

const char *cp__config_api_key(void)
{
    /* Called by logging, possibly while settings are not initialised yet;
     * the static array is always a valid (possibly empty) string. */
    return g_vals[g_ix_key].s;
}

const cp_setting_info *cp_settings_table(size_t *n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fill_infos);
    if (n)
        *n = NROWS;
    return g_infos;
}

/* A value shown in reports: secrets never, URL passwords masked. */
static void shown_value(size_t i, char *out, size_t n)
{
    const char *name = g_rows[i].info.name;
    if (g_rows[i].info.type != CP_T_STRING) {
        current_text(i, out, n);
        return;
    }
    if (strcmp(name, "api_key") == 0 || strstr(name, "password") || strstr(name, "_auth")) {
        snprintf(out, n, "%s", g_vals[i].s[0] ? "(redacted)" : "''");
        return;
    }
    char masked[STR_MAX + 8];
    cp__mask_url_password(g_vals[i].s, masked, sizeof(masked));
    snprintf(out, n, "'%s'", masked);
}

void cp__mask_url_password(const char *url, char *out, size_t n)
{
    /* scheme://user:password@host -> scheme://user:***@host */
    const char *at = strchr(url, '@'), *sch = strstr(url, "://");
    const char *colon = sch && at && at > sch ? memchr(sch + 3, ':', (size_t)(at - sch - 3)) : NULL;
    if (colon)
        snprintf(out, n, "%.*s***%s", (int)(colon + 1 - url), url, at);
    else
        snprintf(out, n, "%s", url);
}

char *cp__config_report(unsigned *invalid)
{
    ensure_init();
    cp_buf b;
    cp_buf_init(&b, 1u << 20);
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < NROWS; i++) {
        char val[STR_MAX + 16], line[STR_MAX + 256];
        shown_value(i, val, sizeof(val));
        const char *from = g_vals[i].src == CP_SRC_DEFAULT ? "default" : g_vals[i].origin;
        int k = snprintf(line, sizeof(line), "setting %s = %s (%s)\n", g_rows[i].info.name, val,
                         from[0] ? from : g_src_names[g_vals[i].src]);
        if (k > 0)
            cp_buf_append(&b, line, (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
    }
    pthread_mutex_unlock(&g_lock);
    if (invalid)
        *invalid = atomic_load(&g_invalid);
    if (cp_buf_append(&b, "", 1) != CP_OK) {
        cp_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}
