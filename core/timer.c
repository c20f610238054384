/*
 * core/timer.c - the hierarchical timer wheel of core/timer.h. Slots are addressed by the
 * digits (6 bits each) of the absolute expiry, as in h2o's timerwheel: a timer goes to the
 * level of the highest digit in which its expiry differs from the wheel's clock, into the slot
 * named by that digit. Moving the clock to the start of an occupied slot empties the slot:
 * its timers are placed again against the new clock, which sends each one to a lower level,
 * or to the due list once its expiry is reached. A timer is therefore re-placed at most once
 * per level, and placement from the current clock always finds the list a timer is on, which
 * is how cancel keeps the occupancy bitmaps exact without storing a slot index.
 *
 * The due list holds expired timers in the order they expired; a run fires from it. Freeing
 * timers' owners, closing connections and the loop's sleep are left to the callers.
 */
#include "core/timer.h"

#include <assert.h>
#include <stddef.h>

#include "core/assert.h"

#define SLOT_MASK   ((uint64_t)RH_WHEEL_SLOT_COUNT - 1)
#define WHEEL_BITS  (RH_WHEEL_LEVEL_COUNT * RH_WHEEL_SLOT_BITS)
#define LEVEL_FAR   RH_WHEEL_LEVEL_COUNT /* the overflow list, as a level past the top */
#define LEVEL_DUE   (-1)                 /* the due and firing lists, in validation */
#define EXPIRY_NONE INT64_MAX            /* due_min_ms and far_min_ms of an empty list */

static_assert(RH_WHEEL_SLOT_COUNT == 64, "a level's occupancy bitmap is one uint64_t");
static_assert(WHEEL_BITS < 63, "the overflow window start must fit an int64_t");

static struct rh_timer *timer_of(struct rh_list *node);
static int level_of(int64_t expire_ms, int64_t now_ms);
static unsigned slot_of(int64_t expire_ms, int level);
static bool place(struct rh_wheel *w, struct rh_timer *t);
static void disarm(struct rh_wheel *w, struct rh_timer *t);
static bool find_next_slot(const struct rh_wheel *w, int *level, int64_t *start_ms);
static uint32_t collect_due(struct rh_wheel *w, int64_t now_ms, uint32_t due_max);
static uint32_t fire_due(struct rh_wheel *w, uint32_t budget);
static void move_all(struct rh_list *to, struct rh_list *from, bool to_front);
static void detach_all(struct rh_list *head);
static uint32_t validate_list(const struct rh_wheel *w, const struct rh_list *head, int level,
                              unsigned slot);

void rh_timer_init(struct rh_timer *t, rh_timer_fn *cb)
{
    RH_ASSERT(cb != NULL);
    rh_list_init(&t->link);
    t->expire_ms = 0;
    t->cb = cb;
    t->wheel = NULL;
}

void rh_wheel_init(struct rh_wheel *w, int64_t now_ms)
{
    RH_ASSERT(now_ms >= 0);
    w->now_ms = now_ms;
    w->due_min_ms = EXPIRY_NONE;
    w->far_min_ms = EXPIRY_NONE;
    w->count = 0;
    w->is_running = false;
    rh_list_init(&w->due);
    rh_list_init(&w->firing);
    rh_list_init(&w->far);
    for (int level = 0; level < RH_WHEEL_LEVEL_COUNT; level++) {
        w->occupied[level] = 0;
        for (unsigned slot = 0; slot < RH_WHEEL_SLOT_COUNT; slot++)
            rh_list_init(&w->slots[level][slot]);
    }
}

void rh_wheel_destroy(struct rh_wheel *w)
{
    RH_ASSERT(!w->is_running);
    detach_all(&w->due);
    detach_all(&w->far);
    for (int level = 0; level < RH_WHEEL_LEVEL_COUNT; level++) {
        for (unsigned slot = 0; slot < RH_WHEEL_SLOT_COUNT; slot++)
            detach_all(&w->slots[level][slot]);
        w->occupied[level] = 0;
    }
    w->count = 0;
    w->due_min_ms = EXPIRY_NONE;
    w->far_min_ms = EXPIRY_NONE;
}

void rh_timer_schedule(struct rh_wheel *w, struct rh_timer *t, int64_t expire_at_ms)
{
    RH_ASSERT(t->cb != NULL);
    if (t->wheel) {
        RH_ASSERT(t->wheel == w);
        disarm(w, t);
    }
    t->expire_ms = expire_at_ms;
    t->wheel = w;
    w->count++;
    place(w, t);
}

void rh_timer_cancel(struct rh_timer *t)
{
    if (t->wheel) disarm(t->wheel, t);
}

uint32_t rh_wheel_run(struct rh_wheel *w, int64_t now_ms, uint32_t budget)
{
    RH_ASSERT(!w->is_running);
    if (budget == 0) return 0;

    if (now_ms > w->now_ms) collect_due(w, now_ms, budget);
    if (rh_list_is_empty(&w->due)) return 0;

    return fire_due(w, budget);
}

int64_t rh_wheel_next_expiry_ms(const struct rh_wheel *w)
{
    int level;
    int64_t start_ms;

    if (!rh_list_is_empty(&w->due) || !rh_list_is_empty(&w->firing)) return w->due_min_ms;
    if (!find_next_slot(w, &level, &start_ms)) return INT64_MAX;
    return start_ms;
}

void rh_wheel_validate(const struct rh_wheel *w)
{
    uint32_t count = 0;

    RH_ASSERT(w->now_ms >= 0);
    if (rh_list_is_empty(&w->far)) {
        RH_ASSERT(w->far_min_ms == EXPIRY_NONE);
    } else {
        /* The clock has not reached the window of far_min_ms (see find_next_slot). */
        RH_ASSERT((uint64_t)w->far_min_ms >> WHEEL_BITS > (uint64_t)w->now_ms >> WHEEL_BITS);
    }
    if (!w->is_running) RH_ASSERT(rh_list_is_empty(&w->firing));
    if (!w->is_running && rh_list_is_empty(&w->due)) RH_ASSERT(w->due_min_ms == EXPIRY_NONE);
    count += validate_list(w, &w->due, LEVEL_DUE, 0);
    count += validate_list(w, &w->firing, LEVEL_DUE, 0);
    count += validate_list(w, &w->far, LEVEL_FAR, 0);
    for (int level = 0; level < RH_WHEEL_LEVEL_COUNT; level++) {
        for (unsigned slot = 0; slot < RH_WHEEL_SLOT_COUNT; slot++) {
            const struct rh_list *head = &w->slots[level][slot];
            bool is_occupied = (w->occupied[level] >> slot) & 1;
            RH_ASSERT(is_occupied == !rh_list_is_empty(head));
            /* Occupied slots lie ahead of the clock, or the run would have emptied them. */
            if (is_occupied) RH_ASSERT(slot > slot_of(w->now_ms, level));
            count += validate_list(w, head, level, slot);
        }
    }
    RH_ASSERT(count == w->count);
}

static struct rh_timer *timer_of(struct rh_list *node)
{
    return rh_list_entry(node, struct rh_timer, link);
}

/* The level whose digit is the highest one in which @expire_ms differs from @now_ms, or
 * LEVEL_FAR when they differ above the wheel. Needs @expire_ms > @now_ms >= 0. */
static int level_of(int64_t expire_ms, int64_t now_ms)
{
    RH_DEBUG_ASSERT(expire_ms > now_ms);
    uint64_t diff = (uint64_t)expire_ms ^ (uint64_t)now_ms;
    int high_bit = 63 - __builtin_clzll(diff);
    int level = high_bit / RH_WHEEL_SLOT_BITS;
    return level < RH_WHEEL_LEVEL_COUNT ? level : LEVEL_FAR;
}

static unsigned slot_of(int64_t expire_ms, int level)
{
    return (unsigned)(((uint64_t)expire_ms >> (level * RH_WHEEL_SLOT_BITS)) & SLOT_MASK);
}

/* Links the disarmed-but-counted @t into the list its expiry selects against the clock.
 * Returns whether that is the due list. */
static bool place(struct rh_wheel *w, struct rh_timer *t)
{
    if (t->expire_ms <= w->now_ms) {
        rh_list_push_back(&w->due, &t->link);
        if (t->expire_ms < w->due_min_ms) w->due_min_ms = t->expire_ms;
        return true;
    }

    int level = level_of(t->expire_ms, w->now_ms);
    if (level == LEVEL_FAR) {
        rh_list_push_back(&w->far, &t->link);
        if (t->expire_ms < w->far_min_ms) w->far_min_ms = t->expire_ms;
        return false;
    }
    unsigned slot = slot_of(t->expire_ms, level);
    rh_list_push_back(&w->slots[level][slot], &t->link);
    w->occupied[level] |= UINT64_C(1) << slot;
    return false;
}

/* Unlinks the armed @t and keeps the bitmaps exact: the clock has not passed @t's slot (the
 * run empties a slot when it reaches it), so placement against it names @t's list again. */
static void disarm(struct rh_wheel *w, struct rh_timer *t)
{
    rh_list_unlink(&t->link);
    t->wheel = NULL;
    RH_DEBUG_ASSERT(w->count > 0);
    w->count--;

    if (t->expire_ms <= w->now_ms) {
        /* In due or firing; due_min_ms may stay low (that is only conservative) unless both
         * are empty, so an idle loop does not keep waking for a cancelled timeout. */
        if (rh_list_is_empty(&w->due) && rh_list_is_empty(&w->firing)) w->due_min_ms = EXPIRY_NONE;
        return;
    }
    int level = level_of(t->expire_ms, w->now_ms);
    if (level == LEVEL_FAR) {
        /* A stale far_min_ms must not outlive the list: the clock may pass it meanwhile. */
        if (rh_list_is_empty(&w->far)) w->far_min_ms = EXPIRY_NONE;
        return;
    }
    unsigned slot = slot_of(t->expire_ms, level);
    if (rh_list_is_empty(&w->slots[level][slot])) w->occupied[level] &= ~(UINT64_C(1) << slot);
}

/*
 * Finds where the clock must stop next: the start of the lowest occupied slot of the lowest
 * occupied level (every slot of a lower level starts before any slot of a higher one), or,
 * when only the overflow list holds timers, the start of the 2^36 ms window of its earliest
 * one, which may be many windows ahead. Returns false when nothing is armed outside the due
 * list.
 */
static bool find_next_slot(const struct rh_wheel *w, int *level, int64_t *start_ms)
{
    uint64_t now = (uint64_t)w->now_ms;

    for (int l = 0; l < RH_WHEEL_LEVEL_COUNT; l++) {
        if (!w->occupied[l]) continue;
        int shift = l * RH_WHEEL_SLOT_BITS;
        unsigned slot = (unsigned)__builtin_ctzll(w->occupied[l]);
        uint64_t below_next_level = (UINT64_C(1) << (shift + RH_WHEEL_SLOT_BITS)) - 1;
        RH_DEBUG_ASSERT(slot > slot_of(w->now_ms, l));
        *level = l;
        *start_ms = (int64_t)((now & ~below_next_level) | ((uint64_t)slot << shift));
        return true;
    }
    if (rh_list_is_empty(&w->far)) return false;

    /* The clock never passes this start without emptying far, so far_min_ms (a lower bound,
     * reset whenever far empties) is still in a later window than the clock. */
    *level = LEVEL_FAR;
    *start_ms = (int64_t)(((uint64_t)w->far_min_ms >> WHEEL_BITS) << WHEEL_BITS);
    RH_DEBUG_ASSERT(*start_ms > w->now_ms);
    return true;
}

/*
 * Moves the clock towards @now_ms slot by slot, emptying each occupied slot it reaches into
 * lower levels or the due list. Stops early, with the clock at the start of the last slot
 * emptied, once @due_max timers became due, so a mass expiry is spread over several runs.
 * Returns how many became due.
 */
static uint32_t collect_due(struct rh_wheel *w, int64_t now_ms, uint32_t due_max)
{
    uint32_t due_count = 0;

    while (due_count < due_max) {
        int level;
        int64_t start_ms;
        if (!find_next_slot(w, &level, &start_ms) || start_ms > now_ms) {
            w->now_ms = now_ms;
            break;
        }

        struct rh_list batch, *head;
        if (level == LEVEL_FAR) {
            head = &w->far;
            w->far_min_ms = EXPIRY_NONE;
        } else {
            unsigned slot = slot_of(start_ms, level);
            head = &w->slots[level][slot];
            w->occupied[level] &= ~(UINT64_C(1) << slot);
        }
        /* Through a private list: a far timer can land in the far list again. */
        rh_list_init(&batch);
        move_all(&batch, head, false);
        w->now_ms = start_ms;
        while (!rh_list_is_empty(&batch)) {
            struct rh_timer *t = timer_of(batch.next);
            rh_list_unlink(&t->link);
            due_count += place(w, t);
        }
    }
    return due_count;
}

/* Fires up to @budget timers from the due list; puts the rest back in front of it. */
static uint32_t fire_due(struct rh_wheel *w, uint32_t budget)
{
    uint32_t fired_count = 0;

    /* Callbacks add newly due timers to due; firing keeps them out of this run. */
    move_all(&w->firing, &w->due, false);
    w->is_running = true;
    while (fired_count < budget && !rh_list_is_empty(&w->firing)) {
        struct rh_timer *t = timer_of(w->firing.next);
        rh_list_unlink(&t->link);
        t->wheel = NULL;
        w->count--;
        fired_count++;
        t->cb(t); /* may free t */
    }
    w->is_running = false;

    move_all(&w->due, &w->firing, true);
    if (rh_list_is_empty(&w->due)) w->due_min_ms = EXPIRY_NONE;
    return fired_count;
}

/* Moves every node of @from to the back (or front) of @to, keeping their order. */
static void move_all(struct rh_list *to, struct rh_list *from, bool to_front)
{
    if (rh_list_is_empty(from)) return;

    struct rh_list *first = from->next, *last = from->prev;
    struct rh_list *before = to_front ? to : to->prev;
    struct rh_list *after = before->next;
    before->next = first;
    first->prev = before;
    last->next = after;
    after->prev = last;
    rh_list_init(from);
}

/* Disarms every timer on @head without touching the wheel's counters. */
static void detach_all(struct rh_list *head)
{
    while (!rh_list_is_empty(head)) {
        struct rh_timer *t = timer_of(head->next);
        rh_list_unlink(&t->link);
        t->wheel = NULL;
    }
}

/* Checks the links of @head and that each timer on it belongs there: LEVEL_DUE for the due
 * and firing lists, LEVEL_FAR for the overflow list, else slot @slot of @level. */
static uint32_t validate_list(const struct rh_wheel *w, const struct rh_list *head, int level,
                              unsigned slot)
{
    uint32_t count = 0;

    RH_ASSERT(head->next->prev == head);
    RH_ASSERT(head->prev->next == head);
    for (struct rh_list *node = head->next; node != head; node = node->next) {
        const struct rh_timer *t = timer_of(node);
        RH_ASSERT(node->next->prev == node);
        RH_ASSERT(node->prev->next == node);
        RH_ASSERT(t->wheel == w);
        RH_ASSERT(t->cb != NULL);
        if (level == LEVEL_DUE) {
            RH_ASSERT(t->expire_ms <= w->now_ms);
            RH_ASSERT(t->expire_ms >= w->due_min_ms);
        } else if (level == LEVEL_FAR) {
            RH_ASSERT(t->expire_ms >= w->far_min_ms);
        }
        if (level != LEVEL_DUE) {
            RH_ASSERT(t->expire_ms > w->now_ms);
            RH_ASSERT(level_of(t->expire_ms, w->now_ms) == level);
            if (level != LEVEL_FAR) RH_ASSERT(slot_of(t->expire_ms, level) == slot);
        }
        count++;
        RH_ASSERT(count <= w->count);
    }
    return count;
}
