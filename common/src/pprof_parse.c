/*
 * pprof_parse.c — parsers for the messages inside a pprof Profile:
 * ValueType, Sample (+ Label), Mapping, Location (+ Line), Function.
 *
 * Input is untrusted: each repeated field is counted in a first scan so
 * arrays are sized from what is really there, wire types are checked for
 * every known field, and string indexes are resolved with bounds checks.
 * Absent strings become "" (never NULL).
 */
#include "pprof_internal.h"

#define CORRUPT_UNLESS(cond)        \
    do {                            \
        if (!(cond))                \
            return CP_ECORRUPT;     \
    } while (0)

/* Read a varint field that must have wire type VARINT. */
static int read_scalar(cp__pbr *r, int wire, uint64_t *v)
{
    CORRUPT_UNLESS(wire == CP__WIRE_VARINT && cp__pbr_varint(r, v));
    return CP_OK;
}

/* Read a string-index field and resolve it. */
static int read_str(cp__pprof_priv *pp, cp__pbr *r, int wire, const char **out)
{
    uint64_t idx;
    int rc = read_scalar(r, wire, &idx);
    if (rc == CP_OK && !cp__pprof_str(&pp->pub, idx, out))
        rc = CP_ECORRUPT;
    return rc;
}

static int read_sub(cp__pbr *r, int wire, cp__pbr *sub)
{
    CORRUPT_UNLESS(wire == CP__WIRE_LEN && cp__pbr_len(r, sub));
    return CP_OK;
}

int cp__pprof_parse_value_type(cp__pprof_priv *pp, cp__pbr r, cp_sample_type *out)
{
    out->type = out->unit = "";
    while (r.p < r.end) {
        uint32_t f;
        int w, rc;
        CORRUPT_UNLESS(cp__pbr_key(&r, &f, &w));
        if (f == 1 || f == 2)
            rc = read_str(pp, &r, w, f == 1 ? &out->type : &out->unit);
        else
            rc = cp__pbr_skip(&r, w) ? CP_OK : CP_ECORRUPT;
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}

static int parse_label(cp__pprof_priv *pp, cp__pbr r, cp_pprof_label *l)
{
    l->key = l->str = l->num_unit = "";
    while (r.p < r.end) {
        uint32_t f;
        int w, rc;
        uint64_t v;
        CORRUPT_UNLESS(cp__pbr_key(&r, &f, &w));
        if (f == 1 || f == 2 || f == 4)
            rc = read_str(pp, &r, w, f == 1 ? &l->key : f == 2 ? &l->str : &l->num_unit);
        else if (f == 3 && (rc = read_scalar(&r, w, &v)) == CP_OK)
            l->num = (int64_t)v;
        else if (f != 3)
            rc = cp__pbr_skip(&r, w) ? CP_OK : CP_ECORRUPT;
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}

typedef struct sample_counts {
    size_t locs, values, labels;
} sample_counts;

static int count_sample(cp__pbr r, sample_counts *c)
{
    while (r.p < r.end) {
        uint32_t f;
        int w;
        cp__pbr sub;
        CORRUPT_UNLESS(cp__pbr_key(&r, &f, &w));
        if (f == 1)
            CORRUPT_UNLESS(cp__pbr_count_varints(&r, w, &c->locs));
        else if (f == 2)
            CORRUPT_UNLESS(cp__pbr_count_varints(&r, w, &c->values));
        else if (f == 3 && ++c->labels)
            CORRUPT_UNLESS(w == CP__WIRE_LEN && cp__pbr_len(&r, &sub));
        else
            CORRUPT_UNLESS(cp__pbr_skip(&r, w));
    }
    return CP_OK;
}

static int alloc_sample(cp__pprof_priv *pp, const sample_counts *c, cp_pprof_sample *out)
{
    out->location_ids = cp__arena_array(&pp->arena, c->locs, sizeof(uint64_t));
    out->values = cp__arena_array(&pp->arena, c->values, sizeof(int64_t));
    out->labels = cp__arena_array(&pp->arena, c->labels, sizeof(cp_pprof_label));
    if (!out->location_ids || !out->values || !out->labels)
        return CP_ENOMEM;
    return CP_OK;
}

/* Second scan of a sample: fill the arrays sized by count_sample. */
static int fill_sample(cp__pprof_priv *pp, cp__pbr r, const sample_counts *c, cp_pprof_sample *out)
{
    size_t nvals = 0;
    /* The arrays were allocated by this decoder, so writing them through
     * non-const pointers is fine; int64 and uint64 may alias. */
    uint64_t *locs = (uint64_t *)(uintptr_t)out->location_ids;
    uint64_t *vals = (uint64_t *)(uintptr_t)out->values;
    cp_pprof_label *labels = (cp_pprof_label *)(uintptr_t)out->labels;
    while (r.p < r.end) {
        uint32_t f;
        int w, rc = CP_OK;
        cp__pbr sub;
        CORRUPT_UNLESS(cp__pbr_key(&r, &f, &w));
        if (f == 1)
            CORRUPT_UNLESS(cp__pbr_read_varints(&r, w, locs, c->locs, &out->nlocs));
        else if (f == 2)
            CORRUPT_UNLESS(cp__pbr_read_varints(&r, w, vals, c->values, &nvals));
        else if (f == 3 && (rc = read_sub(&r, w, &sub)) == CP_OK)
            rc = parse_label(pp, sub, &labels[out->nlabels++]);
        else if (f != 3)
            CORRUPT_UNLESS(cp__pbr_skip(&r, w));
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}

int cp__pprof_parse_sample(cp__pprof_priv *pp, cp__pbr r, cp_pprof_sample *out)
{
    sample_counts c = {0, 0, 0};
    int rc = count_sample(r, &c);
    if (rc != CP_OK)
        return rc;
    /* pprof requires one value per sample type. */
    CORRUPT_UNLESS(c.values == pp->pub.n_sample_types);
    rc = alloc_sample(pp, &c, out);
    return rc == CP_OK ? fill_sample(pp, r, &c, out) : rc;
}

static int parse_line(cp__pbr r, cp_pprof_line *l)
{
    while (r.p < r.end) {
        uint32_t f;
        int w;
        uint64_t v;
        CORRUPT_UNLESS(cp__pbr_key(&r, &f, &w));
        if (f == 1 || f == 2) {
            CORRUPT_UNLESS(read_scalar(&r, w, &v) == CP_OK);
            if (f == 1)
                l->function_id = v;
            else
                l->line = (int64_t)v;
        } else {
            CORRUPT_UNLESS(cp__pbr_skip(&r, w));
        }
    }
    return CP_OK;
}

static int count_lines(cp__pbr r, size_t *n)
{
    while (r.p < r.end) {
        uint32_t f;
        int w;
        CORRUPT_UNLESS(cp__pbr_key(&r, &f, &w));
        CORRUPT_UNLESS(f != 4 || w == CP__WIRE_LEN);
        *n += f == 4;
        CORRUPT_UNLESS(cp__pbr_skip(&r, w));
    }
    return CP_OK;
}

/* One field of a Location; lines[] was sized by count_lines. */
static int location_field(cp__pbr *r, uint32_t f, int w, cp_pprof_location *out,
                          cp_pprof_line *lines)
{
    uint64_t v;
    cp__pbr sub;
    if (f == 4) {
        CORRUPT_UNLESS(read_sub(r, w, &sub) == CP_OK);
        return parse_line(sub, &lines[out->nlines++]);
    }
    if (f < 1 || f > 3)
        return cp__pbr_skip(r, w) ? CP_OK : CP_ECORRUPT;
    CORRUPT_UNLESS(read_scalar(r, w, &v) == CP_OK);
    if (f == 1)
        out->id = v;
    else if (f == 2)
        out->mapping_id = v;
    else
        out->address = v;
    return CP_OK;
}

int cp__pprof_parse_location(cp__pprof_priv *pp, cp__pbr r, cp_pprof_location *out)
{
    size_t n = 0;
    int rc = count_lines(r, &n);
    if (rc != CP_OK)
        return rc;
    cp_pprof_line *lines = cp__arena_array(&pp->arena, n, sizeof *lines);
    if (!lines)
        return CP_ENOMEM;
    out->lines = lines;
    while (r.p < r.end && rc == CP_OK) {
        uint32_t f;
        int w;
        CORRUPT_UNLESS(cp__pbr_key(&r, &f, &w));
        rc = location_field(&r, f, w, out, lines);
    }
    CORRUPT_UNLESS(rc != CP_OK || out->id != 0);
    return rc;
}

int cp__pprof_parse_function(cp__pprof_priv *pp, cp__pbr r, cp_pprof_function *out)
{
    out->name = out->system_name = out->filename = "";
    while (r.p < r.end) {
        uint32_t f;
        int w, rc = CP_OK;
        uint64_t v;
        CORRUPT_UNLESS(cp__pbr_key(&r, &f, &w));
        if (f == 2 || f == 3 || f == 4)
            rc = read_str(pp, &r, w, f == 2 ? &out->name : f == 3 ? &out->system_name : &out->filename);
        else if (f == 1 && (rc = read_scalar(&r, w, &v)) == CP_OK)
            out->id = v;
        else if (f == 5 && (rc = read_scalar(&r, w, &v)) == CP_OK)
            out->start_line = (int64_t)v;
        else if (f != 1 && f != 5)
            CORRUPT_UNLESS(cp__pbr_skip(&r, w));
        if (rc != CP_OK)
            return rc;
    }
    CORRUPT_UNLESS(out->id != 0);
    return CP_OK;
}

/* One field of a Mapping: 1 id, 2-4 addresses, 5 filename, 6 build id,
 * 7-10 the has_* flags. */
static int mapping_field(cp__pprof_priv *pp, cp__pbr *r, uint32_t f, int w, cp_pprof_mapping *out)
{
    uint64_t v;
    if (f == 5 || f == 6)
        return read_str(pp, r, w, f == 5 ? &out->filename : &out->build_id);
    if (f < 1 || f > 10)
        return cp__pbr_skip(r, w) ? CP_OK : CP_ECORRUPT;
    CORRUPT_UNLESS(read_scalar(r, w, &v) == CP_OK);
    uint64_t *nums[] = {&out->id, &out->memory_start, &out->memory_limit, &out->file_offset};
    bool *flags[] = {&out->has_functions, &out->has_filenames, &out->has_line_numbers,
                     &out->has_inline_frames};
    if (f <= 4)
        *nums[f - 1] = v;
    else
        *flags[f - 7] = v != 0;
    return CP_OK;
}

int cp__pprof_parse_mapping(cp__pprof_priv *pp, cp__pbr r, cp_pprof_mapping *out)
{
    out->filename = out->build_id = "";
    while (r.p < r.end) {
        uint32_t f;
        int w;
        CORRUPT_UNLESS(cp__pbr_key(&r, &f, &w));
        int rc = mapping_field(pp, &r, f, w, out);
        if (rc != CP_OK)
            return rc;
    }
    CORRUPT_UNLESS(out->id != 0);
    return CP_OK;
}
