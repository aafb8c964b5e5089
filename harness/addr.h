/* Address allocation for a run: each run claims a private loopback range 127.X.0.0/16 by
 * holding a lock listener on 127.X.0.1 (the next X is tried when one is taken), so parallel
 * runs never collide. Instances get 127.X.S.I and a port unique in the run, drawn from a
 * slice of 10000-32767 that belongs to X alone (below the kernel's ephemeral range, so the
 * harness's own port-0 listeners never take one), so a service that ignores BIND and
 * listens on every interface still works. */
#ifndef FL_ADDR_H
#define FL_ADDR_H

#include <stddef.h>

#define FL_ADDR_LOCK_PORT 41414
#define FL_ADDR_X_FIRST 2
#define FL_ADDR_X_LAST 254
#define FL_ADDR_PORT_BASE 10000
#define FL_ADDR_PORTS_PER_RUN 88

typedef struct {
    int x;       /* the claimed second octet */
    int lock_fd; /* the lock listener; -1 when released */
    int next_port;
    int *given; /* ports handed out since the last fl_addr_forget_ports */
    size_t ngiven, capgiven;
} fl_addr_t;

/* Claims the first free 127.X.0.0/16 (X from first to FL_ADDR_X_LAST). Returns 0 or
 * FL_EADDRINUSE when every range is taken. */
int fl_addr_claim(fl_addr_t *a, int first);
void fl_addr_release(fl_addr_t *a);
/* "127.X.S.I" for service index s and replica i (both 1-based, at most 254). */
void fl_addr_instance(const fl_addr_t *a, int s, int i, char *out, size_t outlen);
/* "127.X.0.N" for the harness's own listeners (n from 1 to 254). */
void fl_addr_harness(const fl_addr_t *a, int n, char *out, size_t outlen);
/* The next port that nothing on the machine uses, on any address, and that was not handed
 * out since the last fl_addr_forget_ports: from this run's slice first (a port with no
 * socket at all, else one held only by connections in TIME_WAIT); once the slice is used
 * up, one the kernel picks. Returns 0, FL_EADDRINUSE or FL_ENOMEM. */
int fl_addr_next_port(fl_addr_t *a, int *port);
/* Ports handed out so far may be handed out again (a new scenario, a new topology). */
void fl_addr_forget_ports(fl_addr_t *a);

#endif
