/* timeout {ms}: nothing passes; after ms the connection is closed. ms = 0 is a blackhole:
 * nothing passes until the toxic is removed. Unlike Toxiproxy, which drops the bytes, this
 * holds them, as a real network partition leaves them in flight: when the blackhole is
 * healed they are delivered, in order (the reader stops once the hold is full, so the
 * sender feels backpressure exactly as it would behind a dead route). */
#include "harness/toxic.h"

static void start(fl_stage_t *s)
{
    if (s->toxic->p[0] > 0)
        fl_stage_timer_start(s, (uint64_t)(s->toxic->p[0] * 1e6));
}

static void data(fl_stage_t *s, fl_chunk_t *c)
{
    s->toxic->stats.chunks++;
    s->toxic->stats.bytes += c->len - c->off;
    fl_chunk_queue_push(&s->held, c);
}

static void eof(fl_stage_t *s)
{
    (void)s; /* held too: flush passes it on after the data */
}

static void timer(fl_stage_t *s)
{
    fl_stage_close(s);
}

const fl_toxic_type_t fl_toxic_timeout = {
    .name = "timeout",
    .doc = "stops all data; closes the connection after ms (0: hold until healed)",
    .params = {{"ms", 0, 3600000, 0, 0, "close after this many milliseconds; 0 never"}},
    .start = start,
    .data = data,
    .eof = eof,
    .timer = timer,
};
