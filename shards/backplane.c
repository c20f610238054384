/*
 * shards/backplane.c - nodes as one cluster through Redis pub/sub (shards/backplane.h).
 *
 * A shard talks to each Redis server it needs through a pair of links, command and
 * subscriber, each holding one TCP connection of the shard's ring at a time. A link that
 * breaks is connected again after a backoff (100 ms doubling to 5 s, +-25% jitter). A reply on
 * a command link belongs to the oldest command without one (Redis answers in order), which
 * the link's pending ring remembers.
 *
 * Pair 0 goes to the --redis endpoints (the next one after each failure) and first asks
 * CLUSTER SLOTS: an error means a standalone server, which pair 0 then serves with PUBLISH and
 * SUBSCRIBE. A slot map means a Redis Cluster: the shard opens a pair to every master and
 * routes each channel by its hash slot with SPUBLISH and SSUBSCRIBE (sharded pub/sub; a
 * classic PUBLISH would go to every node of the cluster); pair 0 is retired. The map is asked
 * again when a master redirects a command (MOVED: the publish is sent again where it
 * belongs), unsubscribes a channel whose slot moved, or goes away (failover): channels are
 * then subscribed where their slots are now.
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
#include "transports/redis_slots.h"
#include "transports/redis_wire.h"

#define ENDPOINTS_MAX    16
#define PAIRS_MAX        (RH_REDIS_ENDPOINTS_MAX + 1) /* pair 0: the --redis endpoints */
#define NO_PAIR          0xff
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

enum mode {
    MODE_PROBING, /* pair 0 is finding out what the --redis endpoint is */
    MODE_STANDALONE,
    MODE_CLUSTER,
};

/* What a reply on a command link is for. */
enum pending_what {
    PENDING_PUBLISH,
    PENDING_IGNORE,   /* the directory's writes, subscriptions */
    PENDING_NODES,    /* HGETALL of the directory */
    PENDING_MEMBERS,  /* PUBSUB (SHARD)NUMSUB for an existence check: arg is the HTTP connection */
    PENDING_ANNOUNCE, /* a JOINED announcement: arg is its channel's hash */
    PENDING_SLOTS,    /* CLUSTER SLOTS */
};

struct pending {
    uint8_t what;
    uint64_t arg;
    struct rh_buf *publication; /* a publish: sent again elsewhere after a MOVED */
};

/* Where a pair connects. */
struct target {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host[RH_REDIS_HOST_MAX + 1];
    uint16_t port;
    char text[300];
};

struct link {
    struct bp_shard *bs;
    struct rh_conn *conn; /* while CONNECTING or UP */
    uint8_t role;
    uint8_t state;
    uint8_t pair;
    bool is_retired; /* pair 0 once a cluster's own pairs serve */
    redisReader *reader;
    struct pending *pending; /* a ring: head, count, cap */
    uint32_t pending_head, pending_count, pending_cap;
    uint32_t seed; /* pair 0: which --redis endpoint */
    uint32_t backoff_ms;
    struct rh_timer retry;
    bool was_up; /* it has been up once: a new connection is a reconnect */
    int64_t down_since_ms;
    struct rh_table seen; /* subscriber: struct seen by origin */
    uint32_t seen_count;
};

/* A channel this shard subscribes to, and for a group's or user's channel, the other nodes that
 * said they have members. */
struct channel {
    uint64_t hash;
    bool is_group;
    bool is_announcing;       /* joins wait until the announcement is published */
    uint8_t group_kind;       /* enum rh_group_kind, for a group's or user's channel */
    uint8_t sub_pair;         /* the pair whose subscriber link has it, or NO_PAIR */
    uint16_t hub_at, hub_len; /* where the hub's name is in name[] */
    uint16_t key_at, key_len; /* where the group's or user's name is */
    uint16_t remote_count, remote_cap;
    uint16_t *remote;
    /* Nodes that heard our announcement (its publish counted them) and have not answered yet:
     * until they have, their members are assumed. */
    uint32_t answers_due;
    uint32_t len;
    char name[];
};

/* The last sequence seen from one origin (node, shard) on one subscriber link. */
struct seen {
    uint64_t origin;
    uint64_t seq;
};

struct pending_answer {
    struct rh_list link;
    uint64_t reply_to;
    int64_t deadline_ms;
};

/* A publication kept while its link is down: u32 channel length, channel, payload. */
struct kept {
    struct rh_buf *publication;
};

struct bp_shard {
    struct rh_shard *shard;
    uint8_t mode;
    struct link *links[2 * PAIRS_MAX]; /* [2 * pair + role] */
    struct target targets[PAIRS_MAX];  /* of pairs 1..: the cluster's masters */
    uint32_t pair_count;
    uint8_t owner[RH_REDIS_SLOTS]; /* a cluster: the pair serving each slot, or NO_PAIR */
    bool is_refreshing;            /* a CLUSTER SLOTS is on its way */
    struct rh_table channels;
    uint64_t seq;
    struct kept *outage; /* publications kept while their link is down, oldest first */
    uint32_t outage_count, outage_cap;
    uint64_t outage_bytes;
    struct rh_backplane_report counts;
    struct rh_timer heartbeat; /* shard 0: the node directory */
    uint32_t heartbeats;
    struct rh_backplane_node nodes[NODES_MAX];
    uint32_t node_count;
    struct rh_list answers; /* struct pending_answer, oldest first */
    struct rh_timer answer_timer;
    bool is_stopping;
};

static struct target seeds[ENDPOINTS_MAX];
static uint32_t seed_count;
static const struct rh_cfg *config;
static _Thread_local struct bp_shard *self;

static struct link *link_new(struct bp_shard *bs, uint8_t pair, uint8_t role);
static void link_free(struct link *l);
static void link_connect(struct link *l);
static void link_retry_fired(struct rh_timer *t);
static void link_down(struct link *l);
static void link_retire(struct link *l);
static bool link_usable(const struct link *l);
static const struct target *link_target(const struct link *l);
static void link_send(struct link *l, uint32_t argc, const struct rh_span *argv,
                      enum pending_what what, uint64_t arg, struct rh_buf *publication);
static void link_reply(struct link *l, redisReply *r);
static void link_ready(struct link *l);
static void subscriber_reply(struct link *l, redisReply *r);
static void command_reply(struct link *l, const struct pending *p, redisReply *r);
static void pending_drop(struct bp_shard *bs, const struct pending *p, bool is_lost);
static void mode_found(struct bp_shard *bs, struct link *l, redisReply *r);
static void map_apply(struct bp_shard *bs, const struct rh_redis_slot_map *map);
static void map_refresh(struct bp_shard *bs);
static uint8_t pair_for(struct bp_shard *bs, struct rh_span channel);
static int pair_find(struct bp_shard *bs, const char *host, uint16_t port);
static void resubscribe_all(struct bp_shard *bs);
static void flush_kept(struct bp_shard *bs);
static void message_received(struct link *l, struct rh_span channel, struct rh_span data);
static void interest_received(struct bp_shard *bs, struct rh_span channel,
                              const struct rh_bp_env *e);
static void publish_on(struct bp_shard *bs, struct rh_span channel, struct rh_bp_env *e);
static void publish_as(struct bp_shard *bs, struct rh_span channel, struct rh_bp_env *e,
                       enum pending_what what, uint64_t arg);
static void publication_send(struct bp_shard *bs, struct rh_buf *publication,
                             enum pending_what what, uint64_t arg);
static void publication_split(const struct rh_buf *publication, struct rh_span *channel,
                              struct rh_span *payload);
static void command_to(struct bp_shard *bs, struct rh_span key, uint32_t argc,
                       const struct rh_span *argv, enum pending_what what, uint64_t arg);
static void announced(struct bp_shard *bs, uint64_t hash);
static void announced_all(struct bp_shard *bs);
static uint32_t channel_of_key(char *out, uint8_t kind, struct rh_span hub, struct rh_span name,
                               uint16_t at[4]);
static uint32_t channel_of_node(char *out, uint32_t node, uint32_t shard);
static struct channel *channel_find(struct bp_shard *bs, struct rh_span name);
static struct channel *channel_add(struct bp_shard *bs, struct rh_span name, bool is_group);
static void channel_drop(struct bp_shard *bs, struct channel *ch);
static void subscribe(struct bp_shard *bs, struct channel *ch, bool on);
static bool seen_before(struct link *l, const struct rh_bp_env *e);
static void heartbeat_fired(struct rh_timer *t);
static void nodes_read(struct bp_shard *bs, redisReply *r);
static void answer_timer_fired(struct rh_timer *t);
static bool target_set(struct target *t, const char *host, uint16_t port);
static uint32_t jitter(uint32_t ms);
static int64_t wall_ms(void);

static inline struct rh_span span_of(const char *text)
{
    return rh_span_make(text, (uint32_t)strlen(text));
}

/* ---- set-up ---------------------------------------------------------------------------- */

int rh_backplane_prepare(const struct rh_cfg *cfg)
{
    config = cfg;
    seed_count = 0;
    for (const char *p = cfg->redis; *p;) {
        size_t len = strcspn(p, ",");
        char text[300];
        if (len >= sizeof(text) || seed_count == ENDPOINTS_MAX) {
            rh_log_error("backplane", "--redis: at most %d endpoints of %zu bytes", ENDPOINTS_MAX,
                         sizeof(text) - 1);
            return -1;
        }
        memcpy(text, p, len);
        text[len] = '\0';
        struct target *t = &seeds[seed_count];
        memcpy(t->text, text, len + 1); /* as given, for the logs */
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
        memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
        t->addr_len = res->ai_addrlen;
        /* The address, not the name: CLUSTER SLOTS may say "" for "the address you reached". */
        getnameinfo(res->ai_addr, res->ai_addrlen, t->host, sizeof(t->host), NULL, 0,
                    NI_NUMERICHOST);
        t->port = (uint16_t)atoi(colon + 1);
        seed_count++;
        freeaddrinfo(res);
    }
    if (seed_count)
        rh_log_info("backplane", "node %u scales out through Redis at %s (prefix \"%s\")",
                    cfg->node_id, cfg->redis, cfg->redis_prefix);
    return 0;
}

void rh_backplane_finish(void)
{
    seed_count = 0;
    config = NULL;
}

bool rh_backplane_enabled(void)
{
    return seed_count != 0;
}

void rh_backplane_shard_start(struct rh_shard *s)
{
    if (!seed_count) return;
    struct bp_shard *bs = rh_calloc(1, sizeof(*bs));
    bs->shard = s;
    self = bs;
    /* A sequence that a restarted node (later clock) never repeats: start time, then a count. */
    bs->seq = (uint64_t)wall_ms() << 20;
    bs->counts.enabled = true;
    memset(bs->owner, NO_PAIR, sizeof(bs->owner));
    rh_list_init(&bs->answers);
    rh_timer_init(&bs->answer_timer, answer_timer_fired);
    rh_timer_init(&bs->heartbeat, heartbeat_fired);
    uint32_t idx = rh_shard_idx(s);
    bs->pair_count = 1;
    for (uint8_t r = 0; r < 2; r++)
        link_new(bs, 0, r)->seed = idx % seed_count;
    char name[CHANNEL_MAX];
    channel_add(
        bs, rh_span_make(name, channel_of_node(name, rh_runtime_node_id(rh_shard_runtime(s)), idx)),
        false);
    if (idx == 0) {
        int n = snprintf(name, sizeof(name), "%s:all", config->redis_prefix);
        channel_add(bs, rh_span_make(name, (uint32_t)n), false);
        rh_timer_schedule(rh_shard_wheel(s), &bs->heartbeat, rh_clock_now_ms() + HEARTBEAT_MS);
    }
    link_connect(bs->links[ROLE_COMMAND]);
    link_connect(bs->links[ROLE_SUBSCRIBER]);
}

void rh_backplane_shard_draining(struct rh_shard *s)
{
    (void)s;
    struct bp_shard *bs = self;
    if (!bs) return;
    bs->is_stopping = true;
    rh_timer_cancel(&bs->heartbeat);
    for (uint32_t i = 0; i < 2 * bs->pair_count; i++)
        if (bs->links[i]) rh_timer_cancel(&bs->links[i]->retry);
}

void rh_backplane_shard_stop(struct rh_shard *s)
{
    (void)s;
    struct bp_shard *bs = self;
    if (!bs) return;
    for (uint32_t i = 0; i < 2 * bs->pair_count; i++)
        if (bs->links[i]) link_free(bs->links[i]);
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
    for (uint32_t i = 0; i < bs->outage_count; i++)
        rh_buf_unref(bs->outage[i].publication);
    rh_free(bs->outage);
    rh_free(bs);
    self = NULL;
}

/* ---- links ----------------------------------------------------------------------------- */

static struct link *link_new(struct bp_shard *bs, uint8_t pair, uint8_t role)
{
    struct link *l = rh_calloc(1, sizeof(*l));
    l->bs = bs;
    l->pair = pair;
    l->role = role;
    rh_timer_init(&l->retry, link_retry_fired);
    bs->links[2 * pair + role] = l;
    return l;
}

/* At shard stop: every connection is closed by now. */
static void link_free(struct link *l)
{
    rh_timer_cancel(&l->retry);
    if (l->reader) rh_redis_reader_free(l->reader);
    for (uint32_t i = 0; i < l->pending_count; i++) {
        struct pending *p = &l->pending[(l->pending_head + i) % l->pending_cap];
        if (p->publication) rh_buf_unref(p->publication);
    }
    rh_free(l->pending);
    uint32_t cursor = 0;
    struct seen *sn;
    while ((sn = rh_table_next(&l->seen, &cursor)))
        rh_free(sn);
    rh_table_free(&l->seen);
    rh_free(l);
}

static const struct target *link_target(const struct link *l)
{
    return l->pair == 0 ? &seeds[l->seed] : &l->bs->targets[l->pair];
}

/* Up, and serving: pair 0 while the mode is unknown serves only its CLUSTER SLOTS. */
static bool link_usable(const struct link *l)
{
    return l && l->state == LINK_UP && !l->is_retired && l->bs->mode != MODE_PROBING;
}

static void link_connect(struct link *l)
{
    struct bp_shard *bs = l->bs;
    if (bs->is_stopping || l->is_retired || l->state != LINK_DOWN) return;
    const struct target *t = link_target(l);
    l->conn = rh_conn_connect(bs->shard, (const struct sockaddr *)&t->addr, t->addr_len, l);
    if (!l->conn) {
        rh_log_limited(RH_LOG_WARN, "backplane", "cannot open a connection to Redis at %s: %s",
                       t->text, strerror(errno));
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

/* Pair 0 once the cluster's own pairs serve: closed, and not connected again. */
static void link_retire(struct link *l)
{
    l->is_retired = true;
    rh_timer_cancel(&l->retry);
    if (l->conn) rh_conn_close(l->conn, RH_CLOSE_NOW); /* conn_close: link_down */
}

/* What a pending command becomes when its reply will never come (@is_lost) or when it is
 * given up. */
static void pending_drop(struct bp_shard *bs, const struct pending *p, bool is_lost)
{
    if (p->what == PENDING_PUBLISH && is_lost) bs->counts.lost++;
    if (p->what == PENDING_MEMBERS) rh_hub_remote_answer(bs->shard, p->arg, 503);
    if (p->what == PENDING_SLOTS) bs->is_refreshing = false;
    if (p->publication) rh_buf_unref(p->publication);
}

/* The link has no connection (it broke, or never came up): count what it loses and try again
 * after the backoff (pair 0: on the next --redis endpoint). */
static void link_down(struct link *l)
{
    struct bp_shard *bs = l->bs;
    bool was_up = l->state == LINK_UP;
    l->state = LINK_DOWN;
    l->conn = NULL;
    for (uint32_t i = 0; i < l->pending_count; i++)
        pending_drop(bs, &l->pending[(l->pending_head + i) % l->pending_cap], true);
    l->pending_count = 0;
    l->pending_head = 0;
    if (l->reader) {
        rh_redis_reader_free(l->reader);
        l->reader = NULL;
    }
    if (l->role == ROLE_SUBSCRIBER) { /* its channels are subscribed again where they belong */
        uint32_t cursor = 0;
        struct channel *ch;
        while ((ch = rh_table_next(&bs->channels, &cursor)))
            if (ch->sub_pair == l->pair) ch->sub_pair = NO_PAIR;
    }
    announced_all(bs); /* joins never wait for a Redis that is away */
    if (l->is_retired || bs->is_stopping) return;
    int64_t now = rh_clock_now_ms();
    if (was_up) {
        l->down_since_ms = wall_ms();
        rh_log_warn("backplane",
                    "lost the %s connection to Redis at %s; local delivery goes on, cross-node "
                    "messages are kept (up to %u bytes) until it is back",
                    l->role == ROLE_COMMAND ? "command" : "subscriber", link_target(l)->text,
                    config->redis_buffer);
    } else if (!l->down_since_ms) {
        l->down_since_ms = wall_ms();
    }
    if (bs->mode == MODE_CLUSTER && l->pair != 0) map_refresh(bs); /* a failover? */
    if (l->pair == 0 && !was_up) l->seed = (l->seed + 1) % seed_count;
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
                    l->role == ROLE_COMMAND ? "command" : "subscriber", link_target(l)->text,
                    (long long)(wall_ms() - l->down_since_ms));
    l->was_up = true;
    l->down_since_ms = 0;
    if (l->pair == 0 && l->role == ROLE_COMMAND && bs->mode != MODE_STANDALONE) {
        /* What is there: a server or a cluster (whose map, in a cluster, is asked anew). */
        struct rh_span argv[2] = {span_of("CLUSTER"), span_of("SLOTS")};
        bs->is_refreshing = true;
        link_send(l, 2, argv, PENDING_SLOTS, 0, NULL);
        return;
    }
    link_ready(l);
}

/* @l can serve: a subscriber subscribes its channels, a command link sends what was kept. */
static void link_ready(struct link *l)
{
    struct bp_shard *bs = l->bs;
    if (!link_usable(l)) return;
    if (l->role == ROLE_SUBSCRIBER) {
        uint32_t cursor = 0;
        struct channel *ch;
        while ((ch = rh_table_next(&bs->channels, &cursor)))
            if (ch->sub_pair == NO_PAIR && pair_for(bs, rh_span_make(ch->name, ch->len)) == l->pair)
                subscribe(bs, ch, true);
        return;
    }
    flush_kept(bs);
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
            rh_log_warn("backplane", "Redis at %s: %s; reconnecting", link_target(l)->text,
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
    if (l->state == LINK_CONNECTING && !l->bs->is_stopping && !l->is_retired) {
        int err = -rh_conn_connect_error(c);
        rh_log_limited(RH_LOG_WARN, "backplane", "cannot connect to Redis at %s: %s",
                       link_target(l)->text, strerror(err ? err : ECONNABORTED));
    }
    link_down(l);
}

static void pending_push(struct link *l, struct pending p)
{
    if (l->pending_count == l->pending_cap) {
        uint32_t cap = l->pending_cap ? l->pending_cap * 2 : 64;
        struct pending *ring = rh_alloc(cap * sizeof(*ring));
        for (uint32_t k = 0; k < l->pending_count; k++)
            ring[k] = l->pending[(l->pending_head + k) % l->pending_cap];
        rh_free(l->pending);
        l->pending = ring;
        l->pending_cap = cap;
        l->pending_head = 0;
    }
    l->pending[(l->pending_head + l->pending_count++) % l->pending_cap] = p;
}

/* Writes a command on @l (up). A command link expects its reply; @publication (a reference
 * taken here) is what a MOVED would send again. */
static void link_send(struct link *l, uint32_t argc, const struct rh_span *argv,
                      enum pending_what what, uint64_t arg, struct rh_buf *publication)
{
    struct rh_buf *out = rh_buf_new(64);
    rh_redis_command(&out, argc, argv);
    rh_conn_send(l->conn, out);
    rh_buf_unref(out);
    if (l->role == ROLE_COMMAND)
        pending_push(l, (struct pending){what, arg, publication ? rh_buf_ref(publication) : NULL});
}

static void link_reply(struct link *l, redisReply *r)
{
    l->backoff_ms = 0; /* a Redis that answers: the next loss starts the backoff anew */
    if (l->role == ROLE_SUBSCRIBER) {
        subscriber_reply(l, r);
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
    command_reply(l, &p, r);
    if (p.publication) rh_buf_unref(p.publication);
}

static void command_reply(struct link *l, const struct pending *p, redisReply *r)
{
    struct bp_shard *bs = l->bs;
    if (p->what == PENDING_SLOTS) {
        bs->is_refreshing = false;
        mode_found(bs, l, r);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        bool is_ask;
        uint16_t slot;
        struct rh_redis_endpoint to;
        if (bs->mode == MODE_CLUSTER &&
            rh_redis_redirect_parse(r->str, r->len, &is_ask, &slot, &to)) {
            /* The slot is served elsewhere now: there at once, and the whole map anew. */
            const char *host = to.host[0] ? to.host : link_target(l)->host;
            int pair = pair_find(bs, host, to.port);
            struct link *there = pair > 0 ? bs->links[2 * pair + ROLE_COMMAND] : NULL;
            if (pair > 0 && !is_ask) bs->owner[slot] = (uint8_t)pair;
            if (!is_ask) map_refresh(bs);
            if (p->what == PENDING_PUBLISH && p->publication && is_ask && link_usable(there)) {
                /* Migrating: this one publish goes to the importing master, announced. */
                struct rh_span channel, payload;
                publication_split(p->publication, &channel, &payload);
                struct rh_span asking = span_of("ASKING");
                struct rh_span argv[3] = {span_of("SPUBLISH"), channel, payload};
                link_send(there, 1, &asking, PENDING_IGNORE, 0, NULL);
                link_send(there, 3, argv, PENDING_IGNORE, 0, NULL);
                return;
            }
            if (p->what == PENDING_PUBLISH && p->publication && !is_ask) {
                publication_send(bs, p->publication, PENDING_PUBLISH, 0);
                return;
            }
            if (p->what == PENDING_PUBLISH) bs->counts.lost++;
        } else {
            rh_log_limited(RH_LOG_WARN, "backplane", "Redis refused a command: %.*s", (int)r->len,
                           r->str);
        }
        if (p->what == PENDING_MEMBERS) rh_hub_remote_answer(bs->shard, p->arg, 503);
        if (p->what == PENDING_ANNOUNCE) announced(bs, p->arg);
        return;
    }
    switch ((enum pending_what)p->what) {
    case PENDING_PUBLISH:
    case PENDING_IGNORE:
    case PENDING_SLOTS:
        return;
    case PENDING_NODES:
        nodes_read(bs, r);
        return;
    case PENDING_ANNOUNCE: {
        /* Redis says how many subscribers heard it: ours, and nodes whose answers are due. */
        uint32_t cursor = 0;
        struct channel *ch;
        while ((ch = rh_table_next(&bs->channels, &cursor)))
            if (ch->hash == p->arg && r->type == REDIS_REPLY_INTEGER && r->integer > 1)
                ch->answers_due = (uint32_t)(r->integer - 1);
        announced(bs, p->arg);
        return;
    }
    case PENDING_MEMBERS: {
        /* [channel, subscribers] */
        bool any = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                   r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer > 0;
        rh_hub_remote_answer(bs->shard, p->arg, any ? 200 : 404);
        return;
    }
    }
}

/* ---- standalone or cluster ------------------------------------------------------------- */

/* The answer to CLUSTER SLOTS: an error from a standalone server, else the cluster's map. */
static void mode_found(struct bp_shard *bs, struct link *l, redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        if (bs->mode == MODE_CLUSTER) {
            rh_log_limited(RH_LOG_WARN, "backplane", "CLUSTER SLOTS refused by %s: %.*s",
                           link_target(l)->text, (int)r->len, r->str);
            return;
        }
        if (bs->mode == MODE_PROBING && rh_shard_idx(bs->shard) == 0)
            rh_log_info("backplane", "Redis at %s is a standalone server: PUBLISH and SUBSCRIBE",
                        link_target(l)->text);
        bs->mode = MODE_STANDALONE;
        link_ready(bs->links[ROLE_COMMAND]);
        if (bs->links[ROLE_SUBSCRIBER]->state == LINK_UP) link_ready(bs->links[ROLE_SUBSCRIBER]);
        return;
    }
    struct rh_redis_slot_map *map = rh_alloc(sizeof(*map));
    const char *why = NULL;
    if (rh_redis_slot_map_parse(r, link_target(l)->host, map, &why) != 0) {
        rh_log_limited(RH_LOG_ERROR, "backplane", "CLUSTER SLOTS from %s: %s", link_target(l)->text,
                       why ? why : "unreadable");
        rh_free(map);
        return;
    }
    if (bs->mode != MODE_CLUSTER && rh_shard_idx(bs->shard) == 0)
        rh_log_info("backplane",
                    "Redis at %s is a cluster of %u masters: sharded pub/sub (SPUBLISH, "
                    "SSUBSCRIBE) routed by hash slot",
                    link_target(l)->text, map->endpoint_count);
    bs->mode = MODE_CLUSTER;
    map_apply(bs, map);
    rh_free(map);
    link_retire(bs->links[ROLE_COMMAND]);
    link_retire(bs->links[ROLE_SUBSCRIBER]);
}

/* A pair for every master of @map, each slot routed to its own. Channels whose slot now has
 * another owner are subscribed there; kept publications go out where they can. */
static void map_apply(struct bp_shard *bs, const struct rh_redis_slot_map *map)
{
    uint8_t pair_of[RH_REDIS_ENDPOINTS_MAX];
    for (uint32_t i = 0; i < map->endpoint_count; i++) {
        int pair = pair_find(bs, map->endpoints[i].host, map->endpoints[i].port);
        pair_of[i] = pair > 0 ? (uint8_t)pair : NO_PAIR;
    }
    for (uint32_t slot = 0; slot < RH_REDIS_SLOTS; slot++)
        bs->owner[slot] =
            map->owner[slot] == RH_REDIS_NO_ENDPOINT ? NO_PAIR : pair_of[map->owner[slot]];
    resubscribe_all(bs);
    flush_kept(bs);
}

/* The pair serving @host:@port, made (and connecting) when there is none yet; -1 when it
 * cannot be: no room, or a host that is not a numeric address (no name is resolved on a
 * shard). */
static int pair_find(struct bp_shard *bs, const char *host, uint16_t port)
{
    for (uint32_t p = 1; p < bs->pair_count; p++)
        if (bs->targets[p].port == port && strcmp(bs->targets[p].host, host) == 0) return (int)p;
    if (bs->pair_count == PAIRS_MAX) return -1;
    struct target *t = &bs->targets[bs->pair_count];
    if (!target_set(t, host, port)) {
        rh_log_limited(RH_LOG_ERROR, "backplane",
                       "the cluster names %s:%u, which is not a numeric address; ringhub does "
                       "not resolve names on its shards (set cluster-announce-ip)",
                       host, port);
        return -1;
    }
    uint8_t pair = (uint8_t)bs->pair_count++;
    link_connect(link_new(bs, pair, ROLE_COMMAND));
    link_connect(link_new(bs, pair, ROLE_SUBSCRIBER));
    return pair;
}

static bool target_set(struct target *t, const char *host, uint16_t port)
{
    memset(t, 0, sizeof(*t));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&t->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&t->addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        t->addr_len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        t->addr_len = sizeof(*v6);
    } else {
        return false;
    }
    snprintf(t->host, sizeof(t->host), "%s", host);
    t->port = port;
    snprintf(t->text, sizeof(t->text), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    return true;
}

/* Asks the cluster's map again, of any master that is up, or else of the --redis endpoints. */
static void map_refresh(struct bp_shard *bs)
{
    if (bs->is_refreshing || bs->is_stopping) return;
    for (uint32_t p = 1; p < bs->pair_count; p++) {
        struct link *l = bs->links[2 * p + ROLE_COMMAND];
        if (!link_usable(l)) continue;
        struct rh_span argv[2] = {span_of("CLUSTER"), span_of("SLOTS")};
        bs->is_refreshing = true;
        link_send(l, 2, argv, PENDING_SLOTS, 0, NULL);
        return;
    }
    struct link *seed = bs->links[ROLE_COMMAND];
    seed->is_retired = false;
    link_connect(seed); /* its CLUSTER SLOTS goes once it is up */
}

static uint8_t pair_for(struct bp_shard *bs, struct rh_span channel)
{
    if (bs->mode != MODE_CLUSTER) return 0;
    return bs->owner[rh_redis_slot(channel.ptr, channel.len)];
}

static void resubscribe_all(struct bp_shard *bs)
{
    uint32_t cursor = 0;
    struct channel *ch;
    while ((ch = rh_table_next(&bs->channels, &cursor))) {
        uint8_t want = pair_for(bs, rh_span_make(ch->name, ch->len));
        if (ch->sub_pair == want && want != NO_PAIR) continue;
        if (ch->sub_pair != NO_PAIR) subscribe(bs, ch, false);
        subscribe(bs, ch, true);
    }
}

/* ---- subscriptions --------------------------------------------------------------------- */

static void subscribe(struct bp_shard *bs, struct channel *ch, bool on)
{
    uint8_t pair = on ? pair_for(bs, rh_span_make(ch->name, ch->len)) : ch->sub_pair;
    if (!on) ch->sub_pair = NO_PAIR;
    if (pair == NO_PAIR) return;
    struct link *l = bs->links[2 * pair + ROLE_SUBSCRIBER];
    if (!link_usable(l)) return; /* done when it is (link_ready) */
    bool is_sharded = bs->mode == MODE_CLUSTER;
    const char *verb = on ? (is_sharded ? "SSUBSCRIBE" : "SUBSCRIBE")
                          : (is_sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE");
    if (on) ch->sub_pair = pair;
    struct rh_span argv[2] = {span_of(verb), rh_span_make(ch->name, ch->len)};
    link_send(l, 2, argv, PENDING_IGNORE, 0, NULL);
}

static bool reply_is(const redisReply *r, const char *word)
{
    size_t n = strlen(word);
    return r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, word, n) == 0;
}

static void subscriber_reply(struct link *l, redisReply *r)
{
    struct bp_shard *bs = l->bs;
    if (r->type == REDIS_REPLY_ERROR) {
        rh_log_limited(RH_LOG_WARN, "backplane", "Redis at %s refused a subscription: %.*s",
                       link_target(l)->text, (int)r->len, r->str);
        if (bs->mode == MODE_CLUSTER) map_refresh(bs); /* MOVED: subscribed where it belongs */
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *kind = r->element[0];
    struct rh_span channel = rh_span_make(r->element[1]->str, (uint32_t)r->element[1]->len);
    if ((reply_is(kind, "message") || reply_is(kind, "smessage")) &&
        r->element[2]->type == REDIS_REPLY_STRING) {
        message_received(l, channel,
                         rh_span_make(r->element[2]->str, (uint32_t)r->element[2]->len));
        return;
    }
    struct channel *ch = channel_find(bs, channel);
    if (!ch) return;
    if (reply_is(kind, "sunsubscribe") && ch->sub_pair == l->pair) {
        /* Not asked for: its slot moved to another master. Subscribed again where it is now. */
        ch->sub_pair = NO_PAIR;
        map_refresh(bs);
        return;
    }
    if ((reply_is(kind, "subscribe") || reply_is(kind, "ssubscribe")) && ch->is_group) {
        /* Subscribed: the channel now hears every answer to our announcement. */
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

static void message_received(struct link *l, struct rh_span channel, struct rh_span data)
{
    struct bp_shard *bs = l->bs;
    struct rh_bp_env e;
    const char *why = NULL;
    if (rh_bp_decode(data.ptr, data.len, &e, &why) != 0) {
        bs->counts.bad++;
        rh_log_limited(RH_LOG_WARN, "backplane", "an envelope on %.*s does not decode: %s",
                       (int)channel.len, (const char *)channel.ptr, why ? why : "?");
        return;
    }
    if (e.origin_node == rh_runtime_node_id(rh_shard_runtime(bs->shard))) return; /* ours */
    if (seen_before(l, &e)) return;
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
static bool seen_before(struct link *l, const struct rh_bp_env *e)
{
    uint64_t origin = (uint64_t)e->origin_node << 8 | e->origin_shard;
    uint64_t hash = rh_hash(&origin, sizeof(origin));
    struct seen *sn = rh_table_find(&l->seen, hash, seen_eq, &origin);
    if (!sn) {
        if (l->seen_count >= SEQ_ORIGINS_MAX) return false;
        sn = rh_alloc(sizeof(*sn));
        *sn = (struct seen){origin, e->seq};
        rh_table_insert(&l->seen, hash, sn);
        l->seen_count++;
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
        if (at < ch->remote_count)
            ch->remote[at] = ch->remote[--ch->remote_count];
        else if (ch->answers_due)
            ch->answers_due--; /* gone before it answered */
        return;
    }
    if (e->interest.state == RH_BP_HERE && at == ch->remote_count && ch->answers_due)
        ch->answers_due--;
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
    struct rh_buf *publication = rh_buf_new(4 + channel.len + size);
    uint8_t *p = rh_buf_extend(&publication, 4 + channel.len + size);
    memcpy(p, &channel.len, 4);
    memcpy(p + 4, channel.ptr, channel.len);
    rh_bp_encode(e, p + 4 + channel.len);
    publication_send(bs, publication, what, arg);
    rh_buf_unref(publication);
    bs->counts.published++;
}

static void publication_split(const struct rh_buf *publication, struct rh_span *channel,
                              struct rh_span *payload)
{
    uint32_t len;
    memcpy(&len, publication->data, 4);
    *channel = rh_span_make(publication->data + 4, len);
    *payload = rh_span_make(publication->data + 4 + len, publication->len - 4 - len);
}

/* Publishes on the link that serves its channel, or keeps it while that link is down (within
 * --redis-buffer: past it, it is dropped and counted). */
static void publication_send(struct bp_shard *bs, struct rh_buf *publication,
                             enum pending_what what, uint64_t arg)
{
    struct rh_span channel, payload;
    publication_split(publication, &channel, &payload);
    uint8_t pair = pair_for(bs, channel);
    struct link *l = pair == NO_PAIR ? NULL : bs->links[2 * pair + ROLE_COMMAND];
    if (link_usable(l)) {
        bool is_sharded = bs->mode == MODE_CLUSTER;
        struct rh_span argv[3] = {span_of(is_sharded ? "SPUBLISH" : "PUBLISH"), channel, payload};
        link_send(l, 3, argv, what, arg, is_sharded ? publication : NULL);
        return;
    }
    if (bs->mode == MODE_CLUSTER && pair == NO_PAIR) map_refresh(bs);
    if (what == PENDING_ANNOUNCE) announced(bs, arg);
    if (bs->outage_bytes + publication->len > config->redis_buffer) {
        bs->counts.dropped++;
        return;
    }
    if (bs->outage_count == bs->outage_cap) {
        bs->outage_cap = bs->outage_cap ? bs->outage_cap * 2 : 64;
        bs->outage = rh_realloc(bs->outage, bs->outage_cap * sizeof(*bs->outage));
    }
    bs->outage[bs->outage_count++] = (struct kept){rh_buf_ref(publication)};
    bs->outage_bytes += publication->len;
}

/* Sends, in order, what was kept for links that can serve now; keeps the rest. */
static void flush_kept(struct bp_shard *bs)
{
    uint32_t left = 0;
    for (uint32_t i = 0; i < bs->outage_count; i++) {
        struct rh_buf *publication = bs->outage[i].publication;
        struct rh_span channel, payload;
        publication_split(publication, &channel, &payload);
        uint8_t pair = pair_for(bs, channel);
        if (pair == NO_PAIR || !link_usable(bs->links[2 * pair + ROLE_COMMAND])) {
            bs->outage[left++] = bs->outage[i];
            continue;
        }
        bs->outage_bytes -= publication->len;
        publication_send(bs, publication, PENDING_PUBLISH, 0);
        rh_buf_unref(publication);
    }
    bs->outage_count = left;
}

/* A command about @key (a hash slot's), on the link that serves it; dropped when that is down
 * (the directory is written again at the next heartbeat). */
static void command_to(struct bp_shard *bs, struct rh_span key, uint32_t argc,
                       const struct rh_span *argv, enum pending_what what, uint64_t arg)
{
    uint8_t pair = pair_for(bs, key);
    struct link *l = pair == NO_PAIR ? NULL : bs->links[2 * pair + ROLE_COMMAND];
    if (link_usable(l)) {
        link_send(l, argc, argv, what, arg, NULL);
        return;
    }
    struct pending p = {what, arg, NULL};
    pending_drop(bs, &p, false);
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
    bool wanted = !ch || ch->remote_count > 0 || ch->answers_due > 0;
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
        uint8_t pair = pair_for(bs, channel);
        if (pair == NO_PAIR || !link_usable(bs->links[2 * pair + ROLE_SUBSCRIBER]) ||
            !link_usable(bs->links[2 * pair + ROLE_COMMAND])) {
            subscribe(bs, ch, true);
            return true;
        }
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
    struct rh_span argv[3] = {span_of("PUBSUB"),
                              span_of(bs->mode == MODE_CLUSTER ? "SHARDNUMSUB" : "NUMSUB"),
                              rh_span_make(name, len)};
    command_to(bs, rh_span_make(name, len), 3, argv, PENDING_MEMBERS, reply_to);
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
    ch->sub_pair = NO_PAIR;
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
    struct rh_bp_node_entry me = {.started_ms = rh_runtime_started_ms(rt), .seen_ms = now};
    snprintf(me.address, sizeof(me.address), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
             rh_runtime_port(rt));
    int value_len = rh_bp_node_format(&me, value, sizeof(value));
    struct rh_span key_span = rh_span_make(key, (uint32_t)key_len);
    /* Read before writing: our entry as found is the last writer's, which shows a twin. */
    struct rh_span get[2] = {span_of("HGETALL"), key_span};
    command_to(bs, key_span, 2, get, PENDING_NODES, 0);
    struct rh_span set[4] = {span_of("HSET"), key_span, rh_span_make(id, (uint32_t)id_len),
                             rh_span_make(value, (uint32_t)value_len)};
    command_to(bs, key_span, 4, set, PENDING_IGNORE, 0);
    bs->heartbeats++;
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
        struct rh_bp_node_entry e;
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            !rh_bp_node_parse(rh_span_make(f->str, (uint32_t)f->len),
                              rh_span_make(v->str, (uint32_t)v->len), &e))
            continue;
        struct rh_backplane_node n = {.id = e.id, .started_ms = e.started_ms, .seen_ms = e.seen_ms};
        memcpy(n.address, e.address, sizeof(n.address));
        long long started = e.started_ms;
        if (now - e.seen_ms > NODE_TTL_MS) {
            struct rh_span key_span = rh_span_make(key, (uint32_t)key_len);
            struct rh_span del[3] = {span_of("HDEL"), key_span,
                                     rh_span_make(f->str, (uint32_t)f->len)};
            command_to(bs, key_span, 3, del, PENDING_IGNORE, 0);
            continue;
        }
        /* Our entry, written since our last heartbeat by another process: unless this is our
         * first (a restart finds its previous life's entry), two nodes share the id. */
        if (n.id == me && started != my_start && bs->heartbeats > 1)
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
    /* Up: every link in use (pair 0 alone, or in a cluster every master's pair). */
    uint32_t first = bs->mode == MODE_CLUSTER ? 1 : 0,
             last = bs->mode == MODE_CLUSTER ? bs->pair_count : 1;
    out->command_up = out->subscriber_up = bs->mode != MODE_PROBING && first < last;
    for (uint32_t p = first; p < last; p++)
        for (int r = 0; r < 2; r++) {
            const struct link *l = bs->links[2 * p + r];
            bool *up = r == ROLE_COMMAND ? &out->command_up : &out->subscriber_up;
            *up = *up && l->state == LINK_UP;
            if (r == ROLE_COMMAND) out->pending += l->pending_count;
            if (l->down_since_ms && (!out->down_since_ms || l->down_since_ms < out->down_since_ms))
                out->down_since_ms = l->down_since_ms;
        }
    out->buffered_bytes = bs->outage_bytes;
    if (bs->mode == MODE_CLUSTER)
        snprintf(out->endpoint, sizeof(out->endpoint), "cluster of %u", bs->pair_count - 1);
    else
        snprintf(out->endpoint, sizeof(out->endpoint), "%s", link_target(bs->links[0])->text);
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
