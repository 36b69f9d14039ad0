/*
 * pynative.h — native frames for the Python sampler (setting native_frames).
 *
 * The sampler thread asks a running thread for its stacks with a
 * real-time signal; the thread unwinds itself in the handler (the core's
 * cp_native_unwind) and walks its own Python frames there too (fault-safe
 * reads), so both stacks are of one moment (py-spy suspends the process
 * for the same reason; echion also samples in a handler). The merge then puts
 * the Python frames of each eval-loop call where that call's
 * _PyEval_EvalFrameDefault frame is, and C frames called from Python below
 * the Python line that called them. See docs/DECISIONS.md.
 */
#ifndef CP_PYNATIVE_H
#define CP_PYNATIVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pywalk.h"
#include "rawring.h"

#define CP_PYN_MAX 128 /* native frames per unwind */

/* Counters (monotonic since load). */
typedef struct cp_pyn_stats {
    uint64_t requests;   /* signals sent                                  */
    uint64_t answered;   /* unwinds received in time                      */
    uint64_t timeouts;   /* no answer within the wait: Python-only sample */
    uint64_t native_threads; /* threads without Python frames adopted     */
} cp_pyn_stats;

/* GIL held: prepare the unwinder, take a free real-time signal and find the
 * interpreter's eval loop. False (logged once) when native frames cannot be
 * had; the caller then samples Python frames only. Idempotent. */
bool cp__pyn_start(void);

/* Whether cp__pyn_start succeeded. */
bool cp__pyn_ready(void);

/* The signal taken (0 = none). */
int cp__pyn_signal(void);

#define CP_PYN_PY_MAX 600 /* Python frames per request (max_frames <= 599) */

/* What a thread reported of itself: native pcs (leaf first; pcs[0] the
 * interrupted pc) and its Python frames at the same moment. The caller
 * provides py and g.n with room for g.cap frames. */
typedef struct cp_pyn_sample {
    uintptr_t pcs[CP_PYN_MAX];
    int npcs;
    cp_rawframe *py;
    uint32_t npy, py_omitted;
    cp_evalgroups g;
    uint64_t gens[CP_WALK_GENS]; /* outermost generators (cp__walk_gens) */
    uint32_t ngens;
} cp_pyn_sample;

/* Sampler thread: have thread tid unwind itself now and, when ts is not 0,
 * walk its Python frames (thread state ts of thread_id) in the same signal
 * handler. Waits (bounded, see cp__pyn_tick_begin) for the answer; false
 * when none came in time (counted). The thread never waits for the
 * sampler. */
bool cp__pyn_capture(pid_t tid, uintptr_t ts, uint64_t thread_id, cp_pyn_sample *out);

/* Per-thread CPU timers: the way Python threads give their stacks.
 * A signal the sampler sends reaches a thread at its next return to user
 * mode, late enough in a VM (10-30 us) that a thread making frequent
 * system calls takes nearly all of them at a system call's return (see
 * docs/DECISIONS.md). A CPU-time timer on the thread's own clock is raised
 * by the tick on the thread's CPU and taken at that interrupt's exit,
 * wherever the thread is; its handler stores both stacks in the thread's
 * capture, which the sampler takes when it charges the thread's CPU.
 *
 * Sampler thread: make sure timer slot idx (< CP_PYN_TIMERS) fires every
 * interval_ns of thread tid's CPU and captures up to cap Python frames of
 * thread state ts / thread_id. When it makes a new timer, *seq is set so
 * that cp__pyn_take ignores what the slot held before. False when no timer
 * can be made (then ask with cp__pyn_capture). */
#define CP_PYN_TIMERS 1024
bool cp__pyn_timer_sync(int idx, pid_t tid, uintptr_t ts, uint64_t thread_id, uint32_t cap,
                        int64_t interval_ns, uint32_t *seq);

/* Young threads' own timers. A thread that lives a millisecond is seldom
 * found by a sampler tick, and the ticks that do find such threads are
 * not a fair draw of their CPU (the sampler thread is scheduled among
 * them). So each threading.Thread arms, as its Python code begins, a timer
 * on its own CPU clock that fires at every kernel tick that finds it
 * running (first expiry at once), and keeps one of those ticks' captures
 * at random: a uniform draw over its CPU, which its exit report carries.
 *
 * The thread itself, holding the GIL: claim an entry and arm its timer
 * (Python frames of ts / thread_id, up to cap); its handle, or -1 when no
 * entry is free or no timer can be made. A thread whose timer found it
 * running at more than 4 ticks is no short one: its entry may be taken
 * for another, and its handle then does nothing. */
#define CP_PYN_YOUNG 256
int cp__pyn_young_arm(uintptr_t ts, uint64_t thread_id, uint32_t cap);
/* The thread itself, as its Python code ends: delete the timer (a signal
 * still pending is discarded with it). */
void cp__pyn_young_stop(int h);
/* Sampler: the capture handle h's entry kept, into out; false if none (no kernel
 * tick found the thread running, or its timer is still armed). */
bool cp__pyn_young_take(int h, cp_pyn_sample *out);
/* Sampler (or the thread, when its report could not be queued): handle
 * h's entry is free again. */
void cp__pyn_young_release(int h);
/* Stop every young timer (the profiler stops; the signal was taken). */
void cp__pyn_young_stop_all(void);

/* Sampler thread: delete slot idx's timer (its thread ended or changed). */
void cp__pyn_timer_drop(int idx);

/* Sampler thread: the capture slot idx's handler stored since *seq was
 * taken, into out (py and g.n as for cp__pyn_capture); false if none. */
bool cp__pyn_take(int idx, uint32_t *seq, cp_pyn_sample *out);

/* The CPU a thread must have used since its last charged sample before it
 * is asked for its stacks: a request (a signal, the thread's own unwind and
 * Python walk, the sampler's wait and merge) costs ~50-80 us of CPU in a
 * VM, so it is made once per ~interval of the thread's CPU at most. Less
 * CPU stays on the thread's clock and is charged, with the stack of that
 * moment, at the tick where it completes (a CPU timer's semantics). On a
 * loaded machine a running thread gets a fraction of each interval: asking
 * at every tick it ran made 2-3 requests per interval of its CPU. 3/4 of
 * an interval, because ticks are jittered +-25%: a thread that runs all
 * the time is still asked at every tick. */
static inline int64_t cp__pyn_min_cpu_ns(int64_t interval_ns) { return interval_ns - interval_ns / 4; }

/* Sampler thread: while word is set, every expiry of a thread's CPU timer
 * (cp__pyn_timer_sync, young timers) moves *word from 0 to 2 and wakes a
 * futex wait on it (the sampler's quiet mode, sampler.c); NULL: off. */
void cp__pyn_kick_on(_Atomic uint32_t *word);
/* Sampler thread, at each tick: the requests of one tick wait 20 ms in all
 * at most (one request: 20 ms). */
void cp__pyn_tick_begin(void);

/* Merge pcs (leaf first; pcs[0] the interrupted pc) with the thread's
 * Python frames py[0..npy) (leaf first, eval calls in g) into out: native
 * frames of the interpreter itself are dropped, each eval-loop frame is
 * replaced by its call's Python frames, and native frames below the
 * outermost Python frame (thread start-up) are left out. Frames beyond
 * cap are counted in *omitted (which keeps py_omitted). Not async-signal
 * safe (names pcs through the core's symboliser). */
uint32_t cp__pyn_merge(const uintptr_t *pcs, int npcs, const cp_rawframe *py, uint32_t npy,
                       uint32_t py_omitted, const cp_evalgroups *g, cp_rawframe *out, uint32_t cap,
                       uint32_t *omitted);

/* pcs as raw native frames (a thread with no Python frame). */
uint32_t cp__pyn_native_only(const uintptr_t *pcs, int npcs, cp_rawframe *out, uint32_t cap,
                             uint32_t *omitted);

/* Forget the classes of pcs outside the interpreter's own code (every few
 * ticks: objects may be unloaded; the interpreter is not). */
void cp__pyn_new_epoch(void);

/* In a forked child: no request is in flight, and no timer exists. */
void cp__pyn_forget(void);

void cp__pyn_stats_get(cp_pyn_stats *out);

/* Runtime info "native_stacks": these counters and the core unwinder's. */
void cp__pyn_publish(void);

/* The same as a JSON string (static buffer; GIL held). */
const char *cp__pyn_stats_json(void);
void cp__pyn_count_native_thread(void);

#endif
