/*
 * shards/front.c - the HTTP front: per-connection request loop, routing and error replies.
 *
 * A connection's state is small and allocated at accept: where it is in the request stream
 * (reading a request head, reading or skipping a body, waiting for the answer to a transport
 * request) and its idle timer. Requests are answered in order; a body nobody reads is skipped
 * so the next pipelined request is found. A request the parser refuses gets its status and a
 * reason, then the connection closes once the reply is sent: after a framing error nothing
 * later on the connection can be trusted.
 *
 * A transport request (a long poll, a POST of hub bytes, a DELETE) keeps what it needs in a
 * struct waiting, since its head's bytes are gone by the time its body is read or its answer
 * comes (a poll waits up to --poll-timeout-ms). Its answer may come from another shard.
 */
#include "shards/front.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/timer.h"
#include "shards/admin.h"
#include "shards/backplane.h"
#include "shards/events.h"
#include "shards/hub.h"
#include "transports/http/http.h"
#include "transports/jwt.h"
#include "transports/ws.h"

#define IDLE_TIMEOUT_MS 60000 /* an HTTP connection with no request in progress */
#define ANSWER_GRACE_MS 30000 /* beyond the poll timeout: a transport request's answer is lost */
#define BODY_SKIP_CHUNK 4096
#define ORIGIN_MAX      256     /* bytes of an Origin a reply echoes */
#define PREFLIGHT_AGE   "86400" /* seconds a browser may cache a CORS preflight answer */
#define TOKEN_MAX       64      /* bytes of an id= value: tokens are 32 */
#define EVENTS_PREFIX   "/api/events/"

enum front_state {
    FRONT_HEAD,         /* waiting for (more of) a request head */
    FRONT_SKIP_LENGTH,  /* discarding body_left more bytes */
    FRONT_SKIP_CHUNKED, /* discarding a chunked body */
    FRONT_BODY_LENGTH,  /* reading body_left more bytes of a transport request's body */
    FRONT_BODY_CHUNKED, /* reading a transport request's chunked body */
    FRONT_WAITING,      /* a transport request waits for its answer */
    FRONT_HUB,          /* a hub session's stream (WebSocket, SSE) owns the connection */
    FRONT_EVENTS,       /* an EventSource stream */
    FRONT_DASHBOARD,    /* the dashboard's stream of numbers */
};

/* A transport request from its head to its answer. */
struct waiting {
    struct rh_hub_request req; /* spans into the fields below */
    bool keep_alive;
    char hub[RH_HUB_NAME_MAX];
    char token[TOKEN_MAX];
    char user[RH_GROUP_NAME_MAX];
    char roles[RH_HUB_ROLES_MAX];
    char origin[ORIGIN_MAX];
    uint32_t origin_len;
    struct rh_buf *body;     /* POST */
    struct api_request *api; /* a backend API request, not a transport one */
    bool is_metrics;         /* GET /metrics: gathered from every shard */
};

/* What a backend API request keeps from its head until it is sent (after its body). */
struct api_request {
    struct rh_rest_route route;
    char excluded[RH_REST_EXCLUDED_MAX][RH_REST_ID_MAX + 1];
    uint32_t excluded_lens[RH_REST_EXCLUDED_MAX];
    uint32_t excluded_count;
    char reason[256];
    size_t reason_len;
};

struct front_conn {
    struct rh_conn *conn;
    enum front_state state;
    uint64_t body_left;
    struct rh_http_chunked chunked;
    struct rh_timer idle;
    struct rh_hub_session *hub;   /* FRONT_HUB */
    struct rh_hub_stream *events; /* FRONT_EVENTS */
    struct waiting *waiting;      /* FRONT_BODY_*, FRONT_WAITING */
    /* The Origin of the request being answered: replies echo it (CORS). */
    struct rh_span origin;
};

static void conn_open(struct rh_conn *c);
static ssize_t conn_recv(struct rh_conn *c, const uint8_t *data, size_t len);
static void conn_adopt(struct rh_conn *c, const uint8_t *data, size_t len);
static bool is_for_another_shard(struct front_conn *f, const struct rh_http_request *req);
static void route_events(struct front_conn *f, const struct rh_http_request *req);
static bool is_events_path(struct rh_span path);
static int events_target(struct front_conn *f, const struct rh_http_request *req,
                         char user[RH_GROUP_NAME_MAX + 1], struct rh_span *user_span,
                         char hub[RH_HUB_NAME_MAX + 1], struct rh_span *hub_span);
static void route_transport(struct front_conn *f, const struct rh_http_request *req,
                            struct rh_span hub, enum rh_hub_op op);
static void start_stream(struct front_conn *f, const struct rh_http_request *req,
                         struct rh_span hub);
static bool query_user(struct front_conn *f, const struct rh_http_request *req, char *user,
                       size_t *user_len);
static bool authorize(struct front_conn *f, const struct rh_http_request *req, const char *resource,
                      struct rh_jwt *jwt);
static bool authorize_hub(struct front_conn *f, const struct rh_http_request *req,
                          struct rh_span hub, struct rh_jwt *jwt);
static void route_api(struct front_conn *f, const struct rh_http_request *req);
static void send_api(struct front_conn *f);
static void start_waiting(struct front_conn *f, struct waiting *w,
                          const struct rh_http_request *req, bool wants_body);
static bool is_send_op(enum rh_rest_op op);
static void reply_api_error(struct front_conn *f, int status, const char *message);
static bool is_api_request_line(const uint8_t *data, size_t len);
static void reply_framing_error(struct front_conn *f, int status, const char *reason, bool is_api);
static bool identify(struct front_conn *f, const struct rh_http_request *req, struct rh_span hub,
                     char user[RH_GROUP_NAME_MAX], char roles[RH_HUB_ROLES_MAX],
                     struct rh_hub_identity *who);
static int query_id(const struct rh_http_request *req, char id[TOKEN_MAX], size_t *id_len);
static bool is_event_stream_request(const struct rh_http_request *req);
static void stream_head(struct front_conn *f, const char *first_bytes);
static ssize_t read_body(struct front_conn *f, const uint8_t *data, size_t len);
static void send_request(struct front_conn *f);
static void waiting_free(struct front_conn *f);
static void negotiate(struct front_conn *f, const struct rh_http_request *req, struct rh_span hub);
static void conn_close(struct rh_conn *c);
static ssize_t handle_head(struct front_conn *f, const uint8_t *data, size_t len);
static ssize_t skip_body(struct front_conn *f, const uint8_t *data, size_t len);
static void route(struct front_conn *f, const struct rh_http_request *req);
static void route_hub(struct front_conn *f, const struct rh_http_request *req, struct rh_span rest);
static bool hub_is_served(const struct rh_cfg *cfg, struct rh_span hub);
static struct rh_span hub_path_rest(const struct rh_cfg *cfg, struct rh_span path);
static void preflight(struct front_conn *f, const struct rh_http_request *req);
static void reply(struct front_conn *f, int status, const char *content_type, const char *body,
                  const struct rh_http_field *extra, uint32_t extra_count);
static void reply_bytes(struct front_conn *f, int status, const char *content_type,
                        const void *body, size_t body_len, const struct rh_http_field *extra,
                        uint32_t extra_count);
static uint32_t cors_fields(const struct front_conn *f, struct rh_http_field *fields,
                            char origin[ORIGIN_MAX + 1]);
static struct rh_span request_origin(const struct rh_http_request *req);
static void reply_error(struct front_conn *f, int status, const char *reason);
static void idle_expired(struct rh_timer *t);
static void idle_restart(struct front_conn *f);

static void shard_start(struct rh_shard *s);
static void shard_stop(struct rh_shard *s);
static void shard_draining(struct rh_shard *s);
static void blob(struct rh_shard *s, struct rh_blob *b);
static bool route_operator(struct front_conn *f, const struct rh_http_request *req);
static void route_dashboard(struct front_conn *f, const struct rh_http_request *req,
                            bool is_stream);

/* The dashboard page (transports/dashboard.html, embedded by the build). */
extern const unsigned char rh_dashboard_html[];
extern const unsigned int rh_dashboard_html_len;

static const struct rh_conn_handler front_handler = {
    .shard_start = shard_start,
    .shard_stop = shard_stop,
    .shard_draining = shard_draining,
    .prepare = rh_backplane_prepare,
    .finish = rh_backplane_finish,
    .blob = blob,
    .conn_open = conn_open,
    .conn_adopt = conn_adopt,
    .conn_recv = conn_recv,
    .conn_close = conn_close,
};

const struct rh_conn_handler *rh_front_handler(void)
{
    return &front_handler;
}

static void shard_start(struct rh_shard *s)
{
    rh_hub_shard_start(s);
    rh_admin_shard_start(s);
    rh_backplane_shard_start(s);
}

static void shard_draining(struct rh_shard *s)
{
    rh_backplane_shard_draining(s);
    rh_hub_shard_draining(s);
}

static void shard_stop(struct rh_shard *s)
{
    rh_backplane_shard_stop(s);
    rh_admin_shard_stop(s);
    rh_hub_shard_stop(s);
}

static void blob(struct rh_shard *s, struct rh_blob *b)
{
    if (!rh_admin_blob(s, b)) rh_hub_blob(s, b);
}

static void conn_open(struct rh_conn *c)
{
    if (rh_conn_listener(c) == RH_LISTENER_OUTBOUND) {
        rh_backplane_conn_open(c);
        return;
    }
    if (rh_conn_listener(c) == RH_LISTENER_ADMIN) {
        rh_admin_open(c);
        return;
    }
    struct front_conn *f = rh_calloc(1, sizeof(*f));
    f->conn = c;
    f->state = FRONT_HEAD;
    rh_timer_init(&f->idle, idle_expired);
    rh_conn_set_app(c, f);
    idle_restart(f);
}

static void conn_close(struct rh_conn *c)
{
    if (rh_conn_listener(c) == RH_LISTENER_OUTBOUND) {
        rh_backplane_conn_close(c);
        return;
    }
    if (rh_conn_listener(c) == RH_LISTENER_ADMIN) {
        rh_admin_close(c);
        return;
    }
    struct front_conn *f = rh_conn_app(c);
    rh_timer_cancel(&f->idle);
    if (f->state == FRONT_DASHBOARD) rh_admin_dashboard_detach(c);
    if (f->hub) rh_hub_session_free(f->hub);
    if (f->events) rh_hub_stream_free(f->events);
    waiting_free(f);
    rh_conn_set_app(c, NULL);
    rh_free(f);
}

static ssize_t conn_recv(struct rh_conn *c, const uint8_t *data, size_t len)
{
    if (rh_conn_listener(c) == RH_LISTENER_ADMIN) return rh_admin_recv(c, data, len);
    if (rh_conn_listener(c) == RH_LISTENER_OUTBOUND) return rh_backplane_conn_recv(c, data, len);
    size_t used = 0;
    while (used < len) {
        /* Closing frees the state (conn_close), so look it up again after every step. */
        struct front_conn *f = rh_conn_app(c);
        /* Closing, or moving to another shard: the rest is not ours to read. The runtime drops
         * it on close and carries it along on a move. */
        if (!f || !rh_conn_is_open(c)) return (ssize_t)used;
        ssize_t n;
        if (f->state == FRONT_HUB)
            n = rh_hub_session_recv(f->hub, data + used, len - used);
        else if (f->state == FRONT_HEAD)
            n = handle_head(f, data + used, len - used);
        else if (f->state == FRONT_BODY_LENGTH || f->state == FRONT_BODY_CHUNKED)
            n = read_body(f, data + used, len - used);
        else if (f->state == FRONT_WAITING)
            n = -EAGAIN; /* a pipelined request waits for this one's answer */
        else if (f->state == FRONT_EVENTS || f->state == FRONT_DASHBOARD)
            n = (ssize_t)(len - used); /* the client has nothing to say on a stream */
        else
            n = skip_body(f, data + used, len - used);
        if (n == -EAGAIN) break;
        if (n < 0) return (ssize_t)used;
        used += (size_t)n;
    }
    return (ssize_t)used;
}

/* A connection moved here because its request names a hub connection of this shard: start it
 * as new; the runtime then hands it the request again. */
static void conn_adopt(struct rh_conn *c, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    conn_open(c);
}

static ssize_t handle_head(struct front_conn *f, const uint8_t *data, size_t len)
{
    struct rh_http_limits lim;
    struct rh_http_request req;
    const char *reason = NULL;
    rh_http_limits_defaults(&lim);
    lim.header_block_bytes_max =
        rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn)))->max_header_size;

    ssize_t n = rh_http_parse_request(data, len, &lim, &req, &reason);
    if (n == -EAGAIN) return n;
    if (n < 0) {
        rh_log_limited(RH_LOG_INFO, "http", "connection %llx: bad request: %s",
                       (unsigned long long)rh_conn_id(f->conn), reason ? reason : "?");
        reply_framing_error(f, rh_http_error_status(n), reason, is_api_request_line(data, len));
        return n;
    }

    if (is_for_another_shard(f, &req)) return -EAGAIN; /* the head travels with the socket */
    idle_restart(f);
    if (req.chunked) {
        f->state = FRONT_SKIP_CHUNKED;
        rh_http_chunked_init(&f->chunked, &lim);
    } else if (req.content_length) {
        f->state = FRONT_SKIP_LENGTH;
        f->body_left = req.content_length;
    }
    /* Last: a route or Connection: close may end the connection and free @f. */
    struct rh_conn *c = f->conn;
    f->origin = request_origin(&req);
    route(f, &req);
    if (rh_conn_app(c) != f) return n;
    f->origin = rh_span_make(NULL, 0);
    /* A transport request closes, if it must, once answered; a stream, when it ends. */
    bool is_busy = f->waiting || f->state == FRONT_HUB || f->state == FRONT_EVENTS;
    if (!req.keep_alive && !is_busy) rh_conn_close(c, RH_CLOSE_AFTER_FLUSH);
    return n;
}

static ssize_t skip_body(struct front_conn *f, const uint8_t *data, size_t len)
{
    if (f->state == FRONT_SKIP_LENGTH) {
        size_t take = len < f->body_left ? len : (size_t)f->body_left;
        f->body_left -= take;
        if (!f->body_left) f->state = FRONT_HEAD;
        return (ssize_t)take;
    }
    uint8_t sink[BODY_SKIP_CHUNK];
    size_t out_len = 0;
    const char *reason = NULL;
    ssize_t n =
        rh_http_chunked_decode(&f->chunked, data, len, sink, sizeof(sink), &out_len, &reason);
    if (n < 0) {
        reply_error(f, rh_http_error_status(n), reason);
        return n;
    }
    if (f->chunked.done) f->state = FRONT_HEAD;
    /* Consumed nothing only when the sink filled at once; the loop calls again. */
    return n ? n : (out_len ? 0 : -EAGAIN);
}

static void route(struct front_conn *f, const struct rh_http_request *req)
{
    bool is_healthz = rh_span_eq_str(req->path, "/healthz");
    if (is_healthz || rh_span_eq_str(req->path, "/readyz")) {
        if (req->method != RH_HTTP_GET && req->method != RH_HTTP_HEAD) {
            static const struct rh_http_field allow[] = {{"Allow", "GET, HEAD"}};
            reply(f, 405, "text/plain; charset=utf-8", "method not allowed\n", allow, 1);
            return;
        }
        /* Ready: not stopping. A load balancer stops sending clients once this says 503. */
        bool is_ready =
            is_healthz || !rh_runtime_is_stopping(rh_shard_runtime(rh_conn_shard(f->conn)));
        const char *body = is_healthz ? "ok\n" : is_ready ? "ready\n" : "draining\n";
        reply(f, is_ready ? 200 : 503, "text/plain; charset=utf-8",
              req->method == RH_HTTP_HEAD ? NULL : body, NULL, 0);
        return;
    }
    if (route_operator(f, req)) return;
    if (rh_conn_listener(f->conn) == RH_LISTENER_OPERATOR) {
        reply(f, 404, "text/plain; charset=utf-8", "not found\n", NULL, 0);
        return;
    }
    struct rh_span rest =
        hub_path_rest(rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn))), req->path);
    if (rest.ptr) {
        route_hub(f, req, rest);
        return;
    }
    if (rh_rest_is_api_path(req->path)) {
        route_api(f, req);
        return;
    }
    if (is_events_path(req->path)) {
        route_events(f, req);
        return;
    }
    reply(f, 404, "text/plain; charset=utf-8", "not found\n", NULL, 0);
}

/* What follows the hub prefix in @path ("chat/negotiate" in "/hubs/chat/negotiate"), or a
 * NULL span when @path is not under it. */
static struct rh_span hub_path_rest(const struct rh_cfg *cfg, struct rh_span path)
{
    size_t prefix_len = strlen(cfg->hub_prefix);
    if (path.len <= prefix_len || memcmp(path.ptr, cfg->hub_prefix, prefix_len) != 0)
        return rh_span_make(NULL, 0);
    return rh_span_make(path.ptr + prefix_len, path.len - (uint32_t)prefix_len);
}

/* --hubs: an empty list serves every name. */
static bool hub_is_served(const struct rh_cfg *cfg, struct rh_span hub)
{
    if (!*cfg->hubs) return true;
    for (const char *p = cfg->hubs; *p;) {
        size_t len = strcspn(p, ",");
        if (len == hub.len && memcmp(p, hub.ptr, len) == 0) return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* {prefix}{hub} and {prefix}{hub}/negotiate, for a hub --hubs allows: CORS preflights,
 * negotiate, the GETs that start a hub session's stream (WebSocket upgrade, Server-Sent
 * Events), and the long poll, POST and DELETE requests of a hub connection. */
static void route_hub(struct front_conn *f, const struct rh_http_request *req, struct rh_span rest)
{
    static const char negotiate_suffix[] = "/negotiate";
    size_t suffix_len = sizeof(negotiate_suffix) - 1;
    bool is_negotiate = rest.len > suffix_len &&
                        memcmp(rest.ptr + rest.len - suffix_len, negotiate_suffix, suffix_len) == 0;
    if (is_negotiate) rest.len -= (uint32_t)suffix_len;
    if (rest.len > RH_HUB_NAME_MAX || memchr(rest.ptr, '/', rest.len) ||
        !hub_is_served(rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn))), rest)) {
        reply(f, 404, "text/plain; charset=utf-8", "not found\n", NULL, 0);
        return;
    }
    if (req->method == RH_HTTP_OPTIONS) {
        preflight(f, req);
        return;
    }
    if (is_negotiate) {
        negotiate(f, req, rest);
        return;
    }
    switch (req->method) {
    case RH_HTTP_GET:
        if (req->upgrade_websocket || is_event_stream_request(req))
            start_stream(f, req, rest);
        else
            route_transport(f, req, rest, RH_HUB_OP_POLL);
        return;
    case RH_HTTP_POST:
        route_transport(f, req, rest, RH_HUB_OP_POST);
        return;
    case RH_HTTP_DELETE:
        route_transport(f, req, rest, RH_HUB_OP_DELETE);
        return;
    default: {
        static const struct rh_http_field allow[] = {{"Allow", "GET, POST, DELETE"}};
        reply(f, 405, "text/plain; charset=utf-8", "method not allowed\n", allow, 1);
        return;
    }
    }
}

/* A GET that starts a hub session's stream on this connection: a WebSocket upgrade, or a
 * Server-Sent Events stream (which needs a negotiated id=). */
static void start_stream(struct front_conn *f, const struct rh_http_request *req,
                         struct rh_span hub)
{
    /* Authorized first: a WebSocket that is not is never upgraded. */
    char user[RH_GROUP_NAME_MAX], roles[RH_HUB_ROLES_MAX];
    struct rh_hub_identity who;
    if (!identify(f, req, hub, user, roles, &who)) return;
    bool is_ws = req->upgrade_websocket;
    const struct rh_span *key = rh_http_header(req, "Sec-WebSocket-Key");
    const struct rh_span *version = rh_http_header(req, "Sec-WebSocket-Version");
    char response[256];
    int n = 0;
    if (is_ws) {
        if (!key) {
            reply(f, 400, "text/plain; charset=utf-8", "Sec-WebSocket-Key is missing\n", NULL, 0);
            return;
        }
        if (!version || !rh_span_eq_str(*version, "13")) {
            static const struct rh_http_field v13[] = {{"Sec-WebSocket-Version", "13"}};
            reply(f, 426, "text/plain; charset=utf-8", "WebSocket version 13 is required\n", v13,
                  1);
            return;
        }
        n = rh_ws_write_handshake(response, sizeof(response), (const char *)key->ptr, key->len);
        if (n < 0) {
            reply(f, 400, "text/plain; charset=utf-8", "bad Sec-WebSocket-Key\n", NULL, 0);
            return;
        }
    }
    char id[TOKEN_MAX];
    size_t id_len = 0;
    int id_status = query_id(req, id, &id_len);
    bool has_id = id_status == 0;
    if (id_status == 404 || (!is_ws && !has_id)) {
        reply(f, id_status, "text/plain",
              id_status == 404 ? "No Connection with that ID" : "Connection ID required", NULL, 0);
        return;
    }
    int status =
        rh_hub_session_start(f->conn, is_ws ? RH_HUB_WEBSOCKETS : RH_HUB_SERVER_SENT_EVENTS, hub,
                             rh_span_make(id, has_id ? (uint32_t)id_len : 0), &who, &f->hub);
    if (status) {
        static const char *const texts[] = {
            [0] = "too many connections",
            [1] = "No Connection with that ID",
            [2] = "Cannot change transports mid-connection",
            [3] = "Another request is already using this connection",
        };
        int text = status == 404 ? 1 : status == 400 ? 2 : status == 409 ? 3 : 0;
        reply(f, status, "text/plain", texts[text], NULL, 0);
        return;
    }
    if (is_ws)
        rh_conn_send_copy(f->conn, response, (uint32_t)n);
    else
        stream_head(f, ":\r\n"); /* ASP.NET's first bytes: browsers then fire open at once */
    rh_timer_cancel(&f->idle);   /* the session keeps its own time */
    f->state = FRONT_HUB;
}

/* The ?user= of a hub request into @user (RH_GROUP_NAME_MAX bytes); false (answered 400) when
 * it is longer. */
static bool query_user(struct front_conn *f, const struct rh_http_request *req, char *user,
                       size_t *user_len)
{
    /* As large as a request target can be, so that a long name is refused, not cut. */
    char text[4096];
    *user_len = 0;
    if (!rh_http_query_get(req->query, "user", text, sizeof(text), user_len)) return true;
    if (*user_len > RH_GROUP_NAME_MAX) {
        reply(f, 400, "text/plain; charset=utf-8", "user names are at most 256 bytes\n", NULL, 0);
        return false;
    }
    memcpy(user, text, *user_len);
    return true;
}

/* A client's token for hub @hub: its audience is the hub's URL. */
static bool authorize_hub(struct front_conn *f, const struct rh_http_request *req,
                          struct rh_span hub, struct rh_jwt *jwt)
{
    const struct rh_cfg *cfg = rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn)));
    char resource[RH_HUB_NAME_MAX + 300];
    snprintf(resource, sizeof(resource), "%s%.*s", cfg->hub_prefix, (int)hub.len,
             (const char *)hub.ptr);
    return authorize(f, req, resource, jwt);
}

/* Checks the request's token when ringhub has an access key: from the Authorization header
 * (Bearer) or the access_token query parameter (browsers cannot set headers on WebSockets and
 * EventSource), HS256, unexpired, for the audience {http,https}://{host[:port]}{resource} on
 * this host (with or without its port, http or https: TLS may end at a proxy). Returns true
 * with @jwt filled, or without a key with @jwt zeroed; false after answering 401. */
static bool authorize(struct front_conn *f, const struct rh_http_request *req, const char *resource,
                      struct rh_jwt *jwt)
{
    const struct rh_cfg *cfg = rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn)));
    memset(jwt, 0, sizeof(*jwt));
    if (!cfg->access_key) return true;
    char token[RH_JWT_TEXT_MAX + 2];
    size_t token_len = 0;
    const char *reason = "a token is required (Authorization: Bearer, or access_token=)";
    const struct rh_span *header = rh_http_header(req, "Authorization");
    if (header && header->len > 7 && strncasecmp((const char *)header->ptr, "Bearer ", 7) == 0) {
        token_len = header->len - 7;
        if (token_len > RH_JWT_TEXT_MAX) token_len = RH_JWT_TEXT_MAX + 1; /* too long: refused */
        memcpy(token, header->ptr + 7, token_len);
    } else if (!rh_http_query_get(req->query, "access_token", token, sizeof(token), &token_len)) {
        token_len = 0;
    }
    int err = -EACCES;
    if (token_len) {
        const struct rh_span *host = rh_http_header(req, "Host");
        char auds[4][RH_HUB_NAME_MAX + 600];
        const char *aud_list[4];
        size_t aud_count = 0;
        if (host && host->len <= 255) {
            /* The host without its port: after the ']' of an IPv6 literal, else the ':'. */
            const uint8_t *bracket = host->ptr[0] == '[' ? memchr(host->ptr, ']', host->len) : NULL;
            const uint8_t *from = bracket ? bracket : host->ptr;
            const uint8_t *colon = memchr(from, ':', host->len - (size_t)(from - host->ptr));
            int bare_len = colon ? (int)(colon - host->ptr) : (int)host->len;
            for (int scheme = 0; scheme < 2; scheme++)
                for (int port = 0; port < 2; port++) {
                    snprintf(auds[aud_count], sizeof(auds[0]), "%s://%.*s%s",
                             scheme ? "https" : "http", port ? (int)host->len : bare_len,
                             (const char *)host->ptr, resource);
                    aud_list[aud_count] = auds[aud_count];
                    aud_count++;
                }
        }
        err = aud_count ? rh_jwt_verify(rh_span_make(token, (uint32_t)token_len),
                                        rh_span_make(cfg->access_key, cfg->access_key_len),
                                        (int64_t)time(NULL), aud_list, aud_count, jwt, &reason)
                        : -EACCES;
        if (!aud_count) reason = "the request has no Host to check the token's audience with";
    }
    if (!err) return true;
    char body[160];
    snprintf(body, sizeof(body), "unauthorized: %s", reason);
    static const struct rh_http_field challenge[] = {
        {"WWW-Authenticate", "Bearer error=\"invalid_token\""}};
    reply(f, 401, "text/plain", body, challenge, 1);
    return false;
}

/* Who the client of a hub request is (the caller's @user and @roles hold the text): with an
 * access key, the user and roles of its token; running open, its ?user=. Returns false after
 * answering 401 (no valid token) or 400 (a ?user= too long). */
static bool identify(struct front_conn *f, const struct rh_http_request *req, struct rh_span hub,
                     char user[RH_GROUP_NAME_MAX], char roles[RH_HUB_ROLES_MAX],
                     struct rh_hub_identity *who)
{
    struct rh_jwt jwt;
    if (!authorize_hub(f, req, hub, &jwt)) return false;
    memset(who, 0, sizeof(*who));
    if (!rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn)))->access_key) {
        size_t user_len = 0;
        if (!query_user(f, req, user, &user_len)) return false;
        who->user = rh_span_make(user, (uint32_t)user_len);
        who->is_open = true;
        return true;
    }
    if (jwt.user_len > RH_GROUP_NAME_MAX) jwt.user_len = RH_GROUP_NAME_MAX;
    memcpy(user, jwt.user, jwt.user_len);
    who->user = rh_span_make(user, jwt.user_len);
    /* Only ringhub's roles, one per line: what the session checks its methods against. */
    uint32_t roles_len = 0;
    for (uint32_t i = 0; i < jwt.role_count; i++) {
        struct rh_span role = jwt.roles[i];
        if (role.len < 8 || memcmp(role.ptr, "ringhub.", 8) != 0 ||
            memchr(role.ptr, '\n', role.len) || roles_len + role.len + 1 > RH_HUB_ROLES_MAX)
            continue;
        memcpy(roles + roles_len, role.ptr, role.len);
        roles[roles_len + role.len] = '\n';
        roles_len += role.len + 1;
    }
    who->roles = rh_span_make(roles, roles_len);
    return true;
}

/* The id= of a hub request into @id: 0, or 400 when there is none (or it is empty), or 404
 * when it is longer than any id ringhub gives out. */
static int query_id(const struct rh_http_request *req, char id[TOKEN_MAX], size_t *id_len)
{
    char text[4096]; /* as large as a request target can be */
    if (!rh_http_query_get(req->query, "id", text, sizeof(text), id_len) || !*id_len) return 400;
    if (*id_len >= TOKEN_MAX) return 404;
    memcpy(id, text, *id_len + 1);
    return 0;
}

/* A long poll, a POST of hub bytes or a DELETE for the hub connection of id=: served by the
 * shard that owns it, which may be another one; this connection waits for the answer. */
static void route_transport(struct front_conn *f, const struct rh_http_request *req,
                            struct rh_span hub, enum rh_hub_op op)
{
    struct waiting *w = rh_calloc(1, sizeof(*w));
    if (!identify(f, req, hub, w->user, w->roles, &w->req.who)) {
        rh_free(w);
        return;
    }
    char token[TOKEN_MAX];
    size_t token_len = 0;
    int id_status = query_id(req, token, &token_len);
    if (id_status) {
        rh_free(w);
        reply(f, id_status, "text/plain",
              id_status == 404 ? "No Connection with that ID" : "Connection ID required", NULL, 0);
        return;
    }
    if (op != RH_HUB_OP_POST && (req->content_length || req->chunked)) {
        rh_free(w);
        reply_error(f, 400, "this request takes no body");
        return;
    }
    memcpy(w->hub, hub.ptr, hub.len);
    memcpy(w->token, token, token_len);
    w->req.op = op;
    w->req.reply_to = rh_conn_id(f->conn);
    w->req.hub = rh_span_make(w->hub, hub.len);
    w->req.token = rh_span_make(w->token, (uint32_t)token_len);
    start_waiting(f, w, req, op == RH_HUB_OP_POST);
}

/* @w becomes the request @f waits on: its body is read first when @wants_body (replacing the
 * skip handle_head chose), then it is sent. */
static void start_waiting(struct front_conn *f, struct waiting *w,
                          const struct rh_http_request *req, bool wants_body)
{
    if (f->origin.len) memcpy(w->origin, f->origin.ptr, f->origin.len);
    w->origin_len = f->origin.len;
    w->keep_alive = req->keep_alive;
    f->waiting = w;
    if (wants_body && (req->content_length || req->chunked)) {
        w->body = rh_buf_new(req->chunked ? 1024 : (uint32_t)req->content_length);
        f->state = req->chunked ? FRONT_BODY_CHUNKED : FRONT_BODY_LENGTH;
        f->body_left = req->content_length;
        return;
    }
    f->state = FRONT_HEAD;
    send_request(f);
}

/* Reads a transport request's body; sends the request once it is whole. */
static ssize_t read_body(struct front_conn *f, const uint8_t *data, size_t len)
{
    struct waiting *w = f->waiting;
    if (f->state == FRONT_BODY_LENGTH) {
        size_t take = len < f->body_left ? len : (size_t)f->body_left;
        rh_buf_append(&w->body, data, (uint32_t)take);
        f->body_left -= take;
        if (!f->body_left) send_request(f);
        return (ssize_t)take;
    }
    uint8_t out[BODY_SKIP_CHUNK];
    size_t out_len = 0;
    const char *reason = NULL;
    ssize_t n = rh_http_chunked_decode(&f->chunked, data, len, out, sizeof(out), &out_len, &reason);
    if (n < 0) {
        reply_framing_error(f, rh_http_error_status(n), reason, w->api != NULL);
        return n;
    }
    if (out_len) rh_buf_append(&w->body, out, (uint32_t)out_len);
    if (f->chunked.done) send_request(f);
    return n ? n : (out_len ? 0 : -EAGAIN);
}

/* Hands the transport request to the hub; its answer comes to rh_front_answer (perhaps before
 * this returns). */
static void send_request(struct front_conn *f)
{
    struct waiting *w = f->waiting;
    if (w->body) w->req.body = rh_span_make(w->body->data, w->body->len);
    if (w->api) {
        send_api(f);
        return;
    }
    if (w->is_metrics) {
        f->state = FRONT_WAITING;
        struct rh_shard *s = rh_conn_shard(f->conn);
        rh_timer_schedule(rh_shard_wheel(s), &f->idle, rh_clock_now_ms() + ANSWER_GRACE_MS);
        rh_admin_metrics(s, rh_conn_id(f->conn));
        return;
    }
    f->state = FRONT_WAITING;
    struct rh_shard *s = rh_conn_shard(f->conn);
    const struct rh_cfg *cfg = rh_runtime_cfg(rh_shard_runtime(s));
    rh_timer_schedule(rh_shard_wheel(s), &f->idle,
                      rh_clock_now_ms() + cfg->poll_timeout_ms + ANSWER_GRACE_MS);
    rh_hub_request(s, &w->req);
}

void rh_front_answer(struct rh_shard *s, uint64_t conn_id, int status, enum rh_front_body kind,
                     struct rh_span body)
{
    static const struct rh_http_field no_store[] = {
        {"Pragma", "no-cache"},
        {"Expires", "Thu, 01 Jan 1970 00:00:00 GMT"},
    };
    struct rh_conn *c = rh_shard_conn(s, conn_id);
    struct front_conn *f = c ? rh_conn_app(c) : NULL;
    if (!f || f->state != FRONT_WAITING) return; /* gone, or timed out */
    struct waiting *w = f->waiting;
    bool keep_alive = w->keep_alive;
    f->origin = rh_span_make(w->origin, w->origin_len);
    static const char *const types[] = {
        [RH_FRONT_TEXT] = "text/plain",
        [RH_FRONT_BINARY] = "application/octet-stream",
        [RH_FRONT_JSON] = "application/json",
        [RH_FRONT_PROMETHEUS] = "text/plain; version=0.0.4; charset=utf-8",
    };
    reply_bytes(f, status, types[kind], body.ptr, body.len, no_store, 2);
    f->origin = rh_span_make(NULL, 0);
    waiting_free(f);
    f->state = FRONT_HEAD;
    idle_restart(f);
    if (!keep_alive) rh_conn_close(c, RH_CLOSE_AFTER_FLUSH); /* frees @f */
}

static void waiting_free(struct front_conn *f)
{
    if (!f->waiting) return;
    if (f->waiting->body) rh_buf_unref(f->waiting->body);
    rh_free(f->waiting->api);
    rh_free(f->waiting);
    f->waiting = NULL;
}

/* The backend API (transports/rest.h): routed, authorized with a token for the request's URL,
 * its body read for sends, then carried out by the hub (perhaps on other shards); this
 * connection waits for the answer. */
static void route_api(struct front_conn *f, const struct rh_http_request *req)
{
    const struct rh_cfg *cfg = rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn)));
    struct api_request *api = rh_calloc(1, sizeof(*api));
    const char *reason = NULL;
    int status = rh_rest_route(req->method, req->path, req->query, &api->route, &reason);
    if (!status && !hub_is_served(cfg, rh_span_make(api->route.hub, api->route.hub_len)) &&
        api->route.op != RH_REST_HEALTH) {
        status = 404;
        reason = "no such hub";
    }
    int excluded = rh_rest_excluded(req->query, api->excluded, api->excluded_lens);
    if (!status && excluded < 0) {
        status = 400;
        reason = "excluded= takes at most 64 connection ids";
    }
    if (status) {
        rh_free(api);
        reply_api_error(f, status, reason);
        return;
    }
    api->excluded_count = (uint32_t)excluded;
    /* The audience is the request's URL: without the query on v1, with the api-version on
     * 2022-06-01, as the Azure SDKs sign it. */
    char resource[4200];
    uint32_t path_len = req->path.len;
    if (path_len > 1 && req->path.ptr[path_len - 1] == '/') path_len--;
    snprintf(resource, sizeof(resource), "%.*s%s", (int)path_len, (const char *)req->path.ptr,
             api->route.is_v1 ? "" : "?api-version=2022-06-01");
    struct rh_jwt jwt;
    if (api->route.op != RH_REST_HEALTH && !authorize(f, req, resource, &jwt)) {
        rh_free(api);
        return;
    }
    if (!rh_http_query_get(req->query, "reason", api->reason, sizeof(api->reason),
                           &api->reason_len))
        api->reason_len = 0;
    struct waiting *w = rh_calloc(1, sizeof(*w));
    w->api = api;
    start_waiting(f, w, req, is_send_op(api->route.op));
}

static bool is_send_op(enum rh_rest_op op)
{
    return op == RH_REST_SEND_ALL || op == RH_REST_SEND_USER || op == RH_REST_SEND_GROUP ||
           op == RH_REST_SEND_CONNECTION;
}

/* Sends the API request f->waiting holds to the hub, or answers it at once. */
static void send_api(struct front_conn *f)
{
    struct waiting *w = f->waiting;
    struct api_request *api = w->api;
    struct rh_hub_api_request req = {
        .route = &api->route,
        .reply_to = rh_conn_id(f->conn),
        .reason = rh_span_make(api->reason, (uint32_t)api->reason_len),
        .excluded_count = api->excluded_count,
    };
    for (uint32_t i = 0; i < api->excluded_count; i++)
        req.excluded[i] = rh_span_make(api->excluded[i], api->excluded_lens[i]);
    bool is_send = is_send_op(api->route.op);
    char target[RH_REST_HUB_MAX + 1];
    uint32_t target_len = 0;
    struct rh_shard *s = rh_conn_shard(f->conn);
    f->state = FRONT_WAITING;
    const char *reason = NULL;
    if (is_send && rh_rest_parse_payload(w->body ? rh_span_make(w->body->data, w->body->len)
                                                 : rh_span_make(NULL, 0),
                                         target, &target_len, req.args, &req.arg_count, &reason)) {
        char message[200];
        snprintf(message, sizeof(message), "{\"code\":\"Error.BadRequest\",\"message\":\"%s\"}",
                 reason);
        rh_front_answer(s, rh_conn_id(f->conn), 400, RH_FRONT_JSON,
                        rh_span_make(message, (uint32_t)strlen(message)));
        return;
    }
    req.target = rh_span_make(target, target_len);
    int status = rh_hub_api(s, &req);
    if (!status) { /* the answer comes later */
        const struct rh_cfg *cfg = rh_runtime_cfg(rh_shard_runtime(s));
        rh_timer_schedule(rh_shard_wheel(s), &f->idle,
                          rh_clock_now_ms() + cfg->poll_timeout_ms + ANSWER_GRACE_MS);
        return;
    }
    rh_front_answer(s, rh_conn_id(f->conn), status, RH_FRONT_TEXT, rh_span_make(NULL, 0));
}

/* An API error: JSON with a code and a message, as the service answers. */
static void reply_api_error(struct front_conn *f, int status, const char *message)
{
    char body[300];
    const char *code = status == 404   ? "Error.NotFound"
                       : status == 405 ? "Error.MethodNotAllowed"
                       : status == 413 ? "Error.PayloadTooLarge"
                       : status == 501 ? "Error.NotImplemented"
                                       : "Error.BadRequest";
    snprintf(body, sizeof(body), "{\"code\":\"%s\",\"message\":\"%s\"}", code,
             message ? message : "bad request");
    reply(f, status, "application/json", body, NULL, 0);
}

/* A request the parser refused: its status, in the API's JSON for an API request, then the
 * close, since nothing after a framing error on the connection can be trusted. */
static void reply_framing_error(struct front_conn *f, int status, const char *reason, bool is_api)
{
    if (!is_api) {
        reply_error(f, status, reason);
        return;
    }
    reply_api_error(f, status, reason);
    rh_conn_close(f->conn, RH_CLOSE_AFTER_FLUSH);
}

/* Whether the request line at @data names an API path: for the requests the parser refuses
 * (a body over its limit), whose answer should still be the API's JSON. */
static bool is_api_request_line(const uint8_t *data, size_t len)
{
    const uint8_t *space = memchr(data, ' ', len < 16 ? len : 16);
    if (!space) return false;
    size_t at = (size_t)(space + 1 - data);
    const uint8_t *end = memchr(space + 1, ' ', len - at);
    if (!end) return false;
    return rh_rest_is_api_path(rh_span_make(space + 1, (uint32_t)(end - space - 1)));
}

/* GET /api/events/{user}[?hub=]: the plain EventSource stream of a user, served on the shard
 * that keeps the user's events. */
static void route_events(struct front_conn *f, const struct rh_http_request *req)
{
    if (req->method == RH_HTTP_OPTIONS) {
        preflight(f, req);
        return;
    }
    if (req->method != RH_HTTP_GET) {
        static const struct rh_http_field allow[] = {{"Allow", "GET"}};
        reply(f, 405, "text/plain; charset=utf-8", "method not allowed\n", allow, 1);
        return;
    }
    char user[RH_GROUP_NAME_MAX + 1], hub[RH_HUB_NAME_MAX + 1];
    struct rh_span user_span, hub_span;
    int status = events_target(f, req, user, &user_span, hub, &hub_span);
    if (status == 400) {
        reply(f, 400, "text/plain; charset=utf-8",
              "the user is one path segment of 1 to 256 bytes\n", NULL, 0);
        return;
    }
    if (status == 404) {
        reply(f, 404, "text/plain; charset=utf-8", "no such hub\n", NULL, 0);
        return;
    }
    struct rh_jwt jwt;
    if (!authorize_hub(f, req, hub_span, &jwt)) return;
    if (rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn)))->access_key &&
        (jwt.user_len != user_span.len || memcmp(jwt.user, user_span.ptr, user_span.len) != 0)) {
        reply(f, 403, "text/plain", "forbidden: the token is for another user", NULL, 0);
        return;
    }
    /* Last-Event-ID, or lastEventId in the query for polyfills that cannot set headers. */
    char last_id[RH_EVENTS_ID_MAX];
    size_t last_id_len = 0;
    const struct rh_span *header = rh_http_header(req, "Last-Event-ID");
    if (header) {
        /* A longer one is no id ringhub gave out either way: it gets the resync. */
        last_id_len = header->len < sizeof(last_id) ? header->len : sizeof(last_id) - 1;
        memcpy(last_id, header->ptr, last_id_len);
    } else {
        rh_http_query_get(req->query, "lastEventId", last_id, sizeof(last_id), &last_id_len);
    }
    stream_head(f, NULL);
    f->events = rh_hub_stream_start(f->conn, hub_span, user_span,
                                    rh_span_make(last_id, (uint32_t)last_id_len));
    if (!f->events) {
        rh_conn_close(f->conn, RH_CLOSE_AFTER_FLUSH);
        return;
    }
    rh_timer_cancel(&f->idle);
    f->state = FRONT_EVENTS;
}

/* The user and hub of an events request, in @user and @hub (spans into them); returns 0, or
 * 400 for a bad user and 404 for a hub not served. */
static int events_target(struct front_conn *f, const struct rh_http_request *req,
                         char user[RH_GROUP_NAME_MAX + 1], struct rh_span *user_span,
                         char hub[RH_HUB_NAME_MAX + 1], struct rh_span *hub_span)
{
    const struct rh_cfg *cfg = rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn)));
    struct rh_span segment = rh_span_make(req->path.ptr + strlen(EVENTS_PREFIX),
                                          req->path.len - (uint32_t)strlen(EVENTS_PREFIX));
    size_t user_len = 0;
    if (memchr(segment.ptr, '/', segment.len) ||
        !rh_http_path_decode(segment, user, RH_GROUP_NAME_MAX + 1, &user_len) || !user_len)
        return 400;
    size_t hub_len = 0;
    if (!rh_http_query_get(req->query, "hub", hub, RH_HUB_NAME_MAX + 1, &hub_len) || !hub_len) {
        hub_len = strlen(cfg->events_hub);
        memcpy(hub, cfg->events_hub, hub_len);
    }
    *user_span = rh_span_make(user, (uint32_t)user_len);
    *hub_span = rh_span_make(hub, (uint32_t)hub_len);
    if (memchr(hub, '/', hub_len) || !hub_is_served(cfg, *hub_span)) return 404;
    return 0;
}

static bool is_events_path(struct rh_span path)
{
    size_t prefix_len = strlen(EVENTS_PREFIX);
    return path.len >= prefix_len && memcmp(path.ptr, EVENTS_PREFIX, prefix_len) == 0;
}

static bool is_event_stream_request(const struct rh_http_request *req)
{
    const struct rh_span *accept = rh_http_header(req, "Accept");
    static const char type[] = "text/event-stream";
    if (!accept || accept->len < sizeof(type) - 1) return false;
    for (uint32_t i = 0; i + sizeof(type) - 1 <= accept->len; i++)
        if (strncasecmp((const char *)accept->ptr + i, type, sizeof(type) - 1) == 0) return true;
    return false;
}

/* The head of an event stream: no length, no buffering (X-Accel-Buffering tells nginx), and
 * the body ends when the connection closes; then @first_bytes, if any. */
static void stream_head(struct front_conn *f, const char *first_bytes)
{
    struct rh_http_field fields[8 + 3];
    char origin[ORIGIN_MAX + 1];
    uint32_t n = 0;
    fields[n++] = (struct rh_http_field){"Content-Type", "text/event-stream"};
    fields[n++] = (struct rh_http_field){"Cache-Control", "no-cache, no-store"};
    fields[n++] = (struct rh_http_field){"Pragma", "no-cache"};
    fields[n++] = (struct rh_http_field){"Content-Encoding", "identity"};
    fields[n++] = (struct rh_http_field){"X-Accel-Buffering", "no"};
    fields[n++] = (struct rh_http_field){"Connection", "close"};
    n += cors_fields(f, fields + n, origin);
    uint8_t head[1024];
    ssize_t len = rh_http_response_head(head, sizeof(head), 200, fields, n);
    RH_ASSERT(len > 0);
    rh_conn_send_copy(f->conn, head, (uint32_t)len);
    if (first_bytes) rh_conn_send_copy(f->conn, first_bytes, (uint32_t)strlen(first_bytes));
}

static void reply(struct front_conn *f, int status, const char *content_type, const char *body,
                  const struct rh_http_field *extra, uint32_t extra_count)
{
    reply_bytes(f, status, content_type, body, body ? strlen(body) : 0, extra, extra_count);
}

#define EXTRA_FIELDS_MAX 6

/* Queues a reply with @body (may be NULL), the CORS fields the request earns and @extra. */
static void reply_bytes(struct front_conn *f, int status, const char *content_type,
                        const void *body, size_t body_len, const struct rh_http_field *extra,
                        uint32_t extra_count)
{
    RH_ASSERT(extra_count <= EXTRA_FIELDS_MAX);
    struct rh_http_field fields[2 + 3 + EXTRA_FIELDS_MAX];
    char origin[ORIGIN_MAX + 1];
    uint32_t n = 0;
    if (content_type) fields[n++] = (struct rh_http_field){"Content-Type", content_type};
    fields[n++] = (struct rh_http_field){"Cache-Control", "no-cache"};
    n += cors_fields(f, fields + n, origin);
    for (uint32_t i = 0; i < extra_count; i++)
        fields[n++] = extra[i];
    struct rh_buf *buf = rh_http_response_buf(status, fields, n, body, body_len);
    rh_conn_send(f->conn, buf);
    rh_buf_unref(buf);
}

/* The CORS fields of a reply to the request being answered: the Origin echoed when
 * --cors-origins allows it (with credentials, which the SignalR client sends by default, a
 * wildcard is not accepted by browsers). Writes up to 3 fields; @origin holds the text. */
static uint32_t cors_fields(const struct front_conn *f, struct rh_http_field *fields,
                            char origin[ORIGIN_MAX + 1])
{
    const struct rh_span *o = &f->origin;
    if (!o->len || o->len > ORIGIN_MAX) return 0;
    const char *allowed = rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn)))->cors_origins;
    bool is_allowed = strcmp(allowed, "*") == 0;
    for (const char *p = allowed; *p && !is_allowed;) {
        size_t len = strcspn(p, ",");
        is_allowed = len == o->len && strncasecmp(p, (const char *)o->ptr, len) == 0;
        p += len + (p[len] == ',');
    }
    if (!is_allowed) return 0;
    for (uint32_t i = 0; i < o->len; i++)
        if (o->ptr[i] < 0x21 || o->ptr[i] > 0x7e) return 0; /* not an origin: echo nothing */
    memcpy(origin, o->ptr, o->len);
    origin[o->len] = '\0';
    fields[0] = (struct rh_http_field){"Access-Control-Allow-Origin", origin};
    fields[1] = (struct rh_http_field){"Access-Control-Allow-Credentials", "true"};
    fields[2] = (struct rh_http_field){"Vary", "Origin"};
    return 3;
}

/* OPTIONS on a hub path: a CORS preflight. The request headers asked for are allowed when they
 * are a plain list of header names (what browsers send). */
static void preflight(struct front_conn *f, const struct rh_http_request *req)
{
    static const char default_headers[] =
        "Authorization, Content-Type, X-Requested-With, X-SignalR-User-Agent";
    char headers[512];
    const struct rh_span *asked = rh_http_header(req, "Access-Control-Request-Headers");
    const char *allow_headers = default_headers;
    if (asked && asked->len < sizeof(headers)) {
        bool is_plain = true;
        for (uint32_t i = 0; i < asked->len && is_plain; i++) {
            uint8_t c = asked->ptr[i];
            is_plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == ',' || c == ' ';
        }
        if (is_plain) {
            memcpy(headers, asked->ptr, asked->len);
            headers[asked->len] = '\0';
            allow_headers = headers;
        }
    }
    const struct rh_http_field extra[] = {
        {"Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"},
        {"Access-Control-Allow-Headers", allow_headers},
        {"Access-Control-Max-Age", PREFLIGHT_AGE},
        {"Allow", "GET, POST, DELETE, OPTIONS"},
    };
    reply_bytes(f, 204, NULL, NULL, 0, extra, 4);
}

static struct rh_span request_origin(const struct rh_http_request *req)
{
    const struct rh_span *o = rh_http_header(req, "Origin");
    return o && o->len <= ORIGIN_MAX ? *o : rh_span_make(NULL, 0);
}

static void reply_error(struct front_conn *f, int status, const char *reason)
{
    uint8_t text[512];
    ssize_t n = rh_http_error_response(text, sizeof(text), status, reason);
    if (n > 0) rh_conn_send_copy(f->conn, text, (uint32_t)n);
    rh_conn_close(f->conn, RH_CLOSE_AFTER_FLUSH);
}

static void idle_restart(struct front_conn *f)
{
    struct rh_shard *s = rh_conn_shard(f->conn);
    rh_timer_schedule(rh_shard_wheel(s), &f->idle, rh_clock_now_ms() + IDLE_TIMEOUT_MS);
}

static void idle_expired(struct rh_timer *t)
{
    struct front_conn *f = (struct front_conn *)((char *)t - offsetof(struct front_conn, idle));
    rh_conn_close(f->conn, RH_CLOSE_AFTER_FLUSH);
}

/* A stream GET whose id= names a hub connection of another shard, or an events stream of a user
 * whose events another shard keeps: the socket moves there, with this request still unread,
 * and is served there. */
static bool is_for_another_shard(struct front_conn *f, const struct rh_http_request *req)
{
    struct rh_shard *s = rh_conn_shard(f->conn);
    if (req->method == RH_HTTP_GET && is_events_path(req->path)) {
        /* Every stream of a user is served where the user's events are kept. */
        char user[RH_GROUP_NAME_MAX + 1], hub[RH_HUB_NAME_MAX + 1];
        struct rh_span user_span, hub_span;
        if (events_target(f, req, user, &user_span, hub, &hub_span)) return false;
        uint32_t owner = rh_hub_events_shard(s, hub_span, user_span);
        return owner != rh_shard_idx(s) && rh_conn_handoff(f->conn, owner, NULL, 0) == 0;
    }
    if (!hub_path_rest(rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn))), req->path).ptr)
        return false;
    /* Streams move; polls, POSTs and DELETEs are forwarded (route_transport). */
    if (req->method != RH_HTTP_GET || !(req->upgrade_websocket || is_event_stream_request(req)))
        return false;
    char id[TOKEN_MAX];
    size_t id_len;
    if (!rh_http_query_get(req->query, "id", id, sizeof(id), &id_len)) return false;
    int owner = rh_hub_id_shard(s, id, id_len);
    if (owner < 0 || (uint32_t)owner == rh_shard_idx(s)) return false;
    return rh_conn_handoff(f->conn, (uint32_t)owner, NULL, 0) == 0;
}

/* POST /hubs/{hub}/negotiate: versions 0 and 1. */
static void negotiate(struct front_conn *f, const struct rh_http_request *req, struct rh_span hub)
{
    static const char json[] = "application/json";
    if (req->method != RH_HTTP_POST) {
        static const struct rh_http_field allow[] = {{"Allow", "POST"}};
        reply(f, 405, "text/plain; charset=utf-8", "method not allowed\n", allow, 1);
        return;
    }
    struct rh_jwt jwt;
    if (!authorize_hub(f, req, hub, &jwt)) return;
    char text[16];
    size_t text_len;
    long version = 0;
    if (rh_http_query_get(req->query, "negotiateVersion", text, sizeof(text), &text_len)) {
        char *end;
        version = strtol(text, &end, 10);
        if (!text_len || *end) {
            reply(f, 200, json,
                  "{\"error\":\"The client requested a non-integer protocol version.\"}", NULL, 0);
            return;
        }
        if (version < 0) {
            reply(f, 200, json, "{\"error\":\"The client requested a negative protocol version.\"}",
                  NULL, 0);
            return;
        }
    }
    struct rh_buf *body = rh_hub_negotiate(rh_conn_shard(f->conn), hub, version >= 1 ? 1 : 0);
    if (!body) {
        reply(f, 503, "text/plain; charset=utf-8", "too many connections\n", NULL, 0);
        return;
    }
    reply_bytes(f, 200, json, body->data, body->len, NULL, 0);
    rh_buf_unref(body);
}

/* /metrics and the dashboard, on the listener that serves them: the operator port when
 * --metrics-port sets one, else the main port. Returns false when @req is none of these. */
static bool route_operator(struct front_conn *f, const struct rh_http_request *req)
{
    const struct rh_cfg *cfg = rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn)));
    enum rh_listener_kind serving = cfg->metrics_port ? RH_LISTENER_OPERATOR : RH_LISTENER_MAIN;
    if (rh_conn_listener(f->conn) != serving) return false;
    bool is_metrics = rh_span_eq_str(req->path, "/metrics");
    bool is_page = rh_span_eq_str(req->path, "/dashboard");
    bool is_stream = rh_span_eq_str(req->path, "/dashboard/stream");
    if (!is_metrics && !((is_page || is_stream) && cfg->dashboard)) return false;
    if (req->method != RH_HTTP_GET) {
        static const struct rh_http_field allow[] = {{"Allow", "GET"}};
        reply(f, 405, "text/plain; charset=utf-8", "method not allowed\n", allow, 1);
        return true;
    }
    if (is_metrics) {
        struct waiting *w = rh_calloc(1, sizeof(*w));
        w->is_metrics = true;
        start_waiting(f, w, req, false);
        return true;
    }
    route_dashboard(f, req, is_stream);
    return true;
}

/* The page, or its stream. With an access key both need a token (?access_token=, as an
 * EventSource cannot send headers) for audience .../dashboard with the role ringhub.admin. */
static void route_dashboard(struct front_conn *f, const struct rh_http_request *req, bool is_stream)
{
    const struct rh_cfg *cfg = rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn)));
    struct rh_jwt jwt;
    if (!authorize(f, req, "/dashboard", &jwt)) return;
    if (cfg->access_key) {
        bool is_admin = false;
        for (uint32_t i = 0; i < jwt.role_count; i++)
            is_admin |= rh_span_eq_str(jwt.roles[i], "ringhub.admin");
        if (!is_admin) {
            reply(f, 403, "text/plain; charset=utf-8",
                  "forbidden: the dashboard needs a token with the role ringhub.admin\n", NULL, 0);
            return;
        }
    }
    if (!is_stream) {
        static const struct rh_http_field no_referrer[] = {{"Referrer-Policy", "no-referrer"}};
        reply_bytes(f, 200, "text/html; charset=utf-8", rh_dashboard_html, rh_dashboard_html_len,
                    no_referrer, 1);
        return;
    }
    stream_head(f, "retry: 3000\n\n");
    f->state = FRONT_DASHBOARD;
    rh_timer_cancel(&f->idle);
    rh_admin_dashboard_attach(f->conn);
}
