/*
 * timeutil.h — RFC 3339 / epoch conversions used by intake and queries.
 */
#ifndef EX_TIMEUTIL_H
#define EX_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* "2026-01-02T03:04:05.123456789Z" or with a "+01:00" offset → Unix ns.
 * Returns 0 or -1 when the text is not such a time. */
int ex_time_parse_rfc3339(const char *s, int64_t *ns);

/* Query parameter: epoch milliseconds or RFC 3339 → Unix ns. */
int ex_time_parse_param(const char *s, int64_t *ns);

/* Unix ns → "2026-01-02T03:04:05.123Z" (UTC, millisecond precision). */
void ex_time_format(int64_t ns, char *out, size_t n);

/* Wall clock, Unix ns. */
int64_t ex_time_now_ns(void);

#endif /* EX_TIMEUTIL_H */
