/*
 * tests/fuzz/fuzz_sse.c - SSE framing against a reader written from the WHATWG event-stream
 * rules (HTML §9.2.6): any payload, framed as a SignalR data event or as a named event, reads
 * back as exactly one event whose data is the payload with every line end (CR LF, LF, lone CR)
 * made LF and one trailing line end dropped, with the right type, and with the id line written
 * before it. Two frames in a row read back as two events (a frame's last line end cannot join
 * the next frame's first byte). Any input that rh_sse_is_event_name accepts survives as an
 * event type. And event ids: whatever rh_sse_parse_id accepts, rh_sse_format_id writes back byte
 * for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/buf.h"
#include "transports/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EVENTS_MAX 2

/* What a browser's EventSource hands to its listeners. */
struct event {
    char type[300];
    char id[RH_SSE_EVENT_ID_MAX + 1];
    uint8_t *data; /* capacity: the length of the stream read */
    size_t data_len;
};

struct stream {
    int count; /* events dispatched */
    struct event events[EVENTS_MAX];
};

static void read_stream(const uint8_t *in, size_t len, struct stream *s);
static void read_field(const uint8_t *line, size_t line_len, uint8_t *data, size_t *data_len,
                       char *type, char *id);
static size_t normalize(const uint8_t *in, size_t len, uint8_t *out);
static void check_event(const struct event *ev, const char *type, const char *id,
                        const uint8_t *data, size_t data_len);
static void check_frame(struct rh_buf *frame, const char *type, const uint8_t *expected,
                        size_t expected_len);
static void check_named_with_id(struct rh_span payload, const uint8_t *expected,
                                size_t expected_len);
static void check_name(struct rh_span name);
static void check_id(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    struct rh_span payload = rh_span_make(data, (uint32_t)size);
    uint8_t *expected = malloc(size + 1);
    size_t expected_len = normalize(data, size, expected);

    check_frame(rh_sse_data_event_new(payload), "message", expected, expected_len);
    check_frame(rh_sse_named_event_new(rh_span_make("update", 6), payload), "update", expected,
                expected_len);
    check_named_with_id(payload, expected, expected_len);
    free(expected);

    check_name(payload);
    check_id(data, size);
    return 0;
}

/* Reads @len bytes of an event stream as a browser does: lines end at CR LF, LF or a lone CR;
 * "field: value" with one optional space after the colon; "data" appends its value and a LF;
 * an empty line dispatches (when "data" came) with the last LF removed, then resets. */
static void read_stream(const uint8_t *in, size_t len, struct stream *s)
{
    uint8_t *data = malloc(len + 1);
    size_t data_len = 0, at = 0;
    char type[300] = "", id[RH_SSE_EVENT_ID_MAX + 1] = "";

    while (at < len) {
        size_t end = at;
        while (end < len && in[end] != '\r' && in[end] != '\n')
            end++;
        RH_ASSERT(end < len); /* a frame ends every line it starts */
        const uint8_t *line = in + at;
        size_t line_len = end - at;
        at = end + 1;
        if (in[end] == '\r' && at < len && in[at] == '\n') at++;
        if (line_len) {
            read_field(line, line_len, data, &data_len, type, id);
            continue;
        }
        if (data_len) {
            RH_ASSERT(s->count < EVENTS_MAX);
            struct event *ev = &s->events[s->count++];
            strcpy(ev->type, *type ? type : "message");
            strcpy(ev->id, id); /* the last event id outlives the event */
            ev->data_len = data_len - 1;
            memcpy(ev->data, data, ev->data_len);
        }
        data_len = 0;
        *type = '\0';
    }
    RH_ASSERT(!data_len); /* no event left undispatched at the end of a frame */
    free(data);
}

static void read_field(const uint8_t *line, size_t line_len, uint8_t *data, size_t *data_len,
                       char *type, char *id)
{
    const uint8_t *colon = memchr(line, ':', line_len);
    RH_ASSERT(colon != NULL); /* ringhub writes no comments or bare names */
    RH_ASSERT(colon != line);
    size_t name_len = (size_t)(colon - line);
    const uint8_t *value = colon + 1;
    size_t value_len = line_len - name_len - 1;
    if (value_len && *value == ' ') {
        value++;
        value_len--;
    }

    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        memcpy(data + *data_len, value, value_len);
        *data_len += value_len;
        data[(*data_len)++] = '\n';
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        RH_ASSERT(value_len < 300);
        RH_ASSERT(!memchr(value, '\0', value_len));
        memcpy(type, value, value_len);
        type[value_len] = '\0';
    } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
        RH_ASSERT(value_len <= RH_SSE_EVENT_ID_MAX);
        RH_ASSERT(!memchr(value, '\0', value_len));
        memcpy(id, value, value_len);
        id[value_len] = '\0';
    } else {
        RH_ASSERT(!"a field ringhub does not write");
    }
}

/* @in with CR LF, lone CR and LF all made LF, and one trailing line end dropped. */
static size_t normalize(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\r') {
            out[n++] = '\n';
            if (i + 1 < len && in[i + 1] == '\n') i++;
        } else {
            out[n++] = in[i];
        }
    }
    if (n && out[n - 1] == '\n') n--;
    return n;
}

static void check_event(const struct event *ev, const char *type, const char *id,
                        const uint8_t *data, size_t data_len)
{
    RH_ASSERT(strcmp(ev->type, type) == 0);
    RH_ASSERT(strcmp(ev->id, id) == 0);
    RH_ASSERT(ev->data_len == data_len);
    RH_ASSERT(data_len == 0 || memcmp(ev->data, data, data_len) == 0);
}

/* @frame alone reads as one event, and twice in a row as two; drops @frame. An empty payload
 * too: "data: " and the empty line dispatch an event with empty data. */
static void check_frame(struct rh_buf *frame, const char *type, const uint8_t *expected,
                        size_t expected_len)
{
    RH_ASSERT(frame->len == frame->cap); /* sized exactly in advance */
    size_t len = frame->len;
    uint8_t *twice = malloc(2 * len);
    memcpy(twice, frame->data, len);
    memcpy(twice + len, frame->data, len);

    struct stream s = {0};
    for (int i = 0; i < EVENTS_MAX; i++)
        s.events[i].data = malloc(2 * len);
    read_stream(frame->data, len, &s);
    RH_ASSERT(s.count == 1);
    check_event(&s.events[0], type, "", expected, expected_len);

    s.count = 0;
    read_stream(twice, 2 * len, &s);
    RH_ASSERT(s.count == 2);
    check_event(&s.events[0], type, "", expected, expected_len);
    check_event(&s.events[1], type, "", expected, expected_len);

    for (int i = 0; i < EVENTS_MAX; i++)
        free(s.events[i].data);
    free(twice);
    rh_buf_unref(frame);
}

/* As the plain EventSource stream writes an event: its id line, then the named event. */
static void check_named_with_id(struct rh_span payload, const uint8_t *expected,
                                size_t expected_len)
{
    uint32_t epoch = 0;
    uint64_t seq = 0;
    memcpy(&epoch, payload.ptr, payload.len < sizeof(epoch) ? payload.len : sizeof(epoch));
    memcpy(&seq, payload.ptr, payload.len < sizeof(seq) ? payload.len : sizeof(seq));

    char id[RH_SSE_EVENT_ID_MAX + 1];
    uint32_t id_len = rh_sse_format_id(id, epoch, seq);
    struct rh_buf *frame = rh_buf_new(RH_SSE_EVENT_ID_MAX + 6);
    frame->len = rh_sse_write_id((char *)frame->data, epoch, seq);
    RH_ASSERT(frame->len == id_len + 5);
    struct rh_buf *event = rh_sse_named_event_new(rh_span_make("dataUpdate", 10), payload);
    rh_buf_append(&frame, event->data, event->len);
    rh_buf_unref(event);

    struct stream s = {0};
    s.events[0].data = malloc(frame->len);
    read_stream(frame->data, frame->len, &s);
    RH_ASSERT(s.count == 1);
    check_event(&s.events[0], "dataUpdate", id, expected, expected_len);
    free(s.events[0].data);
    rh_buf_unref(frame);
}

/* Any name rh_sse_is_event_name accepts reads back as the event type, byte for byte. */
static void check_name(struct rh_span name)
{
    if (!rh_sse_is_event_name(name)) return;
    RH_ASSERT(name.len >= 1);
    RH_ASSERT(name.len <= 255);
    RH_ASSERT(!memchr(name.ptr, '\r', name.len));
    RH_ASSERT(!memchr(name.ptr, '\n', name.len));

    char type[256];
    memcpy(type, name.ptr, name.len);
    type[name.len] = '\0';
    struct rh_buf *frame = rh_sse_named_event_new(name, rh_span_make("{}", 2));
    RH_ASSERT(frame->len == frame->cap);
    struct stream s = {0};
    s.events[0].data = malloc(frame->len);
    read_stream(frame->data, frame->len, &s);
    RH_ASSERT(s.count == 1);
    check_event(&s.events[0], type, "", (const uint8_t *)"{}", 2);
    free(s.events[0].data);
    rh_buf_unref(frame);
}

/* An accepted id is the one spelling rh_sse_format_id writes for it. */
static void check_id(const uint8_t *data, size_t size)
{
    uint32_t epoch;
    uint64_t seq;
    if (!rh_sse_parse_id(rh_span_make(data, (uint32_t)size), &epoch, &seq)) return;
    RH_ASSERT(size >= 10);
    RH_ASSERT(size <= RH_SSE_EVENT_ID_MAX);

    char text[RH_SSE_EVENT_ID_MAX + 1];
    uint32_t len = rh_sse_format_id(text, epoch, seq);
    RH_ASSERT(len == size);
    RH_ASSERT(memcmp(text, data, size) == 0);
    char line[RH_SSE_EVENT_ID_MAX + 6];
    len = rh_sse_write_id(line, epoch, seq);
    RH_ASSERT(len == size + 5);
    RH_ASSERT(memcmp(line, "id: ", 4) == 0);
    RH_ASSERT(memcmp(line + 4, data, size) == 0);
    RH_ASSERT(line[len - 1] == '\n');
}
