/*
 * core/table.c - see table.h.
 */
#include "core/table.h"

#include <stddef.h>

#include "core/alloc.h"
#include "core/assert.h"

#define MIN_CAPACITY 16u

static void grow(struct rh_table *t);

void rh_table_init(struct rh_table *t)
{
    t->slots = NULL;
    t->mask = 0;
    t->count = 0;
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
    for (uint32_t i = (uint32_t)hash & t->mask;; i = (i + 1) & t->mask) {
        const struct rh_table_slot *slot = &t->slots[i];
        if (!slot->item) return NULL;
        if (slot->hash == hash && eq(slot->item, key)) return slot->item;
    }
}

void rh_table_insert(struct rh_table *t, uint64_t hash, void *item)
{
    RH_ASSERT(item);
    if (!t->slots || (t->count + 1) * 4 > (t->mask + 1) * 3) grow(t);
    uint32_t i = (uint32_t)hash & t->mask;
    while (t->slots[i].item)
        i = (i + 1) & t->mask;
    t->slots[i] = (struct rh_table_slot){hash, item};
    t->count++;
}

bool rh_table_remove(struct rh_table *t, uint64_t hash, const void *item)
{
    if (!t->slots) return false;
    uint32_t hole = (uint32_t)hash & t->mask;
    while (t->slots[hole].item != item) {
        if (!t->slots[hole].item) return false;
        hole = (hole + 1) & t->mask;
    }
    /* Backward shift: move each later entry of the run into the hole unless its home slot
     * lies cyclically in (hole, i], where it would no longer be found. */
    for (uint32_t i = (hole + 1) & t->mask; t->slots[i].item; i = (i + 1) & t->mask) {
        uint32_t home = (uint32_t)t->slots[i].hash & t->mask;
        bool stays = ((i - home) & t->mask) < ((i - hole) & t->mask);
        if (stays) continue;
        t->slots[hole] = t->slots[i];
        hole = i;
    }
    t->slots[hole] = (struct rh_table_slot){0, NULL};
    t->count--;
    return true;
}

void *rh_table_next(const struct rh_table *t, uint32_t *cursor)
{
    if (!t->slots) return NULL;
    for (; *cursor <= t->mask; (*cursor)++)
        if (t->slots[*cursor].item) return t->slots[(*cursor)++].item;
    return NULL;
}

static void grow(struct rh_table *t)
{
    uint32_t old_cap = t->slots ? t->mask + 1 : 0;
    uint32_t cap = old_cap ? old_cap * 2 : MIN_CAPACITY;
    RH_ASSERT(cap > old_cap); /* 2^31 slots is far beyond any table here */
    struct rh_table_slot *old = t->slots;
    t->slots = rh_calloc(cap, sizeof(*t->slots));
    t->mask = cap - 1;
    t->count = 0;
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i].item) rh_table_insert(t, old[i].hash, old[i].item);
    rh_free(old);
}
