/*
 * api.c — routes of the JSON API and the embedded pages (api.h, API.md).
 * Handlers that need a profile's samples read its blob and decode it with
 * the core's cp_pprof_decode outside the store lock.
 */
#include "api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "assets.h"
#include "flame.h"
#include "intake.h"
#include "json.h"
#include "measures.h"
#include "metrics.h"
#include "query.h"

#define AGG_DEFAULT_PROFILES 200
#define AGG_MAX_PROFILES 2000

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

static int load_pprof(const ex_api *api, int64_t id, cp_pprof **pp, ex_resp *r)
{
    cp_buf b;
    cp_buf_init(&b, 0);
    int rc = ex_store_read_blob(api->store, id, &b);
    if (rc == CP_OK) rc = cp_pprof_decode(b.data, b.len, api->max_inflated, pp);
    cp_buf_free(&b);
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
    cp_pprof *pp;
    if (load_pprof(api, id, &pp, r)) return;
    int t = type_param(pp, ps, ex_default_type(pp), r);
    ex_flame *f = t >= 0 ? ex_flame_new(0) : NULL;
    if (t >= 0 && (!f || ex_flame_add(f, pp, t, 0, 1.0))) {
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
    cp_pprof_free(pp);
}

static void profile_analysis(const ex_api *api, int64_t id, ex_resp *r)
{
    cp_pprof *pp;
    int64_t start, end;
    ex_analysis a;
    if (ex_query_times(api->store, id, &start, &end)) { ex_resp_error(r, 404, "no such profile"); return; }
    if (load_pprof(api, id, &pp, r)) return;
    if (ex_analyze(pp, end - start > 0 ? end - start : pp->duration_nanos, &a)) {
        ex_resp_error(r, 500, "out of memory");
    } else {
        ex_jw w;
        ex_jw_init(&w, &r->body);
        ex_analysis_write(&a, &w);
        finish_json(r, &w);
    }
    cp_pprof_free(pp);
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
    else if (!strcmp(end, "/info")) profile_info(api, id, r);
    else if (!strcmp(end, "/pprof")) profile_download(api, id, r);
    else ex_resp_error(r, 404, "no such resource");
}

/* ---- aggregate and compare ------------------------------------------- */

/* Add profile id's values of type to f; remember the type's unit. A
 * vanished or unreadable blob is skipped (0); CP_ENOMEM stops. */
static int agg_add(const ex_api *api, ex_flame *f, int64_t id, const char *type, char *unit, size_t unitlen)
{
    cp_pprof *pp;
    ex_resp dummy;
    ex_resp_init(&dummy);
    int rc = load_pprof(api, id, &pp, &dummy);
    ex_resp_free(&dummy);
    if (rc) return 0;
    int t = cp_pprof_type_index(pp, type);
    if (t >= 0) {
        rc = ex_flame_add(f, pp, t, 0, 1.0);
        if (!unit[0]) snprintf(unit, unitlen, "%s", pp->sample_types[t].unit ? pp->sample_types[t].unit : "");
    }
    cp_pprof_free(pp);
    return rc;
}

static void write_aggregate(ex_resp *r, const ex_params *ps, const ex_flame *f, const char *type,
                            const char *unit, size_t n, size_t matched, bool table)
{
    ex_jw w;
    ex_jw_init(&w, &r->body);
    ex_jw_obj(&w);
    ex_jw_kstr(&w, "type", type);
    ex_jw_kstr(&w, "unit", unit);
    ex_jw_kint(&w, "profiles", (int64_t)n);
    ex_jw_key(&w, "truncated");
    ex_jw_bool(&w, matched > n);
    write_flame_body(&w, f, ps, table);
    ex_jw_obj_end(&w);
    finish_json(r, &w);
}

static void aggregate(const ex_api *api, const ex_params *ps, bool table, ex_resp *r)
{
    char err[160], unit[64] = "";
    ex_filter flt;
    int64_t *ids = NULL;
    size_t n = 0, matched = 0, max = count_param(ps, "max_profiles", AGG_DEFAULT_PROFILES, AGG_MAX_PROFILES);
    if (ex_filter_parse(ps, &flt, err, sizeof err)) { ex_resp_error(r, 400, err); return; }
    const char *type = ex_param_get(ps, "type");
    if (!type || !*type) type = "cpu-time";
    ex_flame *f = ex_flame_new(0);
    int rc = f ? ex_query_ids(api->store, &flt, max, &ids, &n, &matched) : CP_ENOMEM;
    for (size_t i = 0; rc == CP_OK && i < n; i++) rc = agg_add(api, f, ids[i], type, unit, sizeof unit);
    free(ids);
    if (rc) ex_resp_error(r, 500, "out of memory");
    else write_aggregate(r, ps, f, type, unit, n, matched, table);
    ex_flame_free(f);
}

typedef struct side {
    int64_t id, start, end;
    cp_pprof *pp;
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
    return load_pprof(api, s->id, &s->pp, r);
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
    if (a.pp) cp_pprof_free(a.pp);
    if (b.pp) cp_pprof_free(b.pp);
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
