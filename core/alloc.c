/*
 * core/alloc.c - counting wrappers over malloc. The size of a block comes from
 * malloc_usable_size() so no header is added to each allocation. Each thread takes one counter
 * slot on first use; a block freed on another thread than the one that allocated it (a blob
 * released by the last shard to read it) makes one slot go down and another up, and the sum
 * stays right.
 */
#include "core/alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALLOC_SLOTS_MAX 128

struct alloc_slot {
    /* Written with fetch_add by the owning thread (or by several threads once the slots run
     * out); read with relaxed loads by rh_alloc_live_bytes(). Nothing else is ordered by it. */
    _Alignas(64) _Atomic int64_t bytes;
    _Atomic uint64_t calls; /* allocations made, reallocations included */
};

static struct alloc_slot slots[ALLOC_SLOTS_MAX];
static _Atomic unsigned slots_taken;
static _Thread_local struct alloc_slot *my_slot;

static struct alloc_slot *slot_self(void);
static void slots_sum(int64_t *bytes, uint64_t *calls);
static void *checked(void *ptr, size_t size);

void *rh_alloc(size_t size)
{
    return checked(malloc(size ? size : 1), size);
}

void *rh_calloc(size_t count, size_t size)
{
    if (count && size > SIZE_MAX / count) checked(NULL, SIZE_MAX);
    return checked(calloc(count ? count : 1, size ? size : 1), count * size);
}

void *rh_realloc(void *ptr, size_t size)
{
    int64_t before = ptr ? (int64_t)malloc_usable_size(ptr) : 0;
    void *grown = realloc(ptr, size ? size : 1);
    if (!grown) checked(NULL, size);
    struct alloc_slot *slot = slot_self();
    atomic_fetch_add_explicit(&slot->bytes, (int64_t)malloc_usable_size(grown) - before,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&slot->calls, 1, memory_order_relaxed);
    return grown;
}

void *rh_alloc_aligned(size_t align, size_t size)
{
    void *ptr = NULL;
    if (posix_memalign(&ptr, align, size ? size : 1) != 0) ptr = NULL;
    return checked(ptr, size);
}

void rh_free(void *ptr)
{
    if (!ptr) return;
    atomic_fetch_sub_explicit(&slot_self()->bytes, (int64_t)malloc_usable_size(ptr),
                              memory_order_relaxed);
    free(ptr);
}

char *rh_strndup(const char *src, size_t len)
{
    char *copy = rh_alloc(len + 1);
    memcpy(copy, src, len);
    copy[len] = '\0';
    return copy;
}

int64_t rh_alloc_live_bytes(void)
{
    int64_t bytes;
    uint64_t calls;
    slots_sum(&bytes, &calls);
    return bytes;
}

uint64_t rh_alloc_calls(void)
{
    int64_t bytes;
    uint64_t calls;
    slots_sum(&bytes, &calls);
    return calls;
}

/* The per-thread counters summed with relaxed loads: approximate while threads allocate. */
static void slots_sum(int64_t *bytes, uint64_t *calls)
{
    unsigned n = atomic_load_explicit(&slots_taken, memory_order_relaxed);
    *bytes = 0;
    *calls = 0;
    for (unsigned i = 0; i < n && i < ALLOC_SLOTS_MAX; i++) {
        *bytes += atomic_load_explicit(&slots[i].bytes, memory_order_relaxed);
        *calls += atomic_load_explicit(&slots[i].calls, memory_order_relaxed);
    }
}

static struct alloc_slot *slot_self(void)
{
    if (!my_slot) {
        unsigned idx = atomic_fetch_add_explicit(&slots_taken, 1, memory_order_relaxed);
        /* Threads past the last slot share it; fetch_add keeps that correct, only slower. */
        my_slot = &slots[idx < ALLOC_SLOTS_MAX ? idx : ALLOC_SLOTS_MAX - 1];
    }
    return my_slot;
}

static void *checked(void *ptr, size_t size)
{
    if (!ptr) {
        char line[96];
        int n = snprintf(line, sizeof(line), "ringhub: out of memory allocating %zu bytes\n", size);
        if (write(STDERR_FILENO, line, (size_t)n) < 0) {
            /* Nothing left to report with; abort below says enough. */
        }
        abort();
    }
    struct alloc_slot *slot = slot_self();
    atomic_fetch_add_explicit(&slot->bytes, (int64_t)malloc_usable_size(ptr), memory_order_relaxed);
    atomic_fetch_add_explicit(&slot->calls, 1, memory_order_relaxed);
    return ptr;
}
