/*
 * buf.c — cp_buf, a growable byte buffer with a hard size cap.
 *
 * Growth doubles the capacity (bounded by the limit) so appends are
 * amortised O(1). On failure the buffer keeps its previous contents; the
 * owner still releases it with cp_buf_free.
 */
#include "buf.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"

/* Initialise an empty buffer holding at most limit bytes (0 = no cap).
 * Allocates nothing; the caller owns b and frees it with cp_buf_free. */
void cp_buf_init(cp_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit ? limit : SIZE_MAX;
}

/* Capacity to grow to for need bytes: doubling, at least 256, at most the
 * limit (need itself never exceeds it here). */
static size_t grown_cap(const cp_buf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    size_t limit = b->limit ? b->limit : SIZE_MAX; /* a zeroed cp_buf has no cap */
    return cap > limit ? limit : cap;
}

int cp__buf_reserve(cp_buf *b, size_t extra)
{
    size_t limit = b->limit ? b->limit : SIZE_MAX;
    if (extra > limit || b->len > limit - extra)
        return CP_ETOOBIG;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return CP_OK;
    size_t cap = grown_cap(b, need);
    uint8_t *d = cp__realloc(b->data, cap);
    if (!d)
        return CP_ENOMEM;
    b->data = d;
    b->cap = cap;
    return CP_OK;
}

/* Append n bytes from data. CP_ETOOBIG if that would pass the limit,
 * CP_ENOMEM on allocation failure; nothing is appended on error. */
int cp_buf_append(cp_buf *b, const void *data, size_t n)
{
    if (n == 0)
        return CP_OK;
    int rc = cp__buf_reserve(b, n);
    if (rc != CP_OK)
        return rc;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return CP_OK;
}

/* Release the storage; b is left empty and reusable with the same limit. */
void cp_buf_free(cp_buf *b)
{
    cp__free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
