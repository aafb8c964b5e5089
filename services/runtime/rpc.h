/* The client side of a reference service's dependency: one gRPC channel to every backend of a
 * service (their addresses set from the wiring contract's <NEED>_ADDR, or from discovery as
 * it changes), a balancer picking a backend per attempt (balancer.h), retries per gRFC A6
 * (retry.h) within the call's deadline and never once the server has sent response headers
 * (the call is then committed, as A6 says; a trailers-only failure is retried), and a CLIENT span
 * per attempt (trace.h) whose context travels as traceparent/tracestate. Retries carry
 * grpc-previous-rpc-attempts.
 *
 * FAULTLINE_BUG=no-retry (opts.no_retry) makes every call a single attempt whatever the
 * policy: the defect the retry suite exists to catch. FAULTLINE_BUG=retry-past-max
 * (opts.retry_past_max) makes twice the policy's maxAttempts, past A6's cap of 5: the
 * defect t:expect_traces{ max_attempts = } exists to catch. */
#ifndef FL_RPC_H
#define FL_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "services/runtime/balancer.h"
#include "services/runtime/grpc_client.h"
#include "services/runtime/retry.h"
#include "services/runtime/trace.h"

typedef struct fl_rpc_client fl_rpc_client_t;

typedef struct {
    const char *service; /* the dependency's name, for spans and logs ("users") */
    fl_lb_policy_t lb;
    int sticky;         /* FAULTLINE_BUG=sticky-lb */
    int no_retry;       /* FAULTLINE_BUG=no-retry */
    int retry_past_max; /* FAULTLINE_BUG=retry-past-max */
    fl_retry_policy_t retry;
    fl_retry_throttle_t throttle;
    uint64_t seed;       /* backoff jitter and p2c draws */
    fl_tracer_t *tracer; /* NULL: no spans (contexts still travel when a parent is given) */
    fl_grpc_channel_opts_t channel;
} fl_rpc_opts_t;

typedef struct {
    int code;            /* FL_GRPC_* of the last attempt (or UNAVAILABLE: no backend) */
    const char *message; /* its grpc-message, or ours */
    const uint8_t *msg;  /* the answer when code is OK */
    size_t msg_len;
    int attempts;           /* made, 1..max_attempts (0: none could start) */
    const char *backend;    /* address of the last attempt's backend, "" when none */
    fl_retry_verdict_t why; /* why the last failure was not retried */
} fl_rpc_result_t;

typedef void (*fl_rpc_done_t)(void *arg, const fl_rpc_result_t *res);

/* 0 or FL_ENOMEM. */
int fl_rpc_client_new(uv_loop_t *loop, const fl_rpc_opts_t *opts, fl_rpc_client_t **out);
/* The backends are exactly addrs now: new ones are added, missing ones removed (their calls
 * in flight finish). 0, FL_EINVAL (a bad address; nothing changed) or FL_ENOMEM. */
int fl_rpc_set_backends(fl_rpc_client_t *c, const char *const *addrs, size_t n);
/* The same from "host:port,host:port" (an empty string: no backends). */
int fl_rpc_set_backends_csv(fl_rpc_client_t *c, const char *csv);
fl_grpc_channel_t *fl_rpc_channel(fl_rpc_client_t *c);

/* Calls path with req within timeout_ns (0: no deadline), as a child of parent (NULL: a new
 * trace). done runs once, from a loop callback, unless the client closes first (then with
 * CANCELLED). 0 or FL_ENOMEM (done never runs). */
int fl_rpc_call(fl_rpc_client_t *c, const char *path, const ProtobufCMessage *req,
                uint64_t timeout_ns, const fl_tracectx_t *parent, fl_rpc_done_t done, void *arg);

typedef struct {
    uint64_t calls, attempts, retries, ok, failed;
    uint64_t not_retried[FL_RETRY_NVERDICTS]; /* by fl_retry_verdict_t, for failed calls */
} fl_rpc_stats_t;
void fl_rpc_stats(const fl_rpc_client_t *c, fl_rpc_stats_t *out);

/* Cancels what is in flight (their done run with CANCELLED), closes the channel, then
 * cb(arg); c is freed. */
void fl_rpc_client_close(fl_rpc_client_t *c, void (*cb)(void *arg), void *arg);

#endif
