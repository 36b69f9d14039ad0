/*
 * pyexc.c — exception sampling (see pyexc.h). GIL held throughout.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pyexc.h"

#include <string.h>

#include "contprof.h"
#include "pyevents.h"

#define TYPE_NAME_MAX 160

static struct {
    bool active;
    int64_t skip;         /* events before the next one the sampler sees */
    cp_rate_sampler rs;
    cp_rate_state st;
} g_x;

/* "ValueError" for builtins, "module.Qualified.Name" otherwise. */
static void type_name(PyTypeObject *t, char *out, size_t n)
{
    if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        const char *dot = strrchr(t->tp_name, '.');
        snprintf(out, n, "%s", t->tp_name); /* "module.Name" for C extension types */
        if (!dot || strncmp(t->tp_name, "builtins.", 9) == 0)
            snprintf(out, n, "%s", dot ? dot + 1 : t->tp_name);
        return;
    }
    PyObject *mod = PyObject_GetAttrString((PyObject *)t, "__module__");
    PyObject *qn = PyObject_GetAttrString((PyObject *)t, "__qualname__");
    const char *m = mod && PyUnicode_Check(mod) ? PyUnicode_AsUTF8(mod) : NULL;
    const char *q = qn && PyUnicode_Check(qn) ? PyUnicode_AsUTF8(qn) : NULL;
    if (!m || !q)
        PyErr_Clear(); /* names with surrogates: never leave the error set */
    if (m && q && strcmp(m, "builtins") != 0)
        snprintf(out, n, "%s.%s", m, q);
    else
        snprintf(out, n, "%s", q ? q : t->tp_name);
    Py_XDECREF(mod);
    Py_XDECREF(qn);
    PyErr_Clear();
}

/* One exception of type t was raised (or made) by the running code. An
 * unsampled one costs the countdown's decrement and branch. */
static void offer(PyTypeObject *t)
{
    int64_t v, n;
    if (!g_x.active || --g_x.skip > 0 || !cp_rate_unit_hit(&g_x.rs, &g_x.st, &g_x.skip, &v, &n))
        return;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    char name[TYPE_NAME_MAX];
    type_name(t, name, sizeof name);
    cp__pyev_record(CP_PYEV_EXC, n, n, name);
    PyErr_Restore(et, ev, tb);
}

PyObject *cp__pyexc_raise_event(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 3 || !g_x.active)
        Py_RETURN_NONE;
    PyObject *exc = args[2];
    if (!PyExceptionInstance_Check(exc))
        Py_RETURN_NONE;
    /* Read in place (no reference taken): the GIL is held. */
    PyObject *tb = ((PyBaseExceptionObject *)exc)->traceback;
    if (!tb || !PyTraceBack_Check(tb) || ((PyTracebackObject *)tb)->tb_next == NULL)
        offer(Py_TYPE(exc));
    Py_RETURN_NONE;
}

/* ---- before 3.12: the constructor hook ------------------------------ */
#if PY_VERSION_HEX < 0x030C0000

#define HOOKS_CAP 4096 /* hash slots (power of two) */

typedef struct hook_entry {
    PyTypeObject *type; /* patched class (a strong reference) */
    newfunc orig;       /* its tp_new before                  */
} hook_entry;

static hook_entry g_hooks[HOOKS_CAP]; /* never shrinks: patched classes keep the wrapper */
static size_t g_nhooks;
static int g_depth;                   /* inside an original tp_new */

static size_t hslot(const void *p)
{
    return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) >> 40) & (HOOKS_CAP - 1);
}

static newfunc orig_of(PyTypeObject *t)
{
    for (size_t i = hslot(t); g_hooks[i].type; i = (i + 1) & (HOOKS_CAP - 1))
        if (g_hooks[i].type == t)
            return g_hooks[i].orig;
    return NULL;
}

/* The tp_new the class had before, found on it or on the nearest patched
 * base (classes made after patching inherited the wrapper from it). */
static newfunc orig_for(PyTypeObject *t)
{
    for (; t; t = t->tp_base) {
        newfunc f = orig_of(t);
        if (f)
            return f;
    }
    return NULL;
}

static PyObject *exc_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    newfunc orig = orig_for(type);
    if (!orig) {
        PyErr_SetString(PyExc_SystemError, "contprof: exception constructor lost");
        return NULL;
    }
    g_depth++; /* a __new__ calling super().__new__ comes through here again */
    PyObject *r = orig(type, args, kw);
    g_depth--;
    if (r && g_depth == 0)
        offer(type);
    return r;
}

static void patch(PyTypeObject *t)
{
    if (t->tp_new == exc_new || !t->tp_new || g_nhooks >= HOOKS_CAP / 2)
        return;
    /* A Python class with its own __new__ reaches a patched base's
     * __new__ through super(): leave it alone. */
    if ((t->tp_flags & Py_TPFLAGS_HEAPTYPE) && t->tp_dict && PyDict_GetItemString(t->tp_dict, "__new__"))
        return;
    size_t i = hslot(t);
    while (g_hooks[i].type)
        i = (i + 1) & (HOOKS_CAP - 1);
    Py_INCREF(t);
    g_hooks[i] = (hook_entry){t, t->tp_new};
    g_nhooks++;
    t->tp_new = exc_new;
}

static void patch_tree(PyTypeObject *t, int depth)
{
    patch(t);
    PyObject *subs = depth < 64 ? PyObject_CallMethod((PyObject *)t, "__subclasses__", NULL) : NULL;
    for (Py_ssize_t i = 0; subs && i < PyList_GET_SIZE(subs); i++)
        patch_tree((PyTypeObject *)PyList_GET_ITEM(subs, i), depth + 1);
    Py_XDECREF(subs);
    PyErr_Clear();
}

#endif

PyObject *cp__pyexc_start(PyObject *self, PyObject *args)
{
    long long per_s;
    if (!PyArg_ParseTuple(args, "L", &per_s))
        return NULL;
    cp_rate_init(&g_x.rs, 1.0, (double)per_s);
    g_x.st = (cp_rate_state){0};
    g_x.skip = 0;
#if PY_VERSION_HEX < 0x030C0000
    patch_tree((PyTypeObject *)PyExc_BaseException, 0);
#endif
    g_x.active = true;
    Py_RETURN_NONE;
}

PyObject *cp__pyexc_stop(PyObject *self, PyObject *noargs)
{
    g_x.active = false;
    Py_RETURN_NONE;
}
