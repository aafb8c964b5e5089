/* A small HTTP/1.1 server on libuv, for the fakes, the collector and the reference services.
 * Each request becomes an exchange handed to one handler; the handler answers it with
 * fl_httpd_respond, at once or later (a blocking query may hold it for minutes). Requests on
 * one connection are answered in order: the next pipelined request is not even parsed before
 * the current answer has been written, and reading pauses while unparsed input piles up, so
 * memory stays bounded. Keep-alive, HTTP/1.0, Content-Length and chunked bodies, Expect:
 * 100-continue and HEAD are handled here; bad input is answered 400, 413 or 431 and the
 * connection closed. Every response carries Content-Length (except 1xx, 204). A response is
 * written at once when the socket takes it (one write(2), no copy kept); only what it does
 * not take is copied and queued.
 *
 * Writing to a peer that has gone raises SIGPIPE: processes using this must ignore it. */
#ifndef FL_HTTPD_H
#define FL_HTTPD_H

#include <stddef.h>
#include <uv.h>

#include "lib/http.h"

typedef struct fl_httpd fl_httpd_t;
typedef struct fl_httpd_exchange fl_httpd_exchange_t;

/* Called once per complete request, with its body read. The exchange stays valid until
 * fl_httpd_respond has been called on it, or until on_abort has returned for it. */
typedef void (*fl_httpd_handler_t)(fl_httpd_exchange_t *ex, void *arg);
/* Called when the connection of an unanswered exchange goes away: the client closed, reset
 * or half-closed it (a client that stops sending counts as gone while its answer is pending),
 * or fl_httpd_close. The exchange is freed when this returns; do not respond to it. */
typedef void (*fl_httpd_abort_t)(fl_httpd_exchange_t *ex, void *arg);

typedef struct {
    fl_httpd_handler_t handler; /* required */
    fl_httpd_abort_t on_abort;  /* optional; needed by handlers that answer later */
    void *arg;                  /* passed to both */
    size_t max_head;            /* request line + headers; 0 means 16 KiB; larger: 431 */
    size_t max_body;            /* decoded body; 0 means 1 MiB; larger: 413 */
} fl_httpd_config_t;

/* Listens on host:port (an IPv4 or IPv6 literal, or "localhost"; NULL means 127.0.0.1; port
 * 0 picks a free one, see fl_httpd_port). Returns 0, FL_EINVAL (bad argument or address),
 * FL_EADDRINUSE, FL_ENOMEM or FL_EIO. On failure after the socket was created its handle is
 * still closing: run the loop before uv_loop_close. */
int fl_httpd_start(uv_loop_t *loop, const char *host, int port, const fl_httpd_config_t *cfg,
                   fl_httpd_t **out);

/* The port actually listened on, or a negative error. */
int fl_httpd_port(const fl_httpd_t *h);

/* Stops listening and closes every connection at once (unanswered exchanges get on_abort).
 * cb (optional) runs when every handle is closed; h is freed right after it returns. Returns
 * 0, FL_EINVAL, or FL_ESTATE when already closing. */
int fl_httpd_close(fl_httpd_t *h, void (*cb)(fl_httpd_t *h, void *arg), void *arg);

/* Answers the exchange: status 200..999, extra_headers NULL or complete header lines
 * ("X-Consul-Index: 7\r\n", the final CRLF may be left out; a "Connection: close" there is
 * honoured), content_type NULL for none, body of len bytes (not sent for HEAD, 204, 304).
 * Content-Length is added (except for 204). Returns 0, FL_EINVAL (bad status, ex, or a
 * NULL body with len > 0; the exchange stays valid), FL_ESTATE (already answered, seen only
 * from inside the handler), FL_ECLOSED (the connection went away meanwhile; no on_abort
 * follows) or FL_ENOMEM/FL_EIO (the connection is closed). Except for FL_EINVAL the exchange is
 * invalid once this returns, unless called from inside the handler, where it stays valid until the
 * handler returns. */
int fl_httpd_respond(fl_httpd_exchange_t *ex, int status, const char *extra_headers,
                     const char *content_type, const void *body, size_t len);

/* One answer for many exchanges (e.g. every client waiting for the same change): the
 * response is formatted once, then each fl_httpd_respond_prepared writes those same bytes.
 * fl_httpd_prepare takes what fl_httpd_respond takes, copies it, and returns 0, FL_EINVAL or
 * FL_ENOMEM. fl_httpd_respond_prepared(ex, p) answers exactly as fl_httpd_respond(ex, ...)
 * with p's parts would, byte for byte (an HTTP/1.0, HEAD or closing request gets its own
 * formatting), with the same return values; p may be freed as soon as it returns. */
typedef struct fl_httpd_prepared fl_httpd_prepared_t;
int fl_httpd_prepare(int status, const char *extra_headers, const char *content_type,
                     const void *body, size_t len, fl_httpd_prepared_t **out);
int fl_httpd_respond_prepared(fl_httpd_exchange_t *ex, const fl_httpd_prepared_t *p);
/* Answers exs[i] with ps[i] for each i < n, exactly as fl_httpd_respond_prepared one by one
 * (an exchange must appear once), but writes to every socket first and does the rest after,
 * so that the last of many clients is answered sooner. NULL entries are skipped. */
void fl_httpd_respond_prepared_batch(fl_httpd_exchange_t *const *exs,
                                     const fl_httpd_prepared_t *const *ps, size_t n);
void fl_httpd_prepared_free(fl_httpd_prepared_t *p);

/* Request accessors. Every string is NUL-terminated and lives as long as the exchange. */
const char *fl_httpd_method(const fl_httpd_exchange_t *ex); /* "GET" */
const char *fl_httpd_target(const fl_httpd_exchange_t *ex); /* "/v1/kv/a%2Fb?index=3" */
const char *fl_httpd_path(const fl_httpd_exchange_t *ex);   /* "/v1/kv/a%2Fb", not decoded */
const char *fl_httpd_query(const fl_httpd_exchange_t *ex);  /* "index=3", or "" */
/* Value of the first header called name (case-insensitive), or NULL. */
const char *fl_httpd_header(const fl_httpd_exchange_t *ex, const char *name);
/* The parsed head: every header, the HTTP version, keep-alive. Names and values are also
 * NUL-terminated at name_len and value_len. */
const fl_http_request_t *fl_httpd_request(const fl_httpd_exchange_t *ex);
/* The decoded body (chunked or not); *len gets its length when len is not NULL. */
const char *fl_httpd_body(const fl_httpd_exchange_t *ex, size_t *len);
/* The client's address, "127.0.0.1:41234" or "[::1]:41234". */
const char *fl_httpd_exchange_peer(const fl_httpd_exchange_t *ex);
/* Decodes query parameter name into buf: as fl_http_query_param (the decoded length,
 * FL_ENOTFOUND, FL_EMALFORMED or FL_ETOOBIG). */
int fl_httpd_query_param(const fl_httpd_exchange_t *ex, const char *name, char *buf, size_t buflen);
/* One pointer of the handler's own, e.g. to find its state again in on_abort. */
void fl_httpd_exchange_set_data(fl_httpd_exchange_t *ex, void *data);
void *fl_httpd_exchange_data(const fl_httpd_exchange_t *ex);

#endif
