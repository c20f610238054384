/*
 * tests/fuzz/fuzz_bench_wire.c - ringhub-bench's readers of what a server sends (frame headers,
 * hub message framing and types, completion flags, stamps, HTTP response heads, negotiate
 * bodies) on arbitrary bytes: no read outside the input, and every length they return lies
 * within it. The first byte picks the hub protocol.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "tools/bench/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    enum rb_codec codec = data[0] & 1 ? RB_MSGPACK : RB_JSON;
    /* An exact-size copy, so that ASan sees any read past the end. */
    size_t len = size - 1;
    uint8_t *in = malloc(len ? len : 1);
    memcpy(in, data + 1, len);

    uint8_t op;
    bool fin;
    uint64_t payload_len;
    ssize_t head = rb_ws_server_frame(in, len, &op, &fin, &payload_len);
    RH_ASSERT(head >= -1 && head <= 10 && (size_t)(head > 0 ? head : 0) <= len);
    if (head > 0) RH_ASSERT(op <= 15 && payload_len < (1ull << 62));

    size_t used = 0;
    for (;;) {
        const uint8_t *msg;
        size_t msg_len;
        ssize_t n = rb_hub_next(codec, in + used, len - used, &msg, &msg_len);
        if (n <= 0) break;
        RH_ASSERT((size_t)n <= len - used);
        RH_ASSERT(msg >= in + used && msg + msg_len <= in + used + n);
        int type = rb_hub_type(codec, msg, msg_len);
        RH_ASSERT(type >= -1);
        if (type == 3) (void)rb_hub_completion_is_error(codec, msg, msg_len);
        struct rb_stamp st;
        (void)rb_stamp_find(msg, msg_len, &st);
        used += (size_t)n;
    }

    int status;
    size_t content_length;
    ssize_t http = rb_http_response((const char *)in, len, &status, &content_length);
    RH_ASSERT(http >= -1 && (size_t)(http > 0 ? http : 0) <= len);
    char token[64];
    ssize_t t =
        rb_json_string_member((const char *)in, len, "connectionToken", token, sizeof(token));
    RH_ASSERT(t < (ssize_t)sizeof(token));
    if (t >= 0) RH_ASSERT(strlen(token) == (size_t)t);
    free(in);
    return 0;
}
