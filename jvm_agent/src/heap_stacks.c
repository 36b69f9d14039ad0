/*
 * heap_stacks.c — the live-heap table's stack prefix tree (see the header).
 *
 * Frames are compared by their string pointers: every string a frame holds
 * comes from a cache that gives one pointer per distinct value. The table is
 * open-addressed; it starts small and doubles at half full, up to twice the
 * node cap (nodes land by hash on any page, so a table allocated at full
 * size soon has all of its 4 MB resident); nodes come from blocks that are
 * never freed.
 */
#include "heap_stacks.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

struct cp__heap_node {
    const cp__heap_node *parent; /* the next frame towards the root, or NULL */
    cp_frame frame;
};

enum { NODES_PER_BLOCK = 1024, TABLE_START = 1 << 12 };

static const cp__heap_node **g_table; /* resolver only */
static size_t g_mask, g_max_nodes, g_table_max;
static atomic_size_t g_nodes;
static cp__heap_node *g_block;        /* current block, resolver only */
static size_t g_block_used = NODES_PER_BLOCK;

int cp__heap_stacks_init(size_t max_nodes)
{
    size_t n = 16;

    while (n < 2 * max_nodes)
        n *= 2;
    g_table_max = n;
    n = n < TABLE_START ? n : TABLE_START;
    if ((g_table = calloc(n, sizeof *g_table)) == NULL)
        return CP_ENOMEM;
    g_mask = n - 1;
    g_max_nodes = max_nodes;
    return CP_OK;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdULL;
}

static uint64_t node_hash(const cp__heap_node *parent, const cp_frame *f)
{
    uint64_t h = mix(0, (uintptr_t)parent);
    h = mix(h, (uintptr_t)f->name);
    h = mix(h, (uintptr_t)f->system_name);
    h = mix(h, (uintptr_t)f->filename);
    h = mix(h, (uint64_t)f->line);
    h = mix(h, (uint64_t)f->kind);
    return mix(h, (uintptr_t)f->module);
}

static bool same(const cp__heap_node *n, const cp__heap_node *parent, const cp_frame *f)
{
    return n->parent == parent && n->frame.name == f->name && n->frame.system_name == f->system_name &&
           n->frame.filename == f->filename && n->frame.line == f->line && n->frame.kind == f->kind &&
           n->frame.module == f->module;
}

static cp__heap_node *new_node(void)
{
    if (g_block_used == NODES_PER_BLOCK) {
        cp__heap_node *b = malloc(NODES_PER_BLOCK * sizeof *b);
        if (b == NULL)
            return NULL;
        g_block = b;
        g_block_used = 0;
    }
    return &g_block[g_block_used++];
}

/* Double the table while it is at least half full and below its size for
 * the node cap; false if that needs memory there is none of. */
static bool table_room(void)
{
    size_t cap = g_mask + 1;
    if (2 * atomic_load(&g_nodes) < cap || cap >= g_table_max)
        return true;
    const cp__heap_node **t = calloc(2 * cap, sizeof *t);
    if (t == NULL)
        return false;
    for (size_t k = 0; k < cap; k++) {
        const cp__heap_node *n = g_table[k];
        if (n == NULL)
            continue;
        size_t i = node_hash(n->parent, &n->frame) & (2 * cap - 1);
        while (t[i] != NULL)
            i = (i + 1) & (2 * cap - 1);
        t[i] = n;
    }
    free((void *)g_table);
    g_table = t;
    g_mask = 2 * cap - 1;
    return true;
}

/* The node for (parent, f), inserted if new; NULL at the cap. */
static const cp__heap_node *child(const cp__heap_node *parent, const cp_frame *f)
{
    uint64_t h = node_hash(parent, f);
    size_t i = h & g_mask;

    for (; g_table[i] != NULL; i = (i + 1) & g_mask)
        if (same(g_table[i], parent, f))
            return g_table[i];
    if (atomic_load(&g_nodes) >= g_max_nodes || !table_room())
        return NULL;
    i = h & g_mask; /* the table may have grown */
    while (g_table[i] != NULL)
        i = (i + 1) & g_mask;
    cp__heap_node *n = new_node();
    if (n == NULL)
        return NULL;
    n->parent = parent;
    n->frame = *f;
    g_table[i] = n;
    atomic_fetch_add(&g_nodes, 1);
    return n;
}

const cp__heap_node *cp__heap_stacks_intern(const cp_frame *frames, size_t n)
{
    const cp__heap_node *node = NULL;

    if (g_table == NULL)
        return NULL;
    /* Root first, so that stacks sharing their outer frames share nodes. */
    for (size_t k = n; k-- > 0;)
        if ((node = child(node, &frames[k])) == NULL)
            return NULL;
    return node;
}

size_t cp__heap_stacks_get(const cp__heap_node *leaf, cp_frame *out, size_t max)
{
    size_t n = 0;

    for (const cp__heap_node *p = leaf; p != NULL && n < max; p = p->parent)
        out[n++] = p->frame;
    return n;
}

size_t cp__heap_stacks_count(void) { return atomic_load(&g_nodes); }
