/*
 * core/table.c - probing, growth and backward-shift deletion for core/table.h. The invariant
 * everything rests on: between an item's home slot (hash & mask) and the slot it sits in there
 * is no empty slot. Insert keeps it by taking the first empty slot from home on; remove keeps
 * it by shifting later items of the run back into the gap (Knuth's Algorithm R), so lookups
 * stop at the first empty slot and no tombstones are needed. The load is kept at most 3/4, so
 * every probe ends at an empty slot.
 */
#include "core/table.h"

#include <stddef.h>

#include "core/alloc.h"
#include "core/assert.h"

static bool is_over_load(uint32_t count, uint32_t cap);
static void resize(struct rh_table *t, uint32_t cap);
static void place(struct rh_table_slot *slots, uint32_t mask, uint64_t hash, void *item);
static void shift_back(struct rh_table *t, uint32_t hole);

void rh_table_init(struct rh_table *t)
{
    *t = (struct rh_table){0};
}

void rh_table_free(struct rh_table *t)
{
    rh_free(t->slots);
    rh_table_init(t);
}

void *rh_table_find(const struct rh_table *t, uint64_t hash,
                    bool (*eq)(const void *item, const void *key), const void *key)
{
    if (!t->slots) return NULL;
    for (uint32_t idx = (uint32_t)hash & t->mask;; idx = (idx + 1) & t->mask) {
        const struct rh_table_slot *slot = &t->slots[idx];
        if (!slot->item) return NULL;
        if (slot->hash == hash && eq(slot->item, key)) return slot->item;
    }
}

void rh_table_insert(struct rh_table *t, uint64_t hash, void *item)
{
    RH_ASSERT(item != NULL);
    if (!t->slots) {
        resize(t, RH_TABLE_CAP_MIN);
    } else if (is_over_load(t->count + 1, t->mask + 1)) {
        RH_ASSERT(t->mask + 1 < RH_TABLE_CAP_MAX);
        resize(t, (t->mask + 1) * 2);
    }
    place(t->slots, t->mask, hash, item);
    t->count++;
}

bool rh_table_remove(struct rh_table *t, uint64_t hash, const void *item)
{
    if (!t->slots || !item) return false;
    uint32_t idx = (uint32_t)hash & t->mask;
    while (t->slots[idx].item != item) {
        if (!t->slots[idx].item) return false;
        idx = (idx + 1) & t->mask;
    }
    RH_DEBUG_ASSERT(t->slots[idx].hash == hash);

    shift_back(t, idx);
    t->count--;
    /* Halving at 1/8 leaves the table at most 1/4 full, far enough from the 3/4 that doubles
     * it that a size going up and down around one edge does not resize on every call. */
    uint32_t cap = t->mask + 1;
    if (cap > RH_TABLE_CAP_MIN && t->count < cap / 8) resize(t, cap / 2);
    return true;
}

void rh_table_validate(const struct rh_table *t)
{
    if (!t->slots) {
        RH_ASSERT(t->mask == 0);
        RH_ASSERT(t->count == 0);
        return;
    }
    uint32_t cap = t->mask + 1;
    RH_ASSERT(cap != 0);
    RH_ASSERT((cap & t->mask) == 0);
    RH_ASSERT(cap >= RH_TABLE_CAP_MIN);
    RH_ASSERT(cap <= RH_TABLE_CAP_MAX);
    RH_ASSERT(!is_over_load(t->count, cap));

    /* Start the walk just after an empty slot (there is one: the load is under 1), so the run
     * of occupied slots ending at each slot is counted from its true start. An item is
     * reachable when its distance from home is shorter than that run. */
    uint32_t start = 0;
    while (t->slots[start].item)
        start++;
    uint32_t occupied = 0, run = 0;
    for (uint32_t n = 1; n <= cap; n++) {
        uint32_t idx = (start + n) & t->mask;
        const struct rh_table_slot *slot = &t->slots[idx];
        if (!slot->item) {
            run = 0;
            continue;
        }
        run++;
        occupied++;
        RH_ASSERT(((idx - (uint32_t)slot->hash) & t->mask) < run);
    }
    RH_ASSERT(occupied == t->count);
}

/* Over 3/4 of @cap slots in use. In 64 bits: @cap may be RH_TABLE_CAP_MAX. */
static bool is_over_load(uint32_t count, uint32_t cap)
{
    return (uint64_t)count * 4 > (uint64_t)cap * 3;
}

/* Moves every item into @cap new slots. O(capacity); amortised by the inserts or removals
 * since the last resize. */
static void resize(struct rh_table *t, uint32_t cap)
{
    struct rh_table_slot *old = t->slots;
    uint32_t old_cap = old ? t->mask + 1 : 0;

    RH_ASSERT(!is_over_load(t->count, cap));
    t->slots = rh_calloc(cap, sizeof(*t->slots));
    t->mask = cap - 1;
    for (uint32_t idx = 0; idx < old_cap; idx++)
        if (old[idx].item) place(t->slots, t->mask, old[idx].hash, old[idx].item);
    rh_free(old);
}

/* Puts @item in the first empty slot from its home on. Every item under @hash lies between
 * home and that slot, so the walk also catches a double insert of the same pointer. */
static void place(struct rh_table_slot *slots, uint32_t mask, uint64_t hash, void *item)
{
    uint32_t idx = (uint32_t)hash & mask;
    while (slots[idx].item) {
        RH_DEBUG_ASSERT(slots[idx].item != item);
        idx = (idx + 1) & mask;
    }
    slots[idx] = (struct rh_table_slot){.hash = hash, .item = item};
}

/* Empties slot @hole and closes the gap: each later item of the run moves into the hole unless
 * its home lies cyclically in (hole, idx], in which case moving it before its home would hide
 * it. An item that stays does not end the walk: one further on may still belong before it. */
static void shift_back(struct rh_table *t, uint32_t hole)
{
    for (uint32_t idx = (hole + 1) & t->mask; t->slots[idx].item; idx = (idx + 1) & t->mask) {
        uint32_t home = (uint32_t)t->slots[idx].hash & t->mask;
        if (((idx - home) & t->mask) < ((idx - hole) & t->mask)) continue;
        t->slots[hole] = t->slots[idx];
        hole = idx;
    }
    t->slots[hole] = (struct rh_table_slot){0};
}
