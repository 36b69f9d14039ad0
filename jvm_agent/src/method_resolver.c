/*
 * method_resolver.c — the method cache and class-name formatting.
 *
 * Open-addressing hash tables keyed by jmethodID (methods) and by string
 * (interned class names), grown by doubling up to a hard cap; past the cap
 * cached entries keep answering and only new methods get a shared
 * "[method cache full]" entry (counted, logged once).
 */
#include "method_resolver.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contprof.h"

enum { METHOD_CAP_MAX = 1 << 20, INTERN_CAP_MAX = 1 << 18, INITIAL_CAP = 1 << 12 };

typedef struct ptr_table {
    void **slots;
    size_t cap, used;
} ptr_table;

static ptr_table g_methods;  /* cp__method_info*, key id       */
static ptr_table g_interned; /* char*, key the string          */
static cp__method_info g_full = {NULL, "[method cache full]", NULL, 0, NULL};
static cp__method_info g_nomem = {NULL, "[unknown]", NULL, 0, NULL};
static uint64_t g_overflows; /* lookups of new methods refused: table full */

static size_t hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static size_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return (size_t)h;
}

typedef size_t (*key_hash)(const void *entry);
static size_t method_hash(const void *e) { return hash_ptr(((const cp__method_info *)e)->id); }
static size_t intern_hash(const void *e) { return hash_str(e); }

/* Double t (rehash with h); false when at max or out of memory. */
static bool table_grow(ptr_table *t, size_t max, key_hash h)
{
    size_t ncap = t->cap ? t->cap * 2 : INITIAL_CAP;
    if (ncap > max)
        return false;
    void **ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return false;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i] == NULL)
            continue;
        size_t j = h(t->slots[i]) & (ncap - 1);
        while (ns[j] != NULL)
            j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return true;
}

/* Room for one more entry (load factor <= 1/2)? */
static bool table_reserve(ptr_table *t, size_t max, key_hash h)
{
    return (t->used + 1) * 2 <= t->cap || table_grow(t, max, h);
}

char *cp__class_name_from_signature(const char *sig, char *out, size_t n)
{
    static const char *const prim[] = {"B", "byte", "C", "char", "D", "double", "F", "float",
                                       "I", "int", "J", "long", "S", "short", "Z", "boolean",
                                       "V", "void"};
    int dims = 0;
    size_t len;
    const char *base = sig;

    while (*base == '[')
        base++, dims++;
    if (*base == 'L') {
        base++;
        len = strcspn(base, ";");
    } else {
        len = strlen(base);
        for (size_t i = 0; len == 1 && i < sizeof prim / sizeof prim[0]; i += 2)
            if (*base == prim[i][0])
                base = prim[i + 1], len = strlen(base);
    }
    snprintf(out, n, "%.*s", (int)len, base);
    for (char *p = out; *p; p++)
        if (*p == '/')
            *p = '.';
    for (size_t used = strlen(out); dims-- > 0 && used + 3 <= n; used += 2)
        strcat(out, "[]");
    return out;
}

static char *class_of(jvmtiEnv *jvmti, JNIEnv *jni, jmethodID id, char **file)
{
    jclass k = NULL;
    char *sig = NULL, *src = NULL, buf[512];

    *file = NULL;
    if ((*jvmti)->GetMethodDeclaringClass(jvmti, id, &k) != JVMTI_ERROR_NONE || k == NULL)
        return NULL;
    if ((*jvmti)->GetClassSignature(jvmti, k, &sig, NULL) == JVMTI_ERROR_NONE && sig != NULL) {
        cp__class_name_from_signature(sig, buf, sizeof buf);
        (*jvmti)->Deallocate(jvmti, (unsigned char *)sig);
        sig = strdup(buf);
    }
    if ((*jvmti)->GetSourceFileName(jvmti, k, &src) == JVMTI_ERROR_NONE && src != NULL) {
        *file = strdup(src);
        (*jvmti)->Deallocate(jvmti, (unsigned char *)src);
    }
    (*jni)->DeleteLocalRef(jni, k);
    return sig;
}

static void fill_lines(jvmtiEnv *jvmti, cp__method_info *m)
{
    jint n = 0;
    jvmtiLineNumberEntry *t = NULL;

    if ((*jvmti)->GetLineNumberTable(jvmti, m->id, &n, &t) != JVMTI_ERROR_NONE || t == NULL)
        return;
    m->lines = malloc((size_t)n * sizeof *t);
    if (m->lines != NULL) {
        memcpy(m->lines, t, (size_t)n * sizeof *t);
        m->nlines = n;
    }
    (*jvmti)->Deallocate(jvmti, (unsigned char *)t);
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Length of the run of digits (hex when hex) at p. */
static size_t run_len(const char *p, bool hex)
{
    size_t n = 0;
    while (hex ? is_hex(p[n]) : is_digit(p[n]))
        n++;
    return n;
}

/* Does s[i..] start with a counter suffix owner, e.g. "$$Lambda$"? Returns
 * the length of the part kept (the counter follows it), else 0. */
static size_t counter_prefix(const char *p)
{
    static const char *const owners[] = {
        "$$Lambda$", "$Proxy", "jdk.proxy", "GeneratedMethodAccessor",
        "GeneratedConstructorAccessor", "GeneratedSerializationConstructorAccessor",
    };
    for (size_t k = 0; k < sizeof owners / sizeof owners[0]; k++) {
        size_t n = strlen(owners[k]);
        if (strncmp(p, owners[k], n) == 0 && is_digit(p[n]))
            return n;
    }
    return 0;
}

char *cp__normalize_generated(char *s)
{
    char *w = s;

    for (const char *r = s; *r;) {
        size_t keep, digits;
        /* "/0x7f0012345678", ".0x…", "+0x…": a hidden class's address. */
        if ((*r == '/' || *r == '.' || *r == '+') && r[1] == '0' && r[2] == 'x' &&
            (digits = run_len(r + 3, true)) >= 4) {
            r += 3 + digits;
            continue;
        }
        /* "Foo$$Lambda$14/123": an old-style anonymous class id (no Java
         * identifier starts with a digit, so this is never a real name). */
        if ((*r == '/' || *r == '.') && (digits = run_len(r + 1, false)) > 0 &&
            (r[1 + digits] == '\0' || r[1 + digits] == '.' || r[1 + digits] == ';')) {
            r += 1 + digits;
            continue;
        }
        if ((keep = counter_prefix(r)) > 0) {
            /* "$$Lambda$" keeps "$$Lambda"; the others keep their name. */
            size_t out = keep - (r[keep - 1] == '$' ? 1 : 0);
            memmove(w, r, out);
            w += out;
            r += keep + run_len(r + keep, false);
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
    return s;
}

static cp__method_info *method_new(jvmtiEnv *jvmti, JNIEnv *jni, jmethodID id)
{
    cp__method_info *m = calloc(1, sizeof *m);
    char *mname = NULL, *msig = NULL, *cls;

    if (m == NULL)
        return NULL;
    m->id = id;
    cls = class_of(jvmti, jni, id, &m->file);
    if ((*jvmti)->GetMethodName(jvmti, id, &mname, &msig, NULL) == JVMTI_ERROR_NONE && mname) {
        const char *c = cls ? cls : "[unknown]";
        size_t len = strlen(c) + strlen(mname) + 2;
        if ((m->name = malloc(len)) != NULL)
            cp__normalize_generated((snprintf(m->name, len, "%s.%s", c, mname), m->name));
        /* Overloads differ by their signature: "Foo.calc(I)J". */
        len += msig ? strlen(msig) : 0;
        if (msig != NULL && m->name != NULL && (m->system_name = malloc(len)) != NULL)
            cp__normalize_generated((snprintf(m->system_name, len, "%s.%s%s", c, mname, msig),
                                     m->system_name));
        fill_lines(jvmti, m);
    }
    if (mname != NULL)
        (*jvmti)->Deallocate(jvmti, (unsigned char *)mname);
    if (msig != NULL)
        (*jvmti)->Deallocate(jvmti, (unsigned char *)msig);
    free(cls);
    if (m->name == NULL)
        m->name = strdup("[unknown]");
    if (m->name == NULL) {
        free(m->file);
        free(m->lines);
        free(m->system_name);
        free(m);
        return NULL;
    }
    return m;
}

/* Index of id's entry, or of the empty slot where it would go; the table
 * must have a slot (cap > 0). */
static size_t method_slot(jmethodID id)
{
    size_t i = hash_ptr(id) & (g_methods.cap - 1);

    while (g_methods.slots[i] != NULL && ((cp__method_info *)g_methods.slots[i])->id != id)
        i = (i + 1) & (g_methods.cap - 1);
    return i;
}

/* A full table still answers for every method it holds; only new ones get
 * the placeholder, counted and logged once. */
static const cp__method_info *table_full(void)
{
    if (g_overflows++ == 0)
        cp_log(CP_LOG_WARN, "method cache full (%zu methods): methods seen from now on show as "
               "\"%s\"", g_methods.used, g_full.name);
    return g_methods.cap ? &g_full : &g_nomem;
}

const cp__method_info *cp__method_resolve(jvmtiEnv *jvmti, JNIEnv *jni, jmethodID id)
{
    if (g_methods.cap > 0) {
        cp__method_info *cached = g_methods.slots[method_slot(id)];
        if (cached != NULL)
            return cached;
    }
    if (!table_reserve(&g_methods, METHOD_CAP_MAX, method_hash))
        return table_full();
    size_t i = method_slot(id);
    cp__method_info *m = method_new(jvmti, jni, id);
    if (m == NULL)
        return &g_nomem;
    g_methods.slots[i] = m;
    g_methods.used++;
    return m;
}

uint64_t cp__method_cache_overflows(void) { return g_overflows; }

int64_t cp__method_line(const cp__method_info *m, jint bci)
{
    int64_t line = 0;
    jlocation best = -1;

    /* The table need not be sorted: take the closest start at or before bci. */
    for (jint i = 0; i < m->nlines; i++) {
        if (m->lines[i].start_location <= bci && m->lines[i].start_location > best) {
            best = m->lines[i].start_location;
            line = m->lines[i].line_number;
        }
    }
    return line;
}

const char *cp__intern(const char *s)
{
    size_t i = 0;

    /* Strings already held keep resolving when the table is full. */
    if (g_interned.cap > 0) {
        for (i = hash_str(s) & (g_interned.cap - 1); g_interned.slots[i] != NULL;
             i = (i + 1) & (g_interned.cap - 1))
            if (strcmp(g_interned.slots[i], s) == 0)
                return g_interned.slots[i];
    }
    if (!table_reserve(&g_interned, INTERN_CAP_MAX, intern_hash))
        return "[table full]";
    i = hash_str(s) & (g_interned.cap - 1);
    while (g_interned.slots[i] != NULL)
        i = (i + 1) & (g_interned.cap - 1);
    char *copy = strdup(s);
    if (copy == NULL)
        return "[unknown]";
    g_interned.slots[i] = copy;
    g_interned.used++;
    return copy;
}
