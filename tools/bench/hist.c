/*
 * tools/bench/hist.c - see hist.h. Bucket index: values below 16 map to themselves; above, the
 * top set bit picks the range and the next four bits the sub-bucket.
 */
#include "tools/bench/hist.h"

#include <string.h>

#define SUB (1u << RB_HIST_SUB_BITS)

static uint32_t bucket_of(uint64_t v)
{
    if (v < SUB) return (uint32_t)v;
    uint32_t top = 63u - (uint32_t)__builtin_clzll(v); /* >= RB_HIST_SUB_BITS */
    uint32_t shift = top - RB_HIST_SUB_BITS;
    return (shift + 1) * SUB + (uint32_t)((v >> shift) & (SUB - 1));
}

/* The largest value that lands in bucket @b. */
static uint64_t bucket_top(uint32_t b)
{
    if (b < SUB) return b;
    uint32_t shift = b / SUB - 1;
    uint64_t base = (uint64_t)(SUB + b % SUB) << shift;
    return base + ((1ull << shift) - 1);
}

void rb_hist_reset(struct rb_hist *h)
{
    memset(h, 0, sizeof(*h));
}

void rb_hist_add(struct rb_hist *h, uint64_t value)
{
    h->buckets[bucket_of(value)]++;
    h->count++;
    h->sum += value;
    if (value > h->max) h->max = value;
}

void rb_hist_merge(struct rb_hist *dst, const struct rb_hist *src)
{
    for (uint32_t i = 0; i < RB_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max) dst->max = src->max;
}

uint64_t rb_hist_percentile(const struct rb_hist *h, double p)
{
    if (!h->count) return 0;
    uint64_t rank = (uint64_t)(p * (double)h->count + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < RB_HIST_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= rank) {
            uint64_t top = bucket_top(b);
            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}
