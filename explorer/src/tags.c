/*
 * tags.c — tag string iteration (tags.h). Values may hold spaces when
 * the tags are comma-separated, and ':' (only the first one splits).
 */
#include "tags.h"

#include <string.h>

void ex_tag_iter_init(ex_tag_iter *it, const char *tags)
{
    it->s = tags ? tags : "";
    it->sep = strchr(it->s, ',') ? ',' : ' ';
}

bool ex_tag_next(ex_tag_iter *it, const char **key, size_t *klen, const char **val, size_t *vlen)
{
    const char seps[2] = {it->sep, 0};
    while (*it->s) {
        it->s += strspn(it->s, seps);
        size_t n = strcspn(it->s, seps);
        const char *tag = it->s, *colon = memchr(tag, ':', n);
        it->s += n;
        if (!colon || colon == tag) continue;
        *key = tag;
        *klen = (size_t)(colon - tag);
        *val = colon + 1;
        *vlen = n - *klen - 1;
        return true;
    }
    return false;
}
