/* Fixture for the fake broker's suites: a loop, a broker listening on 127.0.0.1 (port 0), and
 * scripted clients on the same loop that speak AMQP 0-9-1 through the codec's own encoders
 * and decoders (non-blocking: every wait runs the loop, so the broker runs while a client
 * waits). Every wait is bounded (a watchdog stops the loop, and each wait has its own limit),
 * and fx_close checks that the loop closes cleanly, so a leaked handle fails the test. */
#ifndef FL_TEST_AMQPFX_H
#define FL_TEST_AMQPFX_H

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fakes/amqp/amqp.h"
#include "fakes/amqp/codec.h"
#include "lib/buf.h"
#include "lib/err.h"

#define MS 1000000ull
#define WATCHDOG_MS 30000
#define WAIT_MS 3000
#define MAX_CLIENTS 8

typedef struct cl cl_t;

typedef struct {
    uv_loop_t loop;
    uv_timer_t watchdog;
    uv_timer_t tick; /* keeps UV_RUN_ONCE from sleeping long while a test waits */
    int fired;
    fl_amqp_t *b;
    fl_amqp_config_t cfg;
    int port;
    fl_buf_t events; /* one line per broker event */
    int closed;
    cl_t *clients[MAX_CLIENTS];
} fx_t;

struct cl {
    fx_t *fx;
    uv_tcp_t tcp;
    uv_connect_t creq;
    int connect_status; /* 1 connected; < 0 the error; 0 pending */
    int eof, closed, open;
    fl_buf_t in;
    size_t off;
    fl_buf_t out;
    uint32_t frame_max; /* what the broker may send: checked on every frame */
    fl_amqp_frame_t f;  /* the last frame; its payload is a copy in last */
    fl_buf_t last;
    int heartbeats; /* heartbeat frames received (skipped by cl_frame) */
};

/* What a client says in its handshake. */
typedef struct {
    const char *user, *password, *mechanism, *vhost;
    int cap_blocked, cap_cancel_notify, cap_auth_close;
    uint16_t heartbeat;
    uint32_t frame_max;
} hs_t;

/* A message as a client received it. */
typedef struct {
    uint16_t method;
    uint64_t tag;
    int redelivered;
    uint32_t count; /* get-ok's message count */
    char exchange[256], rkey[256], ctag[256];
    int reply_code; /* basic.return */
    fl_buf_t props; /* flags + list, as on the wire */
    fl_buf_t body;
} msg_in_t;

static inline void msg_free(msg_in_t *m)
{
    fl_buf_free(&m->props);
    fl_buf_free(&m->body);
}

/* ---- loop ---- */

static inline void on_watchdog(uv_timer_t *t)
{
    fx_t *fx = t->data;
    fx->fired = 1;
    uv_stop(t->loop);
}

static inline void on_tick(uv_timer_t *t)
{
    (void)t;
}

static inline void fx_event(void *arg, const char *text)
{
    fx_t *fx = arg;
    fl_buf_printf(&fx->events, "%s\n", text);
    if (getenv("FX_EVENTS"))
        fprintf(stderr, "event: %s\n", text);
}

/* Runs the loop once (waking at least every millisecond). */
static inline void fx_spin(fx_t *fx)
{
    uv_timer_start(&fx->tick, on_tick, 1, 1);
    uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->tick);
}

static inline void fx_run_for(fx_t *fx, uint64_t ms)
{
    uint64_t end = uv_hrtime() + ms * MS;
    while (!fx->fired && uv_hrtime() < end)
        fx_spin(fx);
}

/* Runs the loop until pred(fx, arg) holds or max_ms pass; returns pred. */
static inline int fx_until(fx_t *fx, int (*pred)(fx_t *fx, void *arg), void *arg, uint64_t max_ms)
{
    uint64_t end = uv_hrtime() + max_ms * MS;
    while (!pred(fx, arg) && !fx->fired && uv_hrtime() < end)
        fx_spin(fx);
    return pred(fx, arg);
}

static inline void fx_start_broker(fx_t *fx)
{
    fx->closed = 0;
    ck_assert_int_eq(fl_amqp_new(&fx->loop, &fx->cfg, &fx->b), 0);
    ck_assert_int_eq(fl_amqp_listen(fx->b, "127.0.0.1", 0), 0);
    fx->port = fl_amqp_port(fx->b);
    ck_assert_int_gt(fx->port, 0);
}

/* cfg (may be NULL) is copied; on_event is always the fixture's. */
static inline void fx_init(fx_t *fx, const fl_amqp_config_t *cfg)
{
    signal(SIGPIPE, SIG_IGN);
    memset(fx, 0, sizeof *fx);
    ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->watchdog);
    fx->watchdog.data = fx;
    uv_timer_start(&fx->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_timer_init(&fx->loop, &fx->tick);
    if (cfg)
        fx->cfg = *cfg;
    fx->cfg.on_event = fx_event;
    fx->cfg.event_arg = fx;
    fx_start_broker(fx);
}

static inline void fx_closed(void *arg)
{
    ((fx_t *)arg)->closed = 1;
}

/* Closes the broker (not the loop) and waits until every handle it had is gone. */
static inline void fx_stop_broker(fx_t *fx)
{
    fl_amqp_close(fx->b, fx_closed, fx);
    while (!fx->closed && !fx->fired)
        fx_spin(fx);
    ck_assert_int_eq(fx->closed, 1);
    fx->b = NULL;
}

static inline void cl_free(cl_t *c);

static inline void fx_close(fx_t *fx)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (fx->clients[i])
            cl_free(fx->clients[i]);
    if (fx->b)
        fx_stop_broker(fx);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    fl_buf_free(&fx->events);
    ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
}

static inline int fx_saw(const fx_t *fx, const char *text)
{
    return fx->events.data && strstr(fx->events.data, text) != NULL;
}

static inline fl_amqp_queue_stats_t fx_stats(fx_t *fx, const char *queue)
{
    fl_amqp_queue_stats_t st;
    int rc = fl_amqp_queue_stats(fx->b, NULL, queue, &st);
    ck_assert_msg(rc == 0, "no queue '%s'", queue);
    return st;
}

/* ---- a client ---- */

static inline void cl_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    cl_t *c = h->data;
    (void)hint;
    if (fl_buf_reserve(&c->in, 65536)) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static inline void cl_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    cl_t *c = s->data;
    (void)buf;
    if (n < 0) {
        c->eof = 1;
        uv_read_stop(s);
        return;
    }
    c->in.len += (size_t)n;
}

static inline void cl_on_connect(uv_connect_t *req, int status)
{
    cl_t *c = req->data;
    c->connect_status = status < 0 ? status : 1;
    if (status == 0)
        uv_read_start((uv_stream_t *)&c->tcp, cl_on_alloc, cl_on_read);
}

static inline void cl_on_closed(uv_handle_t *h)
{
    ((cl_t *)h->data)->closed = 1;
}

/* Connects to port on 127.0.0.1; returns 1 (connected) or the libuv error. */
static inline int cl_connect_port(fx_t *fx, cl_t *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fx = fx;
    c->frame_max = FL_AMQP_FRAME_MIN;
    uv_tcp_init(&fx->loop, &c->tcp);
    c->tcp.data = c;
    c->open = 1;
    int slot = 0;
    while (slot < MAX_CLIENTS && fx->clients[slot])
        slot++;
    ck_assert_int_lt(slot, MAX_CLIENTS);
    fx->clients[slot] = c;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    c->creq.data = c;
    ck_assert_int_eq(uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&sa, cl_on_connect), 0);
    uint64_t end = uv_hrtime() + WAIT_MS * MS;
    while (!c->connect_status && !fx->fired && uv_hrtime() < end)
        fx_spin(fx);
    ck_assert_msg(c->connect_status != 0, "connect: no answer");
    return c->connect_status;
}

static inline void cl_connect(fx_t *fx, cl_t *c)
{
    int rc = cl_connect_port(fx, c, fx->port);
    ck_assert_msg(rc == 1, "connect: %s", uv_strerror(rc));
}

static inline void cl_free(cl_t *c)
{
    fx_t *fx = c->fx;
    if (c->open) {
        c->open = 0;
        uv_close((uv_handle_t *)&c->tcp, cl_on_closed);
        /* a connect still pending is cancelled by the close, and its callback runs */
        while ((!c->closed || !c->connect_status) && !fx->fired)
            fx_spin(fx);
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (fx->clients[i] == c)
            fx->clients[i] = NULL;
    fl_buf_free(&c->in);
    fl_buf_free(&c->out);
    fl_buf_free(&c->last);
}

typedef struct {
    uv_write_t req;
    char data[];
} wr_t;

static inline void cl_on_write(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static inline void cl_write(cl_t *c, const void *p, size_t len)
{
    if (!c->open || c->eof || len == 0)
        return;
    wr_t *w = malloc(sizeof *w + len);
    ck_assert_ptr_nonnull(w);
    memcpy(w->data, p, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, cl_on_write) < 0)
        free(w);
}

/* Writes what the encoders appended to c->out. */
static inline void cl_flush(cl_t *c)
{
    cl_write(c, c->out.data, c->out.len);
    fl_buf_reset(&c->out);
}

/* Sends one method frame: the arguments as fl_amqp_method_frame takes them. */
#define SEND(c, ch, cls, mid, ...)                                                                 \
    do {                                                                                           \
        ck_assert_int_eq(fl_amqp_method_frame(&(c)->out, ch, cls, mid, ##__VA_ARGS__), 0);         \
        cl_flush(c);                                                                               \
    } while (0)

static inline const char *frame_name(const fl_amqp_frame_t *f, char *buf, size_t n)
{
    if (f->type != FL_AMQP_FRAME_METHOD) {
        snprintf(buf, n, "frame type %u on channel %u", f->type, f->channel);
        return buf;
    }
    fl_amqp_method_t m;
    fl_amqp_method_decode(f->payload, f->size, &m);
    if (m.spec && (m.class_id == 10 || m.class_id == 20) &&
        m.method_id == 40 + 10 * (m.class_id == 10))
        snprintf(buf, n, "%s %llu '%.*s' on channel %u", m.spec->name,
                 (unsigned long long)m.args[0].u, (int)m.args[1].len, (const char *)m.args[1].p,
                 f->channel);
    else
        snprintf(buf, n, "%s on channel %u", m.spec ? m.spec->name : "an unknown method",
                 f->channel);
    return buf;
}

/* A frame fully in the buffer, copied to c->f (heartbeats counted and skipped). Returns 1, or 0
 * when none is complete. */
static inline int cl_take(cl_t *c)
{
    for (;;) {
        fl_amqp_frame_t f;
        long n = fl_amqp_frame_parse((uint8_t *)c->in.data + c->off, c->in.len - c->off,
                                     c->frame_max, &f);
        if (n == FL_EAGAIN)
            return 0;
        ck_assert_msg(n > 0, "the broker sent a frame that does not parse: %ld", n);
        c->off += (size_t)n;
        if (f.type == FL_AMQP_FRAME_HEARTBEAT) {
            ck_assert_int_eq(f.channel, 0);
            c->heartbeats++;
            continue;
        }
        fl_buf_reset(&c->last);
        fl_buf_append(&c->last, f.payload, f.size);
        fl_buf_puts(&c->last, "");
        c->f = f;
        c->f.payload = (const uint8_t *)c->last.data;
        return 1;
    }
}

/* Waits for the next frame. Returns 1 (in c->f), 0 after max_ms, -1 once the broker closed
 * the connection with no frame left. */
static inline int cl_frame(cl_t *c, uint64_t max_ms)
{
    uint64_t end = uv_hrtime() + max_ms * MS;
    for (;;) {
        if (cl_take(c))
            return 1;
        if (c->eof)
            return -1;
        if (c->fx->fired || uv_hrtime() >= end)
            return 0;
        fx_spin(c->fx);
    }
}

/* The next frame must be method cls.mid on channel ch; decoded into m (valid until the next
 * frame). */
static inline void cl_expect(cl_t *c, uint16_t ch, uint16_t cls, uint16_t mid, fl_amqp_method_t *m)
{
    const fl_amqp_method_spec_t *want = fl_amqp_method_find(cls, mid);
    int rc = cl_frame(c, WAIT_MS);
    ck_assert_msg(rc == 1, "waiting for %s on channel %u: %s", want ? want->name : "?", ch,
                  rc ? "connection closed" : "timeout");
    char what[400];
    ck_assert_msg(c->f.type == FL_AMQP_FRAME_METHOD && c->f.channel == ch,
                  "wanted %s on channel %u, got %s", want ? want->name : "?", ch,
                  frame_name(&c->f, what, sizeof what));
    fl_amqp_method_t local;
    if (!m)
        m = &local;
    ck_assert_int_eq(fl_amqp_method_decode(c->f.payload, c->f.size, m), 0);
    ck_assert_msg(m->class_id == cls && m->method_id == mid, "wanted %s on channel %u, got %s",
                  want ? want->name : "?", ch, frame_name(&c->f, what, sizeof what));
}

/* Runs the loop for ms and checks nothing but heartbeats came. */
static inline void cl_quiet(cl_t *c, uint64_t ms)
{
    fx_run_for(c->fx, ms);
    char what[400];
    ck_assert_msg(!cl_take(c), "unexpected %s", frame_name(&c->f, what, sizeof what));
}

/* Waits until the broker closes the socket; fails on any frame first. */
static inline void cl_expect_eof(cl_t *c, uint64_t max_ms)
{
    int rc = cl_frame(c, max_ms);
    char what[400];
    ck_assert_msg(rc == -1, "wanted the connection closed, got %s",
                  rc ? frame_name(&c->f, what, sizeof what) : "a timeout");
}

static inline int arg_is(const fl_amqp_arg_t *a, const char *s)
{
    return a->len == strlen(s) && memcmp(a->p, s, a->len) == 0;
}

static inline int arg_has(const fl_amqp_arg_t *a, const char *s)
{
    return memmem(a->p, a->len, s, strlen(s)) != NULL;
}

/* connection.close with code (and text containing `text`); answers close-ok, then the socket
 * must close. */
static inline void cl_expect_conn_close(cl_t *c, int code, const char *text)
{
    fl_amqp_method_t m;
    cl_expect(c, 0, 10, 50, &m);
    ck_assert_msg(m.args[0].u == (uint64_t)code, "close %llu '%.*s', wanted %d",
                  (unsigned long long)m.args[0].u, (int)m.args[1].len, (const char *)m.args[1].p,
                  code);
    if (text)
        ck_assert_msg(arg_has(&m.args[1], text), "close text '%.*s' lacks '%s'", (int)m.args[1].len,
                      (const char *)m.args[1].p, text);
    SEND(c, 0, 10, 51);
    cl_expect_eof(c, WAIT_MS);
}

/* channel.close with code on ch; answers close-ok. */
static inline void cl_expect_ch_close(cl_t *c, uint16_t ch, int code, const char *text)
{
    fl_amqp_method_t m;
    cl_expect(c, ch, 20, 40, &m);
    ck_assert_msg(m.args[0].u == (uint64_t)code, "channel close %llu '%.*s', wanted %d",
                  (unsigned long long)m.args[0].u, (int)m.args[1].len, (const char *)m.args[1].p,
                  code);
    if (text)
        ck_assert_msg(arg_has(&m.args[1], text), "close text '%.*s' lacks '%s'", (int)m.args[1].len,
                      (const char *)m.args[1].p, text);
    SEND(c, ch, 20, 41);
}

static inline void cl_start_ok(cl_t *c, const hs_t *h)
{
    fl_buf_t props = FL_BUF_INIT, caps = FL_BUF_INIT, resp = FL_BUF_INIT;
    if (h->cap_blocked)
        fl_amqp_field_bool(&caps, "connection.blocked", 1);
    if (h->cap_cancel_notify)
        fl_amqp_field_bool(&caps, "consumer_cancel_notify", 1);
    if (h->cap_auth_close)
        fl_amqp_field_bool(&caps, "authentication_failure_close", 1);
    fl_amqp_field_bool(&caps, "publisher_confirms", 1);
    fl_amqp_field_str(&props, "product", "faultline test client");
    fl_amqp_put_shortstr(&props, "capabilities", 12);
    fl_amqp_put_u8(&props, 'F');
    fl_amqp_put_longstr(&props, caps.data, caps.len);
    const char *user = h->user ? h->user : "guest", *pass = h->password ? h->password : "guest";
    const char *mech = h->mechanism ? h->mechanism : "PLAIN";
    if (strcmp(mech, "AMQPLAIN") == 0) {
        fl_amqp_field_str(&resp, "LOGIN", user);
        fl_amqp_field_str(&resp, "PASSWORD", pass);
    } else {
        fl_buf_printf(&resp, "%c%s%c%s", 0, user, 0, pass);
    }
    SEND(c, 0, 10, 11, props.data, props.len, mech, resp.data, resp.len, "en_US");
    fl_buf_free(&props);
    fl_buf_free(&caps);
    fl_buf_free(&resp);
}

/* Protocol header, start → start-ok, tune → tune-ok, open → open-ok. */
static inline void cl_handshake(cl_t *c, const hs_t *h)
{
    static const hs_t defaults = {0};
    if (!h)
        h = &defaults;
    cl_write(c, fl_amqp_protocol_header, 8);
    fl_amqp_method_t m;
    cl_expect(c, 0, 10, 10, &m);
    cl_start_ok(c, h);
    cl_expect(c, 0, 10, 30, &m);
    uint32_t fmax = h->frame_max ? h->frame_max : (uint32_t)m.args[1].u;
    SEND(c, 0, 10, 31, (int)m.args[0].u, fmax, (int)h->heartbeat);
    c->frame_max = fmax;
    SEND(c, 0, 10, 40, h->vhost ? h->vhost : "/", "", 0);
    cl_expect(c, 0, 10, 41, NULL);
}

static inline void cl_open(fx_t *fx, cl_t *c, const hs_t *h)
{
    cl_connect(fx, c);
    cl_handshake(c, h);
}

static inline void cl_channel(cl_t *c, uint16_t ch)
{
    SEND(c, ch, 20, 10, "");
    cl_expect(c, ch, 20, 11, NULL);
}

/* A round trip on ch: everything sent before has been handled. */
static inline void cl_sync(cl_t *c, uint16_t ch)
{
    SEND(c, ch, 40, 10, 0, "amq.direct", "direct", 1, 0, 0, 0, 0, NULL, (size_t)0);
    cl_expect(c, ch, 40, 11, NULL);
}

/* queue.declare with args (table contents; NULL for none); returns the message count. */
static inline uint32_t cl_declare_args(cl_t *c, uint16_t ch, const char *q, int durable,
                                       int exclusive, const fl_buf_t *args)
{
    SEND(c, ch, 50, 10, 0, q, 0, durable, exclusive, 0, 0, args ? args->data : NULL,
         args ? args->len : (size_t)0);
    fl_amqp_method_t m;
    cl_expect(c, ch, 50, 11, &m);
    ck_assert(q[0] == 0 || arg_is(&m.args[0], q));
    return (uint32_t)m.args[1].u;
}

static inline uint32_t cl_declare(cl_t *c, uint16_t ch, const char *q)
{
    return cl_declare_args(c, ch, q, 0, 0, NULL);
}

static inline void cl_bind(cl_t *c, uint16_t ch, const char *q, const char *x, const char *rk,
                           const fl_buf_t *args)
{
    SEND(c, ch, 50, 20, 0, q, x, rk, 0, args ? args->data : NULL, args ? args->len : (size_t)0);
    cl_expect(c, ch, 50, 21, NULL);
}

/* Properties: delivery mode (0: absent), expiration (NULL: absent), headers (NULL: absent). */
static inline void mkprops(fl_buf_t *out, int delivery_mode, const char *expiration,
                           const fl_buf_t *headers)
{
    fl_amqp_props_t pr;
    memset(&pr, 0, sizeof pr);
    if (delivery_mode) {
        pr.flags |= 1u << (15 - FL_AMQP_P_DELIVERY_MODE);
        pr.v[FL_AMQP_P_DELIVERY_MODE].u = (uint64_t)delivery_mode;
    }
    if (expiration) {
        pr.flags |= 1u << (15 - FL_AMQP_P_EXPIRATION);
        pr.v[FL_AMQP_P_EXPIRATION].p = (const uint8_t *)expiration;
        pr.v[FL_AMQP_P_EXPIRATION].len = (uint32_t)strlen(expiration);
    }
    if (headers) {
        pr.flags |= 1u << (15 - FL_AMQP_P_HEADERS);
        pr.v[FL_AMQP_P_HEADERS].p = (const uint8_t *)headers->data;
        pr.v[FL_AMQP_P_HEADERS].len = (uint32_t)headers->len;
    }
    ck_assert_int_eq(fl_amqp_props_encode(out, &pr), 0);
}

/* basic.publish + header + bodies (split at the negotiated frame_max). */
static inline void cl_publish_props(cl_t *c, uint16_t ch, const char *x, const char *rk,
                                    int mandatory, const fl_buf_t *props, const void *body,
                                    size_t len)
{
    ck_assert_int_eq(fl_amqp_method_frame(&c->out, ch, 60, 40, 0, x, rk, mandatory, 0), 0);
    ck_assert_int_eq(
        fl_amqp_header_frame(&c->out, ch, len, (const uint8_t *)props->data, props->len), 0);
    ck_assert_int_eq(fl_amqp_body_frames(&c->out, ch, body, len, c->frame_max), 0);
    cl_flush(c);
}

static inline void cl_publish(cl_t *c, uint16_t ch, const char *x, const char *rk, int mode,
                              const char *body)
{
    fl_buf_t props = FL_BUF_INIT;
    mkprops(&props, mode, NULL, NULL);
    cl_publish_props(c, ch, x, rk, 0, &props, body, strlen(body));
    fl_buf_free(&props);
}

static inline void copy_arg(char out[256], const fl_amqp_arg_t *a)
{
    memcpy(out, a->p, a->len);
    out[a->len] = 0;
}

/* After a content-bearing method: its header and bodies. */
static inline void cl_content(cl_t *c, uint16_t ch, msg_in_t *d)
{
    int rc = cl_frame(c, WAIT_MS);
    ck_assert_msg(rc == 1 && c->f.type == FL_AMQP_FRAME_HEADER && c->f.channel == ch,
                  "no content header on channel %u", ch);
    uint16_t cls;
    uint64_t size;
    fl_amqp_props_t pr;
    size_t poff;
    ck_assert_int_eq(fl_amqp_header_decode(c->f.payload, c->f.size, &cls, &size, &pr, &poff), 0);
    ck_assert_int_eq(cls, 60);
    fl_buf_reset(&d->props);
    fl_buf_reset(&d->body);
    fl_buf_append(&d->props, c->f.payload + poff, c->f.size - poff);
    fl_buf_puts(&d->body, "");
    while (d->body.len < size) {
        rc = cl_frame(c, WAIT_MS);
        ck_assert_msg(rc == 1 && c->f.type == FL_AMQP_FRAME_BODY && c->f.channel == ch,
                      "no body frame on channel %u", ch);
        fl_buf_append(&d->body, c->f.payload, c->f.size);
    }
    ck_assert_uint_eq(d->body.len, size);
}

/* basic.deliver on ch, with its content. */
static inline void cl_deliver(cl_t *c, uint16_t ch, msg_in_t *d)
{
    fl_amqp_method_t m;
    cl_expect(c, ch, 60, 60, &m);
    d->method = 60;
    copy_arg(d->ctag, &m.args[0]);
    d->tag = m.args[1].u;
    d->redelivered = (int)m.args[2].u;
    copy_arg(d->exchange, &m.args[3]);
    copy_arg(d->rkey, &m.args[4]);
    cl_content(c, ch, d);
}

/* basic.get: 1 and d filled (get-ok), or 0 (get-empty). */
static inline int cl_get(cl_t *c, uint16_t ch, const char *q, int no_ack, msg_in_t *d)
{
    SEND(c, ch, 60, 70, 0, q, no_ack);
    int rc = cl_frame(c, WAIT_MS);
    ck_assert_msg(rc == 1 && c->f.type == FL_AMQP_FRAME_METHOD, "basic.get %s: no answer", q);
    fl_amqp_method_t m;
    ck_assert_int_eq(fl_amqp_method_decode(c->f.payload, c->f.size, &m), 0);
    if (m.class_id == 60 && m.method_id == 72)
        return 0;
    char what[400];
    ck_assert_msg(m.class_id == 60 && m.method_id == 71, "basic.get %s: %s", q,
                  frame_name(&c->f, what, sizeof what));
    d->method = 71;
    d->tag = m.args[0].u;
    d->redelivered = (int)m.args[1].u;
    copy_arg(d->exchange, &m.args[2]);
    copy_arg(d->rkey, &m.args[3]);
    d->count = (uint32_t)m.args[4].u;
    cl_content(c, ch, d);
    return 1;
}

static inline int body_is(const msg_in_t *d, const char *s)
{
    return d->body.len == strlen(s) && memcmp(d->body.data, s, d->body.len) == 0;
}

#endif
