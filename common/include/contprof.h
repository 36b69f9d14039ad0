/*
 * contprof.h — the flat C API of the contprof core (libcontprof_core).
 *
 * The core knows nothing of Python or the JVM. Front ends (python_ext/,
 * jvm_agent/) collect raw samples inside their runtime, resolve them to
 * strings off the hot path, and hand them to the core through this API.
 * The explorer (explorer/) uses the profile and pprof-decoding parts.
 *
 * Layers of this header:
 *   1. errors, buffers, logging
 *   2. settings (one table; precedence option > sysprop > env > file > default)
 *   3. profiles: a standalone aggregation object + pprof encoder/decoder
 *   4. the collector: one process-wide profile, scheduler thread, exporters
 *   5. self-metrics and thread registration
 *
 * Conventions: every function that can fail returns an int error code
 * (CP_OK == 0, negative on error, see cp_strerror). Strings passed in are
 * copied; the caller keeps ownership. Stacks are ordered leaf first:
 * frames[0] is the innermost (currently executing) frame, as in pprof.
 *
 * Thread safety: everything in sections 2–5 is safe to call from any
 * thread, EXCEPT that nothing here is async-signal-safe apart from the
 * functions marked "signal-safe" (the cp_metrics_* counters).
 */
#ifndef CONTPROF_H
#define CONTPROF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CP_PROFILER_VERSION "0.1.0"

/* ------------------------------------------------------------------ */
/* 1. Errors, buffers, logging                                          */
/* ------------------------------------------------------------------ */

#define CP_ERRNO_MAP(X)                                   \
    X(OK, 0, "ok")                                        \
    X(ENOMEM, -1, "out of memory")                        \
    X(EINVAL, -2, "invalid argument")                     \
    X(ERANGE, -3, "value out of range")                   \
    X(EUNKNOWN, -4, "unknown setting")                    \
    X(EIO, -5, "I/O error")                               \
    X(EFULL, -6, "table full")                            \
    X(ESTATE, -7, "wrong state")                          \
    X(ENET, -8, "network error")                          \
    X(EHTTP, -9, "HTTP error status")                     \
    X(ECORRUPT, -10, "corrupt input")                     \
    X(ETOOBIG, -11, "input too large")                    \
    X(ETIMEDOUT, -12, "timed out")

typedef enum {
#define CP__ERR_ENUM(name, val, msg) CP_##name = (val),
    CP_ERRNO_MAP(CP__ERR_ENUM)
#undef CP__ERR_ENUM
} cp_err;

/* Static description of an error code; never NULL. */
const char *cp_strerror(int err);

/* A growable byte buffer with a hard cap (limit 0 = no cap beyond SIZE_MAX).
 * Owned by whoever declared it; release with cp_buf_free. */
typedef struct cp_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t limit;
} cp_buf;

void cp_buf_init(cp_buf *b, size_t limit);
int cp_buf_append(cp_buf *b, const void *data, size_t n); /* CP_ETOOBIG over limit */
void cp_buf_free(cp_buf *b);

enum { CP_LOG_OFF = 0, CP_LOG_ERROR = 1, CP_LOG_WARN = 2, CP_LOG_INFO = 3, CP_LOG_DEBUG = 4 };

/* One line on stderr, prefixed "contprof: " (and "[debug] " etc. for
 * non-error levels), filtered by the log_level setting. Never prints an API
 * key: the core redacts the configured api_key from every message. */
void cp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cp_vlog(int level, const char *fmt, va_list ap);
bool cp_log_enabled(int level);

/* ------------------------------------------------------------------ */
/* 2. Settings                                                          */
/* ------------------------------------------------------------------ */

/* Where a value came from; a higher source wins whatever the call order. */
typedef enum {
    CP_SRC_DEFAULT = 0,  /* built-in default, or a front end's own default */
    CP_SRC_FILE = 1,     /* config file (.properties, INI, pyproject)       */
    CP_SRC_ENV = 2,      /* environment: CONTPROF_* beats the DD_* names    */
    CP_SRC_SYSPROP = 3,  /* Java system properties -Dcontprof.x=...         */
    CP_SRC_OPTION = 4,   /* explicit: start(**kw), -agentpath options       */
} cp_source;

typedef enum { CP_T_STRING, CP_T_INT, CP_T_BOOL } cp_setting_type;

/* One row of the settings table (read-only, for --help and docs). */
typedef struct cp_setting_info {
    const char *name;        /* e.g. "upload_period"                     */
    cp_setting_type type;
    const char *default_str; /* default as text                          */
    int64_t min, max;        /* bounds for CP_T_INT                      */
    const char *unit;        /* "s", "ms", "us", "bytes", "" ...         */
    const char *env_names;   /* "CONTPROF_UPLOAD_PERIOD DD_PROFILING_UPLOAD_PERIOD" */
    const char *help;        /* one line                                 */
} cp_setting_info;

/* The parsed settings in effect. Strings are never NULL ("" = unset). */
typedef struct cp_config {
    const char *service;     /* default: front end sets e.g. script name  */
    const char *env;
    const char *version;
    const char *tags;        /* user tags "k:v,k:v" or "k:v k:v"          */
    const char *host;        /* default: gethostname()                    */
    const char *output_dir;  /* "" = ./profiles when no other destination */
    const char *agent_url;   /* resolved: agent_url > DD_TRACE_AGENT_URL > http://DD_AGENT_HOST:DD_TRACE_AGENT_PORT */
    const char *api_key;     /* agentless when set and no agent configured */
    const char *site;        /* default "datadoghq.com"                   */
    int64_t upload_period_s; /* 1..3600, default 60                       */
    int64_t upload_timeout_ms;   /* per request, default 10000            */
    int64_t upload_retries;      /* default 3                              */
    int64_t upload_queue;        /* profiles waiting for upload, default 4 */
    int64_t flush_deadline_ms;   /* at stop, default 5000                  */
    bool cpu_enabled, wall_enabled, alloc_enabled, heap_enabled;
    int64_t cpu_interval_us;     /* default 10000 (100 Hz)                 */
    int64_t wall_interval_us;    /* default 10000 (100 Hz)                 */
    int64_t wall_threads_max;    /* threads sampled per wall tick, default 16 */
    int64_t alloc_interval_bytes;/* mean Poisson interval, default 1 MiB   */
    int64_t max_frames;          /* default 64, 1..599                     */
    int64_t max_samples;         /* distinct stacks per profile cap        */
    const char *cpu_signal;      /* JVM: "SIGPROF" default                 */
    int log_level;               /* CP_LOG_*, default CP_LOG_WARN          */
} cp_config;

/* The table, for --help. *n receives its length. */
const cp_setting_info *cp_settings_table(size_t *n);

/* Set one setting from text. Unknown names: CP_EUNKNOWN and a warning
 * (names may carry a "contprof." prefix, which is stripped). Bad values:
 * one line "contprof: invalid value 'x' for upload_period (from env
 * CONTPROF_UPLOAD_PERIOD): expected an integer in 1..3600 (seconds); using
 * 60" and CP_EINVAL/CP_ERANGE; the previous value stays. A value from a
 * lower source than the current one is ignored (CP_OK). */
int cp_config_set(const char *name, const char *value, cp_source src);

/* Called for a key the core does not know (e.g. the JVM agent's "config",
 * "help"); return true if the front end handled it, false to have the core
 * warn "unknown setting". */
typedef bool (*cp_option_cb)(const char *key, const char *value, void *ctx);

/* "k=v,k=v" as -agentpath passes it (a bare "k" means value ""). Returns the
 * first error, applies the rest. unknown may be NULL. */
int cp_config_parse_options(const char *opts, cp_source src, cp_option_cb unknown, void *ctx);

/* Java-style .properties file (key=value / key: value, # ! comments,
 * backslash continuations). Missing file: CP_EIO and a warning. */
int cp_config_load_properties(const char *path, cp_source src);

/* Read CONTPROF_<NAME> and the Datadog names from the environment. */
int cp_config_load_env(void);

/* Reset every setting to defaults (tests; also used by stop()+start()). */
void cp_config_reset(void);

/* The settings in effect. Valid until the next cp_config_set/reset. */
const cp_config *cp_config_get(void);

/* JSON object of the settings in effect (api_key redacted). Caller frees. */
char *cp_config_to_json(void);

/* ------------------------------------------------------------------ */
/* 3. Profiles: aggregation, pprof encoding and decoding                */
/* ------------------------------------------------------------------ */

typedef struct cp_frame {
    const char *name;        /* "module.Class.method"                     */
    const char *system_name; /* may be NULL (= name)                      */
    const char *filename;    /* may be NULL                               */
    int64_t line;            /* 0 = unknown                               */
} cp_frame;

typedef struct cp_label {
    const char *key;         /* "thread id", "thread name", "class name"  */
    const char *str;         /* string label, or NULL for numeric          */
    int64_t num;
    const char *num_unit;    /* may be NULL                                */
} cp_label;

typedef struct cp_sample_type {
    const char *type;        /* "cpu-time"    */
    const char *unit;        /* "nanoseconds" */
} cp_sample_type;

typedef struct cp_limits {
    size_t max_samples;      /* distinct (stack,labels) keys; default 65536 */
    size_t max_locations;    /* default 262144                              */
    size_t max_functions;    /* default 131072                              */
    size_t max_strings;      /* default 262144                              */
    size_t max_string_bytes; /* default 32 MiB                              */
    unsigned max_frames;     /* default 64, clamped to 1..599               */
} cp_limits;

typedef struct cp_profile cp_profile;

/* A profile with the given sample types (copied). lim may be NULL. */
cp_profile *cp_profile_new(const cp_sample_type *types, size_t ntypes, const cp_limits *lim);
void cp_profile_free(cp_profile *p);

/* Add values (one per sample type) for a stack (leaf first) and labels.
 * Equal stack+labels aggregate (values summed). A stack longer than
 * max_frames keeps its max_frames-1 leaf-most frames and ends with a
 * synthetic "<N frames omitted>" frame. When a table is full the values go
 * to a single "[overflow]" sample and CP_EFULL is returned (counted). */
int cp_profile_add(cp_profile *p, const cp_frame *frames, size_t nframes,
                   const int64_t *values, const cp_label *labels, size_t nlabels);

void cp_profile_set_time(cp_profile *p, int64_t start_unix_ns, int64_t duration_ns);
void cp_profile_set_period(cp_profile *p, const cp_sample_type *period_type, int64_t period);
/* Free-form comment strings (pprof field 13), e.g. "contprof 0.1.0". */
int cp_profile_add_comment(cp_profile *p, const char *comment);

typedef struct cp_profile_stats {
    size_t samples, locations, functions, strings;
    uint64_t adds, overflowed; /* overflowed = adds that went to [overflow] */
} cp_profile_stats;
void cp_profile_stats_get(const cp_profile *p, cp_profile_stats *out);

/* Encode as pprof; gzip'd when gzip is true. Appends to *out. */
int cp_profile_encode(const cp_profile *p, bool gzip, cp_buf *out);

/* Decoded pprof (for the explorer and tests). All strings point into the
 * decoded string table, owned by the cp_pprof. */
typedef struct cp_pprof_label {
    const char *key, *str, *num_unit;
    int64_t num;
} cp_pprof_label;

typedef struct cp_pprof_sample {
    size_t nlocs;
    const uint64_t *location_ids; /* leaf first */
    const int64_t *values;        /* n_sample_types of them */
    size_t nlabels;
    const cp_pprof_label *labels;
} cp_pprof_sample;

typedef struct cp_pprof_line {
    uint64_t function_id;
    int64_t line;
} cp_pprof_line;

typedef struct cp_pprof_location {
    uint64_t id, mapping_id, address;
    size_t nlines;
    const cp_pprof_line *lines; /* inlined: last entry is the caller */
} cp_pprof_location;

typedef struct cp_pprof_function {
    uint64_t id;
    const char *name, *system_name, *filename;
    int64_t start_line;
} cp_pprof_function;

typedef struct cp_pprof {
    size_t n_sample_types;
    cp_sample_type *sample_types;
    size_t n_samples;
    cp_pprof_sample *samples;
    size_t n_locations;
    cp_pprof_location *locations;
    size_t n_functions;
    cp_pprof_function *functions;
    size_t n_strings;
    const char **strings;
    size_t n_comments;
    const char **comments;
    int64_t time_nanos, duration_nanos, period;
    cp_sample_type period_type;
    int64_t default_sample_type; /* index into sample_types, or -1 */
} cp_pprof;

/* Decode pprof bytes, gzip'd or not (detected). Inflated size is capped at
 * max_inflated (0 = 256 MiB): a bigger one is CP_ETOOBIG (zip bombs).
 * Malformed input is CP_ECORRUPT; *out is only set on CP_OK. */
int cp_pprof_decode(const uint8_t *data, size_t len, size_t max_inflated, cp_pprof **out);
void cp_pprof_free(cp_pprof *pp);
/* Lookup by id (NULL if absent); O(1) when ids are dense 1-based. */
const cp_pprof_location *cp_pprof_location_by_id(const cp_pprof *pp, uint64_t id);
const cp_pprof_function *cp_pprof_function_by_id(const cp_pprof *pp, uint64_t id);
/* Index of the sample type named type, or -1. */
int cp_pprof_type_index(const cp_pprof *pp, const char *type);

/* ------------------------------------------------------------------ */
/* 4. The collector: process-wide profile, scheduler, exporters         */
/* ------------------------------------------------------------------ */

/* The value columns of the collector's profile. A front end passes a full
 * int64_t[CP_V__COUNT] to cp_add_sample with zeros where it has nothing;
 * only enabled kinds are encoded. */
typedef enum {
    CP_V_CPU_TIME = 0,   /* cpu-time / nanoseconds          */
    CP_V_CPU_SAMPLES,    /* cpu-samples / count             */
    CP_V_WALL_TIME,      /* wall-time / nanoseconds         */
    CP_V_WALL_SAMPLES,   /* wall-samples / count            */
    CP_V_ALLOC_SPACE,    /* alloc-space / bytes             */
    CP_V_ALLOC_SAMPLES,  /* alloc-samples / count           */
    CP_V_HEAP_SPACE,     /* heap-space / bytes              */
    CP_V_HEAP_SAMPLES,   /* heap-live-samples / count       */
    CP_V_LOCK_WAIT,      /* lock-acquire-wait / nanoseconds */
    CP_V_LOCK_COUNT,     /* lock-acquire / count            */
    CP_V_EXC_SAMPLES,    /* exception-samples / count       */
    CP_V__COUNT
} cp_value_index;

/* Bit i set = kinds producing column pair i: */
enum {
    CP_KIND_CPU = 1u << 0,
    CP_KIND_WALL = 1u << 1,
    CP_KIND_ALLOC = 1u << 2,
    CP_KIND_HEAP = 1u << 3,
    CP_KIND_LOCK = 1u << 4,
    CP_KIND_EXCEPTION = 1u << 5,
};

typedef struct cp_runtime_desc {
    const char *family;          /* "python" | "java" (upload "family")    */
    const char *language;        /* "python" | "jvm"  (tag language:)      */
    const char *runtime;         /* "CPython" | java.vm.name               */
    const char *runtime_version; /* "3.11.7" | java.version                */
    unsigned kinds;              /* CP_KIND_* the front end can produce;
                                    intersected with the *_enabled settings */
} cp_runtime_desc;

/* Called on the scheduler thread just before the current profile is
 * swapped out (every upload period and at stop): the front end drains its
 * buffers into the collector, adds live-heap samples, refreshes runtime
 * info. Must not block for long; must not call cp_stop. */
typedef void (*cp_export_hook)(void *ctx);
void cp_set_export_hook(cp_export_hook fn, void *ctx);

/* Start collecting with the settings in effect (call cp_config_* first).
 * Starts the scheduler thread. CP_ESTATE if already running. */
int cp_start(const cp_runtime_desc *rt);

/* Stop: run the export hook, export the last partial profile and wait for
 * the exporters at most flush_deadline_ms (a hanging intake is abandoned,
 * counted and logged). Idempotent. Never frees state a late thread can
 * still touch through cp_add_sample (which then returns CP_ESTATE). */
void cp_stop(void);

bool cp_is_running(void);

/* In a forked child, before anything else: forget the parent's threads and
 * locks, take a new runtime-id and pid; if the parent was running, start
 * again (new scheduler thread). Safe to call when not running. */
int cp_after_fork_child(void);

/* Add one sample to the current profile. values has CP_V__COUNT entries.
 * Not signal-safe (takes a mutex); front ends call it off the hot path. */
int cp_add_sample(const cp_frame *frames, size_t nframes, const int64_t *values,
                  const cp_label *labels, size_t nlabels);

/* Runtime info: a JSON object. The core fills host, os, kernel, arch,
 * cpu_count, pid, process_start_time, profiler_version, settings and
 * profiler metrics; the front end adds its runtime's keys. json_value is
 * raw JSON (an object, array, string in quotes, number...); it is checked
 * for well-formedness (CP_EINVAL otherwise). Replaces an earlier key. */
int cp_runtime_info_set(const char *key, const char *json_value);
int cp_runtime_info_set_str(const char *key, const char *value); /* quotes+escapes */

/* The tags string "service:x,env:y,...,profiler_version:0.1.0". Caller frees. */
char *cp_tags_string(void);
/* This process's runtime-id (UUID v4 text), new after fork. */
const char *cp_runtime_id(void);

/* Export the current profile now (tests, explorer demo); waits up to
 * timeout_ms for it to be written/uploaded. */
int cp_flush(int64_t timeout_ms);

/* One human line per destination, e.g. "profiles written to
 * /abs/profiles (go tool pprof -top <file>)". Caller frees. */
char *cp_destinations_describe(void);
/* Path of the most recent profile file written, "" if none. Caller frees. */
char *cp_last_profile_path(void);

/* Top-n functions by self value of column vi (e.g. CP_V_CPU_TIME), summed
 * over every profile since start, as a text table. Caller frees. */
char *cp_summary_top(int vi, int n);

/* ------------------------------------------------------------------ */
/* 5. Self-metrics                                                      */
/* ------------------------------------------------------------------ */

typedef struct cp_metrics {
    uint64_t samples_taken;      /* front-end samples recorded            */
    uint64_t samples_dropped;    /* lost on contention / full buffers     */
    uint64_t samples_overflowed; /* went to [overflow] (table caps)       */
    uint64_t profiles_exported;
    uint64_t profiles_dropped;   /* upload queue full, oldest dropped     */
    uint64_t upload_failures;
    uint64_t upload_retries;
    int64_t last_profile_cpu_ns;     /* process CPU over the last profile */
    int64_t last_profiler_cpu_ns;    /* profiler threads' CPU, same span  */
    int64_t last_hook_ns;            /* time in hooks/handlers, same span */
    double last_overhead_pct;        /* (profiler+hook)/process * 100     */
    char last_error[256];
} cp_metrics;

void cp_metrics_get(cp_metrics *out);

/* Signal-safe counters (lock-free atomics), for front-end hot paths. */
void cp_metrics_add_taken(uint64_t n);
void cp_metrics_add_dropped(uint64_t n);
void cp_metrics_add_hook_ns(int64_t ns);
/* Signal-safe monotonic clock in ns, for measuring hook time. */
int64_t cp_now_ns(void);

/* Mark the calling thread as the profiler's own (sampler, resolver): its
 * CPU time counts as profiler cost. At most 32 threads; returns CP_EFULL. */
int cp_thread_register_self(void);
void cp_thread_unregister_self(void);

#ifdef __cplusplus
}
#endif
#endif /* CONTPROF_H */
