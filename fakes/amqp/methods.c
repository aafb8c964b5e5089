/* One handler per method a client sends on an open channel, with RabbitMQ's checks in
 * RabbitMQ's order and its reply codes and texts (its rabbit_channel module is the reference
 * for what a client observes): exchange, queue, basic, confirm and tx classes, and
 * channel.flow and access.request. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/amqp/internal.h"
#include "lib/err.h"

#define TEXT_MAX 512

/* A channel (or, for hard codes, connection) error: "NAME - text". Returns -1. */
static int fail(channel_t *ch, const fl_amqp_method_t *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(channel_t *ch, const fl_amqp_method_t *m, int code, const char *fmt, ...)
{
    char text[TEXT_MAX];
    int n = snprintf(text, sizeof text, "%s - ", fl_amqp_reply_name(code));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
    va_end(ap);
    channel_error(ch, code, text, m->class_id, m->method_id);
    return -1;
}

/* A short string argument as a C string (short strings are at most 255 bytes). */
static void arg_str(const fl_amqp_method_t *m, int i, char out[256])
{
    memcpy(out, m->args[i].p, m->args[i].len);
    out[m->args[i].len] = 0;
}

static const char *vname(const channel_t *ch)
{
    return ch->c->vh->name;
}

static int reply_ok(channel_t *ch, int nowait, uint16_t cls, uint16_t id)
{
    if (!nowait)
        fl_amqp_method_frame(conn_out(ch->c), ch->id, cls, id);
    return 0;
}

static void random_name(broker_t *b, const char *prefix, char out[64])
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    for (int i = 0; i < 22; i++)
        out[n + (size_t)i] = abc[fl_rng_below(&b->name_rng, 64)];
    out[n + 22] = 0;
}

static exchange_t *exchange_or_404(channel_t *ch, const fl_amqp_method_t *m, const char *name)
{
    exchange_t *x = map_get(&ch->c->vh->exchanges, name);
    if (!x)
        fail(ch, m, FL_AMQP_NOT_FOUND, "no exchange '%s' in vhost '%s'", name, vname(ch));
    return x;
}

static int check_exclusive(channel_t *ch, const fl_amqp_method_t *m, const queue_t *q)
{
    if (q->exclusive && q->owner != ch->c)
        return fail(ch, m, FL_AMQP_RESOURCE_LOCKED,
                    "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could "
                    "be originally declared on another connection or the exclusive property value "
                    "does not match that of the original declaration.",
                    q->name, vname(ch));
    return 0;
}

/* The queue named by argument i ("" is the channel's last declared queue): 404 and 405. */
static queue_t *queue_arg(channel_t *ch, const fl_amqp_method_t *m, int i, char name[256])
{
    arg_str(m, i, name);
    if (!name[0]) {
        if (!ch->last_queue[0]) {
            fail(ch, m, FL_AMQP_NOT_FOUND, "no previously declared queue");
            return NULL;
        }
        strcpy(name, ch->last_queue);
    }
    queue_t *q = map_get(&ch->c->vh->queues, name);
    if (!q) {
        fail(ch, m, FL_AMQP_NOT_FOUND, "no queue '%s' in vhost '%s'", name, vname(ch));
        return NULL;
    }
    return check_exclusive(ch, m, q) ? NULL : q;
}

static const char *tf(int v)
{
    return v ? "true" : "false";
}

/* ---- exchange ---- */

static int exchange_declare(channel_t *ch, const fl_amqp_method_t *m)
{
    char name[256], type[256];
    arg_str(m, 1, name);
    arg_str(m, 2, type);
    int passive = (int)m->args[3].u, durable = (int)m->args[4].u, auto_delete = (int)m->args[5].u,
        internal = (int)m->args[6].u, nowait = (int)m->args[7].u;
    if (passive) {
        if (name[0] && !exchange_or_404(ch, m, name))
            return -1;
        return reply_ok(ch, nowait, 40, 11);
    }
    int t = exchange_type_parse(type);
    if (t < 0)
        return fail(ch, m, FL_AMQP_COMMAND_INVALID, "unknown exchange type '%s'", type);
    if (!name[0])
        return fail(ch, m, FL_AMQP_ACCESS_REFUSED,
                    "operation not permitted on the default exchange");
    exchange_t *x = map_get(&ch->c->vh->exchanges, name);
    if (!x) {
        if (strncmp(name, "amq.", 4) == 0)
            return fail(ch, m, FL_AMQP_ACCESS_REFUSED,
                        "exchange name '%s' contains reserved prefix 'amq.*'", name);
        x = exchange_add(ch->c->vh, name, t, durable, auto_delete, internal, m->args[8].p,
                         m->args[8].len);
        if (!x)
            return fail(ch, m, FL_AMQP_INTERNAL_ERROR, "out of memory");
        broker_event(ch->c->b, "exchange %s (%s%s) declared", name, type,
                     durable ? ", durable" : "");
        return reply_ok(ch, nowait, 40, 11);
    }
    const char *what = NULL, *got = NULL, *cur = NULL;
    if (x->type != t)
        what = "type", got = type, cur = exchange_type_name(x->type);
    else if (x->durable != durable)
        what = "durable", got = tf(durable), cur = tf(x->durable);
    else if (x->auto_delete != auto_delete)
        what = "auto_delete", got = tf(auto_delete), cur = tf(x->auto_delete);
    else if (x->internal != internal)
        what = "internal", got = tf(internal), cur = tf(x->internal);
    if (what)
        return fail(ch, m, FL_AMQP_PRECONDITION_FAILED,
                    "inequivalent arg '%s' for exchange '%s' in vhost '%s': received '%s' but "
                    "current is '%s'",
                    what, name, vname(ch), got, cur);
    return reply_ok(ch, nowait, 40, 11);
}

static int exchange_delete_m(channel_t *ch, const fl_amqp_method_t *m)
{
    char name[256];
    arg_str(m, 1, name);
    int if_unused = (int)m->args[2].u, nowait = (int)m->args[3].u;
    if (!name[0])
        return fail(ch, m, FL_AMQP_ACCESS_REFUSED,
                    "operation not permitted on the default exchange");
    if (strncmp(name, "amq.", 4) == 0)
        return fail(ch, m, FL_AMQP_ACCESS_REFUSED,
                    "deletion of system exchange '%s' in vhost '%s' not allowed", name, vname(ch));
    exchange_t *x = map_get(&ch->c->vh->exchanges, name);
    if (!x)
        return reply_ok(ch, nowait, 40, 21);
    if (if_unused && (x->nbinds || x->bound_from))
        return fail(ch, m, FL_AMQP_PRECONDITION_FAILED, "exchange '%s' in vhost '%s' in use", name,
                    vname(ch));
    exchange_delete(x);
    broker_event(ch->c->b, "exchange %s deleted", name);
    return reply_ok(ch, nowait, 40, 21);
}

static int exchange_bind(channel_t *ch, const fl_amqp_method_t *m, int bind)
{
    char dst[256], src[256], rk[256];
    arg_str(m, 1, dst);
    arg_str(m, 2, src);
    arg_str(m, 3, rk);
    int nowait = (int)m->args[4].u;
    if (!dst[0] || !src[0])
        return fail(ch, m, FL_AMQP_ACCESS_REFUSED,
                    "operation not permitted on the default exchange");
    exchange_t *d = exchange_or_404(ch, m, dst);
    if (!d)
        return -1;
    exchange_t *s = exchange_or_404(ch, m, src);
    if (!s)
        return -1;
    if (bind) {
        if (binding_add(s, 0, d, rk, m->args[5].p, m->args[5].len))
            return fail(ch, m, FL_AMQP_INTERNAL_ERROR, "out of memory");
        return reply_ok(ch, nowait, 40, 31);
    }
    binding_remove(s, 0, d, rk, m->args[5].p, m->args[5].len);
    return reply_ok(ch, nowait, 40, 51);
}

/* ---- queue ---- */

static int queue_declare(channel_t *ch, const fl_amqp_method_t *m)
{
    char name[256];
    arg_str(m, 1, name);
    int passive = (int)m->args[2].u, durable = (int)m->args[3].u, exclusive = (int)m->args[4].u,
        auto_delete = (int)m->args[5].u, nowait = (int)m->args[6].u;
    vhost_t *vh = ch->c->vh;
    queue_t *q;
    if (passive) {
        if (!name[0] && ch->last_queue[0])
            strcpy(name, ch->last_queue);
        q = map_get(&vh->queues, name);
        if (!q)
            return fail(ch, m, FL_AMQP_NOT_FOUND, "no queue '%s' in vhost '%s'", name, vname(ch));
        if (check_exclusive(ch, m, q))
            return -1;
    } else {
        if (!name[0]) {
            char gen[64];
            do
                random_name(ch->c->b, "amq.gen-", gen);
            while (map_get(&vh->queues, gen));
            strcpy(name, gen);
        } else if (strncmp(name, "amq.", 4) == 0 && !map_get(&vh->queues, name)) {
            return fail(ch, m, FL_AMQP_ACCESS_REFUSED,
                        "queue name '%s' contains reserved prefix 'amq.*'", name);
        }
        q = map_get(&vh->queues, name);
        if (q) {
            if (check_exclusive(ch, m, q))
                return -1;
            const char *what = NULL;
            int got = 0, cur = 0;
            if (q->durable != durable)
                what = "durable", got = durable, cur = q->durable;
            else if (q->auto_delete != auto_delete)
                what = "auto_delete", got = auto_delete, cur = q->auto_delete;
            if (what)
                return fail(ch, m, FL_AMQP_PRECONDITION_FAILED,
                            "inequivalent arg '%s' for queue '%s' in vhost '%s': received '%s' "
                            "but current is '%s'",
                            what, name, vname(ch), tf(got), tf(cur));
            if (q->exclusive != exclusive && exclusive)
                return check_exclusive(ch, m, &(queue_t){.name = q->name, .exclusive = 1});
            char text[TEXT_MAX];
            if (queue_args_differ(q, m->args[7].p, m->args[7].len, text, sizeof text)) {
                channel_error(ch, FL_AMQP_PRECONDITION_FAILED, text, m->class_id, m->method_id);
                return -1;
            }
        } else {
            char text[TEXT_MAX];
            int code =
                queue_args_check(m->args[7].p, m->args[7].len, name, vname(ch), text, sizeof text);
            if (code) {
                channel_error(ch, code, text, m->class_id, m->method_id);
                return -1;
            }
            q = queue_add(vh, name, durable, exclusive, auto_delete, ch->c, m->args[7].p,
                          m->args[7].len);
            if (!q)
                return fail(ch, m, FL_AMQP_INTERNAL_ERROR, "out of memory");
            broker_event(ch->c->b, "queue %s declared%s%s%s", name, durable ? " durable" : "",
                         exclusive ? " exclusive" : "", auto_delete ? " auto-delete" : "");
        }
    }
    q->last_used = uv_hrtime();
    queue_arm_timer(q);
    snprintf(ch->last_queue, sizeof ch->last_queue, "%s", name);
    if (!nowait)
        fl_amqp_method_frame(conn_out(ch->c), ch->id, 50, 11, name, (uint32_t)q->ready.len,
                             (uint32_t)q->nconsumers);
    return 0;
}

static int queue_bind(channel_t *ch, const fl_amqp_method_t *m, int bind)
{
    char qname[256], xname[256], rk[256];
    queue_t *q = queue_arg(ch, m, 1, qname);
    if (!q)
        return -1;
    arg_str(m, 2, xname);
    arg_str(m, 3, rk);
    if (!rk[0] && m->args[1].len == 0)
        strcpy(rk, qname);
    if (!xname[0])
        return fail(ch, m, FL_AMQP_ACCESS_REFUSED,
                    "operation not permitted on the default exchange");
    exchange_t *x = exchange_or_404(ch, m, xname);
    if (!x)
        return -1;
    const fl_amqp_arg_t *args = &m->args[bind ? 5 : 4];
    if (bind) {
        if (binding_add(x, 1, q, rk, args->p, args->len))
            return fail(ch, m, FL_AMQP_INTERNAL_ERROR, "out of memory");
        return reply_ok(ch, (int)m->args[4].u, 50, 21);
    }
    binding_remove(x, 1, q, rk, args->p, args->len);
    return reply_ok(ch, 0, 50, 51);
}

static int queue_purge_m(channel_t *ch, const fl_amqp_method_t *m)
{
    char name[256];
    queue_t *q = queue_arg(ch, m, 1, name);
    if (!q)
        return -1;
    uint64_t n = queue_purge(q);
    if (!m->args[2].u)
        fl_amqp_method_frame(conn_out(ch->c), ch->id, 50, 31, (uint32_t)n);
    return 0;
}

static int queue_delete_m(channel_t *ch, const fl_amqp_method_t *m)
{
    char name[256];
    arg_str(m, 1, name);
    if (!name[0] && ch->last_queue[0])
        strcpy(name, ch->last_queue);
    int if_unused = (int)m->args[2].u, if_empty = (int)m->args[3].u, nowait = (int)m->args[4].u;
    queue_t *q = map_get(&ch->c->vh->queues, name);
    uint64_t n = 0;
    if (q) {
        if (check_exclusive(ch, m, q))
            return -1;
        if (if_unused && q->nconsumers)
            return fail(ch, m, FL_AMQP_PRECONDITION_FAILED, "queue '%s' in vhost '%s' in use", name,
                        vname(ch));
        if (if_empty && q->ready.len)
            return fail(ch, m, FL_AMQP_PRECONDITION_FAILED, "queue '%s' in vhost '%s' not empty",
                        name, vname(ch));
        n = queue_delete(q);
    }
    if (!nowait)
        fl_amqp_method_frame(conn_out(ch->c), ch->id, 50, 41, (uint32_t)n);
    return 0;
}

/* ---- basic ---- */

static int basic_qos(channel_t *ch, const fl_amqp_method_t *m)
{
    if (m->args[0].u != 0)
        return fail(ch, m, FL_AMQP_NOT_IMPLEMENTED, "prefetch_size!=0 (%llu)",
                    (unsigned long long)m->args[0].u);
    if (m->args[2].u)
        ch->prefetch_channel = (uint16_t)m->args[1].u;
    else
        ch->prefetch_consumer = (uint16_t)m->args[1].u;
    for (size_t i = 0; i < ch->nconsumers; i++)
        queue_kick(ch->consumers[i]->q);
    return reply_ok(ch, 0, 60, 11);
}

static int basic_consume(channel_t *ch, const fl_amqp_method_t *m)
{
    char qname[256], tag[256];
    queue_t *q = queue_arg(ch, m, 1, qname);
    if (!q)
        return -1;
    arg_str(m, 2, tag);
    int no_ack = (int)m->args[4].u, exclusive = (int)m->args[5].u, nowait = (int)m->args[6].u;
    if (!tag[0]) {
        char gen[64];
        random_name(ch->c->b, "amq.ctag-", gen);
        strcpy(tag, gen);
    }
    for (size_t i = 0; i < ch->nconsumers; i++)
        if (strcmp(ch->consumers[i]->tag, tag) == 0)
            return fail(ch, m, FL_AMQP_NOT_ALLOWED, "attempt to reuse consumer tag '%s'", tag);
    int locked = exclusive && q->nconsumers;
    for (size_t i = 0; i < q->nconsumers; i++)
        if (q->consumers[i]->exclusive)
            locked = 1;
    if (locked)
        return fail(ch, m, FL_AMQP_ACCESS_REFUSED, "queue '%s' in vhost '%s' in exclusive use",
                    qname, vname(ch));
    consumer_t *c;
    if (consumer_add(ch, q, tag, no_ack, exclusive, &c))
        return fail(ch, m, FL_AMQP_INTERNAL_ERROR, "out of memory");
    if (!nowait)
        fl_amqp_method_frame(conn_out(ch->c), ch->id, 60, 21, tag);
    return 0;
}

static int basic_cancel(channel_t *ch, const fl_amqp_method_t *m)
{
    char tag[256];
    arg_str(m, 0, tag);
    for (size_t i = 0; i < ch->nconsumers; i++) {
        if (strcmp(ch->consumers[i]->tag, tag) == 0) {
            consumer_remove(ch->consumers[i], 0);
            break;
        }
    }
    if (!m->args[1].u)
        fl_amqp_method_frame(conn_out(ch->c), ch->id, 60, 31, tag);
    return 0;
}

static int basic_publish(channel_t *ch, const fl_amqp_method_t *m)
{
    if (m->args[4].u)
        return fail(ch, m, FL_AMQP_NOT_IMPLEMENTED, "immediate=true");
    arg_str(m, 1, ch->pub_exchange);
    arg_str(m, 2, ch->pub_rkey);
    ch->pub_mandatory = (uint8_t)m->args[3].u;
    ch->content = 1;
    return 0;
}

static void send_return(channel_t *ch, msg_t *m)
{
    fl_buf_t *out = conn_out(ch->c);
    fl_amqp_method_frame(out, ch->id, 60, 50, FL_AMQP_NO_ROUTE, "NO_ROUTE", msg_exchange(m),
                         msg_rkey(m));
    fl_amqp_header_frame(out, ch->id, m->body_len, msg_props(m), m->props_len);
    fl_amqp_body_frames(out, ch->id, msg_body(m), m->body_len, ch->c->frame_max);
}

int publish_route(channel_t *ch, exchange_t *x, msg_t *m, int mandatory, int *refused)
{
    queue_t *to[1024];
    size_t n = route(x, m, to, sizeof to / sizeof to[0]);
    int took = 0;
    *refused = 0;
    for (size_t i = 0; i < n; i++) {
        if (queue_enqueue(to[i], m))
            took++;
        else
            (*refused)++;
    }
    if (n == 0 && mandatory)
        send_return(ch, m);
    return took;
}

static void confirm(channel_t *ch, uint64_t seq, int ack)
{
    fl_amqp_method_frame(conn_out(ch->c), ch->id, 60, ack ? 80 : 120, seq, 0, 0);
}

void publish_complete(channel_t *ch)
{
    msg_t *msg = ch->pub_msg;
    ch->pub_msg = NULL;
    fl_amqp_method_t m = {.class_id = 60, .method_id = 40};
    exchange_t *x = map_get(&ch->c->vh->exchanges, ch->pub_exchange);
    uint64_t seq = ch->confirm ? ++ch->pub_seq : 0;
    if (!x) {
        fail(ch, &m, FL_AMQP_NOT_FOUND, "no exchange '%s' in vhost '%s'", ch->pub_exchange,
             vname(ch));
        goto done;
    }
    if (x->internal) {
        fail(ch, &m, FL_AMQP_ACCESS_REFUSED,
             "cannot publish to internal exchange '%s' in vhost '%s'", ch->pub_exchange, vname(ch));
        goto done;
    }
    fl_amqp_props_t pr;
    int props_ok = fl_amqp_props_decode(msg_props(msg), msg->props_len, &pr) == 0;
    if (props_ok && FL_AMQP_HAS(&pr, FL_AMQP_P_USER_ID) &&
        (pr.v[FL_AMQP_P_USER_ID].len != strlen(ch->c->user) ||
         memcmp(pr.v[FL_AMQP_P_USER_ID].p, ch->c->user, pr.v[FL_AMQP_P_USER_ID].len) != 0)) {
        fail(ch, &m, FL_AMQP_PRECONDITION_FAILED,
             "user_id property set to '%.*s' but authenticated user was '%s'",
             (int)pr.v[FL_AMQP_P_USER_ID].len, (const char *)pr.v[FL_AMQP_P_USER_ID].p,
             ch->c->user);
        goto done;
    }
    if (props_ok && FL_AMQP_HAS(&pr, FL_AMQP_P_EXPIRATION) && msg->ttl_ms == UINT64_MAX) {
        fail(ch, &m, FL_AMQP_PRECONDITION_FAILED, "invalid expiration '%.*s': no_integer",
             (int)pr.v[FL_AMQP_P_EXPIRATION].len, (const char *)pr.v[FL_AMQP_P_EXPIRATION].p);
        goto done;
    }
    if (ch->tx) {
        txop_t *op = calloc(1, sizeof *op);
        if (!op || !(op->exchange = amqp_strdup(ch->pub_exchange))) {
            free(op);
            fail(ch, &m, FL_AMQP_INTERNAL_ERROR, "out of memory");
            goto done;
        }
        op->kind = 0;
        op->m = msg;
        msg = NULL;
        op->mandatory = ch->pub_mandatory;
        *ch->tx_tail = op;
        ch->tx_tail = &op->next;
        goto done;
    }
    int refused;
    int took = publish_route(ch, x, msg, ch->pub_mandatory, &refused);
    if (ch->confirm)
        confirm(ch, seq, !(refused && !took));
done:
    msg_unref(msg);
}

static int basic_get(channel_t *ch, const fl_amqp_method_t *m)
{
    char name[256];
    queue_t *q = queue_arg(ch, m, 1, name);
    if (!q)
        return -1;
    if (!channel_get(ch, q, (int)m->args[2].u))
        fl_amqp_method_frame(conn_out(ch->c), ch->id, 60, 72, "");
    return 0;
}

static int settle_or_fail(channel_t *ch, const fl_amqp_method_t *m, int rc, const char *text)
{
    if (rc) {
        channel_error(ch, rc, text, m->class_id, m->method_id);
        return -1;
    }
    return 0;
}

static int tx_hold(channel_t *ch, int kind, uint64_t tag, int multiple, int requeue)
{
    txop_t *op = calloc(1, sizeof *op);
    if (!op)
        return -1;
    op->kind = kind;
    op->tag = tag;
    op->multiple = (uint8_t)multiple;
    op->requeue = (uint8_t)requeue;
    *ch->tx_tail = op;
    ch->tx_tail = &op->next;
    return 0;
}

static int basic_ack(channel_t *ch, const fl_amqp_method_t *m)
{
    if (ch->tx)
        return tx_hold(ch, 1, m->args[0].u, (int)m->args[1].u, 0);
    char text[TEXT_MAX];
    return settle_or_fail(
        ch, m, channel_ack(ch, m->args[0].u, (int)m->args[1].u, text, sizeof text), text);
}

static int basic_nack(channel_t *ch, const fl_amqp_method_t *m, int multiple, int requeue)
{
    if (ch->tx)
        return tx_hold(ch, 2, m->args[0].u, multiple, requeue);
    char text[TEXT_MAX];
    return settle_or_fail(
        ch, m, channel_nack(ch, m->args[0].u, multiple, requeue, text, sizeof text), text);
}

static int basic_recover(channel_t *ch, const fl_amqp_method_t *m, int reply)
{
    if (!m->args[0].u)
        return fail(ch, m, FL_AMQP_NOT_IMPLEMENTED, "requeue=false");
    channel_recover(ch, 1);
    return reply ? reply_ok(ch, 0, 60, 111) : 0;
}

/* ---- tx and confirm ---- */

static void tx_free(channel_t *ch)
{
    for (txop_t *op = ch->tx_head, *next; op; op = next) {
        next = op->next;
        msg_unref(op->m);
        free(op->exchange);
        free(op);
    }
    ch->tx_head = NULL;
    ch->tx_tail = &ch->tx_head;
}

static int tx_commit(channel_t *ch, const fl_amqp_method_t *m)
{
    if (!ch->tx)
        return fail(ch, m, FL_AMQP_PRECONDITION_FAILED, "channel is not transactional");
    char text[TEXT_MAX];
    int rc = 0;
    for (txop_t *op = ch->tx_head; op && !rc; op = op->next) {
        if (op->kind == 0) {
            exchange_t *x = map_get(&ch->c->vh->exchanges, op->exchange);
            int refused;
            if (x)
                publish_route(ch, x, op->m, op->mandatory, &refused);
        } else if (op->kind == 1) {
            rc = channel_ack(ch, op->tag, op->multiple, text, sizeof text);
        } else {
            rc = channel_nack(ch, op->tag, op->multiple, op->requeue, text, sizeof text);
        }
    }
    tx_free(ch);
    if (rc)
        return settle_or_fail(ch, m, rc, text);
    return reply_ok(ch, 0, 90, 21);
}

static int tx_rollback(channel_t *ch, const fl_amqp_method_t *m)
{
    if (!ch->tx)
        return fail(ch, m, FL_AMQP_PRECONDITION_FAILED, "channel is not transactional");
    tx_free(ch);
    return reply_ok(ch, 0, 90, 31);
}

void method_dispatch(conn_t *c, channel_t *ch, const fl_amqp_method_t *m)
{
    (void)c;
    switch (m->class_id << 8 | m->method_id) {
    case 20 << 8 | 20: /* channel.flow */
        if (!m->args[0].u) {
            fail(ch, m, FL_AMQP_NOT_IMPLEMENTED, "active=false");
            return;
        }
        fl_amqp_method_frame(conn_out(ch->c), ch->id, 20, 21, 1);
        return;
    case 30 << 8 | 10: /* access.request */
        fl_amqp_method_frame(conn_out(ch->c), ch->id, 30, 11, 1);
        return;
    case 40 << 8 | 10:
        exchange_declare(ch, m);
        return;
    case 40 << 8 | 20:
        exchange_delete_m(ch, m);
        return;
    case 40 << 8 | 30:
        exchange_bind(ch, m, 1);
        return;
    case 40 << 8 | 40:
        exchange_bind(ch, m, 0);
        return;
    case 50 << 8 | 10:
        queue_declare(ch, m);
        return;
    case 50 << 8 | 20:
        queue_bind(ch, m, 1);
        return;
    case 50 << 8 | 30:
        queue_purge_m(ch, m);
        return;
    case 50 << 8 | 40:
        queue_delete_m(ch, m);
        return;
    case 50 << 8 | 50:
        queue_bind(ch, m, 0);
        return;
    case 60 << 8 | 10:
        basic_qos(ch, m);
        return;
    case 60 << 8 | 20:
        basic_consume(ch, m);
        return;
    case 60 << 8 | 30:
        basic_cancel(ch, m);
        return;
    case 60 << 8 | 40:
        basic_publish(ch, m);
        return;
    case 60 << 8 | 70:
        basic_get(ch, m);
        return;
    case 60 << 8 | 80:
        basic_ack(ch, m);
        return;
    case 60 << 8 | 90:
        basic_nack(ch, m, 0, (int)m->args[1].u);
        return;
    case 60 << 8 | 100:
        basic_recover(ch, m, 0);
        return;
    case 60 << 8 | 110:
        basic_recover(ch, m, 1);
        return;
    case 60 << 8 | 120:
        basic_nack(ch, m, (int)m->args[1].u, (int)m->args[2].u);
        return;
    case 85 << 8 | 10:
        if (ch->tx) {
            fail(ch, m, FL_AMQP_PRECONDITION_FAILED, "cannot switch from tx to confirm mode");
            return;
        }
        ch->confirm = 1;
        reply_ok(ch, (int)m->args[0].u, 85, 11);
        return;
    case 90 << 8 | 10:
        if (ch->confirm) {
            fail(ch, m, FL_AMQP_PRECONDITION_FAILED, "cannot switch from confirm to tx mode");
            return;
        }
        ch->tx = 1;
        reply_ok(ch, 0, 90, 11);
        return;
    case 90 << 8 | 20:
        tx_commit(ch, m);
        return;
    case 90 << 8 | 30:
        tx_rollback(ch, m);
        return;
    default:
        fail(ch, m, FL_AMQP_COMMAND_INVALID, "%s is not a method a client sends",
             m->spec ? m->spec->name : "this");
    }
}
