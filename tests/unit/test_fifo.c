/* tests/unit/test_fifo.c - the growable pointer queue: order across growth and wrap-around,
 * contiguous runs, drops, and no memory left after free. */
#include <stdint.h>

#include "core/alloc.h"
#include "core/fifo.h"
#include "tests/harness/check.h"

static void *item(uintptr_t n)
{
    return (void *)(n + 1);
}

int main(void)
{
    int64_t base = rh_alloc_live_bytes();
    struct rh_fifo f = {0};
    CHECK(rh_fifo_pop(&f) == NULL);

    /* Interleave pushes and pops so the head walks around the ring while it grows. */
    uintptr_t next_in = 0, next_out = 0;
    int order_errors = 0;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < round % 7 + 2; i++)
            rh_fifo_push(&f, item(next_in++));
        for (int i = 0; i < round % 5 + 1 && f.count; i++)
            order_errors += rh_fifo_pop(&f) != item(next_out++);
    }
    CHECK_EQ(order_errors, 0);
    CHECK_EQ(f.count, next_in - next_out);
    CHECK_EQ(f.cap & (f.cap - 1), 0);
    for (uint32_t i = 0; i < f.count; i++)
        order_errors += rh_fifo_at(&f, i) != item(next_out + i);
    CHECK_EQ(order_errors, 0);

    /* Contiguous runs cover everything, in order, in at most two pieces. */
    uint32_t total = f.count, pieces = 0;
    while (f.count) {
        uint32_t run = rh_fifo_contiguous(&f);
        CHECK_GT(run, 0);
        CHECK(f.items[f.head] == item(next_out));
        rh_fifo_drop(&f, run);
        next_out += run;
        pieces++;
    }
    CHECK_LE(pieces, 2);
    CHECK_EQ(next_out, next_in);
    CHECK_GT(total, 0);

    rh_fifo_free(&f);
    CHECK(f.items == NULL && f.cap == 0 && f.count == 0);
    CHECK_EQ(rh_alloc_live_bytes(), base);
    return rh_check_finish();
}
