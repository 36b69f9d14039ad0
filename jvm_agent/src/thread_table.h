/*
 * thread_table.h — the Java threads the agent samples.
 *
 * Two tables, both preallocated:
 *  - slots: one per live registered thread (tid, CPU timer, wall bookkeeping),
 *    claimed at ThreadStart and released at ThreadEnd;
 *  - infos: a ring indexed by a per-thread serial number that keeps name and
 *    Java id for a while after the thread ended, so a sample of a short-lived
 *    thread still gets its labels when the resolver reaches it.
 * The calling thread's JNIEnv and serial live in initial-exec TLS, which a
 * signal handler may read (no dynamic-linker call, no allocation).
 */
#ifndef CP_JVM_THREAD_TABLE_H
#define CP_JVM_THREAD_TABLE_H

#include <jvmti.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define CP__TLS __attribute__((tls_model("initial-exec")))
extern __thread JNIEnv *cp__tls_env CP__TLS;
extern __thread uint32_t cp__tls_serial CP__TLS;

enum { CP__SLOT_FREE = 0, CP__SLOT_BUSY = 1, CP__SLOT_ACTIVE = 2 };
#define CP__WALL_ENDED INT64_MAX

/* A slot is reused by later threads: `gen` changes at every activation, so
 * another thread that read tid/serial can check (gen before and after)
 * that they belong to one and the same thread. */
typedef struct cp__thread_slot {
    atomic_int state;        /* CP__SLOT_*                                  */
    atomic_uint gen;         /* activations so far                          */
    _Atomic pid_t tid;
    _Atomic uint32_t serial;
    atomic_int timer_armed;  /* 1 while `timer` is ours to delete           */
    timer_t timer;
    atomic_llong active_ns;  /* when this occupant was activated           */
    atomic_llong cpu_charged_ns; /* its CPU time already in samples (the
                                thread itself: its signal handler, ThreadEnd) */
    atomic_llong wall_cpu_ns;/* thread CPU time at the end of its last wall
                                sample (written by its signal handler)      */
    atomic_llong wall_upto_ns;/* its wall time is in samples up to here: the
                                wall sampler moves it on by CAS, ThreadEnd
                                takes the rest (CP__WALL_ENDED)             */
    atomic_uint wall_handled;/* seq of the last wall signal it handled       */
    atomic_uint wall_state;  /* seq << 1 | repeatable: seq counts the wall
                                signals sent to this thread; repeatable says
                                the resolver holds the stack of signal seq  */
    uint64_t rng;            /* its CPU timer's jitter (its handler; 0 = unseeded) */
} cp__thread_slot;

/* Allocate nslots slots (once, before threads register). CP_ENOMEM. */
int cp__threads_init(size_t nslots);

/* Register the calling Java thread (ThreadStart, or VMInit for main): reads
 * its name and Java id, sets the TLS, claims a slot. Returns the slot, or NULL
 * when the table is full (the thread is then not sampled; counted once). */
cp__thread_slot *cp__threads_register_self(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread);

/* A new serial for `thread` with its name (or `unnamed` if it has none and
 * that is not NULL) and Java id in the info ring; the serial is also put
 * in the thread's JVMTI thread-local storage. */
uint32_t cp__threads_publish(jvmtiEnv *jvmti, JNIEnv *jni, jthread thread, const char *unnamed);

/* Late attach, in the signal handler of a thread that was running before
 * the agent came (signal-safe: atomics and TLS only): register the calling
 * Java thread. NULL if already registered or the table is full. Its CPU
 * timer is created later by the wall sampler (cp__threads_take_adopted). */
cp__thread_slot *cp__threads_adopt_self(JNIEnv *jni);

/* True (once) if threads were adopted since the last call: their slots have
 * no CPU timer yet (timer_armed == 0). */
bool cp__threads_take_adopted(void);

/* The calling thread's slot, or NULL. */
cp__thread_slot *cp__threads_self(void);

/* Release the calling thread's slot and clear its TLS (ThreadEnd). The
 * caller has stopped the slot's timer first. */
void cp__threads_unregister_self(void);

/* A consistent copy of an active slot's identity (seqlock on gen). */
typedef struct cp__thread_view {
    unsigned gen;
    pid_t tid;
    uint32_t serial;
    int64_t active_ns;
} cp__thread_view;

/* Any thread: copy s's identity; false if s is not active (or is being
 * reused right now). */
bool cp__threads_read(cp__thread_slot *s, cp__thread_view *v);

/* Is s still active with the occupant that had generation gen? */
bool cp__threads_still(cp__thread_slot *s, unsigned gen);

/* Index of slot s in the table. */
int32_t cp__threads_index(const cp__thread_slot *s);

/* CPU time (ns) consumed so far by thread tid of this process, -1 if gone.
 * Any thread may ask about any other (Linux per-thread CPU clock). */
int64_t cp__thread_cpu_ns(pid_t tid);
clockid_t cp__thread_cpu_clock(pid_t tid);

/* Slot i of cp__threads_capacity(), for the samplers to iterate. */
size_t cp__threads_capacity(void);
/* Slots at or past this index were never used (iterate [0, high_water)). */
size_t cp__threads_high_water(void);
cp__thread_slot *cp__threads_slot(size_t i);

/* Resolver, now and then: threads renamed since they started get their
 * new name in later samples (JVMTI thread-local storage maps a jthread to
 * its serial). */
void cp__threads_refresh_names(jvmtiEnv *jvmti, JNIEnv *jni);

/* Name (truncated to n) and Java id of the thread with this serial, if its
 * ring entry was not reused since. */
bool cp__thread_info_get(uint32_t serial, char *name, size_t n, int64_t *java_id);

#endif /* CP_JVM_THREAD_TABLE_H */
