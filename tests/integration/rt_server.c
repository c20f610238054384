/*
 * tests/integration/rt_server.c - a test-only server on the shard runtime, driven by a line
 * protocol, so the runtime can be tested before the HTTP layer exists. It never ships: only
 * tests and the runtime benchmarks build it.
 *
 *   on connect      server sends  "HELLO <shard> <connection id in hex>\n"
 *   BCAST <text>    every connection on every shard gets "MSG <text>\n", once
 *   ECHO <text>     the sender gets "<text>\n"
 *   STATS           the sender gets "STATS live=N ops=N accepted=N closed=N\n" (all shards)
 *   QUIT            the sender gets "BYE\n", then the server closes the connection
 *   MOVE <shard>    the connection moves to that shard (rh_conn_handoff); lines sent after
 *                   MOVE are handled there; the new shard sends "MOVED <shard> <id> <from>\n"
 *   anything else   the connection is closed at once
 *
 * Exit status 3 means memory was still allocated at exit (rh_runtime_main checks).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shards/shard.h"

#define LINE_MAX_BYTES 4096
#define BLOB_BROADCAST 1

struct sender_ctx {
    struct rh_buf *frame;
};

static ssize_t conn_recv(struct rh_conn *c, const uint8_t *data, size_t len);
static int handle_line(struct rh_conn *c, const char *line, size_t len);
static void send_text(struct rh_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void conn_open(struct rh_conn *c)
{
    send_text(c, "HELLO %u %llx\n", rh_shard_idx(rh_conn_shard(c)),
              (unsigned long long)rh_conn_id(c));
}

static void conn_adopt(struct rh_conn *c, const uint8_t *data, size_t len)
{
    send_text(c, "MOVED %u %llx %.*s\n", rh_shard_idx(rh_conn_shard(c)),
              (unsigned long long)rh_conn_id(c), (int)len, (const char *)data);
}

static void conn_close(struct rh_conn *c)
{
    (void)c;
}

static void send_frame(struct rh_conn *c, void *ctx)
{
    rh_conn_send(c, ((struct sender_ctx *)ctx)->frame);
}

static void blob(struct rh_shard *s, struct rh_blob *b)
{
    if (b->kind != BLOB_BROADCAST) return;
    /* Framed once per shard; every local connection's queue references the same bytes. */
    struct sender_ctx ctx = {.frame = rh_buf_new(b->len + 5)};
    memcpy(ctx.frame->data, "MSG ", 4);
    memcpy(ctx.frame->data + 4, b->data, b->len);
    ctx.frame->data[4 + b->len] = '\n';
    ctx.frame->len = b->len + 5;
    rh_shard_foreach_conn(s, send_frame, &ctx);
    rh_buf_unref(ctx.frame);
}

static const struct rh_conn_handler line_handler = {
    .conn_open = conn_open,
    .conn_recv = conn_recv,
    .conn_adopt = conn_adopt,
    .conn_close = conn_close,
    .blob = blob,
};

int main(int argc, char **argv)
{
    return rh_runtime_main(argc, argv, &line_handler);
}
static ssize_t conn_recv(struct rh_conn *c, const uint8_t *data, size_t len)
{
    size_t used = 0;
    while (used < len) {
        const uint8_t *nl = memchr(data + used, '\n', len - used);
        if (!nl) break;
        size_t line_len = (size_t)(nl - (data + used));
        int err = handle_line(c, (const char *)data + used, line_len);
        if (err) return err;
        used += line_len + 1;
        /* Closing or moving: what follows is not ours to read (a move carries it along). */
        if (!rh_conn_is_open(c)) return (ssize_t)used;
    }
    if (len - used > LINE_MAX_BYTES) return -EMSGSIZE;
    return (ssize_t)used;
}

static int handle_line(struct rh_conn *c, const char *line, size_t len)
{
    struct rh_shard *s = rh_conn_shard(c);
    if (len > 6 && memcmp(line, "BCAST ", 6) == 0) {
        struct rh_blob *b =
            rh_blob_new(BLOB_BROADCAST, rh_shard_count(s), line + 6, (uint32_t)len - 6);
        rh_shard_post_all(s, b);
    } else if (len >= 5 && memcmp(line, "ECHO ", 5) == 0) {
        struct rh_buf *buf = rh_buf_new((uint32_t)len - 4);
        memcpy(buf->data, line + 5, len - 5);
        buf->data[len - 5] = '\n';
        buf->len = (uint32_t)len - 4;
        rh_conn_send(c, buf);
        rh_buf_unref(buf);
    } else if (len == 5 && memcmp(line, "STATS", 5) == 0) {
        struct rh_runtime_stats st;
        rh_runtime_stats(rh_shard_runtime(s), &st);
        send_text(c, "STATS live=%llu ops=%llu accepted=%llu closed=%llu\n",
                  (unsigned long long)st.conns_live, (unsigned long long)st.conn_ops_inflight,
                  (unsigned long long)st.conns_accepted, (unsigned long long)st.conns_closed);
    } else if (len > 5 && memcmp(line, "MOVE ", 5) == 0) {
        char from[16];
        int n = snprintf(from, sizeof(from), "%u", rh_shard_idx(s));
        return rh_conn_handoff(c, (uint32_t)atoi(line + 5), from, (uint32_t)n);
    } else if (len == 4 && memcmp(line, "QUIT", 4) == 0) {
        send_text(c, "BYE\n");
        rh_conn_close(c, RH_CLOSE_AFTER_FLUSH);
    } else {
        return -EPROTO;
    }
    return 0;
}

static void send_text(struct rh_conn *c, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n > 0)
        rh_conn_send_copy(c, text, (uint32_t)n < sizeof(text) ? (uint32_t)n : sizeof(text) - 1);
}
