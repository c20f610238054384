/*
 * core/log.c - formats a line into a stack buffer and writes it with one write(2). Lines
 * longer than the buffer are cut and end in "...". stderr is left unbuffered by us: stdio is
 * not used here at all, so nothing is lost on abort.
 */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

#define LOG_LINE_MAX 1024

_Atomic int rh_log_level_now = RH_LOG_INFO;
static _Thread_local int log_shard_idx = -1;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void rh_log_set_level(enum rh_log_level level)
{
    atomic_store_explicit(&rh_log_level_now, (int)level, memory_order_relaxed);
}

const char *rh_log_level_name(enum rh_log_level level)
{
    return level >= RH_LOG_ERROR && level <= RH_LOG_DEBUG ? level_names[level] : "?";
}

int rh_log_parse_level(const char *text, enum rh_log_level *level)
{
    for (int i = RH_LOG_ERROR; i <= RH_LOG_DEBUG; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *level = (enum rh_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void rh_log_set_shard(int shard_idx)
{
    log_shard_idx = shard_idx;
}

void rh_log_write(enum rh_log_level level, const char *tag, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    struct timespec now;
    struct tm tm;
    size_t len = 0;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    len += strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    if (log_shard_idx >= 0)
        len += (size_t)snprintf(line + len, sizeof(line) - len,
                                ".%03ldZ %-5s shard%d %s: ", now.tv_nsec / 1000000,
                                level_names[level], log_shard_idx, tag);
    else
        len += (size_t)snprintf(line + len, sizeof(line) - len,
                                ".%03ldZ %-5s main %s: ", now.tv_nsec / 1000000, level_names[level],
                                tag);

    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    len += (size_t)n;
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
        memcpy(line + len - 3, "...", 3);
    }
    line[len++] = '\n';

    int saved_errno = errno; /* callers often log and then return -errno */
    if (write(STDERR_FILENO, line, len) < 0) {
        /* stderr is gone; there is nowhere left to report that. */
    }
    errno = saved_errno;
}

bool rh_log_limit_pass(struct rh_log_limit *limit, uint32_t *suppressed_before)
{
    int64_t now_ms = rh_clock_now_ms();
    *suppressed_before = 0;
    if (now_ms - limit->window_start_ms >= 1000) {
        *suppressed_before = limit->suppressed;
        limit->window_start_ms = now_ms;
        limit->in_window = 0;
        limit->suppressed = 0;
    }
    if (limit->in_window >= RH_LOG_BURST) {
        limit->suppressed++;
        return false;
    }
    limit->in_window++;
    return true;
}
