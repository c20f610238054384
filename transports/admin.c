/*
 * transports/admin.c - the admin socket's line protocol (admin.h): where a line ends, how it splits
 * into words (blanks, double quotes, \" and \\ inside them), and which command, arguments and
 * flags those words make. Running a command and writing its reply are shards/admin.c's.
 */
#include "transports/admin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* How much of a word the user sent an error message quotes back. */
#define SHOWN_BYTES_MAX 64

static int split_words(const char *line, size_t len, struct rh_admin_command *out, uint32_t *count,
                       const char **why);
static int next_word(const char *line, size_t len, size_t *at, char *dst, const char **why);
static bool has_json_after(const char *line, size_t len, size_t at);
static struct rh_span text_word(const struct rh_admin_command *out, size_t *at);
static const struct rh_admin_cmd_info *find_cmd(struct rh_span name);
static int set_flag(struct rh_admin_command *out, const struct rh_admin_cmd_info *info,
                    struct rh_span flag, struct rh_span value, char *err, size_t err_len);
static int parse_number(struct rh_span word, uint32_t min, uint32_t max, uint32_t *value);
static bool is_flag(struct rh_span word);
static bool is_blank(uint8_t ch);
static bool is_control(uint8_t ch);
static bool needs_quotes(const char *word, size_t len, size_t *escape_count);
static int shown_len(struct rh_span s);
static int fail(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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
    [RH_ADMIN_NODES] = {"nodes", "nodes", "the nodes of the cluster (--redis): id, address, uptime",
                        0, 0, false, false, false},
    [RH_ADMIN_REDIS] = {"redis", "redis",
                        "per shard: Redis links, subscriptions, pending, buffered, dropped", 0, 0,
                        false, false, false},
};

int rh_admin_line_find(const uint8_t *data, size_t len, size_t *line_len, size_t *consumed)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = data[i];
        if (ch == '\n') {
            /* Every byte before i passed the checks below, so the line is short enough. */
            *line_len = i && data[i - 1] == '\r' ? i - 1 : i;
            *consumed = i + 1;
            return 1;
        }
        if (ch == '\r') {
            /* A CR is part of a line end only when an LF follows it; at the end of @data the
             * next byte decides. It is not part of the line, so it may stand at index
             * RH_ADMIN_LINE_MAX. */
            if (i + 1 < len && data[i + 1] != '\n') return -EILSEQ;
            continue;
        }
        if (is_control(ch)) return -EILSEQ;
        /* Byte i belongs to the line: the line has i + 1 bytes at least. */
        if (i >= RH_ADMIN_LINE_MAX) return -E2BIG;
    }
    return 0;
}

int rh_admin_parse(const char *line, size_t len, struct rh_admin_command *out, char *err,
                   size_t err_len)
{
    memset(out, 0, offsetof(struct rh_admin_command, text));
    out->limit = RH_ADMIN_LIMIT_DEF;
    out->timeout_s = RH_ADMIN_TIMEOUT_DEF;
    if (err_len) err[0] = '\0';
    if (len > RH_ADMIN_LINE_MAX) return fail(err, err_len, "line too long");

    uint32_t count = 0;
    const char *why = NULL;
    size_t at = 0;
    if (split_words(line, len, out, &count, &why) < 0) {
        const struct rh_admin_cmd_info *info = count ? find_cmd(text_word(out, &at)) : NULL;
        if (info) return fail(err, err_len, "%s; usage: %s", why, info->usage);
        return fail(err, err_len, "%s", why);
    }
    if (!count) return 1;

    struct rh_span name = text_word(out, &at);
    const struct rh_admin_cmd_info *info = find_cmd(name);
    if (!info) {
        return fail(err, err_len, "unknown command '%.*s' (try help)", shown_len(name),
                    (const char *)name.ptr);
    }
    out->cmd = (enum rh_admin_cmd)(info - rh_admin_cmds);

    for (uint32_t i = 1; i < count; i++) {
        struct rh_span word = text_word(out, &at);
        if (!is_flag(word)) {
            if (out->arg_count == info->args_max)
                return fail(err, err_len, "too many arguments; usage: %s", info->usage);
            out->args[out->arg_count++] = word;
            continue;
        }
        /* --name=value, --name value, or --json alone. A word that looks like a flag is never
         * taken as a value (--hub=--x is how to give one). */
        const uint8_t *eq = memchr(word.ptr, '=', word.len);
        struct rh_span flag = rh_span_make(word.ptr, eq ? (uint32_t)(eq - word.ptr) : word.len);
        struct rh_span value = rh_span_make(word.ptr + word.len, 0);
        if (rh_span_eq_str(flag, "--json")) {
            if (eq) return fail(err, err_len, "--json takes no value; usage: %s", info->usage);
            continue;
        }
        if (eq) {
            value = rh_span_make(eq + 1, word.len - flag.len - 1);
        } else if (i + 1 < count) {
            size_t peek = at;
            struct rh_span next = text_word(out, &peek);
            if (!is_flag(next)) {
                value = next;
                at = peek;
                i++;
            }
        }
        int rc = set_flag(out, info, flag, value, err, err_len);
        if (rc) return rc;
    }
    if (out->arg_count < info->args_min)
        return fail(err, err_len, "missing argument; usage: %s", info->usage);
    return 0;
}

void rh_admin_quote(struct rh_buf **bufp, const char *word, size_t len)
{
    size_t escape_count;
    if (!needs_quotes(word, len, &escape_count)) {
        rh_buf_append(bufp, word, (uint32_t)len);
        return;
    }
    uint8_t *p = rh_buf_extend(bufp, (uint32_t)(len + escape_count + 2));
    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        if (word[i] == '"' || word[i] == '\\') *p++ = '\\';
        *p++ = (uint8_t)word[i];
    }
    *p = '"';
}

/* Writes the words of @line into out->text one after another, each ending in a NUL, and sets
 * out->is_json when one of them is --json. Returns 0 with *@count words, or -EINVAL with *@why,
 * *@count the words before the fault and out->is_json set also by a --json among the blank-split
 * words after the faulty one (so the error is answered as JSON when the line asked for it).
 *
 * out->text is big enough: a word of n bytes took n bytes of @line at least, and each word but
 * the last has a blank after it, so the words and their NULs take at most @len + 1 bytes. */
static int split_words(const char *line, size_t len, struct rh_admin_command *out, uint32_t *count,
                       const char **why)
{
    size_t at = 0, used = 0;
    for (;;) {
        int n = next_word(line, len, &at, out->text + used, why);
        if (n == -ENOENT) return 0;
        if (n < 0) {
            if (has_json_after(line, len, at)) out->is_json = true;
            return -EINVAL;
        }
        if (rh_span_eq_str(rh_span_make(out->text + used, (uint32_t)n), "--json"))
            out->is_json = true;
        out->text[used + (size_t)n] = '\0';
        used += (size_t)n + 1;
        RH_DEBUG_ASSERT(used <= len + 1);
        (*count)++;
    }
}

/* The next word of @line from *@at, unescaped into @dst. Returns its length with *@at just past
 * it, -ENOENT when only blanks are left, or -EINVAL with *@why and *@at where the fault is. */
static int next_word(const char *line, size_t len, size_t *at, char *dst, const char **why)
{
    size_t i = *at;
    int n = 0;
    while (i < len && is_blank((uint8_t)line[i]))
        i++;
    *at = i;
    if (i == len) return -ENOENT;

    bool is_quoted = line[i] == '"';
    if (is_quoted) i++;
    for (; i < len; i++) {
        uint8_t ch = (uint8_t)line[i];
        /* A caller that skipped rh_admin_line_find gets the same refusal; a word in out->text
         * then never holds the NUL that ends it. */
        if (is_control(ch)) {
            *at = i;
            *why = "binary input";
            return -EINVAL;
        }
        if (!is_quoted) {
            if (is_blank(ch)) break;
            if (ch == '"') {
                *at = i;
                *why = "a quote inside a word (quote the whole word)";
                return -EINVAL;
            }
            dst[n++] = (char)ch;
            continue;
        }
        if (ch == '"') {
            if (i + 1 < len && !is_blank((uint8_t)line[i + 1])) {
                *at = i + 1;
                *why = "a closing quote must end the word";
                return -EINVAL;
            }
            *at = i + 1;
            return n;
        }
        if (ch == '\\' && i + 1 < len) {
            if (line[i + 1] != '"' && line[i + 1] != '\\') {
                *at = i;
                *why = "a bad escape in quotes (only \\\" and \\\\ are escapes)";
                return -EINVAL;
            }
            ch = (uint8_t)line[++i];
        }
        dst[n++] = (char)ch;
    }
    if (is_quoted) {
        /* A backslash last on the line lands here too: the quote is open either way. */
        *at = len;
        *why = "a quote is not closed";
        return -EINVAL;
    }
    *at = i;
    return n;
}

/* Whether --json is among the blank-split words of @line after the one that holds @at. */
static bool has_json_after(const char *line, size_t len, size_t at)
{
    while (at < len && !is_blank((uint8_t)line[at]))
        at++;
    while (at < len) {
        while (at < len && is_blank((uint8_t)line[at]))
            at++;
        size_t start = at;
        while (at < len && !is_blank((uint8_t)line[at]))
            at++;
        if (at - start == 6 && memcmp(line + start, "--json", 6) == 0) return true;
    }
    return false;
}

/* The word of out->text at *@at, moving *@at to the next one. */
static struct rh_span text_word(const struct rh_admin_command *out, size_t *at)
{
    const char *word = out->text + *at;
    size_t n = strlen(word);
    *at += n + 1;
    return rh_span_make(word, (uint32_t)n);
}

static const struct rh_admin_cmd_info *find_cmd(struct rh_span name)
{
    for (int i = 0; i < RH_ADMIN_CMD_COUNT; i++)
        if (rh_span_eq_str(name, rh_admin_cmds[i].name)) return &rh_admin_cmds[i];
    return NULL;
}

/* Applies --hub, --limit or --timeout (@flag, without its value) to *@out. Returns 0, or
 * -EINVAL with @err set when @info's command does not take it or @value is not for it. */
static int set_flag(struct rh_admin_command *out, const struct rh_admin_cmd_info *info,
                    struct rh_span flag, struct rh_span value, char *err, size_t err_len)
{
    bool is_hub = rh_span_eq_str(flag, "--hub");
    bool is_limit = rh_span_eq_str(flag, "--limit");
    bool is_timeout = rh_span_eq_str(flag, "--timeout");
    if (!is_hub && !is_limit && !is_timeout) {
        return fail(err, err_len, "unknown flag %.*s; usage: %s", shown_len(flag),
                    (const char *)flag.ptr, info->usage);
    }
    if ((is_hub && !info->takes_hub) || (is_limit && !info->takes_limit) ||
        (is_timeout && !info->takes_timeout)) {
        return fail(err, err_len, "%s does not take %.*s; usage: %s", info->name, (int)flag.len,
                    (const char *)flag.ptr, info->usage);
    }
    if (!value.len) {
        return fail(err, err_len, "%.*s needs a value; usage: %s", (int)flag.len,
                    (const char *)flag.ptr, info->usage);
    }
    if (is_hub) {
        out->hub = value;
        out->has_hub = true;
    } else if (is_limit && parse_number(value, 1, RH_ADMIN_LIMIT_MAX, &out->limit)) {
        return fail(err, err_len, "--limit takes a number from 1 to %u, not '%.*s'",
                    RH_ADMIN_LIMIT_MAX, shown_len(value), (const char *)value.ptr);
    } else if (is_timeout && parse_number(value, 0, RH_ADMIN_TIMEOUT_MAX, &out->timeout_s)) {
        return fail(err, err_len, "--timeout takes seconds from 0 to %u, not '%.*s'",
                    RH_ADMIN_TIMEOUT_MAX, shown_len(value), (const char *)value.ptr);
    }
    return 0;
}

/* Decimal digits only (no sign, no blanks), leading zeros allowed. Sets *@value only when the
 * number is within @min..@max; returns 0 or -EINVAL. */
static int parse_number(struct rh_span word, uint32_t min, uint32_t max, uint32_t *value)
{
    uint64_t v = 0;
    if (!word.len) return -EINVAL;
    for (uint32_t i = 0; i < word.len; i++) {
        if (word.ptr[i] < '0' || word.ptr[i] > '9') return -EINVAL;
        /* Once past @max the number only grows: stop there, before it can overflow. */
        if (v <= max) v = v * 10 + (uint64_t)(word.ptr[i] - '0');
    }
    if (v < min || v > max) return -EINVAL;
    *value = (uint32_t)v;
    return 0;
}

static bool is_flag(struct rh_span word)
{
    return word.len >= 2 && word.ptr[0] == '-' && word.ptr[1] == '-';
}

static bool is_blank(uint8_t ch)
{
    return ch == ' ' || ch == '\t';
}

/* C0 controls but TAB, and DEL. Bytes from 0x80 on (UTF-8) are text. */
static bool is_control(uint8_t ch)
{
    return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

/* Whether @word needs quotes on a command line (empty, or holding a blank, " or \), with
 * *@escape_count the bytes that need a backslash inside them. */
static bool needs_quotes(const char *word, size_t len, size_t *escape_count)
{
    bool needs = len == 0;
    *escape_count = 0;
    for (size_t i = 0; i < len; i++) {
        if (word[i] == '"' || word[i] == '\\') {
            (*escape_count)++;
            needs = true;
        } else if (is_blank((uint8_t)word[i])) {
            needs = true;
        }
    }
    return needs;
}

/* How many bytes of @s an error message shows: at most SHOWN_BYTES_MAX, cut before a UTF-8
 * continuation byte so the message stays valid UTF-8 when @s is. */
static int shown_len(struct rh_span s)
{
    uint32_t n = s.len < SHOWN_BYTES_MAX ? s.len : SHOWN_BYTES_MAX;
    while (n > 0 && n < s.len && (s.ptr[n] & 0xc0) == 0x80)
        n--;
    return (int)n;
}

/* Writes the message into @err (if it has room for any) and returns -EINVAL. */
static int fail(char *err, size_t err_len, const char *fmt, ...)
{
    if (err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}
