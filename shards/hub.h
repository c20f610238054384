#pragma once
/*
 * shards/hub.h - a SignalR hub session on a WebSocket connection, from the first frame after
 * the 101 reply: the hub handshake (JSON or MessagePack), the hub messages the client sends,
 * the server's keep-alive pings (every 15 s of silence) and the client timeout (30 s without a
 * message). Frames and hub messages are parsed and written by transports/; this file decides
 * what each message does.
 *
 * Built-in methods so far: Echo. Unknown methods complete with ASP.NET's error text.
 */
#include <stddef.h>
#include <sys/types.h>

#include "shards/shard.h"

struct rh_hub_session;

/* Starts the session of @c, whose 101 reply is queued. Owner shard's thread. */
struct rh_hub_session *rh_hub_session_start(struct rh_conn *c);
/* Bytes the client sent (WebSocket frames). Consumes them all and returns @len, or a negative
 * errno after it has queued the close frames for a protocol violation and closed @c. */
ssize_t rh_hub_session_recv(struct rh_hub_session *h, const uint8_t *data, size_t len);
/* Ends the session (the connection is closing). */
void rh_hub_session_free(struct rh_hub_session *h);
