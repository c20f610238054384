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
    return buf;
}

struct rh_buf *rh_buf_copy(const void *data, uint32_t len)
{
    struct rh_buf *buf = rh_buf_new(len);
    memcpy(buf->data, data, len);
    buf->len = len;
    return buf;
}

void rh_buf_free(struct rh_buf *buf)
{
    rh_free(buf);
}
