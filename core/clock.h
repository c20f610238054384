#pragma once
/*
 * core/clock.h - monotonic time. All timers, timeouts and rates use CLOCK_MONOTONIC; wall
 * time appears only in log lines. Any thread may call these.
 */
#include <stdint.h>
#include <time.h>

static inline int64_t rh_clock_now_ns(void);
static inline int64_t rh_clock_now_us(void);
static inline int64_t rh_clock_now_ms(void);

static inline int64_t rh_clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t rh_clock_now_us(void)
{
    return rh_clock_now_ns() / 1000;
}

static inline int64_t rh_clock_now_ms(void)
{
    return rh_clock_now_ns() / 1000000;
}
