/* The agents' HTTP side: one lib/httpd server per agent, routing as Consul's mux does (exact
 * paths, and prefixes ending in '/' whose rest is an argument; the longest match wins), the
 * method check (405 "method GET not allowed" with Allow, OPTIONS answered with Allow), and the
 * answer: Consul's headers on every response (X-Consul-Index never 0, X-Consul-Knownleader,
 * X-Consul-Lastcontact, spelt as Go canonicalises them), sent at once or held back by the
 * latency fault. Writes arriving while the catalog is frozen are held, in order, and run when
 * it thaws. Requests that outlive their handler are req_t, found again from the exchange. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/consul/internal.h"
#include "lib/err.h"
#include "lib/http.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"

const route_t fl_consul_routes[] = {
    {"/v1/agent/self", "GET", NULL, agent_self},
    {"/v1/agent/members", "GET", NULL, agent_members},
    {"/v1/agent/services", "GET", NULL, agent_services},
    {"/v1/agent/service/", "GET", NULL, agent_service},
    {"/v1/agent/checks", "GET", NULL, agent_checks},
    {"/v1/agent/service/register", "PUT", NULL, agent_service_register},
    {"/v1/agent/service/deregister/", "PUT", NULL, agent_service_deregister},
    {"/v1/agent/check/register", "PUT", NULL, agent_check_register},
    {"/v1/agent/check/deregister/", "PUT", NULL, agent_check_deregister},
    {"/v1/agent/check/pass/", "PUT", NULL, agent_check_pass},
    {"/v1/agent/check/warn/", "PUT", NULL, agent_check_warn},
    {"/v1/agent/check/fail/", "PUT", NULL, agent_check_fail},
    {"/v1/agent/check/update/", "PUT", NULL, agent_check_update},
    {"/v1/health/service/", "GET", health_service_index, health_service},
    {"/v1/health/checks/", "GET", health_checks_index, health_checks},
    {"/v1/health/state/", "GET", checks_table_index, health_state},
    {"/v1/health/node/", "GET", checks_table_index, health_node},
    {"/v1/catalog/services", "GET", catalog_services_index, catalog_services},
    {"/v1/catalog/service/", "GET", catalog_service_index, catalog_service},
    {"/v1/catalog/nodes", "GET", catalog_nodes_index, catalog_nodes},
    {"/v1/catalog/node/", "GET", catalog_node_index, catalog_node},
    {"/v1/catalog/datacenters", "GET", NULL, catalog_datacenters},
    {"/v1/catalog/register", "PUT", NULL, catalog_register},
    {"/v1/catalog/deregister", "PUT", NULL, catalog_deregister},
    {"/v1/kv/", "GET,PUT,DELETE", kv_index, kv_endpoint},
    {"/v1/status/leader", "GET", NULL, status_leader},
    {"/v1/status/peers", "GET", NULL, status_peers},
    {NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------ answers ---- */

static void reset_answer(ctx_t *x)
{
    fl_buf_reset(&x->body);
    x->ctype = NULL;
    x->answered = 1;
}

void reply_json(ctx_t *x, int status, json_t *j)
{
    reset_answer(x);
    if (!j) {
        x->status = 500;
        x->ctype = TEXT_PLAIN;
        fl_buf_puts(&x->body, "out of memory");
        return;
    }
    char pretty[2];
    size_t flags = q_get(x, "pretty", pretty, sizeof pretty) != FL_ENOTFOUND
                       ? JSON_INDENT(4) | JSON_ENCODE_ANY
                       : JSON_COMPACT | JSON_ENCODE_ANY;
    char *text = json_dumps(j, flags);
    json_decref(j);
    if (!text) {
        reply_text(x, 500, "out of memory");
        return;
    }
    x->status = status;
    x->ctype = "application/json";
    fl_buf_puts(&x->body, text);
    if (flags & JSON_INDENT(4))
        fl_buf_puts(&x->body, "\n");
    free(text);
}

void reply_text(ctx_t *x, int status, const char *fmt, ...)
{
    reset_answer(x);
    va_list ap;
    va_start(ap, fmt);
    fl_buf_vprintf(&x->body, fmt, ap);
    va_end(ap);
    x->status = status;
    x->ctype = x->body.len ? TEXT_PLAIN : NULL;
}

void reply_empty(ctx_t *x)
{
    reset_answer(x);
    x->status = 200;
}

void reply_bool(ctx_t *x, int value)
{
    reply_json(x, 200, json_boolean(value));
}

/* ------------------------------------------------------------ query parameters ---- */

int q_get(ctx_t *x, const char *name, char *buf, size_t len)
{
    int rc = fl_http_query_param(x->query, strlen(x->query), name, buf, len);
    if (rc == FL_ENOTFOUND)
        return rc;
    if (rc < 0)
        buf[0] = '\0'; /* malformed or too long: as an empty value */
    return 0;
}

int q_has(ctx_t *x, const char *name)
{
    char c[2];
    return q_get(x, name, c, sizeof c) == 0;
}

/* Calls fn for every name=value pair of the query, decoded. */
static int q_each(ctx_t *x, int (*fn)(const char *k, const char *v, void *arg), void *arg)
{
    const char *q = x->query;
    size_t qlen = strlen(q);
    char *k = malloc(qlen + 1), *v = malloc(qlen + 1);
    int rc = k && v ? 0 : FL_ENOMEM;
    while (!rc && *q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t kl = eq ? (size_t)(eq - q) : n;
        if (fl_http_url_decode(q, kl, 1, k, qlen + 1) >= 0 &&
            fl_http_url_decode(eq ? eq + 1 : q + n, eq ? n - kl - 1 : 0, 1, v, qlen + 1) >= 0)
            rc = fn(k, v, arg);
        q += n + (q[n] == '&');
    }
    free(k);
    free(v);
    return rc;
}

typedef struct {
    const char *name;
    json_t *out;
} q_all_t;

static int collect(const char *k, const char *v, void *arg)
{
    q_all_t *a = arg;
    /* the bytes as sent, valid UTF-8 or not: they are compared, never written out */
    if (strcmp(k, a->name) == 0 && json_array_append_new(a->out, json_string_nocheck(v)))
        return FL_ENOMEM;
    return 0;
}

json_t *q_all(ctx_t *x, const char *name)
{
    q_all_t a = {name, json_array()};
    if (!a.out || q_each(x, collect, &a)) {
        json_decref(a.out);
        return NULL;
    }
    return a.out;
}

typedef struct {
    char *k, *v;
    size_t ord;
} pair_t;

typedef struct {
    pair_t *p;
    size_t n, cap;
} pairs_t;

static int add_pair(const char *k, const char *v, void *arg)
{
    pairs_t *ps = arg;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        pair_t *p = realloc(ps->p, cap * sizeof *p);
        if (!p)
            return FL_ENOMEM;
        ps->p = p;
        ps->cap = cap;
    }
    ps->p[ps->n].k = strdup(k);
    ps->p[ps->n].v = strdup(v);
    ps->p[ps->n].ord = ps->n;
    ps->n++;
    return 0;
}

static int cmp_pair(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    int c = strcmp(x->k ? x->k : "", y->k ? y->k : "");
    return c ? c : (x->ord > y->ord) - (x->ord < y->ord); /* values keep their order */
}

/* url.QueryEscape */
static void query_escape(fl_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            fl_buf_printf(b, "%c", c);
        else if (c == ' ')
            fl_buf_puts(b, "+");
        else
            fl_buf_printf(b, "%%%02X", c);
    }
}

int q_encode(ctx_t *x, fl_buf_t *out)
{
    pairs_t ps = {NULL, 0, 0};
    int rc = q_each(x, add_pair, &ps);
    qsort(ps.p, ps.n, sizeof *ps.p, cmp_pair);
    for (size_t i = 0; i < ps.n; i++) {
        if (i)
            fl_buf_puts(out, "&");
        query_escape(out, ps.p[i].k);
        fl_buf_puts(out, "=");
        query_escape(out, ps.p[i].v);
        free(ps.p[i].k);
        free(ps.p[i].v);
    }
    free(ps.p);
    return rc;
}

int check_dc(ctx_t *x)
{
    char dc[256];
    if (q_get(x, "dc", dc, sizeof dc) == 0 && *dc && strcmp(dc, x->c->dc) != 0) {
        reply_text(x, 500, "No path to datacenter");
        return -1;
    }
    return 0;
}

json_t *decode_body(ctx_t *x, const char *go_type)
{
    godec_t d = {FL_BUF_INIT, NULL};
    json_t *j = go_json_parse(x->req_body, x->req_len, &d.err);
    if (j)
        go_expect_object(&d, j, go_type);
    if (d.err.len) {
        reply_text(x, 400, "Request decode failed: %s", d.err.data);
        json_decref(j);
        j = NULL;
    }
    fl_buf_free(&d.err);
    return j;
}

/* ------------------------------------------------------------ held requests ---- */

static void req_closed(uv_handle_t *h)
{
    req_t *r = h->data;
    fl_consul_t *c = r->c;
    fl_buf_free(&r->body);
    fl_buf_free(&r->headers);
    free(r->share_key);
    free(r);
    c->handles--;
    consul_maybe_closed(c);
}

req_t *req_new(fl_consul_t *c, fl_consul_agent_t *a, fl_httpd_exchange_t *ex, int kind)
{
    req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    uv_timer_init(c->loop, &r->timer);
    r->timer.data = r;
    r->c = c;
    r->a = a;
    r->ex = ex;
    r->kind = kind;
    c->handles++;
    fl_httpd_exchange_set_data(ex, r);
    return r;
}

static req_t **req_list(req_t *r)
{
    return r->kind == REQ_WAIT    ? &r->c->waiters
           : r->kind == REQ_DELAY ? &r->c->delayed
                                  : &r->c->held;
}

void req_link(req_t **list, req_t *r)
{
    if (list == &r->c->waiters)
        r->c->nwaiters++;
    r->prev = NULL;
    r->next = *list;
    if (*list)
        (*list)->prev = r;
    *list = r;
}

void req_unlink(req_t **list, req_t *r)
{
    if (list == &r->c->waiters && (r->prev || *list == r))
        r->c->nwaiters--;
    if (r->prev)
        r->prev->next = r->next;
    else if (*list == r)
        *list = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

void req_release(req_t *r)
{
    req_unlink(req_list(r), r);
    if (r->ex)
        fl_httpd_exchange_set_data(r->ex, NULL);
    r->ex = NULL;
    uv_close((uv_handle_t *)&r->timer, req_closed);
}

/* ------------------------------------------------------------ sending ---- */

static void respond(fl_httpd_exchange_t *ex, int status, const fl_buf_t *headers, const char *ctype,
                    const fl_buf_t *body)
{
    fl_httpd_respond(ex, status, headers->data, ctype, body->data, body->len);
}

/* Forgets r's exchange, which is about to be answered (and freed by lib/httpd). */
fl_httpd_exchange_t *req_detach(req_t *r)
{
    fl_httpd_exchange_t *ex = r->ex;
    if (ex)
        fl_httpd_exchange_set_data(ex, NULL);
    r->ex = NULL;
    return ex;
}

static void on_delay(uv_timer_t *t)
{
    req_t *r = t->data;
    fl_httpd_exchange_t *ex = req_detach(r);
    if (ex)
        respond(ex, r->status, &r->headers, r->ctype, &r->body);
    req_release(r);
}

static void add_consul_headers(ctx_t *x)
{
    uint64_t idx = x->index ? x->index : x->st ? x->st->index : x->c->live->index;
    fl_buf_printf(&x->headers, "X-Consul-Index: %llu\r\n", (unsigned long long)(idx ? idx : 1));
    fl_buf_puts(&x->headers, "X-Consul-Knownleader: true\r\nX-Consul-Lastcontact: 0\r\n");
    if (x->route && x->route->index && strcmp(x->method, "GET") == 0)
        fl_buf_puts(&x->headers, "X-Consul-Effective-Consistency: leader\r\n");
    fl_buf_puts(&x->headers, "Vary: Accept-Encoding\r\n");
}

/* Answers at once; a request held so far is let go. */
static void send_now(ctx_t *x, req_t *r)
{
    if (r) {
        req_detach(r);
        req_release(r);
    }
    respond(x->ex, x->status, &x->headers, x->ctype, &x->body);
}

void ctx_finish(ctx_t *x)
{
    if (!x->answered)
        reply_text(x, 500, "no answer");
    add_consul_headers(x);
}

void ctx_send(ctx_t *x)
{
    fl_consul_t *c = x->c;
    ctx_finish(x);
    if (!x->ex)
        return;
    req_t *r = fl_httpd_exchange_data(x->ex);
    if (!c->latency_ns) {
        send_now(x, r);
        return;
    }
    if (r)
        req_unlink(req_list(r), r);
    else if (!(r = req_new(c, x->a, x->ex, REQ_DELAY))) {
        send_now(x, NULL);
        return;
    }
    r->kind = REQ_DELAY;
    req_link(&c->delayed, r);
    r->status = x->status;
    r->ctype = x->ctype;
    fl_buf_reset(&r->body);
    fl_buf_reset(&r->headers);
    if (fl_buf_append(&r->body, x->body.data, x->body.len) ||
        fl_buf_append(&r->headers, x->headers.data, x->headers.len)) {
        send_now(x, r);
        return;
    }
    uv_timer_stop(&r->timer);
    uv_timer_start(&r->timer, on_delay, (c->latency_ns + 999999) / 1000000, 0);
}

/* ------------------------------------------------------------ routing ---- */

/* Fills x for a request (ex NULL: one served synchronously). The strings must outlive x. */
static int ctx_setup(ctx_t *x, fl_consul_t *c, fl_consul_agent_t *a, fl_httpd_exchange_t *ex,
                     const char *method, const char *path, size_t path_len, const char *query,
                     const char *body, size_t body_len)
{
    memset(x, 0, sizeof *x);
    x->c = c;
    x->a = a;
    x->ex = ex;
    x->method = method;
    x->query = query;
    x->req_body = body;
    x->req_len = body_len;
    x->st = c->live;
    x->arg = malloc(path_len + 1);
    if (!x->arg)
        return FL_ENOMEM;
    if (fl_http_url_decode(path, path_len, 0, x->arg, path_len + 1) < 0)
        return FL_EMALFORMED;
    return 0;
}

int ctx_init(ctx_t *x, fl_consul_t *c, fl_consul_agent_t *a, fl_httpd_exchange_t *ex)
{
    size_t body_len;
    const char *body = fl_httpd_body(ex, &body_len);
    const char *path = fl_httpd_path(ex);
    return ctx_setup(x, c, a, ex, fl_httpd_method(ex), path, strlen(path), fl_httpd_query(ex), body,
                     body_len);
}

void ctx_free(ctx_t *x)
{
    free(x->arg);
    fl_buf_free(&x->body);
    fl_buf_free(&x->headers);
}

/* The route for path: an exact one, or the longest prefix. */
static const route_t *find_route(const char *path)
{
    const route_t *best = NULL;
    size_t best_len = 0;
    for (const route_t *r = fl_consul_routes; r->path; r++) {
        size_t n = strlen(r->path);
        int prefix = r->path[n - 1] == '/';
        int match = prefix ? strncmp(path, r->path, n) == 0 : strcmp(path, r->path) == 0;
        if (match && n > best_len) {
            best = r;
            best_len = n;
        }
    }
    return best;
}

static int method_allowed(const route_t *r, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = r->methods; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, method, n) == 0)
            return 1;
        p += len + (p[len] == ',');
    }
    return 0;
}

/* Answers a path no route takes, as Go's mux and Consul's index handler do. */
static void not_found(ctx_t *x)
{
    const char *path = x->arg;
    for (const route_t *r = fl_consul_routes; r->path; r++) {
        size_t n = strlen(r->path);
        if (r->path[n - 1] == '/' && strlen(path) == n - 1 && strncmp(path, r->path, n - 1) == 0) {
            fl_buf_printf(&x->headers, "Location: %s\r\n", r->path);
            reply_text(x, 301, "<a href=\"%s\">Moved Permanently</a>.\n\n", r->path);
            x->ctype = "text/html; charset=utf-8";
            return;
        }
    }
    if (strcmp(path, "/") == 0)
        reply_text(x, 200, "Consul Agent");
    else
        reply_text(x, 404, "%s", "");
}

static int is_write(const char *method)
{
    return strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0;
}

static void hold(ctx_t *x)
{
    req_t *r = req_new(x->c, x->a, x->ex, REQ_FROZEN);
    if (!r) {
        reply_text(x, 500, "out of memory");
        ctx_send(x);
        return;
    }
    req_link(&x->c->held, r);
}

/* Routes x (ctx_setup's result rc) and answers it, unless it is held or parked. */
static void dispatch(ctx_t *x, int rc)
{
    fl_consul_t *c = x->c;
    if (rc) {
        reply_text(x, rc == FL_EMALFORMED ? 400 : 500, "%s",
                   rc == FL_EMALFORMED ? "400 Bad Request" : "out of memory");
        goto send;
    }
    x->route = find_route(x->arg);
    if (!x->route) {
        not_found(x);
        goto send;
    }
    size_t plen = strlen(x->route->path);
    if (x->route->path[plen - 1] == '/')
        memmove(x->arg, x->arg + plen, strlen(x->arg + plen) + 1);
    else
        x->arg[0] = '\0';
    if (strcmp(x->method, "OPTIONS") == 0) {
        fl_buf_printf(&x->headers, "Allow: OPTIONS,%s\r\n", x->route->methods);
        reply_empty(x);
        goto send;
    }
    if (!method_allowed(x->route, x->method)) {
        fl_buf_printf(&x->headers, "Allow: OPTIONS,%s\r\n", x->route->methods);
        reply_text(x, 405, "method %s not allowed", x->method);
        goto send;
    }
    if (is_write(x->method) && c->frozen && x->ex) { /* a synchronous write runs now */
        hold(x);
        return;
    }
    if (x->route->index && strcmp(x->method, "GET") == 0) {
        x->st = cat_view(c);
        blocking_run(x);
        return;
    }
    x->route->handle(x);
send:
    ctx_send(x);
}

void ctx_run(fl_consul_t *c, fl_consul_agent_t *a, fl_httpd_exchange_t *ex)
{
    ctx_t x;
    dispatch(&x, ctx_init(&x, c, a, ex));
    ctx_free(&x);
}

int fl_consul_serve(fl_consul_t *c, const char *node, const char *method, const char *target,
                    const void *body, size_t len, fl_consul_answer_t *out)
{
    if (!out)
        return FL_EINVAL;
    memset(out, 0, sizeof *out);
    fl_consul_agent_t *a = c && node ? agent_named(c, node) : NULL;
    if (!a || c->closing || !method || !target || (!body && len))
        return FL_EINVAL;
    const char *q = strchr(target, '?');
    ctx_t x;
    int rc = ctx_setup(&x, c, a, NULL, method, target, q ? (size_t)(q - target) : strlen(target),
                       q ? q + 1 : "", body ? body : "", len);
    dispatch(&x, rc);
    out->status = x.status;
    out->content_type = x.ctype;
    out->headers = x.headers.data ? x.headers.data : strdup("");
    out->body = x.body.data ? x.body.data : strdup("");
    out->body_len = x.body.len;
    x.headers = (fl_buf_t)FL_BUF_INIT;
    x.body = (fl_buf_t)FL_BUF_INIT;
    ctx_free(&x);
    if (!out->headers || !out->body) {
        fl_consul_answer_free(out);
        return FL_ENOMEM;
    }
    return 0;
}

void fl_consul_answer_free(fl_consul_answer_t *ans)
{
    if (!ans)
        return;
    free(ans->headers);
    free(ans->body);
    memset(ans, 0, sizeof *ans);
}

/* ------------------------------------------------------------ servers ---- */

static void on_request(fl_httpd_exchange_t *ex, void *arg)
{
    fl_consul_agent_t *a = arg;
    ctx_run(a->c, a, ex);
}

static void on_abort(fl_httpd_exchange_t *ex, void *arg)
{
    req_t *r = fl_httpd_exchange_data(ex);
    if (!r)
        return;
    r->ex = NULL;
    req_release(r);
}

static void on_httpd_closed(fl_httpd_t *h, void *arg)
{
    fl_consul_t *c = arg;
    c->handles--;
    consul_maybe_closed(c);
}

int agent_listen(fl_consul_agent_t *a)
{
    fl_httpd_config_t cfg = {
        .handler = on_request,
        .on_abort = on_abort,
        .arg = a,
        .max_body = MAX_BODY,
    };
    fl_httpd_t *h;
    int rc = fl_httpd_start(a->c->loop, a->host, a->port, &cfg, &h);
    if (rc)
        return rc;
    a->httpd = h;
    a->port = fl_httpd_port(h);
    a->c->handles++;
    return 0;
}

void agent_stop(fl_consul_agent_t *a)
{
    if (!a->httpd)
        return;
    fl_httpd_t *h = a->httpd;
    a->httpd = NULL;
    fl_httpd_close(h, on_httpd_closed, a->c);
}

fl_consul_agent_t *agent_named(fl_consul_t *c, const char *node)
{
    for (fl_consul_agent_t *a = c->agents; a; a = a->next)
        if (strcmp(a->node, node) == 0)
            return a;
    return NULL;
}
