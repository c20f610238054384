/*
 * shards/hub_api.c - the backend API (rh_hub_api): sends, operations on connections, and the
 * groups the API puts users in, kept by the shard that owns each user. See hub.h.
 */
#include "shards/hub_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "shards/backplane.h"

static int api_send(struct hub_shard *hs, const struct rh_hub_api_request *req);
static void post_apply(struct hub_shard *hs, uint32_t shard, bool is_join, const uint64_t *route,
                       struct rh_span hub, struct rh_span user, char *const *groups,
                       uint32_t count);
static struct user_groups *user_groups_find(struct hub_shard *hs, struct rh_span hub,
                                            struct rh_span user);

int rh_hub_api(struct rh_shard *s, const struct rh_hub_api_request *req)
{
    struct hub_shard *hs = rh_shard_app(s);
    const struct rh_rest_route *r = req->route;
    struct rh_span hub = rh_span_make(r->hub, r->hub_len);
    switch (r->op) {
    case RH_REST_HEALTH:
        return 200;
    case RH_REST_SEND_ALL:
    case RH_REST_SEND_USER:
    case RH_REST_SEND_GROUP:
    case RH_REST_SEND_CONNECTION:
        return api_send(hs, req);
    case RH_REST_GROUP_EXISTS:
    case RH_REST_USER_EXISTS: {
        /* Asked of the owner, which knows which shards have members. */
        struct rh_group_key key = {r->op == RH_REST_USER_EXISTS ? RH_GROUP_USER : RH_GROUP_NAMED,
                                   hub, rh_span_make(r->name, r->name_len)};
        uint32_t size = 8 + 1 + 2 + hub.len + 2 + r->name_len;
        struct rh_blob *b = rh_blob_new(BLOB_API_QUERY, 1, NULL, size);
        uint8_t *p = b->data;
        uint16_t len16;
        memcpy(p, &req->reply_to, 8);
        p[8] = (uint8_t)key.kind;
        p += 9;
        len16 = (uint16_t)hub.len;
        memcpy(p, &len16, 2);
        memcpy(p + 2, hub.ptr, hub.len);
        p += 2 + hub.len;
        len16 = (uint16_t)r->name_len;
        memcpy(p, &len16, 2);
        memcpy(p + 2, r->name, r->name_len);
        rh_shard_post(s, rh_groups_owner(hs->groups, &key), b);
        return 0;
    }
    case RH_REST_GROUP_ADD_USER:
    case RH_REST_GROUP_REMOVE_USER:
    case RH_REST_USER_IN_GROUP:
    case RH_REST_USER_LEAVE_ALL:
        hub_api_user_groups(hs, req, true);
        return 0;
    default: {
        /* About one connection: asked of its shard, or of its node through Redis. */
        uint64_t route;
        uint8_t tail[PUBLIC_BYTES];
        if (hub_remote_connection_request(hs, req)) return 0;
        if (!hub_connection_route(s, r->conn, r->conn_len, &route, tail))
            return r->op == RH_REST_CLOSE_CONNECTION ? (r->is_v1 ? 202 : 200) : 404;
        uint32_t size =
            1 + 1 + 8 + 8 + PUBLIC_BYTES + 2 + hub.len + 2 + r->name_len + 2 + req->reason.len;
        struct rh_blob *b = rh_blob_new(BLOB_API_CONN, 1, NULL, size);
        uint8_t *p = b->data;
        *p++ = (uint8_t)r->op;
        *p++ = r->is_v1;
        memcpy(p, &req->reply_to, 8);
        memcpy(p + 8, &route, 8);
        memcpy(p + 16, tail, PUBLIC_BYTES);
        p += 16 + PUBLIC_BYTES;
        const struct rh_span fields[] = {hub, rh_span_make(r->name, r->name_len), req->reason};
        for (int i = 0; i < 3; i++) {
            uint16_t len16 = (uint16_t)fields[i].len;
            memcpy(p, &len16, 2);
            if (len16) memcpy(p + 2, fields[i].ptr, len16);
            p += 2 + len16;
        }
        rh_shard_post(s, rh_conn_id_shard(route), b);
        return 0;
    }
    }
}

/* A request about a user's groups goes to the user's owner, which keeps them (and knows the
 * shards with the user's connections); a change also goes to every other node (@publish),
 * whose owner of the user keeps it too, for connections there now and later. */
void hub_api_user_groups(struct hub_shard *hs, const struct rh_hub_api_request *req, bool publish)
{
    const struct rh_rest_route *r = req->route;
    struct rh_span hub = rh_span_make(r->hub, r->hub_len);
    struct rh_group_key key = {RH_GROUP_USER, hub, rh_span_make(r->user, r->user_len)};
    uint32_t size = 1 + 1 + 8 + 2 + hub.len + 2 + r->user_len + 2 + r->name_len;
    struct rh_blob *b = rh_blob_new(BLOB_USER_GROUPS, 1, NULL, size);
    uint8_t *p = b->data;
    *p++ = (uint8_t)r->op;
    *p++ = r->is_v1;
    memcpy(p, &req->reply_to, 8);
    p += 8;
    const struct rh_span fields[] = {hub, key.name, rh_span_make(r->name, r->name_len)};
    for (int i = 0; i < 3; i++) {
        uint16_t len16 = (uint16_t)fields[i].len;
        memcpy(p, &len16, 2);
        if (len16) memcpy(p + 2, fields[i].ptr, len16);
        p += 2 + len16;
    }
    rh_shard_post(hs->shard, rh_groups_owner(hs->groups, &key), b);
    if (publish && r->op != RH_REST_USER_IN_GROUP) hub_remote_user_groups(hs, req);
}

/* A send of the HTTP API, from this shard: JSON values, as the body carried them. */
static int api_send(struct hub_shard *hs, const struct rh_hub_api_request *req)
{
    const struct rh_rest_route *r = req->route;
    uint8_t excluded[8 * RH_REST_EXCLUDED_MAX];
    struct send_all m = {.codec = RH_HUB_JSON,
                         .hub = rh_span_make(r->hub, r->hub_len),
                         .target = req->target,
                         .arg_count = req->arg_count,
                         .excluded = excluded};
    memcpy(m.args, req->args, req->arg_count * sizeof(m.args[0]));
    for (uint32_t i = 0; i < req->excluded_count; i++) {
        uint64_t route;
        uint8_t tail[PUBLIC_BYTES];
        if (!hub_connection_route(hs->shard, (const char *)req->excluded[i].ptr,
                                  req->excluded[i].len, &route, tail) &&
            !hub_remote_route(hs, req->excluded[i], &route))
            continue; /* names nobody: nobody to leave out */
        memcpy(excluded + 8 * m.excluded_count++, &route, 8);
    }
    uint32_t size = hub_send_all_size(&m);
    struct rh_blob *b;
    if (r->op == RH_REST_SEND_ALL) {
        b = rh_blob_new(BLOB_SEND_ALL, rh_shard_count(hs->shard), NULL, size);
        hub_send_all_pack(&m, b->data, size);
        rh_shard_post_all(hs->shard, b);
        hub_remote_send_all(hs, &m);
    } else if (r->op == RH_REST_SEND_CONNECTION) {
        uint64_t route;
        uint8_t tail[PUBLIC_BYTES];
        if (hub_connection_route(hs->shard, r->conn, r->conn_len, &route, tail)) {
            b = rh_blob_new(BLOB_SEND_TO_CONN, 1, NULL, PUBLIC_BYTES + size);
            memcpy(b->data, tail, PUBLIC_BYTES);
            hub_send_all_pack(&m, b->data + PUBLIC_BYTES, size);
            b->arg = route;
            rh_shard_post(hs->shard, rh_conn_id_shard(route), b);
        } else {
            hub_remote_send_to_connection(hs, rh_span_make(r->conn, r->conn_len), &m);
        }
    } else {
        struct rh_group_key key = {r->op == RH_REST_SEND_USER ? RH_GROUP_USER : RH_GROUP_NAMED,
                                   m.hub, rh_span_make(r->name, r->name_len)};
        uint8_t *out;
        m.stamp_ns = rh_clock_now_ns();
        b = rh_groups_message_new(&key, size, &out);
        hub_send_all_pack(&m, out, size);
        rh_groups_send(hs->groups, b, RH_GROUPS_NO_EXCEPT);
    }
    return 202; /* sent, whoever receives it: as the service answers */
}

/* An API request about one of this shard's connections. */
void hub_api_conn_received(struct hub_shard *hs, struct rh_blob *b)
{
    const uint8_t *p = b->data, *end = b->data + b->len;
    if (end - p < 18 + PUBLIC_BYTES) return;
    enum rh_rest_op op = (enum rh_rest_op)p[0];
    bool is_v1 = p[1] != 0;
    uint64_t reply_to, route;
    memcpy(&reply_to, p + 2, 8);
    memcpy(&route, p + 10, 8);
    const uint8_t *tail = p + 18;
    p += 18 + PUBLIC_BYTES;
    struct rh_span fields[3];
    for (int i = 0; i < 3; i++) {
        uint16_t len16;
        if (end - p < 2) return;
        memcpy(&len16, p, 2);
        if (end - p - 2 < len16) return;
        fields[i] = rh_span_make(p + 2, len16);
        p += 2 + len16;
    }
    struct rh_span hub = fields[0], group = fields[1], reason = fields[2];
    struct rh_hub_session *h = hub_session_by_id(hs, route, tail);
    if (h && (h->transport == TRANSPORT_EVENTS || h->is_ending || h->state != SESSION_READY ||
              h->hub != hub_name_find(hs, hub)))
        h = NULL;
    struct rh_group_key key = {RH_GROUP_NAMED, hub, group};
    switch (op) {
    case RH_REST_CONNECTION_EXISTS:
        hub_answer_text(hs, reply_to, h ? 200 : 404, "");
        return;
    case RH_REST_CLOSE_CONNECTION:
        hub_answer_text(hs, reply_to, is_v1 ? 202 : 200, "");
        if (!h) return;
        char error[300];
        snprintf(error, sizeof(error), "%.*s", (int)reason.len, (const char *)reason.ptr);
        hub_end_session(h, reason.len ? error : "Connection closed by the server.", false);
        hub_session_finish(h); /* may free @h */
        return;
    case RH_REST_GROUP_ADD_CONNECTION: {
        if (!h) {
            hub_answer_json(hs, reply_to, 404,
                            "{\"code\":\"Error.Connection.NotExisted\","
                            "\"message\":\"no such connection\"}");
            return;
        }
        if (h->group_count >= hub_shard_self()->cfg->max_groups_per_conn) {
            hub_answer_json(hs, reply_to, 400,
                            "{\"code\":\"Error.Group.TooMany\",\"message\":"
                            "\"the connection is in as many groups as --max-groups-per-connection "
                            "allows\"}");
            return;
        }
        uint8_t note[1 + 8] = {NOTE_API};
        memcpy(note + 1, &reply_to, 8);
        /* Answered when the owner has taken the join in (groups_joined). */
        if (rh_groups_join(hs->groups, &key, h, route, &h->groups, rh_span_make(note, 9)))
            h->group_count++;
        return;
    }
    case RH_REST_GROUP_REMOVE_CONNECTION:
        if (h && rh_groups_leave(hs->groups, &key, &h->groups)) h->group_count--;
        hub_answer_text(hs, reply_to, h ? 200 : 404, "");
        return;
    case RH_REST_CONNECTION_LEAVE_ALL:
        if (h) h->group_count -= rh_groups_leave_kind(hs->groups, &h->groups, RH_GROUP_NAMED);
        hub_answer_text(hs, reply_to, h ? 200 : 404, "");
        return;
    default:
        return;
    }
}

/* An API question about a group or user this shard owns. */
void hub_api_query_received(struct hub_shard *hs, struct rh_blob *b)
{
    const uint8_t *p = b->data, *end = b->data + b->len;
    if (end - p < 9 + 2) return;
    uint64_t reply_to;
    memcpy(&reply_to, p, 8);
    struct rh_group_key key = {.kind = p[8] ? RH_GROUP_USER : RH_GROUP_NAMED};
    p += 9;
    struct rh_span *fields[] = {&key.hub, &key.name};
    for (int i = 0; i < 2; i++) {
        uint16_t len16;
        if (end - p < 2) return;
        memcpy(&len16, p, 2);
        if (end - p - 2 < len16) return;
        *fields[i] = rh_span_make(p + 2, len16);
        p += 2 + len16;
    }
    if (!rh_groups_has_members(hs->groups, &key) && rh_backplane_enabled()) {
        rh_backplane_ask_members(hs->shard, &key, reply_to); /* members on other nodes? */
        return;
    }
    hub_answer_text(hs, reply_to, rh_groups_has_members(hs->groups, &key) ? 200 : 404, "");
}

/* Reads @count length-prefixed (u16) fields from *@p (advanced past them); false if short. */
static bool read_fields(const uint8_t **p, const uint8_t *end, struct rh_span *fields, int count)
{
    for (int i = 0; i < count; i++) {
        uint16_t len16;
        if (end - *p < 2) return false;
        memcpy(&len16, *p, 2);
        if (end - *p - 2 < len16) return false;
        fields[i] = rh_span_make(*p + 2, len16);
        *p += 2 + len16;
    }
    return true;
}

/* On the user's owner: an API request about a user's groups. */
void hub_user_groups_received(struct hub_shard *hs, struct rh_blob *b)
{
    const uint8_t *p = b->data, *end = b->data + b->len;
    if (end - p < 10) return;
    enum rh_rest_op op = (enum rh_rest_op)p[0];
    bool is_v1 = p[1] != 0;
    uint64_t reply_to;
    memcpy(&reply_to, p + 2, 8);
    p += 10;
    struct rh_span f[3]; /* hub, user, group */
    if (!read_fields(&p, end, f, 3)) return;
    struct rh_span hub = f[0], user = f[1], group = f[2];
    struct user_groups *ug = user_groups_find(hs, hub, user);
    uint32_t idx = 0;
    while (ug && idx < ug->group_count) {
        uint16_t len16;
        memcpy(&len16, ug->groups[idx], 2);
        if (len16 == group.len && memcmp(ug->groups[idx] + 2, group.ptr, group.len) == 0) break;
        idx++;
    }
    bool is_member = ug && idx < ug->group_count;
    struct rh_group_key user_key = {RH_GROUP_USER, hub, user};
    uint64_t shards = rh_groups_member_shards(hs->groups, &user_key);
    int status = 200;
    if (op == RH_REST_USER_IN_GROUP) {
        status = is_member ? 200 : 404;
    } else if (op == RH_REST_GROUP_ADD_USER) {
        if (!ug) {
            ug = rh_calloc(1, sizeof(*ug) + hub.len + user.len);
            ug->hash = hub_feed_hash(hub, user);
            ug->hub_len = (uint16_t)hub.len;
            ug->user_len = (uint16_t)user.len;
            memcpy(ug->text, hub.ptr, hub.len);
            memcpy(ug->text + hub.len, user.ptr, user.len);
            rh_table_insert(&hs->user_groups, ug->hash, ug);
        }
        if (!is_member) {
            if (ug->group_count == USER_GROUPS_MAX) { /* the oldest goes, as in the service */
                rh_free(ug->groups[0]);
                memmove(ug->groups, ug->groups + 1, (USER_GROUPS_MAX - 1) * sizeof(char *));
                ug->group_count--;
            }
            char *entry = rh_alloc(2 + group.len);
            uint16_t len16 = (uint16_t)group.len;
            memcpy(entry, &len16, 2);
            memcpy(entry + 2, group.ptr, group.len);
            ug->groups[ug->group_count++] = entry;
            for (uint32_t shard = 0; shard < rh_shard_count(hs->shard); shard++)
                if (shards >> shard & 1) post_apply(hs, shard, true, NULL, hub, user, &entry, 1);
        }
        status = is_v1 ? 202 : 200;
    } else if (op == RH_REST_GROUP_REMOVE_USER || op == RH_REST_USER_LEAVE_ALL) {
        uint32_t first = op == RH_REST_USER_LEAVE_ALL ? 0 : idx;
        uint32_t count = !ug ? 0 : op == RH_REST_USER_LEAVE_ALL ? ug->group_count : is_member;
        for (uint32_t shard = 0; count && shard < rh_shard_count(hs->shard); shard++)
            if (shards >> shard & 1)
                post_apply(hs, shard, false, NULL, hub, user, ug->groups + first, count);
        for (uint32_t i = 0; i < count; i++)
            rh_free(ug->groups[first + i]);
        if (count) {
            memmove(ug->groups + first, ug->groups + first + count,
                    (ug->group_count - first - count) * sizeof(char *));
            ug->group_count -= count;
        }
        if (ug && !ug->group_count) {
            rh_table_remove(&hs->user_groups, ug->hash, ug);
            hub_user_groups_free(ug);
        }
        status = is_v1 ? (op == RH_REST_USER_LEAVE_ALL ? 200 : 202) : 204;
    }
    hub_answer_text(hs, reply_to, status, "");
}

/* Tells @shard to make the members of @user there (or only the one with *@route) join or leave
 * @count groups: u8 is_join, u8 has_route, u64 route, hub, user (u16 length each), u16 count,
 * then the groups as kept (u16 length, name). */
static void post_apply(struct hub_shard *hs, uint32_t shard, bool is_join, const uint64_t *route,
                       struct rh_span hub, struct rh_span user, char *const *groups, uint32_t count)
{
    uint32_t size = 1 + 1 + 8 + 2 + hub.len + 2 + user.len + 2;
    for (uint32_t i = 0; i < count; i++) {
        uint16_t len16;
        memcpy(&len16, groups[i], 2);
        size += 2 + len16;
    }
    struct rh_blob *b = rh_blob_new(BLOB_APPLY_GROUPS, 1, NULL, size);
    uint8_t *p = b->data;
    *p++ = is_join;
    *p++ = route != NULL;
    uint64_t r = route ? *route : 0;
    memcpy(p, &r, 8);
    p += 8;
    const struct rh_span fields[] = {hub, user};
    for (int i = 0; i < 2; i++) {
        uint16_t len16 = (uint16_t)fields[i].len;
        memcpy(p, &len16, 2);
        memcpy(p + 2, fields[i].ptr, len16);
        p += 2 + len16;
    }
    uint16_t count16 = (uint16_t)count;
    memcpy(p, &count16, 2);
    p += 2;
    for (uint32_t i = 0; i < count; i++) {
        uint16_t len16;
        memcpy(&len16, groups[i], 2);
        memcpy(p, groups[i], 2u + len16);
        p += 2 + len16;
    }
    RH_ASSERT(p == b->data + size);
    rh_shard_post(hs->shard, shard, b);
}

/* On a shard with members of a user: they join or leave the groups the blob names. */
void hub_apply_groups_received(struct hub_shard *hs, struct rh_blob *b)
{
    const uint8_t *p = b->data, *end = b->data + b->len;
    if (end - p < 10) return;
    bool is_join = p[0] != 0, has_route = p[1] != 0;
    uint64_t route;
    memcpy(&route, p + 2, 8);
    p += 10;
    struct rh_span f[2]; /* hub, user */
    uint16_t count;
    if (!read_fields(&p, end, f, 2) || end - p < 2) return;
    memcpy(&count, p, 2);
    p += 2;
    const uint8_t *groups = p;
    struct rh_group_key user_key = {RH_GROUP_USER, f[0], f[1]};
    const struct rh_list *members = rh_groups_local_members(hs->groups, &user_key);
    if (!members) return;
    struct rh_list *node;
    rh_list_for_each(node, members) {
        struct rh_membership *m = rh_list_entry(node, struct rh_membership, in_group);
        if (has_route && m->route != route) continue;
        struct rh_hub_session *h = m->member;
        const uint8_t *at = groups;
        for (uint16_t i = 0; i < count; i++) {
            struct rh_span name;
            if (!read_fields(&at, end, &name, 1)) return;
            struct rh_group_key key = {RH_GROUP_NAMED, f[0], name};
            if (!is_join) {
                if (rh_groups_leave(hs->groups, &key, &h->groups)) h->group_count--;
            } else if (h->group_count < hub_shard_self()->cfg->max_groups_per_conn &&
                       rh_groups_join(hs->groups, &key, h, m->route, &h->groups,
                                      rh_span_make(NULL, 0))) {
                h->group_count++;
            }
        }
    }
}

/* The owner of a user group takes in a member's join: the member joins the user's groups too,
 * before the join's answer (which completes a connection's handshake) reaches its shard. */
void hub_groups_owner_joining(void *ctx, const struct rh_group_key *key, uint64_t route,
                              uint32_t member_shard)
{
    struct hub_shard *hs = ctx;
    if (key->kind != RH_GROUP_USER) return;
    struct user_groups *ug = user_groups_find(hs, key->hub, key->name);
    if (ug)
        post_apply(hs, member_shard, true, &route, key->hub, key->name, ug->groups,
                   ug->group_count);
}

static bool user_groups_eq(const void *item, const void *key)
{
    const struct user_groups *ug = item;
    const struct rh_span *spans = key;
    return ug->hub_len == spans[0].len && memcmp(ug->text, spans[0].ptr, spans[0].len) == 0 &&
           ug->user_len == spans[1].len &&
           memcmp(ug->text + ug->hub_len, spans[1].ptr, spans[1].len) == 0;
}

static struct user_groups *user_groups_find(struct hub_shard *hs, struct rh_span hub,
                                            struct rh_span user)
{
    struct rh_span key[2] = {hub, user};
    return rh_table_find(&hs->user_groups, hub_feed_hash(hub, user), user_groups_eq, key);
}

void hub_user_groups_free(struct user_groups *ug)
{
    for (uint32_t i = 0; i < ug->group_count; i++)
        rh_free(ug->groups[i]);
    rh_free(ug);
}
