/* tests/fuzz/fuzz_admin.c - the admin line protocol on arbitrary bytes, as a session meets them:
 * rh_admin_line_find takes one line after another off the input and rh_admin_parse splits each
 * line it found; the whole input is also parsed as one line, as a caller that skipped the line
 * finder would. Lines stay within the limit, commands within their bounds, and a command written
 * again with rh_admin_quote parses back to the same command. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/assert.h"
#include "core/buf.h"
#include "transports/admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parse(const uint8_t *line, size_t len, bool is_found_line);
static void check_command(const struct rh_admin_command *c);
static void check_requote(const struct rh_admin_command *c);
static bool is_inside(const struct rh_admin_command *c, struct rh_span s);
static void put_number(struct rh_buf **bufp, const char *flag, uint32_t value);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *at = data;
    size_t left = size;
    while (left) {
        size_t line_len = SIZE_MAX, consumed = SIZE_MAX;
        int rc = rh_admin_line_find(at, left, &line_len, &consumed);
        RH_ASSERT(rc == 0 || rc == 1 || rc == -E2BIG || rc == -EILSEQ);
        if (rc == 0) {
            /* Waiting: no LF, and not yet too long. */
            RH_ASSERT(!memchr(at, '\n', left));
            RH_ASSERT(left <= RH_ADMIN_LINE_MAX + 1);
            RH_ASSERT(line_len == SIZE_MAX && consumed == SIZE_MAX);
            break;
        }
        if (rc == -E2BIG) {
            RH_ASSERT(left > RH_ADMIN_LINE_MAX);
            break;
        }
        if (rc == -EILSEQ) break;

        RH_ASSERT(line_len <= RH_ADMIN_LINE_MAX);
        RH_ASSERT(consumed > line_len && consumed <= left);
        RH_ASSERT(at[consumed - 1] == '\n');
        RH_ASSERT(consumed == line_len + 1 || (consumed == line_len + 2 && at[line_len] == '\r'));
        for (size_t i = 0; i < line_len; i++)
            RH_ASSERT(at[i] == '\t' || (at[i] >= 0x20 && at[i] != 0x7f));
        check_parse(at, line_len, true);
        at += consumed;
        left -= consumed;
    }
    if (size <= RH_ADMIN_LINE_MAX) check_parse(data, size, false);
    return 0;
}

/* Parses @line; what it accepts is in bounds and survives being written again. */
static void check_parse(const uint8_t *line, size_t len, bool is_found_line)
{
    static struct rh_admin_command cmd;
    char err[256];
    memset(err, 'X', sizeof(err));
    int rc = rh_admin_parse((const char *)line, len, &cmd, err, sizeof(err));
    RH_ASSERT(rc == 0 || rc == 1 || rc == -EINVAL);
    if (rc == -EINVAL) {
        RH_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
        RH_ASSERT(err[0] != '\0');
        return;
    }
    RH_ASSERT(err[0] == '\0');
    if (rc == 1) {
        /* Only blanks. */
        for (size_t i = 0; i < len; i++)
            RH_ASSERT(line[i] == ' ' || line[i] == '\t');
        return;
    }
    if (!is_found_line) {
        /* A line the finder would not give is accepted only when the finder would take it. */
        for (size_t i = 0; i < len; i++)
            RH_ASSERT(line[i] == '\t' || (line[i] >= 0x20 && line[i] != 0x7f));
    }
    check_command(&cmd);
    check_requote(&cmd);
}

static void check_command(const struct rh_admin_command *c)
{
    RH_ASSERT((unsigned)c->cmd < RH_ADMIN_CMD_COUNT);
    const struct rh_admin_cmd_info *info = &rh_admin_cmds[c->cmd];
    RH_ASSERT(c->arg_count <= RH_ADMIN_ARGS_MAX);
    RH_ASSERT(c->arg_count >= info->args_min && c->arg_count <= info->args_max);
    for (uint32_t i = 0; i < c->arg_count; i++) {
        RH_ASSERT(is_inside(c, c->args[i]));
        /* A word that starts with "--" is a flag, never an argument. */
        RH_ASSERT(c->args[i].len < 2 || c->args[i].ptr[0] != '-' || c->args[i].ptr[1] != '-');
    }
    RH_ASSERT(!c->has_hub || info->takes_hub);
    RH_ASSERT(!c->has_hub || (c->hub.len > 0 && is_inside(c, c->hub)));
    RH_ASSERT(c->has_hub || c->hub.len == 0);
    RH_ASSERT(c->limit >= 1 && c->limit <= RH_ADMIN_LIMIT_MAX);
    RH_ASSERT(c->limit == RH_ADMIN_LIMIT_DEF || info->takes_limit);
    RH_ASSERT(c->timeout_s <= RH_ADMIN_TIMEOUT_MAX);
    RH_ASSERT(c->timeout_s == RH_ADMIN_TIMEOUT_DEF || info->takes_timeout);
}

/* The command written again: its name, each argument quoted, its flags; parsed, the same. */
static void check_requote(const struct rh_admin_command *c)
{
    static struct rh_admin_command again;
    struct rh_buf *b = rh_buf_new(64);
    const char *name = rh_admin_cmds[c->cmd].name;
    rh_buf_append(&b, name, (uint32_t)strlen(name));
    for (uint32_t i = 0; i < c->arg_count; i++) {
        rh_buf_append(&b, " ", 1);
        rh_admin_quote(&b, (const char *)c->args[i].ptr, c->args[i].len);
    }
    if (c->has_hub) {
        /* One word, quoted as a whole: a hub may itself start with "--". */
        char word[RH_ADMIN_LINE_MAX + 8];
        memcpy(word, "--hub=", 6);
        memcpy(word + 6, c->hub.ptr, c->hub.len);
        rh_buf_append(&b, " ", 1);
        rh_admin_quote(&b, word, 6 + (size_t)c->hub.len);
    }
    if (c->limit != RH_ADMIN_LIMIT_DEF) put_number(&b, " --limit ", c->limit);
    if (c->timeout_s != RH_ADMIN_TIMEOUT_DEF) put_number(&b, " --timeout=", c->timeout_s);
    if (c->is_json) rh_buf_append(&b, " --json", 7);

    /* Escapes may make it longer than a line may be; then only the refusal is checked. */
    char err[256];
    int rc = rh_admin_parse((const char *)b->data, b->len, &again, err, sizeof(err));
    if (b->len > RH_ADMIN_LINE_MAX) {
        RH_ASSERT(rc == -EINVAL);
        rh_buf_unref(b);
        return;
    }
    RH_ASSERT(rc == 0);
    RH_ASSERT(again.cmd == c->cmd);
    RH_ASSERT(again.is_json == c->is_json);
    RH_ASSERT(again.arg_count == c->arg_count);
    for (uint32_t i = 0; i < c->arg_count; i++)
        RH_ASSERT(rh_span_eq(again.args[i], c->args[i]));
    RH_ASSERT(again.has_hub == c->has_hub);
    RH_ASSERT(rh_span_eq(again.hub, c->hub));
    RH_ASSERT(again.limit == c->limit);
    RH_ASSERT(again.timeout_s == c->timeout_s);

    /* And it is a line the line finder takes whole. */
    size_t line_len, consumed;
    rh_buf_append(&b, "\n", 1);
    RH_ASSERT(rh_admin_line_find(b->data, b->len, &line_len, &consumed) == 1);
    RH_ASSERT(line_len == b->len - 1 && consumed == b->len);
    rh_buf_unref(b);
}

static bool is_inside(const struct rh_admin_command *c, struct rh_span s)
{
    const uint8_t *start = (const uint8_t *)c->text;
    /* Room for the NUL after it too. */
    return s.ptr >= start && s.ptr + s.len < start + sizeof(c->text) && s.ptr[s.len] == '\0';
}

static void put_number(struct rh_buf **bufp, const char *flag, uint32_t value)
{
    char digits[16];
    size_t n = sizeof(digits);
    do {
        digits[--n] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    rh_buf_append(bufp, flag, (uint32_t)strlen(flag));
    rh_buf_append(bufp, digits + n, (uint32_t)(sizeof(digits) - n));
}
