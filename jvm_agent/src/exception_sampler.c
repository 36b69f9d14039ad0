/*
 * exception_sampler.c — the Throwable.fillInStackTrace(int) hook (see
 * exception_sampler.h).
 *
 * The hook stays bound for the life of the VM (a thread may be inside it
 * at any time); after VMDeath it only forwards to the JVM.
 */
#include "exception_sampler.h"

#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "event_stack.h"
#include "jvm_agent.h"
#include "rebind_class.h"

typedef jobject(JNICALL *fill_fn)(JNIEnv *env, jobject throwable, jint dummy);

static struct {
    _Atomic(fill_fn) fill;      /* the JDK's own binding                 */
    atomic_bool on;             /* sampling (settings final, VM running) */
    jmethodID fill0, fill1;     /* Throwable.fillInStackTrace() and (int) */
    jclass throwable;           /* global reference                      */
    jvmtiEnv *jvmti;
    cp_rate_sampler rs;
} g_x;

static __thread cp_rate_state tls_rate; /* the hook's own thread only */

/* jmethodID -> "is a constructor of a Throwable class", direct-mapped:
 * an entry is the id with bit 1 set (known) and bit 0 the answer (ids are
 * pointers, 8-byte aligned). Racy writers only ever store right answers. */
enum { CTOR_CACHE = 1024 };
static _Atomic uintptr_t g_ctor[CTOR_CACHE];

static bool is_throwable_ctor(JNIEnv *jni, jmethodID m)
{
    uintptr_t id = (uintptr_t)m, slot = (id >> 3) % CTOR_CACHE, e = atomic_load(&g_ctor[slot]);
    if ((e & ~(uintptr_t)3) == id && (e & 2))
        return e & 1;
    char *name = NULL;
    jclass decl = NULL;
    bool ctor = (*g_x.jvmti)->GetMethodName(g_x.jvmti, m, &name, NULL, NULL) == JVMTI_ERROR_NONE &&
                name != NULL && strcmp(name, "<init>") == 0;
    if (name != NULL)
        (*g_x.jvmti)->Deallocate(g_x.jvmti, (unsigned char *)name);
    if (ctor && (*g_x.jvmti)->GetMethodDeclaringClass(g_x.jvmti, m, &decl) == JVMTI_ERROR_NONE)
        ctor = (*jni)->IsAssignableFrom(jni, decl, g_x.throwable);
    if (decl != NULL)
        (*jni)->DeleteLocalRef(jni, decl);
    atomic_store(&g_ctor[slot], id | 2u | (ctor ? 1u : 0u));
    return ctor;
}

/* The frames to drop from the top: fillInStackTrace, then Throwable
 * constructors (the exception's own, and its superclasses'). */
static int skip_constructors(JNIEnv *jni, const jvmtiFrameInfo *f, int n)
{
    int i = 0;
    while (i < n && (f[i].method == g_x.fill0 || f[i].method == g_x.fill1))
        i++;
    while (i < n && is_throwable_ctor(jni, f[i].method))
        i++;
    return i;
}

static void sample(JNIEnv *jni, jobject exc, int64_t count)
{
    int64_t t0 = cp_now_ns();
    int cap = 0;
    jint n = 0;
    jvmtiFrameInfo *f = cp__event_scratch(&cap);
    char sig[CP__CLASS_NAME_MAX];

    if (f == NULL || (*g_x.jvmti)->GetStackTrace(g_x.jvmti, NULL, 0, cap, f, &n) != JVMTI_ERROR_NONE)
        return;
    int skip = skip_constructors(jni, f, n);
    cp__event_class_sig(g_x.jvmti, jni, exc, sig, sizeof sig);
    cp__event_record(CP__TRACE_EXCEPTION, f + skip, n - skip, count, 0, sig);
    cp_metrics_add_hook_ns(cp_now_ns() - t0);
}

/* Bound to Throwable.fillInStackTrace(int): the JDK's binding, plus the
 * sampling decision. */
static jobject JNICALL fill_hook(JNIEnv *jni, jobject self, jint dummy)
{
    int64_t v, count;
    jobject r = atomic_load_explicit(&g_x.fill, memory_order_relaxed)(jni, self, dummy);
    if (atomic_load_explicit(&g_x.on, memory_order_relaxed) && cp__jvm_running() &&
        cp_rate_hit(&g_x.rs, &tls_rate, 1, &v, &count) && !(*jni)->ExceptionCheck(jni))
        sample(jni, self, count);
    return r;
}

void cp__exceptions_want_caps(const jvmtiCapabilities *pot, jvmtiCapabilities *want)
{
    want->can_generate_native_method_bind_events = pot->can_generate_native_method_bind_events;
}

void cp__exceptions_listen(jvmtiEnv *jvmti)
{
    if ((*jvmti)->SetEventNotificationMode(jvmti, JVMTI_ENABLE, JVMTI_EVENT_NATIVE_METHOD_BIND, NULL) !=
        JVMTI_ERROR_NONE)
        cp_log(CP_LOG_DEBUG, "no NativeMethodBind events: no exception profile");
}

/* Any phase, even primordial: no JVMTI or JNI calls here. The JDK's
 * implementation is recognised by its exported symbol name. */
void JNICALL cp__on_native_method_bind(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread, jmethodID method,
                                       void *address, void **new_address_ptr)
{
    Dl_info info;
    (void)jvmti, (void)jni, (void)thread, (void)method;
    if (address == NULL || address == (void *)fill_hook || !dladdr(address, &info) || info.dli_sname == NULL ||
        info.dli_saddr != address || strcmp(info.dli_sname, "Java_java_lang_Throwable_fillInStackTrace") != 0)
        return;
    atomic_store(&g_x.fill, (fill_fn)address);
    *new_address_ptr = (void *)fill_hook;
}

/* ---- late attach ----------------------------------------------------------
 * The JDK bound fillInStackTrace long ago, and no NativeMethodBind comes
 * again. RegisterNatives rebinds it (and makes the VM discard a compiled
 * native wrapper holding the old address), but HotSpot prints a warning
 * when the Java caller of RegisterNatives is missing or in another class
 * loader than the platform class. So the call is made from the native
 * method of a class the agent defines in the boot loader (contprof.boot.
 * Rebind: run() calls the native rebind()): the same loader as Throwable,
 * no warning. */

static int find_libjava(struct dl_phdr_info *info, size_t size, void *path)
{
    size_t n = strlen(info->dlpi_name);
    (void)size;
    if (n < 11 || strcmp(info->dlpi_name + n - 11, "/libjava.so") != 0)
        return 0;
    snprintf(path, PATH_MAX, "%s", info->dlpi_name);
    return 1;
}

/* The JDK's own implementation, from the libjava already loaded. */
static fill_fn jdk_fill(void)
{
    char path[PATH_MAX] = "";
    void *h, *f = NULL;
    dl_iterate_phdr(find_libjava, path);
    if (path[0] != 0 && (h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD)) != NULL) {
        f = dlsym(h, "Java_java_lang_Throwable_fillInStackTrace");
        dlclose(h); /* only the reference NOLOAD took: libjava stays */
    }
    return (fill_fn)f;
}

static atomic_bool g_rebound;

/* contprof.boot.Rebind.rebind(), called from Rebind.run(). */
static void JNICALL rebind_native(JNIEnv *jni, jclass cls)
{
    JNINativeMethod m = {"fillInStackTrace", "(I)Ljava/lang/Throwable;", (void *)fill_hook};
    (void)cls;
    if ((*jni)->RegisterNatives(jni, g_x.throwable, &m, 1) == 0)
        atomic_store(&g_rebound, true);
}

static bool bind_late(JNIEnv *jni)
{
    JNINativeMethod m = {"rebind", "()V", (void *)rebind_native};
    jmethodID run = NULL;
    fill_fn f = jdk_fill();
    if (f == NULL) {
        cp_log(CP_LOG_WARN, "late attach: the JDK's fillInStackTrace not found: no exception profile");
        return false;
    }
    atomic_store(&g_x.fill, f); /* before the hook can run */
    jclass c = (*jni)->DefineClass(jni, "contprof/boot/Rebind", NULL, (const jbyte *)cp__rebind_class,
                                   (jsize)sizeof cp__rebind_class);
    if (c != NULL && (*jni)->RegisterNatives(jni, c, &m, 1) == 0 &&
        (run = (*jni)->GetStaticMethodID(jni, c, "run", "()V")) != NULL)
        (*jni)->CallStaticVoidMethod(jni, c, run);
    if ((*jni)->ExceptionCheck(jni))
        (*jni)->ExceptionClear(jni);
    if (c != NULL)
        (*jni)->DeleteLocalRef(jni, c);
    if (!atomic_load(&g_rebound))
        cp_log(CP_LOG_WARN, "late attach: could not bind Throwable.fillInStackTrace: no exception profile");
    return atomic_load(&g_rebound);
}

bool cp__exceptions_start(jvmtiEnv *jvmti, JNIEnv *jni, bool late)
{
    const cp_config *c = cp_config_get();
    jclass t;

    if (!c->exception_enabled)
        return false;
    if ((t = (*jni)->FindClass(jni, "java/lang/Throwable")) == NULL) {
        (*jni)->ExceptionClear(jni);
        return false;
    }
    g_x.jvmti = jvmti;
    g_x.fill0 = (*jni)->GetMethodID(jni, t, "fillInStackTrace", "()Ljava/lang/Throwable;");
    g_x.fill1 = (*jni)->GetMethodID(jni, t, "fillInStackTrace", "(I)Ljava/lang/Throwable;");
    g_x.throwable = (*jni)->NewGlobalRef(jni, t);
    if ((*jni)->ExceptionCheck(jni))
        (*jni)->ExceptionClear(jni);
    (*jni)->DeleteLocalRef(jni, t);
    cp_rate_init(&g_x.rs, 1.0, (double)c->exception_samples_per_s);
    if (g_x.throwable == NULL || (late && !bind_late(jni)))
        return false;
    atomic_store(&g_x.on, true);
    return true;
}
