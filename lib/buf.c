/* Growable byte buffer (buf.h). Capacity doubles, so appends are amortised O(1). */
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

int fl_buf_reserve(fl_buf_t *b, size_t extra)
{
    if (extra > (size_t)-1 - b->len - 1)
        return FL_ENOMEM;
    size_t need = b->len + extra + 1; /* +1 keeps room for the terminating NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > (size_t)-1 / 2)
            return FL_ENOMEM;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return FL_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int fl_buf_append(fl_buf_t *b, const void *data, size_t len)
{
    int rc = fl_buf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int fl_buf_puts(fl_buf_t *b, const char *s)
{
    return fl_buf_append(b, s, strlen(s));
}

int fl_buf_vprintf(fl_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return FL_EINVAL;
    int rc = fl_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int fl_buf_printf(fl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fl_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void fl_buf_consume(fl_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data)
        b->data[b->len] = '\0';
}

void fl_buf_reset(fl_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void fl_buf_free(fl_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int fl_buf_append_escaped(fl_buf_t *b, const char *s)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c))
            rc = fl_buf_append(b, s, 1);
        else
            rc = fl_buf_printf(b, "%%%02X", c);
    }
    return rc;
}
