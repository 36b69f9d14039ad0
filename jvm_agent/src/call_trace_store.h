/*
 * call_trace_store.h — preallocated, lock-free store of raw stack samples.
 *
 * Writers are signal handlers and JVMTI allocation callbacks (many threads);
 * the single reader is the resolver, which drains the store under its own
 * lock. Every slot and its frame array is allocated once at start; a writer
 * that finds its slot still occupied drops the sample and counts the drop.
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
enum { CP__TRACE_CPU = 1, CP__TRACE_WALL = 2, CP__TRACE_ALLOC = 3, CP__TRACE_WALL_REPEAT = 4 };
enum { CP__CLASS_NAME_MAX = 128 };

typedef struct cp__trace_rec {
    int kind;                /* CP__TRACE_*                                 */
    int num_frames;          /* > 0: frames valid; <= 0: AGCT error code     */
    uint32_t thread_serial;  /* thread_table serial, 0 = unknown            */
    pid_t tid;
    int32_t thread_slot;     /* thread_table slot index, -1 = none          */
    uint32_t wall_seq;       /* wall: the slot's wall_seq when taken        */
    int64_t weight;          /* ns (cpu, wall) or estimated bytes (alloc)   */
    int64_t size;            /* alloc: the sampled object's own size        */
    int32_t heap_slot;       /* alloc: live-heap slot, -1 = not tracked     */
    uint32_t heap_gen;       /* alloc: generation of that slot              */
    char class_name[CP__CLASS_NAME_MAX]; /* alloc: JVM signature           */
    cp__agct_frame *frames;  /* walk_depth entries, preallocated            */
} cp__trace_rec;

/* Allocate nslots slots of `depth` frames each. Called once, before any
 * writer runs. CP_ENOMEM on failure. */
int cp__store_init(size_t nslots, int depth);

/* Claim a slot to write into (signal-safe, lock-free, never blocks). NULL
 * when the store is full or contended: the drop is counted. The caller fills
 * the record and calls exactly one of commit or cancel. */
cp__trace_rec *cp__store_reserve(void);
void cp__store_commit(cp__trace_rec *r);
void cp__store_cancel(cp__trace_rec *r);

/* Hand every committed record to fn and free its slot; returns the count.
 * One drainer at a time (the caller serialises). */
typedef void (*cp__store_visit)(const cp__trace_rec *r, void *ctx);
size_t cp__store_drain(cp__store_visit fn, void *ctx);

#endif /* CP_JVM_CALL_TRACE_STORE_H */
