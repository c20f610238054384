/*
 * transports/ws.c - WebSocket handshake key, outgoing frames and the client-frame parser.
 *
 * Incoming frames go through wslay's frame API (wslay_frame_recv): it cuts the byte stream
 * into frames, checks the length encodings and the control-frame limits, and unmasks payloads
 * in its own read buffer. The message layer above it is ours rather than wslay's event API,
 * because the event API queues its own pong and close frames for its own send path (we build
 * replies into shared rh_bufs), copies every payload chunk into a malloc'd queue before
 * concatenating it again, reports a protocol error only as a queued close frame, and keeps a
 * ~9 KiB context per connection. The frame context (~4.4 KiB, allocated by wslay with malloc)
 * lives only while a frame or message is incomplete, so an idle connection holds just its
 * struct rh_ws_in. The caller (the shard's connection code) sends replies and closes.
 */
#include "transports/ws.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "core/alloc.h"
#include "core/assert.h"

#define WS_GUID      "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN   24
#define WS_GUID_LEN  (sizeof(WS_GUID) - 1)
#define WS_MSG_CAP_0 256 /* first allocation of a reassembly buffer */

enum ws_in_state {
    WS_IN_OPEN,
    WS_IN_CLOSED, /* the client's close frame arrived */
    WS_IN_FAILED, /* bad input or a callback stopped the parser */
};

/* Working state of a parser between the first byte of a frame and the end of its message. */
struct ws_in_busy {
    wslay_frame_context_ptr frame; /* owned (wslay malloc); user_data points back here */

    /* The chunk being fed; wslay pulls from it through recv_from_input(). */
    const uint8_t *input;
    size_t input_len;
    size_t input_idx;
    /* Bytes wslay has pulled but that belong to no finished frame: 0 means wslay's read
     * buffer is empty and it waits for a header, so the whole state can go. */
    uint64_t held_bytes;

    /* The frame being received. */
    bool in_frame;
    bool frame_fin;
    uint8_t frame_op;
    uint64_t frame_payload_len;
    uint64_t frame_payload_off;

    /* The data message being reassembled (msg_op 0: none). */
    uint8_t msg_op;
    uint32_t utf8_state;
    uint32_t msg_len;
    uint32_t msg_cap;
    uint8_t *msg; /* owned; rh_alloc */

    /* A control frame can arrive in pieces; at most 125 bytes. */
    uint8_t ctrl_len;
    uint8_t ctrl[RH_WS_CONTROL_PAYLOAD_MAX];
};

static bool is_base64_char(char c);
static struct ws_in_busy *busy_new(void);
static void busy_free(struct ws_in_busy *busy);
static bool busy_is_done(const struct ws_in_busy *busy);
static ssize_t recv_from_input(uint8_t *buf, size_t len, int flags, void *user_data);
static int fail(struct rh_ws_in *in, int err, uint16_t code, const char *reason);
static int frame_start(struct rh_ws_in *in, const struct wslay_frame_iocb *iocb,
                       const struct rh_ws_in_ops *ops);
static int frame_chunk(struct rh_ws_in *in, const struct wslay_frame_iocb *iocb,
                       const struct rh_ws_in_ops *ops, void *ctx);
static int data_chunk(struct rh_ws_in *in, const uint8_t *data, size_t len,
                      const struct rh_ws_in_ops *ops, void *ctx);
static int control_end(struct rh_ws_in *in, const struct rh_ws_in_ops *ops, void *ctx);
static int close_received(struct rh_ws_in *in, const struct rh_ws_in_ops *ops, void *ctx);
static bool is_valid_close_code(uint16_t code);
static uint32_t frame_header_len(uint64_t payload_len);
static bool utf8_check(uint32_t *state, const uint8_t *p, size_t len);

/* ---- handshake ---- */

int rh_ws_accept_key(const char *client_key, size_t key_len, char out[RH_WS_ACCEPT_LEN + 1])
{
    char text[WS_KEY_LEN + WS_GUID_LEN];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    /* 16 bytes encode to 22 characters and "==". */
    if (key_len != WS_KEY_LEN || client_key[22] != '=' || client_key[23] != '=') return -EINVAL;
    for (size_t i = 0; i < 22; i++)
        if (!is_base64_char(client_key[i])) return -EINVAL;

    memcpy(text, client_key, WS_KEY_LEN);
    memcpy(text + WS_KEY_LEN, WS_GUID, WS_GUID_LEN);
    if (EVP_Digest(text, sizeof(text), md, &md_len, EVP_sha1(), NULL) != 1 || md_len != 20)
        return -EINVAL;
    int n = EVP_EncodeBlock((unsigned char *)out, md, 20);
    RH_ASSERT(n == RH_WS_ACCEPT_LEN);
    return 0;
}

int rh_ws_write_handshake(char *out, size_t out_size, const char *client_key, size_t key_len)
{
    char accept[RH_WS_ACCEPT_LEN + 1];
    int err = rh_ws_accept_key(client_key, key_len, accept);
    if (err) return err;

    int n = snprintf(out, out_size,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n"
                     "\r\n",
                     accept);
    if (n < 0 || (size_t)n >= out_size) return -ENOSPC;
    return n;
}

/* ---- outgoing frames ---- */

uint32_t rh_ws_frame_header(uint8_t out[10], enum rh_ws_opcode op, uint64_t payload_len, bool fin)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (op & 0x0f));
    if (payload_len < 126) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    return 10;
}

struct rh_buf *rh_ws_frame_new(enum rh_ws_opcode op, const void *payload, uint32_t len)
{
    RH_ASSERT(!(op & 0x8) || len <= RH_WS_CONTROL_PAYLOAD_MAX);
    RH_ASSERT(len <= UINT32_MAX - 10);

    uint8_t header[10];
    uint32_t header_len = rh_ws_frame_header(header, op, len, true);
    struct rh_buf *buf = rh_buf_new(header_len + len);
    memcpy(buf->data, header, header_len);
    if (len) memcpy(buf->data + header_len, payload, len);
    buf->len = header_len + len;
    return buf;
}

struct rh_buf *rh_ws_close_frame_new(uint16_t code, const char *reason)
{
    uint8_t payload[RH_WS_CONTROL_PAYLOAD_MAX];
    if (code == 0) return rh_ws_frame_new(RH_WS_OP_CLOSE, NULL, 0);

    size_t reason_len = reason ? strlen(reason) : 0;
    if (reason_len > RH_WS_CLOSE_REASON_MAX) {
        /* Back off to the first byte of the character the limit cuts. */
        reason_len = RH_WS_CLOSE_REASON_MAX;
        while (reason_len > 0 && ((uint8_t)reason[reason_len] & 0xc0) == 0x80)
            reason_len--;
    }
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    if (reason_len) memcpy(payload + 2, reason, reason_len);
    return rh_ws_frame_new(RH_WS_OP_CLOSE, payload, (uint32_t)(2 + reason_len));
}

/* ---- incoming frames ---- */

int rh_ws_in_init(struct rh_ws_in *in, uint32_t message_bytes_max)
{
    *in = (struct rh_ws_in){
        .message_bytes_max = message_bytes_max ? message_bytes_max : RH_WS_MESSAGE_BYTES_DEFAULT,
        .state = WS_IN_OPEN,
    };
    return 0;
}

void rh_ws_in_destroy(struct rh_ws_in *in)
{
    busy_free(in->busy);
    in->busy = NULL;
}

ssize_t rh_ws_in_feed(struct rh_ws_in *in, const uint8_t *data, size_t len,
                      const struct rh_ws_in_ops *ops, void *ctx)
{
    if (in->state != WS_IN_OPEN) return -EPIPE;
    if (len == 0) return -EAGAIN;
    if (!in->busy) in->busy = busy_new();

    struct ws_in_busy *busy = in->busy;
    busy->input = data;
    busy->input_len = len;
    busy->input_idx = 0;
    for (;;) {
        struct wslay_frame_iocb iocb;
        ssize_t n = wslay_frame_recv(busy->frame, &iocb);
        if (n == WSLAY_ERR_WANT_READ) break;
        if (n < 0) {
            /* The frame API rejects only headers: a control frame over 125 bytes or without
             * FIN, a length not in its shortest form, or a 64-bit length with the top bit. */
            return fail(in, -EPROTO, RH_WS_CLOSE_PROTOCOL_ERROR, "malformed frame header");
        }
        int err = frame_chunk(in, &iocb, ops, ctx);
        if (err) {
            /* Bad input has already failed the parser; a callback's error fails it here. */
            if (in->state != WS_IN_FAILED) {
                in->state = WS_IN_FAILED;
                rh_ws_in_destroy(in);
            }
            return err;
        }
        if (in->state != WS_IN_OPEN) {
            /* A close frame: whatever follows it is dropped. */
            rh_ws_in_destroy(in);
            return (ssize_t)len;
        }
    }
    /* wslay pulls until our input is gone before it asks for more. */
    RH_DEBUG_ASSERT(busy->input_idx == len);
    busy->input = NULL;
    if (busy_is_done(busy)) rh_ws_in_destroy(in);
    return (ssize_t)len;
}

/* ---- helpers ---- */

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

static struct ws_in_busy *busy_new(void)
{
    static const struct wslay_frame_callbacks callbacks = {.recv_callback = recv_from_input};
    struct ws_in_busy *busy = rh_calloc(1, sizeof(*busy));
    /* wslay allocates with malloc and fails only when it returns NULL; treat that as
     * rh_alloc treats exhaustion. */
    RH_ASSERT(wslay_frame_context_init(&busy->frame, &callbacks, busy) == 0);
    return busy;
}

static void busy_free(struct ws_in_busy *busy)
{
    if (!busy) return;
    wslay_frame_context_free(busy->frame);
    rh_free(busy->msg);
    rh_free(busy);
}

static bool busy_is_done(const struct ws_in_busy *busy)
{
    return busy->held_bytes == 0 && !busy->in_frame && busy->msg_op == 0;
}

/* wslay's recv callback: hands over as much of the current input as fits. Returning 0 makes
 * wslay_frame_recv report WSLAY_ERR_WANT_READ, which ends the feed. */
static ssize_t recv_from_input(uint8_t *buf, size_t len, int flags, void *user_data)
{
    struct ws_in_busy *busy = user_data;
    (void)flags;
    size_t n = busy->input_len - busy->input_idx;
    if (n > len) n = len;
    if (n == 0) return 0;
    memcpy(buf, busy->input + busy->input_idx, n);
    busy->input_idx += n;
    busy->held_bytes += n;
    return (ssize_t)n;
}

static int fail(struct rh_ws_in *in, int err, uint16_t code, const char *reason)
{
    in->state = WS_IN_FAILED;
    in->close_code = code;
    in->reason = reason;
    rh_ws_in_destroy(in);
    return err;
}

/* Checks a frame when its first payload chunk (or its empty payload) arrives. */
static int frame_start(struct rh_ws_in *in, const struct wslay_frame_iocb *iocb,
                       const struct rh_ws_in_ops *ops)
{
    struct ws_in_busy *busy = in->busy;
    const int code = RH_WS_CLOSE_PROTOCOL_ERROR;

    if (iocb->rsv != 0) return fail(in, -EPROTO, code, "reserved bits set");
    if (!iocb->mask) return fail(in, -EPROTO, code, "client frame not masked");
    switch (iocb->opcode) {
    case RH_WS_OP_CONTINUATION:
        if (busy->msg_op == 0) return fail(in, -EPROTO, code, "continuation without start");
        break;
    case RH_WS_OP_TEXT:
    case RH_WS_OP_BINARY:
        if (busy->msg_op != 0) return fail(in, -EPROTO, code, "new message inside fragments");
        break;
    case RH_WS_OP_CLOSE:
    case RH_WS_OP_PING:
    case RH_WS_OP_PONG:
        break;
    default:
        return fail(in, -EPROTO, code, "reserved opcode");
    }

    /* Checked before anything is allocated for the payload. */
    if (!ops->on_data && !wslay_is_ctrl_frame(iocb->opcode) &&
        iocb->payload_length > (uint64_t)in->message_bytes_max - busy->msg_len)
        return fail(in, -EMSGSIZE, RH_WS_CLOSE_MESSAGE_TOO_BIG, "message too big");

    if (iocb->opcode == RH_WS_OP_TEXT || iocb->opcode == RH_WS_OP_BINARY) {
        busy->msg_op = iocb->opcode;
        busy->msg_len = 0;
        busy->utf8_state = 0;
    }
    busy->in_frame = true;
    busy->frame_fin = iocb->fin;
    busy->frame_op = iocb->opcode;
    busy->frame_payload_len = iocb->payload_length;
    busy->frame_payload_off = 0;
    busy->ctrl_len = 0;
    return 0;
}

/* One piece of a frame's payload from wslay, already unmasked. */
static int frame_chunk(struct rh_ws_in *in, const struct wslay_frame_iocb *iocb,
                       const struct rh_ws_in_ops *ops, void *ctx)
{
    struct ws_in_busy *busy = in->busy;
    int err;

    if (!busy->in_frame && (err = frame_start(in, iocb, ops))) return err;
    RH_DEBUG_ASSERT(busy->frame_payload_off + iocb->data_length <= busy->frame_payload_len);
    busy->frame_payload_off += iocb->data_length;
    bool is_frame_end = busy->frame_payload_off == busy->frame_payload_len;
    if (is_frame_end) {
        uint64_t frame_len = frame_header_len(busy->frame_payload_len) + busy->frame_payload_len;
        RH_DEBUG_ASSERT(busy->held_bytes >= frame_len);
        busy->held_bytes -= frame_len;
        busy->in_frame = false;
    }

    if (!wslay_is_ctrl_frame(busy->frame_op))
        return data_chunk(in, iocb->data, iocb->data_length, ops, ctx);
    memcpy(busy->ctrl + busy->ctrl_len, iocb->data, iocb->data_length);
    busy->ctrl_len += (uint8_t)iocb->data_length;
    return is_frame_end ? control_end(in, ops, ctx) : 0;
}

static int data_chunk(struct rh_ws_in *in, const uint8_t *data, size_t len,
                      const struct rh_ws_in_ops *ops, void *ctx)
{
    struct ws_in_busy *busy = in->busy;
    bool is_message_end = !busy->in_frame && busy->frame_fin;

    if (busy->msg_op == RH_WS_OP_TEXT) {
        if (!utf8_check(&busy->utf8_state, data, len) || (is_message_end && busy->utf8_state))
            return fail(in, -EPROTO, RH_WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8 in text");
    }

    enum rh_ws_opcode op = busy->msg_op;
    if (ops->on_data) {
        if (is_message_end) busy->msg_op = 0;
        return ops->on_data(ctx, op, data, len, is_message_end);
    }
    /* A whole message in one piece is handed over from wslay's buffer without a copy. */
    if (is_message_end && busy->msg_len == 0) {
        busy->msg_op = 0;
        return ops->on_message(ctx, op, data, len);
    }

    if (len > busy->msg_cap - busy->msg_len) {
        /* frame_start() bounded msg_len + the frame by message_bytes_max. */
        uint64_t cap = busy->msg_cap ? (uint64_t)busy->msg_cap * 2 : WS_MSG_CAP_0;
        if (cap < (uint64_t)busy->msg_len + len) cap = (uint64_t)busy->msg_len + len;
        if (cap > in->message_bytes_max) cap = in->message_bytes_max;
        busy->msg = rh_realloc(busy->msg, cap);
        busy->msg_cap = (uint32_t)cap;
    }
    if (len) memcpy(busy->msg + busy->msg_len, data, len);
    busy->msg_len += (uint32_t)len;
    if (!is_message_end) return 0;

    uint32_t msg_len = busy->msg_len;
    busy->msg_op = 0;
    busy->msg_len = 0;
    return ops->on_message(ctx, op, busy->msg, msg_len);
}

static int control_end(struct rh_ws_in *in, const struct rh_ws_in_ops *ops, void *ctx)
{
    struct ws_in_busy *busy = in->busy;
    switch (busy->frame_op) {
    case RH_WS_OP_PING:
        return ops->on_ping ? ops->on_ping(ctx, busy->ctrl, busy->ctrl_len) : 0;
    case RH_WS_OP_PONG:
        return 0; /* unsolicited or not, a pong needs no answer */
    default:
        return close_received(in, ops, ctx);
    }
}

static int close_received(struct rh_ws_in *in, const struct rh_ws_in_ops *ops, void *ctx)
{
    struct ws_in_busy *busy = in->busy;
    uint16_t code = RH_WS_CLOSE_NO_STATUS;
    uint32_t utf8_state = 0;
    const char *reason = "";
    size_t reason_len = 0;

    if (busy->ctrl_len == 1)
        return fail(in, -EPROTO, RH_WS_CLOSE_PROTOCOL_ERROR, "close payload of one byte");
    if (busy->ctrl_len >= 2) {
        code = (uint16_t)(busy->ctrl[0] << 8 | busy->ctrl[1]);
        reason = (const char *)busy->ctrl + 2;
        reason_len = busy->ctrl_len - 2u;
        if (!is_valid_close_code(code))
            return fail(in, -EPROTO, RH_WS_CLOSE_PROTOCOL_ERROR, "invalid close code");
        if (!utf8_check(&utf8_state, busy->ctrl + 2, reason_len) || utf8_state)
            return fail(in, -EPROTO, RH_WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8 in reason");
    }
    in->state = WS_IN_CLOSED;
    return ops->on_close ? ops->on_close(ctx, code, reason, reason_len) : 0;
}

/* Codes a peer may send (RFC 6455 §7.4 and the IANA registry): 1004-1006 and 1015 are never
 * on the wire, 1016-2999 are unassigned, 3000-4999 belong to libraries and applications. */
static bool is_valid_close_code(uint16_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* Header of a masked client frame; wslay accepts lengths only in their shortest encoding. */
static uint32_t frame_header_len(uint64_t payload_len)
{
    uint32_t len = 2 + 4;
    if (payload_len >= 126) len += payload_len <= 0xffff ? 2 : 8;
    return len;
}

/*
 * Incremental UTF-8 check (RFC 3629): rejects overlong forms, surrogates and code points over
 * U+10FFFF as soon as the offending byte arrives. @state carries a character cut between
 * chunks: 0 between characters, else bits 0-7 the continuation bytes still due and bits 8-15,
 * 16-23 the range allowed for the next one. Returns false on the first invalid byte.
 */
static bool utf8_check(uint32_t *state, const uint8_t *p, size_t len)
{
#define UTF8_WANT(n, lo, hi) ((uint32_t)(n) | (uint32_t)(lo) << 8 | (uint32_t)(hi) << 16)
    uint32_t s = *state;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = p[i];
        if (s == 0) {
            if (b < 0x80) continue;
            if (b >= 0xc2 && b <= 0xdf)
                s = UTF8_WANT(1, 0x80, 0xbf);
            else if (b == 0xe0)
                s = UTF8_WANT(2, 0xa0, 0xbf); /* no overlong 3-byte forms */
            else if (b == 0xed)
                s = UTF8_WANT(2, 0x80, 0x9f); /* no surrogates */
            else if (b >= 0xe1 && b <= 0xef)
                s = UTF8_WANT(2, 0x80, 0xbf);
            else if (b == 0xf0)
                s = UTF8_WANT(3, 0x90, 0xbf); /* no overlong 4-byte forms */
            else if (b >= 0xf1 && b <= 0xf3)
                s = UTF8_WANT(3, 0x80, 0xbf);
            else if (b == 0xf4)
                s = UTF8_WANT(3, 0x80, 0x8f); /* nothing past U+10FFFF */
            else
                return false;
            continue;
        }
        if (b < ((s >> 8) & 0xff) || b > ((s >> 16) & 0xff)) return false;
        uint32_t due = (s & 0xff) - 1;
        s = due ? UTF8_WANT(due, 0x80, 0xbf) : 0;
    }
    *state = s;
    return true;
#undef UTF8_WANT
}
