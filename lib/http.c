/* HTTP/1.1 head parser, in-place chunked decoder and URL helpers (http.h). Every parser walks
 * a cursor over the bytes it was given and answers "need more" the moment it runs out, so a
 * message split at any byte parses the same once it is whole, and malformed input is
 * rejected as soon as the offending byte is seen. */
#include "lib/http.h"

#include <limits.h>
#include <string.h>

#include "lib/err.h"

/* Longest chunk-size line (size and extensions) and trailer section we accept. */
#define MAX_CHUNK_LINE 4096
#define MAX_TRAILER 16384

typedef struct {
    const char *p;
    const char *end;
} cursor_t;

static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Characters allowed in a field value, a reason phrase or a chunk extension: HTAB, visible
 * ASCII, space and obs-text; never CR, LF, NUL or other controls. */
static int is_text(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int eq_nocase(const char *a, size_t alen, const char *b)
{
    if (alen != strlen(b))
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* A line ends with CRLF or a lone LF; a CR not followed by LF is malformed (bare CR is a
 * classic request-smuggling vector, so it is never treated as a line end). */
static int eat_eol(cursor_t *c)
{
    if (c->p == c->end)
        return FL_EAGAIN;
    if (*c->p == '\n') {
        c->p++;
        return 0;
    }
    if (*c->p != '\r')
        return FL_EMALFORMED;
    if (c->p + 1 == c->end)
        return FL_EAGAIN;
    if (c->p[1] != '\n')
        return FL_EMALFORMED;
    c->p += 2;
    return 0;
}

static int eat_char(cursor_t *c, char ch)
{
    if (c->p == c->end)
        return FL_EAGAIN;
    if (*c->p != ch)
        return FL_EMALFORMED;
    c->p++;
    return 0;
}

/* A non-empty token ended by delim; the delimiter is left for the caller. */
static int eat_token(cursor_t *c, char delim, const char **tok, size_t *len)
{
    const char *start = c->p;
    for (;;) {
        if (c->p == c->end)
            return FL_EAGAIN;
        if (*c->p == delim)
            break;
        if (!is_tchar((unsigned char)*c->p))
            return FL_EMALFORMED;
        c->p++;
    }
    if (c->p == start)
        return FL_EMALFORMED;
    *tok = start;
    *len = (size_t)(c->p - start);
    return 0;
}

/* The request target: any visible bytes up to the next space. */
static int eat_target(cursor_t *c, const char **tok, size_t *len)
{
    const char *start = c->p;
    for (;;) {
        if (c->p == c->end)
            return FL_EAGAIN;
        unsigned char ch = (unsigned char)*c->p;
        if (ch == ' ')
            break;
        if (ch < 0x20 || ch == 0x7f)
            return FL_EMALFORMED;
        c->p++;
    }
    if (c->p == start)
        return FL_EMALFORMED;
    *tok = start;
    *len = (size_t)(c->p - start);
    return 0;
}

/* "HTTP/1.x"; other major versions are not ours to parse. */
static int eat_version(cursor_t *c, int *minor)
{
    static const char prefix[] = "HTTP/1.";
    for (size_t i = 0; i < sizeof prefix - 1; i++) {
        int rc = eat_char(c, prefix[i]);
        if (rc)
            return rc;
    }
    if (c->p == c->end)
        return FL_EAGAIN;
    if (*c->p < '0' || *c->p > '9')
        return FL_EMALFORMED;
    *minor = *c->p++ - '0';
    return 0;
}

/* Text up to the end of the line (which is left in place), without surrounding SP/HTAB. An
 * empty text points at the line end, so the caller's copy can NUL-terminate it there. */
static int eat_text(cursor_t *c, const char **text, size_t *len)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
    const char *start = c->p;
    for (;;) {
        if (c->p == c->end)
            return FL_EAGAIN;
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '\r' || ch == '\n')
            break;
        if (!is_text(ch))
            return FL_EMALFORMED;
        c->p++;
    }
    const char *e = c->p;
    while (e > start && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *text = start;
    *len = (size_t)(e - start);
    return 0;
}

/* Header lines up to and including the empty line. Whitespace before the colon and
 * obsolete line folding are rejected, as RFC 9112 requires of servers. */
static int eat_headers(cursor_t *c, fl_http_header_t *h, size_t *n)
{
    *n = 0;
    for (;;) {
        if (c->p == c->end)
            return FL_EAGAIN;
        if (*c->p == '\r' || *c->p == '\n')
            return eat_eol(c);
        if (*n == FL_HTTP_MAX_HEADERS)
            return FL_ETOOBIG;
        fl_http_header_t *hd = &h[*n];
        int rc;
        if ((rc = eat_token(c, ':', &hd->name, &hd->name_len)) || (rc = eat_char(c, ':')) ||
            (rc = eat_text(c, &hd->value, &hd->value_len)) || (rc = eat_eol(c)))
            return rc;
        (*n)++;
    }
}

/* Next non-empty element of a comma-separated list value, trimmed; 0 at the end. */
static int next_element(const char **p, const char *end, const char **el, size_t *len)
{
    while (*p < end && (**p == ' ' || **p == '\t' || **p == ','))
        (*p)++;
    if (*p == end)
        return 0;
    const char *start = *p;
    while (*p < end && **p != ',')
        (*p)++;
    const char *e = *p;
    while (e > start && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *el = start;
    *len = (size_t)(e - start);
    return 1;
}

static int parse_length(const char *v, size_t n, int64_t *out)
{
    int64_t x = 0;
    if (n == 0)
        return FL_EMALFORMED;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return FL_EMALFORMED;
        int d = v[i] - '0';
        if (x > (INT64_MAX - d) / 10)
            return FL_EMALFORMED;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

typedef struct {
    int64_t content_length;
    int chunked;
    int keep_alive;
} framing_t;

/* Body framing and persistence from the headers. A request must be unambiguous: one
 * Content-Length, or Transfer-Encoding exactly "chunked", never both. A response may also
 * carry other codings, and then its body runs until close. */
static int read_framing(const fl_http_header_t *h, size_t n, int minor, int request, framing_t *f)
{
    int te = 0, chunked = 0, close = 0, keep_alive = 0;
    f->content_length = -1;
    for (size_t i = 0; i < n; i++) {
        const char *p = h[i].value, *end = h[i].value + h[i].value_len, *el;
        size_t len;
        if (eq_nocase(h[i].name, h[i].name_len, "content-length")) {
            if (f->content_length >= 0)
                return FL_EMALFORMED;
            int rc = parse_length(h[i].value, h[i].value_len, &f->content_length);
            if (rc)
                return rc;
        } else if (eq_nocase(h[i].name, h[i].name_len, "transfer-encoding")) {
            int any = 0;
            while (next_element(&p, end, &el, &len)) {
                any = 1;
                if (chunked) /* chunked must be the final coding, and appear once */
                    return FL_EMALFORMED;
                if (eq_nocase(el, len, "chunked"))
                    chunked = 1;
                else if (request)
                    return FL_EMALFORMED; /* a coding we cannot undo: length unknowable */
            }
            if (!any)
                return FL_EMALFORMED;
            te = 1;
        } else if (eq_nocase(h[i].name, h[i].name_len, "connection")) {
            while (next_element(&p, end, &el, &len)) {
                if (eq_nocase(el, len, "close"))
                    close = 1;
                else if (eq_nocase(el, len, "keep-alive"))
                    keep_alive = 1;
            }
        }
    }
    if (te && f->content_length >= 0)
        return FL_EMALFORMED;
    f->chunked = chunked;
    f->keep_alive = close ? 0 : (minor >= 1 || keep_alive);
    return 0;
}

static int parse_request_head(cursor_t *c, fl_http_request_t *req)
{
    int rc;
    /* RFC 9112 2.2: ignore empty lines before a request (stray CRLF after a body). */
    while (c->p < c->end && (*c->p == '\r' || *c->p == '\n'))
        if ((rc = eat_eol(c)))
            return rc;
    if ((rc = eat_token(c, ' ', &req->method, &req->method_len)) || (rc = eat_char(c, ' ')) ||
        (rc = eat_target(c, &req->target, &req->target_len)) || (rc = eat_char(c, ' ')) ||
        (rc = eat_version(c, &req->minor_version)) || (rc = eat_eol(c)) ||
        (rc = eat_headers(c, req->headers, &req->nheaders)))
        return rc;
    framing_t f;
    if ((rc = read_framing(req->headers, req->nheaders, req->minor_version, 1, &f)))
        return rc;
    req->content_length = f.content_length;
    req->chunked = f.chunked;
    req->keep_alive = f.keep_alive;
    return 0;
}

static int parse_response_head(cursor_t *c, fl_http_response_t *res)
{
    int rc;
    if ((rc = eat_version(c, &res->minor_version)) || (rc = eat_char(c, ' ')))
        return rc;
    res->status = 0;
    for (int i = 0; i < 3; i++) {
        if (c->p == c->end)
            return FL_EAGAIN;
        if (*c->p < (i == 0 ? '1' : '0') || *c->p > '9')
            return FL_EMALFORMED;
        res->status = res->status * 10 + (*c->p++ - '0');
    }
    if (c->p == c->end)
        return FL_EAGAIN;
    if (*c->p == ' ') {
        c->p++;
        if ((rc = eat_text(c, &res->reason, &res->reason_len)))
            return rc;
    } else if (*c->p == '\r' || *c->p == '\n') {
        res->reason = c->p; /* "HTTP/1.1 200" without a reason phrase */
        res->reason_len = 0;
    } else {
        return FL_EMALFORMED;
    }
    if ((rc = eat_eol(c)) || (rc = eat_headers(c, res->headers, &res->nheaders)))
        return rc;
    framing_t f;
    if ((rc = read_framing(res->headers, res->nheaders, res->minor_version, 0, &f)))
        return rc;
    res->content_length = f.content_length;
    res->chunked = f.chunked;
    res->keep_alive = f.keep_alive;
    return 0;
}

/* Runs a head parser over at most max_head bytes: a head still incomplete at that point is
 * too big rather than incomplete. */
static int parse_bounded(const char *buf, size_t len, size_t max_head, int request, void *out)
{
    if (max_head > INT_MAX)
        max_head = INT_MAX;
    cursor_t c = {buf, buf + (len < max_head ? len : max_head)};
    int rc = request ? parse_request_head(&c, out) : parse_response_head(&c, out);
    if (rc == FL_EAGAIN && len >= max_head)
        return FL_ETOOBIG;
    if (rc)
        return rc;
    return (int)(c.p - buf);
}

int fl_http_parse_request(const char *buf, size_t len, size_t max_head, fl_http_request_t *req)
{
    return parse_bounded(buf, len, max_head, 1, req);
}

int fl_http_parse_response(const char *buf, size_t len, size_t max_head, fl_http_response_t *res)
{
    return parse_bounded(buf, len, max_head, 0, res);
}

enum {
    CH_SIZE,        /* hex digits of the chunk size */
    CH_EXT_WS,      /* whitespace after the size, before ';' or the line end */
    CH_EXT,         /* chunk extensions, ignored */
    CH_SIZE_LF,     /* CR seen at the end of the size line */
    CH_DATA,        /* chunk data */
    CH_DATA_CR,     /* line end after the data */
    CH_DATA_LF,     /* CR seen after the data */
    CH_TRAILER,     /* start of a trailer line, or of the final empty line */
    CH_TRAILER_TXT, /* inside a trailer line */
    CH_TRAILER_LF,  /* CR seen at the end of a trailer line */
    CH_END_LF,      /* CR of the final empty line */
    CH_DONE,
};

void fl_http_chunked_init(fl_http_chunked_t *st, uint64_t limit)
{
    memset(st, 0, sizeof *st);
    st->limit = limit;
    st->state = CH_SIZE;
}

/* The size line is complete: data follows, or the trailers when the size is zero. */
static int end_size_line(fl_http_chunked_t *st)
{
    st->line = 0;
    st->digits = 0;
    st->state = st->remaining ? CH_DATA : CH_TRAILER;
    return 0;
}

/* Handles one byte of framing (everything but chunk data). 1 means the body ended. */
static int chunked_byte(fl_http_chunked_t *st, unsigned char ch)
{
    int d;
    switch (st->state) {
    case CH_SIZE:
        if ((d = hexval(ch)) >= 0) {
            if (st->remaining > (UINT64_MAX >> 4))
                return FL_ETOOBIG;
            st->remaining = st->remaining * 16 + (uint64_t)d;
            st->digits++;
            if (++st->line > MAX_CHUNK_LINE)
                return FL_ETOOBIG;
            return 0;
        }
        if (!st->digits)
            return FL_EMALFORMED;
        if (st->remaining > st->limit - st->total)
            return FL_ETOOBIG;
        st->state = CH_EXT_WS;
        return chunked_byte(st, ch);
    case CH_EXT_WS:
    case CH_EXT:
        if (ch == '\r') {
            st->state = CH_SIZE_LF;
            return 0;
        }
        if (ch == '\n')
            return end_size_line(st);
        if (st->state == CH_EXT_WS && ch == ';')
            st->state = CH_EXT;
        else if (st->state == CH_EXT_WS ? (ch != ' ' && ch != '\t') : !is_text(ch))
            return FL_EMALFORMED;
        if (++st->line > MAX_CHUNK_LINE)
            return FL_ETOOBIG;
        return 0;
    case CH_SIZE_LF:
        if (ch != '\n')
            return FL_EMALFORMED;
        return end_size_line(st);
    case CH_DATA_CR:
    case CH_DATA_LF:
        if (ch == '\r' && st->state == CH_DATA_CR) {
            st->state = CH_DATA_LF;
            return 0;
        }
        if (ch != '\n') /* a lone LF also ends the data line */
            return FL_EMALFORMED;
        st->state = CH_SIZE;
        return 0;
    case CH_TRAILER:
        if (ch == '\r') {
            st->state = CH_END_LF;
            return 0;
        }
        if (ch == '\n')
            return 1;
        st->state = CH_TRAILER_TXT;
        return chunked_byte(st, ch);
    case CH_TRAILER_TXT:
        if (++st->trailer > MAX_TRAILER)
            return FL_ETOOBIG;
        if (ch == '\r')
            st->state = CH_TRAILER_LF;
        else if (ch == '\n')
            st->state = CH_TRAILER;
        else if (!is_text(ch))
            return FL_EMALFORMED;
        return 0;
    case CH_TRAILER_LF:
        if (ch != '\n')
            return FL_EMALFORMED;
        st->state = CH_TRAILER;
        return 0;
    case CH_END_LF:
        if (ch != '\n')
            return FL_EMALFORMED;
        return 1;
    default:
        return FL_EMALFORMED;
    }
}

int fl_http_chunked_decode(fl_http_chunked_t *st, char *buf, size_t *len)
{
    size_t n = *len, src = 0, dst = 0;
    if (n > INT_MAX)
        return FL_EINVAL;
    if (st->state == CH_DONE) {
        *len = 0;
        return (int)n;
    }
    while (src < n) {
        if (st->state == CH_DATA) {
            size_t take = n - src;
            if (take > st->remaining)
                take = (size_t)st->remaining;
            memmove(buf + dst, buf + src, take);
            dst += take;
            src += take;
            st->remaining -= take;
            st->total += take;
            if (!st->remaining)
                st->state = CH_DATA_CR;
            continue;
        }
        int rc = chunked_byte(st, (unsigned char)buf[src++]);
        if (rc < 0) {
            *len = dst;
            return rc;
        }
        if (rc == 1) {
            st->state = CH_DONE;
            memmove(buf + dst, buf + src, n - src);
            *len = dst;
            return (int)(n - src);
        }
    }
    *len = dst;
    return FL_EAGAIN;
}

const char *fl_http_header_get(const fl_http_header_t *headers, size_t n, const char *name,
                               size_t *len)
{
    for (size_t i = 0; i < n; i++) {
        if (eq_nocase(headers[i].name, headers[i].name_len, name)) {
            if (len)
                *len = headers[i].value_len;
            return headers[i].value;
        }
    }
    return NULL;
}

const char *fl_http_status_text(int status)
{
    static const struct {
        int code;
        const char *text;
    } table[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {203, "Non-Authoritative Information"},
        {204, "No Content"},
        {205, "Reset Content"},
        {206, "Partial Content"},
        {300, "Multiple Choices"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {402, "Payment Required"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {407, "Proxy Authentication Required"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {416, "Range Not Satisfiable"},
        {417, "Expectation Failed"},
        {418, "I'm a teapot"},
        {421, "Misdirected Request"},
        {422, "Unprocessable Content"},
        {425, "Too Early"},
        {426, "Upgrade Required"},
        {428, "Precondition Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {451, "Unavailable For Legal Reasons"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == status)
            return table[i].text;
    return "";
}

int fl_http_url_decode(const char *in, size_t len, int plus_as_space, char *out, size_t outlen)
{
    size_t o = 0;
    if (len > INT_MAX || outlen == 0)
        return FL_ETOOBIG;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch == '%') {
            int hi = i + 2 < len ? hexval((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < len ? hexval((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return FL_EMALFORMED;
            ch = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus_as_space) {
            ch = ' ';
        }
        if (o + 1 >= outlen)
            return FL_ETOOBIG;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return (int)o;
}

/* Whether the still-encoded query key k[0..n) decodes to name. */
static int key_equals(const char *k, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)k[i];
        if (ch == '%' && i + 2 < n) {
            int hi = hexval((unsigned char)k[i + 1]), lo = hexval((unsigned char)k[i + 2]);
            if (hi < 0 || lo < 0)
                return 0;
            ch = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '%') {
            return 0;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (*name == '\0' || (unsigned char)*name++ != ch)
            return 0;
    }
    return *name == '\0';
}

int fl_http_query_param(const char *query, size_t len, const char *name, char *out, size_t outlen)
{
    const char *p = query, *end = query + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        if (key_equals(p, (size_t)((eq ? eq : pe) - p), name)) {
            if (eq)
                return fl_http_url_decode(eq + 1, (size_t)(pe - eq - 1), 1, out, outlen);
            if (outlen == 0)
                return FL_ETOOBIG;
            out[0] = '\0';
            return 0;
        }
        p = amp ? amp + 1 : end;
    }
    return FL_ENOTFOUND;
}

int fl_http_header_u64(const fl_http_header_t *headers, size_t n, const char *name, uint64_t *out)
{
    size_t len;
    const char *v = fl_http_header_get(headers, n, name, &len);
    uint64_t x = 0;
    if (!v || len == 0 || len > 20)
        return FL_EMALFORMED;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (UINT64_MAX - (uint64_t)(v[i] - '0')) / 10)
            return FL_EMALFORMED;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}
