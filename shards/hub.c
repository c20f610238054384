/*
 * shards/hub.c - see hub.h. A session is small: the WebSocket input parser (idle: 24 bytes;
 * for the other transports, a pointer to their state), the negotiated hub protocol, one timer,
 * and hub bytes split across messages (held only while a message is incomplete). Every reply
 * is written once into a buffer and framed as one WebSocket message, one SSE event or one
 * piece of a poll's answer, so the client always receives whole hub messages.
 *
 * This file has sessions, hub methods and fan-out; hub_lp.c transport requests and long
 * polling, hub_api.c the backend API, hub_report.c what operators see (hub_internal.h).
 */
#include "shards/hub_internal.h"

#include <errno.h>
#include <fnmatch.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "transports/hub_json.h"
#include "transports/hub_msgpack.h"
#include "transports/hub_transcode.h"
#include "transports/sse.h"

static void send_all_received(struct hub_shard *hs, struct rh_blob *b);
static int on_data(void *ctx, enum rh_ws_opcode op, const uint8_t *data, size_t len, bool is_end);
static void hub_feed(struct rh_hub_session *h, const uint8_t *data, size_t len);
static int on_ping(void *ctx, const uint8_t *payload, size_t len);
static int on_close(void *ctx, uint16_t code, const char *reason, size_t reason_len);
static ssize_t hub_input(struct rh_hub_session *h, const uint8_t *data, size_t len);
static ssize_t handshake(struct rh_hub_session *h, const uint8_t *data, size_t len);
static void dispatch(struct rh_hub_session *h, const struct rh_hub_msg *msg);
static void invoke_echo(struct rh_hub_session *h, const struct rh_hub_msg *msg);
static void invoke_send_to_all(struct rh_hub_session *h, const struct rh_hub_msg *msg);
static void invoke_send_to_connection(struct rh_hub_session *h, const struct rh_hub_msg *msg);
static void deliver_to_connection(struct hub_shard *hs, struct rh_blob *b);
static void invoke_join_group(struct rh_hub_session *h, const struct rh_hub_msg *msg);
static void invoke_leave_group(struct rh_hub_session *h, const struct rh_hub_msg *msg);
static void invoke_send_to_group(struct rh_hub_session *h, const struct rh_hub_msg *msg,
                                 enum rh_group_kind kind, bool is_others);
static bool has_room(struct rh_hub_session *h, uint32_t len, enum slow_policy policy, uint32_t tag);
static uint32_t conflate(struct rh_hub_session *h, uint32_t tag);
static void slow_consumer_close(struct rh_hub_session *h);
static enum slow_policy slow_policy_of(const struct hub_shard *hs, struct rh_span group);
static void slow_rules_parse(struct hub_shard *hs);
static bool is_allowed(struct rh_hub_session *h, const struct rh_hub_msg *msg, const char *method,
                       const char *role, struct rh_span group);
static bool group_arg(struct rh_hub_session *h, const struct rh_hub_msg *msg, const char *method,
                      bool is_only_arg, char name[RH_GROUP_NAME_MAX], struct rh_group_key *key);
static void groups_deliver(void *ctx, const struct rh_group_key *key, const struct rh_list *members,
                           struct rh_span msg, uint64_t except);
static void groups_joined(void *ctx, uint64_t route, struct rh_span note);
static void session_ready(struct rh_hub_session *h);
static void fanout_to(struct fanout *f, struct rh_hub_session *h);
static struct rh_buf *fanout_frame(struct fanout *f, enum rh_hub_codec codec, enum framing fr);
static void fanout_end(struct fanout *f);
static uint32_t link_alloc(struct hub_shard *hs);
static void link_free(struct hub_shard *hs, uint32_t slot);
static void sweep_fired(struct rh_timer *t);
static struct send_all send_all_of(const struct rh_hub_session *h, const struct rh_hub_msg *msg,
                                   uint32_t first_arg, struct rh_span target);
static bool is_excluded(const struct send_all *m, uint64_t route);
static struct rh_buf *invocation_bytes(const struct send_all *m, enum rh_hub_codec codec);
static struct rh_buf *invocation_event(const struct send_all *m);
static void complete(struct rh_hub_session *h, const struct rh_hub_msg *msg,
                     enum rh_hub_result kind, struct rh_span payload);
static void complete_error(struct rh_hub_session *h, const struct rh_hub_msg *msg,
                           const char *error);
static ssize_t arg_string(const struct rh_hub_session *h, const struct rh_hub_msg *msg,
                          uint32_t idx, void *out, size_t cap);
static void send_hub(struct rh_hub_session *h, struct rh_buf *hub_bytes);
static void session_write(struct rh_hub_session *h, struct rh_buf *frame);
static void send_ws_close(struct rh_hub_session *h, uint16_t code);
static void tick_fired(struct rh_timer *t);
static uint32_t message_bytes_max(void);
static void feed_tick(struct rh_hub_session *h);
static bool feed_eq(const void *item, const void *key);
static struct hub_name *hub_name_get(struct hub_shard *hs, struct rh_span name);
static void hub_name_put(struct hub_shard *hs, struct hub_name *name);
static const struct rh_ws_in_ops ws_ops = {
    .on_data = on_data,
    .on_ping = on_ping,
    .on_close = on_close,
};

static const struct rh_groups_ops group_ops = {
    .deliver = groups_deliver,
    .joined = groups_joined,
    .owner_joining = hub_groups_owner_joining,
    .owner_sending = hub_groups_owner_sending,
    .interest = hub_groups_interest,
};

void rh_hub_shard_start(struct rh_shard *s)
{
    struct hub_shard *hs = rh_calloc(1, sizeof(*hs));
    hs->shard = s;
    rh_list_init(&hs->sessions);
    rh_timer_init(&hs->sweep, sweep_fired);
    hs->groups = rh_groups_new(s, &group_ops, hs);
    rh_table_init(&hs->hub_names);
    rh_table_init(&hs->feeds);
    rh_table_init(&hs->user_groups);
    hs->cfg = rh_runtime_cfg(rh_shard_runtime(s));
    hs->message_bytes_max = hs->cfg->max_message_size;
    slow_rules_parse(hs);
    if (rh_shard_idx(s) == 0 && !hs->cfg->access_key)
        rh_log_warn("auth",
                    "NO ACCESS KEY: ringhub runs open, for development only: any client may "
                    "connect and call every hub method, and ?user= names its user. Set "
                    "--access-key-file (or RINGHUB_ACCESS_KEY) to require tokens.");
    rh_shard_set_app(s, hs);
}

void rh_hub_shard_stop(struct rh_shard *s)
{
    struct hub_shard *hs = rh_shard_app(s);
    /* Every connection has gone; long-polling sessions and feeds have none. */
    for (uint32_t slot = 0; slot < hs->link_count; slot++)
        if (hs->links[slot].state == LINK_ATTACHED) rh_hub_session_free(hs->links[slot].session);
    RH_ASSERT(rh_list_is_empty(&hs->sessions));
    RH_ASSERT(hs->feeds.count == 0);
    rh_table_free(&hs->feeds);
    uint32_t cursor = 0;
    for (struct user_groups *ug; (ug = rh_table_next(&hs->user_groups, &cursor));)
        hub_user_groups_free(ug);
    rh_table_free(&hs->user_groups);
    const struct limit_counts *n = &hs->counts;
    if (n->closed_rate || n->closed_too_large || n->closed_handshake || n->closed_slow ||
        n->dropped_bytes || n->refused_joins)
        rh_log_info("hub",
                    "limits: closed %llu over the message rate, %llu for a message too large, "
                    "%llu without a handshake, %llu slow consumers; %llu bytes dropped for slow "
                    "consumers; %llu joins over the group limit",
                    (unsigned long long)n->closed_rate, (unsigned long long)n->closed_too_large,
                    (unsigned long long)n->closed_handshake, (unsigned long long)n->closed_slow,
                    (unsigned long long)n->dropped_bytes, (unsigned long long)n->refused_joins);
    rh_free(hs->slow_rules);
    rh_timer_cancel(&hs->sweep);
    rh_groups_free(hs->groups);
    RH_ASSERT(hs->hub_names.count == 0); /* every session has gone */
    rh_table_free(&hs->hub_names);
    rh_shard_set_app(s, NULL);
    rh_free(hs->links);
    rh_free(hs->free_links);
    rh_free(hs);
}

void rh_hub_shard_draining(struct rh_shard *s)
{
    struct hub_shard *hs = rh_shard_app(s);
    struct rh_list *node;
    rh_list_for_each(node, &hs->sessions) {
        struct rh_hub_session *h = rh_list_entry(node, struct rh_hub_session, link);
        if (h->is_ending || h->transport == TRANSPORT_EVENTS) continue;
        hub_end_session(h, "Server is shutting down.", true);
        /* A held poll gets the Close now, not at the next tick: connections close as soon as
         * every shard has drained. */
        if (h->transport == TRANSPORT_LP && h->lp->has_waiter) hub_lp_answer(h);
    }
}

void rh_hub_blob(struct rh_shard *s, struct rh_blob *b)
{
    struct hub_shard *hs = rh_shard_app(s);
    if (rh_groups_blob(hs->groups, b)) return;
    struct rh_hub_request req;
    switch (b->kind) {
    case BLOB_SEND_ALL:
        send_all_received(hs, b);
        return;
    case BLOB_SEND_TO_CONN:
        deliver_to_connection(hs, b);
        return;
    case BLOB_REQUEST:
        if (hub_request_unpack(rh_span_make(b->data, b->len), &req))
            hub_transport_request(hs, &req);
        return;
    case BLOB_ANSWER:
        hub_answer_blob_received(hs, b);
        return;
    case BLOB_API_CONN:
        hub_api_conn_received(hs, b);
        return;
    case BLOB_API_QUERY:
        hub_api_query_received(hs, b);
        return;
    case BLOB_USER_GROUPS:
        hub_user_groups_received(hs, b);
        return;
    case BLOB_APPLY_GROUPS:
        hub_apply_groups_received(hs, b);
        return;
    default:
        rh_log_limited(RH_LOG_ERROR, "hub", "unknown blob kind %u", b->kind);
    }
}

/* SendToAll: every session of the hub on this shard. */
static void send_all_received(struct hub_shard *hs, struct rh_blob *b)
{
    struct fanout f = {.policy = hs->slow_default};
    if (!hub_send_all_unpack(rh_span_make(b->data, b->len), &f.m)) return;
    const struct hub_name *hub = hub_name_find(hs, f.m.hub);
    if (!hub) return; /* no session of that hub on this shard */
    struct rh_list *node;
    rh_list_for_each(node, &hs->sessions) {
        struct rh_hub_session *h = rh_list_entry(node, struct rh_hub_session, link);
        if (h->hub == hub) fanout_to(&f, h);
    }
    fanout_end(&f);
}

int rh_hub_id_shard(const struct rh_shard *s, const char *id, size_t len)
{
    uint8_t bytes[ROUTE_BYTES + SECRET_BYTES];
    if (len != ID_TEXT_LEN && len != TOKEN_TEXT_LEN) return -1;
    if (rh_b64url_decode(id, len, bytes, sizeof(bytes)) < ROUTE_BYTES) return -1;
    uint64_t route = hub_route_get(bytes);
    if (rh_conn_id_node(route) != rh_runtime_node_id(rh_shard_runtime(s))) return -1;
    uint32_t shard = rh_conn_id_shard(route);
    return shard < rh_shard_count(s) ? (int)shard : -1;
}

struct rh_buf *rh_hub_negotiate(struct rh_shard *s, struct rh_span hub, int version)
{
    struct hub_shard *hs = rh_shard_app(s);
    uint32_t slot = link_alloc(hs);
    if (slot == LINK_NONE) return NULL;
    struct hub_link *l = &hs->links[slot];
    l->state = LINK_NEGOTIATED;
    l->version = (uint8_t)version;
    l->hub_hash = (uint32_t)rh_hash(hub.ptr, hub.len);
    l->expires_ms = rh_clock_now_ms() + hs->cfg->disconnect_timeout_ms;
    if (RAND_bytes(l->secret, SECRET_BYTES) != 1 || RAND_bytes(l->public_tail, PUBLIC_BYTES) != 1)
        RH_ASSERT(!"RAND_bytes failed");
    if (!hs->negotiated_count++)
        rh_timer_schedule(rh_shard_wheel(s), &hs->sweep, rh_clock_now_ms() + SWEEP_MS);

    uint8_t raw[ROUTE_BYTES + SECRET_BYTES];
    char id[ID_TEXT_LEN + 1], token[TOKEN_TEXT_LEN + 1];
    hub_route_put(raw, hub_link_route(hs, slot));
    memcpy(raw + ROUTE_BYTES, l->public_tail, PUBLIC_BYTES);
    rh_b64url_encode(raw, ROUTE_BYTES + PUBLIC_BYTES, id);
    memcpy(raw + ROUTE_BYTES, l->secret, SECRET_BYTES);
    rh_b64url_encode(raw, ROUTE_BYTES + SECRET_BYTES, token);

    static const char transports[] =
        "\"availableTransports\":["
        "{\"transport\":\"WebSockets\",\"transferFormats\":[\"Text\",\"Binary\"]},"
        "{\"transport\":\"ServerSentEvents\",\"transferFormats\":[\"Text\"]},"
        "{\"transport\":\"LongPolling\",\"transferFormats\":[\"Text\",\"Binary\"]}]}";
    char body[640];
    int n = version >= 1
                ? snprintf(body, sizeof(body),
                           "{\"negotiateVersion\":1,\"connectionId\":\"%s\","
                           "\"connectionToken\":\"%s\",%s",
                           id, token, transports)
                : snprintf(body, sizeof(body), "{\"negotiateVersion\":0,\"connectionId\":\"%s\",%s",
                           id, transports);
    return rh_buf_copy(body, (uint32_t)n);
}

int rh_hub_session_start(struct rh_conn *c, enum rh_hub_transport transport, struct rh_span hub,
                         struct rh_span id, const struct rh_hub_identity *who,
                         struct rh_hub_session **out)
{
    RH_ASSERT(hub.len <= RH_HUB_NAME_MAX && who->user.len <= RH_GROUP_NAME_MAX);
    struct hub_shard *hs = rh_shard_app(rh_conn_shard(c));
    enum session_transport wanted = transport == RH_HUB_WEBSOCKETS ? TRANSPORT_WS : TRANSPORT_SSE;
    uint32_t slot;
    if (id.len) {
        struct hub_link *l = hub_link_find(hs, id, &slot);
        if (!l || l->hub_hash != (uint32_t)rh_hash(hub.ptr, hub.len)) return 404;
        if (l->state == LINK_ATTACHED) /* as ASP.NET answers */
            return l->session->transport == wanted ? 409 : 400;
        hs->negotiated_count--;
    } else {
        if (transport != RH_HUB_WEBSOCKETS) return 400; /* only WebSockets skip negotiate */
        slot = link_alloc(hs);
        if (slot == LINK_NONE) return 503;
        if (RAND_bytes(hs->links[slot].public_tail, PUBLIC_BYTES) != 1)
            RH_ASSERT(!"RAND_bytes failed");
    }
    *out = hub_session_new(hs, slot, wanted, hub, who);
    (*out)->conn = c;
    return 0;
}

void rh_hub_session_free(struct rh_hub_session *h)
{
    struct hub_shard *hs = hub_shard_self();
    if (h->counts && h->transport != TRANSPORT_EVENTS) h->counts->sessions--;
    rh_groups_leave_all(hs->groups, &h->groups);
    link_free(hs, h->link_slot);
    rh_list_unlink(&h->link);
    rh_timer_cancel(&h->tick);
    switch (h->transport) {
    case TRANSPORT_WS:
        rh_ws_in_destroy(&h->ws);
        break;
    case TRANSPORT_LP:
        if (h->lp->has_waiter) hub_answer_text(hs, h->lp->waiter, 204, "");
        for (uint32_t i = 0; i < h->lp->out_count; i++)
            rh_buf_unref(h->lp->out[i]);
        rh_free(h->lp->out);
        rh_free(h->lp);
        break;
    case TRANSPORT_EVENTS:
        rh_table_remove(&hs->feeds, hub_feed_hash(hub_span(h), rh_span_make(h->user, h->user_len)),
                        h);
        rh_events_feed_free(h->events);
        break;
    default:
        break;
    }
    rh_free(h->pending);
    rh_free(h->user);
    hub_name_put(hs, h->hub);
    rh_free(h);
}

ssize_t rh_hub_session_recv(struct rh_hub_session *h, const uint8_t *data, size_t len)
{
    struct rh_conn *c = h->conn;
    if (h->transport != TRANSPORT_WS) {
        /* An SSE GET's connection: the client sends on other requests, not here. */
        rh_conn_close(c, RH_CLOSE_AFTER_FLUSH);
        return -EPROTO;
    }
    ssize_t n = rh_ws_in_feed(&h->ws, data, len, &ws_ops, h);
    if (h->is_ending) {
        rh_conn_close(c, RH_CLOSE_AFTER_FLUSH); /* frees @h */
        return (ssize_t)len;
    }
    if (n >= 0) return (ssize_t)len;
    if (h->ws.close_code) {
        /* A WebSocket violation: say which in the close frame, then close. */
        struct rh_buf *close = rh_ws_close_frame_new(h->ws.close_code, h->ws.reason);
        rh_conn_send(c, close);
        rh_buf_unref(close);
        rh_log_limited(RH_LOG_INFO, "hub", "connection %llx: %s", (unsigned long long)rh_conn_id(c),
                       h->ws.reason ? h->ws.reason : "websocket error");
    }
    rh_conn_close(c, RH_CLOSE_AFTER_FLUSH);
    return n;
}

uint32_t rh_hub_events_shard(struct rh_shard *s, struct rh_span hub, struct rh_span user)
{
    struct hub_shard *hs = rh_shard_app(s);
    struct rh_group_key key = {RH_GROUP_USER, hub, user};
    return rh_groups_owner(hs->groups, &key);
}

struct rh_hub_stream *rh_hub_stream_start(struct rh_conn *c, struct rh_span hub,
                                          struct rh_span user, struct rh_span last_id)
{
    RH_ASSERT(hub.len <= RH_HUB_NAME_MAX && user.len && user.len <= RH_GROUP_NAME_MAX);
    struct hub_shard *hs = rh_shard_app(rh_conn_shard(c));
    struct rh_span key[2] = {hub, user};
    uint64_t hash = hub_feed_hash(hub, user);
    struct rh_hub_session *feed = rh_table_find(&hs->feeds, hash, feed_eq, key);
    if (!feed) {
        /* The user's feed: a session that receives what its user and the hub's clients get,
         * and outlives its streams by --events-retention-ms, so that they can resume. */
        uint32_t slot = link_alloc(hs);
        if (slot == LINK_NONE) return NULL;
        struct rh_hub_identity who = {.user = user};
        feed = hub_session_new(hs, slot, TRANSPORT_EVENTS, hub, &who);
        feed->events = rh_events_feed_new(hs->cfg->events_history);
        feed->state = SESSION_READY;
        feed->counts = &hub_stats_of(hs, hub)->by[TRANSPORT_EVENTS][RH_HUB_JSON];
        rh_list_push_back(&hs->sessions, &feed->link);
        rh_table_insert(&hs->feeds, hash, feed);
        struct rh_group_key user_key = {RH_GROUP_USER, hub, user};
        feed->group_count++;
        rh_groups_join(hs->groups, &user_key, feed, hub_link_route(hs, slot), &feed->groups,
                       rh_span_make(NULL, 0));
    }
    struct rh_hub_stream *st = rh_alloc(sizeof(*st));
    st->feed = feed;
    st->attached = rh_events_attach(feed->events, c, last_id, rh_clock_now_ms());
    feed->counts->sessions++; /* a feed's sessions are its streams */
    hub_tick_schedule(feed);
    return st;
}

void rh_hub_stream_free(struct rh_hub_stream *st)
{
    struct rh_hub_session *feed = st->feed;
    feed->counts->sessions--;
    rh_events_detach(st->attached);
    rh_free(st);
    hub_tick_schedule(feed); /* the history's retention starts with the last stream gone */
}

/* A new session of @transport on hub connection @slot (taken from free or negotiated). */
struct rh_hub_session *hub_session_new(struct hub_shard *hs, uint32_t slot,
                                       enum session_transport transport, struct rh_span hub,
                                       const struct rh_hub_identity *who)
{
    RH_ASSERT(who->roles.len <= RH_HUB_ROLES_MAX);
    struct rh_hub_session *h = rh_calloc(1, sizeof(*h));
    hs->links[slot].state = LINK_ATTACHED;
    hs->links[slot].session = h;
    h->link_slot = slot;
    h->transport = (uint8_t)transport;
    h->hub = hub_name_get(hs, hub);
    if (who->user.len || who->roles.len) {
        h->user = rh_alloc(who->user.len + who->roles.len);
        if (who->user.len) memcpy(h->user, who->user.ptr, who->user.len);
        if (who->roles.len) memcpy(h->user + who->user.len, who->roles.ptr, who->roles.len);
        h->user_len = (uint16_t)who->user.len;
        h->roles_len = (uint16_t)who->roles.len;
    }
    h->is_open = who->is_open;
    rh_list_init(&h->link);
    rh_list_init(&h->groups);
    if (transport == TRANSPORT_WS) rh_ws_in_init(&h->ws, 0); /* streamed: on_data */
    h->last_rx_ms = h->last_tx_ms = h->started_ms = rh_clock_now_ms();
    h->rate_tokens = hs->cfg->message_burst;
    rh_timer_init(&h->tick, tick_fired);
    if (transport == TRANSPORT_LP) {
        h->lp = rh_calloc(1, sizeof(*h->lp));
        h->lp->since_ms = h->lp->started_ms = h->last_rx_ms;
    }
    if (transport != TRANSPORT_EVENTS)
        rh_timer_schedule(rh_shard_wheel(hs->shard), &h->tick,
                          h->last_rx_ms + hub_shard_self()->cfg->handshake_timeout_ms);
    return h;
}

/* The WebSocket messages are one stream of hub bytes, as in ASP.NET: a hub message may span
 * WebSocket messages, and the client batches many into one when it sends faster than the
 * socket drains, so the size limit applies to hub messages (the parsers enforce it), not to
 * WebSocket messages. */
static int on_data(void *ctx, enum rh_ws_opcode op, const uint8_t *data, size_t len, bool is_end)
{
    struct rh_hub_session *h = ctx;
    (void)op; /* the hub stream ignores frame types: the JSON handshake comes as text anyway */
    (void)is_end;
    hub_session_input(h, data, len);
    return h->is_ending ? -ECONNABORTED : 0;
}

/* Hub bytes from the client, whatever carried them. */
void hub_session_input(struct rh_hub_session *h, const uint8_t *data, size_t len)
{
    /* The rate bucket refills for the time since the last input. */
    const struct rh_cfg *cfg = hub_shard_self()->cfg;
    int64_t now_ms = rh_clock_now_ms();
    uint64_t refill = (uint64_t)(now_ms - h->last_rx_ms) * cfg->message_rate / 1000;
    uint64_t tokens = h->rate_tokens + refill;
    h->rate_tokens = (uint32_t)(tokens < cfg->message_burst ? tokens : cfg->message_burst);
    if (refill || h->rate_tokens == cfg->message_burst) h->last_rx_ms = now_ms;
    if (!len) return;
    if (h->counts) h->counts->bytes_in += len;
    if (h->state == SESSION_JOINING_USER && h->pending_len + len > message_bytes_max()) {
        /* Held unparsed until the handshake reply: a client should wait for it. */
        hub_end_with_error(h, "Connection closed with an error. InvalidDataException: too much "
                              "data before the handshake completed.");
        return;
    }
    hub_feed(h, data, len);
}

/* Hub bytes after those pending: handles the whole messages, keeps the rest pending. */
static void hub_feed(struct rh_hub_session *h, const uint8_t *payload, size_t len)
{
    if (!h->pending_len) {
        ssize_t used = hub_input(h, payload, len);
        if (!h->is_ending && (size_t)used < len) {
            h->pending = rh_alloc(len - (size_t)used);
            memcpy(h->pending, payload + used, len - (size_t)used);
            h->pending_len = (uint32_t)(len - (size_t)used);
        }
        return;
    }
    /* A hub message split across WebSocket messages: join and parse from the start. */
    uint32_t joined_len = h->pending_len + (uint32_t)len;
    uint8_t *joined = rh_alloc(joined_len);
    memcpy(joined, h->pending, h->pending_len);
    if (len) memcpy(joined + h->pending_len, payload, len);
    rh_free(h->pending);
    h->pending = NULL;
    h->pending_len = 0;
    ssize_t used = hub_input(h, joined, joined_len);
    if (!h->is_ending && (uint32_t)used < joined_len) {
        h->pending_len = joined_len - (uint32_t)used;
        memmove(joined, joined + used, h->pending_len);
        h->pending = joined;
    } else {
        rh_free(joined);
    }
}

static int on_ping(void *ctx, const uint8_t *payload, size_t len)
{
    struct rh_hub_session *h = ctx;
    struct rh_buf *pong = rh_ws_frame_new(RH_WS_OP_PONG, payload, (uint32_t)len);
    rh_conn_send(h->conn, pong);
    rh_buf_unref(pong);
    return 0;
}

/* The client ends the session: a WebSocket close, or a hub Close on any transport. */
static int on_close(void *ctx, uint16_t code, const char *reason, size_t reason_len)
{
    struct rh_hub_session *h = ctx;
    (void)reason;
    (void)reason_len;
    if (h->transport == TRANSPORT_WS)
        send_ws_close(h, code == RH_WS_CLOSE_NO_STATUS ? 0 : RH_WS_CLOSE_NORMAL);
    h->is_ending = true;
    return -ECONNABORTED;
}

/* Handles the whole hub messages at the front of @data and returns the bytes used (the rest
 * is an incomplete message). Stops early when the session is ending (h->is_ending). */
static ssize_t hub_input(struct rh_hub_session *h, const uint8_t *data, size_t len)
{
    size_t used = 0;
    while (used < len && !h->is_ending) {
        if (h->state == SESSION_JOINING_USER) break; /* the rest waits for session_ready */
        if (h->state == SESSION_HANDSHAKE) {
            ssize_t n = handshake(h, data + used, len - used);
            if (n < 0) break; /* -EAGAIN: wait for more; otherwise the session is ending */
            used += (size_t)n;
            continue;
        }
        struct rh_hub_msg msg;
        const char *reason = NULL;
        uint32_t max = message_bytes_max();
        ssize_t n = h->codec == RH_HUB_JSON
                        ? rh_hub_json_parse(data + used, len - used, max, &msg, &reason)
                        : rh_hub_msgpack_parse(data + used, len - used, max, &msg, &reason);
        if (n == -EAGAIN) break;
        if (n < 0) {
            char error[256];
            if (n == -EMSGSIZE) hub_shard_self()->counts.closed_too_large++;
            if (n == -EMSGSIZE)
                snprintf(error, sizeof(error),
                         "Connection closed with an error. InvalidDataException: The maximum "
                         "message size of %uB was exceeded.",
                         max);
            else
                snprintf(error, sizeof(error),
                         "Connection closed with an error. InvalidDataException: %s",
                         reason ? reason : "malformed message");
            hub_end_with_error(h, error);
            break;
        }
        used += (size_t)n;
        if (!h->rate_tokens) {
            /* Over the rate for longer than the burst allows: not a client to keep serving. */
            char error[200];
            hub_shard_self()->counts.closed_rate++;
            snprintf(error, sizeof(error),
                     "Connection closed with an error. HubException: more than %u messages per "
                     "second (--message-rate), beyond a burst of %u.",
                     hub_shard_self()->cfg->message_rate, hub_shard_self()->cfg->message_burst);
            hub_end_with_error(h, error);
            break;
        }
        h->rate_tokens--;
        dispatch(h, &msg);
    }
    return (ssize_t)used;
}

static ssize_t handshake(struct rh_hub_session *h, const uint8_t *data, size_t len)
{
    struct rh_hub_handshake hs;
    const char *reason = NULL;
    char error[256];
    ssize_t n = rh_hub_handshake_parse(data, len, message_bytes_max(), &hs, &reason);
    if (n == -EAGAIN) return n;

    enum rh_hub_handshake_fail fail;
    if (n == -EMSGSIZE) {
        fail = RH_HUB_HANDSHAKE_CANCELED;
    } else if (n < 0) {
        fail = RH_HUB_HANDSHAKE_UNEXPECTED;
    } else if (strcasecmp(hs.protocol, "messagepack") == 0 && h->transport == TRANSPORT_SSE) {
        fail = RH_HUB_HANDSHAKE_BAD_TRANSFER; /* SSE carries text only */
    } else if (strcasecmp(hs.protocol, "json") == 0 ||
               strcasecmp(hs.protocol, "messagepack") == 0) {
        if (hs.version <= 2) {
            h->codec = strcasecmp(hs.protocol, "json") == 0 ? RH_HUB_JSON : RH_HUB_MSGPACK;
            if (!h->user_len) {
                session_ready(h);
                return n;
            }
            struct hub_shard *hubs = hub_shard_self();
            struct rh_group_key key = {RH_GROUP_USER, hub_span(h),
                                       rh_span_make(h->user, h->user_len)};
            uint8_t note = NOTE_HANDSHAKE;
            h->state = SESSION_JOINING_USER;
            h->group_count++;
            rh_groups_join(hubs->groups, &key, h, hub_link_route(hubs, h->link_slot), &h->groups,
                           rh_span_make(&note, 1));
            return n;
        }
        fail = RH_HUB_HANDSHAKE_BAD_VERSION;
    } else {
        fail = RH_HUB_HANDSHAKE_BAD_PROTOCOL;
    }
    rh_hub_handshake_error_text(fail, n > 0 ? &hs : NULL, error, sizeof(error));
    rh_log_limited(RH_LOG_INFO, "hub", "connection %llx: handshake refused: %s",
                   (unsigned long long)hub_session_route(h), error);
    struct rh_buf *reply = rh_buf_new(64);
    rh_hub_handshake_write_error(&reply, error);
    send_hub(h, reply);
    if (h->transport == TRANSPORT_WS) send_ws_close(h, RH_WS_CLOSE_NORMAL);
    h->is_ending = true;
    return n < 0 ? n : -EPROTO;
}

static void dispatch(struct rh_hub_session *h, const struct rh_hub_msg *msg)
{
    if (h->counts) h->counts->messages_in++;
    switch (msg->type) {
    case RH_HUB_INVOCATION:
        if (rh_span_eq_nocase(msg->target, "Echo")) {
            invoke_echo(h, msg);
        } else if (rh_span_eq_nocase(msg->target, "SendToAll")) {
            invoke_send_to_all(h, msg);
        } else if (rh_span_eq_nocase(msg->target, "SendToConnection")) {
            invoke_send_to_connection(h, msg);
        } else if (rh_span_eq_nocase(msg->target, "SendToGroup")) {
            invoke_send_to_group(h, msg, RH_GROUP_NAMED, false);
        } else if (rh_span_eq_nocase(msg->target, "SendToOthersInGroup")) {
            invoke_send_to_group(h, msg, RH_GROUP_NAMED, true);
        } else if (rh_span_eq_nocase(msg->target, "SendToUser")) {
            invoke_send_to_group(h, msg, RH_GROUP_USER, false);
        } else if (rh_span_eq_nocase(msg->target, "JoinGroup")) {
            invoke_join_group(h, msg);
        } else if (rh_span_eq_nocase(msg->target, "LeaveGroup")) {
            invoke_leave_group(h, msg);
        } else {
            char error[160];
            snprintf(error, sizeof(error), "Unknown hub method '%.*s'", (int)msg->target.len,
                     (const char *)msg->target.ptr);
            complete_error(h, msg, error);
        }
        break;
    case RH_HUB_STREAM_INVOCATION:
        complete_error(h, msg, "Streaming hub methods are not supported.");
        break;
    case RH_HUB_CLOSE:
        on_close(h, RH_WS_CLOSE_NORMAL, NULL, 0); /* the client is stopping */
        break;
    default:
        break; /* Ping, completions of client results, unknown types: nothing to do */
    }
}

static void invoke_echo(struct rh_hub_session *h, const struct rh_hub_msg *msg)
{
    if (msg->arg_count != 1) {
        complete_error(h, msg, "Failed to invoke 'Echo' due to an error on the server.");
        return;
    }
    complete(h, msg, RH_HUB_RESULT_VALUE, msg->args[0]);
}

/* SendToAll(target, ...args): every session of this hub, on every shard, the caller
 * included, receives Invocation(target, args). */
static void invoke_send_to_all(struct rh_hub_session *h, const struct rh_hub_msg *msg)
{
    struct rh_shard *s = hub_shard_self()->shard;
    uint8_t target[RH_HUB_NAME_MAX];
    ssize_t target_len = arg_string(h, msg, 0, target, sizeof(target));
    if (msg->arg_count < 1 || target_len <= 0) {
        complete_error(h, msg, "Failed to invoke 'SendToAll' due to an error on the server.");
        return;
    }
    if (!is_allowed(h, msg, "SendToAll", "ringhub.sendToAll", rh_span_make(NULL, 0))) return;
    struct rh_span target_span = rh_span_make(target, (uint32_t)target_len);
    struct send_all m = send_all_of(h, msg, 1, target_span);
    uint32_t size = hub_send_all_size(&m);
    struct rh_blob *b = rh_blob_new(BLOB_SEND_ALL, rh_shard_count(s), NULL, size);
    hub_send_all_pack(&m, b->data, size);
    rh_shard_post_all(s, b);
    hub_remote_send_all(hub_shard_self(), &m);
    complete(h, msg, RH_HUB_RESULT_VALUE, rh_span_make(NULL, 0)); /* null: void */
}

/* SendToConnection(connectionId, target, ...args): that one connection, on whichever shard
 * (of this node) it lives; an unknown id is not an error, as in ASP.NET. */
static void invoke_send_to_connection(struct rh_hub_session *h, const struct rh_hub_msg *msg)
{
    struct rh_shard *s = hub_shard_self()->shard;
    char id[ID_TEXT_LEN + 1];
    uint8_t target[RH_HUB_NAME_MAX];
    ssize_t id_len = arg_string(h, msg, 0, id, sizeof(id));
    ssize_t target_len = arg_string(h, msg, 1, target, sizeof(target));
    if (msg->arg_count < 2 || target_len <= 0 || id_len == -EINVAL) {
        complete_error(h, msg,
                       "Failed to invoke 'SendToConnection' due to an error on the server.");
        return;
    }
    if (!is_allowed(h, msg, "SendToConnection", "ringhub.sendToConnection", rh_span_make(NULL, 0)))
        return;
    uint64_t route;
    uint8_t tail[PUBLIC_BYTES];
    if (id_len > 0 && hub_connection_route(s, id, (uint32_t)id_len, &route, tail)) {
        struct rh_span target_span = rh_span_make(target, (uint32_t)target_len);
        struct send_all m = send_all_of(h, msg, 2, target_span);
        uint32_t size = hub_send_all_size(&m);
        struct rh_blob *b = rh_blob_new(BLOB_SEND_TO_CONN, 1, NULL, PUBLIC_BYTES + size);
        memcpy(b->data, tail, PUBLIC_BYTES);
        hub_send_all_pack(&m, b->data + PUBLIC_BYTES, size);
        b->arg = route;
        rh_shard_post(s, rh_conn_id_shard(route), b);
    } else if (id_len > 0) {
        struct send_all m = send_all_of(h, msg, 2, rh_span_make(target, (uint32_t)target_len));
        hub_remote_send_to_connection(hub_shard_self(), rh_span_make(id, (uint32_t)id_len), &m);
    }
    complete(h, msg, RH_HUB_RESULT_VALUE, rh_span_make(NULL, 0)); /* null: void */
}

/* BLOB_SEND_TO_CONN: the connectionId's random tail, then the invocation; b->arg is the
 * route. */
static void deliver_to_connection(struct hub_shard *hs, struct rh_blob *b)
{
    struct send_all m;
    if (b->len < PUBLIC_BYTES ||
        !hub_send_all_unpack(rh_span_make(b->data + PUBLIC_BYTES, b->len - PUBLIC_BYTES), &m))
        return;
    struct rh_hub_session *h = hub_session_by_id(hs, b->arg, b->data);
    if (!h) return; /* gone, or never was */
    /* Connections of another hub are out of reach, as in ASP.NET, where each hub has its own. */
    if (h->hub != hub_name_find(hs, m.hub)) return;
    struct fanout f = {.m = m, .policy = hs->slow_default};
    fanout_to(&f, h);
    fanout_end(&f);
}

/* JoinGroup(group): completes once the owner of the group has taken the join in, so that
 * any send issued after the completion reaches the caller. */
static void invoke_join_group(struct rh_hub_session *h, const struct rh_hub_msg *msg)
{
    struct hub_shard *hs = hub_shard_self();
    char name[RH_GROUP_NAME_MAX];
    struct rh_group_key key;
    if (!group_arg(h, msg, "JoinGroup", true, name, &key)) return;
    if (!is_allowed(h, msg, "JoinGroup", "ringhub.joinLeaveGroup", key.name)) return;
    if (h->group_count >= hub_shard_self()->cfg->max_groups_per_conn) {
        hs->counts.refused_joins++;
        char error[160];
        snprintf(error, sizeof(error),
                 "An unexpected error occurred invoking 'JoinGroup' on the server. "
                 "HubException: a connection can be in at most %u groups.",
                 hs->cfg->max_groups_per_conn);
        complete_error(h, msg, error);
        return;
    }
    uint8_t note[1 + INVOCATION_ID_MAX];
    uint32_t id_len = msg->invocation_id.len;
    if (id_len > INVOCATION_ID_MAX) {
        complete_error(h, msg,
                       "An unexpected error occurred invoking 'JoinGroup' on the server. "
                       "HubException: invocation ids are at most 200 bytes.");
        return;
    }
    note[0] = NOTE_COMPLETE;
    memcpy(note + 1, msg->invocation_id.ptr, id_len);
    if (rh_groups_join(hs->groups, &key, h, hub_link_route(hs, h->link_slot), &h->groups,
                       rh_span_make(note, 1 + id_len)))
        h->group_count++;
}

/* LeaveGroup(group): in effect at once, since fan-out walks this shard's own index. */
static void invoke_leave_group(struct rh_hub_session *h, const struct rh_hub_msg *msg)
{
    struct hub_shard *hs = hub_shard_self();
    char name[RH_GROUP_NAME_MAX];
    struct rh_group_key key;
    if (!group_arg(h, msg, "LeaveGroup", true, name, &key)) return;
    if (!is_allowed(h, msg, "LeaveGroup", "ringhub.joinLeaveGroup", key.name)) return;
    if (rh_groups_leave(hs->groups, &key, &h->groups)) h->group_count--;
    complete(h, msg, RH_HUB_RESULT_VALUE, rh_span_make(NULL, 0));
}

/* SendToGroup(group, target, ...args), SendToOthersInGroup (@is_others: not to the caller)
 * and SendToUser(user, target, ...args) (@kind RH_GROUP_USER): through the owner of the group
 * to every member. Sending to a group nobody is in is not an error, as in ASP.NET. */
static void invoke_send_to_group(struct rh_hub_session *h, const struct rh_hub_msg *msg,
                                 enum rh_group_kind kind, bool is_others)
{
    struct hub_shard *hs = hub_shard_self();
    const char *method = kind == RH_GROUP_USER ? "SendToUser"
                         : is_others           ? "SendToOthersInGroup"
                                               : "SendToGroup";
    char name[RH_GROUP_NAME_MAX];
    uint8_t target[RH_HUB_NAME_MAX];
    struct rh_group_key key;
    ssize_t target_len = arg_string(h, msg, 1, target, sizeof(target));
    if (msg->arg_count < 2 || target_len <= 0) {
        char error[128];
        snprintf(error, sizeof(error), "Failed to invoke '%s' due to an error on the server.",
                 method);
        complete_error(h, msg, error);
        return;
    }
    if (!group_arg(h, msg, method, false, name, &key)) return;
    bool is_user = kind == RH_GROUP_USER;
    if (!is_allowed(h, msg, method, is_user ? "ringhub.sendToUser" : "ringhub.sendToGroup",
                    is_user ? rh_span_make(NULL, 0) : key.name))
        return;
    key.kind = kind;
    struct rh_span target_span = rh_span_make(target, (uint32_t)target_len);
    struct send_all m = send_all_of(h, msg, 2, target_span);
    m.stamp_ns = rh_clock_now_ns();
    uint32_t size = hub_send_all_size(&m);
    uint8_t *out;
    struct rh_blob *b = rh_groups_message_new(&key, size, &out);
    hub_send_all_pack(&m, out, size);
    rh_groups_send(hs->groups, b,
                   is_others ? hub_link_route(hs, h->link_slot) : RH_GROUPS_NO_EXCEPT);
    complete(h, msg, RH_HUB_RESULT_VALUE, rh_span_make(NULL, 0));
}

/* Whether @len more bytes fit in @h's send queue (--send-queue-max); when not, @policy decides:
 * drop the oldest waiting messages to make room, or close the session. With @tag (latest-value)
 * a session that is behind keeps only the newest message of that group waiting. False: do not
 * send. */
static bool has_room(struct rh_hub_session *h, uint32_t len, enum slow_policy policy, uint32_t tag)
{
    struct hub_shard *hs = hub_shard_self();
    uint32_t cap = hs->cfg->send_queue_max;
    if (h->transport == TRANSPORT_EVENTS) return true; /* its streams: their connections */
    struct lp_state *lp = h->transport == TRANSPORT_LP ? h->lp : NULL;
    uint32_t queued = lp ? lp->out_bytes : rh_conn_queued_bytes(h->conn);
    if (tag) {
        /* Behind by more than a quarter of the cap, and until it has caught up again (below a
         * sixteenth): the group's newest message is the only one of it that waits. */
        if (queued > cap / 4) h->is_behind = true;
        if (queued <= cap / 16) h->is_behind = false;
        if (h->is_behind) {
            uint32_t dropped = conflate(h, tag);
            hs->counts.dropped_bytes += dropped;
            queued -= dropped;
        }
    }
    if ((uint64_t)queued + len <= cap) return true;
    if (policy == SLOW_DROP_OLDEST || policy == SLOW_LATEST_VALUE) {
        uint32_t dropped = 0;
        if (lp) {
            uint32_t n = 0;
            while (n < lp->out_count && (uint64_t)queued - dropped + len > cap) {
                dropped += lp->out[n]->len;
                rh_buf_unref(lp->out[n++]);
            }
            memmove(lp->out, lp->out + n, (lp->out_count - n) * sizeof(*lp->out));
            lp->out_count -= n;
            lp->out_bytes -= dropped;
            hs->counts.dropped_frames += n;
        } else {
            dropped = rh_conn_drop_queued(h->conn, (uint32_t)((uint64_t)queued + len - cap));
        }
        hs->counts.dropped_bytes += dropped;
        return (uint64_t)queued - dropped + len <= cap;
    }
    slow_consumer_close(h);
    return false;
}

/* latest-value, for a session that is behind: every message of group @tag that still waits is
 * dropped (the newest then goes in behind what else waits). Returns the bytes dropped. */
static uint32_t conflate(struct rh_hub_session *h, uint32_t tag)
{
    if (h->transport == TRANSPORT_EVENTS) return 0;
    if (h->transport != TRANSPORT_LP) return rh_conn_drop_tagged(h->conn, tag);
    struct lp_state *lp = h->lp;
    uint32_t kept = 0, dropped = 0;
    for (uint32_t i = 0; i < lp->out_count; i++) {
        if (lp->out[i]->tag == tag) {
            dropped += lp->out[i]->len;
            rh_buf_unref(lp->out[i]);
            hub_shard_self()->counts.dropped_frames++;
        } else {
            lp->out[kept++] = lp->out[i];
        }
    }
    lp->out_count = kept;
    lp->out_bytes -= dropped;
    return dropped;
}

/* A session that does not keep up ends: a Close that allows reconnecting, which has
 * SLOW_CLOSE_GRACE_MS to get out before the connection is closed; meanwhile nothing more is
 * queued for it. Safe inside a fan-out: nothing is freed now. */
static void slow_consumer_close(struct rh_hub_session *h)
{
    struct hub_shard *hs = hub_shard_self();
    char error[200];
    snprintf(error, sizeof(error),
             "Connection closed with an error. The client did not keep up: %u bytes were "
             "waiting to be sent to it (--send-queue-max).",
             hs->cfg->send_queue_max);
    hs->counts.closed_slow++;
    if (h->transport == TRANSPORT_LP) { /* what waits for the poll goes; the Close takes it */
        for (uint32_t i = 0; i < h->lp->out_count; i++)
            rh_buf_unref(h->lp->out[i]);
        h->lp->out_count = h->lp->out_bytes = 0;
        hub_end_session(h, error, true);
        hub_session_finish(h);
        return;
    }
    rh_log_limited(RH_LOG_INFO, "hub", "connection %llx: %s",
                   (unsigned long long)hub_session_route(h), error);
    hub_end_session(h, error, true);
    h->is_slow = true;
    rh_timer_schedule(rh_shard_wheel(hs->shard), &h->tick, rh_clock_now_ms() + SLOW_CLOSE_GRACE_MS);
}

static enum slow_policy slow_policy_of(const struct hub_shard *hs, struct rh_span group)
{
    if (!hs->slow_rule_count) return (enum slow_policy)hs->slow_default;
    char name[RH_GROUP_NAME_MAX + 1];
    memcpy(name, group.ptr, group.len);
    name[group.len] = '\0';
    for (uint32_t i = 0; i < hs->slow_rule_count; i++)
        if (fnmatch(hs->slow_rules[i].pattern, name, 0) == 0)
            return (enum slow_policy)hs->slow_rules[i].policy;
    return (enum slow_policy)hs->slow_default;
}

/* --slow-consumer and --slow-consumer-groups (their syntax checked by core/cfg already). */
static void slow_rules_parse(struct hub_shard *hs)
{
    const char *policy = hs->cfg->slow_consumer;
    hs->slow_default = strcmp(policy, "drop-oldest") == 0    ? SLOW_DROP_OLDEST
                       : strcmp(policy, "latest-value") == 0 ? SLOW_LATEST_VALUE
                                                             : SLOW_DISCONNECT;
    const char *list = hs->cfg->slow_consumer_groups;
    if (!*list) return;
    hs->slow_rules = rh_calloc(SLOW_RULES_MAX, sizeof(*hs->slow_rules));
    for (const char *p = list; *p && hs->slow_rule_count < SLOW_RULES_MAX;) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        struct slow_rule *rule = &hs->slow_rules[hs->slow_rule_count++];
        size_t pattern_len = (size_t)(eq - p);
        if (pattern_len > RH_GROUP_NAME_MAX) pattern_len = RH_GROUP_NAME_MAX;
        memcpy(rule->pattern, p, pattern_len);
        rule->policy = strncmp(eq + 1, "drop-oldest", 11) == 0    ? SLOW_DROP_OLDEST
                       : strncmp(eq + 1, "latest-value", 12) == 0 ? SLOW_LATEST_VALUE
                                                                  : SLOW_DISCONNECT;
        p += len + (p[len] == ',');
    }
}

/* Whether @h may call @method: running open, or with @role among its token's roles, or (for a
 * method on @group) "<role>.<group>". Completes @msg with ASP.NET's authorization error when
 * it may not. */
static bool is_allowed(struct rh_hub_session *h, const struct rh_hub_msg *msg, const char *method,
                       const char *role, struct rh_span group)
{
    if (h->is_open) return true;
    size_t role_len = strlen(role);
    const char *at = h->user + h->user_len, *end = at + h->roles_len;
    while (at < end) {
        const char *line_end = memchr(at, '\n', (size_t)(end - at));
        size_t len = (size_t)((line_end ? line_end : end) - at);
        bool is_role = len == role_len && memcmp(at, role, role_len) == 0;
        bool is_scoped = group.len && len == role_len + 1 + group.len &&
                         memcmp(at, role, role_len) == 0 && at[role_len] == '.' &&
                         memcmp(at + role_len + 1, group.ptr, group.len) == 0;
        if (is_role || is_scoped) return true;
        at += len + 1;
    }
    char error[128];
    snprintf(error, sizeof(error), "Failed to invoke '%s' because user is unauthorized", method);
    complete_error(h, msg, error);
    return false;
}

/* The group named by @msg's first argument (@is_only_arg: its only one), in @name; completes
 * with @method's error and returns false when there is none. */
static bool group_arg(struct rh_hub_session *h, const struct rh_hub_msg *msg, const char *method,
                      bool is_only_arg, char name[RH_GROUP_NAME_MAX], struct rh_group_key *key)
{
    bool is_count_ok = is_only_arg ? msg->arg_count == 1 : msg->arg_count >= 1;
    ssize_t len = is_count_ok ? arg_string(h, msg, 0, name, RH_GROUP_NAME_MAX) : -EINVAL;
    if (len < 0) {
        char error[160];
        snprintf(error, sizeof(error),
                 len == -EMSGSIZE ? "An unexpected error occurred invoking '%s' on the server. "
                                    "HubException: names are at most 256 bytes."
                                  : "Failed to invoke '%s' due to an error on the server.",
                 method);
        complete_error(h, msg, error);
        return false;
    }
    *key = (struct rh_group_key){RH_GROUP_NAMED, hub_span(h), rh_span_make(name, (uint32_t)len)};
    return true;
}

static void groups_deliver(void *ctx, const struct rh_group_key *key, const struct rh_list *members,
                           struct rh_span msg, uint64_t except)
{
    struct hub_shard *hs = ctx;
    struct fanout f = {.policy =
                           (uint8_t)(key->kind == RH_GROUP_NAMED ? slow_policy_of(hs, key->name)
                                                                 : hs->slow_default)};
    if (f.policy == SLOW_LATEST_VALUE) /* one tag per group: what conflation matches on */
        f.tag = (uint32_t)(rh_hash(key->name.ptr, key->name.len) ^
                           rh_hash(key->hub.ptr, key->hub.len)) |
                1;
    if (!hub_send_all_unpack(msg, &f.m)) return;
    struct rh_list *node;
    rh_list_for_each(node, members) {
        struct rh_membership *m = rh_list_entry(node, struct rh_membership, in_group);
        if (m->route != except) fanout_to(&f, m->member);
    }
    fanout_end(&f);
}

static void groups_joined(void *ctx, uint64_t route, struct rh_span note)
{
    struct hub_shard *hs = ctx;
    uint32_t slot = rh_conn_id_slot(route);
    if (note.len == 1 + 8 && note.ptr[0] == NOTE_API) {
        uint64_t reply_to;
        memcpy(&reply_to, note.ptr + 1, 8);
        hub_answer_text(hs, reply_to, 200, "");
        return;
    }
    if (slot >= hs->link_count || !note.len) return;
    struct hub_link *l = &hs->links[slot];
    if (l->state != LINK_ATTACHED || l->gen != rh_conn_id_gen(route)) return; /* gone */
    struct rh_hub_session *h = l->session;
    if (h->is_ending) return;
    if (note.ptr[0] == NOTE_HANDSHAKE) {
        session_ready(h);
        if (h->pending_len) hub_feed(h, NULL, 0); /* what the client sent meanwhile */
        if (h->is_ending) hub_session_finish(h);  /* may free @h */
        return;
    }
    struct rh_hub_msg msg = {.invocation_id = rh_span_make(note.ptr + 1, note.len - 1)};
    complete(h, &msg, RH_HUB_RESULT_VALUE, rh_span_make(NULL, 0));
}

/* The handshake is done: the reply, in the protocol's own frame type already (as ASP.NET
 * does), and the session starts taking messages. */
static void session_ready(struct rh_hub_session *h)
{
    struct hub_shard *hs = hub_shard_self();
    h->state = SESSION_READY;
    rh_list_push_back(&hs->sessions, &h->link);
    h->counts = &hub_stats_of(hs, hub_span(h))->by[h->transport][h->codec];
    h->counts->sessions++;
    struct rh_buf *ok = rh_buf_new(8);
    rh_hub_handshake_write_ok(&ok);
    send_hub(h, ok);
    hub_tick_schedule(h);
}

static void fanout_to(struct fanout *f, struct rh_hub_session *h)
{
    static const uint8_t framing_of[] = {
        [TRANSPORT_WS] = FRAMING_WS,
        [TRANSPORT_SSE] = FRAMING_SSE,
        [TRANSPORT_LP] = FRAMING_RAW,
        [TRANSPORT_EVENTS] = FRAMING_EVENT,
    };
    if (h->is_ending || h->state != SESSION_READY) return;
    if (f->m.excluded_count && is_excluded(&f->m, hub_session_route(h))) return;
    struct rh_buf *frame = fanout_frame(f, h->codec, (enum framing)framing_of[h->transport]);
    if (!frame) return;
    if (!f->now_ms) f->now_ms = rh_clock_now_ms();
    if (!has_room(h, frame->len, (enum slow_policy)f->policy, f->tag)) return;
    h->last_tx_ms = f->now_ms;
    session_write(h, frame);
}

/* The message framed for @codec and @fr, made when first needed; NULL when its values do not
 * convert to @codec (or it cannot be a named event). */
static struct rh_buf *fanout_frame(struct fanout *f, enum rh_hub_codec codec, enum framing fr)
{
    if (f->frames[codec][fr] || f->is_unconvertible[codec][fr]) return f->frames[codec][fr];
    struct rh_buf *frame = NULL;
    if (fr == FRAMING_EVENT) {
        frame = invocation_event(&f->m);
    } else {
        struct rh_buf *raw = fr == FRAMING_RAW ? NULL : fanout_frame(f, codec, FRAMING_RAW);
        if (fr == FRAMING_RAW)
            frame = invocation_bytes(&f->m, codec);
        else if (raw && fr == FRAMING_WS)
            frame = rh_ws_frame_new(codec == RH_HUB_JSON ? RH_WS_OP_TEXT : RH_WS_OP_BINARY,
                                    raw->data, raw->len);
        else if (raw)
            frame = rh_sse_data_event_new(rh_span_make(raw->data, raw->len));
    }
    if (frame) {
        frame->tag = f->tag;
        frame->stamp_ns = f->m.stamp_ns;
    }
    f->frames[codec][fr] = frame;
    f->is_unconvertible[codec][fr] = !frame; /* logged where it was found, once */
    return frame;
}

static void fanout_end(struct fanout *f)
{
    for (int codec = 0; codec < 2; codec++)
        for (int fr = 0; fr < FRAMING_COUNT; fr++)
            if (f->frames[codec][fr]) rh_buf_unref(f->frames[codec][fr]);
}

/* A free hub connection slot, or LINK_NONE when the shard holds as many as ids can name. */
static uint32_t link_alloc(struct hub_shard *hs)
{
    if (hs->free_count) return hs->free_links[--hs->free_count];
    if (hs->link_count == hs->link_cap) {
        if (hs->link_cap == LINKS_MAX) {
            rh_log_limited(RH_LOG_WARN, "hub", "all %u hub connection slots of this shard in use",
                           LINKS_MAX);
            return LINK_NONE;
        }
        uint32_t cap = hs->link_cap ? hs->link_cap * 2 : 64;
        hs->links = rh_realloc(hs->links, cap * sizeof(*hs->links));
        hs->free_links = rh_realloc(hs->free_links, cap * sizeof(*hs->free_links));
        memset(hs->links + hs->link_cap, 0, (cap - hs->link_cap) * sizeof(*hs->links));
        hs->link_cap = cap;
    }
    return hs->link_count++;
}

static void link_free(struct hub_shard *hs, uint32_t slot)
{
    struct hub_link *l = &hs->links[slot];
    uint32_t gen = (l->gen + 1) & ((1u << RH_CONN_ID_GEN_BITS) - 1);
    memset(l, 0, sizeof(*l));
    l->gen = gen;
    hs->free_links[hs->free_count++] = slot;
}

uint64_t hub_link_route(const struct hub_shard *hs, uint32_t slot)
{
    uint64_t node = rh_runtime_node_id(rh_shard_runtime(hs->shard));
    return node << (RH_CONN_ID_GEN_BITS + RH_CONN_ID_SLOT_BITS + RH_CONN_ID_SHARD_BITS) |
           (uint64_t)rh_shard_idx(hs->shard) << (RH_CONN_ID_GEN_BITS + RH_CONN_ID_SLOT_BITS) |
           (uint64_t)slot << RH_CONN_ID_GEN_BITS | hs->links[slot].gen;
}

void hub_route_put(uint8_t out[ROUTE_BYTES], uint64_t route)
{
    for (int i = ROUTE_BYTES - 1; i >= 0; i--, route >>= 8)
        out[i] = (uint8_t)route;
}

uint64_t hub_route_get(const uint8_t in[ROUTE_BYTES])
{
    uint64_t route = 0;
    for (int i = 0; i < ROUTE_BYTES; i++)
        route = route << 8 | in[i];
    return route;
}

static void sweep_fired(struct rh_timer *t)
{
    struct hub_shard *hs = (struct hub_shard *)((char *)t - offsetof(struct hub_shard, sweep));
    int64_t now_ms = rh_clock_now_ms();
    for (uint32_t slot = 0; slot < hs->link_count && hs->negotiated_count; slot++) {
        struct hub_link *l = &hs->links[slot];
        if (l->state == LINK_NEGOTIATED && l->expires_ms <= now_ms) {
            link_free(hs, slot);
            hs->negotiated_count--;
        }
    }
    if (hs->negotiated_count) rh_timer_schedule(rh_shard_wheel(hs->shard), t, now_ms + SWEEP_MS);
}

/* The invocation a hub method of @h sends: its arguments from index @first_arg on are the
 * values (those before name the recipient and the target). */
static struct send_all send_all_of(const struct rh_hub_session *h, const struct rh_hub_msg *msg,
                                   uint32_t first_arg, struct rh_span target)
{
    struct send_all m = {.codec = h->codec, .hub = hub_span(h), .target = target};
    m.arg_count = msg->arg_count - first_arg;
    memcpy(m.args, msg->args + first_arg, m.arg_count * sizeof(m.args[0]));
    return m;
}

/* An invocation to send, as blobs carry it: u8 codec, u16 hub length, hub, u16 target length,
 * target, u8 argument count, then per argument a u32 length and its encoded bytes, then u8
 * excluded count and that many u64 routes, then the i64 stamp_ns. Host order: blobs never leave the
 * process. */
uint32_t hub_send_all_size(const struct send_all *m)
{
    uint32_t size = 1 + 2 + m->hub.len + 2 + m->target.len + 1 + 1 + 8 * m->excluded_count + 8;
    for (uint32_t i = 0; i < m->arg_count; i++)
        size += 4 + m->args[i].len;
    return size;
}

/* Writes the @size bytes (from send_all_size) at @out. */
void hub_send_all_pack(const struct send_all *m, uint8_t *out, uint32_t size)
{
    uint8_t *p = out;
    uint16_t len16;
    *p++ = (uint8_t)m->codec;
    len16 = (uint16_t)m->hub.len;
    memcpy(p, &len16, 2);
    memcpy(p + 2, m->hub.ptr, m->hub.len);
    p += 2 + m->hub.len;
    len16 = (uint16_t)m->target.len;
    memcpy(p, &len16, 2);
    memcpy(p + 2, m->target.ptr, m->target.len);
    p += 2 + m->target.len;
    *p++ = (uint8_t)m->arg_count;
    for (uint32_t i = 0; i < m->arg_count; i++) {
        memcpy(p, &m->args[i].len, 4);
        if (m->args[i].len) memcpy(p + 4, m->args[i].ptr, m->args[i].len);
        p += 4 + m->args[i].len;
    }
    *p++ = (uint8_t)m->excluded_count;
    if (m->excluded_count) memcpy(p, m->excluded, 8 * m->excluded_count);
    p += 8 * m->excluded_count;
    memcpy(p, &m->stamp_ns, 8);
    p += 8;
    RH_ASSERT(p == out + size);
}

static bool is_excluded(const struct send_all *m, uint64_t route)
{
    for (uint32_t i = 0; i < m->excluded_count; i++) {
        uint64_t excluded;
        memcpy(&excluded, m->excluded + 8 * i, 8);
        if (excluded == route) return true;
    }
    return false;
}

bool hub_send_all_unpack(struct rh_span in, struct send_all *out)
{
    const uint8_t *p = in.ptr, *end = in.ptr + in.len;
    uint16_t len16;
    /* Written by send_all_pack in this process: checked anyway, as every ring item is. */
    if (end - p < 3) return false;
    out->codec = (enum rh_hub_codec) * p++;
    memcpy(&len16, p, 2);
    if (end - p < 2 + len16 + 2) return false;
    out->hub = rh_span_make(p + 2, len16);
    p += 2 + len16;
    memcpy(&len16, p, 2);
    if (end - p < 2 + len16 + 1) return false;
    out->target = rh_span_make(p + 2, len16);
    p += 2 + len16;
    out->arg_count = *p++;
    if (out->arg_count > RH_HUB_ARGS_MAX) return false;
    for (uint32_t i = 0; i < out->arg_count; i++) {
        uint32_t len;
        if (end - p < 4) return false;
        memcpy(&len, p, 4);
        if ((size_t)(end - p) - 4 < len) return false;
        out->args[i] = rh_span_make(p + 4, len);
        p += 4 + len;
    }
    if (end - p < 1) return false;
    out->excluded_count = *p++;
    if ((size_t)(end - p) != 8 * out->excluded_count + 8) return false;
    out->excluded = p;
    memcpy(&out->stamp_ns, p + 8 * out->excluded_count, 8);
    return true;
}

/* The hub message Invocation(target, args) in @codec, or NULL when the values cannot be
 * transcoded to it. */
static struct rh_buf *invocation_bytes(const struct send_all *m, enum rh_hub_codec codec)
{
    struct rh_buf *converted = NULL;
    struct rh_span spans[RH_HUB_ARGS_MAX];
    const struct rh_span *args = m->args;
    if (codec != m->codec) {
        converted = rh_buf_new(256);
        if (rh_hub_transcode_values(m->codec, m->args, m->arg_count, codec, &converted, spans)) {
            rh_log_limited(RH_LOG_WARN, "hub",
                           "'%.*s': arguments do not convert between hub protocols; not sent to "
                           "%s clients",
                           (int)m->target.len, (const char *)m->target.ptr,
                           codec == RH_HUB_JSON ? "json" : "messagepack");
            rh_buf_unref(converted);
            return NULL;
        }
        args = spans;
    }
    struct rh_buf *hub_bytes = rh_buf_new(128);
    if (codec == RH_HUB_JSON)
        rh_hub_json_write_invocation(&hub_bytes, rh_span_make(NULL, 0), m->target, args,
                                     m->arg_count);
    else
        rh_hub_msgpack_write_invocation(&hub_bytes, rh_span_make(NULL, 0), m->target, args,
                                        m->arg_count);
    if (converted) rh_buf_unref(converted);
    return hub_bytes;
}

/* The EventSource event of Invocation(target, args): the target names it, and its data is the
 * JSON of the only argument, or the JSON array of all of them. NULL when the target cannot be
 * an event type or the values do not convert to JSON. */
static struct rh_buf *invocation_event(const struct send_all *m)
{
    if (!rh_sse_is_event_name(m->target)) {
        rh_log_limited(RH_LOG_WARN, "hub",
                       "a method name with a line end is not sent to "
                       "EventSource streams");
        return NULL;
    }
    struct rh_buf *converted = NULL;
    struct rh_span spans[RH_HUB_ARGS_MAX];
    const struct rh_span *args = m->args;
    if (m->codec != RH_HUB_JSON) {
        converted = rh_buf_new(256);
        if (rh_hub_transcode_values(m->codec, m->args, m->arg_count, RH_HUB_JSON, &converted,
                                    spans)) {
            rh_buf_unref(converted);
            return NULL;
        }
        args = spans;
    }
    struct rh_buf *data = rh_buf_new(64);
    if (m->arg_count == 1) {
        rh_buf_append(&data, args[0].ptr, args[0].len);
    } else {
        rh_buf_append(&data, "[", 1);
        for (uint32_t i = 0; i < m->arg_count; i++) {
            if (i) rh_buf_append(&data, ",", 1);
            rh_buf_append(&data, args[i].ptr, args[i].len);
        }
        rh_buf_append(&data, "]", 1);
    }
    struct rh_buf *event = rh_sse_named_event_new(m->target, rh_span_make(data->data, data->len));
    rh_buf_unref(data);
    if (converted) rh_buf_unref(converted);
    return event;
}

/* Completes @msg's invocation (if it asked for a completion) with @kind: a value (@payload
 * in this session's hub protocol; empty for null, how ASP.NET completes void methods) or an
 * error (@payload is its text). */
static void complete(struct rh_hub_session *h, const struct rh_hub_msg *msg,
                     enum rh_hub_result kind, struct rh_span payload)
{
    if (!msg->invocation_id.len) return; /* a send: no completion wanted */
    struct rh_buf *out = rh_buf_new(64 + payload.len);
    if (h->codec == RH_HUB_JSON)
        rh_hub_json_write_completion(&out, msg->invocation_id, kind, payload);
    else
        rh_hub_msgpack_write_completion(&out, msg->invocation_id, kind, payload);
    send_hub(h, out);
}

static void complete_error(struct rh_hub_session *h, const struct rh_hub_msg *msg,
                           const char *error)
{
    complete(h, msg, RH_HUB_RESULT_ERROR, rh_span_make(error, (uint32_t)strlen(error)));
}

/* Argument @idx of @msg decoded as a string into @out; as rh_hub_json_arg_string. */
static ssize_t arg_string(const struct rh_hub_session *h, const struct rh_hub_msg *msg,
                          uint32_t idx, void *out, size_t cap)
{
    return h->codec == RH_HUB_JSON ? rh_hub_json_arg_string(msg, idx, out, cap)
                                   : rh_hub_msgpack_arg_string(msg, idx, out, cap);
}

/* Queues @hub_bytes (whole hub messages) framed for the session's transport: one WebSocket
 * message, one SSE event, or the next poll's answer. Takes over the caller's reference. */
static void send_hub(struct rh_hub_session *h, struct rh_buf *hub_bytes)
{
    struct rh_buf *frame = NULL;
    if (h->transport == TRANSPORT_WS) {
        /* Text until a binary protocol is agreed: handshake replies are JSON either way, and
         * the success reply already goes in the agreed protocol's frame type, as ASP.NET
         * does. */
        bool text = h->state != SESSION_READY || h->codec == RH_HUB_JSON;
        frame = rh_ws_frame_new(text ? RH_WS_OP_TEXT : RH_WS_OP_BINARY, hub_bytes->data,
                                hub_bytes->len);
    } else if (h->transport == TRANSPORT_SSE) {
        frame = rh_sse_data_event_new(rh_span_make(hub_bytes->data, hub_bytes->len));
    } else if (h->transport == TRANSPORT_LP) {
        frame = rh_buf_ref(hub_bytes);
    }
    rh_buf_unref(hub_bytes);
    if (!frame) return; /* a feed answers nobody */
    /* Replies cannot be dropped: a client that does not read them is closed. A goodbye always
     * goes (the session is ending then). */
    if (!h->is_ending && !has_room(h, frame->len, SLOW_DISCONNECT, 0)) {
        rh_buf_unref(frame);
        return;
    }
    session_write(h, frame);
    rh_buf_unref(frame);
    h->last_tx_ms = rh_clock_now_ms();
}

/* Queues @frame (framed for the session's transport; a new reference is taken). */
static void session_write(struct rh_hub_session *h, struct rh_buf *frame)
{
    if (h->counts) {
        h->counts->messages_out++;
        h->counts->bytes_out += frame->len;
    }
    switch (h->transport) {
    case TRANSPORT_WS:
    case TRANSPORT_SSE:
        rh_conn_send(h->conn, frame);
        break;
    case TRANSPORT_LP:
        hub_lp_queue(h, rh_buf_ref(frame));
        break;
    case TRANSPORT_EVENTS:
        rh_events_publish(h->events, frame, rh_clock_now_ms());
        break;
    }
}

/* Queues a WebSocket close frame with @code (0: an empty one, the reply to a close that
 * carried no code). */
static void send_ws_close(struct rh_hub_session *h, uint16_t code)
{
    struct rh_buf *close = rh_ws_close_frame_new(code, NULL);
    rh_conn_send(h->conn, close);
    rh_buf_unref(close);
}

/* Queues a hub Close with @error and a WebSocket close, and marks the session as ending. */
void hub_end_with_error(struct rh_hub_session *h, const char *error)
{
    rh_log_limited(RH_LOG_INFO, "hub", "connection %llx: %s",
                   (unsigned long long)hub_session_route(h), error);
    hub_end_session(h, error, false);
}

/* Queues a hub Close with @error (@allow_reconnect: the server is going away, not the client
 * at fault) and, on a WebSocket, a close frame saying which, and marks the session as ending.
 * The caller then calls session_finish, once no parser of the session runs. */
void hub_end_session(struct rh_hub_session *h, const char *error, bool allow_reconnect)
{
    struct rh_span text = rh_span_make(error, (uint32_t)strlen(error));
    struct rh_buf *out = rh_buf_new(64 + text.len);
    if (h->codec == RH_HUB_JSON || h->state != SESSION_READY)
        rh_hub_json_write_close(&out, text, allow_reconnect);
    else
        rh_hub_msgpack_write_close(&out, text, allow_reconnect);
    /* Ending first: the goodbye goes even past a full send queue (send_hub's cap check would
     * otherwise end the session again, and again). */
    h->is_ending = true;
    send_hub(h, out);
    if (h->transport == TRANSPORT_WS)
        send_ws_close(h, allow_reconnect ? RH_WS_CLOSE_GOING_AWAY : RH_WS_CLOSE_NORMAL);
}

/* An ending session goes: with a stream, its connection closes once what it queued is sent
 * (which frees @h through the front); long polling hands what is left to the next poll, whose
 * successor gets 204 and frees it. */
void hub_session_finish(struct rh_hub_session *h)
{
    if (h->conn) {
        rh_conn_close(h->conn, RH_CLOSE_AFTER_FLUSH);
        return;
    }
    if (h->transport == TRANSPORT_LP) {
        h->lp->is_answer_due = true;
        hub_tick_schedule(h);
    }
}

void hub_tick_schedule(struct rh_hub_session *h)
{
    struct hub_shard *hs = hub_shard_self();
    int64_t at;
    if (h->transport == TRANSPORT_LP) {
        /* No pings: polling is the keep-alive. A held poll ends after --poll-timeout-ms, and a
         * session without one after --disconnect-timeout-ms. */
        struct lp_state *lp = h->lp;
        at = lp->since_ms +
             (lp->has_waiter ? hs->cfg->poll_timeout_ms : hs->cfg->disconnect_timeout_ms);
        if (h->state != SESSION_READY &&
            lp->started_ms + hub_shard_self()->cfg->handshake_timeout_ms < at)
            at = lp->started_ms + hub_shard_self()->cfg->handshake_timeout_ms;
        if (lp->is_answer_due) at = rh_clock_now_ms();
    } else if (h->transport == TRANSPORT_EVENTS) {
        bool is_watched = rh_events_has_streams(h->events);
        at = rh_events_last_activity_ms(h->events) +
             (is_watched ? hs->cfg->events_heartbeat_ms : hs->cfg->events_retention_ms);
    } else if (h->state != SESSION_READY) {
        return; /* the handshake timeout is set */
    } else {
        at = h->last_tx_ms + KEEPALIVE_MS;
        if (h->last_rx_ms + CLIENT_TIMEOUT_MS < at) at = h->last_rx_ms + CLIENT_TIMEOUT_MS;
    }
    rh_timer_schedule(rh_shard_wheel(hs->shard), &h->tick, at);
}

static void tick_fired(struct rh_timer *t)
{
    struct rh_hub_session *h =
        (struct rh_hub_session *)((char *)t - offsetof(struct rh_hub_session, tick));
    if (h->transport == TRANSPORT_LP) {
        hub_lp_tick(h);
        return;
    }
    if (h->transport == TRANSPORT_EVENTS) {
        feed_tick(h);
        return;
    }
    if (h->is_slow) {
        /* Its Close had SLOW_CLOSE_GRACE_MS to get out; what is still queued is dropped. */
        rh_conn_close(h->conn, rh_conn_queued_bytes(h->conn) ? RH_CLOSE_NOW : RH_CLOSE_AFTER_FLUSH);
        return;
    }
    int64_t now_ms = rh_clock_now_ms();
    if (h->state != SESSION_READY) {
        char error[64];
        rh_hub_handshake_error_text(RH_HUB_HANDSHAKE_CANCELED, NULL, error, sizeof(error));
        hub_shard_self()->counts.closed_handshake++;
        hub_end_with_error(h, error);
        hub_session_finish(h); /* outside the parser: close now */
        return;
    }
    if (now_ms - h->last_rx_ms >= CLIENT_TIMEOUT_MS) {
        hub_shard_self()->counts.closed_timeout++;
        hub_end_with_error(h, "Connection closed with an error. Server timeout elapsed without "
                              "receiving a message from the client.");
        hub_session_finish(h);
        return;
    }
    if (now_ms - h->last_tx_ms >= KEEPALIVE_MS) {
        struct rh_buf *ping = rh_buf_new(16);
        if (h->codec == RH_HUB_JSON)
            rh_hub_json_write_ping(&ping);
        else
            rh_hub_msgpack_write_ping(&ping);
        send_hub(h, ping);
    }
    hub_tick_schedule(h);
}

static uint32_t message_bytes_max(void)
{
    return hub_shard_self()->message_bytes_max;
}

struct hub_shard *hub_shard_self(void)
{
    return rh_shard_app(rh_shard_self());
}

uint64_t hub_session_route(const struct rh_hub_session *h)
{
    return hub_link_route(hub_shard_self(), h->link_slot);
}

/* The hub connection @token names (a connectionToken, or a v0 connectionId), in *@slot; NULL
 * when it names none of this shard's, or its secret does not match. */
struct hub_link *hub_link_find(struct hub_shard *hs, struct rh_span token, uint32_t *slot)
{
    /* The secret must match: the token is the only proof of having negotiated. A v0
     * connection uses its public id as the token, as ASP.NET does. */
    uint8_t raw[ROUTE_BYTES + SECRET_BYTES];
    ssize_t n = rh_b64url_decode((const char *)token.ptr, token.len, raw, sizeof(raw));
    if (n != ROUTE_BYTES + SECRET_BYTES && n != ROUTE_BYTES + PUBLIC_BYTES) return NULL;
    uint64_t route = hub_route_get(raw);
    *slot = rh_conn_id_slot(route);
    if (rh_conn_id_shard(route) != rh_shard_idx(hs->shard) || *slot >= hs->link_count) return NULL;
    struct hub_link *l = &hs->links[*slot];
    bool is_v0 = n == ROUTE_BYTES + PUBLIC_BYTES;
    const uint8_t *expected = is_v0 ? l->public_tail : l->secret;
    if (l->state == LINK_FREE || l->gen != rh_conn_id_gen(route) || is_v0 != (l->version == 0) ||
        CRYPTO_memcmp(raw + ROUTE_BYTES, expected, (size_t)n - ROUTE_BYTES) != 0)
        return NULL;
    /* A feed has no token: it was never negotiated. */
    if (l->state == LINK_ATTACHED && l->session->transport == TRANSPORT_EVENTS) return NULL;
    return l;
}

/* A feed's tick: a heartbeat on its streams, or its end when it has had none for
 * --events-retention-ms. */
static void feed_tick(struct rh_hub_session *h)
{
    struct hub_shard *hs = hub_shard_self();
    int64_t now_ms = rh_clock_now_ms();
    int64_t since_ms = now_ms - rh_events_last_activity_ms(h->events);
    if (!rh_events_has_streams(h->events)) {
        if (since_ms >= hs->cfg->events_retention_ms) {
            rh_hub_session_free(h);
            return;
        }
    } else if (since_ms >= hs->cfg->events_heartbeat_ms) {
        rh_events_heartbeat(h->events, now_ms);
    }
    hub_tick_schedule(h);
}

/* The route and random tail of connectionId @id when it names a connection of this node. */
bool hub_connection_route(const struct rh_shard *s, const char *id, uint32_t len, uint64_t *route,
                          uint8_t tail[PUBLIC_BYTES])
{
    uint8_t raw[ROUTE_BYTES + PUBLIC_BYTES];
    if (len != ID_TEXT_LEN || rh_hub_id_shard(s, id, len) < 0 ||
        rh_b64url_decode(id, len, raw, sizeof(raw)) != sizeof(raw))
        return false;
    *route = hub_route_get(raw);
    memcpy(tail, raw + ROUTE_BYTES, PUBLIC_BYTES);
    return true;
}

/* The session of this shard whose connectionId is @route with @tail, or NULL: the tail makes
 * an id that was never given out (all zeros, say) name nobody. */
struct rh_hub_session *hub_session_by_id(struct hub_shard *hs, uint64_t route,
                                         const uint8_t tail[PUBLIC_BYTES])
{
    uint32_t slot = rh_conn_id_slot(route);
    if (slot >= hs->link_count) return NULL;
    struct hub_link *l = &hs->links[slot];
    if (l->state != LINK_ATTACHED || l->gen != rh_conn_id_gen(route) ||
        CRYPTO_memcmp(l->public_tail, tail, PUBLIC_BYTES) != 0)
        return NULL;
    /* A feed has no connectionId to give out (its tail is zeros): nobody addresses it. */
    return l->session->transport == TRANSPORT_EVENTS ? NULL : l->session;
}

uint64_t hub_feed_hash(struct rh_span hub, struct rh_span user)
{
    return rh_hash(hub.ptr, hub.len) * 31 + rh_hash(user.ptr, user.len);
}

/* @key: the hub and user spans. */
static bool feed_eq(const void *item, const void *key)
{
    const struct rh_hub_session *h = item;
    const struct rh_span *spans = key;
    return h->hub->len == spans[0].len && memcmp(h->hub->text, spans[0].ptr, spans[0].len) == 0 &&
           h->user_len == spans[1].len && memcmp(h->user, spans[1].ptr, spans[1].len) == 0;
}

static bool hub_name_eq(const void *item, const void *key)
{
    const struct hub_name *name = item;
    const struct rh_span *span = key;
    return name->len == span->len && memcmp(name->text, span->ptr, span->len) == 0;
}

/* The shard's entry for hub @name, or NULL when no session here serves it. */
struct hub_name *hub_name_find(struct hub_shard *hs, struct rh_span name)
{
    return rh_table_find(&hs->hub_names, rh_hash(name.ptr, name.len), hub_name_eq, &name);
}

/* The shard's entry for hub @name, made if need be, with one more reference. */
static struct hub_name *hub_name_get(struct hub_shard *hs, struct rh_span name)
{
    struct hub_name *entry = hub_name_find(hs, name);
    if (!entry) {
        entry = rh_alloc(sizeof(*entry) + name.len);
        entry->hash = rh_hash(name.ptr, name.len);
        entry->refs = 0;
        entry->len = name.len;
        memcpy(entry->text, name.ptr, name.len);
        rh_table_insert(&hs->hub_names, entry->hash, entry);
    }
    entry->refs++;
    return entry;
}

static void hub_name_put(struct hub_shard *hs, struct hub_name *name)
{
    if (--name->refs) return;
    rh_table_remove(&hs->hub_names, name->hash, name);
    rh_free(name);
}

struct rh_span hub_span(const struct rh_hub_session *h)
{
    return rh_span_make(h->hub->text, h->hub->len);
}
