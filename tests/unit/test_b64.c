/* tests/unit/test_b64.c - base64url: RFC 4648 vectors (url alphabet, no padding), round trips
 * of every length, and refusal of bad characters, lengths and spare bits. */
#include <errno.h>
#include <string.h>

#include "core/b64.h"
#include "tests/harness/check.h"

int main(void)
{
    static const struct {
        const char *in, *out;
    } vectors[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
                   {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    char text[64];
    uint8_t bytes[64];
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        size_t len = strlen(vectors[i].in);
        rh_b64url_encode((const uint8_t *)vectors[i].in, len, text);
        CHECK(strcmp(text, vectors[i].out) == 0);
        CHECK_EQ(strlen(text), RH_B64URL_LEN(len));
        CHECK_EQ(rh_b64url_decode(text, strlen(text), bytes, sizeof(bytes)), len);
        CHECK(memcmp(bytes, vectors[i].in, len) == 0);
    }
    /* The url alphabet: 0xfb 0xff encodes with '-' and '_'. */
    rh_b64url_encode((const uint8_t[]){0xfb, 0xff, 0xbf}, 3, text);
    CHECK(strcmp(text, "-_-_") == 0);

    int round_trip_errors = 0;
    for (size_t len = 0; len <= 40; len++) {
        for (size_t i = 0; i < len; i++)
            bytes[i] = (uint8_t)(i * 37 + len);
        uint8_t back[64];
        rh_b64url_encode(bytes, len, text);
        round_trip_errors +=
            rh_b64url_decode(text, strlen(text), back, sizeof(back)) != (ssize_t)len ||
            memcmp(back, bytes, len) != 0;
    }
    CHECK_EQ(round_trip_errors, 0);

    CHECK_EQ(rh_b64url_decode("Zm9v+", 5, bytes, sizeof(bytes)), -EINVAL); /* length 5 */
    CHECK_EQ(rh_b64url_decode("Zm+v", 4, bytes, sizeof(bytes)), -EINVAL);  /* '+' */
    CHECK_EQ(rh_b64url_decode("Zm9v=", 5, bytes, sizeof(bytes)), -EINVAL);
    CHECK_EQ(rh_b64url_decode("Zh", 2, bytes, sizeof(bytes)), -EINVAL); /* spare bits set */
    CHECK_EQ(rh_b64url_decode("Zm9vYmFy", 8, bytes, 5), -EMSGSIZE);
    return rh_check_finish();
}
