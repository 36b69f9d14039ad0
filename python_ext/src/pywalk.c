/*
 * pywalk.c — frame-chain walking over the layouts in cp_pyoff (see
 * pywalk.h for the read strategy). A frame is emitted only when its code
 * object is a code object; C-stack-owned and incomplete frames (3.11+) are
 * skipped as CPython's own traceback code does.
 */
#include <Python.h>

#include "pywalk.h"
#include "codekeep.h"
#include "pyoffsets.h"
#include "saferead.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/uio.h>

#define BUF_MAX 512
#define OWNER_GENERATOR 1
#define PAGE 4096
#define WIN_PAGES 4          /* data-stack window copied per read (3.11+) */
#define CODE_CACHE_BITS 10
#define CODE_CACHE (1 << CODE_CACHE_BITS) /* two-way (see code_info)     */
#define WIN_MAX (WIN_PAGES * PAGE + BUF_MAX) /* bytes of one window        */
#define WIN_ARENA (6 * WIN_MAX) /* all windows of one walk                   */
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
    uint64_t epoch;       /* valid only in the epoch it was read in */
} codeinfo;

/* A copied range of the process: arena[off + i] holds byte base+i, of
 * which [lo, hi) is valid. */
typedef struct window {
    uintptr_t base, lo, hi;
    uint32_t off;
    bool used;            /* a frame of this walk was read from it       */
} window;

/* A safe-mode walker's state: this walk's windows and the code cache. One
 * for the sampler thread, one for the thread that holds a native-frames
 * request (cp__walk_self: one at a time, see pynative.c). */
typedef struct walkbuf {
    uint8_t arena[WIN_ARENA];
    window win[CP_WALKHINT_MAX];
    uint32_t nwin, arena_used;
    bool primed;          /* cp__walk_prefetch filled the windows         */
    codeinfo codes[CODE_CACHE];
    uint64_t gens[CP_WALK_GENS]; /* last walk's outermost generators, outer last */
    uint32_t ngens;
    bool torn;            /* the last walk met a dead code object         */
} walkbuf;

static walkbuf g_sampler_w, g_self_w[CP_WALK_SELF_BUFS];
static atomic_bool g_self_busy[CP_WALK_SELF_BUFS];
/* Code-cache entries of earlier epochs stop matching (any walker). */
static _Atomic uint64_t g_epoch;

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

static const uint8_t *frame_bytes(walkbuf *wb, bool direct, uintptr_t addr, size_t n);

/* ---- reading frames (safe mode) ------------------------------------- */

/* A new window of up to len bytes in the arena, or NULL when full. */
static window *window_new(walkbuf *wb, size_t len)
{
    if (wb->nwin == CP_WALKHINT_MAX || len > WIN_MAX || WIN_ARENA - wb->arena_used < len)
        return NULL;
    window *w = &wb->win[wb->nwin++];
    *w = (window){0, 0, 0, wb->arena_used, false};
    wb->arena_used += (uint32_t)len;
    return w;
}

static void windows_reset(walkbuf *wb)
{
    wb->nwin = wb->arena_used = 0;
}

/* Copy [fr, fr+n) and, when wide, up to WIN_PAGES-1 whole pages below it,
 * in one vectored read ordered top-down: the kernel stops at the first
 * unreadable element, so what arrives is one contiguous range. */
static window *window_fill(walkbuf *wb, uintptr_t fr, size_t n, bool wide)
{
    struct iovec loc[WIN_PAGES], rem[WIN_PAGES];
    /* fr may be garbage from a torn read: it must leave fr+n and the page
     * arithmetic below in range, so the local lengths stay within buf. */
    if (!fr || fr > USER_ADDR_MAX || n > BUF_MAX)
        return NULL;
    /* Full: the newest windows give way (their frames are parsed), so
     * that the oldest, the top of the stack, stay for the hint. */
    while (wb->nwin > 0 && (wb->nwin == CP_WALKHINT_MAX || WIN_ARENA - wb->arena_used < WIN_MAX))
        wb->arena_used = wb->win[--wb->nwin].off;
    window *w = window_new(wb, WIN_MAX);
    uint8_t *buf = wb->arena + w->off;
    uintptr_t top_page = fr & ~(uintptr_t)(PAGE - 1);
    uintptr_t start = wide ? top_page : fr;
    int cnt = wide ? WIN_PAGES : 1;
    if (wide && top_page < (uintptr_t)(WIN_PAGES - 1) * PAGE)
        cnt = 1;
    w->base = wide ? top_page - (uintptr_t)(cnt - 1) * PAGE : fr;
    size_t len0 = fr + n - start;
    loc[0] = (struct iovec){buf + (start - w->base), len0};
    rem[0] = (struct iovec){(void *)start, len0};
    for (int i = 1; i < cnt; i++) {
        uintptr_t p = top_page - (uintptr_t)i * PAGE;
        loc[i] = (struct iovec){buf + (p - w->base), PAGE};
        rem[i] = (struct iovec){(void *)p, PAGE};
    }
    long got = cp__saferead_vec(loc, rem, cnt);
    if (got < (long)len0) {
        wb->nwin--;
        wb->arena_used = w->off;
        return NULL;
    }
    w->hi = fr + n;
    w->lo = start - ((size_t)got - len0);
    wb->arena_used = w->off + (uint32_t)(w->hi - w->base); /* give back what was not read */
    return w;
}

/* Bytes [addr, addr+n) of the process, from a window when one has them. */
static const uint8_t *frame_bytes(walkbuf *wb, bool direct, uintptr_t addr, size_t n)
{
    if (direct)
        return (const uint8_t *)addr;
    /* Written so that no sum can wrap, whatever garbage addr holds. */
    for (uint32_t i = 0; i < wb->nwin; i++) {
        window *w = &wb->win[i];
        if (addr >= w->lo && addr < w->hi && n <= w->hi - addr) {
            w->used = true;
            return wb->arena + w->off + (addr - w->base);
        }
    }
    /* 3.11+ frames are stacked downwards in one chunk: copy a window. */
    window *w = window_fill(wb, addr, n, cp__pyoff()->layout != CP_LAYOUT_FRAMEOBJ);
    if (!w)
        return NULL;
    w->used = true;
    return wb->arena + w->off + (addr - w->base);
}

/* ---- prefetch --------------------------------------------------------- */

static uintptr_t prefetch(walkbuf *wb, const cp_tsinfo *ti, const cp_walkhint *hint)
{
    const cp_pyoff *o = cp__pyoff();
    struct iovec loc[CP_WALKHINT_MAX + 1], rem[CP_WALKHINT_MAX + 1];
    window *w[CP_WALKHINT_MAX];
    uint64_t cur = 0;
    int cnt = 0, nw = 0;
    bool cframe = o->layout == CP_LAYOUT_IFRAME_CFRAME;
    windows_reset(wb);
    wb->primed = true;
    if (!ti->frame)
        return 0;
    if (cframe) { /* 3.11/3.12: ts->cframe->current_frame, read first */
        loc[cnt] = (struct iovec){&cur, 8};
        rem[cnt++] = (struct iovec){(void *)(ti->frame + o->cframe_current), 8};
    }
    for (uint32_t i = 0; hint && i < hint->n && i < CP_WALKHINT_MAX; i++) {
        if (hint->addr[i] > USER_ADDR_MAX || !(w[nw] = window_new(wb, hint->len[i])))
            break;
        w[nw]->base = hint->addr[i];
        loc[cnt] = (struct iovec){wb->arena + w[nw]->off, hint->len[i]};
        rem[cnt++] = (struct iovec){(void *)hint->addr[i], hint->len[i]};
        nw++;
    }
    long got = cnt ? cp__saferead_vec(loc, rem, cnt) : 0;
    size_t left = got > 0 ? (size_t)got : 0;
    if (cframe) {
        if (left < 8) {
            windows_reset(wb); /* nothing usable arrived */
            return 0;
        }
        left -= 8;
    }
    /* Elements arrive whole and in order up to the first unreadable one. */
    uint32_t kept = 0;
    for (int i = 0; i < nw; i++) {
        size_t len = loc[i + (cframe ? 1 : 0)].iov_len;
        if (left < len)
            break;
        left -= len;
        w[i]->lo = w[i]->base;
        w[i]->hi = w[i]->base + len;
        kept++;
    }
    wb->nwin = kept;
    wb->arena_used = kept ? w[kept - 1]->off + (uint32_t)(w[kept - 1]->hi - w[kept - 1]->base) : 0;
    return cframe ? (uintptr_t)cur : ti->frame;
}

uintptr_t cp__walk_prefetch(const cp_tsinfo *ti, const cp_walkhint *hint)
{
    return prefetch(&g_sampler_w, ti, hint);
}

static void hint_save(walkbuf *wb, cp_walkhint *hint)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < wb->nwin; i++) {
        const window *w = &wb->win[i];
        if (!w->used || w->hi <= w->lo)
            continue;
        hint->addr[n] = w->lo;
        hint->len[n++] = (uint32_t)(w->hi - w->lo);
    }
    hint->n = n;
    windows_reset(wb);
    wb->primed = false;
}

void cp__walk_hint_save(cp_walkhint *hint) { hint_save(&g_sampler_w, hint); }

/* ---- code objects ----------------------------------------------------- */

/* What a read of a code object's address found. */
typedef enum { CODE_OK, CODE_NOT, CODE_DEAD } code_state;

/* In safe mode the code object is stamped seen (codekeep) before it is
 * read and must be alive in that read: then, should it die before its
 * sample is resolved, the deallocator finds the stamp and keeps it (see
 * the fence there). One found dead (its memory freed, reference count
 * word gone, type word still there) ran a frame that has returned since
 * the frame was read: CODE_DEAD, the walk is torn. */
static code_state code_read(bool direct, uint64_t addr, codeinfo *ci)
{
    const cp_pyoff *o = cp__pyoff();
    uint8_t b[BUF_MAX];
    size_t span = code_span(o);
    if (span > BUF_MAX)
        return CODE_NOT;
    if (direct) {
        memcpy(b, (const void *)(uintptr_t)addr, span);
    } else {
        if (!addr || addr > USER_ADDR_MAX)
            return CODE_NOT;
        cp__codekeep_seen(addr);
        atomic_thread_fence(memory_order_seq_cst);
        if (!cp__saferead(b, (uintptr_t)addr, span))
            return CODE_NOT;
    }
    if (get_u64(b, offsetof(PyObject, ob_type)) != (uint64_t)(uintptr_t)&PyCode_Type)
        return CODE_NOT;
    /* A live object's first word is its reference count, at most 2^32
     * even when immortal (as codecache.c's check). */
    uint64_t refcnt = get_u64(b, 0);
    if (!direct && (refcnt == 0 || refcnt > 0xFFFFFFFFull))
        return CODE_DEAD;
    ci->addr = addr;
    ci->firstlineno = get_i32(b, o->co_firstlineno);
    ci->firsttraceable = o->co_firsttraceable == CP_OFF_NONE ? 0 : get_i32(b, o->co_firsttraceable);
    return CODE_OK;
}

/* Code facts for addr; safe mode caches them (see cp__walk_new_epoch). */
static code_state code_info(walkbuf *wb, bool direct, uint64_t addr, codeinfo *ci)
{
    if (direct)
        return code_read(true, addr, ci);
    uint64_t epoch = atomic_load_explicit(&g_epoch, memory_order_relaxed);
    /* Two ways, indexed by a hash of every address bit: code objects of
     * one size sit at the same offsets of different pools, so the low bits
     * alone (as this indexed before) made a few of a stack's code objects
     * evict each other at every walk, each then read again. */
    size_t i = (size_t)((addr * 0x9E3779B97F4A7C15ULL) >> (64 - CODE_CACHE_BITS)) & ~(size_t)1;
    codeinfo *way = &wb->codes[i];
    for (int k = 0; k < 2; k++) {
        if (way[k].addr == addr && way[k].epoch == epoch) {
            *ci = way[k];
            return CODE_OK;
        }
    }
    code_state st = code_read(false, addr, ci);
    if (st != CODE_OK)
        return st;
    ci->epoch = epoch;
    /* Into a way of an older epoch if there is one; else the older of the
     * two fills (way 0 is moved to way 1). */
    if (way[0].epoch != epoch) {
        way[0] = *ci;
    } else {
        way[1] = way[0];
        way[0] = *ci;
    }
    return CODE_OK;
}

bool cp__walk_torn(void)
{
    return g_sampler_w.torn;
}

void cp__walk_forget(void)
{
    windows_reset(&g_sampler_w);
    g_sampler_w.primed = false;
}

/* Entries of earlier epochs stop matching: no table to clear. */
void cp__walk_new_epoch(void)
{
    atomic_fetch_add_explicit(&g_epoch, 1, memory_order_relaxed);
}

/* ---- walking ---------------------------------------------------------- */

/* A raw frame for p, or false when the frame must be skipped (not code, or
 * incomplete: still in its prologue). */
static bool finish(walkbuf *wb, bool direct, const pending *p, cp_rawframe *out)
{
    const cp_pyoff *o = cp__pyoff();
    codeinfo ci;
    code_state st = code_info(wb, direct, p->code, &ci);
    if (st == CODE_DEAD) {
        /* Never a guess at what ran there: code 0 reads <unknown>. */
        wb->torn = true;
        *out = (cp_rawframe){0};
        out->offset = -1;
        return true;
    }
    if (st != CODE_OK)
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

/* The generator or coroutine object whose frame this is, or 0. */
static uint64_t frame_gen(const cp_pyoff *o, const uint8_t *b, uintptr_t fr, int owner)
{
    if (o->layout == CP_LAYOUT_FRAMEOBJ)
        return get_u64(b, o->fr_gen);
    return owner == OWNER_GENERATOR ? (uint64_t)(fr - o->gen_iframe) : 0;
}

/* Remember gen, keeping the outermost CP_WALK_GENS (the walk goes outwards,
 * so the oldest are dropped). */
static void note_gen(walkbuf *w, uint64_t gen)
{
    if (!gen || gen > USER_ADDR_MAX)
        return;
    if (w->ngens == CP_WALK_GENS) {
        memmove(w->gens, w->gens + 1, (CP_WALK_GENS - 1) * sizeof w->gens[0]);
        w->ngens--;
    }
    w->gens[w->ngens++] = gen;
}

uint32_t cp__walk_gens(uint64_t *out)
{
    memcpy(out, g_sampler_w.gens, g_sampler_w.ngens * sizeof out[0]);
    return g_sampler_w.ngens;
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

/* Does the eval call of the frame in b end with it (before: at it)? */
static bool ends_call(const cp_pyoff *o, const uint8_t *b, const pending *p, bool *before)
{
    *before = o->owner_cstack >= 0 && p->owner == o->owner_cstack;
    if (o->layout == CP_LAYOUT_FRAMEOBJ)
        return true;
    if (o->fr_is_entry != CP_OFF_NONE)
        return b[o->fr_is_entry] != 0;
    return *before;
}

static void close_group(cp_evalgroups *g, uint32_t *k)
{
    if (g->count < g->cap)
        g->n[g->count++] = (uint16_t)(*k > UINT16_MAX ? UINT16_MAX : *k);
    *k = 0;
}

static uint32_t walk(walkbuf *wb, uintptr_t top, bool direct, cp_rawframe *out, uint32_t cap,
                     uint32_t *omitted, cp_evalgroups *g)
{
    const cp_pyoff *o = cp__pyoff();
    uint32_t n = 0, in_call = 0;
    uintptr_t fr = top;
    if (omitted)
        *omitted = 0;
    if (g)
        g->count = 0;
    if (!direct) {
        if (!wb->primed)
            windows_reset(wb); /* windows are only trusted within one walk */
        wb->ngens = 0;
        wb->torn = false;
    }
    if (o->fr_read > BUF_MAX)
        return 0;
    for (int steps = 0; fr && steps < CP_WALK_MAX && (omitted || n < cap); steps++) {
        const uint8_t *b = frame_bytes(wb, direct, fr, o->fr_read);
        pending p;
        uint64_t back;
        cp_rawframe rf;
        bool before = false;
        if (!b)
            break;
        bool use = parse(o, b, &p, &back);
        if (!direct)
            note_gen(wb, frame_gen(o, b, fr, p.owner));
        bool ends = g && ends_call(o, b, &p, &before);
        if (ends && before)
            close_group(g, &in_call);
        if (use && finish(wb, direct, &p, &rf)) {
            if (n < cap) {
                out[n++] = rf;
                in_call++;
            } else {
                (*omitted)++; /* n == cap: omitted is set */
            }
        }
        if (ends && !before)
            close_group(g, &in_call);
        fr = back == fr ? 0 : (uintptr_t)back; /* a self-loop ends the walk */
    }
    if (g && in_call > 0)
        close_group(g, &in_call);
    return n;
}

uint32_t cp__walk(uintptr_t top, bool direct, cp_rawframe *out, uint32_t cap, uint32_t *omitted)
{
    return walk(&g_sampler_w, top, direct, out, cap, omitted, NULL);
}

uint32_t cp__walk_groups(uintptr_t top, cp_rawframe *out, uint32_t cap, uint32_t *omitted,
                         cp_evalgroups *g)
{
    return walk(&g_sampler_w, top, false, out, cap, omitted, g);
}

uint32_t cp__walk_self(uintptr_t ts, uint64_t thread_id, cp_walkhint *hint, cp_rawframe *out, uint32_t cap,
                       uint32_t *omitted, cp_evalgroups *g, uint64_t *gens, uint32_t *ngens)
{
    uint8_t b[BUF_MAX];
    cp_tsinfo ti;
    size_t n = cp__ts_span();
    *omitted = 0;
    *ngens = 0;
    g->count = 0;
    if (n > BUF_MAX || !cp__saferead(b, ts, n))
        return 0;
    cp__ts_parse(b, &ti);
    if (ti.thread_id != thread_id)
        return 0; /* the thread state now belongs to another thread */
    /* A buffer of its own: handlers of several threads may run at once. */
    for (int i = 0; i < CP_WALK_SELF_BUFS; i++) {
        bool idle = false;
        if (!atomic_compare_exchange_strong(&g_self_busy[i], &idle, true))
            continue;
        walkbuf *w = &g_self_w[i];
        /* With a hint: the top's locator and the ranges the frames held
         * last time, in one read (as the sampler's walks do). */
        uintptr_t top = hint ? prefetch(w, &ti, hint) : cp__ts_top(&ti, false);
        uint32_t k = 0;
        if (top) {
            k = walk(w, top, false, out, cap, omitted, g);
            memcpy(gens, w->gens, w->ngens * sizeof gens[0]);
            *ngens = w->ngens;
        }
        if (hint)
            hint_save(w, hint);
        atomic_store(&g_self_busy[i], false);
        return k;
    }
    return 0;
}
