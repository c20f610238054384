/* tests/fuzz/fuzz_ws.c - feeds arbitrary client bytes to the WebSocket frame parser, once
 * whole and once cut into two or three chunks at offsets taken from the first input bytes.
 * Both runs must see the same messages, pings and close, and end the same way (all consumed,
 * or the same error and close code); what is handed over must respect the limits (message
 * size, UTF-8 of text and close reasons, control payloads); and every byte allocated must be
 * freed. Layout: byte 0 cut count and limit choice, bytes 1-2 cut offsets, then the stream. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "transports/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
    uint32_t max;
    uint64_t digest; /* FNV-1a over every event and its payload */
    uint32_t event_count;
    bool closed;
    /* Streamed runs (on_data): the message so far, digested as on_message would at its end. */
    uint8_t *msg;
    size_t msg_len;
};

static void digest_add(struct run *r, const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        r->digest = (r->digest ^ b[i]) * 0x100000001b3ull;
}

/* A whole-buffer UTF-8 check written apart from the parser's incremental one. */
static bool is_utf8(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t extra;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        if ((p[i] & 0xe0) == 0xc0) {
            cp = p[i] & 0x1f;
            extra = 1;
        } else if ((p[i] & 0xf0) == 0xe0) {
            cp = p[i] & 0x0f;
            extra = 2;
        } else if ((p[i] & 0xf8) == 0xf0) {
            cp = p[i] & 0x07;
            extra = 3;
        } else {
            return false;
        }
        if (i + extra >= len) return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += extra + 1;
    }
    return true;
}

static int on_message(void *ctx, enum rh_ws_opcode op, const uint8_t *payload, size_t len)
{
    struct run *r = ctx;
    RH_ASSERT(!r->closed);
    RH_ASSERT(op == RH_WS_OP_TEXT || op == RH_WS_OP_BINARY);
    RH_ASSERT(len <= r->max);
    RH_ASSERT(len == 0 || payload != NULL);
    if (op == RH_WS_OP_TEXT) RH_ASSERT(is_utf8(payload, len));
    uint8_t tag[2] = {'M', (uint8_t)op};
    digest_add(r, tag, 2);
    digest_add(r, &len, sizeof(len));
    digest_add(r, payload, len);
    r->event_count++;
    return 0;
}

static int on_ping(void *ctx, const uint8_t *payload, size_t len)
{
    struct run *r = ctx;
    RH_ASSERT(!r->closed);
    RH_ASSERT(len <= RH_WS_CONTROL_PAYLOAD_MAX);
    digest_add(r, "P", 1);
    digest_add(r, &len, sizeof(len));
    digest_add(r, payload, len);
    r->event_count++;
    return 0;
}

static int on_close(void *ctx, uint16_t code, const char *reason, size_t reason_len)
{
    struct run *r = ctx;
    RH_ASSERT(!r->closed);
    RH_ASSERT(reason_len <= RH_WS_CLOSE_REASON_MAX);
    RH_ASSERT(is_utf8((const uint8_t *)reason, reason_len));
    RH_ASSERT(code >= 1000 && code < 5000 && code != 1004 && code != 1006);
    RH_ASSERT(code != RH_WS_CLOSE_NO_STATUS || reason_len == 0);
    digest_add(r, "C", 1);
    digest_add(r, &code, sizeof(code));
    digest_add(r, reason, reason_len);
    r->closed = true;
    r->event_count++;

    /* The reply the connection would send must be a well-formed close frame. */
    struct rh_buf *reply = rh_ws_close_frame_new(code == RH_WS_CLOSE_NO_STATUS ? 0 : code, NULL);
    RH_ASSERT(reply->len == (code == RH_WS_CLOSE_NO_STATUS ? 2u : 4u));
    rh_buf_unref(reply);
    return 0;
}

static int on_data(void *ctx, enum rh_ws_opcode op, const uint8_t *data, size_t len, bool is_end)
{
    struct run *r = ctx;
    RH_ASSERT(!r->closed);
    r->msg = realloc(r->msg, r->msg_len + len + 1);
    if (len) memcpy(r->msg + r->msg_len, data, len);
    r->msg_len += len;
    if (!is_end) return 0;
    size_t msg_len = r->msg_len;
    r->msg_len = 0;
    r->max = UINT32_MAX; /* no limit applies to a streamed message */
    return on_message(r, op, r->msg, msg_len);
}

static const struct rh_ws_in_ops ops = {
    .on_message = on_message,
    .on_ping = on_ping,
    .on_close = on_close,
};

static const struct rh_ws_in_ops streamed_ops = {
    .on_data = on_data,
    .on_ping = on_ping,
    .on_close = on_close,
};

struct outcome {
    ssize_t rc; /* 0: every chunk consumed; else the error */
    uint16_t close_code;
};

static struct outcome run_chunks(struct run *r, const uint8_t *data, size_t len, const size_t *cuts,
                                 size_t cut_count, const struct rh_ws_in_ops *ops_used)
{
    struct rh_ws_in in;
    struct outcome o = {0};
    size_t start = 0;

    rh_ws_in_init(&in, r->max);
    r->max = in.message_bytes_max;
    for (size_t i = 0; i <= cut_count && !r->closed; i++) {
        size_t end = i < cut_count ? cuts[i] : len;
        if (end <= start) continue;
        ssize_t n = rh_ws_in_feed(&in, data + start, end - start, ops_used, r);
        if (n < 0) {
            RH_ASSERT(n == -EPROTO || n == -EMSGSIZE);
            RH_ASSERT(in.reason != NULL);
            RH_ASSERT(n == -EMSGSIZE ? in.close_code == RH_WS_CLOSE_MESSAGE_TOO_BIG
                                     : in.close_code == RH_WS_CLOSE_PROTOCOL_ERROR ||
                                           in.close_code == RH_WS_CLOSE_INVALID_PAYLOAD);
            RH_ASSERT(rh_ws_in_is_idle(&in));
            RH_ASSERT(rh_ws_in_feed(&in, data, len, ops_used, r) == -EPIPE);
            o.rc = n;
            o.close_code = in.close_code;
            break;
        }
        RH_ASSERT((size_t)n == end - start);
        start = end;
    }
    if (r->closed) RH_ASSERT(rh_ws_in_is_idle(&in));
    rh_ws_in_destroy(&in);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    int64_t base = rh_alloc_live_bytes();

    /* Limits small and large (0: the 32 KiB default), so both sides of each get reached. */
    static const uint32_t limits[8] = {0, 1, 16, 125, 126, 1000, 65535, 70000};
    uint32_t max = limits[data[0] & 7];
    size_t cut_count = (data[0] >> 3) & 1 ? 2 : 1;
    const uint8_t *stream = data + 3;
    size_t len = size - 3;
    size_t cuts[2] = {len ? data[1] % (len + 1) : 0, len ? data[2] % (len + 1) : 0};
    if (cuts[0] > cuts[1]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }
    if (cut_count == 1) cuts[0] = cuts[1];

    struct run whole = {.max = max, .digest = 0xcbf29ce484222325ull};
    struct run split = whole, streamed = whole;
    struct outcome a = run_chunks(&whole, stream, len, NULL, 0, &ops);
    struct outcome b = run_chunks(&split, stream, len, cuts, cut_count, &ops);
    RH_ASSERT(a.rc == b.rc);
    RH_ASSERT(a.close_code == b.close_code);
    RH_ASSERT(whole.digest == split.digest);
    RH_ASSERT(whole.event_count == split.event_count);
    RH_ASSERT(whole.closed == split.closed);

    /* Streamed, the same messages come out, unless reassembly hit its size limit. */
    struct outcome c = run_chunks(&streamed, stream, len, cuts, cut_count, &streamed_ops);
    RH_ASSERT(c.rc != -EMSGSIZE);
    if (a.rc != -EMSGSIZE) {
        RH_ASSERT(a.rc == c.rc);
        RH_ASSERT(whole.digest == streamed.digest);
        RH_ASSERT(whole.event_count == streamed.event_count);
        RH_ASSERT(whole.closed == streamed.closed);
    }
    free(streamed.msg);
    RH_ASSERT(rh_alloc_live_bytes() == base);
    return 0;
}
