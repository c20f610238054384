/* tests/fuzz/fuzz_hub_json.c - feeds arbitrary bytes to the handshake parser and then, over
 * what follows it (or the whole input when it is refused), to the JSON hub message parser until
 * it stops. Every parsed message must hold only validated JSON values and in-bounds spans, and
 * must survive a round trip: written again with the writers and parsed back, it has the same
 * target, invocation id, arguments, result or error. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/assert.h"
#include "core/buf.h"
#include "transports/hub_json.h"
#include "transports/json.h"

#define FUZZ_MAX_BYTES 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const struct rh_hub_msg *m);
static void check_value(struct rh_span value);
static void check_round_trip(const struct rh_hub_msg *m);
static bool same(struct rh_span a, struct rh_span b);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rh_hub_msg msg;
    struct rh_hub_handshake hs;
    const char *reason = NULL;

    ssize_t n = rh_hub_handshake_parse(data, size, FUZZ_MAX_BYTES, &hs, &reason);
    RH_ASSERT(n == -EAGAIN || n == -EMSGSIZE || n == -EPROTO || n > 0);
    if (n > 0) {
        RH_ASSERT((size_t)n <= size && data[n - 1] == RH_HUB_RECORD_SEPARATOR);
        RH_ASSERT(strlen(hs.protocol) < sizeof(hs.protocol));
        data += n;
        size -= (size_t)n;
    } else if (n != -EAGAIN) {
        RH_ASSERT(reason != NULL);
    }

    while (size > 0) {
        reason = NULL;
        n = rh_hub_json_parse(data, size, FUZZ_MAX_BYTES, &msg, &reason);
        if (n < 0) {
            RH_ASSERT(n == -EAGAIN || n == -EMSGSIZE || n == -EPROTO);
            RH_ASSERT(n == -EAGAIN || reason != NULL);
            break;
        }
        RH_ASSERT(n > 0 && (size_t)n <= size && data[n - 1] == RH_HUB_RECORD_SEPARATOR);
        RH_ASSERT(memchr(data, RH_HUB_RECORD_SEPARATOR, (size_t)n - 1) == NULL);
        check_message(&msg);
        check_round_trip(&msg);
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

static void check_message(const struct rh_hub_msg *m)
{
    RH_ASSERT(m->codec == RH_HUB_JSON);
    RH_ASSERT(m->arg_count <= RH_HUB_ARGS_MAX);
    RH_ASSERT(m->stream_id_count <= RH_HUB_STREAMS_MAX);
    RH_ASSERT(m->scratch_used <= RH_HUB_SCRATCH_BYTES);
    for (uint32_t i = 0; i < m->arg_count; i++) {
        check_value(m->args[i]);
        uint8_t out[FUZZ_MAX_BYTES];
        ssize_t len = rh_hub_json_arg_string(m, i, out, sizeof(out));
        if (rh_json_kind_of(m->args[i]) == RH_JSON_STRING)
            RH_ASSERT(len >= 0 && (size_t)len <= m->args[i].len - 2);
        else
            RH_ASSERT(len == -EINVAL);
    }
    if (m->result.len) check_value(m->result);
    if (m->type == RH_HUB_INVOCATION || m->type == RH_HUB_STREAM_INVOCATION)
        RH_ASSERT(m->target.len > 0);
    if (m->type >= RH_HUB_STREAM_ITEM && m->type <= RH_HUB_CANCEL_INVOCATION)
        RH_ASSERT(m->invocation_id.len > 0);
}

/* A value span is exactly one valid JSON value, without surrounding whitespace. */
static void check_value(struct rh_span value)
{
    const char *reason = NULL;
    RH_ASSERT(value.len > 0);
    RH_ASSERT(rh_json_value_len(value.ptr, value.len, &reason) == (ssize_t)value.len);
    RH_ASSERT(rh_json_kind_of(value) != RH_JSON_INVALID);
}

static void check_round_trip(const struct rh_hub_msg *m)
{
    static struct rh_hub_msg again;
    const char *reason = NULL;
    struct rh_buf *buf = rh_buf_new(0);

    switch (m->type) {
    case RH_HUB_INVOCATION:
    case RH_HUB_STREAM_INVOCATION:
        rh_hub_json_write_invocation(&buf, m->invocation_id, m->target, m->args, m->arg_count);
        break;
    case RH_HUB_COMPLETION:
        rh_hub_json_write_completion(&buf, m->invocation_id, m->result_kind,
                                     m->result_kind == RH_HUB_RESULT_ERROR ? m->error : m->result);
        break;
    case RH_HUB_STREAM_ITEM:
        rh_hub_json_write_stream_item(&buf, m->invocation_id, m->result);
        break;
    case RH_HUB_CLOSE:
        rh_hub_json_write_close(&buf, m->error, m->allow_reconnect);
        break;
    default:
        rh_buf_unref(buf);
        return;
    }

    /* Written strings escape what needs it and nothing else, so the copy never needs more
     * scratch than the original did. */
    ssize_t n = rh_hub_json_parse(buf->data, buf->len, UINT32_MAX, &again, &reason);
    RH_ASSERT(n == (ssize_t)buf->len);
    RH_ASSERT(again.scratch_used <= m->scratch_used);
    RH_ASSERT(same(again.invocation_id, m->invocation_id));
    RH_ASSERT(same(again.error, m->error));
    RH_ASSERT(same(again.result, m->result));
    RH_ASSERT(again.result_kind == m->result_kind);
    RH_ASSERT(again.allow_reconnect == m->allow_reconnect);
    if (m->type == RH_HUB_INVOCATION || m->type == RH_HUB_STREAM_INVOCATION) {
        RH_ASSERT(again.type == RH_HUB_INVOCATION);
        RH_ASSERT(same(again.target, m->target));
        RH_ASSERT(again.arg_count == m->arg_count);
        for (uint32_t i = 0; i < m->arg_count; i++)
            RH_ASSERT(same(again.args[i], m->args[i]));
    } else {
        RH_ASSERT(again.type == m->type);
    }
    rh_buf_unref(buf);
}

static bool same(struct rh_span a, struct rh_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
