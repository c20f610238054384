/*
 * tools/bench/wire.c - see wire.h. Written for speed on the receive side (the generator reads
 * every delivery) and for plainness on the send side (it writes few kinds of message).
 */
#include "tools/bench/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RS 0x1e

static const char hex_digits[] = "0123456789abcdef";

static void put_hex(char *out, uint64_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = hex_digits[v & 15];
}

static bool get_hex(const uint8_t *in, int digits, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < digits; i++) {
        uint8_t c = in[i];
        if (c >= '0' && c <= '9')
            x = x << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x = x << 4 | (uint64_t)(c - 'a' + 10);
        else
            return false;
    }
    *v = x;
    return true;
}

void rb_stamp_write(char *out, size_t len, const struct rb_stamp *st)
{
    memcpy(out, "~rb", 3);
    put_hex(out + 3, st->pub, 4);
    put_hex(out + 7, st->seq, 8);
    put_hex(out + 15, st->ts_ns, 16);
    memset(out + RB_STAMP_LEN, 'x', len - RB_STAMP_LEN);
}

bool rb_stamp_find(const uint8_t *msg, size_t len, struct rb_stamp *out)
{
    const uint8_t *p = memmem(msg, len, "~rb", 3);
    uint64_t pub, seq, ts;
    if (!p || (size_t)(msg + len - p) < RB_STAMP_LEN) return false;
    if (!get_hex(p + 3, 4, &pub) || !get_hex(p + 7, 8, &seq) || !get_hex(p + 15, 16, &ts))
        return false;
    *out = (struct rb_stamp){(uint16_t)pub, (uint32_t)seq, ts};
    return true;
}

size_t rb_ws_client_frame(uint8_t *out, size_t cap, uint8_t opcode, const void *payload, size_t len)
{
    size_t head = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
    if (cap < head + 4 + len) return 0;
    out[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[1] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    memset(out + head, 0, 4); /* the masking key */
    memcpy(out + head + 4, payload, len);
    return head + 4 + len;
}

/* MessagePack str header + bytes. */
static size_t mp_str(uint8_t *out, const char *s, size_t len)
{
    size_t n = 0;
    if (len < 32) {
        out[n++] = (uint8_t)(0xa0 | len);
    } else if (len < 256) {
        out[n++] = 0xd9;
        out[n++] = (uint8_t)len;
    } else if (len <= 0xffff) {
        out[n++] = 0xda;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = 0xdb;
        for (int i = 3; i >= 0; i--)
            out[n++] = (uint8_t)(len >> (8 * i));
    }
    memcpy(out + n, s, len);
    return n + len;
}

/* Varint length prefix of MessagePack hub messages; at most 5 bytes. */
static size_t varint(uint8_t *out, size_t v)
{
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

/* Frames a MessagePack body built at @out + 5: moves it behind its length prefix. */
static size_t mp_frame(uint8_t *out, size_t body_len)
{
    uint8_t prefix[5];
    size_t p = varint(prefix, body_len);
    memmove(out + p, out + 5, body_len);
    memcpy(out, prefix, p);
    return p + body_len;
}

size_t rb_hub_invocation(uint8_t *out, size_t cap, enum rb_codec codec, const char *invocation_id,
                         const char *target, const char *const *args, uint32_t argc)
{
    size_t need = 64 + strlen(target) + (invocation_id ? strlen(invocation_id) : 0);
    for (uint32_t i = 0; i < argc; i++)
        need += 8 + strlen(args[i]);
    if (need > cap || argc > 15) return 0;
    if (codec == RB_JSON) {
        /* Arguments are plain strings the bench makes: nothing in them needs escaping. */
        size_t n = (size_t)sprintf((char *)out, "{\"type\":1");
        if (invocation_id)
            n += (size_t)sprintf((char *)out + n, ",\"invocationId\":\"%s\"", invocation_id);
        n += (size_t)sprintf((char *)out + n, ",\"target\":\"%s\",\"arguments\":[", target);
        for (uint32_t i = 0; i < argc; i++)
            n += (size_t)sprintf((char *)out + n, "%s\"%s\"", i ? "," : "", args[i]);
        n += (size_t)sprintf((char *)out + n, "]}");
        out[n++] = RS;
        return n;
    }
    uint8_t *b = out + 5;
    size_t n = 0;
    b[n++] = 0x96; /* [1, headers, invocationId, target, arguments, streamIds] */
    b[n++] = 0x01;
    b[n++] = 0x80;
    if (invocation_id)
        n += mp_str(b + n, invocation_id, strlen(invocation_id));
    else
        b[n++] = 0xc0;
    n += mp_str(b + n, target, strlen(target));
    b[n++] = (uint8_t)(0x90 | argc);
    for (uint32_t i = 0; i < argc; i++)
        n += mp_str(b + n, args[i], strlen(args[i]));
    b[n++] = 0x90;
    return mp_frame(out, n);
}

size_t rb_hub_ping(uint8_t *out, size_t cap, enum rb_codec codec)
{
    if (cap < 11) return 0;
    if (codec == RB_JSON) {
        memcpy(out, "{\"type\":6}\x1e", 11);
        return 11;
    }
    memcpy(out, "\x02\x91\x06", 3);
    return 3;
}

size_t rb_hub_handshake(uint8_t *out, size_t cap, enum rb_codec codec)
{
    int n = snprintf((char *)out, cap, "{\"protocol\":\"%s\",\"version\":1}\x1e",
                     codec == RB_JSON ? "json" : "messagepack");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

ssize_t rb_ws_server_frame(const uint8_t *data, size_t len, uint8_t *op, bool *fin,
                           uint64_t *payload_len)
{
    if (len < 2) return 0;
    if (data[0] & 0x70 || data[1] & 0x80) return -1; /* reserved bits, or masked */
    *op = data[0] & 0x0f;
    *fin = data[0] & 0x80;
    uint8_t l7 = data[1] & 0x7f;
    if (l7 < 126) {
        *payload_len = l7;
        return 2;
    }
    if (l7 == 126) {
        if (len < 4) return 0;
        *payload_len = (uint64_t)data[2] << 8 | data[3];
        return 4;
    }
    if (len < 10) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | data[2 + i];
    if (v >> 62) return -1;
    *payload_len = v;
    return 10;
}

ssize_t rb_hub_next(enum rb_codec codec, const uint8_t *data, size_t len, const uint8_t **msg,
                    size_t *msg_len)
{
    if (codec == RB_JSON) {
        const uint8_t *rs = memchr(data, RS, len);
        if (!rs) return 0;
        *msg = data;
        *msg_len = (size_t)(rs - data);
        return rs - data + 1;
    }
    /* At most 5 bytes, and the fifth holds only the top 3 bits of a 2^31 - 1 length. */
    size_t body = 0, i = 0;
    for (;; i++) {
        if (i == len) return 0;
        if (i == 4 && data[i] > 0x07) return -1;
        body |= (size_t)(data[i] & 0x7f) << (7 * i);
        if (!(data[i] & 0x80)) break;
    }
    i++;
    if (len - i < body) return 0;
    *msg = data + i;
    *msg_len = body;
    return (ssize_t)(i + body);
}

int rb_hub_type(enum rb_codec codec, const uint8_t *msg, size_t len)
{
    if (codec == RB_JSON) {
        size_t window = len < 24 ? len : 24;
        const uint8_t *p = memmem(msg, window, "\"type\":", 7);
        if (!p || p + 7 >= msg + len) return -1;
        int type = 0, digits = 0;
        for (p += 7; p < msg + len && *p >= '0' && *p <= '9'; p++) {
            if (++digits > 3) return -1; /* no hub message type has more */
            type = type * 10 + (*p - '0');
        }
        return digits ? type : -1;
    }
    if (len < 2 || (msg[0] & 0xf0) != 0x90 || msg[1] > 0x7f) return -1;
    return msg[1];
}

bool rb_hub_completion_is_error(enum rb_codec codec, const uint8_t *msg, size_t len)
{
    if (codec == RB_JSON) {
        /* A top-level "error" member, not one inside the result: it comes before any result. */
        const uint8_t *error = memmem(msg, len, "\"error\":", 8);
        const uint8_t *result = memmem(msg, len, "\"result\":", 9);
        return error && (!result || error < result);
    }
    /* [3, headers, invocationId, resultKind, result?]: headers is a map, the id a string. */
    size_t i = 2;
    if (len <= i || (msg[i] & 0xf0) != 0x80) return true;
    i += 1; /* the bench's requests carry no headers; neither do the server's replies */
    if (i >= len) return true;
    if ((msg[i] & 0xe0) == 0xa0)
        i += 1 + (msg[i] & 0x1f);
    else if (msg[i] == 0xd9 && i + 1 < len)
        i += 2 + msg[i + 1];
    else if (msg[i] == 0xda && i + 2 < len)
        i += 3 + ((size_t)msg[i + 1] << 8 | msg[i + 2]);
    else
        return true;
    return i >= len || msg[i] == 1;
}

/* The decimal number at @p, reading no further than @end (which the caller knows is inside
 * the buffer); stops at the first non-digit. */
static size_t parse_decimal(const char *p, const char *end)
{
    size_t v = 0;
    for (; p < end && *p >= '0' && *p <= '9' && v < (SIZE_MAX - 9) / 10; p++)
        v = v * 10 + (size_t)(*p - '0');
    return v;
}

ssize_t rb_http_response(const char *data, size_t len, int *status, size_t *content_length)
{
    const char *end = memmem(data, len, "\r\n\r\n", 4);
    if (!end) return len > 16384 ? -1 : 0;
    if (end - data < 12 || memcmp(data, "HTTP/1.1 ", 9) != 0) return -1;
    *status = (int)parse_decimal(data + 9, data + 12);
    *content_length = 0;
    const char *cl = memmem(data, (size_t)(end - data), "\r\nContent-Length: ", 18);
    if (cl) *content_length = parse_decimal(cl + 18, end);
    return end + 4 - data;
}

ssize_t rb_json_string_member(const char *body, size_t len, const char *name, char *out, size_t cap)
{
    char key[64];
    int k = snprintf(key, sizeof(key), "\"%s\":\"", name);
    if (k <= 0 || (size_t)k >= sizeof(key)) return -1;
    const char *p = memmem(body, len, key, (size_t)k);
    if (!p) return -1;
    p += k;
    const char *q = memchr(p, '"', (size_t)(body + len - p));
    if (!q || (size_t)(q - p) >= cap) return -1;
    for (const char *c = p; c < q; c++)
        if ((unsigned char)*c < 0x20) return -1; /* not in a JSON string, and not in a URL */
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return q - p;
}
