/*
 * json.h — a tiny JSON writer over cp_buf, and a well-formedness checker.
 *
 * Internal to the core. Used for event.json, file sidecars, runtime info
 * and cp_config_to_json. The writer tracks commas itself and keeps a
 * sticky error, so callers emit a whole object and check once at the end.
 */
#ifndef CP_JSON_H
#define CP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contprof.h"

#define CP__JSON_MAX_DEPTH 32

typedef struct cp__json {
    cp_buf *b;                            /* borrowed; the caller owns it  */
    int err;                              /* first error, CP_OK otherwise  */
    unsigned depth;
    bool first[CP__JSON_MAX_DEPTH];       /* no member written yet at depth */
} cp__json;

/* Start writing into b (appended to whatever b holds). */
void cp__json_init(cp__json *j, cp_buf *b);

/* Containers and members. key is the member name inside an object and
 * must be NULL at top level and inside arrays. */
void cp__json_obj_begin(cp__json *j, const char *key);
void cp__json_obj_end(cp__json *j);
void cp__json_arr_begin(cp__json *j, const char *key);
void cp__json_arr_end(cp__json *j);
void cp__json_str(cp__json *j, const char *key, const char *value); /* NULL = "" */
void cp__json_int(cp__json *j, const char *key, int64_t value);
void cp__json_uint(cp__json *j, const char *key, uint64_t value);
void cp__json_double(cp__json *j, const char *key, double value);
void cp__json_bool(cp__json *j, const char *key, bool value);
/* raw must already be well-formed JSON (checked by the caller). */
void cp__json_raw(cp__json *j, const char *key, const char *raw);

/* NUL-terminate and hand the text to *out (the caller frees it with free);
 * the buffer is emptied. On any earlier error the buffer is freed, *out is
 * NULL and the error is returned. */
int cp__json_take(cp__json *j, char **out);

/* Append s as a quoted, escaped JSON string (control characters as \u00XX;
 * bytes >= 0x80 pass through, so UTF-8 stays UTF-8). */
int cp__json_escape(cp_buf *b, const char *s);

/* True when s[0..len) is exactly one well-formed JSON value (surrounding
 * whitespace allowed). Nesting deeper than 64 is rejected. */
bool cp__json_valid(const char *s, size_t len);

/* unix_ns as RFC 3339 UTC with nine fraction digits,
 * "2026-01-02T03:04:05.000000000Z" (31 bytes + NUL; out has >= 40). */
void cp__rfc3339(int64_t unix_ns, char *out, size_t n);

#endif /* CP_JSON_H */
