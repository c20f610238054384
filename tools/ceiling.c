/*
 * tools/ceiling.c - ringhub-ceiling: the most WebSocket fan-out this machine can do, so that
 * ringhub-bench can report the server as a fraction of it. It does nothing but write the same
 * pre-framed bytes (a SignalR JSON invocation in a server WebSocket frame, built once) to N
 * loopback TCP sockets the way ringhub writes them: one io_uring ring set up like a shard's
 * (same flags, registered files), one send in flight per socket, --batch frames per send, every
 * send of a round in one submit. A reader thread on another CPU receives everything on its own
 * ring (multishot receive from provided buffers, else single-shot) and counts the bytes.
 *
 * With --rate 0 (the default) rounds run back to back: a socket gets its next --batch frames
 * as soon as its previous send completes, so every send carries exactly --batch frames and the
 * figure is the cost of one send amortised over them. With --rate R, R rounds a second each
 * owe every socket --batch frames; a socket whose send is still in flight is skipped and
 * catches up with one larger send when it completes, as ringhub's send queues do.
 *
 * After the window the writer stops, lets its sends finish, and shuts the sockets down; the
 * reader runs until it has seen end-of-file on every socket. The exit status is 0 only if the
 * reader got exactly the bytes the writer's completed sends report, as whole frames.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/uring.h"

#define SOCKETS_MAX     9000 /* two descriptors a pair; one process may hold 20,000 here */
#define FDS_SPARE       64   /* stdio, rings, the listener */
#define FRAMES_PER_SEND 256  /* most frames in one send (a --rate catch-up) */
#define PAYLOAD_MAX     16384
#define RECV_BUF_SIZE   4096
#define DRAIN_MS        5000
#define WAIT_MAX_NS     10000000 /* the longest a loop sleeps before looking at the clock */

struct opts {
    uint32_t sockets, batch, payload, warmup_ms;
    double seconds, rate;
    int writer_cpu, reader_cpu;
};

/* Writer-side state of one socket pair; the socket is registered file @idx. */
struct wsock {
    uint64_t owed;     /* --rate only: frames due and not yet in a send */
    uint32_t send_len; /* bytes of the send in flight */
    uint32_t sent_len; /* of those, bytes already gone (short sends) */
    bool is_busy;
};

struct writer {
    struct io_uring ring;
    struct wsock *socks;
    uint32_t count;
    uint32_t busy_count;
    bool refill;     /* --rate 0 and still running: a completed socket gets the next batch */
    uint8_t *frames; /* FRAMES_PER_SEND copies of the frame, back to back */
    uint64_t sends, sent_bytes;
};

struct reader {
    pthread_t thread;
    const struct rh_uring_caps *caps;
    const int *fds;
    uint32_t count;
    int cpu;
    _Atomic int state;           /* 0 starting, 1 running, < 0 set-up failed (-errno) */
    _Atomic int64_t deadline_ns; /* give up on end-of-file after this (set when draining) */
    _Atomic uint64_t bytes;      /* a plain count: nothing else is published through it */
    int err;                     /* first receive error; read after join */
    uint32_t unfinished;         /* receives still armed when it gave up; read after join */
};

/* What the clocks and counters said at the start and at the end of the window. */
struct sample {
    int64_t ns;
    double writer_cpu_s, reader_cpu_s;
    uint64_t bytes, sends;
};

static struct opts o = {
    .sockets = 1000, .batch = 1, .payload = 64, .warmup_ms = 500, .seconds = 5, .reader_cpu = 1};
static uint32_t frame_len;

static int raise_fd_limit(void);
static int writer_open(struct writer *w, int *server_fds, const struct rh_uring_caps *caps);
static int reader_start(struct reader *r);
static bool check_received(const struct writer *w, const struct reader *r);
static void report(const struct sample *s0, const struct sample *s1, bool ok);
static int writer_run(struct writer *w, struct reader *r, struct sample *s0, struct sample *s1);
static void writer_add_rounds(struct writer *w, uint64_t rounds);
static int writer_wait(struct writer *w, int64_t timeout_ns);
static void send_start(struct writer *w, uint32_t idx, uint32_t frame_count);
static void send_prep(struct writer *w, uint32_t idx);
static int send_done(struct writer *w, uint32_t idx, int res);
static void take_sample(struct sample *s, const struct writer *w, struct reader *r);
static void *reader_main(void *arg);
static void reader_arm(struct io_uring *ring, const struct reader *r, struct rh_uring_bufs *bufs,
                       uint32_t idx);
static void reader_cancel(struct io_uring *ring, uint32_t *armed);
static uint8_t *build_frames(void);
static int make_pairs(int *server_fds, int *client_fds);
static int pin_self(int cpu);
static double cpu_clock_s(clockid_t clock);
static bool parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out);
static bool parse_double(const char *text, double min, double *out);
static bool parse_cpu(const char *text, int *out);
static int parse_args(int argc, char **argv);
static void usage(FILE *out);

int main(int argc, char **argv)
{
    int err = parse_args(argc, argv);
    if (err) return err == 1 ? 0 : 2;
    if (raise_fd_limit() != 0) return 1;
    struct rh_uring_caps caps;
    err = rh_uring_probe(&caps, false);
    if (err) {
        fprintf(stderr, "ringhub-ceiling: %s\n", rh_uring_error_hint(err));
        return 1;
    }

    int *server_fds = rh_calloc(o.sockets, sizeof(int));
    int *client_fds = rh_calloc(o.sockets, sizeof(int));
    struct writer w = {.count = o.sockets, .refill = o.rate == 0};
    struct reader r = {.caps = &caps, .fds = client_fds, .count = o.sockets, .cpu = o.reader_cpu};
    atomic_init(&r.deadline_ns, INT64_MAX);
    struct sample s0 = {0}, s1 = {0};
    bool ok = false;

    w.frames = build_frames();
    w.socks = rh_calloc(o.sockets, sizeof(*w.socks));
    for (uint32_t i = 0; i < o.sockets; i++)
        server_fds[i] = client_fds[i] = -1;
    if (make_pairs(server_fds, client_fds) != 0) goto out_free;
    if (writer_open(&w, server_fds, &caps) != 0) goto out_free;
    if (reader_start(&r) != 0) goto out_ring;

    ok = writer_run(&w, &r, &s0, &s1) == 0;
    /* End-of-file tells the reader it has everything; shutdown() acts on the socket itself,
     * which the registered file table still holds open. */
    for (uint32_t i = 0; i < o.sockets; i++)
        shutdown(server_fds[i], SHUT_WR);
    atomic_store(&r.deadline_ns, rh_clock_now_ns() + (int64_t)DRAIN_MS * 1000000);
    pthread_join(r.thread, NULL);
    ok = check_received(&w, &r) && ok;
    report(&s0, &s1, ok);

out_ring:
    io_uring_queue_exit(&w.ring);
out_free:
    for (uint32_t i = 0; i < o.sockets; i++) {
        if (server_fds[i] >= 0) close(server_fds[i]);
        if (client_fds[i] >= 0) close(client_fds[i]);
    }
    rh_free(server_fds);
    rh_free(client_fds);
    rh_free(w.socks);
    rh_free(w.frames);
    return ok ? 0 : 1;
}

/* Raises the soft descriptor limit to the hard one; the pairs, rings and stdio must fit under
 * it. Returns 0, or -1 after printing why not. */
static int raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) return 0;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur == RLIM_INFINITY || 2 * (rlim_t)o.sockets + FDS_SPARE <= rl.rlim_cur) return 0;
    fprintf(stderr,
            "ringhub-ceiling: %u socket pairs need %u descriptors, the limit is %llu: use fewer "
            "--sockets or raise ulimit -n\n",
            o.sockets, 2 * o.sockets + FDS_SPARE, (unsigned long long)rl.rlim_cur);
    return -1;
}

/* Pins the calling thread (the writer) and sets up its ring. Returns 0, or -1 after printing
 * why; @w->ring needs io_uring_queue_exit() only after success. */
static int writer_open(struct writer *w, int *server_fds, const struct rh_uring_caps *caps)
{
    if (pin_self(o.writer_cpu) != 0) return -1;
    /* The SQ holds a whole round, so a round is one submit. */
    unsigned entries = 64;
    while (entries < w->count + 16)
        entries *= 2;
    int err = rh_uring_setup(&w->ring, entries, caps);
    if (err) {
        fprintf(stderr, "ringhub-ceiling: writer ring: %s\n", rh_uring_error_hint(err));
        return -1;
    }
    err = io_uring_register_files(&w->ring, server_fds, w->count);
    if (err) {
        fprintf(stderr, "ringhub-ceiling: registering files: %s\n", strerror(-err));
        io_uring_queue_exit(&w->ring);
        return -1;
    }
    return 0;
}

/* Starts the reader and waits until its receives are armed. Returns 0, or -1 after printing
 * why (the thread has then been joined). */
static int reader_start(struct reader *r)
{
    int err = pthread_create(&r->thread, NULL, reader_main, r);
    if (err) {
        fprintf(stderr, "ringhub-ceiling: reader thread: %s\n", strerror(err));
        return -1;
    }
    while (atomic_load(&r->state) == 0)
        usleep(1000);
    err = atomic_load(&r->state);
    if (err > 0) return 0;
    pthread_join(r->thread, NULL);
    fprintf(stderr, "ringhub-ceiling: reader ring: %s\n", rh_uring_error_hint(err));
    return -1;
}

/* After the reader has finished: did it get exactly the whole frames the sends wrote? */
static bool check_received(const struct writer *w, const struct reader *r)
{
    uint64_t total = atomic_load(&r->bytes);
    bool ok = true;
    if (r->err) {
        fprintf(stderr, "ringhub-ceiling: receive: %s\n", strerror(-r->err));
        ok = false;
    }
    if (r->unfinished) {
        fprintf(stderr, "ringhub-ceiling: %u sockets did not reach end-of-file in %d ms\n",
                r->unfinished, DRAIN_MS);
        ok = false;
    }
    if (total != w->sent_bytes || total % frame_len) {
        fprintf(stderr,
                "ringhub-ceiling: sent %llu bytes (%.3f frames of %u), received %llu (%.3f)\n",
                (unsigned long long)w->sent_bytes, (double)w->sent_bytes / frame_len, frame_len,
                (unsigned long long)total, (double)total / frame_len);
        ok = false;
    }
    return ok;
}

/* One JSON line on stdout, one readable line on stderr. */
static void report(const struct sample *s0, const struct sample *s1, bool ok)
{
    double wall_s = (double)(s1->ns - s0->ns) / 1e9;
    double writer_cpu_s = s1->writer_cpu_s - s0->writer_cpu_s;
    double reader_cpu_s = s1->reader_cpu_s - s0->reader_cpu_s;
    uint64_t deliveries = (s1->bytes - s0->bytes) / frame_len;
    double per_s = wall_s > 0 ? (double)deliveries / wall_s : 0;
    double per_cpu_s = writer_cpu_s > 0 ? (double)deliveries / writer_cpu_s : 0;
    printf("{\"tool\":\"ringhub-ceiling\",\"sockets\":%u,\"batch\":%u,\"rate\":%.2f,"
           "\"frame_bytes\":%u,\"seconds\":%.3f,\"deliveries\":%llu,\"deliveries_per_s\":%.0f,"
           "\"writer_cpu_s\":%.3f,\"deliveries_per_writer_cpu_s\":%.0f,\"reader_cpu_s\":%.3f,"
           "\"sends\":%llu,\"all_received\":%s}\n",
           o.sockets, o.batch, o.rate, frame_len, wall_s, (unsigned long long)deliveries, per_s,
           writer_cpu_s, per_cpu_s, reader_cpu_s, (unsigned long long)(s1->sends - s0->sends),
           ok ? "true" : "false");
    fprintf(stderr,
            "ceiling: %u sockets, %u frames of %u bytes per send: %.0f deliveries/s, %.0f per "
            "writer CPU-s (writer %.2f CPU-s, reader %.2f CPU-s in %.2f s)%s\n",
            o.sockets, o.batch, frame_len, per_s, per_cpu_s, writer_cpu_s, reader_cpu_s, wall_s,
            ok ? "" : "; FAILED");
}

/* Measures from the end of the warm-up to --seconds later, then lets the sends in flight
 * finish. Returns 0, or -1 after printing why. */
static int writer_open(struct writer *w, int *server_fds, const struct rh_uring_caps *caps);
static int writer_run(struct writer *w, struct reader *r, struct sample *s0, struct sample *s1)
{
    int64_t start_ns = rh_clock_now_ns();
    int64_t window_ns = start_ns + (int64_t)o.warmup_ms * 1000000;
    int64_t end_ns = window_ns + (int64_t)(o.seconds * 1e9);
    uint64_t rounds = 0;
    bool in_window = false;
    int err = 0;

    if (o.rate == 0) {
        for (uint32_t i = 0; i < w->count; i++)
            send_start(w, i, o.batch);
    }
    for (;;) {
        int64_t now = rh_clock_now_ns();
        if (!in_window && now >= window_ns) {
            take_sample(s0, w, r);
            in_window = true;
        }
        if (now >= end_ns) break;
        int64_t wake_ns = in_window ? end_ns : window_ns;
        if (o.rate > 0) {
            uint64_t due = 1 + (uint64_t)((double)(now - start_ns) * o.rate / 1e9);
            if (due > rounds) writer_add_rounds(w, due - rounds);
            rounds = due;
            int64_t next_ns = start_ns + (int64_t)((double)rounds * 1e9 / o.rate);
            if (next_ns < wake_ns) wake_ns = next_ns;
        }
        err = writer_wait(w, wake_ns - now);
        if (err) break;
    }
    take_sample(s1, w, r);
    if (!in_window) *s0 = *s1;

    /* Drain: nothing new, but what is in flight (and the rest of short sends) completes. */
    w->refill = false;
    for (uint32_t i = 0; i < w->count; i++)
        w->socks[i].owed = 0;
    int64_t drain_ns = rh_clock_now_ns() + (int64_t)DRAIN_MS * 1000000;
    while (!err && w->busy_count && rh_clock_now_ns() < drain_ns)
        err = writer_wait(w, WAIT_MAX_NS);
    if (!err && w->busy_count) {
        fprintf(stderr, "ringhub-ceiling: %u sends still in flight after %d ms\n", w->busy_count,
                DRAIN_MS);
        err = -1;
    }
    return err ? -1 : 0;
}

/* Each round owes every socket a batch; idle sockets send what they owe now, busy ones when
 * their send completes. */
static void writer_add_rounds(struct writer *w, uint64_t rounds)
{
    for (uint32_t i = 0; i < w->count; i++) {
        struct wsock *s = &w->socks[i];
        s->owed += rounds * o.batch;
        if (!s->is_busy)
            send_start(w, i, (uint32_t)(s->owed < FRAMES_PER_SEND ? s->owed : FRAMES_PER_SEND));
    }
}

/* Submits what is queued, waits up to @timeout_ns for a completion and handles all there
 * are. Returns 0, or -1 after printing why. */
static int writer_wait(struct writer *w, int64_t timeout_ns)
{
    if (timeout_ns < 1000) timeout_ns = 1000;
    if (timeout_ns > WAIT_MAX_NS) timeout_ns = WAIT_MAX_NS;
    struct __kernel_timespec ts = {.tv_sec = timeout_ns / 1000000000,
                                   .tv_nsec = timeout_ns % 1000000000};
    struct io_uring_cqe *cqe;
    int err = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
    if (err < 0 && err != -ETIME && err != -EINTR) {
        fprintf(stderr, "ringhub-ceiling: io_uring_submit: %s\n", strerror(-err));
        return -1;
    }
    unsigned head, seen = 0;
    err = 0;
    io_uring_for_each_cqe(&w->ring, head, cqe)
    {
        if (!err) err = send_done(w, (uint32_t)cqe->user_data, cqe->res);
        seen++;
    }
    io_uring_cq_advance(&w->ring, seen);
    return err;
}

static void send_start(struct writer *w, uint32_t idx, uint32_t frame_count)
{
    struct wsock *s = &w->socks[idx];
    if (!frame_count) return;
    if (o.rate > 0) s->owed -= frame_count;
    s->send_len = frame_count * frame_len;
    s->sent_len = 0;
    s->is_busy = true;
    w->busy_count++;
    send_prep(w, idx);
}

/* Queues the unsent part of socket @idx's send. The SQ was sized for one send per socket, so
 * no SQE is ever submitted here, only in writer_wait().
 *
 * A plain send from @w->frames (the batch already laid out back to back) beat a sendmsg whose
 * iovecs all point at one frame: on 1,000 sockets, 10.9M against 8.2M deliveries/s at batch 64
 * and 1.40M against 1.30M at batch 8, since the kernel copies each iovec separately and
 * imports the msghdr on every call. */
static void send_prep(struct writer *w, uint32_t idx)
{
    struct wsock *s = &w->socks[idx];
    struct io_uring_sqe *sqe = rh_uring_get_sqe(&w->ring);
    io_uring_prep_send(sqe, (int)idx, w->frames + s->sent_len, s->send_len - s->sent_len,
                       MSG_NOSIGNAL);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, idx);
}

static int send_done(struct writer *w, uint32_t idx, int res)
{
    struct wsock *s = &w->socks[idx];
    if (res < 0) {
        fprintf(stderr, "ringhub-ceiling: send: %s\n", strerror(-res));
        return -1;
    }
    w->sends++;
    w->sent_bytes += (uint64_t)res;
    s->sent_len += (uint32_t)res;
    if (s->sent_len < s->send_len) {
        send_prep(w, idx);
        return 0;
    }
    s->is_busy = false;
    w->busy_count--;
    if (w->refill)
        send_start(w, idx, o.batch);
    else if (s->owed)
        send_start(w, idx, (uint32_t)(s->owed < FRAMES_PER_SEND ? s->owed : FRAMES_PER_SEND));
    return 0;
}

static void take_sample(struct sample *s, const struct writer *w, struct reader *r)
{
    clockid_t reader_clock;
    s->ns = rh_clock_now_ns();
    s->writer_cpu_s = cpu_clock_s(CLOCK_THREAD_CPUTIME_ID);
    s->reader_cpu_s =
        pthread_getcpuclockid(r->thread, &reader_clock) == 0 ? cpu_clock_s(reader_clock) : 0;
    s->bytes = atomic_load_explicit(&r->bytes, memory_order_relaxed);
    s->sends = w->sends;
}

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    struct io_uring ring;
    struct rh_uring_bufs bufs = {0};
    bool multishot = r->caps->multishot_recv;

    int err = pin_self(r->cpu);
    unsigned entries = 64;
    while (entries < r->count + 16)
        entries *= 2;
    if (!err) err = rh_uring_setup(&ring, entries, r->caps);
    if (err) {
        atomic_store(&r->state, err);
        return NULL;
    }
    if (multishot) {
        /* About a buffer per socket: one round's completions can all hold one at once. */
        uint32_t buf_count = 256;
        while (buf_count < r->count && buf_count < 16384)
            buf_count *= 2;
        err = rh_uring_bufs_init(&ring, &bufs, 0, buf_count, RECV_BUF_SIZE);
        if (err) {
            io_uring_queue_exit(&ring);
            atomic_store(&r->state, err);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < r->count; i++)
        reader_arm(&ring, r, multishot ? &bufs : NULL, i);
    uint32_t armed = r->count;
    atomic_store(&r->state, 1);

    while (armed && rh_clock_now_ns() < atomic_load(&r->deadline_ns)) {
        struct __kernel_timespec ts = {.tv_nsec = WAIT_MAX_NS};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
        unsigned head, seen = 0;
        uint64_t got = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            if (cqe->res > 0) got += (uint64_t)cqe->res;
            if (cqe->flags & IORING_CQE_F_BUFFER)
                rh_uring_bufs_recycle(&bufs, (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
            if (cqe->flags & IORING_CQE_F_MORE) continue;
            /* Re-arm unless end-of-file or an error; -ENOBUFS only ran out of buffers. */
            if (cqe->res > 0 || cqe->res == -ENOBUFS) {
                reader_arm(&ring, r, multishot ? &bufs : NULL, (uint32_t)cqe->user_data);
                continue;
            }
            if (cqe->res < 0 && !r->err) r->err = cqe->res;
            armed--;
        }
        io_uring_cq_advance(&ring, seen);
        rh_uring_bufs_commit(&bufs);
        atomic_fetch_add_explicit(&r->bytes, got, memory_order_relaxed);
    }
    r->unfinished = armed;
    if (armed) reader_cancel(&ring, &armed);
    if (multishot) rh_uring_bufs_destroy(&ring, &bufs);
    io_uring_queue_exit(&ring);
    return NULL;
}

static void reader_arm(struct io_uring *ring, const struct reader *r, struct rh_uring_bufs *bufs,
                       uint32_t idx)
{
    /* Without provided buffers every receive shares one buffer: the bytes are only counted. */
    static uint8_t scratch[RECV_BUF_SIZE];
    struct io_uring_sqe *sqe = rh_uring_get_sqe(ring);
    if (bufs) {
        io_uring_prep_recv_multishot(sqe, r->fds[idx], NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = bufs->bgid;
    } else {
        io_uring_prep_recv(sqe, r->fds[idx], scratch, sizeof(scratch), 0);
    }
    io_uring_sqe_set_data64(sqe, idx);
}

/* Ends the receives still armed before their buffers are freed (failure path only). */
static void reader_cancel(struct io_uring *ring, uint32_t *armed)
{
    struct io_uring_sqe *sqe = rh_uring_get_sqe(ring);
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, UINT64_MAX);
    int64_t until_ns = rh_clock_now_ns() + 1000000000;
    while (*armed && rh_clock_now_ns() < until_ns) {
        struct __kernel_timespec ts = {.tv_nsec = WAIT_MAX_NS};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            seen++;
            if (cqe->user_data != UINT64_MAX && !(cqe->flags & IORING_CQE_F_MORE)) (*armed)--;
        }
        io_uring_cq_advance(ring, seen);
    }
}

/* The frame ringhub sends for Invocation("m", ["xx...x"]) in JSON, FRAMES_PER_SEND times
 * back to back so that a send of any batch is one contiguous buffer. */
static uint8_t *build_frames(void)
{
    static const char head[] = "{\"type\":1,\"target\":\"m\",\"arguments\":[\"";
    static const char tail[] = "\"]}\x1e";
    uint32_t text_len = (uint32_t)(sizeof(head) - 1 + o.payload + sizeof(tail) - 1);
    uint32_t header_len = text_len < 126 ? 2 : 4; /* PAYLOAD_MAX keeps it under 65,536 */
    frame_len = header_len + text_len;

    uint8_t *frames = rh_alloc((size_t)frame_len * FRAMES_PER_SEND);
    uint8_t *p = frames;
    *p++ = 0x81; /* FIN, text; a server's frames are not masked */
    if (text_len < 126) {
        *p++ = (uint8_t)text_len;
    } else {
        *p++ = 126;
        *p++ = (uint8_t)(text_len >> 8);
        *p++ = (uint8_t)text_len;
    }
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    memset(p, 'x', o.payload);
    p += o.payload;
    memcpy(p, tail, sizeof(tail) - 1);
    for (uint32_t i = 1; i < FRAMES_PER_SEND; i++)
        memcpy(frames + (size_t)i * frame_len, frames, frame_len);
    return frames;
}

/* Connects @o.sockets clients to a listener on 127.0.0.1 and accepts each: the accepted end
 * is the writer's, the connected end the reader's. Returns 0, or -1 after printing why. */
static int make_pairs(int *server_fds, int *client_fds)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof(addr);
    const char *what = "listen";
    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd == -1 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) == -1 ||
        listen(lfd, 128) == -1 || getsockname(lfd, (struct sockaddr *)&addr, &addr_len) == -1)
        goto err;
    for (uint32_t i = 0; i < o.sockets; i++) {
        what = "connect";
        client_fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (client_fds[i] == -1 || connect(client_fds[i], (struct sockaddr *)&addr, addr_len) == -1)
            goto err;
        what = "accept";
        server_fds[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (server_fds[i] == -1) goto err;
        /* As ringhub does: a frame leaves at once rather than waiting for the next. */
        setsockopt(server_fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    close(lfd);
    return 0;

err:
    fprintf(stderr, "ringhub-ceiling: %s: %s\n", what, strerror(errno));
    if (lfd != -1) close(lfd);
    return -1;
}

static int pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (err) fprintf(stderr, "ringhub-ceiling: pinning to CPU %d: %s\n", cpu, strerror(err));
    return -err;
}

static double cpu_clock_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v < min || v > max) return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_double(const char *text, double min, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= min) || v > 1e9) return false;
    *out = v;
    return true;
}

static bool parse_cpu(const char *text, int *out)
{
    cpu_set_t set;
    uint32_t cpu;
    if (!parse_u32(text, 0, CPU_SETSIZE - 1, &cpu)) return false;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && !CPU_ISSET(cpu, &set)) return false;
    *out = (int)cpu;
    return true;
}

/* Returns 0 to run, 1 after --help, -1 after printing what is wrong. */
static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"sockets", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {"payload", required_argument, NULL, 'p'},
        {"rate", required_argument, NULL, 'r'},
        {"seconds", required_argument, NULL, 's'},
        {"warmup-ms", required_argument, NULL, 'w'},
        {"writer-cpu", required_argument, NULL, 'W'},
        {"reader-cpu", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch, opt_idx = -1;
    bool ok = true;
    opterr = 0;
    while (ok && (ch = getopt_long(argc, argv, "h", longopts, &opt_idx)) != -1) {
        switch (ch) {
        case 'n':
            ok = parse_u32(optarg, 1, UINT32_MAX, &o.sockets);
            if (ok && o.sockets > SOCKETS_MAX) {
                fprintf(stderr,
                        "ringhub-ceiling: --sockets %u: at most %d (each pair takes two "
                        "descriptors, and a process may hold 20,000 here)\n",
                        o.sockets, SOCKETS_MAX);
                return -1;
            }
            break;
        case 'b':
            ok = parse_u32(optarg, 1, FRAMES_PER_SEND, &o.batch);
            break;
        case 'p':
            ok = parse_u32(optarg, 0, PAYLOAD_MAX, &o.payload);
            break;
        case 'r':
            ok = parse_double(optarg, 0, &o.rate);
            break;
        case 's':
            ok = parse_double(optarg, 0.001, &o.seconds);
            break;
        case 'w':
            ok = parse_u32(optarg, 0, 600000, &o.warmup_ms);
            break;
        case 'W':
            ok = parse_cpu(optarg, &o.writer_cpu);
            break;
        case 'R':
            ok = parse_cpu(optarg, &o.reader_cpu);
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            ok = false;
            break;
        }
    }
    if (!ok) {
        if (ch != '?' && opt_idx >= 0 && optarg)
            fprintf(stderr, "ringhub-ceiling: bad value for --%s: %s\n", longopts[opt_idx].name,
                    optarg);
        else
            fprintf(stderr, "ringhub-ceiling: unknown option or missing value: %s\n",
                    argv[optind - 1]);
        usage(stderr);
        return -1;
    }
    if (optind != argc) {
        fprintf(stderr, "ringhub-ceiling: unexpected argument: %s\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: ringhub-ceiling [--sockets N] [--batch B] [--payload P] [--rate R]\n"
            "                       [--seconds S] [--warmup-ms MS] [--writer-cpu C]\n"
            "                       [--reader-cpu C]\n"
            "Writes the same pre-framed WebSocket message (a SignalR JSON invocation with P\n"
            "bytes of argument) to N loopback TCP sockets with io_uring, B frames per send and\n"
            "one send in flight per socket, and counts what a reader thread receives. Prints\n"
            "one JSON line (deliveries per second and per writer CPU-second) on stdout and a\n"
            "summary on stderr. Exits 0 when every byte written arrived as whole frames, 1\n"
            "otherwise, 2 for bad options.\n"
            "  --sockets N      socket pairs (default 1000, at most %d)\n"
            "  --batch B        frames per send (default 1, at most %d)\n"
            "  --payload P      argument bytes per message (default 64, at most %d)\n"
            "  --rate R         rounds per second, each a batch to every socket; 0 (the\n"
            "                   default) runs them back to back\n"
            "  --seconds S      measured time (default 5)\n"
            "  --warmup-ms MS   unmeasured time first (default 500)\n"
            "  --writer-cpu C   CPU of the writer (default 0)\n"
            "  --reader-cpu C   CPU of the reader (default 1)\n",
            SOCKETS_MAX, FRAMES_PER_SEND, PAYLOAD_MAX);
}
