#pragma once
/*
 * transports/rest.h - the backend HTTP API's requests, on the Azure SignalR Service REST paths
 * (v1, /api/v1/..., and 2022-06-01, /api/hubs/...?api-version=2022-06-01 with /:send paths):
 * which operation a method and path name, with its hub, group or user, and connection id
 * percent-decoded; and the body of a send ({"target": ..., "arguments": [...]}, keys in any
 * case, as the Azure SDKs write them PascalCase). Any thread; nothing here keeps state.
 */
#include <stdbool.h>
#include <stdint.h>

#include "transports/http/http.h"
#include "transports/hub.h"
#include "transports/span.h"

#define RH_REST_HUB_MAX      128
#define RH_REST_NAME_MAX     256 /* a group or user name */
#define RH_REST_ID_MAX       63  /* a connection id */
#define RH_REST_EXCLUDED_MAX 64  /* excluded= connection ids of one send */

enum rh_rest_op {
    RH_REST_HEALTH,
    RH_REST_SEND_ALL,
    RH_REST_SEND_USER,
    RH_REST_SEND_CONNECTION,
    RH_REST_SEND_GROUP,
    RH_REST_CONNECTION_EXISTS,
    RH_REST_CLOSE_CONNECTION,
    RH_REST_GROUP_EXISTS,
    RH_REST_USER_EXISTS,
    RH_REST_GROUP_ADD_CONNECTION,
    RH_REST_GROUP_REMOVE_CONNECTION,
    RH_REST_CONNECTION_LEAVE_ALL,
    RH_REST_GROUP_ADD_USER, /* now and for the user's later connections */
    RH_REST_GROUP_REMOVE_USER,
    RH_REST_USER_IN_GROUP,
    RH_REST_USER_LEAVE_ALL,
};

struct rh_rest_route {
    enum rh_rest_op op;
    bool is_v1; /* /api/v1 (else 2022-06-01) */
    char hub[RH_REST_HUB_MAX + 1];
    char name[RH_REST_NAME_MAX + 1]; /* group or user */
    char conn[RH_REST_ID_MAX + 1];
    char user[RH_REST_NAME_MAX + 1]; /* a user's groups: name is the group, this the user */
    uint32_t hub_len, name_len, conn_len, user_len;
};

/* Whether @path is under the API (/api/v1/... or /api/hubs/... or /api/health). */
bool rh_rest_is_api_path(struct rh_span path);

/* The operation @method on @path (and @query: 2022-06-01 paths need api-version=2022-06-01)
 * names. Returns 0 with @out filled, or the HTTP status to answer with *@reason: 404 for no
 * such path, 405 for a path that takes other methods, 400 for a bad name or api-version. */
int rh_rest_route(enum rh_http_method method, struct rh_span path, struct rh_span query,
                  struct rh_rest_route *out, const char **reason);

/* The excluded= values of @query (repeated: ?excluded=a&excluded=b), percent-decoded into
 * @ids; returns how many, or -EINVAL when there are more than RH_REST_EXCLUDED_MAX or one is
 * not an id (empty, longer than RH_REST_ID_MAX, bad encoding). */
int rh_rest_excluded(struct rh_span query, char ids[][RH_REST_ID_MAX + 1], uint32_t lens[]);

/* Reads a send's body: a JSON object with a string target (1 to RH_REST_HUB_MAX bytes once
 * decoded, into @target) and an optional array (or null) of arguments, at most
 * RH_HUB_ARGS_MAX, into @args (spans into @body). Returns 0, or -EINVAL with *@reason. */
int rh_rest_parse_payload(struct rh_span body, char target[RH_REST_HUB_MAX + 1],
                          uint32_t *target_len, struct rh_span args[RH_HUB_ARGS_MAX],
                          uint32_t *arg_count, const char **reason);
