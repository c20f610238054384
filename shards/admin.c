/*
 * shards/admin.c - see admin.h. A question is a query on the shard that serves it: it posts an
 * ask blob to the shards concerned, keeps the parts they post back (blobs, referenced until the
 * answer is written) and answers when the last one is in. Parts are written by this file on
 * every shard and read by it on one, in the same process: fixed structs are copied as they are.
 *
 * Admin sessions read lines into a buffer of their own and answer them one at a time, in order:
 * the next command is parsed once the answer to the one before has been queued.
 */
#include "shards/admin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/list.h"
#include "core/log.h"
#include "core/timer.h"
#include "shards/backplane.h"
#include "shards/front.h"
#include "shards/groups.h"
#include "shards/hub.h"
#include "transports/admin.h"
#include "transports/json.h"

#define BLOB_ASK          RH_ADMIN_BLOB_FIRST       /* asking shard -> shards: a question */
#define BLOB_PART         (RH_ADMIN_BLOB_FIRST + 1) /* shard -> asking shard: its part */
#define PART_HEAD         8 /* a part's shard index, padded: what follows is read in place */
#define RATE_MS           1000
#define SESSION_INPUT_MAX (64 * 1024) /* bytes of commands a session may send ahead */
#define DASH_STREAMS_MAX  64          /* dashboard streams per shard */
#define DEFAULT_KICK      "kicked by an operator"

enum ask {
    ASK_REPORT, /* counters and state: stats, shards, drain, /metrics, the dashboard */
    ASK_CONNS,
    ASK_CONN,
    ASK_GROUPS,
    ASK_GROUP,
    ASK_KICK,
};

enum asker {
    FOR_ADMIN,     /* an admin session: reply_to is its connection */
    FOR_METRICS,   /* GET /metrics: reply_to waits in the HTTP front */
    FOR_DASHBOARD, /* this shard's dashboard streams */
};

/* Per-second rates a shard measures of itself. */
struct rates {
    uint32_t in_per_s, out_per_s, drops_per_s;
};

/* A shard's part of ASK_REPORT. */
struct report_part {
    struct rh_shard_report rt;
    struct rh_hub_report hub;
    struct rates rates;
    struct rh_backplane_report bp;
};

/* A group as a shard sees it (ASK_GROUPS, ASK_GROUP), after its names in the part. */
struct group_part {
    uint32_t local_members;
    uint32_t rate_per_s;
    uint64_t messages;
    uint8_t is_owned;
};

struct query {
    struct rh_list link;
    uint32_t id;
    uint8_t ask;   /* enum ask */
    uint8_t asker; /* enum asker */
    uint32_t expected, got;
    uint64_t reply_to;
    struct rh_admin_command *cmd; /* FOR_ADMIN */
    struct rh_blob *parts[RH_SHARDS_MAX];
};

struct admin_session {
    struct rh_conn *conn;
    uint8_t *in;
    uint32_t in_len;
    bool is_busy; /* a query runs for it: the next line waits */
};

struct admin_shard {
    struct rh_shard *shard;
    uint32_t next_id;
    struct rh_list queries;
    struct rh_timer tick;
    uint64_t last_in, last_out, last_drops;
    struct rates rates;
    uint64_t dash[DASH_STREAMS_MAX]; /* connection ids */
    uint32_t dash_count;
    bool is_dash_asking;
};

static _Thread_local struct admin_shard *self;

static void tick_fired(struct rh_timer *t);
static void ask(struct admin_shard *as, enum ask kind, enum asker asker, uint64_t reply_to,
                struct rh_admin_command *cmd, int only_shard);
static void ask_received(struct admin_shard *as, struct rh_blob *b);
static void part_received(struct admin_shard *as, struct rh_blob *b);
static void query_finish(struct admin_shard *as, struct query *q);
static void session_pump(struct admin_session *a);
static void run_command(struct admin_session *a, struct rh_admin_command *cmd);
static void reply(struct admin_session *a, struct rh_buf *out);
static void reply_error(struct admin_session *a, bool is_json, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static struct rh_buf *render(struct admin_shard *as, struct query *q);
static void put(struct rh_buf **o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_str(struct rh_buf **o, const void *s, size_t len);
static uint64_t sessions_of(const struct rh_hub_report *hub, int transport);
static void render_nodes(struct rh_buf **o, struct rh_shard *s, bool is_json);
static void render_redis(struct rh_buf **o, const struct query *q, uint32_t n, bool is_json);

void rh_admin_shard_start(struct rh_shard *s)
{
    struct admin_shard *as = rh_calloc(1, sizeof(*as));
    as->shard = s;
    rh_list_init(&as->queries);
    rh_timer_init(&as->tick, tick_fired);
    rh_timer_schedule(rh_shard_wheel(s), &as->tick, rh_clock_now_ms() + RATE_MS);
    self = as;
}

void rh_admin_shard_stop(struct rh_shard *s)
{
    (void)s;
    struct admin_shard *as = self;
    rh_timer_cancel(&as->tick);
    struct rh_list *it, *tmp;
    rh_list_for_each_safe(it, tmp, &as->queries) {
        struct query *q = rh_list_entry(it, struct query, link);
        for (uint32_t i = 0; i < RH_SHARDS_MAX; i++)
            if (q->parts[i]) rh_blob_unref(q->parts[i]);
        rh_list_unlink(&q->link);
        rh_free(q->cmd);
        rh_free(q);
    }
    rh_free(as);
    self = NULL;
}

bool rh_admin_blob(struct rh_shard *s, struct rh_blob *b)
{
    (void)s;
    if (b->kind == BLOB_ASK)
        ask_received(self, b);
    else if (b->kind == BLOB_PART)
        part_received(self, b);
    else
        return false;
    return true;
}

/* Rates over the last second, and the dashboard's numbers. */
static void tick_fired(struct rh_timer *t)
{
    struct admin_shard *as = self;
    struct rh_shard_report rt;
    struct rh_hub_report *hub = rh_alloc(sizeof(*hub));
    rh_shard_report(as->shard, &rt);
    rh_hub_report(as->shard, hub);
    uint64_t in = 0, out = 0;
    for (int tr = 0; tr < RH_HUB_REPORT_TRANSPORTS; tr++)
        for (int c = 0; c < 2; c++) {
            in += hub->total[tr][c].messages_in;
            out += hub->total[tr][c].messages_out;
        }
    uint64_t drops = rt.dropped_frames + hub->dropped_frames + hub->closed_rate +
                     hub->closed_too_large + hub->closed_handshake + hub->closed_slow;
    as->rates = (struct rates){(uint32_t)(in - as->last_in), (uint32_t)(out - as->last_out),
                               (uint32_t)(drops - as->last_drops)};
    as->last_in = in;
    as->last_out = out;
    as->last_drops = drops;
    rh_free(hub);
    if (as->dash_count && !as->is_dash_asking) {
        as->is_dash_asking = true;
        ask(as, ASK_REPORT, FOR_DASHBOARD, 0, NULL, -1);
    }
    rh_timer_schedule(rh_shard_wheel(as->shard), t, rh_clock_now_ms() + RATE_MS);
}

/* ---- questions and parts ---- */

/* Asks every shard (or @only_shard) @kind for @asker; takes @cmd. The ask carries what the
 * shards need of the command: u8 kind, u32 id, u32 limit, u8 has_a, u16 a length, a, u16 b
 * length, b. */
static void ask(struct admin_shard *as, enum ask kind, enum asker asker, uint64_t reply_to,
                struct rh_admin_command *cmd, int only_shard)
{
    struct rh_shard *s = as->shard;
    uint32_t n = rh_shard_count(s);
    struct query *q = rh_calloc(1, sizeof(*q));
    q->id = ++as->next_id;
    q->ask = (uint8_t)kind;
    q->asker = (uint8_t)asker;
    q->reply_to = reply_to;
    q->cmd = cmd;
    q->expected = only_shard >= 0 ? 1 : n;
    rh_list_push_back(&as->queries, &q->link);

    struct rh_span a = {0}, b = {0};
    bool has_a = false;
    uint32_t limit = cmd ? cmd->limit : 0;
    if (cmd && (kind == ASK_CONNS || kind == ASK_GROUPS) && cmd->has_hub) {
        a = cmd->hub;
        has_a = true;
    } else if (cmd && cmd->arg_count) {
        a = cmd->args[0];
        has_a = true;
        if (cmd->arg_count > 1) b = cmd->args[1];
    }
    if (kind == ASK_KICK && !b.len) b = rh_span_make(DEFAULT_KICK, sizeof(DEFAULT_KICK) - 1);
    uint32_t len = 1 + 4 + 4 + 1 + 2 + a.len + 2 + b.len;
    struct rh_blob *blob = rh_blob_new(BLOB_ASK, only_shard >= 0 ? 1 : n, NULL, len);
    uint8_t *p = blob->data;
    *p++ = (uint8_t)kind;
    memcpy(p, &q->id, 4);
    memcpy(p + 4, &limit, 4);
    p += 8;
    *p++ = has_a;
    uint16_t len16 = (uint16_t)a.len;
    memcpy(p, &len16, 2);
    if (a.len) memcpy(p + 2, a.ptr, a.len);
    p += 2 + a.len;
    len16 = (uint16_t)b.len;
    memcpy(p, &len16, 2);
    if (b.len) memcpy(p + 2, b.ptr, b.len);
    blob->arg = rh_shard_idx(s);
    if (only_shard >= 0)
        rh_shard_post(s, (uint32_t)only_shard, blob);
    else
        rh_shard_post_all(s, blob);
}

struct conns_ctx {
    struct rh_buf *out;
    uint32_t limit, total;
};

static void conn_listed(void *ctx, const struct rh_hub_conn_info *info)
{
    struct conns_ctx *cc = ctx;
    if (cc->total++ < cc->limit) rh_buf_append(&cc->out, info, sizeof(*info));
}

static void group_named(void *ctx, struct rh_span group)
{
    struct rh_buf **out = ctx;
    uint16_t len = (uint16_t)group.len;
    rh_buf_append(out, &len, 2);
    rh_buf_append(out, group.ptr, group.len);
}

struct groups_ctx {
    struct rh_buf *out;
    struct rh_span hub;
    bool has_hub;
};

static void group_listed(void *ctx, const struct rh_group_info *info)
{
    struct groups_ctx *gc = ctx;
    if (info->key.kind != RH_GROUP_NAMED) return;
    if (gc->has_hub && !rh_span_eq(info->key.hub, gc->hub)) return;
    if (!info->local_members && !info->is_owned) return;
    group_named(&gc->out, info->key.hub);
    group_named(&gc->out, info->key.name);
    struct group_part gp = {info->local_members, info->rate_per_s, info->messages, info->is_owned};
    rh_buf_append(&gc->out, &gp, sizeof(gp));
}

/* A shard's part: u8 its index, then what the ask wants. */
static void ask_received(struct admin_shard *as, struct rh_blob *b)
{
    struct rh_shard *s = as->shard;
    const uint8_t *p = b->data;
    uint8_t kind = p[0];
    uint32_t id, limit;
    memcpy(&id, p + 1, 4);
    memcpy(&limit, p + 5, 4);
    bool has_a = p[9];
    uint16_t a_len, b_len;
    memcpy(&a_len, p + 10, 2);
    struct rh_span a = rh_span_make(p + 12, a_len);
    memcpy(&b_len, p + 12 + a_len, 2);
    struct rh_span bs = rh_span_make(p + 14 + a_len, b_len);

    struct rh_buf *out = rh_buf_new(256);
    uint8_t head[PART_HEAD] = {(uint8_t)rh_shard_idx(s)};
    rh_buf_append(&out, head, sizeof(head));
    switch ((enum ask)kind) {
    case ASK_REPORT: {
        struct report_part *rp = rh_alloc(sizeof(*rp));
        rh_shard_report(s, &rp->rt);
        rh_hub_report(s, &rp->hub);
        rh_backplane_report(s, &rp->bp);
        rp->rates = as->rates;
        rh_buf_append(&out, rp, sizeof(*rp));
        rh_free(rp);
        break;
    }
    case ASK_CONNS: {
        struct conns_ctx cc = {out, limit, 0};
        uint32_t at = out->len;
        rh_buf_append(&cc.out, &cc.total, 4);
        rh_hub_each_conn(s, has_a ? a : rh_span_make(NULL, 0), conn_listed, &cc);
        memcpy(cc.out->data + at, &cc.total, 4);
        out = cc.out;
        break;
    }
    case ASK_CONN: {
        struct rh_hub_conn_info info;
        uint8_t found = 0;
        uint32_t at = out->len;
        rh_buf_append(&out, &found, 1);
        memset(rh_buf_extend(&out, sizeof(info)), 0, sizeof(info));
        if (rh_hub_conn_find(s, a, &info, group_named, &out)) {
            out->data[at] = 1;
            memcpy(out->data + at + 1, &info, sizeof(info));
        }
        break;
    }
    case ASK_GROUPS: {
        struct groups_ctx gc = {out, a, has_a};
        rh_groups_each(rh_hub_groups(s), group_listed, &gc);
        out = gc.out;
        break;
    }
    case ASK_GROUP: {
        struct rh_group_key key = {RH_GROUP_NAMED, a, bs};
        struct rh_group_info info;
        struct group_part gp = {0};
        if (rh_groups_info(rh_hub_groups(s), &key, &info))
            gp = (struct group_part){info.local_members, info.rate_per_s, info.messages,
                                     info.is_owned};
        rh_buf_append(&out, &gp, sizeof(gp));
        break;
    }
    case ASK_KICK: {
        uint8_t kicked = rh_hub_kick(s, a, bs);
        rh_buf_append(&out, &kicked, 1);
        break;
    }
    }
    struct rh_blob *part = rh_blob_new(BLOB_PART, 1, out->data, out->len);
    part->arg = id;
    rh_buf_unref(out);
    rh_shard_post(s, (uint32_t)b->arg, part);
}

static void part_received(struct admin_shard *as, struct rh_blob *b)
{
    struct rh_list *it;
    rh_list_for_each(it, &as->queries) {
        struct query *q = rh_list_entry(it, struct query, link);
        if (q->id != (uint32_t)b->arg) continue;
        uint8_t idx = b->data[0];
        if (idx >= RH_SHARDS_MAX || q->parts[idx]) return;
        rh_blob_ref_n(b, 1);
        q->parts[idx] = b;
        if (++q->got == q->expected) query_finish(as, q);
        return;
    }
}

static void query_finish(struct admin_shard *as, struct query *q)
{
    struct rh_shard *s = as->shard;
    rh_list_unlink(&q->link);
    struct rh_buf *out = render(as, q);
    if (q->asker == FOR_ADMIN) {
        struct rh_conn *c = rh_shard_conn(s, q->reply_to);
        struct admin_session *a = c && rh_conn_is_open(c) ? rh_conn_app(c) : NULL;
        if (a) {
            reply(a, out);
            a->is_busy = false;
        }
        /* A drain goes on even when the session that asked has gone meanwhile. */
        if (q->cmd->cmd == RH_ADMIN_DRAIN)
            rh_runtime_drain(rh_shard_runtime(s), q->cmd->timeout_s * 1000);
        else if (a)
            session_pump(a);
    } else if (q->asker == FOR_METRICS) {
        rh_front_answer(s, q->reply_to, 200, RH_FRONT_PROMETHEUS,
                        rh_span_make(out->data, out->len));
    } else {
        as->is_dash_asking = false;
        for (uint32_t i = 0; i < as->dash_count; i++) {
            struct rh_conn *c = rh_shard_conn(s, as->dash[i]);
            if (c) rh_conn_send(c, out);
        }
    }
    rh_buf_unref(out);
    for (uint32_t i = 0; i < RH_SHARDS_MAX; i++)
        if (q->parts[i]) rh_blob_unref(q->parts[i]);
    rh_free(q->cmd);
    rh_free(q);
}

/* ---- admin sessions ---- */

void rh_admin_open(struct rh_conn *c)
{
    const struct rh_cfg *cfg = rh_runtime_cfg(rh_shard_runtime(rh_conn_shard(c)));
    int64_t uid = rh_conn_peer_uid(c);
    bool is_allowed = uid >= 0 && (uid_t)uid == getuid();
    for (const char *p = cfg->admin_uids; *p && !is_allowed && uid >= 0;) {
        is_allowed = strtoll(p, NULL, 10) == uid;
        p += strcspn(p, ",");
        p += *p == ',';
    }
    if (!is_allowed) {
        char text[96];
        int len = snprintf(text, sizeof(text),
                           "error: permission denied: uid %lld is not allowed\n\n", (long long)uid);
        rh_log_limited(RH_LOG_WARN, "admin", "refused an admin session of uid %lld (--admin-uids)",
                       (long long)uid);
        rh_conn_send_copy(c, text, (uint32_t)len);
        rh_conn_close(c, RH_CLOSE_AFTER_FLUSH);
        return;
    }
    struct admin_session *a = rh_calloc(1, sizeof(*a));
    a->conn = c;
    a->in = rh_alloc(SESSION_INPUT_MAX);
    rh_conn_set_app(c, a);
}

void rh_admin_close(struct rh_conn *c)
{
    struct admin_session *a = rh_conn_app(c);
    if (!a) return;
    rh_free(a->in);
    rh_free(a);
    rh_conn_set_app(c, NULL);
}

ssize_t rh_admin_recv(struct rh_conn *c, const uint8_t *data, size_t len)
{
    struct admin_session *a = rh_conn_app(c);
    if (!a || !rh_conn_is_open(c)) return (ssize_t)len;
    if (len > SESSION_INPUT_MAX - a->in_len) {
        static const char text[] = "error: too many commands sent ahead of their answers\n\n";
        rh_conn_send_copy(c, text, sizeof(text) - 1);
        rh_conn_close(c, RH_CLOSE_AFTER_FLUSH);
        return -EMSGSIZE;
    }
    memcpy(a->in + a->in_len, data, len);
    a->in_len += (uint32_t)len;
    session_pump(a);
    return (ssize_t)len;
}

/* Answers the lines that are in, one at a time. */
static void session_pump(struct admin_session *a)
{
    while (!a->is_busy && a->in_len && rh_conn_is_open(a->conn)) {
        size_t line_len, consumed;
        int found = rh_admin_line_find(a->in, a->in_len, &line_len, &consumed);
        if (found == 0) return;
        if (found < 0) {
            /* Nothing after a line like that can be trusted: this session ends. */
            reply_error(a, false, found == -E2BIG ? "line too long" : "binary input");
            rh_log_limited(RH_LOG_INFO, "admin", "admin session closed: %s",
                           found == -E2BIG ? "line too long" : "binary input");
            rh_conn_close(a->conn, RH_CLOSE_AFTER_FLUSH);
            return;
        }
        struct rh_admin_command *cmd = rh_alloc(sizeof(*cmd));
        char err[256];
        int rc = rh_admin_parse((const char *)a->in, line_len, cmd, err, sizeof(err));
        memmove(a->in, a->in + consumed, a->in_len - consumed);
        a->in_len -= (uint32_t)consumed;
        if (rc) {
            if (rc < 0) reply_error(a, cmd->is_json, "%s", err);
            rh_free(cmd);
            continue;
        }
        run_command(a, cmd);
    }
}

/* One option of `config`: the effective value, so the port bound and the socket's path rather
 * than 0 and %p. */
static void config_row(void *ctx, const char *name, const char *value)
{
    struct rh_buf **o = ((void **)ctx)[0];
    bool is_json = *(bool *)((void **)ctx)[1];
    const struct rh_runtime *rt = rh_shard_runtime(self->shard);
    char port[8];
    if (!strcmp(name, "port")) {
        snprintf(port, sizeof(port), "%u", rh_runtime_port(rt));
        value = port;
    } else if (!strcmp(name, "admin-socket") && rh_runtime_admin_path(rt)) {
        value = rh_runtime_admin_path(rt);
    }
    if (is_json) {
        if ((*o)->data[(*o)->len - 1] != '{') put(o, ",");
        put_str(o, name, strlen(name));
        put(o, ":");
        put_str(o, value, strlen(value));
    } else {
        put(o, "%-28s %s\n", name, value);
    }
}

static void run_command(struct admin_session *a, struct rh_admin_command *cmd)
{
    struct rh_shard *s = rh_conn_shard(a->conn);
    struct admin_shard *as = self;
    struct rh_buf *out = rh_buf_new(1024);
    switch (cmd->cmd) {
    case RH_ADMIN_HELP:
        if (cmd->is_json) {
            put(&out, "{\"ok\":true,\"commands\":[");
            for (int i = 0; i < RH_ADMIN_CMD_COUNT; i++) {
                const struct rh_admin_cmd_info *c = &rh_admin_cmds[i];
                put(&out, "%s{\"name\":", i ? "," : "");
                put_str(&out, c->name, strlen(c->name));
                put(&out, ",\"usage\":");
                put_str(&out, c->usage, strlen(c->usage));
                put(&out, ",\"summary\":");
                put_str(&out, c->summary, strlen(c->summary));
                put(&out, "}");
            }
            put(&out, "]}\n");
        } else {
            for (int i = 0; i < RH_ADMIN_CMD_COUNT; i++)
                put(&out, "%-36s %s\n", rh_admin_cmds[i].usage, rh_admin_cmds[i].summary);
            put(&out, "(add --json to any command for one line of JSON)\n\n");
        }
        break;
    case RH_ADMIN_LOGLEVEL: {
        char level_text[16];
        enum rh_log_level level;
        snprintf(level_text, sizeof(level_text), "%.*s", (int)cmd->args[0].len,
                 (const char *)cmd->args[0].ptr);
        if (rh_log_parse_level(level_text, &level) != 0) {
            reply_error(a, cmd->is_json, "unknown log level '%s' (error, warn, info or debug)",
                        level_text);
            rh_buf_unref(out);
            rh_free(cmd);
            return;
        }
        rh_log_set_level(level);
        rh_log_warn("admin", "log level set to %s through the admin socket", level_text);
        put(&out, cmd->is_json ? "{\"ok\":true,\"log_level\":\"%s\"}\n" : "log level: %s\n\n",
            level_text);
        break;
    }
    case RH_ADMIN_NODES:
        render_nodes(&out, s, cmd->is_json);
        break;
    case RH_ADMIN_CONFIG: {
        bool is_json = cmd->is_json;
        void *ctx[2] = {&out, &is_json};
        if (is_json) put(&out, "{\"ok\":true,\"config\":{");
        rh_cfg_describe(rh_runtime_cfg(rh_shard_runtime(s)), config_row, ctx);
        put(&out, is_json ? "}}\n" : "\n");
        break;
    }
    case RH_ADMIN_CONN:
    case RH_ADMIN_KICK: {
        int shard = rh_hub_conn_shard(s, cmd->args[0]);
        if (shard < 0) {
            reply_error(a, cmd->is_json, "no connection %.*s", (int)cmd->args[0].len,
                        (const char *)cmd->args[0].ptr);
            rh_buf_unref(out);
            rh_free(cmd);
            return;
        }
        rh_buf_unref(out);
        a->is_busy = true;
        ask(as, cmd->cmd == RH_ADMIN_CONN ? ASK_CONN : ASK_KICK, FOR_ADMIN, rh_conn_id(a->conn),
            cmd, shard);
        return;
    }
    default: {
        static const uint8_t asks[] = {
            [RH_ADMIN_STATS] = ASK_REPORT, [RH_ADMIN_SHARDS] = ASK_REPORT,
            [RH_ADMIN_DRAIN] = ASK_REPORT, [RH_ADMIN_CONNECTIONS] = ASK_CONNS,
            [RH_ADMIN_REDIS] = ASK_REPORT, [RH_ADMIN_GROUPS] = ASK_GROUPS,
            [RH_ADMIN_GROUP] = ASK_GROUP,
        };
        rh_buf_unref(out);
        a->is_busy = true;
        ask(as, (enum ask)asks[cmd->cmd], FOR_ADMIN, rh_conn_id(a->conn), cmd, -1);
        return;
    }
    }
    reply(a, out);
    rh_buf_unref(out);
    rh_free(cmd);
}

static void reply(struct admin_session *a, struct rh_buf *out)
{
    rh_conn_send(a->conn, out);
}

static void reply_error(struct admin_session *a, bool is_json, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    struct rh_buf *out = rh_buf_new(128);
    if (is_json) {
        put(&out, "{\"ok\":false,\"error\":");
        put_str(&out, text, strlen(text));
        put(&out, "}\n");
    } else {
        put(&out, "error: %s\n\n", text);
    }
    reply(a, out);
    rh_buf_unref(out);
}

/* ---- /metrics and the dashboard ---- */

void rh_admin_metrics(struct rh_shard *s, uint64_t reply_to)
{
    (void)s;
    ask(self, ASK_REPORT, FOR_METRICS, reply_to, NULL, -1);
}

void rh_admin_dashboard_attach(struct rh_conn *c)
{
    struct admin_shard *as = self;
    if (as->dash_count == DASH_STREAMS_MAX) {
        rh_conn_close(c, RH_CLOSE_AFTER_FLUSH);
        return;
    }
    as->dash[as->dash_count++] = rh_conn_id(c);
}

void rh_admin_dashboard_detach(struct rh_conn *c)
{
    struct admin_shard *as = self;
    for (uint32_t i = 0; i < as->dash_count; i++)
        if (as->dash[i] == rh_conn_id(c)) as->dash[i] = as->dash[--as->dash_count];
}

/* ---- rendering ---- */

static void put(struct rh_buf **o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *at = (char *)rh_buf_extend(o, (uint32_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(at, (size_t)len + 1, fmt, ap);
    va_end(ap);
    (*o)->len--; /* the NUL */
}

static void put_str(struct rh_buf **o, const void *s, size_t len)
{
    rh_json_write_string(o, s, len);
}

static const char *const transport_keys[RH_HUB_REPORT_TRANSPORTS] = {"websockets", "sse",
                                                                     "longpolling", "eventsource"};
static const char *const transport_names[RH_HUB_REPORT_TRANSPORTS] = {
    "WebSockets", "ServerSentEvents", "LongPolling", "EventSource"};
static const char *const codec_names[2] = {"json", "messagepack"};

static uint64_t sessions_of(const struct rh_hub_report *hub, int transport)
{
    return hub->total[transport][0].sessions + hub->total[transport][1].sessions;
}

/* The numbers `stats` shows for a shard, or summed for the node. */
struct stat_fields {
    uint64_t connections, sessions[RH_HUB_REPORT_TRANSPORTS][2], groups;
    uint64_t messages_in, messages_out, in_per_s, out_per_s, bytes_in, bytes_out, queued;
    uint64_t closed_rate, closed_too_large, closed_handshake, closed_slow, closed_kicked;
    uint64_t closed_timeout;
    uint64_t dropped_bytes, dropped_frames, refused_joins;
};

static void stat_fields_add(struct stat_fields *f, const struct report_part *rp)
{
    f->connections += rp->rt.conns_live;
    for (int t = 0; t < RH_HUB_REPORT_TRANSPORTS; t++)
        for (int c = 0; c < 2; c++) {
            const struct rh_hub_counts *n = &rp->hub.total[t][c];
            f->sessions[t][c] += n->sessions;
            f->messages_in += n->messages_in;
            f->messages_out += n->messages_out;
        }
    f->groups += rp->hub.groups_owned;
    f->in_per_s += rp->rates.in_per_s;
    f->out_per_s += rp->rates.out_per_s;
    f->bytes_in += rp->rt.bytes_in;
    f->bytes_out += rp->rt.bytes_out;
    f->queued += rp->rt.send_queue_bytes;
    f->closed_rate += rp->hub.closed_rate;
    f->closed_too_large += rp->hub.closed_too_large;
    f->closed_handshake += rp->hub.closed_handshake;
    f->closed_slow += rp->hub.closed_slow;
    f->closed_kicked += rp->hub.closed_kicked;
    f->closed_timeout += rp->hub.closed_timeout;
    f->dropped_bytes += rp->hub.dropped_bytes;
    f->dropped_frames += rp->rt.dropped_frames + rp->hub.dropped_frames;
    f->refused_joins += rp->hub.refused_joins;
}

static void stat_fields_json(struct rh_buf **o, const struct stat_fields *f)
{
    put(o, "\"connections\":%llu,\"sessions\":{", (unsigned long long)f->connections);
    for (int t = 0; t < RH_HUB_REPORT_TRANSPORTS; t++)
        put(o, "%s\"%s\":{\"json\":%llu,\"messagepack\":%llu}", t ? "," : "", transport_keys[t],
            (unsigned long long)f->sessions[t][0], (unsigned long long)f->sessions[t][1]);
    put(o,
        "},\"groups\":%llu,\"messages_in\":%llu,\"messages_out\":%llu,\"messages_in_per_s\":%llu,"
        "\"messages_out_per_s\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"
        "\"send_queue_bytes\":%llu,\"closes\":{\"rate\":%llu,\"too_large\":%llu,"
        "\"handshake_timeout\":%llu,\"slow_consumer\":%llu,\"kicked\":%llu,"
        "\"client_timeout\":%llu},"
        "\"drops\":{\"bytes\":%llu,\"frames\":%llu,\"refused_joins\":%llu}",
        (unsigned long long)f->groups, (unsigned long long)f->messages_in,
        (unsigned long long)f->messages_out, (unsigned long long)f->in_per_s,
        (unsigned long long)f->out_per_s, (unsigned long long)f->bytes_in,
        (unsigned long long)f->bytes_out, (unsigned long long)f->queued,
        (unsigned long long)f->closed_rate, (unsigned long long)f->closed_too_large,
        (unsigned long long)f->closed_handshake, (unsigned long long)f->closed_slow,
        (unsigned long long)f->closed_kicked, (unsigned long long)f->closed_timeout,
        (unsigned long long)f->dropped_bytes, (unsigned long long)f->dropped_frames,
        (unsigned long long)f->refused_joins);
}

static void stat_fields_row(struct rh_buf **o, const char *name, const struct stat_fields *f)
{
    uint64_t closes = f->closed_rate + f->closed_too_large + f->closed_handshake + f->closed_slow +
                      f->closed_kicked + f->closed_timeout;
    put(o,
        "%-6s %7llu %5llu/%-5llu %5llu %5llu/%-5llu %5llu %6llu %8llu %8llu %10llu %10llu "
        "%12llu %12llu %9llu %6llu %7llu\n",
        name, (unsigned long long)f->connections, (unsigned long long)f->sessions[0][0],
        (unsigned long long)f->sessions[0][1], (unsigned long long)f->sessions[1][0],
        (unsigned long long)f->sessions[2][0], (unsigned long long)f->sessions[2][1],
        (unsigned long long)(f->sessions[3][0] + f->sessions[3][1]), (unsigned long long)f->groups,
        (unsigned long long)f->in_per_s, (unsigned long long)f->out_per_s,
        (unsigned long long)f->messages_in, (unsigned long long)f->messages_out,
        (unsigned long long)f->bytes_in, (unsigned long long)f->bytes_out,
        (unsigned long long)f->queued, (unsigned long long)closes,
        (unsigned long long)f->dropped_frames);
}

static const struct report_part *report_of(const struct query *q, uint32_t i)
{
    return (const struct report_part *)(q->parts[i]->data + PART_HEAD);
}

static void render_stats(struct rh_buf **o, const struct query *q, uint32_t n, bool is_json)
{
    const struct rh_runtime *rt = rh_shard_runtime(self->shard);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long uptime = (now.tv_sec * 1000LL - rh_runtime_started_ms(rt)) / 1000;
    struct stat_fields total = {0}, each[RH_SHARDS_MAX];
    for (uint32_t i = 0; i < n; i++) {
        memset(&each[i], 0, sizeof(each[i]));
        stat_fields_add(&each[i], report_of(q, i));
        stat_fields_add(&total, report_of(q, i));
    }
    if (is_json) {
        put(o, "{\"ok\":true,\"node\":%u,\"uptime_s\":%lld,\"io\":", rh_runtime_node_id(rt),
            uptime);
        const char *io = report_of(q, 0)->rt.io;
        put_str(o, io, strlen(io));
        put(o, ",\"totals\":{");
        stat_fields_json(o, &total);
        put(o, "},\"shards\":[");
        for (uint32_t i = 0; i < n; i++) {
            put(o, "%s{\"shard\":%u,\"cpu\":%d,", i ? "," : "", i, report_of(q, i)->rt.cpu);
            stat_fields_json(o, &each[i]);
            put(o, "}");
        }
        put(o, "]}\n");
        return;
    }
    put(o, "node %u, up %lld s, %u shard%s, io_uring: %s\n", rh_runtime_node_id(rt), uptime, n,
        n == 1 ? "" : "s", report_of(q, 0)->rt.io);
    put(o, "%-6s %7s %11s %5s %11s %5s %6s %8s %8s %10s %10s %12s %12s %9s %6s %7s\n", "SHARD",
        "CONNS", "WS json/mp", "SSE", "LP json/mp", "ES", "GROUPS", "IN/S", "OUT/S", "MSGS_IN",
        "MSGS_OUT", "BYTES_IN", "BYTES_OUT", "QUEUED", "CLOSES", "DROPPED");
    for (uint32_t i = 0; i < n; i++) {
        char name[12];
        snprintf(name, sizeof(name), "%u", i);
        stat_fields_row(o, name, &each[i]);
    }
    stat_fields_row(o, "total", &total);
    put(o,
        "closes: %llu over the message rate, %llu too large, %llu handshake timeouts, %llu slow "
        "consumers, %llu kicked, %llu client timeouts\ndrops: %llu frames (%llu bytes) for slow "
        "consumers, %llu joins "
        "refused\n\n",
        (unsigned long long)total.closed_rate, (unsigned long long)total.closed_too_large,
        (unsigned long long)total.closed_handshake, (unsigned long long)total.closed_slow,
        (unsigned long long)total.closed_kicked, (unsigned long long)total.closed_timeout,
        (unsigned long long)total.dropped_frames, (unsigned long long)total.dropped_bytes,
        (unsigned long long)total.refused_joins);
}

static void render_shards(struct rh_buf **o, const struct query *q, uint32_t n, bool is_json)
{
    if (is_json)
        put(o, "{\"ok\":true,\"shards\":[");
    else
        put(o, "%-6s %4s %7s %6s %6s %10s %10s  %s\n", "SHARD", "CPU", "CONNS", "LOOP%", "RING",
            "BLOBS_IN", "WAKES", "IO");
    for (uint32_t i = 0; i < n; i++) {
        const struct rh_shard_report *r = &report_of(q, i)->rt;
        if (is_json) {
            put(o, "%s{\"shard\":%u,\"cpu\":%d,\"io\":", i ? "," : "", i, r->cpu);
            put_str(o, r->io, strlen(r->io));
            put(o,
                ",\"connections\":%llu,\"loop_utilization\":%.3f,\"ring_depth\":%llu,"
                "\"blobs_in\":%llu,\"wakes_received\":%llu}",
                (unsigned long long)r->conns_live, r->loop_util_permille / 1000.0,
                (unsigned long long)r->ring_depth, (unsigned long long)r->blobs_in,
                (unsigned long long)r->wakes_received);
        } else {
            put(o, "%-6u %4d %7llu %5.1f%% %6llu %10llu %10llu  %s\n", i, r->cpu,
                (unsigned long long)r->conns_live, r->loop_util_permille / 10.0,
                (unsigned long long)r->ring_depth, (unsigned long long)r->blobs_in,
                (unsigned long long)r->wakes_received, r->io);
        }
    }
    put(o, is_json ? "]}\n" : "\n");
}

static int conn_cmp(const void *a, const void *b)
{
    const struct rh_hub_conn_info *x = a, *y = b;
    if (x->age_ms != y->age_ms) return x->age_ms > y->age_ms ? -1 : 1; /* oldest first */
    return strcmp(x->id, y->id);
}

/* A connection's fields, all but its groups (a count in lists, the names for conn). */
static void conn_json(struct rh_buf **o, const struct rh_hub_conn_info *c)
{
    put(o, "{\"id\":\"%s\",\"hub\":", c->id);
    put_str(o, c->hub, strlen(c->hub));
    put(o, ",\"transport\":\"%s\",\"protocol\":\"%s\",\"user\":", transport_names[c->transport],
        codec_names[c->codec]);
    put_str(o, c->user, strlen(c->user));
    put(o, ",\"shard\":%u,\"queue_bytes\":%u,\"age_s\":%lld", c->shard, c->queue_bytes,
        (long long)(c->age_ms / 1000));
}

static void render_connections(struct rh_buf **o, const struct query *q, uint32_t n, bool is_json,
                               uint32_t limit)
{
    uint64_t total = 0, count = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t;
        memcpy(&t, q->parts[i]->data + PART_HEAD, 4);
        total += t;
        count += (q->parts[i]->len - PART_HEAD - 4) / sizeof(struct rh_hub_conn_info);
    }
    struct rh_hub_conn_info *all = rh_alloc((count ? count : 1) * sizeof(*all));
    uint64_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t m = (q->parts[i]->len - PART_HEAD - 4) / (uint32_t)sizeof(struct rh_hub_conn_info);
        memcpy(all + k, q->parts[i]->data + PART_HEAD + 4, m * sizeof(*all));
        k += m;
    }
    qsort(all, count, sizeof(*all), conn_cmp);
    uint64_t shown = count < limit ? count : limit;
    if (is_json)
        put(o, "{\"ok\":true,\"connections\":[");
    else
        put(o, "%-24s %-16s %-16s %-11s %-16s %5s %6s %10s %7s\n", "ID", "HUB", "TRANSPORT",
            "PROTOCOL", "USER", "SHARD", "GROUPS", "QUEUED", "AGE_S");
    for (uint64_t i = 0; i < shown; i++) {
        struct rh_hub_conn_info *c = &all[i];
        if (is_json) {
            if (i) put(o, ",");
            conn_json(o, c);
            put(o, ",\"groups\":%u}", c->groups);
        } else {
            put(o, "%-24s %-16.64s %-16s %-11s %-16.64s %5u %6u %10u %7lld\n", c->id, c->hub,
                transport_names[c->transport], codec_names[c->codec], *c->user ? c->user : "-",
                c->shard, c->groups, c->queue_bytes, (long long)(c->age_ms / 1000));
        }
    }
    if (is_json)
        put(o, "],\"total\":%llu,\"truncated\":%s}\n", (unsigned long long)total,
            total > shown ? "true" : "false");
    else
        put(o, "%llu of %llu connection%s\n\n", (unsigned long long)shown,
            (unsigned long long)total, total == 1 ? "" : "s");
    rh_free(all);
}

struct name_list {
    struct rh_buf **o;
    bool is_json;
    uint32_t count;
};

static void render_conn(struct rh_buf **o, const struct query *q, bool is_json)
{
    const struct rh_blob *part = NULL;
    for (uint32_t i = 0; i < RH_SHARDS_MAX; i++)
        if (q->parts[i]) part = q->parts[i];
    const struct rh_admin_command *cmd = q->cmd;
    if (!part->data[PART_HEAD]) {
        if (is_json) {
            put(o, "{\"ok\":false,\"error\":\"no connection ");
            rh_buf_append(o, cmd->args[0].ptr, cmd->args[0].len); /* base64url: plain JSON */
            put(o, "\"}\n");
        } else {
            put(o, "error: no connection %.*s\n\n", (int)cmd->args[0].len,
                (const char *)cmd->args[0].ptr);
        }
        return;
    }
    struct rh_hub_conn_info c;
    memcpy(&c, part->data + PART_HEAD + 1, sizeof(c));
    const uint8_t *p = part->data + PART_HEAD + 1 + sizeof(c), *end = part->data + part->len;
    if (is_json) {
        put(o, "{\"ok\":true,\"connection\":");
        conn_json(o, &c);
        put(o, ",\"peer\":");
        put_str(o, c.peer, strlen(c.peer));
        put(o, ",\"groups\":[");
    } else {
        put(o,
            "id:          %s\nhub:         %s\ntransport:   %s\nprotocol:    %s\nuser:        %s\n"
            "shard:       %u\npeer:        %s\nqueue bytes: %u\nage:         %lld s\ngroups:     ",
            c.id, c.hub, transport_names[c.transport], codec_names[c.codec], *c.user ? c.user : "-",
            c.shard, *c.peer ? c.peer : "-", c.queue_bytes, (long long)(c.age_ms / 1000));
    }
    for (uint32_t i = 0; end - p >= 2; i++) {
        uint16_t len;
        memcpy(&len, p, 2);
        if (is_json) {
            if (i) put(o, ",");
            put_str(o, p + 2, len);
        } else {
            put(o, " %.*s", (int)len, (const char *)p + 2);
        }
        p += 2 + len;
    }
    put(o, is_json ? "]}}\n" : "\n\n");
}

struct group_row {
    struct rh_span hub, name;
    uint64_t members, messages;
    uint32_t shards, rate_per_s;
};

static int group_row_cmp(const void *a, const void *b)
{
    const struct group_row *x = a, *y = b;
    uint32_t n = x->hub.len < y->hub.len ? x->hub.len : y->hub.len;
    int c = memcmp(x->hub.ptr, y->hub.ptr, n);
    if (c || x->hub.len != y->hub.len) return c ? c : (x->hub.len < y->hub.len ? -1 : 1);
    n = x->name.len < y->name.len ? x->name.len : y->name.len;
    c = memcmp(x->name.ptr, y->name.ptr, n);
    if (c || x->name.len != y->name.len) return c ? c : (x->name.len < y->name.len ? -1 : 1);
    return 0;
}

static void render_groups(struct rh_buf **o, const struct query *q, uint32_t n, bool is_json,
                          uint32_t limit)
{
    uint32_t count = 0, cap = 64;
    struct group_row *rows = rh_alloc(cap * sizeof(*rows));
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p = q->parts[i]->data + PART_HEAD,
                      *end = q->parts[i]->data + q->parts[i]->len;
        while (end - p > 4) {
            uint16_t hub_len, name_len;
            memcpy(&hub_len, p, 2);
            struct rh_span hub = rh_span_make(p + 2, hub_len);
            p += 2 + hub_len;
            memcpy(&name_len, p, 2);
            struct rh_span name = rh_span_make(p + 2, name_len);
            p += 2 + name_len;
            struct group_part gp;
            memcpy(&gp, p, sizeof(gp));
            p += sizeof(gp);
            if (count == cap) rows = rh_realloc(rows, (cap *= 2) * sizeof(*rows));
            rows[count++] = (struct group_row){
                hub, name, gp.local_members, gp.messages, gp.local_members ? 1 : 0, gp.rate_per_s};
        }
    }
    qsort(rows, count, sizeof(*rows), group_row_cmp);
    /* One row per group: parts of the same group are next to each other now. */
    uint32_t merged = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (merged && group_row_cmp(&rows[merged - 1], &rows[i]) == 0) {
            struct group_row *r = &rows[merged - 1];
            r->members += rows[i].members;
            r->shards += rows[i].shards;
            r->messages += rows[i].messages;
            r->rate_per_s += rows[i].rate_per_s;
        } else {
            rows[merged++] = rows[i];
        }
    }
    uint32_t listed = 0;
    if (is_json)
        put(o, "{\"ok\":true,\"groups\":[");
    else
        put(o, "%-16s %-32s %8s %6s %8s\n", "HUB", "GROUP", "MEMBERS", "SHARDS", "MSGS/S");
    for (uint32_t i = 0; i < merged && listed < limit; i++) {
        const struct group_row *r = &rows[i];
        if (!r->members) continue; /* owner state of a group whose members just left */
        if (is_json) {
            put(o, "%s{\"hub\":", listed ? "," : "");
            put_str(o, r->hub.ptr, r->hub.len);
            put(o, ",\"group\":");
            put_str(o, r->name.ptr, r->name.len);
            put(o, ",\"members\":%llu,\"shards\":%u,\"messages_per_s\":%u}",
                (unsigned long long)r->members, r->shards, r->rate_per_s);
        } else {
            put(o, "%-16.*s %-32.*s %8llu %6u %8u\n", (int)r->hub.len, (const char *)r->hub.ptr,
                (int)r->name.len, (const char *)r->name.ptr, (unsigned long long)r->members,
                r->shards, r->rate_per_s);
        }
        listed++;
    }
    uint32_t total = 0;
    for (uint32_t i = 0; i < merged; i++)
        total += rows[i].members ? 1 : 0;
    if (is_json)
        put(o, "],\"total\":%u,\"truncated\":%s}\n", total, total > listed ? "true" : "false");
    else
        put(o, "%u of %u group%s\n\n", listed, total, total == 1 ? "" : "s");
    rh_free(rows);
}

static void render_group(struct rh_buf **o, const struct query *q, uint32_t n, bool is_json)
{
    const struct rh_admin_command *cmd = q->cmd;
    struct rh_span hub = cmd->args[0], name = cmd->args[1];
    uint64_t members = 0, messages = 0;
    uint32_t rate = 0;
    int owner = -1;
    struct group_part parts[RH_SHARDS_MAX];
    for (uint32_t i = 0; i < n; i++) {
        memcpy(&parts[i], q->parts[i]->data + PART_HEAD, sizeof(parts[i]));
        members += parts[i].local_members;
        if (parts[i].is_owned) {
            owner = (int)i;
            messages = parts[i].messages;
            rate = parts[i].rate_per_s;
        }
    }
    if (!members) {
        if (is_json) {
            put(o, "{\"ok\":false,\"error\":");
            char text[512];
            int len = snprintf(text, sizeof(text), "no group %.*s in hub %.*s", (int)name.len,
                               (const char *)name.ptr, (int)hub.len, (const char *)hub.ptr);
            put_str(o, text, (size_t)len < sizeof(text) ? (size_t)len : sizeof(text) - 1);
            put(o, "}\n");
        } else {
            put(o, "error: no group %.*s in hub %.*s\n\n", (int)name.len, (const char *)name.ptr,
                (int)hub.len, (const char *)hub.ptr);
        }
        return;
    }
    if (is_json) {
        put(o, "{\"ok\":true,\"group\":{\"hub\":");
        put_str(o, hub.ptr, hub.len);
        put(o, ",\"group\":");
        put_str(o, name.ptr, name.len);
        put(o, ",\"owner_shard\":%d,\"members\":%llu,\"shards\":[", owner,
            (unsigned long long)members);
        bool first = true;
        for (uint32_t i = 0; i < n; i++) {
            if (!parts[i].local_members) continue;
            put(o, "%s{\"shard\":%u,\"members\":%u}", first ? "" : ",", i, parts[i].local_members);
            first = false;
        }
        put(o, "],\"messages\":%llu,\"messages_per_s\":%u,\"path\":\"local\"}}\n",
            (unsigned long long)messages, rate);
        return;
    }
    put(o,
        "hub:          %.*s\ngroup:        %.*s\nowner shard:  %d\nmembers:      %llu\n"
        "messages:     %llu\nmessages/s:   %u\npath:         local\n%-6s %8s\n",
        (int)hub.len, (const char *)hub.ptr, (int)name.len, (const char *)name.ptr, owner,
        (unsigned long long)members, (unsigned long long)messages, rate, "SHARD", "MEMBERS");
    for (uint32_t i = 0; i < n; i++)
        if (parts[i].local_members) put(o, "%-6u %8u\n", i, parts[i].local_members);
    put(o, "\n");
}

/* A label value as Prometheus wants it: escaped, and plain ASCII (hub names come from URLs). */
static void put_label(struct rh_buf **o, const char *value)
{
    for (const char *p = value; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\\' || ch == '"')
            put(o, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            put(o, "_");
        else
            put(o, "%c", ch);
    }
}

static void family(struct rh_buf **o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_metrics(struct rh_buf **o, const struct query *q, uint32_t n)
{
    const struct rh_runtime *rt = rh_shard_runtime(self->shard);
    family(o, "ringhub_up", "gauge", "1 while the server runs.");
    put(o, "ringhub_up 1\n");
    family(o, "ringhub_start_time_seconds", "gauge", "When the server started (Unix time).");
    put(o, "ringhub_start_time_seconds %.3f\n", rh_runtime_started_ms(rt) / 1000.0);
    family(o, "ringhub_shards", "gauge", "Shard threads.");
    put(o, "ringhub_shards %u\n", n);
    family(o, "ringhub_draining", "gauge", "1 once the server is stopping or draining.");
    put(o, "ringhub_draining %d\n", rh_runtime_is_stopping(rt) ? 1 : 0);

#define PER_SHARD(name, type, help, expr)                                                          \
    do {                                                                                           \
        family(o, name, type, help);                                                               \
        for (uint32_t i = 0; i < n; i++) {                                                         \
            const struct report_part *rp = report_of(q, i);                                        \
            (void)rp;                                                                              \
            put(o, name "{shard=\"%u\"} %llu\n", i, (unsigned long long)(expr));                   \
        }                                                                                          \
    } while (0)
    PER_SHARD("ringhub_connections", "gauge", "TCP connections open.", rp->rt.conns_live);
    PER_SHARD("ringhub_connections_accepted_total", "counter", "TCP connections accepted.",
              rp->rt.conns_accepted);
    PER_SHARD("ringhub_connections_refused_total", "counter", "TCP connections refused by limits.",
              rp->rt.conns_rejected);
    PER_SHARD("ringhub_bytes_received_total", "counter", "Bytes read from sockets.",
              rp->rt.bytes_in);
    PER_SHARD("ringhub_bytes_sent_total", "counter", "Bytes written to sockets.", rp->rt.bytes_out);
    PER_SHARD("ringhub_groups", "gauge", "Named groups the shard owns that have members.",
              rp->hub.groups_owned);
    PER_SHARD("ringhub_send_queue_bytes", "gauge", "Bytes queued for connections, not sent yet.",
              rp->rt.send_queue_bytes);
    PER_SHARD("ringhub_ring_depth", "gauge", "Messages from other shards waiting for the shard.",
              rp->rt.ring_depth);
    if (rh_backplane_enabled()) {
        PER_SHARD("ringhub_redis_up", "gauge",
                  "1 when both of the shard's Redis connections (command, subscriber) are up.",
                  rp->bp.command_up && rp->bp.subscriber_up);
        PER_SHARD("ringhub_redis_subscriptions", "gauge", "Redis channels the shard subscribes.",
                  rp->bp.subscriptions);
        PER_SHARD("ringhub_redis_pending", "gauge", "Redis commands whose reply is not back.",
                  rp->bp.pending);
        PER_SHARD("ringhub_redis_buffered_bytes", "gauge",
                  "Cross-node messages kept while Redis is unreachable (--redis-buffer).",
                  rp->bp.buffered_bytes);
        PER_SHARD("ringhub_redis_published_total", "counter", "Envelopes published to Redis.",
                  rp->bp.published);
        PER_SHARD("ringhub_redis_received_total", "counter",
                  "Envelopes from other nodes received through Redis.", rp->bp.received);
        PER_SHARD("ringhub_redis_skipped_total", "counter",
                  "Group messages kept off Redis: no other node had members.", rp->bp.skipped);
        PER_SHARD("ringhub_redis_dropped_total", "counter",
                  "Cross-node messages dropped during an outage, past --redis-buffer.",
                  rp->bp.dropped);
        PER_SHARD("ringhub_redis_lost_total", "counter",
                  "Cross-node messages written to a Redis connection that then broke.",
                  rp->bp.lost);
        PER_SHARD("ringhub_redis_reconnects_total", "counter",
                  "Redis connections made again after one was lost.", rp->bp.reconnects);
    }
#undef PER_SHARD
    family(o, "ringhub_loop_utilization", "gauge",
           "Share of the last second the shard's loop was busy (not waiting for io_uring).");
    for (uint32_t i = 0; i < n; i++)
        put(o, "ringhub_loop_utilization{shard=\"%u\"} %.3f\n", i,
            report_of(q, i)->rt.loop_util_permille / 1000.0);
    family(o, "ringhub_loop_busy_seconds_total", "counter",
           "Time the shard's loop was busy (not waiting for io_uring).");
    for (uint32_t i = 0; i < n; i++)
        put(o, "ringhub_loop_busy_seconds_total{shard=\"%u\"} %.6f\n", i,
            report_of(q, i)->rt.loop_busy_ns / 1e9);

    /* By hub, transport and protocol: summed over shards, by name. */
    struct hub_sum {
        const char *name;
        struct rh_hub_counts by[RH_HUB_REPORT_TRANSPORTS][2];
    } *hubs = rh_calloc((RH_HUB_REPORT_HUBS + 1) * n, sizeof(*hubs));
    uint32_t hub_count = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct rh_hub_report *hr = &report_of(q, i)->hub;
        for (uint32_t h = 0; h < hr->hub_count; h++) {
            uint32_t k = 0;
            while (k < hub_count && strcmp(hubs[k].name, hr->hubs[h].name) != 0)
                k++;
            if (k == hub_count) hubs[hub_count++].name = hr->hubs[h].name;
            for (int t = 0; t < RH_HUB_REPORT_TRANSPORTS; t++)
                for (int c = 0; c < 2; c++)
                    rh_hub_counts_add(&hubs[k].by[t][c], &hr->hubs[h].by[t][c]);
        }
    }
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } hub_families[] = {
        {"ringhub_sessions", "gauge", "SignalR connections (and EventSource streams) open.",
         offsetof(struct rh_hub_counts, sessions)},
        {"ringhub_messages_received_total", "counter", "Hub messages received from clients.",
         offsetof(struct rh_hub_counts, messages_in)},
        {"ringhub_messages_sent_total", "counter",
         "Messages written to clients (deliveries; an EventSource feed's once per event).",
         offsetof(struct rh_hub_counts, messages_out)},
        {"ringhub_hub_bytes_received_total", "counter", "Hub protocol bytes received.",
         offsetof(struct rh_hub_counts, bytes_in)},
        {"ringhub_hub_bytes_sent_total", "counter", "Framed bytes written to clients.",
         offsetof(struct rh_hub_counts, bytes_out)},
    };
    for (size_t f = 0; f < sizeof(hub_families) / sizeof(hub_families[0]); f++) {
        family(o, hub_families[f].name, hub_families[f].type, hub_families[f].help);
        for (uint32_t k = 0; k < hub_count; k++)
            for (int t = 0; t < RH_HUB_REPORT_TRANSPORTS; t++)
                for (int c = 0; c < 2; c++) {
                    if (t != RH_HUB_REPORT_WEBSOCKETS && t != RH_HUB_REPORT_LONGPOLLING && c)
                        continue; /* SSE and EventSource carry JSON only */
                    uint64_t v;
                    memcpy(&v, (const char *)&hubs[k].by[t][c] + hub_families[f].offset, 8);
                    put(o, "%s{hub=\"", hub_families[f].name);
                    put_label(o, hubs[k].name);
                    put(o, "\",transport=\"%s\",protocol=\"%s\"} %llu\n", transport_keys[t],
                        codec_names[c], (unsigned long long)v);
                }
    }
    rh_free(hubs);

    struct stat_fields total = {0};
    uint64_t latency[RH_LATENCY_BUCKETS] = {0}, latency_count = 0, latency_sum_ns = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct report_part *rp = report_of(q, i);
        stat_fields_add(&total, rp);
        for (int b = 0; b < RH_LATENCY_BUCKETS; b++)
            latency[b] += rp->rt.latency[b];
        latency_count += rp->rt.latency_count;
        latency_sum_ns += rp->rt.latency_sum_ns;
    }
    family(o, "ringhub_closes_total", "counter", "Connections ringhub closed, by reason.");
    put(o,
        "ringhub_closes_total{reason=\"rate\"} %llu\nringhub_closes_total{reason=\"too_large\"} "
        "%llu\nringhub_closes_total{reason=\"handshake_timeout\"} %llu\n"
        "ringhub_closes_total{reason=\"slow_consumer\"} %llu\n"
        "ringhub_closes_total{reason=\"kicked\"} %llu\n"
        "ringhub_closes_total{reason=\"client_timeout\"} %llu\n",
        (unsigned long long)total.closed_rate, (unsigned long long)total.closed_too_large,
        (unsigned long long)total.closed_handshake, (unsigned long long)total.closed_slow,
        (unsigned long long)total.closed_kicked, (unsigned long long)total.closed_timeout);
    family(o, "ringhub_dropped_bytes_total", "counter",
           "Bytes dropped from the queues of clients that did not keep up.");
    put(o, "ringhub_dropped_bytes_total{reason=\"slow_consumer\"} %llu\n",
        (unsigned long long)total.dropped_bytes);
    family(o, "ringhub_dropped_frames_total", "counter",
           "Frames dropped from the queues of clients that did not keep up.");
    put(o, "ringhub_dropped_frames_total{reason=\"slow_consumer\"} %llu\n",
        (unsigned long long)total.dropped_frames);
    family(o, "ringhub_refused_joins_total", "counter",
           "Group joins refused by --max-groups-per-connection.");
    put(o, "ringhub_refused_joins_total %llu\n", (unsigned long long)total.refused_joins);

    family(o, "ringhub_group_fanout_seconds", "histogram",
           "Group and user messages: from the send to the completion of each recipient's send.");
    uint64_t cumulative = 0;
    for (int b = 0; b < RH_LATENCY_BUCKETS - 1; b++) {
        cumulative += latency[b];
        put(o, "ringhub_group_fanout_seconds_bucket{le=\"%.9g\"} %llu\n",
            (double)(1ull << (b + 16)) / 1e9, (unsigned long long)cumulative);
    }
    put(o,
        "ringhub_group_fanout_seconds_bucket{le=\"+Inf\"} %llu\n"
        "ringhub_group_fanout_seconds_sum %.9f\nringhub_group_fanout_seconds_count %llu\n",
        (unsigned long long)latency_count, latency_sum_ns / 1e9, (unsigned long long)latency_count);
}

static void render_dashboard(struct rh_buf **o, const struct query *q, uint32_t n)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    put(o, "event: stats\ndata: {\"t\":%lld,\"node\":%u,\"shards\":[",
        (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000,
        rh_runtime_node_id(rh_shard_runtime(self->shard)));
    for (uint32_t i = 0; i < n; i++) {
        const struct report_part *rp = report_of(q, i);
        uint64_t sessions = 0;
        for (int t = 0; t < RH_HUB_REPORT_TRANSPORTS; t++)
            sessions += sessions_of(&rp->hub, t);
        put(o,
            "%s{\"shard\":%u,\"connections\":%llu,\"sessions\":%llu,\"messages_in_per_s\":%u,"
            "\"messages_out_per_s\":%u,\"drops_per_s\":%u,\"send_queue_bytes\":%llu,"
            "\"loop_utilization\":%.3f}",
            i ? "," : "", i, (unsigned long long)rp->rt.conns_live, (unsigned long long)sessions,
            rp->rates.in_per_s, rp->rates.out_per_s, rp->rates.drops_per_s,
            (unsigned long long)rp->rt.send_queue_bytes, rp->rt.loop_util_permille / 1000.0);
    }
    put(o, "]}\n\n");
}

static struct rh_buf *render(struct admin_shard *as, struct query *q)
{
    uint32_t n = rh_shard_count(as->shard);
    struct rh_buf *o = rh_buf_new(4096);
    if (q->asker == FOR_METRICS) {
        render_metrics(&o, q, n);
        return o;
    }
    if (q->asker == FOR_DASHBOARD) {
        render_dashboard(&o, q, n);
        return o;
    }
    const struct rh_admin_command *cmd = q->cmd;
    bool is_json = cmd->is_json;
    switch (cmd->cmd) {
    case RH_ADMIN_STATS:
        render_stats(&o, q, n, is_json);
        break;
    case RH_ADMIN_SHARDS:
        render_shards(&o, q, n, is_json);
        break;
    case RH_ADMIN_REDIS:
        render_redis(&o, q, n, is_json);
        break;
    case RH_ADMIN_DRAIN: {
        uint64_t conns = 0;
        for (uint32_t i = 0; i < n; i++)
            conns += report_of(q, i)->rt.conns_live;
        conns = conns ? conns - 1 : 0; /* not this admin session */
        put(&o,
            is_json ? "{\"ok\":true,\"draining\":%llu,\"timeout_s\":%u}\n"
                    : "draining %llu connections; exiting when they are gone or in %u s\n\n",
            (unsigned long long)conns, cmd->timeout_s);
        break;
    }
    case RH_ADMIN_CONNECTIONS:
        render_connections(&o, q, n, is_json, cmd->limit);
        break;
    case RH_ADMIN_CONN:
        render_conn(&o, q, is_json);
        break;
    case RH_ADMIN_KICK: {
        const struct rh_blob *part = NULL;
        for (uint32_t i = 0; i < RH_SHARDS_MAX; i++)
            if (q->parts[i]) part = q->parts[i];
        struct rh_span id = cmd->args[0];
        if (part->data[PART_HEAD])
            put(&o, is_json ? "{\"ok\":true,\"kicked\":\"%.*s\"}\n" : "kicked %.*s\n\n",
                (int)id.len, (const char *)id.ptr);
        else
            put(&o,
                is_json ? "{\"ok\":false,\"error\":\"no connection %.*s\"}\n"
                        : "error: no connection %.*s\n\n",
                (int)id.len, (const char *)id.ptr);
        break;
    }
    case RH_ADMIN_GROUPS:
        render_groups(&o, q, n, is_json, cmd->limit);
        break;
    case RH_ADMIN_GROUP:
        render_group(&o, q, n, is_json);
        break;
    default:
        RH_ASSERT(!"not a gathered command");
    }
    return o;
}

struct nodes_ctx {
    struct rh_buf **o;
    bool is_json;
    uint32_t count;
    int64_t now_ms;
};

static void node_row(void *ctx, const struct rh_backplane_node *node)
{
    struct nodes_ctx *nc = ctx;
    long long up_s = (long long)((nc->now_ms - node->started_ms) / 1000);
    long long seen_s = (long long)((nc->now_ms - node->seen_ms) / 1000);
    if (nc->is_json)
        put(nc->o,
            "%s{\"id\":%u,\"address\":\"%s\",\"started_ms\":%lld,\"uptime_s\":%lld,"
            "\"seen_s_ago\":%lld}",
            nc->count ? "," : "", node->id, node->address, (long long)node->started_ms, up_s,
            seen_s);
    else
        put(nc->o, "%-6u %-24s %10lld %10lld\n", node->id, node->address, up_s, seen_s);
    nc->count++;
}

/* The node directory as this shard (0: it keeps it) last read it from Redis. */
static void render_nodes(struct rh_buf **o, struct rh_shard *s, bool is_json)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct nodes_ctx nc = {o, is_json, 0, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000};
    uint32_t me = rh_runtime_node_id(rh_shard_runtime(s));
    if (!rh_backplane_enabled()) {
        put(o,
            is_json ? "{\"ok\":true,\"node\":%u,\"redis\":false,\"nodes\":[]}\n"
                    : "node %u runs alone (no --redis)\n\n",
            me);
        return;
    }
    if (is_json)
        put(o, "{\"ok\":true,\"node\":%u,\"redis\":true,\"nodes\":[", me);
    else
        put(o, "%-6s %-24s %10s %10s\n", "NODE", "ADDRESS", "UPTIME_S", "SEEN_S_AGO");
    rh_backplane_nodes(s, node_row, &nc);
    put(o, is_json ? "]}\n" : "\n");
}

static void render_redis(struct rh_buf **o, const struct query *q, uint32_t n, bool is_json)
{
    if (!rh_backplane_enabled()) {
        put(o, is_json ? "{\"ok\":true,\"redis\":false,\"shards\":[]}\n"
                       : "no Redis: this node runs alone (start it with --redis)\n\n");
        return;
    }
    if (is_json)
        put(o, "{\"ok\":true,\"redis\":true,\"shards\":[");
    else
        put(o, "%-5s %-22s %-4s %-4s %5s %7s %9s %10s %10s %8s %8s %8s %6s\n", "SHARD", "ENDPOINT",
            "CMD", "SUB", "SUBS", "PENDING", "BUFFERED", "PUBLISHED", "RECEIVED", "SKIPPED",
            "DROPPED", "LOST", "RECON");
    for (uint32_t i = 0; i < n; i++) {
        const struct report_part *rp = report_of(q, i);
        const struct rh_backplane_report *b = &rp->bp;
        if (is_json)
            put(o,
                "%s{\"shard\":%u,\"endpoint\":\"%s\",\"command_up\":%s,\"subscriber_up\":%s,"
                "\"subscriptions\":%u,\"pending\":%u,\"buffered_bytes\":%llu,\"published\":%llu,"
                "\"received\":%llu,\"skipped\":%llu,\"dropped\":%llu,\"lost\":%llu,"
                "\"reconnects\":%llu,\"bad\":%llu,\"down_since_ms\":%lld}",
                i ? "," : "", rp->rt.idx, b->endpoint, b->command_up ? "true" : "false",
                b->subscriber_up ? "true" : "false", b->subscriptions, b->pending,
                (unsigned long long)b->buffered_bytes, (unsigned long long)b->published,
                (unsigned long long)b->received, (unsigned long long)b->skipped,
                (unsigned long long)b->dropped, (unsigned long long)b->lost,
                (unsigned long long)b->reconnects, (unsigned long long)b->bad,
                (long long)b->down_since_ms);
        else
            put(o, "%-5u %-22s %-4s %-4s %5u %7u %9llu %10llu %10llu %8llu %8llu %8llu %6llu\n",
                rp->rt.idx, b->endpoint, b->command_up ? "up" : "DOWN",
                b->subscriber_up ? "up" : "DOWN", b->subscriptions, b->pending,
                (unsigned long long)b->buffered_bytes, (unsigned long long)b->published,
                (unsigned long long)b->received, (unsigned long long)b->skipped,
                (unsigned long long)b->dropped, (unsigned long long)b->lost,
                (unsigned long long)b->reconnects);
    }
    put(o, is_json ? "]}\n" : "\n");
}
