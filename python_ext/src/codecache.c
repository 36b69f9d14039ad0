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

#include "qualname.h"
#include "saferead.h"

#define CODES_CAP 8192   /* power of two; emptied at half full */
#define LINES_CAP 32768  /* power of two; emptied at half full */

typedef struct centry {
    PyCodeObject *code;  /* strong reference; NULL = empty */
    char *name, *file, *sysname;
    int hide;
} centry;

typedef struct lentry {
    uint64_t code;       /* 0 = empty */
    int32_t offset;
    uint32_t fid;        /* core frame id (cp_frame_intern), 0 = none yet */
    int64_t line;
} lentry;

static struct {
    centry *codes;
    lentry *lines;
    size_t ncodes, nlines;
    cp_codeinfo out;
    char *own_dir, *launcher_file, *cwd;
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

/* A str as UTF-8; one holding surrogates (a file name undecodable in the
 * locale) as the bytes they escape, as os.fsencode gives them. */
static char *utf8_dup(PyObject *s)
{
    const char *u = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : NULL;
    if (u)
        return strdup(u);
    PyErr_Clear();
    PyObject *b = s && PyUnicode_Check(s) ? PyUnicode_AsEncodedString(s, "utf-8", "surrogateescape") : NULL;
    char *r = strdup(b ? PyBytes_AS_STRING(b) : "<unknown>");
    Py_XDECREF(b);
    PyErr_Clear();
    return r;
}

static char *qualname_dup(PyCodeObject *co)
{
#if PY_VERSION_HEX >= 0x030B0000
    return utf8_dup(co->co_qualname);
#else
    char *r = cp__qualname_dup(co);
    return r ? r : utf8_dup(co->co_name);
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

void cp__codecache_reset(bool release)
{
    /* Detach first: the DECREFs below may run arbitrary deallocation. */
    centry *codes = g_c.codes;
    g_c.codes = NULL;
    for (size_t i = 0; codes && i < CODES_CAP; i++) {
        if (codes[i].code) {
            free(codes[i].name);
            free(codes[i].file);
            free(codes[i].sysname);
            if (release)
                Py_DECREF(codes[i].code);
        }
    }
    free(codes);
    if (release)
        cp__qualname_forget();
    if (g_c.lines)
        memset(g_c.lines, 0, LINES_CAP * sizeof(lentry));
    g_c.ncodes = g_c.nlines = 0;
}

void cp__codecache_set_hidden(const char *own_dir, const char *launcher_file)
{
    free(g_c.own_dir);
    free(g_c.launcher_file);
    g_c.own_dir = own_dir && *own_dir ? strdup(own_dir) : NULL;
    g_c.launcher_file = launcher_file && *launcher_file ? strdup(launcher_file) : NULL;
}

void cp__codecache_set_cwd(const char *dir)
{
    free(g_c.cwd);
    g_c.cwd = dir && *dir == '/' ? strdup(dir) : NULL;
}

/* file, made absolute against the start directory when it is a relative
 * path (not "<frozen ...>", "<string>" and the like). Takes ownership. */
static char *absolute(char *file)
{
    if (!file || !g_c.cwd || file[0] == '/' || file[0] == '<' || !file[0])
        return file;
    const char *rel = strncmp(file, "./", 2) == 0 ? file + 2 : file;
    size_t n = strlen(g_c.cwd) + strlen(rel) + 2;
    char *abs = malloc(n);
    if (!abs)
        return file;
    snprintf(abs, n, "%s/%s", g_c.cwd, rel);
    free(file);
    return abs;
}

static int hide_of(const char *file)
{
    if (!file)
        return CP_HIDE_NONE;
    if (g_c.own_dir && strncmp(file, g_c.own_dir, strlen(g_c.own_dir)) == 0)
        return CP_HIDE_OWN;
    /* runpy is frozen on 3.11+ (unless -X frozen_modules=off) */
    if ((g_c.launcher_file && strcmp(file, g_c.launcher_file) == 0) || strcmp(file, "<frozen runpy>") == 0)
        return CP_HIDE_LAUNCHER;
    return CP_HIDE_NONE;
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
        e->file = absolute(utf8_dup(co->co_filename));
        e->sysname = system_name(e->name, e->file);
        e->hide = hide_of(e->file);
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

int cp__codecache_line(PyCodeObject *co, int32_t offset)
{
    return offset < 0 || offset >= code_bytes(co) ? co->co_firstlineno : PyCode_Addr2Line(co, offset);
}

static int64_t line_of(centry *c, int32_t offset, uint32_t **fid)
{
    if (offset >= code_bytes(c->code))
        offset = -1; /* not an instruction of this code: first line */
    uint64_t addr = (uint64_t)(uintptr_t)c->code;
    size_t h = hash2(addr, (uint64_t)(uint32_t)offset);
    *fid = NULL;
    for (size_t i = 0; i < LINES_CAP; i++) {
        lentry *e = &g_c.lines[(h + i) & (LINES_CAP - 1)];
        if (e->code == addr && e->offset == offset) {
            *fid = &e->fid;
            return e->line;
        }
        if (e->code)
            continue;
        e->code = addr;
        e->offset = offset;
        e->fid = 0;
        e->line = cp__codecache_line(c->code, offset);
        g_c.nlines++;
        *fid = &e->fid;
        return e->line;
    }
    return 0;
}

void cp__codecache_trim(void)
{
    if (g_c.ncodes >= CODES_CAP / 2 || g_c.nlines >= LINES_CAP / 2)
        cp__codecache_reset(true);
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
    g_c.out.line = line_of(c, rf->offset, &g_c.out.fid);
    g_c.out.hide = c->hide;
    return &g_c.out;
}
