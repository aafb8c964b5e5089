/* A gRPC client on libuv: unary calls over HTTP/2 (nghttp2), cleartext.
 *
 * The model, made for balancing and retries to sit on (issue 7): a channel is a set of
 * backends (fl_grpc_backend_t: one address each); a backend holds at most one HTTP/2
 * connection that takes new calls, opened when first needed and shared by every call to
 * that backend; a call (fl_grpc_call_t) is one attempt on one backend. A balancer picks a
 * backend per call from their states and in-flight counts; a retry layer starts a new call.
 *
 * Statuses follow the gRPC spec: a refused or failed connection, or one lost before the
 * answer, is UNAVAILABLE; the deadline (the call fails at it, sends RST_STREAM CANCEL, and
 * the server is told through grpc-timeout) is DEADLINE_EXCEEDED; a non-200 answer without
 * grpc-status maps by HTTP status; a reset stream by its HTTP/2 code; an answer over the
 * receive limit is RESOURCE_EXHAUSTED; zero or two answer messages UNIMPLEMENTED. When the
 * server sends GOAWAY, its connection takes no new calls (the next call opens another one);
 * calls it refused without processing them (beyond the GOAWAY's last stream, or
 * REFUSED_STREAM) are started again on a new connection, transparently, at most twice. */
#ifndef FL_GRPC_CLIENT_H
#define FL_GRPC_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "services/runtime/grpc_status.h"

typedef struct fl_grpc_channel fl_grpc_channel_t;
typedef struct fl_grpc_backend fl_grpc_backend_t;
typedef struct fl_grpc_call fl_grpc_call_t;

typedef struct {
    size_t max_recv;             /* largest answer message; 0: 4 MiB */
    size_t max_send;             /* largest request message; 0: 4 MiB */
    uint64_t connect_timeout_ms; /* 0: 20 s; a call's own deadline may end it sooner */
} fl_grpc_channel_opts_t;

typedef enum {
    FL_GRPC_IDLE,              /* no connection (none needed yet, or the last one ended) */
    FL_GRPC_CONNECTING,        /* a connection is being opened */
    FL_GRPC_READY,             /* a connection takes calls */
    FL_GRPC_TRANSIENT_FAILURE, /* the last connection attempt failed */
} fl_grpc_backend_state_t;

typedef struct {
    int code;            /* FL_GRPC_* */
    const char *message; /* decoded grpc-message, or ours; "" when none */
    const uint8_t *msg;  /* the answer message when code is OK, else NULL */
    size_t msg_len;
    const char *meta; /* "name\0value\0"... the answer's headers then trailers */
    size_t meta_len;
    int transparent_retries; /* times the call was started again after a refusal */
    int committed;           /* the server sent response headers before its trailers (not a
                                trailers-only answer): per gRFC A6 such a call is not retried */
    uint64_t elapsed_ns;
} fl_grpc_result_t;

/* Called exactly once per call, from a loop callback (never from inside fl_grpc_call_start),
 * unless the call is cancelled first. res and what it points to live during the call only. */
typedef void (*fl_grpc_done_t)(void *arg, const fl_grpc_result_t *res);

typedef struct {
    const char *path;   /* "/hello.Greeter/SayHello" */
    const uint8_t *req; /* the serialized request (copied) */
    size_t req_len;
    uint64_t timeout_ns; /* the deadline from now; 0: none */
    /* extra request metadata: "name\0value\0"... (lower-case names), or NULL */
    const char *meta;
    size_t meta_len;
} fl_grpc_call_opts_t;

/* 0 or FL_ENOMEM. */
int fl_grpc_channel_new(uv_loop_t *loop, const fl_grpc_channel_opts_t *opts,
                        fl_grpc_channel_t **out);
/* Adds a backend at addr ("127.0.0.1:50051", "[::1]:50051", "localhost:50051"). 0,
 * FL_EINVAL (not an IP:port) or FL_ENOMEM. Nothing connects until a call needs it (or
 * fl_grpc_backend_connect). */
int fl_grpc_channel_add(fl_grpc_channel_t *ch, const char *addr, fl_grpc_backend_t **out);
/* Removes a backend: calls in flight on it go on to their end; it takes no new ones. */
void fl_grpc_channel_remove(fl_grpc_channel_t *ch, fl_grpc_backend_t *be);
/* Closes everything: calls still in flight end with CANCELLED (their callbacks run), then
 * cb(arg) once every handle has closed and the channel is freed. */
void fl_grpc_channel_close(fl_grpc_channel_t *ch, void (*cb)(void *arg), void *arg);
size_t fl_grpc_channel_backends(const fl_grpc_channel_t *ch, fl_grpc_backend_t **out, size_t max);

const char *fl_grpc_backend_addr(const fl_grpc_backend_t *be);
fl_grpc_backend_state_t fl_grpc_backend_state(const fl_grpc_backend_t *be);
/* Calls started on this backend and not yet ended (least-request balancing). */
size_t fl_grpc_backend_inflight(const fl_grpc_backend_t *be);
/* HTTP/2 connections opened to this backend so far (successfully connected). */
uint64_t fl_grpc_backend_connections(const fl_grpc_backend_t *be);
/* Opens the connection now, if there is none. */
void fl_grpc_backend_connect(fl_grpc_backend_t *be);

/* Starts one attempt of a unary call on backend be. 0, FL_EINVAL (no path, removed
 * backend) or FL_ENOMEM, in which case done is never called. *out (if not NULL) is the
 * call, valid until done runs. A request over max_send ends in RESOURCE_EXHAUSTED. */
int fl_grpc_call_start(fl_grpc_backend_t *be, const fl_grpc_call_opts_t *o, fl_grpc_done_t done,
                       void *arg, fl_grpc_call_t **out);
/* The same with a protobuf-c request. */
int fl_grpc_call_start_pb(fl_grpc_backend_t *be, const fl_grpc_call_opts_t *o,
                          const ProtobufCMessage *req, fl_grpc_done_t done, void *arg,
                          fl_grpc_call_t **out);
/* Abandons a call: RST_STREAM CANCEL goes to the server, done is not called. */
void fl_grpc_call_cancel(fl_grpc_call_t *call);

/* A metadata value of a result by lower-case name, or NULL. */
const char *fl_grpc_result_meta(const fl_grpc_result_t *res, const char *name);

#endif
