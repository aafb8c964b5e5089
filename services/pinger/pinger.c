/* pinger: a small HTTP/1.1 client that follows faultline's wiring contract, so tests can watch
 * links, faults and discovery through a real client. Its targets are the comma-separated
 * host:port list in the variable PINGER_TARGET_VAR names (default ECHO_ADDR: the links to an
 * `echo` service it `needs`), or, when PINGER_CONSUL_SERVICE names a service, the passing
 * instances of that service as its Consul agent (CONSUL_HTTP_ADDR) tells them: it watches
 * /v1/health/service/NAME?passing with blocking queries (index from X-Consul-Index, started
 * over when it goes backwards; wait PINGER_CONSUL_WAIT, default 10s), takes each entry's
 * Service.Address (Node.Address when empty) and Service.Port, replaces its targets at once on
 * every answer and logs "targets: [a,b] (index N)"; a failed query is retried after 100 ms,
 * doubling up to 2 s, and the targets stay as they were meanwhile. A dropped target's request
 * in flight still ends normally. Every PINGER_INTERVAL_MS (50) it sends one GET PINGER_PATH
 * ("/ping") to the next target, round robin: on a new connection each time, or with
 * PINGER_KEEPALIVE=1 on one persistent connection per target (reopened after a failure). A
 * target has at most one request in flight; a tick whose target is busy goes to the next free
 * one, or is skipped. A request unanswered after PINGER_TIMEOUT_MS (1000) fails. Each request
 * ends in one line:
 *
 *   ping seq=17 target=127.3.0.2:41234 result=ok status=200 ms=1.5 bytes=74 conn=9 instance=e-2
 *
 * result is ok (2xx), http_error (other status), refused, reset, timeout, closed (EOF before
 * a full response) or error; with no target at all (Consul lists none) a tick logs
 * result=no_target with target=- and sends nothing. status, bytes (of the body) and instance
 * (from an echo-svc JSON answer) are "-" when unknown; conn numbers connections in the order
 * they were opened (0: none); failures add error=<reason>. It listens on $BIND:$PORT and
 * answers GET /stats (JSON counts per result, and per current target), /healthz, and anything
 * else with {"instance","service","path"} and a "served" line, so pingers can call each
 * other. SIGTERM and SIGINT exit 0; a bad variable exits 2; a failed listen exits 1. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/dur.h"
#include "lib/backoff.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/hostport.h"
#include "lib/http.h"
#include "lib/httpc.h"
#include "lib/httpd.h"

#define MAX_HEAD (16 * 1024)
#define MAX_BODY (4 * 1024 * 1024)
#define MAX_MS 3600000L
#define MS 1000000ULL /* nanoseconds */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define QUERY_MIN_GAP_MS 50       /* between the starts of two health queries: a rate limit */
#define QUERY_SLACK_MS 5000       /* a blocking query may take wait + wait/16 + this */
#define MAX_CONSUL_BODY (4 << 20) /* a health answer larger than this is refused */

enum {
    RES_OK,
    RES_HTTP_ERROR,
    RES_REFUSED,
    RES_RESET,
    RES_TIMEOUT,
    RES_CLOSED,
    RES_ERROR,
    RES_NO_TARGET,
    NRESULTS
};
static const char *const result_names[NRESULTS] = {"ok",      "http_error", "refused", "reset",
                                                   "timeout", "closed",     "error",   "no_target"};

typedef struct pinger pinger_t;
typedef struct target target_t;

/* One TCP connection to a target, and the response being read on it. Freed when its handle
 * has closed; `target` is NULL once it is detached, so late callbacks know to do nothing. */
typedef struct {
    uv_tcp_t tcp;
    uv_connect_t creq;
    target_t *target;
    uint64_t id;
    int connected;
    fl_buf_t in; /* the response so far (a chunked body is decoded in place) */
    int have_head;
    int status;
    int keep_alive;
    int chunked;
    int until_eof; /* no Content-Length and not chunked: the body ends at EOF */
    int64_t content_length;
    size_t head_len;
    size_t body_end; /* chunked: where the decoded body ends in `in` */
    fl_http_chunked_t chunk;
    char rbuf[16 * 1024];
} conn_t;

/* A request being written; the bytes live with the request until libuv is done. */
typedef struct {
    uv_write_t req;
    char data[];
} wreq_t;

/* Where a target is: its address as logs show it, and as connect wants it. */
typedef struct {
    char addr[80];
    struct sockaddr_storage sa;
} endpoint_t;

/* A target lives from its creation to the close of its timer (target_close). A target Consul no
 * longer lists is retired: dropped from the list at once, closed when its request ends. */
struct target {
    pinger_t *p;
    char addr[80];
    struct sockaddr_storage sa;
    conn_t *conn;     /* the request's connection; with keep-alive, kept between requests */
    uv_timer_t timer; /* the request's timeout */
    int busy;
    int retired;
    target_t *next_retired;
    uint64_t seq;
    uint64_t t0;
    uint64_t counts[NRESULTS];
};

/* Discovery through a Consul agent's blocking health queries. */
typedef struct {
    const char *service; /* NULL: static targets */
    char addr[96];       /* CONSUL_HTTP_ADDR as given, for logs */
    char host[64];       /* an IP literal, as lib/httpc wants it */
    int port;
    const char *wait;
    uint64_t wait_ns;
    uint64_t index; /* X-Consul-Index of the last answer; 0 before the first */
    fl_httpc_req_t *req;
    uv_timer_t timer; /* starts the next query */
    fl_backoff_t backoff;
    uint64_t started; /* uv_now() at the start of the last query */
} discovery_t;

struct pinger {
    uv_loop_t *loop;
    const char *service;
    const char *instance;
    const char *bind;
    const char *path;
    int port;
    long interval_ms;
    long timeout_ms;
    int keepalive;
    endpoint_t *endpoints; /* PINGER_TARGET_VAR's, until the targets are made from them */
    size_t nendpoints;
    target_t **targets;
    size_t ntargets;
    target_t *retired; /* dropped targets whose request is still running */
    size_t next;
    uint64_t seq;
    uint64_t conns;
    uint64_t counts[NRESULTS]; /* every ping's, dropped targets' included */
    discovery_t consul;
    fl_httpd_t *httpd;
    uv_timer_t tick;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    int stopping;
    int exit_code;
};

/* One line per notable event on stdout, errors on stderr: "pinger[instance]: text". */
#define say(x, ...) fl_log_line(stdout, "pinger", (x)->instance, __VA_ARGS__)

#define complain(x, ...) fl_log_line(stderr, "pinger", (x)->instance, __VA_ARGS__)

static int result_of(int uv_err)
{
    switch (uv_err) {
    case UV_ECONNREFUSED:
        return RES_REFUSED;
    case UV_ECONNRESET:
    case UV_EPIPE:
    case UV_ECONNABORTED:
        return RES_RESET;
    case UV_ETIMEDOUT:
        return RES_TIMEOUT;
    case UV_EOF:
        return RES_CLOSED;
    default:
        return RES_ERROR;
    }
}

/* ------------------------------------------------------------ connections ---- */

static void conn_freed(uv_handle_t *h)
{
    conn_t *c = h->data;
    fl_buf_free(&c->in);
    free(c);
}

static void conn_close(conn_t *c)
{
    if (c->target && c->target->conn == c)
        c->target->conn = NULL;
    c->target = NULL;
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_freed);
}

static void response_reset(conn_t *c)
{
    fl_buf_reset(&c->in);
    c->have_head = c->status = c->keep_alive = c->chunked = c->until_eof = 0;
    c->content_length = -1;
    c->head_len = c->body_end = 0;
}

/* The body of a complete response, in c->in. */
static const char *response_body(const conn_t *c, size_t *len)
{
    if (c->chunked)
        *len = c->body_end - c->head_len;
    else if (c->until_eof)
        *len = c->in.len - c->head_len;
    else
        *len = (size_t)c->content_length;
    return c->in.data + c->head_len;
}

/* The "instance" of an echo-svc JSON answer, made safe for a log line; "" when absent. */
static void body_instance(const char *body, size_t len, char *out, size_t outlen)
{
    out[0] = '\0';
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *s = json_string_value(json_object_get(doc, "instance"));
    if (s) {
        size_t i;
        for (i = 0; s[i] && i + 1 < outlen; i++)
            out[i] = (s[i] > ' ' && s[i] < 0x7f) ? s[i] : '_';
        out[i] = '\0';
    }
    json_decref(doc);
}

static void target_close(target_t *t);
static void unlink_retired(target_t *t);

/* Ends the target's request with its result: one line on stdout, the counters, and the
 * connection closed unless it may carry the next request (and the target, if retired). */
static void finish(target_t *t, int result, const char *why)
{
    pinger_t *p = t->p;
    if (!t->busy)
        return;
    t->busy = 0;
    uv_timer_stop(&t->timer);
    conn_t *c = t->conn;
    int answered = c && (result == RES_OK || result == RES_HTTP_ERROR);
    char status[16] = "-", bytes[32] = "-", instance[64] = "";
    if (c && c->have_head)
        snprintf(status, sizeof status, "%d", c->status);
    if (answered) {
        size_t len;
        const char *body = response_body(c, &len);
        snprintf(bytes, sizeof bytes, "%zu", len);
        body_instance(body, len, instance, sizeof instance);
    }
    t->counts[result]++;
    p->counts[result]++;
    printf(
        "ping seq=%llu target=%s result=%s status=%s ms=%.3f bytes=%s conn=%llu instance=%s%s%s\n",
        (unsigned long long)t->seq, t->addr, result_names[result], status,
        (double)(uv_hrtime() - t->t0) / 1e6, bytes, c ? (unsigned long long)c->id : 0ULL,
        instance[0] ? instance : "-", why ? " error=" : "", why ? why : "");
    if (c && answered && p->keepalive && c->keep_alive)
        response_reset(c);
    else if (c)
        conn_close(c);
    if (t->retired) {
        unlink_retired(t);
        target_close(t);
    }
}

/* Parses what c->in holds: 1 when the response is complete, 0 when more is needed, or a
 * negative FL_E* code for a malformed or oversized response. */
static int parse(conn_t *c)
{
    while (!c->have_head) {
        fl_http_response_t res;
        int n = fl_http_parse_response(c->in.data, c->in.len, MAX_HEAD, &res);
        if (n == FL_EAGAIN)
            return 0;
        if (n < 0)
            return n;
        if (res.status < 200) { /* 1xx: an interim answer; the real one follows */
            fl_buf_consume(&c->in, (size_t)n);
            continue;
        }
        c->have_head = 1;
        c->head_len = c->body_end = (size_t)n;
        c->status = res.status;
        c->keep_alive = res.keep_alive;
        if (res.status == 204 || res.status == 304) {
            c->content_length = 0;
        } else if (res.chunked) {
            c->chunked = 1;
            fl_http_chunked_init(&c->chunk, MAX_BODY);
        } else if (res.content_length >= 0) {
            if (res.content_length > MAX_BODY)
                return FL_ETOOBIG;
            c->content_length = res.content_length;
        } else {
            c->until_eof = 1;
            c->keep_alive = 0;
        }
    }
    if (c->chunked) {
        size_t len = c->in.len - c->body_end;
        int rc = fl_http_chunked_decode(&c->chunk, c->in.data + c->body_end, &len);
        c->body_end += len;
        c->in.len = c->body_end; /* anything after the body is not ours: no pipelining */
        return rc >= 0 ? 1 : rc == FL_EAGAIN ? 0 : rc;
    }
    if (c->until_eof)
        return c->in.len - c->head_len > MAX_BODY ? FL_ETOOBIG : 0;
    return c->in.len - c->head_len >= (size_t)c->content_length;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

/* Input on a keep-alive connection with no request on it: the server closed it, reset it or
 * talks out of turn. Either way it is gone; the next request opens a new one. */
static void idle_input(conn_t *c, ssize_t n)
{
    target_t *t = c->target;
    const char *what = "unexpected data";
    if (n < 0)
        what = n == UV_EOF ? "EOF" : uv_err_name((int)n);
    say(t->p, "connection %llu to %s closed while idle (%s)", (unsigned long long)c->id, t->addr,
        what);
    conn_close(c);
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = stream->data;
    target_t *t = c->target;
    if (n == 0 || !t)
        return;
    if (!t->busy) {
        idle_input(c, n);
        return;
    }
    if (n == UV_EOF) {
        if (c->have_head && c->until_eof)
            finish(t, c->status / 100 == 2 ? RES_OK : RES_HTTP_ERROR, NULL);
        else
            finish(t, RES_CLOSED, "EOF");
        return;
    }
    if (n < 0) {
        finish(t, result_of((int)n), uv_err_name((int)n));
        return;
    }
    if (fl_buf_append(&c->in, buf->base, (size_t)n) != 0) {
        finish(t, RES_ERROR, "ENOMEM");
        return;
    }
    int rc = parse(c);
    if (rc > 0)
        finish(t, c->status / 100 == 2 ? RES_OK : RES_HTTP_ERROR, NULL);
    else if (rc < 0)
        finish(t, RES_ERROR, rc == FL_ETOOBIG ? "too_big" : "malformed");
}

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req->handle->data;
    free(req);
    target_t *t = c->target;
    if (status < 0 && t && t->conn == c)
        finish(t, result_of(status), uv_err_name(status));
}

static void send_request(conn_t *c)
{
    target_t *t = c->target;
    pinger_t *p = t->p;
    response_reset(c);
    fl_buf_t b = FL_BUF_INIT;
    wreq_t *w = NULL;
    if (fl_buf_printf(&b,
                      "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: faultline-pinger\r\n"
                      "Accept: */*\r\n%s\r\n",
                      p->path, t->addr, p->keepalive ? "" : "Connection: close\r\n") == 0 &&
        (w = malloc(sizeof *w + b.len)))
        memcpy(w->data, b.data, b.len);
    uv_buf_t buf = uv_buf_init(w ? w->data : NULL, (unsigned)b.len);
    fl_buf_free(&b);
    if (!w) {
        finish(t, RES_ERROR, "ENOMEM");
        return;
    }
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rc) {
        free(w);
        finish(t, result_of(rc), uv_err_name(rc));
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    target_t *t = c->target;
    if (!t) /* detached meanwhile (timeout, shutdown): status is UV_ECANCELED */
        return;
    if (status < 0) {
        finish(t, result_of(status), uv_err_name(status));
        return;
    }
    c->connected = 1;
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc) {
        finish(t, result_of(rc), uv_err_name(rc));
        return;
    }
    send_request(c);
}

static void open_conn(target_t *t)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        finish(t, RES_ERROR, "ENOMEM");
        return;
    }
    uv_tcp_init(t->p->loop, &c->tcp);
    c->tcp.data = c->creq.data = c;
    c->id = ++t->p->conns;
    c->target = t;
    t->conn = c;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&t->sa, on_connect);
    if (rc)
        finish(t, result_of(rc), uv_err_name(rc));
}

/* ------------------------------------------------------------ requests ---- */

static void on_request_timeout(uv_timer_t *timer)
{
    finish(timer->data, RES_TIMEOUT, "timeout");
}

static void start_request(target_t *t)
{
    pinger_t *p = t->p;
    t->busy = 1;
    t->seq = ++p->seq;
    t->t0 = uv_hrtime();
    uv_timer_start(&t->timer, on_request_timeout, (uint64_t)p->timeout_ms, 0);
    if (t->conn && t->conn->connected)
        send_request(t->conn);
    else
        open_conn(t);
}

/* A tick with nowhere to send: logged like a ping, so a scenario sees the gap. */
static void no_target(pinger_t *p)
{
    p->counts[RES_NO_TARGET]++;
    printf("ping seq=%llu target=- result=no_target status=- ms=0.000 bytes=- conn=0 "
           "instance=-\n",
           (unsigned long long)++p->seq);
}

static void on_tick(uv_timer_t *timer)
{
    pinger_t *p = timer->data;
    if (p->ntargets == 0) {
        no_target(p);
        return;
    }
    for (size_t k = 0; k < p->ntargets; k++) {
        size_t i = (p->next + k) % p->ntargets;
        if (!p->targets[i]->busy) {
            p->next = (i + 1) % p->ntargets;
            start_request(p->targets[i]);
            return;
        }
    }
}

/* ------------------------------------------------------------ targets ---- */

static void target_freed(uv_handle_t *h)
{
    free(h->data);
}

/* Abandons the target's request (if any, without a line), its connection and the target. */
static void target_close(target_t *t)
{
    t->busy = 0;
    if (t->conn)
        conn_close(t->conn);
    uv_close((uv_handle_t *)&t->timer, target_freed);
}

static void unlink_retired(target_t *t)
{
    target_t **at = &t->p->retired;
    while (*at && *at != t)
        at = &(*at)->next_retired;
    if (*at)
        *at = t->next_retired;
    t->retired = 0;
}

/* A target no longer listed: closed now, or when its request in flight ends. */
static void retire(target_t *t)
{
    if (!t->busy) {
        target_close(t);
        return;
    }
    t->retired = 1;
    t->next_retired = t->p->retired;
    t->p->retired = t;
}

static target_t *target_new(pinger_t *p, const endpoint_t *ep)
{
    target_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->p = p;
    memcpy(t->addr, ep->addr, sizeof t->addr);
    t->sa = ep->sa;
    uv_timer_init(p->loop, &t->timer);
    t->timer.data = t;
    return t;
}

/* Makes eps[0..n) the targets, in that order, at once: a target still listed keeps its
 * connection, request and counts; the others are retired. FL_ENOMEM leaves the list as it was. */
static int replace_targets(pinger_t *p, const endpoint_t *eps, size_t n)
{
    target_t **next = calloc(n ? n : 1, sizeof *next);
    char *kept = calloc(p->ntargets ? p->ntargets : 1, 1); /* kept[j]: targets[j] stays */
    if (!next || !kept)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < p->ntargets && !next[i]; j++) {
            if (!kept[j] && strcmp(p->targets[j]->addr, eps[i].addr) == 0) {
                kept[j] = 1;
                next[i] = p->targets[j];
            }
        }
        if (!next[i] && !(next[i] = target_new(p, &eps[i])))
            goto fail;
    }
    for (size_t j = 0; j < p->ntargets; j++)
        if (!kept[j])
            retire(p->targets[j]);
    free(kept);
    free(p->targets);
    p->targets = next;
    p->ntargets = n;
    p->next = n ? p->next % n : 0;
    return 0;
fail:
    for (size_t i = 0; next && i < n && next[i]; i++) {
        int fresh = 1;
        for (size_t j = 0; j < p->ntargets; j++)
            fresh &= p->targets[j] != next[i];
        if (fresh)
            target_close(next[i]);
    }
    free(next);
    free(kept);
    return FL_ENOMEM;
}

/* ------------------------------------------------------------ serving ---- */

static json_t *counts_json(const uint64_t *counts)
{
    json_t *o = json_object();
    for (int r = 0; r < NRESULTS; r++)
        json_object_set_new(o, result_names[r], json_integer((json_int_t)counts[r]));
    return o;
}

static void respond_json(fl_httpd_exchange_t *ex, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (text)
        fl_httpd_respond(ex, 200, NULL, "application/json", text, strlen(text));
    else
        fl_httpd_respond(ex, 500, NULL, "text/plain", "out of memory\n", 14);
    free(text);
    json_decref(doc);
}

/* Counts of every ping logged ("requests", no_target included), and per current target. */
static void respond_stats(pinger_t *p, fl_httpd_exchange_t *ex)
{
    json_t *targets = json_object();
    for (size_t i = 0; i < p->ntargets; i++)
        json_object_set_new(targets, p->targets[i]->addr, counts_json(p->targets[i]->counts));
    json_int_t done = 0;
    for (int r = 0; r < NRESULTS; r++)
        done += (json_int_t)p->counts[r];
    respond_json(ex, json_pack("{s:s, s:I, s:I, s:o, s:o}", "instance", p->instance, "requests",
                               done, "connections", (json_int_t)p->conns, "results",
                               counts_json(p->counts), "targets", targets));
}

static void handle(fl_httpd_exchange_t *ex, void *arg)
{
    pinger_t *p = arg;
    const char *path = fl_httpd_path(ex);
    if (strcmp(path, "/stats") == 0) {
        respond_stats(p, ex);
    } else if (strcmp(path, "/healthz") == 0) {
        fl_httpd_respond(ex, 200, NULL, "text/plain", "ok", 2);
    } else {
        say(p, "served %s %s for %s", fl_httpd_method(ex), path, fl_httpd_exchange_peer(ex));
        respond_json(ex, json_pack("{s:s, s:s, s:s}", "instance", p->instance, "service",
                                   p->service, "path", path));
    }
}

/* ------------------------------------------------------------ discovery ---- */

/* Fills ep from an IP literal ("localhost" counts as 127.0.0.1) and a port; FL_ESYNTAX when
 * host is no IP address. */
static int endpoint_set(endpoint_t *ep, const char *host, int port)
{
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ep->sa) == 0) {
        snprintf(ep->addr, sizeof ep->addr, "%s:%d", host, port);
        return 0;
    }
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ep->sa) == 0) {
        snprintf(ep->addr, sizeof ep->addr, "[%s]:%d", host, port);
        return 0;
    }
    return FL_ESYNTAX;
}

/* The endpoints a health answer lists: each entry's Service.Address (Node.Address when that
 * is empty) and Service.Port, once each, in the answer's order. Entries without a usable IP
 * address and port are skipped with a line. FL_EMALFORMED (with *why) or FL_ENOMEM. */
static int health_endpoints(pinger_t *p, const char *body, size_t len, endpoint_t **out, size_t *n,
                            const char **why)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    endpoint_t *eps = NULL;
    size_t i, k = 0;
    json_t *entry;
    int rc = FL_EMALFORMED;
    *why = "not a JSON array";
    if (!json_is_array(doc))
        goto fail;
    rc = FL_ENOMEM;
    *why = "out of memory";
    if (!(eps = calloc(json_array_size(doc) + 1, sizeof *eps)))
        goto fail;
    json_array_foreach(doc, i, entry)
    {
        json_t *svc = json_object_get(entry, "Service");
        const char *host = json_string_value(json_object_get(svc, "Address"));
        json_int_t port = json_integer_value(json_object_get(svc, "Port"));
        if (!host || !*host)
            host = json_string_value(json_object_get(json_object_get(entry, "Node"), "Address"));
        if (!host || port < 1 || port > 65535 || endpoint_set(&eps[k], host, (int)port)) {
            say(p, "ignoring entry %zu of the health answer: no IP address and port", i);
            continue;
        }
        size_t j = 0;
        while (j < k && strcmp(eps[j].addr, eps[k].addr) != 0)
            j++;
        k += j == k; /* a duplicate is not kept: the next entry takes its place */
    }
    json_decref(doc);
    *out = eps;
    *n = k;
    return 0;
fail:
    json_decref(doc);
    free(eps);
    return rc;
}

static void query_consul(pinger_t *p);

static void on_query_timer(uv_timer_t *timer)
{
    query_consul(timer->data);
}

static void query_failed(pinger_t *p, const char *why)
{
    char delay[32];
    uint64_t ms = fl_backoff_next(&p->consul.backoff);
    fl_dur_format(ms * MS, delay, sizeof delay);
    complain(p, "consul query failed: %s (retrying in %s)", why, delay);
    uv_timer_start(&p->consul.timer, on_query_timer, ms, 0);
}

/* Follows X-Consul-Index as Consul's documentation asks: an index that goes backwards starts
 * the watch over from 0, and the index waited on is never 0 after an answer (0 does not
 * block). */
static void follow_index(pinger_t *p, uint64_t index)
{
    if (index < p->consul.index) {
        say(p, "consul index went back from %llu to %llu: starting over",
            (unsigned long long)p->consul.index, (unsigned long long)index);
        p->consul.index = 0;
    } else {
        p->consul.index = index ? index : 1;
    }
}

static void log_targets(pinger_t *p, uint64_t index)
{
    fl_buf_t b = FL_BUF_INIT;
    int rc = fl_buf_puts(&b, "[");
    for (size_t i = 0; i < p->ntargets && !rc; i++)
        rc = fl_buf_printf(&b, "%s%s", i ? "," : "", p->targets[i]->addr);
    if (!rc)
        rc = fl_buf_puts(&b, "]");
    say(p, "targets: %s (index %llu)", rc ? "[?]" : b.data, (unsigned long long)index);
    fl_buf_free(&b);
}

static void on_health(void *arg, const fl_httpc_result_t *res)
{
    pinger_t *p = arg;
    char why[160];
    const char *bad;
    endpoint_t *eps;
    size_t n;
    uint64_t index;
    p->consul.req = NULL;
    if (res->error || res->status != 200) {
        fl_httpc_describe(res, why, sizeof why);
        query_failed(p, why);
        return;
    }
    if (fl_http_header_u64(res->headers, res->nheaders, "X-Consul-Index", &index)) {
        query_failed(p, "no valid X-Consul-Index in the answer");
        return;
    }
    if (health_endpoints(p, res->body, res->body_len, &eps, &n, &bad)) {
        snprintf(why, sizeof why, "bad answer: %s", bad);
        query_failed(p, why);
        return;
    }
    int rc = replace_targets(p, eps, n);
    free(eps);
    if (rc) {
        query_failed(p, fl_strerror(rc));
        return;
    }
    log_targets(p, index);
    follow_index(p, index);
    fl_backoff_reset(&p->consul.backoff);
    uint64_t since = uv_now(p->loop) - p->consul.started;
    uv_timer_start(&p->consul.timer, on_query_timer,
                   since < QUERY_MIN_GAP_MS ? QUERY_MIN_GAP_MS - since : 0, 0);
}

static void query_consul(pinger_t *p)
{
    fl_buf_t target = FL_BUF_INIT;
    int rc = fl_buf_puts(&target, "/v1/health/service/");
    if (!rc)
        rc = fl_buf_append_escaped(&target, p->consul.service);
    if (!rc)
        rc = fl_buf_printf(&target, "?passing&index=%llu&wait=%s",
                           (unsigned long long)p->consul.index, p->consul.wait);
    if (!rc) {
        fl_httpc_opts_t o = {.host = p->consul.host,
                             .port = p->consul.port,
                             .target = target.data,
                             .timeout_ns =
                                 p->consul.wait_ns + p->consul.wait_ns / 16 + QUERY_SLACK_MS * MS,
                             .max_body = MAX_CONSUL_BODY};
        p->consul.started = uv_now(p->loop);
        rc = fl_httpc_request(p->loop, &o, on_health, p, &p->consul.req);
    }
    fl_buf_free(&target);
    if (rc)
        query_failed(p, fl_strerror(rc));
}

/* ------------------------------------------------------------ lifecycle ---- */

static void on_httpd_closed(fl_httpd_t *h, void *arg)
{
    say((pinger_t *)arg, "stopped");
}

static void stop(pinger_t *p, const char *why)
{
    if (p->stopping)
        return;
    p->stopping = 1;
    say(p, "stopping on %s", why);
    uv_close((uv_handle_t *)&p->tick, NULL);
    uv_close((uv_handle_t *)&p->sigterm, NULL);
    uv_close((uv_handle_t *)&p->sigint, NULL);
    uv_close((uv_handle_t *)&p->consul.timer, NULL);
    if (p->consul.req)
        fl_httpc_cancel(p->consul.req);
    p->consul.req = NULL;
    for (size_t i = 0; i < p->ntargets; i++)
        target_close(p->targets[i]);
    p->ntargets = 0;
    while (p->retired) {
        target_t *t = p->retired;
        unlink_retired(t);
        target_close(t);
    }
    if (p->httpd)
        fl_httpd_close(p->httpd, on_httpd_closed, p);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    stop(sig->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ------------------------------------------------------------ configuration ---- */

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* Parses a whole decimal string within [min, max]. */
static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < min || v > max)
        return FL_ERANGE;
    *out = v;
    return 0;
}

static int env_long(const pinger_t *p, const char *name, const char *def, long min, long max,
                    long *out)
{
    const char *s = env_or(name, def);
    if (parse_long(s, min, max, out) == 0)
        return 0;
    complain(p, "bad %s '%s': want an integer in %ld..%ld", name, s, min, max);
    return FL_ERANGE;
}

/* Fills p->endpoints from the comma-separated host:port list in `list`; each keeps its
 * address as written there. */
static int parse_targets(pinger_t *p, const char *var, const char *list)
{
    size_t n = 1;
    for (const char *s = list; *s; s++)
        n += *s == ',';
    p->endpoints = calloc(n, sizeof *p->endpoints);
    if (!p->endpoints)
        return FL_ENOMEM;
    const char *s = list;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(s, ",");
        char item[80], host[64];
        int port;
        endpoint_t *ep = &p->endpoints[p->nendpoints];
        if (len >= sizeof item)
            len = sizeof item - 1; /* too long to be an address: fails below */
        memcpy(item, s, len);
        item[len] = '\0';
        s += strcspn(s, ",") + (s[strcspn(s, ",")] == ',');
        if (fl_hostport_parse(item, 0, host, sizeof host, &port) != 0 ||
            endpoint_set(ep, host, port) != 0) {
            complain(p, "bad target '%s' in %s: want IP:PORT[,IP:PORT...]", item, var);
            return FL_ESYNTAX;
        }
        snprintf(ep->addr, sizeof ep->addr, "%s", item);
        p->nendpoints++;
    }
    return 0;
}

/* CONSUL_HTTP_ADDR: "IP:PORT", "localhost:PORT", with or without "http://". */
static int parse_consul_addr(const char *s, char *host, size_t hostlen, int *port)
{
    endpoint_t ep;
    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    if (fl_hostport_parse(s, 0, host, hostlen, port) || endpoint_set(&ep, host, *port))
        return FL_ESYNTAX;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, hostlen, "127.0.0.1");
    return 0;
}

/* Discovery settings, when PINGER_CONSUL_SERVICE is set. The wait goes to Consul as written,
 * so it must be a duration Go parses: digits, '.', and a unit on the end. */
static int configure_consul(pinger_t *p)
{
    discovery_t *c = &p->consul;
    const char *addr = getenv("CONSUL_HTTP_ADDR");
    c->service = env_or("PINGER_CONSUL_SERVICE", NULL);
    if (!c->service)
        return 0;
    if (!addr || !*addr) {
        complain(p, "PINGER_CONSUL_SERVICE is set but CONSUL_HTTP_ADDR is not: want IP:PORT");
        return FL_EINVAL;
    }
    if (strlen(addr) >= sizeof c->addr ||
        parse_consul_addr(addr, c->host, sizeof c->host, &c->port)) {
        complain(p, "bad CONSUL_HTTP_ADDR '%s': want IP:PORT", addr);
        return FL_ESYNTAX;
    }
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    c->wait = env_or("PINGER_CONSUL_WAIT", "10s");
    size_t len = strlen(c->wait);
    if (fl_dur_parse(c->wait, &c->wait_ns) || c->wait_ns == 0 ||
        strspn(c->wait, "0123456789.nsuhm") != len || strchr("0123456789.", c->wait[len - 1])) {
        complain(p, "bad PINGER_CONSUL_WAIT '%s': want a duration such as 10s or 500ms", c->wait);
        return FL_ESYNTAX;
    }
    fl_backoff_init(&c->backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    return 0;
}

/* Reads the environment into p; messages on stderr and FL_E* on any mistake. */
static int configure(pinger_t *p)
{
    long v;
    p->service = env_or("SERVICE_NAME", "pinger");
    p->instance = env_or("INSTANCE_ID", p->service);
    p->bind = env_or("BIND", "127.0.0.1");
    p->path = env_or("PINGER_PATH", "/ping");
    if (env_long(p, "PORT", "8081", 0, 65535, &v))
        return FL_ERANGE;
    p->port = (int)v;
    if (env_long(p, "PINGER_INTERVAL_MS", "50", 1, MAX_MS, &p->interval_ms) ||
        env_long(p, "PINGER_TIMEOUT_MS", "1000", 1, MAX_MS, &p->timeout_ms) ||
        env_long(p, "PINGER_KEEPALIVE", "0", 0, 1, &v))
        return FL_ERANGE;
    p->keepalive = (int)v;
    for (const char *c = p->path; *c; c++)
        if (*c <= ' ' || *c >= 0x7f)
            p->path = "";
    if (p->path[0] != '/') {
        complain(p, "bad PINGER_PATH: want /path?query with no spaces");
        return FL_ESYNTAX;
    }
    int rc = configure_consul(p);
    if (rc || p->consul.service)
        return rc;
    const char *var = env_or("PINGER_TARGET_VAR", "ECHO_ADDR");
    const char *list = getenv(var);
    if (!list || !*list) {
        complain(p,
                 "%s is not set: want IP:PORT[,IP:PORT...] (PINGER_TARGET_VAR names the "
                 "variable to read)",
                 var);
        return FL_EINVAL;
    }
    return parse_targets(p, var, list);
}

static void announce(pinger_t *p)
{
    const char *ka = p->keepalive ? " (keep-alive)" : "";
    if (p->consul.service)
        say(p,
            "listening on %s:%d; pinging the passing instances of %s from consul at %s "
            "every %ld ms%s",
            p->bind, fl_httpd_port(p->httpd), p->consul.service, p->consul.addr, p->interval_ms,
            ka);
    else
        say(p, "listening on %s:%d; pinging %zu target%s every %ld ms%s", p->bind,
            fl_httpd_port(p->httpd), p->ntargets, p->ntargets == 1 ? "" : "s", p->interval_ms, ka);
}

int main(void)
{
    uv_loop_t loop;
    pinger_t p;

    setvbuf(stdout, NULL, _IOLBF, 0); /* one line per request reaches a pipe at once */
    setvbuf(stderr, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error code, not a death */

    memset(&p, 0, sizeof p);
    int rc = configure(&p);
    if (rc) {
        free(p.endpoints);
        return rc == FL_ENOMEM ? 1 : 2;
    }
    if (uv_loop_init(&loop)) {
        complain(&p, "cannot create the event loop");
        free(p.endpoints);
        return 1;
    }
    p.loop = &loop;
    uv_signal_init(&loop, &p.sigterm);
    uv_signal_init(&loop, &p.sigint);
    uv_timer_init(&loop, &p.tick);
    uv_timer_init(&loop, &p.consul.timer);
    p.sigterm.data = p.sigint.data = p.tick.data = p.consul.timer.data = &p;
    uv_signal_start(&p.sigterm, on_signal, SIGTERM);
    uv_signal_start(&p.sigint, on_signal, SIGINT);
    rc = replace_targets(&p, p.endpoints, p.nendpoints);
    free(p.endpoints);
    p.endpoints = NULL;

    fl_httpd_config_t cfg = {.handler = handle, .arg = &p};
    if (rc) {
        complain(&p, "cannot make the targets: %s", fl_strerror(rc));
        p.exit_code = 1;
        stop(&p, "out of memory");
    } else if ((rc = fl_httpd_start(&loop, p.bind, p.port, &cfg, &p.httpd))) {
        complain(&p, "cannot listen on %s:%d: %s", p.bind, p.port, fl_strerror(rc));
        p.httpd = NULL;
        p.exit_code = 1;
        stop(&p, "listen failure");
    } else {
        announce(&p);
        if (p.consul.service)
            query_consul(&p);
        uv_timer_start(&p.tick, on_tick, 0, (uint64_t)p.interval_ms);
    }

    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    free(p.targets);
    if (rc) {
        complain(&p, "handles left open at exit: %s", uv_strerror(rc));
        return 1;
    }
    return p.exit_code;
}
