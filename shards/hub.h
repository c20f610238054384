#pragma once
/*
 * shards/hub.h - SignalR hub sessions: the hub handshake (JSON or MessagePack), the hub
 * messages the client sends, the server's keep-alive pings (every 15 s of silence) and the
 * client timeout (30 s without a message), over any of the three transports:
 *
 *   WebSockets         the session reads and writes its connection's frames;
 *   Server-Sent Events the session writes `data:` events on the GET's connection and reads
 *                      what POSTs bring (JSON only, as SignalR defines it);
 *   long polling       the session has no connection: what it writes waits for the next poll,
 *                      and POSTs bring what it reads.
 *
 * POSTs, polls and DELETEs may arrive on any shard (a new TCP connection lands anywhere):
 * rh_hub_request takes them there and forwards them over the rings to the shard that owns the
 * connection, whose answer comes back the same way (rh_front_answer). Streams (WebSocket and
 * SSE GETs) move their TCP connection to the owner instead, once.
 *
 * The plain EventSource stream (/api/events/{user}) is a session too: one per hub and user,
 * on the shard that owns the user, receiving what is sent to that user and to all. It numbers
 * the events, keeps the last ones for streams that resume with Last-Event-ID, and writes them
 * to every stream of the user (which all move to that shard).
 *
 * Frames and hub messages are parsed and written by transports/; this file decides what each
 * message does.
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
#include "transports/backplane.h"
#include "transports/jwt.h"
#include "transports/rest.h"
#include "transports/span.h"

#define RH_HUB_NAME_MAX 128

struct rh_hub_session;
struct rh_hub_stream;

enum rh_hub_transport {
    RH_HUB_WEBSOCKETS,
    RH_HUB_SERVER_SENT_EVENTS,
};

/* A transport request that carries a connection token and no stream. */
enum rh_hub_op {
    RH_HUB_OP_POLL,   /* GET: long polling */
    RH_HUB_OP_POST,   /* hub bytes from the client (SSE and long polling) */
    RH_HUB_OP_DELETE, /* long polling: the client stops */
};

/* Who a client is: the user its token names (or, running open, its ?user=), and the roles
 * its token grants (ringhub.* names, each ended by '\n'). Running open (no access key), a
 * client may call every built-in method. */
struct rh_hub_identity {
    struct rh_span user;  /* at most RH_GROUP_NAME_MAX bytes; empty: none */
    struct rh_span roles; /* at most RH_HUB_ROLES_MAX bytes */
    bool is_open;
};

/* Every role a token can hold (transports/jwt.h: their text, and a line end each). */
#define RH_HUB_ROLES_MAX (RH_JWT_ROLE_TEXT_MAX + RH_JWT_ROLES_MAX)

struct rh_hub_request {
    enum rh_hub_op op;
    uint64_t reply_to; /* the connection waiting for the answer */
    struct rh_span hub, token, body;
    struct rh_hub_identity who; /* a first poll starts a session for it */
};

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
/* The body of a successful negotiate (@version 0 or 1) for a new connection to hub @hub
 * reserved on @s, as JSON in a new buffer; NULL when the shard has no slot left (answer 503). */
struct rh_buf *rh_hub_negotiate(struct rh_shard *s, struct rh_span hub, int version);

/* Serves @req on the shard that owns its connection: here, or forwarded there over the
 * rings. The answer reaches rh_front_answer on the shard of req->reply_to, now or later (a
 * poll is held until there is something to send or --poll-timeout-ms passes). */
void rh_hub_request(struct rh_shard *s, const struct rh_hub_request *req);

/* Starts the session of @c on hub @hub (at most RH_HUB_NAME_MAX bytes) over @transport, into
 * *@out. @id is the id= query value (empty when a WebSocket client skipped negotiate); it must
 * name a connection negotiated on this shard and not yet used. @who is the client: its user
 * is what SendToUser reaches, its roles what it may call.
 * Returns 0, or the HTTP status to answer: 404 when @id names no such connection, 409 when it
 * already runs this transport, 400 when it runs another (or SSE without an id), 503 when no
 * slot is left. Owner shard's thread; on success the caller queues the reply head. */
int rh_hub_session_start(struct rh_conn *c, enum rh_hub_transport transport, struct rh_span hub,
                         struct rh_span id, const struct rh_hub_identity *who,
                         struct rh_hub_session **out);
/* Bytes the client sent on a WebSocket session's connection (frames). Consumes them all and returns
 * @len, or a negative errno after it has queued the close frames for a protocol violation and
 * closed @c. */
ssize_t rh_hub_session_recv(struct rh_hub_session *h, const uint8_t *data, size_t len);
/* Ends the session (its connection is closing). */
void rh_hub_session_free(struct rh_hub_session *h);

/* A backend API request (transports/rest.h): its route, and for sends the target and JSON
 * arguments and the connection ids not to send to; for a close, the reason. */
struct rh_hub_api_request {
    const struct rh_rest_route *route;
    uint64_t reply_to; /* the connection waiting for the answer */
    struct rh_span target;
    uint32_t arg_count;
    struct rh_span args[RH_HUB_ARGS_MAX];
    uint32_t excluded_count;
    struct rh_span excluded[RH_REST_EXCLUDED_MAX];
    struct rh_span reason;
};

/* Carries out @req: a send goes out from here at once; the others go to the shard that knows
 * the answer (the connection's, or the group's or user's owner). Returns the HTTP status to
 * answer now, or 0 when the answer comes later to rh_front_answer. */
int rh_hub_api(struct rh_shard *s, const struct rh_hub_api_request *req);

/* What operators see of the hub sessions of a shard (the admin socket, /metrics): counters by
 * hub, transport and hub protocol. A shard counts RH_HUB_REPORT_HUBS hubs by name; the hubs it
 * meets after those are counted together, as "other" (so metric labels stay bounded). */
#define RH_HUB_REPORT_HUBS 32

enum rh_hub_report_transport {
    RH_HUB_REPORT_WEBSOCKETS,
    RH_HUB_REPORT_SSE,
    RH_HUB_REPORT_LONGPOLLING,
    RH_HUB_REPORT_EVENTSOURCE, /* plain EventSource streams (/api/events) */
    RH_HUB_REPORT_TRANSPORTS,
};

struct rh_hub_counts {
    uint64_t sessions;     /* open now */
    uint64_t messages_in;  /* hub messages from clients */
    uint64_t messages_out; /* messages written to clients (a feed's: once per event) */
    uint64_t bytes_in, bytes_out;
};

static inline void rh_hub_counts_add(struct rh_hub_counts *sum, const struct rh_hub_counts *n)
{
    sum->sessions += n->sessions;
    sum->messages_in += n->messages_in;
    sum->messages_out += n->messages_out;
    sum->bytes_in += n->bytes_in;
    sum->bytes_out += n->bytes_out;
}

struct rh_hub_report_hub {
    char name[RH_HUB_NAME_MAX + 1];
    struct rh_hub_counts by[RH_HUB_REPORT_TRANSPORTS][2]; /* [transport][enum rh_hub_codec] */
};

struct rh_hub_report {
    struct rh_hub_counts total[RH_HUB_REPORT_TRANSPORTS][2];
    uint64_t groups_owned; /* named groups this shard owns that have members */
    uint64_t closed_rate, closed_too_large, closed_handshake, closed_slow, closed_kicked;
    uint64_t closed_timeout; /* the client sent nothing for 30 s */
    uint64_t dropped_bytes, dropped_frames, refused_joins;
    uint32_t hub_count;
    struct rh_hub_report_hub hubs[RH_HUB_REPORT_HUBS + 1];
};
/* Fills @out for @s. On @s's thread. */
void rh_hub_report(struct rh_shard *s, struct rh_hub_report *out);

/* One client connection as operators see it. */
struct rh_hub_conn_info {
    char id[32]; /* its connectionId */
    char hub[RH_HUB_NAME_MAX + 1];
    char user[RH_GROUP_NAME_MAX + 1];
    char peer[64];     /* "ip:port" of its stream's connection; "" for long polling */
    uint8_t transport; /* enum rh_hub_report_transport */
    uint8_t codec;     /* enum rh_hub_codec */
    uint8_t shard;
    uint32_t groups; /* named groups it is in */
    uint32_t queue_bytes;
    int64_t age_ms;
};
/* Calls @fn for each SignalR connection of @s past its handshake, of hub @hub (NULL ptr: any). */
void rh_hub_each_conn(struct rh_shard *s, struct rh_span hub,
                      void (*fn)(void *ctx, const struct rh_hub_conn_info *info), void *ctx);
/* The shard of this node that holds connectionId @id, or -1 when @id is none of ours. */
int rh_hub_conn_shard(struct rh_shard *s, struct rh_span id);
/* Fills @out for the connection of @s with connectionId @id and calls @group_fn with each named
 * group it is in; false when it has none such. */
bool rh_hub_conn_find(struct rh_shard *s, struct rh_span id, struct rh_hub_conn_info *out,
                      void (*group_fn)(void *ctx, struct rh_span group), void *ctx);
/* Ends the connection of @s with connectionId @id: a hub Close with @reason, no reconnect.
 * False when @s has no such connection. */
bool rh_hub_kick(struct rh_shard *s, struct rh_span id, struct rh_span reason);
/* The groups of @s (shards/groups.h), for listing them. */
struct rh_groups *rh_hub_groups(struct rh_shard *s);

/* The shard that keeps the events of @user of hub @hub: its streams are served there. */
uint32_t rh_hub_events_shard(struct rh_shard *s, struct rh_span hub, struct rh_span user);
/* Starts an EventSource stream of @user's events on @c, on the shard rh_hub_events_shard
 * names, after the caller queued the response head: a retry hint, then the events after
 * @last_id (an id this stream's user saw; empty: none) or a resync event when they are no
 * longer kept, then every new one. */
struct rh_hub_stream *rh_hub_stream_start(struct rh_conn *c, struct rh_span hub,
                                          struct rh_span user, struct rh_span last_id);
/* Ends the stream (its connection is closing). */
void rh_hub_stream_free(struct rh_hub_stream *st);

/* What another node sent through Redis for this shard (shards/backplane.h): an invocation, a
 * command about one of its connections, an answer, or a user's groups. */
void rh_hub_remote(struct rh_shard *s, const struct rh_bp_env *e);
/* Answers the HTTP connection @reply_to (of this node) with @status. */
void rh_hub_remote_answer(struct rh_shard *s, uint64_t reply_to, int status);
/* The node's interest in @key is known to the other nodes (rh_backplane_interest): joins held
 * for it complete. */
void rh_hub_interest_ready(struct rh_shard *s, const struct rh_group_key *key);
