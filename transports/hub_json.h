#pragma once
/*
 * transports/hub_json.h - the SignalR handshake and the "json" hub protocol (spec:
 * shared/spec/signalr-hub-protocol.md §2-4): JSON records each ended by 0x1E. Parsers read one
 * record from the front of the bytes received so far and fill a struct rh_hub_msg that points
 * into them; writers append whole records to a buffer in ASP.NET's property order. What a
 * message means (routing, completions, closing on errors) is the caller's business.
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

#define RH_HUB_RECORD_SEPARATOR 0x1e

/* Handshake failures with ASP.NET's texts (spec §2.4); rh_hub_handshake_error_text formats
 * them. The server sends the text with rh_hub_handshake_write_error, then ends the connection. */
enum rh_hub_handshake_fail {
    RH_HUB_HANDSHAKE_CANCELED,     /* timeout, or too many bytes without a 0x1E */
    RH_HUB_HANDSHAKE_UNEXPECTED,   /* the request did not parse (any -EPROTO) */
    RH_HUB_HANDSHAKE_BAD_PROTOCOL, /* protocol unknown or not allowed */
    RH_HUB_HANDSHAKE_BAD_VERSION,  /* version above what the protocol supports */
    RH_HUB_HANDSHAKE_BAD_TRANSFER, /* the transport cannot carry the protocol (SSE + binary) */
};

/* Reads the handshake request at the front of @data: the JSON object up to the first 0x1E,
 * with a string "protocol" (at most 31 bytes decoded, no NUL) and an integer "version";
 * other properties are ignored. Fills @hs and returns the bytes consumed, 0x1E included; any
 * bytes after it are the start of the hub message stream. Returns -EAGAIN when no 0x1E has
 * arrived yet within @max_bytes (call again with more), -EMSGSIZE when more than @max_bytes
 * arrived without one, or -EPROTO when the request is malformed; on errors @reason says why
 * (for logs: the reply is RH_HUB_HANDSHAKE_CANCELED or _UNEXPECTED). Whether the protocol
 * and version are acceptable is the caller's decision. */
ssize_t rh_hub_handshake_parse(const uint8_t *data, size_t len, uint32_t max_bytes,
                               struct rh_hub_handshake *hs, const char **reason);

/* Appends the success response, exactly "{}" 0x1E. */
void rh_hub_handshake_write_ok(struct rh_buf **out);
/* Appends {"error":"<@error>"} 0x1E; @error is UTF-8, NUL-terminated, escaped as needed. */
void rh_hub_handshake_write_error(struct rh_buf **out, const char *error);
/* Formats ASP.NET's text for @fail into @out (NUL-terminated, cut to @cap - 1 bytes; @cap > 0).
 * @hs supplies the protocol name and version the texts quote; it may be NULL for CANCELED and
 * UNEXPECTED. The transfer format named by BAD_TRANSFER is Text for "json", else Binary.
 * Returns the length of the full text, as snprintf. */
size_t rh_hub_handshake_error_text(enum rh_hub_handshake_fail fail,
                                   const struct rh_hub_handshake *hs, char *out, size_t cap);

/* Reads one hub message at the front of @data: the JSON object up to the first 0x1E, its
 * properties in any order, unknown ones ignored, "headers" checked (an object of strings) and
 * ignored. Fills @msg (codec RH_HUB_JSON; argument, result and item spans are the raw JSON of
 * each value, pointing into @data; target, invocation id, stream ids and error are decoded,
 * pointing into @data or, when they had escapes, into @msg->scratch) and returns the bytes
 * consumed, 0x1E included. A type this server does not know parses as RH_HUB_UNKNOWN, to be
 * ignored. Errors, with @reason set to a short text for logs:
 *   -EAGAIN   no 0x1E yet within @max_bytes: call again with more bytes;
 *   -EMSGSIZE more than @max_bytes bytes before the 0x1E (the record's JSON text is limited
 *             to @max_bytes, its separator not counted), more than RH_HUB_ARGS_MAX arguments
 *             or RH_HUB_STREAMS_MAX stream ids, or escaped strings beyond the scratch space;
 *   -EPROTO   not a JSON object, a property of the wrong type, or a field the type requires
 *             missing or empty (spec §4).
 * After an error other than -EAGAIN the connection closes (spec §6.10); @msg is then
 * undefined. Spans in @msg are valid as long as @data and @msg are. */
ssize_t rh_hub_json_parse(const uint8_t *data, size_t len, uint32_t max_bytes,
                          struct rh_hub_msg *msg, const char **reason);

/* Decodes argument @idx of a message parsed by rh_hub_json_parse into @out (UTF-8, not
 * NUL-terminated). Returns the length, -ENOENT when there is no such argument, -EINVAL when it
 * is not a string (or @m is not JSON), -EMSGSIZE when it does not fit in @cap. */
ssize_t rh_hub_json_arg_string(const struct rh_hub_msg *m, uint32_t idx, uint8_t *out, size_t cap);

/*
 * Writers: each appends one complete record and its 0x1E to *@out, "type" first as ASP.NET
 * writes them. Strings are UTF-8 and escaped here; values (@args, @result, @item) are spans of
 * already-encoded JSON, copied as they are (an empty span is written as null). An empty
 * @invocation_id or @error is left out.
 */

/* {"type":1,"invocationId":..,"target":..,"arguments":[..]} */
void rh_hub_json_write_invocation(struct rh_buf **out, struct rh_span invocation_id,
                                  struct rh_span target, const struct rh_span *args, uint32_t argc);
/* {"type":3,"invocationId":..} for RH_HUB_RESULT_VOID, with ,"result":@payload for
 * RH_HUB_RESULT_VALUE, or ,"error":"@payload" for RH_HUB_RESULT_ERROR. */
void rh_hub_json_write_completion(struct rh_buf **out, struct rh_span invocation_id,
                                  enum rh_hub_result kind, struct rh_span payload);
/* {"type":2,"invocationId":..,"item":..} */
void rh_hub_json_write_stream_item(struct rh_buf **out, struct rh_span invocation_id,
                                   struct rh_span item);
/* {"type":6} exactly. */
void rh_hub_json_write_ping(struct rh_buf **out);
/* {"type":7}, with "error" when @error is not empty and "allowReconnect":true only when
 * @allow_reconnect. */
void rh_hub_json_write_close(struct rh_buf **out, struct rh_span error, bool allow_reconnect);
/* {"type":8,"sequenceId":N} */
void rh_hub_json_write_ack(struct rh_buf **out, int64_t sequence_id);
/* {"type":9,"sequenceId":N} */
void rh_hub_json_write_sequence(struct rh_buf **out, int64_t sequence_id);
