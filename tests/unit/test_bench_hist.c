/* tests/unit/test_bench_hist.c - ringhub-bench's latency histogram (tools/bench/hist.h) against
 * a sorted copy of the same values: for random data sets of several shapes and sizes (uniform,
 * log-spread over all 64 bits, constant, one value, values below 16, values around 2^63 and at
 * the top of the range) every percentile read back is at least the exact one, at most 1/16
 * above it and never above the maximum; count, max and sum are exact; an empty histogram reads
 * 0; merging equals adding everything to one histogram. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/check.h"
#include "tools/bench/hist.h"

#define VALUES_MAX 100000

enum shape {
    UNIFORM,    /* 0 .. 10^9 */
    LOG_SPREAD, /* every bit length equally likely */
    CONSTANT,
    SMALL, /* below 16: the exact buckets */
    NEAR_2_63,
    TOP, /* the top of the range, UINT64_MAX included */
    SHAPE_COUNT,
};

static const char *const shape_names[] = {"uniform",  "log-spread", "constant",
                                          "below 16", "near 2^63",  "top"};

/* Percentiles as thousandths, so the exact rank is computed in integers. */
static const uint32_t per_mille[] = {500, 900, 990, 999, 1000};

static uint64_t rng_state;

static uint64_t rng_next(void);
static uint64_t draw(enum shape shape, uint64_t constant);
static int cmp_u64(const void *a, const void *b);
static void check_le(uint64_t a, uint64_t b, const char *what, const char *set, uint32_t pm);
static void check_set(const uint64_t *values, size_t count, const char *set);
static void test_shapes(void);
static void test_fixed_sets(void);
static void test_empty(void);
static void test_merge(void);

int main(void)
{
    test_empty();
    test_fixed_sets();
    test_shapes();
    test_merge();
    return rh_check_finish();
}

/* xorshift64*: the same data every run. */
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t draw(enum shape shape, uint64_t constant)
{
    switch (shape) {
    case UNIFORM:
        return rng_next() % 1000000000u;
    case LOG_SPREAD:
        return rng_next() >> (rng_next() % 64);
    case CONSTANT:
        return constant;
    case SMALL:
        return rng_next() % 16;
    case NEAR_2_63:
        return (1ull << 63) - (1ull << 40) + rng_next() % (1ull << 41);
    case TOP:
        return rng_next() % 4 ? ~0ull - rng_next() % 1000 : ~0ull;
    default:
        return 0;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* CHECK(a <= b) for full-range unsigned values, naming the data set and percentile. */
static void check_le(uint64_t a, uint64_t b, const char *what, const char *set, uint32_t pm)
{
    char detail[200];
    snprintf(detail, sizeof(detail), "%" PRIu64 " > %" PRIu64 " (set %s, p = %u/1000)", a, b, set,
             pm);
    rh_check_report(a <= b, __FILE__, __LINE__, what, a <= b ? NULL : detail);
}

/* Adds @values to a histogram and checks every percentile against the sorted values. */
static void check_set(const uint64_t *values, size_t count, const char *set)
{
    static struct rb_hist h;
    static uint64_t sorted[VALUES_MAX];
    uint64_t sum = 0;

    rb_hist_reset(&h);
    for (size_t i = 0; i < count; i++) {
        rb_hist_add(&h, values[i]);
        sum += values[i];
    }
    memcpy(sorted, values, count * sizeof(*values));
    qsort(sorted, count, sizeof(*sorted), cmp_u64);
    uint64_t max = sorted[count - 1];
    CHECK(h.count == count);
    CHECK(h.max == max);
    CHECK(h.sum == sum);

    for (size_t i = 0; i < sizeof(per_mille) / sizeof(per_mille[0]); i++) {
        uint64_t rank = ((uint64_t)per_mille[i] * count + 999) / 1000; /* ceil(p * count) */
        uint64_t exact = sorted[(rank ? rank : 1) - 1];
        uint64_t slack = exact / 16;
        uint64_t bound = exact > ~0ull - slack ? ~0ull : exact + slack;
        uint64_t got = rb_hist_percentile(&h, per_mille[i] / 1000.0);
        check_le(exact, got, "exact <= percentile", set, per_mille[i]);
        check_le(got, bound, "percentile <= exact + exact / 16", set, per_mille[i]);
        check_le(got, max, "percentile <= max", set, per_mille[i]);
    }
}

/* Every shape at sizes from 1 to VALUES_MAX, several seeds each. */
static void test_shapes(void)
{
    static const size_t sizes[] = {1, 2, 3, 10, 16, 17, 100, 999, 1000, 1001, 10007, VALUES_MAX};
    static uint64_t values[VALUES_MAX];
    char set[96];

    for (int shape = 0; shape < SHAPE_COUNT; shape++) {
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            for (uint64_t seed = 1; seed <= 3; seed++) {
                rng_state = seed * 0x9e3779b97f4a7c15ull;
                uint64_t constant = rng_next() >> (rng_next() % 64);
                for (size_t i = 0; i < sizes[s]; i++)
                    values[i] = draw((enum shape)shape, constant);
                snprintf(set, sizeof(set), "%s, %zu values, seed %" PRIu64, shape_names[shape],
                         sizes[s], seed);
                check_set(values, sizes[s], set);
            }
        }
    }
}

/* Edges of the bucket layout: each power of two and its neighbours, one value at a time and
 * all together, and constants at bucket edges. */
static void test_fixed_sets(void)
{
    static uint64_t values[64 * 3 + 8];
    size_t n = 0;
    char set[64];

    for (int bit = 0; bit < 64; bit++) {
        uint64_t p = 1ull << bit;
        uint64_t one[3] = {p - 1, p, p + 1};
        for (int k = 0; k < 3; k++) {
            snprintf(set, sizeof(set), "single 2^%d%+d", bit, k - 1);
            check_set(&one[k], 1, set);
            values[n++] = one[k];
        }
    }
    values[n++] = ~0ull;
    values[n++] = 0;
    check_set(values, n, "powers of two and neighbours");

    static const uint64_t constants[] = {0, 15, 16, 17, 31, 32, 33, 1000, ~0ull};
    for (size_t c = 0; c < sizeof(constants) / sizeof(constants[0]); c++) {
        for (size_t i = 0; i < 50; i++)
            values[i] = constants[c];
        snprintf(set, sizeof(set), "50 x %" PRIu64, constants[c]);
        check_set(values, 50, set);
    }
}

static void test_empty(void)
{
    struct rb_hist h;
    rb_hist_reset(&h);
    for (size_t i = 0; i < sizeof(per_mille) / sizeof(per_mille[0]); i++)
        CHECK(rb_hist_percentile(&h, per_mille[i] / 1000.0) == 0);
    CHECK(rb_hist_percentile(&h, 0.0) == 0);
    CHECK(h.count == 0 && h.max == 0 && h.sum == 0);
}

/* Values dealt at random over three histograms, merged (empty ones included), equal the one
 * histogram that got them all, field for field. */
static void test_merge(void)
{
    static struct rb_hist all, parts[3], merged, empty;
    rng_state = 42;
    for (int shape = 0; shape < SHAPE_COUNT; shape++) {
        rb_hist_reset(&all);
        rb_hist_reset(&merged);
        rb_hist_reset(&empty);
        for (int k = 0; k < 3; k++)
            rb_hist_reset(&parts[k]);
        uint64_t constant = rng_next();
        for (int i = 0; i < 20000; i++) {
            uint64_t v = draw((enum shape)shape, constant);
            rb_hist_add(&all, v);
            rb_hist_add(&parts[rng_next() % 3], v);
        }
        rb_hist_merge(&merged, &empty);
        for (int k = 0; k < 3; k++) {
            rb_hist_merge(&merged, &parts[k]);
            rb_hist_merge(&merged, &empty);
        }
        CHECK(memcmp(&merged, &all, sizeof(all)) == 0);
        for (size_t i = 0; i < sizeof(per_mille) / sizeof(per_mille[0]); i++)
            CHECK(rb_hist_percentile(&merged, per_mille[i] / 1000.0) ==
                  rb_hist_percentile(&all, per_mille[i] / 1000.0));
        rb_hist_merge(&empty, &all);
        CHECK(memcmp(&empty, &all, sizeof(all)) == 0);
    }
}
