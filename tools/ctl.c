/*
 * tools/ctl.c - ringhub-ctl: the command-line client of ringhub's admin socket. It sends one
 * command line (its words quoted as the protocol wants, transports/admin.h) and prints the
 * answer: a text answer up to the empty line that ends it, or the one line of a JSON answer.
 * What the commands do and how their answers look is the server's business (shards/admin.c);
 * this program only carries a line there and an answer back, within a deadline.
 *
 *   ringhub-ctl [-s PATH | -p PORT] [--json] [--timeout S] COMMAND [ARG...]
 *
 * Exit status 0 for an ok answer; 1 for an error answer, a command line it cannot send, or no
 * whole answer (no socket, no answer in time, the server closed early), with a message on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "transports/admin.h"

#ifndef RH_VERSION_STRING
#define RH_VERSION_STRING "0.1.0"
#endif

#define PORT_DEF        "5000" /* ringhub's own default --port (core/cfg.c) */
#define TIMEOUT_DEF_S   10
#define TIMEOUT_MAX_S   86400
#define REPLY_BYTES_MAX (64u << 20) /* stats of 64 shards: tens of KB; 100,000 connections: MBs */
#define READ_BYTES_MIN  (64u << 10)

/* The answer as it comes in. */
struct reply {
    struct rh_buf *buf;
    bool is_json;    /* a JSON line is awaited (--json, and not a text error in its place) */
    size_t scan_idx; /* bytes of buf already looked at for line ends */
    size_t line_idx; /* where the line being received starts */
    size_t body_len; /* bytes to print: the text before its empty line, or the JSON line */
    bool is_done;
};

static int usage(const char *why);
static int parse_options(int argc, char **argv, const char **path, const char **port, bool *is_json,
                         int *timeout_ms);
static int build_line(char **words, int word_count, bool *is_json, struct rh_buf **linep);
static int connect_socket(const char *path, int64_t deadline_ms);
static int send_line(int fd, const struct rh_buf *line, int64_t deadline_ms);
static int receive_reply(int fd, struct reply *r, int64_t deadline_ms);
static void scan_reply(struct reply *r);
static void describe_failure(const char *path, int err, int timeout_ms);
static int print_reply(const struct reply *r);
static bool is_json_ok(const uint8_t *data, size_t len);
static bool has_prefix(const uint8_t *data, size_t len, const char *prefix);
static int write_stream(FILE *f, const void *data, size_t len);
static int64_t now_ms(void);

static const char manual[] =
    "NAME\n"
    "    ringhub-ctl - ask a running ringhub server what it is doing, and steer it\n"
    "\n"
    "SYNOPSIS\n"
    "    ringhub-ctl [-s PATH | -p PORT] [--json] [--timeout S] COMMAND [ARG...]\n"
    "    ringhub-ctl --help | --version\n"
    "\n"
    "DESCRIPTION\n"
    "    ringhub-ctl connects to the admin Unix socket of a ringhub server, sends COMMAND and\n"
    "    its arguments as one line, and prints the answer: tables or \"key: value\" lines, or\n"
    "    with --json one line of JSON ({\"ok\":true,...} or {\"ok\":false,\"error\":\"...\"}).\n"
    "    Every answer is gathered from all of the server's shards.\n"
    "\n"
    "    Options come before COMMAND. From COMMAND on, every word is sent as it is (quoted\n"
    "    when it holds blanks, quotes or backslashes), the command's own flags too (--hub,\n"
    "    --limit, --timeout): ringhub-ctl drain --timeout 60 gives the server 60 seconds.\n"
    "\n"
    "    The socket is mode 0600, and the server also checks the caller's uid: its own, or\n"
    "    one given to it with --admin-uids. Run ringhub-ctl as the user that runs ringhub.\n"
    "\n"
    "COMMANDS\n"
    "    help\n"
    "        The commands the server knows, with their usage.\n"
    "    stats\n"
    "        Totals and per shard: TCP connections; sessions by transport (WebSockets,\n"
    "        Server-Sent Events, long polling, plain EventSource) and protocol (json,\n"
    "        messagepack); groups owned; hub messages in and out, in all and over the last\n"
    "        second; bytes in and out; bytes waiting in send queues; connections closed by\n"
    "        reason (rate, too_large, handshake_timeout, slow_consumer, kicked,\n"
    "        client_timeout); bytes and frames dropped, joins refused. Also the node, the\n"
    "        uptime and the io_uring path in use.\n"
    "    shards\n"
    "        Per shard: CPU, io_uring path, connections, loop utilisation over the last\n"
    "        second, ring depth (blobs waiting), blobs received and wake-ups received.\n"
    "    connections [--hub H] [--limit N]\n"
    "        The connections (of hub H), oldest first, at most N (default 100, at most\n"
    "        100000): id, hub, transport, protocol, user, shard, named groups, queued bytes,\n"
    "        age; then how many matched in all and whether the list was cut.\n"
    "    conn <connectionId>\n"
    "        One connection: the same fields, with the names of its groups and the peer\n"
    "        address (none for long polling).\n"
    "    groups [--hub H] [--limit N]\n"
    "        The groups with members (of hub H), sorted by hub and name, at most N: members\n"
    "        and how many shards hold them; then how many in all.\n"
    "    group <hub> <group>\n"
    "        One group: owner shard, members in all and per shard, messages sent to it, in\n"
    "        all and per second, and the delivery path.\n"
    "    kick <connectionId> [reason]\n"
    "        Close that connection. Its client first gets a hub Close message carrying the\n"
    "        reason (default \"kicked by an operator\") that does not allow reconnecting.\n"
    "    drain [--timeout S]\n"
    "        Stop accepting connections, answer 503 on /readyz, send every client a Close\n"
    "        that allows reconnecting, and exit with status 0 once they are gone or after S\n"
    "        seconds (default 30). The answer (how many were connected) comes at once.\n"
    "    loglevel <error|warn|info|debug>\n"
    "        Set the server's log level.\n"
    "    config\n"
    "        Every option by its flag name with its value; the access key shows only as\n"
    "        \"(set)\" or empty.\n"
    "    nodes\n"
    "        The nodes of the cluster (--redis) as the node directory in Redis lists them:\n"
    "        id, address, uptime, seconds since its last heartbeat.\n"
    "    redis\n"
    "        Per shard: the Redis endpoint, whether its command and subscriber connections\n"
    "        are up, channels subscribed, replies pending, bytes kept during an outage,\n"
    "        envelopes published, received and kept off Redis, dropped and lost ones,\n"
    "        reconnects.\n"
    "\n"
    "OPTIONS\n"
    "    -s, --socket PATH\n"
    "        The admin socket. Default: /tmp/ringhub-PORT.sock when -p is given, else\n"
    "        $RINGHUB_ADMIN_SOCKET, else /tmp/ringhub-" PORT_DEF ".sock.\n"
    "    -p, --port PORT\n"
    "        The server's main port, which names its default socket /tmp/ringhub-PORT.sock\n"
    "        (default " PORT_DEF ", ringhub's own default port).\n"
    "    --json\n"
    "        Ask for the answer as one line of JSON (added to the command as --json).\n"
    "    --timeout S\n"
    "        Give up when the whole answer has not come S seconds after starting (default\n"
    "        10; fractions allowed). A command the server already took may still run.\n"
    "    -h, --help\n"
    "        Print this manual.\n"
    "    --version\n"
    "        Print the version.\n"
    "\n"
    "EXIT STATUS\n"
    "    0   the server answered ok\n"
    "    1   the server answered with an error (in text on stderr; with --json the\n"
    "        {\"ok\":false,...} line on stdout), or the socket could not be reached, or no\n"
    "        whole answer came in time, or the server closed the connection before the\n"
    "        answer ended, or the command line was wrong\n"
    "\n"
    "ENVIRONMENT\n"
    "    RINGHUB_ADMIN_SOCKET\n"
    "        The admin socket, when neither -s nor -p is given.\n"
    "\n"
    "FILES\n"
    "    /tmp/ringhub-PORT.sock\n"
    "        The server's default admin socket, PORT being the main port it bound; ringhub\n"
    "        --admin-socket PATH puts it elsewhere, --admin-socket '' turns it off.\n"
    "\n"
    "EXAMPLES\n"
    "    ringhub-ctl stats\n"
    "    ringhub-ctl -p 8080 connections --hub chat --limit 20\n"
    "    ringhub-ctl --json group chat room1 | jq .group.members\n"
    "    ringhub-ctl kick AAAAAAAAAAC9vXH6QmLJKA \"maintenance, back in 5 minutes\"\n"
    "    ringhub-ctl -s /run/ringhub/admin.sock drain --timeout 60\n"
    "    ringhub-ctl loglevel debug\n"
    "    printf 'stats\\n' | socat - UNIX-CONNECT:/tmp/ringhub-" PORT_DEF ".sock\n";

int main(int argc, char **argv)
{
    const char *path = NULL, *port = NULL;
    bool is_json = false;
    int timeout_ms = TIMEOUT_DEF_S * 1000;
    int rc = parse_options(argc, argv, &path, &port, &is_json, &timeout_ms);
    if (rc >= 0) return rc;
    if (optind == argc) return usage("no command");

    char default_path[64];
    if (!path && !port) {
        const char *env = getenv("RINGHUB_ADMIN_SOCKET");
        if (env && *env) path = env;
    }
    if (!path) {
        snprintf(default_path, sizeof(default_path), "/tmp/ringhub-%s.sock",
                 port ? port : PORT_DEF);
        path = default_path;
    }

    struct rh_buf *line = NULL;
    rc = build_line(argv + optind, argc - optind, &is_json, &line);
    if (rc) return rc;

    /* A write to a server that went away fails with EPIPE and is reported, not fatal. */
    signal(SIGPIPE, SIG_IGN);
    int64_t deadline_ms = now_ms() + timeout_ms;
    int fd = connect_socket(path, deadline_ms);
    if (fd < 0) goto err_unref_line;
    if (send_line(fd, line, deadline_ms)) goto err_close_fd;
    rh_buf_unref(line);

    struct reply r = {.buf = rh_buf_new(READ_BYTES_MIN), .is_json = is_json};
    rc = receive_reply(fd, &r, deadline_ms);
    close(fd);
    if (rc) {
        describe_failure(path, rc, timeout_ms);
        /* What came of an error before the server closed may say why it did. */
        if (rc == -ECONNABORTED && has_prefix(r.buf->data, r.buf->len, "error: "))
            write_stream(stderr, r.buf->data, r.buf->len);
    } else {
        rc = print_reply(&r);
    }
    rh_buf_unref(r.buf);
    return rc ? 1 : 0;

err_close_fd:
    close(fd);
err_unref_line:
    rh_buf_unref(line);
    return 1;
}

static int usage(const char *why)
{
    fprintf(stderr,
            "ringhub-ctl: %s\n"
            "usage: ringhub-ctl [-s PATH | -p PORT] [--json] [--timeout S] COMMAND [ARG...]\n"
            "       (ringhub-ctl --help for the commands and options)\n",
            why);
    return 1;
}

/* Reads the options before COMMAND, leaving optind at COMMAND. Returns -1 to go on, or the exit
 * status when there is nothing more to do (--help, --version, a bad option). */
static int parse_options(int argc, char **argv, const char **path, const char **port, bool *is_json,
                         int *timeout_ms)
{
    enum { OPT_JSON = 256, OPT_TIMEOUT, OPT_VERSION };
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"port", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, OPT_JSON},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    char why[128];
    int opt;
    opterr = 0; /* our own messages, with the usage line */
    /* "+": the first word that is not an option is COMMAND, and the rest is its line. */
    while ((opt = getopt_long(argc, argv, "+:hs:p:", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (!*optarg) return usage("-s takes the socket's path");
            *path = optarg;
            break;
        case 'p': {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || *optarg == '-' || n < 1 || n > 65535)
                return usage("-p takes a port number from 1 to 65535");
            *port = optarg;
            break;
        }
        case OPT_JSON:
            *is_json = true;
            break;
        case OPT_TIMEOUT: {
            char *end;
            double s = strtod(optarg, &end);
            /* Written so that NaN fails too. */
            if (end == optarg || *end || !(s > 0 && s <= TIMEOUT_MAX_S))
                return usage("--timeout takes seconds, more than 0 and at most 86400");
            *timeout_ms = (int)(s * 1000 + 0.999);
            break;
        }
        case 'h':
            return write_stream(stdout, manual, sizeof(manual) - 1) ? 1 : 0;
        case OPT_VERSION:
            printf("ringhub-ctl %s\n", RH_VERSION_STRING);
            return 0;
        case ':':
            snprintf(why, sizeof(why), "%.64s needs a value", argv[optind - 1]);
            return usage(why);
        default:
            if (optopt && optopt < 256)
                snprintf(why, sizeof(why), "unknown option -%c", optopt);
            else
                snprintf(why, sizeof(why), "unknown option %.64s", argv[optind - 1]);
            return usage(why);
        }
    }
    return -1;
}

/* The command line in *@linep: @words quoted and joined by spaces, then --json when *@is_json
 * and no word is --json already, then LF. A --json among @words sets *@is_json: the server
 * answers in JSON whenever a word of the line is --json, so `ringhub-ctl stats --json` must read
 * a JSON answer too. Returns 0, or the exit status 1 (with a message) for a line the protocol
 * cannot carry. */
static int build_line(char **words, int word_count, bool *is_json, struct rh_buf **linep)
{
    char why[128];
    bool has_json_word = false;
    for (int i = 0; i < word_count; i++) {
        has_json_word |= !strcmp(words[i], "--json");
        /* Quotes cannot hide a control byte: a LF inside a word would end the line there and
         * send the rest as a second command. */
        for (const char *c = words[i]; *c; c++) {
            if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f) {
                snprintf(why, sizeof(why),
                         "word %d holds a control byte (a line end?), which no command line may",
                         i + 1);
                return usage(why);
            }
        }
    }

    struct rh_buf *line = rh_buf_new(256);
    for (int i = 0; i < word_count; i++) {
        if (i) rh_buf_append(&line, " ", 1);
        rh_admin_quote(&line, words[i], strlen(words[i]));
        if (line->len > RH_ADMIN_LINE_MAX) break; /* too long already; stop copying */
    }
    if (*is_json && !has_json_word) rh_buf_append(&line, " --json", 7);
    *is_json |= has_json_word;
    if (line->len > RH_ADMIN_LINE_MAX) {
        rh_buf_unref(line);
        snprintf(why, sizeof(why), "the command line is longer than the %d bytes a line may have",
                 RH_ADMIN_LINE_MAX);
        return usage(why);
    }
    rh_buf_append(&line, "\n", 1);
    *linep = line;
    return 0;
}

/* Connects to the socket at @path, waiting at most until @deadline_ms when the server's accept
 * queue is full. Returns the socket, or -errno after saying why on stderr. */
static int connect_socket(const char *path, int64_t deadline_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t path_len = strlen(path);
    if (path_len >= sizeof(sa.sun_path)) {
        fprintf(stderr,
                "ringhub-ctl: %s: the path is longer than the %zu bytes a socket's may be\n", path,
                sizeof(sa.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, path_len + 1);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        int err = -errno;
        fprintf(stderr, "ringhub-ctl: socket: %s\n", strerror(-err));
        return err;
    }
    /* A Unix connect blocks while the listener's accept queue is full (a server that stopped
     * accepting), for at most the send timeout, then fails with EAGAIN. */
    int64_t left_ms = deadline_ms - now_ms();
    if (left_ms < 1) left_ms = 1;
    struct timeval tv = {.tv_sec = left_ms / 1000, .tv_usec = (left_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    int rc;
    /* An interrupted Unix connect has not connected (it only waits for room in the queue). */
    while ((rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa))) == -1 && errno == EINTR) {
    }
    if (rc == 0) return fd;

    int err = -errno;
    const char *hint = "";
    if (err == -ENOENT)
        hint = "; is ringhub running? Its socket is /tmp/ringhub-PORT.sock unless it was started "
               "with --admin-socket: give it with --socket PATH or --port PORT";
    else if (err == -ECONNREFUSED)
        hint = "; nothing accepts there: the file may be left by a server that is gone (is "
               "ringhub running?), or not be a socket. Give the live one with --socket PATH";
    else if (err == -EACCES || err == -EPERM)
        hint = "; the admin socket is mode 0600, owned by the user that runs ringhub: run "
               "ringhub-ctl as that user";
    else if (err == -EAGAIN)
        hint = " (the server is not accepting connections: stuck or overloaded? --timeout)";
    fprintf(stderr, "ringhub-ctl: cannot connect to %s: %s%s\n", path,
            err == -EAGAIN ? "timed out" : strerror(-err), hint);
    close(fd);
    return err;
}

/* Writes all of @line to @fd by @deadline_ms. Returns 0, or -errno after saying why. */
static int send_line(int fd, const struct rh_buf *line, int64_t deadline_ms)
{
    size_t done = 0;
    while (done < line->len) {
        ssize_t n = send(fd, line->data + done, line->len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) {
            done += (size_t)n;
            continue;
        }
        if (errno == EINTR) continue;
        int err = -errno;
        if (err == -EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int64_t left_ms = deadline_ms - now_ms();
            int ready = left_ms > 0 ? poll(&p, 1, (int)left_ms) : 0;
            if (ready > 0 || (ready == -1 && errno == EINTR)) continue;
            err = ready == 0 ? -ETIMEDOUT : -errno;
        }
        fprintf(stderr, "ringhub-ctl: cannot send the command: %s%s\n", strerror(-err),
                err == -EPIPE || err == -ECONNRESET ? " (the server closed the connection)" : "");
        return err;
    }
    return 0;
}

/* Reads into @r until its answer has ended, or @deadline_ms. Returns 0; -ETIMEDOUT;
 * -ECONNABORTED when the server closed the connection first; -EMSGSIZE past REPLY_BYTES_MAX;
 * or -errno of a failed read. What has come stays in r->buf. */
static int receive_reply(int fd, struct reply *r, int64_t deadline_ms)
{
    while (!r->is_done) {
        int64_t left_ms = deadline_ms - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = left_ms > 0 ? poll(&p, 1, (int)left_ms) : 0;
        if (ready == -1 && errno == EINTR) continue;
        if (ready == -1) return -errno;
        if (ready == 0) return -ETIMEDOUT;

        /* Read into all the room there is, with at least READ_BYTES_MIN of it; the buffer
         * doubles, so a reply of n bytes costs O(n) copying. */
        uint32_t room = r->buf->cap - r->buf->len;
        if (room < READ_BYTES_MIN) {
            rh_buf_extend(&r->buf, READ_BYTES_MIN);
            r->buf->len -= READ_BYTES_MIN;
            room = r->buf->cap - r->buf->len;
        }
        if (room > REPLY_BYTES_MAX + 1 - r->buf->len) room = REPLY_BYTES_MAX + 1 - r->buf->len;
        ssize_t n = recv(fd, r->buf->data + r->buf->len, room, MSG_DONTWAIT);
        if (n == -1 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n == -1) return -errno;
        if (n == 0) return -ECONNABORTED;
        r->buf->len += (uint32_t)n;
        scan_reply(r);
        if (!r->is_done && r->buf->len > REPLY_BYTES_MAX) return -EMSGSIZE;
    }
    return 0;
}

/* Looks at the bytes that came since the last call for the end of the answer. */
static void scan_reply(struct reply *r)
{
    const uint8_t *data = r->buf->data;
    size_t len = r->buf->len;
    for (size_t i = r->scan_idx; i < len; i++) {
        if (data[i] != '\n') continue;
        size_t start = r->line_idx;
        size_t line_len = i - start;
        if (line_len && data[i - 1] == '\r') line_len--;
        r->line_idx = i + 1;
        /* A session the server refuses (uid not allowed, too many commands queued) gets a text
         * error even when JSON was asked; read that to its empty line. */
        if (r->is_json && !(start == 0 && has_prefix(data, line_len, "error: "))) {
            r->body_len = i + 1;
            r->is_done = true;
            return;
        }
        r->is_json = false;
        if (line_len == 0) {
            r->body_len = start;
            r->is_done = true;
            return;
        }
    }
    r->scan_idx = len;
}

/* Says on stderr why no whole answer came (@err from receive_reply). */
static void describe_failure(const char *path, int err, int timeout_ms)
{
    if (err == -ETIMEDOUT) {
        fprintf(stderr,
                "ringhub-ctl: %s: no whole answer within %g s (--timeout); the server may be "
                "stuck or busy, and the command may still run\n",
                path, timeout_ms / 1000.0);
    } else if (err == -ECONNABORTED) {
        fprintf(stderr,
                "ringhub-ctl: %s: the server closed the connection before the answer "
                "ended\n",
                path);
    } else if (err == -EMSGSIZE) {
        fprintf(stderr,
                "ringhub-ctl: %s: the answer is larger than %u MiB (ask for less: "
                "--limit)\n",
                path, REPLY_BYTES_MAX >> 20);
    } else {
        fprintf(stderr, "ringhub-ctl: %s: cannot read the answer: %s\n", path, strerror(-err));
    }
}

/* Prints a whole answer. Returns 0 for an ok answer; -EPROTO for an error answer (a text error
 * goes to stderr, a JSON one to stdout, as it is); or -errno when stdout failed. */
static int print_reply(const struct reply *r)
{
    const uint8_t *body = r->buf->data;
    size_t len = r->body_len;
    if (r->is_json) {
        if (write_stream(stdout, body, len)) return -EIO;
        return is_json_ok(body, len) ? 0 : -EPROTO;
    }
    if (!has_prefix(body, len, "error:")) return write_stream(stdout, body, len) ? -EIO : 0;

    write_stream(stderr, body, len);
    if (has_prefix(body, len, "error: permission denied")) {
        fputs("ringhub-ctl: run ringhub-ctl as the user that runs ringhub, or start ringhub "
              "with --admin-uids listing your uid\n",
              stderr);
    }
    return -EPROTO;
}

/* Whether the JSON object at @data says "ok":true. The server writes "ok" as its first member;
 * anything else (false, another member first, no JSON at all) is not ok. */
static bool is_json_ok(const uint8_t *data, size_t len)
{
    static const char *const tokens[] = {"{", "\"ok\"", ":", "true"};
    size_t at = 0;
    for (size_t t = 0; t < sizeof(tokens) / sizeof(tokens[0]); t++) {
        while (at < len && (data[at] == ' ' || data[at] == '\t' || data[at] == '\r'))
            at++;
        size_t token_len = strlen(tokens[t]);
        if (len - at < token_len || memcmp(data + at, tokens[t], token_len)) return false;
        at += token_len;
    }
    /* "true" must stand alone, not start "truex". */
    while (at < len && (data[at] == ' ' || data[at] == '\t'))
        at++;
    return at < len && (data[at] == ',' || data[at] == '}');
}

static bool has_prefix(const uint8_t *data, size_t len, const char *prefix)
{
    size_t prefix_len = strlen(prefix);
    return len >= prefix_len && !memcmp(data, prefix, prefix_len);
}

/* Writes @len bytes to @f and flushes it. Returns 0, or -errno after saying why (except for a
 * reader that went away: `ringhub-ctl connections | head` ends quietly). */
static int write_stream(FILE *f, const void *data, size_t len)
{
    errno = 0;
    if ((len && fwrite(data, 1, len, f) != len) || fflush(f) == EOF) {
        int err = errno ? -errno : -EIO;
        if (err != -EPIPE && f != stderr)
            fprintf(stderr, "ringhub-ctl: cannot write to stdout: %s\n", strerror(-err));
        return err;
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
