/* Unit tests for lib/httpd: a real server on 127.0.0.1 (port 0) and real client sockets in
 * the same thread. The clients are non-blocking sockets; whenever a client waits it runs
 * the server's loop once (UV_RUN_NOWAIT), so no threads are needed. Every test ends by
 * closing the server and checking that the loop closes cleanly (no leaked handle). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/http.h"
#include "lib/httpd.h"

#define WAIT_NS 5000000000ull

enum { ANSWER_NOW, ANSWER_LATER, ANSWER_TIMER, ANSWER_TWICE, CLOSE_SERVER };

typedef struct {
    uv_loop_t loop;
    fl_httpd_t *httpd;
    int port;
    int mode;
    fl_httpd_exchange_t *pending[8]; /* ANSWER_LATER exchanges, oldest first */
    int npending;
    int handled;
    int aborted;
    int closed;
    char seen[16][128]; /* "METHOD target" in the order the handler saw them */
    char peer[64];      /* of the last request */
    char param[32];     /* query parameter "x" of the last request, decoded */
    char custom[64];    /* header X-Custom of the last request */
    int rcs[3];         /* ANSWER_TWICE: what the three respond calls returned */
} fx_t;

typedef struct {
    uv_timer_t timer;
    fl_httpd_exchange_t *ex;
} later_t;

typedef struct {
    int fd;
    char buf[65536];
    size_t len;
} client_t;

typedef struct {
    int status;
    char head[4096];
    char body[8192];
    size_t body_len;
} resp_t;

/* Answers with "METHOD target body". */
static void answer(fl_httpd_exchange_t *ex, const char *extra)
{
    fl_buf_t out = FL_BUF_INIT;
    size_t len;
    const char *body = fl_httpd_body(ex, &len);
    ck_assert_int_eq(fl_buf_printf(&out, "%s %s ", fl_httpd_method(ex), fl_httpd_target(ex)), 0);
    ck_assert_int_eq(fl_buf_append(&out, body, len), 0);
    ck_assert_int_eq(fl_httpd_respond(ex, 200, extra, "text/plain", out.data, out.len), 0);
    fl_buf_free(&out);
}

static void free_later(uv_handle_t *h)
{
    free(h->data);
}

static void on_later(uv_timer_t *t)
{
    later_t *l = t->data;
    answer(l->ex, NULL);
    uv_close((uv_handle_t *)t, free_later);
}

static void on_closed(fl_httpd_t *h, void *arg)
{
    fx_t *fx = arg;
    fx->closed++;
}

static void handler(fl_httpd_exchange_t *ex, void *arg)
{
    fx_t *fx = arg;
    const char *custom = fl_httpd_header(ex, "x-custom");
    snprintf(fx->seen[fx->handled % 16], sizeof fx->seen[0], "%s %s", fl_httpd_method(ex),
             fl_httpd_target(ex));
    snprintf(fx->peer, sizeof fx->peer, "%s", fl_httpd_exchange_peer(ex));
    snprintf(fx->custom, sizeof fx->custom, "%s", custom ? custom : "");
    if (fl_httpd_query_param(ex, "x", fx->param, sizeof fx->param) < 0)
        fx->param[0] = '\0';
    fx->handled++;
    switch (fx->mode) {
    case ANSWER_NOW:
        answer(ex, "X-Test: 1\r\n");
        break;
    case ANSWER_LATER:
        fx->pending[fx->npending++] = ex;
        break;
    case ANSWER_TIMER: {
        later_t *l = calloc(1, sizeof *l);
        l->ex = ex;
        uv_timer_init(&fx->loop, &l->timer);
        l->timer.data = l;
        uv_timer_start(&l->timer, on_later, 50, 0);
        break;
    }
    case ANSWER_TWICE:
        fx->rcs[0] = fl_httpd_respond(ex, 99, NULL, NULL, NULL, 0);
        fx->rcs[1] = fl_httpd_respond(ex, 201, "X-Consul-Index: 7", NULL, "made", 4);
        fx->rcs[2] = fl_httpd_respond(ex, 200, NULL, NULL, NULL, 0);
        break;
    case CLOSE_SERVER:
        ck_assert_int_eq(fl_httpd_close(fx->httpd, on_closed, fx), 0);
        break;
    }
}

static void on_abort(fl_httpd_exchange_t *ex, void *arg)
{
    fx_t *fx = arg;
    fx->aborted++;
    ck_assert_int_eq(fl_httpd_respond(ex, 200, NULL, NULL, NULL, 0), FL_ECLOSED);
    for (int i = 0; i < fx->npending; i++) {
        if (fx->pending[i] == ex) {
            memmove(&fx->pending[i], &fx->pending[i + 1],
                    (size_t)(fx->npending - i - 1) * sizeof ex);
            fx->npending--;
            break;
        }
    }
}

static fx_t *fx_start(int mode, size_t max_head, size_t max_body)
{
    fx_t *fx = calloc(1, sizeof *fx);
    ck_assert_ptr_nonnull(fx);
    ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
    fx->mode = mode;
    fl_httpd_config_t cfg = {.handler = handler,
                             .on_abort = on_abort,
                             .arg = fx,
                             .max_head = max_head,
                             .max_body = max_body};
    ck_assert_int_eq(fl_httpd_start(&fx->loop, "127.0.0.1", 0, &cfg, &fx->httpd), 0);
    fx->port = fl_httpd_port(fx->httpd);
    ck_assert_int_gt(fx->port, 0);
    return fx;
}

/* Closes the server (unless a test already did), runs the loop dry and closes it. */
static int fx_stop(fx_t *fx)
{
    if (!fx->closed && fx->mode != CLOSE_SERVER)
        ck_assert_int_eq(fl_httpd_close(fx->httpd, on_closed, fx), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(fx->closed, 1);
    int rc = uv_loop_close(&fx->loop);
    free(fx);
    return rc;
}

static void nap(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

/* Runs the server's loop for about ms milliseconds. */
static void pump(fx_t *fx, int ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
    do {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        nap();
    } while (uv_hrtime() < end);
}

static void pump_until(fx_t *fx, const int *counter, int value)
{
    uint64_t end = uv_hrtime() + WAIT_NS;
    while (*counter < value) {
        ck_assert_msg(uv_hrtime() < end, "timed out waiting for the server");
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        nap();
    }
}

/* rcvbuf: the client's receive buffer (0: the system's), set before connecting so that it
 * bounds what the server can write at once */
static client_t *client_open_rcvbuf(fx_t *fx, int rcvbuf)
{
    client_t *cl = calloc(1, sizeof *cl);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)fx->port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cl->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(cl->fd, 0);
    if (rcvbuf)
        ck_assert_int_eq(setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    /* loopback connects complete in the listen backlog, before the server accepts */
    ck_assert_int_eq(connect(cl->fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(fcntl(cl->fd, F_SETFL, O_NONBLOCK), 0);
    int one = 1; /* byte-by-byte writes must not wait for ACKs */
    ck_assert_int_eq(setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    return cl;
}

static client_t *client_open(fx_t *fx)
{
    return client_open_rcvbuf(fx, 0);
}

static void client_close(client_t *cl)
{
    close(cl->fd);
    free(cl);
}

/* Sends everything, running the server while the socket buffer is full. 0, or -1 when the
 * server closed the connection first. */
static int client_send_n(fx_t *fx, client_t *cl, const char *p, size_t len)
{
    uint64_t end = uv_hrtime() + WAIT_NS;
    while (len) {
        ssize_t n = send(cl->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ck_assert_msg(uv_hrtime() < end, "timed out sending");
            uv_run(&fx->loop, UV_RUN_NOWAIT);
            nap();
        } else {
            return -1;
        }
    }
    return 0;
}

static void client_send(fx_t *fx, client_t *cl, const char *s)
{
    ck_assert_int_eq(client_send_n(fx, cl, s, strlen(s)), 0);
}

/* Runs the server once and takes what arrived: 1 (data or nothing yet), 0 at EOF/reset. */
static int client_fill(fx_t *fx, client_t *cl)
{
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    ck_assert_uint_lt(cl->len, sizeof cl->buf);
    ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len, 0);
    if (n > 0) {
        cl->len += (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        nap();
        return 1;
    }
    return 0;
}

/* Reads one response (no_body: it answers a HEAD). Returns its status, or -1 when the
 * connection ended first. */
static int read_response(fx_t *fx, client_t *cl, resp_t *r, int no_body)
{
    uint64_t end = uv_hrtime() + WAIT_NS;
    memset(r, 0, sizeof *r);
    for (;;) {
        fl_http_response_t res;
        int rc = fl_http_parse_response(cl->buf, cl->len, sizeof r->head - 1, &res);
        ck_assert_msg(rc > 0 || rc == FL_EAGAIN, "bad response (%d): %.*s", rc, (int)cl->len,
                      cl->buf);
        if (rc > 0) {
            size_t blen = 0;
            if (!no_body && res.status >= 200 && res.status != 204 && res.status != 304) {
                ck_assert_int_ge(res.content_length, 0);
                ck_assert_int_lt(res.content_length, (int64_t)sizeof r->body);
                blen = (size_t)res.content_length;
            }
            if (cl->len >= (size_t)rc + blen) {
                r->status = res.status;
                memcpy(r->head, cl->buf, (size_t)rc);
                memcpy(r->body, cl->buf + rc, blen);
                r->body_len = blen;
                cl->len -= (size_t)rc + blen;
                memmove(cl->buf, cl->buf + rc + blen, cl->len);
                return r->status;
            }
        }
        if (!client_fill(fx, cl))
            return -1;
        ck_assert_msg(uv_hrtime() < end, "timed out waiting for a response");
    }
}

/* The server closes the connection (after anything still unread). */
static void expect_closed(fx_t *fx, client_t *cl)
{
    uint64_t end = uv_hrtime() + WAIT_NS;
    while (client_fill(fx, cl))
        ck_assert_msg(uv_hrtime() < end, "connection still open");
}

/* Nothing arrives and the connection stays open for a while. */
static void expect_open(fx_t *fx, client_t *cl)
{
    uint64_t end = uv_hrtime() + 100000000u;
    while (uv_hrtime() < end)
        ck_assert_msg(client_fill(fx, cl), "connection closed");
    ck_assert_uint_eq(cl->len, 0);
}

static int has(const resp_t *r, const char *header_line)
{
    return strstr(r->head, header_line) != NULL;
}

START_TEST(get_and_accessors)
{
    fx_t *fx = fx_start(ANSWER_NOW, 0, 0);
    client_t *cl = client_open(fx);
    resp_t r;
    client_send(fx, cl, "GET /hello?x=a%20b&y=2 HTTP/1.1\r\nHost: t\r\nX-Custom:  v1 \r\n\r\n");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "GET /hello?x=a%20b&y=2 ");
    ck_assert(has(&r, "HTTP/1.1 200 OK\r\n"));
    ck_assert(has(&r, "Content-Length: 23\r\n"));
    ck_assert(has(&r, "Content-Type: text/plain\r\n"));
    ck_assert(has(&r, "X-Test: 1\r\n"));
    ck_assert(!has(&r, "Connection:"));
    ck_assert_str_eq(fx->param, "a b");
    ck_assert_str_eq(fx->custom, "v1");
    ck_assert_msg(strncmp(fx->peer, "127.0.0.1:", 10) == 0, "peer %s", fx->peer);
    client_close(cl);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(keep_alive)
{
    fx_t *fx = fx_start(ANSWER_NOW, 0, 0);
    client_t *cl = client_open(fx);
    resp_t r;
    for (int i = 0; i < 3; i++) {
        client_send(fx, cl, "POST /k HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
        ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
        ck_assert_str_eq(r.body, "POST /k abc");
    }
    expect_open(fx, cl);
    ck_assert_int_eq(fx->handled, 3);
    client_close(cl);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(pipelined_in_order)
{
    fx_t *fx = fx_start(ANSWER_NOW, 0, 0);
    client_t *cl = client_open(fx);
    resp_t r;
    client_send(fx, cl,
                "GET /a HTTP/1.1\r\n\r\n"
                "POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nbb"
                "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\ncc\r\n0\r\n\r\n"
                "\r\nGET /d HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "GET /a ");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "POST /b bb");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "POST /c cc");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "GET /d ");
    expect_open(fx, cl);
    client_close(cl);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

/* While one answer is pending, the next pipelined request is not even handed out. */
START_TEST(pipelined_deferred)
{
    fx_t *fx = fx_start(ANSWER_LATER, 0, 0);
    client_t *cl = client_open(fx);
    resp_t r;
    client_send(fx, cl, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n");
    for (int i = 1; i <= 3; i++) {
        pump_until(fx, &fx->handled, i);
        pump(fx, 30);
        ck_assert_int_eq(fx->handled, i);
        ck_assert_int_eq(fx->npending, 1);
        char want[16];
        snprintf(want, sizeof want, "GET /%d", i);
        ck_assert_str_eq(fx->seen[i - 1], want);
        answer(fx->pending[0], NULL);
        fx->npending = 0;
        ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
        snprintf(want, sizeof want, "GET /%d ", i);
        ck_assert_str_eq(r.body, want);
    }
    client_close(cl);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(deferred_by_timer)
{
    fx_t *fx = fx_start(ANSWER_TIMER, 0, 0);
    client_t *cl = client_open(fx);
    resp_t r;
    uint64_t t0 = uv_hrtime();
    client_send(fx, cl, "GET /slow HTTP/1.1\r\n\r\nGET /slower HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "GET /slow ");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "GET /slower ");
    ck_assert_uint_ge(uv_hrtime() - t0, 100000000u);
    client_close(cl);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

/* The bytes of one whole response (head and body; no_body for a HEAD) into out. */
static void read_raw(fx_t *fx, client_t *cl, fl_buf_t *out, int no_body)
{
    resp_t r;
    ck_assert_int_gt(read_response(fx, cl, &r, no_body), 0);
    fl_buf_reset(out);
    ck_assert_int_eq(fl_buf_append(out, r.head, strlen(r.head)), 0);
    ck_assert_int_eq(fl_buf_append(out, r.body, r.body_len), 0);
}

#define PREP_EXTRA "X-Consul-Index: 7\r\nVary: Accept-Encoding\r\n"
#define PREP_BODY "[{\"Node\":\"a\"}]"

/* A prepared answer is, for every kind of request, exactly what fl_httpd_respond gives. */
START_TEST(prepared_same_bytes_as_respond)
{
    static const struct {
        const char *req;
        int no_body, closes;
    } kinds[] = {
        {"GET /w?index=3 HTTP/1.1\r\nHost: t\r\n\r\n", 0, 0},
        {"GET /w HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, 0},
        {"GET /w HTTP/1.0\r\n\r\n", 0, 1},
        {"GET /w HTTP/1.1\r\nConnection: close\r\n\r\n", 0, 1},
        {"HEAD /w HTTP/1.1\r\n\r\n", 1, 0},
    };
    fx_t *fx = fx_start(ANSWER_LATER, 0, 0);
    fl_httpd_prepared_t *p;
    ck_assert_int_eq(
        fl_httpd_prepare(200, PREP_EXTRA, "application/json", PREP_BODY, strlen(PREP_BODY), &p), 0);
    fl_buf_t want = FL_BUF_INIT, got = FL_BUF_INIT;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        client_t *a = client_open(fx), *b = client_open(fx);
        client_send(fx, a, kinds[k].req);
        pump_until(fx, &fx->npending, 1);
        client_send(fx, b, kinds[k].req);
        pump_until(fx, &fx->npending, 2);
        ck_assert_int_eq(fl_httpd_respond(fx->pending[0], 200, PREP_EXTRA, "application/json",
                                          PREP_BODY, strlen(PREP_BODY)),
                         0);
        ck_assert_int_eq(fl_httpd_respond_prepared(fx->pending[1], p), 0);
        fx->npending = 0;
        read_raw(fx, a, &want, kinds[k].no_body);
        read_raw(fx, b, &got, kinds[k].no_body);
        ck_assert_msg(want.len == got.len && memcmp(want.data, got.data, got.len) == 0,
                      "request %zu: prepared\n%s\nrespond\n%s", k, got.data, want.data);
        if (kinds[k].closes) {
            expect_closed(fx, a);
            expect_closed(fx, b);
        }
        client_close(a);
        client_close(b);
    }
    /* the same checks as fl_httpd_respond */
    fl_httpd_prepared_t *bad = NULL;
    ck_assert_int_eq(fl_httpd_prepare(99, NULL, NULL, NULL, 0, &bad), FL_EINVAL);
    ck_assert_int_eq(fl_httpd_prepare(200, NULL, NULL, NULL, 3, &bad), FL_EINVAL);
    ck_assert_int_eq(fl_httpd_respond_prepared(NULL, p), FL_EINVAL);
    fl_httpd_prepared_free(p);
    fl_httpd_prepared_free(NULL);
    fl_buf_free(&want);
    fl_buf_free(&got);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

/* A batch answers every exchange with its own prepared answer; one whose client already sent
 * its next request, or an HTTP/1.0 one, is answered as well, and the next request follows. */
START_TEST(batch_answers_each_in_order)
{
    enum { N = 5 };
    fx_t *fx = fx_start(ANSWER_LATER, 0, 0);
    fl_httpd_prepared_t *p[2];
    ck_assert_int_eq(fl_httpd_prepare(200, "X-A: 1\r\n", "text/plain", "first", 5, &p[0]), 0);
    ck_assert_int_eq(fl_httpd_prepare(200, "X-A: 2\r\n", "text/plain", "second", 6, &p[1]), 0);
    client_t *cl[N];
    fl_httpd_exchange_t *exs[N + 1];
    const fl_httpd_prepared_t *ps[N + 1];
    for (int i = 0; i < N; i++) {
        cl[i] = client_open(fx);
        client_send(fx, cl[i],
                    i == 3   ? "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                    : i == 4 ? "GET /1 HTTP/1.1\r\n\r\nGET /again HTTP/1.1\r\n\r\n"
                             : "GET /1 HTTP/1.1\r\n\r\n");
        pump_until(fx, &fx->npending, i + 1);
    }
    pump(fx, 20); /* the pipelined request is read, not handed out */
    ck_assert_int_eq(fx->handled, N);
    for (int i = 0; i < N; i++) {
        exs[i] = fx->pending[i];
        ps[i] = p[i % 2];
    }
    exs[N] = NULL;
    ps[N] = p[0];
    fx->npending = 0;
    fl_httpd_respond_prepared_batch(exs, ps, N + 1);
    for (int i = 0; i < N; i++) {
        resp_t r;
        ck_assert_int_eq(read_response(fx, cl[i], &r, 0), 200);
        ck_assert_str_eq(r.body, i % 2 ? "second" : "first");
        ck_assert(has(&r, i % 2 ? "X-A: 2\r\n" : "X-A: 1\r\n"));
        ck_assert(has(&r, i == 3 ? "Connection: keep-alive\r\n" : "Content-Length:"));
    }
    pump_until(fx, &fx->npending, 1);
    ck_assert_str_eq(fx->seen[N], "GET /again");
    answer(fx->pending[0], NULL);
    fx->npending = 0;
    resp_t r;
    ck_assert_int_eq(read_response(fx, cl[4], &r, 0), 200);
    ck_assert_str_eq(r.body, "GET /again ");
    for (int i = 0; i < N; i++)
        client_close(cl[i]);
    fl_httpd_prepared_free(p[0]);
    fl_httpd_prepared_free(p[1]);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

/* Reads one response with a big body from cl, checking every body byte against fill(i). */
static void read_big(fx_t *fx, client_t *cl, size_t body_len)
{
    uint64_t end = uv_hrtime() + WAIT_NS;
    size_t head = 0, got = 0;
    while (!head || got < body_len) {
        ck_assert_msg(client_fill(fx, cl), "connection closed after %zu bytes", got);
        ck_assert_msg(uv_hrtime() < end, "timed out after %zu body bytes", got);
        if (!head) {
            char *eoh = memmem(cl->buf, cl->len, "\r\n\r\n", 4);
            if (!eoh)
                continue;
            head = (size_t)(eoh - cl->buf) + 4;
            memmove(cl->buf, cl->buf + head, cl->len - head);
            cl->len -= head;
        }
        size_t bad = cl->len;
        for (size_t i = 0; i < cl->len && bad == cl->len; i++)
            if ((unsigned char)cl->buf[i] != (got + i) % 251)
                bad = i;
        ck_assert_msg(bad == cl->len, "body byte %zu is wrong", got + bad);
        got += cl->len;
        cl->len = 0;
    }
    ck_assert_uint_eq(got, body_len);
}

/* What a socket does not take at once is queued and follows, for plain and prepared answers. */
START_TEST(big_answers_partly_written)
{
    enum { BIG = 6 * 1024 * 1024 }; /* more than a send buffer (at most tcp_wmem, 4 MiB) holds */
    fx_t *fx = fx_start(ANSWER_LATER, 0, 0);
    char *body = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        body[i] = (char)(i % 251);
    fl_httpd_prepared_t *p;
    ck_assert_int_eq(fl_httpd_prepare(200, NULL, NULL, body, BIG, &p), 0);
    client_t *a = client_open_rcvbuf(fx, 16384), *b = client_open_rcvbuf(fx, 16384);
    client_send(fx, a, "GET /big HTTP/1.1\r\n\r\n");
    pump_until(fx, &fx->npending, 1);
    client_send(fx, b, "GET /big HTTP/1.1\r\n\r\n");
    pump_until(fx, &fx->npending, 2);
    ck_assert_int_eq(fl_httpd_respond(fx->pending[0], 200, NULL, NULL, body, BIG), 0);
    fl_httpd_exchange_t *exs[] = {fx->pending[1]};
    const fl_httpd_prepared_t *ps[] = {p};
    fl_httpd_respond_prepared_batch(exs, ps, 1);
    fx->npending = 0;
    fl_httpd_prepared_free(p);
    free(body);
    read_big(fx, a, BIG);
    read_big(fx, b, BIG);
    client_send(fx, a, "GET /after HTTP/1.1\r\n\r\n");
    pump_until(fx, &fx->npending, 1);
    answer(fx->pending[0], NULL);
    fx->npending = 0;
    resp_t r;
    ck_assert_int_eq(read_response(fx, a, &r, 0), 200);
    ck_assert_str_eq(r.body, "GET /after ");
    client_close(a);
    client_close(b);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(malformed_gets_400_and_close)
{
    static const char *const bad[] = {
        "BROKEN\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
        "GET / HTTP/3.0\r\n\r\n",
    };
    fx_t *fx = fx_start(ANSWER_NOW, 0, 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        client_t *cl = client_open(fx);
        resp_t r;
        client_send(fx, cl, bad[i]);
        ck_assert_msg(read_response(fx, cl, &r, 0) == 400, "case %zu", i);
        ck_assert(has(&r, "Connection: close\r\n"));
        ck_assert_str_eq(r.body, "Bad Request\n");
        expect_closed(fx, cl);
        client_close(cl);
    }
    ck_assert_int_eq(fx->handled, 0);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(body_too_big_gets_413)
{
    fx_t *fx = fx_start(ANSWER_NOW, 0, 1000);
    resp_t r;
    /* announced too big: refused before the body is sent */
    client_t *cl = client_open(fx);
    client_send(fx, cl, "POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 413);
    ck_assert(has(&r, "Connection: close\r\n"));
    expect_closed(fx, cl);
    client_close(cl);
    /* chunks that add up to too much */
    cl = client_open(fx);
    char body[700];
    memset(body, 'x', sizeof body);
    client_send(fx, cl, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n");
    ck_assert_int_eq(client_send_n(fx, cl, body, 600), 0);
    client_send(fx, cl, "\r\n258\r\n");
    client_send_n(fx, cl, body, 600); /* may fail: the server may have closed already */
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 413);
    expect_closed(fx, cl);
    client_close(cl);
    /* exactly the limit is fine */
    cl = client_open(fx);
    client_send(fx, cl, "POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
    char big[1000];
    memset(big, 'y', sizeof big);
    ck_assert_int_eq(client_send_n(fx, cl, big, sizeof big), 0);
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_uint_eq(r.body_len, 1007); /* "POST / " and the body */
    client_close(cl);
    ck_assert_int_eq(fx->handled, 1);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(head_too_big_gets_431)
{
    fx_t *fx = fx_start(ANSWER_NOW, 1024, 0);
    resp_t r;
    client_t *cl = client_open(fx);
    char big[2100];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
    big[sizeof big - 1] = '\0';
    client_send(fx, cl, big); /* no end of head yet: too big is known without it */
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 431);
    expect_closed(fx, cl);
    client_close(cl);

    cl = client_open(fx);
    fl_buf_t many = FL_BUF_INIT;
    fl_buf_puts(&many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= FL_HTTP_MAX_HEADERS; i++)
        fl_buf_printf(&many, "X-%d: v\r\n", i);
    fl_buf_puts(&many, "\r\n");
    client_send(fx, cl, many.data);
    fl_buf_free(&many);
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 431);
    expect_closed(fx, cl);
    client_close(cl);
    ck_assert_int_eq(fx->handled, 0);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(http10_and_connection_close)
{
    fx_t *fx = fx_start(ANSWER_NOW, 0, 0);
    resp_t r;
    client_t *cl = client_open(fx);
    client_send(fx, cl, "GET /old HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert(has(&r, "Connection: close\r\n"));
    expect_closed(fx, cl);
    client_close(cl);

    cl = client_open(fx);
    client_send(fx, cl, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert(has(&r, "Connection: keep-alive\r\n"));
    client_send(fx, cl, "GET /old2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "GET /old2 ");
    expect_open(fx, cl);
    client_close(cl);

    /* Connection: close ends the connection even with requests still pipelined behind */
    cl = client_open(fx);
    client_send(fx, cl, "GET /1 HTTP/1.1\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert(has(&r, "Connection: close\r\n"));
    expect_closed(fx, cl);
    ck_assert_uint_eq(cl->len, 0);
    client_close(cl);
    ck_assert_int_eq(fx->handled, 4);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(client_half_close_still_answered)
{
    fx_t *fx = fx_start(ANSWER_NOW, 0, 0);
    resp_t r;
    client_t *cl = client_open(fx);
    client_send(fx, cl, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    shutdown(cl->fd, SHUT_WR);
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "GET /1 ");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "GET /2 ");
    expect_closed(fx, cl);
    client_close(cl);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(byte_by_byte)
{
    fx_t *fx = fx_start(ANSWER_NOW, 0, 0);
    resp_t r;
    client_t *cl = client_open(fx);
    const char *s = "POST /bytes?x=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Custom: c\r\n\r\n"
                    "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n"
                    "PUT /next HTTP/1.1\r\nContent-Length: 4\r\n\r\nwxyz";
    for (size_t i = 0; s[i]; i++) {
        ck_assert_int_eq(client_send_n(fx, cl, s + i, 1), 0);
        pump(fx, 1);
    }
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "POST /bytes?x=1 abcde");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "PUT /next wxyz");
    ck_assert_str_eq(fx->custom, "");
    ck_assert_str_eq(fx->seen[0], "POST /bytes?x=1");
    client_close(cl);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(head_and_expect_continue)
{
    fx_t *fx = fx_start(ANSWER_NOW, 0, 0);
    resp_t r;
    client_t *cl = client_open(fx);
    client_send(fx, cl, "HEAD /h HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(fx, cl, &r, 1), 200);
    ck_assert(has(&r, "Content-Length: 8\r\n"));
    expect_open(fx, cl); /* and no body bytes followed */

    client_send(fx, cl, "POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 100);
    client_send(fx, cl, "body");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 200);
    ck_assert_str_eq(r.body, "POST /e body");
    client_close(cl);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(respond_checks_and_extra_headers)
{
    fx_t *fx = fx_start(ANSWER_TWICE, 0, 0);
    resp_t r;
    client_t *cl = client_open(fx);
    client_send(fx, cl, "GET /x HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 201);
    ck_assert_int_eq(fx->rcs[0], FL_EINVAL);
    ck_assert_int_eq(fx->rcs[1], 0);
    ck_assert_int_eq(fx->rcs[2], FL_ESTATE);
    ck_assert(has(&r, "X-Consul-Index: 7\r\n"));
    ck_assert(!has(&r, "Content-Type"));
    ck_assert_str_eq(r.body, "made");
    client_close(cl);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

/* A handler may say "Connection: close" itself, and 204 has neither body nor length. */
START_TEST(handler_connection_close_and_204)
{
    fx_t *fx = fx_start(ANSWER_LATER, 0, 0);
    resp_t r;
    client_t *cl = client_open(fx);
    client_send(fx, cl, "DELETE /a HTTP/1.1\r\n\r\n");
    pump_until(fx, &fx->handled, 1);
    ck_assert_int_eq(fl_httpd_respond(fx->pending[0], 204, NULL, NULL, "ignored", 7), 0);
    fx->npending = 0;
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 204);
    ck_assert(!has(&r, "Content-Length"));
    client_send(fx, cl, "GET /b HTTP/1.1\r\n\r\n");
    pump_until(fx, &fx->handled, 2);
    ck_assert_int_eq(
        fl_httpd_respond(fx->pending[0], 503, "Connection: close\r\n", "text/plain", "down", 4), 0);
    fx->npending = 0;
    ck_assert_int_eq(read_response(fx, cl, &r, 0), 503);
    ck_assert_str_eq(r.body, "down");
    expect_closed(fx, cl);
    client_close(cl);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(client_gone_aborts_deferred)
{
    fx_t *fx = fx_start(ANSWER_LATER, 0, 0);
    client_t *cl = client_open(fx);
    client_send(fx, cl, "GET /wait HTTP/1.1\r\n\r\nGET /never HTTP/1.1\r\n\r\n");
    pump_until(fx, &fx->handled, 1);
    ck_assert_int_eq(fx->npending, 1);
    client_close(cl);
    pump_until(fx, &fx->aborted, 1);
    ck_assert_int_eq(fx->npending, 0);
    pump(fx, 20);
    ck_assert_int_eq(fx->handled, 1);
    ck_assert_int_eq(fx->aborted, 1);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(close_with_open_connections)
{
    fx_t *fx = fx_start(ANSWER_LATER, 0, 0);
    client_t *idle = client_open(fx);
    client_t *waiting = client_open(fx);
    client_t *partial = client_open(fx);
    client_t *unanswered = client_open(fx);
    client_send(fx, waiting, "GET /wait HTTP/1.1\r\n\r\n");
    client_send(fx, partial, "GET /part");
    pump_until(fx, &fx->handled, 1);
    pump(fx, 20);
    ck_assert_int_eq(fl_httpd_close(fx->httpd, on_closed, fx), 0);
    ck_assert_int_eq(fl_httpd_close(fx->httpd, on_closed, fx), FL_ESTATE);
    ck_assert_int_eq(fx->aborted, 1);
    ck_assert_int_eq(fx->npending, 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(fx->closed, 1);
    client_t *all[] = {idle, waiting, partial, unanswered};
    for (int i = 0; i < 4; i++) {
        char c;
        ssize_t n = recv(all[i]->fd, &c, 1, 0);
        ck_assert_msg(n <= 0 && !(n < 0 && errno == EAGAIN), "client %d still connected", i);
        client_close(all[i]);
    }
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(close_inside_handler)
{
    fx_t *fx = fx_start(CLOSE_SERVER, 0, 0);
    client_t *cl = client_open(fx);
    client_send(fx, cl, "GET /bye HTTP/1.1\r\n\r\n");
    pump_until(fx, &fx->closed, 1);
    ck_assert_int_eq(fx->handled, 1);
    ck_assert_int_eq(fx->aborted, 1);
    expect_closed(fx, cl);
    client_close(cl);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

START_TEST(start_errors)
{
    fx_t *fx = fx_start(ANSWER_NOW, 0, 0);
    fl_httpd_t *h = NULL;
    fl_httpd_config_t cfg = {.handler = handler, .arg = fx};
    fl_httpd_config_t none = {0};
    ck_assert_int_eq(fl_httpd_start(&fx->loop, "127.0.0.1", fx->port, &cfg, &h), FL_EADDRINUSE);
    ck_assert_int_eq(fl_httpd_start(&fx->loop, "not-an-ip", 0, &cfg, &h), FL_EINVAL);
    ck_assert_int_eq(fl_httpd_start(&fx->loop, "127.0.0.1", 70000, &cfg, &h), FL_EINVAL);
    ck_assert_int_eq(fl_httpd_start(&fx->loop, "127.0.0.1", 0, &none, &h), FL_EINVAL);
    ck_assert_ptr_null(h);
    ck_assert_int_eq(fl_httpd_start(&fx->loop, "localhost", 0, &cfg, &h), 0);
    ck_assert_int_gt(fl_httpd_port(h), 0);
    ck_assert_int_ne(fl_httpd_port(h), fx->port);
    ck_assert_int_eq(fl_httpd_close(h, NULL, NULL), 0);
    ck_assert_int_eq(fx_stop(fx), 0);
}
END_TEST

static Suite *httpd_suite(void)
{
    Suite *s = suite_create("httpd");
    TCase *tc = tcase_create("exchanges");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, get_and_accessors);
    tcase_add_test(tc, keep_alive);
    tcase_add_test(tc, pipelined_in_order);
    tcase_add_test(tc, pipelined_deferred);
    tcase_add_test(tc, deferred_by_timer);
    tcase_add_test(tc, byte_by_byte);
    tcase_add_test(tc, head_and_expect_continue);
    tcase_add_test(tc, respond_checks_and_extra_headers);
    tcase_add_test(tc, handler_connection_close_and_204);
    tcase_add_test(tc, prepared_same_bytes_as_respond);
    tcase_add_test(tc, batch_answers_each_in_order);
    tcase_add_test(tc, big_answers_partly_written);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, malformed_gets_400_and_close);
    tcase_add_test(tc, body_too_big_gets_413);
    tcase_add_test(tc, head_too_big_gets_431);
    tcase_add_test(tc, start_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, http10_and_connection_close);
    tcase_add_test(tc, client_half_close_still_answered);
    tcase_add_test(tc, client_gone_aborts_deferred);
    tcase_add_test(tc, close_with_open_connections);
    tcase_add_test(tc, close_inside_handler);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the server may write to a client that has gone */
    SRunner *sr = srunner_create(httpd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
