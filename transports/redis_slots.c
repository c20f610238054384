/*
 * transports/redis_slots.c - Redis Cluster routing data (redis_slots.h): CRC16 hash slots with
 * hash tags, the slot map from a CLUSTER SLOTS reply and MOVED/ASK redirections. Everything
 * here works on memory the caller owns and allocates nothing; connecting to the endpoints and
 * deciding when to fetch the map again are the backplane's.
 */
#include "transports/redis_slots.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

static uint16_t crc16(const uint8_t *data, size_t len);
static void clear_map(struct rh_redis_slot_map *map);
static const char *add_range(struct rh_redis_slot_map *map, const redisReply *entry,
                             const char *seed_host);
static const char *read_slot(const redisReply *r, uint16_t *slot);
static const char *read_node(const redisReply *node, const char *seed_host,
                             struct rh_redis_endpoint *out);
static const char *read_host(const redisReply *r, const char *seed_host, char *host);
static bool is_array(const redisReply *r);
static bool parse_endpoint(const char *text, size_t len, struct rh_redis_endpoint *out);
static bool parse_decimal(const char *text, size_t len, uint32_t min, uint32_t max,
                          uint32_t *value);
static bool has_prefix(const char *text, size_t len, const char *prefix);
static bool is_unknown_host(const char *host, size_t len);

/* CRC16/XMODEM (polynomial 0x1021, initial value 0, no reflection), one byte at a time: the
 * checksum the Redis Cluster specification names for key slots. */
static const uint16_t crc16_table[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7, 0x8108, 0x9129, 0xa14a, 0xb16b,
    0xc18c, 0xd1ad, 0xe1ce, 0xf1ef, 0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de, 0x2462, 0x3443, 0x0420, 0x1401,
    0x64e6, 0x74c7, 0x44a4, 0x5485, 0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4, 0xb75b, 0xa77a, 0x9719, 0x8738,
    0xf7df, 0xe7fe, 0xd79d, 0xc7bc, 0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b, 0x5af5, 0x4ad4, 0x7ab7, 0x6a96,
    0x1a71, 0x0a50, 0x3a33, 0x2a12, 0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41, 0xedae, 0xfd8f, 0xcdec, 0xddcd,
    0xad2a, 0xbd0b, 0x8d68, 0x9d49, 0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78, 0x9188, 0x81a9, 0xb1ca, 0xa1eb,
    0xd10c, 0xc12d, 0xf14e, 0xe16f, 0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e, 0x02b1, 0x1290, 0x22f3, 0x32d2,
    0x4235, 0x5214, 0x6277, 0x7256, 0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405, 0xa7db, 0xb7fa, 0x8799, 0x97b8,
    0xe75f, 0xf77e, 0xc71d, 0xd73c, 0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab, 0x5844, 0x4865, 0x7806, 0x6827,
    0x18c0, 0x08e1, 0x3882, 0x28a3, 0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92, 0xfd2e, 0xed0f, 0xdd6c, 0xcd4d,
    0xbdaa, 0xad8b, 0x9de8, 0x8dc9, 0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8, 0x6e17, 0x7e36, 0x4e55, 0x5e74,
    0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

static_assert(RH_REDIS_ENDPOINTS_MAX < RH_REDIS_NO_ENDPOINT, "an owner index fits a uint8_t");

uint16_t rh_redis_slot(const void *key, size_t len)
{
    const uint8_t *bytes = key;
    if (!len) return 0;

    /* As Redis's keyHashSlot: the first '{', then the first '}' after it. With no '}' after
     * it, or nothing between the two, the whole key is hashed. */
    const uint8_t *open = memchr(bytes, '{', len);
    if (open) {
        size_t after = (size_t)(open - bytes) + 1;
        const uint8_t *close = memchr(open + 1, '}', len - after);
        if (close && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) % RH_REDIS_SLOTS;
    }
    return crc16(bytes, len) % RH_REDIS_SLOTS;
}

int rh_redis_slot_map_parse(const redisReply *reply, const char *seed_host,
                            struct rh_redis_slot_map *map, const char **why)
{
    const char *reason = NULL;

    clear_map(map);
    if (!is_array(reply)) reason = "CLUSTER SLOTS reply is not an array";
    for (size_t i = 0; !reason && i < reply->elements; i++)
        reason = add_range(map, reply->element[i], seed_host);
    if (!reason) return 0;

    /* Part of a map would send commands to nodes the cluster never named for them: on any
     * error @map is left empty, so a caller that wants to keep routing by its current map
     * parses into a spare one. */
    clear_map(map);
    if (why) *why = reason;
    return -EINVAL;
}

bool rh_redis_redirect_parse(const char *text, size_t len, bool *is_ask, uint16_t *slot,
                             struct rh_redis_endpoint *to)
{
    struct rh_redis_endpoint dest;
    uint32_t slot_value;
    size_t at;
    bool ask;

    if (!text) return false;
    if (has_prefix(text, len, "MOVED ")) {
        ask = false;
        at = 6;
    } else if (has_prefix(text, len, "ASK ")) {
        ask = true;
        at = 4;
    } else {
        return false;
    }

    const char *space = memchr(text + at, ' ', len - at);
    if (!space) return false;
    size_t slot_len = (size_t)(space - (text + at));
    if (!parse_decimal(text + at, slot_len, 0, RH_REDIS_SLOTS - 1, &slot_value)) return false;
    at += slot_len + 1;
    if (!parse_endpoint(text + at, len - at, &dest)) return false;

    /* The outputs change only for a redirection. */
    *is_ask = ask;
    *slot = (uint16_t)slot_value;
    *to = dest;
    return true;
}

int rh_redis_slot_map_endpoint(struct rh_redis_slot_map *map, const char *host, uint16_t port)
{
    /* A host that does not fit, or port 0, cannot be written to the map: the caller gets -1
     * as for a full map, never a truncated name that would reach another node. */
    if (!host || !port) return -1;
    size_t len = strnlen(host, RH_REDIS_HOST_MAX + 1);
    if (len > RH_REDIS_HOST_MAX) return -1;

    uint32_t count = map->endpoint_count;
    if (count > RH_REDIS_ENDPOINTS_MAX) count = RH_REDIS_ENDPOINTS_MAX;
    for (uint32_t i = 0; i < count; i++) {
        const struct rh_redis_endpoint *e = &map->endpoints[i];
        /* strncmp: an endpoint's host is read no further than its array. */
        if (e->port == port && strncmp(e->host, host, sizeof(e->host)) == 0) return (int)i;
    }
    if (map->endpoint_count >= RH_REDIS_ENDPOINTS_MAX) return -1;

    struct rh_redis_endpoint *e = &map->endpoints[map->endpoint_count];
    memset(e, 0, sizeof(*e));
    memcpy(e->host, host, len);
    e->port = port;
    return (int)map->endpoint_count++;
}

static uint16_t crc16(const uint8_t *data, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)(crc << 8) ^ crc16_table[((crc >> 8) ^ data[i]) & 0xff];
    return crc;
}

static void clear_map(struct rh_redis_slot_map *map)
{
    memset(map, 0, sizeof(*map));
    memset(map->owner, RH_REDIS_NO_ENDPOINT, sizeof(map->owner));
}

/* One [first slot, last slot, master, replica...] entry into @map; NULL, or what is wrong. */
static const char *add_range(struct rh_redis_slot_map *map, const redisReply *entry,
                             const char *seed_host)
{
    struct rh_redis_endpoint master;
    uint16_t first, last;
    const char *reason;

    if (!is_array(entry) || entry->elements < 3)
        return "slot range is not [first slot, last slot, master, ...]";
    if ((reason = read_slot(entry->element[0], &first))) return reason;
    if ((reason = read_slot(entry->element[1], &last))) return reason;
    if (first > last) return "slot range out of order (first slot after last)";
    if ((reason = read_node(entry->element[2], seed_host, &master))) return reason;

    /* Replicas (elements 3 and on) are not read: the map names masters only. */
    int idx = rh_redis_slot_map_endpoint(map, master.host, master.port);
    if (idx < 0) return "more masters than RH_REDIS_ENDPOINTS_MAX (64)";
    for (uint32_t s = first; s <= last; s++) {
        /* Redis never names a slot twice; a reply that does is not one to route by. */
        if (map->owner[s] != RH_REDIS_NO_ENDPOINT) return "slot ranges overlap";
        map->owner[s] = (uint8_t)idx;
    }
    return NULL;
}

static const char *read_slot(const redisReply *r, uint16_t *slot)
{
    if (!r || r->type != REDIS_REPLY_INTEGER) return "slot is not an integer";
    if (r->integer < 0 || r->integer >= RH_REDIS_SLOTS) return "slot out of bounds (0..16383)";
    *slot = (uint16_t)r->integer;
    return NULL;
}

/* A node is [host, port, id, metadata...]; only host and port are read. */
static const char *read_node(const redisReply *node, const char *seed_host,
                             struct rh_redis_endpoint *out)
{
    const char *reason;

    memset(out, 0, sizeof(*out));
    if (!is_array(node) || node->elements < 2) return "node is not [host, port, ...]";
    if ((reason = read_host(node->element[0], seed_host, out->host))) return reason;

    const redisReply *port = node->element[1];
    if (!port || port->type != REDIS_REPLY_INTEGER) return "node port is not an integer";
    if (port->integer < 1 || port->integer > UINT16_MAX)
        return "node port out of bounds (1..65535)";
    out->port = (uint16_t)port->integer;
    return NULL;
}

/* Into @host (RH_REDIS_HOST_MAX + 1 bytes): the node's host, or @seed_host for an unknown one:
 * "" or "?" (cluster-preferred-endpoint-type hostname with no hostname set), or nil, which Redis
 * 7 sends with cluster-preferred-endpoint-type unknown-endpoint. */
static const char *read_host(const redisReply *r, const char *seed_host, char *host)
{
    if (!r) return "node has no host";
    if (r->type == REDIS_REPLY_STRING) {
        if (r->len && !r->str) return "node has no host";
        if (!is_unknown_host(r->str, r->len)) {
            if (r->len > RH_REDIS_HOST_MAX) return "node host too long (over 255 bytes)";
            if (memchr(r->str, '\0', r->len)) return "node host has a NUL byte";
            memcpy(host, r->str, r->len);
            host[r->len] = '\0';
            return NULL;
        }
    } else if (r->type != REDIS_REPLY_NIL) {
        return "node host is not a string";
    }

    if (!seed_host || !seed_host[0]) return "node host is unknown and there is no seed host";
    size_t len = strnlen(seed_host, RH_REDIS_HOST_MAX + 1);
    if (len > RH_REDIS_HOST_MAX) return "seed host too long (over 255 bytes)";
    memcpy(host, seed_host, len);
    host[len] = '\0';
    return NULL;
}

/* An array whose element pointer may be indexed below its count. */
static bool is_array(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && (r->elements == 0 || r->element);
}

/* "<host>:<port>" to the end of @text; the host may be "[v6]" or a bare v6 address, as the
 * port is after the last ':'. */
static bool parse_endpoint(const char *text, size_t len, struct rh_redis_endpoint *out)
{
    uint32_t port;

    /* Printable ASCII and no blanks: in an error line nothing follows the endpoint. */
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = (uint8_t)text[i];
        if (ch <= ' ' || ch >= 0x7f) return false;
    }
    const char *colon = memrchr(text, ':', len);
    if (!colon) return false;
    size_t host_len = (size_t)(colon - text);
    if (!parse_decimal(colon + 1, len - host_len - 1, 1, UINT16_MAX, &port)) return false;

    const char *host = text;
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    if (memchr(host, '[', host_len) || memchr(host, ']', host_len)) return false;
    /* "?" is what Redis 7 sends when it prefers hostnames and this node has none; like ""
     * (unknown-endpoint) it is left for the caller to read as "the node that answered". */
    if (is_unknown_host(host, host_len)) host_len = 0;
    if (host_len > RH_REDIS_HOST_MAX) return false;

    memset(out, 0, sizeof(*out));
    memcpy(out->host, host, host_len);
    out->port = (uint16_t)port;
    return true;
}

/* 1 to 5 decimal digits (no sign, no blanks) making a value in @min..@max. */
static bool parse_decimal(const char *text, size_t len, uint32_t min, uint32_t max, uint32_t *value)
{
    uint32_t n = 0;

    if (len < 1 || len > 5) return false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return false;
        n = n * 10 + (uint32_t)(text[i] - '0');
    }
    if (n < min || n > max) return false;
    *value = n;
    return true;
}

static bool has_prefix(const char *text, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(text, prefix, n) == 0;
}

static bool is_unknown_host(const char *host, size_t len)
{
    return len == 0 || (len == 1 && host[0] == '?');
}
