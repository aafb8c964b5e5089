/* HTTP/1.1 client on libuv (httpc.h). A request owns one TCP handle and one timer. The timer
 * bounds the whole exchange, and also carries errors found inside fl_httpc_request to a loop
 * callback, so that cb never runs from inside the call. The request (head and a copy of the
 * body) goes out in one write; reading starts as soon as the connection is up, so an early
 * answer is not missed. The response accumulates in one buffer: the head is parsed with
 * lib/http (1xx interim heads are dropped), then the body follows the head in the same
 * buffer, chunks decoded in place. An exchange ends exactly once, by finish() or by
 * fl_httpc_cancel; both close the handles, and the memory goes in the last close callback. */
#include "lib/httpc.h"

#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"

#define DEFAULT_MAX_BODY (8u * 1024 * 1024)
#define MAX_HEAD (64 * 1024)
#define READ_CHUNK (64 * 1024)
/* More interim (1xx) responses than this is a server playing games, not informing us. */
#define MAX_INTERIM 16
/* The request goes out in one uv_buf_t, whose length is an unsigned int. */
#define MAX_REQUEST_BODY (UINT_MAX / 2)

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_UNTIL_EOF };

struct fl_httpc_req {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    fl_httpc_cb cb;
    void *arg;
    fl_buf_t out;              /* the request: head and body */
    fl_buf_t in;               /* the response: final head, then the (decoded) body */
    fl_http_response_t head;   /* filled again just before cb, pointing into `in` */
    fl_http_chunked_t chunked; /* decoder state for BODY_CHUNKED */
    uint64_t start_ns;         /* uv_hrtime() when fl_httpc_request was called */
    uint64_t content_length;   /* for BODY_LENGTH */
    size_t max_body;
    size_t head_len;        /* of the final head; 0 while it is still being read */
    int framing;            /* BODY_*, once head_len is set */
    int interim;            /* 1xx heads skipped */
    int deferred;           /* error found before the loop ran, reported by the timer */
    int handles;            /* initialised handles not yet closed */
    unsigned head_only : 1; /* a HEAD request: the response has no body */
    unsigned tcp_open : 1;  /* tcp was initialised */
    unsigned got_bytes : 1; /* some response bytes have arrived */
    unsigned closing : 1;   /* finished or cancelled: handles are closing */
};

static void on_closed(uv_handle_t *handle)
{
    fl_httpc_req_t *r = handle->data;
    if (--r->handles)
        return;
    fl_buf_free(&r->out);
    fl_buf_free(&r->in);
    free(r);
}

/* Closing the TCP handle cancels a pending connect or write: their callbacks run (with
 * UV_ECANCELED) before on_closed, while the request is still allocated. */
static void close_handles(fl_httpc_req_t *r)
{
    r->closing = 1;
    uv_close((uv_handle_t *)&r->timer, on_closed);
    if (r->tcp_open)
        uv_close((uv_handle_t *)&r->tcp, on_closed);
}

/* Ends the exchange with err (0: a complete response is in `in`) and calls cb. */
static void finish(fl_httpc_req_t *r, int err)
{
    fl_httpc_result_t res;
    if (r->closing)
        return;
    close_handles(r); /* first, so that a cancel from inside cb is a harmless no-op */
    memset(&res, 0, sizeof res);
    res.error = err;
    res.body = "";
    res.total_ns = uv_hrtime() - r->start_ns;
    if (!err) {
        /* Parsed again because `in` may have moved since: the pointers must be fresh. The
         * head parsed before, so it parses now. */
        if (fl_http_parse_response(r->in.data, r->head_len, r->head_len, &r->head) < 0) {
            res.error = FL_EMALFORMED;
        } else {
            r->in.data[r->in.len] = '\0'; /* the buffer always keeps room for it */
            res.status = r->head.status;
            res.headers = r->head.headers;
            res.nheaders = r->head.nheaders;
            res.body = r->in.data + r->head_len;
            res.body_len = r->in.len - r->head_len;
        }
    }
    r->cb(r->arg, &res);
}

/* The final head is parsed: decides how its body is delimited. */
static int start_body(fl_httpc_req_t *r)
{
    const fl_http_response_t *h = &r->head;
    if (r->head_only || h->status == 204 || h->status == 304) {
        r->framing = BODY_NONE;
    } else if (h->chunked) {
        r->framing = BODY_CHUNKED;
        fl_http_chunked_init(&r->chunked, r->max_body);
    } else if (h->content_length >= 0) {
        if ((uint64_t)h->content_length > r->max_body)
            return FL_ETOOBIG; /* no need to read it to know */
        r->framing = BODY_LENGTH;
        r->content_length = (uint64_t)h->content_length;
    } else {
        r->framing = BODY_UNTIL_EOF;
    }
    return 0;
}

/* Parses heads at the start of `in`, dropping interim ones. Returns 0 once the final head is
 * in, FL_EAGAIN, or FL_EMALFORMED/FL_ETOOBIG. */
static int read_head(fl_httpc_req_t *r)
{
    for (;;) {
        int n = fl_http_parse_response(r->in.data, r->in.len, MAX_HEAD, &r->head);
        if (n < 0)
            return n;
        if (r->head.status >= 200) {
            r->head_len = (size_t)n;
            return start_body(r);
        }
        /* 101 switches protocols, which we never asked for. */
        if (r->head.status == 101 || ++r->interim > MAX_INTERIM)
            return FL_EMALFORMED;
        fl_buf_consume(&r->in, (size_t)n);
    }
}

/* Takes in what has arrived of the body. Returns 0 when it is complete (`in` then ends with
 * it), FL_EAGAIN, or FL_EMALFORMED/FL_ETOOBIG. Bytes after the body are dropped. */
static int read_body(fl_httpc_req_t *r)
{
    size_t have = r->in.len - r->head_len;
    switch (r->framing) {
    case BODY_LENGTH:
        if (have < r->content_length)
            return FL_EAGAIN;
        r->in.len = r->head_len + (size_t)r->content_length;
        return 0;
    case BODY_CHUNKED: {
        /* Everything before in.len is decoded body: each call decodes only the new bytes. */
        size_t n = have - (size_t)r->chunked.total;
        char *from = r->in.data + r->head_len + r->chunked.total;
        int rc = fl_http_chunked_decode(&r->chunked, from, &n);
        r->in.len = (size_t)(from - r->in.data) + n;
        return rc >= 0 ? 0 : rc;
    }
    case BODY_UNTIL_EOF:
        return have > r->max_body ? FL_ETOOBIG : FL_EAGAIN;
    default:
        r->in.len = r->head_len;
        return 0;
    }
}

static void progress(fl_httpc_req_t *r)
{
    int rc = r->head_len ? 0 : read_head(r);
    if (!rc)
        rc = read_body(r);
    if (rc != FL_EAGAIN)
        finish(r, rc);
}

static void on_eof(fl_httpc_req_t *r)
{
    if (r->head_len && r->framing == BODY_UNTIL_EOF)
        finish(r, 0);
    else
        finish(r, FL_ECLOSED);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    fl_httpc_req_t *r = handle->data;
    if (fl_buf_reserve(&r->in, READ_CHUNK)) {
        *buf = uv_buf_init(NULL, 0); /* on_read gets UV_ENOBUFS */
        return;
    }
    size_t room = r->in.cap - r->in.len - 1; /* keep room for the NUL */
    *buf = uv_buf_init(r->in.data + r->in.len, room < READ_CHUNK ? (unsigned)room : READ_CHUNK);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    fl_httpc_req_t *r = stream->data;
    if (r->closing || nread == 0)
        return;
    if (nread == UV_EOF) {
        on_eof(r);
        return;
    }
    if (nread < 0) {
        finish(r, nread == UV_ENOBUFS ? FL_ENOMEM : (int)nread);
        return;
    }
    r->got_bytes = 1;
    r->in.len += (size_t)nread;
    progress(r);
}

static void on_write(uv_write_t *req, int status)
{
    fl_httpc_req_t *r = container_of(req, fl_httpc_req_t, write);
    if (r->closing || status >= 0)
        return;
    /* A server may answer early (413) and stop reading: then the answer is what counts, and
     * reading goes on. Otherwise the write error is the story. */
    if (!r->got_bytes)
        finish(r, status);
}

static void on_connect(uv_connect_t *req, int status)
{
    fl_httpc_req_t *r = container_of(req, fl_httpc_req_t, connect);
    if (r->closing)
        return;
    if (status < 0) {
        finish(r, status);
        return;
    }
    uv_buf_t b = uv_buf_init(r->out.data, (unsigned)r->out.len);
    int rc = uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read);
    if (!rc)
        rc = uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, on_write);
    if (rc)
        finish(r, rc);
}

static void on_timer(uv_timer_t *timer)
{
    fl_httpc_req_t *r = timer->data;
    finish(r, r->deferred ? r->deferred : FL_ETIMEOUT);
}

/* An error found before the loop ran: reported from the timer's callback at once. */
static void defer_error(fl_httpc_req_t *r, int err)
{
    r->deferred = err;
    uv_timer_start(&r->timer, on_timer, 0, 0);
}

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int valid_method(const char *m)
{
    if (!*m)
        return 0;
    for (; *m; m++)
        if (!is_tchar((unsigned char)*m))
            return 0;
    return 1;
}

/* Visible ASCII only: anything else in a target must be percent-encoded. */
static int valid_target(const char *t)
{
    if (!*t)
        return 0;
    for (; *t; t++)
        if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 0x7f)
            return 0;
    return 1;
}

/* Complete "Name: value\r\n" lines, so that nothing can end the head early or smuggle a
 * line in. */
static int valid_headers(const char *h)
{
    while (*h) {
        const char *p = h;
        while (is_tchar((unsigned char)*p))
            p++;
        if (p == h || *p != ':')
            return 0;
        for (p++; *p != '\r'; p++)
            if (!*p || ((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
                return 0;
        if (p[1] != '\n')
            return 0;
        h = p + 2;
    }
    return 1;
}

/* Parses host ("127.0.0.1", "::1" or "[::1]") into addr and writes the Host header's form
 * of it, from the parsed address so that nothing odd in the input reaches the wire. */
static int parse_host(const char *host, int port, struct sockaddr_storage *addr, char *name,
                      size_t namelen)
{
    char buf[INET6_ADDRSTRLEN + 64];
    size_t n = strlen(host);
    if (n == 0 || n >= sizeof buf)
        return FL_EINVAL;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)addr) == 0)
        return uv_ip4_name((struct sockaddr_in *)addr, name, namelen) ? FL_EINVAL : 0;
    memcpy(buf, host, n + 1);
    if (buf[0] == '[') {
        if (n < 3 || buf[n - 1] != ']')
            return FL_EINVAL;
        buf[n - 1] = '\0';
        memmove(buf, buf + 1, n - 1);
    }
    if (uv_ip6_addr(buf, port, (struct sockaddr_in6 *)addr))
        return FL_EINVAL;
    name[0] = '[';
    if (uv_ip6_name((struct sockaddr_in6 *)addr, name + 1, namelen - 2))
        return FL_EINVAL;
    strcat(name, "]");
    return 0;
}

static int check_opts(const fl_httpc_opts_t *o)
{
    if (o->port < 1 || o->port > 65535 || !o->host)
        return FL_EINVAL;
    if ((o->method && !valid_method(o->method)) || (o->target && !valid_target(o->target)) ||
        (o->headers && !valid_headers(o->headers)))
        return FL_EINVAL;
    if ((!o->body && o->body_len) || o->body_len > MAX_REQUEST_BODY)
        return FL_EINVAL;
    return 0;
}

static int build_request(fl_buf_t *b, const fl_httpc_opts_t *o, const char *host)
{
    if (fl_buf_reserve(b, 256 + (o->headers ? strlen(o->headers) : 0) + o->body_len) ||
        fl_buf_printf(b,
                      "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n"
                      "Content-Length: %zu\r\n",
                      o->method ? o->method : "GET", o->target ? o->target : "/", host, o->port,
                      o->body_len) ||
        (o->headers && fl_buf_puts(b, o->headers)) || fl_buf_puts(b, "\r\n") ||
        fl_buf_append(b, o->body, o->body_len))
        return FL_ENOMEM;
    return 0;
}

int fl_httpc_request(uv_loop_t *loop, const fl_httpc_opts_t *opts, fl_httpc_cb cb, void *arg,
                     fl_httpc_req_t **out)
{
    struct sockaddr_storage addr;
    char host[INET6_ADDRSTRLEN + 2];
    fl_httpc_req_t *r = NULL;
    uint64_t start_ns = uv_hrtime();
    int rc;
    if (out)
        *out = NULL;
    if (!loop || !opts || !cb)
        return FL_EINVAL;
    if ((rc = check_opts(opts)) ||
        (rc = parse_host(opts->host, opts->port, &addr, host, sizeof host)))
        return rc;
    if (!(r = calloc(1, sizeof *r)))
        return FL_ENOMEM;
    if ((rc = build_request(&r->out, opts, host)))
        goto fail;
    if (r->out.len > UINT_MAX) {
        rc = FL_EINVAL;
        goto fail;
    }
    r->start_ns = start_ns;
    r->cb = cb;
    r->arg = arg;
    r->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
    r->head_only = opts->method && strcmp(opts->method, "HEAD") == 0;
    if ((rc = uv_timer_init(loop, &r->timer)))
        goto fail;
    r->timer.data = r;
    r->handles = 1;
    /* From here on the request lives until its handles close: failures go through cb. */
    if ((rc = uv_tcp_init(loop, &r->tcp))) {
        defer_error(r, rc);
    } else {
        r->tcp.data = r;
        r->tcp_open = 1;
        r->handles++;
        rc = uv_tcp_connect(&r->connect, &r->tcp, (const struct sockaddr *)&addr, on_connect);
        if (rc)
            defer_error(r, rc);
    }
    if (!rc && opts->timeout_ns) {
        /* Never early: the loop's clock is cached (so refresh it) and counts whole
         * milliseconds (so round up, and add one for the part already gone of this one). */
        uint64_t ms = opts->timeout_ns / 1000000 + (opts->timeout_ns % 1000000 != 0) + 1;
        uv_update_time(loop);
        uv_timer_start(&r->timer, on_timer, ms, 0);
    }
    if (out)
        *out = r;
    return 0;
fail:
    fl_buf_free(&r->out);
    free(r);
    return rc == FL_ENOMEM ? FL_ENOMEM : FL_EINVAL;
}

void fl_httpc_cancel(fl_httpc_req_t *req)
{
    if (req && !req->closing)
        close_handles(req);
}

void fl_httpc_describe(const fl_httpc_result_t *res, char *out, size_t outlen)
{
    if (res->error) {
        snprintf(out, outlen, "%s", fl_strerror(res->error));
        return;
    }
    char reason[120];
    size_t i;
    for (i = 0; i < res->body_len && i + 1 < sizeof reason && res->body[i] != '\n'; i++)
        reason[i] = (res->body[i] >= ' ' && res->body[i] < 0x7f) ? res->body[i] : '?';
    reason[i] = '\0';
    snprintf(out, outlen, "HTTP %d%s%s", res->status, i ? ": " : "", reason);
}
