/*
 * pprof_merge.h — one pprof from the several attachments of one upload
 * (Datadog clients send e.g. wall.pprof, space.pprof and events.pprof
 * together): every sample type of every part, in one profile.
 */
#ifndef EX_PPROF_MERGE_H
#define EX_PPROF_MERGE_H

#include <stddef.h>

#include "contprof.h"

#define EX_MERGE_MAX_PARTS 16

typedef struct ex_merge_part {
    const char *name;    /* attachment name, e.g. "wall.pprof" */
    const cp_pprof *pp;  /* decoded attachment (borrowed) */
} ex_merge_part;

/* Append to out the gzip'd pprof holding every part: sample types side by
 * side in part order (a type name an earlier part already has becomes
 * "<type> (<attachment>)"), each part's samples with zeros in the other
 * parts' columns, ids renumbered, time = earliest start to latest end,
 * period from the first part, mappings (frame kinds) kept. CP_OK, or
 * CP_ENOMEM / CP_EINVAL (no parts). */
int ex_pprof_merge(const ex_merge_part *parts, size_t nparts, cp_buf *out);

#endif /* EX_PPROF_MERGE_H */
