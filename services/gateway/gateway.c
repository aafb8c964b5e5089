/* gateway: the shop's HTTP/1.1 JSON front door, on services/runtime. It answers
 *   GET  /healthz        200 {"status":"ok"}
 *   POST /users          {"name","email"} → shop.Users/CreateUser → 201 the user
 *   GET  /users/{id}     shop.Users/GetUser → 200 the user, 404 when there is none
 * Bad requests get 4xx with {"error": "..."}; a dependency that stays unavailable after the
 * client's retries (or past GATEWAY_TIMEOUT_MS, 2000) is 503; other failures 502. The users
 * client is balanced and retried (svc.h: Consul discovery or USERS_ADDR, GRPC_SERVICE_CONFIG,
 * LB_POLICY). A SERVER span per request continues the caller's traceparent, and its context
 * goes to users (FAULTLINE_BUG=drop-traceparent: it does not, so traces break). One log line
 * per request: "POST /users 201 attempts=1 via 127.0.0.1:5001 2.1ms". Orders likewise:
 *   POST /orders         {"user_id","item","amount"} → shop.Orders/CreateOrder → 201 the order
 *   GET  /orders/{id}    shop.Orders/GetOrder → 200 the order ("created", then "paid") */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/httpd.h"
#include "lib/log.h"
#include "services/runtime/grpc_status.h"
#include "services/runtime/svc.h"
#include "shop.pb-c.h"

typedef struct {
    fl_svc_t svc;
    fl_httpd_t *httpd;
    fl_rpc_client_t *users, *orders;
    uint64_t timeout_ns;
    int drop_traceparent;
} gateway_t;

/* One request waiting for its gRPC answer. */
typedef struct {
    gateway_t *g;
    fl_httpd_exchange_t *ex; /* NULL once the client went away */
    fl_span_t *span;
    char what[64];
    uint64_t t0;
    int order; /* the answer is an Order (else a User) */
} pending_t;

static void respond_json(gateway_t *g, fl_httpd_exchange_t *ex, fl_span_t *sp, const char *what,
                         uint64_t t0, int status, json_t *doc, const fl_rpc_result_t *res)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    fl_httpd_respond(ex, status, NULL, "application/json", text ? text : "{}",
                     text ? strlen(text) : 2);
    free(text);
    if (sp) {
        fl_span_set_int(sp, "http.response.status_code", status);
        if (status >= 500)
            fl_span_set_status(sp, FL_STATUS_ERROR, "");
        fl_span_end(sp);
    }
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    if (res)
        fl_svc_say(&g->svc, "%s %d attempts=%d via %s %.1fms", what, status, res->attempts,
                   res->backend && *res->backend ? res->backend : "-", ms);
    else
        fl_svc_say(&g->svc, "%s %d %.1fms", what, status, ms);
}

static json_t *error_json(const char *text)
{
    return json_pack("{s:s}", "error", text);
}

static void answer_user(void *arg, const fl_rpc_result_t *res)
{
    pending_t *p = arg;
    gateway_t *g = p->g;
    if (!p->ex) { /* the client went away */
        fl_span_end(p->span);
        free(p);
        return;
    }
    int created = strncmp(p->what, "POST", 4) == 0;
    const char *dep = p->order ? "orders" : "users";
    json_t *doc = NULL;
    int status;
    char text[300];
    if (res->code == FL_GRPC_OK) {
        if (p->order) {
            Shop__Order *o = shop__order__unpack(NULL, res->msg_len, res->msg);
            if (o)
                doc = json_pack("{s:s, s:s, s:s, s:I, s:s}", "id", o->id, "user_id", o->user_id,
                                "item", o->item, "amount", (json_int_t)o->amount, "status",
                                o->status);
            if (o)
                shop__order__free_unpacked(o, NULL);
        } else {
            Shop__User *u = shop__user__unpack(NULL, res->msg_len, res->msg);
            if (u)
                doc = json_pack("{s:s, s:s, s:s}", "id", u->id, "name", u->name, "email", u->email);
            if (u)
                shop__user__free_unpacked(u, NULL);
        }
        status = doc ? (created ? 201 : 200) : 502;
        if (!doc)
            doc = error_json("the answer could not be decoded");
    } else if (res->code == FL_GRPC_INVALID_ARGUMENT) {
        doc = error_json(res->message);
        status = 400;
    } else if (res->code == FL_GRPC_NOT_FOUND) {
        doc = error_json(res->message);
        status = 404;
    } else if (res->code == FL_GRPC_UNAVAILABLE || res->code == FL_GRPC_DEADLINE_EXCEEDED) {
        snprintf(text, sizeof text, "%s unavailable: %s: %s", dep, fl_grpc_code_name(res->code),
                 res->message ? res->message : "");
        doc = error_json(text);
        status = 503;
    } else {
        snprintf(text, sizeof text, "%s failed: %s: %s", dep, fl_grpc_code_name(res->code),
                 res->message ? res->message : "");
        doc = error_json(text);
        status = 502;
    }
    fl_httpd_exchange_set_data(p->ex, NULL);
    respond_json(g, p->ex, p->span, p->what, p->t0, status, doc, res);
    free(p);
}

static void call_dep(gateway_t *g, fl_httpd_exchange_t *ex, fl_span_t *sp, const char *what,
                     uint64_t t0, const char *path, const ProtobufCMessage *req)
{
    int order = strncmp(path, "/shop.Orders/", 13) == 0;
    pending_t *p = calloc(1, sizeof *p);
    if (!p) {
        respond_json(g, ex, sp, what, t0, 500, error_json("out of memory"), NULL);
        return;
    }
    p->g = g;
    p->ex = ex;
    p->span = sp;
    p->t0 = t0;
    p->order = order;
    snprintf(p->what, sizeof p->what, "%s", what);
    fl_httpd_exchange_set_data(ex, p);
    const fl_tracectx_t *ctx = g->drop_traceparent ? NULL : fl_span_context(sp);
    if (fl_rpc_call(order ? g->orders : g->users, path, req, g->timeout_ns, ctx, answer_user, p)) {
        fl_httpd_exchange_set_data(ex, NULL);
        free(p);
        respond_json(g, ex, sp, what, t0, 500, error_json("cannot call users"), NULL);
    }
}

static void on_abort(fl_httpd_exchange_t *ex, void *arg)
{
    (void)arg;
    pending_t *p = fl_httpd_exchange_data(ex);
    if (p)
        p->ex = NULL;
}

static void handle(fl_httpd_exchange_t *ex, void *arg)
{
    gateway_t *g = arg;
    uint64_t t0 = uv_hrtime();
    const char *method = fl_httpd_method(ex), *path = fl_httpd_path(ex);
    char what[64];
    snprintf(what, sizeof what, "%s %.40s", method, path);
    if (strcmp(path, "/healthz") == 0) {
        respond_json(g, ex, NULL, what, t0, 200, json_pack("{s:s}", "status", "ok"), NULL);
        return;
    }
    /* the request's SERVER span, continuing the caller's trace */
    fl_tracectx_t parent;
    const char *tp = fl_httpd_header(ex, "traceparent"), *ts = fl_httpd_header(ex, "tracestate");
    int has = tp && fl_tracectx_extract(tp, strlen(tp), ts, ts ? strlen(ts) : 0, &parent) == 0;
    int users = strcmp(path, "/users") == 0, one = strncmp(path, "/users/", 7) == 0 && path[7];
    int orders = strcmp(path, "/orders") == 0,
        one_order = strncmp(path, "/orders/", 8) == 0 && path[8];
    char name[80];
    snprintf(name, sizeof name, "%s %s", method,
             users       ? "/users"
             : one       ? "/users/{id}"
             : orders    ? "/orders"
             : one_order ? "/orders/{id}"
                         : path);
    fl_span_t *sp = fl_span_start(g->svc.tracer, name, FL_SPAN_SERVER, has ? &parent : NULL);
    fl_span_set_str(sp, "http.request.method", method);
    fl_span_set_str(sp, "url.path", path);
    if (users && strcmp(method, "POST") == 0) {
        size_t len;
        const char *body = fl_httpd_body(ex, &len);
        json_t *doc = json_loadb(body, len, 0, NULL);
        const char *n = json_string_value(json_object_get(doc, "name"));
        const char *e = json_string_value(json_object_get(doc, "email"));
        if (!json_is_object(doc) || !n || !e) {
            json_decref(doc);
            respond_json(g, ex, sp, what, t0, 400,
                         error_json("the body must be a JSON object with string fields name and "
                                    "email"),
                         NULL);
            return;
        }
        Shop__CreateUserRequest req = SHOP__CREATE_USER_REQUEST__INIT;
        req.name = (char *)n;
        req.email = (char *)e;
        call_dep(g, ex, sp, what, t0, "/shop.Users/CreateUser", &req.base);
        json_decref(doc);
        return;
    }
    if (one && strcmp(method, "GET") == 0) {
        Shop__GetUserRequest req = SHOP__GET_USER_REQUEST__INIT;
        req.id = (char *)path + 7;
        call_dep(g, ex, sp, what, t0, "/shop.Users/GetUser", &req.base);
        return;
    }
    if (orders && strcmp(method, "POST") == 0) {
        size_t len;
        const char *body = fl_httpd_body(ex, &len);
        json_t *doc = json_loadb(body, len, 0, NULL);
        const char *u = json_string_value(json_object_get(doc, "user_id"));
        const char *item = json_string_value(json_object_get(doc, "item"));
        json_t *amount = json_object_get(doc, "amount");
        if (!json_is_object(doc) || !u || !item || !json_is_integer(amount) ||
            json_integer_value(amount) <= 0) {
            json_decref(doc);
            respond_json(g, ex, sp, what, t0, 400,
                         error_json("the body must be a JSON object with user_id and item "
                                    "(strings) and amount (a positive integer, cents)"),
                         NULL);
            return;
        }
        Shop__CreateOrderRequest req = SHOP__CREATE_ORDER_REQUEST__INIT;
        req.user_id = (char *)u;
        req.item = (char *)item;
        req.amount = json_integer_value(amount);
        call_dep(g, ex, sp, what, t0, "/shop.Orders/CreateOrder", &req.base);
        json_decref(doc);
        return;
    }
    if (one_order && strcmp(method, "GET") == 0) {
        Shop__GetOrderRequest req = SHOP__GET_ORDER_REQUEST__INIT;
        req.id = (char *)path + 8;
        call_dep(g, ex, sp, what, t0, "/shop.Orders/GetOrder", &req.base);
        return;
    }
    if (users || one || orders || one_order)
        respond_json(g, ex, sp, what, t0, 405, error_json("method not allowed here"), NULL);
    else
        respond_json(g, ex, sp, what, t0, 404, error_json("no such route"), NULL);
}

static void httpd_closed(fl_httpd_t *h, void *arg)
{
    gateway_t *g = arg;
    (void)h;
    fl_svc_stopped(&g->svc);
}

static void on_stop(fl_svc_t *s, void *arg)
{
    gateway_t *g = arg;
    (void)s;
    fl_httpd_close(g->httpd, httpd_closed, g);
}

int main(void)
{
    static gateway_t g;
    int rc = fl_svc_init(&g.svc, "gateway", 8080);
    if (rc)
        return rc;
    const char *t = getenv("GATEWAY_TIMEOUT_MS");
    char *end;
    long ms = t && *t ? strtol(t, &end, 10) : 2000;
    if (t && *t && (*end || ms < 1 || ms > 600000)) {
        fl_svc_complain(&g.svc, "bad GATEWAY_TIMEOUT_MS '%s': want 1..600000", t);
        return 2;
    }
    g.timeout_ns = (uint64_t)ms * 1000000ull;
    g.drop_traceparent = fl_svc_bug(&g.svc, "drop-traceparent");
    g.users = fl_svc_dependency(&g.svc, "users");
    g.orders = g.users ? fl_svc_dependency(&g.svc, "orders") : NULL;
    if (!g.users || !g.orders)
        return 2;
    fl_httpd_config_t cfg = {.handler = handle, .on_abort = on_abort, .arg = &g};
    rc = fl_httpd_start(&g.svc.loop, g.svc.bind, g.svc.port, &cfg, &g.httpd);
    if (rc) {
        fl_svc_complain(&g.svc, "cannot listen on %s:%d: %s", g.svc.bind, g.svc.port,
                        fl_strerror(rc));
        return 1;
    }
    fl_svc_say(&g.svc, "listening on %s:%d", g.svc.bind, fl_httpd_port(g.httpd));
    fl_svc_register(&g.svc, fl_httpd_port(g.httpd), "http");
    return fl_svc_run(&g.svc, on_stop, &g);
}
