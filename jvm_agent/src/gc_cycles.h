/*
 * gc_cycles.h — how many GC cycles that can free tagged objects have ended.
 *
 * JVMTI's GarbageCollectionFinish is posted per pause: with concurrent
 * collectors (ZGC, Shenandoah, G1's concurrent cycle) a pause says nothing
 * about whether the cycle that examines an object has run, and generational
 * ZGC's minor cycles keep every weakly referenced (tagged) object alive
 * until a major cycle. So the live-heap tracker counts cycles from the
 * GarbageCollectorMXBeans instead, read by the resolver every pass:
 *  - stop-the-world collectors (Copy, MarkSweepCompact, PS Scavenge,
 *    PS MarkSweep, G1 Young/Old Generation): an object allocated before the
 *    read has been examined once the count moved on by 1;
 *  - concurrent cycles (ZGC Cycles, ZGC Major Cycles, Shenandoah Cycles,
 *    G1 Concurrent GC): a cycle may have been running when the object was
 *    allocated, so it takes 2;
 *  - "... Pauses" beans and "ZGC Minor Cycles" do not count as such.
 * Generational ZGC's young collections treat weak roots (tags) as strong:
 * a sampled object, dead or not, is kept and aged until it is promoted,
 * and only a major cycle that starts after that can free it. So there an
 * object counts as examined once 2 major cycles ended after the moment 16
 * young collections (more than the highest tenuring age) had followed its
 * allocation; a short history of (young, major) counts tells when that was.
 * Without the beans (management classes unavailable), GarbageCollection-
 * Finish events count as stop-the-world collections.
 */
#ifndef CP_JVM_GC_CYCLES_H
#define CP_JVM_GC_CYCLES_H

#include <jni.h>
#include <stdbool.h>
#include <stdint.h>

#include "heap_table.h"

/* Resolver: read the counts (the first call finds the beans). */
void cp__gc_cycles_poll(JNIEnv *jni);

/* Any thread, signal-safe: the number of polls so far. */
uint32_t cp__gc_cycles_seq(void);

/* Resolver: counts read after a moment at which cp__gc_cycles_seq() was
 * seq (polls again if no poll began after that moment). */
cp__gc_mark cp__gc_cycles_mark_after(JNIEnv *jni, uint32_t seq);

enum { CP__GC_HISTORY = 1024 };

/* A consistent copy of the counts and the generational history. */
typedef struct cp__gc_view {
    cp__gc_mark now;
    bool generational;
    size_t n;                              /* history entries, oldest first */
    cp__gc_mark history[CP__GC_HISTORY];   /* young, conc at each young change */
} cp__gc_view;

/* Any thread: the latest poll's counts and history. */
void cp__gc_cycles_view(cp__gc_view *v);

/* Has an object published with `mark` been examined by a whole GC cycle
 * that began after it was allocated (see above), as of view v? */
bool cp__gc_cycles_examined(cp__gc_mark mark, const cp__gc_view *v);

/* JVMTI GarbageCollectionFinish (restricted callback: one atomic add). */
void cp__gc_cycles_on_finish(void);

#endif /* CP_JVM_GC_CYCLES_H */
