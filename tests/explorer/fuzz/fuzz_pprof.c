/*
 * fuzz_pprof.c — libFuzzer target: arbitrary bytes through the core's
 * cp_pprof_decode and, when they decode, through everything the explorer
 * computes from a decoded profile (measures, flame tree + table, analysis,
 * JSON output), since all of it consumes untrusted uploads.
 */
#include <stddef.h>
#include <stdint.h>

#include "analysis.h"
#include "contprof.h"
#include "flame.h"
#include "json.h"
#include "measures.h"

static void explore(const cp_pprof *pp)
{
    ex_measures m;
    if (ex_measures_compute(pp, 1000000000, &m) == CP_OK) ex_measures_free(&m);
    ex_analysis a;
    cp_buf b;
    ex_jw w;
    cp_buf_init(&b, 0);
    ex_jw_init(&w, &b);
    if (ex_analyze(pp, 1000000000, &a) == CP_OK) ex_analysis_write(&a, &w);
    for (size_t t = 0; t < pp->n_sample_types && t < 4; t++) {
        ex_flame *f = ex_flame_new(5000);
        if (f && ex_flame_add(f, pp, (int)t, (int)(t & 1), 1.0) == CP_OK) {
            size_t pruned;
            ex_flame_write_tree(f, &w, 2, 0.001, 2000, &pruned);
            ex_flame_write_rows(f, &w, 1 + (int)(t & 1), 100);
        }
        ex_flame_free(f);
    }
    /* the writer must never run out of nesting on a decoded profile */
    if (w.err == CP_ERANGE) __builtin_trap();
    cp_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cp_pprof *pp = NULL;
    /* a small inflate cap keeps each run fast and exercises CP_ETOOBIG */
    if (cp_pprof_decode(data, size, 4u << 20, &pp) != CP_OK) return 0;
    explore(pp);
    cp_pprof_free(pp);
    return 0;
}
