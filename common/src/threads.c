/*
 * threads.c — spawning the core's background threads (scheduler,
 * exporter) with all signals blocked and a recognisable name.
 *
 * A new thread inherits the creating thread's signal mask, so the mask is
 * set around pthread_create and restored right after: the host thread's
 * own mask is unchanged when this returns.
 */
#include "threads.h"

#include <signal.h>

int cp__thread_spawn(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0 && name)
        pthread_setname_np(*t, name);
    return rc;
}
