#pragma once
/*
 * core/uring.h - io_uring set-up for shard rings: start-up probing of setup flags, opcodes
 * and multishot receive, one capability record that every shard then follows, and the
 * provided-buffer ring that a shard's connections share for receives.
 *
 * rh_uring_probe() runs once, on the main thread, before shards start. It tries the best
 * setup flags first and falls back (SINGLE_ISSUER|DEFER_TASKRUN -> COOP_TASKRUN -> none),
 * probes opcodes, and tries a multishot receive from a registered buffer ring on a socket
 * pair. Each missing feature has a fallback; @oldest forces all of them (single-shot accept
 * and recv with per-connection buffers, eventfd wake-ups, no task-run flags) so the oldest
 * path stays tested on new kernels.
 */
#include <stdbool.h>
#include <stdint.h>

#include <liburing.h>

struct rh_uring_caps {
    uint32_t setup_flags;  /* flags every shard ring is created with */
    uint32_t features;     /* io_uring_params.features of the probe ring */
    bool oldest;           /* fallbacks forced by the operator */
    bool multishot_accept; /* IORING_ACCEPT_MULTISHOT (5.19) */
    bool buf_ring;         /* IORING_REGISTER_PBUF_RING (5.19) */
    bool multishot_recv;   /* IORING_RECV_MULTISHOT from a buffer ring (6.0) */
    bool msg_ring;         /* IORING_OP_MSG_RING (5.18) for shard wake-ups */
    bool cqe_skip;         /* IOSQE_CQE_SKIP_SUCCESS (5.17) */
};

/* Probes what this kernel offers. Returns 0, or a negative errno when io_uring cannot be used
 * at all; rh_uring_error_hint() then explains the likely cause. Main thread, before shards. */
int rh_uring_probe(struct rh_uring_caps *caps, bool oldest);
/* Writes one line naming the path in use (for the start-up log) into @out; returns @out. */
const char *rh_uring_caps_describe(const struct rh_uring_caps *caps, char *out, size_t out_len);
/* The likely cause and fix for a failure of rh_uring_probe() or rh_uring_setup(). */
const char *rh_uring_error_hint(int err);

/* Creates @ring with @entries SQ entries (CQ four times as large) and the flags in @caps.
 * Call it on the thread that will own the ring (SINGLE_ISSUER). Returns 0 or a negative errno. */
int rh_uring_setup(struct io_uring *ring, unsigned entries, const struct rh_uring_caps *caps);

/* Returns a free SQE, submitting what is queued to make room when the SQ is full. Never NULL:
 * a failing submit aborts, since the loop could not go on without losing operations. */
struct io_uring_sqe *rh_uring_get_sqe(struct io_uring *ring);

/* A ring of provided buffers, one per shard, shared by all its connections' receives. */
struct rh_uring_bufs {
    struct io_uring_buf_ring *br;
    uint8_t *mem;         /* count * size bytes, buffer i at mem + i * size */
    uint32_t count;       /* power of two, <= 32768 */
    uint32_t size;        /* bytes per buffer */
    uint32_t uncommitted; /* recycled buffers not yet visible to the kernel */
    uint16_t bgid;
};

/* Registers @count buffers of @size bytes as group @bgid on @ring. Returns 0 or -errno
 * (-EINVAL on kernels before 5.19). */
int rh_uring_bufs_init(struct io_uring *ring, struct rh_uring_bufs *bufs, uint16_t bgid,
                       uint32_t count, uint32_t size);
/* Unregisters and frees; every receive using the group must have completed. */
void rh_uring_bufs_destroy(struct io_uring *ring, struct rh_uring_bufs *bufs);

static inline uint8_t *rh_uring_bufs_data(const struct rh_uring_bufs *bufs, uint16_t bid);
static inline void rh_uring_bufs_recycle(struct rh_uring_bufs *bufs, uint16_t bid);
static inline void rh_uring_bufs_commit(struct rh_uring_bufs *bufs);

static inline uint8_t *rh_uring_bufs_data(const struct rh_uring_bufs *bufs, uint16_t bid)
{
    return bufs->mem + (size_t)bid * bufs->size;
}

/* Hands buffer @bid back; it becomes visible to the kernel at the next commit. */
static inline void rh_uring_bufs_recycle(struct rh_uring_bufs *bufs, uint16_t bid)
{
    io_uring_buf_ring_add(bufs->br, rh_uring_bufs_data(bufs, bid), bufs->size, bid,
                          io_uring_buf_ring_mask(bufs->count), (int)bufs->uncommitted++);
}

/* Publishes recycled buffers with one release store; call once per batch of completions. */
static inline void rh_uring_bufs_commit(struct rh_uring_bufs *bufs)
{
    if (!bufs->uncommitted) return;
    io_uring_buf_ring_advance(bufs->br, (int)bufs->uncommitted);
    bufs->uncommitted = 0;
}
