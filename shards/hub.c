/*
 * shards/hub.c - see hub.h. A session is small: the WebSocket input parser (idle: 24 bytes),
 * the negotiated hub protocol, one timer, and hub bytes split across WebSocket messages (held
 * only while a message is incomplete). Every reply is written once into a buffer and framed
 * as one WebSocket message, so the JS client always receives whole hub messages.
 */
#include "shards/hub.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/timer.h"
#include "transports/hub.h"
#include "transports/hub_json.h"
#include "transports/hub_msgpack.h"
#include "transports/ws.h"

#define HANDSHAKE_TIMEOUT_MS 15000
#define KEEPALIVE_MS         15000
#define CLIENT_TIMEOUT_MS    30000
#define MESSAGE_BYTES_MAX    (32u * 1024) /* ASP.NET's MaximumReceiveMessageSize */

struct rh_hub_session {
    struct rh_conn *conn;
    struct rh_ws_in ws;
    bool is_handshaken;
    /* Set inside parser callbacks, which must not close (closing frees the session while the
     * parser still runs); rh_hub_session_recv closes once the parser has returned. */
    bool is_ending;
    enum rh_hub_codec codec;
    int64_t last_rx_ms, last_tx_ms;
    struct rh_timer tick; /* handshake timeout, then keep-alive and client timeout */
    uint8_t *pending;     /* hub bytes of an incomplete message */
    uint32_t pending_len;
};

static int on_message(void *ctx, enum rh_ws_opcode op, const uint8_t *payload, size_t len);
static int on_ping(void *ctx, const uint8_t *payload, size_t len);
static int on_close(void *ctx, uint16_t code, const char *reason, size_t reason_len);
static ssize_t hub_input(struct rh_hub_session *h, const uint8_t *data, size_t len);
static ssize_t handshake(struct rh_hub_session *h, const uint8_t *data, size_t len);
static void dispatch(struct rh_hub_session *h, const struct rh_hub_msg *msg);
static void invoke_echo(struct rh_hub_session *h, const struct rh_hub_msg *msg);
static void complete_error(struct rh_hub_session *h, const struct rh_hub_msg *msg,
                           const char *error);
static void send_hub(struct rh_hub_session *h, struct rh_buf *hub_bytes, bool text);
static void end_with_error(struct rh_hub_session *h, const char *error);
static void tick_fired(struct rh_timer *t);
static void tick_schedule(struct rh_hub_session *h);

static const struct rh_ws_in_ops ws_ops = {
    .on_message = on_message,
    .on_ping = on_ping,
    .on_close = on_close,
};

struct rh_hub_session *rh_hub_session_start(struct rh_conn *c)
{
    struct rh_hub_session *h = rh_calloc(1, sizeof(*h));
    h->conn = c;
    rh_ws_in_init(&h->ws, MESSAGE_BYTES_MAX);
    h->last_rx_ms = h->last_tx_ms = rh_clock_now_ms();
    rh_timer_init(&h->tick, tick_fired);
    rh_timer_schedule(rh_shard_wheel(rh_conn_shard(c)), &h->tick,
                      h->last_rx_ms + HANDSHAKE_TIMEOUT_MS);
    return h;
}

void rh_hub_session_free(struct rh_hub_session *h)
{
    rh_timer_cancel(&h->tick);
    rh_ws_in_destroy(&h->ws);
    rh_free(h->pending);
    rh_free(h);
}

ssize_t rh_hub_session_recv(struct rh_hub_session *h, const uint8_t *data, size_t len)
{
    struct rh_conn *c = h->conn;
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

static int on_message(void *ctx, enum rh_ws_opcode op, const uint8_t *payload, size_t len)
{
    struct rh_hub_session *h = ctx;
    (void)op; /* the hub stream ignores frame types: the JSON handshake comes as text anyway */
    h->last_rx_ms = rh_clock_now_ms();
    if (!h->pending_len) {
        ssize_t used = hub_input(h, payload, len);
        if (h->is_ending) return -ECONNABORTED;
        if ((size_t)used < len) {
            h->pending = rh_alloc(len - (size_t)used);
            memcpy(h->pending, payload + used, len - (size_t)used);
            h->pending_len = (uint32_t)(len - (size_t)used);
        }
        return 0;
    }
    /* A hub message split across WebSocket messages: join and parse from the start. */
    if (h->pending_len + len > MESSAGE_BYTES_MAX + 8) {
        end_with_error(h, "Connection closed with an error. InvalidDataException: The maximum "
                          "message size of 32768B was exceeded.");
        return -ECONNABORTED;
    }
    uint32_t joined_len = h->pending_len + (uint32_t)len;
    uint8_t *joined = rh_alloc(joined_len);
    memcpy(joined, h->pending, h->pending_len);
    memcpy(joined + h->pending_len, payload, len);
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
    return h->is_ending ? -ECONNABORTED : 0;
}

static int on_ping(void *ctx, const uint8_t *payload, size_t len)
{
    struct rh_hub_session *h = ctx;
    struct rh_buf *pong = rh_ws_frame_new(RH_WS_OP_PONG, payload, (uint32_t)len);
    rh_conn_send(h->conn, pong);
    rh_buf_unref(pong);
    return 0;
}

static int on_close(void *ctx, uint16_t code, const char *reason, size_t reason_len)
{
    struct rh_hub_session *h = ctx;
    (void)reason;
    (void)reason_len;
    struct rh_buf *close =
        rh_ws_close_frame_new(code == RH_WS_CLOSE_NO_STATUS ? 0 : RH_WS_CLOSE_NORMAL, NULL);
    rh_conn_send(h->conn, close);
    rh_buf_unref(close);
    h->is_ending = true;
    return -ECONNABORTED;
}

/* Handles the whole hub messages at the front of @data and returns the bytes used (the rest
 * is an incomplete message). Stops early when the session is ending (h->is_ending). */
static ssize_t hub_input(struct rh_hub_session *h, const uint8_t *data, size_t len)
{
    size_t used = 0;
    while (used < len && !h->is_ending) {
        if (!h->is_handshaken) {
            ssize_t n = handshake(h, data + used, len - used);
            if (n < 0) break; /* -EAGAIN: wait for more; otherwise the session is ending */
            used += (size_t)n;
            continue;
        }
        struct rh_hub_msg msg;
        const char *reason = NULL;
        ssize_t n =
            h->codec == RH_HUB_JSON
                ? rh_hub_json_parse(data + used, len - used, MESSAGE_BYTES_MAX, &msg, &reason)
                : rh_hub_msgpack_parse(data + used, len - used, MESSAGE_BYTES_MAX, &msg, &reason);
        if (n == -EAGAIN) break;
        if (n < 0) {
            char error[256];
            snprintf(error, sizeof(error),
                     n == -EMSGSIZE ? "Connection closed with an error. InvalidDataException: "
                                      "The maximum message size of 32768B was exceeded."
                                    : "Connection closed with an error. InvalidDataException: %s",
                     reason ? reason : "malformed message");
            end_with_error(h, error);
            break;
        }
        used += (size_t)n;
        dispatch(h, &msg);
    }
    return (ssize_t)used;
}

static ssize_t handshake(struct rh_hub_session *h, const uint8_t *data, size_t len)
{
    struct rh_hub_handshake hs;
    const char *reason = NULL;
    char error[256];
    ssize_t n = rh_hub_handshake_parse(data, len, MESSAGE_BYTES_MAX, &hs, &reason);
    if (n == -EAGAIN) return n;

    enum rh_hub_handshake_fail fail;
    if (n == -EMSGSIZE) {
        fail = RH_HUB_HANDSHAKE_CANCELED;
    } else if (n < 0) {
        fail = RH_HUB_HANDSHAKE_UNEXPECTED;
    } else if (strcasecmp(hs.protocol, "json") == 0 ||
               strcasecmp(hs.protocol, "messagepack") == 0) {
        if (hs.version <= 2) {
            h->codec = strcasecmp(hs.protocol, "json") == 0 ? RH_HUB_JSON : RH_HUB_MSGPACK;
            h->is_handshaken = true;
            struct rh_buf *ok = rh_buf_new(8);
            rh_hub_handshake_write_ok(&ok);
            /* In the protocol's own frame type already, as ASP.NET does. */
            send_hub(h, ok, h->codec == RH_HUB_JSON);
            tick_schedule(h);
            return n;
        }
        fail = RH_HUB_HANDSHAKE_BAD_VERSION;
    } else {
        fail = RH_HUB_HANDSHAKE_BAD_PROTOCOL;
    }
    rh_hub_handshake_error_text(fail, n > 0 ? &hs : NULL, error, sizeof(error));
    rh_log_limited(RH_LOG_INFO, "hub", "connection %llx: handshake refused: %s",
                   (unsigned long long)rh_conn_id(h->conn), error);
    struct rh_buf *reply = rh_buf_new(64);
    rh_hub_handshake_write_error(&reply, error);
    send_hub(h, reply, true);
    struct rh_buf *close = rh_ws_close_frame_new(RH_WS_CLOSE_NORMAL, NULL);
    rh_conn_send(h->conn, close);
    rh_buf_unref(close);
    h->is_ending = true;
    return n < 0 ? n : -EPROTO;
}

static void dispatch(struct rh_hub_session *h, const struct rh_hub_msg *msg)
{
    switch (msg->type) {
    case RH_HUB_INVOCATION:
        if (rh_span_eq_nocase(msg->target, "Echo")) {
            invoke_echo(h, msg);
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
    if (!msg->invocation_id.len) return; /* a send: no completion wanted */
    struct rh_buf *out = rh_buf_new(64 + msg->args[0].len);
    if (h->codec == RH_HUB_JSON)
        rh_hub_json_write_completion(&out, msg->invocation_id, RH_HUB_RESULT_VALUE, msg->args[0]);
    else
        rh_hub_msgpack_write_completion(&out, msg->invocation_id, RH_HUB_RESULT_VALUE,
                                        msg->args[0]);
    send_hub(h, out, h->codec == RH_HUB_JSON);
}

static void complete_error(struct rh_hub_session *h, const struct rh_hub_msg *msg,
                           const char *error)
{
    if (!msg->invocation_id.len) return;
    struct rh_span text = rh_span_make(error, (uint32_t)strlen(error));
    struct rh_buf *out = rh_buf_new(64 + text.len);
    if (h->codec == RH_HUB_JSON)
        rh_hub_json_write_completion(&out, msg->invocation_id, RH_HUB_RESULT_ERROR, text);
    else
        rh_hub_msgpack_write_completion(&out, msg->invocation_id, RH_HUB_RESULT_ERROR, text);
    send_hub(h, out, h->codec == RH_HUB_JSON);
}

/* Frames @hub_bytes (whole hub messages) as one WebSocket message and queues it; takes over
 * the caller's reference. */
static void send_hub(struct rh_hub_session *h, struct rh_buf *hub_bytes, bool text)
{
    struct rh_buf *frame =
        rh_ws_frame_new(text ? RH_WS_OP_TEXT : RH_WS_OP_BINARY, hub_bytes->data, hub_bytes->len);
    rh_buf_unref(hub_bytes);
    rh_conn_send(h->conn, frame);
    rh_buf_unref(frame);
    h->last_tx_ms = rh_clock_now_ms();
}

/* Queues a hub Close with @error and a WebSocket close, and marks the session as ending. */
static void end_with_error(struct rh_hub_session *h, const char *error)
{
    rh_log_limited(RH_LOG_INFO, "hub", "connection %llx: %s",
                   (unsigned long long)rh_conn_id(h->conn), error);
    struct rh_span text = rh_span_make(error, (uint32_t)strlen(error));
    struct rh_buf *out = rh_buf_new(64 + text.len);
    if (h->codec == RH_HUB_JSON || !h->is_handshaken)
        rh_hub_json_write_close(&out, text, false);
    else
        rh_hub_msgpack_write_close(&out, text, false);
    send_hub(h, out, h->codec == RH_HUB_JSON || !h->is_handshaken);
    struct rh_buf *close = rh_ws_close_frame_new(RH_WS_CLOSE_NORMAL, NULL);
    rh_conn_send(h->conn, close);
    rh_buf_unref(close);
    h->is_ending = true;
}

static void tick_schedule(struct rh_hub_session *h)
{
    int64_t at = h->last_tx_ms + KEEPALIVE_MS;
    if (h->last_rx_ms + CLIENT_TIMEOUT_MS < at) at = h->last_rx_ms + CLIENT_TIMEOUT_MS;
    rh_timer_schedule(rh_shard_wheel(rh_conn_shard(h->conn)), &h->tick, at);
}

static void tick_fired(struct rh_timer *t)
{
    struct rh_hub_session *h =
        (struct rh_hub_session *)((char *)t - offsetof(struct rh_hub_session, tick));
    int64_t now_ms = rh_clock_now_ms();
    if (!h->is_handshaken) {
        char error[64];
        rh_hub_handshake_error_text(RH_HUB_HANDSHAKE_CANCELED, NULL, error, sizeof(error));
        end_with_error(h, error);
        rh_conn_close(h->conn, RH_CLOSE_AFTER_FLUSH); /* outside the parser: close now */
        return;
    }
    if (now_ms - h->last_rx_ms >= CLIENT_TIMEOUT_MS) {
        end_with_error(h, "Connection closed with an error. Server timeout elapsed without "
                          "receiving a message from the client.");
        rh_conn_close(h->conn, RH_CLOSE_AFTER_FLUSH);
        return;
    }
    if (now_ms - h->last_tx_ms >= KEEPALIVE_MS) {
        struct rh_buf *ping = rh_buf_new(16);
        if (h->codec == RH_HUB_JSON)
            rh_hub_json_write_ping(&ping);
        else
            rh_hub_msgpack_write_ping(&ping);
        send_hub(h, ping, h->codec == RH_HUB_JSON);
    }
    tick_schedule(h);
}
