/*
 * unit_test.c — unit tests of the JVM agent's pieces that need no JVM:
 * signature formatting, AGCT error names, interning, line lookup, signal
 * names, and the call-trace store's claim/commit/drain/drop rules.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agct.h"
#include "call_trace_store.h"
#include "contprof.h"
#include "heap_stacks.h"
#include "method_resolver.h"
#include "sampling_signal.h"

static void class_names(void **state)
{
    char out[64];

    (void)state;
    assert_string_equal(cp__class_name_from_signature("Ljava/lang/String;", out, sizeof out), "java.lang.String");
    assert_string_equal(cp__class_name_from_signature("[I", out, sizeof out), "int[]");
    assert_string_equal(cp__class_name_from_signature("J", out, sizeof out), "long");
    assert_string_equal(cp__class_name_from_signature("[[Ljava/util/Map$Entry;", out, sizeof out),
                        "java.util.Map$Entry[][]");
    /* Truncated to the buffer, always terminated. */
    assert_string_equal(cp__class_name_from_signature("Lcom/example/VeryLong;", out, 8), "com.exa");
}

static void norm(const char *in, const char *want)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", in);
    assert_string_equal(cp__normalize_generated(buf), want);
}

static void generated_names(void **state)
{
    (void)state;
    norm("Foo$$Lambda$1.0x00007fc05c000a08.run", "Foo$$Lambda.run");
    norm("com.x.Foo$$Lambda$14/0x0000000800c03000.apply", "com.x.Foo$$Lambda.apply");
    norm("Foo$$Lambda/0x000071b4a8001a00.run", "Foo$$Lambda.run");
    norm("java.lang.invoke.LambdaForm$MH.0x00007f03f4008800.invoke", "java.lang.invoke.LambdaForm$MH.invoke");
    norm("java.lang.invoke.LambdaForm$DMH+0x0000000800d4c400.invokeStatic(Ljava/lang/Object;J)J",
         "java.lang.invoke.LambdaForm$DMH.invokeStatic(Ljava/lang/Object;J)J");
    norm("java.lang.invoke.LambdaForm$MH/1450495309.invokeExact_MT", "java.lang.invoke.LambdaForm$MH.invokeExact_MT");
    norm("jdk.internal.reflect.GeneratedMethodAccessor12.invoke", "jdk.internal.reflect.GeneratedMethodAccessor.invoke");
    norm("jdk.proxy2.$Proxy15.run", "jdk.proxy.$Proxy.run");
    /* Real names are left alone. */
    norm("TruthTarget.calc(I)J", "TruthTarget.calc(I)J");
    norm("Foo$1.run", "Foo$1.run");
    norm("Foo.lambda$main$0", "Foo.lambda$main$0");
    norm("a.b0x12345.c", "a.b0x12345.c");
}

static void agct_names(void **state)
{
    (void)state;
    assert_string_equal(cp__agct_error_name(0), "[no_Java_frame]");
    assert_string_equal(cp__agct_error_name(-2), "[GC_active]");
    assert_string_equal(cp__agct_error_name(CP__AGCT_UNKNOWN_JAVA), "[unknown_Java]");
    assert_string_equal(cp__agct_error_name(-10), "[safepoint]");
    assert_string_equal(cp__agct_error_name(-11), "[unknown_AGCT_error]");
    assert_string_equal(cp__agct_error_name(3), "[unknown_AGCT_error]");
}

static void interning(void **state)
{
    char a[] = "byte[]", b[] = "byte[]";

    (void)state;
    const char *x = cp__intern(a);
    assert_ptr_equal(x, cp__intern(b));
    assert_ptr_not_equal(x, a);
    assert_string_equal(x, "byte[]");
    assert_ptr_not_equal(x, cp__intern("char[]"));
}

static void line_lookup(void **state)
{
    /* Unsorted, as JVMTI allows: the closest start at or before the bci. */
    jvmtiLineNumberEntry t[] = {{20, 12}, {0, 10}, {8, 11}};
    cp__method_info m = {NULL, "A.f", "A.java", 3, t};

    (void)state;
    assert_int_equal(cp__method_line(&m, 0), 10);
    assert_int_equal(cp__method_line(&m, 7), 10);
    assert_int_equal(cp__method_line(&m, 8), 11);
    assert_int_equal(cp__method_line(&m, 400), 12);
    m.nlines = 0;
    assert_int_equal(cp__method_line(&m, 5), 0);
}

static void signal_names(void **state)
{
    (void)state;
    assert_int_equal(cp__signal_parse("SIGPROF"), SIGPROF);
    assert_int_equal(cp__signal_parse("PROF"), SIGPROF);
    assert_int_equal(cp__signal_parse("SIGRTMIN+3"), SIGRTMIN + 3);
    assert_int_equal(cp__signal_parse("SIGRTMIN"), SIGRTMIN);
    assert_int_equal(cp__signal_parse("12"), 12);
    assert_int_equal(cp__signal_parse("SIGRTMIN+999"), -1);
    assert_int_equal(cp__signal_parse("bogus"), -1);
    assert_int_equal(cp__signal_parse("0"), -1);
    assert_int_equal(cp__signal_parse(""), -1);
}

static size_t g_seen;
static int64_t g_weights;
static void count_rec(const cp__trace_rec *r, void *ctx)
{
    (void)ctx;
    g_seen++;
    g_weights += r->weight;
}

static void store_rules(void **state)
{
    enum { N = 8 };
    cp__trace_rec *held[N];
    cp_metrics m0, m1;

    (void)state;
    assert_int_equal(cp__store_init(N, 4), CP_OK);
    for (int i = 0; i < N; i++) {
        held[i] = cp__store_reserve();
        assert_non_null(held[i]);
        assert_int_equal(held[i]->heap_slot, -1);
        held[i]->weight = i + 1;
    }
    /* Every slot is being written: the next writer drops and counts. */
    cp_metrics_get(&m0);
    assert_null(cp__store_reserve());
    cp_metrics_get(&m1);
    assert_int_equal(m1.samples_dropped, m0.samples_dropped + 1);
    /* Uncommitted records are invisible; cancelled ones come back free. */
    assert_int_equal(cp__store_drain(count_rec, NULL), 0);
    cp__store_cancel(held[0]);
    for (int i = 1; i < N; i++)
        cp__store_commit(held[i]);
    g_seen = 0, g_weights = 0;
    assert_int_equal(cp__store_drain(count_rec, NULL), N - 1);
    assert_int_equal(g_weights, (N * (N + 1)) / 2 - 1);
    assert_int_equal(cp__store_drain(count_rec, NULL), 0);
    /* After a drain that leaves nothing pending, writers start again at the
     * first slot, so a steady trickle reuses a few resident slots. */
    cp__trace_rec *first = held[0];
    for (int i = 1; i < N; i++)
        if (held[i] < first)
            first = held[i];
    held[0] = cp__store_reserve();
    assert_ptr_equal(held[0], first);
    cp__store_commit(held[0]);
    assert_int_equal(cp__store_drain(count_rec, NULL), 1);
    assert_ptr_equal(cp__store_reserve(), first);
    /* A busy slot in the way is skipped, not a drop: the first is still
     * being written, the next claim takes the one after it. */
    cp_metrics_get(&m0);
    cp__trace_rec *next = cp__store_reserve();
    assert_ptr_equal(next, first + 1);
    cp__store_cancel(next);
    assert_int_equal(cp__store_drain(count_rec, NULL), 0);
    /* The drain found nothing pending: back to the front, where slot 0 is
     * still held, so the claim lands on the next free one. */
    assert_ptr_equal(cp__store_reserve(), first + 1);
    cp_metrics_get(&m1);
    assert_int_equal(m1.samples_dropped, m0.samples_dropped);
    /* All the others are free too. */
    for (int i = 2; i < N; i++)
        assert_non_null(cp__store_reserve());
    assert_null(cp__store_reserve());
}

/* The live-heap stack tree's index starts small and grows: 20,000 distinct
 * stacks sharing their two outer frames come back as the same nodes, with
 * their frames, after every growth. */
static void heap_stacks_grow(void **state)
{
    enum { N = 20000 };
    static char names[N][16];
    static const cp__heap_node *leaf[N];
    cp_frame frames[3] = {{"leaf", NULL, NULL, 0, CP_FRAME_JAVA_COMPILED, NULL},
                          {"mid", NULL, NULL, 7, CP_FRAME_JAVA_COMPILED, NULL},
                          {"main", NULL, NULL, 1, CP_FRAME_JAVA_INTERPRETED, NULL}};
    cp_frame out[4];

    (void)state;
    assert_int_equal(cp__heap_stacks_init(1 << 16), CP_OK);
    size_t before = cp__heap_stacks_count();
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        frames[0].name = names[i];
        assert_non_null(leaf[i] = cp__heap_stacks_intern(frames, 3));
    }
    assert_int_equal(cp__heap_stacks_count() - before, N + 2);
    for (int i = 0; i < N; i++) {
        frames[0].name = names[i];
        assert_ptr_equal(cp__heap_stacks_intern(frames, 3), leaf[i]);
        assert_int_equal(cp__heap_stacks_get(leaf[i], out, 4), 3);
        assert_ptr_equal(out[0].name, names[i]);
        assert_ptr_equal(out[1].name, frames[1].name);
        assert_int_equal(out[2].line, 1);
    }
    assert_int_equal(cp__heap_stacks_count() - before, N + 2);
}

/* A JVMTI that knows no method: every lookup fails, as for an unloaded
 * class, so each id gets its own "[unknown]" cache entry. */
static jvmtiError JNICALL no_class(jvmtiEnv *e, jmethodID m, jclass *k)
{
    (void)e, (void)m, (void)k;
    return JVMTI_ERROR_INVALID_METHODID;
}

static jvmtiError JNICALL no_name(jvmtiEnv *e, jmethodID m, char **n, char **s, char **g)
{
    (void)e, (void)m, (void)n, (void)s, (void)g;
    return JVMTI_ERROR_INVALID_METHODID;
}

static void method_cache_full(void **state)
{
    enum { CACHED = 1 << 19 }; /* the cache's cap: half of its 2^20 slots */
    struct jvmtiInterface_1_ fns;
    jvmtiEnv env = &fns;

    (void)state;
    memset(&fns, 0, sizeof fns);
    fns.GetMethodDeclaringClass = no_class;
    fns.GetMethodName = no_name;
    const cp__method_info *first = cp__method_resolve(&env, NULL, (jmethodID)(uintptr_t)16);
    for (uintptr_t i = 2; i <= CACHED; i++)
        assert_string_equal(cp__method_resolve(&env, NULL, (jmethodID)(i * 16))->name, "[unknown]");
    assert_int_equal(cp__method_cache_overflows(), 0);
    /* Full: a new method gets the placeholder (counted)... */
    assert_string_equal(cp__method_resolve(&env, NULL, (jmethodID)(uintptr_t)((CACHED + 1) * 16))->name,
                        "[method cache full]");
    assert_int_equal(cp__method_cache_overflows(), 1);
    /* ...and every cached one still resolves to its own entry. */
    assert_ptr_equal(cp__method_resolve(&env, NULL, (jmethodID)(uintptr_t)16), first);
    assert_ptr_equal(cp__method_resolve(&env, NULL, (jmethodID)(uintptr_t)(CACHED * 16))->id,
                     (jmethodID)(uintptr_t)(CACHED * 16));
    assert_int_equal(cp__method_cache_overflows(), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(class_names), cmocka_unit_test(agct_names), cmocka_unit_test(generated_names),
        cmocka_unit_test(interning),   cmocka_unit_test(line_lookup),
        cmocka_unit_test(signal_names), cmocka_unit_test(store_rules), cmocka_unit_test(heap_stacks_grow),
        cmocka_unit_test(method_cache_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
