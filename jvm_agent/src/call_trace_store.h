/*
 * call_trace_store.h — preallocated, lock-free store of raw stack samples.
 *
 * Writers are signal handlers and JVMTI allocation callbacks (many threads);
 * the single reader is the resolver, which drains the store under its own
 * lock. Every slot and its frame array is allocated once at start; a writer
 * that finds no free slot in a few tries drops the sample and counts the
 * drop.
 */
#ifndef CP_JVM_CALL_TRACE_STORE_H
#define CP_JVM_CALL_TRACE_STORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agct.h"

/* WALL_REPEAT: the wall sampler saw that the thread has not run since its
 * last wall sample, so that stack is still the current one: no signal, no
 * frames, the resolver repeats the thread's last wall stack. */
/* CPU_UNSAMPLED: CPU time of a thread that ended before any CPU sample
 * caught it (no frames: a pseudo-frame stands for them). */
enum { CP__TRACE_CPU = 1, CP__TRACE_WALL = 2, CP__TRACE_ALLOC = 3, CP__TRACE_WALL_REPEAT = 4,
       CP__TRACE_CPU_UNSAMPLED = 5 };
/* LOCK: weight = wait ns, size = acquisitions, class_name = lock class;
 * EXCEPTION: weight = exceptions, class_name = exception class. */
enum { CP__TRACE_LOCK = 6, CP__TRACE_EXCEPTION = 7 };
/* WALL_END: a Java thread's wall time from its last wall sample to its
 * end (and what it stands for: see wall_sampler.h), size = its life; the
 * resolver puts it on the thread's last wall stack. */
enum { CP__TRACE_WALL_END = 8 };
enum { CP__CLASS_NAME_MAX = 128 };
/* A truncated stack is walked again, up to CP__DEPTH_MAX frames, to count
 * what was cut. */
enum { CP__DEPTH_UNKNOWN = 0, CP__DEPTH_MAX = 4096 };

typedef struct cp__trace_rec {
    int kind;                /* CP__TRACE_*                                 */
    int num_frames;          /* > 0: frames valid; <= 0: AGCT error code     */
    int total_frames;        /* stack deeper than walk_depth: its true depth
                                (CP__DEPTH_UNKNOWN if it could not be told;
                                CP__DEPTH_MAX means "at least") */
    uint32_t thread_serial;  /* thread_table serial, 0 = unknown            */
    pid_t tid;
    int32_t thread_slot;     /* thread_table slot index, -1 = none          */
    uint32_t wall_seq;       /* wall: the slot's wall_seq when taken        */
    int64_t weight;          /* ns (cpu, wall) or estimated bytes (alloc)   */
    uintptr_t pc;            /* cpu/wall: the pc the walk started from      */
    uintptr_t java_pc;       /* cpu/wall: return pc into the last Java frame
                                of a thread in VM/native code, 0 = none     */
    int64_t size;            /* alloc: the sampled object's own size        */
    int32_t heap_slot;       /* alloc: live-heap slot, -1 = not tracked     */
    uint32_t heap_gen;       /* alloc: generation of that slot              */
    uint32_t gc_seq;         /* alloc: cp__gc_cycles_seq() when taken       */
    char class_name[CP__CLASS_NAME_MAX]; /* alloc: JVM signature           */
    cp__agct_frame *frames;  /* walk_depth entries, preallocated            */
    bool java;               /* a Java thread (AGCT ran); false: native only */
    int num_native;          /* cpu: native pcs above the Java frames        */
    uintptr_t *native;       /* walk_depth entries, preallocated            */
} cp__trace_rec;

/* Allocate nslots slots of `depth` frames (and native pcs) each. Called once, before any
 * writer runs. CP_ENOMEM on failure. */
int cp__store_init(size_t nslots, int depth);

/* Claim a slot to write into (signal-safe, lock-free, never blocks). NULL
 * when the store is full or contended: the drop is counted. The caller fills
 * the record and calls exactly one of commit or cancel. */
cp__trace_rec *cp__store_reserve(void);
void cp__store_commit(cp__trace_rec *r);
void cp__store_cancel(cp__trace_rec *r);

/* fn runs (in whichever writer, possibly a signal handler: it must be
 * async-signal-safe) when the committed records reach half the store. Set
 * once before writers run. */
void cp__store_on_half_full(void (*fn)(void));

/* Hand every committed record to fn and free its slot; returns the count.
 * One drainer at a time (the caller serialises). */
typedef void (*cp__store_visit)(const cp__trace_rec *r, void *ctx);
size_t cp__store_drain(cp__store_visit fn, void *ctx);

#endif /* CP_JVM_CALL_TRACE_STORE_H */
