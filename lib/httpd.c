/* HTTP/1.1 server on libuv (httpd.h). A connection reads into one buffer, parses a head with
 * lib/http, collects the body (decoding chunks in place), then copies the request into an
 * exchange of its own and calls the handler. Until that exchange is answered and the answer
 * written, nothing more is parsed, which keeps pipelined answers in order; reading goes on
 * only up to PIPELINE_CAP bytes so that a client hanging up is still noticed. An exchange
 * ends exactly once: by fl_httpd_respond, or by on_abort when its connection goes. An answer
 * goes straight to the socket (uv_try_write) when nothing is queued or waiting on that
 * connection; only what the socket does not take becomes a write request with a copy. Memory
 * a libuv callback may still touch is freed in close callbacks only. */
#include "lib/httpd.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/err.h"

#define DEFAULT_MAX_HEAD (16 * 1024)
#define DEFAULT_MAX_BODY (1024 * 1024)
#define READ_CHUNK (64 * 1024)
/* Unparsed input kept while a request is being answered; beyond it reading pauses. */
#define PIPELINE_CAP (64 * 1024)
/* After the last response, how long unread input is drained before closing, so the kernel
 * does not answer it with a reset that would destroy the response in flight. */
#define LINGER_MS 2000
#define BACKLOG 1024

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct conn conn_t;

struct fl_httpd {
    uv_tcp_t listener;
    uv_loop_t *loop;
    fl_httpd_config_t cfg;
    conn_t *conns; /* every connection not yet freed, closing ones included */
    int listener_open;
    int closing;
    void (*close_cb)(fl_httpd_t *h, void *arg);
    void *close_arg;
    fl_buf_t scratch; /* a response being formatted, reused: most are written at once */
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t linger;
    uv_shutdown_t shutdown;
    fl_httpd_t *server;
    conn_t *prev, *next;
    fl_buf_t in;                /* input not yet handed to an exchange */
    size_t head_len;            /* of the request being read; 0 before its head is parsed */
    size_t body_end;            /* chunked: end of the body decoded so far, in `in` */
    uint64_t content_length;    /* not chunked: body length */
    fl_http_chunked_t chunked;  /* decoder state when is_chunked */
    fl_httpd_exchange_t *ex;    /* the request being answered */
    int writes;                 /* write requests in flight */
    int handles;                /* open libuv handles: tcp and linger */
    unsigned is_chunked : 1;    /* the body being read is chunked */
    unsigned want_continue : 1; /* the client sent Expect: 100-continue */
    unsigned sent_continue : 1; /* and got its interim response */
    unsigned reading : 1;       /* uv_read_start is in effect */
    unsigned eof : 1;           /* the client finished sending */
    unsigned last : 1;          /* the response in flight is the last one */
    unsigned finishing : 1;     /* shut down, draining input until EOF or the timer */
    unsigned closing : 1;       /* uv_close called */
    char peer[64];
};

struct fl_httpd_exchange {
    fl_httpd_t *server;
    conn_t *conn;          /* NULL once the connection is gone or the answer is queued */
    fl_http_request_t req; /* pointers into raw, NUL-terminated there */
    fl_buf_t raw;          /* head, body, NUL, path, NUL */
    const char *body;
    size_t body_len;
    const char *path;
    const char *query;
    void *data;
    int head_only;   /* a HEAD request: no body in the answer */
    int in_callback; /* the handler or on_abort is running: freeing waits for its return */
    int responded;
    int aborted;
    int pre_tried;   /* a batch wrote to the socket already: pre_written is what it returned */
    int pre_written; /* uv_try_write's result */
    char peer[64];
};

typedef struct {
    uv_write_t req;
    conn_t *conn;
    fl_buf_t data;
} write_req_t;

struct fl_httpd_prepared {
    int status;
    char *extra, *ctype, *body; /* copies of what fl_httpd_prepare was given */
    size_t len;
    int close_asked; /* extra asks to close the connection */
    fl_buf_t wire;   /* the whole response to a keep-alive HTTP/1.1 request */
};

static void progress(conn_t *c);
static void finish(conn_t *c);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void free_exchange(fl_httpd_exchange_t *ex)
{
    fl_buf_free(&ex->raw);
    free(ex);
}

/* Tells the handler its exchange can no longer be answered, then frees it. */
static void abort_exchange(fl_httpd_exchange_t *ex)
{
    fl_httpd_t *h = ex->server;
    ex->aborted = 1;
    ex->in_callback = 1;
    if (h->cfg.on_abort)
        h->cfg.on_abort(ex, h->cfg.arg);
    free_exchange(ex);
}

static void maybe_closed(fl_httpd_t *h)
{
    if (!h->closing || h->listener_open || h->conns)
        return;
    if (h->close_cb)
        h->close_cb(h, h->close_arg);
    fl_buf_free(&h->scratch);
    free(h);
}

static void on_conn_closed(uv_handle_t *handle)
{
    conn_t *c = handle->data;
    if (--c->handles)
        return;
    fl_httpd_t *h = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    fl_buf_free(&c->in);
    free(c);
    maybe_closed(h);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->reading = 0;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->linger, on_conn_closed);
    fl_httpd_exchange_t *ex = c->ex;
    if (ex) {
        c->ex = NULL;
        ex->conn = NULL;
        if (!ex->in_callback) /* else the dispatcher aborts it when the handler returns */
            abort_exchange(ex);
    }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = handle->data;
    if (c->finishing)
        fl_buf_reset(&c->in); /* draining: what arrives now is dropped */
    if (fl_buf_reserve(&c->in, READ_CHUNK)) {
        *buf = uv_buf_init(NULL, 0); /* on_read gets UV_ENOBUFS */
        return;
    }
    size_t room = c->in.cap - c->in.len - 1;
    *buf = uv_buf_init(c->in.data + c->in.len, room < READ_CHUNK ? (unsigned)room : READ_CHUNK);
}

/* Reads while input is wanted: always when idle or reading a request, when draining, and
 * up to PIPELINE_CAP bytes while a request is answered (to notice a client hanging up). */
static void update_reading(conn_t *c)
{
    int want;
    if (c->closing || c->eof)
        want = 0;
    else if (c->finishing)
        want = 1;
    else if (c->last)
        want = 0;
    else if (c->ex || c->writes)
        want = c->in.len < PIPELINE_CAP;
    else
        want = 1;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
            conn_close(c);
            return;
        }
        c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = container_of(req, write_req_t, req);
    conn_t *c = w->conn;
    fl_buf_free(&w->data);
    free(w);
    c->writes--;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->writes)
        return;
    if (c->last) {
        finish(c);
        return;
    }
    progress(c);
}

/* Queues w's bytes; on failure w is freed. */
static int queue_write(conn_t *c, write_req_t *w)
{
    uv_buf_t b = uv_buf_init(w->data.data, (unsigned)w->data.len);
    w->conn = c;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write)) {
        fl_buf_free(&w->data);
        free(w);
        return FL_EIO;
    }
    c->writes++;
    return 0;
}

/* Whether handler-supplied header lines include a Connection header, and ask to close. */
static int find_connection(const char *extra, int *close)
{
    int found = 0;
    *close = 0;
    for (const char *line = extra; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len >= 11 && strncasecmp(line, "connection:", 11) == 0) {
            found = 1;
            for (size_t i = 11; i + 5 <= len; i++)
                if (strncasecmp(line + i, "close", 5) == 0)
                    *close = 1;
        }
        line = eol ? eol + 1 : line + len;
    }
    return found;
}

/* Formats a whole response into b (reset first). Returns 0 or FL_ENOMEM. */
static int format_response(fl_buf_t *b, int status, const char *extra, const char *content_type,
                           const void *body, size_t len, int head_only, int keep_alive,
                           int minor_version)
{
    int close_asked;
    int no_body = status < 200 || status == 204 || status == 304;
    int own_connection = !find_connection(extra, &close_asked);
    fl_buf_reset(b);
    if (fl_buf_printf(b, "HTTP/1.1 %d %s\r\n", status, fl_http_status_text(status)))
        return FL_ENOMEM;
    if (content_type && fl_buf_printf(b, "Content-Type: %s\r\n", content_type))
        return FL_ENOMEM;
    if (status >= 200 && status != 204 && fl_buf_printf(b, "Content-Length: %zu\r\n", len))
        return FL_ENOMEM;
    if (extra && *extra) {
        size_t n = strlen(extra);
        int ends_line = n >= 2 && strcmp(extra + n - 2, "\r\n") == 0;
        if (fl_buf_append(b, extra, n) || (!ends_line && fl_buf_puts(b, "\r\n")))
            return FL_ENOMEM;
    }
    if (own_connection && !keep_alive && fl_buf_puts(b, "Connection: close\r\n"))
        return FL_ENOMEM;
    if (own_connection && keep_alive && minor_version == 0 &&
        fl_buf_puts(b, "Connection: keep-alive\r\n"))
        return FL_ENOMEM;
    if (fl_buf_puts(b, "\r\n"))
        return FL_ENOMEM;
    if (!head_only && !no_body && len && fl_buf_append(b, body, len))
        return FL_ENOMEM;
    return 0;
}

/* Queues a copy of data. */
static int queue_copy(conn_t *c, const char *data, size_t len)
{
    write_req_t *w = calloc(1, sizeof *w);
    if (!w)
        return FL_ENOMEM;
    if (fl_buf_append(&w->data, data, len)) {
        free(w);
        return FL_ENOMEM;
    }
    return queue_write(c, w);
}

/* Whether len bytes may be written to the socket at once: nothing is queued before them,
 * nothing waits to be parsed after them (on_write would parse it), and the connection stays
 * open (on_write would close it). */
static int can_write_now(const conn_t *c, size_t len)
{
    return !c->writes && !c->in.len && !c->last && len <= INT_MAX;
}

/* Completes sending data after uv_try_write returned n for it (UV_EAGAIN when not tried):
 * what the socket did not take is copied and queued. Returns 0, FL_ENOMEM or FL_EIO. */
static int send_rest(conn_t *c, const char *data, size_t len, int n)
{
    if (n == (int)len)
        return 0;
    if (n < 0 && n != UV_EAGAIN)
        return FL_EIO;
    if (n > 0) {
        data += n;
        len -= (size_t)n;
    }
    return queue_copy(c, data, len);
}

/* Sends a response: at once when it can (the usual case: one write(2), no copy, no
 * callback), else queued. data need not outlive the call. */
static int send_bytes(conn_t *c, const char *data, size_t len)
{
    int n = UV_EAGAIN;
    if (can_write_now(c, len)) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    return send_rest(c, data, len, n);
}

static int write_response(conn_t *c, int status, const char *extra, const char *content_type,
                          const void *body, size_t len, int head_only, int keep_alive,
                          int minor_version)
{
    fl_buf_t *b = &c->server->scratch;
    int rc = format_response(b, status, extra, content_type, body, len, head_only, keep_alive,
                             minor_version);
    if (!rc)
        rc = send_bytes(c, b->data, b->len);
    if (b->cap > 4 * READ_CHUNK)
        fl_buf_free(b); /* do not keep a large answer's buffer */
    return rc;
}

/* Answers a request that cannot be served (400, 413, 431) and ends the connection. */
static void fail_request(conn_t *c, int status)
{
    const char *text = fl_http_status_text(status);
    char body[64];
    int n = snprintf(body, sizeof body, "%s\n", text);
    c->last = 1;
    if (write_response(c, status, NULL, "text/plain", body, (size_t)n, 0, 0, 1))
        conn_close(c);
    else
        update_reading(c);
}

/* Sends "100 Continue" once, when the client waits for it before sending its body. */
static void send_continue(conn_t *c)
{
    static const char text[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (!c->want_continue || c->sent_continue)
        return;
    write_req_t *w = calloc(1, sizeof *w);
    c->sent_continue = 1;
    if (!w || fl_buf_append(&w->data, text, sizeof text - 1)) {
        free(w);
        conn_close(c);
        return;
    }
    if (queue_write(c, w))
        conn_close(c);
}

/* The request occupying in[0..end) is complete: copy it into an exchange and hand it over. */
static void dispatch(conn_t *c, size_t end)
{
    fl_httpd_t *h = c->server;
    size_t head_len = c->head_len;
    fl_httpd_exchange_t *ex = calloc(1, sizeof *ex);
    if (!ex)
        goto fail;
    /* Room for head, body, NUL, path (shorter than the head) and NUL, so that pointers into
     * raw taken below stay valid. */
    if (fl_buf_reserve(&ex->raw, end + head_len + 2) || fl_buf_append(&ex->raw, c->in.data, end))
        goto fail;
    ex->raw.len++; /* keep the NUL that ends the body */
    fl_http_request_t *req = &ex->req;
    if (fl_http_parse_request(ex->raw.data, head_len, head_len, req) != (int)head_len)
        goto fail;
    char *raw = ex->raw.data;
    const char *q = memchr(req->target, '?', req->target_len);
    size_t path_len = q ? (size_t)(q - req->target) : req->target_len;
    ex->path = raw + ex->raw.len;
    if (fl_buf_append(&ex->raw, req->target, path_len))
        goto fail;
    ex->raw.len++;
    ex->query = q ? q + 1 : "";
    ex->body = raw + head_len;
    ex->body_len = end - head_len;
    /* Every token is followed by a delimiter inside the head, so it can end there. */
    raw[req->method - raw + req->method_len] = '\0';
    raw[req->target - raw + req->target_len] = '\0';
    for (size_t i = 0; i < req->nheaders; i++) {
        raw[req->headers[i].name - raw + req->headers[i].name_len] = '\0';
        raw[req->headers[i].value - raw + req->headers[i].value_len] = '\0';
    }
    ex->head_only = strcmp(req->method, "HEAD") == 0;
    ex->server = h;
    ex->conn = c;
    memcpy(ex->peer, c->peer, sizeof ex->peer);

    fl_buf_consume(&c->in, end);
    if (c->in.len == 0 && c->in.cap > 4 * READ_CHUNK)
        fl_buf_free(&c->in); /* do not keep a large body's buffer for an idle connection */
    c->head_len = 0;
    c->want_continue = c->sent_continue = 0;
    c->ex = ex;
    update_reading(c);

    ex->in_callback = 1;
    h->cfg.handler(ex, h->cfg.arg);
    ex->in_callback = 0;
    if (ex->responded)
        free_exchange(ex);
    else if (!ex->conn) /* the connection closed while the handler ran */
        abort_exchange(ex);
    return;
fail:
    if (ex)
        free_exchange(ex);
    conn_close(c);
}

/* Reads the head, then the body, of the next request from `in`, and dispatches it when
 * whole. Bad input is answered and ends the connection. */
static void read_request(conn_t *c)
{
    fl_httpd_t *h = c->server;
    size_t end;
    int rc;
    if (!c->head_len) {
        fl_http_request_t req;
        rc = c->in.len ? fl_http_parse_request(c->in.data, c->in.len, h->cfg.max_head, &req)
                       : FL_EAGAIN;
        if (rc == FL_EAGAIN) {
            if (c->eof)
                conn_close(c);
            return;
        }
        if (rc < 0) {
            fail_request(c, rc == FL_ETOOBIG ? 431 : 400);
            return;
        }
        if (!req.chunked && req.content_length > 0 &&
            (uint64_t)req.content_length > h->cfg.max_body) {
            fail_request(c, 413);
            return;
        }
        size_t elen;
        const char *expect = fl_http_header_get(req.headers, req.nheaders, "expect", &elen);
        c->want_continue = req.minor_version >= 1 && expect && elen == 12 &&
                           strncasecmp(expect, "100-continue", 12) == 0;
        c->head_len = (size_t)rc;
        c->is_chunked = req.chunked;
        c->content_length = req.content_length > 0 ? (uint64_t)req.content_length : 0;
        if (req.chunked) {
            fl_http_chunked_init(&c->chunked, h->cfg.max_body);
            c->body_end = c->head_len;
        }
    }
    if (c->is_chunked) {
        size_t n = c->in.len - c->body_end;
        rc = fl_http_chunked_decode(&c->chunked, c->in.data + c->body_end, &n);
        if (rc < 0 && rc != FL_EAGAIN) {
            fail_request(c, rc == FL_ETOOBIG ? 413 : 400);
            return;
        }
        c->body_end += n;
        end = c->body_end;
        /* drop the chunk framing between the decoded body and what follows it */
        c->in.len = c->body_end + (rc >= 0 ? (size_t)rc : 0);
        c->in.data[c->in.len] = '\0';
        if (rc == FL_EAGAIN)
            goto more;
    } else {
        end = c->head_len + c->content_length;
        if (c->in.len < end)
            goto more;
    }
    dispatch(c, end);
    return;
more:
    if (c->eof)
        conn_close(c);
    else
        send_continue(c);
}

/* Moves the connection on after input arrived or a write finished. */
static void progress(conn_t *c)
{
    if (c->closing || c->finishing)
        return;
    if (!c->ex && !c->writes)
        read_request(c);
    if (!c->closing)
        update_reading(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = stream->data;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF || c->finishing || c->ex) {
            conn_close(c); /* a pending exchange is aborted: its client is gone */
            return;
        }
        c->eof = 1;
        c->reading = 0; /* libuv stopped reading at EOF */
        if (!c->writes)
            progress(c); /* answer what is buffered; closes when nothing is left */
        return;
    }
    if (c->finishing)
        return;
    c->in.len += (size_t)nread;
    c->in.data[c->in.len] = '\0';
    progress(c);
}

static void on_linger(uv_timer_t *timer)
{
    conn_close(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = container_of(req, conn_t, shutdown);
    if (c->closing)
        return;
    if (status < 0 || c->eof)
        conn_close(c);
}

/* The last response is written: send FIN, then drain input until the client closes too (or
 * LINGER_MS passes), so that a client still sending does not get a reset instead of it. */
static void finish(conn_t *c)
{
    c->finishing = 1;
    fl_buf_free(&c->in);
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown)) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->linger, on_linger, LINGER_MS, 0);
    update_reading(c);
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char ip[64] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(out, n, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof ip);
        snprintf(out, n, "%s:%d", ip, ntohs(a->sin_port));
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    fl_httpd_t *h = server->data;
    if (status < 0 || h->closing)
        return;
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    if (uv_tcp_init(h->loop, &c->tcp)) {
        free(c);
        return;
    }
    uv_timer_init(h->loop, &c->linger);
    c->handles = 2;
    c->server = h;
    c->tcp.data = c;
    c->linger.data = c;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, c->peer, sizeof c->peer);
    else
        snprintf(c->peer, sizeof c->peer, "?");
    update_reading(c);
}

static void on_listener_closed(uv_handle_t *handle)
{
    fl_httpd_t *h = handle->data;
    h->listener_open = 0;
    if (h->closing)
        maybe_closed(h);
    else
        free(h); /* fl_httpd_start failed */
}

int fl_httpd_start(uv_loop_t *loop, const char *host, int port, const fl_httpd_config_t *cfg,
                   fl_httpd_t **out)
{
    struct sockaddr_storage addr;
    int rc;
    if (!loop || !cfg || !cfg->handler || !out || port < 0 || port > 65535)
        return FL_EINVAL;
    if (!host || strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    memset(&addr, 0, sizeof addr);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr))
        return FL_EINVAL;
    fl_httpd_t *h = calloc(1, sizeof *h);
    if (!h)
        return FL_ENOMEM;
    h->loop = loop;
    h->cfg = *cfg;
    if (!h->cfg.max_head)
        h->cfg.max_head = DEFAULT_MAX_HEAD;
    if (!h->cfg.max_body)
        h->cfg.max_body = DEFAULT_MAX_BODY;
    if (uv_tcp_init(loop, &h->listener)) {
        free(h);
        return FL_EIO;
    }
    h->listener.data = h;
    h->listener_open = 1;
    if ((rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&addr, 0)) ||
        (rc = uv_listen((uv_stream_t *)&h->listener, BACKLOG, on_connection)))
        goto fail;
    *out = h;
    return 0;
fail:
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
    if (rc == UV_EADDRINUSE)
        return FL_EADDRINUSE;
    if (rc == UV_EADDRNOTAVAIL || rc == UV_EINVAL)
        return FL_EINVAL;
    return FL_EIO;
}

int fl_httpd_port(const fl_httpd_t *h)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (!h)
        return FL_EINVAL;
    if (uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len))
        return FL_EIO;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int fl_httpd_close(fl_httpd_t *h, void (*cb)(fl_httpd_t *h, void *arg), void *arg)
{
    if (!h)
        return FL_EINVAL;
    if (h->closing)
        return FL_ESTATE;
    h->closing = 1;
    h->close_cb = cb;
    h->close_arg = arg;
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
    /* Connections leave the list only in close callbacks, so this walk is safe even when an
     * on_abort below answers other exchanges or closes the server again. */
    for (conn_t *c = h->conns; c; c = c->next)
        conn_close(c);
    return 0;
}

/* Answers ex with wire (the complete response, when given) or else the parts. */
static int respond_with(fl_httpd_exchange_t *ex, int status, const char *extra_headers,
                        const char *content_type, const void *body, size_t len,
                        const fl_buf_t *wire)
{
    if (ex->aborted)
        return FL_ECLOSED;
    if (ex->responded)
        return FL_ESTATE;
    ex->responded = 1;
    conn_t *c = ex->conn;
    int rc = FL_ECLOSED;
    if (c) {
        int close_asked;
        find_connection(extra_headers, &close_asked);
        int keep_alive = ex->req.keep_alive && !close_asked;
        c->ex = NULL;
        ex->conn = NULL;
        c->last = !keep_alive;
        if (wire && ex->pre_tried)
            rc = send_rest(c, wire->data, wire->len, ex->pre_written);
        else if (wire)
            rc = send_bytes(c, wire->data, wire->len);
        else
            rc = write_response(c, status, extra_headers, content_type, body, len, ex->head_only,
                                keep_alive, ex->req.minor_version);
        if (rc)
            conn_close(c);
        else
            update_reading(c);
    }
    if (!ex->in_callback)
        free_exchange(ex);
    return rc;
}

int fl_httpd_respond(fl_httpd_exchange_t *ex, int status, const char *extra_headers,
                     const char *content_type, const void *body, size_t len)
{
    if (!ex || status < 200 || status > 999 || (len && !body))
        return FL_EINVAL;
    return respond_with(ex, status, extra_headers, content_type, body, len, NULL);
}

void fl_httpd_prepared_free(fl_httpd_prepared_t *p)
{
    if (!p)
        return;
    free(p->extra);
    free(p->ctype);
    free(p->body);
    fl_buf_free(&p->wire);
    free(p);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int fl_httpd_prepare(int status, const char *extra_headers, const char *content_type,
                     const void *body, size_t len, fl_httpd_prepared_t **out)
{
    if (!out || status < 200 || status > 999 || (len && !body))
        return FL_EINVAL;
    fl_httpd_prepared_t *p = calloc(1, sizeof *p);
    if (!p)
        return FL_ENOMEM;
    p->status = status;
    p->len = len;
    p->extra = dup_or_null(extra_headers);
    p->ctype = dup_or_null(content_type);
    p->body = malloc(len + 1);
    if ((extra_headers && !p->extra) || (content_type && !p->ctype) || !p->body)
        goto fail;
    if (len)
        memcpy(p->body, body, len);
    find_connection(extra_headers, &p->close_asked);
    if (format_response(&p->wire, status, extra_headers, content_type, body, len, 0, 1, 1))
        goto fail;
    *out = p;
    return 0;
fail:
    fl_httpd_prepared_free(p);
    return FL_ENOMEM;
}

/* Whether p's bytes are what ex is to be answered: they were formatted for a keep-alive
 * HTTP/1.1 request that wants a body. */
static int as_formatted(const fl_httpd_exchange_t *ex, const fl_httpd_prepared_t *p)
{
    return ex->req.keep_alive && ex->req.minor_version != 0 && !ex->head_only && !p->close_asked;
}

int fl_httpd_respond_prepared(fl_httpd_exchange_t *ex, const fl_httpd_prepared_t *p)
{
    if (!ex || !p)
        return FL_EINVAL;
    return respond_with(ex, p->status, p->extra, p->ctype, p->body, p->len,
                        as_formatted(ex, p) ? &p->wire : NULL);
}

void fl_httpd_respond_prepared_batch(fl_httpd_exchange_t *const *exs,
                                     const fl_httpd_prepared_t *const *ps, size_t n)
{
    /* First every write, in a tight loop: for many clients, the last is answered sooner when
     * nothing else (freeing, bookkeeping, other cache lines) comes between two writes. */
    for (size_t i = 0; i < n; i++) {
        fl_httpd_exchange_t *ex = exs[i];
        const fl_httpd_prepared_t *p = ps[i];
        if (!ex || !p || ex->responded || ex->aborted || !ex->conn || !as_formatted(ex, p) ||
            !can_write_now(ex->conn, p->wire.len))
            continue;
        uv_buf_t b = uv_buf_init(p->wire.data, (unsigned)p->wire.len);
        ex->pre_written = uv_try_write((uv_stream_t *)&ex->conn->tcp, &b, 1);
        ex->pre_tried = 1;
    }
    for (size_t i = 0; i < n; i++)
        if (exs[i] && ps[i])
            fl_httpd_respond_prepared(exs[i], ps[i]);
}

const char *fl_httpd_method(const fl_httpd_exchange_t *ex)
{
    return ex->req.method;
}

const char *fl_httpd_target(const fl_httpd_exchange_t *ex)
{
    return ex->req.target;
}

const char *fl_httpd_path(const fl_httpd_exchange_t *ex)
{
    return ex->path;
}

const char *fl_httpd_query(const fl_httpd_exchange_t *ex)
{
    return ex->query;
}

const char *fl_httpd_header(const fl_httpd_exchange_t *ex, const char *name)
{
    return fl_http_header_get(ex->req.headers, ex->req.nheaders, name, NULL);
}

const fl_http_request_t *fl_httpd_request(const fl_httpd_exchange_t *ex)
{
    return &ex->req;
}

const char *fl_httpd_body(const fl_httpd_exchange_t *ex, size_t *len)
{
    if (len)
        *len = ex->body_len;
    return ex->body;
}

const char *fl_httpd_exchange_peer(const fl_httpd_exchange_t *ex)
{
    return ex->peer;
}

int fl_httpd_query_param(const fl_httpd_exchange_t *ex, const char *name, char *buf, size_t buflen)
{
    return fl_http_query_param(ex->query, strlen(ex->query), name, buf, buflen);
}

void fl_httpd_exchange_set_data(fl_httpd_exchange_t *ex, void *data)
{
    ex->data = data;
}

void *fl_httpd_exchange_data(const fl_httpd_exchange_t *ex)
{
    return ex->data;
}
