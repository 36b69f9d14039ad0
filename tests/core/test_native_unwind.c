/*
 * test_native_unwind.c — the native unwinder on real stacks, from a real
 * signal handler: a known call chain of static functions (names only in
 * .symtab) down to the thread's start; libz frames under compress2; a stop
 * at code outside every object (a hand-made "JIT" stub), counted; garbage
 * registers that must end the walk without a fault; the demangler.
 */
#include <alloca.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "contprof.h"
#include "unwind.h"

enum { MAXF = 128 };

static uintptr_t g_pcs[MAXF];
static atomic_int g_n = -1;
static cp_unwind_status g_why;
static atomic_bool g_stop;
static atomic_int g_ready;

static uintptr_t g_stop_lo, g_stop_hi; /* cp_native_unwind_until's range, 0 = none */

/* Comparison mode: the handler also walks with libunwind alone and counts
 * the walks whose frames or stop reason differ from the default walk's. */
static atomic_bool g_compare;
static atomic_int g_compared, g_differ;

static void compare_walks(void *uc, int n)
{
    uintptr_t pcs[MAXF];
    cp_unwind_status why;
    cp__native_slow_only(true);
    int m = cp_native_unwind_until(uc, pcs, MAXF, &why, g_stop_lo, g_stop_hi);
    cp__native_slow_only(false);
    atomic_fetch_add(&g_compared, 1);
    if (m != n || why != g_why || memcmp(pcs, g_pcs, (size_t)n * sizeof *pcs) != 0)
        atomic_fetch_add(&g_differ, 1);
}

static void on_sig(int sig, siginfo_t *si, void *uc)
{
    int n = cp_native_unwind_until(uc, g_pcs, MAXF, &g_why, g_stop_lo, g_stop_hi);
    if (atomic_load(&g_compare))
        compare_walks(uc, n);
    atomic_store(&g_n, n);
}

static int fd_count(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* The unwinder's set-up leaves no descriptor open (libunwind's own pipe is
 * closed): a profiled host's fd list is its own. Runs first (init is once). */
static void test_init_keeps_no_fd(void **state)
{
    (void)state;
    int before = fd_count();
    assert_int_equal(cp_native_init(), CP_OK);
    assert_int_equal(fd_count(), before);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR2, &sa, NULL), 0);
    assert_int_equal(cp_native_init(), CP_OK);
}

/* Signal tid until its handler recorded a stack (it may take a few tries
 * while the thread is still on its way into the loop). */
static int sample(pid_t tid, bool (*wanted)(int n))
{
    for (int tries = 0; tries < 2000; tries++) {
        atomic_store(&g_n, -1);
        syscall(SYS_tgkill, getpid(), tid, SIGUSR2);
        while (atomic_load(&g_n) < 0)
            sched_yield();
        if (wanted(atomic_load(&g_n)))
            return atomic_load(&g_n);
        usleep(1000);
    }
    return atomic_load(&g_n);
}

static const char *name_at(int i)
{
    cp_frame f;
    cp_native_symbolize(g_pcs[i], i > 0, &f);
    assert_int_equal(f.kind, CP_FRAME_NATIVE);
    return f.name;
}

static int find(int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name_at(i), name) == 0)
            return i;
    return -1;
}

/* ---- a known chain of static functions ---------------------------------- */

static volatile uint64_t g_sink;
static atomic_int g_tid;

__attribute__((noinline)) static void chain_leaf(void)
{
    atomic_store(&g_ready, 1);
    while (!atomic_load(&g_stop))
        g_sink = g_sink * 31 + 7;
}
__attribute__((noinline)) static void chain_mid(void) { chain_leaf(); g_sink++; }
__attribute__((noinline)) static void chain_top(void) { chain_mid(); g_sink++; }

static void *chain_main(void *arg)
{
    atomic_store(&g_tid, (int)syscall(SYS_gettid));
    chain_top();
    return arg;
}

static bool leaf_seen(int n) { return n >= 3 && find(n, "chain_leaf") == 0; }

static void run_thread(void *(*fn)(void *), pthread_t *t)
{
    atomic_store(&g_stop, false);
    atomic_store(&g_ready, 0);
    atomic_store(&g_tid, 0);
    assert_int_equal(pthread_create(t, NULL, fn, NULL), 0);
    while (!atomic_load(&g_ready))
        sched_yield();
}

static void test_known_chain(void **state)
{
    pthread_t t;
    cp_native_stats before, after;

    install();
    cp_native_stats_get(&before);
    run_thread(chain_main, &t);
    int n = sample(atomic_load(&g_tid), leaf_seen);
    atomic_store(&g_stop, true);
    pthread_join(t, NULL);
    assert_true(leaf_seen(n));
    assert_int_equal(find(n, "chain_mid"), 1);
    assert_int_equal(find(n, "chain_top"), 2);
    assert_int_equal(find(n, "chain_main"), 3);
    /* ... down to glibc's thread start (a static function of a stripped
     * libc: named by offset), where the unwind info ends. */
    assert_true(n > 4);
    assert_int_equal(g_why, CP_UNWIND_END);
    cp_frame root;
    cp_native_symbolize(g_pcs[n - 1], true, &root);
    assert_non_null(root.module);
    assert_non_null(strstr(root.module, "libc.so"));
    cp_frame f;
    cp_native_symbolize(g_pcs[0], false, &f);
    assert_non_null(f.module);
    assert_non_null(strstr(f.module, "test_native_unwind"));
    cp_native_stats_get(&after);
    assert_true(after.unwinds > before.unwinds);
    assert_true(after.frames >= before.frames + 5);
    assert_true(after.modules >= 3);
}

/* ---- ending at a given function (cp_native_unwind_until) ----------------- */

static bool leaf_then_end(int n) { return n >= 2 && find(n, "chain_leaf") == 0; }

static void test_unwind_until(void **state)
{
    pthread_t t;
    uintptr_t lo = 0, hi = 0;

    (void)state;
    install();
    /* The extent of chain_mid from its unwind entry covers its address. */
    assert_true(cp_native_function_extent((uintptr_t)chain_mid, &lo, &hi));
    assert_true(lo <= (uintptr_t)chain_mid && (uintptr_t)chain_mid < hi);
    g_stop_lo = lo;
    g_stop_hi = hi;
    atomic_store(&g_stop, false);
    run_thread(chain_main, &t);
    int n = sample(atomic_load(&g_tid), leaf_then_end);
    atomic_store(&g_stop, true);
    pthread_join(t, NULL);
    g_stop_lo = g_stop_hi = 0;
    /* leaf, then chain_mid, where the walk ends */
    assert_true(leaf_then_end(n));
    assert_int_equal(n, 2);
    assert_int_equal(find(n, "chain_mid"), 1);
    assert_int_equal(g_why, CP_UNWIND_END);
}

/* ---- the executable segment of a pc (cp_native_segment_extent) ----------- */

static void test_segment_extent(void **state)
{
    uintptr_t lo = 0, hi = 0, flo = 0, fhi = 0, zlo = 0, zhi = 0;
    static int data_word;

    (void)state;
    install();
    /* This program's code: the segment holds the whole function. */
    assert_true(cp_native_segment_extent((uintptr_t)chain_mid, &lo, &hi));
    assert_true(cp_native_function_extent((uintptr_t)chain_mid, &flo, &fhi));
    assert_true(lo <= flo && fhi <= hi);
    /* Another object's code is another segment. */
    assert_true(cp_native_segment_extent((uintptr_t)compress2, &zlo, &zhi));
    assert_true(zlo <= (uintptr_t)compress2 && (uintptr_t)compress2 < zhi);
    assert_true(zhi <= lo || hi <= zlo);
    /* Data and the stack are in no executable segment. */
    assert_false(cp_native_segment_extent((uintptr_t)&data_word, &lo, &hi));
    assert_false(cp_native_segment_extent((uintptr_t)&lo, &lo, &hi));
}

/* The symbol tables start small and grow: 20,000 pcs across libc's code
 * (thousands of functions) name the same after every growth, with one
 * pointer per distinct name. */
static void test_symbol_tables_grow(void **state)
{
    enum { N = 20000 };
    static const char *first[N];
    uintptr_t lo = 0, hi = 0;
    cp_native_stats st0, st1;
    cp_frame f;

    (void)state;
    install();
    assert_true(cp_native_segment_extent((uintptr_t)memcpy, &lo, &hi));
    uintptr_t step = (hi - lo) / N > 0 ? (hi - lo) / N : 1;
    cp_native_stats_get(&st0);
    for (size_t i = 0; i < N; i++) {
        cp_native_symbolize(lo + i * step, false, &f);
        assert_non_null(f.name);
        first[i] = f.name;
    }
    cp_native_stats_get(&st1);
    assert_true(st1.symbols_cached >= st0.symbols_cached + N / 2); /* grown, not started over */
    assert_int_equal(st1.symbol_cache_full, st0.symbol_cache_full);
    size_t distinct = 0;
    for (size_t i = 0; i < N; i++) {
        cp_native_symbolize(lo + i * step, false, &f);
        assert_ptr_equal(f.name, first[i]);
        distinct += i == 0 || strcmp(first[i], first[i - 1]) != 0;
        /* equal names are one pointer (interned), across growth */
        if (i > 0 && strcmp(first[i], first[i - 1]) == 0)
            assert_ptr_equal(first[i], first[i - 1]);
    }
    assert_true(distinct > 1024); /* more names than the intern table's first size */
}

/* ---- libz under compress2 ----------------------------------------------- */

static void *zlib_main(void *arg)
{
    static unsigned char in[1 << 16], out[1 << 17];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)((i * 7) ^ (i >> 5));
    atomic_store(&g_tid, (int)syscall(SYS_gettid));
    atomic_store(&g_ready, 1);
    while (!atomic_load(&g_stop)) {
        uLongf len = sizeof out;
        compress2(out, &len, in, sizeof in, 9);
    }
    return arg;
}

static bool in_libz_under_compress(int n)
{
    int c = find(n, "compress2");
    if (c <= 0 || find(n, "zlib_main") != c + 1)
        return false;
    cp_frame f;
    cp_native_symbolize(g_pcs[0], false, &f);
    return f.module != NULL && strstr(f.module, "libz") != NULL;
}

/* ... and under deflate, named, between the leaf and compress2. Not every
 * libz stack under compress2 has it: deflateInit2_ and deflateEnd run
 * there too (a leaf in their unexported helpers has no deflate above it). */
static bool in_deflate_under_compress(int n)
{
    int d = find(n, "deflate");
    return in_libz_under_compress(n) && d > 0 && d < find(n, "compress2");
}

static void test_libz_frames(void **state)
{
    pthread_t t;

    install();
    run_thread(zlib_main, &t);
    int n = sample(atomic_load(&g_tid), in_deflate_under_compress);
    atomic_store(&g_stop, true);
    pthread_join(t, NULL);
    assert_true(in_deflate_under_compress(n));
}

/* Frames whose CFA is rbp-based (a variable-size alloca forces a frame
 * pointer): a caller's CFA then depends on the rbp its callee restored. */
__attribute__((noinline)) static void fp_leaf(void)
{
    atomic_store(&g_ready, 1);
    while (!atomic_load(&g_stop))
        g_sink = g_sink * 13 + 5;
}

__attribute__((noinline)) static void fp_mid(int n)
{
    volatile char *p = alloca((size_t)n);
    p[0] = 1;
    fp_leaf();
    g_sink += (uint64_t)p[0];
}

__attribute__((noinline)) static void fp_top(int n)
{
    volatile char *p = alloca((size_t)n);
    p[0] = 2;
    fp_mid(n + 16);
    g_sink += (uint64_t)p[0];
}

static void *fp_main(void *arg)
{
    atomic_store(&g_tid, (int)syscall(SYS_gettid));
    fp_top(32 + (int)(g_sink & 1));
    return arg;
}

/* Every walk of cfi.c's rows (with libunwind for what they do not cover)
 * gives the frames and stop reason libunwind alone gives, at whatever pc
 * the signal lands (prologues, epilogues, PLT stubs, libz's hot loops). */
static bool always(int n) { return n >= 0; }

static void compare_on(void *(*fn)(void *), int samples)
{
    pthread_t t;
    run_thread(fn, &t);
    for (int i = 0; i < samples; i++)
        sample(atomic_load(&g_tid), always);
    atomic_store(&g_stop, true);
    pthread_join(t, NULL);
}

static void test_fast_matches_libunwind(void **state)
{
    install();
    uint64_t fast0 = cp__native_fast_steps();
    atomic_store(&g_compared, 0);
    atomic_store(&g_differ, 0);
    atomic_store(&g_compare, true);
    compare_on(zlib_main, 400);
    compare_on(chain_main, 100);
    compare_on(fp_main, 100);
    atomic_store(&g_compare, false);
    assert_int_equal(atomic_load(&g_compared), 600);
    assert_int_equal(atomic_load(&g_differ), 0);
    assert_true(cp__native_fast_steps() - fast0 >= 600); /* the fast path did walk */
    /* and the rbp-based chain was walked through: fp_leaf <- fp_mid <- fp_top */
    pthread_t t;
    run_thread(fp_main, &t);
    int n = sample(atomic_load(&g_tid), always);
    atomic_store(&g_stop, true);
    pthread_join(t, NULL);
    int m = find(n, "fp_mid");
    assert_true(m > 0 && find(n, "fp_top") == m + 1 && find(n, "fp_main") == m + 2);
}

/* ---- a stop at code in no object ------------------------------------------ */

__attribute__((noinline)) static void jit_callee(void)
{
    atomic_store(&g_ready, 1);
    while (!atomic_load(&g_stop))
        g_sink = g_sink * 17 + 3; /* not chain_leaf's code: no identical-code folding */
}

static void *jit_main(void *arg)
{
    /* mov rax, imm64; sub rsp, 8; call rax; add rsp, 8; ret */
    static const unsigned char code[] = {0x48, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0x48, 0x83, 0xEC, 0x08,
                                         0xFF, 0xD0, 0x48, 0x83, 0xC4, 0x08, 0xC3};
    void (*target)(void) = jit_callee;
    unsigned char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    memcpy(m, code, sizeof code);
    memcpy(m + 2, &target, sizeof target);
    mprotect(m, 4096, PROT_READ | PROT_EXEC);
    atomic_store(&g_tid, (int)syscall(SYS_gettid));
    ((void (*)(void))(void *)m)();
    munmap(m, 4096);
    return arg;
}

static bool callee_seen(int n) { return n >= 1 && find(n, "jit_callee") == 0; }

static void test_stops_at_unknown_code(void **state)
{
    pthread_t t;
    cp_native_stats before, after;

    install();
    cp_native_stats_get(&before);
    run_thread(jit_main, &t);
    int n = sample(atomic_load(&g_tid), callee_seen);
    atomic_store(&g_stop, true);
    pthread_join(t, NULL);
    assert_int_equal(n, 1); /* jit_callee only: its caller is in no object */
    assert_true(callee_seen(n));
    assert_int_equal(g_why, CP_UNWIND_UNKNOWN_PC);
    assert_false(cp_native_pc_known(g_pcs[0] + 0) == false);
    cp_native_stats_get(&after);
    assert_true(after.stops[CP_UNWIND_UNKNOWN_PC] > before.stops[CP_UNWIND_UNKNOWN_PC]);
}

/* ---- garbage registers: the walk ends, nothing faults --------------------- */

static void test_garbage_context(void **state)
{
    ucontext_t uc;
    uintptr_t pcs[16];
    cp_unwind_status why;
    static const uintptr_t bad_sp[] = {0x1000, 0x7ff0, (uintptr_t)-4096, (uintptr_t)1 << 46};

    install();
    for (size_t i = 0; i < sizeof bad_sp / sizeof bad_sp[0]; i++) {
        memset(&uc, 0, sizeof uc);
        uc.uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)chain_mid + 4;
        uc.uc_mcontext.gregs[REG_RSP] = (greg_t)bad_sp[i];
        uc.uc_mcontext.gregs[REG_RBP] = (greg_t)bad_sp[i];
        int n = cp_native_unwind(&uc, pcs, 16, &why);
        assert_int_equal(n, 1);
        assert_int_equal(why, CP_UNWIND_ERROR);
    }
    /* A pc in no object: nothing to walk. */
    uc.uc_mcontext.gregs[REG_RIP] = 0x10;
    assert_int_equal(cp_native_unwind(&uc, pcs, 16, &why), 0);
    assert_int_equal(why, CP_UNWIND_UNKNOWN_PC);
}

/* ---- an object loaded after the first snapshot ---------------------------- */

static const char *g_plugin_path;
typedef void (*plugin_fn)(atomic_int *, atomic_bool *, volatile unsigned long *);
static plugin_fn g_plugin;
static volatile unsigned long g_plugin_sink;

static void *plugin_main(void *arg)
{
    atomic_store(&g_tid, (int)syscall(SYS_gettid));
    g_plugin(&g_ready, &g_stop, &g_plugin_sink);
    return arg;
}

static bool any(int n) { return n >= 0; }
static bool leaf_named_plugin(int n) { return n >= 3 && find(n, "plugin_inner") == 0; }

static void test_dlopen_after_start(void **state)
{
    pthread_t t;

    install(); /* snapshot taken already (earlier tests or here) */
    /* Opened by a relative name, as dlopen("./libfoo.so") does: frames
     * and the module are still named from the real file. */
    char abs[PATH_MAX], dir[PATH_MAX], rel[PATH_MAX + 2], cwd[PATH_MAX];
    assert_non_null(realpath(g_plugin_path, abs));
    snprintf(dir, sizeof dir, "%s", abs);
    *strrchr(dir, '/') = '\0';
    snprintf(rel, sizeof rel, "./%s", strrchr(abs, '/') + 1);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    void *h = dlopen(rel, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(h);
    g_plugin = (plugin_fn)dlsym(h, "plugin_spin");
    assert_non_null(g_plugin);
    run_thread(plugin_main, &t);
    /* Before a refresh the plugin's code is in no known object: the walk
     * stops at once, as it does for JIT code. */
    int n = sample(atomic_load(&g_tid), any);
    assert_int_equal(n, 0);
    assert_int_equal(g_why, CP_UNWIND_UNKNOWN_PC);
    cp_native_refresh();
    assert_int_equal(chdir(cwd), 0);
    n = sample(atomic_load(&g_tid), leaf_named_plugin);
    atomic_store(&g_stop, true);
    pthread_join(t, NULL);
    assert_true(leaf_named_plugin(n));
    assert_int_equal(find(n, "plugin_spin"), 1);
    assert_int_equal(find(n, "plugin_main"), 2);
    cp_frame f;
    cp_native_symbolize(g_pcs[0], false, &f);
    assert_string_equal(f.module, abs);
}

/* ---- stripped objects: symbols from a separate debug file ---------------- */

/* The leaf name of a sample of the plugin's copy in subdirectory sub (made
 * by native.cmake) spinning in its static plugin_inner. */
static void stripped_leaf(const char *sub, char *name, size_t cap)
{
    char abs[PATH_MAX], path[PATH_MAX + 32];
    pthread_t t;

    assert_non_null(realpath(g_plugin_path, abs));
    char *base = strrchr(abs, '/');
    *base++ = '\0';
    snprintf(path, sizeof path, "%s/%s/%s", abs, sub, base);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(h);
    g_plugin = (plugin_fn)dlsym(h, "plugin_spin");
    assert_non_null(g_plugin);
    run_thread(plugin_main, &t);
    cp_native_refresh();
    int n = sample(atomic_load(&g_tid), any);
    assert_true(n >= 1);
    cp_frame f;
    cp_native_symbolize(g_pcs[0], false, &f);
    snprintf(name, cap, "%s", f.name);
    atomic_store(&g_stop, true);
    pthread_join(t, NULL);
}

static void test_debug_file(void **state)
{
    char name[256], want[256];

    install();
    /* Stripped, its .symtab in .debug/ beside it (.gnu_debuglink): the
     * static function is named. */
    stripped_leaf("stripped", name, sizeof name);
    assert_string_equal(name, "plugin_inner");
    /* Stripped without one: object and offset, no "0x". */
    stripped_leaf("nodebug", name, sizeof name);
    snprintf(want, sizeof want, "%s+", strrchr(g_plugin_path, '/') + 1);
    assert_memory_equal(name, want, strlen(want));
    assert_null(strstr(name, "0x"));
    /* A versioned definition: .dynsym says "pthread_cond_signal", libc's
     * debug .symtab (libc6-dbg) "pthread_cond_signal@@GLIBC_2.3.2". */
    cp_frame f;
    void *fn = dlsym(RTLD_DEFAULT, "pthread_cond_signal");
    assert_non_null(fn);
    cp_native_symbolize((uintptr_t)fn, false, &f);
    assert_string_equal(f.name, "pthread_cond_signal");
}

/* ---- the demangler ---------------------------------------------------- */

static void test_demangle(void **state)
{
    static const char *const cases[][2] = {
        {"_ZN7Compile8OptimizeEv", "Compile::Optimize"},
        {"_ZN7CompileC2EP5ciEnvP8ciMethodibRK7Options", "Compile::Compile"},
        {"_ZN10C2Compiler14compile_methodEP5ciEnvP8ciMethodibP12DirectiveSet", "C2Compiler::compile_method"},
        {"_ZN13GrowableArrayIP4NodeE4growEi", "GrowableArray<...>::grow"},
        {"_ZN12_GLOBAL__N_13fooEv", "(anonymous namespace)::foo"},
        {"_ZNK3Foo3barEv", "Foo::bar"},
        {"_ZN3FooD1Ev", "Foo::~Foo"},
        {"_ZN3FooaSERKS_", "Foo::operator="},
        {"_ZL9helper_fnv", "helper_fn"},
        {"_Z5hellov", "hello"},
        {"_ZNSt6vectorIiSaIiEE9push_backERKi", "std::vector<...>::push_back"},
        {"_ZN6Thread8call_runEv.cold", "Thread::call_run"},
        {"_ZThn16_N3Foo3barEv", "Foo::bar"},
        {"_ZN5ArenaB5cxx113getEv", "Arena::get"},
        {"_ZN4NodenwEm.constprop.0", "Node::operator new"},
        /* Template arguments with enum literals (HotSpot's access barriers, log tags). */
        {"_ZN14AccessInternal19PostRuntimeDispatchIN12G1BarrierSet13AccessBarrierILm18112614ES1_EELNS_11BarrierTypeE8E"
         "Lm18112614EE18oop_access_barrierIP12HeapWordImplEEbP12arrayOopDescmPT_SA_mSC_m",
         "AccessInternal::PostRuntimeDispatch<...>::oop_access_barrier<...>"},
        {"_ZN13LogTargetImplILN8LogLevel4typeE1ELN6LogTag4typeE43ELS3_83ELS3_0ELS3_0ELS3_0ELS3_0EE5printEPKcz",
         "LogTargetImpl<...>::print"},
        /* A lambda's type among template arguments; names local to a function. */
        {"_ZN12ZMappedCache11remove_vmemILNS_15RemovalStrategyE0EZNS_17remove_contiguousEmEUlmE_EE14ZVirtualMemory"
         "P17ZMappedCacheEntrymT0_", "ZMappedCache::remove_vmem<...>"},
        {"_ZZN15G1RemSetSummary6updateEvEN11CollectData9do_threadEP6Thread", "G1RemSetSummary::update::CollectData::do_thread"},
        {"_ZZN3Foo3barEvENKUlvE_clEv", "Foo::bar::{lambda}::operator()"},
        {"_ZZ21WB_HandshakeWalkStackEN16TraceSelfClosureD0Ev", "WB_HandshakeWalkStack::TraceSelfClosure::~TraceSelfClosure"},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_true(cp__demangle(cases[i][0], out, sizeof out));
        assert_string_equal(out, cases[i][1]);
    }
    assert_false(cp__demangle("deflate", out, sizeof out));
    assert_false(cp__demangle("_ZZ4mainEs", out, sizeof out));  /* a string literal: kept mangled */
    assert_false(cp__demangle("_ZZN3Foo3barEvENKUlv", out, sizeof out)); /* cut short */
    assert_false(cp__demangle("_ZN3Foo3barEv", out, 4));        /* too small */
}

int main(int argc, char **argv)
{
    g_plugin_path = argc > 1 ? argv[1] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_keeps_no_fd),
        cmocka_unit_test(test_known_chain),
        cmocka_unit_test(test_unwind_until),
        cmocka_unit_test(test_segment_extent),
        cmocka_unit_test(test_symbol_tables_grow),
        cmocka_unit_test(test_libz_frames),
        cmocka_unit_test(test_fast_matches_libunwind),
        cmocka_unit_test(test_stops_at_unknown_code),
        cmocka_unit_test(test_garbage_context),
        cmocka_unit_test(test_dlopen_after_start),
        cmocka_unit_test(test_debug_file),
        cmocka_unit_test(test_demangle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
