/*
 * cfi.c — the unwinder's fast step: evaluate an FDE's call-frame
 * instructions for one pc into a row (CFA = register + offset, where each
 * callee-saved register and the return address were saved).
 *
 * libunwind does the same in its generic DWARF code, but through one
 * accessor call per byte, a mempool allocation (and its lock, with two
 * sigprocmask system calls) per step and a 17-register state copy: ~2,500
 * instructions and four system calls a frame. Rows cover what compilers
 * emit for x86-64 (CFA on rsp/rbp or a callee-saved register, registers
 * saved at CFA offsets, remember/restore state); anything else (DWARF
 * expressions: PLT stubs, signal trampolines, stack realignment) answers
 * CP__CFI_UNSUPPORTED and the walk hands that step to libunwind.
 * Signal-safe: reads only [lo, hi) (a loaded object's segment), no
 * allocation, bounded by the FDE's length.
 */
#include <stdint.h>
#include <string.h>

#include "unwind.h"

enum {
    DW_CFA_nop = 0x00, DW_CFA_advance_loc1 = 0x02, DW_CFA_advance_loc2 = 0x03,
    DW_CFA_advance_loc4 = 0x04, DW_CFA_offset_extended = 0x05, DW_CFA_restore_extended = 0x06,
    DW_CFA_undefined = 0x07, DW_CFA_same_value = 0x08, DW_CFA_remember_state = 0x0a,
    DW_CFA_restore_state = 0x0b, DW_CFA_def_cfa = 0x0c, DW_CFA_def_cfa_register = 0x0d,
    DW_CFA_def_cfa_offset = 0x0e, DW_CFA_offset_extended_sf = 0x11, DW_CFA_def_cfa_sf = 0x12,
    DW_CFA_def_cfa_offset_sf = 0x13, DW_CFA_GNU_args_size = 0x2e,
    DW_CFA_advance_loc = 0x40, DW_CFA_offset = 0x80, DW_CFA_restore = 0xc0,
};

enum { STATE_DEPTH = 8, REG_RSP = 7 };

/* A bounded reader over [p, end). */
typedef struct rd {
    const uint8_t *p, *end;
    bool bad;
} rd;

static uint64_t u8(rd *r)
{
    if (r->p >= r->end)
        return r->bad = true, 0;
    return *r->p++;
}

static uint64_t fixed(rd *r, size_t n)
{
    uint64_t v = 0;
    if ((size_t)(r->end - r->p) < n)
        return r->bad = true, 0;
    memcpy(&v, r->p, n); /* little-endian */
    r->p += n;
    return v;
}

static uint64_t uleb(rd *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint64_t b = u8(r);
        v |= (b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    return r->bad = true, v;
}

static int64_t sleb(rd *r)
{
    int64_t v = 0;
    unsigned shift = 0;
    uint64_t b;
    do {
        b = u8(r);
        v |= (int64_t)((b & 0x7f) << shift);
        shift += 7;
    } while ((b & 0x80) && shift < 64);
    if (shift < 64 && (b & 0x40))
        v |= -((int64_t)1 << shift);
    return v;
}

/* Size of a pointer in encoding enc (value format only), 0 = unsupported. */
static size_t enc_size(uint8_t enc)
{
    switch (enc & 0x0f) {
    case 0x00: case 0x04: case 0x0c: return 8;
    case 0x02: case 0x0a: return 2;
    case 0x03: case 0x0b: return 4;
    default: return 0;
    }
}

typedef struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    bool has_z;
    rd insns;
} cie;

static bool parse_cie(const uint8_t *at, const uint8_t *lo, const uint8_t *hi, cie *c)
{
    rd r = {at, hi, false};
    uint64_t len = fixed(&r, 4);
    if (r.bad || len == 0 || len >= 0xfffffff0u || (uint64_t)(hi - r.p) < len || at < lo)
        return false;
    r.end = r.p + len;
    uint64_t version;
    if (fixed(&r, 4) != 0 || ((version = u8(&r)) != 1 && version != 3))
        return false;
    const char *aug = (const char *)r.p;
    while (u8(&r) != 0 && !r.bad) {}
    c->code_align = uleb(&r);
    c->data_align = sleb(&r);
    c->ra_reg = version == 1 ? u8(&r) : uleb(&r);
    c->fde_enc = 0;
    c->has_z = aug[0] == 'z';
    if (c->has_z) {
        uint64_t n = uleb(&r);
        const uint8_t *data_end = r.p + n;
        for (const char *a = aug + 1; *a != '\0' && !r.bad; a++) {
            if (*a == 'R') {
                c->fde_enc = (uint8_t)u8(&r);
            } else if (*a == 'L') {
                u8(&r);
            } else if (*a == 'P') {
                uint8_t e = (uint8_t)u8(&r);
                size_t sz = e == 0x01 ? 0 : enc_size(e);
                if (sz == 0)
                    return false;
                fixed(&r, sz);
            } else {
                return false; /* 'S' (signal frame) and the unknown: libunwind's */
            }
        }
        if (r.bad || r.p > data_end || data_end > r.end)
            return false;
        r.p = data_end;
    } else if (aug[0] != '\0') {
        return false;
    }
    c->insns = r;
    return !r.bad && enc_size(c->fde_enc) != 0 && c->ra_reg < CP__CFI_NREGS;
}

static void set_rule(cp__cfi_row *row, uint64_t reg, uint8_t how, int64_t off, bool *bad)
{
    if (reg >= CP__CFI_NREGS) {
        *bad = true; /* vector and other registers: not ours to restore */
        return;
    }
    row->how[reg] = how;
    row->off[reg] = (int32_t)off;
}

static uint8_t cfa_reg(uint64_t reg, bool *bad)
{
    if (reg >= CP__CFI_NREGS)
        *bad = true;
    return (uint8_t)reg;
}

/* Run instructions r, with loc starting at start, until loc passes pc
 * (stop_at_pc) or r ends. False when an instruction is not supported. */
static bool run(rd *r, const cie *c, uintptr_t start, uintptr_t pc, bool stop_at_pc,
                cp__cfi_row *row, const cp__cfi_row *initial)
{
    cp__cfi_row saved[STATE_DEPTH];
    int depth = 0;
    uintptr_t loc = start;
    bool bad = false;

    while (r->p < r->end && !r->bad && !bad) {
        uint8_t op = (uint8_t)u8(r);
        uint64_t reg, adv = 0;
        switch (op & 0xc0) {
        case DW_CFA_advance_loc: adv = op & 0x3f; break;
        case DW_CFA_offset:
            set_rule(row, op & 0x3f, CP__CFI_AT_CFA, (int64_t)uleb(r) * c->data_align, &bad);
            continue;
        case DW_CFA_restore:
            reg = op & 0x3f;
            if (initial == NULL || reg >= CP__CFI_NREGS)
                return false;
            set_rule(row, reg, initial->how[reg], initial->off[reg], &bad);
            continue;
        default:
            break;
        }
        if ((op & 0xc0) == 0) {
            switch (op) {
            case DW_CFA_nop: continue;
            case DW_CFA_advance_loc1: adv = fixed(r, 1); break;
            case DW_CFA_advance_loc2: adv = fixed(r, 2); break;
            case DW_CFA_advance_loc4: adv = fixed(r, 4); break;
            case DW_CFA_offset_extended:
                reg = uleb(r);
                set_rule(row, reg, CP__CFI_AT_CFA, (int64_t)uleb(r) * c->data_align, &bad);
                continue;
            case DW_CFA_offset_extended_sf:
                reg = uleb(r);
                set_rule(row, reg, CP__CFI_AT_CFA, sleb(r) * c->data_align, &bad);
                continue;
            case DW_CFA_restore_extended:
                reg = uleb(r);
                if (initial == NULL || reg >= CP__CFI_NREGS)
                    return false;
                set_rule(row, reg, initial->how[reg], initial->off[reg], &bad);
                continue;
            case DW_CFA_undefined:
                set_rule(row, uleb(r), CP__CFI_UNDEFINED, 0, &bad);
                continue;
            case DW_CFA_same_value:
                set_rule(row, uleb(r), CP__CFI_SAME, 0, &bad);
                continue;
            case DW_CFA_remember_state:
                if (depth == STATE_DEPTH)
                    return false;
                saved[depth++] = *row;
                continue;
            case DW_CFA_restore_state:
                if (depth == 0)
                    return false;
                *row = saved[--depth];
                continue;
            case DW_CFA_def_cfa:
                row->cfa_reg = cfa_reg(uleb(r), &bad);
                row->cfa_off = (int64_t)uleb(r);
                continue;
            case DW_CFA_def_cfa_sf:
                row->cfa_reg = cfa_reg(uleb(r), &bad);
                row->cfa_off = sleb(r) * c->data_align;
                continue;
            case DW_CFA_def_cfa_register:
                row->cfa_reg = cfa_reg(uleb(r), &bad);
                continue;
            case DW_CFA_def_cfa_offset:
                row->cfa_off = (int64_t)uleb(r);
                continue;
            case DW_CFA_def_cfa_offset_sf:
                row->cfa_off = sleb(r) * c->data_align;
                continue;
            case DW_CFA_GNU_args_size:
                uleb(r);
                continue;
            default:
                return false; /* expressions, set_loc, val_offset, register */
            }
        }
        loc += adv * c->code_align;
        if (stop_at_pc && loc > pc)
            return true;
    }
    return !r->bad && !bad;
}

int cp__cfi_row_find(const uint8_t *fde, uintptr_t fde_start, uintptr_t pc, const uint8_t *lo,
                     const uint8_t *hi, cp__cfi_row *row)
{
    rd r = {fde, hi, false};
    cie c;
    if (fde < lo || fde >= hi)
        return CP__CFI_UNSUPPORTED;
    uint64_t len = fixed(&r, 4);
    if (r.bad || len == 0 || len >= 0xfffffff0u || (uint64_t)(hi - r.p) < len)
        return CP__CFI_UNSUPPORTED;
    r.end = r.p + len;
    uint64_t cie_off = fixed(&r, 4);
    const uint8_t *cie_at = r.p - 4 - cie_off;
    if (cie_off == 0 || cie_at < lo || !parse_cie(cie_at, lo, hi, &c))
        return CP__CFI_UNSUPPORTED;
    size_t esz = enc_size(c.fde_enc);
    fixed(&r, esz);                       /* pc_begin: the table's start */
    uint64_t range = fixed(&r, esz);
    if (r.bad)
        return CP__CFI_UNSUPPORTED;
    if (pc < fde_start || pc - fde_start >= range)
        return CP__CFI_NO_INFO;
    if (c.has_z) {
        uint64_t n = uleb(&r);
        if (r.bad || (uint64_t)(r.end - r.p) < n)
            return CP__CFI_UNSUPPORTED;
        r.p += n;
    }
    memset(row, 0, sizeof *row);          /* every register: same value */
    rd ci = c.insns;
    if (!run(&ci, &c, fde_start, pc, false, row, NULL))
        return CP__CFI_UNSUPPORTED;
    cp__cfi_row initial = *row;
    if (!run(&r, &c, fde_start, pc, true, row, &initial))
        return CP__CFI_UNSUPPORTED;
    row->ra_reg = (uint8_t)c.ra_reg;
    return CP__CFI_OK;
}
