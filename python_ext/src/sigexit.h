/*
 * sigexit.h — keep the last profile of a process killed by SIGTERM,
 * SIGHUP or SIGINT whose disposition is the default (containers, process
 * managers, multiprocessing's Pool.terminate).
 *
 * For each of those signals still at SIG_DFL when profiling starts, a
 * handler is installed at the C level (Python's signal.getsignal still
 * says SIG_DFL, and a handler the program installs later simply replaces
 * ours). The handler only wakes a waiting thread; that thread flushes the
 * profile within flush_deadline_ms, puts SIG_DFL back and sends the same
 * signal again, so the process dies of it with the same exit status as
 * without the profiler. A second signal during the flush kills at once.
 */
#ifndef CP_SIGEXIT_H
#define CP_SIGEXIT_H

#include <stdint.h>

/* Install the handlers (where the disposition is SIG_DFL) and start the
 * waiting thread. Also called in a forked child (the handlers are
 * inherited, the thread is not). Returns 0 or a CP_* error. */
int cp__sigexit_start(int64_t deadline_ms);

/* stop() begins its final flush: a signal arriving now waits for it
 * (within the deadline) instead of flushing a second time. */
void cp__sigexit_stopping(void);

/* After stop()'s flush: put SIG_DFL back where our handler is still
 * installed and join the thread (unless a signal is being handled: then
 * that thread now ends the process). */
void cp__sigexit_stop(void);

/* In a forked child, before cp__sigexit_start: the thread is gone. */
void cp__sigexit_forget(void);

#endif
