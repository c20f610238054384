#pragma once
/*
 * core/blob.h - the one object that crosses shards by pointer: an immutable payload with an
 * atomic refcount. The sender fills it, sets one reference per receiving shard and pushes it
 * into their rings; it is never written after it is first pushed. Each receiver reads it
 * (encoding its own wire variants into shard-local rh_bufs) and drops its reference; the last
 * one frees it, on whichever thread that is.
 *
 * @kind says what the receiving shard does with it; the values are the shards' business
 * (shards/), core only carries them. @arg is kind-specific (a connection id, a group id).
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/assert.h"

struct rh_blob {
    _Atomic uint32_t refs;
    uint16_t kind;
    uint16_t origin_shard;
    uint64_t arg;
    uint32_t len;
    uint32_t pad; /* data starts 8-byte aligned: a receiver may read a struct in place */
    uint8_t data[];
};
_Static_assert(offsetof(struct rh_blob, data) % 8 == 0, "blob data is 8-byte aligned");

/* A blob of @kind holding a copy of @len bytes at @data, with @refs references (one for each
 * receiver the caller will hand it to; >= 1). With @data NULL the payload is left for the
 * caller to fill before the blob is first pushed. */
struct rh_blob *rh_blob_new(uint16_t kind, uint32_t refs, const void *data, uint32_t len);
/* Frees @blob; only rh_blob_unref calls this. */
void rh_blob_free(struct rh_blob *blob);

static inline void rh_blob_unref(struct rh_blob *blob);
/* Adds @n references, for a shard that holds the only one and passes the blob on to @n more
 * receivers. Such a shard may also change @kind before it first posts the blob on: nobody
 * else reads it then. */
static inline void rh_blob_ref_n(struct rh_blob *blob, uint32_t n);

static inline void rh_blob_unref(struct rh_blob *blob)
{
    /* acq_rel: this shard's reads of the payload happen before its reference is dropped
     * (release), and the shard that drops the last one sees all of them before freeing
     * (acquire). */
    uint32_t before = atomic_fetch_sub_explicit(&blob->refs, 1, memory_order_acq_rel);
    RH_ASSERT(before > 0);
    if (before == 1) rh_blob_free(blob);
}

static inline void rh_blob_ref_n(struct rh_blob *blob, uint32_t n)
{
    /* relaxed: the caller holds a reference, so the blob cannot be freed meanwhile, and the
     * posts that hand the new ones out publish the blob with release order. */
    atomic_fetch_add_explicit(&blob->refs, n, memory_order_relaxed);
}
