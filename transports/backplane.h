#pragma once
/*
 * transports/backplane.h - the envelopes ringhub nodes exchange through Redis pub/sub.
 *
 * Every envelope is one MessagePack array whose first five elements are the same:
 *
 *   [1 (format version), kind, origin node, origin shard, origin sequence, ...kind's fields]
 *
 * The origin (node, shard) numbers what it publishes 1, 2, 3...; a receiver that already saw a
 * sequence from that origin on a subscription drops it (a message is never delivered twice)
 * and never delivers its own node's envelopes (those reach their local recipients directly).
 *
 *   SEND          [.., scope, hub, name, target, codec, [arg, ...], excluded]
 *                 a hub invocation of @target with its arguments, each the bytes of one value
 *                 in @codec (0 JSON, 1 MessagePack), for the connections of @hub in @scope:
 *                 all of them, a group or user named @name, or the connection whose id is
 *                 @name; @excluded is a bin of 8-byte big-endian connection routes not to
 *                 deliver to (empty when none).
 *   INTEREST      [.., hub, group kind (0 named, 1 user), name, state]
 *                 on a group's or user's channel: the origin node has members now (JOINED:
 *                 others that have members answer HERE), still has them (HERE), or has none
 *                 left (GONE). A node publishes a group's messages to Redis only while some
 *                 other node has said it has members.
 *   COMMAND       [.., request id, op, hub, route, group, text, connection, v1]
 *                 to the node channel of the connection with @route (8 bytes, big-endian, as
 *                 a bin) whose id is @connection (str): add it to or remove it from @group,
 *                 remove it from all groups, close it (with @text as the reason), or answer
 *                 whether it exists; @v1 (bool) is the API version asked (/api/v1), which
 *                 some answers depend on. Answered with an ANSWER to the origin's node channel.
 *   ANSWER        [.., request id, status]   an HTTP status: 200, 404, ...
 *   USER_GROUPS   [.., op, hub, user, group]
 *                 on the channel every node hears: add a user to a group, remove it from one
 *                 or from all (group empty), for its connections now and later.
 *
 * Strings are str (any width), byte strings bin; a decoder accepts any valid width of int, str
 * and bin, ignores elements past the ones it knows (later versions may add some) and refuses
 * anything else: a shorter array, a wrong type, a value out of range, trailing bytes.
 * Decoded spans point into the input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transports/hub.h"
#include "transports/span.h"

#define RH_BP_VERSION 1

enum rh_bp_kind {
    RH_BP_SEND = 1,
    RH_BP_INTEREST = 2,
    RH_BP_COMMAND = 3,
    RH_BP_ANSWER = 4,
    RH_BP_USER_GROUPS = 5,
};

enum rh_bp_scope {
    RH_BP_ALL = 0,
    RH_BP_GROUP = 1,
    RH_BP_USER = 2,
    RH_BP_CONNECTION = 3,
};

enum rh_bp_interest {
    RH_BP_GONE = 0,
    RH_BP_JOINED = 1,
    RH_BP_HERE = 2,
};

enum rh_bp_op {
    RH_BP_ADD_TO_GROUP = 1,
    RH_BP_REMOVE_FROM_GROUP = 2,
    RH_BP_REMOVE_FROM_ALL = 3, /* COMMAND: every group of the connection; USER_GROUPS: the user's */
    RH_BP_CLOSE = 4,           /* COMMAND only */
    RH_BP_EXISTS = 5,          /* COMMAND only */
};

#define RH_BP_NODE_MAX  4095 /* node ids fit the 12 bits of connection ids */
#define RH_BP_SHARD_MAX 255
#define RH_BP_NAME_MAX  1024 /* bytes of a hub, group, user, target or reason */

struct rh_bp_env {
    uint8_t kind; /* enum rh_bp_kind */
    uint16_t origin_node;
    uint8_t origin_shard;
    uint64_t seq;
    union {
        struct {
            uint8_t scope; /* enum rh_bp_scope */
            enum rh_hub_codec codec;
            struct rh_span hub, name, target;
            uint32_t arg_count;
            struct rh_span args[RH_HUB_ARGS_MAX]; /* encoded values in codec */
            struct rh_span excluded;              /* 8 bytes per route, big-endian */
        } send;
        struct {
            uint8_t group_kind; /* 0 named, 1 user */
            uint8_t state;      /* enum rh_bp_interest */
            struct rh_span hub, name;
        } interest;
        struct {
            uint64_t request_id;
            uint8_t op; /* enum rh_bp_op */
            uint64_t route;
            struct rh_span hub, group, text, connection;
            bool is_v1;
        } command;
        struct {
            uint64_t request_id;
            uint16_t status;
        } answer;
        struct {
            uint8_t op; /* RH_BP_ADD_TO_GROUP, RH_BP_REMOVE_FROM_GROUP or RH_BP_REMOVE_FROM_ALL */
            struct rh_span hub, user, group;
        } user_groups;
    };
};

/* Bytes rh_bp_encode writes for @e. */
uint32_t rh_bp_size(const struct rh_bp_env *e);
/* Writes @e into @out (rh_bp_size(@e) bytes); returns the bytes written. */
uint32_t rh_bp_encode(const struct rh_bp_env *e, uint8_t *out);
/* Decodes the envelope in @data into *@e (spans point into @data). Returns 0, or -EINVAL with
 * *@why (when not NULL) set to a static description of what is wrong. */
int rh_bp_decode(const uint8_t *data, size_t len, struct rh_bp_env *e, const char **why);

/* The 8-byte route @i of a SEND's excluded list (i < excluded.len / 8). */
uint64_t rh_bp_excluded_at(const struct rh_bp_env *e, uint32_t i);

/* One node's entry in the node directory (the hash P:nodes in Redis): the field is the node
 * id in decimal, the value "<started_ms> <seen_ms> <address>" (wall clock ms since the epoch;
 * the address as host:port, [v6]:port). */
#define RH_BP_ADDRESS_MAX 63

struct rh_bp_node_entry {
    uint16_t id;
    int64_t started_ms, seen_ms;
    char address[RH_BP_ADDRESS_MAX + 1];
};

/* Writes @e's value into @out (@cap bytes, NUL-terminated); returns its length, or -1 when it
 * does not fit. */
int rh_bp_node_format(const struct rh_bp_node_entry *e, char *out, size_t cap);
/* Reads the entry of field @id and value @value into *@e; false for anything else than the
 * format above (an id of 0..RH_BP_NODE_MAX, two non-negative numbers, an address of at most
 * RH_BP_ADDRESS_MAX printable bytes, single spaces). */
bool rh_bp_node_parse(struct rh_span id, struct rh_span value, struct rh_bp_node_entry *e);
