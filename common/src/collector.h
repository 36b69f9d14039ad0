/*
 * collector.h — internal interface between the collector (the current
 * profile) and the scheduler (the thread that rotates and exports it).
 */
#ifndef CP_COLLECTOR_H
#define CP_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "contprof.h"
#include "export.h"

/* Pick the value columns for rt (rt->kinds ∩ enabled settings) and open
 * the first profile; cp_add_sample works from here on. CP_EINVAL when no
 * kind is enabled, CP_ENOMEM. */
int cp__collector_open(const cp_runtime_desc *rt);

/* Drop the current profile without exporting it (a failed start). */
void cp__collector_close(void);

/* Run the export hook, swap the current profile for a fresh one (or, when
 * last, for none: cp_add_sample then returns CP_ESTATE), and turn the old
 * one into a job numbered by the process-wide sequence. NULL when there is
 * nothing to export or no memory (counted in last_error). */
cp__job *cp__collector_rotate(bool last);

/* In a forked child: fresh lock; the parent's profile is abandoned. */
void cp__collector_after_fork(void);

/* Keep p reachable but never touch it again (a forked child's copy of
 * state a parent thread may have been changing). Returns p. */
void *cp__collector_bury(void *p);

/* In a forked child: new locks everywhere, the parent's run forgotten
 * (not restarted), new runtime-id. */
void cp__after_fork_reset(void);

#endif /* CP_COLLECTOR_H */
