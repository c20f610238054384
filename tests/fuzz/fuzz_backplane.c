/* tests/fuzz/fuzz_backplane.c - backplane envelopes on arbitrary bytes. A refusal gives a reason;
 * what decodes is in range with every span inside the input, and written again (in the smallest
 * forms, extra elements dropped, so never longer than the input) it decodes to the same fields
 * and writes the same bytes a second time. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "transports/backplane.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fields(const struct rh_bp_env *e, const uint8_t *data, size_t size);
static void check_rewrite(const struct rh_bp_env *e, size_t size);
static bool is_inside(struct rh_span s, const uint8_t *data, size_t size);
static bool is_same(const struct rh_bp_env *a, const struct rh_bp_env *b);

/* The same bytes as a node directory entry: the first line the field, the rest the value; a
 * parsed entry writes back to the same value. */
static void check_node_entry(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t id_len = nl ? (size_t)(nl - data) : 0;
    struct rh_span id = rh_span_make(data, (uint32_t)id_len);
    struct rh_span value =
        rh_span_make(data + id_len + (nl != NULL), (uint32_t)(size - id_len - (nl != NULL)));
    struct rh_bp_node_entry e;
    if (!rh_bp_node_parse(id, value, &e)) return;
    RH_ASSERT(e.id <= RH_BP_NODE_MAX && e.started_ms >= 0 && e.seen_ms >= 0);
    RH_ASSERT(strlen(e.address) >= 1 && strlen(e.address) <= RH_BP_ADDRESS_MAX);
    char out[160];
    int len = rh_bp_node_format(&e, out, sizeof(out));
    RH_ASSERT(len > 0);
    struct rh_bp_node_entry again;
    RH_ASSERT(rh_bp_node_parse(id, rh_span_make(out, (uint32_t)len), &again));
    RH_ASSERT(again.started_ms == e.started_ms && again.seen_ms == e.seen_ms &&
              strcmp(again.address, e.address) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rh_bp_env e;
    const char *why = NULL;
    check_node_entry(data, size);
    int rc = rh_bp_decode(data, size, &e, &why);
    RH_ASSERT(rc == 0 || rc == -EINVAL);
    if (rc < 0) {
        RH_ASSERT(why != NULL && why[0] != '\0');
        return 0;
    }
    RH_ASSERT(why == NULL);
    check_fields(&e, data, size);
    check_rewrite(&e, size);
    return 0;
}

static void check_fields(const struct rh_bp_env *e, const uint8_t *data, size_t size)
{
    RH_ASSERT(e->kind >= RH_BP_SEND && e->kind <= RH_BP_USER_GROUPS);
    RH_ASSERT(e->origin_node <= RH_BP_NODE_MAX);
    switch (e->kind) {
    case RH_BP_SEND:
        RH_ASSERT(e->send.scope <= RH_BP_CONNECTION);
        RH_ASSERT(e->send.codec == RH_HUB_JSON || e->send.codec == RH_HUB_MSGPACK);
        RH_ASSERT(e->send.hub.len <= RH_BP_NAME_MAX && is_inside(e->send.hub, data, size));
        RH_ASSERT(e->send.name.len <= RH_BP_NAME_MAX && is_inside(e->send.name, data, size));
        RH_ASSERT(e->send.target.len <= RH_BP_NAME_MAX && is_inside(e->send.target, data, size));
        RH_ASSERT(e->send.arg_count <= RH_HUB_ARGS_MAX);
        for (uint32_t i = 0; i < e->send.arg_count; i++)
            RH_ASSERT(is_inside(e->send.args[i], data, size));
        RH_ASSERT(e->send.excluded.len % 8 == 0 && is_inside(e->send.excluded, data, size));
        for (uint32_t i = 0; i < e->send.excluded.len / 8; i++)
            (void)rh_bp_excluded_at(e, i);
        break;
    case RH_BP_INTEREST:
        RH_ASSERT(e->interest.group_kind <= 1);
        RH_ASSERT(e->interest.state <= RH_BP_HERE);
        RH_ASSERT(e->interest.hub.len <= RH_BP_NAME_MAX && is_inside(e->interest.hub, data, size));
        RH_ASSERT(e->interest.name.len <= RH_BP_NAME_MAX &&
                  is_inside(e->interest.name, data, size));
        break;
    case RH_BP_COMMAND:
        RH_ASSERT(e->command.op >= RH_BP_ADD_TO_GROUP && e->command.op <= RH_BP_EXISTS);
        RH_ASSERT(e->command.hub.len <= RH_BP_NAME_MAX && is_inside(e->command.hub, data, size));
        RH_ASSERT(e->command.group.len <= RH_BP_NAME_MAX &&
                  is_inside(e->command.group, data, size));
        RH_ASSERT(e->command.text.len <= RH_BP_NAME_MAX && is_inside(e->command.text, data, size));
        RH_ASSERT(e->command.connection.len <= RH_BP_NAME_MAX &&
                  is_inside(e->command.connection, data, size));
        break;
    case RH_BP_ANSWER:
        RH_ASSERT(e->answer.status >= 100 && e->answer.status <= 599);
        break;
    default:
        RH_ASSERT(e->user_groups.op >= RH_BP_ADD_TO_GROUP &&
                  e->user_groups.op <= RH_BP_REMOVE_FROM_ALL);
        RH_ASSERT(e->user_groups.hub.len <= RH_BP_NAME_MAX &&
                  is_inside(e->user_groups.hub, data, size));
        RH_ASSERT(e->user_groups.user.len <= RH_BP_NAME_MAX &&
                  is_inside(e->user_groups.user, data, size));
        RH_ASSERT(e->user_groups.group.len <= RH_BP_NAME_MAX &&
                  is_inside(e->user_groups.group, data, size));
        break;
    }
}

/* Written, read back and written again: the same fields, then the same bytes. */
static void check_rewrite(const struct rh_bp_env *e, size_t size)
{
    static struct rh_bp_env again, third;
    uint32_t len = rh_bp_size(e);
    RH_ASSERT(len <= size);
    uint8_t *out = malloc(len);
    RH_ASSERT(out != NULL);
    RH_ASSERT(rh_bp_encode(e, out) == len);

    const char *why = NULL;
    RH_ASSERT(rh_bp_decode(out, len, &again, &why) == 0);
    RH_ASSERT(is_same(e, &again));

    uint8_t *out2 = malloc(len);
    RH_ASSERT(out2 != NULL);
    RH_ASSERT(rh_bp_size(&again) == len);
    RH_ASSERT(rh_bp_encode(&again, out2) == len);
    RH_ASSERT(memcmp(out, out2, len) == 0);
    RH_ASSERT(rh_bp_decode(out2, len, &third, &why) == 0);
    RH_ASSERT(is_same(&again, &third));
    free(out2);
    free(out);
}

static bool is_inside(struct rh_span s, const uint8_t *data, size_t size)
{
    return s.ptr >= data && s.ptr + s.len <= data + size;
}

static bool is_same(const struct rh_bp_env *a, const struct rh_bp_env *b)
{
    if (a->kind != b->kind || a->origin_node != b->origin_node ||
        a->origin_shard != b->origin_shard || a->seq != b->seq)
        return false;
    switch (a->kind) {
    case RH_BP_SEND:
        if (a->send.scope != b->send.scope || a->send.codec != b->send.codec ||
            !rh_span_eq(a->send.hub, b->send.hub) || !rh_span_eq(a->send.name, b->send.name) ||
            !rh_span_eq(a->send.target, b->send.target) || a->send.arg_count != b->send.arg_count ||
            !rh_span_eq(a->send.excluded, b->send.excluded))
            return false;
        for (uint32_t i = 0; i < a->send.arg_count; i++)
            if (!rh_span_eq(a->send.args[i], b->send.args[i])) return false;
        return true;
    case RH_BP_INTEREST:
        return a->interest.group_kind == b->interest.group_kind &&
               a->interest.state == b->interest.state &&
               rh_span_eq(a->interest.hub, b->interest.hub) &&
               rh_span_eq(a->interest.name, b->interest.name);
    case RH_BP_COMMAND:
        return a->command.request_id == b->command.request_id && a->command.op == b->command.op &&
               a->command.route == b->command.route && a->command.is_v1 == b->command.is_v1 &&
               rh_span_eq(a->command.hub, b->command.hub) &&
               rh_span_eq(a->command.group, b->command.group) &&
               rh_span_eq(a->command.text, b->command.text) &&
               rh_span_eq(a->command.connection, b->command.connection);
    case RH_BP_ANSWER:
        return a->answer.request_id == b->answer.request_id && a->answer.status == b->answer.status;
    default:
        return a->user_groups.op == b->user_groups.op &&
               rh_span_eq(a->user_groups.hub, b->user_groups.hub) &&
               rh_span_eq(a->user_groups.user, b->user_groups.user) &&
               rh_span_eq(a->user_groups.group, b->user_groups.group);
    }
}
