/* Per-request load balancing over a gRPC channel's backends (grpc_client.h): round_robin, and
 * power-of-two-choices least-request (p2c: two distinct backends drawn at random, the one with
 * fewer calls in flight wins). Both skip backends whose last connection attempt failed
 * (TRANSIENT_FAILURE) while another is usable; when every backend is failing they still pick
 * one, so the call fails fast (UNAVAILABLE) and the retry policy decides.
 *
 * FAULTLINE_BUG=sticky-lb (fl_lb_init's sticky) makes every pick the first usable backend:
 * the defect the balancing suite exists to catch. */
#ifndef FL_BALANCER_H
#define FL_BALANCER_H

#include <stddef.h>

#include "lib/rng.h"
#include "services/runtime/grpc_client.h"

typedef enum { FL_LB_ROUND_ROBIN, FL_LB_P2C } fl_lb_policy_t;

typedef struct {
    fl_lb_policy_t policy;
    int sticky;
    size_t next; /* round_robin's position */
    fl_rng_t rng;
} fl_lb_t;

/* The policy named name ("round_robin", "p2c", "least_request"); -1 for another. */
int fl_lb_policy_parse(const char *name);
const char *fl_lb_policy_name(fl_lb_policy_t p);
void fl_lb_init(fl_lb_t *lb, fl_lb_policy_t policy, uint64_t seed, int sticky);

/* One backend's view for picking. */
typedef struct {
    int usable;      /* not in TRANSIENT_FAILURE */
    size_t inflight; /* calls in flight */
} fl_lb_view_t;

/* The index (into views, n > 0) the policy picks. Pure but for lb's own state. */
size_t fl_lb_pick_index(fl_lb_t *lb, const fl_lb_view_t *views, size_t n);
/* Picks among the channel's backends; NULL when it has none. */
fl_grpc_backend_t *fl_lb_pick(fl_lb_t *lb, fl_grpc_channel_t *ch);

#endif
