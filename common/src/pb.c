/*
 * pb.c — protobuf wire-format writer with streaming gzip (see pb.h).
 */
#include "pb.h"

#include <string.h>

#include "alloc.h"
#include "buf.h"

enum {
    WIRE_VARINT = 0,
    WIRE_LEN = 2,
    FLUSH_AT = 64 * 1024, /* pending bytes that trigger a flush at depth 0 */
    OUT_CHUNK = 32 * 1024,
    RATIO_AFTER = 1 << 20, /* input bytes before judging the compression ratio */
};

void cp__pb_init(cp__pb *pb, cp_buf *out, bool gzip)
{
    memset(pb, 0, sizeof *pb);
    cp_buf_init(&pb->buf, 0);
    pb->out = out;
    pb->out_start = out->len;
    pb->gzip = gzip;
    pb->err = CP_OK;
    pb->zs.zalloc = cp__zalloc; /* so failure injection reaches zlib */
    pb->zs.zfree = cp__zfree;
    if (gzip) {
        if (deflateInit2(&pb->zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            pb->err = CP_ENOMEM;
        else
            pb->z_ready = true;
    }
}

/* Make room for up to OUT_CHUNK bytes in out; *room receives how many. */
static int out_room(cp_buf *out, size_t *room)
{
    size_t limit = out->limit ? out->limit : SIZE_MAX;
    if (out->len >= limit)
        return CP_ETOOBIG;
    *room = limit - out->len < OUT_CHUNK ? limit - out->len : OUT_CHUNK;
    return cp__buf_reserve(out, *room);
}

/* Deflate the pending bytes into out (mode Z_NO_FLUSH or Z_FINISH). */
static int deflate_pending(cp__pb *pb, int mode)
{
    z_stream *zs = &pb->zs;
    zs->next_in = pb->buf.data;
    zs->avail_in = (uInt)pb->buf.len;
    for (;;) {
        size_t room;
        int rc = out_room(pb->out, &room);
        if (rc != CP_OK)
            return rc;
        zs->next_out = pb->out->data + pb->out->len;
        zs->avail_out = (uInt)room;
        int zrc = deflate(zs, mode);
        pb->out->len += room - zs->avail_out;
        if (zrc == Z_STREAM_END || (zrc == Z_BUF_ERROR && mode == Z_NO_FLUSH && zs->avail_in == 0))
            return CP_OK;
        if (zrc != Z_OK)
            return zrc == Z_MEM_ERROR ? CP_ENOMEM : CP_EIO;
        if (mode == Z_NO_FLUSH && zs->avail_in == 0 && zs->avail_out != 0)
            return CP_OK;
    }
}

/* Change the compression of what follows (output of the pending data
 * goes out first, as deflateParams requires). */
static bool set_params(cp__pb *pb, int level, int strategy)
{
    z_stream *zs = &pb->zs;
    size_t room;
    if (out_room(pb->out, &room) != CP_OK)
        return false;
    zs->next_out = pb->out->data + pb->out->len;
    zs->avail_out = (uInt)room;
    int zrc = deflateParams(zs, level, strategy);
    pb->out->len += room - zs->avail_out;
    return zrc == Z_OK;
}

/* Past the first MiB, if deflate saved under a quarter (a profile of many
 * unrelated stacks: location ids barely repeat; real profiles shrink 3-10
 * times), keep only Huffman coding: twice as fast, ~10% bigger on such
 * data. If over the next MiB Huffman coding saves under an eighth, the
 * rest is stored uncompressed (still gzip): coding bytes that do not
 * shrink costs more CPU (~15 ns a byte) than sending them. One-way. */
static void maybe_step_down(cp__pb *pb)
{
    z_stream *zs = &pb->zs;
    if (pb->z_stored || zs->total_in < RATIO_AFTER)
        return;
    if (!pb->z_huffman) {
        if (zs->total_out < zs->total_in / 4 * 3)
            return;
        pb->z_huffman = set_params(pb, 1, Z_HUFFMAN_ONLY);
        pb->z_in0 = zs->total_in;
        pb->z_out0 = zs->total_out;
        return;
    }
    uint64_t in = zs->total_in - pb->z_in0, out = zs->total_out - pb->z_out0;
    if (in < RATIO_AFTER || out < in / 8 * 7)
        return;
    pb->z_stored = set_params(pb, 0, Z_DEFAULT_STRATEGY);
}

/* Move the pending bytes to the output (compressed or not). */
static void flush(cp__pb *pb, int mode)
{
    if (pb->err != CP_OK)
        return;
    int rc = pb->gzip ? deflate_pending(pb, mode)
                      : cp_buf_append(pb->out, pb->buf.data, pb->buf.len);
    pb->buf.len = 0;
    if (rc == CP_OK && pb->gzip && mode == Z_NO_FLUSH)
        maybe_step_down(pb);
    if (rc != CP_OK)
        pb->err = rc;
}

/* Flush when no message is open and enough bytes are pending. */
static void maybe_flush(cp__pb *pb)
{
    if (pb->nest == 0 && pb->buf.len >= FLUSH_AT)
        flush(pb, Z_NO_FLUSH);
}

int cp__pb_finish(cp__pb *pb)
{
    flush(pb, Z_FINISH);
    if (pb->z_ready)
        deflateEnd(&pb->zs);
    pb->z_ready = false;
    cp_buf_free(&pb->buf);
    if (pb->err != CP_OK)
        pb->out->len = pb->out_start;
    return pb->err;
}

/* Room for n more pending bytes; false (error recorded) if impossible. */
static bool ensure(cp__pb *pb, size_t n)
{
    if (pb->err != CP_OK)
        return false;
    int rc = cp__buf_reserve(&pb->buf, n);
    if (rc != CP_OK)
        pb->err = rc;
    return rc == CP_OK;
}

size_t cp__pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Write v at d; returns the bytes written. The caller made room. */
static size_t put_varint(uint8_t *d, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        d[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    d[n++] = (uint8_t)v;
    return n;
}

static void raw_varint(cp__pb *pb, uint64_t v)
{
    pb->buf.len += put_varint(pb->buf.data + pb->buf.len, v);
}

void cp__pb_varint(cp__pb *pb, uint64_t v)
{
    if (ensure(pb, 10))
        raw_varint(pb, v);
}

void cp__pb_uint64(cp__pb *pb, int tag, uint64_t v)
{
    if (!ensure(pb, 20))
        return;
    raw_varint(pb, (uint64_t)tag << 3 | WIRE_VARINT);
    raw_varint(pb, v);
    maybe_flush(pb);
}

void cp__pb_uint64_opt(cp__pb *pb, int tag, uint64_t v)
{
    if (v != 0)
        cp__pb_uint64(pb, tag, v);
}

void cp__pb_int64(cp__pb *pb, int tag, int64_t v)
{
    cp__pb_uint64(pb, tag, (uint64_t)v);
}

void cp__pb_int64_opt(cp__pb *pb, int tag, int64_t v)
{
    if (v != 0)
        cp__pb_uint64(pb, tag, (uint64_t)v);
}

void cp__pb_bytes(cp__pb *pb, int tag, const void *s, size_t n)
{
    if (n > SIZE_MAX - 20 || !ensure(pb, 20 + n))
        return;
    raw_varint(pb, (uint64_t)tag << 3 | WIRE_LEN);
    raw_varint(pb, n);
    if (n)
        memcpy(pb->buf.data + pb->buf.len, s, n);
    pb->buf.len += n;
    maybe_flush(pb);
}

void cp__pb_string(cp__pb *pb, int tag, const char *s)
{
    cp__pb_bytes(pb, tag, s ? s : "", s ? strlen(s) : 0);
}

void cp__pb_packed_u32(cp__pb *pb, int tag, const uint32_t *v, size_t n, uint64_t add)
{
    if (n == 0)
        return;
    size_t size = 0;
    for (size_t i = 0; i < n; i++)
        size += cp__pb_varint_size(v[i] + add);
    if (!ensure(pb, 20 + size))
        return;
    raw_varint(pb, (uint64_t)tag << 3 | WIRE_LEN);
    raw_varint(pb, size);
    for (size_t i = 0; i < n; i++)
        raw_varint(pb, v[i] + add);
    maybe_flush(pb);
}

void cp__pb_packed_i64(cp__pb *pb, int tag, const int64_t *v, size_t n)
{
    if (n == 0)
        return;
    size_t size = 0;
    for (size_t i = 0; i < n; i++)
        size += cp__pb_varint_size((uint64_t)v[i]);
    if (!ensure(pb, 20 + size))
        return;
    raw_varint(pb, (uint64_t)tag << 3 | WIRE_LEN);
    raw_varint(pb, size);
    for (size_t i = 0; i < n; i++)
        raw_varint(pb, (uint64_t)v[i]);
    maybe_flush(pb);
}

size_t cp__pb_start(cp__pb *pb)
{
    pb->nest++;
    return pb->buf.len;
}

void cp__pb_end(cp__pb *pb, int tag, size_t start)
{
    pb->nest--;
    if (!ensure(pb, 20))
        return;
    uint8_t head[20];
    size_t body = pb->buf.len - start;
    size_t h = put_varint(head, (uint64_t)tag << 3 | WIRE_LEN);
    h += put_varint(head + h, body);
    /* Shift the body right to make room for its key and length: messages
     * are small (one sample, one location), so this is cheap. */
    memmove(pb->buf.data + start + h, pb->buf.data + start, body);
    memcpy(pb->buf.data + start, head, h);
    pb->buf.len += h;
    maybe_flush(pb);
}
