/*
 * wall_sampler.h — the wall-clock sampler thread.
 *
 * Every wall interval it signals at most wall_threads_max registered Java
 * threads, round robin, each sample weighted by the time since that thread's
 * previous one, so running, sleeping and blocked threads all show their
 * wall time. A thread that has not run since its last wall sample is not
 * signalled: its last stack is repeated. The thread also watches that the
 * sampling signal is still ours, and arms CPU timers for threads adopted
 * after a late attach.
 */
#ifndef CP_JVM_WALL_SAMPLER_H
#define CP_JVM_WALL_SAMPLER_H

/* Start the (native, detached) sampler thread. It exits by itself once the
 * agent leaves the running state; nothing waits for it. */
int cp__wall_sampler_start(void);

/* ThreadEnd, on the ending thread: its wall time since its last wall
 * sample goes to the store as a WALL_END record, which the resolver
 * charges to the thread's last wall stack. A thread shorter than the gap
 * between two looks at it (at the 50 ms default, most threads of a server
 * that starts one per request) is seen with odds in proportion to its
 * life: one that was seen also stands for the ones like it that were not
 * (cp_wall_unseen_ns), an unseen one is charged nothing. */
struct cp__thread_slot;
void cp__wall_thread_end(struct cp__thread_slot *s);

#endif /* CP_JVM_WALL_SAMPLER_H */
