/* tests/unit/test_hub_json.c - the handshake and the "json" hub protocol: every JSON example of
 * the spec (§2, §4, §12) and exactly what the JS 10.x client sends parse to the right fields;
 * writers match ASP.NET byte for byte; every validation failure is refused with a reason;
 * input fed in every prefix, pipelined records, the size limit exactly and one over it, and
 * escaped strings decoded into the message's scratch space. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "tests/harness/check.h"
#include "transports/hub_json.h"
#include "transports/json.h"

#define MAX_BYTES 32768u

static struct rh_hub_msg msg;

static ssize_t parse(const char *record);
static struct rh_span span_of(const char *s);
static bool span_is(struct rh_span s, const char *lit);
static bool in_scratch(struct rh_span s);
static bool buf_is(const struct rh_buf *buf, const char *want);
static void test_handshake(void);
static void test_handshake_replies(void);
static void test_js_client(void);
static void test_aspnet_forms(void);
static void test_tolerated(void);
static void test_refused(void);
static void build_invocation(char *out, size_t cap, uint32_t argc, uint32_t streams);
static void test_limits(void);
static void test_split_and_pipelined(void);
static void test_escapes(void);
static void test_writers(void);
static void test_round_trip(void);
static void test_arg_string(void);

int main(void)
{
    int64_t base = rh_alloc_live_bytes();
    test_handshake();
    test_handshake_replies();
    test_js_client();
    test_aspnet_forms();
    test_tolerated();
    test_refused();
    test_limits();
    test_split_and_pipelined();
    test_escapes();
    test_writers();
    test_round_trip();
    test_arg_string();
    CHECK_EQ(rh_alloc_live_bytes(), base);
    return rh_check_finish();
}

/* Parses @record (NUL-terminated, its 0x1E included) into the shared msg. */
static ssize_t parse(const char *record)
{
    const char *reason = NULL;
    ssize_t n =
        rh_hub_json_parse((const uint8_t *)record, strlen(record), MAX_BYTES, &msg, &reason);
    if (n < 0 && n != -EAGAIN) CHECK(reason != NULL);
    return n;
}

static struct rh_span span_of(const char *s)
{
    return rh_span_make(s, (uint32_t)strlen(s));
}

static bool span_is(struct rh_span s, const char *lit)
{
    return rh_span_eq_str(s, lit);
}

static bool in_scratch(struct rh_span s)
{
    return s.ptr >= msg.scratch && s.ptr + s.len <= msg.scratch + msg.scratch_used;
}

static bool buf_is(const struct rh_buf *buf, const char *want)
{
    bool ok = buf->len == strlen(want) && memcmp(buf->data, want, buf->len) == 0;
    if (!ok) fprintf(stderr, "got  %.*s\nwant %s\n", (int)buf->len, buf->data, want);
    return ok;
}

static void test_handshake(void)
{
    struct rh_hub_handshake hs;
    const char *reason = NULL;
    /* §12 Example A, byte for byte. */
    static const uint8_t example_a[] = {0x7b, 0x22, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x63,
                                        0x6f, 0x6c, 0x22, 0x3a, 0x22, 0x6a, 0x73, 0x6f,
                                        0x6e, 0x22, 0x2c, 0x22, 0x76, 0x65, 0x72, 0x73,
                                        0x69, 0x6f, 0x6e, 0x22, 0x3a, 0x31, 0x7d, 0x1e};
    CHECK_EQ(rh_hub_handshake_parse(example_a, sizeof(example_a), MAX_BYTES, &hs, &reason),
             sizeof(example_a));
    CHECK(strcmp(hs.protocol, "json") == 0);
    CHECK_EQ(hs.version, 1);
    for (size_t k = 0; k < sizeof(example_a); k++)
        CHECK_EQ(rh_hub_handshake_parse(example_a, k, MAX_BYTES, &hs, &reason), -EAGAIN);

    /* §12 Example B, with a Ping in the same read: only the request is consumed. */
    const char *b = "{\"protocol\":\"messagepack\",\"version\":1}\x1e\x02\x91\x06";
    CHECK_EQ(rh_hub_handshake_parse((const uint8_t *)b, strlen(b), MAX_BYTES, &hs, &reason),
             strlen(b) - 3);
    CHECK(strcmp(hs.protocol, "messagepack") == 0);

    /* Other property orders, unknown properties, escapes, whitespace. */
    const char *c = " {\"version\":2, \"x\":[1,{\"y\":null}], \"protocol\":\"js\\u006fn\"} \x1e";
    CHECK_EQ(rh_hub_handshake_parse((const uint8_t *)c, strlen(c), MAX_BYTES, &hs, &reason),
             strlen(c));
    CHECK(strcmp(hs.protocol, "json") == 0);
    CHECK_EQ(hs.version, 2);

    const char *name31 = "{\"protocol\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"version\":1}\x1e";
    CHECK_EQ(
        rh_hub_handshake_parse((const uint8_t *)name31, strlen(name31), MAX_BYTES, &hs, &reason),
        strlen(name31));
    CHECK_EQ(strlen(hs.protocol), 31);

    static const char *const bad[] = {
        "{\"version\":1}\x1e",
        "{\"protocol\":\"json\"}\x1e",
        "{\"protocol\":\"json\",\"version\":\"1\"}\x1e",
        "{\"protocol\":\"json\",\"version\":1.5}\x1e",
        "{\"protocol\":\"json\",\"version\":1e0}\x1e",
        "{\"protocol\":\"json\",\"version\":null}\x1e",
        "{\"protocol\":5,\"version\":1}\x1e",
        "{\"protocol\":null,\"version\":1}\x1e",
        "{\"protocol\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"version\":1}\x1e",
        "{\"protocol\":\"js\\u0000n\",\"version\":1}\x1e",
        "{\"protocol\":\"json\",\"version\":99999999999999999999}\x1e",
        "[\"json\",1]\x1e",
        "{\"protocol\":\"json\",\"version\":1\x1e",
        "{\"protocol\":\"json\",\"version\":1}x\x1e",
        "\x1e",
        "\xef\xbb\xbf{\"protocol\":\"json\",\"version\":1}\x1e",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        reason = NULL;
        ssize_t n = rh_hub_handshake_parse((const uint8_t *)bad[i], strlen(bad[i]), MAX_BYTES, &hs,
                                           &reason);
        rh_check_report(n == -EPROTO && reason != NULL, __FILE__, __LINE__, "handshake refused",
                        bad[i]);
    }

    /* The size limit: the text may be max_bytes long; one more byte without a 0x1E is over. */
    const char *small = "{\"protocol\":\"json\",\"version\":1}\x1e";
    uint32_t text_len = (uint32_t)strlen(small) - 1;
    CHECK_EQ(rh_hub_handshake_parse((const uint8_t *)small, strlen(small), text_len, &hs, &reason),
             strlen(small));
    CHECK_EQ(
        rh_hub_handshake_parse((const uint8_t *)small, strlen(small), text_len - 1, &hs, &reason),
        -EMSGSIZE);
    CHECK_EQ(rh_hub_handshake_parse((const uint8_t *)small, text_len, text_len, &hs, &reason),
             -EAGAIN);
    CHECK_EQ(rh_hub_handshake_parse((const uint8_t *)small, text_len, text_len - 1, &hs, &reason),
             -EMSGSIZE);
}

static void test_handshake_replies(void)
{
    struct rh_buf *buf = rh_buf_new(0);
    rh_hub_handshake_write_ok(&buf);
    CHECK(buf_is(buf, "{}\x1e"));
    CHECK_EQ(buf->len, 3);
    buf->len = 0;
    rh_hub_handshake_write_error(&buf, "Handshake was canceled.");
    CHECK(buf_is(buf, "{\"error\":\"Handshake was canceled.\"}\x1e"));
    buf->len = 0;
    rh_hub_handshake_write_error(&buf, "a\"b\x1e");
    CHECK(buf_is(buf, "{\"error\":\"a\\\"b\\u001e\"}\x1e"));
    rh_buf_unref(buf);

    struct rh_hub_handshake hs = {.protocol = "foo", .version = 3};
    char text[256];
    CHECK_EQ(rh_hub_handshake_error_text(RH_HUB_HANDSHAKE_CANCELED, NULL, text, sizeof(text)),
             strlen("Handshake was canceled."));
    CHECK(strcmp(text, "Handshake was canceled.") == 0);
    rh_hub_handshake_error_text(RH_HUB_HANDSHAKE_UNEXPECTED, NULL, text, sizeof(text));
    CHECK(strcmp(text, "An unexpected error occurred during connection handshake.") == 0);
    rh_hub_handshake_error_text(RH_HUB_HANDSHAKE_BAD_PROTOCOL, &hs, text, sizeof(text));
    CHECK(strcmp(text, "The protocol 'foo' is not supported.") == 0);
    strcpy(hs.protocol, "json");
    rh_hub_handshake_error_text(RH_HUB_HANDSHAKE_BAD_VERSION, &hs, text, sizeof(text));
    CHECK(strcmp(text, "The server does not support version 3 of the 'json' protocol.") == 0);
    strcpy(hs.protocol, "messagepack");
    rh_hub_handshake_error_text(RH_HUB_HANDSHAKE_BAD_TRANSFER, &hs, text, sizeof(text));
    CHECK(strcmp(text, "Cannot use the 'messagepack' protocol on the current transport. The "
                       "transport does not support 'Binary' transfer format.") == 0);
    strcpy(hs.protocol, "JSON");
    rh_hub_handshake_error_text(RH_HUB_HANDSHAKE_BAD_TRANSFER, &hs, text, sizeof(text));
    CHECK(strstr(text, "'Text' transfer format.") != NULL);
    /* Cut to the buffer, but the full length is reported. */
    CHECK_EQ(rh_hub_handshake_error_text(RH_HUB_HANDSHAKE_CANCELED, NULL, text, 5), 23);
    CHECK(strcmp(text, "Hand") == 0);
}

/* Exactly what @microsoft/signalr 10.x writes (spec §4 table, §12 Example A). */
static void test_js_client(void)
{
    CHECK_EQ(parse("{\"type\":6}\x1e"), 11);
    CHECK_EQ(msg.type, RH_HUB_PING);
    CHECK_EQ(msg.codec, RH_HUB_JSON);

    const char *add =
        "{\"target\":\"Add\",\"arguments\":[40,2],\"invocationId\":\"0\",\"type\":1}\x1e";
    CHECK_EQ(parse(add), strlen(add));
    CHECK_EQ(msg.type, RH_HUB_INVOCATION);
    CHECK(span_is(msg.target, "Add"));
    CHECK(span_is(msg.invocation_id, "0"));
    CHECK_EQ(msg.arg_count, 2);
    CHECK(span_is(msg.args[0], "40"));
    CHECK(span_is(msg.args[1], "2"));
    CHECK_EQ(msg.stream_id_count, 0);
    CHECK_EQ(msg.scratch_used, 0);
    /* No escapes: decoded strings point into the input. */
    CHECK(msg.target.ptr == (const uint8_t *)add + 11);

    CHECK(parse("{\"target\":\"M\",\"arguments\":[\"x\",{\"a\":[1,null]},true],\"type\":1}\x1e") >
          0);
    CHECK_EQ(msg.type, RH_HUB_INVOCATION);
    CHECK_EQ(msg.invocation_id.len, 0);
    CHECK_EQ(msg.arg_count, 3);
    CHECK(span_is(msg.args[1], "{\"a\":[1,null]}"));
    CHECK(span_is(msg.args[2], "true"));

    CHECK(parse("{\"target\":\"M\",\"arguments\":[],\"type\":1}\x1e") > 0);
    CHECK_EQ(msg.arg_count, 0);

    CHECK(parse("{\"target\":\"Up\",\"arguments\":[1],\"invocationId\":\"0\",\"streamIds\":[\"1\","
                "\"2\"],\"type\":1}\x1e") > 0);
    CHECK_EQ(msg.stream_id_count, 2);
    CHECK(span_is(msg.stream_ids[0], "1"));
    CHECK(span_is(msg.stream_ids[1], "2"));
    CHECK_EQ(msg.arg_count, 1);

    CHECK(parse("{\"target\":\"Counter\",\"arguments\":[10,500],\"invocationId\":\"1\",\"type\":4}"
                "\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_STREAM_INVOCATION);
    CHECK(span_is(msg.target, "Counter"));
    CHECK(span_is(msg.invocation_id, "1"));
    CHECK_EQ(msg.arg_count, 2);

    CHECK(parse("{\"invocationId\":\"1\",\"type\":5}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_CANCEL_INVOCATION);
    CHECK(span_is(msg.invocation_id, "1"));

    CHECK(parse("{\"invocationId\":\"2\",\"item\":{\"a\":[1,2]},\"type\":2}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_STREAM_ITEM);
    CHECK(span_is(msg.invocation_id, "2"));
    CHECK(span_is(msg.result, "{\"a\":[1,2]}"));
    CHECK(parse("{\"invocationId\":\"2\",\"item\":null,\"type\":2}\x1e") > 0);
    CHECK(span_is(msg.result, "null"));

    CHECK(parse("{\"invocationId\":\"2\",\"type\":3}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_COMPLETION);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_VOID);
    CHECK_EQ(msg.result.len, 0);
    CHECK_EQ(msg.error.len, 0);

    CHECK(parse("{\"error\":\"boom\",\"invocationId\":\"2\",\"type\":3}\x1e") > 0);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_ERROR);
    CHECK(span_is(msg.error, "boom"));

    CHECK(parse("{\"invocationId\":\"x\",\"result\":{\"k\":\"v\"},\"type\":3}\x1e") > 0);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_VALUE);
    CHECK(span_is(msg.result, "{\"k\":\"v\"}"));
    CHECK(parse("{\"invocationId\":\"x\",\"result\":null,\"type\":3}\x1e") > 0);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_VALUE);
    CHECK(span_is(msg.result, "null"));

    CHECK(parse("{\"type\":7}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_CLOSE);
    CHECK_EQ(msg.error.len, 0);
    CHECK(!msg.allow_reconnect);

    CHECK(parse("{\"type\":8,\"sequenceId\":5}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_ACK);
    CHECK_EQ(msg.sequence_id, 5);
    CHECK(parse("{\"type\":9,\"sequenceId\":1}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_SEQUENCE);
    CHECK_EQ(msg.sequence_id, 1);
}

/* What ASP.NET writes parses too (another server on a mesh, or our own output). */
static void test_aspnet_forms(void)
{
    CHECK(parse("{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[\"bob\",\"hi\"]}\x1e") >
          0);
    CHECK(span_is(msg.target, "ReceiveMessage"));
    CHECK(span_is(msg.args[0], "\"bob\""));
    CHECK(span_is(msg.args[1], "\"hi\""));

    CHECK(parse("{\"type\":3,\"invocationId\":\"0\",\"result\":42}\x1e") > 0);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_VALUE);
    CHECK(span_is(msg.result, "42"));
    CHECK(parse("{\"type\":2,\"invocationId\":\"1\",\"item\":5}\x1e") > 0);
    CHECK(span_is(msg.result, "5"));
    CHECK(parse("{\"type\":3,\"invocationId\":\"1\"}\x1e") > 0);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_VOID);

    CHECK(parse("{\"type\":7,\"error\":\"Connection closed with an error.\",\"allowReconnect\":"
                "true}\x1e") > 0);
    CHECK(span_is(msg.error, "Connection closed with an error."));
    CHECK(msg.allow_reconnect);
    CHECK(parse("{\"type\":7,\"error\":\"xyz\",\"allowReconnect\":true}\x1e") > 0);
    CHECK(span_is(msg.error, "xyz"));
    CHECK(parse("{\"type\":7,\"allowReconnect\":false}\x1e") > 0);
    CHECK(!msg.allow_reconnect);
}

static void test_tolerated(void)
{
    /* Headers (.NET tracing) are checked and ignored. */
    CHECK(parse("{\"type\":1,\"headers\":{\"a\":\"b\",\"traceparent\":\"00-1-2-01\"},\"target\":"
                "\"T\",\"arguments\":[]}\x1e") > 0);
    CHECK(span_is(msg.target, "T"));
    CHECK(parse("{\"type\":1,\"headers\":{},\"target\":\"T\",\"arguments\":[]}\x1e") > 0);

    /* Unknown types succeed as RH_HUB_UNKNOWN, whatever else they carry. */
    CHECK(parse("{\"type\":42,\"foo\":1}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_UNKNOWN);
    CHECK(parse("{\"type\":0}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_UNKNOWN);
    CHECK(parse("{\"type\":-1}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_UNKNOWN);

    /* Unknown properties, whitespace, escaped names, repeated names (the last wins). */
    CHECK(parse("{\"type\":6,\"x\":{\"y\":[1,2,3]},\"z\":\"w\"}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_PING);
    CHECK(parse(" \r\n{ \"type\" : 6 } \n\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_PING);
    CHECK(parse("{\"t\\u0079pe\":6}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_PING);
    CHECK(parse("{\"type\":1,\"type\":6}\x1e") > 0);
    CHECK_EQ(msg.type, RH_HUB_PING);

    /* An empty or null invocation id on an Invocation means none (a non-blocking send). */
    CHECK(parse("{\"type\":1,\"invocationId\":\"\",\"target\":\"T\",\"arguments\":[]}\x1e") > 0);
    CHECK_EQ(msg.invocation_id.len, 0);
    CHECK(parse("{\"type\":1,\"invocationId\":null,\"target\":\"T\",\"arguments\":[]}\x1e") > 0);
    CHECK_EQ(msg.invocation_id.len, 0);
    CHECK(parse("{\"type\":1,\"target\":\"T\",\"arguments\":[],\"streamIds\":null}\x1e") > 0);
    CHECK_EQ(msg.stream_id_count, 0);

    /* A null error next to a result is no error. */
    CHECK(parse("{\"type\":3,\"invocationId\":\"1\",\"error\":null,\"result\":1}\x1e") > 0);
    CHECK_EQ(msg.result_kind, RH_HUB_RESULT_VALUE);

    /* Properties of other types are type-checked but otherwise unused. */
    CHECK(parse("{\"type\":6,\"target\":\"x\",\"arguments\":[1]}\x1e") > 0);
    CHECK_EQ(msg.arg_count, 0);
    CHECK_EQ(msg.target.len, 0);
}

static void test_refused(void)
{
    static const struct {
        const char *record;
        ssize_t err;
    } bad[] = {
        /* Not one JSON object. */
        {"hello\x1e", -EPROTO},
        {"{\"type\":6\x1e", -EPROTO},
        {"[6]\x1e", -EPROTO},
        {"\"x\"\x1e", -EPROTO},
        {"6\x1e", -EPROTO},
        {"null\x1e", -EPROTO},
        {"{\"type\":6}x\x1e", -EPROTO},
        {"{\"type\":6}{\"type\":6}\x1e", -EPROTO},
        {"\x1e", -EPROTO},
        {" \x1e", -EPROTO},
        {"{\"type\":6,}\x1e", -EPROTO},
        {"{\"type\":06}\x1e", -EPROTO},
        {"{\"type\":6,\"x\":\"\xc0\x80\"}\x1e", -EPROTO},
        {"{\"type\":6,\"x\":\"\t\"}\x1e", -EPROTO},
        {"{\"type\":6,\"x\":\"\\ud800\"}\x1e", -EPROTO},
        /* type. */
        {"{}\x1e", -EPROTO},
        {"{\"type\":\"1\"}\x1e", -EPROTO},
        {"{\"type\":1.5}\x1e", -EPROTO},
        {"{\"type\":6.0}\x1e", -EPROTO},
        {"{\"type\":1e0}\x1e", -EPROTO},
        {"{\"type\":null}\x1e", -EPROTO},
        {"{\"type\":true}\x1e", -EPROTO},
        {"{\"type\":99999999999999999999}\x1e", -EPROTO},
        /* Invocation. */
        {"{\"type\":1,\"arguments\":[]}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":\"\",\"arguments\":[]}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":null,\"arguments\":[]}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":5,\"arguments\":[]}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":\"T\"}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":\"T\",\"arguments\":{}}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":\"T\",\"arguments\":null}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":\"T\",\"arguments\":\"a\"}\x1e", -EPROTO},
        {"{\"type\":1,\"invocationId\":5,\"target\":\"T\",\"arguments\":[]}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":\"T\",\"arguments\":[],\"streamIds\":\"1\"}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":\"T\",\"arguments\":[],\"streamIds\":[1]}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":\"T\",\"arguments\":[],\"headers\":[]}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":\"T\",\"arguments\":[],\"headers\":null}\x1e", -EPROTO},
        {"{\"type\":1,\"target\":\"T\",\"arguments\":[],\"headers\":{\"a\":1}}\x1e", -EPROTO},
        /* StreamInvocation. */
        {"{\"type\":4,\"target\":\"T\",\"arguments\":[]}\x1e", -EPROTO},
        {"{\"type\":4,\"invocationId\":\"\",\"target\":\"T\",\"arguments\":[]}\x1e", -EPROTO},
        {"{\"type\":4,\"invocationId\":\"1\",\"arguments\":[]}\x1e", -EPROTO},
        {"{\"type\":4,\"invocationId\":\"1\",\"target\":\"T\"}\x1e", -EPROTO},
        /* StreamItem. */
        {"{\"type\":2,\"invocationId\":\"1\"}\x1e", -EPROTO},
        {"{\"type\":2,\"item\":1}\x1e", -EPROTO},
        {"{\"type\":2,\"invocationId\":\"\",\"item\":1}\x1e", -EPROTO},
        /* Completion. */
        {"{\"type\":3}\x1e", -EPROTO},
        {"{\"type\":3,\"invocationId\":\"\"}\x1e", -EPROTO},
        {"{\"type\":3,\"invocationId\":\"1\",\"result\":1,\"error\":\"e\"}\x1e", -EPROTO},
        {"{\"type\":3,\"invocationId\":\"1\",\"result\":null,\"error\":\"\"}\x1e", -EPROTO},
        {"{\"type\":3,\"invocationId\":\"1\",\"error\":5}\x1e", -EPROTO},
        {"{\"type\":3,\"invocationId\":1}\x1e", -EPROTO},
        /* CancelInvocation. */
        {"{\"type\":5}\x1e", -EPROTO},
        /* Close. */
        {"{\"type\":7,\"error\":5}\x1e", -EPROTO},
        {"{\"type\":7,\"allowReconnect\":\"true\"}\x1e", -EPROTO},
        {"{\"type\":7,\"allowReconnect\":1}\x1e", -EPROTO},
        /* Ack, Sequence. */
        {"{\"type\":8}\x1e", -EPROTO},
        {"{\"type\":9}\x1e", -EPROTO},
        {"{\"type\":8,\"sequenceId\":1.5}\x1e", -EPROTO},
        {"{\"type\":8,\"sequenceId\":\"5\"}\x1e", -EPROTO},
        {"{\"type\":9,\"sequenceId\":99999999999999999999}\x1e", -EPROTO},
        {"{\"type\":6,\"sequenceId\":null}\x1e", -EPROTO},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *reason = NULL;
        ssize_t n = rh_hub_json_parse((const uint8_t *)bad[i].record, strlen(bad[i].record),
                                      MAX_BYTES, &msg, &reason);
        rh_check_report(n == bad[i].err && reason != NULL, __FILE__, __LINE__, "refused",
                        bad[i].record);
    }
    /* A NUL is never whitespace. */
    const char *reason = NULL;
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)"{\"type\":6}\0\x1e", 12, MAX_BYTES, &msg, &reason),
             -EPROTO);
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)"{\"type\":6}\x1e", 11, MAX_BYTES, &msg, NULL), 11);
}

/* Builds {"type":1,"target":"T","arguments":[0,0,...]} with @argc arguments, or with @streams
 * stream ids, into @out. */
static void build_invocation(char *out, size_t cap, uint32_t argc, uint32_t streams)
{
    size_t n = (size_t)snprintf(out, cap, "{\"type\":1,\"target\":\"T\",\"arguments\":[");
    for (uint32_t i = 0; i < argc; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%u", i ? "," : "", i);
    n += (size_t)snprintf(out + n, cap - n, "],\"streamIds\":[");
    for (uint32_t i = 0; i < streams; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s\"s%u\"", i ? "," : "", i);
    snprintf(out + n, cap - n, "]}\x1e");
}

static void test_limits(void)
{
    static char text[4096];
    const char *reason = NULL;

    build_invocation(text, sizeof(text), RH_HUB_ARGS_MAX, RH_HUB_STREAMS_MAX);
    CHECK_EQ(parse(text), strlen(text));
    CHECK_EQ(msg.arg_count, RH_HUB_ARGS_MAX);
    CHECK(span_is(msg.args[RH_HUB_ARGS_MAX - 1], "31"));
    CHECK_EQ(msg.stream_id_count, RH_HUB_STREAMS_MAX);
    CHECK(span_is(msg.stream_ids[RH_HUB_STREAMS_MAX - 1], "s7"));

    build_invocation(text, sizeof(text), RH_HUB_ARGS_MAX + 1, 0);
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)text, strlen(text), MAX_BYTES, &msg, &reason),
             -EMSGSIZE);
    CHECK(strstr(reason, "arguments") != NULL);
    build_invocation(text, sizeof(text), 0, RH_HUB_STREAMS_MAX + 1);
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)text, strlen(text), MAX_BYTES, &msg, &reason),
             -EMSGSIZE);
    CHECK(strstr(reason, "stream") != NULL);

    /* A record whose text is exactly max_bytes long is accepted; one byte longer is not. */
    const uint32_t max = 64;
    size_t n = (size_t)snprintf(text, sizeof(text), "{\"type\":6,\"pad\":\"");
    while (n < max - 2)
        text[n++] = 'a';
    memcpy(text + n, "\"}\x1e", 4);
    CHECK_EQ(strlen(text), max + 1);
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)text, max + 1, max, &msg, &reason), max + 1);
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)text, max, max, &msg, &reason), -EAGAIN);
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)text, max + 1, max - 1, &msg, &reason), -EMSGSIZE);
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)text, max, max - 1, &msg, &reason), -EMSGSIZE);
    CHECK(reason != NULL);
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)text, max - 1, max - 1, &msg, &reason), -EAGAIN);
    /* A limit of 0 still frames an empty text (then refused as not an object). */
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)"abc", 3, 0, &msg, &reason), -EMSGSIZE);
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)"\x1e", 1, 0, &msg, &reason), -EPROTO);

    /* Scratch: escaped strings up to RH_HUB_SCRATCH_BYTES decoded fit, one more byte not. */
    for (int extra = 0; extra <= 1; extra++) {
        n = (size_t)snprintf(text, sizeof(text), "{\"type\":1,\"arguments\":[],\"target\":\"\\n");
        for (int i = 1; i < RH_HUB_SCRATCH_BYTES + extra; i++)
            text[n++] = 'a';
        memcpy(text + n, "\"}\x1e", 4);
        ssize_t rc =
            rh_hub_json_parse((const uint8_t *)text, strlen(text), MAX_BYTES, &msg, &reason);
        if (extra) {
            CHECK_EQ(rc, -EMSGSIZE);
            CHECK(strstr(reason, "scratch") != NULL);
        } else {
            CHECK_EQ(rc, strlen(text));
            CHECK_EQ(msg.target.len, RH_HUB_SCRATCH_BYTES);
            CHECK_EQ(msg.scratch_used, RH_HUB_SCRATCH_BYTES);
            CHECK(in_scratch(msg.target));
        }
    }
    /* The scratch is shared by every decoded string of one message. */
    n = (size_t)snprintf(text, sizeof(text),
                         "{\"type\":1,\"invocationId\":\"\\n\",\"arguments\":[],\"target\":\"\\n");
    for (int i = 1; i < RH_HUB_SCRATCH_BYTES; i++)
        text[n++] = 'a';
    memcpy(text + n, "\"}\x1e", 4);
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)text, strlen(text), MAX_BYTES, &msg, &reason),
             -EMSGSIZE);
}

static const char *const samples[] = {
    "{\"type\":6}\x1e",
    "{\"target\":\"Add\",\"arguments\":[40,2],\"invocationId\":\"0\",\"type\":1}\x1e",
    "{\"target\":\"M\",\"arguments\":[\"a\\u001eb\"],\"type\":1}\x1e",
    "{\"invocationId\":\"2\",\"item\":{\"a\":[1,2]},\"type\":2}\x1e",
    "{\"error\":\"boom\",\"invocationId\":\"2\",\"type\":3}\x1e",
    "{\"type\":7,\"error\":\"xyz\",\"allowReconnect\":true}\x1e",
    "{\"type\":8,\"sequenceId\":5}\x1e",
};

static void test_split_and_pipelined(void)
{
    const char *reason;
    /* Every prefix is "need more"; the whole record parses. */
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        size_t len = strlen(samples[i]);
        for (size_t k = 0; k < len; k++) {
            ssize_t rc =
                rh_hub_json_parse((const uint8_t *)samples[i], k, MAX_BYTES, &msg, &reason);
            if (rc != -EAGAIN) {
                rh_check_report(false, __FILE__, __LINE__, "prefix gives -EAGAIN", samples[i]);
                break;
            }
        }
        CHECK_EQ(rh_hub_json_parse((const uint8_t *)samples[i], len, MAX_BYTES, &msg, &reason),
                 len);
    }

    /* All samples back to back, read one after another (Example A batched, Example G). */
    static uint8_t stream[1024];
    size_t total = 0;
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        memcpy(stream + total, samples[i], strlen(samples[i]));
        total += strlen(samples[i]);
    }
    static const enum rh_hub_type want[] = {
        RH_HUB_PING,       RH_HUB_INVOCATION, RH_HUB_INVOCATION, RH_HUB_STREAM_ITEM,
        RH_HUB_COMPLETION, RH_HUB_CLOSE,      RH_HUB_ACK};
    size_t at = 0, count = 0;
    while (at < total) {
        ssize_t rc = rh_hub_json_parse(stream + at, total - at, MAX_BYTES, &msg, &reason);
        CHECK_GT(rc, 0);
        if (rc <= 0) break;
        if (count < 7) CHECK_EQ(msg.type, want[count]);
        count++;
        at += (size_t)rc;
    }
    CHECK_EQ(count, 7);
    CHECK_EQ(at, total);
    /* A trailing partial record waits for more. */
    CHECK_EQ(
        rh_hub_json_parse((const uint8_t *)"{\"type\":6}\x1e{\"ty", 15, MAX_BYTES, &msg, &reason),
        11);
    CHECK_EQ(rh_hub_json_parse((const uint8_t *)"{\"ty", 4, MAX_BYTES, &msg, &reason), -EAGAIN);
    CHECK_EQ(rh_hub_json_parse(NULL, 0, MAX_BYTES, &msg, &reason), -EAGAIN);
}

static void test_escapes(void)
{
    const char *rec = "{\"type\":1,\"target\":\"Se\\u006ed\",\"invocationId\":\"a\\\"b\","
                      "\"arguments\":[\"\\n\"],\"streamIds\":[\"\\u0031\",\"2\"]}\x1e";
    CHECK_EQ(parse(rec), strlen(rec));
    CHECK(span_is(msg.target, "Send"));
    CHECK(span_is(msg.invocation_id, "a\"b"));
    CHECK(in_scratch(msg.target));
    CHECK(in_scratch(msg.invocation_id));
    CHECK(span_is(msg.stream_ids[0], "1"));
    CHECK(in_scratch(msg.stream_ids[0]));
    CHECK(!in_scratch(msg.stream_ids[1]));
    /* Arguments stay encoded. */
    CHECK(span_is(msg.args[0], "\"\\n\""));
    CHECK_EQ(msg.scratch_used, 4 + 3 + 1);

    CHECK(parse("{\"type\":3,\"invocationId\":\"\\u00e9\",\"error\":\"Unknown \\\"x\\\"\"}\x1e") >
          0);
    CHECK(span_is(msg.invocation_id, "\xc3\xa9"));
    CHECK(span_is(msg.error, "Unknown \"x\""));
    CHECK(parse("{\"type\":7,\"error\":\"a\\/b\\u0000\"}\x1e") > 0);
    CHECK_EQ(msg.error.len, 4);
    CHECK(memcmp(msg.error.ptr, "a/b\0", 4) == 0);
    /* Raw UTF-8 needs no scratch. */
    CHECK(parse("{\"type\":1,\"target\":\"h\xc3\xa9\",\"arguments\":[]}\x1e") > 0);
    CHECK(span_is(msg.target, "h\xc3\xa9"));
    CHECK_EQ(msg.scratch_used, 0);
}

static void test_writers(void)
{
    struct rh_buf *buf = rh_buf_new(0);
    struct rh_span none = {0};
    struct rh_span args[] = {span_of("\"bob\""), span_of("\"hi\"")};

    rh_hub_json_write_invocation(&buf, none, span_of("ReceiveMessage"), args, 2);
    CHECK(buf_is(buf, "{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[\"bob\",\"hi\"]}"
                      "\x1e"));
    buf->len = 0;
    rh_hub_json_write_invocation(&buf, span_of("7"), span_of("T"), NULL, 0);
    CHECK(buf_is(buf, "{\"type\":1,\"invocationId\":\"7\",\"target\":\"T\",\"arguments\":[]}\x1e"));
    buf->len = 0;
    struct rh_span hi = span_of("\"hi\"");
    rh_hub_json_write_invocation(&buf, none, span_of("ReceiveMessage"), &hi, 1);
    CHECK(buf_is(buf, "{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[\"hi\"]}\x1e"));
    buf->len = 0;
    rh_hub_json_write_invocation(&buf, none, span_of("a\"\n"), &none, 1);
    CHECK(buf_is(buf, "{\"type\":1,\"target\":\"a\\\"\\n\",\"arguments\":[null]}\x1e"));

    buf->len = 0;
    rh_hub_json_write_completion(&buf, span_of("0"), RH_HUB_RESULT_VALUE, span_of("42"));
    CHECK(buf_is(buf, "{\"type\":3,\"invocationId\":\"0\",\"result\":42}\x1e"));
    buf->len = 0;
    rh_hub_json_write_completion(&buf, span_of("0"), RH_HUB_RESULT_VALUE, span_of("null"));
    CHECK(buf_is(buf, "{\"type\":3,\"invocationId\":\"0\",\"result\":null}\x1e"));
    buf->len = 0;
    rh_hub_json_write_completion(&buf, span_of("0"), RH_HUB_RESULT_VALUE, none);
    CHECK(buf_is(buf, "{\"type\":3,\"invocationId\":\"0\",\"result\":null}\x1e"));
    buf->len = 0;
    rh_hub_json_write_completion(&buf, span_of("1"), RH_HUB_RESULT_VOID, span_of("ignored"));
    CHECK(buf_is(buf, "{\"type\":3,\"invocationId\":\"1\"}\x1e"));
    buf->len = 0;
    rh_hub_json_write_completion(&buf, span_of("1"), RH_HUB_RESULT_ERROR,
                                 span_of("Unknown hub method 'x'"));
    CHECK(buf_is(buf, "{\"type\":3,\"invocationId\":\"1\",\"error\":\"Unknown hub method 'x'\"}"
                      "\x1e"));

    buf->len = 0;
    rh_hub_json_write_stream_item(&buf, span_of("1"), span_of("5"));
    CHECK(buf_is(buf, "{\"type\":2,\"invocationId\":\"1\",\"item\":5}\x1e"));

    buf->len = 0;
    rh_hub_json_write_ping(&buf);
    CHECK(buf_is(buf, "{\"type\":6}\x1e"));

    buf->len = 0;
    rh_hub_json_write_close(&buf, none, false);
    CHECK(buf_is(buf, "{\"type\":7}\x1e"));
    buf->len = 0;
    rh_hub_json_write_close(&buf, none, true);
    CHECK(buf_is(buf, "{\"type\":7,\"allowReconnect\":true}\x1e"));
    buf->len = 0;
    rh_hub_json_write_close(&buf, span_of("Connection closed with an error."), true);
    CHECK(buf_is(buf, "{\"type\":7,\"error\":\"Connection closed with an error.\","
                      "\"allowReconnect\":true}\x1e"));
    buf->len = 0;
    rh_hub_json_write_close(&buf, span_of("xyz"), false);
    CHECK(buf_is(buf, "{\"type\":7,\"error\":\"xyz\"}\x1e"));

    buf->len = 0;
    rh_hub_json_write_ack(&buf, 5);
    CHECK(buf_is(buf, "{\"type\":8,\"sequenceId\":5}\x1e"));
    buf->len = 0;
    rh_hub_json_write_sequence(&buf, 3);
    CHECK(buf_is(buf, "{\"type\":9,\"sequenceId\":3}\x1e"));
    buf->len = 0;
    rh_hub_json_write_ack(&buf, INT64_MAX);
    CHECK(buf_is(buf, "{\"type\":8,\"sequenceId\":9223372036854775807}\x1e"));

    /* Several records append one after another into one transport message. */
    buf->len = 0;
    rh_hub_handshake_write_ok(&buf);
    rh_hub_json_write_ping(&buf);
    rh_hub_json_write_invocation(&buf, none, span_of("ReceiveMessage"), &hi, 1);
    CHECK(buf_is(buf, "{}\x1e{\"type\":6}\x1e{\"type\":1,\"target\":\"ReceiveMessage\","
                      "\"arguments\":[\"hi\"]}\x1e"));
    rh_buf_unref(buf);
}

/* What the writers produce parses back to the same fields, escapes and all. */
static void test_round_trip(void)
{
    struct rh_buf *buf = rh_buf_new(0);
    const char *reason;
    const char *in = "{\"target\":\"a\\\"\\u001e\\u00e9\",\"arguments\":[1,\"x\",{\"k\":[null]}],"
                     "\"invocationId\":\"\\t7\",\"type\":1}\x1e";
    CHECK(parse(in) > 0);
    rh_hub_json_write_invocation(&buf, msg.invocation_id, msg.target, msg.args, msg.arg_count);
    static struct rh_hub_msg again;
    CHECK_EQ(rh_hub_json_parse(buf->data, buf->len, MAX_BYTES, &again, &reason), buf->len);
    CHECK(again.target.len == msg.target.len &&
          memcmp(again.target.ptr, msg.target.ptr, msg.target.len) == 0);
    CHECK(again.invocation_id.len == msg.invocation_id.len &&
          memcmp(again.invocation_id.ptr, msg.invocation_id.ptr, msg.invocation_id.len) == 0);
    CHECK_EQ(again.arg_count, 3);
    CHECK(span_is(again.args[2], "{\"k\":[null]}"));
    CHECK(memchr(buf->data, 0x1e, buf->len - 1) == NULL);

    buf->len = 0;
    CHECK(parse("{\"error\":\"b\\u001eoom\",\"invocationId\":\"2\",\"type\":3}\x1e") > 0);
    rh_hub_json_write_completion(&buf, msg.invocation_id, msg.result_kind, msg.error);
    CHECK(buf_is(buf, "{\"type\":3,\"invocationId\":\"2\",\"error\":\"b\\u001eoom\"}\x1e"));
    rh_buf_unref(buf);
}

static void test_arg_string(void)
{
    uint8_t out[16];
    CHECK(parse("{\"type\":1,\"target\":\"T\",\"arguments\":[\"hello\",5,\"a\\nb\",null]}\x1e") >
          0);
    CHECK_EQ(rh_hub_json_arg_string(&msg, 0, out, sizeof(out)), 5);
    CHECK(memcmp(out, "hello", 5) == 0);
    CHECK_EQ(rh_hub_json_arg_string(&msg, 1, out, sizeof(out)), -EINVAL);
    CHECK_EQ(rh_hub_json_arg_string(&msg, 2, out, sizeof(out)), 3);
    CHECK(memcmp(out, "a\nb", 3) == 0);
    CHECK_EQ(rh_hub_json_arg_string(&msg, 3, out, sizeof(out)), -EINVAL);
    CHECK_EQ(rh_hub_json_arg_string(&msg, 4, out, sizeof(out)), -ENOENT);
    CHECK_EQ(rh_hub_json_arg_string(&msg, 0, out, 4), -EMSGSIZE);
    msg.codec = RH_HUB_MSGPACK;
    CHECK_EQ(rh_hub_json_arg_string(&msg, 0, out, sizeof(out)), -EINVAL);
}
