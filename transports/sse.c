/*
 * transports/sse.c - see sse.h.
 */
#include "transports/sse.h"

#include <stdio.h>
#include <string.h>

static uint32_t data_lines_size(struct rh_span payload, uint32_t line_end_len);
static void write_data_lines(struct rh_buf **out, struct rh_span payload, const char *line_end);
static uint32_t next_line(struct rh_span payload, uint32_t at, uint32_t *line_len);

struct rh_buf *rh_sse_data_event_new(struct rh_span payload)
{
    struct rh_buf *out = rh_buf_new(data_lines_size(payload, 2) + 2);
    write_data_lines(&out, payload, "\r\n");
    rh_buf_append(&out, "\r\n", 2);
    return out;
}

struct rh_buf *rh_sse_named_event_new(struct rh_span name, struct rh_span data)
{
    struct rh_buf *out = rh_buf_new(7 + name.len + 1 + data_lines_size(data, 1) + 1);
    rh_buf_append(&out, "event: ", 7);
    rh_buf_append(&out, name.ptr, name.len);
    rh_buf_append(&out, "\n", 1);
    write_data_lines(&out, data, "\n");
    rh_buf_append(&out, "\n", 1);
    return out;
}

bool rh_sse_is_event_name(struct rh_span name)
{
    if (!name.len || name.len > 255) return false;
    for (uint32_t i = 0; i < name.len; i++)
        if (name.ptr[i] == '\r' || name.ptr[i] == '\n' || name.ptr[i] == '\0') return false;
    return true;
}

uint32_t rh_sse_format_id(char *out, uint32_t epoch, uint64_t seq)
{
    return (uint32_t)sprintf(out, "%08x-%llu", epoch, (unsigned long long)seq);
}

uint32_t rh_sse_write_id(char *out, uint32_t epoch, uint64_t seq)
{
    memcpy(out, "id: ", 4);
    uint32_t len = 4 + rh_sse_format_id(out + 4, epoch, seq);
    out[len++] = '\n';
    return len;
}

bool rh_sse_parse_id(struct rh_span text, uint32_t *epoch, uint64_t *seq)
{
    if (text.len < 10 || text.len > RH_SSE_EVENT_ID_MAX || text.ptr[8] != '-') return false;
    uint32_t e = 0;
    for (uint32_t i = 0; i < 8; i++) {
        uint8_t c = text.ptr[i];
        uint32_t digit = c >= '0' && c <= '9'   ? (uint32_t)(c - '0')
                         : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
                                                : 16;
        if (digit == 16) return false;
        e = e << 4 | digit;
    }
    uint64_t s = 0;
    for (uint32_t i = 9; i < text.len; i++) {
        uint8_t c = text.ptr[i];
        if (c < '0' || c > '9') return false;
        uint64_t digit = (uint64_t)(c - '0');
        if (s > (UINT64_MAX - digit) / 10) return false;
        s = s * 10 + digit;
    }
    if (text.len > 10 && text.ptr[9] == '0') return false; /* one spelling per id */
    *epoch = e;
    *seq = s;
    return true;
}

/* Bytes of the "data: " lines of @payload, each ended by @line_end_len bytes. */
static uint32_t data_lines_size(struct rh_span payload, uint32_t line_end_len)
{
    uint32_t size = 0, at = 0, line_len;
    do {
        uint32_t next = next_line(payload, at, &line_len);
        size += 6 + line_len + line_end_len;
        at = next;
    } while (at < payload.len);
    return size;
}

static void write_data_lines(struct rh_buf **out, struct rh_span payload, const char *line_end)
{
    uint32_t at = 0, line_len, end_len = (uint32_t)strlen(line_end);
    do {
        uint32_t next = next_line(payload, at, &line_len);
        rh_buf_append(out, "data: ", 6);
        if (line_len) rh_buf_append(out, payload.ptr + at, line_len);
        rh_buf_append(out, line_end, end_len);
        at = next;
    } while (at < payload.len);
}

/* The line of @payload starting at @at: its length without the line end, and where the next
 * one starts (payload.len when it was the last). A payload ending in a line end has no empty
 * line after it: the event's terminating empty line would otherwise come early. */
static uint32_t next_line(struct rh_span payload, uint32_t at, uint32_t *line_len)
{
    uint32_t i = at;
    while (i < payload.len && payload.ptr[i] != '\r' && payload.ptr[i] != '\n')
        i++;
    *line_len = i - at;
    if (i == payload.len) return i;
    if (payload.ptr[i++] == '\r' && i < payload.len && payload.ptr[i] == '\n') i++;
    return i;
}
