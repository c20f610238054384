/*
 * shards/conn.c - connections on a shard's ring: the slot table, receives (multishot from the
 * shard's buffer ring, or single-shot into the connection's own buffer on the oldest path),
 * the send queue with one vectored send in flight, and two-phase close.
 *
 * Lifetime: a connection is OPEN, maybe DRAINING (flushing before close), then CLOSING:
 * shutdown(2) ends its pending receive and send, and it waits for their last completions.
 * When nothing is in flight it is REAPING, and rh_conn_reap frees it at the end of the loop
 * turn, so no caller up the stack (a handler iterating connections) sees freed memory and no
 * completion ever arrives for a freed slot. Each reuse of a slot bumps its generation, which
 * every SQE's user_data carries.
 */
#include "shards/shard_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"

#define CONN_CHUNK_SHIFT 10
#define CONN_CHUNK_SIZE  (1u << CONN_CHUNK_SHIFT)

static struct rh_conn *conn_at(struct rh_shard *s, uint32_t slot);
static struct rh_conn *conn_alloc(struct rh_shard *s);
static struct rh_conn *conn_setup(struct rh_shard *s, int fd);
static void conn_handoff_maybe(struct rh_conn *c);
static bool conn_is_live(const struct rh_conn *c);
static void conn_arm_recv(struct rh_conn *c);
static void conn_recv_done(struct rh_shard *s, struct rh_conn *c, const struct io_uring_cqe *cqe);
static void conn_input(struct rh_conn *c, const uint8_t *data, uint32_t len);
static void conn_keep_input(struct rh_conn *c, const uint8_t *data, uint32_t len);
static void conn_start_send(struct rh_conn *c);
static void conn_send_done(struct rh_shard *s, struct rh_conn *c, int res);
static void conn_consume_sent(struct rh_conn *c, uint32_t sent);
static void conn_mark_dirty(struct rh_conn *c);
static void conn_close_now(struct rh_conn *c);
static void conn_linger(struct rh_conn *c);
static void linger_expired(struct rh_timer *t);
static bool conn_is_reading(const struct rh_conn *c);
static void conn_op_started(struct rh_conn *c);
static void conn_op_finished(struct rh_conn *c);
static void conn_free(struct rh_shard *s, struct rh_conn *c);
static bool conn_count_address(struct rh_shard *s, int fd, uint32_t *ip_slot);
static void latency_note(struct rh_shard *s, int64_t ns);
static void conn_connect_done(struct rh_conn *c, int res);
static void conn_open_socket(struct rh_conn *c);
static void conn_register(struct rh_shard *s, struct rh_conn *c);

void rh_conn_table_init(struct rh_shard *s)
{
    /* A sparse table of registered files, indexed by connection slot: operations on a
     * registered socket skip the file lookup and reference counting of every submission. */
    uint32_t files = s->conns_max + s->conns_max / 4 + 64;
    if (!s->caps.oldest && io_uring_register_files_sparse(&s->ring, files) == 0)
        s->fixed_files = files;
    rh_list_init(&s->conns);
    rh_list_init(&s->dirty);
    rh_list_init(&s->starved);
    rh_list_init(&s->reap);
    rh_list_init(&s->lingering);
    rh_timer_init(&s->linger_done, linger_expired);
}

void rh_conn_table_free(struct rh_shard *s)
{
    RH_ASSERT(rh_list_is_empty(&s->conns));
    rh_timer_cancel(&s->linger_done);
    for (uint32_t i = 0; i < s->chunk_count; i++)
        rh_free(s->chunks[i]);
    rh_free(s->chunks);
    rh_free(s->free_slots);
    while (s->free_send_ops) {
        struct rh_send_op *op = s->free_send_ops;
        s->free_send_ops = op->next_free;
        rh_free(op);
    }
}

void rh_conn_accepted(struct rh_shard *s, int fd, uint8_t listener)
{
    uint32_t ip_slot = 0;
    if (listener == RH_LISTENER_MAIN && s->rt->ip_conns && !conn_count_address(s, fd, &ip_slot))
        return;
    struct rh_conn *c = conn_setup(s, fd);
    if (!c) {
        if (ip_slot)
            atomic_fetch_sub_explicit(&s->rt->ip_conns[ip_slot - 1], 1, memory_order_relaxed);
        return;
    }
    c->ip_slot = ip_slot;
    c->listener = listener;
    rh_stat_add(&s->stats.conns_accepted, 1);
    s->rt->handler->conn_open(c);
}

void rh_conn_adopt(struct rh_shard *s, struct rh_blob *b)
{
    uint32_t app_len;
    RH_ASSERT(b->len >= sizeof(app_len));
    memcpy(&app_len, b->data, sizeof(app_len));
    RH_ASSERT(app_len <= b->len - sizeof(app_len));
    const uint8_t *app = b->data + sizeof(app_len);
    const uint8_t *input = app + app_len;
    uint32_t input_len = b->len - (uint32_t)sizeof(app_len) - app_len;

    /* The socket, and its address's count, which moves with it (conn_handoff_maybe). */
    struct rh_conn *c = conn_setup(s, (int)(uint32_t)b->arg);
    uint32_t ip_slot = (uint32_t)(b->arg >> 32);
    if (!c) {
        if (ip_slot)
            atomic_fetch_sub_explicit(&s->rt->ip_conns[ip_slot - 1], 1, memory_order_relaxed);
        return;
    }
    c->ip_slot = ip_slot;
    const struct rh_conn_handler *h = s->rt->handler;
    if (h->conn_adopt)
        h->conn_adopt(c, app, app_len);
    else
        h->conn_open(c);
    if (input_len) conn_input(c, input, input_len);
}

int rh_conn_handoff(struct rh_conn *c, uint32_t dst_idx, const void *data, uint32_t len)
{
    RH_ASSERT_OWNED(c);
    struct rh_shard *s = c->shard;
    if (dst_idx >= s->rt->shard_count || dst_idx == s->idx) return -EINVAL;
    if (c->state != RH_CONN_OPEN) return -EPIPE;

    c->state = RH_CONN_HANDOFF;
    c->handoff_dst = (uint8_t)dst_idx;
    c->handoff = rh_blob_new(RH_BLOB_ADOPT, 1, data, len);
    s->rt->handler->conn_close(c);
    if (c->starved) {
        rh_list_unlink(&c->aux_link);
        c->starved = false;
    }
    if (c->recv_armed) {
        /* Its last completion, -ECANCELED (or data that raced the cancel, which is kept),
         * brings the in-flight count down and lets the move go on. */
        struct io_uring_sqe *sqe = rh_uring_get_sqe(&s->ring);
        io_uring_prep_cancel64(sqe, rh_ud_make(RH_OP_RECV, c->gen, c->slot), 0);
        io_uring_sqe_set_data64(sqe, rh_ud_make(RH_OP_CANCEL, 0, 0));
    }
    conn_handoff_maybe(c);
    return 0;
}

void rh_conn_complete(struct rh_shard *s, const struct io_uring_cqe *cqe)
{
    uint32_t slot = rh_ud_slot(cqe->user_data);
    struct rh_conn *c = slot < s->slot_count ? conn_at(s, slot) : NULL;
    if (!c || c->state == RH_CONN_FREE || c->gen != rh_ud_gen(cqe->user_data)) {
        /* Every operation is reaped before its slot is freed, so this is a bug; keep the
         * provided buffer it may hold in circulation and say so. */
        rh_log_error("conn", "completion for a stale connection slot %u (op %d, res %d)", slot,
                     (int)rh_ud_op(cqe->user_data), cqe->res);
        RH_DEBUG_ASSERT(!"stale connection completion");
        if (cqe->flags & IORING_CQE_F_BUFFER)
            rh_uring_bufs_recycle(&s->bufs, (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
        return;
    }
    if (rh_ud_op(cqe->user_data) == RH_OP_RECV)
        conn_recv_done(s, c, cqe);
    else if (rh_ud_op(cqe->user_data) == RH_OP_CONNECT)
        conn_connect_done(c, cqe->res);
    else
        conn_send_done(s, c, cqe->res);
}

void rh_conn_flush_dirty(struct rh_shard *s)
{
    struct rh_list *node, *tmp;
    rh_list_for_each_safe(node, tmp, &s->dirty) {
        struct rh_conn *c = rh_list_entry(node, struct rh_conn, dirty_link);
        rh_list_unlink(&c->dirty_link);
        c->dirty = false;
        if (c->q.count && !c->send) conn_start_send(c);
    }
}

void rh_conn_rearm_starved(struct rh_shard *s)
{
    struct rh_list *node, *tmp;
    rh_list_for_each_safe(node, tmp, &s->starved) {
        struct rh_conn *c = rh_list_entry(node, struct rh_conn, aux_link);
        rh_list_unlink(&c->aux_link);
        c->starved = false;
        if (conn_is_reading(c)) conn_arm_recv(c);
    }
}

void rh_conn_reap(struct rh_shard *s)
{
    struct rh_list *node, *tmp;
    rh_list_for_each_safe(node, tmp, &s->reap) {
        struct rh_conn *c = rh_list_entry(node, struct rh_conn, aux_link);
        conn_free(s, c);
    }
}

void rh_conn_close_all(struct rh_shard *s, enum rh_close_how how)
{
    struct rh_list *node, *tmp;
    rh_list_for_each_safe(node, tmp, &s->conns) {
        rh_conn_close(rh_list_entry(node, struct rh_conn, link), how);
    }
}

uint64_t rh_conn_id(const struct rh_conn *c)
{
    return c->id;
}

struct rh_shard *rh_conn_shard(const struct rh_conn *c)
{
    return c->shard;
}

void *rh_conn_app(const struct rh_conn *c)
{
    return c->app;
}

void rh_conn_set_app(struct rh_conn *c, void *app)
{
    c->app = app;
}

struct rh_conn *rh_shard_conn(struct rh_shard *s, uint64_t id)
{
    uint32_t slot = rh_conn_id_slot(id);
    if (rh_conn_id_shard(id) != s->idx || slot >= s->slot_count) return NULL;
    struct rh_conn *c = conn_at(s, slot);
    return c->id == id && c->state == RH_CONN_OPEN ? c : NULL;
}

bool rh_conn_is_open(const struct rh_conn *c)
{
    return c->state == RH_CONN_OPEN;
}

int rh_conn_send(struct rh_conn *c, struct rh_buf *buf)
{
    RH_ASSERT_OWNED(c);
    if (c->state != RH_CONN_OPEN) return -EPIPE;
    rh_fifo_push(&c->q, rh_buf_ref(buf));
    c->q_bytes += buf->len;
    if (!c->send) conn_mark_dirty(c);
    return 0;
}

enum rh_listener_kind rh_conn_listener(const struct rh_conn *c)
{
    return (enum rh_listener_kind)c->listener;
}

int64_t rh_conn_peer_uid(const struct rh_conn *c)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    return cred.uid;
}

void rh_conn_peer_name(const struct rh_conn *c, char *out, size_t cap)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    char ip[INET6_ADDRSTRLEN];
    out[0] = '\0';
    if (getpeername(c->fd, (struct sockaddr *)&addr, &len) != 0) return;
    if (addr.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&addr;
        if (inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)))
            snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
    } else if (addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&addr;
        if (inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)))
            snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
}

uint32_t rh_conn_queued_bytes(const struct rh_conn *c)
{
    return c->q_bytes;
}

uint32_t rh_conn_drop_tagged(struct rh_conn *c, uint32_t tag)
{
    RH_ASSERT_OWNED(c);
    uint32_t first = c->send ? (uint32_t)c->send->msg.msg_iovlen : c->q_head_sent ? 1 : 0;
    uint32_t kept = first, dropped = 0, mask = c->q.cap - 1;
    for (uint32_t i = first; i < c->q.count; i++) {
        struct rh_buf *buf = rh_fifo_at(&c->q, i);
        if (buf->tag == tag) {
            dropped += buf->len;
            rh_buf_unref(buf);
            c->shard->dropped_frames++;
            continue;
        }
        c->q.items[(c->q.head + kept++) & mask] = buf;
    }
    c->q.count = kept;
    c->q_bytes -= dropped;
    return dropped;
}

uint32_t rh_conn_drop_queued(struct rh_conn *c, uint32_t bytes)
{
    RH_ASSERT_OWNED(c);
    /* Not what a send in flight points at, nor a buffer partly sent. */
    uint32_t first = c->send ? (uint32_t)c->send->msg.msg_iovlen : c->q_head_sent ? 1 : 0;
    uint32_t dropped = 0, n = 0;
    while (first + n < c->q.count && dropped < bytes) {
        struct rh_buf *buf = rh_fifo_at(&c->q, first + n);
        dropped += buf->len;
        rh_buf_unref(buf);
        n++;
    }
    rh_fifo_remove(&c->q, first, n);
    c->q_bytes -= dropped;
    c->shard->dropped_frames += n;
    return dropped;
}

int rh_conn_send_copy(struct rh_conn *c, const void *data, uint32_t len)
{
    if (c->state != RH_CONN_OPEN) return -EPIPE;
    struct rh_buf *buf = rh_buf_copy(data, len);
    int err = rh_conn_send(c, buf);
    rh_buf_unref(buf);
    return err;
}

void rh_conn_close(struct rh_conn *c, enum rh_close_how how)
{
    RH_ASSERT_OWNED(c);
    if (!conn_is_live(c)) return;
    if (how == RH_CLOSE_NOW || c->state == RH_CONN_CONNECTING) {
        conn_close_now(c);
        return;
    }
    if (c->state != RH_CONN_OPEN) return; /* already draining or lingering */
    c->state = RH_CONN_DRAINING;
    c->shard->rt->handler->conn_close(c);
    if (!c->q.count && !c->send) conn_linger(c);
}

static struct rh_conn *conn_at(struct rh_shard *s, uint32_t slot)
{
    return &s->chunks[slot >> CONN_CHUNK_SHIFT][slot & (CONN_CHUNK_SIZE - 1)];
}

static struct rh_conn *conn_alloc(struct rh_shard *s)
{
    uint32_t slot;
    if (s->free_count) {
        slot = s->free_slots[--s->free_count];
    } else {
        if (s->slot_count == s->chunk_count * CONN_CHUNK_SIZE) {
            s->chunks = rh_realloc(s->chunks, (s->chunk_count + 1) * sizeof(*s->chunks));
            s->chunks[s->chunk_count++] = rh_calloc(CONN_CHUNK_SIZE, sizeof(struct rh_conn));
            s->free_slots = rh_realloc(s->free_slots,
                                       s->chunk_count * CONN_CHUNK_SIZE * sizeof(*s->free_slots));
        }
        slot = s->slot_count++;
        RH_ASSERT(slot < (1u << RH_CONN_ID_SLOT_BITS));
    }
    struct rh_conn *c = conn_at(s, slot);
    uint32_t gen = c->gen;
    memset(c, 0, sizeof(*c));
    c->shard = s;
    c->slot = slot;
    c->gen = gen;
    c->fd = -1;
    rh_list_init(&c->link);
    rh_list_init(&c->dirty_link);
    rh_list_init(&c->aux_link);
    return c;
}

/* A connection for socket @fd (accepted or adopted), open and reading; NULL (the socket
 * closed) when the shard is stopping or full. */
static struct rh_conn *conn_setup(struct rh_shard *s, int fd)
{
    if (s->stopping ||
        atomic_load_explicit(&s->stats.conns_live, memory_order_relaxed) >= s->conns_max) {
        close(fd);
        rh_stat_add(&s->stats.conns_rejected, 1);
        if (!s->stopping)
            rh_log_limited(RH_LOG_WARN, "conn",
                           "connection refused: this shard holds its limit of %u connections "
                           "(--max-conns over %u shards)",
                           s->conns_max, s->rt->shard_count);
        return NULL;
    }
    struct rh_conn *c = conn_alloc(s);
    c->fd = fd;
    conn_register(s, c);
    conn_open_socket(c);
    return c;
}

/* Gives @c (just allocated) its id and counts it among the shard's connections. */
static void conn_register(struct rh_shard *s, struct rh_conn *c)
{
    c->id = ((uint64_t)s->rt->cfg->node_id
             << (RH_CONN_ID_GEN_BITS + RH_CONN_ID_SLOT_BITS + RH_CONN_ID_SHARD_BITS)) |
            ((uint64_t)s->idx << (RH_CONN_ID_GEN_BITS + RH_CONN_ID_SLOT_BITS)) |
            ((uint64_t)c->slot << RH_CONN_ID_GEN_BITS) | c->gen;
    rh_list_push_back(&s->conns, &c->link);
    rh_stat_add(&s->stats.conns_live, 1);
}

/* @c's socket is connected: tune it, register it and start reading. */
static void conn_open_socket(struct rh_conn *c)
{
    struct rh_shard *s = c->shard;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A fixed kernel send buffer (the kernel doubles it) instead of autotuning up to
     * tcp_wmem's maximum: what a stalled reader holds in the kernel stays small, and ringhub's
     * own send-queue cap is what decides. */
    int sndbuf = (int)s->rt->cfg->socket_send_buffer;
    if (sndbuf && c->listener != RH_LISTENER_OUTBOUND)
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    c->fixed = c->slot < s->fixed_files &&
               io_uring_register_files_update(&s->ring, c->slot, &c->fd, 1) == 1;
    c->state = RH_CONN_OPEN;
    if (!s->caps.buf_ring) c->recv_buf = rh_alloc(s->rt->cfg->recv_buf_size);
    conn_arm_recv(c);
}

struct rh_conn *rh_conn_connect(struct rh_shard *s, const struct sockaddr *addr, socklen_t addr_len,
                                void *app)
{
    RH_ASSERT(addr_len <= sizeof(struct sockaddr_storage));
    if (s->stopping) {
        errno = ESHUTDOWN;
        return NULL;
    }
    if (atomic_load_explicit(&s->stats.conns_live, memory_order_relaxed) >= s->conns_max) {
        errno = EMFILE;
        return NULL;
    }
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return NULL;
    struct rh_conn *c = conn_alloc(s);
    c->fd = fd;
    c->listener = RH_LISTENER_OUTBOUND;
    c->app = app;
    c->state = RH_CONN_CONNECTING;
    conn_register(s, c);
    /* The kernel reads the address when it takes the SQE, at the end of this loop turn. */
    c->connect_to = rh_alloc(sizeof(*c->connect_to));
    memcpy(c->connect_to, addr, addr_len);
    struct io_uring_sqe *sqe = rh_uring_get_sqe(&s->ring);
    io_uring_prep_connect(sqe, fd, (const struct sockaddr *)c->connect_to, addr_len);
    io_uring_sqe_set_data64(sqe, rh_ud_make(RH_OP_CONNECT, c->gen, c->slot));
    conn_op_started(c);
    return c;
}

int rh_conn_connect_error(const struct rh_conn *c)
{
    return c->connect_error;
}

static void conn_connect_done(struct rh_conn *c, int res)
{
    if (c->state != RH_CONN_CONNECTING) { /* closed meanwhile: this was the last operation */
        conn_op_finished(c);
        return;
    }
    rh_free(c->connect_to);
    c->connect_to = NULL;
    if (res == 0) {
        conn_op_finished(c);
        conn_open_socket(c);
        c->shard->rt->handler->conn_open(c);
        return;
    }
    c->connect_error = (int16_t)(res < 0 ? res : -ECONNABORTED);
    conn_close_now(c);
    conn_op_finished(c);
}

/* The file an SQE names for @c, and its flag: the registered index when there is one. */
static int conn_sqe_fd(const struct rh_conn *c)
{
    return c->fixed ? (int)c->slot : c->fd;
}

static void conn_sqe_file(const struct rh_conn *c, struct io_uring_sqe *sqe)
{
    if (c->fixed) sqe->flags |= IOSQE_FIXED_FILE;
}

/* Takes @c's socket out of the file table (before it is closed or moves). */
static void conn_unfix(struct rh_conn *c)
{
    if (!c->fixed) return;
    int none = -1;
    io_uring_register_files_update(&c->shard->ring, c->slot, &none, 1);
    c->fixed = false;
}

static void conn_arm_recv(struct rh_conn *c)
{
    struct rh_shard *s = c->shard;
    struct io_uring_sqe *sqe = rh_uring_get_sqe(&s->ring);
    if (s->recv_multishot) {
        io_uring_prep_recv_multishot(sqe, conn_sqe_fd(c), NULL, 0, 0);
    } else if (s->caps.buf_ring) {
        io_uring_prep_recv(sqe, conn_sqe_fd(c), NULL, s->bufs.size, 0);
    } else {
        io_uring_prep_recv(sqe, conn_sqe_fd(c), c->recv_buf, s->rt->cfg->recv_buf_size, 0);
    }
    conn_sqe_file(c, sqe);
    if (s->caps.buf_ring) {
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = s->bufs.bgid;
    }
    io_uring_sqe_set_data64(sqe, rh_ud_make(RH_OP_RECV, c->gen, c->slot));
    c->recv_armed = true;
    conn_op_started(c);
}

static void conn_recv_done(struct rh_shard *s, struct rh_conn *c, const struct io_uring_cqe *cqe)
{
    int res = cqe->res;
    if (res > 0) {
        rh_stat_add(&s->stats.bytes_in, (uint64_t)res);
        if (cqe->flags & IORING_CQE_F_BUFFER) {
            uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
            conn_input(c, rh_uring_bufs_data(&s->bufs, bid), (uint32_t)res);
            rh_uring_bufs_recycle(&s->bufs, bid);
        } else {
            conn_input(c, c->recv_buf, (uint32_t)res);
        }
    }
    if (cqe->flags & IORING_CQE_F_MORE) return;

    c->recv_armed = false;
    conn_op_finished(c);
    if (!conn_is_reading(c)) return;
    if (res > 0 || res == -EINTR || res == -EAGAIN) {
        conn_arm_recv(c);
    } else if (res == -ENOBUFS) {
        /* The shard's buffers ran out; buffers are recycled as input is handled, so re-arm
         * once this batch of completions has returned some. */
        rh_stat_add(&s->stats.recv_enobufs, 1);
        c->starved = true;
        rh_list_push_back(&s->starved, &c->aux_link);
    } else if (res == -EINVAL && s->recv_multishot) {
        rh_log_warn("conn", "multishot recv refused by the kernel; using single-shot recv");
        s->recv_multishot = false;
        conn_arm_recv(c);
    } else {
        if (res < 0 && res != -ECONNRESET)
            rh_log_limited(RH_LOG_INFO, "conn", "recv on connection %llx failed: %s",
                           (unsigned long long)c->id, strerror(-res));
        conn_close_now(c); /* 0: the peer closed; < 0: the connection failed */
    }
}

static void conn_input(struct rh_conn *c, const uint8_t *data, uint32_t len)
{
    if (c->state == RH_CONN_HANDOFF) {
        conn_keep_input(c, data, len); /* for the shard it moves to */
        return;
    }
    if (c->state != RH_CONN_OPEN) return;
    const struct rh_conn_handler *h = c->shard->rt->handler;

    if (!c->partial_len) {
        ssize_t used = h->conn_recv(c, data, len);
        if (used < 0) {
            conn_close_now(c);
        } else if ((uint32_t)used < len &&
                   (c->state == RH_CONN_OPEN || c->state == RH_CONN_HANDOFF)) {
            conn_keep_input(c, data + used, len - (uint32_t)used);
        }
        return;
    }

    conn_keep_input(c, data, len);
    if (c->state != RH_CONN_OPEN) return;
    ssize_t used = h->conn_recv(c, c->partial, c->partial_len);
    if (used < 0) {
        conn_close_now(c);
        return;
    }
    c->partial_len -= (uint32_t)used;
    if (!c->partial_len) {
        /* An idle connection holds no input memory. */
        rh_free(c->partial);
        c->partial = NULL;
        c->partial_cap = 0;
    } else {
        memmove(c->partial, c->partial + used, c->partial_len);
    }
}

static void conn_keep_input(struct rh_conn *c, const uint8_t *data, uint32_t len)
{
    uint32_t need = c->partial_len + len;
    if (need > RH_CONN_PARTIAL_MAX) {
        rh_log_limited(RH_LOG_WARN, "conn", "connection %llx closed: %u bytes of unconsumed input",
                       (unsigned long long)c->id, need);
        conn_close_now(c);
        return;
    }
    if (need > c->partial_cap) {
        uint32_t cap = c->partial_cap ? c->partial_cap : 512;
        while (cap < need)
            cap *= 2;
        c->partial = rh_realloc(c->partial, cap);
        c->partial_cap = cap;
    }
    memcpy(c->partial + c->partial_len, data, len);
    c->partial_len = need;
}

static void conn_start_send(struct rh_conn *c)
{
    struct rh_shard *s = c->shard;
    struct rh_send_op *op = s->free_send_ops;
    if (op)
        s->free_send_ops = op->next_free;
    else
        op = rh_alloc(sizeof(*op));

    uint32_t n = c->q.count < RH_SEND_IOV_MAX ? c->q.count : RH_SEND_IOV_MAX;
    for (uint32_t i = 0; i < n; i++) {
        struct rh_buf *buf = rh_fifo_at(&c->q, i);
        uint32_t skip = i == 0 ? c->q_head_sent : 0;
        op->iov[i].iov_base = buf->data + skip;
        op->iov[i].iov_len = buf->len - skip;
    }
    memset(&op->msg, 0, sizeof(op->msg));
    op->msg.msg_iov = op->iov;
    op->msg.msg_iovlen = n;

    struct io_uring_sqe *sqe = rh_uring_get_sqe(&s->ring);
    io_uring_prep_sendmsg(sqe, conn_sqe_fd(c), &op->msg, MSG_NOSIGNAL);
    conn_sqe_file(c, sqe);
    io_uring_sqe_set_data64(sqe, rh_ud_make(RH_OP_SEND, c->gen, c->slot));
    c->send = op;
    conn_op_started(c);
}

static void conn_send_done(struct rh_shard *s, struct rh_conn *c, int res)
{
    struct rh_send_op *op = c->send;
    RH_ASSERT(op);
    c->send = NULL;
    op->next_free = s->free_send_ops;
    s->free_send_ops = op;
    conn_op_finished(c);

    if (c->state != RH_CONN_OPEN && c->state != RH_CONN_DRAINING && c->state != RH_CONN_HANDOFF)
        return;
    if (res == -EINTR || res == -EAGAIN) {
        conn_mark_dirty(c);
        return;
    }
    if (res < 0) {
        if (res != -EPIPE && res != -ECONNRESET)
            rh_log_limited(RH_LOG_INFO, "conn", "send on connection %llx failed: %s",
                           (unsigned long long)c->id, strerror(-res));
        conn_close_now(c);
        return;
    }
    rh_stat_add(&s->stats.bytes_out, (uint64_t)res);
    conn_consume_sent(c, (uint32_t)res);
    if (c->q.count)
        conn_mark_dirty(c); /* sent with whatever else is queued by the end of this turn */
    else if (c->state == RH_CONN_DRAINING)
        conn_linger(c);
    else if (c->state == RH_CONN_HANDOFF)
        conn_handoff_maybe(c);
}

static void conn_consume_sent(struct rh_conn *c, uint32_t sent)
{
    int64_t now_ns = 0;
    while (sent) {
        RH_ASSERT(c->q.count > 0);
        struct rh_buf *buf = rh_fifo_at(&c->q, 0);
        uint32_t left = buf->len - c->q_head_sent;
        if (sent < left) {
            c->q_head_sent += sent;
            c->q_bytes -= sent;
            return;
        }
        c->q_bytes -= left;
        sent -= left;
        if (buf->stamp_ns) {
            if (!now_ns) now_ns = rh_clock_now_ns();
            latency_note(c->shard, now_ns - buf->stamp_ns);
        }
        rh_buf_unref(buf);
        rh_fifo_drop(&c->q, 1);
        c->q_head_sent = 0;
    }
}

static void conn_mark_dirty(struct rh_conn *c)
{
    if (c->dirty) return;
    c->dirty = true;
    rh_list_push_back(&c->shard->dirty, &c->dirty_link);
}

static void conn_close_now(struct rh_conn *c)
{
    struct rh_shard *s = c->shard;
    bool was_open = c->state == RH_CONN_OPEN;
    RH_ASSERT(conn_is_live(c));

    if (c->state == RH_CONN_LINGERING) rh_list_unlink(&c->dirty_link);
    if (c->state == RH_CONN_HANDOFF) rh_blob_unref(c->handoff);
    if (c->state == RH_CONN_CONNECTING) {
        was_open = true; /* its handler hears of the end, as of any connection's */
        if (c->connect_to) {
            /* Closed by its owner with the connect in flight, which shutdown(2) does not
             * end; a cancel does, and its completion is the last operation. */
            rh_free(c->connect_to);
            c->connect_to = NULL;
            c->connect_error = -ECANCELED;
            struct io_uring_sqe *sqe = rh_uring_get_sqe(&s->ring);
            io_uring_prep_cancel64(sqe, rh_ud_make(RH_OP_CONNECT, c->gen, c->slot), 0);
            io_uring_sqe_set_data64(sqe, rh_ud_make(RH_OP_CANCEL, 0, 0));
        }
    }
    c->state = RH_CONN_CLOSING;
    if (was_open) s->rt->handler->conn_close(c);
    if (c->dirty) {
        rh_list_unlink(&c->dirty_link);
        c->dirty = false;
    }
    if (c->starved) {
        rh_list_unlink(&c->aux_link);
        c->starved = false;
    }
    /* close(2) alone would not end operations in flight (they pin the file); shutdown
     * completes the receive with EOF and fails a blocked send, so their last CQEs come. */
    shutdown(c->fd, SHUT_RDWR);
    rh_stat_sub(&s->stats.conns_live, 1);
    rh_stat_add(&s->stats.conns_closed, 1);
    if (!c->inflight) {
        c->state = RH_CONN_REAPING;
        rh_list_push_back(&s->reap, &c->aux_link);
    }
}

static void conn_op_started(struct rh_conn *c)
{
    c->inflight++;
    rh_stat_add(&c->shard->stats.conn_ops_inflight, 1);
}

static void conn_op_finished(struct rh_conn *c)
{
    RH_ASSERT(c->inflight > 0);
    c->inflight--;
    rh_stat_sub(&c->shard->stats.conn_ops_inflight, 1);
    if (!c->inflight && c->state == RH_CONN_CLOSING) {
        c->state = RH_CONN_REAPING;
        rh_list_push_back(&c->shard->reap, &c->aux_link);
    } else if (!c->inflight && c->state == RH_CONN_HANDOFF) {
        conn_handoff_maybe(c);
    }
}

static void conn_free(struct rh_shard *s, struct rh_conn *c)
{
    RH_ASSERT(c->state == RH_CONN_REAPING);
    RH_ASSERT(!c->inflight && !c->send);
    rh_list_unlink(&c->aux_link);
    rh_list_unlink(&c->link);
    conn_unfix(c);
    if (c->fd != -1) close(c->fd); /* -1: the socket moved to another shard */
    if (c->ip_slot)
        atomic_fetch_sub_explicit(&s->rt->ip_conns[c->ip_slot - 1], 1, memory_order_relaxed);
    c->ip_slot = 0;
    struct rh_buf *queued;
    while ((queued = rh_fifo_pop(&c->q)))
        rh_buf_unref(queued);
    rh_fifo_free(&c->q);
    rh_free(c->partial);
    rh_free(c->recv_buf);
    c->partial = NULL;
    c->recv_buf = NULL;
    c->app = NULL;
    c->listener = RH_LISTENER_MAIN;
    c->connect_error = 0;
    c->fd = -1;
    c->state = RH_CONN_FREE;
    c->gen = (c->gen + 1) & ((1u << RH_CONN_ID_GEN_BITS) - 1);
    s->free_slots[s->free_count++] = c->slot;
}

/* Not closing yet: the connection still holds its socket. */
static bool conn_is_live(const struct rh_conn *c)
{
    return conn_is_reading(c) || c->state == RH_CONN_HANDOFF || c->state == RH_CONN_CONNECTING;
}

/* Once a moving connection has nothing queued and nothing in flight, its socket, the
 * handler's data and the input kept meanwhile go to the new shard in one blob. */
static void conn_handoff_maybe(struct rh_conn *c)
{
    if (c->state != RH_CONN_HANDOFF || c->inflight || c->q.count || c->send) return;
    struct rh_shard *s = c->shard;
    struct rh_blob *app = c->handoff;
    uint32_t app_len = app->len;
    struct rh_blob *b =
        rh_blob_new(RH_BLOB_ADOPT, 1, NULL, (uint32_t)sizeof(app_len) + app_len + c->partial_len);
    memcpy(b->data, &app_len, sizeof(app_len));
    memcpy(b->data + sizeof(app_len), app->data, app_len);
    if (c->partial_len) memcpy(b->data + sizeof(app_len) + app_len, c->partial, c->partial_len);
    rh_blob_unref(app);
    conn_unfix(c);
    b->arg = (uint64_t)(uint32_t)c->fd | (uint64_t)c->ip_slot << 32;
    c->fd = -1;
    c->ip_slot = 0; /* counted where it goes */
    rh_shard_post(s, c->handoff_dst, b);

    rh_stat_sub(&s->stats.conns_live, 1);
    rh_stat_add(&s->stats.conns_moved, 1);
    c->state = RH_CONN_REAPING;
    rh_list_push_back(&s->reap, &c->aux_link);
}

static bool conn_is_reading(const struct rh_conn *c)
{
    return c->state == RH_CONN_OPEN || c->state == RH_CONN_DRAINING ||
           c->state == RH_CONN_LINGERING;
}

static void conn_linger(struct rh_conn *c)
{
    struct rh_shard *s = c->shard;
    RH_ASSERT(c->state == RH_CONN_DRAINING);
    RH_ASSERT(!c->dirty && !c->q.count && !c->send);
    if (!c->recv_armed && !c->starved) {
        conn_close_now(c); /* nothing would ever tell us the peer is done */
        return;
    }
    c->state = RH_CONN_LINGERING;
    /* FIN after the reply; the peer reads it, then closes, and our receive sees EOF. */
    shutdown(c->fd, SHUT_WR);
    c->linger_until_ms = rh_clock_now_ms() + RH_CONN_LINGER_MS;
    rh_list_push_back(&s->lingering, &c->dirty_link);
    if (!rh_timer_is_armed(&s->linger_done))
        rh_timer_schedule(&s->wheel, &s->linger_done, c->linger_until_ms);
}

static void linger_expired(struct rh_timer *t)
{
    struct rh_shard *s = (struct rh_shard *)((char *)t - offsetof(struct rh_shard, linger_done));
    int64_t now_ms = rh_clock_now_ms();
    while (!rh_list_is_empty(&s->lingering)) {
        struct rh_conn *c = rh_list_entry(s->lingering.next, struct rh_conn, dirty_link);
        if (c->linger_until_ms > now_ms) {
            rh_timer_schedule(&s->wheel, t, c->linger_until_ms);
            return;
        }
        conn_close_now(c); /* unlinks it */
    }
}

/* --max-conns-per-ip: counts the new connection @fd against its client's address, or refuses
 * it (a 503 it may read, then the close) when the address has as many as allowed. */
static bool conn_count_address(struct rh_shard *s, int fd, uint32_t *ip_slot)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    if (getpeername(fd, (struct sockaddr *)&addr, &len) != 0) return true; /* uncounted */
    const void *bytes = &((struct sockaddr_in *)&addr)->sin_addr;
    size_t bytes_len = 4;
    if (addr.ss_family == AF_INET6) {
        bytes = &((struct sockaddr_in6 *)&addr)->sin6_addr;
        bytes_len = 16;
    }
    uint32_t slot = (uint32_t)(rh_hash(bytes, bytes_len) & (RH_IP_SLOTS - 1));
    _Atomic uint32_t *count = &s->rt->ip_conns[slot];
    if (atomic_fetch_add_explicit(count, 1, memory_order_relaxed) >= s->rt->cfg->max_conns_per_ip) {
        atomic_fetch_sub_explicit(count, 1, memory_order_relaxed);
        static const char refusal[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain"
                                      "\r\nContent-Length: 43\r\nConnection: close\r\n\r\n"
                                      "too many connections from this address now\n";
        ssize_t ignored = send(fd, refusal, sizeof(refusal) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)ignored;
        close(fd);
        rh_stat_add(&s->stats.conns_rejected, 1);
        rh_log_limited(RH_LOG_WARN, "conn",
                       "connection refused: its address has %u connections (--max-conns-per-ip)",
                       s->rt->cfg->max_conns_per_ip);
        return false;
    }
    *ip_slot = slot + 1;
    return true;
}

/* Bucket i: up to 2^(i+16) ns (shard.h); a clock step backwards counts as 0. */
static void latency_note(struct rh_shard *s, int64_t ns)
{
    uint64_t v = ns > 0 ? (uint64_t)ns : 0;
    uint32_t i = v >> 16 ? (uint32_t)(64 - __builtin_clzll(v >> 16)) : 0;
    if (v && !(v & (v - 1)) && i) i--; /* a power of two belongs to the bucket it bounds */
    if (i >= RH_LATENCY_BUCKETS) i = RH_LATENCY_BUCKETS - 1;
    s->latency[i]++;
    s->latency_count++;
    s->latency_sum_ns += v;
}
