#pragma once
/*
 * shards/shard_internal.h - the structures shared by the runtime's own files (runtime.c,
 * shard.c, conn.c) and their unit tests. Handlers use shards/shard.h only.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <liburing.h>

#include "core/assert.h"
#include "core/fifo.h"
#include "core/list.h"
#include "core/spsc.h"
#include "core/timer.h"
#include "core/uring.h"
#include "shards/shard.h"

/* user_data of every SQE: op:8 | gen:24 | slot:32, so a completion for a reused slot (stale
 * generation) is recognised and dropped instead of touching the new connection. */
enum rh_op {
    RH_OP_ACCEPT = 1,
    RH_OP_RECV,
    RH_OP_SEND,
    RH_OP_EVENTFD,   /* read of the shard's eventfd completed: a wake-up */
    RH_OP_WAKE,      /* MSG_RING from another shard arrived: a wake-up */
    RH_OP_WAKE_SENT, /* our MSG_RING to another shard failed (successes are skipped) */
    RH_OP_CANCEL,    /* result of a cancel request; nothing to do */
    RH_OP_CONNECT,   /* an outbound connection's connect(2) finished */
};

static inline uint64_t rh_ud_make(enum rh_op op, uint32_t gen, uint32_t slot)
{
    return ((uint64_t)op << 56) | ((uint64_t)(gen & 0xffffff) << 32) | slot;
}

static inline enum rh_op rh_ud_op(uint64_t ud)
{
    return (enum rh_op)(ud >> 56);
}

static inline uint32_t rh_ud_gen(uint64_t ud)
{
    return (uint32_t)(ud >> 32) & 0xffffff;
}

static inline uint32_t rh_ud_slot(uint64_t ud)
{
    return (uint32_t)ud;
}

enum rh_conn_state {
    RH_CONN_FREE,       /* slot unused */
    RH_CONN_CONNECTING, /* outbound (rh_conn_connect): its connect is in flight */
    RH_CONN_OPEN,       /* reading and writing */
    /* Moving to another shard (rh_conn_handoff): what is queued is still sent, input is kept
     * unhandled, and once nothing is in flight the socket and that input go to the new shard. */
    RH_CONN_HANDOFF,
    RH_CONN_DRAINING, /* closing after its queue is flushed; input is ignored */
    /* Everything sent and the write side shut down; input is read and dropped until the peer
     * closes or RH_CONN_LINGER_MS pass. Closing at once could reset the connection (unread
     * input makes close(2) send RST) and the peer would lose our last reply. */
    RH_CONN_LINGERING,
    RH_CONN_CLOSING, /* shut down; waiting for its operations' last completions */
    RH_CONN_REAPING, /* nothing in flight; freed at the end of the loop turn */
};

#define RH_SEND_IOV_MAX 64

/* A send in flight: the kernel reads msg and iov until the completion arrives. */
struct rh_send_op {
    struct msghdr msg;
    struct iovec iov[RH_SEND_IOV_MAX];
    struct rh_send_op *next_free;
};

struct rh_conn {
    struct rh_shard *shard;
    uint64_t id;
    int fd;
    uint32_t slot;
    uint32_t gen;
    uint32_t q_head_sent;      /* bytes of the oldest queued buffer (q) already sent */
    uint32_t q_bytes;          /* bytes queued (q) and not sent yet */
    uint32_t ip_slot;          /* 1 + its client address's counter (runtime ip_conns); 0: none */
    uint8_t state;             /* enum rh_conn_state */
    bool recv_armed;           /* a receive is submitted and not finished */
    bool starved;              /* its multishot recv ended on -ENOBUFS; on shard->starved */
    bool dirty;                /* has queued data and no send in flight; on shard->dirty */
    bool fixed;                /* its socket is also in the ring's file table, at index slot */
    uint8_t handoff_dst;       /* HANDOFF: the shard it moves to */
    uint8_t listener;          /* enum rh_listener_kind of the socket that accepted it */
    uint16_t inflight;         /* submitted operations whose last completion is pending */
    int16_t connect_error;     /* outbound, closed before it connected: the -errno */
    struct rh_list link;       /* shard->conns while not FREE */
    struct rh_list dirty_link; /* shard->dirty while dirty; shard->lingering while LINGERING
                                * (a lingering connection has nothing left to send) */
    struct rh_list aux_link;   /* shard->starved while starved, shard->reap while REAPING */
    struct rh_send_op *send;   /* the send in flight, or NULL */
    /* Send queue: references to struct rh_buf, oldest first; the first may be partly sent. */
    struct rh_fifo q;
    uint8_t *partial; /* input the handler has not consumed yet */
    uint32_t partial_len, partial_cap;
    uint8_t *recv_buf; /* oldest path only: this connection's own receive buffer */
    union {
        int64_t linger_until_ms;             /* LINGERING: when to stop waiting for the peer */
        struct rh_blob *handoff;             /* HANDOFF: the handler's data for the new shard */
        struct sockaddr_storage *connect_to; /* CONNECTING: the peer, until the completion */
    };
    void *app;
};

#define RH_CONN_LINGER_MS 2000

/* Counters written only by their shard, read by any thread with relaxed loads. */
struct rh_shard_stats {
    _Atomic uint64_t conns_live, conns_accepted, conns_closed, conns_rejected;
    _Atomic uint64_t conn_ops_inflight, bytes_in, bytes_out, blobs_in;
    _Atomic uint64_t wakes_sent, wakes_received, recv_enobufs, ring_full, conns_moved;
};

/* A listening socket of a shard: every shard has the main one (SO_REUSEPORT); shard 0 also
 * has the admin socket and the operator port when they are configured. */
#define RH_LISTENERS_MAX 3
struct rh_listener {
    int fd;
    uint8_t kind; /* enum rh_listener_kind */
    bool armed;
    bool multishot;
};

/* How busy the loop is: time outside io_uring waits, per window of LOOP_WINDOW_NS. */
struct rh_loop_time {
    int64_t window_start_ns;
    int64_t window_idle_ns;
    uint64_t busy_ns;       /* since start */
    uint32_t util_permille; /* over the last full window */
};

struct rh_shard {
    /* The wake-up flag is written by other shards: keep it off the lines the owner writes. */
    _Alignas(64) _Atomic bool sleeping;
    _Alignas(64) struct rh_runtime *rt;
    uint32_t idx;
    int cpu;
    pthread_t thread;
    struct io_uring ring;
    int ring_fd;  /* published before the start barrier, read by other shards */
    int event_fd; /* wakes this shard: stop requests, and wake-ups without MSG_RING */
    uint64_t event_value;
    struct rh_listener listeners[RH_LISTENERS_MAX];
    uint32_t listener_count;
    bool recv_multishot;
    bool stopping;
    bool drain_announced; /* stopping: its draining hook's blobs are all on the rings */
    bool conns_closing;   /* stopping: its connections are closing */
    struct rh_wheel wheel;
    struct rh_timer accept_pause; /* armed while accepting pauses after EMFILE/ENFILE */
    struct rh_timer stop_grace;   /* armed while stopping: when it fires, close what is left */
    struct rh_uring_caps caps;
    struct rh_uring_bufs bufs;
    uint32_t conns_max;
    uint32_t fixed_files; /* size of the ring's registered file table (0: none) */

    struct rh_spsc **in;  /* in[j]: ring from shard j to this one (NULL for j == idx) */
    struct rh_spsc **out; /* out[j]: ring from this shard to shard j */
    /* outbox[j]: blobs posted to shard j and not yet in its ring, oldest first: what was posted
     * this turn (pushed at its end), plus what did not fit while the ring was full. */
    struct rh_fifo *outbox;
    uint64_t outbox_pending;   /* bit j: outbox[j] is not empty */
    struct rh_fifo self_queue; /* blobs this shard posted to itself */

    /* Connection table: slots in chunks so connections never move. */
    struct rh_conn **chunks;
    uint32_t chunk_count;
    uint32_t *free_slots;
    uint32_t free_count, slot_count;
    struct rh_list conns, dirty, starved, reap;
    struct rh_list lingering;    /* oldest first: all linger for the same time */
    struct rh_timer linger_done; /* armed for the oldest lingering connection */
    struct rh_send_op *free_send_ops;

    void *app;
    struct rh_shard_stats stats;
    struct rh_loop_time loop_time;
    /* Delivery latency of stamped buffers (struct rh_buf stamp_ns), from stamp to the
     * completion of the send that finished them. */
    uint64_t latency[RH_LATENCY_BUCKETS];
    uint64_t latency_count, latency_sum_ns;
    uint64_t dropped_frames; /* rh_conn_drop_queued and rh_conn_drop_tagged */
};

struct rh_runtime {
    const struct rh_cfg *cfg;
    const struct rh_conn_handler *handler;
    struct rh_uring_caps caps;
    uint32_t shard_count;
    uint16_t port;
    struct rh_shard **shards;
    pthread_barrier_t start_barrier;
    _Atomic bool start_failed;
    _Atomic bool stop_requested;
    _Atomic uint32_t shards_drained; /* stopping shards whose draining blobs are all posted */
    /* --max-conns-per-ip: connections per client address, counted in RH_IP_SLOTS counters
     * indexed by a keyed hash of the address (shared by the shards: an atomic add at accept
     * and close; two addresses may share a counter, rarely). NULL without the limit. */
    _Atomic uint32_t *ip_conns;
    _Atomic uint32_t grace_ms; /* --shutdown-grace-ms, or the timeout of an admin drain */
    _Atomic bool is_draining;  /* stopping because an operator asked (rh_runtime_drain) */
    int64_t started_ms;        /* wall clock, ms since the epoch */
    char *admin_path;          /* the admin socket's path, unlinked at the end; NULL: none */
};

#define RH_IP_SLOTS 65536

/* Debug builds check that an object is touched only on its shard's thread. */
#define RH_ASSERT_OWNED(obj) RH_DEBUG_ASSERT((obj)->shard == rh_shard_self())

/* shard.c */
void *rh_shard_main(void *arg);

/* Blob kinds the runtime handles itself (from RH_BLOB_KIND_MAX up). */
#define RH_BLOB_ADOPT RH_BLOB_KIND_MAX /* arg: a socket; data: u32 app length, app data, input */

/* Drops a blob that will never be delivered, releasing what it carries (a socket). */
void rh_shard_blob_discard(struct rh_blob *b);

/* conn.c: the connection side of the loop */
void rh_conn_table_init(struct rh_shard *s);
void rh_conn_table_free(struct rh_shard *s);
void rh_conn_accepted(struct rh_shard *s, int fd, uint8_t listener);
void rh_conn_adopt(struct rh_shard *s, struct rh_blob *b);
void rh_conn_complete(struct rh_shard *s, const struct io_uring_cqe *cqe);
void rh_conn_flush_dirty(struct rh_shard *s);
void rh_conn_rearm_starved(struct rh_shard *s);
void rh_conn_reap(struct rh_shard *s);
void rh_conn_close_all(struct rh_shard *s, enum rh_close_how how);

static inline void rh_stat_add(_Atomic uint64_t *counter, uint64_t n)
{
    /* Single writer: a relaxed load and store avoid the locked add of fetch_add. */
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void rh_stat_sub(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) - n,
                          memory_order_relaxed);
}
