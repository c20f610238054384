/*
 * transports/json.c - the JSON reader and writer of transports/json.h. The validator makes one
 * pass with an explicit stack of open containers, so hostile nesting costs neither C stack nor
 * more than O(n) time. Everything after validation (kinds, iterators, decoding) trusts that its
 * span was validated and only guards against running off the end of it.
 */
#include "transports/json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* Where the validator is: expecting a value, a member name, or what follows a value. */
enum scan_state {
    SCAN_VALUE,
    SCAN_KEY,
    SCAN_AFTER,
};

static bool is_ws(uint8_t c);
static bool is_digit(uint8_t c);
static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end);
static ssize_t fail(const char **reason, const char *why);
static const uint8_t *scan_scalar(const uint8_t *p, const uint8_t *end, const char **reason);
static const uint8_t *scan_literal(const uint8_t *p, const uint8_t *end, const char *lit,
                                   const char **reason);
static const uint8_t *scan_number(const uint8_t *p, const uint8_t *end);
static const uint8_t *scan_string(const uint8_t *p, const uint8_t *end, const char **reason);
static const uint8_t *scan_escape(const uint8_t *p, const uint8_t *end, const char **reason);
static int32_t read_hex4(const uint8_t *p, const uint8_t *end);
static size_t utf8_seq_len(const uint8_t *p, const uint8_t *end);
static int decode_escape(const uint8_t **pp, const uint8_t *end, uint8_t out[4]);
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end);
static const uint8_t *skip_string(const uint8_t *p, const uint8_t *end);
static void append_run(struct rh_buf **bufp, const uint8_t *from, const uint8_t *to);

ssize_t rh_json_value_len(const uint8_t *data, size_t len, const char **reason)
{
    const char *ignored;
    if (!reason) reason = &ignored;
    if (len == 0) return fail(reason, "JSON ends early");
    const uint8_t *p = data, *end = data + len;
    bool in_object[RH_JSON_DEPTH_MAX];
    uint32_t depth = 0;
    enum scan_state state = SCAN_VALUE;

    if (len > SSIZE_MAX) return fail(reason, "JSON text too long");
    for (;;) {
        /* The value is complete: stop before any whitespace after it. */
        if (state == SCAN_AFTER && depth == 0) return p - data;
        p = skip_ws(p, end);
        if (p == end) return fail(reason, "JSON ends early");

        switch (state) {
        case SCAN_VALUE:
            if (*p == '{' || *p == '[') {
                if (depth == RH_JSON_DEPTH_MAX) return fail(reason, "JSON nested too deep");
                bool is_object = *p == '{';
                in_object[depth++] = is_object;
                p = skip_ws(p + 1, end);
                if (p == end) return fail(reason, "JSON ends early");
                if (*p == (is_object ? '}' : ']')) {
                    p++;
                    depth--;
                    state = SCAN_AFTER;
                } else {
                    state = is_object ? SCAN_KEY : SCAN_VALUE;
                }
                break;
            }
            p = scan_scalar(p, end, reason);
            if (!p) return -EPROTO;
            state = SCAN_AFTER;
            break;
        case SCAN_KEY:
            if (*p != '"') return fail(reason, "JSON member name is not a string");
            p = scan_string(p, end, reason);
            if (!p) return -EPROTO;
            p = skip_ws(p, end);
            if (p == end) return fail(reason, "JSON ends early");
            if (*p != ':') return fail(reason, "JSON member name without ':'");
            p++;
            state = SCAN_VALUE;
            break;
        case SCAN_AFTER:
            if (*p == ',') {
                p++;
                state = in_object[depth - 1] ? SCAN_KEY : SCAN_VALUE;
            } else if (*p == (in_object[depth - 1] ? '}' : ']')) {
                p++;
                depth--;
            } else {
                return fail(reason, "JSON expected ',' or a closing bracket");
            }
            break;
        }
    }
}

enum rh_json_kind rh_json_kind_of(struct rh_span value)
{
    if (value.len == 0) return RH_JSON_INVALID;
    switch (value.ptr[0]) {
    case 'n':
        return RH_JSON_NULL;
    case 'f':
        return RH_JSON_FALSE;
    case 't':
        return RH_JSON_TRUE;
    case '"':
        return RH_JSON_STRING;
    case '[':
        return RH_JSON_ARRAY;
    case '{':
        return RH_JSON_OBJECT;
    default:
        return value.ptr[0] == '-' || is_digit(value.ptr[0]) ? RH_JSON_NUMBER : RH_JSON_INVALID;
    }
}

void rh_json_iter_init(struct rh_json_iter *it, struct rh_span container)
{
    if (container.len < 2 || (container.ptr[0] != '[' && container.ptr[0] != '{')) {
        it->at = it->end = container.ptr;
        return;
    }
    it->at = container.ptr + 1;
    it->end = container.ptr + container.len - 1;
}

bool rh_json_iter_next(struct rh_json_iter *it, struct rh_span *key, struct rh_span *value)
{
    const uint8_t *p = skip_ws(it->at, it->end);
    if (p < it->end && *p == ',') p = skip_ws(p + 1, it->end);
    const uint8_t *v = p < it->end ? skip_value(p, it->end) : p;
    if (v == p) {
        it->at = it->end;
        return false;
    }

    /* A member name is a string followed by ':'; an array element never is. */
    const uint8_t *q = skip_ws(v, it->end);
    if (q < it->end && *q == ':') {
        if (key) *key = rh_span_make(p, (uint32_t)(v - p));
        p = skip_ws(q + 1, it->end);
        v = p < it->end ? skip_value(p, it->end) : p;
    }
    *value = rh_span_make(p, (uint32_t)(v - p));
    it->at = v;
    return true;
}

ssize_t rh_json_string_decode(struct rh_span value, uint8_t *out, size_t out_cap)
{
    if (value.len < 2 || value.ptr[0] != '"' || value.ptr[value.len - 1] != '"') return -EINVAL;
    const uint8_t *p = value.ptr + 1, *end = value.ptr + value.len - 1;
    size_t n = 0;

    while (p < end) {
        const uint8_t *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = (size_t)((bs ? bs : end) - p);
        if (run > out_cap - n) return -EMSGSIZE;
        if (run) memcpy(out + n, p, run);
        n += run;
        p += run;
        if (!bs) break;

        uint8_t utf8[4];
        int k = decode_escape(&p, end, utf8);
        if (k < 0) return -EINVAL;
        if ((size_t)k > out_cap - n) return -EMSGSIZE;
        memcpy(out + n, utf8, (size_t)k);
        n += (size_t)k;
    }
    return (ssize_t)n;
}

bool rh_json_string_eq(struct rh_span value, const char *lit)
{
    if (value.len < 2 || value.ptr[0] != '"' || value.ptr[value.len - 1] != '"') return false;
    const uint8_t *p = value.ptr + 1, *end = value.ptr + value.len - 1;
    size_t lit_len = strlen(lit), n = 0;

    while (p < end) {
        const uint8_t *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = (size_t)((bs ? bs : end) - p);
        if (run > lit_len - n || memcmp(lit + n, p, run) != 0) return false;
        n += run;
        p += run;
        if (!bs) break;

        uint8_t utf8[4];
        int k = decode_escape(&p, end, utf8);
        if (k < 0 || (size_t)k > lit_len - n || memcmp(lit + n, utf8, (size_t)k) != 0) return false;
        n += (size_t)k;
    }
    return n == lit_len;
}

int rh_json_number_to_i64(struct rh_span value, int64_t *out)
{
    if (value.len == 0) return -EINVAL;
    const uint8_t *p = value.ptr, *end = value.ptr + value.len;
    bool negative = p < end && *p == '-';
    if (negative) p++;
    if (p == end) return -EINVAL;

    /* Magnitudes up to 2^63 for negatives, 2^63 - 1 otherwise; checked before each step. */
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t magnitude = 0;
    for (; p < end; p++) {
        if (!is_digit(*p)) return -EINVAL;
        uint64_t digit = (uint64_t)(*p - '0');
        if (magnitude > (limit - digit) / 10) return -ERANGE;
        magnitude = magnitude * 10 + digit;
    }
    if (!negative)
        *out = (int64_t)magnitude;
    else if (magnitude == (uint64_t)INT64_MAX + 1)
        *out = INT64_MIN;
    else
        *out = -(int64_t)magnitude;
    return 0;
}

int rh_json_number_to_double(struct rh_span value, double *out)
{
    /* strtod accepts more than JSON ("inf", "0x1p3", leading spaces): check the syntax first. */
    if (value.len == 0) return -EINVAL;
    const uint8_t *end = value.ptr + value.len;
    if (scan_number(value.ptr, end) != end) return -EINVAL;

    /* strtod wants a terminated string; the server never calls setlocale, so '.' is the
     * decimal point. Numbers longer than the stack copy are rare enough to allocate. */
    char small[64];
    char *text = value.len < sizeof(small) ? small : rh_alloc(value.len + 1);
    memcpy(text, value.ptr, value.len);
    text[value.len] = '\0';
    char *stop;
    double d = strtod(text, &stop);
    bool whole = stop == text + value.len;
    if (text != small) rh_free(text);
    if (!whole || !isfinite(d)) return -EINVAL;
    *out = d;
    return 0;
}

void rh_json_write_string(struct rh_buf **bufp, const void *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    rh_buf_append(bufp, "\"", 1);
    if (len == 0) {
        rh_buf_append(bufp, "\"", 1);
        return;
    }

    const uint8_t *p = s, *end = p + len, *run = p;
    while (p < end) {
        uint8_t c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_seq_len(p, end);
            if (n) {
                p += n;
                continue;
            }
        }

        append_run(bufp, run, p);
        char esc[6] = {'\\'};
        uint32_t esc_len = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            /* Other control characters as \u00XX; a byte that is not part of valid UTF-8
             * becomes U+FFFD, so the output is valid JSON whatever the input. */
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xf];
            } else {
                memcpy(esc, "\\ufffd", 6);
            }
            esc_len = 6;
            break;
        }
        rh_buf_append(bufp, esc, esc_len);
        run = ++p;
    }
    append_run(bufp, run, p);
    rh_buf_append(bufp, "\"", 1);
}

static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

static ssize_t fail(const char **reason, const char *why)
{
    *reason = why;
    return -EPROTO;
}

/* Scans a string, number or literal at @p; returns the end of it, or NULL with @reason set. */
static const uint8_t *scan_scalar(const uint8_t *p, const uint8_t *end, const char **reason)
{
    switch (*p) {
    case '"':
        return scan_string(p, end, reason);
    case 't':
        return scan_literal(p, end, "true", reason);
    case 'f':
        return scan_literal(p, end, "false", reason);
    case 'n':
        return scan_literal(p, end, "null", reason);
    default:
        if (*p == '-' || is_digit(*p)) {
            const uint8_t *q = scan_number(p, end);
            if (!q) *reason = "JSON number is malformed";
            return q;
        }
        *reason = "JSON value expected";
        return NULL;
    }
}

static const uint8_t *scan_literal(const uint8_t *p, const uint8_t *end, const char *lit,
                                   const char **reason)
{
    size_t n = strlen(lit);
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0) {
        *reason = "JSON literal is malformed";
        return NULL;
    }
    return p + n;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? ; returns its end, or NULL. A digit right
 * after a leading 0 is left for the caller, where it is never valid. */
static const uint8_t *scan_number(const uint8_t *p, const uint8_t *end)
{
    if (p < end && *p == '-') p++;
    if (p == end || !is_digit(*p)) return NULL;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p)) return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p == end || !is_digit(*p)) return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    return p;
}

/* @p is at the opening quote; returns just past the closing one, or NULL with @reason. */
static const uint8_t *scan_string(const uint8_t *p, const uint8_t *end, const char **reason)
{
    p++;
    while (p < end) {
        uint8_t c = *p;
        if (c == '"') return p + 1;
        if (c == '\\') {
            p = scan_escape(p, end, reason);
            if (!p) return NULL;
        } else if (c < 0x20) {
            *reason = "JSON string has a raw control character";
            return NULL;
        } else if (c < 0x80) {
            p++;
        } else {
            size_t n = utf8_seq_len(p, end);
            if (!n) {
                *reason = "JSON string is not valid UTF-8";
                return NULL;
            }
            p += n;
        }
    }
    *reason = "JSON ends early";
    return NULL;
}

/* @p is at a backslash. Lone surrogates are refused: they have no UTF-8 form to decode to. */
static const uint8_t *scan_escape(const uint8_t *p, const uint8_t *end, const char **reason)
{
    if (end - p < 2) {
        *reason = "JSON ends early";
        return NULL;
    }
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return p + 2;
    case 'u':
        break;
    default:
        *reason = "JSON string has an invalid escape";
        return NULL;
    }

    int32_t unit = read_hex4(p + 2, end);
    if (unit < 0) {
        *reason = "JSON string has an invalid \\u escape";
        return NULL;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) {
        *reason = "JSON string has an unpaired surrogate";
        return NULL;
    }
    if (unit < 0xd800 || unit > 0xdbff) return p + 6;

    int32_t low = end - p >= 8 && p[6] == '\\' && p[7] == 'u' ? read_hex4(p + 8, end) : -1;
    if (low < 0xdc00 || low > 0xdfff) {
        *reason = "JSON string has an unpaired surrogate";
        return NULL;
    }
    return p + 12;
}

/* The value of four hex digits at @p, or -1. */
static int32_t read_hex4(const uint8_t *p, const uint8_t *end)
{
    if (end - p < 4) return -1;
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        int32_t d;
        if (is_digit(c))
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Length of the well-formed UTF-8 sequence at @p (Unicode 15 table 3-7: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when it is not one. */
static size_t utf8_seq_len(const uint8_t *p, const uint8_t *end)
{
    size_t avail = (size_t)(end - p);
    uint8_t c = p[0], lo = 0x80, hi = 0xbf;
    size_t n;

    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return n;
}

/* Decodes the escape at *@pp into UTF-8 in @out and moves *@pp past it. Returns the byte
 * count, or -1 for an escape the validator would have refused. */
static int decode_escape(const uint8_t **pp, const uint8_t *end, uint8_t out[4])
{
    const uint8_t *p = *pp;
    if (end - p < 2) return -1;
    *pp = p + 2;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        out[0] = p[1];
        return 1;
    case 'b':
        out[0] = '\b';
        return 1;
    case 'f':
        out[0] = '\f';
        return 1;
    case 'n':
        out[0] = '\n';
        return 1;
    case 'r':
        out[0] = '\r';
        return 1;
    case 't':
        out[0] = '\t';
        return 1;
    case 'u':
        break;
    default:
        return -1;
    }

    int32_t cp = read_hex4(p + 2, end);
    if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff)) return -1;
    *pp = p + 6;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        int32_t low = end - p >= 8 && p[6] == '\\' && p[7] == 'u' ? read_hex4(p + 8, end) : -1;
        if (low < 0xdc00 || low > 0xdfff) return -1;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        *pp = p + 12;
    }

    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* The end of the validated value at @p (p < end), never past @end. */
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end)
{
    if (*p == '"') return skip_string(p, end);
    if (*p == '[' || *p == '{') {
        uint32_t depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                continue;
            }
            if (*p == '[' || *p == '{') {
                depth++;
            } else if (*p == ']' || *p == '}') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return end;
    }
    while (p < end && !is_ws(*p) && *p != ',' && *p != ']' && *p != '}' && *p != ':')
        p++;
    return p;
}

static const uint8_t *skip_string(const uint8_t *p, const uint8_t *end)
{
    p++;
    while (p < end) {
        if (*p == '"') return p + 1;
        p += *p == '\\' && end - p >= 2 ? 2 : 1;
    }
    return end;
}

static void append_run(struct rh_buf **bufp, const uint8_t *from, const uint8_t *to)
{
    size_t n = (size_t)(to - from);
    RH_ASSERT(n <= UINT32_MAX);
    rh_buf_append(bufp, from, (uint32_t)n);
}
