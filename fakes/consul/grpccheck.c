/* gRPC health checks, as Consul runs them: one grpc.health.v1.Health/Check call per interval
 * to the check's GRPC target ("host:port", or "host:port/service" to ask about one service),
 * over cleartext HTTP/2 (prior knowledge) with nghttp2 on the loop. SERVING passes; any other
 * answer, a gRPC error, a refused or broken connection, or the check's timeout is critical,
 * with Consul's wording ("gRPC check T: success", "gRPC T serving status: NOT_SERVING",
 * "rpc error: code = Unavailable desc = ..."). No TLS (GRPCUseTLS checks go critical). */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/consul/grpccheck.h"
#include "lib/buf.h"

#define MAX_ANSWER 4096

struct grpc_probe {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_timer_t timer;
    uv_loop_t *loop;
    nghttp2_session *session;
    char target[256], service[256];
    uint8_t req[300];
    size_t req_len, req_off;
    fl_buf_t out;
    int writing, handles, done, http_status, grpc_status;
    fl_buf_t data;
    char grpc_message[160];
    grpc_probe_cb cb;
    void *arg;
    void (*freed)(void *arg); /* once every handle is closed */
    void *freed_arg;
};

static const char *const status_names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
static const char *const code_names[] = {
    "OK",       "Canceled",        "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",      "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated",
};

static void probe_closed(uv_handle_t *h)
{
    grpc_probe_t *p = h->data;
    if (--p->handles)
        return;
    if (p->session)
        nghttp2_session_del(p->session);
    fl_buf_free(&p->out);
    fl_buf_free(&p->data);
    void (*freed)(void *) = p->freed;
    void *arg = p->freed_arg;
    free(p);
    if (freed)
        freed(arg);
}

static void finish(grpc_probe_t *p, int passing, const char *output)
{
    if (p->done)
        return;
    p->done = 1;
    if (p->cb)
        p->cb(p->arg, passing, output);
    uv_close((uv_handle_t *)&p->tcp, probe_closed);
    uv_close((uv_handle_t *)&p->timer, probe_closed);
}

void grpc_probe_cancel(grpc_probe_t *p)
{
    p->cb = NULL;
    finish(p, 0, "");
}

static void rpc_error(grpc_probe_t *p, int code, const char *desc)
{
    char out[768];
    snprintf(out, sizeof out, "rpc error: code = %s desc = %s",
             code >= 0 && code <= 16 ? code_names[code] : "Unknown", desc);
    finish(p, 0, out);
}

/* The answer is in: a HealthCheckResponse { status = 1 (varint) }. */
static void answered(grpc_probe_t *p)
{
    char out[512];
    if (p->grpc_status != 0) {
        rpc_error(p, p->grpc_status < 0 ? 13 : p->grpc_status,
                  p->grpc_status < 0 ? "no grpc-status in the answer" : p->grpc_message);
        return;
    }
    const uint8_t *d = (const uint8_t *)p->data.data;
    if (p->data.len < 5 || d[0] != 0) {
        rpc_error(p, 13, "the answer is not one uncompressed message");
        return;
    }
    uint32_t n = (uint32_t)d[1] << 24 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 8 | d[4];
    if (n != p->data.len - 5) {
        rpc_error(p, 13, "the answer's length prefix is wrong");
        return;
    }
    unsigned status = 0; /* absent: UNKNOWN */
    for (size_t i = 5; i + 1 < p->data.len; i += 2)
        if (d[i] == 0x08 && d[i + 1] < 0x80)
            status = d[i + 1];
    if (status == 1) {
        snprintf(out, sizeof out, "gRPC check %s: success", p->target);
        finish(p, 1, out);
        return;
    }
    snprintf(out, sizeof out, "gRPC %s serving status: %s", p->target,
             status < 4 ? status_names[status] : "UNKNOWN");
    finish(p, 0, out);
}

/* ---- nghttp2 ---- */

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *arg)
{
    grpc_probe_t *p = arg;
    (void)s;
    (void)flags;
    return fl_buf_append(&p->out, data, len) ? NGHTTP2_ERR_CALLBACK_FAILURE : (ssize_t)len;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *arg)
{
    grpc_probe_t *p = arg;
    (void)s;
    (void)f;
    (void)flags;
    if (nl == 7 && memcmp(name, ":status", 7) == 0)
        p->http_status = atoi((const char *)value);
    else if (nl == 11 && memcmp(name, "grpc-status", 11) == 0)
        p->grpc_status = atoi((const char *)value);
    else if (nl == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(p->grpc_message, sizeof p->grpc_message, "%.*s", (int)vl, (const char *)value);
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *arg)
{
    grpc_probe_t *p = arg;
    (void)s;
    (void)flags;
    (void)id;
    if (p->data.len + len > MAX_ANSWER)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return fl_buf_append(&p->data, data, len) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *arg)
{
    grpc_probe_t *p = arg;
    (void)s;
    (void)id;
    if (code != NGHTTP2_NO_ERROR) {
        char desc[96];
        snprintf(desc, sizeof desc, "stream terminated by RST_STREAM with error code: %s",
                 nghttp2_http2_strerror(code));
        rpc_error(p, 13, desc);
    } else if (p->http_status != 200) {
        char desc[96];
        snprintf(desc, sizeof desc, "unexpected HTTP status code received from server: %d",
                 p->http_status);
        rpc_error(p, 13, desc);
    } else {
        answered(p);
    }
    return 0;
}

static ssize_t read_req(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *arg)
{
    grpc_probe_t *p = arg;
    (void)s;
    (void)id;
    (void)src;
    size_t n = p->req_len - p->req_off < len ? p->req_len - p->req_off : len;
    memcpy(buf, p->req + p->req_off, n);
    p->req_off += n;
    if (p->req_off == p->req_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- the socket ---- */

static void flush(grpc_probe_t *p);

static void on_write(uv_write_t *w, int status)
{
    grpc_probe_t *p = w->data;
    free(w);
    p->writing = 0;
    if (status < 0) {
        rpc_error(p, 14, uv_strerror(status));
        return;
    }
    if (!p->done)
        flush(p);
}

static void flush(grpc_probe_t *p)
{
    if (p->done || p->writing)
        return;
    if (nghttp2_session_send(p->session) != 0) {
        rpc_error(p, 13, "HTTP/2 error");
        return;
    }
    if (!p->out.len)
        return;
    uv_write_t *w = malloc(sizeof *w + p->out.len);
    if (!w)
        return;
    memcpy(w + 1, p->out.data, p->out.len);
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)p->out.len);
    fl_buf_reset(&p->out);
    w->data = p;
    p->writing = 1;
    if (uv_write(w, (uv_stream_t *)&p->tcp, &b, 1, on_write) < 0) {
        free(w);
        p->writing = 0;
        rpc_error(p, 14, "write failed");
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char chunk[16384];
    (void)h;
    (void)hint;
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    grpc_probe_t *p = st->data;
    if (p->done)
        return;
    if (n < 0) {
        char desc[160];
        snprintf(desc, sizeof desc, "connection closed before server preface received%s%s",
                 n == UV_EOF ? "" : ": ", n == UV_EOF ? "" : uv_strerror((int)n));
        rpc_error(p, 14, desc);
        return;
    }
    if (nghttp2_session_mem_recv(p->session, (const uint8_t *)buf->base, (size_t)n) < 0) {
        rpc_error(p, 13, "HTTP/2 protocol error");
        return;
    }
    flush(p);
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

static void on_connect(uv_connect_t *req, int status)
{
    grpc_probe_t *p = req->data;
    if (p->done || status == UV_ECANCELED)
        return;
    if (status < 0) {
        char desc[512];
        snprintf(desc, sizeof desc,
                 "connection error: desc = \"transport: Error while dialing dial tcp %s: "
                 "connect: %s\"",
                 p->target, uv_strerror(status));
        rpc_error(p, 14, desc);
        return;
    }
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    int rc = nghttp2_session_client_new(&p->session, cbs, p);
    nghttp2_session_callbacks_del(cbs);
    if (rc) {
        rpc_error(p, 13, "out of memory");
        return;
    }
    nghttp2_submit_settings(p->session, NGHTTP2_FLAG_NONE, NULL, 0);
    char authority[260];
    snprintf(authority, sizeof authority, "%.*s", (int)strcspn(p->target, "/"), p->target);
    nghttp2_nv nva[] = {
        NV(":method", "POST"),
        NV(":scheme", "http"),
        NV(":path", "/grpc.health.v1.Health/Check"),
        NV(":authority", authority),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
        NV("user-agent", "Consul Health Check"),
    };
    nghttp2_data_provider dp = {.read_callback = read_req};
    if (nghttp2_submit_request(p->session, NULL, nva, sizeof nva / sizeof nva[0], &dp, NULL) < 0) {
        rpc_error(p, 13, "cannot start the call");
        return;
    }
    uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
    flush(p);
}

static void on_timeout(uv_timer_t *t)
{
    grpc_probe_t *p = t->data;
    rpc_error(p, 4, "context deadline exceeded");
}

int grpc_probe_start(uv_loop_t *loop, const char *target, uint64_t timeout_ns, grpc_probe_cb cb,
                     void *arg, void (*freed)(void *), void *freed_arg, grpc_probe_t **out,
                     char *err, size_t errlen)
{
    /* host:port[/service] */
    char hostport[256], host[200];
    const char *slash = strchr(target, '/');
    size_t hl = slash ? (size_t)(slash - target) : strlen(target);
    const char *service = slash ? slash + 1 : "";
    if (hl >= sizeof hostport || strlen(service) > 200) {
        snprintf(err, errlen, "gRPC target too long: %.64s", target);
        return -1;
    }
    memcpy(hostport, target, hl);
    hostport[hl] = '\0';
    const char *colon = strrchr(hostport, ':');
    if (!colon) {
        snprintf(err, errlen, "dial tcp: address %s: missing port in address", hostport);
        return -1;
    }
    size_t h = (size_t)(colon - hostport);
    if (h >= 2 && hostport[0] == '[' && hostport[h - 1] == ']')
        snprintf(host, sizeof host, "%.*s", (int)(h - 2), hostport + 1);
    else
        snprintf(host, sizeof host, "%.*s", (int)h, hostport);
    int port = atoi(colon + 1);
    struct sockaddr_storage ss;
    const char *ip = strcmp(host, "localhost") == 0 || !*host ? "127.0.0.1" : host;
    if (uv_ip4_addr(ip, port, (struct sockaddr_in *)&ss) &&
        uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&ss)) {
        snprintf(err, errlen, "dial tcp: lookup %s: no such host", host);
        return -1;
    }
    grpc_probe_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->loop = loop;
    p->cb = cb;
    p->arg = arg;
    p->freed = freed;
    p->freed_arg = freed_arg;
    p->grpc_status = -1;
    snprintf(p->target, sizeof p->target, "%s", target);
    /* the request: HealthCheckRequest { service = 1 (string) } behind the 5-byte prefix */
    size_t sl = strlen(service), body = sl ? 2 + sl : 0;
    p->req[0] = 0;
    p->req[1] = p->req[2] = p->req[3] = 0;
    p->req[4] = (uint8_t)body;
    if (sl) {
        p->req[5] = 0x0a;
        p->req[6] = (uint8_t)sl;
        memcpy(p->req + 7, service, sl);
    }
    p->req_len = 5 + body;
    uv_tcp_init(loop, &p->tcp);
    uv_timer_init(loop, &p->timer);
    p->tcp.data = p->timer.data = p->connect.data = p;
    p->handles = 2;
    uv_timer_start(&p->timer, on_timeout, (timeout_ns + 999999) / 1000000, 0);
    int rc = uv_tcp_connect(&p->connect, &p->tcp, (struct sockaddr *)&ss, on_connect);
    *out = p;
    if (rc) {
        char desc[200];
        snprintf(desc, sizeof desc, "connect: %s", uv_strerror(rc));
        rpc_error(p, 14, desc);
    }
    return 0;
}
