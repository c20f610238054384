#pragma once
/*
 * transports/jwt.h - JSON Web Tokens signed with HMAC-SHA256 (HS256), as Azure SignalR Service
 * issues and checks them: verification of what clients and backends present, and signing for
 * the tools that mint tokens. The HMAC is OpenSSL's; signatures are compared in constant time.
 *
 * Only HS256 is accepted: "none", other algorithms, a header that is not a JSON object, a
 * payload without an integer exp, extra dots or padding are all refused before any claim is
 * trusted. Any thread; nothing here keeps state.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transports/span.h"

#define RH_JWT_TEXT_MAX      4096 /* bytes of a token (the Azure SDK refuses longer ones too) */
#define RH_JWT_SKEW_S        30   /* seconds exp and nbf may be off by */
#define RH_JWT_NAME_MAX      256  /* bytes of the user id (nameid or sub) */
#define RH_JWT_ROLES_MAX     64
#define RH_JWT_ROLE_TEXT_MAX 2048 /* bytes of all role names together */

/* What a verified token says. */
struct rh_jwt {
    char user[RH_JWT_NAME_MAX + 1]; /* nameid, or sub without one; "" when neither */
    uint32_t user_len;
    int64_t exp_s;
    uint32_t role_count;
    struct rh_span roles[RH_JWT_ROLES_MAX]; /* decoded names, in role_text */
    char role_text[RH_JWT_ROLE_TEXT_MAX];
};

/* Verifies @token against @key at time @now_s (seconds since the epoch). When @audience_count
 * is not 0 the token's aud (a string, or an array of strings) must equal one of @audiences.
 * The user id is the nameid claim, else sub (strings, at most RH_JWT_NAME_MAX bytes); roles
 * come from the role claim (a string or an array of strings). Returns 0 with @out filled, or
 * -EACCES with *@reason saying why (a short static text fit for a 401 body). */
int rh_jwt_verify(struct rh_span token, struct rh_span key, int64_t now_s,
                  const char *const *audiences, size_t audience_count, struct rh_jwt *out,
                  const char **reason);

/* Whether @jwt holds role @name. */
bool rh_jwt_has_role(const struct rh_jwt *jwt, const char *name, size_t name_len);

/* Writes the HS256 token of @payload (a JSON object's text) signed with @key into @out (at
 * most @out_cap bytes with the NUL). Returns its length, or -EMSGSIZE. */
ssize_t rh_jwt_sign(struct rh_span payload, struct rh_span key, char *out, size_t out_cap);
