#pragma once
/*
 * shards/hub.h - a SignalR hub session on a WebSocket connection, from the first frame after
 * the 101 reply: the hub handshake (JSON or MessagePack), the hub messages the client sends,
 * the server's keep-alive pings (every 15 s of silence) and the client timeout (30 s without a
 * message). Frames and hub messages are parsed and written by transports/; this file decides
 * what each message does.
 *
 * Built-in methods: Echo, SendToAll, SendToConnection, JoinGroup, LeaveGroup, SendToGroup,
 * SendToOthersInGroup and SendToUser. Unknown methods complete with ASP.NET's error text.
 * SendToAll goes to every shard as one blob; group and user messages go through the group's
 * owner shard (shards/groups.h) to the shards with members. Each shard encodes an invocation
 * once per hub protocol (transcoding the arguments when the sender used the other one) and
 * every local recipient gets a reference to the same frame.
 */
#include <stddef.h>
#include <sys/types.h>

#include "shards/groups.h"
#include "shards/shard.h"
#include "transports/span.h"

#define RH_HUB_NAME_MAX 128

struct rh_hub_session;

/* Per-shard state: the hub sessions of the shard. From the handler's shard hooks. */
void rh_hub_shard_start(struct rh_shard *s);
void rh_hub_shard_stop(struct rh_shard *s);
/* The server is stopping: every session of @s is told so with a hub Close that allows
 * reconnecting (the client's automatic reconnect then finds another server), then a WebSocket
 * close "going away". */
void rh_hub_shard_draining(struct rh_shard *s);
/* A blob posted by a hub session of some shard (a SendToAll). */
void rh_hub_blob(struct rh_shard *s, struct rh_blob *b);

/* Hub connections: a negotiate reserves one on the shard that answers it, for 15 s; its
 * connectionId and connectionToken (base64url) both carry node, shard, slot and generation,
 * so any shard knows where it lives. The token also carries a 128-bit secret. */

/* The shard that owns the hub connection named by @id (a token, or a v0 connection id), or -1
 * when @id is not of that form or names another node. */
int rh_hub_id_shard(const struct rh_shard *s, const char *id, size_t len);
/* The body of a successful negotiate (@version 0 or 1) for a new hub connection reserved on
 * @s, as JSON in a new buffer; NULL when the shard has no slot left (answer 503). */
struct rh_buf *rh_hub_negotiate(struct rh_shard *s, int version);

/* Starts the session of @c on hub @hub (at most RH_HUB_NAME_MAX bytes). @id is the id= query
 * value (empty when the client skipped negotiate); it must name a connection negotiated on
 * this shard and not yet used. @user (at most RH_GROUP_NAME_MAX bytes; empty: none) is the
 * connection's user, which SendToUser reaches. Returns NULL when @id does not name such a
 * connection (answer 404), or when no slot is left. Owner shard's thread; the caller then
 * queues the 101 reply. */
struct rh_hub_session *rh_hub_session_start(struct rh_conn *c, struct rh_span hub,
                                            struct rh_span id, struct rh_span user);
/* Bytes the client sent (WebSocket frames). Consumes them all and returns @len, or a negative
 * errno after it has queued the close frames for a protocol violation and closed @c. */
ssize_t rh_hub_session_recv(struct rh_hub_session *h, const uint8_t *data, size_t len);
/* Ends the session (the connection is closing). */
void rh_hub_session_free(struct rh_hub_session *h);
