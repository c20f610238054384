/*
 * transports/backplane.c - writes and reads the envelopes of backplane.h. The writer is msgpack-c's
 * packer run into a callback that either counts bytes (rh_bp_size) or stores them in the caller's
 * buffer (rh_bp_encode): one walk of the envelope serves both, so the two cannot disagree. The
 * reader checks each element's head with rh_hub_msgpack_read_head (which refuses a length the
 * bytes left cannot hold), then its type and range; it allocates nothing and its spans point into
 * the input. Publishing, subscribing and acting on envelopes are shards/backplane.c's.
 */
#include "transports/backplane.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "core/assert.h"
#include "transports/hub_msgpack.h"

/* version, kind, origin node, origin shard, origin sequence */
#define HEAD_COUNT 5u
#define ROUTE_SIZE 8
#define STATUS_MIN 100
#define STATUS_MAX 599

/* Elements each kind adds after the head. */
static const uint8_t field_counts[] = {
    [RH_BP_SEND] = 7,   [RH_BP_INTEREST] = 4,    [RH_BP_COMMAND] = 8,
    [RH_BP_ANSWER] = 2, [RH_BP_USER_GROUPS] = 4,
};

/* Where the packer's bytes go; with no @out they are only counted. */
struct writer {
    uint8_t *out;
    uint32_t len;
};

/* A cursor over one envelope. */
struct reader {
    const uint8_t *at;
    const uint8_t *end;
    const char **why;
};

static uint32_t pack_env(const struct rh_bp_env *e, uint8_t *out);
static void pack_send(msgpack_packer *pk, const struct rh_bp_env *e);
static void pack_command(msgpack_packer *pk, const struct rh_bp_env *e);
static void pack_str(msgpack_packer *pk, struct rh_span s);
static void pack_bin(msgpack_packer *pk, const void *ptr, uint32_t len);
static int write_bytes(void *data, const char *bytes, size_t len);
static int decode_send(struct reader *r, struct rh_bp_env *e);
static int decode_interest(struct reader *r, struct rh_bp_env *e);
static int decode_command(struct reader *r, struct rh_bp_env *e);
static int decode_answer(struct reader *r, struct rh_bp_env *e);
static int decode_user_groups(struct reader *r, struct rh_bp_env *e);
static int skip_extra(struct reader *r, uint32_t count);
static int read_head(struct reader *r, enum rh_hub_msgpack_kind kind, struct rh_hub_msgpack_head *h,
                     const char *what);
static int read_uint(struct reader *r, uint64_t min, uint64_t max, uint64_t *v, const char *what);
static int read_str(struct reader *r, struct rh_span *s, const char *what);
static int read_bin(struct reader *r, struct rh_span *s, const char *what);
static int read_bool(struct reader *r, bool *b, const char *what);
static uint64_t load_be64(const uint8_t *p);
static int fail(const char **why, const char *what);

uint32_t rh_bp_size(const struct rh_bp_env *e)
{
    return pack_env(e, NULL);
}

uint32_t rh_bp_encode(const struct rh_bp_env *e, uint8_t *out)
{
    return pack_env(e, out);
}

int rh_bp_decode(const uint8_t *data, size_t len, struct rh_bp_env *e, const char **why)
{
    const char *ignored;
    struct reader r = {.at = data, .end = data, .why = why ? why : &ignored};
    struct rh_hub_msgpack_head h;
    uint64_t version, kind, node, shard;
    uint32_t known; /* elements of this kind's envelope; what follows is skipped */
    int rc;

    memset(e, 0, sizeof(*e));
    /* An empty payload may come with a NULL @data, which must not be offset even by 0. */
    if (len == 0) return fail(r.why, "envelope ends early or is not MessagePack");
    r.end = data + len;
    if ((rc = read_head(&r, RH_HUB_MSGPACK_ARRAY, &h, "envelope is not an array")) < 0) return rc;
    if (h.count < HEAD_COUNT) return fail(r.why, "envelope array is too short");
    if ((rc = read_uint(&r, RH_BP_VERSION, RH_BP_VERSION, &version, "unsupported version")) < 0 ||
        (rc = read_uint(&r, RH_BP_SEND, RH_BP_USER_GROUPS, &kind, "unknown kind")) < 0 ||
        (rc = read_uint(&r, 0, RH_BP_NODE_MAX, &node, "invalid origin node")) < 0 ||
        (rc = read_uint(&r, 0, RH_BP_SHARD_MAX, &shard, "invalid origin shard")) < 0 ||
        (rc = read_uint(&r, 0, UINT64_MAX, &e->seq, "invalid origin sequence")) < 0)
        return rc;
    e->kind = (uint8_t)kind;
    e->origin_node = (uint16_t)node;
    e->origin_shard = (uint8_t)shard;
    known = HEAD_COUNT + field_counts[kind];
    if (h.count < known) return fail(r.why, "envelope array is too short");

    switch (e->kind) {
    case RH_BP_SEND:
        rc = decode_send(&r, e);
        break;
    case RH_BP_INTEREST:
        rc = decode_interest(&r, e);
        break;
    case RH_BP_COMMAND:
        rc = decode_command(&r, e);
        break;
    case RH_BP_ANSWER:
        rc = decode_answer(&r, e);
        break;
    default:
        rc = decode_user_groups(&r, e);
        break;
    }
    if (rc < 0) return rc;
    if ((rc = skip_extra(&r, h.count - known)) < 0) return rc;
    if (r.at != r.end) return fail(r.why, "bytes after the envelope");
    return 0;
}

uint64_t rh_bp_excluded_at(const struct rh_bp_env *e, uint32_t i)
{
    RH_DEBUG_ASSERT(i < e->send.excluded.len / ROUTE_SIZE);
    return load_be64(e->send.excluded.ptr + (size_t)i * ROUTE_SIZE);
}

/* Writes @e into @out, or only counts its bytes when @out is NULL. */
static uint32_t pack_env(const struct rh_bp_env *e, uint8_t *out)
{
    struct writer w = {.out = out, .len = 0};
    msgpack_packer pk;
    RH_ASSERT(e->kind >= RH_BP_SEND && e->kind <= RH_BP_USER_GROUPS);

    msgpack_packer_init(&pk, &w, write_bytes);
    msgpack_pack_array(&pk, HEAD_COUNT + field_counts[e->kind]);
    msgpack_pack_uint8(&pk, RH_BP_VERSION);
    msgpack_pack_uint8(&pk, e->kind);
    msgpack_pack_uint16(&pk, e->origin_node);
    msgpack_pack_uint8(&pk, e->origin_shard);
    msgpack_pack_uint64(&pk, e->seq);
    switch (e->kind) {
    case RH_BP_SEND:
        pack_send(&pk, e);
        break;
    case RH_BP_INTEREST:
        pack_str(&pk, e->interest.hub);
        msgpack_pack_uint8(&pk, e->interest.group_kind);
        pack_str(&pk, e->interest.name);
        msgpack_pack_uint8(&pk, e->interest.state);
        break;
    case RH_BP_COMMAND:
        pack_command(&pk, e);
        break;
    case RH_BP_ANSWER:
        msgpack_pack_uint64(&pk, e->answer.request_id);
        msgpack_pack_uint16(&pk, e->answer.status);
        break;
    default:
        msgpack_pack_uint8(&pk, e->user_groups.op);
        pack_str(&pk, e->user_groups.hub);
        pack_str(&pk, e->user_groups.user);
        pack_str(&pk, e->user_groups.group);
        break;
    }
    return w.len;
}

/* [.., scope, hub, name, target, codec, [bin, ...], excluded] */
static void pack_send(msgpack_packer *pk, const struct rh_bp_env *e)
{
    RH_ASSERT(e->send.arg_count <= RH_HUB_ARGS_MAX);
    RH_ASSERT(e->send.excluded.len % ROUTE_SIZE == 0);
    msgpack_pack_uint8(pk, e->send.scope);
    pack_str(pk, e->send.hub);
    pack_str(pk, e->send.name);
    pack_str(pk, e->send.target);
    msgpack_pack_uint8(pk, (uint8_t)e->send.codec);
    msgpack_pack_array(pk, e->send.arg_count);
    for (uint32_t i = 0; i < e->send.arg_count; i++)
        pack_bin(pk, e->send.args[i].ptr, e->send.args[i].len);
    pack_bin(pk, e->send.excluded.ptr, e->send.excluded.len);
}

/* [.., request id, op, hub, route, group, text, connection, v1] */
static void pack_command(msgpack_packer *pk, const struct rh_bp_env *e)
{
    uint8_t route[ROUTE_SIZE];
    for (uint32_t i = 0; i < ROUTE_SIZE; i++)
        route[i] = (uint8_t)(e->command.route >> (56 - 8 * i));
    msgpack_pack_uint64(pk, e->command.request_id);
    msgpack_pack_uint8(pk, e->command.op);
    pack_str(pk, e->command.hub);
    pack_bin(pk, route, ROUTE_SIZE);
    pack_str(pk, e->command.group);
    pack_str(pk, e->command.text);
    pack_str(pk, e->command.connection);
    if (e->command.is_v1)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

static void pack_str(msgpack_packer *pk, struct rh_span s)
{
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.ptr, s.len);
}

static void pack_bin(msgpack_packer *pk, const void *ptr, uint32_t len)
{
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, ptr, len);
}

static int write_bytes(void *data, const char *bytes, size_t len)
{
    struct writer *w = data;
    /* An empty span may have a NULL pointer, which memcpy must not get. */
    if (w->out && len) memcpy(w->out + w->len, bytes, len);
    w->len += (uint32_t)len;
    return 0;
}

static int decode_send(struct reader *r, struct rh_bp_env *e)
{
    struct rh_hub_msgpack_head h;
    uint64_t scope, codec;
    int rc;
    if ((rc = read_uint(r, RH_BP_ALL, RH_BP_CONNECTION, &scope, "unknown scope")) < 0 ||
        (rc = read_str(r, &e->send.hub, "invalid hub")) < 0 ||
        (rc = read_str(r, &e->send.name, "invalid name")) < 0 ||
        (rc = read_str(r, &e->send.target, "invalid target")) < 0 ||
        (rc = read_uint(r, RH_HUB_JSON, RH_HUB_MSGPACK, &codec, "unknown codec")) < 0 ||
        (rc = read_head(r, RH_HUB_MSGPACK_ARRAY, &h, "arguments are not an array")) < 0)
        return rc;
    e->send.scope = (uint8_t)scope;
    e->send.codec = (enum rh_hub_codec)codec;
    if (h.count > RH_HUB_ARGS_MAX) return fail(r->why, "too many arguments");
    for (uint32_t i = 0; i < h.count; i++)
        if ((rc = read_bin(r, &e->send.args[i], "argument is not a bin")) < 0) return rc;
    e->send.arg_count = h.count;
    if ((rc = read_bin(r, &e->send.excluded, "excluded is not a bin")) < 0) return rc;
    if (e->send.excluded.len % ROUTE_SIZE)
        return fail(r->why, "excluded is not a list of 8-byte routes");
    return 0;
}

static int decode_interest(struct reader *r, struct rh_bp_env *e)
{
    uint64_t group_kind, state;
    int rc;
    if ((rc = read_str(r, &e->interest.hub, "invalid hub")) < 0 ||
        (rc = read_uint(r, 0, 1, &group_kind, "unknown group kind")) < 0 ||
        (rc = read_str(r, &e->interest.name, "invalid name")) < 0 ||
        (rc = read_uint(r, RH_BP_GONE, RH_BP_HERE, &state, "unknown interest state")) < 0)
        return rc;
    e->interest.group_kind = (uint8_t)group_kind;
    e->interest.state = (uint8_t)state;
    return 0;
}

static int decode_command(struct reader *r, struct rh_bp_env *e)
{
    struct rh_span route;
    uint64_t op;
    int rc;
    if ((rc = read_uint(r, 0, UINT64_MAX, &e->command.request_id, "invalid request id")) < 0 ||
        (rc = read_uint(r, RH_BP_ADD_TO_GROUP, RH_BP_EXISTS, &op, "unknown op")) < 0 ||
        (rc = read_str(r, &e->command.hub, "invalid hub")) < 0 ||
        (rc = read_bin(r, &route, "route is not a bin")) < 0)
        return rc;
    if (route.len != ROUTE_SIZE) return fail(r->why, "route is not 8 bytes");
    if ((rc = read_str(r, &e->command.group, "invalid group")) < 0 ||
        (rc = read_str(r, &e->command.text, "invalid text")) < 0 ||
        (rc = read_str(r, &e->command.connection, "invalid connection")) < 0 ||
        (rc = read_bool(r, &e->command.is_v1, "v1 is not a bool")) < 0)
        return rc;
    e->command.op = (uint8_t)op;
    e->command.route = load_be64(route.ptr);
    return 0;
}

static int decode_answer(struct reader *r, struct rh_bp_env *e)
{
    uint64_t status;
    int rc;
    if ((rc = read_uint(r, 0, UINT64_MAX, &e->answer.request_id, "invalid request id")) < 0 ||
        (rc = read_uint(r, STATUS_MIN, STATUS_MAX, &status, "invalid status")) < 0)
        return rc;
    e->answer.status = (uint16_t)status;
    return 0;
}

static int decode_user_groups(struct reader *r, struct rh_bp_env *e)
{
    uint64_t op;
    int rc;
    if ((rc = read_uint(r, RH_BP_ADD_TO_GROUP, RH_BP_REMOVE_FROM_ALL, &op, "unknown op")) < 0 ||
        (rc = read_str(r, &e->user_groups.hub, "invalid hub")) < 0 ||
        (rc = read_str(r, &e->user_groups.user, "invalid user")) < 0 ||
        (rc = read_str(r, &e->user_groups.group, "invalid group")) < 0)
        return rc;
    e->user_groups.op = (uint8_t)op;
    return 0;
}

/* Elements a later version added: any well-formed values, skipped. */
static int skip_extra(struct reader *r, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        const char *reason;
        ssize_t n = rh_hub_msgpack_value_len(r->at, (size_t)(r->end - r->at), &reason);
        if (n < 0) return fail(r->why, "invalid extra element");
        r->at += n;
    }
    return 0;
}

/* The head of the next element, which must be of @kind; payloads are left to the caller. */
static int read_head(struct reader *r, enum rh_hub_msgpack_kind kind, struct rh_hub_msgpack_head *h,
                     const char *what)
{
    if (rh_hub_msgpack_read_head(r->at, (size_t)(r->end - r->at), h) < 0)
        return fail(r->why, "envelope ends early or is not MessagePack");
    if (h->kind != kind) return fail(r->why, what);
    r->at += h->head_len;
    return 0;
}

/* Any int width, signed ones too, as long as the value is in [@min, @max]. */
static int read_uint(struct reader *r, uint64_t min, uint64_t max, uint64_t *v, const char *what)
{
    struct rh_hub_msgpack_head h;
    if (rh_hub_msgpack_read_head(r->at, (size_t)(r->end - r->at), &h) < 0)
        return fail(r->why, "envelope ends early or is not MessagePack");
    if (h.kind == RH_HUB_MSGPACK_UINT)
        *v = h.u;
    else if (h.kind == RH_HUB_MSGPACK_INT && h.i >= 0)
        *v = (uint64_t)h.i;
    else
        return fail(r->why, what);
    if (*v < min || *v > max) return fail(r->why, what);
    r->at += h.head_len;
    return 0;
}

static int read_str(struct reader *r, struct rh_span *s, const char *what)
{
    struct rh_hub_msgpack_head h;
    int rc = read_head(r, RH_HUB_MSGPACK_STR, &h, what);
    if (rc < 0) return rc;
    if (h.data_len > RH_BP_NAME_MAX) return fail(r->why, "a string is over RH_BP_NAME_MAX bytes");
    *s = rh_span_make(r->at, h.data_len);
    r->at += h.data_len;
    return 0;
}

static int read_bin(struct reader *r, struct rh_span *s, const char *what)
{
    struct rh_hub_msgpack_head h;
    int rc = read_head(r, RH_HUB_MSGPACK_BIN, &h, what);
    if (rc < 0) return rc;
    *s = rh_span_make(r->at, h.data_len);
    r->at += h.data_len;
    return 0;
}

static int read_bool(struct reader *r, bool *b, const char *what)
{
    struct rh_hub_msgpack_head h;
    int rc = read_head(r, RH_HUB_MSGPACK_BOOL, &h, what);
    if (rc < 0) return rc;
    *b = h.b;
    return 0;
}

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < ROUTE_SIZE; i++)
        v = v << 8 | p[i];
    return v;
}

static int fail(const char **why, const char *what)
{
    *why = what;
    return -EINVAL;
}

int rh_bp_node_format(const struct rh_bp_node_entry *e, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%lld %lld %s", (long long)e->started_ms, (long long)e->seen_ms,
                     e->address);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* A decimal number of 1 to 18 digits at *@p (moved past it) below @end. */
static bool read_decimal(const uint8_t **p, const uint8_t *end, int64_t *out)
{
    int64_t v = 0;
    const uint8_t *start = *p;
    while (*p < end && **p >= '0' && **p <= '9' && *p - start < 18)
        v = v * 10 + (*(*p)++ - '0');
    *out = v;
    return *p > start && (*p == end || **p < '0' || **p > '9');
}

bool rh_bp_node_parse(struct rh_span id, struct rh_span value, struct rh_bp_node_entry *e)
{
    const uint8_t *p = id.ptr, *end = id.ptr + id.len;
    int64_t node;
    if (!id.len || !read_decimal(&p, end, &node) || p != end || node > RH_BP_NODE_MAX) return false;
    e->id = (uint16_t)node;
    p = value.ptr;
    end = value.ptr + value.len;
    if (!value.len || !read_decimal(&p, end, &e->started_ms) || p == end || *p++ != ' ' ||
        !read_decimal(&p, end, &e->seen_ms) || p == end || *p++ != ' ')
        return false;
    size_t len = (size_t)(end - p);
    if (!len || len > RH_BP_ADDRESS_MAX) return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] <= ' ' || p[i] >= 0x7f) return false;
    memcpy(e->address, p, len);
    e->address[len] = '\0';
    return true;
}
