/*
 * tests/unit/test_timer.c - the timer wheel: exact fire times across level boundaries and the
 * overflow list, fire order, budgets, callbacks that cancel, reschedule or free, the wake-up
 * hint, and a randomized run of 100k timers against a brute-force model. Every step is
 * followed by rh_wheel_validate() (every few steps in the large tests).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/timer.h"
#include "tests/harness/check.h"

#define DAY_MS (24 * 3600 * INT64_C(1000))

struct probe {
    struct rh_timer timer;
    uint32_t idx;
    uint32_t fired_count;
    int64_t fired_at_ms;
};

/* What the callbacks see: the wheel being run, the @now_ms of that run, the fire log. */
static struct rh_wheel *cur_wheel;
static int64_t cur_now_ms;
static uint32_t fire_log[4096];
static uint32_t fire_log_count;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

static uint64_t rng_below(uint64_t bound)
{
    return rng_next() % bound;
}

static struct probe *probe_of(struct rh_timer *t)
{
    return (struct probe *)((char *)t - offsetof(struct probe, timer));
}

static void record_fire(struct rh_timer *t)
{
    struct probe *p = probe_of(t);
    p->fired_count++;
    p->fired_at_ms = cur_now_ms;
    if (fire_log_count < sizeof(fire_log) / sizeof(fire_log[0]))
        fire_log[fire_log_count++] = p->idx;
}

static void probes_init(struct probe *probes, uint32_t count, rh_timer_fn *cb)
{
    for (uint32_t i = 0; i < count; i++) {
        memset(&probes[i], 0, sizeof(probes[i]));
        rh_timer_init(&probes[i].timer, cb);
        probes[i].idx = i;
        probes[i].fired_at_ms = -1;
    }
}

static uint32_t run_at(struct rh_wheel *w, int64_t now_ms, uint32_t budget)
{
    cur_wheel = w;
    cur_now_ms = now_ms;
    uint32_t fired_count = rh_wheel_run(w, now_ms, budget);
    rh_wheel_validate(w);
    return fired_count;
}

/*
 * Moves time forward only as far as the wake-up hint says, as the shard loop does, until
 * nothing is armed or @until_ms is passed. Each timer must then fire exactly at its expiry.
 * Validates after each run if @is_validated. Returns the number of wake-ups.
 */
static uint32_t step_by_hint(struct rh_wheel *w, int64_t until_ms, bool is_validated)
{
    uint32_t wakeup_count = 0;
    int64_t now_ms = w->now_ms;

    for (;;) {
        int64_t next_ms = rh_wheel_next_expiry_ms(w);
        if (next_ms == INT64_MAX || next_ms > until_ms) break;
        if (next_ms > now_ms) now_ms = next_ms;
        cur_wheel = w;
        cur_now_ms = now_ms;
        rh_wheel_run(w, now_ms, UINT32_MAX);
        if (is_validated) rh_wheel_validate(w);
        wakeup_count++;
    }
    return wakeup_count;
}

static const int64_t delays_ms[] = {
    1,
    2,
    63,
    64,
    65,
    127,
    128,
    4095,
    4096,
    4097,
    15000,
    30000,
    100000,
    262143,
    262144,
    262145,
    (INT64_C(1) << 24) - 1,
    INT64_C(1) << 24,
    (INT64_C(1) << 24) + 1,
    (INT64_C(1) << 30) - 1,
    INT64_C(1) << 30,
    (INT64_C(1) << 30) + 1,
    3 * DAY_MS,
    7 * DAY_MS + 1234,
    30 * DAY_MS,
    (INT64_C(1) << 36) - 1,
    INT64_C(1) << 36,
    (INT64_C(1) << 36) + 1,
    3 * 365 * DAY_MS,
};
#define DELAY_COUNT (sizeof(delays_ms) / sizeof(delays_ms[0]))

static const int64_t bases_ms[] = {
    0, 1, 63, 64, 4095, 12345, 987654321, (INT64_C(1) << 36) - 5, INT64_C(5) << 40,
};
#define BASE_COUNT (sizeof(bases_ms) / sizeof(bases_ms[0]))

/* One timer per delay on one wheel: each fires exactly on time, the hint never skips one. */
static void test_exact_by_hint(void)
{
    struct probe probes[DELAY_COUNT];

    for (size_t b = 0; b < BASE_COUNT; b++) {
        struct rh_wheel w;
        int64_t base_ms = bases_ms[b];
        rh_wheel_init(&w, base_ms);
        probes_init(probes, DELAY_COUNT, record_fire);
        for (size_t i = 0; i < DELAY_COUNT; i++) {
            rh_timer_schedule(&w, &probes[i].timer, base_ms + delays_ms[i]);
            rh_wheel_validate(&w);
        }
        CHECK_EQ(rh_wheel_count(&w), DELAY_COUNT);

        uint32_t wakeup_count = step_by_hint(&w, INT64_MAX, true);
        for (size_t i = 0; i < DELAY_COUNT; i++) {
            CHECK_EQ(probes[i].fired_count, 1);
            CHECK_EQ(probes[i].fired_at_ms, base_ms + delays_ms[i]);
        }
        /* A few early wake-ups per timer at most (one per level on the way down). */
        CHECK_LE(wakeup_count, DELAY_COUNT * (RH_WHEEL_LEVEL_COUNT + 2));
        CHECK_EQ(rh_wheel_count(&w), 0);
        CHECK_EQ(rh_wheel_next_expiry_ms(&w), INT64_MAX);
        rh_wheel_destroy(&w);
    }
}

/* One timer per wheel, the clock jumping straight to one before and then to its expiry. */
static void test_exact_by_jump(void)
{
    for (size_t b = 0; b < BASE_COUNT; b++) {
        for (size_t i = 0; i < DELAY_COUNT; i++) {
            struct rh_wheel w;
            struct probe p;
            int64_t expire_ms = bases_ms[b] + delays_ms[i];
            rh_wheel_init(&w, bases_ms[b]);
            probes_init(&p, 1, record_fire);
            rh_timer_schedule(&w, &p.timer, expire_ms);
            CHECK_LE(rh_wheel_next_expiry_ms(&w), expire_ms);
            CHECK_GT(rh_wheel_next_expiry_ms(&w), bases_ms[b]);

            CHECK_EQ(run_at(&w, expire_ms - 1, UINT32_MAX), 0);
            CHECK(rh_timer_is_armed(&p.timer));
            CHECK_LE(rh_wheel_next_expiry_ms(&w), expire_ms);
            CHECK_EQ(run_at(&w, expire_ms, UINT32_MAX), 1);
            CHECK_EQ(p.fired_at_ms, expire_ms);
            CHECK(!rh_timer_is_armed(&p.timer));
            rh_wheel_destroy(&w);
        }
    }
}

/* Random expiries spread over all levels, fired by one big jump, then in small budgets:
 * always by expiry, equal expiries in scheduling order. */
static void test_order(void)
{
    enum { N = 3000 };
    static struct probe probes[N];
    struct rh_wheel w;

    for (int pass = 0; pass < 2; pass++) {
        rh_wheel_init(&w, 5000);
        probes_init(probes, N, record_fire);
        for (uint32_t i = 0; i < N; i++) {
            int64_t delay_ms = (int64_t)rng_below(i % 3 == 0 ? 300 : 40 * DAY_MS);
            rh_timer_schedule(&w, &probes[i].timer, 5001 + delay_ms);
        }
        rh_wheel_validate(&w);
        fire_log_count = 0;
        int64_t end_ms = 5001 + 40 * DAY_MS;
        if (pass == 0) {
            CHECK_EQ(run_at(&w, end_ms, UINT32_MAX), N);
        } else {
            uint32_t total = 0, fired_count;
            while ((fired_count = run_at(&w, end_ms, 7)) > 0) {
                total += fired_count;
                if (total < N) CHECK_EQ(fired_count, 7);
                if (total < N) CHECK_LE(rh_wheel_next_expiry_ms(&w), end_ms);
            }
            CHECK_EQ(total, N);
        }
        CHECK_EQ(fire_log_count, N);
        if (fire_log_count != N) return;
        uint32_t disorder_count = 0;
        for (uint32_t k = 1; k < N; k++) {
            const struct probe *a = &probes[fire_log[k - 1]], *b = &probes[fire_log[k]];
            if (a->timer.expire_ms > b->timer.expire_ms) disorder_count++;
            if (a->timer.expire_ms == b->timer.expire_ms && a->idx > b->idx) disorder_count++;
        }
        CHECK_EQ(disorder_count, 0);
        CHECK_EQ(rh_wheel_count(&w), 0);
    }
}

/* Arms probe 0 (the latecomer) from inside a run, due at the same time as the others. */
static struct probe *budget_probes;

static void arm_latecomer(struct rh_timer *t)
{
    record_fire(t);
    if (probe_of(t)->idx == 1) rh_timer_schedule(cur_wheel, &budget_probes[0].timer, 11);
}

static void test_budget(void)
{
    enum { N = 100 };
    static struct probe probes[N];
    struct rh_wheel w;

    /* All due at once. */
    rh_wheel_init(&w, 0);
    probes_init(probes, N, record_fire);
    for (uint32_t i = 0; i < N; i++)
        rh_timer_schedule(&w, &probes[i].timer, 10 + i % 5);
    CHECK_EQ(run_at(&w, 9, 10), 0);
    for (int round = 0; round < 10; round++) {
        CHECK_EQ(run_at(&w, 20, 10), 10);
        CHECK_EQ(rh_wheel_count(&w), N - 10 * (round + 1));
        if (round < 9) CHECK_LE(rh_wheel_next_expiry_ms(&w), 20);
    }
    CHECK_EQ(run_at(&w, 20, 10), 0);
    CHECK_EQ(rh_wheel_next_expiry_ms(&w), INT64_MAX);

    /* Due at distinct times far apart: collection stops early, the hint stays <= now. */
    rh_wheel_init(&w, 0);
    probes_init(probes, N, record_fire);
    for (uint32_t i = 0; i < N; i++)
        rh_timer_schedule(&w, &probes[i].timer, 1 + (int64_t)i * 3 * 3600 * 1000);
    int64_t now_ms = 400 * 3600 * INT64_C(1000);
    uint32_t total = 0;
    for (int round = 0; round < 40 && total < N; round++) {
        uint32_t expect_count = N - total < 3 ? N - total : 3;
        CHECK_EQ(run_at(&w, now_ms, 3), expect_count);
        total += expect_count;
        if (total < N) CHECK_LE(rh_wheel_next_expiry_ms(&w), now_ms);
    }
    CHECK_EQ(total, N);
    for (uint32_t i = 0; i < N; i++)
        CHECK_EQ(probes[i].fired_count, 1);
    CHECK_EQ(run_at(&w, now_ms, 0), 0);

    /* Equal expiries fire in scheduling order, also when a budget splits them and a callback
     * schedules another one in between. */
    rh_wheel_init(&w, 0);
    probes_init(probes, 6, arm_latecomer);
    budget_probes = probes;
    for (uint32_t i = 1; i < 6; i++)
        rh_timer_schedule(&w, &probes[i].timer, 11);
    fire_log_count = 0;
    CHECK_EQ(run_at(&w, 100, 2), 2);
    CHECK_EQ(run_at(&w, 100, 2), 2);
    CHECK_EQ(run_at(&w, 100, 2), 2);
    CHECK_EQ(fire_log_count, 6);
    for (uint32_t k = 0; k < 5; k++)
        CHECK_EQ(fire_log[k], k + 1);
    CHECK_EQ(fire_log[5], 0);
}

/* Callback scripts for test_callbacks. */
static struct probe cb_probes[8];

static void cancel_next(struct rh_timer *t)
{
    record_fire(t);
    rh_timer_cancel(&cb_probes[probe_of(t)->idx + 1].timer);
}

static void every_15s(struct rh_timer *t)
{
    record_fire(t);
    CHECK(!rh_timer_is_armed(t));
    rh_wheel_validate(cur_wheel);
    rh_timer_schedule(cur_wheel, t, t->expire_ms + 15000);
}

static void reschedule_to_now(struct rh_timer *t)
{
    record_fire(t);
    if (probe_of(t)->fired_count < 3) rh_timer_schedule(cur_wheel, t, cur_now_ms - 5);
}

static void push_next_later(struct rh_timer *t)
{
    record_fire(t);
    rh_timer_schedule(cur_wheel, &cb_probes[probe_of(t)->idx + 1].timer, cur_now_ms + 1000);
}

static void arm_next_due(struct rh_timer *t)
{
    record_fire(t);
    rh_timer_schedule(cur_wheel, &cb_probes[probe_of(t)->idx + 1].timer, cur_now_ms);
}

static void cancel_self(struct rh_timer *t)
{
    record_fire(t);
    rh_timer_cancel(t);
    rh_wheel_validate(cur_wheel);
}

static void test_callbacks(void)
{
    struct rh_wheel w;

    /* A callback cancels a timer due in the same run. */
    rh_wheel_init(&w, 0);
    probes_init(cb_probes, 8, record_fire);
    rh_timer_init(&cb_probes[0].timer, cancel_next);
    rh_timer_schedule(&w, &cb_probes[0].timer, 100);
    rh_timer_schedule(&w, &cb_probes[1].timer, 100);
    rh_timer_schedule(&w, &cb_probes[2].timer, 101);
    CHECK_EQ(run_at(&w, 200, UINT32_MAX), 2);
    CHECK_EQ(cb_probes[1].fired_count, 0);
    CHECK_EQ(cb_probes[2].fired_count, 1);
    CHECK_EQ(rh_wheel_count(&w), 0);

    /* A keep-alive that rearms itself fires on every multiple of 15 s, never drifting. */
    rh_wheel_init(&w, 7);
    probes_init(cb_probes, 8, every_15s);
    rh_timer_schedule(&w, &cb_probes[0].timer, 7 + 15000);
    step_by_hint(&w, 7 + 100000, true);
    CHECK_EQ(cb_probes[0].fired_count, 6);
    CHECK_EQ(cb_probes[0].fired_at_ms, 7 + 90000);
    CHECK(rh_timer_is_armed(&cb_probes[0].timer));
    rh_timer_cancel(&cb_probes[0].timer);
    rh_wheel_validate(&w);

    /* Rescheduling into the past from a callback fires in the next run, not this one. */
    rh_wheel_init(&w, 0);
    probes_init(cb_probes, 8, reschedule_to_now);
    rh_timer_schedule(&w, &cb_probes[0].timer, 50);
    CHECK_EQ(run_at(&w, 60, UINT32_MAX), 1);
    CHECK_LE(rh_wheel_next_expiry_ms(&w), 55);
    CHECK_EQ(run_at(&w, 60, UINT32_MAX), 1);
    CHECK_EQ(run_at(&w, 60, UINT32_MAX), 1);
    CHECK_EQ(run_at(&w, 60, UINT32_MAX), 0);
    CHECK_EQ(cb_probes[0].fired_count, 3);

    /* A callback pushes a timer due in the same run into the future. */
    rh_wheel_init(&w, 0);
    probes_init(cb_probes, 8, record_fire);
    rh_timer_init(&cb_probes[0].timer, push_next_later);
    rh_timer_schedule(&w, &cb_probes[0].timer, 10);
    rh_timer_schedule(&w, &cb_probes[1].timer, 10);
    CHECK_EQ(run_at(&w, 10, UINT32_MAX), 1);
    CHECK_EQ(rh_timer_expiry_ms(&cb_probes[1].timer), 1010);
    CHECK_EQ(step_by_hint(&w, INT64_MAX, true) > 0, 1);
    CHECK_EQ(cb_probes[1].fired_at_ms, 1010);

    /* A callback arms a fresh timer that is already due: next run. */
    rh_wheel_init(&w, 0);
    probes_init(cb_probes, 8, record_fire);
    rh_timer_init(&cb_probes[0].timer, arm_next_due);
    rh_timer_schedule(&w, &cb_probes[0].timer, 10);
    CHECK_EQ(run_at(&w, 10, UINT32_MAX), 1);
    CHECK(rh_timer_is_armed(&cb_probes[1].timer));
    CHECK_EQ(rh_wheel_next_expiry_ms(&w), 10);
    CHECK_EQ(run_at(&w, 10, UINT32_MAX), 1);
    CHECK_EQ(cb_probes[1].fired_at_ms, 10);

    /* Cancelling itself inside its callback is harmless. */
    rh_wheel_init(&w, 0);
    probes_init(cb_probes, 8, cancel_self);
    rh_timer_schedule(&w, &cb_probes[0].timer, 10);
    rh_timer_schedule(&w, &cb_probes[1].timer, 10);
    CHECK_EQ(run_at(&w, 10, UINT32_MAX), 2);
    CHECK_EQ(rh_wheel_count(&w), 0);
    rh_wheel_destroy(&w);
}

/* A connection-like object that embeds its timer and is freed by the timer's callback. */
struct conn {
    uint64_t id;
    struct rh_timer idle_timer;
    struct conn *peer;
    char payload[40];
};

static uint32_t conn_freed_count;

static struct conn *conn_of(struct rh_timer *t)
{
    return (struct conn *)((char *)t - offsetof(struct conn, idle_timer));
}

static void conn_expire(struct rh_timer *t)
{
    struct conn *c = conn_of(t);
    if (c->peer) {
        /* Closes its peer too, whose timer may be due in this very run. */
        rh_timer_cancel(&c->peer->idle_timer);
        c->peer->peer = NULL;
        rh_free(c->peer);
        conn_freed_count++;
    }
    memset(c, 0xa5, sizeof(*c));
    rh_free(c);
    conn_freed_count++;
}

static void test_callback_frees(void)
{
    enum { N = 64 };
    struct rh_wheel w;
    int64_t live_before = rh_alloc_live_bytes();

    rh_wheel_init(&w, 1000);
    struct conn *conns[N];
    for (int i = 0; i < N; i++) {
        conns[i] = rh_calloc(1, sizeof(struct conn));
        conns[i]->id = (uint64_t)i;
        rh_timer_init(&conns[i]->idle_timer, conn_expire);
    }
    /* Pairs: even i is the peer of i + 1, both due at the same time, or the peer later. */
    for (int i = 0; i < N; i += 2) {
        conns[i + 1]->peer = conns[i];
        conns[i]->peer = NULL;
        rh_timer_schedule(&w, &conns[i + 1]->idle_timer, 1000 + 30000 + i);
        rh_timer_schedule(&w, &conns[i]->idle_timer, 1000 + 30000 + i + (i % 4 ? 5000 : 0));
    }
    rh_wheel_validate(&w);
    CHECK_EQ(rh_wheel_count(&w), N);
    step_by_hint(&w, INT64_MAX, true);
    CHECK_EQ(conn_freed_count, N);
    CHECK_EQ(rh_wheel_count(&w), 0);
    CHECK_EQ(rh_alloc_live_bytes(), live_before);
    rh_wheel_destroy(&w);
}

static void test_next_expiry(void)
{
    struct rh_wheel w;
    struct probe p[4];

    rh_wheel_init(&w, 1000);
    probes_init(p, 4, record_fire);
    CHECK_EQ(rh_wheel_next_expiry_ms(&w), INT64_MAX);

    /* Level 0 is exact. */
    rh_timer_schedule(&w, &p[0].timer, 1010);
    CHECK_EQ(rh_wheel_next_expiry_ms(&w), 1010);

    /* An outer slot gives a bound: after the clock, not after the timer. */
    rh_timer_cancel(&p[0].timer);
    CHECK_EQ(rh_wheel_next_expiry_ms(&w), INT64_MAX);
    rh_timer_schedule(&w, &p[1].timer, 1000 + 15000);
    int64_t next_ms = rh_wheel_next_expiry_ms(&w);
    CHECK_GT(next_ms, 1000);
    CHECK_LE(next_ms, 1000 + 15000);

    /* The earliest wins even when scheduled after a later one. */
    rh_timer_schedule(&w, &p[2].timer, 1003);
    CHECK_EQ(rh_wheel_next_expiry_ms(&w), 1003);

    /* Rescheduling moves the hint both ways. */
    rh_timer_schedule(&w, &p[2].timer, 1000 + 20 * 60 * 1000);
    CHECK_LE(rh_wheel_next_expiry_ms(&w), 1000 + 15000);
    CHECK_GT(rh_wheel_next_expiry_ms(&w), 1003);

    /* A timer scheduled in the past makes the hint no later than its expiry. */
    rh_timer_schedule(&w, &p[3].timer, 400);
    CHECK_LE(rh_wheel_next_expiry_ms(&w), 400);
    rh_timer_cancel(&p[3].timer);
    rh_wheel_validate(&w);
    CHECK_GT(rh_wheel_next_expiry_ms(&w), 1000);

    rh_timer_cancel(&p[1].timer);
    rh_timer_cancel(&p[2].timer);
    rh_timer_cancel(&p[2].timer);
    rh_wheel_validate(&w);
    CHECK_EQ(rh_wheel_count(&w), 0);
    CHECK_EQ(rh_wheel_next_expiry_ms(&w), INT64_MAX);
}

static void test_past_and_far(void)
{
    struct rh_wheel w;
    struct probe p[6];

    rh_wheel_init(&w, 5000);
    probes_init(p, 6, record_fire);
    rh_timer_schedule(&w, &p[0].timer, 5000);
    rh_timer_schedule(&w, &p[1].timer, 10);
    rh_timer_schedule(&w, &p[2].timer, -7);
    rh_timer_schedule(&w, &p[3].timer, INT64_MIN);
    rh_timer_schedule(&w, &p[4].timer, INT64_MAX);
    rh_timer_schedule(&w, &p[5].timer, 5000 + 400 * DAY_MS);
    rh_wheel_validate(&w);
    CHECK_LE(rh_wheel_next_expiry_ms(&w), INT64_MIN);

    /* Past expiries fire at the next run, even one that does not move the clock. */
    fire_log_count = 0;
    CHECK_EQ(run_at(&w, 5000, UINT32_MAX), 4);
    CHECK_EQ(fire_log_count, 4);
    CHECK_EQ(fire_log[0], 0);
    CHECK_EQ(fire_log[3], 3);

    /* Far timers: nothing early, each exactly on time. */
    CHECK_GT(rh_wheel_next_expiry_ms(&w), 5000);
    CHECK_EQ(run_at(&w, 5000 + 400 * DAY_MS - 1, UINT32_MAX), 0);
    CHECK_EQ(run_at(&w, 5000 + 400 * DAY_MS, UINT32_MAX), 1);
    CHECK_EQ(p[5].fired_at_ms, 5000 + 400 * DAY_MS);
    CHECK_EQ(run_at(&w, INT64_MAX - 1, UINT32_MAX), 0);
    CHECK(rh_timer_is_armed(&p[4].timer));
    CHECK_EQ(rh_wheel_next_expiry_ms(&w), INT64_MAX);
    CHECK_EQ(run_at(&w, INT64_MAX, UINT32_MAX), 1);
    CHECK_EQ(p[4].fired_at_ms, INT64_MAX);

    /* Far timers reached by the hint take few wake-ups. */
    rh_wheel_init(&w, 123);
    probes_init(p, 2, record_fire);
    rh_timer_schedule(&w, &p[0].timer, 123 + 2 * 365 * DAY_MS + 17);
    rh_timer_schedule(&w, &p[1].timer, 123 + 3 * 365 * DAY_MS + 5);
    CHECK_LE(step_by_hint(&w, INT64_MAX, true), 2 * (RH_WHEEL_LEVEL_COUNT + 2));
    CHECK_EQ(p[0].fired_at_ms, 123 + 2 * 365 * DAY_MS + 17);
    CHECK_EQ(p[1].fired_at_ms, 123 + 3 * 365 * DAY_MS + 5);

    /* Cancelling the only far timer forgets it: the clock may then pass its window. */
    rh_wheel_init(&w, 0);
    probes_init(p, 2, record_fire);
    rh_timer_schedule(&w, &p[0].timer, 900 * DAY_MS);
    rh_timer_cancel(&p[0].timer);
    rh_wheel_validate(&w);
    CHECK_EQ(rh_wheel_next_expiry_ms(&w), INT64_MAX);
    CHECK_EQ(run_at(&w, 1000 * DAY_MS, UINT32_MAX), 0);
    rh_timer_schedule(&w, &p[1].timer, 1000 * DAY_MS + 900 * DAY_MS);
    rh_wheel_validate(&w);
    CHECK_GT(rh_wheel_next_expiry_ms(&w), 1000 * DAY_MS);
    step_by_hint(&w, INT64_MAX, true);
    CHECK_EQ(p[1].fired_at_ms, 1900 * DAY_MS);
    CHECK_EQ(p[0].fired_count, 0);

    /* A clock that goes back does not move the wheel's, nor fire anything early. */
    rh_wheel_init(&w, 10000);
    probes_init(p, 1, record_fire);
    rh_timer_schedule(&w, &p[0].timer, 10050);
    CHECK_EQ(run_at(&w, 9000, UINT32_MAX), 0);
    CHECK_EQ(w.now_ms, 10000);
    CHECK_EQ(run_at(&w, 10049, UINT32_MAX), 0);
    CHECK_EQ(run_at(&w, 10050, UINT32_MAX), 1);
}

static void test_destroy(void)
{
    struct rh_wheel w;
    struct probe p[4];

    rh_wheel_init(&w, 0);
    probes_init(p, 4, record_fire);
    rh_timer_schedule(&w, &p[0].timer, 5);
    rh_timer_schedule(&w, &p[1].timer, 50000);
    rh_timer_schedule(&w, &p[2].timer, INT64_MAX);
    rh_timer_schedule(&w, &p[3].timer, -1);
    rh_wheel_destroy(&w);
    for (int i = 0; i < 4; i++) {
        CHECK(!rh_timer_is_armed(&p[i].timer));
        rh_timer_cancel(&p[i].timer);
        CHECK_EQ(p[i].fired_count, 0);
    }

    /* The timers are usable on a fresh wheel, and a zeroed timer counts as not armed. */
    rh_wheel_init(&w, 0);
    rh_timer_schedule(&w, &p[0].timer, 3);
    CHECK_EQ(run_at(&w, 3, UINT32_MAX), 1);
    struct rh_timer zeroed;
    memset(&zeroed, 0, sizeof(zeroed));
    CHECK(!rh_timer_is_armed(&zeroed));
    rh_timer_cancel(&zeroed);
    rh_wheel_destroy(&w);
}

/*
 * The randomized model test: RANDOM_N timers, random schedules (past, near, all levels, far),
 * cancels and clock moves (small steps and multi-day jumps), and callbacks that reschedule
 * themselves, cancel or arm others. The model is each timer's armed flag and expiry.
 */
enum { RANDOM_N = 100000 };

struct model {
    bool is_armed;
    int64_t expire_ms;
    uint32_t armed_run; /* the run before or during which it was last scheduled */
};

static struct probe *rand_probes;
static struct model *rand_model;
static uint32_t rand_armed_count;
static uint32_t rand_run;
static uint32_t rand_bad_fire_count;

static int64_t random_delay_ms(void)
{
    switch (rng_below(20)) {
    case 0:
        return -(int64_t)rng_below(100000); /* past */
    case 1:
        return (int64_t)rng_below(3 * 365 * DAY_MS); /* beyond the wheel */
    case 2:
    case 3:
        return (int64_t)rng_below(10 * DAY_MS);
    case 4:
    case 5:
    case 6:
        return (int64_t)rng_below(200);
    default:
        return 1 + (int64_t)rng_below(120000); /* handshake, ping, timeout, long-poll */
    }
}

static void model_schedule(struct rh_wheel *w, uint32_t idx, int64_t expire_ms)
{
    rh_timer_schedule(w, &rand_probes[idx].timer, expire_ms);
    if (!rand_model[idx].is_armed) rand_armed_count++;
    rand_model[idx].is_armed = true;
    rand_model[idx].expire_ms = expire_ms;
    rand_model[idx].armed_run = rand_run;
}

static void model_cancel(uint32_t idx)
{
    rh_timer_cancel(&rand_probes[idx].timer);
    if (rand_model[idx].is_armed) rand_armed_count--;
    rand_model[idx].is_armed = false;
}

static void random_fire(struct rh_timer *t)
{
    struct probe *p = probe_of(t);
    struct model *m = &rand_model[p->idx];

    /* Armed, with this expiry, due (never early), and not scheduled in this very run. */
    bool ok = m->is_armed && m->expire_ms == t->expire_ms && t->expire_ms <= cur_now_ms &&
              m->armed_run != rand_run;
    if (!ok) rand_bad_fire_count++;
    m->is_armed = false;
    rand_armed_count--;
    p->fired_count++;

    uint64_t action = rng_below(10);
    if (action < 2) {
        model_schedule(cur_wheel, p->idx, cur_now_ms + 1 + (int64_t)rng_below(60000));
    } else if (action == 2) {
        model_cancel((uint32_t)rng_below(RANDOM_N));
    } else if (action == 3) {
        int64_t delay_ms = random_delay_ms();
        model_schedule(cur_wheel, (uint32_t)rng_below(RANDOM_N), cur_now_ms + delay_ms);
    }
}

/* Checks the model against the wheel: the count, that nothing due was left behind (other
 * than what this run's callbacks scheduled), and that the hint is not late. */
static void check_model(struct rh_wheel *w, int64_t now_ms, bool is_drained)
{
    int64_t min_expire_ms = INT64_MAX;
    uint32_t armed_count = 0, left_due_count = 0, armed_mismatch_count = 0;

    for (uint32_t i = 0; i < RANDOM_N; i++) {
        const struct model *m = &rand_model[i];
        if (m->is_armed != rh_timer_is_armed(&rand_probes[i].timer)) armed_mismatch_count++;
        if (!m->is_armed) continue;
        armed_count++;
        if (m->expire_ms < min_expire_ms) min_expire_ms = m->expire_ms;
        if (m->expire_ms <= now_ms && (is_drained || m->armed_run != rand_run)) left_due_count++;
    }
    CHECK_EQ(armed_mismatch_count, 0);
    CHECK_EQ(armed_count, rand_armed_count);
    CHECK_EQ(rh_wheel_count(w), armed_count);
    CHECK_EQ(left_due_count, 0);
    CHECK_LE(rh_wheel_next_expiry_ms(w), min_expire_ms);
}

static void test_random_model(void)
{
    struct rh_wheel w;
    int64_t now_ms = 1000;

    rand_probes = rh_alloc(RANDOM_N * sizeof(*rand_probes));
    rand_model = rh_calloc(RANDOM_N, sizeof(*rand_model));
    probes_init(rand_probes, RANDOM_N, random_fire);
    rand_armed_count = 0;
    rand_run = 1;
    rh_wheel_init(&w, now_ms);
    cur_wheel = &w;
    cur_now_ms = now_ms;

    for (uint32_t i = 0; i < RANDOM_N; i++)
        model_schedule(&w, i, now_ms + random_delay_ms());
    rh_wheel_validate(&w);
    check_model(&w, now_ms, false);

    uint64_t fired_total = 0;
    for (int step = 0; step < 1500; step++) {
        for (int op = 0; op < 200; op++) {
            uint32_t idx = (uint32_t)rng_below(RANDOM_N);
            if (rng_below(4) == 0) {
                model_cancel(idx);
            } else {
                model_schedule(&w, idx, now_ms + random_delay_ms());
            }
        }

        uint64_t jump = rng_below(100);
        if (jump < 60) {
            now_ms += (int64_t)rng_below(50);
        } else if (jump < 90) {
            now_ms += (int64_t)rng_below(5000);
        } else if (jump < 99) {
            now_ms += (int64_t)rng_below(600000);
        } else {
            now_ms += (int64_t)rng_below(3 * DAY_MS);
        }

        /* Mostly one unbounded run; sometimes small budgets until drained. */
        bool is_drained = rng_below(4) == 0;
        if (is_drained) {
            uint32_t budget = 1 + (uint32_t)rng_below(64);
            while (rh_wheel_next_expiry_ms(&w) <= now_ms) {
                rand_run++;
                uint32_t fired_count = run_at(&w, now_ms, budget);
                CHECK_LE(fired_count, budget);
                fired_total += fired_count;
            }
        } else {
            rand_run++;
            cur_wheel = &w;
            cur_now_ms = now_ms;
            fired_total += rh_wheel_run(&w, now_ms, UINT32_MAX);
        }
        if (step % 25 == 0) rh_wheel_validate(&w);
        check_model(&w, now_ms, is_drained);
    }
    rh_wheel_validate(&w);
    CHECK_EQ(rand_bad_fire_count, 0);
    CHECK_GT(fired_total, RANDOM_N);
    printf("random model: %" PRIu64 " timers fired, %u armed at the end, %.1f days simulated\n",
           fired_total, rand_armed_count, (double)(now_ms - 1000) / (double)DAY_MS);

    rh_wheel_destroy(&w);
    rh_free(rand_probes);
    rh_free(rand_model);
}

/* Random timers whose callbacks rearm them, walked by the hint: every fire is exact. */
static uint32_t exact_late_count;

static void exact_fire(struct rh_timer *t)
{
    struct probe *p = probe_of(t);
    if (t->expire_ms != cur_now_ms) exact_late_count++;
    p->fired_count++;
    if (p->fired_count < 4)
        rh_timer_schedule(cur_wheel, t, cur_now_ms + 1 + (int64_t)rng_below(200000));
}

static void test_exact_random(void)
{
    enum { N = 20000 };
    struct rh_wheel w;
    struct probe *probes = rh_alloc(N * sizeof(*probes));

    rh_wheel_init(&w, 77777);
    probes_init(probes, N, exact_fire);
    for (uint32_t i = 0; i < N; i++) {
        int64_t delay_ms = 1 + (int64_t)rng_below(i % 2 ? 300000 : 20 * DAY_MS);
        rh_timer_schedule(&w, &probes[i].timer, 77777 + delay_ms);
    }
    exact_late_count = 0;
    step_by_hint(&w, INT64_MAX, false);
    rh_wheel_validate(&w);
    CHECK_EQ(exact_late_count, 0);
    CHECK_EQ(rh_wheel_count(&w), 0);
    uint32_t short_count = 0;
    for (uint32_t i = 0; i < N; i++)
        short_count += probes[i].fired_count != 4;
    CHECK_EQ(short_count, 0);
    rh_free(probes);
}

/* A million timers: schedule, move all once (activity pushing timeouts out), cancel half,
 * fire the rest. Prints the cost per operation; asserts only correctness. */
static void noop_fire(struct rh_timer *t)
{
    probe_of(t)->fired_count++;
}

static double elapsed_ns(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
}

static void test_million(void)
{
    enum { N = 1000000 };
    struct rh_wheel w;
    struct probe *probes = rh_alloc(N * sizeof(*probes));
    struct timespec t0, t1, t2, t3, t4;

    rh_wheel_init(&w, 0);
    probes_init(probes, N, noop_fire);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint32_t i = 0; i < N; i++)
        rh_timer_schedule(&w, &probes[i].timer, 15000 + (int64_t)rng_below(85000));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (uint32_t i = 0; i < N; i++)
        rh_timer_schedule(&w, &probes[i].timer, 30000 + (int64_t)rng_below(85000));
    clock_gettime(CLOCK_MONOTONIC, &t2);
    for (uint32_t i = 0; i < N; i += 2)
        rh_timer_cancel(&probes[i].timer);
    clock_gettime(CLOCK_MONOTONIC, &t3);
    CHECK_EQ(rh_wheel_count(&w), N / 2);
    rh_wheel_validate(&w);
    uint32_t wakeup_count = step_by_hint(&w, INT64_MAX, false);
    clock_gettime(CLOCK_MONOTONIC, &t4);

    uint32_t wrong_count = 0;
    for (uint32_t i = 0; i < N; i++)
        wrong_count += probes[i].fired_count != (i % 2);
    CHECK_EQ(wrong_count, 0);
    CHECK_EQ(rh_wheel_count(&w), 0);
    printf("1M timers: schedule %.0f ns, reschedule %.0f ns, cancel %.0f ns, expire %.0f ns "
           "per timer; %u wake-ups\n",
           elapsed_ns(&t0, &t1) / N, elapsed_ns(&t1, &t2) / N, elapsed_ns(&t2, &t3) / (N / 2),
           elapsed_ns(&t3, &t4) / (N / 2), wakeup_count);
    rh_free(probes);
}

int main(void)
{
    test_exact_by_hint();
    test_exact_by_jump();
    test_order();
    test_budget();
    test_callbacks();
    test_callback_frees();
    test_next_expiry();
    test_past_and_far();
    test_destroy();
    test_exact_random();
    test_random_model();
    test_million();
    return rh_check_finish();
}
