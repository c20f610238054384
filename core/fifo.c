/* core/fifo.c - growth of core/fifo.h queues. */
#include "core/fifo.h"

#include "core/alloc.h"

void rh_fifo_push(struct rh_fifo *f, void *item)
{
    RH_DEBUG_ASSERT(item != NULL);
    if (f->count == f->cap) {
        uint32_t cap = f->cap ? f->cap * 2 : 4;
        RH_ASSERT(cap > f->cap);
        void **items = rh_alloc(cap * sizeof(*items));
        for (uint32_t i = 0; i < f->count; i++)
            items[i] = rh_fifo_at(f, i);
        rh_free(f->items);
        f->items = items;
        f->cap = cap;
        f->head = 0;
    }
    f->items[(f->head + f->count++) & (f->cap - 1)] = item;
}

void rh_fifo_free(struct rh_fifo *f)
{
    rh_free(f->items);
    *f = (struct rh_fifo){0};
}

void rh_fifo_remove(struct rh_fifo *f, uint32_t idx, uint32_t n)
{
    RH_ASSERT(idx <= f->count && n <= f->count - idx);
    uint32_t mask = f->cap - 1;
    for (uint32_t i = idx + n; i < f->count; i++)
        f->items[(f->head + i - n) & mask] = f->items[(f->head + i) & mask];
    f->count -= n;
}
