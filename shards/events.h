#pragma once
/*
 * shards/events.h - the feed of one user's plain EventSource events: numbered, kept for
 * streams that resume, and written to every stream of the user on this shard.
 *
 * An event's id is "<epoch>-<seq>": the epoch is random per feed, so an id from an older feed
 * (one that expired, or another server's) is never mistaken for a position in this one, and
 * seq counts from 1. The last history_max events are kept; a stream that resumes from an id
 * still covered gets every later event first, then the live ones, so it misses nothing and
 * sees nothing twice. One that resumes from an id no longer covered gets a resync event first
 * (RH_EVENTS_RESYNC), so the application can reload what it shows.
 *
 * All calls on the thread of the shard that owns the feed.
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "shards/shard.h"
#include "transports/span.h"

#define RH_EVENTS_RESYNC   "ringhub.resync" /* the event type that says events were missed */
#define RH_EVENTS_RETRY_MS 3000             /* the reconnection delay streams suggest */
#define RH_EVENTS_ID_MAX   257              /* bytes of a Last-Event-ID looked at, with its NUL */

struct rh_events_feed;
struct rh_events_stream;

struct rh_events_feed *rh_events_feed_new(uint32_t history_max);
/* Frees @f and what it keeps; no stream may be attached. */
void rh_events_feed_free(struct rh_events_feed *f);
/* Numbers @event (the event and data lines of one event, rh_sse_named_event_new), keeps it
 * and writes it to every stream. Takes a new reference. */
void rh_events_publish(struct rh_events_feed *f, struct rh_buf *event, int64_t now_ms);
/* Writes the start of a stream on @c (retry hint; the events after @last_id, or a resync
 * event; @last_id empty: none) and attaches it to get every later event. */
struct rh_events_stream *rh_events_attach(struct rh_events_feed *f, struct rh_conn *c,
                                          struct rh_span last_id, int64_t now_ms);
/* Detaches the stream (its connection is closing) and frees it. */
void rh_events_detach(struct rh_events_stream *st);
/* The feed a stream is attached to. */
struct rh_events_feed *rh_events_stream_feed(const struct rh_events_stream *st);
bool rh_events_has_streams(const struct rh_events_feed *f);
/* When the last write to the streams was, or the last stream left. */
int64_t rh_events_last_activity_ms(const struct rh_events_feed *f);
/* Writes a comment line to every stream (a heartbeat: proxies and clients see it alive). */
void rh_events_heartbeat(struct rh_events_feed *f, int64_t now_ms);
