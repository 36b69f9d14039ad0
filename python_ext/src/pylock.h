/*
 * pylock.h — lock-contention profiling of threading.Lock and RLock (and so
 * of Condition, Semaphore, queue.Queue, which are built on them).
 *
 * contprof/_locks.py replaces threading.Lock and threading._CRLock with
 * the two types made here while profiling; each wraps a real lock. Every
 * acquire is timed around the real one (two vDSO clock reads); one that
 * took long enough to have blocked is offered to a cp_rate_sampler
 * (Poisson by wait time), an uncontended one costs nothing more. A sampled
 * wait is recorded through pyevents.c with the
 * acquiring stack and the lock's name.
 */
#ifndef CP_PYLOCK_H
#define CP_PYLOCK_H

#include <Python.h>

/* Add the Lock and RLock types to the module. 0 or -1 (exception set). */
int cp__pylock_init_module(PyObject *m);

/* Module functions: lock_start(real_lock, real_rlock, namer, per_s) and
 * lock_stop(); see pylock.c. */
PyObject *cp__pylock_start(PyObject *self, PyObject *args);
PyObject *cp__pylock_stop(PyObject *self, PyObject *noargs);

/* asyncio.Lock waits, timed in Python (contprof._locks): lock_wait_hit(ns)
 * and lock_wait_record(value, count, name); see pylock.c. */
PyObject *cp__pylock_wait_hit(PyObject *self, PyObject *arg);
PyObject *cp__pylock_wait_record(PyObject *self, PyObject *args);
PyObject *cp__pylock_name_lock(PyObject *self, PyObject *args);

#endif
