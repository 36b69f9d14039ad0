/*
 * vm_structs.c — reading HotSpot's exported struct tables (see vm_structs.h).
 */
#include "vm_structs.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_anchor = -1;     /* JavaThread::_anchor                  */
static int g_anchor_sp = -1;  /* JavaFrameAnchor::_last_Java_sp       */
static int g_anchor_pc = -1;  /* JavaFrameAnchor::_last_Java_pc       */
static int g_anchor_fp = -1;  /* JavaFrameAnchor::_last_Java_fp       */
static int g_state = -1;      /* JavaThread::_thread_state            */
static int g_stack_base = -1; /* JavaThread::_stack_base (highest address) */

/* The code cache, to find the code blob holding a pc (as HotSpot's
 * CodeHeap::find_blob does: the segment map, walked back to its block). */
static uintptr_t g_heaps_addr;   /* &CodeCache::_heaps (GrowableArray<CodeHeap*>*) */
static int g_ga_len = -1;        /* GrowableArrayBase::_len              */
static int g_ga_data = -1;       /* GrowableArray<int>::_data            */
static int g_heap_memory = -1;   /* CodeHeap::_memory (VirtualSpace)     */
static int g_heap_segmap = -1;   /* CodeHeap::_segmap (VirtualSpace)     */
static int g_heap_log2 = -1;     /* CodeHeap::_log2_segment_size         */
static int g_vs_low = -1;        /* VirtualSpace::_low                   */
static int g_vs_high = -1;       /* VirtualSpace::_high                  */
static int g_hb_used = -1;       /* HeapBlock::Header::_used             */
static int g_hb_size;            /* sizeof(HeapBlock)                    */
static int g_cb_size = -1;       /* CodeBlob::_size                      */
static int g_cb_frame_size = -1; /* CodeBlob::_frame_size (words)        */
static int g_cb_complete = -1;   /* CodeBlob::_frame_complete_offset     */
static bool g_cb_complete_16;    /*   an int16_t (JDK 23+), else an int  */
static int g_cb_code_begin = -1; /* CodeBlob::_code_begin (a pointer)    */
static int g_cb_code_offset = -1;/* CodeBlob::_code_offset (JDK 23+)     */
static int g_cb_name = -1;       /* CodeBlob::_name                      */
static int g_cb_kind = -1;       /* CodeBlob::_kind (JDK 23+)            */
enum { MAX_HEAPS = 4 };
static const char *g_heap[MAX_HEAPS]; /* the CodeHeap objects (fixed after start) */
static int g_nheaps, g_segment_shift;
static uintptr_t g_cb_extent;    /* bytes of a CodeBlob header read       */
static bool g_blobs_ready;

/* The flag table (jvmFlag.hpp): JVMFlag::flags[JVMFlag::numFlags], the
 * last entry empty. */
static int g_fl_type = -1, g_fl_name = -1, g_fl_addr = -1, g_fl_flags = -1;
static uintptr_t g_fl_table_addr, g_fl_count_addr; /* &JVMFlag::flags, &numFlags */
static size_t g_fl_size;                           /* sizeof(JVMFlag)           */
static int g_fl_origin_mask = 0xF, g_fl_default;   /* JVMFlag::VALUE_ORIGIN_MASK, JVMFlagOrigin::DEFAULT */
/* _type and _flags are a short in some releases, an int in others: their
 * declared types, and the widths the type table gives them. */
static const char *g_fl_type_ts, *g_fl_flags_ts;
static size_t g_fl_type_w, g_fl_flags_w;

/* HotSpot's JavaThreadState value for "running VM code" (stable since JDK 6). */
enum { THREAD_IN_VM = 6, FP_WINDOW = 8192 };
static intptr_t g_env_offset; /* JNIEnv* - JavaThread*                */
static bool g_ready;

static uintptr_t read_sym(void *h, const char *name)
{
    const uintptr_t *p = dlsym(h, name);
    return p != NULL ? *p : 0;
}

/* A code-cache field: type::field of the struct table. */
typedef struct field_row {
    const char *type, *field;
    int *off;
} field_row;

static const field_row k_code_fields[] = {
    {"GrowableArrayBase", "_len", &g_ga_len},
    {"GrowableArray<int>", "_data", &g_ga_data},
    {"CodeHeap", "_memory", &g_heap_memory},
    {"CodeHeap", "_segmap", &g_heap_segmap},
    {"CodeHeap", "_log2_segment_size", &g_heap_log2},
    {"VirtualSpace", "_low", &g_vs_low},
    {"VirtualSpace", "_high", &g_vs_high},
    {"HeapBlock::Header", "_used", &g_hb_used},
    {"CodeBlob", "_size", &g_cb_size},
    {"CodeBlob", "_frame_size", &g_cb_frame_size},
    {"CodeBlob", "_frame_complete_offset", &g_cb_complete},
    {"CodeBlob", "_code_begin", &g_cb_code_begin},
    {"CodeBlob", "_code_offset", &g_cb_code_offset},
    {"CodeBlob", "_name", &g_cb_name},
    {"CodeBlob", "_kind", &g_cb_kind},
};

/* Call fn(entry, name) for each entry of an exported table whose entries
 * are stride bytes apart, each naming itself at name_off, until the NULL
 * name that ends it. */
static void each_entry(void *h, const char *table, const char *stride_sym, const char *name_sym,
                       void (*fn)(uintptr_t e, const char *name))
{
    uintptr_t e = read_sym(h, table);
    uintptr_t stride = read_sym(h, stride_sym);
    uintptr_t name_off = read_sym(h, name_sym);

    if (e == 0 || stride == 0)
        return;
    for (;; e += stride) {
        const char *name = *(const char **)(e + name_off);
        if (name == NULL)
            break;
        fn(e, name);
    }
}

static uintptr_t g_size_off, g_value_off; /* of a type entry's size, a constant's value */

static void on_type(uintptr_t e, const char *name)
{
    uint64_t size = *(const uint64_t *)(e + g_size_off);
    if (strcmp(name, "HeapBlock") == 0)
        g_hb_size = (int)size;
    else if (strcmp(name, "JVMFlag") == 0)
        g_fl_size = (size_t)size;
    if (g_fl_type_ts != NULL && strcmp(name, g_fl_type_ts) == 0)
        g_fl_type_w = (size_t)size;
    if (g_fl_flags_ts != NULL && strcmp(name, g_fl_flags_ts) == 0)
        g_fl_flags_w = (size_t)size;
}

static void on_int_constant(uintptr_t e, const char *name)
{
    int32_t v = *(const int32_t *)(e + g_value_off);
    if (strcmp(name, "JVMFlag::VALUE_ORIGIN_MASK") == 0)
        g_fl_origin_mask = v;
    else if (strcmp(name, "JVMFlagOrigin::DEFAULT") == 0)
        g_fl_default = v;
}

static void find_types(void *h)
{
    g_size_off = read_sym(h, "gHotSpotVMTypeEntrySizeOffset");
    each_entry(h, "gHotSpotVMTypes", "gHotSpotVMTypeEntryArrayStride", "gHotSpotVMTypeEntryTypeNameOffset",
               on_type);
}

static void find_int_constants(void *h)
{
    g_value_off = read_sym(h, "gHotSpotVMIntConstantEntryValueOffset");
    each_entry(h, "gHotSpotVMIntConstants", "gHotSpotVMIntConstantEntryArrayStride",
               "gHotSpotVMIntConstantEntryNameOffset", on_int_constant);
}

static void find_offsets(void *h)
{
    uintptr_t e = read_sym(h, "gHotSpotVMStructs");
    uintptr_t stride = read_sym(h, "gHotSpotVMStructEntryArrayStride");
    uintptr_t type_off = read_sym(h, "gHotSpotVMStructEntryTypeNameOffset");
    uintptr_t field_off = read_sym(h, "gHotSpotVMStructEntryFieldNameOffset");
    uintptr_t offset_off = read_sym(h, "gHotSpotVMStructEntryOffsetOffset");
    uintptr_t tstring_off = read_sym(h, "gHotSpotVMStructEntryTypeStringOffset");
    uintptr_t address_off = read_sym(h, "gHotSpotVMStructEntryAddressOffset");

    if (e == 0 || stride == 0)
        return;
    for (;; e += stride) {
        const char *type = *(const char **)(e + type_off);
        const char *field = *(const char **)(e + field_off);
        int off = (int)*(const uint64_t *)(e + offset_off);
        if (type == NULL || field == NULL)
            break;
        if (strcmp(type, "CodeCache") == 0 && strcmp(field, "_heaps") == 0)
            g_heaps_addr = *(const uintptr_t *)(e + address_off);
        if (strcmp(type, "JVMFlag") == 0) {
            if (strcmp(field, "_type") == 0)
                g_fl_type = off, g_fl_type_ts = *(const char **)(e + tstring_off);
            else if (strcmp(field, "_name") == 0)
                g_fl_name = off;
            else if (strcmp(field, "_addr") == 0)
                g_fl_addr = off;
            else if (strcmp(field, "_flags") == 0)
                g_fl_flags = off, g_fl_flags_ts = *(const char **)(e + tstring_off);
            else if (strcmp(field, "flags") == 0)
                g_fl_table_addr = *(const uintptr_t *)(e + address_off);
            else if (strcmp(field, "numFlags") == 0)
                g_fl_count_addr = *(const uintptr_t *)(e + address_off);
        }
        for (size_t i = 0; i < sizeof k_code_fields / sizeof k_code_fields[0]; i++)
            if (strcmp(type, k_code_fields[i].type) == 0 && strcmp(field, k_code_fields[i].field) == 0)
                *k_code_fields[i].off = off;
        if (strcmp(type, "CodeBlob") == 0 && strcmp(field, "_frame_complete_offset") == 0) {
            const char *ts = *(const char **)(e + tstring_off);
            g_cb_complete_16 = ts != NULL && strcmp(ts, "int16_t") == 0;
        }
        if (strcmp(type, "JavaThread") == 0 && strcmp(field, "_anchor") == 0)
            g_anchor = off;
        else if (strcmp(type, "JavaFrameAnchor") == 0 && strcmp(field, "_last_Java_sp") == 0)
            g_anchor_sp = off;
        else if (strcmp(type, "JavaFrameAnchor") == 0 && strcmp(field, "_last_Java_pc") == 0)
            g_anchor_pc = off;
        else if (strcmp(type, "JavaFrameAnchor") == 0 && strcmp(field, "_last_Java_fp") == 0)
            g_anchor_fp = off;
        else if (strcmp(type, "JavaThread") == 0 && strcmp(field, "_thread_state") == 0)
            g_state = off;
        else if ((strcmp(type, "JavaThread") == 0 || strcmp(type, "Thread") == 0) &&
                 strcmp(field, "_stack_base") == 0)
            g_stack_base = off;
    }
}

/* The code heaps (CodeCache::_heaps, set up before any agent runs and
 * fixed afterwards). Off unless every field is known and plausible. */
static void init_code_heaps(void)
{
    for (size_t i = 0; i < sizeof k_code_fields / sizeof k_code_fields[0]; i++)
        if (*k_code_fields[i].off < 0 && k_code_fields[i].off != &g_cb_code_begin &&
            k_code_fields[i].off != &g_cb_code_offset && k_code_fields[i].off != &g_cb_kind)
            return;
    if (g_heaps_addr == 0 || (g_cb_code_begin < 0 && g_cb_code_offset < 0) || g_hb_size <= g_hb_used)
        return;
    const char *ga = *(const char *const *)g_heaps_addr;
    if (ga == NULL)
        return;
    int n = *(const int *)(ga + g_ga_len);
    const char *const *data = *(const char *const *const *)(ga + g_ga_data);
    if (n <= 0 || n > MAX_HEAPS || data == NULL)
        return;
    for (int i = 0; i < n; i++) {
        if (data[i] == NULL)
            return;
        g_heap[i] = data[i];
    }
    int fields[] = {g_cb_size, g_cb_frame_size, g_cb_complete, g_cb_code_begin, g_cb_code_offset, g_cb_name};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i] >= 0 && (uintptr_t)fields[i] + 8 > g_cb_extent)
            g_cb_extent = (uintptr_t)fields[i] + 8;
    if (g_cb_extent > 512)
        return;
    g_segment_shift = *(const int *)(g_heap[0] + g_heap_log2);
    /* CodeCacheSegmentSize: a power of two from 1 to 1024 bytes... in practice 64 or 128. */
    if (g_segment_shift < 3 || g_segment_shift > 12)
        return;
    for (int i = 1; i < n; i++)
        if (*(const int *)(g_heap[i] + g_heap_log2) != g_segment_shift)
            return;
    g_nheaps = n;
    g_blobs_ready = true;
}

/* The longest walk back through a segment map: each step skips at least one
 * segment and up to 254; a blob of a few MiB needs some hundred steps. */
enum { SEGMAP_STEPS = 1024 };

bool cp__vms_find_blob(uintptr_t pc, cp__vms_blob *out)
{
    if (!g_blobs_ready)
        return false;
    for (int i = 0; i < g_nheaps; i++) {
        const char *heap = g_heap[i];
        uintptr_t low = *(const volatile uintptr_t *)(heap + g_heap_memory + g_vs_low);
        uintptr_t high = *(const volatile uintptr_t *)(heap + g_heap_memory + g_vs_high);
        if (pc < low || pc >= high)
            continue;
        const volatile uint8_t *seg = *(const volatile uint8_t *const *)(heap + g_heap_segmap + g_vs_low);
        uintptr_t seg_high = *(const volatile uintptr_t *)(heap + g_heap_segmap + g_vs_high);
        size_t idx = (pc - low) >> g_segment_shift;
        if (seg == NULL || idx >= seg_high - (uintptr_t)seg)
            return false;
        /* 0xFF: a free segment; else the distance back towards the block's first segment. */
        for (int steps = 0; seg[idx] != 0; steps++) {
            uint8_t d = seg[idx];
            if (d == 0xFF || d > idx || steps == SEGMAP_STEPS)
                return false;
            idx -= d;
        }
        uintptr_t block = low + (idx << g_segment_shift);
        uintptr_t blob = block + (uintptr_t)g_hb_size;
        if (!*(const volatile uint8_t *)(block + (uintptr_t)g_hb_used) || blob + g_cb_extent > high)
            return false;
        const char *b = (const char *)blob;
        int size = *(const volatile int *)(b + g_cb_size);
        uintptr_t code = g_cb_code_offset >= 0 ? blob + (uintptr_t)*(const volatile int *)(b + g_cb_code_offset)
                                               : *(const volatile uintptr_t *)(b + g_cb_code_begin);
        if (size <= 0 || pc >= blob + (uintptr_t)size || code < blob || pc < code)
            return false;
        int complete = g_cb_complete_16 ? *(const volatile int16_t *)(b + g_cb_complete)
                                        : *(const volatile int *)(b + g_cb_complete);
        *out = (cp__vms_blob){blob, code, *(const volatile int *)(b + g_cb_frame_size), complete,
                              *(const char *const volatile *)(b + g_cb_name)};
        return true;
    }
    return false;
}

bool cp__vms_read_tables(const void *probe)
{
    static bool done;
    Dl_info info;
    void *h;

    if (done)
        return true;
    if (!dladdr(probe, &info) || info.dli_fname == NULL ||
        (h = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD)) == NULL)
        return false;
    find_offsets(h);
    find_types(h);
    find_int_constants(h);
    dlclose(h);
    done = true;
    return true;
}

bool cp__vms_init(const void *probe, JNIEnv *env, jobject thread)
{
#if defined(__x86_64__)
    jclass k;
    jfieldID eetop;

    if (g_ready || env == NULL || thread == NULL)
        return g_ready;
    if (!cp__vms_read_tables(probe))
        return false;
    init_code_heaps();
    /* java.lang.Thread.eetop holds the JavaThread* of a live thread. */
    k = (*env)->GetObjectClass(env, thread);
    eetop = k != NULL ? (*env)->GetFieldID(env, k, "eetop", "J") : NULL;
    if ((*env)->ExceptionCheck(env))
        (*env)->ExceptionClear(env);
    /* The anchor's fields are read and written as aligned words. */
    if (eetop == NULL || g_anchor < 0 || g_anchor_sp < 0 || g_anchor_pc < 0 || g_anchor_fp < 0 ||
        g_state < 0 || (g_anchor | g_anchor_sp | g_anchor_pc | g_anchor_fp) % 8 != 0)
        return false;
    jlong jt = (*env)->GetLongField(env, thread, eetop);
    if (jt == 0)
        return false;
    g_env_offset = (intptr_t)env - (intptr_t)jt;
    /* JNIEnv is a field of JavaThread: a sane distance only. */
    g_ready = g_env_offset > 0 && g_env_offset < 4096;
    return g_ready;
#else
    (void)probe, (void)env, (void)thread;
    return false;
#endif
}

/* Is the frame of the blob holding pc one AGCT cannot step over (incomplete
 * there: HotSpot marks C1's runtime stubs and C2's "_new_instance_Java" and
 * the like as never complete), with a frame size to step over it by? */
static bool incomplete_frame_at(uintptr_t pc, cp__vms_blob *b)
{
    return cp__vms_find_blob(pc, b) && b->frame_words > 0 &&
           (b->complete < 0 || pc - b->code < (uintptr_t)b->complete);
}

static void set_anchor(volatile uintptr_t *a, uintptr_t sp, uintptr_t pc, uintptr_t fp)
{
    /* sp first to 0: a reader in between sees "no last Java frame". */
    a[g_anchor_sp / 8] = 0;
    a[g_anchor_fp / 8] = fp;
    a[g_anchor_pc / 8] = pc;
    a[g_anchor_sp / 8] = sp;
}

bool cp__vms_repair_anchor(JNIEnv *env, int how, cp__vms_saved *saved)
{
    if (!g_ready || env == NULL)
        return false;
    char *thread = (char *)env - g_env_offset;
    if (*(const int *)(thread + g_state) != THREAD_IN_VM)
        return false;
    volatile uintptr_t *a = (volatile uintptr_t *)(thread + g_anchor);
    uintptr_t *sp = (uintptr_t *)a[g_anchor_sp / 8], pc = a[g_anchor_pc / 8], fp = a[g_anchor_fp / 8];
    *saved = (cp__vms_saved){a, (uintptr_t)sp, pc, fp};
    /* sp is this thread's own stack (the handler runs on the thread). */
    if (sp == NULL)
        return false;
    uintptr_t top = pc != 0 ? pc : sp[-1];
    /* Stack words are read between sp and the thread's stack base. */
    uintptr_t base = g_stack_base >= 0 ? *(const uintptr_t *)(thread + g_stack_base) : 0;
    uintptr_t hi = base > (uintptr_t)sp && base - (uintptr_t)sp <= ((uintptr_t)1 << 30)
                       ? base - 16 : (uintptr_t)sp + FP_WINDOW;
    cp__vms_blob b;
    if (top == 0)
        return false;
    if (how == CP__VMS_FILL_PC) {
        /* Pointless where the frame it completes cannot be stepped over. */
        if (pc != 0 || incomplete_frame_at(top, &b))
            return false;
        a[g_anchor_pc / 8] = top;
        return true;
    }
    if (how == CP__VMS_STEP_FRAME) {
        /* HotSpot's own sender of a code blob frame: the caller's sp is
         * frame_size words up, its return address just below, the saved
         * frame pointer below that (frame::sender_for_compiled_frame). */
        if (!incomplete_frame_at(top, &b) || (uintptr_t)b.frame_words * 8 > hi - (uintptr_t)sp)
            return false;
        const uintptr_t *caller_sp = sp + b.frame_words;
        if (caller_sp[-1] == 0)
            return false;
        set_anchor(a, (uintptr_t)caller_sp, caller_sp[-1], caller_sp[-2]);
        return true;
    }
    /* A stub frame: push rbp; mov rbp, rsp. Its caller's sp, pc and fp
     * (only with a pc: without one, fp is an interpreter frame's own). */
    if (pc == 0 || fp < (uintptr_t)sp || fp > hi || fp - (uintptr_t)sp > FP_WINDOW || (fp & 7) != 0)
        return false;
    const uintptr_t *f = (const uintptr_t *)fp;
    if (f[1] == 0)
        return false;
    set_anchor(a, fp + 16, f[1], f[0]);
    return true;
}

void cp__vms_restore(const cp__vms_saved *s)
{
    set_anchor(s->anchor, s->sp, s->pc, s->fp);
}

uintptr_t cp__vms_last_java_pc(JNIEnv *env)
{
    if (!g_ready || env == NULL)
        return 0;
    char *anchor = (char *)env - g_env_offset + g_anchor;
    uintptr_t *sp = *(uintptr_t **)(anchor + g_anchor_sp);
    uintptr_t pc = *(uintptr_t *)(anchor + g_anchor_pc);
    return sp == NULL ? 0 : pc != 0 ? pc : sp[-1];
}

uintptr_t cp__vms_stack_base(JNIEnv *env)
{
    if (!g_ready || env == NULL || g_stack_base < 0)
        return 0;
    return *(const uintptr_t *)((const char *)env - g_env_offset + g_stack_base);
}

/* ---- the flag table ------------------------------------------------- */

/* JVMFlag::FlagType, the same order in JDK 17 through 25 (the
 * serviceability agent's VM.cmdFlagTypes). */
enum { FT_BOOL, FT_INT, FT_UINT, FT_INTX, FT_UINTX, FT_UINT64, FT_SIZE, FT_DOUBLE, FT_CCSTR, FT_CCSTRLIST };

typedef struct flagrow {
    const char *name;
    int type;
    const void *addr;
} flagrow;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const flagrow *)a)->name, ((const flagrow *)b)->name);
}

/* "-XX:Name=value" as JVMFlag::print_as_flag writes it. */
static void format_flag(const flagrow *f, char *out, size_t n)
{
    const void *a = f->addr;
    switch (f->type) {
    case FT_BOOL: snprintf(out, n, "-XX:%c%s", *(const bool *)a ? '+' : '-', f->name); break;
    case FT_INT: snprintf(out, n, "-XX:%s=%d", f->name, *(const int32_t *)a); break;
    case FT_UINT: snprintf(out, n, "-XX:%s=%u", f->name, *(const uint32_t *)a); break;
    case FT_INTX: snprintf(out, n, "-XX:%s=%" PRId64, f->name, *(const int64_t *)a); break;
    case FT_UINTX: case FT_UINT64: case FT_SIZE:
        snprintf(out, n, "-XX:%s=%" PRIu64, f->name, *(const uint64_t *)a); break;
    case FT_DOUBLE: snprintf(out, n, "-XX:%s=%f", f->name, *(const double *)a); break;
    default: { /* ccstr, ccstrlist: a char * that may be NULL */
        const char *v = *(const char *const *)a;
        snprintf(out, n, "-XX:%s=%s", f->name, v != NULL ? v : "");
    }
    }
}

/* A little-endian integer field of width w (2 or 4). */
static int read_int(const uint8_t *p, size_t w)
{
    if (w == 2) {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

int cp__vms_flags(void (*emit)(const char *flag, void *arg), void *arg)
{
    if (g_fl_type < 0 || g_fl_name < 0 || g_fl_addr < 0 || g_fl_flags < 0 || g_fl_size == 0 ||
        g_fl_table_addr == 0 || g_fl_count_addr == 0 || (g_fl_type_w != 2 && g_fl_type_w != 4) ||
        (g_fl_flags_w != 2 && g_fl_flags_w != 4))
        return -1;
    const uint8_t *table = *(const uint8_t *const *)g_fl_table_addr;
    size_t count = *(const size_t *)g_fl_count_addr;
    if (table == NULL || count == 0 || count > 100000)
        return -1;
    flagrow *rows = malloc(count * sizeof *rows);
    if (rows == NULL)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *f = table + i * g_fl_size;
        const char *name = *(const char *const *)(f + g_fl_name);
        const void *addr = *(const void *const *)(f + g_fl_addr);
        int type = read_int(f + g_fl_type, g_fl_type_w);
        int bits = read_int(f + g_fl_flags, g_fl_flags_w);
        if (name == NULL || addr == NULL || type < FT_BOOL || type > FT_CCSTRLIST ||
            (bits & g_fl_origin_mask) == g_fl_default)
            continue; /* the empty last entry, an unknown type, a default */
        rows[k++] = (flagrow){name, type, addr};
    }
    qsort(rows, k, sizeof *rows, by_name);
    char buf[1024];
    for (size_t i = 0; i < k; i++) {
        format_flag(&rows[i], buf, sizeof buf);
        emit(buf, arg);
    }
    free(rows);
    return (int)k;
}
