/* tests/unit/test_backplane.c - backplane envelopes: every kind written and read back with edge
 * values, SEND, INTEREST, COMMAND and ANSWER byte for byte, the smallest forms on encode, any
 * width and extra elements on decode, every refusal with its reason, every truncation. Input is
 * decoded from a heap copy of exactly its length, so ASan catches a read past its end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/check.h"
#include "transports/backplane.h"

#define GUARD_BYTES 16
#define BYTES_MAX   (64 * 1024)

static struct rh_bp_env env, back;
static const char *why;
static uint8_t names[RH_BP_NAME_MAX + 1];
static uint8_t *held; /* the bytes the last decode read: back's spans point into them */

/* Decodes a heap copy of @data into back. */
static int decode(const uint8_t *data, size_t len)
{
    free(held);
    held = malloc(len ? len : 1);
    if (len) memcpy(held, data, len);
    why = NULL;
    return rh_bp_decode(held, len, &back, &why);
}

static size_t unhex(const char *text, uint8_t *out)
{
    return rh_test_unhex(text, out);
}

static int decode_hex(const char *text)
{
    static uint8_t bytes[BYTES_MAX];
    return decode(bytes, unhex(text, bytes));
}

/* Refused with @want as the reason. */
static bool is_refused(const uint8_t *data, size_t len, const char *want)
{
    int rc = decode(data, len);
    if (rc == -EINVAL && why && strcmp(why, want) == 0) return true;
    fprintf(stderr, "rc %d, why \"%s\", wanted \"%s\"\n", rc, why ? why : "(null)", want);
    return false;
}

static bool is_refused_hex(const char *text, const char *want)
{
    static uint8_t bytes[BYTES_MAX];
    return is_refused(bytes, unhex(text, bytes), want);
}

static bool is_env_eq(const struct rh_bp_env *a, const struct rh_bp_env *b)
{
    if (a->kind != b->kind || a->origin_node != b->origin_node ||
        a->origin_shard != b->origin_shard || a->seq != b->seq)
        return false;
    switch (a->kind) {
    case RH_BP_SEND:
        if (a->send.scope != b->send.scope || a->send.codec != b->send.codec ||
            !rh_span_eq(a->send.hub, b->send.hub) || !rh_span_eq(a->send.name, b->send.name) ||
            !rh_span_eq(a->send.target, b->send.target) || a->send.arg_count != b->send.arg_count ||
            !rh_span_eq(a->send.excluded, b->send.excluded))
            return false;
        for (uint32_t i = 0; i < a->send.arg_count; i++)
            if (!rh_span_eq(a->send.args[i], b->send.args[i])) return false;
        return true;
    case RH_BP_INTEREST:
        return a->interest.group_kind == b->interest.group_kind &&
               a->interest.state == b->interest.state &&
               rh_span_eq(a->interest.hub, b->interest.hub) &&
               rh_span_eq(a->interest.name, b->interest.name);
    case RH_BP_COMMAND:
        return a->command.request_id == b->command.request_id && a->command.op == b->command.op &&
               a->command.route == b->command.route && a->command.is_v1 == b->command.is_v1 &&
               rh_span_eq(a->command.hub, b->command.hub) &&
               rh_span_eq(a->command.group, b->command.group) &&
               rh_span_eq(a->command.text, b->command.text) &&
               rh_span_eq(a->command.connection, b->command.connection);
    case RH_BP_ANSWER:
        return a->answer.request_id == b->answer.request_id && a->answer.status == b->answer.status;
    case RH_BP_USER_GROUPS:
        return a->user_groups.op == b->user_groups.op &&
               rh_span_eq(a->user_groups.hub, b->user_groups.hub) &&
               rh_span_eq(a->user_groups.user, b->user_groups.user) &&
               rh_span_eq(a->user_groups.group, b->user_groups.group);
    default:
        return false;
    }
}

/* Encodes @e into a heap buffer; checks the size, that nothing past it was written. */
static uint8_t *encode(const struct rh_bp_env *e, uint32_t *size)
{
    *size = rh_bp_size(e);
    uint8_t *out = malloc(*size + GUARD_BYTES);
    memset(out, 0xa5, *size + GUARD_BYTES);
    CHECK_EQ(rh_bp_encode(e, out), *size);
    unsigned touched = 0;
    for (uint32_t i = 0; i < GUARD_BYTES; i++)
        touched += out[*size + i] != 0xa5;
    CHECK_EQ(touched, 0);
    return out;
}

/* @e written, read back the same; every strict prefix and one byte more refused. */
static void check_round_trip(const struct rh_bp_env *e)
{
    uint32_t size;
    uint8_t *out = encode(e, &size);
    CHECK_EQ(decode(out, size), 0);
    CHECK(why == NULL);
    CHECK(is_env_eq(e, &back));

    unsigned bad = 0;
    for (uint32_t cut = 0; cut < size; cut++)
        bad += !is_refused(out, cut, "envelope ends early or is not MessagePack");
    CHECK_EQ(bad, 0);
    out[size] = 0xc0;
    CHECK(is_refused(out, size + 1, "bytes after the envelope"));
    free(out);
}

/* @e encodes to exactly @hex_text, and the bytes decode back to @e. */
static void check_bytes(const struct rh_bp_env *e, const char *hex_text)
{
    static uint8_t want[BYTES_MAX];
    size_t n = unhex(hex_text, want);
    uint32_t size;
    uint8_t *out = encode(e, &size);
    CHECK_EQ(size, n);
    CHECK(size == n && memcmp(out, want, n) == 0);
    free(out);
    CHECK_EQ(decode(want, n), 0);
    CHECK(is_env_eq(e, &back));
}

static struct rh_span name_of(uint32_t len)
{
    return rh_span_make(names, len);
}

static void test_send_round_trips(void)
{
    static const uint8_t routes[] = {0, 0, 0, 0,    0,    0,    0,    1,    0x80, 0,    0,    0,
                                     0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static uint8_t values[RH_HUB_ARGS_MAX][300];
    for (uint32_t i = 0; i < RH_HUB_ARGS_MAX; i++)
        memset(values[i], (int)i, sizeof(values[i]));

    for (uint8_t scope = RH_BP_ALL; scope <= RH_BP_CONNECTION; scope++) {
        for (int codec = RH_HUB_JSON; codec <= RH_HUB_MSGPACK; codec++) {
            env = (struct rh_bp_env){.kind = RH_BP_SEND, .origin_node = 0, .origin_shard = 0};
            env.send.scope = scope;
            env.send.codec = (enum rh_hub_codec)codec;
            check_round_trip(&env); /* every name empty, no args, nothing excluded */

            env.origin_node = RH_BP_NODE_MAX;
            env.origin_shard = RH_BP_SHARD_MAX;
            env.seq = UINT64_MAX;
            env.send.hub = name_of(RH_BP_NAME_MAX);
            env.send.name = name_of(RH_BP_NAME_MAX);
            env.send.target = name_of(RH_BP_NAME_MAX);
            env.send.arg_count = RH_HUB_ARGS_MAX;
            for (uint32_t i = 0; i < RH_HUB_ARGS_MAX; i++) /* 0 to 279 bytes: every bin width */
                env.send.args[i] = rh_span_make(values[i], i * 9);
            env.send.excluded = rh_span_make(routes, sizeof(routes));
            check_round_trip(&env);
        }
    }
    uint32_t size;
    uint8_t *out = encode(&env, &size);
    CHECK_EQ(decode(out, size), 0);
    free(out);
    CHECK_EQ(back.send.excluded.len, 24);
    CHECK(rh_bp_excluded_at(&back, 0) == 1);
    CHECK(rh_bp_excluded_at(&back, 1) == 0x80000000000000ffull);
    CHECK(rh_bp_excluded_at(&back, 2) == UINT64_MAX);
}

static void test_other_round_trips(void)
{
    for (uint8_t group_kind = 0; group_kind <= 1; group_kind++) {
        for (uint8_t state = RH_BP_GONE; state <= RH_BP_HERE; state++) {
            env = (struct rh_bp_env){.kind = RH_BP_INTEREST, .seq = 1};
            env.interest.group_kind = group_kind;
            env.interest.state = state;
            check_round_trip(&env);
            env.interest.hub = name_of(RH_BP_NAME_MAX);
            env.interest.name = name_of(RH_BP_NAME_MAX);
            check_round_trip(&env);
        }
    }

    static const uint64_t routes[] = {0, 0x0102030405060708ull, UINT64_MAX};
    for (uint8_t op = RH_BP_ADD_TO_GROUP; op <= RH_BP_EXISTS; op++) {
        for (uint32_t i = 0; i < 3; i++) {
            env = (struct rh_bp_env){.kind = RH_BP_COMMAND, .origin_node = 7, .origin_shard = 3};
            env.command.op = op;
            env.command.route = routes[i];
            env.command.request_id = routes[i];
            env.command.is_v1 = i == 1;
            check_round_trip(&env);
            env.command.hub = name_of(RH_BP_NAME_MAX);
            env.command.group = name_of(1);
            env.command.text = name_of(RH_BP_NAME_MAX);
            env.command.connection = name_of(22);
            check_round_trip(&env);
        }
    }

    static const uint16_t statuses[] = {100, 200, 404, 504, 599};
    for (uint32_t i = 0; i < 5; i++) {
        env = (struct rh_bp_env){.kind = RH_BP_ANSWER, .seq = i};
        env.answer.status = statuses[i];
        env.answer.request_id = i == 4 ? UINT64_MAX : i;
        check_round_trip(&env);
    }

    for (uint8_t op = RH_BP_ADD_TO_GROUP; op <= RH_BP_REMOVE_FROM_ALL; op++) {
        env = (struct rh_bp_env){.kind = RH_BP_USER_GROUPS, .origin_node = 1};
        env.user_groups.op = op;
        check_round_trip(&env);
        env.user_groups.hub = name_of(RH_BP_NAME_MAX);
        env.user_groups.user = name_of(RH_BP_NAME_MAX);
        env.user_groups.group = name_of(op == RH_BP_REMOVE_FROM_ALL ? 0 : RH_BP_NAME_MAX);
        check_round_trip(&env);
    }
}

static void test_exact_bytes(void)
{
    static const uint8_t excluded[] = {0, 0, 0, 1, 0, 0, 0, 2};
    env = (struct rh_bp_env){.kind = RH_BP_SEND, .origin_node = 1, .origin_shard = 2, .seq = 3};
    env.send.scope = RH_BP_GROUP;
    env.send.hub = rh_span_make("chat", 4);
    env.send.name = rh_span_make("g", 1);
    env.send.target = rh_span_make("Send", 4);
    env.send.codec = RH_HUB_MSGPACK;
    env.send.arg_count = 2;
    env.send.args[0] = rh_span_make("\xa2hi", 3);
    env.send.args[1] = rh_span_make("\x01", 1);
    env.send.excluded = rh_span_make(excluded, 8);
    check_bytes(&env, "9c 01 01 01 02 03"
                      " 01 a4 63 68 61 74 a1 67 a4 53 65 6e 64 01"
                      " 92 c4 03 a2 68 69 c4 01 01"
                      " c4 08 00 00 00 01 00 00 00 02");
    CHECK(rh_bp_excluded_at(&back, 0) == 0x100000002ull);

    env = (struct rh_bp_env){.kind = RH_BP_INTEREST, .origin_node = 4095, .origin_shard = 255};
    env.seq = 300;
    env.interest.hub = rh_span_make("h", 1);
    env.interest.group_kind = 1;
    env.interest.name = rh_span_make("u1", 2);
    env.interest.state = RH_BP_JOINED;
    check_bytes(&env, "99 01 02 cd 0f ff cc ff cd 01 2c a1 68 01 a2 75 31 01");

    env = (struct rh_bp_env){.kind = RH_BP_COMMAND, .seq = 1ull << 32};
    env.command.request_id = 42;
    env.command.op = RH_BP_EXISTS;
    env.command.hub = rh_span_make("h", 1);
    env.command.route = 0x0102030405060708ull;
    env.command.text = rh_span_make("bye", 3);
    env.command.connection = rh_span_make("id", 2);
    env.command.is_v1 = true;
    check_bytes(&env, "9d 01 03 00 00 cf 00 00 00 01 00 00 00 00 2a 05 a1 68"
                      " c4 08 01 02 03 04 05 06 07 08 a0 a3 62 79 65 a2 69 64 c3");

    env = (struct rh_bp_env){.kind = RH_BP_ANSWER, .seq = 65536};
    env.answer.request_id = UINT64_MAX;
    env.answer.status = 200;
    check_bytes(&env, "97 01 04 00 00 ce 00 01 00 00 cf ff ff ff ff ff ff ff ff cc c8");

    env = (struct rh_bp_env){.kind = RH_BP_USER_GROUPS, .seq = 127};
    env.user_groups.op = RH_BP_REMOVE_FROM_ALL;
    env.user_groups.hub = rh_span_make("h", 1);
    env.user_groups.user = rh_span_make("u", 1);
    check_bytes(&env, "99 01 05 00 00 7f 03 a1 68 a1 75 a0");
}

/* The smallest str and bin heads: fixstr/str8/str16 and bin8/bin16 at their edges. */
static void test_smallest_forms(void)
{
    static const struct {
        uint32_t len;
        const char *head;
    } strs[] = {{31, "bf"}, {32, "d9 20"}, {255, "d9 ff"}, {256, "da 01 00"}, {1024, "da 04 00"}};
    static const struct {
        uint32_t len;
        const char *head;
    } bins[] = {{0, "c4 00"}, {255, "c4 ff"}, {256, "c5 01 00"}, {65536, "c6 00 01 00 00"}};
    static uint8_t big[65536];
    uint8_t want[8];
    uint32_t size;

    for (uint32_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        /* 99 01 02 00 00 00 a0 00 <name> 00 */
        env = (struct rh_bp_env){.kind = RH_BP_INTEREST};
        env.interest.name = name_of(strs[i].len);
        size_t n = unhex(strs[i].head, want);
        uint8_t *out = encode(&env, &size);
        CHECK_EQ(size, 9 + n + strs[i].len);
        CHECK(memcmp(out + 8, want, n) == 0);
        free(out);
    }
    for (uint32_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++) {
        /* 9c 01 01 00 00 00 00 a0 a0 a0 00 91 <arg> c4 00 */
        env = (struct rh_bp_env){.kind = RH_BP_SEND};
        env.send.arg_count = 1;
        env.send.args[0] = rh_span_make(big, bins[i].len);
        size_t n = unhex(bins[i].head, want);
        uint8_t *out = encode(&env, &size);
        CHECK_EQ(size, 14 + n + bins[i].len);
        CHECK(memcmp(out + 12, want, n) == 0);
        free(out);
    }
}

/* Every width of int, str, bin and array is read, signed ints that are not negative too. */
static void test_any_width(void)
{
    /* The INTEREST of test_exact_bytes, written wide. */
    CHECK_EQ(decode_hex("dc 00 09 d0 01 cf 00 00 00 00 00 00 00 02 d1 0f ff ce 00 00 00 ff"
                        " d3 00 00 00 00 00 00 01 2c da 00 01 68 d2 00 00 00 01"
                        " db 00 00 00 02 75 31 cd 00 01"),
             0);
    CHECK_EQ(back.kind, RH_BP_INTEREST);
    CHECK_EQ(back.origin_node, 4095);
    CHECK_EQ(back.origin_shard, 255);
    CHECK_EQ(back.seq, 300);
    CHECK(rh_span_eq_str(back.interest.hub, "h"));
    CHECK_EQ(back.interest.group_kind, 1);
    CHECK(rh_span_eq_str(back.interest.name, "u1"));
    CHECK_EQ(back.interest.state, RH_BP_JOINED);

    /* A SEND in array32, with str8 names and bin16 and bin32 args and excluded. */
    CHECK_EQ(decode_hex("dd 00 00 00 0c 01 01 00 00 00 00 d9 01 68 d9 00 d9 01 74 00"
                        " dc 00 02 c5 00 01 31 c6 00 00 00 02 32 33"
                        " c6 00 00 00 08 00 00 00 00 00 00 00 09"),
             0);
    CHECK_EQ(back.send.scope, RH_BP_ALL);
    CHECK(rh_span_eq_str(back.send.hub, "h"));
    CHECK_EQ(back.send.name.len, 0);
    CHECK(rh_span_eq_str(back.send.target, "t"));
    CHECK_EQ(back.send.codec, RH_HUB_JSON);
    CHECK_EQ(back.send.arg_count, 2);
    CHECK(rh_span_eq_str(back.send.args[0], "1"));
    CHECK(rh_span_eq_str(back.send.args[1], "23"));
    CHECK(rh_bp_excluded_at(&back, 0) == 9);

    /* The value bytes of an argument are not checked here: c1 is never valid MessagePack. */
    CHECK_EQ(decode_hex("9c 01 01 00 00 00 00 a0 a0 a0 01 91 c4 01 c1 c4 00"), 0);
    CHECK_EQ(back.send.args[0].ptr[0], 0xc1);
}

static void test_extra_elements(void)
{
    /* An ANSWER with nil, a map holding an array, and a str after its fields. */
    CHECK_EQ(decode_hex("9a 01 04 00 00 01 02 cd 01 94 c0 81 a1 61 92 01 02 a2 78 79"), 0);
    CHECK_EQ(back.kind, RH_BP_ANSWER);
    CHECK_EQ(back.answer.request_id, 2);
    CHECK_EQ(back.answer.status, 404);
    CHECK(is_refused_hex("98 01 04 00 00 01 02 cd 01 94 c1", "invalid extra element"));
    CHECK(is_refused_hex("98 01 04 00 00 01 02 cd 01 94 92 01", "invalid extra element"));
    CHECK(is_refused_hex("97 01 04 00 00 01 02 cd 01 94 c0", "bytes after the envelope"));
}

static void test_head_refusals(void)
{
    const char *early = "envelope ends early or is not MessagePack";
    CHECK(is_refused_hex("", early));
    CHECK(is_refused_hex("c1", early));
    CHECK(is_refused_hex("01", "envelope is not an array"));
    CHECK(is_refused_hex("81 01 02", "envelope is not an array"));
    CHECK(is_refused_hex("c4 01 00", "envelope is not an array"));
    CHECK(is_refused_hex("90", "envelope array is too short"));
    CHECK(is_refused_hex("94 01 04 00 00", "envelope array is too short"));
    CHECK(is_refused_hex("96 01 04 00 00 01 02", "envelope array is too short"));
    CHECK(is_refused_hex("9b 01 01 00 00 00 00 a0 a0 a0 00 90", "envelope array is too short"));
    CHECK(is_refused_hex("9f 01 04 00 00 01 02 cc c8", early));

    CHECK(is_refused_hex("97 02 04 00 00 01 02 cc c8", "unsupported version"));
    CHECK(is_refused_hex("97 00 04 00 00 01 02 cc c8", "unsupported version"));
    CHECK(is_refused_hex("97 ff 04 00 00 01 02 cc c8", "unsupported version"));
    CHECK(is_refused_hex("97 a1 31 04 00 00 01 02 cc c8", "unsupported version"));
    CHECK(is_refused_hex("97 01 00 00 00 01 02 cc c8", "unknown kind"));
    CHECK(is_refused_hex("97 01 06 00 00 01 02 cc c8", "unknown kind"));
    CHECK(is_refused_hex("97 01 cf 01 00 00 00 00 00 00 04 00 00 01 02 cc c8", "unknown kind"));
    CHECK(is_refused_hex("97 01 c3 00 00 01 02 cc c8", "unknown kind"));
    CHECK(is_refused_hex("97 01 04 cd 10 00 00 01 02 cc c8", "invalid origin node"));
    CHECK(is_refused_hex("97 01 04 ff 00 01 02 cc c8", "invalid origin node"));
    CHECK(is_refused_hex("97 01 04 d1 ff ff 00 01 02 cc c8", "invalid origin node"));
    CHECK(is_refused_hex("97 01 04 c0 00 01 02 cc c8", "invalid origin node"));
    CHECK(is_refused_hex("97 01 04 00 cd 01 00 01 02 cc c8", "invalid origin shard"));
    CHECK(is_refused_hex("97 01 04 00 e0 01 02 cc c8", "invalid origin shard"));
    CHECK(is_refused_hex("97 01 04 00 00 d3 ff ff ff ff ff ff ff ff 02 cc c8",
                         "invalid origin sequence"));
    CHECK(is_refused_hex("97 01 04 00 00 cb 3f f0 00 00 00 00 00 00 02 cc c8",
                         "invalid origin sequence"));
}

static void test_send_refusals(void)
{
    /* 9c 01 01 00 00 00 | scope hub name target codec args excluded */
    CHECK(is_refused_hex("9c 01 01 00 00 00 04 a0 a0 a0 00 90 c4 00", "unknown scope"));
    CHECK(is_refused_hex("9c 01 01 00 00 00 ff a0 a0 a0 00 90 c4 00", "unknown scope"));
    CHECK(is_refused_hex("9c 01 01 00 00 00 00 c4 00 a0 a0 00 90 c4 00", "invalid hub"));
    CHECK(is_refused_hex("9c 01 01 00 00 00 00 a0 c0 a0 00 90 c4 00", "invalid name"));
    CHECK(is_refused_hex("9c 01 01 00 00 00 00 a0 a0 01 00 90 c4 00", "invalid target"));
    CHECK(is_refused_hex("9c 01 01 00 00 00 00 a0 a0 a0 02 90 c4 00", "unknown codec"));
    CHECK(
        is_refused_hex("9c 01 01 00 00 00 00 a0 a0 a0 00 80 c4 00", "arguments are not an array"));
    CHECK(
        is_refused_hex("9c 01 01 00 00 00 00 a0 a0 a0 00 91 a1 31 c4 00", "argument is not a bin"));
    CHECK(is_refused_hex("9c 01 01 00 00 00 00 a0 a0 a0 00 90 a0", "excluded is not a bin"));
    CHECK(is_refused_hex("9c 01 01 00 00 00 00 a0 a0 a0 00 90 c0", "excluded is not a bin"));
    CHECK(is_refused_hex("9c 01 01 00 00 00 00 a0 a0 a0 00 90 c4 07 00 00 00 00 00 00 00",
                         "excluded is not a list of 8-byte routes"));
    CHECK(is_refused_hex("9c 01 01 00 00 00 00 a0 a0 a0 00 90"
                         " c4 09 00 00 00 00 00 00 00 00 00",
                         "excluded is not a list of 8-byte routes"));

    /* 33 arguments, then 32 (accepted). */
    uint8_t bytes[128];
    size_t n = unhex("9c 01 01 00 00 00 00 a0 a0 a0 00 dc 00 21", bytes);
    for (uint32_t i = 0; i < 33; i++) {
        bytes[n++] = 0xc4;
        bytes[n++] = 0x00;
    }
    bytes[n++] = 0xc4;
    bytes[n++] = 0x00;
    CHECK(is_refused(bytes, n, "too many arguments"));
    bytes[13] = 0x20;
    CHECK_EQ(decode(bytes, n - 2), 0);
    CHECK_EQ(back.send.arg_count, 32);

    /* Names one byte too long, in each place. */
    env = (struct rh_bp_env){.kind = RH_BP_SEND};
    struct rh_span *spans[] = {&env.send.hub, &env.send.name, &env.send.target};
    for (uint32_t i = 0; i < 3; i++) {
        uint32_t size;
        *spans[i] = name_of(RH_BP_NAME_MAX + 1);
        uint8_t *out = encode(&env, &size);
        CHECK(is_refused(out, size, "a string is over RH_BP_NAME_MAX bytes"));
        free(out);
        *spans[i] = name_of(0);
    }
}

static void test_other_refusals(void)
{
    /* INTEREST: 99 01 02 00 00 00 | hub group-kind name state */
    CHECK(is_refused_hex("99 01 02 00 00 00 a0 02 a0 00", "unknown group kind"));
    CHECK(is_refused_hex("99 01 02 00 00 00 a0 c2 a0 00", "unknown group kind"));
    CHECK(is_refused_hex("99 01 02 00 00 00 a0 00 a0 03", "unknown interest state"));
    CHECK(is_refused_hex("99 01 02 00 00 00 a0 00 a0 ff", "unknown interest state"));
    CHECK(is_refused_hex("99 01 02 00 00 00 c0 00 a0 00", "invalid hub"));
    CHECK(is_refused_hex("99 01 02 00 00 00 a0 00 c4 00 00", "invalid name"));

    /* COMMAND: 9d 01 03 00 00 00 | request op hub route group text connection v1 */
    const char *route = " c4 08 00 00 00 00 00 00 00 01";
    char text[256];
    snprintf(text, sizeof(text),
             "9d 01 03 00 00 00 d3 ff ff ff ff ff ff ff ff 01 a0 %s a0 a0 a0 c2", route);
    CHECK(is_refused_hex(text, "invalid request id"));
    snprintf(text, sizeof(text), "9d 01 03 00 00 00 00 00 a0 %s a0 a0 a0 c2", route);
    CHECK(is_refused_hex(text, "unknown op"));
    snprintf(text, sizeof(text), "9d 01 03 00 00 00 00 06 a0 %s a0 a0 a0 c2", route);
    CHECK(is_refused_hex(text, "unknown op"));
    snprintf(text, sizeof(text), "9d 01 03 00 00 00 00 01 01 %s a0 a0 a0 c2", route);
    CHECK(is_refused_hex(text, "invalid hub"));
    snprintf(text, sizeof(text), "9d 01 03 00 00 00 00 01 a0 %s c0 a0 a0 c2", route);
    CHECK(is_refused_hex(text, "invalid group"));
    snprintf(text, sizeof(text), "9d 01 03 00 00 00 00 01 a0 %s a0 c0 a0 c2", route);
    CHECK(is_refused_hex(text, "invalid text"));
    snprintf(text, sizeof(text), "9d 01 03 00 00 00 00 01 a0 %s a0 a0 c0 c2", route);
    CHECK(is_refused_hex(text, "invalid connection"));
    snprintf(text, sizeof(text), "9d 01 03 00 00 00 00 01 a0 %s a0 a0 a0 01", route);
    CHECK(is_refused_hex(text, "v1 is not a bool"));
    snprintf(text, sizeof(text), "9d 01 03 00 00 00 00 01 a0 %s a0 a0 a0 c0", route);
    CHECK(is_refused_hex(text, "v1 is not a bool"));
    CHECK(is_refused_hex("9d 01 03 00 00 00 00 01 a0 c4 07 00 00 00 00 00 00 00 a0 a0 a0 c2",
                         "route is not 8 bytes"));
    CHECK(is_refused_hex("9d 01 03 00 00 00 00 01 a0 c4 09 00 00 00 00 00 00 00 00 00"
                         " a0 a0 a0 c2",
                         "route is not 8 bytes"));
    CHECK(is_refused_hex("9d 01 03 00 00 00 00 01 a0 a8 00 00 00 00 00 00 00 01 a0 a0 a0 c2",
                         "route is not a bin"));
    CHECK(is_refused_hex("9d 01 03 00 00 00 00 01 a0 cf 00 00 00 00 00 00 00 01 a0 a0 a0 c2",
                         "route is not a bin"));

    /* ANSWER: 97 01 04 00 00 00 | request status */
    CHECK(is_refused_hex("97 01 04 00 00 00 a0 cc c8", "invalid request id"));
    CHECK(is_refused_hex("97 01 04 00 00 00 00 63", "invalid status"));
    CHECK(is_refused_hex("97 01 04 00 00 00 00 cd 02 58", "invalid status"));
    CHECK(is_refused_hex("97 01 04 00 00 00 00 ce 00 01 00 c8", "invalid status"));
    CHECK(is_refused_hex("97 01 04 00 00 00 00 d1 ff 38", "invalid status"));
    CHECK_EQ(decode_hex("97 01 04 00 00 00 00 64"), 0);
    CHECK_EQ(decode_hex("97 01 04 00 00 00 00 cd 02 57"), 0);

    /* USER_GROUPS: 99 01 05 00 00 00 | op hub user group */
    CHECK(is_refused_hex("99 01 05 00 00 00 00 a0 a0 a0", "unknown op"));
    CHECK(is_refused_hex("99 01 05 00 00 00 04 a0 a0 a0", "unknown op"));
    CHECK(is_refused_hex("99 01 05 00 00 00 01 c0 a0 a0", "invalid hub"));
    CHECK(is_refused_hex("99 01 05 00 00 00 01 a0 c0 a0", "invalid user"));
    CHECK(is_refused_hex("99 01 05 00 00 00 01 a0 a0 c0", "invalid group"));

    /* Names one byte too long in the other kinds. */
    uint32_t size;
    env = (struct rh_bp_env){.kind = RH_BP_INTEREST};
    env.interest.name = name_of(RH_BP_NAME_MAX + 1);
    uint8_t *out = encode(&env, &size);
    CHECK(is_refused(out, size, "a string is over RH_BP_NAME_MAX bytes"));
    free(out);
    env = (struct rh_bp_env){.kind = RH_BP_COMMAND, .command.op = RH_BP_CLOSE};
    env.command.text = name_of(RH_BP_NAME_MAX + 1);
    out = encode(&env, &size);
    CHECK(is_refused(out, size, "a string is over RH_BP_NAME_MAX bytes"));
    free(out);
    env = (struct rh_bp_env){.kind = RH_BP_USER_GROUPS, .user_groups.op = RH_BP_ADD_TO_GROUP};
    env.user_groups.user = name_of(RH_BP_NAME_MAX + 1);
    out = encode(&env, &size);
    CHECK(is_refused(out, size, "a string is over RH_BP_NAME_MAX bytes"));
    free(out);
}

static void test_why_optional(void)
{
    static const uint8_t bad[] = {0x01};
    CHECK_EQ(rh_bp_decode(bad, sizeof(bad), &back, NULL), -EINVAL);
    why = NULL;
    CHECK_EQ(rh_bp_decode(NULL, 0, &back, &why), -EINVAL);
    CHECK(why != NULL);
    static const uint8_t good[] = {0x97, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0xcc, 0xc8};
    CHECK_EQ(rh_bp_decode(good, sizeof(good), &back, NULL), 0);
}

/* The node directory's entries: written and read back; anything else refused. */
static void test_node_entries(void)
{
    struct rh_bp_node_entry e = {.id = 7, .started_ms = 1764390000123, .seen_ms = 1764390005123};
    strcpy(e.address, "[::1]:5001");
    char value[128];
    int len = rh_bp_node_format(&e, value, sizeof(value));
    CHECK(len > 0 && strcmp(value, "1764390000123 1764390005123 [::1]:5001") == 0);
    char small[10];
    CHECK_EQ(rh_bp_node_format(&e, small, sizeof(small)), -1);
    struct rh_bp_node_entry got;
    CHECK(rh_bp_node_parse(rh_span_make("7", 1), rh_span_make(value, (uint32_t)len), &got));
    CHECK_EQ(got.id, 7);
    CHECK_EQ(got.started_ms, e.started_ms);
    CHECK_EQ(got.seen_ms, e.seen_ms);
    CHECK(strcmp(got.address, "[::1]:5001") == 0);
    CHECK(rh_bp_node_parse(rh_span_make("4095", 4), rh_span_make("0 0 a:1", 7), &got));
    static const char *const bad_ids[] = {
        "", "4096", "-1", "1 ", "x", "0x1", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
        CHECK(!rh_bp_node_parse(rh_span_make(bad_ids[i], (uint32_t)strlen(bad_ids[i])),
                                rh_span_make("1 2 a:1", 7), &got));
    static const char *const bad_values[] = {
        "",         "1 2",      "1 2 ",     "1  2 a:1",  " 1 2 a:1", "1 2 a b",
        "-1 2 a:1", "1 -2 a:1", "1x 2 a:1", "1 2 a:1\n", "1 2 \x01", "1234567890123456789 2 a",
    };
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
        CHECK(!rh_bp_node_parse(rh_span_make("1", 1),
                                rh_span_make(bad_values[i], (uint32_t)strlen(bad_values[i])),
                                &got));
    char long_value[128];
    memset(long_value, 'a', sizeof(long_value));
    memcpy(long_value, "1 2 ", 4);
    CHECK(!rh_bp_node_parse(rh_span_make("1", 1), rh_span_make(long_value, 4 + 64), &got));
    CHECK(rh_bp_node_parse(rh_span_make("1", 1), rh_span_make(long_value, 4 + 63), &got));
}

int main(void)
{
    for (uint32_t i = 0; i < sizeof(names); i++)
        names[i] = (uint8_t)('a' + i % 26);
    test_send_round_trips();
    test_other_round_trips();
    test_exact_bytes();
    test_smallest_forms();
    test_any_width();
    test_extra_elements();
    test_head_refusals();
    test_send_refusals();
    test_other_refusals();
    test_why_optional();
    test_node_entries();
    free(held);
    return rh_check_finish();
}
