/*
 * json.h — a small JSON reader (DOM with hard caps) and writer for the
 * explorer. The reader parses event.json and runtime info; the writer builds
 * every API response. Explorer-internal cross-file symbols use the ex_
 * prefix (the explorer is a program over the core, not part of its API).
 */
#ifndef EX_JSON_H
#define EX_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contprof.h"

typedef enum { EX_J_NULL, EX_J_BOOL, EX_J_NUM, EX_J_STR, EX_J_ARR, EX_J_OBJ } ex_jtype;

typedef struct ex_jval {
    ex_jtype type;
    bool b;
    double num;
    char *str;              /* EX_J_STR: decoded, NUL-terminated        */
    size_t n;               /* EX_J_ARR/OBJ: number of items            */
    struct ex_jval *items;  /* EX_J_ARR/OBJ                             */
    char **keys;            /* EX_J_OBJ: n keys, decoded                */
    size_t off, len;        /* span of this value in the source text    */
} ex_jval;

/* Parse text[0..len) as one JSON value (nesting capped at 64 levels).
 * On success *out owns the tree (free with ex_json_free) and 0 is
 * returned; on failure -1 and a one-line reason in err. */
int ex_json_parse(const char *text, size_t len, ex_jval **out, char *err, size_t errlen);
/* Free a tree from ex_json_parse; NULL is ignored. */
void ex_json_free(ex_jval *v);

/* Member of an object by key, NULL if absent or v is not an object. */
const ex_jval *ex_json_get(const ex_jval *v, const char *key);
/* String member or NULL. */
const char *ex_json_str(const ex_jval *v, const char *key);
/* Numeric member (numbers, or strings holding integers) or dflt. */
double ex_json_num(const ex_jval *v, const char *key, double dflt);

/* Nesting the writer supports: a flame tree of the deepest stack the
 * explorer keeps (16384 frames) takes two levels per frame. */
#define EX_JW_MAX_DEPTH 32832

/* The writer: appends to a cp_buf, inserting commas itself. Errors are
 * sticky in w->err (CP_ENOMEM, CP_ETOOBIG over the buffer's limit,
 * CP_ERANGE nested too deeply); check once at the end. */
typedef struct ex_jw {
    cp_buf *out;
    int err;
    int depth;
    bool after_key;
    bool first[EX_JW_MAX_DEPTH];
} ex_jw;

/* Start writing one JSON value into out (borrowed; the caller owns it). */
void ex_jw_init(ex_jw *w, cp_buf *out);
void ex_jw_obj(ex_jw *w);
void ex_jw_obj_end(ex_jw *w);
void ex_jw_arr(ex_jw *w);
void ex_jw_arr_end(ex_jw *w);
void ex_jw_key(ex_jw *w, const char *key);
void ex_jw_str(ex_jw *w, const char *s);     /* NULL writes null */
void ex_jw_strn(ex_jw *w, const char *s, size_t n);
void ex_jw_int(ex_jw *w, int64_t v);
void ex_jw_num(ex_jw *w, double v);         /* non-finite writes null */
void ex_jw_bool(ex_jw *w, bool v);
void ex_jw_null(ex_jw *w);
/* Insert already-valid JSON text as a value. */
void ex_jw_raw(ex_jw *w, const char *json, size_t n);

/* Shorthands: key + value. */
void ex_jw_kstr(ex_jw *w, const char *key, const char *s);
void ex_jw_kint(ex_jw *w, const char *key, int64_t v);
void ex_jw_knum(ex_jw *w, const char *key, double v);

/* Append a NUL without counting it, so out->data is a C string. */
int ex_buf_cstr(cp_buf *b);
/* printf into a buffer (CP_ENOMEM / CP_ETOOBIG on failure). */
int ex_buf_printf(cp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* EX_JSON_H */
