/*
 * shards/hub_lp.c - transport requests (rh_hub_request): a poll, POST or DELETE forwarded to
 * the shard of its connection and answered back over the rings, and long polling itself. See hub.h.
 */
#include "shards/hub_internal.h"

#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "transports/hub_json.h"

static void answer(struct hub_shard *hs, uint64_t reply_to, int status, enum rh_front_body kind,
                   struct rh_span body);
static struct rh_blob *request_pack(const struct rh_hub_request *req);
static void lp_poll(struct rh_hub_session *h, uint64_t reply_to);

void rh_hub_request(struct rh_shard *s, const struct rh_hub_request *req)
{
    struct hub_shard *hs = rh_shard_app(s);
    int owner = rh_hub_id_shard(s, (const char *)req->token.ptr, req->token.len);
    if (owner < 0) {
        hub_answer_text(hs, req->reply_to, 404, "No Connection with that ID");
        return;
    }
    if ((uint32_t)owner == rh_shard_idx(s)) {
        hub_transport_request(hs, req);
        return;
    }
    rh_shard_post(s, (uint32_t)owner, request_pack(req));
}

/* A POST, poll or DELETE, on the shard of its connection; answers come from here. */
void hub_transport_request(struct hub_shard *hs, const struct rh_hub_request *req)
{
    uint32_t slot;
    struct hub_link *l = hub_link_find(hs, req->token, &slot);
    struct rh_hub_session *h = l && l->state == LINK_ATTACHED ? l->session : NULL;
    bool is_other_hub = l && l->hub_hash != (uint32_t)rh_hash(req->hub.ptr, req->hub.len);
    if (!l || is_other_hub || (!h && req->op != RH_HUB_OP_POLL)) {
        hub_answer_text(hs, req->reply_to, 404, "No Connection with that ID");
        return;
    }
    switch (req->op) {
    case RH_HUB_OP_POLL:
        if (!h) {
            /* The first poll: long polling starts, and the poll is answered at once. */
            hs->negotiated_count--;
            hub_session_new(hs, slot, TRANSPORT_LP, req->hub, &req->who);
            answer(hs, req->reply_to, 200, RH_FRONT_BINARY, rh_span_make(NULL, 0));
        } else if (h->transport != TRANSPORT_LP) {
            hub_answer_text(hs, req->reply_to, 400, "Cannot change transports mid-connection");
        } else {
            lp_poll(h, req->reply_to);
        }
        return;
    case RH_HUB_OP_POST:
        if (h->transport == TRANSPORT_WS) {
            hub_answer_text(hs, req->reply_to, 405,
                            "POST requests are not allowed for WebSocket connections.");
            return;
        }
        if (h->is_ending) {
            hub_answer_text(hs, req->reply_to, 404, "No Connection with that ID");
            return;
        }
        hub_session_input(h, req->body.ptr, req->body.len);
        hub_answer_text(hs, req->reply_to, 200, "");
        if (h->is_ending) hub_session_finish(h);
        return;
    case RH_HUB_OP_DELETE:
        if (h->transport != TRANSPORT_LP) {
            hub_answer_text(hs, req->reply_to, 400,
                            "Cannot terminate this connection using the DELETE endpoint.");
            return;
        }
        hub_answer_text(hs, req->reply_to, 202, "");
        rh_hub_session_free(h); /* a held poll gets 204 */
        return;
    }
}

/* Answers the request connection @reply_to waits on: directly when it is on this shard, else
 * over the rings. */
static void answer(struct hub_shard *hs, uint64_t reply_to, int status, enum rh_front_body kind,
                   struct rh_span body)
{
    if (hub_remote_answer(hs, reply_to, status)) return; /* for another node, or nobody */
    uint32_t shard = rh_conn_id_shard(reply_to);
    if (shard == rh_shard_idx(hs->shard)) {
        rh_front_answer(hs->shard, reply_to, status, kind, body);
        return;
    }
    struct rh_blob *b = rh_blob_new(BLOB_ANSWER, 1, NULL, 3 + body.len);
    uint16_t status16 = (uint16_t)status;
    b->data[0] = (uint8_t)kind;
    memcpy(b->data + 1, &status16, 2);
    if (body.len) memcpy(b->data + 3, body.ptr, body.len);
    b->arg = reply_to;
    rh_shard_post(hs->shard, shard, b);
}

void hub_answer_text(struct hub_shard *hs, uint64_t reply_to, int status, const char *text)
{
    answer(hs, reply_to, status, RH_FRONT_TEXT, rh_span_make(text, (uint32_t)strlen(text)));
}

void hub_answer_json(struct hub_shard *hs, uint64_t reply_to, int status, const char *json)
{
    answer(hs, reply_to, status, RH_FRONT_JSON, rh_span_make(json, (uint32_t)strlen(json)));
}

void hub_answer_blob_received(struct hub_shard *hs, struct rh_blob *b)
{
    uint16_t status;
    if (b->len < 3) return;
    memcpy(&status, b->data + 1, 2);
    rh_front_answer(hs->shard, b->arg, status, (enum rh_front_body)b->data[0],
                    rh_span_make(b->data + 3, b->len - 3));
}

/* A transport request as BLOB_REQUEST carries it: u8 op, u8 is_open, u64 reply_to, then hub,
 * token, user and roles each as a u16 length and bytes, and the body as a u32 length and bytes
 * (host order). */
static struct rh_blob *request_pack(const struct rh_hub_request *req)
{
    uint32_t size = 1 + 1 + 8 + 2 + req->hub.len + 2 + req->token.len + 2 + req->who.user.len + 2 +
                    req->who.roles.len + 4 + req->body.len;
    struct rh_blob *b = rh_blob_new(BLOB_REQUEST, 1, NULL, size);
    uint8_t *p = b->data;
    *p++ = (uint8_t)req->op;
    *p++ = req->who.is_open;
    memcpy(p, &req->reply_to, 8);
    p += 8;
    const struct rh_span *short_fields[] = {&req->hub, &req->token, &req->who.user,
                                            &req->who.roles};
    for (int i = 0; i < 4; i++) {
        uint16_t len16 = (uint16_t)short_fields[i]->len;
        memcpy(p, &len16, 2);
        if (len16) memcpy(p + 2, short_fields[i]->ptr, len16);
        p += 2 + len16;
    }
    memcpy(p, &req->body.len, 4);
    if (req->body.len) memcpy(p + 4, req->body.ptr, req->body.len);
    RH_ASSERT(p + 4 + req->body.len == b->data + size);
    return b;
}

bool hub_request_unpack(struct rh_span in, struct rh_hub_request *req)
{
    const uint8_t *p = in.ptr, *end = in.ptr + in.len;
    if (end - p < 10) return false;
    req->op = (enum rh_hub_op) * p++;
    req->who.is_open = *p++ != 0;
    memcpy(&req->reply_to, p, 8);
    p += 8;
    struct rh_span *short_fields[] = {&req->hub, &req->token, &req->who.user, &req->who.roles};
    for (int i = 0; i < 4; i++) {
        uint16_t len16;
        if (end - p < 2) return false;
        memcpy(&len16, p, 2);
        if (end - p - 2 < len16) return false;
        *short_fields[i] = rh_span_make(p + 2, len16);
        p += 2 + len16;
    }
    uint32_t body_len;
    if (end - p < 4) return false;
    memcpy(&body_len, p, 4);
    if ((size_t)(end - p) - 4 != body_len) return false;
    req->body = rh_span_make(p + 4, body_len);
    return req->op <= RH_HUB_OP_DELETE;
}

/* A poll for long-polling session @h: it waits for something to send, unless there is some. */
static void lp_poll(struct rh_hub_session *h, uint64_t reply_to)
{
    struct lp_state *lp = h->lp;
    if (lp->has_waiter) hub_answer_text(hub_shard_self(), lp->waiter, 204, ""); /* superseded */
    lp->has_waiter = true;
    lp->waiter = reply_to;
    lp->since_ms = rh_clock_now_ms();
    if (lp->out_count || h->is_ending)
        hub_lp_answer(h); /* may free @h */
    else
        hub_tick_schedule(h);
}

/* Hub bytes for the client (takes the reference): they wait for a poll. A held poll is
 * answered at the next tick, so that what a loop turn queues goes in one answer. */
void hub_lp_queue(struct rh_hub_session *h, struct rh_buf *bytes)
{
    struct lp_state *lp = h->lp;
    if (lp->out_count == lp->out_cap) {
        lp->out_cap = lp->out_cap ? lp->out_cap * 2 : 4;
        lp->out = rh_realloc(lp->out, lp->out_cap * sizeof(*lp->out));
    }
    lp->out[lp->out_count++] = bytes;
    lp->out_bytes += bytes->len;
    if (lp->has_waiter && !lp->is_answer_due) {
        lp->is_answer_due = true;
        hub_tick_schedule(h);
    }
}

/* Answers the held poll: what is queued, or 204 when the session has ended (and then frees
 * it). */
void hub_lp_answer(struct rh_hub_session *h)
{
    struct hub_shard *hs = hub_shard_self();
    struct lp_state *lp = h->lp;
    lp->is_answer_due = false;
    if (!lp->has_waiter) return;
    if (!lp->out_count) {
        if (!h->is_ending) return;
        rh_hub_session_free(h); /* answers 204 */
        return;
    }
    uint8_t *body = rh_alloc(lp->out_bytes);
    uint32_t at = 0;
    for (uint32_t i = 0; i < lp->out_count; i++) {
        memcpy(body + at, lp->out[i]->data, lp->out[i]->len);
        at += lp->out[i]->len;
        rh_buf_unref(lp->out[i]);
    }
    lp->out_count = 0;
    lp->out_bytes = 0;
    lp->has_waiter = false;
    lp->since_ms = rh_clock_now_ms();
    answer(hs, lp->waiter, 200, RH_FRONT_BINARY, rh_span_make(body, at));
    rh_free(body);
    hub_tick_schedule(h);
}

void hub_lp_tick(struct rh_hub_session *h)
{
    struct hub_shard *hs = hub_shard_self();
    struct lp_state *lp = h->lp;
    int64_t now_ms = rh_clock_now_ms();
    if (h->state != SESSION_READY && !h->is_ending &&
        now_ms >= lp->started_ms + hub_shard_self()->cfg->handshake_timeout_ms) {
        char error[64];
        rh_hub_handshake_error_text(RH_HUB_HANDSHAKE_CANCELED, NULL, error, sizeof(error));
        hub_shard_self()->counts.closed_handshake++;
        hub_end_with_error(h, error);
        lp->is_answer_due = true;
    }
    if (lp->is_answer_due && lp->has_waiter) {
        hub_lp_answer(h); /* may free @h */
        return;
    }
    lp->is_answer_due = false;
    if (lp->has_waiter && now_ms >= lp->since_ms + hs->cfg->poll_timeout_ms) {
        /* Nothing to send: an empty 200, and the client polls again. */
        lp->has_waiter = false;
        lp->since_ms = now_ms;
        hub_answer_text(hs, lp->waiter, 200, "");
    } else if (!lp->has_waiter && now_ms >= lp->since_ms + hs->cfg->disconnect_timeout_ms) {
        rh_log_debug("hub", "connection %llx: no poll for %u ms, dropped",
                     (unsigned long long)hub_session_route(h), hs->cfg->disconnect_timeout_ms);
        rh_hub_session_free(h);
        return;
    }
    hub_tick_schedule(h);
}
