/*
 * config_internal.h — what the settings code (part B) exports to the rest
 * of the core. Internal: not part of contprof.h.
 */
#ifndef CP_CONFIG_INTERNAL_H
#define CP_CONFIG_INTERNAL_H

/* The configured API key, or "" when none; never NULL. Valid until the next
 * cp_config_set/cp_config_reset. Used by logging to redact the key from
 * every message. */
const char *cp__config_api_key(void);

/* ---- added by part B (settings code) ---- */
#include <stddef.h>

#include "contprof.h"

/* cp_config_set with a description of where the value came from for the
 * one-line error ("env CONTPROF_UPLOAD_PERIOD", "file a.properties:3");
 * origin NULL = the source's name. Same contract as cp_config_set. */
int cp__config_set_from(const char *name, const char *value, cp_source src, const char *origin);

/* Text of the value in effect for setting name (same name rules as
 * cp_config_set), or NULL for an unknown name. Strings point into static
 * storage (valid until the next set/reset); numbers and booleans are
 * written to buf[n]. The api_key is returned as is: never log it. */
const char *cp__config_text(const char *name, char *buf, size_t n);

/* "setting NAME = VALUE (SOURCE)\n" for every setting, secrets redacted
 * (api_key, passwords, the password part of URLs); the source names where
 * the value came from ("env CONTPROF_X", "file f:3", "option", "default").
 * *invalid (may be NULL) receives how many values were refused so far.
 * Caller frees (cp__free); NULL when out of memory. */
char *cp__config_report(unsigned *invalid);

/* url with the password of "scheme://user:password@host" shown as ***. */
void cp__mask_url_password(const char *url, char *out, size_t n);

/* In a forked child: re-create the settings lock (values are kept). */
void cp__config_after_fork(void);

#endif /* CP_CONFIG_INTERNAL_H */
