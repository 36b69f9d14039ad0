/*
 * code_map.c — nmethod ranges, inlining edges and the interpreter's range,
 * for frame kinds (see code_map.h).
 *
 * All under one mutex: the JVM posts the events from its service or compiler
 * threads, the resolver reads. Tables grow by doubling up to hard caps; past
 * a cap new entries are not recorded (kinds fall back to the inference, the
 * overflow is logged once).
 */
#include "code_map.h"

#include <jvmticmlr.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { NM_CAP_MAX = 1 << 20, EDGE_CAP_MAX = 1 << 21, METHOD_CAP_MAX = 1 << 20,
       EDGE_INITIAL = 1 << 12, RESORT_NS = 1000000000 };

typedef struct nm_entry {
    uintptr_t start, end;
    jmethodID root;
    bool dead;
} nm_entry;

typedef struct edge {      /* callee inlined at caller:bci somewhere */
    jmethodID callee, caller;
    jint bci;
} edge;

typedef struct method_count {
    jmethodID id;
    int32_t live; /* live nmethods of this method */
} method_count;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static nm_entry *g_nm;             /* load order; dead ones compacted at resort */
static size_t g_nm_n, g_nm_cap;
static size_t *g_sorted;           /* indexes into g_nm by start, first g_sorted_n */
static size_t g_sorted_n, g_sorted_cap;
static size_t g_unsorted_from;     /* g_nm[g_unsorted_from..] are not in g_sorted */
static int64_t g_sorted_at;
static edge *g_edges;              /* open addressing; callee NULL = empty */
static size_t g_edges_cap, g_edges_n;
static method_count *g_methods;    /* open addressing; id NULL = empty */
static size_t g_methods_cap, g_methods_n;
static uintptr_t g_interp_start, g_interp_end;
static bool g_full_logged;

static size_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static size_t edge_hash(const edge *e)
{
    return mix((uint64_t)(uintptr_t)e->callee * 31 + (uint64_t)(uintptr_t)e->caller * 7 + (uint64_t)e->bci);
}

static void full(const char *what)
{
    if (!g_full_logged) {
        g_full_logged = true;
        cp_log(CP_LOG_WARN, "frame-kind map: %s table full; kinds of further code are inferred", what);
    }
}

/* Open-addressing tables of fixed-size entries whose first field is a
 * pointer key (NULL = empty slot): double *slots (rehashing with hash),
 * false at max_cap or out of memory. */
static bool table_grow(void **slots, size_t *cap, size_t elem, size_t max_cap,
                       size_t (*hash)(const void *))
{
    size_t ncap = *cap ? *cap * 2 : EDGE_INITIAL;
    char *ns, *old = *slots;

    if (ncap > max_cap || (ns = calloc(ncap, elem)) == NULL)
        return false;
    for (size_t i = 0; i < *cap; i++) {
        const void *e = old + i * elem;
        if (*(void *const *)e == NULL)
            continue;
        size_t j = hash(e) & (ncap - 1);
        while (*(void **)(ns + j * elem) != NULL)
            j = (j + 1) & (ncap - 1);
        memcpy(ns + j * elem, e, elem);
    }
    free(old);
    *slots = ns;
    *cap = ncap;
    return true;
}

static size_t edge_hash_any(const void *e) { return edge_hash(e); }
static size_t method_hash_any(const void *m) { return mix((uint64_t)(uintptr_t)((const method_count *)m)->id); }

static bool edges_grow(void)
{
    return table_grow((void **)&g_edges, &g_edges_cap, sizeof *g_edges, EDGE_CAP_MAX, edge_hash_any);
}

static void edge_add(jmethodID callee, jmethodID caller, jint bci)
{
    edge e = {callee, caller, bci};

    if (callee == NULL || caller == NULL)
        return;
    if ((g_edges_n + 1) * 2 > g_edges_cap && !edges_grow()) {
        full("inlining");
        return;
    }
    size_t j = edge_hash(&e) & (g_edges_cap - 1);
    for (; g_edges[j].callee != NULL; j = (j + 1) & (g_edges_cap - 1))
        if (g_edges[j].callee == callee && g_edges[j].caller == caller && g_edges[j].bci == bci)
            return;
    g_edges[j] = e;
    g_edges_n++;
}

static bool edge_has(jmethodID callee, jmethodID caller, jint bci)
{
    edge e = {callee, caller, bci};

    if (g_edges_cap == 0)
        return false;
    for (size_t j = edge_hash(&e) & (g_edges_cap - 1); g_edges[j].callee != NULL;
         j = (j + 1) & (g_edges_cap - 1))
        if (g_edges[j].callee == callee && g_edges[j].caller == caller && g_edges[j].bci == bci)
            return true;
    return false;
}

static bool methods_grow(void)
{
    return table_grow((void **)&g_methods, &g_methods_cap, sizeof *g_methods, METHOD_CAP_MAX,
                      method_hash_any);
}

/* The count slot of id (created when create), or NULL. */
static method_count *method_slot(jmethodID id, bool create)
{
    if (id == NULL)
        return NULL;
    if (create && (g_methods_n + 1) * 2 > g_methods_cap && !methods_grow()) {
        full("compiled-method");
        create = false;
    }
    if (g_methods_cap == 0)
        return NULL;
    size_t j = mix((uint64_t)(uintptr_t)id) & (g_methods_cap - 1);
    for (; g_methods[j].id != NULL; j = (j + 1) & (g_methods_cap - 1))
        if (g_methods[j].id == id)
            return &g_methods[j];
    if (!create)
        return NULL;
    g_methods[j].id = id;
    g_methods_n++;
    return &g_methods[j];
}

static void add_inline_edges(const void *compile_info)
{
    for (const jvmtiCompiledMethodLoadRecordHeader *h = compile_info; h != NULL; h = h->next) {
        if (h->kind != JVMTI_CMLR_INLINE_INFO)
            continue;
        const jvmtiCompiledMethodLoadInlineRecord *r = (const void *)h;
        for (jint p = 0; p < r->numpcs; p++) {
            const PCStackInfo *pc = &r->pcinfo[p], *prev = p > 0 ? &r->pcinfo[p - 1] : NULL;
            /* Neighbouring pcs mostly share one inlining chain (bcis[0], the
             * position inside the innermost method, is not part of it). */
            if (prev != NULL && prev->numstackframes == pc->numstackframes && pc->numstackframes > 0 &&
                memcmp(prev->methods, pc->methods, sizeof *pc->methods * (size_t)pc->numstackframes) == 0 &&
                memcmp(prev->bcis + 1, pc->bcis + 1,
                       sizeof *pc->bcis * (size_t)(pc->numstackframes - 1)) == 0)
                continue;
            /* methods[0] is the innermost; methods[d + 1] calls methods[d]
             * at bcis[d + 1]. */
            for (jint d = 0; d + 1 < pc->numstackframes; d++)
                edge_add(pc->methods[d], pc->methods[d + 1], pc->bcis[d + 1]);
        }
    }
}

void JNICALL cp__on_compiled_method_load(jvmtiEnv *jvmti, jmethodID method, jint code_size,
                                         const void *code_addr, jint map_length,
                                         const jvmtiAddrLocationMap *map, const void *compile_info)
{
    (void)jvmti, (void)map_length, (void)map;
    pthread_mutex_lock(&g_lock);
    if (g_nm_n == g_nm_cap) {
        size_t ncap = g_nm_cap ? g_nm_cap * 2 : 1024;
        nm_entry *n = ncap <= NM_CAP_MAX ? realloc(g_nm, ncap * sizeof *n) : NULL;
        if (n == NULL) {
            full("compiled-code");
            pthread_mutex_unlock(&g_lock);
            return;
        }
        g_nm = n;
        g_nm_cap = ncap;
    }
    g_nm[g_nm_n++] = (nm_entry){(uintptr_t)code_addr, (uintptr_t)code_addr + (uintptr_t)code_size,
                                method, false};
    method_count *m = method_slot(method, true);
    if (m != NULL)
        m->live++;
    add_inline_edges(compile_info);
    pthread_mutex_unlock(&g_lock);
}

static nm_entry *find_locked(uintptr_t pc, bool exact_start);

void JNICALL cp__on_compiled_method_unload(jvmtiEnv *jvmti, jmethodID method, const void *code_addr)
{
    (void)jvmti;
    pthread_mutex_lock(&g_lock);
    nm_entry *e = find_locked((uintptr_t)code_addr, true);
    if (e != NULL && !e->dead) {
        e->dead = true;
        method_count *m = method_slot(method, false);
        if (m != NULL && m->live > 0)
            m->live--;
    }
    pthread_mutex_unlock(&g_lock);
}

void JNICALL cp__on_dynamic_code_generated(jvmtiEnv *jvmti, const char *name, const void *address,
                                           jint length)
{
    (void)jvmti;
    if (name == NULL || strcmp(name, "Interpreter") != 0)
        return;
    pthread_mutex_lock(&g_lock);
    g_interp_start = (uintptr_t)address;
    g_interp_end = (uintptr_t)address + (uintptr_t)length;
    pthread_mutex_unlock(&g_lock);
}

static int by_start(const void *a, const void *b)
{
    uintptr_t x = g_nm[*(const size_t *)a].start, y = g_nm[*(const size_t *)b].start;
    return x < y ? -1 : x > y;
}

/* Drop dead entries, sort the rest by start (at most once per RESORT_NS;
 * newer ones are searched linearly meanwhile). */
static void resort_locked(void)
{
    int64_t now = cp_now_ns();
    size_t w = 0;

    if (g_unsorted_from == g_nm_n || now - g_sorted_at < RESORT_NS)
        return;
    for (size_t i = 0; i < g_nm_n; i++)
        if (!g_nm[i].dead)
            g_nm[w++] = g_nm[i];
    g_nm_n = w;
    if (g_sorted_cap < g_nm_n) {
        size_t *s = realloc(g_sorted, g_nm_cap * sizeof *s);
        if (s == NULL) { /* everything is searched linearly until it works */
            g_sorted_n = g_unsorted_from = 0;
            return;
        }
        g_sorted = s;
        g_sorted_cap = g_nm_cap;
    }
    for (size_t i = 0; i < g_nm_n; i++)
        g_sorted[i] = i;
    qsort(g_sorted, g_nm_n, sizeof *g_sorted, by_start);
    g_sorted_n = g_nm_n;
    g_unsorted_from = g_nm_n;
    g_sorted_at = now;
}

/* The live-or-dead entry containing pc (or starting at pc), newest first. */
static nm_entry *find_locked(uintptr_t pc, bool exact_start)
{
    for (size_t i = g_nm_n; i-- > g_unsorted_from;) {
        nm_entry *e = &g_nm[i];
        if (exact_start ? e->start == pc : (pc >= e->start && pc < e->end))
            return e;
    }
    size_t lo = 0, hi = g_sorted_n; /* first with start > pc */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g_nm[g_sorted[mid]].start <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* The code heap reuses addresses: a dead entry may share its start
     * with a live one; prefer the live one. */
    nm_entry *found = NULL;
    for (size_t k = lo; k-- > 0;) {
        nm_entry *e = &g_nm[g_sorted[k]];
        if (exact_start ? e->start != pc : pc >= e->end)
            break;
        if (found == NULL || (found->dead && !e->dead))
            found = e;
        if (!found->dead)
            break;
    }
    return found;
}

static bool is_compiled_kind(cp_frame_kind k)
{
    return k == CP_FRAME_JAVA_COMPILED || k == CP_FRAME_JAVA_INLINED;
}

/* The inference, root first (a frame can only be inlined into a caller that
 * runs compiled code). */
static void infer_locked(const cp__agct_frame *f, int n, cp_frame_kind *kinds)
{
    for (int i = n - 1; i >= 0; i--) {
        const method_count *m;
        if (f[i].lineno == CP__AGCT_NATIVE_BCI)
            kinds[i] = CP_FRAME_JAVA_NATIVE;
        else if (i + 1 < n && is_compiled_kind(kinds[i + 1]) &&
                 edge_has(f[i].method_id, f[i + 1].method_id, f[i + 1].lineno))
            kinds[i] = CP_FRAME_JAVA_INLINED;
        else if ((m = method_slot(f[i].method_id, false)) != NULL && m->live > 0)
            kinds[i] = CP_FRAME_JAVA_COMPILED;
        else
            kinds[i] = CP_FRAME_JAVA_INTERPRETED;
    }
}

/* The frames the pc's own physical frame holds: exact. False if pc tells
 * nothing (not in Java code, or a stale nmethod that does not match). */
static bool top_from_pc_locked(uintptr_t pc, const cp__agct_frame *f, int n, cp_frame_kind *kinds)
{
    if (pc == 0)
        return false;
    if (pc >= g_interp_start && pc < g_interp_end) {
        if (f[0].lineno == CP__AGCT_NATIVE_BCI)
            return false;
        kinds[0] = CP_FRAME_JAVA_INTERPRETED;
        return true;
    }
    const nm_entry *e = find_locked(pc, false);
    if (e == NULL || e->dead)
        return false;
    for (int j = 0; j < n; j++) {
        if (f[j].lineno == CP__AGCT_NATIVE_BCI)
            return false;
        if (f[j].method_id == e->root) {
            for (int k = 0; k < j; k++)
                kinds[k] = CP_FRAME_JAVA_INLINED;
            kinds[j] = CP_FRAME_JAVA_COMPILED;
            return true;
        }
    }
    return false;
}

void cp__code_map_kinds(uintptr_t pc, uintptr_t java_pc, const cp__agct_frame *frames, int n,
                        cp_frame_kind *kinds)
{
    pthread_mutex_lock(&g_lock);
    resort_locked();
    infer_locked(frames, n, kinds);
    if (!top_from_pc_locked(pc, frames, n, kinds))
        top_from_pc_locked(java_pc, frames, n, kinds);
    pthread_mutex_unlock(&g_lock);
}
