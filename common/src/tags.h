/*
 * tags.h — internal side of tags and process identity: the runtime
 * description given to cp_start, the runtime-id, the service name.
 */
#ifndef CP_TAGS_H
#define CP_TAGS_H

#include <stddef.h>

#include "contprof.h"

/* Copy rt's strings (truncated to 127 bytes) as the process's runtime
 * description for tags and uploads. NULL fields become "". */
void cp__tags_set_runtime(const cp_runtime_desc *rt);

/* The stored description (static storage; strings never NULL). */
const cp_runtime_desc *cp__tags_runtime(void);

/* Draw a new runtime-id (at first use and in a forked child). */
void cp__runtime_id_renew(void);

/* The service setting, or the program name when unset, sanitised for use
 * in tags and file names (no '/', ',', spaces). */
void cp__service_name(char *out, size_t n);

/* In a forked child: fresh lock, new runtime-id. */
void cp__tags_after_fork(void);

#endif /* CP_TAGS_H */
