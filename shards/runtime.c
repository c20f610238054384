/*
 * shards/runtime.c - starting and stopping the shards of one process.
 *
 * Everything shards share is made here, on the main thread, before any shard runs: the
 * io_uring capability probe, one listening socket per shard on the same port (SO_REUSEPORT,
 * so the kernel spreads connections), one eventfd per shard, and the SPSC ring of every
 * ordered pair of shards. Each shard thread then creates its own io_uring ring (SINGLE_ISSUER
 * wants the owner to create it) and all meet at a barrier, after which every ring fd is
 * published. After the last shard has stopped, rh_runtime_join drains what is left in the
 * rings and frees everything.
 */
#include "shards/shard_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/hash.h"
#include "core/log.h"

#define STALE_PROBE_MS 2000 /* how long a socket file that takes connections may stay silent */

static uint32_t usable_cpus(int *cpus, uint32_t cpus_max);
static int open_listener(const struct rh_cfg *cfg, uint16_t port, int *fd_out);
static int open_side_listeners(struct rh_runtime *rt);
static int open_admin_socket(const char *path, int *fd_out);
static bool admin_socket_is_live(const struct sockaddr_un *sa);
static void add_listener(struct rh_shard *s, int fd, enum rh_listener_kind kind);
static int make_shards(struct rh_runtime *rt, const int *cpus, uint32_t cpu_count);
static void free_shards(struct rh_runtime *rt);
static uint32_t conns_max_for_fd_limit(const struct rh_cfg *cfg);

int rh_runtime_start(struct rh_runtime **rt_out, const struct rh_cfg *cfg,
                     const struct rh_conn_handler *handler)
{
    int cpus[RH_SHARDS_MAX];
    uint32_t cpu_count = usable_cpus(cpus, RH_SHARDS_MAX);
    uint32_t count = cfg->shard_count ? cfg->shard_count : cpu_count;
    if (count > RH_SHARDS_MAX) count = RH_SHARDS_MAX;

    struct rh_runtime *rt = rh_calloc(1, sizeof(*rt));
    rt->cfg = cfg;
    rt->handler = handler;
    rt->shard_count = count;
    atomic_store(&rt->grace_ms, cfg->shutdown_grace_ms);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    rt->started_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;

    int err = rh_uring_probe(&rt->caps, cfg->io_oldest);
    if (err) {
        rh_log_error("runtime", "cannot use io_uring: %s. %s", strerror(-err),
                     rh_uring_error_hint(err));
        rh_free(rt);
        return err;
    }
    char described[160];
    rh_log_info("runtime", "io_uring: %s",
                rh_uring_caps_describe(&rt->caps, described, sizeof(described)));

    err = make_shards(rt, cpus, cpu_count);
    if (err) goto err_free;

    pthread_barrier_init(&rt->start_barrier, NULL, count + 1);
    uint32_t started = 0;
    for (; started < count; started++) {
        struct rh_shard *s = rt->shards[started];
        err = -pthread_create(&s->thread, NULL, rh_shard_main, s);
        if (err) {
            rh_log_error("runtime", "cannot start shard thread: %s", strerror(-err));
            break;
        }
    }
    if (started < count) {
        if (started) abort(); /* the threads already started would wait at the barrier forever */
        goto err_barrier;
    }
    pthread_barrier_wait(&rt->start_barrier);
    if (atomic_load(&rt->start_failed)) {
        for (uint32_t i = 0; i < count; i++)
            pthread_join(rt->shards[i]->thread, NULL);
        err = -EIO;
        goto err_barrier;
    }
    rh_log_info("runtime", "listening on %s:%u with %u shard%s", cfg->listen_addr, rt->port, count,
                count == 1 ? "" : "s");
    *rt_out = rt;
    return 0;

err_barrier:
    pthread_barrier_destroy(&rt->start_barrier);
err_free:
    free_shards(rt);
    rh_free(rt);
    return err;
}

int rh_runtime_serve(const struct rh_cfg *cfg, const struct rh_conn_handler *handler)
{
    sigset_t stop_signals, old;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    /* Shard threads inherit the mask, so only sigwait below ever takes these. */
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old);
    signal(SIGPIPE, SIG_IGN);

    struct rh_runtime *rt;
    int err = rh_runtime_start(&rt, cfg, handler);
    if (!err) {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        if (atomic_load(&rt->is_draining))
            rh_log_info("runtime", "draining as the admin socket asked (grace %u ms)",
                        atomic_load(&rt->grace_ms));
        else
            rh_log_info("runtime", "%s: stopping (grace %u ms)", strsignal(sig),
                        cfg->shutdown_grace_ms);
        rh_runtime_stop(rt);
        rh_runtime_join(rt);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

int rh_runtime_main(int argc, char **argv, const struct rh_conn_handler *handler)
{
    struct rh_cfg cfg;
    char err_text[256];
    rh_cfg_defaults(&cfg);
    int rc = rh_cfg_parse_args(&cfg, argc, argv, err_text, sizeof(err_text));
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "%s: %s (see --help)\n", argv[0], err_text);
        rh_cfg_free(&cfg);
        return rc < 0 ? 2 : 0;
    }
    rh_log_set_level(cfg.log_level);
    rh_hash_seed_random();

    if (handler->prepare && handler->prepare(&cfg) != 0) {
        rh_cfg_free(&cfg);
        return 1;
    }
    int err = rh_runtime_serve(&cfg, handler);
    if (handler->finish) handler->finish();
    rh_cfg_free(&cfg);
    if (err) return 1;
    int64_t leaked = rh_alloc_live_bytes();
    if (leaked) {
        rh_log_error("runtime", "%lld bytes still allocated at exit", (long long)leaked);
        return 3;
    }
    return 0;
}

uint32_t rh_runtime_node_id(const struct rh_runtime *rt)
{
    return rt->cfg->node_id;
}

const struct rh_cfg *rh_runtime_cfg(const struct rh_runtime *rt)
{
    return rt->cfg;
}

void rh_runtime_drain(struct rh_runtime *rt, uint32_t grace_ms)
{
    if (atomic_exchange(&rt->is_draining, true)) return;
    atomic_store(&rt->grace_ms, grace_ms);
    rh_runtime_stop(rt);
    /* rh_runtime_serve's sigwait takes it: the process ends as after SIGTERM. */
    kill(getpid(), SIGTERM);
}

bool rh_runtime_is_stopping(const struct rh_runtime *rt)
{
    return atomic_load_explicit(&rt->stop_requested, memory_order_relaxed);
}

int64_t rh_runtime_started_ms(const struct rh_runtime *rt)
{
    return rt->started_ms;
}

uint16_t rh_runtime_port(const struct rh_runtime *rt)
{
    return rt->port;
}

const char *rh_runtime_admin_path(const struct rh_runtime *rt)
{
    return rt->admin_path;
}

void rh_runtime_stop(struct rh_runtime *rt)
{
    if (atomic_exchange(&rt->stop_requested, true)) return;
    for (uint32_t i = 0; i < rt->shard_count; i++)
        eventfd_write(rt->shards[i]->event_fd, 1);
}

void rh_runtime_join(struct rh_runtime *rt)
{
    for (uint32_t i = 0; i < rt->shard_count; i++)
        pthread_join(rt->shards[i]->thread, NULL);
    struct rh_runtime_stats st;
    rh_runtime_stats(rt, &st);
    rh_log_info("runtime",
                "stopped: %llu connections served (%llu refused, %llu moved), %llu bytes in, %llu "
                "out, %llu blobs, %llu wake-ups, %llu full-ring turns, %llu receive-buffer "
                "shortages, %llu heap allocations",
                (unsigned long long)st.conns_accepted, (unsigned long long)st.conns_rejected,
                (unsigned long long)st.conns_moved, (unsigned long long)st.bytes_in,
                (unsigned long long)st.bytes_out, (unsigned long long)st.blobs_in,
                (unsigned long long)st.wakes_sent, (unsigned long long)st.ring_full,
                (unsigned long long)st.recv_enobufs, (unsigned long long)rh_alloc_calls());
    pthread_barrier_destroy(&rt->start_barrier);
    free_shards(rt);
    rh_free(rt);
}

void rh_runtime_stats(const struct rh_runtime *rt, struct rh_runtime_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < rt->shard_count; i++) {
        const struct rh_shard_stats *st = &rt->shards[i]->stats;
#define SUM(field) out->field += atomic_load_explicit(&st->field, memory_order_relaxed)
        SUM(conns_live);
        SUM(conns_accepted);
        SUM(conns_closed);
        SUM(conns_rejected);
        SUM(conn_ops_inflight);
        SUM(bytes_in);
        SUM(bytes_out);
        SUM(blobs_in);
        SUM(wakes_sent);
        SUM(wakes_received);
        SUM(recv_enobufs);
        SUM(ring_full);
        SUM(conns_moved);
#undef SUM
    }
}

static uint32_t usable_cpus(int *cpus, uint32_t cpus_max)
{
    cpu_set_t set;
    uint32_t n = 0;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE && n < cpus_max; cpu++)
            if (CPU_ISSET(cpu, &set)) cpus[n++] = cpu;
    }
    if (!n) cpus[n++] = 0;
    return n;
}

static int open_listener(const struct rh_cfg *cfg, uint16_t port, int *fd_out)
{
    int one = 1, err;
    struct sockaddr_storage addr = cfg->listen_sockaddr;
    if (addr.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&addr)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)&addr)->sin_port = htons(port);

    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
        bind(fd, (const struct sockaddr *)&addr, cfg->listen_sockaddr_len) == -1 ||
        listen(fd, (int)cfg->backlog) == -1) {
        err = -errno;
        rh_log_error("runtime", "cannot listen on %s:%u: %s", cfg->listen_addr, port,
                     strerror(-err));
        goto err_close_fd;
    }
    *fd_out = fd;
    return 0;

err_close_fd:
    close(fd);
    return err;
}

static int make_shards(struct rh_runtime *rt, const int *cpus, uint32_t cpu_count)
{
    const struct rh_cfg *cfg = rt->cfg;
    uint32_t n = rt->shard_count;
    uint32_t conns_max = conns_max_for_fd_limit(cfg);
    rt->shards = rh_calloc(n, sizeof(*rt->shards));
    if (cfg->max_conns_per_ip) rt->ip_conns = rh_calloc(RH_IP_SLOTS, sizeof(*rt->ip_conns));
    for (uint32_t i = 0; i < n; i++) {
        struct rh_shard *s = rh_alloc_aligned(64, sizeof(*s));
        memset(s, 0, sizeof(*s));
        s->rt = rt;
        s->idx = i;
        s->cpu = cpus[i % cpu_count];
        s->ring_fd = -1;
        for (uint32_t k = 0; k < RH_LISTENERS_MAX; k++)
            s->listeners[k].fd = -1;
        s->conns_max = conns_max / n ? conns_max / n : 1;
        s->in = rh_calloc(n, sizeof(*s->in));
        s->out = rh_calloc(n, sizeof(*s->out));
        s->outbox = rh_calloc(n, sizeof(*s->outbox));
        s->event_fd = eventfd(0, EFD_CLOEXEC);
        rt->shards[i] = s;
        if (s->event_fd == -1) return -errno;
    }
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < n; j++) {
            if (i == j) continue;
            int err = rh_spsc_init(&rt->shards[i]->out[j], cfg->spsc_capacity);
            if (err) return err;
            rt->shards[j]->in[i] = rt->shards[i]->out[j];
        }
    }

    /* The first listener fixes the port (which may have been 0: any free port). */
    int fd;
    int err = open_listener(cfg, cfg->port, &fd);
    if (err) return err;
    add_listener(rt->shards[0], fd, RH_LISTENER_MAIN);
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) == -1) return -errno;
    rt->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    for (uint32_t i = 1; i < n; i++) {
        err = open_listener(cfg, rt->port, &fd);
        if (err) return err;
        add_listener(rt->shards[i], fd, RH_LISTENER_MAIN);
    }
    return open_side_listeners(rt);
}

static void add_listener(struct rh_shard *s, int fd, enum rh_listener_kind kind)
{
    RH_ASSERT(s->listener_count < RH_LISTENERS_MAX);
    s->listeners[s->listener_count++] = (struct rh_listener){.fd = fd, .kind = (uint8_t)kind};
}

/* The operator port and the admin socket, both on shard 0: they carry little traffic. */
static int open_side_listeners(struct rh_runtime *rt)
{
    const struct rh_cfg *cfg = rt->cfg;
    int fd, err;
    if (cfg->metrics_port) {
        err = open_listener(cfg, (uint16_t)cfg->metrics_port, &fd);
        if (err) return err;
        add_listener(rt->shards[0], fd, RH_LISTENER_OPERATOR);
        rh_log_info("runtime", "operator port (/metrics, /dashboard) on %s:%u", cfg->listen_addr,
                    cfg->metrics_port);
    }
    if (!*cfg->admin_socket) return 0;
    /* The path, with %p standing for the port. */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    size_t len = 0;
    for (const char *p = cfg->admin_socket; *p && len < sizeof(path) - 1; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            len += (size_t)snprintf(path + len, sizeof(path) - len, "%u", rt->port);
            p++;
        } else {
            path[len++] = *p;
        }
    }
    if (len >= sizeof(path) - 1) {
        rh_log_error("runtime", "--admin-socket: the path is longer than %zu bytes",
                     sizeof(path) - 2);
        return -ENAMETOOLONG;
    }
    path[len] = '\0';
    err = open_admin_socket(path, &fd);
    if (err) return err;
    add_listener(rt->shards[0], fd, RH_LISTENER_ADMIN);
    rt->admin_path = rh_alloc(len + 1);
    memcpy(rt->admin_path, path, len + 1);
    rh_log_info("runtime", "admin socket at %s (ringhub-ctl -s %s)", path, path);
    return 0;
}

/* Whether a server answers on the admin socket at @sa. A server killed a moment ago may still
 * take connections (its io_uring is torn down after the process), but it never answers, and
 * soon refuses: wait for one or the other, up to STALE_PROBE_MS. */
static bool admin_socket_is_live(const struct sockaddr_un *sa)
{
    for (int waited = 0; waited < STALE_PROBE_MS; waited += 100) {
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe == -1) return false;
        bool is_answering = false;
        if (connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
            static const char help[] = "help --json\n";
            struct pollfd p = {.fd = probe, .events = POLLIN};
            char answer[1];
            /* Bytes back, not just readable: a dead server's pending connections are reset. */
            is_answering = write(probe, help, sizeof(help) - 1) == sizeof(help) - 1 &&
                           poll(&p, 1, 100) == 1 && read(probe, answer, 1) == 1;
        } else {
            close(probe);
            return false; /* refused (or gone): nobody serves it */
        }
        close(probe);
        if (is_answering) return true;
    }
    rh_log_warn("runtime", "the admin socket takes connections but nobody answers: replacing it");
    return false;
}

/* A Unix socket at @path only our uid (and root) may connect to: mode 0600 is set before
 * listen(2), so nobody connects while it is wider. A socket file left by a server that is gone
 * is replaced; a live one, or a file of another kind, is an error. */
static int open_admin_socket(const char *path, int *fd_out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            rh_log_error("runtime", "--admin-socket %s exists and is not a socket", path);
            return -EEXIST;
        }
        if (admin_socket_is_live(&sa)) {
            rh_log_error("runtime", "--admin-socket %s is in use by a running server", path);
            return -EADDRINUSE;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) return -errno;
    int err = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        err = -errno;
    } else if (chmod(path, 0600) == -1 || listen(fd, 64) == -1) {
        err = -errno;
        unlink(path);
    }
    if (err) {
        rh_log_error("runtime", "cannot open the admin socket %s: %s", path, strerror(-err));
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

static void free_shards(struct rh_runtime *rt)
{
    if (!rt->shards) return;
    uint32_t n = rt->shard_count;
    for (uint32_t i = 0; i < n; i++) {
        struct rh_shard *s = rt->shards[i];
        if (!s) continue;
        /* Blobs still in the rings were pushed after their receiver stopped. */
        for (uint32_t j = 0; j < n; j++) {
            if (!s->in[j]) continue;
            struct rh_blob *b;
            while ((b = rh_spsc_pop(s->in[j])))
                rh_shard_blob_discard(b);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        struct rh_shard *s = rt->shards[i];
        if (!s) continue;
        for (uint32_t j = 0; j < n; j++)
            if (s->out[j]) rh_spsc_free(s->out[j]);
        if (s->ring_fd != -1) io_uring_queue_exit(&s->ring);
        for (uint32_t k = 0; k < s->listener_count; k++)
            if (s->listeners[k].fd != -1) close(s->listeners[k].fd);
        if (s->event_fd != -1) close(s->event_fd);
        rh_free(s->in);
        rh_free(s->out);
        rh_free(s->outbox);
        rh_free(s);
    }
    rh_free(rt->shards);
    rt->shards = NULL;
    rh_free((void *)rt->ip_conns);
    rt->ip_conns = NULL;
    if (rt->admin_path) unlink(rt->admin_path);
    rh_free(rt->admin_path);
    rt->admin_path = NULL;
}

static uint32_t conns_max_for_fd_limit(const struct rh_cfg *cfg)
{
    /* Descriptors beyond connections: listeners, eventfds, rings, logs, later Redis and mesh. */
    const rlim_t reserve = 64 + 4 * RH_SHARDS_MAX;
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == -1) return cfg->max_conns;
    if (lim.rlim_cur < cfg->max_conns + reserve && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max; /* take what the hard limit allows */
        if (setrlimit(RLIMIT_NOFILE, &lim) == -1) getrlimit(RLIMIT_NOFILE, &lim);
    }
    if (lim.rlim_cur >= cfg->max_conns + reserve) return cfg->max_conns;
    uint32_t capped = lim.rlim_cur > reserve + 1 ? (uint32_t)(lim.rlim_cur - reserve) : 1;
    rh_log_info("runtime", "connections capped at %u by the descriptor limit (%llu; ulimit -n)",
                capped, (unsigned long long)lim.rlim_cur);
    return capped;
}
