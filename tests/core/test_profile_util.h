/*
 * test_profile_util.h — helpers shared by the profile/pprof core tests.
 * Header-only (static functions); include after the cmocka headers.
 */
#ifndef TEST_PROFILE_UTIL_H
#define TEST_PROFILE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "contprof.h"

static const cp_sample_type tp_cpu_types[2] = {
    {"cpu-time", "nanoseconds"},
    {"cpu-samples", "count"},
};

/* A cpu-time + cpu-samples profile; fails the test if it cannot be made. */
static inline cp_profile *tp_new_cpu(const cp_limits *lim)
{
    cp_profile *p = cp_profile_new(tp_cpu_types, 2, lim);
    assert_non_null(p);
    return p;
}

/* Encode p (gzip'd or not) and decode it back; fails the test on error. */
static inline cp_pprof *tp_roundtrip(const cp_profile *p, bool gzip)
{
    cp_buf b;
    cp_buf_init(&b, 0);
    assert_int_equal(cp_profile_encode(p, gzip, &b), CP_OK);
    if (gzip) {
        assert_true(b.len >= 2);
        assert_int_equal(b.data[0], 0x1f);
        assert_int_equal(b.data[1], 0x8b);
    }
    cp_pprof *pp = NULL;
    assert_int_equal(cp_pprof_decode(b.data, b.len, 0, &pp), CP_OK);
    cp_buf_free(&b);
    assert_non_null(pp);
    return pp;
}

/* Name of the function of the location's first line ("" if none). */
static inline const char *tp_loc_name(const cp_pprof *pp, uint64_t loc_id)
{
    const cp_pprof_location *l = cp_pprof_location_by_id(pp, loc_id);
    assert_non_null(l);
    if (l->nlines == 0)
        return "";
    const cp_pprof_function *f = cp_pprof_function_by_id(pp, l->lines[0].function_id);
    assert_non_null(f);
    return f->name;
}

/* Index of the decoded sample whose leaf function is named leaf, or -1. */
static inline long tp_find_sample(const cp_pprof *pp, const char *leaf)
{
    for (size_t i = 0; i < pp->n_samples; i++)
        if (pp->samples[i].nlocs && strcmp(tp_loc_name(pp, pp->samples[i].location_ids[0]), leaf) == 0)
            return (long)i;
    return -1;
}

/* Sum of value column vi over all decoded samples. */
static inline int64_t tp_total(const cp_pprof *pp, size_t vi)
{
    int64_t t = 0;
    for (size_t i = 0; i < pp->n_samples; i++)
        t += pp->samples[i].values[vi];
    return t;
}

#endif /* TEST_PROFILE_UTIL_H */
