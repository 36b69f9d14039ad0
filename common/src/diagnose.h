/*
 * diagnose.h — health checks of the destinations and the support report
 * (diagnose.c). cp_diagnose() is public (contprof.h).
 */
#ifndef CP_DIAGNOSE_H
#define CP_DIAGNOSE_H

#include <stdatomic.h>
#include <stddef.h>

#include "contprof.h"
#include "export.h"

/* Create dir if needed and write (then remove) a temp file in it. msg gets
 * "writable" or "NOT writable: <reason>". CP_OK when writable. */
int cp__diag_check_dir(const char *dir, char *msg, size_t n);
/* One GET of url (short timeout, through the configured proxy; abort may
 * be NULL). msg gets "reachable (HTTP s in t ms)" or "NOT reachable: ...".
 * CP_OK on any HTTP answer. */
int cp__diag_check_url(const cp__dest *d, const char *url, const char *unix_socket, atomic_bool *abort, char *msg,
                       size_t n);
/* When a run starts (scheduler thread): check the destinations of d and
 * warn about broken ones; at debug level log the whole report. */
void cp__diagnose_at_start(const cp__dest *d, atomic_bool *abort);

#endif /* CP_DIAGNOSE_H */
