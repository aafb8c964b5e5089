/* Fixture for the fake Consul's suites: a loop, a catalog with agents on 127.0.0.1 (port 0),
 * and requests made with lib/httpc while the loop runs in this thread. Every wait is bounded
 * (a watchdog stops the loop, and each wait has its own limit), and fx_close checks that the
 * loop closes cleanly, so a leaked handle fails the test. */
#ifndef FL_TEST_CONSULFX_H
#define FL_TEST_CONSULFX_H

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "fakes/consul/consul.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/httpc.h"
#include "lib/httpd.h"

#define MS 1000000ull
#define WATCHDOG_MS 30000
#define REQ_TIMEOUT_MS 5000

typedef struct {
    uv_loop_t loop;
    uv_timer_t watchdog;
    uv_timer_t tick; /* keeps UV_RUN_ONCE from sleeping long while a test waits */
    int fired;
    fl_consul_t *c;
    fl_consul_agent_t *a[8];
    int nagents;
    fl_buf_t events; /* "node|text\n" per event */
    int closed;
    /* rewrite: when set, every address is answered as rw_addr:rw_port */
    const char *rw_addr;
    int rw_port;
    /* rewrite: when set (and rw_addr is not), each node is told "<node>.link" and the port
     * plus 1000, so that every node gets answers of its own */
    int rw_by_node;
} fx_t;

typedef struct {
    int done, status, error;
    fl_buf_t body;
    fl_buf_t headers; /* "name: value\n" */
    uint64_t at;      /* uv_now when it completed */
    fl_httpc_req_t *req;
} resp_t;

static inline void on_watchdog(uv_timer_t *t)
{
    fx_t *fx = t->data;
    fx->fired = 1;
    uv_stop(t->loop);
}

static inline void fx_event(void *arg, const char *node, const char *text)
{
    fx_t *fx = arg;
    fl_buf_printf(&fx->events, "%s|%s\n", node, text);
}

static inline int fx_rewrite(void *arg, const char *node, const char *addr, int port,
                             char *out_addr, size_t out_len, int *out_port)
{
    fx_t *fx = arg;
    if (!fx->rw_addr && fx->rw_by_node) {
        snprintf(out_addr, out_len, "%s.link", node);
        *out_port = port + 1000;
        return 1;
    }
    if (!fx->rw_addr)
        return 0;
    snprintf(out_addr, out_len, "%s", fx->rw_addr);
    *out_port = fx->rw_port;
    return 1;
}

static inline void fx_init(fx_t *fx, int nagents)
{
    signal(SIGPIPE, SIG_IGN);
    memset(fx, 0, sizeof *fx);
    ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->watchdog);
    fx->watchdog.data = fx;
    uv_timer_start(&fx->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_timer_init(&fx->loop, &fx->tick);
    fl_consul_config_t cfg = {
        .seed = 42,
        .rewrite = fx_rewrite,
        .rewrite_arg = fx,
        .on_event = fx_event,
        .event_arg = fx,
    };
    ck_assert_int_eq(fl_consul_new(&fx->loop, &cfg, &fx->c), 0);
    for (int i = 0; i < nagents; i++) {
        char name[16];
        snprintf(name, sizeof name, "node-%d", i + 1);
        ck_assert_int_eq(fl_consul_add_agent(fx->c, name, "127.0.0.1", 0, &fx->a[i]), 0);
        ck_assert_int_gt(fl_consul_agent_port(fx->a[i]), 0);
    }
    fx->nagents = nagents;
}

static inline void fx_closed(void *arg)
{
    ((fx_t *)arg)->closed = 1;
}

static inline void fx_close(fx_t *fx)
{
    fl_consul_close(fx->c, fx_closed, fx);
    while (!fx->closed && !fx->fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    ck_assert_int_eq(fx->closed, 1);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    fl_buf_free(&fx->events);
    ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
}

/* ---- requests ---- */

static inline void on_tick(uv_timer_t *t)
{
}

static inline void on_resp(void *arg, const fl_httpc_result_t *res)
{
    resp_t *r = arg;
    r->done = 1;
    r->req = NULL;
    r->status = res->status;
    r->error = res->error;
    fl_buf_reset(&r->body);
    fl_buf_reset(&r->headers);
    fl_buf_append(&r->body, res->body ? res->body : "", res->body_len);
    fl_buf_puts(&r->body, ""); /* keep data non-NULL */
    for (size_t i = 0; i < res->nheaders; i++)
        fl_buf_printf(&r->headers, "%.*s: %.*s\n", (int)res->headers[i].name_len,
                      res->headers[i].name, (int)res->headers[i].value_len, res->headers[i].value);
    fl_buf_puts(&r->headers, "");
    r->at = uv_hrtime();
}

static inline void resp_free(resp_t *r)
{
    fl_buf_free(&r->body);
    fl_buf_free(&r->headers);
}

static inline void fx_start(fx_t *fx, int agent, const char *method, const char *target,
                            const char *body, resp_t *r)
{
    r->done = 0;
    fl_httpc_opts_t o = {
        .method = method,
        .host = "127.0.0.1",
        .port = fl_consul_agent_port(fx->a[agent]),
        .target = target,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ns = 20000 * MS,
    };
    ck_assert_int_eq(fl_httpc_request(&fx->loop, &o, on_resp, r, &r->req), 0);
}

/* Runs the loop until r is answered or max_ms pass; returns r->done. */
static inline int fx_wait(fx_t *fx, resp_t *r, uint64_t max_ms)
{
    uint64_t end = uv_hrtime() + max_ms * MS;
    uv_timer_start(&fx->tick, on_tick, 1, 1);
    while (!r->done && !fx->fired && uv_hrtime() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->tick);
    return r->done;
}

static inline void fx_req(fx_t *fx, int agent, const char *method, const char *target,
                          const char *body, resp_t *r)
{
    fx_start(fx, agent, method, target, body, r);
    ck_assert_msg(fx_wait(fx, r, REQ_TIMEOUT_MS), "%s %s: no answer", method, target);
    ck_assert_msg(r->error == 0, "%s %s: error %s", method, target, fl_strerror(r->error));
}

/* Runs the loop for ms milliseconds. */
static inline void fx_run_for(fx_t *fx, uint64_t ms)
{
    resp_t never = {0};
    fx_wait(fx, &never, ms);
}

/* Runs the loop until pred() holds (checked every few ms) or max_ms pass; returns pred(). */
static inline int fx_until(fx_t *fx, int (*pred)(fx_t *fx, void *arg), void *arg, uint64_t max_ms)
{
    uint64_t end = uv_hrtime() + max_ms * MS;
    while (!pred(fx, arg) && !fx->fired && uv_hrtime() < end)
        fx_run_for(fx, 2);
    return pred(fx, arg);
}

static inline const char *resp_header(const resp_t *r, const char *name, char *buf, size_t n)
{
    size_t len = strlen(name);
    for (const char *p = r->headers.data; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (strncasecmp(p, name, len) == 0 && p[len] == ':') {
            size_t vlen = (size_t)(eol - p) - len - 2;
            snprintf(buf, n, "%.*s", (int)vlen, p + len + 2);
            return buf;
        }
        p = eol ? eol + 1 : p + strlen(p);
    }
    return NULL;
}

static inline unsigned long long resp_index(const resp_t *r)
{
    char buf[64];
    const char *v = resp_header(r, "X-Consul-Index", buf, sizeof buf);
    return v ? strtoull(v, NULL, 10) : 0;
}

static inline json_t *resp_json(const resp_t *r)
{
    json_error_t e;
    json_t *j = json_loads(r->body.data ? r->body.data : "", JSON_DECODE_ANY, &e);
    ck_assert_msg(j != NULL, "not JSON: %s (%s)", r->body.data, e.text);
    return j;
}

/* A simple request whose answer must have status `status`. */
static inline void fx_expect(fx_t *fx, int agent, const char *method, const char *target,
                             const char *body, int status)
{
    resp_t r = {0};
    fx_req(fx, agent, method, target, body, &r);
    ck_assert_msg(r.status == status, "%s %s: %d (wanted %d): %s", method, target, r.status, status,
                  r.body.data);
    resp_free(&r);
}

#endif
