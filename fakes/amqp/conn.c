/* One client connection: the bytes in (protocol header, then frames, each parsed by the
 * pure decoders of codec.c), the connection handshake (start, start-ok with PLAIN or
 * AMQPLAIN, tune, open), channels and their content assembly (publish, header, bodies), the
 * bytes out (batched per callback, written with uv_try_write first), heartbeats both ways, and
 * every way a connection ends: a client's close, a server error (connection.close with the
 * reply code, then the socket once the client answers or a second passes), a dead peer, or a
 * fault dropping it. However it ends, its unacked messages go back to their queues and its
 * exclusive queues are deleted.
 *
 * Memory per connection stays bounded whatever the peer does: frames above frame_max are
 * refused before their payload arrives, and a connection whose unread output passes a limit
 * is not read from (nor delivered to) until it drains. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/amqp/internal.h"
#include "lib/err.h"

#define IN_CHUNK 65536
#define OUT_STOP_READING (8u << 20)
#define CLOSE_WAIT_MS 1000

static void process(conn_t *c);
static void conn_close(conn_t *c);

fl_buf_t *conn_out(conn_t *c)
{
    conn_flush_later(c);
    return &c->out;
}

void conn_flush_later(conn_t *c)
{
    if (c->flush_queued || c->state == C_DEAD)
        return;
    c->flush_queued = 1;
    c->flush_next = c->b->flush;
    c->b->flush = c;
}

static void kick_consumers(conn_t *c)
{
    for (size_t i = 0; i < c->nchans; i++) {
        channel_t *ch = c->chans[i];
        for (size_t j = 0; ch && j < ch->nconsumers; j++)
            queue_kick(ch->consumers[j]->q);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* the close comes with the peer's EOF or the timer */
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void on_hb(uv_timer_t *t);

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req->data;
    c->writing = 0;
    fl_buf_reset(&c->wbuf);
    if (status < 0 || c->state == C_DEAD)
        return;
    c->last_tx = uv_now(c->b->loop);
    conn_flush(c);
    if (c->out.len < OUT_HIGH_WATER) {
        if (!c->reading && !c->held && c->state != C_DEAD)
            conn_resume(c);
        kick_consumers(c);
        settle(c->b);
    }
}

void conn_flush(conn_t *c)
{
    if (c->state == C_DEAD || c->writing)
        return;
    /* consumers stop at the high-water mark; when a direct write drains it, no write callback
     * will come to let them go on, so they are kicked here */
    int was_full = c->out.len >= OUT_HIGH_WATER;
    if (c->out.len) {
        uv_buf_t buf = uv_buf_init(c->out.data, (unsigned)c->out.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
        if (n > 0) {
            fl_buf_consume(&c->out, (size_t)n);
            c->last_tx = uv_now(c->b->loop);
        } else if (n < 0 && n != UV_EAGAIN) {
            conn_close(c);
            return;
        }
    }
    if (c->out.len) {
        /* the rest goes out with a write request; new frames gather in out meanwhile */
        fl_buf_t t = c->wbuf;
        c->wbuf = c->out;
        c->out = t;
        fl_buf_reset(&c->out);
        uv_buf_t buf = uv_buf_init(c->wbuf.data, (unsigned)c->wbuf.len);
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_write) < 0) {
            conn_close(c);
            return;
        }
        c->writing = 1;
        if (c->reading && c->wbuf.len > OUT_STOP_READING) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
        }
        return;
    }
    if (was_full)
        kick_consumers(c);
    if (c->close_after_write && !c->shutting) {
        /* everything is out: end our side, and read (and drop) what the client still sends
         * until it closes or a second passes, so that unread bytes do not turn the close
         * into a reset that could destroy the close frame in flight */
        c->shutting = 1;
        c->sreq.data = c;
        if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
            conn_close(c);
            return;
        }
        if (!c->reading) {
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
            c->reading = 1;
        }
        uv_timer_start(&c->hb, on_hb, CLOSE_WAIT_MS, 0);
    }
}

/* Closes the socket once everything queued is written. */
static void close_when_written(conn_t *c)
{
    c->state = C_CLOSING;
    c->close_after_write = 1;
    conn_flush_later(c);
}

/* ---- teardown ---- */

static void channel_free(channel_t *ch)
{
    while (ch->nconsumers)
        consumer_remove(ch->consumers[ch->nconsumers - 1], 0);
    channel_requeue_all(ch);
    msg_unref(ch->pub_msg);
    for (txop_t *op = ch->tx_head, *next; op; op = next) {
        next = op->next;
        msg_unref(op->m);
        free(op->exchange);
        free(op);
    }
    free(ch->un);
    free(ch->consumers);
    ch->c->chans[ch->id] = NULL;
    free(ch);
}

static void delete_exclusive_queues(conn_t *c)
{
    for (size_t v = 0; v < c->b->nvhosts; v++) {
        vhost_t *vh = c->b->vhosts[v];
        for (;;) {
            size_t it = 0;
            queue_t *q, *found = NULL;
            while ((q = map_next(&vh->queues, &it)))
                if (q->owner == c && !q->deleted)
                    found = q;
            if (!found)
                break;
            queue_delete(found);
        }
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    broker_t *b = c->b;
    if (--c->open_handles > 0)
        return;
    fl_buf_free(&c->in);
    fl_buf_free(&c->out);
    fl_buf_free(&c->wbuf);
    free(c->chans);
    free(c);
    b->pending_closes--;
    amqp_maybe_closed(b);
}

static void conn_close(conn_t *c)
{
    if (c->state == C_DEAD)
        return;
    broker_t *b = c->b;
    c->state = C_DEAD;
    for (size_t i = 0; i < c->nchans; i++)
        if (c->chans[i])
            channel_free(c->chans[i]);
    delete_exclusive_queues(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->flush_queued) {
        conn_t **p = &b->flush;
        while (*p && *p != c)
            p = &(*p)->flush_next;
        if (*p)
            *p = c->flush_next;
        c->flush_queued = 0;
    }
    broker_event(b, "connection %s closed", c->peer);
    c->open_handles = 2;
    uv_close((uv_handle_t *)&c->hb, on_conn_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    settle(b);
}

void conn_drop(conn_t *c)
{
    conn_close(c);
}

/* text cut to what a short string holds (reply texts longer than 255 bytes are cut). */
static void short_copy(char out[256], const char *text)
{
    size_t n = strlen(text);
    if (n > 255)
        n = 255;
    memcpy(out, text, n);
    out[n] = '\0';
}

void conn_error(conn_t *c, int code, const char *text, uint16_t class_id, uint16_t method_id)
{
    if (c->state == C_DEAD || c->state == C_CLOSING)
        return;
    broker_event(c->b, "connection %s: %d %s", c->peer, code, text);
    if (c->state < C_OPEN && !(code == FL_AMQP_ACCESS_REFUSED && c->cap_auth_close)) {
        /* until it is tuned RabbitMQ tells a client nothing (a refused login only when the
         * client asked for authentication_failure_close): it just closes */
        close_when_written(c);
        return;
    }
    char reply[256]; /* a short string: at most 255 bytes go out */
    short_copy(reply, text);
    fl_amqp_method_frame(conn_out(c), 0, 10, 50, code, reply, class_id, method_id);
    c->state = C_CLOSING;
    /* the client has a second to answer close-ok */
    uv_timer_start(&c->hb, on_hb, CLOSE_WAIT_MS, 0);
}

void channel_error(channel_t *ch, int code, const char *text, uint16_t class_id, uint16_t method_id)
{
    if (fl_amqp_reply_is_hard(code)) {
        conn_error(ch->c, code, text, class_id, method_id);
        return;
    }
    if (ch->state == CH_CLOSING)
        return;
    broker_event(ch->c->b, "channel %s/%u: %d %s", ch->c->peer, ch->id, code, text);
    char reply[256]; /* a short string: at most 255 bytes go out */
    short_copy(reply, text);
    fl_amqp_method_frame(conn_out(ch->c), ch->id, 20, 40, code, reply, class_id, method_id);
    /* its messages go back now; the channel number is free again after close-ok */
    while (ch->nconsumers)
        consumer_remove(ch->consumers[ch->nconsumers - 1], 0);
    channel_requeue_all(ch);
    msg_unref(ch->pub_msg);
    ch->pub_msg = NULL;
    ch->content = 0;
    ch->state = CH_CLOSING;
}

/* ---- heartbeats ---- */

static void on_hb(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->state == C_CLOSING) {
        conn_close(c);
        return;
    }
    uint64_t now = uv_now(c->b->loop), hb_ms = (uint64_t)c->heartbeat * 1000;
    if (now - c->last_rx > 2 * hb_ms) {
        broker_event(c->b, "connection %s: missed heartbeats from client, timeout: %us", c->peer,
                     c->heartbeat);
        conn_close(c);
        return;
    }
    if (now - c->last_tx >= hb_ms / 2) {
        fl_amqp_heartbeat_frame(conn_out(c));
        settle(c->b);
    }
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    conn_t *c = h->data;
    (void)hint;
    if (fl_buf_reserve(&c->in, IN_CHUNK)) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    (void)buf;
    if (n < 0) {
        if (n != UV_EOF)
            broker_event(c->b, "connection %s: %s", c->peer, uv_strerror((int)n));
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    if (c->shutting) {
        c->in.len = c->in_off = 0; /* closing: what the client sends is dropped */
        return;
    }
    c->in.len += (size_t)n;
    c->last_rx = uv_now(c->b->loop);
    process(c);
    settle(c->b);
}

void conn_resume(conn_t *c)
{
    if (c->state == C_DEAD)
        return;
    c->held = 0;
    process(c);
    if (!c->held && !c->reading && c->state != C_DEAD && c->wbuf.len <= OUT_STOP_READING) {
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        c->reading = 1;
    }
    settle(c->b);
}

void conn_send_blocked(conn_t *c, int blocked)
{
    if (!c->cap_blocked || c->state != C_OPENED)
        return;
    if (blocked && !c->blocked_sent) {
        fl_amqp_method_frame(conn_out(c), 0, 10, 60, "low on memory");
        c->blocked_sent = 1;
    } else if (!blocked && c->blocked_sent) {
        fl_amqp_method_frame(conn_out(c), 0, 10, 61);
        c->blocked_sent = 0;
    }
}

static void on_handshake_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->state == C_CLOSING) {
        conn_close(c);
        return;
    }
    if (c->state < C_OPENED) {
        broker_event(c->b, "connection %s: handshake timeout", c->peer);
        conn_close(c);
    }
}

int conn_accept(broker_t *b, uv_stream_t *server)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return FL_ENOMEM;
    c->b = b;
    c->frame_max = FL_AMQP_FRAME_MIN;
    uv_tcp_init(b->loop, &c->tcp);
    uv_timer_init(b->loop, &c->hb);
    c->tcp.data = c;
    c->hb.data = c;
    b->pending_closes++;
    c->next = b->conns;
    if (b->conns)
        b->conns->prev = c;
    b->conns = c;
    c->state = C_HEADER;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return FL_EIO;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char host[48] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else {
            uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
    c->last_rx = c->last_tx = uv_now(b->loop);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    c->reading = 1;
    /* a client that never finishes the handshake is dropped, as RabbitMQ does after 10 s */
    uv_timer_start(&c->hb, on_handshake_timeout, 10000, 0);
    broker_event(b, "connection %s accepted", c->peer);
    return 0;
}

/* ---- content out ---- */

void send_content(conn_t *c, uint16_t channel, msg_t *m, uint16_t method, const char *ctag,
                  uint64_t tag, int redelivered, uint32_t count)
{
    fl_buf_t *out = conn_out(c);
    if (method == 60) {
        fl_amqp_deliver_frames(out, channel, ctag, tag, redelivered, msg_exchange(m), msg_rkey(m),
                               msg_props(m), m->props_len, msg_body(m), m->body_len, c->frame_max);
        return;
    }
    fl_amqp_method_frame(out, channel, 60, 71, tag, redelivered, msg_exchange(m), msg_rkey(m),
                         count);
    fl_amqp_header_frame(out, channel, m->body_len, msg_props(m), m->props_len);
    fl_amqp_body_frames(out, channel, msg_body(m), m->body_len, c->frame_max);
}

/* ---- the handshake ---- */

static void send_start(conn_t *c, int major, int minor)
{
    fl_buf_t t = FL_BUF_INIT;
    static const char *caps[] = {
        "publisher_confirms",           "exchange_exchange_bindings", "basic.nack",
        "consumer_cancel_notify",       "connection.blocked",         "consumer_priorities",
        "authentication_failure_close", "per_consumer_qos",           "direct_reply_to"};
    fl_amqp_put_shortstr(&t, "capabilities", 12);
    fl_amqp_put_u8(&t, 'F');
    size_t cs = fl_amqp_table_begin(&t);
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        fl_amqp_field_bool(&t, caps[i], 1);
    fl_amqp_table_end(&t, cs);
    fl_amqp_field_str(&t, "cluster_name", "rabbit@faultline");
    fl_amqp_field_str(&t, "copyright", "Copyright (c) 2007-2022 VMware, Inc. or its affiliates.");
    fl_amqp_field_str(&t, "information",
                      "Licensed under the MPL 2.0. Website: https://rabbitmq.com");
    fl_amqp_field_str(&t, "platform", "Erlang/OTP 25.2.3");
    fl_amqp_field_str(&t, "product", "RabbitMQ");
    fl_amqp_field_str(&t, "version", "3.10.8");
    static const char mech[] = "AMQPLAIN PLAIN", loc[] = "en_US";
    if (t.data)
        fl_amqp_method_frame(conn_out(c), 0, 10, 10, major, minor, t.data, t.len, mech,
                             sizeof mech - 1, loc, sizeof loc - 1);
    fl_buf_free(&t);
}

static int table_bool(const uint8_t *p, uint32_t len, const char *name)
{
    fl_amqp_value_t v;
    return fl_amqp_table_get(p, len, name, &v) && v.type == 't' && v.i;
}

static int str_eq(const uint8_t *p, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(p, s, len) == 0;
}

static int on_start_ok(conn_t *c, const fl_amqp_method_t *m)
{
    fl_amqp_value_t caps;
    if (fl_amqp_table_get(m->args[0].p, m->args[0].len, "capabilities", &caps) &&
        caps.type == 'F') {
        c->cap_blocked = (uint8_t)table_bool(caps.p, caps.len, "connection.blocked");
        c->cap_cancel_notify = (uint8_t)table_bool(caps.p, caps.len, "consumer_cancel_notify");
        c->cap_auth_close = (uint8_t)table_bool(caps.p, caps.len, "authentication_failure_close");
    }
    const fl_amqp_arg_t *mech = &m->args[1], *resp = &m->args[2];
    char user[128] = "", pass[128] = "";
    const char *mname;
    if (str_eq(mech->p, mech->len, "PLAIN")) {
        mname = "PLAIN";
        /* authzid \0 authcid \0 password */
        const uint8_t *z1 = memchr(resp->p, 0, resp->len);
        const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, resp->len - (size_t)(z1 + 1 - resp->p)) : NULL;
        if (z2) {
            size_t ul = (size_t)(z2 - z1 - 1), pl = resp->len - (size_t)(z2 + 1 - resp->p);
            if (ul < sizeof user && pl < sizeof pass) {
                memcpy(user, z1 + 1, ul);
                user[ul] = 0;
                memcpy(pass, z2 + 1, pl);
                pass[pl] = 0;
            }
        }
    } else if (str_eq(mech->p, mech->len, "AMQPLAIN")) {
        mname = "AMQPLAIN";
        fl_amqp_value_t lv, pv;
        if (fl_amqp_table_check(resp->p, resp->len) == 0 &&
            fl_amqp_table_get(resp->p, resp->len, "LOGIN", &lv) && lv.type == 'S' &&
            fl_amqp_table_get(resp->p, resp->len, "PASSWORD", &pv) && pv.type == 'S' &&
            lv.len < sizeof user && pv.len < sizeof pass) {
            memcpy(user, lv.p, lv.len);
            user[lv.len] = 0;
            memcpy(pass, pv.p, pv.len);
            pass[pv.len] = 0;
        }
    } else {
        char text[320];
        snprintf(text, sizeof text, "COMMAND_INVALID - unknown authentication mechanism '%.*s'",
                 (int)mech->len, (const char *)mech->p);
        conn_error(c, FL_AMQP_COMMAND_INVALID, text, 10, 11);
        return -1;
    }
    if (strcmp(user, c->b->user) != 0 || strcmp(pass, c->b->password) != 0) {
        char text[256];
        snprintf(text, sizeof text,
                 "ACCESS_REFUSED - Login was refused using authentication mechanism %s. For "
                 "details see the broker logfile.",
                 mname);
        broker_event(c->b, "connection %s: user '%s' refused", c->peer, user);
        conn_error(c, FL_AMQP_ACCESS_REFUSED, text, 0, 0);
        return -1;
    }
    snprintf(c->user, sizeof c->user, "%s", user);
    fl_amqp_method_frame(conn_out(c), 0, 10, 30, CHANNEL_MAX_DEFAULT, (uint32_t)FRAME_MAX_DEFAULT,
                         c->b->cfg.heartbeat ? c->b->cfg.heartbeat : HEARTBEAT_DEFAULT);
    c->state = C_TUNE_OK;
    return 0;
}

static int on_tune_ok(conn_t *c, const fl_amqp_method_t *m)
{
    uint64_t chmax = m->args[0].u, fmax = m->args[1].u, hb = m->args[2].u;
    char text[200];
    if (fmax == 0)
        fmax = FRAME_MAX_DEFAULT;
    if (chmax == 0) {
        /* "no limit", which RabbitMQ 3.10 refuses (it closes the connection) */
        conn_error(c, FL_AMQP_NOT_ALLOWED, "NOT_ALLOWED - channel_max=0 (no limit) refused", 10,
                   31);
        return -1;
    }
    if (fmax < FL_AMQP_FRAME_MIN) {
        snprintf(text, sizeof text, "NOT_ALLOWED - frame_max=%llu < %d min size",
                 (unsigned long long)fmax, FL_AMQP_FRAME_MIN);
        conn_error(c, FL_AMQP_NOT_ALLOWED, text, 10, 31);
        return -1;
    }
    if (fmax > FRAME_MAX_DEFAULT) {
        snprintf(text, sizeof text,
                 "NOT_ALLOWED - negotiated frame_max = %llu is higher than the maximum allowed "
                 "value (%d)",
                 (unsigned long long)fmax, FRAME_MAX_DEFAULT);
        conn_error(c, FL_AMQP_NOT_ALLOWED, text, 10, 31);
        return -1;
    }
    if (chmax > CHANNEL_MAX_DEFAULT) {
        snprintf(text, sizeof text,
                 "NOT_ALLOWED - negotiated channel_max = %llu is higher than the maximum allowed "
                 "value (%d)",
                 (unsigned long long)chmax, CHANNEL_MAX_DEFAULT);
        conn_error(c, FL_AMQP_NOT_ALLOWED, text, 10, 31);
        return -1;
    }
    c->channel_max = (uint16_t)chmax;
    c->frame_max = (uint32_t)fmax;
    c->heartbeat = (uint16_t)hb;
    c->state = C_OPEN;
    return 0;
}

static int on_open(conn_t *c, const fl_amqp_method_t *m)
{
    char vname[256];
    memcpy(vname, m->args[0].p, m->args[0].len);
    vname[m->args[0].len] = 0;
    vhost_t *vh = vhost_find(c->b, vname);
    if (!vh) {
        char text[320];
        snprintf(text, sizeof text, "NOT_ALLOWED - vhost %s not found", vname);
        conn_error(c, FL_AMQP_NOT_ALLOWED, text, 10, 40);
        return -1;
    }
    c->vh = vh;
    fl_amqp_method_frame(conn_out(c), 0, 10, 41, "");
    c->state = C_OPENED;
    uv_timer_stop(&c->hb);
    if (c->heartbeat) {
        uint64_t every = (uint64_t)c->heartbeat * 500;
        uv_timer_start(&c->hb, on_hb, every, every);
    }
    broker_event(c->b, "connection %s opened (user %s, vhost %s)", c->peer, c->user, vname);
    if (c->b->blocked)
        conn_send_blocked(c, 1);
    return 0;
}

/* ---- frames in ---- */

static void expected(conn_t *c, const fl_amqp_method_t *m, const char *want)
{
    char text[200];
    snprintf(text, sizeof text, "COMMAND_INVALID - expected '%s', got '%s'", want,
             m->spec ? m->spec->name : "?");
    conn_error(c, FL_AMQP_COMMAND_INVALID, text, m->class_id, m->method_id);
}

/* Bytes as Erlang prints a binary, as RabbitMQ's texts show them: <<"text">> when every byte
 * is printable, <<1,2,3>> otherwise; long ones cut with "...". */
static void erl_octets(char *out, size_t cap, const uint8_t *p, size_t n)
{
    int printable = n > 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 32 || p[i] > 126)
            printable = 0;
    size_t len = 0, max = cap > 16 ? cap - 16 : 0;
    len += (size_t)snprintf(out + len, cap - len, printable ? "<<\"" : "<<");
    for (size_t i = 0; i < n && len < max; i++) {
        if (printable)
            len += (size_t)snprintf(out + len, cap - len, "%s%c",
                                    p[i] == '"' || p[i] == '\\' ? "\\" : "", p[i]);
        else
            len += (size_t)snprintf(out + len, cap - len, "%s%u", i ? "," : "", p[i]);
        if (len >= max && i + 1 < n)
            len += (size_t)snprintf(out + len, cap - len, "...");
    }
    snprintf(out + len, cap - len, printable ? "\">>" : ">>");
}

static void frame_error(conn_t *c, const char *what)
{
    char text[400];
    snprintf(text, sizeof text, "FRAME_ERROR - %s", what);
    conn_error(c, FL_AMQP_FRAME_ERROR, text, 0, 0);
}

static void unexpected_frame(conn_t *c, const char *what)
{
    char text[400];
    snprintf(text, sizeof text, "UNEXPECTED_FRAME - %s", what);
    conn_error(c, FL_AMQP_UNEXPECTED_FRAME, text, 0, 0);
}

/* Decodes a method frame, answering a bad one with a connection error. */
static int decode(conn_t *c, const fl_amqp_frame_t *f, fl_amqp_method_t *m)
{
    int rc = fl_amqp_method_decode(f->payload, f->size, m);
    if (rc == 0)
        return 0;
    char text[200];
    if (rc == -FL_AMQP_COMMAND_INVALID) {
        snprintf(text, sizeof text, "COMMAND_INVALID - unknown method %u.%u", m->class_id,
                 m->method_id);
        conn_error(c, FL_AMQP_COMMAND_INVALID, text, m->class_id, m->method_id);
    } else {
        /* RabbitMQ's words: a frame error naming the argument bytes it could not decode */
        char octets[160];
        erl_octets(octets, sizeof octets, f->size > 4 ? f->payload + 4 : f->payload,
                   f->size > 4 ? f->size - 4 : 0);
        snprintf(text, sizeof text, "FRAME_ERROR - cannot decode %s", octets);
        conn_error(c, FL_AMQP_FRAME_ERROR, text, m->class_id, m->method_id);
    }
    return -1;
}

static int is(const fl_amqp_method_t *m, int cls, int id)
{
    return m->class_id == cls && m->method_id == id;
}

static void on_channel0(conn_t *c, const fl_amqp_frame_t *f)
{
    fl_amqp_method_t m;
    if (f->type != FL_AMQP_FRAME_METHOD) {
        unexpected_frame(c, "content frame on channel 0");
        return;
    }
    if (decode(c, f, &m))
        return;
    switch (c->state) {
    case C_START_OK:
        if (!is(&m, 10, 11))
            expected(c, &m, "connection.start-ok");
        else
            on_start_ok(c, &m);
        return;
    case C_TUNE_OK:
        if (!is(&m, 10, 31))
            expected(c, &m, "connection.tune-ok");
        else
            on_tune_ok(c, &m);
        return;
    case C_OPEN:
        if (!is(&m, 10, 40))
            expected(c, &m, "connection.open");
        else
            on_open(c, &m);
        return;
    case C_CLOSING:
        if (is(&m, 10, 51)) {
            conn_close(c);
        } else if (is(&m, 10, 50)) {
            fl_amqp_method_frame(conn_out(c), 0, 10, 51);
            close_when_written(c);
        }
        return;
    }
    if (is(&m, 10, 50)) {
        fl_amqp_method_frame(conn_out(c), 0, 10, 51);
        broker_event(c->b, "connection %s: client closed it (%llu %.*s)", c->peer,
                     (unsigned long long)m.args[0].u, (int)m.args[1].len,
                     (const char *)m.args[1].p);
        close_when_written(c);
    } else if (is(&m, 10, 70)) {
        fl_amqp_method_frame(conn_out(c), 0, 10, 71);
    } else if (is(&m, 10, 51) || is(&m, 10, 60) || is(&m, 10, 61)) {
        /* nothing to answer */
    } else {
        conn_error(c, FL_AMQP_CHANNEL_ERROR,
                   "CHANNEL_ERROR - unexpected method in connection state running", m.class_id,
                   m.method_id);
    }
}

/* Channel numbers above the negotiated channel_max still open, as in RabbitMQ 3.10: the table
 * of channels grows to whatever number a client uses (at most 65536 slots). */
static channel_t *channel_open(conn_t *c, uint16_t id)
{
    if (id >= c->nchans) {
        size_t n = c->nchans ? c->nchans : 16;
        while (n <= id)
            n *= 2;
        channel_t **v = realloc(c->chans, n * sizeof *v);
        if (!v)
            return NULL;
        memset(v + c->nchans, 0, (n - c->nchans) * sizeof *v);
        c->chans = v;
        c->nchans = n;
    }
    channel_t *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    ch->c = c;
    ch->id = id;
    ch->flow = 1;
    ch->state = CH_OPEN;
    ch->tx_tail = &ch->tx_head;
    c->chans[id] = ch;
    return ch;
}

static void on_header(channel_t *ch, const fl_amqp_frame_t *f)
{
    conn_t *c = ch->c;
    uint16_t cls;
    uint64_t size;
    fl_amqp_props_t pr;
    size_t poff;
    int rc = fl_amqp_header_decode(f->payload, f->size, &cls, &size, &pr, &poff);
    if (rc == -FL_AMQP_FRAME_ERROR) {
        frame_error(c, "content header weight is not zero");
        return;
    }
    if (rc || cls != 60) {
        char text[120];
        snprintf(text, sizeof text, "SYNTAX_ERROR - malformed content header (class %u)", cls);
        conn_error(c, FL_AMQP_SYNTAX_ERROR, text, 60, 40);
        return;
    }
    if (size > MAX_MESSAGE_SIZE) {
        char text[160];
        snprintf(text, sizeof text,
                 "PRECONDITION_FAILED - message size %llu is larger than configured max size %u",
                 (unsigned long long)size, MAX_MESSAGE_SIZE);
        /* its body frames still come: the closing channel ignores them */
        channel_error(ch, FL_AMQP_PRECONDITION_FAILED, text, 60, 40);
        return;
    }
    /* room for the first frame's worth: a header announcing 128 MiB costs nothing until
     * the bytes come */
    size_t room = size < c->frame_max ? (size_t)size : c->frame_max;
    ch->pub_msg =
        msg_new_room(ch->pub_exchange, strlen(ch->pub_exchange), ch->pub_rkey, strlen(ch->pub_rkey),
                     f->payload + poff, f->size - poff, (size_t)size, room);
    ch->pub_room = room;
    if (!ch->pub_msg) {
        conn_error(c, FL_AMQP_INTERNAL_ERROR, "INTERNAL_ERROR - out of memory", 60, 40);
        return;
    }
    ch->pub_got = 0;
    ch->content = 2;
    if (size == 0) {
        ch->content = 0;
        publish_complete(ch);
    }
}

static void on_body(channel_t *ch, const fl_amqp_frame_t *f)
{
    msg_t *m = ch->pub_msg;
    if (ch->pub_got + f->size > m->body_len) {
        frame_error(ch->c, "content body exceeds the size its header announced");
        return;
    }
    if (ch->pub_got + f->size > ch->pub_room) {
        size_t room = (size_t)ch->pub_room * 2;
        if (room < ch->pub_got + f->size)
            room = (size_t)(ch->pub_got + f->size);
        if (room > m->body_len)
            room = m->body_len;
        msg_t *grown = msg_grow(m, room);
        if (!grown) {
            conn_error(ch->c, FL_AMQP_INTERNAL_ERROR, "INTERNAL_ERROR - out of memory", 60, 40);
            return;
        }
        ch->pub_msg = m = grown;
        ch->pub_room = room;
    }
    memcpy(msg_body(m) + ch->pub_got, f->payload, f->size);
    ch->pub_got += f->size;
    if (ch->pub_got == m->body_len) {
        ch->content = 0;
        publish_complete(ch);
    }
}

static void on_frame(conn_t *c, const fl_amqp_frame_t *f)
{
    if (f->type == FL_AMQP_FRAME_HEARTBEAT) {
        if (f->channel != 0) {
            char octets[160], text[200];
            erl_octets(octets, sizeof octets, f->payload, f->size);
            snprintf(text, sizeof text, "UNEXPECTED_FRAME - type 8, all octets = %s", octets);
            conn_error(c, FL_AMQP_UNEXPECTED_FRAME, text, 0, 0);
        }
        return;
    }
    if (f->channel == 0 || c->state != C_OPENED) {
        if (f->channel != 0 && c->state != C_CLOSING)
            expected(c, &(fl_amqp_method_t){0}, "connection.open");
        else if (f->channel == 0)
            on_channel0(c, f);
        return;
    }
    channel_t *ch = f->channel < c->nchans ? c->chans[f->channel] : NULL;
    if (f->type != FL_AMQP_FRAME_METHOD) {
        if (ch && ch->state == CH_CLOSING)
            return;
        if (!ch) {
            unexpected_frame(c, "content frame on a channel that is not open");
        } else if (f->type == FL_AMQP_FRAME_HEADER && ch->content == 1) {
            on_header(ch, f);
        } else if (f->type == FL_AMQP_FRAME_BODY && ch->content == 2) {
            on_body(ch, f);
        } else {
            char text[120];
            snprintf(text, sizeof text, "expected %s, got non %s frame instead",
                     ch->content == 2 ? "content body" : "method frame",
                     ch->content == 2 ? "content body" : "method");
            unexpected_frame(c, text);
        }
        return;
    }
    fl_amqp_method_t m;
    if (decode(c, f, &m))
        return;
    if (!ch) {
        if (!is(&m, 20, 10)) {
            conn_error(c, FL_AMQP_CHANNEL_ERROR, "CHANNEL_ERROR - expected 'channel.open'",
                       m.class_id, m.method_id);
            return;
        }
        if (!channel_open(c, f->channel)) {
            conn_error(c, FL_AMQP_INTERNAL_ERROR, "INTERNAL_ERROR - out of memory", 20, 10);
            return;
        }
        fl_amqp_method_frame(conn_out(c), f->channel, 20, 11, "", (size_t)0);
        return;
    }
    if (ch->state == CH_CLOSING) {
        if (is(&m, 20, 41)) {
            channel_free(ch);
        } else if (is(&m, 20, 40)) {
            fl_amqp_method_frame(conn_out(c), ch->id, 20, 41);
        }
        return;
    }
    if (ch->content) {
        conn_error(c, FL_AMQP_UNEXPECTED_FRAME,
                   ch->content == 1 ? "UNEXPECTED_FRAME - expected content header for class 60, "
                                      "got non content header frame instead"
                                    : "UNEXPECTED_FRAME - expected content body, got non content "
                                      "body frame instead",
                   60, 40);
        return;
    }
    if (is(&m, 20, 10)) {
        conn_error(c, FL_AMQP_CHANNEL_ERROR, "CHANNEL_ERROR - second 'channel.open' seen", 20, 10);
        return;
    }
    if (is(&m, 20, 40)) {
        fl_amqp_method_frame(conn_out(c), ch->id, 20, 41);
        channel_free(ch);
        return;
    }
    if (is(&m, 20, 41))
        return; /* close-ok for a close we did not send: nothing to do */
    method_dispatch(c, ch, &m);
}

/* Whether the frame at p is a basic.publish (held back while the broker blocks publishers). */
static int is_publish(const fl_amqp_frame_t *f)
{
    return f->type == FL_AMQP_FRAME_METHOD && f->size >= 4 && f->payload[0] == 0 &&
           f->payload[1] == 60 && f->payload[2] == 0 && f->payload[3] == 40;
}

/* Says what is wrong with the frame at p, as RabbitMQ does, and closes the connection; or
 * returns 1 to wait for the rest of a frame (within frame_max) whose fault shows only whole. */
static int bad_frame(conn_t *c, const uint8_t *p, size_t len)
{
    char octets[160], what[300];
    uint8_t type = p[0];
    uint32_t size = (uint32_t)p[3] << 24 | (uint32_t)p[4] << 16 | (uint32_t)p[5] << 8 | p[6];
    if ((uint64_t)size + 8 > c->frame_max) {
        snprintf(what, sizeof what, "type %u, all octets = <<>>: {frame_too_large,%u,%u}", type,
                 size, c->frame_max - 8);
    } else if (len < (size_t)size + 8) {
        return 1;
    } else {
        erl_octets(octets, sizeof octets, p + 7, size);
        if (type != FL_AMQP_FRAME_METHOD && type != FL_AMQP_FRAME_HEADER &&
            type != FL_AMQP_FRAME_BODY && type != FL_AMQP_FRAME_HEARTBEAT)
            snprintf(what, sizeof what, "type %u, all octets = %s: unknown_frame", type, octets);
        else
            snprintf(what, sizeof what, "type %u, all octets = %s: {invalid_frame_end_marker,%u}",
                     type, octets, p[7 + size]);
    }
    frame_error(c, what);
    /* RabbitMQ waits for nothing after a broken frame: the socket closes once this is out */
    c->close_after_write = 1;
    return 0;
}

static void process(conn_t *c)
{
    while (c->state != C_DEAD && !c->held && !c->close_after_write) {
        const uint8_t *p = (const uint8_t *)c->in.data + c->in_off;
        size_t len = c->in.len - c->in_off;
        if (len == 0)
            break;
        if (c->state == C_HEADER) {
            int rc = fl_amqp_header_check(p, len), legacy = fl_amqp_header_legacy(p, len);
            if (rc == FL_EAGAIN || legacy == FL_EAGAIN)
                break;
            if (legacy > 0) {
                /* 0-9 and 0-8 clients get RabbitMQ's greeting; what follows is 0-9-1 */
                c->in_off += 8;
                send_start(c, legacy == 2 ? 8 : 0, legacy == 2 ? 0 : 9);
                c->state = C_START_OK;
                continue;
            }
            if (rc < 0) {
                /* the protocol version this server speaks, then close */
                broker_event(c->b, "connection %s: bad protocol header", c->peer);
                fl_buf_append(conn_out(c), fl_amqp_protocol_header, 8);
                close_when_written(c);
                break;
            }
            c->in_off += 8;
            send_start(c, 0, 9);
            c->state = C_START_OK;
            continue;
        }
        fl_amqp_frame_t f;
        long n = fl_amqp_frame_parse(p, len, c->frame_max, &f);
        if (n == FL_EAGAIN)
            break;
        if (n < 0) {
            if (bad_frame(c, p, len))
                break; /* the rest of it has not arrived yet */
            c->in_off = c->in.len;
            break;
        }
        if (c->b->blocked && c->state == C_OPENED && is_publish(&f)) {
            c->held = 1;
            if (c->reading) {
                uv_read_stop((uv_stream_t *)&c->tcp);
                c->reading = 0;
            }
            break;
        }
        c->in_off += (size_t)n;
        on_frame(c, &f);
    }
    if (c->state == C_DEAD)
        return;
    if (c->close_after_write)
        c->in_off = c->in.len; /* nothing more is read */
    if (c->in_off == c->in.len) {
        c->in.len = 0;
        c->in_off = 0;
    } else if (c->in_off > 0 && c->in.cap - c->in.len < IN_CHUNK) {
        fl_buf_consume(&c->in, c->in_off);
        c->in_off = 0;
    }
}
