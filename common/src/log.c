/*
 * log.c — one-line diagnostics on stderr, filtered by the log_level setting.
 *
 * Every message is formatted into a stack buffer, flattened to one line,
 * scrubbed of the configured API key and written with a single write(2) so
 * that lines from several threads do not interleave. errno is preserved:
 * logging must not change what the host program observes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config_internal.h"
#include "contprof.h"

enum { LOG_LINE_MAX = 1024, LOG_FMT_MAX = 2048 };

static const char *const level_tag[] = {"", "", "[warn] ", "[info] ", "[debug] "};

/* True when messages of this level are printed under the current settings. */
bool cp_log_enabled(int level)
{
    if (level <= CP_LOG_OFF || level > CP_LOG_DEBUG)
        return false;
    const cp_config *c = cp_config_get();
    return c && level <= c->log_level;
}

/* Replace every occurrence of key in s (NUL-terminated, in a buffer of
 * size cap) by "<redacted>", in place. A trailing partial match (a message
 * cut off in the middle of the key) is removed too. */
static void redact(char *s, size_t cap, const char *key)
{
    static const char mask[] = "<redacted>";
    size_t klen = strlen(key), mlen = sizeof mask - 1;
    if (klen == 0)
        return;
    char *hit, *from = s;
    /* from moves past each mask so a key that occurs inside the mask text
     * cannot make this loop forever. */
    while ((hit = strstr(from, key)) != NULL) {
        size_t head = (size_t)(hit - s), tail = strlen(hit + klen);
        if (head + mlen >= cap) {
            *hit = '\0';
            break;
        }
        if (head + mlen + tail + 1 > cap)
            tail = cap - 1 - head - mlen;
        memmove(hit + mlen, hit + klen, tail);
        memcpy(hit, mask, mlen);
        hit[mlen + tail] = '\0';
        from = hit + mlen;
    }
    size_t len = strlen(s);
    for (size_t k = klen - 1; k >= 4; k--) {
        if (len >= k && memcmp(s + len - k, key, k) == 0) {
            s[len - k] = '\0';
            break;
        }
    }
}

/* Turn control characters (newlines from a caller or a server's error
 * text) into spaces so one message stays one line. */
static void flatten(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            *s = ' ';
}

static void write_all(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Redeclared with the format attribute so the compiler checks the
 * vsnprintf below as a printf-style forwarder. */
void cp_vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Format and print one line if level is enabled. fmt follows printf. */
void cp_vlog(int level, const char *fmt, va_list ap)
{
    if (!fmt || !cp_log_enabled(level))
        return;
    int saved = errno;
    char msg[LOG_FMT_MAX];
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        msg[0] = '\0';
    redact(msg, sizeof msg, cp__config_api_key());
    flatten(msg);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == ' ')
        msg[--n] = '\0';
    char line[LOG_LINE_MAX];
    int len = snprintf(line, sizeof line - 1, "contprof: %s%s", level_tag[level], msg);
    if (len < 0)
        len = 0;
    if ((size_t)len > sizeof line - 2)
        len = (int)(sizeof line - 2);
    line[len++] = '\n';
    write_all(line, (size_t)len);
    errno = saved;
}

/* printf-style wrapper over cp_vlog. */
void cp_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cp_vlog(level, fmt, ap);
    va_end(ap);
}
