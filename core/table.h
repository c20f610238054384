#pragma once
/*
 * core/table.h - a single-threaded open-addressing hash table of pointers: linear probing on
 * the low bits of a caller-supplied hash (from rh_hash(), keyed, so clients cannot aim at one
 * bucket), backward-shift deletion (no tombstones, so the table never degrades with churn).
 * The caller owns the items and compares keys; the table stores each item's hash to probe
 * without touching the items. One table belongs to one thread.
 */
#include <stdbool.h>
#include <stdint.h>

struct rh_table_slot {
    uint64_t hash;
    void *item; /* NULL: empty */
};

struct rh_table {
    struct rh_table_slot *slots; /* NULL until the first insert */
    uint32_t mask;               /* capacity - 1; the capacity is a power of two */
    uint32_t count;
};

void rh_table_init(struct rh_table *t);
/* Frees the slots, not the items; @t is empty again after. */
void rh_table_free(struct rh_table *t);
/* The item with @hash for which @eq(item, @key) is true, or NULL. */
void *rh_table_find(const struct rh_table *t, uint64_t hash,
                    bool (*eq)(const void *item, const void *key), const void *key);
/* Adds @item (non-NULL) under @hash; the caller has checked it is not there yet. Keeps the
 * load at most 3/4 by doubling. */
void rh_table_insert(struct rh_table *t, uint64_t hash, void *item);
/* Removes @item (the very pointer) stored under @hash. Returns true if it was there. */
bool rh_table_remove(struct rh_table *t, uint64_t hash, const void *item);
/* Iteration: the next item at or after *@cursor (start at 0), or NULL at the end. The table
 * must not change during a walk. */
void *rh_table_next(const struct rh_table *t, uint32_t *cursor);
