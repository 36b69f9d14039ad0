/*
 * resolver.c — raw samples -> cp_add_sample (see resolver.h): names frames
 * through codecache, labels threads, and runs the thread that does this
 * every PERIOD_MS and on the core's export requests.
 */
#include "resolver.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allochook.h"
#include "codecache.h"
#include "pyevents.h"
#include "codekeep.h"
#include "cthreads.h"
#include "pynative.h"
#include "pyoffsets.h"
#include "contprof.h"
#include "contprof_os.h"
#include "saferead.h"
#include "sampler.h"

#define NAMES_CAP 2048   /* power of two */
#define NAMES_WINDOW 16  /* an entry sits in the window at its tid's hash */
#define PERIOD_MS 250 /* each drain takes the GIL from the program */
#define EXPORT_WAIT_MS 3000
#define SUBINTERP_WAIT_NS 5000000000LL /* drains wait this long at most for sub-interpreters */
#define SUBINTERP_POLL_MS 50           /* ... trying again this often               */

/* A thread's name, keyed by ident AND kernel tid: a dead thread's ident
 * (its pthread_t) is soon reused by a new thread, while samples taken before
 * it died are still being resolved; the tid tells the two apart. */
typedef struct tname {
    uint64_t id, native; /* id 0: empty */
    uint64_t stamp;      /* when set: the oldest of a full window goes */
    char name[64];
} tname;

static struct {
    tname names[NAMES_CAP];
    uint64_t names_stamp;
    uint32_t max_frames;
    cp_frame *frames;
    uint32_t *ids; /* frames' core dictionary ids, for cp_add_sample_ids */
    cp_rawsample *ovf; /* one merged overflow allocation sample */
    /* thread handshake */
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool running, stop;
    atomic_bool kicked;
    uint64_t req, done;
    /* drop reporting (resolver thread, GIL held) */
    uint64_t dropped_seen;
    bool drop_warned;
    /* resolver thread: since when drains wait for sub-interpreters (0: not) */
    int64_t subinterp_since;
} g_r;

/* ---- thread names ------------------------------------------------------ */

/* An entry lives in the NAMES_WINDOW slots at the hash of its kernel tid
 * (of its ident when the tid is unknown), so that setting a name reads one
 * window, not the whole table: every new thread sets its name as it
 * starts, and a server starting a thread per request paid a scan of all
 * entries (~80 KB, cold in the new thread's cache) each time. Not the
 * ident's hash: one ident (a cached thread stack) is reused by hundreds of
 * threads in turn, whose names must outlive them until their samples are
 * resolved; tids are not reused that soon. */
static tname *name_window(uint64_t key)
{
    return &g_r.names[(size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (NAMES_CAP - NAMES_WINDOW)];
}

void cp__resolver_set_thread_name(uint64_t thread_id, uint64_t native_id, const char *name)
{
    tname *w = name_window(native_id ? native_id : thread_id), *slot = NULL, *oldest = &w[0];
    for (size_t i = 0; i < NAMES_WINDOW && !slot; i++) {
        if (w[i].id == thread_id && w[i].native == native_id)
            slot = &w[i];
        else if (w[i].stamp < oldest->stamp)
            oldest = &w[i]; /* an empty entry has stamp 0 */
    }
    if (!slot)
        slot = oldest;
    slot->id = thread_id;
    slot->native = native_id;
    slot->stamp = ++g_r.names_stamp;
    snprintf(slot->name, sizeof slot->name, "%s", name);
}

/* The name of the thread (ident, tid) as sampled; an entry whose tid is
 * unknown (0) only answers when no entry matches both (then the whole
 * table is searched: the resolver's time, and rare). */
static const char *thread_name(uint64_t thread_id, uint64_t native_id)
{
    if (native_id) {
        const tname *w = name_window(native_id);
        for (size_t i = 0; i < NAMES_WINDOW; i++)
            if (w[i].id == thread_id && w[i].native == native_id)
                return w[i].name;
    }
    const char *loose = NULL;
    for (size_t i = 0; i < NAMES_CAP && !loose; i++) {
        const tname *t = &g_r.names[i];
        if (t->id == thread_id && (t->native == 0 || native_id == 0))
            loose = t->name;
    }
    return loose;
}

/* One threading._active entry: remember its name, and its kernel tid for
 * interpreters whose thread state does not carry it. Read from the
 * Thread's __dict__ (_name, _native_id: what the name and native_id
 * properties return), not through the properties: a drain runs no Python
 * code, so it never lets the GIL go midway (see subinterp_wait). */
static void refresh_one(PyObject *key, PyObject *thread)
{
    unsigned long id = PyLong_AsUnsignedLong(key);
    if (PyErr_Occurred())
        return;
    PyObject *d = PyObject_GenericGetDict(thread, NULL);
    if (d == NULL || !PyDict_Check(d)) {
        Py_XDECREF(d);
        PyErr_Clear();
        return;
    }
    PyObject *nid = PyDict_GetItemString(d, "_native_id"); /* borrowed */
    unsigned long long tid = nid && PyLong_Check(nid) ? PyLong_AsUnsignedLongLong(nid) : 0;
    if (PyErr_Occurred()) {
        PyErr_Clear();
        tid = 0;
    }
    PyObject *name = PyDict_GetItemString(d, "_name"); /* borrowed */
    const char *s = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (s)
        cp__resolver_set_thread_name(id, tid, s);
    else
        PyErr_Clear(); /* a name with surrogates: never leave the error set */
    Py_DECREF(d);
#if PY_VERSION_HEX < 0x030B0000
    /* Only fill gaps: what a thread registered for itself is fresher (after
     * fork, threading may still show the parent's tid for a while). */
    if (tid && cp__native_id_get(id) == 0)
        cp__native_id_set(id, tid);
#endif
}

/* threading._active: ident -> Thread. Read without importing anything. */
static void refresh_thread_names(void)
{
    PyObject *mods = PySys_GetObject("modules"); /* borrowed */
    PyObject *thr = mods ? PyDict_GetItemString(mods, "threading") : NULL;
    PyObject *active = thr ? PyObject_GetAttrString(thr, "_active") : NULL;
    PyObject *key, *val;
    Py_ssize_t pos = 0;
    if (active && PyDict_Check(active)) {
        while (PyDict_Next(active, &pos, &key, &val)) {
            refresh_one(key, val);
            PyErr_Clear();
        }
    }
    Py_XDECREF(active);
    PyErr_Clear();
}

/* ---- feeding the core -------------------------------------------------- */

/* The frames of s, leaf first. The profiler's own frames and the
 * launcher's (runpy: python -m contprof / -m module) are left out, so the
 * program's own entry point is the root; a stack of nothing else (the
 * launcher at work before the program starts) reads [launcher]. */
/* A pseudo-frame. Its system name differs from its name: pprof tools
 * "simplify" a name like <12 frames omitted> to nothing (as if it were C++
 * template arguments) when the two are equal, and go tool pprof then shows
 * <unknown>. */
static cp_frame pseudo(const char *name)
{
    return (cp_frame){name, "[pseudo]", NULL, 0, CP_FRAME_PSEUDO, NULL};
}

/* The core dictionary id of frame n into g_r.ids[n], through *slot when
 * given (the code cache keeps a Python frame's id with its line); false
 * when the frame cannot be interned as itself (dictionary full, no memory):
 * the sample then goes to the core as strings. */
static bool frame_id(size_t n, uint32_t *slot)
{
    if (slot && *slot) {
        g_r.ids[n] = *slot;
        return true;
    }
    if (cp_frame_intern(&g_r.frames[n], &g_r.ids[n]) != CP_OK)
        return false;
    if (slot)
        *slot = g_r.ids[n];
    return true;
}

/* Fills g_r.frames and, while *ids_ok, g_r.ids. */
static size_t build_frames(const cp_rawsample *s, char *omitted_buf, size_t bufsz, bool *ids_ok)
{
    size_t n = 0, cap = g_r.max_frames;
    bool ok = true;
    size_t total = (size_t)s->nframes + s->omitted;
    size_t keep = total > cap ? cap - 1 : s->nframes;
    for (size_t i = 0; i < keep && i < s->nframes; i++) {
        if (s->frames[i].offset == CP_RAW_PSEUDO) {
            g_r.frames[n] = pseudo("[thread start-up and exit]"); /* the only one (rawring.h) */
            ok = ok && frame_id(n, NULL);
            n++;
            continue;
        }
        if (s->frames[i].offset == CP_RAW_NATIVE) {
            cp_native_symbolize((uintptr_t)s->frames[i].code, s->frames[i].firstlineno != 0, &g_r.frames[n]);
            ok = ok && frame_id(n, NULL);
            n++;
            continue;
        }
        const cp_codeinfo *e = cp__codecache_lookup(&s->frames[i]);
        if (e && e->hide != CP_HIDE_NONE)
            continue;
        g_r.frames[n] = e ? (cp_frame){e->name, e->system_name, e->file, e->line, CP_FRAME_PYTHON, NULL,
                                       s->frames[i].firstlineno}
                          : pseudo("<unknown>");
        ok = ok && frame_id(n, e ? e->fid : NULL);
        n++;
    }
    size_t n_walked = n;
    if (n == 0 && s->nframes > 0)
        g_r.frames[n++] = pseudo("[launcher]");
    if (total > cap) {
        snprintf(omitted_buf, bufsz, "<%zu frames omitted>", total - (keep < s->nframes ? keep : s->nframes));
        g_r.frames[n++] = pseudo(omitted_buf);
    }
    if (n == 0 && s->thread_id == s->native_id && s->native_id != 0)
        g_r.frames[n++] = pseudo("[native stack unavailable]"); /* cthreads.c */
    else if (n == 0) /* the thread ran no Python code, or its stack was unreadable */
        g_r.frames[n++] = pseudo("[no Python frame]");
    for (size_t i = n_walked; ok && i < n; i++)
        ok = frame_id(i, NULL);
    *ids_ok = ok;
    return n;
}

static void add_one(const cp_rawsample *s, const int64_t *v)
{
    cp__resolver_add(s, v, NULL);
}

void cp__resolver_add(const cp_rawsample *s, const int64_t *v, const cp_label *extra)
{
    char omitted[48];
    cp__codecache_trim();
    bool ids_ok;
    size_t n = build_frames(s, omitted, sizeof omitted, &ids_ok);
    cp_label labels[4];
    size_t nl = 0;
    labels[nl++] = (cp_label){"thread id", NULL, (int64_t)s->thread_id, NULL};
    if (s->native_id)
        labels[nl++] = (cp_label){"thread native id", NULL, (int64_t)s->native_id, NULL};
    const char *name = thread_name(s->thread_id, s->native_id);
    char cname[16];
    if (!name && s->thread_id == s->native_id && cp__cthreads_name(s->native_id, cname, sizeof cname))
        name = cname;
    if (name)
        labels[nl++] = (cp_label){"thread name", name, 0, NULL};
    if (extra)
        labels[nl++] = *extra;
    if (ids_ok) /* the core's fast path: no string work per frame */
        cp_add_sample_ids(g_r.ids, n, v, labels, nl);
    else
        cp_add_sample(g_r.frames, n, v, labels, nl);
}

static void drain_ring(cp_rawring *r)
{
    cp_rawsample *s;
    while (r && (s = cp__ring_peek(r)) != NULL) {
        int64_t v[CP_V__COUNT] = {0};
        v[CP_V_CPU_TIME] = s->cpu_ns;
        v[CP_V_CPU_SAMPLES] = s->cpu_n;
        v[CP_V_WALL_TIME] = s->wall_ns;
        v[CP_V_WALL_SAMPLES] = s->wall_n;
        v[CP_V_ALLOC_SPACE] = s->alloc_bytes;
        v[CP_V_ALLOC_SAMPLES] = s->alloc_n;
        const char *task = cp__ring_extra(r, s); /* the sampler's: asyncio task name */
        cp_label tl = {"task name", task, 0, NULL};
        cp__resolver_add(s, v, task && task[0] ? &tl : NULL);
        cp__ring_release(r);
    }
}

/* Allocation samples merged while the ring was full (allochook.c). */
static void drain_alloc_overflow(void)
{
    while (g_r.ovf && cp__alloc_overflow_take(g_r.ovf)) {
        int64_t v[CP_V__COUNT] = {0};
        v[CP_V_ALLOC_SPACE] = g_r.ovf->alloc_bytes;
        v[CP_V_ALLOC_SAMPLES] = g_r.ovf->alloc_n;
        add_one(g_r.ovf, v);
    }
}

static void add_heap(void)
{
    size_t n, stride;
    uint8_t *snap = (uint8_t *)cp__heap_snapshot(&n, &stride);
    for (size_t i = 0; i < n; i++) {
        const cp_rawsample *s = (const cp_rawsample *)(snap + i * stride);
        int64_t v[CP_V__COUNT] = {0};
        v[CP_V_HEAP_SPACE] = s->alloc_bytes;
        v[CP_V_HEAP_SAMPLES] = s->alloc_n;
        add_one(s, v);
    }
    free(snap);
}

/* Once per profile: samples lost since the last one, at debug level, and
 * the first loss of the run at warn level (they are also in the profile's
 * sidecar metrics). */
static void report_drops(void)
{
    cp_metrics m;
    cp_metrics_get(&m);
    uint64_t lost = m.samples_dropped - g_r.dropped_seen;
    if (m.samples_dropped < g_r.dropped_seen)
        lost = m.samples_dropped; /* counters were reset (fork) */
    g_r.dropped_seen = m.samples_dropped;
    if (lost == 0)
        return;
    cp_log(CP_LOG_DEBUG, "%llu samples dropped in this profile (%llu taken in the run)",
           (unsigned long long)lost, (unsigned long long)m.samples_taken);
    if (!g_r.drop_warned) {
        g_r.drop_warned = true;
        cp_log(CP_LOG_WARN, "samples were dropped (%llu so far): the profile under-counts; "
               "see samples_dropped in the profiles' metrics", (unsigned long long)m.samples_dropped);
    }
}

/* len() of a dict in module m's namespace, 0 if there is none. */
static Py_ssize_t dict_len(PyObject *m, const char *name)
{
    PyObject *d = m && PyModule_Check(m) ? PyDict_GetItemString(PyModule_GetDict(m), name) : NULL;
    return d && PyDict_Check(d) ? PyDict_GET_SIZE(d) : 0;
}

/* The runtime info that changes, at each export. Read from dicts and the
 * collector's counters, creating no Python object and running no Python
 * code: a program checking gc.get_count() right after gc.collect() must
 * not see the profiler's allocations (CPython's test_gc does). Threads
 * are len() of threading's dicts, not active_count(): that takes a lock a
 * thread calling stop() might hold, and we run while it waits for us. */
static void refresh_runtime_info(void)
{
    char buf[96];
    int gc[3];
    cp__pyoff_gc_counts(gc);
    snprintf(buf, sizeof buf, "[%d, %d, %d]", gc[0], gc[1], gc[2]);
    cp_runtime_info_set("gc_counts", buf);
    PyObject *mods = PySys_GetObject("modules"); /* borrowed */
    PyObject *thr = mods && PyDict_Check(mods) ? PyDict_GetItemString(mods, "threading") : NULL;
    snprintf(buf, sizeof buf, "%zd", dict_len(thr, "_active") + dict_len(thr, "_limbo"));
    cp_runtime_info_set("thread_count", buf);
    snprintf(buf, sizeof buf, "%zd", mods && PyDict_Check(mods) ? PyDict_GET_SIZE(mods) : 0);
    cp_runtime_info_set("loaded_modules", buf);
    PyErr_Clear();
}

/* One drain at a time. Drains run with the GIL held, but a drain can let
 * it go midway (releasing code references runs deallocators, which run
 * arbitrary code), and a second drainer interleaving with
 * the first would release ring slots twice and share g_r.frames. */
static bool g_draining;

void cp__resolver_drain(bool with_heap)
{
    if (!g_r.frames || g_draining)
        return;
    g_draining = true;
    refresh_thread_names();
    drain_ring(cp__sampler_ring());
    drain_ring(cp__alloc_ring());
    drain_alloc_overflow();
    cp__pyev_drain();
    cp__codekeep_release(false); /* what died long enough ago is resolved */
    if (with_heap) {
        cp__pyn_publish();
        report_drops();
        add_heap();
    }
    g_draining = false;
    if (with_heap)
        refresh_runtime_info();
}

void cp__resolver_clear(bool release_code)
{
    cp__codecache_reset(release_code);
}

/* ---- the resolver thread and the export hook --------------------------- */

static int64_t deadline_in(int64_t ms)
{
    return cp_now_ns() + ms * 1000000;
}

/* Scheduler thread, before each swap: have the resolver drain everything
 * (it needs the GIL, which this thread must never wait for directly: the
 * thread calling cp_stop may hold it... it releases it first, see module.c). */
static void export_hook(void *ctx)
{
    (void)ctx;
    int64_t dl = deadline_in(EXPORT_WAIT_MS);
    pthread_mutex_lock(&g_r.mu);
    if (g_r.running && !g_r.stop) {
        uint64_t want = ++g_r.req;
        pthread_cond_broadcast(&g_r.cv);
        while (g_r.running && g_r.done < want)
            if (cp_os_cond_wait_until(&g_r.cv, &g_r.mu, dl) != 0)
                break;
    }
    pthread_mutex_unlock(&g_r.mu);
}

/* A sub-interpreter with a GIL of its own that shares the main
 * interpreter's object allocator (a combination CPython's documentation
 * rules out, and which its own test_capi runs) allocates from that
 * allocator while this thread holds the main GIL: two threads in pymalloc
 * at once corrupt it (a segfault in pymalloc_alloc, seen on 3.13). Any
 * thread of the program that allocates would do the same; ours need not.
 * So while a sub-interpreter exists, drains wait, trying again every
 * SUBINTERP_POLL_MS: for SUBINTERP_WAIT_NS at most (short-lived ones are
 * the common case, and a drain fits between two; with one that lives
 * longer the drain goes ahead, as before, or the rings would drop
 * samples). Read without a lock: a new interpreter goes to the head of the
 * runtime's list, and is made by a thread holding a GIL. */
static bool subinterp_wait(void)
{
    if (PyInterpreterState_Head() == PyInterpreterState_Main()) {
        g_r.subinterp_since = 0;
        return false;
    }
    int64_t now = cp_now_ns();
    if (g_r.subinterp_since == 0)
        g_r.subinterp_since = now;
    return now - g_r.subinterp_since < SUBINTERP_WAIT_NS;
}

static void *run(void *arg)
{
    (void)arg;
    cp__alloc_exclude_thread(); /* its own allocations would feed the ring it drains */
    PyGILState_STATE gs = PyGILState_Ensure();
    cp__sampler_skip(PyThread_get_thread_ident());
    cp_thread_register_self();
    PyThreadState *save = PyEval_SaveThread();
    pthread_mutex_lock(&g_r.mu);
    bool deferred = false;
    while (!g_r.stop) {
        /* A drain put off for a sub-interpreter is tried again soon: in
         * the gap between two of them, as likely as not. */
        if (deferred)
            cp_os_cond_wait_until(&g_r.cv, &g_r.mu, deadline_in(SUBINTERP_POLL_MS));
        else if (g_r.req == g_r.done && !atomic_exchange(&g_r.kicked, false))
            cp_os_cond_wait_until(&g_r.cv, &g_r.mu, deadline_in(PERIOD_MS));
        uint64_t req = g_r.req;
        bool exp = req != g_r.done;
        pthread_mutex_unlock(&g_r.mu);
        /* No lock of ours is held while waiting for the GIL. Checked
         * again once it is held: a sub-interpreter may have been made
         * meanwhile (its maker held the GIL we waited for). */
        deferred = true;
        if (!subinterp_wait()) {
            PyEval_RestoreThread(save);
            if (!subinterp_wait()) {
                cp__resolver_drain(exp);
                deferred = false;
            }
            save = PyEval_SaveThread();
        }
        pthread_mutex_lock(&g_r.mu);
        if (!deferred) { /* an export waits for a drain (EXPORT_WAIT_MS at most) */
            g_r.done = req;
            pthread_cond_broadcast(&g_r.cv);
        }
    }
    pthread_mutex_unlock(&g_r.mu);
    cp_thread_unregister_self();
    PyEval_RestoreThread(save);
    PyGILState_Release(gs);
    return NULL;
}

static void init_sync(void)
{
    pthread_mutex_init(&g_r.mu, NULL);
    cp_os_cond_init_monotonic(&g_r.cv);
}

static bool alloc_buffers(uint32_t max_frames)
{
    if (g_r.max_frames != max_frames) {
        free(g_r.frames);
        free(g_r.ids);
        free(g_r.ovf);
        g_r.frames = calloc(max_frames, sizeof(cp_frame));
        g_r.ids = calloc(max_frames, sizeof(uint32_t));
        g_r.ovf = malloc(sizeof(cp_rawsample) + max_frames * sizeof(cp_rawframe));
        g_r.max_frames = max_frames;
    }
    return g_r.frames != NULL && g_r.ids != NULL && g_r.ovf != NULL;
}

int cp__resolver_start(uint32_t max_frames)
{
    if (g_r.running)
        return CP_ESTATE;
    if (!alloc_buffers(max_frames))
        return CP_ENOMEM;
    init_sync();
    g_r.stop = false;
    g_r.req = g_r.done = 0;
    cp_set_export_hook(export_hook, NULL);
    int rc = cp_os_thread_start(&g_r.thr, run, NULL, "contprof-resolv"); /* signals stay with Python's threads */
    if (rc != 0)
        return CP_ENOMEM;
    g_r.running = true;
    return CP_OK;
}

void cp__resolver_kick(void)
{
    /* Signalling without the mutex is allowed; a wake-up lost to a race
     * only delays the drain to the next period. */
    if (!atomic_exchange(&g_r.kicked, true))
        pthread_cond_signal(&g_r.cv);
}

void cp__resolver_stop(void)
{
    pthread_mutex_lock(&g_r.mu);
    bool was = g_r.running;
    g_r.stop = true;
    pthread_cond_broadcast(&g_r.cv);
    pthread_mutex_unlock(&g_r.mu);
    if (was)
        pthread_join(g_r.thr, NULL);
    pthread_mutex_lock(&g_r.mu);
    g_r.running = false;
    pthread_mutex_unlock(&g_r.mu);
}

void cp__resolver_forget(void)
{
    init_sync(); /* the parent's lock may have been held at fork time */
    /* So may a drain: the parent's resolver can be inside one with the GIL
     * let go (a deallocator it ran gave the GIL up) when
     * another thread forks. The child has no such drainer; left set, every
     * drain of the child would return at once and its profiles stay empty. */
    g_draining = false;
    g_r.running = false;
    g_r.stop = false;
}
