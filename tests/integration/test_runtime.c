/*
 * tests/integration/test_runtime.c - drives the real shard runtime (tests/integration/
 * rt_server) over loopback TCP:
 *   - 1,000 connections land on every shard;
 *   - a broadcast from a connection on each shard reaches every connection exactly once
 *     (the next line each connection reads is that message, so a duplicate or a loss shows);
 *   - connections closed by the client (FIN and RST) and by the server (QUIT) leave no
 *     connection and no pending operation behind (the server's own counters, polled);
 *   - SIGTERM while broadcasts are flowing stops the server cleanly: exit status 0, which
 *     rt_server only gives when everything it allocated was freed (and, in sanitizer builds,
 *     LeakSanitizer agrees).
 * Usage: test_runtime RT_SERVER [server flags...]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "tests/harness/check.h"
#include "tests/harness/server.h"

#define CLIENTS    1000
#define SHARDS_MAX 64
#define WAIT_MS    20000

struct client {
    int fd;
    int shard;
    size_t len;
    char buf[4096];
};

static struct client clients[CLIENTS];
static int server_port;

static int connect_one(void)
{
    return rh_test_dial(server_port);
}

/* Reads one line into @out (without '\n'). Returns its length, 0 on EOF, -1 on timeout. */
static int read_line(struct client *c, char *out, size_t out_len)
{
    int64_t deadline = rh_clock_now_ms() + WAIT_MS;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            size_t copy = n < out_len - 1 ? n : out_len - 1;
            memcpy(out, c->buf, copy);
            out[copy] = '\0';
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            return (int)copy + 1;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int left = (int)(deadline - rh_clock_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) return -1;
        ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (got <= 0) return 0;
        c->len += (size_t)got;
    }
}

static bool expect_line(struct client *c, const char *want)
{
    char line[512];
    int n = read_line(c, line, sizeof(line));
    if (n <= 0 || strcmp(line, want) != 0) {
        fprintf(stderr, "client fd %d: wanted \"%s\", got %s\"%s\"\n", c->fd, want,
                n < 0    ? "timeout "
                : n == 0 ? "EOF "
                         : "",
                n > 0 ? line : "");
        return false;
    }
    return true;
}

static void send_line(struct client *c, const char *line)
{
    char text[512];
    int n = snprintf(text, sizeof(text), "%s\n", line);
    if (write(c->fd, text, (size_t)n) != n) fprintf(stderr, "short write on fd %d\n", c->fd);
}

static bool sees_eof(struct client *c)
{
    char line[512];
    int n;
    while ((n = read_line(c, line, sizeof(line))) > 0) {
    }
    return n == 0;
}

static void close_abortively(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* Polls the server's counters until live == 1 and ops == 1 (the asking connection and its
 * receive), or the deadline passes. */
static void check_settled(struct client *asker, unsigned long long accepted_want)
{
    unsigned long long live = 0, ops = 0, accepted = 0, closed = 0;
    int64_t deadline = rh_clock_now_ms() + WAIT_MS;
    char line[512];
    do {
        send_line(asker, "STATS");
        if (read_line(asker, line, sizeof(line)) <= 0) break;
        sscanf(line, "STATS live=%llu ops=%llu accepted=%llu closed=%llu", &live, &ops, &accepted,
               &closed);
        if (live == 1 && ops == 1) break;
        usleep(20000);
    } while (rh_clock_now_ms() < deadline);
    CHECK_EQ(live, 1);
    CHECK_EQ(ops, 1);
    CHECK_EQ(accepted, accepted_want);
    CHECK_EQ(closed, accepted_want - 1);
}

static int connect_clients(int from, int to, int *per_shard)
{
    for (int i = from; i < to; i++) {
        clients[i] = (struct client){.fd = connect_one()};
        if (clients[i].fd == -1) return -1;
    }
    for (int i = from; i < to; i++) {
        char line[256];
        unsigned shard;
        unsigned long long id;
        if (read_line(&clients[i], line, sizeof(line)) <= 0 ||
            sscanf(line, "HELLO %u %llx", &shard, &id) != 2 || shard >= SHARDS_MAX)
            return -1;
        clients[i].shard = (int)shard;
        per_shard[shard]++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s RT_SERVER [flags]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rh_test_server srv;
    REQUIRE(rh_test_server_start(&srv, argv + 1) == 0);
    server_port = srv.port;

    /* 1. Connections spread over every shard. */
    int per_shard[SHARDS_MAX] = {0};
    REQUIRE(connect_clients(0, CLIENTS, per_shard) == 0);
    int shards = 0;
    while (shards < SHARDS_MAX && per_shard[shards])
        shards++;
    for (int k = shards; k < SHARDS_MAX; k++)
        CHECK_EQ(per_shard[k], 0);
    CHECK_GE(shards, 2);
    fprintf(stderr, "%d connections over %d shards:", CLIENTS, shards);
    for (int k = 0; k < shards; k++)
        fprintf(stderr, " %d", per_shard[k]);
    fprintf(stderr, "\n");

    /* 2. A broadcast from each shard reaches every connection once. */
    for (int k = 0; k < shards; k++) {
        int from = 0;
        while (clients[from].shard != k)
            from++;
        char text[64], want[64];
        snprintf(text, sizeof(text), "BCAST from-shard-%d", k);
        snprintf(want, sizeof(want), "MSG from-shard-%d", k);
        send_line(&clients[from], text);
        int got = 0;
        for (int i = 0; i < CLIENTS; i++)
            got += expect_line(&clients[i], want);
        CHECK_EQ(got, CLIENTS);
    }

    /* 2b. Connections move to another shard, taking the input sent right after MOVE along;
     * then a broadcast from a moved connection still reaches everyone once. */
    int moved = 0;
    for (int i = 0; i < 60; i++) {
        int from = clients[i].shard, dst = (from + 1) % shards;
        char text[64], want[64], line[256];
        snprintf(text, sizeof(text), "MOVE %d\nECHO after-move-%d", dst, i);
        send_line(&clients[i], text);
        unsigned got_dst = 99, got_from = 99;
        unsigned long long id;
        if (read_line(&clients[i], line, sizeof(line)) > 0 &&
            sscanf(line, "MOVED %u %llx %u", &got_dst, &id, &got_from) == 3 &&
            got_dst == (unsigned)dst && got_from == (unsigned)from) {
            snprintf(want, sizeof(want), "after-move-%d", i);
            moved += expect_line(&clients[i], want);
            clients[i].shard = dst;
        } else {
            fprintf(stderr, "move of client %d from shard %d to %d: got \"%s\"\n", i, from, dst,
                    line);
        }
    }
    CHECK_EQ(moved, 60);
    send_line(&clients[7], "BCAST after-moves");
    int reached = 0;
    for (int i = 0; i < CLIENTS; i++)
        reached += expect_line(&clients[i], "MSG after-moves");
    CHECK_EQ(reached, CLIENTS);

    /* 3. Closes from either side. */
    for (int i = 0; i < 300; i++)
        close(clients[i].fd);
    for (int i = 300; i < 350; i++)
        close_abortively(clients[i].fd);
    for (int i = 350; i < 650; i++)
        send_line(&clients[i], "QUIT");
    int byes = 0;
    for (int i = 350; i < 650; i++) {
        byes += expect_line(&clients[i], "BYE") && sees_eof(&clients[i]);
        close(clients[i].fd);
    }
    CHECK_EQ(byes, 300);

    send_line(&clients[CLIENTS - 1], "BCAST after-close");
    int got = 0;
    for (int i = 650; i < CLIENTS; i++)
        got += expect_line(&clients[i], "MSG after-close");
    CHECK_EQ(got, CLIENTS - 650);

    for (int i = 650; i < CLIENTS - 1; i++)
        close(clients[i].fd);
    check_settled(&clients[CLIENTS - 1], CLIENTS);

    /* 4. SIGTERM under load: readers that do not read, writers that keep broadcasting. */
    int more[SHARDS_MAX] = {0};
    REQUIRE(connect_clients(0, 200, more) == 0);
    for (int w = 0; w < 4; w++)
        fcntl(clients[w].fd, F_SETFL, O_NONBLOCK);
    /* Bounded: at most 5,000 broadcasts per writer, for at most 300 ms. */
    int64_t until = rh_clock_now_ms() + 300;
    for (int sent = 0; sent < 5000 && rh_clock_now_ms() < until; sent++)
        for (int w = 0; w < 4; w++) {
            static const char line[] = "BCAST load-load-load-load-load-load-load-load\n";
            if (write(clients[w].fd, line, sizeof(line) - 1) < 0 && errno != EAGAIN) break;
        }
    /* 0 only if the server stopped in time and freed everything it allocated. */
    CHECK_EQ(rh_test_server_stop(&srv, WAIT_MS), 0);

    int eofs = 0;
    for (int i = 0; i < 200; i++) {
        fcntl(clients[i].fd, F_SETFL, 0);
        eofs += sees_eof(&clients[i]);
        close(clients[i].fd);
    }
    CHECK_EQ(eofs, 200);
    close(clients[CLIENTS - 1].fd);
    return rh_check_finish();
}
