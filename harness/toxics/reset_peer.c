/* reset_peer {ms}: ms after the connection opened (or the toxic was added), both peers get
 * a TCP reset (SO_LINGER 0): "connection reset by peer". */
#include "harness/toxic.h"

static void start(fl_stage_t *s)
{
    double ms = s->toxic->p[0];
    if (ms <= 0)
        fl_stage_reset(s);
    else
        fl_stage_timer_start(s, (uint64_t)(ms * 1e6));
}

static void timer(fl_stage_t *s)
{
    fl_stage_reset(s);
}

const fl_toxic_type_t fl_toxic_reset_peer = {
    .name = "reset_peer",
    .doc = "resets the connection (RST) after ms",
    .params = {{"ms", 0, 3600000, 0, 0, "milliseconds before the reset; 0 at once"}},
    .start = start,
    .timer = timer,
};
