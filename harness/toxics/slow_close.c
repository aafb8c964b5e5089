/* slow_close {ms}: when the source half-closes, the close reaches the destination ms
 * later; data flows as usual. */
#include "harness/toxic.h"

static void eof(fl_stage_t *s)
{
    s->toxic->stats.chunks++;
    fl_stage_timer_start(s, (uint64_t)(s->toxic->p[0] * 1e6));
}

static void timer(fl_stage_t *s)
{
    fl_stage_emit_eof(s);
}

const fl_toxic_type_t fl_toxic_slow_close = {
    .name = "slow_close",
    .doc = "delays the close (FIN) by ms",
    .params = {{"ms", 0, 3600000, 0, 1, "milliseconds to delay the close"}},
    .eof = eof,
    .timer = timer,
};
