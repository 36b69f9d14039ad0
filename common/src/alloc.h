/*
 * alloc.h — the core's allocation wrappers (internal, cross-file).
 *
 * Every allocation in libcontprof_core goes through these so that tests can
 * inject an allocation failure at any point (in the spirit of curl's
 * "torture" mode) and check that each caller fails cleanly: an error code,
 * no crash, no leak. Outside tests they are plain malloc/free with one
 * relaxed atomic load of overhead.
 *
 * Not async-signal-safe (they call malloc); never use them in a signal
 * handler.
 */
#ifndef CP_ALLOC_H
#define CP_ALLOC_H

#include <stddef.h>

/* malloc/calloc/realloc/free/strdup. Each returns NULL on failure (real or
 * injected); the caller owns the result and releases it with cp__free.
 * cp__realloc leaves the old block valid when it fails, like realloc. */
void *cp__malloc(size_t n);
void *cp__calloc(size_t count, size_t size); /* NULL on count*size overflow */
void *cp__realloc(void *ptr, size_t n);
void cp__free(void *ptr);
char *cp__strdup(const char *s);             /* NULL for a NULL s         */
char *cp__strndup(const char *s, size_t n);  /* at most n bytes, NUL-ended */

/* zlib's zalloc/zfree signatures (alloc_func/free_func), so that zlib's
 * allocations go through the core too: z_stream.zalloc = cp__zalloc,
 * z_stream.zfree = cp__zfree. */
void *cp__zalloc(void *opaque, unsigned items, unsigned size);
void cp__zfree(void *opaque, void *ptr);

/* Test hook: make the n-th allocation from now fail (1 or 0 = the very
 * next one); the allocations after it succeed again. n < 0 (-1) disarms.
 * Counts allocations from every thread. */
void cp__alloc_fail_after(long n);

/* Test hook: how many allocations have been failed by injection since the
 * process started; lets a torture loop tell whether its armed failure
 * actually fired. */
unsigned long cp__alloc_injected(void);

#endif /* CP_ALLOC_H */
