/*
 * tools/bench/bench.c - ringhub-bench: a SignalR load generator on io_uring, one thread.
 *
 * Every connection is a real SignalR client over WebSockets: negotiate (POST
 * /hubs/{hub}/negotiate) and the upgrade on the same keep-alive TCP connection, or the upgrade
 * alone (--skip-negotiation); then the hub handshake in JSON or MessagePack. Scenarios:
 *
 *   fanout  S subscribers in one group, publishers sending 64-byte payloads at --rate messages
 *           per second (or ramping: --ramp), every subscriber checking completeness, order and
 *           duplicates per publisher and recording latency from the stamp in the payload;
 *   groups  the same over G groups (subscriber i in group i % G, messages round-robin);
 *   echo    C connections each keeping one Echo in flight: round trips and their latency;
 *   idle    C connections that only keep alive: the server's RSS per connection;
 *   connect C connections, K at a time: connections per second, negotiate to handshake.
 *
 * With --pid the server's CPU time (from /proc) over the measured window gives the work per
 * server CPU-second, and its RSS is read before and after. --pid takes a list: the CPU of all
 * of them is summed (two cluster nodes, and Redis), the RSS is the first one's. With
 * --pub-host/--pub-port the publishers connect to another node than the subscribers, so a
 * fan-out crosses the cluster's backplane. One JSON line per run goes to stdout (a ramp
 * prints one per step, then the best), a readable summary to stderr. The generator's own CPU
 * time is reported too; above 90 % of its CPU the run says it was saturated, so its figures
 * bound the server from below only.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/uring.h"
#include "tools/bench/hist.h"
#include "tools/bench/wire.h"

#define RECV_BUF     16384 /* per connection: input that is not a whole frame yet */
#define RING_ENTRIES 4096
#define PBUF_COUNT   2048 /* provided buffers shared by all receives */
#define PBUF_SIZE    16384
#define PUBS_MAX     64
#define DRAIN_MS     5000  /* how long a run waits for deliveries after its last send */
#define SETUP_MS     60000 /* how long connecting and joining may take */
#define KEEPALIVE_MS 10000 /* hub pings from every connection (the server drops at 30 s) */
#define SATURATED    0.90  /* generator CPU share above which its figures are suspect */
#define TICK_MS      1     /* publisher timer */
#define PIDS_MAX     8     /* --pid A,B,...: processes whose CPU is charged */

enum op { OP_CONNECT = 1, OP_RECV, OP_SEND, OP_TIMER };

enum cstate {
    C_CONNECTING,
    C_NEGOTIATING,
    C_UPGRADING,
    C_HANDSHAKING,
    C_READY,   /* handshaken */
    C_JOINING, /* JoinGroup sent */
    C_MEMBER,  /* JoinGroup completed */
    C_FAILED,
};

enum role { R_SUB, R_PUB, R_ECHO, R_IDLE };

struct bconn {
    int fd;
    uint32_t idx;
    uint8_t state;
    uint8_t role;
    enum rb_codec codec;
    bool recv_armed;
    bool send_busy;
    uint32_t group;
    int64_t started_ns; /* connect began */
    /* Receive: raw bytes not yet parsed, and hub bytes of messages split across frames. */
    uint8_t *rbuf;
    uint32_t rlen;
    uint8_t *hbuf;
    uint32_t hlen, hcap;
    /* Send: bytes in flight (out) and bytes waiting behind them (pend). */
    uint8_t *out, *pend;
    uint32_t out_len, out_off, pend_len, pend_cap, out_cap;
    uint32_t next_seq[PUBS_MAX]; /* subscribers: the next sequence expected per publisher */
    int64_t echo_sent_ns;        /* echo: the round trip in flight */
};

struct opts {
    const char *scenario;
    const char *host;
    int port;
    const char *pub_host; /* publishers' server: --host unless --pub-host */
    int pub_port;         /* 0: --port */
    int pids[PIDS_MAX];   /* --pid: pids[0] is the server whose RSS is read */
    uint32_t pid_count;
    const char *hub;
    uint32_t subs, groups, pubs, conns, concurrency, sources;
    double rate;
    bool ramp;
    double ramp_start, ramp_factor, p99_limit_ms;
    double seconds;
    uint32_t payload;
    const char *protocol; /* json, messagepack or mixed */
    bool negotiate;
    double ceiling; /* --ceiling: ringhub-ceiling's deliveries per writer CPU-second */
};

struct counters {
    uint64_t sent;      /* publisher messages */
    uint64_t expected;  /* deliveries those messages owe */
    uint64_t delivered; /* stamped deliveries received, duplicates included */
    uint64_t dup;       /* sequence below the next expected: seen before */
    uint64_t gaps;      /* sequence above the next expected: something skipped */
    uint64_t echoes;
    uint64_t errors;
    struct rb_hist lat;
};

static struct opts o = {
    .host = "127.0.0.1",
    .port = 5000,
    .hub = "bench",
    .subs = 1000,
    .groups = 1,
    .pubs = 1,
    .conns = 1000,
    .concurrency = 128,
    .sources = 1,
    .rate = 1000,
    .ramp_start = 500,
    .ramp_factor = 1.5,
    .p99_limit_ms = 50,
    .seconds = 5,
    .payload = 64,
    .protocol = "json",
    .negotiate = true,
};

static struct io_uring ring;
static struct rh_uring_caps caps;
static struct rh_uring_bufs pbufs; /* with multishot receive */
static struct bconn *conns;
static uint32_t conn_count;
static struct sockaddr_in server_addr;
static struct sockaddr_in pub_addr; /* the publishers' server (--pub-host, --pub-port) */
static struct counters ctr;
static uint32_t *group_members; /* per group: subscribers that completed JoinGroup */
static uint32_t *pub_seq;       /* per publisher and group: the last sequence sent */
static uint32_t ready_count, member_count, failed_count;
static uint32_t sub_count; /* connections with the subscriber role */
static volatile sig_atomic_t interrupted;
static char hub_path[256];

/* ---- small helpers ---- */

static double now_s(void)
{
    return (double)rh_clock_now_ns() / 1e9;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The CPU time of process @pid in seconds: the sum over its threads of the nanoseconds the
 * scheduler ran them (/proc/PID/task/TID/schedstat), finer than the 10 ms ticks of
 * /proc/PID/stat. */
static double pid_cpu_s(int pid)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *dir = opendir(path);
    if (!dir) return 0;
    unsigned long long total_ns = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", pid, e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long ns = 0;
        if (f && fscanf(f, "%llu", &ns) == 1) total_ns += ns;
        if (f) fclose(f);
    }
    closedir(dir);
    return (double)total_ns / 1e9;
}

/* The CPU time of every --pid, each into @per_pid (o.pid_count of them, may be NULL); returns
 * their sum (0 without --pid). */
static double server_cpu_s(double *per_pid)
{
    double total = 0;
    for (uint32_t i = 0; i < o.pid_count; i++) {
        double cpu = pid_cpu_s(o.pids[i]);
        if (per_pid) per_pid[i] = cpu;
        total += cpu;
    }
    return total;
}

/* A "Name:   N kB" line of the first --pid's /proc/PID/status, in KiB (0 without --pid). */
static long server_status_kb(const char *field)
{
    if (!o.pid_count) return 0;
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", o.pids[0]);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long kb = 0;
    size_t field_len = strlen(field);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, field_len) == 0 && line[field_len] == ':') {
            kb = strtol(line + field_len + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

static long server_rss_kb(void)
{
    return server_status_kb("VmRSS");
}

static struct io_uring_sqe *get_sqe(void)
{
    return rh_uring_get_sqe(&ring);
}

static uint64_t ud(uint32_t idx, enum op op)
{
    return (uint64_t)idx << 8 | op;
}

static void conn_fail(struct bconn *c, const char *why)
{
    if (c->state == C_FAILED) return;
    if (failed_count < 5) fprintf(stderr, "ringhub-bench: connection %u: %s\n", c->idx, why);
    failed_count++;
    ctr.errors++;
    if (c->state >= C_READY) ready_count--;
    if (c->state == C_MEMBER) {
        member_count--;
        group_members[c->group]--;
    }
    c->state = C_FAILED;
    shutdown(c->fd, SHUT_RDWR);
}

/* ---- sending ---- */

static void send_flush(struct bconn *c)
{
    if (c->send_busy || c->state == C_FAILED) return;
    if (c->out_off == c->out_len) {
        if (!c->pend_len) return;
        uint8_t *t = c->out;
        uint32_t t_cap = c->out_cap;
        c->out = c->pend;
        c->out_cap = c->pend_cap;
        c->out_len = c->pend_len;
        c->out_off = 0;
        c->pend = t;
        c->pend_cap = t_cap;
        c->pend_len = 0;
    }
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_send(sqe, c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud(c->idx, OP_SEND));
    c->send_busy = true;
}

/* Room for @len more bytes at the end of the pending buffer. */
static uint8_t *send_reserve(struct bconn *c, uint32_t len)
{
    if (c->pend_len + len > c->pend_cap) {
        uint32_t cap = c->pend_cap ? c->pend_cap : 512;
        while (cap < c->pend_len + len)
            cap *= 2;
        c->pend = realloc(c->pend, cap);
        c->pend_cap = cap;
    }
    return c->pend + c->pend_len;
}

static void send_bytes(struct bconn *c, const void *data, uint32_t len)
{
    memcpy(send_reserve(c, len), data, len);
    c->pend_len += len;
    send_flush(c);
}

/* Sends hub bytes (one or more whole hub messages) as one WebSocket message. */
static void send_hub(struct bconn *c, const uint8_t *hub, size_t len)
{
    uint8_t *p = send_reserve(c, (uint32_t)len + 14);
    size_t n = rb_ws_client_frame(p, len + 14, c->codec == RB_JSON ? 1 : 2, hub, len);
    c->pend_len += (uint32_t)n;
    send_flush(c);
}

static void send_invocation(struct bconn *c, const char *id, const char *target,
                            const char *const *args, uint32_t argc)
{
    uint8_t msg[1024];
    size_t n = rb_hub_invocation(msg, sizeof(msg), c->codec, id, target, args, argc);
    if (n) send_hub(c, msg, n);
}

/* ---- connecting ---- */

static void start_connect(struct bconn *c, uint32_t source)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        perror("ringhub-bench: socket");
        exit(1);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (o.sources > 1) {
        /* Many source addresses: more than one address's worth of ephemeral ports. */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + 1 + source % o.sources);
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0) perror("ringhub-bench: bind");
    }
    c->state = C_CONNECTING;
    c->started_ns = rh_clock_now_ns();
    struct io_uring_sqe *sqe = get_sqe();
    const struct sockaddr_in *addr = c->role == R_PUB ? &pub_addr : &server_addr;
    io_uring_prep_connect(sqe, c->fd, (const struct sockaddr *)addr, sizeof(*addr));
    io_uring_sqe_set_data64(sqe, ud(c->idx, OP_CONNECT));
}

/* A multishot receive from the provided buffers where the kernel has it (one arm serves many
 * completions, as in the server), else a receive into the connection's own buffer. */
static void arm_recv(struct bconn *c)
{
    if (c->recv_armed || c->state == C_FAILED) return;
    struct io_uring_sqe *sqe = get_sqe();
    if (caps.multishot_recv) {
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = pbufs.bgid;
    } else {
        io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, RECV_BUF - c->rlen, 0);
    }
    io_uring_sqe_set_data64(sqe, ud(c->idx, OP_RECV));
    c->recv_armed = true;
}

/* The Host header's value for @c: the server it connects to. */
static void conn_host(const struct bconn *c, char *out, size_t cap)
{
    bool is_pub = c->role == R_PUB;
    snprintf(out, cap, "%s:%d", is_pub ? o.pub_host : o.host, is_pub ? o.pub_port : o.port);
}

static void send_upgrade(struct bconn *c, const char *token)
{
    char req[512], host[80];
    conn_host(c, host, sizeof(host));
    int n = snprintf(req, sizeof(req),
                     "GET %s%s%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     hub_path, token ? "?id=" : "", token ? token : "", host);
    c->state = C_UPGRADING;
    send_bytes(c, req, (uint32_t)n);
}

static void connected(struct bconn *c)
{
    if (!o.negotiate) {
        send_upgrade(c, NULL);
    } else {
        char req[512], host[80];
        conn_host(c, host, sizeof(host));
        int n = snprintf(req, sizeof(req),
                         "POST %s/negotiate?negotiateVersion=1 HTTP/1.1\r\nHost: %s\r\n"
                         "Content-Length: 0\r\n\r\n",
                         hub_path, host);
        c->state = C_NEGOTIATING;
        send_bytes(c, req, (uint32_t)n);
    }
    arm_recv(c);
}

/* ---- receiving ---- */

static void on_ready(struct bconn *c)
{
    c->state = C_READY;
    ready_count++;
    if (c->role == R_SUB) {
        char group[32];
        snprintf(group, sizeof(group), "g%u", c->group);
        const char *args[] = {group};
        c->state = C_JOINING;
        send_invocation(c, "j", "JoinGroup", args, 1);
    }
}

static void on_stamp(struct bconn *c, const struct rb_stamp *st, int type)
{
    int64_t now = rh_clock_now_ns();
    if (type == 3 && c->role == R_ECHO) {
        rb_hist_add(&ctr.lat, (uint64_t)(now - (int64_t)st->ts_ns));
        ctr.echoes++;
        c->echo_sent_ns = 0;
        return;
    }
    if (type != 1 || c->role != R_SUB || st->pub >= PUBS_MAX) return;
    rb_hist_add(&ctr.lat, (uint64_t)(now - (int64_t)st->ts_ns));
    ctr.delivered++;
    uint32_t *next = &c->next_seq[st->pub];
    if (st->seq < *next) {
        ctr.dup++;
    } else {
        if (st->seq > *next) ctr.gaps++;
        *next = st->seq + 1;
    }
}

static void on_hub_message(struct bconn *c, const uint8_t *msg, size_t len)
{
    struct rb_stamp st;
    int type = rb_hub_type(c->codec, msg, len);
    if (rb_stamp_find(msg, len, &st)) {
        on_stamp(c, &st, type);
        return;
    }
    if (type == 3 && c->state == C_JOINING) {
        if (rb_hub_completion_is_error(c->codec, msg, len)) {
            conn_fail(c, "JoinGroup failed");
            return;
        }
        c->state = C_MEMBER;
        member_count++;
        group_members[c->group]++;
    } else if (type == 7) {
        conn_fail(c, "the server sent Close");
    }
}

/* Hub bytes of one frame: whole messages are handled in place; a tail waits in hbuf. */
static void on_hub_bytes(struct bconn *c, const uint8_t *data, size_t len)
{
    if (c->state == C_HANDSHAKING) {
        /* The handshake reply is JSON whatever the protocol: "{}" and 0x1E. */
        const uint8_t *rs = memchr(data, 0x1e, len);
        if (!rs || rs - data != 2 || memcmp(data, "{}", 2) != 0) {
            conn_fail(c, "handshake refused");
            return;
        }
        on_ready(c);
        data = rs + 1;
        len -= 3;
    }
    if (c->hlen) {
        if (c->hlen + len > c->hcap) {
            c->hcap = (uint32_t)(c->hlen + len) * 2;
            c->hbuf = realloc(c->hbuf, c->hcap);
        }
        memcpy(c->hbuf + c->hlen, data, len);
        c->hlen += (uint32_t)len;
        data = c->hbuf;
        len = c->hlen;
    }
    size_t used = 0;
    for (;;) {
        const uint8_t *msg;
        size_t msg_len;
        ssize_t n = rb_hub_next(c->codec, data + used, len - used, &msg, &msg_len);
        if (n < 0) {
            conn_fail(c, "broken hub framing");
            return;
        }
        if (n == 0) break;
        used += (size_t)n;
        on_hub_message(c, msg, msg_len);
        if (c->state == C_FAILED) return;
    }
    size_t rest = len - used;
    if (rest) {
        if (rest > c->hcap) {
            uint8_t *b = malloc(rest * 2);
            memcpy(b, data + used, rest);
            free(c->hbuf);
            c->hbuf = b;
            c->hcap = (uint32_t)rest * 2;
        } else {
            memmove(c->hbuf, data + used, rest);
        }
    }
    c->hlen = (uint32_t)rest;
}

/* Parses @len bytes at @in; returns the bytes used (the rest is an incomplete frame). */
static size_t parse_input(struct bconn *c, const uint8_t *in, size_t len)
{
    size_t used = 0;
    while (c->state != C_FAILED && used < len) {
        const char *text = (const char *)in + used;
        size_t avail = len - used;
        if (c->state == C_NEGOTIATING || c->state == C_UPGRADING) {
            int status;
            size_t body_len;
            ssize_t head = rb_http_response(text, avail, &status, &body_len);
            if (head < 0) {
                conn_fail(c, "bad HTTP response");
                break;
            }
            if (head == 0 || (c->state == C_NEGOTIATING && avail < (size_t)head + body_len)) break;
            if (c->state == C_UPGRADING) {
                if (status != 101) {
                    conn_fail(c, "WebSocket upgrade refused");
                    break;
                }
                used += (size_t)head;
                uint8_t hs[64];
                c->state = C_HANDSHAKING;
                size_t n = rb_hub_handshake(hs, sizeof(hs), c->codec);
                uint8_t *p = send_reserve(c, (uint32_t)n + 14);
                c->pend_len += (uint32_t)rb_ws_client_frame(p, n + 14, 1, hs, n);
                send_flush(c);
                continue;
            }
            char token[128];
            if (status != 200 || rb_json_string_member(text + head, body_len, "connectionToken",
                                                       token, sizeof(token)) < 0) {
                conn_fail(c, "negotiate failed");
                break;
            }
            used += (size_t)head + body_len;
            send_upgrade(c, token);
            continue;
        }
        uint8_t op;
        bool fin;
        uint64_t payload_len;
        ssize_t head = rb_ws_server_frame(in + used, avail, &op, &fin, &payload_len);
        if (head < 0) {
            conn_fail(c, "bad WebSocket frame");
            break;
        }
        if (head == 0 || avail - (size_t)head < payload_len) break;
        const uint8_t *payload = in + used + head;
        used += (size_t)head + payload_len;
        if (op == 8) {
            conn_fail(c, "the server closed the WebSocket");
            break;
        }
        if (op <= 2) on_hub_bytes(c, payload, payload_len);
    }
    return used;
}

/* Received bytes at @data (the connection's own buffer after rlen, or a provided buffer):
 * parsed in place while nothing is held, else appended (in pieces that fit) to what is. */
static void on_input(struct bconn *c, const uint8_t *data, size_t len)
{
    if (data == c->rbuf + c->rlen) {
        c->rlen += (uint32_t)len;
        len = 0;
    }
    for (;;) {
        if (!c->rlen) {
            size_t used = parse_input(c, data, len);
            if (c->state == C_FAILED) return;
            data += used;
            len -= used;
            if (len > RECV_BUF) {
                conn_fail(c, "a frame larger than the receive buffer");
                return;
            }
            memcpy(c->rbuf, data, len);
            c->rlen = (uint32_t)len;
            return;
        }
        size_t take = len < RECV_BUF - c->rlen ? len : RECV_BUF - c->rlen;
        memcpy(c->rbuf + c->rlen, data, take);
        c->rlen += (uint32_t)take;
        data += take;
        len -= take;
        size_t used = parse_input(c, c->rbuf, c->rlen);
        if (c->state == C_FAILED) return;
        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= (uint32_t)used;
        if (c->rlen == RECV_BUF) {
            conn_fail(c, "a frame larger than the receive buffer");
            return;
        }
        if (!len) return;
    }
}

static void recv_done(struct bconn *c, const struct io_uring_cqe *cqe)
{
    int res = cqe->res;
    bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
    uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (!(cqe->flags & IORING_CQE_F_MORE)) c->recv_armed = false;
    if (res > 0 && c->state != C_FAILED)
        on_input(c, has_buf ? rh_uring_bufs_data(&pbufs, bid) : c->rbuf + c->rlen, (size_t)res);
    if (has_buf) rh_uring_bufs_recycle(&pbufs, bid);
    if (c->state == C_FAILED) return;
    if (res <= 0 && res != -ENOBUFS) {
        /* -ENOBUFS: every provided buffer was in use; they are recycled by the next turn. */
        conn_fail(c, res == 0 ? "the server closed the connection" : strerror(-res));
        return;
    }
    arm_recv(c);
}

static void send_done(struct bconn *c, int res)
{
    c->send_busy = false;
    if (c->state == C_FAILED) return;
    if (res < 0) {
        conn_fail(c, strerror(-res));
        return;
    }
    c->out_off += (uint32_t)res;
    send_flush(c);
}

static void handle_cqe(struct io_uring_cqe *cqe)
{
    uint64_t data = cqe->user_data;
    if ((data & 0xff) == OP_TIMER) return;
    struct bconn *c = &conns[data >> 8];
    switch (data & 0xff) {
    case OP_CONNECT:
        if (cqe->res < 0) {
            conn_fail(c, strerror(-cqe->res));
            return;
        }
        connected(c);
        break;
    case OP_RECV:
        recv_done(c, cqe);
        break;
    case OP_SEND:
        send_done(c, cqe->res);
        break;
    }
}

/* Runs the loop until @deadline_s or until @done() is true; wakes at least every TICK_MS. */
static void run_until(double deadline_s, bool (*done)(void), void (*tick)(void))
{
    while (!interrupted && now_s() < deadline_s && !(done && done())) {
        if (tick) tick();
        struct __kernel_timespec ts = {.tv_nsec = TICK_MS * 1000000L};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            handle_cqe(cqe);
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
        if (caps.multishot_recv) rh_uring_bufs_commit(&pbufs);
    }
}

/* ---- scenarios ---- */

static enum rb_codec codec_for(uint32_t i)
{
    if (strcmp(o.protocol, "messagepack") == 0) return RB_MSGPACK;
    if (strcmp(o.protocol, "mixed") == 0) return i % 2 ? RB_MSGPACK : RB_JSON;
    return RB_JSON;
}

static void conns_alloc(uint32_t count)
{
    conn_count = count;
    conns = calloc(count, sizeof(*conns));
    for (uint32_t i = 0; i < count; i++) {
        conns[i].idx = i;
        conns[i].fd = -1;
        conns[i].codec = codec_for(i);
        conns[i].rbuf = malloc(RECV_BUF);
    }
}

static void conns_free(void)
{
    for (uint32_t i = 0; i < conn_count; i++) {
        if (conns[i].fd >= 0) close(conns[i].fd);
        free(conns[i].rbuf);
        free(conns[i].hbuf);
        free(conns[i].out);
        free(conns[i].pend);
    }
    free(conns);
    conns = NULL;
    conn_count = 0;
}

static uint32_t connect_next, connect_target;

/* Keeps --concurrency connections in the making until all have started. */
static void connect_tick(void)
{
    uint32_t in_progress = connect_next - ready_count - failed_count;
    while (connect_next < connect_target && in_progress < o.concurrency) {
        start_connect(&conns[connect_next], connect_next);
        connect_next++;
        in_progress++;
    }
}

static bool all_ready(void)
{
    return ready_count + failed_count >= connect_target;
}

static bool all_joined(void)
{
    return member_count + failed_count >= sub_count && ready_count + failed_count >= conn_count;
}

/* Connects conns[connect_next .. @target - 1]; false when some failed or it took too long. */
static bool connect_upto(uint32_t target, bool (*goal)(void))
{
    connect_target = target;
    run_until(now_s() + SETUP_MS / 1000.0, goal, connect_tick);
    if (failed_count || !goal()) {
        fprintf(stderr, "ringhub-bench: set-up incomplete: %u ready, %u members, %u failed of %u\n",
                ready_count, member_count, failed_count, conn_count);
        return false;
    }
    return true;
}

/* Connects every connection. */
static bool connect_all(bool (*goal)(void))
{
    connect_next = 0;
    return connect_upto(conn_count, goal);
}

static int64_t keepalive_last_ms;
static uint32_t keepalive_cursor;

/* Hub pings, spread evenly over KEEPALIVE_MS: each connection gets one per period, and no
 * burst of thousands at once disturbs the latency being measured. */
static void keepalive(void)
{
    int64_t now = rh_clock_now_ms();
    if (!keepalive_last_ms) keepalive_last_ms = now;
    uint64_t due = (uint64_t)(now - keepalive_last_ms) * conn_count / KEEPALIVE_MS;
    if (!due || !conn_count) return;
    keepalive_last_ms = now;
    for (; due; due--) {
        struct bconn *c = &conns[keepalive_cursor++ % conn_count];
        if (c->state < C_READY || c->state == C_FAILED) continue;
        uint8_t ping[16];
        send_hub(c, ping, rb_hub_ping(ping, sizeof(ping), c->codec));
    }
}

/* Publishing state of one run. */
static double pub_rate, pub_start_s;
static uint64_t pub_target; /* messages the run sends in all */
static uint32_t first_pub;  /* conns[first_pub ...] are the publishers */

static void publish_one(void)
{
    uint64_t k = ctr.sent;
    uint32_t pub = (uint32_t)(k % o.pubs);
    uint32_t group = (uint32_t)((k / o.pubs) % o.groups);
    struct bconn *c = &conns[first_pub + pub];
    if (c->state == C_FAILED) {
        ctr.sent++;
        return;
    }
    struct rb_stamp st = {(uint16_t)pub, ++pub_seq[pub * o.groups + group],
                          (uint64_t)rh_clock_now_ns()};
    char payload[4096], gname[32];
    rb_stamp_write(payload, o.payload, &st);
    payload[o.payload] = '\0';
    snprintf(gname, sizeof(gname), "g%u", group);
    const char *args[] = {gname, "m", payload};
    send_invocation(c, NULL, "SendToGroup", args, 3);
    ctr.sent++;
    ctr.expected += group_members[group];
}

static void publish_tick(void)
{
    keepalive();
    double elapsed = now_s() - pub_start_s;
    uint64_t due = (uint64_t)(elapsed * pub_rate);
    if (due > pub_target) due = pub_target;
    while (ctr.sent < due)
        publish_one();
}

static bool all_delivered(void)
{
    return ctr.sent >= pub_target && ctr.delivered >= ctr.expected;
}

struct run_result {
    double wall_s, server_cpu_s, gen_cpu_s;
    double pid_cpu_s[PIDS_MAX]; /* server_cpu_s by --pid */
    long rss_before_kb, rss_after_kb;
};

/* Starts measuring the servers' CPU for @r: their CPU so far goes into r->pid_cpu_s. */
static void cpu_begin(struct run_result *r)
{
    r->server_cpu_s = server_cpu_s(r->pid_cpu_s);
}

/* Ends it: r->server_cpu_s and r->pid_cpu_s become what was used since cpu_begin. */
static void cpu_end(struct run_result *r)
{
    double now[PIDS_MAX];
    r->server_cpu_s = server_cpu_s(now) - r->server_cpu_s;
    for (uint32_t i = 0; i < o.pid_count; i++)
        r->pid_cpu_s[i] = now[i] - r->pid_cpu_s[i];
}

/* The JSON fields that say which servers were charged and how much each used. */
static void print_pid_fields(const struct run_result *r)
{
    printf(",\"pids\":[");
    for (uint32_t i = 0; i < o.pid_count; i++)
        printf("%s%d", i ? "," : "", o.pids[i]);
    printf("],\"server_cpu_s_per_pid\":[");
    for (uint32_t i = 0; i < o.pid_count; i++)
        printf("%s%.3f", i ? "," : "", r->pid_cpu_s[i]);
    printf("]");
}

static void print_result(const char *scenario, double rate, const struct run_result *r,
                         uint32_t connected)
{
    uint64_t unique = ctr.delivered - ctr.dup;
    uint64_t lost = ctr.expected > unique ? ctr.expected - unique : 0;
    double per_s = r->wall_s > 0 ? (double)ctr.delivered / r->wall_s : 0;
    double per_cpu = r->server_cpu_s > 0 ? (double)ctr.delivered / r->server_cpu_s : 0;
    double gen_util = r->wall_s > 0 ? r->gen_cpu_s / r->wall_s : 0;
    bool saturated = gen_util > SATURATED;
    double us = 1e3;
    printf("{\"scenario\":\"%s\",\"protocol\":\"%s\",\"negotiate\":%s,\"subscribers\":%u,"
           "\"groups\":%u,\"publishers\":%u,\"payload\":%u,\"rate\":%.0f,\"seconds\":%.3f,"
           "\"connected\":%u,\"sent\":%llu,\"expected\":%llu,\"delivered\":%llu,\"lost\":%llu,"
           "\"dup\":%llu,\"gaps\":%llu,\"errors\":%llu,\"deliveries_per_s\":%.0f,"
           "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
           "\"server_cpu_s\":%.2f,\"deliveries_per_server_cpu_s\":%.0f,"
           "\"server_rss_before_kb\":%ld,\"server_rss_after_kb\":%ld,"
           "\"generator_cpu_s\":%.2f,\"generator_saturated\":%s,\"ceiling_fraction\":%.3f,"
           "\"pub_host\":\"%s\",\"pub_port\":%d",
           scenario, o.protocol, o.negotiate ? "true" : "false", o.subs, o.groups, o.pubs,
           o.payload, rate, r->wall_s, connected, (unsigned long long)ctr.sent,
           (unsigned long long)ctr.expected, (unsigned long long)ctr.delivered,
           (unsigned long long)lost, (unsigned long long)ctr.dup, (unsigned long long)ctr.gaps,
           (unsigned long long)ctr.errors, per_s, rb_hist_percentile(&ctr.lat, 0.50) / us,
           rb_hist_percentile(&ctr.lat, 0.90) / us, rb_hist_percentile(&ctr.lat, 0.99) / us,
           rb_hist_percentile(&ctr.lat, 0.999) / us, (double)ctr.lat.max / us, r->server_cpu_s,
           per_cpu, r->rss_before_kb, r->rss_after_kb, r->gen_cpu_s, saturated ? "true" : "false",
           o.ceiling > 0 ? per_cpu / o.ceiling : 0, o.pub_host, o.pub_port);
    print_pid_fields(r);
    printf("}\n");
    fflush(stdout);
    fprintf(stderr,
            "%s: %u subscribers / %u groups at %.0f msg/s: %llu of %llu delivered (%llu lost, "
            "%llu dup, %llu gaps), %.0f deliveries/s, %.0f per server CPU-s; latency p50 %.0f "
            "us, p99 %.0f us, max %.0f us%s\n",
            scenario, o.subs, o.groups, rate, (unsigned long long)ctr.delivered,
            (unsigned long long)ctr.expected, (unsigned long long)lost, (unsigned long long)ctr.dup,
            (unsigned long long)ctr.gaps, per_s, per_cpu, rb_hist_percentile(&ctr.lat, 0.50) / us,
            rb_hist_percentile(&ctr.lat, 0.99) / us, (double)ctr.lat.max / us,
            saturated ? " (GENERATOR SATURATED)" : "");
}

/* One publishing run at @rate messages/s for --seconds, then the drain. */
static bool fanout_run(double rate, struct run_result *r)
{
    memset(&ctr, 0, sizeof(ctr));
    rb_hist_reset(&ctr.lat);
    pub_rate = rate;
    pub_target = (uint64_t)(rate * o.seconds);
    double gen0 = self_cpu_s();
    cpu_begin(r);
    pub_start_s = now_s();
    run_until(pub_start_s + o.seconds + DRAIN_MS / 1000.0, all_delivered, publish_tick);
    r->wall_s = now_s() - pub_start_s;
    cpu_end(r);
    r->gen_cpu_s = self_cpu_s() - gen0;
    r->rss_after_kb = server_rss_kb();
    uint64_t unique = ctr.delivered - ctr.dup;
    return unique >= ctr.expected && !ctr.dup && !ctr.gaps && !ctr.errors;
}

static int scenario_fanout(void)
{
    if (o.pubs > PUBS_MAX || o.groups == 0) {
        fprintf(stderr, "ringhub-bench: --pubs at most %d, --groups at least 1\n", PUBS_MAX);
        return 2;
    }
    long rss0 = server_rss_kb();
    conns_alloc(o.subs + o.pubs);
    group_members = calloc(o.groups, sizeof(*group_members));
    pub_seq = calloc((size_t)o.pubs * o.groups, sizeof(*pub_seq));
    first_pub = o.subs;
    sub_count = o.subs;
    for (uint32_t i = 0; i < conn_count; i++) {
        conns[i].role = i < o.subs ? R_SUB : R_PUB;
        conns[i].group = i % o.groups;
        for (int p = 0; p < PUBS_MAX; p++)
            conns[i].next_seq[p] = 1;
    }
    int rc = 1;
    if (!connect_all(all_joined)) goto out;
    run_until(now_s() + 0.2, NULL, keepalive); /* let the join answers settle */

    struct run_result r = {.rss_before_kb = rss0};
    const char *name = o.groups > 1 ? "groups" : "fanout";
    if (!o.ramp) {
        bool ok = fanout_run(o.rate, &r);
        print_result(name, o.rate, &r, ready_count);
        rc = ok ? 0 : 1;
        goto out;
    }
    /* Ramp: raise the rate until something is lost or p99 passes the limit. */
    double best = 0;
    struct run_result best_r = {0};
    struct counters best_ctr;
    for (double rate = o.ramp_start; !interrupted; rate *= o.ramp_factor) {
        bool ok = fanout_run(rate, &r);
        print_result(name, rate, &r, ready_count);
        double p99_ms = (double)rb_hist_percentile(&ctr.lat, 0.99) / 1e6;
        if (!ok || p99_ms > o.p99_limit_ms) break;
        best = rate;
        best_r = r;
        best_ctr = ctr;
    }
    if (best > 0) {
        ctr = best_ctr;
        fprintf(stderr, "best: ");
        print_result(o.groups > 1 ? "groups-best" : "fanout-best", best, &best_r, ready_count);
        rc = 0;
    }
out:
    conns_free();
    free(group_members);
    free(pub_seq);
    return rc;
}

static void echo_tick(void)
{
    keepalive();
    for (uint32_t i = 0; i < conn_count; i++) {
        struct bconn *c = &conns[i];
        if (c->state != C_READY || c->echo_sent_ns) continue;
        struct rb_stamp st = {0, 0, (uint64_t)rh_clock_now_ns()};
        char payload[4096];
        rb_stamp_write(payload, o.payload, &st);
        payload[o.payload] = '\0';
        const char *args[] = {payload};
        c->echo_sent_ns = (int64_t)st.ts_ns;
        send_invocation(c, "e", "Echo", args, 1);
    }
}

static int scenario_echo(void)
{
    long rss0 = server_rss_kb();
    conns_alloc(o.conns);
    for (uint32_t i = 0; i < conn_count; i++)
        conns[i].role = R_ECHO;
    int rc = 1;
    if (connect_all(all_ready)) {
        memset(&ctr, 0, sizeof(ctr));
        struct run_result r = {.rss_before_kb = rss0};
        cpu_begin(&r);
        double gen0 = self_cpu_s(), t0 = now_s();
        run_until(t0 + o.seconds, NULL, echo_tick);
        r.wall_s = now_s() - t0;
        cpu_end(&r);
        r.gen_cpu_s = self_cpu_s() - gen0;
        r.rss_after_kb = server_rss_kb();
        ctr.delivered = ctr.echoes;
        ctr.expected = ctr.echoes;
        o.subs = o.conns; /* the summary's "subscribers" are the echoing connections */
        o.groups = 0;
        print_result("echo", 0, &r, ready_count);
        rc = ctr.errors || !ctr.echoes ? 1 : 0;
    }
    conns_free();
    return rc;
}

/* Idle connections and the server's memory for them. The whole RSS growth per connection
 * includes costs paid once (the shard's receive buffers touched, libraries paged in), so the
 * marginal figure is also given: anonymous memory (RssAnon: the heap, not shared libraries)
 * added by the connections after the first tenth. */
static int scenario_idle(void)
{
    long rss0 = server_rss_kb();
    conns_alloc(o.conns);
    for (uint32_t i = 0; i < conn_count; i++)
        conns[i].role = R_IDLE;
    uint32_t warm = conn_count / 10 ? conn_count / 10 : 1;
    int rc = 1;
    double t0 = now_s();
    connect_next = 0;
    if (connect_upto(warm, all_ready)) {
        run_until(now_s() + 0.2, NULL, keepalive);
        long anon_warm = server_status_kb("RssAnon");
        if (connect_upto(conn_count, all_ready)) {
            double connect_s = now_s() - t0;
            run_until(now_s() + o.seconds, NULL, keepalive);
            long rss1 = server_rss_kb(), anon1 = server_status_kb("RssAnon");
            double per_conn = o.pid_count ? (double)(rss1 - rss0) * 1024.0 / ready_count : 0;
            double marginal =
                o.pid_count ? (double)(anon1 - anon_warm) * 1024.0 / (ready_count - warm) : 0;
            printf("{\"scenario\":\"idle\",\"protocol\":\"%s\",\"negotiate\":%s,"
                   "\"connected\":%u,\"failed\":%u,\"connect_s\":%.2f,\"held_s\":%.1f,"
                   "\"server_rss_before_kb\":%ld,\"server_rss_after_kb\":%ld,"
                   "\"server_rss_per_conn_bytes\":%.0f,\"server_anon_marginal_per_conn_bytes\":%."
                   "0f}\n",
                   o.protocol, o.negotiate ? "true" : "false", ready_count, failed_count, connect_s,
                   o.seconds, rss0, rss1, per_conn, marginal);
            fprintf(stderr,
                    "idle: %u connections held %.0f s; server RSS %ld -> %ld KiB: %.0f bytes per "
                    "connection in all, %.0f bytes of heap per added connection\n",
                    ready_count, o.seconds, rss0, rss1, per_conn, marginal);
            rc = failed_count ? 1 : 0;
        }
    }
    conns_free();
    return rc;
}

static int scenario_connect(void)
{
    conns_alloc(o.conns);
    for (uint32_t i = 0; i < conn_count; i++)
        conns[i].role = R_IDLE;
    double cpu0 = server_cpu_s(NULL), gen0 = self_cpu_s(), t0 = now_s();
    bool ok = connect_all(all_ready);
    double wall = now_s() - t0, cpu = server_cpu_s(NULL) - cpu0, gen = self_cpu_s() - gen0;
    double per_s = (double)ready_count / wall, per_cpu = cpu > 0 ? ready_count / cpu : 0;
    printf("{\"scenario\":\"connect\",\"protocol\":\"%s\",\"negotiate\":%s,\"connections\":%u,"
           "\"failed\":%u,\"concurrency\":%u,\"seconds\":%.3f,\"connections_per_s\":%.0f,"
           "\"server_cpu_s\":%.2f,\"connections_per_server_cpu_s\":%.0f,"
           "\"generator_cpu_s\":%.2f,\"generator_saturated\":%s}\n",
           o.protocol, o.negotiate ? "true" : "false", ready_count, failed_count, o.concurrency,
           wall, per_s, cpu, per_cpu, gen, gen / wall > SATURATED ? "true" : "false");
    fprintf(stderr, "connect: %u connections in %.2f s: %.0f/s, %.0f per server CPU-s%s\n",
            ready_count, wall, per_s, per_cpu,
            gen / wall > SATURATED ? " (GENERATOR SATURATED)" : "");
    conns_free();
    return ok ? 0 : 1;
}

/* ---- command line ---- */

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: ringhub-bench SCENARIO [OPTION]...\n"
        "A SignalR load generator for ringhub (or any SignalR server) over WebSockets.\n\n"
        "Scenarios:\n"
        "  fanout   --subs S subscribers in one group; --pubs publishers at --rate msg/s\n"
        "  groups   --subs S subscribers over --groups G groups; messages round-robin\n"
        "  echo     --conns C connections each keeping one Echo in flight\n"
        "  idle     --conns C connections held for --seconds: server RSS per connection\n"
        "  connect  --conns C connections, --concurrency K at a time: connections/s\n\n"
        "Options:\n"
        "  --host ADDR          server address (127.0.0.1)\n"
        "  --port N             server port (5000)\n"
        "  --pub-host ADDR      fanout, groups: publishers connect here (--host), e.g. to\n"
        "  --pub-port N         another cluster node, so deliveries cross its backplane (--port)\n"
        "  --pid PID[,PID...]   the server's pid: CPU and RSS from /proc; with several\n"
        "                       (cluster nodes, Redis) the CPU of all is summed, each one's\n"
        "                       is in server_cpu_s_per_pid, the RSS is the first one's\n"
        "  --hub NAME           hub name under /hubs/ (bench)\n"
        "  --protocol P         json, messagepack or mixed (json)\n"
        "  --skip-negotiation   WebSocket upgrade without negotiate\n"
        "  --subs N --groups N --pubs N --conns N --concurrency N\n"
        "  --rate R             messages per second, all publishers together (1000)\n"
        "  --ramp               raise the rate from --ramp-start by --ramp-factor per step\n"
        "                       until a loss or p99 over --p99-limit-ms (50); a saturated\n"
        "                       generator is flagged, not a stop: its latency is an upper bound\n"
        "  --seconds S          length of a run or step (5)\n"
        "  --payload N          payload bytes, at least %d (64)\n"
        "  --sources N          spread connections over 127.0.0.2..N+1 (1: no binding)\n"
        "  --ceiling D          ringhub-ceiling's deliveries per CPU-second for the same\n"
        "                       sockets and batching: reports the server as a fraction of it\n"
        "Output: one JSON line per run on stdout, a summary on stderr. Exit 0 when nothing\n"
        "was lost, duplicated or reordered and no connection failed; 1 otherwise; 2 for bad\n"
        "options.\n",
        RB_STAMP_LEN);
}

/* --pid: one pid or several separated by commas, each > 0. Returns 0 or -EINVAL. */
static int parse_pids(const char *text)
{
    o.pid_count = 0;
    for (const char *p = text;;) {
        char *end;
        errno = 0;
        long pid = strtol(p, &end, 10);
        if (errno || end == p || pid <= 0 || pid > INT32_MAX || o.pid_count == PIDS_MAX)
            return -EINVAL;
        o.pids[o.pid_count++] = (int)pid;
        if (*end == '\0') return 0;
        if (*end != ',') return -EINVAL;
        p = end + 1;
    }
}

static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", 1, 0, 'h'},         {"port", 1, 0, 'p'},        {"pid", 1, 0, 'P'},
        {"hub", 1, 0, 'H'},          {"protocol", 1, 0, 'f'},    {"skip-negotiation", 0, 0, 'k'},
        {"subs", 1, 0, 's'},         {"groups", 1, 0, 'g'},      {"pubs", 1, 0, 'u'},
        {"conns", 1, 0, 'c'},        {"concurrency", 1, 0, 'C'}, {"rate", 1, 0, 'r'},
        {"ramp", 0, 0, 'R'},         {"ramp-start", 1, 0, 'a'},  {"ramp-factor", 1, 0, 'x'},
        {"p99-limit-ms", 1, 0, 'l'}, {"seconds", 1, 0, 't'},     {"payload", 1, 0, 'y'},
        {"sources", 1, 0, 'S'},      {"ceiling", 1, 0, 'L'},     {"pub-host", 1, 0, 'B'},
        {"pub-port", 1, 0, 'O'},     {"help", 0, 0, '?'},        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            o.host = optarg;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 'P':
            if (parse_pids(optarg) != 0) return -1;
            break;
        case 'B':
            o.pub_host = optarg;
            break;
        case 'O':
            o.pub_port = atoi(optarg);
            break;
        case 'H':
            o.hub = optarg;
            break;
        case 'f':
            o.protocol = optarg;
            break;
        case 'k':
            o.negotiate = false;
            break;
        case 's':
            o.subs = (uint32_t)atol(optarg);
            break;
        case 'g':
            o.groups = (uint32_t)atol(optarg);
            break;
        case 'u':
            o.pubs = (uint32_t)atol(optarg);
            break;
        case 'c':
            o.conns = (uint32_t)atol(optarg);
            break;
        case 'C':
            o.concurrency = (uint32_t)atol(optarg);
            break;
        case 'r':
            o.rate = atof(optarg);
            break;
        case 'R':
            o.ramp = true;
            break;
        case 'a':
            o.ramp_start = atof(optarg);
            break;
        case 'x':
            o.ramp_factor = atof(optarg);
            break;
        case 'l':
            o.p99_limit_ms = atof(optarg);
            break;
        case 't':
            o.seconds = atof(optarg);
            break;
        case 'y':
            o.payload = (uint32_t)atol(optarg);
            break;
        case 'L':
            o.ceiling = atof(optarg);
            break;
        case 'S':
            o.sources = (uint32_t)atol(optarg);
            break;
        default:
            return -1;
        }
    }
    if (optind + 1 != argc) return -1;
    o.scenario = argv[optind];
    bool proto_ok = !strcmp(o.protocol, "json") || !strcmp(o.protocol, "messagepack") ||
                    !strcmp(o.protocol, "mixed");
    if (!proto_ok || o.payload < RB_STAMP_LEN || o.payload > 3000 || o.rate <= 0 ||
        o.ramp_factor <= 1 || o.seconds <= 0 || !o.pubs || !o.concurrency || !o.sources ||
        o.port <= 0 || o.port > 65535 || o.pub_port < 0 || o.pub_port > 65535)
        return -1;
    if (!o.pub_host) o.pub_host = o.host;
    if (!o.pub_port) o.pub_port = o.port;
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (parse_args(argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    snprintf(hub_path, sizeof(hub_path), "/hubs/%s", o.hub);
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)o.port);
    if (inet_pton(AF_INET, o.host, &server_addr.sin_addr) != 1) {
        fprintf(stderr, "ringhub-bench: --host takes an IPv4 address\n");
        return 2;
    }
    pub_addr.sin_family = AF_INET;
    pub_addr.sin_port = htons((uint16_t)o.pub_port);
    if (inet_pton(AF_INET, o.pub_host, &pub_addr.sin_addr) != 1) {
        fprintf(stderr, "ringhub-bench: --pub-host takes an IPv4 address\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    uint32_t needed =
        !strcmp(o.scenario, "fanout") || !strcmp(o.scenario, "groups") ? o.subs + o.pubs : o.conns;
    if (needed + 64 > rl.rlim_cur) {
        fprintf(stderr, "ringhub-bench: %u connections need more descriptors than the limit %llu\n",
                needed, (unsigned long long)rl.rlim_cur);
        return 2;
    }
    int err = rh_uring_probe(&caps, false);
    if (!err) err = rh_uring_setup(&ring, RING_ENTRIES, &caps);
    if (!err && caps.multishot_recv)
        err = rh_uring_bufs_init(&ring, &pbufs, 0, PBUF_COUNT, PBUF_SIZE);
    if (err) {
        fprintf(stderr, "ringhub-bench: io_uring: %s (%s)\n", strerror(-err),
                rh_uring_error_hint(err));
        return 1;
    }
    int rc;
    if (!strcmp(o.scenario, "fanout")) {
        o.groups = 1;
        rc = scenario_fanout();
    } else if (!strcmp(o.scenario, "groups")) {
        rc = scenario_fanout();
    } else if (!strcmp(o.scenario, "echo")) {
        rc = scenario_echo();
    } else if (!strcmp(o.scenario, "idle")) {
        rc = scenario_idle();
    } else if (!strcmp(o.scenario, "connect")) {
        rc = scenario_connect();
    } else {
        usage(stderr);
        rc = 2;
    }
    if (caps.multishot_recv) rh_uring_bufs_destroy(&ring, &pbufs);
    io_uring_queue_exit(&ring);
    return rc;
}
