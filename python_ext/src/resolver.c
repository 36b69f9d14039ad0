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
#include "contprof.h"
#include "saferead.h"
#include "sampler.h"

#define NAMES_CAP 1024
#define PERIOD_MS 100
#define EXPORT_WAIT_MS 3000

/* A thread's name, keyed by ident AND kernel tid: a dead thread's ident
 * (its pthread_t) is soon reused by a new thread, while samples taken before
 * it died are still being resolved; the tid tells the two apart. */
typedef struct tname {
    uint64_t id, native;
    char name[64];
} tname;

static struct {
    tname names[NAMES_CAP];
    size_t names_next;
    uint32_t max_frames;
    cp_frame *frames;
    PyObject *refresh;
    /* thread handshake */
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool running, stop;
    atomic_bool kicked;
    uint64_t req, done;
} g_r;

/* ---- thread names ------------------------------------------------------ */

void cp__resolver_set_thread_name(uint64_t thread_id, uint64_t native_id, const char *name)
{
    tname *slot = NULL;
    for (size_t i = 0; i < NAMES_CAP && !slot; i++)
        if (g_r.names[i].id == thread_id && g_r.names[i].native == native_id)
            slot = &g_r.names[i];
    if (!slot) {
        slot = &g_r.names[g_r.names_next];
        g_r.names_next = (g_r.names_next + 1) % NAMES_CAP;
    }
    slot->id = thread_id;
    slot->native = native_id;
    snprintf(slot->name, sizeof slot->name, "%s", name);
}

/* The name of the thread (ident, tid) as sampled; an entry whose tid is
 * unknown (0) only answers when no entry matches both. */
static const char *thread_name(uint64_t thread_id, uint64_t native_id)
{
    const char *loose = NULL;
    for (size_t i = 0; i < NAMES_CAP; i++) {
        const tname *t = &g_r.names[i];
        if (t->id != thread_id)
            continue;
        if (t->native == native_id)
            return t->name;
        if (t->native == 0 || native_id == 0)
            loose = t->name;
    }
    return loose;
}

/* One threading._active entry: remember its name, and its kernel tid for
 * interpreters whose thread state does not carry it. */
static void refresh_one(PyObject *key, PyObject *thread)
{
    unsigned long id = PyLong_AsUnsignedLong(key);
    if (PyErr_Occurred())
        return;
    PyObject *nid = PyObject_GetAttrString(thread, "native_id");
    unsigned long long tid = nid && PyLong_Check(nid) ? PyLong_AsUnsignedLongLong(nid) : 0;
    Py_XDECREF(nid);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        tid = 0;
    }
    PyObject *name = PyObject_GetAttrString(thread, "name");
    const char *s = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (s)
        cp__resolver_set_thread_name(id, tid, s);
    Py_XDECREF(name);
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

static size_t build_frames(const cp_rawsample *s, char *omitted_buf, size_t bufsz)
{
    size_t n = 0, cap = g_r.max_frames;
    size_t total = (size_t)s->nframes + s->omitted;
    size_t keep = total > cap ? cap - 1 : s->nframes;
    for (size_t i = 0; i < keep && i < s->nframes; i++) {
        const cp_codeinfo *e = cp__codecache_lookup(&s->frames[i]);
        g_r.frames[n++] = e ? (cp_frame){e->name, e->system_name, e->file, e->line}
                            : (cp_frame){"<unknown>", NULL, NULL, 0};
    }
    if (total > cap) {
        snprintf(omitted_buf, bufsz, "<%zu frames omitted>", total - n);
        g_r.frames[n++] = (cp_frame){omitted_buf, NULL, NULL, 0};
    }
    if (n == 0) /* the thread ran no Python code, or its stack was unreadable */
        g_r.frames[n++] = (cp_frame){"[no Python frame]", NULL, NULL, 0};
    return n;
}

static void add_one(const cp_rawsample *s, const int64_t *v)
{
    char omitted[48];
    cp__codecache_trim();
    size_t n = build_frames(s, omitted, sizeof omitted);
    cp_label labels[3];
    size_t nl = 0;
    labels[nl++] = (cp_label){"thread id", NULL, (int64_t)s->thread_id, NULL};
    if (s->native_id)
        labels[nl++] = (cp_label){"thread native id", NULL, (int64_t)s->native_id, NULL};
    const char *name = thread_name(s->thread_id, s->native_id);
    if (name)
        labels[nl++] = (cp_label){"thread name", name, 0, NULL};
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
        add_one(s, v);
        cp__ring_release(r);
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

void cp__resolver_drain(bool with_heap)
{
    if (!g_r.frames)
        return;
    refresh_thread_names();
    drain_ring(cp__sampler_ring());
    drain_ring(cp__alloc_ring());
    if (!with_heap)
        return;
    add_heap();
    if (g_r.refresh) {
        PyObject *r = PyObject_CallObject(g_r.refresh, NULL);
        if (!r)
            PyErr_Clear(); /* runtime info is best effort; never disturb the host */
        Py_XDECREF(r);
    }
}

void cp__resolver_clear(void)
{
    cp__codecache_reset();
}

/* ---- the resolver thread and the export hook --------------------------- */

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t ns = ts->tv_nsec + (ms % 1000) * 1000000;
    ts->tv_sec += ms / 1000 + ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

/* Scheduler thread, before each swap: have the resolver drain everything
 * (it needs the GIL, which this thread must never wait for directly: the
 * thread calling cp_stop may hold it... it releases it first, see module.c). */
static void export_hook(void *ctx)
{
    (void)ctx;
    struct timespec dl;
    deadline_in(&dl, EXPORT_WAIT_MS);
    pthread_mutex_lock(&g_r.mu);
    if (g_r.running && !g_r.stop) {
        uint64_t want = ++g_r.req;
        pthread_cond_broadcast(&g_r.cv);
        while (g_r.running && g_r.done < want)
            if (pthread_cond_timedwait(&g_r.cv, &g_r.mu, &dl) != 0)
                break;
    }
    pthread_mutex_unlock(&g_r.mu);
}

static void *run(void *arg)
{
    (void)arg;
    PyGILState_STATE gs = PyGILState_Ensure();
    cp__sampler_skip(PyThread_get_thread_ident());
    cp_thread_register_self();
    PyThreadState *save = PyEval_SaveThread();
    pthread_mutex_lock(&g_r.mu);
    while (!g_r.stop) {
        struct timespec dl;
        deadline_in(&dl, PERIOD_MS);
        if (g_r.req == g_r.done && !atomic_exchange(&g_r.kicked, false))
            pthread_cond_timedwait(&g_r.cv, &g_r.mu, &dl);
        uint64_t req = g_r.req;
        bool exp = req != g_r.done;
        pthread_mutex_unlock(&g_r.mu);
        /* No lock of ours is held while waiting for the GIL. */
        PyEval_RestoreThread(save);
        cp__resolver_drain(exp);
        save = PyEval_SaveThread();
        pthread_mutex_lock(&g_r.mu);
        g_r.done = req;
        pthread_cond_broadcast(&g_r.cv);
    }
    pthread_mutex_unlock(&g_r.mu);
    cp_thread_unregister_self();
    PyEval_RestoreThread(save);
    PyGILState_Release(gs);
    return NULL;
}

static void init_sync(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&g_r.mu, NULL);
    pthread_cond_init(&g_r.cv, &ca);
    pthread_condattr_destroy(&ca);
}

static bool alloc_buffers(uint32_t max_frames)
{
    if (g_r.max_frames != max_frames) {
        free(g_r.frames);
        g_r.frames = calloc(max_frames, sizeof(cp_frame));
        g_r.max_frames = max_frames;
    }
    return g_r.frames != NULL;
}

int cp__resolver_start(PyObject *refresh, uint32_t max_frames)
{
    if (g_r.running)
        return CP_ESTATE;
    if (!alloc_buffers(max_frames))
        return CP_ENOMEM;
    if (refresh) { /* NULL keeps the current one (restart after fork) */
        Py_INCREF(refresh);
        Py_XSETREF(g_r.refresh, refresh);
    }
    init_sync();
    g_r.stop = false;
    g_r.req = g_r.done = 0;
    cp_set_export_hook(export_hook, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals stay with Python's threads */
    int rc = pthread_create(&g_r.thr, NULL, run, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
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
    g_r.running = false;
    g_r.stop = false;
}
