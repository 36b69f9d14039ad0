/*
 * rawring.h — raw samples (code-object addresses + instruction offsets, no
 * strings) and the fixed-slot single-producer/single-consumer ring that
 * carries them from the sampler (or the allocation hook) to the resolver.
 *
 * Producer and consumer never block each other: a full ring drops the
 * sample and counts it. The ring is allocated once at start.
 */
#ifndef CP_RAWRING_H
#define CP_RAWRING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One Python frame as sampled: which code object, where in it. */
typedef struct cp_rawframe {
    uint64_t code;        /* PyCodeObject address                         */
    int32_t offset;       /* byte offset of the instruction, -1 = unknown */
    int32_t firstlineno;  /* co_firstlineno at sample time (identity check) */
} cp_rawframe;

/* A native frame (setting native_frames) in a raw stack: code = its pc,
 * offset = CP_RAW_NATIVE, firstlineno = 1 when the pc is a return address
 * (named at pc - 1), 0 for the interrupted pc. */
#define CP_RAW_NATIVE INT32_MIN
/* A pseudo-frame: offset = CP_RAW_PSEUDO, code = one of cp_raw_pseudo. */
#define CP_RAW_PSEUDO (INT32_MIN + 1)
enum cp_raw_pseudo {
    CP_PSEUDO_THREAD_OUTSIDE, /* [thread start-up and exit] (sampler.c) */
};

/* Whether f is a Python frame (a code object), not a native or pseudo one. */
static inline bool cp_rawframe_is_python(const struct cp_rawframe *f)
{
    return f->offset != CP_RAW_NATIVE && f->offset != CP_RAW_PSEUDO;
}

/* Values a raw sample carries (indices into cp_value_index). */
typedef struct cp_rawsample {
    uint64_t thread_id;   /* threading.get_ident()                        */
    uint64_t native_id;   /* kernel tid, 0 = unknown                      */
    int64_t cpu_ns, cpu_n, wall_ns, wall_n, alloc_bytes, alloc_n;
    uint32_t nframes;     /* frames stored                                */
    uint32_t omitted;     /* frames beyond the cap, not stored            */
    cp_rawframe frames[]; /* leaf first; capacity = ring's max_frames     */
} cp_rawsample;

/* Same thread and same frames (values aside): two samples that can be
 * added together. */
bool cp__raw_same_stack(const cp_rawsample *a, const cp_rawsample *b);

typedef struct cp_rawring {
    uint8_t *slots;
    size_t nslots, slot_size, max_frames, extra;
    _Atomic size_t head; /* next slot to write (producer)  */
    _Atomic size_t tail; /* next slot to read (consumer)   */
    _Atomic size_t base; /* index that maps to slot 0      */
} cp_rawring;

/* Allocate nslots slots of max_frames frames and extra bytes each (for
 * the producer's own data, e.g. a task name). Returns false on ENOMEM. */
bool cp__ring_init(cp_rawring *r, size_t nslots, size_t max_frames, size_t extra);

/* The extra bytes of slot s (NULL when the ring has none). */
void *cp__ring_extra(const cp_rawring *r, cp_rawsample *s);
void cp__ring_free(cp_rawring *r);

/* Producer: the slot to fill, or NULL when full (the caller counts the
 * drop). Publish it with cp__ring_commit. */
cp_rawsample *cp__ring_reserve(cp_rawring *r);
void cp__ring_commit(cp_rawring *r);

/* Slots in use (either side; approximate while the other side runs). */
size_t cp__ring_used(cp_rawring *r);

/* Consumer: the oldest sample, or NULL when empty; then cp__ring_release. */
cp_rawsample *cp__ring_peek(cp_rawring *r);
void cp__ring_release(cp_rawring *r);

#endif
