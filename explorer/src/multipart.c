/*
 * multipart.c — multipart/form-data parsing for the intake (multipart.h).
 *
 * Input is untrusted: every scan is bounded by the body length, header
 * values are truncated into fixed fields, and a body that ends before the
 * closing delimiter is rejected as truncated (nothing of it is stored).
 */
#include "multipart.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MP_MAX_BOUNDARY 70 /* RFC 2046 */

static void copy_field(char *dst, size_t dstlen, const char *s, size_t n)
{
    if (n >= dstlen) n = dstlen - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

/* Value of parameter `key` in a header value "type; k=v; k2="v2"". */
static bool header_param(const char *hv, size_t hlen, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i + klen < hlen; i++) {
        if ((i > 0 && hv[i - 1] != ';' && hv[i - 1] != ' ' && hv[i - 1] != '\t') ||
            strncasecmp(hv + i, key, klen) != 0 || hv[i + klen] != '=')
            continue;
        const char *v = hv + i + klen + 1, *end = hv + hlen;
        if (v < end && *v == '"') {
            const char *q = memchr(v + 1, '"', (size_t)(end - v - 1));
            if (!q) return false;
            copy_field(out, outlen, v + 1, (size_t)(q - v - 1));
            return true;
        }
        const char *e = v;
        while (e < end && *e != ';' && *e != ' ' && *e != '\t') e++;
        copy_field(out, outlen, v, (size_t)(e - v));
        return true;
    }
    return false;
}

int ex_mp_boundary(const char *ct, char *out, size_t outlen, char *err, size_t errlen)
{
    static const char want[] = "multipart/form-data";
    if (!ct || strncasecmp(ct, want, sizeof want - 1) != 0 ||
        (ct[sizeof want - 1] && ct[sizeof want - 1] != ';' && ct[sizeof want - 1] != ' ')) {
        snprintf(err, errlen, "expected Content-Type multipart/form-data, got '%.60s'", ct ? ct : "");
        return -1;
    }
    char b[MP_MAX_BOUNDARY + 2];
    if (!header_param(ct, strlen(ct), "boundary", b, sizeof b) || !b[0] ||
        strlen(b) > MP_MAX_BOUNDARY) {
        snprintf(err, errlen, "multipart/form-data without a valid boundary parameter");
        return -1;
    }
    copy_field(out, outlen, b, strlen(b));
    return 0;
}

static void part_header(ex_mp_part *p, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    if (!colon) return;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    while (v < line + n && (*v == ' ' || *v == '\t')) v++;
    size_t vlen = (size_t)(line + n - v);
    if (nlen == 19 && strncasecmp(line, "Content-Disposition", 19) == 0) {
        header_param(v, vlen, "name", p->name, sizeof p->name);
        header_param(v, vlen, "filename", p->filename, sizeof p->filename);
    } else if (nlen == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
        copy_field(p->content_type, sizeof p->content_type, v, vlen);
    }
}

/* Parse header lines at *pos up to the blank line; advance past it. */
static int part_headers(const uint8_t *b, size_t len, size_t *pos, ex_mp_part *p)
{
    const char *s = (const char *)b;
    for (int lines = 0; lines < 32; lines++) {
        const char *eol = memmem(s + *pos, len - *pos, "\r\n", 2);
        if (!eol) return -1;
        size_t n = (size_t)(eol - (s + *pos));
        if (n == 0) { *pos += 2; return 0; }
        part_header(p, s + *pos, n);
        *pos += n + 2;
    }
    return -1;
}

static int mp_fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "multipart: %s", why);
    return -1;
}

/* After a delimiter at *pos (just past "--boundary"): "--" closes, CRLF
 * starts a part. Returns 1 closed, 0 part follows, -1 garbled. */
static int after_delimiter(const uint8_t *b, size_t len, size_t *pos)
{
    while (*pos < len && (b[*pos] == ' ' || b[*pos] == '\t')) (*pos)++;
    if (len - *pos >= 2 && b[*pos] == '-' && b[*pos + 1] == '-') return 1;
    if (len - *pos >= 2 && b[*pos] == '\r' && b[*pos + 1] == '\n') { *pos += 2; return 0; }
    return -1;
}

int ex_mp_parse(const uint8_t *body, size_t len, const char *boundary, ex_multipart *mp,
                char *err, size_t errlen)
{
    char delim[MP_MAX_BOUNDARY + 8];
    int dn = snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    if (dn < 5 || (size_t)dn >= sizeof delim) return mp_fail(err, errlen, "bad boundary");
    memset(mp, 0, sizeof *mp);
    /* The first delimiter may start the body (no preceding CRLF). */
    size_t pos;
    if (len >= (size_t)dn - 2 && memcmp(body, delim + 2, (size_t)dn - 2) == 0) {
        pos = (size_t)dn - 2;
    } else {
        const uint8_t *f = memmem(body, len, delim, (size_t)dn);
        if (!f) return mp_fail(err, errlen, "no boundary line in body");
        pos = (size_t)(f - body) + (size_t)dn;
    }
    for (;;) {
        int r = after_delimiter(body, len, &pos);
        if (r == 1) break;
        if (r < 0) return mp_fail(err, errlen, pos >= len ? "truncated body" : "garbled boundary line");
        if (mp->nparts == EX_MP_MAX_PARTS) return mp_fail(err, errlen, "too many parts");
        ex_mp_part *p = &mp->parts[mp->nparts];
        if (part_headers(body, len, &pos, p)) return mp_fail(err, errlen, "truncated or bad part headers");
        if (!p->name[0]) return mp_fail(err, errlen, "part without a name");
        const uint8_t *end = memmem(body + pos, len - pos, delim, (size_t)dn);
        if (!end) return mp_fail(err, errlen, "truncated body (no closing boundary)");
        p->data = body + pos;
        p->len = (size_t)(end - (body + pos));
        mp->nparts++;
        pos = (size_t)(end - body) + (size_t)dn;
    }
    if (mp->nparts == 0) return mp_fail(err, errlen, "no parts");
    return 0;
}

const ex_mp_part *ex_mp_find(const ex_multipart *mp, const char *name)
{
    for (size_t i = 0; i < mp->nparts; i++)
        if (strcmp(mp->parts[i].name, name) == 0) return &mp->parts[i];
    return NULL;
}
