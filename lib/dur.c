/* Duration parsing and formatting (dur.h). Accepts Go-style sequences of <number><unit>
 * with units ns, us (or µs), ms, s, m, h; a bare number means seconds. */
#include "lib/dur.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"

static int unit_ns(const char **p, double *mult)
{
    static const struct {
        const char *name;
        double ns;
    } units[] = {
        {"ns", 1},  {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6},
        {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
    };
    /* longest match first: "ms" before "m" */
    size_t best = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t n = strlen(units[i].name);
        if (n > best && strncmp(*p, units[i].name, n) == 0) {
            best = n;
            *mult = units[i].ns;
        }
    }
    if (!best)
        return FL_ESYNTAX;
    *p += best;
    return 0;
}

int fl_dur_parse(const char *s, uint64_t *ns)
{
    if (!s || !*s)
        return FL_ESYNTAX;
    const char *p = s;
    double total = 0;
    int parts = 0;
    if (*p == '-') /* "-1s" is a duration, but a negative one; "--1s" is not one at all */
        return p[1] >= '0' && p[1] <= '9' ? FL_ERANGE : FL_ESYNTAX;
    while (*p) {
        const char *start = p;
        double v = 0, scale = 1;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9') {
                scale /= 10;
                v += (*p++ - '0') * scale;
                digits++;
            }
        }
        if (!digits || p - start > 40)
            return FL_ESYNTAX;
        double mult;
        if (!*p && parts == 0) {
            mult = 1e9; /* a bare number is seconds */
        } else if (unit_ns(&p, &mult) != 0) {
            return FL_ESYNTAX;
        }
        total += v * mult;
        parts++;
    }
    if (!(total >= 0) || total > 9.2e18)
        return FL_ERANGE;
    *ns = (uint64_t)llround(total);
    return 0;
}

int fl_dur_from_seconds(double s, uint64_t *ns)
{
    if (!(s >= 0) || s * 1e9 > 9.2e18)
        return FL_ERANGE;
    *ns = (uint64_t)llround(s * 1e9);
    return 0;
}

void fl_dur_format(uint64_t ns, char *out, int outlen)
{
    if (ns < 1000)
        snprintf(out, outlen, "%lluns", (unsigned long long)ns);
    else if (ns < 1000000)
        snprintf(out, outlen, "%gus", ns / 1e3);
    else if (ns < 1000000000)
        snprintf(out, outlen, "%gms", ns / 1e6);
    else if (ns < 60000000000ull)
        snprintf(out, outlen, "%gs", ns / 1e9);
    else
        snprintf(out, outlen, "%llum%gs", (unsigned long long)(ns / 60000000000ull),
                 (ns % 60000000000ull) / 1e9);
}
