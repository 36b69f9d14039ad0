/*
 * params.h — decoded query-string parameters of one request (repeated
 * keys allowed), as the HTTP layer hands them to the API.
 */
#ifndef EX_PARAMS_H
#define EX_PARAMS_H

#include <stddef.h>

#define EX_MAX_PARAMS 64

typedef struct ex_param {
    const char *key, *val; /* borrowed from the HTTP library */
} ex_param;

typedef struct ex_params {
    size_t n;
    ex_param p[EX_MAX_PARAMS];
} ex_params;

/* First value of key, or NULL. */
const char *ex_param_get(const ex_params *ps, const char *key);
/* Append (ignored beyond EX_MAX_PARAMS). */
void ex_param_add(ex_params *ps, const char *key, const char *val);

#endif /* EX_PARAMS_H */
