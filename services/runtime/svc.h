/* The shell every reference service shares: the wiring contract read from the environment
 * (SERVICE_NAME, INSTANCE_ID, BIND, PORT, CONSUL_HTTP_ADDR, <NEED>_ADDR, OTEL_*,
 * FAULTLINE_BUG), one log line per notable event ("users[users-1]: listening on ..."), the
 * tracer, registration in Consul with a health check and deregistration on the way out, gRPC
 * clients for dependencies (discovered through Consul when there is an agent, else the static
 * <NEED>_ADDR list; balanced and retried as rpc.h does), and an orderly stop on SIGTERM or
 * SIGINT: deregister, let the service close what it owns, flush spans, exit 0. */
#ifndef FL_SVC_H
#define FL_SVC_H

#include <stdint.h>
#include <uv.h>

#include "services/runtime/consul.h"
#include "services/runtime/rpc.h"
#include "services/runtime/trace.h"

typedef struct fl_svc fl_svc_t;

struct fl_svc {
    uv_loop_t loop;
    const char *prog; /* "users": the log prefix */
    const char *service, *instance, *bind;
    int port;
    const char *bug; /* FAULTLINE_BUG, "" when unset */
    fl_tracer_t *tracer;
    fl_cc_t *consul; /* NULL without CONSUL_HTTP_ADDR */
    uv_signal_t sigterm, sigint;
    int stopping, exit_code;
    /* the service's own stop: close what it owns, then call fl_svc_stopped */
    void (*on_stop)(fl_svc_t *s, void *arg);
    void *stop_arg;
    fl_rpc_client_t *deps[8];
    fl_cc_watch_t *watches[8];
    int ndeps, closing_left;
};

#define fl_svc_say(s, ...) fl_log_line(stdout, (s)->prog, (s)->instance, __VA_ARGS__)
#define fl_svc_complain(s, ...) fl_log_line(stderr, (s)->prog, (s)->instance, __VA_ARGS__)

/* Reads the environment (default port default_port) and sets up the loop, signals and tracer.
 * Returns 0, or the exit code (2: a bad variable, said on stderr). */
int fl_svc_init(fl_svc_t *s, const char *prog, int default_port);
/* Whether FAULTLINE_BUG names this defect. */
int fl_svc_bug(const fl_svc_t *s, const char *name);
/* Registers this instance in Consul (when there is an agent) at BIND:port with a gRPC ("grpc")
 * or HTTP ("http", GET /healthz) health check every SVC_CHECK_INTERVAL (1s). */
void fl_svc_register(fl_svc_t *s, int port, const char *check);
/* A balanced, retrying client for the dependency `need` (a service name): backends from
 * Consul (a watch on the service) when there is an agent, else from <NEED>_ADDR. Retry policy
 * from GRPC_SERVICE_CONFIG (default: 3 attempts, 50 ms to 500 ms, UNAVAILABLE), balancing
 * from LB_POLICY (round_robin or p2c); FAULTLINE_BUG=no-retry and sticky-lb apply. NULL with
 * a message when the configuration is bad. */
fl_rpc_client_t *fl_svc_dependency(fl_svc_t *s, const char *need);
/* A gRPC call's SERVER span named "<rpc_service>/<method>", child of the caller's traceparent
 * (and tracestate) when the call carries a valid one. */
struct fl_grpc_srv_call;
fl_span_t *fl_svc_server_span(fl_svc_t *s, struct fl_grpc_srv_call *call, const char *rpc_service,
                              const char *method);
/* An fl_mq_config_t on_state for services: one line when the broker is reached or lost
 * (arg: the fl_svc_t). */
struct fl_mq;
void fl_svc_mq_state(struct fl_mq *mq, bool up, const char *why, void *arg);
/* Runs the loop until the service has stopped; returns the exit code. */
int fl_svc_run(fl_svc_t *s, void (*on_stop)(fl_svc_t *s, void *arg), void *arg);
/* The service's stop is done (called from its on_stop, at once or later). */
void fl_svc_stopped(fl_svc_t *s);

#endif
