/* tests/fuzz/fuzz_redis_slots.c - the Redis Cluster helpers on arbitrary bytes: hiredis reads
 * the input as RESP, and every reply it gives is parsed as a CLUSTER SLOTS answer (with and
 * without a seed host) and every error reply as a redirection; the raw input is also parsed as
 * a redirection and hashed as a key. A map holds only endpoints it names, each once, and agrees
 * with the ranges of the reply; a refused reply leaves the map empty; a redirection written
 * again parses back to itself, and a refused one writes nothing. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/assert.h"
#include "transports/redis_slots.h"

/* hiredis allocates an array's element pointers as soon as it reads "*<count>", before the
 * elements arrive; a count past this would only test the allocator. */
#define ARRAY_COUNT_MAX 100000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_huge_array(const uint8_t *data, size_t size);
static void check_reply(const redisReply *reply, int depth);
static void check_slot_map(const redisReply *reply, const char *seed_host);
static void check_map(struct rh_redis_slot_map *m);
static void check_map_follows(const struct rh_redis_slot_map *m, const redisReply *reply,
                              const char *seed_host);
static bool is_empty(const struct rh_redis_slot_map *m);
static void check_redirect(const char *text, size_t len);

/* Large (33 KiB): one for the whole run. */
static struct rh_redis_slot_map map;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    RH_ASSERT(rh_redis_slot(data, size) < RH_REDIS_SLOTS);
    check_redirect((const char *)data, size);
    if (has_huge_array(data, size)) return 0;

    redisReader *reader = redisReaderCreate();
    RH_ASSERT(reader != NULL);
    if (redisReaderFeed(reader, (const char *)data, size) == REDIS_OK) {
        /* Each reply takes three bytes at least, so this ends. */
        void *reply = NULL;
        bool has_other = false;
        while (redisReaderGetReply(reader, &reply) == REDIS_OK && reply) {
            /* Every array; of the rest, which are all refused alike, the first one only:
             * a map takes 33 KiB to check, and an input holds hundreds of small replies. */
            if (((redisReply *)reply)->type == REDIS_REPLY_ARRAY || !has_other) {
                has_other |= ((redisReply *)reply)->type != REDIS_REPLY_ARRAY;
                check_slot_map(reply, "seed.example");
                check_slot_map(reply, NULL);
            }
            check_reply(reply, 0);
            freeReplyObject(reply);
            reply = NULL;
        }
    }
    redisReaderFree(reader);
    return 0;
}

/* Whether some "*" in @data is followed by a count over ARRAY_COUNT_MAX (signs skipped, as a
 * reader might take them). Errs towards yes: any '*' counts, not just a type byte. */
static bool has_huge_array(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '*') continue;
        size_t at = i + 1;
        while (at < size && (data[at] == '+' || data[at] == '-'))
            at++;
        uint64_t count = 0;
        while (at < size && data[at] >= '0' && data[at] <= '9') {
            count = count * 10 + (uint64_t)(data[at++] - '0');
            if (count > ARRAY_COUNT_MAX) return true;
        }
    }
    return false;
}

/* Error texts anywhere in the tree, and status and string texts too, as redirections. */
static void check_reply(const redisReply *reply, int depth)
{
    RH_ASSERT(depth < 16);
    switch (reply->type) {
    case REDIS_REPLY_ERROR:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_STRING:
        check_redirect(reply->str, reply->len);
        break;
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < reply->elements; i++)
            check_reply(reply->element[i], depth + 1);
        break;
    default:
        break;
    }
}

static void check_slot_map(const redisReply *reply, const char *seed_host)
{
    const char *why = NULL;

    /* Whatever the map held before must not show through. */
    memset(&map, 0x5a, sizeof(map));
    int rc = rh_redis_slot_map_parse(reply, seed_host, &map, &why);
    RH_ASSERT(rc == 0 || rc == -EINVAL);
    if (rc == -EINVAL) {
        RH_ASSERT(why != NULL);
        RH_ASSERT(why[0] != '\0');
        RH_ASSERT(is_empty(&map));
        return;
    }
    RH_ASSERT(reply->type == REDIS_REPLY_ARRAY);
    check_map(&map);
    check_map_follows(&map, reply, seed_host);
}

/* The invariants of any map a parse returns. */
static void check_map(struct rh_redis_slot_map *m)
{
    static uint32_t used[RH_REDIS_ENDPOINTS_MAX];

    RH_ASSERT(m->endpoint_count <= RH_REDIS_ENDPOINTS_MAX);
    memset(used, 0, sizeof(used));
    for (uint32_t s = 0; s < RH_REDIS_SLOTS; s++) {
        if (m->owner[s] == RH_REDIS_NO_ENDPOINT) continue;
        RH_ASSERT(m->owner[s] < m->endpoint_count);
        used[m->owner[s]]++;
    }
    for (uint32_t i = 0; i < m->endpoint_count; i++) {
        const struct rh_redis_endpoint *e = &m->endpoints[i];
        RH_ASSERT(memchr(e->host, '\0', sizeof(e->host)) != NULL);
        RH_ASSERT(e->host[0] != '\0');
        RH_ASSERT(e->port != 0);
        RH_ASSERT(used[i] > 0);
        /* Each endpoint once: looking it up finds it where it is. */
        RH_ASSERT(rh_redis_slot_map_endpoint(m, e->host, e->port) == (int)i);
    }
}

/* Every range of the reply is owned by its master, and nothing else is owned. */
static void check_map_follows(const struct rh_redis_slot_map *m, const redisReply *reply,
                              const char *seed_host)
{
    uint32_t owned = 0;

    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *range = reply->element[i];
        RH_ASSERT(range->type == REDIS_REPLY_ARRAY && range->elements >= 3);
        long long first = range->element[0]->integer, last = range->element[1]->integer;
        RH_ASSERT(first >= 0 && first <= last && last < RH_REDIS_SLOTS);
        const redisReply *node = range->element[2];
        const redisReply *host = node->element[0];
        bool is_unknown = host->type == REDIS_REPLY_NIL || host->len == 0 ||
                          (host->len == 1 && host->str[0] == '?');
        RH_ASSERT(!is_unknown || seed_host != NULL);
        for (long long s = first; s <= last; s++) {
            RH_ASSERT(m->owner[s] < m->endpoint_count);
            const struct rh_redis_endpoint *e = &m->endpoints[m->owner[s]];
            RH_ASSERT(e->port == node->element[1]->integer);
            if (is_unknown) {
                RH_ASSERT(strcmp(e->host, seed_host) == 0);
            } else {
                RH_ASSERT(strlen(e->host) == host->len);
                RH_ASSERT(memcmp(e->host, host->str, host->len) == 0);
            }
        }
        owned += (uint32_t)(last - first + 1);
    }
    uint32_t count = 0;
    for (uint32_t s = 0; s < RH_REDIS_SLOTS; s++)
        count += m->owner[s] != RH_REDIS_NO_ENDPOINT;
    RH_ASSERT(count == owned);
}

static bool is_empty(const struct rh_redis_slot_map *m)
{
    if (m->endpoint_count != 0) return false;
    for (uint32_t s = 0; s < RH_REDIS_SLOTS; s++)
        if (m->owner[s] != RH_REDIS_NO_ENDPOINT) return false;
    return true;
}

static void check_redirect(const char *text, size_t len)
{
    bool is_ask = true;
    uint16_t slot = 0xbeef;
    struct rh_redis_endpoint to, again;
    memset(&to, 'q', sizeof(to));

    if (!rh_redis_redirect_parse(text, len, &is_ask, &slot, &to)) {
        /* Nothing written. */
        RH_ASSERT(is_ask && slot == 0xbeef);
        RH_ASSERT(to.host[0] == 'q' && to.host[RH_REDIS_HOST_MAX] == 'q');
        return;
    }
    RH_ASSERT(slot < RH_REDIS_SLOTS);
    RH_ASSERT(to.port != 0);
    RH_ASSERT(memchr(to.host, '\0', sizeof(to.host)) != NULL);
    size_t host_len = strlen(to.host);
    RH_ASSERT(!memchr(to.host, '[', host_len) && !memchr(to.host, ']', host_len));
    RH_ASSERT(!memchr(to.host, ' ', host_len));
    RH_ASSERT(strcmp(to.host, "?") != 0);
    RH_ASSERT(len >= 4 && memcmp(text, is_ask ? "ASK " : "MOVED ", is_ask ? 4 : 6) == 0);

    /* Written again, with brackets around a host that has a ':'; read back, the same. */
    char line[RH_REDIS_HOST_MAX + 32];
    bool is_v6 = memchr(to.host, ':', host_len) != NULL;
    int n = snprintf(line, sizeof(line), "%s %u %s%s%s:%u", is_ask ? "ASK" : "MOVED", slot,
                     is_v6 ? "[" : "", to.host, is_v6 ? "]" : "", to.port);
    RH_ASSERT(n > 0 && (size_t)n < sizeof(line));
    bool is_ask_again = !is_ask;
    uint16_t slot_again = 0;
    RH_ASSERT(rh_redis_redirect_parse(line, (size_t)n, &is_ask_again, &slot_again, &again));
    RH_ASSERT(is_ask_again == is_ask);
    RH_ASSERT(slot_again == slot);
    RH_ASSERT(again.port == to.port);
    RH_ASSERT(strcmp(again.host, to.host) == 0);
}
