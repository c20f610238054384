#pragma once
/*
 * core/buf.h - shard-local refcounted byte buffers. An encoded frame is written once into an
 * rh_buf and referenced by the send queue of every recipient on the same shard; the last
 * reference frees it. The refcount is a plain integer: a buffer never leaves the shard that
 * made it (what crosses shards is an rh_blob, core/blob.h).
 */
#include <stdint.h>

#include "core/assert.h"

struct rh_buf {
    uint32_t refs; /* touched only by the owning shard */
    uint32_t len;  /* bytes of data in use */
    uint32_t cap;  /* bytes of data allocated */
    uint32_t tag;  /* 0, or which stream of messages it is in: a newer buffer with the same tag
                    * may stand in for it while it waits to be sent (conflation) */
    /* 0, or when the message it holds entered ringhub (rh_clock_now_ns): the runtime measures
     * its delivery latency when each send of it completes. */
    int64_t stamp_ns;
    uint8_t data[];
};

/* A buffer with room for @cap bytes, len 0, one reference held by the caller. */
struct rh_buf *rh_buf_new(uint32_t cap);
/* A buffer holding a copy of @len bytes at @data, one reference held by the caller. */
struct rh_buf *rh_buf_copy(const void *data, uint32_t len);
/* Makes room for @len more bytes at the end of *@bufp (reallocating it, so only while the
 * caller holds its only reference) and returns where to write them; len grows by @len. */
uint8_t *rh_buf_extend(struct rh_buf **bufp, uint32_t len);
/* Appends @len bytes at @data to *@bufp, as rh_buf_extend. */
void rh_buf_append(struct rh_buf **bufp, const void *data, uint32_t len);
/* Frees @buf; only rh_buf_unref calls this. */
void rh_buf_free(struct rh_buf *buf);

static inline struct rh_buf *rh_buf_ref(struct rh_buf *buf);
static inline void rh_buf_unref(struct rh_buf *buf);

static inline struct rh_buf *rh_buf_ref(struct rh_buf *buf)
{
    RH_DEBUG_ASSERT(buf->refs > 0);
    buf->refs++;
    return buf;
}

static inline void rh_buf_unref(struct rh_buf *buf)
{
    RH_ASSERT(buf->refs > 0);
    if (--buf->refs == 0) rh_buf_free(buf);
}
