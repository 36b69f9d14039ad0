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
#include <internal/pycore_dict.h>
#else
#include <frameobject.h>
#endif
#if PY_VERSION_HEX >= 0x03090000
#include <internal/pycore_interp.h>
#include <internal/pycore_runtime.h>
#else
#include <internal/pycore_pystate.h>
#endif

#include "pyoffsets.h"

#include <string.h>

#define MAXOF(a, b) ((a) > (b) ? (a) : (b))

#if PY_VERSION_HEX >= 0x030B0000
typedef _PyInterpreterFrame cp__frame_t;
#define CP_FR_END(f) (offsetof(cp__frame_t, f) + sizeof(((cp__frame_t *)0)->f))
#endif

/* PyASCIIObject.state as a word, to find where the compiler put each
 * bit-field (set one field in a zeroed object, see which bits moved). */
static uint32_t state_word(const PyASCIIObject *a)
{
    uint32_t w;
    memcpy(&w, (const char *)a + offsetof(PyASCIIObject, state), sizeof w);
    return w;
}

static void str_offsets(cp_pyoff *o)
{
    o->u_length = offsetof(PyASCIIObject, length);
    o->u_state = offsetof(PyASCIIObject, state);
    o->u_ascii_data = sizeof(PyASCIIObject);
    o->u_compact_data = sizeof(PyCompactUnicodeObject);
    PyASCIIObject a;
    memset(&a, 0, sizeof a);
    a.state.kind = 7;
    o->u_kind_shift = (uint32_t)__builtin_ctz(state_word(&a));
    memset(&a, 0, sizeof a);
    a.state.compact = 1;
    o->u_compact_mask = state_word(&a);
    memset(&a, 0, sizeof a);
    a.state.ascii = 1;
    o->u_ascii_mask = state_word(&a);
#if PY_VERSION_HEX >= 0x030C0000
    o->long_tag = offsetof(PyLongObject, long_value.lv_tag);
    o->long_digit = offsetof(PyLongObject, long_value.ob_digit);
#else
    o->long_tag = o->long_digit = CP_OFF_NONE; /* task names are str before 3.12 */
#endif
}

/* Dictionaries, as far as reading asyncio's current-task dict needs. The
 * keys object is private before 3.11 (Objects/dict-common.h, unchanged
 * from 3.6 to 3.10), so its offsets are written out here. */
static void dict_offsets(cp_pyoff *o)
{
    o->dict_used = offsetof(PyDictObject, ma_used);
    o->dict_keys = offsetof(PyDictObject, ma_keys);
    o->dict_values = offsetof(PyDictObject, ma_values);
    o->dict_read = MAXOF(o->dict_values, MAXOF(o->dict_keys, o->dict_used)) + sizeof(void *);
#if PY_VERSION_HEX >= 0x030B0000
    o->dk_modern = 1;
    o->dk_size = CP_OFF_NONE;
    o->dk_log2_index_bytes = offsetof(PyDictKeysObject, dk_log2_index_bytes);
    o->dk_kind = offsetof(PyDictKeysObject, dk_kind);
    o->dk_nentries = offsetof(PyDictKeysObject, dk_nentries);
    o->dk_indices = offsetof(PyDictKeysObject, dk_indices);
    o->dk_entry_general = sizeof(PyDictKeyEntry);
    o->dk_entry_unicode = sizeof(PyDictUnicodeEntry);
    o->dk_value_general = offsetof(PyDictKeyEntry, me_value);
    o->dk_value_unicode = offsetof(PyDictUnicodeEntry, me_value);
#else
    /* dk_refcnt, dk_size, dk_lookup, dk_usable, dk_nentries, dk_indices[] */
    o->dk_modern = 0;
    o->dk_size = sizeof(Py_ssize_t);
    o->dk_log2_index_bytes = o->dk_kind = CP_OFF_NONE;
    o->dk_nentries = 4 * sizeof(Py_ssize_t);
    o->dk_indices = 5 * sizeof(Py_ssize_t);
    o->dk_entry_general = o->dk_entry_unicode = 3 * sizeof(void *); /* hash, key, value */
    o->dk_value_general = o->dk_value_unicode = 2 * sizeof(void *);
#endif
}

static void gen_offsets(cp_pyoff *o)
{
#if PY_VERSION_HEX >= 0x030B0000
    o->fr_gen = CP_OFF_NONE;
    o->gen_iframe = offsetof(PyGenObject, gi_iframe);
#else
    o->fr_gen = offsetof(PyFrameObject, f_gen);
    o->gen_iframe = CP_OFF_NONE;
    o->fr_read = MAXOF(o->fr_read, o->fr_gen + sizeof(void *));
#endif
}

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
    o.fr_is_entry = CP_OFF_NONE;
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
    /* Each eval call pushes a C-stack-owned shim below its first frame. */
    o.owner_cstack = FRAME_OWNED_BY_CSTACK;
    o.fr_is_entry = CP_OFF_NONE;
#elif PY_VERSION_HEX >= 0x030B0000
    o.owner_cstack = -1;
    o.fr_is_entry = offsetof(cp__frame_t, is_entry);
    o.fr_read = MAXOF(o.fr_read, CP_FR_END(is_entry));
#endif
#if PY_VERSION_HEX >= 0x030B0000
    o.fr_read = MAXOF(o.fr_read, o.fr_code + sizeof(void *));
    o.fr_read = MAXOF(o.fr_read, o.fr_instr + sizeof(void *));
#endif
    gen_offsets(&o);
    dict_offsets(&o);
    str_offsets(&o);
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

/* The garbage collector's state lives in the runtime (3.8) or in each
 * interpreter (3.9+); gc.get_count() reads the same three fields. */
void cp__pyoff_gc_counts(int out[3])
{
#if PY_VERSION_HEX >= 0x03090000
    struct _gc_runtime_state *gc = &PyInterpreterState_Main()->gc;
#else
    struct _gc_runtime_state *gc = &_PyRuntime.gc;
#endif
    for (int i = 0; i < 3; i++)
        out[i] = gc->generations[i].count;
}

/* The main interpreter's GIL: in the runtime before 3.12, then behind
 * the interpreter's ceval state (the main one's lives as long as the
 * process). last_holder is the thread state that took it last, locked
 * whether it is held now. */
void cp__pyoff_gil(const volatile uintptr_t **holder, const volatile int **locked)
{
#if PY_VERSION_HEX >= 0x030C0000
    struct _gil_runtime_state *gil = PyInterpreterState_Main()->ceval.gil;
#else
    struct _gil_runtime_state *gil = &_PyRuntime.ceval.gil;
#endif
    *holder = (const volatile uintptr_t *)(const void *)&gil->last_holder;
    *locked = (const volatile int *)(const void *)&gil->locked;
}

struct _object **cp__pyoff_frame_locals(struct _frame *f)
{
#if PY_VERSION_HEX >= 0x030D0000
    (void)f;
    return NULL;
#elif PY_VERSION_HEX >= 0x030B0000
    return f->f_frame ? &f->f_frame->f_locals : NULL;
#else
    return &f->f_locals;
#endif
}
