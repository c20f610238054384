#pragma once
/*
 * core/fifo.h - a growable first-in first-out queue of pointers: a ring of slots that doubles
 * when full and never shrinks. One thread owns each queue (a connection's send queue, a
 * shard's outbox to another shard); for queues between threads see core/spsc.h.
 */
#include <stddef.h>
#include <stdint.h>

#include "core/assert.h"

struct rh_fifo {
    void **items;   /* cap slots; NULL until the first push */
    uint32_t head;  /* slot of the oldest item */
    uint32_t count; /* items queued */
    uint32_t cap;   /* 0 or a power of two */
};

/* Appends @item (not NULL), allocating or doubling the ring when it is full. */
void rh_fifo_push(struct rh_fifo *f, void *item);
/* Frees the ring (not the items) and leaves @f empty. */
void rh_fifo_free(struct rh_fifo *f);
/* Removes the @n items from position @idx on (0 is the oldest), keeping the order of the
 * rest. O(items after them). */
void rh_fifo_remove(struct rh_fifo *f, uint32_t idx, uint32_t n);

static inline void *rh_fifo_at(const struct rh_fifo *f, uint32_t idx);
static inline void *rh_fifo_pop(struct rh_fifo *f);
static inline void rh_fifo_drop(struct rh_fifo *f, uint32_t n);
static inline uint32_t rh_fifo_contiguous(const struct rh_fifo *f);

/* The item @idx places after the oldest (0 = the oldest); @idx < count. */
static inline void *rh_fifo_at(const struct rh_fifo *f, uint32_t idx)
{
    RH_DEBUG_ASSERT(idx < f->count);
    return f->items[(f->head + idx) & (f->cap - 1)];
}

/* Removes and returns the oldest item, or NULL when empty. */
static inline void *rh_fifo_pop(struct rh_fifo *f)
{
    if (!f->count) return NULL;
    void *item = f->items[f->head];
    rh_fifo_drop(f, 1);
    return item;
}

/* Removes the @n oldest items (@n <= count) without looking at them. */
static inline void rh_fifo_drop(struct rh_fifo *f, uint32_t n)
{
    RH_ASSERT(n <= f->count);
    f->head = (f->head + n) & (f->cap - 1);
    f->count -= n;
}

/* How many items from the oldest on lie in one run of slots, before the ring wraps. */
static inline uint32_t rh_fifo_contiguous(const struct rh_fifo *f)
{
    uint32_t to_end = f->cap - f->head;
    return f->count < to_end ? f->count : to_end;
}
