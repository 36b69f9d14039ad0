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
#include "jvm_agent.h"
#include "thread_table.h"

/* si_value tags: the top 16 bits mark a value as ours; wall samples carry
 * their weight (ns, < 2^48 ~ 3 days) in the low bits. */
#define MAGIC_SHIFT 48
#define MAGIC_CPU ((uint64_t)0xC9C1u << MAGIC_SHIFT)
#define MAGIC_WALL ((uint64_t)0xC9A1u << MAGIC_SHIFT)
#define MAGIC_ADOPT ((uint64_t)0xC9AD0u << (MAGIC_SHIFT - 4))
enum { KIND_ADOPT = 100 }; /* not a sample: late attach registration */
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

    if (si->si_code == SI_TIMER && v == MAGIC_CPU) {
        /* Overruns are expirations merged into this one: their time counts. */
        *weight = cp__jvm.cpu_interval_ns * (1 + (int64_t)si->si_overrun);
        return CP__TRACE_CPU;
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

/* AGCT cannot walk from frameless VM code (the vtable/itable dispatch code
 * that compiled code calls: megamorphic calls spend most of their time
 * there) and answers "unknown Java". Retry once as if that code had
 * returned: pc = return address, which it leaves on top of the stack
 * (x86-64) or in the link register (AArch64). AGCT validates the frame it is given,
 * so a wrong guess just fails again. */
static void agct_from_caller(cp__agct_trace *trace, void *uc)
{
#if defined(__x86_64__) || defined(__aarch64__)
    ucontext_t copy = *(ucontext_t *)uc;
#if defined(__x86_64__)
    greg_t *sp = (greg_t *)copy.uc_mcontext.gregs[REG_RSP];
    copy.uc_mcontext.gregs[REG_RIP] = *sp; /* our own stack: always mapped */
    copy.uc_mcontext.gregs[REG_RSP] += (greg_t)sizeof(greg_t);
#else
    copy.uc_mcontext.pc = copy.uc_mcontext.regs[30];
#endif
    g_agct(trace, cp__jvm.walk_depth, &copy);
#else
    (void)trace, (void)uc;
#endif
}

static void walk(cp__agct_trace *trace, void *uc)
{
    g_agct(trace, cp__jvm.walk_depth, uc);
    if (trace->num_frames == CP__AGCT_UNKNOWN_JAVA) {
        cp__agct_trace retry = *trace;
        agct_from_caller(&retry, uc);
        if (retry.num_frames > 0)
            *trace = retry;
    }
}

/* Fill r with the interrupted stack and who we are. */
static void fill(cp__trace_rec *r, JNIEnv *env, int kind, int64_t weight, cp__thread_slot *self,
                 void *uc)
{
    cp__agct_trace trace = {env, 0, r->frames};

    walk(&trace, uc);
    r->kind = kind;
    r->num_frames = trace.num_frames;
    r->weight = weight;
    r->thread_serial = cp__tls_env != NULL ? cp__tls_serial : 0;
    r->tid = (pid_t)syscall(SYS_gettid);
    r->thread_slot = self != NULL ? cp__threads_index(self) : -1;
    r->wall_seq = self != NULL ? atomic_load(&self->wall_state) >> 1 : 0;
}

static void record(int kind, int64_t weight, void *uc)
{
    int64_t t0 = cp_now_ns();
    JNIEnv *env = current_env();
    cp__thread_slot *self = cp__tls_env != NULL ? cp__threads_self() : NULL;
    cp__trace_rec *r = env != NULL ? cp__store_reserve() : NULL;

    if (r != NULL) {
        fill(r, env, kind, weight, self, uc);
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
    else
        record(kind, weight, uc);
    errno = saved_errno;
}
