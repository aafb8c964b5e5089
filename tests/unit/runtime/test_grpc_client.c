/* Unit tests for services/runtime/grpc_client (with grpc_server on the same loop, real
 * sockets on 127.0.0.1): the lifetimes a balancer and a retry layer will lean on. A call's
 * callback runs once, from the loop, never inside fl_grpc_call_start; a cancelled call's
 * never, and the server's handler is told; closing a channel ends its calls with CANCELLED;
 * a removed backend lets its calls finish; backend states (IDLE, CONNECTING, READY,
 * TRANSIENT_FAILURE) and in-flight counts; a server shutdown with no grace cancels held
 * calls; and every test ends with uv_loop_close() == 0, so a leaked handle fails it. */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "services/runtime/grpc_client.h"
#include "services/runtime/grpc_server.h"

static uv_loop_t loop;
static fl_grpc_server_t *srv;
static int port;
static fl_grpc_srv_call_t *held; /* a call the handler keeps unanswered */
static int server_cancels, server_cancel_code;
static int server_closed;
static uv_timer_t tick; /* wakes the loop while RUN_UNTIL waits, so every wait is bounded */

typedef struct {
    int done;
    int code;
    char message[256];
    char reply[64];
    int in_start; /* set while fl_grpc_call_start runs: done must not run then */
    int during_start;
} result_t;

static void on_cancel(fl_grpc_srv_call_t *call, int code, void *arg)
{
    server_cancels++;
    server_cancel_code = code;
    held = NULL;
}

/* "/t.T/Echo" echoes the request; "/t.T/Hold" never answers (until cancelled). */
static void echo(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg)
{
    fl_grpc_srv_reply(call, req, len);
}

static void hold(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg)
{
    held = call;
    fl_grpc_srv_call_on_cancel(call, on_cancel, NULL);
}

static void on_done(void *arg, const fl_grpc_result_t *res)
{
    result_t *r = arg;
    r->done++;
    r->code = res->code;
    r->during_start |= r->in_start;
    snprintf(r->message, sizeof r->message, "%s", res->message);
    if (res->msg)
        snprintf(r->reply, sizeof r->reply, "%.*s", (int)res->msg_len, (const char *)res->msg);
}

static void setup(void)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    ck_assert_int_eq(fl_grpc_server_start(&loop, "127.0.0.1", 0, NULL, &srv), 0);
    ck_assert_int_eq(fl_grpc_server_add(srv, "/t.T/Echo", echo, NULL), 0);
    ck_assert_int_eq(fl_grpc_server_add(srv, "/t.T/Hold", hold, NULL), 0);
    port = fl_grpc_server_port(srv);
    held = NULL;
    server_cancels = server_cancel_code = server_closed = 0;
}

static void on_server_closed(fl_grpc_server_t *s, void *arg)
{
    server_closed = 1;
}

static void on_channel_closed(void *arg)
{
    (*(int *)arg)++;
}

/* Closes what is left and checks that nothing outlives it. */
static void teardown_loop(fl_grpc_channel_t *ch)
{
    int closed = 0;
    uv_close((uv_handle_t *)&tick, NULL);
    if (ch)
        fl_grpc_channel_close(ch, on_channel_closed, &closed);
    if (srv)
        fl_grpc_server_shutdown(srv, 0, on_server_closed, NULL);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    if (ch)
        ck_assert_int_eq(closed, 1);
    if (srv)
        ck_assert_int_eq(server_closed, 1);
    srv = NULL;
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static fl_grpc_backend_t *backend(fl_grpc_channel_t *ch, int p)
{
    char addr[32];
    fl_grpc_backend_t *be;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", p);
    ck_assert_int_eq(fl_grpc_channel_add(ch, addr, &be), 0);
    return be;
}

static int start(fl_grpc_backend_t *be, const char *path, uint64_t timeout_ns, result_t *r,
                 fl_grpc_call_t **call)
{
    fl_grpc_call_opts_t o = {
        .path = path, .req = (const uint8_t *)"ping", .req_len = 4, .timeout_ns = timeout_ns};
    r->in_start = 1;
    int rc = fl_grpc_call_start(be, &o, on_done, r, call);
    r->in_start = 0;
    return rc;
}

static void on_tick(uv_timer_t *t)
{
}

/* Runs the loop until cond holds: 500 turns at most, each at most 10 ms (the tick). */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        uv_timer_start(&tick, on_tick, 10, 10);                                                    \
        for (int i_ = 0; i_ < 500 && !(cond); i_++)                                                \
            uv_run(&loop, UV_RUN_ONCE);                                                            \
        uv_timer_stop(&tick);                                                                      \
        ck_assert(cond);                                                                           \
    } while (0)

START_TEST(a_call_and_its_backend)
{
    setup();
    fl_grpc_channel_t *ch;
    ck_assert_int_eq(fl_grpc_channel_new(&loop, NULL, &ch), 0);
    fl_grpc_backend_t *be = backend(ch, port);
    ck_assert_int_eq(fl_grpc_backend_state(be), FL_GRPC_IDLE);
    result_t r = {0};
    ck_assert_int_eq(start(be, "/t.T/Echo", 0, &r, NULL), 0);
    ck_assert_int_eq(fl_grpc_backend_state(be), FL_GRPC_CONNECTING);
    ck_assert_uint_eq(fl_grpc_backend_inflight(be), 1);
    RUN_UNTIL(r.done);
    ck_assert_int_eq(r.done, 1);
    ck_assert_int_eq(r.code, FL_GRPC_OK);
    ck_assert_str_eq(r.reply, "ping");
    ck_assert_int_eq(fl_grpc_backend_state(be), FL_GRPC_READY);
    ck_assert_uint_eq(fl_grpc_backend_inflight(be), 0);
    ck_assert_uint_eq(fl_grpc_backend_connections(be), 1);
    /* a bad path is refused at once, with no callback */
    ck_assert_int_eq(start(be, "no-slash", 0, &r, NULL), FL_EINVAL);
    teardown_loop(ch);
    ck_assert_int_eq(r.done, 1);
}
END_TEST

START_TEST(failures_are_reported_from_the_loop)
{
    setup();
    fl_grpc_channel_t *ch;
    fl_grpc_channel_opts_t o = {.max_send = 2};
    ck_assert_int_eq(fl_grpc_channel_new(&loop, &o, &ch), 0);
    fl_grpc_backend_t *be = backend(ch, port);
    result_t big = {0};
    ck_assert_int_eq(start(be, "/t.T/Echo", 0, &big, NULL), 0); /* 4 bytes > max_send 2 */
    ck_assert_int_eq(big.done, 0);
    RUN_UNTIL(big.done);
    ck_assert_int_eq(big.during_start, 0);
    ck_assert_int_eq(big.code, FL_GRPC_RESOURCE_EXHAUSTED);
    ck_assert_uint_eq(fl_grpc_backend_connections(be), 0); /* never sent */
    /* a refused connection: UNAVAILABLE, and the backend says so */
    fl_grpc_server_shutdown(srv, 0, on_server_closed, NULL);
    RUN_UNTIL(server_closed);
    srv = NULL;
    fl_grpc_channel_t *ch2;
    ck_assert_int_eq(fl_grpc_channel_new(&loop, NULL, &ch2), 0);
    fl_grpc_backend_t *gone = backend(ch2, port);
    result_t r = {0};
    ck_assert_int_eq(start(gone, "/t.T/Echo", 0, &r, NULL), 0);
    RUN_UNTIL(r.done);
    ck_assert_int_eq(r.code, FL_GRPC_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(r.message, "connection refused"));
    ck_assert_int_eq(fl_grpc_backend_state(gone), FL_GRPC_TRANSIENT_FAILURE);
    int closed = 0;
    fl_grpc_channel_close(ch2, on_channel_closed, &closed);
    teardown_loop(ch);
    ck_assert_int_eq(closed, 1);
}
END_TEST

START_TEST(cancel_resets_the_stream_and_skips_the_callback)
{
    setup();
    fl_grpc_channel_t *ch;
    ck_assert_int_eq(fl_grpc_channel_new(&loop, NULL, &ch), 0);
    fl_grpc_backend_t *be = backend(ch, port);
    result_t r = {0};
    fl_grpc_call_t *call;
    ck_assert_int_eq(start(be, "/t.T/Hold", 0, &r, &call), 0);
    RUN_UNTIL(held);
    fl_grpc_call_cancel(call);
    ck_assert_uint_eq(fl_grpc_backend_inflight(be), 0);
    RUN_UNTIL(server_cancels == 1); /* the RST_STREAM reached the handler */
    ck_assert_int_eq(server_cancel_code, FL_GRPC_CANCELLED);
    ck_assert_int_eq(r.done, 0);
    /* the connection is still good for the next call */
    result_t r2 = {0};
    ck_assert_int_eq(start(be, "/t.T/Echo", 0, &r2, NULL), 0);
    RUN_UNTIL(r2.done);
    ck_assert_int_eq(r2.code, FL_GRPC_OK);
    ck_assert_uint_eq(fl_grpc_backend_connections(be), 1);
    teardown_loop(ch);
    ck_assert_int_eq(r.done, 0);
}
END_TEST

START_TEST(deadline_on_both_sides)
{
    setup();
    fl_grpc_channel_t *ch;
    ck_assert_int_eq(fl_grpc_channel_new(&loop, NULL, &ch), 0);
    fl_grpc_backend_t *be = backend(ch, port);
    result_t r = {0};
    uint64_t t0 = uv_hrtime();
    ck_assert_int_eq(start(be, "/t.T/Hold", 50000000ULL, &r, NULL), 0); /* 50 ms */
    RUN_UNTIL(r.done);
    ck_assert_uint_ge(uv_hrtime() - t0, 50000000ULL);
    ck_assert_int_eq(r.code, FL_GRPC_DEADLINE_EXCEEDED);
    RUN_UNTIL(server_cancels == 1);
    ck_assert_ptr_null(held);
    teardown_loop(ch);
}
END_TEST

START_TEST(closing_the_channel_cancels_its_calls)
{
    setup();
    fl_grpc_channel_t *ch;
    ck_assert_int_eq(fl_grpc_channel_new(&loop, NULL, &ch), 0);
    fl_grpc_backend_t *be = backend(ch, port);
    result_t r = {0}, queued = {0};
    ck_assert_int_eq(start(be, "/t.T/Hold", 0, &r, NULL), 0);
    RUN_UNTIL(held);
    fl_grpc_backend_t *other = backend(ch, port);
    ck_assert_int_eq(start(other, "/t.T/Echo", 0, &queued, NULL), 0); /* still connecting */
    int closed = 0;
    fl_grpc_channel_close(ch, on_channel_closed, &closed);
    ck_assert_int_eq(r.done, 1);
    ck_assert_int_eq(r.code, FL_GRPC_CANCELLED);
    ck_assert_int_eq(queued.done, 1);
    ck_assert_int_eq(queued.code, FL_GRPC_CANCELLED);
    RUN_UNTIL(closed && server_cancels == 1); /* the server saw the connection go */
    teardown_loop(NULL);
}
END_TEST

START_TEST(a_removed_backend_finishes_its_calls)
{
    setup();
    fl_grpc_channel_t *ch;
    ck_assert_int_eq(fl_grpc_channel_new(&loop, NULL, &ch), 0);
    fl_grpc_backend_t *be = backend(ch, port), *list[4];
    ck_assert_uint_eq(fl_grpc_channel_backends(ch, list, 4), 1);
    result_t r = {0};
    ck_assert_int_eq(start(be, "/t.T/Hold", 0, &r, NULL), 0);
    RUN_UNTIL(held);
    fl_grpc_channel_remove(ch, be);
    ck_assert_uint_eq(fl_grpc_channel_backends(ch, list, 4), 0);
    ck_assert_int_eq(start(be, "/t.T/Echo", 0, &r, NULL), FL_EINVAL); /* no new calls */
    fl_grpc_srv_reply(held, (const uint8_t *)"late", 4);
    held = NULL;
    RUN_UNTIL(r.done);
    ck_assert_int_eq(r.code, FL_GRPC_OK);
    ck_assert_str_eq(r.reply, "late");
    teardown_loop(ch);
}
END_TEST

START_TEST(shutdown_without_grace_cancels_held_calls)
{
    setup();
    fl_grpc_channel_t *ch;
    ck_assert_int_eq(fl_grpc_channel_new(&loop, NULL, &ch), 0);
    fl_grpc_backend_t *be = backend(ch, port);
    result_t r = {0};
    ck_assert_int_eq(start(be, "/t.T/Hold", 0, &r, NULL), 0);
    RUN_UNTIL(held);
    fl_grpc_server_shutdown(srv, 0, on_server_closed, NULL);
    srv = NULL;
    ck_assert_int_eq(server_cancels, 1);
    RUN_UNTIL(r.done && server_closed);
    ck_assert_int_eq(r.code, FL_GRPC_UNAVAILABLE);
    teardown_loop(ch);
}
END_TEST

START_TEST(graceful_shutdown_lets_a_held_call_finish)
{
    setup();
    fl_grpc_channel_t *ch;
    ck_assert_int_eq(fl_grpc_channel_new(&loop, NULL, &ch), 0);
    fl_grpc_backend_t *be = backend(ch, port);
    result_t r = {0};
    ck_assert_int_eq(start(be, "/t.T/Hold", 0, &r, NULL), 0);
    RUN_UNTIL(held);
    fl_grpc_server_shutdown(srv, 10000, on_server_closed, NULL);
    srv = NULL;
    /* the GOAWAY round trip, then the answer */
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(r.done, 0);
    ck_assert_ptr_nonnull(held);
    fl_grpc_srv_reply(held, (const uint8_t *)"bye", 3);
    held = NULL;
    RUN_UNTIL(r.done && server_closed);
    ck_assert_int_eq(r.code, FL_GRPC_OK);
    ck_assert_str_eq(r.reply, "bye");
    ck_assert_int_eq(server_cancels, 0);
    teardown_loop(ch);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error code, as in the services */
    Suite *s = suite_create("grpc_client");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, a_call_and_its_backend);
    tcase_add_test(tc, failures_are_reported_from_the_loop);
    tcase_add_test(tc, cancel_resets_the_stream_and_skips_the_callback);
    tcase_add_test(tc, deadline_on_both_sides);
    tcase_add_test(tc, closing_the_channel_cancels_its_calls);
    tcase_add_test(tc, a_removed_backend_finishes_its_calls);
    tcase_add_test(tc, shutdown_without_grace_cancels_held_calls);
    tcase_add_test(tc, graceful_shutdown_lets_a_held_call_finish);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
