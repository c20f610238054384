/*
 * transports/hub_transcode.c - JSON <-> MessagePack for single values, walking the JSON reader's
 * spans on one side and the MessagePack head decoder on the other, so nothing is built into a
 * tree. MessagePack is written with msgpack-c's packer, which picks the smallest int and str
 * forms as the JS client's encoder does. Recursion is bounded by RH_HUB_MSGPACK_DEPTH_MAX.
 */
#include "transports/hub_transcode.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "transports/hub_msgpack.h"
#include "transports/json.h"

#define MAX_SAFE_INTEGER 9007199254740992.0 /* 2^53: JS's Number.isSafeInteger bound */
#define JS_DATE_MS_MAX   8640000000000000LL /* a JS Date is within +/-1e8 days */
#define MS_PER_DAY       86400000LL

static int json_to_msgpack(struct rh_span v, uint32_t depth, msgpack_packer *pk);
static int pack_json_number(struct rh_span v, msgpack_packer *pk);
static int pack_json_string(struct rh_span v, msgpack_packer *pk);
static int pack_json_container(struct rh_span v, bool is_object, uint32_t depth,
                               msgpack_packer *pk);
static ssize_t msgpack_to_json(const uint8_t *data, size_t len, uint32_t depth,
                               struct rh_buf **out);
static ssize_t write_json_container(const uint8_t *data, size_t len,
                                    const struct rh_hub_msgpack_head *h, uint32_t depth,
                                    struct rh_buf **out);
static int write_json_key(const uint8_t *data, size_t len, struct rh_buf **out);
static void write_json_double(struct rh_buf **out, double d, bool is_float32);
static void write_json_base64(struct rh_buf **out, const uint8_t *data, uint32_t len);
static int write_json_timestamp(struct rh_buf **out, const uint8_t *data, uint32_t len);
static void write_json_iso8601(struct rh_buf **out, int64_t ms);
static void append_text(struct rh_buf **out, const char *text);
static struct rh_span trim_json_ws(struct rh_span v);
static int pack_to_buf(void *data, const char *bytes, size_t len);

int rh_hub_transcode_value(enum rh_hub_codec from, struct rh_span value, enum rh_hub_codec to,
                           struct rh_buf **out)
{
    if (value.len == 0) return 0;
    if (from == to) {
        rh_buf_append(out, value.ptr, value.len);
        return 0;
    }

    uint32_t start = (*out)->len;
    int rc;
    if (from == RH_HUB_JSON) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, out, pack_to_buf);
        rc = json_to_msgpack(trim_json_ws(value), 1, &pk);
    } else {
        ssize_t n = msgpack_to_json(value.ptr, value.len, 1, out);
        rc = n < 0 ? (int)n : (size_t)n == value.len ? 0 : -EPROTO;
    }
    if (rc < 0) (*out)->len = start;
    return rc;
}

int rh_hub_transcode_values(enum rh_hub_codec from, const struct rh_span *values, uint32_t count,
                            enum rh_hub_codec to, struct rh_buf **out, struct rh_span *converted)
{
    uint32_t start = (*out)->len;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t at = (*out)->len;
        int rc = rh_hub_transcode_value(from, values[i], to, out);
        if (rc < 0) {
            (*out)->len = start;
            return rc;
        }
        converted[i].len = (*out)->len - at;
    }

    /* Pointers only now: *out may have moved while later values were appended. */
    const uint8_t *at = (*out)->data + start;
    for (uint32_t i = 0; i < count; i++) {
        converted[i].ptr = at;
        at += converted[i].len;
    }
    return 0;
}

static int json_to_msgpack(struct rh_span v, uint32_t depth, msgpack_packer *pk)
{
    switch (rh_json_kind_of(v)) {
    case RH_JSON_NULL:
        msgpack_pack_nil(pk);
        return 0;
    case RH_JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;
    case RH_JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;
    case RH_JSON_NUMBER:
        return pack_json_number(v, pk);
    case RH_JSON_STRING:
        return pack_json_string(v, pk);
    case RH_JSON_ARRAY:
        return pack_json_container(v, false, depth, pk);
    case RH_JSON_OBJECT:
        return pack_json_container(v, true, depth, pk);
    default:
        return -EPROTO;
    }
}

static int pack_json_number(struct rh_span v, msgpack_packer *pk)
{
    int64_t i;
    double d;
    if (rh_json_number_to_i64(v, &i) == 0) {
        msgpack_pack_int64(pk, i);
        return 0;
    }
    if (rh_json_number_to_double(v, &d) < 0) {
        /* A valid number strtod cannot hold is one beyond DBL_MAX: JSON.parse makes it
         * Infinity, and so do we. */
        if (v.len == 0 || !(v.ptr[0] == '-' || (v.ptr[0] >= '0' && v.ptr[0] <= '9')))
            return -EPROTO;
        d = v.ptr[0] == '-' ? -INFINITY : INFINITY;
    }
    if (d == trunc(d) && fabs(d) < MAX_SAFE_INTEGER)
        msgpack_pack_int64(pk, (int64_t)d);
    else
        msgpack_pack_double(pk, d);
    return 0;
}

/* Decodes straight into the output: the decoded text is never longer than the quoted one, so
 * room for the widest str head and the quoted length is enough; the head is then fitted to the
 * decoded length and the text moved up against it. */
static int pack_json_string(struct rh_span v, msgpack_packer *pk)
{
    struct rh_buf **out = pk->data;
    uint32_t start = (*out)->len;
    rh_buf_extend(out, 5 + v.len);
    ssize_t n = rh_json_string_decode(v, (*out)->data + start + 5, v.len);
    (*out)->len = start;
    if (n < 0) return -EPROTO;

    msgpack_pack_str(pk, (size_t)n);
    uint32_t head_len = (*out)->len - start;
    uint8_t *text = (*out)->data + start + head_len;
    memmove(text, (*out)->data + start + 5, (size_t)n);
    (*out)->len = start + head_len + (uint32_t)n;
    return 0;
}

static int pack_json_container(struct rh_span v, bool is_object, uint32_t depth, msgpack_packer *pk)
{
    struct rh_json_iter it;
    struct rh_span key, value;
    size_t count = 0;
    if (depth > RH_HUB_MSGPACK_DEPTH_MAX) return -EPROTO;

    rh_json_iter_init(&it, v);
    while (rh_json_iter_next(&it, is_object ? &key : NULL, &value))
        count++;
    if (is_object)
        msgpack_pack_map(pk, count);
    else
        msgpack_pack_array(pk, count);

    rh_json_iter_init(&it, v);
    while (rh_json_iter_next(&it, is_object ? &key : NULL, &value)) {
        if (is_object && pack_json_string(key, pk) < 0) return -EPROTO;
        int rc = json_to_msgpack(value, depth + 1, pk);
        if (rc < 0) return rc;
    }
    return 0;
}

/* Returns the MessagePack bytes used, or -EPROTO. */
static ssize_t msgpack_to_json(const uint8_t *data, size_t len, uint32_t depth, struct rh_buf **out)
{
    struct rh_hub_msgpack_head h;
    char text[32];
    int rc = 0;
    if (rh_hub_msgpack_read_head(data, len, &h) < 0) return -EPROTO;
    const uint8_t *payload = data + h.head_len;

    switch (h.kind) {
    case RH_HUB_MSGPACK_NIL:
        append_text(out, "null");
        break;
    case RH_HUB_MSGPACK_BOOL:
        append_text(out, h.b ? "true" : "false");
        break;
    case RH_HUB_MSGPACK_UINT:
        snprintf(text, sizeof(text), "%" PRIu64, h.u);
        append_text(out, text);
        break;
    case RH_HUB_MSGPACK_INT:
        snprintf(text, sizeof(text), "%" PRId64, h.i);
        append_text(out, text);
        break;
    case RH_HUB_MSGPACK_FLOAT32:
    case RH_HUB_MSGPACK_FLOAT64:
        write_json_double(out, h.f, h.kind == RH_HUB_MSGPACK_FLOAT32);
        break;
    case RH_HUB_MSGPACK_STR:
        rh_json_write_string(out, payload, h.data_len);
        break;
    case RH_HUB_MSGPACK_BIN:
        write_json_base64(out, payload, h.data_len);
        break;
    case RH_HUB_MSGPACK_ARRAY:
    case RH_HUB_MSGPACK_MAP:
        return write_json_container(data, len, &h, depth, out);
    case RH_HUB_MSGPACK_EXT:
        /* -1 is MessagePack's timestamp: the JS client's Date, .NET's DateTime. */
        rc = h.ext_type == -1 ? write_json_timestamp(out, payload, h.data_len) : -EPROTO;
        break;
    }
    if (rc < 0) return rc;
    return (ssize_t)h.head_len + h.data_len;
}

static ssize_t write_json_container(const uint8_t *data, size_t len,
                                    const struct rh_hub_msgpack_head *h, uint32_t depth,
                                    struct rh_buf **out)
{
    bool is_map = h->kind == RH_HUB_MSGPACK_MAP;
    size_t at = h->head_len;
    if (depth > RH_HUB_MSGPACK_DEPTH_MAX) return -EPROTO;

    append_text(out, is_map ? "{" : "[");
    for (uint32_t i = 0; i < h->count; i++) {
        if (i) append_text(out, ",");
        if (is_map) {
            int n = write_json_key(data + at, len - at, out);
            if (n < 0) return n;
            at += (size_t)n;
            append_text(out, ":");
        }
        ssize_t n = msgpack_to_json(data + at, len - at, depth + 1, out);
        if (n < 0) return n;
        at += (size_t)n;
    }
    append_text(out, is_map ? "}" : "]");
    return (ssize_t)at;
}

/* A map key: str as it is, an int as its decimal text in quotes. Returns the bytes used. */
static int write_json_key(const uint8_t *data, size_t len, struct rh_buf **out)
{
    struct rh_hub_msgpack_head h;
    char text[32];
    if (rh_hub_msgpack_read_head(data, len, &h) < 0) return -EPROTO;
    switch (h.kind) {
    case RH_HUB_MSGPACK_STR:
        rh_json_write_string(out, data + h.head_len, h.data_len);
        return (int)(h.head_len + h.data_len);
    case RH_HUB_MSGPACK_UINT:
        snprintf(text, sizeof(text), "\"%" PRIu64 "\"", h.u);
        append_text(out, text);
        return (int)h.head_len;
    case RH_HUB_MSGPACK_INT:
        snprintf(text, sizeof(text), "\"%" PRId64 "\"", h.i);
        append_text(out, text);
        return (int)h.head_len;
    default:
        return -EPROTO;
    }
}

/* The fewest digits that read back as the same value: %.17g alone would turn 0.1 into
 * 0.10000000000000001. Reading back is monotonic in the digit count (17 always does for a
 * double, 9 for a float32), so a binary search finds the fewest in about four tries. */
static void write_json_double(struct rh_buf **out, double d, bool is_float32)
{
    /* %.17g of a double needs at most 24 bytes (sign, 17 digits, point, e-308); the checked
     * returns below also tell gcc's -O0 truncation warning that the output is bounded. */
    char text[40];
    if (!isfinite(d)) {
        append_text(out, "null");
        return;
    }
    int lo = 1, hi = is_float32 ? 9 : 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (snprintf(text, sizeof(text), "%.*g", mid, d) >= (int)sizeof(text)) break;
        double back = strtod(text, NULL);
        if (is_float32 ? fabs(back) <= FLT_MAX && (float)back == (float)d : back == d)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (snprintf(text, sizeof(text), "%.*g", lo, d) >= (int)sizeof(text)) {
        append_text(out, "null"); /* not reached: see the bound above */
        return;
    }
    append_text(out, text);
}

static void write_json_base64(struct rh_buf **out, const uint8_t *data, uint32_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t *p = rh_buf_extend(out, 2 + (len + 2) / 3 * 4);
    *p++ = '"';
    uint32_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *p++ = (uint8_t)alphabet[v >> 18];
        *p++ = (uint8_t)alphabet[(v >> 12) & 63];
        *p++ = (uint8_t)alphabet[(v >> 6) & 63];
        *p++ = (uint8_t)alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        *p++ = (uint8_t)alphabet[v >> 18];
        *p++ = (uint8_t)alphabet[(v >> 12) & 63];
        *p++ = '=';
        *p++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        *p++ = (uint8_t)alphabet[v >> 18];
        *p++ = (uint8_t)alphabet[(v >> 12) & 63];
        *p++ = (uint8_t)alphabet[(v >> 6) & 63];
        *p++ = '=';
    }
    *p = '"';
}

/* The three timestamp forms: 32-bit seconds; 30-bit nanoseconds and 34-bit seconds; 32-bit
 * nanoseconds and signed 64-bit seconds. The JS client makes a Date of sec * 1e3 + nsec / 1e6,
 * which drops the fraction of a millisecond towards zero. */
static int write_json_timestamp(struct rh_buf **out, const uint8_t *data, uint32_t len)
{
    int64_t sec;
    uint32_t nsec;
    if (len == 4) {
        sec = (int64_t)((uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 |
                        data[3]);
        nsec = 0;
    } else if (len == 8 || len == 12) {
        uint64_t v = 0;
        for (uint32_t i = 0; i < 8; i++)
            v = v << 8 | data[len - 8 + i];
        if (len == 8) {
            nsec = (uint32_t)(v >> 34);
            sec = (int64_t)(v & 0x3ffffffffULL);
        } else {
            nsec = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 |
                   data[3];
            sec = (int64_t)v;
        }
    } else {
        return -EPROTO;
    }
    if (nsec > 999999999) return -EPROTO;

    if (sec > JS_DATE_MS_MAX / 1000 + 1 || sec < -JS_DATE_MS_MAX / 1000 - 1) {
        append_text(out, "null");
        return 0;
    }
    int64_t ms = sec * 1000 + nsec / 1000000;
    if (ms < 0 && nsec % 1000000) ms++;
    if (ms > JS_DATE_MS_MAX || ms < -JS_DATE_MS_MAX) {
        append_text(out, "null");
        return 0;
    }
    write_json_iso8601(out, ms);
    return 0;
}

/* Date.prototype.toISOString: days to a civil date by Howard Hinnant's civil_from_days. */
static void write_json_iso8601(struct rh_buf **out, int64_t ms)
{
    int64_t days = ms / MS_PER_DAY, ms_of_day = ms % MS_PER_DAY;
    if (ms_of_day < 0) {
        ms_of_day += MS_PER_DAY;
        days--;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);

    char text[48];
    int n = year >= 0 && year <= 9999 ? snprintf(text, sizeof(text), "\"%04" PRId64, year)
                                      : snprintf(text, sizeof(text), "\"%+07" PRId64, year);
    snprintf(text + n, sizeof(text) - (size_t)n,
             "-%02" PRId64 "-%02" PRId64 "T%02" PRId64 ":%02" PRId64 ":%02" PRId64 ".%03" PRId64
             "Z\"",
             month, day, ms_of_day / 3600000, ms_of_day / 60000 % 60, ms_of_day / 1000 % 60,
             ms_of_day % 1000);
    append_text(out, text);
}

static void append_text(struct rh_buf **out, const char *text)
{
    rh_buf_append(out, text, (uint32_t)strlen(text));
}

static struct rh_span trim_json_ws(struct rh_span v)
{
    while (v.len && (v.ptr[0] == ' ' || v.ptr[0] == '\t' || v.ptr[0] == '\n' || v.ptr[0] == '\r')) {
        v.ptr++;
        v.len--;
    }
    while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t' ||
                     v.ptr[v.len - 1] == '\n' || v.ptr[v.len - 1] == '\r'))
        v.len--;
    return v;
}

static int pack_to_buf(void *data, const char *bytes, size_t len)
{
    RH_ASSERT(len <= UINT32_MAX);
    rh_buf_append(data, bytes, (uint32_t)len);
    return 0;
}
