#pragma once
/*
 * transports/admin.h - the admin socket's line protocol: finding a command line in the bytes a
 * session sent, splitting it into a command, its arguments and its flags, and writing replies
 * as text (lines, then an empty line that ends the reply) or as one line of JSON.
 *
 * A line is at most RH_ADMIN_LINE_MAX bytes before its LF (a CR before the LF is dropped) and
 * holds no control byte but TAB. Words are split at spaces and tabs; a word may be written in
 * double quotes, inside which \" and \\ stand for " and \. Flags may stand anywhere after the
 * command: --json, --hub H, --limit N, --timeout S (or --hub=H and so on).
 *
 * Any thread; nothing here keeps state between calls.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "transports/span.h"

#define RH_ADMIN_LINE_MAX    4096
#define RH_ADMIN_ARGS_MAX    4
#define RH_ADMIN_LIMIT_DEF   100
#define RH_ADMIN_LIMIT_MAX   100000
#define RH_ADMIN_TIMEOUT_DEF 30 /* seconds: drain */
#define RH_ADMIN_TIMEOUT_MAX 86400

enum rh_admin_cmd {
    RH_ADMIN_HELP,
    RH_ADMIN_STATS,
    RH_ADMIN_SHARDS,
    RH_ADMIN_CONNECTIONS,
    RH_ADMIN_CONN,
    RH_ADMIN_GROUPS,
    RH_ADMIN_GROUP,
    RH_ADMIN_KICK,
    RH_ADMIN_DRAIN,
    RH_ADMIN_LOGLEVEL,
    RH_ADMIN_CONFIG,
    RH_ADMIN_NODES,
    RH_ADMIN_REDIS,
    RH_ADMIN_CMD_COUNT,
};

/* A parsed command. Its spans point into the text of the struct itself (words unescaped). */
struct rh_admin_command {
    enum rh_admin_cmd cmd;
    bool is_json;
    bool has_hub;
    struct rh_span hub; /* --hub */
    uint32_t limit;     /* --limit, RH_ADMIN_LIMIT_DEF when not given */
    uint32_t timeout_s; /* --timeout, RH_ADMIN_TIMEOUT_DEF when not given */
    uint32_t arg_count;
    struct rh_span args[RH_ADMIN_ARGS_MAX];
    char text[RH_ADMIN_LINE_MAX + 1];
};

/* The command set: name, usage and one-line summary, in enum order (help prints it). */
struct rh_admin_cmd_info {
    const char *name;
    const char *usage;
    const char *summary;
    uint8_t args_min, args_max;
    bool takes_hub, takes_limit, takes_timeout;
};
extern const struct rh_admin_cmd_info rh_admin_cmds[RH_ADMIN_CMD_COUNT];

/* Looks for one line at the start of @data (@len bytes). Returns 1 with *@line_len the bytes of
 * the line (without CR LF or LF) and *@consumed the bytes to drop including the line end; 0 when
 * no LF has come yet and the bytes so far may still be a line; -E2BIG when the line is (or will
 * be) longer than RH_ADMIN_LINE_MAX; -EILSEQ when it holds a control byte other than TAB (a
 * lone CR included) or a NUL. */
int rh_admin_line_find(const uint8_t *data, size_t len, size_t *line_len, size_t *consumed);

/* Parses the line @line (@len bytes, at most RH_ADMIN_LINE_MAX, as rh_admin_line_find found it)
 * into *@out. Returns 0; 1 for a line with no words (no reply is due); or -EINVAL with a
 * message for the user in @err (NUL-terminated, @err_len bytes) and out->is_json still set when
 * the line asked for JSON, so the error can be answered in the form asked for. */
int rh_admin_parse(const char *line, size_t len, struct rh_admin_command *out, char *err,
                   size_t err_len);

/* Appends @word to *@bufp for a command line: as it is when it needs no quotes, else in double
 * quotes with " and \ escaped. ringhub-ctl writes its arguments with this. */
void rh_admin_quote(struct rh_buf **bufp, const char *word, size_t len);
