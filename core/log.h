#pragma once
/*
 * core/log.h - leveled logging to stderr. One write(2) per line, so lines from different
 * shards never interleave. Each line carries a wall-clock timestamp, the level, the shard of
 * the calling thread (or "main") and a module tag. The level is tested before the arguments
 * are evaluated. Events a client can trigger use rh_log_limited(), which lets a burst of
 * RH_LOG_BURST lines per call site through each second and reports how many it suppressed.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum rh_log_level {
    RH_LOG_ERROR,
    RH_LOG_WARN,
    RH_LOG_INFO,
    RH_LOG_DEBUG,
};

#define RH_LOG_BURST 10

/* One per call site of rh_log_limited(); touched only by the thread that logs. */
struct rh_log_limit {
    int64_t window_start_ms;
    uint32_t in_window;
    uint32_t suppressed;
};

extern _Atomic int rh_log_level_now;

/* Sets the level from any thread; takes effect on every thread at its next log call. */
void rh_log_set_level(enum rh_log_level level);
/* Parses "error", "warn", "info" or "debug". Returns 0, or -EINVAL for anything else. */
int rh_log_parse_level(const char *text, enum rh_log_level *level);
/* "error", "warn", "info" or "debug". */
const char *rh_log_level_name(enum rh_log_level level);
/* Names the calling thread in its log lines: a shard index, or -1 for "main". */
void rh_log_set_shard(int shard_idx);

void rh_log_write(enum rh_log_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Returns true when this call site may log now; counts the line as suppressed otherwise. */
bool rh_log_limit_pass(struct rh_log_limit *limit, uint32_t *suppressed_before);

#define rh_log_enabled(level)                                                                      \
    ((int)(level) <= atomic_load_explicit(&rh_log_level_now, memory_order_relaxed))

#define rh_log_at(level, tag, ...)                                                                 \
    do {                                                                                           \
        if (rh_log_enabled(level)) rh_log_write((level), (tag), __VA_ARGS__);                      \
    } while (0)

#define rh_log_error(tag, ...) rh_log_at(RH_LOG_ERROR, tag, __VA_ARGS__)
#define rh_log_warn(tag, ...)  rh_log_at(RH_LOG_WARN, tag, __VA_ARGS__)
#define rh_log_info(tag, ...)  rh_log_at(RH_LOG_INFO, tag, __VA_ARGS__)
#define rh_log_debug(tag, ...) rh_log_at(RH_LOG_DEBUG, tag, __VA_ARGS__)

/* Rate-limited log for events a client can cause. Call sites must be on a single thread or
 * per-thread (the limit state is static to the call site and the thread). */
#define rh_log_limited(level, tag, fmt, ...)                                                       \
    do {                                                                                           \
        static _Thread_local struct rh_log_limit rh_limit_;                                        \
        uint32_t rh_suppressed_;                                                                   \
        if (rh_log_enabled(level) && rh_log_limit_pass(&rh_limit_, &rh_suppressed_)) {             \
            if (rh_suppressed_)                                                                    \
                rh_log_write((level), (tag), fmt " (%u similar suppressed)", ##__VA_ARGS__,        \
                             rh_suppressed_);                                                      \
            else                                                                                   \
                rh_log_write((level), (tag), fmt, ##__VA_ARGS__);                                  \
        }                                                                                          \
    } while (0)
