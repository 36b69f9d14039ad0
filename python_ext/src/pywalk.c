/*
 * pywalk.c — frame-chain walking over the layouts in cp_pyoff (see
 * pywalk.h for the read strategy). A frame is emitted only when its code
 * object is a code object; C-stack-owned and incomplete frames (3.11+) are
 * skipped as CPython's own traceback code does.
 */
#include <Python.h>

#include "pywalk.h"
#include "pyoffsets.h"
#include "saferead.h"

#include <string.h>
#include <sys/uio.h>

#define BUF_MAX 512
#define OWNER_GENERATOR 1
#define PAGE 4096
#define WIN_PAGES 4          /* data-stack window copied per read (3.11+) */
#define CODE_CACHE 1024      /* direct-mapped, power of two               */
/* Above any user-space address (even with 5-level paging); anything
 * larger is garbage and is never dereferenced or passed on. */
#define USER_ADDR_MAX ((uintptr_t)1 << 57)

typedef struct pending {
    uint64_t code, instr; /* instr: raw f_lasti or instruction pointer */
    int owner;
} pending;

/* Facts about one code object that a walk needs. */
typedef struct codeinfo {
    uint64_t addr;        /* 0 = empty slot */
    int32_t firstlineno, firsttraceable;
} codeinfo;

/* Sampler-thread state: the window and the code cache. */
static struct {
    uint8_t buf[WIN_PAGES * PAGE + BUF_MAX];
    uintptr_t base;       /* buf[i] holds byte base+i of the process     */
    uintptr_t lo, hi;     /* of which [lo, hi) is valid                  */
    codeinfo codes[CODE_CACHE];
} g_w;

static int read2(bool direct, void *d1, uintptr_t a1, size_t n1, void *d2, uintptr_t a2, size_t n2)
{
    if (!direct)
        return cp__saferead2(d1, a1, n1, d2, a2, n2);
    if (!a1)
        return 0;
    memcpy(d1, (const void *)a1, n1);
    if (!a2)
        return 1;
    memcpy(d2, (const void *)a2, n2);
    return 2;
}

static uint64_t get_u64(const uint8_t *b, size_t off)
{
    uint64_t v;
    memcpy(&v, b + off, sizeof v);
    return v;
}

static int32_t get_i32(const uint8_t *b, size_t off)
{
    int32_t v;
    memcpy(&v, b + off, sizeof v);
    return v;
}

/* Bytes of a code object to read: from ob_type to the last field used. */
static size_t code_span(const cp_pyoff *o)
{
    size_t end = o->co_firstlineno + 4;
    if (o->co_firsttraceable != CP_OFF_NONE && o->co_firsttraceable + 4 > end)
        end = o->co_firsttraceable + 4;
    return end;
}

size_t cp__ts_span(void)
{
    const cp_pyoff *o = cp__pyoff();
    size_t n = o->ts_frame + 8;
    size_t offs[] = {o->ts_next, o->ts_interp, o->ts_thread_id, o->ts_native_id};
    for (size_t i = 0; i < 4; i++)
        if (offs[i] != CP_OFF_NONE && offs[i] + 8 > n)
            n = offs[i] + 8;
    return n;
}

void cp__ts_parse(const uint8_t *b, cp_tsinfo *out)
{
    const cp_pyoff *o = cp__pyoff();
    out->next = get_u64(b, o->ts_next);
    out->interp = get_u64(b, o->ts_interp);
    out->thread_id = get_u64(b, o->ts_thread_id);
    out->native_id = o->ts_native_id == CP_OFF_NONE ? 0 : get_u64(b, o->ts_native_id);
    out->frame = get_u64(b, o->ts_frame);
}

bool cp__ts_read(uintptr_t ts, bool direct, cp_tsinfo *out)
{
    uint8_t b[BUF_MAX];
    size_t n = cp__ts_span();
    if (n > BUF_MAX || read2(direct, b, ts, n, NULL, 0, 0) != 1)
        return false;
    cp__ts_parse(b, out);
    return true;
}

uintptr_t cp__ts_top(const cp_tsinfo *ti, bool direct)
{
    const cp_pyoff *o = cp__pyoff();
    uint64_t cur = 0;
    if (o->layout != CP_LAYOUT_IFRAME_CFRAME || !ti->frame)
        return ti->frame;
    /* 3.11/3.12: ts->cframe->current_frame */
    if (read2(direct, &cur, ti->frame + o->cframe_current, 8, NULL, 0, 0) != 1)
        return 0;
    return (uintptr_t)cur;
}

static uint64_t frame_instr(const cp_pyoff *o, const uint8_t *b)
{
    return o->layout == CP_LAYOUT_FRAMEOBJ ? (uint64_t)(int64_t)get_i32(b, o->fr_instr)
                                           : get_u64(b, o->fr_instr);
}

bool cp__frame_peek(uintptr_t frame, cp_topinfo *out)
{
    const cp_pyoff *o = cp__pyoff();
    uint8_t b[BUF_MAX];
    if (!frame || o->fr_read > BUF_MAX || !cp__saferead(b, frame, o->fr_read))
        return false;
    out->code = get_u64(b, o->fr_code);
    out->instr = frame_instr(o, b);
    return true;
}

/* ---- reading frames (safe mode) ------------------------------------- */

/* Copy [fr, fr+n) and, when wide, up to WIN_PAGES-1 whole pages below it,
 * in one vectored read ordered top-down: the kernel stops at the first
 * unreadable element, so what arrives is one contiguous range. */
static bool window_fill(uintptr_t fr, size_t n, bool wide)
{
    struct iovec loc[WIN_PAGES], rem[WIN_PAGES];
    /* fr may be garbage from a torn read: it must leave fr+n and the page
     * arithmetic below in range, so the local lengths stay within buf. */
    if (!fr || fr > USER_ADDR_MAX || n > BUF_MAX)
        return false;
    uintptr_t top_page = fr & ~(uintptr_t)(PAGE - 1);
    uintptr_t start = wide ? top_page : fr;
    int cnt = wide ? WIN_PAGES : 1;
    if (wide && top_page < (uintptr_t)(WIN_PAGES - 1) * PAGE)
        cnt = 1;
    g_w.base = wide ? top_page - (uintptr_t)(cnt - 1) * PAGE : fr;
    size_t len0 = fr + n - start;
    loc[0] = (struct iovec){g_w.buf + (start - g_w.base), len0};
    rem[0] = (struct iovec){(void *)start, len0};
    for (int i = 1; i < cnt; i++) {
        uintptr_t p = top_page - (uintptr_t)i * PAGE;
        loc[i] = (struct iovec){g_w.buf + (p - g_w.base), PAGE};
        rem[i] = (struct iovec){(void *)p, PAGE};
    }
    long got = cp__saferead_vec(loc, rem, cnt);
    g_w.lo = g_w.hi = 0;
    if (got < (long)len0)
        return false;
    g_w.hi = fr + n;
    g_w.lo = start - ((size_t)got - len0);
    return true;
}

/* Bytes [addr, addr+n) of the process, from the window when it has them. */
static const uint8_t *frame_bytes(bool direct, uintptr_t addr, size_t n)
{
    if (direct)
        return (const uint8_t *)addr;
    /* Written so that no sum can wrap, whatever garbage addr holds. */
    if (!(addr >= g_w.lo && addr < g_w.hi && n <= g_w.hi - addr)) {
        /* 3.11+ frames are stacked downwards in one chunk: copy a window. */
        bool wide = cp__pyoff()->layout != CP_LAYOUT_FRAMEOBJ;
        if (!window_fill(addr, n, wide))
            return NULL;
    }
    return g_w.buf + (addr - g_w.base);
}

/* ---- code objects ----------------------------------------------------- */

static bool code_read(bool direct, uint64_t addr, codeinfo *ci)
{
    const cp_pyoff *o = cp__pyoff();
    uint8_t b[BUF_MAX];
    size_t span = code_span(o);
    if (span > BUF_MAX)
        return false;
    if (direct)
        memcpy(b, (const void *)(uintptr_t)addr, span);
    else if (!cp__saferead(b, (uintptr_t)addr, span))
        return false;
    if (get_u64(b, offsetof(PyObject, ob_type)) != (uint64_t)(uintptr_t)&PyCode_Type)
        return false;
    ci->addr = addr;
    ci->firstlineno = get_i32(b, o->co_firstlineno);
    ci->firsttraceable = o->co_firsttraceable == CP_OFF_NONE ? 0 : get_i32(b, o->co_firsttraceable);
    return true;
}

/* Code facts for addr; safe mode caches them (see cp__walk_new_epoch). */
static bool code_info(bool direct, uint64_t addr, codeinfo *ci)
{
    if (direct)
        return code_read(true, addr, ci);
    codeinfo *slot = &g_w.codes[(addr >> 4) & (CODE_CACHE - 1)];
    if (slot->addr == addr) {
        *ci = *slot;
        return true;
    }
    if (!code_read(false, addr, ci))
        return false;
    *slot = *ci;
    return true;
}

void cp__walk_new_epoch(void)
{
    memset(g_w.codes, 0, sizeof g_w.codes);
}

/* ---- walking ---------------------------------------------------------- */

/* A raw frame for p, or false when the frame must be skipped (not code, or
 * incomplete: still in its prologue). */
static bool finish(bool direct, const pending *p, cp_rawframe *out)
{
    const cp_pyoff *o = cp__pyoff();
    codeinfo ci;
    if (!code_info(direct, p->code, &ci))
        return false;
    out->code = p->code;
    out->firstlineno = ci.firstlineno;
    if (o->layout == CP_LAYOUT_FRAMEOBJ) {
        int32_t lasti = (int32_t)p->instr;
        out->offset = lasti < 0 ? -1 : lasti * (o->instr_units ? 2 : 1);
        return true;
    }
    int64_t off = (int64_t)(p->instr - (p->code + o->co_code0));
    if (p->owner != OWNER_GENERATOR && off < (int64_t)ci.firsttraceable * 2)
        return false;
    out->offset = off < 0 || off > INT32_MAX ? -1 : (int32_t)off;
    return true;
}

/* Parse one frame's bytes. False when the frame must be skipped. */
static bool parse(const cp_pyoff *o, const uint8_t *b, pending *p, uint64_t *back)
{
    *back = get_u64(b, o->fr_back);
    p->code = get_u64(b, o->fr_code);
    p->instr = frame_instr(o, b);
    p->owner = o->layout == CP_LAYOUT_FRAMEOBJ ? 0 : (int)(int8_t)b[o->fr_owner];
    return p->code && p->owner != o->owner_cstack;
}

uint32_t cp__walk(uintptr_t top, bool direct, cp_rawframe *out, uint32_t cap, uint32_t *omitted,
                  cp_topinfo *top_out)
{
    const cp_pyoff *o = cp__pyoff();
    uint32_t n = 0;
    uintptr_t fr = top;
    *omitted = 0;
    if (!direct)
        g_w.lo = g_w.hi = 0; /* the window is only trusted within one walk */
    if (o->fr_read > BUF_MAX)
        return 0;
    for (int steps = 0; fr && steps < CP_WALK_MAX; steps++) {
        const uint8_t *b = frame_bytes(direct, fr, o->fr_read);
        pending p;
        uint64_t back;
        cp_rawframe rf;
        if (!b)
            break;
        bool use = parse(o, b, &p, &back);
        if (steps == 0 && top_out)
            *top_out = (cp_topinfo){p.code, p.instr};
        if (use && finish(direct, &p, &rf)) {
            if (n < cap)
                out[n++] = rf;
            else
                (*omitted)++;
        }
        fr = back == fr ? 0 : (uintptr_t)back; /* a self-loop ends the walk */
    }
    return n;
}
