/* tests/unit/test_clock.c - the monotonic clock helpers agree with each other and never go
 * backwards. */
#include <time.h>

#include "core/clock.h"
#include "tests/harness/check.h"

int main(void)
{
    int64_t ns = rh_clock_now_ns(), us = rh_clock_now_us(), ms = rh_clock_now_ms();
    CHECK_GE(us, ns / 1000);
    CHECK_GE(ms, ns / 1000000);
    CHECK_LE(ms, us / 1000 + 1000); /* the three calls are well under a second apart */

    int64_t prev = rh_clock_now_ns(), backwards = 0;
    for (int i = 0; i < 100000; i++) {
        int64_t now = rh_clock_now_ns();
        backwards += now < prev;
        prev = now;
    }
    CHECK_EQ(backwards, 0);

    struct timespec nap = {.tv_nsec = 20 * 1000000};
    int64_t before = rh_clock_now_ms();
    nanosleep(&nap, NULL);
    CHECK_GE(rh_clock_now_ms() - before, 20);
    return rh_check_finish();
}
