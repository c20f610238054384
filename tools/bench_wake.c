/*
 * tools/bench_wake.c - ringhub-bench-wake: cross-shard wake-up latency. Two threads pinned to
 * two CPUs, each sleeping in io_uring_submit_and_wait on its own ring (created with the flags
 * the shards use), wake each other in turn; half of each round trip is one wake-up. Measured
 * for IORING_OP_MSG_RING (sent from the waker's ring) and for an eventfd write with a read
 * pending in the sleeper's ring (the oldest path).
 *
 * Usage: ringhub-bench-wake [rounds]   (default 20000). Prints a table and one JSON line per
 * mechanism.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/uring.h"

#define UD_WAKE  1
#define UD_EVENT 2
#define UD_SENT  3

struct side {
    struct io_uring ring;
    int event_fd;
    uint64_t event_value;
    int cpu;
    bool use_msg_ring;
    struct side *peer;
    const struct rh_uring_caps *caps;
    pthread_barrier_t *ready;
    int rounds;
    int64_t *rtt_ns; /* initiator only */
};

static void arm_event_read(struct side *me)
{
    struct io_uring_sqe *sqe = rh_uring_get_sqe(&me->ring);
    io_uring_prep_read(sqe, me->event_fd, &me->event_value, sizeof(me->event_value), 0);
    io_uring_sqe_set_data64(sqe, UD_EVENT);
}

static void wake_peer(struct side *me)
{
    if (me->use_msg_ring) {
        struct io_uring_sqe *sqe = rh_uring_get_sqe(&me->ring);
        io_uring_prep_msg_ring(sqe, me->peer->ring.ring_fd, 0, UD_WAKE, 0);
        io_uring_sqe_set_data64(sqe, UD_SENT);
        if (me->caps->cqe_skip) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        io_uring_submit(&me->ring);
    } else {
        eventfd_write(me->peer->event_fd, 1);
    }
}

/* Sleeps until a wake-up arrives; ignores the sender-side CQEs of MSG_RING. */
static void wait_wake(struct side *me)
{
    for (;;) {
        struct io_uring_cqe *cqe;
        if (io_uring_submit_and_wait(&me->ring, 1) < 0) continue;
        while (io_uring_peek_cqe(&me->ring, &cqe) == 0) {
            uint64_t ud = cqe->user_data;
            io_uring_cqe_seen(&me->ring, cqe);
            if (ud == UD_EVENT) {
                arm_event_read(me);
                return;
            }
            if (ud == UD_WAKE) return;
        }
    }
}

static void *run_side(void *arg)
{
    struct side *me = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(me->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rh_uring_setup(&me->ring, 64, me->caps) != 0) abort();
    if (!me->use_msg_ring) arm_event_read(me);
    io_uring_submit(&me->ring);
    pthread_barrier_wait(me->ready);

    for (int i = 0; i < me->rounds; i++) {
        if (me->rtt_ns) {
            int64_t start = rh_clock_now_ns();
            wake_peer(me);
            wait_wake(me);
            me->rtt_ns[i] = rh_clock_now_ns() - start;
        } else {
            wait_wake(me);
            wake_peer(me);
        }
    }
    pthread_barrier_wait(me->ready); /* neither ring goes away while the other may send */
    io_uring_queue_exit(&me->ring);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void measure(const char *name, const struct rh_uring_caps *caps, bool use_msg_ring,
                    int rounds, int cpu_a, int cpu_b)
{
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, 2);
    struct side a = {.cpu = cpu_a,
                     .use_msg_ring = use_msg_ring,
                     .caps = caps,
                     .ready = &ready,
                     .rounds = rounds,
                     .rtt_ns = calloc((size_t)rounds, sizeof(int64_t))};
    struct side b = {.cpu = cpu_b,
                     .use_msg_ring = use_msg_ring,
                     .caps = caps,
                     .ready = &ready,
                     .rounds = rounds};
    a.peer = &b;
    b.peer = &a;
    a.event_fd = eventfd(0, EFD_CLOEXEC);
    b.event_fd = eventfd(0, EFD_CLOEXEC);
    pthread_t ta, tb;
    pthread_create(&tb, NULL, run_side, &b);
    pthread_create(&ta, NULL, run_side, &a);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);

    qsort(a.rtt_ns, (size_t)rounds, sizeof(int64_t), cmp_i64);
    double p50 = a.rtt_ns[rounds / 2] / 2000.0, p99 = a.rtt_ns[rounds * 99 / 100] / 2000.0;
    printf("%-10s one-way wake-up: median %6.2f us  p99 %6.2f us  (%d round trips)\n", name, p50,
           p99, rounds);
    printf("{\"bench\":\"wake\",\"mechanism\":\"%s\",\"rounds\":%d,\"median_us\":%.2f,"
           "\"p99_us\":%.2f}\n",
           name, rounds, p50, p99);
    free(a.rtt_ns);
    close(a.event_fd);
    close(b.event_fd);
    pthread_barrier_destroy(&ready);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20000;
    if (rounds < 100) rounds = 100;
    cpu_set_t set;
    int cpus[2] = {0, 0}, n = 0;
    sched_getaffinity(0, sizeof(set), &set);
    for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; cpu++)
        if (CPU_ISSET(cpu, &set)) cpus[n++] = cpu;
    if (n < 2) printf("note: one CPU only; both threads share it\n");

    struct rh_uring_caps caps, oldest;
    int err = rh_uring_probe(&caps, false);
    if (err || rh_uring_probe(&oldest, true)) {
        fprintf(stderr, "io_uring unusable: %s\n", rh_uring_error_hint(err));
        return 1;
    }
    char text[160];
    printf("rings: %s\n", rh_uring_caps_describe(&caps, text, sizeof(text)));
    if (caps.msg_ring)
        measure("msg_ring", &caps, true, rounds, cpus[0], cpus[1]);
    else
        printf("msg_ring   not supported by this kernel\n");
    measure("eventfd", &caps, false, rounds, cpus[0], cpus[1]);
    measure("eventfd-oldest", &oldest, false, rounds, cpus[0], cpus[1]);
    return 0;
}
