#pragma once
/*
 * shards/hub.h - a SignalR hub session on a WebSocket connection, from the first frame after
 * the 101 reply: the hub handshake (JSON or MessagePack), the hub messages the client sends,
 * the server's keep-alive pings (every 15 s of silence) and the client timeout (30 s without a
 * message). Frames and hub messages are parsed and written by transports/; this file decides
 * what each message does.
 *
 * Built-in methods so far: Echo and SendToAll. Unknown methods complete with ASP.NET's error
 * text. SendToAll goes to every shard as one blob; each shard encodes the invocation once per
 * hub protocol (transcoding the arguments when the sender used the other one) and every local
 * session of the hub gets a reference to the same frame.
 */
#include <stddef.h>
#include <sys/types.h>

#include "shards/shard.h"
#include "transports/span.h"

#define RH_HUB_NAME_MAX 128

struct rh_hub_session;

/* Per-shard state: the hub sessions of the shard. From the handler's shard hooks. */
void rh_hub_shard_start(struct rh_shard *s);
void rh_hub_shard_stop(struct rh_shard *s);
/* A blob posted by a hub session of some shard (a SendToAll). */
void rh_hub_blob(struct rh_shard *s, struct rh_blob *b);

/* Starts the session of @c on hub @hub (at most RH_HUB_NAME_MAX bytes), whose 101 reply is
 * queued. Owner shard's thread. */
struct rh_hub_session *rh_hub_session_start(struct rh_conn *c, struct rh_span hub);
/* Bytes the client sent (WebSocket frames). Consumes them all and returns @len, or a negative
 * errno after it has queued the close frames for a protocol violation and closed @c. */
ssize_t rh_hub_session_recv(struct rh_hub_session *h, const uint8_t *data, size_t len);
/* Ends the session (the connection is closing). */
void rh_hub_session_free(struct rh_hub_session *h);
