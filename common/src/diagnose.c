/*
 * diagnose.c — the report a user pastes into a support ticket, and the
 * health checks of the destinations.
 *
 * The report names the machine (OS release, kernel, architecture, CPUs,
 * memory, container limits), the runtime (the front end's "runtime_facts"
 * runtime-info key), the profiler build, every setting with its source
 * (secrets redacted) and each destination with a live check: the output
 * directory is written to (a temp file, removed), the intake gets one
 * request with a short timeout and its status and latency are shown. Any
 * HTTP answer means reachable; a transport error means not.
 *
 * Used three ways: cp_diagnose() for `python -m contprof --diagnose` and
 * the JVM's `diagnose` option (print, exit 0/1); cp__diagnose_at_start()
 * on the scheduler thread when a run starts (problems as warnings, the
 * whole report at debug level), so a broken destination is reported before
 * the first profile is due, not when it fails.
 */
#include "diagnose.h"

#include "curl_dl.h"
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#include "alloc.h"
#include "config_internal.h"
#include "export.h"
#include "runtime_info.h"

#define CHECK_TIMEOUT_MS 3000

/* The first line of path that starts with key=, value unquoted, into out. */
static bool read_keyed(const char *path, const char *key, char *out, size_t n)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char line[512];
    size_t kl = strlen(key);
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, kl) != 0 || line[kl] != '=')
            continue;
        char *v = line + kl + 1;
        v[strcspn(v, "\n")] = 0;
        size_t len = strlen(v);
        if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0]) {
            v[len - 1] = 0;
            v++;
        }
        snprintf(out, n, "%s", v);
        found = true;
    }
    fclose(f);
    return found;
}

static void read_first_line(const char *path, char *out, size_t n)
{
    out[0] = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(out, (int)n, f))
        out[strcspn(out, "\n")] = 0;
    fclose(f);
}

static void add(cp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(cp_buf *b, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (k > 0)
        cp_buf_append(b, line, (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
}

static void machine_lines(cp_buf *b)
{
    char pretty[256] = "unknown", id[64] = "", ver[64] = "";
    if (!read_keyed("/etc/os-release", "PRETTY_NAME", pretty, sizeof(pretty)))
        read_keyed("/usr/lib/os-release", "PRETTY_NAME", pretty, sizeof(pretty));
    read_keyed("/etc/os-release", "ID", id, sizeof(id));
    read_keyed("/etc/os-release", "VERSION_ID", ver, sizeof(ver));
    add(b, "os: %s (id %s, version %s)\n", pretty, id[0] ? id : "?", ver[0] ? ver : "?");
    struct utsname u;
    if (uname(&u) == 0)
        add(b, "kernel: %s %s %s; arch %s\n", u.sysname, u.release, u.version, u.machine);
    long online = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    cpu_set_t set;
    int usable = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : (int)online;
    add(b, "cpus: %ld online, %d usable by this process; memory %.1f GiB\n", online, usable,
        pages > 0 && psz > 0 ? (double)pages * (double)psz / (1024.0 * 1024 * 1024) : 0.0);
    /* cgroup v2 limits of this process's own group ("max" = none). */
    char cg[512] = "", path[700], cpu[64] = "", mem[64] = "";
    read_first_line("/proc/self/cgroup", cg, sizeof(cg));
    const char *rel = strncmp(cg, "0::", 3) == 0 ? cg + 3 : NULL;
    if (rel) {
        snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", rel);
        read_first_line(path, cpu, sizeof(cpu));
        snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", rel);
        read_first_line(path, mem, sizeof(mem));
    }
    bool container = access("/.dockerenv", F_OK) == 0 || access("/run/.containerenv", F_OK) == 0 ||
                     getenv("KUBERNETES_SERVICE_HOST") != NULL;
    add(b, "container: %s; cgroup %s; cpu.max %s; memory.max %s\n", container ? "yes" : "no hint",
        rel ? rel : (cg[0] ? "v1" : "unknown"), cpu[0] ? cpu : "n/a", mem[0] ? mem : "n/a");
}

static void build_lines(cp_buf *b)
{
    curl_version_info_data *cv = cp__curl_load() ? curl_version_info(CURLVERSION_NOW) : NULL;
    add(b, "contprof: %s (built %s %s with %s; zlib %s; libcurl %s%s%s)\n", CP_PROFILER_VERSION, __DATE__,
        __TIME__,
#ifdef __clang__
        "clang " __clang_version__,
#else
        "gcc " __VERSION__,
#endif
        zlibVersion(), cv ? cv->version : cp__curl_error(), cv && cv->ssl_version ? ", " : "",
        cv && cv->ssl_version ? cv->ssl_version : "");
    add(b, "process: pid %d, runtime-id %s\n", (int)getpid(), cp_runtime_id());
}

int cp__diag_check_dir(const char *dir, char *msg, size_t n)
{
    int err = cp__mkdirs(dir);
    if (err == CP_OK) {
        char probe[PATH_MAX + 32];
        snprintf(probe, sizeof(probe), "%s/.contprof-check-XXXXXX", dir);
        int fd = mkostemp(probe, O_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            unlink(probe);
            snprintf(msg, n, "writable");
            return CP_OK;
        }
        err = CP_EIO;
    }
    snprintf(msg, n, "NOT writable: %s", strerror(errno ? errno : EACCES));
    return err == CP_OK ? CP_EIO : err;
}

int cp__diag_check_url(const cp__dest *d, const char *url, const char *unix_socket, atomic_bool *abort, char *msg,
                       size_t n)
{
    if (!cp__curl_load()) {
        snprintf(msg, n, "NOT reachable: libcurl unavailable: %s", cp__curl_error());
        return CP_ENET;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(msg, n, "not checked: out of memory");
        return CP_ENOMEM;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    cp__http_base_opts(c, d, url, unix_socket, CHECK_TIMEOUT_MS, abort, errbuf);
    int64_t t0 = cp_now_ns();
    CURLcode rc = (CURLcode)cp__http_perform(c, abort); /* cp_stop ends it within 50 ms */
    double ms = (double)(cp_now_ns() - t0) / 1e6;
    long status = 0;
    int err = CP_OK;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        snprintf(msg, n, "reachable (HTTP %ld in %.0f ms)", status, ms);
    } else {
        snprintf(msg, n, "NOT reachable: %s (after %.0f ms)", errbuf[0] ? errbuf : curl_easy_strerror(rc), ms);
        err = rc == CURLE_OPERATION_TIMEDOUT ? CP_ETIMEDOUT : CP_ENET;
    }
    curl_easy_cleanup(c);
    return err;
}

/* The URL to probe for an intake: the agent's /info (what tracers ask the
 * Datadog agent at start), else the intake URL itself. */
static void probe_url(const cp__dest *d, char *out, size_t n)
{
    const char *suffix = "/profiling/v1/input";
    size_t ul = strlen(d->url), sl = strlen(suffix);
    if (ul > sl && strcmp(d->url + ul - sl, suffix) == 0)
        snprintf(out, n, "%.*s/info", (int)(ul - sl), d->url);
    else
        snprintf(out, n, "%s", d->url);
}

/* Destination lines with their checks; returns the number of problems. */
static int destination_lines(cp_buf *b, const cp__dest *d, atomic_bool *abort)
{
    int problems = 0;
    char msg[512];
    if (!d->output_dir[0] && !d->url[0] && !d->pyroscope_url[0]) {
        add(b, "destination: none\n");
        return 1;
    }
    if (d->output_dir[0]) {
        problems += cp__diag_check_dir(d->output_dir, msg, sizeof(msg)) != CP_OK;
        add(b, "destination: files in %s: %s\n", d->output_dir, msg);
    }
    if (d->url[0]) {
        char probe[sizeof(d->url) + 8];
        probe_url(d, probe, sizeof(probe));
        char via[1200];
        cp__http_proxy_describe(d, d->url, d->unix_socket, via, sizeof(via));
        problems += cp__diag_check_url(d, probe, d->unix_socket, abort, msg, sizeof(msg)) != CP_OK;
        add(b, "destination: upload to %s%s%s%s, %s: %s\n", d->url, d->unix_socket[0] ? " via unix socket " : "",
            d->unix_socket, d->api_key[0] ? " (agentless)" : "", via, msg);
    }
    if (d->pyroscope_url[0]) {
        char probe[sizeof(d->pyroscope_url) + 8], via[1200];
        snprintf(probe, sizeof(probe), "%s/ready", d->pyroscope_url);
        cp__http_proxy_describe(d, probe, NULL, via, sizeof(via));
        problems += cp__diag_check_url(d, probe, NULL, abort, msg, sizeof(msg)) != CP_OK;
        add(b, "destination: Pyroscope at %s%s%s, %s: %s\n", d->pyroscope_url,
            d->pyroscope_tenant[0] ? " tenant " : "", d->pyroscope_tenant, via, msg);
    }
    return problems;
}

static char *report(int *problems, atomic_bool *abort)
{
    cp_buf b;
    cp_buf_init(&b, 4u << 20);
    machine_lines(&b);
    char *facts = cp__runtime_info_get("runtime_facts");
    add(&b, "runtime: %s\n", facts ? facts : "(not described by the front end)");
    cp__free(facts);
    build_lines(&b);
    unsigned invalid = 0;
    char *settings = cp__config_report(&invalid);
    if (settings) {
        cp_buf_append(&b, settings, strlen(settings));
        cp__free(settings);
    }
    int bad = invalid > 0;
    if (invalid)
        add(&b, "problem: %u setting value(s) were refused (see the lines above; defaults are used)\n", invalid);
    cp__dest d;
    cp__dest_from_config(cp_config_get(), &d);
    bad += destination_lines(&b, &d, abort);
    add(&b, "status: %s\n", bad ? "PROBLEMS FOUND" : "healthy");
    *problems = bad;
    if (cp_buf_append(&b, "", 1) != CP_OK) {
        cp_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

int cp_diagnose(char **out)
{
    int problems = 0;
    char *r = report(&problems, NULL);
    if (out)
        *out = r;
    else
        cp__free(r);
    return r ? problems : CP_ENOMEM;
}

void cp__diagnose_at_start(const cp__dest *d, atomic_bool *abort)
{
    /* Each destination is checked once, by the same lines the report
     * prints: its failed checks at warn level whatever the log level, the
     * whole report at debug level. */
    bool debug = cp_log_enabled(CP_LOG_DEBUG);
    int problems = 0;
    char *r = NULL;
    if (debug) {
        r = report(&problems, abort);
    } else {
        cp_buf b;
        cp_buf_init(&b, 1u << 16);
        destination_lines(&b, d, abort);
        r = cp_buf_append(&b, "", 1) == CP_OK ? (char *)b.data : (cp_buf_free(&b), NULL);
    }
    for (char *line = r, *nl; line && *line; line = nl + 1) {
        if (!(nl = strchr(line, '\n')))
            break;
        *nl = 0;
        bool broken = strncmp(line, "destination:", 12) == 0 && strstr(line, ": NOT ");
        if (broken || debug)
            cp_log(broken ? CP_LOG_WARN : CP_LOG_DEBUG, "%s", line);
    }
    cp__free(r);
}
