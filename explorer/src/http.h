/*
 * http.h — the explorer's HTTP server on libmicrohttpd: one thread per
 * connection (aggregations can take a moment and must not stall uploads),
 * bodies capped at max_body, everything routed to api.c.
 */
#ifndef EX_HTTP_H
#define EX_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"

#define EX_DEFAULT_MAX_BODY (16u * 1024 * 1024)

typedef struct ex_http_opts {
    const char *listen;   /* "127.0.0.1:8127", "[::1]:8127", "0.0.0.0:80" */
    size_t max_body;      /* bytes; 0 = EX_DEFAULT_MAX_BODY */
    ex_api api;
} ex_http_opts;

typedef struct ex_http ex_http;

/* Parse "host:port" (IPv6 in brackets) into its parts. -1 if malformed. */
int ex_http_parse_listen(const char *listen, char *host, size_t hostlen, uint16_t *port);

/* Bind and start serving. NULL with a one-line reason in err (address in
 * use, bad address...). opts is copied. */
ex_http *ex_http_start(const ex_http_opts *opts, char *err, size_t errlen);

/* The bound port (useful after listening on port 0). */
uint16_t ex_http_port(const ex_http *h);

/* Stop accepting, finish running requests, free. */
void ex_http_stop(ex_http *h);

#endif /* EX_HTTP_H */
