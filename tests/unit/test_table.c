/* tests/unit/test_table.c - the open-addressing pointer table against a reference (each item
 * knows whether it is in). Exact slot layouts for backward shifts across the end of the slots;
 * small tables whose hashes pile up around the wrap, checked in full (validate and a lookup of
 * every item) after every insert and every removal in random order; 100k items with full and
 * low-bit hash collisions; iteration; churn; names hashed with rh_hash(); nothing left after
 * free. A shift that strands an item behind an empty slot, or moves one before its home, fails
 * both rh_table_validate() and the lookups. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/table.h"
#include "tests/harness/check.h"

#define SMALL_ITEMS     400
#define SMALL_CHURN_OPS 2000
#define LARGE_ITEMS     100000
#define CHURN_LIVE      1000
#define CHURN_OPS       200000

struct item {
    uint64_t hash;
    uint32_t key;
    bool is_in;
};

static bool item_eq(const void *item, const void *key);
static uint64_t next_random(uint64_t *state);
static uint64_t mix(uint64_t x);
static void shuffle(uint32_t *order, uint32_t n, uint64_t *rng);
static void insert_item(struct rh_table *t, struct item *it);
static bool remove_item(struct rh_table *t, struct item *it);
static uint32_t wrong_lookups(const struct rh_table *t, const struct item *items, uint32_t n);
static uint32_t wrong_visits(const struct rh_table *t, const struct item *items, uint32_t n);
static uint32_t slot_of(const struct rh_table *t, const struct item *it);
static void test_empty(void);
static void test_layout_wrap(void);
static void test_layout_stay(void);
static void test_small(uint64_t seed);
static void test_large(void);
static void test_churn(void);
static void test_names(void);

int main(void)
{
    int64_t base = rh_alloc_live_bytes();

    test_empty();
    test_layout_wrap();
    test_layout_stay();
    for (uint64_t seed = 1; seed <= 3; seed++)
        test_small(seed);
    test_large();
    test_churn();
    test_names();

    CHECK_EQ(rh_alloc_live_bytes(), base);
    return rh_check_finish();
}

static void test_empty(void)
{
    struct rh_table t;
    struct item x = {.hash = 5, .key = 1};
    uint32_t cursor = 0;

    rh_table_init(&t);
    rh_table_validate(&t);
    CHECK(rh_table_find(&t, 5, item_eq, &x.key) == NULL);
    CHECK(!rh_table_remove(&t, 5, &x));
    CHECK(rh_table_next(&t, &cursor) == NULL);

    /* First insert allocates RH_TABLE_CAP_MIN slots; the last remove keeps them; free frees
     * them and leaves a table that works again. */
    rh_table_insert(&t, x.hash, &x);
    CHECK_EQ(t.mask + 1, RH_TABLE_CAP_MIN);
    CHECK(rh_table_find(&t, 5, item_eq, &x.key) == &x);
    CHECK(rh_table_remove(&t, 5, &x));
    CHECK_EQ(t.count, 0);
    CHECK_EQ(t.mask + 1, RH_TABLE_CAP_MIN);
    rh_table_validate(&t);
    rh_table_free(&t);
    CHECK(t.slots == NULL && t.mask == 0 && t.count == 0);
    rh_table_insert(&t, x.hash, &x);
    CHECK(rh_table_find(&t, 5, item_eq, &x.key) == &x);
    rh_table_free(&t);
}

/* A run that starts at slot 6 of 8 and wraps to slot 2: removing its head shifts every later
 * item back one slot, across the end. Hashes differ in the high bits, so only the low bits
 * (the home) collide. */
static void test_layout_wrap(void)
{
    static const uint32_t homes[] = {6, 6, 7, 0, 1};
    struct item items[5];
    struct rh_table t;

    rh_table_init(&t);
    for (uint32_t i = 0; i < 5; i++) {
        items[i] = (struct item){.hash = (uint64_t)(i + 1) << 32 | homes[i], .key = i};
        insert_item(&t, &items[i]);
    }
    CHECK_EQ(t.mask + 1, 8);
    CHECK_EQ(slot_of(&t, &items[0]), 6);
    CHECK_EQ(slot_of(&t, &items[1]), 7);
    CHECK_EQ(slot_of(&t, &items[2]), 0);
    CHECK_EQ(slot_of(&t, &items[3]), 1);
    CHECK_EQ(slot_of(&t, &items[4]), 2);

    CHECK(remove_item(&t, &items[0]));
    rh_table_validate(&t);
    CHECK_EQ(slot_of(&t, &items[1]), 6);
    CHECK_EQ(slot_of(&t, &items[2]), 7);
    CHECK_EQ(slot_of(&t, &items[3]), 0);
    CHECK_EQ(slot_of(&t, &items[4]), 1);
    CHECK(t.slots[2].item == NULL);
    CHECK_EQ(wrong_lookups(&t, items, 5), 0);
    rh_table_free(&t);
}

/* Items at their home stay put, and the shift must go past them: D (home 7) sits in slot 1
 * behind B, which is at home in slot 0. Removing C from slot 7 must still bring D back to 7;
 * a shift that stops at the first item it cannot move strands D behind an empty slot. */
static void test_layout_stay(void)
{
    struct item a = {.hash = 1ull << 32 | 6, .key = 0};
    struct item b = {.hash = 2ull << 32 | 0, .key = 1};
    struct item c = {.hash = 3ull << 32 | 7, .key = 2};
    struct item d = {.hash = 4ull << 32 | 7, .key = 3};
    struct item all[] = {a, b, c, d};
    struct rh_table t;

    rh_table_init(&t);
    for (uint32_t i = 0; i < 4; i++)
        insert_item(&t, &all[i]);
    CHECK_EQ(slot_of(&t, &all[0]), 6);
    CHECK_EQ(slot_of(&t, &all[1]), 0);
    CHECK_EQ(slot_of(&t, &all[2]), 7);
    CHECK_EQ(slot_of(&t, &all[3]), 1);

    /* Nothing after A may move into slot 6: C and D live from 7 on, B from 0. */
    CHECK(remove_item(&t, &all[0]));
    rh_table_validate(&t);
    CHECK(t.slots[6].item == NULL);
    CHECK_EQ(slot_of(&t, &all[1]), 0);
    CHECK_EQ(slot_of(&t, &all[2]), 7);
    CHECK_EQ(slot_of(&t, &all[3]), 1);

    CHECK(remove_item(&t, &all[2]));
    rh_table_validate(&t);
    CHECK_EQ(slot_of(&t, &all[1]), 0);
    CHECK_EQ(slot_of(&t, &all[3]), 7);
    CHECK(t.slots[1].item == NULL);
    CHECK_EQ(wrong_lookups(&t, all, 4), 0);
    rh_table_free(&t);
}

/* Hashes pile up on a few homes around the end of the slots (the low bits are all ones or
 * small, which stays true at every capacity), some share one full hash, the rest are random.
 * Everything is checked after every step. */
static void test_small(uint64_t seed)
{
    static const uint32_t homes[] = {1021, 1022, 1023, 0, 3, 700};
    struct item items[SMALL_ITEMS];
    uint32_t order[SMALL_ITEMS];
    uint64_t rng = mix(seed);
    uint32_t wrong = 0;
    struct rh_table t;

    for (uint32_t i = 0; i < SMALL_ITEMS; i++) {
        uint64_t r = next_random(&rng);
        uint64_t hash = r;
        if (r % 10 < 6)
            hash = (r & ~UINT64_C(0xffffffff)) | homes[(r >> 8) % 6];
        else if (r % 10 < 8)
            hash = 0xfffffffffffffffeull;
        items[i] = (struct item){.hash = hash, .key = i};
        order[i] = i;
    }

    rh_table_init(&t);
    for (uint32_t i = 0; i < SMALL_ITEMS; i++) {
        insert_item(&t, &items[i]);
        rh_table_validate(&t);
        wrong += wrong_lookups(&t, items, SMALL_ITEMS);
    }
    CHECK_EQ(t.count, SMALL_ITEMS);
    CHECK_EQ(wrong_visits(&t, items, SMALL_ITEMS), 0);

    shuffle(order, SMALL_ITEMS, &rng);
    uint32_t cap_max = t.mask + 1;
    for (uint32_t n = 0; n < SMALL_ITEMS; n++) {
        struct item *victim = &items[order[n]];
        wrong += !remove_item(&t, victim);
        wrong += remove_item(&t, victim); /* a second time: gone */
        rh_table_validate(&t);
        wrong += wrong_lookups(&t, items, SMALL_ITEMS);
        wrong += wrong_visits(&t, items, SMALL_ITEMS);
    }
    CHECK_EQ(t.count, 0);
    CHECK_EQ(t.mask + 1, RH_TABLE_CAP_MIN);
    CHECK_GT(cap_max, RH_TABLE_CAP_MIN);

    /* Random inserts and removes, shrinking and growing on the way. */
    for (uint32_t op = 0; op < SMALL_CHURN_OPS; op++) {
        struct item *it = &items[next_random(&rng) % SMALL_ITEMS];
        if (it->is_in)
            wrong += !remove_item(&t, it);
        else
            insert_item(&t, it);
        rh_table_validate(&t);
        wrong += wrong_lookups(&t, items, SMALL_ITEMS);
    }
    wrong += wrong_visits(&t, items, SMALL_ITEMS);
    CHECK_EQ(wrong, 0);
    rh_table_free(&t);
}

/* 100k items: groups of 16 share one full hash, groups of 64 share the low 32 bits (one home
 * at every capacity) with different high bits, half are random. */
static void test_large(void)
{
    struct item *items = calloc(LARGE_ITEMS, sizeof(*items));
    uint32_t *order = calloc(LARGE_ITEMS, sizeof(*order));
    uint64_t rng = 0x5eed;
    uint32_t wrong = 0;
    struct rh_table t;

    if (!items || !order) abort();
    for (uint32_t i = 0; i < LARGE_ITEMS; i++) {
        uint64_t hash = mix(3000000 + i);
        if (i % 4 == 0)
            hash = mix(1000000 + i / 64);
        else if (i % 4 == 1)
            hash = (mix(i) & ~UINT64_C(0xffffffff)) | (mix(2000000 + i / 256) & 0xffffffff);
        items[i] = (struct item){.hash = hash, .key = i};
        order[i] = i;
    }

    rh_table_init(&t);
    for (uint32_t i = 0; i < LARGE_ITEMS; i++) {
        insert_item(&t, &items[i]);
        if (i % 4096 == 0) rh_table_validate(&t);
    }
    rh_table_validate(&t);
    CHECK_EQ(t.count, LARGE_ITEMS);
    CHECK_LE((uint64_t)t.count * 4, (uint64_t)(t.mask + 1) * 3);
    CHECK_EQ(wrong_lookups(&t, items, LARGE_ITEMS), 0);
    CHECK_EQ(wrong_visits(&t, items, LARGE_ITEMS), 0);

    /* After each removal, every item that collides with the victim (its group, the items whose
     * positions a shift can change most) is looked up; everything at checkpoints. */
    shuffle(order, LARGE_ITEMS, &rng);
    for (uint32_t n = 0; n < LARGE_ITEMS; n++) {
        uint32_t victim = order[n];
        wrong += !remove_item(&t, &items[victim]);
        wrong += remove_item(&t, &items[victim]);
        uint32_t first = 0, stride = 1, group = 1;
        if (victim % 4 == 0) {
            first = victim / 64 * 64;
            stride = 4;
            group = 16;
        } else if (victim % 4 == 1) {
            first = victim / 256 * 256 + 1;
            stride = 4;
            group = 64;
        }
        for (uint32_t g = 0; g < group && first + g * stride < LARGE_ITEMS; g++) {
            const struct item *it = &items[group == 1 ? victim : first + g * stride];
            wrong += rh_table_find(&t, it->hash, item_eq, &it->key) != (it->is_in ? it : NULL);
        }
        if (n % 1024 == 0) rh_table_validate(&t);
        if (n % 10000 == 0) wrong += wrong_lookups(&t, items, LARGE_ITEMS);
    }
    CHECK_EQ(wrong, 0);
    CHECK_EQ(t.count, 0);
    CHECK_EQ(t.mask + 1, RH_TABLE_CAP_MIN);
    rh_table_validate(&t);

    /* Free with items still in: the slots go, the items are untouched. */
    for (uint32_t i = 0; i < LARGE_ITEMS; i += 3)
        insert_item(&t, &items[i]);
    rh_table_validate(&t);
    CHECK_EQ(wrong_lookups(&t, items, LARGE_ITEMS), 0);
    rh_table_free(&t);
    free(order);
    free(items);
}

/* Many inserts and removes around a steady size: the capacity settles and stays (no tombstones
 * to pile up, no resize on every call around a threshold). */
static void test_churn(void)
{
    struct item *items = calloc(CHURN_LIVE * 2, sizeof(*items));
    uint64_t rng = 0xc0ffee;
    uint32_t wrong = 0, resizes = 0;
    struct rh_table t;

    if (!items) abort();
    for (uint32_t i = 0; i < CHURN_LIVE * 2; i++)
        items[i] = (struct item){.hash = next_random(&rng) | (i % 3 ? 0 : 0xff), .key = i};
    rh_table_init(&t);
    for (uint32_t i = 0; i < CHURN_LIVE; i++)
        insert_item(&t, &items[i]);

    uint32_t cap = t.mask + 1;
    for (uint32_t op = 0; op < CHURN_OPS; op++) {
        /* Remove one random item that is in, insert one that is out. */
        struct item *out, *in;
        do
            in = &items[next_random(&rng) % (CHURN_LIVE * 2)];
        while (!in->is_in);
        do
            out = &items[next_random(&rng) % (CHURN_LIVE * 2)];
        while (out->is_in || out == in);
        wrong += !remove_item(&t, in);
        insert_item(&t, out);
        resizes += t.mask + 1 != cap;
        cap = t.mask + 1;
    }
    rh_table_validate(&t);
    CHECK_EQ(wrong, 0);
    CHECK_EQ(resizes, 0);
    CHECK_EQ(t.count, CHURN_LIVE);
    CHECK_EQ(wrong_lookups(&t, items, CHURN_LIVE * 2), 0);
    rh_table_free(&t);
    free(items);
}

/* The intended use: items found by name, hashed with rh_hash(). */
struct named {
    char name[16];
};

static bool named_eq(const void *item, const void *key)
{
    return strcmp(((const struct named *)item)->name, key) == 0;
}

static void test_names(void)
{
    static const uint8_t key[RH_HASH_KEY_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    static struct named names[1000];
    uint32_t wrong = 0;
    struct rh_table t;

    rh_hash_seed(key);
    rh_table_init(&t);
    for (uint32_t i = 0; i < 1000; i++) {
        snprintf(names[i].name, sizeof(names[i].name), "group-%u", i);
        rh_table_insert(&t, rh_hash(names[i].name, strlen(names[i].name)), &names[i]);
    }
    for (uint32_t i = 0; i < 1000; i++)
        wrong += rh_table_find(&t, rh_hash(names[i].name, strlen(names[i].name)), named_eq,
                               names[i].name) != &names[i];
    CHECK_EQ(wrong, 0);
    CHECK(rh_table_find(&t, rh_hash("group-1000", 10), named_eq, "group-1000") == NULL);
    for (uint32_t i = 0; i < 1000; i += 2)
        wrong += !rh_table_remove(&t, rh_hash(names[i].name, strlen(names[i].name)), &names[i]);
    for (uint32_t i = 0; i < 1000; i++) {
        void *found = rh_table_find(&t, rh_hash(names[i].name, strlen(names[i].name)), named_eq,
                                    names[i].name);
        wrong += found != (i % 2 ? &names[i] : NULL);
    }
    CHECK_EQ(wrong, 0);
    rh_table_validate(&t);
    rh_table_free(&t);
}

static bool item_eq(const void *item, const void *key)
{
    return ((const struct item *)item)->key == *(const uint32_t *)key;
}

/* xorshift64: the same sequence for a seed on every run. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* splitmix64's finaliser: spreads @x over all 64 bits (and is never 0 for a seed of 0). */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void shuffle(uint32_t *order, uint32_t n, uint64_t *rng)
{
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(next_random(rng) % (i + 1));
        uint32_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

static void insert_item(struct rh_table *t, struct item *it)
{
    rh_table_insert(t, it->hash, it);
    it->is_in = true;
}

static bool remove_item(struct rh_table *t, struct item *it)
{
    it->is_in = false;
    return rh_table_remove(t, it->hash, it);
}

/* Items whose lookup is not exactly right: itself when in, NULL when out. */
static uint32_t wrong_lookups(const struct rh_table *t, const struct item *items, uint32_t n)
{
    uint32_t wrong = 0;
    for (uint32_t i = 0; i < n; i++) {
        const void *found = rh_table_find(t, items[i].hash, item_eq, &items[i].key);
        wrong += found != (items[i].is_in ? &items[i] : NULL);
    }
    return wrong;
}

/* Iteration errors: an item visited twice, one that is out, or one that is in but missed. */
static uint32_t wrong_visits(const struct rh_table *t, const struct item *items, uint32_t n)
{
    uint8_t *seen = calloc(n, 1);
    uint32_t wrong = 0, cursor = 0, visits = 0;
    const struct item *it;

    if (!seen) abort();
    while ((it = rh_table_next(t, &cursor))) {
        wrong += it < items || it >= items + n || seen[it - items]++ || !it->is_in;
        visits++;
    }
    for (uint32_t i = 0; i < n; i++)
        wrong += items[i].is_in && !seen[i];
    wrong += visits != t->count;
    wrong += rh_table_next(t, &cursor) != NULL; /* stays at the end */
    free(seen);
    return wrong;
}

/* The slot holding @it, or UINT32_MAX. */
static uint32_t slot_of(const struct rh_table *t, const struct item *it)
{
    for (uint32_t idx = 0; t->slots && idx <= t->mask; idx++)
        if (t->slots[idx].item == it) return idx;
    return UINT32_MAX;
}
