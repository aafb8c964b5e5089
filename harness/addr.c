/* Loopback range claiming and port allocation (addr.h). Plain sockets, no libuv: the lock
 * is one file descriptor held for the life of the run, closed on exec. */
#include "harness/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/err.h"

static int bind_probe(uint32_t addr_host_order, int port, int do_listen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(addr_host_order);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || (do_listen && listen(fd, 1) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

int fl_addr_claim(fl_addr_t *a, int first)
{
    if (first < FL_ADDR_X_FIRST || first > FL_ADDR_X_LAST)
        first = FL_ADDR_X_FIRST;
    for (int x = first; x <= FL_ADDR_X_LAST; x++) {
        int fd = bind_probe(0x7f000001u | ((uint32_t)x << 16), FL_ADDR_LOCK_PORT, 1);
        if (fd >= 0) {
            a->x = x;
            a->lock_fd = fd;
            a->next_port = 0;
            return 0;
        }
    }
    a->lock_fd = -1;
    return FL_EADDRINUSE;
}

void fl_addr_release(fl_addr_t *a)
{
    if (a->lock_fd >= 0)
        close(a->lock_fd);
    a->lock_fd = -1;
}

void fl_addr_instance(const fl_addr_t *a, int s, int i, char *out, size_t outlen)
{
    snprintf(out, outlen, "127.%d.%d.%d", a->x, s, i);
}

void fl_addr_harness(const fl_addr_t *a, int n, char *out, size_t outlen)
{
    snprintf(out, outlen, "127.%d.0.%d", a->x, n);
}

int fl_addr_next_port(fl_addr_t *a, int *port)
{
    int base = FL_ADDR_PORT_BASE + (a->x - FL_ADDR_X_FIRST) * FL_ADDR_PORTS_PER_RUN;
    for (int tries = 0; tries < FL_ADDR_PORTS_PER_RUN; tries++) {
        int p = base + a->next_port;
        a->next_port = (a->next_port + 1) % FL_ADDR_PORTS_PER_RUN;
        /* Binding the wildcard without SO_REUSEADDR fails if anything holds p on any
         * address, including connections in TIME_WAIT: only a truly free port passes. */
        int fd = bind_probe(INADDR_ANY, p, 0);
        if (fd >= 0) {
            close(fd);
            *port = p;
            return 0;
        }
    }
    return FL_EADDRINUSE;
}
