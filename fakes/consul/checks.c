/* The checks an agent runs, one runner per check: HTTP through lib/httpc (2xx passing, 429
 * warning, anything else critical, with Consul's output "HTTP GET <url>: 200 OK Output: ..."
 * and Go's wording for failures), TCP connect, TTL (critical once the TTL passes without an
 * update), and gRPC, which this fake does not speak yet (critical, saying so). Interval checks
 * first run within 10 ms of registration (Consul waits a random part of the interval), then
 * every interval (at least 10 ms, Consul's minimum).
 *
 * A runner keeps what its check found (real_status); what the catalog shows is that, unless
 * the flap fault overrides it, and nothing is shown while the catalog is frozen (the thaw
 * shows the latest). DeregisterCriticalServiceAfter is honoured to the millisecond from when
 * the check went critical; Consul's 1-minute minimum and 30-second reaper period are not
 * applied, so that tests can use "1s". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakes/consul/grpccheck.h"
#include "fakes/consul/internal.h"
#include "lib/err.h"
#include "lib/httpc.h"

#define MIN_INTERVAL_NS 10000000ull       /* 10 ms */
#define FIRST_RUN_MAX_MS 10               /* first run within this of registration */
#define DEFAULT_TIMEOUT_NS 10000000000ull /* Consul's default for HTTP and TCP checks */
#define OUTPUT_MAX 4096
#define HTTP_MAX_BODY (1024 * 1024)

enum { RUN_HTTP, RUN_TCP, RUN_TTL, RUN_GRPC, RUN_UNSUPPORTED };

typedef struct probe probe_t;

struct runner {
    uv_timer_t timer; /* the next run, or the TTL */
    uv_timer_t reap;  /* DeregisterCriticalServiceAfter */
    fl_consul_t *c;
    runner_t *prev, *next;
    char *node, *id, *service_id, *service_name;
    checkdef_t *def;
    int kind;
    int real_status;
    char *real_output;
    char *ttl_output;        /* the last TTL update's output, for "TTL expired (...)" */
    uint64_t critical_since; /* uv_hrtime(), 0 when not critical */
    int reap_due;            /* the reap timer fired while frozen */
    int stopped;
    int handles;
    fl_httpc_req_t *http;
    probe_t *probe;
    grpc_probe_t *grpc;
    /* an HTTP check's URL, parsed */
    char host[128], addr[160];
    int port;
    char *target;
    const char *url_error; /* why the URL cannot be used, or NULL */
};

struct probe {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_timer_t timer;
    fl_consul_t *c;
    runner_t *r; /* NULL once the runner has stopped */
    int handles;
    int done;
};

struct flap {
    uv_timer_t timer;
    fl_consul_t *c;
    flap_t *next;
    char *service;
    uint64_t period;
    int passing;
    int stopped;
};

/* ------------------------------------------------------------ showing results ---- */

static void on_reap(uv_timer_t *t);

static void track_critical(runner_t *r, int status)
{
    if (status != ST_CRITICAL) {
        r->critical_since = 0;
        uv_timer_stop(&r->reap);
        return;
    }
    if (r->critical_since)
        return;
    r->critical_since = uv_hrtime();
    if (r->def->dereg_after && *r->service_id)
        uv_timer_start(&r->reap, on_reap, (r->def->dereg_after + 999999) / 1000000, 0);
}

/* Puts what the catalog should show for r there: its own result, or the flap's. */
static void show(runner_t *r)
{
    fl_consul_t *c = r->c;
    if (c->frozen || r->stopped)
        return;
    int flap = flap_status(c, r->service_name);
    int status = flap >= 0 ? flap : r->real_status;
    const char *output =
        flap >= 0 ? (flap == ST_PASSING ? "faultline flap: passing" : "faultline flap: critical")
                  : r->real_output;
    cat_set_check(c, r->node, r->id, status, output ? output : "");
    track_critical(r, status);
}

static void result(runner_t *r, int status, const char *output)
{
    char *out = strdup_max(output, OUTPUT_MAX);
    if (out) {
        free(r->real_output);
        r->real_output = out;
    }
    r->real_status = status;
    show(r);
}

static void reap_now(runner_t *r)
{
    char why[96], dur[40];
    go_duration_string((long long)r->def->dereg_after, dur);
    snprintf(why, sizeof why, ": check %s critical for longer than %s", r->id, dur);
    char *node = strdup(r->node), *sid = strdup(r->service_id);
    if (node && sid)
        agent_remove_service(r->c, node, sid, why); /* stops r too */
    free(node);
    free(sid);
}

static void on_reap(uv_timer_t *t)
{
    runner_t *r = t->data;
    if (r->stopped)
        return;
    if (r->c->frozen) {
        r->reap_due = 1;
        return;
    }
    reap_now(r);
}

/* ------------------------------------------------------------ HTTP ---- */

/* Splits "http://host[:port]/path?query". Unusable URLs leave url_error set. */
static void parse_url(runner_t *r)
{
    const char *u = r->def->http;
    const char *p = strstr(u, "://");
    r->port = 80;
    if (!p || (size_t)(p - u) != 4 || strncasecmp(u, "http", 4) != 0) {
        r->url_error = p && strncasecmp(u, "https://", 8) == 0
                           ? "HTTPS checks are not supported by this fake"
                           : "unsupported protocol scheme";
        return;
    }
    p += 3;
    size_t hlen = strcspn(p, "/?#");
    char hostport[128];
    if (hlen == 0 || hlen >= sizeof hostport) {
        r->url_error = "no Host in request URL";
        return;
    }
    memcpy(hostport, p, hlen);
    hostport[hlen] = '\0';
    char *colon = strrchr(hostport, ':');
    if (colon && (hostport[0] != '[' || colon > strchr(hostport, ']'))) {
        *colon = '\0';
        r->port = atoi(colon + 1);
    }
    char *h = hostport;
    if (*h == '[') {
        h++;
        h[strcspn(h, "]")] = '\0';
    }
    snprintf(r->host, sizeof r->host, "%s", strcmp(h, "localhost") == 0 ? "127.0.0.1" : h);
    snprintf(r->addr, sizeof r->addr, strchr(r->host, ':') ? "[%s]:%d" : "%s:%d", r->host, r->port);
    const char *rest = p + hlen;
    size_t tlen = strcspn(rest, "#");
    r->target = malloc(tlen + 2);
    if (r->target)
        snprintf(r->target, tlen + 2, "%s%.*s", *rest == '/' ? "" : "/", (int)tlen, rest);
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    if (uv_ip4_addr(r->host, r->port, &a4) && uv_ip6_addr(r->host, r->port, &a6))
        r->url_error = "lookup";
}

/* Go's url.Error verb: "Get", "Post"... */
static void verb(const char *method, char *out, size_t n)
{
    snprintf(out, n, "%s", method);
    for (size_t i = 1; out[i]; i++)
        out[i] = (char)(out[i] >= 'A' && out[i] <= 'Z' ? out[i] + 32 : out[i]);
}

static const char *method_of(const runner_t *r)
{
    return r->def->method && *r->def->method ? r->def->method : "GET";
}

static void http_failed(runner_t *r, int err)
{
    char v[16], out[1024];
    const char *url = r->def->http;
    verb(method_of(r), v, sizeof v);
    if (err == FL_ETIMEOUT)
        snprintf(out, sizeof out,
                 "%s \"%s\": context deadline exceeded (Client.Timeout exceeded while awaiting "
                 "headers)",
                 v, url);
    else if (err == FL_ECLOSED)
        snprintf(out, sizeof out, "%s \"%s\": EOF", v, url);
    else if (err == FL_EMALFORMED)
        snprintf(out, sizeof out,
                 "%s \"%s\": net/http: HTTP/1.x transport connection broken: malformed HTTP "
                 "response",
                 v, url);
    else if (err == FL_ETOOBIG)
        snprintf(out, sizeof out, "%s \"%s\": response body too large", v, url);
    else if (err == UV_ECONNREFUSED || err == UV_ENETUNREACH || err == UV_EHOSTUNREACH ||
             err == UV_EADDRNOTAVAIL || err == UV_ETIMEDOUT)
        snprintf(out, sizeof out, "%s \"%s\": dial tcp %s: connect: %s", v, url, r->addr,
                 uv_strerror(err));
    else
        snprintf(out, sizeof out, "%s \"%s\": read tcp %s: read: %s", v, url, r->addr,
                 err < 0 && err > -4096 ? uv_strerror(err) : fl_strerror(err));
    result(r, ST_CRITICAL, out);
}

static void on_http(void *arg, const fl_httpc_result_t *res)
{
    runner_t *r = arg;
    r->http = NULL;
    if (res->error) {
        http_failed(r, res->error);
        return;
    }
    size_t skip = res->body_len > OUTPUT_MAX ? res->body_len - OUTPUT_MAX : 0;
    fl_buf_t out = FL_BUF_INIT;
    fl_buf_printf(&out, "HTTP %s %s: %d %s Output: ", method_of(r), r->def->http, res->status,
                  fl_http_status_text(res->status));
    fl_buf_append(&out, res->body + skip, res->body_len - skip);
    int status = res->status >= 200 && res->status <= 299 ? ST_PASSING
                 : res->status == 429                     ? ST_WARNING
                                                          : ST_CRITICAL;
    result(r, status, out.data ? out.data : "");
    fl_buf_free(&out);
}

/* Consul's default headers, then the check's own. */
static void http_headers(const runner_t *r, fl_buf_t *b)
{
    const json_t *h = r->def->header;
    if (!json_object_get(h, "User-Agent"))
        fl_buf_puts(b, "User-Agent: Consul Health Check\r\n");
    if (!json_object_get(h, "Accept"))
        fl_buf_puts(b, "Accept: text/plain, text/*, */*\r\n");
    const char *k;
    json_t *vals;
    json_object_foreach((json_t *)h, k, vals)
    {
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v)
        {
            fl_buf_printf(b, "%s: %s\r\n", k, json_string_value(v));
        }
    }
}

static void run_http(runner_t *r)
{
    char v[16], out[512];
    if (r->http)
        return; /* the previous run is still waiting for its answer */
    if (r->url_error) {
        verb(method_of(r), v, sizeof v);
        if (strcmp(r->url_error, "lookup") == 0)
            snprintf(out, sizeof out, "%s \"%s\": dial tcp: lookup %s: no such host", v,
                     r->def->http, r->host);
        else
            snprintf(out, sizeof out, "%s \"%s\": %s", v, r->def->http, r->url_error);
        result(r, ST_CRITICAL, out);
        return;
    }
    fl_buf_t headers = FL_BUF_INIT;
    http_headers(r, &headers);
    fl_httpc_opts_t o = {
        .method = method_of(r),
        .host = r->host,
        .port = r->port,
        .target = r->target,
        .headers = headers.data,
        .body = r->def->body,
        .body_len = r->def->body ? strlen(r->def->body) : 0,
        .timeout_ns = r->def->timeout ? r->def->timeout : DEFAULT_TIMEOUT_NS,
        .max_body = HTTP_MAX_BODY,
    };
    int rc = fl_httpc_request(r->c->loop, &o, on_http, r, &r->http);
    fl_buf_free(&headers);
    if (rc) {
        r->http = NULL;
        http_failed(r, rc);
    }
}

/* ------------------------------------------------------------ TCP ---- */

static void probe_closed(uv_handle_t *h)
{
    probe_t *p = h->data;
    fl_consul_t *c = p->c;
    if (--p->handles)
        return;
    free(p);
    c->handles--;
    consul_maybe_closed(c);
}

static void probe_end(probe_t *p, int status, const char *output)
{
    if (p->done)
        return;
    p->done = 1;
    runner_t *r = p->r;
    if (r) {
        r->probe = NULL;
        result(r, status, output);
    }
    uv_close((uv_handle_t *)&p->tcp, probe_closed);
    uv_close((uv_handle_t *)&p->timer, probe_closed);
}

static void on_probe_connect(uv_connect_t *req, int status)
{
    probe_t *p = container_of(req, probe_t, connect);
    if (p->done || status == UV_ECANCELED)
        return;
    char out[256];
    const char *addr = p->r ? p->r->def->tcp : "";
    if (status == 0)
        snprintf(out, sizeof out, "TCP connect %s: Success", addr);
    else
        snprintf(out, sizeof out, "dial tcp %s: connect: %s", addr, uv_strerror(status));
    probe_end(p, status == 0 ? ST_PASSING : ST_CRITICAL, out);
}

static void on_probe_timeout(uv_timer_t *t)
{
    probe_t *p = t->data;
    char out[256];
    snprintf(out, sizeof out, "dial tcp %s: i/o timeout", p->r ? p->r->def->tcp : "");
    probe_end(p, ST_CRITICAL, out);
}

/* Go's net.SplitHostPort, then an IP literal (or localhost). 0, or -1 with Go's error. */
static int tcp_addr(const char *s, struct sockaddr_storage *ss, char *err, size_t n)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon) {
        snprintf(err, n, "dial tcp: address %s: missing port in address", s);
        return -1;
    }
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        s++;
        hlen -= 2;
    }
    if (hlen >= sizeof host)
        hlen = sizeof host - 1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    int port = atoi(colon + 1);
    const char *ip = strcmp(host, "localhost") == 0 || !*host ? "127.0.0.1" : host;
    if (uv_ip4_addr(ip, port, (struct sockaddr_in *)ss) &&
        uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ss)) {
        snprintf(err, n, "dial tcp: lookup %s: no such host", host);
        return -1;
    }
    return 0;
}

static void run_tcp(runner_t *r)
{
    if (r->probe)
        return;
    struct sockaddr_storage ss;
    char err[256];
    memset(&ss, 0, sizeof ss);
    if (tcp_addr(r->def->tcp, &ss, err, sizeof err) < 0) {
        result(r, ST_CRITICAL, err);
        return;
    }
    probe_t *p = calloc(1, sizeof *p);
    if (!p)
        return;
    p->c = r->c;
    p->r = r;
    uv_tcp_init(r->c->loop, &p->tcp);
    uv_timer_init(r->c->loop, &p->timer);
    p->tcp.data = p->timer.data = p;
    p->handles = 2;
    r->c->handles++;
    r->probe = p;
    uint64_t timeout = r->def->timeout ? r->def->timeout : DEFAULT_TIMEOUT_NS;
    uv_timer_start(&p->timer, on_probe_timeout, (timeout + 999999) / 1000000, 0);
    int rc = uv_tcp_connect(&p->connect, &p->tcp, (struct sockaddr *)&ss, on_probe_connect);
    if (rc) {
        snprintf(err, sizeof err, "dial tcp %s: connect: %s", r->def->tcp, uv_strerror(rc));
        probe_end(p, ST_CRITICAL, err);
    }
}

/* ------------------------------------------------------------ gRPC ---- */

static void on_grpc(void *arg, int passing, const char *output)
{
    runner_t *r = arg;
    r->grpc = NULL;
    result(r, passing ? ST_PASSING : ST_CRITICAL, output);
}

static void grpc_freed(void *arg)
{
    fl_consul_t *c = arg;
    c->handles--;
    consul_maybe_closed(c);
}

static void run_grpc(runner_t *r)
{
    if (r->grpc)
        return;
    char err[256];
    if (r->def->grpc_use_tls) {
        result(r, ST_CRITICAL, "gRPC checks over TLS are not supported by this fake");
        return;
    }
    uint64_t timeout = r->def->timeout ? r->def->timeout : DEFAULT_TIMEOUT_NS;
    r->c->handles++;
    if (grpc_probe_start(r->c->loop, r->def->grpc, timeout, on_grpc, r, grpc_freed, r->c, &r->grpc,
                         err, sizeof err) < 0) {
        r->c->handles--;
        result(r, ST_CRITICAL, err);
    }
}

/* ------------------------------------------------------------ running ---- */

static void run(runner_t *r)
{
    char out[128];
    switch (r->kind) {
    case RUN_HTTP:
        run_http(r);
        break;
    case RUN_TCP:
        run_tcp(r);
        break;
    case RUN_GRPC:
        run_grpc(r);
        break;
    default:
        snprintf(out, sizeof out, "%s checks are not supported by this fake",
                 r->def->type && *r->def->type ? r->def->type : "these");
        result(r, ST_CRITICAL, out);
    }
}

static uint64_t interval_ms(const runner_t *r)
{
    uint64_t ns = r->def->interval < MIN_INTERVAL_NS ? MIN_INTERVAL_NS : r->def->interval;
    return (ns + 999999) / 1000000;
}

static void on_tick(uv_timer_t *t)
{
    runner_t *r = t->data;
    if (!r->stopped)
        run(r);
}

static void ttl_expired(runner_t *r)
{
    fl_buf_t out = FL_BUF_INIT;
    fl_buf_puts(&out, "TTL expired");
    if (r->ttl_output && *r->ttl_output)
        fl_buf_printf(&out, " (last output before timeout follows): %s", r->ttl_output);
    result(r, ST_CRITICAL, out.data ? out.data : "TTL expired");
    fl_buf_free(&out);
}

static void on_ttl(uv_timer_t *t)
{
    runner_t *r = t->data;
    if (!r->stopped)
        ttl_expired(r);
}

static void start_timer(fl_consul_t *c, runner_t *r)
{
    if (r->kind == RUN_TTL) {
        uv_timer_start(&r->timer, on_ttl, (r->def->ttl + 999999) / 1000000, 0);
        return;
    }
    uint64_t first = fl_rng_below(&c->rng, FIRST_RUN_MAX_MS + 1);
    uv_timer_start(&r->timer, on_tick, first, interval_ms(r));
}

static int kind_of(const char *type)
{
    if (strcmp(type, "http") == 0)
        return RUN_HTTP;
    if (strcmp(type, "tcp") == 0)
        return RUN_TCP;
    if (strcmp(type, "ttl") == 0)
        return RUN_TTL;
    if (strcmp(type, "grpc") == 0)
        return RUN_GRPC;
    return RUN_UNSUPPORTED;
}

static void runner_closed(uv_handle_t *h)
{
    runner_t *r = h->data;
    fl_consul_t *c = r->c;
    c->handles--;
    if (--r->handles == 0) {
        if (r->prev)
            r->prev->next = r->next;
        else
            c->runners = r->next;
        if (r->next)
            r->next->prev = r->prev;
        free(r->node);
        free(r->id);
        free(r->service_id);
        free(r->service_name);
        free(r->real_output);
        free(r->ttl_output);
        free(r->target);
        rec_unref(r->def);
        free(r);
    }
    consul_maybe_closed(c);
}

static void stop(runner_t *r)
{
    if (r->stopped)
        return;
    r->stopped = 1;
    if (r->http)
        fl_httpc_cancel(r->http);
    r->http = NULL;
    if (r->probe) {
        r->probe->r = NULL;
        probe_end(r->probe, ST_CRITICAL, "");
        r->probe = NULL;
    }
    if (r->grpc) {
        grpc_probe_cancel(r->grpc);
        r->grpc = NULL;
    }
    uv_close((uv_handle_t *)&r->timer, runner_closed);
    uv_close((uv_handle_t *)&r->reap, runner_closed);
}

static runner_t *find_runner(fl_consul_t *c, const char *node, const char *id)
{
    for (runner_t *r = c->runners; r; r = r->next)
        if (!r->stopped && strcmp(r->id, id) == 0 && strcmp(r->node, node) == 0)
            return r;
    return NULL;
}

int runner_start(fl_consul_t *c, const check_t *k)
{
    runner_stop(c, k->node, k->id);
    runner_t *r = calloc(1, sizeof *r);
    if (!r)
        return FL_ENOMEM;
    r->c = c;
    r->node = strdup(k->node);
    r->id = strdup(k->id);
    r->service_id = strdup(k->service_id);
    r->service_name = strdup(k->service_name);
    r->real_output = strdup(k->output);
    r->real_status = k->status;
    r->def = rec_ref(k->def);
    r->kind = kind_of(k->def->type ? k->def->type : "");
    if (!r->node || !r->id || !r->service_id || !r->service_name || !r->real_output) {
        free(r->node), free(r->id), free(r->service_id), free(r->service_name);
        free(r->real_output);
        rec_unref(r->def);
        free(r);
        return FL_ENOMEM;
    }
    if (r->kind == RUN_HTTP)
        parse_url(r);
    uv_timer_init(c->loop, &r->timer);
    uv_timer_init(c->loop, &r->reap);
    r->timer.data = r->reap.data = r;
    r->handles = 2;
    c->handles += 2;
    r->next = c->runners;
    if (c->runners)
        c->runners->prev = r;
    c->runners = r;
    start_timer(c, r);
    show(r);
    return 0;
}

void runner_stop(fl_consul_t *c, const char *node, const char *check_id)
{
    runner_t *r = find_runner(c, node, check_id);
    if (r)
        stop(r);
}

void runners_stop_service(fl_consul_t *c, const char *node, const char *service_id)
{
    for (runner_t *r = c->runners; r; r = r->next)
        if (!r->stopped && strcmp(r->node, node) == 0 && strcmp(r->service_id, service_id) == 0)
            stop(r);
}

int runner_is_ttl(fl_consul_t *c, const char *node, const char *check_id)
{
    runner_t *r = find_runner(c, node, check_id);
    return r && r->kind == RUN_TTL;
}

void runner_ttl_update(fl_consul_t *c, const char *node, const char *check_id, int status,
                       const char *output)
{
    runner_t *r = find_runner(c, node, check_id);
    if (!r || r->kind != RUN_TTL)
        return;
    char *out = strdup(output);
    if (out) {
        free(r->ttl_output);
        r->ttl_output = out;
    }
    uv_timer_start(&r->timer, on_ttl, (r->def->ttl + 999999) / 1000000, 0);
    result(r, status, output);
}

void runners_resync(fl_consul_t *c)
{
    for (runner_t *r = c->runners; r; r = r->next)
        show(r);
    uint64_t now = uv_hrtime();
    for (runner_t *r = c->runners; r; r = r->next) {
        if (r->stopped || !r->reap_due)
            continue;
        r->reap_due = 0;
        if (r->critical_since && now - r->critical_since >= r->def->dereg_after)
            reap_now(r);
    }
}

void runners_close(fl_consul_t *c)
{
    for (runner_t *r = c->runners; r; r = r->next)
        stop(r);
}

/* ------------------------------------------------------------ flapping ---- */

int flap_status(const fl_consul_t *c, const char *service)
{
    for (flap_t *f = c->flaps; f; f = f->next)
        if (!f->stopped && strcmp(f->service, service) == 0)
            return f->passing ? ST_PASSING : ST_CRITICAL;
    return -1;
}

static void show_service(fl_consul_t *c, const char *service)
{
    for (runner_t *r = c->runners; r; r = r->next)
        if (!r->stopped && strcmp(r->service_name, service) == 0)
            show(r);
}

static void on_flap(uv_timer_t *t)
{
    flap_t *f = t->data;
    f->passing = !f->passing;
    show_service(f->c, f->service);
}

static void flap_closed(uv_handle_t *h)
{
    flap_t *f = h->data;
    fl_consul_t *c = f->c;
    for (flap_t **p = &c->flaps; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    free(f->service);
    free(f);
    c->handles--;
    consul_maybe_closed(c);
}

static void flap_stop(flap_t *f)
{
    if (f->stopped)
        return;
    f->stopped = 1;
    uv_close((uv_handle_t *)&f->timer, flap_closed);
}

static flap_t *find_flap(fl_consul_t *c, const char *service)
{
    for (flap_t *f = c->flaps; f; f = f->next)
        if (!f->stopped && strcmp(f->service, service) == 0)
            return f;
    return NULL;
}

int flap_set(fl_consul_t *c, const char *service, uint64_t period_ns)
{
    flap_t *f = find_flap(c, service);
    uint64_t ms = (period_ns + 999999) / 1000000;
    if (!period_ns) {
        if (f) {
            flap_stop(f);
            show_service(c, service);
        }
        return 0;
    }
    if (!f) {
        if (!(f = calloc(1, sizeof *f)) || !(f->service = strdup(service))) {
            free(f);
            return FL_ENOMEM;
        }
        f->c = c;
        uv_timer_init(c->loop, &f->timer);
        f->timer.data = f;
        c->handles++;
        f->next = c->flaps;
        c->flaps = f;
    }
    f->period = period_ns;
    f->passing = 0; /* first critical: a flap that starts by changing nothing is no flap */
    uv_timer_start(&f->timer, on_flap, ms, ms);
    show_service(c, service);
    return 0;
}

void flaps_close(fl_consul_t *c)
{
    for (flap_t *f = c->flaps; f; f = f->next)
        flap_stop(f);
}
