#pragma once
/*
 * transports/sse.h - Server-Sent Events (the WHATWG event-stream format) for two surfaces:
 * the SignalR Server-Sent Events transport, whose events carry only `data:` lines of whole hub
 * messages, and the plain EventSource stream, whose events name the hub method (`event:`),
 * carry its arguments as JSON (`data:`) and a resumable position (`id:`).
 *
 * A payload is written as one `data:` line per line of it: a line ends at CR LF, LF or a lone
 * CR, as an EventSource reads it. The client joins the lines with LF, so a payload reaches it
 * unchanged except that its line ends become LF, which JSON does not mind (JSON strings cannot
 * hold a raw line end; only whitespace between tokens can). Events are built once into shared
 * buffers, like WebSocket frames.
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "transports/span.h"

/* Bytes of an event id "<epoch>-<seq>" at most: 8 hex digits, '-', 20 decimal digits. */
#define RH_SSE_EVENT_ID_MAX 29

/* A SignalR transport event holding @payload (whole hub messages, not empty): `data: ` lines
 * ending in CR LF, then an empty line, as ASP.NET writes them. */
struct rh_buf *rh_sse_data_event_new(struct rh_span payload);

/* The `event:` and `data:` lines and the terminating empty line of a plain event: @name is
 * the event type (no CR or LF: check with rh_sse_is_event_name), @data its text. An id line,
 * when the stream has one, goes before it (rh_sse_write_id). */
struct rh_buf *rh_sse_named_event_new(struct rh_span name, struct rh_span data);

/* Whether @name can be an event type: 1 to 255 bytes, no CR, LF or NUL. */
bool rh_sse_is_event_name(struct rh_span name);

/* Writes "id: <epoch>-<seq>\n" into @out (RH_SSE_EVENT_ID_MAX + 6 bytes at least, a NUL
 * included) and returns its length. rh_sse_format_id writes the id text alone (into
 * RH_SSE_EVENT_ID_MAX + 1 bytes at least: it ends with a NUL too). */
uint32_t rh_sse_write_id(char *out, uint32_t epoch, uint64_t seq);
uint32_t rh_sse_format_id(char *out, uint32_t epoch, uint64_t seq);

/* Parses an event id written by rh_sse_format_id. Returns false for anything else. */
bool rh_sse_parse_id(struct rh_span text, uint32_t *epoch, uint64_t *seq);
