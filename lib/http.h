/* HTTP/1.1 message parsing, picohttpparser style: pure functions over bytes, with no I/O, no
 * allocation and no callbacks, so they are easy to test byte by byte and to fuzz. A head
 * parser gives back pointers into the caller's buffer; the chunked decoder works in place.
 * Framing is strict where request smuggling lives (bare CR, duplicate or conflicting
 * Content-Length, Transfer-Encoding with Content-Length, obsolete line folding) and lenient
 * where old clients differ harmlessly (a bare LF ends a line, empty lines before a request). */
#ifndef FL_HTTP_H
#define FL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define FL_HTTP_MAX_HEADERS 64

typedef struct {
    const char *name; /* not NUL-terminated; compare with name_len */
    size_t name_len;
    const char *value; /* surrounding whitespace trimmed; may be empty */
    size_t value_len;
} fl_http_header_t;

typedef struct {
    const char *method;
    size_t method_len;
    const char *target; /* as sent: origin-form "/path?query", absolute-form or "*" */
    size_t target_len;
    int minor_version; /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    fl_http_header_t headers[FL_HTTP_MAX_HEADERS];
    size_t nheaders;
    int64_t content_length; /* -1 when absent */
    int chunked;            /* 1 when the body is Transfer-Encoding: chunked */
    int keep_alive;         /* 1 when the connection may carry another request afterwards */
} fl_http_request_t;

typedef struct {
    int minor_version;
    int status; /* 100..999 */
    const char *reason;
    size_t reason_len;
    fl_http_header_t headers[FL_HTTP_MAX_HEADERS];
    size_t nheaders;
    /* Framing as the headers say it. The caller still knows better for responses that never
     * have a body (to HEAD, 1xx, 204, 304). Neither Content-Length nor chunked means the body
     * runs until the server closes the connection. */
    int64_t content_length; /* -1 when absent */
    int chunked;
    int keep_alive;
} fl_http_response_t;

/* Parses the head (request line and headers) at the start of buf[0..len). Returns the length
 * of the head including its final empty line (> 0), or FL_EAGAIN (incomplete: read more and
 * call again with the whole buffer), FL_EMALFORMED (not HTTP/1.x, bad syntax, bare CR,
 * invalid, duplicate or conflicting Content-Length, Transfer-Encoding other than chunked,
 * both Transfer-Encoding and Content-Length), FL_ETOOBIG (the head does not fit in max_head
 * bytes, or has more than FL_HTTP_MAX_HEADERS headers). Pointers in req point into buf. */
int fl_http_parse_request(const char *buf, size_t len, size_t max_head, fl_http_request_t *req);

/* Same for a response head: status line "HTTP/1.x NNN reason" (the reason may be missing).
 * A Transfer-Encoding that does not end in chunked is allowed here (body until close). */
int fl_http_parse_response(const char *buf, size_t len, size_t max_head, fl_http_response_t *res);

/* State of an in-place chunked body decoder. Initialise with fl_http_chunked_init. */
typedef struct {
    uint64_t limit;     /* the most decoded bytes accepted */
    uint64_t total;     /* decoded bytes so far */
    uint64_t remaining; /* data bytes left in the current chunk */
    size_t line;        /* bytes seen on the current size or trailer line */
    size_t trailer;     /* bytes of trailer section seen so far */
    int state;
    int digits;
} fl_http_chunked_t;

/* limit: the largest decoded body accepted (UINT64_MAX for no limit). */
void fl_http_chunked_init(fl_http_chunked_t *st, uint64_t limit);

/* Decodes buf[0..*len) in place: afterwards buf[0..*len) holds the decoded data of this call
 * (append it to what earlier calls gave). Returns:
 *   >= 0          the body is complete; that many bytes that followed the body (the next
 *                 message) were moved to buf[*len ..] right after the decoded data;
 *   FL_EAGAIN     all input was used and the body goes on: call again with more bytes;
 *   FL_EMALFORMED bad chunk size, missing CRLF, bare CR, bad trailer;
 *   FL_ETOOBIG    the body exceeds the limit, or a size line or the trailers are too long;
 *   FL_EINVAL     *len > INT_MAX.
 * Calling again after completion decodes nothing: *len becomes 0 and all input is returned
 * as following bytes. */
int fl_http_chunked_decode(fl_http_chunked_t *st, char *buf, size_t *len);

/* Value of the first header called name (case-insensitive), or NULL. *len gets its length
 * when len is not NULL. */
const char *fl_http_header_get(const fl_http_header_t *headers, size_t n, const char *name,
                               size_t *len);
/* A header's value as a decimal number (no sign, no blanks, fits in 64 bits): 0 and *out,
 * or FL_EMALFORMED when the header is absent or not such a number. */
int fl_http_header_u64(const fl_http_header_t *headers, size_t n, const char *name, uint64_t *out);

/* The reason phrase for a status code ("Not Found"), or "" for a code it does not know. */
const char *fl_http_status_text(int status);

/* Percent-decodes in[0..len) into out (always NUL-terminated on success); with plus_as_space
 * a '+' becomes a space (query strings). Returns the decoded length, FL_EMALFORMED (bad
 * %XX escape) or FL_ETOOBIG (out cannot hold the result and its NUL, or len > INT_MAX). */
int fl_http_url_decode(const char *in, size_t len, int plus_as_space, char *out, size_t outlen);

/* Finds parameter name in a query string (the part after '?', "a=1&b=x%20y&flag") and
 * decodes its value into out. A parameter without '=' has the empty value. Returns the
 * decoded length, FL_ENOTFOUND, FL_EMALFORMED or FL_ETOOBIG (as fl_http_url_decode). */
int fl_http_query_param(const char *query, size_t len, const char *name, char *out, size_t outlen);

#endif
