/*
 * spinlock.h — a spin lock on an atomic_flag, for critical sections of a
 * few memory operations (the live-heap table, the exit ring): pause while
 * the holder is likely running, yield after 64 tries.
 */
#ifndef CP_SPINLOCK_H
#define CP_SPINLOCK_H

#include <sched.h>
#include <stdatomic.h>

static inline void cp__spin_lock(atomic_flag *f)
{
    for (unsigned n = 0; atomic_flag_test_and_set_explicit(f, memory_order_acquire); n++) {
        if (n < 64)
            __builtin_ia32_pause();
        else
            sched_yield();
    }
}

static inline void cp__spin_unlock(atomic_flag *f)
{
    atomic_flag_clear_explicit(f, memory_order_release);
}

#endif
