/*
 * pyasync.c — the current asyncio task of a thread, for the `task name`
 * label (see pyasync.h). Every read is fault-safe (saferead), every
 * pointer is range-checked before use, and torn reads at worst leave a
 * sample unlabelled: a task is only reported for a thread whose stack
 * holds that task's own coroutine.
 */
#include <Python.h>

#include "pyasync.h"
#include "pyoffsets.h"
#include "saferead.h"

#include <stdatomic.h>
#include <string.h>

#define TASKS_MAX 16       /* current tasks looked at (one per running loop) */
#define ENTRIES_MAX 32     /* dict entries read (used + deleted slots)       */
#define SUBTYPES 4         /* Task subclasses remembered                     */
#define USER_ADDR_MAX ((uintptr_t)1 << 57)
#define OBJ_MAX 512        /* bytes of a task object read, at most           */
#define RECENT_MAX 32      /* tasks seen current lately, for older stacks    */
#define RECENT_TICKS 200   /* ... kept this many ticks (~2 s at 100 Hz)      */

typedef struct aiotask {
    uint64_t coro, name;
} aiotask;

/* A task seen current at tick `tick`: a stack captured a little earlier
 * (a thread's own CPU-timer capture, native frames) is matched against it
 * once the loop has moved on to another task. */
typedef struct recent {
    uint64_t task, coro, tick;
} recent;

static struct {
    _Atomic uintptr_t current; /* 0 = not armed; published last             */
    uintptr_t task_type;
    size_t coro_off, name_off;
    /* sampler thread only */
    bool read_this_tick;
    uint32_t ntasks;
    aiotask tasks[TASKS_MAX];
    uint64_t subtypes[SUBTYPES];
    uint32_t nsub;
    uint64_t tick;
    recent recent[RECENT_MAX];
} g_aio;

void cp__aio_set(uintptr_t current, uintptr_t task_type, size_t coro_off, size_t name_off)
{
    atomic_store(&g_aio.current, 0);
    memset(g_aio.recent, 0, sizeof g_aio.recent);
    g_aio.task_type = task_type;
    g_aio.coro_off = coro_off;
    g_aio.name_off = name_off;
    atomic_store(&g_aio.current, current);
}

bool cp__aio_armed(void)
{
    return atomic_load_explicit(&g_aio.current, memory_order_relaxed) != 0;
}

void cp__aio_new_tick(void)
{
    g_aio.read_this_tick = false;
    g_aio.tick++;
}

static bool plausible(uint64_t p)
{
    return p >= 4096 && p < USER_ADDR_MAX && (p & 7) == 0;
}

static uint64_t u64_at(const uint8_t *b, size_t off)
{
    uint64_t v;
    memcpy(&v, b + off, sizeof v);
    return v;
}

/* _asyncio.Task, or a class derived from it directly (same C layout). */
static bool is_task_type(uint64_t type)
{
    if (type == g_aio.task_type)
        return true;
    for (uint32_t i = 0; i < g_aio.nsub; i++)
        if (g_aio.subtypes[i] == type)
            return true;
    uint64_t base = 0;
    if (!plausible(type) || !cp__saferead(&base, (uintptr_t)type + offsetof(PyTypeObject, tp_base), 8) ||
        base != g_aio.task_type)
        return false;
    g_aio.subtypes[g_aio.nsub++ % SUBTYPES] = type;
    if (g_aio.nsub > SUBTYPES)
        g_aio.nsub = SUBTYPES;
    return true;
}

/* Read task: a Task (or subclass) now? Then its coroutine and name. */
static bool read_task(uint64_t task, uint64_t *coro, uint64_t *name)
{
    uint8_t b[OBJ_MAX];
    size_t n = (g_aio.coro_off > g_aio.name_off ? g_aio.coro_off : g_aio.name_off) + 8;
    if (!plausible(task) || n > sizeof b || !cp__saferead(b, (uintptr_t)task, n) ||
        !is_task_type(u64_at(b, offsetof(PyObject, ob_type))))
        return false;
    *coro = u64_at(b, g_aio.coro_off);
    *name = u64_at(b, g_aio.name_off);
    return true;
}

static void take_task(uint64_t task)
{
    uint64_t coro, name;
    if (g_aio.ntasks >= TASKS_MAX || !read_task(task, &coro, &name))
        return;
    g_aio.tasks[g_aio.ntasks++] = (aiotask){coro, name};
    /* Remember it (the same entry again, else the oldest one). */
    recent *slot = &g_aio.recent[0];
    for (size_t i = 0; i < RECENT_MAX; i++) {
        recent *r = &g_aio.recent[i];
        if (r->task == task && r->coro == coro) {
            slot = r;
            break;
        }
        if (r->tick < slot->tick)
            slot = r;
    }
    *slot = (recent){task, coro, g_aio.tick};
}

static bool read_name(uint64_t obj, char *out, size_t cap);

/* A task seen current lately whose coroutine is one of gens, read again
 * now (still a task, still running that coroutine): its name into out. */
static bool recent_task_of(const uint64_t *gens, uint32_t n, char *out, size_t cap)
{
    for (size_t i = 0; i < RECENT_MAX; i++) {
        const recent *r = &g_aio.recent[i];
        if (!r->task || g_aio.tick - r->tick > RECENT_TICKS)
            continue;
        for (uint32_t k = 0; k < n; k++) {
            if (gens[k] != r->coro)
                continue;
            uint64_t coro, name;
            if (!read_task(r->task, &coro, &name) || coro != r->coro)
                return false;
            return read_name(name, out, cap);
        }
    }
    return false;
}

/* Bytes of the keys object's index table. */
static size_t index_bytes(const cp_pyoff *o, const uint8_t *k)
{
    if (o->dk_modern)
        return k[o->dk_log2_index_bytes] < 32 ? (size_t)1 << k[o->dk_log2_index_bytes] : 0;
    uint64_t size = u64_at(k, o->dk_size);
    return size * (size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffull ? 4 : 8);
}

/* The dict's values, each a candidate task. */
static void read_current(void)
{
    const cp_pyoff *o = cp__pyoff();
    uint8_t d[64], k[64], e[ENTRIES_MAX * 24];
    g_aio.ntasks = 0;
    uintptr_t dict = atomic_load(&g_aio.current);
    if (!dict || o->dict_read > sizeof d || o->dk_indices > sizeof k || !cp__saferead(d, dict, o->dict_read))
        return;
    uint64_t keys = u64_at(d, o->dict_keys);
    if ((int64_t)u64_at(d, o->dict_used) <= 0 || u64_at(d, o->dict_values) != 0 || !plausible(keys) ||
        !cp__saferead(k, (uintptr_t)keys, o->dk_indices))
        return;
    bool general = !o->dk_modern || k[o->dk_kind] == 0;
    size_t esize = general ? o->dk_entry_general : o->dk_entry_unicode;
    size_t voff = general ? o->dk_value_general : o->dk_value_unicode;
    int64_t n = (int64_t)u64_at(k, o->dk_nentries);
    size_t ib = index_bytes(o, k);
    if (n <= 0 || ib == 0 || ib > ((size_t)1 << 30) || esize > 24)
        return;
    if (n > ENTRIES_MAX)
        n = ENTRIES_MAX;
    if (!cp__saferead(e, (uintptr_t)keys + o->dk_indices + ib, (size_t)n * esize))
        return;
    for (int64_t i = 0; i < n; i++) {
        uint64_t v = u64_at(e, (size_t)i * esize + voff);
        if (v)
            take_task(v);
    }
}

/* ---- names ---------------------------------------------------------- */

/* Append code point c as UTF-8 if it fits (with room for the NUL). */
static bool put_utf8(char *out, size_t cap, size_t *len, uint32_t c)
{
    uint8_t u[4];
    size_t k;
    if (c < 0x80) {
        u[0] = (uint8_t)c;
        k = 1;
    } else if (c < 0x800) {
        u[0] = (uint8_t)(0xC0 | (c >> 6));
        u[1] = (uint8_t)(0x80 | (c & 0x3F));
        k = 2;
    } else if (c < 0x10000) {
        u[0] = (uint8_t)(0xE0 | (c >> 12));
        u[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (uint8_t)(0x80 | (c & 0x3F));
        k = 3;
    } else if (c < 0x110000) {
        u[0] = (uint8_t)(0xF0 | (c >> 18));
        u[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        u[3] = (uint8_t)(0x80 | (c & 0x3F));
        k = 4;
    } else {
        return false;
    }
    if (*len + k >= cap)
        return false;
    memcpy(out + *len, u, k);
    *len += k;
    return true;
}

/* A compact str object's text as UTF-8 (legacy, non-compact strings are
 * not read: asyncio makes every name with PyUnicode_FromFormat or str()). */
static bool str_name(const cp_pyoff *o, const uint8_t *h, uint64_t obj, char *out, size_t cap)
{
    uint32_t state;
    memcpy(&state, h + o->u_state, sizeof state);
    int64_t length = (int64_t)u64_at(h, o->u_length);
    uint32_t kind = (state >> o->u_kind_shift) & 7;
    if (!(state & o->u_compact_mask) || length < 0 || (kind != 1 && kind != 2 && kind != 4))
        return false;
    bool ascii = (state & o->u_ascii_mask) != 0;
    size_t chars = (size_t)length < cap - 1 ? (size_t)length : cap - 1;
    uint8_t data[(CP_TASK_NAME_MAX - 1) * 4];
    if (chars * kind > sizeof data ||
        (chars && !cp__saferead(data, (uintptr_t)obj + (ascii ? o->u_ascii_data : o->u_compact_data), chars * kind)))
        return false;
    size_t len = 0;
    for (size_t i = 0; i < chars; i++) {
        uint32_t c = kind == 1 ? data[i] : kind == 2 ? ((const uint16_t *)(const void *)data)[i]
                                                     : ((const uint32_t *)(const void *)data)[i];
        if (!put_utf8(out, cap, &len, c))
            break;
    }
    out[len] = 0;
    return len > 0;
}

/* 3.12+ leave a default name as its number until get_name() asks: it reads
 * "Task-<number>", as get_name() would make it. */
static bool int_name(const cp_pyoff *o, const uint8_t *h, char *out, size_t cap)
{
    uint64_t tag = u64_at(h, o->long_tag), v = 0;
    uint64_t ndigits = tag >> 3;
    uint32_t dig[3] = {0, 0, 0};
    if ((tag & 3) == 2 || ndigits > 2)
        return false; /* negative, or beyond any task counter */
    memcpy(dig, h + o->long_digit, sizeof dig[0] * 2);
    for (uint64_t i = ndigits; i-- > 0;)
        v = (v << 30) | (dig[i] & 0x3FFFFFFFu);
    char num[24];
    size_t n = 0;
    do {
        num[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (5 + n >= cap)
        return false;
    memcpy(out, "Task-", 5);
    for (size_t i = 0; i < n; i++)
        out[5 + i] = num[n - 1 - i];
    out[5 + n] = 0;
    return true;
}

static bool read_name(uint64_t obj, char *out, size_t cap)
{
    const cp_pyoff *o = cp__pyoff();
    uint8_t h[128];
    size_t span = o->u_compact_data;
    if (o->long_tag != CP_OFF_NONE && o->long_digit + 8 > span)
        span = o->long_digit + 8;
    if (!plausible(obj) || span > sizeof h || !cp__saferead(h, (uintptr_t)obj, span))
        return false;
    uint64_t type = u64_at(h, offsetof(PyObject, ob_type));
    if (type == (uint64_t)(uintptr_t)&PyUnicode_Type)
        return str_name(o, h, obj, out, cap);
    if (type == (uint64_t)(uintptr_t)&PyLong_Type && o->long_tag != CP_OFF_NONE)
        return int_name(o, h, out, cap);
    return false;
}

bool cp__aio_task_of(const uint64_t *gens, uint32_t n, char *out, size_t cap)
{
    out[0] = 0;
    if (n == 0 || cap < 8 || !cp__aio_armed())
        return false;
    if (!g_aio.read_this_tick) {
        read_current();
        g_aio.read_this_tick = true;
    }
    for (uint32_t t = 0; t < g_aio.ntasks; t++)
        for (uint32_t i = 0; i < n; i++)
            if (gens[i] == g_aio.tasks[t].coro)
                return read_name(g_aio.tasks[t].name, out, cap);
    return recent_task_of(gens, n, out, cap);
}

/* ---- arming (GIL held) ---------------------------------------------- */

/* Where in a Task object the pointer p sits (a word-aligned offset past
 * the object header), or 0. */
static size_t slot_of(PyObject *obj, PyObject *p)
{
    const uintptr_t *w = (const uintptr_t *)(const void *)obj;
    size_t words = (size_t)Py_TYPE(obj)->tp_basicsize / sizeof(uintptr_t);
    size_t found = 0;
    for (size_t i = 2; i < words; i++) {
        if (w[i] != (uintptr_t)p)
            continue;
        if (found)
            return 0; /* twice: ambiguous */
        found = i * sizeof(uintptr_t);
    }
    return found;
}

PyObject *cp__aio_arm(PyObject *self, PyObject *args)
{
    PyObject *current, *task_type, *task, *coro, *name;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!OOU", &PyDict_Type, &current, &PyType_Type, &task_type, &task, &coro, &name))
        return NULL;
    if (Py_TYPE(task) != (PyTypeObject *)task_type || !PyUnicode_IS_COMPACT(name))
        Py_RETURN_FALSE;
    size_t coro_off = slot_of(task, coro), name_off = slot_of(task, name);
    if (!coro_off || !name_off || coro_off + 8 > OBJ_MAX || name_off + 8 > OBJ_MAX)
        Py_RETURN_FALSE;
    /* Kept alive for the process: the sampler reads them without the GIL. */
    Py_INCREF(current);
    Py_INCREF(task_type);
    cp__aio_set((uintptr_t)current, (uintptr_t)task_type, coro_off, name_off);
    Py_RETURN_TRUE;
}
