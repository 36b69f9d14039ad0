/*
 * intake.c — POST /profiling/v1/input (intake.h): multipart body → event
 * part + pprof attachment → ex_ingest. Every rejection is a 4xx with a
 * one-line reason; nothing is stored unless the whole upload is valid.
 */
#include "intake.h"

#include <stdio.h>
#include <string.h>

#include "ingest.h"
#include "json.h"
#include "multipart.h"

static const ex_mp_part *part_named(const ex_multipart *mp, const char *name)
{
    const ex_mp_part *p = ex_mp_find(mp, name);
    for (size_t i = 0; !p && i < mp->nparts; i++)
        if (strcmp(mp->parts[i].filename, name) == 0) p = &mp->parts[i];
    return p;
}

/* The pprof attachment: the first listed attachment whose name mentions
 * pprof, else the first listed one, else the first non-event part. */
static const ex_mp_part *pprof_part(const ex_multipart *mp, const ex_jval *ev)
{
    const ex_jval *att = ex_json_get(ev, "attachments");
    const ex_mp_part *first = NULL;
    for (size_t i = 0; att && att->type == EX_J_ARR && i < att->n; i++) {
        if (att->items[i].type != EX_J_STR) continue;
        const ex_mp_part *p = part_named(mp, att->items[i].str);
        if (p && strstr(att->items[i].str, "pprof")) return p;
        if (p && !first) first = p;
    }
    for (size_t i = 0; !first && i < mp->nparts; i++)
        if (strcmp(mp->parts[i].name, "event") != 0) first = &mp->parts[i];
    return first;
}

static int reply_error(cp_buf *resp, int status, const char *msg)
{
    ex_jw w;
    ex_jw_init(&w, resp);
    ex_jw_obj(&w);
    ex_jw_kstr(&w, "error", msg);
    ex_jw_obj_end(&w);
    return status;
}

static int ingest_parts(ex_store *st, const ex_multipart *mp, size_t max_inflated, cp_buf *resp)
{
    char err[300];
    ex_jval *ev;
    const ex_mp_part *event = ex_mp_find(mp, "event");
    if (!event) return reply_error(resp, 400, "multipart body has no \"event\" part");
    if (ex_json_parse((const char *)event->data, event->len, &ev, err, sizeof err)) {
        char msg[340];
        snprintf(msg, sizeof msg, "event.json: %s", err);
        return reply_error(resp, 400, msg);
    }
    const ex_mp_part *pp = pprof_part(mp, ev);
    ex_json_free(ev);
    if (!pp || pp->len == 0) return reply_error(resp, 400, "no pprof attachment in the upload");
    ex_ingest_req r = {.event = (const char *)event->data, .event_len = event->len,
                       .pprof = pp->data, .pprof_len = pp->len, .source = "intake",
                       .max_inflated = max_inflated};
    int64_t id = 0;
    bool dup = false;
    int status = ex_ingest(st, &r, &id, &dup, err, sizeof err);
    if (status != 200) return reply_error(resp, status, err);
    ex_jw w;
    ex_jw_init(&w, resp);
    ex_jw_obj(&w);
    ex_jw_kint(&w, "id", id);
    ex_jw_key(&w, "duplicate");
    ex_jw_bool(&w, dup);
    ex_jw_obj_end(&w);
    return 200;
}

int ex_intake_handle(ex_store *st, const char *content_type, const uint8_t *body, size_t len,
                     size_t max_inflated, cp_buf *resp)
{
    char boundary[128], err[200];
    ex_multipart mp;
    if (ex_mp_boundary(content_type, boundary, sizeof boundary, err, sizeof err))
        return reply_error(resp, 400, err);
    if (ex_mp_parse(body, len, boundary, &mp, err, sizeof err)) return reply_error(resp, 400, err);
    return ingest_parts(st, &mp, max_inflated, resp);
}
