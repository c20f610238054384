/* transports/admin.c - see admin.h. */
#include "transports/admin.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const struct rh_admin_cmd_info rh_admin_cmds[RH_ADMIN_CMD_COUNT] = {
    [RH_ADMIN_HELP] = {"help", "help", "list the commands", 0, 0, false, false, false},
    [RH_ADMIN_STATS] = {"stats", "stats",
                        "totals and per shard: connections, groups, messages, bytes, drops", 0, 0,
                        false, false, false},
    [RH_ADMIN_SHARDS] = {"shards", "shards",
                         "per shard: CPU, loop utilisation, ring depth, io_uring path", 0, 0, false,
                         false, false},
    [RH_ADMIN_CONNECTIONS] = {"connections", "connections [--hub H] [--limit N]",
                              "the connections, oldest first", 0, 0, true, true, false},
    [RH_ADMIN_CONN] = {"conn", "conn <connectionId>",
                       "one connection: transport, protocol, user, groups, queue, peer", 1, 1,
                       false, false, false},
    [RH_ADMIN_GROUPS] = {"groups", "groups [--hub H] [--limit N]",
                         "the groups with members, by hub and name", 0, 0, true, true, false},
    [RH_ADMIN_GROUP] = {"group", "group <hub> <group>",
                        "one group: members per shard, messages per second, path", 2, 2, false,
                        false, false},
    [RH_ADMIN_KICK] = {"kick", "kick <connectionId> [reason]",
                       "close a connection, with a hub Close that gives the reason", 1, 2, false,
                       false, false},
    [RH_ADMIN_DRAIN] = {"drain", "drain [--timeout S]",
                        "stop accepting, Close (allowReconnect) every client, exit when empty", 0,
                        0, false, false, true},
    [RH_ADMIN_LOGLEVEL] = {"loglevel", "loglevel <error|warn|info|debug>", "set the log level", 1,
                           1, false, false, false},
    [RH_ADMIN_CONFIG] = {"config", "config", "the effective configuration, secrets masked", 0, 0,
                         false, false, false},
};

int rh_admin_line_find(const uint8_t *data, size_t len, size_t *line_len, size_t *consumed)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = data[i];
        if (ch == '\n') {
            size_t n = i && data[i - 1] == '\r' ? i - 1 : i;
            if (n > RH_ADMIN_LINE_MAX) return -E2BIG;
            *line_len = n;
            *consumed = i + 1;
            return 1;
        }
        /* A CR is a line end's only when an LF follows it. */
        if (ch == '\r' && i + 1 < len && data[i + 1] != '\n') return -EILSEQ;
        if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f) return -EILSEQ;
        if (i >= RH_ADMIN_LINE_MAX + 1) return -E2BIG; /* +1: a CR before the LF */
    }
    return 0;
}

/* The next word of @line from *@at into @out (unescaped; @out has room for the line). Returns
 * its length, -1 at the end of the line, or -EINVAL with @err set. */
static int next_word(const char *line, size_t len, size_t *at, char *out, const char **err)
{
    size_t i = *at;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len) {
        *at = i;
        return -1;
    }
    int n = 0;
    if (line[i] == '"') {
        for (i++;; i++) {
            if (i == len) {
                *err = "a quote is not closed";
                return -EINVAL;
            }
            if (line[i] == '"') {
                i++;
                break;
            }
            if (line[i] == '\\') {
                if (i + 1 == len || (line[i + 1] != '"' && line[i + 1] != '\\')) {
                    *err = "only \\\" and \\\\ are escapes inside quotes";
                    return -EINVAL;
                }
                i++;
            }
            out[n++] = line[i];
        }
        if (i < len && line[i] != ' ' && line[i] != '\t') {
            *err = "a quoted word must end at a space";
            return -EINVAL;
        }
    } else {
        while (i < len && line[i] != ' ' && line[i] != '\t') {
            if (line[i] == '"') {
                *err = "a quote inside a word (quote the whole word)";
                return -EINVAL;
            }
            out[n++] = line[i++];
        }
    }
    *at = i;
    return n;
}

static int parse_number(struct rh_span word, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    if (!word.len || word.len > 10) return -EINVAL;
    for (uint32_t i = 0; i < word.len; i++) {
        if (word.ptr[i] < '0' || word.ptr[i] > '9') return -EINVAL;
        v = v * 10 + (uint64_t)(word.ptr[i] - '0');
    }
    if (v < min || v > max) return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

int rh_admin_parse(const char *line, size_t len, struct rh_admin_command *out, char *err,
                   size_t err_len)
{
    memset(out, 0, offsetof(struct rh_admin_command, text));
    out->limit = RH_ADMIN_LIMIT_DEF;
    out->timeout_s = RH_ADMIN_TIMEOUT_DEF;
    if (len > RH_ADMIN_LINE_MAX) {
        snprintf(err, err_len, "line too long");
        return -EINVAL;
    }
    /* Words go one after another into out->text, each NUL-terminated. */
    struct rh_span words[RH_ADMIN_LINE_MAX / 2 + 1];
    uint32_t count = 0;
    size_t at = 0, used = 0;
    const char *why = NULL;
    for (;;) {
        int n = next_word(line, len, &at, out->text + used, &why);
        if (n == -1) break;
        if (n < 0) {
            /* Still answer in the form asked for, if --json came before the fault. */
            for (uint32_t i = 0; i < count; i++)
                if (rh_span_eq_str(words[i], "--json")) out->is_json = true;
            snprintf(err, err_len, "%s", why);
            return -EINVAL;
        }
        words[count++] = rh_span_make(out->text + used, (uint32_t)n);
        out->text[used + (size_t)n] = '\0';
        used += (size_t)n + 1;
    }
    if (!count) return 1;
    for (uint32_t i = 1; i < count; i++)
        if (rh_span_eq_str(words[i], "--json")) out->is_json = true;

    int cmd = 0;
    while (cmd < RH_ADMIN_CMD_COUNT && !rh_span_eq_str(words[0], rh_admin_cmds[cmd].name))
        cmd++;
    if (cmd == RH_ADMIN_CMD_COUNT) {
        snprintf(err, err_len, "unknown command '%.*s' (try help)",
                 (int)(words[0].len < 64 ? words[0].len : 64), (const char *)words[0].ptr);
        return -EINVAL;
    }
    const struct rh_admin_cmd_info *info = &rh_admin_cmds[cmd];
    out->cmd = (enum rh_admin_cmd)cmd;
    for (uint32_t i = 1; i < count; i++) {
        struct rh_span w = words[i];
        if (w.len < 2 || memcmp(w.ptr, "--", 2) != 0) {
            if (out->arg_count == info->args_max) {
                snprintf(err, err_len, "too many arguments; usage: %s", info->usage);
                return -EINVAL;
            }
            out->args[out->arg_count++] = w;
            continue;
        }
        if (rh_span_eq_str(w, "--json")) continue;
        /* --name value or --name=value */
        const uint8_t *eq = memchr(w.ptr, '=', w.len);
        struct rh_span name = rh_span_make(w.ptr, eq ? (uint32_t)(eq - w.ptr) : w.len);
        struct rh_span value;
        if (eq) {
            value = rh_span_make(eq + 1, w.len - name.len - 1);
        } else if (i + 1 < count) {
            value = words[++i];
        } else {
            snprintf(err, err_len, "%.*s needs a value; usage: %s", (int)name.len,
                     (const char *)name.ptr, info->usage);
            return -EINVAL;
        }
        if (rh_span_eq_str(name, "--hub") && info->takes_hub) {
            if (!value.len) {
                snprintf(err, err_len, "--hub needs a hub name");
                return -EINVAL;
            }
            out->hub = value;
            out->has_hub = true;
        } else if (rh_span_eq_str(name, "--limit") && info->takes_limit) {
            if (parse_number(value, 1, RH_ADMIN_LIMIT_MAX, &out->limit)) {
                snprintf(err, err_len, "--limit takes a number from 1 to %u", RH_ADMIN_LIMIT_MAX);
                return -EINVAL;
            }
        } else if (rh_span_eq_str(name, "--timeout") && info->takes_timeout) {
            if (parse_number(value, 0, RH_ADMIN_TIMEOUT_MAX, &out->timeout_s)) {
                snprintf(err, err_len, "--timeout takes seconds from 0 to %u",
                         RH_ADMIN_TIMEOUT_MAX);
                return -EINVAL;
            }
        } else {
            snprintf(err, err_len, "%s does not take %.*s; usage: %s", info->name,
                     (int)(name.len < 64 ? name.len : 64), (const char *)name.ptr, info->usage);
            return -EINVAL;
        }
    }
    if (out->arg_count < info->args_min) {
        snprintf(err, err_len, "missing argument; usage: %s", info->usage);
        return -EINVAL;
    }
    return 0;
}

void rh_admin_quote(struct rh_buf **bufp, const char *word, size_t len)
{
    bool needs = !len;
    for (size_t i = 0; i < len && !needs; i++)
        needs = word[i] == ' ' || word[i] == '\t' || word[i] == '"' || word[i] == '\\';
    if (!needs) {
        rh_buf_append(bufp, word, (uint32_t)len);
        return;
    }
    rh_buf_append(bufp, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (word[i] == '"' || word[i] == '\\') rh_buf_append(bufp, "\\", 1);
        rh_buf_append(bufp, word + i, 1);
    }
    rh_buf_append(bufp, "\"", 1);
}
