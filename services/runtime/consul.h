/* Consul for the reference services: registration with a health check (retried with backoff
 * until the agent takes it), deregistration on the way out (bounded in time, skipped under
 * FAULTLINE_BUG=no-deregister), and watches of other services' passing instances with
 * blocking health queries that report every change at once (for the balancers: rpc.h's
 * fl_rpc_set_backends). All on the loop, through lib/httpc, talking to the instance's own
 * agent (CONSUL_HTTP_ADDR). */
#ifndef FL_RT_CONSUL_H
#define FL_RT_CONSUL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct fl_cc fl_cc_t;
typedef struct fl_cc_watch fl_cc_watch_t;

typedef struct {
    /* CONSUL_HTTP_ADDR: host:port (or http://host:port), the host an IP address or localhost */
    const char *addr;
    /* One line per notable event (error: 1 for failures), or NULL. */
    void (*log)(void *arg, int error, const char *line);
    void *log_arg;
} fl_cc_config_t;

/* 0, FL_ESYNTAX (addr is not host:port with an IP address) or FL_ENOMEM. */
int fl_cc_new(uv_loop_t *loop, const fl_cc_config_t *cfg, fl_cc_t **out);

typedef struct {
    const char *id, *name, *address;
    int port;
    const char *tags;  /* comma-separated, blanks trimmed; NULL: none */
    const char *check; /* "http", "tcp" or "grpc" */
    /* http: the URL; tcp: host:port; grpc: host:port[/service] (the fake and Consul call
     * grpc.health.v1.Health/Check) */
    const char *check_target;
    const char *interval;         /* "1s" */
    const char *deregister_after; /* "1m"; NULL: never */
} fl_cc_service_t;

/* Registers s (one registration per client), retrying 100 ms, 200 ms ... 2 s apart until the
 * agent answers 200. 0, FL_EINVAL (a field that is not UTF-8, an unknown check kind,
 * registered already) or FL_ENOMEM. */
int fl_cc_register(fl_cc_t *cc, const fl_cc_service_t *s);
int fl_cc_registered(const fl_cc_t *cc);
/* Deregisters if a registration may have reached the agent, waiting timeout_ms at most, then
 * cb(arg). With skip (FAULTLINE_BUG=no-deregister) it only says so. */
void fl_cc_deregister(fl_cc_t *cc, int skip, uint64_t timeout_ms, void (*cb)(void *arg), void *arg);

/* Every answer of the watch: the passing instances' addresses ("ip:port", each once, in the
 * answer's order), and the index. Called at the first answer and whenever it changes. */
typedef void (*fl_cc_watch_fn)(void *arg, const char *const *addrs, size_t n, uint64_t index);

/* Watches service with blocking queries of wait (a Consul duration, "5m" when NULL) on the
 * last X-Consul-Index; errors back off (100 ms ... 2 s) and keep the last answer. 0,
 * FL_ENOMEM. */
int fl_cc_watch(fl_cc_t *cc, const char *service, const char *wait, fl_cc_watch_fn fn, void *arg,
                fl_cc_watch_t **out);

/* Stops every request and watch (a deregistration in flight finishes first), then cb(arg);
 * cc is freed. */
void fl_cc_close(fl_cc_t *cc, void (*cb)(void *arg), void *arg);

#endif
