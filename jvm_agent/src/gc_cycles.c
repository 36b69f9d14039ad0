/*
 * gc_cycles.c — GC cycle counts from the GarbageCollectorMXBeans (see the
 * header for which beans count and why).
 */
#include "gc_cycles.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "contprof.h"
#include "runtime_info.h"

enum { MAX_BEANS = 8 };
enum { BEAN_STW = 1, BEAN_CONC = 2, BEAN_YOUNG = 3 };
/* Young collections after which every surviving object has been promoted
 * (tenuring ages stop at 15). */
enum { TENURE_YOUNG = 16 };

static jobject g_beans[MAX_BEANS]; /* global refs, resolver only */
static int g_kind[MAX_BEANS];
static int g_nbeans;
static bool g_looked;
static jmethodID g_count;
static _Atomic uint64_t g_stw, g_conc, g_finishes;
static pthread_mutex_t g_view_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_generational;                      /* set once, by the resolver */
static cp__gc_mark g_history[CP__GC_HISTORY];    /* ring, g_view_lock */
static size_t g_hist_head, g_hist_n;             /* g_view_lock */
static uint64_t g_young;                         /* g_view_lock */
static atomic_uint g_seq;

/* BEAN_STW, BEAN_CONC or 0 (not counted) for a collector's bean name. */
static int bean_kind(const char *name)
{
    if (strcmp(name, "ZGC Minor Cycles") == 0)
        return BEAN_YOUNG;
    if (strstr(name, "Pauses") != NULL)
        return 0;
    if (strstr(name, "Cycles") != NULL || strstr(name, "Concurrent") != NULL)
        return BEAN_CONC;
    return BEAN_STW;
}

static bool clear_exception(JNIEnv *jni)
{
    if (!(*jni)->ExceptionCheck(jni))
        return false;
    (*jni)->ExceptionClear(jni);
    return true;
}

static void add_bean(JNIEnv *jni, jobject bean, jmethodID get_name)
{
    jstring js = (*jni)->CallObjectMethod(jni, bean, get_name);
    const char *name = js != NULL && !clear_exception(jni) ? (*jni)->GetStringUTFChars(jni, js, NULL) : NULL;

    if (name == NULL)
        return;
    int kind = bean_kind(name);
    cp_log(CP_LOG_DEBUG, "live heap: GC bean \"%s\" %s", name,
           kind == BEAN_STW ? "counts (stop-the-world)" : kind == BEAN_CONC ? "counts (concurrent)"
           : kind == BEAN_YOUNG ? "counts young collections" : "ignored");
    (*jni)->ReleaseStringUTFChars(jni, js, name);
    if (kind != 0 && g_nbeans < MAX_BEANS && (g_beans[g_nbeans] = (*jni)->NewGlobalRef(jni, bean)) != NULL)
        g_kind[g_nbeans++] = kind;
    if (kind == BEAN_YOUNG)
        g_generational = true;
}

static void find_beans(JNIEnv *jni)
{
    jclass mm = (*jni)->FindClass(jni, "java/lang/management/MemoryManagerMXBean");
    jclass gc = mm ? (*jni)->FindClass(jni, "java/lang/management/GarbageCollectorMXBean") : NULL;
    jclass list = gc ? (*jni)->FindClass(jni, "java/util/List") : NULL;
    jmethodID get_name = list ? (*jni)->GetMethodID(jni, mm, "getName", "()Ljava/lang/String;") : NULL;
    jmethodID size = get_name ? (*jni)->GetMethodID(jni, list, "size", "()I") : NULL;
    jmethodID get = size ? (*jni)->GetMethodID(jni, list, "get", "(I)Ljava/lang/Object;") : NULL;
    jobject beans = get && !clear_exception(jni) ? cp__mxbean(jni, "getGarbageCollectorMXBeans", "()Ljava/util/List;") : NULL;
    jint n = beans ? (*jni)->CallIntMethod(jni, beans, size) : 0;

    g_count = gc ? (*jni)->GetMethodID(jni, gc, "getCollectionCount", "()J") : NULL;
    for (jint i = 0; i < n && g_count != NULL && !clear_exception(jni); i++) {
        jobject b = (*jni)->CallObjectMethod(jni, beans, get, i);
        if (b != NULL && !clear_exception(jni))
            add_bean(jni, b, get_name);
    }
    clear_exception(jni);
    if (g_nbeans == 0)
        cp_log(CP_LOG_DEBUG, "live heap: no GC beans; counting GC pauses instead");
}

/* A new young count: remember (young, major) for cp__gc_cycles_examined. */
static void note_young(uint64_t young, uint64_t conc)
{
    pthread_mutex_lock(&g_view_lock);
    if (young > g_young) {
        g_young = young;
        g_history[(g_hist_head + g_hist_n) % CP__GC_HISTORY] = (cp__gc_mark){0, conc, young};
        if (g_hist_n < CP__GC_HISTORY)
            g_hist_n++;
        else
            g_hist_head = (g_hist_head + 1) % CP__GC_HISTORY;
    }
    pthread_mutex_unlock(&g_view_lock);
}

void cp__gc_cycles_poll(JNIEnv *jni)
{
    uint64_t stw = 0, conc = 0, young = 0;

    if (!g_looked) {
        g_looked = true;
        if ((*jni)->PushLocalFrame(jni, 32) == JNI_OK) {
            find_beans(jni);
            (*jni)->PopLocalFrame(jni, NULL);
        }
        clear_exception(jni);
    }
    if (g_nbeans == 0) {
        stw = atomic_load(&g_finishes);
    } else {
        for (int i = 0; i < g_nbeans; i++) {
            jlong c = (*jni)->CallLongMethod(jni, g_beans[i], g_count);
            if (clear_exception(jni) || c < 0)
                continue;
            if (g_kind[i] == BEAN_STW)
                stw += (uint64_t)c;
            else if (g_kind[i] == BEAN_CONC)
                conc += (uint64_t)c;
            /* A major cycle of generational ZGC collects the young too. */
            if (g_kind[i] == BEAN_YOUNG || g_kind[i] == BEAN_CONC)
                young += (uint64_t)c;
        }
    }
    /* Counts only grow (a failed read must not look like a reset). */
    if (g_generational)
        note_young(young, conc > atomic_load(&g_conc) ? conc : atomic_load(&g_conc));
    if (stw > atomic_load(&g_stw))
        atomic_store(&g_stw, stw);
    if (conc > atomic_load(&g_conc))
        atomic_store(&g_conc, conc);
    atomic_fetch_add(&g_seq, 1);
}

uint32_t cp__gc_cycles_seq(void) { return atomic_load_explicit(&g_seq, memory_order_acquire); }

static cp__gc_mark counts_now(void)
{
    pthread_mutex_lock(&g_view_lock);
    cp__gc_mark m = {atomic_load(&g_stw), atomic_load(&g_conc), g_young};
    pthread_mutex_unlock(&g_view_lock);
    return m;
}

void cp__gc_cycles_view(cp__gc_view *v)
{
    pthread_mutex_lock(&g_view_lock);
    v->now = (cp__gc_mark){atomic_load(&g_stw), atomic_load(&g_conc), g_young};
    v->generational = g_generational;
    v->n = g_hist_n;
    for (size_t i = 0; i < g_hist_n; i++)
        v->history[i] = g_history[(g_hist_head + i) % CP__GC_HISTORY];
    pthread_mutex_unlock(&g_view_lock);
}

cp__gc_mark cp__gc_cycles_mark_after(JNIEnv *jni, uint32_t seq)
{
    /* The poll that made seq+1 may have read its counts before the
     * allocation; any poll that ends later began after it. */
    if (cp__gc_cycles_seq() - seq < 2)
        cp__gc_cycles_poll(jni);
    return counts_now();
}

bool cp__gc_cycles_examined(cp__gc_mark mark, const cp__gc_view *v)
{
    if (!v->generational)
        return v->now.stw >= mark.stw + 1 || v->now.conc >= mark.conc + 2;
    /* The first moment by which TENURE_YOUNG young collections followed
     * the allocation (the oldest remembered if the history has moved past
     * it: later, so on the safe side); two majors must have ended since. */
    for (size_t i = 0; i < v->n; i++)
        if (v->history[i].young >= mark.young + TENURE_YOUNG)
            return v->now.conc >= v->history[i].conc + 2;
    return false;
}

void cp__gc_cycles_on_finish(void) { atomic_fetch_add_explicit(&g_finishes, 1, memory_order_relaxed); }
