/* tests/unit/test_jwt.c - HS256 tokens: the Azure SignalR spec's example verifies; every way a
 * token can be wrong is refused with its reason (tampered payload or signature, another key,
 * alg none or HS512, expired, not yet valid, other audience, malformed); claims (nameid or
 * sub, roles as a string or an array, audiences as an array) are read; sign and verify agree.
 * Tokens other than the spec's are built here with OpenSSL's HMAC directly, not with
 * rh_jwt_sign, so the signer is checked against an independent one. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/b64.h"
#include "tests/harness/check.h"
#include "transports/jwt.h"

#define NOW 1700001000

static const char spec_key[] = "K3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3yE=";
static const char *const spec_aud[] = {"https://example.service.signalr.net/api/v1/hubs/chat"};

static struct rh_span span(const char *s)
{
    return rh_span_make(s, (uint32_t)strlen(s));
}

/* base64url(header) "." base64url(payload) "." base64url(HMAC-SHA256(key, the first two)). */
static const char *make(const char *header, const char *payload, const char *key)
{
    static char token[8192];
    rh_b64url_encode((const uint8_t *)header, strlen(header), token);
    size_t n = strlen(token);
    token[n++] = '.';
    rh_b64url_encode((const uint8_t *)payload, strlen(payload), token + n);
    n = strlen(token);
    uint8_t sig[32];
    unsigned sig_len = sizeof(sig);
    HMAC(EVP_sha256(), key, (int)strlen(key), (const uint8_t *)token, n, sig, &sig_len);
    token[n++] = '.';
    rh_b64url_encode(sig, sig_len, token + n);
    return token;
}

static const char *reason_of(const char *token, const char *key, const char *const *auds,
                             size_t aud_count)
{
    struct rh_jwt jwt;
    const char *reason = NULL;
    int err = rh_jwt_verify(span(token), span(key), NOW, auds, aud_count, &jwt, &reason);
    return err ? reason : "ok";
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

int main(void)
{
    /* The spec's example, signature and all. */
    const char *spec =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuYW1laWQiOiJzZXJ2ZXIxIiwibmJmIjoxNzAwMDAwMDAwLCJ"
        "leHAiOjE3MDAwMDM2MDAsImlhdCI6MTcwMDAwMDAwMCwiYXVkIjoiaHR0cHM6Ly9leGFtcGxlLnNlcnZpY2Uuc2"
        "lnbmFsci5uZXQvYXBpL3YxL2h1YnMvY2hhdCJ9.EAfnISSsYdykJFSu15l9o_ZNx5eSoT59UVKsCEmwChA";
    struct rh_jwt jwt;
    const char *reason = NULL;
    CHECK_EQ(rh_jwt_verify(span(spec), span(spec_key), NOW, spec_aud, 1, &jwt, &reason), 0);
    CHECK(strcmp(jwt.user, "server1") == 0);
    CHECK_EQ(jwt.user_len, 7);
    CHECK_EQ(jwt.exp_s, 1700003600);
    CHECK_EQ(jwt.role_count, 0);
    /* Our signer writes the same signature for the same two parts. */
    const char payload[] = "{\"nameid\":\"server1\",\"nbf\":1700000000,\"exp\":1700003600,\"iat\":"
                           "1700000000,\"aud\":\"https://example.service.signalr.net/api/v1/"
                           "hubs/chat\"}";
    char signed_text[RH_JWT_TEXT_MAX + 1];
    CHECK_EQ(rh_jwt_sign(span(payload), span(spec_key), signed_text, sizeof(signed_text)),
             strlen(spec));
    CHECK(strcmp(signed_text, spec) == 0);
    CHECK_EQ(rh_jwt_sign(span(payload), span(spec_key), signed_text, 100), -EMSGSIZE);

    /* Each way of being wrong, with its reason. */
    CHECK(strcmp(reason_of(spec, "another key", spec_aud, 1),
                 "the token's signature does not match") == 0);
    char tampered[1024];
    strcpy(tampered, spec);
    tampered[60] = tampered[60] == 'A' ? 'B' : 'A'; /* in the payload */
    CHECK(strcmp(reason_of(tampered, spec_key, spec_aud, 1),
                 "the token's signature does not match") == 0);
    strcpy(tampered, spec);
    tampered[strlen(tampered) - 3] ^= 1; /* in the signature */
    CHECK(strcmp(reason_of(tampered, spec_key, spec_aud, 1), "ok") != 0);
    const char *none = make("{\"alg\":\"none\"}", "{\"exp\":1800000000}", "k");
    CHECK(strcmp(reason_of(none, "k", NULL, 0), "the token is not signed with HS256") == 0);
    /* alg none with an empty signature, as attackers send it. */
    char unsigned_token[256];
    strcpy(unsigned_token, none);
    *(strrchr(unsigned_token, '.') + 1) = '\0';
    CHECK(strcmp(reason_of(unsigned_token, "k", NULL, 0), "the token is not signed with HS256") ==
          0);
    CHECK(strcmp(reason_of(make("{\"alg\":\"HS512\"}", "{\"exp\":1800000000}", "k"), "k", NULL, 0),
                 "the token is not signed with HS256") == 0);
    CHECK(
        strcmp(reason_of(make("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"exp\":1800000000}", "k"),
                         "k", NULL, 0),
               "the token is not signed with HS256") == 0);
    CHECK(strcmp(reason_of(make("[\"HS256\"]", "{\"exp\":1800000000}", "k"), "k", NULL, 0),
                 "the token is not signed with HS256") == 0);
    CHECK(strcmp(reason_of(make(HS256, "{\"exp\":1700000000}", "k"), "k", NULL, 0),
                 "the token has expired") == 0);
    CHECK(strcmp(reason_of(make(HS256, "{\"exp\":1700000990}", "k"), "k", NULL, 0), "ok") ==
          0); /* within the skew */
    CHECK(
        strcmp(reason_of(make(HS256, "{\"exp\":1800000000,\"nbf\":1700002000}", "k"), "k", NULL, 0),
               "the token is not valid yet") == 0);
    CHECK(strcmp(reason_of(make(HS256, "{\"nbf\":1}", "k"), "k", NULL, 0),
                 "the token has no exp") == 0);
    CHECK(strcmp(reason_of(make(HS256, "{\"exp\":\"1800000000\"}", "k"), "k", NULL, 0),
                 "the token's exp is not an integer") == 0);
    CHECK(strcmp(reason_of(make(HS256, "[1]", "k"), "k", NULL, 0),
                 "the token's payload is not a JSON object") == 0);
    CHECK(strcmp(reason_of(make(HS256, "{\"exp\":1800000000", "k"), "k", NULL, 0),
                 "the token's payload is not JSON") == 0);
    CHECK(strcmp(reason_of(spec, spec_key, (const char *const[]){"https://other/"}, 1),
                 "the token is for another audience") == 0);
    CHECK(strcmp(reason_of(make(HS256, "{\"exp\":1800000000}", "k"), "k", spec_aud, 1),
                 "the token is for another audience") == 0);
    CHECK(strcmp(reason_of("abc", "k", NULL, 0), "the token is not three base64url parts") == 0);
    CHECK(strcmp(reason_of("a.b.c.d", "k", NULL, 0), "the token is not three base64url parts") ==
          0);
    CHECK(strcmp(reason_of("..", "k", NULL, 0), "the token is not three base64url parts") == 0);
    char padded[1024];
    snprintf(padded, sizeof(padded), "%s=", spec);
    CHECK(strcmp(reason_of(padded, spec_key, spec_aud, 1), "ok") != 0);
    static char long_token[RH_JWT_TEXT_MAX + 2];
    memset(long_token, 'a', RH_JWT_TEXT_MAX + 1);
    CHECK(strcmp(reason_of(long_token, "k", NULL, 0), "the token is too long") == 0);

    /* Claims: sub without nameid, nameid over sub, roles, audiences in an array. */
    const char *const two_auds[] = {"https://a/", "https://b/"};
    CHECK_EQ(rh_jwt_verify(span(make(HS256,
                                     "{\"exp\":1800000000,\"sub\":\"bob\",\"aud\":[\"x\",\"https://"
                                     "b/\"],\"role\":\"ringhub.sendToAll\"}",
                                     "k")),
                           span("k"), NOW, two_auds, 2, &jwt, &reason),
             0);
    CHECK(strcmp(jwt.user, "bob") == 0);
    CHECK_EQ(jwt.role_count, 1);
    CHECK(rh_jwt_has_role(&jwt, "ringhub.sendToAll", 17));
    CHECK(!rh_jwt_has_role(&jwt, "ringhub.sendToAl", 16));
    CHECK_EQ(rh_jwt_verify(span(make(HS256,
                                     "{\"sub\":\"s\",\"exp\":1800000000,\"nameid\":\"n\\u00e9\","
                                     "\"sub\":\"t\",\"role\":[\"a\",\"ringhub.sendToGroup.g 1\"]}",
                                     "k")),
                           span("k"), NOW, NULL, 0, &jwt, &reason),
             0);
    CHECK(strcmp(jwt.user, "n\xc3\xa9") == 0);
    CHECK_EQ(jwt.role_count, 2);
    CHECK(rh_jwt_has_role(&jwt, "ringhub.sendToGroup.g 1", 23));
    CHECK(strcmp(reason_of(make(HS256, "{\"exp\":1800000000,\"role\":[1]}", "k"), "k", NULL, 0),
                 "the token's roles are not strings, or too many") == 0);
    CHECK(strcmp(reason_of(make(HS256, "{\"exp\":1800000000,\"nameid\":7}", "k"), "k", NULL, 0),
                 "the token's user id is not a string of 1-256 bytes") == 0);
    return rh_check_finish();
}
