/*
 * codecache.c — see codecache.h.
 *
 * Two open-addressed tables: codes (address -> held reference, name, file)
 * and lines ((code, offset) -> line), so PyCode_Addr2Line runs once per
 * distinct instruction. Both are emptied together when either fills.
 */
#include "codecache.h"

#include <stdlib.h>
#include <string.h>

#include "saferead.h"

#define CODES_CAP 8192   /* power of two; emptied at half full */
#define LINES_CAP 32768  /* power of two; emptied at half full */

typedef struct centry {
    PyCodeObject *code;  /* strong reference; NULL = empty */
    char *name, *file, *sysname;
} centry;

typedef struct lentry {
    uint64_t code;       /* 0 = empty */
    int32_t offset;
    int64_t line;
} lentry;

static struct {
    centry *codes;
    lentry *lines;
    size_t ncodes, nlines;
    PyObject *qualname_fn;
    cp_codeinfo out;
} g_c;

static size_t hash2(uint64_t a, uint64_t b)
{
    return (size_t)(((a ^ (b * 0xff51afd7ed558ccdull)) * 0x9E3779B97F4A7C15ull) >> 33);
}

/* A live object's first word is its reference count (at most 2^32 even
 * when immortal); a freed pymalloc/mimalloc block holds a free-list pointer
 * or 0 there instead, while its type word often survives. */
static bool live_object(uintptr_t addr, const PyTypeObject *type)
{
    uint64_t hdr[2];
    if (!addr || !cp__saferead(hdr, addr, sizeof hdr))
        return false;
    return hdr[0] >= 1 && hdr[0] <= 0xFFFFFFFFull && hdr[1] == (uint64_t)(uintptr_t)type;
}

/* Is addr a live code object whose first line is firstlineno? */
static bool live_code(uint64_t addr, int32_t firstlineno)
{
    uint8_t b[sizeof(PyCodeObject)];
    uintptr_t name, file;
    int32_t fl;
    if (!live_object((uintptr_t)addr, &PyCode_Type) || !cp__saferead(b, (uintptr_t)addr, sizeof b))
        return false;
    memcpy(&name, b + offsetof(PyCodeObject, co_name), sizeof name);
    memcpy(&file, b + offsetof(PyCodeObject, co_filename), sizeof file);
    memcpy(&fl, b + offsetof(PyCodeObject, co_firstlineno), sizeof fl);
    return fl == firstlineno && live_object(name, &PyUnicode_Type) && live_object(file, &PyUnicode_Type);
}

static char *utf8_dup(PyObject *s)
{
    const char *u = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : NULL;
    if (!u)
        PyErr_Clear();
    return strdup(u ? u : "<unknown>");
}

static char *qualname_dup(PyCodeObject *co)
{
#if PY_VERSION_HEX >= 0x030B0000
    return utf8_dup(co->co_qualname);
#else
    if (g_c.qualname_fn) {
        PyObject *q = PyObject_CallFunctionObjArgs(g_c.qualname_fn, (PyObject *)co, NULL);
        char *r = q && PyUnicode_Check(q) ? utf8_dup(q) : NULL;
        Py_XDECREF(q);
        PyErr_Clear();
        if (r)
            return r;
    }
    return utf8_dup(co->co_name);
#endif
}

/* "file:qualname". Never equal to the name, which also keeps pprof tools
 * from "simplifying" names like <module> or <listcomp> away as C++
 * template arguments (they only do that when system name == name). */
static char *system_name(const char *name, const char *file)
{
    if (!name || !file)
        return NULL;
    size_t n = strlen(name) + strlen(file) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s:%s", file, name);
    return s;
}

void cp__codecache_reset(void)
{
    /* Detach first: the DECREFs below may run arbitrary deallocation. */
    centry *codes = g_c.codes;
    g_c.codes = NULL;
    for (size_t i = 0; codes && i < CODES_CAP; i++) {
        if (codes[i].code) {
            free(codes[i].name);
            free(codes[i].file);
            free(codes[i].sysname);
            Py_DECREF(codes[i].code);
        }
    }
    free(codes);
    if (g_c.lines)
        memset(g_c.lines, 0, LINES_CAP * sizeof(lentry));
    g_c.ncodes = g_c.nlines = 0;
}

void cp__codecache_set_qualname(PyObject *fn)
{
    Py_XINCREF(fn);
    Py_XSETREF(g_c.qualname_fn, fn);
}

static bool ensure_tables(void)
{
    if (!g_c.codes)
        g_c.codes = calloc(CODES_CAP, sizeof(centry));
    if (!g_c.lines)
        g_c.lines = calloc(LINES_CAP, sizeof(lentry));
    return g_c.codes && g_c.lines;
}

/* The cached code entry for addr, adding (and holding) it if it is a live
 * code object. NULL if it is not. */
static centry *code_entry(uint64_t addr, int32_t firstlineno)
{
    size_t h = hash2(addr, 0);
    for (size_t i = 0; i < CODES_CAP; i++) {
        centry *e = &g_c.codes[(h + i) & (CODES_CAP - 1)];
        if (e->code && (uint64_t)(uintptr_t)e->code == addr)
            return e->code->co_firstlineno == firstlineno ? e : NULL;
        if (e->code)
            continue;
        if (!live_code(addr, firstlineno))
            return NULL;
        PyCodeObject *co = (PyCodeObject *)(uintptr_t)addr;
        Py_INCREF(co); /* from here on it cannot be freed (see header) */
        e->code = co;
        e->name = qualname_dup(co);
        e->file = utf8_dup(co->co_filename);
        e->sysname = system_name(e->name, e->file);
        g_c.ncodes++;
        return e;
    }
    return NULL;
}

/* Bytes of bytecode in co: an offset from a torn read can exceed it. */
static Py_ssize_t code_bytes(PyCodeObject *co)
{
#if PY_VERSION_HEX >= 0x030B0000
    return Py_SIZE(co) * 2; /* 2-byte code units */
#else
    return PyBytes_Check(co->co_code) ? PyBytes_GET_SIZE(co->co_code) : 0;
#endif
}

static int64_t line_of(centry *c, int32_t offset)
{
    if (offset >= code_bytes(c->code))
        offset = -1; /* not an instruction of this code: first line */
    uint64_t addr = (uint64_t)(uintptr_t)c->code;
    size_t h = hash2(addr, (uint64_t)(uint32_t)offset);
    for (size_t i = 0; i < LINES_CAP; i++) {
        lentry *e = &g_c.lines[(h + i) & (LINES_CAP - 1)];
        if (e->code == addr && e->offset == offset)
            return e->line;
        if (e->code)
            continue;
        e->code = addr;
        e->offset = offset;
        e->line = offset < 0 ? c->code->co_firstlineno : PyCode_Addr2Line(c->code, offset);
        g_c.nlines++;
        return e->line;
    }
    return 0;
}

void cp__codecache_trim(void)
{
    if (g_c.ncodes >= CODES_CAP / 2 || g_c.nlines >= LINES_CAP / 2)
        cp__codecache_reset();
}

const cp_codeinfo *cp__codecache_lookup(const cp_rawframe *rf)
{
    if (!ensure_tables())
        return NULL;
    centry *c = code_entry(rf->code, rf->firstlineno);
    if (!c || !c->name || !c->file)
        return NULL;
    g_c.out.name = c->name;
    g_c.out.system_name = c->sysname;
    g_c.out.file = c->file;
    g_c.out.line = line_of(c, rf->offset);
    return &g_c.out;
}
