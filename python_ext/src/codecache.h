/*
 * codecache.h — code objects to function name, file and line, for the
 * resolver (GIL held).
 *
 * The first time a code object is seen it is checked through fault-safe
 * reads to be a live code object (a freed one keeps its type but loses its
 * reference count), then the cache takes a strong reference to it: while
 * cached it cannot be freed, so its address cannot be reused by another
 * object and later samples of it always resolve, even after the function
 * itself is gone. The cache is bounded; when full it is emptied, which
 * releases those references.
 */
#ifndef CP_CODECACHE_H
#define CP_CODECACHE_H

#include <Python.h>
#include <stdint.h>

#include "rawring.h"

typedef struct cp_codeinfo {
    const char *name;   /* qualified name; owned by the cache */
    const char *system_name; /* "file:name"; may be NULL */
    const char *file;
    int64_t line;
} cp_codeinfo;

/* Name, file and line for one raw frame; NULL when its code object died
 * before it was ever resolved. The struct is valid until the next call,
 * the strings until cp__codecache_trim/reset. GIL held. */
const cp_codeinfo *cp__codecache_lookup(const cp_rawframe *rf);

/* Empty the cache if it is half full (call between samples, never while
 * holding strings from it). GIL held. */
void cp__codecache_trim(void);

/* Drop everything (and the references held). GIL held. */
void cp__codecache_reset(void);

/* Before 3.11: fn(code) -> qualified name (a new reference is taken);
 * NULL to use co_name. GIL held. */
void cp__codecache_set_qualname(PyObject *fn);

#endif
