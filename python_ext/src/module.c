/*
 * module.c — the _contprof extension module: Python bindings over the core
 * (settings, runtime info, summaries) and the start/stop/fork lifecycle of
 * the sampler, the allocation hooks and the resolver.
 *
 * Lifecycle state is only touched with the GIL held, which serialises
 * start(), stop() and the fork handler.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "allochook.h"
#include "codecache.h"
#include "codekeep.h"
#include "contprof.h"
#include "contprof_os.h"
#include "pyasync.h"
#include "pyevents.h"
#include "pyexc.h"
#include "pylock.h"
#include "resolver.h"
#include "pynative.h"
#include "sampler.h"
#include "sigexit.h"


static struct {
    bool running;
    cp_sampler_opts sopts;
    uint32_t max_frames;
    char version[32];
} g_m;

/* contprof profiles the main interpreter only. A sub-interpreter that
 * imports it (legacy ones share this module's state) must never start,
 * stop or fork-restart the main interpreter's profiler: its objects die
 * with it, and its atexit runs stop() when it is destroyed. */
static bool in_subinterpreter(void)
{
    return PyThreadState_Get()->interp != PyInterpreterState_Main();
}

static PyObject *raise_cp(int rc, const char *what)
{
    PyErr_Format(PyExc_RuntimeError, "contprof: %s failed: %s", what, cp_strerror(rc));
    return NULL;
}

/* Take ownership of a malloc'd C string and return it as str. */
static PyObject *take_str(char *s)
{
    PyObject *r = PyUnicode_FromString(s ? s : "");
    free(s);
    return r;
}

/* ---- settings ---------------------------------------------------------- */

static PyObject *m_settings_table(PyObject *self, PyObject *noargs)
{
    size_t n = 0;
    const cp_setting_info *t = cp_settings_table(&n);
    static const char *types[] = {"str", "int", "bool"};
    PyObject *out = PyList_New(0);
    for (size_t i = 0; out && i < n; i++) {
        PyObject *row = Py_BuildValue("{s:s,s:s,s:s,s:L,s:L,s:s,s:s,s:s}", "name", t[i].name,
                                      "type", types[t[i].type], "default", t[i].default_str ? t[i].default_str : "",
                                      "min", (long long)t[i].min, "max", (long long)t[i].max,
                                      "unit", t[i].unit ? t[i].unit : "", "env", t[i].env_names ? t[i].env_names : "",
                                      "help", t[i].help ? t[i].help : "");
        if (!row || PyList_Append(out, row) < 0)
            Py_CLEAR(out);
        Py_XDECREF(row);
    }
    return out;
}

static PyObject *m_config_set(PyObject *self, PyObject *args)
{
    const char *name, *value;
    int src;
    if (!PyArg_ParseTuple(args, "ssi", &name, &value, &src))
        return NULL;
    return PyLong_FromLong(cp_config_set(name, value, (cp_source)src));
}

static PyObject *m_config_load_env(PyObject *self, PyObject *noargs)
{
    return PyLong_FromLong(cp_config_load_env());
}

static PyObject *m_config_reset(PyObject *self, PyObject *noargs)
{
    cp_config_reset();
    Py_RETURN_NONE;
}

static PyObject *m_config_json(PyObject *self, PyObject *noargs)
{
    return take_str(cp_config_to_json());
}

static PyObject *m_log(PyObject *self, PyObject *args)
{
    int level;
    const char *msg;
    if (!PyArg_ParseTuple(args, "is", &level, &msg))
        return NULL;
    cp_log(level, "%s", msg);
    Py_RETURN_NONE;
}

/* ---- lifecycle --------------------------------------------------------- */

/* Threads inherit their creator's signal mask: the core's threads (created
 * inside these calls) must never take a signal meant for Python. */
static void block_signals(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, old);
}

static void restore_signals(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void read_opts(const cp_config *c)
{
    g_m.max_frames = (uint32_t)clamp64(c->max_frames, 1, 599);
    g_m.sopts.interp = (uintptr_t)PyThreadState_Get()->interp;
    g_m.sopts.cpu = c->cpu_enabled;
    g_m.sopts.wall = c->wall_enabled;
    g_m.sopts.cpu_interval_ns = clamp64(c->cpu_interval_us, 100, 60000000) * 1000;
    g_m.sopts.wall_interval_ns = clamp64(c->wall_interval_us, 100, 60000000) * 1000;
    g_m.sopts.wall_threads_max = (uint32_t)clamp64(c->wall_threads_max, 1, 1024);
    g_m.sopts.max_frames = g_m.max_frames;
    /* Native frames need the CPU sampler (they are taken on its ticks). */
    g_m.sopts.native = c->native_frames && c->cpu_enabled && cp__pyn_start();
}

/* Start sampler, resolver and hooks for the settings already read. */
static int start_collectors(void)
{
    const cp_config *c = cp_config_get();
    int rc = CP_OK;
    if (g_m.sopts.cpu || g_m.sopts.wall)
        rc = cp__sampler_start(&g_m.sopts);
    if (rc == CP_OK)
        rc = cp__resolver_start(g_m.max_frames);
    cp_alloc_opts ao = {c->alloc_interval_bytes, c->alloc_enabled, c->heap_enabled, c->alloc_raw_enabled,
                        g_m.max_frames, g_m.sopts.interp};
    if (rc == CP_OK)
        rc = cp__alloc_start(&ao);
    if (rc == CP_OK)
        rc = cp__sigexit_start(c->flush_deadline_ms);
    if (rc == CP_OK)
        rc = cp__pyev_init(g_m.max_frames);
    return rc;
}

static PyObject *m_start(PyObject *self, PyObject *args)
{
    const char *version;
    if (!PyArg_ParseTuple(args, "s", &version))
        return NULL;
    if (g_m.running)
        Py_RETURN_FALSE;
    if (in_subinterpreter()) {
        cp_log(CP_LOG_INFO, "not profiling a sub-interpreter (only the main interpreter is profiled)");
        Py_RETURN_FALSE;
    }
    snprintf(g_m.version, sizeof g_m.version, "%s", version);
    read_opts(cp_config_get());
    cp_runtime_desc rt = {"python", "python", "CPython", g_m.version,
                          CP_KIND_CPU | CP_KIND_WALL | CP_KIND_ALLOC | CP_KIND_HEAP | CP_KIND_LOCK | CP_KIND_LOCK_HOLD |
                              CP_KIND_EXCEPTION};
    sigset_t old;
    block_signals(&old);
    int rc = cp_start(&rt);
    restore_signals(&old);
    if (rc != CP_OK)
        return raise_cp(rc, "start");
    g_m.running = true;
    cp__codekeep_start();
    rc = start_collectors();
    if (rc != CP_OK)
        cp_log(CP_LOG_ERROR, "could not start every collector: %s", cp_strerror(rc));
    Py_RETURN_TRUE;
}

/* stop(at_exit=False). At interpreter exit the code objects the resolver
 * holds are left referenced (the process ends): releasing them then ran
 * deallocators over objects CPython 3.13 had already given back with a
 * destroyed sub-interpreter's allocator ("free(): invalid pointer"). */
static PyObject *m_stop(PyObject *self, PyObject *args)
{
    int at_exit = 0;
    if (!PyArg_ParseTuple(args, "|p", &at_exit))
        return NULL;
    if (!g_m.running || in_subinterpreter())
        Py_RETURN_NONE;
    g_m.running = false;
    cp__sigexit_stopping();
    cp__alloc_stop();
    cp__sampler_stop();
    cp__resolver_drain(false);
    /* The export hook in cp_stop needs the resolver thread to take the GIL. */
    Py_BEGIN_ALLOW_THREADS
    cp_stop();
    cp__resolver_stop();
    Py_END_ALLOW_THREADS
    cp__sigexit_stop();
    cp__codekeep_stop();
    cp__resolver_clear(!at_exit);
    cp__heap_clear();
    Py_RETURN_NONE;
}

static void marks_after_fork(void);

/* os.register_at_fork(after_in_child=...): only the forking thread exists
 * here; the sampler and resolver threads are gone and must be recreated. */
static PyObject *m_after_fork_child(PyObject *self, PyObject *noargs)
{
    if (!g_m.running || in_subinterpreter())
        Py_RETURN_NONE;
    marks_after_fork();
    cp__sampler_forget();
    cp__resolver_forget();
    cp__sigexit_forget();
    cp__alloc_after_fork();
    cp__pyev_after_fork();
    sigset_t old;
    block_signals(&old);
    int rc = cp_after_fork_child();
    restore_signals(&old);
    g_m.sopts.interp = (uintptr_t)PyThreadState_Get()->interp;
    if (rc == CP_OK)
        rc = start_collectors();
    if (rc != CP_OK)
        cp_log(CP_LOG_ERROR, "could not restart after fork: %s", cp_strerror(rc));
    Py_RETURN_NONE;
}

static PyObject *m_flush(PyObject *self, PyObject *args)
{
    long long ms = 5000;
    int rc;
    if (!PyArg_ParseTuple(args, "|L", &ms))
        return NULL;
    if (!g_m.running || in_subinterpreter())
        Py_RETURN_FALSE;
    sigset_t old;
    Py_BEGIN_ALLOW_THREADS
    block_signals(&old);
    rc = cp_flush(ms);
    restore_signals(&old);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(rc == CP_OK);
}

static PyObject *m_is_running(PyObject *self, PyObject *noargs)
{
    return PyBool_FromLong(g_m.running && !in_subinterpreter());
}

/* ---- threads, runtime info, results ----------------------------------- */

/* Called by each thread for itself as it starts (and for the threads that
 * exist at start()): ident -> kernel tid for < 3.11, plus its name. */
static PyObject *m_register_thread(PyObject *self, PyObject *args)
{
    unsigned long long ident, native;
    const char *name;
    if (!PyArg_ParseTuple(args, "KKs", &ident, &native, &name))
        return NULL;
    if (in_subinterpreter())
        Py_RETURN_NONE;
    if (native)
        cp__native_id_set(ident, native);
    cp__resolver_set_thread_name(ident, native, name);
    Py_RETURN_NONE;
}

static PyObject *m_in_main_interpreter(PyObject *self, PyObject *noargs)
{
    return PyBool_FromLong(!in_subinterpreter());
}

static PyObject *m_set_hidden_files(PyObject *self, PyObject *args)
{
    const char *own, *launcher, *cwd;
    if (!PyArg_ParseTuple(args, "yyy", &own, &launcher, &cwd))
        return NULL;
    if (in_subinterpreter())
        Py_RETURN_NONE;
    cp__codecache_set_hidden(own, launcher);
    cp__codecache_set_cwd(cwd);
    Py_RETURN_NONE;
}

static PyObject *m_runtime_info_set(PyObject *self, PyObject *args)
{
    const char *key, *json;
    if (!PyArg_ParseTuple(args, "ss", &key, &json))
        return NULL;
    return PyLong_FromLong(cp_runtime_info_set(key, json));
}

static PyObject *m_summary_top(PyObject *self, PyObject *args)
{
    int n = 10;
    if (!PyArg_ParseTuple(args, "|i", &n))
        return NULL;
    return take_str(cp_summary_top(CP_V_CPU_TIME, n));
}

static PyObject *m_destinations(PyObject *self, PyObject *noargs)
{
    return take_str(cp_destinations_describe());
}

static PyObject *m_diagnose(PyObject *self, PyObject *noargs)
{
    char *report = NULL;
    int problems;
    Py_BEGIN_ALLOW_THREADS /* up to a few seconds of network check */
    problems = cp_diagnose(&report);
    Py_END_ALLOW_THREADS
    if (problems < 0 || !report)
        return PyErr_NoMemory();
    PyObject *text = take_str(report);
    return text ? Py_BuildValue("(iN)", problems, text) : NULL;
}

static PyObject *m_last_profile_path(PyObject *self, PyObject *noargs)
{
    return take_str(cp_last_profile_path());
}

static PyObject *m_runtime_id(PyObject *self, PyObject *noargs)
{
    return PyUnicode_FromString(cp_runtime_id());
}

static PyObject *m_tags(PyObject *self, PyObject *noargs)
{
    return take_str(cp_tags_string());
}

static PyObject *m_native_stats(PyObject *self, PyObject *noargs)
{
    return PyUnicode_FromString(cp__pyn_stats_json());
}

static PyObject *m_sampler_stats(PyObject *self, PyObject *noargs)
{
    cp_sampler_counts c;
    cp__sampler_counts(&c);
    return Py_BuildValue("{s:K,s:K,s:K}", "ticks", (unsigned long long)c.ticks, "quiet_ticks",
                         (unsigned long long)c.quiet_ticks, "kicks", (unsigned long long)c.kicks);
}

static PyObject *m_metrics(PyObject *self, PyObject *noargs)
{
    cp_metrics m;
    cp_metrics_get(&m);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:L,s:L,s:L,s:d,s:s}",
                         "samples_taken", (unsigned long long)m.samples_taken,
                         "samples_dropped", (unsigned long long)m.samples_dropped,
                         "samples_overflowed", (unsigned long long)m.samples_overflowed,
                         "profiles_exported", (unsigned long long)m.profiles_exported,
                         "profiles_dropped", (unsigned long long)m.profiles_dropped,
                         "upload_failures", (unsigned long long)m.upload_failures,
                         "last_profile_cpu_ns", (long long)m.last_profile_cpu_ns,
                         "last_profiler_cpu_ns", (long long)m.last_profiler_cpu_ns,
                         "last_hook_ns", (long long)m.last_hook_ns,
                         "last_overhead_pct", m.last_overhead_pct, "last_error", m.last_error);
}

static PyObject *m_alloc_info(PyObject *self, PyObject *noargs)
{
    cp_alloc_info a;
    cp__alloc_info(&a);
    return Py_BuildValue("{s:d,s:d,s:O,s:O,s:O,s:K,s:K}", "obj_ns_per_alloc", a.obj_ns_per_alloc,
                         "raw_ns_per_alloc", a.raw_ns_per_alloc, "redirect", a.redirect ? Py_True : Py_False,
                         "raw_hooked", a.raw_hooked ? Py_True : Py_False,
                         "free_hooked", a.free_hooked ? Py_True : Py_False,
                         "heap_live", (unsigned long long)a.heap_live,
                         "heap_evicted", (unsigned long long)a.heap_evicted);
}

/* The calling thread's CPU clock (-1 when it cannot be read). */
static int64_t own_cpu_ns(void)
{
    return cp_os_kernel_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* What a threading.Thread noted as it began and as its run() returned
 * (see cp__sampler_thread_exit): its start time, and its CPU clock at
 * both ends of its Python code (-1 = not read). */
typedef struct thread_marks {
    int64_t start_ns, py_from, py_to;
    int young; /* its own timer's capture handle (cp__sampler_young_arm), -1 = none */
} thread_marks;

static __thread __attribute__((tls_model("initial-exec"))) thread_marks tl_marks;

/* The forking thread, in the child: its CPU clock starts again from 0, and
 * no timer was inherited (its capture entry is the parent's). */
static void marks_after_fork(void)
{
    tl_marks.py_from = 0;
    tl_marks.young = -1;
}

/* A thread's final CPU clock, read by itself (see cp__sampler_thread_exit). */
static void report_exit(const thread_marks *m)
{
    int64_t cpu = own_cpu_ns();
    if (cpu < 0 || !cp__sampler_thread_exit(PyThread_get_thread_ident(), (uint64_t)cp_os_gettid(), cpu, cp_now_ns(),
                                            m->start_ns, m->py_from, m->py_to, m->young))
        cp__pyn_young_release(m->young); /* not queued: nobody else will */
}

/* The report is made by a thread-specific-data destructor, i.e. once the
 * interpreter is done with the thread: its teardown (the thread state
 * cleared, 3.11+'s frame stack unmapped, the GIL let go) is CPU the thread
 * spends after run() returns, a tenth of a short thread's on 3.11, which a
 * report from run()'s end left out of the count, though ticks found the
 * thread there. The value is the thread's tl_marks. */
static pthread_key_t g_exit_key;
static bool g_exit_key_ok;

static void exit_destructor(void *v)
{
    const thread_marks *m = v;
    if (g_m.running)
        report_exit(m);
    else
        cp__pyn_young_release(m->young);
}

static void exit_key_make(void)
{
    g_exit_key_ok = pthread_key_create(&g_exit_key, exit_destructor) == 0;
}

/* Called by each threading.Thread as it begins: CLOCK_MONOTONIC, handed
 * back to thread_exit. Its CPU clock now ends its C start-up. */
static PyObject *m_thread_start(PyObject *self, PyObject *noargs)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    int64_t now = cp_now_ns();
    pthread_once(&once, exit_key_make);
    if (g_exit_key_ok && now > 0 && g_m.running && !in_subinterpreter()) {
        tl_marks = (thread_marks){now, own_cpu_ns(), -1, -1};
        if (pthread_setspecific(g_exit_key, &tl_marks) == 0)
            tl_marks.young = cp__sampler_young_arm((uintptr_t)PyThreadState_Get(), PyThread_get_thread_ident(),
                                                  (uint64_t)cp_os_gettid(), now);
    }
    return PyLong_FromLongLong((long long)now);
}

/* Called by each threading.Thread as its run() has returned, with what
 * thread_start gave it: its CPU clock now begins its teardown. The exit
 * is reported here only if the destructor will not. */
static PyObject *m_thread_exit(PyObject *self, PyObject *start)
{
    long long start_ns = PyLong_Check(start) ? PyLong_AsLongLong(start) : 0;
    if (start_ns < 0) {
        PyErr_Clear();
        start_ns = 0;
    }
    if (g_exit_key_ok && pthread_getspecific(g_exit_key)) {
        cp__pyn_young_stop(tl_marks.young); /* before its thread state goes */
        tl_marks.py_to = own_cpu_ns();
        Py_RETURN_NONE;
    }
    if (g_m.running && !in_subinterpreter()) {
        thread_marks m = {(int64_t)start_ns, -1, -1, -1};
        report_exit(&m);
    }
    Py_RETURN_NONE;
}

static PyObject *m_gettid(PyObject *self, PyObject *noargs)
{
    return PyLong_FromLong((long)cp_os_gettid());
}

#define NOARGS(n, f, d) {n, (PyCFunction)(void (*)(void))f, METH_NOARGS, d}
#define VARARGS(n, f, d) {n, (PyCFunction)(void (*)(void))f, METH_VARARGS, d}

static PyMethodDef methods[] = {
    NOARGS("settings_table", m_settings_table, "The settings table as a list of dicts."),
    VARARGS("config_set", m_config_set, "config_set(name, value, source) -> error code"),
    NOARGS("config_load_env", m_config_load_env, "Read CONTPROF_* and DD_* variables."),
    NOARGS("config_reset", m_config_reset, "Reset every setting to its default."),
    NOARGS("config_json", m_config_json, "Settings in effect as JSON."),
    VARARGS("log", m_log, "log(level, message) through the core's logger."),
    VARARGS("start", m_start, "start(runtime_version) -> bool"),
    VARARGS("stop", m_stop, "stop(at_exit=False): stop and flush the last profile."),
    NOARGS("after_fork_child", m_after_fork_child, "Restart in a forked child."),
    VARARGS("flush", m_flush, "flush(timeout_ms) -> bool"),
    NOARGS("is_running", m_is_running, "True while profiling."),
    NOARGS("native_stats", m_native_stats, "Native-stack counters (JSON): requests, timeouts, unwind stops."),
    NOARGS("sampler_stats", m_sampler_stats, "Sampler counters: ticks, quiet_ticks, kicks."),
    NOARGS("in_main_interpreter", m_in_main_interpreter, "False in a sub-interpreter (never profiled)."),
    VARARGS("register_thread", m_register_thread, "register_thread(ident, native_id, name)"),
    VARARGS("set_hidden_files", m_set_hidden_files,
            "set_hidden_files(own_dir, runpy_file, cwd) (bytes, os.fsencode): frames kept out of stacks; relative file names resolved against cwd."),
    VARARGS("runtime_info_set", m_runtime_info_set, "runtime_info_set(key, json) -> error code"),
    VARARGS("summary_top", m_summary_top, "summary_top(n) -> text table of CPU by function"),
    NOARGS("destinations", m_destinations, "One line per destination."),
    NOARGS("diagnose", m_diagnose, "diagnose() -> (problems, report): the support report with live checks."),
    NOARGS("last_profile_path", m_last_profile_path, "Most recent profile file, or ''."),
    NOARGS("runtime_id", m_runtime_id, "This process's runtime-id."),
    NOARGS("tags", m_tags, "The tags string."),
    NOARGS("metrics", m_metrics, "Self-metrics as a dict."),
    NOARGS("alloc_info", m_alloc_info, "Allocation hooks: set-up, calibrated costs, heap table use."),
    NOARGS("gettid", m_gettid, "Kernel thread id of the caller."),
    VARARGS("lock_start", cp__pylock_start, "lock_start(real_lock, real_rlock, namer, per_s)"),
    NOARGS("lock_stop", cp__pylock_stop, "Stop timing lock waits."),
    {"lock_wait_hit", cp__pylock_wait_hit, METH_O, "lock_wait_hit(ns): (value, count) if this asyncio wait is sampled"},
    VARARGS("lock_wait_record", cp__pylock_wait_record, "lock_wait_record(value, count, name, skip[, ((code, offset), ...)])"),
    VARARGS("name_lock", cp__pylock_name_lock, "name_lock(namer, *args): namer(*args), frames' f_locals left as found"),
    VARARGS("exc_start", cp__pyexc_start, "exc_start(per_s): sample raised exceptions."),
    NOARGS("exc_stop", cp__pyexc_stop, "Stop sampling exceptions."),
    {"exc_raise_event", (PyCFunction)(void (*)(void))cp__pyexc_raise_event, METH_FASTCALL,
     "sys.monitoring RAISE callback (3.12+)."},
    VARARGS("asyncio_arm", cp__aio_arm,
            "asyncio_arm(current_tasks, Task, probe_task, coro, name) -> bool: label samples with task names."),
    NOARGS("thread_start", m_thread_start, "The calling thread is beginning (returns a stamp for thread_exit)."),
    {"thread_exit", (PyCFunction)m_thread_exit, METH_O, "The calling thread is ending (final CPU reading)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_contprof", "contprof native core and samplers.", -1, methods,
    NULL, NULL, NULL, NULL,
};

/* Exported explicitly: before 3.9, PyMODINIT_FUNC carries no visibility and
 * everything else here is hidden. */
__attribute__((visibility("default"))) PyMODINIT_FUNC PyInit__contprof(void)
{
#ifdef Py_GIL_DISABLED
    /* The sampler's design (GIL-protected hooks, one frame chain per
     * thread state) does not hold without the GIL. */
    PyErr_SetString(PyExc_ImportError, "contprof: free-threaded CPython (Py_GIL_DISABLED) is not supported; use a default (GIL) build");
    return NULL;
#endif
    PyObject *m = PyModule_Create(&moddef);
    if (!m)
        return NULL;
    PyModule_AddIntConstant(m, "SRC_FILE", CP_SRC_FILE);
    PyModule_AddIntConstant(m, "SRC_ENV", CP_SRC_ENV);
    PyModule_AddIntConstant(m, "SRC_OPTION", CP_SRC_OPTION);
    PyModule_AddIntConstant(m, "SRC_DEFAULT", CP_SRC_DEFAULT);
    PyModule_AddIntConstant(m, "LOG_WARN", CP_LOG_WARN);
    PyModule_AddIntConstant(m, "LOG_INFO", CP_LOG_INFO);
    PyModule_AddIntConstant(m, "LOG_ERROR", CP_LOG_ERROR);
    PyModule_AddStringConstant(m, "__version__", CP_PROFILER_VERSION);
    if (cp__pylock_init_module(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
