#pragma once
/*
 * transports/redis_wire.h - Redis commands as bytes: RESP arrays of bulk strings written into a
 * buffer, and replies read with hiredis's reader (redisReader, which copes with any split of
 * the input). ringhub drives its Redis sockets itself on the shard's io_uring; hiredis 0.14's
 * async context cannot serve sharded pub/sub (an smessage or sunsubscribe it did not ask for
 * trips an assertion), so only its reader is used.
 */
#include <stdint.h>

#include <hiredis/read.h>

#include "core/buf.h"
#include "transports/span.h"

#define RH_REDIS_ARGS_MAX 8

/* Appends the command of @argc words (at most RH_REDIS_ARGS_MAX) to *@out. */
void rh_redis_command(struct rh_buf **out, uint32_t argc, const struct rh_span *argv);

/* A reader for one connection's replies; rh_redis_reader_free releases it. The largest reply
 * it takes is bounded by hiredis (512 MB bulk strings) and by what the caller feeds. */
redisReader *rh_redis_reader_new(void);
void rh_redis_reader_free(redisReader *r);
