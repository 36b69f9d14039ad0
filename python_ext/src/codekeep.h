/*
 * codekeep.h — code identity that survives address reuse.
 *
 * Raw samples carry code-object addresses; the resolver names them later
 * (up to a second for a coalesced sample, more while it waits for the
 * GIL). A code object that dies meanwhile — a module's body once its
 * import is done, an exec'd snippet — could have its address taken by the
 * next module's code, which would then be charged the first one's samples.
 *
 * So code objects the sampler has recently seen are not freed when their
 * last reference goes: a wrapper around PyCode_Type's deallocator keeps
 * them (reference count back to 1, owned here) for KEEP seconds, long
 * enough for every sample that names them to be resolved, and then lets
 * them go through the real deallocator. While kept, no other object can
 * take the address, and the resolver finds a live code object there. Code
 * the sampler never saw dies at once, as before.
 */
#ifndef CP_CODEKEEP_H
#define CP_CODEKEEP_H

#include <stdbool.h>
#include <stdint.h>

/* Install the deallocator wrapper (once per process; GIL held) and keep
 * code objects of the calling thread's interpreter from now on. */
void cp__codekeep_start(void);

/* Stop keeping and release everything kept. GIL held. */
void cp__codekeep_stop(void);

/* A sample (sampler thread, or a sampled allocation or event on any
 * thread) names the code object at addr. Lock-free. */
void cp__codekeep_seen(uint64_t addr);
/* The same with the caller's cp_now_ns() reading: one clock read for all
 * the frames of a stack. */
void cp__codekeep_seen_at(uint64_t addr, int64_t now);

/* Let go of code objects kept longer than KEEP (all of them when all).
 * GIL held; may run deallocators. */
void cp__codekeep_release(bool all);

/* Code objects kept right now (for tests and debug logs). */
size_t cp__codekeep_count(void);

#endif
