/*
 * shards/hub_report.c - what operators see of the hub sessions of a shard: counters by hub,
 * transport and protocol, connections, kicks (the admin socket and /metrics). See hub.h.
 */
#include "shards/hub_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/log.h"

static void count_owned(void *ctx, const struct rh_group_info *info);
static void conn_info(struct hub_shard *hs, const struct rh_hub_session *h,
                      struct rh_hub_conn_info *out);

/* The counters of hub @hub: its own among the first RH_HUB_REPORT_HUBS, else "other". */
struct hub_stats *hub_stats_of(struct hub_shard *hs, struct rh_span hub)
{
    for (uint32_t i = 0; i < hs->hub_stats_count && i < RH_HUB_REPORT_HUBS; i++) {
        struct hub_stats *st = &hs->hub_stats[i];
        if (st->len == hub.len && memcmp(st->name, hub.ptr, hub.len) == 0) return st;
    }
    if (hs->hub_stats_count < RH_HUB_REPORT_HUBS) {
        struct hub_stats *st = &hs->hub_stats[hs->hub_stats_count++];
        st->len = hub.len;
        memcpy(st->name, hub.ptr, hub.len);
        return st;
    }
    struct hub_stats *other = &hs->hub_stats[RH_HUB_REPORT_HUBS];
    if (!other->len) {
        other->len = 5;
        memcpy(other->name, "other", 5);
        hs->hub_stats_count = RH_HUB_REPORT_HUBS + 1;
    }
    return other;
}

void rh_hub_report(struct rh_shard *s, struct rh_hub_report *out)
{
    struct hub_shard *hs = rh_shard_app(s);
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < hs->hub_stats_count; i++) {
        const struct hub_stats *st = &hs->hub_stats[i];
        struct rh_hub_report_hub *h = &out->hubs[out->hub_count++];
        memcpy(h->name, st->name, st->len);
        h->name[st->len] = '\0';
        memcpy(h->by, st->by, sizeof(h->by));
        for (int t = 0; t < RH_HUB_REPORT_TRANSPORTS; t++)
            for (int c = 0; c < 2; c++)
                rh_hub_counts_add(&out->total[t][c], &st->by[t][c]);
    }
    const struct limit_counts *n = &hs->counts;
    out->closed_rate = n->closed_rate;
    out->closed_too_large = n->closed_too_large;
    out->closed_handshake = n->closed_handshake;
    out->closed_slow = n->closed_slow;
    out->closed_kicked = n->closed_kicked;
    out->closed_timeout = n->closed_timeout;
    out->dropped_bytes = n->dropped_bytes;
    out->dropped_frames = n->dropped_frames;
    out->refused_joins = n->refused_joins;
    rh_groups_each(hs->groups, count_owned, &out->groups_owned);
}

static void count_owned(void *ctx, const struct rh_group_info *info)
{
    if (info->is_owned && info->key.kind == RH_GROUP_NAMED) ++*(uint64_t *)ctx;
}

static void conn_info(struct hub_shard *hs, const struct rh_hub_session *h,
                      struct rh_hub_conn_info *out)
{
    memset(out, 0, sizeof(*out));
    const struct hub_link *l = &hs->links[h->link_slot];
    uint8_t raw[ROUTE_BYTES + PUBLIC_BYTES];
    hub_route_put(raw, hub_link_route(hs, h->link_slot));
    memcpy(raw + ROUTE_BYTES, l->public_tail, PUBLIC_BYTES);
    rh_b64url_encode(raw, sizeof(raw), out->id);
    memcpy(out->hub, h->hub->text, h->hub->len);
    memcpy(out->user, h->user ? h->user : "", h->user_len);
    out->transport = h->transport;
    out->codec = (uint8_t)h->codec;
    out->shard = (uint8_t)rh_shard_idx(hs->shard);
    out->groups = h->group_count - (h->user_len ? 1 : 0);
    if (h->conn) {
        out->queue_bytes = rh_conn_queued_bytes(h->conn);
        rh_conn_peer_name(h->conn, out->peer, sizeof(out->peer));
    } else if (h->transport == TRANSPORT_LP) {
        out->queue_bytes = h->lp->out_bytes;
    }
    out->age_ms = rh_clock_now_ms() - h->started_ms;
}

void rh_hub_each_conn(struct rh_shard *s, struct rh_span hub,
                      void (*fn)(void *ctx, const struct rh_hub_conn_info *info), void *ctx)
{
    struct hub_shard *hs = rh_shard_app(s);
    struct rh_list *it;
    rh_list_for_each(it, &hs->sessions) {
        const struct rh_hub_session *h = rh_list_entry(it, struct rh_hub_session, link);
        if (h->transport == TRANSPORT_EVENTS) continue;
        if (hub.ptr && !rh_span_eq(hub_span(h), hub)) continue;
        struct rh_hub_conn_info info;
        conn_info(hs, h, &info);
        fn(ctx, &info);
    }
}

int rh_hub_conn_shard(struct rh_shard *s, struct rh_span id)
{
    if (id.len != ID_TEXT_LEN) return -1;
    return rh_hub_id_shard(s, (const char *)id.ptr, id.len);
}

static struct rh_hub_session *session_by_text(struct hub_shard *hs, struct rh_span id)
{
    uint64_t route;
    uint8_t tail[PUBLIC_BYTES];
    if (!hub_connection_route(hs->shard, (const char *)id.ptr, id.len, &route, tail)) return NULL;
    if (rh_conn_id_shard(route) != rh_shard_idx(hs->shard)) return NULL;
    return hub_session_by_id(hs, route, tail);
}

bool rh_hub_conn_find(struct rh_shard *s, struct rh_span id, struct rh_hub_conn_info *out,
                      void (*group_fn)(void *ctx, struct rh_span group), void *ctx)
{
    struct hub_shard *hs = rh_shard_app(s);
    struct rh_hub_session *h = session_by_text(hs, id);
    if (!h || h->state != SESSION_READY) return false;
    conn_info(hs, h, out);
    struct rh_list *it;
    rh_list_for_each(it, &h->groups) {
        struct rh_group_key key =
            rh_membership_key(rh_list_entry(it, struct rh_membership, in_member));
        if (key.kind == RH_GROUP_NAMED) group_fn(ctx, key.name);
    }
    return true;
}

bool rh_hub_kick(struct rh_shard *s, struct rh_span id, struct rh_span reason)
{
    struct hub_shard *hs = rh_shard_app(s);
    struct rh_hub_session *h = session_by_text(hs, id);
    if (!h || h->is_ending) return false;
    char error[300];
    snprintf(error, sizeof(error), "%.*s", (int)reason.len, (const char *)reason.ptr);
    rh_log_info("hub", "connection %.*s kicked by an operator: %s", (int)id.len,
                (const char *)id.ptr, error);
    hs->counts.closed_kicked++;
    hub_end_session(h, error, false);
    hub_session_finish(h); /* may free @h */
    return true;
}

struct rh_groups *rh_hub_groups(struct rh_shard *s)
{
    return ((struct hub_shard *)rh_shard_app(s))->groups;
}
