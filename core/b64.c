/* core/b64.c - see b64.h. */
#include "core/b64.h"

#include <errno.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int value_of(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

void rh_b64url_encode(const uint8_t *in, size_t len, char *out)
{
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = alphabet[(v >> 6) & 63];
        *out++ = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = alphabet[(v >> 6) & 63];
    }
    *out = '\0';
}

ssize_t rh_b64url_decode(const char *text, size_t text_len, uint8_t *out, size_t out_cap)
{
    if (text_len % 4 == 1) return -EINVAL;
    size_t out_len = text_len / 4 * 3 + (text_len % 4 ? text_len % 4 - 1 : 0);
    if (out_len > out_cap) return -EMSGSIZE;
    uint32_t acc = 0;
    size_t n = 0;
    for (size_t i = 0; i < text_len; i++) {
        int v = value_of(text[i]);
        if (v < 0) return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[n++] = (uint8_t)(acc >> 16);
            out[n++] = (uint8_t)(acc >> 8);
            out[n++] = (uint8_t)acc;
            acc = 0;
        }
    }
    size_t rest = text_len % 4;
    if (rest == 2) {
        if (acc & 0xf) return -EINVAL; /* spare bits must be zero: one text per value */
        out[n++] = (uint8_t)(acc >> 4);
    } else if (rest == 3) {
        if (acc & 0x3) return -EINVAL;
        out[n++] = (uint8_t)(acc >> 10);
        out[n++] = (uint8_t)(acc >> 2);
    }
    return (ssize_t)n;
}
