/* Unit tests for services/runtime/rpc: the balanced, retrying client against gRPC servers of
 * our runtime on the same loop (real sockets on 127.0.0.1). Retries per A6 (succeeding after
 * failures, grpc-previous-rpc-attempts, pushback, a code that is not retried, never past the
 * deadline, never once response headers came, throttling), FAULTLINE_BUG=no-retry, round_robin's
 * spread and sticky-lb, a refused backend routed around, the trace context passed on, and a clean
 * close (uv_loop_close == 0). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "services/runtime/grpc_server.h"
#include "services/runtime/rpc.h"

typedef struct {
    fl_grpc_server_t *srv;
    int port;
    int calls;
    int fail_first;       /* answer UNAVAILABLE to this many calls */
    int fail_code;        /* ...with this code (default UNAVAILABLE) */
    const char *pushback; /* grpc-retry-pushback-ms trailer on failures */
    int hold;             /* never answer */
    int headers_first;    /* send the answer's headers before answering (or failing) */
    char prev_attempts[8][16];
    char traceparent[64];
} server_t;

static uv_loop_t loop;
static server_t S[3];
static int nservers;
static fl_rpc_result_t last;
static int done_count;

static void handler(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg)
{
    server_t *s = arg;
    const char *pa = fl_grpc_srv_call_header(call, "grpc-previous-rpc-attempts");
    const char *tp = fl_grpc_srv_call_header(call, "traceparent");
    if (s->calls < 8)
        snprintf(s->prev_attempts[s->calls], sizeof s->prev_attempts[0], "%s", pa ? pa : "-");
    snprintf(s->traceparent, sizeof s->traceparent, "%s", tp ? tp : "");
    s->calls++;
    if (s->headers_first)
        ck_assert_int_eq(fl_grpc_srv_send_headers(call), 0);
    if (s->hold)
        return;
    if (s->calls <= s->fail_first) {
        if (s->pushback)
            fl_grpc_srv_add_metadata(call, 1, "grpc-retry-pushback-ms", s->pushback);
        fl_grpc_srv_fail(call, s->fail_code ? s->fail_code : FL_GRPC_UNAVAILABLE, "not now");
        return;
    }
    fl_grpc_srv_reply(call, req, len);
}

static void start_servers(int n)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    memset(S, 0, sizeof S);
    nservers = n;
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(fl_grpc_server_start(&loop, "127.0.0.1", 0, NULL, &S[i].srv), 0);
        ck_assert_int_eq(fl_grpc_server_add(S[i].srv, "/t.T/Echo", handler, &S[i]), 0);
        S[i].port = fl_grpc_server_port(S[i].srv);
    }
    done_count = 0;
}

static void on_done(void *arg, const fl_rpc_result_t *res)
{
    (void)arg;
    last = *res;
    last.message = NULL; /* lives only during the callback */
    last.msg = NULL;
    last.backend = NULL;
    done_count++;
}

static void on_watchdog(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void run_until(int want, int ms)
{
    static uv_timer_t wd; /* closes after this returns: not on the stack */
    static int fired;
    fired = 0;
    uv_timer_init(&loop, &wd);
    wd.data = &fired;
    uv_timer_start(&wd, on_watchdog, (uint64_t)ms, 0);
    while (done_count < want && !fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_msg(done_count >= want, "only %d of %d calls ended within %d ms", done_count, want,
                  ms);
}

static void server_down(fl_grpc_server_t *s, void *arg)
{
    (void)s;
    (*(int *)arg)++;
}
static void client_closed(void *arg)
{
    (*(int *)arg)++;
}

static void finish(fl_rpc_client_t *c)
{
    int closed = 0;
    fl_rpc_client_close(c, client_closed, &closed);
    for (int i = 0; i < nservers; i++)
        fl_grpc_server_shutdown(S[i].srv, 0, server_down, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(closed, nservers + 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static fl_retry_throttle_t next_throttle; /* the next client's throttle (then off again) */

static fl_rpc_client_t *client(int max_attempts, uint32_t retryable, int no_retry, int sticky)
{
    fl_rpc_opts_t o = {
        .service = "t", .lb = FL_LB_ROUND_ROBIN, .sticky = sticky, .no_retry = no_retry, .seed = 7};
    o.retry = (fl_retry_policy_t){max_attempts, 1000000, 5000000, 2, retryable};
    o.throttle = next_throttle;
    memset(&next_throttle, 0, sizeof next_throttle);
    fl_rpc_client_t *c;
    ck_assert_int_eq(fl_rpc_client_new(&loop, &o, &c), 0);
    char csv[256] = "";
    for (int i = 0; i < nservers; i++) {
        size_t l = strlen(csv);
        snprintf(csv + l, sizeof csv - l, "%s127.0.0.1:%d", i ? "," : "", S[i].port);
    }
    ck_assert_int_eq(fl_rpc_set_backends_csv(c, csv), 0);
    return c;
}

static void call(fl_rpc_client_t *c, uint64_t timeout_ns, const fl_tracectx_t *parent)
{
    ck_assert_int_eq(fl_rpc_call(c, "/t.T/Echo", NULL, timeout_ns, parent, on_done, NULL), 0);
}

#define UNAV (1u << FL_GRPC_UNAVAILABLE)

START_TEST(retries_until_it_succeeds)
{
    start_servers(1);
    S[0].fail_first = 2;
    fl_rpc_client_t *c = client(3, UNAV, 0, 0);
    fl_tracectx_t parent = {0};
    ck_assert_int_eq(fl_traceparent_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                          55, &parent),
                     0);
    call(c, 0, &parent);
    run_until(1, 5000);
    ck_assert_int_eq(last.code, FL_GRPC_OK);
    ck_assert_int_eq(last.attempts, 3);
    ck_assert_int_eq(S[0].calls, 3);
    ck_assert_str_eq(S[0].prev_attempts[0], "-");
    ck_assert_str_eq(S[0].prev_attempts[1], "1");
    ck_assert_str_eq(S[0].prev_attempts[2], "2");
    /* without a tracer, the caller's context travels as it is */
    ck_assert_str_eq(S[0].traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    fl_rpc_stats_t st;
    fl_rpc_stats(c, &st);
    ck_assert_uint_eq(st.attempts, 3);
    ck_assert_uint_eq(st.retries, 2);
    ck_assert_uint_eq(st.ok, 1);
    finish(c);
}
END_TEST

START_TEST(no_retry_bug_and_unretried_codes)
{
    start_servers(1);
    S[0].fail_first = 100;
    fl_rpc_client_t *c = client(3, UNAV, 1, 0); /* FAULTLINE_BUG=no-retry */
    call(c, 0, NULL);
    run_until(1, 5000);
    ck_assert_int_eq(last.code, FL_GRPC_UNAVAILABLE);
    ck_assert_int_eq(last.attempts, 1);
    ck_assert_int_eq(last.why, FL_RETRY_NO);
    finish(c);

    start_servers(1);
    S[0].fail_first = 100;
    S[0].fail_code = FL_GRPC_INTERNAL;
    c = client(3, UNAV, 0, 0);
    call(c, 0, NULL);
    run_until(1, 5000);
    ck_assert_int_eq(last.code, FL_GRPC_INTERNAL);
    ck_assert_int_eq(last.attempts, 1);
    finish(c);

    start_servers(1);
    S[0].fail_first = 100;
    c = client(3, UNAV, 0, 0);
    call(c, 0, NULL);
    run_until(1, 5000);
    ck_assert_int_eq(last.code, FL_GRPC_UNAVAILABLE);
    ck_assert_int_eq(last.attempts, 3); /* the policy's limit */
    ck_assert_int_eq(last.why, FL_RETRY_NO);
    finish(c);
}
END_TEST

START_TEST(pushback_stops_retries)
{
    start_servers(1);
    S[0].fail_first = 100;
    S[0].pushback = "-1";
    fl_rpc_client_t *c = client(5, UNAV, 0, 0);
    call(c, 0, NULL);
    run_until(1, 5000);
    ck_assert_int_eq(last.attempts, 1);
    ck_assert_int_eq(last.why, FL_RETRY_PUSHBACK);
    finish(c);
}
END_TEST

/* gRFC A6: once response headers have arrived the call is committed. A server that sends its
 * headers, then fails with a retryable code, is not asked again (a trailers-only failure is:
 * retries_until_it_succeeds); headers then an answer, or a deadline, end as usual. */
START_TEST(committed_once_response_headers_arrive)
{
    start_servers(1);
    S[0].fail_first = 100;
    S[0].headers_first = 1;
    fl_rpc_client_t *c = client(5, UNAV, 0, 0);
    call(c, 0, NULL);
    run_until(1, 5000);
    ck_assert_int_eq(last.code, FL_GRPC_UNAVAILABLE);
    ck_assert_int_eq(last.attempts, 1);
    ck_assert_int_eq(last.why, FL_RETRY_COMMITTED);
    ck_assert_int_eq(S[0].calls, 1);
    fl_rpc_stats_t st;
    fl_rpc_stats(c, &st);
    ck_assert_uint_eq(st.not_retried[FL_RETRY_COMMITTED], 1);
    finish(c);

    start_servers(1);
    S[0].headers_first = 1;
    c = client(5, UNAV, 0, 0);
    call(c, 0, NULL);
    run_until(1, 5000);
    ck_assert_int_eq(last.code, FL_GRPC_OK);
    ck_assert_int_eq(last.attempts, 1);
    finish(c);

    start_servers(1);
    S[0].headers_first = 1;
    S[0].hold = 1;
    c = client(5, UNAV | (1u << FL_GRPC_DEADLINE_EXCEEDED), 0, 0);
    call(c, 100000000ull, NULL);
    run_until(1, 5000);
    ck_assert_int_eq(last.code, FL_GRPC_DEADLINE_EXCEEDED);
    ck_assert_int_eq(last.attempts, 1);
    finish(c);
}
END_TEST

/* Retry throttling (A6's token bucket) in the client: 4 tokens, retries while more than 2
 * are left; every failure costs one, every success gives one back. */
START_TEST(throttling_stops_and_resumes_retries)
{
    start_servers(1);
    S[0].fail_first = 1000;
    next_throttle = (fl_retry_throttle_t){1, 4, 4, 1};
    fl_rpc_client_t *c = client(5, UNAV, 0, 0);
    call(c, 0, NULL);
    run_until(1, 5000);
    ck_assert_int_eq(last.attempts, 2); /* 4 → 3 (retried) → 2: no more */
    ck_assert_int_eq(last.why, FL_RETRY_THROTTLED);
    call(c, 0, NULL);
    run_until(2, 5000);
    ck_assert_int_eq(last.attempts, 1); /* 2 → 1 */
    ck_assert_int_eq(last.why, FL_RETRY_THROTTLED);
    S[0].fail_first = 0; /* three successes: 1 → 4 */
    for (int i = 0; i < 3; i++)
        call(c, 0, NULL);
    run_until(5, 5000);
    ck_assert_int_eq(last.code, FL_GRPC_OK);
    S[0].fail_first = S[0].calls + 1; /* the next call fails once: 4 → 3, retried */
    call(c, 0, NULL);
    run_until(6, 5000);
    ck_assert_int_eq(last.code, FL_GRPC_OK);
    ck_assert_int_eq(last.attempts, 2);
    fl_rpc_stats_t st;
    fl_rpc_stats(c, &st);
    ck_assert_uint_eq(st.not_retried[FL_RETRY_THROTTLED], 2);
    finish(c);
}
END_TEST

START_TEST(never_past_the_deadline)
{
    start_servers(1);
    S[0].hold = 1;
    fl_rpc_client_t *c = client(5, UNAV | (1u << FL_GRPC_DEADLINE_EXCEEDED), 0, 0);
    uint64_t t0 = uv_hrtime();
    call(c, 100000000ull, NULL); /* 100 ms */
    run_until(1, 5000);
    uint64_t took = uv_hrtime() - t0;
    ck_assert_int_eq(last.code, FL_GRPC_DEADLINE_EXCEEDED);
    ck_assert_int_eq(last.attempts, 1);
    ck_assert_msg(took < 1000000000ull, "the call took %llu ms",
                  (unsigned long long)(took / 1000000));
    finish(c);
}
END_TEST

START_TEST(round_robin_spreads_and_sticky_does_not)
{
    start_servers(3);
    fl_rpc_client_t *c = client(1, 0, 0, 0);
    for (int i = 0; i < 30; i++)
        call(c, 0, NULL);
    run_until(30, 5000);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(S[i].calls, 10);
    finish(c);

    start_servers(3);
    c = client(1, 0, 0, 1); /* FAULTLINE_BUG=sticky-lb */
    for (int i = 0; i < 30; i++)
        call(c, 0, NULL);
    run_until(30, 5000);
    ck_assert_int_eq(S[0].calls + S[1].calls + S[2].calls, 30);
    ck_assert_msg(S[0].calls == 30 || S[1].calls == 30 || S[2].calls == 30, "sticky: %d/%d/%d",
                  S[0].calls, S[1].calls, S[2].calls);
    finish(c);
}
END_TEST

START_TEST(a_refused_backend_is_routed_around)
{
    start_servers(1);
    fl_rpc_client_t *c = client(3, UNAV, 0, 0);
    /* a second backend where nobody listens (the port of a server just shut) */
    fl_grpc_server_t *dead;
    ck_assert_int_eq(fl_grpc_server_start(&loop, "127.0.0.1", 0, NULL, &dead), 0);
    int dead_port = fl_grpc_server_port(dead), closed = 0;
    fl_grpc_server_shutdown(dead, 0, server_down, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    char csv[128];
    snprintf(csv, sizeof csv, "127.0.0.1:%d,127.0.0.1:%d", dead_port, S[0].port);
    ck_assert_int_eq(fl_rpc_set_backends_csv(c, csv), 0);
    for (int i = 0; i < 20; i++) {
        call(c, 2000000000ull, NULL);
        run_until(i + 1, 5000);
        ck_assert_int_eq(last.code, FL_GRPC_OK);
    }
    ck_assert_int_eq(S[0].calls, 20);
    ck_assert_int_eq(fl_rpc_set_backends_csv(c, "not-an-address"), FL_EINVAL);
    finish(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rpc");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, retries_until_it_succeeds);
    tcase_add_test(tc, no_retry_bug_and_unretried_codes);
    tcase_add_test(tc, pushback_stops_retries);
    tcase_add_test(tc, never_past_the_deadline);
    tcase_add_test(tc, throttling_stops_and_resumes_retries);
    tcase_add_test(tc, committed_once_response_headers_arrive);
    tcase_add_test(tc, round_robin_spreads_and_sticky_does_not);
    tcase_add_test(tc, a_refused_backend_is_routed_around);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
