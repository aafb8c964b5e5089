/* Log lines as faultline's services print them: one line per notable event,
 * "name[instance]: text", flushed at once so a supervisor reading a pipe sees it promptly. */
#ifndef FL_LOG_H
#define FL_LOG_H

#include <stdarg.h>
#include <stdio.h>

void fl_log_line(FILE *f, const char *name, const char *instance, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fl_log_vline(FILE *f, const char *name, const char *instance, const char *fmt, va_list ap);

#endif
