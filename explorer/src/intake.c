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
#include "pprof_merge.h"

static const ex_mp_part *part_named(const ex_multipart *mp, const char *name)
{
    const ex_mp_part *p = ex_mp_find(mp, name);
    for (size_t i = 0; !p && i < mp->nparts; i++)
        if (strcmp(mp->parts[i].filename, name) == 0) p = &mp->parts[i];
    return p;
}

/* Parts that carry metadata, not profiles (dd-trace-py's code
 * provenance): skipped unless event.json lists them as attachments. */
static bool is_metadata(const ex_mp_part *p)
{
    size_t n = strlen(p->name);
    return n > 5 && strcmp(p->name + n - 5, ".json") == 0;
}

/* Every attachment event.json lists (each must be present); without a
 * list, every part but the event and metadata. 0, or a 400 reason. */
static int pprof_parts(const ex_multipart *mp, const ex_jval *ev, ex_ingest_part *out, size_t *n,
                       char *err, size_t errlen)
{
    const ex_jval *att = ex_json_get(ev, "attachments");
    *n = 0;
    for (size_t i = 0; att && att->type == EX_J_ARR && i < att->n; i++) {
        if (att->items[i].type != EX_J_STR) continue;
        const ex_mp_part *p = part_named(mp, att->items[i].str);
        if (!p) {
            snprintf(err, errlen, "event.json lists attachment '%.80s' but the upload has no such part",
                     att->items[i].str);
            return 400;
        }
        if (*n == EX_MERGE_MAX_PARTS) break;
        out[(*n)++] = (ex_ingest_part){att->items[i].str, p->data, p->len};
    }
    for (size_t i = 0; !*n && i < mp->nparts && *n < EX_MERGE_MAX_PARTS; i++)
        if (strcmp(mp->parts[i].name, "event") != 0 && !is_metadata(&mp->parts[i]))
            out[(*n)++] = (ex_ingest_part){mp->parts[i].name, mp->parts[i].data, mp->parts[i].len};
    if (att && att->type == EX_J_ARR && att->n > EX_MERGE_MAX_PARTS) {
        snprintf(err, errlen, "upload lists %zu attachments; at most %d are accepted", att->n, EX_MERGE_MAX_PARTS);
        return 400;
    }
    for (size_t i = 0; i < *n; i++)
        if (out[i].len == 0) {
            snprintf(err, errlen, "attachment '%.80s' is empty", out[i].name);
            return 400;
        }
    if (!*n) snprintf(err, errlen, "no pprof attachment in the upload");
    return *n ? 0 : 400;
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
    ex_ingest_part parts[EX_MERGE_MAX_PARTS];
    size_t nparts;
    int status = pprof_parts(mp, ev, parts, &nparts, err, sizeof err);
    if (status) {
        ex_json_free(ev);
        return reply_error(resp, status, err);
    }
    ex_ingest_req r = {.event = (const char *)event->data, .event_len = event->len, .parts = parts,
                       .nparts = nparts, .source = "intake", .max_inflated = max_inflated, .fill_host = true};
    int64_t id = 0;
    bool dup = false;
    status = ex_ingest(st, &r, &id, &dup, err, sizeof err);
    ex_json_free(ev);
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
