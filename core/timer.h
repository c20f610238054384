#pragma once
/*
 * core/timer.h - the per-shard timer wheel: handshake and client timeouts, keep-alive pings,
 * long-poll holds, rate windows. A hierarchical hashed wheel with millisecond resolution:
 * scheduling and cancelling are O(1) and never allocate, because the timer is a small struct
 * the caller embeds in its own object. Times are absolute CLOCK_MONOTONIC milliseconds
 * (core/clock.h); the wheel's clock is never negative, an expiry may be (it is then past).
 *
 * A wheel and the timers on it belong to one shard thread; nothing here locks. The shard loop
 * calls rh_wheel_run() each turn and sleeps at most until rh_wheel_next_expiry_ms().
 *
 * Shape: RH_WHEEL_LEVEL_COUNT levels of RH_WHEEL_SLOT_COUNT slots; a slot of level L spans
 * 64^L ms: 1 ms, 64 ms, 4.1 s, 4.4 min, 4.7 h, 12.4 days, so the levels cover 2^36 ms (795
 * days). Later expiries wait in an overflow list, sorted into the levels when the clock
 * reaches the 2^36 ms window of the earliest one, so any int64_t expiry works. Where a timer
 * starts depends on the highest digit in which its expiry differs from the clock: a 15 s or
 * 100 s timeout starts in level 2 or 3, a several-day one in level 4 or 5.
 *
 * Timing: a timer never fires early and is never late: it fires in the first rh_wheel_run()
 * whose @now_ms is at or past its expiry, unless that run's budget is spent, in which case it
 * fires in a following run, still in expiry order. Outer levels are coarse, but their timers
 * cascade down to exact 1 ms slots as time approaches them (each timer moves at most once per
 * level). The coarseness shows only in rh_wheel_next_expiry_ms(), which may return the start
 * of the outer slot holding the earliest timer, up to 64^L ms before that timer's expiry: the
 * loop wakes early at most once per level on the way down (two or three times for a 15 s
 * timer, each time it is the earliest one).
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"

#define RH_WHEEL_SLOT_BITS   6
#define RH_WHEEL_SLOT_COUNT  (1u << RH_WHEEL_SLOT_BITS)
#define RH_WHEEL_LEVEL_COUNT 6

struct rh_timer;

/* Called from rh_wheel_run() with @t already disarmed. It may schedule or cancel any timer
 * (@t included) and may free the object embedding @t; it may not run or destroy the wheel. */
typedef void rh_timer_fn(struct rh_timer *t);

/*
 * Embedded by its owner (a connection, a group, the shard). 40 bytes on 64-bit: the wheel
 * pointer lets rh_timer_cancel() keep the wheel's count and slot bitmaps exact without the
 * caller passing the wheel. Fields are read-only to callers; use the functions below.
 */
struct rh_timer {
    struct rh_list link;    /* in a slot, the overflow list or the due list while armed */
    int64_t expire_ms;      /* last expiry scheduled */
    rh_timer_fn *cb;        /* set by rh_timer_init() */
    struct rh_wheel *wheel; /* the wheel it is armed on, NULL while not armed */
};

/*
 * One per shard, usually embedded in struct rh_shard (about 6.3 KB). Level L, slot s holds
 * the timers whose expiry agrees with now_ms above level L and has digit s > now_ms's digit
 * at level L; so a level's timers are always ahead of now_ms and the lowest occupied level
 * holds the earliest ones.
 */
struct rh_wheel {
    int64_t now_ms;     /* the clock: every timer due at or before it has been moved to due */
    int64_t due_min_ms; /* no expiry in due or firing is below this; INT64_MAX when empty */
    int64_t far_min_ms; /* no expiry in far is below this; INT64_MAX when empty */
    uint32_t count;     /* armed timers */
    bool is_running;    /* inside rh_wheel_run() */
    /* Bit s of occupied[L]: slots[L][s] is not empty. */
    uint64_t occupied[RH_WHEEL_LEVEL_COUNT];
    /* Expired, in the order they expired, waiting for the next rh_wheel_run(). */
    struct rh_list due;
    /* Taken from due by the current rh_wheel_run(); empty outside it. */
    struct rh_list firing;
    /* Beyond the levels: expiries that differ from now_ms above bit 36. */
    struct rh_list far;
    struct rh_list slots[RH_WHEEL_LEVEL_COUNT][RH_WHEEL_SLOT_COUNT];
};

/* Prepares @t, not armed, to call @cb (not NULL) when it fires. A zeroed struct rh_timer
 * also counts as not armed, but must be initialised before it is scheduled. */
void rh_timer_init(struct rh_timer *t, rh_timer_fn *cb);

/* Prepares an empty wheel whose clock starts at @now_ms (>= 0). */
void rh_wheel_init(struct rh_wheel *w, int64_t now_ms);

/* Disarms every timer still on @w without firing it (so their owners may later cancel them
 * harmlessly); their memory must still be valid. Not from a timer callback. O(armed). */
void rh_wheel_destroy(struct rh_wheel *w);

/*
 * Arms @t to fire at @expire_at_ms, moving it if it is already armed (on @w only; a timer
 * is never moved between wheels while armed). An expiry already passed fires at the next
 * rh_wheel_run(), also when scheduled from a callback. O(1), never allocates.
 */
void rh_timer_schedule(struct rh_wheel *w, struct rh_timer *t, int64_t expire_at_ms);

/* Disarms @t so it will not fire; does nothing if it is not armed. O(1). */
void rh_timer_cancel(struct rh_timer *t);

/*
 * Fires the timers whose expiry is <= @now_ms, at most @budget of them, and returns how many
 * fired. They fire in expiry order, equal expiries in scheduling order, except that a timer
 * scheduled with an expiry already passed may follow timers with later expiries that were
 * due before it was scheduled. A run never fires what its own callbacks scheduled. Due
 * timers beyond the budget stay armed and fire in the next runs; until then
 * rh_wheel_next_expiry_ms() returns a time <= @now_ms. A run does O(1) work per timer it
 * fires or moves down a level, and stops moving its clock once about @budget timers became
 * due. An @now_ms before the previous run's does not move the clock back. Not re-entrant:
 * callbacks may not call it.
 */
uint32_t rh_wheel_run(struct rh_wheel *w, int64_t now_ms, uint32_t budget);

/*
 * The earliest time at which something may fire: never later than the earliest armed
 * timer's expiry, possibly earlier (see the top of this file); INT64_MAX when nothing is
 * armed (or only timers at INT64_MAX). Already due timers make it <= the last run's @now_ms.
 * O(RH_WHEEL_LEVEL_COUNT), meant for the loop's wait timeout. Callable from callbacks.
 */
int64_t rh_wheel_next_expiry_ms(const struct rh_wheel *w);

/* Checks every invariant of @w with RH_ASSERT; O(armed + slots). For unit tests. */
void rh_wheel_validate(const struct rh_wheel *w);

static inline bool rh_timer_is_armed(const struct rh_timer *t);
static inline int64_t rh_timer_expiry_ms(const struct rh_timer *t);
static inline uint32_t rh_wheel_count(const struct rh_wheel *w);

/* True from rh_timer_schedule() until it fires (just before its callback) or is cancelled. */
static inline bool rh_timer_is_armed(const struct rh_timer *t)
{
    return t->wheel != NULL;
}

/* The expiry last given to rh_timer_schedule(); meaningful while armed and in its callback. */
static inline int64_t rh_timer_expiry_ms(const struct rh_timer *t)
{
    return t->expire_ms;
}

/* Timers armed on @w, including those due but not yet fired. */
static inline uint32_t rh_wheel_count(const struct rh_wheel *w)
{
    return w->count;
}
