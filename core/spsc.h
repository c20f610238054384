#pragma once
/*
 * core/spsc.h - bounded lock-free ring of pointers from exactly one producer thread to exactly
 * one consumer thread (one ring per ordered pair of shards). Push and push_n are called only on
 * the producer's thread, pop and pop_n only on the consumer's; is_empty and count are safe
 * anywhere. Nothing here blocks, locks or allocates after init. Wake-ups are not done here: the
 * shard runs the wake protocol around these calls (notes/io_uring-networking.md section 3).
 *
 * Layout (rigtorp/SPSCQueue style): the producer's index and the consumer's index live on
 * separate cache-line pairs, and each side keeps a private copy of the other's index that it
 * refreshes only when the ring looks full (producer) or empty (consumer). In steady state each
 * side then touches its own line and the slots, and the lines move between cores only when a
 * cached index runs out. Indices run freely over uint32_t and wrap; a slot is idx & mask.
 *
 * The struct is in the header only so that push, pop and is_empty can be inlined; its fields
 * are private to core/spsc.c and these inline functions.
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/assert.h"

/* Alignment of each index and of the slots. 128, not 64: x86's spatial prefetcher pulls lines
 * in 128-byte pairs, so two indices 64 bytes apart still bounce (folly and crossbeam pad to 128
 * for the same reason). */
#define RH_SPSC_ALIGN 128
/* Largest capacity rh_spsc_init accepts (16 Mi items, 128 MiB of slots). */
#define RH_SPSC_CAP_MAX (1u << 24)

struct rh_spsc {
    /* Producer's line. tail_idx is written only by the producer (release) and read by the
     * consumer and by is_empty/count; the rest is touched only by the producer. */
    _Alignas(RH_SPSC_ALIGN) _Atomic uint32_t tail_idx; /* next slot to fill */
    uint32_t head_idx_cache;                           /* a head_idx the producer once read */
    uint32_t producer_mask;                            /* cap - 1, fixed at init */

    /* Consumer's line, the mirror image. */
    _Alignas(RH_SPSC_ALIGN) _Atomic uint32_t head_idx; /* next slot to read */
    uint32_t tail_idx_cache;                           /* a tail_idx the consumer once read */
    uint32_t consumer_mask;                            /* cap - 1, fixed at init */

    /* Written by the producer before its release of tail_idx, read by the consumer after its
     * acquire of tail_idx; never NULL while occupied. */
    _Alignas(RH_SPSC_ALIGN) void *slots[];
};

static_assert(offsetof(struct rh_spsc, tail_idx) == 0, "producer index starts its line");
static_assert(offsetof(struct rh_spsc, producer_mask) + sizeof(uint32_t) <= 64,
              "producer's fields share one 64-byte line");
static_assert(offsetof(struct rh_spsc, head_idx) == RH_SPSC_ALIGN,
              "consumer index starts the next line pair");
static_assert(offsetof(struct rh_spsc, consumer_mask) + sizeof(uint32_t) <= RH_SPSC_ALIGN + 64,
              "consumer's fields share one 64-byte line");
static_assert(offsetof(struct rh_spsc, slots) == 2 * RH_SPSC_ALIGN,
              "slots start on their own line pair");
static_assert(sizeof(((struct rh_spsc *)0)->slots[0]) == sizeof(void *), "a slot is one pointer");
static_assert(((RH_SPSC_CAP_MAX - 1) & RH_SPSC_CAP_MAX) == 0, "max capacity is a power of two");
static_assert(RH_SPSC_CAP_MAX <= (1u << 31), "uint32_t indices need cap <= 2^31 to wrap safely");

/* Makes an empty ring for @cap items. @cap must be a power of two from 1 to RH_SPSC_CAP_MAX.
 * Returns 0 and sets *@ring, or -EINVAL for any other @cap (*@ring is then unchanged).
 * Call before the two threads start using it; hand the ring to them with a synchronising
 * operation (thread creation, a release/acquire pair). */
int rh_spsc_init(struct rh_spsc **ring, uint32_t cap);

/* Frees @ring (may be NULL). Items still in it are not touched: the caller drains them first.
 * Neither thread may use the ring afterwards. */
void rh_spsc_free(struct rh_spsc *ring);

/* Producer side. Queues @item (never NULL) and takes over the caller's reference to it.
 * Returns 0, or -EAGAIN when the ring is full: the caller still owns @item, keeps it on a
 * local overflow list and retries later. Never blocks. */
static inline int rh_spsc_push(struct rh_spsc *ring, void *item);

/* Producer side. Queues as many of @items[0..@n) (none NULL) as fit, in order, with one release
 * store for the whole batch, and takes over the references to those. Returns how many were
 * queued (0 when full or @n is 0); the caller still owns the rest. */
uint32_t rh_spsc_push_n(struct rh_spsc *ring, void *const *items, uint32_t n);

/* Consumer side. Returns the oldest item and its reference, or NULL when the ring is empty. */
static inline void *rh_spsc_pop(struct rh_spsc *ring);

/* Consumer side. Moves up to @max of the oldest items, in order, into @out with one release
 * store for the batch. Returns how many (0 when empty); the caller owns those references. */
uint32_t rh_spsc_pop_n(struct rh_spsc *ring, void **out, uint32_t max);

/*
 * True when the ring holds no items. Reads the live head and tail (not the cached copies), each
 * with an acquire load, and no fence.
 * - On the consumer's thread it is exact about its own index: false means the next pop or pop_n
 *   returns at least one item. True may be stale: the producer may just have pushed.
 * - On the producer's thread after pushing, false means the consumer has not yet taken
 *   everything; true means it has.
 * - The wake protocol orders a store to a "sleeping" flag against this call on the consumer, and
 *   the release store of tail in push against its load of that flag on the producer. Acquire and
 *   release do not order a store before a later load: both sides need
 *   atomic_thread_fence(memory_order_seq_cst) between the two, or a wake-up can be lost.
 * - On any other thread the answer is a snapshot and may be stale either way.
 */
static inline bool rh_spsc_is_empty(const struct rh_spsc *ring);

/* Items in the ring, for metrics: exact on either end's thread when the other is idle,
 * otherwise approximate but always within 0..cap. Any thread. */
uint32_t rh_spsc_count(const struct rh_spsc *ring);

/* Capacity fixed at init. Any thread. */
uint32_t rh_spsc_cap(const struct rh_spsc *ring);

/* Checks every invariant of @ring with RH_ASSERT (aborts on a broken one): capacity, indices
 * and cached indices in order, occupied slots non-NULL. Only while neither end is running, as
 * unit tests do between steps. */
void rh_spsc_validate(const struct rh_spsc *ring);

/*
 * Hot paths, inlined. Longer than the usual five lines because the refresh of the cached index
 * has to be inline too: an out-of-line call per item costs more than the ring operation.
 */

static inline int rh_spsc_push(struct rh_spsc *ring, void *item)
{
    /* relaxed: only this thread writes tail_idx. */
    uint32_t tail = atomic_load_explicit(&ring->tail_idx, memory_order_relaxed);

    RH_DEBUG_ASSERT(item != NULL);
    if (tail - ring->head_idx_cache > ring->producer_mask) {
        /* acquire: pairs with the release store of head_idx in pop/pop_n, so the consumer's
         * read of the slot reused below happened before this thread writes it. */
        ring->head_idx_cache = atomic_load_explicit(&ring->head_idx, memory_order_acquire);
        if (tail - ring->head_idx_cache > ring->producer_mask) return -EAGAIN;
    }
    ring->slots[tail & ring->producer_mask] = item;
    /* release: pairs with the acquire loads of tail_idx in pop/pop_n/is_empty, which then see
     * the slot written above. */
    atomic_store_explicit(&ring->tail_idx, tail + 1, memory_order_release);
    return 0;
}

static inline void *rh_spsc_pop(struct rh_spsc *ring)
{
    /* relaxed: only this thread writes head_idx. */
    uint32_t head = atomic_load_explicit(&ring->head_idx, memory_order_relaxed);
    void *item;

    if (head == ring->tail_idx_cache) {
        /* acquire: pairs with the release store of tail_idx in push/push_n, so the slots
         * written before it are visible here. */
        ring->tail_idx_cache = atomic_load_explicit(&ring->tail_idx, memory_order_acquire);
        if (head == ring->tail_idx_cache) return NULL;
    }
    item = ring->slots[head & ring->consumer_mask];
    RH_DEBUG_ASSERT(item != NULL);
    /* release: pairs with the acquire load of head_idx in push/push_n; the slot read above
     * is done before the producer may overwrite it. */
    atomic_store_explicit(&ring->head_idx, head + 1, memory_order_release);
    return item;
}

static inline bool rh_spsc_is_empty(const struct rh_spsc *ring)
{
    /* acquire (both): pair with the release stores of head_idx in pop/pop_n and of tail_idx in
     * push/push_n, so a "not empty" seen here comes with the pushed slots visible. */
    uint32_t head = atomic_load_explicit(&ring->head_idx, memory_order_acquire);
    return head == atomic_load_explicit(&ring->tail_idx, memory_order_acquire);
}
