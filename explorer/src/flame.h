/*
 * flame.h — call trees and function tables computed from decoded pprof.
 *
 * One ex_flame holds a tree of frames merged by (function name, file)
 * along the call path, plus a per-function table (self, total counted once
 * per sample). It has two value columns so the same structure serves a
 * single profile (column 0), an aggregate of many profiles (all added to
 * column 0) and a comparison (a in column 0, b in column 1).
 */
#ifndef EX_FLAME_H
#define EX_FLAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <regex.h>

#include "contprof.h"
#include "json.h"

typedef struct ex_flame ex_flame;

/* A frame of the table: name/file owned by the flame. */
typedef struct ex_frow {
    const char *name, *file;
    const char *kind; /* mapping file of its first location ("[python]", a library…), "" if none */
    double self[2], total[2];
} ex_frow;

/* New empty flame; max_nodes caps the tree (0 = 2,000,000): values that
 * would need more nodes go to a "[node limit reached]" child of the root,
 * so totals stay exact. NULL when out of memory. */
ex_flame *ex_flame_new(size_t max_nodes);
/* Free f and every string it copied; NULL is ignored. */
void ex_flame_free(ex_flame *f);

/* Add every sample's value of sample type type_idx of pp, multiplied by
 * scale, to column col (0 or 1). The flame copies the strings it keeps;
 * pp may be freed afterwards. CP_ENOMEM on allocation failure. */
int ex_flame_add(ex_flame *f, const cp_pprof *pp, int type_idx, int col, double scale);

/* What to keep of a profile, like pprof's -focus/-ignore/-hide and
 * -tagfocus: regular expressions (POSIX extended, compiled by the caller)
 * over function names, and label filters. NULL / 0 = no filter. */
#define EX_FLAME_MAX_LABEL_FILTERS 4
typedef struct ex_flame_filter {
    const regex_t *focus;  /* keep samples with a frame matching          */
    const regex_t *ignore; /* drop samples with a frame matching          */
    const regex_t *hide;   /* remove matching frames from the stacks      */
    size_t nlabels;        /* keep samples whose label `key` matches `re` */
    struct { const char *key; const regex_t *re; } labels[EX_FLAME_MAX_LABEL_FILTERS];
    bool has_time;         /* keep samples whose timestamp label is in    */
    int64_t time_from, time_to; /* [time_from, time_to) (Unix ns)         */
} ex_flame_filter;

/* A sample's timestamp (Unix ns) from its "end_timestamp_ns" (dd-trace)
 * or "timestamp_ns" label; false when it has none. */
bool ex_sample_time(const cp_pprof_sample *s, int64_t *ns);

/* Time-ordered view: the values of type_idx summed into nbuckets equal
 * spans between the first and last sample timestamps. *out (nbuckets
 * doubles, caller frees) and the span; CP_OK, CP_EINVAL when no sample
 * has a timestamp, CP_ENOMEM. */
int ex_flame_timeline(const cp_pprof *pp, int type_idx, size_t nbuckets, const ex_flame_filter *flt,
                      double **out, int64_t *from_ns, int64_t *bucket_ns);

/* ex_flame_add with a filter (flt may be NULL). */
int ex_flame_add_filtered(ex_flame *f, const cp_pprof *pp, int type_idx, int col, double scale,
                          const ex_flame_filter *flt);

/* Sandwich (pprof's peek, speedscope's sandwich) of function (name, file):
 * callees gets each sample's stack from the function's outermost
 * occurrence down (the function is the root), callers the stack from the
 * function up to the thread's root, reversed (the function is the root,
 * its callers below). Both flames must be new. CP_OK or CP_ENOMEM. */
int ex_flame_sandwich(ex_flame *callers, ex_flame *callees, const cp_pprof *pp, int type_idx,
                      const char *name, const char *file, const ex_flame_filter *flt);

/* Per source line of function (name, file): self (the line was the leaf)
 * and total (the line was on the stack, once per sample). */
typedef struct ex_line_cost {
    int64_t line;
    double self, total;
} ex_line_cost;
/* *out (malloc'd, sorted by line, caller frees) and *n. CP_OK / CP_ENOMEM. */
int ex_flame_lines(const cp_pprof *pp, int type_idx, const char *name, const char *file,
                   const ex_flame_filter *flt, ex_line_cost **out, size_t *n);

/* Root total of a column. */
double ex_flame_total(const ex_flame *f, int col);

/* Write the tree as the API's "root" value (see API.md); a node whose
 * frames carry a mapping (frame kind) has "kind". ncols 1: single
 * ("self","total"); 2: comparison ("a","b","a_self","b_self"). Nodes whose
 * largest |total| is below min_frac of the root's are pruned; at most
 * max_out nodes are written. *pruned receives how many were left out. */
void ex_flame_write_tree(const ex_flame *f, ex_jw *w, int ncols, double min_frac, size_t max_out,
                         size_t *pruned);
/* Nodes in the tree, the root and any "[node limit reached]" included. */
size_t ex_flame_node_count(const ex_flame *f);

/* The per-function table, in key order. *n receives its length; the rows
 * are owned by f and valid until f changes. */
const ex_frow *ex_flame_rows(const ex_flame *f, size_t *n);

/* Write the table rows (sorted by self of col 0 desc, or by |b-a| self for
 * ncols 2), at most limit of them, as the API's "rows" value. */
void ex_flame_write_rows(const ex_flame *f, ex_jw *w, int ncols, size_t limit);

#endif /* EX_FLAME_H */
