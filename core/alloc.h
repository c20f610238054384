#pragma once
/*
 * core/alloc.h - the allocator every module uses. It counts live bytes (for metrics and the
 * memory-per-connection benchmark) and aborts with a message when memory is exhausted: sizes
 * that come from clients, peers or Redis are checked against configured limits before they
 * reach here, so running out is a bug or a misconfiguration, not an input to handle.
 *
 * Any thread may call these. Counting is per thread (no shared cache line on the hot path);
 * rh_alloc_live_bytes() sums the per-thread counters with relaxed loads.
 */
#include <stddef.h>
#include <stdint.h>

void *rh_alloc(size_t size);
void *rh_calloc(size_t count, size_t size);
/* Like realloc(3); @ptr may be NULL. Never returns NULL for a non-zero @size. */
void *rh_realloc(void *ptr, size_t size);
/* Aligned allocation (@align a power of two, multiple of sizeof(void *)); free with rh_free. */
void *rh_alloc_aligned(size_t align, size_t size);
/* @ptr may be NULL. It may have been allocated on another thread. */
void rh_free(void *ptr);
/* Copies @len bytes of @src into a new allocation with a terminating NUL. */
char *rh_strndup(const char *src, size_t len);

/* Live bytes allocated through this module by all threads (approximate while they run). */
int64_t rh_alloc_live_bytes(void);
/* Allocations (and reallocations) made through this module so far by all threads: the
 * benchmarks read it to show that a path allocates nothing per message or recipient. */
uint64_t rh_alloc_calls(void);
