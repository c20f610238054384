/*
 * tests/unit/test_spsc.c - single-threaded semantics of core/spsc: capacities accepted and
 * refused, fill to capacity and -EAGAIN, order kept across many wrap-arounds of the slots and
 * of the uint32_t indices, partial batches, is_empty and count. One thread plays both ends;
 * rh_spsc_validate runs after each step. test_spsc_stress covers two threads.
 */
#include <errno.h>
#include <stdint.h>

#include "core/spsc.h"
#include "tests/harness/check.h"

#define ITEMS_MAX 256

static void *item_of(uint32_t seq);
static void start_at(struct rh_spsc *ring, uint32_t idx);
static void test_bad_caps(void);
static void test_fill_and_drain(uint32_t cap);
static void test_wrap(uint32_t cap, uint32_t start_idx);
static void test_batches(uint32_t cap, uint32_t start_idx);
static void test_batch_edges(void);

int main(void)
{
    static const uint32_t caps[] = {1, 2, 8, 64, 128};

    test_bad_caps();
    for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        test_fill_and_drain(caps[i]);
        test_wrap(caps[i], 0);
        test_wrap(caps[i], UINT32_MAX - 3 * caps[i]);
        test_batches(caps[i], 0);
        test_batches(caps[i], UINT32_MAX - 5);
    }
    test_batch_edges();
    return rh_check_finish();
}

/* Items are sequence numbers plus one, so none is NULL. */
static void *item_of(uint32_t seq)
{
    return (void *)((uintptr_t)seq + 1);
}

/* Moves both indices of an empty ring to @idx, so the uint32_t wrap is reached in a few steps.
 * The struct is visible only for inlining; this test is the one place that sets its fields. */
static void start_at(struct rh_spsc *ring, uint32_t idx)
{
    atomic_store(&ring->tail_idx, idx);
    atomic_store(&ring->head_idx, idx);
    ring->head_idx_cache = idx;
    ring->tail_idx_cache = idx;
}

static void test_bad_caps(void)
{
    static const uint32_t bad[] = {0,         3, 6, 1000, RH_SPSC_CAP_MAX + 1, RH_SPSC_CAP_MAX << 1,
                                   UINT32_MAX};
    struct rh_spsc *ring = NULL;

    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(rh_spsc_init(&ring, bad[i]), -EINVAL);
        CHECK(ring == NULL);
    }

    CHECK_EQ(rh_spsc_init(&ring, RH_SPSC_CAP_MAX), 0);
    CHECK_EQ(rh_spsc_cap(ring), RH_SPSC_CAP_MAX);
    CHECK(rh_spsc_is_empty(ring));
    rh_spsc_validate(ring);
    rh_spsc_free(ring);
    rh_spsc_free(NULL);
}

static void test_fill_and_drain(uint32_t cap)
{
    struct rh_spsc *ring = NULL;
    int sentinel;

    CHECK_EQ(rh_spsc_init(&ring, cap), 0);
    if (!ring) return;
    CHECK_EQ(rh_spsc_cap(ring), cap);
    CHECK(rh_spsc_is_empty(ring));
    CHECK_EQ(rh_spsc_count(ring), 0);
    CHECK(rh_spsc_pop(ring) == NULL);
    rh_spsc_validate(ring);

    for (uint32_t i = 0; i < cap; i++) {
        CHECK_EQ(rh_spsc_push(ring, item_of(i)), 0);
        CHECK(!rh_spsc_is_empty(ring));
        CHECK_EQ(rh_spsc_count(ring), i + 1);
        rh_spsc_validate(ring);
    }
    CHECK_EQ(rh_spsc_push(ring, &sentinel), -EAGAIN);
    CHECK_EQ(rh_spsc_push(ring, &sentinel), -EAGAIN);
    CHECK_EQ(rh_spsc_push_n(ring, (void *const[]){&sentinel}, 1), 0);
    CHECK_EQ(rh_spsc_count(ring), cap);
    rh_spsc_validate(ring);

    for (uint32_t i = 0; i < cap; i++) {
        CHECK(rh_spsc_pop(ring) == item_of(i));
        CHECK_EQ(rh_spsc_count(ring), cap - i - 1);
        rh_spsc_validate(ring);
    }
    CHECK(rh_spsc_pop(ring) == NULL);
    CHECK(rh_spsc_is_empty(ring));
    CHECK_EQ(rh_spsc_pop_n(ring, (void *[1]){NULL}, 1), 0);

    /* Full again after draining: the freed slots are all reusable. */
    for (uint32_t i = 0; i < cap; i++)
        CHECK_EQ(rh_spsc_push(ring, item_of(i)), 0);
    CHECK_EQ(rh_spsc_push(ring, &sentinel), -EAGAIN);
    for (uint32_t i = 0; i < cap; i++)
        CHECK(rh_spsc_pop(ring) == item_of(i));
    rh_spsc_validate(ring);
    rh_spsc_free(ring);
}

/* Pushes and pops in uneven steps for many laps of the slots, from index @start_idx. */
static void test_wrap(uint32_t cap, uint32_t start_idx)
{
    struct rh_spsc *ring = NULL;
    uint32_t pushed = 0, popped = 0, laps = 50;

    CHECK_EQ(rh_spsc_init(&ring, cap), 0);
    if (!ring) return;
    start_at(ring, start_idx);
    rh_spsc_validate(ring);

    for (uint32_t step = 0; popped < laps * cap; step++) {
        uint32_t push_count = 1 + step % 3, pop_count = 1 + (step + 1) % 3;

        for (uint32_t i = 0; i < push_count; i++) {
            int rc = rh_spsc_push(ring, item_of(pushed));
            if (pushed - popped == cap) {
                CHECK_EQ(rc, -EAGAIN);
                break;
            }
            CHECK_EQ(rc, 0);
            pushed++;
        }
        CHECK_EQ(rh_spsc_count(ring), pushed - popped);
        rh_spsc_validate(ring);

        for (uint32_t i = 0; i < pop_count; i++) {
            void *item = rh_spsc_pop(ring);
            if (popped == pushed) {
                CHECK(item == NULL);
                break;
            }
            CHECK(item == item_of(popped));
            popped++;
        }
        CHECK_EQ(rh_spsc_is_empty(ring), pushed == popped);
        rh_spsc_validate(ring);
    }
    while (rh_spsc_pop(ring) == item_of(popped))
        popped++;
    CHECK_EQ(popped, pushed);
    CHECK(rh_spsc_is_empty(ring));
    CHECK_EQ(atomic_load(&ring->head_idx), start_idx + popped);
    rh_spsc_validate(ring);
    rh_spsc_free(ring);
}

/* Batches of every size from 1 to beyond the capacity, partial at both ends. */
static void test_batches(uint32_t cap, uint32_t start_idx)
{
    struct rh_spsc *ring = NULL;
    void *in[ITEMS_MAX], *out[ITEMS_MAX];
    uint32_t pushed = 0, popped = 0;

    CHECK_EQ(rh_spsc_init(&ring, cap), 0);
    if (!ring) return;
    start_at(ring, start_idx);

    for (uint32_t round = 0; round < 400; round++) {
        uint32_t want = 1 + (round * 7) % (2 * cap + 3), got;
        uint32_t room = cap - (pushed - popped), take = 1 + (round * 5) % (2 * cap + 1);

        if (want > ITEMS_MAX) want = ITEMS_MAX;
        if (take > ITEMS_MAX) take = ITEMS_MAX;
        for (uint32_t i = 0; i < want; i++)
            in[i] = item_of(pushed + i);
        got = rh_spsc_push_n(ring, in, want);
        CHECK_EQ(got, want < room ? want : room);
        pushed += got;
        CHECK_EQ(rh_spsc_count(ring), pushed - popped);
        rh_spsc_validate(ring);

        /* Every other round pops singly, to mix both consumers' use of the cached tail. */
        if (round % 2) {
            uint32_t expect = take < pushed - popped ? take : pushed - popped;
            got = rh_spsc_pop_n(ring, out, take);
            CHECK_EQ(got, expect);
            for (uint32_t i = 0; i < got; i++)
                CHECK(out[i] == item_of(popped + i));
            popped += got;
        } else {
            for (uint32_t i = 0; i < take && popped < pushed; i++)
                CHECK(rh_spsc_pop(ring) == item_of(popped++));
        }
        CHECK_EQ(rh_spsc_count(ring), pushed - popped);
        CHECK_EQ(rh_spsc_is_empty(ring), pushed == popped);
        rh_spsc_validate(ring);
    }
    CHECK_GT(pushed, 10 * cap);
    rh_spsc_free(ring);
}

static void test_batch_edges(void)
{
    struct rh_spsc *ring = NULL;
    void *in[8], *out[8] = {NULL};

    CHECK_EQ(rh_spsc_init(&ring, 8), 0);
    if (!ring) return;
    for (uint32_t i = 0; i < 8; i++)
        in[i] = item_of(i);

    CHECK_EQ(rh_spsc_push_n(ring, in, 0), 0);
    CHECK(rh_spsc_is_empty(ring));
    CHECK_EQ(rh_spsc_pop_n(ring, out, 8), 0);
    CHECK(out[0] == NULL);

    /* 5 in, 3 out: the next batch of 6 has 6 free slots, split around the end. */
    CHECK_EQ(rh_spsc_push_n(ring, in, 5), 5);
    CHECK_EQ(rh_spsc_pop_n(ring, out, 3), 3);
    CHECK(out[2] == item_of(2));
    CHECK_EQ(rh_spsc_pop_n(ring, out, 0), 0);
    CHECK_EQ(rh_spsc_push_n(ring, in, 8), 6);
    CHECK_EQ(rh_spsc_count(ring), 8);
    CHECK_EQ(rh_spsc_push(ring, in[0]), -EAGAIN);
    rh_spsc_validate(ring);

    /* Out comes 3, 4, then in[0..5], again split around the end. */
    CHECK_EQ(rh_spsc_pop_n(ring, out, 8), 8);
    CHECK(out[0] == item_of(3));
    CHECK(out[1] == item_of(4));
    for (uint32_t i = 0; i < 6; i++)
        CHECK(out[2 + i] == in[i]);
    CHECK(rh_spsc_is_empty(ring));
    rh_spsc_validate(ring);
    rh_spsc_free(ring);
}
