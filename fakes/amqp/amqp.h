/* The fake AMQP 0-9-1 broker: RabbitMQ as its clients see it (DESIGN.md "Fakes"), on one
 * libuv loop, starting in microseconds, and breakable on purpose: down, restart, dropped
 * connections, blocked publishers, delayed, duplicated or dropped deliveries.
 *
 * Durable exchanges, queues and bindings and persistent messages in durable queues survive
 * fl_amqp_restart (as a disk keeps them); with a data directory they are also journaled to a
 * file and survive the process. Transient ones are lost, as in RabbitMQ.
 *
 * It uses only lib/. The harness reaches it through the config's on_event (timeline lines)
 * and the calls below. */
#ifndef FL_AMQP_H
#define FL_AMQP_H

#include <stdint.h>
#include <uv.h>

typedef struct broker fl_amqp_t;

typedef struct {
    const char *user;     /* "guest" when NULL */
    const char *password; /* "guest" when NULL */
    const char *vhosts;   /* comma-separated; "/" when NULL */
    const char *data_dir; /* journal durable state here; NULL: memory only */
    uint64_t seed;        /* the duplicate/drop faults */
    uint16_t heartbeat;   /* proposed in connection.tune; 0: RabbitMQ's 60 s */
    /* One line for the timeline. NULL: no events. */
    void (*on_event)(void *arg, const char *text);
    void *event_arg;
} fl_amqp_config_t;

/* Creates a broker (cfg may be NULL). Returns 0, FL_EINVAL, FL_ENOMEM, or FL_IO/FL_EMALFORMED
 * when the data directory's journal cannot be opened or read. */
int fl_amqp_new(uv_loop_t *loop, const fl_amqp_config_t *cfg, fl_amqp_t **out);
/* Listens on host:port (0 picks one). Returns 0, FL_EADDRINUSE, FL_EINVAL or FL_ESTATE. */
int fl_amqp_listen(fl_amqp_t *b, const char *host, int port);
int fl_amqp_port(const fl_amqp_t *b);
/* Closes every connection and handle; cb(arg) once all are closed. */
void fl_amqp_close(fl_amqp_t *b, void (*cb)(void *arg), void *arg);

/* Faults; each reports itself through on_event. */
/* down: the listener closes and every connection is dropped; up listens again on the same
 * port. Returns 0 or, coming up, what fl_amqp_listen returns. */
int fl_amqp_set_down(fl_amqp_t *b, int down);
/* A broker restart: connections get connection.close 320 (CONNECTION_FORCED, as RabbitMQ
 * says on shutdown), transient exchanges, queues and messages are lost, unacked persistent
 * messages return to their durable queues as redelivered. The listener stays. */
void fl_amqp_restart(fl_amqp_t *b);
/* Drops every client connection at once, without close frames (a crashed broker or a cut
 * cable). Returns how many. */
int fl_amqp_drop_connections(fl_amqp_t *b);
/* blocked: connection.blocked to clients that declared the capability; a connection that
 * publishes is not read from until unblocked (RabbitMQ's memory alarm). */
void fl_amqp_set_blocked(fl_amqp_t *b, int blocked);
/* Every message becomes deliverable ns after it was enqueued (0: at once). */
void fl_amqp_set_delay(fl_amqp_t *b, uint64_t ns);
/* Seeded, per delivery to a consumer: rate of deliveries sent twice (the copy redelivered),
 * and of messages lost instead of delivered. 0 turns each off. */
void fl_amqp_set_duplicate(fl_amqp_t *b, double rate);
void fl_amqp_set_drop(fl_amqp_t *b, double rate);

typedef struct {
    uint64_t ready, unacked, consumers;
    uint64_t published, delivered, acked, redelivered, dropped, duplicated, dead_lettered, expired;
} fl_amqp_queue_stats_t;

/* Stats of queue `name` in vhost (NULL: "/"). Returns 0 or FL_ENOTFOUND. */
int fl_amqp_queue_stats(fl_amqp_t *b, const char *vhost, const char *name,
                        fl_amqp_queue_stats_t *out);
/* Connections open now. */
int fl_amqp_connections(const fl_amqp_t *b);

/* `faultline fake amqp --listen HOST:PORT [--data DIR] [--user U] [--password P]
 * [--vhost V]... [--seed N] [--quiet]` (argv[0] is "amqp"): prints amqp://HOST:PORT on stdout
 * once listening, events on stderr, until SIGINT or SIGTERM. Returns the exit code. */
int fl_amqp_main(int argc, char **argv);

#endif
