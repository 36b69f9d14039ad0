/*
 * unwind.h — core-internal side of the native unwinder (public part:
 * contprof.h section 6): unwind.c walks, native_symbols.c names frames,
 * demangle.c turns C++ symbols into readable names.
 */
#ifndef CP_UNWIND_H
#define CP_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contprof.h"

/* The walk counters and module count (unwind.c) into out. */
void cp__native_unwind_stats(cp_native_stats *out);

/* Tests and benchmarks: every step by libunwind (on) or by cfi.c where it
 * can (off, the default); steps cfi.c took so far. */
void cp__native_slow_only(bool on);
uint64_t cp__native_fast_steps(void);

/* Register the symboliser's and module table's fork handlers (once, from
 * cp_native_init): a child never inherits their locks held. */
void cp__native_symbols_atfork(void);

/* Itanium C++ ABI name -> "ns::Class::method" (no parameter list; template
 * arguments shown as <...>). False (out then undefined) when sym is not a
 * mangled name or uses what this small demangler does not parse. */
bool cp__demangle(const char *sym, char *out, size_t n);

/* ---- cfi.c: one frame's unwind row from its FDE ------------------------ */

enum { CP__CFI_NREGS = 17 }; /* DWARF x86-64: rax..r15 = 0..15, 16 = return address */
enum { CP__CFI_SAME = 0, CP__CFI_AT_CFA = 1, CP__CFI_UNDEFINED = 2 };
enum { CP__CFI_OK = 1, CP__CFI_NO_INFO = 0, CP__CFI_UNSUPPORTED = -1 };

/* The row in effect at pc: CFA = reg[cfa_reg] + cfa_off; register r was
 * saved at CFA + off[r] when how[r] is CP__CFI_AT_CFA. */
typedef struct cp__cfi_row {
    uint8_t cfa_reg, ra_reg;
    int64_t cfa_off;
    uint8_t how[CP__CFI_NREGS];
    int32_t off[CP__CFI_NREGS];
} cp__cfi_row;

/* Signal-safe: evaluate the FDE at fde (of the function starting at
 * fde_start, per the .eh_frame_hdr table) for pc, reading only [lo, hi).
 * CP__CFI_OK with *row filled; CP__CFI_NO_INFO when pc lies outside the
 * FDE; CP__CFI_UNSUPPORTED for what this evaluator does not do (DWARF
 * expressions, signal-frame CIEs, 64-bit DWARF): the caller uses libunwind. */
int cp__cfi_row_find(const uint8_t *fde, uintptr_t fde_start, uintptr_t pc, const uint8_t *lo,
                     const uint8_t *hi, cp__cfi_row *row);

#endif /* CP_UNWIND_H */
