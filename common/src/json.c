/*
 * json.c — JSON writer over cp_buf and a recursive-descent validator.
 *
 * The writer never fails half-way silently: the first append error sticks
 * in j->err and every later call is a no-op, so cp__json_take reports it.
 * The validator guards front-end supplied raw JSON (cp_runtime_info_set)
 * before it is spliced into event.json.
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void cp__json_init(cp__json *j, cp_buf *b)
{
    memset(j, 0, sizeof(*j));
    j->b = b;
    j->first[0] = true;
}

static void put(cp__json *j, const void *data, size_t n)
{
    if (j->err == CP_OK)
        j->err = cp_buf_append(j->b, data, n);
}

static void puts_(cp__json *j, const char *s)
{
    put(j, s, strlen(s));
}

int cp__json_escape(cp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int err = cp_buf_append(b, "\"", 1);
    const char *run = s ? s : "";
    for (const char *p = run; err == CP_OK; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        err = cp_buf_append(b, run, (size_t)(p - run));
        if (err != CP_OK || c == 0)
            break;
        char esc[7] = {'\\', (char)c, 0};
        const char *shortform = c ? strchr("\nn\tt\rr\bb\ff", (char)c) : NULL;
        if (shortform) {
            esc[1] = shortform[1];
        } else if (c < 0x20) {
            esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[c >> 4]; esc[5] = hex[c & 15]; esc[6] = 0;
        }
        err = cp_buf_append(b, esc, strlen(esc));
        run = p + 1;
    }
    return err == CP_OK ? cp_buf_append(b, "\"", 1) : err;
}

/* Comma and "key": before a member. */
static void member(cp__json *j, const char *key)
{
    if (j->err != CP_OK)
        return;
    if (!j->first[j->depth])
        put(j, ",", 1);
    j->first[j->depth] = false;
    if (key && j->err == CP_OK) {
        j->err = cp__json_escape(j->b, key);
        put(j, ":", 1);
    }
}

static void open_(cp__json *j, const char *key, const char *brace)
{
    member(j, key);
    if (j->depth + 1 >= CP__JSON_MAX_DEPTH && j->err == CP_OK)
        j->err = CP_ETOOBIG;
    put(j, brace, 1);
    if (j->err == CP_OK)
        j->first[++j->depth] = true;
}

static void close_(cp__json *j, const char *brace)
{
    put(j, brace, 1);
    if (j->err == CP_OK && j->depth > 0)
        j->depth--;
}

void cp__json_obj_begin(cp__json *j, const char *key) { open_(j, key, "{"); }
void cp__json_obj_end(cp__json *j) { close_(j, "}"); }
void cp__json_arr_begin(cp__json *j, const char *key) { open_(j, key, "["); }
void cp__json_arr_end(cp__json *j) { close_(j, "]"); }

void cp__json_str(cp__json *j, const char *key, const char *value)
{
    member(j, key);
    if (j->err == CP_OK)
        j->err = cp__json_escape(j->b, value);
}

void cp__json_int(cp__json *j, const char *key, int64_t value)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", (long long)value);
    member(j, key);
    puts_(j, num);
}

void cp__json_uint(cp__json *j, const char *key, uint64_t value)
{
    char num[32];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)value);
    member(j, key);
    puts_(j, num);
}

void cp__json_double(cp__json *j, const char *key, double value)
{
    char num[48];
    /* JSON has no NaN/Infinity: write 0 rather than break the document. */
    snprintf(num, sizeof(num), "%.6g", isfinite(value) ? value : 0.0);
    member(j, key);
    puts_(j, num);
}

void cp__json_bool(cp__json *j, const char *key, bool value)
{
    member(j, key);
    puts_(j, value ? "true" : "false");
}

void cp__json_raw(cp__json *j, const char *key, const char *raw)
{
    member(j, key);
    puts_(j, raw && *raw ? raw : "null");
}

int cp__json_take(cp__json *j, char **out)
{
    *out = NULL;
    put(j, "", 1);
    if (j->err != CP_OK) {
        cp_buf_free(j->b);
        return j->err;
    }
    *out = (char *)j->b->data;
    j->b->data = NULL;
    j->b->len = j->b->cap = 0;
    return CP_OK;
}

/* ---- validator ---- */

typedef struct vstate {
    const char *p, *end;
    int depth;
} vstate;

static bool value_(vstate *v);

static void ws(vstate *v)
{
    while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r'))
        v->p++;
}

static bool lit(vstate *v, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(v->end - v->p) < n || memcmp(v->p, word, n) != 0)
        return false;
    v->p += n;
    return true;
}

static bool hex4(vstate *v)
{
    for (int i = 0; i < 4; i++, v->p++) {
        if (v->p >= v->end || !strchr("0123456789abcdefABCDEF", *v->p) || *v->p == 0)
            return false;
    }
    return true;
}

static bool string_(vstate *v)
{
    v->p++; /* opening quote */
    while (v->p < v->end) {
        unsigned char c = (unsigned char)*v->p++;
        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (v->p >= v->end)
            return false;
        c = (unsigned char)*v->p++;
        if (c == 'u') {
            if (!hex4(v))
                return false;
        } else if (!strchr("\"\\/bfnrt", c) || c == 0) {
            return false;
        }
    }
    return false;
}

static bool digits(vstate *v)
{
    const char *s = v->p;
    while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
        v->p++;
    return v->p > s;
}

static bool number_(vstate *v)
{
    if (*v->p == '-')
        v->p++;
    if (v->p < v->end && *v->p == '0')
        v->p++;
    else if (!digits(v))
        return false;
    if (v->p < v->end && *v->p == '.') {
        v->p++;
        if (!digits(v))
            return false;
    }
    if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
        v->p++;
        if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
            v->p++;
        if (!digits(v))
            return false;
    }
    return true;
}

/* Members of an object or array: open already consumed. */
static bool container(vstate *v, char close, bool keyed)
{
    if (++v->depth > 64)
        return false;
    ws(v);
    if (v->p < v->end && *v->p == close) {
        v->p++;
        v->depth--;
        return true;
    }
    for (;;) {
        ws(v);
        if (keyed) {
            if (v->p >= v->end || *v->p != '"' || !string_(v))
                return false;
            ws(v);
            if (v->p >= v->end || *v->p++ != ':')
                return false;
        }
        if (!value_(v))
            return false;
        ws(v);
        if (v->p >= v->end)
            return false;
        char c = *v->p++;
        if (c == close)
            break;
        if (c != ',')
            return false;
    }
    v->depth--;
    return true;
}

static bool value_(vstate *v)
{
    ws(v);
    if (v->p >= v->end)
        return false;
    switch (*v->p) {
    case '{': v->p++; return container(v, '}', true);
    case '[': v->p++; return container(v, ']', false);
    case '"': return string_(v);
    case 't': return lit(v, "true");
    case 'f': return lit(v, "false");
    case 'n': return lit(v, "null");
    default: return number_(v);
    }
}

bool cp__json_valid(const char *s, size_t len)
{
    if (!s)
        return false;
    vstate v = {s, s + len, 0};
    if (!value_(&v))
        return false;
    ws(&v);
    return v.p == v.end;
}

void cp__rfc3339(int64_t unix_ns, char *out, size_t n)
{
    int64_t sec = unix_ns / 1000000000, ns = unix_ns % 1000000000;
    if (ns < 0) {
        ns += 1000000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)ns);
}
