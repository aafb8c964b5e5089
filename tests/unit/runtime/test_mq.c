/* Unit tests for services/runtime/mq against the real fake broker (`faultline fake amqp`,
 * started from FL_BIN_DIR and stopped by PID): topology, publisher confirms, manual acks
 * (at once and later), trace context in headers, a broker killed and restarted on the
 * same port and data folder while messages flow — nothing confirmed may be lost — and
 * attempts that back off while no broker is there. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/err.h"
#include "services/runtime/mq.h"

typedef struct {
    pid_t pid;
    char url[128];
} broker_t;

/* Starts the fake broker on listen ("127.0.0.1:0" or a port again), with data dir. */
static void broker_start(broker_t *b, const char *listen, const char *dir)
{
    const char *data = dir ? "--data" : "--quiet";
    if (!dir)
        dir = "--quiet";
    const char *bin = getenv("FL_BIN_DIR");
    ck_assert_ptr_nonnull(bin);
    char path[1024];
    snprintf(path, sizeof path, "%s/faultline", bin);
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(path, "faultline", "fake", "amqp", "--listen", listen, data, dir, "--quiet",
              (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    size_t n = 0;
    struct pollfd pfd = {out[0], POLLIN, 0};
    while (n < sizeof b->url - 1 && poll(&pfd, 1, 5000) == 1) { /* 5 s at most per byte */
        ssize_t r = read(out[0], b->url + n, 1);
        if (r <= 0 || b->url[n] == '\n')
            break;
        n++;
    }
    b->url[n] = '\0';
    close(out[0]);
    b->pid = pid;
    ck_assert_msg(strncmp(b->url, "amqp://", 7) == 0, "the broker printed [%s]", b->url);
}

static void broker_kill(broker_t *b)
{
    if (b->pid > 0) {
        kill(b->pid, SIGKILL);
        waitpid(b->pid, NULL, 0);
        b->pid = 0;
    }
}

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/fl-mq-XXXXXX";
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    return strdup(d);
}

static void rmdir_all(char *d)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    ck_assert_int_eq(system(cmd), 0);
    free(d);
}

/* ---- a small shop-like flow ---- */

enum { N = 300 };

typedef struct {
    uv_loop_t loop;
    fl_mq_t *mq;
    broker_t broker;
    char *dir;
    char port[16];
    int confirmed[N]; /* per message: 1 when its publish was confirmed */
    int received[N];
    int inflight[N]; /* published, confirm not in yet */
    int next;        /* next message to publish for the first time */
    int nconfirmed, nreceived, nclosed, nredelivered;
    bool ack_later; /* ack from a timer rather than in the handler */
    fl_mq_delivery_t *held[N];
    int nheld;
    fl_tracectx_t want_ctx;
    bool check_ctx, ctx_ok;
    uv_timer_t pub_timer, ack_timer, fault_timer;
    bool finishing;
    bool no_data; /* the broker restarts empty: transient state and messages are gone */
} shop_t;

typedef struct {
    shop_t *s;
    int i;
} pubarg_t;

static int id_of(const fl_mq_delivery_t *d)
{
    return atoi(d->message_id + 1);
}

static void on_delivery(fl_mq_t *mq, fl_mq_delivery_t *d, void *arg)
{
    shop_t *s = arg;
    int i = id_of(d);
    ck_assert_int_ge(i, 0);
    ck_assert_int_lt(i, N);
    char want[32];
    snprintf(want, sizeof want, "order %d", i);
    ck_assert_uint_eq(d->len, strlen(want));
    ck_assert_mem_eq(d->body, want, d->len);
    ck_assert_str_eq(d->exchange, "shop");
    ck_assert_str_eq(d->queue, "orders");
    if (d->redelivered)
        s->nredelivered++;
    if (s->check_ctx) {
        s->ctx_ok = d->has_ctx && memcmp(d->ctx.trace_id, s->want_ctx.trace_id, 16) == 0;
        ck_assert(s->ctx_ok);
    }
    if (!s->received[i]++)
        s->nreceived++;
    if (s->ack_later && s->nheld < N)
        s->held[s->nheld++] = d;
    else
        fl_mq_ack(mq, d);
}

static void publish_one(shop_t *s, int i);

static void on_confirm(fl_mq_t *mq, int status, void *arg)
{
    pubarg_t *p = arg;
    shop_t *s = p->s;
    s->inflight[p->i] = 0;
    if (status == 0) {
        if (!s->confirmed[p->i]++)
            s->nconfirmed++;
    } else {
        ck_assert(status == FL_ECLOSED || status == FL_EIO);
        s->nclosed++; /* the caller's choice: publish it again */
    }
    free(p);
}

static void publish_one(shop_t *s, int i)
{
    char id[16], body[32];
    snprintf(id, sizeof id, "m%d", i);
    snprintf(body, sizeof body, "order %d", i);
    pubarg_t *p = malloc(sizeof *p);
    *p = (pubarg_t){s, i};
    fl_mq_publish_opts_t o = {.persistent = true,
                              .message_id = id,
                              .content_type = "text/plain",
                              .parent = s->check_ctx ? &s->want_ctx : NULL};
    int rc = fl_mq_publish(s->mq, "shop", "order.created", body, strlen(body), &o, on_confirm, p);
    if (rc == 0)
        s->inflight[i] = 1;
    else {
        ck_assert_int_eq(rc, FL_ECLOSED);
        free(p);
    }
}

/* Every 2 ms: publish the next few, and again whatever was not confirmed. */
static void pub_tick(uv_timer_t *h)
{
    shop_t *s = h->data;
    if (!fl_mq_ready(s->mq))
        return;
    for (int k = 0; k < 10 && s->next < N; k++)
        publish_one(s, s->next++);
    if (s->next == N)
        for (int i = 0; i < N; i++)
            if (!s->confirmed[i] && !s->inflight[i])
                publish_one(s, i);
}

static void ack_tick(uv_timer_t *h)
{
    shop_t *s = h->data;
    if (h->data && !fl_mq_ready(s->mq) && !s->finishing)
        return; /* keep them across an outage: acked on the new connection, they are stale */
    for (int i = 0; i < s->nheld; i++)
        fl_mq_ack(s->mq, s->held[i]); /* stale ones just get freed */
    s->nheld = 0;
}

static void shop_start(shop_t *s, bool ack_later)
{
    memset(s, 0, sizeof *s);
    uv_loop_init(&s->loop);
    s->dir = tmpdir();
    broker_start(&s->broker, "127.0.0.1:0", s->dir);
    const char *colon = strrchr(s->broker.url, ':');
    snprintf(s->port, sizeof s->port, "%s", colon + 1);
    s->ack_later = ack_later;
    static const fl_mq_exchange_t ex[] = {{"shop", "topic", true}};
    static const fl_mq_queue_t q[] = {{"orders", true}};
    static const fl_mq_binding_t b[] = {{"orders", "shop", "order.*"}};
    fl_mq_consumer_t c[] = {{"orders", on_delivery, s}};
    fl_mq_config_t cfg = {.url = s->broker.url,
                          .exchanges = ex,
                          .nexchanges = 1,
                          .queues = q,
                          .nqueues = 1,
                          .bindings = b,
                          .nbindings = 1,
                          .consumers = c,
                          .nconsumers = 1,
                          .prefetch = 20,
                          .backoff_min_ms = 20,
                          .backoff_max_ms = 200};
    ck_assert_int_eq(fl_mq_start(&s->loop, &cfg, &s->mq), 0);
    uv_timer_init(&s->loop, &s->pub_timer);
    uv_timer_init(&s->loop, &s->ack_timer);
    uv_timer_init(&s->loop, &s->fault_timer);
    s->pub_timer.data = s->ack_timer.data = s->fault_timer.data = s;
    uv_timer_start(&s->pub_timer, pub_tick, 2, 2);
    if (ack_later)
        uv_timer_start(&s->ack_timer, ack_tick, 7, 7);
}

static void run_until_all(shop_t *s, uint64_t ms)
{
    uv_update_time(&s->loop);
    uint64_t end = uv_now(&s->loop) + ms;
    while ((s->nconfirmed < N || s->nreceived < N) && uv_now(&s->loop) < end)
        uv_run(&s->loop, UV_RUN_ONCE);
}

static void set_flag(void *arg)
{
    *(int *)arg = 1;
}

static void shop_finish(shop_t *s)
{
    s->finishing = true;
    ack_tick(&s->ack_timer);
    int closed = 0;
    fl_mq_close(s->mq, set_flag, &closed);
    uv_close((uv_handle_t *)&s->pub_timer, NULL);
    uv_close((uv_handle_t *)&s->ack_timer, NULL);
    uv_close((uv_handle_t *)&s->fault_timer, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    ck_assert(closed);
    ck_assert_int_eq(uv_loop_close(&s->loop), 0);
    broker_kill(&s->broker);
    rmdir_all(s->dir);
}

START_TEST(confirms_and_acks)
{
    static shop_t s;
    shop_start(&s, false);
    run_until_all(&s, 15000);
    ck_assert_int_eq(s.nconfirmed, N);
    ck_assert_int_eq(s.nreceived, N);
    fl_mq_stats_t st;
    fl_mq_stats(s.mq, &st);
    ck_assert_uint_eq(st.connects, 1);
    ck_assert_uint_eq(st.confirmed, N);
    ck_assert_uint_eq(st.acked, N);
    ck_assert_int_eq(s.nclosed, 0);
    shop_finish(&s);
}
END_TEST

START_TEST(acks_later_and_prefetch)
{
    static shop_t s;
    shop_start(&s, true);
    run_until_all(&s, 15000);
    ck_assert_int_eq(s.nreceived, N);
    fl_mq_stats_t st;
    fl_mq_stats(s.mq, &st);
    ck_assert_uint_eq(st.acked, st.delivered - (uint64_t)s.nheld);
    shop_finish(&s);
}
END_TEST

START_TEST(trace_context_travels_in_headers)
{
    static shop_t s;
    shop_start(&s, false);
    s.check_ctx = true;
    fl_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55,
                         &s.want_ctx);
    run_until_all(&s, 15000);
    ck_assert_int_eq(s.nreceived, N);
    ck_assert(s.ctx_ok);
    shop_finish(&s);
}
END_TEST

/* The broker dies (kill -9) while messages flow, stays away a while, and comes back on the
 * same port with the same data folder. */
static void restart_broker(uv_timer_t *h)
{
    shop_t *s = h->data;
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%s", s->port);
    broker_start(&s->broker, listen, s->no_data ? NULL : s->dir);
    if (s->no_data) { /* what went before is lost with the broker: count from scratch */
        memset(s->confirmed, 0, sizeof s->confirmed);
        memset(s->received, 0, sizeof s->received);
        s->nconfirmed = s->nreceived = 0;
        s->next = 0;
    }
}

static void kill_broker(uv_timer_t *h)
{
    shop_t *s = h->data;
    if (s->nconfirmed < N / 3 || (s->ack_later && s->nheld == 0))
        return; /* a third through, then, and with deliveries waiting for their ack */
    uv_timer_stop(h);
    broker_kill(&s->broker);
    uv_timer_start(&s->fault_timer, restart_broker, 300, 0);
}

static void restart_case(bool ack_later, bool no_data)
{
    static shop_t s;
    shop_start(&s, ack_later);
    s.no_data = no_data;
    uv_timer_start(&s.fault_timer, kill_broker, 1, 1);
    run_until_all(&s, 30000);
    fl_mq_stats_t st;
    fl_mq_stats(s.mq, &st);
    ck_assert_msg(s.nconfirmed == N && s.nreceived == N,
                  "confirmed %d, received %d of %d (connects %llu, lost %llu)", s.nconfirmed,
                  s.nreceived, N, (unsigned long long)st.connects, (unsigned long long)st.lost);
    if (getenv("MQ_DEBUG"))
        fprintf(stderr,
                "connects %llu failures %llu lost %llu redelivered %d closed %d delivered %llu\n",
                (unsigned long long)st.connects, (unsigned long long)st.failures,
                (unsigned long long)st.lost, s.nredelivered, s.nclosed,
                (unsigned long long)st.delivered);
    ck_assert_uint_ge(st.connects, 2); /* it did reconnect */
    if (ack_later) { /* acks of the old connection's deliveries are refused, not sent */
        ck_assert_uint_gt(st.stale_acks, 0);
        ck_assert_uint_eq(st.connects, 2);
    }
    ck_assert_uint_ge(st.failures, 2); /* the loss, and refused connections while away */
    shop_finish(&s);
}

START_TEST(broker_restart_loses_nothing)
{
    restart_case(false, false);
}
END_TEST

START_TEST(broker_restart_with_acks_in_flight)
{
    restart_case(true, false);
}
END_TEST

/* An empty broker after the restart: only a client that declares its exchange, queue and
 * binding again gets its messages through. */
START_TEST(topology_declared_again_after_restart)
{
    restart_case(false, true);
}
END_TEST

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void set_done(void *arg)
{
    *(int *)arg = 1;
}

/* No broker at the address: attempts back off, doubling from backoff_min_ms up to
 * backoff_max_ms (50, 100, 200, 400, 400 ms: 6 attempts in 1.5 s), rather than spinning. */
START_TEST(reconnects_back_off)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_tcp_t probe; /* a port nobody listens on: bound, then closed */
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&loop, &probe);
    ck_assert_int_eq(uv_tcp_bind(&probe, (const struct sockaddr *)&sa, 0), 0);
    int salen = sizeof sa;
    uv_tcp_getsockname(&probe, (struct sockaddr *)&sa, &salen);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    char url[64];
    snprintf(url, sizeof url, "amqp://guest:guest@127.0.0.1:%d", ntohs(sa.sin_port));
    fl_mq_config_t cfg = {.url = url, .backoff_min_ms = 50, .backoff_max_ms = 400};
    fl_mq_t *mq;
    ck_assert_int_eq(fl_mq_start(&loop, &cfg, &mq), 0);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, stop_loop, 1500, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    fl_mq_stats_t st;
    fl_mq_stats(mq, &st);
    ck_assert_uint_eq(st.connects, 0);
    ck_assert_msg(st.failures >= 4 && st.failures <= 7, "%llu attempts in 1.5 s",
                  (unsigned long long)st.failures);
    int done = 0;
    fl_mq_close(mq, set_done, &done);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert(done);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(bad_config)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fl_mq_t *mq;
    fl_mq_config_t cfg = {.url = "http://nope"};
    ck_assert_int_eq(fl_mq_start(&loop, &cfg, &mq), FL_EINVAL);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("mq");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bad_config);
    tcase_add_test(tc, reconnects_back_off);
    tcase_add_test(tc, confirms_and_acks);
    tcase_add_test(tc, acks_later_and_prefetch);
    tcase_add_test(tc, trace_context_travels_in_headers);
    tcase_add_test(tc, broker_restart_loses_nothing);
    tcase_add_test(tc, broker_restart_with_acks_in_flight);
    tcase_add_test(tc, topology_declared_again_after_restart);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
