/* The broker's insides, shared by its files and nothing else:
 *   model.c    vhosts, exchanges, queues, bindings, messages, routing, dead-lettering
 *   deliver.c  consumers, prefetch, dispatch, unacked messages, acks
 *   conn.c     sockets, frames in and out, the connection and channel state machines
 *   methods.c  one handler per AMQP method a client may send
 *   journal.c  durable state on disk (--data DIR)
 *   amqp.c     the public API: listen, faults, stats, restart, close */
#ifndef FL_AMQP_INTERNAL_H
#define FL_AMQP_INTERNAL_H

#include <stdint.h>
#include <uv.h>

#include "fakes/amqp/amqp.h"
#include "fakes/amqp/codec.h"
#include "lib/buf.h"
#include "lib/rng.h"

/* RabbitMQ's defaults (DESIGN.md "Fakes"). */
#define FRAME_MAX_DEFAULT 131072
#define CHANNEL_MAX_DEFAULT 2047
#define HEARTBEAT_DEFAULT 60
#define MAX_MESSAGE_SIZE (128u << 20) /* RabbitMQ 3.10's max_message_size */
#define OUT_HIGH_WATER (1u << 20)     /* stop delivering to a connection above this */

typedef struct broker broker_t;
typedef struct vhost vhost_t;
typedef struct exchange exchange_t;
typedef struct queue queue_t;
typedef struct conn conn_t;
typedef struct channel channel_t;
typedef struct consumer consumer_t;

/* A string-keyed open-addressing map; values are owned elsewhere. */
typedef struct {
    struct map_slot {
        const char *key; /* NULL: empty; TOMB: deleted */
        void *val;
    } * slots;
    size_t cap, used, live;
} map_t;
void *map_get(const map_t *m, const char *key);
int map_put(map_t *m, const char *key, void *val); /* key must live as long as the entry */
void map_del(map_t *m, const char *key);
void map_free(map_t *m);
/* Iteration: i from 0; returns the next value or NULL at the end. */
void *map_next(const map_t *m, size_t *i);

/* A message, immutable once published, shared by every queue it was routed to. */
typedef struct msg {
    uint32_t refs;
    uint8_t persistent;
    uint8_t ex_len, rk_len;
    uint64_t id;        /* journal identity, 0 when never journaled */
    uint64_t ttl_ms;    /* the expiration property, UINT64_MAX: none */
    uint32_t props_len; /* encoded properties (flags + list) */
    uint32_t body_len;
    char data[]; /* exchange \0 routing key \0 props body */
} msg_t;

static inline const char *msg_exchange(const msg_t *m)
{
    return m->data;
}
static inline const char *msg_rkey(const msg_t *m)
{
    return m->data + m->ex_len + 1;
}
static inline const uint8_t *msg_props(const msg_t *m)
{
    return (const uint8_t *)m->data + m->ex_len + m->rk_len + 2;
}
static inline uint8_t *msg_body(msg_t *m)
{
    return (uint8_t *)m->data + m->ex_len + m->rk_len + 2 + m->props_len;
}

msg_t *msg_new(const char *exchange, size_t ex_len, const char *rkey, size_t rk_len,
               const uint8_t *props, size_t props_len, size_t body_len);
uint64_t expiration_ms(const fl_amqp_arg_t *e);
/* The same with room for only `room` body bytes yet (a body arriving in frames: memory
 * follows what arrived, not what a header announced); msg_grow makes more room (realloc:
 * only while nothing else refers to m). NULL on FL_ENOMEM. */
msg_t *msg_new_room(const char *exchange, size_t ex_len, const char *rkey, size_t rk_len,
                    const uint8_t *props, size_t props_len, size_t body_len, size_t room);
msg_t *msg_grow(msg_t *m, size_t room);
static inline void msg_ref(msg_t *m)
{
    m->refs++;
}
void msg_unref(msg_t *m);

/* A message in a queue. */
typedef struct {
    msg_t *m;
    uint64_t seq;      /* position in the queue, kept when requeued */
    uint64_t expires;  /* ns (uv_hrtime), 0: never */
    uint64_t ready_at; /* ns: not deliverable before (the delay fault) */
    uint8_t redelivered;
} qent_t;

/* A deque of queue entries ordered by seq. */
typedef struct {
    qent_t *v;
    size_t head, len, cap;
} qring_t;

enum { EX_DIRECT, EX_FANOUT, EX_TOPIC, EX_HEADERS };

typedef struct binding {
    int to_queue; /* 1: queue, 0: exchange */
    void *dest;
    char *rkey;
    uint8_t *args; /* table contents */
    uint32_t args_len;
} binding_t;

struct exchange {
    vhost_t *vh;
    char *name;
    int type;
    uint8_t durable, auto_delete, internal, deleted;
    uint8_t *args;
    uint32_t args_len;
    binding_t *binds;
    size_t nbinds, capbinds;
    uint32_t bound_from; /* bindings naming this exchange as destination */
    uint32_t mark;       /* routing pass that visited it */
};

typedef struct {
    uint64_t published, delivered, acked, redelivered, dropped, duplicated, dead_lettered, expired;
} qstats_t;

struct queue {
    vhost_t *vh;
    char *name;
    uint8_t durable, exclusive, auto_delete, deleted, dirty, overflow_reject;
    conn_t *owner; /* exclusive to this connection */
    uint8_t *args;
    uint32_t args_len;
    int64_t msg_ttl_ms; /* -1: none */
    int64_t max_length; /* -1: none */
    int64_t max_length_bytes;
    int64_t expires_ms; /* -1: none */
    char *dlx, *dlrk;   /* NULL: none */
    qring_t ready;
    uint64_t ready_bytes;
    uint64_t next_seq;
    uint32_t unacked; /* in channels' unacked lists; keeps a deleted queue alive */
    consumer_t **consumers;
    size_t nconsumers, capconsumers, rr;
    uint8_t had_consumer; /* auto-delete applies once a consumer came and went */
    uint64_t last_used;   /* ns, for x-expires */
    uint32_t mark;        /* routing pass that chose it */
    uv_timer_t timer;     /* message expiry, queue expiry, delayed delivery */
    uint8_t timer_open;
    qstats_t st;
    queue_t *dirty_next;
};

struct vhost {
    broker_t *b;
    char *name;
    map_t exchanges, queues;
};

struct consumer {
    channel_t *ch;
    queue_t *q;
    char *tag;
    uint8_t no_ack, exclusive;
    uint16_t prefetch; /* 0: unlimited */
    uint32_t unacked;
};

/* A delivered, not yet acknowledged message on a channel. */
typedef struct {
    uint64_t tag;
    queue_t *q;
    consumer_t *c; /* NULL for basic.get, or once the consumer is gone */
    qent_t e;
} unacked_t;

/* What a transaction holds back until tx.commit. */
typedef struct txop {
    int kind; /* 0: publish, 1: ack, 2: nack/reject */
    msg_t *m; /* publish: the message and its route */
    char *exchange;
    uint8_t mandatory;
    uint64_t tag;
    uint8_t multiple, requeue;
    struct txop *next;
} txop_t;

enum { CH_OPEN, CH_CLOSING };

struct channel {
    conn_t *c;
    uint16_t id;
    uint8_t state, flow, confirm, tx;
    uint16_t prefetch_consumer, prefetch_channel;
    uint32_t unacked_count;
    /* content being received: after basic.publish, a header then bodies */
    uint8_t content; /* 0 none, 1 want header, 2 want bodies */
    uint8_t pub_mandatory;
    char pub_exchange[256];
    char pub_rkey[256];
    msg_t *pub_msg;
    uint64_t pub_got, pub_room; /* body bytes received, and room for them in pub_msg */
    uint64_t next_tag;
    uint64_t pub_seq; /* confirm mode: the last publish's sequence number */
    unacked_t *un;
    size_t un_head, un_len, un_cap;
    consumer_t **consumers;
    size_t nconsumers, capconsumers;
    txop_t *tx_head, **tx_tail;
    char last_queue[256]; /* for queue "" in bind, consume, get... */
};

enum { C_HEADER, C_START_OK, C_SECURE_OK, C_TUNE_OK, C_OPEN, C_OPENED, C_CLOSING, C_DEAD };

struct conn {
    uv_tcp_t tcp;
    broker_t *b;
    vhost_t *vh;
    char peer[64];
    char user[128];
    int state;
    uint8_t cap_blocked, cap_cancel_notify, cap_auth_close;
    uint8_t reading, held, blocked_sent, writing, close_after_write, shutting, open_handles;
    uv_shutdown_t sreq;
    uint16_t channel_max;
    uint32_t frame_max;
    uint16_t heartbeat;
    fl_buf_t in;
    size_t in_off;
    fl_buf_t out;  /* frames waiting to be written */
    fl_buf_t wbuf; /* the bytes of the write in flight */
    uv_write_t wreq;
    channel_t **chans;
    size_t nchans; /* slots in chans */
    uv_timer_t hb;
    uint64_t last_rx, last_tx;
    conn_t *next, *prev;
    uint8_t flush_queued;
    conn_t *flush_next;
};

struct broker {
    uv_loop_t *loop;
    fl_amqp_config_t cfg;
    char *user, *password;
    char host[64];
    int port;
    uv_tcp_t listener;
    uint8_t listening, down, blocked, closing;
    uint64_t delay_ns;
    double dup_rate, drop_rate;
    fl_rng_t rng;      /* the duplicate/drop faults */
    fl_rng_t name_rng; /* amq.gen-… and amq.ctag-… names */
    vhost_t **vhosts;
    size_t nvhosts;
    conn_t *conns;
    queue_t *dirty;
    conn_t *flush;
    uint32_t route_pass;
    uint64_t next_msg_id;
    uint64_t name_counter;
    int pending_closes;
    void (*close_cb)(void *);
    void *close_arg;
    void *journal; /* journal.c's state, NULL without --data */
    uint8_t in_settle;
};

/* model.c */
vhost_t *vhost_find(broker_t *b, const char *name);
vhost_t *vhost_add(broker_t *b, const char *name);
void vhost_free(vhost_t *vh);
exchange_t *exchange_add(vhost_t *vh, const char *name, int type, int durable, int auto_delete,
                         int internal, const uint8_t *args, uint32_t args_len);
void exchange_delete(exchange_t *x);
int exchange_type_parse(const char *s);
const char *exchange_type_name(int type);
queue_t *queue_add(vhost_t *vh, const char *name, int durable, int exclusive, int auto_delete,
                   conn_t *owner, const uint8_t *args, uint32_t args_len);
/* Deletes q: cancels its consumers (notifying clients that asked for it), drops its ready
 * messages; returns how many it held. */
uint64_t queue_delete(queue_t *q);
void queue_maybe_free(queue_t *q);
uint64_t queue_purge(queue_t *q);
/* Validates a queue's x- arguments; on a bad one writes RabbitMQ's text and returns the reply
 * code (406), else 0. */
int queue_args_check(const uint8_t *args, uint32_t len, const char *queue, const char *vhost,
                     char *text, size_t cap);
/* Whether args (a redeclaration's) differ from q's in an argument RabbitMQ compares; writes
 * its 406 text. */
int queue_args_differ(const queue_t *q, const uint8_t *args, uint32_t len, char *text, size_t cap);
int binding_add(exchange_t *src, int to_queue, void *dest, const char *rkey, const uint8_t *args,
                uint32_t args_len);
/* Returns 1 when the binding existed. */
int binding_remove(exchange_t *src, int to_queue, void *dest, const char *rkey, const uint8_t *args,
                   uint32_t args_len);
void bindings_drop_dest(vhost_t *vh, int to_queue, void *dest);
/* Routes m through x; the chosen queues go to out (up to max). Returns their count. */
size_t route(exchange_t *x, msg_t *m, queue_t **out, size_t max);
size_t route_key(exchange_t *x, msg_t *m, const char *rkey, queue_t **out, size_t max);
/* Puts m on q (taking a reference): ttl, max-length, delay. Returns 1 when enqueued, 0 when the
 * queue refused it (x-overflow reject-publish). */
int queue_enqueue(queue_t *q, msg_t *m);
/* Takes q's head if it can be delivered now (expired heads are dead-lettered first). */
int queue_take(queue_t *q, qent_t *e);
/* Puts e back in its place (by seq), marked redelivered. */
void queue_requeue(queue_t *q, qent_t *e);
/* Dead-letters m from q with reason ("rejected", "expired", "maxlen"), or drops it when q has
 * no dead-letter exchange. Takes over e's reference. */
void queue_dead_letter(queue_t *q, qent_t *e, const char *reason);
/* Schedules q for dispatch once the current callback is done. */
void queue_kick(queue_t *q);
void queue_arm_timer(queue_t *q);
int topic_match(const char *pattern, const char *key);
void queue_drop_transient(queue_t *q);
int queue_recover_msg(queue_t *q, msg_t *m);
void queue_forget_msg(queue_t *q, uint64_t id);
msg_t *queue_msg_at(queue_t *q, size_t i);

/* deliver.c */
void dispatch(queue_t *q);
void settle(broker_t *b);
int consumer_add(channel_t *ch, queue_t *q, const char *tag, int no_ack, int exclusive,
                 consumer_t **out);
/* Removes a consumer; notify: send basic.cancel to the client (queue deleted). */
void consumer_remove(consumer_t *c, int notify);
/* ack/nack/reject a delivery tag (0 with multiple: everything). Returns 0 or 406 with text. */
int channel_ack(channel_t *ch, uint64_t tag, int multiple, char *text, size_t cap);
int channel_nack(channel_t *ch, uint64_t tag, int multiple, int requeue, char *text, size_t cap);
void channel_recover(channel_t *ch, int requeue);
/* Requeues every unacked message of ch (its close, or its connection's). */
void channel_requeue_all(channel_t *ch);
/* basic.get: 1 sent get-ok, 0 empty. */
int channel_get(channel_t *ch, queue_t *q, int no_ack);

/* conn.c */
int conn_accept(broker_t *b, uv_stream_t *server);
/* Queue a frame-producing write: out is appended to by codec functions, then flushed. */
fl_buf_t *conn_out(conn_t *c);
void conn_flush_later(conn_t *c);
void conn_flush(conn_t *c);
/* Closes the connection with connection.close (code, text) and waits for close-ok. */
void conn_error(conn_t *c, int code, const char *text, uint16_t class_id, uint16_t method_id);
/* Closes a channel with channel.close (soft errors). */
void channel_error(channel_t *ch, int code, const char *text, uint16_t class_id,
                   uint16_t method_id);
/* Drops the socket at once (no close frames): crash-like. */
void conn_drop(conn_t *c);
void conn_resume(conn_t *c);
void conn_send_blocked(conn_t *c, int blocked);
/* Sends basic.deliver/get-ok + header + body frames. */
void send_content(conn_t *c, uint16_t channel, msg_t *m, uint16_t method, const char *ctag,
                  uint64_t tag, int redelivered, uint32_t count);

/* methods.c: handles one method on an open channel (or channel 0). */
void method_dispatch(conn_t *c, channel_t *ch, const fl_amqp_method_t *m);
/* The publish whose content just completed. */
void publish_complete(channel_t *ch);
/* Routes and enqueues m published to exchange x (mandatory → basic.return). Returns 1 when
 * some queue took it. */
int publish_route(channel_t *ch, exchange_t *x, msg_t *m, int mandatory, int *refused);

/* journal.c: NULL-safe; each records one durable change. */
int journal_open(broker_t *b, const char *dir);
void journal_close(broker_t *b);
void journal_exchange(broker_t *b, exchange_t *x, int add);
void journal_queue(broker_t *b, queue_t *q, int add);
void journal_binding(broker_t *b, exchange_t *src, binding_t *bd, int add);
void journal_enqueue(broker_t *b, queue_t *q, msg_t *m);
void journal_dequeue(broker_t *b, queue_t *q, msg_t *m);
void journal_sync(broker_t *b);

const char *amqp_type_name(char type);

/* amqp.c */
void amqp_maybe_closed(broker_t *b);
void broker_event(broker_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *amqp_strdup(const char *s);
char *amqp_strndup(const char *s, size_t n);

#endif
