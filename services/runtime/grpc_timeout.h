/* The grpc-timeout header (PROTOCOL-HTTP2.md): "Timeout → TimeoutValue TimeoutUnit", at most
 * 8 ASCII digits and one unit of H (hours), M (minutes), S (seconds), m (milliseconds),
 * u (microseconds) or n (nanoseconds). Pure functions. */
#ifndef FL_GRPC_TIMEOUT_H
#define FL_GRPC_TIMEOUT_H

#include <stddef.h>
#include <stdint.h>

#define FL_GRPC_TIMEOUT_MAX 16 /* bytes fl_grpc_timeout_format writes at most, NUL included */

/* Parses a grpc-timeout value into nanoseconds; a value beyond what 64 bits of nanoseconds
 * hold (about 584 years, e.g. "99999999H") becomes UINT64_MAX. Returns 0 or FL_ESYNTAX (no
 * digits, more than 8, no unit, an unknown unit, anything after the unit). */
int fl_grpc_timeout_parse(const char *s, size_t len, uint64_t *ns);

/* Formats ns as a grpc-timeout value into out (FL_GRPC_TIMEOUT_MAX bytes), in the finest
 * unit whose value fits in 8 digits, rounded up so that the peer never sees a shorter
 * deadline than ours. Returns the length written. */
size_t fl_grpc_timeout_format(uint64_t ns, char out[FL_GRPC_TIMEOUT_MAX]);

#endif
