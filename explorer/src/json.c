/*
 * json.c — JSON reader and writer for the explorer (see json.h).
 *
 * The reader is a recursive-descent parser over untrusted input (uploads,
 * sidecar files): depth is capped, every allocation is checked, and the
 * error names the byte offset. The writer escapes per RFC 8259.
 */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EX_JSON_MAX_DEPTH 64

typedef struct parser {
    const char *s;
    size_t len, pos;
    int depth;
    char *err;
    size_t errlen;
} parser;

static int fail(parser *p, const char *what)
{
    snprintf(p->err, p->errlen, "invalid JSON at byte %zu: %s", p->pos, what);
    return -1;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos])
        p->pos++;
}

static int parse_value(parser *p, ex_jval *v);

static int hex4(parser *p, unsigned *out)
{
    unsigned u = 0;
    if (p->len - p->pos < 4)
        return fail(p, "short \\u escape");
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        u <<= 4;
        if (c >= '0' && c <= '9') u |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') u |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') u |= (unsigned)(c - 'A' + 10);
        else return fail(p, "bad \\u escape");
    }
    *out = u;
    return 0;
}

static size_t utf8_put(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int parse_escape(parser *p, char *o, size_t *n)
{
    char c = p->s[p->pos++];
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *hit = strchr(from, c);
    if (c && hit) { o[(*n)++] = to[hit - from]; return 0; }
    if (c != 'u') return fail(p, "bad escape");
    unsigned cp, lo;
    if (hex4(p, &cp)) return -1;
    if (cp >= 0xD800 && cp < 0xDC00) {
        if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return fail(p, "lone surrogate");
        p->pos += 2;
        if (hex4(p, &lo)) return -1;
        if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, "bad surrogate pair");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    *n += utf8_put(o + *n, cp);
    return 0;
}

/* Decoded text is never longer than the source span, so one allocation of
 * the remaining length bound (up to the closing quote) suffices. */
static int parse_string(parser *p, char **out)
{
    size_t start = ++p->pos, end = start;
    while (end < p->len && p->s[end] != '"')
        end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->len) return fail(p, "unterminated string");
    char *o = malloc(end - start + 1);
    size_t n = 0;
    if (!o) return fail(p, "out of memory");
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) { free(o); return fail(p, "control character in string"); }
        if (c == '\\') {
            p->pos++;
            if (parse_escape(p, o, &n)) { free(o); return -1; }
            continue;
        }
        o[n++] = (char)c;
        p->pos++;
    }
    if (p->pos != end) { free(o); return fail(p, "bad escape at end of string"); }
    p->pos = end + 1;
    o[n] = 0;
    *out = o;
    return 0;
}

static int parse_number(parser *p, ex_jval *v)
{
    size_t start = p->pos;
    while (p->pos < p->len && strchr("+-0123456789.eE", p->s[p->pos]) && p->s[p->pos])
        p->pos++;
    size_t n = p->pos - start;
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) return fail(p, "bad number");
    memcpy(tmp, p->s + start, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    v->num = strtod(tmp, &end);
    if (*end || (tmp[0] != '-' && (tmp[0] < '0' || tmp[0] > '9')))
        return fail(p, "bad number");
    v->type = EX_J_NUM;
    return 0;
}

static int grow(parser *p, ex_jval *v, size_t *cap, bool keys)
{
    if (v->n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 4;
    ex_jval *it = realloc(v->items, nc * sizeof *it);
    if (!it) return fail(p, "out of memory");
    v->items = it;
    if (keys) {
        char **k = realloc(v->keys, nc * sizeof *k);
        if (!k) return fail(p, "out of memory");
        v->keys = k;
    }
    *cap = nc;
    return 0;
}

static int parse_members(parser *p, ex_jval *v, bool obj)
{
    size_t cap = 0;
    char close = obj ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; return 0; }
    for (;;) {
        if (grow(p, v, &cap, obj)) return -1;
        ex_jval *it = &v->items[v->n];
        memset(it, 0, sizeof *it);
        skip_ws(p);
        if (obj) {
            if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected key");
            if (parse_string(p, &v->keys[v->n])) return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') { v->n++; it->type = EX_J_NULL; return fail(p, "expected ':'"); }
            p->pos++;
        }
        v->n++;
        if (parse_value(p, it)) return -1;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') { p->pos++; continue; }
        if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; return 0; }
        return fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_literal(parser *p, ex_jval *v)
{
    static const struct { const char *w; ex_jtype t; bool b; } lits[] = {
        {"true", EX_J_BOOL, true}, {"false", EX_J_BOOL, false}, {"null", EX_J_NULL, false}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(lits[i].w);
        if (p->len - p->pos >= n && memcmp(p->s + p->pos, lits[i].w, n) == 0) {
            p->pos += n;
            v->type = lits[i].t;
            v->b = lits[i].b;
            return 0;
        }
    }
    return fail(p, "unexpected character");
}

static int parse_value(parser *p, ex_jval *v)
{
    int rc;
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end");
    if (++p->depth > EX_JSON_MAX_DEPTH) return fail(p, "nested too deeply");
    v->off = p->pos;
    char c = p->s[p->pos];
    if (c == '{' || c == '[') {
        v->type = c == '{' ? EX_J_OBJ : EX_J_ARR;
        rc = parse_members(p, v, c == '{');
    } else if (c == '"') {
        v->type = EX_J_STR;
        rc = parse_string(p, &v->str);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        rc = parse_number(p, v);
    } else {
        rc = parse_literal(p, v);
    }
    v->len = p->pos - v->off;
    p->depth--;
    return rc;
}

static void free_members(ex_jval *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free_members(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

void ex_json_free(ex_jval *v)
{
    if (!v) return;
    free_members(v);
    free(v);
}

int ex_json_parse(const char *text, size_t len, ex_jval **out, char *err, size_t errlen)
{
    parser p = {.s = text, .len = len, .err = err, .errlen = errlen};
    ex_jval *v = calloc(1, sizeof *v);
    if (!v) { snprintf(err, errlen, "out of memory"); return -1; }
    int rc = parse_value(&p, v);
    if (rc == 0) {
        skip_ws(&p);
        if (p.pos != p.len) rc = fail(&p, "trailing characters");
    }
    if (rc) { ex_json_free(v); return -1; }
    *out = v;
    return 0;
}

const ex_jval *ex_json_get(const ex_jval *v, const char *key)
{
    if (!v || v->type != EX_J_OBJ) return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], key) == 0) return &v->items[i];
    return NULL;
}

const char *ex_json_str(const ex_jval *v, const char *key)
{
    const ex_jval *m = ex_json_get(v, key);
    return (m && m->type == EX_J_STR) ? m->str : NULL;
}

double ex_json_num(const ex_jval *v, const char *key, double dflt)
{
    const ex_jval *m = ex_json_get(v, key);
    if (m && m->type == EX_J_NUM) return m->num;
    if (m && m->type == EX_J_STR && m->str[0]) {
        char *end;
        double d = strtod(m->str, &end);
        if (!*end) return d;
    }
    return dflt;
}

/* ---- writer ---------------------------------------------------------- */

int ex_buf_cstr(cp_buf *b)
{
    int rc = cp_buf_append(b, "", 1);
    if (rc == CP_OK) b->len--;
    return rc;
}

int ex_buf_printf(cp_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return CP_EINVAL;
    if ((size_t)n < sizeof small) return cp_buf_append(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) return CP_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = cp_buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

static void put(ex_jw *w, const void *s, size_t n)
{
    if (!w->err) w->err = cp_buf_append(w->out, s, n);
}

/* Comma before a value unless it is the first in its container or
 * follows a key. */
static void sep(ex_jw *w)
{
    if (w->after_key) { w->after_key = false; return; }
    if (w->depth > 0 && !w->first[w->depth]) put(w, ",", 1);
    if (w->depth > 0) w->first[w->depth] = false;
}

void ex_jw_init(ex_jw *w, cp_buf *out)
{
    /* first[] is written on every open before it is read: no need to
     * clear 8 KiB per writer. */
    w->out = out;
    w->err = 0;
    w->depth = 0;
    w->after_key = false;
}

static void open_c(ex_jw *w, const char *c)
{
    sep(w);
    put(w, c, 1);
    if (w->depth + 1 >= EX_JW_MAX_DEPTH) {
        w->err = CP_ERANGE;
        return;
    }
    w->first[++w->depth] = true;
}

static void close_c(ex_jw *w, const char *c)
{
    put(w, c, 1);
    if (w->depth > 0) w->depth--;
}

void ex_jw_obj(ex_jw *w) { open_c(w, "{"); }
void ex_jw_obj_end(ex_jw *w) { close_c(w, "}"); }
void ex_jw_arr(ex_jw *w) { open_c(w, "["); }
void ex_jw_arr_end(ex_jw *w) { close_c(w, "]"); }

static void put_escaped(ex_jw *w, const char *s, size_t n)
{
    put(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(w, s + run, i - run);
        char esc[8];
        if (c == '"' || c == '\\') snprintf(esc, sizeof esc, "\\%c", c);
        else snprintf(esc, sizeof esc, "\\u%04x", c);
        put(w, esc, strlen(esc));
        run = i + 1;
    }
    put(w, s + run, n - run);
    put(w, "\"", 1);
}

void ex_jw_key(ex_jw *w, const char *key)
{
    sep(w);
    put_escaped(w, key, strlen(key));
    put(w, ":", 1);
    w->after_key = true;
}

void ex_jw_strn(ex_jw *w, const char *s, size_t n)
{
    sep(w);
    put_escaped(w, s, n);
}

void ex_jw_str(ex_jw *w, const char *s)
{
    if (!s) { ex_jw_null(w); return; }
    ex_jw_strn(w, s, strlen(s));
}

void ex_jw_int(ex_jw *w, int64_t v)
{
    char t[32];
    sep(w);
    snprintf(t, sizeof t, "%lld", (long long)v);
    put(w, t, strlen(t));
}

void ex_jw_num(ex_jw *w, double v)
{
    char t[40];
    if (!isfinite(v)) { ex_jw_null(w); return; }
    sep(w);
    /* Integral values (ns, bytes, counts) print exactly up to 2^53. */
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(t, sizeof t, "%lld", (long long)v);
    else
        snprintf(t, sizeof t, "%.10g", v);
    put(w, t, strlen(t));
}

void ex_jw_bool(ex_jw *w, bool v)
{
    sep(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void ex_jw_null(ex_jw *w)
{
    sep(w);
    put(w, "null", 4);
}

void ex_jw_raw(ex_jw *w, const char *json, size_t n)
{
    sep(w);
    put(w, json, n);
}

void ex_jw_kstr(ex_jw *w, const char *key, const char *s) { ex_jw_key(w, key); ex_jw_str(w, s); }
void ex_jw_kint(ex_jw *w, const char *key, int64_t v) { ex_jw_key(w, key); ex_jw_int(w, v); }
void ex_jw_knum(ex_jw *w, const char *key, double v) { ex_jw_key(w, key); ex_jw_num(w, v); }
