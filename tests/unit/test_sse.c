/* tests/unit/test_sse.c - Server-Sent Events framing: data events split at every kind of line
 * end and end with the empty line; named events; event ids written and read back, and every
 * malformed id refused; percent-decoding of path segments (the user of /api/events/{user}). */
#include <string.h>

#include "core/buf.h"
#include "tests/harness/check.h"
#include "transports/http/http.h"
#include "transports/sse.h"

static bool buf_is(struct rh_buf *b, const char *expected)
{
    bool is = b->len == strlen(expected) && memcmp(b->data, expected, b->len) == 0;
    rh_buf_unref(b);
    return is;
}

static struct rh_span span(const char *s)
{
    return rh_span_make(s, (uint32_t)strlen(s));
}

int main(void)
{
    /* SignalR data events: CR LF line ends, an empty line to end the event. */
    CHECK(buf_is(rh_sse_data_event_new(span("{}\x1e")), "data: {}\x1e\r\n\r\n"));
    CHECK(buf_is(rh_sse_data_event_new(span("a\nb\r\nc\rd")),
                 "data: a\r\ndata: b\r\ndata: c\r\ndata: d\r\n\r\n"));
    CHECK(buf_is(rh_sse_data_event_new(span("a\n\nb")), "data: a\r\ndata: \r\ndata: b\r\n\r\n"));
    /* One trailing line end makes no empty data line (it would end the event early). */
    CHECK(buf_is(rh_sse_data_event_new(span("a\r\n")), "data: a\r\n\r\n"));
    CHECK(buf_is(rh_sse_data_event_new(span("a\n\n")), "data: a\r\ndata: \r\n\r\n"));
    CHECK(buf_is(rh_sse_data_event_new(span("\r")), "data: \r\n\r\n"));

    /* Named events: event line, data lines, LF line ends. */
    CHECK(buf_is(rh_sse_named_event_new(span("notification"), span("{\"id\":7}")),
                 "event: notification\ndata: {\"id\":7}\n\n"));
    CHECK(buf_is(rh_sse_named_event_new(span("x"), span("[1,\n2]")),
                 "event: x\ndata: [1,\ndata: 2]\n\n"));
    CHECK(rh_sse_is_event_name(span("dataUpdate")));
    CHECK(rh_sse_is_event_name(span("with space and ünï")));
    CHECK(!rh_sse_is_event_name(span("")));
    CHECK(!rh_sse_is_event_name(span("a\nb")));
    CHECK(!rh_sse_is_event_name(span("a\rb")));
    CHECK(!rh_sse_is_event_name(rh_span_make("a\0b", 3)));
    char long_name[300];
    memset(long_name, 'n', sizeof(long_name));
    CHECK(rh_sse_is_event_name(rh_span_make(long_name, 255)));
    CHECK(!rh_sse_is_event_name(rh_span_make(long_name, 256)));

    /* Ids: "<8 hex>-<seq>", written and read back. */
    char id[RH_SSE_EVENT_ID_MAX + 8];
    uint32_t len = rh_sse_write_id(id, 0x1db5e3bbu, 42);
    CHECK_EQ(len, strlen("id: 1db5e3bb-42\n"));
    CHECK(memcmp(id, "id: 1db5e3bb-42\n", len) == 0);
    len = rh_sse_format_id(id, 0, UINT64_MAX);
    CHECK(len == RH_SSE_EVENT_ID_MAX && memcmp(id, "00000000-18446744073709551615", len) == 0);
    uint32_t epoch;
    uint64_t seq;
    CHECK(rh_sse_parse_id(rh_span_make(id, len), &epoch, &seq));
    CHECK_EQ(epoch, 0);
    CHECK(seq == UINT64_MAX);
    CHECK(rh_sse_parse_id(span("ffffffff-0"), &epoch, &seq));
    CHECK_EQ(epoch, 0xffffffffu);
    CHECK_EQ(seq, 0);
    static const char *const bad_ids[] = {"",
                                          "1db5e3bb",
                                          "1db5e3bb-",
                                          "1db5e3b-1",
                                          "1DB5E3BB-1",
                                          "1db5e3bbb-1",
                                          "1db5e3bb_1",
                                          "1db5e3bb-01",
                                          "1db5e3bb-1a",
                                          "1db5e3bb--1",
                                          "1db5e3bb-18446744073709551616",
                                          "g0000000-1",
                                          " 1db5e3b-1"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
        CHECK(!rh_sse_parse_id(span(bad_ids[i]), &epoch, &seq));

    /* Path segments: percent-decoded, '+' kept, bad escapes and NUL refused, bounded. */
    char out[8];
    size_t out_len = 99;
    CHECK(rh_http_path_decode(span("a%20b+c"), out, sizeof(out), &out_len));
    CHECK(out_len == 5 && strcmp(out, "a b+c") == 0);
    CHECK(rh_http_path_decode(span("%C3%A9"), out, sizeof(out), &out_len));
    CHECK(out_len == 2 && strcmp(out, "\xc3\xa9") == 0);
    CHECK(!rh_http_path_decode(span("%00"), out, sizeof(out), &out_len));
    CHECK_EQ(out_len, 0);
    CHECK(!rh_http_path_decode(span("%zz"), out, sizeof(out), &out_len));
    CHECK(!rh_http_path_decode(span("%4"), out, sizeof(out), &out_len));
    CHECK(!rh_http_path_decode(span("1234567"), out, 7, &out_len)); /* no room for the NUL */
    CHECK(rh_http_path_decode(span("1234567"), out, 8, &out_len));
    CHECK(rh_http_path_decode(span(""), out, sizeof(out), &out_len));
    CHECK(out_len == 0 && out[0] == '\0');
    return rh_check_finish();
}
