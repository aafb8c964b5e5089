/* round_robin and p2c least-request over a channel's backends; see balancer.h. */
#include "services/runtime/balancer.h"

#include <string.h>

int fl_lb_policy_parse(const char *name)
{
    if (strcmp(name, "round_robin") == 0)
        return FL_LB_ROUND_ROBIN;
    if (strcmp(name, "p2c") == 0 || strcmp(name, "least_request") == 0)
        return FL_LB_P2C;
    return -1;
}

const char *fl_lb_policy_name(fl_lb_policy_t p)
{
    return p == FL_LB_P2C ? "p2c" : "round_robin";
}

void fl_lb_init(fl_lb_t *lb, fl_lb_policy_t policy, uint64_t seed, int sticky)
{
    memset(lb, 0, sizeof *lb);
    lb->policy = policy;
    lb->sticky = sticky;
    fl_rng_seed(&lb->rng, seed);
}

size_t fl_lb_pick_index(fl_lb_t *lb, const fl_lb_view_t *views, size_t n)
{
    size_t usable = 0;
    for (size_t i = 0; i < n; i++)
        usable += views[i].usable != 0;
    int any = usable == 0; /* every backend failing: pick among all of them */
    if (any)
        usable = n;
#define USABLE(i) (any || views[i].usable)
    if (lb->sticky) {
        for (size_t i = 0; i < n; i++)
            if (USABLE(i))
                return i;
    }
    if (lb->policy == FL_LB_ROUND_ROBIN || usable == 1) {
        for (size_t k = 0; k < n; k++) {
            size_t i = (lb->next + k) % n;
            if (USABLE(i)) {
                lb->next = i + 1;
                return i;
            }
        }
    }
    /* p2c: the a-th and b-th usable backends, a != b */
    size_t a = (size_t)fl_rng_below(&lb->rng, usable);
    size_t b = (size_t)fl_rng_below(&lb->rng, usable - 1);
    if (b >= a)
        b++;
    size_t ia = n, ib = n;
    for (size_t i = 0, u = 0; i < n; i++) {
        if (!USABLE(i))
            continue;
        if (u == a)
            ia = i;
        if (u == b)
            ib = i;
        u++;
    }
#undef USABLE
    return views[ib].inflight < views[ia].inflight ? ib : ia;
}

fl_grpc_backend_t *fl_lb_pick(fl_lb_t *lb, fl_grpc_channel_t *ch)
{
    fl_grpc_backend_t *be[256];
    fl_lb_view_t views[256];
    size_t n = fl_grpc_channel_backends(ch, be, 256);
    if (n > 256)
        n = 256;
    if (n == 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        views[i].usable = fl_grpc_backend_state(be[i]) != FL_GRPC_TRANSIENT_FAILURE;
        views[i].inflight = fl_grpc_backend_inflight(be[i]);
    }
    return be[fl_lb_pick_index(lb, views, n)];
}
