#pragma once
/*
 * transports/json.h - a small span-based JSON reader and writer for the hub protocol. Nothing is
 * built into a tree: a value is a span of its own text, validated once (RFC 8259, UTF-8, depth
 * limited), and callers walk arrays and objects or decode strings only where they need to.
 * Argument values are forwarded between JSON clients as the very bytes the sender wrote.
 *
 * Any thread; nothing here keeps state between calls.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "transports/span.h"

#define RH_JSON_DEPTH_MAX 64

enum rh_json_kind {
    RH_JSON_INVALID,
    RH_JSON_NULL,
    RH_JSON_FALSE,
    RH_JSON_TRUE,
    RH_JSON_NUMBER,
    RH_JSON_STRING,
    RH_JSON_ARRAY,
    RH_JSON_OBJECT,
};

/* Validates the one JSON value at the start of @data (leading whitespace allowed) and returns
 * the bytes up to its end (whitespace before it included, none after), or -EPROTO with
 * @reason set when it is not valid JSON, is nested deeper than RH_JSON_DEPTH_MAX, or ends
 * early (a truncated value is malformed: callers frame messages before parsing them). Strings
 * must be well-formed UTF-8; a \u escape of a lone surrogate is refused too, since it has no
 * UTF-8 form to decode to. @reason may be NULL. */
ssize_t rh_json_value_len(const uint8_t *data, size_t len, const char **reason);

/* Kind of a value already validated, with surrounding whitespace trimmed by the reader. */
enum rh_json_kind rh_json_kind_of(struct rh_span value);

/* Iterates the elements of a validated array, or the members of a validated object. */
struct rh_json_iter {
    const uint8_t *at;
    const uint8_t *end;
};
void rh_json_iter_init(struct rh_json_iter *it, struct rh_span container);
/* Yields the next element (@key is left untouched for arrays; pass NULL) or member (@key is
 * the member name as a string value, quotes included). Values have no surrounding whitespace.
 * Returns false after the last one. */
bool rh_json_iter_next(struct rh_json_iter *it, struct rh_span *key, struct rh_span *value);

/* Decodes a validated string value (quotes included) into UTF-8 in @out. Returns the decoded
 * length, -EMSGSIZE when it does not fit in @out_cap, or -EINVAL when @value is not a string. */
ssize_t rh_json_string_decode(struct rh_span value, uint8_t *out, size_t out_cap);
/* True when the validated string value @value decodes to exactly @lit. */
bool rh_json_string_eq(struct rh_span value, const char *lit);
/* Parses a validated number that is an integer in int64 range. Returns 0 or -ERANGE/-EINVAL. */
int rh_json_number_to_i64(struct rh_span value, int64_t *out);
/* Parses a validated number as a double. Returns 0, or -EINVAL when it is not a JSON number
 * or overflows a double (1e400). */
int rh_json_number_to_double(struct rh_span value, double *out);

/* Appends @len bytes of UTF-8 at @s to *@bufp as a JSON string literal: quotes, the escapes
 * JSON requires, and every control character escaped (so 0x1E never appears unescaped). @s is
 * expected to be valid UTF-8 (decoded JSON always is); each byte that is not part of a
 * well-formed sequence is written as \ufffd, so the output is valid JSON whatever @s holds. */
void rh_json_write_string(struct rh_buf **bufp, const void *s, size_t len);
