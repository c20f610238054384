#pragma once
/*
 * shards/shard.h - the shard runtime as seen by the code that serves connections.
 *
 * A runtime is N shard threads, each pinned to one CPU, each owning an io_uring ring, a
 * listening socket on the shared port (SO_REUSEPORT), its connections, and the consumer ends
 * of N-1 SPSC rings on which the other shards send it blobs. Nothing a shard owns is touched
 * by another thread.
 *
 * What to do with a connection's bytes is the business of a handler (struct rh_conn_handler),
 * which the runtime calls on the connection's shard thread. Handlers send with rh_conn_send,
 * close with rh_conn_close and talk to other shards with rh_shard_post / rh_shard_post_all.
 * Every function here is called only on the thread of the shard that owns its argument,
 * except where it says otherwise.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/blob.h"
#include "core/buf.h"
#include "core/cfg.h"

struct rh_runtime;
struct rh_shard;
struct rh_conn;

/* Connection ids name node, shard, slot and generation, so any shard can route to a
 * connection without a lookup, and an id outlives nothing: a reused slot has a new generation.
 * Layout (high to low): node:12 | shard:8 | slot:20 | gen:24. */
#define RH_CONN_ID_GEN_BITS   24
#define RH_CONN_ID_SLOT_BITS  20
#define RH_CONN_ID_SHARD_BITS 8
#define RH_CONN_ID_NODE_BITS  12
#define RH_SHARDS_MAX         64 /* one bit per shard in wake-up masks */

static inline uint32_t rh_conn_id_shard(uint64_t id);
static inline uint32_t rh_conn_id_slot(uint64_t id);
static inline uint32_t rh_conn_id_gen(uint64_t id);
static inline uint32_t rh_conn_id_node(uint64_t id);

/* Which socket accepted a connection. Every shard listens on the main port; shard 0 also
 * takes the admin Unix socket (--admin-socket) and the operator port (--metrics-port). */
enum rh_listener_kind {
    RH_LISTENER_MAIN,
    RH_LISTENER_ADMIN,
    RH_LISTENER_OPERATOR,
    RH_LISTENER_OUTBOUND, /* not accepted: opened by rh_conn_connect */
};

/* Delivery latency buckets (rh_shard_report): bucket i counts latencies up to 2^(i+16) ns
 * (65.5 us, 131 us, ... 4.3 s); the last one counts everything above. */
#define RH_LATENCY_BUCKETS 18

enum rh_close_how {
    RH_CLOSE_NOW,         /* drop what is queued and close */
    RH_CLOSE_AFTER_FLUSH, /* stop reading, send what is queued, then close */
};

/* What a server does with connections. Called on the owning shard's thread. */
struct rh_conn_handler {
    /* The shard is starting (before its first accept) or has stopped (after its last
     * connection is gone). Either may be NULL. */
    void (*shard_start)(struct rh_shard *s);
    void (*shard_stop)(struct rh_shard *s);
    /* The shard begins to stop (SIGTERM, SIGINT): its connections are still open and may be
     * sent a goodbye, and it may post blobs (goodbyes for connections on other shards). Its
     * connections are closed, flushing what they queued, once every shard's hook has run and
     * the blobs they posted have been delivered. May be NULL. */
    void (*shard_draining)(struct rh_shard *s);
    /* A connection was accepted. It may send and close already. */
    void (*conn_open)(struct rh_conn *c);
    /* Bytes arrived. Returns how many it consumed; the rest is kept and offered again, in
     * front of what arrives next (at most RH_CONN_PARTIAL_MAX bytes are kept). A negative
     * errno closes the connection at once. */
    ssize_t (*conn_recv)(struct rh_conn *c, const uint8_t *data, size_t len);
    /* A connection another shard handed over (rh_conn_handoff) arrived here with the
     * @data the sender attached; called instead of conn_open. May be NULL if nothing hands
     * connections over. */
    void (*conn_adopt)(struct rh_conn *c, const uint8_t *data, size_t len);
    /* The connection is closing (either side), or moving to another shard. Called once;
     * nothing more is sent from this shard. */
    void (*conn_close)(struct rh_conn *c);
    /* A blob posted by a shard (this one or another), of a kind below RH_BLOB_KIND_MAX (the
     * kinds above are the runtime's own). The runtime drops the reference the
     * post took after this returns. */
    void (*blob)(struct rh_shard *s, struct rh_blob *b);
    /* On the main thread before the shards start (resolve names, check the configuration):
     * returns 0, or -1 having said why (the process exits 1); and after they have all stopped.
     * Either may be NULL. */
    int (*prepare)(const struct rh_cfg *cfg);
    void (*finish)(void);
};

/* Blob kinds handlers may use are below this; the runtime keeps the rest for itself. */
#define RH_BLOB_KIND_MAX 0xff00

/* Bytes of unconsumed input a connection keeps before it is closed as abusive. */
#define RH_CONN_PARTIAL_MAX (1u << 20)

/* Starts the shards of @cfg. @handler and @cfg must outlive the runtime. Returns 0, or a
 * negative errno with the reason logged (listen failed, io_uring unusable, ...). Main thread;
 * block the signals the shards must not take before calling it. */
int rh_runtime_start(struct rh_runtime **rt, const struct rh_cfg *cfg,
                     const struct rh_conn_handler *handler);
/* The whole life of a server process: parses @argv into a configuration, seeds hashing,
 * serves with @handler until SIGINT or SIGTERM, frees everything. Returns the exit status: 0,
 * 2 for bad flags (after saying why), 1 when the runtime could not start, and 3 when memory
 * was still allocated at exit (a leak is a bug; tests rely on this status to catch one). */
int rh_runtime_main(int argc, char **argv, const struct rh_conn_handler *handler);
/* Starts the runtime, serves until SIGINT or SIGTERM, stops it and frees it. Returns 0, or
 * the error of rh_runtime_start. Main thread, before any other thread exists. */
int rh_runtime_serve(const struct rh_cfg *cfg, const struct rh_conn_handler *handler);
/* Asks every shard to stop: stop accepting, close connections (flushing what they queued,
 * for up to cfg->shutdown_grace_ms), and leave their loops. Any thread, async-signal-safe
 * apart from the first call's logging. */
void rh_runtime_stop(struct rh_runtime *rt);
/* Waits for every shard to leave its loop, then frees everything. Main thread. */
void rh_runtime_join(struct rh_runtime *rt);

/* Counters summed over all shards with relaxed loads: approximate while shards run. */
struct rh_runtime_stats {
    uint64_t conns_live;
    uint64_t conns_accepted;
    uint64_t conns_closed;
    uint64_t conns_rejected;
    uint64_t conn_ops_inflight; /* submitted per-connection operations not yet completed */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t blobs_in;
    uint64_t wakes_sent;
    uint64_t wakes_received;
    uint64_t recv_enobufs;
    uint64_t ring_full;
    uint64_t conns_moved; /* handed over to another shard */
};
/* Any thread. */
void rh_runtime_stats(const struct rh_runtime *rt, struct rh_runtime_stats *out);
/* An operator asked to drain: stop accepting, let the handler say goodbye, close connections
 * within @grace_ms, and end rh_runtime_serve (which returns as after SIGTERM). Any thread. */
void rh_runtime_drain(struct rh_runtime *rt, uint32_t grace_ms);
/* True once the runtime is stopping (a signal or a drain). Any thread. */
bool rh_runtime_is_stopping(const struct rh_runtime *rt);
/* When the runtime started: wall clock, ms since the epoch. Any thread. */
int64_t rh_runtime_started_ms(const struct rh_runtime *rt);
/* The bound main port. Any thread. */
uint16_t rh_runtime_port(const struct rh_runtime *rt);
/* The admin socket's path (--admin-socket with %p replaced), or NULL when there is none. */
const char *rh_runtime_admin_path(const struct rh_runtime *rt);

/* What a shard reports about itself (rh_shard_report): its counters since start and its state
 * now. */
struct rh_shard_report {
    uint32_t idx;
    int cpu;
    uint64_t conns_live, conns_accepted, conns_closed, conns_rejected, conns_moved;
    uint64_t bytes_in, bytes_out, blobs_in, wakes_received, ring_full, recv_enobufs;
    uint64_t send_queue_bytes;   /* queued on its connections, not sent yet */
    uint64_t ring_depth;         /* blobs waiting for it in its inbound rings */
    uint64_t loop_busy_ns;       /* time its loop spent outside io_uring waits */
    uint32_t loop_util_permille; /* over the last second */
    char io[96];                 /* the io_uring features it uses */
    uint64_t latency[RH_LATENCY_BUCKETS];
    uint64_t latency_count, latency_sum_ns;
    uint64_t dropped_frames; /* queued buffers dropped for readers that did not keep up */
};
/* Fills @out for @s; on @s's thread (other shards ask it over the rings). */
void rh_shard_report(struct rh_shard *s, struct rh_shard_report *out);

/* This node's id (--node-id), part of every connection id. Any thread. */
uint32_t rh_runtime_node_id(const struct rh_runtime *rt);
/* The configuration the runtime was started with (read-only). Any thread. */
const struct rh_cfg *rh_runtime_cfg(const struct rh_runtime *rt);

/* The runtime @s belongs to (for rh_runtime_stats and the like). */
struct rh_runtime *rh_shard_runtime(const struct rh_shard *s);
uint32_t rh_shard_idx(const struct rh_shard *s);
uint32_t rh_shard_count(const struct rh_shard *s);
/* The shard whose thread calls this, or NULL on other threads. */
struct rh_shard *rh_shard_self(void);
/* The shard's timer wheel (core/timer.h); it runs every loop turn. */
struct rh_wheel *rh_shard_wheel(struct rh_shard *s);
/* Per-shard slot for the handler's own state. */
void *rh_shard_app(const struct rh_shard *s);
void rh_shard_set_app(struct rh_shard *s, void *app);

/* Sends @b to shard @dst_idx (which may be this shard) and takes over one of the caller's
 * references. Never blocks and never fails: blobs wait in a local outbox and are pushed
 * (one ring publish per destination) at the end of the loop turn, or later if the ring is full. The
 * receiving shard's handler->blob runs on its thread. */
void rh_shard_post(struct rh_shard *s, uint32_t dst_idx, struct rh_blob *b);
/* Sends @b to every shard, this one included; @b must hold one reference per shard. */
void rh_shard_post_all(struct rh_shard *s, struct rh_blob *b);
/* Calls @fn for each open connection of @s. @fn may send to and close connections. */
void rh_shard_foreach_conn(struct rh_shard *s, void (*fn)(struct rh_conn *c, void *ctx), void *ctx);

/* The open connection of @s with id @id, or NULL when it has closed (or never was). */
struct rh_conn *rh_shard_conn(struct rh_shard *s, uint64_t id);

uint64_t rh_conn_id(const struct rh_conn *c);
struct rh_shard *rh_conn_shard(const struct rh_conn *c);
void *rh_conn_app(const struct rh_conn *c);
void rh_conn_set_app(struct rh_conn *c, void *app);
bool rh_conn_is_open(const struct rh_conn *c);
enum rh_listener_kind rh_conn_listener(const struct rh_conn *c);
/* The uid of the peer of a Unix socket (SO_PEERCRED), or -1. */
int64_t rh_conn_peer_uid(const struct rh_conn *c);
/* The peer's address as "ip:port" ("[ip6]:port") into @out, or "" when it has none. */
void rh_conn_peer_name(const struct rh_conn *c, char *out, size_t cap);
/* Queues @buf after what the connection already queued and takes a new reference to it;
 * nothing is copied. Returns 0, or -EPIPE when the connection is closing (nothing queued). */
int rh_conn_send(struct rh_conn *c, struct rh_buf *buf);
/* Bytes queued on @c and not sent yet (what a slow reader leaves behind). */
uint32_t rh_conn_queued_bytes(const struct rh_conn *c);
/* Drops whole queued buffers, oldest first, until @bytes are gone or only what a send in flight
 * holds is left; returns the bytes dropped. For a reader that cannot keep up, whose oldest
 * messages are worth least: each buffer must hold whole messages (frames, events). */
uint32_t rh_conn_drop_queued(struct rh_conn *c, uint32_t bytes);
/* Drops every queued buffer tagged @tag (struct rh_buf) that no send in flight holds, keeping
 * the order of the rest; returns the bytes dropped. Conflation: the newest of a stream is
 * then queued behind what else waits. */
uint32_t rh_conn_drop_tagged(struct rh_conn *c, uint32_t tag);
/* Copies @len bytes into a new buffer and queues it. Same returns as rh_conn_send. */
int rh_conn_send_copy(struct rh_conn *c, const void *data, uint32_t len);
/* Moves @c, with its socket, to shard @dst_idx: what it queued is still sent from here, input
 * that arrives meanwhile is kept, then the new shard adopts the socket, calls the handler's
 * conn_adopt with a copy of @data (@len bytes, the handler's own state to carry over) and
 * feeds it the kept input. conn_close runs here first, as for a close. The connection gets a
 * new id on the new shard. Returns 0, -EINVAL for a bad @dst_idx (or this shard), -EPIPE when
 * @c is not open. After it returns, the handler stops reading: return the bytes consumed so
 * far from conn_recv, and the rest travels with the socket. */
int rh_conn_handoff(struct rh_conn *c, uint32_t dst_idx, const void *data, uint32_t len);
/* Opens a TCP connection from @s to @addr (@addr_len bytes) without blocking the shard, with
 * @app as its rh_conn_app. Once connected the handler's conn_open runs (rh_conn_listener says
 * RH_LISTENER_OUTBOUND) and it is a connection like the others; if the connect fails, or it is
 * closed before it connects, conn_close runs instead, and rh_conn_connect_error says why.
 * Returns the connection, or NULL with errno set (the shard is stopping or full, no socket). */
struct rh_conn *rh_conn_connect(struct rh_shard *s, const struct sockaddr *addr, socklen_t addr_len,
                                void *app);
/* Why an outbound connection closed before it connected (a negative errno, -ECANCELED when it
 * was closed first), or 0 when it did connect. Valid in conn_close. */
int rh_conn_connect_error(const struct rh_conn *c);
/* Closes @c as @how says. Safe to call more than once and from inside any handler callback;
 * the connection's memory lives on until the end of the current loop turn. */
void rh_conn_close(struct rh_conn *c, enum rh_close_how how);

static inline uint32_t rh_conn_id_gen(uint64_t id)
{
    return (uint32_t)(id & ((1u << RH_CONN_ID_GEN_BITS) - 1));
}

static inline uint32_t rh_conn_id_slot(uint64_t id)
{
    return (uint32_t)((id >> RH_CONN_ID_GEN_BITS) & ((1u << RH_CONN_ID_SLOT_BITS) - 1));
}

static inline uint32_t rh_conn_id_shard(uint64_t id)
{
    return (uint32_t)((id >> (RH_CONN_ID_GEN_BITS + RH_CONN_ID_SLOT_BITS)) &
                      ((1u << RH_CONN_ID_SHARD_BITS) - 1));
}

static inline uint32_t rh_conn_id_node(uint64_t id)
{
    return (uint32_t)(id >> (RH_CONN_ID_GEN_BITS + RH_CONN_ID_SLOT_BITS + RH_CONN_ID_SHARD_BITS));
}
