/*
 * transports/hub_msgpack.c - frames and parses MessagePack hub messages with a small validating
 * reader of our own, and writes them with msgpack-c's packer. msgpack-c's unpacker builds object
 * trees in zones it allocates and gives no byte offsets; forwarding needs each value's exact
 * bytes, so the reader walks the wire form instead, checking every length against the bytes
 * left before using it and bounding nesting, and allocates nothing.
 */
#include "transports/hub_msgpack.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <msgpack.h>

/* A cursor over one message body. */
struct reader {
    const uint8_t *at;
    const uint8_t *end;
    const char **reason;
};

static ssize_t read_prefix(const uint8_t *data, size_t len, uint32_t *body_len,
                           const char **reason);
static int parse_body(const uint8_t *body, uint32_t len, struct rh_hub_msg *m, const char **reason);
static int parse_invocation(struct reader *r, uint32_t count, struct rh_hub_msg *m);
static int parse_stream_item(struct reader *r, uint32_t count, struct rh_hub_msg *m);
static int parse_completion(struct reader *r, uint32_t count, struct rh_hub_msg *m);
static int parse_cancel(struct reader *r, uint32_t count, struct rh_hub_msg *m);
static int parse_close(struct reader *r, uint32_t count, struct rh_hub_msg *m);
static int parse_sequence(struct reader *r, uint32_t count, struct rh_hub_msg *m);
static int read_headers(struct reader *r);
static int read_invocation_id(struct reader *r, struct rh_hub_msg *m, bool required);
static int read_args(struct reader *r, struct rh_hub_msg *m);
static int read_stream_ids(struct reader *r, struct rh_hub_msg *m);
static int read_int(struct reader *r, int64_t *v, const char *what);
static int read_str(struct reader *r, struct rh_span *s, bool nil_ok, const char *what);
static int read_value(struct reader *r, uint32_t depth, struct rh_span *value);
static ssize_t value_len(const uint8_t *data, size_t len, uint32_t depth, const char **reason);
static uint64_t load_be(const uint8_t *p, uint32_t width);
static int fail(const char **reason, const char *why);
static int pack_to_buf(void *data, const char *bytes, size_t len);
static uint32_t frame_begin(struct rh_buf **out, msgpack_packer *pk);
static void frame_end(struct rh_buf **out, uint32_t start);
static void pack_span_str(msgpack_packer *pk, struct rh_span s);
static void pack_raw(struct rh_buf **out, struct rh_span value);
static void write_sequence_msg(struct rh_buf **out, enum rh_hub_type type, int64_t sequence_id);

ssize_t rh_hub_msgpack_parse(const uint8_t *data, size_t len, uint32_t max_bytes,
                             struct rh_hub_msg *msg, const char **reason)
{
    uint32_t body_len;
    ssize_t prefix_len = read_prefix(data, len, &body_len, reason);
    if (prefix_len < 0) return prefix_len;
    if (body_len == 0) return fail(reason, "zero-length message");
    if (body_len > max_bytes) {
        *reason = "message too large";
        return -EMSGSIZE;
    }
    if (len - (size_t)prefix_len < body_len) return -EAGAIN;

    /* The scratch space is not used by this codec: clearing it would cost a kilobyte a message. */
    memset(msg, 0, offsetof(struct rh_hub_msg, scratch));
    msg->codec = RH_HUB_MSGPACK;
    int rc = parse_body(data + prefix_len, body_len, msg, reason);
    if (rc < 0) return rc;
    return prefix_len + (ssize_t)body_len;
}

ssize_t rh_hub_msgpack_arg_string(const struct rh_hub_msg *m, uint32_t idx, uint8_t *out,
                                  size_t cap)
{
    struct rh_hub_msgpack_head h;
    if (m->codec != RH_HUB_MSGPACK) return -EINVAL;
    if (idx >= m->arg_count) return -ENOENT;
    struct rh_span v = m->args[idx];
    if (rh_hub_msgpack_read_head(v.ptr, v.len, &h) < 0 || h.kind != RH_HUB_MSGPACK_STR)
        return -EINVAL;
    if (h.data_len > cap) return -EMSGSIZE;
    if (h.data_len) memcpy(out, v.ptr + h.head_len, h.data_len);
    return h.data_len;
}

ssize_t rh_hub_msgpack_value_len(const uint8_t *data, size_t len, const char **reason)
{
    return value_len(data, len, 1, reason);
}

int rh_hub_msgpack_read_head(const uint8_t *data, size_t len, struct rh_hub_msgpack_head *h)
{
    if (len == 0) return -EPROTO;
    memset(h, 0, sizeof(*h));
    uint8_t b = data[0];
    uint32_t width = 0; /* bytes of the length or value field after the type byte */

    if (b <= 0x7f) {
        h->kind = RH_HUB_MSGPACK_UINT;
        h->u = b;
    } else if (b <= 0x8f) {
        h->kind = RH_HUB_MSGPACK_MAP;
        h->count = b & 0x0f;
    } else if (b <= 0x9f) {
        h->kind = RH_HUB_MSGPACK_ARRAY;
        h->count = b & 0x0f;
    } else if (b <= 0xbf) {
        h->kind = RH_HUB_MSGPACK_STR;
        h->data_len = b & 0x1f;
    } else if (b >= 0xe0) {
        h->kind = RH_HUB_MSGPACK_INT;
        h->i = (int8_t)b;
    } else {
        switch (b) {
        case 0xc0:
            h->kind = RH_HUB_MSGPACK_NIL;
            break;
        case 0xc2:
        case 0xc3:
            h->kind = RH_HUB_MSGPACK_BOOL;
            h->b = b == 0xc3;
            break;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            h->kind = RH_HUB_MSGPACK_BIN;
            width = 1u << (b - 0xc4);
            break;
        case 0xc7:
        case 0xc8:
        case 0xc9:
            h->kind = RH_HUB_MSGPACK_EXT;
            width = 1u << (b - 0xc7);
            break;
        case 0xca:
            h->kind = RH_HUB_MSGPACK_FLOAT32;
            width = 4;
            break;
        case 0xcb:
            h->kind = RH_HUB_MSGPACK_FLOAT64;
            width = 8;
            break;
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
            h->kind = RH_HUB_MSGPACK_UINT;
            width = 1u << (b - 0xcc);
            break;
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3:
            h->kind = RH_HUB_MSGPACK_INT;
            width = 1u << (b - 0xd0);
            break;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
            h->kind = RH_HUB_MSGPACK_EXT;
            h->data_len = 1u << (b - 0xd4);
            break;
        case 0xd9:
        case 0xda:
        case 0xdb:
            h->kind = RH_HUB_MSGPACK_STR;
            width = 1u << (b - 0xd9);
            break;
        case 0xdc:
        case 0xdd:
            h->kind = RH_HUB_MSGPACK_ARRAY;
            width = 2u << (b - 0xdc);
            break;
        case 0xde:
        case 0xdf:
            h->kind = RH_HUB_MSGPACK_MAP;
            width = 2u << (b - 0xde);
            break;
        default: /* 0xc1 */
            return -EPROTO;
        }
    }

    if (len - 1 < width) return -EPROTO;
    uint64_t field = load_be(data + 1, width);
    h->head_len = 1 + width;
    switch (h->kind) {
    case RH_HUB_MSGPACK_UINT:
        if (width) h->u = field;
        break;
    case RH_HUB_MSGPACK_INT:
        if (width == 1) h->i = (int8_t)field;
        if (width == 2) h->i = (int16_t)field;
        if (width == 4) h->i = (int32_t)field;
        if (width == 8) h->i = (int64_t)field;
        break;
    case RH_HUB_MSGPACK_FLOAT32: {
        uint32_t bits = (uint32_t)field;
        float f;
        memcpy(&f, &bits, sizeof(f));
        h->f = f;
        break;
    }
    case RH_HUB_MSGPACK_FLOAT64:
        memcpy(&h->f, &field, sizeof(h->f));
        break;
    case RH_HUB_MSGPACK_EXT:
        if (width) h->data_len = (uint32_t)field;
        if (len - h->head_len < 1) return -EPROTO;
        h->ext_type = (int8_t)data[h->head_len];
        h->head_len++;
        break;
    case RH_HUB_MSGPACK_STR:
    case RH_HUB_MSGPACK_BIN:
        if (width) h->data_len = (uint32_t)field;
        break;
    case RH_HUB_MSGPACK_ARRAY:
    case RH_HUB_MSGPACK_MAP:
        if (width) h->count = (uint32_t)field;
        break;
    default:
        break;
    }

    /* Every element takes at least a byte: a count the bytes left cannot hold is refused here,
     * before anyone loops over it. */
    size_t left = len - h->head_len;
    if (h->data_len > left) return -EPROTO;
    if (h->kind == RH_HUB_MSGPACK_ARRAY && h->count > left) return -EPROTO;
    if (h->kind == RH_HUB_MSGPACK_MAP && 2 * (uint64_t)h->count > left) return -EPROTO;
    return 0;
}

void rh_hub_msgpack_write_invocation(struct rh_buf **out, struct rh_span invocation_id,
                                     struct rh_span target, const struct rh_span *args,
                                     uint32_t arg_count)
{
    msgpack_packer pk;
    uint32_t start = frame_begin(out, &pk);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_int(&pk, RH_HUB_INVOCATION);
    msgpack_pack_map(&pk, 0);
    if (invocation_id.len)
        pack_span_str(&pk, invocation_id);
    else
        msgpack_pack_nil(&pk);
    pack_span_str(&pk, target);
    msgpack_pack_array(&pk, arg_count);
    for (uint32_t i = 0; i < arg_count; i++)
        pack_raw(out, args[i]);
    msgpack_pack_array(&pk, 0);
    frame_end(out, start);
}

void rh_hub_msgpack_write_completion(struct rh_buf **out, struct rh_span invocation_id,
                                     enum rh_hub_result kind, struct rh_span payload)
{
    RH_ASSERT(kind == RH_HUB_RESULT_ERROR || kind == RH_HUB_RESULT_VOID ||
              kind == RH_HUB_RESULT_VALUE);
    msgpack_packer pk;
    uint32_t start = frame_begin(out, &pk);
    msgpack_pack_array(&pk, kind == RH_HUB_RESULT_VOID ? 4 : 5);
    msgpack_pack_int(&pk, RH_HUB_COMPLETION);
    msgpack_pack_map(&pk, 0);
    pack_span_str(&pk, invocation_id);
    msgpack_pack_int(&pk, (int)kind);
    if (kind == RH_HUB_RESULT_ERROR) pack_span_str(&pk, payload);
    if (kind == RH_HUB_RESULT_VALUE) pack_raw(out, payload);
    frame_end(out, start);
}

void rh_hub_msgpack_write_stream_item(struct rh_buf **out, struct rh_span invocation_id,
                                      struct rh_span item)
{
    msgpack_packer pk;
    uint32_t start = frame_begin(out, &pk);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, RH_HUB_STREAM_ITEM);
    msgpack_pack_map(&pk, 0);
    pack_span_str(&pk, invocation_id);
    pack_raw(out, item);
    frame_end(out, start);
}

void rh_hub_msgpack_write_ping(struct rh_buf **out)
{
    static const uint8_t ping[] = {0x02, 0x91, RH_HUB_PING};
    rh_buf_append(out, ping, sizeof(ping));
}

void rh_hub_msgpack_write_close(struct rh_buf **out, struct rh_span error, bool allow_reconnect)
{
    msgpack_packer pk;
    uint32_t start = frame_begin(out, &pk);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int(&pk, RH_HUB_CLOSE);
    if (error.len)
        pack_span_str(&pk, error);
    else
        msgpack_pack_nil(&pk);
    if (allow_reconnect)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    frame_end(out, start);
}

void rh_hub_msgpack_write_ack(struct rh_buf **out, int64_t sequence_id)
{
    write_sequence_msg(out, RH_HUB_ACK, sequence_id);
}

void rh_hub_msgpack_write_sequence(struct rh_buf **out, int64_t sequence_id)
{
    write_sequence_msg(out, RH_HUB_SEQUENCE, sequence_id);
}

/* Spec §3.2: up to 5 bytes of 7 bits, little end first; the 5th byte holds the top 3 bits, so
 * it is at most 7 (and so never has the continuation bit). */
static ssize_t read_prefix(const uint8_t *data, size_t len, uint32_t *body_len, const char **reason)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < RH_HUB_MSGPACK_VARINT_MAX; i++) {
        if (i == len) return -EAGAIN;
        uint8_t b = data[i];
        if (i == RH_HUB_MSGPACK_VARINT_MAX - 1 && b > 0x07)
            return fail(reason, "invalid length prefix");
        v |= (uint32_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *body_len = v;
            return i + 1;
        }
    }
    return fail(reason, "invalid length prefix"); /* not reached: the 5th byte ends it */
}

static int parse_body(const uint8_t *body, uint32_t len, struct rh_hub_msg *m, const char **reason)
{
    struct reader r = {.at = body, .end = body + len, .reason = reason};
    struct rh_hub_msgpack_head h;
    if (rh_hub_msgpack_read_head(body, len, &h) < 0 || h.kind != RH_HUB_MSGPACK_ARRAY)
        return fail(reason, "message is not an array");
    if (h.count == 0) return fail(reason, "message array is empty");
    r.at += h.head_len;

    int64_t type;
    int rc = read_int(&r, &type, "message type is not an integer");
    if (rc == -ERANGE)
        type = RH_HUB_UNKNOWN;
    else if (rc < 0)
        return rc;

    int used; /* elements read, the type included; what follows is ignored */
    switch (type) {
    case RH_HUB_INVOCATION:
    case RH_HUB_STREAM_INVOCATION:
        m->type = (enum rh_hub_type)type;
        used = parse_invocation(&r, h.count, m);
        break;
    case RH_HUB_STREAM_ITEM:
        used = parse_stream_item(&r, h.count, m);
        break;
    case RH_HUB_COMPLETION:
        used = parse_completion(&r, h.count, m);
        break;
    case RH_HUB_CANCEL_INVOCATION:
        used = parse_cancel(&r, h.count, m);
        break;
    case RH_HUB_PING:
        m->type = RH_HUB_PING;
        used = 1;
        break;
    case RH_HUB_CLOSE:
        used = parse_close(&r, h.count, m);
        break;
    case RH_HUB_ACK:
    case RH_HUB_SEQUENCE:
        m->type = (enum rh_hub_type)type;
        used = parse_sequence(&r, h.count, m);
        break;
    default:
        m->type = RH_HUB_UNKNOWN;
        used = 1;
        break;
    }
    if (used < 0) return used;

    struct rh_span ignored;
    for (uint32_t i = (uint32_t)used; i < h.count; i++) {
        rc = read_value(&r, 2, &ignored);
        if (rc < 0) return rc;
    }
    if (r.at != r.end) return fail(reason, "bytes after the message array");
    return 0;
}

/* [type, Headers, InvocationId, Target, [Arguments], [StreamIds]?] */
static int parse_invocation(struct reader *r, uint32_t count, struct rh_hub_msg *m)
{
    int rc;
    if (count < 5) return fail(r->reason, "invocation has too few elements");
    if ((rc = read_headers(r)) < 0 ||
        (rc = read_invocation_id(r, m, m->type == RH_HUB_STREAM_INVOCATION)) < 0 ||
        (rc = read_str(r, &m->target, false, "invalid target")) < 0 || (rc = read_args(r, m)) < 0)
        return rc;
    if (m->target.len == 0) return fail(r->reason, "invalid target");
    if (count == 5) return 5;
    if ((rc = read_stream_ids(r, m)) < 0) return rc;
    return 6;
}

/* [2, Headers, InvocationId, Item] */
static int parse_stream_item(struct reader *r, uint32_t count, struct rh_hub_msg *m)
{
    int rc;
    m->type = RH_HUB_STREAM_ITEM;
    if (count < 4) return fail(r->reason, "stream item has too few elements");
    if ((rc = read_headers(r)) < 0 || (rc = read_invocation_id(r, m, true)) < 0 ||
        (rc = read_value(r, 2, &m->result)) < 0)
        return rc;
    return 4;
}

/* [3, Headers, InvocationId, ResultKind, Result?]: kind 1 error string, 2 void, 3 a value. */
static int parse_completion(struct reader *r, uint32_t count, struct rh_hub_msg *m)
{
    int rc;
    int64_t kind;
    m->type = RH_HUB_COMPLETION;
    if (count < 4) return fail(r->reason, "completion has too few elements");
    if ((rc = read_headers(r)) < 0 || (rc = read_invocation_id(r, m, true)) < 0) return rc;
    if (read_int(r, &kind, "invalid result kind") < 0)
        return fail(r->reason, "invalid result kind");
    switch (kind) {
    case RH_HUB_RESULT_VOID:
        m->result_kind = RH_HUB_RESULT_VOID;
        return 4;
    case RH_HUB_RESULT_ERROR:
        m->result_kind = RH_HUB_RESULT_ERROR;
        if (count < 5) return fail(r->reason, "completion error is missing");
        rc = read_str(r, &m->error, false, "invalid completion error");
        return rc < 0 ? rc : 5;
    case RH_HUB_RESULT_VALUE:
        m->result_kind = RH_HUB_RESULT_VALUE;
        if (count < 5) return fail(r->reason, "completion result is missing");
        rc = read_value(r, 2, &m->result);
        return rc < 0 ? rc : 5;
    default:
        return fail(r->reason, "invalid result kind");
    }
}

/* [5, Headers, InvocationId] */
static int parse_cancel(struct reader *r, uint32_t count, struct rh_hub_msg *m)
{
    int rc;
    m->type = RH_HUB_CANCEL_INVOCATION;
    if (count < 3) return fail(r->reason, "cancel invocation has too few elements");
    if ((rc = read_headers(r)) < 0 || (rc = read_invocation_id(r, m, true)) < 0) return rc;
    return 3;
}

/* [7, Error|nil, AllowReconnect?] */
static int parse_close(struct reader *r, uint32_t count, struct rh_hub_msg *m)
{
    struct rh_hub_msgpack_head h;
    int rc;
    m->type = RH_HUB_CLOSE;
    if (count < 2) return fail(r->reason, "close has too few elements");
    if ((rc = read_str(r, &m->error, true, "invalid close error")) < 0) return rc;
    if (count == 2) return 2;
    if (rh_hub_msgpack_read_head(r->at, (size_t)(r->end - r->at), &h) < 0 ||
        h.kind != RH_HUB_MSGPACK_BOOL)
        return fail(r->reason, "invalid allowReconnect");
    r->at += h.head_len;
    m->allow_reconnect = h.b;
    return 3;
}

/* [8|9, SequenceId] */
static int parse_sequence(struct reader *r, uint32_t count, struct rh_hub_msg *m)
{
    if (count < 2) return fail(r->reason, "sequence message has too few elements");
    if (read_int(r, &m->sequence_id, "invalid sequence id") < 0)
        return fail(r->reason, "invalid sequence id");
    return 2;
}

/* Headers are a map of str to str (nil allowed, as ASP.NET reads them); nothing here uses
 * them, but the JS decoder requires a map and ASP.NET refuses other keys or values. */
static int read_headers(struct reader *r)
{
    struct rh_hub_msgpack_head h;
    struct rh_span ignored;
    if (rh_hub_msgpack_read_head(r->at, (size_t)(r->end - r->at), &h) < 0 ||
        h.kind != RH_HUB_MSGPACK_MAP)
        return fail(r->reason, "headers are not a map");
    r->at += h.head_len;
    for (uint32_t i = 0; i < h.count; i++) {
        int rc = read_str(r, &ignored, false, "invalid header name");
        if (rc == 0) rc = read_str(r, &ignored, true, "invalid header value");
        if (rc < 0) return rc;
    }
    return 0;
}

static int read_invocation_id(struct reader *r, struct rh_hub_msg *m, bool required)
{
    int rc = read_str(r, &m->invocation_id, true, "invalid invocation id");
    if (rc < 0) return rc;
    if (required && m->invocation_id.len == 0) return fail(r->reason, "missing invocation id");
    return 0;
}

static int read_args(struct reader *r, struct rh_hub_msg *m)
{
    struct rh_hub_msgpack_head h;
    if (rh_hub_msgpack_read_head(r->at, (size_t)(r->end - r->at), &h) < 0 ||
        h.kind != RH_HUB_MSGPACK_ARRAY)
        return fail(r->reason, "arguments are not an array");
    if (h.count > RH_HUB_ARGS_MAX) {
        *r->reason = "too many arguments";
        return -EMSGSIZE;
    }
    r->at += h.head_len;
    for (uint32_t i = 0; i < h.count; i++) {
        int rc = read_value(r, 3, &m->args[i]);
        if (rc < 0) return rc;
    }
    m->arg_count = h.count;
    return 0;
}

/* An array of strings; nil is taken as none, as an absent element would be. */
static int read_stream_ids(struct reader *r, struct rh_hub_msg *m)
{
    struct rh_hub_msgpack_head h;
    if (rh_hub_msgpack_read_head(r->at, (size_t)(r->end - r->at), &h) < 0)
        return fail(r->reason, "invalid stream ids");
    if (h.kind == RH_HUB_MSGPACK_NIL) {
        r->at += h.head_len;
        return 0;
    }
    if (h.kind != RH_HUB_MSGPACK_ARRAY) return fail(r->reason, "stream ids are not an array");
    if (h.count > RH_HUB_STREAMS_MAX) {
        *r->reason = "too many stream ids";
        return -EMSGSIZE;
    }
    r->at += h.head_len;
    for (uint32_t i = 0; i < h.count; i++) {
        int rc = read_str(r, &m->stream_ids[i], false, "invalid stream id");
        if (rc < 0) return rc;
    }
    m->stream_id_count = h.count;
    return 0;
}

/* Any int width. Returns -ERANGE (having consumed it) for a uint64 above INT64_MAX. */
static int read_int(struct reader *r, int64_t *v, const char *what)
{
    struct rh_hub_msgpack_head h;
    if (rh_hub_msgpack_read_head(r->at, (size_t)(r->end - r->at), &h) < 0)
        return fail(r->reason, what);
    if (h.kind == RH_HUB_MSGPACK_INT) {
        *v = h.i;
    } else if (h.kind == RH_HUB_MSGPACK_UINT) {
        if (h.u > INT64_MAX) {
            r->at += h.head_len;
            *r->reason = what;
            return -ERANGE;
        }
        *v = (int64_t)h.u;
    } else {
        return fail(r->reason, what);
    }
    r->at += h.head_len;
    return 0;
}

/* A str, its bytes as they are; with @nil_ok, nil reads as an empty span. */
static int read_str(struct reader *r, struct rh_span *s, bool nil_ok, const char *what)
{
    struct rh_hub_msgpack_head h;
    if (rh_hub_msgpack_read_head(r->at, (size_t)(r->end - r->at), &h) < 0)
        return fail(r->reason, what);
    if (h.kind == RH_HUB_MSGPACK_NIL && nil_ok) {
        *s = rh_span_make(NULL, 0);
    } else if (h.kind == RH_HUB_MSGPACK_STR) {
        *s = rh_span_make(r->at + h.head_len, h.data_len);
    } else {
        return fail(r->reason, what);
    }
    r->at += h.head_len + h.data_len;
    return 0;
}

/* Any well-formed value at nesting @depth; @value spans its bytes. */
static int read_value(struct reader *r, uint32_t depth, struct rh_span *value)
{
    ssize_t n = value_len(r->at, (size_t)(r->end - r->at), depth, r->reason);
    if (n < 0) return (int)n;
    *value = rh_span_make(r->at, (uint32_t)n);
    r->at += n;
    return 0;
}

static ssize_t value_len(const uint8_t *data, size_t len, uint32_t depth, const char **reason)
{
    struct rh_hub_msgpack_head h;
    if (rh_hub_msgpack_read_head(data, len, &h) < 0) return fail(reason, "invalid MessagePack");
    size_t at = (size_t)h.head_len + h.data_len;
    if (h.kind != RH_HUB_MSGPACK_ARRAY && h.kind != RH_HUB_MSGPACK_MAP) return (ssize_t)at;

    if (depth > RH_HUB_MSGPACK_DEPTH_MAX) return fail(reason, "MessagePack nested too deep");
    uint64_t elements = h.kind == RH_HUB_MSGPACK_MAP ? 2 * (uint64_t)h.count : h.count;
    for (uint64_t i = 0; i < elements; i++) {
        ssize_t n = value_len(data + at, len - at, depth + 1, reason);
        if (n < 0) return n;
        at += (size_t)n;
    }
    return (ssize_t)at;
}

static uint64_t load_be(const uint8_t *p, uint32_t width)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < width; i++)
        v = v << 8 | p[i];
    return v;
}

static int fail(const char **reason, const char *why)
{
    *reason = why;
    return -EPROTO;
}

static int pack_to_buf(void *data, const char *bytes, size_t len)
{
    RH_ASSERT(len <= UINT32_MAX);
    rh_buf_append(data, bytes, (uint32_t)len);
    return 0;
}

static uint32_t frame_begin(struct rh_buf **out, msgpack_packer *pk)
{
    msgpack_packer_init(pk, out, pack_to_buf);
    return (*out)->len;
}

/* The prefix depends on the body's length, so the body is written first and moved up by the
 * prefix's few bytes: cheaper than sizing every field twice. */
static void frame_end(struct rh_buf **out, uint32_t start)
{
    uint32_t body_len = (*out)->len - start;
    RH_ASSERT(body_len > 0 && body_len <= RH_HUB_MSGPACK_BODY_LEN_MAX);
    uint8_t prefix[RH_HUB_MSGPACK_VARINT_MAX];
    uint32_t prefix_len = 0;
    for (uint32_t v = body_len;; v >>= 7) {
        prefix[prefix_len++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f) break;
    }
    rh_buf_extend(out, prefix_len);
    uint8_t *body = (*out)->data + start;
    memmove(body + prefix_len, body, body_len);
    memcpy(body, prefix, prefix_len);
}

static void pack_span_str(msgpack_packer *pk, struct rh_span s)
{
    msgpack_pack_str(pk, s.len);
    if (s.len) msgpack_pack_str_body(pk, s.ptr, s.len);
}

static void pack_raw(struct rh_buf **out, struct rh_span value)
{
    static const uint8_t nil = 0xc0;
    if (value.len)
        rh_buf_append(out, value.ptr, value.len);
    else
        rh_buf_append(out, &nil, 1);
}

static void write_sequence_msg(struct rh_buf **out, enum rh_hub_type type, int64_t sequence_id)
{
    msgpack_packer pk;
    uint32_t start = frame_begin(out, &pk);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, (int)type);
    msgpack_pack_int64(&pk, sequence_id);
    frame_end(out, start);
}
