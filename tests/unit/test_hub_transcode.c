/* tests/unit/test_hub_transcode.c - JSON <-> MessagePack values: a table each way (every int
 * width, floats, strings and escapes, binary, nesting, timestamps), what has no form on the
 * other side, round trips, and every JSON output checked by the JSON validator. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "tests/harness/check.h"
#include "transports/hub_msgpack.h"
#include "transports/hub_transcode.h"
#include "transports/json.h"

struct pair {
    const char *json;
    const char *msgpack; /* hex */
};

/* JSON in, MessagePack out. */
static const struct pair to_msgpack[] = {
    {"null", "c0"},
    {"true", "c3"},
    {"false", "c2"},
    {"0", "00"},
    {"127", "7f"},
    {"128", "cc 80"},
    {"255", "cc ff"},
    {"256", "cd 01 00"},
    {"65536", "ce 00 01 00 00"},
    {"4294967296", "cf 00 00 00 01 00 00 00 00"},
    {"9223372036854775807", "cf 7f ff ff ff ff ff ff ff"},
    {"-1", "ff"},
    {"-32", "e0"},
    {"-33", "d0 df"},
    {"-128", "d0 80"},
    {"-129", "d1 ff 7f"},
    {"-32769", "d2 ff ff 7f ff"},
    {"-2147483649", "d3 ff ff ff ff 7f ff ff ff"},
    {"-9223372036854775808", "d3 80 00 00 00 00 00 00 00"},
    {"0.1", "cb 3f b9 99 99 99 99 99 9a"},
    {"1e300", "cb 7e 37 e4 3c 88 00 75 9c"},
    {"-2.5", "cb c0 04 00 00 00 00 00 00"},
    {"1.0", "01"}, /* integral: an int, as the JS client would send it */
    {"1e3", "cd 03 e8"},
    {"-0.0", "00"},
    {"9223372036854775808", "cb 43 e0 00 00 00 00 00 00"}, /* past int64: a double */
    {"1e400", "cb 7f f0 00 00 00 00 00 00"},               /* JSON.parse's Infinity */
    {"\"\"", "a0"},
    {"\"hi\"", "a2 68 69"},
    {"\"a\\\"b\"", "a3 61 22 62"},
    {"\"\\u00e9\"", "a2 c3 a9"},
    {"\"\xc3\xa9\"", "a2 c3 a9"},
    {"\"\\ud83d\\ude00\"", "a4 f0 9f 98 80"},
    {"\"\\n\\u001e\"", "a2 0a 1e"},
    {"\"0123456789012345678901234567890123456789\"",
     "d9 28 30 31 32 33 34 35 36 37 38 39 30 31 32 33 34 35 36 37 38 39 30 31 32 33 34 35 36 37 "
     "38 39 30 31 32 33 34 35 36 37 38 39"},
    {"[]", "90"},
    {"{}", "80"},
    {"[1,[2,{}]]", "92 01 92 02 80"},
    {"{\"a\":1,\"b\":[true,null]}", "82 a1 61 01 a1 62 92 c3 c0"},
    {" { \"a\" : 1 , \"\\u0062\" : [ ] } \n", "82 a1 61 01 a1 62 90"},
};

/* MessagePack in, JSON out. */
static const struct pair to_json[] = {
    {"null", "c0"},
    {"false", "c2"},
    {"true", "c3"},
    {"127", "7f"},
    {"255", "cc ff"},
    {"65535", "cd ff ff"},
    {"4294967295", "ce ff ff ff ff"},
    {"18446744073709551615", "cf ff ff ff ff ff ff ff ff"},
    {"-32", "e0"},
    {"5", "d0 05"},
    {"-128", "d0 80"},
    {"-32768", "d1 80 00"},
    {"-2147483648", "d2 80 00 00 00"},
    {"-9223372036854775808", "d3 80 00 00 00 00 00 00 00"},
    {"0.1", "ca 3d cc cc cd"}, /* a float32 reads back as the same float32 */
    {"1", "ca 3f 80 00 00"},
    {"null", "ca 7f 80 00 00"},
    {"0.1", "cb 3f b9 99 99 99 99 99 9a"},
    {"1e+300", "cb 7e 37 e4 3c 88 00 75 9c"},
    {"3.141592653589793", "cb 40 09 21 fb 54 44 2d 18"},
    {"1.0000000000000002", "cb 3f f0 00 00 00 00 00 01"},
    {"-0", "cb 80 00 00 00 00 00 00 00"},
    {"null", "cb 7f f8 00 00 00 00 00 00"},
    {"null", "cb ff f0 00 00 00 00 00 00"},
    {"\"\"", "a0"},
    {"\"hi\"", "a2 68 69"},
    {"\"\xc3\xa9\"", "a2 c3 a9"},
    {"\"\xf0\x9f\x98\x80\"", "a4 f0 9f 98 80"},
    {"\"\\n\\u001e\\\"\"", "a3 0a 1e 22"},
    {"\"\\ufffd\"", "a1 ff"},
    {"\"abc\"", "d9 03 61 62 63"},
    {"\"abc\"", "da 00 03 61 62 63"},
    {"\"abc\"", "db 00 00 00 03 61 62 63"},
    {"\"\"", "c4 00"},
    {"\"/w==\"", "c4 01 ff"},
    {"\"/+4=\"", "c4 02 ff ee"},
    {"\"AQID\"", "c4 03 01 02 03"},
    {"\"YWJjZA==\"", "c5 00 04 61 62 63 64"},
    {"\"YWJjZA==\"", "c6 00 00 00 04 61 62 63 64"},
    {"[]", "90"},
    {"{}", "80"},
    {"[1,[2,{}]]", "dc 00 02 01 dd 00 00 00 02 02 de 00 00"},
    {"{\"a\":1,\"b\":[true,null]}", "82 a1 61 01 a1 62 92 c3 c0"},
    {"{\"1\":\"x\",\"-1\":\"y\",\"300\":1}", "83 01 a1 78 ff a1 79 cd 01 2c 01"},
    {"\"1970-01-01T00:00:00.000Z\"", "d6 ff 00 00 00 00"},
    {"\"2023-11-14T22:13:20.000Z\"", "d6 ff 65 53 f1 00"},
    {"\"2023-11-14T22:13:20.123Z\"", "d7 ff 1d 6f 34 54 65 53 f1 00"},
    {"\"1969-12-31T23:59:59.500Z\"", "c7 0c ff 1d cd 65 00 ff ff ff ff ff ff ff ff"},
    {"\"0000-01-01T00:00:00.000Z\"", "c7 0c ff 00 00 00 00 ff ff ff f1 86 8b 84 00"},
    {"\"+010000-01-01T00:00:00.000Z\"", "c7 0c ff 00 00 00 00 00 00 00 3a ff f4 41 80"},
    {"\"-000001-01-01T00:00:00.000Z\"", "c7 0c ff 00 00 00 00 ff ff ff f1 84 aa 50 80"},
    {"\"+275760-09-13T00:00:00.000Z\"", "c7 0c ff 00 00 00 00 00 00 07 db a8 21 80 00"},
    {"null", "c7 0c ff 00 00 00 00 00 00 07 db a8 21 80 01"},
};

/* MessagePack with no JSON form, or not one valid value. */
static const char *const msgpack_bad[] = {
    "c1",
    "",
    "92 01",
    "01 02",
    "81 c0 01",
    "81 92 01 02 01",
    "81 cb 3f f0 00 00 00 00 00 00 01",
    "d4 05 00",
    "c7 05 ff 00 00 00 00 00",
    "d7 ff ff ff ff ff 00 00 00 00", /* 1073741823 nanoseconds */
    "c7 0c ff 3b 9a ca 00 00 00 00 00 00 00 00 00",
    "d9 05 61",
};

static struct rh_span text_span(const char *s)
{
    return rh_span_make(s, (uint32_t)strlen(s));
}

static void test_json_to_msgpack(void)
{
    for (size_t i = 0; i < sizeof(to_msgpack) / sizeof(to_msgpack[0]); i++) {
        uint8_t want[256];
        size_t want_len = rh_test_unhex(to_msgpack[i].msgpack, want);
        struct rh_buf *out = rh_buf_copy("x", 1);
        CHECK_EQ(rh_json_value_len((const uint8_t *)to_msgpack[i].json, strlen(to_msgpack[i].json),
                                   NULL) > 0,
                 1);
        int rc = rh_hub_transcode_value(RH_HUB_JSON, text_span(to_msgpack[i].json), RH_HUB_MSGPACK,
                                        &out);
        CHECK_EQ(rc, 0);
        bool same = out->len == want_len + 1 && memcmp(out->data + 1, want, want_len) == 0;
        if (!same) fprintf(stderr, "JSON %s gave a different MessagePack\n", to_msgpack[i].json);
        CHECK(same);
        const char *why;
        CHECK_EQ(rh_hub_msgpack_value_len(out->data + 1, out->len - 1, &why), out->len - 1);
        rh_buf_unref(out);
    }
}

static void test_msgpack_to_json(void)
{
    for (size_t i = 0; i < sizeof(to_json) / sizeof(to_json[0]); i++) {
        uint8_t in[256];
        size_t in_len = rh_test_unhex(to_json[i].msgpack, in);
        struct rh_buf *out = rh_buf_copy("x", 1);
        int rc = rh_hub_transcode_value(RH_HUB_MSGPACK, rh_span_make(in, (uint32_t)in_len),
                                        RH_HUB_JSON, &out);
        CHECK_EQ(rc, 0);
        size_t want_len = strlen(to_json[i].json);
        bool same =
            out->len == want_len + 1 && memcmp(out->data + 1, to_json[i].json, want_len) == 0;
        if (!same)
            fprintf(stderr, "MessagePack %s gave %.*s, not %s\n", to_json[i].msgpack,
                    (int)out->len - 1, (const char *)out->data + 1, to_json[i].json);
        CHECK(same);
        CHECK_EQ(rh_json_value_len(out->data + 1, out->len - 1, NULL), out->len - 1);
        rh_buf_unref(out);
    }

    for (size_t i = 0; i < sizeof(msgpack_bad) / sizeof(msgpack_bad[0]); i++) {
        uint8_t in[256];
        size_t in_len = rh_test_unhex(msgpack_bad[i], in);
        struct rh_buf *out = rh_buf_copy("x", 1);
        int rc = rh_hub_transcode_value(RH_HUB_MSGPACK, rh_span_make(in, (uint32_t)in_len),
                                        RH_HUB_JSON, &out);
        if (in_len == 0) {
            CHECK_EQ(rc, 0); /* an empty span stays empty */
        } else {
            if (rc != -EPROTO) fprintf(stderr, "MessagePack %s was accepted\n", msgpack_bad[i]);
            CHECK_EQ(rc, -EPROTO);
        }
        CHECK_EQ(out->len, 1); /* nothing left behind */
        rh_buf_unref(out);
    }
}

/* Canonical texts (no spaces, shortest numbers, UTF-8 as it is) survive JSON -> MessagePack ->
 * JSON unchanged; canonical MessagePack (smallest forms) survives the other way round. */
static void test_round_trips(void)
{
    static const char *const texts[] = {
        "[1,-1,0.1,1e+300,-2.5e-300,\"h\xc3\xa9\",\"\xf0\x9f\x98\x80\",true,false,null]",
        "{\"a\":[true,false,null],\"b\":{\"c\":{}},\"\":[]}",
        "[9223372036854775807,-9223372036854775808,4294967296,-4294967296]",
        "\"line\\nbreak \\\" quote \\\\ and \\u001f\"",
        "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
        "{\"k\":\"v\",\"k\":\"w\"}",
        "123456.789",
        "5e-324",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct rh_buf *mp = rh_buf_new(0), *back = rh_buf_new(0), *again = rh_buf_new(0);
        CHECK_EQ(rh_hub_transcode_value(RH_HUB_JSON, text_span(texts[i]), RH_HUB_MSGPACK, &mp), 0);
        CHECK_EQ(rh_hub_transcode_value(RH_HUB_MSGPACK, rh_span_make(mp->data, mp->len),
                                        RH_HUB_JSON, &back),
                 0);
        bool same = back->len == strlen(texts[i]) && memcmp(back->data, texts[i], back->len) == 0;
        if (!same)
            fprintf(stderr, "%s came back as %.*s\n", texts[i], (int)back->len,
                    (const char *)back->data);
        CHECK(same);
        CHECK_EQ(rh_hub_transcode_value(RH_HUB_JSON, rh_span_make(back->data, back->len),
                                        RH_HUB_MSGPACK, &again),
                 0);
        CHECK(again->len == mp->len && memcmp(again->data, mp->data, mp->len) == 0);
        rh_buf_unref(mp);
        rh_buf_unref(back);
        rh_buf_unref(again);
    }
}

static void test_depth(void)
{
    static uint8_t deep[RH_HUB_MSGPACK_DEPTH_MAX + 2];
    static char text[2 * RH_HUB_MSGPACK_DEPTH_MAX + 8];
    memset(deep, 0x91, sizeof(deep));
    deep[RH_HUB_MSGPACK_DEPTH_MAX] = 0xc0;
    struct rh_buf *out = rh_buf_new(0);
    CHECK_EQ(rh_hub_transcode_value(RH_HUB_MSGPACK,
                                    rh_span_make(deep, RH_HUB_MSGPACK_DEPTH_MAX + 1), RH_HUB_JSON,
                                    &out),
             0);
    CHECK_EQ(out->len, 2 * RH_HUB_MSGPACK_DEPTH_MAX + 4);
    CHECK_EQ(rh_json_value_len(out->data, out->len, NULL), out->len);

    /* ... and straight back. */
    memcpy(text, out->data, out->len);
    out->len = 0;
    CHECK_EQ(rh_hub_transcode_value(RH_HUB_JSON,
                                    rh_span_make(text, 2 * RH_HUB_MSGPACK_DEPTH_MAX + 4),
                                    RH_HUB_MSGPACK, &out),
             0);
    CHECK(out->len == RH_HUB_MSGPACK_DEPTH_MAX + 1 && memcmp(out->data, deep, out->len) == 0);

    deep[RH_HUB_MSGPACK_DEPTH_MAX] = 0x91;
    deep[RH_HUB_MSGPACK_DEPTH_MAX + 1] = 0xc0;
    out->len = 0;
    CHECK_EQ(
        rh_hub_transcode_value(RH_HUB_MSGPACK, rh_span_make(deep, sizeof(deep)), RH_HUB_JSON, &out),
        -EPROTO);
    CHECK_EQ(out->len, 0);
    rh_buf_unref(out);
}

static void test_values(void)
{
    /* An Invocation's arguments, from a JSON client to MessagePack ones, then back. */
    const char *args_json[] = {"\"group\"", "[1,2.5]", "{\"x\":null}"};
    struct rh_span args[3], converted[3], back[3];
    for (int i = 0; i < 3; i++)
        args[i] = text_span(args_json[i]);
    struct rh_buf *mp = rh_buf_copy("prefix", 6);
    CHECK_EQ(rh_hub_transcode_values(RH_HUB_JSON, args, 3, RH_HUB_MSGPACK, &mp, converted), 0);
    CHECK_EQ(converted[0].len, 6);
    CHECK(converted[0].ptr == mp->data + 6);
    CHECK(memcmp(converted[1].ptr, "\x92\x01\xcb", 3) == 0);
    CHECK(converted[2].ptr + converted[2].len == mp->data + mp->len);
    CHECK(memcmp(converted[2].ptr, "\x81\xa1x\xc0", 4) == 0);

    struct rh_buf *json = rh_buf_new(0);
    CHECK_EQ(rh_hub_transcode_values(RH_HUB_MSGPACK, converted, 3, RH_HUB_JSON, &json, back), 0);
    for (int i = 0; i < 3; i++)
        CHECK(back[i].len == strlen(args_json[i]) &&
              memcmp(back[i].ptr, args_json[i], back[i].len) == 0);

    /* One bad value undoes the whole call. */
    converted[1] = rh_span_make("\xc1", 1);
    uint32_t before = json->len;
    CHECK_EQ(rh_hub_transcode_values(RH_HUB_MSGPACK, converted, 3, RH_HUB_JSON, &json, back),
             -EPROTO);
    CHECK_EQ(json->len, before);

    /* The same codec copies the bytes, whatever they are. */
    json->len = 0;
    CHECK_EQ(
        rh_hub_transcode_value(RH_HUB_MSGPACK, rh_span_make("\xc1\xc1", 2), RH_HUB_MSGPACK, &json),
        0);
    CHECK(json->len == 2 && memcmp(json->data, "\xc1\xc1", 2) == 0);
    json->len = 0;
    CHECK_EQ(rh_hub_transcode_value(RH_HUB_JSON, text_span(" [1] "), RH_HUB_JSON, &json), 0);
    CHECK_EQ(json->len, 5);
    rh_buf_unref(mp);
    rh_buf_unref(json);
}

int main(void)
{
    test_json_to_msgpack();
    test_msgpack_to_json();
    test_round_trips();
    test_depth();
    test_values();
    return rh_check_finish();
}
