/* Unit tests for lib/http: request and response heads (valid forms, every rejection the
 * parser promises, and every split point of each message), the in-place chunked decoder,
 * and the header, status, URL-decoding and query helpers. Every parse runs on an exact-size
 * heap copy so that ASan catches any read past the end. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/http.h"

#define MAX_HEAD 16384

static int parse_req_n(const char *s, size_t len, size_t max_head, fl_http_request_t *req)
{
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, len);
    int rc = fl_http_parse_request(copy, len, max_head, req);
    free(copy);
    return rc;
}

/* For tests that look at the parsed pointers: parses the string in place. */
static int parse_req(const char *s, fl_http_request_t *req)
{
    return fl_http_parse_request(s, strlen(s), MAX_HEAD, req);
}

static int parse_res(const char *s, fl_http_response_t *res)
{
    return fl_http_parse_response(s, strlen(s), MAX_HEAD, res);
}

/* For tests of the verdict only: parses an exact-size heap copy. */
static int parse_res_copy(const char *s)
{
    size_t len = strlen(s);
    fl_http_response_t res;
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, len);
    int rc = fl_http_parse_response(copy, len, MAX_HEAD, &res);
    free(copy);
    return rc;
}

static int span_eq(const char *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

START_TEST(request_simple)
{
    const char *s = "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n\r\n";
    fl_http_request_t req;
    int rc = fl_http_parse_request(s, strlen(s), MAX_HEAD, &req);
    ck_assert_int_eq(rc, (int)strlen(s));
    ck_assert(span_eq(req.method, req.method_len, "GET"));
    ck_assert(span_eq(req.target, req.target_len, "/index.html?x=1"));
    ck_assert_int_eq(req.minor_version, 1);
    ck_assert_uint_eq(req.nheaders, 2);
    ck_assert(span_eq(req.headers[0].name, req.headers[0].name_len, "Host"));
    ck_assert(span_eq(req.headers[0].value, req.headers[0].value_len, "example.com"));
    ck_assert(span_eq(req.headers[1].name, req.headers[1].name_len, "User-Agent"));
    ck_assert(span_eq(req.headers[1].value, req.headers[1].value_len, "t/1"));
    ck_assert_int_eq(req.content_length, -1);
    ck_assert_int_eq(req.chunked, 0);
    ck_assert_int_eq(req.keep_alive, 1);
}
END_TEST

START_TEST(request_head_length_excludes_body)
{
    const char *s = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n";
    fl_http_request_t req;
    ck_assert_int_eq(parse_req(s, &req), (int)(strstr(s, "hello") - s));
    ck_assert_int_eq(req.content_length, 5);
    ck_assert(span_eq(req.method, req.method_len, "POST"));
}
END_TEST

START_TEST(request_keep_alive_rules)
{
    fl_http_request_t req;
    ck_assert_int_gt(parse_req("GET / HTTP/1.0\r\n\r\n", &req), 0);
    ck_assert_int_eq(req.minor_version, 0);
    ck_assert_int_eq(req.keep_alive, 0);
    ck_assert_int_gt(parse_req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req), 0);
    ck_assert_int_eq(req.keep_alive, 1);
    ck_assert_int_gt(parse_req("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &req), 0);
    ck_assert_int_eq(req.keep_alive, 0);
    ck_assert_int_gt(parse_req("GET / HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\n\r\n", &req), 0);
    ck_assert_int_eq(req.keep_alive, 0);
    ck_assert_int_gt(parse_req("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", &req), 0);
    ck_assert_int_eq(req.keep_alive, 1);
    ck_assert_int_gt(parse_req("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &req), 0);
    ck_assert_int_eq(req.keep_alive, 0);
}
END_TEST

START_TEST(request_framing)
{
    fl_http_request_t req;
    ck_assert_int_gt(parse_req("POST / HTTP/1.1\r\nContent-Length:  42 \r\n\r\n", &req), 0);
    ck_assert_int_eq(req.content_length, 42);
    ck_assert_int_eq(req.chunked, 0);
    ck_assert_int_gt(parse_req("POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n", &req), 0);
    ck_assert_int_eq(req.content_length, 0);
    ck_assert_int_gt(parse_req("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &req), 0);
    ck_assert_int_eq(req.chunked, 1);
    ck_assert_int_eq(req.content_length, -1);
    ck_assert_int_gt(
        parse_req("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n", &req), 0);
    ck_assert_int_eq(req.content_length, INT64_MAX);
}
END_TEST

START_TEST(request_lenient_forms)
{
    fl_http_request_t req;
    /* bare LF line ends, empty lines before the request, empty and odd values */
    const char *s = "\r\n\nPUT /a HTTP/1.1\nX-Empty:\nX-Tab:\tv a l\t \nX-Utf8: caf\xc3\xa9\n\n";
    ck_assert_int_eq(parse_req(s, &req), (int)strlen(s));
    ck_assert(span_eq(req.method, req.method_len, "PUT"));
    ck_assert_uint_eq(req.nheaders, 3);
    ck_assert_uint_eq(req.headers[0].value_len, 0);
    ck_assert(span_eq(req.headers[1].value, req.headers[1].value_len, "v a l"));
    ck_assert(span_eq(req.headers[2].value, req.headers[2].value_len, "caf\xc3\xa9"));
    ck_assert_int_gt(parse_req("OPTIONS * HTTP/1.1\r\n\r\n", &req), 0);
    ck_assert(span_eq(req.target, req.target_len, "*"));
    ck_assert_int_gt(parse_req("GET http://h:1/p?q HTTP/1.1\r\n\r\n", &req), 0);
    ck_assert(span_eq(req.target, req.target_len, "http://h:1/p?q"));
}
END_TEST

static const char *const malformed_requests[] = {
    "GET  / HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1 \r\n\r\n",
    " GET / HTTP/1.1\r\n\r\n",
    "GET /\r\n\r\n",
    "GET / HTTP/2.0\r\n\r\n",
    "GET / HTTP/1.10\r\n\r\n",
    "GET / HTTP/1.x\r\n\r\n",
    "GET / http/1.1\r\n\r\n",
    "G(T / HTTP/1.1\r\n\r\n",
    "GET /a b HTTP/1.1\r\n\r\n",
    "GET /a\x01 HTTP/1.1\r\n\r\n",
    "GET /a\x7f HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\rX\n\r\n",
    "GET / HTTP/1.1\r\nHost example.com\r\n\r\n",
    "GET / HTTP/1.1\r\nHost : example.com\r\n\r\n",
    "GET / HTTP/1.1\r\n: x\r\n\r\n",
    "GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
    "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
    "GET / HTTP/1.1\r\nX-A: a\r\r\n\r\n",
    "GET / HTTP/1.1\r\nX-A: a\x01"
    "b\r\n\r\n",
    "GET / HTTP/1.1\r\nX-A: a\r\n\r\r\n",
    "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length:\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
};

START_TEST(request_malformed)
{
    fl_http_request_t req;
    const char *s = malformed_requests[_i];
    ck_assert_msg(parse_req_n(s, strlen(s), MAX_HEAD, &req) == FL_EMALFORMED,
                  "case %d not rejected: %s", _i, s);
}
END_TEST

START_TEST(request_too_big)
{
    fl_http_request_t req;
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t len = strlen(s);
    ck_assert_int_eq(parse_req_n(s, len, len, &req), (int)len);
    ck_assert_int_eq(parse_req_n(s, len, len - 1, &req), FL_ETOOBIG);
    ck_assert_int_eq(parse_req_n(s, len - 1, len, &req), FL_EAGAIN);
    ck_assert_int_eq(parse_req_n(s, 5, 5, &req), FL_ETOOBIG);
    ck_assert_int_eq(parse_req_n(s, 0, 5, &req), FL_EAGAIN);

    /* 64 headers fit, 65 do not */
    char big[4096];
    size_t n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < FL_HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "X-%d: v\r\n", i);
    snprintf(big + n, sizeof big - n, "\r\n");
    ck_assert_int_eq(parse_req(big, &req), (int)strlen(big));
    ck_assert_uint_eq(req.nheaders, FL_HTTP_MAX_HEADERS);
    snprintf(big + n, sizeof big - n, "X-last: v\r\n\r\n");
    ck_assert_int_eq(parse_req(big, &req), FL_ETOOBIG);
}
END_TEST

static const char *const split_cases[] = {
    "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n\r\n",
    "\r\nPOST /p HTTP/1.0\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n",
    "PUT /a HTTP/1.1\nTransfer-Encoding: chunked\nX-E:\n\n",
    "GET / HTTP/1.1\r\nHost : bad\r\n\r\n",
    "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
};

/* Every prefix of a message is "need more" or the final verdict, and once a verdict is
 * reached it stays: splitting the input anywhere cannot change the outcome. */
START_TEST(request_every_split_point)
{
    const char *s = split_cases[_i];
    size_t len = strlen(s);
    fl_http_request_t whole, part;
    int final = parse_req_n(s, len, MAX_HEAD, &whole);
    int verdict_from = -1;
    for (size_t k = 0; k < len; k++) {
        int rc = parse_req_n(s, k, MAX_HEAD, &part);
        if (final > 0) {
            ck_assert_msg(rc == FL_EAGAIN, "case %d prefix %zu gave %d", _i, k, rc);
            continue;
        }
        if (rc != FL_EAGAIN) {
            ck_assert_int_eq(rc, final);
            if (verdict_from < 0)
                verdict_from = (int)k;
        } else {
            ck_assert_msg(verdict_from < 0, "case %d: verdict lost at %zu", _i, k);
        }
    }
    if (final > 0) {
        ck_assert_int_eq(final, (int)len);
        /* the same bytes followed by more data give the same head */
        char *more = malloc(len + 8);
        memcpy(more, s, len);
        memcpy(more + len, "XXXXXXXX", 8);
        ck_assert_int_eq(fl_http_parse_request(more, len + 8, MAX_HEAD, &part), final);
        ck_assert_uint_eq(part.nheaders, whole.nheaders);
        ck_assert_int_eq(part.content_length, whole.content_length);
        ck_assert_int_eq(part.chunked, whole.chunked);
        ck_assert_int_eq(part.keep_alive, whole.keep_alive);
        free(more);
    }
}
END_TEST

START_TEST(response_valid)
{
    fl_http_response_t res;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Consul-Index: 7\r\n\r\nhello";
    ck_assert_int_eq(parse_res(s, &res), (int)(strlen(s) - 5));
    ck_assert_int_eq(res.status, 200);
    ck_assert(span_eq(res.reason, res.reason_len, "OK"));
    ck_assert_int_eq(res.content_length, 5);
    ck_assert_int_eq(res.keep_alive, 1);
    ck_assert_uint_eq(res.nheaders, 2);

    ck_assert_int_gt(parse_res("HTTP/1.1 404 Not Found\r\n\r\n", &res), 0);
    ck_assert_int_eq(res.status, 404);
    ck_assert(span_eq(res.reason, res.reason_len, "Not Found"));
    ck_assert_int_gt(parse_res("HTTP/1.1 204\r\n\r\n", &res), 0);
    ck_assert_int_eq(res.status, 204);
    ck_assert_uint_eq(res.reason_len, 0);
    ck_assert_int_gt(parse_res("HTTP/1.1 299 \r\n\r\n", &res), 0);
    ck_assert_int_eq(res.status, 299);
    ck_assert_uint_eq(res.reason_len, 0);
    ck_assert_int_gt(parse_res("HTTP/1.0 200 OK\r\n\r\n", &res), 0);
    ck_assert_int_eq(res.keep_alive, 0);
    ck_assert_int_gt(parse_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &res),
                     0);
    ck_assert_int_eq(res.chunked, 1);
    ck_assert_int_gt(parse_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &res), 0);
    ck_assert_int_eq(res.chunked, 0);
    ck_assert_int_eq(res.content_length, -1);
    ck_assert_int_eq(parse_res("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", &res), FL_EAGAIN);
}
END_TEST

START_TEST(response_malformed)
{
    static const char *const bad[] = {
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 abc\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(parse_res_copy(bad[i]) == FL_EMALFORMED, "case %zu: %s", i, bad[i]);
}
END_TEST

/* Decodes s as a whole, copying it so the decoder works on its own buffer. */
static int decode_all(const char *s, uint64_t limit, char *out, size_t *outlen, char *rest,
                      size_t *restlen)
{
    size_t len = strlen(s);
    char *buf = malloc(len ? len : 1);
    memcpy(buf, s, len);
    fl_http_chunked_t st;
    fl_http_chunked_init(&st, limit);
    size_t n = len;
    int rc = fl_http_chunked_decode(&st, buf, &n);
    if (rc >= 0 || rc == FL_EAGAIN) {
        memcpy(out, buf, n);
        *outlen = n;
        if (rc >= 0 && rest) {
            memcpy(rest, buf + n, (size_t)rc);
            *restlen = (size_t)rc;
        }
    }
    free(buf);
    return rc;
}

START_TEST(chunked_basic)
{
    char out[256], rest[64];
    size_t n, r;
    ck_assert_int_eq(
        decode_all("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", UINT64_MAX, out, &n, rest, &r), 0);
    ck_assert_uint_eq(n, 11);
    ck_assert_mem_eq(out, "hello world", 11);

    ck_assert_int_eq(decode_all("5;name=\"v\" ; x\r\nhello\r\n0 ;last\r\nX-Trailer: 1\r\nY: "
                                "2\r\n\r\nGET / HTTP/1.1",
                                UINT64_MAX, out, &n, rest, &r),
                     14);
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(out, "hello", 5);
    ck_assert_mem_eq(rest, "GET / HTTP/1.1", 14);

    ck_assert_int_eq(
        decode_all("A\r\n0123456789\r\na\n0123456789\n0\n\n", UINT64_MAX, out, &n, NULL, NULL), 0);
    ck_assert_uint_eq(n, 20);
    ck_assert_int_eq(decode_all("000\r\n\r\n", UINT64_MAX, out, &n, NULL, NULL), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(decode_all("5\r\nhel", UINT64_MAX, out, &n, NULL, NULL), FL_EAGAIN);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(decode_all("5\r\nhello\r\n0\r\n\r", UINT64_MAX, out, &n, NULL, NULL),
                     FL_EAGAIN);
}
END_TEST

START_TEST(chunked_errors)
{
    char out[8192];
    size_t n;
    ck_assert_int_eq(decode_all("x\r\n", UINT64_MAX, out, &n, NULL, NULL), FL_EMALFORMED);
    ck_assert_int_eq(decode_all("\r\n", UINT64_MAX, out, &n, NULL, NULL), FL_EMALFORMED);
    ck_assert_int_eq(decode_all("5 x\r\n", UINT64_MAX, out, &n, NULL, NULL), FL_EMALFORMED);
    ck_assert_int_eq(decode_all("5\rX", UINT64_MAX, out, &n, NULL, NULL), FL_EMALFORMED);
    ck_assert_int_eq(decode_all("5\r\nhelloX\r\n", UINT64_MAX, out, &n, NULL, NULL), FL_EMALFORMED);
    ck_assert_int_eq(decode_all("5\r\nhello\rX", UINT64_MAX, out, &n, NULL, NULL), FL_EMALFORMED);
    ck_assert_int_eq(decode_all("-5\r\n", UINT64_MAX, out, &n, NULL, NULL), FL_EMALFORMED);
    ck_assert_int_eq(decode_all("0\r\nX: a\rb\r\n\r\n", UINT64_MAX, out, &n, NULL, NULL),
                     FL_EMALFORMED);
    ck_assert_int_eq(decode_all("0\r\n\rX", UINT64_MAX, out, &n, NULL, NULL), FL_EMALFORMED);
    ck_assert_int_eq(decode_all("5;a\x01\r\n", UINT64_MAX, out, &n, NULL, NULL), FL_EMALFORMED);
    /* limits: the body, a size that overflows, an endless extension or trailer */
    ck_assert_int_eq(decode_all("5\r\nhello\r\n0\r\n\r\n", 5, out, &n, NULL, NULL), 0);
    ck_assert_int_eq(decode_all("6\r\nhello!\r\n0\r\n\r\n", 5, out, &n, NULL, NULL), FL_ETOOBIG);
    ck_assert_int_eq(decode_all("3\r\nhel\r\n3\r\nlo!\r\n0\r\n\r\n", 5, out, &n, NULL, NULL),
                     FL_ETOOBIG);
    ck_assert_int_eq(decode_all("FFFFFFFFFFFFFFFFF\r\n", UINT64_MAX, out, &n, NULL, NULL),
                     FL_ETOOBIG);
    char *big = malloc(40000);
    memset(big, 'x', 40000);
    memcpy(big, "5;", 2);
    big[39999] = '\0';
    ck_assert_int_eq(decode_all(big, UINT64_MAX, out, &n, NULL, NULL), FL_ETOOBIG);
    memcpy(big, "0\r\nX: ", 6);
    ck_assert_int_eq(decode_all(big, UINT64_MAX, out, &n, NULL, NULL), FL_ETOOBIG);
    free(big);
}
END_TEST

static const char *const chunked_split_cases[] = {
    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT",
    "1;a=b\r\nx\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\nU: 2\r\n\r\n",
    "3\nabc\n0\n\nREST",
    "5\r\nhello\r\nZ\r\n",
};

/* Feeding the body in two pieces split anywhere, or one byte at a time, gives the same
 * decoded body and the same following bytes as feeding it whole. The pieces are handled as
 * the server does: each call works on what is left after earlier decoded output. */
static int feed(const char *s, const size_t *cuts, size_t ncuts, char *body, size_t *blen,
                char *rest, size_t *rlen)
{
    size_t len = strlen(s), have = 0, used = 0, base = 0;
    char *buf = malloc(len + 1);
    fl_http_chunked_t st;
    fl_http_chunked_init(&st, 1000);
    int rc = FL_EAGAIN;
    for (size_t c = 0; c <= ncuts && rc == FL_EAGAIN; c++) {
        size_t upto = c < ncuts ? cuts[c] : len;
        memcpy(buf + have, s + used, upto - used);
        have += upto - used;
        used = upto;
        size_t n = have - base;
        rc = fl_http_chunked_decode(&st, buf + base, &n);
        if (rc == FL_EAGAIN || rc >= 0) {
            base += n;
            have = base + (rc >= 0 ? (size_t)rc : 0);
        }
    }
    memcpy(body, buf, base);
    *blen = base;
    if (rc >= 0) {
        size_t tail = have - base + (len - used);
        memcpy(rest, buf + base, have - base);
        memcpy(rest + (have - base), s + used, len - used);
        *rlen = tail;
    }
    free(buf);
    return rc >= 0 ? 0 : rc; /* how many bytes followed is in *rlen */
}

START_TEST(chunked_every_split_point)
{
    const char *s = chunked_split_cases[_i];
    size_t len = strlen(s);
    char body0[256], rest0[256], body[256], rest[256];
    size_t b0, r0 = 0, b, r = 0;
    int rc0 = feed(s, NULL, 0, body0, &b0, rest0, &r0);
    for (size_t k = 0; k <= len; k++) {
        int rc = feed(s, &k, 1, body, &b, rest, &r);
        ck_assert_msg(rc == rc0, "case %d split %zu: %d vs %d", _i, k, rc, rc0);
        if (rc0 >= 0) {
            ck_assert_uint_eq(b, b0);
            ck_assert_mem_eq(body, body0, b0);
            ck_assert_uint_eq(r, r0);
            ck_assert_mem_eq(rest, rest0, r0);
        }
    }
    size_t cuts[256];
    for (size_t k = 0; k < len; k++)
        cuts[k] = k + 1;
    int rc = feed(s, cuts, len - 1, body, &b, rest, &r);
    ck_assert_int_eq(rc, rc0);
    if (rc0 >= 0) {
        ck_assert_uint_eq(b, b0);
        ck_assert_mem_eq(body, body0, b0);
        ck_assert_uint_eq(r, r0);
    }
}
END_TEST

START_TEST(chunked_after_done)
{
    fl_http_chunked_t st;
    char buf[] = "0\r\n\r\nabc";
    size_t n = strlen(buf);
    fl_http_chunked_init(&st, 10);
    ck_assert_int_eq(fl_http_chunked_decode(&st, buf, &n), 3);
    ck_assert_uint_eq(n, 0);
    char more[] = "xyz";
    n = 3;
    ck_assert_int_eq(fl_http_chunked_decode(&st, more, &n), 3);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(header_get)
{
    fl_http_request_t req;
    ck_assert_int_gt(
        parse_req("GET / HTTP/1.1\r\nHost: a\r\nX-Token: t1\r\nx-token: t2\r\n\r\n", &req), 0);
    size_t len = 99;
    const char *v = fl_http_header_get(req.headers, req.nheaders, "x-TOKEN", &len);
    ck_assert_ptr_nonnull(v);
    ck_assert(span_eq(v, len, "t1"));
    ck_assert_ptr_null(fl_http_header_get(req.headers, req.nheaders, "X-Tok", NULL));
    ck_assert_ptr_null(fl_http_header_get(req.headers, req.nheaders, "X-Token2", NULL));
    ck_assert_ptr_nonnull(fl_http_header_get(req.headers, req.nheaders, "host", NULL));
}
END_TEST

START_TEST(status_text)
{
    ck_assert_str_eq(fl_http_status_text(200), "OK");
    ck_assert_str_eq(fl_http_status_text(404), "Not Found");
    ck_assert_str_eq(fl_http_status_text(413), "Content Too Large");
    ck_assert_str_eq(fl_http_status_text(431), "Request Header Fields Too Large");
    ck_assert_str_eq(fl_http_status_text(503), "Service Unavailable");
    ck_assert_str_eq(fl_http_status_text(299), "");
    ck_assert_str_eq(fl_http_status_text(-1), "");
}
END_TEST

START_TEST(url_decode)
{
    char out[16];
    ck_assert_int_eq(fl_http_url_decode("a%2Fb+c%20d", 11, 1, out, sizeof out), 7);
    ck_assert_str_eq(out, "a/b c d");
    ck_assert_int_eq(fl_http_url_decode("a%2fb+c", 7, 0, out, sizeof out), 5);
    ck_assert_str_eq(out, "a/b+c");
    ck_assert_int_eq(fl_http_url_decode("", 0, 0, out, sizeof out), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(fl_http_url_decode("%4", 2, 0, out, sizeof out), FL_EMALFORMED);
    ck_assert_int_eq(fl_http_url_decode("%zz", 3, 0, out, sizeof out), FL_EMALFORMED);
    ck_assert_int_eq(fl_http_url_decode("%", 1, 0, out, sizeof out), FL_EMALFORMED);
    ck_assert_int_eq(fl_http_url_decode("abcd", 4, 0, out, 4), FL_ETOOBIG);
    ck_assert_int_eq(fl_http_url_decode("abc", 3, 0, out, 4), 3);
    ck_assert_int_eq(fl_http_url_decode("", 0, 0, out, 0), FL_ETOOBIG);
}
END_TEST

START_TEST(query_param)
{
    const char *q = "index=42&wait=1500ms&stale&k%20ey=v%2Fx&e=&dup=1&dup=2&plus=a+b";
    size_t len = strlen(q);
    char out[32];
    ck_assert_int_eq(fl_http_query_param(q, len, "index", out, sizeof out), 2);
    ck_assert_str_eq(out, "42");
    ck_assert_int_eq(fl_http_query_param(q, len, "wait", out, sizeof out), 6);
    ck_assert_str_eq(out, "1500ms");
    ck_assert_int_eq(fl_http_query_param(q, len, "stale", out, sizeof out), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(fl_http_query_param(q, len, "k ey", out, sizeof out), 3);
    ck_assert_str_eq(out, "v/x");
    ck_assert_int_eq(fl_http_query_param(q, len, "e", out, sizeof out), 0);
    ck_assert_int_eq(fl_http_query_param(q, len, "dup", out, sizeof out), 1);
    ck_assert_str_eq(out, "1");
    ck_assert_int_eq(fl_http_query_param(q, len, "plus", out, sizeof out), 3);
    ck_assert_str_eq(out, "a b");
    ck_assert_int_eq(fl_http_query_param(q, len, "ind", out, sizeof out), FL_ENOTFOUND);
    ck_assert_int_eq(fl_http_query_param(q, len, "index2", out, sizeof out), FL_ENOTFOUND);
    ck_assert_int_eq(fl_http_query_param(q, len, "index", out, 2), FL_ETOOBIG);
    ck_assert_int_eq(fl_http_query_param("", 0, "a", out, sizeof out), FL_ENOTFOUND);
    ck_assert_int_eq(fl_http_query_param("a=%G1", 5, "a", out, sizeof out), FL_EMALFORMED);
    /* only the given length is looked at */
    ck_assert_int_eq(fl_http_query_param("a=1&b=2", 3, "b", out, sizeof out), FL_ENOTFOUND);
}
END_TEST

START_TEST(header_u64)
{
    fl_http_header_t h[3] = {{"X-Consul-Index", 14, "42", 2},
                             {"X-Big", 5, "18446744073709551616", 20},
                             {"X-Neg", 5, "-1", 2}};
    uint64_t v = 7;
    ck_assert_int_eq(fl_http_header_u64(h, 3, "x-consul-index", &v), 0);
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(fl_http_header_u64(h, 3, "X-Big", &v), FL_EMALFORMED); /* 2^64 */
    ck_assert_int_eq(fl_http_header_u64(h, 3, "X-Neg", &v), FL_EMALFORMED);
    ck_assert_int_eq(fl_http_header_u64(h, 3, "X-None", &v), FL_EMALFORMED);
    ck_assert_uint_eq(v, 42);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("request");
    tcase_add_test(tc, request_simple);
    tcase_add_test(tc, request_head_length_excludes_body);
    tcase_add_test(tc, request_keep_alive_rules);
    tcase_add_test(tc, request_framing);
    tcase_add_test(tc, request_lenient_forms);
    tcase_add_loop_test(tc, request_malformed, 0,
                        (int)(sizeof malformed_requests / sizeof malformed_requests[0]));
    tcase_add_test(tc, request_too_big);
    tcase_add_loop_test(tc, request_every_split_point, 0,
                        (int)(sizeof split_cases / sizeof split_cases[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("response");
    tcase_add_test(tc, response_valid);
    tcase_add_test(tc, response_malformed);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked");
    tcase_add_test(tc, chunked_basic);
    tcase_add_test(tc, chunked_errors);
    tcase_add_loop_test(tc, chunked_every_split_point, 0,
                        (int)(sizeof chunked_split_cases / sizeof chunked_split_cases[0]));
    tcase_add_test(tc, chunked_after_done);
    suite_add_tcase(s, tc);

    tc = tcase_create("helpers");
    tcase_add_test(tc, header_get);
    tcase_add_test(tc, status_text);
    tcase_add_test(tc, url_decode);
    tcase_add_test(tc, query_param);
    tcase_add_test(tc, header_u64);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
