/* tests/unit/test_uring.c - the io_uring probe in both modes, ring set-up with the probed
 * flags, and a provided-buffer ring feeding real receives (multishot where the kernel has it),
 * with buffers recycled and reused. Skips (77) where io_uring cannot be set up at all. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/uring.h"
#include "tests/harness/check.h"

static int receive_rounds(struct io_uring *ring, struct rh_uring_bufs *bufs, bool multishot)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) return -errno;
    int received = 0;
    bool armed = false;
    /* Four times as many messages as buffers: only recycling lets this finish. */
    for (int round = 0; round < 4 * (int)bufs->count; round++) {
        if (!armed) {
            struct io_uring_sqe *sqe = rh_uring_get_sqe(ring);
            if (multishot)
                io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
            else
                io_uring_prep_recv(sqe, sv[0], NULL, bufs->size, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = bufs->bgid;
            armed = true;
        }
        char msg[16];
        int len = snprintf(msg, sizeof(msg), "m%d", round);
        if (write(sv[1], msg, (size_t)len) != len) break;
        struct io_uring_cqe *cqe;
        if (io_uring_submit_and_wait(ring, 1) < 0 || io_uring_peek_cqe(ring, &cqe) != 0) break;
        if (cqe->res == len && (cqe->flags & IORING_CQE_F_BUFFER)) {
            uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
            received += memcmp(rh_uring_bufs_data(bufs, bid), msg, (size_t)len) == 0;
            rh_uring_bufs_recycle(bufs, bid);
            rh_uring_bufs_commit(bufs);
        }
        armed = cqe->flags & IORING_CQE_F_MORE;
        io_uring_cqe_seen(ring, cqe);
    }
    shutdown(sv[1], SHUT_RDWR);
    while (armed) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(ring, &cqe) != 0) break;
        armed = cqe->flags & IORING_CQE_F_MORE;
        io_uring_cqe_seen(ring, cqe);
    }
    close(sv[0]);
    close(sv[1]);
    return received;
}

int main(void)
{
    struct rh_uring_caps caps, oldest;
    int err = rh_uring_probe(&caps, false);
    if (err) {
        printf("io_uring unusable: %s\n", rh_uring_error_hint(err));
        rh_check_skip("io_uring cannot be set up here");
    }
    char text[160];
    printf("probed: %s\n", rh_uring_caps_describe(&caps, text, sizeof(text)));
    CHECK(strlen(text) > 0);
    CHECK(!caps.oldest);
    CHECK(!caps.multishot_recv || caps.buf_ring);

    CHECK_EQ(rh_uring_probe(&oldest, true), 0);
    CHECK(oldest.oldest);
    CHECK(!oldest.multishot_accept && !oldest.multishot_recv && !oldest.buf_ring);
    CHECK(!oldest.msg_ring);
    CHECK_EQ(oldest.setup_flags, 0);
    printf("oldest: %s\n", rh_uring_caps_describe(&oldest, text, sizeof(text)));

    CHECK(rh_uring_error_hint(-EPERM) != rh_uring_error_hint(-ENOSYS));
    CHECK(strstr(rh_uring_error_hint(-EPERM), "io_uring_disabled") != NULL);

    struct io_uring ring;
    REQUIRE(rh_uring_setup(&ring, 64, &caps) == 0);
    if (caps.buf_ring) {
        struct rh_uring_bufs bufs;
        CHECK_EQ(rh_uring_bufs_init(&ring, &bufs, 1, 3, 256), -EINVAL); /* not a power of two */
        REQUIRE(rh_uring_bufs_init(&ring, &bufs, 1, 8, 256) == 0);
        CHECK_EQ(receive_rounds(&ring, &bufs, false), 32);
        if (caps.multishot_recv) CHECK_EQ(receive_rounds(&ring, &bufs, true), 32);
        rh_uring_bufs_destroy(&ring, &bufs);
    }
    io_uring_queue_exit(&ring);

    REQUIRE(rh_uring_setup(&ring, 64, &oldest) == 0);
    io_uring_queue_exit(&ring);
    return rh_check_finish();
}
