/* Unit tests for services/runtime/trace: configuration from the OTEL_* environment,
 * sampling, span ids and parentage, and the batching exporter against a collector made
 * with lib/httpd on the same loop (batches, schedule, retries and Retry-After, queue limit,
 * shutdown, the endpoint URL forms). */
#include <arpa/inet.h>
#include <check.h>
#include <netdb.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/httpd.h"
#include "services/runtime/trace.h"

/* ---- environment from a table ---- */

static const char *table_get(const char *name, void *arg)
{
    for (const char *const *kv = arg; kv[0]; kv += 2)
        if (strcmp(kv[0], name) == 0)
            return kv[1];
    return NULL;
}

static const char *res_attr(const fl_trace_config_t *c, const char *key)
{
    for (size_t i = 0; i < c->nresource; i++)
        if (strcmp(c->resource[i].key, key) == 0)
            return c->resource[i].v.s;
    return NULL;
}

START_TEST(config_defaults)
{
    const char *env[] = {NULL};
    fl_trace_config_t c;
    ck_assert_int_eq(fl_trace_config_from_env(&c, table_get, env), 0);
    ck_assert(!c.disabled);
    ck_assert_str_eq(c.endpoint, "http://localhost:4318/v1/traces");
    ck_assert_str_eq(c.resource[0].key, "service.name");
    ck_assert_str_eq(c.resource[0].v.s, "unknown_service");
    ck_assert_int_eq(c.sampler, FL_SAMPLER_PARENT_ALWAYS_ON);
    ck_assert_uint_eq(c.schedule_delay_ms, 5000);
    ck_assert_uint_eq(c.export_timeout_ms, 30000);
    ck_assert_uint_eq(c.request_timeout_ms, 10000);
    ck_assert_uint_eq(c.max_queue, 2048);
    ck_assert_uint_eq(c.max_batch, 512);
    fl_trace_config_free(&c);
}
END_TEST

START_TEST(config_from_env)
{
    const char *env[] = {"OTEL_EXPORTER_OTLP_ENDPOINT",
                         "http://127.0.0.1:4318",
                         "OTEL_SERVICE_NAME",
                         "users",
                         "OTEL_RESOURCE_ATTRIBUTES",
                         "service.instance.id=users-2, service.name=ignored,"
                         "deployment.environment=a%2Cb%3Dc ",
                         "OTEL_TRACES_SAMPLER",
                         "parentbased_traceidratio",
                         "OTEL_TRACES_SAMPLER_ARG",
                         "0.25",
                         "OTEL_BSP_SCHEDULE_DELAY",
                         "100",
                         "OTEL_BSP_MAX_QUEUE_SIZE",
                         "10",
                         "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                         "50",
                         "OTEL_EXPORTER_OTLP_TIMEOUT",
                         "700",
                         "OTEL_SDK_DISABLED",
                         "TRUE",
                         NULL};
    fl_trace_config_t c;
    ck_assert_int_eq(fl_trace_config_from_env(&c, table_get, env), 0);
    ck_assert_str_eq(c.endpoint, "http://127.0.0.1:4318/v1/traces");
    ck_assert_str_eq(res_attr(&c, "service.name"), "users"); /* OTEL_SERVICE_NAME wins */
    ck_assert_str_eq(res_attr(&c, "service.instance.id"), "users-2");
    ck_assert_str_eq(res_attr(&c, "deployment.environment"), "a,b=c");
    ck_assert_int_eq(c.sampler, FL_SAMPLER_PARENT_TRACEIDRATIO);
    ck_assert(c.ratio == 0.25);
    ck_assert_uint_eq(c.schedule_delay_ms, 100);
    ck_assert_uint_eq(c.max_queue, 10);
    ck_assert_uint_eq(c.max_batch, 10); /* never above the queue size */
    ck_assert_uint_eq(c.request_timeout_ms, 700);
    ck_assert(c.disabled);
    fl_trace_config_free(&c);

    const char *env2[] = {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1/base/",
                          "OTEL_RESOURCE_ATTRIBUTES", "service.name=orders", NULL};
    ck_assert_int_eq(fl_trace_config_from_env(&c, table_get, env2), 0);
    ck_assert_str_eq(c.endpoint, "http://h:1/base/v1/traces");
    ck_assert_str_eq(res_attr(&c, "service.name"), "orders");
    fl_trace_config_free(&c);

    const char *env3[] = {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1",
                          "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:2/custom", NULL};
    ck_assert_int_eq(fl_trace_config_from_env(&c, table_get, env3), 0);
    ck_assert_str_eq(c.endpoint, "http://t:2/custom"); /* used as is */
    fl_trace_config_free(&c);
}
END_TEST

START_TEST(config_bad_values_fall_back)
{
    const char *env[] = {"OTEL_RESOURCE_ATTRIBUTES",
                         "a=1,broken,b=2",
                         "OTEL_TRACES_SAMPLER",
                         "jaeger_remote",
                         "OTEL_BSP_SCHEDULE_DELAY",
                         "-5",
                         "OTEL_BSP_MAX_QUEUE_SIZE",
                         "12x",
                         "OTEL_SDK_DISABLED",
                         "yes",
                         NULL};
    fl_trace_config_t c;
    ck_assert_int_eq(fl_trace_config_from_env(&c, table_get, env), 0);
    ck_assert_ptr_null(res_attr(&c, "a")); /* one bad entry: the whole variable goes */
    ck_assert_int_eq(c.sampler, FL_SAMPLER_PARENT_ALWAYS_ON);
    ck_assert_uint_eq(c.schedule_delay_ms, 5000);
    ck_assert_uint_eq(c.max_queue, 2048);
    ck_assert(!c.disabled); /* only "true" disables */
    fl_trace_config_free(&c);
    const char *env2[] = {"OTEL_RESOURCE_ATTRIBUTES",
                          "a=%zz",
                          "OTEL_TRACES_SAMPLER",
                          "traceidratio",
                          "OTEL_TRACES_SAMPLER_ARG",
                          "1.5",
                          NULL};
    ck_assert_int_eq(fl_trace_config_from_env(&c, table_get, env2), 0);
    ck_assert_ptr_null(res_attr(&c, "a"));
    ck_assert(c.ratio == 1.0);
    fl_trace_config_free(&c);
}
END_TEST

/* ---- spans and sampling ---- */

static fl_trace_config_t test_config(const char *endpoint)
{
    const char *env[] = {"OTEL_SERVICE_NAME", "unit", NULL};
    fl_trace_config_t c;
    ck_assert_int_eq(fl_trace_config_from_env(&c, table_get, env), 0);
    free(c.endpoint);
    c.endpoint = strdup(endpoint ? endpoint : "http://127.0.0.1:9/v1/traces");
    c.export_timeout_ms = 50; /* nothing listens on port 9: give up soon */
    return c;
}

static void set_flag(void *arg)
{
    *(int *)arg = 1;
}

static void shutdown_and_close(uv_loop_t *loop, fl_tracer_t *t)
{
    int done = 0;
    fl_tracer_shutdown(t, 1000, set_flag, &done);
    for (int i = 0; i < 100000 && !done; i++)
        uv_run(loop, UV_RUN_ONCE);
    ck_assert(done);
    uv_run(loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(loop), 0);
}

START_TEST(ids_and_parentage)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fl_trace_config_t c = test_config(NULL);
    c.sampler = FL_SAMPLER_ALWAYS_ON;
    fl_tracer_t *t;
    ck_assert_int_eq(fl_tracer_new(&loop, &c, &t), 0);
    fl_trace_config_free(&c);

    fl_span_t *root = fl_span_start(t, "root", FL_SPAN_SERVER, NULL);
    const fl_tracectx_t *rc = fl_span_context(root);
    ck_assert(!fl_trace_id_is_zero(rc->trace_id, 16));
    ck_assert(!fl_trace_id_is_zero(rc->span_id, 8));
    ck_assert_uint_eq(rc->flags, FL_TRACE_FLAG_SAMPLED);
    ck_assert(fl_span_is_recording(root));
    fl_span_t *child = fl_span_start(t, "child", FL_SPAN_CLIENT, rc);
    const fl_tracectx_t *cc = fl_span_context(child);
    ck_assert_mem_eq(cc->trace_id, rc->trace_id, 16);
    ck_assert(memcmp(cc->span_id, rc->span_id, 8) != 0);
    fl_span_end(child);
    fl_span_end(root);

    /* 2000 ids: none zero, none repeated */
    enum { N = 2000 };
    static uint8_t ids[N][8];
    for (int i = 0; i < N; i++) {
        fl_span_t *s = fl_span_start(t, "x", FL_SPAN_INTERNAL, NULL);
        memcpy(ids[i], fl_span_context(s)->span_id, 8);
        ck_assert(!fl_trace_id_is_zero(ids[i], 8));
        for (int j = 0; j < i; j++)
            ck_assert(memcmp(ids[i], ids[j], 8) != 0);
        fl_span_end(s);
    }
    fl_tracer_stats_t st;
    fl_tracer_stats(t, &st);
    ck_assert_uint_eq(st.started, N + 2);
    ck_assert_uint_eq(st.queued, N + 2); /* the loop has not run: all wait */
    ck_assert_uint_eq(st.queue_full, 0);
    shutdown_and_close(&loop, t);
}
END_TEST

static bool sampled_with(fl_sampler_t sampler, double ratio, const fl_tracectx_t *parent)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fl_trace_config_t c = test_config(NULL);
    c.sampler = sampler;
    c.ratio = ratio;
    fl_tracer_t *t;
    ck_assert_int_eq(fl_tracer_new(&loop, &c, &t), 0);
    fl_trace_config_free(&c);
    fl_span_t *s = fl_span_start(t, "s", FL_SPAN_SERVER, parent);
    bool rec = fl_span_is_recording(s);
    ck_assert_uint_eq(fl_span_context(s)->flags, rec ? FL_TRACE_FLAG_SAMPLED : 0);
    fl_span_end(s);
    shutdown_and_close(&loop, t);
    return rec;
}

START_TEST(samplers)
{
    fl_tracectx_t on = {.trace_id = {1}, .span_id = {1}, .flags = 1, .remote = true};
    fl_tracectx_t off = on;
    off.flags = 0;
    ck_assert(sampled_with(FL_SAMPLER_ALWAYS_ON, 1, &off));
    ck_assert(!sampled_with(FL_SAMPLER_ALWAYS_OFF, 1, &on));
    ck_assert(sampled_with(FL_SAMPLER_PARENT_ALWAYS_ON, 1, NULL));
    ck_assert(!sampled_with(FL_SAMPLER_PARENT_ALWAYS_ON, 1, &off));
    ck_assert(sampled_with(FL_SAMPLER_PARENT_ALWAYS_OFF, 1, &on));
    ck_assert(!sampled_with(FL_SAMPLER_PARENT_ALWAYS_OFF, 1, NULL));
    ck_assert(!sampled_with(FL_SAMPLER_TRACEIDRATIO, 0, NULL));
    ck_assert(sampled_with(FL_SAMPLER_PARENT_TRACEIDRATIO, 0, &on));
    /* the ratio decides on the trace id: the same trace, the same answer everywhere */
    fl_tracectx_t low = on, high = on;
    memset(low.trace_id + 8, 0x00, 8);
    low.trace_id[15] = 1;
    memset(high.trace_id + 8, 0xff, 8);
    ck_assert(sampled_with(FL_SAMPLER_TRACEIDRATIO, 0.5, &low));
    ck_assert(!sampled_with(FL_SAMPLER_TRACEIDRATIO, 0.5, &high));
    /* about half of new traces at 0.5 */
    uv_loop_t loop;
    uv_loop_init(&loop);
    fl_trace_config_t c = test_config(NULL);
    c.sampler = FL_SAMPLER_TRACEIDRATIO;
    c.ratio = 0.5;
    fl_tracer_t *t;
    ck_assert_int_eq(fl_tracer_new(&loop, &c, &t), 0);
    fl_trace_config_free(&c);
    int yes = 0;
    for (int i = 0; i < 1000; i++) {
        fl_span_t *s = fl_span_start(t, "s", FL_SPAN_SERVER, NULL);
        yes += fl_span_is_recording(s);
        fl_span_end(s);
    }
    ck_assert_int_gt(yes, 400);
    ck_assert_int_lt(yes, 600);
    shutdown_and_close(&loop, t);
}
END_TEST

START_TEST(disabled_records_nothing_but_propagates)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fl_trace_config_t c = test_config(NULL);
    c.disabled = true;
    fl_tracer_t *t;
    ck_assert_int_eq(fl_tracer_new(&loop, &c, &t), 0);
    fl_trace_config_free(&c);
    fl_tracectx_t parent = {.trace_id = {7}, .span_id = {7}, .flags = 1, .remote = true};
    fl_span_t *s = fl_span_start(t, "s", FL_SPAN_SERVER, &parent);
    ck_assert(!fl_span_is_recording(s));
    ck_assert_mem_eq(fl_span_context(s)->trace_id, parent.trace_id, 16);
    ck_assert_uint_eq(fl_span_context(s)->flags, 1);
    fl_span_set_str(s, "k", "v"); /* no-ops */
    fl_span_set_status(s, FL_STATUS_ERROR, "x");
    fl_span_end(s);
    fl_tracer_stats_t st;
    fl_tracer_stats(t, &st);
    ck_assert_uint_eq(st.recorded, 0);
    ck_assert_uint_eq(st.queued, 0);
    shutdown_and_close(&loop, t);
}
END_TEST

/* ---- the exporter against a collector on the loop ---- */

typedef struct {
    uv_loop_t loop;
    fl_httpd_t *httpd;
    int requests;
    int statuses[8]; /* answers in order; 0 = 200 */
    const char *extra;
    bool hold; /* never answer */
    bool bad_request;
    char url[128];
    size_t body_len[16];
    uv_timer_t tick;
} collector_t;

static void collect(fl_httpd_exchange_t *ex, void *arg)
{
    collector_t *c = arg;
    size_t len;
    fl_httpd_body(ex, &len);
    if (c->requests < 16)
        c->body_len[c->requests] = len;
    const char *ct = fl_httpd_header(ex, "Content-Type");
    if (strcmp(fl_httpd_method(ex), "POST") != 0 || strcmp(fl_httpd_path(ex), "/v1/traces") ||
        !ct || strcmp(ct, "application/x-protobuf") != 0 || len == 0)
        c->bad_request = true;
    int status = c->requests < 8 && c->statuses[c->requests] ? c->statuses[c->requests] : 200;
    c->requests++;
    if (c->hold)
        return;
    fl_httpd_respond(ex, status, status == 200 ? NULL : c->extra, "application/x-protobuf", "", 0);
}

static void aborted(fl_httpd_exchange_t *ex, void *arg)
{
}

static void collector_start(collector_t *c)
{
    memset(c, 0, sizeof *c);
    uv_loop_init(&c->loop);
    fl_httpd_config_t hc = {.handler = collect, .on_abort = aborted, .arg = c};
    ck_assert_int_eq(fl_httpd_start(&c->loop, "127.0.0.1", 0, &hc, &c->httpd), 0);
    snprintf(c->url, sizeof c->url, "http://127.0.0.1:%d/v1/traces", fl_httpd_port(c->httpd));
}

static fl_tracer_t *tracer_for(collector_t *col, size_t batch, size_t queue, uint64_t delay)
{
    fl_trace_config_t c = test_config(col->url);
    c.sampler = FL_SAMPLER_ALWAYS_ON;
    c.max_batch = batch;
    c.max_queue = queue;
    c.schedule_delay_ms = delay;
    c.export_timeout_ms = 3000;
    c.retry_min_ms = 10;
    fl_tracer_t *t;
    ck_assert_int_eq(fl_tracer_new(&col->loop, &c, &t), 0);
    fl_trace_config_free(&c);
    return t;
}

static void end_spans(fl_tracer_t *t, int n)
{
    for (int i = 0; i < n; i++) {
        fl_span_t *s = fl_span_start(t, "op", FL_SPAN_SERVER, NULL);
        fl_span_set_str(s, "k", "v");
        fl_span_end(s);
    }
}

static void no_op(uv_timer_t *h)
{
}

/* Runs the loop until stats say `exported + failed == want` or ms pass. */
static void run_until_settled(collector_t *c, fl_tracer_t *t, uint64_t want, uint64_t ms)
{
    uv_update_time(&c->loop);
    uint64_t end = uv_now(&c->loop) + ms;
    fl_tracer_stats_t st;
    uv_timer_t *tick = &c->tick;
    uv_timer_init(&c->loop, tick);
    uv_timer_start(tick, no_op, 5, 5); /* keeps the loop turning */
    for (;;) {
        fl_tracer_stats(t, &st);
        uv_update_time(&c->loop);
        if (st.exported + st.failed >= want || uv_now(&c->loop) >= end)
            break;
        uv_run(&c->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)tick, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT); /* its close callback, before the next init */
}

static void finish(collector_t *c, fl_tracer_t *t)
{
    int done = 0;
    fl_tracer_shutdown(t, 2000, set_flag, &done);
    for (int i = 0; i < 100000 && !done; i++)
        uv_run(&c->loop, UV_RUN_ONCE);
    ck_assert(done);
    fl_httpd_close(c->httpd, NULL, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&c->loop), 0);
}

START_TEST(full_batches_leave_at_once_the_rest_on_schedule)
{
    collector_t c;
    collector_start(&c);
    fl_tracer_t *t = tracer_for(&c, 2, 100, 300);
    end_spans(t, 5);
    uv_update_time(&c.loop);
    uint64_t t0 = uv_now(&c.loop);
    run_until_settled(&c, t, 4, 2000); /* two full batches, well before the 300 ms */
    ck_assert_uint_lt(uv_now(&c.loop) - t0, 200);
    fl_tracer_stats_t st;
    fl_tracer_stats(t, &st);
    ck_assert_uint_eq(st.exported, 4);
    ck_assert_uint_eq(st.queued, 1);
    ck_assert_int_eq(c.requests, 2);
    uv_update_time(&c.loop);
    t0 = uv_now(&c.loop);
    run_until_settled(&c, t, 5, 2000); /* the last one when the schedule says */
    fl_tracer_stats(t, &st);
    ck_assert_uint_eq(st.exported, 5);
    ck_assert_int_eq(c.requests, 3);
    ck_assert_uint_ge(uv_now(&c.loop) - t0, 200);
    ck_assert(!c.bad_request);
    ck_assert_uint_gt(c.body_len[0], c.body_len[2]); /* 2 spans weigh more than 1 */
    finish(&c, t);
}
END_TEST

START_TEST(retries_503_and_429_then_succeeds)
{
    collector_t c;
    collector_start(&c);
    c.statuses[0] = 503;
    c.statuses[1] = 429;
    c.extra = "Retry-After: 0\r\n";
    fl_tracer_t *t = tracer_for(&c, 3, 100, 10);
    end_spans(t, 3);
    run_until_settled(&c, t, 3, 3000);
    fl_tracer_stats_t st;
    fl_tracer_stats(t, &st);
    ck_assert_uint_eq(st.exported, 3);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.retries, 2);
    ck_assert_uint_eq(st.requests, 3);
    ck_assert_int_eq(c.requests, 3);
    finish(&c, t);
}
END_TEST

START_TEST(a_400_is_not_retried)
{
    collector_t c;
    collector_start(&c);
    c.statuses[0] = 400;
    fl_tracer_t *t = tracer_for(&c, 2, 100, 10);
    end_spans(t, 2);
    run_until_settled(&c, t, 2, 3000);
    fl_tracer_stats_t st;
    fl_tracer_stats(t, &st);
    ck_assert_uint_eq(st.failed, 2);
    ck_assert_uint_eq(st.retries, 0);
    ck_assert_int_eq(c.requests, 1);
    finish(&c, t);
}
END_TEST

START_TEST(unreachable_collector_gives_up_at_the_export_timeout)
{
    collector_t c;
    collector_start(&c);
    fl_trace_config_t cfg = test_config("http://127.0.0.1:1/v1/traces"); /* refused */
    cfg.export_timeout_ms = 300;
    cfg.retry_min_ms = 20;
    cfg.schedule_delay_ms = 1;
    fl_tracer_t *t;
    ck_assert_int_eq(fl_tracer_new(&c.loop, &cfg, &t), 0);
    fl_trace_config_free(&cfg);
    end_spans(t, 2);
    uv_update_time(&c.loop);
    uint64_t t0 = uv_now(&c.loop);
    run_until_settled(&c, t, 2, 3000);
    fl_tracer_stats_t st;
    fl_tracer_stats(t, &st);
    ck_assert_uint_eq(st.failed, 2);
    ck_assert_uint_ge(st.retries, 2);
    ck_assert_uint_lt(uv_now(&c.loop) - t0, 1000);
    finish(&c, t);
}
END_TEST

START_TEST(a_full_queue_drops_and_counts)
{
    collector_t c;
    collector_start(&c);
    fl_tracer_t *t = tracer_for(&c, 3, 3, 10);
    end_spans(t, 5); /* the loop has not run: 3 wait, 2 are dropped */
    fl_tracer_stats_t st;
    fl_tracer_stats(t, &st);
    ck_assert_uint_eq(st.queued, 3);
    ck_assert_uint_eq(st.queue_full, 2);
    run_until_settled(&c, t, 3, 3000);
    fl_tracer_stats(t, &st);
    ck_assert_uint_eq(st.exported, 3);
    finish(&c, t);
}
END_TEST

START_TEST(shutdown_flushes_everything_queued)
{
    collector_t c;
    collector_start(&c);
    fl_tracer_t *t = tracer_for(&c, 2, 100, 60000); /* the schedule would be a minute away */
    end_spans(t, 1);
    fl_tracer_stats_t st;
    fl_tracer_stats(t, &st);
    ck_assert_uint_eq(st.queued, 1);
    int done = 0;
    fl_tracer_shutdown(t, 2000, set_flag, &done);
    for (int i = 0; i < 100000 && !done; i++)
        uv_run(&c.loop, UV_RUN_ONCE);
    ck_assert(done);
    ck_assert_int_eq(c.requests, 1);
    fl_httpd_close(c.httpd, NULL, NULL);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&c.loop), 0);
}
END_TEST

START_TEST(shutdown_is_bounded_when_the_collector_never_answers)
{
    collector_t c;
    collector_start(&c);
    c.hold = true;
    fl_tracer_t *t = tracer_for(&c, 2, 100, 60000);
    end_spans(t, 2);
    int done = 0;
    uv_update_time(&c.loop);
    uint64_t t0 = uv_now(&c.loop);
    fl_tracer_shutdown(t, 200, set_flag, &done);
    for (int i = 0; i < 100000 && !done; i++)
        uv_run(&c.loop, UV_RUN_ONCE);
    ck_assert(done);
    uv_update_time(&c.loop);
    ck_assert_uint_lt(uv_now(&c.loop) - t0, 1500);
    ck_assert_int_eq(c.requests, 1);
    fl_httpd_close(c.httpd, NULL, NULL);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&c.loop), 0);
}
END_TEST

START_TEST(attributes_status_and_limits)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fl_trace_config_t c = test_config(NULL);
    c.max_attrs = 3;
    fl_tracer_t *t;
    ck_assert_int_eq(fl_tracer_new(&loop, &c, &t), 0);
    fl_trace_config_free(&c);
    fl_span_t *s = fl_span_start(t, "s", FL_SPAN_CLIENT, NULL);
    fl_span_set_resend_count(s, 0); /* not on a first attempt */
    fl_span_set_str(s, "a", "1");
    fl_span_set_str(s, "a", "2"); /* overwrites */
    fl_span_set_resend_count(s, 2);
    fl_span_set_bool(s, "b", true);
    fl_span_set_double(s, "c", 1.5); /* the fourth: dropped */
    fl_span_add_event(s, "e");
    fl_span_set_status(s, FL_STATUS_OK, "ignored with OK");
    fl_span_end(s);
    shutdown_and_close(&loop, t);
    /* what the span held is checked through the encoder in unit.otlp and interop.otlp */
}
END_TEST

START_TEST(retry_after_seconds_are_honoured)
{
    collector_t c;
    collector_start(&c);
    c.statuses[0] = 503;
    c.extra = "Retry-After: 1\r\n";
    fl_tracer_t *t = tracer_for(&c, 1, 100, 10);
    end_spans(t, 1);
    uv_update_time(&c.loop);
    uint64_t t0 = uv_now(&c.loop);
    run_until_settled(&c, t, 1, 3000);
    fl_tracer_stats_t st;
    fl_tracer_stats(t, &st);
    ck_assert_uint_eq(st.exported, 1);
    ck_assert_uint_eq(st.retries, 1);
    ck_assert_uint_ge(uv_now(&c.loop) - t0, 1000); /* not the 10 ms backoff */
    finish(&c, t);
}
END_TEST

/* The exporter POSTs through lib/httpc: "localhost" and a name (this machine's, when it
 * resolves to a loopback address) reach the collector; a URL it cannot use (https, no
 * scheme) drops the spans, counted, without a request. */
START_TEST(endpoint_forms)
{
    char host[256] = "";
    struct addrinfo *ai = NULL, hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    bool name_ok = gethostname(host, sizeof host) == 0 && strcmp(host, "localhost") != 0 &&
                   getaddrinfo(host, NULL, &hints, &ai) == 0 && ai &&
                   ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24 == 127;
    if (ai)
        freeaddrinfo(ai);
    const char *forms[] = {"http://localhost:%d/v1/traces", "http://%s:%d/v1/traces",
                           "https://127.0.0.1:%d/v1/traces", "127.0.0.1:%d/v1/traces"};
    for (int i = 0; i < 4; i++) {
        if (i == 1 && !name_ok) {
            fprintf(stderr, "endpoint_forms: '%s' does not resolve to 127.x: name not tried\n",
                    host);
            continue;
        }
        collector_t c;
        collector_start(&c);
        int port = fl_httpd_port(c.httpd);
        if (i == 1)
            snprintf(c.url, sizeof c.url, forms[i], host, port);
        else
            snprintf(c.url, sizeof c.url, forms[i], port);
        fl_tracer_t *t = tracer_for(&c, 2, 100, 10);
        end_spans(t, 2);
        run_until_settled(&c, t, 2, 3000);
        fl_tracer_stats_t st;
        fl_tracer_stats(t, &st);
        ck_assert_msg(st.exported == (i < 2 ? 2u : 0u), "%s: %d exported", c.url, (int)st.exported);
        ck_assert_msg(st.failed == (i < 2 ? 0u : 2u), "%s: %d failed", c.url, (int)st.failed);
        ck_assert_int_eq(c.requests, i < 2 ? 1 : 0);
        ck_assert(!c.bad_request);
        finish(&c, t);
    }
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, config_defaults);
    tcase_add_test(tc, config_from_env);
    tcase_add_test(tc, config_bad_values_fall_back);
    tcase_add_test(tc, ids_and_parentage);
    tcase_add_test(tc, samplers);
    tcase_add_test(tc, disabled_records_nothing_but_propagates);
    tcase_add_test(tc, full_batches_leave_at_once_the_rest_on_schedule);
    tcase_add_test(tc, retries_503_and_429_then_succeeds);
    tcase_add_test(tc, a_400_is_not_retried);
    tcase_add_test(tc, retry_after_seconds_are_honoured);
    tcase_add_test(tc, endpoint_forms);
    tcase_add_test(tc, unreachable_collector_gives_up_at_the_export_timeout);
    tcase_add_test(tc, a_full_queue_drops_and_counts);
    tcase_add_test(tc, shutdown_flushes_everything_queued);
    tcase_add_test(tc, shutdown_is_bounded_when_the_collector_never_answers);
    tcase_add_test(tc, attributes_status_and_limits);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
