/*
 * analysis.h — heuristics that point at likely problems in one profile,
 * each a documented rule (explorer/ANALYSIS.md) that reports the evidence
 * that made it fire.
 */
#ifndef EX_ANALYSIS_H
#define EX_ANALYSIS_H

#include <stdbool.h>
#include <stdint.h>

#include "contprof.h"
#include "json.h"

/* Thresholds (ANALYSIS.md explains each). */
#define EX_HOT_SHARE 0.20            /* one function's self share of CPU      */
#define EX_HOT_MIN_SAMPLES 20        /* cpu samples needed to judge           */
#define EX_ALLOC_RATE_BPS (100.0 * 1024 * 1024) /* bytes/s                    */
#define EX_GC_SHARE 0.10             /* share of CPU (or wall) in GC          */
#define EX_LOCK_SHARE 0.20           /* share of wall in lock waits           */
#define EX_LOCK_THREADS 0.5          /* avg threads blocked (lock-acquire-wait) */
#define EX_MANY_THREADS 100          /* distinct sampled threads              */
#define EX_WAIT_CPU_RATIO 0.20       /* cpu-time / wall-time below this       */
#define EX_WAIT_MIN_WALL_S 1.0       /* wall seconds needed to judge          */
#define EX_RECURSION_DEPTH 32        /* same function this often in a stack   */
#define EX_RECURSION_SHARE 0.05      /* of the profile's samples              */

#define EX_ONE_LOCK_SHARE 0.50       /* one lock name's share of lock wait    */
#define EX_ONE_LOCK_THREADS 0.1      /* avg threads blocked, to judge         */
#define EX_EXC_RATE 100.0            /* exceptions/s (exception-samples)      */

enum { EX_RULE_HOT, EX_RULE_ALLOC, EX_RULE_GC, EX_RULE_LOCK, EX_RULE_THREADS, EX_RULE_WAIT,
       EX_RULE_RECURSION, EX_RULE_ONE_LOCK, EX_RULE_EXCEPTIONS, EX_RULE__COUNT };

typedef struct ex_finding {
    int rule;
    bool warning;             /* else info */
    char title[200];
    char detail[400];
    /* evidence; NULL/NAN/-1 = not part of it */
    char function[256], file[256];
    const char *type;         /* static sample type name */
    double share, value;
    const char *unit;         /* of value */
    int64_t count;
    double threshold;
} ex_finding;

typedef struct ex_analysis {
    size_t n;
    ex_finding findings[EX_RULE__COUNT];
    bool checked[EX_RULE__COUNT];
    const char *why[EX_RULE__COUNT];  /* reason a rule could not be checked */
} ex_analysis;

/* Run every rule on pp (duration_ns: the profile's wall duration).
 * Returns CP_OK or CP_ENOMEM. */
int ex_analyze(const cp_pprof *pp, int64_t duration_ns, ex_analysis *out);

/* The rule's id ("hot-function", ...) and one-line title. */
const char *ex_rule_id(int rule);
const char *ex_rule_title(int rule);

/* {"findings":[...],"rules":[...]} as in API.md. */
void ex_analysis_write(const ex_analysis *a, ex_jw *w);

#endif /* EX_ANALYSIS_H */
