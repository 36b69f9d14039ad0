/*
 * qualname.h — qualified function names for interpreters without
 * co_qualname (before 3.11), for the code cache (GIL held).
 *
 * Found by looking the code object up in its module's functions, the
 * classes there (nested down to four levels) and the closures and
 * comprehensions inside those functions, reading dicts, tuples and struct
 * fields only: no user code runs and no Python object is created.
 */
#ifndef CP_QUALNAME_H
#define CP_QUALNAME_H

#include <Python.h>

/* The qualified name of co (malloc'd), or NULL when its owner is not
 * found (the caller then uses co_name). Always NULL on 3.11+. */
char *cp__qualname_dup(PyCodeObject *co);

/* Drop the references kept between calls (modules by file name). GIL held. */
void cp__qualname_forget(void);

#endif
