/* The open-loop load generator of workload.h.
 *
 * Schedule: request i is due at start + i / rate. pump() — run from a uv_check handle after
 * every round of I/O, and from a timer set for the next due request or deadline when nothing
 * else wakes the loop — counts the requests that are due, sends as many as free slots allow
 * (the rest wait: the queue is just the range [nsent, ndue) of the schedule), times out HTTP
 * requests past their deadline (all requests of a load share one timeout, so the in-flight
 * list, in send order, is in deadline order too: only its head needs looking at), and turns
 * every second whose requests have all ended into a timeline sample.
 *
 * HTTP/1.1: one request at a time per connection, kept alive; idle connections wait per
 * target (LIFO) and keep reading, so a server that closes one is noticed. A request is three
 * buffers written with one writev (uv_try_write, falling back to uv_write): the request line,
 * the target's host:port, the rest — serialized once per distinct request (fl_load_msg_t).
 * gRPC: services/runtime's client, one HTTP/2 connection per target, the deadline its own. */
#include "harness/workload.h"

#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/http.h"
#include "services/runtime/grpc_client.h"

#define READ_CHUNK 16384
#define MAX_HEAD (64 * 1024)
#define MAX_BODY (64u * 1024 * 1024)
#define NS 1000000000ull

struct fl_load_msg {
    int refs;
    fl_load_proto_t proto;
    char *head, *tail; /* HTTP: "GET /p HTTP/1.1\r\nHost: ", then "\r\n...\r\n\r\nbody" */
    size_t head_len, tail_len;
    int head_only; /* HEAD: answers have no body */
    char *grpc;    /* gRPC: the path, message and metadata */
    uint8_t *body;
    size_t body_len;
    char *meta;
    size_t meta_len;
    int *ok;
    size_t nok;
};

typedef struct conn conn_t;
typedef struct req req_t;

typedef struct {
    fl_load_target_t t;
    struct sockaddr_storage sa;
    char hostport[80];
    size_t hostport_len;
    conn_t *idle; /* idle keep-alive connections, most recent first */
    fl_grpc_backend_t *be;
} target_t;

struct req {
    fl_load_t *ld;
    uint64_t i, intended, deadline;
    fl_load_msg_t *msg;
    conn_t *conn;         /* HTTP */
    fl_grpc_call_t *call; /* gRPC */
    req_t *prev, *next;   /* in flight (send order), or the free list */
};

enum { C_CONNECTING, C_BUSY, C_IDLE, C_CLOSING };

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    fl_load_t *ld;
    target_t *tg;
    req_t *req;
    int state;
    fl_load_msg_t *wmsg;    /* held while a uv_write is in flight */
    conn_t *prev, *next;    /* every open connection of the load */
    conn_t *iprev, *inext;  /* the target's idle list */
    fl_buf_t in;            /* the answer so far */
    int have_head, no_body; /* answer framing, once the head is in */
    int keep_alive, status;
    size_t head_len, dec_end; /* chunked: decoded body ends at dec_end */
    int64_t content_length;
    int chunked;
    fl_http_chunked_t ch;
};

typedef struct {
    uint64_t scheduled, ok, errors, outstanding;
    fl_hdr_t h;
} second_t;

struct fl_load {
    uv_loop_t *loop;
    fl_load_opts_t o;
    target_t *targets;
    size_t ntargets, rr;
    fl_load_msg_t *msg;
    uv_timer_t timer;
    uv_check_t check;
    fl_grpc_channel_t *ch;
    int open; /* handles (and the channel) not closed yet */
    int running, stopped, done_sent, closing;
    void (*closed_cb)(void *);
    void *closed_arg;
    uint64_t start_ns, end_ns, total; /* total: UINT64_MAX without a duration */
    uint64_t ndue, nsent;
    req_t *slots, *free_slots, *head, *tail;
    conn_t *conns;
    uint64_t sent, ok, errors, inflight, cancelled, unsent;
    uint64_t by_kind[FL_LOAD_NKINDS];
    uint64_t http_status[1000], grpc_code[17];
    fl_hdr_t hist;
    second_t **secs; /* by second of intended send time; NULL once flushed */
    size_t nsecs, next_flush;
};

static void pump(fl_load_t *ld);

/* ------------------------------------------------------------ messages ---- */

int fl_load_is_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 127 || strchr("()<>@,;:\\\"/[]?={}", *s))
            return 0;
    return 1;
}

static int is_target(const char *s)
{
    if (*s != '/' && *s != '*')
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s == 127)
            return 0;
    return 1;
}

/* "Name: value\r\n" lines, with no CR or LF anywhere else. */
static int valid_header_block(const char *h)
{
    while (*h) {
        const char *eol = strstr(h, "\r\n");
        const char *colon = strchr(h, ':');
        if (!eol || !colon || colon == h || colon > eol)
            return 0;
        for (const char *p = h; p < eol; p++)
            if (*p == '\r' || *p == '\n' || (p < colon && (*p <= ' ' || *p >= 127)))
                return 0;
        h = eol + 2;
    }
    return 1;
}

void fl_load_msg_unref(fl_load_msg_t *m)
{
    if (!m || --m->refs > 0)
        return;
    free(m->head);
    free(m->tail);
    free(m->grpc);
    free(m->body);
    free(m->meta);
    free(m->ok);
    free(m);
}

int fl_load_msg_new(const fl_load_req_t *req, fl_load_msg_t **out)
{
    fl_load_msg_t *m = calloc(1, sizeof *m);
    if (!m)
        return FL_ENOMEM;
    m->refs = 1;
    m->proto = req->proto;
    int rc = FL_ENOMEM;
    if (req->nok) {
        m->ok = malloc(req->nok * sizeof *m->ok);
        if (!m->ok)
            goto fail;
        memcpy(m->ok, req->ok, req->nok * sizeof *m->ok);
        m->nok = req->nok;
    }
    if (req->proto == FL_LOAD_GRPC) {
        rc = FL_EINVAL;
        if (!req->grpc || req->grpc[0] != '/' || strchr(req->grpc, ' '))
            goto fail;
        rc = FL_ENOMEM;
        m->grpc = strdup(req->grpc);
        m->body = malloc(req->body_len ? req->body_len : 1);
        m->meta = malloc(req->meta_len ? req->meta_len : 1);
        if (!m->grpc || !m->body || !m->meta)
            goto fail;
        if (req->body_len)
            memcpy(m->body, req->body, req->body_len);
        m->body_len = req->body_len;
        if (req->meta_len)
            memcpy(m->meta, req->meta, req->meta_len);
        m->meta_len = req->meta_len;
        *out = m;
        return 0;
    }
    const char *method = req->method ? req->method : "GET";
    const char *path = req->path ? req->path : "/";
    rc = FL_EINVAL;
    if (!fl_load_is_token(method) || !is_target(path) ||
        (req->headers && !valid_header_block(req->headers)))
        goto fail;
    rc = FL_ENOMEM;
    fl_buf_t head = FL_BUF_INIT, tail = FL_BUF_INIT;
    fl_buf_printf(&head, "%s %s HTTP/1.1\r\nHost: ", method, path);
    fl_buf_puts(&tail, "\r\n");
    int wants_length = req->body_len || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
                       !strcmp(method, "PATCH");
    if (wants_length)
        fl_buf_printf(&tail, "Content-Length: %zu\r\n", req->body_len);
    if (req->headers)
        fl_buf_puts(&tail, req->headers);
    fl_buf_puts(&tail, "\r\n");
    if (req->body_len)
        fl_buf_append(&tail, req->body, req->body_len);
    if (!head.data || !tail.data || fl_buf_reserve(&head, 0) || fl_buf_reserve(&tail, 0)) {
        fl_buf_free(&head);
        fl_buf_free(&tail);
        goto fail;
    }
    m->head = head.data;
    m->head_len = head.len;
    m->tail = tail.data;
    m->tail_len = tail.len;
    m->head_only = !strcmp(method, "HEAD");
    *out = m;
    return 0;
fail:
    fl_load_msg_unref(m);
    return rc;
}

fl_load_proto_t fl_load_msg_proto(const fl_load_msg_t *m)
{
    return m->proto;
}

static int is_ok(const fl_load_msg_t *m, int status)
{
    if (!m->nok)
        return m->proto == FL_LOAD_GRPC ? status == 0 : status >= 200 && status < 300;
    for (size_t i = 0; i < m->nok; i++)
        if (m->ok[i] == status)
            return 1;
    return 0;
}

void fl_load_kind_name(fl_load_kind_t kind, int status, fl_load_proto_t proto, char *out, size_t n)
{
    static const char *const names[] = {"ok",        "timeout", "refused", "reset",    "closed",
                                        "malformed", "io",      "status",  "cancelled"};
    if (kind == FL_LOAD_STATUS)
        snprintf(out, n, "%s_%d", proto == FL_LOAD_GRPC ? "grpc" : "http", status);
    else
        snprintf(out, n, "%s", kind < FL_LOAD_NKINDS ? names[kind] : "?");
}

static fl_load_kind_t kind_of_uv(int err)
{
    switch (err) {
    case UV_ECONNREFUSED:
        return FL_LOAD_REFUSED;
    case UV_ECONNRESET:
    case UV_EPIPE:
        return FL_LOAD_RESET;
    case UV_EOF:
        return FL_LOAD_CLOSED;
    case UV_ETIMEDOUT:
        return FL_LOAD_TIMEOUT;
    default:
        return FL_LOAD_IO;
    }
}

/* ------------------------------------------------------------ seconds (samples) ---- */

static uint64_t offset_of(const fl_load_t *ld, uint64_t i)
{
    return (uint64_t)((double)i * 1e9 / ld->o.rate);
}

static second_t *second_of(fl_load_t *ld, uint64_t i, int create)
{
    size_t k = (size_t)(offset_of(ld, i) / NS);
    if (k >= ld->nsecs) {
        if (!create)
            return NULL;
        size_t n = ld->nsecs ? ld->nsecs : 16;
        while (n <= k)
            n *= 2;
        second_t **s = realloc(ld->secs, n * sizeof *s);
        if (!s)
            return NULL;
        memset(s + ld->nsecs, 0, (n - ld->nsecs) * sizeof *s);
        ld->secs = s;
        ld->nsecs = n;
    }
    if (!ld->secs[k] && create && k >= ld->next_flush) {
        second_t *s = calloc(1, sizeof *s);
        if (!s || fl_hdr_init(&s->h)) {
            free(s);
            return NULL;
        }
        ld->secs[k] = s;
    }
    return ld->secs[k];
}

static void push_sample(fl_load_t *ld, size_t k, second_t *s)
{
    if (!ld->o.on_sample || !s->scheduled)
        return;
    fl_sample_t smp = {
        .t_ns = ld->start_ns - ld->o.base_ns + (uint64_t)k * NS,
        .sent = s->scheduled,
        .ok = s->ok,
        .errors = s->errors,
        .p50_ms = fl_hdr_quantile(&s->h, 0.5) / 1e6,
        .p90_ms = fl_hdr_quantile(&s->h, 0.9) / 1e6,
        .p99_ms = fl_hdr_quantile(&s->h, 0.99) / 1e6,
        .max_ms = s->h.total ? s->h.max / 1e6 : 0,
    };
    ld->o.on_sample(ld->o.arg, &smp);
}

/* Turns the seconds whose requests have all ended (all, once the load is over) into samples,
 * in time order. */
static void flush_seconds(fl_load_t *ld, int all)
{
    while (ld->next_flush < ld->nsecs) {
        size_t k = ld->next_flush;
        second_t *s = ld->secs[k];
        if (!all) {
            /* every request of second k is due once the next due one is in a later second */
            int scheduled = ld->ndue >= ld->total || offset_of(ld, ld->ndue) >= (k + 1) * NS;
            if (!scheduled || (s && s->outstanding))
                return;
        }
        if (s) {
            push_sample(ld, k, s);
            fl_hdr_free(&s->h);
            free(s);
            ld->secs[k] = NULL;
        } else if (!all && ld->ndue < ld->total && offset_of(ld, ld->ndue) < (k + 1) * NS) {
            return;
        }
        ld->next_flush++;
        if (all && ld->next_flush >= ld->nsecs)
            break;
    }
}

/* ------------------------------------------------------------ ending requests ---- */

static void unlink_req(fl_load_t *ld, req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        ld->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        ld->tail = r->prev;
    r->prev = NULL;
    r->next = ld->free_slots;
    ld->free_slots = r;
}

static void finish_h(req_t *r, fl_load_kind_t kind, int status, const char *message,
                     const void *body, size_t len, const fl_http_header_t *headers, size_t nheaders)
{
    fl_load_t *ld = r->ld;
    uint64_t lat = uv_hrtime() - r->intended;
    if (kind == FL_LOAD_STATUS && is_ok(r->msg, status))
        kind = FL_LOAD_OK;
    if (kind == FL_LOAD_CANCELLED) {
        ld->cancelled++;
    } else {
        fl_hdr_record(&ld->hist, lat);
        second_t *s = second_of(ld, r->i, 0);
        if (s) {
            fl_hdr_record(&s->h, lat);
            if (s->outstanding)
                s->outstanding--;
        }
        if (kind == FL_LOAD_OK) {
            ld->ok++;
            if (s)
                s->ok++;
        } else {
            ld->errors++;
            ld->by_kind[kind]++;
            if (s)
                s->errors++;
            if (kind == FL_LOAD_STATUS && r->msg->proto == FL_LOAD_HTTP)
                ld->http_status[status >= 0 && status < 1000 ? status : 0]++;
            else if (kind == FL_LOAD_STATUS)
                ld->grpc_code[status >= 0 && status < 16 ? status : 16]++;
        }
    }
    if (kind == FL_LOAD_CANCELLED)
        ld->by_kind[kind]++;
    if (ld->o.on_result) {
        char name[32];
        fl_load_kind_name(kind, status, r->msg->proto, name, sizeof name);
        fl_load_result_t res = {
            .i = r->i,
            .kind = kind,
            .status = status,
            .error = kind == FL_LOAD_OK ? NULL : name,
            .message = message ? message : "",
            .body = body,
            .body_len = body ? len : 0,
            .headers = headers,
            .nheaders = nheaders,
            .latency_ns = lat,
        };
        ld->o.on_result(ld->o.arg, &res);
    }
    ld->inflight--;
    fl_load_msg_unref(r->msg);
    r->msg = NULL;
    if (r->conn)
        r->conn->req = NULL;
    r->conn = NULL;
    r->call = NULL;
    unlink_req(ld, r);
}

static void finish(req_t *r, fl_load_kind_t kind, int status, const char *message, const void *body,
                   size_t len)
{
    finish_h(r, kind, status, message, body, len, NULL, 0);
}

/* ------------------------------------------------------------ HTTP connections ---- */

static void idle_remove(conn_t *c)
{
    if (c->state != C_IDLE)
        return;
    if (c->iprev)
        c->iprev->inext = c->inext;
    else
        c->tg->idle = c->inext;
    if (c->inext)
        c->inext->iprev = c->iprev;
    c->iprev = c->inext = NULL;
}

static void free_load(fl_load_t *ld);

static void conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    fl_load_t *ld = c->ld;
    if (c->prev)
        c->prev->next = c->next;
    else
        ld->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    fl_load_msg_unref(c->wmsg);
    fl_buf_free(&c->in);
    free(c);
    if (--ld->open == 0)
        free_load(ld);
}

static void conn_close(conn_t *c)
{
    if (c->state == C_CLOSING)
        return;
    idle_remove(c);
    c->state = C_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* The request on c ended with a socket error or a broken answer: c is done for. */
static void conn_fail(conn_t *c, fl_load_kind_t kind, const char *message)
{
    if (c->req)
        finish(c->req, kind, -1, message, NULL, 0);
    conn_close(c);
}

static void reset_answer(conn_t *c)
{
    c->in.len = 0;
    c->have_head = 0;
}

/* The answer is complete: body[0..len). */
static void answered(conn_t *c, const char *body, size_t len)
{
    int again = c->keep_alive && c->state == C_BUSY;
    if (c->req && c->ld->o.want_headers) {
        fl_http_response_t resp; /* the head is still there: chunked decoding works after it */
        if (fl_http_parse_response(c->in.data, c->head_len, MAX_HEAD, &resp) > 0)
            finish_h(c->req, FL_LOAD_STATUS, c->status, NULL, body, len, resp.headers,
                     resp.nheaders);
        else
            finish(c->req, FL_LOAD_STATUS, c->status, NULL, body, len);
    } else if (c->req) {
        finish(c->req, FL_LOAD_STATUS, c->status, NULL, body, len);
    }
    if (!again) {
        conn_close(c);
        return;
    }
    reset_answer(c);
    c->state = C_IDLE;
    c->iprev = NULL;
    c->inext = c->tg->idle;
    if (c->inext)
        c->inext->iprev = c;
    c->tg->idle = c;
}

/* Reads the answer in c->in as far as it goes; completes it when it is all there. */
static void parse_answer(conn_t *c)
{
    while (!c->have_head) {
        fl_http_response_t resp;
        int n = fl_http_parse_response(c->in.data, c->in.len, MAX_HEAD, &resp);
        if (n == FL_EAGAIN)
            return;
        if (n < 0) {
            conn_fail(c, FL_LOAD_MALFORMED,
                      n == FL_ETOOBIG ? "response head too large" : "malformed response");
            return;
        }
        if (resp.status >= 100 && resp.status < 200) { /* interim: skip it */
            fl_buf_consume(&c->in, (size_t)n);
            continue;
        }
        c->have_head = 1;
        c->head_len = (size_t)n;
        c->status = resp.status;
        c->keep_alive = resp.keep_alive;
        c->chunked = resp.chunked;
        c->content_length = resp.content_length;
        c->no_body = (c->req && c->req->msg->head_only) || resp.status == 204 || resp.status == 304;
        c->dec_end = c->head_len;
        if (c->chunked)
            fl_http_chunked_init(&c->ch, MAX_BODY);
        if (!c->no_body && !c->chunked && c->content_length < 0)
            c->keep_alive = 0; /* the body runs until the server closes */
    }
    if (c->no_body) {
        answered(c, NULL, 0);
        return;
    }
    if (c->chunked) {
        size_t len = c->in.len - c->dec_end;
        int rc = fl_http_chunked_decode(&c->ch, c->in.data + c->dec_end, &len);
        c->dec_end += len;
        c->in.len = c->dec_end;
        if (rc == FL_EAGAIN)
            return;
        if (rc < 0) {
            conn_fail(c, FL_LOAD_MALFORMED, "malformed chunked body");
            return;
        }
        if (rc > 0)
            c->keep_alive = 0; /* bytes after the answer: a pipelining server; start over */
        answered(c, c->in.data + c->head_len, c->dec_end - c->head_len);
        return;
    }
    if (c->content_length >= 0) {
        if (c->in.len - c->head_len < (uint64_t)c->content_length)
            return;
        if (c->in.len - c->head_len > (uint64_t)c->content_length)
            c->keep_alive = 0;
        answered(c, c->in.data + c->head_len, (size_t)c->content_length);
        return;
    }
    if (c->in.len - c->head_len > MAX_BODY)
        conn_fail(c, FL_LOAD_MALFORMED, "response body too large");
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    conn_t *c = h->data;
    (void)hint;
    if (fl_buf_reserve(&c->in, READ_CHUNK)) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    (void)buf;
    if (c->state == C_CLOSING)
        return;
    if (nread == UV_ENOBUFS) {
        conn_fail(c, FL_LOAD_IO, "out of memory");
        return;
    }
    if (nread < 0) {
        if (c->state == C_IDLE || !c->req) {
            conn_close(c);
            return;
        }
        if (nread == UV_EOF && c->have_head && !c->no_body && !c->chunked &&
            c->content_length < 0) {
            answered(c, c->in.data + c->head_len, c->in.len - c->head_len);
            return;
        }
        conn_fail(c, kind_of_uv((int)nread), uv_strerror((int)nread));
        return;
    }
    c->in.len += (size_t)nread;
    c->in.data[c->in.len] = '\0';
    if (c->state == C_IDLE) { /* unasked-for bytes: the connection is out of step */
        conn_close(c);
        return;
    }
    if (c->req)
        parse_answer(c);
}

static void on_write(uv_write_t *w, int status)
{
    conn_t *c = w->data;
    fl_load_msg_unref(c->wmsg);
    c->wmsg = NULL;
    if (status < 0 && c->state != C_CLOSING)
        conn_fail(c, kind_of_uv(status), uv_strerror(status));
}

static void write_request(conn_t *c)
{
    fl_load_msg_t *m = c->req->msg;
    uv_buf_t bufs[3] = {
        uv_buf_init(m->head, (unsigned)m->head_len),
        uv_buf_init(c->tg->hostport, (unsigned)c->tg->hostport_len),
        uv_buf_init(m->tail, (unsigned)m->tail_len),
    };
    size_t total = m->head_len + c->tg->hostport_len + m->tail_len;
    int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, 3);
    if (n == UV_EAGAIN || n == UV_ENOSYS)
        n = 0;
    if (n < 0) {
        conn_fail(c, kind_of_uv(n), uv_strerror(n));
        return;
    }
    if ((size_t)n == total)
        return;
    /* the rest goes through uv_write, which keeps only the buffer list: hold the message */
    size_t skip = (size_t)n, first = 0;
    while (skip >= bufs[first].len) {
        skip -= bufs[first].len;
        first++;
    }
    bufs[first].base += skip;
    bufs[first].len -= skip;
    c->wmsg = m;
    m->refs++;
    c->wreq.data = c;
    int rc =
        uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs + first, 3 - (unsigned)first, on_write);
    if (rc) {
        fl_load_msg_unref(c->wmsg);
        c->wmsg = NULL;
        conn_fail(c, kind_of_uv(rc), uv_strerror(rc));
    }
}

static void on_connect(uv_connect_t *creq, int status)
{
    conn_t *c = creq->data;
    if (c->state == C_CLOSING)
        return;
    if (status < 0) {
        conn_fail(c, kind_of_uv(status), uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc) {
        conn_fail(c, kind_of_uv(rc), uv_strerror(rc));
        return;
    }
    c->state = C_BUSY;
    if (c->req)
        write_request(c);
    else
        conn_close(c);
}

static void http_send(fl_load_t *ld, req_t *r, target_t *tg)
{
    conn_t *c = tg->idle;
    if (c) {
        idle_remove(c);
        c->state = C_BUSY;
        c->req = r;
        r->conn = c;
        write_request(c);
        return;
    }
    c = calloc(1, sizeof *c);
    if (!c || uv_tcp_init(ld->loop, &c->tcp)) {
        free(c);
        finish(r, FL_LOAD_IO, -1, "out of memory", NULL, 0);
        return;
    }
    c->ld = ld;
    c->tg = tg;
    c->tcp.data = c;
    c->creq.data = c;
    c->state = C_CONNECTING;
    c->next = ld->conns;
    if (ld->conns)
        ld->conns->prev = c;
    ld->conns = c;
    ld->open++;
    c->req = r;
    r->conn = c;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&tg->sa, on_connect);
    if (rc)
        conn_fail(c, kind_of_uv(rc), uv_strerror(rc));
}

/* ------------------------------------------------------------ gRPC ---- */

static void grpc_done(void *arg, const fl_grpc_result_t *res)
{
    req_t *r = arg;
    r->call = NULL;
    fl_load_kind_t kind = FL_LOAD_STATUS;
    const char *m = res->message ? res->message : "";
    /* what our own client says about the transport, as the same kinds as HTTP's */
    if (res->code == FL_GRPC_UNAVAILABLE && strstr(m, "connection refused"))
        kind = FL_LOAD_REFUSED;
    else if (res->code == FL_GRPC_UNAVAILABLE && strstr(m, "connection reset"))
        kind = FL_LOAD_RESET;
    else if (res->code == FL_GRPC_DEADLINE_EXCEEDED && !strncmp(m, "deadline exceeded after", 23))
        kind = FL_LOAD_TIMEOUT;
    finish(r, kind, kind == FL_LOAD_STATUS ? res->code : -1, m, res->msg, res->msg_len);
}

static void grpc_send(fl_load_t *ld, req_t *r, target_t *tg)
{
    fl_load_msg_t *m = r->msg;
    fl_grpc_call_opts_t o = {
        .path = m->grpc,
        .req = m->body,
        .req_len = m->body_len,
        .timeout_ns = ld->o.timeout_ns,
        .meta = m->meta_len ? m->meta : NULL,
        .meta_len = m->meta_len,
    };
    if (fl_grpc_call_start(tg->be, &o, grpc_done, r, &r->call))
        finish(r, FL_LOAD_IO, -1, "cannot start the call", NULL, 0);
}

/* ------------------------------------------------------------ schedule ---- */

static target_t *pick_target(fl_load_t *ld)
{
    for (size_t k = 0; k < ld->ntargets; k++) {
        target_t *tg = &ld->targets[(ld->rr + k) % ld->ntargets];
        if (!tg->t.up || tg->t.up(tg->t.up_arg)) {
            ld->rr = (ld->rr + k + 1) % ld->ntargets;
            return tg;
        }
    }
    target_t *tg = &ld->targets[ld->rr];
    ld->rr = (ld->rr + 1) % ld->ntargets;
    return tg;
}

/* Sends request i; 0, or -1 when the request source stopped the load. */
static int send_one(fl_load_t *ld, uint64_t i)
{
    fl_load_msg_t *m = NULL;
    if (ld->o.next) {
        if (ld->o.next(ld->o.next_arg, i, &m) || !m) {
            fl_load_stop(ld);
            return -1;
        }
    } else {
        m = ld->msg;
        m->refs++;
    }
    if (!ld->running) { /* the source stopped the load and still answered */
        fl_load_msg_unref(m);
        return -1;
    }
    req_t *r = ld->free_slots;
    ld->free_slots = r->next;
    memset(r, 0, sizeof *r);
    r->ld = ld;
    r->i = i;
    r->msg = m;
    r->intended = ld->start_ns + offset_of(ld, i);
    r->deadline = uv_hrtime() + ld->o.timeout_ns;
    r->prev = ld->tail;
    if (ld->tail)
        ld->tail->next = r;
    else
        ld->head = r;
    ld->tail = r;
    ld->inflight++;
    ld->sent++;
    target_t *tg = pick_target(ld);
    if (m->proto == FL_LOAD_GRPC)
        grpc_send(ld, r, tg);
    else
        http_send(ld, r, tg);
    return 0;
}

static uint64_t due_by(const fl_load_t *ld, uint64_t now)
{
    if (now < ld->start_ns)
        return 0;
    double n = (double)(now - ld->start_ns) * ld->o.rate / 1e9 + 1;
    if (n >= (double)ld->total)
        return ld->total;
    return (uint64_t)n;
}

static void on_timer(uv_timer_t *t)
{
    pump(t->data);
}

static void on_check(uv_check_t *c)
{
    pump(c->data);
}

static void end_load(fl_load_t *ld)
{
    if (ld->done_sent)
        return;
    ld->done_sent = 1;
    ld->running = 0;
    if (!ld->end_ns)
        ld->end_ns = uv_hrtime();
    uv_check_stop(&ld->check);
    uv_timer_stop(&ld->timer);
    flush_seconds(ld, 1);
    /* the connections will not be used again */
    for (conn_t *c = ld->conns; c; c = c->next)
        conn_close(c);
    if (ld->o.on_done)
        ld->o.on_done(ld->o.arg);
}

static void pump(fl_load_t *ld)
{
    if (ld->stopped && !ld->done_sent) { /* fl_load_stop from outside a callback */
        end_load(ld);
        return;
    }
    if (!ld->running)
        return;
    uint64_t now = uv_hrtime();
    uint64_t due = due_by(ld, now);
    while (ld->ndue < due) { /* one step per second of the schedule, not per request */
        uint64_t k = offset_of(ld, ld->ndue) / NS;
        /* the first request of a later second, as second_of counts (floating point aside) */
        uint64_t end = (uint64_t)ceil((double)(k + 1) * ld->o.rate);
        while (end > ld->ndue + 1 && offset_of(ld, end - 1) / NS > k)
            end--;
        while (offset_of(ld, end) / NS == k)
            end++;
        uint64_t upto = end < due ? end : due;
        second_t *s = second_of(ld, ld->ndue, 1);
        if (s) {
            s->scheduled += upto - ld->ndue;
            s->outstanding += upto - ld->ndue;
        }
        ld->ndue = upto;
    }
    while (ld->nsent < ld->ndue && ld->inflight < ld->o.concurrency) {
        if (send_one(ld, ld->nsent++))
            return;
    }
    if (ld->o.proto == FL_LOAD_HTTP) {
        while (ld->head && ld->head->deadline <= now) {
            req_t *r = ld->head;
            conn_t *c = r->conn;
            finish(r, FL_LOAD_TIMEOUT, -1, "no answer in time", NULL, 0);
            if (c)
                conn_close(c);
        }
        while (ld->nsent < ld->ndue && ld->inflight < ld->o.concurrency)
            if (send_one(ld, ld->nsent++))
                return;
    }
    flush_seconds(ld, 0);
    if (ld->ndue >= ld->total && ld->nsent >= ld->ndue && !ld->inflight) {
        ld->end_ns = ld->start_ns + (ld->o.duration_ns ? ld->o.duration_ns : now - ld->start_ns);
        end_load(ld);
        return;
    }
    uint64_t next = UINT64_MAX;
    /* while requests queue for a slot, an answer is what lets the next one go (and wakes the
     * loop): a timer for the schedule would only spin it */
    if (ld->ndue < ld->total && ld->nsent == ld->ndue)
        next = ld->start_ns + offset_of(ld, ld->ndue);
    if (ld->o.proto == FL_LOAD_HTTP && ld->head && ld->head->deadline < next)
        next = ld->head->deadline;
    if (next != UINT64_MAX) {
        uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
        uv_timer_start(&ld->timer, on_timer, ms, 0);
    }
}

/* ------------------------------------------------------------ lifecycle ---- */

static void free_load(fl_load_t *ld)
{
    for (size_t k = 0; k < ld->nsecs; k++)
        if (ld->secs[k]) {
            fl_hdr_free(&ld->secs[k]->h);
            free(ld->secs[k]);
        }
    free(ld->secs);
    fl_hdr_free(&ld->hist);
    fl_load_msg_unref(ld->msg);
    free(ld->slots);
    free(ld->targets);
    void (*cb)(void *) = ld->closed_cb;
    void *arg = ld->closed_arg;
    free(ld);
    if (cb)
        cb(arg);
}

/* The timer or the check closed (only ever at fl_load_close). */
static void handle_closed(uv_handle_t *h)
{
    fl_load_t *ld = h->data;
    if (--ld->open == 0)
        free_load(ld);
}

static void channel_closed(void *arg)
{
    fl_load_t *ld = arg;
    if (--ld->open == 0)
        free_load(ld);
}

static int resolve(target_t *tg)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&tg->sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&tg->sa;
    if (tg->t.port <= 0 || tg->t.port > 65535)
        return FL_EINVAL;
    if (uv_ip4_addr(tg->t.host, tg->t.port, v4) == 0)
        snprintf(tg->hostport, sizeof tg->hostport, "%s:%d", tg->t.host, tg->t.port);
    else if (uv_ip6_addr(tg->t.host, tg->t.port, v6) == 0)
        snprintf(tg->hostport, sizeof tg->hostport, "[%s]:%d", tg->t.host, tg->t.port);
    else
        return FL_EINVAL;
    tg->hostport_len = strlen(tg->hostport);
    return 0;
}

int fl_load_start(uv_loop_t *loop, const fl_load_opts_t *opts, fl_load_t **out)
{
    if (!opts->ntargets || !(opts->rate > 0) || !opts->concurrency || !opts->timeout_ns ||
        (!opts->next && !opts->msg))
        return FL_EINVAL;
    fl_load_t *ld = calloc(1, sizeof *ld);
    if (!ld)
        return FL_ENOMEM;
    ld->loop = loop;
    ld->o = *opts;
    int rc = FL_ENOMEM;
    ld->targets = calloc(opts->ntargets, sizeof *ld->targets);
    ld->slots = calloc(opts->concurrency, sizeof *ld->slots);
    if (!ld->targets || !ld->slots || fl_hdr_init(&ld->hist))
        goto fail;
    ld->ntargets = opts->ntargets;
    for (size_t i = 0; i < ld->ntargets; i++) {
        ld->targets[i].t = opts->targets[i];
        rc = resolve(&ld->targets[i]);
        if (rc)
            goto fail;
    }
    if (opts->proto == FL_LOAD_GRPC) {
        rc = fl_grpc_channel_new(loop, NULL, &ld->ch);
        if (rc)
            goto fail;
        ld->open++;
        for (size_t i = 0; i < ld->ntargets; i++) {
            char addr[96];
            snprintf(addr, sizeof addr, "%s", ld->targets[i].hostport);
            rc = fl_grpc_channel_add(ld->ch, addr, &ld->targets[i].be);
            if (rc) {
                fl_grpc_channel_close(ld->ch, NULL, NULL);
                ld->ch = NULL;
                goto fail;
            }
        }
    }
    for (unsigned i = 0; i < opts->concurrency; i++) {
        ld->slots[i].next = ld->free_slots;
        ld->free_slots = &ld->slots[i];
    }
    if (opts->msg) {
        ld->msg = opts->msg;
        ld->msg->refs++;
    }
    ld->o.targets = NULL;
    ld->total = UINT64_MAX;
    if (opts->count)
        ld->total = opts->count;
    else if (opts->duration_ns) {
        double n = (double)opts->duration_ns * opts->rate / 1e9;
        ld->total = (uint64_t)n + ((double)(uint64_t)n < n);
        if (!ld->total)
            ld->total = 1;
    }
    uv_timer_init(loop, &ld->timer);
    uv_check_init(loop, &ld->check);
    ld->timer.data = ld->check.data = ld;
    ld->open += 2;
    ld->start_ns = uv_hrtime();
    ld->running = 1;
    uv_check_start(&ld->check, on_check);
    uv_timer_start(&ld->timer, on_timer, 0, 0);
    *out = ld;
    return 0;
fail:
    fl_hdr_free(&ld->hist);
    free(ld->targets);
    free(ld->slots);
    free(ld);
    return rc;
}

void fl_load_stop(fl_load_t *ld)
{
    if (ld->stopped || ld->done_sent)
        return;
    ld->stopped = 1;
    ld->running = 0;
    ld->end_ns = uv_hrtime();
    uint64_t planned = ld->total == UINT64_MAX ? ld->ndue : ld->total;
    ld->unsent = planned - ld->nsent;
    while (ld->head) {
        req_t *r = ld->head;
        conn_t *c = r->conn;
        fl_grpc_call_t *call = r->call;
        if (call)
            fl_grpc_call_cancel(call);
        finish(r, FL_LOAD_CANCELLED, -1, "the load stopped", NULL, 0);
        if (c)
            conn_close(c);
    }
    /* on_done from a loop callback: the timer, at once */
    uv_check_stop(&ld->check);
    uv_timer_start(&ld->timer, on_timer, 0, 0);
}

void fl_load_stats(fl_load_t *ld, fl_load_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->sent = ld->sent;
    out->ok = ld->ok;
    out->errors = ld->errors;
    out->inflight = ld->inflight;
    out->queued = ld->running ? ld->ndue - ld->nsent : 0;
    out->cancelled = ld->cancelled;
    out->unsent = ld->unsent;
    memcpy(out->by_kind, ld->by_kind, sizeof out->by_kind);
    out->http_status = ld->http_status;
    out->grpc_code = ld->grpc_code;
    out->latency = &ld->hist;
    uint64_t end = ld->end_ns ? ld->end_ns : uv_hrtime();
    if (ld->o.duration_ns && end > ld->start_ns + ld->o.duration_ns)
        end = ld->start_ns + ld->o.duration_ns;
    out->elapsed = (double)(end - ld->start_ns) / 1e9;
    out->rate = out->elapsed > 0 ? (double)ld->sent / out->elapsed : 0;
    out->running = !ld->done_sent && !ld->stopped;
    out->stopped = ld->stopped;
}

void fl_load_close(fl_load_t *ld, void (*cb)(void *arg), void *arg)
{
    fl_load_stop(ld);
    if (!ld->done_sent) { /* end it now (samples flushed), telling nobody */
        ld->o.on_done = NULL;
        end_load(ld);
    }
    ld->closing = 1;
    ld->closed_cb = cb;
    ld->closed_arg = arg;
    for (conn_t *c = ld->conns; c; c = c->next)
        conn_close(c);
    if (ld->ch) {
        fl_grpc_channel_close(ld->ch, channel_closed, ld);
        ld->ch = NULL;
    }
    uv_close((uv_handle_t *)&ld->timer, handle_closed);
    uv_close((uv_handle_t *)&ld->check, handle_closed);
}
