/*
 * core/spsc.c - the out-of-line part of the SPSC ring: set-up, the batch operations, metrics and
 * the invariant check. Single push/pop/is_empty are inline in core/spsc.h.
 *
 * Orderings, all pairs of one release store and one acquire load:
 * - producer: slot writes, then release tail_idx  ->  consumer: acquire tail_idx, slot reads;
 * - consumer: slot reads, then release head_idx   ->  producer: acquire head_idx, slot writes.
 * No other ordering is needed between the two ends; the cached indices are private to one end.
 */
#include "core/spsc.h"

#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"

static void copy_in(struct rh_spsc *ring, uint32_t tail, void *const *items, uint32_t n);
static void copy_out(const struct rh_spsc *ring, uint32_t head, void **out, uint32_t n);

int rh_spsc_init(struct rh_spsc **ring, uint32_t cap)
{
    struct rh_spsc *r;
    size_t size;

    if (cap == 0 || cap > RH_SPSC_CAP_MAX || (cap & (cap - 1)) != 0) return -EINVAL;

    /* Rounded up to the alignment so the last slots do not share a line with a neighbouring
     * allocation that some third thread writes. */
    size = sizeof(*r) + (size_t)cap * sizeof(r->slots[0]);
    size = (size + RH_SPSC_ALIGN - 1) & ~(size_t)(RH_SPSC_ALIGN - 1);
    r = rh_alloc_aligned(RH_SPSC_ALIGN, size);
    memset(r, 0, size);
    r->producer_mask = cap - 1;
    r->consumer_mask = cap - 1;
    atomic_init(&r->tail_idx, 0);
    atomic_init(&r->head_idx, 0);
    *ring = r;
    return 0;
}

void rh_spsc_free(struct rh_spsc *ring)
{
    rh_free(ring);
}

uint32_t rh_spsc_push_n(struct rh_spsc *ring, void *const *items, uint32_t n)
{
    /* relaxed: only this thread writes tail_idx. */
    uint32_t tail = atomic_load_explicit(&ring->tail_idx, memory_order_relaxed);
    uint32_t cap = ring->producer_mask + 1;
    uint32_t room = cap - (tail - ring->head_idx_cache);

    if (room < n) {
        /* acquire: pairs with the release store of head_idx in pop/pop_n; the consumer has
         * finished reading every slot up to the head seen here before they are reused. */
        ring->head_idx_cache = atomic_load_explicit(&ring->head_idx, memory_order_acquire);
        room = cap - (tail - ring->head_idx_cache);
    }
    if (n > room) n = room;
    if (n == 0) return 0;

    copy_in(ring, tail, items, n);
    /* release: pairs with the acquire loads of tail_idx in pop/pop_n/is_empty; publishes all n
     * slots with one store. */
    atomic_store_explicit(&ring->tail_idx, tail + n, memory_order_release);
    return n;
}

uint32_t rh_spsc_pop_n(struct rh_spsc *ring, void **out, uint32_t max)
{
    /* relaxed: only this thread writes head_idx. */
    uint32_t head = atomic_load_explicit(&ring->head_idx, memory_order_relaxed);
    uint32_t ready = ring->tail_idx_cache - head;
    uint32_t n;

    /* Refreshing whenever the cache holds fewer than asked (not only when it looks empty)
     * costs one read of the producer's line per call and gives the caller full batches. */
    if (ready < max) {
        /* acquire: pairs with the release store of tail_idx in push/push_n; the slots up to
         * the tail seen here are written. */
        ring->tail_idx_cache = atomic_load_explicit(&ring->tail_idx, memory_order_acquire);
        ready = ring->tail_idx_cache - head;
    }
    n = ready < max ? ready : max;
    if (n == 0) return 0;

    copy_out(ring, head, out, n);
    /* release: pairs with the acquire load of head_idx in push/push_n; the slot reads above
     * are done before the producer may overwrite those slots. */
    atomic_store_explicit(&ring->head_idx, head + n, memory_order_release);
    return n;
}

uint32_t rh_spsc_count(const struct rh_spsc *ring)
{
    uint32_t cap = ring->consumer_mask + 1;
    /* acquire: pairs with the release store of head_idx in pop/pop_n. The consumer had read a
     * tail at least this head before storing it, so the tail loaded below is not behind the
     * head and the difference cannot underflow. */
    uint32_t head = atomic_load_explicit(&ring->head_idx, memory_order_acquire);
    /* relaxed: a number for metrics; nothing is read on the strength of it. */
    uint32_t tail = atomic_load_explicit(&ring->tail_idx, memory_order_relaxed);
    uint32_t count = tail - head;

    /* The head may have moved on between the two loads while the tail moved further: the
     * snapshot can exceed what the ring ever held at one moment. */
    return count < cap ? count : cap;
}

uint32_t rh_spsc_cap(const struct rh_spsc *ring)
{
    return ring->consumer_mask + 1;
}

void rh_spsc_validate(const struct rh_spsc *ring)
{
    uint32_t mask = ring->producer_mask;
    /* relaxed: the ring is quiescent; whatever stopped the two ends ordered their stores. */
    uint32_t head = atomic_load_explicit(&ring->head_idx, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&ring->tail_idx, memory_order_relaxed);

    RH_ASSERT(ring->consumer_mask == mask);
    RH_ASSERT(mask < RH_SPSC_CAP_MAX);
    RH_ASSERT((mask & (mask + 1)) == 0);
    RH_ASSERT(tail - head <= mask + 1);
    /* The producer's cache is a head from the past: behind or at head, and the producer never
     * let tail get more than a ring ahead of it. */
    RH_ASSERT(head - ring->head_idx_cache <= tail - ring->head_idx_cache);
    RH_ASSERT(tail - ring->head_idx_cache <= mask + 1);
    /* The consumer's cache is a tail from the past that it has not read beyond. */
    RH_ASSERT(ring->tail_idx_cache - head <= tail - head);
    for (uint32_t idx = head; idx != tail; idx++)
        RH_ASSERT(ring->slots[idx & mask] != NULL);
}

/* Writes @n items from slot @tail on, in at most two straight runs around the end. */
static void copy_in(struct rh_spsc *ring, uint32_t tail, void *const *items, uint32_t n)
{
    uint32_t mask = ring->producer_mask;
    uint32_t first = mask + 1 - (tail & mask);

    if (first > n) first = n;
    for (uint32_t i = 0; i < n; i++)
        RH_DEBUG_ASSERT(items[i] != NULL);
    memcpy(&ring->slots[tail & mask], items, first * sizeof(items[0]));
    memcpy(&ring->slots[0], items + first, (n - first) * sizeof(items[0]));
}

/* Reads @n items from slot @head on, in at most two straight runs around the end. */
static void copy_out(const struct rh_spsc *ring, uint32_t head, void **out, uint32_t n)
{
    uint32_t mask = ring->consumer_mask;
    uint32_t first = mask + 1 - (head & mask);

    if (first > n) first = n;
    memcpy(out, &ring->slots[head & mask], first * sizeof(out[0]));
    memcpy(out + first, &ring->slots[0], (n - first) * sizeof(out[0]));
    for (uint32_t i = 0; i < n; i++)
        RH_DEBUG_ASSERT(out[i] != NULL);
}
