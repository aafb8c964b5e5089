/* The services' AMQP 0-9-1 client on the libuv loop: librabbitmq encodes and decodes the
 * frames; this module drives them without ever blocking the loop (its own non-blocking
 * connect, uv_poll on the socket, frames read with a zero timeout, the handshake and every
 * setup step as a state machine rather than librabbitmq's blocking RPCs).
 *
 * - One connection, one channel, publisher confirms on (confirm.select).
 * - Topology (exchanges, queues, bindings), prefetch (basic.qos) and consumers are declared
 *   again on every connection, so a broker that restarted, or lost its transient state,
 *   gets them back.
 * - Broker lost (socket error, connection.close, channel.close, missed heartbeats): every
 *   publish still waiting for its confirm completes with FL_ECLOSED, deliveries not yet
 *   acked become stale (the broker redelivers them), and the client reconnects with
 *   exponential backoff (backoff_min_ms .. backoff_max_ms), for ever, until fl_mq_close.
 * - A publish completes when the broker confirms it: 0 on basic.ack, FL_EIO on basic.nack,
 *   FL_ECLOSED when the connection went first. The caller decides whether to publish again
 *   (at-least-once: consumers must be idempotent, as DESIGN.md's payments is).
 * - Deliveries are acked by the handler once its work is committed, at once or later:
 *   every delivery must get exactly one fl_mq_ack or fl_mq_nack, which frees it.
 * - W3C trace context travels in the message headers `traceparent` and `tracestate` (long
 *   strings, as OpenTelemetry's RabbitMQ instrumentations do). With a tracer, a publish is
 *   a PRODUCER span (ended by its confirm) and a delivery a CONSUMER span (ended by its
 *   ack or nack) whose context the handler uses as the parent of its own work. */
#ifndef FL_MQ_H
#define FL_MQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "services/runtime/trace.h"
#include "services/runtime/tracectx.h"

typedef struct fl_mq fl_mq_t;

typedef struct {
    const char *name;
    const char *type; /* "direct", "topic", "fanout", "headers" */
    bool durable;
} fl_mq_exchange_t;

typedef struct {
    const char *name;
    bool durable;
} fl_mq_queue_t;

typedef struct {
    const char *queue, *exchange, *routing_key;
} fl_mq_binding_t;

typedef struct fl_mq_delivery {
    const char *exchange, *routing_key, *queue;
    const char *message_id; /* "" when none */
    const void *body;
    size_t len;
    bool redelivered;
    fl_tracectx_t ctx; /* the CONSUMER span's context (with a tracer), else the message's */
    bool has_ctx;      /* false: the message carried no valid traceparent and no tracer */
} fl_mq_delivery_t;

typedef void (*fl_mq_deliver_cb)(fl_mq_t *mq, fl_mq_delivery_t *d, void *arg);

typedef struct {
    const char *queue;
    fl_mq_deliver_cb cb;
    void *arg;
} fl_mq_consumer_t;

typedef struct {
    const char *url; /* amqp://user:pass@host:port/vhost (librabbitmq's parser) */
    const fl_mq_exchange_t *exchanges;
    size_t nexchanges;
    const fl_mq_queue_t *queues;
    size_t nqueues;
    const fl_mq_binding_t *bindings;
    size_t nbindings;
    const fl_mq_consumer_t *consumers;
    size_t nconsumers;
    uint16_t prefetch;    /* unacked deliveries per consumer; 0: 64 */
    uint16_t heartbeat_s; /* asked for in tune-ok (the broker's may be lower); 0: 10 */
    uint64_t backoff_min_ms, backoff_max_ms; /* 0: 100 and 5000 */
    fl_tracer_t *tracer;                     /* optional */
    /* optional: told each time the client becomes ready (up) or loses the broker */
    void (*on_state)(fl_mq_t *mq, bool up, const char *why, void *arg);
    void *state_arg;
} fl_mq_config_t;

typedef struct {
    uint64_t connects;                           /* connections that reached ready */
    uint64_t failures;                           /* connections lost or refused */
    uint64_t published, confirmed, nacked, lost; /* lost: pending when the connection went */
    uint64_t delivered, acked, nacked_deliveries, stale_acks;
} fl_mq_stats_t;

/* Starts connecting at once; cfg is copied. Returns 0, FL_EINVAL (bad URL or config) or
 * FL_ENOMEM. */
int fl_mq_start(uv_loop_t *loop, const fl_mq_config_t *cfg, fl_mq_t **out);

bool fl_mq_ready(const fl_mq_t *mq);

typedef void (*fl_mq_confirm_cb)(fl_mq_t *mq, int status, void *arg);

typedef struct {
    bool persistent;             /* delivery_mode 2 */
    const char *message_id;      /* optional */
    const char *content_type;    /* optional */
    const fl_tracectx_t *parent; /* optional: the span this publish belongs to */
} fl_mq_publish_opts_t;

/* Publishes body to exchange with routing_key; cb (optional) gets the confirm. Returns 0
 * (cb will run exactly once, never from inside this call), FL_ECLOSED when not connected
 * (cb never runs: publish again once ready), FL_EINVAL or FL_ENOMEM. */
int fl_mq_publish(fl_mq_t *mq, const char *exchange, const char *routing_key, const void *body,
                  size_t len, const fl_mq_publish_opts_t *opts, fl_mq_confirm_cb cb, void *arg);

/* Acknowledges (or rejects, requeued or not) a delivery and frees it. Returns 0, or
 * FL_ECLOSED when its connection is gone (the broker will redeliver it; freed anyway). */
int fl_mq_ack(fl_mq_t *mq, fl_mq_delivery_t *d);
int fl_mq_nack(fl_mq_t *mq, fl_mq_delivery_t *d, bool requeue);

void fl_mq_stats(const fl_mq_t *mq, fl_mq_stats_t *out);

/* Closes the connection (pending confirms get FL_ECLOSED) and every handle; cb runs once
 * all are closed, then mq is freed. Deliveries still unacked are freed here: a handler
 * must not touch them after calling this. */
void fl_mq_close(fl_mq_t *mq, void (*cb)(void *arg), void *arg);

#endif
