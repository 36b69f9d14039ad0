/*
 * api.c — routes of the JSON API and the embedded pages (api.h, API.md).
 * Handlers that need a profile's samples read its blob and decode it with
 * the core's cp_pprof_decode outside the store lock.
 */
#include "api.h"

#include <ctype.h>
#include <regex.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggjob.h"
#include "analysis.h"
#include "assets.h"
#include "flame.h"
#include "intake.h"
#include "json.h"
#include "measures.h"
#include "metrics.h"
#include "pcache.h"
#include "query.h"

/* Aggregation merges every matching profile, up to this many (newest). */
#define AGG_MAX_PROFILES 200000
#define AGG_THREADS 4 /* at most; one per online CPU */

void ex_resp_init(ex_resp *r)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
    r->content_type = "application/json";
    cp_buf_init(&r->body, 0);
}

void ex_resp_free(ex_resp *r)
{
    cp_buf_free(&r->body);
}

void ex_resp_error(ex_resp *r, int status, const char *msg)
{
    ex_jw w;
    r->body.len = 0;
    r->status = status;
    r->content_type = "application/json";
    ex_jw_init(&w, &r->body);
    ex_jw_obj(&w);
    ex_jw_kstr(&w, "error", msg);
    ex_jw_obj_end(&w);
}

/* ---- helpers --------------------------------------------------------- */

/* The decoded profile (shared, from the decoded cache): release *ref. */
static int load_pprof(const ex_api *api, int64_t id, const cp_pprof **pp, ex_pcache_ref **ref, ex_resp *r)
{
    int rc = ex_pcache_get(api->store, id, api->max_inflated, pp, ref);
    if (rc == CP_EINVAL) ex_resp_error(r, 404, "no such profile");
    else if (rc) ex_resp_error(r, 500, "stored profile cannot be read");
    return rc;
}

static double num_param(const ex_params *ps, const char *key, double dflt)
{
    const char *v = ex_param_get(ps, key);
    char *end;
    if (!v || !*v) return dflt;
    double d = strtod(v, &end);
    return *end ? dflt : d;
}

/* A count parameter clamped to [1, max] (dflt when absent or bad). */
static size_t count_param(const ex_params *ps, const char *key, size_t dflt, size_t max)
{
    double d = num_param(ps, key, (double)dflt);
    if (!(d >= 1)) return dflt; /* also NaN */
    return d > (double)max ? max : (size_t)d;
}

/* Resolve ?type= (or the default) to an index; 400 when absent. */
static int type_param(const cp_pprof *pp, const ex_params *ps, const char *dflt, ex_resp *r)
{
    const char *type = ex_param_get(ps, "type");
    if (!type || !*type) type = dflt;
    int t = type ? cp_pprof_type_index(pp, type) : -1;
    if (t < 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "profile has no sample type '%.100s'", type ? type : "");
        ex_resp_error(r, 400, msg);
    }
    return t;
}

static void write_type_head(ex_jw *w, const cp_sample_type *st)
{
    ex_jw_kstr(w, "type", st->type ? st->type : "");
    ex_jw_kstr(w, "unit", st->unit ? st->unit : "");
}

static void finish_json(ex_resp *r, ex_jw *w)
{
    if (w->err) ex_resp_error(r, 500, w->err == CP_ERANGE ? "response nested too deeply" : "out of memory building the response");
}

/* ---- filters (focus / ignore / hide / label) -------------------------- */

/* Compiled filters of one request; owns the regexes. */
typedef struct req_filter {
    ex_flame_filter f;
    regex_t re[3 + EX_FLAME_MAX_LABEL_FILTERS];
    bool used[3 + EX_FLAME_MAX_LABEL_FILTERS];
    char keys[EX_FLAME_MAX_LABEL_FILTERS][128];
    bool any;
} req_filter;

static void filter_free(req_filter *rf)
{
    for (size_t i = 0; i < sizeof rf->re / sizeof rf->re[0]; i++)
        if (rf->used[i]) regfree(&rf->re[i]);
}

static int compile(req_filter *rf, size_t slot, const char *param, const char *text, ex_resp *r)
{
    int rc = regcomp(&rf->re[slot], text, REG_EXTENDED | REG_NOSUB | REG_ICASE);
    if (rc) {
        char why[120], msg[300];
        regerror(rc, &rf->re[slot], why, sizeof why);
        snprintf(msg, sizeof msg, "'%s' is not a valid regular expression: %s", param, why);
        ex_resp_error(r, 400, msg);
        return -1;
    }
    rf->used[slot] = true;
    rf->any = true;
    return 0;
}

/* time_from / time_to (Unix ns, from the time-ordered view). */
static int time_window(const ex_params *ps, req_filter *rf, ex_resp *r)
{
    const char *a = ex_param_get(ps, "time_from"), *b = ex_param_get(ps, "time_to");
    if (!a && !b) return 0;
    char *e1 = NULL, *e2 = NULL;
    long long from = a ? strtoll(a, &e1, 10) : INT64_MIN, to = b ? strtoll(b, &e2, 10) : INT64_MAX;
    if ((a && (!*a || *e1)) || (b && (!*b || *e2)) || from >= to) {
        ex_resp_error(r, 400, "'time_from'/'time_to' must be Unix nanoseconds with time_from < time_to");
        return -1;
    }
    rf->f.has_time = true;
    rf->f.time_from = from;
    rf->f.time_to = to;
    rf->any = true;
    return 0;
}

/* focus=RE, ignore=RE, hide=RE (function names) and label=KEY:RE
 * (repeatable: "thread name:^worker", "exception type:IOError"). 0, or
 * -1 with a 400 naming the bad parameter. */
static int filter_parse(const ex_params *ps, req_filter *rf, ex_resp *r)
{
    static const char *const names[3] = {"focus", "ignore", "hide"};
    memset(rf, 0, sizeof *rf);
    for (size_t k = 0; k < 3; k++) {
        const char *v = ex_param_get(ps, names[k]);
        if (!v || !*v) continue;
        if (compile(rf, k, names[k], v, r)) return -1;
        if (k == 0) rf->f.focus = &rf->re[0];
        if (k == 1) rf->f.ignore = &rf->re[1];
        if (k == 2) rf->f.hide = &rf->re[2];
    }
    for (size_t i = 0; i < ps->n; i++) {
        if (strcmp(ps->p[i].key, "label") != 0 || !*ps->p[i].val) continue;
        const char *colon = strchr(ps->p[i].val, ':');
        size_t n = rf->f.nlabels;
        if (!colon || colon == ps->p[i].val || n == EX_FLAME_MAX_LABEL_FILTERS) {
            ex_resp_error(r, 400, "'label' must be KEY:REGEX (at most 4), e.g. label=thread name:^worker");
            return -1;
        }
        snprintf(rf->keys[n], sizeof rf->keys[n], "%.*s", (int)(colon - ps->p[i].val), ps->p[i].val);
        if (compile(rf, 3 + n, "label", colon + 1, r)) return -1;
        rf->f.labels[n].key = rf->keys[n];
        rf->f.labels[n].re = &rf->re[3 + n];
        rf->f.nlabels++;
    }
    return time_window(ps, rf, r);
}

static const ex_flame_filter *filter_of(const req_filter *rf)
{
    return rf->any ? &rf->f : NULL;
}

/* ---- single profile -------------------------------------------------- */

/* The body of a flame ("root", "nodes", "pruned") or table ("rows")
 * response after its head fields; "total" in both. */
static void write_flame_body(ex_jw *w, const ex_flame *f, const ex_params *ps, bool table)
{
    size_t pruned = 0;
    ex_jw_knum(w, "total", ex_flame_total(f, 0));
    if (table) {
        ex_jw_key(w, "rows");
        ex_flame_write_rows(f, w, 1, count_param(ps, "limit", 2000, 100000));
        return;
    }
    ex_jw_key(w, "root");
    ex_flame_write_tree(f, w, 1, num_param(ps, "min_frac", 0.0005), count_param(ps, "max_nodes", 50000, 2000000),
                        &pruned);
    ex_jw_kint(w, "nodes", (int64_t)ex_flame_node_count(f));
    ex_jw_kint(w, "pruned", (int64_t)pruned);
}

static void profile_flame(const ex_api *api, int64_t id, const ex_params *ps, bool table, ex_resp *r)
{
    const cp_pprof *pp;
    ex_pcache_ref *ref;
    req_filter rf;
    if (filter_parse(ps, &rf, r)) { filter_free(&rf); return; }
    if (load_pprof(api, id, &pp, &ref, r)) { filter_free(&rf); return; }
    int t = type_param(pp, ps, ex_default_type(pp), r);
    ex_flame *f = t >= 0 ? ex_flame_new(0) : NULL;
    if (t >= 0 && (!f || ex_flame_add_filtered(f, pp, t, 0, 1.0, filter_of(&rf)))) {
        ex_resp_error(r, 500, "out of memory");
    } else if (t >= 0) {
        ex_jw w;
        ex_jw_init(&w, &r->body);
        ex_jw_obj(&w);
        write_type_head(&w, &pp->sample_types[t]);
        write_flame_body(&w, f, ps, table);
        ex_jw_obj_end(&w);
        finish_json(r, &w);
    }
    ex_flame_free(f);
    ex_pcache_release(ref);
    filter_free(&rf);
}

/* The function a sandwich or line view is about: ?fn=NAME&file=FILE. */
static const char *fn_param(const ex_params *ps, const char **file, ex_resp *r)
{
    const char *fn = ex_param_get(ps, "fn");
    *file = ex_param_get(ps, "file");
    if (!*file) *file = "";
    if (!fn || !*fn) ex_resp_error(r, 400, "'fn' (a function name) is required");
    return fn && *fn ? fn : NULL;
}

static void write_subtree(ex_jw *w, const char *key, const ex_flame *f, const ex_params *ps)
{
    size_t pruned = 0;
    ex_jw_key(w, key);
    ex_jw_obj(w);
    ex_jw_knum(w, "total", ex_flame_total(f, 0));
    ex_jw_key(w, "root");
    ex_flame_write_tree(f, w, 1, num_param(ps, "min_frac", 0.0005), count_param(ps, "max_nodes", 50000, 2000000),
                        &pruned);
    ex_jw_kint(w, "pruned", (int64_t)pruned);
    ex_jw_obj_end(w);
}

/* GET /api/profiles/{id}/sandwich?fn=&file=&type=: callers and callees. */
static void profile_sandwich(const ex_api *api, int64_t id, const ex_params *ps, ex_resp *r)
{
    const cp_pprof *pp;
    ex_pcache_ref *ref;
    req_filter rf;
    const char *file, *fn = fn_param(ps, &file, r);
    if (!fn) return;
    if (filter_parse(ps, &rf, r)) { filter_free(&rf); return; }
    if (load_pprof(api, id, &pp, &ref, r)) { filter_free(&rf); return; }
    int t = type_param(pp, ps, ex_default_type(pp), r);
    ex_flame *up = t >= 0 ? ex_flame_new(0) : NULL, *down = t >= 0 ? ex_flame_new(0) : NULL;
    if (t >= 0 && (!up || !down || ex_flame_sandwich(up, down, pp, t, fn, file, filter_of(&rf)))) {
        ex_resp_error(r, 500, "out of memory");
    } else if (t >= 0) {
        ex_jw w;
        ex_jw_init(&w, &r->body);
        ex_jw_obj(&w);
        write_type_head(&w, &pp->sample_types[t]);
        ex_jw_kstr(&w, "function", fn);
        ex_jw_kstr(&w, "file", file);
        ex_jw_knum(&w, "profile_total", ex_type_total(pp, t));
        write_subtree(&w, "callers", up, ps);
        write_subtree(&w, "callees", down, ps);
        ex_jw_obj_end(&w);
        finish_json(r, &w);
    }
    ex_flame_free(up);
    ex_flame_free(down);
    ex_pcache_release(ref);
    filter_free(&rf);
}

/* Source text is read only for files that look like source code, are
 * regular files and are small: a profile names paths, and the explorer
 * must not become a way to read any file of the machine it runs on. */
static bool source_file_ok(const char *file, struct stat *st)
{
    static const char *const ext[] = {".py", ".pyx", ".java", ".kt", ".scala", ".groovy", ".js", ".mjs", ".cjs",
                                      ".ts", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".go", ".rb", ".rs", ".cs"};
    const char *dot = strrchr(file, '.');
    bool known = false;
    for (size_t i = 0; dot && i < sizeof ext / sizeof ext[0] && !known; i++) known = !strcmp(dot, ext[i]);
    return known && file[0] == '/' && stat(file, st) == 0 && S_ISREG(st->st_mode) && st->st_size <= (1 << 20);
}

static void write_source(ex_jw *w, const char *file)
{
    struct stat st;
    ex_jw_key(w, "source");
    if (!source_file_ok(file, &st)) { ex_jw_null(w); return; }
    FILE *fp = fopen(file, "rb");
    char *text = fp ? malloc((size_t)st.st_size + 1) : NULL;
    size_t n = text ? fread(text, 1, (size_t)st.st_size, fp) : 0;
    if (fp) fclose(fp);
    if (!text) { ex_jw_null(w); return; }
    ex_jw_arr(w);
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && text[i] != '\n') continue;
        ex_jw_strn(w, text + start, i - start);
        start = i + 1;
    }
    ex_jw_arr_end(w);
    free(text);
}

/* GET /api/profiles/{id}/lines?fn=&file=&type=: per-line costs of a
 * function, with its source text when the file is readable here. */
static void profile_lines(const ex_api *api, int64_t id, const ex_params *ps, ex_resp *r)
{
    const cp_pprof *pp;
    ex_pcache_ref *ref;
    req_filter rf;
    const char *file, *fn = fn_param(ps, &file, r);
    if (!fn) return;
    if (filter_parse(ps, &rf, r)) { filter_free(&rf); return; }
    if (load_pprof(api, id, &pp, &ref, r)) { filter_free(&rf); return; }
    int t = type_param(pp, ps, ex_default_type(pp), r);
    ex_line_cost *lines = NULL;
    size_t n = 0;
    if (t >= 0 && ex_flame_lines(pp, t, fn, file, filter_of(&rf), &lines, &n)) {
        ex_resp_error(r, 500, "out of memory");
    } else if (t >= 0) {
        ex_jw w;
        ex_jw_init(&w, &r->body);
        ex_jw_obj(&w);
        write_type_head(&w, &pp->sample_types[t]);
        ex_jw_kstr(&w, "function", fn);
        ex_jw_kstr(&w, "file", file);
        ex_jw_knum(&w, "profile_total", ex_type_total(pp, t));
        ex_jw_key(&w, "lines");
        ex_jw_arr(&w);
        for (size_t i = 0; i < n; i++) {
            ex_jw_obj(&w);
            ex_jw_kint(&w, "line", lines[i].line);
            ex_jw_knum(&w, "self", lines[i].self);
            ex_jw_knum(&w, "total", lines[i].total);
            ex_jw_obj_end(&w);
        }
        ex_jw_arr_end(&w);
        write_source(&w, file);
        ex_jw_obj_end(&w);
        finish_json(r, &w);
    }
    free(lines);
    ex_pcache_release(ref);
    filter_free(&rf);
}

/* GET /api/profiles/{id}/timeline?type=&buckets=: the time-ordered view
 * where samples carry timestamps; "values" is [] when they do not. */
static void profile_timeline(const ex_api *api, int64_t id, const ex_params *ps, ex_resp *r)
{
    const cp_pprof *pp;
    ex_pcache_ref *ref;
    req_filter rf;
    if (filter_parse(ps, &rf, r)) { filter_free(&rf); return; }
    if (load_pprof(api, id, &pp, &ref, r)) { filter_free(&rf); return; }
    int t = type_param(pp, ps, ex_default_type(pp), r);
    size_t nb = count_param(ps, "buckets", 120, 2000);
    double *vals = NULL;
    int64_t from = 0, width = 0;
    int rc = t >= 0 ? ex_flame_timeline(pp, t, nb, filter_of(&rf), &vals, &from, &width) : CP_OK;
    if (rc == CP_ENOMEM) {
        ex_resp_error(r, 500, "out of memory");
    } else if (t >= 0) {
        ex_jw w;
        ex_jw_init(&w, &r->body);
        ex_jw_obj(&w);
        write_type_head(&w, &pp->sample_types[t]);
        ex_jw_kint(&w, "from_ns", from);
        ex_jw_kint(&w, "bucket_ns", width);
        ex_jw_key(&w, "values");
        ex_jw_arr(&w);
        for (size_t i = 0; vals && i < nb; i++) ex_jw_num(&w, vals[i]);
        ex_jw_arr_end(&w);
        ex_jw_obj_end(&w);
        finish_json(r, &w);
    }
    free(vals);
    ex_pcache_release(ref);
    filter_free(&rf);
}

/* GET /api/profiles/{id}/labels: every label key with its most frequent
 * values (by number of samples), for label filters on the page. */
static void profile_labels(const ex_api *api, int64_t id, ex_resp *r)
{
    const cp_pprof *pp;
    ex_pcache_ref *ref;
    if (load_pprof(api, id, &pp, &ref, r)) return;
    ex_jw w;
    ex_jw_init(&w, &r->body);
    if (ex_labels_write(pp, &w, 50)) ex_resp_error(r, 500, "out of memory");
    else finish_json(r, &w);
    ex_pcache_release(ref);
}

static void profile_analysis(const ex_api *api, int64_t id, ex_resp *r)
{
    const cp_pprof *pp;
    ex_pcache_ref *ref;
    int64_t start, end;
    ex_analysis a;
    if (ex_query_times(api->store, id, &start, &end)) { ex_resp_error(r, 404, "no such profile"); return; }
    if (load_pprof(api, id, &pp, &ref, r)) return;
    if (ex_analyze(pp, end - start > 0 ? end - start : pp->duration_nanos, &a)) {
        ex_resp_error(r, 500, "out of memory");
    } else {
        ex_jw w;
        ex_jw_init(&w, &r->body);
        ex_analysis_write(&a, &w);
        finish_json(r, &w);
    }
    ex_pcache_release(ref);
}

static void profile_info(const ex_api *api, int64_t id, ex_resp *r)
{
    char *info = ex_query_text(api->store, id, "info");
    if (!info) { ex_resp_error(r, 404, "no such profile"); return; }
    if (cp_buf_append(&r->body, info, strlen(info))) ex_resp_error(r, 500, "out of memory");
    free(info);
}

/* Keep [A-Za-z0-9._-] of a service name for a download file name. */
static void safe_name(const char *s, char *out, size_t n)
{
    size_t o = 0;
    for (; s && *s && o + 1 < n; s++)
        out[o++] = (isalnum((unsigned char)*s) || strchr("._-", *s)) ? *s : '_';
    out[o] = 0;
    if (!o) snprintf(out, n, "profile");
}

static void profile_download(const ex_api *api, int64_t id, ex_resp *r)
{
    char name[80];
    char *svc = ex_query_text(api->store, id, "service");
    if (!svc) { ex_resp_error(r, 404, "no such profile"); return; }
    safe_name(svc, name, sizeof name);
    free(svc);
    if (ex_store_read_blob(api->store, id, &r->body)) { ex_resp_error(r, 500, "stored profile cannot be read"); return; }
    r->content_type = "application/octet-stream";
    snprintf(r->disposition, sizeof r->disposition, "attachment; filename=\"%s-%lld.pprof.gz\"", name, (long long)id);
}

static void profile_detail(const ex_api *api, int64_t id, ex_resp *r)
{
    ex_jw w;
    ex_jw_init(&w, &r->body);
    if (ex_query_detail(api->store, id, &w) != 200) ex_resp_error(r, 404, "no such profile");
    else finish_json(r, &w);
}

static void route_profile(const ex_api *api, const char *rest, const ex_params *ps, ex_resp *r)
{
    char *end;
    long long id = strtoll(rest, &end, 10);
    if (end == rest || id <= 0) { ex_resp_error(r, 404, "bad profile id"); return; }
    if (!*end) profile_detail(api, id, r);
    else if (!strcmp(end, "/flame")) profile_flame(api, id, ps, false, r);
    else if (!strcmp(end, "/table")) profile_flame(api, id, ps, true, r);
    else if (!strcmp(end, "/analysis")) profile_analysis(api, id, r);
    else if (!strcmp(end, "/sandwich")) profile_sandwich(api, id, ps, r);
    else if (!strcmp(end, "/lines")) profile_lines(api, id, ps, r);
    else if (!strcmp(end, "/labels")) profile_labels(api, id, r);
    else if (!strcmp(end, "/timeline")) profile_timeline(api, id, ps, r);
    else if (!strcmp(end, "/info")) profile_info(api, id, r);
    else if (!strcmp(end, "/pprof")) profile_download(api, id, r);
    else ex_resp_error(r, 404, "no such resource");
}

/* ---- aggregate and compare ------------------------------------------- */

/* One aggregation, run on its job's thread (aggjob.h). */
typedef struct agg_arg {
    ex_store *store;
    size_t max_inflated, limit, max_nodes;
    double min_frac;
    bool table;
    size_t matched;
    char type[128];
} agg_arg;

/* Workers share the id list (next index under the lock) and the flame:
 * decoding, the expensive part, runs in parallel; adding to the flame is
 * serialised by the same lock. */
typedef struct agg_shared {
    const agg_arg *a;
    const int64_t *ids;
    size_t n, next, done;
    ex_flame *f;
    char unit[64];
    int rc;
    pthread_mutex_t mu;
    void (*progress)(void *, size_t);
    void *job;
} agg_shared;

static void *agg_worker(void *arg)
{
    agg_shared *sh = arg;
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        size_t i = sh->rc == CP_OK && sh->next < sh->n ? sh->next++ : SIZE_MAX;
        pthread_mutex_unlock(&sh->mu);
        if (i == SIZE_MAX) return NULL;
        const cp_pprof *pp;
        ex_pcache_ref *ref;
        if (ex_pcache_get(sh->a->store, sh->ids[i], sh->a->max_inflated, &pp, &ref)) pp = NULL;
        int t = pp ? ex_type_find(pp, sh->a->type) : -1;
        pthread_mutex_lock(&sh->mu);
        if (t >= 0 && sh->rc == CP_OK) {
            sh->rc = ex_flame_add(sh->f, pp, t, 0, 1.0);
            if (!sh->unit[0]) snprintf(sh->unit, sizeof sh->unit, "%s", pp->sample_types[t].unit ? pp->sample_types[t].unit : "");
        }
        size_t done = ++sh->done;
        pthread_mutex_unlock(&sh->mu);
        if (pp) ex_pcache_release(ref);
        if ((done & 63) == 0 || done == sh->n) sh->progress(sh->job, done);
    }
}

static int agg_merge(void *argp, const int64_t *ids, size_t n, void (*progress)(void *, size_t), void *job,
                     cp_buf *out)
{
    const agg_arg *a = argp;
    size_t pruned = 0;
    agg_shared sh = {.a = a, .ids = ids, .n = n, .f = ex_flame_new(0), .progress = progress, .job = job};
    pthread_mutex_init(&sh.mu, NULL);
    int rc = sh.f ? CP_OK : CP_ENOMEM;
    pthread_t th[AGG_THREADS];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nth = cpus < 1 ? 1 : cpus > AGG_THREADS ? AGG_THREADS : (size_t)cpus, started = 0;
    for (size_t i = 1; rc == CP_OK && i < nth; i++)
        if (pthread_create(&th[started], NULL, agg_worker, &sh) == 0) started++;
    if (rc == CP_OK) agg_worker(&sh);
    for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&sh.mu);
    if (rc == CP_OK) rc = sh.rc;
    ex_flame *f = sh.f;
    const char *unit = sh.unit;
    if (rc == CP_OK) {
        ex_jw w;
        ex_jw_init(&w, out);
        ex_jw_obj(&w);
        ex_jw_kstr(&w, "type", a->type);
        ex_jw_kstr(&w, "unit", unit);
        ex_jw_kint(&w, "profiles", (int64_t)n);
        ex_jw_kint(&w, "matched", (int64_t)a->matched);
        ex_jw_key(&w, "truncated");
        ex_jw_bool(&w, a->matched > n);
        ex_jw_knum(&w, "total", ex_flame_total(f, 0));
        if (a->table) {
            ex_jw_key(&w, "rows");
            ex_flame_write_rows(f, &w, 1, a->limit);
        } else {
            ex_jw_key(&w, "root");
            ex_flame_write_tree(f, &w, 1, a->min_frac, a->max_nodes, &pruned);
            ex_jw_kint(&w, "nodes", (int64_t)ex_flame_node_count(f));
            ex_jw_kint(&w, "pruned", (int64_t)pruned);
        }
        ex_jw_obj_end(&w);
        rc = w.err;
    }
    ex_flame_free(f);
    return rc == CP_OK ? 200 : 500;
}

/* The job key: endpoint, every parameter in order, and the store's
 * generation (new or deleted profiles make a new key). */
static void agg_key(const ex_api *api, const ex_params *ps, bool table, cp_buf *key)
{
    ex_buf_printf(key, "%s|%lld|%lld", table ? "table" : "flame", (long long)ex_store_generation(api->store),
                  (long long)ex_store_count(api->store));
    for (size_t i = 0; i < ps->n; i++) ex_buf_printf(key, "|%s=%s", ps->p[i].key, ps->p[i].val);
    ex_buf_cstr(key);
}

static void agg_progress(ex_resp *r, const ex_agg_result *res)
{
    ex_jw w;
    ex_jw_init(&w, &r->body);
    ex_jw_obj(&w);
    ex_jw_key(&w, "running");
    ex_jw_bool(&w, true);
    ex_jw_kint(&w, "done", (int64_t)res->progress);
    ex_jw_kint(&w, "profiles", (int64_t)res->total);
    ex_jw_obj_end(&w);
    r->status = 202;
    finish_json(r, &w);
}

static void aggregate(const ex_api *api, const ex_params *ps, bool table, ex_resp *r)
{
    char err[160];
    ex_filter flt;
    int64_t *ids = NULL;
    size_t n = 0, matched = 0, max = count_param(ps, "max_profiles", AGG_MAX_PROFILES, AGG_MAX_PROFILES);
    if (ex_filter_parse(ps, &flt, err, sizeof err)) { ex_resp_error(r, 400, err); return; }
    const char *type = ex_param_get(ps, "type");
    agg_arg *a = calloc(1, sizeof *a);
    if (!a || ex_query_ids(api->store, &flt, max, &ids, &n, &matched)) {
        free(a);
        ex_resp_error(r, 500, "out of memory");
        return;
    }
    *a = (agg_arg){.store = api->store, .max_inflated = api->max_inflated, .table = table, .matched = matched,
                   .limit = count_param(ps, "limit", 2000, 100000), .min_frac = num_param(ps, "min_frac", 0.0005),
                   .max_nodes = count_param(ps, "max_nodes", 50000, 2000000)};
    snprintf(a->type, sizeof a->type, "%s", type && *type ? type : "cpu-time");
    cp_buf key;
    cp_buf_init(&key, 0);
    agg_key(api, ps, table, &key);
    ex_agg_result res;
    int wait = (int)count_param(ps, "wait_ms", 1500, 60000);
    int rc = ex_agg_run(key.data ? (const char *)key.data : "", ids, n, agg_merge, a, wait, &res);
    free(ids);
    cp_buf_free(&key);
    if (rc) ex_resp_error(r, 500, "out of memory");
    else if (!res.done) agg_progress(r, &res);
    else if (res.status != 200) ex_resp_error(r, res.status, "out of memory merging the profiles");
    else { cp_buf_free(&r->body); r->body = res.body; cp_buf_init(&res.body, 0); }
    cp_buf_free(&res.body);
}

typedef struct side {
    int64_t id, start, end;
    const cp_pprof *pp;
    ex_pcache_ref *ref;
    int t;
} side;

static int load_side(const ex_api *api, const ex_params *ps, const char *key, side *s, ex_resp *r)
{
    const char *v = ex_param_get(ps, key);
    char *end;
    s->id = v ? strtoll(v, &end, 10) : 0;
    if (!v || *end || s->id <= 0 || ex_query_times(api->store, s->id, &s->start, &s->end)) {
        char msg[80];
        snprintf(msg, sizeof msg, "'%s' must be the id of a stored profile", key);
        ex_resp_error(r, v ? 404 : 400, msg);
        return -1;
    }
    return load_pprof(api, s->id, &s->pp, &s->ref, r);
}

static double side_scale(const side *s, bool normalize)
{
    int64_t d = s->end - s->start > 0 ? s->end - s->start : s->pp->duration_nanos;
    return normalize && d > 0 ? 1e9 / (double)d : 1.0;
}

static void write_side(ex_jw *w, const char *key, const side *s, const ex_flame *f, int col)
{
    ex_jw_key(w, key);
    ex_jw_obj(w);
    ex_jw_kint(w, "id", s->id);
    ex_jw_knum(w, "total", ex_flame_total(f, col));
    ex_jw_kint(w, "start_ms", s->start / 1000000);
    ex_jw_obj_end(w);
}

static void write_compare(ex_resp *r, const ex_params *ps, const side *a, const side *b, const ex_flame *f,
                          bool normalize)
{
    size_t pruned;
    const side *u = a->t >= 0 ? a : b;
    ex_jw w;
    ex_jw_init(&w, &r->body);
    ex_jw_obj(&w);
    write_type_head(&w, &u->pp->sample_types[u->t]);
    ex_jw_key(&w, "normalized");
    ex_jw_bool(&w, normalize);
    write_side(&w, "a", a, f, 0);
    write_side(&w, "b", b, f, 1);
    ex_jw_key(&w, "root");
    ex_flame_write_tree(f, &w, 2, num_param(ps, "min_frac", 0.0005), count_param(ps, "max_nodes", 50000, 2000000),
                        &pruned);
    ex_jw_kint(&w, "pruned", (int64_t)pruned);
    ex_jw_key(&w, "rows");
    ex_flame_write_rows(f, &w, 2, count_param(ps, "limit", 2000, 100000));
    ex_jw_obj_end(&w);
    finish_json(r, &w);
}

static void compare_sides(const ex_params *ps, side *a, side *b, ex_resp *r)
{
    const char *type = ex_param_get(ps, "type");
    if (!type || !*type) type = ex_default_type(a->pp);
    a->t = type ? cp_pprof_type_index(a->pp, type) : -1;
    b->t = type ? cp_pprof_type_index(b->pp, type) : -1;
    if (a->t < 0 && b->t < 0) { ex_resp_error(r, 400, "neither profile has that sample type"); return; }
    bool normalize = num_param(ps, "normalize", 0) != 0;
    ex_flame *f = ex_flame_new(0);
    int rc = f ? CP_OK : CP_ENOMEM;
    if (!rc && a->t >= 0) rc = ex_flame_add(f, a->pp, a->t, 0, side_scale(a, normalize));
    if (!rc && b->t >= 0) rc = ex_flame_add(f, b->pp, b->t, 1, side_scale(b, normalize));
    if (rc) ex_resp_error(r, 500, "out of memory");
    else write_compare(r, ps, a, b, f, normalize);
    ex_flame_free(f);
}

static void compare(const ex_api *api, const ex_params *ps, ex_resp *r)
{
    side a = {0}, b = {0};
    if (load_side(api, ps, "a", &a, r) == 0 && load_side(api, ps, "b", &b, r) == 0) compare_sides(ps, &a, &b, r);
    ex_pcache_release(a.ref);
    ex_pcache_release(b.ref);
}

/* ---- routing --------------------------------------------------------- */

static void list(const ex_api *api, const ex_params *ps, ex_resp *r, bool metrics)
{
    char err[200];
    ex_jw w;
    ex_jw_init(&w, &r->body);
    int status = metrics ? ex_metrics_series(api->store, ps, &w, err, sizeof err)
                         : ex_query_list(api->store, ps, &w, err, sizeof err);
    if (status != 200) ex_resp_error(r, status, err);
    else finish_json(r, &w);
}

static void health(const ex_api *api, ex_resp *r)
{
    ex_jw w;
    ex_jw_init(&w, &r->body);
    ex_jw_obj(&w);
    ex_jw_key(&w, "ok");
    ex_jw_bool(&w, true);
    ex_jw_kint(&w, "profiles", ex_store_count(api->store));
    ex_jw_kstr(&w, "version", CP_PROFILER_VERSION);
    ex_jw_obj_end(&w);
    finish_json(r, &w);
}

static void static_file(const char *path, ex_resp *r)
{
    const ex_asset *a = ex_asset_find(path);
    if (!a) {
        ex_resp_error(r, 404, ex_web_asset_count ? "no such page" : "this build embeds no web pages");
        return;
    }
    r->content_type = ex_mime_type(a->path);
    r->static_body = a->data;
    r->static_len = a->len;
}

void ex_api_get(const ex_api *api, const char *path, const ex_params *ps, ex_resp *r)
{
    static const char profiles[] = "/api/profiles/";
    if (!strcmp(path, "/api/health")) health(api, r);
    else if (!strcmp(path, "/api/profiles")) list(api, ps, r, false);
    else if (!strncmp(path, profiles, sizeof profiles - 1)) route_profile(api, path + sizeof profiles - 1, ps, r);
    else if (!strcmp(path, "/api/metrics")) list(api, ps, r, true);
    else if (!strcmp(path, "/api/aggregate/flame")) aggregate(api, ps, false, r);
    else if (!strcmp(path, "/api/aggregate/table")) aggregate(api, ps, true, r);
    else if (!strcmp(path, "/api/compare")) compare(api, ps, r);
    else if (!strncmp(path, "/api/", 5) || !strcmp(path, "/api")) ex_resp_error(r, 404, "no such API endpoint");
    else static_file(path, r);
}

void ex_api_intake(const ex_api *api, const char *content_type, const uint8_t *body, size_t len, ex_resp *r)
{
    r->status = ex_intake_handle(api->store, content_type, body, len, api->max_inflated, &r->body);
}

/* Percent-decoded copy of a path segment ("%2F" → "/"); false if bad. */
static bool url_decode(const char *in, char *out, size_t n)
{
    size_t o = 0;
    for (; *in && o + 1 < n; in++) {
        if (*in == '%' && isxdigit((unsigned char)in[1]) && isxdigit((unsigned char)in[2])) {
            char hex[3] = {in[1], in[2], 0};
            out[o++] = (char)strtol(hex, NULL, 16);
            in += 2;
        } else {
            out[o++] = *in;
        }
    }
    out[o] = 0;
    return !*in;
}

static void write_deleted(ex_resp *r, int64_t n)
{
    ex_jw w;
    ex_jw_init(&w, &r->body);
    ex_jw_obj(&w);
    ex_jw_kint(&w, "deleted", n);
    ex_jw_obj_end(&w);
    finish_json(r, &w);
}

void ex_api_delete(const ex_api *api, const char *path, ex_resp *r)
{
    static const char profiles[] = "/api/profiles/", services[] = "/api/services/";
    int64_t n;
    if (!strncmp(path, profiles, sizeof profiles - 1)) {
        char *end;
        long long id = strtoll(path + sizeof profiles - 1, &end, 10);
        if (id <= 0 || *end) { ex_resp_error(r, 404, "bad profile id"); return; }
        n = ex_store_delete(api->store, id);
        ex_pcache_forget(id);
        if (n == 0) { ex_resp_error(r, 404, "no such profile"); return; }
    } else if (!strncmp(path, services, sizeof services - 1)) {
        char svc[1024];
        if (!url_decode(path + sizeof services - 1, svc, sizeof svc)) { ex_resp_error(r, 400, "service name too long"); return; }
        n = ex_store_delete_service(api->store, svc);
    } else {
        ex_resp_error(r, 405, "DELETE is accepted on /api/profiles/{id} and /api/services/{service}");
        return;
    }
    if (n < 0) { ex_resp_error(r, 500, "cannot delete (database error)"); return; }
    if (n > 0) cp_log(CP_LOG_INFO, "explorer: deleted %lld profile%s (%s)", (long long)n, n == 1 ? "" : "s", path);
    write_deleted(r, n);
}
