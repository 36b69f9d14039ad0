/*
 * test_rate_sampler.c — cp_rate_sampler: sampled weights sum to the true
 * weight and count (unbiased) while the interval adapts, a 3:1 mix of two
 * event kinds keeps its ratio, and the sample rate follows per_s.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "contprof.h"

/* Busy for about ns, so that windows close on real time. */
static void spin_ns(int64_t ns)
{
    int64_t end = cp_now_ns() + ns;
    while (cp_now_ns() < end) {
    }
}

static void test_counts_unbiased(void **state)
{
    (void)state;
    cp_rate_sampler rs;
    cp_rate_state st = {0};
    cp_rate_init(&rs, 1.0, 20000);
    int64_t est[2] = {0, 0}, samples = 0;
    const int64_t n = 2000000;
    for (int64_t i = 0; i < n; i++) {
        int64_t v, c;
        if (cp_rate_hit(&rs, &st, 1, &v, &c)) {
            est[i % 4 == 3] += c;
            samples++;
        }
        if (i % 20000 == 0)
            spin_ns(1000000); /* ~ 2M events over ~100 ms+ */
    }
    double total = (double)(est[0] + est[1]);
    double share = 100.0 * (double)est[0] / total;
    assert_true(fabs(total - (double)n) < 0.1 * (double)n);
    assert_true(share > 70 && share < 80);
    assert_true(samples > 20 && samples < n / 10); /* the interval grew */
}

static void test_weights_unbiased(void **state)
{
    (void)state;
    cp_rate_sampler rs;
    cp_rate_state st = {0};
    cp_rate_init(&rs, 10000.0, 100000);
    double truth = 0, est = 0, count = 0;
    for (int i = 0; i < 400000; i++) {
        int64_t w = 1000 + (i % 7) * 30000, v, c; /* 1 us .. 181 us waits */
        truth += (double)w;
        if (cp_rate_hit(&rs, &st, w, &v, &c)) {
            est += (double)v;
            count += (double)c;
        }
        if (i % 4000 == 0)
            spin_ns(1000000);
    }
    assert_true(fabs(est - truth) < 0.05 * truth);
    assert_true(fabs(count - 400000) < 0.1 * 400000);
}

/* The countdown form: the same unbiased counts and 3:1 mix, a sample rate
 * that follows per_s, and a first event that may itself be sampled. */
static void test_unit_countdown_unbiased(void **state)
{
    (void)state;
    cp_rate_sampler rs;
    cp_rate_state st = {0};
    cp_rate_init(&rs, 1.0, 20000);
    int64_t est[2] = {0, 0}, samples = 0, skip = 0;
    const int64_t n = 2000000;
    for (int64_t i = 0; i < n; i++) {
        int64_t v, c;
        if (--skip <= 0 && cp_rate_unit_hit(&rs, &st, &skip, &v, &c)) {
            assert_int_equal(v, c);
            est[i % 4 == 3] += c;
            samples++;
        }
        assert_true(skip >= 0);
        if (i % 20000 == 0)
            spin_ns(1000000);
    }
    double total = (double)(est[0] + est[1]);
    double share = 100.0 * (double)est[0] / total;
    assert_true(fabs(total - (double)n) < 0.1 * (double)n);
    assert_true(share > 70 && share < 80);
    assert_true(samples > 20 && samples < n / 10);

    /* At the minimum interval (1) most events are sampled. */
    cp_rate_sampler rs2;
    cp_rate_state st2 = {0};
    cp_rate_init(&rs2, 1.0, 1e9);
    int64_t hits = 0, sum = 0;
    skip = 0;
    for (int i = 0; i < 10000; i++) {
        int64_t v, c;
        if (--skip <= 0 && cp_rate_unit_hit(&rs2, &st2, &skip, &v, &c)) {
            hits++;
            sum += c;
        }
    }
    assert_true(hits > 5500 && hits < 7000); /* p = 1 - 1/e */
    assert_true(sum > 9000 && sum < 11000);
}

static void test_nonpositive_weight_ignored(void **state)
{
    (void)state;
    cp_rate_sampler rs;
    cp_rate_state st = {0};
    cp_rate_init(&rs, 1.0, 100);
    int64_t v = -1, c = -1;
    assert_false(cp_rate_hit(&rs, &st, 0, &v, &c));
    assert_int_equal(v, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_unbiased),
        cmocka_unit_test(test_weights_unbiased),
        cmocka_unit_test(test_unit_countdown_unbiased),
        cmocka_unit_test(test_nonpositive_weight_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
