/*
 * runtime_info.c — system properties, VM identity, command line, and the
 * java.lang.management view (input arguments, GCs, heap, processors).
 */
#include "runtime_info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contprof.h"
#include "cpu_sampler.h"
#include "thread_table.h"
#include "trace_resolver.h"
#include "vm_structs.h"

static char g_vm_name[128], g_java_version[64], g_service[128], g_runtime_version[128], g_java_vendor[128];

const char *cp__runtime_vm_name(void) { return g_vm_name; }
const char *cp__runtime_java_version(void) { return g_java_version; }
const char *cp__runtime_default_service(void) { return g_service; }

static void put(cp_buf *b, const char *s) { cp_buf_append(b, s, strlen(s)); }

/* s as a JSON string literal. */
static void json_str(cp_buf *b, const char *s)
{
    char esc[8];

    put(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, esc[2] = '\0';
            put(b, esc);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc);
        } else {
            cp_buf_append(b, s, 1);
        }
    }
    put(b, "\"");
}

/* ,"k":"v" into an object being built (no comma after its opening brace). */
static void json_member(cp_buf *b, const char *k, const char *v)
{
    if (b->len > 1)
        put(b, ",");
    json_str(b, k);
    put(b, ":");
    json_str(b, v);
}

/* Store b (NUL-terminated here) under key, then release it. */
static void set_json(const char *key, cp_buf *b)
{
    if (cp_buf_append(b, "", 1) == CP_OK && cp_runtime_info_set(key, (const char *)b->data) != CP_OK)
        cp_log(CP_LOG_DEBUG, "runtime info %s rejected", key);
    cp_buf_free(b);
}

static void remember(const char *name, const char *value)
{
    if (strcmp(name, "java.vm.name") == 0)
        snprintf(g_vm_name, sizeof g_vm_name, "%s", value);
    else if (strcmp(name, "java.version") == 0)
        snprintf(g_java_version, sizeof g_java_version, "%s", value);
    else if (strcmp(name, "java.runtime.version") == 0)
        snprintf(g_runtime_version, sizeof g_runtime_version, "%s", value);
    else if (strcmp(name, "java.vendor") == 0)
        snprintf(g_java_vendor, sizeof g_java_vendor, "%s", value);
    else if (strcmp(name, "sun.java.command") == 0) {
        /* "com.example.Main args" or "app.jar args": the main class or jar. */
        const char *end = value + strcspn(value, " ");
        const char *slash = memrchr(value, '/', (size_t)(end - value));
        const char *start = slash ? slash + 1 : value;
        int len = (int)(end - start);
        if (len > 4 && strncmp(end - 4, ".jar", 4) == 0)
            len -= 4;
        snprintf(g_service, sizeof g_service, "%.*s", len, start);
    }
}

static void vm_identity(jvmtiEnv *jvmti)
{
    static const char *const keys[] = {"java.vm.name", "java.vm.vendor", "java.vm.version",
                                       "java.version", "java.vendor", "java.home"};
    /* runtime_facts: what the support report shows as "runtime:". The
     * java.* properties come from Java (system_properties, before this). */
    static const char *const facts[] = {"vm", "vendor", "vm_version", NULL, NULL, "java_home"};
    cp_buf b, f;
    char *v;

    cp_buf_init(&b, 1 << 16);
    cp_buf_init(&f, 1 << 16);
    put(&b, "{");
    put(&f, "{\"type\":\"JVM\"");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if ((*jvmti)->GetSystemProperty(jvmti, keys[i], &v) != JVMTI_ERROR_NONE || v == NULL)
            continue;
        json_member(&b, keys[i], v);
        if (facts[i] != NULL)
            json_member(&f, facts[i], v);
        if (strcmp(keys[i], "java.home") == 0) {
            char exe[4200];
            snprintf(exe, sizeof exe, "%s/bin/java", v);
            json_member(&f, "executable", exe);
        }
        (*jvmti)->Deallocate(jvmti, (unsigned char *)v);
    }
    put(&b, "}");
    if (g_java_version[0])
        json_member(&f, "version", g_java_version);
    if (g_runtime_version[0])
        json_member(&f, "runtime_version", g_runtime_version);
    if (g_java_vendor[0])
        json_member(&f, "java_vendor", g_java_vendor);
    put(&f, "}");
    set_json("vm", &b);
    set_json("runtime_facts", &f);
}

/* One property as ,"k":"v" (also remembered for tags and service). */
static void add_property(cp_buf *b, const char *k, const char *v)
{
    remember(k, v);
    json_member(b, k, v);
}

/* The VM's own list (what -D and the launcher set); enough when the Java
 * view below is unavailable. */
static void jvmti_properties(jvmtiEnv *jvmti, cp_buf *b)
{
    jint n = 0;
    char **names = NULL, *v;

    if ((*jvmti)->GetSystemProperties(jvmti, &n, &names) != JVMTI_ERROR_NONE)
        return;
    for (jint i = 0; i < n; i++) {
        if ((*jvmti)->GetSystemProperty(jvmti, names[i], &v) == JVMTI_ERROR_NONE && v != NULL) {
            add_property(b, names[i], v);
            (*jvmti)->Deallocate(jvmti, (unsigned char *)v);
        }
        (*jvmti)->Deallocate(jvmti, (unsigned char *)names[i]);
    }
    (*jvmti)->Deallocate(jvmti, (unsigned char *)names);
}

static bool failed(JNIEnv *jni)
{
    /* Any pending exception ends the current chain of calls quietly. */
    if (!(*jni)->ExceptionCheck(jni))
        return false;
    (*jni)->ExceptionClear(jni);
    return true;
}

static jobjectArray java_property_names(JNIEnv *jni, jobject *props)
{
    jclass sys = (*jni)->FindClass(jni, "java/lang/System");
    jmethodID gp = sys && !failed(jni) ? (*jni)->GetStaticMethodID(jni, sys, "getProperties", "()Ljava/util/Properties;") : NULL;
    *props = gp && !failed(jni) ? (*jni)->CallStaticObjectMethod(jni, sys, gp) : NULL;
    jclass pc = *props && !failed(jni) ? (*jni)->FindClass(jni, "java/util/Properties") : NULL;
    jmethodID spn = pc && !failed(jni) ? (*jni)->GetMethodID(jni, pc, "stringPropertyNames", "()Ljava/util/Set;") : NULL;
    jobject set = spn && !failed(jni) ? (*jni)->CallObjectMethod(jni, *props, spn) : NULL;
    jclass cc = set && !failed(jni) ? (*jni)->FindClass(jni, "java/util/Collection") : NULL;
    jmethodID ta = cc && !failed(jni) ? (*jni)->GetMethodID(jni, cc, "toArray", "()[Ljava/lang/Object;") : NULL;
    jobjectArray names = ta && !failed(jni) ? (*jni)->CallObjectMethod(jni, set, ta) : NULL;
    return failed(jni) ? NULL : names;
}

/* System.getProperties() as seen from Java: includes java.version & co.,
 * which the VM's list lacks. False if any call failed. */
static bool java_properties(JNIEnv *jni, cp_buf *b)
{
    jobject props = NULL;
    jobjectArray names = java_property_names(jni, &props);
    jclass pc = names ? (*jni)->FindClass(jni, "java/util/Properties") : NULL;
    jmethodID get = pc ? (*jni)->GetMethodID(jni, pc, "getProperty", "(Ljava/lang/String;)Ljava/lang/String;") : NULL;
    jsize n = get && !failed(jni) ? (*jni)->GetArrayLength(jni, names) : -1;

    for (jsize i = 0; i < n; i++) {
        jstring k = (*jni)->GetObjectArrayElement(jni, names, i);
        jstring v = k ? (*jni)->CallObjectMethod(jni, props, get, k) : NULL;
        const char *ks = v && !failed(jni) ? (*jni)->GetStringUTFChars(jni, k, NULL) : NULL;
        const char *vs = ks ? (*jni)->GetStringUTFChars(jni, v, NULL) : NULL;
        if (vs != NULL)
            add_property(b, ks, vs);
        if (vs != NULL)
            (*jni)->ReleaseStringUTFChars(jni, v, vs);
        if (ks != NULL)
            (*jni)->ReleaseStringUTFChars(jni, k, ks);
        failed(jni);
    }
    return n >= 0;
}

static void system_properties(jvmtiEnv *jvmti, JNIEnv *jni)
{
    cp_buf b;

    cp_buf_init(&b, 1 << 20);
    put(&b, "{");
    if ((*jni)->PushLocalFrame(jni, 4096) == JNI_OK) {
        if (!java_properties(jni, &b)) {
            b.len = 1;
            jvmti_properties(jvmti, &b);
        }
        (*jni)->PopLocalFrame(jni, NULL);
    } else {
        failed(jni);
        jvmti_properties(jvmti, &b);
    }
    put(&b, "}");
    set_json("system_properties", &b);
}

/* Options the launcher reads from the environment (part of the JVM's
 * input arguments, not of /proc/self/cmdline). */
static void java_options_env(void)
{
    static const char *const names[] = {"JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"};
    cp_buf b;

    cp_buf_init(&b, 1 << 16);
    put(&b, "{");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v != NULL)
            json_member(&b, names[i], v);
    }
    put(&b, "}");
    set_json("java_options_env", &b);
}

/* Launcher options that take the next word as their value and are not JVM
 * input arguments (the JVM sees them as properties instead). */
static bool launcher_option_with_value(const char *a)
{
    static const char *const opts[] = {"-cp", "-classpath", "--class-path", "-p", "--module-path",
                                       "--upgrade-module-path", "--add-modules", "--limit-modules",
                                       "--add-reads", "--add-exports", "--add-opens",
                                       "--patch-module", "--enable-native-access", "--source"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (strcmp(a, opts[i]) == 0)
            return true;
    return false;
}

/* JVM options = the words before the main class / -jar / -m; until the
 * management view replaces it (collect_late), this is "input_arguments". */
static void input_arguments(const char *buf, size_t n, cp_buf *b)
{
    bool first = true;
    size_t off = strlen(buf) + 1; /* skip argv[0] */

    put(b, "[");
    while (off < n) {
        const char *a = buf + off;
        off += strlen(a) + 1;
        if (a[0] != '-' || strcmp(a, "-jar") == 0 || strcmp(a, "-m") == 0 || strcmp(a, "--module") == 0)
            break;
        if (launcher_option_with_value(a)) {
            off += off < n ? strlen(buf + off) + 1 : 0;
            continue;
        }
        if (!first)
            put(b, ",");
        json_str(b, a);
        first = false;
    }
    put(b, "]");
}

static void command_line(void)
{
    char buf[16384];
    FILE *f = fopen("/proc/self/cmdline", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    cp_buf b;

    if (f != NULL)
        fclose(f);
    buf[n] = '\0';
    cp_buf_init(&b, 1 << 16);
    put(&b, "[");
    for (size_t off = 0; off < n; off += strlen(buf + off) + 1) {
        if (off > 0)
            put(&b, ",");
        json_str(&b, buf + off);
    }
    put(&b, "]");
    set_json("command_line", &b);
    if (n == 0)
        return;
    cp_buf_init(&b, 1 << 16);
    input_arguments(buf, n, &b);
    set_json("input_arguments", &b);
}

/* ---- java.lang.Runtime and java.lang.management, through JNI ------- */

static jobject call_static(JNIEnv *jni, const char *cls, const char *getter, const char *sig)
{
    jclass c = (*jni)->FindClass(jni, cls);
    jmethodID m = c && !failed(jni) ? (*jni)->GetStaticMethodID(jni, c, getter, sig) : NULL;
    jobject o = m && !failed(jni) ? (*jni)->CallStaticObjectMethod(jni, c, m) : NULL;
    return failed(jni) ? NULL : o;
}

jobject cp__mxbean(JNIEnv *jni, const char *getter, const char *sig)
{
    jobject o = call_static(jni, "sun/management/ManagementFactoryHelper", getter, sig);
    return o != NULL ? o : call_static(jni, "java/lang/management/ManagementFactory", getter, sig);
}

static jobject call_obj(JNIEnv *jni, jobject o, const char *cls, const char *name, const char *sig)
{
    jclass c = o ? (*jni)->FindClass(jni, cls) : NULL;
    jmethodID m = c && !failed(jni) ? (*jni)->GetMethodID(jni, c, name, sig) : NULL;
    jobject r = m && !failed(jni) ? (*jni)->CallObjectMethod(jni, o, m) : NULL;
    return failed(jni) ? NULL : r;
}

/* A java.util.List as a JSON array of strings; elements that are not
 * strings are named by getter (e.g. GarbageCollectorMXBean.getName). */
static void list_json(JNIEnv *jni, jobject list, const char *ecls, const char *getter, cp_buf *b)
{
    jclass lc = (*jni)->FindClass(jni, "java/util/List");
    jmethodID size = lc ? (*jni)->GetMethodID(jni, lc, "size", "()I") : NULL;
    jmethodID get = lc ? (*jni)->GetMethodID(jni, lc, "get", "(I)Ljava/lang/Object;") : NULL;
    jint n = size && get && !failed(jni) ? (*jni)->CallIntMethod(jni, list, size) : 0;

    put(b, "[");
    for (jint i = 0; i < n && !failed(jni); i++) {
        jobject e = (*jni)->CallObjectMethod(jni, list, get, i);
        if (getter != NULL && e != NULL && !failed(jni))
            e = call_obj(jni, e, ecls, getter, "()Ljava/lang/String;");
        const char *s = e && !failed(jni) ? (*jni)->GetStringUTFChars(jni, e, NULL) : NULL;
        if (s == NULL)
            continue;
        if (b->len > 1)
            put(b, ",");
        json_str(b, s);
        (*jni)->ReleaseStringUTFChars(jni, e, s);
    }
    put(b, "]");
}

static void flag_json(const char *flag, void *arg)
{
    cp_buf *b = arg;
    if (b->len > 1)
        put(b, ",");
    json_str(b, flag);
}

/* The VM's non-default flags (command line and ergonomics), as `jcmd
 * <pid> VM.flags` prints them: a JSON array of "-XX:..." strings under
 * "vm_flags". From HotSpot's flag table when it is known: the
 * DiagnosticCommand MBean below starts the platform MBean server, which
 * costs the JVM ~0.3 s of CPU (class loading, then the JIT) for a list;
 * it stays the fallback where HotSpot's tables cannot be read. */
static void vm_flags(JNIEnv *jni)
{
    cp_buf fb;
    cp_buf_init(&fb, 1 << 16);
    put(&fb, "[");
    /* Any libjvm function locates the tables: JNI's own GetVersion. */
    if (cp__vms_read_tables((const void *)(*jni)->GetVersion) && cp__vms_flags(flag_json, &fb) >= 0) {
        put(&fb, "]");
        set_json("vm_flags", &fb);
        return;
    }
    cp_buf_free(&fb);
    jobject server = call_static(jni, "java/lang/management/ManagementFactory", "getPlatformMBeanServer",
                                 "()Ljavax/management/MBeanServer;");
    jclass onc = server ? (*jni)->FindClass(jni, "javax/management/ObjectName") : NULL;
    jmethodID onew = onc && !failed(jni) ? (*jni)->GetMethodID(jni, onc, "<init>", "(Ljava/lang/String;)V") : NULL;
    jstring oname = onew && !failed(jni) ? (*jni)->NewStringUTF(jni, "com.sun.management:type=DiagnosticCommand") : NULL;
    jobject on = oname && !failed(jni) ? (*jni)->NewObject(jni, onc, onew, oname) : NULL;
    jclass sc = on && !failed(jni) ? (*jni)->FindClass(jni, "java/lang/String") : NULL;
    jclass oc = sc && !failed(jni) ? (*jni)->FindClass(jni, "java/lang/Object") : NULL;
    jobjectArray none = oc && !failed(jni) ? (*jni)->NewObjectArray(jni, 0, sc, NULL) : NULL;
    jobjectArray params = none && !failed(jni) ? (*jni)->NewObjectArray(jni, 1, oc, none) : NULL;
    jstring sig0 = params && !failed(jni) ? (*jni)->NewStringUTF(jni, "[Ljava.lang.String;") : NULL;
    jobjectArray sig = sig0 && !failed(jni) ? (*jni)->NewObjectArray(jni, 1, sc, sig0) : NULL;
    jstring op = sig && !failed(jni) ? (*jni)->NewStringUTF(jni, "vmFlags") : NULL;
    jclass msc = op && !failed(jni) ? (*jni)->FindClass(jni, "javax/management/MBeanServerConnection") : NULL;
    jmethodID inv = msc && !failed(jni) ? (*jni)->GetMethodID(jni, msc, "invoke",
        "(Ljavax/management/ObjectName;Ljava/lang/String;[Ljava/lang/Object;[Ljava/lang/String;)Ljava/lang/Object;")
                                        : NULL;
    jobject r = inv && !failed(jni) ? (*jni)->CallObjectMethod(jni, server, inv, on, op, params, sig) : NULL;
    const char *text = r && !failed(jni) && (*jni)->IsInstanceOf(jni, r, sc) ? (*jni)->GetStringUTFChars(jni, r, NULL) : NULL;
    if (text == NULL)
        return;
    cp_buf b;
    cp_buf_init(&b, 1 << 16);
    put(&b, "[");
    for (const char *p = text; *p;) {
        p += strspn(p, " \n\t");
        size_t n = strcspn(p, " \n\t");
        if (n) {
            char flag[512];
            snprintf(flag, sizeof flag, "%.*s", (int)(n < sizeof flag ? n : sizeof flag - 1), p);
            if (b.len > 1)
                put(&b, ",");
            json_str(&b, flag);
        }
        p += n;
    }
    put(&b, "]");
    (*jni)->ReleaseStringUTFChars(jni, r, text);
    set_json("vm_flags", &b);
}

static void late_lists(JNIEnv *jni)
{
    cp_buf b;
    jobject rt = cp__mxbean(jni, "getRuntimeMXBean", "()Ljava/lang/management/RuntimeMXBean;");
    jobject args = call_obj(jni, rt, "java/lang/management/RuntimeMXBean", "getInputArguments",
                            "()Ljava/util/List;");
    jobject gcs = cp__mxbean(jni, "getGarbageCollectorMXBeans", "()Ljava/util/List;");

    if (args != NULL) {
        cp_buf_init(&b, 1 << 16);
        list_json(jni, args, NULL, NULL, &b);
        set_json("input_arguments", &b);
    }
    if (gcs != NULL) {
        cp_buf_init(&b, 1 << 12);
        list_json(jni, gcs, "java/lang/management/MemoryManagerMXBean", "getName", &b);
        set_json("gc", &b);
    }
}

static jlong runtime_long(JNIEnv *jni, jclass rc, jobject rt, const char *name)
{
    jmethodID m = (*jni)->GetMethodID(jni, rc, name, "()J");
    jlong v = m && !failed(jni) ? (*jni)->CallLongMethod(jni, rt, m) : -1;
    return failed(jni) ? -1 : v;
}

/* java.lang.Runtime only (no management classes): heap committed at start
 * (= the initial heap), its maximum, and the processors Java sees. */
static void runtime_numbers(JNIEnv *jni)
{
    char json[256];
    jclass rc = (*jni)->FindClass(jni, "java/lang/Runtime");
    jmethodID get = rc && !failed(jni) ? (*jni)->GetStaticMethodID(jni, rc, "getRuntime", "()Ljava/lang/Runtime;") : NULL;
    jobject rt = get && !failed(jni) ? (*jni)->CallStaticObjectMethod(jni, rc, get) : NULL;
    jmethodID procs = rt && !failed(jni) ? (*jni)->GetMethodID(jni, rc, "availableProcessors", "()I") : NULL;
    jint np = procs && !failed(jni) ? (*jni)->CallIntMethod(jni, rt, procs) : -1;

    if (failed(jni) || rt == NULL)
        return;
    snprintf(json, sizeof json, "{\"initial\":%lld,\"max\":%lld}",
             (long long)runtime_long(jni, rc, rt, "totalMemory"),
             (long long)runtime_long(jni, rc, rt, "maxMemory"));
    cp_runtime_info_set("heap_bytes", json);
    if (np > 0) {
        snprintf(json, sizeof json, "%d", (int)np);
        cp_runtime_info_set("available_processors", json);
    }
}

void cp__runtime_info_collect_late(JNIEnv *jni)
{
    if ((*jni)->PushLocalFrame(jni, 128) != JNI_OK) {
        failed(jni);
        return;
    }
    late_lists(jni);
    vm_flags(jni);
    (*jni)->PopLocalFrame(jni, NULL);
}

static void JNICALL late_main(jvmtiEnv *jvmti, JNIEnv *jni, void *arg)
{
    (void)jvmti, (void)arg;
    /* ThreadStart took this for an application thread: it is ours. */
    if (cp__threads_self() != NULL)
        cp__cpu_timer_stop(cp__threads_self());
    cp__threads_unregister_self();
    cp_thread_register_self();
    cp__runtime_info_collect_late(jni);
    cp_thread_unregister_self();
}

int cp__runtime_info_start_late(jvmtiEnv *jvmti, JNIEnv *jni)
{
    jthread t = cp__agent_thread_object(jni, "contprof-info");
    if (t == NULL || (*jvmti)->RunAgentThread(jvmti, t, late_main, NULL, JVMTI_THREAD_MIN_PRIORITY) != JVMTI_ERROR_NONE)
        return CP_EIO;
    return CP_OK;
}

void cp__runtime_info_collect(jvmtiEnv *jvmti, JNIEnv *jni)
{
    system_properties(jvmti, jni);
    vm_identity(jvmti);
    command_line();
    java_options_env();
    if ((*jni)->PushLocalFrame(jni, 32) == JNI_OK) {
        runtime_numbers(jni);
        (*jni)->PopLocalFrame(jni, NULL);
    }
    failed(jni);
}
