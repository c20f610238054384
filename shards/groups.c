/*
 * shards/groups.c - see groups.h. One table per shard holds every group the shard knows of,
 * as owner (which shards have members), as a shard with local members, or both; an entry
 * goes when it is neither.
 *
 * Every blob of this module starts with the group's key, encoded the way the table stores
 * and hashes it: u8 kind, u16 hub length, u16 name length, hub, name (host order: blobs never
 * leave the process). What follows is the join's note or the message.
 */
#include "shards/groups.h"

#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/table.h"

#define KEY_HEAD     5
#define KEY_MAX      (KEY_HEAD + 128 + RH_GROUP_NAME_MAX) /* 128: RH_HUB_NAME_MAX */
#define BLOB_JOIN    (RH_GROUPS_BLOB_FIRST + 0)           /* member shard -> owner */
#define BLOB_JOINED  (RH_GROUPS_BLOB_FIRST + 1)           /* owner -> member shard: the answer */
#define BLOB_LEFT    (RH_GROUPS_BLOB_FIRST + 2)           /* member shard -> owner: none left */
#define BLOB_SEND    (RH_GROUPS_BLOB_FIRST + 3)           /* origin -> owner */
#define BLOB_DELIVER (RH_GROUPS_BLOB_FIRST + 4)           /* owner -> member shards */

struct rh_group {
    uint64_t hash;
    uint64_t member_shards; /* as owner: a bit per shard that has members */
    struct rh_list members; /* local members: struct rh_membership, in_group */
    uint32_t member_count;
    /* As owner: messages sent through it, and its rate (DESIGN.md: what picks its path). */
    uint64_t messages;
    int64_t rate_window_ms; /* start of the current one-second window */
    uint32_t rate_count;    /* messages in the current window */
    uint32_t rate_last;     /* messages in the window before */
    struct rh_blob **held;  /* as owner: join answers held until ops->interest is ready */
    uint32_t held_count;
    bool is_holding;
    uint32_t key_len;
    uint8_t key[]; /* as in the blobs */
};

struct rh_groups {
    struct rh_shard *shard;
    const struct rh_groups_ops *ops;
    void *ctx;
    struct rh_table table;
};

/* A group key as the table and the blobs hold it. */
struct key_bytes {
    uint32_t len;
    uint8_t bytes[KEY_MAX];
};

static void key_encode(const struct rh_group_key *key, struct key_bytes *out);
static uint32_t key_len_in(const uint8_t *data, uint32_t len);
static bool key_eq(const void *item, const void *key);
static struct rh_group *group_find(struct rh_groups *g, const uint8_t *key, uint32_t key_len,
                                   uint64_t hash);
static struct rh_group *group_get(struct rh_groups *g, const uint8_t *key, uint32_t key_len,
                                  uint64_t hash);
static void group_release(struct rh_groups *g, struct rh_group *grp);
static uint32_t owner_of(const struct rh_groups *g, uint64_t hash);
static struct rh_blob *blob_new(uint16_t kind, const uint8_t *key, uint32_t key_len,
                                struct rh_span tail);
static void membership_end(struct rh_groups *g, struct rh_membership *m);
static void answer_held(struct rh_groups *g, struct rh_group *grp);
static void owner_send(struct rh_groups *g, struct rh_blob *b, struct rh_group *grp,
                       uint32_t key_len);
static void local_deliver(struct rh_groups *g, const struct rh_blob *b, struct rh_group *grp,
                          uint32_t key_len);
static struct rh_group_key key_decode(const uint8_t *bytes);

struct rh_groups *rh_groups_new(struct rh_shard *s, const struct rh_groups_ops *ops, void *ctx)
{
    struct rh_groups *g = rh_calloc(1, sizeof(*g));
    g->shard = s;
    g->ops = ops;
    g->ctx = ctx;
    rh_table_init(&g->table);
    return g;
}

void rh_groups_free(struct rh_groups *g)
{
    /* What is left is owner state for shards that stopped before saying their members went. */
    uint32_t cursor = 0;
    struct rh_group *grp;
    while ((grp = rh_table_next(&g->table, &cursor))) {
        RH_ASSERT(!grp->member_count);
        for (uint32_t i = 0; i < grp->held_count; i++)
            rh_blob_unref(grp->held[i]);
        rh_free(grp->held);
        rh_free(grp);
    }
    rh_table_free(&g->table);
    rh_free(g);
}

bool rh_groups_join(struct rh_groups *g, const struct rh_group_key *key, void *member,
                    uint64_t route, struct rh_list *memberships, struct rh_span note)
{
    RH_ASSERT(note.len <= 255);
    struct key_bytes k;
    key_encode(key, &k);
    uint64_t hash = rh_hash(k.bytes, k.len);
    struct rh_group *grp = group_get(g, k.bytes, k.len, hash);

    bool is_new = true;
    struct rh_list *node;
    rh_list_for_each(node, memberships) {
        if (rh_list_entry(node, struct rh_membership, in_member)->group == grp) {
            is_new = false;
            break;
        }
    }
    if (is_new) {
        struct rh_membership *m = rh_calloc(1, sizeof(*m));
        m->group = grp;
        m->member = member;
        m->route = route;
        rh_list_push_back(&grp->members, &m->in_group);
        rh_list_push_back(memberships, &m->in_member);
        grp->member_count++;
    }
    /* Always asked, so that the answer also orders this join after the first one. */
    struct rh_blob *b = blob_new(BLOB_JOIN, k.bytes, k.len, note);
    b->arg = route;
    rh_shard_post(g->shard, owner_of(g, hash), b);
    return is_new;
}

uint32_t rh_groups_owner(const struct rh_groups *g, const struct rh_group_key *key)
{
    struct key_bytes k;
    key_encode(key, &k);
    return owner_of(g, rh_hash(k.bytes, k.len));
}

bool rh_groups_leave(struct rh_groups *g, const struct rh_group_key *key,
                     struct rh_list *memberships)
{
    struct key_bytes k;
    key_encode(key, &k);
    struct rh_group *grp = group_find(g, k.bytes, k.len, rh_hash(k.bytes, k.len));
    if (!grp) return false;
    struct rh_list *node;
    rh_list_for_each(node, memberships) {
        struct rh_membership *m = rh_list_entry(node, struct rh_membership, in_member);
        if (m->group == grp) {
            membership_end(g, m);
            return true;
        }
    }
    return false;
}

uint32_t rh_groups_leave_kind(struct rh_groups *g, struct rh_list *memberships,
                              enum rh_group_kind kind)
{
    uint32_t count = 0;
    struct rh_list *node = memberships->next;
    while (node != memberships) {
        struct rh_membership *m = rh_list_entry(node, struct rh_membership, in_member);
        node = node->next; /* ending it unlinks it */
        if (m->group->key[0] != (uint8_t)kind) continue;
        membership_end(g, m);
        count++;
    }
    return count;
}

bool rh_groups_has_members(struct rh_groups *g, const struct rh_group_key *key)
{
    return rh_groups_member_shards(g, key) != 0;
}

uint64_t rh_groups_member_shards(struct rh_groups *g, const struct rh_group_key *key)
{
    struct key_bytes k;
    key_encode(key, &k);
    uint64_t hash = rh_hash(k.bytes, k.len);
    RH_ASSERT(owner_of(g, hash) == rh_shard_idx(g->shard));
    struct rh_group *grp = group_find(g, k.bytes, k.len, hash);
    return grp ? grp->member_shards : 0;
}

const struct rh_list *rh_groups_local_members(struct rh_groups *g, const struct rh_group_key *key)
{
    struct key_bytes k;
    key_encode(key, &k);
    struct rh_group *grp = group_find(g, k.bytes, k.len, rh_hash(k.bytes, k.len));
    return grp && grp->member_count ? &grp->members : NULL;
}

void rh_groups_leave_all(struct rh_groups *g, struct rh_list *memberships)
{
    while (!rh_list_is_empty(memberships))
        membership_end(g, rh_list_entry(memberships->next, struct rh_membership, in_member));
}

struct rh_blob *rh_groups_message_new(const struct rh_group_key *key, uint32_t msg_len,
                                      uint8_t **msg)
{
    struct key_bytes k;
    key_encode(key, &k);
    struct rh_blob *b = rh_blob_new(BLOB_SEND, 1, NULL, k.len + msg_len);
    memcpy(b->data, k.bytes, k.len);
    *msg = b->data + k.len;
    return b;
}

void rh_groups_send(struct rh_groups *g, struct rh_blob *b, uint64_t except)
{
    RH_ASSERT(b->kind == BLOB_SEND);
    uint32_t key_len = key_len_in(b->data, b->len);
    RH_ASSERT(key_len);
    b->arg = except;
    rh_shard_post(g->shard, owner_of(g, rh_hash(b->data, key_len)), b);
}

static void answer_held(struct rh_groups *g, struct rh_group *grp)
{
    for (uint32_t i = 0; i < grp->held_count; i++)
        rh_shard_post(g->shard, grp->held[i]->origin_shard, grp->held[i]);
    rh_free(grp->held);
    grp->held = NULL;
    grp->held_count = 0;
    grp->is_holding = false;
}

void rh_groups_interest_ready(struct rh_groups *g, const struct rh_group_key *key)
{
    struct key_bytes k;
    key_encode(key, &k);
    struct rh_group *grp = group_find(g, k.bytes, k.len, rh_hash(k.bytes, k.len));
    if (grp) answer_held(g, grp);
}

void rh_groups_send_remote(struct rh_groups *g, struct rh_blob *b)
{
    RH_ASSERT(b->kind == BLOB_SEND);
    uint32_t key_len = key_len_in(b->data, b->len);
    RH_ASSERT(key_len);
    b->arg = RH_GROUPS_NO_EXCEPT;
    struct rh_group *grp = group_find(g, b->data, key_len, rh_hash(b->data, key_len));
    if (grp && grp->member_shards) owner_send(g, b, grp, key_len); /* posts take their own */
    rh_blob_unref(b);
}

bool rh_groups_blob(struct rh_groups *g, struct rh_blob *b)
{
    if (b->kind < RH_GROUPS_BLOB_FIRST || b->kind > RH_GROUPS_BLOB_LAST) return false;
    uint32_t key_len = key_len_in(b->data, b->len);
    if (!key_len) {
        rh_log_limited(RH_LOG_ERROR, "groups", "malformed group blob of kind %u", b->kind);
        return true;
    }
    uint64_t hash = rh_hash(b->data, key_len);
    struct rh_span tail = rh_span_make(b->data + key_len, b->len - key_len);
    struct rh_group *grp;
    switch (b->kind) {
    case BLOB_JOIN:
        grp = group_get(g, b->data, key_len, hash);
        if (!grp->member_shards && g->ops->interest) {
            struct rh_group_key key = key_decode(b->data);
            grp->is_holding = !g->ops->interest(g->ctx, &key, true);
        }
        grp->member_shards |= 1ull << b->origin_shard;
        if (g->ops->owner_joining) {
            struct rh_group_key key = key_decode(b->data);
            g->ops->owner_joining(g->ctx, &key, b->arg, b->origin_shard);
        }
        /* The answer is the same blob, sent back: only this shard holds it now. */
        b->kind = BLOB_JOINED;
        rh_blob_ref_n(b, 1);
        if (grp->is_holding) {
            grp->held = rh_realloc(grp->held, (grp->held_count + 1) * sizeof(*grp->held));
            grp->held[grp->held_count++] = b;
        } else {
            rh_shard_post(g->shard, b->origin_shard, b);
        }
        break;
    case BLOB_JOINED:
        g->ops->joined(g->ctx, b->arg, tail);
        break;
    case BLOB_LEFT:
        grp = group_find(g, b->data, key_len, hash);
        if (!grp) break;
        grp->member_shards &= ~(1ull << b->origin_shard);
        if (!grp->member_shards) answer_held(g, grp);
        if (!grp->member_shards && g->ops->interest) {
            struct rh_group_key key = key_decode(b->data);
            g->ops->interest(g->ctx, &key, false);
        }
        group_release(g, grp);
        break;
    case BLOB_SEND:
        grp = group_find(g, b->data, key_len, hash);
        if (g->ops->owner_sending) {
            struct rh_group_key key = key_decode(b->data);
            g->ops->owner_sending(g->ctx, &key, tail, b->arg);
        }
        if (grp && grp->member_shards) owner_send(g, b, grp, key_len); /* else none here */
        break;
    case BLOB_DELIVER:
        grp = group_find(g, b->data, key_len, hash);
        if (grp) local_deliver(g, b, grp, key_len);
        break;
    default:
        rh_log_limited(RH_LOG_ERROR, "groups", "unknown group blob kind %u", b->kind);
    }
    return true;
}

/* At the owner: on to every shard with members, this one included (delivered at once). The
 * same blob goes on: only this shard holds it now. */
static void owner_send(struct rh_groups *g, struct rh_blob *b, struct rh_group *grp,
                       uint32_t key_len)
{
    uint32_t self = rh_shard_idx(g->shard);
    uint64_t others = grp->member_shards & ~(1ull << self);
    int64_t now_ms = rh_clock_now_ms();
    if (now_ms - grp->rate_window_ms >= 1000) {
        grp->rate_last = now_ms - grp->rate_window_ms < 2000 ? grp->rate_count : 0;
        grp->rate_window_ms = now_ms;
        grp->rate_count = 0;
    }
    grp->rate_count++;
    grp->messages++;
    b->kind = BLOB_DELIVER;
    if (others) rh_blob_ref_n(b, (uint32_t)__builtin_popcountll(others));
    while (others) {
        uint32_t dst = (uint32_t)__builtin_ctzll(others);
        others &= others - 1;
        rh_shard_post(g->shard, dst, b);
    }
    if (grp->member_shards & (1ull << self)) local_deliver(g, b, grp, key_len);
}

static void local_deliver(struct rh_groups *g, const struct rh_blob *b, struct rh_group *grp,
                          uint32_t key_len)
{
    if (!grp->member_count) return; /* the last one left while the message travelled */
    struct rh_group_key key = key_decode(grp->key);
    g->ops->deliver(g->ctx, &key, &grp->members, rh_span_make(b->data + key_len, b->len - key_len),
                    b->arg);
}

static struct rh_group_info group_info(const struct rh_group *grp)
{
    struct rh_group_info info = {.key = key_decode(grp->key),
                                 .local_members = grp->member_count,
                                 .member_shards = grp->member_shards};
    info.is_owned = grp->member_shards != 0;
    info.messages = grp->messages;
    int64_t age = rh_clock_now_ms() - grp->rate_window_ms;
    info.rate_per_s = age < 1000 ? grp->rate_last : age < 2000 ? grp->rate_count : 0;
    return info;
}

struct rh_group_key rh_membership_key(const struct rh_membership *m)
{
    return key_decode(m->group->key);
}

void rh_groups_each(struct rh_groups *g, void (*fn)(void *ctx, const struct rh_group_info *info),
                    void *ctx)
{
    uint32_t cursor = 0;
    struct rh_group *grp;
    while ((grp = rh_table_next(&g->table, &cursor))) {
        struct rh_group_info info = group_info(grp);
        fn(ctx, &info);
    }
}

bool rh_groups_info(struct rh_groups *g, const struct rh_group_key *key, struct rh_group_info *out)
{
    struct key_bytes k;
    key_encode(key, &k);
    struct rh_group *grp = group_find(g, k.bytes, k.len, rh_hash(k.bytes, k.len));
    if (!grp) return false;
    *out = group_info(grp);
    return true;
}

/* The key in encoded @bytes (from key_encode, checked by key_len_in). */
static struct rh_group_key key_decode(const uint8_t *bytes)
{
    uint16_t hub_len, name_len;
    memcpy(&hub_len, bytes + 1, 2);
    memcpy(&name_len, bytes + 3, 2);
    return (struct rh_group_key){(enum rh_group_kind)bytes[0],
                                 rh_span_make(bytes + KEY_HEAD, hub_len),
                                 rh_span_make(bytes + KEY_HEAD + hub_len, name_len)};
}

static void membership_end(struct rh_groups *g, struct rh_membership *m)
{
    struct rh_group *grp = m->group;
    rh_list_unlink(&m->in_group);
    rh_list_unlink(&m->in_member);
    rh_free(m);
    if (--grp->member_count) return;
    rh_shard_post(g->shard, owner_of(g, grp->hash),
                  blob_new(BLOB_LEFT, grp->key, grp->key_len, rh_span_make(NULL, 0)));
    group_release(g, grp);
}

static void key_encode(const struct rh_group_key *key, struct key_bytes *out)
{
    RH_ASSERT(key->hub.len <= 128 && key->name.len <= RH_GROUP_NAME_MAX);
    uint16_t hub_len = (uint16_t)key->hub.len, name_len = (uint16_t)key->name.len;
    out->bytes[0] = (uint8_t)key->kind;
    memcpy(out->bytes + 1, &hub_len, 2);
    memcpy(out->bytes + 3, &name_len, 2);
    memcpy(out->bytes + KEY_HEAD, key->hub.ptr, hub_len);
    memcpy(out->bytes + KEY_HEAD + hub_len, key->name.ptr, name_len);
    out->len = KEY_HEAD + hub_len + name_len;
}

/* The length of the key at the start of a blob's @data, or 0 when it does not fit. */
static uint32_t key_len_in(const uint8_t *data, uint32_t len)
{
    uint16_t hub_len, name_len;
    if (len < KEY_HEAD) return 0;
    memcpy(&hub_len, data + 1, 2);
    memcpy(&name_len, data + 3, 2);
    uint32_t key_len = KEY_HEAD + (uint32_t)hub_len + name_len;
    return key_len <= len && key_len <= KEY_MAX ? key_len : 0;
}

struct key_ref {
    const uint8_t *bytes;
    uint32_t len;
};

static bool key_eq(const void *item, const void *key)
{
    const struct rh_group *grp = item;
    const struct key_ref *k = key;
    return grp->key_len == k->len && memcmp(grp->key, k->bytes, k->len) == 0;
}

static struct rh_group *group_find(struct rh_groups *g, const uint8_t *key, uint32_t key_len,
                                   uint64_t hash)
{
    struct key_ref k = {key, key_len};
    return rh_table_find(&g->table, hash, key_eq, &k);
}

static struct rh_group *group_get(struct rh_groups *g, const uint8_t *key, uint32_t key_len,
                                  uint64_t hash)
{
    struct rh_group *grp = group_find(g, key, key_len, hash);
    if (grp) return grp;
    grp = rh_calloc(1, sizeof(*grp) + key_len);
    grp->hash = hash;
    rh_list_init(&grp->members);
    grp->key_len = key_len;
    memcpy(grp->key, key, key_len);
    rh_table_insert(&g->table, hash, grp);
    return grp;
}

/* Frees @grp once this shard neither owns members elsewhere nor has any of its own. */
static void group_release(struct rh_groups *g, struct rh_group *grp)
{
    if (grp->member_count || grp->member_shards) return;
    rh_table_remove(&g->table, grp->hash, grp);
    rh_free(grp);
}

static uint32_t owner_of(const struct rh_groups *g, uint64_t hash)
{
    return (uint32_t)(hash % rh_shard_count(g->shard));
}

static struct rh_blob *blob_new(uint16_t kind, const uint8_t *key, uint32_t key_len,
                                struct rh_span tail)
{
    struct rh_blob *b = rh_blob_new(kind, 1, NULL, key_len + tail.len);
    memcpy(b->data, key, key_len);
    if (tail.len) memcpy(b->data + key_len, tail.ptr, tail.len);
    return b;
}
