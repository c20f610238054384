#pragma once
/*
 * shards/hub_internal.h - what the files of the hub (hub.c: sessions, hub methods, fan-out;
 * hub_lp.c: transport requests and long polling; hub_api.c: the backend API and users in
 * groups; hub_report.c: what operators see) share. Nothing outside them includes it.
 */
#include "shards/hub.h"

#include "core/b64.h"
#include "core/buf.h"
#include "core/list.h"
#include "core/table.h"
#include "core/timer.h"
#include "shards/events.h"
#include "shards/front.h"
#include "shards/groups.h"
#include "transports/hub.h"
#include "transports/ws.h"

#define KEEPALIVE_MS        15000
#define CLIENT_TIMEOUT_MS   30000
#define BLOB_SEND_ALL       1
#define BLOB_SEND_TO_CONN   2
#define BLOB_REQUEST        3   /* a transport request, to the shard of its connection */
#define BLOB_ANSWER         4   /* its answer, back to the shard of the waiting connection */
#define BLOB_API_CONN       5   /* an API request about a connection, to its shard */
#define BLOB_API_QUERY      6   /* an API question about a group or user, to its owner */
#define BLOB_USER_GROUPS    7   /* an API request about a user's groups, to the user's owner */
#define BLOB_APPLY_GROUPS   8   /* a user's members on a shard join or leave groups */
#define USER_GROUPS_MAX     100 /* groups kept per user; adding one more drops the oldest */
#define SWEEP_MS            1000
#define SLOW_CLOSE_GRACE_MS 1000 /* a slow consumer's Close may still get through this long */
#define SLOW_RULES_MAX      32   /* --slow-consumer-groups patterns */
#define ROUTE_BYTES         8    /* node | shard | slot | generation, as in connection ids */
#define SECRET_BYTES        16
#define PUBLIC_BYTES        8 /* random tail of a connectionId */
#define ID_TEXT_LEN         RH_B64URL_LEN(ROUTE_BYTES + PUBLIC_BYTES)
#define TOKEN_TEXT_LEN      RH_B64URL_LEN(ROUTE_BYTES + SECRET_BYTES)
#define LINKS_MAX           (1u << RH_CONN_ID_SLOT_BITS) /* what a connection id can name */
#define LINK_NONE           UINT32_MAX
#define NOTE_HANDSHAKE      0   /* a join's note: the user's join, then the handshake reply */
#define NOTE_COMPLETE       1   /* a join's note: JoinGroup's completion; invocation id follows */
#define NOTE_API            2   /* a join's note: an API request to answer; u64 reply_to follows */
#define INVOCATION_ID_MAX   200 /* bytes of a JoinGroup invocation id carried in its note */

enum link_state {
    LINK_FREE,
    LINK_NEGOTIATED, /* waiting for its transport */
    LINK_ATTACHED,   /* a session runs on it */
};

/* One hub connection of this shard, from negotiate (or a WebSocket without one) to its end. */
struct hub_link {
    uint32_t gen;
    uint8_t state;
    uint8_t version;   /* negotiate version: 0 uses the connectionId as its token */
    uint32_t hub_hash; /* of the hub it was negotiated for: a token serves that hub only */
    uint8_t secret[SECRET_BYTES];
    uint8_t public_tail[PUBLIC_BYTES];
    union {
        int64_t expires_ms;             /* NEGOTIATED */
        struct rh_hub_session *session; /* ATTACHED */
    };
};

/* What a session runs on: hub.h's two transports with a stream, long polling, and the feed of
 * a user's EventSource streams. */
enum session_transport {
    TRANSPORT_WS,
    TRANSPORT_SSE,
    TRANSPORT_LP,
    TRANSPORT_EVENTS,
};

/* How bytes for a transport are framed; a fan-out keeps one frame per protocol and framing. */
enum framing {
    FRAMING_RAW,   /* hub messages as they are: long polling */
    FRAMING_WS,    /* one WebSocket message */
    FRAMING_SSE,   /* one SSE event of data: lines */
    FRAMING_EVENT, /* a named event with the arguments as JSON data: EventSource feeds */
    FRAMING_COUNT,
};

/* A long-polling session's side of the transport. */
struct lp_state {
    uint64_t waiter; /* the connection holding a poll, when has_waiter */
    bool has_waiter;
    bool is_answer_due; /* something to send to the waiter at the next tick */
    int64_t since_ms;   /* when the held poll came, or when the last poll was answered */
    int64_t started_ms;
    uint32_t out_count, out_cap, out_bytes;
    struct rh_buf **out; /* hub bytes for the next poll, oldest first */
};

/* A stream of a user's EventSource events: its connection is attached to the feed session. */
struct rh_hub_stream {
    struct rh_events_stream *attached;
    struct rh_hub_session *feed;
};

/* A hub's name, kept once per shard and shared by the sessions there that serve it: a session
 * holds a pointer, not a copy, and finding a hub's sessions compares pointers. */
struct hub_name {
    uint64_t hash;
    uint32_t refs; /* sessions */
    uint32_t len;
    char text[];
};

/* What happens to a connection whose send queue is full (--slow-consumer). */
enum slow_policy {
    SLOW_DISCONNECT,
    SLOW_DROP_OLDEST,
    SLOW_LATEST_VALUE, /* a group's newer message takes the place of its older one waiting */
};

struct slow_rule {
    char pattern[RH_GROUP_NAME_MAX + 1];
    uint8_t policy;
};

/* What the limits did on a shard: each a counter, reported at stop (and by /metrics, later). */
struct limit_counts {
    uint64_t closed_rate;      /* --message-rate */
    uint64_t closed_too_large; /* --max-message-size */
    uint64_t closed_handshake; /* --handshake-timeout-ms */
    uint64_t closed_slow;      /* --slow-consumer disconnect */
    uint64_t dropped_bytes;    /* --slow-consumer drop-oldest and latest-value */
    uint64_t refused_joins;    /* --max-groups-per-connection */
    uint64_t closed_kicked;    /* by an operator (the admin socket's kick) */
    uint64_t closed_timeout;   /* no message from the client for 30 s */
    uint64_t dropped_frames;   /* long polling's waiting messages dropped (the rest: runtime) */
};

/* Counters of one hub on this shard, by transport and hub protocol (struct rh_hub_report). */
struct hub_stats {
    struct rh_hub_counts by[RH_HUB_REPORT_TRANSPORTS][2];
    uint32_t len;
    char name[RH_HUB_NAME_MAX];
};

/* The groups the API put a user in, kept by the shard that owns the user: its connections
 * join them now (on whatever shard) and when they come later. */
struct user_groups {
    uint64_t hash; /* feed_hash(hub, user) */
    uint16_t hub_len, user_len;
    uint32_t group_count;
    char *groups[USER_GROUPS_MAX]; /* each a u16 length, then the name */
    char text[];                   /* hub, then user */
};

/* The hub sessions and hub connections of one shard. */
struct hub_shard {
    struct rh_shard *shard;
    struct rh_list sessions; /* past their handshake */
    struct hub_link *links;
    uint32_t link_count, link_cap;
    uint32_t *free_links;
    uint32_t free_count;
    uint32_t negotiated_count;
    struct rh_timer sweep; /* drops negotiated connections never used */
    struct rh_groups *groups;
    uint32_t message_bytes_max;  /* --max-message-size (ASP.NET's MaximumReceiveMessageSize) */
    struct rh_table hub_names;   /* struct hub_name */
    struct rh_table feeds;       /* EventSource feed sessions, by hash(hub, user) */
    struct rh_table user_groups; /* struct user_groups of the users this shard owns */
    uint8_t slow_default;        /* enum slow_policy */
    uint32_t slow_rule_count;
    struct slow_rule *slow_rules;
    struct limit_counts counts;
    /* RH_HUB_REPORT_HUBS hubs by name, then "other" */
    struct hub_stats hub_stats[RH_HUB_REPORT_HUBS + 1];
    uint32_t hub_stats_count;
    const struct rh_cfg *cfg;
};

/* An invocation to send, as it travels between shards (a SendToAll blob, a group message):
 * the argument values are in the sender's hub protocol. */
struct send_all {
    enum rh_hub_codec codec;
    struct rh_span hub, target;
    uint32_t arg_count;
    struct rh_span args[RH_HUB_ARGS_MAX];
    uint32_t excluded_count; /* connections it is not for (the HTTP API's excluded=) */
    const uint8_t *excluded; /* excluded_count u64 routes, host order, unaligned */
    int64_t stamp_ns;        /* a group message: when it was sent (fan-out latency); else 0 */
};

/* Handshake, then (for a connection with a user) the wait for the user's join to take
 * effect, so that a SendToUser issued once the client is connected reaches it. */
enum session_state {
    SESSION_HANDSHAKE,
    SESSION_JOINING_USER,
    SESSION_READY,
};

struct rh_hub_session {
    struct rh_conn *conn; /* WebSockets and SSE: the stream's connection; else NULL */
    union {
        struct rh_ws_in ws;            /* TRANSPORT_WS */
        struct lp_state *lp;           /* TRANSPORT_LP */
        struct rh_events_feed *events; /* TRANSPORT_EVENTS */
    };
    uint8_t state;     /* enum session_state */
    uint8_t transport; /* enum session_transport */
    /* Set inside parser callbacks, which must not close (closing frees the session while the
     * parser still runs); rh_hub_session_recv closes once the parser has returned. */
    bool is_ending;
    enum rh_hub_codec codec;
    int64_t last_rx_ms, last_tx_ms;
    struct rh_timer tick; /* handshake timeout, then keep-alive and client timeout */
    struct rh_list link;  /* struct hub_shard's sessions, once handshaken */
    uint32_t link_slot;   /* its struct hub_link */
    struct hub_name *hub;
    uint8_t *pending; /* hub bytes of an incomplete message */
    uint32_t pending_len;
    uint32_t group_count;  /* memberships, the user's included */
    struct rh_list groups; /* struct rh_membership, in_member */
    char *user;            /* user_len bytes of user, then roles_len bytes of roles; NULL: none */
    uint16_t user_len;
    uint16_t roles_len;   /* the roles of struct rh_hub_identity */
    bool is_open;         /* no access key: every method allowed */
    bool is_slow;         /* closed for not keeping up: its tick closes the connection */
    bool is_behind;       /* latest-value: its queue is long; conflating */
    uint32_t rate_tokens; /* hub messages it may still send now: --message-rate, --message-burst */
    int64_t started_ms;
    struct rh_hub_counts *counts; /* its hub's, transport's and protocol's, once handshaken */
};

/* One message to many sessions of a shard: encoded once per hub protocol, when the first
 * session that speaks it needs it. */
struct fanout {
    struct send_all m;
    struct rh_buf *frames[2][FRAMING_COUNT];
    bool is_unconvertible[2][FRAMING_COUNT]; /* the values do not convert to that */
    int64_t now_ms; /* read once: a clock read per recipient showed in profiles */
    uint8_t policy; /* enum slow_policy for its recipients */
    uint32_t tag;   /* SLOW_LATEST_VALUE: its group's tag on every frame (struct rh_buf) */
};

void hub_answer_blob_received(struct hub_shard *hs, struct rh_blob *b);
void hub_answer_json(struct hub_shard *hs, uint64_t reply_to, int status, const char *json);
void hub_answer_text(struct hub_shard *hs, uint64_t reply_to, int status, const char *text);
void hub_api_conn_received(struct hub_shard *hs, struct rh_blob *b);
void hub_api_query_received(struct hub_shard *hs, struct rh_blob *b);
void hub_apply_groups_received(struct hub_shard *hs, struct rh_blob *b);
bool hub_connection_route(const struct rh_shard *s, const char *id, uint32_t len, uint64_t *route,
                          uint8_t tail[PUBLIC_BYTES]);
void hub_end_session(struct rh_hub_session *h, const char *error, bool allow_reconnect);
void hub_end_with_error(struct rh_hub_session *h, const char *error);
uint64_t hub_feed_hash(struct rh_span hub, struct rh_span user);
void hub_groups_owner_joining(void *ctx, const struct rh_group_key *key, uint64_t route,
                              uint32_t member_shard);
void hub_groups_owner_sending(void *ctx, const struct rh_group_key *key, struct rh_span msg,
                              uint64_t except);
bool hub_groups_interest(void *ctx, const struct rh_group_key *key, bool has_members);
void hub_api_user_groups(struct hub_shard *hs, const struct rh_hub_api_request *req, bool publish);
bool hub_remote_answer(struct hub_shard *hs, uint64_t reply_to, int status);
bool hub_remote_connection_request(struct hub_shard *hs, const struct rh_hub_api_request *req);
bool hub_remote_route(struct hub_shard *hs, struct rh_span id, uint64_t *route);
void hub_remote_send_all(struct hub_shard *hs, const struct send_all *m);
bool hub_remote_send_to_connection(struct hub_shard *hs, struct rh_span id,
                                   const struct send_all *m);
void hub_remote_user_groups(struct hub_shard *hs, const struct rh_hub_api_request *req);
struct hub_name *hub_name_find(struct hub_shard *hs, struct rh_span name);
struct rh_span hub_span(const struct rh_hub_session *h);
struct hub_stats *hub_stats_of(struct hub_shard *hs, struct rh_span hub);
struct hub_link *hub_link_find(struct hub_shard *hs, struct rh_span token, uint32_t *slot);
uint64_t hub_link_route(const struct hub_shard *hs, uint32_t slot);
void hub_lp_answer(struct rh_hub_session *h);
void hub_lp_queue(struct rh_hub_session *h, struct rh_buf *bytes);
void hub_lp_tick(struct rh_hub_session *h);
bool hub_request_unpack(struct rh_span in, struct rh_hub_request *req);
void hub_route_put(uint8_t out[ROUTE_BYTES], uint64_t route);
uint64_t hub_route_get(const uint8_t in[ROUTE_BYTES]);
void hub_send_all_pack(const struct send_all *m, uint8_t *out, uint32_t size);
bool hub_send_all_unpack(struct rh_span in, struct send_all *out);
uint32_t hub_send_all_size(const struct send_all *m);
struct rh_hub_session *hub_session_by_id(struct hub_shard *hs, uint64_t route,
                                         const uint8_t tail[PUBLIC_BYTES]);
void hub_session_finish(struct rh_hub_session *h);
void hub_session_input(struct rh_hub_session *h, const uint8_t *data, size_t len);
struct rh_hub_session *hub_session_new(struct hub_shard *hs, uint32_t slot,
                                       enum session_transport transport, struct rh_span hub,
                                       const struct rh_hub_identity *who);
uint64_t hub_session_route(const struct rh_hub_session *h);
struct hub_shard *hub_shard_self(void);
void hub_tick_schedule(struct rh_hub_session *h);
void hub_transport_request(struct hub_shard *hs, const struct rh_hub_request *req);
void hub_user_groups_free(struct user_groups *ug);
void hub_user_groups_received(struct hub_shard *hs, struct rh_blob *b);
