/* Service log lines (log.h). The line is built first and written with one call, so lines
 * from stdout and stderr interleave whole. */
#include "lib/log.h"

#include "lib/buf.h"

void fl_log_vline(FILE *f, const char *name, const char *instance, const char *fmt, va_list ap)
{
    fl_buf_t b = FL_BUF_INIT;
    fl_buf_printf(&b, "%s[%s]: ", name, instance ? instance : "");
    fl_buf_vprintf(&b, fmt, ap);
    fl_buf_puts(&b, "\n");
    if (b.data)
        fwrite(b.data, 1, b.len, f);
    fflush(f);
    fl_buf_free(&b);
}

void fl_log_line(FILE *f, const char *name, const char *instance, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fl_log_vline(f, name, instance, fmt, ap);
    va_end(ap);
}
