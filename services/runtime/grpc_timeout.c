/* grpc-timeout parsing and formatting (grpc_timeout.h). */
#include "services/runtime/grpc_timeout.h"

#include <stdio.h>

#include "lib/err.h"

#define MAX_DIGITS 8
#define MAX_VALUE 99999999ULL

/* Nanoseconds per unit, or 0 for a character that is not a unit. */
static uint64_t unit_ns(char c)
{
    switch (c) {
    case 'H':
        return 3600ULL * 1000000000ULL;
    case 'M':
        return 60ULL * 1000000000ULL;
    case 'S':
        return 1000000000ULL;
    case 'm':
        return 1000000ULL;
    case 'u':
        return 1000ULL;
    case 'n':
        return 1ULL;
    default:
        return 0;
    }
}

int fl_grpc_timeout_parse(const char *s, size_t len, uint64_t *ns)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (i == MAX_DIGITS)
            return FL_ESYNTAX;
        v = v * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i == 0 || i + 1 != len)
        return FL_ESYNTAX;
    uint64_t unit = unit_ns(s[i]);
    if (!unit)
        return FL_ESYNTAX;
    *ns = v > UINT64_MAX / unit ? UINT64_MAX : v * unit;
    return 0;
}

size_t fl_grpc_timeout_format(uint64_t ns, char out[FL_GRPC_TIMEOUT_MAX])
{
    static const char units[] = {'n', 'u', 'm', 'S', 'M', 'H'};
    static const uint64_t per[] = {1ULL, 1000ULL, 1000ULL, 1000ULL, 60ULL, 60ULL};
    uint64_t v = ns, div = 1;
    size_t u = 0;
    for (;;) {
        v = ns / div + (ns % div != 0); /* round up */
        if (v <= MAX_VALUE || u + 1 == sizeof units)
            break;
        u++;
        div *= per[u];
    }
    if (v > MAX_VALUE) /* beyond 99999999 hours: the longest timeout the header can say */
        v = MAX_VALUE;
    return (size_t)snprintf(out, FL_GRPC_TIMEOUT_MAX, "%llu%c", (unsigned long long)v, units[u]);
}
