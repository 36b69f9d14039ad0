/*
 * jvm_agent.h — state shared by the files of the JVMTI agent (internal).
 *
 * One global, cp__jvm, set up in Agent_OnLoad and never freed: the JVM may
 * run threads (and deliver signals) after VMDeath, so nothing they can touch
 * is ever released. Fields are written before the samplers start and read
 * only afterwards, except `state`, which is atomic.
 */
#ifndef CP_JVM_AGENT_H
#define CP_JVM_AGENT_H

#include <jvmti.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "contprof.h"

enum {
    CP__JVM_LOADED = 0,   /* Agent_OnLoad done, VM not initialised yet */
    CP__JVM_RUNNING = 1,  /* samplers on                                 */
    CP__JVM_STOPPED = 2,  /* VMDeath seen (or start failed): ignore all  */
};

typedef struct cp__jvm_state {
    JavaVM *vm;
    jvmtiEnv *jvmti;
    atomic_int state;          /* CP__JVM_*                                 */
    int max_frames;            /* frames per stack in profiles              */
    int walk_depth;            /* max_frames + 1: one more tells truncation */
    int64_t cpu_interval_ns;
    int64_t wall_interval_ns;
    int64_t alloc_interval;    /* bytes, mean of the JVM's sampling         */
    int wall_threads_max;
    bool cpu_on, wall_on, alloc_on, heap_on;
    bool native_on;            /* native frames + native threads (CPU)      */
    jmethodID thread_get_id;   /* java.lang.Thread.getId()J                 */
} cp__jvm_state;

extern cp__jvm_state cp__jvm;

/* True while samples should be recorded (signal-safe: one atomic load). */
static inline bool cp__jvm_running(void)
{
    return atomic_load_explicit(&cp__jvm.state, memory_order_acquire) == CP__JVM_RUNNING;
}

#endif /* CP_JVM_AGENT_H */
