/*
 * pb.h — a small protobuf writer (internal), modelled on Go's
 * runtime/pprof protobuf.go.
 *
 * Fields are appended to one reusable buffer. A nested message is written
 * in place: cp__pb_start() remembers where it begins, cp__pb_end() inserts
 * its length in front of it. Whenever no message is open and the buffer
 * holds enough bytes, they are compressed into the output, so memory stays
 * bounded however large the profile.
 *
 * Errors are sticky: after the first failure every call is a no-op and
 * cp__pb_finish() returns the error, so encoders need not check each call.
 */
#ifndef CP_PB_H
#define CP_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "contprof.h"

typedef struct cp__pb {
    cp_buf buf;   /* pending bytes, moved to out by each flush          */
    cp_buf *out;  /* destination, appended to                           */
    size_t out_start; /* out->len at init, restored on error             */
    bool gzip;
    bool z_ready; /* zs initialised                                      */
    bool z_huffman; /* Huffman-only from now on: LZ77 was not paying      */
    bool z_stored;  /* stored blocks from now on: Huffman was not paying  */
    uint64_t z_in0, z_out0; /* totals when Huffman-only began          */
    int nest;     /* open messages                                       */
    int err;      /* first error, CP_OK while none                       */
    z_stream zs;
} cp__pb;

/* Begin writing to out (appending; the caller owns out). With gzip the
 * bytes are deflated in gzip format at level 1 (speed over size, as Go's
 * runtime/pprof does). Release with cp__pb_finish even on error. */
void cp__pb_init(cp__pb *pb, cp_buf *out, bool gzip);

/* Finish (flush the gzip trailer), release internal state, return the
 * first error (CP_ENOMEM, CP_ETOOBIG from out's limit, CP_EIO from zlib).
 * On error out->len is restored to its value at cp__pb_init. */
int cp__pb_finish(cp__pb *pb);

void cp__pb_varint(cp__pb *pb, uint64_t v);               /* bare varint        */
void cp__pb_uint64(cp__pb *pb, int tag, uint64_t v);      /* varint field       */
void cp__pb_uint64_opt(cp__pb *pb, int tag, uint64_t v);  /* ... omitted if 0   */
void cp__pb_int64(cp__pb *pb, int tag, int64_t v);        /* two's complement   */
void cp__pb_int64_opt(cp__pb *pb, int tag, int64_t v);
void cp__pb_bytes(cp__pb *pb, int tag, const void *s, size_t n); /* length-delimited */
void cp__pb_string(cp__pb *pb, int tag, const char *s);   /* NULL = ""          */
/* Packed repeated fields; nothing is written for n == 0. The values are
 * given as 32-bit ids plus an offset (ids+1 for 1-based pprof ids), or as
 * int64s. */
void cp__pb_packed_u32(cp__pb *pb, int tag, const uint32_t *v, size_t n, uint64_t add);
void cp__pb_packed_i64(cp__pb *pb, int tag, const int64_t *v, size_t n);

/* Open a nested message; returns the token cp__pb_end needs. */
size_t cp__pb_start(cp__pb *pb);
/* Close the message opened at start as field tag; at nesting depth 0 this
 * may flush to the output. */
void cp__pb_end(cp__pb *pb, int tag, size_t start);

/* Size of v as a varint (1..10). */
size_t cp__pb_varint_size(uint64_t v);

/* ---- Reading (bounds-checked; for untrusted input) ---------------- */

/* A view of bytes [p, end). Readers never go past end. */
typedef struct cp__pbr {
    const uint8_t *p, *end;
} cp__pbr;

enum { CP__WIRE_VARINT = 0, CP__WIRE_I64 = 1, CP__WIRE_LEN = 2, CP__WIRE_I32 = 5 };

/* Each returns false on malformed input (truncated, a varint over 10 bytes
 * or 64 bits, a length past the end, a group or unknown wire type, field
 * number 0) and then leaves r unspecified. */
bool cp__pbr_varint(cp__pbr *r, uint64_t *v);
bool cp__pbr_key(cp__pbr *r, uint32_t *field, int *wire);
/* A length-delimited payload as a sub-view. */
bool cp__pbr_len(cp__pbr *r, cp__pbr *sub);
/* Skip a field's payload of the given wire type. */
bool cp__pbr_skip(cp__pbr *r, int wire);
/* Count the varints of a repeated scalar field: packed (wire LEN, whole
 * payload) or not (one value). r is advanced past the field. */
bool cp__pbr_count_varints(cp__pbr *r, int wire, size_t *count);
/* Read the values of that field into out[*n...], at most cap in total. */
bool cp__pbr_read_varints(cp__pbr *r, int wire, uint64_t *out, size_t cap, size_t *n);

#endif /* CP_PB_H */
