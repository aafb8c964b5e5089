/* Loopback range claiming and port allocation (addr.h). Plain sockets, no libuv: the lock
 * is one file descriptor held for the life of the run, closed on exec. */
#include "harness/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/err.h"

static int bind_probe_opt(uint32_t addr_host_order, int port, int do_listen, int reuse)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (reuse)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(addr_host_order);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || (do_listen && listen(fd, 1) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int bind_probe(uint32_t addr_host_order, int port, int do_listen)
{
    return bind_probe_opt(addr_host_order, port, do_listen, 0);
}

int fl_addr_claim(fl_addr_t *a, int first)
{
    if (first < FL_ADDR_X_FIRST || first > FL_ADDR_X_LAST)
        first = FL_ADDR_X_FIRST;
    a->given = NULL;
    a->ngiven = a->capgiven = 0;
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
    free(a->given);
    a->given = NULL;
    a->ngiven = a->capgiven = 0;
}

void fl_addr_instance(const fl_addr_t *a, int s, int i, char *out, size_t outlen)
{
    snprintf(out, outlen, "127.%d.%d.%d", a->x, s, i);
}

void fl_addr_harness(const fl_addr_t *a, int n, char *out, size_t outlen)
{
    snprintf(out, outlen, "127.%d.0.%d", a->x, n);
}

static int was_given(const fl_addr_t *a, int port)
{
    for (size_t i = 0; i < a->ngiven; i++)
        if (a->given[i] == port)
            return 1;
    return 0;
}

static int give(fl_addr_t *a, int port, int *out)
{
    if (a->ngiven == a->capgiven) {
        size_t cap = a->capgiven ? a->capgiven * 2 : 64;
        int *g = realloc(a->given, cap * sizeof *g);
        if (!g)
            return FL_ENOMEM;
        a->given = g;
        a->capgiven = cap;
    }
    a->given[a->ngiven++] = port;
    *out = port;
    return 0;
}

/* A port the kernel considers free on every address (from its ephemeral range). */
static int kernel_port(void)
{
    int fd = bind_probe(INADDR_ANY, 0, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int port = getsockname(fd, (struct sockaddr *)&sa, &len) == 0 ? ntohs(sa.sin_port) : -1;
    close(fd);
    return port;
}

/* The next port of the slice that passes the probe, or 0. Without SO_REUSEADDR the probe
 * fails if anything holds the port on any address, even a connection in TIME_WAIT: such a
 * port suits any service. With it, only TIME_WAIT remnants are ignored: the port suits
 * every service that sets SO_REUSEADDR, as nearly all servers (and libuv, Go, Node) do. */
static int slice_port(fl_addr_t *a, int reuse)
{
    int base = FL_ADDR_PORT_BASE + (a->x - FL_ADDR_X_FIRST) * FL_ADDR_PORTS_PER_RUN;
    for (int tries = 0; tries < FL_ADDR_PORTS_PER_RUN; tries++) {
        int p = base + a->next_port;
        a->next_port = (a->next_port + 1) % FL_ADDR_PORTS_PER_RUN;
        if (was_given(a, p))
            continue;
        int fd = bind_probe_opt(INADDR_ANY, p, 0, reuse);
        if (fd >= 0) {
            close(fd);
            return p;
        }
    }
    return 0;
}

int fl_addr_next_port(fl_addr_t *a, int *port)
{
    int p = slice_port(a, 0);
    if (!p)
        p = slice_port(a, 1);
    if (p)
        return give(a, p, port);
    for (int tries = 0; tries < 64; tries++) { /* the slice is used up: ask the kernel */
        p = kernel_port();
        if (p > 0 && !was_given(a, p))
            return give(a, p, port);
    }
    return FL_EADDRINUSE;
}

void fl_addr_forget_ports(fl_addr_t *a)
{
    a->ngiven = 0;
}
