/*
 * api.h — request routing for the JSON API and the embedded pages
 * (API.md). Independent of the HTTP library: http.c hands over method,
 * path, parameters and body and sends back an ex_resp.
 */
#ifndef EX_API_H
#define EX_API_H

#include <stddef.h>
#include <stdint.h>

#include "contprof.h"
#include "params.h"
#include "store.h"

typedef struct ex_api {
    ex_store *store;
    size_t max_inflated; /* pprof inflate cap (zip bombs) */
} ex_api;

typedef struct ex_resp {
    int status;
    const char *content_type;  /* static string */
    cp_buf body;               /* owned; or static_body below */
    const uint8_t *static_body;
    size_t static_len;
    char disposition[200];     /* Content-Disposition, "" = none */
} ex_resp;

/* A 200 JSON response with an empty body the response owns; release
 * with ex_resp_free (static_body is never freed). */
void ex_resp_init(ex_resp *r);
void ex_resp_free(ex_resp *r);
/* Set a JSON error body {"error": msg}. */
void ex_resp_error(ex_resp *r, int status, const char *msg);

/* Route a GET (or HEAD) request. path has no query string. */
void ex_api_get(const ex_api *api, const char *path, const ex_params *ps, ex_resp *r);

/* POST /profiling/v1/input with a complete body. */
/* DELETE /api/profiles/{id} and DELETE /api/services/{service}. */
void ex_api_delete(const ex_api *api, const char *path, ex_resp *r);

void ex_api_intake(const ex_api *api, const char *content_type, const uint8_t *body, size_t len, ex_resp *r);

#endif /* EX_API_H */
