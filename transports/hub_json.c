/*
 * transports/hub_json.c - the handshake and the "json" hub protocol of transports/hub_json.h.
 * A record is framed by its 0x1E, validated once by transports/json.c, and its properties are
 * collected by name before anything is checked, since clients write them in any order (the JS
 * client puts "type" last). Property types are checked whatever the message type, as ASP.NET
 * does; which properties are required depends on the type (spec §4).
 */
#include "transports/hub_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "transports/json.h"

/* The properties a record may carry; anything else is ignored. */
enum field {
    FIELD_TYPE,
    FIELD_INVOCATION_ID,
    FIELD_TARGET,
    FIELD_ARGUMENTS,
    FIELD_STREAM_IDS,
    FIELD_ITEM,
    FIELD_RESULT,
    FIELD_ERROR,
    FIELD_ALLOW_RECONNECT,
    FIELD_SEQUENCE_ID,
    FIELD_HEADERS,
    FIELD_COUNT,
};

#define KIND(k)   (1u << (k))
#define KIND_ANY  0xffffu
#define KIND_TEXT (KIND(RH_JSON_STRING) | KIND(RH_JSON_NULL)) /* null reads as absent */

static const struct {
    const char *name;
    uint32_t kinds;        /* KIND() of each JSON kind accepted */
    const char *wrong_why; /* the reason when it has another kind */
} fields[FIELD_COUNT] = {
    [FIELD_TYPE] = {"type", KIND(RH_JSON_NUMBER), "'type' is not a number"},
    [FIELD_INVOCATION_ID] = {"invocationId", KIND_TEXT, "'invocationId' is not a string"},
    [FIELD_TARGET] = {"target", KIND_TEXT, "'target' is not a string"},
    [FIELD_ARGUMENTS] = {"arguments", KIND(RH_JSON_ARRAY), "'arguments' is not an array"},
    [FIELD_STREAM_IDS] = {"streamIds", KIND(RH_JSON_ARRAY) | KIND(RH_JSON_NULL),
                          "'streamIds' is not an array"},
    [FIELD_ITEM] = {"item", KIND_ANY, NULL},
    [FIELD_RESULT] = {"result", KIND_ANY, NULL},
    [FIELD_ERROR] = {"error", KIND_TEXT, "'error' is not a string"},
    [FIELD_ALLOW_RECONNECT] = {"allowReconnect", KIND(RH_JSON_TRUE) | KIND(RH_JSON_FALSE),
                               "'allowReconnect' is not a boolean"},
    [FIELD_SEQUENCE_ID] = {"sequenceId", KIND(RH_JSON_NUMBER), "'sequenceId' is not a number"},
    [FIELD_HEADERS] = {"headers", KIND(RH_JSON_OBJECT), "'headers' is not an object"},
};

/* Raw JSON of each property found in a record; len 0 = absent. */
struct record {
    struct rh_span field[FIELD_COUNT];
};

static ssize_t frame_record(const uint8_t *data, size_t len, uint32_t max_bytes,
                            const char **reason);
static int parse_object(const uint8_t *text, size_t len, struct rh_span *obj, const char **reason);
static int collect_fields(struct rh_span obj, struct record *rec, const char **reason);
static int check_strings(struct rh_span container, const char *why, const char **reason);
static int fill_message(const struct record *rec, struct rh_hub_msg *msg, const char **reason);
static int fill_invocation(const struct record *rec, struct rh_hub_msg *msg, const char **reason);
static int fill_completion(const struct record *rec, struct rh_hub_msg *msg, const char **reason);
static int fill_invocation_id(const struct record *rec, struct rh_hub_msg *msg, bool required,
                              const char **reason);
static int fill_sequence_id(const struct record *rec, struct rh_hub_msg *msg, const char **reason);
static int decode_text(struct rh_hub_msg *msg, struct rh_span raw, struct rh_span *out,
                       const char **reason);
static int fail(const char **reason, int err, const char *why);
static void put(struct rh_buf **out, const char *lit);
static void put_value(struct rh_buf **out, struct rh_span value);
static void put_i64(struct rh_buf **out, int64_t v);
static void put_text_member(struct rh_buf **out, const char *prefix, struct rh_span text);
static void put_end(struct rh_buf **out);

ssize_t rh_hub_handshake_parse(const uint8_t *data, size_t len, uint32_t max_bytes,
                               struct rh_hub_handshake *hs, const char **reason)
{
    const char *ignored;
    if (!reason) reason = &ignored;
    ssize_t record_len = frame_record(data, len, max_bytes, reason);
    if (record_len < 0) return record_len;

    struct rh_span obj, protocol = {0}, version = {0}, key, value;
    if (parse_object(data, (size_t)record_len - 1, &obj, reason) < 0) return -EPROTO;
    struct rh_json_iter it;
    rh_json_iter_init(&it, obj);
    while (rh_json_iter_next(&it, &key, &value)) {
        if (rh_json_string_eq(key, "protocol"))
            protocol = value;
        else if (rh_json_string_eq(key, "version"))
            version = value;
    }

    if (rh_json_kind_of(protocol) != RH_JSON_STRING)
        return fail(reason, -EPROTO, "handshake 'protocol' missing or not a string");
    if (rh_json_kind_of(version) != RH_JSON_NUMBER ||
        rh_json_number_to_i64(version, &hs->version) < 0)
        return fail(reason, -EPROTO, "handshake 'version' missing or not an integer");
    ssize_t n = rh_json_string_decode(protocol, (uint8_t *)hs->protocol, sizeof(hs->protocol) - 1);
    if (n < 0) return fail(reason, -EPROTO, "handshake 'protocol' too long");
    if (memchr(hs->protocol, '\0', (size_t)n))
        return fail(reason, -EPROTO, "handshake 'protocol' has a NUL");
    hs->protocol[n] = '\0';
    return record_len;
}

void rh_hub_handshake_write_ok(struct rh_buf **out)
{
    rh_buf_append(out, "{}\x1e", 3);
}

void rh_hub_handshake_write_error(struct rh_buf **out, const char *error)
{
    put(out, "{\"error\":");
    rh_json_write_string(out, error, strlen(error));
    put_end(out);
}

size_t rh_hub_handshake_error_text(enum rh_hub_handshake_fail fail_kind,
                                   const struct rh_hub_handshake *hs, char *out, size_t cap)
{
    const char *name = hs ? hs->protocol : "";
    int n = 0;
    switch (fail_kind) {
    case RH_HUB_HANDSHAKE_CANCELED:
        n = snprintf(out, cap, "Handshake was canceled.");
        break;
    case RH_HUB_HANDSHAKE_UNEXPECTED:
        n = snprintf(out, cap, "An unexpected error occurred during connection handshake.");
        break;
    case RH_HUB_HANDSHAKE_BAD_PROTOCOL:
        n = snprintf(out, cap, "The protocol '%s' is not supported.", name);
        break;
    case RH_HUB_HANDSHAKE_BAD_VERSION:
        n = snprintf(out, cap,
                     "The server does not support version %" PRId64 " of the '%s' protocol.",
                     hs ? hs->version : 0, name);
        break;
    case RH_HUB_HANDSHAKE_BAD_TRANSFER:
        n = snprintf(out, cap,
                     "Cannot use the '%s' protocol on the current transport. The transport does "
                     "not support '%s' transfer format.",
                     name, strcasecmp(name, "json") == 0 ? "Text" : "Binary");
        break;
    }
    return n < 0 ? 0 : (size_t)n;
}

ssize_t rh_hub_json_parse(const uint8_t *data, size_t len, uint32_t max_bytes,
                          struct rh_hub_msg *msg, const char **reason)
{
    const char *ignored;
    if (!reason) reason = &ignored;
    ssize_t record_len = frame_record(data, len, max_bytes, reason);
    if (record_len < 0) return record_len;

    struct rh_span obj;
    struct record rec = {0};
    if (parse_object(data, (size_t)record_len - 1, &obj, reason) < 0) return -EPROTO;
    if (collect_fields(obj, &rec, reason) < 0) return -EPROTO;

    /* Everything up to the scratch bytes; those are written only as far as they are used. */
    memset(msg, 0, offsetof(struct rh_hub_msg, scratch));
    msg->codec = RH_HUB_JSON;
    int err = fill_message(&rec, msg, reason);
    return err < 0 ? err : record_len;
}

ssize_t rh_hub_json_arg_string(const struct rh_hub_msg *m, uint32_t idx, uint8_t *out, size_t cap)
{
    if (m->codec != RH_HUB_JSON) return -EINVAL;
    if (idx >= m->arg_count) return -ENOENT;
    if (rh_json_kind_of(m->args[idx]) != RH_JSON_STRING) return -EINVAL;
    return rh_json_string_decode(m->args[idx], out, cap);
}

void rh_hub_json_write_invocation(struct rh_buf **out, struct rh_span invocation_id,
                                  struct rh_span target, const struct rh_span *args, uint32_t argc)
{
    put(out, "{\"type\":1");
    if (invocation_id.len) put_text_member(out, ",\"invocationId\":", invocation_id);
    put_text_member(out, ",\"target\":", target);
    put(out, ",\"arguments\":[");
    for (uint32_t i = 0; i < argc; i++) {
        if (i) put(out, ",");
        put_value(out, args[i]);
    }
    put(out, "]");
    put_end(out);
}

void rh_hub_json_write_completion(struct rh_buf **out, struct rh_span invocation_id,
                                  enum rh_hub_result kind, struct rh_span payload)
{
    put(out, "{\"type\":3");
    if (invocation_id.len) put_text_member(out, ",\"invocationId\":", invocation_id);
    if (kind == RH_HUB_RESULT_VALUE) {
        put(out, ",\"result\":");
        put_value(out, payload);
    } else if (kind == RH_HUB_RESULT_ERROR) {
        put(out, ",\"error\":");
        rh_json_write_string(out, payload.ptr, payload.len);
    }
    put_end(out);
}

void rh_hub_json_write_stream_item(struct rh_buf **out, struct rh_span invocation_id,
                                   struct rh_span item)
{
    put(out, "{\"type\":2");
    if (invocation_id.len) put_text_member(out, ",\"invocationId\":", invocation_id);
    put(out, ",\"item\":");
    put_value(out, item);
    put_end(out);
}

void rh_hub_json_write_ping(struct rh_buf **out)
{
    rh_buf_append(out, "{\"type\":6}\x1e", 11);
}

void rh_hub_json_write_close(struct rh_buf **out, struct rh_span error, bool allow_reconnect)
{
    put(out, "{\"type\":7");
    if (error.len) put_text_member(out, ",\"error\":", error);
    if (allow_reconnect) put(out, ",\"allowReconnect\":true");
    put_end(out);
}

void rh_hub_json_write_ack(struct rh_buf **out, int64_t sequence_id)
{
    put(out, "{\"type\":8,\"sequenceId\":");
    put_i64(out, sequence_id);
    put_end(out);
}

void rh_hub_json_write_sequence(struct rh_buf **out, int64_t sequence_id)
{
    put(out, "{\"type\":9,\"sequenceId\":");
    put_i64(out, sequence_id);
    put_end(out);
}

/* Length of the record at the front of @data, 0x1E included, or -EAGAIN/-EMSGSIZE. Only the
 * first @max_bytes + 1 bytes are searched, so a flood without separators costs nothing more. */
static ssize_t frame_record(const uint8_t *data, size_t len, uint32_t max_bytes,
                            const char **reason)
{
    size_t window = len <= max_bytes ? len : (size_t)max_bytes + 1;
    const uint8_t *rs = window ? memchr(data, RH_HUB_RECORD_SEPARATOR, window) : NULL;
    if (rs) return rs - data + 1;
    if (len > max_bytes) return fail(reason, -EMSGSIZE, "message larger than the size limit");
    return -EAGAIN;
}

/* Validates the record text before its 0x1E as exactly one JSON object, whitespace around it
 * allowed, and sets @obj to the object without that whitespace. */
static int parse_object(const uint8_t *text, size_t len, struct rh_span *obj, const char **reason)
{
    ssize_t n = rh_json_value_len(text, len, reason);
    if (n < 0) return -EPROTO;
    size_t start = 0, stop = (size_t)n;
    while (text[start] == ' ' || text[start] == '\t' || text[start] == '\n' || text[start] == '\r')
        start++;
    while (stop < len &&
           (text[stop] == ' ' || text[stop] == '\t' || text[stop] == '\n' || text[stop] == '\r'))
        stop++;
    if (stop != len) return fail(reason, -EPROTO, "data after the JSON object");

    *obj = rh_span_make(text + start, (uint32_t)((size_t)n - start));
    if (rh_json_kind_of(*obj) != RH_JSON_OBJECT)
        return fail(reason, -EPROTO, "message is not a JSON object");
    return 0;
}

/* Records each known property (the last one wins when a name repeats, as in JSON.parse and
 * ASP.NET) and checks its kind. */
static int collect_fields(struct rh_span obj, struct record *rec, const char **reason)
{
    struct rh_json_iter it;
    struct rh_span key, value;
    rh_json_iter_init(&it, obj);
    while (rh_json_iter_next(&it, &key, &value)) {
        int f = 0;
        while (f < FIELD_COUNT && !rh_json_string_eq(key, fields[f].name))
            f++;
        if (f == FIELD_COUNT) continue;

        enum rh_json_kind kind = rh_json_kind_of(value);
        if (!(fields[f].kinds & KIND(kind))) return fail(reason, -EPROTO, fields[f].wrong_why);
        if (kind == RH_JSON_NULL && fields[f].kinds != KIND_ANY) value.len = 0;
        rec->field[f] = value;
    }

    if (check_strings(rec->field[FIELD_STREAM_IDS], "'streamIds' has a non-string", reason) < 0 ||
        check_strings(rec->field[FIELD_HEADERS], "'headers' has a non-string value", reason) < 0)
        return -EPROTO;
    if (rec->field[FIELD_SEQUENCE_ID].len) {
        int64_t ignored_id;
        if (rh_json_number_to_i64(rec->field[FIELD_SEQUENCE_ID], &ignored_id) < 0)
            return fail(reason, -EPROTO, "'sequenceId' is not an integer");
    }
    return 0;
}

/* Checks that every element (or member value) of @container, when present, is a string. */
static int check_strings(struct rh_span container, const char *why, const char **reason)
{
    struct rh_json_iter it;
    struct rh_span value;
    if (container.len == 0) return 0;
    rh_json_iter_init(&it, container);
    while (rh_json_iter_next(&it, NULL, &value))
        if (rh_json_kind_of(value) != RH_JSON_STRING) return fail(reason, -EPROTO, why);
    return 0;
}

static int fill_message(const struct record *rec, struct rh_hub_msg *msg, const char **reason)
{
    int64_t type;
    if (rec->field[FIELD_TYPE].len == 0) return fail(reason, -EPROTO, "'type' is missing");
    if (rh_json_number_to_i64(rec->field[FIELD_TYPE], &type) < 0)
        return fail(reason, -EPROTO, "'type' is not an integer");

    int err = 0;
    switch (type) {
    case RH_HUB_INVOCATION:
    case RH_HUB_STREAM_INVOCATION:
        msg->type = (enum rh_hub_type)type;
        err = fill_invocation(rec, msg, reason);
        break;
    case RH_HUB_STREAM_ITEM:
        msg->type = RH_HUB_STREAM_ITEM;
        err = fill_invocation_id(rec, msg, true, reason);
        if (err == 0 && rec->field[FIELD_ITEM].len == 0)
            err = fail(reason, -EPROTO, "StreamItem without 'item'");
        msg->result = rec->field[FIELD_ITEM];
        break;
    case RH_HUB_COMPLETION:
        msg->type = RH_HUB_COMPLETION;
        err = fill_completion(rec, msg, reason);
        break;
    case RH_HUB_CANCEL_INVOCATION:
        msg->type = RH_HUB_CANCEL_INVOCATION;
        err = fill_invocation_id(rec, msg, true, reason);
        break;
    case RH_HUB_PING:
        msg->type = RH_HUB_PING;
        break;
    case RH_HUB_CLOSE:
        msg->type = RH_HUB_CLOSE;
        msg->allow_reconnect = rh_json_kind_of(rec->field[FIELD_ALLOW_RECONNECT]) == RH_JSON_TRUE;
        err = decode_text(msg, rec->field[FIELD_ERROR], &msg->error, reason);
        break;
    case RH_HUB_ACK:
    case RH_HUB_SEQUENCE:
        msg->type = (enum rh_hub_type)type;
        err = fill_sequence_id(rec, msg, reason);
        break;
    default:
        /* Newer peers may send types we do not know: receivers ignore them (spec §1). */
        msg->type = RH_HUB_UNKNOWN;
        break;
    }
    return err;
}

/* Invocation and StreamInvocation: target, arguments, stream ids and the invocation id (which
 * a plain Invocation may leave out: a non-blocking send). */
static int fill_invocation(const struct record *rec, struct rh_hub_msg *msg, const char **reason)
{
    const struct rh_span *f = rec->field;
    int err = fill_invocation_id(rec, msg, msg->type == RH_HUB_STREAM_INVOCATION, reason);
    if (err < 0) return err;
    if (f[FIELD_TARGET].len <= 2) return fail(reason, -EPROTO, "'target' missing or empty");
    if (f[FIELD_ARGUMENTS].len == 0) return fail(reason, -EPROTO, "'arguments' is missing");
    err = decode_text(msg, f[FIELD_TARGET], &msg->target, reason);
    if (err < 0) return err;

    struct rh_json_iter it;
    struct rh_span value;
    rh_json_iter_init(&it, f[FIELD_ARGUMENTS]);
    while (rh_json_iter_next(&it, NULL, &value)) {
        if (msg->arg_count == RH_HUB_ARGS_MAX)
            return fail(reason, -EMSGSIZE, "more than 32 arguments");
        msg->args[msg->arg_count++] = value;
    }

    rh_json_iter_init(&it, f[FIELD_STREAM_IDS]);
    while (rh_json_iter_next(&it, NULL, &value)) {
        if (msg->stream_id_count == RH_HUB_STREAMS_MAX)
            return fail(reason, -EMSGSIZE, "more than 8 stream ids");
        err = decode_text(msg, value, &msg->stream_ids[msg->stream_id_count++], reason);
        if (err < 0) return err;
    }
    return 0;
}

/* At most one of result and error; neither is a void (or stream-end) completion. */
static int fill_completion(const struct record *rec, struct rh_hub_msg *msg, const char **reason)
{
    const struct rh_span *f = rec->field;
    int err = fill_invocation_id(rec, msg, true, reason);
    if (err < 0) return err;
    if (f[FIELD_ERROR].len && f[FIELD_RESULT].len)
        return fail(reason, -EPROTO, "Completion with both 'result' and 'error'");
    if (f[FIELD_ERROR].len) {
        msg->result_kind = RH_HUB_RESULT_ERROR;
        return decode_text(msg, f[FIELD_ERROR], &msg->error, reason);
    }
    if (f[FIELD_RESULT].len) {
        msg->result_kind = RH_HUB_RESULT_VALUE;
        msg->result = f[FIELD_RESULT];
        return 0;
    }
    msg->result_kind = RH_HUB_RESULT_VOID;
    return 0;
}

/* An empty invocation id counts as none: an error where one is @required. */
static int fill_invocation_id(const struct record *rec, struct rh_hub_msg *msg, bool required,
                              const char **reason)
{
    struct rh_span raw = rec->field[FIELD_INVOCATION_ID];
    if (raw.len <= 2) {
        if (required) return fail(reason, -EPROTO, "'invocationId' missing or empty");
        return 0;
    }
    return decode_text(msg, raw, &msg->invocation_id, reason);
}

static int fill_sequence_id(const struct record *rec, struct rh_hub_msg *msg, const char **reason)
{
    struct rh_span raw = rec->field[FIELD_SEQUENCE_ID];
    if (raw.len == 0) return fail(reason, -EPROTO, "'sequenceId' is missing");
    /* Its integer form was checked with the other properties. */
    return rh_json_number_to_i64(raw, &msg->sequence_id);
}

/* Decodes the string value @raw (len 0 = absent) into @out: in place when it has no escapes,
 * else into the message's scratch space. */
static int decode_text(struct rh_hub_msg *msg, struct rh_span raw, struct rh_span *out,
                       const char **reason)
{
    if (raw.len == 0) {
        *out = (struct rh_span){0};
        return 0;
    }
    if (!memchr(raw.ptr, '\\', raw.len)) {
        *out = rh_span_make(raw.ptr + 1, raw.len - 2);
        return 0;
    }
    uint8_t *at = msg->scratch + msg->scratch_used;
    ssize_t n = rh_json_string_decode(raw, at, RH_HUB_SCRATCH_BYTES - msg->scratch_used);
    if (n == -EMSGSIZE) return fail(reason, -EMSGSIZE, "escaped strings exceed the scratch space");
    if (n < 0) return fail(reason, -EPROTO, "string does not decode");
    *out = rh_span_make(at, (uint32_t)n);
    msg->scratch_used += (uint32_t)n;
    return 0;
}

static int fail(const char **reason, int err, const char *why)
{
    *reason = why;
    return err;
}

static void put(struct rh_buf **out, const char *lit)
{
    rh_buf_append(out, lit, (uint32_t)strlen(lit));
}

static void put_value(struct rh_buf **out, struct rh_span value)
{
    if (value.len == 0)
        put(out, "null");
    else
        rh_buf_append(out, value.ptr, value.len);
}

static void put_i64(struct rh_buf **out, int64_t v)
{
    char text[24];
    int n = snprintf(text, sizeof(text), "%" PRId64, v);
    rh_buf_append(out, text, (uint32_t)n);
}

static void put_text_member(struct rh_buf **out, const char *prefix, struct rh_span text)
{
    put(out, prefix);
    rh_json_write_string(out, text.ptr, text.len);
}

static void put_end(struct rh_buf **out)
{
    put(out, "}\x1e");
}
