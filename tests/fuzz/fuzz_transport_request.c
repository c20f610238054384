/*
 * tests/fuzz/fuzz_transport_request.c - what shards/front.c reads from an SSE, long-polling or
 * EventSource request, on arbitrary bytes, with the parser's default limits as the front uses
 * them: the head; the id, user, hub, lastEventId and access_token query values into buffers of
 * the sizes the front gives them; the last path segment (the user of /api/events/{user}); the
 * Last-Event-ID header as an event id; the Accept header; and the body after the head, by
 * Content-Length or chunked. A chunked body is decoded whole, then fed in two and in three
 * pieces cut at points taken from the input, through output windows of several sizes (the
 * front's is 4096 bytes): every way must give the same bytes, the same end and the same error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/assert.h"
#include "transports/http/http.h"
#include "transports/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The result of decoding one chunked body. */
struct chunked_result {
    ssize_t err;     /* 0, or the decoder's error */
    bool done;       /* the last chunk and the trailers were read */
    size_t consumed; /* input bytes up to the end of the body (when done) */
    size_t body_len;
    uint8_t *body; /* at most the input's length */
};

static void check_request(const struct rh_http_request *req, const uint8_t *data, size_t size,
                          ssize_t head, const struct rh_http_limits *lim);
static void check_query(struct rh_span query, const char *key, size_t cap);
static void check_path(struct rh_span path);
static void check_last_event_id(const struct rh_http_request *req);
static void check_accept(const struct rh_http_request *req);
static void check_chunked(const uint8_t *body, size_t body_len, const struct rh_http_limits *lim,
                          uint64_t seed);
static void decode_chunked(const struct rh_http_limits *lim, const uint8_t *in, size_t len,
                           const size_t *cuts, size_t cut_count, size_t window,
                           struct chunked_result *r);
static void check_same(const struct chunked_result *a, const struct chunked_result *b);
static uint64_t hash_bytes(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rh_http_limits lim;
    rh_http_limits_defaults(&lim);
    static struct rh_http_request req; /* 3 KiB of headers: not on the stack per run */
    const char *reason = NULL;
    ssize_t head = rh_http_parse_request(data, size, &lim, &req, &reason);
    if (head == -EAGAIN) return 0;
    if (head < 0) {
        RH_ASSERT(reason != NULL);
        RH_ASSERT(rh_http_error_status(head) != 500);
        return 0;
    }
    check_request(&req, data, size, head, &lim);

    /* The query values the front reads, with the buffer sizes it reads them into. */
    check_query(req.query, "id", 4096); /* query_id: as long as a target can be */
    check_query(req.query, "id", 64);   /* TOKEN_MAX */
    check_query(req.query, "user", 4096);
    check_query(req.query, "hub", 129);         /* RH_HUB_NAME_MAX + 1 */
    check_query(req.query, "lastEventId", 257); /* RH_EVENTS_ID_MAX */
    check_query(req.query, "lastEventId", 64);
    check_query(req.query, "access_token", 4098); /* RH_JWT_TEXT_MAX + 2 */
    check_path(req.path);
    check_last_event_id(&req);
    check_accept(&req);

    const uint8_t *body = data + head;
    size_t body_len = size - (size_t)head;
    if (req.chunked) {
        check_chunked(body, body_len, &lim, hash_bytes(data, size));
    } else if (req.has_content_length) {
        /* The front takes min(what came, what is left) until content_length bytes are read. */
        size_t take = body_len < req.content_length ? body_len : (size_t)req.content_length;
        RH_ASSERT(take <= lim.body_bytes_max);
    } else {
        RH_ASSERT(req.content_length == 0);
    }
    return 0;
}

static void check_request(const struct rh_http_request *req, const uint8_t *data, size_t size,
                          ssize_t head, const struct rh_http_limits *lim)
{
    RH_ASSERT((size_t)head <= size);
    RH_ASSERT((size_t)head <= lim->header_block_bytes_max);
    RH_ASSERT(req->target.ptr >= data);
    RH_ASSERT(req->target.ptr + req->target.len <= data + head);
    RH_ASSERT(req->target.len <= lim->target_bytes_max);
    RH_ASSERT(req->path.ptr == req->target.ptr);
    RH_ASSERT(req->path.len <= req->target.len);
    if (req->query.len) {
        RH_ASSERT(req->query.ptr == req->path.ptr + req->path.len + 1);
        RH_ASSERT(req->path.len + 1 + req->query.len == req->target.len);
    }
    RH_ASSERT(req->version_minor <= 1);
    RH_ASSERT(!(req->chunked && req->has_content_length));
    RH_ASSERT(!req->chunked || req->version_minor == 1);
    RH_ASSERT(req->content_length <= lim->body_bytes_max);
    RH_ASSERT(req->header_count <= lim->header_count_max);
}

/* A value fits its buffer with its NUL, is never longer than the query, and holds no NUL of its
 * own; a smaller buffer gives the same value or refuses it, by length alone. */
static void check_query(struct rh_span query, const char *key, size_t cap)
{
    char *out = malloc(cap), *whole = malloc(query.len + 1);
    size_t len = 12345, whole_len = 12345;
    bool found = rh_http_query_get(query, key, whole, query.len + 1, &whole_len);
    bool ok = rh_http_query_get(query, key, out, cap, &len);

    if (found) {
        RH_ASSERT(whole_len <= query.len);
        RH_ASSERT(whole[whole_len] == '\0');
        RH_ASSERT(strlen(whole) == whole_len);
    } else {
        RH_ASSERT(whole_len == 0);
    }
    if (ok) {
        RH_ASSERT(found);
        RH_ASSERT(len == whole_len);
        RH_ASSERT(len < cap);
        RH_ASSERT(out[len] == '\0');
        RH_ASSERT(memcmp(out, whole, len) == 0);
    } else {
        RH_ASSERT(len == 0);
        RH_ASSERT(!found || whole_len + 1 > cap);
    }
    free(out);
    free(whole);
}

/* The last path segment, decoded as the user of /api/events/{user}. */
static void check_path(struct rh_span path)
{
    const uint8_t *slash = path.len ? memrchr(path.ptr, '/', path.len) : NULL;
    if (!slash) return;
    struct rh_span segment = rh_span_make(slash + 1, (uint32_t)(path.ptr + path.len - slash - 1));
    char user[257]; /* RH_GROUP_NAME_MAX + 1 */
    size_t user_len = 999;
    if (rh_http_path_decode(segment, user, sizeof(user), &user_len)) {
        RH_ASSERT(user_len <= segment.len);
        RH_ASSERT(user_len < sizeof(user));
        RH_ASSERT(user[user_len] == '\0');
        RH_ASSERT(strlen(user) == user_len);
        /* A segment without escapes is itself ('+' included). */
        if (!memchr(segment.ptr, '%', segment.len)) {
            RH_ASSERT(user_len == segment.len);
            RH_ASSERT(memcmp(user, segment.ptr, user_len) == 0);
        }
    } else {
        RH_ASSERT(user_len == 0);
    }
}

static void check_last_event_id(const struct rh_http_request *req)
{
    const struct rh_span *last_id = rh_http_header(req, "Last-Event-ID");
    uint32_t epoch;
    uint64_t seq;
    if (!last_id || !rh_sse_parse_id(*last_id, &epoch, &seq)) return;
    char text[RH_SSE_EVENT_ID_MAX + 1];
    uint32_t len = rh_sse_format_id(text, epoch, seq);
    RH_ASSERT(len == last_id->len);
    RH_ASSERT(memcmp(text, last_id->ptr, len) == 0);
}

/* The front's test for an event stream, "text/event-stream" anywhere in Accept in any case,
 * over the span the parser gave (ASan sees a read past it), against a plain search. */
static void check_accept(const struct rh_http_request *req)
{
    static const char type[] = "text/event-stream";
    const struct rh_span *accept = rh_http_header(req, "Accept");
    if (!accept) return;
    bool found = false;
    if (accept->len >= sizeof(type) - 1) {
        for (uint32_t i = 0; i + sizeof(type) - 1 <= accept->len && !found; i++)
            found = strncasecmp((const char *)accept->ptr + i, type, sizeof(type) - 1) == 0;
    }
    char *lower = malloc(accept->len + 1);
    for (uint32_t i = 0; i < accept->len; i++) {
        uint8_t c = accept->ptr[i];
        lower[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    RH_ASSERT(found == (memmem(lower, accept->len, type, sizeof(type) - 1) != NULL));
    free(lower);
}

static void check_chunked(const uint8_t *body, size_t body_len, const struct rh_http_limits *lim,
                          uint64_t seed)
{
    size_t cut1 = body_len ? (size_t)(seed % (body_len + 1)) : 0;
    size_t cut2 = body_len ? (size_t)((seed >> 32) % (body_len + 1)) : 0;
    size_t two[1] = {cut1};
    size_t three[2] = {cut1 < cut2 ? cut1 : cut2, cut1 < cut2 ? cut2 : cut1};
    struct chunked_result whole, split2, split3, small;

    decode_chunked(lim, body, body_len, NULL, 0, 4096, &whole);
    decode_chunked(lim, body, body_len, two, 1, 7, &split2);
    decode_chunked(lim, body, body_len, three, 2, 1, &split3);
    check_same(&whole, &split2);
    check_same(&whole, &split3);

    /* Under a smaller body limit: the same body when it fits, else -EMSGSIZE; and whatever
     * the smaller limit accepts, the default one accepts the same way. */
    struct rh_http_limits tight = *lim;
    tight.body_bytes_max = 16;
    decode_chunked(&tight, body, body_len, two, 1, 5, &small);
    if (whole.done && whole.body_len <= tight.body_bytes_max) check_same(&whole, &small);
    if (whole.done && whole.body_len > tight.body_bytes_max) RH_ASSERT(small.err == -EMSGSIZE);
    if (!small.err) check_same(&whole, &small);

    free(whole.body);
    free(split2.body);
    free(split3.body);
    free(small.body);
}

/* Decodes the chunked body in @in, fed in pieces ending at @cuts (ascending) and at @len, and
 * drained through an output window of @window bytes. */
static void decode_chunked(const struct rh_http_limits *lim, const uint8_t *in, size_t len,
                           const size_t *cuts, size_t cut_count, size_t window,
                           struct chunked_result *r)
{
    struct rh_http_chunked st;
    uint8_t out[4096];
    size_t at = 0;

    RH_ASSERT(window <= sizeof(out));
    *r = (struct chunked_result){.body = malloc(len + 1)};
    rh_http_chunked_init(&st, lim);
    for (size_t piece = 0; piece <= cut_count && !st.done; piece++) {
        size_t end = piece < cut_count ? cuts[piece] : len;
        while (at < end && !st.done) {
            size_t got = 99999;
            const char *reason = NULL;
            ssize_t n = rh_http_chunked_decode(&st, in + at, end - at, out, window, &got, &reason);
            if (n < 0) {
                RH_ASSERT(reason != NULL);
                RH_ASSERT(rh_http_error_status(n) != 500);
                r->err = n;
                return;
            }
            RH_ASSERT((size_t)n <= end - at);
            RH_ASSERT(got <= window);
            /* It stops short only at the end of the body or with its window full. */
            if (!st.done && got < window) RH_ASSERT((size_t)n == end - at);
            RH_ASSERT(r->body_len + got <= len);
            RH_ASSERT(r->body_len + got <= lim->body_bytes_max);
            memcpy(r->body + r->body_len, out, got);
            r->body_len += got;
            at += (size_t)n;
            RH_ASSERT(st.body_len == r->body_len);
        }
    }
    r->done = st.done;
    r->consumed = st.done ? at : 0;
}

static void check_same(const struct chunked_result *a, const struct chunked_result *b)
{
    RH_ASSERT(a->err == b->err);
    if (a->err) return; /* the body read before the error differs with the window size */
    RH_ASSERT(a->done == b->done);
    RH_ASSERT(a->consumed == b->consumed);
    RH_ASSERT(a->body_len == b->body_len);
    RH_ASSERT(a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0);
}

/* FNV-1a over the input: where to cut the body, different for every input. */
static uint64_t hash_bytes(const uint8_t *data, size_t size)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211u;
    return h;
}
