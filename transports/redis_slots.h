#pragma once
/*
 * transports/redis_slots.h - what a Redis Cluster client needs to route by hash slot: the slot
 * of a key or sharded channel (CRC16/XMODEM of the key, or of its {hash tag}, mod 16384, as
 * Redis computes it), the slot map from a CLUSTER SLOTS reply, and the MOVED and ASK errors
 * that redirect a command.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define RH_REDIS_SLOTS         16384
#define RH_REDIS_HOST_MAX      255 /* bytes of a host name or address */
#define RH_REDIS_ENDPOINTS_MAX 64  /* masters a slot map may name */
#define RH_REDIS_NO_ENDPOINT   0xff

struct rh_redis_endpoint {
    char host[RH_REDIS_HOST_MAX + 1]; /* NUL-terminated */
    uint16_t port;
};

/* Which master serves each slot. */
struct rh_redis_slot_map {
    uint32_t endpoint_count;
    struct rh_redis_endpoint endpoints[RH_REDIS_ENDPOINTS_MAX];
    uint8_t owner[RH_REDIS_SLOTS]; /* index into endpoints, or RH_REDIS_NO_ENDPOINT */
};

/* The hash slot of @key (@len bytes): of the bytes between the first '{' and the first '}'
 * after it when that is not empty, else of the whole key. */
uint16_t rh_redis_slot(const void *key, size_t len);

/* Fills *@map from @reply, a CLUSTER SLOTS answer: an array of [first slot, last slot, master,
 * replica...], each node an array [host, port, id?, ...]. A master named twice gets one
 * endpoint; an empty host ("" or "?", which Redis 7 sends for "the address you reached me
 * at") is replaced by @seed_host. Slots the reply does not name have no endpoint. Returns 0,
 * or -EINVAL with *@why set (when not NULL): not an array, a range out of order or out of
 * bounds, a node without host or port, more masters than RH_REDIS_ENDPOINTS_MAX. */
int rh_redis_slot_map_parse(const redisReply *reply, const char *seed_host,
                            struct rh_redis_slot_map *map, const char **why);

/* Reads a redirection from the text of an error reply: "MOVED <slot> <host>:<port>" or
 * "ASK <slot> <host>:<port>" (host may be an IPv6 address, the port is after the last ':';
 * an empty host means the node that answered, and is left empty). Returns true and fills
 * *@is_ask, *@slot and *@to for one of those, false for any other error text. */
bool rh_redis_redirect_parse(const char *text, size_t len, bool *is_ask, uint16_t *slot,
                             struct rh_redis_endpoint *to);

/* The index of the endpoint @host:@port in @map, adding it if it is new; -1 when the map is
 * full. */
int rh_redis_slot_map_endpoint(struct rh_redis_slot_map *map, const char *host, uint16_t port);
