/* tests/fuzz/fuzz_hub_msgpack.c - feeds arbitrary bytes to the MessagePack hub parser as a
 * stream of messages. Each parse must end in a known result; every span it hands back must lie
 * inside the message it came from, each value span must be exactly one MessagePack value (by
 * our skipper and, where msgpack-c can read it, by msgpack-c too); a shorter input must only
 * ask for more; and each message must survive being written by our writers and parsed again
 * with the same fields, the second writing byte for byte the first. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "core/assert.h"
#include "core/buf.h"
#include "transports/hub_msgpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BYTES 32768

static struct rh_hub_msg first, second;

static void check_span(struct rh_span s, const uint8_t *from, size_t len)
{
    if (s.len == 0) return;
    RH_ASSERT(s.ptr >= from);
    RH_ASSERT(s.ptr + s.len <= from + len);
}

static void check_value(struct rh_span v, const uint8_t *from, size_t len)
{
    const char *why;
    check_span(v, from, len);
    RH_ASSERT(v.len > 0);
    RH_ASSERT(rh_hub_msgpack_value_len(v.ptr, v.len, &why) == (ssize_t)v.len);

    msgpack_unpacked result;
    size_t off = 0;
    msgpack_unpacked_init(&result);
    if (msgpack_unpack_next(&result, (const char *)v.ptr, v.len, &off) == MSGPACK_UNPACK_SUCCESS)
        RH_ASSERT(off == v.len);
    msgpack_unpacked_destroy(&result);
}

static bool span_same(struct rh_span a, struct rh_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Writes @m with our writers; false for types the server never writes. */
static bool write_msg(const struct rh_hub_msg *m, struct rh_buf **out)
{
    switch (m->type) {
    case RH_HUB_INVOCATION:
        rh_hub_msgpack_write_invocation(out, m->invocation_id, m->target, m->args, m->arg_count);
        return true;
    case RH_HUB_COMPLETION:
        rh_hub_msgpack_write_completion(out, m->invocation_id, m->result_kind,
                                        m->result_kind == RH_HUB_RESULT_ERROR ? m->error
                                                                              : m->result);
        return true;
    case RH_HUB_STREAM_ITEM:
        rh_hub_msgpack_write_stream_item(out, m->invocation_id, m->result);
        return true;
    case RH_HUB_PING:
        rh_hub_msgpack_write_ping(out);
        return true;
    case RH_HUB_CLOSE:
        rh_hub_msgpack_write_close(out, m->error, m->allow_reconnect);
        return true;
    case RH_HUB_ACK:
        rh_hub_msgpack_write_ack(out, m->sequence_id);
        return true;
    case RH_HUB_SEQUENCE:
        rh_hub_msgpack_write_sequence(out, m->sequence_id);
        return true;
    default:
        return false;
    }
}

static void check_round_trip(const struct rh_hub_msg *m)
{
    const char *why;
    struct rh_buf *out = rh_buf_new(0), *again = rh_buf_new(0);
    if (!write_msg(m, &out)) goto done;

    /* The body may have grown past MAX_BYTES by a few header bytes; no limit here. */
    ssize_t n = rh_hub_msgpack_parse(out->data, out->len, UINT32_MAX, &second, &why);
    RH_ASSERT(n == (ssize_t)out->len);
    RH_ASSERT(second.type == m->type);
    RH_ASSERT(span_same(second.invocation_id, m->invocation_id));
    RH_ASSERT(span_same(second.target, m->target));
    RH_ASSERT(second.arg_count == m->arg_count);
    for (uint32_t i = 0; i < m->arg_count; i++)
        RH_ASSERT(span_same(second.args[i], m->args[i]));
    RH_ASSERT(second.stream_id_count == 0);
    RH_ASSERT(second.result_kind == m->result_kind);
    RH_ASSERT(span_same(second.result, m->result));
    RH_ASSERT(span_same(second.error, m->error));
    RH_ASSERT(second.allow_reconnect == m->allow_reconnect);
    RH_ASSERT(second.sequence_id == m->sequence_id);

    RH_ASSERT(write_msg(&second, &again));
    RH_ASSERT(again->len == out->len && memcmp(again->data, out->data, out->len) == 0);
done:
    rh_buf_unref(out);
    rh_buf_unref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0;
    while (at < size) {
        const uint8_t *from = data + at;
        size_t left = size - at;
        const char *reason = NULL;
        ssize_t n = rh_hub_msgpack_parse(from, left, MAX_BYTES, &first, &reason);
        if (n <= 0) {
            RH_ASSERT(n == -EAGAIN || n == -EPROTO || n == -EMSGSIZE);
            RH_ASSERT(n == -EAGAIN || reason != NULL);
            break;
        }
        RH_ASSERT((size_t)n <= left);
        RH_ASSERT(first.codec == RH_HUB_MSGPACK);

        check_span(first.invocation_id, from, (size_t)n);
        check_span(first.target, from, (size_t)n);
        check_span(first.error, from, (size_t)n);
        RH_ASSERT(first.arg_count <= RH_HUB_ARGS_MAX);
        RH_ASSERT(first.stream_id_count <= RH_HUB_STREAMS_MAX);
        for (uint32_t i = 0; i < first.arg_count; i++)
            check_value(first.args[i], from, (size_t)n);
        for (uint32_t i = 0; i < first.stream_id_count; i++)
            check_span(first.stream_ids[i], from, (size_t)n);
        if (first.result.len) check_value(first.result, from, (size_t)n);

        /* Cut short, the same message only asks for more. */
        struct rh_hub_msg cut;
        RH_ASSERT(rh_hub_msgpack_parse(from, (size_t)n - 1, MAX_BYTES, &cut, &reason) == -EAGAIN);
        RH_ASSERT(rh_hub_msgpack_parse(from, (size_t)n / 2, MAX_BYTES, &cut, &reason) == -EAGAIN);

        check_round_trip(&first);
        at += (size_t)n;
    }
    return 0;
}
