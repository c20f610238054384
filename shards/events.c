/*
 * shards/events.c - see events.h. The history is a ring of the last history_max events, each
 * one buffer holding its id line and its lines, shared with every stream's send queue.
 */
#include "shards/events.h"

#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/list.h"
#include "transports/json.h"
#include "transports/sse.h"

struct kept_event {
    uint64_t seq;
    struct rh_buf *bytes; /* id line, event and data lines, empty line */
};

struct rh_events_feed {
    uint32_t epoch;
    uint32_t history_max;
    uint64_t seq;                             /* of the newest event; 0 before the first */
    struct kept_event *kept;                  /* ring, grown up to history_max */
    uint32_t kept_cap, kept_count, kept_head; /* kept_head: index of the oldest */
    struct rh_list streams;                   /* struct rh_events_stream */
    int64_t last_activity_ms;
};

struct rh_events_stream {
    struct rh_list link;
    struct rh_conn *conn;
    struct rh_events_feed *feed;
};

static void keep(struct rh_events_feed *f, struct rh_buf *bytes);
static const struct kept_event *kept_at(const struct rh_events_feed *f, uint32_t idx);
static bool replay_after(struct rh_events_feed *f, struct rh_conn *c, struct rh_span last_id);
static void write_resync(struct rh_events_feed *f, struct rh_conn *c, struct rh_span last_id);

struct rh_events_feed *rh_events_feed_new(uint32_t history_max)
{
    struct rh_events_feed *f = rh_calloc(1, sizeof(*f));
    if (RAND_bytes((unsigned char *)&f->epoch, sizeof(f->epoch)) != 1)
        RH_ASSERT(!"RAND_bytes failed");
    f->history_max = history_max;
    rh_list_init(&f->streams);
    return f;
}

void rh_events_feed_free(struct rh_events_feed *f)
{
    RH_ASSERT(rh_list_is_empty(&f->streams));
    for (uint32_t i = 0; i < f->kept_count; i++)
        rh_buf_unref(kept_at(f, i)->bytes);
    rh_free(f->kept);
    rh_free(f);
}

void rh_events_publish(struct rh_events_feed *f, struct rh_buf *event, int64_t now_ms)
{
    char id[RH_SSE_EVENT_ID_MAX + 8];
    uint32_t id_len = rh_sse_write_id(id, f->epoch, ++f->seq);
    struct rh_buf *bytes = rh_buf_new(id_len + event->len);
    rh_buf_append(&bytes, id, id_len);
    rh_buf_append(&bytes, event->data, event->len);
    struct rh_list *node;
    rh_list_for_each(node, &f->streams) {
        rh_conn_send(rh_list_entry(node, struct rh_events_stream, link)->conn, bytes);
    }
    keep(f, bytes);
    f->last_activity_ms = now_ms;
}

struct rh_events_stream *rh_events_attach(struct rh_events_feed *f, struct rh_conn *c,
                                          struct rh_span last_id, int64_t now_ms)
{
    char retry[40];
    int n = snprintf(retry, sizeof(retry), "retry: %u\n:\n", RH_EVENTS_RETRY_MS);
    rh_conn_send_copy(c, retry, (uint32_t)n);
    if (last_id.len && !replay_after(f, c, last_id)) write_resync(f, c, last_id);
    struct rh_events_stream *st = rh_calloc(1, sizeof(*st));
    st->conn = c;
    st->feed = f;
    rh_list_push_back(&f->streams, &st->link);
    f->last_activity_ms = now_ms;
    return st;
}

void rh_events_detach(struct rh_events_stream *st)
{
    rh_list_unlink(&st->link);
    rh_free(st);
}

struct rh_events_feed *rh_events_stream_feed(const struct rh_events_stream *st)
{
    return st->feed;
}

bool rh_events_has_streams(const struct rh_events_feed *f)
{
    return !rh_list_is_empty(&f->streams);
}

int64_t rh_events_last_activity_ms(const struct rh_events_feed *f)
{
    return f->last_activity_ms;
}

void rh_events_heartbeat(struct rh_events_feed *f, int64_t now_ms)
{
    struct rh_list *node;
    rh_list_for_each(node, &f->streams) {
        rh_conn_send_copy(rh_list_entry(node, struct rh_events_stream, link)->conn, ":\n", 2);
    }
    f->last_activity_ms = now_ms;
}

/* Keeps @bytes (a new reference) as the newest event, dropping the oldest when full. */
static void keep(struct rh_events_feed *f, struct rh_buf *bytes)
{
    if (f->kept_count == f->kept_cap && f->kept_cap < f->history_max) {
        /* Grow, unrolling the ring so that the oldest is first again. */
        uint32_t cap = f->kept_cap ? f->kept_cap * 2 : 8;
        if (cap > f->history_max) cap = f->history_max;
        struct kept_event *kept = rh_alloc(cap * sizeof(*kept));
        for (uint32_t i = 0; i < f->kept_count; i++)
            kept[i] = *kept_at(f, i);
        rh_free(f->kept);
        f->kept = kept;
        f->kept_cap = cap;
        f->kept_head = 0;
    }
    if (f->kept_count == f->kept_cap) {
        rh_buf_unref(f->kept[f->kept_head].bytes);
        f->kept[f->kept_head] = (struct kept_event){f->seq, bytes};
        f->kept_head = (f->kept_head + 1) % f->kept_cap;
        return;
    }
    f->kept[(f->kept_head + f->kept_count++) % f->kept_cap] = (struct kept_event){f->seq, bytes};
}

/* The @idx-th oldest kept event. */
static const struct kept_event *kept_at(const struct rh_events_feed *f, uint32_t idx)
{
    return &f->kept[(f->kept_head + idx) % f->kept_cap];
}

/* Writes the events after @last_id to @c when the history still holds every one of them;
 * returns false (writing nothing) when it does not or @last_id is not one of this feed's. */
static bool replay_after(struct rh_events_feed *f, struct rh_conn *c, struct rh_span last_id)
{
    uint32_t epoch;
    uint64_t seq;
    if (!rh_sse_parse_id(last_id, &epoch, &seq) || epoch != f->epoch || seq > f->seq) return false;
    uint64_t oldest = f->kept_count ? kept_at(f, 0)->seq : f->seq + 1;
    if (seq + 1 < oldest) return false; /* some were dropped from the history */
    for (uint32_t i = 0; i < f->kept_count; i++) {
        const struct kept_event *e = kept_at(f, i);
        if (e->seq > seq) rh_conn_send(c, e->bytes);
    }
    return true;
}

/* The resync event: the stream cannot be continued from @last_id, and resumes from now. */
static void write_resync(struct rh_events_feed *f, struct rh_conn *c, struct rh_span last_id)
{
    char id[RH_SSE_EVENT_ID_MAX + 8];
    uint32_t id_len = rh_sse_write_id(id, f->epoch, f->seq);
    static const char head[] = "event: " RH_EVENTS_RESYNC "\ndata: {\"reason\":\"events after "
                               "this id are no longer kept\",\"lastEventId\":";
    struct rh_buf *out = rh_buf_new(id_len + sizeof(head) + 8 + last_id.len * 6);
    rh_buf_append(&out, id, id_len);
    rh_buf_append(&out, head, sizeof(head) - 1);
    /* Escaped, so it is one data line whatever the client sent. */
    rh_json_write_string(&out, last_id.ptr, last_id.len);
    rh_buf_append(&out, "}\n\n", 3);
    rh_conn_send(c, out);
    rh_buf_unref(out);
}
