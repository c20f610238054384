#pragma once
/*
 * shards/admin.h - what operators ask of a running node: the admin socket's commands
 * (transports/admin.h parses them), GET /metrics and the dashboard's stream of numbers.
 *
 * Every answer is gathered from all shards over the rings: the shard that serves the question
 * posts it to every shard it concerns, each answers with its own part (counters it keeps,
 * connections and groups it holds), and the asking shard puts the parts together once the last
 * one is in. No shard reads another's memory.
 *
 * Each shard also keeps per-second rates (messages in and out, drops), measured by a
 * one-second timer, and feeds the dashboard streams it holds from the same timer.
 */
#include <stdint.h>

#include "core/blob.h"
#include "shards/shard.h"

/* Blob kinds of this module. */
#define RH_ADMIN_BLOB_FIRST 40
#define RH_ADMIN_BLOB_LAST  41

/* Shard hooks, from the handler's. */
void rh_admin_shard_start(struct rh_shard *s);
void rh_admin_shard_stop(struct rh_shard *s);
/* Handles @b if it is one of this module's (kind in the range above). */
bool rh_admin_blob(struct rh_shard *s, struct rh_blob *b);

/* A connection on the admin socket: opened (its peer's uid is checked first), bytes from it
 * (all consumed; returns the count or a negative errno after closing it), closing. */
void rh_admin_open(struct rh_conn *c);
ssize_t rh_admin_recv(struct rh_conn *c, const uint8_t *data, size_t len);
void rh_admin_close(struct rh_conn *c);

/* GET /metrics on connection @reply_to of @s: the Prometheus text comes to rh_front_answer. */
void rh_admin_metrics(struct rh_shard *s, uint64_t reply_to);

/* A dashboard stream on @c (its response head is sent): it gets an SSE event of every
 * shard's numbers once a second until rh_admin_dashboard_detach. */
void rh_admin_dashboard_attach(struct rh_conn *c);
void rh_admin_dashboard_detach(struct rh_conn *c);
