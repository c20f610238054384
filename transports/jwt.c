/*
 * transports/jwt.c - see jwt.h.
 */
#include "transports/jwt.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/b64.h"
#include "transports/json.h"

#define SIG_BYTES    32
#define PART_MAX     3072 /* decoded bytes of the header or the payload */
#define HEADER_HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static int fail(const char **reason, const char *why);
static bool header_is_hs256(struct rh_span header);
static int read_claims(struct rh_span payload, int64_t now_s, const char *const *audiences,
                       size_t audience_count, struct rh_jwt *out, const char **reason);
static bool aud_matches(struct rh_span aud, const char *const *audiences, size_t count);
static bool add_role(struct rh_jwt *out, struct rh_span value, uint32_t *text_used);
static void hmac(struct rh_span key, const void *data, size_t len, uint8_t out[SIG_BYTES]);

int rh_jwt_verify(struct rh_span token, struct rh_span key, int64_t now_s,
                  const char *const *audiences, size_t audience_count, struct rh_jwt *out,
                  const char **reason)
{
    const char *ignored;
    if (!reason) reason = &ignored;
    if (token.len > RH_JWT_TEXT_MAX) return fail(reason, "the token is too long");
    const char *text = (const char *)token.ptr;
    const char *dot1 = memchr(text, '.', token.len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', token.len - (size_t)(dot1 + 1 - text)) : NULL;
    if (!dot1 || !dot2 || memchr(dot2 + 1, '.', token.len - (size_t)(dot2 + 1 - text)))
        return fail(reason, "the token is not three base64url parts");

    uint8_t header[PART_MAX], payload[PART_MAX], sig[SIG_BYTES + 1];
    ssize_t header_len = rh_b64url_decode(text, (size_t)(dot1 - text), header, sizeof(header));
    ssize_t payload_len =
        rh_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof(payload));
    ssize_t sig_len =
        rh_b64url_decode(dot2 + 1, token.len - (size_t)(dot2 + 1 - text), sig, sizeof(sig));
    if (header_len <= 0 || payload_len <= 0 || sig_len < 0)
        return fail(reason, "the token is not three base64url parts");
    if (!header_is_hs256(rh_span_make(header, (uint32_t)header_len)))
        return fail(reason, "the token is not signed with HS256");
    /* The signature before any claim: nothing unsigned is looked at. */
    uint8_t expected[SIG_BYTES];
    hmac(key, text, (size_t)(dot2 - text), expected);
    if (sig_len != SIG_BYTES || CRYPTO_memcmp(sig, expected, SIG_BYTES) != 0)
        return fail(reason, "the token's signature does not match");
    return read_claims(rh_span_make(payload, (uint32_t)payload_len), now_s, audiences,
                       audience_count, out, reason);
}

bool rh_jwt_has_role(const struct rh_jwt *jwt, const char *name, size_t name_len)
{
    for (uint32_t i = 0; i < jwt->role_count; i++)
        if (jwt->roles[i].len == name_len && memcmp(jwt->roles[i].ptr, name, name_len) == 0)
            return true;
    return false;
}

ssize_t rh_jwt_sign(struct rh_span payload, struct rh_span key, char *out, size_t out_cap)
{
    size_t header_len = RH_B64URL_LEN(sizeof(HEADER_HS256) - 1);
    size_t payload_len = RH_B64URL_LEN(payload.len);
    size_t total = header_len + 1 + payload_len + 1 + RH_B64URL_LEN(SIG_BYTES);
    if (total + 1 > out_cap) return -EMSGSIZE;
    rh_b64url_encode((const uint8_t *)HEADER_HS256, sizeof(HEADER_HS256) - 1, out);
    out[header_len] = '.';
    rh_b64url_encode(payload.ptr, payload.len, out + header_len + 1);
    out[header_len + 1 + payload_len] = '.';
    uint8_t sig[SIG_BYTES];
    hmac(key, out, header_len + 1 + payload_len, sig);
    rh_b64url_encode(sig, SIG_BYTES, out + header_len + 1 + payload_len + 1);
    return (ssize_t)total;
}

static int fail(const char **reason, const char *why)
{
    *reason = why;
    return -EACCES;
}

/* The header must be a JSON object whose alg is exactly "HS256" (typ, kid and others may
 * come along). */
static bool header_is_hs256(struct rh_span header)
{
    if (rh_json_value_len(header.ptr, header.len, NULL) != (ssize_t)header.len) return false;
    struct rh_span object = header;
    while (object.len && (object.ptr[0] == ' ' || object.ptr[0] == '\t' || object.ptr[0] == '\n' ||
                          object.ptr[0] == '\r')) {
        object.ptr++;
        object.len--;
    }
    if (rh_json_kind_of(object) != RH_JSON_OBJECT) return false;
    struct rh_json_iter it;
    struct rh_span key, value;
    bool is_hs256 = false;
    rh_json_iter_init(&it, object);
    while (rh_json_iter_next(&it, &key, &value)) {
        if (!rh_json_string_eq(key, "alg")) continue;
        if (is_hs256 || !rh_json_string_eq(value, "HS256")) return false; /* twice, or another */
        is_hs256 = true;
    }
    return is_hs256;
}

static int read_claims(struct rh_span payload, int64_t now_s, const char *const *audiences,
                       size_t audience_count, struct rh_jwt *out, const char **reason)
{
    if (rh_json_value_len(payload.ptr, payload.len, NULL) != (ssize_t)payload.len)
        return fail(reason, "the token's payload is not JSON");
    while (payload.len && (payload.ptr[0] == ' ' || payload.ptr[0] == '\t' ||
                           payload.ptr[0] == '\n' || payload.ptr[0] == '\r')) {
        payload.ptr++;
        payload.len--;
    }
    if (rh_json_kind_of(payload) != RH_JSON_OBJECT)
        return fail(reason, "the token's payload is not a JSON object");
    memset(out, 0, sizeof(*out));
    bool has_exp = false, has_aud = false, is_aud_ok = false, has_nameid = false;
    int64_t nbf_s = 0;
    uint32_t role_text_used = 0;
    struct rh_json_iter it;
    struct rh_span key, value;
    rh_json_iter_init(&it, payload);
    while (rh_json_iter_next(&it, &key, &value)) {
        enum rh_json_kind kind = rh_json_kind_of(value);
        if (rh_json_string_eq(key, "exp")) {
            if (kind != RH_JSON_NUMBER || rh_json_number_to_i64(value, &out->exp_s))
                return fail(reason, "the token's exp is not an integer");
            has_exp = true;
        } else if (rh_json_string_eq(key, "nbf")) {
            if (kind != RH_JSON_NUMBER || rh_json_number_to_i64(value, &nbf_s))
                return fail(reason, "the token's nbf is not an integer");
        } else if (rh_json_string_eq(key, "aud")) {
            has_aud = true;
            is_aud_ok = aud_matches(value, audiences, audience_count);
        } else if (rh_json_string_eq(key, "nameid") ||
                   (!has_nameid && rh_json_string_eq(key, "sub"))) {
            ssize_t n = kind == RH_JSON_STRING
                            ? rh_json_string_decode(value, (uint8_t *)out->user, RH_JWT_NAME_MAX)
                            : -EINVAL;
            if (n < 0) return fail(reason, "the token's user id is not a string of 1-256 bytes");
            out->user_len = (uint32_t)n;
            out->user[n] = '\0';
            has_nameid |= rh_json_string_eq(key, "nameid");
        } else if (rh_json_string_eq(key, "role")) {
            if (kind == RH_JSON_ARRAY) {
                struct rh_json_iter roles;
                struct rh_span role;
                rh_json_iter_init(&roles, value);
                while (rh_json_iter_next(&roles, NULL, &role))
                    if (!add_role(out, role, &role_text_used))
                        return fail(reason, "the token's roles are not strings, or too many");
            } else if (!add_role(out, value, &role_text_used)) {
                return fail(reason, "the token's roles are not strings, or too many");
            }
        }
    }
    if (!has_exp) return fail(reason, "the token has no exp");
    if (out->exp_s < now_s - RH_JWT_SKEW_S) return fail(reason, "the token has expired");
    if (nbf_s > now_s + RH_JWT_SKEW_S) return fail(reason, "the token is not valid yet");
    if (audience_count && (!has_aud || !is_aud_ok))
        return fail(reason, "the token is for another audience");
    return 0;
}

/* @aud (a string or an array of strings) names one of @audiences. */
static bool aud_matches(struct rh_span aud, const char *const *audiences, size_t count)
{
    if (rh_json_kind_of(aud) == RH_JSON_ARRAY) {
        struct rh_json_iter it;
        struct rh_span one;
        rh_json_iter_init(&it, aud);
        while (rh_json_iter_next(&it, NULL, &one))
            if (aud_matches(one, audiences, count)) return true;
        return false;
    }
    if (rh_json_kind_of(aud) != RH_JSON_STRING) return false;
    for (size_t i = 0; i < count; i++)
        if (rh_json_string_eq(aud, audiences[i])) return true;
    return false;
}

static bool add_role(struct rh_jwt *out, struct rh_span value, uint32_t *text_used)
{
    if (rh_json_kind_of(value) != RH_JSON_STRING || out->role_count == RH_JWT_ROLES_MAX)
        return false;
    char *at = out->role_text + *text_used;
    ssize_t n = rh_json_string_decode(value, (uint8_t *)at, RH_JWT_ROLE_TEXT_MAX - *text_used);
    if (n < 0) return false;
    out->roles[out->role_count++] = rh_span_make(at, (uint32_t)n);
    *text_used += (uint32_t)n;
    return true;
}

static void hmac(struct rh_span key, const void *data, size_t len, uint8_t out[SIG_BYTES])
{
    unsigned int out_len = SIG_BYTES;
    /* A zero-length key is legal for HMAC; OpenSSL wants a non-NULL pointer for it. */
    static const uint8_t empty;
    HMAC(EVP_sha256(), key.len ? key.ptr : &empty, (int)key.len, data, len, out, &out_len);
}
