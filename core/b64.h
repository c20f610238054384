#pragma once
/*
 * core/b64.h - base64url without padding (RFC 4648 §5), the URL-safe form of connection ids and
 * tokens. Any thread.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Characters rh_b64url_encode writes for @len bytes (no NUL counted). */
#define RH_B64URL_LEN(len) (((len)*4 + 2) / 3)

/* Writes @len bytes at @in as base64url into @out (RH_B64URL_LEN(len) + 1 bytes, NUL added). */
void rh_b64url_encode(const uint8_t *in, size_t len, char *out);
/* Decodes @text_len characters into @out (at most @out_cap bytes). Returns the byte count, or
 * -EINVAL for a character outside the alphabet, an impossible length or non-zero spare bits,
 * or -EMSGSIZE when @out is too small. */
ssize_t rh_b64url_decode(const char *text, size_t text_len, uint8_t *out, size_t out_cap);
