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
    size_t fr_read;           /* bytes to read to cover all of the above    */
    int instr_units;          /* f_lasti counts 2-byte units (3.10)          */
    int owner_cstack;         /* FRAME_OWNED_BY_CSTACK, or -1                */
    /* PyCodeObject */
    size_t co_firstlineno, co_code0; /* co_code0: first instruction (3.11+) */
    size_t co_firsttraceable;        /* NONE before 3.11                    */
} cp_pyoff;

/* The layout of the running interpreter. Never NULL; static storage. */
const cp_pyoff *cp__pyoff(void);

#endif
