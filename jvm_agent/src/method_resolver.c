/*
 * method_resolver.c — the method cache and class-name formatting.
 *
 * Open-addressing hash tables keyed by jmethodID (methods) and by string
 * (interned class names), grown by doubling up to a hard cap; past the cap
 * lookups still answer, with a shared "[method cache full]" entry.
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

static cp__method_info *method_new(jvmtiEnv *jvmti, JNIEnv *jni, jmethodID id)
{
    cp__method_info *m = calloc(1, sizeof *m);
    char *mname = NULL, *cls;

    if (m == NULL)
        return NULL;
    m->id = id;
    cls = class_of(jvmti, jni, id, &m->file);
    if ((*jvmti)->GetMethodName(jvmti, id, &mname, NULL, NULL) == JVMTI_ERROR_NONE && mname) {
        size_t len = strlen(cls ? cls : "[unknown]") + strlen(mname) + 2;
        m->name = malloc(len);
        if (m->name != NULL)
            snprintf(m->name, len, "%s.%s", cls ? cls : "[unknown]", mname);
        (*jvmti)->Deallocate(jvmti, (unsigned char *)mname);
        fill_lines(jvmti, m);
    }
    free(cls);
    if (m->name == NULL)
        m->name = strdup("[unknown]");
    if (m->name == NULL) {
        free(m->file);
        free(m->lines);
        free(m);
        return NULL;
    }
    return m;
}

const cp__method_info *cp__method_resolve(jvmtiEnv *jvmti, JNIEnv *jni, jmethodID id)
{
    if (!table_reserve(&g_methods, METHOD_CAP_MAX, method_hash))
        return g_methods.cap ? &g_full : &g_nomem;
    size_t i = hash_ptr(id) & (g_methods.cap - 1);
    for (; g_methods.slots[i] != NULL; i = (i + 1) & (g_methods.cap - 1)) {
        cp__method_info *m = g_methods.slots[i];
        if (m->id == id)
            return m;
    }
    cp__method_info *m = method_new(jvmti, jni, id);
    if (m == NULL)
        return &g_nomem;
    g_methods.slots[i] = m;
    g_methods.used++;
    return m;
}

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
    if (!table_reserve(&g_interned, INTERN_CAP_MAX, intern_hash))
        return "[table full]";
    size_t i = hash_str(s) & (g_interned.cap - 1);
    for (; g_interned.slots[i] != NULL; i = (i + 1) & (g_interned.cap - 1))
        if (strcmp(g_interned.slots[i], s) == 0)
            return g_interned.slots[i];
    char *copy = strdup(s);
    if (copy == NULL)
        return "[unknown]";
    g_interned.slots[i] = copy;
    g_interned.used++;
    return copy;
}
