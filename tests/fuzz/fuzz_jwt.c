/* tests/fuzz/fuzz_jwt.c - the token parser on two fronts: the input as a whole token (never
 * accepted: it cannot carry a valid signature for the key), and the input as a payload that
 * is signed with the key and then verified, so the claim reader sees every shape of JSON; an
 * accepted token's claims must hold what the header promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transports/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char key[] = "fuzz-key";
    static const char *const auds[] = {"https://h/api/v1/hubs/chat"};
    struct rh_jwt jwt;
    const char *reason = NULL;
    struct rh_span input = rh_span_make(data, (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size));
    if (rh_jwt_verify(input, rh_span_make(key, sizeof(key) - 1), 1700000000, auds, 1, &jwt,
                      &reason) == 0)
        abort(); /* a forged signature was accepted */
    if (!reason) abort();

    static char token[RH_JWT_TEXT_MAX + 1];
    if (rh_jwt_sign(input, rh_span_make(key, sizeof(key) - 1), token, sizeof(token)) < 0) return 0;
    reason = NULL;
    int err = rh_jwt_verify(rh_span_make(token, (uint32_t)strlen(token)),
                            rh_span_make(key, sizeof(key) - 1), 1700000000, auds, size & 1 ? 1 : 0,
                            &jwt, &reason);
    if (err) {
        if (!reason) abort();
        return 0;
    }
    if (jwt.user_len > RH_JWT_NAME_MAX || jwt.user[jwt.user_len] != '\0') abort();
    if (jwt.role_count > RH_JWT_ROLES_MAX) abort();
    for (uint32_t i = 0; i < jwt.role_count; i++) {
        const char *p = (const char *)jwt.roles[i].ptr;
        if (p < jwt.role_text || p + jwt.roles[i].len > jwt.role_text + RH_JWT_ROLE_TEXT_MAX)
            abort();
    }
    if (jwt.exp_s < 1700000000 - RH_JWT_SKEW_S) abort();
    return 0;
}
