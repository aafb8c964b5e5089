/* Unit tests for the fake Consul's faults: down (connections refused, pending queries cut, up
 * again on the same port), latency, stale answers (and blocking queries on a stale view), and
 * flapping checks. */
#include "consulfx.h"

#include "fakes/consul/internal.h" /* to read a check's status directly */

static long long ms_since(uint64_t t)
{
    return (long long)((uv_hrtime() - t) / MS);
}

START_TEST(down_refuses_then_up_on_same_port)
{
    fx_t fx;
    fx_init(&fx, 2);
    int port = fl_consul_agent_port(fx.a[0]);
    resp_t r = {0}, blocked = {0};
    fx_req(&fx, 0, "GET", "/v1/catalog/nodes", NULL, &r);
    unsigned long long idx = resp_index(&r);
    char target[128];
    snprintf(target, sizeof target, "/v1/catalog/nodes?index=%llu&wait=10s", idx);
    fx_start(&fx, 0, "GET", target, NULL, &blocked);
    fx_run_for(&fx, 30);
    ck_assert_int_eq(fl_consul_set_down(fx.c, 1), 0);
    /* the query in flight is cut */
    ck_assert(fx_wait(&fx, &blocked, 2000));
    ck_assert_int_ne(blocked.error, 0);
    /* new connections are refused, on every agent */
    for (int i = 0; i < 2; i++) {
        fx_start(&fx, i, "GET", "/v1/agent/self", NULL, &r);
        ck_assert(fx_wait(&fx, &r, 2000));
        ck_assert_int_eq(r.error, UV_ECONNREFUSED);
    }
    ck_assert_int_eq(fl_consul_set_down(fx.c, 1), 0); /* again: nothing to do */
    ck_assert_int_eq(fl_consul_set_down(fx.c, 0), 0);
    ck_assert_int_eq(fl_consul_agent_port(fx.a[0]), port);
    fx_req(&fx, 0, "GET", "/v1/agent/self", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    fx_req(&fx, 1, "GET", "/v1/agent/self", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(fx.events.data, "|down"));
    ck_assert_ptr_nonnull(strstr(fx.events.data, "|up"));
    resp_free(&r);
    resp_free(&blocked);
    fx_close(&fx);
}
END_TEST

START_TEST(latency_delays_answers)
{
    fx_t fx;
    fx_init(&fx, 1);
    resp_t r = {0};
    fl_consul_set_latency(fx.c, 250 * MS);
    uint64_t start = uv_hrtime();
    fx_req(&fx, 0, "GET", "/v1/agent/self", NULL, &r);
    long long took = ms_since(start);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(took >= 245 && took < 1000, "answered after %lld ms", took);
    /* writes too, and they still happen */
    start = uv_hrtime();
    fx_req(&fx, 0, "PUT", "/v1/kv/x", "1", &r);
    ck_assert_int_ge(ms_since(start), 245);
    ck_assert_str_eq(r.body.data, "true");
    /* a client that leaves while its answer is held back costs nothing */
    fx_start(&fx, 0, "GET", "/v1/agent/self", NULL, &r);
    fx_run_for(&fx, 50);
    fl_httpc_cancel(r.req);
    fx_run_for(&fx, 20);
    fl_consul_set_latency(fx.c, 0);
    start = uv_hrtime();
    fx_req(&fx, 0, "GET", "/v1/agent/self", NULL, &r);
    ck_assert_int_lt(ms_since(start), 200);
    resp_free(&r);
    fx_close(&fx);
}
END_TEST

static int services_in_answer(fx_t *fx, unsigned long long *idx)
{
    resp_t r = {0};
    fx_req(fx, 0, "GET", "/v1/catalog/services", NULL, &r);
    json_t *j = resp_json(&r);
    int n = (int)json_object_size(j);
    if (idx)
        *idx = resp_index(&r);
    json_decref(j);
    resp_free(&r);
    return n;
}

START_TEST(stale_answers_lag)
{
    fx_t fx;
    fx_init(&fx, 1);
    fx_expect(&fx, 0, "PUT", "/v1/agent/service/register", "{\"Name\":\"s1\"}", 200);
    fx_run_for(&fx, 500);
    unsigned long long idx_before, idx_stale, idx_now;
    ck_assert_int_eq(services_in_answer(&fx, &idx_before), 1);
    fx_expect(&fx, 0, "PUT", "/v1/agent/service/register", "{\"Name\":\"s2\"}", 200);
    uint64_t written = uv_hrtime();
    fl_consul_set_stale(fx.c, 400 * MS);
    /* s2 is too recent to be seen yet */
    ck_assert_int_eq(services_in_answer(&fx, &idx_stale), 1);
    ck_assert_uint_eq(idx_stale, idx_before);
    /* a blocking query on the stale view is woken when the view catches up */
    resp_t r = {0};
    char target[128];
    snprintf(target, sizeof target, "/v1/catalog/services?index=%llu&wait=5s", idx_stale);
    fx_start(&fx, 0, "GET", target, NULL, &r);
    ck_assert(fx_wait(&fx, &r, 2000));
    long long after = (long long)((r.at - written) / MS);
    ck_assert_msg(after >= 390 && after < 900, "caught up after %lld ms", after);
    json_t *j = resp_json(&r);
    ck_assert_int_eq(json_object_size(j), 2);
    json_decref(j);
    ck_assert_int_eq(services_in_answer(&fx, &idx_now), 2);
    ck_assert_uint_gt(idx_now, idx_stale);
    /* fl_consul_view lags too */
    fx_expect(&fx, 0, "PUT", "/v1/agent/service/register",
              "{\"Name\":\"s3\",\"Check\":{\"TTL\":\"10s\",\"Status\":\"passing\"}}", 200);
    char *view = fl_consul_view(fx.c, "node-1", "s3");
    ck_assert_str_eq(view, "[]");
    free(view);
    fl_consul_set_stale(fx.c, 0);
    view = fl_consul_view(fx.c, "node-1", "s3");
    ck_assert_ptr_nonnull(strstr(view, "\"ID\":\"s3\""));
    free(view);
    resp_free(&r);
    fx_close(&fx);
}
END_TEST

typedef struct {
    int last, changes;
} watch_t;

static int flips(fx_t *fx, void *arg)
{
    watch_t *w = arg;
    long i = find_check(fx->c->live, "node-1", "service:f");
    int st = i >= 0 ? ((check_t *)fx->c->live->checks.v[i])->status : -1;
    if (st != w->last) {
        w->changes++;
        w->last = st;
    }
    return w->changes >= 4;
}

static int status_of(fx_t *fx)
{
    long i = find_check(fx->c->live, "node-1", "service:f");
    return i >= 0 ? ((check_t *)fx->c->live->checks.v[i])->status : -1;
}

START_TEST(flap_alternates_then_stops)
{
    fx_t fx;
    fx_init(&fx, 1);
    fx_expect(&fx, 0, "PUT", "/v1/agent/service/register",
              "{\"Name\":\"f\",\"Check\":{\"TTL\":\"30s\",\"Status\":\"passing\"}}", 200);
    ck_assert_int_eq(fl_consul_flap(fx.c, NULL, 1), FL_EINVAL);
    ck_assert_int_eq(fl_consul_flap(fx.c, "f", 80 * MS), 0);
    ck_assert_int_eq(status_of(&fx), ST_CRITICAL); /* at once */
    watch_t w = {ST_CRITICAL, 0};
    uint64_t start = uv_hrtime();
    ck_assert(fx_until(&fx, flips, &w, 2000));
    ck_assert_msg(ms_since(start) >= 4 * 80 - 20, "4 flips in %lld ms", ms_since(start));
    /* updates during the flap are kept, and come back when it stops */
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/warn/service:f?note=mine", NULL, 200);
    ck_assert_int_eq(fl_consul_flap(fx.c, "f", 0), 0);
    ck_assert_int_eq(status_of(&fx), ST_WARNING);
    fx_run_for(&fx, 200);
    ck_assert_int_eq(status_of(&fx), ST_WARNING);
    ck_assert_ptr_nonnull(strstr(fx.events.data, "flap f every 80ms"));
    ck_assert_ptr_nonnull(strstr(fx.events.data, "flap f stopped"));
    /* a flap can be left running: closing stops it */
    ck_assert_int_eq(fl_consul_flap(fx.c, "f", 50 * MS), 0);
    fx_close(&fx);
}
END_TEST

Suite *consul_faults_suite(void)
{
    Suite *s = suite_create("consul_faults");
    TCase *tc = tcase_create("faults");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, down_refuses_then_up_on_same_port);
    tcase_add_test(tc, latency_delays_answers);
    tcase_add_test(tc, stale_answers_lag);
    tcase_add_test(tc, flap_alternates_then_stops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(consul_faults_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
