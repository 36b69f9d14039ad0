/*
 * pprof_decode.c — cp_pprof_decode: pprof bytes (gzip'd or not) into a
 * cp_pprof.
 *
 * Three passes over the Profile message: count the repeated fields (so
 * every array is sized by what the input really holds), read the string
 * table, then parse everything else resolving string indexes as it goes.
 * A final step indexes ids and checks every reference. The input is
 * untrusted (the explorer takes uploads): gzip is inflated under a size
 * cap, and any malformed byte gives CP_ECORRUPT, never a crash.
 */
#include <string.h>
#include <zlib.h>

#include "alloc.h"
#include "buf.h"
#include "pprof_internal.h"

enum { DEFAULT_MAX_INFLATED = 256u << 20, INFLATE_CHUNK = 64 * 1024 };

enum {
    F_SAMPLE_TYPE = 1, F_SAMPLE = 2, F_MAPPING = 3, F_LOCATION = 4, F_FUNCTION = 5, F_STRING = 6,
    F_TIME = 9, F_DURATION = 10, F_PERIOD_TYPE = 11, F_PERIOD = 12, F_COMMENT = 13,
    F_DEFAULT_TYPE = 14,
};

/* Inflate until the stream ends, appending to out (whose limit is the
 * cap). Concatenated gzip members are accepted, as gunzip does. */
static int inflate_all(z_stream *zs, cp_buf *out)
{
    for (;;) {
        int rc = cp__buf_reserve(out, INFLATE_CHUNK);
        /* Near the cap, take what is left; at the cap it is a zip bomb. */
        if (rc == CP_ETOOBIG && out->len < out->limit)
            rc = cp__buf_reserve(out, out->limit - out->len);
        if (rc != CP_OK)
            return rc;
        size_t room = out->cap - out->len;
        zs->next_out = out->data + out->len;
        zs->avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
        uInt before = zs->avail_out;
        int zrc = inflate(zs, Z_NO_FLUSH);
        out->len += before - zs->avail_out;
        if (zrc == Z_STREAM_END) {
            if (zs->avail_in < 2 || zs->next_in[0] != 0x1f || zs->next_in[1] != 0x8b)
                return zs->avail_in == 0 ? CP_OK : CP_ECORRUPT;
            if (inflateReset(zs) != Z_OK)
                return CP_ECORRUPT;
        } else if (zrc == Z_MEM_ERROR) {
            return CP_ENOMEM;
        } else if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            return CP_ECORRUPT; /* Z_DATA_ERROR: not deflate data, bad CRC */
        } else if (zs->avail_in == 0 && zs->avail_out != 0) {
            return CP_ECORRUPT; /* the input ended inside the stream */
        }
        /* Otherwise the output is full: loop to grow it (up to the cap). */
    }
}

/* Gunzip data into out (owned by the caller), at most max bytes. */
static int gunzip(const uint8_t *data, size_t len, size_t max, cp_buf *out)
{
    if (len > UINT32_MAX)
        return CP_ETOOBIG;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = cp__zalloc; /* so failure injection reaches zlib */
    zs.zfree = cp__zfree;
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return CP_ENOMEM;
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)len;
    cp_buf_init(out, max);
    int rc = inflate_all(&zs, out);
    inflateEnd(&zs);
    return rc;
}

typedef struct counts {
    size_t types, samples, mappings, locations, functions, strings, comments;
} counts;

/* Pass 1: count the repeated fields; check the framing of every field. */
static int count_fields(cp__pbr r, counts *c)
{
    while (r.p < r.end) {
        uint32_t f;
        int w;
        if (!cp__pbr_key(&r, &f, &w))
            return CP_ECORRUPT;
        bool is_msg = f == F_SAMPLE_TYPE || f == F_SAMPLE || f == F_MAPPING || f == F_LOCATION ||
                      f == F_FUNCTION || f == F_STRING || f == F_PERIOD_TYPE;
        if (is_msg && w != CP__WIRE_LEN)
            return CP_ECORRUPT;
        c->types += f == F_SAMPLE_TYPE;
        c->samples += f == F_SAMPLE;
        c->mappings += f == F_MAPPING;
        c->locations += f == F_LOCATION;
        c->functions += f == F_FUNCTION;
        c->strings += f == F_STRING;
        bool ok = f == F_COMMENT ? cp__pbr_count_varints(&r, w, &c->comments) : cp__pbr_skip(&r, w);
        if (!ok)
            return CP_ECORRUPT;
    }
    return CP_OK;
}

static int alloc_tables(cp__pprof_priv *pp, const counts *c)
{
    cp_pprof *p = &pp->pub;
    cp__arena *a = &pp->arena;
    p->sample_types = cp__arena_array(a, c->types, sizeof *p->sample_types);
    p->samples = cp__arena_array(a, c->samples, sizeof *p->samples);
    p->locations = cp__arena_array(a, c->locations, sizeof *p->locations);
    p->functions = cp__arena_array(a, c->functions, sizeof *p->functions);
    p->strings = cp__arena_array(a, c->strings, sizeof *p->strings);
    p->comments = cp__arena_array(a, c->comments, sizeof *p->comments);
    p->mappings = cp__arena_array(a, c->mappings, sizeof *p->mappings);
    if (!p->sample_types || !p->samples || !p->locations || !p->functions || !p->strings ||
        !p->comments || !p->mappings)
        return CP_ENOMEM;
    p->n_sample_types = c->types; /* known up front: samples check against it */
    p->period_type.type = p->period_type.unit = "";
    p->default_sample_type = -1;
    return CP_OK;
}

/* Pass 2: copy the string table (NUL-terminated) into the arena. */
static int read_strings(cp__pprof_priv *pp, cp__pbr r)
{
    while (r.p < r.end) {
        uint32_t f;
        int w;
        cp__pbr s;
        if (!cp__pbr_key(&r, &f, &w))
            return CP_ECORRUPT;
        if (f != F_STRING) {
            if (!cp__pbr_skip(&r, w))
                return CP_ECORRUPT;
            continue;
        }
        if (!cp__pbr_len(&r, &s))
            return CP_ECORRUPT;
        size_t n = (size_t)(s.end - s.p);
        char *copy = cp__arena_alloc(&pp->arena, n + 1);
        if (!copy)
            return CP_ENOMEM;
        memcpy(copy, s.p, n);
        pp->pub.strings[pp->pub.n_strings++] = copy;
    }
    /* profile.proto: string_table[0] must be "". */
    return pp->pub.n_strings == 0 || pp->pub.strings[0][0] == '\0' ? CP_OK : CP_ECORRUPT;
}

static int read_comments(cp__pprof_priv *pp, cp__pbr *r, int w, size_t cap)
{
    cp_pprof *p = &pp->pub;
    uint64_t *idx = cp__arena_array(&pp->arena, cap, sizeof *idx);
    size_t n = 0;
    if (!idx)
        return CP_ENOMEM;
    if (!cp__pbr_read_varints(r, w, idx, cap, &n))
        return CP_ECORRUPT;
    for (size_t i = 0; i < n; i++)
        if (!cp__pprof_str(p, idx[i], &p->comments[p->n_comments++]))
            return CP_ECORRUPT;
    return CP_OK;
}

/* Scalars of the Profile message: time, duration, period, default type. */
static int read_scalar_field(cp__pprof_priv *pp, cp__pbr *r, uint32_t f, int w)
{
    uint64_t v;
    if (w != CP__WIRE_VARINT || !cp__pbr_varint(r, &v))
        return CP_ECORRUPT;
    if (f == F_TIME)
        pp->pub.time_nanos = (int64_t)v;
    else if (f == F_DURATION)
        pp->pub.duration_nanos = (int64_t)v;
    else if (f == F_PERIOD)
        pp->pub.period = (int64_t)v;
    else if (!cp__pprof_str(&pp->pub, v, &pp->default_type))
        return CP_ECORRUPT;
    return CP_OK;
}

/* One top-level field in pass 3; framing was checked in pass 1. */
static int parse_field(cp__pprof_priv *pp, cp__pbr *r, uint32_t f, int w, size_t ncomments)
{
    cp_pprof *p = &pp->pub;
    cp__pbr sub;
    switch (f) {
    case F_SAMPLE_TYPE:
    case F_PERIOD_TYPE:
        if (!cp__pbr_len(r, &sub))
            return CP_ECORRUPT;
        return cp__pprof_parse_value_type(
            pp, sub, f == F_PERIOD_TYPE ? &p->period_type : &p->sample_types[pp->n_types_read++]);
    case F_SAMPLE:
        return cp__pbr_len(r, &sub) ? cp__pprof_parse_sample(pp, sub, &p->samples[p->n_samples++])
                                    : CP_ECORRUPT;
    case F_MAPPING:
        return cp__pbr_len(r, &sub)
                   ? cp__pprof_parse_mapping(pp, sub, &p->mappings[p->n_mappings++])
                   : CP_ECORRUPT;
    case F_LOCATION:
        return cp__pbr_len(r, &sub)
                   ? cp__pprof_parse_location(pp, sub, &p->locations[p->n_locations++])
                   : CP_ECORRUPT;
    case F_FUNCTION:
        return cp__pbr_len(r, &sub)
                   ? cp__pprof_parse_function(pp, sub, &p->functions[p->n_functions++])
                   : CP_ECORRUPT;
    case F_TIME:
    case F_DURATION:
    case F_PERIOD:
    case F_DEFAULT_TYPE:
        return read_scalar_field(pp, r, f, w);
    case F_COMMENT:
        return read_comments(pp, r, w, ncomments);
    default:
        return cp__pbr_skip(r, w) ? CP_OK : CP_ECORRUPT;
    }
}

static int parse_all(cp__pprof_priv *pp, cp__pbr r, size_t ncomments)
{
    while (r.p < r.end) {
        uint32_t f;
        int w;
        if (!cp__pbr_key(&r, &f, &w))
            return CP_ECORRUPT;
        int rc = parse_field(pp, &r, f, w, ncomments);
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}

static void resolve_default_type(cp__pprof_priv *pp)
{
    if (pp->default_type && pp->default_type[0])
        pp->pub.default_sample_type = cp_pprof_type_index(&pp->pub, pp->default_type);
}

/* Decoded size bound: real profiles need under ~16 bytes per input byte
 * (locations ids widen to 8 bytes, strings gain a pointer); anything far
 * beyond is a crafted input trying to exhaust memory. */
enum { DECODED_PER_BYTE = 32, DECODED_MIN = 1u << 20 };

static int decode_raw(const uint8_t *data, size_t len, cp__pprof_priv *pp)
{
    cp__pbr r = {data, data + len};
    pp->arena.budget = len > (SIZE_MAX - DECODED_MIN) / DECODED_PER_BYTE
                           ? SIZE_MAX
                           : len * DECODED_PER_BYTE + DECODED_MIN;
    counts c = {0, 0, 0, 0, 0, 0, 0};
    int rc = count_fields(r, &c);
    if (rc == CP_OK)
        rc = alloc_tables(pp, &c);
    if (rc == CP_OK)
        rc = read_strings(pp, r);
    if (rc == CP_OK)
        rc = parse_all(pp, r, c.comments);
    if (rc == CP_OK)
        rc = cp__pprof_index(pp);
    if (rc == CP_OK)
        resolve_default_type(pp);
    return rc == CP_ENOMEM && pp->arena.over_budget ? CP_ETOOBIG : rc;
}

/* See contprof.h. data is only read and may be freed after the call; on
 * CP_OK *out owns copies of everything and is freed with cp_pprof_free. */
int cp_pprof_decode(const uint8_t *data, size_t len, size_t max_inflated, cp_pprof **out)
{
    if (!out || (!data && len))
        return CP_EINVAL;
    cp_buf raw;
    cp_buf_init(&raw, 0);
    int rc = CP_OK;
    if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        rc = gunzip(data, len, max_inflated ? max_inflated : DEFAULT_MAX_INFLATED, &raw);
        data = raw.data;
        len = raw.len;
    }
    cp__pprof_priv *pp = rc == CP_OK ? cp__calloc(1, sizeof *pp) : NULL;
    if (rc == CP_OK && !pp)
        rc = CP_ENOMEM;
    if (rc == CP_OK)
        rc = decode_raw(data ? data : (const uint8_t *)"", len, pp);
    cp_buf_free(&raw);
    if (rc != CP_OK) {
        cp_pprof_free(pp ? &pp->pub : NULL);
        return rc;
    }
    *out = &pp->pub;
    return CP_OK;
}
