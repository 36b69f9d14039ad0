/*
 * profile_encode.c — cp_profile → pprof (perftools.profiles.Profile).
 *
 * Field numbers follow profile.proto. Everything is interned before
 * encoding starts, so the string table can be written after the messages
 * that refer to it, in one pass. Optional scalars equal to 0 are omitted,
 * as proto3 does; string 0 ("") is always written first.
 */
#include "pb.h"
#include "profile_internal.h"

enum {
    PROFILE_SAMPLE_TYPE = 1,
    PROFILE_SAMPLE = 2,
    PROFILE_MAPPING = 3,
    PROFILE_LOCATION = 4,
    PROFILE_FUNCTION = 5,
    PROFILE_STRING_TABLE = 6,
    PROFILE_TIME_NANOS = 9,
    PROFILE_DURATION_NANOS = 10,
    PROFILE_PERIOD_TYPE = 11,
    PROFILE_PERIOD = 12,
    PROFILE_COMMENT = 13,
    PROFILE_DEFAULT_SAMPLE_TYPE = 14,
};

static void encode_value_type(cp__pb *pb, int tag, uint32_t type, uint32_t unit)
{
    size_t m = cp__pb_start(pb);
    cp__pb_int64_opt(pb, 1, type);
    cp__pb_int64_opt(pb, 2, unit);
    cp__pb_end(pb, tag, m);
}

static void encode_label(cp__pb *pb, const cp__plabel *l)
{
    size_t m = cp__pb_start(pb);
    cp__pb_int64(pb, 1, l->key);
    cp__pb_int64_opt(pb, 2, l->str);
    cp__pb_int64_opt(pb, 3, l->num);
    cp__pb_int64_opt(pb, 4, l->unit);
    cp__pb_end(pb, 3, m);
}

static void encode_sample(cp__pb *pb, const cp_profile *p, const cp__psample *s)
{
    size_t m = cp__pb_start(pb);
    cp__pb_packed_u32(pb, 1, cp__sample_locs(p, s), s->nlocs, 1);
    cp__pb_packed_i64(pb, 2, s->values, p->ntypes);
    const cp__plabel *l = cp__sample_labels(p, s);
    for (uint32_t i = 0; i < s->nlabels; i++)
        encode_label(pb, &l[i]);
    cp__pb_end(pb, PROFILE_SAMPLE, m);
}

/* Mapping: id and file name; no addresses. has_functions, has_filenames
 * and has_line_numbers are set so pprof never tries to symbolise it. */
static void encode_mapping(cp__pb *pb, size_t index, const cp__pmap *m)
{
    size_t msg = cp__pb_start(pb);
    cp__pb_uint64(pb, 1, index + 1);
    cp__pb_int64_opt(pb, 5, m->file);
    cp__pb_int64(pb, 7, 1);
    cp__pb_int64(pb, 8, 1);
    cp__pb_int64(pb, 9, 1);
    cp__pb_end(pb, PROFILE_MAPPING, msg);
}

/* Location: id, its mapping (if any), one Line {function_id, line}; no
 * address. */
static void encode_location(cp__pb *pb, size_t index, const cp__ploc *l)
{
    size_t m = cp__pb_start(pb);
    cp__pb_uint64(pb, 1, index + 1);
    cp__pb_int64_opt(pb, 2, l->map1);
    size_t line = cp__pb_start(pb);
    cp__pb_uint64(pb, 1, (uint64_t)l->func + 1);
    cp__pb_int64_opt(pb, 2, l->line);
    cp__pb_end(pb, 4, line);
    cp__pb_end(pb, PROFILE_LOCATION, m);
}

static void encode_function(cp__pb *pb, size_t index, const cp__pfunc *f)
{
    size_t m = cp__pb_start(pb);
    cp__pb_uint64(pb, 1, index + 1);
    cp__pb_int64_opt(pb, 2, f->name);
    cp__pb_int64_opt(pb, 3, f->system_name);
    cp__pb_int64_opt(pb, 4, f->filename);
    cp__pb_int64_opt(pb, 5, f->start_line);
    cp__pb_end(pb, PROFILE_FUNCTION, m);
}

static void encode_tables(cp__pb *pb, const cp_profile *p)
{
    for (size_t i = 0; i < p->ntypes; i++)
        encode_value_type(pb, PROFILE_SAMPLE_TYPE, p->type_strs[2 * i], p->type_strs[2 * i + 1]);
    for (size_t i = 0; i < p->nsamples; i++)
        encode_sample(pb, p, p->samples[i]);
    for (size_t i = 0; i < p->nmaps; i++)
        encode_mapping(pb, i, &p->maps[i]);
    for (size_t i = 0; i < p->nlocs; i++)
        encode_location(pb, i, &p->locs[i]);
    for (size_t i = 0; i < p->nfuncs; i++)
        encode_function(pb, i, &p->funcs[i]);
    for (size_t i = 0; i < p->st.n; i++)
        cp__pb_bytes(pb, PROFILE_STRING_TABLE, p->st.strs[i].s, p->st.strs[i].len);
}

static void encode_header(cp__pb *pb, const cp_profile *p)
{
    cp__pb_int64_opt(pb, PROFILE_TIME_NANOS, p->time_ns);
    cp__pb_int64_opt(pb, PROFILE_DURATION_NANOS, p->duration_ns);
    if (p->period_type[0] || p->period_type[1])
        encode_value_type(pb, PROFILE_PERIOD_TYPE, p->period_type[0], p->period_type[1]);
    cp__pb_int64_opt(pb, PROFILE_PERIOD, p->period);
    cp__pb_packed_u32(pb, PROFILE_COMMENT, p->comments, p->ncomments, 0);
    /* The first sample type is the default view (pprof would otherwise
     * pick the last one, e.g. cpu-samples instead of cpu-time). */
    cp__pb_int64_opt(pb, PROFILE_DEFAULT_SAMPLE_TYPE, p->type_strs[0]);
}

/* Encode p as pprof, gzip'd when gzip is true, appending to out (owned by
 * the caller; its limit caps the output: CP_ETOOBIG). On error out keeps
 * its previous length. p is only read. */
int cp_profile_encode(const cp_profile *p, bool gzip, cp_buf *out)
{
    if (!p || !out)
        return CP_EINVAL;
    cp__pb pb;
    cp__pb_init(&pb, out, gzip);
    encode_tables(&pb, p);
    encode_header(&pb, p);
    return cp__pb_finish(&pb);
}
