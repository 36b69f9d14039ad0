/*
 * pb_read.c — bounds-checked protobuf wire-format reading.
 *
 * The decoder is fed untrusted uploads, so every length is checked against
 * the bytes that remain and every varint against its 10-byte maximum.
 */
#include "pb.h"

bool cp__pbr_varint(cp__pbr *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return false;
        uint8_t b = *r->p++;
        /* The 10th byte may only carry the top bit of a 64-bit value. */
        if (shift == 63 && b > 1)
            return false;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

bool cp__pbr_key(cp__pbr *r, uint32_t *field, int *wire)
{
    uint64_t k;
    if (!cp__pbr_varint(r, &k) || (k >> 3) == 0 || (k >> 3) > 0x1fffffff)
        return false;
    *field = (uint32_t)(k >> 3);
    *wire = (int)(k & 7);
    return *wire == CP__WIRE_VARINT || *wire == CP__WIRE_I64 || *wire == CP__WIRE_LEN ||
           *wire == CP__WIRE_I32;
}

bool cp__pbr_len(cp__pbr *r, cp__pbr *sub)
{
    uint64_t n;
    if (!cp__pbr_varint(r, &n) || n > (uint64_t)(r->end - r->p))
        return false;
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return true;
}

static bool skip_bytes(cp__pbr *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    r->p += n;
    return true;
}

bool cp__pbr_skip(cp__pbr *r, int wire)
{
    uint64_t v;
    cp__pbr sub;
    switch (wire) {
    case CP__WIRE_VARINT:
        return cp__pbr_varint(r, &v);
    case CP__WIRE_I64:
        return skip_bytes(r, 8);
    case CP__WIRE_LEN:
        return cp__pbr_len(r, &sub);
    case CP__WIRE_I32:
        return skip_bytes(r, 4);
    default:
        return false;
    }
}

bool cp__pbr_count_varints(cp__pbr *r, int wire, size_t *count)
{
    uint64_t v;
    if (wire == CP__WIRE_VARINT) {
        (*count)++;
        return cp__pbr_varint(r, &v);
    }
    cp__pbr sub;
    if (wire != CP__WIRE_LEN || !cp__pbr_len(r, &sub))
        return false;
    while (sub.p < sub.end) {
        if (!cp__pbr_varint(&sub, &v))
            return false;
        (*count)++;
    }
    return true;
}

bool cp__pbr_read_varints(cp__pbr *r, int wire, uint64_t *out, size_t cap, size_t *n)
{
    if (wire == CP__WIRE_VARINT)
        return *n < cap && cp__pbr_varint(r, &out[(*n)++]);
    cp__pbr sub;
    if (wire != CP__WIRE_LEN || !cp__pbr_len(r, &sub))
        return false;
    while (sub.p < sub.end)
        if (*n >= cap || !cp__pbr_varint(&sub, &out[(*n)++]))
            return false;
    return true;
}
