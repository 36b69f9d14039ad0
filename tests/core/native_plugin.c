/*
 * native_plugin.c — a shared object that test_native_unwind dlopens after
 * the unwinder took its first snapshot of the loaded objects.
 */
#include <stdatomic.h>

__attribute__((noinline)) static void plugin_inner(atomic_int *ready, atomic_bool *stop, volatile unsigned long *sink)
{
    atomic_store(ready, 1);
    while (!atomic_load(stop))
        *sink = *sink * 13 + 5;
}

__attribute__((visibility("default"))) void plugin_spin(atomic_int *ready, atomic_bool *stop,
                                                        volatile unsigned long *sink)
{
    plugin_inner(ready, stop, sink);
    ++*sink;
}
