/*
 * alloc.c — allocation wrappers with failure injection for tests.
 *
 * A single atomic countdown decides whether an allocation is the one to
 * fail. When disarmed (the production case) the countdown is negative and
 * the check is one relaxed load.
 */
#include "alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Allocations left before the injected failure; < 0 = disarmed. */
static _Atomic long g_countdown = -1;
static _Atomic unsigned long g_injected = 0;

void cp__alloc_fail_after(long n)
{
    atomic_store(&g_countdown, n < 0 ? -1 : (n == 0 ? 1 : n));
}

unsigned long cp__alloc_injected(void)
{
    return atomic_load(&g_injected);
}

/* True when this allocation must fail. Decrements the countdown with a CAS
 * so that concurrent callers fail exactly one allocation between them. */
static int should_fail(void)
{
    long c = atomic_load_explicit(&g_countdown, memory_order_relaxed);
    while (c > 0) {
        long next = c == 1 ? -1 : c - 1;
        if (atomic_compare_exchange_weak(&g_countdown, &c, next)) {
            if (c == 1) {
                atomic_fetch_add(&g_injected, 1);
                return 1;
            }
            return 0;
        }
    }
    return 0;
}

void *cp__malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *cp__calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *cp__realloc(void *ptr, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(ptr, n ? n : 1);
}

void cp__free(void *ptr)
{
    free(ptr);
}

char *cp__strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = cp__malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *cp__strdup(const char *s)
{
    return s ? cp__strndup(s, SIZE_MAX) : NULL;
}

void *cp__zalloc(void *opaque, unsigned items, unsigned size)
{
    (void)opaque;
    return cp__calloc(items, size);
}

void cp__zfree(void *opaque, void *ptr)
{
    (void)opaque;
    cp__free(ptr);
}
