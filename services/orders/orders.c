/* orders: the shop's order service (shop.proto: shop.Orders/CreateOrder and GetOrder) on
 * services/runtime. Orders are rows in SQLite (ORDERS_DB, ":memory:" by default; replicas
 * share a file by naming the same one), created "created" and made "paid" when
 * payment.completed arrives from the broker. Each new order is announced as order.created
 * (exchange "shop", persistent, with publisher confirms) through an outbox: the row is
 * committed first, marked published once the broker confirms, and anything unconfirmed is
 * published again every ORDERS_OUTBOX_MS (500) — so a broker outage delays payments but
 * loses no order. payment.completed is acked only after its update is committed.
 * gRPC health, a gRPC Consul check, SERVER spans, one log line per notable event; SIGTERM
 * stops cleanly. Without AMQP_URL orders are stored but never announced (said at start). */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"
#include "services/runtime/grpc_server.h"
#include "services/runtime/grpc_status.h"
#include "services/runtime/mq.h"
#include "services/runtime/svc.h"
#include "shop.pb-c.h"

#define GRACE_MS 5000
#define MAX_INFLIGHT 1024

typedef struct {
    fl_svc_t svc;
    fl_grpc_server_t *server;
    sqlite3 *db;
    fl_mq_t *mq;
    uv_timer_t outbox;
    uint64_t outbox_ms;
    char *inflight[MAX_INFLIGHT]; /* ids published, confirm not in yet */
    int closing_left;
} orders_t;

static int exec(orders_t *o, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(o->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        fl_svc_complain(&o->svc, "sqlite: %s", err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
    }
    return rc;
}

/* ---- publishing through the outbox ---- */

typedef struct {
    orders_t *o;
    char id[40];
} pub_t;

static int inflight_slot(orders_t *o, const char *id)
{
    for (int i = 0; i < MAX_INFLIGHT; i++)
        if (o->inflight[i] && strcmp(o->inflight[i], id) == 0)
            return i;
    return -1;
}

static void inflight_drop(orders_t *o, const char *id)
{
    int i = inflight_slot(o, id);
    if (i >= 0) {
        free(o->inflight[i]);
        o->inflight[i] = NULL;
    }
}

static void on_confirm(fl_mq_t *mq, int status, void *arg)
{
    pub_t *p = arg;
    orders_t *o = p->o;
    (void)mq;
    inflight_drop(o, p->id);
    if (status == 0) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(o->db, "UPDATE orders SET published = 1 WHERE id = ?", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, p->id, -1, SQLITE_TRANSIENT);
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
        fl_svc_say(&o->svc, "order %s announced", p->id);
    } else {
        fl_svc_say(&o->svc, "order %s not announced (%s): the outbox tries again", p->id,
                   fl_strerror(status));
    }
    free(p);
}

static void publish_order(orders_t *o, const char *id, const char *user, const char *item,
                          int64_t amount, const fl_tracectx_t *parent)
{
    if (!o->mq || !fl_mq_ready(o->mq) || inflight_slot(o, id) >= 0)
        return;
    int slot = 0;
    while (slot < MAX_INFLIGHT && o->inflight[slot])
        slot++;
    if (slot == MAX_INFLIGHT)
        return;
    json_t *doc = json_pack("{s:s, s:s, s:s, s:I}", "order_id", id, "user_id", user, "item", item,
                            "amount", (json_int_t)amount);
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    pub_t *p = calloc(1, sizeof *p);
    if (!body || !p) {
        free(body);
        free(p);
        return;
    }
    p->o = o;
    snprintf(p->id, sizeof p->id, "%s", id);
    fl_mq_publish_opts_t po = {
        .persistent = true, .message_id = id, .content_type = "application/json", .parent = parent};
    if (fl_mq_publish(o->mq, "shop", "order.created", body, strlen(body), &po, on_confirm, p) == 0)
        o->inflight[slot] = strdup(id);
    else
        free(p);
    free(body);
}

static void on_outbox(uv_timer_t *t)
{
    orders_t *o = t->data;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(o->db,
                           "SELECT id, user_id, item, amount FROM orders WHERE published = 0 "
                           "LIMIT 200",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW)
        publish_order(o, (const char *)sqlite3_column_text(st, 0),
                      (const char *)sqlite3_column_text(st, 1),
                      (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3), NULL);
    sqlite3_finalize(st);
}

/* ---- payment.completed ---- */

static void on_payment(fl_mq_t *mq, fl_mq_delivery_t *d, void *arg)
{
    orders_t *o = arg;
    json_t *doc = json_loadb(d->body, d->len, 0, NULL);
    const char *id = json_string_value(json_object_get(doc, "order_id"));
    if (!id) {
        fl_svc_complain(&o->svc, "payment.completed without an order_id: dropped");
        json_decref(doc);
        fl_mq_nack(mq, d, false);
        return;
    }
    sqlite3_stmt *st;
    int changed = 0;
    if (sqlite3_prepare_v2(o->db,
                           "UPDATE orders SET status = 'paid' WHERE id = ? AND status != 'paid'",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_DONE)
            changed = sqlite3_changes(o->db);
        sqlite3_finalize(st);
    }
    fl_svc_say(&o->svc, changed ? "order %s paid" : "order %s: payment seen again or unknown", id);
    json_decref(doc);
    fl_mq_ack(mq, d); /* after the update is committed (autocommit) */
}

/* ---- gRPC ---- */

static void finish(orders_t *o, fl_grpc_srv_call_t *call, fl_span_t *sp, const char *what, int code,
                   const char *message, const Shop__Order *order)
{
    if (code == FL_GRPC_OK) {
        fl_svc_say(&o->svc, "%s %s ok", what, order->id);
        fl_grpc_srv_reply_pb(call, &order->base);
    } else {
        fl_svc_say(&o->svc, "%s %s", what, fl_grpc_code_name(code));
        fl_grpc_srv_fail(call, code, message);
        fl_span_set_status(sp, FL_STATUS_ERROR, message);
    }
    fl_span_set_int(sp, "rpc.grpc.status_code", code);
    fl_span_end(sp);
}

static void create_order(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg)
{
    orders_t *o = arg;
    fl_span_t *sp = fl_svc_server_span(&o->svc, call, "shop.Orders", "CreateOrder");
    Shop__CreateOrderRequest *in = shop__create_order_request__unpack(NULL, len, req);
    if (!in || !in->user_id[0] || !in->item[0] || in->amount <= 0) {
        finish(o, call, sp, "CreateOrder", in ? FL_GRPC_INVALID_ARGUMENT : FL_GRPC_INTERNAL,
               in ? "user_id and item must be set and amount positive"
                  : "grpc: error unmarshalling request",
               NULL);
        if (in)
            shop__create_order_request__free_unpacked(in, NULL);
        return;
    }
    uint8_t rnd[8];
    char id[40];
    uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL);
    snprintf(id, sizeof id, "o-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
    sqlite3_stmt *st;
    int ok = sqlite3_prepare_v2(o->db,
                                "INSERT INTO orders (id, user_id, item, amount, status, published) "
                                "VALUES (?, ?, ?, ?, 'created', 0)",
                                -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, in->user_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, in->item, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, in->amount);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
    }
    if (!ok) {
        finish(o, call, sp, "CreateOrder", FL_GRPC_UNAVAILABLE, sqlite3_errmsg(o->db), NULL);
        shop__create_order_request__free_unpacked(in, NULL);
        return;
    }
    publish_order(o, id, in->user_id, in->item, in->amount, fl_span_context(sp));
    Shop__Order out = SHOP__ORDER__INIT;
    out.id = id;
    out.user_id = in->user_id;
    out.item = in->item;
    out.amount = in->amount;
    out.status = "created";
    finish(o, call, sp, "CreateOrder", FL_GRPC_OK, "", &out);
    shop__create_order_request__free_unpacked(in, NULL);
}

static void get_order(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg)
{
    orders_t *o = arg;
    fl_span_t *sp = fl_svc_server_span(&o->svc, call, "shop.Orders", "GetOrder");
    Shop__GetOrderRequest *in = shop__get_order_request__unpack(NULL, len, req);
    if (!in) {
        finish(o, call, sp, "GetOrder", FL_GRPC_INTERNAL, "grpc: error unmarshalling request",
               NULL);
        return;
    }
    sqlite3_stmt *st;
    int found = 0;
    if (sqlite3_prepare_v2(o->db,
                           "SELECT id, user_id, item, amount, status FROM orders WHERE id = ?", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, in->id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW) {
            Shop__Order out = SHOP__ORDER__INIT;
            out.id = (char *)sqlite3_column_text(st, 0);
            out.user_id = (char *)sqlite3_column_text(st, 1);
            out.item = (char *)sqlite3_column_text(st, 2);
            out.amount = sqlite3_column_int64(st, 3);
            out.status = (char *)sqlite3_column_text(st, 4);
            finish(o, call, sp, "GetOrder", FL_GRPC_OK, "", &out);
            found = 1;
        }
        sqlite3_finalize(st);
    }
    if (!found) {
        char msg[160];
        snprintf(msg, sizeof msg, "no order %.100s", in->id);
        finish(o, call, sp, "GetOrder", FL_GRPC_NOT_FOUND, msg, NULL);
    }
    shop__get_order_request__free_unpacked(in, NULL);
}

/* ---- lifecycle ---- */

static void closed_one(void *arg)
{
    orders_t *o = arg;
    if (--o->closing_left == 0) {
        sqlite3_close(o->db);
        for (int i = 0; i < MAX_INFLIGHT; i++)
            free(o->inflight[i]);
        fl_svc_stopped(&o->svc);
    }
}

static void server_down(fl_grpc_server_t *srv, void *arg)
{
    (void)srv;
    closed_one(arg);
}

static void outbox_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

static void on_stop(fl_svc_t *s, void *arg)
{
    orders_t *o = arg;
    (void)s;
    o->closing_left = o->mq ? 3 : 2;
    uv_close((uv_handle_t *)&o->outbox, outbox_closed);
    if (o->mq)
        fl_mq_close(o->mq, closed_one, o);
    fl_grpc_server_shutdown(o->server, GRACE_MS, server_down, o);
}

static void server_log(void *arg, const char *line)
{
    orders_t *o = arg;
    fl_svc_say(&o->svc, "%s", line);
}

int main(void)
{
    static orders_t o;
    int rc = fl_svc_init(&o.svc, "orders", 50062);
    if (rc)
        return rc;
    const char *dbpath = getenv("ORDERS_DB");
    if (!dbpath || !*dbpath)
        dbpath = ":memory:";
    if (sqlite3_open(dbpath, &o.db) != SQLITE_OK) {
        fl_svc_complain(&o.svc, "cannot open ORDERS_DB '%s': %s", dbpath, sqlite3_errmsg(o.db));
        return 2;
    }
    sqlite3_busy_timeout(o.db, 5000);
    if (exec(&o, "PRAGMA journal_mode=WAL") ||
        exec(&o, "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, user_id TEXT, item "
                 "TEXT, amount INTEGER, status TEXT, published INTEGER)"))
        return 1;
    const char *t = getenv("ORDERS_OUTBOX_MS");
    o.outbox_ms = t && *t ? strtoull(t, NULL, 10) : 500;
    if (!o.outbox_ms)
        o.outbox_ms = 500;
    const char *url = getenv("AMQP_URL");
    if (url && *url) {
        static const fl_mq_exchange_t ex[] = {{"shop", "topic", true}};
        static const fl_mq_queue_t q[] = {{"orders.payment-completed", true}};
        static const fl_mq_binding_t b[] = {
            {"orders.payment-completed", "shop", "payment.completed"}};
        fl_mq_consumer_t c[] = {{"orders.payment-completed", on_payment, &o}};
        fl_mq_config_t mc = {.url = url,
                             .exchanges = ex,
                             .nexchanges = 1,
                             .queues = q,
                             .nqueues = 1,
                             .bindings = b,
                             .nbindings = 1,
                             .consumers = c,
                             .nconsumers = 1,
                             .tracer = o.svc.tracer,
                             .on_state = fl_svc_mq_state,
                             .state_arg = &o.svc};
        if (fl_mq_start(&o.svc.loop, &mc, &o.mq)) {
            fl_svc_complain(&o.svc, "bad AMQP_URL '%s'", url);
            return 2;
        }
    } else {
        fl_svc_say(&o.svc, "no AMQP_URL: orders are stored but not announced");
    }
    fl_grpc_server_config_t cfg = {
        .ignore_deadline = fl_svc_bug(&o.svc, "ignore-deadline"), .log = server_log, .log_arg = &o};
    rc = fl_grpc_server_start(&o.svc.loop, o.svc.bind, o.svc.port, &cfg, &o.server);
    if (rc) {
        fl_svc_complain(&o.svc, "cannot listen on %s:%d: %s", o.svc.bind, o.svc.port,
                        fl_strerror(rc));
        return 1;
    }
    fl_grpc_server_add(o.server, "/shop.Orders/CreateOrder", create_order, &o);
    fl_grpc_server_add(o.server, "/shop.Orders/GetOrder", get_order, &o);
    fl_grpc_server_set_health(o.server, "shop.Orders", 1);
    fl_svc_say(&o.svc, "listening on %s:%d", o.svc.bind, fl_grpc_server_port(o.server));
    uv_timer_init(&o.svc.loop, &o.outbox);
    o.outbox.data = &o;
    uv_timer_start(&o.outbox, on_outbox, o.outbox_ms, o.outbox_ms);
    fl_svc_register(&o.svc, fl_grpc_server_port(o.server), "grpc");
    return fl_svc_run(&o.svc, on_stop, &o);
}
