#pragma once
/*
 * shards/front.h - what ringhub does with a connection: every accepted connection starts as
 * HTTP/1.1 (keep-alive and pipelining), and each request is routed to what serves it. Parsing
 * is transports/http's; this file decides where requests go and owns the per-connection state.
 *
 * Routes: GET /healthz and /readyz (503 once stopping); GET /metrics and, with --dashboard,
 * /dashboard and its stream (shards/admin.h), on the operator port when --metrics-port sets one,
 * else on the main port; POST {prefix}{hub}/negotiate; on {prefix}{hub}: a WebSocket upgrade
 * or an SSE GET (Accept: text/event-stream) starts a hub session (shards/hub.h) on the shard
 * that holds the id= connection (the socket moves there if the kernel handed it to another),
 * and a plain GET (long poll), a POST or a DELETE goes to that connection through
 * rh_hub_request, this connection waiting for the answer; GET /api/events/{user}, a plain
 * EventSource stream, on the shard that keeps the user's events; OPTIONS, a CORS preflight.
 * The prefix is --hub-prefix and --hubs may limit the names. Replies to a request with an
 * Origin that --cors-origins allows echo it. Everything else is answered 404 (or 405 for a
 * known path with another method); malformed or oversized requests get their 4xx and the
 * connection is closed.
 */
#include <stdint.h>

#include "shards/shard.h"
#include "transports/span.h"

/* The body of an answer to a transport request. */
enum rh_front_body {
    RH_FRONT_TEXT,       /* text/plain */
    RH_FRONT_BINARY,     /* application/octet-stream: hub bytes of a poll */
    RH_FRONT_JSON,       /* application/json: the backend API's errors */
    RH_FRONT_PROMETHEUS, /* the Prometheus text format: /metrics */
};

/* The connection handler of the ringhub server. */
const struct rh_conn_handler *rh_front_handler(void);

/* Answers the transport request connection @conn_id of @s waits on with @status and @body;
 * nothing happens if that connection has closed meanwhile. */
void rh_front_answer(struct rh_shard *s, uint64_t conn_id, int status, enum rh_front_body kind,
                     struct rh_span body);
