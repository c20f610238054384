#pragma once
/*
 * core/table.h - an open-addressing hash table of pointers, found by a 64-bit hash the caller
 * computes (a shard indexes its groups by name with one). One array of slots, no node per item:
 * linear probing on the low bits, which is safe because the hashes come from rh_hash() (keyed
 * SipHash, so clients cannot aim names at one run of slots), and backward-shift deletion, so
 * removals leave no tombstones and lookups do not slow down with churn. The table holds
 * pointers only: items, their keys and their memory stay the caller's. One thread owns each
 * table (a shard's); nothing here locks.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Slots allocated by the first insert; the table never shrinks below this. */
#define RH_TABLE_CAP_MIN 8
/* The most slots a table grows to: 3/4 of it is the item limit (RH_ASSERT past it). */
#define RH_TABLE_CAP_MAX (UINT32_C(1) << 31)

struct rh_table_slot {
    uint64_t hash;
    void *item; /* NULL: empty */
};

struct rh_table {
    struct rh_table_slot *slots; /* NULL until the first insert; owned by the table */
    uint32_t mask;               /* capacity - 1; capacity is a power of two (0 with no slots) */
    uint32_t count;              /* items held; at most 3/4 of the capacity */
};

/* Makes @t an empty table; allocates nothing. A zeroed struct is the same. */
void rh_table_init(struct rh_table *t);

/* Frees the slots, not the items, and leaves @t empty and ready for use again. */
void rh_table_free(struct rh_table *t);

/* The item with @hash for which @eq(item, @key) is true, or NULL. @eq is called only for items
 * stored under exactly @hash, and must not change the table. */
void *rh_table_find(const struct rh_table *t, uint64_t hash,
                    bool (*eq)(const void *item, const void *key), const void *key);

/* Adds @item (not NULL) under @hash; the caller has checked that no equal item is there yet.
 * Doubles the slots first when the insert would fill more than 3/4 of them, moving every item:
 * pointers into t->slots and iteration cursors are invalid afterwards. */
void rh_table_insert(struct rh_table *t, uint64_t hash, void *item);

/* Removes @item (found by pointer identity among the items under @hash) and returns true, or
 * returns false when it is not there. Items after it in its run of slots shift back into the
 * gap; when fewer than 1/8 of the slots stay in use the slots are halved (not below
 * RH_TABLE_CAP_MIN). Either way iteration cursors are invalid afterwards. */
bool rh_table_remove(struct rh_table *t, uint64_t hash, const void *item);

/* Checks every invariant of @t with RH_ASSERT (aborts on a broken one): capacity a power of two
 * in range, count matching the occupied slots and within 3/4 of them, and every item reachable
 * from its home slot without crossing an empty one. O(capacity): for unit tests. */
void rh_table_validate(const struct rh_table *t);

static inline void *rh_table_next(const struct rh_table *t, uint32_t *cursor);

/* Iteration, in slot order: start with *@cursor = 0; returns the next item and moves
 * *@cursor past it, or NULL at the end. The table must not change until the walk ends (an
 * insert or remove may move items into slots already visited); to empty a table, walk it
 * releasing the items, then call rh_table_free(). */
static inline void *rh_table_next(const struct rh_table *t, uint32_t *cursor)
{
    while (t->slots && *cursor <= t->mask) {
        void *item = t->slots[(*cursor)++].item;
        if (item) return item;
    }
    return NULL;
}
