/* "host:port" as command lines and config files write it: "127.0.0.1:8080", "[::1]:80",
 * "localhost:9000". Parsing is pure. */
#ifndef FL_HOSTPORT_H
#define FL_HOSTPORT_H

#include <stddef.h>

/* Splits s into host (brackets removed, "localhost" kept as is) and port (1-65535, or 0
 * when allow_zero). Returns 0, FL_ESYNTAX (no port, empty host, junk) or FL_ERANGE. */
int fl_hostport_parse(const char *s, int allow_zero, char *host, size_t hostlen, int *port);

#endif
