/*
 * pprof_merge.c — several decoded pprof attachments of one upload written
 * back as one pprof (pprof_merge.h).
 *
 * The merged profile has every part's sample types side by side; a sample
 * of part k carries its own values in part k's columns and zeros in the
 * others, so each type's totals and stacks are exactly the part's. Strings
 * are interned across parts; location and function ids are renumbered
 * densely (1-based) part after part. The protobuf is written with a few
 * field writers over one buffer, then gzip'd once.
 */
#include "pprof_merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- protobuf writing ------------------------------------------------ */

typedef struct pbw {
    cp_buf *b;
    int err;
} pbw;

static void pb_raw(pbw *w, const void *p, size_t n)
{
    if (!w->err) w->err = cp_buf_append(w->b, p, n);
}

static void pb_varint(pbw *w, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) { t[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    t[n++] = (uint8_t)v;
    pb_raw(w, t, n);
}

static void pb_tag(pbw *w, unsigned field, unsigned wire) { pb_varint(w, ((uint64_t)field << 3) | wire); }

static void pb_u64(pbw *w, unsigned field, uint64_t v)
{
    if (!v) return;
    pb_tag(w, field, 0);
    pb_varint(w, v);
}

static void pb_bytes(pbw *w, unsigned field, const void *p, size_t n)
{
    pb_tag(w, field, 2);
    pb_varint(w, n);
    pb_raw(w, p, n);
}

/* A nested message is built in its own buffer, then copied in with its
 * length (messages here are small: one sample, location or function). */
static void pb_msg(pbw *w, unsigned field, cp_buf *sub)
{
    pb_bytes(w, field, sub->data ? sub->data : (const uint8_t *)"", sub->len);
    sub->len = 0;
}

/* ---- string interning ------------------------------------------------ */

typedef struct strtab {
    const char **s;   /* index -> string (borrowed from the parts) */
    size_t n, cap;
    uint32_t *slot;   /* hash slots: index + 1, 0 = empty */
    size_t nslot;
} strtab;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    while (*s) h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
    return h;
}

static int strtab_grow(strtab *t)
{
    size_t ns = t->nslot ? t->nslot * 2 : 1024;
    uint32_t *slot = calloc(ns, sizeof *slot);
    if (!slot) return -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t h = hash_str(t->s[i]) & (ns - 1);
        while (slot[h]) h = (h + 1) & (ns - 1);
        slot[h] = (uint32_t)i + 1;
    }
    free(t->slot);
    t->slot = slot;
    t->nslot = ns;
    return 0;
}

/* Index of s in the merged table (added when new); -1 out of memory. */
static int64_t intern(strtab *t, const char *s)
{
    if (!s) s = "";
    if ((t->n + 1) * 2 > t->nslot && strtab_grow(t)) return -1;
    size_t h = hash_str(s) & (t->nslot - 1);
    for (; t->slot[h]; h = (h + 1) & (t->nslot - 1))
        if (strcmp(t->s[t->slot[h] - 1], s) == 0) return t->slot[h] - 1;
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 1024;
        const char **ns = realloc(t->s, nc * sizeof *ns);
        if (!ns) return -1;
        t->s = ns;
        t->cap = nc;
    }
    t->s[t->n] = s;
    t->slot[h] = (uint32_t)++t->n;
    return (int64_t)t->n - 1;
}

/* A string field: interned index, written when not the empty string. */
static void pb_str(pbw *w, strtab *t, unsigned field, const char *s)
{
    int64_t i = intern(t, s);
    if (i < 0 && !w->err) w->err = CP_ENOMEM;
    if (i > 0) pb_u64(w, field, (uint64_t)i);
}

/* ---- the merge ------------------------------------------------------- */

typedef struct merger {
    const ex_merge_part *parts;
    size_t nparts;
    size_t ntypes;      /* merged sample types */
    strtab st;
    cp_buf sub, sub2;
    pbw w;
    char *owned[EX_MERGE_MAX_PARTS * 64]; /* renamed types */
    size_t nowned;
} merger;

static void write_value_type(merger *m, unsigned field, const char *type, const char *unit)
{
    pbw s = {&m->sub, 0};
    pb_str(&s, &m->st, 1, type);
    pb_str(&s, &m->st, 2, unit);
    if (s.err && !m->w.err) m->w.err = s.err;
    pb_msg(&m->w, field, &m->sub);
}

/* A type whose name an earlier part already used keeps its values apart:
 * it is named "<type> (<attachment>)" (a copy owned by the merger). */
static void write_types(merger *m)
{
    for (size_t k = 0; k < m->nparts; k++) {
        const cp_pprof *pp = m->parts[k].pp;
        for (size_t i = 0; i < pp->n_sample_types; i++) {
            const char *type = pp->sample_types[i].type ? pp->sample_types[i].type : "";
            bool clash = false;
            for (size_t j = 0; j < k && !clash; j++) clash = cp_pprof_type_index(m->parts[j].pp, type) >= 0;
            if (clash && m->nowned < EX_MERGE_MAX_PARTS * 64) {
                char alt[300];
                snprintf(alt, sizeof alt, "%s (%s)", type, m->parts[k].name);
                char *copy = strdup(alt);
                if (!copy) { m->w.err = CP_ENOMEM; return; }
                m->owned[m->nowned++] = copy;
                type = copy;
            }
            write_value_type(m, 1, type, pp->sample_types[i].unit);
        }
    }
}

static size_t loc_index(const cp_pprof *pp, uint64_t id)
{
    const cp_pprof_location *l = cp_pprof_location_by_id(pp, id);
    return l ? (size_t)(l - pp->locations) : 0;
}

static void write_label(merger *m, const cp_pprof_label *l)
{
    pbw s = {&m->sub2, 0};
    pb_str(&s, &m->st, 1, l->key);
    if (l->str && *l->str) pb_str(&s, &m->st, 2, l->str);
    if (!l->str || !*l->str) pb_u64(&s, 3, (uint64_t)l->num);
    if (l->num_unit && *l->num_unit) pb_str(&s, &m->st, 4, l->num_unit);
    if (s.err && !m->w.err) m->w.err = s.err;
    pbw o = {&m->sub, 0};
    pb_msg(&o, 3, &m->sub2);
    if (o.err && !m->w.err) m->w.err = o.err;
}

static void write_samples(merger *m, size_t k, uint64_t loc_base, size_t col_base)
{
    const cp_pprof *pp = m->parts[k].pp;
    for (size_t i = 0; i < pp->n_samples && !m->w.err; i++) {
        const cp_pprof_sample *s = &pp->samples[i];
        cp_buf packed;
        cp_buf_init(&packed, 0);
        pbw p = {&packed, 0};
        for (size_t j = 0; j < s->nlocs; j++) pb_varint(&p, loc_base + loc_index(pp, s->location_ids[j]) + 1);
        pbw o = {&m->sub, 0};
        pb_bytes(&o, 1, packed.data, packed.len);
        packed.len = 0;
        for (size_t c = 0; c < m->ntypes; c++) {
            size_t src = c - col_base;
            pb_varint(&p, c >= col_base && src < pp->n_sample_types ? (uint64_t)s->values[src] : 0);
        }
        pb_bytes(&o, 2, packed.data, packed.len);
        cp_buf_free(&packed);
        if ((p.err || o.err) && !m->w.err) m->w.err = CP_ENOMEM;
        for (size_t j = 0; j < s->nlabels; j++) write_label(m, &s->labels[j]);
        pb_msg(&m->w, 2, &m->sub);
    }
}

/* Mappings keep their file names: that is how frame kinds travel
 * ("[python]", "[java:compiled]", a library path…). */
static void write_mappings(merger *m, size_t k, uint64_t map_base)
{
    const cp_pprof *pp = m->parts[k].pp;
    for (size_t i = 0; i < pp->n_mappings && !m->w.err; i++) {
        const cp_pprof_mapping *mp = &pp->mappings[i];
        pbw s = {&m->sub, 0};
        pb_u64(&s, 1, map_base + i + 1);
        pb_u64(&s, 2, mp->memory_start);
        pb_u64(&s, 3, mp->memory_limit);
        pb_u64(&s, 4, mp->file_offset);
        pb_str(&s, &m->st, 5, mp->filename);
        pb_str(&s, &m->st, 6, mp->build_id);
        pb_u64(&s, 7, mp->has_functions);
        pb_u64(&s, 8, mp->has_filenames);
        pb_u64(&s, 9, mp->has_line_numbers);
        pb_u64(&s, 10, mp->has_inline_frames);
        if (s.err && !m->w.err) m->w.err = s.err;
        pb_msg(&m->w, 3, &m->sub);
    }
}

static void write_locations(merger *m, size_t k, uint64_t loc_base, uint64_t fn_base, uint64_t map_base)
{
    const cp_pprof *pp = m->parts[k].pp;
    for (size_t i = 0; i < pp->n_locations && !m->w.err; i++) {
        const cp_pprof_location *l = &pp->locations[i];
        const cp_pprof_mapping *mp = l->mapping_id ? cp_pprof_mapping_by_id(pp, l->mapping_id) : NULL;
        pbw s = {&m->sub, 0};
        pb_u64(&s, 1, loc_base + i + 1);
        if (mp) pb_u64(&s, 2, map_base + (uint64_t)(mp - pp->mappings) + 1);
        pb_u64(&s, 3, l->address);
        for (size_t j = 0; j < l->nlines; j++) {
            const cp_pprof_function *f = cp_pprof_function_by_id(pp, l->lines[j].function_id);
            pbw ln = {&m->sub2, 0};
            if (f) pb_u64(&ln, 1, fn_base + (uint64_t)(f - pp->functions) + 1);
            pb_u64(&ln, 2, (uint64_t)l->lines[j].line);
            pb_msg(&s, 4, &m->sub2);
            if (ln.err) s.err = ln.err;
        }
        if (s.err && !m->w.err) m->w.err = s.err;
        pb_msg(&m->w, 4, &m->sub);
    }
}

static void write_functions(merger *m, size_t k, uint64_t fn_base)
{
    const cp_pprof *pp = m->parts[k].pp;
    for (size_t i = 0; i < pp->n_functions && !m->w.err; i++) {
        const cp_pprof_function *f = &pp->functions[i];
        pbw s = {&m->sub, 0};
        pb_u64(&s, 1, fn_base + i + 1);
        pb_str(&s, &m->st, 2, f->name);
        pb_str(&s, &m->st, 3, f->system_name);
        pb_str(&s, &m->st, 4, f->filename);
        pb_u64(&s, 5, (uint64_t)f->start_line);
        if (s.err && !m->w.err) m->w.err = s.err;
        pb_msg(&m->w, 5, &m->sub);
    }
}

static void write_times(merger *m)
{
    int64_t t0 = 0, t1 = 0;
    for (size_t k = 0; k < m->nparts; k++) {
        const cp_pprof *pp = m->parts[k].pp;
        if (pp->time_nanos <= 0) continue;
        if (!t0 || pp->time_nanos < t0) t0 = pp->time_nanos;
        if (pp->time_nanos + pp->duration_nanos > t1) t1 = pp->time_nanos + pp->duration_nanos;
    }
    pb_u64(&m->w, 9, (uint64_t)t0);
    pb_u64(&m->w, 10, (uint64_t)(t1 - t0));
    const cp_pprof *p0 = m->parts[0].pp;
    if (p0->period_type.type) write_value_type(m, 11, p0->period_type.type, p0->period_type.unit);
    pb_u64(&m->w, 12, (uint64_t)p0->period);
    for (size_t k = 0; k < m->nparts; k++)
        for (size_t i = 0; i < m->parts[k].pp->n_comments; i++) {
            int64_t c = intern(&m->st, m->parts[k].pp->comments[i]);
            if (c < 0) m->w.err = CP_ENOMEM;
            else { pb_tag(&m->w, 13, 0); pb_varint(&m->w, (uint64_t)c); }
        }
}

static void write_strings(merger *m, cp_buf *out)
{
    pbw w = {out, 0};
    for (size_t i = 0; i < m->st.n; i++) pb_bytes(&w, 6, m->st.s[i], strlen(m->st.s[i]));
    if (w.err && !m->w.err) m->w.err = w.err;
}

static int gzip_into(const cp_buf *raw, cp_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) return CP_ENOMEM;
    uLong bound = deflateBound(&z, (uLong)raw->len) + 32;
    uint8_t *dst = malloc(bound);
    int rc = dst ? CP_OK : CP_ENOMEM;
    if (!rc) {
        z.next_in = raw->data ? raw->data : (Bytef *)"";
        z.avail_in = (uInt)raw->len;
        z.next_out = dst;
        z.avail_out = (uInt)bound;
        rc = deflate(&z, Z_FINISH) == Z_STREAM_END ? CP_OK : CP_ENOMEM;
    }
    if (!rc) rc = cp_buf_append(out, dst, z.total_out);
    deflateEnd(&z);
    free(dst);
    return rc;
}

int ex_pprof_merge(const ex_merge_part *parts, size_t nparts, cp_buf *out)
{
    merger m;
    cp_buf body, strings;
    memset(&m, 0, sizeof m);
    m.parts = parts;
    m.nparts = nparts;
    cp_buf_init(&body, 0);
    cp_buf_init(&strings, 0);
    cp_buf_init(&m.sub, 0);
    cp_buf_init(&m.sub2, 0);
    m.w.b = &body;
    if (!nparts || intern(&m.st, "") != 0) return CP_EINVAL;
    for (size_t k = 0; k < nparts; k++) m.ntypes += parts[k].pp->n_sample_types;
    write_types(&m);
    uint64_t loc_base = 0, fn_base = 0, map_base = 0;
    size_t col = 0;
    for (size_t k = 0; k < nparts && !m.w.err; k++) {
        write_samples(&m, k, loc_base, col);
        write_mappings(&m, k, map_base);
        write_locations(&m, k, loc_base, fn_base, map_base);
        write_functions(&m, k, fn_base);
        loc_base += parts[k].pp->n_locations;
        fn_base += parts[k].pp->n_functions;
        map_base += parts[k].pp->n_mappings;
        col += parts[k].pp->n_sample_types;
    }
    write_times(&m);
    write_strings(&m, &strings);
    int rc = m.w.err;
    if (!rc) rc = cp_buf_append(&strings, body.data ? body.data : (const uint8_t *)"", body.len);
    if (!rc) rc = gzip_into(&strings, out);
    cp_buf_free(&body);
    cp_buf_free(&strings);
    cp_buf_free(&m.sub);
    cp_buf_free(&m.sub2);
    free(m.st.s);
    free(m.st.slot);
    for (size_t i = 0; i < m.nowned; i++) free(m.owned[i]);
    return rc;
}
