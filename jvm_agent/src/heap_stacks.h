/*
 * heap_stacks.h — deduplicated, never-freed stacks for the live-heap table.
 *
 * A sampled object can stay alive for hours, so its stack must outlive the
 * resolver's scratch buffers; thousands of objects usually share a few
 * allocation sites. Stacks are stored as a prefix tree: one node per
 * (parent, frame), so stacks that share their root-most frames share nodes,
 * and a stack is identified by its leaf node. Nodes are immutable once
 * inserted and never freed: any thread may walk a node it obtained through
 * an acquire load. Insertion is resolver-only; the node count has a hard cap
 * (memory bound), past which intern returns NULL.
 */
#ifndef CP_JVM_HEAP_STACKS_H
#define CP_JVM_HEAP_STACKS_H

#include <stddef.h>

#include "contprof.h"

typedef struct cp__heap_node cp__heap_node;

/* Allocate the hash table for at most max_nodes nodes. CP_ENOMEM. */
int cp__heap_stacks_init(size_t max_nodes);

/* Resolver only. The leaf node of frames[0..n) (frames[0] = leaf); the
 * strings the frames point to must never be freed (method cache, interned
 * or static strings). NULL when n == 0 or the node cap is reached. */
const cp__heap_node *cp__heap_stacks_intern(const cp_frame *frames, size_t n);

/* Any thread: copy the stack ending at leaf into out (leaf first), at most
 * max frames; returns the count. */
size_t cp__heap_stacks_get(const cp__heap_node *leaf, cp_frame *out, size_t max);

/* Nodes stored so far (for tests and the debug log). */
size_t cp__heap_stacks_count(void);

#endif /* CP_JVM_HEAP_STACKS_H */
