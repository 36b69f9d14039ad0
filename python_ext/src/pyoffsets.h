/*
 * pyoffsets.h — the memory layout of the interpreter this extension was
 * built for, as plain numbers.
 *
 * Only pyoffsets.c includes CPython's internal headers (Py_BUILD_CORE); the
 * sampler reads thread states, frames and code objects through these
 * offsets with fault-safe reads, so no other file depends on private
 * structures.
 */
#ifndef CP_PYOFFSETS_H
#define CP_PYOFFSETS_H

#include <stddef.h>
#include <stdint.h>

#define CP_OFF_NONE ((size_t)-1)

/* How a thread's Python stack is reached and what a frame looks like. */
typedef enum {
    CP_LAYOUT_FRAMEOBJ = 1, /* 3.8–3.10: PyFrameObject chain from tstate->frame */
    CP_LAYOUT_IFRAME_CFRAME, /* 3.11–3.12: tstate->cframe->current_frame      */
    CP_LAYOUT_IFRAME,        /* 3.13: tstate->current_frame                  */
} cp_py_layout;

typedef struct cp_pyoff {
    cp_py_layout layout;
    /* PyThreadState */
    size_t ts_next, ts_interp, ts_thread_id, ts_native_id; /* native: NONE < 3.11 */
    size_t ts_frame;          /* frame / current_frame, or cframe pointer   */
    size_t cframe_current;    /* _PyCFrame.current_frame (3.11–3.12)        */
    /* frame (PyFrameObject or _PyInterpreterFrame) */
    size_t fr_back, fr_code, fr_instr, fr_owner; /* owner: NONE before 3.11 */
    size_t fr_is_entry;       /* 3.11 only: first frame of its eval call    */
    size_t fr_read;           /* bytes to read to cover all of the above    */
    int instr_units;          /* f_lasti counts 2-byte units (3.10)          */
    int owner_cstack;         /* FRAME_OWNED_BY_CSTACK, or -1                */
    /* PyCodeObject */
    size_t co_firstlineno, co_code0; /* co_code0: first instruction (3.11+) */
    size_t co_firsttraceable;        /* NONE before 3.11                    */
    /* asyncio (pyasync.c): which generator runs a frame, current tasks */
    size_t fr_gen;            /* PyFrameObject.f_gen (< 3.11), else NONE    */
    size_t gen_iframe;        /* PyGenObject.gi_iframe (3.11+), else NONE   */
    size_t dict_used, dict_keys, dict_values, dict_read; /* PyDictObject    */
    int dk_modern;            /* 3.11+ keys object (log2 sizes, kinds)      */
    size_t dk_size, dk_log2_index_bytes, dk_kind, dk_nentries, dk_indices;
    size_t dk_entry_general, dk_entry_unicode; /* entry sizes               */
    size_t dk_value_general, dk_value_unicode; /* me_value within an entry  */
    /* str objects: compact layouts only */
    size_t u_length, u_state, u_ascii_data, u_compact_data;
    uint32_t u_kind_shift, u_compact_mask, u_ascii_mask;
    size_t long_tag;          /* _PyLongValue.lv_tag (3.12+), else NONE     */
    size_t long_digit;        /* first 30-bit digit (3.12+)                 */
} cp_pyoff;

/* The layout of the running interpreter. Never NULL; static storage. */
const cp_pyoff *cp__pyoff(void);

/* The main interpreter's gc.get_count(), without creating the tuple it
 * returns (so that reading it does not move it). GIL held. */
void cp__pyoff_gc_counts(int out[3]);

/* Where the main interpreter's GIL records its last holder (a thread
 * state address) and whether it is held, for lock-free reads: a thread
 * holds the GIL iff *locked and *holder is its thread state. */
void cp__pyoff_gil(const volatile uintptr_t **holder, const volatile int **locked);

/* Where frame f keeps the dict its f_locals attribute fills (3.8-3.12: a
 * snapshot holding every local); NULL from 3.13 (a proxy, kept nowhere). */
struct _frame; /* PyFrameObject */
struct _object **cp__pyoff_frame_locals(struct _frame *f);

#endif
