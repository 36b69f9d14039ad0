/*
 * pyevents.c — the buffer of sampled lock and exception events (see
 * pyevents.h). A plain array guarded by the GIL: producers append, the
 * resolver empties it. Sampled events are rare by construction (the rate
 * samplers aim at a few hundred per second), so a full buffer between two
 * drains only happens in bursts; it kicks the resolver at half full.
 */
#include <Python.h>

#include "pyevents.h"

#include <stdlib.h>
#include <string.h>

#include "contprof.h"
#include "codekeep.h"
#include "pywalk.h"
#include "resolver.h"

#define EV_SLOTS 512
#define LABEL_MAX 160

typedef struct ev_meta {
    cp_pyev_kind kind;
    int64_t value, count;
    char label[LABEL_MAX];
} ev_meta;

static struct {
    uint8_t *recs;        /* EV_SLOTS cp_rawsample of rec_size bytes */
    size_t rec_size, n;
    uint32_t max_frames;
    ev_meta meta[EV_SLOTS];
} g_e;                    /* GIL */

static cp_rawsample *rec_at(size_t i)
{
    return (cp_rawsample *)(g_e.recs + i * g_e.rec_size);
}

int cp__pyev_init(uint32_t max_frames)
{
    if (g_e.recs && g_e.max_frames == max_frames)
        return CP_OK;
    free(g_e.recs);
    g_e.n = 0;
    g_e.rec_size = sizeof(cp_rawsample) + max_frames * sizeof(cp_rawframe);
    g_e.recs = calloc(EV_SLOTS + 1, g_e.rec_size); /* + a spare (see merge) */
    g_e.max_frames = g_e.recs ? max_frames : 0;
    return g_e.recs ? CP_OK : CP_ENOMEM;
}

/* Add event s to a buffered one of the same kind, label, thread and
 * stack (their code objects are already kept alive). False when none. */
static bool merge(const cp_rawsample *s, cp_pyev_kind kind, int64_t value, int64_t count, const char *label)
{
    for (size_t i = g_e.n; i-- > 0;) { /* the newest are the likeliest */
        ev_meta *m = &g_e.meta[i];
        if (m->kind == kind && strncmp(m->label, label, LABEL_MAX - 1) == 0 && cp__raw_same_stack(rec_at(i), s)) {
            m->value += value;
            m->count += count;
            cp_metrics_add_taken(1);
            return true;
        }
    }
    return false;
}

void cp__pyev_record(cp_pyev_kind kind, int64_t value, int64_t count, const char *label)
{
    cp__pyev_record_skip(kind, value, count, label, 0, NULL, 0);
}

void cp__pyev_record_skip(cp_pyev_kind kind, int64_t value, int64_t count, const char *label, uint32_t skip,
                          const cp_rawframe *prefix, uint32_t nprefix)
{
    int64_t t0 = cp_now_ns();
    PyThreadState *ts = PyThreadState_Get(); /* the GIL is held: never NULL */
    cp_tsinfo ti;
    /* Only the main interpreter is profiled: a sub-interpreter's frames
     * hold its code objects, which the resolver would keep referenced past
     * that interpreter's end (and, with its own allocator, free into
     * memory that is gone: "free(): invalid pointer" at exit). */
    if (!g_e.recs || !ts || !cp__ts_read((uintptr_t)ts, true, &ti) ||
        ti.interp != (uintptr_t)PyInterpreterState_Main())
        return;
    /* A full buffer (the resolver is waiting for the GIL: hundreds of
     * threads queueing for it keep it away for seconds) takes the event
     * into the spare record, to be merged into an equal one. */
    bool full = g_e.n == EV_SLOTS;
    cp_rawsample *s = rec_at(full ? EV_SLOTS : g_e.n);
    memset(s, 0, sizeof *s);
    s->thread_id = ti.thread_id;
    s->native_id = ti.native_id;
    s->nframes = cp__walk(cp__ts_top(&ti, true), true, s->frames, g_e.max_frames, &s->omitted);
    if (skip > 0 && s->nframes > skip) { /* leaf first: drop the recorder's own frames */
        memmove(s->frames, s->frames + skip, (s->nframes - skip) * sizeof s->frames[0]);
        s->nframes -= skip;
    }
    if (nprefix > 0) { /* in front; what no longer fits at the root end goes */
        nprefix = nprefix < g_e.max_frames ? nprefix : g_e.max_frames;
        uint32_t keep = s->nframes < g_e.max_frames - nprefix ? s->nframes : g_e.max_frames - nprefix;
        s->omitted += s->nframes - keep;
        memmove(s->frames + nprefix, s->frames, keep * sizeof s->frames[0]);
        memcpy(s->frames, prefix, nprefix * sizeof s->frames[0]);
        s->nframes = nprefix + keep;
    }
    if (full) {
        if (!merge(s, kind, value, count, label ? label : ""))
            cp_metrics_add_dropped(1);
        cp_metrics_add_hook_ns(cp_now_ns() - t0);
        return;
    }
    int64_t seen_ns = cp_now_ns();
    for (uint32_t i = 0; i < s->nframes; i++)
        cp__codekeep_seen_at(s->frames[i].code, seen_ns); /* alive until the resolver names it */
    ev_meta *m = &g_e.meta[g_e.n++];
    m->kind = kind;
    m->value = value;
    m->count = count;
    snprintf(m->label, sizeof m->label, "%s", label ? label : "");
    cp_metrics_add_taken(1);
    if (g_e.n == EV_SLOTS / 2)
        cp__resolver_kick();
    cp_metrics_add_hook_ns(cp_now_ns() - t0);
}

void cp__pyev_drain(void)
{
    for (size_t i = 0; i < g_e.n; i++) {
        const ev_meta *m = &g_e.meta[i];
        int64_t v[CP_V__COUNT] = {0};
        cp_label extra;
        if (m->kind == CP_PYEV_LOCK) {
            v[CP_V_LOCK_WAIT] = m->value;
            v[CP_V_LOCK_COUNT] = m->count;
            extra = (cp_label){"lock name", m->label, 0, NULL};
        } else if (m->kind == CP_PYEV_HOLD) {
            v[CP_V_LOCK_HOLD] = m->value;
            v[CP_V_LOCK_RELEASE] = m->count;
            extra = (cp_label){"lock name", m->label, 0, NULL};
        } else {
            v[CP_V_EXC_SAMPLES] = m->count;
            extra = (cp_label){"exception type", m->label, 0, NULL};
        }
        cp__resolver_add(rec_at(i), v, m->label[0] ? &extra : NULL);
    }
    g_e.n = 0;
}

void cp__pyev_after_fork(void)
{
    g_e.n = 0;
}
