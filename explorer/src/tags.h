/*
 * tags.h — iterating a tags string "k:v,k:v" as the core writes
 * tags_profiler (and "k:v k:v" as DD_TAGS allows when there is no comma).
 */
#ifndef EX_TAGS_H
#define EX_TAGS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ex_tag_iter {
    const char *s;   /* rest of the string */
    char sep;        /* ',' if the string has one, else ' ' */
} ex_tag_iter;

/* Iterate tags (borrowed, may be NULL) with ex_tag_next. */
void ex_tag_iter_init(ex_tag_iter *it, const char *tags);

/* Next "key:value" tag (the value is everything after the first ':');
 * tags without ':' are skipped. Spans point into the string. */
bool ex_tag_next(ex_tag_iter *it, const char **key, size_t *klen, const char **val, size_t *vlen);

#endif /* EX_TAGS_H */
