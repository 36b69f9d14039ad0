/*
 * settings_sources.c — feeding the settings table from its sources:
 * "k=v,k=v" option strings, Java-style .properties files, the environment;
 * and the settings in effect as JSON.
 *
 * Every value goes through cp__config_set_from with a description of its
 * origin, so a bad value is reported once, naming where it came from.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "config_internal.h"
#include "json.h"

#define PROPS_MAX_BYTES (1u << 20)

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

static bool known(const char *key)
{
    char buf[64];
    return cp__config_text(key, buf, sizeof(buf)) != NULL;
}

/* Apply one key/value from an option-like source; returns its error. */
static int apply(const char *key, const char *val, cp_source src, const char *origin,
                 cp_option_cb unknown, void *ctx)
{
    if (!*key)
        return CP_OK;
    if (!known(key) && unknown && unknown(key, val, ctx))
        return CP_OK;
    return cp__config_set_from(key, val, src, origin);
}

/* End of the value that starts at v: the next ',' — unless the segments
 * after it hold no '=' but a ':' (they are more tags, as in
 * "tags=a:b,c:d"), in which case they belong to this value. */
static char *value_end(char *v)
{
    char *end = strchr(v, ',');
    while (end) {
        char *next = end + 1, *stop = strchr(next, ',');
        size_t seg = stop ? (size_t)(stop - next) : strlen(next);
        if (memchr(next, '=', seg) || !memchr(next, ':', seg))
            break;
        end = stop;
    }
    return end ? end : v + strlen(v);
}

int cp_config_parse_options(const char *opts, cp_source src, cp_option_cb unknown, void *ctx)
{
    if (!opts)
        return CP_OK;
    char *copy = cp__strdup(opts);
    if (!copy)
        return CP_ENOMEM;
    int first = CP_OK;
    for (char *p = copy; *p;) {
        char *key = p, *stop = key + strcspn(key, "=,"), *val = stop, *end = stop;
        if (*stop == '=') {
            val = stop + 1;
            end = value_end(val);
        }
        bool more = *end != 0;
        *stop = 0;
        *end = 0;
        int err = apply(trim(key), val == stop ? "" : trim(val), src, NULL, unknown, ctx);
        if (first == CP_OK)
            first = err;
        p = more ? end + 1 : end;
    }
    cp__free(copy);
    return first;
}

/* ---- .properties ---- */

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* Decode a \u escape (four hex digits) at s (after the 'u') into UTF-8 at *d. Returns chars used. */
static size_t unicode_esc(const char *s, char **d)
{
    unsigned cp = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)s[i]);
        if (h < 0)
            return 0;
        cp = cp << 4 | (unsigned)h;
    }
    char *o = *d;
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    *d = o;
    return 4;
}

/* Unescape s in place (\t \n \r \f, \u + four hex digits, \x -> x). */
static void unescape(char *s)
{
    char *d = s;
    while (*s) {
        if (*s != '\\' || !s[1]) {
            *d++ = *s++;
            continue;
        }
        char c = s[1];
        s += 2;
        if (c == 'u') {
            size_t used = unicode_esc(s, &d);
            s += used;
            if (!used)
                *d++ = 'u';
            continue;
        }
        *d++ = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 'f' ? '\f' : c;
    }
    *d = 0;
}

/* Split a logical line into key and value (both unescaped, in place). */
static void split_kv(char *line, char **key, char **val)
{
    char *p = line;
    while (*p && !(strchr("=: \t\f", *p))) {
        if (*p == '\\' && p[1])
            p++;
        p++;
    }
    char *kend = p;
    while (*p == ' ' || *p == '\t' || *p == '\f')
        p++;
    if (*p == '=' || *p == ':')
        p++;
    while (*p == ' ' || *p == '\t' || *p == '\f')
        p++;
    /* Java keeps trailing blanks; for settings they are always a typo,
     * so drop them unless escaped ("\ "). */
    char *vend = p + strlen(p);
    while (vend > p && (vend[-1] == ' ' || vend[-1] == '\t') && !(vend - 2 >= p && vend[-2] == '\\'))
        *--vend = 0;
    *kend = 0;
    *key = line;
    *val = p;
    unescape(*key);
    unescape(*val);
}

/* True when the physical line ends in an odd number of backslashes. */
static bool continued(const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && s[n - 1 - k] == '\\')
        k++;
    return k % 2 == 1;
}

/* Read the next logical line starting at *pos into out (joined
 * continuations, leading whitespace of each physical line dropped).
 * Returns false at end of text. *lineno advances by physical lines. */
static bool next_logical(char **pos, char *out, int *lineno)
{
    char *p = *pos;
    if (!*p)
        return false;
    size_t o = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\f')
            p++;
        size_t n = strcspn(p, "\r\n");
        bool more = continued(p, n);
        memcpy(out + o, p, more ? n - 1 : n);
        o += more ? n - 1 : n;
        p += n;
        p += (*p == '\r' && p[1] == '\n') ? 2 : (*p ? 1 : 0);
        ++*lineno;
        if (!more || !*p)
            break;
    }
    out[o] = 0;
    *pos = p;
    return true;
}

static int read_file(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return CP_EIO;
    char *buf = cp__malloc(PROPS_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, PROPS_MAX_BYTES + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf)
        return CP_ENOMEM;
    if (bad || n > PROPS_MAX_BYTES) {
        cp__free(buf);
        return bad ? CP_EIO : CP_ETOOBIG;
    }
    buf[n] = 0;
    *out = buf;
    return CP_OK;
}

static int apply_properties(char *text, const char *path, cp_source src)
{
    char *line = cp__malloc(strlen(text) + 1), *pos = text, origin[300];
    if (strncmp(pos, "\xEF\xBB\xBF", 3) == 0)
        pos += 3; /* a UTF-8 byte order mark some editors write */
    if (!line)
        return CP_ENOMEM;
    int first = CP_OK, lineno = 0;
    for (int start = 1; next_logical(&pos, line, &lineno); start = lineno + 1) {
        if (!line[0] || line[0] == '#' || line[0] == '!')
            continue;
        char *key, *val;
        split_kv(line, &key, &val);
        snprintf(origin, sizeof(origin), "file %.250s:%d", path, start);
        int err = apply(key, val, src, origin, NULL, NULL);
        if (first == CP_OK)
            first = err;
    }
    cp__free(line);
    return first;
}

int cp_config_load_properties(const char *path, cp_source src)
{
    char *text = NULL;
    int err = path ? read_file(path, &text) : CP_EINVAL;
    if (err != CP_OK) {
        cp_log(CP_LOG_WARN, "cannot read settings file '%s': %s", path ? path : "(null)", cp_strerror(err));
        return err;
    }
    err = apply_properties(text, path, src);
    cp__free(text);
    return err;
}

/* ---- environment ---- */

/* First of the row's env names that is set (CONTPROF_* are listed first,
 * so they beat the Datadog names); copies the name into out. */
static const char *first_env(const char *names, char *out, size_t n)
{
    for (const char *p = names; *p;) {
        size_t len = strcspn(p, " ");
        if (len < n) {
            memcpy(out, p, len);
            out[len] = 0;
            const char *v = getenv(out);
            if (v)
                return v;
        }
        p += len;
        p += strspn(p, " ");
    }
    return NULL;
}

int cp_config_load_env(void)
{
    size_t n;
    const cp_setting_info *t = cp_settings_table(&n);
    int first = CP_OK;
    for (size_t i = 0; i < n; i++) {
        char name[64], origin[80];
        const char *v = first_env(t[i].env_names, name, sizeof(name));
        if (!v)
            continue;
        snprintf(origin, sizeof(origin), "env %s", name);
        int err = cp__config_set_from(t[i].name, v, CP_SRC_ENV, origin);
        if (first == CP_OK)
            first = err;
    }
    return first;
}

/* ---- JSON ---- */

char *cp_config_to_json(void)
{
    const cp_config *c = cp_config_get();
    size_t n;
    const cp_setting_info *t = cp_settings_table(&n);
    cp_buf b;
    cp_buf_init(&b, 1u << 20);
    cp__json j;
    cp__json_init(&j, &b);
    cp__json_obj_begin(&j, NULL);
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        const char *text = cp__config_text(t[i].name, buf, sizeof(buf));
        if (strcmp(t[i].name, "api_key") == 0)
            cp__json_str(&j, t[i].name, c->api_key[0] ? "(redacted)" : "");
        else if (strcmp(t[i].name, "agent_url") == 0)
            cp__json_str(&j, t[i].name, c->agent_url); /* resolved */
        else if (t[i].type == CP_T_STRING)
            cp__json_str(&j, t[i].name, text);
        else
            cp__json_raw(&j, t[i].name, text);
    }
    cp__json_obj_end(&j);
    char *out = NULL;
    cp__json_take(&j, &out);
    return out;
}
