/*
 * qualname.c — see qualname.h.
 *
 * The function owning a code object is looked for among its module's
 * globals and the classes defined there (nested classes down to four
 * levels), closures and comprehensions two levels into a function. Only
 * dicts, tuples and struct fields are read: no attribute lookup, no call,
 * no object is created, so no user code runs, the GIL is never given up
 * midway, and the garbage collector's allocation count does not move (a
 * resolver that ran Python code here lifted gc.get_count() by ~30 right
 * after gc.collect() on 3.8: frames and lists refill the emptied free lists).
 */
#include "qualname.h"

#if PY_VERSION_HEX < 0x030B0000

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Leading fields of the descriptors a class body wraps functions in
 * (Objects/funcobject.c, Objects/descrobject.c; the same 3.8-3.10). */
typedef struct {
    PyObject_HEAD
    PyObject *callable;
} wrapper_prefix; /* staticmethod, classmethod */

typedef struct {
    PyObject_HEAD
    PyObject *fget;
} property_prefix;

#define SEEN_CAP 1024 /* classes visited in one search; more are not entered */
#define NEST_DEPTH 2
#define CLASS_DEPTH 4

typedef struct search {
    PyCodeObject *target;
    PyObject *seen[SEEN_CAP]; /* open addressing on the pointer */
} search;

#define FILES_CAP 256 /* power of two: file name -> module, direct-mapped */

typedef struct fentry {
    PyObject *file;   /* strong; NULL = empty */
    PyObject *module; /* strong; NULL = no module has this file */
} fentry;

static struct {
    fentry files[FILES_CAP];
    PyObject *file_key; /* "__file__", interned once */
} g_q;

static const char *utf8(PyObject *s)
{
    const char *u = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : NULL;
    if (!u)
        PyErr_Clear();
    return u;
}

static char *join(const char *qual, const char *name)
{
    size_t n = strlen(qual) + strlen(name) + sizeof ".<locals>.";
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s.<locals>.%s", qual, name);
    return s;
}

/* Code defined inside outer (a closure, lambda or comprehension) whose
 * qualified name is qual. */
static char *nested(PyCodeObject *outer, const char *qual, PyCodeObject *target, int depth)
{
    PyObject *consts = outer->co_consts;
    if (!qual || !consts || !PyTuple_Check(consts))
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(consts); i++) {
        PyObject *c = PyTuple_GET_ITEM(consts, i);
        if (!PyCode_Check(c))
            continue;
        const char *name = utf8(((PyCodeObject *)c)->co_name);
        if (!name)
            continue;
        if (c == (PyObject *)target)
            return join(qual, name);
        if (depth > 0) {
            char *inner = join(qual, name);
            char *r = inner ? nested((PyCodeObject *)c, inner, target, depth - 1) : NULL;
            free(inner);
            if (r)
                return r;
        }
    }
    return NULL;
}

/* First visit of class t in this search? A full table enters no more. */
static bool first_visit(search *s, PyObject *t)
{
    size_t h = (size_t)(((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull >> 40);
    for (size_t i = 0; i < SEEN_CAP; i++) {
        PyObject **slot = &s->seen[(h + i) & (SEEN_CAP - 1)];
        if (*slot == t)
            return false;
        if (!*slot) {
            if (i >= SEEN_CAP / 2)
                return false; /* crowded: stop descending rather than probe on */
            *slot = t;
            return true;
        }
    }
    return false;
}

static PyObject *unwrap(PyObject *v)
{
    if (PyObject_TypeCheck(v, &PyStaticMethod_Type) || PyObject_TypeCheck(v, &PyClassMethod_Type))
        return ((wrapper_prefix *)v)->callable;
    if (PyObject_TypeCheck(v, &PyProperty_Type))
        return ((property_prefix *)v)->fget;
    return v;
}

/* The function owning the target in namespace ns or the classes in it.
 * The name is the function's own __qualname__, so a class reached through
 * an alias still names it right. */
static char *search_ns(search *s, PyObject *ns, int depth)
{
    PyObject *key, *v;
    Py_ssize_t pos = 0;
    if (!ns || !PyDict_Check(ns))
        return NULL;
    while (PyDict_Next(ns, &pos, &key, &v)) {
        v = unwrap(v);
        if (!v)
            continue;
        if (PyFunction_Check(v)) {
            PyFunctionObject *f = (PyFunctionObject *)v;
            const char *qual = utf8(f->func_qualname);
            if (f->func_code == (PyObject *)s->target)
                return qual ? strdup(qual) : NULL;
            char *r = PyCode_Check(f->func_code) ? nested((PyCodeObject *)f->func_code, qual, s->target, NEST_DEPTH)
                                                 : NULL;
            if (r)
                return r;
        }
        if (depth > 0 && PyType_Check(v) && first_visit(s, v)) {
            char *r = search_ns(s, ((PyTypeObject *)v)->tp_dict, depth - 1);
            if (r)
                return r;
        }
    }
    return NULL;
}

/* The module (borrowed) whose __file__ equals file, from sys.modules;
 * remembered per file name (a str caches its hash: nothing is created). */
static PyObject *module_for(PyObject *file)
{
    if (!PyUnicode_Check(file))
        return NULL;
    Py_hash_t h = PyObject_Hash(file);
    if (h == -1) {
        PyErr_Clear();
        return NULL;
    }
    fentry *e = &g_q.files[(size_t)h & (FILES_CAP - 1)];
    if (e->file && PyUnicode_Compare(e->file, file) == 0)
        return e->module;
    PyErr_Clear();
    if (!g_q.file_key && !(g_q.file_key = PyUnicode_InternFromString("__file__"))) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *mods = PySys_GetObject("modules"); /* borrowed */
    PyObject *key, *m, *found = NULL;
    Py_ssize_t pos = 0;
    while (mods && PyDict_Check(mods) && PyDict_Next(mods, &pos, &key, &m)) {
        if (!PyModule_Check(m))
            continue;
        PyObject *f = PyDict_GetItem(PyModule_GetDict(m), g_q.file_key); /* borrowed, no error */
        if (f && PyUnicode_Check(f) && PyUnicode_Compare(f, file) == 0) {
            found = m;
            break;
        }
        PyErr_Clear();
    }
    PyErr_Clear();
    Py_INCREF(file);
    Py_XINCREF(found);
    Py_XSETREF(e->file, file);
    Py_XSETREF(e->module, found);
    return found;
}

char *cp__qualname_dup(PyCodeObject *co)
{
    PyObject *mod = co->co_filename ? module_for(co->co_filename) : NULL;
    if (!mod)
        return NULL;
    search *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->target = co;
    char *r = search_ns(s, PyModule_GetDict(mod), CLASS_DEPTH);
    free(s);
    PyErr_Clear();
    return r;
}

void cp__qualname_forget(void)
{
    for (size_t i = 0; i < FILES_CAP; i++) {
        /* Detach first: the DECREFs may run deallocators. */
        PyObject *file = g_q.files[i].file, *module = g_q.files[i].module;
        g_q.files[i].file = g_q.files[i].module = NULL;
        Py_XDECREF(file);
        Py_XDECREF(module);
    }
}

#else /* co_qualname: codecache.c reads it */

char *cp__qualname_dup(PyCodeObject *co)
{
    (void)co;
    return NULL;
}

void cp__qualname_forget(void) {}

#endif
