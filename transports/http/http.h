#pragma once
/*
 * transports/http/http.h - HTTP/1.1 request parsing and response writing for every connection
 * before it becomes a WebSocket, an SSE stream or a long poll. The parser is zero-copy and
 * restartable: it reads the request line and header block from the start of the bytes received
 * so far, on every call, and the request it fills points into those bytes. It is strict and
 * bounded (limits below); it decides framing (Content-Length, chunked, keep-alive, WebSocket
 * upgrade) but never routes: which path or method is served is the shard's business.
 *
 * Strictness, decided once for the whole module:
 * - Lines end in CRLF only; a bare LF or a bare CR is malformed (400). Empty lines before the
 *   request line are skipped (RFC 9112 §2.2) and count towards the header block.
 * - Methods GET, POST, DELETE, OPTIONS, HEAD, PUT, PATCH; any other syntactically valid method
 *   is 501, an invalid one 400. The target is origin-form ("/path?query"), or "*" for OPTIONS;
 *   absolute-form and authority-form are 400 (ringhub is an origin server, not a proxy).
 * - Versions HTTP/1.0 and HTTP/1.1; any other HTTP/x.y is 505.
 * - Header fields: obs-fold, whitespace before the colon, invalid name characters and control
 *   characters in values (except HTAB) are 400. Values may carry obs-text (bytes >= 0x80).
 * - Framing: Content-Length is 1*DIGIT (no lists); repeats must agree. Transfer-Encoding must be
 *   exactly "chunked" (case-insensitive) in one field, else 501; it is 400 together with
 *   Content-Length or in an HTTP/1.0 request. HTTP/1.1 needs exactly one Host field; HTTP/1.0
 *   may have at most one.
 *
 * Any thread may call these functions; nothing here allocates except rh_http_response_buf.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "transports/span.h"

/* Storage for header fields in struct rh_http_request; limits.header_count_max may not exceed
 * it (larger values are clamped). */
#define RH_HTTP_HEADER_COUNT_CAP 128
/* Longest chunk-size line (size, extensions, CRLF) the chunked decoder accepts. */
#define RH_HTTP_CHUNK_LINE_BYTES_MAX 1024
/* Largest trailer section (after the last chunk) the chunked decoder skips. */
#define RH_HTTP_TRAILER_BYTES_MAX 4096

/*
 * Error codes of the parser and the chunked decoder; rh_http_error_status() maps them:
 *   -EPROTO           400  malformed request
 *   -E2BIG            431  header block longer than its limit, too many fields, trailers too large
 *   -ENAMETOOLONG     414  request target longer than its limit
 *   -EMSGSIZE         413  body (Content-Length or decoded chunks) longer than its limit
 *   -EPROTONOSUPPORT  505  HTTP version other than 1.0 and 1.1
 *   -EOPNOTSUPP       501  unknown method, or a transfer coding other than chunked
 */

enum rh_http_method {
    RH_HTTP_GET,
    RH_HTTP_POST,
    RH_HTTP_DELETE,
    RH_HTTP_OPTIONS,
    RH_HTTP_HEAD,
    RH_HTTP_PUT,
    RH_HTTP_PATCH,
};

struct rh_http_limits {
    uint32_t header_block_bytes_max; /* request line + fields + final CRLF; default 8192 */
    uint32_t header_count_max;       /* default 64, at most RH_HTTP_HEADER_COUNT_CAP */
    uint32_t target_bytes_max;       /* request target; default 4096 */
    uint64_t body_bytes_max;         /* Content-Length or decoded chunked body; default 1 MiB */
};

struct rh_http_header {
    struct rh_span name;  /* as received; compare case-insensitively */
    struct rh_span value; /* leading and trailing SP/HTAB removed */
};

/* A parsed request head. Every span points into the bytes given to rh_http_parse_request and is
 * valid only as long as they are. */
struct rh_http_request {
    enum rh_http_method method;
    uint8_t version_minor;   /* 0 or 1 */
    struct rh_span target;   /* raw request target, e.g. "/hubs/chat?id=x" */
    struct rh_span path;     /* target up to '?', not percent-decoded */
    struct rh_span query;    /* after '?', empty when there is none */
    bool has_content_length; /* a Content-Length field was present */
    bool chunked;            /* Transfer-Encoding: chunked; use rh_http_chunked_decode */
    bool keep_alive;         /* the connection may carry another request after this one */
    bool upgrade_websocket;  /* HTTP/1.1, Connection has "upgrade", Upgrade has "websocket" */
    uint64_t content_length; /* 0 when absent and not chunked: no body */
    uint32_t header_count;
    struct rh_http_header headers[RH_HTTP_HEADER_COUNT_CAP];
};

/* Incremental chunked body decoder state; set it up with rh_http_chunked_init. */
struct rh_http_chunked {
    uint64_t body_bytes_max;
    uint64_t body_len;    /* decoded body bytes so far */
    uint64_t chunk_left;  /* size being read, then data bytes of the current chunk still to come */
    uint32_t line_len;    /* bytes of the current chunk-size line */
    uint32_t digit_count; /* hex digits of the current chunk size */
    uint32_t trailer_len;
    uint8_t state;
    bool done; /* the last chunk and the trailer section have been consumed */
};

/* A response header field for the writers below: NUL-terminated, no CR or LF. */
struct rh_http_field {
    const char *name;
    const char *value;
};

/* Fills @lim with the defaults listed in struct rh_http_limits. */
void rh_http_limits_defaults(struct rh_http_limits *lim);

/*
 * Parses the request line and header block at the start of @data (@len bytes received so far).
 * Returns the bytes of the header block (> 0; the body, if any, follows), -EAGAIN when the block
 * is incomplete but within the limits so far (call again with more bytes), or one of the error
 * codes above with *@reason (when @reason is not NULL) set to a short static text for the reply.
 * On success @req is filled; on failure its contents are unspecified.
 */
ssize_t rh_http_parse_request(const uint8_t *data, size_t len, const struct rh_http_limits *lim,
                              struct rh_http_request *req, const char **reason);

/* The HTTP status for a parser or decoder error code above; 500 for any other value. */
int rh_http_error_status(ssize_t err);

/* "GET", "POST", ... for logs. */
const char *rh_http_method_name(enum rh_http_method method);

/* The value of the first field named @name (case-insensitive), or NULL if there is none. */
const struct rh_span *rh_http_header(const struct rh_http_request *req, const char *name);

/* Whether any field named @name holds @token in its comma-separated list (both compared
 * case-insensitively, list elements trimmed of SP/HTAB). */
bool rh_http_header_has_token(const struct rh_http_request *req, const char *name,
                              const char *token);

/*
 * Looks up @key (case-insensitive, as ASP.NET Core matches query keys) in the query string
 * @query (the part after '?') and writes the value of its first occurrence, percent-decoded and
 * with '+' as space, to @out as a NUL-terminated string of *@out_len bytes. Returns false when
 * the key is missing, when the value's percent-encoding is invalid (%zz, a truncated %, or %00)
 * or when it does not fit in @out_cap bytes with the NUL; *@out_len is then 0.
 * A pair without '=' has an empty value.
 */
bool rh_http_query_get(struct rh_span query, const char *key, char *out, size_t out_cap,
                       size_t *out_len);

/* Writes the percent-decoded @segment (of a path; '+' stays '+') to @out as a NUL-terminated
 * string of *@out_len bytes. Returns false, with *@out_len 0, for invalid percent-encoding (as
 * rh_http_query_get) or when it does not fit in @out_cap bytes with the NUL. */
bool rh_http_path_decode(struct rh_span segment, char *out, size_t out_cap, size_t *out_len);

/* Starts decoding a chunked body limited to @lim->body_bytes_max. */
void rh_http_chunked_init(struct rh_http_chunked *st, const struct rh_http_limits *lim);

/*
 * Decodes the chunked body bytes @in (@len, continuing where the previous call stopped) and
 * writes the body bytes to @out, at most @out_cap, counting them in *@out_len. Partial input is
 * kept in @st, so the result is never -EAGAIN: it returns the bytes of @in consumed (>= 0). It
 * stops early when @st->done becomes true (what follows belongs to the next request) or when
 * @out is full (drain it and call again with the rest). Chunk extensions and trailer fields are
 * checked and dropped. Errors: -EPROTO (malformed), -EMSGSIZE (body over its limit), -E2BIG
 * (trailers over RH_HTTP_TRAILER_BYTES_MAX), with *@reason set as for the parser; @st is then
 * unusable and the connection should be closed after the error reply.
 */
ssize_t rh_http_chunked_decode(struct rh_http_chunked *st, const uint8_t *in, size_t len,
                               uint8_t *out, size_t out_cap, size_t *out_len, const char **reason);

/* The reason phrase for @status ("Not Found"), or "Unknown" for one this module does not know. */
const char *rh_http_status_text(int status);

/*
 * Writes "HTTP/1.1 <status> <text>\r\n", the @field_count @fields, and the blank line to @out.
 * The caller's fields carry the framing (for a streamed or chunked response). Returns the bytes
 * written, or -ENOBUFS when they do not fit in @out_cap (the contents of @out are then garbage).
 */
ssize_t rh_http_response_head(uint8_t *out, size_t out_cap, int status,
                              const struct rh_http_field *fields, uint32_t field_count);

/*
 * Like rh_http_response_head, then "Content-Length: <body_len>" and the body. For 1xx, 204 and
 * 304 no Content-Length is written and @body_len must be 0. @body may be NULL when @body_len is
 * 0. Returns the bytes written or -ENOBUFS.
 */
ssize_t rh_http_response_write(uint8_t *out, size_t out_cap, int status,
                               const struct rh_http_field *fields, uint32_t field_count,
                               const void *body, size_t body_len);

/* The same response in a new rh_buf (one reference held by the caller). The whole response must
 * fit in 4 GiB; callers bound their bodies long before that. */
struct rh_buf *rh_http_response_buf(int status, const struct rh_http_field *fields,
                                    uint32_t field_count, const void *body, size_t body_len);

/*
 * A complete error reply: status line, "Content-Type: text/plain; charset=utf-8",
 * "Connection: close", Content-Length and the body "<reason>\n" (@reason NULL: the status
 * text). Returns the bytes written or -ENOBUFS; 256 bytes fit any reason this module returns.
 */
ssize_t rh_http_error_response(uint8_t *out, size_t out_cap, int status, const char *reason);
