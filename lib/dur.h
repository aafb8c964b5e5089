/* Durations as scenarios write them: a number of seconds, or a string such as "250ms",
 * "5s", "1m30s", "1.5s", "100us". Parsing is a pure function (no I/O, no allocation). */
#ifndef FL_DUR_H
#define FL_DUR_H

#include <stdint.h>

/* Parses s into nanoseconds. Returns 0, or FL_ESYNTAX (not a duration) or FL_ERANGE
 * (negative or beyond about 292 years). */
int fl_dur_parse(const char *s, uint64_t *ns);
/* Converts seconds (as Lua numbers are) to nanoseconds: 0, FL_ERANGE (negative, NaN, huge). */
int fl_dur_from_seconds(double s, uint64_t *ns);
/* Formats ns compactly ("250ms", "1.5s", "2m3s") into out (at least 32 bytes). */
void fl_dur_format(uint64_t ns, char *out, int outlen);

#endif
