/* tests/unit/test_log.c - level parsing, level filtering before argument evaluation, and the
 * per-call-site rate limit. */
#include <errno.h>

#include "core/log.h"
#include "tests/harness/check.h"

static int evaluated;

static int side_effect(void)
{
    return ++evaluated;
}

int main(void)
{
    enum rh_log_level level;
    CHECK_EQ(rh_log_parse_level("debug", &level), 0);
    CHECK_EQ(level, RH_LOG_DEBUG);
    CHECK_EQ(rh_log_parse_level("error", &level), 0);
    CHECK_EQ(level, RH_LOG_ERROR);
    CHECK_EQ(rh_log_parse_level("loud", &level), -EINVAL);
    CHECK_EQ(rh_log_parse_level("", &level), -EINVAL);

    rh_log_set_level(RH_LOG_WARN);
    rh_log_debug("test", "never printed %d", side_effect());
    rh_log_info("test", "never printed %d", side_effect());
    CHECK_EQ(evaluated, 0);
    rh_log_warn("test", "printed once %d", side_effect());
    CHECK_EQ(evaluated, 1);

    struct rh_log_limit limit = {0};
    uint32_t suppressed = 0, passed = 0;
    for (int i = 0; i < 100; i++)
        passed += rh_log_limit_pass(&limit, &suppressed);
    CHECK_EQ(passed, RH_LOG_BURST);
    CHECK_EQ(limit.suppressed, 100 - RH_LOG_BURST);
    /* A new window reports what the last one suppressed. */
    limit.window_start_ms -= 1000;
    CHECK(rh_log_limit_pass(&limit, &suppressed));
    CHECK_EQ(suppressed, 100 - RH_LOG_BURST);

    rh_log_set_shard(3);
    rh_log_limited(RH_LOG_WARN, "test", "limited line from shard 3 (%s)", "expected in output");
    return rh_check_finish();
}
