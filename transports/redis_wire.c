/*
 * transports/redis_wire.c - RESP commands and the reader (transports/redis_wire.h).
 */
#include "transports/redis_wire.h"

#include <stdio.h>

#include <hiredis/hiredis.h>

#include "core/assert.h"

static void put_length(struct rh_buf **out, char kind, uint32_t n)
{
    char head[16];
    int len = snprintf(head, sizeof(head), "%c%u\r\n", kind, n);
    rh_buf_append(out, head, (uint32_t)len);
}

void rh_redis_command(struct rh_buf **out, uint32_t argc, const struct rh_span *argv)
{
    RH_ASSERT(argc >= 1 && argc <= RH_REDIS_ARGS_MAX);
    put_length(out, '*', argc);
    for (uint32_t i = 0; i < argc; i++) {
        put_length(out, '$', argv[i].len);
        if (argv[i].len) rh_buf_append(out, argv[i].ptr, argv[i].len);
        rh_buf_append(out, "\r\n", 2);
    }
}

redisReader *rh_redis_reader_new(void)
{
    /* The default reply functions build redisReply trees (freeReplyObject frees them). */
    redisReader *r = redisReaderCreate();
    RH_ASSERT(r);
    return r;
}

void rh_redis_reader_free(redisReader *r)
{
    redisReaderFree(r);
}
