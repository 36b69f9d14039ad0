/*
 * errors.c — names for the core's error codes (cp_strerror).
 *
 * The codes and their texts live in one X-macro table, CP_ERRNO_MAP in
 * contprof.h, so a new code cannot be added without its description.
 */
#include "contprof.h"

/* Static description of err; "unknown error" for a code not in the map. */
const char *cp_strerror(int err)
{
    switch (err) {
#define CP__ERR_CASE(name, val, msg) \
    case (val):                      \
        return (msg);
        CP_ERRNO_MAP(CP__ERR_CASE)
#undef CP__ERR_CASE
    default:
        return "unknown error";
    }
}
