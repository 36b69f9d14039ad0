/*
 * pyasync.h — which asyncio task a thread is running, read by the sampler
 * thread without the GIL.
 *
 * asyncio (3.8–3.13, C accelerated `_asyncio`) keeps one dict of the task
 * each running loop is stepping right now (`_asyncio._current_tasks`,
 * loop -> task; the same object as `asyncio.tasks._current_tasks`). A task
 * is stepped by sending into its coroutine, so while it runs, its
 * coroutine's frame is on the stack of exactly one thread. The sampler
 * notes the generators whose frames a walk went through (pywalk.h) and
 * asks here which current task owns one of them: one fault-safe read of
 * the dict, its entries and each current task per tick (only in ticks
 * where some thread runs a coroutine), none per frame. A thread that runs
 * no task, or a task of a type other than `_asyncio.Task` and its
 * subclasses, gets no label; nothing is ever guessed.
 */
#ifndef CP_PYASYNC_H
#define CP_PYASYNC_H

#include <Python.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest task name kept (bytes, with the NUL); longer ones are cut at a
 * UTF-8 character boundary. */
#define CP_TASK_NAME_MAX 128

/* Arm the reader (GIL held, any thread): current is the current-task dict,
 * task_type `_asyncio.Task`, and coro_off/name_off where a task holds its
 * coroutine and its name. Safe while the sampler runs. */
void cp__aio_set(uintptr_t current, uintptr_t task_type, size_t coro_off, size_t name_off);

/* Python: asyncio_arm(current_tasks, Task, probe_task, its_coro, its_name)
 * -> bool. Finds where probe_task (a Task made for this) holds its
 * coroutine and name, then arms the reader. */
PyObject *cp__aio_arm(PyObject *self, PyObject *args);

/* Whether cp__aio_set has armed the reader. */
bool cp__aio_armed(void);

/* Sampler thread: forget this tick's reading of the current tasks. */
void cp__aio_new_tick(void);

/* Sampler thread: the name of the current task whose coroutine is one of
 * gens[0..n) into out (cap bytes, NUL-terminated); false (out = "") when
 * none is. Reads the current tasks at most once per tick. */
bool cp__aio_task_of(const uint64_t *gens, uint32_t n, char *out, size_t cap);

#endif
