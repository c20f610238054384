#pragma once
/*
 * core/cfg.h - ringhub's configuration: defaults, command-line flags and an optional config
 * file. Flags are the primary interface. The file (--config FILE) holds flat "key = value"
 * lines whose keys are the long flag names without the dashes; a line whose first character is
 * '#' or ';' is a comment, as is the rest of a line after " ;". Sections ("[name]"), indented
 * lines, unknown keys and a key given twice are errors. Flags override the file whatever
 * their order on the command line.
 *
 * Every option is one row of a table in cfg.c (name, type, field, limits, default, help); the
 * usage text is generated from it. To add an option, add a field here and a row there.
 *
 * A struct rh_cfg is filled on the main thread at start-up and is read-only once shard threads
 * start; after that any thread may read it. Nothing here is thread-safe (getopt_long keeps
 * global state).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/log.h"

/* Largest config file accepted, in bytes. */
#define RH_CFG_FILE_BYTES_MAX (1024 * 1024)
/* Highest shard count; --shards 0 means one per CPU, which the caller caps to this. */
#define RH_CFG_SHARDS_MAX 64

struct rh_cfg {
    /* --listen: IPv4 or IPv6 literal as given (owned, freed by rh_cfg_free()), and the parsed
     * address: family and address set, port left 0 for the runtime to fill from @port. */
    char *listen_addr;
    struct sockaddr_storage listen_sockaddr;
    socklen_t listen_sockaddr_len;
    uint32_t port;                  /* --port, 0..65535; 0 = any free port */
    uint32_t shard_count;           /* --shards, 0 = one per CPU in the affinity mask */
    bool io_oldest;                 /* --io-oldest or RINGHUB_IO_OLDEST=1: oldest io_uring path */
    enum rh_log_level log_level;    /* --log-level */
    uint32_t node_id;               /* --node-id, 0..4095 */
    uint32_t max_conns;             /* --max-conns, whole process */
    uint32_t recv_buf_size;         /* --recv-buf-size, bytes per provided receive buffer */
    uint32_t recv_buf_count;        /* --recv-buf-count, provided buffers per shard */
    uint32_t ring_entries;          /* --ring-entries, io_uring submission queue size */
    uint32_t spsc_capacity;         /* --spsc-capacity, slots per shard-to-shard ring */
    uint32_t backlog;               /* --backlog, listen(2) backlog */
    uint32_t shutdown_grace_ms;     /* --shutdown-grace-ms */
    uint32_t max_message_size;      /* --max-message-size, bytes of one hub message */
    char *hub_prefix;               /* --hub-prefix: '/' ... '/', owned */
    char *hubs;                     /* --hubs: comma-separated names, "" = any; owned */
    char *cors_origins;             /* --cors-origins: "*", "" or a comma-separated list; owned */
    uint32_t poll_timeout_ms;       /* --poll-timeout-ms: how long a long poll is held */
    uint32_t disconnect_timeout_ms; /* --disconnect-timeout-ms: no transport (no poll) this long */
    char *events_hub;               /* --events-hub: hub of /api/events streams; owned */
    uint32_t events_history;        /* --events-history: messages kept per user for resuming */
    uint32_t events_retention_ms;   /* --events-retention-ms: history kept after the last stream */
    uint32_t events_heartbeat_ms;   /* --events-heartbeat-ms: comment line on idle streams */
    uint32_t handshake_timeout_ms;  /* --handshake-timeout-ms: the hub handshake's deadline */
    uint32_t max_groups_per_conn;   /* --max-groups-per-connection, the user's included */
    uint32_t max_header_size;       /* --max-header-size: request line and header fields */
    uint32_t message_rate;          /* --message-rate: hub messages per second per connection */
    uint32_t message_burst;         /* --message-burst: above the rate, before the close */
    uint32_t send_queue_max;        /* --send-queue-max: bytes waiting for one connection */
    uint32_t max_conns_per_ip;      /* --max-conns-per-ip: 0 = no limit */
    uint32_t socket_send_buffer;    /* --socket-send-buffer: SO_SNDBUF; 0 = the kernel's */
    char *slow_consumer;            /* --slow-consumer: disconnect or drop-oldest; owned */
    char *slow_consumer_groups;     /* --slow-consumer-groups: pattern=policy,...; owned */
    char *access_key_file;          /* --access-key-file: "" = none; owned */
    char *admin_socket;             /* --admin-socket: path, %p = the port; "" = none; owned */
    char *admin_uids;               /* --admin-uids: comma-separated uids besides ours; owned */
    uint32_t metrics_port;          /* --metrics-port: 0 = /metrics on the main port */
    bool dashboard;                 /* --dashboard: serve /dashboard */
    char *redis;                    /* --redis: host:port,... ("" = no Redis); owned */
    char *redis_prefix;             /* --redis-prefix: of every key and channel; owned */
    uint32_t redis_buffer;          /* --redis-buffer: bytes kept per shard during an outage */
    /* The access key that signs tokens, read from access_key_file (its last line end
     * dropped) or else from $RINGHUB_ACCESS_KEY by rh_cfg_parse_args; NULL: none (ringhub runs
     * open). Never logged. Owned. */
    char *access_key;
    uint32_t access_key_len;
};

/* Calls @fn with every option's name and its value as text, in --help order; the access key
 * itself is given as "access-key" with the value "(set)" or "", never its text. */
void rh_cfg_describe(const struct rh_cfg *cfg,
                     void (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/* Longest access key accepted, in bytes. */
#define RH_CFG_ACCESS_KEY_MAX 4096

/* Fills @cfg with the defaults, overwriting whatever it held (it is not freed first). The
 * result owns strings: release it with rh_cfg_free(). */
void rh_cfg_defaults(struct rh_cfg *cfg);

/* Frees the strings @cfg owns and leaves it zeroed. Safe on a zeroed struct and twice. */
void rh_cfg_free(struct rh_cfg *cfg);

/* Sets option @key (a long flag name without dashes, e.g. "recv-buf-size") from the text
 * @value. Numbers are decimal digits only: no sign, spaces, suffix or overflow, and within the
 * option's range (and a power of two where the option says so). A boolean takes
 * true/false, yes/no, on/off or 1/0, and a NULL @value means true; other options need a value.
 * Returns 0; -ENOENT for an unknown key (or one only the command line takes, like "config");
 * -EINVAL for a bad value, leaving @cfg unchanged. On error writes "key: reason" into @err
 * (@err_len bytes, always NUL-terminated; @err may be NULL when @err_len is 0). */
int rh_cfg_set(struct rh_cfg *cfg, const char *key, const char *value, char *err, size_t err_len);

/* Applies the config file at @path (see the top of this file for its format; at most
 * RH_CFG_FILE_BYTES_MAX bytes, no NUL bytes). Stops at the first bad line; the lines before
 * it stay applied, so on error the caller should report @err and exit. Returns 0; -EINVAL for
 * bad content, with "path:line: key: reason" in @err; -EFBIG for a file over the limit; or
 * the negative errno of open(2)/read(2) (-ENOENT, -EACCES, ...) with the reason in @err. */
int rh_cfg_load_file(struct rh_cfg *cfg, const char *path, char *err, size_t err_len);

/* Like rh_cfg_load_file() on the NUL-terminated @text (any length); messages name it
 * "<string>". Returns 0 or -EINVAL. */
int rh_cfg_load_string(struct rh_cfg *cfg, const char *text, char *err, size_t err_len);

/* Fills @cfg (already holding defaults) from the command line: loads the file named by
 * --config first, then applies every other flag in order (a repeated flag: the last wins),
 * then turns io_oldest on when RINGHUB_IO_OLDEST is 1/true/yes/on. A boolean flag takes its
 * value only as "--flag=value". Long options may be abbreviated to a unique prefix, as
 * getopt_long allows. Returns 0 to run; 1 when --help or --version was given and printed to
 * stdout (the caller exits 0); -EINVAL for a bad flag, value or stray argument, or the error
 * of rh_cfg_load_file(), with a message in @err (the caller prints it and exits 2). Does not
 * reorder @argv. May be called again (it resets getopt). */
int rh_cfg_parse_args(struct rh_cfg *cfg, int argc, char **argv, char *err, size_t err_len);

/* Prints the usage text, one line per option with its range and default, to @out. */
void rh_cfg_print_usage(FILE *out, const char *prog);

/* Checks that every field of @cfg is inside its option's limits and that listen_sockaddr
 * matches listen_addr; aborts through RH_ASSERT otherwise. For tests and fuzzing. */
void rh_cfg_validate(const struct rh_cfg *cfg);
