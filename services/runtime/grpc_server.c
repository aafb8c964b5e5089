/* gRPC server on libuv and nghttp2 (grpc_server.h). One sconn per accepted connection, one
 * call per request stream. A call lives until its stream has closed and its handler no
 * longer holds it; its deadline timer (armed only when the client sent grpc-timeout) is
 * closed before its memory is freed. */
#include "services/runtime/grpc_server.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/dur.h"
#include "lib/err.h"
#include "services/runtime/grpc_frame.h"
#include "services/runtime/grpc_timeout.h"
#include "services/runtime/h2io.h"

#include "health.pb-c.h"

#define RBUF_SIZE 65536
#define MAX_METADATA 65536           /* bytes of request headers kept per call */
#define STREAM_WINDOW (1 << 20)      /* per-stream receive window */
#define CONNECTION_WINDOW (16 << 20) /* connection receive window */
#define MAX_STREAMS 1000             /* concurrent streams per connection */
#define CONN_HELD_MIN (16u << 20)    /* bytes of requests and answers a connection may hold */
#define HEALTH_CHECK "/grpc.health.v1.Health/Check"

typedef struct {
    char *path; /* "/service/method" */
    size_t svc_len;
    fl_grpc_handler_t handler;
    void *arg;
} method_t;

typedef struct {
    char *service;
    int status;
} health_t;

typedef struct sconn sconn_t;

struct fl_grpc_server {
    uv_loop_t *loop;
    uv_tcp_t *listener; /* its own allocation: it may outlive a failed start */
    uv_timer_t grace;
    int port;
    fl_grpc_server_config_t cfg;
    size_t max_recv, max_send;
    size_t conn_held_max; /* per connection: CONN_HELD_MIN, or one largest request and answer */
    method_t *methods;
    size_t nmethods;
    health_t *health;
    size_t nhealth;
    sconn_t *conns;
    size_t nconns;
    int shutting_down;
    int listener_closed;
    int grace_closed;
    void (*done)(fl_grpc_server_t *s, void *arg);
    void *done_arg;
    char rbuf[RBUF_SIZE];
};

struct sconn {
    fl_h2io_t io;
    fl_grpc_server_t *srv;
    sconn_t *prev, *next;
    fl_grpc_srv_call_t *calls;
    char peer[64];
    int goaway_final;
};

enum { C_RECV, C_DISPATCHED, C_ANSWERED };

struct fl_grpc_srv_call {
    sconn_t *conn;
    fl_grpc_srv_call_t *prev, *next;
    int32_t stream_id;
    int state;
    int stream_closed;
    /* the request */
    fl_buf_t path;
    fl_buf_t meta; /* "name\0value\0" for each non-pseudo request header */
    fl_buf_t body;
    const method_t *method;
    int is_post, has_ct, ct_ok, prefix_checked;
    int has_timeout, bad_timeout;
    uint64_t timeout_ns;
    char encoding[32];
    /* the answer */
    fl_buf_t out; /* prefix + message */
    size_t out_off;
    int headers_sent;      /* fl_grpc_srv_send_headers: the answer follows on a deferred stream */
    int status;            /* grpc-status in the trailers: 0, or the failure after headers_sent */
    fl_buf_t status_msg;   /* its grpc-message, percent-encoded */
    fl_buf_t hmeta, tmeta; /* extra headers, trailers: "name\0value\0" */
    uv_timer_t timer;
    int timer_inited;
    fl_grpc_cancel_t on_cancel;
    void *cancel_arg;
};

static void slog(fl_grpc_server_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void slog(fl_grpc_server_t *s, const char *fmt, ...)
{
    if (!s->cfg.log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->cfg.log(s->cfg.log_arg, line);
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

/* ------------------------------------------------------------ calls ---- */

static void free_call_mem(fl_grpc_srv_call_t *c)
{
    fl_buf_free(&c->path);
    fl_buf_free(&c->meta);
    fl_buf_free(&c->body);
    fl_buf_free(&c->out);
    fl_buf_free(&c->status_msg);
    fl_buf_free(&c->hmeta);
    fl_buf_free(&c->tmeta);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    free_call_mem(h->data);
}

static void unlink_call(fl_grpc_srv_call_t *c)
{
    if (!c->conn)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->conn->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->conn = NULL;
}

static void destroy_call(fl_grpc_srv_call_t *c)
{
    unlink_call(c);
    if (c->timer_inited)
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    else
        free_call_mem(c);
}

static void stop_timer(fl_grpc_srv_call_t *c)
{
    if (c->timer_inited)
        uv_timer_stop(&c->timer);
}

/* Frees a call once nothing refers to it any more: its stream closed, its handler done. */
static void maybe_destroy(fl_grpc_srv_call_t *c)
{
    if (c->stream_closed && c->state != C_DISPATCHED)
        destroy_call(c);
}

/* The handler lets go of a call that ended without its answer. */
static void cancel_handler(fl_grpc_srv_call_t *c, int code)
{
    if (c->state != C_DISPATCHED)
        return;
    c->state = C_ANSWERED;
    if (c->on_cancel)
        c->on_cancel(c, code, c->cancel_arg);
}

static int add_meta_list(nghttp2_nv *nva, size_t max, const fl_buf_t *list)
{
    size_t n = 0;
    for (size_t off = 0; list->data && off < list->len && n < max; n++) {
        const char *name = list->data + off;
        size_t nlen = strlen(name);
        const char *value = name + nlen + 1;
        size_t vlen = strlen(value);
        nva[n] = NV(name, value, nlen, vlen, NGHTTP2_NV_FLAG_NONE);
        off += nlen + vlen + 2;
    }
    return (int)n;
}

static size_t count_meta(const fl_buf_t *list)
{
    size_t n = 0;
    for (size_t i = 0; list->data && i < list->len; i++)
        n += list->data[i] == '\0';
    return n / 2;
}

/* Answers with only a HEADERS frame: the HTTP status (200 for a gRPC error), grpc-status,
 * grpc-message, and whatever metadata the handler added. */
static void respond_headers_only(fl_grpc_srv_call_t *c, int http, int code, const char *message,
                                 int accept_encoding)
{
    if (c->state == C_ANSWERED || !c->conn)
        return;
    nghttp2_session *session = c->conn->io.session;
    stop_timer(c);
    c->state = C_ANSWERED;
    if (c->headers_sent) { /* the headers are gone: the status goes in trailers */
        c->status = code;
        fl_buf_reset(&c->status_msg);
        if (message && *message)
            fl_grpc_message_encode(&c->status_msg, message, strlen(message));
        fl_buf_reset(&c->out);
        c->out_off = 0;
        nghttp2_session_resume_data(session, c->stream_id);
        fl_h2io_flush(&c->conn->io);
        return;
    }
    size_t extra = count_meta(&c->hmeta) + count_meta(&c->tmeta);
    nghttp2_nv stack[16], *nva = stack;
    if (extra + 6 > sizeof stack / sizeof stack[0]) {
        nva = malloc((extra + 6) * sizeof *nva);
        if (!nva) {
            nva = stack;
            extra = 0;
        }
    }
    char status[8], code_s[8];
    fl_buf_t msg = FL_BUF_INIT;
    size_t n = 0;
    snprintf(status, sizeof status, "%d", http);
    snprintf(code_s, sizeof code_s, "%d", code);
    nva[n++] = NV_STR(":status", status);
    nva[n++] = NV_STATIC("content-type", "application/grpc");
    nva[n++] = NV_STR("grpc-status", code_s);
    if (message && *message && !fl_grpc_message_encode(&msg, message, strlen(message)) && msg.data)
        nva[n++] = NV("grpc-message", msg.data, 12, msg.len, NGHTTP2_NV_FLAG_NO_COPY_NAME);
    if (accept_encoding)
        nva[n++] = NV_STATIC("grpc-accept-encoding", "identity");
    if (extra) {
        n += (size_t)add_meta_list(nva + n, extra, &c->hmeta);
        n += (size_t)add_meta_list(nva + n, extra, &c->tmeta);
    }
    nghttp2_submit_response(session, c->stream_id, nva, n, NULL);
    fl_buf_free(&msg);
    if (nva != stack)
        free(nva);
    fl_h2io_flush(&c->conn->io);
}

static void fail_call(fl_grpc_srv_call_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_call(fl_grpc_srv_call_t *c, int code, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    respond_headers_only(c, 200, code, message, 0);
}

static ssize_t read_answer(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *source, void *user)
{
    fl_grpc_srv_call_t *c = source->ptr;
    if (c->state != C_ANSWERED) /* headers sent early: the answer is not there yet */
        return NGHTTP2_ERR_DEFERRED;
    size_t left = c->out.len - c->out_off;
    size_t n = left < length ? left : length;
    if (n) /* nothing after a failure that followed early headers */
        memcpy(buf, c->out.data + c->out_off, n);
    c->out_off += n;
    if (c->out_off == c->out.len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        size_t extra = count_meta(&c->tmeta);
        nghttp2_nv stack[8], *nva = stack;
        if (extra + 2 > sizeof stack / sizeof stack[0]) {
            nva = malloc((extra + 2) * sizeof *nva);
            if (!nva) {
                nva = stack;
                extra = 0;
            }
        }
        char code_s[8];
        snprintf(code_s, sizeof code_s, "%d", c->status);
        nva[0] = NV_STR("grpc-status", code_s);
        size_t total = 1;
        if (c->status_msg.len)
            nva[total++] = NV("grpc-message", c->status_msg.data, 12, c->status_msg.len,
                              NGHTTP2_NV_FLAG_NO_COPY_NAME);
        total += (size_t)add_meta_list(nva + total, extra, &c->tmeta);
        nghttp2_submit_trailer(session, stream_id, nva, total);
        if (nva != stack)
            free(nva);
    }
    return (ssize_t)n;
}

/* Submits the answer's headers (:status 200, content-type, the handler's metadata) with a
 * body that read_answer gives: c->out once the call is answered (deferred until then). */
static int submit_headers(fl_grpc_srv_call_t *c)
{
    size_t extra = count_meta(&c->hmeta);
    nghttp2_nv stack[8], *nva = stack;
    if (extra + 2 > sizeof stack / sizeof stack[0]) {
        nva = malloc((extra + 2) * sizeof *nva);
        if (!nva) {
            nva = stack;
            extra = 0;
        }
    }
    nva[0] = NV_STATIC(":status", "200");
    nva[1] = NV_STATIC("content-type", "application/grpc");
    size_t n = 2 + (size_t)add_meta_list(nva + 2, extra, &c->hmeta);
    nghttp2_data_provider prd = {.source.ptr = c, .read_callback = read_answer};
    int rc = nghttp2_submit_response(c->conn->io.session, c->stream_id, nva, n, &prd);
    if (nva != stack)
        free(nva);
    return rc ? FL_ENOMEM : 0;
}

/* Sends c->out (a framed message) with its headers (unless they went already) and trailers. */
static void respond_message(fl_grpc_srv_call_t *c)
{
    stop_timer(c);
    c->state = C_ANSWERED;
    c->out_off = 0;
    if (c->headers_sent)
        nghttp2_session_resume_data(c->conn->io.session, c->stream_id);
    else
        submit_headers(c);
    fl_h2io_flush(&c->conn->io);
}

/* The handler is done with a call that may already be over (cancelled meanwhile): frees
 * it if its stream has closed. Returns 1 when the call can still be answered. */
static int answerable(fl_grpc_srv_call_t *c)
{
    return c->state == C_DISPATCHED && c->conn && !c->stream_closed;
}

int fl_grpc_srv_reply(fl_grpc_srv_call_t *c, const uint8_t *msg, size_t len)
{
    if (!answerable(c))
        return FL_ESTATE;
    fl_buf_reset(&c->body); /* the request is no longer needed */
    if (len > c->conn->srv->max_send) {
        fail_call(c, FL_GRPC_RESOURCE_EXHAUSTED,
                  "grpc: trying to send message larger than max (%zu vs. %zu)", len,
                  c->conn->srv->max_send);
        return 0;
    }
    uint8_t prefix[FL_GRPC_FRAME_HEADER];
    fl_grpc_frame_header(prefix, 0, (uint32_t)len);
    fl_buf_reset(&c->out);
    if (fl_buf_reserve(&c->out, len + sizeof prefix) || fl_buf_append(&c->out, prefix, 5) ||
        fl_buf_append(&c->out, msg, len)) {
        fail_call(c, FL_GRPC_INTERNAL, "server out of memory");
        return FL_ENOMEM;
    }
    respond_message(c);
    return 0;
}

int fl_grpc_srv_reply_pb(fl_grpc_srv_call_t *c, const ProtobufCMessage *m)
{
    if (!answerable(c))
        return FL_ESTATE;
    fl_buf_reset(&c->body);
    size_t len = protobuf_c_message_get_packed_size(m);
    if (len > c->conn->srv->max_send) {
        fail_call(c, FL_GRPC_RESOURCE_EXHAUSTED,
                  "grpc: trying to send message larger than max (%zu vs. %zu)", len,
                  c->conn->srv->max_send);
        return 0;
    }
    fl_buf_reset(&c->out);
    if (fl_buf_reserve(&c->out, len + FL_GRPC_FRAME_HEADER + 1)) {
        fail_call(c, FL_GRPC_INTERNAL, "server out of memory");
        return FL_ENOMEM;
    }
    fl_grpc_frame_header((uint8_t *)c->out.data, 0, (uint32_t)len);
    protobuf_c_message_pack(m, (uint8_t *)c->out.data + FL_GRPC_FRAME_HEADER);
    c->out.len = len + FL_GRPC_FRAME_HEADER;
    respond_message(c);
    return 0;
}

int fl_grpc_srv_send_headers(fl_grpc_srv_call_t *c)
{
    if (!answerable(c))
        return FL_ESTATE;
    if (c->headers_sent)
        return 0;
    int rc = submit_headers(c);
    if (rc)
        return rc;
    c->headers_sent = 1;
    fl_h2io_flush(&c->conn->io);
    return 0;
}

void fl_grpc_srv_fail(fl_grpc_srv_call_t *c, int code, const char *message)
{
    if (!answerable(c))
        return;
    if (code == FL_GRPC_OK)
        code = FL_GRPC_UNKNOWN;
    respond_headers_only(c, 200, code, message, 0);
}

int fl_grpc_srv_add_metadata(fl_grpc_srv_call_t *c, int trailer, const char *name,
                             const char *value)
{
    /* grpc-* names are the transport's, but for the retry pushback a server may send (A6) */
    if (!*name || name[0] == ':' ||
        (strncmp(name, "grpc-", 5) == 0 && strcmp(name, "grpc-retry-pushback-ms") != 0) ||
        strcmp(name, "content-type") == 0 || strcmp(name, "te") == 0)
        return FL_EINVAL;
    for (const char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            return FL_EINVAL;
    fl_buf_t *b = trailer ? &c->tmeta : &c->hmeta;
    if (fl_buf_append(b, name, strlen(name) + 1) || fl_buf_append(b, value, strlen(value) + 1))
        return FL_ENOMEM;
    return 0;
}

void fl_grpc_srv_call_on_cancel(fl_grpc_srv_call_t *c, fl_grpc_cancel_t cb, void *arg)
{
    c->on_cancel = cb;
    c->cancel_arg = arg;
}

const char *fl_grpc_srv_call_header(const fl_grpc_srv_call_t *c, const char *name)
{
    for (size_t off = 0; c->meta.data && off < c->meta.len;) {
        const char *n = c->meta.data + off;
        const char *v = n + strlen(n) + 1;
        if (strcmp(n, name) == 0)
            return v;
        off = (size_t)(v + strlen(v) + 1 - c->meta.data);
    }
    return NULL;
}

const char *fl_grpc_srv_call_path(const fl_grpc_srv_call_t *c)
{
    return c->path.data ? c->path.data : "";
}

const char *fl_grpc_srv_call_peer(const fl_grpc_srv_call_t *c)
{
    return c->conn ? c->conn->peer : "?";
}

uint64_t fl_grpc_srv_call_timeout(const fl_grpc_srv_call_t *c)
{
    return c->has_timeout ? c->timeout_ns : 0;
}

/* ------------------------------------------------------------ requests ---- */

static void on_deadline(uv_timer_t *t)
{
    fl_grpc_srv_call_t *c = t->data;
    if (c->state == C_ANSWERED || !c->conn)
        return;
    fl_grpc_server_t *s = c->conn->srv;
    char dur[32];
    fl_dur_format(c->timeout_ns, dur, sizeof dur);
    slog(s, "deadline exceeded: %s from %s after %s", fl_grpc_srv_call_path(c), c->conn->peer, dur);
    if (c->state == C_DISPATCHED) {
        /* the handler lets go first: the answer below may close the stream and free c */
        c->state = C_RECV;
        if (c->on_cancel)
            c->on_cancel(c, FL_GRPC_DEADLINE_EXCEEDED, c->cancel_arg);
    }
    fail_call(c, FL_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

static const method_t *find_method(const fl_grpc_server_t *s, const char *path)
{
    for (size_t i = 0; i < s->nmethods; i++)
        if (strcmp(s->methods[i].path, path) == 0)
            return &s->methods[i];
    return NULL;
}

/* The request's headers are all in: checks them, finds the method, arms the deadline.
 * Returns 0 when the call may go on. */
static int headers_done(fl_grpc_srv_call_t *c)
{
    fl_grpc_server_t *s = c->conn->srv;
    const char *path = fl_grpc_srv_call_path(c);
    if (!c->is_post) {
        respond_headers_only(c, 405, FL_GRPC_INTERNAL, "gRPC requires method POST", 0);
        return -1;
    }
    if (!c->ct_ok) {
        char msg[160];
        snprintf(msg, sizeof msg, "invalid gRPC request content-type '%.100s'",
                 c->has_ct ? fl_grpc_srv_call_header(c, "content-type") : "");
        respond_headers_only(c, 415, FL_GRPC_INTERNAL, msg, 0);
        return -1;
    }
    if (c->bad_timeout) {
        fail_call(c, FL_GRPC_INTERNAL, "malformed grpc-timeout");
        return -1;
    }
    c->method = find_method(s, path);
    if (!c->method) {
        const char *slash = path[0] == '/' ? strchr(path + 1, '/') : NULL;
        if (!slash || !slash[1]) {
            fail_call(c, FL_GRPC_UNIMPLEMENTED, "malformed method name: '%.100s'", path);
            return -1;
        }
        size_t svc_len = (size_t)(slash - path - 1);
        for (size_t i = 0; i < s->nmethods; i++)
            if (s->methods[i].svc_len == svc_len &&
                memcmp(s->methods[i].path + 1, path + 1, svc_len) == 0) {
                fail_call(c, FL_GRPC_UNIMPLEMENTED, "unknown method %.100s for service %.*s",
                          slash + 1, (int)(svc_len > 100 ? 100 : svc_len), path + 1);
                return -1;
            }
        fail_call(c, FL_GRPC_UNIMPLEMENTED, "unknown service %.*s",
                  (int)(svc_len > 100 ? 100 : svc_len), path + 1);
        return -1;
    }
    if (c->encoding[0] && strcmp(c->encoding, "identity") != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "grpc: Decompressor is not installed for grpc-encoding \"%s\"",
                 c->encoding);
        respond_headers_only(c, 200, FL_GRPC_UNIMPLEMENTED, msg, 1);
        return -1;
    }
    if (c->has_timeout && !s->cfg.ignore_deadline) {
        /* the loop's clock lags and counts whole ms: one more, and never early */
        uint64_t ms = c->timeout_ns / 1000000 + (c->timeout_ns % 1000000 != 0) + 1;
        uv_update_time(s->loop);
        uv_timer_init(s->loop, &c->timer);
        c->timer.data = c;
        c->timer_inited = 1;
        uv_timer_start(&c->timer, on_deadline, ms, 0);
    }
    return 0;
}

/* Checks the message prefix as soon as it is in: a size over the limit fails the call at
 * once, without waiting for (and buffering) the rest. */
static void check_prefix(fl_grpc_srv_call_t *c)
{
    fl_grpc_server_t *s = c->conn->srv;
    fl_grpc_frame_t f;
    int rc =
        fl_grpc_frame_parse_header((const uint8_t *)c->body.data, c->body.len, s->max_recv, &f);
    if (rc == FL_EAGAIN)
        return;
    c->prefix_checked = 1;
    if (rc == FL_ETOOBIG) {
        fail_call(c, FL_GRPC_RESOURCE_EXHAUSTED,
                  "grpc: received message larger than max (%u vs. %zu)", f.len, s->max_recv);
        fl_buf_free(&c->body);
    } else if (rc == FL_EMALFORMED) {
        fail_call(c, FL_GRPC_INTERNAL, "grpc: invalid compressed flag %u",
                  (unsigned)c->body.data[0] & 0xff);
        fl_buf_free(&c->body);
    }
}

static void health_check(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg);
static int over_budget(fl_grpc_srv_call_t *c, size_t more);

/* The request is complete: exactly one uncompressed message goes to the handler. */
static void request_done(fl_grpc_srv_call_t *c)
{
    fl_grpc_server_t *s = c->conn->srv;
    fl_grpc_frame_t f;
    if (c->state != C_RECV)
        return;
    long n = fl_grpc_frame_parse((const uint8_t *)c->body.data, c->body.len, s->max_recv, &f);
    if (n == FL_EAGAIN && c->body.len == 0) {
        fail_call(c, FL_GRPC_UNIMPLEMENTED, "grpc: no request message for a unary method");
        return;
    }
    if (n == FL_EAGAIN) {
        fail_call(c, FL_GRPC_INTERNAL, "grpc: request message truncated (%zu of %u bytes)",
                  c->body.len - (c->body.len < 5 ? c->body.len : 5), f.len);
        return;
    }
    if (n < 0)
        return; /* answered by check_prefix */
    if ((size_t)n != c->body.len) {
        fail_call(c, FL_GRPC_UNIMPLEMENTED,
                  "grpc: more than one request message for a unary "
                  "method");
        return;
    }
    if (f.compressed) {
        fail_call(c, FL_GRPC_INTERNAL, "grpc: compressed flag set with identity or empty encoding");
        return;
    }
    if (over_budget(c, 0))
        return;
    c->state = C_DISPATCHED;
    c->method->handler(c, f.msg, f.len, c->method->arg);
}

static sconn_t *conn_of(nghttp2_session *session, void *user)
{
    return user;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    sconn_t *conn = conn_of(session, user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    fl_grpc_srv_call_t *c = calloc(1, sizeof *c);
    if (!c)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM for this one */
    c->conn = conn;
    c->stream_id = frame->hd.stream_id;
    c->next = conn->calls;
    if (conn->calls)
        conn->calls->prev = c;
    conn->calls = c;
    nghttp2_session_set_stream_user_data(session, c->stream_id, c);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    fl_grpc_srv_call_t *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!c || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* client trailers carry nothing we use */
    const char *n = (const char *)name, *v = (const char *)value;
    if (namelen == 7 && memcmp(n, ":method", 7) == 0) {
        c->is_post = valuelen == 4 && memcmp(v, "POST", 4) == 0;
    } else if (namelen == 5 && memcmp(n, ":path", 5) == 0) {
        fl_buf_reset(&c->path);
        if (fl_buf_append(&c->path, v, valuelen))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    } else if (n[0] == ':') {
        return 0;
    } else if (namelen == 12 && memcmp(n, "grpc-timeout", 12) == 0) {
        c->has_timeout = !fl_grpc_timeout_parse(v, valuelen, &c->timeout_ns);
        c->bad_timeout = !c->has_timeout;
    } else if (namelen == 13 && memcmp(n, "grpc-encoding", 13) == 0) {
        snprintf(c->encoding, sizeof c->encoding, "%.*s", (int)(valuelen < 31 ? valuelen : 31), v);
    } else {
        if (namelen == 12 && memcmp(n, "content-type", 12) == 0) {
            c->has_ct = 1;
            c->ct_ok = valuelen >= 16 && memcmp(v, "application/grpc", 16) == 0 &&
                       (valuelen == 16 || v[16] == '+' || v[16] == ';');
        }
        if (c->meta.len + namelen + valuelen + 2 > MAX_METADATA)
            return 0; /* kept within bounds: the rest is dropped */
        if (fl_buf_append(&c->meta, n, namelen) || fl_buf_append(&c->meta, "", 1) ||
            fl_buf_append(&c->meta, v, valuelen) || fl_buf_append(&c->meta, "", 1))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

/* What a connection's calls hold: requests being received, answers not yet sent. */
static size_t conn_held(const sconn_t *conn)
{
    size_t n = 0;
    for (const fl_grpc_srv_call_t *c = conn->calls; c; c = c->next)
        n += c->body.len + c->meta.len + c->path.len + (c->out.len - c->out_off);
    return n;
}

/* A connection holds at most conn_held_max bytes of requests and answers: a request that
 * would take it over fails at once (RESOURCE_EXHAUSTED) and its bytes are dropped, so many
 * large requests sent but never finished, or answers a client leaves unread, cannot grow
 * the server without bound. Returns 1 when c was failed. */
static int over_budget(fl_grpc_srv_call_t *c, size_t more)
{
    fl_grpc_server_t *s = c->conn->srv;
    size_t held = conn_held(c->conn);
    if (held + more <= s->conn_held_max)
        return 0;
    fail_call(c, FL_GRPC_RESOURCE_EXHAUSTED,
              "grpc: the connection holds %zu bytes of calls, the server's limit is %zu", held,
              s->conn_held_max);
    fl_buf_free(&c->body);
    return 1;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user)
{
    fl_grpc_srv_call_t *c = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!c || c->state != C_RECV)
        return 0; /* answered already (an error): the rest is dropped */
    fl_grpc_server_t *s = c->conn->srv;
    if (over_budget(c, len))
        return 0;
    if (c->body.len + len > s->max_recv + 2 * FL_GRPC_FRAME_HEADER) {
        /* the one message fits in max_recv + 5: this is a second message */
        fail_call(c, FL_GRPC_UNIMPLEMENTED,
                  "grpc: more than one request message for a unary "
                  "method");
        fl_buf_free(&c->body);
        return 0;
    }
    if (fl_buf_append(&c->body, data, len)) {
        fail_call(c, FL_GRPC_RESOURCE_EXHAUSTED, "server out of memory");
        return 0;
    }
    if (!c->prefix_checked)
        check_prefix(c);
    return 0;
}

static void shutdown_conn_final(sconn_t *conn);

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    sconn_t *conn = conn_of(session, user);
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        if (conn->srv->shutting_down)
            shutdown_conn_final(conn);
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    fl_grpc_srv_call_t *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!c)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
        headers_done(c))
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        request_done(c);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user)
{
    fl_grpc_srv_call_t *c = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!c)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    c->stream_closed = 1;
    stop_timer(c);
    unlink_call(c);
    cancel_handler(c, FL_GRPC_CANCELLED);
    maybe_destroy(c);
    return 0;
}

/* ------------------------------------------------------------ connections ---- */

static void maybe_done(fl_grpc_server_t *s);

static void conn_on_closed(fl_h2io_t *io)
{
    sconn_t *conn = container_of(io, sconn_t, io);
    fl_grpc_server_t *s = conn->srv;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        s->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    s->nconns--;
    free(conn);
    if (s->nconns == 0)
        malloc_trim(0); /* idle again: what the connections used goes back to the system */
    maybe_done(s);
}

/* Closes a connection now: calls still held by handlers are cancelled. */
static void conn_close(sconn_t *conn)
{
    if (conn->io.closing)
        return;
    while (conn->calls) {
        fl_grpc_srv_call_t *c = conn->calls;
        unlink_call(c);
        c->stream_closed = 1;
        stop_timer(c);
        cancel_handler(c, FL_GRPC_UNAVAILABLE);
        maybe_destroy(c);
    }
    fl_h2io_close(&conn->io);
}

static void conn_on_error(fl_h2io_t *io, int err)
{
    conn_close(container_of(io, sconn_t, io));
}

static void conn_on_done(fl_h2io_t *io)
{
    conn_close(container_of(io, sconn_t, io));
}

static const fl_h2io_hooks_t conn_hooks = {conn_on_error, conn_on_done, conn_on_closed};

static nghttp2_session_callbacks *server_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs))
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    return cbs;
}

static void on_connection(uv_stream_t *listener, int status)
{
    fl_grpc_server_t *s = listener->data;
    if (status < 0 || s->shutting_down)
        return;
    sconn_t *conn = calloc(1, sizeof *conn);
    if (!conn)
        return;
    conn->srv = s;
    fl_h2io_init(&conn->io, s->loop, &conn_hooks, s->rbuf, sizeof s->rbuf);
    conn->next = s->conns;
    if (s->conns)
        s->conns->prev = conn;
    s->conns = conn;
    s->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&conn->io.tcp)) {
        fl_h2io_close(&conn->io);
        return;
    }
    struct sockaddr_storage sa;
    int salen = sizeof sa;
    snprintf(conn->peer, sizeof conn->peer, "?");
    if (!uv_tcp_getpeername(&conn->io.tcp, (struct sockaddr *)&sa, &salen)) {
        char ip[INET6_ADDRSTRLEN] = "";
        if (sa.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
            snprintf(conn->peer, sizeof conn->peer, "%s:%d", ip,
                     ntohs(((struct sockaddr_in *)&sa)->sin_port));
        } else {
            uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
            snprintf(conn->peer, sizeof conn->peer, "[%s]:%d", ip,
                     ntohs(((struct sockaddr_in6 *)&sa)->sin6_port));
        }
    }
    nghttp2_session_callbacks *cbs = server_callbacks();
    if (!cbs || nghttp2_session_server_new(&conn->io.session, cbs, conn)) {
        if (cbs)
            nghttp2_session_callbacks_del(cbs);
        fl_h2io_close(&conn->io);
        return;
    }
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    nghttp2_submit_settings(conn->io.session, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(conn->io.session, NGHTTP2_FLAG_NONE, 0,
                                          CONNECTION_WINDOW);
    if (fl_h2io_start(&conn->io)) {
        fl_h2io_close(&conn->io);
        return;
    }
    fl_h2io_flush(&conn->io);
}

/* ------------------------------------------------------------ health ---- */

static health_t *find_health(fl_grpc_server_t *s, const char *service, size_t len)
{
    for (size_t i = 0; i < s->nhealth; i++)
        if (strlen(s->health[i].service) == len && memcmp(s->health[i].service, service, len) == 0)
            return &s->health[i];
    return NULL;
}

int fl_grpc_server_set_health(fl_grpc_server_t *s, const char *service, int status)
{
    health_t *h = find_health(s, service, strlen(service));
    if (h) {
        h->status = status;
        return 0;
    }
    health_t *grown = realloc(s->health, (s->nhealth + 1) * sizeof *grown);
    if (!grown)
        return FL_ENOMEM;
    s->health = grown;
    char *copy = strdup(service);
    if (!copy)
        return FL_ENOMEM;
    s->health[s->nhealth++] = (health_t){copy, status};
    return 0;
}

static void health_check(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg)
{
    fl_grpc_server_t *s = arg;
    Grpc__Health__V1__HealthCheckRequest *in =
        grpc__health__v1__health_check_request__unpack(NULL, len, req);
    if (!in) {
        fl_grpc_srv_fail(call, FL_GRPC_INTERNAL, "grpc: error unmarshalling request");
        return;
    }
    health_t *h = find_health(s, in->service, strlen(in->service));
    if (!h) {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown service %.100s", in->service);
        fl_grpc_srv_fail(call, FL_GRPC_NOT_FOUND, msg);
    } else {
        Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        out.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)h->status;
        fl_grpc_srv_reply_pb(call, &out.base);
    }
    grpc__health__v1__health_check_request__free_unpacked(in, NULL);
}

/* ------------------------------------------------------------ server ---- */

int fl_grpc_server_add(fl_grpc_server_t *s, const char *path, fl_grpc_handler_t handler, void *arg)
{
    const char *slash = path[0] == '/' ? strchr(path + 1, '/') : NULL;
    if (!slash || slash == path + 1 || !slash[1] || strchr(slash + 1, '/') || !handler)
        return FL_EINVAL;
    if (find_method(s, path))
        return FL_EEXISTS;
    method_t *grown = realloc(s->methods, (s->nmethods + 1) * sizeof *grown);
    if (!grown)
        return FL_ENOMEM;
    s->methods = grown;
    char *copy = strdup(path);
    if (!copy)
        return FL_ENOMEM;
    size_t svc_len = (size_t)(slash - path - 1);
    s->methods[s->nmethods++] = (method_t){copy, svc_len, handler, arg};
    char svc[256];
    if (svc_len < sizeof svc && !find_health(s, path + 1, svc_len)) {
        memcpy(svc, path + 1, svc_len);
        svc[svc_len] = '\0';
        return fl_grpc_server_set_health(s, svc, 1);
    }
    return 0;
}

int fl_grpc_server_port(const fl_grpc_server_t *s)
{
    return s->port;
}

static void free_server(fl_grpc_server_t *s)
{
    for (size_t i = 0; i < s->nmethods; i++)
        free(s->methods[i].path);
    for (size_t i = 0; i < s->nhealth; i++)
        free(s->health[i].service);
    free(s->methods);
    free(s->health);
    free(s);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

int fl_grpc_server_start(uv_loop_t *loop, const char *host, int port,
                         const fl_grpc_server_config_t *cfg, fl_grpc_server_t **out)
{
    struct sockaddr_storage sa;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa))
        return FL_EINVAL;
    fl_grpc_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return FL_ENOMEM;
    s->loop = loop;
    if (cfg)
        s->cfg = *cfg;
    s->max_recv = s->cfg.max_recv ? s->cfg.max_recv : FL_GRPC_DEFAULT_MAX_MESSAGE;
    s->max_send = s->cfg.max_send ? s->cfg.max_send : FL_GRPC_DEFAULT_MAX_MESSAGE;
    s->conn_held_max = 2 * (s->max_recv + s->max_send) + 2 * MAX_METADATA;
    if (s->conn_held_max < CONN_HELD_MIN)
        s->conn_held_max = CONN_HELD_MIN;
    int rc = fl_grpc_server_set_health(s, "", 1);
    if (!rc)
        rc = fl_grpc_server_add(s, HEALTH_CHECK, health_check, s);
    if (rc) {
        free_server(s);
        return rc;
    }
    s->listener = malloc(sizeof *s->listener);
    if (!s->listener) {
        free_server(s);
        return FL_ENOMEM;
    }
    uv_tcp_init(loop, s->listener);
    s->listener->data = s;
    rc = uv_tcp_bind(s->listener, (struct sockaddr *)&sa, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)s->listener, 1024, on_connection);
    if (rc) {
        uv_close((uv_handle_t *)s->listener, free_handle);
        free_server(s);
        return rc;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                               : ((struct sockaddr_in6 *)&bound)->sin6_port);
    uv_timer_init(loop, &s->grace);
    s->grace.data = s;
    *out = s;
    return 0;
}

static void on_grace_closed(uv_handle_t *h)
{
    fl_grpc_server_t *s = h->data;
    s->grace_closed = 1;
    if (s->done)
        s->done(s, s->done_arg);
    free_server(s);
}

static void maybe_done(fl_grpc_server_t *s)
{
    if (!s->shutting_down || !s->listener_closed || s->nconns || s->grace_closed ||
        uv_is_closing((uv_handle_t *)&s->grace))
        return;
    uv_close((uv_handle_t *)&s->grace, on_grace_closed);
}

static void on_listener_closed(uv_handle_t *h)
{
    fl_grpc_server_t *s = h->data;
    free(h);
    s->listener_closed = 1;
    maybe_done(s);
}

/* After the PING round trip that follows the GOAWAY notice: every stream the client sent
 * before seeing the notice has arrived, so the final GOAWAY can name the last one. */
static void shutdown_conn_final(sconn_t *conn)
{
    if (conn->goaway_final || conn->io.closing)
        return;
    conn->goaway_final = 1;
    int32_t last = nghttp2_session_get_last_proc_stream_id(conn->io.session);
    size_t inflight = 0;
    for (fl_grpc_srv_call_t *c = conn->calls; c; c = c->next)
        inflight++;
    slog(conn->srv, "GOAWAY to %s (last stream %d, %zu calls in flight)", conn->peer, last,
         inflight);
    nghttp2_submit_goaway(conn->io.session, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
    fl_h2io_flush(&conn->io);
}

static void on_grace(uv_timer_t *t)
{
    fl_grpc_server_t *s = t->data;
    if (s->nconns)
        slog(s, "grace period over: closing %zu connections", s->nconns);
    sconn_t *next;
    for (sconn_t *conn = s->conns; conn; conn = next) {
        next = conn->next;
        conn_close(conn);
    }
}

void fl_grpc_server_shutdown(fl_grpc_server_t *s, uint64_t grace_ms,
                             void (*cb)(fl_grpc_server_t *s, void *arg), void *arg)
{
    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    s->done = cb;
    s->done_arg = arg;
    for (size_t i = 0; i < s->nhealth; i++)
        s->health[i].status = 2; /* NOT_SERVING */
    uv_close((uv_handle_t *)s->listener, on_listener_closed);
    if (s->nconns)
        slog(s, "draining %zu connections", s->nconns);
    sconn_t *next;
    for (sconn_t *conn = s->conns; conn; conn = next) {
        next = conn->next;
        if (conn->io.closing || !conn->io.session)
            continue;
        nghttp2_submit_shutdown_notice(conn->io.session);
        nghttp2_submit_ping(conn->io.session, NGHTTP2_FLAG_NONE, NULL);
        fl_h2io_flush(&conn->io);
    }
    if (grace_ms == 0)
        on_grace(&s->grace);
    else if (s->nconns)
        uv_timer_start(&s->grace, on_grace, grace_ms, 0);
    maybe_done(s);
}
