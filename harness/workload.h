/* The open-loop load generator (issue 8): requests go out on a constant arrival schedule
 * (request i is due at start + i / rate) over HTTP/1.1 keep-alive connections or gRPC unary
 * calls over cleartext HTTP/2 (services/runtime's client), spread round-robin over the
 * targets that are up. At most `concurrency` requests are in flight; a request that is due
 * while every slot is taken waits in the queue, and its latency — always measured from its
 * intended send time, never from when it actually left — grows: the generator does not
 * coordinate with a slow server (no coordinated omission). Latencies go into HDR histograms
 * (lib/hdr.h), overall and per second of intended send time; each finished second becomes
 * one timeline sample (fl_sample_t). Knows nothing of Lua: lua_load.c binds it. */
#ifndef FL_WORKLOAD_H
#define FL_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "harness/timeline.h"
#include "lib/hdr.h"
#include "lib/http.h"

typedef struct fl_load fl_load_t;
typedef struct fl_load_msg fl_load_msg_t;

typedef enum { FL_LOAD_HTTP, FL_LOAD_GRPC } fl_load_proto_t;

/* One request, as a scenario describes it. */
typedef struct {
    fl_load_proto_t proto;
    /* HTTP */
    const char *method;  /* "GET" when NULL */
    const char *path;    /* "/" when NULL */
    const char *headers; /* extra header lines, each ending "\r\n", or NULL */
    /* gRPC */
    const char *grpc; /* "/pkg.Svc/Method" */
    const char *meta; /* metadata "name\0value\0"..., or NULL */
    size_t meta_len;
    /* both: the HTTP body or the gRPC message */
    const void *body;
    size_t body_len;
    /* the statuses (HTTP) or codes (gRPC) that count as success; none: 2xx / OK */
    const int *ok;
    size_t nok;
} fl_load_req_t;

/* A request made ready to send (serialized once, shared by every send of it): refcounted.
 * fl_load_msg_new: 0, FL_EINVAL (a method or path with spaces or line breaks, a header block
 * not made of "Name: value\r\n" lines, a gRPC path not starting with '/'), FL_ENOMEM. */
int fl_load_msg_new(const fl_load_req_t *req, fl_load_msg_t **out);
void fl_load_msg_unref(fl_load_msg_t *m);
fl_load_proto_t fl_load_msg_proto(const fl_load_msg_t *m);
/* 1 when s is an HTTP token (a method, a header name). */
int fl_load_is_token(const char *s);

/* Where requests go. up(arg) says whether the target takes requests now (NULL: always);
 * requests are spread over the targets that are up, or over all when none is. */
typedef struct {
    char host[64];
    int port;
    int (*up)(void *arg);
    void *up_arg;
} fl_load_target_t;

/* How one request ended. */
typedef enum {
    FL_LOAD_OK,
    FL_LOAD_TIMEOUT,   /* no complete answer within the timeout */
    FL_LOAD_REFUSED,   /* connection refused */
    FL_LOAD_RESET,     /* connection reset by the peer */
    FL_LOAD_CLOSED,    /* the peer closed before a complete answer */
    FL_LOAD_MALFORMED, /* not a valid HTTP response */
    FL_LOAD_IO,        /* any other socket error */
    FL_LOAD_STATUS,    /* an answer whose HTTP status or gRPC code is not ok */
    FL_LOAD_CANCELLED, /* the load stopped while it was in flight */
    FL_LOAD_NKINDS
} fl_load_kind_t;

typedef struct {
    uint64_t i; /* 0-based index in the schedule */
    fl_load_kind_t kind;
    int status;          /* HTTP status or gRPC code; -1 when there was no answer */
    const char *error;   /* "http_503", "refused", ... or NULL when ok */
    const char *message; /* gRPC message or socket error text; "" when none */
    const void *body;    /* the answer's body or message (valid during the callback) */
    size_t body_len;
    const fl_http_header_t *headers; /* HTTP, with want_headers: the answer's headers */
    size_t nheaders;
    uint64_t latency_ns; /* from the intended send time */
} fl_load_result_t;

typedef struct {
    fl_load_proto_t proto;
    fl_load_target_t *targets; /* copied */
    size_t ntargets;
    double rate;          /* requests per second, > 0 */
    uint64_t duration_ns; /* 0: until stopped (or count) */
    uint64_t count;       /* > 0: exactly that many requests (duration_ns is ignored) */
    unsigned concurrency; /* > 0 */
    uint64_t timeout_ns;  /* per request, from when it is sent; > 0 */
    /* the request to send as request i: 0 and *out (a reference the generator releases), or
     * nonzero to stop the load (the callee keeps its own error). NULL: always `msg`. */
    int (*next)(void *arg, uint64_t i, fl_load_msg_t **out);
    void *next_arg;
    fl_load_msg_t *msg; /* used when next is NULL (a reference is taken) */
    /* every finished request (NULL: none wanted) */
    void (*on_result)(void *arg, const fl_load_result_t *r);
    int want_headers; /* fill fl_load_result_t.headers */
    /* the load is over: its schedule ran out and every request ended, or it was stopped */
    void (*on_done)(void *arg);
    void *arg;
    /* each second's sample, in time order (NULL: none wanted), timed from base_ns
     * (uv_hrtime() units: the scenario's start) */
    void (*on_sample)(void *arg, const fl_sample_t *s);
    uint64_t base_ns;
} fl_load_opts_t;

typedef struct {
    uint64_t sent;              /* requests handed to a connection */
    uint64_t ok;                /* ended in success */
    uint64_t errors;            /* ended otherwise (cancelled ones excluded) */
    uint64_t inflight;          /* sent, not ended */
    uint64_t queued;            /* due, waiting for a free slot */
    uint64_t cancelled, unsent; /* in flight / queued or not yet due when the load stopped */
    uint64_t by_kind[FL_LOAD_NKINDS];
    const uint64_t *http_status; /* [1000]: non-ok answers per HTTP status */
    const uint64_t *grpc_code;   /* [17]: non-ok answers per gRPC code (16: unknown codes) */
    const fl_hdr_t *latency;     /* every ended request but the cancelled ones */
    double rate;                 /* requests sent per second of the load's running time */
    double elapsed;              /* seconds the load ran (so far) */
    int running, stopped;
} fl_load_stats_t;

/* Starts a load on loop (the first requests leave from a loop callback, never from inside
 * this call). 0, FL_EINVAL, FL_ENOMEM. */
int fl_load_start(uv_loop_t *loop, const fl_load_opts_t *opts, fl_load_t **out);
/* Stops sending: queued requests are dropped (unsent), those in flight cancelled; on_done
 * runs (from a loop callback) unless it has already. Idempotent. */
void fl_load_stop(fl_load_t *ld);
/* Running totals (pointers valid until the load is closed). */
void fl_load_stats(fl_load_t *ld, fl_load_stats_t *out);
/* Stops the load, closes every connection, frees it; cb(arg) once that is done. */
void fl_load_close(fl_load_t *ld, void (*cb)(void *arg), void *arg);
/* The name of a result's error kind ("timeout", "http_503", "grpc_14") into out. */
void fl_load_kind_name(fl_load_kind_t kind, int status, fl_load_proto_t proto, char *out, size_t n);

#endif
