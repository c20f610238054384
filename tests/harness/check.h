#pragma once
/*
 * tests/harness/check.h - check macros for unit tests. A failed check prints the expression
 * with both values and the test goes on; rh_check_finish() prints "N passed, N failed" and
 * returns the exit code (0 pass, 1 fail). rh_check_skip() prints why and exits 77.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern unsigned rh_check_passed, rh_check_failed;

void rh_check_report(bool ok, const char *file, int line, const char *expr, const char *detail);
void rh_check_report_int(bool ok, const char *file, int line, const char *a_expr, const char *op,
                         const char *b_expr, int64_t a, int64_t b);
int rh_check_finish(void);
/* Hex text ("91 06", spaces ignored) to bytes in @out; returns the byte count. */
size_t rh_test_unhex(const char *text, uint8_t *out);
__attribute__((__noreturn__)) void rh_check_skip(const char *why);

#define CHECK(cond) rh_check_report(!!(cond), __FILE__, __LINE__, #cond, NULL)

#define CHECK_OP_(a, op, b)                                                                        \
    do {                                                                                           \
        int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                                              \
        rh_check_report_int(a_ op b_, __FILE__, __LINE__, #a, #op, #b, a_, b_);                    \
    } while (0)

#define CHECK_EQ(a, b) CHECK_OP_(a, ==, b)
#define CHECK_NE(a, b) CHECK_OP_(a, !=, b)
#define CHECK_LT(a, b) CHECK_OP_(a, <, b)
#define CHECK_LE(a, b) CHECK_OP_(a, <=, b)
#define CHECK_GT(a, b) CHECK_OP_(a, >, b)
#define CHECK_GE(a, b) CHECK_OP_(a, >=, b)

/* Ends the test now when a check failed and going on would only crash. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        bool ok_ = (cond);                                                                         \
        rh_check_report(ok_, __FILE__, __LINE__, #cond, NULL);                                     \
        if (!ok_) return rh_check_finish();                                                        \
    } while (0)
