#pragma once
/*
 * transports/hub.h - SignalR hub messages as the JSON and MessagePack codecs share them
 * (spec: shared/spec/signalr-hub-protocol.md).
 *
 * A parsed message points into the bytes it was parsed from. Its values (arguments, a result,
 * a stream item) stay in their wire encoding, each as one span, so forwarding between two
 * clients of the same protocol copies the sender's bytes untouched; only a message crossing
 * from JSON to MessagePack or back is transcoded (transports/hub_transcode.h). Strings the
 * router reads (target, invocation id, error) are decoded, into the message's scratch space
 * when the wire form has escapes.
 */
#include <stdbool.h>
#include <stdint.h>

#include "transports/span.h"

enum rh_hub_type {
    RH_HUB_UNKNOWN = 0, /* a type this server does not know: receivers ignore it */
    RH_HUB_INVOCATION = 1,
    RH_HUB_STREAM_ITEM = 2,
    RH_HUB_COMPLETION = 3,
    RH_HUB_STREAM_INVOCATION = 4,
    RH_HUB_CANCEL_INVOCATION = 5,
    RH_HUB_PING = 6,
    RH_HUB_CLOSE = 7,
    RH_HUB_ACK = 8,
    RH_HUB_SEQUENCE = 9,
};

enum rh_hub_codec {
    RH_HUB_JSON,
    RH_HUB_MSGPACK,
};

/* Completion kinds, numbered as MessagePack's ResultKind. */
enum rh_hub_result {
    RH_HUB_RESULT_NONE = 0, /* not a completion */
    RH_HUB_RESULT_ERROR = 1,
    RH_HUB_RESULT_VOID = 2,
    RH_HUB_RESULT_VALUE = 3,
};

#define RH_HUB_ARGS_MAX      32   /* more arguments than this: the message is refused */
#define RH_HUB_STREAMS_MAX   8    /* stream ids on one invocation */
#define RH_HUB_SCRATCH_BYTES 1024 /* decoded strings that had escapes */

struct rh_hub_msg {
    enum rh_hub_type type;
    enum rh_hub_codec codec;              /* the encoding of every value span below */
    struct rh_span invocation_id;         /* decoded; len 0 = none (empty counts as none) */
    struct rh_span target;                /* decoded; Invocation and StreamInvocation */
    struct rh_span args[RH_HUB_ARGS_MAX]; /* encoded values */
    uint32_t arg_count;
    struct rh_span stream_ids[RH_HUB_STREAMS_MAX]; /* decoded */
    uint32_t stream_id_count;
    enum rh_hub_result result_kind; /* Completion */
    struct rh_span result;          /* encoded value: Completion with a value, StreamItem item */
    struct rh_span error;           /* decoded: Completion error, Close error (len 0 = none) */
    bool allow_reconnect;           /* Close */
    int64_t sequence_id;            /* Ack, Sequence */
    uint32_t scratch_used;
    uint8_t scratch[RH_HUB_SCRATCH_BYTES];
};

/* The handshake request, the same JSON text for both hub protocols. */
struct rh_hub_handshake {
    char protocol[32]; /* decoded, NUL-terminated */
    int64_t version;
};
