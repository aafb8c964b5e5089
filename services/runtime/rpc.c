/* A balanced, retrying gRPC client: a call is a sequence of attempts, each on the backend the
 * balancer picks, each with its own CLIENT span and the rest of the deadline; between them
 * the backoff A6 asks for, on a timer. See rpc.h. */
#include "services/runtime/rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/rng.h"
#include "services/runtime/grpc_status.h"

typedef struct rpc_call rpc_call_t;

struct fl_rpc_client {
    uv_loop_t *loop;
    fl_rpc_opts_t opts;
    char *service;
    fl_grpc_channel_t *ch;
    fl_lb_t lb;
    fl_rng_t rng;
    rpc_call_t *calls; /* in flight or waiting to retry */
    fl_rpc_stats_t st;
    int closing, pending;
    void (*close_cb)(void *);
    void *close_arg;
};

struct rpc_call {
    fl_rpc_client_t *c;
    char *path;
    uint8_t *req;
    size_t req_len;
    uint64_t deadline; /* uv_hrtime ns; 0: none */
    int has_parent;
    fl_tracectx_t parent;
    int attempts;
    fl_grpc_call_t *inflight;
    fl_span_t *span;
    char backend[64];
    uv_timer_t timer; /* backoff */
    fl_rpc_done_t done;
    void *arg;
    rpc_call_t *next, *prev;
};

static void start_attempt(rpc_call_t *call);

int fl_rpc_client_new(uv_loop_t *loop, const fl_rpc_opts_t *opts, fl_rpc_client_t **out)
{
    fl_rpc_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return FL_ENOMEM;
    c->loop = loop;
    c->opts = *opts;
    c->service = strdup(opts->service ? opts->service : "?");
    if (!c->service || fl_grpc_channel_new(loop, &opts->channel, &c->ch)) {
        free(c->service);
        free(c);
        return FL_ENOMEM;
    }
    c->opts.service = c->service;
    if (c->opts.no_retry || c->opts.retry.max_attempts < 1)
        c->opts.retry.max_attempts = 1;
    else if (c->opts.retry_past_max)
        c->opts.retry.max_attempts *= 2;
    fl_lb_init(&c->lb, opts->lb, opts->seed, opts->sticky);
    fl_rng_seed(&c->rng, opts->seed ^ 0x5eed);
    *out = c;
    return 0;
}

fl_grpc_channel_t *fl_rpc_channel(fl_rpc_client_t *c)
{
    return c->ch;
}

int fl_rpc_set_backends(fl_rpc_client_t *c, const char *const *addrs, size_t n)
{
    fl_grpc_backend_t *have[256];
    size_t nh = fl_grpc_channel_backends(c->ch, have, 256);
    if (nh > 256)
        nh = 256;
    /* add what is new first, so a bad address changes nothing */
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t j = 0; j < nh && !found; j++)
            found = strcmp(fl_grpc_backend_addr(have[j]), addrs[i]) == 0;
        for (size_t j = 0; j < i && !found; j++)
            found = strcmp(addrs[j], addrs[i]) == 0;
        if (found)
            continue;
        fl_grpc_backend_t *be;
        int rc = fl_grpc_channel_add(c->ch, addrs[i], &be);
        if (rc)
            return rc;
    }
    for (size_t j = 0; j < nh; j++) {
        int keep = 0;
        for (size_t i = 0; i < n && !keep; i++)
            keep = strcmp(fl_grpc_backend_addr(have[j]), addrs[i]) == 0;
        if (!keep)
            fl_grpc_channel_remove(c->ch, have[j]);
    }
    return 0;
}

int fl_rpc_set_backends_csv(fl_rpc_client_t *c, const char *csv)
{
    char *copy = strdup(csv ? csv : "");
    const char *addrs[256];
    size_t n = 0;
    if (!copy)
        return FL_ENOMEM;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && n < 256;
         tok = strtok_r(NULL, ",", &save))
        if (*tok)
            addrs[n++] = tok;
    int rc = fl_rpc_set_backends(c, addrs, n);
    free(copy);
    return rc;
}

void fl_rpc_stats(const fl_rpc_client_t *c, fl_rpc_stats_t *out)
{
    *out = c->st;
}

/* ---- calls ---- */

static void client_free(fl_rpc_client_t *c)
{
    fl_grpc_channel_close(c->ch, c->close_cb, c->close_arg);
    free(c->service);
    free(c);
}

static void call_freed(uv_handle_t *h)
{
    rpc_call_t *call = h->data;
    fl_rpc_client_t *c = call->c;
    free(call->path);
    free(call->req);
    free(call);
    if (--c->pending == 0 && c->closing)
        client_free(c);
}

/* Ends the call: the user's callback, then the call goes (after its timer closes). */
static void finish(rpc_call_t *call, const fl_rpc_result_t *res)
{
    fl_rpc_client_t *c = call->c;
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    if (res->code == FL_GRPC_OK)
        c->st.ok++;
    else {
        c->st.failed++;
        if ((unsigned)res->why < FL_RETRY_NVERDICTS)
            c->st.not_retried[res->why]++;
    }
    call->done(call->arg, res);
    uv_close((uv_handle_t *)&call->timer, call_freed);
}

static void fail_now(rpc_call_t *call, int code, const char *message, fl_retry_verdict_t why)
{
    fl_rpc_result_t res = {code, message, NULL, 0, call->attempts, call->backend, why};
    finish(call, &res);
}

/* "/users.Users/Get" → service "users.Users", method "Get" (for span attributes). */
static void split_path(const char *path, char *svc, size_t sn, char *method, size_t mn)
{
    const char *p = path[0] == '/' ? path + 1 : path, *slash = strrchr(p, '/');
    if (!slash) {
        snprintf(svc, sn, "%s", p);
        method[0] = '\0';
        return;
    }
    snprintf(svc, sn, "%.*s", (int)(slash - p), p);
    snprintf(method, mn, "%s", slash + 1);
}

static void on_backoff(uv_timer_t *t)
{
    rpc_call_t *call = t->data;
    start_attempt(call);
}

static void on_attempt_done(void *arg, const fl_grpc_result_t *res)
{
    rpc_call_t *call = arg;
    fl_rpc_client_t *c = call->c;
    call->inflight = NULL;
    if (call->span) {
        fl_span_set_int(call->span, "rpc.grpc.status_code", res->code);
        if (res->code != FL_GRPC_OK)
            fl_span_set_status(call->span, FL_STATUS_ERROR, res->message);
        fl_span_end(call->span);
        call->span = NULL;
    }
    fl_retry_throttle_record(&c->opts.throttle, &c->opts.retry, res->code);
    if (res->code == FL_GRPC_OK) {
        fl_rpc_result_t r = {FL_GRPC_OK,    "",         res->msg, res->msg_len, call->attempts,
                             call->backend, FL_RETRY_NO};
        finish(call, &r);
        return;
    }
    uint64_t delay = 0;
    fl_retry_verdict_t v =
        fl_retry_decide(&c->opts.retry, &c->opts.throttle, call->attempts, res->code,
                        fl_grpc_result_meta(res, "grpc-retry-pushback-ms"), uv_hrtime(),
                        call->deadline, fl_rng_double(&c->rng), &delay);
    if (v == FL_RETRY_YES && res->committed)
        v = FL_RETRY_COMMITTED; /* gRFC A6: once response headers came, the call is committed */
    if (v != FL_RETRY_YES || c->closing) {
        fl_rpc_result_t r = {res->code, res->message, NULL, 0, call->attempts, call->backend, v};
        finish(call, &r);
        return;
    }
    c->st.retries++;
    uv_timer_start(&call->timer, on_backoff, (delay + 999999) / 1000000, 0);
}

static int add_meta(fl_buf_t *b, const char *name, const char *value)
{
    int rc = fl_buf_append(b, name, strlen(name) + 1);
    return rc ? rc : fl_buf_append(b, value, strlen(value) + 1);
}

static void start_attempt(rpc_call_t *call)
{
    fl_rpc_client_t *c = call->c;
    uint64_t now = uv_hrtime(), timeout = 0;
    if (call->deadline) {
        if (now >= call->deadline) {
            fail_now(call, FL_GRPC_DEADLINE_EXCEEDED, "deadline exceeded before the attempt",
                     FL_RETRY_DEADLINE);
            return;
        }
        timeout = call->deadline - now;
    }
    fl_grpc_backend_t *be = fl_lb_pick(&c->lb, c->ch);
    call->attempts++;
    if (!be) {
        /* nobody to ask: an attempt that failed at once, which the policy may retry (discovery
         * can bring a backend meanwhile) */
        snprintf(call->backend, sizeof call->backend, "%s", "");
        char msg[160];
        snprintf(msg, sizeof msg, "no backend for %s", c->service);
        fl_grpc_result_t r = {.code = FL_GRPC_UNAVAILABLE, .message = msg};
        c->st.attempts++;
        on_attempt_done(call, &r);
        return;
    }
    snprintf(call->backend, sizeof call->backend, "%s", fl_grpc_backend_addr(be));
    c->st.attempts++;

    /* the attempt's span and the context it passes on */
    char svc[128], method[128], tp[FL_TRACEPARENT_LEN + 1] = "";
    const fl_tracectx_t *ctx = call->has_parent ? &call->parent : NULL;
    if (c->opts.tracer) {
        split_path(call->path, svc, sizeof svc, method, sizeof method);
        char name[260];
        snprintf(name, sizeof name, "%s/%s", svc, method);
        call->span = fl_span_start(c->opts.tracer, name, FL_SPAN_CLIENT, ctx);
        fl_span_set_str(call->span, "rpc.system", "grpc");
        fl_span_set_str(call->span, "rpc.service", svc);
        fl_span_set_str(call->span, "rpc.method", method);
        fl_span_set_str(call->span, "server.address", call->backend);
        fl_span_set_str(call->span, "peer.service", c->service);
        fl_span_set_resend_count(call->span, call->attempts - 1);
        ctx = fl_span_context(call->span);
    }
    fl_buf_t meta = FL_BUF_INIT;
    int rc = 0;
    if (ctx && !fl_trace_id_is_zero(ctx->trace_id, 16)) {
        fl_traceparent_format(ctx, tp);
        rc = add_meta(&meta, "traceparent", tp);
        if (!rc && ctx->tracestate[0])
            rc = add_meta(&meta, "tracestate", ctx->tracestate);
    }
    if (!rc && call->attempts > 1) {
        char n[16];
        snprintf(n, sizeof n, "%d", call->attempts - 1);
        rc = add_meta(&meta, "grpc-previous-rpc-attempts", n);
    }
    fl_grpc_call_opts_t o = {call->path, call->req, call->req_len, timeout, meta.data, meta.len};
    if (!rc)
        rc = fl_grpc_call_start(be, &o, on_attempt_done, call, &call->inflight);
    fl_buf_free(&meta);
    if (rc) {
        if (call->span) {
            fl_span_set_status(call->span, FL_STATUS_ERROR, "could not start the attempt");
            fl_span_end(call->span);
            call->span = NULL;
        }
        fail_now(call, FL_GRPC_INTERNAL, "could not start the attempt", FL_RETRY_NO);
    }
}

int fl_rpc_call(fl_rpc_client_t *c, const char *path, const ProtobufCMessage *req,
                uint64_t timeout_ns, const fl_tracectx_t *parent, fl_rpc_done_t done, void *arg)
{
    if (c->closing)
        return FL_ESTATE;
    rpc_call_t *call = calloc(1, sizeof *call);
    if (!call)
        return FL_ENOMEM;
    call->c = c;
    call->path = strdup(path);
    call->req_len = req ? protobuf_c_message_get_packed_size(req) : 0;
    call->req = malloc(call->req_len ? call->req_len : 1);
    if (!call->path || !call->req) {
        free(call->path);
        free(call->req);
        free(call);
        return FL_ENOMEM;
    }
    if (req)
        protobuf_c_message_pack(req, call->req);
    call->deadline = timeout_ns ? uv_hrtime() + timeout_ns : 0;
    if (parent && !fl_trace_id_is_zero(parent->trace_id, 16)) {
        call->has_parent = 1;
        call->parent = *parent;
    }
    call->done = done;
    call->arg = arg;
    uv_timer_init(c->loop, &call->timer);
    call->timer.data = call;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->pending++;
    c->st.calls++;
    start_attempt(call);
    return 0;
}

void fl_rpc_client_close(fl_rpc_client_t *c, void (*cb)(void *arg), void *arg)
{
    c->closing = 1;
    c->close_cb = cb;
    c->close_arg = arg;
    while (c->calls) {
        rpc_call_t *call = c->calls;
        if (call->inflight) {
            fl_grpc_call_cancel(call->inflight);
            call->inflight = NULL;
        }
        if (call->span) {
            fl_span_set_status(call->span, FL_STATUS_ERROR, "cancelled");
            fl_span_end(call->span);
            call->span = NULL;
        }
        uv_timer_stop(&call->timer);
        fail_now(call, FL_GRPC_CANCELLED, "the client closed", FL_RETRY_NO);
    }
    if (c->pending == 0) /* else the last call's timer, once closed, frees the client */
        client_free(c);
}
