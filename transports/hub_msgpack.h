#pragma once
/*
 * transports/hub_msgpack.h - the "messagepack" hub protocol (spec: shared/spec/
 * signalr-hub-protocol.md §3.2, §5): each message is a VarInt length prefix and one MessagePack
 * array. The parser frames and decodes one message into struct rh_hub_msg without allocating:
 * strings and value spans point into the input. The writers append one framed message, laid out
 * exactly as ASP.NET writes it. Transcoding values to JSON is transports/hub_transcode.h.
 *
 * Any thread; nothing here keeps state between calls.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "transports/hub.h"
#include "transports/span.h"

/* Containers nest at most this deep, counted from the message array (depth 1): an argument's
 * own array or map is at depth 3. A lone value checked by rh_hub_msgpack_value_len is depth 1. */
#define RH_HUB_MSGPACK_DEPTH_MAX    64
#define RH_HUB_MSGPACK_VARINT_MAX   5          /* bytes of a length prefix */
#define RH_HUB_MSGPACK_BODY_LEN_MAX 0x7fffffff /* largest body a prefix can announce */

/* Frames and parses the message at the start of @data. Returns the bytes it took (prefix and
 * body, > 0) and fills @msg (codec RH_HUB_MSGPACK; the scratch space is not used), or:
 * -EAGAIN   the prefix or the body is not complete yet: call again with more bytes;
 * -EMSGSIZE the prefix announces a body over @max_bytes (known before the body arrives), or
 *           more than RH_HUB_ARGS_MAX arguments or RH_HUB_STREAMS_MAX stream ids;
 * -EPROTO   malformed: a bad prefix, a zero-length body, invalid MessagePack, nesting over
 *           RH_HUB_MSGPACK_DEPTH_MAX, a field of the wrong type or missing, bytes after the
 *           array.
 * On an error @reason names it and @msg is unspecified; the caller closes the connection.
 * An unknown message type parses as RH_HUB_UNKNOWN (well-formed, to be ignored). Extra trailing
 * array elements are validated and ignored; Headers must be a map of str to str|nil and are
 * ignored. An empty invocation id counts as none; types 2 to 5 require one. Strings (target,
 * invocation id, error, stream ids) are the str bytes as sent, pointing into @data, not checked
 * for UTF-8. Spans are valid as long as @data is. */
ssize_t rh_hub_msgpack_parse(const uint8_t *data, size_t len, uint32_t max_bytes,
                             struct rh_hub_msg *msg, const char **reason);

/* Decodes argument @idx of a parsed MessagePack message as a string into @out (no NUL added).
 * Returns its length, -ENOENT when there is no such argument, -EINVAL when it is not a string
 * (or @m is not MessagePack), or -EMSGSIZE when it does not fit in @cap bytes. */
ssize_t rh_hub_msgpack_arg_string(const struct rh_hub_msg *m, uint32_t idx, uint8_t *out,
                                  size_t cap);

/* Returns the length of the one complete MessagePack value at the start of @data, or -EPROTO
 * with @reason set when it is invalid, nested deeper than RH_HUB_MSGPACK_DEPTH_MAX or ends
 * early (callers frame messages before parsing them, so a short value is malformed). */
ssize_t rh_hub_msgpack_value_len(const uint8_t *data, size_t len, const char **reason);

/* The first bytes of one MessagePack value, as rh_hub_msgpack_read_head decodes them. */
enum rh_hub_msgpack_kind {
    RH_HUB_MSGPACK_NIL,
    RH_HUB_MSGPACK_BOOL,    /* value in .b */
    RH_HUB_MSGPACK_UINT,    /* any unsigned width or positive fixint: .u */
    RH_HUB_MSGPACK_INT,     /* any signed width or negative fixint: .i */
    RH_HUB_MSGPACK_FLOAT32, /* .f, widened */
    RH_HUB_MSGPACK_FLOAT64, /* .f */
    RH_HUB_MSGPACK_STR,     /* .data_len bytes follow the head */
    RH_HUB_MSGPACK_BIN,     /* .data_len bytes follow the head */
    RH_HUB_MSGPACK_ARRAY,   /* .count elements follow */
    RH_HUB_MSGPACK_MAP,     /* .count key/value pairs follow */
    RH_HUB_MSGPACK_EXT,     /* .ext_type, then .data_len bytes */
};

struct rh_hub_msgpack_head {
    enum rh_hub_msgpack_kind kind;
    uint32_t head_len; /* bytes of the type byte and its fixed fields */
    uint32_t data_len; /* str, bin, ext: payload bytes right after the head */
    uint32_t count;    /* array: elements; map: pairs */
    int8_t ext_type;
    bool b;
    uint64_t u;
    int64_t i;
    double f;
};

/* Decodes the head of the value at @data. Returns 0, or -EPROTO when @len is too short for the
 * head, for a str/bin/ext payload, or for @count elements of at least a byte each, or when the
 * byte is 0xc1 (never used). Signed ints that are >= 0 still decode as RH_HUB_MSGPACK_INT. */
int rh_hub_msgpack_read_head(const uint8_t *data, size_t len, struct rh_hub_msgpack_head *h);

/* The writers append one framed message to *@out (the caller holds its only reference).
 * Strings are raw UTF-8 written as MessagePack str; values are spans of MessagePack bytes
 * copied as they are (an empty span is written as nil). An invocation id of len 0 is written
 * as nil. */

/* [1, {}, id|nil, target, [args...], []] */
void rh_hub_msgpack_write_invocation(struct rh_buf **out, struct rh_span invocation_id,
                                     struct rh_span target, const struct rh_span *args,
                                     uint32_t arg_count);
/* [3, {}, id, kind, payload?]: @kind ERROR writes @payload as the error string, VALUE writes
 * @payload as the result value (a void hub method's result is nil, "c0"), VOID ignores it. */
void rh_hub_msgpack_write_completion(struct rh_buf **out, struct rh_span invocation_id,
                                     enum rh_hub_result kind, struct rh_span payload);
/* [2, {}, id, item] */
void rh_hub_msgpack_write_stream_item(struct rh_buf **out, struct rh_span invocation_id,
                                      struct rh_span item);
/* 02 91 06 */
void rh_hub_msgpack_write_ping(struct rh_buf **out);
/* [7, nil|error, allow_reconnect]; an @error of len 0 is written as nil. */
void rh_hub_msgpack_write_close(struct rh_buf **out, struct rh_span error, bool allow_reconnect);
/* [8, sequence_id] */
void rh_hub_msgpack_write_ack(struct rh_buf **out, int64_t sequence_id);
/* [9, sequence_id] */
void rh_hub_msgpack_write_sequence(struct rh_buf **out, int64_t sequence_id);
