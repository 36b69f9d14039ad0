/*
 * fixtures.h — known-answer profiles for the explorer tests, built with
 * the core's encoder (never hand-made bytes), plus the upload formats
 * around them: event.json, v2.4 multipart bodies, exporter-style files.
 */
#ifndef EX_TEST_FIXTURES_H
#define EX_TEST_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contprof.h"

/* Sample types by name, e.g. fx_new("cpu-time,cpu-samples,wall-time"):
 * units follow the DESIGN.md pairs (…-time → nanoseconds, …-space →
 * bytes, everything else count). Aborts the test program on failure. */
cp_profile *fx_new(const char *types_csv);

/* Add one sample: folded stack, ROOT FIRST ("main;handle;parse"; a frame
 * "name@N" is at line N, else its depth from the leaf, 1-based), one
 * value per type, a numeric "thread id" (0 = none) and a thread name
 * (NULL = none). */
void fx_add(cp_profile *p, const char *folded, const int64_t *values, int64_t tid, const char *tname);

/* Encode gzip'd into out (initialised by the call), with time and
 * duration set. Frees nothing. */
void fx_encode(cp_profile *p, int64_t start_ns, int64_t dur_ns, cp_buf *out);

/* Encode p (gzip'd, starting now, dur_ns long), free it, and decode the
 * bytes with the core's cp_pprof_decode. Caller frees the result. */
cp_pprof *fx_decoded(cp_profile *p, int64_t dur_ns);

/* An event.json as the core's uploader writes it. Caller frees. info
 * may be NULL. */
char *fx_event(const char *tags, int64_t start_ns, int64_t end_ns, const char *info_json);

/* A v2.4 multipart body with boundary "fxBOUNDARY" (event + auto.pprof). */
void fx_multipart(cp_buf *out, const char *event, const uint8_t *pprof, size_t len);
/* The same with n attachments (name i holds pprofs[i]), as dd-trace sends. */
void fx_multipart_n(cp_buf *out, const char *event, const char *const *names, const cp_buf *pprofs, size_t n);
#define FX_CONTENT_TYPE "multipart/form-data; boundary=fxBOUNDARY"

/* A plain (not gzip'd) pprof with one cpu-time sample of value whose
 * stack is depth frames: main (root) → mid … mid → leaf_fn (leaf), file
 * deep.py. Written field by field because the core's encoder caps stacks
 * at 599 frames; the other fixtures all come from the encoder. */
void fx_deep_pprof(size_t depth, int64_t value, cp_buf *out);

/* <dir>/<base>.pprof.gz (+ <base>.json when event != NULL). */
void fx_write_pair(const char *dir, const char *base, const cp_buf *pprof, const char *event);

/* A fresh empty directory under the test binary dir; caller frees. */
char *fx_tmpdir(const char *name);

/* Remove a directory made by fx_tmpdir (and free the path). */
void fx_rmtree(char *path);

/* Now, Unix ns, rounded to whole ms (times round-trip through the API). */
int64_t fx_now_ns(void);

#endif /* EX_TEST_FIXTURES_H */
