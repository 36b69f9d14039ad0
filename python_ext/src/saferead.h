/*
 * saferead.h — fault-safe reads of this process's own memory.
 *
 * The sampler reads other threads' thread states and frames without the
 * GIL; that memory can be freed and unmapped at any moment, so every read
 * goes through the kernel (process_vm_readv on our own pid, or a pipe
 * write when that syscall is not permitted), which reports EFAULT instead
 * of crashing.
 */
#ifndef CP_SAFEREAD_H
#define CP_SAFEREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Pick the mechanism and remember our pid; call at sampler start and again
 * in a forked child. Returns false if no safe mechanism works. */
bool cp__saferead_init(void);

/* True in the pipe fallback mode, whose reads take a mutex: then no
 * signal handler may read through here. */
bool cp__saferead_piped(void);

/* Copy n bytes at addr into dst. Returns true only if all n were read. */
bool cp__saferead(void *dst, uintptr_t addr, size_t n);

/* Two reads in one syscall: returns how many of them completed fully, in
 * order (0, 1 or 2). addr2 may be 0 (then only the first is attempted). */
int cp__saferead2(void *d1, uintptr_t a1, size_t n1, void *d2, uintptr_t a2, size_t n2);

/* Vectored form: elements are read in order and the read stops at the first
 * element that cannot be read whole. Returns the bytes read (-1 if none). */
struct iovec;
long cp__saferead_vec(const struct iovec *loc, const struct iovec *rem, int cnt);

#endif
