/*
 * cthreads.h — CPU samples of the process's threads that run no Python
 * (threads a C extension or library started itself), with their native
 * stacks (setting native_frames). Sampler thread only, except
 * cp__cthreads_name.
 */
#ifndef CP_CTHREADS_H
#define CP_CTHREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rawring.h"

/* Forget every thread (a new start, or a forked child). */
void cp__cthreads_reset(void);

/* One CPU tick: list the process's threads now and then, read the CPU
 * clocks of those that are neither Python threads nor the profiler's, and
 * for each that ran emit a sample (its CPU since the last reading, its
 * native stack) into ring. Whether any ran since the last tick. */
bool cp__cthreads_tick(int64_t now, int64_t interval_ns, cp_rawring *ring);

/* Any thread: the name of native thread tid as sampled (its comm), into
 * out. False when tid is not one of them. */
bool cp__cthreads_name(uint64_t tid, char *out, size_t n);

#endif
