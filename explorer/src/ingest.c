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

#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "json.h"
#include "measures.h"
#include "pprof_merge.h"
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

/* Facts a client sent outside tags_profiler: dd-trace for Node puts host,
 * service, env and version in info.platform / info.application and the
 * runtime in info.runtime; contprof's own info has "host". A tag wins
 * over these (set_tag keeps the first value). */
static void facts_from_info(const ex_jval *root, tagset *t)
{
    static const struct { const char *obj, *key, *tag; } facts[] = {
        {"application", "service", "service"}, {"application", "env", "env"},
        {"application", "version", "version"}, {"platform", "hostname", "host"},
        {NULL, "host", "host"}, {"runtime", "engine", "runtime"}, {"runtime", "version", "runtime_version"},
        {NULL, "runtime_id", "runtime-id"}};
    const ex_jval *info = ex_json_get(root, "info");
    for (size_t i = 0; info && i < sizeof facts / sizeof facts[0]; i++) {
        const ex_jval *o = facts[i].obj ? ex_json_get(info, facts[i].obj) : info;
        const char *v = ex_json_str(o, facts[i].key);
        if (v && *v) set_tag(t, facts[i].tag, strlen(facts[i].tag), v, strlen(v));
    }
    const char *fam = ex_json_str(root, "family");
    if (fam && *fam && !t->language[0]) set_tag(t, "language", 8, fam, strlen(fam));
}

/* Times outside [2000-01-01, now + a week] are refused by name. */
static int check_time(const char *field, const char *text, int64_t ns, char *err, size_t errlen)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t max = (int64_t)now.tv_sec * 1000000000 + EX_MAX_FUTURE_NS;
    if (ns >= EX_MIN_TIME_NS && ns <= max) return 0;
    snprintf(err, errlen, "event.json: \"%s\" %.40s is outside the accepted range (2000-01-01 to a week from now)",
             field, text);
    return 400;
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
    if (ex_time_parse_rfc3339(start, &p->start_ns)) return bad(err, errlen, "\"start\" is not an RFC 3339 time");
    if (ex_time_parse_rfc3339(end, &p->end_ns)) return bad(err, errlen, "\"end\" is not an RFC 3339 time");
    if (check_time("start", start, p->start_ns, err, errlen)) return 400;
    if (check_time("end", end, p->end_ns, err, errlen)) return 400;
    if (p->end_ns < p->start_ns) return bad(err, errlen, "\"end\" is before \"start\"");
    const char *fam = ex_json_str(root, "family");
    snprintf(p->family, sizeof p->family, "%s", fam ? fam : "");
    const char *tags = tags_text(root);
    p->tags = strdup(tags ? tags : "");
    if (!p->tags) return oom(err, errlen);
    parse_tags(p->tags, &p->t);
    facts_from_info(root, &p->t);
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
    if (check_time("time_nanos", "of the pprof", p->start_ns, err, errlen)) return 400;
    p->tags = strdup("");
    return p->tags ? 0 : oom(err, errlen);
}

/* A gzip header we can trust the trailer of: deflate, no reserved flags. */
static bool is_gzip(const uint8_t *d, size_t n)
{
    return n >= 18 && d[0] == 0x1f && d[1] == 0x8b && d[2] == 8 && (d[3] & 0xe0) == 0;
}

/* Declared inflated size of a gzip member (its ISIZE trailer), or the
 * length itself for a plain pprof (or garbage the decoder will refuse). */
static size_t declared_size(const uint8_t *d, size_t n)
{
    if (!is_gzip(d, n)) return n;
    return (size_t)d[n - 4] | (size_t)d[n - 3] << 8 | (size_t)d[n - 2] << 16 | (size_t)d[n - 1] << 24;
}

/* The decoded structures take a few times the raw size: reserve that. */
#define DECODE_FACTOR 4

static int decode_one(const ex_ingest_req *r, const ex_ingest_part *part, cp_pprof **pp, size_t *reserved,
                      char *err, size_t errlen)
{
    size_t cap = r->max_inflated ? r->max_inflated : EX_DEFAULT_MAX_INFLATED;
    size_t want = declared_size(part->data, part->len);
    if (want > cap) {
        snprintf(err, errlen, "attachment '%.80s': pprof declares %zu bytes inflated, over the limit of %zu "
                 "(refused as a zip bomb)", part->name, want, cap);
        return 413;
    }
    /* One upload alone may use the whole budget (then it waits for the
     * others to finish); it never asks for more than there is. */
    size_t need = (want + 1024) * DECODE_FACTOR, budget = ex_budget_limit();
    if (need > budget) need = budget;
    if (!ex_budget_reserve(need, EX_BUDGET_WAIT_MS)) {
        snprintf(err, errlen, "too many large uploads being decoded at once (inflate budget of %zu bytes spent); "
                 "retry later", ex_budget_limit());
        return 503;
    }
    *reserved += need;
    /* An honest gzip trailer is exact: inflating past it is refused too. */
    size_t dcap = is_gzip(part->data, part->len) ? want + 64 : cap;
    int rc = cp_pprof_decode(part->data, part->len, dcap, pp);
    if (rc == CP_OK) return 0;
    if (rc == CP_ETOOBIG) {
        snprintf(err, errlen, "attachment '%.80s': pprof inflates past its declared size of %zu bytes "
                 "(refused as a zip bomb)", part->name, want);
        return 413;
    }
    snprintf(err, errlen, "attachment '%.80s' cannot be decoded as pprof: %s", part->name, cp_strerror(rc));
    return rc == CP_ENOMEM ? 500 : 400;
}

/* Values are amounts (time, bytes, counts): a negative one is refused. */
static int check_values(const ex_ingest_part *part, const cp_pprof *pp, char *err, size_t errlen)
{
    for (size_t i = 0; i < pp->n_samples; i++)
        for (size_t t = 0; t < pp->n_sample_types; t++) {
            if (pp->samples[i].values[t] >= 0) continue;
            snprintf(err, errlen, "attachment '%.80s': sample %zu has a negative %.60s value (%lld)", part->name,
                     i, pp->sample_types[t].type ? pp->sample_types[t].type : "?",
                     (long long)pp->samples[i].values[t]);
            return 400;
        }
    return 0;
}

typedef struct decoded {
    cp_pprof *pp;               /* the profile to measure and store */
    cp_buf merged;              /* merged bytes when several parts  */
    cp_pprof *parts[EX_MERGE_MAX_PARTS];
    size_t nparts, reserved;
} decoded;

static int merge_parts(const ex_ingest_req *r, decoded *d, char *err, size_t errlen)
{
    ex_merge_part mp[EX_MERGE_MAX_PARTS];
    for (size_t i = 0; i < d->nparts; i++) mp[i] = (ex_merge_part){r->parts[i].name, d->parts[i]};
    int rc = ex_pprof_merge(mp, d->nparts, &d->merged);
    if (rc == CP_OK) rc = cp_pprof_decode(d->merged.data, d->merged.len, 0, &d->pp);
    if (rc == CP_OK) return 0;
    snprintf(err, errlen, "cannot merge the attachments: %s", cp_strerror(rc));
    return 500;
}

static int decode(const ex_ingest_req *r, decoded *d, char *err, size_t errlen)
{
    ex_ingest_part single = {"pprof", r->pprof, r->pprof_len};
    const ex_ingest_part *parts = r->nparts ? r->parts : &single;
    size_t n = r->nparts ? r->nparts : 1;
    if (n > EX_MERGE_MAX_PARTS) {
        snprintf(err, errlen, "upload has %zu pprof attachments; at most %d are accepted", n, EX_MERGE_MAX_PARTS);
        return 400;
    }
    for (size_t i = 0; i < n; i++) {
        int st = decode_one(r, &parts[i], &d->parts[i], &d->reserved, err, errlen);
        if (st) return st;
        d->nparts++;
        if ((st = check_values(&parts[i], d->parts[i], err, errlen))) return st;
    }
    if (n == 1) {
        d->pp = d->parts[0];
        d->parts[0] = NULL;
        d->nparts = 0;
        return 0;
    }
    return merge_parts(r, d, err, errlen);
}

static void decoded_free(decoded *d)
{
    for (size_t i = 0; i < d->nparts; i++) cp_pprof_free(d->parts[i]);
    if (d->pp) cp_pprof_free(d->pp);
    cp_buf_free(&d->merged);
    ex_budget_release(d->reserved);
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

static int measure_and_store(ex_store *st, const ex_ingest_req *r, parsed *p, const decoded *d,
                             int64_t *id, bool *dup, char *err, size_t errlen)
{
    const cp_pprof *pp = d->pp;
    const uint8_t *blob = d->merged.len ? d->merged.data : r->nparts ? r->parts[0].data : r->pprof;
    size_t blob_len = d->merged.len ? d->merged.len : r->nparts ? r->parts[0].len : r->pprof_len;
    ex_measures ms;
    ex_meta meta;
    int64_t dur = p->end_ns - p->start_ns;
    if (dur <= 0) dur = pp->duration_nanos;
    if (ex_measures_compute(pp, dur, &ms)) return oom(err, errlen);
    fill_meta(&meta, p, &ms, r->source ? r->source : "");
    int rc = ex_store_add(st, &meta, blob, blob_len, id, dup, err, errlen);
    ex_measures_free(&ms);
    return rc == CP_OK ? 200 : 500;
}

/* As the Datadog agent does for what it forwards: a profile that names no
 * host gets the host the explorer runs on, as a field and as a tag. */
static int fill_host(parsed *p, char *err, size_t errlen)
{
    char h[TAGV];
    if (p->t.host[0] || gethostname(h, sizeof h)) return 0;
    h[sizeof h - 1] = 0;
    snprintf(p->t.host, sizeof p->t.host, "%s", h);
    size_t n = strlen(p->tags) + strlen(h) + 8;
    char *t = malloc(n);
    if (!t) return oom(err, errlen);
    snprintf(t, n, "%s%shost:%s", p->tags, p->tags[0] ? "," : "", h);
    free(p->tags);
    p->tags = t;
    return 0;
}

static void log_accepted(const parsed *p, const ex_ingest_req *r, const decoded *d, int64_t id, bool dup)
{
    if (!cp_log_enabled(CP_LOG_INFO)) return;
    cp_log(CP_LOG_INFO, "explorer: %s profile %lld from %s: service=%s env=%s host=%s runtime=%s, %zu attachment%s, "
           "%zu samples, %zu types", dup ? "duplicate of" : "stored", (long long)id, r->source ? r->source : "?",
           p->t.service, p->t.env, p->t.host, p->t.runtime, r->nparts ? r->nparts : 1, r->nparts > 1 ? "s" : "",
           d->pp->n_samples, d->pp->n_sample_types);
}

int ex_ingest(ex_store *st, const ex_ingest_req *r, int64_t *id, bool *dup, char *err, size_t errlen)
{
    parsed p;
    decoded d;
    memset(&p, 0, sizeof p);
    memset(&d, 0, sizeof d);
    cp_buf_init(&d.merged, 0);
    p.m_taken = p.m_dropped = p.m_fail = p.m_overhead = NAN;
    int status = r->event ? parse_event(r, &p, err, errlen) : 0;
    if (!status) status = decode(r, &d, err, errlen);
    if (!status && !r->event) status = times_from_pprof(d.pp, &p, err, errlen);
    if (!status && r->fill_host) status = fill_host(&p, err, errlen);
    if (!status) status = measure_and_store(st, r, &p, &d, id, dup, err, errlen);
    if (status == 200) log_accepted(&p, r, &d, *id, *dup);
    decoded_free(&d);
    free(p.tags);
    free(p.info);
    return status;
}
