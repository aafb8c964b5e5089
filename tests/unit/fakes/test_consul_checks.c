/* Unit tests for the checks the fake Consul runs: HTTP against a lib/httpd server (2xx, 429,
 * 500, a server that stops), TCP, TTL expiry, gRPC (not spoken yet: critical, saying so) and
 * DeregisterCriticalServiceAfter. Intervals are tens of milliseconds; every wait is bounded. */
#include "consulfx.h"

#include "fakes/consul/internal.h" /* to read a check's status directly */

typedef struct {
    fl_httpd_t *h;
    int port;
    int status;  /* what the server answers */
    int counter; /* answers given */
    int vary;    /* put the counter in the body */
    char method[16];
    char agent[64];
    char custom[64];
    char body[64];
    int closed;
} server_t;

static void server_handler(fl_httpd_exchange_t *ex, void *arg)
{
    server_t *s = arg;
    const char *ua = fl_httpd_header(ex, "User-Agent"), *custom = fl_httpd_header(ex, "X-Token");
    size_t len;
    const char *body = fl_httpd_body(ex, &len);
    snprintf(s->method, sizeof s->method, "%s", fl_httpd_method(ex));
    snprintf(s->agent, sizeof s->agent, "%s", ua ? ua : "");
    snprintf(s->custom, sizeof s->custom, "%s", custom ? custom : "");
    snprintf(s->body, sizeof s->body, "%.*s", (int)len, body);
    char out[64];
    s->counter++;
    if (s->vary)
        snprintf(out, sizeof out, "answer %d", s->counter);
    else
        snprintf(out, sizeof out, "ok");
    fl_httpd_respond(ex, s->status, NULL, "text/plain", out, strlen(out));
}

static void server_closed(fl_httpd_t *h, void *arg)
{
    ((server_t *)arg)->closed = 1;
}

static void server_start(fx_t *fx, server_t *s, int port)
{
    memset(s, 0, sizeof *s);
    s->status = 200;
    fl_httpd_config_t cfg = {.handler = server_handler, .arg = s};
    ck_assert_int_eq(fl_httpd_start(&fx->loop, "127.0.0.1", port, &cfg, &s->h), 0);
    s->port = fl_httpd_port(s->h);
}

static void server_stop(fx_t *fx, server_t *s)
{
    fl_httpd_close(s->h, server_closed, s);
    while (!s->closed)
        uv_run(&fx->loop, UV_RUN_ONCE);
}

typedef struct {
    const char *node, *id;
    int status;
} want_t;

static const check_t *check_of(fx_t *fx, const char *node, const char *id)
{
    long i = find_check(fx->c->live, node, id);
    return i >= 0 ? fx->c->live->checks.v[i] : NULL;
}

static int check_is(fx_t *fx, void *arg)
{
    want_t *w = arg;
    const check_t *k = check_of(fx, w->node, w->id);
    return k && k->status == w->status;
}

/* Waits (at most ms) for check id of node-1 to have status; returns its output. */
static const char *await_status(fx_t *fx, const char *id, int status, uint64_t ms)
{
    want_t w = {"node-1", id, status};
    ck_assert_msg(fx_until(fx, check_is, &w, ms), "%s never became %s (it is %s: %s)", id,
                  status_name(status),
                  check_of(fx, "node-1", id) ? status_name(check_of(fx, "node-1", id)->status)
                                             : "gone",
                  check_of(fx, "node-1", id) ? check_of(fx, "node-1", id)->output : "");
    return check_of(fx, "node-1", id)->output;
}

static void reg(fx_t *fx, const char *fmt, int port)
{
    char body[512];
    snprintf(body, sizeof body, fmt, port);
    fx_expect(fx, 0, "PUT", "/v1/agent/service/register", body, 200);
}

START_TEST(http_check_follows_the_server)
{
    fx_t fx;
    fx_init(&fx, 1);
    server_t s;
    server_start(&fx, &s, 0);
    reg(&fx,
        "{\"Name\":\"web\",\"Check\":{\"HTTP\":\"http://127.0.0.1:%d/health\",\"Interval\":"
        "\"50ms\",\"Timeout\":\"1s\"}}",
        s.port);
    char want[128];
    snprintf(want, sizeof want, "HTTP GET http://127.0.0.1:%d/health: 200 OK Output: ok", s.port);
    ck_assert_str_eq(await_status(&fx, "service:web", ST_PASSING, 1000), want);
    ck_assert_str_eq(s.method, "GET");
    ck_assert_str_eq(s.agent, "Consul Health Check");
    s.status = 429;
    snprintf(want, sizeof want,
             "HTTP GET http://127.0.0.1:%d/health: 429 Too Many Requests Output: ok", s.port);
    ck_assert_str_eq(await_status(&fx, "service:web", ST_WARNING, 500), want);
    s.status = 500;
    snprintf(want, sizeof want,
             "HTTP GET http://127.0.0.1:%d/health: 500 Internal Server Error Output: ok", s.port);
    ck_assert_str_eq(await_status(&fx, "service:web", ST_CRITICAL, 500), want);
    s.status = 204;
    await_status(&fx, "service:web", ST_PASSING, 500);
    /* a stopped server: critical within about one interval */
    server_stop(&fx, &s);
    uint64_t stopped = uv_hrtime();
    const char *out = await_status(&fx, "service:web", ST_CRITICAL, 1000);
    ck_assert_msg((uv_hrtime() - stopped) / MS < 300, "critical only after %llu ms",
                  (unsigned long long)((uv_hrtime() - stopped) / MS));
    snprintf(want, sizeof want,
             "Get \"http://127.0.0.1:%d/health\": dial tcp 127.0.0.1:%d: connect: connection "
             "refused",
             s.port, s.port);
    ck_assert_str_eq(out, want);
    ck_assert_ptr_nonnull(strstr(fx.events.data, "check service:web warning -> critical"));
    fx_close(&fx);
}
END_TEST

START_TEST(http_check_method_headers_body)
{
    fx_t fx;
    fx_init(&fx, 1);
    server_t s;
    server_start(&fx, &s, 0);
    reg(&fx,
        "{\"Name\":\"api\",\"Check\":{\"HTTP\":\"http://localhost:%d/h?x=1\",\"Method\":\"POST\","
        "\"Header\":{\"X-Token\":[\"t1\"]},\"Body\":\"ping\",\"Interval\":\"30ms\"}}",
        s.port);
    const char *out = await_status(&fx, "service:api", ST_PASSING, 1000);
    ck_assert_ptr_nonnull(strstr(out, "HTTP POST http://localhost:"));
    ck_assert_str_eq(s.method, "POST");
    ck_assert_str_eq(s.custom, "t1");
    ck_assert_str_eq(s.body, "ping");
    /* output changing alone is not a write: the index stays */
    s.vary = 1;
    fx_run_for(&fx, 100);
    uint64_t idx = fl_consul_index(fx.c);
    int before = s.counter;
    fx_run_for(&fx, 150);
    ck_assert_int_gt(s.counter, before + 1);
    ck_assert_uint_eq(fl_consul_index(fx.c), idx);
    server_stop(&fx, &s);
    fx_close(&fx);
}
END_TEST

START_TEST(tcp_check)
{
    fx_t fx;
    fx_init(&fx, 1);
    server_t s;
    server_start(&fx, &s, 0);
    reg(&fx, "{\"Name\":\"db\",\"Check\":{\"TCP\":\"127.0.0.1:%d\",\"Interval\":\"40ms\"}}",
        s.port);
    char want[128];
    snprintf(want, sizeof want, "TCP connect 127.0.0.1:%d: Success", s.port);
    ck_assert_str_eq(await_status(&fx, "service:db", ST_PASSING, 1000), want);
    server_stop(&fx, &s);
    snprintf(want, sizeof want, "dial tcp 127.0.0.1:%d: connect: connection refused", s.port);
    ck_assert_str_eq(await_status(&fx, "service:db", ST_CRITICAL, 1000), want);
    fx_close(&fx);
}
END_TEST

START_TEST(ttl_expires)
{
    fx_t fx;
    fx_init(&fx, 1);
    fx_expect(&fx, 0, "PUT", "/v1/agent/service/register",
              "{\"Name\":\"t\",\"Check\":{\"TTL\":\"200ms\"}}", 200);
    uint64_t idx = fl_consul_index(fx.c);
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/pass/service:t?note=alive", NULL, 200);
    ck_assert_uint_gt(fl_consul_index(fx.c), idx); /* a status change is a write */
    uint64_t passed = uv_hrtime();
    /* kept alive by updates */
    for (int i = 0; i < 4; i++) {
        fx_run_for(&fx, 100);
        fx_expect(&fx, 0, "PUT", "/v1/agent/check/pass/service:t?note=alive", NULL, 200);
        ck_assert_int_eq(check_of(&fx, "node-1", "service:t")->status, ST_PASSING);
    }
    passed = uv_hrtime();
    const char *out = await_status(&fx, "service:t", ST_CRITICAL, 1000);
    uint64_t after = (uv_hrtime() - passed) / MS;
    ck_assert_msg(after >= 190 && after < 600, "expired after %llu ms", (unsigned long long)after);
    ck_assert_str_eq(out, "TTL expired (last output before timeout follows): alive");
    fx_close(&fx);
}
END_TEST

START_TEST(grpc_check_of_a_dead_server)
{
    fx_t fx;
    fx_init(&fx, 1);
    fx_expect(&fx, 0, "PUT", "/v1/agent/service/register",
              "{\"Name\":\"g\",\"Check\":{\"GRPC\":\"127.0.0.1:1\",\"Interval\":\"20ms\","
              "\"Status\":\"passing\"}}",
              200);
    /* nothing listens on port 1: critical at once, in grpc-go's words */
    ck_assert_str_eq(await_status(&fx, "service:g", ST_CRITICAL, 1000),
                     "rpc error: code = Unavailable desc = connection error: desc = \"transport: "
                     "Error while dialing dial tcp 127.0.0.1:1: connect: connection refused\"");
    json_t *j;
    resp_t r = {0};
    fx_req(&fx, 0, "GET", "/v1/agent/checks", NULL, &r);
    j = resp_json(&r);
    json_t *def = json_object_get(json_object_get(j, "service:g"), "Definition");
    ck_assert_str_eq(json_string_value(json_object_get(def, "GRPC")), "127.0.0.1:1");
    ck_assert_str_eq(json_string_value(json_object_get(def, "Interval")), "20ms");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "service:g"), "Type")),
                     "grpc");
    json_decref(j);
    resp_free(&r);
    fx_close(&fx);
}
END_TEST

static int service_gone(fx_t *fx, void *arg)
{
    return find_svc(fx->c->live, "node-1", arg) < 0;
}

START_TEST(deregister_critical_service_after)
{
    fx_t fx;
    fx_init(&fx, 1);
    /* starts critical (no status given), so the clock starts at registration */
    fx_expect(&fx, 0, "PUT", "/v1/agent/service/register",
              "{\"Name\":\"doomed\",\"Check\":{\"TTL\":\"10s\",\"DeregisterCriticalServiceAfter\":"
              "\"300ms\"}}",
              200);
    fx_expect(&fx, 0, "PUT", "/v1/agent/service/register",
              "{\"Name\":\"kept\",\"Check\":{\"TTL\":\"10s\",\"Status\":\"passing\","
              "\"DeregisterCriticalServiceAfter\":\"300ms\"}}",
              200);
    uint64_t start = uv_hrtime();
    fx_run_for(&fx, 150);
    ck_assert(!service_gone(&fx, "doomed"));
    ck_assert(fx_until(&fx, service_gone, "doomed", 1500));
    uint64_t took = (uv_hrtime() - start) / MS;
    ck_assert_msg(took >= 290, "deregistered after %llu ms", (unsigned long long)took);
    ck_assert(check_of(&fx, "node-1", "service:doomed") == NULL);
    ck_assert(!service_gone(&fx, "kept"));
    ck_assert_ptr_nonnull(strstr(fx.events.data, "deregistered service doomed: check"));
    /* a check going back to passing in time saves its service */
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/fail/service:kept", NULL, 200);
    fx_run_for(&fx, 150);
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/pass/service:kept", NULL, 200);
    fx_run_for(&fx, 400);
    ck_assert(!service_gone(&fx, "kept"));
    fx_close(&fx);
}
END_TEST

Suite *consul_checks_suite(void)
{
    Suite *s = suite_create("consul_checks");
    TCase *tc = tcase_create("checks");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, http_check_follows_the_server);
    tcase_add_test(tc, http_check_method_headers_body);
    tcase_add_test(tc, tcp_check);
    tcase_add_test(tc, ttl_expires);
    tcase_add_test(tc, grpc_check_of_a_dead_server);
    tcase_add_test(tc, deregister_critical_service_after);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(consul_checks_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
