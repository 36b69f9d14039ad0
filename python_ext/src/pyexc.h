/*
 * pyexc.h — sampled raised exceptions, with the raising stack and the
 * exception's type.
 *
 * 3.12+: a C callback for sys.monitoring's RAISE event (registered by
 * contprof/_exceptions.py under tool id 4 or 3); it counts an
 * exception once, in the frame where it was raised (its traceback has one
 * entry there; frames it unwinds through see more).
 * 3.8–3.11: the constructor hook: every exception class's tp_new is
 * wrapped (classes made later inherit the wrapper), the way JVM profilers
 * sample at the Throwable constructor.
 * Either way the event is offered to a cp_rate_sampler (Poisson by count)
 * and a sampled one is recorded through pyevents.c.
 */
#ifndef CP_PYEXC_H
#define CP_PYEXC_H

#include <Python.h>

/* exc_start(per_s): start sampling; before 3.12 also wraps the exception
 * classes' constructors (again, to catch classes made since). */
PyObject *cp__pyexc_start(PyObject *self, PyObject *args);
PyObject *cp__pyexc_stop(PyObject *self, PyObject *noargs);

/* 3.12+: exc_raise_event(code, offset, exception), the RAISE callback. */
PyObject *cp__pyexc_raise_event(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

#endif
