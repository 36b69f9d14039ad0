/*
 * pyoffsets.c — the one translation unit that sees CPython's internal
 * headers. It turns the private layouts (thread state, frames, code
 * objects) of the interpreter it is compiled against into a cp_pyoff table
 * and does nothing else, so that version-specific knowledge stays here.
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_frame.h>
#else
#include <frameobject.h>
#endif

#include "pyoffsets.h"

#define MAXOF(a, b) ((a) > (b) ? (a) : (b))

#if PY_VERSION_HEX >= 0x030B0000
typedef _PyInterpreterFrame cp__frame_t;
#define CP_FR_END(f) (offsetof(cp__frame_t, f) + sizeof(((cp__frame_t *)0)->f))
#endif

static cp_pyoff make_offsets(void)
{
    cp_pyoff o;
    o.ts_next = offsetof(PyThreadState, next);
    o.ts_interp = offsetof(PyThreadState, interp);
    o.ts_thread_id = offsetof(PyThreadState, thread_id);
    o.co_firstlineno = offsetof(PyCodeObject, co_firstlineno);
#if PY_VERSION_HEX >= 0x030B0000
    o.ts_native_id = offsetof(PyThreadState, native_thread_id);
    o.fr_back = offsetof(cp__frame_t, previous);
    o.fr_owner = offsetof(cp__frame_t, owner);
    o.fr_read = MAXOF(CP_FR_END(owner), CP_FR_END(previous));
    o.instr_units = 0;
    o.co_code0 = offsetof(PyCodeObject, co_code_adaptive);
    o.co_firsttraceable = offsetof(PyCodeObject, _co_firsttraceable);
#else
    o.ts_native_id = CP_OFF_NONE;
    o.layout = CP_LAYOUT_FRAMEOBJ;
    o.ts_frame = offsetof(PyThreadState, frame);
    o.cframe_current = CP_OFF_NONE;
    o.fr_back = offsetof(PyFrameObject, f_back);
    o.fr_code = offsetof(PyFrameObject, f_code);
    o.fr_instr = offsetof(PyFrameObject, f_lasti);
    o.fr_owner = CP_OFF_NONE;
    o.fr_read = offsetof(PyFrameObject, f_lasti) + sizeof(int);
    o.instr_units = PY_VERSION_HEX >= 0x030A0000;
    o.owner_cstack = -1;
    o.co_code0 = CP_OFF_NONE;
    o.co_firsttraceable = CP_OFF_NONE;
#endif
#if PY_VERSION_HEX >= 0x030D0000
    o.layout = CP_LAYOUT_IFRAME;
    o.ts_frame = offsetof(PyThreadState, current_frame);
    o.cframe_current = CP_OFF_NONE;
    o.fr_code = offsetof(cp__frame_t, f_executable);
    o.fr_instr = offsetof(cp__frame_t, instr_ptr);
#elif PY_VERSION_HEX >= 0x030B0000
    o.layout = CP_LAYOUT_IFRAME_CFRAME;
    o.ts_frame = offsetof(PyThreadState, cframe);
    o.cframe_current = offsetof(_PyCFrame, current_frame);
    o.fr_code = offsetof(cp__frame_t, f_code);
    o.fr_instr = offsetof(cp__frame_t, prev_instr);
#endif
#if PY_VERSION_HEX >= 0x030C0000
    o.owner_cstack = FRAME_OWNED_BY_CSTACK;
#elif PY_VERSION_HEX >= 0x030B0000
    o.owner_cstack = -1;
#endif
#if PY_VERSION_HEX >= 0x030B0000
    o.fr_read = MAXOF(o.fr_read, o.fr_code + sizeof(void *));
    o.fr_read = MAXOF(o.fr_read, o.fr_instr + sizeof(void *));
#endif
    return o;
}

const cp_pyoff *cp__pyoff(void)
{
    static cp_pyoff off;
    static int done;
    /* Computed once from constants; racing first callers compute equal
     * values, so no lock is needed. */
    if (!done) {
        off = make_offsets();
        done = 1;
    }
    return &off;
}
