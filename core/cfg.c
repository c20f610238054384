/*
 * core/cfg.c - the option table and the three ways to fill a struct rh_cfg from it: defaults
 * (each row's default is text that goes through the same parser as user input, so a bad
 * default fails at the first start), the config file (inih, fed one line at a time by a reader
 * here that counts lines and rejects what inih would silently accept: sections, continuation
 * lines, lines without '='), and getopt_long in two passes (first find --config, --help and
 * --version, then apply the flags on top of the file). Starting the server from the result is
 * left to the caller.
 */
#include "core/cfg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "core/alloc.h"
#include "core/assert.h"

#ifndef RH_VERSION_STRING
#define RH_VERSION_STRING "0.1.0"
#endif

/* getopt_long returns this plus the row index for a flag, above every short option char. */
#define FLAG_VAL_BASE 256
#define REASON_SIZE   256

enum opt_type {
    OPT_ADDR, /* char * text; listen_sockaddr and listen_sockaddr_len derived from it */
    OPT_U32,
    OPT_BOOL,
    OPT_LOG_LEVEL,
    OPT_STR, /* char * text, checked by the row's check function */
    /* Command line only, no field. */
    OPT_CONFIG,
    OPT_HELP,
    OPT_VERSION,
};

struct opt {
    const char *name; /* long flag without dashes, and the file key */
    enum opt_type type;
    size_t offset; /* of the field in struct rh_cfg */
    uint32_t min, max;
    bool is_pow2;
    const char *def; /* default as the user would write it; NULL for command-line-only rows */
    const char *help;
    /* OPT_STR: NULL when @value is acceptable, else why not. */
    const char *(*check)(const char *value);
};

/* offsetof that fails to compile when the field does not have the type the row parses into. */
#define FIELD(field, type)                                                                         \
    _Generic(((struct rh_cfg *)0)->field, type : offsetof(struct rh_cfg, field))
#define U32(name, field, lo, hi, def, help)                                                        \
    {                                                                                              \
        name, OPT_U32, FIELD(field, uint32_t), lo, hi, false, def, help, NULL                      \
    }
#define STR(name, field, check, def, help)                                                         \
    {                                                                                              \
        name, OPT_STR, FIELD(field, char *), 0, 0, false, def, help, check                         \
    }
#define POW2(name, field, lo, hi, def, help)                                                       \
    {                                                                                              \
        name, OPT_U32, FIELD(field, uint32_t), lo, hi, true, def, help, NULL                       \
    }

static const char *check_hub_prefix(const char *value);
static const char *check_hub_list(const char *value);
static const char *check_origins(const char *value);
static const char *check_hub_name(const char *value);
static const char *check_any(const char *value);
static const char *check_policy(const char *value);
static const char *check_policy_list(const char *value);
static const char *check_uid_list(const char *value);
static const char *check_endpoints(const char *value);
static const char *check_redis_prefix(const char *value);
static int load_access_key(struct rh_cfg *cfg, char *err, size_t err_len);

static const struct opt opts[] = {
    {"listen", OPT_ADDR, FIELD(listen_addr, char *), 0, 0, false, "127.0.0.1",
     "IPv4 or IPv6 address to listen on", NULL},
    U32("port", port, 0, 65535, "5000", "TCP port; 0 picks any free port"),
    U32("shards", shard_count, 0, RH_CFG_SHARDS_MAX, "0", "shard threads; 0 = one per usable CPU"),
    {"io-oldest", OPT_BOOL, FIELD(io_oldest, bool), 0, 1, false, "false",
     "oldest io_uring features only (or RINGHUB_IO_OLDEST=1)", NULL},
    {"log-level", OPT_LOG_LEVEL, FIELD(log_level, enum rh_log_level), 0, 0, false, "info",
     "error, warn, info or debug", NULL},
    U32("node-id", node_id, 0, 4095, "0", "this node's id, part of every connection id"),
    U32("max-conns", max_conns, 1, 10000000, "100000", "most open connections, whole process"),
    POW2("recv-buf-size", recv_buf_size, 512, 65536, "4096", "bytes per receive buffer"),
    POW2("recv-buf-count", recv_buf_count, 16, 32768, "1024", "receive buffers per shard"),
    POW2("ring-entries", ring_entries, 64, 32768, "1024", "io_uring queue entries per shard"),
    POW2("spsc-capacity", spsc_capacity, 64, 1048576, "4096", "slots per shard-to-shard ring"),
    U32("backlog", backlog, 1, 65535, "4096", "listen(2) backlog"),
    U32("shutdown-grace-ms", shutdown_grace_ms, 0, 600000, "5000", "drain time on SIGINT/SIGTERM"),
    U32("max-message-size", max_message_size, 1024, 16777216, "32768",
        "bytes of one hub message a client may send"),
    STR("hub-prefix", hub_prefix, check_hub_prefix, "/hubs/",
        "path before the hub name: clients connect to PREFIX{hub}"),
    STR("hubs", hubs, check_hub_list, "",
        "comma-separated hub names to serve; empty serves any name"),
    STR("cors-origins", cors_origins, check_origins, "*",
        "browser origins allowed cross-origin (comma-separated scheme://host[:port]); * allows "
        "any, empty none"),
    U32("poll-timeout-ms", poll_timeout_ms, 100, 99000, "90000",
        "how long a long-polling request is held when there is nothing to send"),
    U32("disconnect-timeout-ms", disconnect_timeout_ms, 100, 600000, "15000",
        "a negotiated connection without its transport (or a poll) this long is dropped"),
    STR("events-hub", events_hub, check_hub_name, "events",
        "hub whose messages /api/events/{user} streams carry unless ?hub= names another"),
    U32("events-history", events_history, 1, 1000000, "1000",
        "messages kept per user so that an EventSource resumes from Last-Event-ID"),
    U32("events-retention-ms", events_retention_ms, 0, 86400000, "300000",
        "how long a user's history is kept after the last stream of that user closes"),
    U32("events-heartbeat-ms", events_heartbeat_ms, 100, 3600000, "15000",
        "a comment line on an EventSource stream that has sent nothing for this long"),
    U32("handshake-timeout-ms", handshake_timeout_ms, 100, 600000, "15000",
        "a connection without a completed hub handshake this long is closed"),
    U32("max-groups-per-connection", max_groups_per_conn, 1, 100000, "1024",
        "groups one connection may be in, its user's included"),
    U32("max-header-size", max_header_size, 1024, 65536, "8192",
        "bytes of a request's line and header fields (431 beyond)"),
    U32("message-rate", message_rate, 1, 10000000, "1000",
        "hub messages per second one connection may send, sustained"),
    U32("message-burst", message_burst, 1, 10000000, "2000",
        "hub messages a connection may send above the rate before it is closed"),
    U32("send-queue-max", send_queue_max, 4096, 1073741824, "262144",
        "bytes that may wait to be sent to one connection; then --slow-consumer decides"),
    U32("max-conns-per-ip", max_conns_per_ip, 0, 10000000, "0",
        "connections one client address may hold at once; 0 = no limit (behind a proxy every "
        "client has the proxy's address)"),
    U32("socket-send-buffer", socket_send_buffer, 0, 16777216, "0",
        "SO_SNDBUF of each connection (the kernel doubles it); 0 leaves it to autotuning"),
    STR("slow-consumer", slow_consumer, check_policy, "disconnect",
        "what happens to a connection whose queue is full: disconnect (a Close that allows "
        "reconnecting), drop-oldest (its oldest waiting messages are dropped) or latest-value "
        "(of a group's messages only the newest waits)"),
    STR("slow-consumer-groups", slow_consumer_groups, check_policy_list, "",
        "per group name pattern (shell glob), pattern=policy,...: overrides --slow-consumer "
        "for messages to those groups"),
    STR("access-key-file", access_key_file, check_any, "",
        "file holding the key that signs client and API tokens (or set RINGHUB_ACCESS_KEY); "
        "without one ringhub runs open, for development"),
    STR("admin-socket", admin_socket, check_any, "/tmp/ringhub-%p.sock",
        "the admin Unix socket (ringhub-ctl), created mode 0600; %p stands for the port; "
        "empty: none"),
    STR("redis", redis, check_endpoints, "",
        "Redis to scale out through, host:port[,host:port...]: a server, or seed nodes of a "
        "Redis Cluster (found out at start); empty: a single node, no Redis"),
    STR("redis-prefix", redis_prefix, check_redis_prefix, "ringhub",
        "first part of every Redis key and channel ringhub uses (nodes sharing one Redis and "
        "this prefix form one cluster)"),
    U32("redis-buffer", redis_buffer, 0, 1073741824, "4194304",
        "bytes of cross-host messages a shard keeps while Redis is unreachable, sent once it is "
        "back; what comes past them is dropped and counted"),
    STR("admin-uids", admin_uids, check_uid_list, "",
        "comma-separated uids allowed on the admin socket besides the server's own"),
    U32("metrics-port", metrics_port, 0, 65535, "0",
        "serve /metrics and /dashboard on this port (same address) and not on the main one; "
        "0 = on the main port"),
    {"dashboard", OPT_BOOL, FIELD(dashboard, bool), 0, 1, false, "false",
     "serve the live dashboard at /dashboard (needs a ringhub.admin token with a key)", NULL},
    {"config", OPT_CONFIG, 0, 0, 0, false, NULL,
     "read options from FILE first (name = value lines); flags override it", NULL},
    {"help", OPT_HELP, 0, 0, 0, false, NULL, "print this help and exit", NULL},
    {"version", OPT_VERSION, 0, 0, 0, false, NULL, "print the version and exit", NULL},
};

#define OPT_COUNT (sizeof(opts) / sizeof(opts[0]))

/* State of one config text while inih walks it. */
struct load_ctx {
    struct rh_cfg *cfg;
    const char *name; /* file name for messages */
    const char *next; /* start of the line the reader hands out next */
    int line_no;      /* lines handed to inih so far, counted as inih counts them */
    int err_line;     /* first line rejected here (0: none); the reader stops after it */
    bool is_seen[OPT_COUNT];
    char reason[REASON_SIZE];
};

static const struct opt *find_opt(const char *name);
static void *field_of(struct rh_cfg *cfg, const struct opt *o);
static int set_addr(struct rh_cfg *cfg, const char *value, char *err, size_t err_len);
static int set_u32(struct rh_cfg *cfg, const struct opt *o, const char *value, char *err,
                   size_t err_len);
static int parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len);
static int parse_u32(const char *text, uint32_t *value);
static int parse_bool(const char *text, bool *value);
static bool is_pow2(uint32_t v);
static int load_text(struct rh_cfg *cfg, const char *name, const char *text, char *err,
                     size_t err_len);
static char *read_line(char *str, int num, void *stream);
static const char *check_line(const char *line, size_t len);
static int handle_pair(void *user, const char *section, const char *name, const char *value);
static int read_file(const char *path, char **text, char *err, size_t err_len);
static void build_longopts(struct option *longopts);
static int next_flag(int argc, char **argv, const struct option *longopts, const struct opt **o,
                     const char **arg, char *err, size_t err_len);
static int apply_flags(struct rh_cfg *cfg, int argc, char **argv, const struct option *longopts,
                       char *err, size_t err_len);
static void set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void rh_cfg_defaults(struct rh_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < OPT_COUNT; i++) {
        if (!opts[i].def) continue;
        int err = rh_cfg_set(cfg, opts[i].name, opts[i].def, NULL, 0);
        RH_ASSERT(err == 0);
    }
}

void rh_cfg_free(struct rh_cfg *cfg)
{
    rh_free(cfg->listen_addr);
    rh_free(cfg->hub_prefix);
    rh_free(cfg->hubs);
    rh_free(cfg->cors_origins);
    rh_free(cfg->events_hub);
    rh_free(cfg->access_key_file);
    rh_free(cfg->slow_consumer);
    rh_free(cfg->slow_consumer_groups);
    rh_free(cfg->admin_socket);
    rh_free(cfg->admin_uids);
    rh_free(cfg->redis);
    rh_free(cfg->redis_prefix);
    if (cfg->access_key) explicit_bzero(cfg->access_key, cfg->access_key_len);
    rh_free(cfg->access_key);
    memset(cfg, 0, sizeof(*cfg));
}

int rh_cfg_set(struct rh_cfg *cfg, const char *key, const char *value, char *err, size_t err_len)
{
    const struct opt *o = find_opt(key);
    if (!o) {
        set_err(err, err_len, "%s: unknown option", key);
        return -ENOENT;
    }
    if (o->type >= OPT_CONFIG) {
        set_err(err, err_len, "%s: only on the command line", key);
        return -ENOENT;
    }
    if (!value && o->type != OPT_BOOL) {
        set_err(err, err_len, "%s: needs a value", key);
        return -EINVAL;
    }

    switch (o->type) {
    case OPT_ADDR:
        return set_addr(cfg, value, err, err_len);
    case OPT_U32:
        return set_u32(cfg, o, value, err, err_len);
    case OPT_BOOL: {
        bool on = true;
        if (value && parse_bool(value, &on) != 0) {
            set_err(err, err_len, "%s: '%s' is not true/false, yes/no, on/off or 1/0", key, value);
            return -EINVAL;
        }
        *(bool *)field_of(cfg, o) = on;
        return 0;
    }
    case OPT_STR: {
        const char *why = o->check(value);
        if (why) {
            set_err(err, err_len, "%s: '%s': %s", key, value, why);
            return -EINVAL;
        }
        char **field = field_of(cfg, o);
        rh_free(*field);
        *field = rh_strndup(value, strlen(value));
        return 0;
    }
    case OPT_LOG_LEVEL: {
        enum rh_log_level level;
        if (rh_log_parse_level(value, &level) != 0) {
            set_err(err, err_len, "%s: '%s' is not error, warn, info or debug", key, value);
            return -EINVAL;
        }
        *(enum rh_log_level *)field_of(cfg, o) = level;
        return 0;
    }
    case OPT_CONFIG:
    case OPT_HELP:
    case OPT_VERSION:
        break;
    }
    RH_ASSERT(!"option type without a parser");
    return -EINVAL; /* not reached; -O0 builds do not see through the assertion */
}

int rh_cfg_load_file(struct rh_cfg *cfg, const char *path, char *err, size_t err_len)
{
    char *text = NULL;
    int rc = read_file(path, &text, err, err_len);
    if (rc) return rc;
    rc = load_text(cfg, path, text, err, err_len);
    rh_free(text);
    return rc;
}

int rh_cfg_load_string(struct rh_cfg *cfg, const char *text, char *err, size_t err_len)
{
    return load_text(cfg, "<string>", text, err, err_len);
}

int rh_cfg_parse_args(struct rh_cfg *cfg, int argc, char **argv, char *err, size_t err_len)
{
    struct option longopts[OPT_COUNT + 1];
    const char *config_path = NULL;
    bool wants_help = false, wants_version = false;
    const struct opt *o;
    const char *arg;
    int rc;

    build_longopts(longopts);
    int saved_opterr = opterr;
    opterr = 0;

    /* Pass 1: every argument must be a known flag; --help, --version and --config act first. */
    optind = 0;
    while ((rc = next_flag(argc, argv, longopts, &o, &arg, err, err_len)) == 1) {
        if (o->type == OPT_CONFIG) config_path = arg;
        wants_help |= o->type == OPT_HELP;
        wants_version |= o->type == OPT_VERSION;
    }
    if (rc < 0) goto out;

    if (wants_help) {
        rh_cfg_print_usage(stdout, argc > 0 ? argv[0] : "ringhub");
        rc = 1;
        goto out;
    }
    if (wants_version) {
        printf("ringhub %s\n", RH_VERSION_STRING);
        rc = 1;
        goto out;
    }
    if (config_path && rh_cfg_load_file(cfg, config_path, err, err_len) != 0) {
        rc = -EINVAL;
        goto out;
    }

    /* Pass 2: the flags, over whatever the file set. */
    rc = apply_flags(cfg, argc, argv, longopts, err, err_len);
    if (rc) goto out;

    bool is_env_on;
    const char *env = getenv("RINGHUB_IO_OLDEST");
    if (env && parse_bool(env, &is_env_on) == 0 && is_env_on) cfg->io_oldest = true;
    rc = load_access_key(cfg, err, err_len);

out:
    opterr = saved_opterr;
    return rc;
}

void rh_cfg_print_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [OPTION]...\n"
            "Runs the ringhub server. Every option but --config, --help and --version may also\n"
            "be set in the --config file as a \"name = value\" line; flags override the file.\n\n",
            prog);
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const struct opt *o = &opts[i];
        static const char *const metas[] = {
            [OPT_ADDR] = "=ADDR",   [OPT_U32] = "=N",
            [OPT_BOOL] = "[=BOOL]", [OPT_LOG_LEVEL] = "=LEVEL",
            [OPT_STR] = "=TEXT",    [OPT_CONFIG] = "=FILE",
            [OPT_HELP] = "",        [OPT_VERSION] = "",
        };
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s%s", o->name, metas[o->type]);
        fprintf(out, "  %-26s %s", flag, o->help);
        if (o->type == OPT_U32)
            fprintf(out, " (%s%" PRIu32 "..%" PRIu32 ", default %s)\n",
                    o->is_pow2 ? "power of two " : "", o->min, o->max, o->def);
        else if (o->def)
            fprintf(out, " (default %s)\n", *o->def ? o->def : "empty");
        else
            fputc('\n', out);
    }
}

void rh_cfg_validate(const struct rh_cfg *cfg)
{
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const struct opt *o = &opts[i];
        const char *field = (const char *)cfg + o->offset;
        if (o->type == OPT_U32) {
            uint32_t v;
            memcpy(&v, field, sizeof(v));
            RH_ASSERT(v >= o->min);
            RH_ASSERT(v <= o->max);
            RH_ASSERT(!o->is_pow2 || is_pow2(v));
        } else if (o->type == OPT_BOOL) {
            unsigned char byte;
            memcpy(&byte, field, sizeof(byte));
            RH_ASSERT(byte <= 1);
        } else if (o->type == OPT_LOG_LEVEL) {
            enum rh_log_level level;
            memcpy(&level, field, sizeof(level));
            RH_ASSERT(level >= RH_LOG_ERROR && level <= RH_LOG_DEBUG);
        } else if (o->type == OPT_STR) {
            char *text;
            memcpy(&text, field, sizeof(text));
            RH_ASSERT(text && !o->check(text));
        }
    }

    struct sockaddr_storage ss;
    socklen_t len;
    RH_ASSERT(cfg->listen_addr != NULL);
    RH_ASSERT(parse_addr(cfg->listen_addr, &ss, &len) == 0);
    RH_ASSERT(len == cfg->listen_sockaddr_len);
    RH_ASSERT(memcmp(&ss, &cfg->listen_sockaddr, len) == 0);
}

/* Characters of a URL path segment that need no percent-encoding (RFC 3986 unreserved). */
static bool is_unreserved(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static const char *check_hub_prefix(const char *value)
{
    size_t len = strlen(value);
    if (len < 1 || len > 64 || value[0] != '/' || value[len - 1] != '/')
        return "must start and end with '/', at most 64 bytes";
    for (size_t i = 0; i < len; i++) {
        if (value[i] == '/' && i > 0 && value[i - 1] == '/') return "has an empty segment";
        if (value[i] != '/' && !is_unreserved(value[i]))
            return "only letters, digits, '-', '.', '_', '~' and '/'";
    }
    return NULL;
}

static const char *check_hub_list(const char *value)
{
    size_t name_len = 0;
    for (const char *p = value;; p++) {
        if (*p == ',' || !*p) {
            if (!name_len && *value) return "has an empty hub name";
            if (!*p) return NULL;
            name_len = 0;
        } else if (!is_unreserved(*p)) {
            return "hub names take only letters, digits, '-', '.', '_' and '~'";
        } else if (++name_len > 128) {
            return "a hub name is at most 128 bytes";
        }
    }
}

static const char *check_hub_name(const char *value)
{
    if (!*value) return "a hub name is not empty";
    return strchr(value, ',') ? "one hub name, not a list" : check_hub_list(value);
}

static const char *check_policy(const char *value)
{
    return strcmp(value, "disconnect") == 0 || strcmp(value, "drop-oldest") == 0 ||
                   strcmp(value, "latest-value") == 0
               ? NULL
               : "is disconnect, drop-oldest or latest-value";
}

static const char *check_policy_list(const char *value)
{
    for (const char *p = value; *p;) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p) return "takes pattern=policy pairs, separated by commas";
        size_t policy_len = len - (size_t)(eq + 1 - p);
        char policy[16];
        if (policy_len >= sizeof(policy))
            return "a policy is disconnect, drop-oldest or latest-value";
        memcpy(policy, eq + 1, policy_len);
        policy[policy_len] = '\0';
        if (check_policy(policy)) return "a policy is disconnect, drop-oldest or latest-value";
        p += len + (p[len] == ',');
    }
    return NULL;
}

static const char *check_uid_list(const char *value)
{
    for (const char *p = value; *p;) {
        size_t len = strcspn(p, ",");
        char uid[16];
        uint32_t v;
        if (!len || len >= sizeof(uid)) return "a comma-separated list of numeric uids";
        memcpy(uid, p, len);
        uid[len] = '\0';
        if (parse_u32(uid, &v) != 0) return "a comma-separated list of numeric uids";
        p += len + (p[len] == ',');
    }
    return NULL;
}

/* host:port[,host:port...], a host being a name, an IPv4 address or [an IPv6 address]. */
static const char *check_endpoints(const char *value)
{
    static const char *const usage = "a comma-separated list of host:port ([v6]:port)";
    for (const char *p = value; *p;) {
        size_t len = strcspn(p, ",");
        const char *colon = memrchr(p, ':', len);
        if (!len || !colon || colon == p) return usage;
        size_t port_len = len - (size_t)(colon + 1 - p);
        char port[8];
        uint32_t v;
        if (!port_len || port_len >= sizeof(port)) return usage;
        memcpy(port, colon + 1, port_len);
        port[port_len] = '\0';
        if (parse_u32(port, &v) != 0 || v == 0 || v > 65535) return usage;
        bool is_bracketed = p[0] == '[';
        if (is_bracketed != (colon[-1] == ']') || (is_bracketed && colon - p < 3)) return usage;
        if (!is_bracketed && memchr(p, ':', (size_t)(colon - p))) return usage;
        for (const char *h = p; h < colon; h++)
            if ((unsigned char)*h <= ' ' || *h == '/' || *h == '@') return usage;
        if (p[len] == ',' && !p[len + 1]) return usage; /* a trailing comma */
        p += len + (p[len] == ',');
    }
    return NULL;
}

static const char *check_redis_prefix(const char *value)
{
    size_t len = strlen(value);
    if (!len || len > 64) return "1 to 64 characters";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] <= ' ' || value[i] == '{' || value[i] == '}')
            return "printable characters without spaces or braces";
    return NULL;
}

void rh_cfg_describe(const struct rh_cfg *cfg,
                     void (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const struct opt *o = &opts[i];
        const char *field = (const char *)cfg + o->offset;
        char text[32];
        const char *value = text;
        if (o->type == OPT_U32) {
            uint32_t v;
            memcpy(&v, field, sizeof(v));
            snprintf(text, sizeof(text), "%" PRIu32, v);
        } else if (o->type == OPT_BOOL) {
            bool v;
            memcpy(&v, field, sizeof(v));
            value = v ? "true" : "false";
        } else if (o->type == OPT_LOG_LEVEL) {
            enum rh_log_level level;
            memcpy(&level, field, sizeof(level));
            value = rh_log_level_name(level);
        } else if (o->type == OPT_STR || o->type == OPT_ADDR) {
            memcpy(&value, field, sizeof(value));
        } else {
            continue;
        }
        fn(ctx, o->name, value);
    }
    fn(ctx, "access-key", cfg->access_key ? "(set)" : "");
}

static const char *check_any(const char *value)
{
    (void)value;
    return NULL;
}

/* The access key from --access-key-file, else $RINGHUB_ACCESS_KEY. */
static int load_access_key(struct rh_cfg *cfg, char *err, size_t err_len)
{
    char *text = NULL;
    size_t len;
    rh_free(cfg->access_key);
    cfg->access_key = NULL;
    cfg->access_key_len = 0;
    if (*cfg->access_key_file) {
        int rc = read_file(cfg->access_key_file, &text, err, err_len);
        if (rc) return rc;
        len = strlen(text);
        if (len && text[len - 1] == '\n') len--;
        if (len && text[len - 1] == '\r') len--;
    } else {
        const char *env = getenv("RINGHUB_ACCESS_KEY");
        if (!env) return 0;
        len = strlen(env);
        text = rh_alloc(len + 1);
        memcpy(text, env, len + 1);
    }
    if (!len || len > RH_CFG_ACCESS_KEY_MAX) {
        set_err(err, err_len, "the access key must be 1 to %d bytes", RH_CFG_ACCESS_KEY_MAX);
        rh_free(text);
        return -EINVAL;
    }
    text[len] = '\0';
    cfg->access_key = text;
    cfg->access_key_len = (uint32_t)len;
    return 0;
}

static const char *check_origins(const char *value)
{
    if (!*value || strcmp(value, "*") == 0) return NULL;
    for (const char *p = value; *p;) {
        size_t len = strcspn(p, ",");
        size_t scheme = strncmp(p, "https://", 8) == 0 ? 8 : strncmp(p, "http://", 7) == 0 ? 7 : 0;
        if (!scheme || len == scheme || len > 256) return "each origin is http(s)://host[:port]";
        for (size_t i = scheme; i < len; i++)
            if (!isalnum((unsigned char)p[i]) && !strchr("-.:[]", p[i]))
                return "each origin is http(s)://host[:port]";
        p += len;
        if (*p == ',' && !*++p) return "ends with ','";
    }
    return NULL;
}

static const struct opt *find_opt(const char *name)
{
    for (size_t i = 0; i < OPT_COUNT; i++)
        if (strcmp(opts[i].name, name) == 0) return &opts[i];
    return NULL;
}

static void *field_of(struct rh_cfg *cfg, const struct opt *o)
{
    return (char *)cfg + o->offset;
}

static int set_addr(struct rh_cfg *cfg, const char *value, char *err, size_t err_len)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_addr(value, &ss, &len) != 0) {
        set_err(err, err_len, "listen: '%s' is not an IPv4 or IPv6 address", value);
        return -EINVAL;
    }
    rh_free(cfg->listen_addr);
    cfg->listen_addr = rh_strndup(value, strlen(value));
    cfg->listen_sockaddr = ss;
    cfg->listen_sockaddr_len = len;
    return 0;
}

static int set_u32(struct rh_cfg *cfg, const struct opt *o, const char *value, char *err,
                   size_t err_len)
{
    uint32_t v;
    int rc = parse_u32(value, &v);
    if (rc == -EINVAL) {
        set_err(err, err_len, "%s: '%s' is not a decimal number", o->name, value);
        return -EINVAL;
    }
    if (rc == -ERANGE || v < o->min || v > o->max) {
        set_err(err, err_len, "%s: %s is out of range %" PRIu32 "..%" PRIu32, o->name, value,
                o->min, o->max);
        return -EINVAL;
    }
    if (o->is_pow2 && !is_pow2(v)) {
        set_err(err, err_len, "%s: %s is not a power of two", o->name, value);
        return -EINVAL;
    }
    *(uint32_t *)field_of(cfg, o) = v;
    return 0;
}

/* Fills @ss with the address and a zero port; everything else in it is zero, so two results
 * for the same text compare equal with memcmp. */
static int parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, text, &in4.sin_addr) == 1) {
        memcpy(ss, &in4, sizeof(in4));
        *len = sizeof(in4);
        return 0;
    }
    if (inet_pton(AF_INET6, text, &in6.sin6_addr) == 1) {
        memcpy(ss, &in6, sizeof(in6));
        *len = sizeof(in6);
        return 0;
    }
    return -EINVAL;
}

/* Decimal digits only: strtoul would take a sign, leading spaces and "0x" in some modes. */
static int parse_u32(const char *text, uint32_t *value)
{
    uint64_t v = 0;
    if (!*text) return -EINVAL;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9') return -EINVAL;
    }
    for (const char *p = text; *p; p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX) return -ERANGE;
    }
    *value = (uint32_t)v;
    return 0;
}

static int parse_bool(const char *text, bool *value)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *value = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *value = false;
            return 0;
        }
    }
    return -EINVAL;
}

static bool is_pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

static int load_text(struct rh_cfg *cfg, const char *name, const char *text, char *err,
                     size_t err_len)
{
    struct load_ctx ctx = {.cfg = cfg, .name = name, .next = text};

    int bad_line = ini_parse_stream(read_line, &ctx, handle_pair, &ctx);
    /* inih reports the first line it failed on, which may be one it could not split even
     * though read_line mirrors its rules; ours are reported when they come first. */
    if (bad_line < 0 || (bad_line > 0 && (!ctx.err_line || bad_line < ctx.err_line))) {
        set_err(err, err_len, "%s:%d: expected name = value", name, bad_line);
        return -EINVAL;
    }
    if (ctx.err_line) {
        set_err(err, err_len, "%s:%d: %s", name, ctx.err_line, ctx.reason);
        return -EINVAL;
    }
    return 0;
}

/* inih's reader callback, like fgets(3) on the text. Hands out one whole line per call so
 * inih's line count matches ours, and ends the text early at the first line it rejects. */
static char *read_line(char *str, int num, void *stream)
{
    struct load_ctx *ctx = stream;
    const char *line = ctx->next;
    if (ctx->err_line || !*line) return NULL;

    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
    ctx->next = line + len;
    ctx->line_no++;
    /* A UTF-8 byte order mark is dropped here, so it cannot hide a section header. */
    if (ctx->line_no == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
        line += 3;
        len -= 3;
    }

    const char *reason = check_line(line, len);
    if (!reason && len > (size_t)num - 1) reason = "line too long";
    if (reason) {
        snprintf(ctx->reason, sizeof(ctx->reason), "%s", reason);
        ctx->err_line = ctx->line_no;
        return NULL;
    }
    memcpy(str, line, len);
    str[len] = '\0';
    return str;
}

/* Returns why inih must not see this line, or NULL. Mirrors inih's own order: blank and
 * comment lines first, then continuation (indented) lines, sections, then the split at the
 * first '=' or ':' unless an inline comment (" ;") starts before it. */
static const char *check_line(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)line[i]))
        i++;
    if (i == len || line[i] == '#' || line[i] == ';') return NULL;
    if (i > 0) return "indented line (continuation lines are not supported)";
    if (line[i] == '[') return "sections are not supported";

    bool was_space = false;
    for (; i < len; i++) {
        if (line[i] == '=' || line[i] == ':') return NULL;
        if (was_space && line[i] == ';') break;
        was_space = isspace((unsigned char)line[i]);
    }
    return "expected name = value";
}

static int handle_pair(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *ctx = user;
    const struct opt *o = find_opt(name);
    int rc;

    if (section[0]) {
        snprintf(ctx->reason, sizeof(ctx->reason), "sections are not supported");
        rc = -EINVAL;
    } else if (o && ctx->is_seen[o - opts]) {
        snprintf(ctx->reason, sizeof(ctx->reason), "%s: given twice", name);
        rc = -EINVAL;
    } else {
        rc = rh_cfg_set(ctx->cfg, name, value, ctx->reason, sizeof(ctx->reason));
    }
    if (rc) {
        ctx->err_line = ctx->line_no;
        return 0;
    }
    ctx->is_seen[o - opts] = true;
    return 1;
}

/* Reads all of @path into a new NUL-terminated string in *@text (free with rh_free). */
static int read_file(const char *path, char **text, char *err, size_t err_len)
{
    size_t cap = 4096, len = 0;
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        rc = -errno;
        set_err(err, err_len, "%s: %s", path, strerror(-rc));
        return rc;
    }

    char *buf = rh_alloc(cap);
    for (;;) {
        if (len == cap - 1) {
            if (cap > RH_CFG_FILE_BYTES_MAX) {
                set_err(err, err_len, "%s: larger than %d bytes", path, RH_CFG_FILE_BYTES_MAX);
                rc = -EFBIG;
                goto err_free_buf;
            }
            cap *= 2;
            buf = rh_realloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1) {
            rc = -errno;
            set_err(err, err_len, "%s: %s", path, strerror(-rc));
            goto err_free_buf;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    if (len > RH_CFG_FILE_BYTES_MAX) {
        set_err(err, err_len, "%s: larger than %d bytes", path, RH_CFG_FILE_BYTES_MAX);
        rc = -EFBIG;
        goto err_free_buf;
    }
    if (memchr(buf, '\0', len)) {
        set_err(err, err_len, "%s: contains a NUL byte (not a text file?)", path);
        rc = -EINVAL;
        goto err_free_buf;
    }
    buf[len] = '\0';
    close(fd);
    *text = buf;
    return 0;

err_free_buf:
    rh_free(buf);
    close(fd);
    return rc;
}

static void build_longopts(struct option *longopts)
{
    for (size_t i = 0; i < OPT_COUNT; i++) {
        int has_arg = required_argument;
        if (opts[i].type == OPT_BOOL) has_arg = optional_argument;
        if (opts[i].type == OPT_HELP || opts[i].type == OPT_VERSION) has_arg = no_argument;
        longopts[i] = (struct option){opts[i].name, has_arg, NULL, FLAG_VAL_BASE + (int)i};
    }
    longopts[OPT_COUNT] = (struct option){0};
}

/* Returns 1 with the next flag's row in *@o and its value (or NULL) in *@arg, 0 at the end,
 * or -EINVAL for an unknown flag, a missing or unwanted value, or a stray argument. "+" keeps
 * getopt from reordering argv; ":" makes it report a missing value apart from other errors. */
static int next_flag(int argc, char **argv, const struct option *longopts, const struct opt **o,
                     const char **arg, char *err, size_t err_len)
{
    int c = getopt_long(argc, argv, "+:", longopts, NULL);
    if (c >= FLAG_VAL_BASE && c < FLAG_VAL_BASE + (int)OPT_COUNT) {
        *o = &opts[c - FLAG_VAL_BASE];
        *arg = optarg;
        return 1;
    }
    if (c == -1 && optind >= argc) return 0;

    if (c == -1)
        set_err(err, err_len, "unexpected argument '%s'", argv[optind]);
    else if (c == ':' && optopt >= FLAG_VAL_BASE)
        set_err(err, err_len, "--%s needs a value", opts[optopt - FLAG_VAL_BASE].name);
    else if (optopt >= FLAG_VAL_BASE)
        set_err(err, err_len, "--%s takes no value", opts[optopt - FLAG_VAL_BASE].name);
    else if (optopt > 0)
        set_err(err, err_len, "unknown option '-%c'", optopt);
    else
        set_err(err, err_len, "unknown or ambiguous option '%s'", argv[optind - 1]);
    return -EINVAL;
}

static int apply_flags(struct rh_cfg *cfg, int argc, char **argv, const struct option *longopts,
                       char *err, size_t err_len)
{
    const struct opt *o;
    const char *arg;
    int rc;

    optind = 0;
    while ((rc = next_flag(argc, argv, longopts, &o, &arg, err, err_len)) == 1) {
        if (o->type >= OPT_CONFIG) continue;
        char reason[REASON_SIZE];
        if (rh_cfg_set(cfg, o->name, arg, reason, sizeof(reason)) != 0) {
            set_err(err, err_len, "--%s", reason);
            return -EINVAL;
        }
    }
    return rc;
}

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    if (!err_len) return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}
