/*
 * ingest.c — validation and indexing of one profile (ingest.h).
 *
 * Order matters for "nothing half-written": everything that can reject the
 * input (JSON, times, pprof decoding, measures) runs before the store is
 * touched; the store itself writes the blob atomically, then the row.
 */
#include "ingest.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "measures.h"
#include "tags.h"
#include "timeutil.h"

#define TAGV 256

/* Facet values parsed from tags_profiler. */
typedef struct tagset {
    char service[TAGV], env[TAGV], version[TAGV], host[TAGV], runtime[TAGV];
    char runtime_version[TAGV], language[TAGV], runtime_id[TAGV], pid[32];
} tagset;

typedef struct parsed {
    tagset t;
    char family[64];
    int64_t start_ns, end_ns;
    char *tags;  /* owned copy of tags_profiler */
    char *info;  /* owned copy of the raw "info" JSON */
    double m_taken, m_dropped, m_fail, m_overhead;
} parsed;

static void set_tag(tagset *t, const char *k, size_t kn, const char *v, size_t vn)
{
    static const struct { const char *key; size_t off, size; } map[] = {
        {"service", offsetof(tagset, service), TAGV}, {"env", offsetof(tagset, env), TAGV},
        {"version", offsetof(tagset, version), TAGV}, {"host", offsetof(tagset, host), TAGV},
        {"runtime", offsetof(tagset, runtime), TAGV}, {"runtime_version", offsetof(tagset, runtime_version), TAGV},
        {"language", offsetof(tagset, language), TAGV}, {"runtime-id", offsetof(tagset, runtime_id), TAGV},
        {"process_id", offsetof(tagset, pid), 32}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strlen(map[i].key) != kn || strncmp(map[i].key, k, kn) != 0) continue;
        char *dst = (char *)t + map[i].off;
        if (dst[0]) return; /* first occurrence wins */
        snprintf(dst, map[i].size, "%.*s", (int)vn, v);
        return;
    }
}

static void parse_tags(const char *s, tagset *t)
{
    ex_tag_iter it;
    const char *k, *v;
    size_t kn, vn;
    ex_tag_iter_init(&it, s);
    while (ex_tag_next(&it, &k, &kn, &v, &vn)) set_tag(t, k, kn, v, vn);
}

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "event.json: %s", what);
    return 400;
}

static int oom(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return 500;
}

static const ex_jval *metrics_obj(const ex_jval *info)
{
    static const char *const names[] = {"metrics", "profiler_metrics", "profiler"};
    for (size_t i = 0; i < 3; i++) {
        const ex_jval *m = ex_json_get(info, names[i]);
        if (m && m->type == EX_J_OBJ && ex_json_get(m, "samples_taken")) return m;
        if (m && m->type == EX_J_OBJ && ex_json_get(m, "metrics")) return metrics_obj(m);
    }
    return NULL;
}

static int event_info(const ex_jval *root, const char *text, parsed *p, char *err, size_t errlen)
{
    const ex_jval *info = ex_json_get(root, "info");
    p->m_taken = p->m_dropped = p->m_fail = p->m_overhead = NAN;
    if (!info) return 0;
    if (info->type != EX_J_OBJ) return bad(err, errlen, "\"info\" is not an object");
    p->info = strndup(text + info->off, info->len);
    if (!p->info) return oom(err, errlen);
    const ex_jval *m = metrics_obj(info);
    if (!m) return 0;
    p->m_taken = ex_json_num(m, "samples_taken", NAN);
    p->m_dropped = ex_json_num(m, "samples_dropped", NAN);
    p->m_fail = ex_json_num(m, "upload_failures", NAN);
    p->m_overhead = ex_json_num(m, "overhead_pct", ex_json_num(m, "last_overhead_pct", NAN));
    return 0;
}

static const char *tags_text(const ex_jval *root)
{
    const char *t = ex_json_str(root, "tags_profiler");
    return t ? t : ex_json_str(root, "tags");
}

static int event_fields(const ex_jval *root, const char *text, parsed *p, char *err, size_t errlen)
{
    if (root->type != EX_J_OBJ) return bad(err, errlen, "not a JSON object");
    const char *start = ex_json_str(root, "start"), *end = ex_json_str(root, "end");
    if (!start || !end) return bad(err, errlen, "missing \"start\" or \"end\"");
    if (ex_time_parse_rfc3339(start, &p->start_ns) || ex_time_parse_rfc3339(end, &p->end_ns))
        return bad(err, errlen, "\"start\"/\"end\" are not RFC 3339 times");
    if (p->end_ns < p->start_ns) return bad(err, errlen, "\"end\" is before \"start\"");
    const char *fam = ex_json_str(root, "family");
    snprintf(p->family, sizeof p->family, "%s", fam ? fam : "");
    const char *tags = tags_text(root);
    p->tags = strdup(tags ? tags : "");
    if (!p->tags) return oom(err, errlen);
    parse_tags(p->tags, &p->t);
    return event_info(root, text, p, err, errlen);
}

static int parse_event(const ex_ingest_req *r, parsed *p, char *err, size_t errlen)
{
    ex_jval *root;
    char jerr[160];
    if (ex_json_parse(r->event, r->event_len, &root, jerr, sizeof jerr)) return bad(err, errlen, jerr);
    int st = event_fields(root, r->event, p, err, errlen);
    ex_json_free(root);
    return st;
}

/* Without a sidecar: times from the pprof itself. */
static int times_from_pprof(const cp_pprof *pp, parsed *p, char *err, size_t errlen)
{
    if (pp->time_nanos <= 0) {
        snprintf(err, errlen, "no event.json and the pprof has no time_nanos");
        return 400;
    }
    p->start_ns = pp->time_nanos;
    p->end_ns = pp->time_nanos + (pp->duration_nanos > 0 ? pp->duration_nanos : 0);
    p->tags = strdup("");
    return p->tags ? 0 : oom(err, errlen);
}

static int decode(const ex_ingest_req *r, cp_pprof **pp, char *err, size_t errlen)
{
    size_t cap = r->max_inflated ? r->max_inflated : EX_DEFAULT_MAX_INFLATED;
    int rc = cp_pprof_decode(r->pprof, r->pprof_len, cap, pp);
    if (rc == CP_OK) return 0;
    if (rc == CP_ETOOBIG) {
        snprintf(err, errlen, "pprof inflates to more than %zu bytes (refused as a zip bomb)", cap);
        return 413;
    }
    snprintf(err, errlen, "pprof attachment cannot be decoded: %s", cp_strerror(rc));
    return rc == CP_ENOMEM ? 500 : 400;
}

static void fill_meta(ex_meta *m, const parsed *p, const ex_measures *ms, const char *source)
{
    const tagset *t = &p->t;
    memset(m, 0, sizeof *m);
    m->service = t->service; m->env = t->env; m->version = t->version; m->host = t->host;
    m->runtime = t->runtime; m->runtime_version = t->runtime_version; m->language = t->language;
    m->family = p->family; m->runtime_id = t->runtime_id; m->tags = p->tags; m->source = source;
    m->pid = strtoll(t->pid, NULL, 10);
    m->start_ns = p->start_ns; m->end_ns = p->end_ns;
    m->types_json = ms->types_json;
    m->default_type = ms->default_type ? ms->default_type : "";
    m->info_json = p->info ? p->info : "{}";
    m->samples = ms->samples; m->sample_count = ms->sample_count;
    m->cpu_cores = ms->cpu_cores; m->alloc_rate = ms->alloc_rate;
    m->live_heap = ms->live_heap; m->threads = ms->threads;
    m->m_samples_taken = p->m_taken; m->m_samples_dropped = p->m_dropped;
    m->m_upload_failures = p->m_fail; m->m_overhead_pct = p->m_overhead;
}

static int measure_and_store(ex_store *st, const ex_ingest_req *r, parsed *p, const cp_pprof *pp,
                             int64_t *id, bool *dup, char *err, size_t errlen)
{
    ex_measures ms;
    ex_meta meta;
    int64_t dur = p->end_ns - p->start_ns;
    if (dur <= 0) dur = pp->duration_nanos;
    if (ex_measures_compute(pp, dur, &ms)) return oom(err, errlen);
    fill_meta(&meta, p, &ms, r->source ? r->source : "");
    int rc = ex_store_add(st, &meta, r->pprof, r->pprof_len, id, dup, err, errlen);
    ex_measures_free(&ms);
    return rc == CP_OK ? 200 : 500;
}

int ex_ingest(ex_store *st, const ex_ingest_req *r, int64_t *id, bool *dup, char *err, size_t errlen)
{
    parsed p;
    cp_pprof *pp = NULL;
    memset(&p, 0, sizeof p);
    p.m_taken = p.m_dropped = p.m_fail = p.m_overhead = NAN;
    int status = r->event ? parse_event(r, &p, err, errlen) : 0;
    if (!status) status = decode(r, &pp, err, errlen);
    if (!status && !r->event) status = times_from_pprof(pp, &p, err, errlen);
    if (!status) status = measure_and_store(st, r, &p, pp, id, dup, err, errlen);
    if (pp) cp_pprof_free(pp);
    free(p.tags);
    free(p.info);
    return status;
}
