/*
 * rate_sampler.c — adaptive Poisson sampling of weighted events (see
 * cp_rate_sampler in contprof.h). Used by the front ends' lock and
 * exception profilers; nothing here blocks or allocates. The shared fields
 * are plain in the public header (it has no C11 atomics) and accessed
 * with the compiler's __atomic builtins here.
 */
#include <math.h>
#include <time.h>

#include "contprof.h"

#define WINDOW_NS 250000000LL

static double load_interval(cp_rate_sampler *rs)
{
    double v;
    __atomic_load(&rs->interval, &v, __ATOMIC_RELAXED);
    return v;
}

static void store_interval(cp_rate_sampler *rs, double v)
{
    __atomic_store(&rs->interval, &v, __ATOMIC_RELAXED);
}

void cp_rate_init(cp_rate_sampler *rs, double min_interval, double per_s)
{
    rs->min_interval = min_interval > 0 ? min_interval : 1;
    rs->per_s = per_s > 0 ? per_s : 1;
    store_interval(rs, rs->min_interval);
    __atomic_store_n(&rs->win_start_ns, cp_now_ns(), __ATOMIC_RELAXED);
    __atomic_store_n(&rs->win_weight, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&rs->win_samples, 0, __ATOMIC_RELAXED);
}

static double unit(cp_rate_state *st)
{
    if (!st->rng)
        st->rng = ((uint64_t)(uintptr_t)st ^ (uint64_t)cp_now_ns()) * 0x9E3779B97F4A7C15ull | 1;
    st->rng ^= st->rng >> 12;
    st->rng ^= st->rng << 25;
    st->rng ^= st->rng >> 27;
    uint64_t r = st->rng * 0x2545F4914F6CDD1Dull;
    return ((double)(r >> 11) + 0.5) / 9007199254740992.0; /* (0,1) */
}

/* Close the window when it is old enough: one thread wins the CAS and
 * sets the interval from the weight rate it saw. */
static void adapt(cp_rate_sampler *rs)
{
    int64_t n = __atomic_add_fetch(&rs->win_samples, 1, __ATOMIC_RELAXED);
    int64_t now = cp_now_ns(), start = __atomic_load_n(&rs->win_start_ns, __ATOMIC_RELAXED);
    if (now <= start || (now - start < WINDOW_NS && (double)n < rs->per_s / 4) ||
        !__atomic_compare_exchange_n(&rs->win_start_ns, &start, now, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&rs->win_samples, 0, __ATOMIC_RELAXED);
    double rate = (double)__atomic_exchange_n(&rs->win_weight, 0, __ATOMIC_RELAXED) * 1e9 / (double)(now - start);
    double iv = rate / rs->per_s;
    store_interval(rs, iv > rs->min_interval ? iv : rs->min_interval);
}

/* x rounded up or down at random so that the mean is x (counts are small
 * integers, so plain rounding would bias them). */
static int64_t round_unbiased(cp_rate_state *st, double x)
{
    double f = floor(x);
    return (int64_t)f + (unit(st) < x - f ? 1 : 0);
}

bool cp_rate_hit(cp_rate_sampler *rs, cp_rate_state *st, int64_t w, int64_t *value, int64_t *count)
{
    if (w <= 0)
        return false;
    __atomic_fetch_add(&rs->win_weight, w, __ATOMIC_RELAXED);
    double iv = load_interval(rs);
    if (st->drawn != iv) { /* memoryless: redrawing keeps every event's odds exact */
        st->drawn = iv;
        st->left = -log(unit(st)) * iv;
    }
    st->left -= (double)w;
    if (st->left > 0)
        return false;
    double p = 1.0 - exp(-(double)w / iv);
    *value = round_unbiased(st, (double)w / p);
    *count = round_unbiased(st, 1.0 / p);
    st->drawn = 0; /* draw afresh next time */
    adapt(rs);
    return true;
}

/* A countdown of n events ends at the next sampled one: P(n > k) is
 * exp(-k / interval), as for cp_rate_hit's exponential countdown. */
static void draw_units(cp_rate_sampler *rs, cp_rate_state *st, int64_t *skip)
{
    double iv = load_interval(rs);
    double n = ceil(-log(unit(st)) * iv);
    st->drawn = iv;
    st->left = n < 1 ? 1 : n > 1e15 ? 1e15 : n;
    *skip = (int64_t)st->left;
}

bool cp_rate_unit_hit(cp_rate_sampler *rs, cp_rate_state *st, int64_t *skip, int64_t *value, int64_t *count)
{
    if (*skip < 0 || st->drawn <= 0) { /* no countdown yet: this event is its first */
        draw_units(rs, st, skip);
        if (--*skip > 0)
            return false;
    }
    __atomic_fetch_add(&rs->win_weight, (int64_t)st->left, __ATOMIC_RELAXED);
    double p = 1.0 - exp(-1.0 / st->drawn);
    *count = round_unbiased(st, 1.0 / p);
    *value = *count;
    adapt(rs);
    draw_units(rs, st, skip);
    return true;
}
