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
 *   profiles MIN                at least MIN profile files
 *   last                        from here on, only the last profile (highest
 *                               sequence number in NAME.PID.SEQ.pprof.gz)
 * Prints each measured value; exits 1 on the first failed assertion.
 */
#include <dirent.h>
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

static int check_min(char **a, sample_pred pred, const char *what)
{
    int64_t v = total(a[0], pred, a[1], NULL);
    printf("%s %s %s: %lld, want >= %s\n", what, a[0], a[1], (long long)v, a[2]);
    return v >= atoll(a[2]) ? 0 : 1;
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
