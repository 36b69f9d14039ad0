/*
 * passthrough.c — the cheapest allocator wrapper CPython's API allows, as a
 * yardstick for bench/python_hook_floor.py (compiled by it at run time).
 *
 * install(0): PYMEM_DOMAIN_OBJ's malloc becomes a function that only jumps
 * on to the previous one (one extra indirect call hop, nothing else).
 * install(1): the same plus a call counter (to measure calls per loop).
 * uninstall(): the previous allocator back. count(): calls counted.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyMemAllocatorEx g_prev;
static unsigned long long g_calls;

static void *pass_malloc(void *ctx, size_t n)
{
    return g_prev.malloc(ctx, n);
}

static void *count_malloc(void *ctx, size_t n)
{
    g_calls++;
    return g_prev.malloc(ctx, n);
}

static PyObject *install(PyObject *self, PyObject *arg)
{
    PyMemAllocatorEx mine;
    long mode = PyLong_AsLong(arg);

    if (mode == -1 && PyErr_Occurred())
        return NULL;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &g_prev);
    mine = g_prev;
    mine.malloc = mode == 1 ? count_malloc : pass_malloc;
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &mine);
    Py_RETURN_NONE;
}

static PyObject *uninstall(PyObject *self, PyObject *noargs)
{
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &g_prev);
    Py_RETURN_NONE;
}

static PyObject *count(PyObject *self, PyObject *noargs)
{
    return PyLong_FromUnsignedLongLong(g_calls);
}

static PyMethodDef methods[] = {
    {"install", install, METH_O, "install(mode): 0 pass-through, 1 pass-through that counts calls"},
    {"uninstall", uninstall, METH_NOARGS, "the previous allocator back"},
    {"count", count, METH_NOARGS, "calls counted by mode 1"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "passthrough", NULL, -1, methods};

PyMODINIT_FUNC PyInit_passthrough(void)
{
    return PyModule_Create(&moddef);
}
