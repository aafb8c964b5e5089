/* The service shell; see svc.h. */
#include "services/runtime/svc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/log.h"
#include "services/runtime/grpc_server.h"
#include "services/runtime/grpc_status.h"
#include "services/runtime/mq.h"

#define DEREGISTER_TIMEOUT_MS 1000
#define SPAN_FLUSH_MS 2000

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static void on_signal(uv_signal_t *sig, int signum);
static void consul_log(void *arg, int error, const char *line);

int fl_svc_init(fl_svc_t *s, const char *prog, int default_port)
{
    memset(s, 0, sizeof *s);
    setvbuf(stdout, NULL, _IOLBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    s->prog = prog;
    s->service = env_or("SERVICE_NAME", prog);
    s->instance = env_or("INSTANCE_ID", s->service);
    s->bind = env_or("BIND", "127.0.0.1");
    s->bug = env_or("FAULTLINE_BUG", "");
    char *end;
    const char *port = env_or("PORT", "");
    long p = *port ? strtol(port, &end, 10) : default_port;
    if ((*port && *end) || p < 0 || p > 65535) {
        fl_svc_complain(s, "bad PORT '%s': want an integer in 0..65535", port);
        return 2;
    }
    s->port = (int)p;
    if (uv_loop_init(&s->loop))
        return 1;
    const char *consul = getenv("CONSUL_HTTP_ADDR");
    if (consul && *consul) {
        fl_cc_config_t cfg = {consul, consul_log, s};
        if (fl_cc_new(&s->loop, &cfg, &s->consul)) {
            fl_svc_complain(s, "bad CONSUL_HTTP_ADDR '%s': want IP:PORT", consul);
            return 2;
        }
    }
    fl_trace_config_t tc;
    if (fl_trace_config_from_env(&tc, NULL, NULL) || fl_tracer_new(&s->loop, &tc, &s->tracer)) {
        fl_svc_complain(s, "cannot set up tracing");
        fl_trace_config_free(&tc);
        return 1;
    }
    fl_trace_config_free(&tc);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    fl_svc_say(s, "starting as %s (pid %d)%s%s", s->service, (int)getpid(),
               *s->bug ? ", FAULTLINE_BUG=" : "", s->bug);
    return 0;
}

int fl_svc_bug(const fl_svc_t *s, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = s->bug; (p = strstr(p, name)); p += n)
        if ((p == s->bug || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

static void consul_log(void *arg, int error, const char *line)
{
    fl_svc_t *s = arg;
    if (error)
        fl_svc_complain(s, "%s", line);
    else
        fl_svc_say(s, "%s", line);
}

void fl_svc_register(fl_svc_t *s, int port, const char *check)
{
    if (!s->consul)
        return;
    char target[160];
    int grpc = strcmp(check, "grpc") == 0;
    if (grpc)
        snprintf(target, sizeof target, strchr(s->bind, ':') ? "[%s]:%d" : "%s:%d", s->bind, port);
    else
        snprintf(target, sizeof target,
                 strchr(s->bind, ':') ? "http://[%s]:%d/healthz" : "http://%s:%d/healthz", s->bind,
                 port);
    fl_cc_service_t svc = {s->instance,
                           s->service,
                           s->bind,
                           port,
                           getenv("SVC_TAGS"),
                           check,
                           target,
                           env_or("SVC_CHECK_INTERVAL", "1s"),
                           "1m"};
    int rc = fl_cc_register(s->consul, &svc);
    if (rc)
        fl_svc_complain(s, "cannot register: %s", fl_strerror(rc));
}

/* ---- dependencies ---- */

static void on_backends(void *arg, const char *const *addrs, size_t n, uint64_t index)
{
    fl_rpc_client_t *c = arg;
    fl_rpc_set_backends(c, addrs, n);
    (void)index;
}

fl_rpc_client_t *fl_svc_dependency(fl_svc_t *s, const char *need)
{
    if (s->ndeps == 8)
        return NULL;
    fl_rpc_opts_t o = {.service = need, .tracer = s->tracer, .seed = (uint64_t)getpid()};
    const char *lb = env_or("LB_POLICY", "round_robin");
    int policy = fl_lb_policy_parse(lb);
    if (policy < 0) {
        fl_svc_complain(s, "bad LB_POLICY '%s': want round_robin or p2c", lb);
        return NULL;
    }
    o.lb = (fl_lb_policy_t)policy;
    o.sticky = fl_svc_bug(s, "sticky-lb");
    o.no_retry = fl_svc_bug(s, "no-retry");
    o.retry_past_max = fl_svc_bug(s, "retry-past-max");
    const char *sc = getenv("GRPC_SERVICE_CONFIG");
    char err[200];
    if (sc && *sc) {
        if (fl_retry_config_parse(sc, &o.retry, &o.throttle, err, sizeof err)) {
            fl_svc_complain(s, "bad GRPC_SERVICE_CONFIG: %s", err);
            return NULL;
        }
    } else {
        o.retry = (fl_retry_policy_t){3, 50000000ull, 500000000ull, 2.0, 1u << FL_GRPC_UNAVAILABLE};
    }
    fl_rpc_client_t *c;
    if (fl_rpc_client_new(&s->loop, &o, &c))
        return NULL;
    s->deps[s->ndeps] = c;
    if (s->consul) {
        if (fl_cc_watch(s->consul, need, "5m", on_backends, c, &s->watches[s->ndeps])) {
            fl_svc_complain(s, "cannot watch %s in consul", need);
            return NULL;
        }
    } else {
        char var[96];
        snprintf(var, sizeof var, "%s_ADDR", need);
        for (char *p = var; *p; p++)
            *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        if (fl_rpc_set_backends_csv(c, env_or(var, ""))) {
            fl_svc_complain(s, "bad %s '%s': want host:port,host:port", var, env_or(var, ""));
            return NULL;
        }
    }
    s->ndeps++;
    fl_svc_say(s, "calls %s through %s", need, s->consul ? "consul" : "its static addresses");
    return c;
}

/* ---- spans and broker state ---- */

fl_span_t *fl_svc_server_span(fl_svc_t *s, fl_grpc_srv_call_t *call, const char *rpc_service,
                              const char *method)
{
    fl_tracectx_t parent;
    const char *tp = fl_grpc_srv_call_header(call, "traceparent");
    const char *ts = fl_grpc_srv_call_header(call, "tracestate");
    int has = tp && fl_tracectx_extract(tp, strlen(tp), ts, ts ? strlen(ts) : 0, &parent) == 0;
    char name[200];
    snprintf(name, sizeof name, "%s/%s", rpc_service, method);
    fl_span_t *sp = fl_span_start(s->tracer, name, FL_SPAN_SERVER, has ? &parent : NULL);
    fl_span_set_str(sp, "rpc.system", "grpc");
    fl_span_set_str(sp, "rpc.service", rpc_service);
    fl_span_set_str(sp, "rpc.method", method);
    return sp;
}

void fl_svc_mq_state(fl_mq_t *mq, bool up, const char *why, void *arg)
{
    fl_svc_t *s = arg;
    (void)mq;
    if (up)
        fl_svc_say(s, "connected to the broker");
    else
        fl_svc_say(s, "broker lost: %s", why ? why : "?");
}

/* ---- stopping ---- */

static void closed_one(void *arg)
{
    fl_svc_t *s = arg;
    if (--s->closing_left == 0) {
        uv_close((uv_handle_t *)&s->sigterm, NULL);
        uv_close((uv_handle_t *)&s->sigint, NULL);
        fl_svc_say(s, "stopped");
    }
}

void fl_svc_stopped(fl_svc_t *s)
{
    /* the service is down: its clients, Consul and the tracer go too */
    s->closing_left = s->ndeps + 2;
    for (int i = 0; i < s->ndeps; i++)
        fl_rpc_client_close(s->deps[i], closed_one, s);
    if (s->consul)
        fl_cc_close(s->consul, closed_one, s);
    else
        closed_one(s);
    fl_tracer_shutdown(s->tracer, SPAN_FLUSH_MS, closed_one, s);
}

static void deregistered(void *arg)
{
    fl_svc_t *s = arg;
    if (s->on_stop)
        s->on_stop(s, s->stop_arg);
    else
        fl_svc_stopped(s);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    fl_svc_t *s = sig->data;
    if (s->stopping)
        return;
    s->stopping = 1;
    fl_svc_say(s, "stopping on %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (s->consul)
        fl_cc_deregister(s->consul, fl_svc_bug(s, "no-deregister"), DEREGISTER_TIMEOUT_MS,
                         deregistered, s);
    else
        deregistered(s);
}

int fl_svc_run(fl_svc_t *s, void (*on_stop)(fl_svc_t *s, void *arg), void *arg)
{
    s->on_stop = on_stop;
    s->stop_arg = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&s->loop);
    if (rc) {
        fl_svc_complain(s, "handles left open at exit: %s", uv_strerror(rc));
        return 1;
    }
    return s->exit_code;
}
