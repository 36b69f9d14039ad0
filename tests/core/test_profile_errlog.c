/*
 * test_profile_errlog.c — the core's first layer: cp_strerror, cp_buf and
 * logging (level filter, prefixes, one line per message, API-key
 * redaction, errno preserved).
 */
#include "test_profile_util.h"

#include <errno.h>
#include <unistd.h>

#include "buf.h"

static void test_strerror(void **state)
{
    assert_string_equal(cp_strerror(CP_OK), "ok");
    assert_string_equal(cp_strerror(CP_ENOMEM), "out of memory");
    assert_string_equal(cp_strerror(CP_ECORRUPT), "corrupt input");
    assert_string_equal(cp_strerror(CP_ETIMEDOUT), "timed out");
    assert_string_equal(cp_strerror(-999), "unknown error");
    assert_string_equal(cp_strerror(5), "unknown error");
}

static void test_buf(void **state)
{
    cp_buf b;
    cp_buf_init(&b, 10);
    assert_int_equal(cp_buf_append(&b, "hello", 5), CP_OK);
    assert_int_equal(cp_buf_append(&b, "", 0), CP_OK);
    assert_int_equal(cp_buf_append(&b, "world!", 6), CP_ETOOBIG);
    assert_int_equal(b.len, 5); /* unchanged on error */
    assert_int_equal(cp_buf_append(&b, "world", 5), CP_OK);
    assert_memory_equal(b.data, "helloworld", 10);
    assert_int_equal(cp_buf_append(&b, "x", 1), CP_ETOOBIG);
    assert_int_equal(cp__buf_reserve(&b, SIZE_MAX), CP_ETOOBIG);
    cp_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(cp_buf_append(&b, "again", 5), CP_OK); /* reusable */
    cp_buf_free(&b);
    cp_buf z = {0}; /* zero limit = no cap */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cp_buf_append(&z, "0123456789", 10), CP_OK);
    assert_int_equal(z.len, 10000);
    cp_buf_free(&z);
}

/* Run fn with stderr redirected; return what it printed (caller frees). */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/cp_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *s = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(fd, s, (size_t)n, 0), n);
    close(fd);
    return s;
}

static void log_levels(void)
{
    cp_log(CP_LOG_ERROR, "an error %d", 1);
    cp_log(CP_LOG_WARN, "a warning");
    cp_log(CP_LOG_INFO, "some info");
    cp_log(CP_LOG_DEBUG, "debug detail");
}

static void test_levels(void **state)
{
    cp_config_reset();
    assert_int_equal(cp_config_set("log_level", "info", CP_SRC_OPTION), CP_OK);
    assert_true(cp_log_enabled(CP_LOG_INFO));
    assert_false(cp_log_enabled(CP_LOG_DEBUG));
    assert_false(cp_log_enabled(CP_LOG_OFF));
    char *out = capture_stderr(log_levels);
    assert_string_equal(out, "contprof: an error 1\n"
                             "contprof: [warn] a warning\n"
                             "contprof: [info] some info\n");
    free(out);
    cp_config_reset();
    assert_int_equal(cp_config_set("log_level", "off", CP_SRC_OPTION), CP_OK);
    out = capture_stderr(log_levels);
    assert_string_equal(out, "");
    free(out);
    cp_config_reset();
}

static void log_secret(void)
{
    cp_log(CP_LOG_ERROR, "upload to %s failed: key=%s, again %s.", "https://intake",
           "0123456789abcdef", "0123456789abcdef");
    cp_log(CP_LOG_ERROR, "multi\nline\r\nmessage\n");
    char long_msg[3000];
    memset(long_msg, 'x', sizeof long_msg);
    /* the key straddles the line's 1024-byte end: no part may leak */
    memcpy(long_msg + 1005, "0123456789abcdef", 16);
    long_msg[2999] = '\0';
    errno = EAGAIN;
    cp_log(CP_LOG_ERROR, "%s", long_msg);
    assert_int_equal(errno, EAGAIN);
}

static void test_redaction_and_one_line(void **state)
{
    cp_config_reset();
    assert_int_equal(cp_config_set("api_key", "0123456789abcdef", CP_SRC_OPTION), CP_OK);
    char *out = capture_stderr(log_secret);
    assert_null(strstr(out, "0123456789"));
    assert_null(strstr(out, "01234"));
    assert_non_null(strstr(out, "contprof: upload to https://intake failed: key=<redacted>, again "
                                "<redacted>.\n"));
    assert_non_null(strstr(out, "contprof: multi line  message\n"));
    /* three messages, three lines, each at most 1024 bytes */
    int lines = 0;
    for (char *s = out, *nl; (nl = strchr(s, '\n')) != NULL; s = nl + 1) {
        assert_true(nl - s < 1024);
        lines++;
    }
    assert_int_equal(lines, 3);
    free(out);
    cp_config_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_redaction_and_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
