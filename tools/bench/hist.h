#pragma once
/*
 * tools/bench/hist.h - a log-bucketed latency histogram: values (nanoseconds) land in one of
 * 16 linear sub-buckets of their power-of-two range, so any percentile read back is within
 * 1/16 (6.25 %) above the true value, in fixed memory, with an O(1) add.
 */
#include <stdint.h>

#define RB_HIST_SUB_BITS 4
#define RB_HIST_BUCKETS  (64 << RB_HIST_SUB_BITS)

struct rb_hist {
    uint64_t count;
    uint64_t max;
    uint64_t sum;
    uint64_t buckets[RB_HIST_BUCKETS];
};

void rb_hist_reset(struct rb_hist *h);
void rb_hist_add(struct rb_hist *h, uint64_t value);
/* Adds every value of @src to @dst. */
void rb_hist_merge(struct rb_hist *dst, const struct rb_hist *src);
/* The smallest value v such that at least @p (0..1) of the values are <= v, rounded up to its
 * bucket's top (never above max); 0 when empty. */
uint64_t rb_hist_percentile(const struct rb_hist *h, double p);
