/*
 * shards/main.c - the ringhub server: configuration, then the shard runtime until SIGINT or
 * SIGTERM.
 *
 * The HTTP front (negotiate, WebSocket, hubs) is the next layer to land; until then each
 * connection is answered with a plain 503 that says so, so that a client probing the port
 * gets a clear answer instead of a silent socket.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/cfg.h"
#include "core/hash.h"
#include "core/log.h"
#include "shards/shard.h"

static const char not_yet[] = "HTTP/1.1 503 Service Unavailable\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: 43\r\n"
                              "Connection: close\r\n"
                              "\r\n"
                              "ringhub: the HTTP layer is not built yet.\r\n";

static void conn_open(struct rh_conn *c);
static ssize_t conn_recv(struct rh_conn *c, const uint8_t *data, size_t len);
static void conn_close(struct rh_conn *c);

static const struct rh_conn_handler placeholder_handler = {
    .conn_open = conn_open,
    .conn_recv = conn_recv,
    .conn_close = conn_close,
};

int main(int argc, char **argv)
{
    struct rh_cfg cfg;
    char err_text[256];
    rh_cfg_defaults(&cfg);
    int rc = rh_cfg_parse_args(&cfg, argc, argv, err_text, sizeof(err_text));
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "ringhub: %s (see --help)\n", err_text);
        rh_cfg_free(&cfg);
        return rc < 0 ? 2 : 0;
    }
    rh_log_set_level(cfg.log_level);
    rh_hash_seed_random();

    int err = rh_runtime_serve(&cfg, &placeholder_handler);
    rh_cfg_free(&cfg);
    int64_t leaked = rh_alloc_live_bytes();
    if (!err && leaked)
        rh_log_warn("main", "%lld bytes still allocated at exit", (long long)leaked);
    return err ? 1 : 0;
}

static void conn_open(struct rh_conn *c)
{
    (void)c;
}

static ssize_t conn_recv(struct rh_conn *c, const uint8_t *data, size_t len)
{
    (void)data;
    rh_conn_send_copy(c, not_yet, sizeof(not_yet) - 1);
    rh_conn_close(c, RH_CLOSE_AFTER_FLUSH);
    return (ssize_t)len;
}

static void conn_close(struct rh_conn *c)
{
    (void)c;
}
