#pragma once
/*
 * core/assert.h - invariant checks. RH_ASSERT is always compiled in: on failure it logs the
 * file, line, condition and calling shard, then aborts for a core dump. RH_DEBUG_ASSERT is
 * for per-message hot paths and compiles only in Debug and sanitizer builds (RH_DEBUG).
 * Bad input is never asserted on: it is an operating condition, answered with an error.
 */
#include <stdnoreturn.h>

noreturn void rh_assert_fail(const char *file, int line, const char *cond);

#define RH_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0)) rh_assert_fail(__FILE__, __LINE__, #cond);               \
    } while (0)

#ifdef RH_DEBUG
#define RH_DEBUG_ASSERT(cond) RH_ASSERT(cond)
#else
#define RH_DEBUG_ASSERT(cond) ((void)sizeof(!(cond)))
#endif
