/* tests/fuzz/fuzz_http.c - feeds arbitrary bytes to the HTTP/1.1 request parser and the chunked
 * body decoder. The input is parsed whole and at a few prefixes (a prefix may only wait for more
 * or agree with the whole), pipelined requests are walked one after another, and a chunked
 * body is decoded from what follows its head. Whatever the input, results stay inside their
 * contracts: consumed <= length, every span inside the bytes parsed, errors map to a status. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "transports/http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(struct rh_span s, const uint8_t *data, size_t len)
{
    RH_ASSERT(s.ptr >= data);
    RH_ASSERT(s.ptr + s.len <= data + len);
}

static void check_request(const struct rh_http_request *req, const uint8_t *data, size_t len,
                          const struct rh_http_limits *lim)
{
    check_span(req->target, data, len);
    check_span(req->path, data, len);
    check_span(req->query, data, len);
    RH_ASSERT(req->target.len <= lim->target_bytes_max);
    RH_ASSERT(req->version_minor <= 1);
    RH_ASSERT(req->header_count <= lim->header_count_max);
    RH_ASSERT(!(req->chunked && req->has_content_length));
    RH_ASSERT(req->content_length <= lim->body_bytes_max);
    for (uint32_t i = 0; i < req->header_count; i++) {
        check_span(req->headers[i].name, data, len);
        check_span(req->headers[i].value, data, len);
        RH_ASSERT(req->headers[i].name.len > 0);
    }
    RH_ASSERT(rh_http_method_name(req->method) != NULL);

    char out[64];
    size_t out_len;
    if (rh_http_query_get(req->query, "id", out, sizeof(out), &out_len)) {
        RH_ASSERT(out_len < sizeof(out));
        RH_ASSERT(out[out_len] == '\0');
    } else {
        RH_ASSERT(out_len == 0);
    }
    (void)rh_http_header_has_token(req, "connection", "upgrade");
    (void)rh_http_header(req, "host");
}

static void check_error(ssize_t r, const char *reason)
{
    RH_ASSERT(r != -EAGAIN);
    RH_ASSERT(reason != NULL);
    RH_ASSERT(rh_http_error_status(r) != 500);

    uint8_t reply[256];
    RH_ASSERT(rh_http_error_response(reply, sizeof(reply), rh_http_error_status(r), reason) > 0);
}

/* Decodes a chunked body from @data, draining through a small window; returns bytes consumed. */
static size_t decode_chunked(const uint8_t *data, size_t len, const struct rh_http_limits *lim)
{
    struct rh_http_chunked st;
    uint8_t window[37];
    size_t pos = 0;
    uint64_t total = 0;
    const char *reason = NULL;

    rh_http_chunked_init(&st, lim);
    while (pos < len && !st.done) {
        size_t produced = 0;
        ssize_t r = rh_http_chunked_decode(&st, data + pos, len - pos, window, sizeof(window),
                                           &produced, &reason);
        if (r < 0) {
            check_error(r, reason);
            return len;
        }
        RH_ASSERT((size_t)r <= len - pos);
        RH_ASSERT(produced <= sizeof(window));
        RH_ASSERT(produced <= (size_t)r);
        RH_ASSERT(r > 0 || produced > 0 || st.done);
        pos += (size_t)r;
        total += produced;
        RH_ASSERT(total <= lim->body_bytes_max);
        RH_ASSERT(total == st.body_len);
    }
    return st.done ? pos : len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rh_http_request req, part;
    struct rh_http_limits lim;
    const char *reason = NULL;

    rh_http_limits_defaults(&lim);
    /* Small limits now and then, so the fuzzer reaches every limit with short inputs. */
    if (size > 0 && data[0] == 'S') {
        lim.header_block_bytes_max = 256;
        lim.header_count_max = 4;
        lim.target_bytes_max = 32;
        lim.body_bytes_max = 64;
    }

    ssize_t whole = rh_http_parse_request(data, size, &lim, &req, &reason);
    RH_ASSERT(whole == -EAGAIN || whole < 0 || (size_t)whole <= size);
    static const size_t cuts[] = {1, 2, 7, 31};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]) && cuts[i] < size; i++) {
        size_t n = size - cuts[i];
        ssize_t r = rh_http_parse_request(data, n, &lim, &part, NULL);
        /* The parser scans in order, so a prefix sees what the whole saw up to its end. */
        if (whole > 0)
            RH_ASSERT(r == ((size_t)whole <= n ? whole : -EAGAIN));
        else
            RH_ASSERT(r == -EAGAIN || r == whole);
    }

    /* Walk pipelined requests, skipping Content-Length bodies and decoding chunked ones. */
    size_t pos = 0;
    for (int i = 0; i < 64 && pos < size; i++) {
        reason = NULL;
        ssize_t r = rh_http_parse_request(data + pos, size - pos, &lim, &req, &reason);
        if (r == -EAGAIN) break;
        if (r < 0) {
            check_error(r, reason);
            break;
        }
        RH_ASSERT((size_t)r <= size - pos);
        check_request(&req, data + pos, (size_t)r, &lim);
        pos += (size_t)r;
        if (req.chunked) {
            pos += decode_chunked(data + pos, size - pos, &lim);
        } else {
            if (req.content_length > size - pos) break;
            pos += req.content_length;
        }
        RH_ASSERT(pos <= size);
    }
    return 0;
}
