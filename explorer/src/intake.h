/*
 * intake.h — the Datadog-agent-compatible intake: POST
 * /profiling/v1/input with the v2.4 multipart body (DESIGN.md "Upload").
 */
#ifndef EX_INTAKE_H
#define EX_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Handle one complete request body. Returns the HTTP status (200, 400,
 * 413, 500) and writes the JSON response body ({"id":..} or
 * {"error":..}) to resp. */
int ex_intake_handle(ex_store *st, const char *content_type, const uint8_t *body, size_t len,
                     size_t max_inflated, cp_buf *resp);

#endif /* EX_INTAKE_H */
