#pragma once
/*
 * transports/hub_transcode.h - re-encodes hub argument values between JSON and MessagePack, so a
 * JSON client and a MessagePack client of the same hub see the same values (strings, numbers,
 * booleans, null, arrays, maps). Values forwarded between clients of one protocol are never
 * transcoded: they are copied as the sender wrote them.
 *
 * The mapping, where the two differ:
 * - JSON numbers: an integer that fits int64 becomes the smallest MessagePack int; any other
 *   number becomes an int when it is integral and below 2^53 in magnitude (as the JS client
 *   would encode it after JSON.parse: 1.0 and 1e3 are ints), else float64 (a number too large
 *   for a double becomes +/-infinity, as JSON.parse makes it).
 * - MessagePack floats: the shortest text that reads back as the same float32 or float64
 *   (printf %g, at most 9 or 17 digits; the server never calls setlocale, so '.' is the decimal
 *   point); NaN and +/-infinity have no JSON form and become null, as JSON.stringify does.
 * - MessagePack str: UTF-8 as it is; bytes that are not valid UTF-8 become U+FFFD, as the JS
 *   client's decoder would show them.
 * - MessagePack bin: a base64 string (RFC 4648, padded), as ASP.NET writes byte[] in JSON. A
 *   JSON string stays a str on the way back: base64 is not guessed.
 * - MessagePack map keys: str, or an int written as its decimal text (JS objects do the same);
 *   other key kinds are -EPROTO.
 * - MessagePack timestamp (ext -1, all three forms): the ISO 8601 text the JS client's
 *   JSON.stringify(Date) gives, to the millisecond ("2024-01-02T03:04:05.678Z", years outside
 *   0..9999 as +/-YYYYYY); outside the range of a JS Date it is null. Other ext types are
 *   -EPROTO: there is no JSON form for them.
 * - Nesting deeper than RH_HUB_MSGPACK_DEPTH_MAX containers is -EPROTO either way.
 *
 * Any thread; nothing here keeps state between calls.
 */
#include <stdint.h>

#include "core/buf.h"
#include "transports/hub.h"
#include "transports/span.h"

/* Appends @value, one value encoded as @from, to *@out encoded as @to (the caller holds the
 * only reference to *@out). The same codec on both sides copies the bytes; an empty @value
 * appends nothing (writers take an empty span as null). A JSON @value must be one value
 * already validated (rh_json_value_len, as the JSON hub parser does); whitespace around it is
 * allowed. A MessagePack @value is checked here: exactly one value, nothing after it.
 * Returns 0, or -EPROTO when the value is invalid or has no form in @to (see above); *@out
 * then holds what it held before (its capacity may have grown). */
int rh_hub_transcode_value(enum rh_hub_codec from, struct rh_span value, enum rh_hub_codec to,
                           struct rh_buf **out);

/* Transcodes @count values, as rh_hub_transcode_value, one after another into *@out, and sets
 * @converted[i] to the bytes of each. The spans point into *@out: valid until *@out is next
 * grown or freed. Returns 0, or -EPROTO for the first value that fails (*@out then holds what
 * it held before). For a message's arguments: pass m->args and m->arg_count. */
int rh_hub_transcode_values(enum rh_hub_codec from, const struct rh_span *values, uint32_t count,
                            enum rh_hub_codec to, struct rh_buf **out, struct rh_span *converted);
