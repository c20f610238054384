/*
 * shards/hub_remote.c - the hub's side of the backplane (shards/backplane.h): what this node
 * sends that other nodes must hear, and what they send that this node must do. Without
 * --redis every function here returns at once.
 */
#include "shards/hub_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/clock.h"
#include "shards/backplane.h"

#define NOBODY UINT64_MAX /* reply_to of a request from another node that wants no answer */

static void remote_send(struct hub_shard *hs, const struct rh_bp_env *e);
static void remote_command(struct hub_shard *hs, const struct rh_bp_env *e);
static void remote_user_groups(struct hub_shard *hs, const struct rh_bp_env *e);
static void env_of(struct rh_bp_env *e, const struct send_all *m, uint8_t scope,
                   struct rh_span name, uint8_t *excluded, uint64_t except);

/* Copies @src into @dst (@cap bytes, NUL-terminated) as struct rh_rest_route holds names. */
static bool field_copy(char *dst, size_t cap, uint32_t *len, struct rh_span src)
{
    if (src.len >= cap) return false;
    if (src.len) memcpy(dst, src.ptr, src.len);
    dst[src.len] = '\0';
    *len = src.len;
    return true;
}

/* Fills the SEND envelope @e from @m (@excluded: room for 8 * (RH_REST_EXCLUDED_MAX + 1) bytes:
 * @m's routes and @except, big-endian). */
static void env_of(struct rh_bp_env *e, const struct send_all *m, uint8_t scope,
                   struct rh_span name, uint8_t *excluded, uint64_t except)
{
    *e = (struct rh_bp_env){.kind = RH_BP_SEND};
    e->send.scope = scope;
    e->send.codec = m->codec;
    e->send.hub = m->hub;
    e->send.name = name;
    e->send.target = m->target;
    e->send.arg_count = m->arg_count;
    memcpy(e->send.args, m->args, m->arg_count * sizeof(m->args[0]));
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->excluded_count; i++) {
        uint64_t route;
        memcpy(&route, m->excluded + 8 * i, 8);
        hub_route_put(excluded + 8 * n++, route);
    }
    if (except != RH_GROUPS_NO_EXCEPT) hub_route_put(excluded + 8 * n++, except);
    e->send.excluded = rh_span_make(excluded, 8 * n);
}

void hub_remote_send_all(struct hub_shard *hs, const struct send_all *m)
{
    if (!rh_backplane_enabled()) return;
    uint8_t excluded[8 * 256];
    struct rh_bp_env e;
    env_of(&e, m, RH_BP_ALL, rh_span_make(NULL, 0), excluded, RH_GROUPS_NO_EXCEPT);
    rh_backplane_publish(hs->shard, &e, 0);
}

bool hub_remote_send_to_connection(struct hub_shard *hs, struct rh_span id,
                                   const struct send_all *m)
{
    uint64_t route;
    if (!hub_remote_route(hs, id, &route)) return false;
    uint8_t excluded[8 * 256];
    struct rh_bp_env e;
    env_of(&e, m, RH_BP_CONNECTION, id, excluded, RH_GROUPS_NO_EXCEPT);
    rh_backplane_publish(hs->shard, &e, route);
    return true;
}

bool hub_remote_route(struct hub_shard *hs, struct rh_span id, uint64_t *route)
{
    uint8_t raw[ROUTE_BYTES + PUBLIC_BYTES];
    if (!rh_backplane_enabled() || id.len != ID_TEXT_LEN ||
        rh_b64url_decode((const char *)id.ptr, id.len, raw, sizeof(raw)) != sizeof(raw))
        return false;
    *route = hub_route_get(raw);
    return rh_conn_id_node(*route) != rh_runtime_node_id(rh_shard_runtime(hs->shard));
}

/* groups ops: on the owner, a message of this node to @key; other nodes hear it if they may
 * have members. */
void hub_groups_owner_sending(void *ctx, const struct rh_group_key *key, struct rh_span msg,
                              uint64_t except)
{
    struct hub_shard *hs = ctx;
    if (!rh_backplane_enabled() || !rh_backplane_group_wanted(hs->shard, key)) return;
    struct send_all m;
    if (!hub_send_all_unpack(msg, &m)) return;
    uint8_t excluded[8 * 256];
    struct rh_bp_env e;
    env_of(&e, &m, key->kind == RH_GROUP_USER ? RH_BP_USER : RH_BP_GROUP, key->name, excluded,
           except);
    rh_backplane_publish(hs->shard, &e, 0);
}

bool hub_groups_interest(void *ctx, const struct rh_group_key *key, bool has_members)
{
    struct hub_shard *hs = ctx;
    return !rh_backplane_enabled() || rh_backplane_interest(hs->shard, key, has_members);
}

void rh_hub_interest_ready(struct rh_shard *s, const struct rh_group_key *key)
{
    struct hub_shard *hs = rh_shard_app(s);
    rh_groups_interest_ready(hs->groups, key);
}

void rh_hub_remote(struct rh_shard *s, const struct rh_bp_env *e)
{
    struct hub_shard *hs = rh_shard_app(s);
    switch (e->kind) {
    case RH_BP_SEND:
        remote_send(hs, e);
        return;
    case RH_BP_COMMAND:
        remote_command(hs, e);
        return;
    case RH_BP_ANSWER:
        /* Unless it came too late (answered 504 already) or for another shard's request. */
        if (rh_conn_id_node(e->answer.request_id) == rh_runtime_node_id(rh_shard_runtime(s)) &&
            rh_backplane_answered(s, e->answer.request_id))
            rh_hub_remote_answer(s, e->answer.request_id, e->answer.status);
        return;
    case RH_BP_USER_GROUPS:
        remote_user_groups(hs, e);
        return;
    default:
        return;
    }
}

/* Another node's invocation for connections here: delivered as one of this node's, but never
 * sent on to Redis again. */
static void remote_send(struct hub_shard *hs, const struct rh_bp_env *e)
{
    struct rh_shard *s = hs->shard;
    uint8_t excluded[8 * 255];
    struct send_all m = {.codec = e->send.codec,
                         .hub = e->send.hub,
                         .target = e->send.target,
                         .arg_count = e->send.arg_count,
                         .excluded = excluded};
    if (m.hub.len > RH_HUB_NAME_MAX || m.target.len > RH_HUB_NAME_MAX) return;
    memcpy(m.args, e->send.args, e->send.arg_count * sizeof(m.args[0]));
    uint32_t count = e->send.excluded.len / 8;
    for (uint32_t i = 0; i < count && m.excluded_count < 255; i++) {
        uint64_t route = hub_route_get(e->send.excluded.ptr + 8 * i);
        memcpy(excluded + 8 * m.excluded_count++, &route, 8);
    }
    uint32_t size = hub_send_all_size(&m);
    switch (e->send.scope) {
    case RH_BP_ALL: {
        struct rh_blob *b = rh_blob_new(BLOB_SEND_ALL, rh_shard_count(s), NULL, size);
        hub_send_all_pack(&m, b->data, size);
        rh_shard_post_all(s, b);
        return;
    }
    case RH_BP_CONNECTION: {
        uint64_t route;
        uint8_t tail[PUBLIC_BYTES];
        if (!hub_connection_route(s, (const char *)e->send.name.ptr, e->send.name.len, &route,
                                  tail))
            return;
        struct rh_blob *b = rh_blob_new(BLOB_SEND_TO_CONN, 1, NULL, PUBLIC_BYTES + size);
        memcpy(b->data, tail, PUBLIC_BYTES);
        hub_send_all_pack(&m, b->data + PUBLIC_BYTES, size);
        b->arg = route;
        rh_shard_post(s, rh_conn_id_shard(route), b);
        return;
    }
    default: {
        if (e->send.name.len > RH_GROUP_NAME_MAX) return;
        struct rh_group_key key = {e->send.scope == RH_BP_USER ? RH_GROUP_USER : RH_GROUP_NAMED,
                                   m.hub, e->send.name};
        uint8_t *out;
        m.stamp_ns = rh_clock_now_ns();
        struct rh_blob *b = rh_groups_message_new(&key, size, &out);
        hub_send_all_pack(&m, out, size);
        rh_groups_send_remote(hs->groups, b);
        return;
    }
    }
}

/* ---- requests about a connection of another node ---------------------------------------- */

static const uint8_t bp_ops[] = {
    [RH_REST_GROUP_ADD_CONNECTION] = RH_BP_ADD_TO_GROUP,
    [RH_REST_GROUP_REMOVE_CONNECTION] = RH_BP_REMOVE_FROM_GROUP,
    [RH_REST_CONNECTION_LEAVE_ALL] = RH_BP_REMOVE_FROM_ALL,
    [RH_REST_CLOSE_CONNECTION] = RH_BP_CLOSE,
    [RH_REST_CONNECTION_EXISTS] = RH_BP_EXISTS,
};

bool hub_remote_connection_request(struct hub_shard *hs, const struct rh_hub_api_request *req)
{
    const struct rh_rest_route *r = req->route;
    uint64_t route;
    if (!hub_remote_route(hs, rh_span_make(r->conn, r->conn_len), &route)) return false;
    if ((size_t)r->op >= sizeof(bp_ops) || !bp_ops[r->op]) return false;
    struct rh_bp_env e = {.kind = RH_BP_COMMAND};
    e.command.request_id = req->reply_to;
    e.command.op = bp_ops[r->op];
    e.command.route = route;
    e.command.hub = rh_span_make(r->hub, r->hub_len);
    e.command.group = rh_span_make(r->name, r->name_len);
    e.command.text = req->reason;
    e.command.connection = rh_span_make(r->conn, r->conn_len);
    e.command.is_v1 = r->is_v1;
    rh_backplane_expect_answer(hs->shard, req->reply_to);
    rh_backplane_publish(hs->shard, &e, route);
    return true;
}

/* A command from another node about a connection of this shard: carried out as this node's
 * own API request, whose answer goes back (hub_lp.c's answer sees the other node). */
static void remote_command(struct hub_shard *hs, const struct rh_bp_env *e)
{
    static const uint8_t rest_ops[] = {
        [RH_BP_ADD_TO_GROUP] = RH_REST_GROUP_ADD_CONNECTION,
        [RH_BP_REMOVE_FROM_GROUP] = RH_REST_GROUP_REMOVE_CONNECTION,
        [RH_BP_REMOVE_FROM_ALL] = RH_REST_CONNECTION_LEAVE_ALL,
        [RH_BP_CLOSE] = RH_REST_CLOSE_CONNECTION,
        [RH_BP_EXISTS] = RH_REST_CONNECTION_EXISTS,
    };
    if (e->command.op >= sizeof(rest_ops) || !rest_ops[e->command.op]) return;
    struct rh_rest_route route = {.op = rest_ops[e->command.op], .is_v1 = e->command.is_v1};
    if (e->command.text.len > 300 ||
        !field_copy(route.hub, sizeof(route.hub), &route.hub_len, e->command.hub) ||
        !field_copy(route.name, sizeof(route.name), &route.name_len, e->command.group) ||
        !field_copy(route.conn, sizeof(route.conn), &route.conn_len, e->command.connection))
        return;
    struct rh_hub_api_request req = {
        .route = &route, .reply_to = e->command.request_id, .reason = e->command.text};
    int status = rh_hub_api(hs->shard, &req);
    if (status) hub_answer_text(hs, req.reply_to, status, "");
}

void rh_hub_remote_answer(struct rh_shard *s, uint64_t reply_to, int status)
{
    if (reply_to == NOBODY) return;
    hub_answer_text(rh_shard_app(s), reply_to, status, "");
}

/* hub_lp.c's answer: an answer for an HTTP connection of another node goes back through Redis. */
bool hub_remote_answer(struct hub_shard *hs, uint64_t reply_to, int status)
{
    if (reply_to == NOBODY) return true;
    if (rh_conn_id_node(reply_to) == rh_runtime_node_id(rh_shard_runtime(hs->shard))) return false;
    struct rh_bp_env e = {.kind = RH_BP_ANSWER};
    e.answer.request_id = reply_to;
    e.answer.status = (uint16_t)status;
    rh_backplane_publish(hs->shard, &e, reply_to);
    return true;
}

/* ---- users' groups: every node keeps them ------------------------------------------------ */

void hub_remote_user_groups(struct hub_shard *hs, const struct rh_hub_api_request *req)
{
    if (!rh_backplane_enabled()) return;
    const struct rh_rest_route *r = req->route;
    struct rh_bp_env e = {.kind = RH_BP_USER_GROUPS};
    e.user_groups.op = r->op == RH_REST_GROUP_ADD_USER      ? RH_BP_ADD_TO_GROUP
                       : r->op == RH_REST_GROUP_REMOVE_USER ? RH_BP_REMOVE_FROM_GROUP
                                                            : RH_BP_REMOVE_FROM_ALL;
    e.user_groups.hub = rh_span_make(r->hub, r->hub_len);
    e.user_groups.user = rh_span_make(r->user, r->user_len);
    e.user_groups.group = rh_span_make(r->name, r->name_len);
    rh_backplane_publish(hs->shard, &e, 0);
}

static void remote_user_groups(struct hub_shard *hs, const struct rh_bp_env *e)
{
    uint8_t op = e->user_groups.op;
    struct rh_rest_route route = {.op = op == RH_BP_ADD_TO_GROUP        ? RH_REST_GROUP_ADD_USER
                                        : op == RH_BP_REMOVE_FROM_GROUP ? RH_REST_GROUP_REMOVE_USER
                                                                        : RH_REST_USER_LEAVE_ALL};
    if (!field_copy(route.hub, sizeof(route.hub), &route.hub_len, e->user_groups.hub) ||
        !field_copy(route.user, sizeof(route.user), &route.user_len, e->user_groups.user) ||
        !field_copy(route.name, sizeof(route.name), &route.name_len, e->user_groups.group))
        return;
    struct rh_hub_api_request req = {.route = &route, .reply_to = NOBODY};
    hub_api_user_groups(hs, &req, false);
}
