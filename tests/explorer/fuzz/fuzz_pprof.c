/*
 * fuzz_pprof.c — libFuzzer target: arbitrary bytes through the core's
 * cp_pprof_decode and, when they decode, through everything the explorer
 * computes from a decoded profile (measures, flame tree + table, analysis,
 * JSON output, the viewer's sandwich / lines / labels / timeline and the
 * merge of attachments), since all of it consumes untrusted uploads.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "analysis.h"
#include "contprof.h"
#include "flame.h"
#include "json.h"
#include "measures.h"
#include "pprof_merge.h"

/* The viewer's views of the profile's first function, and a merge of the
 * profile with itself decoded again (what a two-attachment upload does). */
static void viewer(const cp_pprof *pp, ex_jw *w)
{
    if (pp->n_sample_types == 0) return;
    const char *fn = pp->n_functions && pp->functions[0].name ? pp->functions[0].name : "main";
    const char *file = pp->n_functions && pp->functions[0].filename ? pp->functions[0].filename : "";
    ex_flame *up = ex_flame_new(5000), *down = ex_flame_new(5000);
    if (up && down) ex_flame_sandwich(up, down, pp, 0, fn, file, NULL);
    ex_flame_free(up);
    ex_flame_free(down);
    ex_line_cost *lines = NULL;
    size_t n = 0;
    if (ex_flame_lines(pp, 0, fn, file, NULL, &lines, &n) == CP_OK) free(lines);
    double *tl = NULL;
    int64_t from, width;
    if (ex_flame_timeline(pp, 0, 50, NULL, &tl, &from, &width) == CP_OK) free(tl);
    ex_labels_write(pp, w, 10);
    cp_buf merged;
    cp_buf_init(&merged, 0);
    ex_merge_part parts[2] = {{"a.pprof", pp}, {"b.pprof", pp}};
    cp_pprof *back = NULL;
    if (ex_pprof_merge(parts, 2, &merged) == CP_OK) {
        /* what the explorer writes it must read back */
        if (cp_pprof_decode(merged.data, merged.len, 64u << 20, &back) == CP_ECORRUPT) __builtin_trap();
        if (back) cp_pprof_free(back);
    }
    cp_buf_free(&merged);
}

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
    viewer(pp, &w);
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
