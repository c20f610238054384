/* tests/unit/test_cfg.c - core/cfg: defaults, every option type's parsing and limits, the
 * config file format and its error messages, flags over the file, RINGHUB_IO_OLDEST, and that
 * nothing leaks (the allocator's live-byte count returns to zero; ASan checks the rest). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/cfg.h"
#include "tests/harness/check.h"

/* Checks that @err contains @want, printing @err when it does not. */
#define CHECK_ERR(err, want)                                                                       \
    rh_check_report(strstr((err), (want)) != NULL, __FILE__, __LINE__, "err has \"" want "\"",     \
                    (err))

/* Runs rh_cfg_parse_args() on "ringhub" followed by the given arguments. */
#define PARSE(cfg, err, ...)                                                                       \
    parse_argv((cfg), (err), (const char *[]){"ringhub", __VA_ARGS__, NULL})
#define PARSE_NONE(cfg, err) parse_argv((cfg), (err), (const char *[]){"ringhub", NULL})

static char tmp_dir[64];

static int parse_argv(struct rh_cfg *cfg, char *err, const char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    err[0] = '\0';
    return rh_cfg_parse_args(cfg, argc, (char **)argv, err, 256);
}

/* Writes @len bytes of @text to a new file in tmp_dir and returns its path in @path. */
static void write_file(char *path, size_t path_size, const char *name, const char *text, size_t len)
{
    snprintf(path, path_size, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(text, 1, len, f);
    fclose(f);
}

static void test_defaults(void)
{
    struct rh_cfg cfg;
    rh_cfg_defaults(&cfg);
    rh_cfg_validate(&cfg);

    CHECK(strcmp(cfg.listen_addr, "127.0.0.1") == 0);
    CHECK_EQ(cfg.listen_sockaddr.ss_family, AF_INET);
    CHECK_EQ(cfg.listen_sockaddr_len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&cfg.listen_sockaddr;
    CHECK_EQ(ntohl(in4->sin_addr.s_addr), 0x7f000001);
    CHECK_EQ(in4->sin_port, 0);
    CHECK_EQ(cfg.port, 5000);
    CHECK_EQ(cfg.shard_count, 0);
    CHECK_EQ(cfg.io_oldest, false);
    CHECK_EQ(cfg.log_level, RH_LOG_INFO);
    CHECK_EQ(cfg.node_id, 0);
    CHECK_EQ(cfg.max_conns, 100000);
    CHECK_EQ(cfg.recv_buf_size, 4096);
    CHECK_EQ(cfg.recv_buf_count, 1024);
    CHECK_EQ(cfg.ring_entries, 1024);
    CHECK_EQ(cfg.spsc_capacity, 4096);
    CHECK_EQ(cfg.backlog, 4096);
    CHECK_EQ(cfg.shutdown_grace_ms, 5000);

    rh_cfg_free(&cfg);
    CHECK(cfg.listen_addr == NULL);
    rh_cfg_free(&cfg);
}

static void test_set_numbers(void)
{
    struct rh_cfg cfg;
    char err[256];
    rh_cfg_defaults(&cfg);

    CHECK_EQ(rh_cfg_set(&cfg, "port", "0", err, sizeof(err)), 0);
    CHECK_EQ(cfg.port, 0);
    CHECK_EQ(rh_cfg_set(&cfg, "port", "65535", err, sizeof(err)), 0);
    CHECK_EQ(cfg.port, 65535);
    CHECK_EQ(rh_cfg_set(&cfg, "port", "00080", err, sizeof(err)), 0);
    CHECK_EQ(cfg.port, 80);

    /* Junk: the field keeps its value. */
    static const char *const junk[] = {"", " 5", "5 ", "+5", "-1", "0x10", "5k", "1e3", "٣"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        CHECK_EQ(rh_cfg_set(&cfg, "port", junk[i], err, sizeof(err)), -EINVAL);
        CHECK_ERR(err, "port: ");
        CHECK_ERR(err, "is not a decimal number");
        CHECK_EQ(cfg.port, 80);
    }

    /* Range, overflow of the range, of 32 bits and of 64 bits. */
    static const char *const too_big[] = {"65536", "4294967295", "4294967296",
                                          "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(too_big) / sizeof(too_big[0]); i++) {
        CHECK_EQ(rh_cfg_set(&cfg, "port", too_big[i], err, sizeof(err)), -EINVAL);
        CHECK_ERR(err, "out of range 0..65535");
        CHECK_EQ(cfg.port, 80);
    }
    CHECK_EQ(rh_cfg_set(&cfg, "max-conns", "0", err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "max-conns: 0 is out of range 1..10000000");
    CHECK_EQ(rh_cfg_set(&cfg, "max-conns", "10000000", err, sizeof(err)), 0);
    CHECK_EQ(cfg.max_conns, 10000000);
    CHECK_EQ(rh_cfg_set(&cfg, "node-id", "4096", err, sizeof(err)), -EINVAL);
    CHECK_EQ(rh_cfg_set(&cfg, "node-id", "4095", err, sizeof(err)), 0);
    CHECK_EQ(cfg.node_id, 4095);
    CHECK_EQ(rh_cfg_set(&cfg, "shards", "65", err, sizeof(err)), -EINVAL);
    CHECK_EQ(rh_cfg_set(&cfg, "shards", "64", err, sizeof(err)), 0);
    CHECK_EQ(cfg.shard_count, 64);
    CHECK_EQ(rh_cfg_set(&cfg, "backlog", "0", err, sizeof(err)), -EINVAL);
    CHECK_EQ(rh_cfg_set(&cfg, "shutdown-grace-ms", "600001", err, sizeof(err)), -EINVAL);
    CHECK_EQ(rh_cfg_set(&cfg, "shutdown-grace-ms", "0", err, sizeof(err)), 0);
    CHECK_EQ(cfg.shutdown_grace_ms, 0);

    /* Powers of two, at and past both ends. */
    CHECK_EQ(rh_cfg_set(&cfg, "recv-buf-size", "1000", err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "recv-buf-size: 1000 is not a power of two");
    CHECK_EQ(rh_cfg_set(&cfg, "recv-buf-size", "256", err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "out of range 512..65536");
    CHECK_EQ(rh_cfg_set(&cfg, "recv-buf-size", "131072", err, sizeof(err)), -EINVAL);
    CHECK_EQ(rh_cfg_set(&cfg, "recv-buf-size", "512", err, sizeof(err)), 0);
    CHECK_EQ(cfg.recv_buf_size, 512);
    CHECK_EQ(rh_cfg_set(&cfg, "recv-buf-count", "32768", err, sizeof(err)), 0);
    CHECK_EQ(cfg.recv_buf_count, 32768);
    CHECK_EQ(rh_cfg_set(&cfg, "recv-buf-count", "8", err, sizeof(err)), -EINVAL);
    CHECK_EQ(rh_cfg_set(&cfg, "ring-entries", "64", err, sizeof(err)), 0);
    CHECK_EQ(cfg.ring_entries, 64);
    CHECK_EQ(rh_cfg_set(&cfg, "ring-entries", "96", err, sizeof(err)), -EINVAL);
    CHECK_EQ(rh_cfg_set(&cfg, "spsc-capacity", "1048576", err, sizeof(err)), 0);
    CHECK_EQ(cfg.spsc_capacity, 1048576);
    CHECK_EQ(rh_cfg_set(&cfg, "spsc-capacity", "2097152", err, sizeof(err)), -EINVAL);

    /* A number option needs a value; @err may be absent. */
    CHECK_EQ(rh_cfg_set(&cfg, "port", NULL, err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "port: needs a value");
    CHECK_EQ(rh_cfg_set(&cfg, "port", "x", NULL, 0), -EINVAL);
    rh_cfg_validate(&cfg);
    rh_cfg_free(&cfg);
}

static void test_set_other_types(void)
{
    struct rh_cfg cfg;
    char err[256];
    rh_cfg_defaults(&cfg);

    static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"};
    static const char *const no[] = {"false", "no", "off", "0", "False", "OFF"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        CHECK_EQ(rh_cfg_set(&cfg, "io-oldest", yes[i], err, sizeof(err)), 0);
        CHECK_EQ(cfg.io_oldest, true);
        CHECK_EQ(rh_cfg_set(&cfg, "io-oldest", no[i], err, sizeof(err)), 0);
        CHECK_EQ(cfg.io_oldest, false);
    }
    CHECK_EQ(rh_cfg_set(&cfg, "io-oldest", NULL, err, sizeof(err)), 0);
    CHECK_EQ(cfg.io_oldest, true);
    CHECK_EQ(rh_cfg_set(&cfg, "io-oldest", "2", err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "io-oldest: '2' is not");
    CHECK_EQ(rh_cfg_set(&cfg, "io-oldest", "", err, sizeof(err)), -EINVAL);
    CHECK_EQ(cfg.io_oldest, true);

    CHECK_EQ(rh_cfg_set(&cfg, "log-level", "debug", err, sizeof(err)), 0);
    CHECK_EQ(cfg.log_level, RH_LOG_DEBUG);
    CHECK_EQ(rh_cfg_set(&cfg, "log-level", "error", err, sizeof(err)), 0);
    CHECK_EQ(cfg.log_level, RH_LOG_ERROR);
    CHECK_EQ(rh_cfg_set(&cfg, "log-level", "verbose", err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "log-level: 'verbose' is not error, warn, info or debug");
    CHECK_EQ(cfg.log_level, RH_LOG_ERROR);

    /* Text options keep their value only when it passes the option's check. */
    CHECK(strcmp(cfg.hub_prefix, "/hubs/") == 0);
    CHECK(strcmp(cfg.hubs, "") == 0);
    CHECK(strcmp(cfg.cors_origins, "*") == 0);
    CHECK_EQ(rh_cfg_set(&cfg, "hub-prefix", "/", err, sizeof(err)), 0);
    CHECK_EQ(rh_cfg_set(&cfg, "hub-prefix", "/api/v2.hubs/", err, sizeof(err)), 0);
    static const char *const bad_prefixes[] = {"", "hubs/", "/hubs", "/a//b/", "/a b/", "/%2f/"};
    for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++)
        CHECK_EQ(rh_cfg_set(&cfg, "hub-prefix", bad_prefixes[i], err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "hub-prefix: '/%2f/': only letters");
    CHECK(strcmp(cfg.hub_prefix, "/api/v2.hubs/") == 0);
    CHECK_EQ(rh_cfg_set(&cfg, "hubs", "chat,news_2,a-b.c~", err, sizeof(err)), 0);
    static const char *const bad_lists[] = {",", "chat,", ",chat", "a,,b", "a b", "a/b"};
    for (size_t i = 0; i < sizeof(bad_lists) / sizeof(bad_lists[0]); i++)
        CHECK_EQ(rh_cfg_set(&cfg, "hubs", bad_lists[i], err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "hubs: 'a/b': hub names take only");
    CHECK(strcmp(cfg.hubs, "chat,news_2,a-b.c~") == 0);
    CHECK(strcmp(cfg.events_hub, "events") == 0);
    CHECK_EQ(rh_cfg_set(&cfg, "events-hub", "feed", err, sizeof(err)), 0);
    static const char *const bad_hubs[] = {"", "a,b", "a/b"};
    for (size_t i = 0; i < sizeof(bad_hubs) / sizeof(bad_hubs[0]); i++)
        CHECK_EQ(rh_cfg_set(&cfg, "events-hub", bad_hubs[i], err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "events-hub: 'a/b': hub names take only");
    CHECK(strcmp(cfg.events_hub, "feed") == 0);
    /* Transport timeouts: a poll is held at most 99 s, under the client's 100 s timeout. */
    CHECK_EQ(cfg.poll_timeout_ms, 90000);
    CHECK_EQ(cfg.disconnect_timeout_ms, 15000);
    CHECK_EQ(rh_cfg_set(&cfg, "poll-timeout-ms", "100000", err, sizeof(err)), -EINVAL);
    CHECK_EQ(cfg.events_history, 1000);
    CHECK_EQ(rh_cfg_set(&cfg, "events-history", "0", err, sizeof(err)), -EINVAL);
    CHECK_EQ(
        rh_cfg_set(&cfg, "cors-origins", "https://a.example,http://[::1]:3000", err, sizeof(err)),
        0);
    CHECK_EQ(rh_cfg_set(&cfg, "cors-origins", "", err, sizeof(err)), 0);
    static const char *const bad_origins[] = {"a.example", "https://", "https://a,", "http://a/b",
                                              "*,https://a"};
    for (size_t i = 0; i < sizeof(bad_origins) / sizeof(bad_origins[0]); i++)
        CHECK_EQ(rh_cfg_set(&cfg, "cors-origins", bad_origins[i], err, sizeof(err)), -EINVAL);
    CHECK(strcmp(cfg.cors_origins, "") == 0);

    CHECK_EQ(rh_cfg_set(&cfg, "no-such-thing", "1", err, sizeof(err)), -ENOENT);
    CHECK_ERR(err, "no-such-thing: unknown option");
    CHECK_EQ(rh_cfg_set(&cfg, "config", "x.conf", err, sizeof(err)), -ENOENT);
    CHECK_ERR(err, "config: only on the command line");
    CHECK_EQ(rh_cfg_set(&cfg, "help", NULL, err, sizeof(err)), -ENOENT);
    rh_cfg_validate(&cfg);
    rh_cfg_free(&cfg);
}

static void test_listen(void)
{
    struct rh_cfg cfg;
    char err[256];
    rh_cfg_defaults(&cfg);

    CHECK_EQ(rh_cfg_set(&cfg, "listen", "::1", err, sizeof(err)), 0);
    CHECK(strcmp(cfg.listen_addr, "::1") == 0);
    CHECK_EQ(cfg.listen_sockaddr.ss_family, AF_INET6);
    CHECK_EQ(cfg.listen_sockaddr_len, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&cfg.listen_sockaddr;
    CHECK(memcmp(&in6->sin6_addr, &in6addr_loopback, sizeof(in6addr_loopback)) == 0);
    CHECK_EQ(in6->sin6_port, 0);
    rh_cfg_validate(&cfg);

    CHECK_EQ(rh_cfg_set(&cfg, "listen", "::", err, sizeof(err)), 0);
    CHECK_EQ(cfg.listen_sockaddr.ss_family, AF_INET6);
    CHECK_EQ(rh_cfg_set(&cfg, "listen", "0.0.0.0", err, sizeof(err)), 0);
    CHECK_EQ(cfg.listen_sockaddr.ss_family, AF_INET);
    CHECK_EQ(cfg.listen_sockaddr_len, sizeof(struct sockaddr_in));
    CHECK_EQ(rh_cfg_set(&cfg, "listen", "2001:db8::7", err, sizeof(err)), 0);
    CHECK_EQ(rh_cfg_set(&cfg, "listen", "::ffff:10.0.0.1", err, sizeof(err)), 0);
    CHECK_EQ(cfg.listen_sockaddr.ss_family, AF_INET6);

    static const char *const bad[] = {"",          "localhost", "1.2.3",     "1.2.3.256",
                                      "10.0.0.1 ", "[::1]",     "::1%lo",    "127.0.0.1:80",
                                      "::g",       "1::2::3",   "010.0.0.01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(rh_cfg_set(&cfg, "listen", bad[i], err, sizeof(err)), -EINVAL);
        CHECK_ERR(err, "is not an IPv4 or IPv6 address");
    }
    /* A bad address leaves the last good one and its sockaddr. */
    CHECK(strcmp(cfg.listen_addr, "::ffff:10.0.0.1") == 0);
    rh_cfg_validate(&cfg);
    rh_cfg_free(&cfg);
}

static void test_load_string(void)
{
    struct rh_cfg cfg;
    char err[256];
    rh_cfg_defaults(&cfg);

    const char *good = "\xef\xbb\xbf# ringhub.conf\n"
                       "; another comment\n"
                       "\n"
                       "   # indented comment\n"
                       "port = 6000\n"
                       "listen=::1\r\n"
                       "io-oldest = yes ; inline comment\n"
                       "log-level:debug\n"
                       "recv-buf-size =   8192   \n"
                       "shards = 4"; /* no final newline */
    CHECK_EQ(rh_cfg_load_string(&cfg, good, err, sizeof(err)), 0);
    CHECK_EQ(cfg.port, 6000);
    CHECK(strcmp(cfg.listen_addr, "::1") == 0);
    CHECK_EQ(cfg.io_oldest, true);
    CHECK_EQ(cfg.log_level, RH_LOG_DEBUG);
    CHECK_EQ(cfg.recv_buf_size, 8192);
    CHECK_EQ(cfg.shard_count, 4);
    CHECK_EQ(cfg.max_conns, 100000);
    rh_cfg_validate(&cfg);
    CHECK_EQ(rh_cfg_load_string(&cfg, "", err, sizeof(err)), 0);
    CHECK_EQ(rh_cfg_load_string(&cfg, "\n\n# only comments\n", err, sizeof(err)), 0);

    /* Each bad text with the message it must give, line number included. */
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"port = 1\n\nport = 70000\n", "<string>:3: port: given twice"},
        {"# c\nport = 70000\n", "<string>:2: port: 70000 is out of range 0..65535"},
        {"port = 1\nbogus = 2\n", "<string>:2: bogus: unknown option"},
        {"port = 1\n[main]\n", "<string>:2: sections are not supported"},
        {"[main]\nport = 1\n", "<string>:1: sections are not supported"},
        {"\xef\xbb\xbf[main]\n", "<string>:1: sections are not supported"},
        {"port = 1\n  backlog = 5\n", "<string>:2: indented line"},
        {"\n\nio-oldest\n", "<string>:3: expected name = value"},
        {"port ; = 1\n", "<string>:1: expected name = value"},
        {"port =\n", "<string>:1: port: '' is not a decimal number"},
        {"= 5\n", "<string>:1: : unknown option"},
        {"config = other.conf\n", "<string>:1: config: only on the command line"},
        {"listen = 127.0.0.1 # not a comment\n", "<string>:1: listen: '127.0.0.1 # not"},
        {"log-level = loud\r\n", "<string>:1: log-level: 'loud' is not"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_EQ(rh_cfg_load_string(&cfg, bad[i].text, err, sizeof(err)), -EINVAL);
        rh_check_report(strncmp(err, bad[i].want, strlen(bad[i].want)) == 0, __FILE__, __LINE__,
                        bad[i].want, err);
        rh_cfg_validate(&cfg);
    }

    /* A line longer than inih's buffer is an error, not two lines. */
    char long_line[400];
    memset(long_line, 'x', sizeof(long_line));
    memcpy(long_line, "port = 1\nlisten = ", 18);
    long_line[sizeof(long_line) - 1] = '\0';
    CHECK_EQ(rh_cfg_load_string(&cfg, long_line, err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "<string>:2: line too long");

    /* Lines before the bad one stay applied. */
    CHECK_EQ(rh_cfg_load_string(&cfg, "backlog = 7\nbacklog = 0\n", err, sizeof(err)), -EINVAL);
    CHECK_EQ(cfg.backlog, 7);
    rh_cfg_free(&cfg);
}

static void test_load_file(void)
{
    struct rh_cfg cfg;
    char err[256], path[128];
    rh_cfg_defaults(&cfg);

    const char *text = "port = 7000\nnode-id = 12\n";
    write_file(path, sizeof(path), "good.conf", text, strlen(text));
    CHECK_EQ(rh_cfg_load_file(&cfg, path, err, sizeof(err)), 0);
    CHECK_EQ(cfg.port, 7000);
    CHECK_EQ(cfg.node_id, 12);

    text = "port = 7001\n\nnode-id = 4096\n";
    write_file(path, sizeof(path), "bad.conf", text, strlen(text));
    CHECK_EQ(rh_cfg_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
    char want[200];
    snprintf(want, sizeof(want), "%s:3: node-id: 4096 is out of range 0..4095", path);
    CHECK(strcmp(err, want) == 0);
    CHECK_EQ(cfg.port, 7001);

    text = "port = 1\0port = 2\n";
    write_file(path, sizeof(path), "nul.conf", text, 19);
    CHECK_EQ(rh_cfg_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "contains a NUL byte");

    /* Exactly at the limit is fine (all comment), one byte more is not. */
    char *big = malloc(RH_CFG_FILE_BYTES_MAX + 1);
    memset(big, '#', RH_CFG_FILE_BYTES_MAX + 1);
    write_file(path, sizeof(path), "big.conf", big, RH_CFG_FILE_BYTES_MAX + 1);
    CHECK_EQ(rh_cfg_load_file(&cfg, path, err, sizeof(err)), -EFBIG);
    CHECK_ERR(err, "larger than");
    write_file(path, sizeof(path), "big.conf", big, RH_CFG_FILE_BYTES_MAX);
    CHECK_EQ(rh_cfg_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "line too long");
    free(big);

    snprintf(path, sizeof(path), "%s/missing.conf", tmp_dir);
    CHECK_EQ(rh_cfg_load_file(&cfg, path, err, sizeof(err)), -ENOENT);
    CHECK_ERR(err, "missing.conf: No such file or directory");
    CHECK_EQ(rh_cfg_load_file(&cfg, tmp_dir, err, sizeof(err)), -EISDIR);
    rh_cfg_validate(&cfg);
    rh_cfg_free(&cfg);
}

static void test_parse_args(void)
{
    struct rh_cfg cfg;
    char err[256], path[128];

    rh_cfg_defaults(&cfg);
    CHECK_EQ(PARSE_NONE(&cfg, err), 0);
    CHECK_EQ(cfg.port, 5000);
    rh_cfg_free(&cfg);

    rh_cfg_defaults(&cfg);
    CHECK_EQ(PARSE(&cfg, err, "--port=0", "--listen", "::", "--shards", "3", "--io-oldest",
                   "--log-level=warn", "--node-id=9", "--max-conns", "50", "--recv-buf-size=1024",
                   "--recv-buf-count=64", "--ring-entries=128", "--spsc-capacity=256",
                   "--backlog=10", "--shutdown-grace-ms=1", "--port", "6001"),
             0);
    CHECK_EQ(cfg.port, 6001);
    CHECK(strcmp(cfg.listen_addr, "::") == 0);
    CHECK_EQ(cfg.shard_count, 3);
    CHECK_EQ(cfg.io_oldest, true);
    CHECK_EQ(cfg.log_level, RH_LOG_WARN);
    CHECK_EQ(cfg.node_id, 9);
    CHECK_EQ(cfg.max_conns, 50);
    CHECK_EQ(cfg.recv_buf_size, 1024);
    CHECK_EQ(cfg.recv_buf_count, 64);
    CHECK_EQ(cfg.ring_entries, 128);
    CHECK_EQ(cfg.spsc_capacity, 256);
    CHECK_EQ(cfg.backlog, 10);
    CHECK_EQ(cfg.shutdown_grace_ms, 1);
    rh_cfg_validate(&cfg);

    /* Called again on the same struct: getopt starts over. A unique prefix is accepted. */
    CHECK_EQ(PARSE(&cfg, err, "--io-oldest=off", "--backl=70"), 0);
    CHECK_EQ(cfg.io_oldest, false);
    CHECK_EQ(cfg.backlog, 70);
    rh_cfg_free(&cfg);

    /* Flags win over the file whichever comes first on the command line. */
    const char *text = "port = 7100\nbacklog = 77\nlog-level = debug\n";
    write_file(path, sizeof(path), "args.conf", text, strlen(text));
    rh_cfg_defaults(&cfg);
    CHECK_EQ(PARSE(&cfg, err, "--port=7200", "--config", path), 0);
    CHECK_EQ(cfg.port, 7200);
    CHECK_EQ(cfg.backlog, 77);
    CHECK_EQ(cfg.log_level, RH_LOG_DEBUG);
    rh_cfg_free(&cfg);
    rh_cfg_defaults(&cfg);
    CHECK_EQ(PARSE(&cfg, err, "--config", path, "--port=7300"), 0);
    CHECK_EQ(cfg.port, 7300);
    CHECK_EQ(cfg.backlog, 77);
    rh_cfg_free(&cfg);

    const struct {
        const char *args[4], *want;
    } bad[] = {
        {{"--port=70000"}, "--port: 70000 is out of range"},
        {{"--port"}, "--port needs a value"},
        {{"--bogus"}, "unknown or ambiguous option '--bogus'"},
        {{"--re=4"}, "unknown or ambiguous option '--re=4'"},
        {{"-p", "5"}, "unknown option '-p'"},
        {{"--help=1"}, "--help takes no value"},
        {{"--port=1", "extra"}, "unexpected argument 'extra'"},
        {{"--io-oldest", "no"}, "unexpected argument 'no'"},
        {{"--io-oldest=maybe"}, "--io-oldest: 'maybe' is not"},
        {{"--listen=localhost"}, "--listen: 'localhost' is not an IPv4 or IPv6 address"},
        {{"--config", "/nonexistent/ringhub.conf"}, "/nonexistent/ringhub.conf: No such file"},
        {{"--config", path, "--bogus"}, "unknown or ambiguous option '--bogus'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *argv[6] = {"ringhub"};
        for (int j = 0; j < 4 && bad[i].args[j]; j++)
            argv[j + 1] = bad[i].args[j];
        rh_cfg_defaults(&cfg);
        CHECK_EQ(parse_argv(&cfg, err, argv), -EINVAL);
        rh_check_report(strstr(err, bad[i].want) != NULL, __FILE__, __LINE__, bad[i].want, err);
        rh_cfg_free(&cfg);
    }

    /* A bad file line is reported with the file's name and line. */
    text = "port = 1\nmax-conns = lots\n";
    write_file(path, sizeof(path), "bad-args.conf", text, strlen(text));
    rh_cfg_defaults(&cfg);
    CHECK_EQ(PARSE(&cfg, err, "--config", path), -EINVAL);
    CHECK_ERR(err, "bad-args.conf:2: max-conns: 'lots' is not a decimal number");
    rh_cfg_free(&cfg);
}

static void test_help_version(void)
{
    struct rh_cfg cfg;
    char err[256];

    /* --help wins over everything else, even a bad file, and prints to stdout. */
    rh_cfg_defaults(&cfg);
    CHECK_EQ(PARSE(&cfg, err, "--port=1", "--config", "/nonexistent", "--help"), 1);
    CHECK_EQ(cfg.port, 5000);
    rh_cfg_free(&cfg);
    rh_cfg_defaults(&cfg);
    CHECK_EQ(PARSE(&cfg, err, "--version"), 1);
    rh_cfg_free(&cfg);

    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    rh_cfg_print_usage(out, "ringhub");
    fclose(out);
    static const char *const want[] = {
        "Usage: ringhub",
        "--listen=ADDR",
        "--port=N",
        "(0..65535, default 5000)",
        "--io-oldest[=BOOL]",
        "--log-level=LEVEL",
        "--recv-buf-size=N",
        "(power of two 512..65536, default 4096)",
        "--shutdown-grace-ms=N",
        "--config=FILE",
        "--help",
        "--version",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        rh_check_report(strstr(text, want[i]) != NULL, __FILE__, __LINE__, want[i], NULL);
    free(text);
}

static void test_env_io_oldest(void)
{
    struct rh_cfg cfg;
    char err[256];
    static const struct {
        const char *value;
        bool is_on;
    } cases[] = {{"1", true},   {"true", true}, {"yes", true},  {"0", false},
                 {"no", false}, {"", false},    {"junk", false}};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setenv("RINGHUB_IO_OLDEST", cases[i].value, 1);
        rh_cfg_defaults(&cfg);
        CHECK_EQ(PARSE_NONE(&cfg, err), 0);
        CHECK_EQ(cfg.io_oldest, cases[i].is_on);
        rh_cfg_free(&cfg);
    }
    /* The variable only turns the path on; the flag can too. */
    setenv("RINGHUB_IO_OLDEST", "1", 1);
    rh_cfg_defaults(&cfg);
    CHECK_EQ(PARSE(&cfg, err, "--io-oldest=false"), 0);
    CHECK_EQ(cfg.io_oldest, true);
    rh_cfg_free(&cfg);
    unsetenv("RINGHUB_IO_OLDEST");
    rh_cfg_defaults(&cfg);
    CHECK_EQ(PARSE_NONE(&cfg, err), 0);
    CHECK_EQ(cfg.io_oldest, false);
    CHECK_EQ(PARSE(&cfg, err, "--io-oldest"), 0);
    CHECK_EQ(cfg.io_oldest, true);
    rh_cfg_free(&cfg);
}

/* --redis: host:port lists (names, IPv4, [IPv6]); --redis-prefix: no blanks nor braces. */
static void test_redis(void)
{
    struct rh_cfg cfg;
    char err[256];
    rh_cfg_defaults(&cfg);
    CHECK(strcmp(cfg.redis, "") == 0);
    CHECK(strcmp(cfg.redis_prefix, "ringhub") == 0);
    CHECK_EQ(cfg.redis_buffer, 4194304u);
    static const char *const good[] = {"127.0.0.1:6379", "redis:6379", "[::1]:7000",
                                       "a:1,b:2,[fe80::1]:65535", ""};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK_EQ(rh_cfg_set(&cfg, "redis", good[i], err, sizeof(err)), 0);
        CHECK(strcmp(cfg.redis, good[i]) == 0);
    }
    static const char *const bad[] = {
        "redis", "redis:", ":6379", "redis:0", "redis:65536",  "::1:6379",  "[::1]6379",
        "a:1,",  ",a:1",   "a b:1", "[]:1",    "user@redis:1", "redis:63x9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(rh_cfg_set(&cfg, "redis", bad[i], err, sizeof(err)), -EINVAL);
    CHECK_ERR(err, "redis: 'redis:63x9': a comma-separated list of host:port");
    CHECK_EQ(rh_cfg_set(&cfg, "redis-prefix", "app1", err, sizeof(err)), 0);
    static const char *const bad_prefixes[] = {"", "a b", "a{b}", "x\ty"};
    for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++)
        CHECK_EQ(rh_cfg_set(&cfg, "redis-prefix", bad_prefixes[i], err, sizeof(err)), -EINVAL);
    CHECK(strcmp(cfg.redis_prefix, "app1") == 0);
    rh_cfg_free(&cfg);
}

int main(void)
{
    /* The oldest-kernel run of the suite sets this; each test here sets what it needs. */
    const char *env = getenv("RINGHUB_IO_OLDEST");
    char *saved_env = env ? strdup(env) : NULL;
    unsetenv("RINGHUB_IO_OLDEST");

    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/test_cfg.XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }

    test_defaults();
    test_set_numbers();
    test_set_other_types();
    test_redis();
    test_listen();
    test_load_string();
    test_load_file();
    test_parse_args();
    test_help_version();
    test_env_io_oldest();
    CHECK_EQ(rh_alloc_live_bytes(), 0);

    static const char *const files[] = {"good.conf", "bad.conf",  "nul.conf",
                                        "big.conf",  "args.conf", "bad-args.conf"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", tmp_dir, files[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
    if (saved_env) setenv("RINGHUB_IO_OLDEST", saved_env, 1);
    free(saved_env);
    return rh_check_finish();
}
