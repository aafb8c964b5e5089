/* latency {ms, jitter}: every chunk is passed on ms (± jitter, uniform) after it was read,
 * never before the chunk ahead of it: the stream keeps its order. */
#include "harness/toxic.h"

typedef struct {
    uint64_t last_due;
} latency_t;

static void pump(fl_stage_t *s)
{
    uint64_t now = fl_stage_now_ns(s);
    fl_chunk_t *c;
    while (s->held.head && s->held.head->due_ns <= now) {
        c = fl_chunk_queue_pop(&s->held);
        fl_stage_emit(s, c);
    }
    if (s->held.head)
        fl_stage_timer_start(s, s->held.head->due_ns - now);
    else if (s->got_eof)
        fl_stage_emit_eof(s);
}

static void data(fl_stage_t *s, fl_chunk_t *c)
{
    latency_t *st = FL_STAGE_STATE(s, latency_t);
    double ms = s->toxic->p[0], jitter = s->toxic->p[1];
    double delay_ms = ms + (jitter > 0 ? jitter * (2 * fl_stage_random(s) - 1) : 0);
    uint64_t due = c->t_ns + (uint64_t)(delay_ms > 0 ? delay_ms * 1e6 : 0);
    if (due < st->last_due)
        due = st->last_due;
    st->last_due = due;
    c->due_ns = due;
    s->toxic->stats.chunks++;
    fl_stage_hold(s, c);
}

const fl_toxic_type_t fl_toxic_latency = {
    .name = "latency",
    .doc = "delays every chunk by ms, plus or minus up to jitter",
    .params = {{"ms", 0, 3600000, 0, 1, "added delay in milliseconds"},
               {"jitter", 0, 3600000, 0, 0, "random spread in milliseconds (uniform)"}},
    .state_size = sizeof(latency_t),
    .data = data,
    .eof = fl_stage_eof_after_held,
    .timer = pump,
};
