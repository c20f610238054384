/*
 * shards/backplane.c - nodes as one cluster through Redis pub/sub (shards/backplane.h).
 *
 * A shard's two links (command, subscriber) each hold one TCP connection of the shard's ring
 * at a time; a link that breaks is connected again after a backoff (100 ms doubling to 5 s,
 * +-25% jitter), moving on to the next --redis endpoint each time. The subscriber link, once
 * up, subscribes every channel the shard wants (its table); the command link sends what the
 * outage buffer kept. A reply on the command link belongs to the oldest command without one
 * (Redis answers in order), which the link's pending ring remembers.
 */
#include "shards/backplane.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/table.h"
#include "core/timer.h"
#include "shards/hub.h"
#include "transports/redis_wire.h"

#define ENDPOINTS_MAX    16
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   5000
#define HEARTBEAT_MS     5000
#define NODE_TTL_MS      15000 /* a node not heard of for this long is gone */
#define CHANNEL_MAX      (64 + 16 + RH_HUB_NAME_MAX + RH_GROUP_NAME_MAX)
#define NODES_MAX        256
#define SEQ_ORIGINS_MAX  4096 /* origins whose last sequence a link remembers */

enum role {
    ROLE_COMMAND,
    ROLE_SUBSCRIBER,
};

enum link_state {
    LINK_DOWN,
    LINK_CONNECTING,
    LINK_UP,
};

/* What a reply on the command link is for. */
enum pending_what {
    PENDING_PUBLISH,
    PENDING_IGNORE,   /* the directory's writes */
    PENDING_NODES,    /* HGETALL of the directory */
    PENDING_MEMBERS,  /* PUBSUB NUMSUB for an existence check: arg is the HTTP connection */
    PENDING_ANNOUNCE, /* a JOINED announcement: arg is its channel's hash */
};

struct pending {
    uint8_t what;
    uint64_t arg;
};

struct endpoint {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char text[300];
};

struct link {
    struct bp_shard *bs;
    struct rh_conn *conn; /* while CONNECTING or UP */
    uint8_t role;
    uint8_t state;
    redisReader *reader;
    struct pending *pending; /* a ring: head, count, cap */
    uint32_t pending_head, pending_count, pending_cap;
    uint32_t endpoint;
    uint32_t backoff_ms;
    struct rh_timer retry;
    bool was_up; /* it has been up once: a new connection is a reconnect */
    int64_t down_since_ms;
};

/* A channel this shard subscribes to, and for a group's or user's channel, the other nodes that
 * said they have members. */
struct channel {
    uint64_t hash;
    bool is_group;
    uint8_t group_kind;       /* enum rh_group_kind, for a group's or user's channel */
    uint16_t hub_at, hub_len; /* where the hub's name is in name[] */
    uint16_t key_at, key_len; /* where the group's or user's name is */
    uint16_t remote_count, remote_cap;
    uint16_t *remote;
    bool is_announcing; /* joins wait until the announcement is published */
    uint32_t len;
    char name[];
};

/* The last sequence seen from one origin (node, shard). */
struct seen {
    uint64_t origin;
    uint64_t seq;
};

struct pending_answer {
    struct rh_list link;
    uint64_t reply_to;
    int64_t deadline_ms;
};

struct bp_shard {
    struct rh_shard *shard;
    struct link links[2]; /* enum role */
    struct rh_table channels;
    struct rh_table seen;
    uint32_t seen_count;
    uint64_t seq;
    struct rh_buf **outage; /* commands kept while the command link is down, oldest first */
    uint32_t outage_count, outage_cap;
    uint64_t outage_bytes;
    struct rh_backplane_report counts;
    struct rh_timer heartbeat; /* shard 0: the node directory */
    struct rh_backplane_node nodes[NODES_MAX];
    uint32_t node_count;
    struct rh_list answers; /* struct pending_answer, oldest first */
    struct rh_timer answer_timer;
    bool is_stopping;
};

static struct endpoint endpoints[ENDPOINTS_MAX];
static uint32_t endpoint_count;
static const struct rh_cfg *config;
static _Thread_local struct bp_shard *self;

static void link_connect(struct link *l);
static void link_retry_fired(struct rh_timer *t);
static void link_down(struct link *l);
static void link_command(struct link *l, uint32_t argc, const struct rh_span *argv,
                         enum pending_what what, uint64_t arg);
static void link_reply(struct link *l, redisReply *r);
static void subscriber_reply(struct bp_shard *bs, redisReply *r);
static void command_reply(struct bp_shard *bs, const struct pending *p, redisReply *r);
static void message_received(struct bp_shard *bs, struct rh_span channel, struct rh_span data);
static void interest_received(struct bp_shard *bs, struct rh_span channel,
                              const struct rh_bp_env *e);
static void publish_on(struct bp_shard *bs, struct rh_span channel, struct rh_bp_env *e);
static void publish_as(struct bp_shard *bs, struct rh_span channel, struct rh_bp_env *e,
                       enum pending_what what, uint64_t arg);
static void announced(struct bp_shard *bs, uint64_t hash);
static void announced_all(struct bp_shard *bs);
static uint32_t channel_of_key(char *out, uint8_t kind, struct rh_span hub, struct rh_span name,
                               uint16_t at[4]);
static uint32_t channel_of_node(char *out, uint32_t node, uint32_t shard);
static struct channel *channel_find(struct bp_shard *bs, struct rh_span name);
static struct channel *channel_add(struct bp_shard *bs, struct rh_span name, bool is_group);
static void channel_drop(struct bp_shard *bs, struct channel *ch);
static void subscribe(struct bp_shard *bs, struct channel *ch, bool on);
static bool seen_before(struct bp_shard *bs, const struct rh_bp_env *e);
static void heartbeat_fired(struct rh_timer *t);
static void nodes_read(struct bp_shard *bs, redisReply *r);
static void answer_timer_fired(struct rh_timer *t);
static uint32_t jitter(uint32_t ms);
static int64_t wall_ms(void);

/* ---- set-up ---------------------------------------------------------------------------- */

int rh_backplane_prepare(const struct rh_cfg *cfg)
{
    config = cfg;
    endpoint_count = 0;
    for (const char *p = cfg->redis; *p;) {
        size_t len = strcspn(p, ",");
        char text[300];
        if (len >= sizeof(text) || endpoint_count == ENDPOINTS_MAX) {
            rh_log_error("backplane", "--redis: at most %d endpoints of %zu bytes", ENDPOINTS_MAX,
                         sizeof(text) - 1);
            return -1;
        }
        memcpy(text, p, len);
        text[len] = '\0';
        struct endpoint *ep = &endpoints[endpoint_count];
        memcpy(ep->text, text, len + 1); /* as given, for the logs */
        p += len + (p[len] == ',');
        char *colon = strrchr(text, ':');
        *colon = '\0';
        char *host = text;
        if (host[0] == '[') {
            host++;
            host[strlen(host) - 1] = '\0';
        }
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
        int rc = getaddrinfo(host, colon + 1, &hints, &res);
        if (rc != 0) {
            rh_log_error("backplane", "--redis: cannot resolve %s: %s", host, gai_strerror(rc));
            return -1;
        }
        memcpy(&ep->addr, res->ai_addr, res->ai_addrlen);
        ep->addr_len = res->ai_addrlen;
        endpoint_count++;
        freeaddrinfo(res);
    }
    if (endpoint_count)
        rh_log_info("backplane", "node %u scales out through Redis at %s (prefix \"%s\")",
                    cfg->node_id, cfg->redis, cfg->redis_prefix);
    return 0;
}

void rh_backplane_finish(void)
{
    endpoint_count = 0;
    config = NULL;
}

bool rh_backplane_enabled(void)
{
    return endpoint_count != 0;
}

void rh_backplane_shard_start(struct rh_shard *s)
{
    if (!endpoint_count) return;
    struct bp_shard *bs = rh_calloc(1, sizeof(*bs));
    bs->shard = s;
    self = bs;
    /* A sequence that a restarted node (later clock) never repeats: start time, then a count. */
    bs->seq = (uint64_t)wall_ms() << 20;
    bs->counts.enabled = true;
    rh_list_init(&bs->answers);
    rh_timer_init(&bs->answer_timer, answer_timer_fired);
    rh_timer_init(&bs->heartbeat, heartbeat_fired);
    uint32_t idx = rh_shard_idx(s);
    for (int r = 0; r < 2; r++) {
        struct link *l = &bs->links[r];
        l->bs = bs;
        l->role = (uint8_t)r;
        l->endpoint = idx % endpoint_count;
        rh_timer_init(&l->retry, link_retry_fired);
    }
    char name[CHANNEL_MAX];
    channel_add(
        bs, rh_span_make(name, channel_of_node(name, rh_runtime_node_id(rh_shard_runtime(s)), idx)),
        false);
    if (idx == 0) {
        int n = snprintf(name, sizeof(name), "%s:all", config->redis_prefix);
        channel_add(bs, rh_span_make(name, (uint32_t)n), false);
        rh_timer_schedule(rh_shard_wheel(s), &bs->heartbeat, rh_clock_now_ms());
    }
    link_connect(&bs->links[ROLE_COMMAND]);
    link_connect(&bs->links[ROLE_SUBSCRIBER]);
}

void rh_backplane_shard_draining(struct rh_shard *s)
{
    (void)s;
    struct bp_shard *bs = self;
    if (!bs) return;
    bs->is_stopping = true;
    rh_timer_cancel(&bs->heartbeat);
    for (int r = 0; r < 2; r++)
        rh_timer_cancel(&bs->links[r].retry);
}

void rh_backplane_shard_stop(struct rh_shard *s)
{
    (void)s;
    struct bp_shard *bs = self;
    if (!bs) return;
    for (int r = 0; r < 2; r++) {
        struct link *l = &bs->links[r];
        rh_timer_cancel(&l->retry);
        if (l->reader) rh_redis_reader_free(l->reader);
        rh_free(l->pending);
    }
    rh_timer_cancel(&bs->heartbeat);
    rh_timer_cancel(&bs->answer_timer);
    while (!rh_list_is_empty(&bs->answers)) {
        struct pending_answer *pa = rh_list_entry(bs->answers.next, struct pending_answer, link);
        rh_list_unlink(&pa->link);
        rh_free(pa);
    }
    uint32_t cursor = 0;
    struct channel *ch;
    while ((ch = rh_table_next(&bs->channels, &cursor))) {
        rh_free(ch->remote);
        rh_free(ch);
    }
    rh_table_free(&bs->channels);
    cursor = 0;
    struct seen *sn;
    while ((sn = rh_table_next(&bs->seen, &cursor)))
        rh_free(sn);
    rh_table_free(&bs->seen);
    for (uint32_t i = 0; i < bs->outage_count; i++)
        rh_buf_unref(bs->outage[i]);
    rh_free(bs->outage);
    rh_free(bs);
    self = NULL;
}

/* ---- links ----------------------------------------------------------------------------- */

static void link_connect(struct link *l)
{
    struct bp_shard *bs = l->bs;
    if (bs->is_stopping) return;
    const struct endpoint *ep = &endpoints[l->endpoint];
    l->conn = rh_conn_connect(bs->shard, (const struct sockaddr *)&ep->addr, ep->addr_len, l);
    if (!l->conn) {
        rh_log_limited(RH_LOG_WARN, "backplane", "cannot open a connection to Redis at %s: %s",
                       ep->text, strerror(errno));
        link_down(l);
        return;
    }
    l->state = LINK_CONNECTING;
}

static void link_retry_fired(struct rh_timer *t)
{
    struct link *l = (struct link *)((char *)t - offsetof(struct link, retry));
    link_connect(l);
}

/* The link has no connection (it broke, or never came up): count what it loses and try again
 * after the backoff, on the next endpoint. */
static void link_down(struct link *l)
{
    struct bp_shard *bs = l->bs;
    bool was_up = l->state == LINK_UP;
    l->state = LINK_DOWN;
    l->conn = NULL;
    for (uint32_t i = 0; i < l->pending_count; i++) {
        const struct pending *p = &l->pending[(l->pending_head + i) % l->pending_cap];
        if (p->what == PENDING_PUBLISH) bs->counts.lost++;
        if (p->what == PENDING_MEMBERS) rh_hub_remote_answer(bs->shard, p->arg, 503);
    }
    l->pending_count = 0;
    announced_all(bs); /* joins never wait for a Redis that is away */
    l->pending_head = 0;
    if (l->reader) {
        rh_redis_reader_free(l->reader);
        l->reader = NULL;
    }
    int64_t now = rh_clock_now_ms();
    if (was_up) {
        l->down_since_ms = wall_ms();
        rh_log_warn("backplane",
                    "lost the %s connection to Redis at %s; local delivery goes on, "
                    "cross-node messages are kept (up to %u bytes) until it is back",
                    l->role == ROLE_COMMAND ? "command" : "subscriber", endpoints[l->endpoint].text,
                    config->redis_buffer);
    } else if (!l->down_since_ms) {
        l->down_since_ms = wall_ms();
    }
    if (bs->is_stopping) return;
    l->endpoint = (l->endpoint + 1) % endpoint_count;
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_FIRST_MS;
    if (l->backoff_ms > BACKOFF_MAX_MS) l->backoff_ms = BACKOFF_MAX_MS;
    rh_timer_schedule(rh_shard_wheel(bs->shard), &l->retry, now + jitter(l->backoff_ms));
}

void rh_backplane_conn_open(struct rh_conn *c)
{
    struct link *l = rh_conn_app(c);
    struct bp_shard *bs = l->bs;
    l->state = LINK_UP;
    l->reader = rh_redis_reader_new();
    if (l->was_up) bs->counts.reconnects++;
    if (l->down_since_ms && l->was_up)
        rh_log_info("backplane", "the %s connection to Redis at %s is back after %lld ms",
                    l->role == ROLE_COMMAND ? "command" : "subscriber", endpoints[l->endpoint].text,
                    (long long)(wall_ms() - l->down_since_ms));
    l->was_up = true;
    l->down_since_ms = 0;
    l->backoff_ms = 0;
    if (l->role == ROLE_SUBSCRIBER) {
        uint32_t cursor = 0;
        struct channel *ch;
        while ((ch = rh_table_next(&bs->channels, &cursor)))
            subscribe(bs, ch, true);
        return;
    }
    /* What was published during the outage, in order. */
    for (uint32_t i = 0; i < bs->outage_count; i++) {
        rh_conn_send(c, bs->outage[i]);
        rh_buf_unref(bs->outage[i]);
        if (l->pending_count == l->pending_cap) {
            uint32_t cap = l->pending_cap ? l->pending_cap * 2 : 64;
            struct pending *p = rh_alloc(cap * sizeof(*p));
            for (uint32_t k = 0; k < l->pending_count; k++)
                p[k] = l->pending[(l->pending_head + k) % l->pending_cap];
            rh_free(l->pending);
            l->pending = p;
            l->pending_cap = cap;
            l->pending_head = 0;
        }
        l->pending[(l->pending_head + l->pending_count++) % l->pending_cap] =
            (struct pending){PENDING_PUBLISH, 0};
    }
    bs->outage_count = 0;
    bs->outage_bytes = 0;
    if (rh_shard_idx(bs->shard) == 0) heartbeat_fired(&bs->heartbeat);
}

ssize_t rh_backplane_conn_recv(struct rh_conn *c, const uint8_t *data, size_t len)
{
    struct link *l = rh_conn_app(c);
    if (!l || l->state != LINK_UP) return (ssize_t)len;
    if (redisReaderFeed(l->reader, (const char *)data, len) != REDIS_OK) return -EPROTO;
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
            rh_log_warn("backplane", "Redis at %s: %s; reconnecting", endpoints[l->endpoint].text,
                        l->reader->errstr);
            rh_conn_close(c, RH_CLOSE_NOW);
            return (ssize_t)len;
        }
        if (!reply) break;
        link_reply(l, reply);
        freeReplyObject(reply);
        if (l->state != LINK_UP) break; /* closed while handling it */
    }
    return (ssize_t)len;
}

void rh_backplane_conn_close(struct rh_conn *c)
{
    struct link *l = rh_conn_app(c);
    if (!l) return;
    rh_conn_set_app(c, NULL);
    if (l->state == LINK_CONNECTING && !l->bs->is_stopping) {
        int err = -rh_conn_connect_error(c);
        rh_log_limited(RH_LOG_WARN, "backplane", "cannot connect to Redis at %s: %s",
                       endpoints[l->endpoint].text, strerror(err ? err : ECONNABORTED));
    }
    link_down(l);
}

static void pending_push(struct link *l, enum pending_what what, uint64_t arg)
{
    if (l->pending_count == l->pending_cap) {
        uint32_t cap = l->pending_cap ? l->pending_cap * 2 : 64;
        struct pending *p = rh_alloc(cap * sizeof(*p));
        for (uint32_t k = 0; k < l->pending_count; k++)
            p[k] = l->pending[(l->pending_head + k) % l->pending_cap];
        rh_free(l->pending);
        l->pending = p;
        l->pending_cap = cap;
        l->pending_head = 0;
    }
    l->pending[(l->pending_head + l->pending_count++) % l->pending_cap] =
        (struct pending){what, arg};
}

/* Writes a command on @l, or on the command link while it is down keeps a PUBLISH for later
 * (within --redis-buffer; past it, drops it). Other commands of a link that is down are not
 * needed later: a link that comes back subscribes anew and the directory is written again. */
static void link_command(struct link *l, uint32_t argc, const struct rh_span *argv,
                         enum pending_what what, uint64_t arg)
{
    struct bp_shard *bs = l->bs;
    if (l->state != LINK_UP) {
        if (what == PENDING_MEMBERS) rh_hub_remote_answer(bs->shard, arg, 503);
        if (what == PENDING_ANNOUNCE) announced(bs, arg);
        if (what != PENDING_PUBLISH) return;
        struct rh_buf *out = rh_buf_new(64);
        rh_redis_command(&out, argc, argv);
        if (bs->outage_bytes + out->len > config->redis_buffer) {
            bs->counts.dropped++;
            rh_buf_unref(out);
            return;
        }
        if (bs->outage_count == bs->outage_cap) {
            bs->outage_cap = bs->outage_cap ? bs->outage_cap * 2 : 64;
            bs->outage = rh_realloc(bs->outage, bs->outage_cap * sizeof(*bs->outage));
        }
        bs->outage[bs->outage_count++] = out;
        bs->outage_bytes += out->len;
        return;
    }
    struct rh_buf *out = rh_buf_new(64);
    rh_redis_command(&out, argc, argv);
    rh_conn_send(l->conn, out);
    rh_buf_unref(out);
    if (l->role == ROLE_COMMAND) pending_push(l, what, arg);
}

static void link_reply(struct link *l, redisReply *r)
{
    struct bp_shard *bs = l->bs;
    if (l->role == ROLE_SUBSCRIBER) {
        subscriber_reply(bs, r);
        return;
    }
    if (!l->pending_count) {
        rh_log_limited(RH_LOG_WARN, "backplane", "a Redis reply nobody asked for (type %d)",
                       r->type);
        return;
    }
    struct pending p = l->pending[l->pending_head];
    l->pending_head = (l->pending_head + 1) % l->pending_cap;
    l->pending_count--;
    command_reply(bs, &p, r);
}

static void command_reply(struct bp_shard *bs, const struct pending *p, redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        rh_log_limited(RH_LOG_WARN, "backplane", "Redis refused a command: %.*s", (int)r->len,
                       r->str);
        if (p->what == PENDING_MEMBERS) rh_hub_remote_answer(bs->shard, p->arg, 503);
        if (p->what == PENDING_ANNOUNCE) announced(bs, p->arg);
        return;
    }
    switch ((enum pending_what)p->what) {
    case PENDING_PUBLISH:
    case PENDING_IGNORE:
        return;
    case PENDING_NODES:
        nodes_read(bs, r);
        return;
    case PENDING_ANNOUNCE:
        announced(bs, p->arg);
        return;
    case PENDING_MEMBERS: {
        /* [channel, subscribers] */
        bool any = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                   r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer > 0;
        rh_hub_remote_answer(bs->shard, p->arg, any ? 200 : 404);
        return;
    }
    }
}

static void subscriber_reply(struct bp_shard *bs, redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        rh_log_limited(RH_LOG_WARN, "backplane", "Redis refused a subscription: %.*s", (int)r->len,
                       r->str);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *kind = r->element[0];
    struct rh_span channel = rh_span_make(r->element[1]->str, (uint32_t)r->element[1]->len);
    if (kind->len == 7 && memcmp(kind->str, "message", 7) == 0 &&
        r->element[2]->type == REDIS_REPLY_STRING) {
        message_received(bs, channel,
                         rh_span_make(r->element[2]->str, (uint32_t)r->element[2]->len));
        return;
    }
    if (kind->len == 9 && memcmp(kind->str, "subscribe", 9) == 0) {
        /* Subscribed: the channel now hears every answer to our announcement. */
        struct channel *ch = channel_find(bs, channel);
        if (!ch || !ch->is_group) return;
        struct rh_bp_env e = {.kind = RH_BP_INTEREST};
        e.interest.group_kind = ch->group_kind;
        e.interest.state = RH_BP_JOINED;
        e.interest.hub = rh_span_make(ch->name + ch->hub_at, ch->hub_len);
        e.interest.name = rh_span_make(ch->name + ch->key_at, ch->key_len);
        publish_as(bs, rh_span_make(ch->name, ch->len), &e, PENDING_ANNOUNCE, ch->hash);
    }
}

/* The channel with @hash announced this node's members (or could not): its joins go on. */
static void announced(struct bp_shard *bs, uint64_t hash)
{
    uint32_t cursor = 0;
    struct channel *ch;
    while ((ch = rh_table_next(&bs->channels, &cursor))) {
        if (ch->hash != hash || !ch->is_announcing) continue;
        ch->is_announcing = false;
        struct rh_group_key key = {(enum rh_group_kind)ch->group_kind,
                                   rh_span_make(ch->name + ch->hub_at, ch->hub_len),
                                   rh_span_make(ch->name + ch->key_at, ch->key_len)};
        rh_hub_interest_ready(bs->shard, &key);
        return;
    }
}

/* Every channel waiting for its announcement goes on without (Redis went away). */
static void announced_all(struct bp_shard *bs)
{
    uint32_t cursor = 0;
    struct channel *ch;
    while ((ch = rh_table_next(&bs->channels, &cursor)))
        if (ch->is_announcing) announced(bs, ch->hash);
}

/* ---- envelopes in ---------------------------------------------------------------------- */

static void message_received(struct bp_shard *bs, struct rh_span channel, struct rh_span data)
{
    struct rh_bp_env e;
    const char *why = NULL;
    if (rh_bp_decode(data.ptr, data.len, &e, &why) != 0) {
        bs->counts.bad++;
        rh_log_limited(RH_LOG_WARN, "backplane", "an envelope on %.*s does not decode: %s",
                       (int)channel.len, (const char *)channel.ptr, why ? why : "?");
        return;
    }
    if (e.origin_node == rh_runtime_node_id(rh_shard_runtime(bs->shard))) return; /* ours */
    if (seen_before(bs, &e)) return;
    bs->counts.received++;
    if (e.kind == RH_BP_INTEREST)
        interest_received(bs, channel, &e);
    else
        rh_hub_remote(bs->shard, &e);
}

static bool seen_eq(const void *item, const void *key)
{
    return ((const struct seen *)item)->origin == *(const uint64_t *)key;
}

/* Sequences only grow per origin on one subscription (one Redis connection publishes them in
 * order, and this one connection hears them in that order), so one at or below the last seen
 * is a message seen already. */
static bool seen_before(struct bp_shard *bs, const struct rh_bp_env *e)
{
    uint64_t origin = (uint64_t)e->origin_node << 8 | e->origin_shard;
    uint64_t hash = rh_hash(&origin, sizeof(origin));
    struct seen *sn = rh_table_find(&bs->seen, hash, seen_eq, &origin);
    if (!sn) {
        if (bs->seen_count >= SEQ_ORIGINS_MAX) return false;
        sn = rh_alloc(sizeof(*sn));
        *sn = (struct seen){origin, e->seq};
        rh_table_insert(&bs->seen, hash, sn);
        bs->seen_count++;
        return false;
    }
    if (e->seq <= sn->seq) return true;
    sn->seq = e->seq;
    return false;
}

/* Another node has members of a group whose channel we hear (we have members too), has them
 * still, or has none left. */
static void interest_received(struct bp_shard *bs, struct rh_span channel,
                              const struct rh_bp_env *e)
{
    struct channel *ch = channel_find(bs, channel);
    if (!ch || !ch->is_group) return;
    uint16_t node = e->origin_node;
    uint32_t at = 0;
    while (at < ch->remote_count && ch->remote[at] != node)
        at++;
    if (e->interest.state == RH_BP_GONE) {
        if (at < ch->remote_count) ch->remote[at] = ch->remote[--ch->remote_count];
        return;
    }
    if (at == ch->remote_count) {
        if (ch->remote_count == ch->remote_cap) {
            ch->remote_cap = ch->remote_cap ? (uint16_t)(ch->remote_cap * 2) : 4;
            ch->remote = rh_realloc(ch->remote, ch->remote_cap * sizeof(*ch->remote));
        }
        ch->remote[ch->remote_count++] = node;
    }
    if (e->interest.state == RH_BP_JOINED) {
        struct rh_bp_env here = *e;
        here.interest.state = RH_BP_HERE;
        publish_on(bs, channel, &here);
    }
}

/* ---- envelopes out --------------------------------------------------------------------- */

static void publish_on(struct bp_shard *bs, struct rh_span channel, struct rh_bp_env *e)
{
    publish_as(bs, channel, e, PENDING_PUBLISH, 0);
}

static void publish_as(struct bp_shard *bs, struct rh_span channel, struct rh_bp_env *e,
                       enum pending_what what, uint64_t arg)
{
    e->origin_node = (uint16_t)rh_runtime_node_id(rh_shard_runtime(bs->shard));
    e->origin_shard = (uint8_t)rh_shard_idx(bs->shard);
    e->seq = ++bs->seq;
    uint32_t size = rh_bp_size(e);
    uint8_t stack[1024];
    uint8_t *payload = size <= sizeof(stack) ? stack : rh_alloc(size);
    rh_bp_encode(e, payload);
    struct rh_span argv[3] = {rh_span_make("PUBLISH", 7), channel, rh_span_make(payload, size)};
    link_command(&bs->links[ROLE_COMMAND], 3, argv, what, arg);
    if (payload != stack) rh_free(payload);
    bs->counts.published++;
}

void rh_backplane_publish(struct rh_shard *s, struct rh_bp_env *e, uint64_t route)
{
    (void)s;
    struct bp_shard *bs = self;
    if (!bs) return;
    char name[CHANNEL_MAX];
    uint32_t len;
    bool to_all =
        e->kind == RH_BP_USER_GROUPS || (e->kind == RH_BP_SEND && e->send.scope == RH_BP_ALL);
    bool to_key =
        e->kind == RH_BP_SEND && (e->send.scope == RH_BP_GROUP || e->send.scope == RH_BP_USER);
    if (to_all) {
        len = (uint32_t)snprintf(name, sizeof(name), "%s:all", config->redis_prefix);
    } else if (to_key) {
        uint16_t at[4];
        len = channel_of_key(name, e->send.scope == RH_BP_USER ? RH_GROUP_USER : RH_GROUP_NAMED,
                             e->send.hub, e->send.name, at);
    } else {
        len = channel_of_node(name, rh_conn_id_node(route), rh_conn_id_shard(route));
    }
    publish_on(bs, rh_span_make(name, len), e);
}

bool rh_backplane_group_wanted(struct rh_shard *s, const struct rh_group_key *key)
{
    (void)s;
    struct bp_shard *bs = self;
    if (!bs) return false;
    char name[CHANNEL_MAX];
    uint16_t at[4];
    uint32_t len = channel_of_key(name, key->kind, key->hub, key->name, at);
    struct channel *ch = channel_find(bs, rh_span_make(name, len));
    /* Without members here this node does not hear the channel and cannot know: it sends. */
    bool wanted = !ch || ch->remote_count > 0;
    if (!wanted) bs->counts.skipped++;
    return wanted;
}

bool rh_backplane_interest(struct rh_shard *s, const struct rh_group_key *key, bool has_members)
{
    (void)s;
    struct bp_shard *bs = self;
    if (!bs) return true;
    char name[CHANNEL_MAX];
    uint16_t at[4];
    uint32_t len = channel_of_key(name, key->kind, key->hub, key->name, at);
    struct rh_span channel = rh_span_make(name, len);
    struct channel *ch = channel_find(bs, channel);
    if (has_members) {
        if (ch) return true;
        ch = channel_add(bs, channel, true);
        ch->group_kind = (uint8_t)key->kind;
        ch->hub_at = at[0];
        ch->hub_len = at[1];
        ch->key_at = at[2];
        ch->key_len = at[3];
        /* The announcement follows the confirmation; joins wait for both, unless Redis is away
         * (local delivery never waits for it). */
        if (bs->links[ROLE_SUBSCRIBER].state != LINK_UP || bs->links[ROLE_COMMAND].state != LINK_UP)
            return true;
        ch->is_announcing = true;
        subscribe(bs, ch, true);
        return false;
    }
    if (!ch) return true;
    struct rh_bp_env e = {.kind = RH_BP_INTEREST};
    e.interest.group_kind = (uint8_t)key->kind;
    e.interest.state = RH_BP_GONE;
    e.interest.hub = key->hub;
    e.interest.name = key->name;
    publish_on(bs, channel, &e);
    subscribe(bs, ch, false);
    channel_drop(bs, ch);
    return true;
}

void rh_backplane_ask_members(struct rh_shard *s, const struct rh_group_key *key, uint64_t reply_to)
{
    struct bp_shard *bs = self;
    if (!bs) {
        rh_hub_remote_answer(s, reply_to, 404);
        return;
    }
    char name[CHANNEL_MAX];
    uint16_t at[4];
    uint32_t len = channel_of_key(name, key->kind, key->hub, key->name, at);
    struct rh_span argv[3] = {rh_span_make("PUBSUB", 6), rh_span_make("NUMSUB", 6),
                              rh_span_make(name, len)};
    link_command(&bs->links[ROLE_COMMAND], 3, argv, PENDING_MEMBERS, reply_to);
}

void rh_backplane_expect_answer(struct rh_shard *s, uint64_t reply_to)
{
    struct bp_shard *bs = self;
    if (!bs) return;
    struct pending_answer *pa = rh_alloc(sizeof(*pa));
    pa->reply_to = reply_to;
    pa->deadline_ms = rh_clock_now_ms() + RH_BACKPLANE_ANSWER_MS;
    rh_list_push_back(&bs->answers, &pa->link);
    if (!rh_timer_is_armed(&bs->answer_timer))
        rh_timer_schedule(rh_shard_wheel(s), &bs->answer_timer, pa->deadline_ms);
}

/* An answer came from another node: it is no longer waited for. */
bool rh_backplane_answered(struct rh_shard *s, uint64_t reply_to)
{
    (void)s;
    struct bp_shard *bs = self;
    if (!bs) return false;
    struct rh_list *it;
    rh_list_for_each(it, &bs->answers) {
        struct pending_answer *pa = rh_list_entry(it, struct pending_answer, link);
        if (pa->reply_to != reply_to) continue;
        rh_list_unlink(&pa->link);
        rh_free(pa);
        return true;
    }
    return false;
}

static void answer_timer_fired(struct rh_timer *t)
{
    (void)t;
    struct bp_shard *bs = self;
    int64_t now = rh_clock_now_ms();
    while (!rh_list_is_empty(&bs->answers)) {
        struct pending_answer *pa = rh_list_entry(bs->answers.next, struct pending_answer, link);
        if (pa->deadline_ms > now) {
            rh_timer_schedule(rh_shard_wheel(bs->shard), &bs->answer_timer, pa->deadline_ms);
            return;
        }
        rh_list_unlink(&pa->link);
        uint64_t reply_to = pa->reply_to;
        rh_free(pa);
        rh_hub_remote_answer(bs->shard, reply_to, 504);
    }
}

/* ---- channels -------------------------------------------------------------------------- */

/* P:group:<hub>:<name> or P:user:<hub>:<name> into @out; @at gets where hub and name are. */
static uint32_t channel_of_key(char *out, uint8_t kind, struct rh_span hub, struct rh_span name,
                               uint16_t at[4])
{
    int n = snprintf(out, CHANNEL_MAX, "%s:%s:", config->redis_prefix,
                     kind == RH_GROUP_USER ? "user" : "group");
    uint32_t len = (uint32_t)n;
    at[0] = (uint16_t)len;
    at[1] = (uint16_t)hub.len;
    memcpy(out + len, hub.ptr, hub.len);
    len += hub.len;
    out[len++] = ':';
    at[2] = (uint16_t)len;
    at[3] = (uint16_t)name.len;
    if (name.len) memcpy(out + len, name.ptr, name.len);
    return len + name.len;
}

static uint32_t channel_of_node(char *out, uint32_t node, uint32_t shard)
{
    return (uint32_t)snprintf(out, CHANNEL_MAX, "%s:node:%u:%u", config->redis_prefix, node, shard);
}

static bool channel_eq(const void *item, const void *key)
{
    const struct channel *ch = item;
    const struct rh_span *name = key;
    return ch->len == name->len && memcmp(ch->name, name->ptr, name->len) == 0;
}

static struct channel *channel_find(struct bp_shard *bs, struct rh_span name)
{
    return rh_table_find(&bs->channels, rh_hash(name.ptr, name.len), channel_eq, &name);
}

static struct channel *channel_add(struct bp_shard *bs, struct rh_span name, bool is_group)
{
    struct channel *ch = rh_calloc(1, sizeof(*ch) + name.len);
    ch->hash = rh_hash(name.ptr, name.len);
    ch->is_group = is_group;
    ch->len = name.len;
    memcpy(ch->name, name.ptr, name.len);
    rh_table_insert(&bs->channels, ch->hash, ch);
    bs->counts.subscriptions++;
    return ch;
}

static void channel_drop(struct bp_shard *bs, struct channel *ch)
{
    rh_table_remove(&bs->channels, ch->hash, ch);
    bs->counts.subscriptions--;
    rh_free(ch->remote);
    rh_free(ch);
}

static void subscribe(struct bp_shard *bs, struct channel *ch, bool on)
{
    struct link *l = &bs->links[ROLE_SUBSCRIBER];
    if (l->state != LINK_UP) return; /* done when it comes up */
    struct rh_span argv[2] = {on ? rh_span_make("SUBSCRIBE", 9) : rh_span_make("UNSUBSCRIBE", 11),
                              rh_span_make(ch->name, ch->len)};
    link_command(l, 2, argv, PENDING_IGNORE, 0);
}

/* ---- the node directory (shard 0) ------------------------------------------------------- */

/* P:nodes, a hash: node id -> "started_ms seen_ms address". Every node writes its own entry
 * every HEARTBEAT_MS and reads the whole, dropping entries not written for NODE_TTL_MS. */
static void heartbeat_fired(struct rh_timer *t)
{
    (void)t;
    struct bp_shard *bs = self;
    struct rh_runtime *rt = rh_shard_runtime(bs->shard);
    int64_t now = wall_ms();
    rh_timer_schedule(rh_shard_wheel(bs->shard), &bs->heartbeat, rh_clock_now_ms() + HEARTBEAT_MS);
    char key[96], id[16], value[160];
    int key_len = snprintf(key, sizeof(key), "%s:nodes", config->redis_prefix);
    int id_len = snprintf(id, sizeof(id), "%u", rh_runtime_node_id(rt));
    const char *host = config->listen_addr;
    bool is_v6 = strchr(host, ':') != NULL;
    int value_len =
        snprintf(value, sizeof(value), "%lld %lld %s%s%s:%u", (long long)rh_runtime_started_ms(rt),
                 (long long)now, is_v6 ? "[" : "", host, is_v6 ? "]" : "", rh_runtime_port(rt));
    struct link *l = &bs->links[ROLE_COMMAND];
    struct rh_span set[4] = {rh_span_make("HSET", 4), rh_span_make(key, (uint32_t)key_len),
                             rh_span_make(id, (uint32_t)id_len),
                             rh_span_make(value, (uint32_t)value_len)};
    link_command(l, 4, set, PENDING_IGNORE, 0);
    struct rh_span get[2] = {rh_span_make("HGETALL", 7), rh_span_make(key, (uint32_t)key_len)};
    link_command(l, 2, get, PENDING_NODES, 0);
}

static void nodes_read(struct bp_shard *bs, redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY) return;
    int64_t now = wall_ms();
    uint32_t me = rh_runtime_node_id(rh_shard_runtime(bs->shard));
    int64_t my_start = rh_runtime_started_ms(rh_shard_runtime(bs->shard));
    bs->node_count = 0;
    char key[96];
    int key_len = snprintf(key, sizeof(key), "%s:nodes", config->redis_prefix);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || v->len > 150 ||
            f->len > 10)
            continue;
        char text[160], field[16];
        memcpy(text, v->str, v->len);
        text[v->len] = '\0';
        memcpy(field, f->str, f->len);
        field[f->len] = '\0';
        struct rh_backplane_node n = {0};
        long long started, seen;
        char address[64];
        if (sscanf(text, "%lld %lld %63s", &started, &seen, address) != 3) continue;
        n.id = (uint32_t)strtoul(field, NULL, 10);
        n.started_ms = started;
        n.seen_ms = seen;
        snprintf(n.address, sizeof(n.address), "%s", address);
        if (now - seen > NODE_TTL_MS) {
            struct rh_span del[3] = {rh_span_make("HDEL", 4), rh_span_make(key, (uint32_t)key_len),
                                     rh_span_make(f->str, (uint32_t)f->len)};
            link_command(&bs->links[ROLE_COMMAND], 3, del, PENDING_IGNORE, 0);
            continue;
        }
        if (n.id == me && started != my_start)
            rh_log_limited(RH_LOG_ERROR, "backplane",
                           "another node (%s, started at %lld) uses node id %u too: give every "
                           "node its own --node-id",
                           n.address, started, me);
        if (bs->node_count < NODES_MAX) bs->nodes[bs->node_count++] = n;
    }
}

void rh_backplane_nodes(struct rh_shard *s,
                        void (*fn)(void *ctx, const struct rh_backplane_node *node), void *ctx)
{
    (void)s;
    struct bp_shard *bs = self;
    if (!bs) return;
    for (uint32_t i = 0; i < bs->node_count; i++)
        fn(ctx, &bs->nodes[i]);
}

void rh_backplane_report(struct rh_shard *s, struct rh_backplane_report *out)
{
    (void)s;
    struct bp_shard *bs = self;
    memset(out, 0, sizeof(*out));
    if (!bs) return;
    *out = bs->counts;
    out->command_up = bs->links[ROLE_COMMAND].state == LINK_UP;
    out->subscriber_up = bs->links[ROLE_SUBSCRIBER].state == LINK_UP;
    out->pending = bs->links[ROLE_COMMAND].pending_count;
    out->buffered_bytes = bs->outage_bytes;
    int64_t a = bs->links[0].down_since_ms, b = bs->links[1].down_since_ms;
    out->down_since_ms = a && b ? (a < b ? a : b) : (a ? a : b);
    snprintf(out->endpoint, sizeof(out->endpoint), "%s",
             endpoints[bs->links[ROLE_COMMAND].endpoint].text);
}

bool rh_backplane_blob(struct rh_shard *s, struct rh_blob *b)
{
    (void)s;
    (void)b;
    return false;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t jitter(uint32_t ms)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r)) r = (uint32_t)rh_clock_now_ns();
    return ms - ms / 4 + r % (ms / 2 + 1);
}
