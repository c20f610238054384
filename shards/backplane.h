#pragma once
/*
 * shards/backplane.h - ringhub nodes as one cluster, through Redis pub/sub (--redis).
 *
 * Every shard keeps two Redis connections of its own, driven by its own ring: one for
 * commands (PUBLISH, the node directory) and one subscribed to the channels it needs:
 *
 *   P:all                  every node (its shard 0): sends to all, users' groups
 *   P:node:<id>:<shard>    every shard its own: sends to a connection, commands about one of its
 *                          connections, answers to its requests
 *   P:group:<hub>:<name>   the owner shard of a group while this node has members of it
 *   P:user:<hub>:<name>    the same for a user's connections
 *
 * (P is --redis-prefix.) A message reaches Redis only when another node may need it: a send
 * to all and to a connection on another node always do; a group's or user's message goes out
 * from the owner shard unless this node has members and no other node has said it has some
 * (interest announcements on the channel itself: transports/backplane.h). Envelopes carry
 * their origin and a per-origin sequence; a node drops its own and anything it saw already.
 *
 * Local delivery never waits for Redis. While Redis is unreachable a shard keeps up to
 * --redis-buffer bytes of what it publishes and sends them, in order, once it reconnects (with
 * backoff and jitter, resubscribing everything); past that bound messages are dropped and
 * counted. Commands already written to a connection that breaks may be lost (counted too):
 * Redis pub/sub delivers at most once.
 *
 * All calls on the shard thread of @s, except rh_backplane_prepare and _finish (main thread).
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/cfg.h"
#include "shards/groups.h"
#include "shards/shard.h"
#include "transports/backplane.h"

/* Main thread, before the shards start: resolves --redis. Returns 0, or -1 having said why. */
int rh_backplane_prepare(const struct rh_cfg *cfg);
void rh_backplane_finish(void);
/* Whether this process runs with --redis. Any thread, after rh_backplane_prepare. */
bool rh_backplane_enabled(void);

void rh_backplane_shard_start(struct rh_shard *s);
void rh_backplane_shard_draining(struct rh_shard *s);
void rh_backplane_shard_stop(struct rh_shard *s);

/* The handler's hooks for the Redis connections (rh_conn_listener RH_LISTENER_OUTBOUND). */
void rh_backplane_conn_open(struct rh_conn *c);
ssize_t rh_backplane_conn_recv(struct rh_conn *c, const uint8_t *data, size_t len);
void rh_backplane_conn_close(struct rh_conn *c);

/* Publishes @e (its origin and sequence are filled in here) where its kind and scope say:
 * SEND to all and USER_GROUPS on P:all; SEND to a group or user on its channel; SEND to a
 * connection, COMMAND and ANSWER on the node channel of @route (a connection id or route). */
void rh_backplane_publish(struct rh_shard *s, struct rh_bp_env *e, uint64_t route);

/* On the owner shard of @key: whether a message to it must go to Redis (some other node may
 * have members). */
bool rh_backplane_group_wanted(struct rh_shard *s, const struct rh_group_key *key);
/* On the owner shard of @key: this node now has members of it, or has none left. Returns
 * false when joins should wait (rh_hub_interest_ready says when) until the other nodes have
 * been told: subscribed, and the announcement published. */
bool rh_backplane_interest(struct rh_shard *s, const struct rh_group_key *key, bool has_members);
/* Asks Redis how many nodes have members of @key (subscribers of its channel); the answer,
 * 200 for some and 404 for none, goes to rh_hub_remote_answer(@reply_to). */
void rh_backplane_ask_members(struct rh_shard *s, const struct rh_group_key *key,
                              uint64_t reply_to);
/* A request went to another node for the HTTP connection @reply_to: unless its answer comes
 * within RH_BACKPLANE_ANSWER_MS, it is answered 504. */
#define RH_BACKPLANE_ANSWER_MS 5000
void rh_backplane_expect_answer(struct rh_shard *s, uint64_t reply_to);
/* The answer for @reply_to came: true if it was still waited for (else it came too late). */
bool rh_backplane_answered(struct rh_shard *s, uint64_t reply_to);

/* What operators see (ringhub-ctl redis, /metrics). */
struct rh_backplane_report {
    bool enabled;
    bool command_up, subscriber_up;
    uint32_t subscriptions;  /* channels subscribed */
    uint32_t pending;        /* commands written, their replies not back */
    uint64_t buffered_bytes; /* kept during an outage */
    uint64_t published;      /* envelopes published */
    uint64_t received;       /* envelopes received and used */
    uint64_t dropped;        /* past --redis-buffer during an outage */
    uint64_t lost;           /* written to a connection that then broke */
    uint64_t skipped;        /* group messages kept off Redis: no other node had members */
    uint64_t reconnects;     /* connections made after a lost one */
    uint64_t bad;            /* envelopes that did not decode */
    int64_t down_since_ms;   /* wall clock ms when the outage began; 0: up */
    char endpoint[300];      /* host:port in use */
};
void rh_backplane_report(struct rh_shard *s, struct rh_backplane_report *out);

/* The node directory as shard 0 last read it: calls @fn for every live node. */
struct rh_backplane_node {
    uint32_t id;
    int64_t started_ms, seen_ms;
    char address[64];
};
void rh_backplane_nodes(struct rh_shard *s,
                        void (*fn)(void *ctx, const struct rh_backplane_node *node), void *ctx);
