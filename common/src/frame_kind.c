/*
 * frame_kind.c — frame kinds and the pprof mapping names that carry them.
 *
 * The encoder puts every location of a known kind in a mapping whose file
 * name says the kind (native frames: their library path); readers such as
 * the explorer turn the name back into a kind here.
 */
#include <string.h>

#include "contprof.h"

static const char *const kind_names[CP_FRAME__COUNT] = {
    [CP_FRAME_UNSPECIFIED] = "",
    [CP_FRAME_PYTHON] = "[python]",
    [CP_FRAME_NATIVE] = "[native]",
    [CP_FRAME_JAVA_INTERPRETED] = "[java:interpreted]",
    [CP_FRAME_JAVA_COMPILED] = "[java:compiled]",
    [CP_FRAME_JAVA_INLINED] = "[java:inlined]",
    [CP_FRAME_JAVA_NATIVE] = "[java:native]",
    [CP_FRAME_KERNEL] = "[kernel]",
    [CP_FRAME_PSEUDO] = "[pseudo]",
};

const char *cp_frame_kind_mapping(cp_frame_kind kind)
{
    return (unsigned)kind < CP_FRAME__COUNT ? kind_names[kind] : "";
}

cp_frame_kind cp_frame_kind_of_mapping(const char *mapping_file)
{
    if (!mapping_file || !mapping_file[0])
        return CP_FRAME_UNSPECIFIED;
    for (unsigned k = 1; k < CP_FRAME__COUNT; k++)
        if (strcmp(kind_names[k], mapping_file) == 0)
            return (cp_frame_kind)k;
    return CP_FRAME_NATIVE; /* a library path */
}
