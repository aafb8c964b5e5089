/* Unit tests for lib/httpc: a real loop and real servers on 127.0.0.1, port 0, in the same
 * thread. Well-behaved servers are lib/httpd; misbehaving ones are raw libuv TCP servers that
 * wait for the request head, then send scripted pieces (some time apart) and then hold the
 * connection, close it or reset it. Every wait is bounded by a watchdog timer, and every
 * test ends by closing the loop cleanly, so a leaked handle fails it. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/http.h"
#include "lib/httpc.h"
#include "lib/httpd.h"

#define MS 1000000ull
#define WATCHDOG_MS 10000
/* A timeout for requests that should end long before it, so that a wrong wait shows up as
 * FL_ETIMEOUT rather than as the watchdog. */
#define GUARD_NS (5000 * MS)
/* How late a timeout may fire (the sanitizer build is slow). */
#define LATE_NS (1500 * MS)

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct {
    uv_loop_t loop;
    uv_timer_t watchdog;
    int fired;
} fx_t;

/* What one callback saw. */
typedef struct {
    int calls;
    int status;
    int error;
    fl_buf_t body;
    int nul_terminated;
    size_t nheaders;
    char reply[64]; /* the response's X-Reply header, or "" */
    char clen[32];  /* its Content-Length, or "" */
    int has_link;   /* it has a Link header (sent only in a 103) */
    uint64_t total_ns;
} got_t;

/* ---- fixture ---- */

static void on_watchdog(uv_timer_t *t)
{
    fx_t *fx = t->data;
    fx->fired = 1;
    uv_stop(t->loop);
}

static void fx_init(fx_t *fx)
{
    memset(fx, 0, sizeof *fx);
    ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
    ck_assert_int_eq(uv_timer_init(&fx->loop, &fx->watchdog), 0);
    fx->watchdog.data = fx;
    ck_assert_int_eq(uv_timer_start(&fx->watchdog, on_watchdog, WATCHDOG_MS, 0), 0);
    uv_unref((uv_handle_t *)&fx->watchdog); /* it must not keep the loop alive by itself */
}

/* Runs the loop until *count reaches want (or the watchdog fires, or nothing is left). */
static void run_until(fx_t *fx, const int *count, int want)
{
    while (*count < want && !fx->fired)
        if (!uv_run(&fx->loop, UV_RUN_ONCE) && *count < want)
            break;
    ck_assert_msg(!fx->fired, "watchdog fired");
    ck_assert_int_eq(*count, want);
}

static void on_nap(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop for ms milliseconds. */
static void run_for(fx_t *fx, unsigned ms)
{
    uv_timer_t t;
    int done = 0;
    ck_assert_int_eq(uv_timer_init(&fx->loop, &t), 0);
    t.data = &done;
    ck_assert_int_eq(uv_timer_start(&t, on_nap, ms, 0), 0);
    run_until(fx, &done, 1);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

/* Once the servers are closed: runs the loop until every handle is gone, then closes the
 * watchdog. The caller then checks uv_loop_close. */
static void fx_drain(fx_t *fx)
{
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    ck_assert_msg(!fx->fired, "watchdog fired while draining");
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
}

static void copy_header(const fl_httpc_result_t *res, const char *name, char *out, size_t len)
{
    size_t n;
    const char *v = fl_http_header_get(res->headers, res->nheaders, name, &n);
    if (!v)
        n = 0;
    if (n >= len)
        n = len - 1;
    memcpy(out, v ? v : "", n);
    out[n] = '\0';
}

static void on_got(void *arg, const fl_httpc_result_t *res)
{
    got_t *g = arg;
    g->calls++;
    g->status = res->status;
    g->error = res->error;
    g->total_ns = res->total_ns;
    g->nheaders = res->nheaders;
    ck_assert_ptr_nonnull(res->body);
    ck_assert_int_eq(fl_buf_append(&g->body, res->body, res->body_len), 0);
    g->nul_terminated = res->body[res->body_len] == '\0';
    copy_header(res, "X-Reply", g->reply, sizeof g->reply);
    copy_header(res, "Content-Length", g->clen, sizeof g->clen);
    g->has_link = fl_http_header_get(res->headers, res->nheaders, "Link", NULL) != NULL;
}

static fl_httpc_opts_t opts_for(int port, const char *target)
{
    fl_httpc_opts_t o = {
        .host = "127.0.0.1", .port = port, .target = target, .timeout_ns = GUARD_NS};
    return o;
}

/* Makes one request and waits for its answer. */
static void request(fx_t *fx, const fl_httpc_opts_t *o, got_t *g)
{
    fl_httpc_req_t *req = NULL;
    memset(g, 0, sizeof *g);
    ck_assert_int_eq(fl_httpc_request(&fx->loop, o, on_got, g, &req), 0);
    ck_assert_ptr_nonnull(req);
    ck_assert_int_eq(g->calls, 0); /* never from inside the call */
    run_until(fx, &g->calls, 1);
}

/* ---- a well-behaved server: lib/httpd ---- */

typedef struct {
    fl_httpd_t *httpd;
    int port;
    int requests;
    char method[16];
    char target[128];
    char body[128];
    char x_test[64];
    char host[64];
    char clen[32];
    char connection[32];
    char ctype[64];
} good_t;

static void copy_str(char *out, size_t len, const char *s)
{
    snprintf(out, len, "%s", s ? s : "");
}

/* /nocontent: 204; /big: 1000 bytes; /echo: "METHOD target body"; anything else: its path,
 * with X-Reply: hello. */
static void good_handler(fl_httpd_exchange_t *ex, void *arg)
{
    good_t *g = arg;
    size_t len;
    const char *body = fl_httpd_body(ex, &len);
    const char *path = fl_httpd_path(ex);
    g->requests++;
    copy_str(g->method, sizeof g->method, fl_httpd_method(ex));
    copy_str(g->target, sizeof g->target, fl_httpd_target(ex));
    snprintf(g->body, sizeof g->body, "%.*s", (int)len, body);
    copy_str(g->x_test, sizeof g->x_test, fl_httpd_header(ex, "X-Test"));
    copy_str(g->host, sizeof g->host, fl_httpd_header(ex, "Host"));
    copy_str(g->clen, sizeof g->clen, fl_httpd_header(ex, "Content-Length"));
    copy_str(g->connection, sizeof g->connection, fl_httpd_header(ex, "Connection"));
    copy_str(g->ctype, sizeof g->ctype, fl_httpd_header(ex, "Content-Type"));
    if (strcmp(path, "/nocontent") == 0) {
        ck_assert_int_eq(fl_httpd_respond(ex, 204, NULL, NULL, NULL, 0), 0);
    } else if (strcmp(path, "/big") == 0) {
        char big[1000];
        memset(big, 'x', sizeof big);
        ck_assert_int_eq(fl_httpd_respond(ex, 200, NULL, NULL, big, sizeof big), 0);
    } else if (strcmp(path, "/echo") == 0) {
        char out[512];
        int n = snprintf(out, sizeof out, "%s %s %.*s", fl_httpd_method(ex), fl_httpd_target(ex),
                         (int)len, body);
        ck_assert_int_eq(fl_httpd_respond(ex, 200, NULL, "text/plain", out, (size_t)n), 0);
    } else {
        ck_assert_int_eq(
            fl_httpd_respond(ex, 200, "X-Reply: hello\r\n", "text/plain", path, strlen(path)), 0);
    }
}

static int good_start(fx_t *fx, good_t *g, const char *host)
{
    fl_httpd_config_t cfg = {.handler = good_handler, .arg = g};
    memset(g, 0, sizeof *g);
    int rc = fl_httpd_start(&fx->loop, host, 0, &cfg, &g->httpd);
    if (rc)
        return rc;
    g->port = fl_httpd_port(g->httpd);
    ck_assert_int_gt(g->port, 0);
    return 0;
}

static void good_stop(good_t *g)
{
    ck_assert_int_eq(fl_httpd_close(g->httpd, NULL, NULL), 0);
}

/* ---- misbehaving servers: raw libuv TCP ---- */

enum { THEN_HOLD, THEN_CLOSE, THEN_RESET };

typedef struct raw_conn raw_conn_t;

typedef struct {
    uv_tcp_t listener;
    int port;
    const char *const *pieces; /* NULL-terminated; sent once the request head is in */
    unsigned gap_ms;           /* between pieces */
    int then;                  /* after the last piece */
    int no_read;               /* never read: the client's writes back up */
    int accepted;
    int heads; /* request heads seen */
    void (*on_head)(void *arg);
    void *on_head_arg;
    raw_conn_t *conns;
} raw_t;

struct raw_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write;
    raw_t *srv;
    raw_conn_t *next;
    fl_buf_t in;
    int step;
    int started;
    int handles;
    int closing;
};

static void raw_conn_closed(uv_handle_t *h)
{
    raw_conn_t *c = h->data;
    if (--c->handles)
        return;
    raw_conn_t **p = &c->srv->conns;
    while (*p != c)
        p = &(*p)->next;
    *p = c->next;
    fl_buf_free(&c->in);
    free(c);
}

static void raw_conn_close(raw_conn_t *c, int reset)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->timer, raw_conn_closed);
    if (!reset || uv_tcp_close_reset(&c->tcp, raw_conn_closed))
        uv_close((uv_handle_t *)&c->tcp, raw_conn_closed);
}

static void raw_written(uv_write_t *w, int status);

/* Sends the next piece, or does what comes after the last. */
static void raw_next(raw_conn_t *c)
{
    const char *piece = c->srv->pieces ? c->srv->pieces[c->step] : NULL;
    if (piece) {
        uv_buf_t b = uv_buf_init((char *)piece, (unsigned)strlen(piece));
        if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, raw_written))
            raw_conn_close(c, 0);
    } else if (c->srv->then != THEN_HOLD) {
        raw_conn_close(c, c->srv->then == THEN_RESET);
    }
}

static void raw_tick(uv_timer_t *t)
{
    raw_next(t->data);
}

static void raw_written(uv_write_t *w, int status)
{
    raw_conn_t *c = container_of(w, raw_conn_t, write);
    if (c->closing)
        return;
    if (status < 0) {
        raw_conn_close(c, 0);
        return;
    }
    c->step++;
    if (c->srv->pieces[c->step] && c->srv->gap_ms)
        uv_timer_start(&c->timer, raw_tick, c->srv->gap_ms, 0);
    else
        raw_next(c);
}

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    raw_conn_t *c = h->data;
    ck_assert_int_eq(fl_buf_reserve(&c->in, 4096), 0);
    *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    raw_conn_t *c = s->data;
    if (nread < 0) {
        raw_conn_close(c, 0);
        return;
    }
    c->in.len += (size_t)nread;
    c->in.data[c->in.len] = '\0';
    if (!c->started && strstr(c->in.data, "\r\n\r\n")) {
        c->started = 1;
        c->srv->heads++;
        if (c->srv->on_head)
            c->srv->on_head(c->srv->on_head_arg);
        raw_next(c);
    }
    if (c->started)
        c->in.len = 0; /* the rest (a body) is not looked at */
}

static void raw_accept(uv_stream_t *server, int status)
{
    raw_t *s = server->data;
    ck_assert_int_eq(status, 0);
    raw_conn_t *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->srv = s;
    ck_assert_int_eq(uv_tcp_init(server->loop, &c->tcp), 0);
    ck_assert_int_eq(uv_timer_init(server->loop, &c->timer), 0);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = s->conns;
    s->conns = c;
    s->accepted++;
    ck_assert_int_eq(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
    if (!s->no_read)
        ck_assert_int_eq(uv_read_start((uv_stream_t *)&c->tcp, raw_alloc, raw_read), 0);
}

static void raw_start(fx_t *fx, raw_t *s, const char *const *pieces, int then)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    memset(s, 0, sizeof *s);
    s->pieces = pieces;
    s->then = then;
    ck_assert_int_eq(uv_tcp_init(&fx->loop, &s->listener), 0);
    s->listener.data = s;
    ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    ck_assert_int_eq(uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&s->listener, 256, raw_accept), 0);
    ck_assert_int_eq(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len), 0);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void raw_stop(raw_t *s)
{
    uv_close((uv_handle_t *)&s->listener, NULL);
    for (raw_conn_t *c = s->conns; c; c = c->next)
        raw_conn_close(c, 0);
}

/* One request to a raw server sending pieces and then doing `then`. */
static void raw_request(fx_t *fx, const char *const *pieces, int then, size_t max_body, got_t *g)
{
    raw_t s;
    raw_start(fx, &s, pieces, then);
    fl_httpc_opts_t o = opts_for(s.port, "/");
    o.max_body = max_body;
    request(fx, &o, g);
    ck_assert_int_eq(s.heads, 1);
    raw_stop(&s);
    uv_run(&fx->loop, UV_RUN_DEFAULT); /* s lives on this stack frame */
}

static void got_free(got_t *g)
{
    fl_buf_free(&g->body);
}

/* ---- well-formed exchanges ---- */

START_TEST(get_with_content_length)
{
    fx_t fx;
    good_t g;
    got_t got;
    fx_init(&fx);
    ck_assert_int_eq(good_start(&fx, &g, "127.0.0.1"), 0);
    fl_httpc_opts_t o = opts_for(g.port, "/hello?x=1");
    o.timeout_ns = 0; /* none: the watchdog guards */
    request(&fx, &o, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_int_eq(got.status, 200);
    ck_assert_str_eq(got.body.data, "/hello");
    ck_assert_int_eq(got.body.len, 6);
    ck_assert(got.nul_terminated);
    ck_assert_str_eq(got.reply, "hello");
    ck_assert_str_eq(got.clen, "6");
    ck_assert_uint_gt(got.total_ns, 0);
    ck_assert_str_eq(g.method, "GET");
    ck_assert_str_eq(g.target, "/hello?x=1");
    got_free(&got);

    /* Defaults: GET /. */
    o = opts_for(g.port, NULL);
    request(&fx, &o, &got);
    ck_assert_int_eq(got.status, 200);
    ck_assert_str_eq(g.target, "/");
    ck_assert_str_eq(g.clen, "0");
    ck_assert_int_eq(g.requests, 2);
    got_free(&got);

    good_stop(&g);
    fx_drain(&fx);
    ck_assert_int_eq(got.calls, 1);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(post_with_body_and_headers)
{
    fx_t fx;
    good_t g;
    got_t got;
    char host[64];
    fx_init(&fx);
    ck_assert_int_eq(good_start(&fx, &g, "127.0.0.1"), 0);
    fl_httpc_opts_t o = opts_for(g.port, "/echo?x=1");
    o.method = "POST";
    o.headers = "X-Test: abc\r\nContent-Type: text/plain\r\n";
    o.body = "payload";
    o.body_len = 7;
    request(&fx, &o, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_int_eq(got.status, 200);
    ck_assert_str_eq(got.body.data, "POST /echo?x=1 payload");
    ck_assert_str_eq(g.method, "POST");
    ck_assert_str_eq(g.body, "payload");
    ck_assert_str_eq(g.x_test, "abc");
    ck_assert_str_eq(g.ctype, "text/plain");
    ck_assert_str_eq(g.clen, "7");
    ck_assert_str_eq(g.connection, "close");
    snprintf(host, sizeof host, "127.0.0.1:%d", g.port);
    ck_assert_str_eq(g.host, host);
    got_free(&got);
    good_stop(&g);
    fx_drain(&fx);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(no_body_for_204_and_head)
{
    fx_t fx;
    good_t g;
    got_t got;
    fx_init(&fx);
    ck_assert_int_eq(good_start(&fx, &g, "127.0.0.1"), 0);
    fl_httpc_opts_t o = opts_for(g.port, "/nocontent");
    request(&fx, &o, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_int_eq(got.status, 204);
    ck_assert_int_eq(got.body.len, 0);
    ck_assert(got.nul_terminated);
    got_free(&got);

    /* HEAD gets Content-Length: 6 and no body; waiting for one would end in FL_ECLOSED. */
    o = opts_for(g.port, "/hello");
    o.method = "HEAD";
    request(&fx, &o, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_int_eq(got.status, 200);
    ck_assert_str_eq(got.clen, "6");
    ck_assert_int_eq(got.body.len, 0);
    ck_assert_str_eq(g.method, "HEAD");
    got_free(&got);
    good_stop(&g);

    /* 304 with a Content-Length, on a connection left open: done at the head. */
    static const char *const not_modified[] = {
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nX-Reply: nm\r\n\r\n", NULL};
    raw_request(&fx, not_modified, THEN_HOLD, 0, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_int_eq(got.status, 304);
    ck_assert_int_eq(got.body.len, 0);
    ck_assert_str_eq(got.reply, "nm");
    ck_assert_uint_lt(got.total_ns, GUARD_NS / 2);
    got_free(&got);

    /* Likewise a 204 without Content-Length (else the body would run until close). */
    static const char *const no_content[] = {"HTTP/1.1 204 No Content\r\n\r\n", NULL};
    raw_request(&fx, no_content, THEN_HOLD, 0, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_int_eq(got.status, 204);
    ck_assert_int_eq(got.body.len, 0);
    ck_assert_uint_lt(got.total_ns, GUARD_NS / 2);
    got_free(&got);
    fx_drain(&fx);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(content_length_in_pieces_without_close)
{
    fx_t fx;
    got_t got;
    static const char *const pieces[] = {"HTTP/1.1 2", "00 OK\r\nContent-",
                                         "Length: 5\r\nX-Reply: p\r\n\r\nhe", "llo", NULL};
    fx_init(&fx);
    raw_request(&fx, pieces, THEN_HOLD, 0, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_int_eq(got.status, 200);
    ck_assert_str_eq(got.body.data, "hello");
    ck_assert_str_eq(got.reply, "p");
    ck_assert_uint_lt(got.total_ns, GUARD_NS / 2);
    got_free(&got);

    /* Bytes past Content-Length are not part of the body. */
    static const char *const extra[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 500 Oops\r\n\r\n", NULL};
    raw_request(&fx, extra, THEN_CLOSE, 0, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_str_eq(got.body.data, "ok");
    got_free(&got);
    fx_drain(&fx);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(chunked_response)
{
    fx_t fx;
    got_t got;
    static const char *const pieces[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Reply: chunked\r\n\r\n5\r\nhel",
        "lo\r\n6;ext=1\r\n wor", "ld\r\n1",
        "0\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\nHTTP/1.1 500 Oops\r\n\r\n", NULL};
    fx_init(&fx);
    raw_request(&fx, pieces, THEN_HOLD, 0, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_int_eq(got.status, 200);
    ck_assert_str_eq(got.body.data, "hello world0123456789abcdef");
    ck_assert_int_eq(got.body.len, 27);
    ck_assert(got.nul_terminated);
    ck_assert_str_eq(got.reply, "chunked");
    ck_assert_uint_lt(got.total_ns, GUARD_NS / 2);
    got_free(&got);
    fx_drain(&fx);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(body_until_eof)
{
    fx_t fx;
    got_t got;
    static const char *const pieces[] = {"HTTP/1.0 200 OK\r\nX-Reply: eof\r\n\r\nhello ", "world",
                                         NULL};
    fx_init(&fx);
    raw_request(&fx, pieces, THEN_CLOSE, 0, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_int_eq(got.status, 200);
    ck_assert_str_eq(got.body.data, "hello world");
    ck_assert_str_eq(got.reply, "eof");
    got_free(&got);

    /* An unknown coding: the body runs until close, undecoded. */
    static const char *const gzip[] = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b",
                                       NULL};
    raw_request(&fx, gzip, THEN_CLOSE, 0, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_str_eq(got.body.data, "\x1f\x8b");
    got_free(&got);
    fx_drain(&fx);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(interim_responses_skipped)
{
    fx_t fx;
    got_t got;
    static const char *const pieces[] = {
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 2",
        "01 Created\r\nContent-Length: 2\r\nX-Reply: final\r\n\r\nok", NULL};
    fx_init(&fx);
    raw_request(&fx, pieces, THEN_HOLD, 0, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_int_eq(got.status, 201);
    ck_assert_str_eq(got.body.data, "ok");
    ck_assert_str_eq(got.reply, "final");
    ck_assert(!got.has_link);
    ck_assert_int_eq(got.nheaders, 2);
    got_free(&got);
    fx_drain(&fx);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

/* ---- errors ---- */

START_TEST(connection_refused)
{
    fx_t fx;
    got_t got;
    uv_tcp_t t;
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    fx_init(&fx);
    /* A port that was free a moment ago. */
    ck_assert_int_eq(uv_tcp_init(&fx.loop, &t), 0);
    ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    ck_assert_int_eq(uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0), 0);
    ck_assert_int_eq(uv_tcp_getsockname(&t, (struct sockaddr *)&bound, &len), 0);
    int port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx.loop, UV_RUN_DEFAULT);

    fl_httpc_opts_t o = opts_for(port, "/");
    request(&fx, &o, &got);
    ck_assert_int_eq(got.error, UV_ECONNREFUSED);
    ck_assert_int_eq(got.status, 0);
    ck_assert_int_eq(got.body.len, 0);
    ck_assert(got.nul_terminated);
    ck_assert_int_eq(got.nheaders, 0);
    got_free(&got);
    fx_drain(&fx);
    ck_assert_int_eq(got.calls, 1);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(timeout_when_never_answered)
{
    fx_t fx;
    got_t got;
    raw_t s;
    fx_init(&fx);
    raw_start(&fx, &s, NULL, THEN_HOLD);
    fl_httpc_opts_t o = opts_for(s.port, "/");
    o.timeout_ns = 300 * MS;
    request(&fx, &o, &got);
    ck_assert_int_eq(got.error, FL_ETIMEOUT);
    ck_assert_int_eq(got.status, 0);
    ck_assert_uint_ge(got.total_ns, 300 * MS);
    ck_assert_uint_lt(got.total_ns, 300 * MS + LATE_NS);
    ck_assert_int_eq(s.heads, 1);
    got_free(&got);

    /* One timer for the whole exchange: a body trickling in does not extend it. */
    static const char *const trickle[] = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
                                          "a",
                                          "b",
                                          "c",
                                          "d",
                                          "e",
                                          "f",
                                          "g",
                                          "h",
                                          "i",
                                          "j",
                                          NULL};
    s.pieces = trickle;
    s.gap_ms = 100;
    o.timeout_ns = 350 * MS;
    request(&fx, &o, &got);
    ck_assert_int_eq(got.error, FL_ETIMEOUT);
    ck_assert_uint_ge(got.total_ns, 350 * MS);
    ck_assert_uint_lt(got.total_ns, 350 * MS + LATE_NS);
    got_free(&got);
    raw_stop(&s);
    fx_drain(&fx);
    ck_assert_int_eq(got.calls, 1);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(closed_before_complete)
{
    fx_t fx;
    got_t got;
    static const char *const mid_body[] = {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
                                           NULL};
    static const char *const mid_chunk[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", NULL};
    static const char *const mid_head[] = {"HTTP/1.1 200 OK\r\nContent-Le", NULL};
    const char *const *cases[] = {mid_body, mid_chunk, mid_head, NULL};
    fx_init(&fx);
    for (int i = 0; i < 4; i++) {
        raw_request(&fx, cases[i], THEN_CLOSE, 0, &got);
        ck_assert_msg(got.error == FL_ECLOSED, "case %d: %d", i, got.error);
        ck_assert_int_eq(got.status, 0);
        got_free(&got);
    }
    fx_drain(&fx);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(reset_by_server)
{
    fx_t fx;
    got_t got;
    fx_init(&fx);
    raw_request(&fx, NULL, THEN_RESET, 0, &got);
    ck_assert_int_eq(got.error, UV_ECONNRESET);
    ck_assert_int_eq(got.status, 0);
    got_free(&got);
    fx_drain(&fx);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(malformed_responses)
{
    fx_t fx;
    got_t got;
    static const char *const garbage[] = {"SSH-2.0-OpenSSH_9.6\r\n", NULL};
    static const char *const two_lengths[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", NULL};
    static const char *const bad_chunk[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", NULL};
    static const char *const switching[] = {
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", NULL};
    static const char *const bad_status[] = {"HTTP/1.1 2x0 OK\r\n\r\n", NULL};
    static const char *const bad_header[] = {"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", NULL};
    static const char *const bad_length[] = {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", NULL};
    static const char *const bare_cr[] = {"HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", NULL};
    char continues[17 * 26 + 1] = "";
    for (int i = 0; i < 17; i++)
        strcat(continues, "HTTP/1.1 100 Continue\r\n\r\n");
    const char *const too_many_interim[] = {continues, NULL};
    const char *const *cases[] = {garbage,    two_lengths, bad_chunk, switching,       bad_status,
                                  bad_header, bad_length,  bare_cr,   too_many_interim};
    fx_init(&fx);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* The server holds the connection: the error is seen in the bytes, not at EOF. */
        raw_request(&fx, cases[i], THEN_HOLD, 0, &got);
        ck_assert_msg(got.error == FL_EMALFORMED, "case %zu: %d", i, got.error);
        ck_assert_int_eq(got.status, 0);
        ck_assert_uint_lt(got.total_ns, GUARD_NS / 2);
        got_free(&got);
    }
    fx_drain(&fx);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(body_over_max_body)
{
    fx_t fx;
    good_t g;
    got_t got;
    fx_init(&fx);
    ck_assert_int_eq(good_start(&fx, &g, "127.0.0.1"), 0);
    fl_httpc_opts_t o = opts_for(g.port, "/big");
    o.max_body = 1000; /* exactly enough */
    request(&fx, &o, &got);
    ck_assert_int_eq(got.error, 0);
    ck_assert_int_eq(got.body.len, 1000);
    got_free(&got);
    o.max_body = 999;
    request(&fx, &o, &got);
    ck_assert_int_eq(got.error, FL_ETOOBIG);
    ck_assert_int_eq(got.status, 0);
    got_free(&got);
    good_stop(&g);

    char chunk[4 + 64 + 3], eof_body[19 + 200 + 1];
    snprintf(chunk, sizeof chunk, "40\r\n%064d\r\n", 0);
    snprintf(eof_body, sizeof eof_body, "HTTP/1.1 200 OK\r\n\r\n%0200d", 0);
    const char *const chunked[] = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunk,
                                   chunk, NULL};
    const char *const until_eof[] = {eof_body, NULL};
    raw_request(&fx, chunked, THEN_HOLD, 100, &got);
    ck_assert_int_eq(got.error, FL_ETOOBIG);
    got_free(&got);
    raw_request(&fx, until_eof, THEN_HOLD, 100, &got);
    ck_assert_int_eq(got.error, FL_ETOOBIG);
    got_free(&got);

    /* A head that never ends. */
    size_t n = 80 * 1024;
    char *huge = malloc(n + 1);
    ck_assert_ptr_nonnull(huge);
    memset(huge, 'a', n);
    memcpy(huge, "HTTP/1.1 200 OK\r\nX-Pad: ", 24);
    huge[n] = '\0';
    const char *const long_head[] = {huge, NULL};
    raw_request(&fx, long_head, THEN_HOLD, 0, &got);
    ck_assert_int_eq(got.error, FL_ETOOBIG);
    got_free(&got);
    free(huge);
    fx_drain(&fx);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(invalid_options)
{
    fx_t fx;
    got_t got = {0};
    fl_httpc_req_t *req;
    fx_init(&fx);
    fl_httpc_opts_t good = opts_for(8080, "/");
    fl_httpc_opts_t bad[20];
    int n = 0;
    const char *hosts[] = {NULL, "", "localhost", "1.2.3", "[::1", "::1]", "[]", "1.2.3.4 "};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        bad[n] = good;
        bad[n++].host = hosts[i];
    }
    bad[n] = good;
    bad[n++].port = 0;
    bad[n] = good;
    bad[n++].port = 65536;
    bad[n] = good;
    bad[n++].method = "GE T";
    bad[n] = good;
    bad[n++].method = "";
    bad[n] = good;
    bad[n++].target = "/a b";
    bad[n] = good;
    bad[n++].target = "";
    bad[n] = good;
    bad[n++].headers = "X-A: b"; /* no CRLF */
    bad[n] = good;
    bad[n++].headers = "X-A: b\r\n\r\nGET / HTTP/1.1\r\n"; /* ends the head early */
    bad[n] = good;
    bad[n++].headers = "X-A: b\nX-B: c\r\n"; /* bare LF */
    bad[n] = good;
    bad[n++].headers = ": b\r\n";
    bad[n] = good;
    bad[n++].body_len = 5; /* and no body */
    for (int i = 0; i < n; i++) {
        req = (fl_httpc_req_t *)&got; /* to see it cleared */
        ck_assert_msg(fl_httpc_request(&fx.loop, &bad[i], on_got, &got, &req) == FL_EINVAL,
                      "case %d", i);
        ck_assert_ptr_null(req);
    }
    ck_assert_int_eq(fl_httpc_request(&fx.loop, NULL, on_got, &got, NULL), FL_EINVAL);
    ck_assert_int_eq(fl_httpc_request(&fx.loop, &good, NULL, &got, NULL), FL_EINVAL);
    ck_assert_int_eq(fl_httpc_request(NULL, &good, on_got, &got, NULL), FL_EINVAL);
    fl_httpc_cancel(NULL);
    fx_drain(&fx);
    ck_assert_int_eq(got.calls, 0);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(error_in_the_call_comes_from_the_loop)
{
    fx_t fx;
    got_t got = {0};
    struct rlimit saved, low;
    fx_init(&fx);
    /* No descriptor left for the socket: uv_tcp_connect fails inside fl_httpc_request. */
    int lowest = dup(0);
    ck_assert_int_ge(lowest, 0);
    close(lowest);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    low.rlim_cur = (rlim_t)lowest;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    fl_httpc_opts_t o = opts_for(9, "/");
    int rc = fl_httpc_request(&fx.loop, &o, on_got, &got, NULL);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(got.calls, 0);
    run_until(&fx, &got.calls, 1);
    ck_assert_int_eq(got.error, UV_EMFILE);
    ck_assert_int_eq(got.status, 0);
    got_free(&got);
    fx_drain(&fx);
    ck_assert_int_eq(got.calls, 1);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

/* ---- cancellation ---- */

START_TEST(cancel_before_connect)
{
    fx_t fx;
    good_t g;
    got_t got = {0};
    fl_httpc_req_t *req = NULL;
    fx_init(&fx);
    ck_assert_int_eq(good_start(&fx, &g, "127.0.0.1"), 0);
    fl_httpc_opts_t o = opts_for(g.port, "/hello");
    ck_assert_int_eq(fl_httpc_request(&fx.loop, &o, on_got, &got, &req), 0);
    fl_httpc_cancel(req);
    run_for(&fx, 100);
    ck_assert_int_eq(got.calls, 0);
    ck_assert_int_eq(g.requests, 0);

    /* Also for a request whose connect is certain to fail. */
    o.port = 1;
    ck_assert_int_eq(fl_httpc_request(&fx.loop, &o, on_got, &got, &req), 0);
    fl_httpc_cancel(req);
    run_for(&fx, 100);
    ck_assert_int_eq(got.calls, 0);
    good_stop(&g);
    fx_drain(&fx);
    ck_assert_int_eq(got.calls, 0);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

static void cancel_it(void *arg)
{
    fl_httpc_cancel(*(fl_httpc_req_t **)arg);
}

START_TEST(cancel_while_waiting_for_response)
{
    fx_t fx;
    raw_t s;
    got_t got = {0};
    fl_httpc_req_t *req = NULL;
    fx_init(&fx);
    raw_start(&fx, &s, NULL, THEN_HOLD);
    s.on_head = cancel_it; /* the request is written: cancel while it waits */
    s.on_head_arg = &req;
    fl_httpc_opts_t o = opts_for(s.port, "/");
    o.timeout_ns = 200 * MS; /* the timer must be gone too */
    ck_assert_int_eq(fl_httpc_request(&fx.loop, &o, on_got, &got, &req), 0);
    run_until(&fx, &s.heads, 1);
    run_for(&fx, 400);
    ck_assert_int_eq(got.calls, 0);
    raw_stop(&s);
    fx_drain(&fx);
    ck_assert_int_eq(got.calls, 0);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(cancel_while_writing)
{
    fx_t fx;
    raw_t s;
    got_t got = {0};
    fl_httpc_req_t *req = NULL;
    size_t n = 32u * 1024 * 1024; /* more than the socket buffers take */
    char *body = malloc(n);
    ck_assert_ptr_nonnull(body);
    memset(body, 'b', n);
    fx_init(&fx);
    raw_start(&fx, &s, NULL, THEN_HOLD);
    s.no_read = 1;
    fl_httpc_opts_t o = opts_for(s.port, "/");
    o.method = "PUT";
    o.body = body;
    o.body_len = n;
    ck_assert_int_eq(fl_httpc_request(&fx.loop, &o, on_got, &got, &req), 0);
    free(body); /* the request has its own copy */
    run_until(&fx, &s.accepted, 1);
    run_for(&fx, 100);
    fl_httpc_cancel(req);
    run_for(&fx, 100);
    ck_assert_int_eq(got.calls, 0);
    raw_stop(&s);
    fx_drain(&fx);
    ck_assert_int_eq(got.calls, 0);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

/* ---- many at once, IPv6 ---- */

typedef struct {
    int done;
    int ok;
} many_t;

typedef struct {
    many_t *m;
    char target[32];
} one_t;

static void on_one(void *arg, const fl_httpc_result_t *res)
{
    one_t *one = arg;
    one->m->done++;
    if (res->error == 0 && res->status == 200 && strcmp(res->body, one->target) == 0)
        one->m->ok++;
}

START_TEST(concurrent_requests)
{
    enum { N = 200 };
    fx_t fx;
    good_t g;
    many_t m = {0};
    one_t *ones = calloc(N, sizeof *ones);
    ck_assert_ptr_nonnull(ones);
    fx_init(&fx);
    ck_assert_int_eq(good_start(&fx, &g, "127.0.0.1"), 0);
    for (int i = 0; i < N; i++) {
        ones[i].m = &m;
        snprintf(ones[i].target, sizeof ones[i].target, "/n/%d", i);
        fl_httpc_opts_t o = opts_for(g.port, ones[i].target);
        ck_assert_int_eq(fl_httpc_request(&fx.loop, &o, on_one, &ones[i], NULL), 0);
    }
    run_until(&fx, &m.done, N);
    ck_assert_int_eq(m.ok, N);
    ck_assert_int_eq(g.requests, N);
    good_stop(&g);
    fx_drain(&fx);
    ck_assert_int_eq(m.done, N);
    free(ones);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(ipv6_loopback)
{
    fx_t fx;
    good_t g;
    got_t got;
    char host[64];
    fx_init(&fx);
    if (good_start(&fx, &g, "::1") != 0) {
        fprintf(stderr, "ipv6_loopback: no ::1 here, skipped\n");
        fx_drain(&fx);
        ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
        return;
    }
    snprintf(host, sizeof host, "[::1]:%d", g.port);
    const char *forms[] = {"::1", "[::1]", "0:0:0:0:0:0:0:1"};
    for (int i = 0; i < 3; i++) {
        fl_httpc_opts_t o = opts_for(g.port, "/six");
        o.host = forms[i];
        request(&fx, &o, &got);
        ck_assert_int_eq(got.error, 0);
        ck_assert_int_eq(got.status, 200);
        ck_assert_str_eq(got.body.data, "/six");
        ck_assert_str_eq(g.host, host);
        got_free(&got);
    }
    good_stop(&g);
    fx_drain(&fx);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
}
END_TEST

START_TEST(describe_results)
{
    char out[160];
    fl_httpc_result_t r = {0};
    r.error = FL_ETIMEOUT;
    fl_httpc_describe(&r, out, sizeof out);
    ck_assert_str_eq(out, fl_strerror(FL_ETIMEOUT));
    static const char body[] = "Missing \x01 node\nsecond line";
    fl_httpc_result_t r2 = {0};
    r2.status = 400;
    r2.body = body;
    r2.body_len = sizeof body - 1;
    fl_httpc_describe(&r2, out, sizeof out);
    ck_assert_str_eq(out, "HTTP 400: Missing ? node");
    fl_httpc_result_t r3 = {0};
    r3.status = 503;
    fl_httpc_describe(&r3, out, sizeof out);
    ck_assert_str_eq(out, "HTTP 503");
}
END_TEST

static Suite *httpc_suite(void)
{
    Suite *s = suite_create("httpc");
    TCase *tc = tcase_create("exchanges");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, get_with_content_length);
    tcase_add_test(tc, post_with_body_and_headers);
    tcase_add_test(tc, no_body_for_204_and_head);
    tcase_add_test(tc, content_length_in_pieces_without_close);
    tcase_add_test(tc, chunked_response);
    tcase_add_test(tc, body_until_eof);
    tcase_add_test(tc, interim_responses_skipped);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, connection_refused);
    tcase_add_test(tc, timeout_when_never_answered);
    tcase_add_test(tc, closed_before_complete);
    tcase_add_test(tc, reset_by_server);
    tcase_add_test(tc, malformed_responses);
    tcase_add_test(tc, body_over_max_body);
    tcase_add_test(tc, invalid_options);
    tcase_add_test(tc, error_in_the_call_comes_from_the_loop);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, cancel_before_connect);
    tcase_add_test(tc, cancel_while_waiting_for_response);
    tcase_add_test(tc, cancel_while_writing);
    tcase_add_test(tc, concurrent_requests);
    tcase_add_test(tc, ipv6_loopback);
    tcase_add_test(tc, describe_results);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* servers here write to clients that have gone */
    SRunner *sr = srunner_create(httpc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
