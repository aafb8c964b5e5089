/* payments: the shop's payment service on services/runtime. It consumes order.created (queue
 * payments.order-created on the "shop" exchange), charges each order exactly once — a row in
 * SQLite (PAYMENTS_DB, ":memory:" by default) keyed by the order, so a redelivered message
 * finds its charge and does not charge again — then publishes payment.completed (persistent,
 * confirmed) and only then acks the order.created it came from: a crash anywhere before the
 * ack means a redelivery, never a lost or a double charge. It serves gRPC health only (for
 * its Consul check), logs one line per charge ("charged order o-1f.. 1250") and stops cleanly
 * on SIGTERM. PAYMENTS_CHARGE_MS=N makes each charge take N ms (a payment provider's time).
 *
 * FAULTLINE_BUG=ack-before-commit acks order.created as it arrives, before the charge is
 * committed and the payment announced: a crash in between loses the payment, which the
 * messaging suite must catch. */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"
#include "services/runtime/grpc_server.h"
#include "services/runtime/mq.h"
#include "services/runtime/svc.h"

#define GRACE_MS 2000

typedef struct {
    fl_svc_t svc;
    fl_grpc_server_t *server;
    sqlite3 *db;
    fl_mq_t *mq;
    int ack_early;
    uint64_t charge_ms;      /* PAYMENTS_CHARGE_MS: how long the payment provider takes */
    struct pending *waiting; /* charges waiting for the provider */
    int closing_left;
} payments_t;

/* A delivery waiting for its payment.completed to be confirmed. */
typedef struct pending {
    payments_t *p;
    struct pending *next, *prev; /* in p->waiting while the provider works */
    fl_mq_delivery_t *d;         /* NULL when acked already (ack-before-commit) */
    char order[64];
    int64_t amount;
    int redelivered;
    fl_tracectx_t ctx;
    int has_ctx;
    uv_timer_t timer; /* the provider's time (PAYMENTS_CHARGE_MS) */
} pending_t;

static void pending_free(uv_handle_t *h)
{
    free(h->data);
}

static void unwait(pending_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else if (w->p->waiting == w)
        w->p->waiting = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
}

static void on_confirm(fl_mq_t *mq, int status, void *arg)
{
    pending_t *w = arg;
    if (w->d) {
        if (status == 0)
            fl_mq_ack(mq, w->d);
        else
            fl_mq_nack(mq, w->d, true); /* announce it again on the redelivery */
    }
    if (status != 0)
        fl_svc_say(&w->p->svc, "payment of order %s not announced (%s)", w->order,
                   fl_strerror(status));
    uv_close((uv_handle_t *)&w->timer, pending_free);
}

/* Charges the order unless it was charged before: 1 charged now, 0 charged before, -1 error. */
static int charge(payments_t *p, const char *order, int64_t amount)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(p->db,
                           "INSERT OR IGNORE INTO charges (order_id, amount, at) VALUES (?, ?, "
                           "strftime('%s','now'))",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, order, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, amount);
    int rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(p->db) : -1;
    sqlite3_finalize(st);
    return rc;
}

/* The charge, once the provider is done: committed, then announced; the delivery is acked when
 * the announcement is confirmed. */
static void do_charge(pending_t *w)
{
    payments_t *p = w->p;
    fl_mq_t *mq = p->mq;
    int rc = charge(p, w->order, w->amount);
    if (rc < 0) {
        fl_svc_complain(&p->svc, "cannot charge order %s: %s", w->order, sqlite3_errmsg(p->db));
        if (w->d)
            fl_mq_nack(mq, w->d, true);
        uv_close((uv_handle_t *)&w->timer, pending_free);
        return;
    }
    if (rc)
        fl_svc_say(&p->svc, "charged order %s %lld", w->order, (long long)w->amount);
    else
        fl_svc_say(&p->svc, "order %s was charged before (redelivered=%s)", w->order,
                   w->redelivered ? "true" : "false");
    json_t *out = json_pack("{s:s, s:I}", "order_id", w->order, "amount", (json_int_t)w->amount);
    char *body = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    char mid[80];
    snprintf(mid, sizeof mid, "pay-%s", w->order);
    fl_mq_publish_opts_t po = {.persistent = true,
                               .message_id = mid,
                               .content_type = "application/json",
                               .parent = w->has_ctx ? &w->ctx : NULL};
    if (!body ||
        fl_mq_publish(mq, "shop", "payment.completed", body, strlen(body), &po, on_confirm, w)) {
        /* not connected: the redelivery will announce it */
        if (w->d)
            fl_mq_nack(mq, w->d, true);
        uv_close((uv_handle_t *)&w->timer, pending_free);
    }
    free(body);
}

static void on_charged(uv_timer_t *t)
{
    unwait(t->data);
    do_charge(t->data);
}

static void on_order(fl_mq_t *mq, fl_mq_delivery_t *d, void *arg)
{
    payments_t *p = arg;
    json_t *doc = json_loadb(d->body, d->len, 0, NULL);
    const char *order = json_string_value(json_object_get(doc, "order_id"));
    json_int_t amount = json_integer_value(json_object_get(doc, "amount"));
    if (!order || strlen(order) >= 64 || amount <= 0) {
        fl_svc_complain(&p->svc, "order.created without a valid order_id and amount: dropped");
        json_decref(doc);
        fl_mq_nack(mq, d, false);
        return;
    }
    pending_t *w = calloc(1, sizeof *w);
    if (!w) {
        json_decref(doc);
        fl_mq_nack(mq, d, true);
        return;
    }
    w->p = p;
    w->d = d;
    w->amount = amount;
    w->redelivered = d->redelivered;
    w->has_ctx = d->has_ctx;
    if (d->has_ctx)
        w->ctx = d->ctx;
    snprintf(w->order, sizeof w->order, "%s", order);
    json_decref(doc);
    uv_timer_init(&p->svc.loop, &w->timer);
    w->timer.data = w;
    if (p->ack_early) { /* the bug: the message is gone before anything is committed */
        fl_mq_ack(mq, d);
        w->d = NULL;
    }
    if (p->charge_ms) {
        w->next = p->waiting;
        if (p->waiting)
            p->waiting->prev = w;
        p->waiting = w;
        uv_timer_start(&w->timer, on_charged, p->charge_ms, 0);
    } else {
        do_charge(w);
    }
}

static void closed_one(void *arg)
{
    payments_t *p = arg;
    if (--p->closing_left == 0) {
        sqlite3_close(p->db);
        fl_svc_stopped(&p->svc);
    }
}

static void server_down(fl_grpc_server_t *srv, void *arg)
{
    (void)srv;
    closed_one(arg);
}

static void on_stop(fl_svc_t *s, void *arg)
{
    payments_t *p = arg;
    (void)s;
    /* charges the provider has not finished are dropped: their messages come back */
    while (p->waiting) {
        pending_t *w = p->waiting;
        unwait(w);
        uv_timer_stop(&w->timer);
        uv_close((uv_handle_t *)&w->timer, pending_free);
    }
    p->closing_left = p->mq ? 2 : 1;
    if (p->mq)
        fl_mq_close(p->mq, closed_one, p);
    fl_grpc_server_shutdown(p->server, GRACE_MS, server_down, p);
}

int main(void)
{
    static payments_t p;
    int rc = fl_svc_init(&p.svc, "payments", 50063);
    if (rc)
        return rc;
    p.ack_early = fl_svc_bug(&p.svc, "ack-before-commit");
    const char *cm = getenv("PAYMENTS_CHARGE_MS");
    p.charge_ms = cm && *cm ? strtoull(cm, NULL, 10) : 0;
    const char *dbpath = getenv("PAYMENTS_DB");
    if (!dbpath || !*dbpath)
        dbpath = ":memory:";
    if (sqlite3_open(dbpath, &p.db) != SQLITE_OK) {
        fl_svc_complain(&p.svc, "cannot open PAYMENTS_DB '%s': %s", dbpath, sqlite3_errmsg(p.db));
        return 2;
    }
    sqlite3_busy_timeout(p.db, 5000);
    char *err = NULL;
    if (sqlite3_exec(p.db,
                     "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS charges (order_id TEXT "
                     "PRIMARY KEY, amount INTEGER, at INTEGER)",
                     NULL, NULL, &err) != SQLITE_OK) {
        fl_svc_complain(&p.svc, "sqlite: %s", err ? err : "?");
        sqlite3_free(err);
        return 1;
    }
    const char *url = getenv("AMQP_URL");
    if (!url || !*url) {
        fl_svc_complain(&p.svc, "AMQP_URL is not set: payments has nothing to do without a broker");
        return 2;
    }
    static const fl_mq_exchange_t ex[] = {{"shop", "topic", true}};
    static const fl_mq_queue_t q[] = {{"payments.order-created", true}};
    static const fl_mq_binding_t b[] = {{"payments.order-created", "shop", "order.created"}};
    fl_mq_consumer_t c[] = {{"payments.order-created", on_order, &p}};
    fl_mq_config_t mc = {.url = url,
                         .exchanges = ex,
                         .nexchanges = 1,
                         .queues = q,
                         .nqueues = 1,
                         .bindings = b,
                         .nbindings = 1,
                         .consumers = c,
                         .nconsumers = 1,
                         .prefetch = 16,
                         .tracer = p.svc.tracer,
                         .on_state = fl_svc_mq_state,
                         .state_arg = &p.svc};
    if (fl_mq_start(&p.svc.loop, &mc, &p.mq)) {
        fl_svc_complain(&p.svc, "bad AMQP_URL '%s'", url);
        return 2;
    }
    fl_grpc_server_config_t cfg = {0};
    rc = fl_grpc_server_start(&p.svc.loop, p.svc.bind, p.svc.port, &cfg, &p.server);
    if (rc) {
        fl_svc_complain(&p.svc, "cannot listen on %s:%d: %s", p.svc.bind, p.svc.port,
                        fl_strerror(rc));
        return 1;
    }
    fl_svc_say(&p.svc, "listening on %s:%d", p.svc.bind, fl_grpc_server_port(p.server));
    fl_svc_register(&p.svc, fl_grpc_server_port(p.server), "grpc");
    return fl_svc_run(&p.svc, on_stop, &p);
}
