/* A gRPC server on libuv: unary calls over HTTP/2 (nghttp2), cleartext (h2c with prior
 * knowledge, as gRPC clients speak to an "insecure" server).
 *
 * What it does for every service (PROTOCOL-HTTP2.md): checks :method POST (else HTTP 405),
 * content-type application/grpc[+proto|;...] (else HTTP 415, as the spec advises), the path
 * (UNIMPLEMENTED for an unknown service or method), grpc-encoding (identity only, else
 * UNIMPLEMENTED with grpc-accept-encoding), the message framing (a compressed flag without
 * an encoding is INTERNAL; zero or two request messages UNIMPLEMENTED, the spec's
 * "cardinality violation"), the size limit (RESOURCE_EXHAUSTED, as soon as the prefix
 * shows it, both for requests received and for answers the handler gives), and grpc-timeout
 * (the call fails with DEADLINE_EXCEEDED when it passes; the handler is told to drop it).
 * Memory per connection is bounded: at most 1000 concurrent streams; request messages and
 * answers held (received but not complete, answered but not yet sent) at most 16 MiB, or two
 * largest requests and answers if the limits make that more — a request that would take a
 * connection past it fails with RESOURCE_EXHAUSTED and its bytes are dropped; and a peer that
 * does not read its answers stops being read once 1 MiB of output waits (h2io.h).
 * Errors answer "trailers-only": one HEADERS frame with :status 200, grpc-status and a
 * percent-encoded grpc-message. It serves grpc.health.v1.Health/Check itself.
 *
 * Shutdown is graceful: the listener closes, health turns NOT_SERVING, each connection gets
 * a GOAWAY notice, then (after a PING round trip) a GOAWAY naming the last stream taken;
 * calls in flight finish, and connections close once done (or when the grace runs out). */
#ifndef FL_GRPC_SERVER_H
#define FL_GRPC_SERVER_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "services/runtime/grpc_status.h"

typedef struct fl_grpc_server fl_grpc_server_t;
typedef struct fl_grpc_srv_call fl_grpc_srv_call_t;

/* A method's handler: req (len bytes, the serialized request) is valid until the call is
 * answered. The handler answers with fl_grpc_srv_reply* or fl_grpc_srv_fail, at once or later;
 * one that answers later must set an on_cancel hook (fl_grpc_srv_call_on_cancel). */
typedef void (*fl_grpc_handler_t)(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len,
                                  void *arg);
/* The call ended before the handler answered (its deadline passed, the client cancelled or
 * went away, the server closed): the call is freed when this returns; never use it again. */
typedef void (*fl_grpc_cancel_t)(fl_grpc_srv_call_t *call, int code, void *arg);

typedef struct {
    size_t max_recv;     /* largest request message; 0: 4 MiB */
    size_t max_send;     /* largest answer message; 0: 4 MiB */
    int ignore_deadline; /* 1: grpc-timeout is read but not enforced (FAULTLINE_BUG) */
    /* Notable events as one line each (listening, draining, GOAWAY, deadlines), or NULL. */
    void (*log)(void *arg, const char *line);
    void *log_arg;
} fl_grpc_server_config_t;

/* Listens on host:port (port 0 picks one: see fl_grpc_server_port). Returns 0, FL_EINVAL
 * (bad address), FL_ENOMEM or a negative libuv code (UV_EADDRINUSE...). */
int fl_grpc_server_start(uv_loop_t *loop, const char *host, int port,
                         const fl_grpc_server_config_t *cfg, fl_grpc_server_t **out);
int fl_grpc_server_port(const fl_grpc_server_t *s);
/* Registers handler for path ("/hello.Greeter/SayHello"); the service part ("hello.Greeter")
 * is then SERVING in health checks. 0, FL_EEXISTS, FL_EINVAL (not "/service/method"),
 * FL_ENOMEM. */
int fl_grpc_server_add(fl_grpc_server_t *s, const char *path, fl_grpc_handler_t handler, void *arg);
/* Sets what Health/Check answers for service ("" is the server as a whole, SERVING from
 * the start). status: 1 SERVING, 2 NOT_SERVING (grpc.health.v1 values). A service never
 * named answers NOT_FOUND, as the health protocol says. 0 or FL_ENOMEM. */
int fl_grpc_server_set_health(fl_grpc_server_t *s, const char *service, int status);
/* Graceful shutdown (see above); then cb(s, arg) when every connection has closed, after
 * which s is freed. grace_ms bounds how long calls in flight may take; 0 closes at once. */
void fl_grpc_server_shutdown(fl_grpc_server_t *s, uint64_t grace_ms,
                             void (*cb)(fl_grpc_server_t *s, void *arg), void *arg);

/* Answers a call with one message (len bytes), or with the protobuf-c message m; then
 * grpc-status 0. An answer over max_send fails the call with RESOURCE_EXHAUSTED instead.
 * Returns 0 or FL_ENOMEM (the call then fails with INTERNAL); the call is gone after it. */
int fl_grpc_srv_reply(fl_grpc_srv_call_t *call, const uint8_t *msg, size_t len);
int fl_grpc_srv_reply_pb(fl_grpc_srv_call_t *call, const ProtobufCMessage *m);
/* Fails a call with code (not 0) and message (NULL: none), trailers-only (or, after
 * fl_grpc_srv_send_headers, in the trailers); the call is gone. */
void fl_grpc_srv_fail(fl_grpc_srv_call_t *call, int code, const char *message);
/* Sends the answer's headers (with the initial metadata added so far) before the answer,
 * as a server that streams would: the client then holds the call as committed (gRFC A6: no
 * retry), whatever status follows. 0, FL_ESTATE (the call is over) or FL_ENOMEM. */
int fl_grpc_srv_send_headers(fl_grpc_srv_call_t *call);
/* Adds a metadata entry to the answer: as an initial header (trailer 0) or in the trailers
 * (trailer 1; with a trailers-only answer both go in its one HEADERS frame). Lower-case
 * names, as HTTP/2 wants. 0 or FL_ENOMEM / FL_EINVAL (a reserved or pseudo header). */
int fl_grpc_srv_add_metadata(fl_grpc_srv_call_t *call, int trailer, const char *name,
                             const char *value);

void fl_grpc_srv_call_on_cancel(fl_grpc_srv_call_t *call, fl_grpc_cancel_t cb, void *arg);
/* A request header (metadata) by lower-case name, or NULL. */
const char *fl_grpc_srv_call_header(const fl_grpc_srv_call_t *call, const char *name);
const char *fl_grpc_srv_call_path(const fl_grpc_srv_call_t *call);
/* The client's address ("127.0.0.1:40312"), for logs. */
const char *fl_grpc_srv_call_peer(const fl_grpc_srv_call_t *call);
/* The client's grpc-timeout in ns, or 0 when it sent none. */
uint64_t fl_grpc_srv_call_timeout(const fl_grpc_srv_call_t *call);

#endif
