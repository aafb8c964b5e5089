/* A small HTTP/1.1 client on libuv: one request on one connection, answered through a
 * callback, bounded in time and size. What the fake Consul's HTTP checks need (and the
 * harness's own one-off requests): no pooling, no redirects, no TLS. Responses are parsed
 * with lib/http.h (Content-Length, chunked, or until EOF).
 *
 * Writing to a peer that has gone raises SIGPIPE: processes using this must ignore it. */
#ifndef FL_HTTPC_H
#define FL_HTTPC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/http.h"

typedef struct fl_httpc_req fl_httpc_req_t;

typedef struct {
    int status;       /* the HTTP status, or 0 when error is set */
    int error;        /* 0, or: FL_ETIMEOUT, FL_EMALFORMED (bad response), FL_ETOOBIG (body
                         over max_body; or a head over 64 KiB or FL_HTTP_MAX_HEADERS headers,
                         or chunk framing too long), FL_ECLOSED (EOF before a complete
                         response), FL_ENOMEM, or a negative libuv code (UV_ECONNREFUSED,
                         UV_ECONNRESET, ...) */
    const char *body; /* valid during the callback only; NUL-terminated */
    size_t body_len;
    const fl_http_header_t *headers; /* valid during the callback only */
    size_t nheaders;
    uint64_t total_ns; /* from the call to the answer */
} fl_httpc_result_t;

typedef void (*fl_httpc_cb)(void *arg, const fl_httpc_result_t *res);

typedef struct {
    const char *method; /* "GET" when NULL */
    const char *host;   /* an IPv4 or IPv6 literal: "127.0.0.1", "::1" or "[::1]" */
    int port;
    const char *target;  /* "/path?query"; "/" when NULL */
    const char *headers; /* extra header lines, each ending "\r\n", or NULL */
    const void *body;
    size_t body_len;
    uint64_t timeout_ns; /* the whole exchange, connect included; 0: none */
    size_t max_body;     /* 0: 8 MiB */
} fl_httpc_opts_t;

/* Starts a request; cb(arg, result) is called exactly once, from a loop callback (never
 * from inside this call), unless the request is cancelled first. Returns 0, or FL_EINVAL
 * (bad host or options) or FL_ENOMEM, in which case cb is never called. *out (if not NULL)
 * gets a handle for fl_httpc_cancel, valid until cb runs. */
int fl_httpc_request(uv_loop_t *loop, const fl_httpc_opts_t *opts, fl_httpc_cb cb, void *arg,
                     fl_httpc_req_t **out);
/* Abandons a request: cb will not be called; its handles close (and its memory is freed)
 * on the loop later. */
void fl_httpc_cancel(fl_httpc_req_t *req);
/* What went wrong with a request, in a few words for a log line: the error, or the status and
 * the first line of the body (where servers such as Consul put their reason), with anything
 * unprintable replaced by '?'. */
void fl_httpc_describe(const fl_httpc_result_t *res, char *out, size_t outlen);

#endif
