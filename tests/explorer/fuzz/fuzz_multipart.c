/*
 * fuzz_multipart.c — libFuzzer target for the intake's own parsers:
 * multipart/form-data bodies (the first line of the input is used as the
 * Content-Type header) and the JSON reader on each part.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char ct[256], boundary[128], err[200];
    const uint8_t *nl = memchr(data, '\n', size < 255 ? size : 255);
    if (!nl) return 0;
    size_t n = (size_t)(nl - data);
    memcpy(ct, data, n);
    ct[n] = 0;
    if (ex_mp_boundary(ct, boundary, sizeof boundary, err, sizeof err)) return 0;
    ex_multipart mp;
    if (ex_mp_parse(nl + 1, size - n - 1, boundary, &mp, err, sizeof err)) return 0;
    for (size_t i = 0; i < mp.nparts; i++) {
        ex_jval *v = NULL;
        if (ex_json_parse((const char *)mp.parts[i].data, mp.parts[i].len, &v, err, sizeof err) == 0) {
            (void)ex_json_str(v, "start");
            ex_json_free(v);
        }
    }
    return 0;
}
