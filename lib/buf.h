/* A growable byte buffer: the one place that owns "append bytes, grow as needed". */
#ifndef FL_BUF_H
#define FL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data; /* always NUL-terminated when non-NULL, for convenience */
    size_t len;
    size_t cap;
} fl_buf_t;

#define FL_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Each returns 0 or FL_ENOMEM. */
int fl_buf_reserve(fl_buf_t *b, size_t extra);
int fl_buf_append(fl_buf_t *b, const void *data, size_t len);
int fl_buf_puts(fl_buf_t *b, const char *s);
int fl_buf_printf(fl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fl_buf_vprintf(fl_buf_t *b, const char *fmt, va_list ap);
/* Appends s with everything but RFC 3986's unreserved characters percent-encoded (for a
 * path segment or a query value). 0 or FL_ENOMEM. */
int fl_buf_append_escaped(fl_buf_t *b, const char *s);
/* Drops the first n bytes. */
void fl_buf_consume(fl_buf_t *b, size_t n);
void fl_buf_reset(fl_buf_t *b);
void fl_buf_free(fl_buf_t *b);

#endif
