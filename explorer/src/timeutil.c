/*
 * timeutil.c — time parsing and formatting (timeutil.h). Parsing is
 * strict: a profile whose start cannot be read is rejected, not guessed.
 */
#include "timeutil.h"

#include <stdint.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Fraction ".123456789" at *s → ns; advances *s. */
static int64_t fraction_ns(const char **s)
{
    int64_t ns = 0, scale = 100000000;
    if (**s != '.') return 0;
    for ((*s)++; isdigit((unsigned char)**s); (*s)++) {
        ns += (**s - '0') * scale;
        scale /= 10;
    }
    return ns;
}

/* Offset "Z" | "+hh:mm" | "-hh:mm" → seconds east of UTC; -1 bad. */
static int zone_offset(const char *s, long *off)
{
    int h, m;
    if ((s[0] == 'Z' || s[0] == 'z') && s[1] == 0) { *off = 0; return 0; }
    if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 || s[3] != ':' ||
        digits(s + 1, 2, &h) || digits(s + 4, 2, &m))
        return -1;
    *off = (s[0] == '-' ? -1L : 1L) * (h * 3600L + m * 60L);
    return 0;
}

int ex_time_parse_rfc3339(const char *s, int64_t *ns)
{
    int Y, M, D, h, m, sec;
    long off;
    if (!s || strlen(s) < 20 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &m) || s[16] != ':' || digits(s + 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return -1;
    const char *p = s + 19;
    int64_t frac = fraction_ns(&p);
    if (zone_offset(p, &off)) return -1;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    int64_t secs = (int64_t)t - off;
    /* Beyond what int64 ns hold (years before 1678 or after 2262): saturate,
     * so a range check names the field instead of a wrapped date. */
    if (secs > INT64_MAX / 1000000000 - 1) *ns = INT64_MAX;
    else if (secs < INT64_MIN / 1000000000 + 1) *ns = INT64_MIN;
    else *ns = secs * 1000000000 + frac;
    return 0;
}

int ex_time_parse_param(const char *s, int64_t *ns)
{
    char *end;
    if (!s || !*s) return -1;
    long long ms = strtoll(s, &end, 10);
    if (*end == 0) {
        *ns = (int64_t)ms * 1000000;
        return 0;
    }
    return ex_time_parse_rfc3339(s, ns);
}

void ex_time_format(int64_t ns, char *out, size_t n)
{
    time_t t = (time_t)(ns / 1000000000);
    int64_t ms = (ns % 1000000000) / 1000000;
    if (ms < 0) { t--; ms += 1000; }
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
}

int64_t ex_time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
