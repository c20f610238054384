/* core/assert.c - the failure path of RH_ASSERT: one log line, then abort() for a core. */
#include "core/assert.h"

#include <stdlib.h>

#include "core/log.h"

noreturn void rh_assert_fail(const char *file, int line, const char *cond)
{
    rh_log_write(RH_LOG_ERROR, "assert", "%s:%d: assertion failed: %s", file, line, cond);
    abort();
}
