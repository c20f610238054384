/*
 * transports/rest.c - see rest.h. A path is cut into at most SEGMENTS_MAX segments after its
 * prefix, each percent-decoded on its own (so an encoded '/' stays inside its segment), and
 * matched against the operations' shapes.
 */
#include "transports/rest.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "transports/json.h"

#define SEGMENTS_MAX 6
#define SEGMENT_MAX  (RH_REST_NAME_MAX + 1)

struct segments {
    uint32_t count;
    struct rh_span raw[SEGMENTS_MAX];
};

static bool split(struct rh_span rest, struct segments *out);
static bool is(const struct segments *s, uint32_t idx, const char *lit);
static int decode(struct rh_span raw, char *out, size_t cap, uint32_t *len);
static bool is_hub_name(const char *hub, uint32_t len);
static int match(enum rh_http_method method, const struct segments *s, bool is_v1,
                 struct rh_rest_route *out, const char **reason);

bool rh_rest_is_api_path(struct rh_span path)
{
    static const char *const prefixes[] = {"/api/v1/", "/api/hubs/", "/api/health"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t len = strlen(prefixes[i]);
        if (path.len >= len && memcmp(path.ptr, prefixes[i], len) == 0) return true;
    }
    return false;
}

int rh_rest_route(enum rh_http_method method, struct rh_span path, struct rh_span query,
                  struct rh_rest_route *out, const char **reason)
{
    memset(out, 0, sizeof(*out));
    *reason = "no such API path";
    if (!rh_rest_is_api_path(path)) return 404;
    bool is_v1 = path.len >= 8 && memcmp(path.ptr, "/api/v1/", 8) == 0;
    uint32_t skip = is_v1 ? 8 : 5; /* "/api/v1/" or "/api/" */
    if (path.len < skip) return 404;
    struct segments s;
    if (!split(rh_span_make(path.ptr + skip, path.len - skip), &s)) return 404;
    if (!is_v1) {
        char version[16];
        size_t version_len;
        if (!rh_http_query_get(query, "api-version", version, sizeof(version), &version_len) ||
            strcmp(version, "2022-06-01") != 0) {
            *reason = "api-version=2022-06-01 is required on these paths (or use /api/v1)";
            return 400;
        }
    }
    int status = match(method, &s, is_v1, out, reason);
    if (status == 405) *reason = "this path does not take that method";
    return status;
}

int rh_rest_excluded(struct rh_span query, char ids[][RH_REST_ID_MAX + 1], uint32_t lens[])
{
    int count = 0;
    if (!query.len) return 0;
    const uint8_t *p = query.ptr, *end = query.ptr + query.len;
    while (p < end) {
        const uint8_t *amp = memchr(p, '&', (size_t)(end - p));
        const uint8_t *pair_end = amp ? amp : end;
        if ((size_t)(pair_end - p) >= 9 && strncasecmp((const char *)p, "excluded=", 9) == 0) {
            if (count == RH_REST_EXCLUDED_MAX) return -EINVAL;
            if (decode(rh_span_make(p + 9, (uint32_t)(pair_end - p - 9)), ids[count],
                       RH_REST_ID_MAX + 1, &lens[count]))
                return -EINVAL;
            count++;
        }
        p = amp ? amp + 1 : end;
    }
    return count;
}

int rh_rest_parse_payload(struct rh_span body, char target[RH_REST_HUB_MAX + 1],
                          uint32_t *target_len, struct rh_span args[RH_HUB_ARGS_MAX],
                          uint32_t *arg_count, const char **reason)
{
    *arg_count = 0;
    *target_len = 0;
    if (!body.len) {
        *reason = "the body is not a JSON object";
        return -EINVAL;
    }
    ssize_t n = rh_json_value_len(body.ptr, body.len, NULL);
    /* One JSON value, then nothing but whitespace. */
    bool is_json = n > 0;
    for (uint32_t i = is_json ? (uint32_t)n : 0; is_json && i < body.len; i++)
        is_json =
            body.ptr[i] == ' ' || body.ptr[i] == '\t' || body.ptr[i] == '\r' || body.ptr[i] == '\n';
    struct rh_span value = rh_span_make(body.ptr, is_json ? (uint32_t)n : 0);
    while (value.len && (value.ptr[0] == ' ' || value.ptr[0] == '\t' || value.ptr[0] == '\r' ||
                         value.ptr[0] == '\n')) {
        value.ptr++;
        value.len--;
    }
    if (!is_json || rh_json_kind_of(value) != RH_JSON_OBJECT) {
        *reason = "the body is not a JSON object";
        return -EINVAL;
    }
    struct rh_json_iter it;
    struct rh_span key, member;
    bool has_target = false, has_args = false;
    rh_json_iter_init(&it, value);
    while (rh_json_iter_next(&it, &key, &member)) {
        char name[16];
        ssize_t name_len = rh_json_string_decode(key, (uint8_t *)name, sizeof(name) - 1);
        if (name_len < 0) continue;
        name[name_len] = '\0';
        if (strcasecmp(name, "target") == 0) {
            ssize_t len = rh_json_kind_of(member) == RH_JSON_STRING
                              ? rh_json_string_decode(member, (uint8_t *)target, RH_REST_HUB_MAX)
                              : -EINVAL;
            if (len <= 0 || has_target) {
                *reason = "target must be one string of 1 to 128 bytes";
                return -EINVAL;
            }
            target[len] = '\0';
            *target_len = (uint32_t)len;
            has_target = true;
        } else if (strcasecmp(name, "arguments") == 0) {
            enum rh_json_kind kind = rh_json_kind_of(member);
            if (has_args || (kind != RH_JSON_ARRAY && kind != RH_JSON_NULL)) {
                *reason = "arguments must be one array (or null)";
                return -EINVAL;
            }
            has_args = true;
            if (kind == RH_JSON_NULL) continue;
            struct rh_json_iter elements;
            struct rh_span element;
            rh_json_iter_init(&elements, member);
            while (rh_json_iter_next(&elements, NULL, &element)) {
                if (*arg_count == RH_HUB_ARGS_MAX) {
                    *reason = "at most 32 arguments";
                    return -EINVAL;
                }
                args[(*arg_count)++] = element;
            }
        }
    }
    if (!has_target) {
        *reason = "target is missing";
        return -EINVAL;
    }
    return 0;
}

/* Cuts @rest at '/' into raw segments; false when there are too many or one is empty. */
static bool split(struct rh_span rest, struct segments *out)
{
    out->count = 0;
    uint32_t at = 0;
    while (at <= rest.len) {
        const uint8_t *slash = memchr(rest.ptr + at, '/', rest.len - at);
        uint32_t end = slash ? (uint32_t)(slash - rest.ptr) : rest.len;
        if (end == at || out->count == SEGMENTS_MAX) return false;
        out->raw[out->count++] = rh_span_make(rest.ptr + at, end - at);
        at = end + 1;
        if (!slash) break;
    }
    return true;
}

static bool is(const struct segments *s, uint32_t idx, const char *lit)
{
    return idx < s->count && rh_span_eq_str(s->raw[idx], lit);
}

/* Percent-decodes @raw into @out; 0, or 400 when it is bad or longer than @cap - 1. */
static int decode(struct rh_span raw, char *out, size_t cap, uint32_t *len)
{
    size_t n;
    if (!rh_http_path_decode(raw, out, cap, &n) || !n) return 400;
    *len = (uint32_t)n;
    return 0;
}

static bool is_hub_name(const char *hub, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        char c = hub[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~'))
            return false;
    }
    return len > 0;
}

/* Matches segments after /api/v1/ or /api/: "health", or "hubs", hub, then the operation's
 * shape. */
static int match(enum rh_http_method method, const struct segments *s, bool is_v1,
                 struct rh_rest_route *out, const char **reason)
{
    bool is_get = method == RH_HTTP_GET || method == RH_HTTP_HEAD;
    out->is_v1 = is_v1;
    if (s->count == 1 && is(s, 0, "health")) {
        out->op = RH_REST_HEALTH;
        return is_get ? 0 : 405;
    }
    if (s->count < 2 || !is(s, 0, "hubs")) return 404;
    *reason = "a hub name takes only letters, digits, '-', '.', '_' and '~', up to 128";
    if (decode(s->raw[1], out->hub, sizeof(out->hub), &out->hub_len) ||
        !is_hub_name(out->hub, out->hub_len))
        return 400;
    /* The rest, without the hub: 2022-06-01 sends end in ":send", v1 sends do not. */
    uint32_t n = s->count - 2;
    bool is_send_path = !is_v1 && n && is(s, s->count - 1, ":send");
    if (is_send_path) n--;
    const struct rh_span *r = s->raw + 2;
    *reason = "a group or user name is 1 to 256 bytes, a connection id at most 63";
    if (n == 0) {
        if (is_v1 == is_send_path) return 404; /* v1: POST /hubs/{hub}; 2022: /:send */
        out->op = RH_REST_SEND_ALL;
        return method == RH_HTTP_POST ? 0 : 405;
    }
    if (n == 2 || n == 3 || n == 4) {
        bool is_users = rh_span_eq_str(r[0], "users"), is_groups = rh_span_eq_str(r[0], "groups");
        bool is_conns = rh_span_eq_str(r[0], "connections");
        if (!is_users && !is_groups && !is_conns) return 404;
        int bad = is_conns ? decode(r[1], out->conn, sizeof(out->conn), &out->conn_len)
                           : decode(r[1], out->name, sizeof(out->name), &out->name_len);
        if (bad) return 400;
        if (n == 2) {
            if (is_send_path || (is_v1 && method == RH_HTTP_POST)) {
                if (method != RH_HTTP_POST) return 405;
                out->op = is_users   ? RH_REST_SEND_USER
                          : is_conns ? RH_REST_SEND_CONNECTION
                                     : RH_REST_SEND_GROUP;
                return 0;
            }
            if (is_conns && method == RH_HTTP_DELETE) {
                out->op = RH_REST_CLOSE_CONNECTION;
                return 0;
            }
            if (!is_get) return 405;
            out->op = is_users   ? RH_REST_USER_EXISTS
                      : is_conns ? RH_REST_CONNECTION_EXISTS
                                 : RH_REST_GROUP_EXISTS;
            return 0;
        }
        if (is_send_path) return 404;
        /* users/{u}/groups[/{g}] and groups/{g}/users/{u}: a user's groups. */
        bool is_user_group = is_users || (n == 4 && is_groups && rh_span_eq_str(r[2], "users"));
        if (is_user_group) {
            if (is_users) { /* r[1] went into name: it is the user */
                memcpy(out->user, out->name, out->name_len + 1);
                out->user_len = out->name_len;
                out->name_len = 0;
                out->name[0] = '\0';
                if (!rh_span_eq_str(r[2], "groups")) return 404;
            }
            if (n == 3) {
                out->op = RH_REST_USER_LEAVE_ALL;
                return method == RH_HTTP_DELETE ? 0 : 405;
            }
            bad = is_users ? decode(r[3], out->name, sizeof(out->name), &out->name_len)
                           : decode(r[3], out->user, sizeof(out->user), &out->user_len);
            if (bad) return 400;
            if (method == RH_HTTP_PUT)
                out->op = RH_REST_GROUP_ADD_USER;
            else if (method == RH_HTTP_DELETE)
                out->op = RH_REST_GROUP_REMOVE_USER;
            else if (is_get)
                out->op = RH_REST_USER_IN_GROUP;
            else
                return 405;
            return 0;
        }
        if (is_send_path) return 404;
        /* groups/{g}/connections/{c} or connections/{c}/groups/{g}, and connections/{c}/groups */
        if (n == 3) {
            if (!is_conns || !rh_span_eq_str(r[2], "groups")) return 404;
            out->op = RH_REST_CONNECTION_LEAVE_ALL;
            return method == RH_HTTP_DELETE ? 0 : 405;
        }
        if (!rh_span_eq_str(r[2], is_conns ? "groups" : "connections")) return 404;
        bad = is_conns ? decode(r[3], out->name, sizeof(out->name), &out->name_len)
                       : decode(r[3], out->conn, sizeof(out->conn), &out->conn_len);
        if (bad) return 400;
        if (method == RH_HTTP_PUT)
            out->op = RH_REST_GROUP_ADD_CONNECTION;
        else if (method == RH_HTTP_DELETE)
            out->op = RH_REST_GROUP_REMOVE_CONNECTION;
        else
            return 405;
        return 0;
    }
    return 404;
}
