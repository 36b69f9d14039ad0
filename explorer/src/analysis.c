/*
 * analysis.c — the heuristics of analysis.h. Each rule is one function
 * that either records why it could not run (missing data) or decides from
 * numbers it also reports as evidence. Thresholds live in analysis.h and
 * are explained in explorer/ANALYSIS.md.
 */
#include "analysis.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flame.h"
#include "measures.h"

static const struct { const char *id, *title; } RULES[EX_RULE__COUNT] = {
    {"hot-function", "One function holds a large share of CPU"},
    {"high-alloc-rate", "High allocation rate"},
    {"gc-time", "Much time in garbage collection"},
    {"lock-wait", "Much time waiting for locks"},
    {"many-threads", "Many threads"},
    {"wall-waiting", "Wall time dominated by waiting"},
    {"deep-recursion", "Deep recursion"},
    {"one-lock", "One lock accounts for most lock wait"},
    {"exception-rate", "Exceptions thrown at a high rate"},
};

static const char *const GC_FRAMES[] = {"GC_active", "gc_collect", "gc.collect", "[GC", "GarbageCollect",
                                        "<gc>", NULL};
static const char *const GC_THREADS[] = {"GC Thread", "G1 ", "Parallel GC", "ZGC", "Shenandoah", "GC task",
                                         NULL};
static const char *const LOCK_FRAMES[] = {"Lock.acquire", "lock.acquire", "Condition.wait", "Semaphore.acquire",
                                          "LockSupport.park", "Unsafe.park", "AbstractQueuedSynchronizer.acquire",
                                          "Object.wait", "pthread_mutex_lock", "MonitorEnter", "monitorenter",
                                          "ReentrantLock.lock", NULL};

const char *ex_rule_id(int rule) { return RULES[rule].id; }
const char *ex_rule_title(int rule) { return RULES[rule].title; }

static bool contains_any(const char *s, const char *const *pats, bool prefix)
{
    for (; s && *pats; pats++)
        if (prefix ? strncmp(s, *pats, strlen(*pats)) == 0 : strstr(s, *pats) != NULL) return true;
    return false;
}

static const char *fn_name(const cp_pprof *pp, uint64_t fid)
{
    const cp_pprof_function *f = cp_pprof_function_by_id(pp, fid);
    return f && f->name ? f->name : "";
}

/* Which functions (by index in pp->functions) match pats: computed once
 * per rule so a sample's frames cost array lookups. NULL on ENOMEM. */
static uint8_t *match_table(const cp_pprof *pp, const char *const *pats)
{
    uint8_t *hit = calloc(pp->n_functions + 1, 1);
    for (size_t i = 0; hit && i < pp->n_functions; i++) hit[i] = contains_any(pp->functions[i].name, pats, false);
    return hit;
}

static bool fn_hit(const cp_pprof *pp, const uint8_t *hit, uint64_t fid)
{
    const cp_pprof_function *f = cp_pprof_function_by_id(pp, fid);
    return f && f >= pp->functions && f < pp->functions + pp->n_functions && hit[f - pp->functions];
}

/* Does any of the first max_frames frames (leaf first) match? */
static bool frames_match(const cp_pprof *pp, const cp_pprof_sample *s, const uint8_t *hit, size_t max_frames)
{
    size_t seen = 0;
    for (size_t i = 0; i < s->nlocs && seen < max_frames; i++) {
        const cp_pprof_location *loc = cp_pprof_location_by_id(pp, s->location_ids[i]);
        for (size_t j = 0; loc && j < loc->nlines && seen < max_frames; j++, seen++)
            if (fn_hit(pp, hit, loc->lines[j].function_id)) return true;
    }
    return false;
}

static const char *label_str(const cp_pprof_sample *s, const char *key)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (s->labels[i].key && strcmp(s->labels[i].key, key) == 0) return s->labels[i].str;
    return NULL;
}

static ex_finding *add(ex_analysis *a, int rule, bool warning)
{
    ex_finding *f = &a->findings[a->n++];
    memset(f, 0, sizeof *f);
    f->rule = rule;
    f->warning = warning;
    f->share = f->value = f->threshold = NAN;
    f->count = -1;
    return f;
}

static void skip(ex_analysis *a, int rule, const char *why)
{
    a->checked[rule] = false;
    a->why[rule] = why;
}

/* Top function by self value of type t; NULL when the profile is empty. */
static const ex_frow *top_self(const cp_pprof *pp, int t, ex_flame **keep)
{
    size_t n;
    const ex_frow *best = NULL;
    *keep = ex_flame_new(0);
    if (!*keep || ex_flame_add(*keep, pp, t, 0, 1.0)) return NULL;
    const ex_frow *rows = ex_flame_rows(*keep, &n);
    for (size_t i = 1; i < n; i++)
        if (!best || rows[i].self[0] > best->self[0]) best = &rows[i];
    return best;
}

/* Share of type t's value in samples whose first max_frames frames match
 * pats or whose thread name starts with one of threads (may be NULL). */
static double share_where(const cp_pprof *pp, int t, const char *const *pats, size_t max_frames,
                          const char *const *threads)
{
    double hit = 0, all = 0;
    uint8_t *table = match_table(pp, pats);
    if (!table) return NAN;
    for (size_t i = 0; i < pp->n_samples; i++) {
        const cp_pprof_sample *s = &pp->samples[i];
        double v = (double)s->values[t];
        all += v;
        if (v != 0 && ((threads && contains_any(label_str(s, "thread name"), threads, true)) ||
                       frames_match(pp, s, table, max_frames)))
            hit += v;
    }
    free(table);
    return all > 0 ? hit / all : 0;
}

/* ---- rules ----------------------------------------------------------- */

static int rule_hot(const cp_pprof *pp, ex_analysis *a)
{
    int t = ex_type_find(pp, "cpu-time"), c = ex_type_find(pp, "cpu-samples");
    if (t < 0) { skip(a, EX_RULE_HOT, "no cpu-time in this profile"); return CP_OK; }
    if (c >= 0 && ex_type_total(pp, c) < EX_HOT_MIN_SAMPLES) { skip(a, EX_RULE_HOT, "too few CPU samples"); return CP_OK; }
    ex_flame *fl;
    const ex_frow *top = top_self(pp, t, &fl);
    double total = ex_type_total(pp, t);
    if (!fl) return CP_ENOMEM;
    if (top && total > 0 && top->self[0] / total >= EX_HOT_SHARE) {
        double share = top->self[0] / total;
        ex_finding *f = add(a, EX_RULE_HOT, share >= 0.5);
        snprintf(f->title, sizeof f->title, "%.150s uses %.0f%% of CPU time", top->name, share * 100);
        snprintf(f->detail, sizeof f->detail, "A single function holds %.1f%% of the profile's self CPU time "
                 "(threshold %.0f%%): optimising it, or calling it less, pays most.", share * 100, EX_HOT_SHARE * 100);
        snprintf(f->function, sizeof f->function, "%s", top->name);
        snprintf(f->file, sizeof f->file, "%s", top->file);
        f->type = "cpu-time"; f->share = share; f->value = top->self[0]; f->unit = "nanoseconds";
        f->threshold = EX_HOT_SHARE;
    }
    ex_flame_free(fl);
    return CP_OK;
}

static int rule_alloc(const cp_pprof *pp, int64_t dur, ex_analysis *a)
{
    int t = ex_type_find(pp, "alloc-space");
    if (t < 0) { skip(a, EX_RULE_ALLOC, "no alloc-space in this profile"); return CP_OK; }
    if (dur <= 0) { skip(a, EX_RULE_ALLOC, "profile has no duration"); return CP_OK; }
    double rate = ex_type_total(pp, t) * 1e9 / (double)dur;
    if (rate < EX_ALLOC_RATE_BPS) return CP_OK;
    ex_flame *fl;
    const ex_frow *top = top_self(pp, t, &fl);
    if (!fl) return CP_ENOMEM;
    ex_finding *f = add(a, EX_RULE_ALLOC, rate >= 4 * EX_ALLOC_RATE_BPS);
    snprintf(f->title, sizeof f->title, "Allocating %.0f MiB/s", rate / (1024 * 1024));
    snprintf(f->detail, sizeof f->detail, "The program allocates %.1f MiB per second (threshold %.0f MiB/s); "
             "the top allocation site is %.200s.", rate / (1024 * 1024), EX_ALLOC_RATE_BPS / (1024 * 1024),
             top ? top->name : "unknown");
    if (top) {
        snprintf(f->function, sizeof f->function, "%s", top->name);
        snprintf(f->file, sizeof f->file, "%s", top->file);
        f->share = ex_type_total(pp, t) > 0 ? top->self[0] / ex_type_total(pp, t) : NAN;
    }
    f->type = "alloc-space"; f->value = rate; f->unit = "bytes/s"; f->threshold = EX_ALLOC_RATE_BPS;
    ex_flame_free(fl);
    return CP_OK;
}

static void rule_gc(const cp_pprof *pp, ex_analysis *a)
{
    const char *type = "cpu-time";
    int t = ex_type_find(pp, type);
    if (t < 0) t = ex_type_find(pp, type = "wall-time");
    if (t < 0) { skip(a, EX_RULE_GC, "no cpu-time or wall-time in this profile"); return; }
    double share = share_where(pp, t, GC_FRAMES, 600, GC_THREADS);
    if (!(share >= EX_GC_SHARE)) return; /* also NAN: out of memory */
    ex_finding *f = add(a, EX_RULE_GC, share >= 2 * EX_GC_SHARE);
    snprintf(f->title, sizeof f->title, "%.0f%% of %s in garbage collection", share * 100, type);
    snprintf(f->detail, sizeof f->detail, "Samples in GC frames or GC threads hold %.1f%% of %s (threshold "
             "%.0f%%): allocate less, or tune the heap/collector.", share * 100, type, EX_GC_SHARE * 100);
    f->type = type; f->share = share; f->threshold = EX_GC_SHARE;
}

static void lock_from_wait(const cp_pprof *pp, int t, int64_t dur, ex_analysis *a)
{
    double wait = ex_type_total(pp, t), avg = dur > 0 ? wait / (double)dur : 0;
    if (avg < EX_LOCK_THREADS) return;
    ex_finding *f = add(a, EX_RULE_LOCK, avg >= 2 * EX_LOCK_THREADS);
    snprintf(f->title, sizeof f->title, "Threads wait %.1f s for locks per second", avg);
    snprintf(f->detail, sizeof f->detail, "lock-acquire-wait totals %.2f s over %.2f s: on average %.2f threads "
             "are blocked on a lock (threshold %.1f).", wait / 1e9, (double)dur / 1e9, avg, EX_LOCK_THREADS);
    f->type = "lock-acquire-wait"; f->value = wait; f->unit = "nanoseconds"; f->threshold = EX_LOCK_THREADS;
}

static void rule_lock(const cp_pprof *pp, int64_t dur, ex_analysis *a)
{
    int t = ex_type_find(pp, "lock-acquire-wait");
    if (t >= 0) { lock_from_wait(pp, t, dur, a); return; }
    t = ex_type_find(pp, "wall-time");
    if (t < 0) { skip(a, EX_RULE_LOCK, "no lock-acquire-wait or wall-time in this profile"); return; }
    double share = share_where(pp, t, LOCK_FRAMES, 4, NULL);
    if (!(share >= EX_LOCK_SHARE)) return;
    ex_finding *f = add(a, EX_RULE_LOCK, share >= 2 * EX_LOCK_SHARE);
    snprintf(f->title, sizeof f->title, "%.0f%% of wall time waiting on locks", share * 100);
    snprintf(f->detail, sizeof f->detail, "Wall-time samples whose innermost frames are lock or condition waits "
             "hold %.1f%% of wall time (threshold %.0f%%).", share * 100, EX_LOCK_SHARE * 100);
    f->type = "wall-time"; f->share = share; f->threshold = EX_LOCK_SHARE;
}

static void rule_threads(const cp_pprof *pp, ex_analysis *a)
{
    int64_t n = ex_thread_count(pp);
    if (n <= 0) { skip(a, EX_RULE_THREADS, "no thread id labels in this profile"); return; }
    if (n < EX_MANY_THREADS) return;
    ex_finding *f = add(a, EX_RULE_THREADS, n >= 5 * EX_MANY_THREADS);
    snprintf(f->title, sizeof f->title, "%lld threads were sampled", (long long)n);
    snprintf(f->detail, sizeof f->detail, "%lld distinct threads appear in the samples (threshold %d): each costs "
             "memory and scheduling; consider a bounded pool.", (long long)n, EX_MANY_THREADS);
    f->count = n; f->threshold = EX_MANY_THREADS;
}

/* The function with the most off-CPU time: self wall-time minus self
 * cpu-time (a frame that is busy on CPU has most of its wall time as CPU
 * time and is not "waiting"). NULL when no function has any. */
static const ex_frow *top_waiting(const cp_pprof *pp, int w, int c, ex_flame **keep)
{
    size_t n;
    const ex_frow *best = NULL;
    *keep = ex_flame_new(0);
    if (!*keep || ex_flame_add(*keep, pp, w, 0, 1.0) || ex_flame_add(*keep, pp, c, 1, 1.0)) return NULL;
    const ex_frow *rows = ex_flame_rows(*keep, &n);
    for (size_t i = 1; i < n; i++) {
        double off = rows[i].self[0] - rows[i].self[1];
        if (off > 0 && (!best || off > best->self[0] - best->self[1])) best = &rows[i];
    }
    return best;
}

static int rule_wait(const cp_pprof *pp, ex_analysis *a)
{
    int w = ex_type_find(pp, "wall-time"), c = ex_type_find(pp, "cpu-time");
    if (w < 0 || c < 0) { skip(a, EX_RULE_WAIT, "needs both cpu-time and wall-time"); return CP_OK; }
    double wall = ex_type_total(pp, w), cpu = ex_type_total(pp, c);
    if (wall < EX_WAIT_MIN_WALL_S * 1e9) { skip(a, EX_RULE_WAIT, "too little wall time sampled"); return CP_OK; }
    double ratio = cpu / wall;
    if (ratio >= EX_WAIT_CPU_RATIO) return CP_OK;
    ex_flame *fl;
    const ex_frow *top = top_waiting(pp, w, c, &fl);
    if (!fl) return CP_ENOMEM;
    ex_finding *f = add(a, EX_RULE_WAIT, false);
    snprintf(f->title, sizeof f->title, "Only %.0f%% of wall time is on CPU", ratio * 100);
    snprintf(f->detail, sizeof f->detail, "cpu-time is %.1f%% of wall-time (threshold %.0f%%): threads mostly "
             "wait (I/O, sleep, locks). Top waiting frame: %.200s.", ratio * 100, EX_WAIT_CPU_RATIO * 100,
             top ? top->name : "unknown");
    if (top) {
        snprintf(f->function, sizeof f->function, "%s", top->name);
        snprintf(f->file, sizeof f->file, "%s", top->file);
    }
    f->type = "wall-time"; f->share = ratio; f->threshold = EX_WAIT_CPU_RATIO;
    ex_flame_free(fl);
    return CP_OK;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Largest number of times one function occurs in the sample's stack. */
static size_t max_repeat(const cp_pprof *pp, const cp_pprof_sample *s, uint64_t *ids, uint64_t *which)
{
    size_t n = 0, best = 0, run = 0;
    for (size_t i = 0; i < s->nlocs && n < 4096; i++) {
        const cp_pprof_location *loc = cp_pprof_location_by_id(pp, s->location_ids[i]);
        for (size_t j = 0; loc && j < loc->nlines && n < 4096; j++) ids[n++] = loc->lines[j].function_id;
    }
    qsort(ids, n, sizeof *ids, cmp_u64);
    for (size_t i = 0; i < n; i++) {
        run = (i > 0 && ids[i] == ids[i - 1]) ? run + 1 : 1;
        if (run > best) { best = run; *which = ids[i]; }
    }
    return best;
}

static int rule_recursion(const cp_pprof *pp, ex_analysis *a)
{
    const char *type = ex_default_type(pp);
    int t = type ? cp_pprof_type_index(pp, type) : -1;
    if (t < 0) { skip(a, EX_RULE_RECURSION, "profile has no samples"); return CP_OK; }
    uint64_t *ids = malloc(4096 * sizeof *ids), fid = 0, best_fid = 0;
    if (!ids) return CP_ENOMEM;
    double hit = 0, all = 0;
    size_t deepest = 0;
    for (size_t i = 0; i < pp->n_samples; i++) {
        double v = (double)pp->samples[i].values[t];
        size_t r = max_repeat(pp, &pp->samples[i], ids, &fid);
        all += v;
        if (r >= EX_RECURSION_DEPTH) hit += v;
        if (r > deepest) { deepest = r; best_fid = fid; }
    }
    free(ids);
    if (all <= 0 || hit / all < EX_RECURSION_SHARE) return CP_OK;
    ex_finding *f = add(a, EX_RULE_RECURSION, false);
    const char *fn = fn_name(pp, best_fid);
    snprintf(f->function, sizeof f->function, "%s", fn);
    snprintf(f->title, sizeof f->title, "%.150s recurses %zu levels deep", fn, deepest);
    snprintf(f->detail, sizeof f->detail, "%.1f%% of %s is in stacks where one function repeats at least %d "
             "times (deepest: %zu); deep recursion risks stack overflow and is often slower than a loop.",
             hit / all * 100, type, EX_RECURSION_DEPTH, deepest);
    f->type = type; f->share = hit / all; f->count = (int64_t)deepest; f->threshold = EX_RECURSION_DEPTH;
    return CP_OK;
}

/* The value of label key with the largest total of type t: its total goes
 * to *top, the sum over every sample to *all. NULL when none is labelled. */
static const char *top_label(const cp_pprof *pp, int t, const char *key, double *top, double *all)
{
    const char **names = calloc(pp->n_samples + 1, sizeof *names);
    double *sums = calloc(pp->n_samples + 1, sizeof *sums);
    size_t n = 0;
    const char *best = NULL;
    *top = *all = 0;
    for (size_t i = 0; names && sums && i < pp->n_samples; i++) {
        double v = (double)pp->samples[i].values[t];
        const char *name = label_str(&pp->samples[i], key);
        *all += v;
        if (!name || v == 0) continue;
        size_t j = 0;
        while (j < n && strcmp(names[j], name) != 0) j++;
        if (j == n) names[n++] = name;
        sums[j] += v;
        if (sums[j] > *top) { *top = sums[j]; best = names[j]; }
    }
    free(names);
    free(sums);
    return best;
}

static void rule_one_lock(const cp_pprof *pp, int64_t dur, ex_analysis *a)
{
    int t = cp_pprof_type_index(pp, "lock-acquire-wait");
    if (t < 0) { skip(a, EX_RULE_ONE_LOCK, "no lock-acquire-wait in this profile"); return; }
    double top, all;
    const char *lock = top_label(pp, t, "lock name", &top, &all);
    if (!lock) { skip(a, EX_RULE_ONE_LOCK, "no lock name labels in this profile"); return; }
    double share = all > 0 ? top / all : 0, threads = dur > 0 ? all / (double)dur : 0;
    if (threads < EX_ONE_LOCK_THREADS || share <= EX_ONE_LOCK_SHARE) return; /* "most": above half */
    ex_finding *f = add(a, EX_RULE_ONE_LOCK, threads >= EX_LOCK_THREADS);
    snprintf(f->title, sizeof f->title, "One lock accounts for %.0f%% of lock wait: %.150s", share * 100, lock);
    snprintf(f->detail, sizeof f->detail, "Lock %.200s holds %.2f s of the %.2f s of lock-acquire-wait (%.1f%%, "
             "threshold %.0f%%): shorten what runs under it, or split it.", lock, top / 1e9, all / 1e9,
             share * 100, EX_ONE_LOCK_SHARE * 100);
    snprintf(f->function, sizeof f->function, "%s", lock);
    f->type = "lock-acquire-wait"; f->share = share; f->value = top; f->unit = "nanoseconds";
    f->threshold = EX_ONE_LOCK_SHARE;
}

static void rule_exceptions(const cp_pprof *pp, int64_t dur, ex_analysis *a)
{
    int t = cp_pprof_type_index(pp, "exception-samples");
    if (t < 0) { skip(a, EX_RULE_EXCEPTIONS, "no exception-samples in this profile"); return; }
    if (dur <= 0) { skip(a, EX_RULE_EXCEPTIONS, "profile has no duration"); return; }
    double top, all;
    const char *type = top_label(pp, t, "exception type", &top, &all);
    double rate = all * 1e9 / (double)dur;
    if (rate < EX_EXC_RATE) return;
    ex_finding *f = add(a, EX_RULE_EXCEPTIONS, rate >= 10 * EX_EXC_RATE);
    snprintf(f->title, sizeof f->title, "%.0f exceptions/s; %.120s %.0f/s", rate, type ? type : "unknown",
             top * 1e9 / (double)dur);
    snprintf(f->detail, sizeof f->detail, "exception-samples estimate %.0f exceptions in %.2f s (threshold %.0f/s); "
             "the most thrown type, %.200s, is %.1f%% of them. Exceptions used for control flow cost a stack "
             "walk each.", all, (double)dur / 1e9, EX_EXC_RATE, type ? type : "unknown",
             all > 0 ? top / all * 100 : 0);
    if (type) snprintf(f->function, sizeof f->function, "%s", type);
    f->type = "exception-samples"; f->value = rate; f->unit = "exceptions/s"; f->threshold = EX_EXC_RATE;
    f->share = all > 0 ? top / all : NAN;
}

int ex_analyze(const cp_pprof *pp, int64_t duration_ns, ex_analysis *out)
{
    memset(out, 0, sizeof *out);
    for (int r = 0; r < EX_RULE__COUNT; r++) out->checked[r] = true;
    int rc = rule_hot(pp, out);
    if (!rc) rc = rule_alloc(pp, duration_ns, out);
    rule_gc(pp, out);
    rule_lock(pp, duration_ns, out);
    rule_threads(pp, out);
    if (!rc) rc = rule_wait(pp, out);
    if (!rc) rc = rule_recursion(pp, out);
    rule_one_lock(pp, duration_ns, out);
    rule_exceptions(pp, duration_ns, out);
    return rc;
}

static void write_evidence(const ex_finding *f, ex_jw *w)
{
    ex_jw_key(w, "evidence");
    ex_jw_obj(w);
    if (f->function[0]) ex_jw_kstr(w, "function", f->function);
    if (f->file[0]) ex_jw_kstr(w, "file", f->file);
    if (f->type) ex_jw_kstr(w, "type", f->type);
    if (!isnan(f->share)) ex_jw_knum(w, "share", f->share);
    if (!isnan(f->value)) ex_jw_knum(w, "value", f->value);
    if (f->unit) ex_jw_kstr(w, "unit", f->unit);
    if (f->count >= 0) ex_jw_kint(w, "count", f->count);
    if (!isnan(f->threshold)) ex_jw_knum(w, "threshold", f->threshold);
    ex_jw_obj_end(w);
}

void ex_analysis_write(const ex_analysis *a, ex_jw *w)
{
    ex_jw_obj(w);
    ex_jw_key(w, "findings");
    ex_jw_arr(w);
    for (size_t i = 0; i < a->n; i++) {
        const ex_finding *f = &a->findings[i];
        ex_jw_obj(w);
        ex_jw_kstr(w, "rule", RULES[f->rule].id);
        ex_jw_kstr(w, "severity", f->warning ? "warning" : "info");
        ex_jw_kstr(w, "title", f->title);
        ex_jw_kstr(w, "detail", f->detail);
        write_evidence(f, w);
        ex_jw_obj_end(w);
    }
    ex_jw_arr_end(w);
    ex_jw_key(w, "rules");
    ex_jw_arr(w);
    for (int r = 0; r < EX_RULE__COUNT; r++) {
        ex_jw_obj(w);
        ex_jw_kstr(w, "id", RULES[r].id);
        ex_jw_kstr(w, "title", RULES[r].title);
        ex_jw_key(w, "checked");
        ex_jw_bool(w, a->checked[r]);
        if (!a->checked[r]) ex_jw_kstr(w, "why", a->why[r]);
        ex_jw_obj_end(w);
    }
    ex_jw_arr_end(w);
    ex_jw_obj_end(w);
}
