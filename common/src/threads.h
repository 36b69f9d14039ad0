/*
 * threads.h — starting the core's own background threads.
 */
#ifndef CP_THREADS_H
#define CP_THREADS_H

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread, so the
 * host's signals (SIGPROF ticks, SIGINT, SIGCHLD...) are never delivered
 * to a profiler thread, and with the thread named (at most 15 chars) so
 * it is recognisable in top/gdb/jstack. Returns pthread_create's result. */
int cp__thread_spawn(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

#endif /* CP_THREADS_H */
