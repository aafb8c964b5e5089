/* gRPC client on libuv and nghttp2 (grpc_client.h). A channel owns backends; a backend owns
 * its connections (the current one, plus older ones draining after a GOAWAY) and the calls
 * waiting for the current one to connect; a connection owns the calls on its streams. Every
 * call has a timer (its deadline, or a failure to report from the loop), closed before the
 * call is freed; the channel counts open handles so that closing it ends when all are. */
#include "services/runtime/grpc_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/dur.h"
#include "lib/err.h"
#include "lib/hostport.h"
#include "services/runtime/grpc_frame.h"
#include "services/runtime/grpc_timeout.h"
#include "services/runtime/h2io.h"

#define RBUF_SIZE 65536
#define STREAM_WINDOW (1 << 20)
#define CONNECTION_WINDOW (16 << 20)
#define MAX_TRANSPARENT_RETRIES 2
#define MAX_ERROR_BODY 4096 /* bytes kept of a non-gRPC answer's body */
#define MAX_META 65536      /* bytes kept of an answer's metadata */
#define USER_AGENT "faultline-grpc-c/" FL_VERSION

typedef struct cconn cconn_t;

struct fl_grpc_channel {
    uv_loop_t *loop;
    size_t max_recv, max_send;
    uint64_t connect_timeout_ms;
    fl_grpc_backend_t *backends; /* in use */
    fl_grpc_backend_t *removed;  /* removed, waiting for their connections to end */
    size_t nbackends;
    size_t handles; /* open connection and call handles */
    int closing;
    void (*close_cb)(void *arg);
    void *close_arg;
    char rbuf[RBUF_SIZE];
};

struct fl_grpc_backend {
    fl_grpc_channel_t *ch;
    fl_grpc_backend_t *prev, *next;
    char addr[96];
    struct sockaddr_storage sa;
    cconn_t *conn;         /* the connection new calls go to (connecting or ready), or NULL */
    cconn_t *conns;        /* every open connection, the current one included */
    fl_grpc_call_t *queue; /* calls waiting for conn to connect */
    size_t inflight;
    size_t calls; /* calls not yet freed (their timers close after they end) */
    uint64_t nconns;
    int failed; /* the last connection attempt failed */
    int removed;
};

enum { CONN_CONNECTING, CONN_READY, CONN_DRAINING };

struct cconn {
    fl_h2io_t io;
    fl_grpc_backend_t *be;
    cconn_t *prev, *next;
    fl_grpc_call_t *calls;
    uv_connect_t creq;
    uv_timer_t ctimer;
    int state;
    int handles; /* io.tcp and ctimer */
    int closing;
};

enum { AT_NONE, AT_QUEUE, AT_CONN };

struct fl_grpc_call {
    fl_grpc_backend_t *be;
    cconn_t *conn;
    fl_grpc_call_t *prev, *next;
    int at;
    int32_t stream_id;
    char *path;
    fl_buf_t meta_out;
    fl_buf_t req; /* prefix + message */
    size_t req_off;
    uint64_t start_ns, deadline_ns; /* uv_hrtime(); deadline 0: none */
    uint64_t timeout_ns;
    uv_timer_t timer;
    fl_grpc_done_t done;
    void *arg;
    int ended;
    int retries;
    /* an end to report from the timer */
    int pending;
    int pending_code;
    char pending_msg[200];
    /* the answer */
    int http_status;
    int headers_seen;
    int committed; /* response headers came in a HEADERS frame of their own (gRFC A6) */
    int ct_ok;
    int grpc_status; /* -1: none */
    fl_buf_t grpc_message;
    fl_buf_t meta_in;
    fl_buf_t body;
    int prefix_checked;
};

static fl_grpc_channel_t *chan(const fl_grpc_call_t *c)
{
    return c->be->ch;
}

/* ------------------------------------------------------------ channel bookkeeping ---- */

static void free_backend(fl_grpc_backend_t *be)
{
    free(be);
}

static void maybe_channel_closed(fl_grpc_channel_t *ch)
{
    if (!ch->closing || ch->handles)
        return;
    while (ch->backends) {
        fl_grpc_backend_t *be = ch->backends;
        ch->backends = be->next;
        free_backend(be);
    }
    while (ch->removed) {
        fl_grpc_backend_t *be = ch->removed;
        ch->removed = be->next;
        free_backend(be);
    }
    void (*cb)(void *) = ch->close_cb;
    void *arg = ch->close_arg;
    free(ch);
    if (cb)
        cb(arg);
}

/* A removed backend goes once nothing of it is left. */
static void maybe_free_removed(fl_grpc_backend_t *be)
{
    fl_grpc_channel_t *ch = be->ch;
    if (!be->removed || be->conns || be->queue || be->calls || ch->closing)
        return;
    if (be->prev)
        be->prev->next = be->next;
    else
        ch->removed = be->next;
    if (be->next)
        be->next->prev = be->prev;
    free_backend(be);
}

/* ------------------------------------------------------------ calls ---- */

static void link_call(fl_grpc_call_t **head, fl_grpc_call_t *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static void unlink_call(fl_grpc_call_t *c)
{
    fl_grpc_call_t **head = c->at == AT_QUEUE  ? &c->be->queue
                            : c->at == AT_CONN ? &c->conn->calls
                                               : NULL;
    if (!head)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->at = AT_NONE;
}

static void on_call_timer_closed(uv_handle_t *h)
{
    fl_grpc_call_t *c = h->data;
    fl_grpc_channel_t *ch = chan(c);
    fl_grpc_backend_t *be = c->be;
    free(c->path);
    fl_buf_free(&c->meta_out);
    fl_buf_free(&c->req);
    fl_buf_free(&c->grpc_message);
    fl_buf_free(&c->meta_in);
    fl_buf_free(&c->body);
    free(c);
    ch->handles--;
    be->calls--;
    maybe_free_removed(be);
    maybe_channel_closed(ch);
}

/* Takes a call off its stream: no more callbacks for it; RST_STREAM CANCEL when the
 * stream may still be open (the deadline, a cancel, an answer over the limit). */
static void detach_stream(fl_grpc_call_t *c, int rst)
{
    if (c->at != AT_CONN)
        return;
    nghttp2_session *session = c->conn->io.session;
    if (c->stream_id > 0 && session && !c->conn->io.closing) {
        nghttp2_session_set_stream_user_data(session, c->stream_id, NULL);
        if (rst) {
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
            fl_h2io_flush(&c->conn->io);
        }
    }
    unlink_call(c);
}

/* Ends a call: the callback (unless cancelled), then the timer closes and frees it. */
static void end_call(fl_grpc_call_t *c, int code, const char *message, const uint8_t *msg,
                     size_t msg_len, int notify)
{
    if (c->ended)
        return;
    c->ended = 1;
    uv_timer_stop(&c->timer);
    c->be->inflight--;
    if (notify && c->done) {
        fl_grpc_result_t res = {.code = code,
                                .message = message ? message : "",
                                .msg = code == FL_GRPC_OK ? msg : NULL,
                                .msg_len = code == FL_GRPC_OK ? msg_len : 0,
                                .meta = c->meta_in.data ? c->meta_in.data : "",
                                .meta_len = c->meta_in.len,
                                .transparent_retries = c->retries,
                                .committed = c->committed,
                                .elapsed_ns = uv_hrtime() - c->start_ns};
        c->done(c->arg, &res);
    }
    uv_close((uv_handle_t *)&c->timer, on_call_timer_closed);
}

static void fail_call(fl_grpc_call_t *c, int rst, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail_call(fl_grpc_call_t *c, int rst, int code, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    detach_stream(c, rst);
    unlink_call(c);
    end_call(c, code, message, NULL, 0, 1);
}

static void on_call_timer(uv_timer_t *t)
{
    fl_grpc_call_t *c = t->data;
    if (c->pending) {
        fail_call(c, 0, c->pending_code, "%s", c->pending_msg);
        return;
    }
    char dur[32];
    fl_dur_format(c->timeout_ns, dur, sizeof dur);
    fail_call(c, 1, FL_GRPC_DEADLINE_EXCEEDED, "deadline exceeded after %s%s", dur,
              c->at == AT_QUEUE ? " while connecting" : "");
}

/* Reports an end from the loop, not from the caller's stack. */
static void fail_later(fl_grpc_call_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_later(fl_grpc_call_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->pending_msg, sizeof c->pending_msg, fmt, ap);
    va_end(ap);
    c->pending = 1;
    c->pending_code = code;
    unlink_call(c);
    uv_timer_start(&c->timer, on_call_timer, 0, 0);
}

static ssize_t read_request(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *flags, nghttp2_data_source *source, void *user)
{
    fl_grpc_call_t *c = source->ptr;
    size_t left = c->req.len - c->req_off;
    size_t n = left < length ? left : length;
    memcpy(buf, c->req.data + c->req_off, n);
    c->req_off += n;
    if (c->req_off == c->req.len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v, nlen, vlen, flags)                                                                \
    (nghttp2_nv)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), (nlen), (vlen), (flags)                                    \
    }
#define NV_STATIC(n, v)                                                                            \
    NV(n, v, sizeof(n) - 1, sizeof(v) - 1,                                                         \
       NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)
#define NV_STR(n, v) NV(n, v, sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME)

static size_t count_meta(const fl_buf_t *b)
{
    size_t n = 0;
    for (size_t i = 0; b->data && i < b->len; i++)
        n += b->data[i] == '\0';
    return n / 2;
}

static void reset_answer(fl_grpc_call_t *c)
{
    c->http_status = 0;
    c->headers_seen = 0;
    c->committed = 0;
    c->ct_ok = 0;
    c->grpc_status = -1;
    c->prefix_checked = 0;
    c->stream_id = 0;
    c->req_off = 0;
    fl_buf_reset(&c->grpc_message);
    fl_buf_reset(&c->meta_in);
    fl_buf_reset(&c->body);
}

/* Opens the call's stream on a ready connection. */
static void submit_call(cconn_t *conn, fl_grpc_call_t *c)
{
    char timeout[FL_GRPC_TIMEOUT_MAX];
    size_t extra = count_meta(&c->meta_out);
    nghttp2_nv stack[16], *nva = stack;
    if (extra + 9 > sizeof stack / sizeof stack[0]) {
        nva = malloc((extra + 9) * sizeof *nva);
        if (!nva) {
            fail_later(c, FL_GRPC_RESOURCE_EXHAUSTED, "client out of memory");
            return;
        }
    }
    size_t n = 0;
    nva[n++] = NV_STATIC(":method", "POST");
    nva[n++] = NV_STATIC(":scheme", "http");
    nva[n++] = NV_STR(":path", c->path);
    nva[n++] = NV_STR(":authority", c->be->addr);
    nva[n++] = NV_STATIC("content-type", "application/grpc");
    nva[n++] = NV_STATIC("te", "trailers");
    nva[n++] = NV_STATIC("user-agent", USER_AGENT);
    if (c->deadline_ns) {
        uint64_t now = uv_hrtime();
        fl_grpc_timeout_format(c->deadline_ns > now ? c->deadline_ns - now : 0, timeout);
        nva[n++] = NV_STR("grpc-timeout", timeout);
    }
    for (size_t off = 0; c->meta_out.data && off < c->meta_out.len;) {
        const char *name = c->meta_out.data + off;
        size_t nlen = strlen(name);
        const char *value = name + nlen + 1;
        size_t vlen = strlen(value);
        nva[n++] = NV(name, value, nlen, vlen, NGHTTP2_NV_FLAG_NONE);
        off += nlen + vlen + 2;
    }
    nghttp2_data_provider prd = {.source.ptr = c, .read_callback = read_request};
    reset_answer(c);
    int32_t id = nghttp2_submit_request(conn->io.session, NULL, nva, n, &prd, c);
    if (nva != stack)
        free(nva);
    if (id < 0) {
        fail_later(c, FL_GRPC_INTERNAL, "cannot start a stream: %s", nghttp2_strerror(id));
        return;
    }
    c->stream_id = id;
    c->conn = conn;
    c->at = AT_CONN;
    link_call(&conn->calls, c);
    fl_h2io_flush(&conn->io);
}

static cconn_t *open_conn(fl_grpc_backend_t *be);

/* Puts a call on its backend: on the ready connection at once, else in the queue of the one
 * connecting (opening it if there is none). */
static void dispatch(fl_grpc_call_t *c)
{
    fl_grpc_backend_t *be = c->be;
    if (!be->conn && !open_conn(be)) {
        fail_later(c, FL_GRPC_UNAVAILABLE, "cannot open a connection to %s", be->addr);
        return;
    }
    if (be->conn->state == CONN_READY) {
        submit_call(be->conn, c);
    } else {
        c->at = AT_QUEUE;
        link_call(&be->queue, c);
    }
}

/* A call the server refused without processing it (GOAWAY, REFUSED_STREAM): tried again on
 * a fresh stream, as gRPC's transparent retry does, a bounded number of times. */
static int retry_transparently(fl_grpc_call_t *c)
{
    if (c->retries >= MAX_TRANSPARENT_RETRIES || c->headers_seen || c->be->removed ||
        chan(c)->closing)
        return 0;
    c->retries++;
    detach_stream(c, 0);
    dispatch(c);
    return 1;
}

int fl_grpc_call_start(fl_grpc_backend_t *be, const fl_grpc_call_opts_t *o, fl_grpc_done_t done,
                       void *arg, fl_grpc_call_t **out)
{
    fl_grpc_channel_t *ch = be->ch;
    if (!o->path || o->path[0] != '/' || be->removed || ch->closing)
        return FL_EINVAL;
    fl_grpc_call_t *c = calloc(1, sizeof *c);
    if (!c)
        return FL_ENOMEM;
    c->be = be;
    c->done = done;
    c->arg = arg;
    c->grpc_status = -1;
    c->path = strdup(o->path);
    int too_big = o->req_len > ch->max_send;
    if (!c->path || (o->meta_len && fl_buf_append(&c->meta_out, o->meta, o->meta_len)) ||
        (!too_big && fl_buf_reserve(&c->req, o->req_len + FL_GRPC_FRAME_HEADER))) {
        free(c->path);
        fl_buf_free(&c->meta_out);
        fl_buf_free(&c->req);
        free(c);
        return FL_ENOMEM;
    }
    if (!too_big) {
        fl_grpc_frame_header((uint8_t *)c->req.data, 0, (uint32_t)o->req_len);
        memcpy(c->req.data + FL_GRPC_FRAME_HEADER, o->req, o->req_len);
        c->req.len = o->req_len + FL_GRPC_FRAME_HEADER;
    }
    uv_timer_init(ch->loop, &c->timer);
    c->timer.data = c;
    ch->handles++;
    be->calls++;
    be->inflight++;
    c->start_ns = uv_hrtime();
    c->timeout_ns = o->timeout_ns;
    if (o->timeout_ns) {
        /* the loop's clock lags and counts whole ms: one more, and never early */
        uint64_t ms = o->timeout_ns / 1000000 + (o->timeout_ns % 1000000 != 0) + 1;
        uv_update_time(ch->loop);
        c->deadline_ns = c->start_ns + o->timeout_ns;
        uv_timer_start(&c->timer, on_call_timer, ms, 0);
    }
    if (out)
        *out = c;
    if (too_big)
        fail_later(c, FL_GRPC_RESOURCE_EXHAUSTED,
                   "grpc: trying to send message larger than max (%zu vs. %zu)", o->req_len,
                   ch->max_send);
    else
        dispatch(c);
    return 0;
}

int fl_grpc_call_start_pb(fl_grpc_backend_t *be, const fl_grpc_call_opts_t *o,
                          const ProtobufCMessage *req, fl_grpc_done_t done, void *arg,
                          fl_grpc_call_t **out)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t stackbuf[512], *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (!buf)
        return FL_ENOMEM;
    protobuf_c_message_pack(req, buf);
    fl_grpc_call_opts_t copy = *o;
    copy.req = buf;
    copy.req_len = len;
    int rc = fl_grpc_call_start(be, &copy, done, arg, out);
    if (buf != stackbuf)
        free(buf);
    return rc;
}

void fl_grpc_call_cancel(fl_grpc_call_t *c)
{
    if (c->ended)
        return;
    detach_stream(c, 1);
    unlink_call(c);
    end_call(c, FL_GRPC_CANCELLED, "cancelled", NULL, 0, 0);
}

const char *fl_grpc_result_meta(const fl_grpc_result_t *res, const char *name)
{
    for (size_t off = 0; off < res->meta_len;) {
        const char *n = res->meta + off;
        const char *v = n + strlen(n) + 1;
        if (strcmp(n, name) == 0)
            return v;
        off = (size_t)(v + strlen(v) + 1 - res->meta);
    }
    return NULL;
}

/* ------------------------------------------------------------ answers ---- */

static fl_grpc_call_t *call_of(nghttp2_session *session, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(session, stream_id);
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    fl_grpc_call_t *c = call_of(session, frame->hd.stream_id);
    if (!c)
        return 0;
    const char *n = (const char *)name, *v = (const char *)value;
    c->headers_seen = 1;
    if (namelen == 7 && memcmp(n, ":status", 7) == 0) {
        c->http_status = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            c->http_status = c->http_status * 10 + (v[i] - '0');
    } else if (namelen == 12 && memcmp(n, "content-type", 12) == 0) {
        c->ct_ok = valuelen >= 16 && memcmp(v, "application/grpc", 16) == 0 &&
                   (valuelen == 16 || v[16] == '+' || v[16] == ';');
    } else if (namelen == 11 && memcmp(n, "grpc-status", 11) == 0) {
        c->grpc_status = fl_grpc_status_parse(v, valuelen);
        return 0;
    } else if (namelen == 12 && memcmp(n, "grpc-message", 12) == 0) {
        fl_buf_reset(&c->grpc_message);
        fl_buf_append(&c->grpc_message, v, valuelen > 1024 ? 1024 : valuelen);
        return 0;
    }
    if (n[0] != ':' && c->meta_in.len + namelen + valuelen + 2 <= MAX_META) {
        fl_buf_append(&c->meta_in, n, namelen);
        fl_buf_append(&c->meta_in, "", 1);
        fl_buf_append(&c->meta_in, v, valuelen);
        fl_buf_append(&c->meta_in, "", 1);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user)
{
    fl_grpc_call_t *c = call_of(session, stream_id);
    if (!c)
        return 0;
    fl_grpc_channel_t *ch = chan(c);
    if (c->http_status != 200 || !c->ct_ok) { /* not gRPC: a little is kept, for the error */
        if (c->body.len < MAX_ERROR_BODY)
            fl_buf_append(&c->body, data, len < MAX_ERROR_BODY ? len : MAX_ERROR_BODY);
        return 0;
    }
    if (c->body.len + len > ch->max_recv + 2 * FL_GRPC_FRAME_HEADER) {
        fail_call(c, 1, FL_GRPC_UNIMPLEMENTED,
                  "grpc: more than one answer message for a unary "
                  "call");
        return 0;
    }
    if (fl_buf_append(&c->body, data, len)) {
        fail_call(c, 1, FL_GRPC_RESOURCE_EXHAUSTED, "client out of memory");
        return 0;
    }
    if (!c->prefix_checked) {
        fl_grpc_frame_t f;
        int rc = fl_grpc_frame_parse_header((const uint8_t *)c->body.data, c->body.len,
                                            ch->max_recv, &f);
        if (rc != FL_EAGAIN)
            c->prefix_checked = 1;
        if (rc == FL_ETOOBIG)
            fail_call(c, 1, FL_GRPC_RESOURCE_EXHAUSTED,
                      "grpc: received message larger than max (%u vs. %zu)", f.len, ch->max_recv);
        else if (rc == FL_EMALFORMED)
            fail_call(c, 1, FL_GRPC_INTERNAL, "grpc: invalid compressed flag %u",
                      (unsigned)(uint8_t)c->body.data[0]);
    }
    return 0;
}

/* The stream ended cleanly: the call's status from what came back. */
static void conclude(fl_grpc_call_t *c)
{
    fl_grpc_channel_t *ch = chan(c);
    char message[1100];
    if (c->grpc_status >= 0) {
        fl_grpc_message_decode(c->grpc_message.data ? c->grpc_message.data : "",
                               c->grpc_message.len, message, sizeof message);
        if (c->grpc_status != FL_GRPC_OK) {
            fail_call(c, 0, c->grpc_status, "%s", message);
            return;
        }
    } else if (!c->headers_seen) {
        fail_call(c, 0, FL_GRPC_INTERNAL, "stream closed without an answer");
        return;
    } else if (c->http_status != 200) {
        fail_call(c, 0, fl_grpc_code_from_http(c->http_status),
                  "unexpected HTTP status code received from server: %d", c->http_status);
        return;
    } else if (!c->ct_ok) {
        const char *ct = NULL;
        fl_grpc_result_t r = {.meta = c->meta_in.data ? c->meta_in.data : "",
                              .meta_len = c->meta_in.len};
        ct = fl_grpc_result_meta(&r, "content-type");
        fail_call(c, 0, FL_GRPC_UNKNOWN, "unexpected content-type '%.100s'", ct ? ct : "");
        return;
    } else {
        fail_call(c, 0, FL_GRPC_INTERNAL, "server closed the stream without sending trailers");
        return;
    }
    fl_grpc_frame_t f;
    long n = fl_grpc_frame_parse((const uint8_t *)c->body.data, c->body.len, ch->max_recv, &f);
    if (n == FL_EAGAIN && c->body.len == 0)
        fail_call(c, 0, FL_GRPC_UNIMPLEMENTED, "grpc: no answer message for a unary call");
    else if (n == FL_EAGAIN)
        fail_call(c, 0, FL_GRPC_INTERNAL, "grpc: answer message truncated");
    else if (n < 0)
        fail_call(c, 0, FL_GRPC_INTERNAL, "grpc: bad answer framing");
    else if ((size_t)n != c->body.len)
        fail_call(c, 0, FL_GRPC_UNIMPLEMENTED,
                  "grpc: more than one answer message for a unary call");
    else if (f.compressed)
        fail_call(c, 0, FL_GRPC_INTERNAL, "grpc: compressed answer without grpc-encoding");
    else {
        detach_stream(c, 0);
        end_call(c, FL_GRPC_OK, "", f.msg, f.len, 1);
    }
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user)
{
    fl_grpc_call_t *c = call_of(session, stream_id);
    if (!c)
        return 0;
    if (error_code == NGHTTP2_NO_ERROR) {
        conclude(c);
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
        if (!retry_transparently(c))
            fail_call(c, 0, FL_GRPC_UNAVAILABLE, "stream refused by %s (REFUSED_STREAM)",
                      c->be->addr);
    } else {
        fail_call(c, 0, fl_grpc_code_from_h2(error_code), "stream reset by %s: %s", c->be->addr,
                  nghttp2_http2_strerror(error_code));
    }
    return 0;
}

/* A request HEADERS that nghttp2 could not send (the server's GOAWAY came first): the call
 * never reached the server. */
static int on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame, int err,
                             void *user)
{
    cconn_t *conn = user;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    for (fl_grpc_call_t *c = conn->calls; c; c = c->next) {
        if (c->stream_id != frame->hd.stream_id)
            continue;
        if (!retry_transparently(c))
            fail_call(c, 0, FL_GRPC_UNAVAILABLE, "cannot send the request to %s: %s", c->be->addr,
                      nghttp2_strerror(err));
        break;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    cconn_t *conn = user;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_RESPONSE &&
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        /* response headers that are not trailers-only: the call is committed (gRFC A6) */
        fl_grpc_call_t *c = call_of(session, frame->hd.stream_id);
        if (c)
            c->committed = 1;
        return 0;
    }
    if (frame->hd.type != NGHTTP2_GOAWAY)
        return 0;
    /* no new calls here; the ones past last_stream_id come back through on_stream_close */
    conn->state = CONN_DRAINING;
    if (conn->be->conn == conn)
        conn->be->conn = NULL;
    return 0;
}

/* ------------------------------------------------------------ connections ---- */

static void conn_handle_closed(cconn_t *conn)
{
    fl_grpc_backend_t *be = conn->be;
    fl_grpc_channel_t *ch = be->ch;
    if (--conn->handles)
        return;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        be->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    free(conn);
    ch->handles--;
    maybe_free_removed(be);
    maybe_channel_closed(ch);
}

static void conn_on_closed(fl_h2io_t *io)
{
    conn_handle_closed(container_of(io, cconn_t, io));
}

static void on_ctimer_closed(uv_handle_t *h)
{
    conn_handle_closed(h->data);
}

/* Closes a connection: its calls end with code (UNAVAILABLE: the connection is lost). */
static void conn_close(cconn_t *conn, int code, const char *why)
{
    if (conn->closing)
        return;
    conn->closing = 1;
    fl_grpc_backend_t *be = conn->be;
    if (be->conn == conn) {
        be->conn = NULL;
        while (be->queue) { /* only the connecting connection has a queue */
            fl_grpc_call_t *c = be->queue;
            fail_call(c, 0, code, "%s", why);
        }
    }
    while (conn->calls) {
        fl_grpc_call_t *c = conn->calls;
        fail_call(c, 0, code, "%s", why);
    }
    uv_close((uv_handle_t *)&conn->ctimer, on_ctimer_closed);
    fl_h2io_close(&conn->io);
}

static void conn_on_error(fl_h2io_t *io, int err)
{
    cconn_t *conn = container_of(io, cconn_t, io);
    char why[200];
    if (err == UV_EOF)
        snprintf(why, sizeof why, "connection to %s closed before the answer", conn->be->addr);
    else if (err <= -500 && err > -1000) /* nghttp2's error range */
        snprintf(why, sizeof why, "HTTP/2 error with %s: %s", conn->be->addr,
                 nghttp2_strerror(err));
    else
        snprintf(why, sizeof why, "connection to %s lost: %s", conn->be->addr, fl_strerror(err));
    conn_close(conn, FL_GRPC_UNAVAILABLE, why);
}

static void conn_on_done(fl_h2io_t *io)
{
    cconn_t *conn = container_of(io, cconn_t, io);
    conn_close(conn, FL_GRPC_UNAVAILABLE, "connection closed");
}

static const fl_h2io_hooks_t conn_hooks = {conn_on_error, conn_on_done, conn_on_closed};

static nghttp2_session_callbacks *client_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs))
        return NULL;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    return cbs;
}

static void on_connect(uv_connect_t *req, int status)
{
    cconn_t *conn = container_of(req, cconn_t, creq);
    fl_grpc_backend_t *be = conn->be;
    char why[200];
    if (conn->closing)
        return;
    uv_timer_stop(&conn->ctimer);
    if (status < 0) {
        be->failed = 1;
        snprintf(why, sizeof why, "failed to connect to %s: %s", be->addr, uv_strerror(status));
        conn_close(conn, FL_GRPC_UNAVAILABLE, why);
        return;
    }
    nghttp2_session_callbacks *cbs = client_callbacks();
    if (!cbs || nghttp2_session_client_new(&conn->io.session, cbs, conn)) {
        if (cbs)
            nghttp2_session_callbacks_del(cbs);
        conn_close(conn, FL_GRPC_UNAVAILABLE, "cannot create an HTTP/2 session");
        return;
    }
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    nghttp2_submit_settings(conn->io.session, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(conn->io.session, NGHTTP2_FLAG_NONE, 0,
                                          CONNECTION_WINDOW);
    if (fl_h2io_start(&conn->io)) {
        conn_close(conn, FL_GRPC_UNAVAILABLE, "cannot read from the connection");
        return;
    }
    be->failed = 0;
    be->nconns++;
    conn->state = CONN_READY;
    while (be->queue && be->conn == conn) {
        fl_grpc_call_t *c = be->queue;
        unlink_call(c);
        submit_call(conn, c);
    }
    fl_h2io_flush(&conn->io);
}

static void on_connect_timeout(uv_timer_t *t)
{
    cconn_t *conn = t->data;
    char why[200];
    conn->be->failed = 1;
    snprintf(why, sizeof why, "failed to connect to %s: timed out", conn->be->addr);
    conn_close(conn, FL_GRPC_UNAVAILABLE, why);
}

static cconn_t *open_conn(fl_grpc_backend_t *be)
{
    fl_grpc_channel_t *ch = be->ch;
    cconn_t *conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    conn->be = be;
    conn->state = CONN_CONNECTING;
    if (fl_h2io_init(&conn->io, ch->loop, &conn_hooks, ch->rbuf, sizeof ch->rbuf)) {
        free(conn);
        return NULL;
    }
    uv_timer_init(ch->loop, &conn->ctimer);
    conn->ctimer.data = conn;
    conn->handles = 2;
    ch->handles++;
    conn->next = be->conns;
    if (be->conns)
        be->conns->prev = conn;
    be->conns = conn;
    be->conn = conn;
    int rc = uv_tcp_connect(&conn->creq, &conn->io.tcp, (struct sockaddr *)&be->sa, on_connect);
    if (rc) {
        be->conn = NULL;
        conn_close(conn, FL_GRPC_UNAVAILABLE, "cannot connect");
        return NULL;
    }
    uv_timer_start(&conn->ctimer, on_connect_timeout, ch->connect_timeout_ms, 0);
    return conn;
}

/* ------------------------------------------------------------ channel ---- */

int fl_grpc_channel_new(uv_loop_t *loop, const fl_grpc_channel_opts_t *opts,
                        fl_grpc_channel_t **out)
{
    fl_grpc_channel_t *ch = calloc(1, sizeof *ch);
    if (!ch)
        return FL_ENOMEM;
    ch->loop = loop;
    ch->max_recv = opts && opts->max_recv ? opts->max_recv : FL_GRPC_DEFAULT_MAX_MESSAGE;
    ch->max_send = opts && opts->max_send ? opts->max_send : FL_GRPC_DEFAULT_MAX_MESSAGE;
    ch->connect_timeout_ms = opts && opts->connect_timeout_ms ? opts->connect_timeout_ms : 20000;
    *out = ch;
    return 0;
}

int fl_grpc_channel_add(fl_grpc_channel_t *ch, const char *addr, fl_grpc_backend_t **out)
{
    char host[64];
    int port;
    if (ch->closing || strlen(addr) >= sizeof((fl_grpc_backend_t *)0)->addr ||
        fl_hostport_parse(addr, 0, host, sizeof host, &port))
        return FL_EINVAL;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    fl_grpc_backend_t *be = calloc(1, sizeof *be);
    if (!be)
        return FL_ENOMEM;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&be->sa) &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&be->sa)) {
        free(be);
        return FL_EINVAL;
    }
    be->ch = ch;
    snprintf(be->addr, sizeof be->addr, "%s", addr);
    be->next = ch->backends;
    if (ch->backends)
        ch->backends->prev = be;
    ch->backends = be;
    ch->nbackends++;
    if (out)
        *out = be;
    return 0;
}

void fl_grpc_channel_remove(fl_grpc_channel_t *ch, fl_grpc_backend_t *be)
{
    if (be->removed)
        return;
    be->removed = 1;
    if (be->prev)
        be->prev->next = be->next;
    else
        ch->backends = be->next;
    if (be->next)
        be->next->prev = be->prev;
    ch->nbackends--;
    be->prev = NULL;
    be->next = ch->removed;
    if (ch->removed)
        ch->removed->prev = be;
    ch->removed = be;
    /* the current connection takes no new calls; its calls finish, then it closes */
    if (be->conn && be->conn->state == CONN_READY && be->conn->io.session) {
        cconn_t *conn = be->conn;
        conn->state = CONN_DRAINING;
        be->conn = NULL;
        /* a client's GOAWAY names no stream of ours: the calls in flight go on, and the
         * connection closes once they are done (nghttp2 wants nothing more then) */
        nghttp2_submit_goaway(conn->io.session, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
        if (!conn->calls)
            conn_close(conn, FL_GRPC_UNAVAILABLE, "backend removed");
        else
            fl_h2io_flush(&conn->io);
    }
    maybe_free_removed(be);
}

size_t fl_grpc_channel_backends(const fl_grpc_channel_t *ch, fl_grpc_backend_t **out, size_t max)
{
    size_t n = 0;
    for (fl_grpc_backend_t *be = ch->backends; be; be = be->next, n++)
        if (n < max)
            out[n] = be;
    return n;
}

static void close_backend_conns(fl_grpc_backend_t *be)
{
    for (cconn_t *conn = be->conns; conn; conn = conn->next)
        conn_close(conn, FL_GRPC_CANCELLED, "channel closed");
}

void fl_grpc_channel_close(fl_grpc_channel_t *ch, void (*cb)(void *arg), void *arg)
{
    if (ch->closing)
        return;
    ch->closing = 1;
    ch->close_cb = cb;
    ch->close_arg = arg;
    for (fl_grpc_backend_t *be = ch->backends; be; be = be->next)
        close_backend_conns(be);
    for (fl_grpc_backend_t *be = ch->removed; be; be = be->next)
        close_backend_conns(be);
    maybe_channel_closed(ch);
}

const char *fl_grpc_backend_addr(const fl_grpc_backend_t *be)
{
    return be->addr;
}

fl_grpc_backend_state_t fl_grpc_backend_state(const fl_grpc_backend_t *be)
{
    if (be->conn)
        return be->conn->state == CONN_READY ? FL_GRPC_READY : FL_GRPC_CONNECTING;
    return be->failed ? FL_GRPC_TRANSIENT_FAILURE : FL_GRPC_IDLE;
}

size_t fl_grpc_backend_inflight(const fl_grpc_backend_t *be)
{
    return be->inflight;
}

uint64_t fl_grpc_backend_connections(const fl_grpc_backend_t *be)
{
    return be->nconns;
}

void fl_grpc_backend_connect(fl_grpc_backend_t *be)
{
    if (!be->conn && !be->removed && !be->ch->closing)
        open_conn(be);
}
