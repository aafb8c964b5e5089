/* amqpbench: the client of the fake AMQP broker benchmark (bench/amqp.sh). One librabbitmq
 * connection, one channel, 100-byte transient messages (delivery-mode 1, no other properties)
 * through the default exchange to one queue, so that the fake and a real RabbitMQ are measured
 * with the very same client.
 *
 *   amqpbench URL round N PREFETCH ACK_EVERY WINDOW
 *       One repetition of every figure, in this order, on queue "amqpbench" (declared, purged):
 *       publish   N messages as fast as the client sends them, no confirms; the time from the
 *                 first publish to a passive queue.declare reporting all N queued;
 *       consume   those N with basic.consume no-ack (basic.qos PREFETCH, which no-ack ignores);
 *                 the time from consume-ok to the N-th delivery;
 *       publish   N more, as above (reported as publish2);
 *       consume   them with acks: basic.qos PREFETCH, basic.ack multiple=true every ACK_EVERY
 *                 deliveries (and on the last); the time from consume-ok to the N-th delivery;
 *       confirms  confirm.select on a second channel, then N publishes with at most WINDOW
 *                 unconfirmed; the time from the first publish to the last confirm
 *                 (basic.ack, multiple or not; a nack fails the run); then the queue is purged.
 *       Prints one line: "round publish=R consume_noack=R publish2=R consume_ack=R confirms=R"
 *       with R in messages per second.
 *   amqpbench URL fill N QUEUE
 *       Declares QUEUE (transient, not exclusive, not auto-delete), publishes N messages to it
 *       and waits until it reports N queued, then closes the connection, leaving them queued.
 *   amqpbench URL floor N PID
 *       The client's own ceiling for the publish figure: declares QUEUE, stops the broker (PID,
 *       SIGSTOP), times N publishes into the socket buffers of a broker that reads nothing (keep
 *       N small: 5,000 messages are under 1 MB), resumes it (SIGCONT), waits until it holds
 *       them all and purges them. Prints "floor n=N msg_per_s=R".
 *   amqpbench URL ping
 *       Connects, logs in as the URL says, opens a channel, closes: exit 0 when the broker
 *       answers.
 *
 * Every wait is bounded (PHASE_TIMEOUT_S per phase, RPC_TIMEOUT_S per RPC). Exit status: 0
 * measured, 1 failure (said on stderr), 2 usage. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>

#define BODY_SIZE 100
#define PHASE_TIMEOUT_S 120.0
#define RPC_TIMEOUT_S 30
#define QUEUE "amqpbench"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "amqpbench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Dies unless an RPC (or the call before amqp_get_rpc_reply) succeeded. */
static void check_reply(amqp_rpc_reply_t r, const char *what)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return;
    case AMQP_RESPONSE_NONE:
        die("%s: no reply", what);
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        die("%s: %s", what, amqp_error_string2(r.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD || r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            /* both methods start with reply-code and reply-text */
            const amqp_channel_close_t *c = r.reply.decoded;
            die("%s: server closed with %u %.*s", what, c->reply_code, (int)c->reply_text.len,
                (const char *)c->reply_text.bytes);
        }
        die("%s: server exception, method 0x%08x", what, r.reply.id);
    }
    die("%s: unknown reply type", what);
}

static void check_status(int status, const char *what)
{
    if (status != AMQP_STATUS_OK)
        die("%s: %s", what, amqp_error_string2(status));
}

static amqp_connection_state_t connect_url(const char *url)
{
    struct amqp_connection_info ci;
    char *u = strdup(url);
    if (!u || amqp_parse_url(u, &ci) != AMQP_STATUS_OK)
        die("bad URL %s", url);
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (!sock)
        die("cannot make a socket");
    struct timeval tv = {RPC_TIMEOUT_S, 0};
    check_status(amqp_socket_open_noblock(sock, ci.host, ci.port, &tv), "connect");
    amqp_set_rpc_timeout(conn, &tv);
    check_reply(amqp_login(conn, ci.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN,
                           ci.user, ci.password),
                "login");
    amqp_channel_open(conn, 1);
    check_reply(amqp_get_rpc_reply(conn), "channel.open");
    free(u);
    return conn;
}

static void disconnect(amqp_connection_state_t conn)
{
    check_reply(amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS), "channel.close");
    check_reply(amqp_connection_close(conn, AMQP_REPLY_SUCCESS), "connection.close");
    amqp_destroy_connection(conn);
}

/* Declares the queue (passive: only asks); returns its message count. */
static uint32_t declare(amqp_connection_state_t conn, const char *queue, int passive)
{
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), passive, 0, 0, 0, amqp_empty_table);
    check_reply(amqp_get_rpc_reply(conn), "queue.declare");
    return ok->message_count;
}

static void purge(amqp_connection_state_t conn, const char *queue)
{
    amqp_queue_purge(conn, 1, amqp_cstring_bytes(queue));
    check_reply(amqp_get_rpc_reply(conn), "queue.purge");
}

static void publish_one(amqp_connection_state_t conn, amqp_channel_t ch, const char *queue,
                        const char *body)
{
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 1};
    int st = amqp_basic_publish(conn, ch, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props,
                                (amqp_bytes_t){BODY_SIZE, (void *)body});
    check_status(st, "basic.publish");
}

/* Publishes n messages without confirms; returns the seconds until the broker holds them all
 * (in addition to the `already` it held before). */
static double publish_n(amqp_connection_state_t conn, const char *queue, long n, uint32_t already)
{
    char body[BODY_SIZE];
    memset(body, 'x', sizeof body);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        publish_one(conn, 1, queue, body);
        if ((i & 0xffff) == 0 && now_s() - t0 > PHASE_TIMEOUT_S)
            die("publish: %ld of %ld sent after %.0f s", i, n, PHASE_TIMEOUT_S);
    }
    uint32_t count;
    while ((count = declare(conn, queue, 1)) < already + (uint32_t)n) {
        if (now_s() - t0 > PHASE_TIMEOUT_S)
            die("publish: the queue holds %u of %ld after %.0f s", count - already, n,
                PHASE_TIMEOUT_S);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    double dt = now_s() - t0;
    if (count != already + (uint32_t)n)
        die("publish: the queue holds %u messages, expected %ld", count - already, n);
    amqp_maybe_release_buffers(conn);
    return dt;
}

/* Consumes n messages; ack_every 0: no-ack. Returns the seconds from consume-ok to the n-th
 * delivery. */
static double consume_n(amqp_connection_state_t conn, long n, int prefetch, long ack_every)
{
    amqp_basic_qos(conn, 1, 0, (uint16_t)prefetch, 0);
    check_reply(amqp_get_rpc_reply(conn), "basic.qos");
    amqp_basic_consume_ok_t *ok =
        amqp_basic_consume(conn, 1, amqp_cstring_bytes(QUEUE), amqp_empty_bytes, 0, ack_every == 0,
                           0, amqp_empty_table);
    check_reply(amqp_get_rpc_reply(conn), "basic.consume");
    amqp_bytes_t tag = amqp_bytes_malloc_dup(ok->consumer_tag);
    double t0 = now_s();
    long got = 0, unacked = 0;
    uint64_t last_tag = 0;
    while (got < n) {
        double left = PHASE_TIMEOUT_S - (now_s() - t0);
        if (left <= 0)
            die("consume: %ld of %ld delivered after %.0f s", got, n, PHASE_TIMEOUT_S);
        struct timeval tv = {(time_t)left + 1, 0};
        amqp_envelope_t env;
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        check_reply(r, "consume");
        if (env.message.body.len != BODY_SIZE)
            die("consume: a %zu-byte body, expected %d", env.message.body.len, BODY_SIZE);
        last_tag = env.delivery_tag;
        amqp_destroy_envelope(&env);
        got++;
        if (ack_every && (++unacked == ack_every || got == n)) {
            check_status(amqp_basic_ack(conn, 1, last_tag, 1), "basic.ack");
            unacked = 0;
        }
    }
    double dt = now_s() - t0;
    amqp_basic_cancel(conn, 1, tag);
    check_reply(amqp_get_rpc_reply(conn), "basic.cancel");
    amqp_bytes_free(tag);
    return dt;
}

/* Confirms: tags 1..n; bits of the confirmed ones, to count each once whatever the order. */
typedef struct {
    unsigned char *bits;
    uint64_t low; /* every tag below it is confirmed */
    long confirmed;
} confirms_t;

static void confirm_tag(confirms_t *c, uint64_t tag)
{
    if (!(c->bits[tag / 8] & (1u << (tag % 8)))) {
        c->bits[tag / 8] |= (unsigned char)(1u << (tag % 8));
        c->confirmed++;
    }
}

static void on_confirm(confirms_t *c, uint64_t tag, int multiple, uint64_t sent)
{
    if (tag == 0 || tag > sent)
        die("confirms: a confirm for tag %llu, %llu sent", (unsigned long long)tag,
            (unsigned long long)sent);
    if (multiple)
        for (uint64_t t = c->low; t <= tag; t++)
            confirm_tag(c, t);
    else
        confirm_tag(c, tag);
    while (c->low <= sent && (c->bits[c->low / 8] & (1u << (c->low % 8))))
        c->low++;
}

/* Waits for the next frame on the confirm channel (blocking at most until deadline). */
static void read_confirm(amqp_connection_state_t conn, confirms_t *c, uint64_t sent,
                         double deadline)
{
    amqp_frame_t f;
    double left = deadline - now_s();
    if (left <= 0)
        die("confirms: %ld of %llu confirmed after %.0f s", c->confirmed, (unsigned long long)sent,
            PHASE_TIMEOUT_S);
    struct timeval tv = {(time_t)left + 1, 0};
    check_status(amqp_simple_wait_frame_noblock(conn, &f, &tv), "confirms: waiting");
    if (f.frame_type != AMQP_FRAME_METHOD)
        die("confirms: frame type %u, expected a method", f.frame_type);
    if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
        const amqp_basic_ack_t *a = f.payload.method.decoded;
        on_confirm(c, a->delivery_tag, a->multiple, sent);
    } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
        die("confirms: the broker nacked a publish");
    } else {
        die("confirms: method 0x%08x, expected basic.ack", f.payload.method.id);
    }
}

static double confirms_n(amqp_connection_state_t conn, long n, long window)
{
    amqp_channel_t ch = 2;
    amqp_channel_open(conn, ch);
    check_reply(amqp_get_rpc_reply(conn), "channel.open");
    amqp_confirm_select(conn, ch);
    check_reply(amqp_get_rpc_reply(conn), "confirm.select");
    confirms_t c = {calloc((size_t)n / 8 + 2, 1), 1, 0};
    if (!c.bits)
        die("out of memory");
    char body[BODY_SIZE];
    memset(body, 'x', sizeof body);
    double t0 = now_s(), deadline = t0 + PHASE_TIMEOUT_S;
    uint64_t sent = 0;
    while (c.confirmed < n) {
        if ((long)sent < n && (long)sent - c.confirmed < window) {
            publish_one(conn, ch, QUEUE, body);
            sent++;
            /* read what has already arrived, without a system call */
            while (amqp_frames_enqueued(conn) || amqp_data_in_buffer(conn))
                read_confirm(conn, &c, sent, deadline);
        } else {
            amqp_maybe_release_buffers_on_channel(conn, ch);
            read_confirm(conn, &c, sent, deadline);
        }
    }
    double dt = now_s() - t0;
    free(c.bits);
    check_reply(amqp_channel_close(conn, ch, AMQP_REPLY_SUCCESS), "channel.close");
    return dt;
}

static long arg_long(const char *s, long min)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < min)
        die("bad number %s", s);
    return v;
}

static int usage(void)
{
    fprintf(stderr, "usage: amqpbench URL round N PREFETCH ACK_EVERY WINDOW\n"
                    "       amqpbench URL fill N QUEUE\n"
                    "       amqpbench URL floor N PID\n"
                    "       amqpbench URL ping\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *url = argv[1], *mode = argv[2];
    if (strcmp(mode, "ping") == 0 && argc == 3) {
        disconnect(connect_url(url));
        return 0;
    }
    if (strcmp(mode, "fill") == 0 && argc == 5) {
        long n = arg_long(argv[3], 0);
        amqp_connection_state_t conn = connect_url(url);
        uint32_t already = declare(conn, argv[4], 0);
        double dt = publish_n(conn, argv[4], n, already);
        disconnect(conn);
        printf("fill n=%ld seconds=%.3f msg_per_s=%.0f\n", n, dt, n / dt);
        return 0;
    }
    if (strcmp(mode, "floor") == 0 && argc == 5) {
        long n = arg_long(argv[3], 1), pid = arg_long(argv[4], 2);
        amqp_connection_state_t conn = connect_url(url);
        declare(conn, QUEUE, 0);
        purge(conn, QUEUE);
        char body[BODY_SIZE];
        memset(body, 'x', sizeof body);
        if (kill((pid_t)pid, SIGSTOP) != 0)
            die("cannot stop process %ld", pid);
        double t0 = now_s();
        for (long i = 0; i < n; i++)
            publish_one(conn, 1, QUEUE, body);
        double dt = now_s() - t0;
        if (kill((pid_t)pid, SIGCONT) != 0)
            die("cannot resume process %ld", pid);
        publish_n(conn, QUEUE, 0, (uint32_t)n); /* waits until they are all queued */
        purge(conn, QUEUE);
        disconnect(conn);
        printf("floor n=%ld msg_per_s=%.0f\n", n, n / dt);
        return 0;
    }
    if (strcmp(mode, "round") == 0 && argc == 7) {
        long n = arg_long(argv[3], 1), prefetch = arg_long(argv[4], 0);
        long ack_every = arg_long(argv[5], 1), window = arg_long(argv[6], 1);
        if (prefetch > 65535 || (n >> 31))
            die("PREFETCH is at most 65535 and N below 2^31");
        amqp_connection_state_t conn = connect_url(url);
        declare(conn, QUEUE, 0);
        purge(conn, QUEUE);
        double pub = publish_n(conn, QUEUE, n, 0);
        double noack = consume_n(conn, n, (int)prefetch, 0);
        if (declare(conn, QUEUE, 1) != 0)
            die("the queue is not empty after the no-ack consume");
        double pub2 = publish_n(conn, QUEUE, n, 0);
        double ack = consume_n(conn, n, (int)prefetch, ack_every);
        double conf = confirms_n(conn, n, window);
        purge(conn, QUEUE);
        disconnect(conn);
        printf("round publish=%.0f consume_noack=%.0f publish2=%.0f consume_ack=%.0f "
               "confirms=%.0f\n",
               n / pub, n / noack, n / pub2, n / ack, n / conf);
        return 0;
    }
    return usage();
}
