/* tests/unit/test_hub_msgpack.c - the "messagepack" hub protocol: the spec's worked examples
 * (§12 B-F) byte for byte both ways, VarInt prefixes, every int and str width, element counts,
 * malformed and oversized input, input split at every byte, pipelined messages. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "tests/harness/check.h"
#include "transports/hub_msgpack.h"

#define BIG_BYTES 20000

static struct rh_hub_msg msg;
static const char *reason;

static ssize_t parse_hex(const char *text, uint32_t max_bytes)
{
    static uint8_t bytes[4096];
    size_t n = rh_test_unhex(text, bytes);
    reason = NULL;
    return rh_hub_msgpack_parse(bytes, n, max_bytes, &msg, &reason);
}

static bool span_is(struct rh_span s, const char *hex_text)
{
    uint8_t bytes[256];
    size_t n = rh_test_unhex(hex_text, bytes);
    return s.len == n && memcmp(s.ptr, bytes, n) == 0;
}

static bool buf_is(const struct rh_buf *b, const char *hex_text)
{
    uint8_t bytes[256];
    size_t n = rh_test_unhex(hex_text, bytes);
    return b->len == n && memcmp(b->data, bytes, n) == 0;
}

/* Every strict prefix asks for more; the whole parses, taking every byte. */
static void check_every_split(const uint8_t *data, size_t len)
{
    struct rh_hub_msg m;
    const char *why;
    unsigned bad = 0;
    for (size_t cut = 0; cut < len; cut++)
        if (rh_hub_msgpack_parse(data, cut, UINT32_MAX, &m, &why) != -EAGAIN) bad++;
    CHECK_EQ(bad, 0);
    CHECK_EQ(rh_hub_msgpack_parse(data, len, UINT32_MAX, &m, &why), len);
}

static void check_split_hex(const char *text)
{
    uint8_t bytes[4096];
    check_every_split(bytes, rh_test_unhex(text, bytes));
}

static void test_example_b(void)
{
    /* Client ping, then the 5-element invocation Add(40, 2). */
    CHECK_EQ(parse_hex("02 91 06", 32768), 3);
    CHECK_EQ(msg.type, RH_HUB_PING);
    CHECK_EQ(msg.codec, RH_HUB_MSGPACK);

    CHECK_EQ(parse_hex("0c 95 01 80 a1 30 a3 41 64 64 92 28 02", 32768), 13);
    CHECK_EQ(msg.type, RH_HUB_INVOCATION);
    CHECK(rh_span_eq_str(msg.invocation_id, "0"));
    CHECK(rh_span_eq_str(msg.target, "Add"));
    CHECK_EQ(msg.arg_count, 2);
    CHECK(span_is(msg.args[0], "28"));
    CHECK(span_is(msg.args[1], "02"));
    CHECK_EQ(msg.stream_id_count, 0);

    /* The server's completions. */
    struct rh_buf *out = rh_buf_new(0);
    rh_hub_msgpack_write_completion(&out, rh_span_make("0", 1), RH_HUB_RESULT_VALUE,
                                    rh_span_make("\x2a", 1));
    CHECK(buf_is(out, "07 95 03 80 a1 30 03 2a"));
    out->len = 0;
    rh_hub_msgpack_write_completion(&out, rh_span_make("0", 1), RH_HUB_RESULT_VALUE,
                                    rh_span_make("\xc0", 1));
    CHECK(buf_is(out, "07 95 03 80 a1 30 03 c0"));
    out->len = 0;
    rh_hub_msgpack_write_completion(&out, rh_span_make("0", 1), RH_HUB_RESULT_VALUE,
                                    rh_span_make(NULL, 0));
    CHECK(buf_is(out, "07 95 03 80 a1 30 03 c0"));
    out->len = 0;
    rh_hub_msgpack_write_completion(&out, rh_span_make("0", 1), RH_HUB_RESULT_VOID,
                                    rh_span_make(NULL, 0));
    CHECK(buf_is(out, "06 94 03 80 a1 30 02"));
    out->len = 0;
    rh_hub_msgpack_write_completion(&out, rh_span_make("1", 1), RH_HUB_RESULT_ERROR,
                                    rh_span_make("boom", 4));
    CHECK(buf_is(out, "0b 95 03 80 a1 31 01 a4 62 6f 6f 6d"));
    out->len = 0;
    rh_hub_msgpack_write_ping(&out);
    CHECK(buf_is(out, "02 91 06"));
    rh_buf_unref(out);

    /* ... and they parse back. */
    CHECK_EQ(parse_hex("07 95 03 80 a1 30 03 2a", 32768), 8);
    CHECK_EQ(msg.type, RH_HUB_COMPLETION);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_VALUE);
    CHECK(span_is(msg.result, "2a"));
    CHECK_EQ(parse_hex("07 95 03 80 a1 30 03 c0", 32768), 8);
    CHECK(span_is(msg.result, "c0"));
    CHECK_EQ(parse_hex("06 94 03 80 a1 30 02", 32768), 7);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_VOID);
    CHECK_EQ(msg.result.len, 0);
    CHECK_EQ(parse_hex("0b 95 03 80 a1 31 01 a4 62 6f 6f 6d", 32768), 12);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_ERROR);
    CHECK(rh_span_eq_str(msg.invocation_id, "1"));
    CHECK(rh_span_eq_str(msg.error, "boom"));

    /* A 6-element invocation is what this server writes. */
    out = rh_buf_new(0);
    struct rh_span args[2] = {rh_span_make("\x28", 1), rh_span_make("\x02", 1)};
    rh_hub_msgpack_write_invocation(&out, rh_span_make("0", 1), rh_span_make("Add", 3), args, 2);
    CHECK(buf_is(out, "0d 96 01 80 a1 30 a3 41 64 64 92 28 02 90"));
    rh_buf_unref(out);

    check_split_hex("0c 95 01 80 a1 30 a3 41 64 64 92 28 02");
    check_split_hex("0b 95 03 80 a1 31 01 a4 62 6f 6f 6d");
}

static const char example_c[] = "18 96 01 80 c0 ae 52 65 63 65 69 76 65 4d 65 73 73 61 67 65"
                                " 91 a2 68 69 90";

static void test_example_c(void)
{
    struct rh_buf *out = rh_buf_new(0);
    struct rh_span arg = rh_span_make("\xa2hi", 3);
    rh_hub_msgpack_write_invocation(&out, rh_span_make(NULL, 0), rh_span_make("ReceiveMessage", 14),
                                    &arg, 1);
    CHECK(buf_is(out, example_c));
    rh_buf_unref(out);

    CHECK_EQ(parse_hex(example_c, 32768), 25);
    CHECK_EQ(msg.type, RH_HUB_INVOCATION);
    CHECK_EQ(msg.invocation_id.len, 0);
    CHECK(rh_span_eq_str(msg.target, "ReceiveMessage"));
    CHECK_EQ(msg.arg_count, 1);
    CHECK(span_is(msg.args[0], "a2 68 69"));
    CHECK_EQ(msg.stream_id_count, 0);

    uint8_t text[8];
    CHECK_EQ(rh_hub_msgpack_arg_string(&msg, 0, text, sizeof(text)), 2);
    CHECK(memcmp(text, "hi", 2) == 0);
    CHECK_EQ(rh_hub_msgpack_arg_string(&msg, 0, text, 1), -EMSGSIZE);
    CHECK_EQ(rh_hub_msgpack_arg_string(&msg, 1, text, sizeof(text)), -ENOENT);
    CHECK_EQ(parse_hex("0c 95 01 80 a1 30 a3 41 64 64 92 28 02", 32768), 13);
    CHECK_EQ(rh_hub_msgpack_arg_string(&msg, 0, text, sizeof(text)), -EINVAL);

    check_split_hex(example_c);
}

static void test_example_d(void)
{
    uint8_t item[202] = {0xd9, 0xc8};
    memset(item + 2, 'a', 200);
    struct rh_buf *out = rh_buf_new(0);
    rh_hub_msgpack_write_stream_item(&out, rh_span_make("4", 1), rh_span_make(item, 202));
    CHECK_EQ(out->len, 209);
    CHECK(memcmp(out->data, "\xcf\x01\x94\x02\x80\xa1\x34\xd9\xc8", 9) == 0);
    CHECK(memcmp(out->data + 7, item, 202) == 0);

    const char *why;
    CHECK_EQ(rh_hub_msgpack_parse(out->data, out->len, 32768, &msg, &why), 209);
    CHECK_EQ(msg.type, RH_HUB_STREAM_ITEM);
    CHECK(rh_span_eq_str(msg.invocation_id, "4"));
    CHECK_EQ(msg.result.len, 202);
    CHECK(msg.result.ptr == out->data + 7);
    check_every_split(out->data, out->len);
    rh_buf_unref(out);
}

static void test_example_e(void)
{
    struct rh_buf *out = rh_buf_new(0);
    rh_hub_msgpack_write_ack(&out, 5);
    CHECK(buf_is(out, "03 92 08 05"));
    out->len = 0;
    rh_hub_msgpack_write_sequence(&out, 1);
    CHECK(buf_is(out, "03 92 09 01"));
    rh_buf_unref(out);

    CHECK_EQ(parse_hex("03 92 08 05", 32768), 4);
    CHECK_EQ(msg.type, RH_HUB_ACK);
    CHECK_EQ(msg.sequence_id, 5);
    CHECK_EQ(parse_hex("03 92 09 01", 32768), 4);
    CHECK_EQ(msg.type, RH_HUB_SEQUENCE);
    CHECK_EQ(msg.sequence_id, 1);
    CHECK_EQ(parse_hex("04 92 08 cc 24", 32768), 5);
    CHECK_EQ(msg.type, RH_HUB_ACK);
    CHECK_EQ(msg.sequence_id, 36);
}

static void test_example_f(void)
{
    CHECK_EQ(parse_hex("03 92 07 c0", 32768), 4);
    CHECK_EQ(msg.type, RH_HUB_CLOSE);
    CHECK_EQ(msg.error.len, 0);
    CHECK(!msg.allow_reconnect);
    CHECK_EQ(parse_hex("04 93 07 c0 c2", 32768), 5);
    CHECK_EQ(msg.type, RH_HUB_CLOSE);
    CHECK(!msg.allow_reconnect);
    CHECK_EQ(parse_hex("07 93 07 a3 78 79 7a c3", 32768), 8);
    CHECK(rh_span_eq_str(msg.error, "xyz"));
    CHECK(msg.allow_reconnect);

    struct rh_buf *out = rh_buf_new(0);
    rh_hub_msgpack_write_close(&out, rh_span_make(NULL, 0), false);
    CHECK(buf_is(out, "04 93 07 c0 c2"));
    out->len = 0;
    rh_hub_msgpack_write_close(&out, rh_span_make("xyz", 3), true);
    CHECK(buf_is(out, "07 93 07 a3 78 79 7a c3"));
    rh_buf_unref(out);

    check_split_hex("07 93 07 a3 78 79 7a c3");
    check_split_hex("04 92 08 cc 24");
}

/* A Ping with one trailing bin element, making a body of exactly @body_len bytes (>= 4). */
static size_t make_padded_ping(uint8_t *out, uint32_t body_len)
{
    size_t n = 0;
    for (uint32_t v = body_len;; v >>= 7) {
        out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f) break;
    }
    out[n++] = 0x92;
    out[n++] = 0x06;
    uint32_t pad = body_len - 2;
    if (pad - 2 <= 0xff) {
        out[n++] = 0xc4;
        out[n++] = (uint8_t)(pad - 2);
        pad -= 2;
    } else {
        out[n++] = 0xc5;
        out[n++] = (uint8_t)((pad - 3) >> 8);
        out[n++] = (uint8_t)(pad - 3);
        pad -= 3;
    }
    memset(out + n, 0x55, pad);
    return n + pad;
}

static void test_varint(void)
{
    static uint8_t big[BIG_BYTES];
    const char *why;
    CHECK_EQ(parse_hex("00", 32768), -EPROTO);
    CHECK_EQ(parse_hex("80 00", 32768), -EPROTO); /* a long way to write 0 is still 0 */
    CHECK_EQ(parse_hex("80", 32768), -EAGAIN);
    CHECK_EQ(parse_hex("ff ff ff ff", 32768), -EAGAIN);
    CHECK_EQ(parse_hex("ff ff ff ff 07", UINT32_MAX), -EAGAIN); /* 2^31 - 1: waits for it */
    CHECK_EQ(parse_hex("ff ff ff ff 07", 1 << 20), -EMSGSIZE);  /* ... unless over the limit */
    CHECK_EQ(parse_hex("ff ff ff ff 08", UINT32_MAX), -EPROTO);
    CHECK_EQ(parse_hex("ff ff ff ff 0f", UINT32_MAX), -EPROTO);
    CHECK_EQ(parse_hex("ff ff ff ff ff 01", UINT32_MAX), -EPROTO);
    CHECK_EQ(parse_hex("80 80 80 80 00", UINT32_MAX), -EPROTO);

    struct {
        uint32_t body_len;
        size_t prefix_len;
    } cases[] = {{4, 1}, {127, 1}, {128, 2}, {207, 2}, {5248, 2}, {16383, 2}, {16384, 3}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = make_padded_ping(big, cases[i].body_len);
        CHECK_EQ(n, cases[i].body_len + cases[i].prefix_len);
        CHECK_EQ(rh_hub_msgpack_parse(big, n, UINT32_MAX, &msg, &why), n);
        CHECK_EQ(msg.type, RH_HUB_PING);
        /* The limit is on the body: exactly at it passes, one byte over fails at once. */
        CHECK_EQ(rh_hub_msgpack_parse(big, n, cases[i].body_len, &msg, &why), n);
        CHECK_EQ(rh_hub_msgpack_parse(big, n, cases[i].body_len - 1, &msg, &why), -EMSGSIZE);
        CHECK_EQ(rh_hub_msgpack_parse(big, cases[i].prefix_len, cases[i].body_len - 1, &msg, &why),
                 -EMSGSIZE);
        CHECK_EQ(rh_hub_msgpack_parse(big, n - 1, UINT32_MAX, &msg, &why), -EAGAIN);
    }
    CHECK(memcmp(big, "\x80\x80\x01", 3) == 0);
    check_every_split(big, make_padded_ping(big, 300));
}

static void test_int_widths(void)
{
    /* 36 as every int form, as a sequence id; and the message type in wide forms. */
    const char *forms[] = {"24",
                           "cc 24",
                           "cd 00 24",
                           "ce 00 00 00 24",
                           "cf 00 00 00 00 00 00 00 24",
                           "d0 24",
                           "d1 00 24",
                           "d2 00 00 00 24",
                           "d3 00 00 00 00 00 00 00 24"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char text[128];
        size_t len = (strlen(forms[i]) + 1) / 3;
        snprintf(text, sizeof(text), "%02zx 92 08 %s", len + 2, forms[i]);
        CHECK_EQ(parse_hex(text, 32768), len + 3);
        CHECK_EQ(msg.type, RH_HUB_ACK);
        CHECK_EQ(msg.sequence_id, 36);
        snprintf(text, sizeof(text), "%02zx 92 %s 05", len + 2, forms[i]);
        CHECK_EQ(parse_hex(text, 32768), len + 3);
        CHECK_EQ(msg.type, RH_HUB_UNKNOWN); /* 36 is no type we know */
    }
    CHECK_EQ(parse_hex("04 92 cc 09 05", 32768), 5);
    CHECK_EQ(msg.type, RH_HUB_SEQUENCE);
    CHECK_EQ(parse_hex("05 92 d1 00 06 05", 32768), 6);
    CHECK_EQ(msg.type, RH_HUB_PING);
    CHECK_EQ(parse_hex("03 92 08 ff", 32768), 4);
    CHECK_EQ(msg.sequence_id, -1);
    CHECK_EQ(parse_hex("04 92 08 d0 dc", 32768), 5);
    CHECK_EQ(msg.sequence_id, -36);
    CHECK_EQ(parse_hex("0b 92 08 d3 80 00 00 00 00 00 00 00", 32768), 12);
    CHECK_EQ(msg.sequence_id, INT64_MIN);
    CHECK_EQ(parse_hex("0b 92 08 cf 7f ff ff ff ff ff ff ff", 32768), 12);
    CHECK_EQ(msg.sequence_id, INT64_MAX);
    CHECK_EQ(parse_hex("0b 92 08 cf 80 00 00 00 00 00 00 00", 32768), -EPROTO);
    CHECK_EQ(parse_hex("0b 92 cf ff ff ff ff ff ff ff ff 05", 32768), 12);
    CHECK_EQ(msg.type, RH_HUB_UNKNOWN);
    CHECK_EQ(parse_hex("03 92 08 c0", 32768), -EPROTO);
    CHECK_EQ(parse_hex("06 92 08 cb 00 00 00", 32768), -EPROTO);
    CHECK_EQ(parse_hex("03 92 ff 05", 32768), 4);
    CHECK_EQ(msg.type, RH_HUB_UNKNOWN);
    CHECK_EQ(parse_hex("03 92 00 05", 32768), 4);
    CHECK_EQ(msg.type, RH_HUB_UNKNOWN);
}

static void test_str_widths(void)
{
    const char *targets[] = {"a3 41 64 64", "d9 03 41 64 64", "da 00 03 41 64 64",
                             "db 00 00 00 03 41 64 64"};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        char text[128];
        size_t len = (strlen(targets[i]) + 1) / 3;
        snprintf(text, sizeof(text), "%02zx 95 01 80 d9 01 37 %s 90", len + 7, targets[i]);
        CHECK_EQ(parse_hex(text, 32768), len + 8);
        CHECK_EQ(msg.type, RH_HUB_INVOCATION);
        CHECK(rh_span_eq_str(msg.target, "Add"));
        CHECK(rh_span_eq_str(msg.invocation_id, "7"));
        CHECK_EQ(msg.arg_count, 0);
    }
}

static void test_invocations(void)
{
    /* Invocation ids: nil and "" both mean none; a str is taken as it is. */
    CHECK_EQ(parse_hex("07 95 01 80 c0 a1 41 90", 32768), 8);
    CHECK_EQ(msg.invocation_id.len, 0);
    CHECK_EQ(parse_hex("07 95 01 80 a0 a1 41 90", 32768), 8);
    CHECK_EQ(msg.invocation_id.len, 0);
    CHECK_EQ(parse_hex("07 95 01 80 c3 a1 41 90", 32768), -EPROTO);

    /* 6 elements with stream ids; nil stream ids; extra elements after them. */
    CHECK_EQ(parse_hex("0f 96 01 80 a1 31 a1 41 91 c0 92 a2 73 31 a1 32", 32768), 16);
    CHECK_EQ(msg.arg_count, 1);
    CHECK(span_is(msg.args[0], "c0"));
    CHECK_EQ(msg.stream_id_count, 2);
    CHECK(rh_span_eq_str(msg.stream_ids[0], "s1"));
    CHECK(rh_span_eq_str(msg.stream_ids[1], "2"));
    CHECK_EQ(parse_hex("09 96 01 80 a1 31 a1 41 90 c0", 32768), 10);
    CHECK_EQ(msg.stream_id_count, 0);
    CHECK_EQ(parse_hex("0a 97 01 80 a1 31 a1 41 90 90 c3", 32768), 11);
    CHECK_EQ(msg.type, RH_HUB_INVOCATION);
    CHECK_EQ(parse_hex("0b 98 01 80 a1 31 a1 41 90 90 c3 81 a1 6b 01", 32768), -EPROTO);
    CHECK_EQ(parse_hex("0e 98 01 80 a1 31 a1 41 90 90 c3 81 a1 6b 01", 32768), 15);
    CHECK_EQ(parse_hex("09 96 01 80 a1 31 a1 41 90 80", 32768), -EPROTO);
    CHECK_EQ(parse_hex("0a 96 01 80 a1 31 a1 41 90 91 01", 32768), -EPROTO);
    CHECK_EQ(parse_hex("12 96 01 80 a1 31 a1 41 90 99 a0 a0 a0 a0 a0 a0 a0 a0 a0", 32768),
             -EMSGSIZE);
    CHECK_EQ(parse_hex("11 96 01 80 a1 31 a1 41 90 98 a0 a0 a0 a0 a0 a0 a0 a0", 32768), 18);
    CHECK_EQ(msg.stream_id_count, 8);

    /* Headers are a map of strings, ignored; anything else is refused. */
    CHECK_EQ(parse_hex("0b 95 01 81 a1 6b a1 76 c0 a1 41 90", 32768), 12);
    CHECK_EQ(msg.type, RH_HUB_INVOCATION);
    CHECK_EQ(parse_hex("07 95 01 90 c0 a1 41 90", 32768), -EPROTO);
    CHECK_EQ(parse_hex("07 95 01 c0 c0 a1 41 90", 32768), -EPROTO);
    CHECK_EQ(parse_hex("0a 95 01 81 a1 6b c0 c0 a1 41 90", 32768), 11);
    CHECK_EQ(parse_hex("0a 95 01 81 01 a1 76 c0 a1 41 90", 32768), -EPROTO);
    CHECK_EQ(parse_hex("0a 95 01 81 a1 6b 01 c0 a1 41 90", 32768), -EPROTO);

    /* Stream invocations need an id; targets must be non-empty strs; arguments an array. */
    CHECK_EQ(parse_hex("08 95 04 80 a1 39 a1 41 90", 32768), 9);
    CHECK_EQ(msg.type, RH_HUB_STREAM_INVOCATION);
    CHECK_EQ(parse_hex("07 95 04 80 c0 a1 41 90", 32768), -EPROTO);
    CHECK_EQ(parse_hex("06 95 01 80 c0 a0 90", 32768), -EPROTO);
    CHECK_EQ(parse_hex("06 95 01 80 c0 05 90", 32768), -EPROTO);
    CHECK_EQ(parse_hex("07 95 01 80 c0 a1 41 80", 32768), -EPROTO);
    CHECK_EQ(parse_hex("07 95 01 80 c0 a1 41 c0", 32768), -EPROTO);
    CHECK_EQ(parse_hex("06 94 01 80 c0 a1 41", 32768), -EPROTO);

    /* Argument count limit, and every kind of value as an argument. */
    uint8_t bytes[64] = {0x29, 0x95, 0x01, 0x80, 0xc0, 0xa1, 0x41, 0xdc, 0x00, 32};
    memset(bytes + 10, 0x07, 32);
    CHECK_EQ(rh_hub_msgpack_parse(bytes, 42, 32768, &msg, &reason), 42);
    CHECK_EQ(msg.arg_count, 32);
    bytes[0] = 0x2a;
    bytes[9] = 33;
    bytes[42] = 0x07;
    CHECK_EQ(rh_hub_msgpack_parse(bytes, 43, 32768, &msg, &reason), -EMSGSIZE);
    CHECK_EQ(parse_hex("2a 95 01 80 c0 a1 41 9b c0 c2 c3 ca 3f 80 00 00 cb 3f f0 00 00 00 00 00 00"
                       " c4 01 ff d4 01 02 c7 01 05 aa 92 01 02 81 a1 6b 90 e0",
                       32768),
             43);
    CHECK_EQ(msg.arg_count, 11);
    CHECK(span_is(msg.args[3], "ca 3f 80 00 00"));
    CHECK(span_is(msg.args[5], "c4 01 ff"));
    CHECK(span_is(msg.args[6], "d4 01 02"));
    CHECK(span_is(msg.args[7], "c7 01 05 aa"));
    CHECK(span_is(msg.args[9], "81 a1 6b 90"));
    CHECK(span_is(msg.args[10], "e0"));
}

static void test_other_types(void)
{
    /* Stream items need an item and an id. */
    CHECK_EQ(parse_hex("06 94 02 80 a1 31 c0", 32768), 7);
    CHECK_EQ(msg.type, RH_HUB_STREAM_ITEM);
    CHECK(span_is(msg.result, "c0"));
    CHECK_EQ(parse_hex("05 93 02 80 a1 31", 32768), -EPROTO);
    CHECK_EQ(parse_hex("05 94 02 80 c0 01", 32768), -EPROTO);

    /* Completion kinds, counts and trailing elements. */
    CHECK_EQ(parse_hex("06 94 03 80 a1 31 04", 32768), -EPROTO);
    CHECK_EQ(parse_hex("06 94 03 80 a1 31 00", 32768), -EPROTO);
    CHECK_EQ(parse_hex("06 94 03 80 a1 31 01", 32768), -EPROTO);
    CHECK_EQ(parse_hex("06 94 03 80 a1 31 03", 32768), -EPROTO);
    CHECK_EQ(parse_hex("07 95 03 80 a1 31 01 c0", 32768), -EPROTO);
    CHECK_EQ(parse_hex("07 95 03 80 a1 31 01 a0", 32768), 8);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_ERROR);
    CHECK_EQ(parse_hex("07 95 03 80 a1 31 02 c3", 32768), 8);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_VOID);
    CHECK_EQ(parse_hex("08 96 03 80 a1 31 03 01 02", 32768), 9);
    CHECK(span_is(msg.result, "01"));
    CHECK_EQ(parse_hex("05 94 03 80 a0 02", 32768), -EPROTO);
    CHECK_EQ(parse_hex("05 94 03 80 c0 02", 32768), -EPROTO);
    CHECK_EQ(parse_hex("05 93 03 80 a1 31", 32768), -EPROTO);
    CHECK_EQ(parse_hex("07 94 03 80 a1 31 a1 32", 32768), -EPROTO);

    /* Cancel, ping with extras, close variants. */
    CHECK_EQ(parse_hex("05 93 05 80 a1 31", 32768), 6);
    CHECK_EQ(msg.type, RH_HUB_CANCEL_INVOCATION);
    CHECK(rh_span_eq_str(msg.invocation_id, "1"));
    CHECK_EQ(parse_hex("03 92 05 80", 32768), -EPROTO);
    CHECK_EQ(parse_hex("04 93 06 01 02", 32768), 5);
    CHECK_EQ(msg.type, RH_HUB_PING);
    CHECK_EQ(parse_hex("02 91 07", 32768), -EPROTO);
    CHECK_EQ(parse_hex("04 93 07 c0 01", 32768), -EPROTO);
    CHECK_EQ(parse_hex("03 92 07 01", 32768), -EPROTO);
    CHECK_EQ(parse_hex("05 94 07 c0 c3 c0", 32768), 6);
    CHECK(msg.allow_reconnect);
    CHECK_EQ(parse_hex("02 91 08", 32768), -EPROTO);

    /* Unknown types parse, their elements checked, and are left to the caller to ignore. */
    CHECK_EQ(parse_hex("06 93 2a a1 78 81 01 02", 32768), -EPROTO);
    CHECK_EQ(parse_hex("07 93 2a a1 78 81 01 02", 32768), 8);
    CHECK_EQ(msg.type, RH_HUB_UNKNOWN);
    CHECK_EQ(parse_hex("04 93 2a c1 c0", 32768), -EPROTO);
}

static void test_malformed(void)
{
    CHECK_EQ(parse_hex("01 06", 32768), -EPROTO);
    CHECK(reason != NULL);
    CHECK_EQ(parse_hex("01 90", 32768), -EPROTO);
    CHECK_EQ(parse_hex("01 c1", 32768), -EPROTO);
    CHECK_EQ(parse_hex("02 81 06", 32768), -EPROTO);
    CHECK_EQ(parse_hex("03 91 a1 36", 32768), -EPROTO);
    CHECK_EQ(parse_hex("03 92 07 c0", 32768), 4);
    CHECK_EQ(parse_hex("03 93 07 c0", 32768), -EPROTO);             /* array runs past body */
    CHECK_EQ(parse_hex("04 91 06 c0", 32768), -EAGAIN);             /* body not all there */
    CHECK_EQ(parse_hex("03 91 06 c0", 32768), -EPROTO);             /* a byte after the array */
    CHECK_EQ(parse_hex("08 94 02 80 a1 31 a5 41", 32768), -EAGAIN); /* body not all there */
    CHECK_EQ(parse_hex("07 94 02 80 a1 31 a5 41", 32768), -EPROTO);
    CHECK_EQ(parse_hex("06 94 02 80 a1 31 dd", 32768), -EPROTO);
    CHECK_EQ(parse_hex("0a 94 02 80 a1 31 dd ff ff ff ff", 32768), -EPROTO);
    CHECK_EQ(parse_hex("0a 94 02 80 a1 31 df ff ff ff ff", 32768), -EPROTO);
    CHECK_EQ(parse_hex("0a 94 02 80 a1 31 c6 ff ff ff ff", 32768), -EPROTO);
    CHECK_EQ(parse_hex("0a 94 02 80 a1 31 c9 00 00 00 01", 32768), -EPROTO);
    CHECK_EQ(parse_hex("0b 94 02 80 a1 31 c9 00 00 00 01 05", 32768), -EPROTO);
    CHECK_EQ(parse_hex("0c 94 02 80 a1 31 c9 00 00 00 01 05 aa", 32768), 13);
    CHECK_EQ(parse_hex("07 94 02 80 a1 31 d4 05", 32768), -EPROTO);
    CHECK_EQ(parse_hex("08 94 02 80 a1 31 d4 05 aa", 32768), 9);

    /* Depth: the message array is 1, the arguments 2, an argument's own containers 3 and up. */
    static uint8_t deep[128];
    for (uint32_t nested = 60; nested <= 64; nested++) {
        uint32_t n = 0;
        deep[n++] = (uint8_t)(8 + nested);
        memcpy(deep + n, "\x95\x01\x80\xc0\xa1\x41\x91", 7);
        n += 7;
        for (uint32_t i = 0; i < nested; i++)
            deep[n++] = 0x91;
        deep[n++] = 0xc0;
        ssize_t rc = rh_hub_msgpack_parse(deep, n, 32768, &msg, &reason);
        if (nested <= RH_HUB_MSGPACK_DEPTH_MAX - 2)
            CHECK_EQ(rc, n);
        else
            CHECK_EQ(rc, -EPROTO);
    }
}

static void test_value_len(void)
{
    const char *why;
    uint8_t bytes[256];
    size_t n = rh_test_unhex(
        "92 81 a1 6b c4 02 01 02 d8 07 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f", bytes);
    CHECK_EQ(rh_hub_msgpack_value_len(bytes, n, &why), n);
    CHECK_EQ(rh_hub_msgpack_value_len(bytes, n - 1, &why), -EPROTO);
    CHECK_EQ(rh_hub_msgpack_value_len(bytes, n + 3, &why), n);
    CHECK_EQ(rh_hub_msgpack_value_len(bytes, 0, &why), -EPROTO);

    memset(bytes, 0x91, 64);
    bytes[64] = 0x01;
    CHECK_EQ(rh_hub_msgpack_value_len(bytes, 65, &why), 65);
    memset(bytes, 0x91, 65);
    bytes[65] = 0x01;
    CHECK_EQ(rh_hub_msgpack_value_len(bytes, 66, &why), -EPROTO);

    struct rh_hub_msgpack_head h;
    CHECK_EQ(
        rh_hub_msgpack_read_head((const uint8_t *)"\xd3\xff\xff\xff\xff\xff\xff\xff\xfe", 9, &h),
        0);
    CHECK_EQ(h.kind, RH_HUB_MSGPACK_INT);
    CHECK_EQ(h.i, -2);
    CHECK_EQ(rh_hub_msgpack_read_head((const uint8_t *)"\xd1\x80\x00", 3, &h), 0);
    CHECK_EQ(h.i, -32768);
    CHECK_EQ(
        rh_hub_msgpack_read_head((const uint8_t *)"\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 9, &h),
        0);
    CHECK(h.kind == RH_HUB_MSGPACK_FLOAT64 && h.f == 1.0);
    CHECK_EQ(rh_hub_msgpack_read_head((const uint8_t *)"\xcb\x3f\xf0", 3, &h), -EPROTO);
    CHECK_EQ(rh_hub_msgpack_read_head((const uint8_t *)"\xc7\x01", 2, &h), -EPROTO);
}

static void test_pipelined(void)
{
    uint8_t bytes[256];
    size_t len = rh_test_unhex("02 91 06", bytes);
    len += rh_test_unhex(example_c, bytes + len);
    len += rh_test_unhex("0c 95 01 80 a1 30 a3 41 64 64 92 28 02 03 92 07 c0", bytes + len);
    enum rh_hub_type want[] = {RH_HUB_PING, RH_HUB_INVOCATION, RH_HUB_INVOCATION, RH_HUB_CLOSE};
    size_t at = 0, count = 0;
    while (at < len) {
        ssize_t n = rh_hub_msgpack_parse(bytes + at, len - at, 32768, &msg, &reason);
        if (n <= 0) break;
        CHECK_EQ(msg.type, want[count]);
        count++;
        at += (size_t)n;
    }
    CHECK_EQ(count, 4);
    CHECK_EQ(at, len);
    CHECK_EQ(rh_hub_msgpack_parse(bytes, 3 + 10, 32768, &msg, &reason), 3);
    CHECK_EQ(rh_hub_msgpack_parse(bytes + 3, 10, 32768, &msg, &reason), -EAGAIN);
}

static void test_big_write(void)
{
    /* A body past 16383 bytes gets a three-byte prefix; written and read back. */
    static uint8_t value[BIG_BYTES];
    value[0] = 0xc5;
    value[1] = (uint8_t)((BIG_BYTES - 3) >> 8);
    value[2] = (uint8_t)(BIG_BYTES - 3);
    struct rh_buf *out = rh_buf_new(0);
    rh_hub_msgpack_write_ping(&out);
    rh_hub_msgpack_write_invocation(&out, rh_span_make("id", 2), rh_span_make("T", 1),
                                    (struct rh_span[]){rh_span_make(value, BIG_BYTES)}, 1);
    uint32_t body_len = 1 + 1 + 1 + 3 + 2 + 1 + BIG_BYTES + 1;
    CHECK_EQ(out->len, 3 + 3 + body_len);
    CHECK_EQ(out->data[3], 0x80 | (body_len & 0x7f));
    CHECK_EQ(rh_hub_msgpack_parse(out->data + 3, out->len - 3, 32768, &msg, &reason), out->len - 3);
    CHECK_EQ(msg.arg_count, 1);
    CHECK_EQ(msg.args[0].len, BIG_BYTES);
    CHECK(msg.args[0].ptr == out->data + 3 + 3 + 9);
    CHECK(rh_span_eq_str(msg.invocation_id, "id"));
    CHECK_EQ(rh_hub_msgpack_parse(out->data + 3, out->len - 3, body_len - 1, &msg, &reason),
             -EMSGSIZE);
    rh_buf_unref(out);
}

int main(void)
{
    test_example_b();
    test_example_c();
    test_example_d();
    test_example_e();
    test_example_f();
    test_varint();
    test_int_widths();
    test_str_widths();
    test_invocations();
    test_other_types();
    test_malformed();
    test_value_len();
    test_pipelined();
    test_big_write();
    return rh_check_finish();
}
