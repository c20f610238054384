/*
 * tests/unit/test_http.c - the HTTP/1.1 request parser, chunked decoder, query and header
 * helpers and response writers of transports/http/http.h. Every sample is parsed at every
 * prefix (the parser restarts from the start on each call, so a prefix is a split point), then
 * every rejection is checked with the status it maps to.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "tests/harness/check.h"
#include "transports/http/http.h"

#define CHECK_STR(a, b)                                                                            \
    rh_check_report(strcmp((a), (b)) == 0, __FILE__, __LINE__, #a " == " #b, (a))
#define CHECK_SPAN(s, lit) rh_check_report(rh_span_eq_str((s), (lit)), __FILE__, __LINE__, #s, lit)

static struct rh_http_limits lim;

/* Parses @raw (@len bytes) at every prefix: shorter ones must give -EAGAIN or the final error,
 * and a successful parse must give the same request at exactly the consumed length. */
static ssize_t parse_splits(const char *raw, size_t len, struct rh_http_request *req,
                            const char **reason)
{
    static struct rh_http_request first;
    const uint8_t *data = (const uint8_t *)raw;
    const char *why = NULL;
    ssize_t r = rh_http_parse_request(data, len, &lim, req, &why);
    bool split_ok = true;

    if (reason) *reason = why;
    if (r < 0) CHECK(why != NULL);
    for (size_t n = 0; n < len; n++) {
        ssize_t rn = rh_http_parse_request(data, n, &lim, &first, NULL);
        if (r > 0 && (size_t)r <= n) {
            split_ok &= rn == r && first.header_count == req->header_count &&
                        first.content_length == req->content_length &&
                        first.keep_alive == req->keep_alive && first.chunked == req->chunked;
        } else {
            split_ok &= rn == -EAGAIN || rn == r;
        }
    }
    CHECK(split_ok);
    return r;
}

static ssize_t parse_str(const char *raw, struct rh_http_request *req)
{
    return parse_splits(raw, strlen(raw), req, NULL);
}

static int status_of(const char *raw)
{
    static struct rh_http_request req;
    ssize_t r = parse_str(raw, &req);
    return r > 0 ? 200 : r == -EAGAIN ? 0 : rh_http_error_status(r);
}

static void test_negotiate(void)
{
    static struct rh_http_request req;
    const char *raw = "POST /hubs/chat/negotiate?negotiateVersion=1 HTTP/1.1\r\n"
                      "Host: localhost:5000\r\n"
                      "X-Requested-With:   XMLHttpRequest \t\r\n"
                      "Content-Length: 0\r\n"
                      "Empty:\r\n"
                      "\r\n";
    ssize_t r = parse_str(raw, &req);

    CHECK_EQ(r, strlen(raw));
    CHECK_EQ(req.method, RH_HTTP_POST);
    CHECK_STR(rh_http_method_name(req.method), "POST");
    CHECK_EQ(req.version_minor, 1);
    CHECK_SPAN(req.target, "/hubs/chat/negotiate?negotiateVersion=1");
    CHECK_SPAN(req.path, "/hubs/chat/negotiate");
    CHECK_SPAN(req.query, "negotiateVersion=1");
    CHECK_EQ(req.header_count, 4);
    CHECK_SPAN(req.headers[1].name, "X-Requested-With");
    CHECK_SPAN(req.headers[1].value, "XMLHttpRequest");
    CHECK_SPAN(req.headers[3].value, "");
    CHECK(req.has_content_length);
    CHECK_EQ(req.content_length, 0);
    CHECK(!req.chunked);
    CHECK(req.keep_alive);
    CHECK(!req.upgrade_websocket);

    const struct rh_span *host = rh_http_header(&req, "HOST");
    CHECK(host != NULL);
    if (!host) return;
    CHECK_SPAN(*host, "localhost:5000");
    CHECK(rh_http_header(&req, "Cookie") == NULL);
}

static void test_websocket_upgrade(void)
{
    static struct rh_http_request req;
    const char *raw = "GET /hubs/chat?id=abc&access_token=x%2By HTTP/1.1\r\n"
                      "Host: h\r\n"
                      "Upgrade: websocket\r\n"
                      "Connection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n"
                      "\r\n";

    CHECK_EQ(parse_str(raw, &req), strlen(raw));
    CHECK_EQ(req.method, RH_HTTP_GET);
    CHECK(req.upgrade_websocket);
    CHECK(req.keep_alive);
    CHECK(!req.has_content_length);
    CHECK_SPAN(req.path, "/hubs/chat");

    /* Token lists, case-insensitive, with other tokens around. */
    raw = "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: "
          "WebSocket\r\n\r\n";
    CHECK_EQ(parse_str(raw, &req), strlen(raw));
    CHECK(req.upgrade_websocket);
    CHECK(rh_http_header_has_token(&req, "connection", "KEEP-ALIVE"));
    CHECK(rh_http_header_has_token(&req, "connection", "upgrade"));
    CHECK(!rh_http_header_has_token(&req, "connection", "close"));
    CHECK(!rh_http_header_has_token(&req, "connection", "keep"));
    CHECK(!rh_http_header_has_token(&req, "x-missing", "upgrade"));

    CHECK_GT(parse_str("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n", &req), 0);
    CHECK(!req.upgrade_websocket);
    CHECK_GT(parse_str("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", &req), 0);
    CHECK(!req.upgrade_websocket);
    CHECK_GT(
        parse_str("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n", &req),
        0);
    CHECK(!req.upgrade_websocket);
    CHECK_GT(parse_str("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", &req),
             0);
    CHECK(!req.upgrade_websocket);
    CHECK_GT(parse_str("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgraded\r\n"
                       "Upgrade: websocket\r\n\r\n",
                       &req),
             0);
    CHECK(!req.upgrade_websocket);
}

static void test_sse_and_delete(void)
{
    static struct rh_http_request req;
    const char *sse = "GET /hubs/chat?id=tok&_=1700000000000 HTTP/1.1\r\n"
                      "Host: h\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
    const char *del = "DELETE /hubs/chat?id=tok HTTP/1.1\r\nHost: h\r\n"
                      "X-Requested-With: XMLHttpRequest\r\nConnection: close\r\n\r\n";

    CHECK_EQ(parse_str(sse, &req), strlen(sse));
    CHECK_EQ(req.method, RH_HTTP_GET);
    CHECK_SPAN(req.query, "id=tok&_=1700000000000");
    CHECK(rh_http_header_has_token(&req, "accept", "text/event-stream"));
    CHECK(!req.has_content_length);
    CHECK_EQ(req.content_length, 0);

    CHECK_EQ(parse_str(del, &req), strlen(del));
    CHECK_EQ(req.method, RH_HTTP_DELETE);
    CHECK(!req.keep_alive);

    static const char *const methods[] = {"GET",  "POST", "DELETE", "OPTIONS",
                                          "HEAD", "PUT",  "PATCH"};
    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s /x HTTP/1.1\r\nHost: h\r\n\r\n", methods[m]);
        CHECK_GT(parse_str(buf, &req), 0);
        CHECK_EQ(req.method, m);
        CHECK_STR(rh_http_method_name(req.method), methods[m]);
    }
    CHECK_GT(parse_str("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &req), 0);
    CHECK_SPAN(req.path, "*");
    CHECK_EQ(req.query.len, 0);
    CHECK(req.query.ptr == req.target.ptr + 1);

    /* Empty lines before the request line are skipped and counted. */
    CHECK_EQ(parse_str("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", &req), 31);
    CHECK_GT(parse_str("GET /? HTTP/1.1\r\nHost: h\r\n\r\n", &req), 0);
    CHECK_SPAN(req.path, "/");
    CHECK_SPAN(req.query, "");
}

static void test_chunked_request(void)
{
    static struct rh_http_request req;
    const char *raw = "POST /hubs/chat?id=tok HTTP/1.1\r\nHost: h\r\n"
                      "Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    ssize_t r = parse_str(raw, &req);

    CHECK_EQ(r, strstr(raw, "5\r\n") - raw);
    CHECK(req.chunked);
    CHECK(!req.has_content_length);
}

static void test_keep_alive(void)
{
    static struct rh_http_request req;

    CHECK_GT(parse_str("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &req), 0);
    CHECK(req.keep_alive);
    CHECK_GT(parse_str("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", &req), 0);
    CHECK(!req.keep_alive);
    CHECK_GT(parse_str("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n"
                       "Connection: x, close\r\n\r\n",
                       &req),
             0);
    CHECK(!req.keep_alive);
    CHECK_GT(parse_str("GET / HTTP/1.0\r\n\r\n", &req), 0);
    CHECK_EQ(req.version_minor, 0);
    CHECK(!req.keep_alive);
    CHECK_GT(parse_str("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req), 0);
    CHECK(req.keep_alive);
    CHECK_GT(parse_str("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &req), 0);
    CHECK(!req.keep_alive);
}

static void test_pipelined(void)
{
    static struct rh_http_request req;
    const char *raw = "POST /hubs/chat/negotiate HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n"
                      "body"
                      "GET /hubs/chat?id=1 HTTP/1.1\r\nHost: h\r\n\r\n"
                      "DELETE /hubs/chat?id=1 HTTP/1.1\r\nHost: h\r\n\r\n";
    static const enum rh_http_method want[] = {RH_HTTP_POST, RH_HTTP_GET, RH_HTTP_DELETE};
    const uint8_t *p = (const uint8_t *)raw;
    size_t left = strlen(raw);

    for (size_t i = 0; i < 3; i++) {
        ssize_t r = rh_http_parse_request(p, left, &lim, &req, NULL);
        CHECK_GT(r, 0);
        if (r <= 0) return;
        CHECK_EQ(req.method, want[i]);
        p += r;
        left -= (size_t)r;
        CHECK_LE(req.content_length, left);
        p += req.content_length;
        left -= req.content_length;
    }
    CHECK_EQ(left, 0);
    CHECK_EQ(rh_http_parse_request(p, left, &lim, &req, NULL), -EAGAIN);
}

static void test_rejections(void)
{
    static const struct {
        const char *raw;
        int status;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400}, /* obs-fold */
        {"GET / HTTP/1.1\r\n\tHost: h\r\n\r\n", 400},             /* obs-fold, first field */
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400},    /* bare CR in value */
        {"GET / HTTP/1.1\rHost: h\r\n\r\n", 400},                 /* bare CR after version */
        {"GET / HTTP/1.1\nHost: h\n\n", 400},                     /* LF-only lines */
        {"GET / HTTP/1.1\r\nHost: h\nX: 1\r\n\r\n", 400},         /* bare LF in value */
        {"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},             /* bare LF before */
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n", 400},  /* control character */
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fz\r\n\r\n", 400},  /* DEL */
        {"GET / HTTP/1.1\r\nHost: h\r\nX(y: a\r\n\r\n", 400},     /* invalid name char */
        {"GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n", 400},        /* empty name */
        {"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400},    /* no colon */
        {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},              /* space before colon */
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 12a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         501},
        {"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},                       /* missing Host */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400}, /* two Host */
        {"BREW / HTTP/1.1\r\nHost: h\r\n\r\n", 501},           /* unknown method */
        {"get / HTTP/1.1\r\nHost: h\r\n\r\n", 501},            /* methods are case-sensitive */
        {"G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},            /* invalid method */
        {" / HTTP/1.1\r\nHost: h\r\n\r\n", 400},               /* empty method */
        {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},           /* double space */
        {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},           /* trailing space */
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        {"GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
        {"GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505},
        {"GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTPS/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1\r\nHost: h\r\n\r\n", 400},
        {"GET / http/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET /\r\n\r\n", 400},                             /* HTTP/0.9 */
        {"GET x HTTP/1.1\r\nHost: h\r\n\r\n", 400},         /* not origin-form */
        {"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400}, /* absolute-form */
        {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},         /* asterisk without OPTIONS */
        {"GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},    /* control in target */
        {"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400}, /* raw UTF-8 in target */
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", 413},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = status_of(cases[i].raw);
        if (got != cases[i].status) fprintf(stderr, "case %zu: %s\n", i, cases[i].raw);
        CHECK_EQ(got, cases[i].status);
    }

    /* Accepted edge cases next to the rejections. */
    static struct rh_http_request req;
    CHECK_GT(parse_str("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n"
                       "content-length: 7\r\n\r\n",
                       &req),
             0);
    CHECK_EQ(req.content_length, 7);
    CHECK_GT(parse_str("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n", &req), 0);
    CHECK_GT(parse_str("GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n", &req), 0);
    CHECK_GT(parse_str("GET / HTTP/1.1\r\nHost:\r\n\r\n", &req), 0);

    /* A partial request whose bytes so far are fine waits; a bad byte fails at once. */
    const char *why = NULL;
    CHECK_EQ(
        rh_http_parse_request((const uint8_t *)"GET / HTTP/1.1\r\nHost: h", 23, &lim, &req, &why),
        -EAGAIN);
    CHECK_EQ(
        rh_http_parse_request((const uint8_t *)"GET / HTTP/1.1\r\nHo st", 21, &lim, &req, &why),
        -EPROTO);
    CHECK_STR(why, "whitespace before colon");
    CHECK_EQ(rh_http_parse_request((const uint8_t *)"GET / HTTP/3.0", 14, &lim, &req, &why),
             -EPROTONOSUPPORT);
    CHECK_EQ(rh_http_parse_request((const uint8_t *)"", 0, &lim, &req, &why), -EAGAIN);
}

/* A request of exactly @block_len header-block bytes, padded in one field. */
static size_t make_block(char *buf, size_t block_len)
{
    const char *head = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
    size_t n = strlen(head);

    memcpy(buf, head, n);
    memset(buf + n, 'a', block_len - n - 4);
    memcpy(buf + block_len - 4, "\r\n\r\n", 4);
    return block_len;
}

static void test_limits(void)
{
    static struct rh_http_request req;
    static char buf[16384];
    const char *why = NULL;

    size_t n = make_block(buf, 8192);
    CHECK_EQ(rh_http_parse_request((const uint8_t *)buf, n, &lim, &req, NULL), 8192);
    CHECK_EQ(parse_splits(buf, n, &req, NULL), 8192);

    n = make_block(buf, 8193);
    CHECK_EQ(rh_http_parse_request((const uint8_t *)buf, n, &lim, &req, &why), -E2BIG);
    CHECK_EQ(rh_http_error_status(-E2BIG), 431);
    CHECK_STR(why, "request header block too large");
    /* With only the first 8192 bytes it cannot know yet; one more byte decides. */
    CHECK_EQ(rh_http_parse_request((const uint8_t *)buf, 8192, &lim, &req, NULL), -EAGAIN);
    CHECK_EQ(rh_http_parse_request((const uint8_t *)buf, 8193, &lim, &req, NULL), -E2BIG);

    /* A block that never ends fails as soon as it passes the limit. */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET / HTTP/1.1\r\nHost: h\r\nX: ", 28);
    CHECK_EQ(rh_http_parse_request((const uint8_t *)buf, 9000, &lim, &req, NULL), -E2BIG);

    /* Field count: 64 fields pass, 65 fail. */
    for (int count = 64; count <= 65; count++) {
        n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
        for (int i = 0; i < count; i++)
            n += (size_t)sprintf(buf + n, i == 0 ? "Host: h\r\n" : "X%d: v\r\n", i);
        n += (size_t)sprintf(buf + n, "\r\n");
        ssize_t r = rh_http_parse_request((const uint8_t *)buf, n, &lim, &req, &why);
        if (count == 64) {
            CHECK_EQ(r, n);
            CHECK_EQ(req.header_count, 64);
        } else {
            CHECK_EQ(rh_http_error_status(r), 431);
        }
    }

    /* Target: 4096 bytes pass, 4097 fail with 414 even before the line ends. */
    for (size_t target_len = 4096; target_len <= 4097; target_len++) {
        memcpy(buf, "GET /", 5);
        memset(buf + 5, 'p', target_len - 1);
        n = 4 + target_len;
        n += (size_t)sprintf(buf + n, " HTTP/1.1\r\nHost: h\r\n\r\n");
        ssize_t r = rh_http_parse_request((const uint8_t *)buf, n, &lim, &req, &why);
        if (target_len == 4096) {
            CHECK_EQ(r, n);
            CHECK_EQ(req.target.len, 4096);
        } else {
            CHECK_EQ(rh_http_error_status(r), 414);
            CHECK_EQ(rh_http_parse_request((const uint8_t *)buf, 4 + target_len, &lim, &req, NULL),
                     -ENAMETOOLONG);
            CHECK_EQ(rh_http_parse_request((const uint8_t *)buf, 3 + target_len, &lim, &req, NULL),
                     -EAGAIN);
        }
    }

    /* Smaller configured limits. */
    struct rh_http_limits small = lim;
    small.header_block_bytes_max = 32;
    small.target_bytes_max = 4;
    small.header_count_max = 1;
    small.body_bytes_max = 10;
    const char *ok = "GET /abc HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_EQ(rh_http_parse_request((const uint8_t *)ok, strlen(ok), &small, &req, NULL), 30);
    const char *big = "GET /abc HTTP/1.1\r\nHost: hhhh\r\n\r\n";
    CHECK_EQ(rh_http_parse_request((const uint8_t *)big, strlen(big), &small, &req, NULL), -E2BIG);
    const char *two = "GET /a HTTP/1.1\r\nHost: h\r\nA: b\r\n";
    CHECK_EQ(rh_http_parse_request((const uint8_t *)two, strlen(two), &small, &req, NULL), -E2BIG);
    const char *longer = "GET /abcde HTTP/1.1\r\n";
    CHECK_EQ(rh_http_parse_request((const uint8_t *)longer, strlen(longer), &small, &req, NULL),
             -ENAMETOOLONG);
    small.header_block_bytes_max = 8192;
    small.header_count_max = 64;
    const char *body = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
    CHECK_EQ(rh_http_parse_request((const uint8_t *)body, strlen(body), &small, &req, NULL),
             -EMSGSIZE);
}

static bool query(const char *q, const char *key, char *out, size_t cap, size_t *len)
{
    return rh_http_query_get(rh_span_make(q, (uint32_t)strlen(q)), key, out, cap, len);
}

static void test_query(void)
{
    const char *q = "id=abc&access_token=a%2Bb+c%20d&empty=&flag&acc%65ss=e&dup=1&dup=2&"
                    "bad=%zz&trunc=%4&trunc2=%&nul=%00&plus=++";
    char out[16];
    size_t len = 99;

    CHECK(query(q, "id", out, sizeof(out), &len));
    CHECK_STR(out, "abc");
    CHECK_EQ(len, 3);
    CHECK(query(q, "ID", out, sizeof(out), &len));
    CHECK_STR(out, "abc");
    CHECK(query(q, "access_token", out, sizeof(out), &len));
    CHECK_STR(out, "a+b c d");
    CHECK_EQ(len, 7);
    CHECK(query(q, "empty", out, sizeof(out), &len));
    CHECK_STR(out, "");
    CHECK_EQ(len, 0);
    CHECK(query(q, "flag", out, sizeof(out), &len));
    CHECK_STR(out, "");
    CHECK(query(q, "access", out, sizeof(out), &len));
    CHECK_STR(out, "e");
    CHECK(query(q, "dup", out, sizeof(out), &len));
    CHECK_STR(out, "1");
    CHECK(query(q, "plus", out, sizeof(out), &len));
    CHECK_STR(out, "  ");

    len = 99;
    CHECK(!query(q, "missing", out, sizeof(out), &len));
    CHECK_EQ(len, 0);
    CHECK(!query(q, "i", out, sizeof(out), &len));
    CHECK(!query(q, "idx", out, sizeof(out), &len));
    CHECK(!query(q, "bad", out, sizeof(out), &len));
    CHECK(!query(q, "trunc", out, sizeof(out), &len));
    CHECK(!query(q, "trunc2", out, sizeof(out), &len));
    CHECK(!query(q, "nul", out, sizeof(out), &len));
    CHECK(!query("", "id", out, sizeof(out), &len));
    CHECK(!query("&&=x&", "id", out, sizeof(out), &len));
    CHECK(!query("%zz=1", "id", out, sizeof(out), &len));
    CHECK(query("a+b=1", "a b", out, sizeof(out), &len));
    CHECK(!query("id%=1", "id", out, sizeof(out), &len));

    /* Bounds: the value and its NUL must fit. */
    CHECK(query("id=abc", "id", out, 4, &len));
    CHECK_STR(out, "abc");
    len = 99;
    CHECK(!query("id=abc", "id", out, 3, &len));
    CHECK_EQ(len, 0);
    CHECK(!query("id=", "id", out, 0, &len));
    CHECK(query("id=%41%42", "id", out, 3, &len));
    CHECK_STR(out, "AB");
    CHECK(!query("id=%41%42", "id", out, 2, &len));
}

/* Decodes @in fed in two parts split at @split, draining through an @out_cap-byte window. */
static ssize_t chunked_feed(const char *in, size_t len, size_t split, size_t out_cap,
                            const struct rh_http_limits *l, char *body, size_t *body_len,
                            bool *done, const char **why)
{
    struct rh_http_chunked st;
    static uint8_t window[64];
    size_t pos = 0;

    rh_http_chunked_init(&st, l);
    *body_len = 0;
    for (int part = 0; part < 2; part++) {
        size_t end = part == 0 ? split : len;
        while (pos < end && !st.done) {
            size_t produced;
            ssize_t r = rh_http_chunked_decode(&st, (const uint8_t *)in + pos, end - pos, window,
                                               out_cap, &produced, why);
            if (r < 0) return r;
            if (r == 0 && produced == 0) break;
            memcpy(body + *body_len, window, produced);
            *body_len += produced;
            pos += (size_t)r;
        }
    }
    *done = st.done;
    return (ssize_t)pos;
}

static void test_chunked(void)
{
    const char *in = "5\r\nhello\r\n6;name=\"v a\"\r\n world\r\n00A\r\n0123456789\r\n"
                     "0\r\nX-Trailer: t\r\nOther:\r\n\r\nGET /next";
    size_t len = strlen(in), want_consumed = len - strlen("GET /next");
    char body[64];
    size_t body_len;
    bool done, all_ok = true;

    for (size_t split = 0; split <= len; split++) {
        for (size_t cap = 1; cap <= 64; cap *= 4) {
            ssize_t r = chunked_feed(in, len, split, cap, &lim, body, &body_len, &done, NULL);
            all_ok &= r == (ssize_t)want_consumed && done && body_len == 21 &&
                      memcmp(body, "hello world0123456789", 21) == 0;
        }
    }
    CHECK(all_ok);

    /* Byte by byte, and an empty body. */
    struct rh_http_chunked st;
    rh_http_chunked_init(&st, &lim);
    body_len = 0;
    for (size_t i = 0; i < want_consumed; i++) {
        size_t produced;
        CHECK_EQ(rh_http_chunked_decode(&st, (const uint8_t *)in + i, 1, (uint8_t *)body + body_len,
                                        sizeof(body) - body_len, &produced, NULL),
                 1);
        body_len += produced;
        CHECK_EQ(st.done, i + 1 == want_consumed);
    }
    CHECK_EQ(body_len, 21);
    size_t produced = 7;
    CHECK_EQ(
        rh_http_chunked_decode(&st, (const uint8_t *)"x", 1, (uint8_t *)body, 1, &produced, NULL),
        0);
    CHECK_EQ(produced, 0);
    CHECK_EQ(chunked_feed("0\r\n\r\n", 5, 2, 8, &lim, body, &body_len, &done, NULL), 5);
    CHECK(done);
    CHECK_EQ(body_len, 0);
    CHECK_EQ(chunked_feed("3\r\nab", 5, 2, 8, &lim, body, &body_len, &done, NULL), 5);
    CHECK(!done);
    CHECK_EQ(body_len, 2);
}

static void test_chunked_errors(void)
{
    static char buf[8192];
    struct rh_http_limits small = lim;
    char body[64];
    size_t body_len;
    bool done;
    const char *why = NULL;

    small.body_bytes_max = 10;
#define FEED(s, l) chunked_feed((s), strlen(s), 0, 64, (l), body, &body_len, &done, &why)
    CHECK_EQ(FEED("a\r\n0123456789\r\n0\r\n\r\n", &small), 20);
    CHECK_EQ(FEED("b\r\n", &small), -EMSGSIZE);
    CHECK_STR(why, "request body too large");
    CHECK_EQ(rh_http_error_status(-EMSGSIZE), 413);
    CHECK_EQ(FEED("5\r\n01234\r\n6\r\n", &small), -EMSGSIZE);
    CHECK_EQ(FEED("ffffffffffffffffffffffff\r\n", &lim), -EMSGSIZE);
    CHECK_EQ(FEED("100001\r\n", &lim), -EMSGSIZE);

    static const char *const malformed[] = {
        "\r\n",         "g\r\n",          "5 \r\n",       " 5\r\n",           "-1\r\n",
        "0x5\r\n",      "5\rx",           "5\n",          "5\r\nhelloX",      "5\r\nhello\rx",
        "1;\x01\r\n",   "0\r\n x: y\r\n", "0\r\nx y\r\n", "0\r\nx: \x01\r\n", "0\r\n\rx",
        "0\r\nx: y\rx",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        ssize_t r = FEED(malformed[i], &lim);
        if (r != -EPROTO) fprintf(stderr, "malformed chunk case %zu\n", i);
        CHECK_EQ(r, -EPROTO);
    }

    /* Chunk-size lines and trailers are bounded. */
    memset(buf, '0', sizeof(buf));
    buf[RH_HTTP_CHUNK_LINE_BYTES_MAX + 1] = '\0';
    CHECK_EQ(FEED(buf, &lim), -EPROTO);
    CHECK_STR(why, "chunk size line too long");
    memcpy(buf, "1;", 2);
    CHECK_EQ(FEED(buf, &lim), -EPROTO);
    memset(buf, 'x', sizeof(buf));
    memcpy(buf, "0\r\nT: ", 6);
    buf[RH_HTTP_TRAILER_BYTES_MAX + 10] = '\0';
    CHECK_EQ(FEED(buf, &lim), -E2BIG);
    CHECK_STR(why, "trailer section too large");
#undef FEED
}

static void test_responses(void)
{
    static const struct rh_http_field json[] = {{"Content-Type", "application/json"}};
    static const struct rh_http_field ws[] = {
        {"Upgrade", "websocket"},
        {"Connection", "Upgrade"},
        {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
    };
    static const struct rh_http_field sse[] = {{"Content-Type", "text/event-stream"},
                                               {"Transfer-Encoding", "chunked"}};
    uint8_t out[512];
    const char *want;
    ssize_t n;

    want = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    n = rh_http_response_write(out, sizeof(out), 200, json, 1, "{}", 2);
    CHECK_EQ(n, strlen(want));
    CHECK(n > 0 && memcmp(out, want, (size_t)n) == 0);
    CHECK_EQ(rh_http_response_write(out, strlen(want), 200, json, 1, "{}", 2), strlen(want));
    CHECK_EQ(rh_http_response_write(out, strlen(want) - 1, 200, json, 1, "{}", 2), -ENOBUFS);

    struct rh_buf *buf = rh_http_response_buf(200, json, 1, "{}", 2);
    CHECK_EQ(buf->len, strlen(want));
    CHECK(memcmp(buf->data, want, buf->len) == 0);
    CHECK_EQ(buf->refs, 1);
    rh_buf_unref(buf);

    want = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    n = rh_http_response_write(out, sizeof(out), 101, ws, 3, NULL, 0);
    CHECK_EQ(n, strlen(want));
    CHECK(n > 0 && memcmp(out, want, (size_t)n) == 0);

    want = "HTTP/1.1 204 No Content\r\n\r\n";
    n = rh_http_response_write(out, sizeof(out), 204, NULL, 0, NULL, 0);
    CHECK_EQ(n, strlen(want));
    CHECK(n > 0 && memcmp(out, want, (size_t)n) == 0);

    want = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
           "Transfer-Encoding: chunked\r\n\r\n";
    n = rh_http_response_head(out, sizeof(out), 200, sse, 2);
    CHECK_EQ(n, strlen(want));
    CHECK(n > 0 && memcmp(out, want, (size_t)n) == 0);
    CHECK_EQ(rh_http_response_head(out, 10, 200, sse, 2), -ENOBUFS);

    want = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
           "Content-Length: 31\r\n\r\nrequest header block too large\n";
    n = rh_http_error_response(out, sizeof(out), 431, "request header block too large");
    CHECK_EQ(n, strlen(want));
    CHECK(n > 0 && memcmp(out, want, (size_t)n) == 0);

    want = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Connection: close\r\nContent-Length: 10\r\n\r\nNot Found\n";
    n = rh_http_error_response(out, sizeof(out), 404, NULL);
    CHECK_EQ(n, strlen(want));
    CHECK(n > 0 && memcmp(out, want, (size_t)n) == 0);
    CHECK_EQ(rh_http_error_response(out, 20, 404, NULL), -ENOBUFS);

    CHECK_STR(rh_http_status_text(405), "Method Not Allowed");
    CHECK_STR(rh_http_status_text(413), "Content Too Large");
    CHECK_STR(rh_http_status_text(299), "Unknown");

    CHECK_EQ(rh_http_error_status(-EPROTO), 400);
    CHECK_EQ(rh_http_error_status(-ENAMETOOLONG), 414);
    CHECK_EQ(rh_http_error_status(-EPROTONOSUPPORT), 505);
    CHECK_EQ(rh_http_error_status(-EOPNOTSUPP), 501);
    CHECK_EQ(rh_http_error_status(-ENOMEM), 500);
}

int main(void)
{
    rh_http_limits_defaults(&lim);
    CHECK_EQ(lim.header_block_bytes_max, 8192);
    CHECK_EQ(lim.header_count_max, 64);
    CHECK_EQ(lim.target_bytes_max, 4096);
    CHECK_EQ(lim.body_bytes_max, 1 << 20);

    test_negotiate();
    test_websocket_upgrade();
    test_sse_and_delete();
    test_chunked_request();
    test_keep_alive();
    test_pipelined();
    test_rejections();
    test_limits();
    test_query();
    test_chunked();
    test_chunked_errors();
    test_responses();
    return rh_check_finish();
}
