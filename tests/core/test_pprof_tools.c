/*
 * test_pprof_tools.c — what the encoder writes, read by the real tools:
 * `protoc --decode perftools.profiles.Profile` against Debian's
 * profile.proto (on the raw bytes) and `go tool pprof -raw` (on a written
 * .pb.gz). Each check skips only when its tool is not installed.
 *
 * Tool paths come from configure time (profile.cmake): CP_PROTOC, CP_GO,
 * CP_PROFILE_PROTO_DIR ("" when missing).
 */
#include "test_profile_util.h"
#include "collector_test_util.h"

/* A fresh directory (ct_scratch): the plain and the sanitizer builds of
 * this test run side by side under ctest -j, and a shared directory let
 * one truncate raw.txt while the other read it (a CI failure). */
static char *g_work;

/* g_work "/" name, in a static ring (several are live in one call). */
static const char *wpath(const char *name)
{
    static char ring[8][600];
    static int next;
    char *s = ring[next++ % 8];
    snprintf(s, sizeof ring[0], "%s/%s", g_work, name);
    return s;
}

/* sh command from a format whose %s are filled in (all paths quoted by the caller). */
static const char *cmdf(const char *fmt, ...)
{
    static char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return cmd;
}

static cp_profile *sample_profile(void)
{
    cp_profile *p = tp_new_cpu(NULL);
    cp_frame s1[3] = {{"app.leaf", "app/leaf_sys", "app/a.py", 3, CP_FRAME_PYTHON, NULL},
                      {"app.mid", NULL, "app/a.py", 9, CP_FRAME_PYTHON, NULL},
                      {"main", NULL, "app/m.py", 1}};
    cp_frame native[2] = {{"deflate", NULL, NULL, 0, CP_FRAME_NATIVE, "/usr/lib/libz.so.1"},
                          {"app.mid", NULL, "app/a.py", 9, CP_FRAME_PYTHON, NULL}};
    cp_label l[2] = {{"thread id", NULL, 77, NULL}, {"thread name", "worker-1", 0, NULL}};
    int64_t v1[2] = {30000000, 3}, v2[2] = {10000000, 1};
    assert_int_equal(cp_profile_add(p, s1, 3, v1, l, 2), CP_OK);
    assert_int_equal(cp_profile_add(p, s1 + 1, 2, v2, NULL, 0), CP_OK);
    assert_int_equal(cp_profile_add(p, native, 2, v2, NULL, 0), CP_OK);
    cp_frame deep[70];
    for (int i = 0; i < 70; i++)
        deep[i] = (cp_frame){"rec", NULL, "app/r.py", 2, CP_FRAME_PYTHON, NULL};
    assert_int_equal(cp_profile_add(p, deep, 70, v2, NULL, 0), CP_OK);
    cp_sample_type pt = {"cpu", "nanoseconds"};
    cp_profile_set_period(p, &pt, 10000000);
    cp_profile_set_time(p, 1700000000123456789LL, 60000000000LL);
    assert_int_equal(cp_profile_add_comment(p, "contprof test"), CP_OK);
    return p;
}

static void write_file(const char *path, const cp_buf *b)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b->data, 1, b->len, f), b->len);
    assert_int_equal(fclose(f), 0);
}

/* Whole file as a NUL-terminated string (caller frees); it must exist. */
static char *read_text(const char *path)
{
    char *s = ct_read(path, NULL);
    assert_non_null(s);
    return s;
}

/* Run cmd through sh; on failure print what it said. */
static void run(const char *cmd, const char *err_path)
{
    int rc = system(cmd);
    if (rc != 0) {
        char *err = read_text(err_path);
        print_error("command failed (%d): %s\n%s\n", rc, cmd, err);
        free(err);
    }
    assert_int_equal(rc, 0);
}

static void expect_in(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        print_error("expected to find <%s> in:\n%s\n", needle, text);
    assert_non_null(strstr(text, needle));
}

static void test_protoc_decode(void **state)
{
    if (!CP_PROTOC[0] || !CP_PROFILE_PROTO_DIR[0])
        skip();
    cp_profile *p = sample_profile();
    cp_buf raw;
    cp_buf_init(&raw, 0);
    assert_int_equal(cp_profile_encode(p, false, &raw), CP_OK);
    write_file(wpath("profile.pb"), &raw);
    run(cmdf("'" CP_PROTOC "' --decode perftools.profiles.Profile -I '" CP_PROFILE_PROTO_DIR
             "' profile.proto < '%s' > '%s' 2> '%s'",
             wpath("profile.pb"), wpath("protoc.txt"), wpath("protoc.err")),
        wpath("protoc.err"));
    char *txt = read_text(wpath("protoc.txt"));
    expect_in(txt, "string_table: \"app.leaf\"");
    expect_in(txt, "string_table: \"worker-1\"");
    expect_in(txt, "value: 30000000");
    expect_in(txt, "time_nanos: 1700000000123456789");
    expect_in(txt, "duration_nanos: 60000000000");
    expect_in(txt, "period: 10000000");
    expect_in(txt, "default_sample_type: 1"); /* "cpu-time" is string 1 */
    expect_in(txt, "num: 77");
    expect_in(txt, "comment: ");
    /* protoc found no unknown fields: it would print them as numbers */
    assert_null(strstr(txt, "\n15:"));
    free(txt);
    cp_buf_free(&raw);
    cp_profile_free(p);
}

/* go tool pprof must work with no HOME cache, as in CI. */
static void go_env(void)
{
    mkdir(wpath("home"), 0700);
    setenv("HOME", wpath("home"), 1);
    setenv("GOCACHE", wpath("home/gocache"), 1);
    setenv("GOPATH", wpath("home/gopath"), 1);
    setenv("GOFLAGS", "", 1);
    setenv("PPROF_TMPDIR", wpath("home"), 1);
}

static void test_go_pprof_raw(void **state)
{
    if (!CP_GO[0])
        skip();
    go_env();
    cp_profile *p = sample_profile();
    cp_buf gz;
    cp_buf_init(&gz, 0);
    assert_int_equal(cp_profile_encode(p, true, &gz), CP_OK);
    write_file(wpath("profile.pb.gz"), &gz);
    run(cmdf("'" CP_GO "' tool pprof -raw '%s' > '%s' 2> '%s'", wpath("profile.pb.gz"),
             wpath("raw.txt"), wpath("raw.err")),
        wpath("raw.err"));
    char *txt = read_text(wpath("raw.txt"));
    expect_in(txt, "cpu-time/nanoseconds");
    expect_in(txt, "cpu-samples/count");
    expect_in(txt, "30000000");
    expect_in(txt, "app.leaf");
    expect_in(txt, "app/a.py:3");
    expect_in(txt, "worker-1");
    expect_in(txt, "Period: 10000000");
    /* mappings, marked as symbolised ([FN][FL][LN]) */
    expect_in(txt, "[python]");
    expect_in(txt, "/usr/lib/libz.so.1");
    expect_in(txt, "[pseudo]");
    expect_in(txt, "[FN][FL][LN]");
    free(txt);
    /* -top uses the default sample type (cpu-time): the leaf's self time */
    run(cmdf("'" CP_GO "' tool pprof -top '%s' > '%s' 2> '%s'", wpath("profile.pb.gz"),
             wpath("top.txt"), wpath("top.err")),
        wpath("top.err"));
    txt = read_text(wpath("top.txt"));
    expect_in(txt, "30ms");
    expect_in(txt, "app.leaf");
    expect_in(txt, "deflate");
    expect_in(txt, "<7 frames omitted>"); /* a [pseudo] frame shows by name */
    free(txt);
    cp_buf_free(&gz);
    cp_profile_free(p);
}

static int setup(void **state)
{
    g_work = ct_scratch("pprof_tools");
    return g_work ? 0 : -1;
}

/* A failure has already printed what the tool said. */
static int teardown(void **state)
{
    int rc = system(cmdf("rm -rf '%s'", g_work)); /* not flat (ct_rmdir): go's cache is in it */
    free(g_work);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protoc_decode),
        cmocka_unit_test(test_go_pprof_raw),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
