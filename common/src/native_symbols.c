/*
 * native_symbols.c — naming native frames, off the hot path.
 *
 * pc -> module (the snapshot of native_modules.c) -> function, from the
 * object's own ELF symbol tables (.symtab when present, which holds the
 * static functions dladdr cannot see — libjvm's Compile::, GC phases —
 * and .dynsym; for a stripped object, the .symtab of its separate debug
 * file when one is installed), read once per object from a read-only
 * mapping of the file (no descriptor kept). Names are demangled and
 * interned; the strings live until exit, so a cp_frame may point at them.
 * Everything is capped: the pc cache is cleared when full, past the name
 * cap frames are named by object and offset from a bounded set. g_lock
 * guards all of it.
 */
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contprof.h"
#include "contprof_os.h"
#include "native_modules.h"
#include "unwind.h"

enum { PC_CACHE = 1 << 16, MAX_NAMES = 1 << 18, NAME_MAX_BYTES = 1024 };
/* Both tables start this small and double at half full up to their cap:
 * entries land by hash on any page, so a table allocated at its cap soon
 * has every page resident (3.5 MB) however few entries it holds. */
enum { TABLE_START = 1 << 10 };

typedef struct sym {
    uintptr_t addr, size; /* link-time addresses */
    const char *name;     /* into the mapped file */
} sym;

typedef struct elf_syms {
    bool loaded;
    sym *syms;
    size_t n;
    char *base_name;      /* "[libz.so.1]": fallback name, never freed */
} elf_syms;

typedef struct pc_entry {
    uintptr_t pc;         /* 0 = empty */
    const char *name;
    const char *module;
} pc_entry;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static elf_syms *g_objs;  /* indexed by module id, grown with it */
static size_t g_nobjs;
static pc_entry *g_cache; /* open addressing, g_cache_cap slots (<= PC_CACHE) */
static size_t g_cache_cap, g_cached;
static char **g_names;    /* open-addressing intern table, g_names_cap slots (<= MAX_NAMES) */
static size_t g_names_cap, g_nnames;
static uint64_t g_cache_full;

/* ---- reading an object's symbols ---------------------------------------- */

static int by_addr(const void *a, const void *b)
{
    const sym *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Sort by address: a least-significant-digit radix sort, 11 bits a pass,
 * as many passes as the highest address needs (3 for libjvm). libjvm's
 * ~60,000 functions took ~10 ms of comparator calls through qsort, at the
 * first pc named in it, often at a short JVM's final export; this takes
 * well under 1 ms. qsort when the scratch cannot be had. */
static void sort_by_addr(sym *v, size_t n)
{
    enum { BITS = 11, DIGITS = 1 << BITS };
    sym *tmp = n > 1 ? malloc(n * sizeof *tmp) : NULL;
    size_t *count = tmp != NULL ? malloc(DIGITS * sizeof *count) : NULL;
    if (count == NULL) {
        free(tmp);
        if (n > 1)
            qsort(v, n, sizeof *v, by_addr);
        return;
    }
    uintptr_t all = 0;
    for (size_t i = 0; i < n; i++)
        all |= v[i].addr;
    sym *src = v, *dst = tmp;
    for (unsigned shift = 0; shift < 64 && (all >> shift) != 0; shift += BITS) {
        memset(count, 0, DIGITS * sizeof *count);
        for (size_t i = 0; i < n; i++)
            count[(src[i].addr >> shift) & (DIGITS - 1)]++;
        for (size_t d = 0, sum = 0; d < DIGITS; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i].addr >> shift) & (DIGITS - 1)]++] = src[i];
        sym *t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
    free(count);
    free(tmp);
}

static bool in_file(size_t off, size_t len, size_t size) { return off <= size && len <= size - off; }

/* Append the functions of symbol table section sh (strings in its link). */
static void add_table(elf_syms *o, const uint8_t *f, size_t size, const Elf64_Ehdr *eh,
                      const Elf64_Shdr *sh)
{
    const Elf64_Shdr *shdrs = (const Elf64_Shdr *)(f + eh->e_shoff);
    if (sh->sh_link >= eh->e_shnum || sh->sh_entsize != sizeof(Elf64_Sym))
        return;
    const Elf64_Shdr *str = &shdrs[sh->sh_link];
    if (!in_file(sh->sh_offset, sh->sh_size, size) || !in_file(str->sh_offset, str->sh_size, size))
        return;
    const Elf64_Sym *s = (const Elf64_Sym *)(f + sh->sh_offset);
    size_t n = sh->sh_size / sizeof *s;
    sym *grown = realloc(o->syms, (o->n + n) * sizeof *grown);
    if (grown == NULL)
        return;
    o->syms = grown;
    for (size_t i = 0; i < n; i++) {
        int type = ELF64_ST_TYPE(s[i].st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s[i].st_shndx == SHN_UNDEF ||
            s[i].st_value == 0 || s[i].st_name >= str->sh_size)
            continue;
        const char *name = (const char *)f + str->sh_offset + s[i].st_name;
        if (memchr(name, '\0', str->sh_size - s[i].st_name) == NULL)
            continue;
        o->syms[o->n++] = (sym){s[i].st_value, s[i].st_size, name};
    }
}

/* A read-only mapping of ELF64 file path with its section headers in
 * bounds, or NULL. Kept for good once a symbol was taken from it: symbol
 * names point into it. */
static const Elf64_Ehdr *map_elf(const char *path, size_t *size)
{
    struct stat st;
    int fd = cp_os_open_high(path, O_RDONLY);

    if (fd < 0)
        return NULL;
    void *map = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > (off_t)sizeof(Elf64_Ehdr)
                    ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED)
        return NULL;
    const Elf64_Ehdr *eh = map;
    *size = (size_t)st.st_size;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !in_file(eh->e_shoff, (size_t)eh->e_shnum * sizeof(Elf64_Shdr), *size)) {
        munmap(map, *size);
        return NULL;
    }
    return eh;
}

/* Add the file's symbol tables of section type `type` (SHT_SYMTAB,
 * SHT_DYNSYM); true if it had one. */
static bool add_tables(elf_syms *o, const Elf64_Ehdr *eh, size_t size, uint32_t type)
{
    const uint8_t *f = (const uint8_t *)eh;
    const Elf64_Shdr *shdrs = (const Elf64_Shdr *)(f + eh->e_shoff);
    bool found = false;
    for (int i = 0; i < eh->e_shnum; i++)
        if (shdrs[i].sh_type == type) {
            add_table(o, f, size, eh, &shdrs[i]);
            found = true;
        }
    return found;
}

/* Section `name` of e (in bounds), or NULL. */
static const Elf64_Shdr *section(const Elf64_Ehdr *eh, size_t size, const char *name)
{
    const uint8_t *f = (const uint8_t *)eh;
    const Elf64_Shdr *shdrs = (const Elf64_Shdr *)(f + eh->e_shoff);
    if (eh->e_shstrndx >= eh->e_shnum)
        return NULL;
    const Elf64_Shdr *strs = &shdrs[eh->e_shstrndx];
    if (!in_file(strs->sh_offset, strs->sh_size, size))
        return NULL;
    size_t len = strlen(name) + 1;
    for (int i = 0; i < eh->e_shnum; i++) {
        if (shdrs[i].sh_name >= strs->sh_size || strs->sh_size - shdrs[i].sh_name < len ||
            memcmp(f + strs->sh_offset + shdrs[i].sh_name, name, len) != 0)
            continue;
        return shdrs[i].sh_type != SHT_NOBITS && in_file(shdrs[i].sh_offset, shdrs[i].sh_size, size)
                   ? &shdrs[i] : NULL;
    }
    return NULL;
}

/* The object's GNU build id in hex into hex[], or false. */
static bool build_id(const Elf64_Ehdr *eh, size_t size, char *hex, size_t cap)
{
    const Elf64_Shdr *sh = section(eh, size, ".note.gnu.build-id");
    if (sh == NULL || sh->sh_size < 16)
        return false;
    const uint8_t *n = (const uint8_t *)eh + sh->sh_offset;
    uint32_t namesz, descsz, type;
    memcpy(&namesz, n, 4);
    memcpy(&descsz, n + 4, 4);
    memcpy(&type, n + 8, 4);
    size_t desc = 12 + ((namesz + 3u) & ~3u);
    if (type != NT_GNU_BUILD_ID || namesz != 4 || memcmp(n + 12, "GNU", 4) != 0 || descsz < 2 ||
        desc + descsz > sh->sh_size || 2 * (size_t)descsz + 1 > cap)
        return false;
    for (uint32_t i = 0; i < descsz; i++)
        snprintf(hex + 2 * i, 3, "%02x", n[desc + i]);
    return true;
}

/* Stripped objects (Debian's libc, with libc6-dbg installed; anything
 * split by objcopy --only-keep-debug) keep their full symbol table in a
 * separate file, found as gdb finds it: by build id under
 * /usr/lib/debug/.build-id/, else by the .gnu_debuglink name under
 * /usr/lib/debug<dir>/, <dir>/.debug/ or <dir>/. Mapped as found, or NULL. */
static const Elf64_Ehdr *debug_file(const Elf64_Ehdr *eh, size_t size, const char *path, size_t *dsize)
{
    char hex[2 * 64 + 1], cand[PATH_MAX];
    const Elf64_Ehdr *d;

    if (build_id(eh, size, hex, sizeof hex)) {
        snprintf(cand, sizeof cand, "/usr/lib/debug/.build-id/%.2s/%s.debug", hex, hex + 2);
        if ((d = map_elf(cand, dsize)) != NULL)
            return d;
    }
    const Elf64_Shdr *link = section(eh, size, ".gnu_debuglink");
    const char *slash = strrchr(path, '/');
    if (link == NULL || slash == NULL)
        return NULL;
    const char *name = (const char *)eh + link->sh_offset;
    size_t nlen = strnlen(name, link->sh_size);
    if (nlen == 0 || nlen == link->sh_size || strchr(name, '/') != NULL)
        return NULL;
    int dlen = (int)(slash - path);
    for (int i = 0; i < 3; i++) {
        if (i == 0)
            snprintf(cand, sizeof cand, "/usr/lib/debug%.*s/%s", dlen, path, name);
        else
            snprintf(cand, sizeof cand, "%.*s/%s%s", dlen, path, i == 1 ? ".debug/" : "", name);
        if (strcmp(cand, path) != 0 && (d = map_elf(cand, dsize)) != NULL)
            return d;
    }
    return NULL;
}

static void load_symbols(elf_syms *o, const char *path)
{
    size_t size, dsize;
    const Elf64_Ehdr *eh = map_elf(path, &size);

    o->loaded = true;
    if (eh == NULL)
        return;
    add_tables(o, eh, size, SHT_DYNSYM);
    if (!add_tables(o, eh, size, SHT_SYMTAB)) {
        const Elf64_Ehdr *d = debug_file(eh, size, path, &dsize);
        if (d != NULL && !add_tables(o, d, dsize, SHT_SYMTAB))
            munmap((void *)d, dsize);
    }
    sort_by_addr(o->syms, o->n);
}

/* The function covering link-time address a, or NULL. */
static const sym *lookup(const elf_syms *o, uintptr_t a)
{
    size_t lo = 0, hi = o->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (o->syms[mid].addr <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Aliases share an address; any covering one will do, the first sized
     * one is tried first. */
    for (size_t i = lo; i-- > 0 && lo - i <= 8;) {
        const sym *s = &o->syms[i];
        if (s->size > 0 ? a < s->addr + s->size : (i + 1 == o->n || a < o->syms[i + 1].addr))
            return s;
        if (s->addr < o->syms[lo - 1].addr)
            break;
    }
    return NULL;
}

/* ---- interning -------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

/* Double the intern table (or make it); false at the cap or out of memory. */
static bool names_grow(void)
{
    size_t cap = g_names_cap ? 2 * g_names_cap : TABLE_START;
    char **t = cap <= MAX_NAMES ? calloc(cap, sizeof *t) : NULL;
    if (t == NULL)
        return false;
    for (size_t k = 0; k < g_names_cap; k++) {
        if (g_names[k] == NULL)
            continue;
        size_t i = hash_str(g_names[k]) & (cap - 1);
        while (t[i] != NULL)
            i = (i + 1) & (cap - 1);
        t[i] = g_names[k];
    }
    free(g_names);
    g_names = t;
    g_names_cap = cap;
    return true;
}

/* A never-freed copy of s, or NULL past the cap. */
static const char *intern(const char *s)
{
    if (g_names == NULL && !names_grow())
        return NULL;
    for (size_t i = hash_str(s) & (g_names_cap - 1);; i = (i + 1) & (g_names_cap - 1)) {
        if (g_names[i] == NULL) {
            if (g_nnames >= g_names_cap / 2)
                return names_grow() ? intern(s) : NULL;
            if ((g_names[i] = strdup(s)) == NULL)
                return NULL;
            g_nnames++;
            return g_names[i];
        }
        if (strcmp(g_names[i], s) == 0)
            return g_names[i];
    }
}

/* ---- pc -> frame ---------------------------------------------------------- */

static elf_syms *object(uint32_t id, const char *path)
{
    if (id >= g_nobjs) {
        size_t n = id + 64;
        elf_syms *grown = realloc(g_objs, n * sizeof *grown);
        if (grown == NULL)
            return NULL;
        memset(grown + g_nobjs, 0, (n - g_nobjs) * sizeof *grown);
        g_objs = grown;
        g_nobjs = n;
    }
    elf_syms *o = &g_objs[id];
    if (!o->loaded) {
        char buf[NAME_MAX_BYTES];
        const char *slash = strrchr(path, '/');
        snprintf(buf, sizeof buf, "[%s]", slash ? slash + 1 : path);
        o->base_name = strdup(buf);
        if (path[0] == '/')
            load_symbols(o, path);
    }
    return o;
}

static const char *function_name(elf_syms *o, uintptr_t link_addr, uintptr_t bias, const char *path)
{
    char buf[NAME_MAX_BYTES];
    const sym *s = lookup(o, link_addr);
    const char *name = NULL;
    uintptr_t start;

    if (s != NULL) {
        /* A .symtab names versioned definitions "pthread_cond_signal@@GLIBC_2.3.2";
         * the version is not part of the function's name. */
        const char *at = strchr(s->name, '@');
        char plain[NAME_MAX_BYTES];
        const char *sn = s->name;
        if (at != NULL && at > s->name && (size_t)(at - s->name) < sizeof plain) {
            memcpy(plain, s->name, (size_t)(at - s->name));
            plain[at - s->name] = '\0';
            sn = plain;
        }
        name = intern(cp__demangle(sn, buf, sizeof buf) ? buf : sn);
    }
    /* No symbol (a stripped static function): the function its unwind
     * entry covers, so that all its pcs are one frame. */
    if (name == NULL && cp__module_fde_start(link_addr + bias, &start))
        link_addr = start - bias;
    if (name == NULL) {
        const char *slash = strrchr(path, '/');
        /* "libz.so.1+5e56": the hex offset without "0x", so that no frame
         * name looks like a per-run address (tests/jvm "names"). */
        snprintf(buf, sizeof buf, "%s+%lx", slash ? slash + 1 : path, (unsigned long)link_addr);
        name = intern(buf);
    }
    return name != NULL ? name : (o->base_name ? o->base_name : "[native]");
}

/* Module id and path of pc; false when pc is in no loaded object. */
static bool module_of(uintptr_t pc, uint32_t *id, const char **path, uintptr_t *bias)
{
    int token;
    const cp__modsnap *s = cp__modules_pin(&token);
    bool ok = false;

    if (s != NULL) {
        const cp__segment *seg = cp__modules_find(s, pc);
        if (seg != NULL) {
            *id = s->mods[seg->module].id;
            ok = cp__module_entry(*id, path, bias);
        }
        cp__modules_unpin(token);
    }
    return ok;
}

static void resolve(uintptr_t pc, pc_entry *e)
{
    uint32_t id = 0;
    const char *path = NULL;
    uintptr_t bias = 0;

    if (!module_of(pc, &id, &path, &bias)) {
        cp__modules_refresh(false); /* loaded since the last refresh? */
        if (!module_of(pc, &id, &path, &bias)) {
            e->name = "[unknown native]";
            e->module = NULL;
            return;
        }
    }
    elf_syms *o = object(id, path);
    e->module = path;
    e->name = o != NULL ? function_name(o, pc - bias, bias, path) : "[native]";
}

static pc_entry *cache_slot(uintptr_t key)
{
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 40) & (g_cache_cap - 1);
    while (g_cache[i].pc != 0 && g_cache[i].pc != key)
        i = (i + 1) & (g_cache_cap - 1);
    return &g_cache[i];
}

/* Double the pc cache (or make it); false at the cap or out of memory. */
static bool cache_grow(void)
{
    size_t old_cap = g_cache_cap, cap = old_cap ? 2 * old_cap : TABLE_START;
    pc_entry *t = cap <= PC_CACHE ? calloc(cap, sizeof *t) : NULL, *old = g_cache;
    if (t == NULL)
        return false;
    g_cache = t;
    g_cache_cap = cap;
    for (size_t k = 0; k < old_cap; k++)
        if (old[k].pc != 0)
            *cache_slot(old[k].pc) = old[k];
    free(old);
    return true;
}

void cp_native_symbolize(uintptr_t pc, bool return_address, cp_frame *out)
{
    uintptr_t key = return_address && pc > 0 ? pc - 1 : pc;
    pc_entry tmp = {0};

    pthread_mutex_lock(&g_lock);
    if (g_cache == NULL)
        cache_grow();
    pc_entry *e = &tmp;
    if (g_cache != NULL) {
        e = cache_slot(key);
        if (e->pc == 0 && g_cached >= g_cache_cap / 2) {
            if (cache_grow()) {
                e = cache_slot(key);
            } else { /* at the cap: start over */
                memset(g_cache, 0, g_cache_cap * sizeof *g_cache);
                g_cached = 0;
                g_cache_full++;
                e = &tmp;
            }
        }
    }
    if (e->pc != key) {
        resolve(key, e);
        if (e != &tmp) {
            e->pc = key;
            g_cached++;
        }
    }
    *out = (cp_frame){e->name, NULL, NULL, 0, CP_FRAME_NATIVE, e->module};
    pthread_mutex_unlock(&g_lock);
}

bool cp_native_function_extent(uintptr_t pc, uintptr_t *lo, uintptr_t *hi)
{
    return cp__module_fde_extent(pc, lo, hi);
}

/* fork(): never while another thread holds g_lock (the child would find
 * it locked forever); the modules lock is taken inside it, so in order. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&g_lock);
    cp__modules_fork_prepare();
}

static void fork_parent(void)
{
    cp__modules_fork_parent();
    pthread_mutex_unlock(&g_lock);
}

static void fork_child(void)
{
    cp__modules_fork_child();
    g_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
}

void cp__native_symbols_atfork(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void cp_native_stats_get(cp_native_stats *out)
{
    memset(out, 0, sizeof *out);
    cp__native_unwind_stats(out);
    pthread_mutex_lock(&g_lock);
    out->symbols_cached = g_cached;
    out->symbol_cache_full = g_cache_full;
    pthread_mutex_unlock(&g_lock);
}
