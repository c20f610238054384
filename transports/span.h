#pragma once
/*
 * transports/span.h - a view of bytes owned by someone else: a parsed request or message points
 * into the buffer it was parsed from instead of copying. A span is valid only as long as that
 * buffer is; whoever keeps one longer copies it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct rh_span {
    const uint8_t *ptr;
    uint32_t len;
};

static inline struct rh_span rh_span_make(const void *ptr, uint32_t len);
static inline bool rh_span_eq_str(struct rh_span s, const char *lit);
static inline bool rh_span_eq_nocase(struct rh_span s, const char *lit);
static inline bool rh_span_eq(struct rh_span a, struct rh_span b);

static inline struct rh_span rh_span_make(const void *ptr, uint32_t len)
{
    return (struct rh_span){.ptr = ptr, .len = len};
}

static inline bool rh_span_eq_str(struct rh_span s, const char *lit)
{
    size_t n = strlen(lit);
    /* n == 0 first: an empty span may have a NULL pointer, which memcmp must not get. */
    return s.len == n && (n == 0 || memcmp(s.ptr, lit, n) == 0);
}

/* ASCII case-insensitive comparison, for header names, tokens and hub method names. */
static inline bool rh_span_eq_nocase(struct rh_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && (n == 0 || strncasecmp((const char *)s.ptr, lit, n) == 0);
}

static inline bool rh_span_eq(struct rh_span a, struct rh_span b)
{
    return a.len == b.len && (!a.len || memcmp(a.ptr, b.ptr, a.len) == 0);
}
