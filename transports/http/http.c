/*
 * transports/http/http.c - the HTTP/1.1 request parser, chunked body decoder and response
 * writers declared in http.h. The parser reads byte by byte with an explicit position, so an
 * error is found as soon as its byte arrives and a limit as soon as it is passed, and it keeps
 * no state between calls: re-parsing at most 8 KiB per received segment costs less than
 * carrying a state machine through every connection. Routing is left to the shards.
 */
#include "transports/http/http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/assert.h"

/* Where a request head is being parsed: the bytes, how far we are, and the limits. */
struct parse {
    const uint8_t *data;
    size_t len; /* bytes looked at: at most the header block limit */
    size_t pos;
    const struct rh_http_limits *lim;
    const char **reason;
};

/* What the framing fields said, gathered before deciding so the result never depends on the
 * order of the fields. */
struct framing {
    uint32_t host_count;
    uint32_t te_count;
    bool te_unsupported;
    bool cl_malformed;
    bool cl_conflict;
    bool conn_close;
    bool conn_keep_alive;
    bool conn_upgrade;
    bool upgrade_ws;
};

enum chunked_state {
    CH_SIZE,
    CH_SIZE_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START,
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF,
};

/* A response being written: counts every byte even past @cap so the caller learns the size. */
struct writer {
    uint8_t *out;
    size_t cap;
    size_t len;
};

static const char *const method_names[] = {
    [RH_HTTP_GET] = "GET",         [RH_HTTP_POST] = "POST", [RH_HTTP_DELETE] = "DELETE",
    [RH_HTTP_OPTIONS] = "OPTIONS", [RH_HTTP_HEAD] = "HEAD", [RH_HTTP_PUT] = "PUT",
    [RH_HTTP_PATCH] = "PATCH",
};

static const struct {
    int status;
    const char *text;
} status_texts[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {426, "Upgrade Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

static int fail(const char **reason, int err, const char *why);
static bool is_tchar(uint8_t c);
static bool is_field_vchar(uint8_t c);
static int hex_value(uint8_t c);
static int skip_empty_lines(struct parse *p);
static int parse_request_line(struct parse *p, struct rh_http_request *req);
static int parse_method(struct parse *p, struct rh_http_request *req);
static int parse_target(struct parse *p, struct rh_http_request *req);
static int parse_version(struct parse *p, struct rh_http_request *req);
static int expect_crlf(struct parse *p);
static int parse_fields(struct parse *p, struct rh_http_request *req);
static int parse_field(struct parse *p, struct rh_http_header *h);
static int apply_framing(struct rh_http_request *req, const struct rh_http_limits *lim,
                         const char **reason);
static void note_framing_field(const struct rh_http_header *h, struct rh_http_request *req,
                               struct framing *f);
static bool parse_content_length(struct rh_span value, uint64_t *out);
static bool list_has_token(struct rh_span list, const char *token);
static bool query_key_matches(const uint8_t *key, size_t key_len, const char *want);
static bool percent_decode(const uint8_t *in, size_t in_len, bool is_query, char *out,
                           size_t out_cap, size_t *out_len);
static ssize_t chunked_step(struct rh_http_chunked *st, uint8_t c, const char **reason);
static void put(struct writer *w, const void *bytes, size_t n);
static void put_str(struct writer *w, const char *s);
static void put_head(struct writer *w, int status, const struct rh_http_field *fields,
                     uint32_t field_count);
static size_t write_response(uint8_t *out, size_t out_cap, int status,
                             const struct rh_http_field *fields, uint32_t field_count,
                             const void *body, size_t body_len);

void rh_http_limits_defaults(struct rh_http_limits *lim)
{
    *lim = (struct rh_http_limits){
        .header_block_bytes_max = 8192,
        .header_count_max = 64,
        .target_bytes_max = 4096,
        .body_bytes_max = 1024 * 1024,
    };
}

ssize_t rh_http_parse_request(const uint8_t *data, size_t len, const struct rh_http_limits *lim,
                              struct rh_http_request *req, const char **reason)
{
    const char *unused;
    /* Looking no further than the limit makes "too large" a decision on what has arrived:
     * running out of the window with more bytes behind it means the block is over the limit. */
    struct parse p = {
        .data = data,
        .len = len < lim->header_block_bytes_max ? len : lim->header_block_bytes_max,
        .lim = lim,
        .reason = reason ? reason : &unused,
    };
    int err;

    memset(req, 0, offsetof(struct rh_http_request, headers));
    err = skip_empty_lines(&p);
    if (!err) err = parse_request_line(&p, req);
    if (!err) err = parse_fields(&p, req);
    if (err == -EAGAIN && len > p.len)
        return fail(p.reason, -E2BIG, "request header block too large");
    if (err) return err;

    err = apply_framing(req, lim, p.reason);
    if (err) return err;
    return (ssize_t)p.pos;
}

int rh_http_error_status(ssize_t err)
{
    switch (err) {
    case -EPROTO:
        return 400;
    case -E2BIG:
        return 431;
    case -ENAMETOOLONG:
        return 414;
    case -EMSGSIZE:
        return 413;
    case -EPROTONOSUPPORT:
        return 505;
    case -EOPNOTSUPP:
        return 501;
    default:
        return 500;
    }
}

const char *rh_http_method_name(enum rh_http_method method)
{
    RH_ASSERT((unsigned)method < sizeof(method_names) / sizeof(method_names[0]));
    return method_names[method];
}

const struct rh_span *rh_http_header(const struct rh_http_request *req, const char *name)
{
    for (uint32_t i = 0; i < req->header_count; i++)
        if (rh_span_eq_nocase(req->headers[i].name, name)) return &req->headers[i].value;
    return NULL;
}

bool rh_http_header_has_token(const struct rh_http_request *req, const char *name,
                              const char *token)
{
    for (uint32_t i = 0; i < req->header_count; i++) {
        const struct rh_http_header *h = &req->headers[i];
        if (rh_span_eq_nocase(h->name, name) && list_has_token(h->value, token)) return true;
    }
    return false;
}

bool rh_http_query_get(struct rh_span query, const char *key, char *out, size_t out_cap,
                       size_t *out_len)
{
    *out_len = 0;
    if (!query.len) return false; /* and query.ptr may be NULL */
    const uint8_t *p = query.ptr, *end = query.ptr + query.len;
    while (p < end) {
        const uint8_t *amp = memchr(p, '&', (size_t)(end - p));
        const uint8_t *pair_end = amp ? amp : end;
        const uint8_t *eq = memchr(p, '=', (size_t)(pair_end - p));
        const uint8_t *key_end = eq ? eq : pair_end;

        if (key_end > p && query_key_matches(p, (size_t)(key_end - p), key)) {
            const uint8_t *value = eq ? eq + 1 : pair_end;
            return percent_decode(value, (size_t)(pair_end - value), true, out, out_cap, out_len);
        }
        p = amp ? amp + 1 : end;
    }
    return false;
}

bool rh_http_path_decode(struct rh_span segment, char *out, size_t out_cap, size_t *out_len)
{
    return percent_decode(segment.ptr, segment.len, false, out, out_cap, out_len);
}

void rh_http_chunked_init(struct rh_http_chunked *st, const struct rh_http_limits *lim)
{
    /* Capped so size arithmetic in chunked_step never overflows. */
    *st = (struct rh_http_chunked){
        .body_bytes_max = lim->body_bytes_max < INT64_MAX ? lim->body_bytes_max : INT64_MAX,
        .state = CH_SIZE,
    };
}

ssize_t rh_http_chunked_decode(struct rh_http_chunked *st, const uint8_t *in, size_t len,
                               uint8_t *out, size_t out_cap, size_t *out_len, const char **reason)
{
    const char *unused;
    size_t i = 0;

    if (!reason) reason = &unused;
    *out_len = 0;
    while (i < len && !st->done) {
        if (st->state == CH_DATA) {
            /* Copy as much of the chunk as input and output allow, in one go. */
            size_t n = len - i, room = out_cap - *out_len;
            if (n > st->chunk_left) n = (size_t)st->chunk_left;
            if (n > room) n = room;
            if (n == 0) break;
            memcpy(out + *out_len, in + i, n);
            *out_len += n;
            i += n;
            st->body_len += n;
            st->chunk_left -= n;
            if (st->chunk_left == 0) st->state = CH_DATA_CR;
            continue;
        }
        ssize_t err = chunked_step(st, in[i], reason);
        if (err) return err;
        i++;
    }
    return (ssize_t)i;
}

const char *rh_http_status_text(int status)
{
    for (size_t i = 0; i < sizeof(status_texts) / sizeof(status_texts[0]); i++)
        if (status_texts[i].status == status) return status_texts[i].text;
    return "Unknown";
}

ssize_t rh_http_response_head(uint8_t *out, size_t out_cap, int status,
                              const struct rh_http_field *fields, uint32_t field_count)
{
    struct writer w = {.out = out, .cap = out_cap};

    put_head(&w, status, fields, field_count);
    put_str(&w, "\r\n");
    return w.len <= out_cap ? (ssize_t)w.len : -ENOBUFS;
}

ssize_t rh_http_response_write(uint8_t *out, size_t out_cap, int status,
                               const struct rh_http_field *fields, uint32_t field_count,
                               const void *body, size_t body_len)
{
    size_t n = write_response(out, out_cap, status, fields, field_count, body, body_len);
    return n <= out_cap ? (ssize_t)n : -ENOBUFS;
}

struct rh_buf *rh_http_response_buf(int status, const struct rh_http_field *fields,
                                    uint32_t field_count, const void *body, size_t body_len)
{
    size_t n = write_response(NULL, 0, status, fields, field_count, body, body_len);
    RH_ASSERT(n <= UINT32_MAX);

    struct rh_buf *buf = rh_buf_new((uint32_t)n);
    buf->len = (uint32_t)write_response(buf->data, n, status, fields, field_count, body, body_len);
    RH_ASSERT(buf->len == n);
    return buf;
}

ssize_t rh_http_error_response(uint8_t *out, size_t out_cap, int status, const char *reason)
{
    static const struct rh_http_field fields[] = {
        {"Content-Type", "text/plain; charset=utf-8"},
        {"Connection", "close"},
    };
    char body[160];
    int n = snprintf(body, sizeof(body), "%s\n", reason ? reason : rh_http_status_text(status));

    /* A reason longer than the body buffer is cut; ours are all short. */
    if (n >= (int)sizeof(body)) n = (int)sizeof(body) - 1;
    return rh_http_response_write(out, out_cap, status, fields, 2, body, (size_t)n);
}

static int fail(const char **reason, int err, const char *why)
{
    *reason = why;
    return err;
}

/* RFC 9110 §5.6.2 token characters. */
static bool is_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field value bytes: VCHAR, SP, HTAB and obs-text; never CR, LF, NUL or other controls. */
static bool is_field_vchar(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int skip_empty_lines(struct parse *p)
{
    while (p->pos < p->len && p->data[p->pos] == '\r') {
        int err = expect_crlf(p);
        if (err) return err;
    }
    return 0;
}

static int parse_request_line(struct parse *p, struct rh_http_request *req)
{
    int err = parse_method(p, req);
    if (!err) err = parse_target(p, req);
    if (!err) err = parse_version(p, req);
    if (!err) err = expect_crlf(p);
    return err;
}

static int parse_method(struct parse *p, struct rh_http_request *req)
{
    size_t start = p->pos;

    while (p->pos < p->len && is_tchar(p->data[p->pos]))
        p->pos++;
    if (p->pos == p->len) return -EAGAIN;
    if (p->pos == start || p->data[p->pos] != ' ')
        return fail(p->reason, -EPROTO, "malformed request line");

    struct rh_span name = rh_span_make(p->data + start, (uint32_t)(p->pos - start));
    p->pos++;
    for (size_t m = 0; m < sizeof(method_names) / sizeof(method_names[0]); m++) {
        if (rh_span_eq_str(name, method_names[m])) {
            req->method = (enum rh_http_method)m;
            return 0;
        }
    }
    return fail(p->reason, -EOPNOTSUPP, "method not implemented");
}

static int parse_target(struct parse *p, struct rh_http_request *req)
{
    size_t start = p->pos;

    /* VCHAR only: controls, spaces and non-ASCII bytes must arrive percent-encoded. */
    while (p->pos < p->len && p->data[p->pos] > 0x20 && p->data[p->pos] < 0x7f) {
        p->pos++;
        if (p->pos - start > p->lim->target_bytes_max)
            return fail(p->reason, -ENAMETOOLONG, "request target too long");
    }
    if (p->pos == p->len) return -EAGAIN;
    if (p->pos == start || p->data[p->pos] != ' ')
        return fail(p->reason, -EPROTO, "malformed request line");

    req->target = rh_span_make(p->data + start, (uint32_t)(p->pos - start));
    p->pos++;
    bool asterisk = rh_span_eq_str(req->target, "*");
    if (asterisk && req->method != RH_HTTP_OPTIONS)
        return fail(p->reason, -EPROTO, "asterisk target only with OPTIONS");
    if (!asterisk && req->target.ptr[0] != '/')
        return fail(p->reason, -EPROTO, "request target must be an absolute path");

    const uint8_t *q = memchr(req->target.ptr, '?', req->target.len);
    uint32_t path_len = q ? (uint32_t)(q - req->target.ptr) : req->target.len;
    req->path = rh_span_make(req->target.ptr, path_len);
    req->query = q ? rh_span_make(q + 1, req->target.len - path_len - 1)
                   : rh_span_make(req->target.ptr + path_len, 0);
    return 0;
}

static int parse_version(struct parse *p, struct rh_http_request *req)
{
    static const char prefix[] = "HTTP/";
    uint8_t v[3];

    for (size_t i = 0; i < 5; i++, p->pos++) {
        if (p->pos == p->len) return -EAGAIN;
        if (p->data[p->pos] != (uint8_t)prefix[i])
            return fail(p->reason, -EPROTO, "malformed HTTP version");
    }
    for (size_t i = 0; i < 3; i++, p->pos++) {
        if (p->pos == p->len) return -EAGAIN;
        v[i] = p->data[p->pos];
        bool ok = i == 1 ? v[i] == '.' : v[i] >= '0' && v[i] <= '9';
        if (!ok) return fail(p->reason, -EPROTO, "malformed HTTP version");
    }
    if (v[0] != '1' || (v[2] != '0' && v[2] != '1'))
        return fail(p->reason, -EPROTONOSUPPORT, "HTTP version not supported");
    req->version_minor = (uint8_t)(v[2] - '0');
    return 0;
}

static int expect_crlf(struct parse *p)
{
    if (p->pos == p->len) return -EAGAIN;
    if (p->data[p->pos] != '\r') return fail(p->reason, -EPROTO, "expected CRLF");
    if (p->pos + 1 == p->len) return -EAGAIN;
    if (p->data[p->pos + 1] != '\n') return fail(p->reason, -EPROTO, "bare CR");
    p->pos += 2;
    return 0;
}

static int parse_fields(struct parse *p, struct rh_http_request *req)
{
    uint32_t count_max = p->lim->header_count_max < RH_HTTP_HEADER_COUNT_CAP
                             ? p->lim->header_count_max
                             : RH_HTTP_HEADER_COUNT_CAP;

    for (;;) {
        if (p->pos == p->len) return -EAGAIN;
        if (p->data[p->pos] == '\r') return expect_crlf(p);

        struct rh_http_header h;
        int err = parse_field(p, &h);
        if (err) return err;
        if (req->header_count == count_max)
            return fail(p->reason, -E2BIG, "too many header fields");
        req->headers[req->header_count++] = h;
    }
}

static int parse_field(struct parse *p, struct rh_http_header *h)
{
    size_t start = p->pos, value_end;
    uint8_t c;

    while (p->pos < p->len && is_tchar(p->data[p->pos]))
        p->pos++;
    if (p->pos == p->len) return -EAGAIN;
    c = p->data[p->pos];
    if (p->pos == start && (c == ' ' || c == '\t'))
        return fail(p->reason, -EPROTO, "obsolete line folding");
    if (c == ' ' || c == '\t') return fail(p->reason, -EPROTO, "whitespace before colon");
    if (c != ':' || p->pos == start)
        return fail(p->reason, -EPROTO, "invalid character in header name");
    h->name = rh_span_make(p->data + start, (uint32_t)(p->pos - start));
    p->pos++;

    while (p->pos < p->len && (p->data[p->pos] == ' ' || p->data[p->pos] == '\t'))
        p->pos++;
    start = value_end = p->pos;
    while (p->pos < p->len && is_field_vchar(p->data[p->pos])) {
        c = p->data[p->pos++];
        if (c != ' ' && c != '\t') value_end = p->pos;
    }
    if (p->pos == p->len) return -EAGAIN;
    if (p->data[p->pos] != '\r')
        return fail(p->reason, -EPROTO, "invalid character in header value");
    h->value = rh_span_make(p->data + start, (uint32_t)(value_end - start));
    return expect_crlf(p);
}

static int apply_framing(struct rh_http_request *req, const struct rh_http_limits *lim,
                         const char **reason)
{
    struct framing f = {0};

    for (uint32_t i = 0; i < req->header_count; i++)
        note_framing_field(&req->headers[i], req, &f);

    if (f.cl_malformed) return fail(reason, -EPROTO, "invalid Content-Length");
    if (f.cl_conflict) return fail(reason, -EPROTO, "conflicting Content-Length");
    if (f.te_unsupported || f.te_count > 1)
        return fail(reason, -EOPNOTSUPP, "transfer coding not implemented");
    if (req->chunked && req->has_content_length)
        return fail(reason, -EPROTO, "both Content-Length and Transfer-Encoding");
    if (req->chunked && req->version_minor == 0)
        return fail(reason, -EPROTO, "Transfer-Encoding in HTTP/1.0");
    if (f.host_count > 1) return fail(reason, -EPROTO, "more than one Host");
    if (f.host_count == 0 && req->version_minor == 1) return fail(reason, -EPROTO, "missing Host");
    if (req->content_length > lim->body_bytes_max)
        return fail(reason, -EMSGSIZE, "request body too large");

    if (req->version_minor == 1) {
        req->keep_alive = !f.conn_close;
        req->upgrade_websocket = f.conn_upgrade && f.upgrade_ws;
    } else {
        req->keep_alive = f.conn_keep_alive && !f.conn_close;
    }
    return 0;
}

static void note_framing_field(const struct rh_http_header *h, struct rh_http_request *req,
                               struct framing *f)
{
    if (rh_span_eq_nocase(h->name, "content-length")) {
        uint64_t n;
        if (!parse_content_length(h->value, &n)) {
            f->cl_malformed = true;
        } else if (req->has_content_length && n != req->content_length) {
            f->cl_conflict = true;
        } else {
            req->has_content_length = true;
            req->content_length = n;
        }
    } else if (rh_span_eq_nocase(h->name, "transfer-encoding")) {
        f->te_count++;
        if (rh_span_eq_nocase(h->value, "chunked"))
            req->chunked = true;
        else
            f->te_unsupported = true;
    } else if (rh_span_eq_nocase(h->name, "host")) {
        f->host_count++;
    } else if (rh_span_eq_nocase(h->name, "connection")) {
        f->conn_close |= list_has_token(h->value, "close");
        f->conn_keep_alive |= list_has_token(h->value, "keep-alive");
        f->conn_upgrade |= list_has_token(h->value, "upgrade");
    } else if (rh_span_eq_nocase(h->name, "upgrade")) {
        f->upgrade_ws |= list_has_token(h->value, "websocket");
    }
}

static bool parse_content_length(struct rh_span value, uint64_t *out)
{
    uint64_t n = 0;

    if (value.len == 0) return false;
    for (uint32_t i = 0; i < value.len; i++) {
        uint8_t c = value.ptr[i];
        if (c < '0' || c > '9') return false;
        if (n > (UINT64_MAX - (uint64_t)(c - '0')) / 10) return false;
        n = n * 10 + (uint64_t)(c - '0');
    }
    *out = n;
    return true;
}

static bool list_has_token(struct rh_span list, const char *token)
{
    const uint8_t *p = list.ptr, *end = list.ptr + list.len;

    while (p < end) {
        const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
        const uint8_t *elem_end = comma ? comma : end;
        while (p < elem_end && (*p == ' ' || *p == '\t'))
            p++;
        while (elem_end > p && (elem_end[-1] == ' ' || elem_end[-1] == '\t'))
            elem_end--;
        if (rh_span_eq_nocase(rh_span_make(p, (uint32_t)(elem_end - p)), token)) return true;
        p = comma ? comma + 1 : end;
    }
    return false;
}

/* Compares a raw (still encoded) query key with @want, decoding as it goes. */
static bool query_key_matches(const uint8_t *key, size_t key_len, const char *want)
{
    size_t i = 0, w = 0;

    while (i < key_len) {
        int c = key[i++];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 1 < key_len ? hex_value(key[i]) : -1;
            int lo = i + 1 < key_len ? hex_value(key[i + 1]) : -1;
            if (hi < 0 || lo < 0) return false;
            c = hi * 16 + lo;
            i += 2;
        }
        if (want[w] == '\0' || c == 0) return false;
        int a = c >= 'A' && c <= 'Z' ? c + 32 : c;
        int b = want[w] >= 'A' && want[w] <= 'Z' ? want[w] + 32 : (uint8_t)want[w];
        if (a != b) return false;
        w++;
    }
    return want[w] == '\0';
}

/* @is_query: '+' is a space, as in form-encoded query strings (in a path it is itself). */
static bool percent_decode(const uint8_t *in, size_t in_len, bool is_query, char *out,
                           size_t out_cap, size_t *out_len)
{
    size_t n = 0;

    *out_len = 0;
    for (size_t i = 0; i < in_len; i++) {
        int c = in[i];
        if (c == '+' && is_query) {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= in_len) return false;
            int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
            c = hi * 16 + lo;
            i += 2;
        }
        if (n + 1 >= out_cap) return false;
        out[n++] = (char)c;
    }
    if (out_cap == 0) return false;
    out[n] = '\0';
    *out_len = n;
    return true;
}

/* One byte of chunk framing (everything but chunk data). Returns 0 or an error. */
static ssize_t chunked_step(struct rh_http_chunked *st, uint8_t c, const char **reason)
{
    switch (st->state) {
    case CH_SIZE: {
        int d = hex_value(c);
        if (++st->line_len > RH_HTTP_CHUNK_LINE_BYTES_MAX)
            return fail(reason, -EPROTO, "chunk size line too long");
        if (d >= 0) {
            uint64_t room = st->body_bytes_max - st->body_len;
            if (st->chunk_left > room / 16 || st->chunk_left * 16 + (uint64_t)d > room)
                return fail(reason, -EMSGSIZE, "request body too large");
            st->chunk_left = st->chunk_left * 16 + (uint64_t)d;
            st->digit_count++;
            return 0;
        }
        if (st->digit_count == 0) return fail(reason, -EPROTO, "invalid chunk size");
        if (c == ';')
            st->state = CH_SIZE_EXT;
        else if (c == '\r')
            st->state = CH_SIZE_LF;
        else
            return fail(reason, -EPROTO, "invalid chunk size");
        return 0;
    }
    case CH_SIZE_EXT:
        if (++st->line_len > RH_HTTP_CHUNK_LINE_BYTES_MAX)
            return fail(reason, -EPROTO, "chunk size line too long");
        if (c == '\r')
            st->state = CH_SIZE_LF;
        else if (!is_field_vchar(c))
            return fail(reason, -EPROTO, "invalid chunk extension");
        return 0;
    case CH_SIZE_LF:
        if (c != '\n') return fail(reason, -EPROTO, "bare CR in chunk size line");
        st->line_len = 0;
        st->digit_count = 0;
        st->state = st->chunk_left ? CH_DATA : CH_TRAILER_START;
        return 0;
    case CH_DATA_CR:
        if (c != '\r') return fail(reason, -EPROTO, "missing CRLF after chunk data");
        st->state = CH_DATA_LF;
        return 0;
    case CH_DATA_LF:
        if (c != '\n') return fail(reason, -EPROTO, "missing CRLF after chunk data");
        st->state = CH_SIZE;
        return 0;
    default:
        break;
    }

    /* The trailer section: field lines checked like header fields, then dropped. */
    if (++st->trailer_len > RH_HTTP_TRAILER_BYTES_MAX)
        return fail(reason, -E2BIG, "trailer section too large");
    switch (st->state) {
    case CH_TRAILER_START:
        if (c == '\r')
            st->state = CH_END_LF;
        else if (is_tchar(c))
            st->state = CH_TRAILER_NAME;
        else
            return fail(reason, -EPROTO, "malformed trailer field");
        return 0;
    case CH_TRAILER_NAME:
        if (c == ':')
            st->state = CH_TRAILER_VALUE;
        else if (!is_tchar(c))
            return fail(reason, -EPROTO, "malformed trailer field");
        return 0;
    case CH_TRAILER_VALUE:
        if (c == '\r')
            st->state = CH_TRAILER_LF;
        else if (!is_field_vchar(c))
            return fail(reason, -EPROTO, "malformed trailer field");
        return 0;
    case CH_TRAILER_LF:
        if (c != '\n') return fail(reason, -EPROTO, "bare CR in trailer");
        st->state = CH_TRAILER_START;
        return 0;
    case CH_END_LF:
        if (c != '\n') return fail(reason, -EPROTO, "bare CR after last chunk");
        st->done = true;
        return 0;
    default:
        RH_ASSERT(!"chunked decoder in an unknown state");
        return -EPROTO;
    }
}

static void put(struct writer *w, const void *bytes, size_t n)
{
    if (n > 0 && w->len + n <= w->cap) memcpy(w->out + w->len, bytes, n);
    w->len += n;
}

static void put_str(struct writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_head(struct writer *w, int status, const struct rh_http_field *fields,
                     uint32_t field_count)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %03d ", status);

    RH_ASSERT(n > 0 && (size_t)n < sizeof(line));
    put(w, line, (size_t)n);
    put_str(w, rh_http_status_text(status));
    put_str(w, "\r\n");
    for (uint32_t i = 0; i < field_count; i++) {
        put_str(w, fields[i].name);
        put_str(w, ": ");
        put_str(w, fields[i].value);
        put_str(w, "\r\n");
    }
}

static size_t write_response(uint8_t *out, size_t out_cap, int status,
                             const struct rh_http_field *fields, uint32_t field_count,
                             const void *body, size_t body_len)
{
    struct writer w = {.out = out, .cap = out_cap};
    bool no_body = (status >= 100 && status < 200) || status == 204 || status == 304;

    RH_ASSERT(!no_body || body_len == 0);
    put_head(&w, status, fields, field_count);
    if (!no_body) {
        char line[48];
        int n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n", body_len);
        put(&w, line, (size_t)n);
    }
    put_str(&w, "\r\n");
    put(&w, body, body_len);
    return w.len;
}
