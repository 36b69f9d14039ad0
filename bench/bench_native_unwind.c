/*
 * bench_native_unwind.c — cost of one native unwind, per frame.
 *
 * A thread spins at the bottom of a recursion of DEPTH frames (plus its
 * start frames); the main thread signals it N times and its handler times
 * cp_native_unwind with the monotonic clock. Prints ns per unwind and ns
 * per frame (min over rounds and median), and the same for libz frames
 * under compress2 (real compiler-generated CFI, not our own frames); each
 * with the default walk (cfi.c's rows, libunwind only for what they do not
 * cover) and with libunwind for every step.
 * Usage: bench_native_unwind [signals [fast|slow]]   (default 20000, both;
 * one mode alone is for valgrind --tool=callgrind instruction counts)
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>

#include "contprof.h"
#include "unwind.h"

enum { DEPTH = 30, MAXF = 128, ROUNDS = 7 };

static atomic_int g_tid, g_ready, g_done_sig;
static atomic_bool g_stop;
static int64_t g_ns, g_frames;
static volatile uint64_t g_sink;

static void on_sig(int sig, siginfo_t *si, void *uc)
{
    uintptr_t pcs[MAXF];
    cp_unwind_status why;
    int64_t t0 = cp_now_ns();
    int n = cp_native_unwind(uc, pcs, MAXF, &why);
    g_ns += cp_now_ns() - t0;
    g_frames += n;
    atomic_fetch_add(&g_done_sig, 1);
}

__attribute__((noinline)) static void recurse(int d)
{
    if (d > 0) {
        recurse(d - 1);
        g_sink++;
        return;
    }
    atomic_store(&g_ready, 1);
    while (!atomic_load(&g_stop))
        g_sink = g_sink * 31 + 7;
}

static void *spin_main(void *arg)
{
    atomic_store(&g_tid, (int)syscall(SYS_gettid));
    recurse(DEPTH);
    return arg;
}

static void *zlib_main(void *arg)
{
    static unsigned char in[1 << 16], out[1 << 17];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)((i * 7) ^ (i >> 5));
    atomic_store(&g_tid, (int)syscall(SYS_gettid));
    atomic_store(&g_ready, 1);
    while (!atomic_load(&g_stop)) {
        uLongf len = sizeof out;
        compress2(out, &len, in, sizeof in, 6);
    }
    return arg;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run(const char *label, void *(*fn)(void *), int signals)
{
    pthread_t t;
    double per_frame[ROUNDS], per_unwind[ROUNDS], frames = 0;

    atomic_store(&g_stop, false);
    atomic_store(&g_ready, 0);
    pthread_create(&t, NULL, fn, NULL);
    while (!atomic_load(&g_ready))
        sched_yield();
    for (int r = 0; r < ROUNDS; r++) {
        g_ns = g_frames = 0;
        atomic_store(&g_done_sig, 0);
        for (int i = 0; i < signals / ROUNDS; i++) {
            syscall(SYS_tgkill, getpid(), atomic_load(&g_tid), SIGUSR2);
            while (atomic_load(&g_done_sig) <= i)
                sched_yield();
        }
        int n = signals / ROUNDS;
        per_unwind[r] = (double)g_ns / n;
        per_frame[r] = (double)g_ns / (double)(g_frames ? g_frames : 1);
        frames = (double)g_frames / n;
    }
    atomic_store(&g_stop, true);
    pthread_join(t, NULL);
    qsort(per_frame, ROUNDS, sizeof(double), cmp);
    qsort(per_unwind, ROUNDS, sizeof(double), cmp);
    printf("%-28s %5.1f frames/unwind  %8.0f ns/unwind (min %.0f)  %6.0f ns/frame (min %.0f)\n",
           label, frames, per_unwind[ROUNDS / 2], per_unwind[0], per_frame[ROUNDS / 2], per_frame[0]);
}

int main(int argc, char **argv)
{
    int signals = argc > 1 ? atoi(argv[1]) : 20000;
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
    if (cp_native_init() != CP_OK) {
        fprintf(stderr, "cp_native_init failed\n");
        return 1;
    }
    printf("native unwind cost (median of %d rounds, %d signals in all)\n", ROUNDS, signals);
    const char *mode = argc > 2 ? argv[2] : "";
    if (strcmp(mode, "slow") != 0) {
        run("recursion (depth 30)", spin_main, signals);
        run("libz under compress2", zlib_main, signals);
    }
    if (strcmp(mode, "fast") != 0) {
        cp__native_slow_only(true);
        run("recursion, libunwind only", spin_main, signals);
        run("libz, libunwind only", zlib_main, signals);
        cp__native_slow_only(false);
    }
    return 0;
}
