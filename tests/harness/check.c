/* tests/harness/check.c - counts and prints check results for tests/harness/check.h. */
#include "tests/harness/check.h"

#include <stdio.h>
#include <stdlib.h>

unsigned rh_check_passed, rh_check_failed;

void rh_check_report(bool ok, const char *file, int line, const char *expr, const char *detail)
{
    if (ok) {
        rh_check_passed++;
        return;
    }
    rh_check_failed++;
    fprintf(stderr, "FAIL %s:%d: %s%s%s\n", file, line, expr, detail ? ": " : "",
            detail ? detail : "");
}

void rh_check_report_int(bool ok, const char *file, int line, const char *a_expr, const char *op,
                         const char *b_expr, int64_t a, int64_t b)
{
    if (ok) {
        rh_check_passed++;
        return;
    }
    rh_check_failed++;
    fprintf(stderr, "FAIL %s:%d: %s %s %s (%" PRId64 " vs %" PRId64 ")\n", file, line, a_expr, op,
            b_expr, a, b);
}

size_t rh_test_unhex(const char *text, uint8_t *out)
{
    size_t n = 0;
    for (const char *p = text; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v = 0;
        if (sscanf(p, "%2x", &v) != 1 || !p[1]) break;
        out[n++] = (uint8_t)v;
        p += 2;
    }
    return n;
}

int rh_check_finish(void)
{
    printf("%u passed, %u failed\n", rh_check_passed, rh_check_failed);
    fflush(stdout);
    return rh_check_failed ? 1 : 0;
}

void rh_check_skip(const char *why)
{
    printf("SKIP: %s\n", why);
    fflush(stdout);
    exit(77);
}
