/*
 * tools/bench_spsc.c - ringhub-bench-spsc: throughput of core/spsc against Concurrency Kit's
 * ck_ring (the other choice DESIGN.md names for the shard rings), one producer thread and one
 * consumer thread pinned to the first two CPUs this process may use (unpinned, with a note, when
 * there is only one). Each run moves a fixed number of pointer items, numbered so the consumer
 * checks order, and is timed from the moment both threads are released until both finish.
 *
 * Batch 1 uses single push/pop on both rings. Batch B has the producer hand over B items at a
 * time and the consumer take up to B at a time: rh_spsc_push_n/pop_n (one release store per
 * batch) for ours; ck_ring 0.7.1 has no batch enqueue or dequeue, so B single calls for it.
 * Runs of the configurations are interleaved so drift in the machine hits them all alike.
 * Prints a table and then one JSON line per configuration.
 *
 * Usage: ringhub-bench-spsc [-n items per run] [-r runs] [-c ring capacity]
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ck_ring.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/spsc.h"

#define BENCH_BATCH_MAX 256
#define BENCH_RUNS_MAX  64

enum bench_impl {
    BENCH_RH,
    BENCH_CK,
};

struct bench_cfg {
    enum bench_impl impl;
    uint32_t batch;
    double items_per_s[BENCH_RUNS_MAX]; /* one per run, sorted before printing */
    double median_per_s;
};

struct bench_opts {
    uint64_t items;
    uint32_t runs;
    uint32_t cap;
    int cpus[2]; /* -1: leave unpinned */
};

/* One timed run: the ring under test and what the two threads report back. */
struct bench_run {
    _Alignas(128) struct ck_ring ck;
    struct ck_ring_buffer *ck_slots;
    struct rh_spsc *rh;
    const struct bench_opts *opts;
    uint32_t batch;
    _Atomic uint32_t ready_count;
    _Atomic bool go;
    /* Written by the consumer only, read by main after join. */
    uint64_t out_of_order;
};

struct bench_thread {
    struct bench_run *run;
    int cpu;
};

static int parse_opts(int argc, char **argv, struct bench_opts *opts);
static void pick_cpus(struct bench_opts *opts);
static double run_once(const struct bench_opts *opts, enum bench_impl impl, uint32_t batch);
static pthread_t thread_create(void *(*fn)(void *), struct bench_thread *t);
static void thread_start(struct bench_thread *t);
static void *rh_produce(void *arg);
static void *rh_consume(void *arg);
static void *ck_produce(void *arg);
static void *ck_consume(void *arg);
static void wait_turn(uint32_t *spins);
static void print_results(const struct bench_opts *opts, struct bench_cfg *cfgs, size_t count);
static int compare_double(const void *a, const void *b);
static const char *impl_name(enum bench_impl impl);

int main(int argc, char **argv)
{
    struct bench_opts opts = {.items = 20000000, .runs = 5, .cap = 4096, .cpus = {-1, -1}};
    struct bench_cfg cfgs[] = {
        {.impl = BENCH_RH, .batch = 1},
        {.impl = BENCH_CK, .batch = 1},
        {.impl = BENCH_RH, .batch = 32},
        {.impl = BENCH_CK, .batch = 32},
    };
    size_t cfg_count = sizeof(cfgs) / sizeof(cfgs[0]);

    if (parse_opts(argc, argv, &opts) != 0) return 2;
    pick_cpus(&opts);

    for (uint32_t r = 0; r < opts.runs; r++) {
        for (size_t i = 0; i < cfg_count; i++) {
            double rate = run_once(&opts, cfgs[i].impl, cfgs[i].batch);
            if (rate < 0) return 1;
            cfgs[i].items_per_s[r] = rate;
        }
    }
    print_results(&opts, cfgs, cfg_count);
    return 0;
}

static int parse_opts(int argc, char **argv, struct bench_opts *opts)
{
    int c;

    while ((c = getopt(argc, argv, "n:r:c:h")) != -1) {
        switch (c) {
        case 'n':
            opts->items = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            opts->runs = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            opts->cap = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: %s [-n items per run] [-r runs (1..%d)] [-c capacity]\n",
                    argv[0], BENCH_RUNS_MAX);
            return -EINVAL;
        }
    }
    if (opts->items == 0 || opts->runs == 0 || opts->runs > BENCH_RUNS_MAX) {
        fprintf(stderr, "%s: items and runs must be > 0, runs <= %d\n", argv[0], BENCH_RUNS_MAX);
        return -EINVAL;
    }
    /* ck_ring needs a power of two of at least 2 as well. */
    if (opts->cap < 2 || opts->cap > RH_SPSC_CAP_MAX || (opts->cap & (opts->cap - 1))) {
        fprintf(stderr, "%s: capacity must be a power of two from 2 to %u\n", argv[0],
                RH_SPSC_CAP_MAX);
        return -EINVAL;
    }
    return 0;
}

/* The first two CPUs in this process's affinity mask; none when it allows only one. */
static void pick_cpus(struct bench_opts *opts)
{
    cpu_set_t set;
    int found = 0;

    if (sched_getaffinity(0, sizeof(set), &set) == -1) {
        fprintf(stderr, "sched_getaffinity: %s; running unpinned\n", strerror(errno));
        return;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; cpu++)
        if (CPU_ISSET(cpu, &set)) opts->cpus[found++] = cpu;
    if (found < 2) {
        opts->cpus[0] = opts->cpus[1] = -1;
        fprintf(stderr, "only one CPU available: running unpinned, both threads share it\n");
    }
}

/* Returns items per second, or -1 when the consumer saw items out of order. */
static double run_once(const struct bench_opts *opts, enum bench_impl impl, uint32_t batch)
{
    struct bench_run *run = rh_alloc_aligned(128, sizeof(*run));
    struct bench_thread producer = {.run = run, .cpu = opts->cpus[0]};
    struct bench_thread consumer = {.run = run, .cpu = opts->cpus[1]};
    pthread_t producer_tid, consumer_tid;
    double rate;
    int64_t start_ns;

    memset(run, 0, sizeof(*run));
    run->opts = opts;
    run->batch = batch;
    if (impl == BENCH_RH) {
        /* parse_opts checked the capacity. */
        if (rh_spsc_init(&run->rh, opts->cap) != 0) abort();
    } else {
        run->ck_slots = rh_alloc_aligned(128, opts->cap * sizeof(run->ck_slots[0]));
        memset(run->ck_slots, 0, opts->cap * sizeof(run->ck_slots[0]));
        ck_ring_init(&run->ck, opts->cap);
    }

    consumer_tid = thread_create(impl == BENCH_RH ? rh_consume : ck_consume, &consumer);
    producer_tid = thread_create(impl == BENCH_RH ? rh_produce : ck_produce, &producer);
    /* acquire: pairs with the release increment in thread_start; both threads are pinned. */
    while (atomic_load_explicit(&run->ready_count, memory_order_acquire) < 2)
        sched_yield();
    start_ns = rh_clock_now_ns();
    /* release: pairs with the acquire spin in thread_start; the ring set-up is visible. */
    atomic_store_explicit(&run->go, true, memory_order_release);
    pthread_join(producer_tid, NULL);
    pthread_join(consumer_tid, NULL);
    rate = (double)opts->items / ((double)(rh_clock_now_ns() - start_ns) / 1e9);

    if (run->out_of_order) {
        fprintf(stderr, "%s batch %u: %llu items out of order\n", impl_name(impl), batch,
                (unsigned long long)run->out_of_order);
        rate = -1;
    }
    rh_spsc_free(run->rh);
    rh_free(run->ck_slots);
    rh_free(run);
    return rate;
}

/* A benchmark that cannot start its threads has nothing to report: exits. */
static pthread_t thread_create(void *(*fn)(void *), struct bench_thread *t)
{
    pthread_t tid;
    int err = pthread_create(&tid, NULL, fn, t);

    if (err) {
        fprintf(stderr, "pthread_create: %s\n", strerror(err));
        exit(1);
    }
    return tid;
}

/* Pins the calling thread, reports ready and waits for the start. */
static void thread_start(struct bench_thread *t)
{
    if (t->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(t->cpu, &set);
        int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
        if (err) fprintf(stderr, "pinning to CPU %d: %s\n", t->cpu, strerror(err));
    }
    /* release: pairs with main's acquire load; this thread has pinned itself. */
    atomic_fetch_add_explicit(&t->run->ready_count, 1, memory_order_release);
    /* acquire: pairs with main's release store of go. */
    while (!atomic_load_explicit(&t->run->go, memory_order_acquire))
        ;
}

static void *rh_produce(void *arg)
{
    struct bench_thread *t = arg;
    struct bench_run *run = t->run;
    struct rh_spsc *ring = run->rh;
    uint64_t items = run->opts->items, seq = 0;
    uint32_t batch = run->batch, spins = 0;
    void *staged[BENCH_BATCH_MAX];

    thread_start(t);
    if (batch == 1) {
        while (seq < items) {
            if (rh_spsc_push(ring, (void *)(uintptr_t)(seq + 1)) == 0)
                seq++;
            else
                wait_turn(&spins);
        }
        return NULL;
    }
    while (seq < items) {
        uint32_t n = items - seq < batch ? (uint32_t)(items - seq) : batch;
        for (uint32_t i = 0; i < n; i++)
            staged[i] = (void *)(uintptr_t)(seq + i + 1);
        for (uint32_t done = 0; done < n;) {
            uint32_t pushed = rh_spsc_push_n(ring, staged + done, n - done);
            done += pushed;
            if (!pushed) wait_turn(&spins);
        }
        seq += n;
    }
    return NULL;
}

static void *rh_consume(void *arg)
{
    struct bench_thread *t = arg;
    struct bench_run *run = t->run;
    struct rh_spsc *ring = run->rh;
    uint64_t items = run->opts->items, seq = 0, bad = 0;
    uint32_t batch = run->batch, spins = 0;
    void *taken[BENCH_BATCH_MAX];

    thread_start(t);
    if (batch == 1) {
        while (seq < items) {
            void *item = rh_spsc_pop(ring);
            if (!item) {
                wait_turn(&spins);
                continue;
            }
            bad += item != (void *)(uintptr_t)(seq + 1);
            seq++;
        }
        run->out_of_order = bad;
        return NULL;
    }
    while (seq < items) {
        uint32_t n = rh_spsc_pop_n(ring, taken, batch);
        if (!n) {
            wait_turn(&spins);
            continue;
        }
        for (uint32_t i = 0; i < n; i++, seq++)
            bad += taken[i] != (void *)(uintptr_t)(seq + 1);
    }
    run->out_of_order = bad;
    return NULL;
}

static void *ck_produce(void *arg)
{
    struct bench_thread *t = arg;
    struct bench_run *run = t->run;
    uint64_t items = run->opts->items, seq = 0;
    uint32_t batch = run->batch, spins = 0;

    thread_start(t);
    while (seq < items) {
        uint32_t n = items - seq < batch ? (uint32_t)(items - seq) : batch;
        for (uint32_t done = 0; done < n;) {
            if (ck_ring_enqueue_spsc(&run->ck, run->ck_slots, (void *)(uintptr_t)(seq + done + 1)))
                done++;
            else
                wait_turn(&spins);
        }
        seq += n;
    }
    return NULL;
}

static void *ck_consume(void *arg)
{
    struct bench_thread *t = arg;
    struct bench_run *run = t->run;
    uint64_t items = run->opts->items, seq = 0, bad = 0;
    uint32_t batch = run->batch, spins = 0;
    void *taken[BENCH_BATCH_MAX];

    thread_start(t);
    if (batch == 1) {
        while (seq < items) {
            void *item;
            if (!ck_ring_dequeue_spsc(&run->ck, run->ck_slots, &item)) {
                wait_turn(&spins);
                continue;
            }
            bad += item != (void *)(uintptr_t)(seq + 1);
            seq++;
        }
        run->out_of_order = bad;
        return NULL;
    }
    while (seq < items) {
        uint32_t n = 0;
        while (n < batch && ck_ring_dequeue_spsc(&run->ck, run->ck_slots, &taken[n]))
            n++;
        if (!n) {
            wait_turn(&spins);
            continue;
        }
        for (uint32_t i = 0; i < n; i++, seq++)
            bad += taken[i] != (void *)(uintptr_t)(seq + 1);
    }
    run->out_of_order = bad;
    return NULL;
}

/* The same back-off for both rings: a pause per failed attempt, and a yield now and then so two
 * threads sharing one CPU still make progress. */
static void wait_turn(uint32_t *spins)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (++*spins % 4096 == 0) sched_yield();
}

static void print_results(const struct bench_opts *opts, struct bench_cfg *cfgs, size_t count)
{
    uint32_t runs = opts->runs;
    char cpus[32] = "unpinned";

    if (opts->cpus[0] >= 0) snprintf(cpus, sizeof(cpus), "%d,%d", opts->cpus[0], opts->cpus[1]);
    for (size_t i = 0; i < count; i++) {
        double *rates = cfgs[i].items_per_s;
        qsort(rates, runs, sizeof(rates[0]), compare_double);
        cfgs[i].median_per_s =
            runs % 2 ? rates[runs / 2] : (rates[runs / 2 - 1] + rates[runs / 2]) / 2;
    }

    printf("SPSC throughput: %llu items per run, %u runs, capacity %u, CPUs %s\n",
           (unsigned long long)opts->items, runs, opts->cap, cpus);
    printf("%-8s %5s %12s %12s %12s %8s\n", "ring", "batch", "min Mitem/s", "median", "max",
           "ns/item");
    for (size_t i = 0; i < count; i++) {
        const struct bench_cfg *c = &cfgs[i];
        printf("%-8s %5u %12.1f %12.1f %12.1f %8.2f\n", impl_name(c->impl), c->batch,
               c->items_per_s[0] / 1e6, c->median_per_s / 1e6, c->items_per_s[runs - 1] / 1e6,
               1e9 / c->median_per_s);
    }
    for (size_t i = 0; i < count; i++) {
        const struct bench_cfg *c = &cfgs[i];
        printf("{\"bench\":\"spsc\",\"ring\":\"%s\",\"batch\":%u,\"cap\":%u,\"items\":%llu,"
               "\"runs\":%u,\"cpus\":\"%s\",\"items_per_s_min\":%.0f,\"items_per_s_median\":%.0f,"
               "\"items_per_s_max\":%.0f}\n",
               impl_name(c->impl), c->batch, opts->cap, (unsigned long long)opts->items, runs, cpus,
               c->items_per_s[0], c->median_per_s, c->items_per_s[runs - 1]);
    }
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *impl_name(enum bench_impl impl)
{
    return impl == BENCH_RH ? "rh_spsc" : "ck_ring";
}
