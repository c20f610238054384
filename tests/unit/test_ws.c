/* tests/unit/test_ws.c - the WebSocket module: the accept key and 101 response, byte-exact
 * outgoing frames, and the client-frame parser fed every sample at every split point (two and
 * three chunks, and byte by byte), then invalid, truncated and oversized input. */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "tests/harness/check.h"
#include "transports/ws.h"

#define LOG_SIZE 4096

/* What the callbacks saw, as text, so one string compares a whole run. */
struct record {
    char log[LOG_SIZE];
    size_t log_len;
    bool closed;
    int stop_with; /* on_message returns this */
};

struct outcome {
    ssize_t rc; /* 0 when every feed consumed its chunk, else the first error */
    uint16_t close_code;
    bool idle;
};

static const uint8_t mask_key[4] = {0x37, 0xfa, 0x21, 0x3d};

static void log_add(struct record *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_add(struct record *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->log + r->log_len, LOG_SIZE - r->log_len, fmt, ap);
    va_end(ap);
    if (n > 0) r->log_len += (size_t)n;
    if (r->log_len >= LOG_SIZE) r->log_len = LOG_SIZE - 1;
}

/* Short payloads are logged as text, long ones as length and a checksum. */
static void log_payload(struct record *r, const uint8_t *p, size_t len)
{
    if (len <= 40) {
        log_add(r, "%zu:%.*s", len, (int)len, (const char *)p);
        return;
    }
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + p[i];
    log_add(r, "%zu#%08x", len, sum);
}

static int on_message(void *ctx, enum rh_ws_opcode op, const uint8_t *payload, size_t len)
{
    struct record *r = ctx;
    log_add(r, "%c", op == RH_WS_OP_TEXT ? 'T' : 'B');
    log_payload(r, payload, len);
    log_add(r, "|");
    return r->stop_with;
}

static int on_ping(void *ctx, const uint8_t *payload, size_t len)
{
    struct record *r = ctx;
    log_add(r, "P");
    log_payload(r, payload, len);
    log_add(r, "|");
    return 0;
}

static int on_close(void *ctx, uint16_t code, const char *reason, size_t reason_len)
{
    struct record *r = ctx;
    log_add(r, "C%u:%.*s|", code, (int)reason_len, reason);
    r->closed = true;
    return 0;
}

static const struct rh_ws_in_ops ops = {
    .on_message = on_message,
    .on_ping = on_ping,
    .on_close = on_close,
};

/* Appends one client frame to @out (masked unless @unmasked) and returns its length.
 * @len_form forces a length encoding: 0 shortest, 2 16-bit, 8 64-bit. */
static size_t put_frame_ex(uint8_t *out, bool fin, uint8_t rsv, uint8_t op, const void *payload,
                           size_t len, bool unmasked, int len_form)
{
    const uint8_t *p = payload;
    size_t n = 0;
    out[n++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | op);
    uint8_t mask_bit = unmasked ? 0 : 0x80;
    if (len_form == 0 && len < 126) {
        out[n++] = (uint8_t)(mask_bit | len);
    } else if (len_form == 2 || (len_form == 0 && len <= 0xffff)) {
        out[n++] = mask_bit | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = mask_bit | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (!unmasked) {
        memcpy(out + n, mask_key, 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++)
        out[n + i] = unmasked ? p[i] : (uint8_t)(p[i] ^ mask_key[i % 4]);
    return n + len;
}

static size_t put_frame(uint8_t *out, bool fin, uint8_t op, const void *payload, size_t len)
{
    return put_frame_ex(out, fin, 0, op, payload, len, false, 0);
}

/* Feeds @data cut at the offsets in @cuts (ascending, @cut_count of them) into a new parser. */
static struct outcome feed_cut(const uint8_t *data, size_t len, uint32_t max, const size_t *cuts,
                               size_t cut_count, struct record *r)
{
    struct rh_ws_in in;
    struct outcome o = {0};
    size_t start = 0;

    memset(r, 0, sizeof(*r));
    rh_ws_in_init(&in, max);
    for (size_t i = 0; i <= cut_count && !r->closed; i++) {
        size_t end = i < cut_count ? cuts[i] : len;
        if (end == start) continue;
        ssize_t n = rh_ws_in_feed(&in, data + start, end - start, &ops, r);
        if (n < 0) {
            o.rc = n;
            break;
        }
        if (n != (ssize_t)(end - start)) o.rc = -1000; /* must consume everything */
        start = end;
    }
    o.close_code = in.close_code;
    if (o.rc < 0 && o.rc != -EPROTO && o.rc != -EMSGSIZE) o.close_code = 0;
    if (o.rc == -EPROTO || o.rc == -EMSGSIZE) CHECK(in.reason != NULL && in.reason[0] != '\0');
    o.idle = rh_ws_in_is_idle(&in);
    rh_ws_in_destroy(&in);
    return o;
}

/* Runs @data whole, split in two at every offset, in three at every pair of offsets (when
 * short), and byte by byte; every run must log @want_log and end with @want_rc/@want_code. */
static void check_splits(const char *name, const uint8_t *data, size_t len, uint32_t max,
                         const char *want_log, ssize_t want_rc, uint16_t want_code)
{
    struct record *r = malloc(sizeof(*r));
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    int64_t base = rh_alloc_live_bytes();
    unsigned bad = 0, runs = 0;

    /* Long samples: every cut near the ends and a stride through the middle. */
    size_t stride = len > 2000 ? len / 97 : 1;
    for (size_t i = 0; i <= len; i += (i < 40 || i + 40 > len) ? 1 : stride) {
        size_t two[1] = {i};
        struct outcome o = feed_cut(data, len, max, two, 1, r);
        runs++;
        if (strcmp(r->log, want_log) != 0 || o.rc != want_rc || o.close_code != want_code ||
            (want_rc == 0 && !r->closed && !o.idle)) {
            if (bad++ == 0)
                printf("%s: cut at %zu: log \"%s\" rc %zd code %u idle %d\n", name, i, r->log, o.rc,
                       o.close_code, o.idle);
        }
    }
    for (size_t i = 1; len <= 48 && i < len; i++) {
        for (size_t j = i + 1; j < len; j++) {
            size_t three[2] = {i, j};
            struct outcome o = feed_cut(data, len, max, three, 2, r);
            runs++;
            if (strcmp(r->log, want_log) != 0 || o.rc != want_rc || o.close_code != want_code) {
                if (bad++ == 0)
                    printf("%s: cuts at %zu,%zu: log \"%s\" rc %zd\n", name, i, j, r->log, o.rc);
            }
        }
    }
    if (len <= 70000) {
        for (size_t i = 0; i < len; i++)
            cuts[i] = i + 1;
        struct outcome o = feed_cut(data, len, max, cuts, len, r);
        runs++;
        if (strcmp(r->log, want_log) != 0 || o.rc != want_rc || o.close_code != want_code) {
            if (bad++ == 0) printf("%s: byte by byte: log \"%s\" rc %zd\n", name, r->log, o.rc);
        }
    }
    rh_check_report(bad == 0, __FILE__, __LINE__, name, want_log);
    CHECK_EQ(rh_alloc_live_bytes(), base);
    CHECK_GT(runs, 0);
    free(cuts);
    free(r);
}

static void test_rfc_examples(void)
{
    /* RFC 6455 §5.7: a single-frame masked text message. */
    static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58};
    check_splits("masked Hello", hello, sizeof(hello), 0, "T5:Hello|", 0, 0);

    /* The same server-side example unmasked: a client must mask. */
    static const uint8_t hello_unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    check_splits("unmasked Hello", hello_unmasked, sizeof(hello_unmasked), 0, "", -EPROTO,
                 RH_WS_CLOSE_PROTOCOL_ERROR);

    /* The fragmented "Hel" + "lo", masked; an unmasked ping; a masked pong (ignored). */
    uint8_t buf[64];
    size_t n = put_frame(buf, false, RH_WS_OP_TEXT, "Hel", 3);
    n += put_frame(buf + n, true, RH_WS_OP_CONTINUATION, "lo", 2);
    check_splits("fragmented Hello", buf, n, 0, "T5:Hello|", 0, 0);

    static const uint8_t ping_unmasked[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    check_splits("unmasked ping", ping_unmasked, sizeof(ping_unmasked), 0, "", -EPROTO,
                 RH_WS_CLOSE_PROTOCOL_ERROR);
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    check_splits("masked pong", pong, sizeof(pong), 0, "", 0, 0);
    n = put_frame(buf, true, RH_WS_OP_PING, "Hello", 5);
    check_splits("masked ping", buf, n, 0, "P5:Hello|", 0, 0);

    /* Fragments with a ping and a pong between them, then a second message. */
    n = put_frame(buf, false, RH_WS_OP_TEXT, "He", 2);
    n += put_frame(buf + n, true, RH_WS_OP_PING, "p", 1);
    n += put_frame(buf + n, false, RH_WS_OP_CONTINUATION, "l", 1);
    n += put_frame(buf + n, true, RH_WS_OP_PONG, "q", 1);
    n += put_frame(buf + n, true, RH_WS_OP_CONTINUATION, "lo", 2);
    n += put_frame(buf + n, true, RH_WS_OP_BINARY, "\x01\x02", 2);
    check_splits("interleaved control", buf, n, 0, "P1:p|T5:Hello|B2:\x01\x02|", 0, 0);

    /* Empty messages, one whole and one in empty fragments, and an empty ping. */
    n = put_frame(buf, true, RH_WS_OP_TEXT, "", 0);
    n += put_frame(buf + n, false, RH_WS_OP_BINARY, "", 0);
    n += put_frame(buf + n, true, RH_WS_OP_PING, "", 0);
    n += put_frame(buf + n, true, RH_WS_OP_CONTINUATION, "", 0);
    check_splits("empty", buf, n, 0, "T0:|P0:|B0:|", 0, 0);
}

/* A binary message of @len bytes in one frame, or in @frag_count fragments. */
static size_t put_big(uint8_t *out, size_t len, unsigned frag_count, int len_form)
{
    uint8_t *payload = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    size_t n = 0, off = 0;
    for (unsigned f = 0; f < frag_count; f++) {
        size_t part = f + 1 == frag_count ? len - off : len / frag_count;
        n += put_frame_ex(out + n, f + 1 == frag_count, 0,
                          f == 0 ? RH_WS_OP_BINARY : RH_WS_OP_CONTINUATION, payload + off, part,
                          false, len_form);
        off += part;
    }
    free(payload);
    return n;
}

static void expect_big(char *want, size_t want_size, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + (uint8_t)(i * 7 + 3);
    snprintf(want, want_size, "B%zu#%08x|", len, sum);
}

static void test_lengths_and_limits(void)
{
    uint8_t *buf = malloc(300000);
    char want[64];
    size_t sizes[] = {125, 126, 65535, 65536, 100000};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = put_big(buf, sizes[i], 1, 0);
        expect_big(want, sizeof(want), sizes[i]);
        check_splits("one frame", buf, n, 200000, want, 0, 0);
        n = put_big(buf, sizes[i], 3, 0);
        check_splits("three fragments", buf, n, 200000, want, 0, 0);
    }

    /* Exactly the limit passes; one byte more closes with 1009, whole or fragmented. */
    size_t n = put_big(buf, 1000, 1, 0);
    expect_big(want, sizeof(want), 1000);
    check_splits("max exact", buf, n, 1000, want, 0, 0);
    n = put_big(buf, 1000, 4, 0);
    check_splits("max exact fragmented", buf, n, 1000, want, 0, 0);
    n = put_big(buf, 1001, 1, 0);
    check_splits("max + 1", buf, n, 1000, "", -EMSGSIZE, RH_WS_CLOSE_MESSAGE_TOO_BIG);
    n = put_big(buf, 1001, 4, 0);
    check_splits("max + 1 fragmented", buf, n, 1000, "", -EMSGSIZE, RH_WS_CLOSE_MESSAGE_TOO_BIG);

    /* The default limit is 32 KiB. */
    n = put_big(buf, 32768, 1, 0);
    expect_big(want, sizeof(want), 32768);
    check_splits("default max", buf, n, 0, want, 0, 0);
    n = put_big(buf, 32769, 2, 0);
    check_splits("default max + 1", buf, n, 0, "", -EMSGSIZE, RH_WS_CLOSE_MESSAGE_TOO_BIG);

    /* A huge length is refused from its header, before any payload is held. */
    static const uint8_t huge[] = {0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 9};
    check_splits("4 GiB header", huge, sizeof(huge), 0, "", -EMSGSIZE, RH_WS_CLOSE_MESSAGE_TOO_BIG);
    static const uint8_t top_bit[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 9};
    check_splits("64-bit length top bit", top_bit, sizeof(top_bit), 0, "", -EPROTO,
                 RH_WS_CLOSE_PROTOCOL_ERROR);

    /* Lengths not in their shortest form. */
    n = put_frame_ex(buf, true, 0, RH_WS_OP_BINARY, "abc", 3, false, 2);
    check_splits("16-bit form for 3", buf, n, 0, "", -EPROTO, RH_WS_CLOSE_PROTOCOL_ERROR);
    n = put_frame_ex(buf, true, 0, RH_WS_OP_BINARY, "abc", 3, false, 8);
    check_splits("64-bit form for 3", buf, n, 0, "", -EPROTO, RH_WS_CLOSE_PROTOCOL_ERROR);
    free(buf);
}

static void check_text(const char *name, const char *text, size_t len, bool valid)
{
    uint8_t buf[256];
    char want[128];
    size_t n = put_frame(buf, true, RH_WS_OP_TEXT, text, len);
    snprintf(want, sizeof(want), "T%zu:%.*s|", len, (int)len, text);
    check_splits(name, buf, n, 0, valid ? want : "", valid ? 0 : -EPROTO,
                 valid ? 0 : RH_WS_CLOSE_INVALID_PAYLOAD);

    /* The same text as binary is never checked. */
    n = put_frame(buf, true, RH_WS_OP_BINARY, text, len);
    want[0] = 'B';
    check_splits(name, buf, n, 0, want, 0, 0);
}

static void test_utf8(void)
{
    check_text("ascii", "plain", 5, true);
    check_text("two-byte", "\xc2\xa9", 2, true);
    check_text("euro", "\xe2\x82\xac", 3, true);
    check_text("U+FFFF", "\xef\xbf\xbf", 3, true);
    check_text("U+10FFFF", "\xf4\x8f\xbf\xbf", 4, true);
    check_text("U+D7FF", "\xed\x9f\xbf", 3, true);
    check_text("0xff", "a\xff", 2, false);
    check_text("lone continuation", "\x80", 1, false);
    check_text("overlong 2", "\xc0\x80", 2, false);
    check_text("overlong 2b", "\xc1\xbf", 2, false);
    check_text("overlong 3", "\xe0\x80\x80", 3, false);
    check_text("overlong 4", "\xf0\x8f\xbf\xbf", 4, false);
    check_text("surrogate", "\xed\xa0\x80", 3, false);
    check_text("surrogate low", "\xed\xbf\xbf", 3, false);
    check_text("over U+10FFFF", "\xf4\x90\x80\x80", 4, false);
    check_text("f5", "\xf5\x80\x80\x80", 4, false);
    check_text("truncated", "ok\xe2\x82", 4, false);
    check_text("bad continuation", "\xe2\x28\xa1", 3, false);

    /* A character cut across fragments, valid and not. */
    uint8_t buf[128];
    size_t n = put_frame(buf, false, RH_WS_OP_TEXT, "\xe2", 1);
    n += put_frame(buf + n, false, RH_WS_OP_CONTINUATION, "\x82", 1);
    n += put_frame(buf + n, true, RH_WS_OP_CONTINUATION, "\xac!", 2);
    check_splits("euro across fragments", buf, n, 0, "T4:\xe2\x82\xac!|", 0, 0);
    n = put_frame(buf, false, RH_WS_OP_TEXT, "\xf0\x9f", 2);
    n += put_frame(buf + n, true, RH_WS_OP_CONTINUATION, "\x28\x80", 2);
    check_splits("bad across fragments", buf, n, 0, "", -EPROTO, RH_WS_CLOSE_INVALID_PAYLOAD);
    n = put_frame(buf, false, RH_WS_OP_TEXT, "ab\xe2\x82", 4);
    n += put_frame(buf + n, true, RH_WS_OP_CONTINUATION, "", 0);
    check_splits("truncated at final fragment", buf, n, 0, "", -EPROTO,
                 RH_WS_CLOSE_INVALID_PAYLOAD);
    /* Fail fast: the bad byte ends the parse before the message does. */
    n = put_frame(buf, false, RH_WS_OP_TEXT, "\xc0", 1);
    check_splits("fail fast", buf, n, 0, "", -EPROTO, RH_WS_CLOSE_INVALID_PAYLOAD);
}

static void test_protocol_errors(void)
{
    uint8_t buf[512];
    const ssize_t bad = -EPROTO;
    const uint16_t code = RH_WS_CLOSE_PROTOCOL_ERROR;

    for (uint8_t op = 3; op <= 0xf; op++) {
        if (op >= RH_WS_OP_CLOSE && op <= RH_WS_OP_PONG) continue;
        size_t n = put_frame(buf, true, op, "x", 1);
        check_splits("reserved opcode", buf, n, 0, "", bad, code);
        n = put_frame(buf, true, op, "", 0);
        check_splits("reserved opcode, empty", buf, n, 0, "", bad, code);
    }
    for (uint8_t rsv = 1; rsv <= 7; rsv++) {
        size_t n = put_frame_ex(buf, true, rsv, RH_WS_OP_TEXT, "x", 1, false, 0);
        check_splits("rsv bits", buf, n, 0, "", bad, code);
    }
    size_t n = put_frame_ex(buf, true, 0, RH_WS_OP_BINARY, "", 0, true, 0);
    check_splits("unmasked empty", buf, n, 0, "", bad, code);

    /* Control frames: over 125 bytes or fragmented. */
    uint8_t big[126];
    memset(big, 'a', sizeof(big));
    n = put_frame(buf, true, RH_WS_OP_PING, big, 125);
    char want[160];
    snprintf(want, sizeof(want), "P125#%08x|", 0u);
    {
        uint32_t sum = 0;
        for (int i = 0; i < 125; i++)
            sum = sum * 31 + 'a';
        snprintf(want, sizeof(want), "P125#%08x|", sum);
    }
    check_splits("ping 125", buf, n, 0, want, 0, 0);
    n = put_frame(buf, true, RH_WS_OP_PING, big, 126);
    check_splits("ping 126", buf, n, 0, "", bad, code);
    n = put_frame(buf, true, RH_WS_OP_CLOSE, big, 126);
    check_splits("close 126", buf, n, 0, "", bad, code);
    n = put_frame(buf, false, RH_WS_OP_PING, "x", 1);
    check_splits("fragmented ping", buf, n, 0, "", bad, code);
    n = put_frame(buf, false, RH_WS_OP_PONG, "", 0);
    check_splits("fragmented pong", buf, n, 0, "", bad, code);

    /* Fragmentation order. */
    n = put_frame(buf, true, RH_WS_OP_CONTINUATION, "x", 1);
    check_splits("continuation first", buf, n, 0, "", bad, code);
    n = put_frame(buf, true, RH_WS_OP_TEXT, "a", 1);
    n += put_frame(buf + n, true, RH_WS_OP_CONTINUATION, "b", 1);
    check_splits("continuation after end", buf, n, 0, "T1:a|", bad, code);
    n = put_frame(buf, false, RH_WS_OP_TEXT, "a", 1);
    n += put_frame(buf + n, true, RH_WS_OP_BINARY, "b", 1);
    check_splits("message inside fragments", buf, n, 0, "", bad, code);

    /* Good frames before a bad one are delivered; then the parser is done. */
    n = put_frame(buf, true, RH_WS_OP_TEXT, "one", 3);
    n += put_frame_ex(buf + n, true, 0, RH_WS_OP_TEXT, "two", 3, true, 0);
    check_splits("good then bad", buf, n, 0, "T3:one|", bad, code);
}

static void check_close(const char *name, const uint8_t *payload, size_t len, const char *want,
                        ssize_t want_rc, uint16_t want_code)
{
    uint8_t buf[256];
    size_t n = put_frame(buf, true, RH_WS_OP_CLOSE, payload, len);
    check_splits(name, buf, n, 0, want, want_rc, want_code);
}

static void test_close(void)
{
    check_close("close empty", NULL, 0, "C1005:|", 0, 0);
    check_close("close 1000", (const uint8_t *)"\x03\xe8", 2, "C1000:|", 0, 0);
    check_close("close 1001 bye",
                (const uint8_t *)"\x03\xe9"
                                 "bye",
                5, "C1001:bye|", 0, 0);
    check_close("close 1014", (const uint8_t *)"\x03\xf6", 2, "C1014:|", 0, 0);
    check_close("close 3000", (const uint8_t *)"\x0b\xb8", 2, "C3000:|", 0, 0);
    check_close("close 4999", (const uint8_t *)"\x13\x87", 2, "C4999:|", 0, 0);
    check_close("close utf-8 reason", (const uint8_t *)"\x03\xe8\xe2\x82\xac", 5,
                "C1000:\xe2\x82\xac|", 0, 0);
    check_close("close one byte", (const uint8_t *)"\x03", 1, "", -EPROTO,
                RH_WS_CLOSE_PROTOCOL_ERROR);
    check_close("close bad reason", (const uint8_t *)"\x03\xe8\xff", 3, "", -EPROTO,
                RH_WS_CLOSE_INVALID_PAYLOAD);
    check_close("close cut reason", (const uint8_t *)"\x03\xe8\xe2\x82", 4, "", -EPROTO,
                RH_WS_CLOSE_INVALID_PAYLOAD);

    static const uint16_t invalid[] = {0,    999,  1004, 1005, 1006, 1015,
                                       1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        uint8_t p[2] = {(uint8_t)(invalid[i] >> 8), (uint8_t)invalid[i]};
        check_close("invalid close code", p, 2, "", -EPROTO, RH_WS_CLOSE_PROTOCOL_ERROR);
    }

    /* Whatever follows a close is consumed and dropped. */
    uint8_t buf[64];
    size_t n = put_frame(buf, true, RH_WS_OP_TEXT, "hi", 2);
    n += put_frame(buf + n, true, RH_WS_OP_CLOSE, "\x03\xe8", 2);
    n += put_frame(buf + n, true, RH_WS_OP_TEXT, "late", 4);
    buf[n++] = 0xff;
    check_splits("after close", buf, n, 0, "T2:hi|C1000:|", 0, 0);

    struct rh_ws_in in;
    struct record r = {0};
    rh_ws_in_init(&in, 0);
    CHECK_EQ(rh_ws_in_feed(&in, buf, n, &ops, &r), (ssize_t)n);
    CHECK(rh_ws_in_is_idle(&in));
    CHECK_EQ(rh_ws_in_feed(&in, buf, n, &ops, &r), -EPIPE);
    rh_ws_in_destroy(&in);
}

static void test_feed_api(void)
{
    uint8_t buf[64];
    struct rh_ws_in in;
    struct record r = {0};
    int64_t base = rh_alloc_live_bytes();

    rh_ws_in_init(&in, 0);
    CHECK_EQ(in.message_bytes_max, RH_WS_MESSAGE_BYTES_DEFAULT);
    CHECK_EQ(rh_ws_in_feed(&in, buf, 0, &ops, &r), -EAGAIN);
    CHECK(rh_ws_in_is_idle(&in));

    /* A partial frame keeps working state; finishing it lets it all go. */
    size_t n = put_frame(buf, true, RH_WS_OP_TEXT, "Hello", 5);
    CHECK_EQ(rh_ws_in_feed(&in, buf, 3, &ops, &r), 3);
    CHECK(!rh_ws_in_is_idle(&in));
    CHECK_GT(rh_alloc_live_bytes(), base);
    CHECK_EQ(rh_ws_in_feed(&in, buf + 3, n - 3, &ops, &r), (ssize_t)(n - 3));
    CHECK(rh_ws_in_is_idle(&in));
    CHECK_EQ(rh_alloc_live_bytes(), base);
    CHECK(strcmp(r.log, "T5:Hello|") == 0);

    /* A fragment ends on a frame boundary but the message is not done: still busy. */
    n = put_frame(buf, false, RH_WS_OP_TEXT, "ab", 2);
    CHECK_EQ(rh_ws_in_feed(&in, buf, n, &ops, &r), (ssize_t)n);
    CHECK(!rh_ws_in_is_idle(&in));
    rh_ws_in_destroy(&in);
    CHECK_EQ(rh_alloc_live_bytes(), base);

    /* A callback's error stops the parser and comes back as is. */
    rh_ws_in_init(&in, 0);
    memset(&r, 0, sizeof(r));
    r.stop_with = -ECANCELED;
    n = put_frame(buf, true, RH_WS_OP_TEXT, "a", 1);
    n += put_frame(buf + n, true, RH_WS_OP_TEXT, "b", 1);
    CHECK_EQ(rh_ws_in_feed(&in, buf, n, &ops, &r), -ECANCELED);
    CHECK(strcmp(r.log, "T1:a|") == 0);
    CHECK_EQ(in.close_code, 0);
    CHECK_EQ(rh_ws_in_feed(&in, buf, n, &ops, &r), -EPIPE);
    rh_ws_in_destroy(&in);

    /* After an error the reason is set and further input is refused. */
    rh_ws_in_init(&in, 0);
    memset(&r, 0, sizeof(r));
    n = put_frame_ex(buf, true, 0, RH_WS_OP_TEXT, "a", 1, true, 0);
    CHECK_EQ(rh_ws_in_feed(&in, buf, n, &ops, &r), -EPROTO);
    CHECK_EQ(in.close_code, RH_WS_CLOSE_PROTOCOL_ERROR);
    CHECK(in.reason && strcmp(in.reason, "client frame not masked") == 0);
    CHECK(rh_ws_in_is_idle(&in));
    CHECK_EQ(rh_ws_in_feed(&in, buf, n, &ops, &r), -EPIPE);
    rh_ws_in_destroy(&in);
    CHECK_EQ(rh_alloc_live_bytes(), base);

    /* Null ping and close callbacks. */
    static const struct rh_ws_in_ops message_only = {.on_message = on_message};
    rh_ws_in_init(&in, 0);
    memset(&r, 0, sizeof(r));
    n = put_frame(buf, true, RH_WS_OP_PING, "x", 1);
    n += put_frame(buf + n, true, RH_WS_OP_CLOSE, "", 0);
    CHECK_EQ(rh_ws_in_feed(&in, buf, n, &message_only, &r), (ssize_t)n);
    CHECK_EQ(rh_ws_in_feed(&in, buf, n, &message_only, &r), -EPIPE);
    rh_ws_in_destroy(&in);
}

/* Bytes the working state of one busy parser holds, and the idle struct's size. */
static void test_memory(void)
{
    uint8_t buf[16];
    struct rh_ws_in in;
    struct record r = {0};

    rh_ws_in_init(&in, 0);
    size_t n = put_frame(buf, true, RH_WS_OP_BINARY, "abcd", 4);
    int64_t live = rh_alloc_live_bytes();
    struct mallinfo2 before = mallinfo2();
    rh_ws_in_feed(&in, buf, n - 1, &ops, &r);
    struct mallinfo2 after = mallinfo2();
    printf("memory: idle struct rh_ws_in %zu bytes, nothing allocated; busy: %" PRId64
           " bytes through rh_alloc, %zu malloc'd in all (wslay's frame context included)\n",
           sizeof(struct rh_ws_in), rh_alloc_live_bytes() - live, after.uordblks - before.uordblks);
    CHECK_LE(sizeof(struct rh_ws_in), 24);
    rh_ws_in_feed(&in, buf + n - 1, 1, &ops, &r);
    CHECK(rh_ws_in_is_idle(&in));
    CHECK_EQ(rh_alloc_live_bytes(), live);
    rh_ws_in_destroy(&in);
}

static void check_frame(const char *name, enum rh_ws_opcode op, uint32_t len,
                        const uint8_t *want_header, size_t want_header_len)
{
    uint8_t *payload = malloc(len + 1);
    for (uint32_t i = 0; i < len; i++)
        payload[i] = (uint8_t)i;
    struct rh_buf *f = rh_ws_frame_new(op, payload, len);
    bool ok = f->len == want_header_len + len && f->refs == 1 &&
              memcmp(f->data, want_header, want_header_len) == 0 &&
              memcmp(f->data + want_header_len, payload, len) == 0;
    rh_check_report(ok, __FILE__, __LINE__, name, NULL);

    uint8_t header[10];
    CHECK_EQ(rh_ws_frame_header(header, op, len, true), want_header_len);
    CHECK(memcmp(header, want_header, want_header_len) == 0);
    rh_buf_unref(f);
    free(payload);
}

static void test_encoder(void)
{
    int64_t base = rh_alloc_live_bytes();
    check_frame("0 bytes", RH_WS_OP_TEXT, 0, (const uint8_t *)"\x81\x00", 2);
    check_frame("125 bytes", RH_WS_OP_BINARY, 125, (const uint8_t *)"\x82\x7d", 2);
    check_frame("126 bytes", RH_WS_OP_TEXT, 126, (const uint8_t *)"\x81\x7e\x00\x7e", 4);
    check_frame("65535 bytes", RH_WS_OP_BINARY, 65535, (const uint8_t *)"\x82\x7e\xff\xff", 4);
    check_frame("65536 bytes", RH_WS_OP_BINARY, 65536,
                (const uint8_t *)"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    check_frame("pong", RH_WS_OP_PONG, 5, (const uint8_t *)"\x8a\x05", 2);

    uint8_t header[10];
    CHECK_EQ(rh_ws_frame_header(header, RH_WS_OP_CONTINUATION, 5, false), 2);
    CHECK_EQ(header[0], 0x00);
    CHECK_EQ(rh_ws_frame_header(header, RH_WS_OP_TEXT, 1ull << 40, false), 10);
    CHECK(memcmp(header, "\x01\x7f\x00\x00\x01\x00\x00\x00\x00\x00", 10) == 0);

    struct rh_buf *f = rh_ws_close_frame_new(0, "ignored");
    CHECK(f->len == 2 && memcmp(f->data, "\x88\x00", 2) == 0);
    rh_buf_unref(f);
    f = rh_ws_close_frame_new(1000, NULL);
    CHECK(f->len == 4 && memcmp(f->data, "\x88\x02\x03\xe8", 4) == 0);
    rh_buf_unref(f);
    f = rh_ws_close_frame_new(1009, "message too big");
    CHECK(f->len == 19 && memcmp(f->data, "\x88\x11\x03\xf1message too big", 19) == 0);
    rh_buf_unref(f);

    /* 123 bytes of reason fit; a longer one is cut before the character the limit splits. */
    char reason[200];
    memset(reason, 'r', 123);
    reason[123] = '\0';
    f = rh_ws_close_frame_new(1000, reason);
    CHECK_EQ(f->len, 2 + 125);
    CHECK_EQ(f->data[1], 125);
    rh_buf_unref(f);
    memset(reason, 'r', 122);
    memcpy(reason + 122, "\xe2\x82\xac tail", 9);
    f = rh_ws_close_frame_new(1000, reason);
    CHECK_EQ(f->len, 2 + 2 + 122);
    CHECK_EQ(f->data[f->len - 1], 'r');
    rh_buf_unref(f);
    memset(reason, 'r', 121);
    memcpy(reason + 121, "\xc2\xa9\xc2\xa9", 5);
    f = rh_ws_close_frame_new(1000, reason);
    CHECK_EQ(f->len, 2 + 2 + 123);
    rh_buf_unref(f);

    /* Our own close frame, masked as a client would, parses back. */
    f = rh_ws_close_frame_new(4000, "\xe2\x82\xac");
    uint8_t buf[64];
    size_t n = put_frame(buf, true, RH_WS_OP_CLOSE, f->data + 2, f->len - 2);
    check_splits("close round trip", buf, n, 0, "C4000:\xe2\x82\xac|", 0, 0);
    rh_buf_unref(f);
    CHECK_EQ(rh_alloc_live_bytes(), base);
}

static void test_handshake(void)
{
    char out[RH_WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";

    /* RFC 6455 §1.3 (checked with: printf %s KEY258EAFA5-... | openssl sha1 -binary | base64). */
    CHECK_EQ(rh_ws_accept_key(key, 24, out), 0);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);

    CHECK_EQ(rh_ws_accept_key(key, 23, out), -EINVAL);
    CHECK_EQ(rh_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=x", 24, out), -EINVAL);
    CHECK_EQ(rh_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=", 23, out), -EINVAL);
    CHECK_EQ(rh_ws_accept_key("dGhlIHNhbXBsZSBub25jZ===", 24, out), -EINVAL);
    CHECK_EQ(rh_ws_accept_key("dGhlIHNhbXBsZSBub2-jZQ==", 24, out), -EINVAL);
    CHECK_EQ(rh_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==x", 25, out), -EINVAL);
    CHECK_EQ(rh_ws_accept_key("", 0, out), -EINVAL);
    CHECK_EQ(rh_ws_accept_key("AAAAAAAAAAAAAAAAAAAAAA==", 24, out), 0);

    char resp[256];
    const char *want = "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                       "\r\n";
    CHECK_EQ(rh_ws_write_handshake(resp, sizeof(resp), key, 24), (int)strlen(want));
    CHECK(strcmp(resp, want) == 0);
    CHECK_LE(strlen(want) + 1, 130);
    CHECK_EQ(rh_ws_write_handshake(resp, strlen(want), key, 24), -ENOSPC);
    CHECK_EQ(rh_ws_write_handshake(resp, sizeof(resp), "short", 5), -EINVAL);
}

/* Streamed mode (on_data): pieces in order, ends marked, no size limit, UTF-8 across pieces. */
struct stream {
    uint8_t *bytes;
    size_t len, cap;
    int ends;
    enum rh_ws_opcode op;
};

static int on_stream_data(void *ctx, enum rh_ws_opcode op, const uint8_t *data, size_t len,
                          bool is_end)
{
    struct stream *st = ctx;
    if (st->len + len > st->cap) return -ENOSPC;
    memcpy(st->bytes + st->len, data, len);
    st->len += len;
    st->ends += is_end;
    st->op = op;
    return 0;
}

static const struct rh_ws_in_ops stream_ops = {.on_data = on_stream_data};

/* Feeds @data in pieces of @step bytes into a streamed parser limited to 1 KiB messages. */
static ssize_t feed_stream(const uint8_t *data, size_t len, size_t step, struct stream *st,
                           bool *idle)
{
    struct rh_ws_in in;
    rh_ws_in_init(&in, 1024);
    ssize_t rc = 0;
    for (size_t off = 0; off < len && rc >= 0; off += step) {
        size_t n = len - off < step ? len - off : step;
        rc = rh_ws_in_feed(&in, data + off, n, &stream_ops, st);
    }
    *idle = rh_ws_in_is_idle(&in);
    rh_ws_in_destroy(&in);
    return rc < 0 ? rc : 0;
}

static void test_streamed(void)
{
    enum { BIG = 100000 };
    uint8_t *frames = malloc(BIG + 64);
    struct stream st = {.bytes = malloc(BIG), .cap = BIG};
    size_t n = put_big(frames, BIG, 3, 0);
    static const size_t steps[] = {1, 7, 4096, BIG + 64};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        bool idle = false;
        st.len = 0;
        st.ends = 0;
        CHECK_EQ(feed_stream(frames, n, steps[i], &st, &idle), 0);
        CHECK_EQ(st.len, BIG); /* far over the 1 KiB limit of whole messages */
        CHECK_EQ(st.ends, 1);
        CHECK_EQ(st.op, RH_WS_OP_BINARY);
        CHECK(idle);
        int wrong = 0;
        for (size_t j = 0; j < BIG; j++)
            wrong += st.bytes[j] != (uint8_t)(j * 7 + 3);
        CHECK_EQ(wrong, 0);
    }

    /* Text checked across pieces: a character cut over fragments passes, a bad one fails. */
    bool idle;
    n = put_frame(frames, false, RH_WS_OP_TEXT, "\xe2", 1);
    n += put_frame(frames + n, true, RH_WS_OP_CONTINUATION, "\x82\xac!", 3);
    n += put_frame(frames + n, true, RH_WS_OP_TEXT, "", 0);
    st.len = 0;
    st.ends = 0;
    CHECK_EQ(feed_stream(frames, n, 1, &st, &idle), 0);
    CHECK_EQ(st.len, 4);
    CHECK(memcmp(st.bytes, "\xe2\x82\xac!", 4) == 0);
    CHECK_EQ(st.ends, 2);
    n = put_frame(frames, false, RH_WS_OP_TEXT, "ok\xf0\x9f", 4);
    n += put_frame(frames + n, true, RH_WS_OP_CONTINUATION, "\x28\x80", 2);
    CHECK_EQ(feed_stream(frames, n, 3, &st, &idle), -EPROTO);
    n = put_frame(frames, true, RH_WS_OP_TEXT, "cut\xe2\x82", 5);
    CHECK_EQ(feed_stream(frames, n, 2, &st, &idle), -EPROTO);
    free(st.bytes);
    free(frames);
}

int main(void)
{
    test_handshake();
    test_encoder();
    test_rfc_examples();
    test_lengths_and_limits();
    test_utf8();
    test_protocol_errors();
    test_close();
    test_feed_api();
    test_memory();
    test_streamed();
    return rh_check_finish();
}
