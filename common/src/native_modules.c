/*
 * native_modules.c — snapshots of the loaded objects for the unwinder.
 *
 * g_lock (a resolver-side mutex) serialises refreshes and the id registry;
 * signal handlers never take it: they pin a snapshot with an atomic counter.
 */
#include "native_modules.h"

#include <elf.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "contprof.h"

/* DWARF pointer encodings (LSB, .eh_frame_hdr). */
enum {
    DW_EH_PE_absptr = 0x00, DW_EH_PE_udata4 = 0x03, DW_EH_PE_udata8 = 0x04,
    DW_EH_PE_sdata4 = 0x0b, DW_EH_PE_sdata8 = 0x0c, DW_EH_PE_pcrel = 0x10,
    DW_EH_PE_datarel = 0x30, DW_EH_PE_omit = 0xff,
};

enum { MAX_SEGS = 8192, MAX_MODS = 2048, MAX_IDS = 4096, PIN_WAIT_MS = 20 };

typedef struct entry {
    char *path;
    uintptr_t bias;
} entry;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static cp__modsnap g_snap[2];             /* never freed: handlers read them */
static atomic_int g_cur = -1;             /* published snapshot, -1 = none    */
static atomic_int g_pins[2];
static unsigned long long g_adds, g_subs; /* dl_iterate_phdr counters seen    */
static uint64_t g_gen;                    /* snapshots published, g_lock     */
static entry g_ids[MAX_IDS];              /* under g_lock for writers         */
static atomic_size_t g_nids;

/* ---- reading .eh_frame_hdr (local, trusted memory) -------------------- */

static bool read_encoded(const uint8_t **p, uint8_t enc, uintptr_t datarel, uintptr_t *out)
{
    const uint8_t *q = *p;
    int64_t v;

    if (enc == DW_EH_PE_omit)
        return false;
    switch (enc & 0x0f) {
    case DW_EH_PE_absptr: case DW_EH_PE_udata8: case DW_EH_PE_sdata8:
        memcpy(&v, q, 8); *p = q + 8; break;
    case DW_EH_PE_udata4: { uint32_t u; memcpy(&u, q, 4); v = u; *p = q + 4; break; }
    case DW_EH_PE_sdata4: { int32_t s; memcpy(&s, q, 4); v = s; *p = q + 4; break; }
    default:
        return false;
    }
    switch (enc & 0x70) {
    case 0: *out = (uintptr_t)v; return true;
    case DW_EH_PE_pcrel: *out = (uintptr_t)q + (uintptr_t)v; return true;
    case DW_EH_PE_datarel: *out = datarel + (uintptr_t)v; return true;
    default: return false;
    }
}

/* The binary-search table of the .eh_frame_hdr at hdr, if it has one. */
static void parse_eh_hdr(cp__module *m)
{
    const uint8_t *h = (const uint8_t *)m->eh_hdr, *p = h + 4;
    uintptr_t eh_frame, count;

    if (h == NULL || h[0] != 1)
        return;
    if (!read_encoded(&p, h[1], (uintptr_t)h, &eh_frame) ||
        !read_encoded(&p, h[2], (uintptr_t)h, &count) ||
        h[3] != (DW_EH_PE_datarel | DW_EH_PE_sdata4))
        return;
    m->table = (uintptr_t)p;
    /* One entry = two int32 offsets = one 64-bit word. */
    m->table_words = (size_t)count * 8 / sizeof(uintptr_t);
}

static uintptr_t find_pltgot(const ElfW(Phdr) *dyn, uintptr_t bias)
{
    if (dyn == NULL)
        return 0;
    for (const ElfW(Dyn) *d = (const ElfW(Dyn) *)(dyn->p_vaddr + bias); d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_PLTGOT)
            return d->d_un.d_ptr;
    return 0;
}

/* ---- the id registry -------------------------------------------------- */

static const char *object_path(const char *name, char *buf, size_t n)
{
    if (name == NULL || name[0] == '\0') { /* the executable */
        ssize_t k = readlink("/proc/self/exe", buf, n - 1);
        buf[k > 0 ? k : 0] = '\0';
        return k > 0 ? buf : "[exe]";
    }
    if (strncmp(name, "linux-vdso", 10) == 0 || strncmp(name, "linux-gate", 10) == 0)
        return "[vdso]";
    /* dlopen("./libfoo.so") keeps the name it was given: relative to the
     * directory the program was in then (still, nearly always, now). An
     * absolute path is what the symbol reader opens and what a profile
     * should show. */
    if (name[0] != '/' && n >= PATH_MAX && realpath(name, buf) != NULL)
        return buf;
    return name;
}

/* Stable id of (path, bias); g_lock held. UINT32_MAX when full. */
static uint32_t id_of(const char *path, uintptr_t bias)
{
    size_t n = atomic_load(&g_nids);

    for (size_t i = n; i-- > 0;)
        if (g_ids[i].bias == bias && strcmp(g_ids[i].path, path) == 0)
            return (uint32_t)i;
    if (n == MAX_IDS || (g_ids[n].path = strdup(path)) == NULL)
        return UINT32_MAX;
    g_ids[n].bias = bias;
    atomic_store(&g_nids, n + 1);
    return (uint32_t)n;
}

bool cp__module_entry(uint32_t id, const char **path, uintptr_t *bias)
{
    if (id >= atomic_load(&g_nids))
        return false;
    *path = g_ids[id].path;
    *bias = g_ids[id].bias;
    return true;
}

size_t cp__modules_seen(void) { return atomic_load(&g_nids); }

/* ---- building a snapshot ---------------------------------------------- */

typedef struct build {
    cp__modsnap *s;
    unsigned long long adds, subs;
} build;

static void add_module(cp__modsnap *s, struct dl_phdr_info *info)
{
    const ElfW(Phdr) *eh = NULL, *dyn = NULL;
    char buf[PATH_MAX];
    size_t first = s->nsegs;
    cp__module *m = &s->mods[s->nmods];

    memset(m, 0, sizeof *m);
    m->bias = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_EH_FRAME)
            eh = ph;
        else if (ph->p_type == PT_DYNAMIC)
            dyn = ph;
        else if (ph->p_type == PT_LOAD && ph->p_memsz > 0 && s->nsegs < MAX_SEGS)
            s->segs[s->nsegs++] = (cp__segment){ph->p_vaddr + m->bias,
                ph->p_vaddr + m->bias + ph->p_memsz, (uint32_t)s->nmods, (ph->p_flags & PF_X) != 0};
    }
    if (s->nsegs == first)
        return;
    m->id = id_of(object_path(info->dlpi_name, buf, sizeof buf), m->bias);
    if (eh != NULL) {
        m->eh_hdr = eh->p_vaddr + m->bias;
        parse_eh_hdr(m);
        m->gp = find_pltgot(dyn, m->bias);
    }
    s->nmods++;
}

static int on_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    build *b = arg;

    if (size < offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        return 1;
    b->adds = info->dlpi_adds;
    b->subs = info->dlpi_subs;
    if (b->s == NULL)
        return 1; /* a probe: the counters are the same in every call */
    if (b->s->nmods < MAX_MODS)
        add_module(b->s, info);
    return 0;
}

static int by_lo(const void *a, const void *b)
{
    const cp__segment *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Wait (bounded) until no handler pins buffer i. */
static bool unpinned(int i)
{
    struct timespec pause = {0, 100000};
    for (int k = 0; k < PIN_WAIT_MS * 10; k++) {
        if (atomic_load(&g_pins[i]) == 0)
            return true;
        nanosleep(&pause, NULL);
    }
    return false;
}

void cp__modules_refresh(bool force)
{
    build probe = {NULL, 0, 0};

    pthread_mutex_lock(&g_lock);
    dl_iterate_phdr(on_object, &probe); /* just the counters: cheap */
    int cur = atomic_load(&g_cur);
    if (cur >= 0 && !force && probe.adds == g_adds && probe.subs == g_subs) {
        pthread_mutex_unlock(&g_lock);
        return;
    }
    int next = cur < 0 ? 0 : 1 - cur;
    if (unpinned(next)) {
        build b = {&g_snap[next], 0, 0};
        g_snap[next].nsegs = g_snap[next].nmods = 0;
        dl_iterate_phdr(on_object, &b);
        qsort(g_snap[next].segs, g_snap[next].nsegs, sizeof *g_snap[next].segs, by_lo);
        g_adds = b.adds;
        g_subs = b.subs;
        g_snap[next].gen = ++g_gen;
        atomic_store(&g_cur, next);
    }
    pthread_mutex_unlock(&g_lock);
}

void cp__modules_fork_prepare(void) { pthread_mutex_lock(&g_lock); }
void cp__modules_fork_parent(void) { pthread_mutex_unlock(&g_lock); }
void cp__modules_fork_child(void) { g_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER; }

int cp__modules_init(void)
{
    pthread_mutex_lock(&g_lock);
    bool done = g_snap[0].segs != NULL;
    for (int i = 0; i < 2 && !done; i++) {
        g_snap[i].segs = calloc(MAX_SEGS, sizeof *g_snap[i].segs);
        g_snap[i].mods = calloc(MAX_MODS, sizeof *g_snap[i].mods);
        if (g_snap[i].segs == NULL || g_snap[i].mods == NULL) {
            pthread_mutex_unlock(&g_lock);
            return CP_ENOMEM; /* the half-made buffers stay: retried next time */
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (!done)
        cp__modules_refresh(true);
    return CP_OK;
}

/* ---- function extents from the unwind tables ---------------------------- */

static uintptr_t uleb(const uint8_t **p)
{
    uintptr_t v = 0;
    int shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        if (shift < 64)
            v |= (uintptr_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    return v;
}

/* Bytes a value of pointer encoding enc takes (0: not handled). */
static size_t enc_size(uint8_t enc)
{
    switch (enc & 0x0f) {
    case DW_EH_PE_absptr: case DW_EH_PE_udata8: case DW_EH_PE_sdata8: return 8;
    case DW_EH_PE_udata4: case DW_EH_PE_sdata4: return 4;
    default: return 0;
    }
}

/* The FDE pointer encoding a CIE declares ('R' augmentation). */
static bool cie_fde_encoding(const uint8_t *cie, uint8_t *enc)
{
    uint32_t len;
    memcpy(&len, cie, 4);
    if (len == 0 || len == 0xffffffffu)
        return false;
    const uint8_t *p = cie + 8, *end = cie + 4 + len;
    uint8_t version = *p++;
    const char *aug = (const char *)p;
    p += strnlen(aug, (size_t)(end - p)) + 1;
    *enc = DW_EH_PE_absptr;
    if (aug[0] != 'z')
        return aug[0] == '\0';
    uleb(&p);                              /* code alignment            */
    uleb(&p);                              /* data alignment (sleb)     */
    if (version == 1)
        p++;
    else
        uleb(&p);                          /* return address register   */
    uleb(&p);                              /* augmentation data length  */
    for (const char *a = aug + 1; *a && p < end; a++) {
        if (*a == 'R') {
            *enc = *p;
            return true;
        } else if (*a == 'P') {
            size_t n = enc_size(*p);
            if (n == 0)
                return false;
            p += 1 + n;
        } else if (*a == 'L') {
            p++;
        } else if (*a != 'S') {
            return false;
        }
    }
    return true;
}

static bool fde_covers(const uint8_t *fde, uintptr_t start, uintptr_t pc, uintptr_t *end)
{
    uint32_t len, cie_off;
    uint8_t enc;
    memcpy(&len, fde, 4);
    memcpy(&cie_off, fde + 4, 4);
    if (len == 0 || len == 0xffffffffu || cie_off == 0 ||
        !cie_fde_encoding(fde + 4 - cie_off, &enc) || enc_size(enc) == 0)
        return false;
    const uint8_t *p = fde + 8 + enc_size(enc); /* past pc_begin */
    uintptr_t range = 0;
    if (enc_size(enc) == 4) {
        uint32_t r;
        memcpy(&r, p, 4);
        range = r;
    } else {
        memcpy(&range, p, 8);
    }
    *end = start + range;
    return pc >= start && pc - start < range;
}

bool cp__module_fde_start(uintptr_t pc, uintptr_t *start)
{
    uintptr_t end;
    return cp__module_fde_extent(pc, start, &end);
}

bool cp__module_fde_extent(uintptr_t pc, uintptr_t *start, uintptr_t *end)
{
    int token;
    const cp__modsnap *s = cp__modules_pin(&token);
    bool ok = false;
    const cp__segment *seg = s != NULL ? cp__modules_find(s, pc) : NULL;
    const cp__module *m = seg != NULL && seg->exec ? &s->mods[seg->module] : NULL;
    if (m != NULL && m->table != 0 && m->table_words > 0) {
        const int32_t *t = (const int32_t *)m->table; /* pairs: start, FDE (from eh_hdr) */
        size_t lo = 0, hi = m->table_words;
        intptr_t off = (intptr_t)(pc - m->eh_hdr);
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (t[2 * mid] <= off)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0) {
            uintptr_t fstart = m->eh_hdr + (uintptr_t)(intptr_t)t[2 * (lo - 1)];
            const uint8_t *fde = (const uint8_t *)(m->eh_hdr + (uintptr_t)(intptr_t)t[2 * (lo - 1) + 1]);
            ok = fde_covers(fde, fstart, pc, end);
            *start = fstart;
        }
    }
    if (s != NULL)
        cp__modules_unpin(token);
    return ok;
}

/* ---- readers (signal-safe) -------------------------------------------- */

const cp__modsnap *cp__modules_pin(int *token)
{
    for (;;) {
        int i = atomic_load(&g_cur);
        if (i < 0)
            return NULL;
        atomic_fetch_add(&g_pins[i], 1);
        if (atomic_load(&g_cur) == i) {
            *token = i;
            return &g_snap[i];
        }
        atomic_fetch_sub(&g_pins[i], 1); /* republished meanwhile: retry */
    }
}

void cp__modules_unpin(int token) { atomic_fetch_sub(&g_pins[token], 1); }

const cp__segment *cp__modules_find(const cp__modsnap *s, uintptr_t addr)
{
    size_t lo = 0, hi = s->nsegs;

    while (lo < hi) { /* first segment with lo > addr */
        size_t mid = (lo + hi) / 2;
        if (s->segs[mid].lo <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || addr >= s->segs[lo - 1].hi)
        return NULL;
    return &s->segs[lo - 1];
}
