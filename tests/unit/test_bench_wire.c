/* tests/unit/test_bench_wire.c - ringhub-bench's wire code (tools/bench/wire.h) against the
 * server's own parsers and writers, so that the generator and the server agree: its hub
 * invocations, pings and handshakes parse with the server's JSON and MessagePack parsers (and
 * match the server's writers byte for byte); its client frames parse with the server's
 * WebSocket reader; and it reads the server's frames, hub messages, stamps and HTTP responses
 * as the server writes them, at every cut of incomplete input. Inputs are copied into buffers of
 * their exact size, so a read past the end shows under ASan. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "tests/harness/check.h"
#include "tools/bench/wire.h"
#include "transports/http/http.h"
#include "transports/hub_json.h"
#include "transports/hub_msgpack.h"
#include "transports/ws.h"

#define MAX_BYTES   (1u << 20) /* hub message limit given to the server's parsers */
#define OUT_CAP     16384      /* output buffer for the bench's writers */
#define BIG_ARG_LEN 70000      /* over MessagePack's str16 */

/* The server's writers and parser of one codec, so each test runs for both. */
struct server_codec {
    enum rb_codec codec;
    const char *name;
    ssize_t (*parse)(const uint8_t *data, size_t len, uint32_t max_bytes, struct rh_hub_msg *msg,
                     const char **reason);
    ssize_t (*arg_string)(const struct rh_hub_msg *m, uint32_t idx, uint8_t *out, size_t cap);
    void (*invocation)(struct rh_buf **out, struct rh_span invocation_id, struct rh_span target,
                       const struct rh_span *args, uint32_t argc);
    void (*completion)(struct rh_buf **out, struct rh_span invocation_id, enum rh_hub_result kind,
                       struct rh_span payload);
    void (*stream_item)(struct rh_buf **out, struct rh_span invocation_id, struct rh_span item);
    void (*ping)(struct rh_buf **out);
    void (*close)(struct rh_buf **out, struct rh_span error, bool allow_reconnect);
    void (*ack)(struct rh_buf **out, int64_t sequence_id);
    void (*sequence)(struct rh_buf **out, int64_t sequence_id);
};

static const struct server_codec codecs[] = {
    {RB_JSON, "json", rh_hub_json_parse, rh_hub_json_arg_string, rh_hub_json_write_invocation,
     rh_hub_json_write_completion, rh_hub_json_write_stream_item, rh_hub_json_write_ping,
     rh_hub_json_write_close, rh_hub_json_write_ack, rh_hub_json_write_sequence},
    {RB_MSGPACK, "messagepack", rh_hub_msgpack_parse, rh_hub_msgpack_arg_string,
     rh_hub_msgpack_write_invocation, rh_hub_msgpack_write_completion,
     rh_hub_msgpack_write_stream_item, rh_hub_msgpack_write_ping, rh_hub_msgpack_write_close,
     rh_hub_msgpack_write_ack, rh_hub_msgpack_write_sequence},
};

/* A server-written hub message and what the bench must read from it. */
struct sample {
    struct rh_buf *buf;
    int type;
    int is_error; /* completions: 0 or 1; others -1 */
};

#define SAMPLES_MAX 32

/* What the server's WebSocket reader handed back. */
struct ws_seen {
    const uint8_t *want;
    size_t want_len;
    unsigned messages, pings;
    int op;
    bool same;
};

static struct rh_hub_msg msg;
static uint8_t arg_out[BIG_ARG_LEN + 16];

static uint8_t *copy_exact(const void *data, size_t len);
static char *make_text(size_t len, unsigned seed);
static struct rh_span span_of(const char *s);
static struct rh_span encode_str(enum rb_codec codec, const char *s);
static bool span_is(struct rh_span s, const char *text);
static void check_invocation(const struct server_codec *sc, const char *id, const char *target,
                             const char *const *args, uint32_t argc, bool may_refuse);
static bool same_as_server_writer(const struct server_codec *sc, const char *id, const char *target,
                                  const char *const *args, uint32_t argc, const uint8_t *bytes,
                                  size_t len);
static void test_invocation(void);
static void test_invocation_cap(void);
static void test_ping_handshake(void);
static int ws_on_message(void *ctx, enum rh_ws_opcode op, const uint8_t *payload, size_t len);
static int ws_on_ping(void *ctx, const uint8_t *payload, size_t len);
static void feed_client_frame(const uint8_t *frame, size_t len, size_t split, struct ws_seen *seen);
static void test_ws_client_frame(void);
static void check_server_frame(const uint8_t *frame, size_t len, size_t head_len, uint8_t op,
                               bool fin, uint64_t payload_len);
static void test_ws_server_frame(void);
static size_t make_samples(const struct server_codec *sc, struct sample *s);
static void check_sample(const struct server_codec *sc, const struct sample *s);
static void test_hub_next(void);
static void test_hub_next_pipelined(void);
static void test_hub_next_broken(void);
static void check_stamp_in(const uint8_t *bytes, size_t len, const struct rb_stamp *st);
static void test_stamp(void);
static void test_stamp_in_messages(void);
static void test_stamp_corrupted(void);
static void check_http(const uint8_t *resp, size_t len, size_t head_len, int status,
                       size_t content_length);
static void test_http_response(void);
static void test_json_string_member(void);

int main(void)
{
    int64_t base = rh_alloc_live_bytes();
    test_invocation();
    test_invocation_cap();
    test_ping_handshake();
    test_ws_client_frame();
    test_ws_server_frame();
    test_hub_next();
    test_hub_next_pipelined();
    test_hub_next_broken();
    test_stamp();
    test_stamp_in_messages();
    test_stamp_corrupted();
    test_http_response();
    test_json_string_member();
    CHECK_EQ(rh_alloc_live_bytes(), base);
    return rh_check_finish();
}

/* A malloc'd copy of exactly @len bytes (a 1-byte block for 0, never read). */
static uint8_t *copy_exact(const void *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (!p) abort();
    if (len) memcpy(p, data, len);
    return p;
}

/* @len letters, varying with @seed, NUL-terminated; nothing needs escaping in JSON. */
static char *make_text(size_t len, unsigned seed)
{
    char *s = malloc(len + 1);
    if (!s) abort();
    for (size_t i = 0; i < len; i++)
        s[i] = (char)('a' + (i * 7 + seed) % 26);
    s[len] = '\0';
    return s;
}

static struct rh_span span_of(const char *s)
{
    return rh_span_make(s, (uint32_t)strlen(s));
}

/* @s as an encoded string value for the server's writers: "s" in JSON (no escapes needed),
 * the shortest str form in MessagePack. The caller frees .ptr. */
static struct rh_span encode_str(enum rb_codec codec, const char *s)
{
    size_t len = strlen(s), n = 0;
    uint8_t *out = malloc(len + 8);
    if (!out) abort();
    if (codec == RB_JSON) {
        out[n++] = '"';
        memcpy(out + n, s, len);
        n += len;
        out[n++] = '"';
        return rh_span_make(out, (uint32_t)n);
    }
    if (len < 32) {
        out[n++] = (uint8_t)(0xa0 | len);
    } else if (len < 256) {
        out[n++] = 0xd9;
        out[n++] = (uint8_t)len;
    } else if (len < 65536) {
        out[n++] = 0xda;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = 0xdb;
        for (int i = 3; i >= 0; i--)
            out[n++] = (uint8_t)(len >> (8 * i));
    }
    memcpy(out + n, s, len);
    return rh_span_make(out, (uint32_t)(n + len));
}

/* rh_span_eq_str, but an empty span may have a NULL pointer (memcmp may not be given one). */
static bool span_is(struct rh_span s, const char *text)
{
    return s.len ? rh_span_eq_str(s, text) : !*text;
}

/* ---- what the bench writes ---- */

/* rb_hub_invocation's output parses with the server's parser to the same fields, all of it
 * consumed, and equals the server's own writer's bytes. With @may_refuse, 0 is also right. */
static void check_invocation(const struct server_codec *sc, const char *id, const char *target,
                             const char *const *args, uint32_t argc, bool may_refuse)
{
    size_t cap = OUT_CAP + BIG_ARG_LEN * 2;
    uint8_t *out = malloc(cap);
    if (!out) abort();
    size_t n = rb_hub_invocation(out, cap, sc->codec, id, target, args, argc);
    if (may_refuse && n == 0) {
        free(out);
        return;
    }
    CHECK_GT(n, 0);
    uint8_t *bytes = copy_exact(out, n);
    const char *reason = NULL;
    ssize_t r = sc->parse(bytes, n, MAX_BYTES, &msg, &reason);
    CHECK_EQ(r, n);
    if (r != (ssize_t)n) fprintf(stderr, "  %s, %u args: %s\n", sc->name, argc, reason);
    if (r == (ssize_t)n) {
        CHECK_EQ(msg.type, RH_HUB_INVOCATION);
        CHECK(span_is(msg.target, target));
        CHECK(span_is(msg.invocation_id, id ? id : ""));
        CHECK_EQ(msg.arg_count, argc);
        for (uint32_t i = 0; i < argc && i < msg.arg_count; i++) {
            ssize_t k = sc->arg_string(&msg, i, arg_out, sizeof(arg_out));
            CHECK_EQ(k, strlen(args[i]));
            CHECK(k >= 0 && memcmp(arg_out, args[i], (size_t)k) == 0);
        }
    }
    if (n) CHECK(same_as_server_writer(sc, id, target, args, argc, bytes, n));
    free(bytes);
    free(out);
}

static bool same_as_server_writer(const struct server_codec *sc, const char *id, const char *target,
                                  const char *const *args, uint32_t argc, const uint8_t *bytes,
                                  size_t len)
{
    struct rh_span spans[16];
    for (uint32_t i = 0; i < argc; i++)
        spans[i] = encode_str(sc->codec, args[i]);
    struct rh_buf *buf = rh_buf_new(0);
    sc->invocation(&buf, id ? span_of(id) : rh_span_make(NULL, 0), span_of(target), spans, argc);
    bool same = buf->len == len && memcmp(buf->data, bytes, len) == 0;
    rh_buf_unref(buf);
    for (uint32_t i = 0; i < argc; i++)
        free((void *)spans[i].ptr);
    return same;
}

/* Every codec, with and without an invocation id, 0 to 3 arguments whose lengths take every
 * MessagePack str form (fixstr, str8, str16) in every position. */
static void test_invocation(void)
{
    static const size_t sizes[] = {0, 31, 32, 255, 256, 1000};
    static const size_t size_count = sizeof(sizes) / sizeof(sizes[0]);
    const char *ids[] = {NULL, "7", "0123456789abcdef0123456789abcdef"}; /* 32: str8 */
    char *long_target = make_text(32, 3);

    for (size_t c = 0; c < 2; c++) {
        for (size_t d = 0; d < 3; d++) {
            for (uint32_t argc = 0; argc <= 3; argc++) {
                for (size_t rot = 0; rot < (argc ? size_count : 1); rot++) {
                    char *args[3];
                    for (uint32_t i = 0; i < argc; i++)
                        args[i] = make_text(sizes[(rot + i) % size_count], i);
                    check_invocation(&codecs[c], ids[d], "Send", (const char *const *)args, argc,
                                     false);
                    for (uint32_t i = 0; i < argc; i++)
                        free(args[i]);
                }
            }
        }
        const char *one[] = {"x"};
        check_invocation(&codecs[c], "1", long_target, one, 1, false);

        /* Over str16: either refused or still right (the bench's payloads stop at 3000). */
        char *big = make_text(BIG_ARG_LEN, 5);
        const char *big_args[] = {big};
        check_invocation(&codecs[c], NULL, "Send", big_args, 1, true);
        free(big);

        /* 16 arguments: more than a fixarray holds; refused or right. */
        const char *many[16];
        for (int i = 0; i < 16; i++)
            many[i] = "m";
        check_invocation(&codecs[c], NULL, "Send", many, 16, true);
    }
    free(long_target);
}

/* Every cap below the message's length returns 0 and writes nothing past the cap. */
static void test_invocation_cap(void)
{
    char *arg = make_text(256, 1);
    const char *args[] = {arg, "b"};
    uint8_t *full = malloc(OUT_CAP);
    if (!full) abort();

    for (size_t c = 0; c < 2; c++) {
        size_t n = rb_hub_invocation(full, OUT_CAP, codecs[c].codec, "12", "Send", args, 2);
        CHECK_GT(n, 0);
        for (size_t cap = 0; cap < n; cap++) {
            uint8_t *out = malloc(cap ? cap : 1);
            if (!out) abort();
            CHECK_EQ(rb_hub_invocation(out, cap, codecs[c].codec, "12", "Send", args, 2), 0);
            free(out);
        }
    }
    free(full);
    free(arg);
}

static void test_ping_handshake(void)
{
    uint8_t out[64];
    for (size_t c = 0; c < 2; c++) {
        const char *reason = NULL;
        size_t n = rb_hub_ping(out, sizeof(out), codecs[c].codec);
        CHECK_GT(n, 0);
        CHECK_EQ(codecs[c].parse(out, n, MAX_BYTES, &msg, &reason), n);
        CHECK_EQ(msg.type, RH_HUB_PING);

        struct rh_hub_handshake hs;
        n = rb_hub_handshake(out, sizeof(out), codecs[c].codec);
        CHECK_GT(n, 0);
        CHECK_EQ(rh_hub_handshake_parse(out, n, 1024, &hs, &reason), n);
        CHECK(strcmp(hs.protocol, codecs[c].name) == 0);
        CHECK_EQ(hs.version, 1);
        for (size_t cap = 0; cap < n; cap++) {
            uint8_t *small = malloc(cap ? cap : 1);
            if (!small) abort();
            CHECK_EQ(rb_hub_handshake(small, cap, codecs[c].codec), 0);
            free(small);
        }
    }
}

static int ws_on_message(void *ctx, enum rh_ws_opcode op, const uint8_t *payload, size_t len)
{
    struct ws_seen *s = ctx;
    s->messages++;
    s->op = op;
    s->same = len == s->want_len && (len == 0 || memcmp(payload, s->want, len) == 0);
    return 0;
}

static int ws_on_ping(void *ctx, const uint8_t *payload, size_t len)
{
    struct ws_seen *s = ctx;
    s->pings++;
    s->op = RH_WS_OP_PING;
    s->same = len == s->want_len && (len == 0 || memcmp(payload, s->want, len) == 0);
    return 0;
}

/* Feeds @frame to a fresh server reader in two chunks cut at @split. */
static void feed_client_frame(const uint8_t *frame, size_t len, size_t split, struct ws_seen *seen)
{
    static const struct rh_ws_in_ops ops = {.on_message = ws_on_message, .on_ping = ws_on_ping};
    struct rh_ws_in in;
    rh_ws_in_init(&in, 1u << 17);
    uint8_t *a = copy_exact(frame, split), *b = copy_exact(frame + split, len - split);
    if (split) CHECK_EQ(rh_ws_in_feed(&in, a, split, &ops, seen), split);
    if (len - split) CHECK_EQ(rh_ws_in_feed(&in, b, len - split, &ops, seen), len - split);
    CHECK(rh_ws_in_is_idle(&in));
    rh_ws_in_destroy(&in);
    free(a);
    free(b);
}

/* Each payload length (every length encoding and its edges) as text, binary and, where a
 * control frame allows, ping: one message of the same opcode and bytes. */
static void test_ws_client_frame(void)
{
    static const size_t lens[] = {0, 125, 126, 65535, 65536};
    static const uint8_t ops[] = {RH_WS_OP_TEXT, RH_WS_OP_BINARY, RH_WS_OP_PING};
    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        size_t len = lens[l];
        size_t head = len < 126 ? 2 : len < 65536 ? 4 : 10;
        char *payload = make_text(len, (unsigned)l);
        for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
            if (ops[o] == RH_WS_OP_PING && len > RH_WS_CONTROL_PAYLOAD_MAX) continue;
            size_t cap = len + 14;
            uint8_t *frame = malloc(cap);
            if (!frame) abort();
            size_t n = rb_ws_client_frame(frame, cap, ops[o], payload, len);
            CHECK_EQ(n, head + 4 + len);
            CHECK_EQ(rb_ws_client_frame(frame, n - 1, ops[o], payload, len), 0);
            for (size_t split = 0; n && split <= n; split++) {
                if (len > 200 && split > 16 && split < n - 1) split = n - 1;
                struct ws_seen seen = {.want = (const uint8_t *)payload, .want_len = len};
                feed_client_frame(frame, n, split, &seen);
                CHECK_EQ(seen.messages + seen.pings, 1);
                CHECK_EQ(seen.op, ops[o]);
                CHECK(seen.same);
            }
            free(frame);
        }
        free(payload);
    }
}

/* ---- what the bench reads ---- */

static void check_server_frame(const uint8_t *frame, size_t len, size_t head_len, uint8_t op,
                               bool fin, uint64_t payload_len)
{
    uint8_t got_op = 0xff;
    bool got_fin = !fin;
    uint64_t got_len = ~0ull;
    uint8_t *data = copy_exact(frame, len);
    CHECK_EQ(rb_ws_server_frame(data, len, &got_op, &got_fin, &got_len), head_len);
    CHECK_EQ(got_op, op);
    CHECK_EQ(got_fin, fin);
    CHECK(got_len == payload_len);
    free(data);

    for (size_t cut = 0; cut < head_len; cut++) {
        data = copy_exact(frame, cut);
        CHECK_EQ(rb_ws_server_frame(data, cut, &got_op, &got_fin, &got_len), 0);
        free(data);
    }
    /* A mask bit or any reserved bit makes it no server frame. */
    static const uint8_t bad_bits[][2] = {{0, 0x40}, {0, 0x20}, {0, 0x10}, {1, 0x80}};
    for (size_t b = 0; b < 4; b++) {
        data = copy_exact(frame, head_len);
        data[bad_bits[b][0]] |= bad_bits[b][1];
        CHECK_EQ(rb_ws_server_frame(data, head_len, &got_op, &got_fin, &got_len), -1);
        free(data);
    }
}

/* Frames from the server's rh_ws_frame_new for every length encoding, control frames, a
 * non-final header, and lengths the header form allows but RFC 6455 does not. */
static void test_ws_server_frame(void)
{
    static const uint32_t lens[] = {0, 125, 126, 65535, 65536};
    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        char *payload = make_text(lens[l], 2);
        size_t head = lens[l] < 126 ? 2 : lens[l] < 65536 ? 4 : 10;
        for (int op = RH_WS_OP_TEXT; op <= RH_WS_OP_BINARY; op++) {
            struct rh_buf *f = rh_ws_frame_new(op, lens[l] ? payload : NULL, lens[l]);
            CHECK_EQ(f->len, head + lens[l]);
            check_server_frame(f->data, f->len, head, (uint8_t)op, true, lens[l]);
            rh_buf_unref(f);
        }
        free(payload);
    }
    struct rh_buf *f = rh_ws_frame_new(RH_WS_OP_PING, "hi", 2);
    check_server_frame(f->data, f->len, 2, RH_WS_OP_PING, true, 2);
    rh_buf_unref(f);
    f = rh_ws_close_frame_new(RH_WS_CLOSE_NORMAL, "bye");
    check_server_frame(f->data, f->len, 2, RH_WS_OP_CLOSE, true, 5);
    rh_buf_unref(f);

    uint8_t head[10];
    uint32_t n = rh_ws_frame_header(head, RH_WS_OP_CONTINUATION, 1ull << 40, false);
    check_server_frame(head, n, 10, RH_WS_OP_CONTINUATION, false, 1ull << 40);
    n = rh_ws_frame_header(head, RH_WS_OP_TEXT, 300, false);
    check_server_frame(head, n, 4, RH_WS_OP_TEXT, false, 300);

    /* A 64-bit length with its top bit set (RFC 6455 §5.2 forbids it). */
    uint8_t huge[10] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    uint8_t op;
    bool fin;
    uint64_t plen;
    CHECK_EQ(rb_ws_server_frame(huge, sizeof(huge), &op, &fin, &plen), -1);
}

/* Server-written messages of every type the bench meets, completions of each kind with
 * invocation ids of every str form, and bodies needing 1-, 2- and 3-byte length prefixes. */
static size_t make_samples(const struct server_codec *sc, struct sample *s)
{
    enum rb_codec c = sc->codec;
    struct rh_span none = rh_span_make(NULL, 0), id = span_of("42");
    char *p300 = make_text(300, 1), *p20k = make_text(20000, 2);
    struct rh_span hello = encode_str(c, "hello"), a300 = encode_str(c, p300),
                   a20k = encode_str(c, p20k), pong = encode_str(c, "pong");
    static const uint8_t mp_obj[] = {0x81, 0xa5, 'e', 'r', 'r', 'o', 'r', 0xa1, 'x'};
    struct rh_span obj = c == RB_JSON ? span_of("{\"error\":\"x\"}") : rh_span_make(mp_obj, 9);
    size_t n = 0;

    for (size_t i = 0; i < SAMPLES_MAX; i++)
        s[i] = (struct sample){rh_buf_new(0), 3, -1};
    sc->invocation(&s[n].buf, none, span_of("Send"), &hello, 1);
    s[n++].type = 1;
    sc->invocation(&s[n].buf, id, span_of("Send"), &a300, 1);
    s[n++].type = 1;
    sc->invocation(&s[n].buf, span_of("43"), span_of("Send"), &a20k, 1);
    s[n++].type = 1;
    sc->completion(&s[n].buf, id, RH_HUB_RESULT_VALUE, pong);
    s[n++].is_error = 0;
    sc->completion(&s[n].buf, id, RH_HUB_RESULT_VALUE, obj);
    s[n++].is_error = 0;
    sc->completion(&s[n].buf, id, RH_HUB_RESULT_VOID, none);
    s[n++].is_error = 0;
    sc->completion(&s[n].buf, id, RH_HUB_RESULT_ERROR, span_of("boom"));
    s[n++].is_error = 1;
    static const size_t id_lens[] = {31, 32, 255, 256};
    for (size_t i = 0; i < 4; i++) {
        char *long_id = make_text(id_lens[i], 4);
        sc->completion(&s[n].buf, span_of(long_id), RH_HUB_RESULT_VOID, none);
        s[n++].is_error = 0;
        sc->completion(&s[n].buf, span_of(long_id), RH_HUB_RESULT_VALUE, pong);
        s[n++].is_error = 0;
        sc->completion(&s[n].buf, span_of(long_id), RH_HUB_RESULT_ERROR, span_of("no"));
        s[n++].is_error = 1;
        free(long_id);
    }
    sc->stream_item(&s[n].buf, id, pong);
    s[n++].type = 2;
    sc->ping(&s[n].buf);
    s[n++].type = 6;
    sc->close(&s[n].buf, none, false);
    s[n++].type = 7;
    sc->close(&s[n].buf, span_of("bye"), true);
    s[n++].type = 7;
    sc->ack(&s[n].buf, 5);
    s[n++].type = 8;
    sc->sequence(&s[n].buf, 6);
    s[n++].type = 9;

    for (size_t i = n; i < SAMPLES_MAX; i++)
        rh_buf_unref(s[i].buf);
    free((void *)hello.ptr);
    free((void *)a300.ptr);
    free((void *)a20k.ptr);
    free((void *)pong.ptr);
    free(p300);
    free(p20k);
    return n;
}

/* One whole message: all of it consumed, the body where the server's parser finds it, its
 * type and error flag; every shorter cut is incomplete. */
static void check_sample(const struct server_codec *sc, const struct sample *s)
{
    size_t len = s->buf->len;
    uint8_t *data = copy_exact(s->buf->data, len);
    const uint8_t *body = NULL;
    size_t body_len = 0;
    const char *reason = NULL;

    CHECK_EQ(sc->parse(data, len, MAX_BYTES, &msg, &reason), len);
    CHECK_EQ(rb_hub_next(sc->codec, data, len, &body, &body_len), len);
    if (sc->codec == RB_JSON) {
        CHECK(body == data && body_len == len - 1 && data[len - 1] == 0x1e);
    } else {
        size_t prefix = len - body_len; /* the shortest varint for the body, as the server */
        size_t want = body_len < 128 ? 1 : body_len < 16384 ? 2 : 3;
        CHECK_EQ(prefix, want);
        CHECK(body == data + prefix && (body[0] & 0xf0) == 0x90);
    }
    if (body) {
        CHECK_EQ(rb_hub_type(sc->codec, body, body_len), s->type);
        CHECK_EQ(rb_hub_type(sc->codec, body, body_len), msg.type);
    }
    if (body && s->is_error >= 0) {
        CHECK_EQ(rb_hub_completion_is_error(sc->codec, body, body_len), s->is_error);
        CHECK_EQ(msg.result_kind == RH_HUB_RESULT_ERROR, s->is_error);
    }
    free(data);

    for (size_t cut = 0; cut < len; cut++) {
        data = copy_exact(s->buf->data, cut);
        CHECK_EQ(rb_hub_next(sc->codec, data, cut, &body, &body_len), 0);
        free(data);
    }
}

static void test_hub_next(void)
{
    struct sample s[SAMPLES_MAX];
    for (size_t c = 0; c < 2; c++) {
        size_t n = make_samples(&codecs[c], s);
        for (size_t i = 0; i < n; i++) {
            unsigned failed = rh_check_failed;
            check_sample(&codecs[c], &s[i]);
            if (rh_check_failed != failed)
                fprintf(stderr, "  in %s sample %zu (type %d)\n", codecs[c].name, i, s[i].type);
            rh_buf_unref(s[i].buf);
        }
    }
}

/* All samples back to back, as one read brings them: each taken in turn. */
static void test_hub_next_pipelined(void)
{
    struct sample s[SAMPLES_MAX];
    for (size_t c = 0; c < 2; c++) {
        size_t n = make_samples(&codecs[c], s);
        struct rh_buf *all = rh_buf_new(0);
        for (size_t i = 0; i < n; i++)
            rh_buf_append(&all, s[i].buf->data, s[i].buf->len);
        uint8_t *data = copy_exact(all->data, all->len);
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *body;
            size_t body_len;
            ssize_t r = rb_hub_next(codecs[c].codec, data + off, all->len - off, &body, &body_len);
            CHECK_EQ(r, s[i].buf->len);
            if (r <= 0) break;
            CHECK_EQ(rb_hub_type(codecs[c].codec, body, body_len), s[i].type);
            off += (size_t)r;
        }
        CHECK_EQ(off, all->len);
        free(data);
        rh_buf_unref(all);
        for (size_t i = 0; i < n; i++)
            rh_buf_unref(s[i].buf);
    }
}

/* MessagePack length prefixes the spec (§3.2: at most 5 bytes, the 5th at most 7) forbids;
 * the server's parser refuses each, and so must the bench, without waiting for more. */
static void test_hub_next_broken(void)
{
    static const char *const prefixes[] = {
        "80 80 80 80 80 01 91 06", /* a 6th prefix byte */
        "80 80 80 80 80",          /* 5 bytes, the 5th still continued */
        "ff ff ff ff 7f",          /* 5th byte over 7: 2^35 - 1 */
        "80 80 80 80 08 91 06",    /* 5th byte 8: 2^31 */
    };
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        uint8_t raw[16];
        size_t len = rh_test_unhex(prefixes[i], raw);
        uint8_t *data = copy_exact(raw, len);
        const uint8_t *body;
        size_t body_len;
        const char *reason = NULL;
        CHECK_EQ(rh_hub_msgpack_parse(data, len, MAX_BYTES, &msg, &reason), -EPROTO);
        ssize_t r = rb_hub_next(RB_MSGPACK, data, len, &body, &body_len);
        CHECK_EQ(r, -1);
        if (r != -1) fprintf(stderr, "  prefix %s: rb_hub_next returned %zd\n", prefixes[i], r);
        free(data);
    }
    const uint8_t *body;
    size_t body_len;
    CHECK_EQ(rb_hub_next(RB_JSON, (const uint8_t *)"", 0, &body, &body_len), 0);
    CHECK_EQ(rb_hub_next(RB_MSGPACK, (const uint8_t *)"", 0, &body, &body_len), 0);
}

/* ---- stamps ---- */

static const struct rb_stamp stamps[] = {
    {0, 1, 0},
    {1, 2, 0x0123456789abcdefull},
    {0xffff, 0xffffffffu, ~0ull},
    {0xbeef, 0x00c0ffeeu, 1700000000123456789ull},
};
static const size_t stamp_lens[] = {RB_STAMP_LEN, RB_STAMP_LEN + 1, 64, 255, 256, 1000, 3000};

#define STAMP_COUNT     (sizeof(stamps) / sizeof(stamps[0]))
#define STAMP_LEN_COUNT (sizeof(stamp_lens) / sizeof(stamp_lens[0]))

static void check_stamp_in(const uint8_t *bytes, size_t len, const struct rb_stamp *st)
{
    struct rb_stamp got = {0};
    uint8_t *data = copy_exact(bytes, len);
    CHECK(rb_stamp_find(data, len, &got));
    CHECK_EQ(got.pub, st->pub);
    CHECK_EQ(got.seq, st->seq);
    CHECK(got.ts_ns == st->ts_ns);
    free(data);
}

/* Written into exactly its length, padded with 'x', and read back from the bare payload. */
static void test_stamp(void)
{
    for (size_t l = 0; l < STAMP_LEN_COUNT; l++) {
        for (size_t i = 0; i < STAMP_COUNT; i++) {
            char *payload = malloc(stamp_lens[l]);
            if (!payload) abort();
            rb_stamp_write(payload, stamp_lens[l], &stamps[i]);
            CHECK(memcmp(payload, "~rb", 3) == 0);
            size_t pad = 0;
            for (size_t k = RB_STAMP_LEN; k < stamp_lens[l]; k++)
                pad += payload[k] == 'x';
            CHECK_EQ(pad, stamp_lens[l] - RB_STAMP_LEN);
            check_stamp_in((const uint8_t *)payload, stamp_lens[l], &stamps[i]);
            free(payload);
        }
    }
    /* A stamp cut short at the end of the message is no stamp. */
    char full[RB_STAMP_LEN];
    rb_stamp_write(full, RB_STAMP_LEN, &stamps[1]);
    for (size_t cut = 0; cut < RB_STAMP_LEN; cut++) {
        struct rb_stamp got;
        uint8_t *data = copy_exact(full, cut);
        CHECK(!rb_stamp_find(data, cut, &got));
        free(data);
    }
}

/* The stamp as the second string argument of invocations the server writes to subscribers,
 * found in the whole framed message and in its body alone. */
static void test_stamp_in_messages(void)
{
    for (size_t c = 0; c < 2; c++) {
        const struct server_codec *sc = &codecs[c];
        for (size_t l = 0; l < STAMP_LEN_COUNT; l++) {
            const struct rb_stamp *st = &stamps[l % STAMP_COUNT];
            char *payload = make_text(stamp_lens[l], 0);
            rb_stamp_write(payload, stamp_lens[l], st);
            struct rh_span args[2] = {encode_str(sc->codec, "g1"), encode_str(sc->codec, payload)};
            struct rh_buf *buf = rh_buf_new(0);
            sc->invocation(&buf, rh_span_make(NULL, 0), span_of("Send"), args, 2);

            check_stamp_in(buf->data, buf->len, st);
            const uint8_t *body = NULL;
            size_t body_len = 0;
            CHECK_EQ(rb_hub_next(sc->codec, buf->data, buf->len, &body, &body_len), buf->len);
            if (body) check_stamp_in(body, body_len, st);

            rh_buf_unref(buf);
            free((void *)args[0].ptr);
            free((void *)args[1].ptr);
            free(payload);
        }
    }
}

/* Any of the 28 hex digits replaced by a non-hex byte, or the marker broken: not found. */
static void test_stamp_corrupted(void)
{
    static const char bad[] = {'g', 'G', 'x', ':', '/', '`', '@', ' ', '"', '\0', '\x80'};
    char payload[64];
    struct rb_stamp got;
    rb_stamp_write(payload, sizeof(payload), &stamps[3]);
    for (size_t pos = 3; pos < RB_STAMP_LEN; pos++) {
        for (size_t b = 0; b < sizeof(bad); b++) {
            char copy[64];
            memcpy(copy, payload, sizeof(copy));
            copy[pos] = bad[b];
            CHECK(!rb_stamp_find((const uint8_t *)copy, sizeof(copy), &got));
        }
    }
    for (size_t pos = 0; pos < 3; pos++) {
        char copy[64];
        memcpy(copy, payload, sizeof(copy));
        copy[pos] = 'Q';
        CHECK(!rb_stamp_find((const uint8_t *)copy, sizeof(copy), &got));
    }
    CHECK(!rb_stamp_find((const uint8_t *)"{\"type\":6}\x1e", 11, &got));
}

/* ---- HTTP ---- */

static void check_http(const uint8_t *resp, size_t len, size_t head_len, int status,
                       size_t content_length)
{
    int got_status = -1;
    size_t got_cl = 12345;
    char *data = (char *)copy_exact(resp, len);
    CHECK_EQ(rb_http_response(data, len, &got_status, &got_cl), head_len);
    CHECK_EQ(got_status, status);
    CHECK_EQ(got_cl, content_length);
    free(data);
    for (size_t cut = 0; cut < head_len; cut++) {
        data = (char *)copy_exact(resp, cut);
        CHECK_EQ(rb_http_response(data, cut, &got_status, &got_cl), 0);
        free(data);
    }
}

/* Responses as the server writes them: negotiate (200 with a body), the WebSocket upgrade
 * (101, no Content-Length), an error reply, a head without Content-Length; then non-HTTP. */
static void test_http_response(void)
{
    static const char body[] =
        "{\"negotiateVersion\":1,\"connectionId\":\"abc\",\"connectionToken\":\"tok-123\","
        "\"availableTransports\":[{\"transport\":\"WebSockets\",\"transferFormats\":[\"Text\","
        "\"Binary\"]}]}";
    const struct rh_http_field fields[] = {{"Content-Type", "application/json"},
                                           {"Cache-Control", "no-cache"}};
    uint8_t out[1024];

    ssize_t n = rh_http_response_write(out, sizeof(out), 200, fields, 2, body, strlen(body));
    CHECK_GT(n, 0);
    check_http(out, (size_t)n, (size_t)n - strlen(body), 200, strlen(body));

    n = rh_ws_write_handshake((char *)out, sizeof(out), "dGhlIHNhbXBsZSBub25jZQ==", 24);
    CHECK_GT(n, 0);
    check_http(out, (size_t)n, (size_t)n, 101, 0);

    n = rh_http_error_response(out, sizeof(out), 404, NULL);
    CHECK_GT(n, 0);
    const char *end = memmem(out, (size_t)n, "\r\n\r\n", 4);
    size_t head_len = end ? (size_t)(end + 4 - (const char *)out) : 0;
    check_http(out, (size_t)n, head_len, 404, (size_t)n - head_len);

    n = rh_http_response_head(out, sizeof(out), 204, fields, 1);
    CHECK_GT(n, 0);
    check_http(out, (size_t)n, (size_t)n, 204, 0);

    static const char *const not_http[] = {
        "SSH-2.0-OpenSSH_9.2\r\n\r\n",
        "<html><body>hi</body></html>\r\n\r\n",
        "\r\n\r\n",
        "HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(not_http) / sizeof(not_http[0]); i++) {
        int status;
        size_t cl;
        size_t len = strlen(not_http[i]);
        char *data = (char *)copy_exact(not_http[i], len);
        CHECK_EQ(rb_http_response(data, len, &status, &cl), -1);
        free(data);
    }
}

static void test_json_string_member(void)
{
    static const char body[] = "{\"negotiateVersion\":1,\"connectionId\":\"abc\","
                               "\"connectionToken\":\"tok-123\",\"availableTransports\":[]}";
    size_t len = strlen(body);
    char *data = (char *)copy_exact(body, len);
    char out[64];

    CHECK_EQ(rb_json_string_member(data, len, "connectionToken", out, sizeof(out)), 7);
    CHECK(strcmp(out, "tok-123") == 0);
    CHECK_EQ(rb_json_string_member(data, len, "connectionId", out, sizeof(out)), 3);
    CHECK(strcmp(out, "abc") == 0);
    CHECK_EQ(rb_json_string_member(data, len, "missing", out, sizeof(out)), -1);
    CHECK_EQ(rb_json_string_member(data, len, "negotiateVersion", out, sizeof(out)), -1);

    /* The value and its NUL must fit exactly: cap 8 holds "tok-123", cap 7 does not. */
    char *small = malloc(8);
    if (!small) abort();
    CHECK_EQ(rb_json_string_member(data, len, "connectionToken", small, 8), 7);
    CHECK(strcmp(small, "tok-123") == 0);
    for (size_t cap = 0; cap < 8; cap++)
        CHECK_EQ(rb_json_string_member(data, len, "connectionToken", small, cap), -1);
    free(small);

    /* A value cut off before its closing quote, at every length. */
    for (size_t cut = 0; cut < len; cut++) {
        char *part = (char *)copy_exact(body, cut);
        ssize_t r = rb_json_string_member(part, cut, "connectionToken", out, sizeof(out));
        size_t value_end = (size_t)(strstr(body, "tok-123") - body) + 7;
        CHECK_EQ(r, cut > value_end ? 7 : -1);
        free(part);
    }
    free(data);
}
