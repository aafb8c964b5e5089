/* The broker as the rest of faultline sees it (amqp.h): creating and closing it, its
 * listener, the faults a scenario applies, restart with RabbitMQ's durability rules, and
 * queue statistics. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/amqp/internal.h"
#include "lib/err.h"

void broker_event(broker_t *b, const char *fmt, ...)
{
    if (!b->cfg.on_event)
        return;
    char text[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    b->cfg.on_event(b->cfg.event_arg, text);
}

static void broker_free(broker_t *b)
{
    for (size_t i = 0; i < b->nvhosts; i++)
        vhost_free(b->vhosts[i]);
    free(b->vhosts);
    free(b->user);
    free(b->password);
    free(b);
}

int fl_amqp_new(uv_loop_t *loop, const fl_amqp_config_t *cfg, fl_amqp_t **out)
{
    if (!loop || !out)
        return FL_EINVAL;
    broker_t *b = calloc(1, sizeof *b);
    if (!b)
        return FL_ENOMEM;
    b->loop = loop;
    if (cfg)
        b->cfg = *cfg;
    b->cfg.data_dir = NULL; /* journal.c keeps its own copy */
    b->user = amqp_strdup(cfg && cfg->user ? cfg->user : "guest");
    b->password = amqp_strdup(cfg && cfg->password ? cfg->password : "guest");
    fl_rng_seed(&b->rng, cfg ? cfg->seed : 0);
    fl_rng_seed(&b->name_rng, (cfg ? cfg->seed : 0) ^ 0x6e616d6573ull);
    int rc = FL_ENOMEM;
    if (!b->user || !b->password)
        goto fail;
    const char *vhosts = cfg && cfg->vhosts ? cfg->vhosts : "/";
    for (const char *p = vhosts; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char name[256];
        if (n == 0 || n > 255) {
            rc = FL_EINVAL;
            goto fail;
        }
        memcpy(name, p, n);
        name[n] = 0;
        if (!vhost_find(b, name) && !vhost_add(b, name))
            goto fail;
        p += n + (e ? 1 : 0);
    }
    if (cfg && cfg->data_dir && (rc = journal_open(b, cfg->data_dir)) < 0)
        goto fail;
    *out = b;
    return 0;
fail:
    broker_free(b);
    return rc;
}

static void on_connection(uv_stream_t *server, int status)
{
    broker_t *b = server->data;
    if (status < 0 || b->down || b->closing)
        return;
    conn_accept(b, server);
    settle(b);
}

static void on_listener_closed(uv_handle_t *h)
{
    broker_t *b = h->data;
    b->pending_closes--;
    amqp_maybe_closed(b);
}

static int listen_now(broker_t *b)
{
    struct sockaddr_storage ss;
    int rc = strchr(b->host, ':') ? uv_ip6_addr(b->host, b->port, (struct sockaddr_in6 *)&ss)
                                  : uv_ip4_addr(b->host, b->port, (struct sockaddr_in *)&ss);
    if (rc < 0)
        return FL_EINVAL;
    uv_tcp_init(b->loop, &b->listener);
    b->listener.data = b;
    b->pending_closes++;
    rc = uv_tcp_bind(&b->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&b->listener, 1024, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)&b->listener, on_listener_closed);
        return rc == UV_EADDRINUSE ? FL_EADDRINUSE : FL_EINVAL;
    }
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_tcp_getsockname(&b->listener, (struct sockaddr *)&got, &len);
    b->port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                             : ((struct sockaddr_in6 *)&got)->sin6_port);
    b->listening = 1;
    return 0;
}

int fl_amqp_listen(fl_amqp_t *b, const char *host, int port)
{
    if (!b || !host || port < 0 || port > 65535 || strlen(host) >= sizeof b->host)
        return FL_EINVAL;
    if (b->listening || b->closing)
        return FL_ESTATE;
    snprintf(b->host, sizeof b->host, "%s", host);
    b->port = port;
    return listen_now(b);
}

int fl_amqp_port(const fl_amqp_t *b)
{
    return b->port;
}

int fl_amqp_connections(const fl_amqp_t *b)
{
    int n = 0;
    for (conn_t *c = b->conns; c; c = c->next)
        n++;
    return n;
}

static void stop_listening(broker_t *b)
{
    if (!b->listening)
        return;
    b->listening = 0;
    uv_close((uv_handle_t *)&b->listener, on_listener_closed);
}

int fl_amqp_drop_connections(fl_amqp_t *b)
{
    int n = 0;
    while (b->conns) {
        conn_drop(b->conns);
        n++;
    }
    settle(b);
    return n;
}

void amqp_maybe_closed(broker_t *b)
{
    if (!b->closing || b->pending_closes > 0)
        return;
    /* every handle is closed: what is left is memory */
    void (*cb)(void *) = b->close_cb;
    void *arg = b->close_arg;
    journal_close(b);
    broker_free(b);
    if (cb)
        cb(arg);
}

static void on_queue_timer_closed(uv_handle_t *h)
{
    queue_t *q = h->data;
    broker_t *b = q->vh->b;
    q->timer_open = 0;
    b->pending_closes--;
    amqp_maybe_closed(b);
}

static void close_queue_timers(broker_t *b)
{
    for (size_t v = 0; v < b->nvhosts; v++) {
        size_t it = 0;
        queue_t *q;
        while ((q = map_next(&b->vhosts[v]->queues, &it))) {
            if (q->timer_open && !uv_is_closing((uv_handle_t *)&q->timer)) {
                b->pending_closes++;
                uv_close((uv_handle_t *)&q->timer, on_queue_timer_closed);
            }
        }
    }
}

void fl_amqp_close(fl_amqp_t *b, void (*cb)(void *arg), void *arg)
{
    if (b->closing)
        return;
    b->close_cb = cb;
    b->close_arg = arg;
    stop_listening(b);
    while (b->conns)
        conn_drop(b->conns);
    b->closing = 1;
    b->pending_closes++; /* held while the queue timers are closed */
    close_queue_timers(b);
    b->pending_closes--;
    amqp_maybe_closed(b);
}

int fl_amqp_set_down(fl_amqp_t *b, int down)
{
    if (b->closing)
        return FL_ESTATE;
    if (down && !b->down) {
        b->down = 1;
        stop_listening(b);
        int n = fl_amqp_drop_connections(b);
        broker_event(b, "down: listener closed, %d connection(s) dropped", n);
    } else if (!down && b->down) {
        b->down = 0;
        int rc = listen_now(b);
        if (rc < 0) {
            b->down = 1;
            broker_event(b, "up failed: %s", fl_strerror(rc));
            return rc;
        }
        broker_event(b, "up: listening again on %s:%d", b->host, b->port);
    }
    return 0;
}

/* What a restart keeps: durable exchanges and queues, bindings between durable ends, and
 * persistent messages in durable queues. */
static void forget_transient(vhost_t *vh)
{
    size_t it = 0;
    queue_t *q;
    queue_t *gone[256];
    size_t ngone;
    do {
        ngone = 0;
        it = 0;
        while ((q = map_next(&vh->queues, &it)) && ngone < 256)
            if (!q->durable)
                gone[ngone++] = q;
        for (size_t i = 0; i < ngone; i++)
            queue_delete(gone[i]);
    } while (ngone == 256);
    exchange_t *xs[256];
    do {
        ngone = 0;
        it = 0;
        exchange_t *x;
        while ((x = map_next(&vh->exchanges, &it)) && ngone < 256)
            if (!x->durable)
                xs[ngone++] = x;
        for (size_t i = 0; i < ngone; i++)
            exchange_delete(xs[i]);
    } while (ngone == 256);
    it = 0;
    while ((q = map_next(&vh->queues, &it))) {
        queue_drop_transient(q);
        q->had_consumer = 0;
    }
}

void fl_amqp_restart(fl_amqp_t *b)
{
    if (b->closing)
        return;
    int n = 0;
    for (conn_t *c = b->conns; c; c = c->next) {
        if (c->state == C_OPENED) {
            conn_error(c, FL_AMQP_CONNECTION_FORCED,
                       "CONNECTION_FORCED - broker forced connection closure with reason "
                       "'shutdown'",
                       0, 0);
        }
        n++;
    }
    /* the close frames go out, then the sockets go, whatever the clients answer */
    settle(b);
    while (b->conns)
        conn_drop(b->conns);
    for (size_t v = 0; v < b->nvhosts; v++)
        forget_transient(b->vhosts[v]);
    settle(b);
    broker_event(b, "restarted: %d connection(s) closed, transient state lost", n);
}

void fl_amqp_set_blocked(fl_amqp_t *b, int blocked)
{
    if (!!blocked == b->blocked)
        return;
    b->blocked = (uint8_t) !!blocked;
    for (conn_t *c = b->conns; c; c = c->next)
        conn_send_blocked(c, b->blocked);
    broker_event(b, blocked ? "publishers blocked" : "publishers unblocked");
    if (!blocked) {
        for (conn_t *c = b->conns, *next; c; c = next) {
            next = c->next;
            if (c->held)
                conn_resume(c);
        }
    }
    settle(b);
}

void fl_amqp_set_delay(fl_amqp_t *b, uint64_t ns)
{
    b->delay_ns = ns;
    broker_event(b, "deliveries delayed by %llu ms", (unsigned long long)(ns / 1000000));
}

void fl_amqp_set_duplicate(fl_amqp_t *b, double rate)
{
    b->dup_rate = rate;
    broker_event(b, "duplicate deliveries at rate %g", rate);
}

void fl_amqp_set_drop(fl_amqp_t *b, double rate)
{
    b->drop_rate = rate;
    broker_event(b, "drop deliveries at rate %g", rate);
}

int fl_amqp_queue_stats(fl_amqp_t *b, const char *vhost, const char *name,
                        fl_amqp_queue_stats_t *out)
{
    vhost_t *vh = vhost_find(b, vhost ? vhost : "/");
    queue_t *q = vh ? map_get(&vh->queues, name) : NULL;
    if (!q)
        return FL_ENOTFOUND;
    memset(out, 0, sizeof *out);
    out->ready = q->ready.len;
    out->unacked = q->unacked;
    out->consumers = q->nconsumers;
    out->published = q->st.published;
    out->delivered = q->st.delivered;
    out->acked = q->st.acked;
    out->redelivered = q->st.redelivered;
    out->dropped = q->st.dropped;
    out->duplicated = q->st.duplicated;
    out->dead_lettered = q->st.dead_lettered;
    out->expired = q->st.expired;
    return 0;
}
