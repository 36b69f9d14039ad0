/*
 * buf.h — internal helpers on cp_buf (the public part is in contprof.h).
 */
#ifndef CP_BUF_H
#define CP_BUF_H

#include "contprof.h"

/* Make room for extra more bytes after b->len without changing len.
 * CP_ETOOBIG past b->limit, CP_ENOMEM when the allocation fails; b is
 * unchanged on error. */
int cp__buf_reserve(cp_buf *b, size_t extra);

#endif /* CP_BUF_H */
