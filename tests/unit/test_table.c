/* tests/unit/test_table.c - the open-addressing table against a reference: many items with
 * hashes that collide in full and in their low bits, removals in random order (each one
 * followed by a check that every remaining item is still found, which fails if a backward
 * shift strands an entry), iteration, and no memory left after free. */
#include <stdint.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/table.h"
#include "tests/harness/check.h"

#define ITEMS 20000

struct item {
    uint64_t hash;
    uint32_t key;
    bool is_in;
};

static bool item_eq(const void *item, const void *key)
{
    return ((const struct item *)item)->key == *(const uint32_t *)key;
}

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static int missing_items(const struct rh_table *t, const struct item *items, uint32_t n)
{
    int missing = 0;
    for (uint32_t i = 0; i < n; i++) {
        void *found = rh_table_find(t, items[i].hash, item_eq, &items[i].key);
        missing += found != (items[i].is_in ? &items[i] : NULL);
    }
    return missing;
}

int main(void)
{
    int64_t base = rh_alloc_live_bytes();
    static struct item items[ITEMS];
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (uint32_t i = 0; i < ITEMS; i++) {
        items[i].key = i;
        /* 1 in 50 share one full hash, 1 in 50 differ only in the high bits (same low bits),
         * the rest are random: long runs that wrap and interleave. */
        if (i % 50 == 0)
            items[i].hash = 42;
        else if (i % 50 == 1)
            items[i].hash = ((uint64_t)i << 32) | 7;
        else
            items[i].hash = next_random(&rng);
    }

    struct rh_table t;
    rh_table_init(&t);
    uint32_t key = 1;
    CHECK(rh_table_find(&t, 1, item_eq, &key) == NULL);
    CHECK(!rh_table_remove(&t, 1, &items[0]));

    for (uint32_t i = 0; i < ITEMS; i++) {
        rh_table_insert(&t, items[i].hash, &items[i]);
        items[i].is_in = true;
    }
    CHECK_EQ(t.count, ITEMS);
    CHECK_EQ(missing_items(&t, items, ITEMS), 0);
    CHECK_LE(t.count * 4, (t.mask + 1) * 3);

    /* Iteration sees each item once. */
    static uint8_t seen[ITEMS];
    uint32_t cursor = 0, visits = 0, repeats = 0;
    struct item *it;
    while ((it = rh_table_next(&t, &cursor))) {
        repeats += seen[it->key]++ != 0;
        visits++;
    }
    CHECK_EQ(visits, ITEMS);
    CHECK_EQ(repeats, 0);

    /* Remove in random order; check everything after each of the first removals and then
     * every 499th, so a wrong shift shows at once. */
    static uint32_t order[ITEMS];
    for (uint32_t i = 0; i < ITEMS; i++)
        order[i] = i;
    for (uint32_t i = ITEMS - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(next_random(&rng) % (i + 1));
        uint32_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    int bad = 0;
    for (uint32_t n = 0; n < ITEMS; n++) {
        struct item *victim = &items[order[n]];
        bad += !rh_table_remove(&t, victim->hash, victim);
        victim->is_in = false;
        bad += rh_table_remove(&t, victim->hash, victim); /* twice: not there any more */
        if (n < 100 || n % 499 == 0) bad += missing_items(&t, items, ITEMS);
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(t.count, 0);
    cursor = 0;
    CHECK(rh_table_next(&t, &cursor) == NULL);

    /* Churn: inserts and removes around a steady size never grow the table (no tombstones
     * pile up). */
    uint32_t cap = t.mask + 1;
    for (uint32_t round = 0; round < 50000; round++) {
        struct item *x = &items[round % 64];
        if (x->is_in)
            bad += !rh_table_remove(&t, x->hash, x);
        else
            rh_table_insert(&t, x->hash, x);
        x->is_in = !x->is_in;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(missing_items(&t, items, 64), 0);
    CHECK_EQ(t.mask + 1, cap);

    rh_table_free(&t);
    CHECK_EQ(rh_alloc_live_bytes(), base);
    return rh_check_finish();
}
