/* gRPC status codes, their mapping from HTTP and HTTP/2, and grpc-message encoding
 * (grpc_status.h). */
#include "services/runtime/grpc_status.h"

#include <nghttp2/nghttp2.h>
#include <string.h>

#include "lib/err.h"

static const char *const names[] = {
#define FL_GRPC_CODE_NAME(name, n) [n] = #name,
    FL_GRPC_CODES(FL_GRPC_CODE_NAME)
#undef FL_GRPC_CODE_NAME
};

#define NCODES ((int)(sizeof names / sizeof names[0]))

const char *fl_grpc_code_name(int code)
{
    return code >= 0 && code < NCODES ? names[code] : "UNKNOWN";
}

int fl_grpc_code_parse_name(const char *name)
{
    for (int i = 0; i < NCODES; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    int v = 0;
    if (!*name || strlen(name) > 2)
        return -1;
    for (const char *p = name; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v < NCODES ? v : -1;
}

int fl_grpc_status_parse(const char *s, size_t len)
{
    unsigned long v = 0;
    if (len == 0)
        return FL_GRPC_INTERNAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return FL_GRPC_INTERNAL;
        if (v < 1000000) /* large numbers stay large without overflowing */
            v = v * 10 + (unsigned long)(s[i] - '0');
    }
    return v < (unsigned long)NCODES ? (int)v : FL_GRPC_UNKNOWN;
}

int fl_grpc_code_from_http(int http)
{
    switch (http) {
    case 400:
        return FL_GRPC_INTERNAL;
    case 401:
        return FL_GRPC_UNAUTHENTICATED;
    case 403:
        return FL_GRPC_PERMISSION_DENIED;
    case 404:
        return FL_GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return FL_GRPC_UNAVAILABLE;
    default:
        return FL_GRPC_UNKNOWN;
    }
}

int fl_grpc_code_from_h2(uint32_t h2)
{
    switch (h2) {
    case NGHTTP2_REFUSED_STREAM:
        return FL_GRPC_UNAVAILABLE;
    case NGHTTP2_CANCEL:
        return FL_GRPC_CANCELLED;
    case NGHTTP2_ENHANCE_YOUR_CALM:
        return FL_GRPC_RESOURCE_EXHAUSTED;
    case NGHTTP2_INADEQUATE_SECURITY:
        return FL_GRPC_PERMISSION_DENIED;
    default:
        return FL_GRPC_INTERNAL;
    }
}

int fl_grpc_message_encode(fl_buf_t *b, const char *msg, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = fl_buf_reserve(b, len);
    for (size_t i = 0; i < len && !rc; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c >= ' ' && c <= '~' && c != '%') {
            rc = fl_buf_append(b, &msg[i], 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = fl_buf_append(b, esc, 3);
        }
    }
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t fl_grpc_message_decode(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
        }
        if (n + 1 < outlen)
            out[n] = c;
        n++;
    }
    if (outlen)
        out[n < outlen ? n : outlen - 1] = '\0';
    return n;
}
