/*
 * tools/ctl.c - ringhub-ctl: the command-line client of ringhub's admin socket. It sends one
 * command line (its arguments quoted as the protocol wants) and prints the answer: a text
 * answer up to the empty line that ends it, or the one line of a JSON answer.
 *
 *   ringhub-ctl [-s PATH | -p PORT] [--json] [--timeout S] COMMAND [ARG...]
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "transports/admin.h"

#ifndef RH_VERSION_STRING
#define RH_VERSION_STRING "0.1.0"
#endif

#define DEFAULT_PORT      "5000"
#define DEFAULT_TIMEOUT_S 10
#define REPLY_MAX         (64u << 20) /* bytes of an answer (connections --limit 100000) */

static const char manual[] =
    "NAME\n"
    "    ringhub-ctl - ask a running ringhub server what it is doing, and steer it\n"
    "\n"
    "SYNOPSIS\n"
    "    ringhub-ctl [-s PATH | -p PORT] [--json] [--timeout S] COMMAND [ARG...]\n"
    "\n"
    "DESCRIPTION\n"
    "    ringhub-ctl connects to the admin Unix socket of a ringhub server, sends COMMAND with\n"
    "    its arguments as one line, and prints the answer: a table or \"key: value\" lines,\n"
    "    or with --json one line of JSON ({\"ok\":true,...} or {\"ok\":false,\"error\":...}).\n"
    "    The socket is mode 0600, and the server also checks the caller's uid (its own, or\n"
    "    one of --admin-uids): run ringhub-ctl as the user that runs ringhub.\n"
    "    Every answer is gathered from all of the server's shards.\n"
    "\n"
    "COMMANDS\n"
    "    help                        the commands the server knows\n"
    "    stats                       totals and per shard: connections by transport and\n"
    "                                protocol, groups, messages in and out (totals and per\n"
    "                                second), bytes, send-queue bytes, closes and drops by reason\n"
    "    shards                      per shard: CPU, loop utilisation, ring depth, io_uring path\n"
    "    connections [--hub H] [--limit N]\n"
    "                                the connections, oldest first (N: 100 by default)\n"
    "    conn <connectionId>         one connection: hub, transport, protocol, user, groups,\n"
    "                                queued bytes, age, peer address\n"
    "    groups [--hub H] [--limit N]\n"
    "                                the groups with members: members, shards, messages/s\n"
    "    group <hub> <group>         one group: members per shard, owner shard, messages,\n"
    "                                messages per second, delivery path\n"
    "    kick <connectionId> [reason]\n"
    "                                close that connection; its client gets a hub Close with\n"
    "                                the reason (default \"kicked by an operator\")\n"
    "    drain [--timeout S]         stop accepting, send every client a Close that allows\n"
    "                                reconnecting, and exit when they are gone or after S\n"
    "                                seconds (30 by default); /readyz answers 503 meanwhile\n"
    "    loglevel <error|warn|info|debug>\n"
    "                                set the server's log level\n"
    "    config                      the effective configuration; the access key is masked\n"
    "\n"
    "OPTIONS\n"
    "    -s, --socket PATH   the admin socket (default: $RINGHUB_ADMIN_SOCKET, else\n"
    "                        /tmp/ringhub-PORT.sock)\n"
    "    -p, --port PORT     the server's port, naming /tmp/ringhub-PORT.sock (default 5000)\n"
    "    --json              ask for one line of JSON instead of text\n"
    "    --timeout S         give up when no answer has come in S seconds (default 10)\n"
    "    -h, --help          print this manual\n"
    "    --version           print the version\n"
    "    Options come before COMMAND; what follows COMMAND (its own flags too, like --hub) is\n"
    "    sent as it is.\n"
    "\n"
    "EXIT STATUS\n"
    "    0   the server answered the command\n"
    "    1   the server answered with an error, or the socket could not be reached, or no\n"
    "        whole answer came in time, or the command line was wrong\n"
    "\n"
    "ENVIRONMENT\n"
    "    RINGHUB_ADMIN_SOCKET   the socket, when -s and -p are not given\n"
    "\n"
    "FILES\n"
    "    /tmp/ringhub-PORT.sock   the default admin socket (ringhub --admin-socket)\n"
    "\n"
    "EXAMPLES\n"
    "    ringhub-ctl stats\n"
    "    ringhub-ctl -p 8080 connections --hub chat --limit 20\n"
    "    ringhub-ctl --json group chat room1\n"
    "    ringhub-ctl kick AAAAAAAAAAC9vXH6QmLJKA \"maintenance, back in 5 minutes\"\n"
    "    ringhub-ctl drain --timeout 60\n"
    "    echo stats | socat - UNIX-CONNECT:/tmp/ringhub-5000.sock\n";

static int usage(const char *why)
{
    fprintf(stderr,
            "ringhub-ctl: %s\nusage: ringhub-ctl [-s PATH | -p PORT] [--json] [--timeout S] "
            "COMMAND [ARG...] (see --help)\n",
            why);
    return 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes all of @len bytes, or returns -errno. */
static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Where the answer ends in @data: after the empty line of a text answer, or the line end of a
 * JSON one; 0 while it has not ended. */
static size_t answer_end(const uint8_t *data, size_t len, bool is_json)
{
    if (is_json) {
        const uint8_t *lf = memchr(data, '\n', len);
        return lf ? (size_t)(lf - data) + 1 : 0;
    }
    for (size_t i = 0; i + 1 < len; i++)
        if (data[i] == '\n' && data[i + 1] == '\n') return i + 2;
    return len == 1 && data[0] == '\n' ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *path = getenv("RINGHUB_ADMIN_SOCKET");
    const char *port = NULL;
    bool is_json = false;
    long timeout_s = DEFAULT_TIMEOUT_S;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(manual, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("ringhub-ctl %s\n", RH_VERSION_STRING);
            return 0;
        } else if (!strcmp(a, "--json")) {
            is_json = true;
        } else if ((!strcmp(a, "-s") || !strcmp(a, "--socket")) && has_value) {
            path = argv[++i];
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--port")) && has_value) {
            port = argv[++i];
            if (strspn(port, "0123456789") != strlen(port) || !*port || strlen(port) > 5)
                return usage("-p takes a port number");
        } else if (!strcmp(a, "--timeout") && has_value) {
            char *end;
            timeout_s = strtol(argv[++i], &end, 10);
            if (*end || timeout_s < 1 || timeout_s > 86400)
                return usage("--timeout takes seconds from 1 to 86400");
        } else {
            char why[160];
            snprintf(why, sizeof(why), "unknown option %.64s (or it needs a value)", a);
            return usage(why);
        }
    }
    if (i == argc) return usage("no command");

    char default_path[64];
    if (port || !path) {
        snprintf(default_path, sizeof(default_path), "/tmp/ringhub-%s.sock",
                 port ? port : DEFAULT_PORT);
        path = default_path;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) return usage("the socket path is too long");
    memcpy(sa.sun_path, path, strlen(path) + 1);

    /* The command line: every word quoted as the protocol wants, then --json if asked. */
    struct rh_buf *line = rh_buf_new(256);
    for (int w = i; w < argc; w++) {
        if (w > i) rh_buf_append(&line, " ", 1);
        rh_admin_quote(&line, argv[w], strlen(argv[w]));
    }
    if (is_json) rh_buf_append(&line, " --json", 7);
    rh_buf_append(&line, "\n", 1);
    if (line->len > RH_ADMIN_LINE_MAX + 1) {
        rh_buf_unref(line);
        return usage("the command is longer than the 4096 bytes a line may have");
    }

    signal(SIGPIPE, SIG_IGN);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        int err = errno;
        fprintf(stderr, "ringhub-ctl: cannot connect to %s: %s%s\n", path, strerror(err),
                err == ENOENT || err == ECONNREFUSED
                    ? " (is ringhub running? give its socket with -s PATH or its port with -p)"
                : err == EACCES ? " (run ringhub-ctl as the user that runs ringhub)"
                                : "");
        rh_buf_unref(line);
        if (fd != -1) close(fd);
        return 1;
    }
    int err = write_all(fd, line->data, line->len);
    rh_buf_unref(line);
    if (err) {
        fprintf(stderr, "ringhub-ctl: cannot send to %s: %s\n", path, strerror(-err));
        close(fd);
        return 1;
    }

    struct rh_buf *reply = rh_buf_new(4096);
    size_t end = 0;
    int64_t deadline = now_ms() + timeout_s * 1000;
    int status = 1;
    const char *failure = NULL;
    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            failure = "no whole answer in time (--timeout)";
            break;
        }
        uint8_t *at = rh_buf_extend(&reply, 65536);
        ssize_t n = read(fd, at, 65536);
        reply->len -= 65536 - (uint32_t)(n > 0 ? n : 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            failure = n < 0 ? strerror(errno)
                            : "the server closed the connection before the "
                              "answer ended";
            break;
        }
        end = answer_end(reply->data, reply->len, is_json);
        if (end) break;
        /* An error refusing the session (a uid not allowed) is text, even when JSON was asked. */
        if (is_json && reply->len >= 7 && !memcmp(reply->data, "error: ", 7)) {
            end = answer_end(reply->data, reply->len, false);
            if (end) break;
        }
        if (reply->len > REPLY_MAX) {
            failure = "the answer is larger than 64 MiB";
            break;
        }
    }
    close(fd);
    if (failure) {
        fprintf(stderr, "ringhub-ctl: %s: %s\n", path, failure);
    } else if (end >= 7 && !memcmp(reply->data, "error: ", 7)) {
        /* A text error: the message to stderr, without the empty line that ends it. */
        fwrite(reply->data, 1, end - 1, stderr);
    } else if (is_json && end >= 11 && !memcmp(reply->data, "{\"ok\":false", 11)) {
        fwrite(reply->data, 1, end, stdout);
    } else {
        fwrite(reply->data, 1, is_json ? end : end - 1, stdout);
        status = 0;
    }
    rh_buf_unref(reply);
    return status;
}
