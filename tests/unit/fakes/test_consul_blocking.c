/* Unit tests for the fake Consul's blocking queries: wake-ups right after a write, the wait
 * and its jitter, index semantics, a client leaving while blocked, the freeze fault, and
 * answers shared by waiters that ask the same thing (each must still get its own). */
#include "consulfx.h"

#include "fakes/consul/internal.h" /* to count parked queries */

static size_t waiters(fx_t *fx)
{
    size_t n = 0;
    for (req_t *r = fx->c->waiters; r; r = r->next)
        n++;
    ck_assert_uint_eq(fx->c->nwaiters, n);
    return n;
}

static unsigned long long current_index(fx_t *fx, const char *target)
{
    resp_t r = {0};
    fx_req(fx, 0, "GET", target, NULL, &r);
    ck_assert(r.status == 200 || r.status == 404);
    unsigned long long idx = resp_index(&r);
    resp_free(&r);
    return idx;
}

static void start_blocking(fx_t *fx, int agent, const char *path, unsigned long long index,
                           const char *wait, resp_t *r)
{
    char target[256];
    snprintf(target, sizeof target, "%s%sindex=%llu%s%s", path, strchr(path, '?') ? "&" : "?",
             index, wait ? "&wait=" : "", wait ? wait : "");
    fx_start(fx, agent, "GET", target, NULL, r);
}

static int has_waiters(fx_t *fx, void *n)
{
    return waiters(fx) == *(size_t *)n;
}

static long long ms_between(uint64_t a, uint64_t b)
{
    return a > b ? (long long)((a - b) / MS) : -(long long)((b - a) / MS);
}

START_TEST(wakes_on_registration)
{
    fx_t fx;
    fx_init(&fx, 2);
    unsigned long long idx = current_index(&fx, "/v1/health/service/web");
    resp_t r = {0}, reg = {0};
    start_blocking(&fx, 0, "/v1/health/service/web", idx, "10s", &r);
    size_t one = 1;
    ck_assert(fx_until(&fx, has_waiters, &one, 2000));
    fx_run_for(&fx, 50);
    ck_assert_int_eq(r.done, 0);
    fx_req(&fx, 1, "PUT", "/v1/agent/service/register", "{\"Name\":\"web\",\"Port\":1}", &reg);
    ck_assert_int_eq(reg.status, 200);
    ck_assert(fx_wait(&fx, &r, 2000));
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_gt(resp_index(&r), idx);
    /* woken in the same moment as the write, not at the end of its wait */
    long long late = ms_between(r.at, reg.at);
    ck_assert_msg(late < 100, "woken %lld ms after the registration", late);
    json_t *j = resp_json(&r);
    ck_assert_int_eq(json_array_size(j), 1);
    json_decref(j);
    resp_free(&r);
    resp_free(&reg);
    fx_close(&fx);
}
END_TEST

START_TEST(wait_expires_with_bounded_jitter)
{
    fx_t fx;
    fx_init(&fx, 1);
    unsigned long long idx = current_index(&fx, "/v1/catalog/services");
    resp_t r = {0};
    uint64_t start = uv_hrtime();
    start_blocking(&fx, 0, "/v1/catalog/services", idx, "400ms", &r);
    ck_assert(fx_wait(&fx, &r, 3000));
    long long took = ms_between(r.at, start);
    ck_assert_msg(took >= 395, "answered after %lld ms", took);
    ck_assert_msg(took <= 400 + 400 / 16 + 300, "answered after %lld ms", took);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(resp_index(&r), idx); /* nothing changed: the same index */
    /* Go durations as Go's client sends them */
    start = uv_hrtime();
    start_blocking(&fx, 0, "/v1/catalog/services", idx, "0.2s", &r);
    ck_assert(fx_wait(&fx, &r, 3000));
    ck_assert_int_ge(ms_between(r.at, start), 195);
    resp_free(&r);
    fx_close(&fx);
}
END_TEST

static void expect_status_text(fx_t *fx, const char *target, int status, const char *text)
{
    resp_t r = {0};
    fx_req(fx, 0, "GET", target, NULL, &r);
    ck_assert_int_eq(r.status, status);
    ck_assert_str_eq(r.body.data, text);
    resp_free(&r);
}

START_TEST(index_semantics)
{
    fx_t fx;
    fx_init(&fx, 1);
    fx_expect(&fx, 0, "PUT", "/v1/agent/service/register",
              "{\"Name\":\"web\",\"Check\":{\"TTL\":\"30s\"}}", 200);
    unsigned long long idx = current_index(&fx, "/v1/health/service/web");
    /* index=0 and an older index answer at once */
    fx_expect(&fx, 0, "GET", "/v1/health/service/web?index=0&wait=10s", NULL, 200);
    resp_t r = {0};
    fx_req(&fx, 0, "GET", "/v1/health/service/web?index=1&wait=10s", NULL, &r);
    ck_assert_uint_eq(resp_index(&r), idx);
    /* bad parameters */
    expect_status_text(&fx, "/v1/health/service/web?index=1&wait=10", 400, "Invalid wait time");
    expect_status_text(&fx, "/v1/health/service/web?index=1&wait=abc", 400, "Invalid wait time");
    expect_status_text(&fx, "/v1/health/service/web?index=x", 400, "Invalid index");
    expect_status_text(&fx, "/v1/health/service/web?index=-1", 400, "Invalid index");
    /* another service changing does not wake a query about web */
    start_blocking(&fx, 0, "/v1/health/service/web", idx, "5s", &r);
    size_t one = 1;
    ck_assert(fx_until(&fx, has_waiters, &one, 2000));
    fx_expect(&fx, 0, "PUT", "/v1/agent/service/register", "{\"Name\":\"other\"}", 200);
    fx_run_for(&fx, 100);
    ck_assert_int_eq(r.done, 0);
    /* web's check changing does */
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/pass/service:web", NULL, 200);
    ck_assert(fx_wait(&fx, &r, 1000));
    ck_assert_uint_gt(resp_index(&r), idx);
    /* an index from the future waits for its wait */
    unsigned long long now = current_index(&fx, "/v1/health/service/web");
    uint64_t start = uv_hrtime();
    start_blocking(&fx, 0, "/v1/health/service/web", now + 100, "300ms", &r);
    ck_assert(fx_wait(&fx, &r, 3000));
    ck_assert_int_ge(ms_between(r.at, start), 295);
    /* KV: a key's query wakes when the key is written */
    fx_expect(&fx, 0, "PUT", "/v1/kv/k", "1", 200);
    unsigned long long kidx = current_index(&fx, "/v1/kv/k");
    start_blocking(&fx, 0, "/v1/kv/k", kidx, "5s", &r);
    ck_assert(fx_until(&fx, has_waiters, &one, 2000));
    fx_expect(&fx, 0, "PUT", "/v1/kv/k", "2", 200);
    ck_assert(fx_wait(&fx, &r, 1000));
    ck_assert_uint_gt(resp_index(&r), kidx);
    ck_assert_ptr_nonnull(strstr(r.body.data, "\"Value\":\"Mg==\""));
    resp_free(&r);
    fx_close(&fx);
}
END_TEST

/* A query about something that does not exist waits for that thing, not for other writes
 * (its answered index moves with them, its watch does not), as in Consul. */
START_TEST(missing_things_wait_for_themselves)
{
    fx_t fx;
    fx_init(&fx, 1);
    size_t one = 1;
    resp_t r = {0};
    const char *paths[] = {"/v1/health/service/ghost", "/v1/kv/ghost", "/v1/kv/zz?recurse"};
    const char *unrelated[] = {"/v1/agent/service/register", "/v1/kv/other", "/v1/kv/other"};
    const char *bodies[] = {"{\"Name\":\"other\"}", "1", "1"};
    const char *creates[] = {"/v1/agent/service/register", "/v1/kv/ghost", "/v1/kv/zz/1"};
    const char *cbodies[] = {"{\"Name\":\"ghost\"}", "1", "1"};
    for (int i = 0; i < 3; i++) {
        unsigned long long idx = current_index(&fx, paths[i]);
        start_blocking(&fx, 0, paths[i], idx, "5s", &r);
        ck_assert(fx_until(&fx, has_waiters, &one, 2000));
        fx_expect(&fx, 0, "PUT", unrelated[i], bodies[i], 200);
        ck_assert_msg(current_index(&fx, paths[i]) > idx, "%s: index did not move", paths[i]);
        fx_run_for(&fx, 100);
        ck_assert_msg(!r.done, "%s woke for an unrelated write", paths[i]);
        fx_expect(&fx, 0, "PUT", creates[i], cbodies[i], 200);
        ck_assert(fx_wait(&fx, &r, 1000));
        ck_assert_int_eq(r.status, 200);
        ck_assert_uint_gt(resp_index(&r), idx);
    }
    resp_free(&r);
    fx_close(&fx);
}
END_TEST

START_TEST(client_leaves_while_blocked)
{
    fx_t fx;
    fx_init(&fx, 1);
    unsigned long long idx = current_index(&fx, "/v1/catalog/nodes");
    resp_t r = {0};
    start_blocking(&fx, 0, "/v1/catalog/nodes", idx, "5m", &r);
    size_t one = 1, none = 0;
    ck_assert(fx_until(&fx, has_waiters, &one, 2000));
    fl_httpc_cancel(r.req);
    ck_assert(fx_until(&fx, has_waiters, &none, 2000));
    /* a write afterwards finds nobody to wake, and nothing breaks */
    fx_expect(&fx, 0, "PUT", "/v1/catalog/register", "{\"Node\":\"n2\",\"Address\":\"10.0.0.2\"}",
              200);
    fx_run_for(&fx, 20);
    resp_free(&r);
    fx_close(&fx);
}
END_TEST

START_TEST(frozen_never_returns_until_thawed)
{
    fx_t fx;
    fx_init(&fx, 1);
    unsigned long long idx = current_index(&fx, "/v1/kv/a?recurse");
    resp_t r = {0}, w = {0};
    fl_consul_set_frozen(fx.c, 1);
    start_blocking(&fx, 0, "/v1/kv/a?recurse", idx, "100ms", &r);
    /* reads that need not wait still answer */
    fx_expect(&fx, 0, "GET", "/v1/agent/self", NULL, 200);
    fx_run_for(&fx, 400);
    ck_assert_int_eq(r.done, 0); /* its wait is long over */
    /* writes hang */
    fx_start(&fx, 0, "PUT", "/v1/kv/a/x", "v", &w);
    fx_run_for(&fx, 100);
    ck_assert_int_eq(w.done, 0);
    fl_consul_set_frozen(fx.c, 0);
    ck_assert(fx_wait(&fx, &w, 1000));
    ck_assert_int_eq(w.status, 200);
    ck_assert_str_eq(w.body.data, "true");
    ck_assert(fx_wait(&fx, &r, 1000));
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(fx.events.data, "frozen"));
    resp_free(&r);
    resp_free(&w);
    fx_close(&fx);
}
END_TEST

#define WATCHERS 200

START_TEST(many_watchers_woken_together)
{
    fx_t fx;
    fx_init(&fx, 1);
    unsigned long long idx = current_index(&fx, "/v1/health/service/svc");
    resp_t *r = calloc(WATCHERS, sizeof *r), reg = {0};
    for (int i = 0; i < WATCHERS; i++)
        start_blocking(&fx, 0, "/v1/health/service/svc?passing", idx, "30s", &r[i]);
    size_t n = WATCHERS;
    ck_assert(fx_until(&fx, has_waiters, &n, 5000));
    fx_req(&fx, 0, "PUT", "/v1/agent/service/register", "{\"Name\":\"svc\"}", &reg);
    long long worst = 0;
    for (int i = 0; i < WATCHERS; i++) {
        ck_assert(fx_wait(&fx, &r[i], 2000));
        ck_assert_int_eq(r[i].status, 200);
        long long late = ms_between(r[i].at, reg.at);
        worst = late > worst ? late : worst;
        resp_free(&r[i]);
    }
    ck_assert_msg(worst < 250, "the last watcher woke %lld ms after the write", worst);
    free(r);
    resp_free(&reg);
    fx_close(&fx);
}
END_TEST

/* What node's agent answers to target now, without blocking and without sharing. */
static void reference(fx_t *fx, int agent, const char *target, fl_consul_answer_t *ans)
{
    ck_assert_int_eq(
        fl_consul_serve(fx->c, fl_consul_agent_node(fx->a[agent]), "GET", target, NULL, 0, ans), 0);
}

/* r's answer is exactly what agent would answer to target now: status, index, body. */
static void expect_as_reference(fx_t *fx, int agent, const char *target, const resp_t *r)
{
    fl_consul_answer_t ref;
    reference(fx, agent, target, &ref);
    const char *idx = strstr(ref.headers, "X-Consul-Index: ");
    ck_assert_ptr_nonnull(idx);
    unsigned long long want = strtoull(idx + 16, NULL, 10);
    ck_assert_msg(r->status == ref.status, "%s on agent %d: %d, wanted %d", target, agent,
                  r->status, ref.status);
    ck_assert_msg(resp_index(r) == want, "%s on agent %d: index %llu, not %llu", target, agent,
                  resp_index(r), want);
    /* (bodies cut short: Check's messages are bounded) */
    ck_assert_msg(r->body.len == ref.body_len && memcmp(r->body.data, ref.body, ref.body_len) == 0,
                  "%s on agent %d answered\n%.400s\ninstead of\n%.400s", target, agent,
                  r->body.data, ref.body);
    fl_consul_answer_free(&ref);
}

static size_t entries(const resp_t *r)
{
    json_t *j = resp_json(r);
    size_t n = json_array_size(j);
    json_decref(j);
    return n;
}

typedef struct {
    int agent;
    const char *target;
} question_t;

/* Many waiters woken by one write: those asking the same thing share an answer, and every
 * one still gets exactly what its own question, through its own agent, gets answered. */
START_TEST(shared_answers_fit_each_watcher)
{
    static const question_t qs[] = {
        {0, "/v1/health/service/web"},
        {0, "/v1/health/service/web"},
        {1, "/v1/health/service/web"},
        {1, "/v1/health/service/web"},
        {2, "/v1/health/service/web"},
        {0, "/v1/health/service/web?passing"},
        {1, "/v1/health/service/web?passing"},
        {0, "/v1/health/service/web?tag=blue"},
        {0, "/v1/health/service/web?tag=blue&passing"},
        {0, "/v1/health/service/web?passing=false"},
        {0, "/v1/health/service/web?pretty"},
        {0, "/v1/health/service/web?tag=blue"},
        {0, "/v1/catalog/service/web"},
        {2, "/v1/catalog/service/web"},
        {0, "/v1/health/checks/web"},
    };
    enum { N = sizeof qs / sizeof qs[0] };
    fx_t fx;
    fx_init(&fx, 3);
    fx.rw_by_node = 1;
    /* web-a (blue) is critical, web-b passing */
    fx_expect(&fx, 1, "PUT", "/v1/agent/service/register",
              "{\"Name\":\"web\",\"ID\":\"web-a\",\"Address\":\"10.0.0.1\",\"Port\":80,"
              "\"Tags\":[\"blue\"],\"Check\":{\"TTL\":\"10m\"}}",
              200);
    fx_expect(&fx, 2, "PUT", "/v1/agent/service/register",
              "{\"Name\":\"web\",\"ID\":\"web-b\",\"Address\":\"10.0.0.2\",\"Port\":81}", 200);
    unsigned long long idx = current_index(&fx, "/v1/health/service/web");
    resp_t r[N + 1], reg = {0};
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++)
        start_blocking(&fx, qs[i].agent, qs[i].target, idx, "30s", &r[i]);
    /* one asks the same as others but is ahead: it must stay parked, until its wait ends */
    start_blocking(&fx, 0, "/v1/health/service/web", idx + 1000, "1s", &r[N]);
    size_t n = N + 1;
    ck_assert(fx_until(&fx, has_waiters, &n, 5000));
    fx_run_for(&fx, 20);
    fx_req(&fx, 0, "PUT", "/v1/agent/service/register",
           "{\"Name\":\"web\",\"ID\":\"web-c\",\"Address\":\"10.0.0.3\",\"Port\":82,"
           "\"Tags\":[\"BLUE\"]}",
           &reg);
    ck_assert_int_eq(reg.status, 200);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(fx_wait(&fx, &r[i], 2000), "%s on agent %d: not woken", qs[i].target,
                      qs[i].agent);
        ck_assert_uint_gt(resp_index(&r[i]), idx);
        expect_as_reference(&fx, qs[i].agent, qs[i].target, &r[i]);
    }
    ck_assert_int_eq(r[N].done, 0);
    /* the answers do differ, so the comparisons above mean something */
    ck_assert_uint_eq(entries(&r[0]), 3);
    ck_assert_ptr_nonnull(strstr(r[0].body.data, "\"node-1.link\""));
    ck_assert_ptr_null(strstr(r[0].body.data, "\"node-2.link\""));
    ck_assert_ptr_nonnull(strstr(r[2].body.data, "\"node-2.link\""));
    ck_assert_ptr_null(strstr(r[2].body.data, "\"node-1.link\""));
    ck_assert_uint_eq(entries(&r[5]), 2);
    ck_assert_uint_eq(entries(&r[7]), 2);
    ck_assert_uint_eq(entries(&r[8]), 1);
    ck_assert_uint_eq(entries(&r[9]), 3);
    ck_assert_ptr_nonnull(strstr(r[10].body.data, "\n    "));
    ck_assert_ptr_nonnull(strstr(r[12].body.data, "\"ServiceAddress\""));
    ck_assert_ptr_nonnull(strstr(r[14].body.data, "\"CheckID\""));
    /* the one ahead is answered at its deadline, with what is there then */
    ck_assert(fx_wait(&fx, &r[N], 3000));
    expect_as_reference(&fx, 0, "/v1/health/service/web", &r[N]);
    for (int i = 0; i <= N; i++)
        resp_free(&r[i]);
    resp_free(&reg);
    fx_close(&fx);
}
END_TEST

/* Under the latency fault, woken waiters are held back like every other answer. */
START_TEST(latency_holds_woken_watchers)
{
    enum { N = 4 };
    fx_t fx;
    fx_init(&fx, 1);
    unsigned long long idx = current_index(&fx, "/v1/health/service/web");
    resp_t r[N], reg = {0};
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++)
        start_blocking(&fx, 0, "/v1/health/service/web", idx, "30s", &r[i]);
    size_t n = N;
    ck_assert(fx_until(&fx, has_waiters, &n, 5000));
    fl_consul_set_latency(fx.c, 200 * MS);
    uint64_t put = uv_hrtime(); /* the write happens at once, its own answer is held too */
    fx_req(&fx, 0, "PUT", "/v1/agent/service/register", "{\"Name\":\"web\",\"Port\":1}", &reg);
    for (int i = 0; i < N; i++) {
        ck_assert(fx_wait(&fx, &r[i], 2000));
        ck_assert_int_eq(r[i].status, 200);
        long long late = ms_between(r[i].at, put);
        ck_assert_msg(late >= 190, "answered %lld ms after the registration was sent", late);
        ck_assert_uint_eq(entries(&r[i]), 1);
        resp_free(&r[i]);
    }
    resp_free(&reg);
    fx_close(&fx);
}
END_TEST

/* fl_consul_last_served: per agent and service, the last health answer served over HTTP. */
START_TEST(last_served_answer_per_agent)
{
    fx_t fx;
    fx_init(&fx, 3);
    fl_consul_served_t seen;
    ck_assert_int_eq(fl_consul_last_served(fx.c, "node-1", "web", &seen), 0);
    fx_expect(&fx, 1, "PUT", "/v1/agent/service/register", "{\"Name\":\"web\",\"ID\":\"web-1\"}",
              200);
    fx_expect(&fx, 2, "PUT", "/v1/agent/service/register", "{\"Name\":\"web\",\"ID\":\"web-2\"}",
              200);
    resp_t r = {0};
    fx_req(&fx, 0, "GET", "/v1/health/service/web?passing", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(fl_consul_last_served(fx.c, "node-1", "web", &seen), 1);
    ck_assert_uint_eq(seen.nids, 2);
    ck_assert_str_eq(seen.ids[0], "web-1");
    ck_assert_str_eq(seen.ids[1], "web-2");
    ck_assert_str_eq(seen.nodes[0], "node-2");
    ck_assert_str_eq(seen.nodes[1], "node-3");
    ck_assert_uint_eq(seen.index, resp_index(&r));
    ck_assert_uint_eq(seen.answers, 1);
    ck_assert_int_eq(seen.passing, 1);
    ck_assert_int_eq(fl_consul_last_served(fx.c, "node-2", "web", &seen), 0);
    ck_assert_int_eq(fl_consul_last_served(fx.c, "node-1", "db", &seen), 0);
    unsigned long long idx = resp_index(&r);
    resp_free(&r);
    /* answered without a socket: not served to anyone */
    fl_consul_answer_t ans;
    ck_assert_int_eq(
        fl_consul_serve(fx.c, "node-2", "GET", "/v1/health/service/web", NULL, 0, &ans), 0);
    fl_consul_answer_free(&ans);
    ck_assert_int_eq(fl_consul_last_served(fx.c, "node-2", "web", &seen), 0);
    /* blocked watchers of two nodes, woken by a deregistration: each node's last answer */
    resp_t w1 = {0}, w2 = {0}, w3 = {0};
    start_blocking(&fx, 0, "/v1/health/service/web?passing", idx, "10s", &w1);
    start_blocking(&fx, 0, "/v1/health/service/web?passing", idx, "10s", &w2);
    start_blocking(&fx, 1, "/v1/health/service/web", idx, "10s", &w3);
    size_t three = 3;
    ck_assert(fx_until(&fx, has_waiters, &three, 2000));
    fx_expect(&fx, 2, "PUT", "/v1/agent/service/deregister/web-2", NULL, 200);
    ck_assert(fx_wait(&fx, &w1, 2000) && fx_wait(&fx, &w2, 2000) && fx_wait(&fx, &w3, 2000));
    ck_assert_int_eq(fl_consul_last_served(fx.c, "node-1", "web", &seen), 1);
    ck_assert_uint_eq(seen.nids, 1);
    ck_assert_str_eq(seen.ids[0], "web-1");
    ck_assert_uint_eq(seen.index, resp_index(&w1));
    ck_assert_uint_gt(seen.index, idx);
    ck_assert_uint_ge(seen.answers, 2); /* waiters sharing one answer may count once */
    ck_assert_int_eq(fl_consul_last_served(fx.c, "node-2", "web", &seen), 1);
    ck_assert_uint_eq(seen.nids, 1);
    ck_assert_int_eq(seen.passing, 0);
    ck_assert_uint_eq(seen.answers, 1);
    resp_free(&w1);
    resp_free(&w2);
    resp_free(&w3);
    fx_close(&fx);
}
END_TEST

Suite *consul_blocking_suite(void)
{
    Suite *s = suite_create("consul_blocking");
    TCase *tc = tcase_create("blocking");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, wakes_on_registration);
    tcase_add_test(tc, wait_expires_with_bounded_jitter);
    tcase_add_test(tc, index_semantics);
    tcase_add_test(tc, missing_things_wait_for_themselves);
    tcase_add_test(tc, client_leaves_while_blocked);
    tcase_add_test(tc, frozen_never_returns_until_thawed);
    tcase_add_test(tc, many_watchers_woken_together);
    tcase_add_test(tc, shared_answers_fit_each_watcher);
    tcase_add_test(tc, latency_holds_woken_watchers);
    tcase_add_test(tc, last_served_answer_per_agent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(consul_blocking_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
