/*
 * shards/shard.c - one shard's thread: its ring, its loop, and messages between shards.
 *
 * Each turn of the loop drains the inbound rings (a bounded budget per ring), flushes blobs
 * posted this turn and wakes the shards that got them, starts the sends of connections that
 * queued data, then submits everything and waits for completions in one io_uring_enter.
 *
 * Wake-ups (see the io_uring notes, section 3): a shard about to block sets `sleeping`, fences
 * and looks at its inbound rings once more; a producer pushes, fences and wakes the consumer
 * only if it saw `sleeping` set and was the one to clear it. Either the consumer sees the
 * item, or the producer sees the flag: no wake-up is lost, and there is at most one per sleep.
 * The wake-up is an IORING_OP_MSG_RING from the producer's own ring, or an eventfd write on
 * the oldest path and when MSG_RING fails.
 */
#include "shards/shard_internal.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/clock.h"
#include "core/log.h"

#define INBOUND_BUDGET     256  /* blobs taken from one ring per turn */
#define WAIT_SAFETY_NET_MS 1000 /* bounded sleep even if a wake-up were lost (liburing #839) */
#define ACCEPT_PAUSE_MS    100  /* after EMFILE/ENFILE */
#define RING_FULL_RETRY_MS 1
#define TIMER_BUDGET       1024       /* timer callbacks per turn */
#define LOOP_WINDOW_NS     1000000000 /* loop utilisation is measured over this */

static _Thread_local struct rh_shard *current_shard;

static int shard_setup(struct rh_shard *s);
static void shard_teardown(struct rh_shard *s);
static void shard_loop(struct rh_shard *s);
static bool shard_is_done(struct rh_shard *s);
static void shard_begin_stop(struct rh_shard *s);
static void stop_step(struct rh_shard *s);
static void arm_accept(struct rh_shard *s, uint32_t i);
static void arm_accepts(struct rh_shard *s);
static bool is_accepting(const struct rh_shard *s);
static void loop_time_note(struct rh_shard *s, int64_t now_ns, int64_t idle_ns);
static void accept_pause_done(struct rh_timer *t);
static void stop_grace_done(struct rh_timer *t);
static void arm_event_read(struct rh_shard *s);
static void handle_cqe(struct rh_shard *s, const struct io_uring_cqe *cqe);
static void accept_done(struct rh_shard *s, const struct io_uring_cqe *cqe);
static void drain_inbound(struct rh_shard *s);
static void deliver(struct rh_shard *s, struct rh_blob *b);
static void flush_outbound(struct rh_shard *s);
static void shard_wake(struct rh_shard *dst, struct rh_shard *from);
static bool inbound_is_empty(struct rh_shard *s);
static int64_t wait_timeout_ms(struct rh_shard *s, int64_t now_ms);
static void outbox_flush(struct rh_fifo *o, struct rh_spsc *ring);
static void outbox_drop_all(struct rh_fifo *o);

void *rh_shard_main(void *arg)
{
    struct rh_shard *s = arg;
    struct rh_runtime *rt = s->rt;
    current_shard = s;
    rh_log_set_shard((int)s->idx);

    int err = shard_setup(s);
    if (err) atomic_store(&rt->start_failed, true);
    /* Every ring fd is published and every listener exists past this point. */
    pthread_barrier_wait(&rt->start_barrier);
    if (err || atomic_load(&rt->start_failed)) {
        if (!err) shard_teardown(s);
        return NULL;
    }

    if (rt->handler->shard_start) rt->handler->shard_start(s);
    arm_event_read(s);
    arm_accepts(s);
    shard_loop(s);
    if (rt->handler->shard_stop) rt->handler->shard_stop(s);
    shard_teardown(s);
    return NULL;
}

/* Wakes @dst if it sleeps, after @from pushed to its ring this turn. */
static void shard_wake(struct rh_shard *dst, struct rh_shard *from)
{
    /* Pairs with the fence in shard_loop before it sleeps: either it sees our pushes, or we
     * see its flag. The exchange makes exactly one producer send the wake-up. */
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&dst->sleeping, memory_order_relaxed) ||
        !atomic_exchange_explicit(&dst->sleeping, false, memory_order_relaxed))
        return;

    if (from->caps.msg_ring) {
        struct io_uring_sqe *sqe = rh_uring_get_sqe(&from->ring);
        io_uring_prep_msg_ring(sqe, dst->ring_fd, 0, rh_ud_make(RH_OP_WAKE, 0, from->idx), 0);
        io_uring_sqe_set_data64(sqe, rh_ud_make(RH_OP_WAKE_SENT, 0, dst->idx));
        if (from->caps.cqe_skip) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    } else {
        eventfd_write(dst->event_fd, 1);
    }
    rh_stat_add(&from->stats.wakes_sent, 1);
}

struct rh_wheel *rh_shard_wheel(struct rh_shard *s)
{
    return &s->wheel;
}

struct rh_runtime *rh_shard_runtime(const struct rh_shard *s)
{
    return s->rt;
}

uint32_t rh_shard_idx(const struct rh_shard *s)
{
    return s->idx;
}

void rh_shard_report(struct rh_shard *s, struct rh_shard_report *out)
{
    RH_DEBUG_ASSERT(s == rh_shard_self());
    memset(out, 0, sizeof(*out));
    out->idx = s->idx;
    out->cpu = s->cpu;
#define GET(field) out->field = atomic_load_explicit(&s->stats.field, memory_order_relaxed)
    GET(conns_live);
    GET(conns_accepted);
    GET(conns_closed);
    GET(conns_rejected);
    GET(conns_moved);
    GET(bytes_in);
    GET(bytes_out);
    GET(blobs_in);
    GET(wakes_received);
    GET(ring_full);
    GET(recv_enobufs);
#undef GET
    struct rh_list *it;
    rh_list_for_each(it, &s->conns) {
        out->send_queue_bytes += rh_list_entry(it, struct rh_conn, link)->q_bytes;
    }
    for (uint32_t j = 0; j < s->rt->shard_count; j++)
        if (s->in[j]) out->ring_depth += rh_spsc_count(s->in[j]);
    out->loop_busy_ns = s->loop_time.busy_ns;
    out->loop_util_permille = s->loop_time.util_permille;
    rh_uring_caps_describe(&s->caps, out->io, sizeof(out->io));
    memcpy(out->latency, s->latency, sizeof(out->latency));
    out->latency_count = s->latency_count;
    out->latency_sum_ns = s->latency_sum_ns;
    out->dropped_frames = s->dropped_frames;
}

uint32_t rh_shard_count(const struct rh_shard *s)
{
    return s->rt->shard_count;
}

struct rh_shard *rh_shard_self(void)
{
    return current_shard;
}

void *rh_shard_app(const struct rh_shard *s)
{
    return s->app;
}

void rh_shard_set_app(struct rh_shard *s, void *app)
{
    s->app = app;
}

void rh_shard_post(struct rh_shard *s, uint32_t dst_idx, struct rh_blob *b)
{
    RH_DEBUG_ASSERT(s == rh_shard_self());
    RH_ASSERT(dst_idx < s->rt->shard_count);
    b->origin_shard = (uint16_t)s->idx;
    if (dst_idx == s->idx) {
        rh_fifo_push(&s->self_queue, b);
        return;
    }
    rh_fifo_push(&s->outbox[dst_idx], b);
    s->outbox_pending |= 1ull << dst_idx;
}

void rh_shard_post_all(struct rh_shard *s, struct rh_blob *b)
{
    RH_ASSERT(atomic_load_explicit(&b->refs, memory_order_relaxed) >= s->rt->shard_count);
    for (uint32_t i = 0; i < s->rt->shard_count; i++)
        rh_shard_post(s, i, b);
}

void rh_shard_foreach_conn(struct rh_shard *s, void (*fn)(struct rh_conn *c, void *ctx), void *ctx)
{
    struct rh_list *node;
    /* Closing never unlinks from s->conns (reaping does, later), so plain iteration is safe. */
    rh_list_for_each(node, &s->conns) {
        struct rh_conn *c = rh_list_entry(node, struct rh_conn, link);
        if (c->state == RH_CONN_OPEN) fn(c, ctx);
    }
}

static int shard_setup(struct rh_shard *s)
{
    struct rh_runtime *rt = s->rt;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(s->cpu, &set);
    int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (err) rh_log_warn("shard", "cannot pin to CPU %d: %s", s->cpu, strerror(err));

    s->caps = rt->caps;
    err = rh_uring_setup(&s->ring, rt->cfg->ring_entries, &s->caps);
    if (err) {
        rh_log_error("shard", "io_uring set-up failed: %s (%s)", strerror(-err),
                     rh_uring_error_hint(err));
        return err;
    }
    s->ring_fd = s->ring.ring_fd;
    if (s->caps.buf_ring) {
        err = rh_uring_bufs_init(&s->ring, &s->bufs, 0, rt->cfg->recv_buf_count,
                                 rt->cfg->recv_buf_size);
        if (err) {
            rh_log_error("shard", "cannot register %u receive buffers of %u bytes: %s",
                         rt->cfg->recv_buf_count, rt->cfg->recv_buf_size, strerror(-err));
            io_uring_queue_exit(&s->ring);
            s->ring_fd = -1;
            return err;
        }
    }
    rh_wheel_init(&s->wheel, rh_clock_now_ms());
    rh_timer_init(&s->accept_pause, accept_pause_done);
    rh_timer_init(&s->stop_grace, stop_grace_done);
    for (uint32_t i = 0; i < s->listener_count; i++)
        s->listeners[i].multishot = s->caps.multishot_accept;
    s->loop_time.window_start_ns = rh_clock_now_ns();
    s->recv_multishot = s->caps.multishot_recv;
    rh_conn_table_init(s);
    return 0;
}

static void shard_teardown(struct rh_shard *s)
{
    /* Blobs that never reached a ring: their receivers are stopping too. */
    for (uint32_t j = 0; j < s->rt->shard_count; j++)
        outbox_drop_all(&s->outbox[j]);
    outbox_drop_all(&s->self_queue);
    rh_conn_table_free(s);
    rh_timer_cancel(&s->accept_pause);
    rh_timer_cancel(&s->stop_grace);
    rh_wheel_destroy(&s->wheel);
    rh_uring_bufs_destroy(&s->ring, &s->bufs);
    /* The ring itself stays open until every shard has stopped: another shard may still
     * send it a wake-up, and its fd must not be reused for something else meanwhile.
     * rh_runtime_join closes it. */
}

static void shard_loop(struct rh_shard *s)
{
    struct rh_runtime *rt = s->rt;
    for (;;) {
        if (!s->stopping && atomic_load_explicit(&rt->stop_requested, memory_order_relaxed))
            shard_begin_stop(s);
        int64_t now_ms = rh_clock_now_ms();
        rh_wheel_run(&s->wheel, now_ms, TIMER_BUDGET);
        drain_inbound(s);
        flush_outbound(s);
        if (s->stopping && !s->conns_closing) stop_step(s);
        rh_conn_flush_dirty(s);
        rh_conn_reap(s);
        if (shard_is_done(s)) break;

        int64_t timeout_ms = wait_timeout_ms(s, now_ms);
        int err;
        if (timeout_ms > 0) {
            atomic_store_explicit(&s->sleeping, true, memory_order_relaxed);
            /* Pairs with the fence in shard_wake. */
            atomic_thread_fence(memory_order_seq_cst);
            if (!inbound_is_empty(s)) timeout_ms = 0;
        }
        int64_t wait_start_ns = rh_clock_now_ns(), idle_ns = 0;
        if (timeout_ms > 0) {
            struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                           .tv_nsec = (timeout_ms % 1000) * 1000000};
            struct io_uring_cqe *cqe;
            err = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, &ts, NULL);
            idle_ns = rh_clock_now_ns() - wait_start_ns;
        } else {
            err = io_uring_submit_and_get_events(&s->ring);
        }
        loop_time_note(s, wait_start_ns + idle_ns, idle_ns);
        atomic_store_explicit(&s->sleeping, false, memory_order_relaxed);
        if (err < 0 && err != -ETIME && err != -EINTR && err != -EAGAIN && err != -EBUSY)
            rh_log_limited(RH_LOG_WARN, "shard", "io_uring_enter: %s", strerror(-err));

        unsigned head, seen = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&s->ring, head, cqe)
        {
            handle_cqe(s, cqe);
            seen++;
        }
        io_uring_cq_advance(&s->ring, seen);
        rh_uring_bufs_commit(&s->bufs);
        rh_conn_rearm_starved(s);
    }
    /* Nothing of ours is in flight now but the eventfd read, which ends with the ring. */
    io_uring_submit(&s->ring);
}

static bool shard_is_done(struct rh_shard *s)
{
    return s->conns_closing && !is_accepting(s) && rh_list_is_empty(&s->conns);
}

static bool is_accepting(const struct rh_shard *s)
{
    for (uint32_t i = 0; i < s->listener_count; i++)
        if (s->listeners[i].armed) return true;
    return false;
}

/* A wait of @idle_ns ended at @now_ns: the rest of the window was busy. */
static void loop_time_note(struct rh_shard *s, int64_t now_ns, int64_t idle_ns)
{
    struct rh_loop_time *t = &s->loop_time;
    t->window_idle_ns += idle_ns;
    int64_t span = now_ns - t->window_start_ns;
    if (span < LOOP_WINDOW_NS) return;
    int64_t busy = span > t->window_idle_ns ? span - t->window_idle_ns : 0;
    t->busy_ns += (uint64_t)busy;
    t->util_permille = (uint32_t)(busy * 1000 / span);
    t->window_start_ns = now_ns;
    t->window_idle_ns = 0;
}

static void shard_begin_stop(struct rh_shard *s)
{
    s->stopping = true;
    uint32_t grace_ms = atomic_load_explicit(&s->rt->grace_ms, memory_order_relaxed);
    rh_timer_schedule(&s->wheel, &s->stop_grace, rh_clock_now_ms() + grace_ms);
    rh_timer_cancel(&s->accept_pause);
    for (uint32_t i = 0; i < s->listener_count; i++) {
        if (!s->listeners[i].armed) continue;
        struct io_uring_sqe *sqe = rh_uring_get_sqe(&s->ring);
        io_uring_prep_cancel64(sqe, rh_ud_make(RH_OP_ACCEPT, 0, i), 0);
        io_uring_sqe_set_data64(sqe, rh_ud_make(RH_OP_CANCEL, 0, 0));
    }
    if (s->rt->handler->shard_draining) s->rt->handler->shard_draining(s);
}

/* Connections close once what every shard's draining hook posted has arrived (a goodbye for a
 * request held on another shard, say): a shard announces when its blobs are all on the rings,
 * and when every shard has, it takes in what its rings hold and closes its connections. */
static void stop_step(struct rh_shard *s)
{
    struct rh_runtime *rt = s->rt;
    if (!s->drain_announced) {
        if (s->outbox_pending) return; /* a full ring: next turn (the grace timer bounds this) */
        s->drain_announced = true;
        uint32_t drained =
            atomic_fetch_add_explicit(&rt->shards_drained, 1, memory_order_acq_rel) + 1;
        if (drained == rt->shard_count)
            for (uint32_t i = 0; i < rt->shard_count; i++)
                if (i != s->idx) shard_wake(rt->shards[i], s);
    }
    if (atomic_load_explicit(&rt->shards_drained, memory_order_acquire) < rt->shard_count) return;
    drain_inbound(s);
    flush_outbound(s);
    s->conns_closing = true;
    rh_conn_close_all(s, RH_CLOSE_AFTER_FLUSH);
}

static void arm_accept(struct rh_shard *s, uint32_t i)
{
    struct rh_listener *l = &s->listeners[i];
    struct io_uring_sqe *sqe = rh_uring_get_sqe(&s->ring);
    if (l->multishot)
        io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    else
        io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, rh_ud_make(RH_OP_ACCEPT, 0, i));
    l->armed = true;
}

static void arm_accepts(struct rh_shard *s)
{
    for (uint32_t i = 0; i < s->listener_count; i++)
        if (!s->listeners[i].armed && s->listeners[i].fd != -1) arm_accept(s, i);
}

static void accept_pause_done(struct rh_timer *t)
{
    struct rh_shard *s = (struct rh_shard *)((char *)t - offsetof(struct rh_shard, accept_pause));
    arm_accepts(s);
}

static void stop_grace_done(struct rh_timer *t)
{
    struct rh_shard *s = (struct rh_shard *)((char *)t - offsetof(struct rh_shard, stop_grace));
    rh_log_warn("shard", "shutdown grace over: closing the connections still flushing");
    s->conns_closing = true;
    rh_conn_close_all(s, RH_CLOSE_NOW);
}

static void arm_event_read(struct rh_shard *s)
{
    struct io_uring_sqe *sqe = rh_uring_get_sqe(&s->ring);
    io_uring_prep_read(sqe, s->event_fd, &s->event_value, sizeof(s->event_value), 0);
    io_uring_sqe_set_data64(sqe, rh_ud_make(RH_OP_EVENTFD, 0, 0));
}

static void handle_cqe(struct rh_shard *s, const struct io_uring_cqe *cqe)
{
    if (cqe->user_data == LIBURING_UDATA_TIMEOUT) return; /* liburing's own wait timeout */
    switch (rh_ud_op(cqe->user_data)) {
    case RH_OP_ACCEPT:
        accept_done(s, cqe);
        break;
    case RH_OP_RECV:
    case RH_OP_SEND:
    case RH_OP_CONNECT:
        rh_conn_complete(s, cqe);
        break;
    case RH_OP_EVENTFD:
        rh_stat_add(&s->stats.wakes_received, 1);
        if (cqe->res < 0 && cqe->res != -EINTR)
            rh_log_warn("shard", "eventfd read: %s", strerror(-cqe->res));
        arm_event_read(s);
        break;
    case RH_OP_WAKE:
        rh_stat_add(&s->stats.wakes_received, 1);
        break;
    case RH_OP_WAKE_SENT:
        if (cqe->res < 0) {
            /* The target's CQ was full or the kernel refused: fall back to its eventfd. */
            rh_log_limited(RH_LOG_WARN, "shard", "MSG_RING wake-up failed: %s; using eventfd",
                           strerror(-cqe->res));
            eventfd_write(s->rt->shards[rh_ud_slot(cqe->user_data)]->event_fd, 1);
        }
        break;
    case RH_OP_CANCEL:
        break;
    default:
        rh_log_error("shard", "completion with unknown user_data %llx",
                     (unsigned long long)cqe->user_data);
        RH_DEBUG_ASSERT(!"unknown completion");
    }
}

static void accept_done(struct rh_shard *s, const struct io_uring_cqe *cqe)
{
    uint32_t i = rh_ud_slot(cqe->user_data);
    RH_ASSERT(i < s->listener_count);
    struct rh_listener *l = &s->listeners[i];
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (cqe->res >= 0) rh_conn_accepted(s, cqe->res, l->kind);
    if (more) return;

    l->armed = false;
    if (s->stopping) {
        /* New connections now fail at once instead of waiting in the backlog. */
        close(l->fd);
        l->fd = -1;
        return;
    }
    int res = cqe->res;
    if (res == -EINVAL && l->multishot) {
        rh_log_warn("shard", "multishot accept refused by the kernel; using single-shot accept");
        l->multishot = false;
    } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
        rh_log_limited(RH_LOG_WARN, "shard", "accept: %s; pausing accepts for %d ms",
                       strerror(-res), ACCEPT_PAUSE_MS);
        rh_timer_schedule(&s->wheel, &s->accept_pause, rh_clock_now_ms() + ACCEPT_PAUSE_MS);
        return;
    } else if (res < 0 && res != -EINTR && res != -ECONNABORTED && res != -EAGAIN) {
        rh_log_limited(RH_LOG_WARN, "shard", "accept: %s", strerror(-res));
    }
    arm_accept(s, i);
}

static void drain_inbound(struct rh_shard *s)
{
    struct rh_blob *batch[INBOUND_BUDGET];
    for (uint32_t j = 0; j < s->rt->shard_count; j++) {
        if (j == s->idx) continue;
        uint32_t n = rh_spsc_pop_n(s->in[j], (void **)batch, INBOUND_BUDGET);
        for (uint32_t i = 0; i < n; i++)
            deliver(s, batch[i]);
    }
    /* Blobs posted to ourselves, including those posted while delivering the ones above. */
    uint32_t budget = INBOUND_BUDGET;
    struct rh_blob *b;
    while (budget-- && (b = rh_fifo_pop(&s->self_queue)))
        deliver(s, b);
}

static void deliver(struct rh_shard *s, struct rh_blob *b)
{
    rh_stat_add(&s->stats.blobs_in, 1);
    if (b->kind == RH_BLOB_ADOPT)
        rh_conn_adopt(s, b);
    else if (s->rt->handler->blob)
        s->rt->handler->blob(s, b);
    rh_blob_unref(b);
}

void rh_shard_blob_discard(struct rh_blob *b)
{
    if (b->kind == RH_BLOB_ADOPT) close((int)b->arg);
    rh_blob_unref(b);
}

static void flush_outbound(struct rh_shard *s)
{
    uint64_t pending = s->outbox_pending;
    while (pending) {
        uint32_t j = (uint32_t)__builtin_ctzll(pending);
        pending &= pending - 1;
        struct rh_fifo *o = &s->outbox[j];
        uint32_t before = o->count;
        outbox_flush(o, s->out[j]);
        if (o->count) {
            /* The ring is full: the rest waits, in order, for a later turn. */
            rh_stat_add(&s->stats.ring_full, 1);
        } else {
            s->outbox_pending &= ~(1ull << j);
        }
        if (o->count < before) shard_wake(s->rt->shards[j], s);
    }
}

static bool inbound_is_empty(struct rh_shard *s)
{
    for (uint32_t j = 0; j < s->rt->shard_count; j++)
        if (j != s->idx && !rh_spsc_is_empty(s->in[j])) return false;
    return true;
}

static int64_t wait_timeout_ms(struct rh_shard *s, int64_t now_ms)
{
    if (s->self_queue.count || !rh_list_is_empty(&s->dirty) || !rh_list_is_empty(&s->reap))
        return 0;
    /* Outboxes still pending after the flush mean full rings: give their consumers a moment
     * instead of spinning on them (nothing wakes a producer when a ring drains). */
    int64_t timeout = s->outbox_pending ? RING_FULL_RETRY_MS : WAIT_SAFETY_NET_MS;
    int64_t next_timer_ms = rh_wheel_next_expiry_ms(&s->wheel);
    if (next_timer_ms - now_ms < timeout) timeout = next_timer_ms - now_ms;
    return timeout > 0 ? timeout : 0;
}

/* Pushes what fits, in order, in at most two batches (the outbox may wrap). */
static void outbox_flush(struct rh_fifo *o, struct rh_spsc *ring)
{
    while (o->count) {
        uint32_t run = rh_fifo_contiguous(o);
        uint32_t pushed = rh_spsc_push_n(ring, &o->items[o->head], run);
        rh_fifo_drop(o, pushed);
        if (pushed < run) return;
    }
}

static void outbox_drop_all(struct rh_fifo *o)
{
    struct rh_blob *b;
    while ((b = rh_fifo_pop(o)))
        rh_shard_blob_discard(b);
    rh_fifo_free(o);
}
