/* slicer {avg, variation, delay_us}: every chunk is cut into slices of avg ± variation
 * bytes, passed on delay_us apart (several per loop tick when delay_us is below the
 * timer's resolution, so the average spacing holds). */
#include "harness/toxic.h"

typedef struct {
    uint64_t next_due;
} slicer_t;

static size_t slice_size(fl_stage_t *s)
{
    double avg = s->toxic->p[0], var = s->toxic->p[1];
    double n = avg + (var > 0 ? var * (2 * fl_stage_random(s) - 1) : 0);
    return n < 1 ? 1 : (size_t)n;
}

static void pump(fl_stage_t *s)
{
    slicer_t *st = FL_STAGE_STATE(s, slicer_t);
    uint64_t gap = (uint64_t)(s->toxic->p[2] * 1000);
    while (s->held.head) {
        uint64_t now = fl_stage_now_ns(s);
        if (gap && st->next_due > now) {
            fl_stage_timer_start(s, st->next_due - now);
            return;
        }
        fl_chunk_t *out = fl_stage_take(s, slice_size(s));
        if (!out)
            return;
        s->toxic->stats.chunks++;
        /* Keep the schedule even though the timer fires up to a tick late: only restart it
         * from now when it has fallen further behind than a tick (or a gap). */
        uint64_t slack = gap > 10000000 ? gap : 10000000;
        if (st->next_due + slack < now)
            st->next_due = now;
        st->next_due += gap;
        fl_stage_emit(s, out);
    }
    if (s->got_eof)
        fl_stage_emit_eof(s);
}

static void data(fl_stage_t *s, fl_chunk_t *c)
{
    fl_stage_hold(s, c);
}

const fl_toxic_type_t fl_toxic_slicer = {
    .name = "slicer",
    .doc = "cuts the stream into small slices, optionally spaced in time",
    .params = {{"avg", 1, 1e9, 0, 1, "average slice size in bytes"},
               {"variation", 0, 1e9, 0, 0, "random spread of the slice size in bytes"},
               {"delay_us", 0, 6e7, 0, 0, "pause between slices in microseconds"}},
    .state_size = sizeof(slicer_t),
    .data = data,
    .eof = fl_stage_eof_after_held,
    .timer = pump,
};
