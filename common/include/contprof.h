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
 *   6. native stacks: a signal-safe libunwind unwinder and its symboliser
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

#define CP_PROFILER_VERSION "0.2.0"

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
    const char *api_key;     /* used only with agentless (never alone)    */
    const char *site;        /* default "datadoghq.com"                   */
    bool agentless;          /* opt-in: upload to intake.profile.<site>   */
    int64_t upload_period_s; /* 1..3600, default 60                       */
    int64_t upload_timeout_ms;   /* per request, default 10000            */
    int64_t upload_retries;      /* default 3                              */
    int64_t upload_queue;        /* profiles waiting for upload, default 4 */
    int64_t flush_deadline_ms;   /* at stop, default 5000                  */
    bool cpu_enabled, wall_enabled, alloc_enabled, heap_enabled;
    bool lock_enabled, exception_enabled;
    int64_t lock_samples_per_s;      /* lock-wait samples aimed at, default 500 */
    int64_t exception_samples_per_s; /* exception samples aimed at, default 500 */
    bool alloc_raw_enabled;      /* Python: also the PyMem_Raw* domain      */
    int64_t cpu_interval_us;     /* default 10000 (100 Hz)                 */
    int64_t wall_interval_us;    /* default 10000 (100 Hz)                 */
    int64_t wall_threads_max;    /* threads sampled per wall tick, default 16 */
    int64_t alloc_interval_bytes;/* mean Poisson interval, default 1 MiB   */
    int64_t max_frames;          /* default 64, 1..599                     */
    int64_t max_samples;         /* distinct stacks per profile cap        */
    bool native_frames;          /* native frames + native threads, default on */
    const char *cpu_signal;      /* JVM: "SIGPROF" default                 */
    bool virtual_threads;        /* JVM 21+: track virtual threads, default off */
    int log_level;               /* CP_LOG_*, default CP_LOG_WARN          */
    int64_t output_max_mb;       /* output_dir cap, default 1024, 0 = none  */
    int64_t output_max_age_h;    /* age limit, default 168 (7 days), 0 = none */
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

/* What kind of code a frame is. The encoder gives every location a
 * mapping that tells it (see cp_frame.module), so pprof readers and the
 * explorer can show and colour frame kinds:
 *   mapping file "[python]", "[java:interpreted]", "[java:compiled]",
 *   "[java:inlined]", "[java:native]", "[kernel]", "[pseudo]";
 *   native frames: the library path (cp_frame.module), or "[native]". */
typedef enum cp_frame_kind {
    CP_FRAME_UNSPECIFIED = 0, /* no mapping written (older front ends)      */
    CP_FRAME_PYTHON,
    CP_FRAME_NATIVE,          /* C/C++/asm; module = shared object path     */
    CP_FRAME_JAVA_INTERPRETED,
    CP_FRAME_JAVA_COMPILED,   /* JIT-compiled (C1/C2)                       */
    CP_FRAME_JAVA_INLINED,    /* inlined into the compiled frame below it   */
    CP_FRAME_JAVA_NATIVE,     /* a Java method declared native (JNI)        */
    CP_FRAME_KERNEL,
    CP_FRAME_PSEUDO,          /* [unknown], <N frames omitted>, [GC_active] */
    CP_FRAME__COUNT
} cp_frame_kind;

/* The mapping file name the encoder gives frames of this kind ("[python]",
 * ...; "[native]" for CP_FRAME_NATIVE without a module), or "" for
 * CP_FRAME_UNSPECIFIED and out-of-range values. Static. */
const char *cp_frame_kind_mapping(cp_frame_kind kind);
/* The kind a decoded mapping file name stands for: the bracketed names
 * above, any other non-empty name (a library path) is CP_FRAME_NATIVE,
 * "" or NULL is CP_FRAME_UNSPECIFIED. For readers such as the explorer. */
cp_frame_kind cp_frame_kind_of_mapping(const char *mapping_file);

typedef struct cp_frame {
    const char *name;        /* "module.Class.method"                     */
    const char *system_name; /* may be NULL (= name)                      */
    const char *filename;    /* may be NULL                               */
    int64_t line;            /* 0 = unknown                               */
    cp_frame_kind kind;      /* 0 = unspecified                           */
    const char *module;      /* native: shared object path; may be NULL   */
    int64_t start_line;      /* function's first line (pprof Function.start_line), 0 = unknown */
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

/* Frame dictionary: frames interned once to ids (1-based, dense, stable for
 * the dictionary's life; equal frames share one), so that samples can be
 * added as id arrays with no string work per frame. Caps: max_frames
 * (0 = 1 Mi) frames and max_bytes (0 = 64 MiB) of their text; when full,
 * cp_frame_dict_intern returns CP_EFULL and sets *id to the pseudo-frame
 * "[frame dictionary full]" (id 1), which can still be used. Strings are
 * copied. Not thread-safe (the owner serialises calls). */
typedef struct cp_frame_dict cp_frame_dict;
cp_frame_dict *cp_frame_dict_new(size_t max_frames, size_t max_bytes);
void cp_frame_dict_free(cp_frame_dict *d);
int cp_frame_dict_intern(cp_frame_dict *d, const cp_frame *f, uint32_t *id);
size_t cp_frame_dict_size(const cp_frame_dict *d); /* ids handed out + 1 */

/* cp_profile_add for a stack of dictionary ids (leaf first): same
 * aggregation, truncation, caps and [overflow] as cp_profile_add. An id
 * that d never handed out is CP_EINVAL (nothing recorded). d must be the
 * same dictionary for every call on p, and outlive p's last add. */
int cp_profile_add_ids(cp_profile *p, const cp_frame_dict *d, const uint32_t *ids, size_t n,
                       const int64_t *values, const cp_label *labels, size_t nlabels);

void cp_profile_set_time(cp_profile *p, int64_t start_unix_ns, int64_t duration_ns);
void cp_profile_set_period(cp_profile *p, const cp_sample_type *period_type, int64_t period);
/* Free-form comment strings (pprof field 13), e.g. "contprof 0.2.0". */
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
    const char *mapping_file;   /* its mapping's filename; "" if none  */
} cp_pprof_location;

typedef struct cp_pprof_mapping {
    uint64_t id, memory_start, memory_limit, file_offset;
    const char *filename, *build_id; /* "" when absent */
    bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
} cp_pprof_mapping;

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
    size_t n_mappings;
    cp_pprof_mapping *mappings;
} cp_pprof;

/* Decode pprof bytes, gzip'd or not (detected). Inflated size is capped at
 * max_inflated (0 = 256 MiB): a bigger one is CP_ETOOBIG (zip bombs).
 * Malformed input is CP_ECORRUPT; *out is only set on CP_OK. */
int cp_pprof_decode(const uint8_t *data, size_t len, size_t max_inflated, cp_pprof **out);
void cp_pprof_free(cp_pprof *pp);
/* Lookup by id (NULL if absent); O(1) when ids are dense 1-based. */
const cp_pprof_location *cp_pprof_location_by_id(const cp_pprof *pp, uint64_t id);
const cp_pprof_function *cp_pprof_function_by_id(const cp_pprof *pp, uint64_t id);
const cp_pprof_mapping *cp_pprof_mapping_by_id(const cp_pprof *pp, uint64_t id);
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
    CP_V_LOCK_HOLD,      /* lock-release-hold / nanoseconds */
    CP_V_LOCK_RELEASE,   /* lock-release / count            */
    CP_V__COUNT
} cp_value_index;

/* Bit i set = kinds producing column pair i (the hold pair, columns
 * CP_V_LOCK_HOLD.., is CP_KIND_LOCK_HOLD): */
enum {
    CP_KIND_CPU = 1u << 0,
    CP_KIND_WALL = 1u << 1,
    CP_KIND_ALLOC = 1u << 2,
    CP_KIND_HEAP = 1u << 3,
    CP_KIND_LOCK = 1u << 4,
    CP_KIND_EXCEPTION = 1u << 5,
    CP_KIND_LOCK_HOLD = 1u << 6, /* on with lock_enabled */
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

/* The fast path: intern a frame once into the process-wide dictionary
 * (see cp_frame_dict; ids stay valid across cp_stop/cp_start and in a
 * forked child), then add samples as id arrays. Same contract as
 * cp_add_sample otherwise. Thread-safe, not signal-safe. */
int cp_frame_intern(const cp_frame *f, uint32_t *id);
int cp_add_sample_ids(const uint32_t *ids, size_t nframes, const int64_t *values,
                      const cp_label *labels, size_t nlabels);

/* Runtime info: a JSON object. The core fills host, os, kernel, arch,
 * cpu_count, pid, process_start_time, profiler_version, settings and
 * profiler metrics; the front end adds its runtime's keys. json_value is
 * raw JSON (an object, array, string in quotes, number...); it is checked
 * for well-formedness (CP_EINVAL otherwise). Replaces an earlier key. */
int cp_runtime_info_set(const char *key, const char *json_value);
int cp_runtime_info_set_str(const char *key, const char *value); /* quotes+escapes */

/* The tags string "service:x,env:y,...,profiler_version:0.2.0". Caller frees. */
char *cp_tags_string(void);
/* This process's runtime-id (UUID v4 text), new after fork. */
const char *cp_runtime_id(void);

/* Export the current profile now (tests, explorer demo); waits up to
 * timeout_ms for it to be written/uploaded. */
int cp_flush(int64_t timeout_ms);

/* One human line per destination: before anything was exported where
 * profiles go ("profiles written to /abs/profiles (go tool pprof -top
 * <file>)"), afterwards what really happened ("3 profile(s) uploaded to
 * URL", "no profile written to DIR (2 failed: why)"). Caller frees. */
char *cp_destinations_describe(void);
/* Path of the most recent profile file written, "" if none. Caller frees. */
char *cp_last_profile_path(void);

/* The support report: OS, kernel, architecture, CPUs and container limits;
 * the runtime (the front end's "runtime_facts" runtime-info key); the
 * profiler build; every setting with its value and source (secrets
 * redacted); each destination with a live check (output directory written
 * to, intake asked once with a short timeout). *report receives the text
 * (one fact per line; caller frees; may be NULL to only check). Returns the
 * number of problems found (0 = healthy) or a negative CP_E* error. */
int cp_diagnose(char **report);

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
    double last_overhead_pct;        /* (profiler+hook)/(process-profiler-hook) * 100 */
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


/* ------------------------------------------------------------------ */
/* 6. Native stacks (libunwind)                                         */
/* ------------------------------------------------------------------ */

/* Why a native unwind stopped. */
typedef enum cp_unwind_status {
    CP_UNWIND_END = 0,       /* reached the thread's outermost frame         */
    CP_UNWIND_TRUNCATED,     /* max frames reached                           */
    CP_UNWIND_UNKNOWN_PC,    /* pc in no loaded object: JIT code, a runtime's
                                code cache or interpreter, or garbage         */
    CP_UNWIND_NO_INFO,       /* pc in an object without usable unwind info   */
    CP_UNWIND_ERROR,         /* unreadable memory, no progress, unsupported  */
    CP_UNWIND__COUNT
} cp_unwind_status;

/* Prepare the unwinder (libunwind address space, table of loaded objects).
 * Call once, off the hot path, before the first cp_native_unwind. Idempotent. */
int cp_native_init(void);

/* Off the hot path (a resolver pass): pick up objects loaded or unloaded
 * since the last call (cheap when nothing changed: one dl_iterate_phdr). */
void cp_native_refresh(void);

/* Signal-safe (no malloc, no locks, no stdio; errno preserved): unwind the
 * interrupted context uc (the ucontext_t * a SA_SIGINFO handler receives)
 * into pcs[0..max): pcs[0] is the interrupted pc, the others return
 * addresses. Stops at the first pc outside every loaded object (JIT code)
 * without stepping into it. Returns the number of pcs; *status says why it
 * stopped. Counted in cp_native_stats. */
int cp_native_unwind(const void *uc, uintptr_t *pcs, int max, cp_unwind_status *status);

/* cp_native_unwind that also ends (status CP_UNWIND_END) after the first
 * pc in [stop_lo, stop_hi): a front end that only needs the frames above
 * its runtime's entry (the Python eval loop) pays for no more. */
int cp_native_unwind_until(const void *uc, uintptr_t *pcs, int max, cp_unwind_status *status,
                           uintptr_t stop_lo, uintptr_t stop_hi);

/* Off the hot path: the extent [*lo, *hi) of the function holding pc, as
 * its unwind entry (FDE) gives it; false when none covers pc. */
bool cp_native_function_extent(uintptr_t pc, uintptr_t *lo, uintptr_t *hi);

/* Signal-safe: is pc inside a loaded object's executable segment? */
bool cp_native_pc_known(uintptr_t pc);

/* The extent [*lo, *hi) of the executable segment holding pc (an object's
 * code, in memory); false when pc is in none. */
bool cp_native_segment_extent(uintptr_t pc, uintptr_t *lo, uintptr_t *hi);

/* Off the hot path, any thread: describe pc as a NATIVE frame: name is the
 * demangled function ("deflate", "Compile::Optimize") or "lib.so+1f2e" (hex offset)
 * when no symbol covers it; module the object's path. return_address: pc
 * is a return address (every pcs[i] but the first), looked up at pc - 1.
 * The strings are cached and never freed (capped; see cp_native_stats). */
void cp_native_symbolize(uintptr_t pc, bool return_address, cp_frame *out);

typedef struct cp_native_stats {
    uint64_t unwinds, frames;
    uint64_t stops[CP_UNWIND__COUNT]; /* unwinds by the reason they stopped */
    uint64_t modules, symbols_cached, symbol_cache_full;
    uint64_t proc_info_hits, proc_info_misses; /* unwind-info cache per pc  */
} cp_native_stats;
void cp_native_stats_get(cp_native_stats *out);

/* ------------------------------------------------------------------ */
/* 7. Event sampling (locks, exceptions)                                */
/* ------------------------------------------------------------------ */

/* Poisson sampling of weighted events (a lock wait weighs its nanoseconds,
 * an exception weighs 1) whose mean interval adapts so that about per_s
 * samples are taken per second whatever the event rate: an event of weight
 * w is sampled with probability p = 1 - exp(-w / interval) and then stands
 * for w / p of weight and 1 / p events, so sums stay unbiased while the
 * interval moves (the countdown is exponential, hence memoryless, and is
 * redrawn whenever the interval changed). The interval is recomputed from
 * the weight seen in the last window (250 ms, or sooner once a quarter
 * second's worth of samples was taken) and never drops below
 * min_interval. Shared fields are only touched atomically; the countdown
 * lives in a cp_rate_state owned by one thread (or guarded by the caller's
 * lock, e.g. the GIL). Signal-safe. */
typedef struct cp_rate_sampler {
    double interval;      /* mean weight between samples, now (atomic) */
    double min_interval, per_s;
    int64_t win_start_ns; /* CLOCK_MONOTONIC (atomic)                  */
    int64_t win_weight;   /* (atomic)                                  */
    int64_t win_samples;  /* (atomic)                                  */
} cp_rate_sampler;

typedef struct cp_rate_state {
    double left;    /* weight left before the next sample             */
    double drawn;   /* interval the countdown was drawn with (0: none) */
    uint64_t rng;
} cp_rate_state;

void cp_rate_init(cp_rate_sampler *rs, double min_interval, double per_s);

/* Account one event of weight w (> 0). True when it is sampled; then
 * *value and *count receive its unbiased weight and event count. */
bool cp_rate_hit(cp_rate_sampler *rs, cp_rate_state *st, int64_t w, int64_t *value, int64_t *count);

/* The same sampling for events of weight 1 at a decrement per event: the
 * caller keeps *skip (start it at 0) and calls this only for an event that
 * finds --*skip <= 0. The countdown is drawn as the number of events up to
 * the next sampled one (geometric, the same odds as cp_rate_hit), and the
 * window's weight is added once per countdown. For one cp_rate_state per
 * sampler (the interval is read when a countdown is drawn). */
bool cp_rate_unit_hit(cp_rate_sampler *rs, cp_rate_state *st, int64_t *skip, int64_t *value, int64_t *count);

#ifdef __cplusplus
}
#endif
#endif /* CONTPROF_H */
