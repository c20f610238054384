/*
 * tests/unit/test_sse.c - Server-Sent Events framing of transports/sse.h, checked byte for byte:
 * data events split at every kind of line end (LF, CR LF, lone CR) and closed by the empty line;
 * named events; event ids written, formatted and read back, and every malformed id refused; event
 * type names; and percent-decoding of path segments (the user of /api/events/{user}).
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "tests/harness/check.h"
#include "transports/http/http.h"
#include "transports/sse.h"

/* @b holds exactly the bytes of the string literal @lit (which may contain NULs); drops @b. */
#define CHECK_BUF(b, lit) check_buf((b), (lit), sizeof(lit) - 1, __FILE__, __LINE__, #b)
/* A span of the string literal @lit, NULs included. */
#define LIT(lit) rh_span_make((lit), (uint32_t)(sizeof(lit) - 1))

static void check_buf(struct rh_buf *b, const char *expected, size_t expected_len, const char *file,
                      int line, const char *expr);
static struct rh_span span(const char *s);
static void test_data_events(void);
static void test_named_events(void);
static void test_event_names(void);
static void test_id_writing(void);
static void test_id_round_trips(void);
static void test_id_rejections(void);
static void test_path_decode(void);

int main(void)
{
    test_data_events();
    test_named_events();
    test_event_names();
    test_id_writing();
    test_id_round_trips();
    test_id_rejections();
    test_path_decode();
    return rh_check_finish();
}

/* SignalR data events: a "data: " line per payload line, CR LF line ends, an empty line last. */
static void test_data_events(void)
{
    CHECK_BUF(rh_sse_data_event_new(LIT("{}\x1e")), "data: {}\x1e\r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("")), "data: \r\n\r\n");

    /* Each kind of line end splits, and none of them is kept. */
    CHECK_BUF(rh_sse_data_event_new(LIT("a\nb")), "data: a\r\ndata: b\r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("a\r\nb")), "data: a\r\ndata: b\r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("a\rb")), "data: a\r\ndata: b\r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("a\nb\r\nc\rd")),
              "data: a\r\ndata: b\r\ndata: c\r\ndata: d\r\n\r\n");

    /* Empty lines inside: two line ends in a row, however they are spelt. CR then LF is one
     * line end; LF then CR, or CR CR, is two. */
    CHECK_BUF(rh_sse_data_event_new(LIT("a\n\nb")), "data: a\r\ndata: \r\ndata: b\r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("a\r\rb")), "data: a\r\ndata: \r\ndata: b\r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("a\n\rb")), "data: a\r\ndata: \r\ndata: b\r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("a\r\n\r\nb")), "data: a\r\ndata: \r\ndata: b\r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("\na")), "data: \r\ndata: a\r\n\r\n");

    /* One trailing line end makes no empty data line (it would end the event early); a second
     * one does. */
    CHECK_BUF(rh_sse_data_event_new(LIT("a\n")), "data: a\r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("a\r\n")), "data: a\r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("a\r")), "data: a\r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("a\n\n")), "data: a\r\ndata: \r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("a\r\r\n")), "data: a\r\ndata: \r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("\r")), "data: \r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("\r\n")), "data: \r\n\r\n");
    CHECK_BUF(rh_sse_data_event_new(LIT("\n\n")), "data: \r\ndata: \r\n\r\n");

    /* Every other byte is copied as it is: colons, a leading space, NUL, bytes >= 0x80. */
    CHECK_BUF(rh_sse_data_event_new(LIT(" :x\0y\xff")), "data:  :x\0y\xff\r\n\r\n");
}

/* Plain EventSource events: the event line, "data: " lines, LF line ends, an empty line last. */
static void test_named_events(void)
{
    CHECK_BUF(rh_sse_named_event_new(LIT("notification"), LIT("{\"id\":7}")),
              "event: notification\ndata: {\"id\":7}\n\n");
    CHECK_BUF(rh_sse_named_event_new(LIT("x"), LIT("[1,\n2]")),
              "event: x\ndata: [1,\ndata: 2]\n\n");
    CHECK_BUF(rh_sse_named_event_new(LIT("x"), LIT("a\r\nb\rc")),
              "event: x\ndata: a\ndata: b\ndata: c\n\n");
    CHECK_BUF(rh_sse_named_event_new(LIT("x"), LIT("a\n")), "event: x\ndata: a\n\n");
    CHECK_BUF(rh_sse_named_event_new(LIT("x"), LIT("a\n\n")), "event: x\ndata: a\ndata: \n\n");
    CHECK_BUF(rh_sse_named_event_new(LIT("x"), LIT("")), "event: x\ndata: \n\n");
    /* The name goes out as given, a leading space included (a reader strips only the one after
     * the colon). */
    CHECK_BUF(rh_sse_named_event_new(LIT(" a:b"), LIT("1")), "event:  a:b\ndata: 1\n\n");
}

static void test_event_names(void)
{
    CHECK(rh_sse_is_event_name(span("dataUpdate")));
    CHECK(rh_sse_is_event_name(span("x")));
    CHECK(rh_sse_is_event_name(span("with space and \xc3\xbc")));
    CHECK(rh_sse_is_event_name(span("a:b")));
    CHECK(rh_sse_is_event_name(span(" ")));
    CHECK(rh_sse_is_event_name(span("\xff\t")));
    CHECK(!rh_sse_is_event_name(span("")));
    CHECK(!rh_sse_is_event_name(rh_span_make(NULL, 0)));
    CHECK(!rh_sse_is_event_name(span("a\nb")));
    CHECK(!rh_sse_is_event_name(span("a\rb")));
    CHECK(!rh_sse_is_event_name(span("\n")));
    CHECK(!rh_sse_is_event_name(span("ab\r")));
    CHECK(!rh_sse_is_event_name(LIT("a\0b")));
    CHECK(!rh_sse_is_event_name(LIT("\0")));

    char name[300];
    memset(name, 'n', sizeof(name));
    CHECK(rh_sse_is_event_name(rh_span_make(name, 255)));
    CHECK(!rh_sse_is_event_name(rh_span_make(name, 256)));
    CHECK(!rh_sse_is_event_name(rh_span_make(name, sizeof(name))));
    name[254] = '\n';
    CHECK(!rh_sse_is_event_name(rh_span_make(name, 255)));
}

/* The exact bytes written, and nothing written past them but the NUL of the id text. */
static void test_id_writing(void)
{
    char out[RH_SSE_EVENT_ID_MAX + 16];

    memset(out, '#', sizeof(out));
    uint32_t len = rh_sse_write_id(out, 0x1db5e3bbu, 42);
    CHECK_EQ(len, strlen("id: 1db5e3bb-42\n"));
    CHECK(memcmp(out, "id: 1db5e3bb-42\n#", len + 1) == 0);

    memset(out, '#', sizeof(out));
    len = rh_sse_write_id(out, 0xffffffffu, UINT64_MAX);
    CHECK_EQ(len, RH_SSE_EVENT_ID_MAX + 5);
    CHECK(memcmp(out, "id: ffffffff-18446744073709551615\n#", len + 1) == 0);

    memset(out, '#', sizeof(out));
    len = rh_sse_format_id(out, 0, 0);
    CHECK_EQ(len, 10);
    CHECK(memcmp(out, "00000000-0\0#", len + 2) == 0);

    memset(out, '#', sizeof(out));
    len = rh_sse_format_id(out, 0xa, UINT64_MAX);
    CHECK_EQ(len, RH_SSE_EVENT_ID_MAX);
    CHECK(memcmp(out, "0000000a-18446744073709551615\0#", len + 2) == 0);
}

/* Whatever is written parses back to the same epoch and seq, through both writers. */
static void test_id_round_trips(void)
{
    static const struct {
        uint32_t epoch;
        uint64_t seq;
    } ids[] = {
        {0, 0},
        {1, 1},
        {0xa, 10},
        {0x1db5e3bb, 42},
        {0x80000000, 9999999999u},
        {0xfffffffe, 18446744073709551614u},
        {0xffffffff, UINT64_MAX},
        {0, 10000000000000000000u},
    };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char text[RH_SSE_EVENT_ID_MAX + 1], line[RH_SSE_EVENT_ID_MAX + 6];
        uint32_t epoch = 7, text_len = rh_sse_format_id(text, ids[i].epoch, ids[i].seq);
        uint64_t seq = 7;
        CHECK(text_len >= 10 && text_len <= RH_SSE_EVENT_ID_MAX);
        CHECK(rh_sse_parse_id(rh_span_make(text, text_len), &epoch, &seq));
        CHECK_EQ(epoch, ids[i].epoch);
        CHECK(seq == ids[i].seq);

        /* The id line holds the same text between "id: " and its LF. */
        uint32_t line_len = rh_sse_write_id(line, ids[i].epoch, ids[i].seq);
        CHECK_EQ(line_len, text_len + 5);
        CHECK(memcmp(line, "id: ", 4) == 0 && line[line_len - 1] == '\n');
        CHECK(memcmp(line + 4, text, text_len) == 0);
        epoch = 7;
        seq = 7;
        CHECK(rh_sse_parse_id(rh_span_make(line + 4, line_len - 5), &epoch, &seq));
        CHECK_EQ(epoch, ids[i].epoch);
        CHECK(seq == ids[i].seq);
    }

    uint32_t epoch;
    uint64_t seq;
    CHECK(rh_sse_parse_id(span("ffffffff-0"), &epoch, &seq));
    CHECK_EQ(epoch, 0xffffffffu);
    CHECK_EQ(seq, 0);
    CHECK(rh_sse_parse_id(span("0000abcd-5"), &epoch, &seq));
    CHECK_EQ(epoch, 0xabcd);
    CHECK_EQ(seq, 5);
    CHECK(rh_sse_parse_id(span("00000000-18446744073709551615"), &epoch, &seq));
    CHECK_EQ(epoch, 0);
    CHECK(seq == UINT64_MAX);
}

/* Only the one spelling rh_sse_format_id writes is an id. */
static void test_id_rejections(void)
{
    static const char *const bad_ids[] = {
        /* wrong length */
        "",
        "1",
        "1db5e3bb",
        "1db5e3bb-",
        "1db5e3b-1",
        "1db5e3bbb-1",
        "00000000-100000000000000000000",
        "00000000-1844674407370955161500",
        /* the epoch: lower-case hex digits only */
        "1DB5E3BB-1",
        "1db5e3bB-1",
        "g0000000-1",
        "0x1db5e3-1",
        " 1db5e3b-1",
        "1db5e3b -1",
        "+1db5e3b-1",
        /* the dash */
        "1db5e3bb_1",
        "1db5e3bb 1",
        "1db5e3bb--1",
        "1db5e3bb+1",
        /* the seq: decimal digits, no leading zero, no sign or space */
        "1db5e3bb-01",
        "1db5e3bb-00",
        "1db5e3bb-007",
        "1db5e3bb-1a",
        "1db5e3bb-a",
        "1db5e3bb-+1",
        "1db5e3bb- 1",
        "1db5e3bb-1 ",
        "1db5e3bb-1\n",
        "1db5e3bb-1.5",
        /* the seq past UINT64_MAX */
        "1db5e3bb-18446744073709551616",
        "1db5e3bb-18446744073709551619",
        "1db5e3bb-18446744073709551620",
        "1db5e3bb-18446744073709551700",
        "1db5e3bb-99999999999999999999",
        "1db5e3bb-20000000000000000000",
    };
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        uint32_t epoch = 7;
        uint64_t seq = 7;
        bool parsed = rh_sse_parse_id(span(bad_ids[i]), &epoch, &seq);
        rh_check_report(!parsed, __FILE__, __LINE__, "!rh_sse_parse_id(bad_ids[i])", bad_ids[i]);
    }
    uint32_t epoch;
    uint64_t seq;
    CHECK(!rh_sse_parse_id(LIT("1db5e3bb-1\0"), &epoch, &seq));
    CHECK(!rh_sse_parse_id(LIT("1db5e3bb\0-1"), &epoch, &seq));
    CHECK(!rh_sse_parse_id(LIT("1db5e3bb-\0"), &epoch, &seq));
}

/* Path segments: percent-decoded, '+' kept, bad escapes and NUL refused, bounded by @out_cap. */
static void test_path_decode(void)
{
    char out[8];
    size_t out_len = 99;

    CHECK(rh_http_path_decode(span("alice"), out, sizeof(out), &out_len));
    CHECK(out_len == 5 && memcmp(out, "alice", 6) == 0);
    CHECK(rh_http_path_decode(span("a%20b+c"), out, sizeof(out), &out_len));
    CHECK(out_len == 5 && memcmp(out, "a b+c", 6) == 0);
    CHECK(rh_http_path_decode(span("%C3%A9"), out, sizeof(out), &out_len));
    CHECK(out_len == 2 && memcmp(out, "\xc3\xa9", 3) == 0);
    CHECK(rh_http_path_decode(span("%c3%a9"), out, sizeof(out), &out_len));
    CHECK(out_len == 2 && memcmp(out, "\xc3\xa9", 3) == 0);
    CHECK(rh_http_path_decode(span("%2F%2f%25"), out, sizeof(out), &out_len));
    CHECK(out_len == 3 && memcmp(out, "//%", 4) == 0);
    CHECK(rh_http_path_decode(span("%2B+"), out, sizeof(out), &out_len));
    CHECK(out_len == 2 && memcmp(out, "++", 3) == 0);
    CHECK(rh_http_path_decode(span("%01%ff"), out, sizeof(out), &out_len));
    CHECK(out_len == 2 && memcmp(out, "\x01\xff", 3) == 0);
    CHECK(rh_http_path_decode(span(""), out, sizeof(out), &out_len));
    CHECK(out_len == 0 && out[0] == '\0');
    CHECK(rh_http_path_decode(rh_span_make(NULL, 0), out, sizeof(out), &out_len));
    CHECK(out_len == 0 && out[0] == '\0');

    /* A query value turns '+' into a space; a path segment does not (compare above). */
    char q[8];
    size_t q_len = 0;
    CHECK(rh_http_query_get(span("user=a+b"), "user", q, sizeof(q), &q_len));
    CHECK(q_len == 3 && memcmp(q, "a b", 4) == 0);

    /* Refused, with *out_len 0: NUL, bad hex digits, truncated escapes. */
    static const char *const bad[] = {"%00", "a%00b", "%zz", "%g1",  "%1g", "%4",
                                      "a%4", "%",     "a%",  "%%41", "%-1", "% 41"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out_len = 99;
        bool ok = rh_http_path_decode(span(bad[i]), out, sizeof(out), &out_len);
        rh_check_report(!ok && out_len == 0, __FILE__, __LINE__, "!rh_http_path_decode(bad[i])",
                        bad[i]);
    }

    /* Bounded: the decoded bytes and the NUL must fit. */
    out_len = 99;
    CHECK(!rh_http_path_decode(span("1234567"), out, 7, &out_len));
    CHECK_EQ(out_len, 0);
    CHECK(rh_http_path_decode(span("1234567"), out, 8, &out_len));
    CHECK(out_len == 7 && memcmp(out, "1234567", 8) == 0);
    CHECK(!rh_http_path_decode(span("12345678"), out, sizeof(out), &out_len));
    CHECK(rh_http_path_decode(span("%41%42%43"), out, 4, &out_len)); /* 9 bytes in, 3 out */
    CHECK(out_len == 3 && memcmp(out, "ABC", 4) == 0);
    CHECK(!rh_http_path_decode(span("%41%42%43"), out, 3, &out_len));
    CHECK(!rh_http_path_decode(span("a"), out, 1, &out_len));
    CHECK(rh_http_path_decode(span(""), out, 1, &out_len));
    CHECK(out_len == 0 && out[0] == '\0');
    out_len = 99;
    CHECK(!rh_http_path_decode(span(""), out, 0, &out_len));
    CHECK_EQ(out_len, 0);
}

static void check_buf(struct rh_buf *b, const char *expected, size_t expected_len, const char *file,
                      int line, const char *expr)
{
    bool same = b->len == expected_len && memcmp(b->data, expected, expected_len) == 0;
    char got[512];
    size_t n = 0;

    /* What the buffer holds, escaped, for the failure message. */
    for (uint32_t i = 0; i < b->len && n + 5 < sizeof(got); i++) {
        uint8_t c = b->data[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            got[n++] = (char)c;
        else
            n += (size_t)snprintf(got + n, sizeof(got) - n, "\\x%02x", c);
    }
    got[n] = '\0';
    rh_check_report(same, file, line, expr, got);
    /* Sized exactly in advance: built once, never grown. */
    rh_check_report(b->cap == b->len, file, line, "cap == len", got);
    rh_buf_unref(b);
}

static struct rh_span span(const char *s)
{
    return rh_span_make(s, (uint32_t)strlen(s));
}
