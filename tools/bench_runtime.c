/*
 * tools/bench_runtime.c - ringhub-bench-runtime: the floor of the shard runtime before any
 * protocol, against tests/integration/rt_server (a line protocol on the runtime):
 *   accept: connections opened, greeted ("HELLO ...") and closed per second, 64 at a time;
 *   echo:   C connections each keeping one "ECHO <64 bytes>" in flight, round trips per
 *           second and round-trip latency percentiles.
 * With --pid, the server's CPU time over each phase is read from /proc and reported as work
 * per server CPU-second. One client thread on epoll; it reports its own CPU time too.
 *
 * Usage: ringhub-bench-runtime --port P [--pid PID] [--conns C] [--seconds S] [--accepts N]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"

#define ECHO_PAYLOAD "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define LAT_SAMPLES  (1 << 20)

struct opts {
    int port, pid, conns, seconds, accepts;
};

struct echo_conn {
    int fd;
    int64_t sent_ns;
    size_t have;
    char buf[256];
};

static double server_cpu_s(int pid)
{
    if (pid <= 0) return 0;
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *p = strrchr(text, ')');
    unsigned long utime = 0, stime = 0;
    /* Fields after the command: state is 3rd, utime 14th, stime 15th. */
    if (p) sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int connect_to(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until a full line has arrived; returns 0 or -1. */
static int read_hello(int fd)
{
    char buf[256];
    size_t have = 0;
    while (!memchr(buf, '\n', have)) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - have);
        if (n <= 0) return -1;
        have += (size_t)n;
    }
    return 0;
}

static void bench_accept(const struct opts *o)
{
    int fds[64];
    int done = 0, failed = 0;
    double cpu0 = server_cpu_s(o->pid), self0 = self_cpu_s();
    int64_t t0 = rh_clock_now_ns();
    while (done + failed < o->accepts) {
        int batch = 0;
        for (; batch < 64 && done + failed + batch < o->accepts; batch++)
            fds[batch] = connect_to(o->port);
        for (int i = 0; i < batch; i++) {
            if (fds[i] == -1 || read_hello(fds[i]) != 0)
                failed++;
            else
                done++;
            if (fds[i] != -1) close(fds[i]);
        }
    }
    double secs = (double)(rh_clock_now_ns() - t0) / 1e9;
    double cpu = server_cpu_s(o->pid) - cpu0, self = self_cpu_s() - self0;
    printf("accept: %d connections in %.2f s = %.0f conn/s (failed %d); server CPU %.2f s "
           "(%.0f conn per CPU-second); client CPU %.2f s\n",
           done, secs, done / secs, failed, cpu, cpu > 0 ? done / cpu : 0, self);
    printf("{\"bench\":\"runtime-accept\",\"conns\":%d,\"failed\":%d,\"seconds\":%.3f,"
           "\"conn_per_s\":%.0f,\"server_cpu_s\":%.3f,\"client_cpu_s\":%.3f}\n",
           done, failed, secs, done / secs, cpu, self);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void send_echo(struct echo_conn *c)
{
    static const char line[] = "ECHO " ECHO_PAYLOAD "\n";
    c->sent_ns = rh_clock_now_ns();
    if (write(c->fd, line, sizeof(line) - 1) != (ssize_t)sizeof(line) - 1) c->sent_ns = 0;
}

static void bench_echo(const struct opts *o)
{
    struct echo_conn *conns = calloc((size_t)o->conns, sizeof(*conns));
    int64_t *lat = malloc(LAT_SAMPLES * sizeof(*lat));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int open = 0;
    for (int i = 0; i < o->conns; i++) {
        conns[i].fd = connect_to(o->port);
        if (conns[i].fd == -1 || read_hello(conns[i].fd) != 0) continue;
        fcntl(conns[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
        open++;
    }
    double cpu0 = server_cpu_s(o->pid), self0 = self_cpu_s();
    int64_t t0 = rh_clock_now_ns(), end = t0 + (int64_t)o->seconds * 1000000000;
    uint64_t trips = 0, samples = 0, errors = 0;
    for (int i = 0; i < o->conns; i++)
        if (conns[i].fd != -1) send_echo(&conns[i]);

    struct epoll_event events[256];
    while (rh_clock_now_ns() < end) {
        int n = epoll_wait(ep, events, 256, 100);
        for (int e = 0; e < n; e++) {
            struct echo_conn *c = events[e].data.ptr;
            ssize_t got = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
            if (got <= 0) {
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            c->have += (size_t)got;
            char *nl = memchr(c->buf, '\n', c->have);
            if (!nl) continue;
            size_t line = (size_t)(nl - c->buf) + 1;
            if (line != sizeof(ECHO_PAYLOAD) || memcmp(c->buf, ECHO_PAYLOAD, line - 1) != 0)
                errors++;
            memmove(c->buf, c->buf + line, c->have - line);
            c->have -= line;
            trips++;
            if (samples < LAT_SAMPLES) lat[samples++] = rh_clock_now_ns() - c->sent_ns;
            send_echo(c);
        }
    }
    double secs = (double)(rh_clock_now_ns() - t0) / 1e9;
    double cpu = server_cpu_s(o->pid) - cpu0, self = self_cpu_s() - self0;
    qsort(lat, samples, sizeof(*lat), cmp_i64);
    double p50 = samples ? lat[samples / 2] / 1e3 : 0,
           p99 = samples ? lat[samples * 99 / 100] / 1e3 : 0;
    printf("echo: %d connections, %.0f round trips/s, p50 %.1f us, p99 %.1f us, errors %llu; "
           "server CPU %.2f s (%.0f round trips per CPU-second); client CPU %.2f s%s\n",
           open, trips / secs, p50, p99, (unsigned long long)errors, cpu, cpu > 0 ? trips / cpu : 0,
           self, self > secs * 0.95 ? " (client saturated: the figure is a lower bound)" : "");
    printf("{\"bench\":\"runtime-echo\",\"conns\":%d,\"seconds\":%.3f,\"round_trips_per_s\":%.0f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f,\"errors\":%llu,\"server_cpu_s\":%.3f,"
           "\"client_cpu_s\":%.3f}\n",
           open, secs, trips / secs, p50, p99, (unsigned long long)errors, cpu, self);
    for (int i = 0; i < o->conns; i++)
        if (conns[i].fd != -1) close(conns[i].fd);
    close(ep);
    free(lat);
    free(conns);
}

int main(int argc, char **argv)
{
    struct opts o = {.port = 0, .pid = 0, .conns = 100, .seconds = 5, .accepts = 20000};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            o.port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pid"))
            o.pid = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--conns"))
            o.conns = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            o.seconds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--accepts"))
            o.accepts = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (o.port <= 0 || o.conns <= 0 || o.seconds <= 0 || o.accepts < 0) {
        fprintf(stderr, "usage: %s --port P [--pid PID] [--conns C] [--seconds S] [--accepts N]\n",
                argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (o.accepts) bench_accept(&o);
    bench_echo(&o);
    return 0;
}
