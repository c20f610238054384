/*
 * tools/ceiling.c - ringhub-ceiling: the most WebSocket fan-out this machine can do, so that
 * ringhub-bench can report the server as a fraction of it. It does nothing but write the same
 * pre-framed bytes (a SignalR JSON invocation in a server WebSocket frame) to N loopback TCP
 * sockets, the way ringhub writes them: one io_uring ring set up like a shard's (same flags,
 * registered files), one send in flight per socket, --batch frames per send. A second thread
 * on another CPU receives everything (multishot receive from provided buffers, like
 * ringhub-bench) and counts it.
 *
 * With --rate 0 (the default) every socket always has a send in flight: the cost of a send
 * amortised over --batch frames. With --rate R, R rounds per second each owe every socket
 * --batch frames, and a socket whose send is still in flight catches up in its next send, as
 * ringhub's queues do.
 *
 * Output: one JSON line with deliveries per second and per writer CPU-second. Exit 0 when every
 * byte written arrived, as whole frames; 1 otherwise; 2 for bad options.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/uring.h"

#define SOCKETS_MAX  9000 /* two descriptors each, under the 20,000 per process */
#define FRAMES_MAX   256  /* frames in one send */
#define RING_ENTRIES 4096
#define PBUF_COUNT   2048
#define PBUF_SIZE    16384
#define DRAIN_MS     5000

struct opts {
    uint32_t sockets, batch, payload;
    double seconds, rate;
    uint32_t warmup_ms;
    int writer_cpu, reader_cpu;
};

static struct opts o = {1000, 1, 64, 5, 0, 500, 0, 1};
static int *server_fds, *client_fds;
static uint8_t *frames; /* FRAMES_MAX copies of the frame */
static uint32_t frame_len;
static _Atomic uint64_t received_bytes;
static _Atomic bool reader_stop;
static _Atomic bool reader_ready;

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The frame ringhub would send for Invocation("m", [payload]) in JSON. */
static void build_frames(void)
{
    char hub[4096];
    int n = snprintf(hub, sizeof(hub), "{\"type\":1,\"target\":\"m\",\"arguments\":[\"");
    memset(hub + n, 'x', o.payload);
    n += (int)o.payload;
    n += snprintf(hub + n, sizeof(hub) - (size_t)n, "\"]}\x1e");
    uint8_t head[4];
    uint32_t head_len = 2;
    head[0] = 0x81;
    if (n < 126) {
        head[1] = (uint8_t)n;
    } else {
        head[1] = 126;
        head[2] = (uint8_t)(n >> 8);
        head[3] = (uint8_t)n;
        head_len = 4;
    }
    frame_len = head_len + (uint32_t)n;
    frames = malloc((size_t)frame_len * FRAMES_MAX);
    for (uint32_t i = 0; i < FRAMES_MAX; i++) {
        memcpy(frames + (size_t)i * frame_len, head, head_len);
        memcpy(frames + (size_t)i * frame_len + head_len, hub, (size_t)n);
    }
}

/* N connected pairs over loopback. */
static int make_pairs(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(lfd, 4096) != 0 || getsockname(lfd, (struct sockaddr *)&addr, &len) != 0) {
        perror("ringhub-ceiling: listen");
        return -1;
    }
    server_fds = calloc(o.sockets, sizeof(int));
    client_fds = calloc(o.sockets, sizeof(int));
    int one = 1;
    for (uint32_t i = 0; i < o.sockets; i++) {
        client_fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (client_fds[i] < 0 || connect(client_fds[i], (struct sockaddr *)&addr, len) != 0) {
            perror("ringhub-ceiling: connect");
            return -1;
        }
        server_fds[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (server_fds[i] < 0) {
            perror("ringhub-ceiling: accept");
            return -1;
        }
        setsockopt(server_fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    close(lfd);
    return 0;
}

static void *reader_main(void *arg)
{
    (void)arg;
    pin(o.reader_cpu);
    struct rh_uring_caps caps;
    struct io_uring ring;
    struct rh_uring_bufs bufs;
    static uint8_t own[SOCKETS_MAX][2048]; /* without multishot receive: a buffer each */
    if (rh_uring_probe(&caps, false) || rh_uring_setup(&ring, RING_ENTRIES, &caps) ||
        (caps.multishot_recv && rh_uring_bufs_init(&ring, &bufs, 0, PBUF_COUNT, PBUF_SIZE))) {
        fprintf(stderr, "ringhub-ceiling: reader io_uring set-up failed\n");
        exit(1);
    }
    for (uint32_t i = 0; i < o.sockets; i++) {
        struct io_uring_sqe *sqe = rh_uring_get_sqe(&ring);
        if (caps.multishot_recv) {
            io_uring_prep_recv_multishot(sqe, client_fds[i], NULL, 0, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = bufs.bgid;
        } else {
            io_uring_prep_recv(sqe, client_fds[i], own[i], sizeof(own[i]), 0);
        }
        io_uring_sqe_set_data64(sqe, i);
    }
    atomic_store(&reader_ready, true);
    while (!atomic_load_explicit(&reader_stop, memory_order_relaxed)) {
        struct __kernel_timespec ts = {.tv_nsec = 10 * 1000000L};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
        unsigned head, seen = 0;
        uint64_t got = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            uint32_t i = (uint32_t)cqe->user_data;
            seen++;
            if (cqe->res > 0) got += (uint64_t)cqe->res;
            if (cqe->flags & IORING_CQE_F_BUFFER)
                rh_uring_bufs_recycle(&bufs, (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
            if (cqe->flags & IORING_CQE_F_MORE || cqe->res == 0) continue;
            struct io_uring_sqe *sqe = rh_uring_get_sqe(&ring); /* re-arm */
            if (caps.multishot_recv) {
                io_uring_prep_recv_multishot(sqe, client_fds[i], NULL, 0, 0);
                sqe->flags |= IOSQE_BUFFER_SELECT;
                sqe->buf_group = bufs.bgid;
            } else {
                io_uring_prep_recv(sqe, client_fds[i], own[i], sizeof(own[i]), 0);
            }
            io_uring_sqe_set_data64(sqe, i);
        }
        io_uring_cq_advance(&ring, seen);
        if (caps.multishot_recv) rh_uring_bufs_commit(&bufs);
        atomic_fetch_add_explicit(&received_bytes, got, memory_order_relaxed);
    }
    if (caps.multishot_recv) rh_uring_bufs_destroy(&ring, &bufs);
    io_uring_queue_exit(&ring);
    return NULL;
}

struct writer_sock {
    uint32_t owed; /* frames due and not yet handed to a send */
    uint32_t in_flight_bytes;
    uint32_t sent_off; /* of the send in flight: bytes already gone (short sends) */
    bool busy;
};

static struct io_uring wring;
static struct writer_sock *socks;
static uint64_t sent_bytes, sends;

static void start_send(uint32_t i)
{
    struct writer_sock *w = &socks[i];
    uint32_t n = w->owed < FRAMES_MAX ? w->owed : FRAMES_MAX;
    w->owed -= n;
    w->in_flight_bytes = n * frame_len;
    w->sent_off = 0;
    w->busy = true;
    struct io_uring_sqe *sqe = rh_uring_get_sqe(&wring);
    io_uring_prep_send(sqe, (int)i, frames, w->in_flight_bytes, MSG_NOSIGNAL);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, i);
}

static int send_done(uint32_t i, int res, bool writing)
{
    struct writer_sock *w = &socks[i];
    if (res < 0) {
        fprintf(stderr, "ringhub-ceiling: send: %s\n", strerror(-res));
        return -1;
    }
    sends++;
    sent_bytes += (uint64_t)res;
    w->sent_off += (uint32_t)res;
    if (w->sent_off < w->in_flight_bytes) { /* short send: the rest goes next */
        struct io_uring_sqe *sqe = rh_uring_get_sqe(&wring);
        io_uring_prep_send(sqe, (int)i, frames + w->sent_off, w->in_flight_bytes - w->sent_off,
                           MSG_NOSIGNAL);
        sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, i);
        return 0;
    }
    w->busy = false;
    if (writing && o.rate == 0) w->owed += o.batch;
    if (w->owed) start_send(i);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: ringhub-ceiling [--sockets N] [--batch B] [--payload P] [--rate R]\n"
        "                       [--seconds S] [--warmup-ms MS] [--writer-cpu C] [--reader-cpu C]\n"
        "Writes pre-framed WebSocket messages to N loopback sockets with io_uring as fast as\n"
        "the machine allows (or R rounds per second), B frames per send, and reports\n"
        "deliveries per second and per writer CPU-second as one JSON line. Defaults: 1000\n"
        "sockets (at most %d), batch 1 (at most %d), 64-byte payload, rate 0 (no limit), 5 s\n"
        "after 500 ms of warm-up, writer on CPU 0, reader on CPU 1.\n",
        SOCKETS_MAX, FRAMES_MAX);
}

static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"sockets", 1, 0, 'n'},    {"batch", 1, 0, 'b'},
        {"payload", 1, 0, 'p'},    {"seconds", 1, 0, 's'},
        {"rate", 1, 0, 'r'},       {"warmup-ms", 1, 0, 'w'},
        {"writer-cpu", 1, 0, 'W'}, {"reader-cpu", 1, 0, 'R'},
        {"help", 0, 0, 'h'},       {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            o.sockets = (uint32_t)atol(optarg);
            break;
        case 'b':
            o.batch = (uint32_t)atol(optarg);
            break;
        case 'p':
            o.payload = (uint32_t)atol(optarg);
            break;
        case 's':
            o.seconds = atof(optarg);
            break;
        case 'r':
            o.rate = atof(optarg);
            break;
        case 'w':
            o.warmup_ms = (uint32_t)atol(optarg);
            break;
        case 'W':
            o.writer_cpu = atoi(optarg);
            break;
        case 'R':
            o.reader_cpu = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc || !o.sockets || o.sockets > SOCKETS_MAX || !o.batch ||
        o.batch > FRAMES_MAX || o.payload > 3000 || o.seconds <= 0 || o.rate < 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    build_frames();
    if (make_pairs() != 0) return 1;
    pin(o.writer_cpu);

    struct rh_uring_caps caps;
    int err = rh_uring_probe(&caps, false);
    if (!err) err = rh_uring_setup(&wring, RING_ENTRIES, &caps);
    if (!err) err = io_uring_register_files(&wring, server_fds, o.sockets);
    if (err) {
        fprintf(stderr, "ringhub-ceiling: io_uring: %s\n", strerror(-err));
        return 1;
    }
    pthread_t reader;
    pthread_create(&reader, NULL, reader_main, NULL);
    while (!atomic_load(&reader_ready))
        usleep(1000);

    socks = calloc(o.sockets, sizeof(*socks));
    for (uint32_t i = 0; i < o.sockets; i++) {
        socks[i].owed = o.batch;
        start_send(i);
    }
    int64_t start_ns = rh_clock_now_ns();
    int64_t window_ns = start_ns + (int64_t)o.warmup_ms * 1000000;
    int64_t end_ns = window_ns + (int64_t)(o.seconds * 1e9);
    uint64_t rounds = 0, bytes0 = 0;
    double cpu0 = 0, cpu1 = 0, wall0 = 0;
    bool in_window = false, failed = false;
    for (;;) {
        int64_t now = rh_clock_now_ns();
        if (!in_window && now >= window_ns) {
            in_window = true;
            cpu0 = thread_cpu_s();
            bytes0 = atomic_load(&received_bytes);
            wall0 = (double)now / 1e9;
        }
        if (now >= end_ns) break;
        if (o.rate > 0) {
            uint64_t due = (uint64_t)((double)(now - start_ns) / 1e9 * o.rate);
            for (; rounds < due; rounds++)
                for (uint32_t i = 0; i < o.sockets; i++)
                    socks[i].owed += o.batch;
            for (uint32_t i = 0; i < o.sockets; i++)
                if (!socks[i].busy && socks[i].owed) start_send(i);
        }
        struct __kernel_timespec ts = {.tv_nsec = 1000000L};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&wring, &cqe, 1, &ts, NULL);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&wring, head, cqe)
        {
            if (send_done((uint32_t)cqe->user_data, cqe->res, true)) failed = true;
            seen++;
        }
        io_uring_cq_advance(&wring, seen);
        if (failed) break;
    }
    cpu1 = thread_cpu_s();
    double wall = (double)rh_clock_now_ns() / 1e9 - wall0;
    uint64_t bytes1 = atomic_load(&received_bytes);

    /* Drain: finish the sends in flight, then wait for the reader to have it all. */
    for (uint32_t i = 0; i < o.sockets; i++)
        socks[i].owed = 0;
    int64_t drain_until = rh_clock_now_ns() + (int64_t)DRAIN_MS * 1000000;
    for (;;) {
        bool busy = false;
        for (uint32_t i = 0; i < o.sockets && !busy; i++)
            busy = socks[i].busy;
        if (!busy || rh_clock_now_ns() > drain_until) break;
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_nsec = 1000000L};
        io_uring_submit_and_wait_timeout(&wring, &cqe, 1, &ts, NULL);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&wring, head, cqe)
        {
            if (send_done((uint32_t)cqe->user_data, cqe->res, false)) failed = true;
            seen++;
        }
        io_uring_cq_advance(&wring, seen);
    }
    while (atomic_load(&received_bytes) < sent_bytes && rh_clock_now_ns() < drain_until)
        usleep(1000);
    uint64_t total = atomic_load(&received_bytes);
    atomic_store(&reader_stop, true);
    pthread_join(reader, NULL);

    uint64_t deliveries = (bytes1 - bytes0) / frame_len;
    double writer_cpu = cpu1 - cpu0;
    bool whole = total == sent_bytes && total % frame_len == 0;
    printf("{\"tool\":\"ringhub-ceiling\",\"sockets\":%u,\"batch\":%u,\"rate\":%.0f,"
           "\"frame_bytes\":%u,\"seconds\":%.3f,\"deliveries\":%llu,\"deliveries_per_s\":%.0f,"
           "\"writer_cpu_s\":%.3f,\"deliveries_per_writer_cpu_s\":%.0f,\"sends\":%llu,"
           "\"all_received\":%s}\n",
           o.sockets, o.batch, o.rate, frame_len, wall, (unsigned long long)deliveries,
           (double)deliveries / wall, writer_cpu,
           writer_cpu > 0 ? (double)deliveries / writer_cpu : 0, (unsigned long long)sends,
           whole ? "true" : "false");
    fprintf(stderr,
            "ceiling: %u sockets, %u frames per send: %.0f deliveries/s, %.0f per writer CPU-s%s\n",
            o.sockets, o.batch, (double)deliveries / wall,
            writer_cpu > 0 ? (double)deliveries / writer_cpu : 0,
            whole ? "" : " (NOT EVERYTHING ARRIVED)");

    io_uring_queue_exit(&wring);
    for (uint32_t i = 0; i < o.sockets; i++) {
        close(server_fds[i]);
        close(client_fds[i]);
    }
    free(server_fds);
    free(client_fds);
    free(socks);
    free(frames);
    return whole && !failed ? 0 : 1;
}
