/*
 * sampling_signal.c — signal ownership, the sampling handler, chaining.
 */
#include "sampling_signal.h"

#include <errno.h>
#include <ucontext.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "call_trace_store.h"
#include "cpu_sampler.h"
#include "jvm_agent.h"
#include "thread_table.h"
#include "vthreads.h"
#include "vm_structs.h"

/* si_value tags: the top 16 bits mark a value as ours; wall samples carry
 * their weight (ns, < 2^48 ~ 3 days) in the low bits. */
#define MAGIC_SHIFT 48
#define MAGIC_CPU ((uint64_t)0xC9C1u << MAGIC_SHIFT)
#define MAGIC_CPU_NATIVE ((uint64_t)0xC9C2u << MAGIC_SHIFT)
#define MAGIC_WALL ((uint64_t)0xC9A1u << MAGIC_SHIFT)
#define MAGIC_ADOPT ((uint64_t)0xC9AD0u << (MAGIC_SHIFT - 4))
enum { KIND_ADOPT = 100 }; /* not a sample: late attach registration */
enum { KIND_NATIVE_CPU = 101 }; /* CPU sample from a native-thread timer */
#define WEIGHT_MASK (((uint64_t)1 << MAGIC_SHIFT) - 1)

static atomic_int g_signo;             /* signal in use, 0 = none         */
static struct sigaction g_prev[NSIG];  /* handlers we replaced, to chain  */
static cp__agct_fn g_agct;

static void on_signal(int sig, siginfo_t *si, void *uc);

int cp__signal_parse(const char *name)
{
    static const struct { const char *n; int s; } known[] = {
        {"PROF", SIGPROF}, {"VTALRM", SIGVTALRM}, {"ALRM", SIGALRM},
        {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
    };
    char *end;

    if (name == NULL || *name == '\0')
        return -1;
    if (strncmp(name, "SIG", 3) == 0)
        name += 3;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i].n) == 0)
            return known[i].s;
    if (strncmp(name, "RTMIN", 5) == 0) {
        long k = name[5] == '+' ? strtol(name + 6, &end, 10) : 0;
        return SIGRTMIN + k <= SIGRTMAX ? (int)(SIGRTMIN + k) : -1;
    }
    long v = strtol(name, &end, 10);
    return (*end == '\0' && v > 0 && v < NSIG) ? (int)v : -1;
}

static bool is_free(const struct sigaction *sa)
{
    return !(sa->sa_flags & SA_SIGINFO) &&
           (sa->sa_handler == SIG_DFL || sa->sa_handler == SIG_IGN);
}

/* Take sig if nobody owns it. */
static bool take(int sig)
{
    struct sigaction old, sa;

    if (sigaction(sig, NULL, &old) != 0 || !is_free(&old))
        return false;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &g_prev[sig]) != 0)
        return false;
    atomic_store(&g_signo, sig);
    return true;
}

/* A real-time signal nobody uses; the low ones are left to libraries that
 * hard-code SIGRTMIN+n. */
static int take_free_rt(void)
{
    for (int s = SIGRTMIN + 8; s <= SIGRTMAX - 2; s++)
        if (take(s))
            return s;
    return -1;
}

int cp__signal_install(const char *configured, bool explicit_choice, cp__agct_fn agct)
{
    int sig = cp__signal_parse(configured);

    g_agct = agct;
    if (sig < 0) {
        cp_log(CP_LOG_ERROR, "invalid value '%s' for cpu_signal: expected a signal name "
               "such as SIGPROF or SIGRTMIN+9; CPU and wall profiling disabled", configured);
        return -1;
    }
    if (take(sig))
        return sig;
    if (explicit_choice) {
        cp_log(CP_LOG_ERROR, "signal %d (cpu_signal=%s) already has a handler: CPU and wall "
               "profiling disabled; choose a free one with cpu_signal=", sig, configured);
        return -1;
    }
    int alt = take_free_rt();
    if (alt < 0)
        cp_log(CP_LOG_ERROR, "%s already has a handler and no real-time signal is free: "
               "CPU and wall profiling disabled", configured);
    else
        cp_log(CP_LOG_WARN, "%s already has a handler (another profiler?); using signal %d "
               "for CPU and wall sampling instead", configured, alt);
    return alt;
}

int cp__signal_current(void) { return atomic_load(&g_signo); }

bool cp__signal_check_owner(int *moved_to)
{
    int sig = atomic_load(&g_signo);
    struct sigaction cur;

    *moved_to = 0;
    if (sig == 0 || sigaction(sig, NULL, &cur) != 0)
        return true;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_signal)
        return true;
    /* Someone replaced our handler (JFR's CPU-time sampler does on SIGPROF):
     * leave the signal to them and carry on with a free one. */
    atomic_store(&g_signo, 0);
    *moved_to = take_free_rt();
    if (*moved_to > 0)
        cp_log(CP_LOG_WARN, "signal %d was taken over by another handler (JFR CPU-time "
               "sampling?); contprof moved its CPU and wall sampling to signal %d",
               sig, *moved_to);
    else
        cp_log(CP_LOG_ERROR, "signal %d was taken over by another handler (JFR CPU-time "
               "sampling?) and no signal is free: contprof CPU and wall profiling stopped", sig);
    return false;
}

void *cp__signal_cpu_value(void) { return (void *)(uintptr_t)MAGIC_CPU; }
void *cp__signal_native_cpu_value(void) { return (void *)(uintptr_t)MAGIC_CPU_NATIVE; }

static bool send_value(pid_t tid, uint64_t value)
{
    int sig = atomic_load(&g_signo);
    siginfo_t si;

    if (sig == 0)
        return false;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_ptr = (void *)(uintptr_t)value;
    return syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, &si) == 0;
}

bool cp__signal_send_wall(pid_t tid, int64_t weight_ns)
{
    return send_value(tid, MAGIC_WALL | ((uint64_t)(weight_ns < 0 ? 0 : weight_ns) & WEIGHT_MASK));
}

bool cp__signal_send_adopt(pid_t tid) { return send_value(tid, MAGIC_ADOPT); }

/* 0 if the signal is not ours, else CP__TRACE_CPU/WALL and its weight. */
static int classify(const siginfo_t *si, int64_t *weight)
{
    uint64_t v = (uint64_t)(uintptr_t)si->si_value.sival_ptr;

    if (si->si_code == SI_TIMER && (v == MAGIC_CPU || v == MAGIC_CPU_NATIVE)) {
        /* Overruns are expirations merged into this one: their time counts. */
        *weight = cp__jvm.cpu_interval_ns * (1 + (int64_t)si->si_overrun);
        return v == MAGIC_CPU ? CP__TRACE_CPU : KIND_NATIVE_CPU;
    }
    if (si->si_code == SI_QUEUE && (v & ~WEIGHT_MASK) == MAGIC_WALL) {
        *weight = (int64_t)(v & WEIGHT_MASK);
        return CP__TRACE_WALL;
    }
    if (si->si_code == SI_QUEUE && v == MAGIC_ADOPT)
        return KIND_ADOPT;
    return 0;
}

static JNIEnv *current_env(void)
{
    JNIEnv *env = cp__tls_env;
    /* GetEnv only reads HotSpot's thread-local Thread*: safe in a handler,
     * and it answers "detached" for GC, compiler and native threads. */
    if (env == NULL && cp__jvm.vm != NULL &&
        (*cp__jvm.vm)->GetEnv(cp__jvm.vm, (void **)&env, JNI_VERSION_1_6) != JNI_OK)
        env = NULL;
    return env;
}

/* How the stack was finally walked: count_depth and interrupted_pc replay
 * the same way. The FROM_* retries are for a thread in Java code whose top
 * frame AGCT cannot walk ("unknown/not walkable Java"); AGCT validates the
 * frame it is given, so a wrong guess just fails again. */
enum {
    WALK_PLAIN,
    WALK_REPAIRED,     /* in VM code: the frame anchor repaired (vm_structs.h) */
    WALK_FROM_CALLER,  /* frameless code (vtable/itable dispatch, a stub, an
                          nmethod's first or last instructions): as if it had
                          returned, pc = the word on top of the stack (x86-64)
                          or the link register (AArch64) */
    WALK_FROM_CALLER2, /* code blob between push rbp and its frame (or between
                          its frame's release and pop rbp): return address one
                          word up, the saved frame pointer on top */
    WALK_FROM_FRAME,   /* code blob with its frame complete: HotSpot's own
                          sender, by the blob's frame size */
    WALK_FROM_FP,      /* stub code with a frame pointer: through it */
    WALK_FROM_NATIVE,  /* VM or libc code called from Java without a state
                          change (JRT_LEAF): the frame pointer chain up to the
                          first return address into the code cache */
};

/* Frame pointers are followed only while they lie on the thread's own stack
 * between sp and its base (or FP_WINDOW bytes above sp if the base is
 * unknown), each above the last: a stub's within FP_WINDOW of sp, a chain
 * through VM code within NATIVE_WINDOW. */
enum { FP_WINDOW = 8192, NATIVE_WINDOW = 65536, NATIVE_FP_STEPS = 16 };

/* The caller's registers for one WALK_FROM_* way, false if it does not apply. */
static bool retry_regs(int how, JNIEnv *env, const ucontext_t *uc, uintptr_t *pc, uintptr_t *sp,
                       uintptr_t *fp)
{
#if defined(__x86_64__)
    const uintptr_t s = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    const uintptr_t f = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    const uintptr_t *stack = (const uintptr_t *)s; /* our own stack: always mapped */
    uintptr_t base = cp__vms_stack_base(env);
    uintptr_t hi = base > s && base - s <= ((uintptr_t)1 << 30) ? base - 16 : s + FP_WINDOW;
    cp__vms_blob b;

    switch (how) {
    case WALK_FROM_CALLER:
        *pc = stack[0], *sp = s + 8, *fp = f;
        return true;
    case WALK_FROM_CALLER2:
        if (!cp__vms_find_blob((uintptr_t)uc->uc_mcontext.gregs[REG_RIP], &b))
            return false;
        *pc = stack[1], *sp = s + 16, *fp = stack[0];
        return true;
    case WALK_FROM_FRAME:
        if (!cp__vms_find_blob((uintptr_t)uc->uc_mcontext.gregs[REG_RIP], &b) || b.frame_words <= 0 ||
            (uintptr_t)b.frame_words * 8 > hi - s)
            return false;
        *sp = s + (uintptr_t)b.frame_words * 8;
        *pc = ((const uintptr_t *)*sp)[-1], *fp = ((const uintptr_t *)*sp)[-2];
        return true;
    case WALK_FROM_FP:
        /* push rbp; mov rbp, rsp: the return address at fp + 8. */
        if (f < s || f > hi || f - s > FP_WINDOW || (f & 7) != 0)
            return false;
        *fp = ((const uintptr_t *)f)[0], *pc = ((const uintptr_t *)f)[1], *sp = f + 16;
        return true;
    case WALK_FROM_NATIVE: {
        cp__vms_blob top;
        if (cp__vms_find_blob((uintptr_t)uc->uc_mcontext.gregs[REG_RIP], &top))
            return false; /* in the code cache: not native code */
        uintptr_t cur = f, low = s;
        for (int i = 0; i < NATIVE_FP_STEPS; i++) {
            if (cur < low || cur > hi || cur - s > NATIVE_WINDOW || (cur & 7) != 0)
                return false;
            const uintptr_t *frame = (const uintptr_t *)cur;
            if (cp__vms_find_blob(frame[1], &b)) {
                *pc = frame[1], *sp = cur + 16, *fp = frame[0];
                return true;
            }
            low = cur + 16;
            cur = frame[0];
        }
        return false;
    }
    default:
        return false;
    }
#elif defined(__aarch64__)
    (void)env, (void)sp, (void)fp;
    if (how != WALK_FROM_CALLER)
        return false;
    *pc = uc->uc_mcontext.regs[30];
    return true;
#else
    (void)how, (void)env, (void)uc, (void)pc, (void)sp, (void)fp;
    return false;
#endif
}

/* AGCT from the caller's registers of one WALK_FROM_* way; false (trace
 * untouched) if the way does not apply. */
static bool agct_from(int how, cp__agct_trace *trace, void *uc, int depth)
{
#if defined(__x86_64__) || defined(__aarch64__)
    ucontext_t copy = *(ucontext_t *)uc;
    uintptr_t pc, sp, fp;

    if (!retry_regs(how, trace->env_id, &copy, &pc, &sp, &fp))
        return false;
#if defined(__x86_64__)
    copy.uc_mcontext.gregs[REG_RIP] = (greg_t)pc;
    copy.uc_mcontext.gregs[REG_RSP] = (greg_t)sp;
    copy.uc_mcontext.gregs[REG_RBP] = (greg_t)fp;
#else
    copy.uc_mcontext.pc = pc;
#endif
    g_agct(trace, depth, &copy);
    return true;
#else
    (void)how, (void)trace, (void)uc, (void)depth;
    return false;
#endif
}

/* A thread in VM code whose last Java frame AGCT cannot walk ("unknown/not
 * walkable, not Java"): repair its frame anchor (vm_structs.h) for the
 * length of one more walk each way: fill a missing pc, then step over a
 * runtime stub. */
static void agct_repaired(cp__agct_trace *trace, void *uc, int depth)
{
    cp__vms_saved saved;

    for (int how = 0; how < CP__VMS_REPAIRS && trace->num_frames <= 0; how++) {
        if (!cp__vms_repair_anchor(trace->env_id, how, &saved))
            continue;
        g_agct(trace, depth, uc);
        cp__vms_restore(&saved);
    }
}

static int walk(cp__agct_trace *trace, void *uc)
{
    g_agct(trace, cp__jvm.walk_depth, uc);
    if (trace->num_frames == CP__AGCT_UNKNOWN_JAVA || trace->num_frames == CP__AGCT_NOT_WALKABLE_JAVA) {
        for (int how = WALK_FROM_CALLER; how <= WALK_FROM_NATIVE; how++) {
            cp__agct_trace retry = *trace;
            if (agct_from(how, &retry, uc, cp__jvm.walk_depth) && retry.num_frames > 0) {
                *trace = retry;
                return how;
            }
        }
    } else if (trace->num_frames == CP__AGCT_UNKNOWN_NOT_JAVA ||
               trace->num_frames == CP__AGCT_NOT_WALKABLE_NOT_JAVA) {
        cp__agct_trace retry = *trace;
        agct_repaired(&retry, uc, cp__jvm.walk_depth);
        if (retry.num_frames > 0) {
            *trace = retry;
            return WALK_REPAIRED;
        }
    }
    return WALK_PLAIN;
}

/* Scratch frames for counting the depth of truncated stacks: a few shared
 * buffers, claimed without blocking (a handler that finds them all busy
 * leaves the depth unknown). */
enum { COUNT_BUFFERS = 4 };
static cp__agct_frame g_count_frames[COUNT_BUFFERS][CP__DEPTH_MAX];
static atomic_flag g_count_busy[COUNT_BUFFERS];

/* True depth of a stack AGCT filled to walk_depth: one more walk, deeper
 * (AGCT's cost is linear in the frames it walks; only stacks deeper than
 * max_frames pay it). */
static int count_depth(JNIEnv *env, void *uc, int how)
{
    for (int i = 0; i < COUNT_BUFFERS; i++) {
        if (atomic_flag_test_and_set(&g_count_busy[i]))
            continue;
        cp__agct_trace t = {env, 0, g_count_frames[i]};
        if (how >= WALK_FROM_CALLER)
            agct_from(how, &t, uc, CP__DEPTH_MAX);
        else if (how == WALK_REPAIRED)
            agct_repaired(&t, uc, CP__DEPTH_MAX);
        else
            g_agct(&t, CP__DEPTH_MAX, uc);
        atomic_flag_clear(&g_count_busy[i]);
        return t.num_frames > cp__jvm.max_frames ? t.num_frames : CP__DEPTH_UNKNOWN;
    }
    return CP__DEPTH_UNKNOWN;
}

/* The pc the sample's top Java frame ran at: where the signal came, or the
 * return address the retry from a caller used. */
static uintptr_t interrupted_pc(JNIEnv *env, void *uc, int how)
{
    uintptr_t pc = 0, sp, fp;

    if (how >= WALK_FROM_CALLER)
        return retry_regs(how, env, uc, &pc, &sp, &fp) ? pc : 0;
#if defined(__x86_64__)
    return (uintptr_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)((ucontext_t *)uc)->uc_mcontext.pc;
#else
    (void)env, (void)uc;
    return pc;
#endif
}

/* Fill r with the interrupted stack and who we are. */
static void fill(cp__trace_rec *r, JNIEnv *env, int kind, int64_t weight, cp__thread_slot *self,
                 void *uc)
{
    cp__agct_trace trace = {env, 0, r->frames};
    int how = env != NULL ? walk(&trace, uc) : WALK_PLAIN; /* no env: a native thread */

    r->java = env != NULL;
    /* Native frames above the Java ones (or all of a native thread's):
     * the walk stops at the first pc in no loaded object, i.e. in the code
     * cache (compiled code, stubs, the interpreter), where AGCT's frames
     * begin. */
    if (kind == CP__TRACE_CPU && cp__jvm.native_on)
        r->num_native = cp_native_unwind(uc, r->native, cp__jvm.walk_depth, NULL);
    r->kind = kind;
    r->num_frames = trace.num_frames;
    r->pc = interrupted_pc(env, uc, how);
    r->java_pc = env != NULL ? cp__vms_last_java_pc(env) : 0;
    r->total_frames = env != NULL && trace.num_frames >= cp__jvm.walk_depth ? count_depth(env, uc, how)
                                                                            : trace.num_frames;
    r->weight = weight;
    /* A carrier running a virtual thread samples as that virtual thread. */
    r->thread_serial = cp__tls_vserial != 0 ? cp__tls_vserial : cp__tls_env != NULL ? cp__tls_serial : 0;
    r->tid = (pid_t)syscall(SYS_gettid);
    r->thread_slot = self != NULL ? cp__threads_index(self) : -1;
    r->wall_seq = self != NULL ? atomic_load(&self->wall_state) >> 1 : 0;
}

static void record(int kind, int64_t weight, void *uc)
{
    int64_t t0 = cp_now_ns();
    JNIEnv *env = current_env();
    cp__thread_slot *self = cp__tls_env != NULL ? cp__threads_self() : NULL;
    bool native_timer = kind == KIND_NATIVE_CPU;

    /* A thread that registered as a Java thread since the native scan
     * armed its timer: its own timer samples it (until the scan drops this
     * one), so this tick would count its CPU twice. */
    if (native_timer && self != NULL && atomic_load(&self->timer_armed) != 0)
        return;
    if (native_timer)
        kind = CP__TRACE_CPU;
    cp__trace_rec *r = env != NULL || (native_timer && cp__jvm.native_on) ? cp__store_reserve() : NULL;

    if (r != NULL) {
        fill(r, env, kind, weight, self, uc);
        if (kind == CP__TRACE_CPU && self != NULL)
            r->weight = cp__cpu_sampled(self, r);
        cp__store_commit(r);
        cp_metrics_add_taken(1);
    }
    if (kind == CP__TRACE_WALL && self != NULL) {
        /* Lets the wall sampler skip us while idle, and send the next wall
         * signal only now that this one is handled (queued real-time
         * signals must never pile up on a thread that is not running). */
        atomic_store(&self->wall_cpu_ns, cp__thread_cpu_ns((pid_t)syscall(SYS_gettid)));
        atomic_store(&self->wall_handled, atomic_load(&self->wall_state) >> 1);
    }
    cp_metrics_add_hook_ns(cp_now_ns() - t0);
}

/* Late attach: a Java thread that was already running registers itself. */
static void adopt(void)
{
    JNIEnv *env = current_env();
    if (env != NULL)
        cp__threads_adopt_self(env);
}

static void chain(int sig, siginfo_t *si, void *uc)
{
    const struct sigaction *p = &g_prev[sig];

    /* A stray signal when the previous action was SIG_DFL is ignored rather
     * than killing the process: the profiler owns the signal now. */
    if (p->sa_flags & SA_SIGINFO) {
        if (p->sa_sigaction != NULL)
            p->sa_sigaction(sig, si, uc);
    } else if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN) {
        p->sa_handler(sig);
    }
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    int saved_errno = errno; /* AGCT and syscalls below may clobber it */
    int64_t weight = 0;
    int kind = classify(si, &weight);

    if (kind == 0)
        chain(sig, si, uc);
    else if (!cp__jvm_running() || g_agct == NULL)
        ; /* ours, but the agent is off */
    else if (kind == KIND_ADOPT)
        adopt();
    else if (kind == KIND_NATIVE_CPU && !cp__jvm.native_on)
        ; /* a native timer left over from before a settings change */
    else
        record(kind, weight, uc);
    errno = saved_errno;
}
