/*
 * ring_stress.c — the Python front end's raw-sample ring (python_ext/src/
 * rawring.c), which needs no interpreter: its rules in one thread, then one
 * producer and one consumer at full speed. Built plain and under
 * ThreadSanitizer (python_ring_stress_tsan).
 *
 * 1. Rules: FIFO order; a full ring refuses (the caller counts the drop);
 *    once the consumer has released everything, the next sample goes to
 *    the first slot again, so a ring the consumer keeps up with stays in a
 *    few resident slots.
 * 2. Stress: the producer writes numbered samples whose frames carry a
 *    checksum, retrying while the ring is full; the consumer, pausing now
 *    and then so that the ring is found empty, full and in between, must
 *    read every number once, in order, intact.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rawring.h"

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "ring_stress: %s:%d: check failed: %s\n", __FILE__,   \
                    __LINE__, #c);                                                \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

enum { SLOTS = 64, FRAMES = 8, COUNT = 200000 };

static void fill(cp_rawsample *s, uint64_t seq)
{
    s->thread_id = seq;
    s->nframes = (uint32_t)(seq % FRAMES) + 1;
    for (uint32_t i = 0; i < s->nframes; i++) {
        s->frames[i].code = seq * 31 + i;
        s->frames[i].offset = (int32_t)(seq ^ i);
    }
}

static void check(const cp_rawsample *s, uint64_t seq)
{
    CHECK(s->thread_id == seq);
    CHECK(s->nframes == (uint32_t)(seq % FRAMES) + 1);
    for (uint32_t i = 0; i < s->nframes; i++) {
        CHECK(s->frames[i].code == seq * 31 + i);
        CHECK(s->frames[i].offset == (int32_t)(seq ^ i));
    }
}

static void rules(void)
{
    cp_rawring r;
    cp_rawsample *first = NULL, *s;

    CHECK(cp__ring_init(&r, 8, FRAMES, 0));
    CHECK(cp__ring_peek(&r) == NULL);
    /* Several laps of three: FIFO, and each lap starts at the first slot. */
    for (uint64_t lap = 0; lap < 5; lap++) {
        for (uint64_t k = 0; k < 3; k++) {
            CHECK((s = cp__ring_reserve(&r)) != NULL);
            if (k == 0 && lap == 0)
                first = s;
            if (k == 0)
                CHECK(s == first);
            fill(s, lap * 10 + k);
            cp__ring_commit(&r);
        }
        for (uint64_t k = 0; k < 3; k++) {
            CHECK((s = cp__ring_peek(&r)) != NULL);
            check(s, lap * 10 + k);
            cp__ring_release(&r);
        }
        CHECK(cp__ring_peek(&r) == NULL);
    }
    /* Not empty: samples continue after the unread ones, wrapping round. */
    for (uint64_t k = 0; k < 6; k++) {
        CHECK((s = cp__ring_reserve(&r)) != NULL);
        fill(s, 100 + k);
        cp__ring_commit(&r);
    }
    for (uint64_t k = 0; k < 4; k++) {
        check(cp__ring_peek(&r), 100 + k);
        cp__ring_release(&r);
    }
    for (uint64_t k = 6; k < 12; k++) {
        CHECK((s = cp__ring_reserve(&r)) != NULL);
        fill(s, 100 + k);
        cp__ring_commit(&r);
    }
    CHECK(cp__ring_used(&r) == 8);
    CHECK(cp__ring_reserve(&r) == NULL); /* full */
    for (uint64_t k = 4; k < 12; k++) {
        check(cp__ring_peek(&r), 100 + k);
        cp__ring_release(&r);
    }
    CHECK(cp__ring_peek(&r) == NULL);
    CHECK(cp__ring_reserve(&r) == first);
    cp__ring_free(&r);
}

static cp_rawring g_ring;

static void *producer(void *arg)
{
    (void)arg;
    for (uint64_t seq = 0; seq < COUNT; seq++) {
        cp_rawsample *s;
        while ((s = cp__ring_reserve(&g_ring)) == NULL)
            sched_yield();
        fill(s, seq);
        cp__ring_commit(&g_ring);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    unsigned rnd = 12345;
    (void)arg;
    for (uint64_t seq = 0; seq < COUNT;) {
        cp_rawsample *s = cp__ring_peek(&g_ring);
        if (s == NULL) {
            sched_yield();
            continue;
        }
        check(s, seq++);
        cp__ring_release(&g_ring);
        rnd = rnd * 1103515245u + 12345u;
        if ((rnd >> 16) % 512 == 0) /* now and then let the ring fill */
            for (int i = 0; i < 20; i++)
                sched_yield();
    }
    return NULL;
}

int main(void)
{
    pthread_t p, c;

    rules();
    CHECK(cp__ring_init(&g_ring, SLOTS, FRAMES, 0));
    CHECK(pthread_create(&c, NULL, consumer, NULL) == 0);
    CHECK(pthread_create(&p, NULL, producer, NULL) == 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    CHECK(cp__ring_peek(&g_ring) == NULL);
    cp__ring_free(&g_ring);
    printf("ring_stress: ok (%d samples through %d slots)\n", COUNT, SLOTS);
    return 0;
}
