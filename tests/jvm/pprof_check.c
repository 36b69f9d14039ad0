/*
 * pprof_check.c — asserts on the pprof files a JVM test run wrote.
 *
 * usage: pprof_check DIR ASSERTION...
 * Every *.pprof.gz in DIR is decoded with the core's decoder and the
 * assertions are evaluated over all of them together ("inclusive" = the
 * summed value of samples whose stack contains the frame):
 *   share TYPE A B EXPECT TOL   incl(A)/(incl(A)+incl(B)) within EXPECT±TOL
 *   min TYPE FRAME MIN          incl(FRAME) >= MIN   (FRAME "*" = any)
 *   max TYPE FRAME MAX          incl(FRAME) <= MAX
 *   label_min TYPE KEY VAL MIN  sum over samples labelled KEY=VAL >= MIN
 *                               (VAL ending in '*' matches a prefix)
 *   label_max TYPE KEY VAL MAX  ... <= MAX
 *   class_of TYPE FRAME CLASS   the "class name" with most TYPE under FRAME
 *   frame_prefix TYPE PREFIX MIN incl. value of frames starting with PREFIX
 *   under TYPE CHILD PARENT MIN value of samples where a frame named CHILD
 *                               (prefix if it ends in '*') is leafward of a
 *                               frame PARENT (e.g. libz under Deflater) >= MIN
 *   self_share TYPE A B MIN     self(A)/incl(B) >= MIN (self: A is the leaf)
 *   incl_share TYPE A MIN       incl(A)/total >= MIN
 *   kind TYPE A MAPPING MIN     of incl(A), the share whose leaf-most A location
 *                               has mapping file MAPPING (frame kind) >= MIN
 *   overloads NAME MIN          functions named NAME with distinct system names
 *   no_name_with SUBSTR         no function name contains SUBSTR
 *   profiles MIN                at least MIN profile files
 *   times MAX LO HI             every profile lasts (0, MAX] ns and starts at
 *                               a unix time in [LO, HI] ns
 *   last                        from here on, only the last profile (highest
 *                               sequence number in NAME.PID.SEQ.pprof.gz)
 * Prints each measured value; exits 1 on the first failed assertion.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contprof.h"

enum { MAX_FILES = 512 };

static cp_pprof *g_pp[MAX_FILES];
static long g_seq[MAX_FILES];
static size_t g_n;

static int load_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    cp_buf b;
    uint8_t chunk[65536];
    size_t r;
    int rc;

    if (f == NULL)
        return -1;
    cp_buf_init(&b, 0);
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
        cp_buf_append(&b, chunk, r);
    fclose(f);
    /* NAME.PID.SEQ.pprof.gz: the number just before ".pprof.gz". */
    const char *end = strstr(path, ".pprof.gz"), *p = end;
    while (p > path && p[-1] >= '0' && p[-1] <= '9')
        p--;
    g_seq[g_n] = p < end ? atol(p) : 0;
    rc = cp_pprof_decode(b.data, b.len, 0, &g_pp[g_n]);
    cp_buf_free(&b);
    if (rc != CP_OK) {
        fprintf(stderr, "pprof_check: %s: %s\n", path, cp_strerror(rc));
        return -1;
    }
    g_n++;
    return 0;
}

static int load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];

    if (d == NULL) {
        fprintf(stderr, "pprof_check: cannot open %s\n", dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL && g_n < MAX_FILES) {
        size_t len = strlen(e->d_name);
        if (len < 9 || strcmp(e->d_name + len - 9, ".pprof.gz") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (load_file(path) != 0) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return 0;
}

typedef bool (*frame_match)(const char *name, const char *want);
static bool match_exact(const char *n, const char *w) { return strcmp(w, "*") == 0 || strcmp(n, w) == 0; }
static bool match_prefix(const char *n, const char *w) { return strncmp(n, w, strlen(w)) == 0; }

static bool has_frame(const cp_pprof *pp, const cp_pprof_sample *s, const char *want, frame_match m)
{
    for (size_t i = 0; i < s->nlocs; i++) {
        const cp_pprof_location *l = cp_pprof_location_by_id(pp, s->location_ids[i]);
        for (size_t j = 0; l != NULL && j < l->nlines; j++) {
            const cp_pprof_function *f = cp_pprof_function_by_id(pp, l->lines[j].function_id);
            if (f != NULL && f->name != NULL && m(f->name, want))
                return true;
        }
    }
    return false;
}

static const char *label_str(const cp_pprof_sample *s, const char *key)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (s->labels[i].key && strcmp(s->labels[i].key, key) == 0)
            return s->labels[i].str;
    return NULL;
}

typedef bool (*sample_pred)(const cp_pprof *pp, const cp_pprof_sample *s, const char *a, const char *b);

static bool pred_frame(const cp_pprof *pp, const cp_pprof_sample *s, const char *a, const char *b)
{
    (void)b;
    return has_frame(pp, s, a, match_exact);
}

static bool pred_prefix(const cp_pprof *pp, const cp_pprof_sample *s, const char *a, const char *b)
{
    (void)b;
    return has_frame(pp, s, a, match_prefix);
}

/* Stack position (leaf = 0) of the first frame matching want, or -1. */
static long frame_pos(const cp_pprof *pp, const cp_pprof_sample *s, const char *want, frame_match m)
{
    for (size_t i = 0; i < s->nlocs; i++) {
        const cp_pprof_location *l = cp_pprof_location_by_id(pp, s->location_ids[i]);
        for (size_t j = 0; l != NULL && j < l->nlines; j++) {
            const cp_pprof_function *f = cp_pprof_function_by_id(pp, l->lines[j].function_id);
            if (f != NULL && f->name != NULL && m(f->name, want))
                return (long)i;
        }
    }
    return -1;
}

static bool pred_under(const cp_pprof *pp, const cp_pprof_sample *s, const char *child, const char *parent)
{
    size_t n = strlen(child);
    bool prefix = n > 0 && child[n - 1] == '*';
    char c[256];
    snprintf(c, sizeof c, "%.*s", (int)(prefix ? n - 1 : n), child);
    long pc = frame_pos(pp, s, c, prefix ? match_prefix : match_exact);
    long pp_ = frame_pos(pp, s, parent, match_exact);
    return pc >= 0 && pp_ > pc;
}

static bool pred_self(const cp_pprof *pp, const cp_pprof_sample *s, const char *a, const char *b)
{
    (void)b;
    const cp_pprof_location *l = s->nlocs ? cp_pprof_location_by_id(pp, s->location_ids[0]) : NULL;
    const cp_pprof_function *f = l && l->nlines ? cp_pprof_function_by_id(pp, l->lines[0].function_id) : NULL;
    return f != NULL && f->name != NULL && strcmp(f->name, a) == 0;
}

static bool pred_label(const cp_pprof *pp, const cp_pprof_sample *s, const char *k, const char *v)
{
    (void)pp;
    const char *l = label_str(s, k);
    size_t n = strlen(v);
    /* "short-*" matches every value starting with "short-". */
    if (n > 0 && v[n - 1] == '*')
        return l != NULL && strncmp(l, v, n - 1) == 0;
    return l != NULL && strcmp(l, v) == 0;
}

/* Sum of column `type` over samples matching pred, across all files. */
static int64_t total(const char *type, sample_pred pred, const char *a, const char *b)
{
    int64_t sum = 0;

    for (size_t f = 0; f < g_n; f++) {
        int ti = cp_pprof_type_index(g_pp[f], type);
        if (ti < 0)
            continue;
        for (size_t i = 0; i < g_pp[f]->n_samples; i++) {
            const cp_pprof_sample *s = &g_pp[f]->samples[i];
            if (pred(g_pp[f], s, a, b))
                sum += s->values[ti];
        }
    }
    return sum;
}

static int check_share(char **a)
{
    double x = (double)total(a[0], pred_frame, a[1], NULL);
    double y = (double)total(a[0], pred_frame, a[2], NULL);
    double share = x + y > 0 ? x / (x + y) : -1, want = atof(a[3]), tol = atof(a[4]);

    printf("share %s %s vs %s: %.3f (%.0f / %.0f), want %.2f±%.2f\n", a[0], a[1], a[2], share,
           x, x + y, want, tol);
    return share >= want - tol && share <= want + tol ? 0 : 1;
}

static int check_self_share(char **a)
{
    double x = (double)total(a[0], pred_self, a[1], NULL);
    double y = (double)total(a[0], pred_frame, a[2], NULL);
    double share = y > 0 ? x / y : -1, want = atof(a[3]);

    printf("self_share %s self(%s)/incl(%s): %.3f (%.0f / %.0f), want >= %.2f\n", a[0], a[1],
           a[2], share, x, y, want);
    return share >= want ? 0 : 1;
}

static int check_kind(char **a)
{
    double hit = 0, all = 0;

    for (size_t f = 0; f < g_n; f++) {
        const cp_pprof *pp = g_pp[f];
        int ti = cp_pprof_type_index(pp, a[0]);
        for (size_t i = 0; ti >= 0 && i < pp->n_samples; i++) {
            const cp_pprof_sample *s = &pp->samples[i];
            const cp_pprof_location *at = NULL;
            for (size_t k = 0; k < s->nlocs && at == NULL; k++) {
                const cp_pprof_location *l = cp_pprof_location_by_id(pp, s->location_ids[k]);
                for (size_t j = 0; l != NULL && j < l->nlines && at == NULL; j++) {
                    const cp_pprof_function *fn = cp_pprof_function_by_id(pp, l->lines[j].function_id);
                    if (fn != NULL && fn->name != NULL && strcmp(fn->name, a[1]) == 0)
                        at = l;
                }
            }
            if (at == NULL)
                continue;
            all += (double)s->values[ti];
            if (at->mapping_file != NULL && strcmp(at->mapping_file, a[2]) == 0)
                hit += (double)s->values[ti];
        }
    }
    double share = all > 0 ? hit / all : -1;
    printf("kind %s %s %s: %.3f (%.0f / %.0f), want >= %s\n", a[0], a[1], a[2], share, hit, all, a[3]);
    return share >= atof(a[3]) ? 0 : 1;
}

static int check_incl_share(char **a)
{
    double x = (double)total(a[0], pred_frame, a[1], NULL);
    double y = (double)total(a[0], pred_frame, "*", NULL);
    double share = y > 0 ? x / y : -1, want = atof(a[2]);

    printf("incl_share %s %s: %.3f (%.0f / %.0f), want >= %.2f\n", a[0], a[1], share, x, y, want);
    return share >= want ? 0 : 1;
}

/* Functions named a[0]: how many distinct system names (over all files). */
static int check_overloads(char **a)
{
    enum { MAX_SYS = 64 };
    const char *seen[MAX_SYS];
    size_t n = 0;

    for (size_t f = 0; f < g_n; f++) {
        for (size_t i = 0; i < g_pp[f]->n_functions; i++) {
            const cp_pprof_function *fn = &g_pp[f]->functions[i];
            size_t k = 0;
            if (fn->name == NULL || fn->system_name == NULL || strcmp(fn->name, a[0]) != 0)
                continue;
            while (k < n && strcmp(seen[k], fn->system_name) != 0)
                k++;
            if (k == n && n < MAX_SYS)
                seen[n++] = fn->system_name;
        }
    }
    printf("overloads %s: %zu system names, want >= %s\n", a[0], n, a[1]);
    for (size_t k = 0; k < n; k++)
        printf("  %s\n", seen[k]);
    return n >= (size_t)atoll(a[1]) ? 0 : 1;
}

static int check_no_name_with(char **a)
{
    int bad = 0;

    for (size_t f = 0; f < g_n; f++)
        for (size_t i = 0; i < g_pp[f]->n_functions; i++) {
            const cp_pprof_function *fn = &g_pp[f]->functions[i];
            if ((fn->name && strstr(fn->name, a[0])) || (fn->system_name && strstr(fn->system_name, a[0]))) {
                printf("  function with '%s': %s (%s)\n", a[0], fn->name, fn->system_name);
                bad = 1;
            }
        }
    printf("no_name_with '%s': %s\n", a[0], bad ? "found" : "none");
    return bad;
}

static int check_min(char **a, sample_pred pred, const char *what)
{
    int64_t v = total(a[0], pred, a[1], NULL);
    printf("%s %s %s: %lld, want >= %s\n", what, a[0], a[1], (long long)v, a[2]);
    return v >= atoll(a[2]) ? 0 : 1;
}

static int check_under(char **a)
{
    int64_t v = total(a[0], pred_under, a[1], a[2]);
    printf("under %s %s below %s: %lld, want >= %s\n", a[0], a[1], a[2], (long long)v, a[3]);
    return v >= atoll(a[3]) ? 0 : 1;
}

static int check_max(char **a)
{
    int64_t v = total(a[0], pred_frame, a[1], NULL);
    printf("max %s %s: %lld, want <= %s\n", a[0], a[1], (long long)v, a[2]);
    return v <= atoll(a[2]) ? 0 : 1;
}

static int check_label(char **a, bool is_min)
{
    int64_t v = total(a[0], pred_label, a[1], a[2]);
    printf("label %s %s=%s: %lld, want %s %s\n", a[0], a[1], a[2], (long long)v,
           is_min ? ">=" : "<=", a[3]);
    return (is_min ? v >= atoll(a[3]) : v <= atoll(a[3])) ? 0 : 1;
}

/* The class name label carrying the most `type` among samples under frame. */
static int check_class_of(char **a)
{
    enum { MAX_CLASSES = 256 };
    const char *names[MAX_CLASSES];
    int64_t sums[MAX_CLASSES];
    size_t n = 0, best = 0;

    for (size_t f = 0; f < g_n; f++) {
        int ti = cp_pprof_type_index(g_pp[f], a[0]);
        for (size_t i = 0; ti >= 0 && i < g_pp[f]->n_samples; i++) {
            const cp_pprof_sample *s = &g_pp[f]->samples[i];
            const char *cls = label_str(s, "class name");
            size_t k = 0;
            if (cls == NULL || !has_frame(g_pp[f], s, a[1], match_exact))
                continue;
            while (k < n && strcmp(names[k], cls) != 0)
                k++;
            if (k == n && n == MAX_CLASSES)
                continue;
            if (k == n)
                names[n] = cls, sums[n++] = 0;
            sums[k] += s->values[ti];
        }
    }
    for (size_t k = 1; k < n; k++)
        if (sums[k] > sums[best])
            best = k;
    printf("class_of %s %s: %s, want %s\n", a[0], a[1], n ? names[best] : "(none)", a[2]);
    return n > 0 && strcmp(names[best], a[2]) == 0 ? 0 : 1;
}

/* Every profile lasts (0, max] ns and starts within [lo, hi] unix ns: a
 * wall-clock step never yields a negative, hour-long or misplaced one. */
static int check_times(char **a)
{
    int64_t max = atoll(a[0]), lo = atoll(a[1]), hi = atoll(a[2]);
    int64_t first = INT64_MAX, last = INT64_MIN;
    int bad = 0;

    for (size_t f = 0; f < g_n; f++) {
        const cp_pprof *pp = g_pp[f];
        first = pp->time_nanos < first ? pp->time_nanos : first;
        last = pp->time_nanos > last ? pp->time_nanos : last;
        bool ok = pp->duration_nanos > 0 && pp->duration_nanos <= max && pp->time_nanos >= lo &&
                  pp->time_nanos <= hi;
        if (!ok) {
            printf("times: profile %ld starts at %lld, lasts %lld ns\n", g_seq[f], (long long)pp->time_nanos,
                   (long long)pp->duration_nanos);
            bad = 1;
        }
    }
    printf("times: %zu profiles, each (0, %s] ns long, starting in [%s, %s]%s; first start %lld, last %lld\n",
           g_n, a[0], a[1], a[2], bad ? "" : ": ok", (long long)first, (long long)last);
    return bad;
}

/* Drop every profile but the one with the highest sequence number. */
static int keep_last(void)
{
    size_t best = 0;

    for (size_t f = 1; f < g_n; f++)
        if (g_seq[f] > g_seq[best])
            best = f;
    for (size_t f = 0; f < g_n; f++)
        if (f != best)
            cp_pprof_free(g_pp[f]);
    if (g_n > 0) {
        g_pp[0] = g_pp[best];
        g_seq[0] = g_seq[best];
        g_n = 1;
    }
    printf("last: profile %ld only\n", g_n ? g_seq[0] : -1L);
    return 0;
}

/* Returns 0/1 and advances *i past the assertion; -1 on a usage error. */
static int run_one(int argc, char **argv, int *i)
{
    static const struct { const char *name; int nargs; } ops[] = {
        {"share", 5}, {"min", 3}, {"label_min", 4}, {"label_max", 4},
        {"class_of", 3}, {"frame_prefix", 3}, {"profiles", 1}, {"max", 3}, {"last", 0},
        {"self_share", 4}, {"overloads", 2}, {"no_name_with", 1},
        {"incl_share", 3}, {"kind", 4}, {"under", 4}, {"times", 3},
    };
    const char *op = argv[*i];
    char **a = argv + *i + 1;

    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        if (strcmp(op, ops[k].name) != 0)
            continue;
        if (*i + ops[k].nargs >= argc)
            return -1;
        *i += ops[k].nargs + 1;
        switch (k) {
        case 0: return check_share(a);
        case 1: return check_min(a, pred_frame, "min");
        case 2: return check_label(a, true);
        case 3: return check_label(a, false);
        case 4: return check_class_of(a);
        case 5: return check_min(a, pred_prefix, "frame_prefix");
        case 7: return check_max(a);
        case 8: return keep_last();
        case 9: return check_self_share(a);
        case 10: return check_overloads(a);
        case 11: return check_no_name_with(a);
        case 12: return check_incl_share(a);
        case 13: return check_kind(a);
        case 14: return check_under(a);
        case 15: return check_times(a);
        case 6:
        default:
            printf("profiles: %zu, want >= %s\n", g_n, a[0]);
            return g_n >= (size_t)atoll(a[0]) ? 0 : 1;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    int failed = 0;

    if (argc < 2 || load_dir(argv[1]) != 0)
        return 2;
    for (int i = 2; i < argc;) {
        int rc = run_one(argc, argv, &i);
        if (rc < 0) {
            fprintf(stderr, "pprof_check: bad assertion at '%s'\n", argv[i]);
            return 2;
        }
        if (rc != 0)
            printf("  ^ FAILED\n");
        failed |= rc;
    }
    for (size_t f = 0; f < g_n; f++)
        cp_pprof_free(g_pp[f]);
    return failed;
}
