/* tests/fuzz/fuzz_rest.c - the backend API's parsers on arbitrary bytes: the first line is a
 * method and a target (path?query) routed by rh_rest_route, with its excluded= ids; the rest is
 * a send's body for rh_rest_parse_payload. Whatever they accept stays inside its bounds. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/assert.h"
#include "transports/rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t line_len = nl ? (size_t)(nl - data) : size;
    if (line_len < 1 || line_len > 8192) return 0;
    static const enum rh_http_method methods[] = {RH_HTTP_GET, RH_HTTP_HEAD, RH_HTTP_POST,
                                                  RH_HTTP_PUT, RH_HTTP_DELETE};
    enum rh_http_method method = methods[data[0] % 5];
    struct rh_span target = rh_span_make(data + 1, (uint32_t)(line_len - 1));
    const uint8_t *q = memchr(target.ptr, '?', target.len);
    struct rh_span path = rh_span_make(target.ptr, q ? (uint32_t)(q - target.ptr) : target.len);
    struct rh_span query = q ? rh_span_make(q + 1, (uint32_t)(target.ptr + target.len - q - 1))
                             : rh_span_make(NULL, 0);

    struct rh_rest_route route;
    const char *reason = NULL;
    int status = rh_rest_route(method, path, query, &route, &reason);
    if (status) {
        RH_ASSERT(reason && (status == 400 || status == 404 || status == 405 || status == 501));
    } else {
        RH_ASSERT(rh_rest_is_api_path(path));
        RH_ASSERT(route.hub_len <= RH_REST_HUB_MAX && route.hub[route.hub_len] == '\0');
        RH_ASSERT(route.name_len <= RH_REST_NAME_MAX && route.name[route.name_len] == '\0');
        RH_ASSERT(route.conn_len <= RH_REST_ID_MAX && route.conn[route.conn_len] == '\0');
        RH_ASSERT(route.user_len <= RH_REST_NAME_MAX && route.user[route.user_len] == '\0');
        if (route.op != RH_REST_HEALTH) RH_ASSERT(route.hub_len > 0);
    }
    static char ids[RH_REST_EXCLUDED_MAX][RH_REST_ID_MAX + 1];
    uint32_t lens[RH_REST_EXCLUDED_MAX];
    int count = rh_rest_excluded(query, ids, lens);
    RH_ASSERT(count == -EINVAL || (count >= 0 && count <= RH_REST_EXCLUDED_MAX));
    for (int i = 0; i < count; i++)
        RH_ASSERT(lens[i] > 0 && lens[i] <= RH_REST_ID_MAX && ids[i][lens[i]] == '\0');

    struct rh_span body =
        nl ? rh_span_make(nl + 1, (uint32_t)(size - line_len - 1)) : rh_span_make(NULL, 0);
    char name[RH_REST_HUB_MAX + 1];
    uint32_t name_len;
    struct rh_span args[RH_HUB_ARGS_MAX];
    uint32_t arg_count;
    if (rh_rest_parse_payload(body, name, &name_len, args, &arg_count, &reason) == 0) {
        RH_ASSERT(name_len > 0 && name_len <= RH_REST_HUB_MAX && name[name_len] == '\0');
        RH_ASSERT(arg_count <= RH_HUB_ARGS_MAX);
        for (uint32_t i = 0; i < arg_count; i++)
            RH_ASSERT(args[i].ptr >= body.ptr && args[i].ptr + args[i].len <= body.ptr + body.len);
    } else {
        RH_ASSERT(reason != NULL);
    }
    return 0;
}
