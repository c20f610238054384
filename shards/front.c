/*
 * shards/front.c - the HTTP front: per-connection request loop, routing and error replies.
 *
 * A connection's state is small and allocated at accept: where it is in the request stream
 * (reading a request head, or skipping the body of one already answered) and its idle timer.
 * Requests are answered in order as their heads arrive; a body nobody reads yet is skipped so
 * the next pipelined request is found. A request the parser refuses gets its status and a
 * reason, then the connection closes once the reply is sent: after a framing error nothing
 * later on the connection can be trusted.
 */
#include "shards/front.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/timer.h"
#include "shards/hub.h"
#include "transports/http/http.h"
#include "transports/ws.h"

#define IDLE_TIMEOUT_MS 60000 /* an HTTP connection with no request in progress */
#define BODY_SKIP_CHUNK 4096
#define ORIGIN_MAX      256     /* bytes of an Origin a reply echoes */
#define PREFLIGHT_AGE   "86400" /* seconds a browser may cache a CORS preflight answer */

enum front_state {
    FRONT_HEAD,         /* waiting for (more of) a request head */
    FRONT_SKIP_LENGTH,  /* discarding body_left more bytes */
    FRONT_SKIP_CHUNKED, /* discarding a chunked body */
    FRONT_HUB,          /* upgraded: a hub session over WebSocket owns the bytes */
};

struct front_conn {
    struct rh_conn *conn;
    enum front_state state;
    uint64_t body_left;
    struct rh_http_chunked chunked;
    struct rh_timer idle;
    struct rh_hub_session *hub; /* FRONT_HUB */
    /* The request being answered, while route() runs: replies echo its Origin (CORS). */
    const struct rh_http_request *req;
};

static void conn_open(struct rh_conn *c);
static ssize_t conn_recv(struct rh_conn *c, const uint8_t *data, size_t len);
static void conn_adopt(struct rh_conn *c, const uint8_t *data, size_t len);
static bool is_for_another_shard(struct front_conn *f, const struct rh_http_request *req);
static void negotiate(struct front_conn *f, const struct rh_http_request *req);
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
static void reply_error(struct front_conn *f, int status, const char *reason);
static void idle_expired(struct rh_timer *t);
static void idle_restart(struct front_conn *f);

static const struct rh_conn_handler front_handler = {
    .shard_start = rh_hub_shard_start,
    .shard_stop = rh_hub_shard_stop,
    .shard_draining = rh_hub_shard_draining,
    .blob = rh_hub_blob,
    .conn_open = conn_open,
    .conn_adopt = conn_adopt,
    .conn_recv = conn_recv,
    .conn_close = conn_close,
};

const struct rh_conn_handler *rh_front_handler(void)
{
    return &front_handler;
}

static void conn_open(struct rh_conn *c)
{
    struct front_conn *f = rh_calloc(1, sizeof(*f));
    f->conn = c;
    f->state = FRONT_HEAD;
    rh_timer_init(&f->idle, idle_expired);
    rh_conn_set_app(c, f);
    idle_restart(f);
}

static void conn_close(struct rh_conn *c)
{
    struct front_conn *f = rh_conn_app(c);
    rh_timer_cancel(&f->idle);
    if (f->hub) rh_hub_session_free(f->hub);
    rh_conn_set_app(c, NULL);
    rh_free(f);
}

static ssize_t conn_recv(struct rh_conn *c, const uint8_t *data, size_t len)
{
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

    ssize_t n = rh_http_parse_request(data, len, &lim, &req, &reason);
    if (n == -EAGAIN) return n;
    if (n < 0) {
        rh_log_limited(RH_LOG_INFO, "http", "connection %llx: bad request: %s",
                       (unsigned long long)rh_conn_id(f->conn), reason ? reason : "?");
        reply_error(f, rh_http_error_status(n), reason);
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
    f->req = &req;
    route(f, &req);
    if (rh_conn_app(c) == f) f->req = NULL;
    if (!req.keep_alive) rh_conn_close(c, RH_CLOSE_AFTER_FLUSH);
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
    if (rh_span_eq_str(req->path, "/healthz")) {
        if (req->method != RH_HTTP_GET && req->method != RH_HTTP_HEAD) {
            static const struct rh_http_field allow[] = {{"Allow", "GET, HEAD"}};
            reply(f, 405, "text/plain; charset=utf-8", "method not allowed\n", allow, 1);
            return;
        }
        reply(f, 200, "text/plain; charset=utf-8", req->method == RH_HTTP_HEAD ? NULL : "ok\n",
              NULL, 0);
        return;
    }
    struct rh_span rest =
        hub_path_rest(rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn))), req->path);
    if (rest.ptr) {
        route_hub(f, req, rest);
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
 * negotiate, and the WebSocket upgrade that starts a hub session. Server-Sent Events and long
 * polling are not served yet (issue 5). */
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
        negotiate(f, req);
        return;
    }
    if (req->method != RH_HTTP_GET) {
        static const struct rh_http_field allow[] = {{"Allow", "GET"}};
        reply(f, 405, "text/plain; charset=utf-8", "method not allowed\n", allow, 1);
        return;
    }
    const struct rh_span *key = rh_http_header(req, "Sec-WebSocket-Key");
    const struct rh_span *version = rh_http_header(req, "Sec-WebSocket-Version");
    if (!req->upgrade_websocket || !key) {
        reply(f, 400, "text/plain; charset=utf-8",
              "a WebSocket upgrade is required (Server-Sent Events and long polling are not "
              "served yet)\n",
              NULL, 0);
        return;
    }
    if (!version || !rh_span_eq_str(*version, "13")) {
        static const struct rh_http_field v13[] = {{"Sec-WebSocket-Version", "13"}};
        reply(f, 426, "text/plain; charset=utf-8", "WebSocket version 13 is required\n", v13, 1);
        return;
    }
    char response[256];
    int n = rh_ws_write_handshake(response, sizeof(response), (const char *)key->ptr, key->len);
    if (n < 0) {
        reply(f, 400, "text/plain; charset=utf-8", "bad Sec-WebSocket-Key\n", NULL, 0);
        return;
    }
    char id[64];
    size_t id_len = 0;
    bool has_id = rh_http_query_get(req->query, "id", id, sizeof(id), &id_len);
    /* As large as a request target can be, so that a long name is refused, not ignored. */
    char user[4096];
    size_t user_len = 0;
    rh_http_query_get(req->query, "user", user, sizeof(user), &user_len);
    if (user_len > RH_GROUP_NAME_MAX) {
        reply(f, 400, "text/plain; charset=utf-8", "user names are at most 256 bytes\n", NULL, 0);
        return;
    }
    f->hub = rh_hub_session_start(f->conn, rest, rh_span_make(id, has_id ? (uint32_t)id_len : 0),
                                  rh_span_make(user, (uint32_t)user_len));
    if (!f->hub) {
        if (has_id)
            reply(f, 404, "text/plain; charset=utf-8", "No Connection with that ID\n", NULL, 0);
        else
            reply(f, 503, "text/plain; charset=utf-8", "too many connections\n", NULL, 0);
        return;
    }
    rh_conn_send_copy(f->conn, response, (uint32_t)n);
    rh_timer_cancel(&f->idle); /* the session keeps its own time */
    f->state = FRONT_HUB;
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
    const struct rh_span *o = f->req ? rh_http_header(f->req, "Origin") : NULL;
    if (!o || !o->len || o->len > ORIGIN_MAX) return 0;
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

/* A hub request whose id= names a hub connection of another shard: the socket moves there,
 * with this request still unread, and is served where the connection lives. */
static bool is_for_another_shard(struct front_conn *f, const struct rh_http_request *req)
{
    if (!hub_path_rest(rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(f->conn))), req->path).ptr)
        return false;
    char id[64];
    size_t id_len;
    if (!rh_http_query_get(req->query, "id", id, sizeof(id), &id_len)) return false;
    struct rh_shard *s = rh_conn_shard(f->conn);
    int owner = rh_hub_id_shard(s, id, id_len);
    if (owner < 0 || (uint32_t)owner == rh_shard_idx(s)) return false;
    return rh_conn_handoff(f->conn, (uint32_t)owner, NULL, 0) == 0;
}

/* POST /hubs/{hub}/negotiate: versions 0 and 1, WebSockets only so far. */
static void negotiate(struct front_conn *f, const struct rh_http_request *req)
{
    static const char json[] = "application/json";
    if (req->method != RH_HTTP_POST) {
        static const struct rh_http_field allow[] = {{"Allow", "POST"}};
        reply(f, 405, "text/plain; charset=utf-8", "method not allowed\n", allow, 1);
        return;
    }
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
    struct rh_buf *body = rh_hub_negotiate(rh_conn_shard(f->conn), version >= 1 ? 1 : 0);
    if (!body) {
        reply(f, 503, "text/plain; charset=utf-8", "too many connections\n", NULL, 0);
        return;
    }
    reply_bytes(f, 200, json, body->data, body->len, NULL, 0);
    rh_buf_unref(body);
}
