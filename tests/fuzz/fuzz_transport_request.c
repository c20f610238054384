/* tests/fuzz/fuzz_transport_request.c - what the front reads from an SSE, long-polling or
 * EventSource request, on arbitrary bytes: the head; the id, user, hub, lastEventId and
 * access_token query values into buffers of the sizes the front uses; the user path segment of
 * /api/events/{user}; the Last-Event-ID header as an event id; and the body after the head,
 * by Content-Length or chunked, decoded whole and split at an arbitrary point, which must agree. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "transports/http/http.h"
#include "transports/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void query_value(struct rh_span query, const char *key, size_t cap)
{
    char *out = malloc(cap);
    size_t len = 12345;
    if (rh_http_query_get(query, key, out, cap, &len)) {
        RH_ASSERT(len < cap && out[len] == '\0');
    } else {
        RH_ASSERT(len == 0);
    }
    free(out);
}

/* Decodes the chunked body in @in, feeding it in two pieces cut at @cut; returns the decoded
 * length or -1 on an error, with the bytes in @out. */
static ssize_t decode_chunked(const struct rh_http_limits *lim, const uint8_t *in, size_t len,
                              size_t cut, uint8_t *out, size_t out_cap)
{
    struct rh_http_chunked st;
    rh_http_chunked_init(&st, lim);
    size_t total = 0, at = 0;
    const size_t ends[2] = {cut < len ? cut : len, len};
    for (int piece = 0; piece < 2 && !st.done; piece++) {
        while (at < ends[piece] && !st.done) {
            uint8_t chunk[7]; /* a small output window, as the front's is bounded */
            size_t got = 0;
            const char *reason = NULL;
            ssize_t n = rh_http_chunked_decode(&st, in + at, ends[piece] - at, chunk, sizeof(chunk),
                                               &got, &reason);
            if (n < 0) {
                RH_ASSERT(reason != NULL);
                return -1;
            }
            RH_ASSERT((size_t)n <= ends[piece] - at && got <= sizeof(chunk));
            RH_ASSERT(total + got <= out_cap);
            memcpy(out + total, chunk, got);
            total += got;
            at += (size_t)n;
            if (!n && !got) break; /* wants more than this piece has */
        }
    }
    return st.done ? (ssize_t)total : -2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rh_http_limits lim;
    rh_http_limits_defaults(&lim);
    lim.body_bytes_max = 4096;
    struct rh_http_request req;
    const char *reason = NULL;
    ssize_t head = rh_http_parse_request(data, size, &lim, &req, &reason);
    if (head <= 0) return 0;

    query_value(req.query, "id", 4096);
    query_value(req.query, "id", 64);
    query_value(req.query, "user", 4096);
    query_value(req.query, "hub", 129);
    query_value(req.query, "lastEventId", 257);
    query_value(req.query, "access_token", 4098);
    const uint8_t *slash = req.path.len ? memrchr(req.path.ptr, '/', req.path.len) : NULL;
    if (slash) {
        struct rh_span segment =
            rh_span_make(slash + 1, (uint32_t)(req.path.ptr + req.path.len - slash - 1));
        char user[257];
        size_t user_len = 999;
        if (rh_http_path_decode(segment, user, sizeof(user), &user_len))
            RH_ASSERT(user_len <= segment.len && user[user_len] == '\0');
        else
            RH_ASSERT(user_len == 0);
    }
    const struct rh_span *last_id = rh_http_header(&req, "Last-Event-ID");
    uint32_t epoch;
    uint64_t seq;
    if (last_id && rh_sse_parse_id(*last_id, &epoch, &seq)) {
        char text[RH_SSE_EVENT_ID_MAX + 1];
        RH_ASSERT(rh_sse_format_id(text, epoch, seq) == last_id->len);
    }

    const uint8_t *body = data + head;
    size_t body_len = size - (size_t)head;
    if (req.chunked) {
        uint8_t *a = malloc(lim.body_bytes_max + 1), *b = malloc(lim.body_bytes_max + 1);
        size_t cut = body_len ? data[0] % (body_len + 1) : 0;
        ssize_t whole = decode_chunked(&lim, body, body_len, body_len, a, lim.body_bytes_max);
        ssize_t split = decode_chunked(&lim, body, body_len, cut, b, lim.body_bytes_max);
        RH_ASSERT(whole == split);
        if (whole > 0) RH_ASSERT(memcmp(a, b, (size_t)whole) == 0);
        free(a);
        free(b);
    } else {
        RH_ASSERT(req.content_length <= lim.body_bytes_max);
    }
    return 0;
}
