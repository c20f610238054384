#pragma once
/*
 * shards/groups.h - groups and users of hub connections, routed as DESIGN.md says.
 *
 * A group (and a user: the implicit group of that user's connections) is named by its hub,
 * its kind and its name, and is owned by shard hash(key) % N. Every shard keeps its own index
 * from group to its local members; the owner keeps which shards have members. So:
 *
 *   join:  the member's shard adds the membership at once and tells the owner, which marks
 *          the shard and answers; the join is in effect everywhere once the answer is back
 *          (ops->joined), because every later send passes through the owner after it.
 *   leave: the member's shard drops the membership; when its last local member is gone it
 *          tells the owner, which unmarks the shard.
 *   send:  origin shard -> owner -> every shard with members -> their members (ops->deliver).
 *          One blob all the way: the owner posts the same payload on to the member shards.
 *
 * Between one origin and one group, messages arrive in the order they were sent: every hop
 * is one SPSC ring, which keeps order. Nothing here allocates per recipient.
 *
 * All calls on the shard thread that owns @g.
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/blob.h"
#include "core/list.h"
#include "shards/shard.h"
#include "transports/span.h"

#define RH_GROUP_NAME_MAX 256 /* bytes of a group or user name */

/* Blob kinds of this module, in [RH_GROUPS_BLOB_FIRST, RH_GROUPS_BLOB_LAST]. */
#define RH_GROUPS_BLOB_FIRST 16
#define RH_GROUPS_BLOB_LAST  23

#define RH_GROUPS_NO_EXCEPT UINT64_MAX /* rh_groups_send: exclude nobody */

enum rh_group_kind {
    RH_GROUP_NAMED, /* JoinGroup and friends */
    RH_GROUP_USER,  /* the connections of one user */
};

struct rh_group_key {
    enum rh_group_kind kind;
    struct rh_span hub;  /* at most RH_HUB_NAME_MAX bytes */
    struct rh_span name; /* at most RH_GROUP_NAME_MAX bytes */
};

struct rh_groups;
struct rh_group;

/* One member's membership of one group: on the group's list and on the member's own list
 * (which rh_groups_leave_all walks when the member goes). */
struct rh_membership {
    struct rh_list in_group;
    struct rh_list in_member;
    struct rh_group *group;
    void *member;
    uint64_t route; /* the member's connection route, for rh_groups_send's @except */
};

struct rh_groups_ops {
    /* A message sent to group @key with members on this shard: @members is the group's list of
     * struct rh_membership (in_group), @msg what the sender put in, @except the route of a
     * member to skip (or RH_GROUPS_NO_EXCEPT). Must not join, leave or close a member
     * synchronously: the list is being walked. */
    void (*deliver)(void *ctx, const struct rh_group_key *key, const struct rh_list *members,
                    struct rh_span msg, uint64_t except);
    /* The owner has taken in the join of the member with @route; @note is what
     * rh_groups_join got. The member may be gone by now. */
    void (*joined)(void *ctx, uint64_t route, struct rh_span note);
    /* On the owner, before it answers: the member with @route on shard @member_shard joins
     * @key. Blobs this posts to @member_shard arrive before the answer. May be NULL. */
    void (*owner_joining)(void *ctx, const struct rh_group_key *key, uint64_t route,
                          uint32_t member_shard);
    /* On the owner, for every message of this process to @key (rh_groups_send, not
     * rh_groups_send_remote), whether or not any shard has members: @msg and @except as the
     * sender gave them. May be NULL. */
    void (*owner_sending)(void *ctx, const struct rh_group_key *key, struct rh_span msg,
                          uint64_t except);
    /* On the owner: the first shard with members of @key came (@has_members), or the last one
     * left. Returns whether joins may be answered now; false holds them (the first and any
     * that come meanwhile) until rh_groups_interest_ready. May be NULL. */
    bool (*interest)(void *ctx, const struct rh_group_key *key, bool has_members);
};

struct rh_groups *rh_groups_new(struct rh_shard *s, const struct rh_groups_ops *ops, void *ctx);
/* At shard stop, when no member is left. */
void rh_groups_free(struct rh_groups *g);

/* Makes @member (connection @route, membership list @memberships) a member of @key and tells
 * the owner, whose answer comes back as ops->joined(@route, @note) (@note at most 255 bytes).
 * Returns true if it was a new membership (false: it was one already; the answer comes all
 * the same, so a repeated join also completes only once the first one is in effect). */
bool rh_groups_join(struct rh_groups *g, const struct rh_group_key *key, void *member,
                    uint64_t route, struct rh_list *memberships, struct rh_span note);
/* The shard that owns @key. */
uint32_t rh_groups_owner(const struct rh_groups *g, const struct rh_group_key *key);
/* Ends @memberships' membership of @key, if it had one. Returns true if it had. */
bool rh_groups_leave(struct rh_groups *g, const struct rh_group_key *key,
                     struct rh_list *memberships);
/* Ends the memberships on @memberships of groups of @kind; returns how many. */
uint32_t rh_groups_leave_kind(struct rh_groups *g, struct rh_list *memberships,
                              enum rh_group_kind kind);
/* On the owner of @key (rh_groups_owner): whether any shard has members of it. A join is
 * counted once the owner has taken it in, a leave once the member's shard has said so. */
bool rh_groups_has_members(struct rh_groups *g, const struct rh_group_key *key);
/* On the owner of @key: the shards that have members of it, a bit each. */
uint64_t rh_groups_member_shards(struct rh_groups *g, const struct rh_group_key *key);
/* The local members of @key (struct rh_membership, in_group), or NULL when there are none. */
const struct rh_list *rh_groups_local_members(struct rh_groups *g, const struct rh_group_key *key);
/* Ends every membership on @memberships (the member is going away). */
void rh_groups_leave_all(struct rh_groups *g, struct rh_list *memberships);
/* A message for the members of @key: a new blob with @msg_len bytes at *@msg for the caller
 * to fill before rh_groups_send. */
struct rh_blob *rh_groups_message_new(const struct rh_group_key *key, uint32_t msg_len,
                                      uint8_t **msg);
/* Sends @b (from rh_groups_message_new; takes the reference) to every member of its group
 * but the one with route @except. */
void rh_groups_send(struct rh_groups *g, struct rh_blob *b, uint64_t except);
/* On the owner of @b's group: delivers @b (from rh_groups_message_new; takes the reference)
 * to the members in this process, as a message from elsewhere: ops->owner_sending is not
 * called. */
void rh_groups_send_remote(struct rh_groups *g, struct rh_blob *b);

/* What a shard knows of a group: its local members and, as its owner, which shards have
 * members, how many messages went through it and how many in the last second. */
struct rh_group_info {
    struct rh_group_key key; /* valid during the call (rh_groups_each) */
    uint32_t local_members;
    bool is_owned;          /* this shard owns it and some shard has members */
    uint64_t member_shards; /* is_owned: a bit per shard with members */
    uint64_t messages;      /* is_owned: sent through it since it got members */
    uint32_t rate_per_s;    /* is_owned: messages in the last second */
};
/* The group @m is a membership of. */
struct rh_group_key rh_membership_key(const struct rh_membership *m);
/* Calls @fn for every group this shard has members of or owns with members. */
void rh_groups_each(struct rh_groups *g, void (*fn)(void *ctx, const struct rh_group_info *info),
                    void *ctx);
/* Fills @out for @key; false when this shard neither has members of it nor owns it. */
bool rh_groups_info(struct rh_groups *g, const struct rh_group_key *key, struct rh_group_info *out);

/* On the owner of @key: the joins held by ops->interest may be answered now. */
void rh_groups_interest_ready(struct rh_groups *g, const struct rh_group_key *key);

/* Handles @b if it is one of this module's blobs (kind in the range above). */
bool rh_groups_blob(struct rh_groups *g, struct rh_blob *b);
