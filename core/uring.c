/*
 * core/uring.c - probing and set-up of io_uring rings.
 *
 * The probe creates a throw-away ring on the main thread with the same flags the shards will
 * use, so a shard never meets a setup error the probe did not. Opcode support comes from
 * IORING_REGISTER_PROBE; what the opcode probe cannot see (multishot flags are sqe->ioprio
 * bits) is tried for real: a multishot recv on a socket pair must deliver a byte and keep
 * IORING_CQE_F_MORE. Kernels that do not know a flag either fail the CQE with -EINVAL or
 * ignore it (no F_MORE); both read as "unsupported".
 */
#include "core/uring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/log.h"

#define PROBE_BGID    0x7ffe
#define PROBE_RECV_UD 0x5eed

static int setup_with_ladder(struct io_uring *ring, unsigned entries, bool oldest,
                             uint32_t *flags_used, uint32_t *features);
static int setup_flags(struct io_uring *ring, unsigned entries, uint32_t flags, uint32_t *features);
static void probe_opcodes(struct io_uring *ring, struct rh_uring_caps *caps);
static bool probe_multishot_recv(struct io_uring *ring);

int rh_uring_probe(struct rh_uring_caps *caps, bool oldest)
{
    struct io_uring ring;
    memset(caps, 0, sizeof(*caps));
    caps->oldest = oldest;

    int err = setup_with_ladder(&ring, 64, oldest, &caps->setup_flags, &caps->features);
    if (err) return err;
    if (!(caps->features & IORING_FEAT_FAST_POLL)) {
        /* Without fast poll every socket operation would block an io-wq thread. */
        io_uring_queue_exit(&ring);
        return -EOPNOTSUPP;
    }
    if (!oldest) {
        probe_opcodes(&ring, caps);
        caps->multishot_recv = caps->buf_ring && probe_multishot_recv(&ring);
    }
    io_uring_queue_exit(&ring);
    return 0;
}

const char *rh_uring_caps_describe(const struct rh_uring_caps *caps, char *out, size_t out_len)
{
    const char *taskrun = (caps->setup_flags & IORING_SETUP_DEFER_TASKRUN)  ? "defer-taskrun"
                          : (caps->setup_flags & IORING_SETUP_COOP_TASKRUN) ? "coop-taskrun"
                                                                            : "plain";
    snprintf(out, out_len, "%s%s ring, %s accept, %s recv, %s wake-ups",
             caps->oldest ? "oldest path forced: " : "", taskrun,
             caps->multishot_accept ? "multishot" : "single-shot",
             caps->multishot_recv ? "multishot buffer-ring"
             : caps->buf_ring     ? "single-shot buffer-ring"
                                  : "single-shot per-connection",
             caps->msg_ring ? "MSG_RING" : "eventfd");
    return out;
}

const char *rh_uring_error_hint(int err)
{
    switch (err) {
    case -EPERM:
        return "io_uring is not permitted: check sysctl kernel.io_uring_disabled (must be 0, or 1 "
               "with this user in kernel.io_uring_group) or, in a container, its seccomp profile "
               "(Docker 25+ blocks io_uring by default; allow io_uring_setup, io_uring_enter and "
               "io_uring_register)";
    case -ENOSYS:
        return "io_uring is not available: the kernel lacks it (Linux 5.7+ needed) or a seccomp "
               "filter (container runtimes since Docker 25) blocks it; allow io_uring_setup, "
               "io_uring_enter and io_uring_register";
    case -ENOMEM:
        return "not enough locked memory for the ring: raise RLIMIT_MEMLOCK (ulimit -l) or use a "
               "kernel >= 5.12, or lower --ring-entries";
    case -EOPNOTSUPP:
        return "this kernel's io_uring lacks fast poll (Linux 5.7+ needed)";
    case -EMFILE:
    case -ENFILE:
        return "too many open files: raise the descriptor limit (ulimit -n)";
    default:
        return "io_uring set-up failed";
    }
}

int rh_uring_setup(struct io_uring *ring, unsigned entries, const struct rh_uring_caps *caps)
{
    uint32_t features;
    return setup_flags(ring, entries, caps->setup_flags, &features);
}

struct io_uring_sqe *rh_uring_get_sqe(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    while (!sqe) {
        int err = io_uring_submit(ring);
        if (err < 0 && err != -EAGAIN && err != -EBUSY && err != -EINTR) {
            rh_log_error("uring", "submit failed while making room: %s", strerror(-err));
            RH_ASSERT(!"io_uring_submit failed");
        }
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

int rh_uring_bufs_init(struct io_uring *ring, struct rh_uring_bufs *bufs, uint16_t bgid,
                       uint32_t count, uint32_t size)
{
    if (!count || count > 32768 || (count & (count - 1)) || !size) return -EINVAL;
    memset(bufs, 0, sizeof(*bufs));

    /* The kernel maps the ring entries; they must be page aligned. */
    size_t ring_len = (size_t)count * sizeof(struct io_uring_buf);
    struct io_uring_buf_ring *br = rh_alloc_aligned((size_t)sysconf(_SC_PAGESIZE), ring_len);
    io_uring_buf_ring_init(br);

    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)br, .ring_entries = count, .bgid = bgid};
    int err = io_uring_register_buf_ring(ring, &reg, 0);
    if (err) {
        rh_free(br);
        return err;
    }
    bufs->br = br;
    bufs->mem = rh_alloc_aligned(64, (size_t)count * size);
    bufs->count = count;
    bufs->size = size;
    bufs->bgid = bgid;
    for (uint32_t bid = 0; bid < count; bid++)
        rh_uring_bufs_recycle(bufs, (uint16_t)bid);
    rh_uring_bufs_commit(bufs);
    return 0;
}

void rh_uring_bufs_destroy(struct io_uring *ring, struct rh_uring_bufs *bufs)
{
    if (!bufs->br) return;
    io_uring_unregister_buf_ring(ring, bufs->bgid);
    rh_free(bufs->br);
    rh_free(bufs->mem);
    memset(bufs, 0, sizeof(*bufs));
}

static int setup_with_ladder(struct io_uring *ring, unsigned entries, bool oldest,
                             uint32_t *flags_used, uint32_t *features)
{
    static const uint32_t ladder[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int err = -EINVAL;
    for (size_t i = oldest ? 2 : 0; i < sizeof(ladder) / sizeof(ladder[0]); i++) {
        err = setup_flags(ring, entries, ladder[i], features);
        if (err != -EINVAL) {
            *flags_used = ladder[i];
            return err;
        }
    }
    return err;
}

static int setup_flags(struct io_uring *ring, unsigned entries, uint32_t flags, uint32_t *features)
{
    struct io_uring_params p = {
        .flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
        .cq_entries = entries * 4, /* multishot completions outnumber submissions */
    };
    int err = io_uring_queue_init_params(entries, ring, &p);
    if (err == -EINVAL) {
        /* CQSIZE and CLAMP are 5.5+; retry bare before giving up on these flags. */
        memset(&p, 0, sizeof(p));
        p.flags = flags;
        err = io_uring_queue_init_params(entries, ring, &p);
    }
    if (!err) *features = p.features;
    return err;
}

static void probe_opcodes(struct io_uring *ring, struct rh_uring_caps *caps)
{
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    if (!probe) return;
    caps->msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
    caps->cqe_skip = caps->features & IORING_FEAT_CQE_SKIP;
    io_uring_free_probe(probe);

    /* Buffer rings and multishot accept arrived together in 5.19: a kernel that registers a
     * buffer ring has both. Multishot accept still downgrades itself on its first -EINVAL. */
    struct rh_uring_bufs bufs;
    if (rh_uring_bufs_init(ring, &bufs, PROBE_BGID, 2, 64) == 0) {
        caps->buf_ring = true;
        caps->multishot_accept = true;
        rh_uring_bufs_destroy(ring, &bufs);
    }
}

static bool probe_multishot_recv(struct io_uring *ring)
{
    int sv[2];
    bool ok = false;
    struct rh_uring_bufs bufs;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) return false;
    if (rh_uring_bufs_init(ring, &bufs, PROBE_BGID, 2, 64) != 0) goto out_close;

    struct io_uring_sqe *sqe = rh_uring_get_sqe(ring);
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = PROBE_BGID;
    io_uring_sqe_set_data64(sqe, PROBE_RECV_UD);
    if (write(sv[1], "x", 1) != 1) goto out_bufs;

    struct io_uring_cqe *cqe;
    bool armed = false;
    if (io_uring_submit_and_wait(ring, 1) >= 0 && io_uring_peek_cqe(ring, &cqe) == 0) {
        armed = cqe->flags & IORING_CQE_F_MORE;
        ok = cqe->res == 1 && armed;
        io_uring_cqe_seen(ring, cqe);
    }
    /* End the receive (EOF) and reap its last completion before the buffers go away. */
    shutdown(sv[1], SHUT_RDWR);
    while (armed && io_uring_wait_cqe(ring, &cqe) == 0) {
        bool last = !(cqe->flags & IORING_CQE_F_MORE);
        io_uring_cqe_seen(ring, cqe);
        if (last) break;
    }
out_bufs:
    rh_uring_bufs_destroy(ring, &bufs);
out_close:
    close(sv[0]);
    close(sv[1]);
    return ok;
}
