/* tests/fuzz/fuzz_sse.c - SSE framing against a reader written from the WHATWG event-stream
 * rules: any payload, framed as a SignalR data event or a named event, reads back as exactly one
 * event whose data is the payload with its line ends made LF (one trailing line end dropped),
 * and with the right type. And event ids: whatever rh_sse_parse_id accepts, rh_sse_format_id
 * writes back byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/buf.h"
#include "transports/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct event {
    int count; /* events dispatched */
    char type[300];
    uint8_t *data;
    size_t data_len;
};

/* Reads @len bytes of an event stream as a browser does: lines end at CR LF, LF or CR; "field:
 * value" with one optional space after the colon; data lines joined with LF; an empty line
 * dispatches. */
static void read_stream(const uint8_t *in, size_t len, struct event *ev)
{
    uint8_t *data = malloc(len + 1);
    size_t data_len = 0;
    char type[300] = "";
    size_t at = 0;
    while (at < len) {
        size_t end = at;
        while (end < len && in[end] != '\r' && in[end] != '\n')
            end++;
        RH_ASSERT(end < len); /* every line is terminated */
        const uint8_t *line = in + at;
        size_t line_len = end - at;
        at = end + 1;
        if (in[end] == '\r' && at < len && in[at] == '\n') at++;
        if (!line_len) {
            if (data_len) {
                ev->count++;
                strcpy(ev->type, *type ? type : "message");
                ev->data_len = data_len - 1; /* the last LF is not part of the data */
                memcpy(ev->data, data, ev->data_len);
            }
            data_len = 0;
            *type = '\0';
            continue;
        }
        const uint8_t *colon = memchr(line, ':', line_len);
        RH_ASSERT(colon && colon != line); /* we write no comments or bare fields here */
        size_t name_len = (size_t)(colon - line);
        const uint8_t *value = colon + 1;
        size_t value_len = line_len - name_len - 1;
        if (value_len && *value == ' ') {
            value++;
            value_len--;
        }
        if (name_len == 4 && memcmp(line, "data", 4) == 0) {
            memcpy(data + data_len, value, value_len);
            data_len += value_len;
            data[data_len++] = '\n';
        } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
            RH_ASSERT(value_len < sizeof(type));
            memcpy(type, value, value_len);
            type[value_len] = '\0';
        } else {
            RH_ASSERT(!"a field we do not write");
        }
    }
    free(data);
}

/* @payload with CR LF, CR and LF all made LF, and one trailing line end dropped. */
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

static void check_event(struct rh_buf *frame, const char *type, const uint8_t *expected,
                        size_t expected_len, size_t size)
{
    struct event ev = {.data = malloc(frame->len + 1)};
    read_stream(frame->data, frame->len, &ev);
    /* An empty payload makes "data: " and so an empty event, which browsers do not dispatch;
     * ringhub never frames one (hub messages and JSON values are never empty). */
    if (size) {
        RH_ASSERT(ev.count == 1);
        RH_ASSERT(strcmp(ev.type, type) == 0);
        RH_ASSERT(ev.data_len == expected_len);
        RH_ASSERT(memcmp(ev.data, expected, expected_len) == 0);
    }
    free(ev.data);
    rh_buf_unref(frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    struct rh_span payload = rh_span_make(data, (uint32_t)size);
    uint8_t *expected = malloc(size + 1);
    size_t expected_len = normalize(data, size, expected);
    /* A payload of only a line end has one empty line: the event's data is then empty. */
    check_event(rh_sse_data_event_new(payload), "message", expected, expected_len, size);
    check_event(rh_sse_named_event_new(rh_span_make("update", 6), payload), "update", expected,
                expected_len, size);
    free(expected);

    uint32_t epoch;
    uint64_t seq;
    if (rh_sse_parse_id(payload, &epoch, &seq)) {
        char text[RH_SSE_EVENT_ID_MAX + 1];
        uint32_t len = rh_sse_format_id(text, epoch, seq);
        RH_ASSERT(len == size && memcmp(text, data, size) == 0);
    }
    if (rh_sse_is_event_name(payload)) RH_ASSERT(size > 0 && size < 256);
    return 0;
}
