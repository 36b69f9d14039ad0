/*
 * pywalk.h — turn a Python thread's frame chain into raw frames.
 *
 * Works for every supported layout through cp_pyoff. In "safe" mode every
 * read goes through saferead (other threads, no GIL); in "direct" mode it
 * dereferences (the calling thread's own stack, GIL held). Walks are
 * bounded in depth and so terminate even on a corrupt (cyclic) chain.
 *
 * Safe mode is built to need few syscalls: 3.11+ frames live in the
 * thread's contiguous data stack, so one vectored read copies a window of
 * pages below the top frame and most of the chain is walked in that copy;
 * code-object facts come from a small cache that the sampler empties every
 * few ticks (cp__walk_new_epoch).
 */
#ifndef CP_PYWALK_H
#define CP_PYWALK_H

#include <stdbool.h>
#include <stdint.h>

#include "rawring.h"

/* Hard bound on frames visited per walk, whatever max_frames says. */
#define CP_WALK_MAX 2048

/* A snapshot of the thread-state fields the sampler needs. */
typedef struct cp_tsinfo {
    uintptr_t next, interp, frame; /* frame: see cp__ts_top                */
    uint64_t thread_id, native_id; /* native_id 0 when the layout lacks it */
} cp_tsinfo;

/* Read the thread state at ts. False if unreadable. */
bool cp__ts_read(uintptr_t ts, bool direct, cp_tsinfo *out);

/* For batched reads: how many bytes of a thread state to read (at most
 * 512), and how to decode them. */
size_t cp__ts_span(void);
void cp__ts_parse(const uint8_t *b, cp_tsinfo *out);

/* The thread's top frame (0 = none). Costs a read on 3.11/3.12, where
 * the thread state points to a _PyCFrame first; hence done lazily. */
uintptr_t cp__ts_top(const cp_tsinfo *ti, bool direct);

/* Walk from top (leaf) outwards; stores up to cap frames in out and returns
 * how many; *omitted gets the number of further frames seen (omitted NULL:
 * the walk stops at cap). Safe mode is for the sampler thread only (it
 * uses that thread's buffers). */
uint32_t cp__walk(uintptr_t top, bool direct, cp_rawframe *out, uint32_t cap, uint32_t *omitted);

/* Generators (and coroutines) whose frames the sampler's last safe-mode
 * walk went through: at most CP_WALK_GENS, the outermost, outermost last.
 * Stored in out; returns how many. Sampler thread only, right after its
 * cp__walk; cp__walk_self hands its own back directly. */
#define CP_WALK_GENS 4
uint32_t cp__walk_gens(uint64_t *out);

/* Where one eval-loop call's frames end: n[k] is how many of the frames
 * stored by the walk belong to the k-th _PyEval_EvalFrameDefault call
 * counted from the leaf (may be 0: a call whose frames were all skipped,
 * or that has not pushed one yet). 3.8-3.10 run one frame per call; 3.11
 * marks a call's first frame (is_entry); 3.12+ put a C-stack-owned shim
 * frame below it. */
typedef struct cp_evalgroups {
    uint16_t *n;
    uint32_t cap, count;
} cp_evalgroups;

/* cp__walk in safe mode (sampler thread), also filling g. */
uint32_t cp__walk_groups(uintptr_t top, cp_rawframe *out, uint32_t cap, uint32_t *omitted,
                         cp_evalgroups *g);

/* Where a thread's last walk found its frames (the sampler's, or the
 * thread's own handler's): the next walk of that thread copies those
 * ranges, and the word that locates its top frame, in one read before
 * walking, so a thread whose frames stayed in place costs one syscall.
 * 3.11+ frames share a few data-stack chunks (a window each); before 3.11
 * every frame is an object of its own, hence room for a deep stack's. */
#define CP_WALKHINT_MAX 64
typedef struct cp_walkhint {
    uint32_t n;
    uint32_t len[CP_WALKHINT_MAX];
    uintptr_t addr[CP_WALKHINT_MAX];
} cp_walkhint;

/* Safe mode, sampler thread: copy the ranges of hint (may be NULL) and
 * return the thread's top frame (what cp__ts_top gives), in one read.
 * cp__walk then reads from those copies first, until
 * cp__walk_hint_save stores the ranges this walk used into hint (and
 * forgets the copies). */
uintptr_t cp__walk_prefetch(const cp_tsinfo *ti, const cp_walkhint *hint);
void cp__walk_hint_save(cp_walkhint *hint);

/* Signal-safe (saferead only; no lock, no allocation): the Python frames
 * of the calling thread, whose thread state is ts, as cp__walk_groups
 * would read them, and the outermost generators it went through (gens,
 * CP_WALK_GENS, see cp__walk_gens). Up to CP_WALK_SELF_BUFS threads may
 * run it at once; a further one gets 0. 0 when ts is not thread_id's.
 * hint (the caller's, per thread; may be NULL) works as the sampler's:
 * read with the top's locator, then set to the ranges this walk used. */
#define CP_WALK_SELF_BUFS 4
uint32_t cp__walk_self(uintptr_t ts, uint64_t thread_id, cp_walkhint *hint, cp_rawframe *out, uint32_t cap,
                       uint32_t *omitted, cp_evalgroups *g, uint64_t *gens, uint32_t *ngens);

/* Did the sampler's last walk meet a code object that had died? Its thread
 * returned from frames while they were read: they are of no one moment,
 * and the dead one's frame is stored as code 0. cp__walk_forget drops the
 * copies cp__walk_prefetch made, for a walk again from a fresh top. */
bool cp__walk_torn(void);
void cp__walk_forget(void);

/* Forget cached code-object facts (sampler thread; call every few ticks so
 * a freed and reused address is not trusted for long). */
void cp__walk_new_epoch(void);

#endif
