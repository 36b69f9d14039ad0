/*
 * native_modules.h — the loaded objects the native unwinder trusts.
 *
 * A snapshot of every loaded ELF object (dl_iterate_phdr), taken off the
 * hot path and published to signal handlers through two buffers: readers
 * pin the current one with a counter, the refresher rewrites only the other
 * one once nobody pins it. The unwinder reads memory only inside these
 * objects' segments (or on pages it validated), looks up unwind tables here
 * instead of calling dl_iterate_phdr in a handler, and stops at any pc that
 * lies in no object (JIT code).
 */
#ifndef CP_NATIVE_MODULES_H
#define CP_NATIVE_MODULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cp__module {
    uintptr_t bias;        /* load bias (dlpi_addr)                          */
    uintptr_t eh_hdr;      /* .eh_frame_hdr in memory, 0 = none              */
    uintptr_t table;       /* its binary-search table, 0 = unusable          */
    size_t table_words;    /* table size in unw_word_t units                 */
    uintptr_t gp;          /* DT_PLTGOT, base of data-relative encodings     */
    uint32_t id;           /* stable id (cp__module_entry)                   */
} cp__module;

typedef struct cp__segment {
    uintptr_t lo, hi;      /* [lo, hi): one PT_LOAD segment in memory        */
    uint32_t module;       /* index into the snapshot's modules              */
    bool exec;
} cp__segment;

typedef struct cp__modsnap {
    uint64_t gen;          /* new for every published snapshot             */
    size_t nsegs, nmods;
    cp__segment *segs;     /* sorted by lo, non-overlapping                  */
    cp__module *mods;
} cp__modsnap;

/* Allocate both buffers and take the first snapshot. Idempotent. */
int cp__modules_init(void);

/* Re-read the loaded objects if any were loaded or unloaded. Resolver
 * threads only; never waits more than a few ms for readers (skips instead). */
void cp__modules_refresh(bool force);

/* Signal-safe: pin the current snapshot (NULL before init); unpin with the
 * value pin returned. Pinned snapshots are never rewritten. */
const cp__modsnap *cp__modules_pin(int *token);
void cp__modules_unpin(int token);

/* Signal-safe: the segment holding addr, or NULL. */
const cp__segment *cp__modules_find(const cp__modsnap *s, uintptr_t addr);

/* Path and load bias of module id; false if unknown. The path is stable
 * and never freed ("[vdso]", the executable's real path, a library's). */
bool cp__module_entry(uint32_t id, const char **path, uintptr_t *bias);

/* Off the hot path: the start of the function whose unwind entry (FDE)
 * covers pc, from the object's .eh_frame_hdr table and the FDE's own
 * range; false when no FDE covers pc. Names code whose symbols are
 * stripped (a static function of libz) by the function, not the pc. */
bool cp__module_fde_start(uintptr_t pc, uintptr_t *start);
/* The same with the FDE's end. */
bool cp__module_fde_extent(uintptr_t pc, uintptr_t *start, uintptr_t *end);

/* pthread_atfork handlers for the module lock (native_symbols.c registers
 * them with its own, in lock order). */
void cp__modules_fork_prepare(void);
void cp__modules_fork_parent(void);
void cp__modules_fork_child(void);

/* Number of distinct objects seen so far. */
size_t cp__modules_seen(void);

#endif /* CP_NATIVE_MODULES_H */
