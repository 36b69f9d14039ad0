/*
 * test_analysis.c — each analysis rule fires on a profile built to
 * trigger it (with the right evidence) and stays quiet on a healthy one.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "analysis.h"
#include "fixtures.h"

#define SEC 1000000000LL

static const ex_finding *run(cp_pprof *pp, int64_t dur, ex_analysis *a, int rule)
{
    assert_int_equal(ex_analyze(pp, dur, a), CP_OK);
    for (size_t i = 0; i < a->n; i++)
        if (a->findings[i].rule == rule) return &a->findings[i];
    return NULL;
}

/* A healthy profile: CPU spread evenly over 10 functions, CPU ≈ wall,
 * modest allocation, 4 threads, no recursion. No rule fires. */
static void test_healthy_profile_is_quiet(void **state)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples,wall-time,wall-samples,alloc-space,alloc-samples");
    char stack[64];
    for (int i = 0; i < 10; i++) {
        snprintf(stack, sizeof stack, "main;work%d", i);
        fx_add(p, stack, (int64_t[]){SEC / 10, 10, SEC / 10, 10, 1 << 20, 1}, 1 + i % 4, "worker");
    }
    cp_pprof *pp = fx_decoded(p, SEC);
    ex_analysis a;
    assert_int_equal(ex_analyze(pp, SEC, &a), CP_OK);
    assert_int_equal(a.n, 0);
    for (int r = 0; r < EX_RULE__COUNT; r++)
        if (r != EX_RULE_LOCK && r != EX_RULE_ONE_LOCK && r != EX_RULE_EXCEPTIONS) assert_true(a.checked[r]);
    cp_pprof_free(pp);
}

static void test_hot_function(void **state)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples");
    fx_add(p, "main;handler;json.loads", (int64_t[]){7 * SEC / 10, 70}, 1, NULL);
    fx_add(p, "main;handler;other", (int64_t[]){3 * SEC / 10, 30}, 1, NULL);
    cp_pprof *pp = fx_decoded(p, SEC);
    ex_analysis a;
    const ex_finding *f = run(pp, SEC, &a, EX_RULE_HOT);
    assert_non_null(f);
    assert_string_equal(f->function, "json.loads");
    assert_true(fabs(f->share - 0.7) < 1e-9);
    assert_true(f->warning);
    cp_pprof_free(pp);
    /* too few samples to judge → not checked, not fired */
    p = fx_new("cpu-time,cpu-samples");
    fx_add(p, "main;only", (int64_t[]){SEC / 100, 1}, 1, NULL);
    pp = fx_decoded(p, SEC);
    assert_null(run(pp, SEC, &a, EX_RULE_HOT));
    assert_false(a.checked[EX_RULE_HOT]);
    cp_pprof_free(pp);
}

static void test_high_alloc_rate(void **state)
{
    cp_profile *p = fx_new("alloc-space,alloc-samples");
    fx_add(p, "main;make_buffers", (int64_t[]){600LL << 20, 600}, 1, NULL); /* 600 MiB in 2 s */
    fx_add(p, "main;small", (int64_t[]){1 << 20, 1}, 1, NULL);
    cp_pprof *pp = fx_decoded(p, 2 * SEC);
    ex_analysis a;
    const ex_finding *f = run(pp, 2 * SEC, &a, EX_RULE_ALLOC);
    assert_non_null(f);
    assert_true(fabs(f->value - 300.5 * 1024 * 1024) < 1);
    assert_string_equal(f->function, "make_buffers");
    assert_null(run(pp, 20 * SEC, &a, EX_RULE_ALLOC)); /* 30 MiB/s: fine */
    cp_pprof_free(pp);
}

static void test_gc_time(void **state)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples");
    fx_add(p, "main;alloc_lots;gc.collect", (int64_t[]){3 * SEC / 10, 30}, 1, NULL);
    fx_add(p, "[GC_active]", (int64_t[]){1 * SEC / 10, 10}, 2, NULL);
    fx_add(p, "thread_main;G1 work", (int64_t[]){1 * SEC / 10, 10}, 3, "G1 Conc#0");
    fx_add(p, "main;compute", (int64_t[]){5 * SEC / 10, 50}, 1, NULL);
    cp_pprof *pp = fx_decoded(p, SEC);
    ex_analysis a;
    const ex_finding *f = run(pp, SEC, &a, EX_RULE_GC);
    assert_non_null(f);
    assert_true(fabs(f->share - 0.5) < 1e-9);
    assert_string_equal(f->type, "cpu-time");
    cp_pprof_free(pp);
}

static void test_lock_wait(void **state)
{
    /* from wall time: 60% of wall in lock waits */
    cp_profile *p = fx_new("wall-time,wall-samples");
    fx_add(p, "main;worker;threading.Lock.acquire", (int64_t[]){6 * SEC, 600}, 1, NULL);
    fx_add(p, "main;worker;compute", (int64_t[]){4 * SEC, 400}, 2, NULL);
    cp_pprof *pp = fx_decoded(p, 10 * SEC);
    ex_analysis a;
    const ex_finding *f = run(pp, 10 * SEC, &a, EX_RULE_LOCK);
    assert_non_null(f);
    assert_true(fabs(f->share - 0.6) < 1e-9);
    cp_pprof_free(pp);
    /* from lock-acquire-wait: 30 s of waiting in 10 s = 3 threads blocked */
    p = fx_new("lock-acquire-wait,lock-acquire");
    fx_add(p, "main;update;ReentrantLock.lock", (int64_t[]){30 * SEC, 50}, 1, NULL);
    pp = fx_decoded(p, 10 * SEC);
    f = run(pp, 10 * SEC, &a, EX_RULE_LOCK);
    assert_non_null(f);
    assert_true(fabs(f->value - 30.0 * SEC) < 1);
    cp_pprof_free(pp);
}

static void test_many_threads(void **state)
{
    cp_profile *p = fx_new("wall-time,wall-samples");
    for (int t = 1; t <= 150; t++) fx_add(p, "main;serve", (int64_t[]){SEC / 100, 1}, t, "pool");
    cp_pprof *pp = fx_decoded(p, SEC);
    ex_analysis a;
    const ex_finding *f = run(pp, SEC, &a, EX_RULE_THREADS);
    assert_non_null(f);
    assert_int_equal(f->count, 150);
    cp_pprof_free(pp);
}

static void test_wall_waiting(void **state)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples,wall-time,wall-samples");
    fx_add(p, "main;fetch;socket.recv", (int64_t[]){0, 0, 9 * SEC, 900}, 1, NULL);
    fx_add(p, "main;fetch;parse", (int64_t[]){SEC / 2, 50, SEC, 100}, 1, NULL);
    cp_pprof *pp = fx_decoded(p, 10 * SEC);
    ex_analysis a;
    const ex_finding *f = run(pp, 10 * SEC, &a, EX_RULE_WAIT);
    assert_non_null(f);
    assert_true(fabs(f->share - 0.05) < 1e-9);
    assert_string_equal(f->function, "socket.recv");
    cp_pprof_free(pp);
}

/* The busiest wall-time frame is on CPU (one thread crunching) while ten
 * threads wait in ten places: the rule names the top off-CPU frame. */
static void test_wall_waiting_skips_cpu_bound(void **state)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples,wall-time,wall-samples");
    fx_add(p, "main;crunch", (int64_t[]){5 * SEC, 500, 5 * SEC, 500}, 1, NULL);
    fx_add(p, "worker;queue.get", (int64_t[]){0, 0, 7 * SEC / 2, 350}, 2, NULL);
    char stack[64];
    for (int i = 0; i < 9; i++) {
        snprintf(stack, sizeof stack, "worker;wait_%d", i);
        fx_add(p, stack, (int64_t[]){0, 0, 3 * SEC, 300}, 3 + i, NULL);
    }
    cp_pprof *pp = fx_decoded(p, 10 * SEC);
    ex_analysis a;
    const ex_finding *f = run(pp, 10 * SEC, &a, EX_RULE_WAIT);
    assert_non_null(f);
    assert_string_equal(f->function, "queue.get");
    cp_pprof_free(pp);
}

static void test_deep_recursion(void **state)
{
    char stack[4096] = "main";
    for (int i = 0; i < 40; i++) strcat(stack, ";walk");
    strcat(stack, ";visit");
    cp_profile *p = fx_new("cpu-time,cpu-samples");
    fx_add(p, stack, (int64_t[]){SEC / 10, 10}, 1, NULL);
    fx_add(p, "main;other", (int64_t[]){9 * SEC / 10, 90}, 1, NULL);
    cp_pprof *pp = fx_decoded(p, SEC);
    ex_analysis a;
    const ex_finding *f = run(pp, SEC, &a, EX_RULE_RECURSION);
    assert_non_null(f);
    assert_string_equal(f->function, "walk");
    assert_int_equal(f->count, 40);
    assert_true(fabs(f->share - 0.1) < 1e-9);
    cp_pprof_free(pp);
}

/* One sample at main;fn with one string label key=val. */
static void add_labelled(cp_profile *p, const char *fn, const int64_t *values, const char *key, const char *val)
{
    cp_frame frames[2] = {{fn, NULL, "app.py", 1}, {"main", NULL, "app.py", 1}};
    cp_label label = {key, val, 0, NULL};
    assert_int_equal(cp_profile_add(p, frames, 2, values, &label, 1), CP_OK);
}

static void test_one_lock(void **state)
{
    /* 4.5 s of the 6 s of wait (75%) on one lock, in 10 s */
    cp_profile *p = fx_new("lock-acquire-wait,lock-acquire");
    add_labelled(p, "path_a", (int64_t[]){9 * SEC / 2, 300}, "lock name", "app.py:4:lock_a");
    add_labelled(p, "path_b", (int64_t[]){3 * SEC / 2, 100}, "lock name", "app.py:7:store.guard");
    cp_pprof *pp = fx_decoded(p, 10 * SEC);
    ex_analysis a;
    const ex_finding *f = run(pp, 10 * SEC, &a, EX_RULE_ONE_LOCK);
    assert_non_null(f);
    assert_string_equal(f->function, "app.py:4:lock_a");
    assert_true(fabs(f->share - 0.75) < 1e-9);
    assert_true(f->warning); /* 0.6 threads blocked on average */
    cp_pprof_free(pp);
    /* evenly spread over two locks: quiet */
    p = fx_new("lock-acquire-wait,lock-acquire");
    add_labelled(p, "path_a", (int64_t[]){3 * SEC, 300}, "lock name", "a");
    add_labelled(p, "path_b", (int64_t[]){3 * SEC, 100}, "lock name", "b");
    pp = fx_decoded(p, 10 * SEC);
    assert_null(run(pp, 10 * SEC, &a, EX_RULE_ONE_LOCK));
    cp_pprof_free(pp);
}

static void test_exception_rate(void **state)
{
    /* 4000 exceptions in 2 s = 2000/s, 75% IllegalStateException */
    cp_profile *p = fx_new("exception-samples");
    add_labelled(p, "throwState", (int64_t[]){3000}, "exception type", "java.lang.IllegalStateException");
    add_labelled(p, "throwApp", (int64_t[]){1000}, "exception type", "AppException");
    cp_pprof *pp = fx_decoded(p, 2 * SEC);
    ex_analysis a;
    const ex_finding *f = run(pp, 2 * SEC, &a, EX_RULE_EXCEPTIONS);
    assert_non_null(f);
    assert_string_equal(f->function, "java.lang.IllegalStateException");
    assert_true(fabs(f->value - 2000) < 1e-6);
    assert_true(fabs(f->share - 0.75) < 1e-9);
    assert_true(f->warning);
    cp_pprof_free(pp);
    /* 50 exceptions/s: quiet */
    p = fx_new("exception-samples");
    add_labelled(p, "rare", (int64_t[]){100}, "exception type", "KeyError");
    pp = fx_decoded(p, 2 * SEC);
    assert_null(run(pp, 2 * SEC, &a, EX_RULE_EXCEPTIONS));
    cp_pprof_free(pp);
}

static void test_json_output(void **state)
{
    cp_profile *p = fx_new("cpu-time,cpu-samples");
    fx_add(p, "main;hot", (int64_t[]){SEC, 100}, 1, NULL);
    cp_pprof *pp = fx_decoded(p, SEC);
    ex_analysis a;
    assert_int_equal(ex_analyze(pp, SEC, &a), CP_OK);
    cp_buf b;
    ex_jw w;
    cp_buf_init(&b, 0);
    ex_jw_init(&w, &b);
    ex_analysis_write(&a, &w);
    assert_int_equal(ex_buf_cstr(&b), 0);
    const char *s = (const char *)b.data;
    assert_non_null(strstr(s, "\"rule\":\"hot-function\",\"severity\":\"warning\""));
    assert_non_null(strstr(s, "\"evidence\":{\"function\":\"hot\",\"file\":\"app.py\",\"type\":\"cpu-time\",\"share\":1"));
    assert_non_null(strstr(s, "{\"id\":\"high-alloc-rate\",\"title\":\"High allocation rate\",\"checked\":false,"
                              "\"why\":\"no alloc-space in this profile\"}"));
    cp_buf_free(&b);
    cp_pprof_free(pp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthy_profile_is_quiet), cmocka_unit_test(test_hot_function),
        cmocka_unit_test(test_high_alloc_rate),          cmocka_unit_test(test_gc_time),
        cmocka_unit_test(test_lock_wait),                cmocka_unit_test(test_many_threads),
        cmocka_unit_test(test_wall_waiting),
        cmocka_unit_test(test_wall_waiting_skips_cpu_bound),
        cmocka_unit_test(test_deep_recursion),
        cmocka_unit_test(test_json_output),
        cmocka_unit_test(test_one_lock), cmocka_unit_test(test_exception_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
