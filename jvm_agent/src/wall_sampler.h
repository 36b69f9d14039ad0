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

#endif /* CP_JVM_WALL_SAMPLER_H */
