/*
 * tests/unit/test_spsc_stress.c - core/spsc between two threads. A producer pushes sequence
 * numbers (as seq + 1, never NULL) with a random mix of single pushes and batches of random
 * size, some larger than the ring; a consumer pops them with its own random mix and checks that
 * every number arrives exactly once and in order. The main thread meanwhile reads
 * rh_spsc_count as the metrics path would. Three phases: a 2-slot ring (full and empty all the
 * time), a 64-slot ring whose indices start just short of the uint32_t wrap, and a 4096-slot
 * ring (mostly cached indices).
 *
 * Usage: test_spsc_stress [items]. The default is 20M items, in every build. Built
 * with -DRH_SANITIZE=thread it is what shows the orderings in core/spsc are enough.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "core/spsc.h"
#include "tests/harness/check.h"

/* Tens of millions in every build: batched transfers keep even ThreadSanitizer runs near a
 * second on this 2-CPU machine. */
#define STRESS_ITEMS_DEFAULT 20000000ull

/* Batches go up to this size on both ends: more than the 64-slot ring holds. */
#define STRESS_BATCH_MAX 97
/* A thread that sees no progress from the other end for this long gives up and fails. */
#define STRESS_STALL_NS (60ll * 1000000000)

struct stress_phase {
    uint32_t cap;
    uint32_t start_idx;
    uint64_t items;
    uint32_t seed;
};

struct stress_ctx {
    struct rh_spsc *ring;
    uint64_t items;
    uint32_t seed;
    /* Set by either thread when it gives up, so that the other stops too. */
    _Atomic bool failed;
    /* Written by the consumer only, read by main after join. */
    uint64_t received;
    uint64_t first_bad_seq;
    uintptr_t first_bad_item;
    uint64_t out_of_order;
    uint64_t nonempty_but_null;
    bool stalled;
    /* Written by the producer only, read by main after join. */
    uint64_t full_waits;
    bool producer_stalled;
};

static void run_phase(const struct stress_phase *phase);
static void *produce(void *arg);
static void *consume(void *arg);
static void start_at(struct rh_spsc *ring, uint32_t idx);
static uint32_t next_random(uint32_t *state);
static bool wait_turn(struct stress_ctx *ctx, uint32_t *spins, int64_t *stall_start_ns);
static void cpu_relax(void);
static int join_within(pthread_t thread, long timeout_ns);

int main(int argc, char **argv)
{
    uint64_t items = STRESS_ITEMS_DEFAULT;

    if (argc > 1) {
        char *end;
        items = strtoull(argv[1], &end, 10);
        if (*end != '\0' || items < 16) {
            fprintf(stderr, "usage: %s [items >= 16]\n", argv[0]);
            return 1;
        }
    }

    struct stress_phase phases[] = {
        {.cap = 2, .start_idx = 0, .items = items / 32, .seed = 0x9e3779b9u},
        {.cap = 64,
         .start_idx = UINT32_MAX - (uint32_t)(items / 4),
         .items = items / 2,
         .seed = 0x85ebca6bu},
        {.cap = 4096, .start_idx = 0, .items = items - items / 32 - items / 2, .seed = 0xc2b2ae35u},
    };

    printf("spsc stress: %llu items in %zu phases\n", (unsigned long long)items,
           sizeof(phases) / sizeof(phases[0]));
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
        run_phase(&phases[i]);
    return rh_check_finish();
}

static void run_phase(const struct stress_phase *phase)
{
    struct stress_ctx ctx = {.items = phase->items, .seed = phase->seed};
    pthread_t producer, consumer;
    uint64_t samples = 0;
    int64_t start_ns;
    int err;

    CHECK_EQ(rh_spsc_init(&ctx.ring, phase->cap), 0);
    if (!ctx.ring) return;
    start_at(ctx.ring, phase->start_idx);
    rh_spsc_validate(ctx.ring);

    start_ns = rh_clock_now_ns();
    err = pthread_create(&consumer, NULL, consume, &ctx);
    CHECK_EQ(err, 0);
    if (err) goto free_ring;
    err = pthread_create(&producer, NULL, produce, &ctx);
    CHECK_EQ(err, 0);
    if (err) {
        atomic_store(&ctx.failed, true);
        pthread_join(consumer, NULL);
        goto free_ring;
    }

    /* The metrics path: any thread may ask for the count, and it stays within the ring. Sampled
     * every 100 us while waiting for the consumer, so this thread does not take a CPU from the
     * two under test. */
    for (;;) {
        uint32_t count = rh_spsc_count(ctx.ring);
        if (count > phase->cap) CHECK_LE(count, phase->cap);
        samples++;
        if (join_within(consumer, 100000) == 0) break;
    }
    pthread_join(producer, NULL);

    printf("cap %5u: %llu items in %.2f s, %llu full waits, %llu count samples\n", phase->cap,
           (unsigned long long)ctx.received, (double)(rh_clock_now_ns() - start_ns) / 1e9,
           (unsigned long long)ctx.full_waits, (unsigned long long)samples);
    CHECK(!ctx.stalled);
    CHECK(!ctx.producer_stalled);
    CHECK_EQ(ctx.out_of_order, 0);
    if (ctx.out_of_order)
        fprintf(stderr, "first bad item at seq %llu: got %#llx\n",
                (unsigned long long)ctx.first_bad_seq, (unsigned long long)ctx.first_bad_item);
    CHECK_EQ(ctx.nonempty_but_null, 0);
    CHECK_EQ(ctx.received, phase->items);
    CHECK(rh_spsc_is_empty(ctx.ring));
    CHECK(rh_spsc_pop(ctx.ring) == NULL);
    CHECK_EQ(atomic_load(&ctx.ring->tail_idx), phase->start_idx + (uint32_t)phase->items);
    rh_spsc_validate(ctx.ring);

free_ring:
    rh_spsc_free(ctx.ring);
}

static void *produce(void *arg)
{
    struct stress_ctx *ctx = arg;
    uint32_t rng = ctx->seed, spins = 0;
    int64_t stall_start_ns = 0;
    void *batch[STRESS_BATCH_MAX];
    uint64_t next_seq = 0;

    while (next_seq < ctx->items) {
        uint32_t r = next_random(&rng), pushed;
        uint64_t left = ctx->items - next_seq;

        if (r % 4 == 0) {
            pushed = rh_spsc_push(ctx->ring, (void *)(uintptr_t)(next_seq + 1)) == 0;
        } else {
            uint32_t n = 1 + (r >> 8) % STRESS_BATCH_MAX;
            if (n > left) n = (uint32_t)left;
            for (uint32_t i = 0; i < n; i++)
                batch[i] = (void *)(uintptr_t)(next_seq + i + 1);
            pushed = rh_spsc_push_n(ctx->ring, batch, n);
        }
        next_seq += pushed;

        if (pushed) {
            spins = 0;
            stall_start_ns = 0;
            /* What the wake protocol does after a push; the answer itself is not checkable
             * here (the consumer may already have taken everything), its orderings are. */
            if ((r & 0xf0000) == 0) (void)rh_spsc_is_empty(ctx->ring);
            continue;
        }
        ctx->full_waits++;
        if (!wait_turn(ctx, &spins, &stall_start_ns)) {
            ctx->producer_stalled = !atomic_load(&ctx->failed);
            break;
        }
    }
    /* Stops the consumer too if this thread gave up early. */
    if (next_seq < ctx->items) atomic_store(&ctx->failed, true);
    return NULL;
}

static void *consume(void *arg)
{
    struct stress_ctx *ctx = arg;
    uint32_t rng = ~ctx->seed, spins = 0;
    int64_t stall_start_ns = 0;
    void *batch[STRESS_BATCH_MAX];
    uint64_t next_seq = 0;

    while (next_seq < ctx->items) {
        uint32_t r = next_random(&rng), got;
        bool seen_nonempty = (r & 0x700000) == 0 && !rh_spsc_is_empty(ctx->ring);

        if (r % 4 == 0) {
            batch[0] = rh_spsc_pop(ctx->ring);
            got = batch[0] != NULL;
        } else {
            got = rh_spsc_pop_n(ctx->ring, batch, 1 + (r >> 8) % STRESS_BATCH_MAX);
        }
        /* On the consumer, "not empty" is a promise: only this thread removes items. */
        if (seen_nonempty && got == 0) ctx->nonempty_but_null++;

        for (uint32_t i = 0; i < got; i++, next_seq++) {
            if (batch[i] == (void *)(uintptr_t)(next_seq + 1)) continue;
            if (ctx->out_of_order++ == 0) {
                ctx->first_bad_seq = next_seq;
                ctx->first_bad_item = (uintptr_t)batch[i];
            }
        }
        if (got) {
            spins = 0;
            stall_start_ns = 0;
            continue;
        }
        if (!wait_turn(ctx, &spins, &stall_start_ns)) {
            ctx->stalled = !atomic_load(&ctx->failed);
            break;
        }
    }
    ctx->received = next_seq;
    /* Stops the producer too if this thread gave up early. */
    if (next_seq < ctx->items) atomic_store(&ctx->failed, true);
    return NULL;
}

/* Moves both indices of the still-unused ring to @idx. The struct is visible only for inlining;
 * the unit tests are the one place that set its fields. */
static void start_at(struct rh_spsc *ring, uint32_t idx)
{
    atomic_store(&ring->tail_idx, idx);
    atomic_store(&ring->head_idx, idx);
    ring->head_idx_cache = idx;
    ring->tail_idx_cache = idx;
}

/* xorshift32: cheap, and the same sequence for a seed on every run. */
static uint32_t next_random(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* Waits a little for the other end: spins at first, then yields the CPU, which matters when
 * both threads share one CPU or a sanitizer slows them down. Returns false to give up: the other
 * thread failed, or nothing moved for STRESS_STALL_NS. */
static bool wait_turn(struct stress_ctx *ctx, uint32_t *spins, int64_t *stall_start_ns)
{
    if (++*spins < 64) {
        cpu_relax();
        return true;
    }
    sched_yield();
    if (*spins % 1024) return true;

    if (atomic_load_explicit(&ctx->failed, memory_order_relaxed)) return false;
    int64_t now_ns = rh_clock_now_ns();
    if (*stall_start_ns == 0) *stall_start_ns = now_ns;
    return now_ns - *stall_start_ns < STRESS_STALL_NS;
}

/* Tells the CPU this is a spin-wait (frees the pipeline for a sibling hyperthread). */
static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Joins @thread if it ends within @timeout_ns. Returns 0, or ETIMEDOUT when it is still running. */
static int join_within(pthread_t thread, long timeout_ns)
{
    struct timespec deadline;

    /* pthread_timedjoin_np takes an absolute CLOCK_REALTIME deadline. */
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += timeout_ns;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    return pthread_timedjoin_np(thread, NULL, &deadline);
}
