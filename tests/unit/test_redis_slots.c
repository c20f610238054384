/*
 * tests/unit/test_redis_slots.c - the Redis Cluster helpers of transports/redis_slots.h: key
 * slots against the values Redis gives (checked with redis-cli CLUSTER KEYSLOT on Redis 7.0.15)
 * and against a bit-by-bit CRC16/XMODEM, hash tags at their edges; slot maps from CLUSTER SLOTS
 * replies read by hiredis from RESP bytes (replies captured from a Redis 7.0 cluster, masters
 * with several ranges, unknown hosts, and each malformed shape); adding endpoints; and MOVED/ASK
 * redirections with every host form, every bad number and every prefix of a valid one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "tests/harness/check.h"
#include "transports/redis_slots.h"

/* @resp (a string literal of RESP bytes) read by hiredis into one reply. */
#define REPLY_LIT(lit) read_reply((lit), sizeof(lit) - 1)
/* rh_redis_redirect_parse on the string literal @lit, from a heap copy of exactly its bytes. */
#define REDIRECT_LIT(lit) redirect((lit), sizeof(lit) - 1)

/* Large (33 KiB): one for the whole test. */
static struct rh_redis_slot_map map;

/* The RESP being built by the resp_* helpers. */
static char resp_text[1 << 20];
static size_t resp_len;

/* What the last redirect() found. */
static bool got_is_ask;
static uint16_t got_slot;
static struct rh_redis_endpoint got_to;

static redisReply *read_reply(const char *resp, size_t len);
static void resp_reset(void);
static void resp_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void resp_bulk(const char *text, size_t len);
static void resp_range(int first, int last, const char *host, int port, int replica_count);
static int parse_resp(const char *resp, size_t len, const char *seed_host, const char **why);
static int parse_built(const char *seed_host, const char **why);
static void check_map_valid(void);
static bool range_is_owned(uint32_t first, uint32_t last, const char *host, uint16_t port);
static bool range_is_unowned(uint32_t first, uint32_t last);
static bool map_is_empty(void);
static void check_malformed(const char *resp, size_t len, const char *why_part, int line);
static bool redirect(const char *text, size_t len);
static uint16_t slot_of(const char *key);
static uint16_t reference_slot(const uint8_t *key, size_t len);
static void test_slot_known(void);
static void test_slot_tags(void);
static void test_slot_reference(void);
static void test_map_redis7(void);
static void test_map_unknown_hosts(void);
static void test_map_ranges(void);
static void test_map_bounds(void);
static void test_map_malformed(void);
static void test_map_hand_built(void);
static void test_map_endpoint(void);
static void test_redirect(void);
static void test_redirect_hosts(void);
static void test_redirect_bad(void);
static void test_redirect_prefixes(void);
static void test_redirect_from_reader(void);

int main(void)
{
    test_slot_known();
    test_slot_tags();
    test_slot_reference();
    test_map_redis7();
    test_map_unknown_hosts();
    test_map_ranges();
    test_map_bounds();
    test_map_malformed();
    test_map_hand_built();
    test_map_endpoint();
    test_redirect();
    test_redirect_hosts();
    test_redirect_bad();
    test_redirect_prefixes();
    test_redirect_from_reader();
    return rh_check_finish();
}

/* Values from redis-cli CLUSTER KEYSLOT (Redis 7.0.15) and the Redis Cluster specification. */
static void test_slot_known(void)
{
    CHECK_EQ(slot_of("foo"), 12182);
    CHECK_EQ(slot_of("bar"), 5061);
    CHECK_EQ(slot_of("hello"), 866);
    /* The CRC16/XMODEM check value is 0x31c3. */
    CHECK_EQ(slot_of("123456789"), 0x31c3);
    CHECK_EQ(slot_of(""), 0);
    CHECK_EQ(rh_redis_slot(NULL, 0), 0);
    CHECK_EQ(slot_of("user1000"), 3443);
    CHECK_EQ(slot_of("{user1000}.following"), 3443);
    CHECK_EQ(slot_of("{user1000}.followers"), 3443);
    CHECK_EQ(slot_of("{}"), 15257);
    CHECK_EQ(slot_of("{"), 4092);
    CHECK_EQ(slot_of("}"), 12090);
    CHECK_EQ(slot_of("a{b}"), 3300);
    CHECK_EQ(slot_of("foo{}{bar}"), 8363);
    CHECK_EQ(slot_of("foo{{bar}}zap"), 4015);
    CHECK_EQ(slot_of("foo{bar}{zap}"), 5061);
}

static void test_slot_tags(void)
{
    /* An empty tag hashes the whole key, even when a later tag is not empty. */
    CHECK_EQ(slot_of("foo{}{bar}"), reference_slot((const uint8_t *)"foo{}{bar}", 10));
    CHECK_NE(slot_of("foo{}{bar}"), slot_of("bar"));
    /* The first '}' after the first '{' closes the tag, so it may contain '{'. */
    CHECK_EQ(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    /* Only the first tag counts. */
    CHECK_EQ(slot_of("foo{bar}{zap}"), slot_of("bar"));
    CHECK_EQ(slot_of("{a}{b}"), slot_of("a"));
    /* No '}' after the '{': the whole key. */
    CHECK_EQ(slot_of("foo{bar"), reference_slot((const uint8_t *)"foo{bar", 7));
    CHECK_EQ(slot_of("}foo{bar"), reference_slot((const uint8_t *)"}foo{bar", 8));
    /* A '}' before the '{' does not close it. */
    CHECK_EQ(slot_of("}x{y}"), slot_of("y"));
    CHECK_EQ(slot_of("{x}"), slot_of("x"));
    CHECK_EQ(slot_of("x{y}z"), slot_of("y"));
    /* Bytes are bytes: a NUL and high bytes in key and tag. */
    CHECK_EQ(rh_redis_slot("a\0{b\0c}d", 8), rh_redis_slot("b\0c", 3));
    CHECK_EQ(rh_redis_slot("\xff{\x80}", 4), rh_redis_slot("\x80", 1));
    /* The tag is read from @len bytes only: the '}' past the end is not seen. */
    CHECK_EQ(rh_redis_slot("a{b}", 3), reference_slot((const uint8_t *)"a{b", 3));
    /* A sharded channel is a key like any other. */
    CHECK_EQ(slot_of("{hub:chat}:group:a"), slot_of("{hub:chat}:group:b"));
}

/* Many keys, with and without tags, against a bit-by-bit CRC and Redis's tag rule. */
static void test_slot_reference(void)
{
    static const char alphabet[] = "ab{}{}xyz\0\xff";
    uint8_t key[40];
    unsigned seed = 12345, mismatches = 0, max_seen = 0;

    for (int round = 0; round < 20000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = (seed >> 16) % sizeof(key);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            key[i] = (uint8_t)alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        uint16_t slot = rh_redis_slot(key, len);
        if (slot != reference_slot(key, len)) mismatches++;
        if (slot > max_seen) max_seen = slot;
    }
    CHECK_EQ(mismatches, 0);
    CHECK_LT(max_seen, RH_REDIS_SLOTS);
}

/* CLUSTER SLOTS from a Redis 7.0.15 cluster of three masters with one replica each. */
static const char redis7_ip[] = "*3\r\n"
                                "*4\r\n:0\r\n:5460\r\n"
                                "*4\r\n$9\r\n127.0.0.1\r\n:27101\r\n"
                                "$40\r\nce7fabcf6aa549d18d99682a063641a9e7947b30\r\n*0\r\n"
                                "*4\r\n$9\r\n127.0.0.1\r\n:27105\r\n"
                                "$40\r\ne33dc00f1413d9c261225ca5a4b3003cffd0bcbc\r\n*0\r\n"
                                "*4\r\n:5461\r\n:10922\r\n"
                                "*4\r\n$9\r\n127.0.0.1\r\n:27102\r\n"
                                "$40\r\n328ccd1658298161b254ab14e4e839795c268d25\r\n*0\r\n"
                                "*4\r\n$9\r\n127.0.0.1\r\n:27106\r\n"
                                "$40\r\nbd4f93f06a7b189f4694aa622b685c3004d5f2a9\r\n*0\r\n"
                                "*4\r\n:10923\r\n:16383\r\n"
                                "*4\r\n$9\r\n127.0.0.1\r\n:27103\r\n"
                                "$40\r\ned2700ff8ae3511e596377356c8baf75a2e808b1\r\n*0\r\n"
                                "*4\r\n$9\r\n127.0.0.1\r\n:27104\r\n"
                                "$40\r\nfb56454517f6ceab609057a618d3a63910d4418f\r\n*0\r\n";

/* The same cluster with cluster-preferred-endpoint-type hostname: the first master has no
 * hostname ("?"), and each node carries its IP or hostname as metadata. */
static const char redis7_hostname[] = "*2\r\n"
                                      "*4\r\n:0\r\n:5460\r\n"
                                      "*4\r\n$1\r\n?\r\n:27101\r\n"
                                      "$40\r\nce7fabcf6aa549d18d99682a063641a9e7947b30\r\n"
                                      "*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
                                      "*4\r\n$18\r\nnode-27105.example\r\n:27105\r\n"
                                      "$40\r\ne33dc00f1413d9c261225ca5a4b3003cffd0bcbc\r\n"
                                      "*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
                                      "*3\r\n:5461\r\n:10922\r\n"
                                      "*4\r\n$18\r\nnode-27102.example\r\n:27102\r\n"
                                      "$40\r\n328ccd1658298161b254ab14e4e839795c268d25\r\n"
                                      "*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n";

/* And with cluster-preferred-endpoint-type unknown-endpoint: every host is nil. */
static const char redis7_unknown[] = "*1\r\n"
                                     "*4\r\n:0\r\n:5460\r\n"
                                     "*4\r\n$-1\r\n:27101\r\n"
                                     "$40\r\nce7fabcf6aa549d18d99682a063641a9e7947b30\r\n"
                                     "*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
                                     "*4\r\n$-1\r\n:27105\r\n"
                                     "$40\r\ne33dc00f1413d9c261225ca5a4b3003cffd0bcbc\r\n"
                                     "*4\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
                                     "$8\r\nhostname\r\n$18\r\nnode-27105.example\r\n";

static void test_map_redis7(void)
{
    const char *why = NULL;

    CHECK_EQ(parse_resp(redis7_ip, sizeof(redis7_ip) - 1, "seed.example", &why), 0);
    CHECK(why == NULL);
    check_map_valid();
    CHECK_EQ(map.endpoint_count, 3);
    CHECK(range_is_owned(0, 5460, "127.0.0.1", 27101));
    CHECK(range_is_owned(5461, 10922, "127.0.0.1", 27102));
    CHECK(range_is_owned(10923, 16383, "127.0.0.1", 27103));
    /* Replicas are not endpoints. */
    for (uint32_t i = 0; i < map.endpoint_count; i++)
        CHECK(map.endpoints[i].port >= 27101 && map.endpoints[i].port <= 27103);
    /* Where the keys Redis answered MOVED for live. */
    CHECK_EQ(map.endpoints[map.owner[slot_of("foo")]].port, 27103);
    CHECK_EQ(map.endpoints[map.owner[slot_of("hello")]].port, 27101);

    /* No seed host is needed when every host is known. */
    CHECK_EQ(parse_resp(redis7_ip, sizeof(redis7_ip) - 1, NULL, NULL), 0);
    CHECK_EQ(map.endpoint_count, 3);

    CHECK_EQ(parse_resp(redis7_hostname, sizeof(redis7_hostname) - 1, "seed.example", &why), 0);
    check_map_valid();
    CHECK_EQ(map.endpoint_count, 2);
    CHECK(range_is_owned(0, 5460, "seed.example", 27101));
    /* A range with a master and no replicas. */
    CHECK(range_is_owned(5461, 10922, "node-27102.example", 27102));
    CHECK(range_is_unowned(10923, 16383));

    CHECK_EQ(parse_resp(redis7_unknown, sizeof(redis7_unknown) - 1, "10.0.0.7", &why), 0);
    check_map_valid();
    CHECK_EQ(map.endpoint_count, 1);
    CHECK(range_is_owned(0, 5460, "10.0.0.7", 27101));
    CHECK(range_is_unowned(5461, 16383));
}

static void test_map_unknown_hosts(void)
{
    const char *why = NULL;

    /* "" and "?" and nil all become the seed host; with their own ports they stay apart. */
    resp_reset();
    resp_add("*3\r\n");
    resp_range(0, 99, "", 7000, 1);
    resp_range(100, 199, "?", 7001, 0);
    resp_add("*3\r\n:200\r\n:299\r\n*2\r\n$-1\r\n:7002\r\n");
    CHECK_EQ(parse_built("seed", &why), 0);
    check_map_valid();
    CHECK_EQ(map.endpoint_count, 3);
    CHECK(range_is_owned(0, 99, "seed", 7000));
    CHECK(range_is_owned(100, 199, "seed", 7001));
    CHECK(range_is_owned(200, 299, "seed", 7002));

    /* The seed host and a node naming the same address are one endpoint. */
    resp_reset();
    resp_add("*2\r\n");
    resp_range(0, 99, "", 7000, 0);
    resp_range(100, 199, "seed", 7000, 0);
    CHECK_EQ(parse_built("seed", &why), 0);
    CHECK_EQ(map.endpoint_count, 1);
    CHECK(range_is_owned(0, 199, "seed", 7000));

    /* An unknown host needs a seed host that fits. */
    resp_reset();
    resp_add("*1\r\n");
    resp_range(0, 99, "?", 7000, 0);
    why = NULL;
    CHECK_EQ(parse_built(NULL, &why), -EINVAL);
    CHECK(why && strstr(why, "seed"));
    CHECK(map_is_empty());
    why = NULL;
    CHECK_EQ(parse_built("", &why), -EINVAL);
    CHECK(why && strstr(why, "seed"));
    char seed[RH_REDIS_HOST_MAX + 2];
    memset(seed, 's', sizeof(seed) - 1);
    seed[sizeof(seed) - 1] = '\0';
    why = NULL;
    CHECK_EQ(parse_built(seed, &why), -EINVAL);
    CHECK(why && strstr(why, "too long"));
    seed[RH_REDIS_HOST_MAX] = '\0';
    CHECK_EQ(parse_built(seed, &why), 0);
    CHECK(range_is_owned(0, 99, seed, 7000));
    /* "??" and " " are names like any other. */
    resp_reset();
    resp_add("*2\r\n");
    resp_range(0, 0, "??", 7000, 0);
    resp_range(1, 1, " ", 7000, 0);
    CHECK_EQ(parse_built(NULL, &why), 0);
    CHECK(range_is_owned(0, 0, "??", 7000));
    CHECK(range_is_owned(1, 1, " ", 7000));
}

static void test_map_ranges(void)
{
    const char *why = NULL;

    /* A master in two ranges is one endpoint; the other master sits between. */
    resp_reset();
    resp_add("*3\r\n");
    resp_range(0, 100, "10.0.0.1", 6379, 2);
    resp_range(101, 200, "10.0.0.2", 6379, 1);
    resp_range(201, 16383, "10.0.0.1", 6379, 0);
    CHECK_EQ(parse_built(NULL, &why), 0);
    check_map_valid();
    CHECK_EQ(map.endpoint_count, 2);
    CHECK(range_is_owned(0, 100, "10.0.0.1", 6379));
    CHECK(range_is_owned(101, 200, "10.0.0.2", 6379));
    CHECK(range_is_owned(201, 16383, "10.0.0.1", 6379));
    CHECK_EQ(map.owner[0], map.owner[16383]);

    /* Same host, other port: another master. Ranges in any order, single slots, gaps. */
    resp_reset();
    resp_add("*4\r\n");
    resp_range(16383, 16383, "h", 2, 0);
    resp_range(5, 5, "h", 1, 0);
    resp_range(0, 0, "h", 1, 0);
    resp_range(7, 9, "h", 65535, 3);
    CHECK_EQ(parse_built(NULL, &why), 0);
    check_map_valid();
    CHECK_EQ(map.endpoint_count, 3);
    CHECK(range_is_owned(0, 0, "h", 1));
    CHECK(range_is_unowned(1, 4));
    CHECK(range_is_owned(5, 5, "h", 1));
    CHECK(range_is_unowned(6, 6));
    CHECK(range_is_owned(7, 9, "h", 65535));
    CHECK(range_is_unowned(10, 16382));
    CHECK(range_is_owned(16383, 16383, "h", 2));

    /* No slots assigned yet: an empty map. */
    CHECK_EQ(parse_resp("*0\r\n", 4, NULL, &why), 0);
    CHECK(map_is_empty());

    /* A node's id and metadata are optional, and anything after them is ignored. */
    static const char bare[] = "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$1\r\nh\r\n:1\r\n";
    CHECK_EQ(parse_resp(bare, sizeof(bare) - 1, NULL, &why), 0);
    CHECK(range_is_owned(0, 16383, "h", 1));
    static const char extra[] = "*1\r\n*4\r\n:0\r\n:1\r\n"
                                "*6\r\n$1\r\nh\r\n:1\r\n$-1\r\n:5\r\n*0\r\n+OK\r\n"
                                "+not a node\r\n";
    CHECK_EQ(parse_resp(extra, sizeof(extra) - 1, NULL, &why), 0);
    CHECK(range_is_owned(0, 1, "h", 1));
    CHECK(range_is_unowned(2, 16383));

    /* A host of exactly RH_REDIS_HOST_MAX bytes. */
    char host[RH_REDIS_HOST_MAX + 1];
    memset(host, 'a', RH_REDIS_HOST_MAX);
    host[RH_REDIS_HOST_MAX] = '\0';
    resp_reset();
    resp_add("*1\r\n");
    resp_range(0, 10, host, 7000, 0);
    CHECK_EQ(parse_built(NULL, &why), 0);
    CHECK(range_is_owned(0, 10, host, 7000));
}

static void test_map_bounds(void)
{
    const char *why = NULL;
    char host[16];

    /* RH_REDIS_ENDPOINTS_MAX masters fit... */
    resp_reset();
    resp_add("*%d\r\n", RH_REDIS_ENDPOINTS_MAX);
    for (int i = 0; i < RH_REDIS_ENDPOINTS_MAX; i++) {
        snprintf(host, sizeof(host), "10.0.0.%d", i);
        resp_range(i * 200, i * 200 + 199, host, 7000, 1);
    }
    CHECK_EQ(parse_built(NULL, &why), 0);
    check_map_valid();
    CHECK_EQ(map.endpoint_count, RH_REDIS_ENDPOINTS_MAX);
    CHECK(range_is_owned(0, 199, "10.0.0.0", 7000));
    CHECK(range_is_owned(63 * 200, 63 * 200 + 199, "10.0.0.63", 7000));
    CHECK(range_is_unowned(64 * 200, 16383));

    /* ...one more does not, and the map is left empty. */
    resp_reset();
    resp_add("*%d\r\n", RH_REDIS_ENDPOINTS_MAX + 1);
    for (int i = 0; i <= RH_REDIS_ENDPOINTS_MAX; i++) {
        snprintf(host, sizeof(host), "10.0.0.%d", i);
        resp_range(i * 200, i * 200 + 199, host, 7000, 0);
    }
    why = NULL;
    CHECK_EQ(parse_built(NULL, &why), -EINVAL);
    CHECK(why && strstr(why, "masters"));
    CHECK(map_is_empty());

    /* Many ranges of few masters are fine: every slot its own range. */
    resp_reset();
    resp_add("*%d\r\n", RH_REDIS_SLOTS);
    for (int i = 0; i < RH_REDIS_SLOTS; i++)
        resp_add("*3\r\n:%d\r\n:%d\r\n*2\r\n$1\r\n%c\r\n:%d\r\n", i, i, 'a' + i % 3, 1 + i % 2);
    CHECK_EQ(parse_built(NULL, &why), 0);
    check_map_valid();
    CHECK_EQ(map.endpoint_count, 6);
    CHECK(range_is_owned(16383, 16383, (const char[]){(char)('a' + 16383 % 3), 0}, 2));
}

#define MALFORMED(lit, why_part) check_malformed((lit), sizeof(lit) - 1, (why_part), __LINE__)

static void test_map_malformed(void)
{
    /* Not an array. */
    MALFORMED("+OK\r\n", "not an array");
    MALFORMED(":1\r\n", "not an array");
    MALFORMED("$3\r\nabc\r\n", "not an array");
    MALFORMED("-ERR This instance has cluster support disabled\r\n", "not an array");
    MALFORMED("$-1\r\n", "not an array");
    MALFORMED("*-1\r\n", "not an array");

    /* A range that is not [first, last, master, ...]. */
    MALFORMED("*1\r\n:0\r\n", "slot range");
    MALFORMED("*1\r\n*0\r\n", "slot range");
    MALFORMED("*1\r\n*2\r\n:0\r\n:1\r\n", "slot range");
    MALFORMED("*1\r\n*-1\r\n", "slot range");
    /* A good range before a bad one does not survive. */
    MALFORMED("*2\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n$1\r\nx\r\n", "slot range");

    /* Slots that are not integers, or out of bounds, or out of order. */
    MALFORMED("*1\r\n*3\r\n$1\r\n0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n", "not an integer");
    MALFORMED("*1\r\n*3\r\n:0\r\n+1\r\n*2\r\n$1\r\nh\r\n:1\r\n", "not an integer");
    MALFORMED("*1\r\n*3\r\n:0\r\n$-1\r\n*2\r\n$1\r\nh\r\n:1\r\n", "not an integer");
    MALFORMED("*1\r\n*3\r\n:-1\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n", "out of bounds");
    MALFORMED("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n", "out of bounds");
    MALFORMED("*1\r\n*3\r\n:16384\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n", "out of bounds");
    MALFORMED("*1\r\n*3\r\n:0\r\n:4294967296\r\n*2\r\n$1\r\nh\r\n:1\r\n", "out of bounds");
    MALFORMED("*1\r\n*3\r\n:-9223372036854775808\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n",
              "out of bounds");
    MALFORMED("*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\nh\r\n:1\r\n", "out of order");
    MALFORMED("*1\r\n*3\r\n:16383\r\n:0\r\n*2\r\n$1\r\nh\r\n:1\r\n", "out of order");

    /* Overlapping ranges, of one master or two. */
    MALFORMED("*2\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\nh\r\n:1\r\n"
              "*3\r\n:10\r\n:20\r\n*2\r\n$1\r\ng\r\n:1\r\n",
              "overlap");
    MALFORMED("*2\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\nh\r\n:1\r\n"
              "*3\r\n:3\r\n:4\r\n*2\r\n$1\r\nh\r\n:1\r\n",
              "overlap");

    /* A master that is not [host, port, ...]. */
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n$1\r\nh\r\n", "node is not");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*0\r\n", "node is not");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n", "node is not");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*-1\r\n", "node is not");

    /* Hosts that are not strings, too long, or with a NUL. */
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n:1\r\n:1\r\n", "host is not a string");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n+h\r\n:1\r\n", "host is not a string");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n*1\r\n$1\r\nh\r\n:1\r\n", "host is not a string");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$3\r\na\0b\r\n:1\r\n", "NUL");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\n\0\r\n:1\r\n", "NUL");

    /* Ports that are not integers or out of bounds. */
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n$4\r\n7000\r\n", "port is not");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n$-1\r\n", "port is not");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n", "port out of bounds");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:-1\r\n", "port out of bounds");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:65536\r\n", "port out of bounds");
    MALFORMED("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:4294967297\r\n", "port out of bounds");

    /* A host of RH_REDIS_HOST_MAX + 1 bytes. */
    char host[RH_REDIS_HOST_MAX + 2];
    memset(host, 'a', RH_REDIS_HOST_MAX + 1);
    host[RH_REDIS_HOST_MAX + 1] = '\0';
    resp_reset();
    resp_add("*1\r\n");
    resp_range(0, 10, host, 7000, 0);
    check_malformed(resp_text, resp_len, "too long", __LINE__);

    /* Without @why. */
    CHECK_EQ(parse_resp(":1\r\n", 4, "seed", NULL), -EINVAL);
    CHECK(map_is_empty());
    /* A NULL reply. */
    const char *why = NULL;
    CHECK_EQ(rh_redis_slot_map_parse(NULL, "seed", &map, &why), -EINVAL);
    CHECK(why && strstr(why, "not an array"));
    CHECK(map_is_empty());
}

/* Trees hiredis never builds, as a careless caller might: NULL elements, a count with no
 * element array. */
static void test_map_hand_built(void)
{
    redisReply host = {.type = REDIS_REPLY_STRING, .str = (char *)"h", .len = 1};
    redisReply port = {.type = REDIS_REPLY_INTEGER, .integer = 7000};
    redisReply first = {.type = REDIS_REPLY_INTEGER, .integer = 0};
    redisReply last = {.type = REDIS_REPLY_INTEGER, .integer = 9};
    redisReply *node_items[2] = {&host, &port};
    redisReply node = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = node_items};
    redisReply *range_items[3] = {&first, &last, &node};
    redisReply range = {.type = REDIS_REPLY_ARRAY, .elements = 3, .element = range_items};
    redisReply *top_items[1] = {&range};
    redisReply top = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = top_items};
    const char *why = NULL;

    CHECK_EQ(rh_redis_slot_map_parse(&top, NULL, &map, &why), 0);
    CHECK(range_is_owned(0, 9, "h", 7000));

    /* A count without an element array, at each level. */
    top.element = NULL;
    CHECK_EQ(rh_redis_slot_map_parse(&top, NULL, &map, &why), -EINVAL);
    top.element = top_items;
    range.element = NULL;
    CHECK_EQ(rh_redis_slot_map_parse(&top, NULL, &map, &why), -EINVAL);
    range.element = range_items;
    node.element = NULL;
    CHECK_EQ(rh_redis_slot_map_parse(&top, NULL, &map, &why), -EINVAL);
    node.element = node_items;

    /* A NULL element, at each place. */
    for (int i = 0; i < 6; i++) {
        redisReply **slot = i == 0  ? &top_items[0]
                            : i < 4 ? &range_items[i - 1]
                                    : &node_items[i - 4];
        redisReply *saved = *slot;
        *slot = NULL;
        why = NULL;
        CHECK_EQ(rh_redis_slot_map_parse(&top, NULL, &map, &why), -EINVAL);
        CHECK(why != NULL);
        CHECK(map_is_empty());
        *slot = saved;
    }

    /* A string with a length and no bytes. */
    host.str = NULL;
    CHECK_EQ(rh_redis_slot_map_parse(&top, "seed", &map, &why), -EINVAL);
    /* An empty string with no bytes is an unknown host. */
    host.len = 0;
    CHECK_EQ(rh_redis_slot_map_parse(&top, "seed", &map, &why), 0);
    CHECK(range_is_owned(0, 9, "seed", 7000));
    host.str = (char *)"h";
    host.len = 1;

    /* An empty array with no element array is an empty map. */
    top.elements = 0;
    top.element = NULL;
    CHECK_EQ(rh_redis_slot_map_parse(&top, NULL, &map, &why), 0);
    CHECK(map_is_empty());
}

static void test_map_endpoint(void)
{
    memset(&map, 0xa5, sizeof(map));
    CHECK_EQ(rh_redis_slot_map_parse(&(redisReply){.type = REDIS_REPLY_ARRAY}, NULL, &map, NULL),
             0);
    CHECK(map_is_empty());

    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "a", 1), 0);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "b", 1), 1);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "a", 2), 2);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "a", 1), 0);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "a", 2), 2);
    /* Names are compared exactly, as Redis always writes a node's the same way. */
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "A", 1), 3);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "", 1), 4);
    CHECK_EQ(map.endpoint_count, 5);
    CHECK(strcmp(map.endpoints[2].host, "a") == 0);
    CHECK_EQ(map.endpoints[2].port, 2);

    /* What cannot be stored is refused, not truncated. */
    char host[RH_REDIS_HOST_MAX + 2];
    memset(host, 'x', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, host, 1), -1);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, NULL, 1), -1);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "a", 0), -1);
    CHECK_EQ(map.endpoint_count, 5);
    host[RH_REDIS_HOST_MAX] = '\0';
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, host, 1), 5);
    CHECK_EQ(strlen(map.endpoints[5].host), RH_REDIS_HOST_MAX);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, host, 1), 5);

    /* Fill it up. */
    char name[16];
    for (int i = (int)map.endpoint_count; i < RH_REDIS_ENDPOINTS_MAX; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        CHECK_EQ(rh_redis_slot_map_endpoint(&map, name, 7000), i);
    }
    CHECK_EQ(map.endpoint_count, RH_REDIS_ENDPOINTS_MAX);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "new", 1), -1);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "b", 1), 1);
    snprintf(name, sizeof(name), "n%d", RH_REDIS_ENDPOINTS_MAX - 1);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, name, 7000), RH_REDIS_ENDPOINTS_MAX - 1);
    CHECK_EQ(map.endpoint_count, RH_REDIS_ENDPOINTS_MAX);

    /* A count past the array is not trusted: the array is searched, nothing is added. */
    map.endpoint_count = 1000;
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "b", 1), 1);
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "new", 1), -1);
    CHECK_EQ(map.endpoint_count, 1000);
    /* Nor is a host without its NUL. */
    memset(map.endpoints[0].host, 'z', sizeof(map.endpoints[0].host));
    CHECK_EQ(rh_redis_slot_map_endpoint(&map, "zz", 1), -1);
}

static void test_redirect(void)
{
    /* As Redis 7.0.15 sent them. */
    CHECK(REDIRECT_LIT("MOVED 12182 127.0.0.1:27103"));
    CHECK(!got_is_ask);
    CHECK_EQ(got_slot, 12182);
    CHECK(strcmp(got_to.host, "127.0.0.1") == 0);
    CHECK_EQ(got_to.port, 27103);
    CHECK(REDIRECT_LIT("MOVED 12182 ?:27103"));
    CHECK_EQ(got_slot, 12182);
    CHECK(strcmp(got_to.host, "") == 0);
    CHECK_EQ(got_to.port, 27103);
    CHECK(REDIRECT_LIT("MOVED 12182 :27103"));
    CHECK(strcmp(got_to.host, "") == 0);
    CHECK_EQ(got_to.port, 27103);

    CHECK(REDIRECT_LIT("ASK 3999 10.1.2.3:6381"));
    CHECK(got_is_ask);
    CHECK_EQ(got_slot, 3999);
    CHECK(strcmp(got_to.host, "10.1.2.3") == 0);
    CHECK_EQ(got_to.port, 6381);

    /* Bounds of slot and port. */
    CHECK(REDIRECT_LIT("MOVED 0 h:1"));
    CHECK_EQ(got_slot, 0);
    CHECK_EQ(got_to.port, 1);
    CHECK(REDIRECT_LIT("ASK 16383 h:65535"));
    CHECK_EQ(got_slot, 16383);
    CHECK_EQ(got_to.port, 65535);
    /* Leading zeros, up to five digits. */
    CHECK(REDIRECT_LIT("MOVED 00042 h:00080"));
    CHECK_EQ(got_slot, 42);
    CHECK_EQ(got_to.port, 80);

    /* @len, not the NUL, ends the text. */
    CHECK(redirect("MOVED 1 h:7000 and more", 14));
    CHECK_EQ(got_to.port, 7000);
    CHECK(redirect("MOVED 1 h:7000\0", 14));
    CHECK(!redirect("MOVED 1 h:7000\0", 15));
}

static void test_redirect_hosts(void)
{
    CHECK(REDIRECT_LIT("MOVED 1 redis-2.cache.internal:6379"));
    CHECK(strcmp(got_to.host, "redis-2.cache.internal") == 0);
    CHECK_EQ(got_to.port, 6379);
    /* IPv6: in brackets, or bare with the port after the last ':'. */
    CHECK(REDIRECT_LIT("MOVED 1 [::1]:7000"));
    CHECK(strcmp(got_to.host, "::1") == 0);
    CHECK_EQ(got_to.port, 7000);
    CHECK(REDIRECT_LIT("MOVED 1 ::1:7000"));
    CHECK(strcmp(got_to.host, "::1") == 0);
    CHECK_EQ(got_to.port, 7000);
    CHECK(REDIRECT_LIT("ASK 2 2001:db8::8a2e:370:7334:6380"));
    CHECK(strcmp(got_to.host, "2001:db8::8a2e:370:7334") == 0);
    CHECK_EQ(got_to.port, 6380);
    CHECK(REDIRECT_LIT("ASK 2 [2001:db8::1]:6380"));
    CHECK(strcmp(got_to.host, "2001:db8::1") == 0);
    CHECK(REDIRECT_LIT("MOVED 1 :::7000"));
    CHECK(strcmp(got_to.host, "::") == 0);
    /* Empty: the node that answered. */
    CHECK(REDIRECT_LIT("MOVED 1 :7000"));
    CHECK(strcmp(got_to.host, "") == 0);
    CHECK(REDIRECT_LIT("MOVED 1 []:7000"));
    CHECK(strcmp(got_to.host, "") == 0);
    CHECK(REDIRECT_LIT("MOVED 1 ?:7000"));
    CHECK(strcmp(got_to.host, "") == 0);
    CHECK(REDIRECT_LIT("MOVED 1 ??:7000"));
    CHECK(strcmp(got_to.host, "??") == 0);

    /* A host of RH_REDIS_HOST_MAX bytes fits, one more does not; brackets do not count. */
    char host[RH_REDIS_HOST_MAX + 2], text[RH_REDIS_HOST_MAX + 32];
    memset(host, 'a', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    int len = snprintf(text, sizeof(text), "MOVED 1 [%.*s]:7000", RH_REDIS_HOST_MAX, host);
    CHECK(redirect(text, (size_t)len));
    CHECK_EQ(strlen(got_to.host), RH_REDIS_HOST_MAX);
    len = snprintf(text, sizeof(text), "MOVED 1 %.*s:7000", RH_REDIS_HOST_MAX, host);
    CHECK(redirect(text, (size_t)len));
    CHECK_EQ(strlen(got_to.host), RH_REDIS_HOST_MAX);
    CHECK_EQ(got_to.port, 7000);
    len = snprintf(text, sizeof(text), "MOVED 1 [%s]:7000", host);
    CHECK(!redirect(text, (size_t)len));
    len = snprintf(text, sizeof(text), "MOVED 1 %s:7000", host);
    CHECK(!redirect(text, (size_t)len));
}

static void test_redirect_bad(void)
{
    /* Not a redirection. */
    CHECK(!REDIRECT_LIT(""));
    CHECK(!REDIRECT_LIT("ERR unknown command 'FOO'"));
    CHECK(!REDIRECT_LIT("CLUSTERDOWN The cluster is down"));
    CHECK(!REDIRECT_LIT("TRYAGAIN Multiple keys request during rehashing of slot"));
    CHECK(!REDIRECT_LIT("CROSSSLOT Keys in request don't hash to the same slot"));
    CHECK(!REDIRECT_LIT("MOVED"));
    CHECK(!REDIRECT_LIT("MOVED "));
    CHECK(!REDIRECT_LIT("MOVED 1"));
    CHECK(!REDIRECT_LIT("MOVED 1 "));
    CHECK(!REDIRECT_LIT("ASK"));
    CHECK(!REDIRECT_LIT("ASKING"));
    CHECK(!REDIRECT_LIT("moved 1 h:1"));
    CHECK(!REDIRECT_LIT("ask 1 h:1"));
    CHECK(!REDIRECT_LIT("MOVED\t1 h:1"));
    CHECK(!REDIRECT_LIT(" MOVED 1 h:1"));
    CHECK(!REDIRECT_LIT("-MOVED 1 h:1"));
    CHECK(!rh_redis_redirect_parse(NULL, 0, &got_is_ask, &got_slot, &got_to));
    CHECK(!rh_redis_redirect_parse(NULL, 10, &got_is_ask, &got_slot, &got_to));

    /* Bad slots. */
    CHECK(!REDIRECT_LIT("MOVED 16384 h:1"));
    CHECK(!REDIRECT_LIT("MOVED 65535 h:1"));
    CHECK(!REDIRECT_LIT("MOVED 99999 h:1"));
    CHECK(!REDIRECT_LIT("MOVED 000001 h:1"));
    CHECK(!REDIRECT_LIT("MOVED 18446744073709551617 h:1"));
    CHECK(!REDIRECT_LIT("MOVED -1 h:1"));
    CHECK(!REDIRECT_LIT("MOVED +1 h:1"));
    CHECK(!REDIRECT_LIT("MOVED 12a h:1"));
    CHECK(!REDIRECT_LIT("MOVED 0x10 h:1"));
    CHECK(!REDIRECT_LIT("MOVED  1 h:1"));
    CHECK(!REDIRECT_LIT("MOVED 1  h:1"));
    CHECK(!REDIRECT_LIT("MOVED h:1"));

    /* Bad ports. */
    CHECK(!REDIRECT_LIT("MOVED 1 h:0"));
    CHECK(!REDIRECT_LIT("MOVED 1 h:00000"));
    CHECK(!REDIRECT_LIT("MOVED 1 h:65536"));
    CHECK(!REDIRECT_LIT("MOVED 1 h:99999"));
    CHECK(!REDIRECT_LIT("MOVED 1 h:100000"));
    CHECK(!REDIRECT_LIT("MOVED 1 h:4294967297"));
    CHECK(!REDIRECT_LIT("MOVED 1 h:-1"));
    CHECK(!REDIRECT_LIT("MOVED 1 h:+80"));
    CHECK(!REDIRECT_LIT("MOVED 1 h:80a"));
    CHECK(!REDIRECT_LIT("MOVED 1 h:"));
    CHECK(!REDIRECT_LIT("MOVED 1 h"));
    CHECK(!REDIRECT_LIT("MOVED 1 :"));
    CHECK(!REDIRECT_LIT("MOVED 1 [::1]"));
    CHECK(!REDIRECT_LIT("MOVED 1 [::1]:"));

    /* Bad hosts and what may not follow. */
    CHECK(!REDIRECT_LIT("MOVED 1 [::1:7000"));
    CHECK(!REDIRECT_LIT("MOVED 1 ::1]:7000"));
    CHECK(!REDIRECT_LIT("MOVED 1 [::1]x:7000"));
    CHECK(!REDIRECT_LIT("MOVED 1 [[::1]]:7000"));
    CHECK(!REDIRECT_LIT("MOVED 1 h h:7000"));
    CHECK(!REDIRECT_LIT("MOVED 1 h:7000 "));
    CHECK(!REDIRECT_LIT("MOVED 1 h:7000\r\n"));
    CHECK(!REDIRECT_LIT("MOVED 1 h:7000 extra"));
    CHECK(!REDIRECT_LIT("MOVED 1 h\0x:7000"));
    CHECK(!REDIRECT_LIT("MOVED 1 h\x7f:7000"));
    CHECK(!REDIRECT_LIT("MOVED 1 h\xc3\xa9:7000"));

    /* Nothing is written for a text that is not a redirection. */
    got_is_ask = true;
    got_slot = 777;
    memset(&got_to, 'q', sizeof(got_to));
    CHECK(!REDIRECT_LIT("MOVED 1 h:0"));
    CHECK(!REDIRECT_LIT("ASK 16384 h:1"));
    CHECK(got_is_ask);
    CHECK_EQ(got_slot, 777);
    CHECK_EQ(got_to.host[0], 'q');
    CHECK_EQ(got_to.host[RH_REDIS_HOST_MAX], 'q');
}

/* Every prefix of a redirection: a redirection exactly when at least one port digit is in,
 * with the port those digits make. (A bare IPv6 address is left out: "::1" alone is host ":"
 * and port 1.) */
static void test_redirect_prefixes(void)
{
    static const char *const texts[] = {"MOVED 3999 127.0.0.1:6381", "ASK 16383 [::1]:65535",
                                        "MOVED 7 node-1.example:7000", "ASK 0 :7"};
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        const char *text = texts[t];
        size_t len = strlen(text);
        size_t colon = (size_t)(strrchr(text, ':') - text);
        for (size_t cut = 0; cut <= len; cut++) {
            bool ok = redirect(text, cut);
            CHECK_EQ(ok, cut > colon + 1);
            if (!ok) continue;
            int port = 0;
            for (size_t i = colon + 1; i < cut; i++)
                port = port * 10 + (text[i] - '0');
            CHECK_EQ(got_to.port, port);
        }
    }
}

/* An error reply as hiredis hands it over: the text without '-' and CR LF. */
static void test_redirect_from_reader(void)
{
    redisReply *r = REPLY_LIT("-MOVED 12182 127.0.0.1:27103\r\n");
    if (!r) return;
    CHECK_EQ(r->type, REDIS_REPLY_ERROR);
    CHECK(rh_redis_redirect_parse(r->str, r->len, &got_is_ask, &got_slot, &got_to));
    CHECK_EQ(got_slot, 12182);
    CHECK_EQ(got_to.port, 27103);
    freeReplyObject(r);

    r = REPLY_LIT("-ASK 866 [fe80::1]:6379\r\n");
    if (!r) return;
    CHECK(rh_redis_redirect_parse(r->str, r->len, &got_is_ask, &got_slot, &got_to));
    CHECK(got_is_ask);
    CHECK(strcmp(got_to.host, "fe80::1") == 0);
    freeReplyObject(r);

    r = REPLY_LIT("-CLUSTERDOWN Hash slot not served\r\n");
    if (!r) return;
    CHECK(!rh_redis_redirect_parse(r->str, r->len, &got_is_ask, &got_slot, &got_to));
    freeReplyObject(r);
}

/* One reply from @resp, which must hold exactly that; NULL (a failed check) otherwise. */
static redisReply *read_reply(const char *resp, size_t len)
{
    redisReader *reader = redisReaderCreate();
    void *reply = NULL, *extra = NULL;

    CHECK(reader != NULL);
    if (!reader) return NULL;
    bool ok = redisReaderFeed(reader, resp, len) == REDIS_OK &&
              redisReaderGetReply(reader, &reply) == REDIS_OK && reply &&
              redisReaderGetReply(reader, &extra) == REDIS_OK && !extra;
    if (!ok) fprintf(stderr, "hiredis: %s on %.*s\n", reader->errstr, (int)len, resp);
    CHECK(ok);
    if (extra) freeReplyObject(extra);
    redisReaderFree(reader);
    return reply;
}

static void resp_reset(void)
{
    resp_len = 0;
}

static void resp_add(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(resp_text + resp_len, sizeof(resp_text) - resp_len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(resp_text) - resp_len) {
        fprintf(stderr, "test_redis_slots: RESP buffer too small\n");
        abort();
    }
    resp_len += (size_t)n;
}

static void resp_bulk(const char *text, size_t len)
{
    resp_add("$%zu\r\n", len);
    if (len + 2 >= sizeof(resp_text) - resp_len) {
        fprintf(stderr, "test_redis_slots: RESP buffer too small\n");
        abort();
    }
    memcpy(resp_text + resp_len, text, len);
    resp_len += len;
    resp_add("\r\n");
}

/* [first, last, [host, port, id], replicas...] as Redis 6 sends it (no metadata). */
static void resp_range(int first, int last, const char *host, int port, int replica_count)
{
    resp_add("*%d\r\n:%d\r\n:%d\r\n", 3 + replica_count, first, last);
    resp_add("*3\r\n");
    resp_bulk(host, strlen(host));
    resp_add(":%d\r\n$40\r\n%040d\r\n", port, port);
    for (int i = 0; i < replica_count; i++) {
        resp_add("*3\r\n");
        resp_bulk("192.168.99.99", 13);
        resp_add(":%d\r\n$40\r\n%040d\r\n", 10000 + i, i);
    }
}

static int parse_resp(const char *resp, size_t len, const char *seed_host, const char **why)
{
    redisReply *reply = read_reply(resp, len);
    if (!reply) return -999;
    int rc = rh_redis_slot_map_parse(reply, seed_host, &map, why);
    freeReplyObject(reply);
    check_map_valid();
    return rc;
}

static int parse_built(const char *seed_host, const char **why)
{
    return parse_resp(resp_text, resp_len, seed_host, why);
}

/* The map's invariants: owners name endpoints, endpoints are distinct, whole and usable. */
static void check_map_valid(void)
{
    CHECK_LE(map.endpoint_count, RH_REDIS_ENDPOINTS_MAX);
    uint32_t count = map.endpoint_count <= RH_REDIS_ENDPOINTS_MAX ? map.endpoint_count : 0;
    unsigned bad_owners = 0;
    uint32_t used[RH_REDIS_ENDPOINTS_MAX] = {0};
    for (uint32_t s = 0; s < RH_REDIS_SLOTS; s++) {
        if (map.owner[s] == RH_REDIS_NO_ENDPOINT) continue;
        if (map.owner[s] >= count) {
            bad_owners++;
            continue;
        }
        used[map.owner[s]]++;
    }
    CHECK_EQ(bad_owners, 0);
    for (uint32_t i = 0; i < count; i++) {
        const struct rh_redis_endpoint *e = &map.endpoints[i];
        CHECK(memchr(e->host, '\0', sizeof(e->host)) != NULL);
        CHECK_NE(e->port, 0);
        /* Every endpoint a parse adds owns a slot. */
        CHECK_GT(used[i], 0);
        for (uint32_t j = 0; j < i; j++)
            CHECK(e->port != map.endpoints[j].port || strcmp(e->host, map.endpoints[j].host));
    }
}

static bool range_is_owned(uint32_t first, uint32_t last, const char *host, uint16_t port)
{
    for (uint32_t s = first; s <= last; s++) {
        uint8_t idx = map.owner[s];
        if (idx >= map.endpoint_count || idx >= RH_REDIS_ENDPOINTS_MAX) return false;
        const struct rh_redis_endpoint *e = &map.endpoints[idx];
        if (e->port != port || strcmp(e->host, host)) return false;
    }
    return true;
}

static bool range_is_unowned(uint32_t first, uint32_t last)
{
    for (uint32_t s = first; s <= last; s++)
        if (map.owner[s] != RH_REDIS_NO_ENDPOINT) return false;
    return true;
}

static bool map_is_empty(void)
{
    return map.endpoint_count == 0 && range_is_unowned(0, RH_REDIS_SLOTS - 1);
}

/* @resp parses with -EINVAL, a reason containing @why_part, and an empty map, even when the
 * map held something before. */
static void check_malformed(const char *resp, size_t len, const char *why_part, int line)
{
    const char *why = NULL;

    rh_redis_slot_map_parse(&(redisReply){.type = REDIS_REPLY_ARRAY}, NULL, &map, NULL);
    rh_redis_slot_map_endpoint(&map, "before", 1);
    memset(map.owner, 0, sizeof(map.owner));

    int rc = parse_resp(resp, len, "seed", &why);
    bool ok = rc == -EINVAL && why && strstr(why, why_part) && map_is_empty();
    if (!ok) {
        fprintf(stderr, "line %d: rc %d, why \"%s\", wanted \"%s\"\n", line, rc,
                why ? why : "(none)", why_part);
    }
    CHECK(ok);
}

/* rh_redis_redirect_parse on an exact heap copy of @text, so ASan sees any read past @len. */
static bool redirect(const char *text, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy) abort();
    memcpy(copy, text, len);
    bool ok = rh_redis_redirect_parse(copy, len, &got_is_ask, &got_slot, &got_to);
    if (ok) {
        CHECK(memchr(got_to.host, '\0', sizeof(got_to.host)) != NULL);
        CHECK_NE(got_to.port, 0);
        CHECK_LT(got_slot, RH_REDIS_SLOTS);
    }
    free(copy);
    return ok;
}

static uint16_t slot_of(const char *key)
{
    return rh_redis_slot(key, strlen(key));
}

/* Redis's keyHashSlot with a bit-by-bit CRC16/XMODEM, as the Cluster specification gives it. */
static uint16_t reference_slot(const uint8_t *key, size_t len)
{
    size_t start = 0, end = len;
    size_t open = 0;
    while (open < len && key[open] != '{')
        open++;
    if (open < len) {
        size_t close = open + 1;
        while (close < len && key[close] != '}')
            close++;
        if (close < len && close != open + 1) {
            start = open + 1;
            end = close;
        }
    }
    uint16_t crc = 0;
    for (size_t i = start; i < end; i++) {
        crc ^= (uint16_t)(key[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc % RH_REDIS_SLOTS;
}
