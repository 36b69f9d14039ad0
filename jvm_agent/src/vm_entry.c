/*
 * vm_entry.c — the agent's entry points (Agent_OnLoad/OnAttach/OnUnload)
 * and VM life-cycle events (VMInit, VMDeath, thread start/end, class
 * preparation). Only the three Agent_* symbols are exported.
 *
 * Shutdown: VMDeath flips the state to STOPPED first (signal handlers and
 * callbacks then do nothing), stops timers, drains once and calls cp_stop,
 * which bounds the final export by flush_deadline_ms. Nothing is freed:
 * threads still running Java code after VMDeath may take one more signal.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agct.h"
#include "agent_options.h"
#include "alloc_sampler.h"
#include "call_trace_store.h"
#include "code_map.h"
#include "contprof_os.h"
#include "cpu_sampler.h"
#include "exception_sampler.h"
#include "jvm_agent.h"
#include "native_threads.h"
#include "lock_sampler.h"
#include "runtime_info.h"
#include "sampling_signal.h"
#include "thread_table.h"
#include "trace_resolver.h"
#include "vthreads.h"
#include "vm_structs.h"
#include "wall_sampler.h"

#define EXPORT __attribute__((visibility("default")))

enum { STORE_SLOTS = 1024, THREAD_SLOTS = 4096, EXPORT_SYNC_MS = 200,
       FINAL_DRAIN_MS = 500 };

cp__jvm_state cp__jvm;

static void JNICALL on_class_load(jvmtiEnv *jvmti, JNIEnv *jni, jthread t, jclass k)
{
    /* Nothing to do: AsyncGetCallTrace needs the event enabled, that's all. */
    (void)jvmti, (void)jni, (void)t, (void)k;
}

/* jmethodIDs must exist before AGCT meets a method: create them now. */
static void preallocate_method_ids(jvmtiEnv *jvmti, jclass k)
{
    jint n = 0;
    jmethodID *ids = NULL;

    if ((*jvmti)->GetClassMethods(jvmti, k, &n, &ids) == JVMTI_ERROR_NONE && ids != NULL)
        (*jvmti)->Deallocate(jvmti, (unsigned char *)ids);
}

static void JNICALL on_class_prepare(jvmtiEnv *jvmti, JNIEnv *jni, jthread t, jclass k)
{
    (void)jni, (void)t;
    preallocate_method_ids(jvmti, k);
}

static void preallocate_loaded(jvmtiEnv *jvmti, JNIEnv *jni)
{
    jint n = 0;
    jclass *classes = NULL;

    if ((*jvmti)->GetLoadedClasses(jvmti, &n, &classes) != JVMTI_ERROR_NONE)
        return;
    /* JVMTI just made n local references; tell JNI (checked JNI warns). */
    if ((*jni)->EnsureLocalCapacity(jni, n) != JNI_OK)
        (*jni)->ExceptionClear(jni);
    for (jint i = 0; i < n; i++) {
        preallocate_method_ids(jvmti, classes[i]);
        (*jni)->DeleteLocalRef(jni, classes[i]);
    }
    (*jvmti)->Deallocate(jvmti, (unsigned char *)classes);
}

static void start_thread_sampling(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread)
{
    /* A thread can be reported twice (VMInit's thread, then ThreadStart as
     * the launcher re-attaches it): one timer per thread, never two. */
    if (cp__threads_self() != NULL)
        return;
    cp__thread_slot *s = cp__threads_register_self(jvmti, jni, thread);
    if (s != NULL && cp__jvm.cpu_on)
        cp__cpu_timer_start(s, cp__signal_current());
}

static void JNICALL on_thread_start(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread)
{
    if (cp__jvm_running())
        start_thread_sampling(jvmti, jni, thread);
}

static void JNICALL on_thread_end(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread)
{
    cp__thread_slot *s = cp__threads_self();

    (void)jvmti, (void)jni, (void)thread;
    if (s != NULL) {
        cp__cpu_timer_stop(s);
        if (cp__jvm.cpu_on && cp__jvm_running())
            cp__cpu_thread_end(s);
        if (cp__jvm_running())
            cp__wall_thread_end(s);
    }
    cp__threads_unregister_self();
}

static void set_event(jvmtiEnv *jvmti, jvmtiEventMode mode, jvmtiEvent ev)
{
    if ((*jvmti)->SetEventNotificationMode(jvmti, mode, ev, NULL) != JVMTI_ERROR_NONE)
        cp_log(CP_LOG_DEBUG, "cannot set JVMTI event %d", (int)ev);
}

static void export_hook(void *ctx)
{
    (void)ctx;
    cp__resolver_sync(EXPORT_SYNC_MS);
    if (cp__jvm.heap_on)
        cp__heap_export();
    if (cp__jvm.native_on)
        cp__native_threads_publish_stats();
}

/* Settings in effect -> cp__jvm, intersected with what this VM can do. */
static void snapshot_settings(jvmtiEnv *jvmti)
{
    const cp_config *c = cp_config_get();
    jvmtiCapabilities caps;

    memset(&caps, 0, sizeof caps);
    (*jvmti)->GetCapabilities(jvmti, &caps);
    cp__jvm.max_frames = (int)(c->max_frames > 0 && c->max_frames < 600 ? c->max_frames : 64);
    cp__jvm.walk_depth = cp__jvm.max_frames + 1;
    cp__jvm.cpu_interval_ns = c->cpu_interval_us * 1000;
    cp__jvm.wall_interval_ns = c->wall_interval_us * 1000;
    cp__jvm.wall_threads_max = (int)c->wall_threads_max;
    cp__jvm.alloc_interval = c->alloc_interval_bytes;
    cp__jvm.cpu_on = c->cpu_enabled;
    cp__jvm.native_on = c->cpu_enabled && c->native_frames;
    cp__jvm.wall_on = c->wall_enabled;
    cp__jvm.alloc_on = (c->alloc_enabled || c->heap_enabled) &&
                       caps.can_generate_sampled_object_alloc_events;
    cp__jvm.heap_on = c->heap_enabled && caps.can_generate_sampled_object_alloc_events &&
                      caps.can_tag_objects && caps.can_generate_object_free_events &&
                      caps.can_generate_garbage_collection_events;
}

/* Signal + AGCT for CPU and wall; turns both off when either is missing. */
static void setup_signal(jvmtiEnv *jvmti)
{
    cp__agct_fn agct;
    const char *sig = cp_config_get()->cpu_signal;
    bool explicit_sig = cp__options_signal_explicit();

    if (!cp__jvm.cpu_on && !cp__jvm.wall_on)
        return;
    if (cp__signal_parse(sig) < 0) {
        cp_log(CP_LOG_WARN, "cpu_signal=%s is not a signal (expected a name such as SIGPROF or "
               "SIGRTMIN+9, or a number): the default is used", sig);
        sig = cp__options_default("cpu_signal");
        explicit_sig = false;
    }
    agct = cp__agct_lookup((const void *)(*jvmti)->GetVersionNumber);
    if (agct == NULL)
        cp_log(CP_LOG_ERROR, "AsyncGetCallTrace not found in this JVM: CPU and wall profiles disabled");
    if (cp__signal_parse(sig) == SIGPROF && cp__options_jfr_owns_sigprof(jvmti)) {
        if (explicit_sig) {
            cp_log(CP_LOG_INFO, "cpu_signal=SIGPROF as asked: JFR's CPU-time sampler "
                   "(jdk.CPUTimeSample) cannot run in this JVM meanwhile");
        } else {
            cp_log(CP_LOG_INFO, "leaving SIGPROF to JFR's CPU-time sampler; sampling with a real-time signal");
            sig = CP__DEFAULT_RT_SIGNAL;
        }
    }
    if (agct == NULL || cp__signal_install(sig, explicit_sig, agct) < 0)
        cp__jvm.cpu_on = cp__jvm.wall_on = false;
}

static int init_tables(JNIEnv *jni)
{
    if (cp__store_init(STORE_SLOTS, cp__jvm.walk_depth) != CP_OK ||
        cp__threads_init(THREAD_SLOTS) != CP_OK || cp__cpu_init(THREAD_SLOTS, cp__jvm.walk_depth) != CP_OK)
        return CP_ENOMEM;
    if (cp__jvm.heap_on && cp__heap_init(jni) != CP_OK)
        cp__jvm.heap_on = false;
    return CP_OK;
}

static int start_core(void)
{
    cp_runtime_desc rt = {
        .family = "java",
        .language = "jvm",
        .runtime = *cp__runtime_vm_name() ? cp__runtime_vm_name() : "Java",
        .runtime_version = cp__runtime_java_version(),
        .kinds = (cp__jvm.cpu_on ? CP_KIND_CPU : 0u) | (cp__jvm.wall_on ? CP_KIND_WALL : 0u) |
                 (cp__jvm.alloc_on ? CP_KIND_ALLOC : 0u) | (cp__jvm.heap_on ? CP_KIND_HEAP : 0u) |
                 CP_KIND_LOCK | CP_KIND_EXCEPTION,
    };
    const char *svc = cp__runtime_default_service();

    if (*svc != '\0')
        cp_config_set("service", svc, CP_SRC_DEFAULT);
    cp_set_export_hook(export_hook, NULL);
    return cp_start(&rt);
}

static void enable_events(jvmtiEnv *jvmti)
{
    set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_THREAD_START);
    set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_THREAD_END);
    if (cp_config_get()->virtual_threads && (cp__jvm.cpu_on || cp__jvm.wall_on || cp__jvm.alloc_on) &&
        cp__vthreads_start(jvmti))
        cp_log(CP_LOG_DEBUG, "virtual threads: tracked");
    if (cp__jvm.alloc_on) {
        cp__alloc_start(jvmti);
        set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_SAMPLED_OBJECT_ALLOC);
    }
    if (cp__jvm.heap_on) {
        set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_OBJECT_FREE);
        set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_GARBAGE_COLLECTION_FINISH);
    }
}

static void cache_thread_get_id(JNIEnv *jni)
{
    jclass t = (*jni)->FindClass(jni, "java/lang/Thread");
    if (t != NULL)
        cp__jvm.thread_get_id = (*jni)->GetMethodID(jni, t, "getId", "()J");
    if ((*jni)->ExceptionCheck(jni))
        (*jni)->ExceptionClear(jni);
}

static bool give_up(const char *why)
{
    cp_log(CP_LOG_ERROR, "%s; the application runs unprofiled", why);
    atomic_store(&cp__jvm.state, CP__JVM_STOPPED);
    return false;
}

static void init_vm_structs(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread)
{
    jthread self = thread;

    if (self == NULL && (*jvmti)->GetCurrentThread(jvmti, &self) != JVMTI_ERROR_NONE)
        self = NULL;
    if (!cp__vms_init((const void *)(*jvmti)->GetVersionNumber, jni, self))
        cp_log(CP_LOG_DEBUG, "HotSpot frame anchors not readable: stacks of threads in VM code "
               "without a recorded Java pc stay [unknown_not_Java]");
}

/* Settings, tables, signal and core: everything before any sampler runs. */
static bool prepare(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread)
{
    int rc;

    set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_CLASS_LOAD);
    set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_CLASS_PREPARE);
    preallocate_loaded(jvmti, jni);
    cp__options_from_sysprops(jvmti);
    cp__runtime_info_collect(jvmti, jni);
    snapshot_settings(jvmti);
    cache_thread_get_id(jni);
    if (init_tables(jni) != CP_OK)
        return give_up("JVM agent out of memory at start");
    setup_signal(jvmti);
    if (cp__jvm.cpu_on || cp__jvm.wall_on)
        init_vm_structs(jvmti, jni, thread);
    if (!cp__jvm.cpu_on && !cp__jvm.wall_on) { /* no stacks taken: no code map needed */
        set_event(jvmti, JVMTI_DISABLE, JVMTI_EVENT_COMPILED_METHOD_LOAD);
        set_event(jvmti, JVMTI_DISABLE, JVMTI_EVENT_COMPILED_METHOD_UNLOAD);
        set_event(jvmti, JVMTI_DISABLE, JVMTI_EVENT_DYNAMIC_CODE_GENERATED);
    } else {
        /* Code generated before the events were on: the interpreter (made
         * before VMInit), and at late attach everything compiled so far. */
        (*jvmti)->GenerateEvents(jvmti, JVMTI_EVENT_DYNAMIC_CODE_GENERATED);
        if (thread == NULL)
            (*jvmti)->GenerateEvents(jvmti, JVMTI_EVENT_COMPILED_METHOD_LOAD);
    }
    if (cp__jvm.native_on && (!cp__jvm.cpu_on || cp_native_init() != CP_OK ||
                              cp__native_threads_init() != CP_OK)) {
        if (cp__jvm.cpu_on)
            cp_log(CP_LOG_WARN, "native unwinder unavailable: CPU stacks hold Java frames only");
        cp__jvm.native_on = false;
    }
    if ((rc = start_core()) != CP_OK) {
        cp_log(CP_LOG_ERROR, "profiler core did not start: %s", cp_strerror(rc));
        return give_up("no profiler core");
    }
    return true;
}

/* Late attach: every thread of the process is asked (by signal) to
 * register itself if it is a Java thread; the caller is skipped. */
static void adopt_running_threads(void)
{
    enum { MAX_LISTED = 16384 };
    pid_t *tids;
    pid_t self = cp_os_gettid();
    long n;

    if (cp__signal_current() == 0 || (tids = malloc(MAX_LISTED * sizeof *tids)) == NULL)
        return;
    n = cp_os_list_threads(tids, MAX_LISTED);
    if (n > MAX_LISTED)
        cp_log(CP_LOG_WARN, "%ld threads at attach: only the first %d are adopted", n, (int)MAX_LISTED);
    for (long i = 0; i < n && i < MAX_LISTED; i++)
        if (tids[i] != self)
            cp__signal_send_adopt(tids[i]);
    free(tids);
}

/* The `diagnose` option: the support report on stdout, then the JVM ends
 * through System.exit with 0 (healthy) or 1, without running main. */
static void diagnose_and_exit(jvmtiEnv *jvmti, JNIEnv *jni)
{
    char *report = NULL;
    cp__options_from_sysprops(jvmti);
    cp__runtime_info_collect(jvmti, jni);
    cp__runtime_info_collect_late(jni);
    int problems = cp_diagnose(&report);
    if (report != NULL)
        fputs(report, stdout);
    fflush(stdout);
    free(report);
    jclass sys = (*jni)->FindClass(jni, "java/lang/System");
    jmethodID ex = sys ? (*jni)->GetStaticMethodID(jni, sys, "exit", "(I)V") : NULL;
    if (ex != NULL)
        (*jni)->CallStaticVoidMethod(jni, sys, ex, (jint)(problems != 0));
    _exit(problems != 0); /* System.exit does not return; if it could not run */
}

/* VMInit (or OnAttach): settings are final, start everything. */
static void vm_started(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread)
{
    if (cp__options_diagnose()) {
        diagnose_and_exit(jvmti, jni);
        return;
    }
    if (!prepare(jvmti, jni, thread))
        return;
    /* The resolver loops while RUNNING: start it only once we are. */
    atomic_store(&cp__jvm.state, CP__JVM_RUNNING);
    if (thread == NULL) /* attach: before our own threads exist */
        adopt_running_threads();
    if (cp__resolver_start(jvmti, jni) != CP_OK) {
        give_up("resolver thread did not start");
        cp_stop();
        return;
    }
    if (cp__runtime_info_start_late(jvmti, jni) != CP_OK)
        cp_log(CP_LOG_DEBUG, "no thread for the JVM's management info; profiles go without it");
    if (thread != NULL)
        start_thread_sampling(jvmti, jni, thread);
    enable_events(jvmti);
    cp__locks_start(jvmti, cp_config_get()->lock_enabled, cp__jvm.wall_on);
    cp__exceptions_start(jvmti, jni, thread == NULL);
    if ((cp__jvm.cpu_on || cp__jvm.wall_on) && cp__wall_sampler_start() != CP_OK)
        cp_log(CP_LOG_ERROR, "wall sampler thread did not start: no wall profile");
}

static void JNICALL on_vm_init(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread)
{
    vm_started(jvmti, jni, thread);
}

static void say_where(void)
{
    char *where = cp_destinations_describe();
    char *save = NULL;

    if (where == NULL || cp_config_get()->log_level == CP_LOG_OFF) {
        free(where);
        return;
    }
    for (char *line = strtok_r(where, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        fprintf(stderr, "contprof: %s\n", line);
    free(where);
}

static void JNICALL on_vm_death(jvmtiEnv *jvmti, JNIEnv *jni)
{
    int expect = CP__JVM_RUNNING;

    if (!atomic_compare_exchange_strong(&cp__jvm.state, &expect, CP__JVM_STOPPED))
        return;
    set_event(jvmti, JVMTI_DISABLE, JVMTI_EVENT_SAMPLED_OBJECT_ALLOC);
    cp__cpu_timers_stop_all();
    cp__native_threads_stop_all();
    cp__resolver_final_drain(jvmti, jni, FINAL_DRAIN_MS);
    if (cp__jvm.heap_on)
        cp__heap_flush_frees(jvmti);
    cp_stop(); /* bounded by flush_deadline_ms */
    say_where();
}

static void request_capabilities(jvmtiEnv *jvmti)
{
    jvmtiCapabilities pot, want;

    memset(&pot, 0, sizeof pot);
    memset(&want, 0, sizeof want);
    (*jvmti)->GetPotentialCapabilities(jvmti, &pot);
    want.can_get_source_file_name = pot.can_get_source_file_name;
    want.can_get_line_numbers = pot.can_get_line_numbers;
    want.can_generate_sampled_object_alloc_events = pot.can_generate_sampled_object_alloc_events;
    want.can_tag_objects = pot.can_tag_objects;
    want.can_generate_object_free_events = pot.can_generate_object_free_events;
    want.can_generate_garbage_collection_events = pot.can_generate_garbage_collection_events;
    /* For the CompiledMethodLoad event (see agent_load). */
    want.can_generate_compiled_method_load_events = pot.can_generate_compiled_method_load_events;
    cp__locks_want_caps(&pot, &want);
    cp__exceptions_want_caps(&pot, &want);
    cp__vthreads_want(&pot, &want);
    if ((*jvmti)->AddCapabilities(jvmti, &want) != JVMTI_ERROR_NONE)
        cp_log(CP_LOG_WARN, "some JVMTI capabilities unavailable: fewer profile types");
}

static int set_callbacks(jvmtiEnv *jvmti)
{
    jvmtiEventCallbacks cb;

    memset(&cb, 0, sizeof cb);
    cb.VMInit = on_vm_init;
    cb.VMDeath = on_vm_death;
    cb.ThreadStart = on_thread_start;
    cb.ThreadEnd = on_thread_end;
    cb.ClassLoad = on_class_load;
    cb.ClassPrepare = on_class_prepare;
    cb.CompiledMethodLoad = cp__on_compiled_method_load;
    cb.CompiledMethodUnload = cp__on_compiled_method_unload;
    cb.DynamicCodeGenerated = cp__on_dynamic_code_generated;
    cb.SampledObjectAlloc = cp__on_sampled_alloc;
    cb.ObjectFree = cp__on_object_free;
    cb.GarbageCollectionFinish = cp__on_gc_finish;
    cb.MonitorContendedEnter = cp__on_monitor_contended_enter;
    cb.MonitorContendedEntered = cp__on_monitor_contended_entered;
    cb.NativeMethodBind = cp__on_native_method_bind;
    cp__vthreads_callbacks(&cb);
    return (*jvmti)->SetEventCallbacks(jvmti, &cb, sizeof cb) == JVMTI_ERROR_NONE ? CP_OK : CP_EIO;
}

/* The newest JVMTI this JVM has that the agent knows: an environment of
 * version 21 or later is needed for virtual thread support. */
static bool get_jvmti(JavaVM *vm, jvmtiEnv **jvmti)
{
#if CP_JVMTI_MAJOR >= 21
    if ((*vm)->GetEnv(vm, (void **)jvmti, JVMTI_VERSION_21) == JNI_OK && *jvmti != NULL)
        return true;
#endif
    return (*vm)->GetEnv(vm, (void **)jvmti, JVMTI_VERSION_1_2) == JNI_OK && *jvmti != NULL;
}

static jint agent_load(JavaVM *vm, const char *options)
{
    jvmtiEnv *jvmti = NULL;

    if (cp__jvm.vm != NULL) {
        cp_log(CP_LOG_WARN, "JVM agent loaded twice; the second load is ignored");
        return JNI_OK;
    }
    if (!get_jvmti(vm, &jvmti)) {
        cp_log(CP_LOG_ERROR, "no JVMTI in this JVM: not profiling");
        return JNI_OK; /* never stop the application from starting */
    }
    cp__jvm.vm = vm;
    cp__jvm.jvmti = jvmti;
    cp__options_load(options);
    request_capabilities(jvmti);
    if (set_callbacks(jvmti) != CP_OK) {
        cp_log(CP_LOG_ERROR, "cannot register JVMTI callbacks: not profiling");
        return JNI_OK;
    }
    set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_VM_INIT);
    set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_VM_DEATH);
    cp__exceptions_listen(jvmti);
    /* CompiledMethodLoad, first for its side effect: while any JVMTI agent
     * listens to it, and DebugNonSafepoints was not set on the command line,
     * the JIT records debug info at every pc, not only at safepoints
     * (HotSpot's DebugInformationRecorder), so AGCT charges a pc inside an
     * inlined method to that method, not to the nearest safepoint's. From
     * the first compilation on (at late attach: from now on; code compiled
     * before keeps safepoint-only debug info until it is recompiled). Then,
     * with Unload and DynamicCodeGenerated, for frame kinds (code_map.h). */
    set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_COMPILED_METHOD_LOAD);
    set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_COMPILED_METHOD_UNLOAD);
    set_event(jvmti, JVMTI_ENABLE, JVMTI_EVENT_DYNAMIC_CODE_GENERATED);
    return JNI_OK;
}

EXPORT JNIEXPORT jint JNICALL Agent_OnLoad(JavaVM *vm, char *options, void *reserved)
{
    (void)reserved;
    return agent_load(vm, options);
}

/* Late attach (jcmd JVMTI.agent_load): everything starts at once; threads
 * already running are adopted through the sampling signal. */
EXPORT JNIEXPORT jint JNICALL Agent_OnAttach(JavaVM *vm, char *options, void *reserved)
{
    JNIEnv *jni = NULL;

    (void)reserved;
    if (agent_load(vm, options) != JNI_OK || cp__jvm.jvmti == NULL ||
        (*vm)->GetEnv(vm, (void **)&jni, JNI_VERSION_1_6) != JNI_OK)
        return JNI_OK;
    if (atomic_load(&cp__jvm.state) == CP__JVM_LOADED)
        vm_started(cp__jvm.jvmti, jni, NULL);
    return JNI_OK;
}

EXPORT JNIEXPORT void JNICALL Agent_OnUnload(JavaVM *vm)
{
    /* VMDeath already stopped everything; the library stays mapped. */
    (void)vm;
}
