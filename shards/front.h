#pragma once
/*
 * shards/front.h - what ringhub does with a connection: every accepted connection starts as
 * HTTP/1.1 (keep-alive and pipelining), and each request is routed to what serves it. Parsing
 * is transports/http's; this file decides where requests go and owns the per-connection state.
 *
 * Routes so far: GET /healthz; POST /hubs/{hub}/negotiate; GET /hubs/{hub}, where a WebSocket
 * upgrade starts a hub session (shards/hub.h), on the shard that holds the id= connection
 * (the socket moves there if the kernel handed it to another); OPTIONS on both, a CORS
 * preflight. The prefix is --hub-prefix and --hubs may limit the names. Replies to a request
 * with an Origin that --cors-origins allows echo it. Everything else is answered 404 (or 405 for
 * a known path with another method); malformed or oversized requests get their 4xx and the
 * connection is closed.
 */
#include "shards/shard.h"

/* The connection handler of the ringhub server. */
const struct rh_conn_handler *rh_front_handler(void);
