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
#include <stdbool.h>
#include <stdint.h>

#include "rawring.h"

typedef struct cp_codeinfo {
    const char *name;   /* qualified name; owned by the cache */
    const char *system_name; /* "file:name"; may be NULL */
    const char *file;
    int64_t line;
    int hide;           /* CP_HIDE_* */
    uint32_t *fid;      /* the core's frame id of this name/file/line (0 until
                           the resolver interns it), kept with the line; NULL
                           when not cached. Valid until trim/reset. */
} cp_codeinfo;

/* Frames kept out of stacks: the profiler's own and the launcher's (runpy). */
enum { CP_HIDE_NONE = 0, CP_HIDE_OWN = 1, CP_HIDE_LAUNCHER = 2 };

/* Files under own_dir are the profiler's own, launcher_file is runpy's
 * (either may be NULL). GIL held. */
void cp__codecache_set_hidden(const char *own_dir, const char *launcher_file);

/* Relative code file names (a script run as `python app.py` on 3.8, or
 * through runpy) are reported joined to dir, the working directory at
 * start, so every frame has an absolute path. GIL held. */
void cp__codecache_set_cwd(const char *dir);

/* Name, file and line for one raw frame; NULL when its code object died
 * before it was ever resolved. The struct is valid until the next call,
 * the strings until cp__codecache_trim/reset. GIL held. */
const cp_codeinfo *cp__codecache_lookup(const cp_rawframe *rf);

/* The line of the instruction at byte offset in co (its first line when
 * offset is -1 or past its code). GIL held. */
int cp__codecache_line(PyCodeObject *co, int32_t offset);

/* Empty the cache if it is half full (call between samples, never while
 * holding strings from it). GIL held. */
void cp__codecache_trim(void);

/* Drop everything (and the references held). GIL held. */
void cp__codecache_reset(bool release);

#endif
