/* bandwidth {kbps}: the stream leaves at most kbps kilobits (1000 bits) per second, in
 * slices of about 10 ms worth, so the rate is smooth at any chunk size. */
#include "harness/toxic.h"

#define SLICE_NS 10000000ull /* 10 ms worth of bytes at a time */

typedef struct {
    uint64_t next_free; /* when the next slice may leave */
} bandwidth_t;

static void pump(fl_stage_t *s)
{
    bandwidth_t *st = FL_STAGE_STATE(s, bandwidth_t);
    double bytes_per_ns = s->toxic->p[0] * 1000 / 8 / 1e9;
    size_t slice = (size_t)(bytes_per_ns * SLICE_NS);
    if (slice < 1)
        slice = 1;
    while (s->held.head) {
        uint64_t now = fl_stage_now_ns(s);
        if (st->next_free > now) {
            fl_stage_timer_start(s, st->next_free - now);
            return;
        }
        fl_chunk_t *out = fl_stage_take(s, slice);
        if (!out)
            return;
        size_t n = out->len - out->off;
        /* a timer up to one slice late (a busy loop) keeps the schedule, so the rate holds on
         * average; after a longer idle spell the schedule starts afresh (no burst builds up) */
        uint64_t base = st->next_free + SLICE_NS > now ? st->next_free : now;
        st->next_free = base + (uint64_t)(n / bytes_per_ns);
        fl_stage_emit(s, out);
    }
    if (s->got_eof)
        fl_stage_emit_eof(s);
}

static void data(fl_stage_t *s, fl_chunk_t *c)
{
    s->toxic->stats.chunks++;
    fl_stage_hold(s, c);
}

const fl_toxic_type_t fl_toxic_bandwidth = {
    .name = "bandwidth",
    .doc = "limits the rate to kbps kilobits per second",
    .params = {{"kbps", 1, 1e9, 0, 1, "kilobits (1000 bits) per second"}},
    .state_size = sizeof(bandwidth_t),
    .data = data,
    .eof = fl_stage_eof_after_held,
    .timer = pump,
};
