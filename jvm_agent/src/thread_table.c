/*
 * thread_table.c — registration of Java threads, TLS, and the info ring.
 */
#include "thread_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "contprof_os.h"
#include "jvm_agent.h"

enum { INFO_RING = 8192, NAME_MAX_LEN = 64 };

typedef struct thread_info {
    atomic_uint serial;      /* 0 while being written (seqlock-style)      */
    int64_t java_id;
    char name[NAME_MAX_LEN];
} thread_info;

__thread JNIEnv *cp__tls_env CP__TLS;
__thread uint32_t cp__tls_serial CP__TLS;
static __thread cp__thread_slot *tls_slot CP__TLS;

static thread_info g_infos[INFO_RING];
static atomic_uint g_next_serial;
static cp__thread_slot *g_slots;      /* never freed: samplers iterate it */
static size_t g_nslots;
static atomic_size_t g_high;          /* slots [0, g_high) were ever used  */
static atomic_bool g_full_logged;
static atomic_bool g_adopted;         /* adopted threads wait for a timer  */

int cp__threads_init(size_t nslots)
{
    g_slots = calloc(nslots, sizeof *g_slots);
    if (g_slots == NULL)
        return CP_ENOMEM;
    g_nslots = nslots;
    return CP_OK;
}

size_t cp__threads_capacity(void) { return g_nslots; }
size_t cp__threads_high_water(void) { return atomic_load_explicit(&g_high, memory_order_acquire); }
cp__thread_slot *cp__threads_slot(size_t i) { return &g_slots[i]; }
cp__thread_slot *cp__threads_self(void) { return tls_slot; }
int32_t cp__threads_index(const cp__thread_slot *s) { return (int32_t)(s - g_slots); }

clockid_t cp__thread_cpu_clock(pid_t tid)
{
    /* What pthread_getcpuclockid computes: CPUCLOCK_SCHED | PERTHREAD. */
    return (clockid_t)((~(unsigned)tid << 3) | 6u);
}

int64_t cp__thread_cpu_ns(pid_t tid)
{
    return cp_os_thread_cpu_ns(tid);
}

static int64_t java_thread_id(JNIEnv *jni, jthread thread)
{
    if (cp__jvm.thread_get_id == NULL || thread == NULL)
        return 0;
    jlong id = (*jni)->CallLongMethod(jni, thread, cp__jvm.thread_get_id);
    if ((*jni)->ExceptionCheck(jni)) {
        (*jni)->ExceptionClear(jni);
        return 0;
    }
    return id;
}

static void thread_name(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread, char *out, size_t n)
{
    jvmtiThreadInfo ti;

    snprintf(out, n, "[unknown]");
    if (thread == NULL)
        return;
    memset(&ti, 0, sizeof ti);
    if ((*jvmti)->GetThreadInfo(jvmti, thread, &ti) != JVMTI_ERROR_NONE)
        return;
    if (ti.name != NULL) {
        snprintf(out, n, "%s", ti.name);
        (*jvmti)->Deallocate(jvmti, (unsigned char *)ti.name);
    }
    if (ti.thread_group != NULL)
        (*jni)->DeleteLocalRef(jni, ti.thread_group);
    if (ti.context_class_loader != NULL)
        (*jni)->DeleteLocalRef(jni, ti.context_class_loader);
}

/* Write entry `serial` (readers see serial 0 meanwhile and retry later). */
static void write_info(uint32_t serial, int64_t java_id, const char *name)
{
    thread_info *e = &g_infos[serial % INFO_RING];

    atomic_store_explicit(&e->serial, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    e->java_id = java_id;
    snprintf(e->name, sizeof e->name, "%s", name);
    atomic_store_explicit(&e->serial, serial, memory_order_release);
}

static uint32_t next_serial(void)
{
    uint32_t serial;

    do /* 0 means "no serial" */
        serial = atomic_fetch_add(&g_next_serial, 1) + 1;
    while (serial == 0);
    return serial;
}

/* The agent's own Java threads (RunAgentThread): ThreadStart reports them
 * like any other, but their CPU is the profiler's, never the program's. */
static bool agent_thread_name(const char *name)
{
    return strcmp(name, "contprof-resolver") == 0 || strcmp(name, "contprof-info") == 0;
}

static uint32_t publish_named(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread, const char *unnamed,
                              char *name, size_t n)
{
    uint32_t serial = next_serial();

    thread_name(jvmti, jni, thread, name, n);
    write_info(serial, java_thread_id(jni, thread), name[0] != '\0' || unnamed == NULL ? name : unnamed);
    /* Lets cp__threads_refresh_names map a jthread back to its serial. */
    if (thread != NULL)
        (*jvmti)->SetThreadLocalStorage(jvmti, thread, (void *)(uintptr_t)serial);
    return serial;
}

uint32_t cp__threads_publish(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread, const char *unnamed)
{
    char name[NAME_MAX_LEN];

    return publish_named(jvmti, jni, thread, unnamed, name, sizeof name);
}

/* Re-read one thread's name; republish its entry if it changed. */
static void refresh_one(jvmtiEnv *jvmti, JNIEnv *jni, jthread t)
{
    void *p = NULL;
    char now[NAME_MAX_LEN], old[NAME_MAX_LEN];
    int64_t id;

    if ((*jvmti)->GetThreadLocalStorage(jvmti, t, &p) != JVMTI_ERROR_NONE || p == NULL)
        return;
    uint32_t serial = (uint32_t)(uintptr_t)p;
    thread_name(jvmti, jni, t, now, sizeof now);
    if (cp__thread_info_get(serial, old, sizeof old, &id) && strcmp(old, now) != 0)
        write_info(serial, id, now);
}

void cp__threads_refresh_names(jvmtiEnv *jvmti, JNIEnv *jni)
{
    jint n = 0;
    jthread *threads = NULL;

    if ((*jvmti)->GetAllThreads(jvmti, &n, &threads) != JVMTI_ERROR_NONE)
        return;
    /* JVMTI just made n local references; tell JNI (checked JNI warns). */
    if ((*jni)->EnsureLocalCapacity(jni, n + 8) != JNI_OK)
        (*jni)->ExceptionClear(jni);
    for (jint i = 0; i < n; i++) {
        refresh_one(jvmti, jni, threads[i]);
        (*jni)->DeleteLocalRef(jni, threads[i]);
    }
    (*jvmti)->Deallocate(jvmti, (unsigned char *)threads);
}

static cp__thread_slot *claim_slot(bool may_log)
{
    /* Lowest free slot first, so that the samplers' range [0, high) stays
     * short; a plain load before the CAS keeps busy slots' lines shared. */
    for (size_t i = 0; i < g_nslots; i++) {
        int expect = CP__SLOT_FREE;
        if (atomic_load_explicit(&g_slots[i].state, memory_order_relaxed) != CP__SLOT_FREE ||
            !atomic_compare_exchange_strong(&g_slots[i].state, &expect, CP__SLOT_BUSY))
            continue;
        size_t high = atomic_load(&g_high);
        while (high < i + 1 && !atomic_compare_exchange_weak(&g_high, &high, i + 1)) {
        }
        return &g_slots[i];
    }
    if (may_log && !atomic_exchange(&g_full_logged, true))
        cp_log(CP_LOG_WARN, "more than %zu live Java threads: the extra ones are not sampled", g_nslots);
    return NULL;
}

/* Slot s now samples the calling thread (signal-safe). */
/* The wall signal counters (wall_state, wall_handled) are not reset here:
 * the wall sampler may be updating them for the previous occupant right
 * now; it resets them itself when it sees the new gen. */
static void activate(cp__thread_slot *s, uint32_t serial)
{
    atomic_fetch_add(&s->gen, 1); /* odd: being written */
    atomic_store(&s->tid, (pid_t)syscall(SYS_gettid));
    atomic_store(&s->serial, serial);
    int64_t now = cp_now_ns();
    atomic_store(&s->active_ns, now);
    atomic_store(&s->wall_upto_ns, now);
    atomic_store(&s->cpu_charged_ns, cp__thread_cpu_ns(atomic_load(&s->tid)));
    atomic_store(&s->wall_cpu_ns, -1);
    atomic_fetch_add(&s->gen, 1); /* even: consistent */
    atomic_store_explicit(&s->state, CP__SLOT_ACTIVE, memory_order_release);
}

bool cp__threads_read(cp__thread_slot *s, cp__thread_view *v)
{
    if (atomic_load_explicit(&s->state, memory_order_acquire) != CP__SLOT_ACTIVE)
        return false;
    v->gen = atomic_load(&s->gen);
    v->tid = atomic_load(&s->tid);
    v->serial = atomic_load(&s->serial);
    v->active_ns = atomic_load(&s->active_ns);
    return (v->gen & 1u) == 0 && cp__threads_still(s, v->gen);
}

bool cp__threads_still(cp__thread_slot *s, unsigned gen)
{
    return atomic_load(&s->gen) == gen && atomic_load(&s->state) == CP__SLOT_ACTIVE;
}

cp__thread_slot *cp__threads_register_self(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread)
{
    char name[NAME_MAX_LEN];
    uint32_t serial = publish_named(jvmti, jni, thread, NULL, name, sizeof name);

    if (agent_thread_name(name))
        return NULL;
    cp__thread_slot *s = claim_slot(true);

    cp__tls_serial = serial;
    cp__tls_env = jni;
    tls_slot = s;
    if (s != NULL)
        activate(s, serial);
    return s;
}

cp__thread_slot *cp__threads_adopt_self(JNIEnv *jni)
{
    if (tls_slot != NULL || cp__tls_env != NULL)
        return NULL;
    cp__thread_slot *s = claim_slot(false);
    if (s == NULL)
        return NULL;
    /* No info entry: no JVMTI here. Samples take the kernel's copy of the
     * thread name (/proc/self/task/N/comm), which HotSpot sets to the Java
     * name, cut to 15 characters. */
    cp__tls_serial = next_serial();
    cp__tls_env = jni;
    tls_slot = s;
    activate(s, cp__tls_serial);
    atomic_store(&g_adopted, true);
    return s;
}

bool cp__threads_take_adopted(void) { return atomic_exchange(&g_adopted, false); }

void cp__threads_unregister_self(void)
{
    cp__thread_slot *s = tls_slot;

    /* Clear TLS first: a signal arriving from here on finds no env and falls
     * back to asking the VM, which knows the thread is exiting. */
    cp__tls_env = NULL;
    tls_slot = NULL;
    if (s != NULL)
        atomic_store_explicit(&s->state, CP__SLOT_FREE, memory_order_release);
}

bool cp__thread_info_get(uint32_t serial, char *name, size_t n, int64_t *java_id)
{
    thread_info *e = &g_infos[serial % INFO_RING];

    if (serial == 0 || atomic_load_explicit(&e->serial, memory_order_acquire) != serial)
        return false;
    char copy[NAME_MAX_LEN];
    /* Fixed-size copy: the writer may be mid-string, so never scan for NUL. */
    memcpy(copy, e->name, sizeof copy);
    copy[NAME_MAX_LEN - 1] = '\0';
    *java_id = e->java_id;
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->serial, memory_order_relaxed) != serial)
        return false;
    snprintf(name, n, "%s", copy);
    return true;
}
