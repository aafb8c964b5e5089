/* The AMQP client on the loop (mq.h).
 *
 * librabbitmq is used for what it does without blocking: encoding and sending frames, and
 * decoding frames already received (amqp_simple_wait_frame_noblock with a zero timeout
 * returns AMQP_STATUS_TIMEOUT at once when nothing is buffered). Its RPC helpers
 * (amqp_login, amqp_queue_declare...) wait for their reply, so the handshake and the setup
 * are ours: `setup` lists the steps of one connection — each sends one method and waits
 * for its -ok — and on_method moves to the next when that -ok arrives. The socket is
 * connected by us (non-blocking) and handed to librabbitmq with amqp_tcp_socket_set_sockfd;
 * librabbitmq closes it in amqp_destroy_connection, after our uv_poll on it is closed. */
#include "services/runtime/mq.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/backoff.h"
#include "lib/buf.h"
#include "lib/err.h"

#define CHANNEL 1

typedef struct pending {
    uint64_t seq;
    fl_mq_confirm_cb cb;
    void *arg;
    fl_span_t *span;
    struct pending *next;
} pending_t;

/* A delivery as the handler sees it, and what we need to ack it. */
typedef struct delivery {
    fl_mq_delivery_t pub;
    uint64_t tag, generation;
    fl_span_t *span;
    char *strings; /* exchange, routing key, queue, message id, one allocation */
    struct delivery *next, **pprev;
} delivery_t;

enum step_kind { S_EXCHANGE, S_QUEUE, S_BIND, S_QOS, S_CONSUME };

/* One TCP connection and its librabbitmq state. */
typedef struct conn {
    struct fl_mq *mq;
    uv_poll_t poll;
    int fd;
    amqp_connection_state_t amqp; /* NULL until the TCP connect finished */
    bool closing;
} conn_t;

struct fl_mq {
    uv_loop_t *loop;
    fl_mq_config_t cfg; /* strings and arrays are our own copies */
    char *user, *password, *host, *vhost;
    int port;
    fl_backoff_t backoff;
    uv_timer_t reconnect_timer, heartbeat_timer;
    conn_t *conn;
    enum { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_SETUP, ST_READY, ST_FAILING } state;
    amqp_method_number_t expect; /* the reply the current step waits for */
    size_t step;                 /* index into the setup steps */
    uint64_t generation;         /* bumped per connection: older deliveries are stale */
    uint64_t next_seq;           /* publisher confirm sequence on this channel */
    pending_t *pend_head, *pend_tail;
    delivery_t *deliveries; /* given to handlers, not acked yet */
    /* the message being assembled from deliver + header + body frames */
    struct {
        bool active, is_delivery;
        uint64_t tag;
        bool redelivered;
        size_t consumer;
        fl_buf_t exchange, rk, body, msgid, traceparent, tracestate;
        size_t body_size;
    } in;
    char **ctags; /* consumer tags of this connection, per consumer */
    fl_mq_stats_t st;
    bool closing;
    int handles_open;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void connect_now(fl_mq_t *mq);
static void conn_lost(fl_mq_t *mq, const char *why);
static void maybe_finish_close(fl_mq_t *mq);

/* ---- copies of the configuration ---- */

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static int copy_config(fl_mq_t *mq, const fl_mq_config_t *c)
{
    mq->cfg = *c;
    fl_mq_config_t *d = &mq->cfg;
    d->exchanges = NULL;
    d->queues = NULL;
    d->bindings = NULL;
    d->consumers = NULL;
    d->url = NULL;
    fl_mq_exchange_t *ex = calloc(c->nexchanges + 1, sizeof *ex);
    fl_mq_queue_t *q = calloc(c->nqueues + 1, sizeof *q);
    fl_mq_binding_t *b = calloc(c->nbindings + 1, sizeof *b);
    fl_mq_consumer_t *co = calloc(c->nconsumers + 1, sizeof *co);
    mq->ctags = calloc(c->nconsumers + 1, sizeof *mq->ctags);
    d->exchanges = ex;
    d->queues = q;
    d->bindings = b;
    d->consumers = co;
    if (!ex || !q || !b || !co || !mq->ctags)
        return FL_ENOMEM;
    for (size_t i = 0; i < c->nexchanges; i++) {
        ex[i] = c->exchanges[i];
        ex[i].name = dup_or_empty(c->exchanges[i].name);
        ex[i].type = strdup(c->exchanges[i].type ? c->exchanges[i].type : "direct");
        if (!ex[i].name || !ex[i].type)
            return FL_ENOMEM;
    }
    for (size_t i = 0; i < c->nqueues; i++) {
        q[i] = c->queues[i];
        if (!(q[i].name = dup_or_empty(c->queues[i].name)))
            return FL_ENOMEM;
    }
    for (size_t i = 0; i < c->nbindings; i++) {
        b[i].queue = dup_or_empty(c->bindings[i].queue);
        b[i].exchange = dup_or_empty(c->bindings[i].exchange);
        b[i].routing_key = dup_or_empty(c->bindings[i].routing_key);
        if (!b[i].queue || !b[i].exchange || !b[i].routing_key)
            return FL_ENOMEM;
    }
    for (size_t i = 0; i < c->nconsumers; i++) {
        co[i] = c->consumers[i];
        if (!c->consumers[i].cb || !(co[i].queue = dup_or_empty(c->consumers[i].queue)))
            return co[i].queue ? FL_EINVAL : FL_ENOMEM;
    }
    if (!d->prefetch)
        d->prefetch = 64;
    if (!d->heartbeat_s)
        d->heartbeat_s = 10;
    if (!d->backoff_min_ms)
        d->backoff_min_ms = 100;
    if (!d->backoff_max_ms)
        d->backoff_max_ms = 5000;
    return 0;
}

static void free_config(fl_mq_t *mq)
{
    fl_mq_config_t *d = &mq->cfg;
    for (size_t i = 0; d->exchanges && i < d->nexchanges; i++) {
        free((char *)d->exchanges[i].name);
        free((char *)d->exchanges[i].type);
    }
    for (size_t i = 0; d->queues && i < d->nqueues; i++)
        free((char *)d->queues[i].name);
    for (size_t i = 0; d->bindings && i < d->nbindings; i++) {
        free((char *)d->bindings[i].queue);
        free((char *)d->bindings[i].exchange);
        free((char *)d->bindings[i].routing_key);
    }
    for (size_t i = 0; d->consumers && i < d->nconsumers; i++)
        free((char *)d->consumers[i].queue);
    for (size_t i = 0; mq->ctags && i < d->nconsumers; i++)
        free(mq->ctags[i]);
    free(mq->ctags);
    free((void *)d->exchanges);
    free((void *)d->queues);
    free((void *)d->bindings);
    free((void *)d->consumers);
    free(mq->user);
    free(mq->password);
    free(mq->host);
    free(mq->vhost);
}

static int parse_url(fl_mq_t *mq, const char *url)
{
    char *copy = strdup(url ? url : "");
    if (!copy)
        return FL_ENOMEM;
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    int rc = FL_EINVAL;
    if (amqp_parse_url(copy, &ci) == AMQP_STATUS_OK && !ci.ssl) {
        mq->user = strdup(ci.user);
        mq->password = strdup(ci.password);
        mq->host = strdup(strcmp(ci.host, "localhost") == 0 ? "127.0.0.1" : ci.host);
        mq->vhost = strdup(ci.vhost);
        mq->port = ci.port;
        rc = mq->user && mq->password && mq->host && mq->vhost ? 0 : FL_ENOMEM;
    }
    free(copy);
    return rc;
}

/* ---- helpers ---- */

static amqp_bytes_t bytes_of(const char *s)
{
    return amqp_cstring_bytes(s ? s : "");
}

static int buf_set(fl_buf_t *b, amqp_bytes_t v)
{
    fl_buf_reset(b);
    return fl_buf_append(b, v.bytes ? v.bytes : "", v.len);
}

/* Sends a method; false when that lost the connection (mq->conn is gone then). */
static bool send_method(fl_mq_t *mq, amqp_channel_t ch, amqp_method_number_t id, void *m,
                        amqp_method_number_t expect)
{
    mq->expect = expect;
    if (amqp_send_method(mq->conn->amqp, ch, id, m) == AMQP_STATUS_OK)
        return true;
    conn_lost(mq, "cannot send");
    return false;
}

/* ---- confirms ---- */

static void complete(fl_mq_t *mq, pending_t *p, int status)
{
    if (p->span) {
        if (status < 0)
            fl_span_set_status(p->span, FL_STATUS_ERROR,
                               status == FL_ECLOSED ? "connection lost" : "nacked");
        fl_span_end(p->span);
    }
    if (status == 0)
        mq->st.confirmed++;
    else if (status == FL_ECLOSED)
        mq->st.lost++;
    else
        mq->st.nacked++;
    if (p->cb)
        p->cb(mq, status, p->arg);
    free(p);
}

/* Completes pending publishes up to tag (or just tag), in order. */
static void on_confirm(fl_mq_t *mq, uint64_t tag, bool multiple, int status)
{
    while (mq->pend_head && mq->pend_head->seq <= tag) {
        pending_t *p = mq->pend_head;
        if (!multiple && p->seq != tag) {
            /* an older one not covered: keep it, look for tag further on */
            pending_t **pp = &p->next;
            while (*pp && (*pp)->seq != tag)
                pp = &(*pp)->next;
            if (*pp) {
                pending_t *hit = *pp;
                *pp = hit->next;
                if (mq->pend_tail == hit) {
                    mq->pend_tail = mq->pend_head;
                    while (mq->pend_tail->next)
                        mq->pend_tail = mq->pend_tail->next;
                }
                complete(mq, hit, status);
            }
            return;
        }
        mq->pend_head = p->next;
        if (!mq->pend_head)
            mq->pend_tail = NULL;
        complete(mq, p, status);
        if (!multiple)
            return;
    }
}

/* ---- the setup steps of one connection ---- */

static void ready(fl_mq_t *mq)
{
    mq->state = ST_READY;
    mq->expect = 0;
    mq->st.connects++;
    fl_backoff_reset(&mq->backoff);
    if (mq->cfg.on_state)
        mq->cfg.on_state(mq, true, "ready", mq->cfg.state_arg);
}

static amqp_table_t durable_args(void)
{
    return amqp_empty_table;
}

/* Sends the next setup step, or declares the client ready. */
static void next_step(fl_mq_t *mq)
{
    size_t i = mq->step++;
    const fl_mq_config_t *c = &mq->cfg;
    if (i < c->nexchanges) {
        const fl_mq_exchange_t *e = &c->exchanges[i];
        amqp_exchange_declare_t m = {.exchange = bytes_of(e->name),
                                     .type = bytes_of(e->type),
                                     .durable = e->durable,
                                     .arguments = durable_args()};
        send_method(mq, CHANNEL, AMQP_EXCHANGE_DECLARE_METHOD, &m, AMQP_EXCHANGE_DECLARE_OK_METHOD);
        return;
    }
    i -= c->nexchanges;
    if (i < c->nqueues) {
        const fl_mq_queue_t *q = &c->queues[i];
        amqp_queue_declare_t m = {
            .queue = bytes_of(q->name), .durable = q->durable, .arguments = durable_args()};
        send_method(mq, CHANNEL, AMQP_QUEUE_DECLARE_METHOD, &m, AMQP_QUEUE_DECLARE_OK_METHOD);
        return;
    }
    i -= c->nqueues;
    if (i < c->nbindings) {
        const fl_mq_binding_t *b = &c->bindings[i];
        amqp_queue_bind_t m = {.queue = bytes_of(b->queue),
                               .exchange = bytes_of(b->exchange),
                               .routing_key = bytes_of(b->routing_key),
                               .arguments = amqp_empty_table};
        send_method(mq, CHANNEL, AMQP_QUEUE_BIND_METHOD, &m, AMQP_QUEUE_BIND_OK_METHOD);
        return;
    }
    i -= c->nbindings;
    if (i == 0) {
        amqp_basic_qos_t m = {.prefetch_count = c->prefetch};
        send_method(mq, CHANNEL, AMQP_BASIC_QOS_METHOD, &m, AMQP_BASIC_QOS_OK_METHOD);
        return;
    }
    i -= 1;
    if (i < c->nconsumers) {
        amqp_basic_consume_t m = {.queue = bytes_of(c->consumers[i].queue),
                                  .no_ack = false,
                                  .arguments = amqp_empty_table};
        send_method(mq, CHANNEL, AMQP_BASIC_CONSUME_METHOD, &m, AMQP_BASIC_CONSUME_OK_METHOD);
        return;
    }
    ready(mq);
}

static void send_start_ok(fl_mq_t *mq)
{
    amqp_table_entry_t caps[] = {
        {amqp_cstring_bytes("publisher_confirms"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes("consumer_cancel_notify"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes("connection.blocked"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes("authentication_failure_close"),
         {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
    };
    amqp_table_entry_t props[2];
    props[0].key = amqp_cstring_bytes("product");
    props[0].value.kind = AMQP_FIELD_KIND_UTF8;
    props[0].value.value.bytes = amqp_cstring_bytes("faultline services/runtime");
    props[1].key = amqp_cstring_bytes("capabilities");
    props[1].value.kind = AMQP_FIELD_KIND_TABLE;
    props[1].value.value.table.num_entries = sizeof caps / sizeof caps[0];
    props[1].value.value.table.entries = caps;
    /* SASL PLAIN: "\0user\0password" */
    fl_buf_t resp = FL_BUF_INIT;
    if (fl_buf_append(&resp, "", 1) < 0 || fl_buf_puts(&resp, mq->user) < 0 ||
        fl_buf_append(&resp, "", 1) < 0 || fl_buf_puts(&resp, mq->password) < 0) {
        fl_buf_free(&resp);
        conn_lost(mq, "out of memory");
        return;
    }
    amqp_connection_start_ok_t m = {
        .client_properties = {2, props},
        .mechanism = amqp_cstring_bytes("PLAIN"),
        .response = {resp.len, resp.data},
        .locale = amqp_cstring_bytes("en_US"),
    };
    send_method(mq, 0, AMQP_CONNECTION_START_OK_METHOD, &m, AMQP_CONNECTION_TUNE_METHOD);
    fl_buf_free(&resp);
}

static void on_tune(fl_mq_t *mq, const amqp_connection_tune_t *t)
{
    int channel_max = t->channel_max ? t->channel_max : 2047;
    int frame_max = t->frame_max ? (int)t->frame_max : 131072;
    int hb = mq->cfg.heartbeat_s;
    if (t->heartbeat && t->heartbeat < hb)
        hb = t->heartbeat;
    if (amqp_tune_connection(mq->conn->amqp, channel_max, frame_max, hb) != AMQP_STATUS_OK) {
        conn_lost(mq, "cannot tune");
        return;
    }
    amqp_connection_tune_ok_t ok = {(uint16_t)channel_max, (uint32_t)frame_max, (uint16_t)hb};
    if (!send_method(mq, 0, AMQP_CONNECTION_TUNE_OK_METHOD, &ok, 0))
        return;
    amqp_connection_open_t open = {.virtual_host = bytes_of(mq->vhost)};
    send_method(mq, 0, AMQP_CONNECTION_OPEN_METHOD, &open, AMQP_CONNECTION_OPEN_OK_METHOD);
}

/* ---- incoming methods and content ---- */

static void reply_close_ok(fl_mq_t *mq, amqp_channel_t ch, bool channel)
{
    if (channel) {
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(mq->conn->amqp, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else {
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(mq->conn->amqp, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
}

static void start_content(fl_mq_t *mq, bool is_delivery)
{
    mq->in.active = true;
    mq->in.is_delivery = is_delivery;
    mq->in.body_size = 0;
    fl_buf_reset(&mq->in.body);
    fl_buf_reset(&mq->in.msgid);
    fl_buf_reset(&mq->in.traceparent);
    fl_buf_reset(&mq->in.tracestate);
}

/* Handles one method; false when the connection was lost meanwhile. */
static bool on_method(fl_mq_t *mq, amqp_channel_t ch, amqp_method_t *m)
{
    char why[300];
    switch (m->id) {
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *c = m->decoded;
        snprintf(why, sizeof why, "connection.close %u %.*s", c->reply_code, (int)c->reply_text.len,
                 (char *)c->reply_text.bytes);
        reply_close_ok(mq, 0, false);
        conn_lost(mq, why);
        return false;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        amqp_channel_close_t *c = m->decoded;
        snprintf(why, sizeof why, "channel.close %u %.*s", c->reply_code, (int)c->reply_text.len,
                 (char *)c->reply_text.bytes);
        reply_close_ok(mq, ch, true);
        conn_lost(mq, why); /* one channel is all we have: start again */
        return false;
    }
    case AMQP_CONNECTION_BLOCKED_METHOD:
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        return true; /* publishes wait at the broker; their confirms come later */
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *a = m->decoded;
        on_confirm(mq, a->delivery_tag, a->multiple, 0);
        return mq->conn != NULL;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *n = m->decoded;
        on_confirm(mq, n->delivery_tag, n->multiple, FL_EIO);
        return mq->conn != NULL;
    }
    case AMQP_BASIC_DELIVER_METHOD: {
        amqp_basic_deliver_t *d = m->decoded;
        start_content(mq, true);
        mq->in.tag = d->delivery_tag;
        mq->in.redelivered = d->redelivered;
        mq->in.consumer = 0;
        for (size_t i = 0; i < mq->cfg.nconsumers; i++)
            if (mq->ctags[i] && strlen(mq->ctags[i]) == d->consumer_tag.len &&
                memcmp(mq->ctags[i], d->consumer_tag.bytes, d->consumer_tag.len) == 0)
                mq->in.consumer = i;
        if (buf_set(&mq->in.exchange, d->exchange) < 0 || buf_set(&mq->in.rk, d->routing_key) < 0)
            mq->in.is_delivery = false; /* out of memory: it will come back after reconnect */
        return true;
    }
    case AMQP_BASIC_RETURN_METHOD:
        start_content(mq, false); /* we never publish mandatory; skip its content */
        return true;
    case AMQP_BASIC_CANCEL_METHOD:
        conn_lost(mq, "consumer cancelled by the broker"); /* consume again from scratch */
        return false;
    }
    if (mq->state == ST_READY)
        return true; /* anything else is not for us (e.g. a late -ok) */
    if (m->id != mq->expect) {
        snprintf(why, sizeof why, "unexpected method 0x%08x during setup", (unsigned)m->id);
        conn_lost(mq, why);
        return false;
    }
    switch (m->id) {
    case AMQP_CONNECTION_START_METHOD:
        send_start_ok(mq);
        break;
    case AMQP_CONNECTION_TUNE_METHOD:
        on_tune(mq, m->decoded);
        break;
    case AMQP_CONNECTION_OPEN_OK_METHOD: {
        amqp_channel_open_t open = {0};
        send_method(mq, CHANNEL, AMQP_CHANNEL_OPEN_METHOD, &open, AMQP_CHANNEL_OPEN_OK_METHOD);
        break;
    }
    case AMQP_CHANNEL_OPEN_OK_METHOD: {
        amqp_confirm_select_t sel = {0};
        mq->next_seq = 1;
        send_method(mq, CHANNEL, AMQP_CONFIRM_SELECT_METHOD, &sel, AMQP_CONFIRM_SELECT_OK_METHOD);
        break;
    }
    case AMQP_BASIC_CONSUME_OK_METHOD: {
        amqp_basic_consume_ok_t *ok = m->decoded;
        size_t i = mq->step - 1 - (mq->cfg.nexchanges + mq->cfg.nqueues + mq->cfg.nbindings + 1);
        free(mq->ctags[i]);
        mq->ctags[i] = strndup(ok->consumer_tag.bytes, ok->consumer_tag.len);
        mq->state = ST_SETUP;
        next_step(mq);
        break;
    }
    default: /* the -ok of a setup step */
        mq->state = ST_SETUP;
        next_step(mq);
        break;
    }
    return mq->conn != NULL;
}

static void read_headers(fl_mq_t *mq, const amqp_basic_properties_t *p)
{
    mq->in.body_size = 0;
    if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        buf_set(&mq->in.msgid, p->message_id);
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->value.kind != AMQP_FIELD_KIND_UTF8 && e->value.kind != AMQP_FIELD_KIND_BYTES)
            continue;
        if (e->key.len == 11 && strncasecmp(e->key.bytes, "traceparent", 11) == 0)
            buf_set(&mq->in.traceparent, e->value.value.bytes);
        else if (e->key.len == 10 && strncasecmp(e->key.bytes, "tracestate", 10) == 0)
            buf_set(&mq->in.tracestate, e->value.value.bytes);
    }
}

static void dispatch(fl_mq_t *mq)
{
    mq->in.active = false;
    if (!mq->in.is_delivery)
        return;
    const fl_mq_consumer_t *c = &mq->cfg.consumers[mq->in.consumer];
    size_t lex = mq->in.exchange.len, lrk = mq->in.rk.len, lq = strlen(c->queue),
           lid = mq->in.msgid.len, lbody = mq->in.body.len;
    delivery_t *d = calloc(1, sizeof *d);
    char *s = d ? malloc(lex + lrk + lq + lid + lbody + 5) : NULL;
    if (!s) {
        free(d); /* out of memory: requeue it for later */
        amqp_basic_nack(mq->conn->amqp, CHANNEL, mq->in.tag, false, true);
        return;
    }
    d->strings = s;
    d->tag = mq->in.tag;
    d->generation = mq->generation;
    fl_mq_delivery_t *p = &d->pub;
    p->exchange = memcpy(s, mq->in.exchange.len ? mq->in.exchange.data : "", lex);
    s[lex] = '\0';
    s += lex + 1;
    p->routing_key = memcpy(s, mq->in.rk.len ? mq->in.rk.data : "", lrk);
    s[lrk] = '\0';
    s += lrk + 1;
    p->queue = memcpy(s, c->queue, lq + 1);
    s += lq + 1;
    p->message_id = memcpy(s, lid ? mq->in.msgid.data : "", lid);
    s[lid] = '\0';
    s += lid + 1;
    p->body = lbody ? memcpy(s, mq->in.body.data, lbody) : s;
    s[lbody] = '\0';
    p->len = lbody;
    p->redelivered = mq->in.redelivered;
    fl_tracectx_t msg;
    bool has = fl_tracectx_extract(mq->in.traceparent.len ? mq->in.traceparent.data : NULL,
                                   mq->in.traceparent.len, mq->in.tracestate.data,
                                   mq->in.tracestate.len, &msg) == 0;
    if (mq->cfg.tracer) {
        char name[300];
        snprintf(name, sizeof name, "%s process", c->queue);
        d->span = fl_span_start(mq->cfg.tracer, name, FL_SPAN_CONSUMER, has ? &msg : NULL);
        fl_span_set_str(d->span, "messaging.system", "rabbitmq");
        fl_span_set_str(d->span, "messaging.operation", "process");
        fl_span_set_str(d->span, "messaging.destination.name", p->exchange);
        fl_span_set_str(d->span, "messaging.rabbitmq.destination.routing_key", p->routing_key);
        if (lid)
            fl_span_set_str(d->span, "messaging.message.id", p->message_id);
        p->ctx = *fl_span_context(d->span);
        p->has_ctx = true;
    } else {
        p->ctx = msg;
        p->has_ctx = has;
    }
    d->next = mq->deliveries;
    if (d->next)
        d->next->pprev = &d->next;
    d->pprev = &mq->deliveries;
    mq->deliveries = d;
    mq->st.delivered++;
    c->cb(mq, p, c->arg); /* may ack at once, or later */
}

/* Handles one frame; false when the connection was lost meanwhile. */
static bool on_frame(fl_mq_t *mq, amqp_frame_t *f)
{
    switch (f->frame_type) {
    case AMQP_FRAME_METHOD:
        if (mq->in.active) {
            conn_lost(mq, "a method inside a message's content");
            return false;
        }
        return on_method(mq, f->channel, &f->payload.method);
    case AMQP_FRAME_HEADER:
        if (!mq->in.active) {
            conn_lost(mq, "a content header without its method");
            return false;
        }
        read_headers(mq, f->payload.properties.decoded);
        mq->in.body_size = f->payload.properties.body_size;
        if (mq->in.body_size == 0)
            dispatch(mq);
        return mq->conn != NULL;
    case AMQP_FRAME_BODY:
        if (!mq->in.active) {
            conn_lost(mq, "a content body without its header");
            return false;
        }
        if (fl_buf_append(&mq->in.body, f->payload.body_fragment.bytes,
                          f->payload.body_fragment.len) < 0) {
            conn_lost(mq, "out of memory");
            return false;
        }
        if (mq->in.body.len >= mq->in.body_size)
            dispatch(mq);
        return mq->conn != NULL;
    default: /* heartbeats: librabbitmq noted them already */
        return true;
    }
}

/* Reads every frame already received, without waiting. */
static void pump(fl_mq_t *mq)
{
    for (int i = 0; i < 100000 && mq->conn && mq->conn->amqp; i++) {
        amqp_frame_t f;
        struct timeval zero = {0, 0};
        int rc = amqp_simple_wait_frame_noblock(mq->conn->amqp, &f, &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            conn_lost(mq, amqp_error_string2(rc));
            return;
        }
        if (!on_frame(mq, &f))
            return;
        amqp_maybe_release_buffers(mq->conn->amqp);
    }
}

/* ---- connections ---- */

static void conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    fl_mq_t *mq = c->mq;
    if (c->amqp)
        amqp_destroy_connection(c->amqp); /* closes the socket: our poll is gone already */
    else if (c->fd >= 0)
        close(c->fd);
    free(c);
    mq->handles_open--;
    maybe_finish_close(mq);
}

static void conn_drop(fl_mq_t *mq)
{
    conn_t *c = mq->conn;
    if (!c)
        return;
    mq->conn = NULL;
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, conn_closed);
}

static void reconnect_fired(uv_timer_t *h)
{
    connect_now(h->data);
}

static void conn_lost(fl_mq_t *mq, const char *why)
{
    bool was_ready = mq->state == ST_READY || mq->state == ST_FAILING;
    conn_drop(mq);
    mq->state = ST_IDLE;
    mq->in.active = false;
    mq->generation++;
    uv_timer_stop(&mq->heartbeat_timer);
    mq->st.failures++;
    while (mq->pend_head) {
        pending_t *p = mq->pend_head;
        mq->pend_head = p->next;
        if (!mq->pend_head)
            mq->pend_tail = NULL;
        complete(mq, p, FL_ECLOSED);
    }
    if (mq->cfg.on_state && (was_ready || !mq->closing))
        mq->cfg.on_state(mq, false, why, mq->cfg.state_arg);
    if (!mq->closing)
        uv_timer_start(&mq->reconnect_timer, reconnect_fired, fl_backoff_next(&mq->backoff), 0);
}

static void heartbeat_fired(uv_timer_t *h)
{
    pump(h->data); /* librabbitmq sends a heartbeat when due, and notices missed ones */
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    conn_t *c = h->data;
    fl_mq_t *mq = c->mq;
    if (status < 0) {
        conn_lost(mq, uv_strerror(status));
        return;
    }
    if (mq->state == ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            conn_lost(mq, strerror(err));
            return;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        amqp_socket_t *sock;
        if (!(c->amqp = amqp_new_connection()) || !(sock = amqp_tcp_socket_new(c->amqp))) {
            conn_lost(mq, "out of memory");
            return;
        }
        amqp_tcp_socket_set_sockfd(sock, c->fd);
        mq->state = ST_HANDSHAKE;
        mq->expect = AMQP_CONNECTION_START_METHOD;
        if (amqp_send_header(c->amqp) != AMQP_STATUS_OK) {
            conn_lost(mq, "cannot send the protocol header");
            return;
        }
        uv_poll_start(&c->poll, UV_READABLE, poll_cb);
        uv_timer_start(&mq->heartbeat_timer, heartbeat_fired, 1000, 1000);
        return;
    }
    pump(mq);
}

static void connect_now(fl_mq_t *mq)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, mq->host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)mq->port);
        sl = sizeof *in4;
    } else if (inet_pton(AF_INET6, mq->host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)mq->port);
        sl = sizeof *in6;
    } else {
        conn_lost(mq, "the broker's host must be an IP address"); /* no blocking DNS */
        return;
    }
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        conn_lost(mq, "out of memory");
        return;
    }
    c->mq = mq;
    c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || uv_poll_init(mq->loop, &c->poll, c->fd) < 0) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        conn_lost(mq, "cannot make a socket");
        return;
    }
    c->poll.data = c;
    mq->conn = c;
    mq->handles_open++;
    mq->state = ST_CONNECTING;
    mq->step = 0;
    if (connect(c->fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
        conn_lost(mq, strerror(errno));
        return;
    }
    uv_poll_start(&c->poll, UV_WRITABLE, poll_cb);
}

/* ---- the public calls ---- */

int fl_mq_start(uv_loop_t *loop, const fl_mq_config_t *cfg, fl_mq_t **out)
{
    fl_mq_t *mq = calloc(1, sizeof *mq);
    if (!mq)
        return FL_ENOMEM;
    mq->loop = loop;
    int rc = copy_config(mq, cfg);
    if (rc == 0)
        rc = parse_url(mq, cfg->url);
    if (rc < 0) {
        free_config(mq);
        free(mq);
        return rc;
    }
    fl_backoff_init(&mq->backoff, mq->cfg.backoff_min_ms, mq->cfg.backoff_max_ms);
    uv_timer_init(loop, &mq->reconnect_timer);
    uv_timer_init(loop, &mq->heartbeat_timer);
    mq->reconnect_timer.data = mq->heartbeat_timer.data = mq;
    mq->handles_open = 2;
    *out = mq;
    uv_timer_start(&mq->reconnect_timer, reconnect_fired, 0, 0); /* from the loop */
    return 0;
}

bool fl_mq_ready(const fl_mq_t *mq)
{
    return mq->state == ST_READY;
}

void fl_mq_stats(const fl_mq_t *mq, fl_mq_stats_t *out)
{
    *out = mq->st;
}

static void failed_fired(uv_timer_t *h)
{
    conn_lost(h->data, "cannot send");
}

/* A send failed inside a caller's call: no callback may run there, so the connection is
 * given up from the loop, at once. Publishes and acks are refused meanwhile. */
static void fail_later(fl_mq_t *mq)
{
    mq->state = ST_FAILING;
    uv_timer_start(&mq->reconnect_timer, failed_fired, 0, 0);
}

int fl_mq_publish(fl_mq_t *mq, const char *exchange, const char *routing_key, const void *body,
                  size_t len, const fl_mq_publish_opts_t *opts, fl_mq_confirm_cb cb, void *arg)
{
    static const fl_mq_publish_opts_t none = {0};
    if (!opts)
        opts = &none;
    if (!exchange || !routing_key || (!body && len))
        return FL_EINVAL;
    if (mq->state != ST_READY || mq->closing)
        return FL_ECLOSED;
    pending_t *p = calloc(1, sizeof *p);
    if (!p)
        return FL_ENOMEM;
    const fl_tracectx_t *ctx = opts->parent;
    if (mq->cfg.tracer) {
        char name[300];
        snprintf(name, sizeof name, "%s publish", *exchange ? exchange : "(default)");
        p->span = fl_span_start(mq->cfg.tracer, name, FL_SPAN_PRODUCER, opts->parent);
        fl_span_set_str(p->span, "messaging.system", "rabbitmq");
        fl_span_set_str(p->span, "messaging.operation", "publish");
        fl_span_set_str(p->span, "messaging.destination.name", exchange);
        fl_span_set_str(p->span, "messaging.rabbitmq.destination.routing_key", routing_key);
        if (opts->message_id)
            fl_span_set_str(p->span, "messaging.message.id", opts->message_id);
        ctx = fl_span_context(p->span);
    }
    amqp_table_entry_t hdr[2];
    char tp[FL_TRACEPARENT_LEN + 1];
    int nh = 0;
    if (ctx && !fl_trace_id_is_zero(ctx->trace_id, 16)) {
        fl_traceparent_format(ctx, tp);
        hdr[nh].key = amqp_cstring_bytes("traceparent");
        hdr[nh].value.kind = AMQP_FIELD_KIND_UTF8;
        hdr[nh++].value.value.bytes = amqp_cstring_bytes(tp);
        if (ctx->tracestate[0]) {
            hdr[nh].key = amqp_cstring_bytes("tracestate");
            hdr[nh].value.kind = AMQP_FIELD_KIND_UTF8;
            hdr[nh++].value.value.bytes = amqp_cstring_bytes(ctx->tracestate);
        }
    }
    amqp_basic_properties_t props = {0};
    if (nh) {
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers.num_entries = nh;
        props.headers.entries = hdr;
    }
    if (opts->persistent) {
        props._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
        props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    }
    if (opts->message_id) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(opts->message_id);
    }
    if (opts->content_type) {
        props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        props.content_type = amqp_cstring_bytes(opts->content_type);
    }
    amqp_bytes_t b = {len, (void *)(len ? body : "")};
    p->seq = mq->next_seq++;
    p->cb = cb;
    p->arg = arg;
    if (mq->pend_tail)
        mq->pend_tail->next = p;
    else
        mq->pend_head = p;
    mq->pend_tail = p;
    mq->st.published++;
    int rc = amqp_basic_publish(mq->conn->amqp, CHANNEL, amqp_cstring_bytes(exchange),
                                amqp_cstring_bytes(routing_key), 0, 0, &props, b);
    if (rc != AMQP_STATUS_OK)
        fail_later(mq); /* p's callback runs then, with FL_ECLOSED, not inside this call */
    return 0;
}

static int settle(fl_mq_t *mq, fl_mq_delivery_t *pub, bool ack, bool requeue)
{
    delivery_t *d = (delivery_t *)pub; /* pub is the first member */
    int rc = 0;
    bool send_failed = false;
    if (d->generation != mq->generation || mq->state != ST_READY || !mq->conn) {
        rc = FL_ECLOSED;
        mq->st.stale_acks++;
    } else {
        int r = ack ? amqp_basic_ack(mq->conn->amqp, CHANNEL, d->tag, false)
                    : amqp_basic_nack(mq->conn->amqp, CHANNEL, d->tag, false, requeue);
        if (r != AMQP_STATUS_OK) {
            rc = FL_ECLOSED;
            send_failed = true;
        } else if (ack)
            mq->st.acked++;
        else
            mq->st.nacked_deliveries++;
    }
    if (d->span) {
        if (rc < 0 || !ack)
            fl_span_set_status(d->span, FL_STATUS_ERROR, rc < 0 ? "connection lost" : "nacked");
        fl_span_end(d->span);
    }
    if (d->next)
        d->next->pprev = d->pprev;
    *d->pprev = d->next;
    free(d->strings);
    free(d);
    if (send_failed)
        fail_later(mq);
    return rc;
}

int fl_mq_ack(fl_mq_t *mq, fl_mq_delivery_t *d)
{
    return settle(mq, d, true, false);
}

int fl_mq_nack(fl_mq_t *mq, fl_mq_delivery_t *d, bool requeue)
{
    return settle(mq, d, false, requeue);
}

static void timer_closed(uv_handle_t *h)
{
    fl_mq_t *mq = h->data;
    mq->handles_open--;
    maybe_finish_close(mq);
}

static void maybe_finish_close(fl_mq_t *mq)
{
    if (!mq->closing || mq->handles_open > 0)
        return;
    void (*cb)(void *) = mq->close_cb;
    void *arg = mq->close_arg;
    while (mq->deliveries) {
        delivery_t *d = mq->deliveries;
        mq->deliveries = d->next;
        if (d->span)
            fl_span_end(d->span);
        free(d->strings);
        free(d);
    }
    fl_buf_t *bufs[] = {&mq->in.exchange, &mq->in.rk,          &mq->in.body,
                        &mq->in.msgid,    &mq->in.traceparent, &mq->in.tracestate};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        fl_buf_free(bufs[i]);
    free_config(mq);
    free(mq);
    if (cb)
        cb(arg);
}

void fl_mq_close(fl_mq_t *mq, void (*cb)(void *arg), void *arg)
{
    if (mq->closing)
        return;
    mq->closing = true;
    mq->close_cb = cb;
    mq->close_arg = arg;
    if (mq->conn && mq->conn->amqp && mq->state == ST_READY) {
        amqp_connection_close_t c = {.reply_code = AMQP_REPLY_SUCCESS,
                                     .reply_text = amqp_cstring_bytes("closing")};
        amqp_send_method(mq->conn->amqp, 0, AMQP_CONNECTION_CLOSE_METHOD, &c); /* best effort */
    }
    if (mq->conn || mq->state != ST_IDLE)
        conn_lost(mq, "closed");
    uv_timer_stop(&mq->reconnect_timer);
    uv_close((uv_handle_t *)&mq->reconnect_timer, timer_closed);
    uv_close((uv_handle_t *)&mq->heartbeat_timer, timer_closed);
}
