/* core/buf.c - allocation of shard-local buffers. Pools come when profiles ask for them. */
#include "core/buf.h"

#include <string.h>

#include "core/alloc.h"

struct rh_buf *rh_buf_new(uint32_t cap)
{
    struct rh_buf *buf = rh_alloc(sizeof(*buf) + cap);
    buf->refs = 1;
    buf->len = 0;
    buf->cap = cap;
    buf->tag = 0;
    buf->stamp_ns = 0;
    return buf;
}

struct rh_buf *rh_buf_copy(const void *data, uint32_t len)
{
    struct rh_buf *buf = rh_buf_new(len);
    memcpy(buf->data, data, len);
    buf->len = len;
    return buf;
}

uint8_t *rh_buf_extend(struct rh_buf **bufp, uint32_t len)
{
    struct rh_buf *buf = *bufp;
    RH_ASSERT(buf->refs == 1);
    RH_ASSERT(len <= UINT32_MAX - buf->len);
    if (buf->len + len > buf->cap) {
        /* Doubling keeps appends amortised O(1); encoders append many small pieces. */
        uint64_t cap = buf->cap ? buf->cap : 64;
        while (cap < (uint64_t)buf->len + len)
            cap *= 2;
        if (cap > UINT32_MAX) cap = UINT32_MAX;
        buf = rh_realloc(buf, sizeof(*buf) + cap);
        buf->cap = (uint32_t)cap;
        *bufp = buf;
    }
    uint8_t *at = buf->data + buf->len;
    buf->len += len;
    return at;
}

void rh_buf_append(struct rh_buf **bufp, const void *data, uint32_t len)
{
    if (len) memcpy(rh_buf_extend(bufp, len), data, len);
}

void rh_buf_free(struct rh_buf *buf)
{
    rh_free(buf);
}
