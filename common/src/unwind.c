/*
 * unwind.c — the signal-safe native unwinder (contprof.h section 6).
 *
 * Built on libunwind's generic ("remote") interface with our own address
 * space, so that the walk never leaves what we control:
 *  - unwind tables come from the module snapshot (native_modules.c), not
 *    from dl_iterate_phdr, which takes the loader's lock;
 *  - every memory read goes through access_mem: inside a loaded object's
 *    segment it is a plain load, anywhere else (the stack) the page is first
 *    validated with process_vm_readv on ourselves, so a bad CFA or a broken
 *    frame chain ends the walk instead of faulting in a signal handler;
 *  - registers come from the signal's ucontext;
 *  - caching is off (UNW_CACHE_NONE): libunwind's caches take a lock or use
 *    general-dynamic TLS, whose first touch may malloc.
 * libunwind still takes its mempool lock (with signals blocked) for the
 * parsed CIE of each step: held for a few instructions, never by the same
 * thread twice (signals are blocked while it is held).
 */
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "contprof.h"
#include "contprof_os.h"
#include "native_modules.h"
#include "unwind.h"

/* Not in libunwind's public headers, but exported: the binary search of an
 * .eh_frame_hdr table that libunwind's own local unwinder uses. */
extern int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip,
                                              unw_dyn_info_t *di, unw_proc_info_t *pi,
                                              int need_unwind_info, void *arg);

enum { NREGS = 17, OK_RANGES = 4, PROBE_FIRST = 4, PROBE_PAGES = 16, MAX_READS = 4096, PI_SLOTS = 4096, CIE_MAX = 128 };

/* A cache of libunwind's answer for one lookup pc: the proc info and the
 * parsed CIE it points to (libunwind's struct dwarf_cie_info, copied as
 * bytes). Hot stacks repeat their return addresses, and this parse is most
 * of a step's cost. Lock-free: a writer (any handler) owns a slot while its
 * seq is odd; a reader copies, then checks seq again (seqlock). Entries of
 * an older module snapshot are ignored (an object may have been replaced). */
typedef struct pi_slot {
    atomic_uint seq;
    unw_word_t key;
    uint64_t gen;
    unw_proc_info_t pi;
    size_t cie_size;
    _Alignas(16) unsigned char cie[CIE_MAX];
} pi_slot;

/* One walk's state, on the handler's stack (the libunwind "as_arg"). */
typedef struct walk {
    unw_word_t regs[NREGS];       /* UNW_X86_64_RAX .. UNW_X86_64_RIP       */
    const cp__modsnap *snap;
    uintptr_t seg_lo, seg_hi;     /* the last object segment read from      */
    uintptr_t ok_lo[OK_RANGES], ok_hi[OK_RANGES]; /* stack ranges known readable */
    int n_ok, reads;
    bool no_info;                 /* a pc in an object had no FDE           */
    _Alignas(16) unsigned char cie[CIE_MAX]; /* this step's cached CIE    */
    bool bad_read;
    uintptr_t stop_lo, stop_hi;   /* end the walk after a pc in here      */
} walk;

static unw_addr_space_t g_as;
static pi_slot *g_pi;             /* PI_SLOTS, never freed                 */
static atomic_ullong g_pi_hits, g_pi_misses;
static atomic_bool g_ready;
static long g_page;
static pid_t g_pid;               /* ours; reset in a forked child           */
static atomic_ullong g_unwinds, g_frames, g_stops[CP_UNWIND__COUNT], g_fast_steps;
static atomic_ullong g_row_hits;
enum { ROW_SLOTS = 8192 };
typedef struct row_slot row_slot;
static row_slot *g_rows;          /* ROW_SLOTS, never freed                 */
static atomic_bool g_slow_only;   /* tests and bench: libunwind for every step */

/* ---- memory ------------------------------------------------------------ */

/* Validate the pages from page upward with one read of ourselves through
 * the kernel: EFAULT instead of SIGSEGV, and it also refuses PROT_NONE
 * guard pages (mincore would not). The kernel stops at the first
 * unreadable page, so the bytes read are the readable prefix: one system
 * call covers a walk's stack (they cost ~1-4 us each in VMs, plus ~0.3 us
 * a page, which the kernel pins). A walk's first probe covers PROBE_FIRST
 * pages, which hold most stacks (a Python thread in its eval loop, a JVM
 * thread's native frames above its Java ones); the next ones PROBE_PAGES:
 * a 16-page first probe made a 7-frame unwind cost as much as a 34-frame
 * one (6.7 us). */
static bool probe_pages(walk *w, uintptr_t page)
{
    char bytes[PROBE_PAGES];
    int np = w->n_ok == 0 ? PROBE_FIRST : PROBE_PAGES;
    struct iovec local = {bytes, (size_t)np}, remote[PROBE_PAGES];
    for (int i = 0; i < np; i++)
        remote[i] = (struct iovec){(void *)(page + (uintptr_t)i * (uintptr_t)g_page), 1};
    long got = syscall(SYS_process_vm_readv, g_pid, &local, 1, remote, (unsigned long)np, 0);
    if (got <= 0)
        return false;
    int slot = w->n_ok < OK_RANGES ? w->n_ok++ : (int)(page / (uintptr_t)g_page % OK_RANGES);
    w->ok_lo[slot] = page;
    w->ok_hi[slot] = page + (uintptr_t)got * (uintptr_t)g_page;
    return true;
}

static bool page_known(const walk *w, uintptr_t page)
{
    for (int i = 0; i < w->n_ok; i++)
        if (page >= w->ok_lo[i] && page < w->ok_hi[i])
            return true;
    return false;
}

static bool page_readable(walk *w, uintptr_t page)
{
    return page_known(w, page) || probe_pages(w, page);
}

static bool readable(walk *w, uintptr_t addr)
{
    /* Most reads are the unwind tables of one object or the stack pages
     * validated already: check those first. */
    if (addr >= w->seg_lo && addr + sizeof(unw_word_t) <= w->seg_hi)
        return true;
    uintptr_t first = addr & ~((uintptr_t)g_page - 1);
    uintptr_t last = (addr + sizeof(unw_word_t) - 1) & ~((uintptr_t)g_page - 1);
    if (page_known(w, first) && (last == first || page_known(w, last)))
        return true;
    const cp__segment *s = cp__modules_find(w->snap, addr);
    if (s != NULL && addr + sizeof(unw_word_t) <= s->hi) {
        w->seg_lo = s->lo;
        w->seg_hi = s->hi;
        return true;
    }
    return page_readable(w, first) && (last == first || page_readable(w, last));
}

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write, void *arg)
{
    walk *w = arg;

    if (write || ++w->reads > MAX_READS || !readable(w, (uintptr_t)addr)) {
        w->bad_read = true;
        return -UNW_EINVAL;
    }
    memcpy(val, (const void *)(uintptr_t)addr, sizeof *val);
    return 0;
}

/* ---- registers, tables, the rest of the accessors ----------------------- */

static int access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *arg)
{
    walk *w = arg;

    if (reg < 0 || reg >= NREGS)
        return -UNW_EBADREG;
    if (write)
        w->regs[reg] = *val;
    else
        *val = w->regs[reg];
    return 0;
}

static int access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write, void *arg)
{
    return -UNW_EBADREG;
}

/* The entry of m's .eh_frame_hdr table covering ip (local binary search:
 * the table lies in the object's mapped segment), or NULL. */
static const int32_t *table_entry(const cp__module *m, uintptr_t ip)
{
    const int32_t *t = (const int32_t *)m->table; /* pairs: start offset, FDE offset */
    size_t lo = 0, hi = m->table_words, n = m->table_words;
    intptr_t off = (intptr_t)(ip - m->eh_hdr);

    while (lo < hi) { /* first entry whose start is > ip */
        size_t mid = (lo + hi) / 2;
        if (t[2 * mid] <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 || lo > n ? NULL : &t[2 * (lo - 1)];
}

static pi_slot *pi_slot_of(unw_word_t ip)
{
    return g_pi == NULL ? NULL : &g_pi[(size_t)((ip * 0x9E3779B97F4A7C15ULL) >> 40) & (PI_SLOTS - 1)];
}

/* The seqlock of the two lock-free caches below (pi_slot, row_slot): a
 * reader takes a slot's seq (0: never written or being written), copies,
 * and keeps the copy only if seq did not move; a writer claims the slot by
 * making seq odd and skips it when another handler holds it (never waits). */
static unsigned seq_read_begin(atomic_uint *seq)
{
    unsigned v = atomic_load_explicit(seq, memory_order_acquire);
    return (v & 1) ? 0 : v;
}

static bool seq_read_valid(atomic_uint *seq, unsigned v)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(seq, memory_order_relaxed) == v;
}

static bool seq_write_claim(atomic_uint *seq, unsigned *v)
{
    *v = atomic_load_explicit(seq, memory_order_relaxed);
    return !(*v & 1) && atomic_compare_exchange_strong(seq, v, *v + 1);
}

static void seq_write_done(atomic_uint *seq, unsigned v)
{
    atomic_store_explicit(seq, v + 2, memory_order_release);
}

static bool pi_lookup(walk *w, unw_word_t ip, unw_proc_info_t *pi)
{
    pi_slot *s = pi_slot_of(ip);
    if (s == NULL)
        return false;
    unsigned seq = seq_read_begin(&s->seq);
    if (seq == 0 || s->key != ip || s->gen != w->snap->gen || s->cie_size > CIE_MAX)
        return false;
    *pi = s->pi;
    memcpy(w->cie, s->cie, s->cie_size);
    if (!seq_read_valid(&s->seq, seq))
        return false;
    /* Our copy, in this walk's frame: not libunwind's to free
     * (it frees only UNW_INFO_FORMAT_TABLE infos), parsed the same way. */
    pi->unwind_info = w->cie;
    pi->format = UNW_INFO_FORMAT_REMOTE_TABLE;
    return true;
}

static void pi_store(walk *w, unw_word_t ip, const unw_proc_info_t *pi)
{
    pi_slot *s = pi_slot_of(ip);
    if (s == NULL || pi->unwind_info == NULL || pi->unwind_info_size <= 0 ||
        (size_t)pi->unwind_info_size > CIE_MAX)
        return;
    unsigned seq;
    if (!seq_write_claim(&s->seq, &seq))
        return;
    s->key = ip;
    s->gen = w->snap->gen;
    s->pi = *pi;
    s->pi.unwind_info = NULL;
    s->cie_size = (size_t)pi->unwind_info_size;
    memcpy(s->cie, pi->unwind_info, s->cie_size);
    seq_write_done(&s->seq, seq);
}

static int find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
                          int need_unwind_info, void *arg)
{
    walk *w = arg;
    const cp__segment *s = cp__modules_find(w->snap, (uintptr_t)ip);
    const cp__module *m = s != NULL && s->exec ? &w->snap->mods[s->module] : NULL;
    const int32_t *e = m != NULL && m->table != 0 ? table_entry(m, (uintptr_t)ip) : NULL;
    unw_dyn_info_t di;

    if (e != NULL && need_unwind_info && pi_lookup(w, ip, pi)) {
        atomic_fetch_add_explicit(&g_pi_hits, 1, memory_order_relaxed);
        return 0;
    }
    if (e == NULL) {
        w->no_info = true;
        return -UNW_ENOINFO;
    }
    /* libunwind's own lookup reads the table one callback per probe; hand
     * it the one entry found here (and the next, which bounds it). */
    bool last = e == (const int32_t *)m->table + 2 * (m->table_words - 1);
    memset(&di, 0, sizeof di);
    di.start_ip = s->lo;
    di.end_ip = s->hi;
    di.gp = m->gp;
    di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
    di.u.rti.segbase = m->eh_hdr;
    di.u.rti.table_len = last ? 1 : 2;
    di.u.rti.table_data = (unw_word_t)(uintptr_t)e;
    int rc = _Ux86_64_dwarf_search_unwind_table(as, ip, &di, pi, need_unwind_info, arg);
    if (rc == -UNW_ENOINFO)
        w->no_info = true;
    if (rc == 0 && need_unwind_info) {
        atomic_fetch_add_explicit(&g_pi_misses, 1, memory_order_relaxed);
        pi_store(w, ip, pi);
    }
    return rc;
}

/* libunwind frees what dwarf_search_unwind_table allocated itself. */
static void put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg) {}

static int get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
    return -UNW_ENOINFO; /* no dynamically registered unwind info */
}

static int resume(unw_addr_space_t as, unw_cursor_t *c, void *arg) { return -UNW_EINVAL; }

static int get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
                         unw_word_t *off, void *arg)
{
    return -UNW_ENOINFO; /* symbols are looked up off the hot path */
}

static unw_accessors_t g_accessors = {
    .find_proc_info = find_proc_info,
    .put_unwind_info = put_unwind_info,
    .get_dyn_info_list_addr = get_dyn_info_list_addr,
    .access_mem = access_mem,
    .access_reg = access_reg,
    .access_fpreg = access_fpreg,
    .resume = resume,
    .get_proc_name = get_proc_name,
};

/* ---- the walk ----------------------------------------------------------- */

static void load_regs(walk *w, const ucontext_t *uc)
{
    const greg_t *g = uc->uc_mcontext.gregs;

    w->regs[UNW_X86_64_RAX] = (unw_word_t)g[REG_RAX];
    w->regs[UNW_X86_64_RDX] = (unw_word_t)g[REG_RDX];
    w->regs[UNW_X86_64_RCX] = (unw_word_t)g[REG_RCX];
    w->regs[UNW_X86_64_RBX] = (unw_word_t)g[REG_RBX];
    w->regs[UNW_X86_64_RSI] = (unw_word_t)g[REG_RSI];
    w->regs[UNW_X86_64_RDI] = (unw_word_t)g[REG_RDI];
    w->regs[UNW_X86_64_RBP] = (unw_word_t)g[REG_RBP];
    w->regs[UNW_X86_64_RSP] = (unw_word_t)g[REG_RSP];
    for (int i = 0; i < 8; i++)
        w->regs[UNW_X86_64_R8 + i] = (unw_word_t)g[REG_R8 + i];
    w->regs[UNW_X86_64_RIP] = (unw_word_t)g[REG_RIP];
}

static bool known_exec(const walk *w, uintptr_t pc)
{
    const cp__segment *s = cp__modules_find(w->snap, pc);
    return s != NULL && s->exec;
}

/* One load from the walked stack or an object (access_mem's checks). */
static bool load(walk *w, uintptr_t addr, unw_word_t *val)
{
    return access_mem(g_as, (unw_word_t)addr, val, 0, w) == 0;
}

enum { FS_STEPPED, FS_END, FS_NO_INFO, FS_ERROR, FS_SLOW };

/* Registers a caller's frame gets back from its callee's: callee-saved. */
static const uint8_t k_saved[] = {UNW_X86_64_RBX, UNW_X86_64_RBP, UNW_X86_64_R12,
                                  UNW_X86_64_R13, UNW_X86_64_R14, UNW_X86_64_R15};

static bool cfa_reg_ok(uint8_t reg, bool leaf)
{
    if (reg == UNW_X86_64_RSP || leaf)
        return reg < UNW_X86_64_RIP;
    for (size_t i = 0; i < sizeof k_saved; i++)
        if (k_saved[i] == reg)
            return true;
    return false; /* a caller-saved register above the leaf is stale */
}

/* A row of cfi.c reduced to what a step uses, cached per lookup pc (and
 * whether it was the leaf): most samples repeat their return addresses, so
 * a step is then a hash probe and a few loads. Lock-free like pi_slot. */
typedef struct fast_row {
    int32_t cfa_off;
    uint8_t cfa_reg, kind;        /* kind: FS_STEPPED (a usable row) or FS_*  */
    int16_t ra_off;
    int16_t off[sizeof k_saved];  /* from the CFA; 0 = not saved here        */
} fast_row;

typedef struct row_slot {
    atomic_uint seq;
    uint64_t key, gen;
    fast_row row;
} row_slot;

static row_slot *row_slot_of(uint64_t key)
{
    return g_rows == NULL ? NULL : &g_rows[(size_t)((key * 0x9E3779B97F4A7C15ULL) >> 40) & (ROW_SLOTS - 1)];
}

static bool row_get(const walk *w, uint64_t key, fast_row *out)
{
    row_slot *s = row_slot_of(key);
    if (s == NULL)
        return false;
    unsigned seq = seq_read_begin(&s->seq);
    if (seq == 0 || s->key != key || s->gen != w->snap->gen)
        return false;
    *out = s->row;
    return seq_read_valid(&s->seq, seq);
}

static void row_put(const walk *w, uint64_t key, const fast_row *row)
{
    row_slot *s = row_slot_of(key);
    if (s == NULL)
        return;
    unsigned seq;
    if (!seq_write_claim(&s->seq, &seq))
        return;
    s->key = key;
    s->gen = w->snap->gen;
    s->row = *row;
    seq_write_done(&s->seq, seq);
}

static bool fits16(int64_t v) { return v >= INT16_MIN && v <= INT16_MAX && v != 0; }

/* The reduced row for the frame at lookup, from cfi.c (cache miss). */
static void row_build(walk *w, const cp__segment *s, uintptr_t lookup, bool leaf, fast_row *out)
{
    const cp__module *m = s != NULL && s->exec ? &w->snap->mods[s->module] : NULL;
    const int32_t *e = m != NULL && m->table != 0 ? table_entry(m, lookup) : NULL;
    memset(out, 0, sizeof *out);
    out->kind = FS_NO_INFO;
    if (e == NULL)
        return;
    uintptr_t fstart = m->eh_hdr + (uintptr_t)(intptr_t)e[0];
    uintptr_t fde = m->eh_hdr + (uintptr_t)(intptr_t)e[1];
    const cp__segment *fs = cp__modules_find(w->snap, fde);
    cp__cfi_row row;
    int rc = fs == NULL ? CP__CFI_UNSUPPORTED
                        : cp__cfi_row_find((const uint8_t *)fde, fstart, lookup, (const uint8_t *)fs->lo,
                                           (const uint8_t *)fs->hi, &row);
    out->kind = FS_SLOW;
    if (rc == CP__CFI_NO_INFO)
        out->kind = FS_NO_INFO;
    if (rc != CP__CFI_OK || row.ra_reg != UNW_X86_64_RIP || !cfa_reg_ok(row.cfa_reg, leaf) ||
        row.cfa_off < INT32_MIN || row.cfa_off > INT32_MAX)
        return;
    if (row.how[UNW_X86_64_RIP] == CP__CFI_UNDEFINED) {
        out->kind = FS_END; /* the outermost frame (_start, clone) says so */
        return;
    }
    if (row.how[UNW_X86_64_RIP] != CP__CFI_AT_CFA || !fits16(row.off[UNW_X86_64_RIP]))
        return;
    for (size_t i = 0; i < sizeof k_saved; i++) {
        uint8_t r = k_saved[i];
        if (row.how[r] == CP__CFI_UNDEFINED || (row.how[r] == CP__CFI_AT_CFA && !fits16(row.off[r])))
            return;
        out->off[i] = row.how[r] == CP__CFI_AT_CFA ? (int16_t)row.off[r] : 0;
    }
    out->cfa_reg = row.cfa_reg;
    out->cfa_off = (int32_t)row.cfa_off;
    out->ra_off = (int16_t)row.off[UNW_X86_64_RIP];
    out->kind = FS_STEPPED;
}

/* Step w->regs from the frame at lookup (its pc, or return address - 1; s
 * its segment) to its caller with our own CFI evaluation (cfi.c, cached);
 * FS_SLOW leaves the step to libunwind. */
static int fast_step(walk *w, const cp__segment *s, uintptr_t lookup, bool leaf)
{
    uint64_t key = (uint64_t)lookup << 1 | leaf;
    fast_row r;
    if (row_get(w, key, &r)) {
        atomic_fetch_add_explicit(&g_row_hits, 1, memory_order_relaxed);
    } else {
        row_build(w, s, lookup, leaf, &r);
        row_put(w, key, &r);
    }
    if (r.kind != FS_STEPPED)
        return r.kind;
    uintptr_t cfa = (uintptr_t)w->regs[r.cfa_reg] + (uintptr_t)(intptr_t)r.cfa_off;
    unw_word_t v, ra;
    if (!load(w, cfa + (uintptr_t)(intptr_t)r.ra_off, &ra))
        return FS_ERROR;
    for (size_t i = 0; i < sizeof k_saved; i++) {
        if (r.off[i] != 0) {
            if (!load(w, cfa + (uintptr_t)(intptr_t)r.off[i], &v))
                return FS_ERROR;
            w->regs[k_saved[i]] = v;
        }
    }
    w->regs[UNW_X86_64_RSP] = (unw_word_t)cfa;
    w->regs[UNW_X86_64_RIP] = ra;
    return FS_STEPPED;
}

/* The rest of a walk with libunwind, from the frame in w->regs (already in
 * pcs[0..n)); for frames cfi.c does not evaluate. */
static int slow_from(walk *w, uintptr_t *pcs, int n, int max, bool leaf, cp_unwind_status *why)
{
    unw_cursor_t cur;
    unw_word_t ip, sp = w->regs[UNW_X86_64_RSP], nsp;

    if (!leaf) /* libunwind takes a first frame's pc as exact: give it the call */
        w->regs[UNW_X86_64_RIP] -= 1;
    if (unw_init_remote(&cur, g_as, w) < 0)
        return (*why = CP_UNWIND_ERROR), n;
    for (;;) {
        int rc = unw_step(&cur);
        if (w->no_info) /* the next frame would be a frame-pointer guess */
            return (*why = CP_UNWIND_NO_INFO), n;
        if (w->bad_read) /* libunwind may call that the end of the stack */
            return (*why = CP_UNWIND_ERROR), n;
        if (rc == 0)
            return (*why = CP_UNWIND_END), n;
        if (rc < 0 || unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 ||
            unw_get_reg(&cur, UNW_REG_SP, &nsp) < 0)
            return (*why = CP_UNWIND_NO_INFO), n;
        if (ip == 0)
            return (*why = CP_UNWIND_END), n;
        /* Stacks grow down: a caller's frame is above its callee's. Anything
         * else is a loop or a switch to another stack: stop either way. */
        if (nsp <= sp && !unw_is_signal_frame(&cur))
            return (*why = CP_UNWIND_ERROR), n;
        sp = nsp;
        if (!known_exec(w, (uintptr_t)ip))
            return (*why = CP_UNWIND_UNKNOWN_PC), n;
        if (n == max)
            return (*why = CP_UNWIND_TRUNCATED), n;
        pcs[n++] = (uintptr_t)ip;
        if ((uintptr_t)ip >= w->stop_lo && (uintptr_t)ip < w->stop_hi)
            return (*why = CP_UNWIND_END), n;
    }
}

/* The frames of w into pcs; the reason it stopped into *why. */
static int step_all(walk *w, uintptr_t *pcs, int max, cp_unwind_status *why)
{
    uintptr_t ip = (uintptr_t)w->regs[UNW_X86_64_RIP], sp = (uintptr_t)w->regs[UNW_X86_64_RSP];
    int n = 0;

    for (bool leaf = true;; leaf = false) {
        const cp__segment *seg = cp__modules_find(w->snap, ip);
        if (seg == NULL || !seg->exec)
            return (*why = CP_UNWIND_UNKNOWN_PC), n;
        if (!leaf && ip - 1 < seg->lo) /* a call that ends its segment */
            seg = cp__modules_find(w->snap, ip - 1);
        if (n == max)
            return (*why = CP_UNWIND_TRUNCATED), n;
        pcs[n++] = ip;
        if (ip >= w->stop_lo && ip < w->stop_hi)
            return (*why = CP_UNWIND_END), n;
        switch (atomic_load_explicit(&g_slow_only, memory_order_relaxed) ? FS_SLOW : fast_step(w, seg, leaf ? ip : ip - 1, leaf)) {
        case FS_SLOW: return slow_from(w, pcs, n, max, leaf, why);
        case FS_END: return (*why = CP_UNWIND_END), n;
        case FS_NO_INFO: return (*why = CP_UNWIND_NO_INFO), n;
        case FS_ERROR: return (*why = CP_UNWIND_ERROR), n;
        default: break;
        }
        atomic_fetch_add_explicit(&g_fast_steps, 1, memory_order_relaxed);
        ip = (uintptr_t)w->regs[UNW_X86_64_RIP];
        uintptr_t nsp = (uintptr_t)w->regs[UNW_X86_64_RSP];
        if (ip == 0)
            return (*why = CP_UNWIND_END), n;
        if (nsp <= sp) /* stacks grow down; anything else is a loop: stop */
            return (*why = CP_UNWIND_ERROR), n;
        sp = nsp;
    }
}

int cp_native_unwind(const void *uc, uintptr_t *pcs, int max, cp_unwind_status *status)
{
    return cp_native_unwind_until(uc, pcs, max, status, 0, 0);
}

int cp_native_unwind_until(const void *uc, uintptr_t *pcs, int max, cp_unwind_status *status,
                           uintptr_t stop_lo, uintptr_t stop_hi)
{
    int saved_errno = errno, token = 0, n = 0;
    cp_unwind_status why = CP_UNWIND_ERROR;
    walk w;

    if (atomic_load_explicit(&g_ready, memory_order_acquire) && uc != NULL && max > 0) {
        memset(&w, 0, sizeof w);
        w.stop_lo = stop_lo;
        w.stop_hi = stop_hi;
        if ((w.snap = cp__modules_pin(&token)) != NULL) {
            load_regs(&w, uc);
            n = step_all(&w, pcs, max, &why);
            cp__modules_unpin(token);
        }
    }
    atomic_fetch_add_explicit(&g_unwinds, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_frames, (unsigned long long)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_stops[why], 1, memory_order_relaxed);
    if (status != NULL)
        *status = why;
    errno = saved_errno;
    return n;
}

bool cp_native_pc_known(uintptr_t pc)
{
    int token = 0;
    walk w;

    if ((w.snap = cp__modules_pin(&token)) == NULL)
        return false;
    bool known = known_exec(&w, pc);
    cp__modules_unpin(token);
    return known;
}

bool cp_native_segment_extent(uintptr_t pc, uintptr_t *lo, uintptr_t *hi)
{
    int token = 0;
    const cp__modsnap *s = cp__modules_pin(&token);
    if (s == NULL)
        return false;
    const cp__segment *seg = cp__modules_find(s, pc);
    bool ok = seg != NULL && seg->exec;
    if (ok) {
        *lo = seg->lo;
        *hi = seg->hi;
    }
    cp__modules_unpin(token);
    return ok;
}

/* Run one walk on the calling thread, so that libunwind's one-time setup
 * (tdep_init: locks, the mempools) happens here and not in a handler. */
static void warm_up(void)
{
    ucontext_t uc;
    uintptr_t pcs[8];

    if (getcontext(&uc) == 0)
        cp_native_unwind(&uc, pcs, 8, NULL);
}

static void pid_after_fork(void) { g_pid = getpid(); }

/* Run with every descriptor under 512 taken (cp_os_call_fds_high). */
static void create_space(void *unused)
{
    (void)unused;
    g_as = unw_create_addr_space(&g_accessors, 0);
    if (!g_as)
        return;
    /* libunwind's set-up (tdep_init) opens a pipe and keeps it for good, for
     * its local accessors' memory validation, which never runs here (ours
     * validate). A descriptor the host never opened shows in its fd lists
     * (a child's before exec, CPython's test_subprocess): the pipe lands
     * on the lowest free pair from 512, and is closed. */
    int first = fcntl(0, F_DUPFD_CLOEXEC, 512);
    if (first >= 0)
        close(first);
    unw_set_caching_policy(g_as, UNW_CACHE_NONE);
    struct stat a, b;
    if (first >= 0 && fstat(first, &a) == 0 && fstat(first + 1, &b) == 0 && S_ISFIFO(a.st_mode) &&
        S_ISFIFO(b.st_mode) && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
        close(first);
        close(first + 1);
    }
}

int cp_native_init(void)
{
    static atomic_bool started;
    int rc;

    if (atomic_exchange(&started, true))
        return atomic_load(&g_ready) ? CP_OK : CP_ESTATE;
    g_page = sysconf(_SC_PAGESIZE);
    g_pid = getpid();
    pthread_atfork(NULL, NULL, pid_after_fork);
    cp__native_symbols_atfork();
    if ((rc = cp__modules_init()) != CP_OK)
        return rc;
    cp_os_call_fds_high(create_space, NULL);
    if (g_as == NULL ||
        (g_pi = calloc(PI_SLOTS, sizeof *g_pi)) == NULL ||
        (g_rows = calloc(ROW_SLOTS, sizeof *g_rows)) == NULL)
        return CP_ENOMEM;
    atomic_store_explicit(&g_ready, true, memory_order_release);
    warm_up();
    for (int i = 0; i < CP_UNWIND__COUNT; i++) /* the warm-up is not a sample */
        atomic_store(&g_stops[i], 0);
    atomic_store(&g_unwinds, 0);
    atomic_store(&g_frames, 0);
    return CP_OK;
}

void cp_native_refresh(void)
{
    if (atomic_load(&g_ready))
        cp__modules_refresh(false);
}

void cp__native_slow_only(bool on) { atomic_store(&g_slow_only, on); }

uint64_t cp__native_fast_steps(void) { return atomic_load(&g_fast_steps); }

void cp__native_unwind_stats(cp_native_stats *out)
{
    out->unwinds = atomic_load(&g_unwinds);
    out->frames = atomic_load(&g_frames);
    for (int i = 0; i < CP_UNWIND__COUNT; i++)
        out->stops[i] = atomic_load(&g_stops[i]);
    out->modules = cp__modules_seen();
    out->proc_info_hits = atomic_load(&g_pi_hits);
    out->proc_info_misses = atomic_load(&g_pi_misses);
}
