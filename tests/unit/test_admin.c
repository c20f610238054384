/*
 * tests/unit/test_admin.c - the admin line protocol of transports/admin.h: the command table;
 * every command with its arguments; every flag in each form, at its bounds and on commands that
 * do not take it; words in quotes with escapes; every error and the form (JSON or text) it is
 * answered in; finding lines (LF, CR LF, partial input at every split point, the 4096-byte
 * limit at its boundary, control bytes, lone CR, NUL); and rh_admin_quote read back by
 * rh_admin_parse.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "tests/harness/check.h"
#include "transports/admin.h"

/* rh_admin_line_find on the string literal @lit (which may contain NULs). */
#define FIND_LIT(lit, line_len, consumed)                                                          \
    rh_admin_line_find((const uint8_t *)(lit), sizeof(lit) - 1, (line_len), (consumed))
/* rh_admin_parse of the string literal @lit (which may contain NULs) into cmd and err. */
#define PARSE_LIT(lit) rh_admin_parse((lit), sizeof(lit) - 1, &cmd, err, sizeof(err))
/* @line parses with an error whose message holds @part. */
#define CHECK_ERR(line, part) check_err((line), (part), __FILE__, __LINE__)
#define CHECK_ARG(idx, text)  check_arg((idx), (text), __FILE__, __LINE__)

/* Big (4 KiB of text): one for the whole test. */
static struct rh_admin_command cmd;
static char err[256];

static int parse(const char *line);
static void check_err(const char *line, const char *part, const char *file, int line_no);
static void check_arg(uint32_t idx, const char *text, const char *file, int line_no);
static bool spans_are_inside(const struct rh_admin_command *c);
static void check_round_trip(const char *const *words, uint32_t word_count, const char *file,
                             int line_no);
static void test_table(void);
static void test_commands(void);
static void test_flags(void);
static void test_flag_bounds(void);
static void test_quoting(void);
static void test_errors(void);
static void test_json_on_errors(void);
static void test_line_find(void);
static void test_line_find_boundary(void);
static void test_line_find_splits(void);
static void test_quote(void);
static void test_quote_round_trips(void);

int main(void)
{
    test_table();
    test_commands();
    test_flags();
    test_flag_bounds();
    test_quoting();
    test_errors();
    test_json_on_errors();
    test_line_find();
    test_line_find_boundary();
    test_line_find_splits();
    test_quote();
    test_quote_round_trips();
    return rh_check_finish();
}

/* Names in enum order, usages that start with the name, one short line of summary each. */
static void test_table(void)
{
    static const char *const names[RH_ADMIN_CMD_COUNT] = {
        "help", "stats", "shards",   "connections", "conn",  "groups", "group",
        "kick", "drain", "loglevel", "config",      "nodes", "redis",
    };
    for (int i = 0; i < RH_ADMIN_CMD_COUNT; i++) {
        const struct rh_admin_cmd_info *c = &rh_admin_cmds[i];
        if (!c->name || !c->usage || !c->summary) {
            CHECK(c->name && c->usage && c->summary);
            continue;
        }
        CHECK(strcmp(c->name, names[i]) == 0);
        size_t name_len = strlen(c->name);
        CHECK(strncmp(c->usage, c->name, name_len) == 0);
        CHECK(c->usage[name_len] == '\0' || c->usage[name_len] == ' ');
        CHECK_GT(strlen(c->summary), 0);
        CHECK_LT(strlen(c->summary), 80);
        CHECK(!strchr(c->summary, '\n') && !strchr(c->usage, '\n'));
        CHECK_LE(c->args_min, c->args_max);
        CHECK_LE(c->args_max, RH_ADMIN_ARGS_MAX);
    }
    CHECK(strcmp(rh_admin_cmds[RH_ADMIN_CONNECTIONS].usage, "connections [--hub H] [--limit N]") ==
          0);
    CHECK(strcmp(rh_admin_cmds[RH_ADMIN_GROUPS].usage, "groups [--hub H] [--limit N]") == 0);
    CHECK(strcmp(rh_admin_cmds[RH_ADMIN_CONN].usage, "conn <connectionId>") == 0);
    CHECK(strcmp(rh_admin_cmds[RH_ADMIN_GROUP].usage, "group <hub> <group>") == 0);
    CHECK(strcmp(rh_admin_cmds[RH_ADMIN_KICK].usage, "kick <connectionId> [reason]") == 0);
    CHECK(strcmp(rh_admin_cmds[RH_ADMIN_DRAIN].usage, "drain [--timeout S]") == 0);
    CHECK(strcmp(rh_admin_cmds[RH_ADMIN_LOGLEVEL].usage, "loglevel <error|warn|info|debug>") == 0);

    /* Arguments and flags: the only ones that take any. */
    for (int i = 0; i < RH_ADMIN_CMD_COUNT; i++) {
        const struct rh_admin_cmd_info *c = &rh_admin_cmds[i];
        int min = 0, max = 0;
        if (i == RH_ADMIN_CONN || i == RH_ADMIN_LOGLEVEL) min = max = 1;
        if (i == RH_ADMIN_GROUP) min = max = 2;
        if (i == RH_ADMIN_KICK) {
            min = 1;
            max = 2;
        }
        CHECK_EQ(c->args_min, min);
        CHECK_EQ(c->args_max, max);
        bool is_list = i == RH_ADMIN_CONNECTIONS || i == RH_ADMIN_GROUPS;
        CHECK_EQ(c->takes_hub, is_list);
        CHECK_EQ(c->takes_limit, is_list);
        CHECK_EQ(c->takes_timeout, i == RH_ADMIN_DRAIN);
    }
}

/* Every command with the fewest and the most arguments it takes; defaults when no flag. */
static void test_commands(void)
{
    static const struct {
        const char *line;
        enum rh_admin_cmd cmd;
        uint32_t arg_count;
        const char *args[2];
    } cases[] = {
        {"help", RH_ADMIN_HELP, 0, {NULL, NULL}},
        {"stats", RH_ADMIN_STATS, 0, {NULL, NULL}},
        {"shards", RH_ADMIN_SHARDS, 0, {NULL, NULL}},
        {"connections", RH_ADMIN_CONNECTIONS, 0, {NULL, NULL}},
        {"conn Ab3_-xyz", RH_ADMIN_CONN, 1, {"Ab3_-xyz", NULL}},
        {"groups", RH_ADMIN_GROUPS, 0, {NULL, NULL}},
        {"group chat room1", RH_ADMIN_GROUP, 2, {"chat", "room1"}},
        {"kick abc", RH_ADMIN_KICK, 1, {"abc", NULL}},
        {"kick abc \"gone fishing\"", RH_ADMIN_KICK, 2, {"abc", "gone fishing"}},
        {"drain", RH_ADMIN_DRAIN, 0, {NULL, NULL}},
        {"loglevel error", RH_ADMIN_LOGLEVEL, 1, {"error", NULL}},
        {"loglevel debug", RH_ADMIN_LOGLEVEL, 1, {"debug", NULL}},
        {"config", RH_ADMIN_CONFIG, 0, {NULL, NULL}},
        {"nodes", RH_ADMIN_NODES, 0, {NULL, NULL}},
        {"redis", RH_ADMIN_REDIS, 0, {NULL, NULL}},
        /* Blanks around and between words, tabs among them. */
        {"  stats  ", RH_ADMIN_STATS, 0, {NULL, NULL}},
        {"\tgroup\t\tchat \t room1\t", RH_ADMIN_GROUP, 2, {"chat", "room1"}},
        /* A single dash is no flag; UTF-8 passes through. */
        {"kick - -", RH_ADMIN_KICK, 2, {"-", "-"}},
        {"conn \xc3\xa9t\xc3\xa9", RH_ADMIN_CONN, 1, {"\xc3\xa9t\xc3\xa9", NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&cmd, 0xa5, sizeof(cmd));
        int rc = parse(cases[i].line);
        rh_check_report(rc == 0, __FILE__, __LINE__, cases[i].line, err);
        if (rc) continue;
        CHECK_EQ(cmd.cmd, cases[i].cmd);
        CHECK_EQ(cmd.arg_count, cases[i].arg_count);
        for (uint32_t a = 0; a < cases[i].arg_count; a++)
            CHECK_ARG(a, cases[i].args[a]);
        CHECK(!cmd.is_json);
        CHECK(!cmd.has_hub);
        CHECK_EQ(cmd.hub.len, 0);
        CHECK_EQ(cmd.limit, RH_ADMIN_LIMIT_DEF);
        CHECK_EQ(cmd.timeout_s, RH_ADMIN_TIMEOUT_DEF);
        CHECK(spans_are_inside(&cmd));
        CHECK_EQ(err[0], '\0');
    }

    /* Each command by its name in the table, with --json. */
    for (int i = 0; i < RH_ADMIN_CMD_COUNT; i++) {
        char line[128];
        const char *args = rh_admin_cmds[i].args_min == 2   ? " a b"
                           : rh_admin_cmds[i].args_min == 1 ? " a"
                                                            : "";
        snprintf(line, sizeof(line), "%s%s --json", rh_admin_cmds[i].name, args);
        CHECK_EQ(parse(line), 0);
        CHECK_EQ(cmd.cmd, i);
        CHECK(cmd.is_json);
    }

    /* Nothing to do: no words at all. */
    CHECK_EQ(parse(""), 1);
    CHECK_EQ(parse("    "), 1);
    CHECK_EQ(parse(" \t \t"), 1);
    CHECK(!cmd.is_json);
    CHECK_EQ(cmd.arg_count, 0);
}

/* Flags in every form and place; the flags a command does not take. */
static void test_flags(void)
{
    /* --json before, between and after the arguments, and more than once. */
    static const char *const json_lines[] = {
        "group --json chat room1",
        "group chat --json room1",
        "group chat room1 --json",
        "group\t--json\tchat\troom1",
        "group --json chat --json room1 --json",
    };
    for (size_t i = 0; i < sizeof(json_lines) / sizeof(json_lines[0]); i++) {
        CHECK_EQ(parse(json_lines[i]), 0);
        CHECK(cmd.is_json);
        CHECK_EQ(cmd.arg_count, 2);
        CHECK_ARG(0, "chat");
        CHECK_ARG(1, "room1");
    }

    /* --hub and --limit as two words, with =, quoted, and in either order. */
    static const char *const list_lines[] = {
        "connections --hub chat --limit 7",
        "connections --hub=chat --limit=7",
        "connections --limit 7 --hub chat",
        "connections\t--hub\tchat\t--limit\t7",
        "connections --hub \"chat\" --limit=7",
        "connections \"--limit=7\" \"--hub=chat\"",
        "connections --json --hub chat --limit 7 --json",
    };
    for (size_t i = 0; i < sizeof(list_lines) / sizeof(list_lines[0]); i++) {
        int rc = parse(list_lines[i]);
        rh_check_report(rc == 0, __FILE__, __LINE__, list_lines[i], err);
        CHECK_EQ(cmd.cmd, RH_ADMIN_CONNECTIONS);
        CHECK(cmd.has_hub);
        CHECK(rh_span_eq_str(cmd.hub, "chat"));
        CHECK_EQ(cmd.limit, 7);
        CHECK_EQ(cmd.arg_count, 0);
        CHECK(spans_are_inside(&cmd));
    }
    CHECK_EQ(parse("groups --hub chat"), 0);
    CHECK_EQ(cmd.cmd, RH_ADMIN_GROUPS);
    CHECK(cmd.has_hub && rh_span_eq_str(cmd.hub, "chat"));
    CHECK_EQ(cmd.limit, RH_ADMIN_LIMIT_DEF);
    CHECK_EQ(parse("groups --limit 3"), 0);
    CHECK(!cmd.has_hub);
    CHECK_EQ(cmd.limit, 3);

    /* A hub name with blanks and quotes in it; one that looks like a flag, given with =. */
    CHECK_EQ(parse("groups --hub \"my \\\"hub\\\"\""), 0);
    CHECK(rh_span_eq_str(cmd.hub, "my \"hub\""));
    CHECK_EQ(parse("groups --hub=--x"), 0);
    CHECK(rh_span_eq_str(cmd.hub, "--x"));
    CHECK_EQ(parse("groups --hub=a=b"), 0);
    CHECK(rh_span_eq_str(cmd.hub, "a=b"));

    /* --timeout for drain, in both forms. */
    CHECK_EQ(parse("drain --timeout 5"), 0);
    CHECK_EQ(cmd.cmd, RH_ADMIN_DRAIN);
    CHECK_EQ(cmd.timeout_s, 5);
    CHECK_EQ(parse("drain --timeout=12 --json"), 0);
    CHECK_EQ(cmd.timeout_s, 12);
    CHECK(cmd.is_json);

    /* The last of a repeated flag wins. */
    CHECK_EQ(parse("connections --limit 5 --limit 6 --hub a --hub b"), 0);
    CHECK_EQ(cmd.limit, 6);
    CHECK(rh_span_eq_str(cmd.hub, "b"));

    /* A flag a command does not take is named in the error, with the usage. */
    CHECK_ERR("stats --hub chat", "stats does not take --hub; usage: stats");
    CHECK_ERR("stats --limit 5", "stats does not take --limit");
    CHECK_ERR("connections --timeout 5", "connections does not take --timeout");
    CHECK_ERR("groups --timeout=5", "groups does not take --timeout");
    CHECK_ERR("drain --limit 5", "drain does not take --limit; usage: drain [--timeout S]");
    CHECK_ERR("drain --hub=x", "drain does not take --hub");
    CHECK_ERR("kick abc --hub chat", "kick does not take --hub");
    CHECK_ERR("help --timeout 1", "help does not take --timeout");
    CHECK_ERR("stats --bogus", "unknown flag --bogus; usage: stats");
    CHECK_ERR("connections --bogus=1", "unknown flag --bogus");
    CHECK_ERR("connections --HUB chat", "unknown flag --HUB");
    CHECK_ERR("kick abc --", "unknown flag --;");
    CHECK_ERR("stats --json=1", "--json takes no value");
    CHECK_ERR("stats --json=", "--json takes no value");

    /* A value is missing: at the end, empty, or the next word is a flag. */
    CHECK_ERR("connections --hub", "--hub needs a value; usage: connections");
    CHECK_ERR("connections --hub=", "--hub needs a value");
    CHECK_ERR("connections --hub \"\"", "--hub needs a value");
    CHECK_ERR("connections --hub --limit 5", "--hub needs a value");
    CHECK_ERR("connections --limit", "--limit needs a value");
    CHECK_ERR("connections --limit --json", "--limit needs a value");
    CHECK(cmd.is_json);
    CHECK_ERR("drain --timeout", "--timeout needs a value");
    CHECK_ERR("drain --timeout=", "--timeout needs a value");
}

/* --limit 1..RH_ADMIN_LIMIT_MAX and --timeout 0..RH_ADMIN_TIMEOUT_MAX, decimal digits only. */
static void test_flag_bounds(void)
{
    static const struct {
        const char *value;
        uint32_t limit; /* 0: refused */
    } limits[] = {
        {"1", 1},          {"100", 100},
        {"99999", 99999},  {"100000", 100000},
        {"007", 7},        {"0000000000000000000001", 1},
        {"0", 0},          {"100001", 0},
        {"4294967296", 0}, {"99999999999999999999999", 0},
        {"-1", 0},         {"+1", 0},
        {"1x", 0},         {"x1", 0},
        {"ten", 0},        {"1.5", 0},
        {"1e3", 0},        {"0x10", 0},
        {" 1", 0},         {"1 ", 0},
        {"\xd9\xa1", 0},
    };
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "connections --limit \"%s\"", limits[i].value);
        int rc = parse(line);
        if (limits[i].limit) {
            rh_check_report(rc == 0, __FILE__, __LINE__, line, err);
            CHECK_EQ(cmd.limit, limits[i].limit);
        } else {
            rh_check_report(rc == -EINVAL && strstr(err, "--limit takes a number from 1 to 100000"),
                            __FILE__, __LINE__, line, err);
            CHECK_EQ(cmd.limit, RH_ADMIN_LIMIT_DEF);
        }
    }
    CHECK_ERR("groups --limit=0", "--limit takes a number from 1 to 100000, not '0'");

    static const struct {
        const char *value;
        int timeout_s; /* -1: refused */
    } timeouts[] = {
        {"0", 0},   {"00", 0},  {"1", 1},     {"30", 30}, {"86400", 86400},   {"86401", -1},
        {"-1", -1}, {"+5", -1}, {"soon", -1}, {"5s", -1}, {"4294967301", -1},
    };
    for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "drain --timeout=%s", timeouts[i].value);
        int rc = parse(line);
        if (timeouts[i].timeout_s >= 0) {
            rh_check_report(rc == 0, __FILE__, __LINE__, line, err);
            CHECK_EQ(cmd.timeout_s, timeouts[i].timeout_s);
        } else {
            rh_check_report(rc == -EINVAL && strstr(err, "--timeout takes seconds from 0 to 86400"),
                            __FILE__, __LINE__, line, err);
            CHECK_EQ(cmd.timeout_s, RH_ADMIN_TIMEOUT_DEF);
        }
    }
}

/* Double quotes around a word, \" and \\ inside them, and where the words go. */
static void test_quoting(void)
{
    CHECK_EQ(parse("group \"my hub\" \"a \\\"b\\\" \\\\ c\""), 0);
    CHECK_ARG(0, "my hub");
    CHECK_ARG(1, "a \"b\" \\ c");

    /* The node test's group name, as ringhub-ctl sends it. */
    CHECK_EQ(parse("group chat \"say \\\"hi\\\" \\\\ there\" --json"), 0);
    CHECK_ARG(1, "say \"hi\" \\ there");
    CHECK(cmd.is_json);

    /* Empty words, tabs and spaces inside quotes, quotes at the line's ends. */
    CHECK_EQ(parse("kick \"\""), 0);
    CHECK_EQ(cmd.arg_count, 1);
    CHECK_EQ(cmd.args[0].len, 0);
    CHECK_EQ(parse("kick \"\" \"\""), 0);
    CHECK_EQ(cmd.arg_count, 2);
    CHECK_EQ(parse("kick \"a\tb\" \" \""), 0);
    CHECK_ARG(0, "a\tb");
    CHECK_ARG(1, " ");
    CHECK_EQ(parse("\"kick\" \"x\""), 0);
    CHECK_EQ(cmd.cmd, RH_ADMIN_KICK);
    CHECK_ARG(0, "x");
    CHECK_EQ(parse("kick \"\\\\\" \"\\\"\""), 0);
    CHECK_ARG(0, "\\");
    CHECK_ARG(1, "\"");

    /* A backslash outside quotes is a byte like any other. */
    CHECK_EQ(parse("kick a\\b c\\"), 0);
    CHECK_ARG(0, "a\\b");
    CHECK_ARG(1, "c\\");

    /* A quoted flag is still a flag: quotes group bytes, they do not change what words mean. */
    CHECK_EQ(parse("connections \"--limit\" \"9\""), 0);
    CHECK_EQ(cmd.limit, 9);

    /* The spans point into the command's own text, unescaped and NUL-terminated. */
    CHECK_EQ(parse("group \"a\\\"b\" c --hub=x"), -EINVAL);
    CHECK_EQ(parse("connections --hub \"h \\\\ 1\" --limit 2"), 0);
    CHECK(spans_are_inside(&cmd));
    CHECK(rh_span_eq_str(cmd.hub, "h \\ 1"));
    CHECK_EQ(cmd.hub.ptr[cmd.hub.len], '\0');
    CHECK_EQ(parse("kick \"x y\" z"), 0);
    CHECK(spans_are_inside(&cmd));
    CHECK_EQ(cmd.args[0].ptr[cmd.args[0].len], '\0');
    CHECK_EQ(cmd.args[1].ptr[cmd.args[1].len], '\0');

    /* The longest line: one argument of all but the command and its blank. */
    char line[RH_ADMIN_LINE_MAX + 2];
    memcpy(line, "conn ", 5);
    memset(line + 5, 'x', RH_ADMIN_LINE_MAX - 5);
    CHECK_EQ(rh_admin_parse(line, RH_ADMIN_LINE_MAX, &cmd, err, sizeof(err)), 0);
    CHECK_EQ(cmd.args[0].len, RH_ADMIN_LINE_MAX - 5);
    CHECK(spans_are_inside(&cmd));

    /* The most words a line can hold (empty quoted words) fill out->text to its end. */
    memcpy(line, "kick", 4);
    size_t len = 4;
    while (len + 3 <= RH_ADMIN_LINE_MAX) {
        memcpy(line + len, " \"\"", 3);
        len += 3;
    }
    CHECK_EQ(rh_admin_parse(line, len, &cmd, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "too many arguments") != NULL);
    memset(line, 'a', RH_ADMIN_LINE_MAX);
    for (size_t i = 1; i < RH_ADMIN_LINE_MAX; i += 2)
        line[i] = ' ';
    CHECK_EQ(rh_admin_parse(line, RH_ADMIN_LINE_MAX, &cmd, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "unknown command 'a'") != NULL);
}

/* Every error, with a message that says what is wrong and the usage where there is one. */
static void test_errors(void)
{
    CHECK_ERR("frobnicate", "unknown command 'frobnicate' (try help)");
    CHECK_EQ(strcmp(err, "unknown command 'frobnicate' (try help)"), 0);
    CHECK_ERR("STATS", "unknown command 'STATS'");
    CHECK_ERR("\"\"", "unknown command '' (try help)");
    CHECK_ERR("\"two words\" x", "unknown command 'two words'");
    CHECK_ERR("--json", "unknown command '--json'");
    CHECK(cmd.is_json);

    /* A long name is shown cut, and never in the middle of a UTF-8 sequence. */
    char line[RH_ADMIN_LINE_MAX + 2];
    memset(line, 'n', 200);
    line[200] = '\0';
    CHECK_EQ(parse(line), -EINVAL);
    CHECK_EQ(strlen(err), strlen("unknown command '' (try help)") + 64);
    memset(line, 'n', 63);
    memcpy(line + 63, "\xc3\xa9xyz", 6);
    CHECK_EQ(parse(line), -EINVAL);
    CHECK_EQ(strlen(err), strlen("unknown command '' (try help)") + 63);
    CHECK(strstr(err, "nnn' (try help)") != NULL);

    /* Arguments: too few, too many; the usage follows. */
    CHECK_ERR("conn", "missing argument; usage: conn <connectionId>");
    CHECK_ERR("conn a b", "too many arguments; usage: conn <connectionId>");
    CHECK_ERR("group chat", "missing argument; usage: group <hub> <group>");
    CHECK_ERR("group", "missing argument; usage: group <hub> <group>");
    CHECK_ERR("group chat room extra", "too many arguments; usage: group <hub> <group>");
    CHECK_ERR("kick", "missing argument; usage: kick <connectionId> [reason]");
    CHECK_ERR("kick a b c", "too many arguments; usage: kick <connectionId> [reason]");
    CHECK_ERR("loglevel", "missing argument; usage: loglevel <error|warn|info|debug>");
    CHECK_ERR("loglevel info debug", "too many arguments; usage: loglevel");
    CHECK_ERR("stats extra", "too many arguments; usage: stats");
    CHECK_ERR("help me", "too many arguments; usage: help");
    CHECK_ERR("shards 1", "too many arguments; usage: shards");
    CHECK_ERR("connections extra", "too many arguments; usage: connections [--hub H] [--limit N]");
    CHECK_ERR("groups x", "too many arguments; usage: groups");
    CHECK_ERR("drain now", "too many arguments; usage: drain [--timeout S]");
    CHECK_ERR("config x", "too many arguments; usage: config");
    CHECK_ERR("conn --json", "missing argument");
    CHECK(cmd.is_json);

    /* Quotes and escapes. */
    CHECK_ERR("kick \"abc", "a quote is not closed; usage: kick <connectionId> [reason]");
    CHECK_ERR("kick abc \"", "a quote is not closed; usage: kick");
    CHECK_ERR("kick \"abc\\\"", "a quote is not closed");
    CHECK_ERR("kick \"abc\\", "a quote is not closed");
    CHECK_ERR("\"kick", "a quote is not closed");
    CHECK_EQ(strcmp(err, "a quote is not closed"), 0);
    CHECK_ERR("kick \"a\\x\"", "a bad escape in quotes (only \\\" and \\\\ are escapes); usage:");
    CHECK_ERR("kick \"a\\n\"", "a bad escape");
    CHECK_ERR("kick \"a\\ \"", "a bad escape");
    CHECK_ERR("kick a\"b\"", "a quote inside a word (quote the whole word); usage: kick");
    CHECK_ERR("kick ab\"", "a quote inside a word");
    CHECK_ERR("connections --hub=\"my hub\"",
              "a quote inside a word (quote the whole word); usage: connections");
    CHECK_ERR("kick \"a\"b", "a closing quote must end the word; usage: kick");
    CHECK_ERR("kick \"a\"\"b\"", "a closing quote must end the word");
    CHECK_ERR("nope \"x", "a quote is not closed");
    CHECK_EQ(strcmp(err, "a quote is not closed"), 0);

    /* What rh_admin_line_find refuses is refused here too, should a line come another way. */
    CHECK_EQ(PARSE_LIT("stats\0"), -EINVAL);
    CHECK_EQ(strcmp(err, "binary input"), 0);
    CHECK_EQ(PARSE_LIT("stats \0"), -EINVAL);
    CHECK_EQ(strcmp(err, "binary input; usage: stats"), 0);
    CHECK_EQ(PARSE_LIT("kick \"a\0b\""), -EINVAL);
    CHECK(strstr(err, "binary input") != NULL);
    CHECK_EQ(PARSE_LIT("\x1b[A"), -EINVAL);
    CHECK_EQ(strcmp(err, "binary input"), 0);
    CHECK_EQ(PARSE_LIT("stats\r"), -EINVAL);
    CHECK_EQ(PARSE_LIT("stats \x7f"), -EINVAL);
    memset(line, 'a', sizeof(line));
    CHECK_EQ(rh_admin_parse(line, RH_ADMIN_LINE_MAX + 1, &cmd, err, sizeof(err)), -EINVAL);
    CHECK_EQ(strcmp(err, "line too long"), 0);

    /* A short @err is cut and still ends in a NUL; none at all is allowed. */
    char small[8];
    memset(small, '#', sizeof(small));
    CHECK_EQ(rh_admin_parse("frobnicate", 10, &cmd, small, sizeof(small)), -EINVAL);
    CHECK_EQ(strcmp(small, "unknown"), 0);
    CHECK_EQ(rh_admin_parse("frobnicate", 10, &cmd, NULL, 0), -EINVAL);
    CHECK_EQ(rh_admin_parse("stats", 5, &cmd, NULL, 0), 0);

    /* A parse after a failed one starts afresh. */
    CHECK_ERR("connections --limit 5 --hub x extra", "too many");
    CHECK_EQ(parse("connections"), 0);
    CHECK(!cmd.has_hub);
    CHECK_EQ(cmd.limit, RH_ADMIN_LIMIT_DEF);
    CHECK_EQ(cmd.arg_count, 0);
}

/* --json anywhere on a line that fails still asks for a JSON error reply. */
static void test_json_on_errors(void)
{
    static const struct {
        const char *line;
        bool is_json;
    } cases[] = {
        {"frobnicate --json", true},
        {"--json frobnicate", true},
        {"stats --bogus --json", true},
        {"stats --json --bogus", true},
        {"conn --json", true},
        {"conn a b --json", true},
        {"connections --limit 0 --json", true},
        {"connections --json --limit x", true},
        {"drain --timeout soon --json", true},
        {"--json kick \"abc", true},
        {"kick \"a\\x\" --json", true},
        {"kick \"a\\x --json", true},
        {"kick a\"b --json", true},
        {"kick \"a\"--json", false},
        {"kick \"a\"b --json", true},
        /* Inside a quote that is never closed --json is not a word. */
        {"kick \"abc --json", false},
        {"frobnicate", false},
        {"stats --jsonx", false},
        {"stats -json", false},
        {"conn --JSON", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = parse(cases[i].line);
        CHECK_EQ(rc, -EINVAL);
        rh_check_report(cmd.is_json == cases[i].is_json, __FILE__, __LINE__, cases[i].line, err);
    }
}

static void test_line_find(void)
{
    size_t line_len = 99, consumed = 99;

    CHECK_EQ(FIND_LIT("stats\n", &line_len, &consumed), 1);
    CHECK_EQ(line_len, 5);
    CHECK_EQ(consumed, 6);
    CHECK_EQ(FIND_LIT("stats\r\n", &line_len, &consumed), 1);
    CHECK_EQ(line_len, 5);
    CHECK_EQ(consumed, 7);
    CHECK_EQ(FIND_LIT("\n", &line_len, &consumed), 1);
    CHECK_EQ(line_len, 0);
    CHECK_EQ(consumed, 1);
    CHECK_EQ(FIND_LIT("\r\n", &line_len, &consumed), 1);
    CHECK_EQ(line_len, 0);
    CHECK_EQ(consumed, 2);

    /* Only the first line counts; what follows it is not looked at. */
    CHECK_EQ(FIND_LIT("help\nstats\n", &line_len, &consumed), 1);
    CHECK_EQ(line_len, 4);
    CHECK_EQ(consumed, 5);
    CHECK_EQ(FIND_LIT("help\r\n\0\x01\r", &line_len, &consumed), 1);
    CHECK_EQ(consumed, 6);
    CHECK_EQ(FIND_LIT("help\n\r\n", &line_len, &consumed), 1);
    CHECK_EQ(consumed, 5);

    /* TAB, blanks and bytes from 0x80 on are line bytes. */
    CHECK_EQ(FIND_LIT("\tgroup  \xc3\xa9 \xff\x80\n", &line_len, &consumed), 1);
    CHECK_EQ(line_len, 13);

    /* No LF yet: wait, whatever came (a CR last included). */
    line_len = consumed = 99;
    CHECK_EQ(FIND_LIT("", &line_len, &consumed), 0);
    CHECK_EQ(FIND_LIT("stats", &line_len, &consumed), 0);
    CHECK_EQ(FIND_LIT("stats\r", &line_len, &consumed), 0);
    CHECK_EQ(FIND_LIT("\r", &line_len, &consumed), 0);
    CHECK_EQ(FIND_LIT("\t  ", &line_len, &consumed), 0);
    CHECK_EQ(line_len, 99);
    CHECK_EQ(consumed, 99);

    /* A lone CR, a NUL and every other control byte but TAB are refused. */
    CHECK_EQ(FIND_LIT("a\rb\n", &line_len, &consumed), -EILSEQ);
    CHECK_EQ(FIND_LIT("a\rb", &line_len, &consumed), -EILSEQ);
    CHECK_EQ(FIND_LIT("a\r\r\n", &line_len, &consumed), -EILSEQ);
    CHECK_EQ(FIND_LIT("\r\r", &line_len, &consumed), -EILSEQ);
    CHECK_EQ(FIND_LIT("stats\0 --json\n", &line_len, &consumed), -EILSEQ);
    CHECK_EQ(FIND_LIT("\0", &line_len, &consumed), -EILSEQ);
    CHECK_EQ(FIND_LIT("stats --json\x01\n", &line_len, &consumed), -EILSEQ);
    CHECK_EQ(FIND_LIT("help\x1b[A\n", &line_len, &consumed), -EILSEQ);
    CHECK_EQ(FIND_LIT("help\x7f", &line_len, &consumed), -EILSEQ);
    for (int ch = 0; ch < 0x100; ch++) {
        uint8_t data[3] = {'a', (uint8_t)ch, 'b'};
        int rc = rh_admin_line_find(data, sizeof(data), &line_len, &consumed);
        if (ch == '\n')
            CHECK_EQ(rc, 1);
        else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            CHECK_EQ(rc, -EILSEQ);
        else
            CHECK_EQ(rc, 0);
    }
}

/* RH_ADMIN_LINE_MAX bytes are a line; one more is not, with or without its line end. */
static void test_line_find_boundary(void)
{
    static uint8_t data[RH_ADMIN_LINE_MAX + 8];
    size_t line_len = 0, consumed = 0;
    memset(data, 'a', sizeof(data));

    data[RH_ADMIN_LINE_MAX] = '\n';
    CHECK_EQ(rh_admin_line_find(data, RH_ADMIN_LINE_MAX + 1, &line_len, &consumed), 1);
    CHECK_EQ(line_len, RH_ADMIN_LINE_MAX);
    CHECK_EQ(consumed, RH_ADMIN_LINE_MAX + 1);

    data[RH_ADMIN_LINE_MAX] = '\r';
    data[RH_ADMIN_LINE_MAX + 1] = '\n';
    CHECK_EQ(rh_admin_line_find(data, RH_ADMIN_LINE_MAX + 2, &line_len, &consumed), 1);
    CHECK_EQ(line_len, RH_ADMIN_LINE_MAX);
    CHECK_EQ(consumed, RH_ADMIN_LINE_MAX + 2);
    /* Its CR came, its LF not yet: still maybe a line. After the CR, anything else is a lone
     * CR. */
    CHECK_EQ(rh_admin_line_find(data, RH_ADMIN_LINE_MAX + 1, &line_len, &consumed), 0);
    data[RH_ADMIN_LINE_MAX + 1] = 'a';
    CHECK_EQ(rh_admin_line_find(data, RH_ADMIN_LINE_MAX + 2, &line_len, &consumed), -EILSEQ);

    memset(data, 'a', sizeof(data));
    CHECK_EQ(rh_admin_line_find(data, RH_ADMIN_LINE_MAX - 1, &line_len, &consumed), 0);
    CHECK_EQ(rh_admin_line_find(data, RH_ADMIN_LINE_MAX, &line_len, &consumed), 0);
    /* The 4097th line byte is known to be too many before any LF comes. */
    CHECK_EQ(rh_admin_line_find(data, RH_ADMIN_LINE_MAX + 1, &line_len, &consumed), -E2BIG);
    CHECK_EQ(rh_admin_line_find(data, sizeof(data), &line_len, &consumed), -E2BIG);
    data[RH_ADMIN_LINE_MAX + 1] = '\n';
    CHECK_EQ(rh_admin_line_find(data, RH_ADMIN_LINE_MAX + 2, &line_len, &consumed), -E2BIG);
    data[RH_ADMIN_LINE_MAX + 1] = '\r';
    data[RH_ADMIN_LINE_MAX + 2] = '\n';
    CHECK_EQ(rh_admin_line_find(data, RH_ADMIN_LINE_MAX + 3, &line_len, &consumed), -E2BIG);

    /* A control byte inside the limit is found first. */
    memset(data, 'a', sizeof(data));
    data[10] = '\0';
    CHECK_EQ(rh_admin_line_find(data, sizeof(data), &line_len, &consumed), -EILSEQ);

    /* A parse of the longest line. */
    memset(data, 'a', sizeof(data));
    memcpy(data, "kick ", 5);
    data[RH_ADMIN_LINE_MAX] = '\n';
    CHECK_EQ(rh_admin_line_find(data, RH_ADMIN_LINE_MAX + 1, &line_len, &consumed), 1);
    CHECK_EQ(rh_admin_parse((const char *)data, line_len, &cmd, err, sizeof(err)), 0);
    CHECK_EQ(cmd.args[0].len, RH_ADMIN_LINE_MAX - 5);
}

/* Input cut at every point gives the same lines as when it comes whole: a session that keeps
 * what is left over and calls again when more comes. */
static void test_line_find_splits(void)
{
    static const char input[] = "help\r\nstats --json\n\n  \t\nconn \"a b\" --json\r\n"
                                "kick x \"reason \\\"r\\\"\"\nconfig";
    static const char *const lines[] = {
        "help", "stats --json", "", "  \t", "conn \"a b\" --json", "kick x \"reason \\\"r\\\"\"",
    };
    const size_t line_count = sizeof(lines) / sizeof(lines[0]);

    for (size_t cut = 0; cut <= sizeof(input) - 1; cut++) {
        uint8_t pending[sizeof(input)];
        size_t pending_len = 0, found = 0;
        bool is_ok = true;
        /* Two chunks: [0, cut) then the rest. */
        for (int chunk = 0; chunk < 2; chunk++) {
            size_t from = chunk ? cut : 0, to = chunk ? sizeof(input) - 1 : cut;
            memcpy(pending + pending_len, input + from, to - from);
            pending_len += to - from;
            for (;;) {
                size_t line_len, consumed;
                int rc = rh_admin_line_find(pending, pending_len, &line_len, &consumed);
                if (rc == 0) break;
                if (rc < 0 || found == line_count || line_len != strlen(lines[found]) ||
                    memcmp(pending, lines[found], line_len) != 0 || consumed <= line_len) {
                    is_ok = false;
                    break;
                }
                found++;
                memmove(pending, pending + consumed, pending_len - consumed);
                pending_len -= consumed;
            }
        }
        CHECK(is_ok);
        CHECK_EQ(found, line_count);
        CHECK_EQ(pending_len, strlen("config"));
    }

    /* A bad byte anywhere in a line is found once it has come, never before. */
    static const char line[] = "connections --hub chat\n";
    for (size_t at = 0; at < sizeof(line) - 2; at++) {
        uint8_t data[sizeof(line)];
        memcpy(data, line, sizeof(line));
        data[at] = '\0';
        size_t line_len, consumed;
        CHECK_EQ(rh_admin_line_find(data, at, &line_len, &consumed), 0);
        CHECK_EQ(rh_admin_line_find(data, at + 1, &line_len, &consumed), -EILSEQ);
        CHECK_EQ(rh_admin_line_find(data, sizeof(line) - 1, &line_len, &consumed), -EILSEQ);
    }
}

/* What rh_admin_quote writes, byte for byte. */
static void test_quote(void)
{
    static const struct {
        const char *word;
        const char *quoted;
    } cases[] = {
        {"plain", "plain"},
        {"", "\"\""},
        {"a b", "\"a b\""},
        {"a\tb", "\"a\tb\""},
        {" ", "\" \""},
        {"\"", "\"\\\"\""},
        {"\\", "\"\\\\\""},
        {"a\\b", "\"a\\\\b\""},
        {"say \"hi\" \\ there", "\"say \\\"hi\\\" \\\\ there\""},
        {"\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"},
        {"-x", "-x"},
        {"a=b", "a=b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rh_buf *b = rh_buf_new(4);
        rh_buf_append(&b, "<", 1);
        rh_admin_quote(&b, cases[i].word, strlen(cases[i].word));
        rh_buf_append(&b, ">", 1);
        size_t n = strlen(cases[i].quoted);
        bool same = b->len == n + 2 && b->data[0] == '<' &&
                    memcmp(b->data + 1, cases[i].quoted, n) == 0 && b->data[n + 1] == '>';
        rh_check_report(same, __FILE__, __LINE__, cases[i].word, cases[i].quoted);
        rh_buf_unref(b);
    }
}

/* Words quoted by rh_admin_quote come back from rh_admin_parse as they were. */
static void test_quote_round_trips(void)
{
    static const char *const fixed[][2] = {
        {"abc", "gone fishing"},
        {"", ""},
        {"\"", "\\"},
        {"\\\"", "\"\\"},
        {"a \"b\" \\ c", "\t"},
        {"x\\", "-"},
        {"\xc3\xa9 \xff", "a=b --json"},
        {"-", "x --json"},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        check_round_trip(fixed[i], 1, __FILE__, __LINE__);
        check_round_trip(fixed[i], 2, __FILE__, __LINE__);
    }

    /* Random words of the bytes that matter. Never one that starts with "--": that is a flag,
     * however it is written. */
    static const char alphabet[] = "ab \t\"\\-=\xc3\xa9";
    uint32_t seed = 12345;
    char words[2][64];
    const char *word_ptrs[2] = {words[0], words[1]};
    for (int round = 0; round < 2000; round++) {
        for (int w = 0; w < 2; w++) {
            seed = seed * 1103515245u + 12345u;
            size_t len = (seed >> 16) % 20;
            for (size_t k = 0; k < len; k++) {
                seed = seed * 1103515245u + 12345u;
                words[w][k] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
            }
            words[w][len] = '\0';
            if (len >= 2 && words[w][0] == '-' && words[w][1] == '-') words[w][0] = 'x';
        }
        check_round_trip(word_ptrs, 2, __FILE__, __LINE__);
    }
}

static int parse(const char *line)
{
    return rh_admin_parse(line, strlen(line), &cmd, err, sizeof(err));
}

static void check_err(const char *line, const char *part, const char *file, int line_no)
{
    int rc = parse(line);
    char detail[512];
    snprintf(detail, sizeof(detail), "%s -> %d \"%s\", wanted \"%s\"", line, rc, err, part);
    rh_check_report(rc == -EINVAL && strstr(err, part) != NULL, file, line_no, "error message",
                    detail);
}

static void check_arg(uint32_t idx, const char *text, const char *file, int line_no)
{
    char detail[256];
    bool same = idx < cmd.arg_count && rh_span_eq_str(cmd.args[idx], text);
    if (idx < cmd.arg_count)
        snprintf(detail, sizeof(detail), "arg %u is \"%.*s\", wanted \"%s\"", idx,
                 (int)cmd.args[idx].len, (const char *)cmd.args[idx].ptr, text);
    else
        snprintf(detail, sizeof(detail), "no arg %u (%u args)", idx, cmd.arg_count);
    rh_check_report(same, file, line_no, "argument", detail);
}

static bool spans_are_inside(const struct rh_admin_command *c)
{
    const uint8_t *start = (const uint8_t *)c->text, *end = start + sizeof(c->text);
    if (c->arg_count > RH_ADMIN_ARGS_MAX) return false;
    for (uint32_t i = 0; i < c->arg_count; i++)
        if (c->args[i].ptr < start || c->args[i].ptr + c->args[i].len >= end) return false;
    if (c->has_hub && (c->hub.ptr < start || c->hub.ptr + c->hub.len >= end)) return false;
    return true;
}

/* "kick" then @words quoted, with --json between them, parses back to @words. */
static void check_round_trip(const char *const *words, uint32_t word_count, const char *file,
                             int line_no)
{
    struct rh_buf *b = rh_buf_new(16);
    rh_buf_append(&b, "kick", 4);
    for (uint32_t i = 0; i < word_count; i++) {
        rh_buf_append(&b, i ? " --json " : " ", i ? 8 : 1);
        rh_admin_quote(&b, words[i], strlen(words[i]));
    }
    int rc = rh_admin_parse((const char *)b->data, b->len, &cmd, err, sizeof(err));
    bool same = rc == 0 && cmd.cmd == RH_ADMIN_KICK && cmd.arg_count == word_count &&
                cmd.is_json == (word_count > 1);
    for (uint32_t i = 0; same && i < word_count; i++)
        same = rh_span_eq_str(cmd.args[i], words[i]);
    char detail[1024];
    snprintf(detail, sizeof(detail), "%.*s -> %d %s", (int)(b->len < 500 ? b->len : 500),
             (const char *)b->data, rc, err);
    rh_check_report(same, file, line_no, "round trip", detail);
    rh_buf_unref(b);
}
