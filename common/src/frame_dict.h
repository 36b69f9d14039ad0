/*
 * frame_dict.h — cp_frame_dict internals shared with the profile (which
 * turns dictionary ids into its own locations) and the collector (which
 * keeps one dictionary for the process and repairs it after fork).
 */
#ifndef CP_FRAME_DICT_H
#define CP_FRAME_DICT_H

#include <stdbool.h>
#include <stdint.h>

#include "contprof.h"

/* The frame with dictionary id (1-based), or NULL if id was never handed
 * out. Reads only published entries. */
const cp_frame *cp__frame_dict_get(const cp_frame_dict *d, uint32_t id);

/* In a forked child: if a parent thread was inside cp_frame_dict_intern at
 * fork time, the hash index may be torn; rebuild it from the published
 * entries (which are always complete), so every id handed out stays
 * valid. The old index is abandoned, not freed. */
void cp__frame_dict_after_fork(cp_frame_dict *d);

#endif /* CP_FRAME_DICT_H */
