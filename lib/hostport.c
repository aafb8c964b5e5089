/* host:port parsing (hostport.h). */
#include "lib/hostport.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

int fl_hostport_parse(const char *s, int allow_zero, char *host, size_t hostlen, int *port)
{
    const char *colon, *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return FL_ESYNTAX;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon) /* bare IPv6 needs brackets */
            return FL_ESYNTAX;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return FL_ESYNTAX;
    const char *p = colon + 1;
    if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5)
        return FL_ESYNTAX;
    long v = strtol(p, NULL, 10);
    if (v > 65535 || (v == 0 && !allow_zero))
        return FL_ERANGE;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)v;
    return 0;
}
