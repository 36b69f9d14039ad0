/*
 * multipart.h — a strict multipart/form-data parser (RFC 7578) for the
 * intake. Parts point into the caller's body buffer; nothing is copied
 * except the small header values.
 */
#ifndef EX_MULTIPART_H
#define EX_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#define EX_MP_MAX_PARTS 16

typedef struct ex_mp_part {
    char name[128];         /* Content-Disposition name=     */
    char filename[128];     /* Content-Disposition filename= */
    char content_type[128];
    const uint8_t *data;    /* into the body; not owned      */
    size_t len;
} ex_mp_part;

typedef struct ex_multipart {
    size_t nparts;
    ex_mp_part parts[EX_MP_MAX_PARTS];
} ex_multipart;

/* The boundary parameter of a Content-Type header value, if the type is
 * multipart/form-data. Returns 0 and copies it to out (NUL-terminated),
 * or -1 with a one-line reason in err. */
int ex_mp_boundary(const char *content_type, char *out, size_t outlen, char *err, size_t errlen);

/* Split body into parts. Returns 0, or -1 with a one-line reason (missing
 * or garbled boundary lines, truncated body, more than EX_MP_MAX_PARTS
 * parts, part without a name). The parts borrow from body. */
int ex_mp_parse(const uint8_t *body, size_t len, const char *boundary, ex_multipart *mp,
                char *err, size_t errlen);

/* Part by form name, or NULL. */
const ex_mp_part *ex_mp_find(const ex_multipart *mp, const char *name);

#endif /* EX_MULTIPART_H */
