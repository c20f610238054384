/* tests/fuzz/fuzz_hub_transcode.c - transcodes arbitrary values between JSON and MessagePack.
 * Byte 0 picks the direction (bit 0: 0 MessagePack -> JSON, 1 JSON -> MessagePack); the rest is
 * the value. JSON that comes out must validate with rh_json_value_len; MessagePack that comes
 * out must be one value by our skipper and by msgpack-c; whatever transcodes once must transcode
 * back, and after one trip through both codecs the JSON text is a fixed point. A failure must be
 * -EPROTO and leave the output as it was. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "core/assert.h"
#include "core/buf.h"
#include "transports/hub_msgpack.h"
#include "transports/hub_transcode.h"
#include "transports/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json(const struct rh_buf *b, uint32_t from)
{
    const char *why;
    RH_ASSERT(b->len > from);
    RH_ASSERT(rh_json_value_len(b->data + from, b->len - from, &why) == (ssize_t)(b->len - from));
}

static void check_msgpack(const struct rh_buf *b, uint32_t from)
{
    const char *why;
    RH_ASSERT(b->len > from);
    size_t len = b->len - from;
    RH_ASSERT(rh_hub_msgpack_value_len(b->data + from, len, &why) == (ssize_t)len);

    /* msgpack-c nests at most 32 deep; where it reads the value, it must take all of it. */
    msgpack_unpacked result;
    size_t off = 0;
    msgpack_unpacked_init(&result);
    msgpack_unpack_return rc =
        msgpack_unpack_next(&result, (const char *)b->data + from, len, &off);
    RH_ASSERT(rc != MSGPACK_UNPACK_SUCCESS || off == len);
    msgpack_unpacked_destroy(&result);
}

static struct rh_span tail(const struct rh_buf *b, uint32_t from)
{
    return rh_span_make(b->data + from, b->len - from);
}

/* JSON text @json (in *@bufp from @from) goes to MessagePack and back twice: the second JSON is
 * a fixed point of the trip. */
static void check_json_fixed_point(struct rh_span json)
{
    struct rh_buf *mp = rh_buf_new(0), *json2 = rh_buf_new(0), *mp2 = rh_buf_new(0),
                  *json3 = rh_buf_new(0);
    RH_ASSERT(rh_hub_transcode_value(RH_HUB_JSON, json, RH_HUB_MSGPACK, &mp) == 0);
    check_msgpack(mp, 0);
    RH_ASSERT(rh_hub_transcode_value(RH_HUB_MSGPACK, tail(mp, 0), RH_HUB_JSON, &json2) == 0);
    check_json(json2, 0);
    RH_ASSERT(rh_hub_transcode_value(RH_HUB_JSON, tail(json2, 0), RH_HUB_MSGPACK, &mp2) == 0);
    RH_ASSERT(rh_hub_transcode_value(RH_HUB_MSGPACK, tail(mp2, 0), RH_HUB_JSON, &json3) == 0);
    RH_ASSERT(json3->len == json2->len && memcmp(json3->data, json2->data, json2->len) == 0);
    rh_buf_unref(mp);
    rh_buf_unref(json2);
    rh_buf_unref(mp2);
    rh_buf_unref(json3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size - 1 > UINT32_MAX) return 0;
    bool from_json = data[0] & 1;
    struct rh_span value = rh_span_make(data + 1, (uint32_t)(size - 1));
    struct rh_buf *out = rh_buf_copy("@", 1);
    const char *why;

    if (from_json) {
        /* The JSON side takes values its reader has validated. */
        ssize_t n = rh_json_value_len(value.ptr, value.len, &why);
        if (n <= 0) goto done;
        value.len = (uint32_t)n;
        int rc = rh_hub_transcode_value(RH_HUB_JSON, value, RH_HUB_MSGPACK, &out);
        RH_ASSERT(rc == 0 || rc == -EPROTO);
        if (rc < 0) {
            RH_ASSERT(out->len == 1);
            goto done;
        }
        check_msgpack(out, 1);
        struct rh_buf *json = rh_buf_new(0);
        RH_ASSERT(rh_hub_transcode_value(RH_HUB_MSGPACK, tail(out, 1), RH_HUB_JSON, &json) == 0);
        check_json(json, 0);
        check_json_fixed_point(tail(json, 0));
        rh_buf_unref(json);
    } else {
        int rc = rh_hub_transcode_value(RH_HUB_MSGPACK, value, RH_HUB_JSON, &out);
        RH_ASSERT(rc == 0 || rc == -EPROTO);
        if (rc < 0) {
            RH_ASSERT(out->len == 1);
            goto done;
        }
        RH_ASSERT(rh_hub_msgpack_value_len(value.ptr, value.len, &why) == (ssize_t)value.len);
        check_json(out, 1);
        check_json_fixed_point(tail(out, 1));
    }
done:
    rh_buf_unref(out);
    return 0;
}
