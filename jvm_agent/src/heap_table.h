/*
 * heap_table.h — the table of sampled objects that may still be alive.
 *
 * One slot per tracked object. A slot's state and generation share one
 * 64-bit word changed only by CAS, so an event that names an old generation
 * (a late ObjectFree for an object whose slot moved on) can never touch the
 * new occupant:
 *   FREE --claim--> PENDING --publish--> LIVE --free/evict--> FREE (gen+1)
 *   PENDING --free--> DEAD --publish--> FREE (gen+1)
 * The table grows in chunks of 4096 slots (the resolver adds one when half
 * full) up to a cap set at init; at the cap the resolver evicts the OLDEST
 * live objects so that new ones can always be tracked (counted as dropped).
 * Readers copy a slot, check that its word did not change, and only then
 * follow its pointers.
 */
#ifndef CP_JVM_HEAP_TABLE_H
#define CP_JVM_HEAP_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap_stacks.h"

/* Counts of finished GC cycles that may free tagged objects (gc_cycles.h):
 * stop-the-world collections and concurrent cycles. */
typedef struct cp__gc_mark {
    uint64_t stw, conc;
    uint64_t young; /* generational ZGC: young collections (minor + major) */
} cp__gc_mark;

/* A copy of one live slot, for the exporter. */
typedef struct cp__heap_entry {
    int64_t bytes;
    const cp__heap_node *stack;
    const char *class_name; /* may be NULL */
    cp__gc_mark mark;       /* GC counts when it was published */
} cp__heap_entry;

/* Allocate the chunk directory for at most max_slots slots and the first
 * chunk. CP_ENOMEM. */
int cp__heap_table_init(size_t max_slots);

/* Any thread, lock-free, no allocation: claim a slot for an object of
 * `bytes` estimated bytes; its index (>= 0) and generation identify it in
 * the object's tag. -1 when no free slot was found (the caller counts it). */
int32_t cp__heap_table_claim(int64_t bytes, uint32_t *gen);

/* The object could not be tagged: give the PENDING slot back. */
void cp__heap_table_unclaim(int32_t i, uint32_t gen);

/* ObjectFree for slot i, generation gen (either state). */
void cp__heap_table_free(int32_t i, uint32_t gen);

/* Resolver: slot i (gen) now has its stack and class. A NULL stack means
 * it cannot be stored: the slot is released. */
void cp__heap_table_publish(int32_t i, uint32_t gen, const cp__heap_node *stack,
                            const char *class_name, cp__gc_mark mark);

/* Resolver, every pass: grow when half full; at the cap, evict the oldest
 * live objects down to 3/4 of it. Returns the number evicted. */
size_t cp__heap_table_maintain(void);

/* Any one thread at a time: call fn for every live slot (a consistent
 * copy). */
typedef void (*cp__heap_visit)(const cp__heap_entry *e, void *ctx);
void cp__heap_table_each(cp__heap_visit fn, void *ctx);

/* Slots in use (PENDING, LIVE or DEAD), and slots available now. */
size_t cp__heap_table_used(void);
size_t cp__heap_table_capacity(void);

#endif /* CP_JVM_HEAP_TABLE_H */
