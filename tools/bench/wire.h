#pragma once
/*
 * tools/bench/wire.h - what ringhub-bench writes and reads on the wire, as a SignalR client
 * does: HTTP requests (negotiate, WebSocket upgrade), masked client WebSocket frames, hub
 * messages in JSON and MessagePack, and the server's frames and hub messages coming back.
 *
 * Payloads carry a stamp: a marker, the publisher, its sequence number and the monotonic send
 * time, as fixed-width hex in a string argument, so a subscriber finds it in the message bytes
 * of either protocol without a full parse (the generator must outrun the server).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum rb_codec { RB_JSON, RB_MSGPACK };

#define RB_STAMP_LEN 31 /* "~rb" + 4 + 8 + 16 hex digits: the smallest payload */

struct rb_stamp {
    uint16_t pub;   /* publisher */
    uint32_t seq;   /* its sequence number, from 1 */
    uint64_t ts_ns; /* CLOCK_MONOTONIC at send */
};

/* Writes a @len-byte payload (len >= RB_STAMP_LEN) holding @st, padded with 'x'. */
void rb_stamp_write(char *out, size_t len, const struct rb_stamp *st);
/* Finds and decodes the stamp in a hub message; false when it holds none. */
bool rb_stamp_find(const uint8_t *msg, size_t len, struct rb_stamp *out);

/* A masked client frame (FIN, @opcode) holding @payload, into @out (@cap bytes; at least
 * len + 14). The masking key is zero, so the payload goes as is: servers must accept any key.
 * Returns the frame length, or 0 when it does not fit. */
size_t rb_ws_client_frame(uint8_t *out, size_t cap, uint8_t opcode, const void *payload,
                          size_t len);

/* A hub Invocation of @target with string arguments (@args, @argc of them), with an
 * invocation id when @invocation_id is not NULL, framed for @codec (JSON: 0x1E after it;
 * MessagePack: the varint length before it). JSON takes the arguments as they are: they must
 * need no escaping, as the bench's names and stamped payloads do not. Returns its length, or
 * 0 when it does not fit (the check keeps 64 bytes of slack). */
size_t rb_hub_invocation(uint8_t *out, size_t cap, enum rb_codec codec, const char *invocation_id,
                         const char *target, const char *const *args, uint32_t argc);
/* A hub Ping (type 6). */
size_t rb_hub_ping(uint8_t *out, size_t cap, enum rb_codec codec);
/* The handshake request for @codec (always JSON text). */
size_t rb_hub_handshake(uint8_t *out, size_t cap, enum rb_codec codec);

/* A server frame at the front of @data: returns the header length and fills *@op, *@fin and
 * *@payload_len; 0 when the header is incomplete; -1 when it is not a valid server frame
 * (masked, reserved bits, a 64-bit length over 2^62). */
ssize_t rb_ws_server_frame(const uint8_t *data, size_t len, uint8_t *op, bool *fin,
                           uint64_t *payload_len);

/* The next whole hub message at the front of @data: returns the bytes it takes (separator or
 * length prefix included) and sets *@msg and *@msg_len to its body; 0 when it is incomplete;
 * -1 when the framing is broken. */
ssize_t rb_hub_next(enum rb_codec codec, const uint8_t *data, size_t len, const uint8_t **msg,
                    size_t *msg_len);
/* The type of a hub message body (1 Invocation, 3 Completion, 6 Ping, 7 Close...), or -1. */
int rb_hub_type(enum rb_codec codec, const uint8_t *msg, size_t len);
/* For a Completion: true when it carries an error. */
bool rb_hub_completion_is_error(enum rb_codec codec, const uint8_t *msg, size_t len);

/* An HTTP response head at the front of @data: returns its length (through the blank line)
 * and sets *@status and *@content_length (0 when absent); 0 when incomplete; -1 when it is
 * not HTTP. */
ssize_t rb_http_response(const char *data, size_t len, int *status, size_t *content_length);
/* The value of the string member @name ("connectionToken") in a negotiate body, into @out
 * (@cap bytes, NUL-terminated). Returns its length, or -1 (also for a value with escapes or
 * control characters, which no token has). */
ssize_t rb_json_string_member(const char *body, size_t len, const char *name, char *out,
                              size_t cap);
