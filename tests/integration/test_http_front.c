/*
 * tests/integration/test_http_front.c - the real ringhub binary's HTTP front over loopback:
 * routes and statuses, keep-alive and pipelining, request bodies skipped to reach the next
 * pipelined request, a request trickled in byte by byte, and malformed or oversized requests
 * answered with their 4xx and a closed connection (while other connections carry on), CORS
 * preflights and Origin echoes; then a second server with --hub-prefix, --hubs and
 * --cors-origins set.
 * Usage: test_http_front RINGHUB [flags...]
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "tests/harness/check.h"
#include "tests/harness/server.h"

#define WAIT_MS 10000

static int port;

struct response {
    int status;
    char head[1024]; /* status line and fields */
    char body[256];
    bool has_close;
};

static int dial(void)
{
    return rh_test_dial(port);
}

static void send_all(int fd, const char *text, size_t len)
{
    while (len) {
        ssize_t n = write(fd, text, len);
        if (n <= 0) return;
        text += n;
        len -= (size_t)n;
    }
}

/* Reads everything until EOF (or the deadline); returns the byte count, -1 on timeout. */
static int read_to_eof(int fd, char *out, size_t cap)
{
    size_t have = 0;
    int64_t deadline = rh_clock_now_ms() + WAIT_MS;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - rh_clock_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) return -1;
        ssize_t n = read(fd, out + have, cap - 1 - have);
        if (n <= 0) break;
        have += (size_t)n;
        if (have == cap - 1) break;
    }
    out[have] = '\0';
    return (int)have;
}

/* Splits @text into responses; returns how many were complete. */
static int parse_responses(const char *text, struct response *out, int max)
{
    int count = 0;
    while (count < max && strncmp(text, "HTTP/1.1 ", 9) == 0) {
        struct response *r = &out[count];
        memset(r, 0, sizeof(*r));
        r->status = atoi(text + 9);
        const char *end = strstr(text, "\r\n\r\n");
        if (!end) break;
        snprintf(r->head, sizeof(r->head), "%.*s", (int)(end + 2 - text), text);
        const char *cl = strstr(text, "Content-Length: ");
        int body_len = cl && cl < end ? atoi(cl + 16) : 0;
        const char *conn = strstr(text, "Connection: close");
        r->has_close = conn && conn < end;
        end += 4;
        if ((int)strlen(end) < body_len) break;
        snprintf(r->body, sizeof(r->body), "%.*s", body_len, end);
        text = end + body_len;
        count++;
    }
    return count;
}

/* Sends @request on a new connection, reads to EOF, parses up to @max responses. */
static int exchange(const char *request, struct response *out, int max)
{
    static char text[65536];
    int fd = dial();
    if (fd == -1) return -1;
    send_all(fd, request, strlen(request));
    int n = read_to_eof(fd, text, sizeof(text));
    close(fd);
    return n < 0 ? -1 : parse_responses(text, out, max);
}

static bool has_field(const struct response *r, const char *field)
{
    return strstr(r->head, field) != NULL;
}

/* A second server with a hub prefix, an allow-list of hubs and one allowed origin. */
static void check_hub_flags(char *binary, char *const *extra)
{
    char *argv[32] = {binary,
                      "--hub-prefix",
                      "/rt/v1/",
                      "--hubs",
                      "chat,news",
                      "--cors-origins",
                      "https://a.example,http://localhost:3000"};
    int n = 7;
    for (; *extra && n < 30; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    struct rh_test_server srv;
    if (rh_test_server_start(&srv, argv) != 0) {
        CHECK(!"the server with hub flags starts");
        return;
    }
    int saved_port = port;
    port = srv.port;
    struct response r[2];

    CHECK_EQ(exchange("POST /rt/v1/news/negotiate HTTP/1.1\r\nHost: t\r\n"
                      "Origin: http://localhost:3000\r\nConnection: close\r\n\r\n",
                      r, 2),
             1);
    CHECK_EQ(r[0].status, 200);
    CHECK(has_field(&r[0], "Access-Control-Allow-Origin: http://localhost:3000\r\n"));
    /* Not a listed hub, not under the prefix: 404. */
    CHECK_EQ(exchange("POST /rt/v1/other/negotiate HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      "\r\n",
                      r, 2),
             1);
    CHECK_EQ(r[0].status, 404);
    CHECK_EQ(exchange("POST /hubs/chat/negotiate HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                      r, 2),
             1);
    CHECK_EQ(r[0].status, 404);
    /* An origin not on the list gets no CORS fields, so the browser refuses the answer. */
    CHECK_EQ(exchange("OPTIONS /rt/v1/chat/negotiate HTTP/1.1\r\nHost: t\r\n"
                      "Origin: https://b.example\r\nAccess-Control-Request-Method: POST\r\n"
                      "Connection: close\r\n\r\n",
                      r, 2),
             1);
    CHECK_EQ(r[0].status, 204);
    CHECK(!has_field(&r[0], "Access-Control-Allow-Origin"));
    CHECK_EQ(exchange("OPTIONS /rt/v1/chat/negotiate HTTP/1.1\r\nHost: t\r\n"
                      "Origin: https://a.example\r\nAccess-Control-Request-Method: POST\r\n"
                      "Connection: close\r\n\r\n",
                      r, 2),
             1);
    CHECK(has_field(&r[0], "Access-Control-Allow-Origin: https://a.example\r\n"));
    /* EventSource streams serve only listed hubs too: the default "events" is not one here. */
    CHECK_EQ(exchange("GET /api/events/ada HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 2),
             1);
    CHECK_EQ(r[0].status, 404);
    CHECK_EQ(exchange("GET /api/events/ada?hub=other HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      "\r\n",
                      r, 2),
             1);
    CHECK_EQ(r[0].status, 404);

    CHECK_EQ(rh_test_server_stop(&srv, WAIT_MS), 0);
    port = saved_port;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s RINGHUB [flags]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rh_test_server srv;
    REQUIRE(rh_test_server_start(&srv, argv + 1) == 0);
    port = srv.port;
    struct response r[4];

    /* A connection held open across all the cases: bad requests elsewhere do not touch it. */
    int bystander = dial();
    REQUIRE(bystander != -1);

    CHECK_EQ(exchange("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 4), 1);
    CHECK_EQ(r[0].status, 200);
    CHECK(strcmp(r[0].body, "ok\n") == 0);

    CHECK_EQ(exchange("GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 4), 1);
    CHECK_EQ(r[0].status, 404);
    CHECK_EQ(exchange("DELETE /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 4), 1);
    CHECK_EQ(r[0].status, 405);

    /* Hub endpoints: transport requests need a connection id; other methods are refused. */
    CHECK_EQ(exchange("GET /hubs/chat HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 4), 1);
    CHECK_EQ(r[0].status, 400);
    CHECK(strcmp(r[0].body, "Connection ID required") == 0);
    CHECK_EQ(exchange("POST /hubs/chat HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 4), 1);
    CHECK_EQ(r[0].status, 400);
    CHECK_EQ(exchange("DELETE /hubs/chat HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 4),
             1);
    CHECK_EQ(r[0].status, 400);
    CHECK_EQ(exchange("PUT /hubs/chat HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 4), 1);
    CHECK_EQ(r[0].status, 405);
    /* Unknown ids (of either shard, or of no form at all) are 404, for every transport request;
     * a keep-alive connection carries the next request after each answer. */
    CHECK_EQ(exchange("GET /hubs/chat?id=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\n"
                      "Host: t\r\n\r\n"
                      "POST /hubs/chat?id=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\n"
                      "Host: t\r\nContent-Length: 3\r\n\r\nabc"
                      "DELETE /hubs/chat?id=nonsense HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      "\r\n",
                      r, 4),
             3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(r[i].status, 404);
        CHECK(strcmp(r[i].body, "No Connection with that ID") == 0);
    }
    CHECK_EQ(exchange("GET /hubs/chat?id=x HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n"
                      "Connection: close\r\n\r\n",
                      r, 4),
             1);
    CHECK_EQ(r[0].status, 404);
    /* A poll takes no body. */
    CHECK_EQ(
        exchange("GET /hubs/chat?id=x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab", r, 4),
        1);
    CHECK_EQ(r[0].status, 400);
    /* EventSource streams: the user is one non-empty path segment. */
    CHECK_EQ(exchange("GET /api/events/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 4),
             1);
    CHECK_EQ(r[0].status, 400);
    CHECK_EQ(exchange("GET /api/events/a/b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 4),
             1);
    CHECK_EQ(r[0].status, 400);
    CHECK_EQ(exchange("POST /api/events/a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 4),
             1);
    CHECK_EQ(r[0].status, 405);
    CHECK_EQ(exchange("GET /hubs/chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, close\r\n"
                      "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Key: not-a-key\r\n\r\n",
                      r, 4),
             1);
    CHECK_EQ(r[0].status, 400);
    CHECK_EQ(exchange("GET /hubs/chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, close\r\n"
                      "Upgrade: websocket\r\nSec-WebSocket-Version: 8\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                      r, 4),
             1);
    CHECK_EQ(r[0].status, 426);

    /* Negotiate: POST only; versions 0 and 1; a bad version is an error in the JSON body. */
    CHECK_EQ(
        exchange("GET /hubs/chat/negotiate HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r, 4),
        1);
    CHECK_EQ(r[0].status, 405);
    CHECK_EQ(exchange("POST /hubs/chat/negotiate?negotiateVersion=x HTTP/1.1\r\nHost: t\r\n"
                      "Connection: close\r\n\r\n",
                      r, 4),
             1);
    CHECK_EQ(r[0].status, 200);
    CHECK(strstr(r[0].body, "non-integer") != NULL);
    CHECK_EQ(exchange("POST /hubs/chat/negotiate HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                      r, 4),
             1);
    CHECK_EQ(r[0].status, 200);
    CHECK(strstr(r[0].body, "\"negotiateVersion\":0") != NULL);
    CHECK(strstr(r[0].body, "connectionToken") == NULL);
    CHECK_EQ(exchange("POST /hubs/chat/negotiate?negotiateVersion=1 HTTP/1.1\r\nHost: t\r\n"
                      "Connection: close\r\n\r\n",
                      r, 4),
             1);
    CHECK(strstr(r[0].body, "\"negotiateVersion\":1") != NULL);
    CHECK(strstr(r[0].body, "\"connectionToken\":\"") != NULL);
    CHECK(strstr(r[0].body,
                 "{\"transport\":\"WebSockets\",\"transferFormats\":[\"Text\",\"Binary\"]}") !=
          NULL);

    /* CORS (any origin by default): a preflight, then the Origin echoed with credentials. */
    CHECK_EQ(exchange("OPTIONS /hubs/chat/negotiate?negotiateVersion=1 HTTP/1.1\r\nHost: t\r\n"
                      "Origin: http://app.example:8080\r\nAccess-Control-Request-Method: POST\r\n"
                      "Access-Control-Request-Headers: x-signalr-user-agent, x-requested-with\r\n"
                      "Connection: close\r\n\r\n",
                      r, 4),
             1);
    CHECK_EQ(r[0].status, 204);
    CHECK(has_field(&r[0], "Access-Control-Allow-Origin: http://app.example:8080\r\n"));
    CHECK(has_field(&r[0], "Access-Control-Allow-Credentials: true\r\n"));
    CHECK(has_field(&r[0], "Access-Control-Allow-Methods: GET, POST, DELETE, OPTIONS\r\n"));
    CHECK(has_field(&r[0],
                    "Access-Control-Allow-Headers: x-signalr-user-agent, x-requested-with\r\n"));
    CHECK_EQ(exchange("POST /hubs/chat/negotiate?negotiateVersion=1 HTTP/1.1\r\nHost: t\r\n"
                      "Origin: http://app.example:8080\r\nConnection: close\r\n\r\n",
                      r, 4),
             1);
    CHECK_EQ(r[0].status, 200);
    CHECK(has_field(&r[0], "Access-Control-Allow-Origin: http://app.example:8080\r\n"));
    CHECK(has_field(&r[0], "Vary: Origin\r\n"));
    /* No Origin: a same-origin or non-browser request gets no CORS fields. */
    CHECK_EQ(exchange("POST /hubs/chat/negotiate HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                      r, 4),
             1);
    CHECK(!has_field(&r[0], "Access-Control-Allow-Origin"));

    /* HTTP/1.0 closes after one response without being asked. */
    CHECK_EQ(exchange("GET /healthz HTTP/1.0\r\n\r\n", r, 4), 1);
    CHECK_EQ(r[0].status, 200);

    /* Pipelined, with a Content-Length body and a chunked body to skip in between. */
    CHECK_EQ(exchange("POST /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world"
                      "POST /nowhere HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                      r, 4),
             3);
    CHECK_EQ(r[0].status, 404);
    CHECK_EQ(r[1].status, 404);
    CHECK_EQ(r[2].status, 200);

    /* Malformed: 400 and the connection closes even though it asked for keep-alive. */
    CHECK_EQ(exchange("GET /healthz HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", r, 4), 1);
    CHECK_EQ(r[0].status, 400);
    CHECK(r[0].has_close);
    CHECK_EQ(exchange("GET /healthz HTTP/1.1\r\n\r\n", r, 4), 1); /* no Host */
    CHECK_EQ(r[0].status, 400);
    CHECK_EQ(exchange("GET /healthz HTTP/2.0\r\nHost: t\r\n\r\n", r, 4), 1);
    CHECK_EQ(r[0].status, 505);

    /* Oversized header block: 431 as soon as the limit passes, without waiting for the end. */
    static char big[10000];
    int len = snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: ");
    memset(big + len, 'a', 9000);
    big[len + 9000] = '\0';
    CHECK_EQ(exchange(big, r, 4), 1);
    CHECK_EQ(r[0].status, 431);

    /* A request trickled in one byte at a time is answered once complete. */
    int fd = dial();
    const char *slow = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    for (const char *p = slow; *p; p++) {
        send_all(fd, p, 1);
        usleep(500);
    }
    static char text[4096];
    CHECK_GT(read_to_eof(fd, text, sizeof(text)), 0);
    CHECK_EQ(parse_responses(text, r, 4), 1);
    CHECK_EQ(r[0].status, 200);
    close(fd);

    /* The bystander still works, on the same keep-alive connection, twice. */
    for (int i = 0; i < 2; i++) {
        const char *req = i ? "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                            : "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
        send_all(bystander, req, strlen(req));
    }
    CHECK_GT(read_to_eof(bystander, text, sizeof(text)), 0);
    CHECK_EQ(parse_responses(text, r, 4), 2);
    CHECK_EQ(r[0].status, 200);
    CHECK_EQ(r[1].status, 200);
    close(bystander);

    /* 0 only if the server stopped in time and freed everything it allocated. */
    CHECK_EQ(rh_test_server_stop(&srv, WAIT_MS), 0);

    check_hub_flags(argv[1], argv + 2);
    return rh_check_finish();
}
