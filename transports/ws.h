#pragma once
/*
 * transports/ws.h - WebSocket (RFC 6455) for the server side: the upgrade handshake's accept
 * key, outgoing frames built once into shared buffers, and a per-connection parser of what the
 * client sends. Server frames are unmasked, so one rh_buf serves every recipient on a shard.
 * Client frames are cut and unmasked by wslay's frame API; this module adds the message layer
 * (fragmentation, control frames, UTF-8, limits). It never touches a socket: replies (pong,
 * close) are the caller's to build and send. Everything here runs on the connection's shard.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

/* Largest payload of a control frame (ping, pong, close), RFC 6455 §5.5. */
#define RH_WS_CONTROL_PAYLOAD_MAX 125
/* Largest close reason: the control payload less the 2-byte status code. */
#define RH_WS_CLOSE_REASON_MAX 123
/* Default limit on one client message after reassembly (SignalR's default too). */
#define RH_WS_MESSAGE_BYTES_DEFAULT (32u * 1024)
/* Length of a Sec-WebSocket-Accept value: base64 of a SHA-1 digest, without the NUL. */
#define RH_WS_ACCEPT_LEN 28

enum rh_ws_opcode {
    RH_WS_OP_CONTINUATION = 0x0,
    RH_WS_OP_TEXT = 0x1,
    RH_WS_OP_BINARY = 0x2,
    RH_WS_OP_CLOSE = 0x8,
    RH_WS_OP_PING = 0x9,
    RH_WS_OP_PONG = 0xa,
};

/* Close status codes this module produces or reports (RFC 6455 §7.4.1). */
enum rh_ws_close_code {
    RH_WS_CLOSE_NORMAL = 1000,
    RH_WS_CLOSE_GOING_AWAY = 1001, /* the server is stopping */
    RH_WS_CLOSE_PROTOCOL_ERROR = 1002,
    RH_WS_CLOSE_NO_STATUS = 1005, /* reported for a close frame without a code; never sent */
    RH_WS_CLOSE_INVALID_PAYLOAD = 1007,
    RH_WS_CLOSE_MESSAGE_TOO_BIG = 1009,
    RH_WS_CLOSE_INTERNAL_ERROR = 1011,
};

/* ---- handshake ---- */

/* Writes the Sec-WebSocket-Accept value for the client's Sec-WebSocket-Key @client_key
 * (@key_len bytes, not NUL-terminated) into @out as 28 characters and a NUL. Returns 0, or
 * -EINVAL when the key is not 24 base64 characters encoding 16 bytes (answer 400). */
int rh_ws_accept_key(const char *client_key, size_t key_len, char out[RH_WS_ACCEPT_LEN + 1]);

/* Writes the complete "101 Switching Protocols" response for @client_key into @out (at most
 * @out_size bytes, NUL-terminated). Returns the response length without the NUL, -EINVAL for a
 * bad key (as rh_ws_accept_key), or -ENOSPC when @out is too small (130 bytes suffice). */
int rh_ws_write_handshake(char *out, size_t out_size, const char *client_key, size_t key_len);

/* ---- outgoing frames (server to client: unmasked) ---- */

/* Writes the header of one unmasked frame into @out. Returns its length: 2, 4 or 10 bytes. */
uint32_t rh_ws_frame_header(uint8_t out[10], enum rh_ws_opcode op, uint64_t payload_len, bool fin);

/* One complete, final, unmasked frame carrying a copy of @len bytes at @payload (NULL when
 * @len is 0), in a new buffer with one reference held by the caller, to be shared by every
 * recipient. A control @op takes at most RH_WS_CONTROL_PAYLOAD_MAX bytes (asserted: a caller
 * bug, not input); a data frame at most UINT32_MAX - 10. */
struct rh_buf *rh_ws_frame_new(enum rh_ws_opcode op, const void *payload, uint32_t len);

/* A close frame with status @code and @reason (NULL for none; valid UTF-8, truncated on a
 * character boundary to RH_WS_CLOSE_REASON_MAX bytes). @code 0 makes an empty close frame,
 * the reply to a close that carried no code. One reference held by the caller. */
struct rh_buf *rh_ws_close_frame_new(uint16_t code, const char *reason);

/* ---- incoming frames (client to server: masked) ---- */

struct ws_in_busy;

/*
 * Parser state of one connection's client-to-server direction, embedded in the connection.
 * While idle (no partial frame or message) it holds nothing beyond this struct; the working
 * state (wslay's frame context with its 4 KiB read buffer, the partial message, a partial
 * control frame) exists only from the first byte of a frame to the end of its message.
 * Callers read close_code and reason after an error and write nothing.
 */
struct rh_ws_in {
    struct ws_in_busy *busy;    /* owned; NULL while idle */
    uint32_t message_bytes_max; /* limit on a reassembled data message */
    uint16_t close_code;        /* after an error: the code to close with, else 0 */
    uint8_t state;              /* open, closed or failed (ws.c) */
    const char *reason;         /* after an error: static text for the close frame, else NULL */
};

/* What the parser hands back. Payload pointers are valid only during the call. Each returns 0
 * to go on, or a negative errno to stop: rh_ws_in_feed then returns that value and the parser
 * takes no more input. None may destroy @in. */
struct rh_ws_in_ops {
    /* A whole text or binary message, reassembled from its fragments; text is valid UTF-8. */
    int (*on_message)(void *ctx, enum rh_ws_opcode op, const uint8_t *payload, size_t len);
    /* Instead of on_message when set: each piece of a data message's payload as it arrives,
     * for a caller that reads the messages as one byte stream (as SignalR does). Text is
     * checked as UTF-8 across pieces; @is_end marks the message's last piece (which may be
     * empty). No message is reassembled: message_bytes_max does not apply, and the caller
     * bounds what it keeps. */
    int (*on_data)(void *ctx, enum rh_ws_opcode op, const uint8_t *data, size_t len, bool is_end);
    /* A ping: the caller must answer with a pong carrying the same payload
     * (rh_ws_frame_new(RH_WS_OP_PONG, ...)). NULL: pings are dropped unanswered. */
    int (*on_ping)(void *ctx, const uint8_t *payload, size_t len);
    /* The client's close: @code is its status or RH_WS_CLOSE_NO_STATUS, @reason valid UTF-8.
     * The caller echoes a close (rh_ws_close_frame_new, code 0 for NO_STATUS) and ends the
     * connection; the parser takes no more input. NULL: the close only ends the parser. */
    int (*on_close)(void *ctx, uint16_t code, const char *reason, size_t reason_len);
};

/* Sets up an idle parser. @message_bytes_max 0 means RH_WS_MESSAGE_BYTES_DEFAULT. Returns 0;
 * nothing is allocated. */
int rh_ws_in_init(struct rh_ws_in *in, uint32_t message_bytes_max);

/* Frees the working state, if any. @in may then be initialised again. Not from a callback. */
void rh_ws_in_destroy(struct rh_ws_in *in);

/*
 * Parses @len bytes the client sent, in any chunking, calling @ops with @ctx for every
 * complete message, ping and close. The parser keeps what it needs of a partial frame, so the
 * caller never re-offers bytes.
 *
 * Returns @len when all was consumed (bytes after a close frame are consumed and dropped, as
 * nothing may follow a close), -EAGAIN when @len is 0, or on bad input, with in->close_code
 * and in->reason set for the close frame the caller sends before closing:
 *   -EPROTO    a protocol violation (1002) or invalid UTF-8 (1007),
 *   -EMSGSIZE  a message over message_bytes_max (1009),
 * a callback's negative return as is, or -EPIPE once the parser has failed or closed.
 */
ssize_t rh_ws_in_feed(struct rh_ws_in *in, const uint8_t *data, size_t len,
                      const struct rh_ws_in_ops *ops, void *ctx);

/* True when no partial frame or message is held: the parser owns no memory. */
static inline bool rh_ws_in_is_idle(const struct rh_ws_in *in);

static inline bool rh_ws_in_is_idle(const struct rh_ws_in *in)
{
    return in->busy == NULL;
}
