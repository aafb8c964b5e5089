/* Unit tests for every toxic under harness/toxics/, each on a real link over TCP on 127.0.0.1
 * (fixture in linkfx.h): bytes in and out (exact, in order), timing within a tolerance, and the
 * counters each toxic keeps (toxic->stats). latency (round trip, order under jitter, removal
 * flushes), bandwidth (rate both ways, and on a loop whose timers run late), slicer (many
 * small reads; sub-millisecond gaps hold on average), limit_data (exactly N bytes then the
 * close, also through slower toxics after it; 0), timeout (a blackhole that holds bytes and EOF,
 * bounded, and delivers them when removed; close after ms, counted once both ways),
 * reset_peer (after ms, at once, on an open connection), slow_close (EOF late, data not),
 * refuse (new connections reset, open ones untouched), and directions. Every wait is bounded
 * by a watchdog; every test ends with uv_loop_close() == 0. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "harness/link.h"
#include "lib/err.h"
#include "linkfx.h"

#define MB (1024 * 1024)
#define TOL_MS 80                     /* how late a timed event may be (a loaded machine, ASan) */
#define HIGH_WATER_BOUND (512 * 1024) /* link.c: 256 KiB high water + one 64 KiB read, doubled */

/* t is in [ms - 2, ms + TOL_MS]. */
#define ck_assert_about(t, ms)                                                                     \
    do {                                                                                           \
        double t_ = (t), ms_ = (ms);                                                               \
        ck_assert_msg(t_ >= ms_ - 2 && t_ <= ms_ + TOL_MS, "%s = %.1f ms, expected about %.0f",    \
                      #t, t_, ms_);                                                                \
    } while (0)

static fx_t *echo_fx(void)
{
    fx_t *fx = fx_new();
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    return fx;
}

static fx_t *source_fx(uint64_t bytes)
{
    fx_t *fx = fx_new();
    fx->up_source_bytes = bytes;
    fx_upstream(fx, UP_SOURCE);
    fx_link(fx);
    return fx;
}

static fx_t *sink_fx(void)
{
    fx_t *fx = fx_new();
    fx_upstream(fx, UP_SINK);
    fx_link(fx);
    return fx;
}

/* ------------------------------------------------------------ latency ---- */

START_TEST(latency_delays_the_round_trip)
{
    fx_t *fx = echo_fx();
    fl_toxic_t *t = fx_toxic(fx, "latency", DOWN, "ms=100");
    peer_t *c = client_open(fx);
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = uv_hrtime();
        double rtt = echo_round_trip(fx, c, 100);
        ck_assert_about(rtt, 100);
        ck_assert_double_lt(ms_between(t0, fx->ups[0]->rx_last_ns), 50); /* upstream: on time */
    }
    ck_assert_uint_eq(t->stats.connections, 1);
    ck_assert_uint_ge(t->stats.chunks, 3);
    ck_assert_uint_eq(t->stats.bytes, 300);
    ck_assert_uint_eq(t->stats.dropped, 0);
    fx_finish(fx);
}
END_TEST

START_TEST(latency_jitter_keeps_order)
{
    fx_t *fx = sink_fx();
    fl_toxic_t *t = fx_toxic(fx, "latency", UP, "ms=30 jitter=30");
    peer_t *c = client_open(fx);
    for (int i = 0; i < 60; i++) {
        peer_send(c, 50);
        fx_run_for(fx, 2); /* separate chunks, each with its own draw */
    }
    peer_shutdown(c);
    WAIT(fx, peer_ended(c));
    peer_t *u = fx->ups[0];
    ck_assert(u->eof);
    ck_assert_uint_eq(u->rx, 3000);
    ck_assert_uint_eq(u->rx_bad, 0); /* in order */
    ck_assert_str_eq(c->text, "got 3000 bad 0");
    ck_assert_uint_ge(t->stats.chunks, 20);
    ck_assert_uint_eq(t->stats.bytes, 3000);
    fx_finish(fx);
}
END_TEST

START_TEST(latency_removal_flushes)
{
    fx_t *fx = sink_fx();
    fl_toxic_t *t = fx_toxic(fx, "latency", UP, "ms=10000");
    peer_t *c = client_open(fx);
    peer_t *u = fx->ups[0];
    c->fin_when_sent = 1;
    peer_send(c, 5000);
    fx_run_for(fx, 200);
    ck_assert_uint_eq(u->rx, 0);
    ck_assert(!u->eof);
    ck_assert_uint_eq(t->stats.bytes, 5000);
    uint64_t t0 = uv_hrtime();
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, "latency_upstream"), 0);
    WAIT(fx, u->eof);
    ck_assert_double_lt(ms_between(t0, u->eof_ns), 100);
    ck_assert_uint_eq(u->rx, 5000);
    ck_assert_uint_eq(u->rx_bad, 0);
    WAIT(fx, c->eof);
    ck_assert_str_eq(c->text, "got 5000 bad 0");
    fx_finish(fx);
}
END_TEST

/* ------------------------------------------------------------ bandwidth ---- */

START_TEST(bandwidth_limits_the_rate)
{
    /* downstream: 100 000 bytes at 800 kbit/s (100 000 B/s) take about 1 s */
    fx_t *fx = source_fx(100000);
    fl_toxic_t *t = fx_toxic(fx, "bandwidth", DOWN, "kbps=800");
    peer_t *c = client_open(fx);
    WAIT(fx, peer_ended(c));
    ck_assert(c->eof);
    ck_assert_uint_eq(c->rx, 100000);
    ck_assert_uint_eq(c->rx_bad, 0);
    double took = ms_between(c->connect_ns, c->eof_ns);
    /* never faster than the rate; slower only as far as a loaded machine delays the loop */
    ck_assert_msg(took >= 800 && took <= 2000, "100 kB at 800 kbps took %.0f ms", took);
    ck_assert_msg(c->reads >= 20, "only %d reads: not paced", c->reads);
    ck_assert_uint_eq(t->stats.bytes, 100000);
    ck_assert_uint_eq(t->stats.connections, 1);
    fx_finish(fx);

    /* upstream: 25 000 bytes at 400 kbit/s take about 0.5 s; the other way is not limited */
    fx = sink_fx();
    t = fx_toxic(fx, "bandwidth", UP, "kbps=400");
    c = client_open(fx);
    peer_t *u = fx->ups[0];
    uint64_t t0 = uv_hrtime();
    c->fin_when_sent = 1;
    peer_send(c, 25000);
    WAIT(fx, u->eof);
    took = ms_between(t0, u->eof_ns);
    ck_assert_msg(took >= 400 && took <= 1000, "25 kB at 400 kbps took %.0f ms", took);
    ck_assert_uint_eq(u->rx, 25000);
    ck_assert_uint_eq(u->rx_bad, 0);
    WAIT(fx, c->eof);
    ck_assert_double_lt(ms_between(u->eof_ns, c->rx_last_ns), 100);
    ck_assert_str_eq(c->text, "got 25000 bad 0");
    fx_finish(fx);
}
END_TEST

static void busy_cb(uv_check_t *h)
{
    struct timespec ts = {0, 3000000}; /* every loop turn takes 3 ms more, without the CPU */
    nanosleep(&ts, NULL);
}

START_TEST(bandwidth_rate_holds_on_a_busy_loop)
{
    /* a busy loop runs every timer late: the rate must still hold on average */
    fx_t *fx = source_fx(25000);
    uv_check_t busy;
    uv_check_init(&fx->loop, &busy);
    uv_check_start(&busy, busy_cb);
    fx_toxic(fx, "bandwidth", DOWN, "kbps=400");
    peer_t *c = client_open(fx);
    WAIT(fx, peer_ended(c));
    ck_assert(c->eof);
    ck_assert_uint_eq(c->rx, 25000);
    double took = ms_between(c->connect_ns, c->eof_ns);
    ck_assert_msg(took >= 400 && took <= 1000, "25 kB at 400 kbps took %.0f ms", took);
    uv_close((uv_handle_t *)&busy, NULL);
    fx_finish(fx);
}
END_TEST

/* ------------------------------------------------------------ slicer ---- */

START_TEST(slicer_many_small_reads)
{
    fx_t *fx = source_fx(4000);
    fl_toxic_t *t = fx_toxic(fx, "slicer", DOWN, "avg=100 variation=50 delay_us=2000");
    peer_t *c = client_open(fx);
    WAIT(fx, peer_ended(c));
    ck_assert(c->eof);
    ck_assert_uint_eq(c->rx, 4000);
    ck_assert_uint_eq(c->rx_bad, 0);
    ck_assert_msg(c->reads >= 15, "only %d reads", c->reads);
    ck_assert_uint_le(c->max_read, 2000);
    ck_assert_uint_ge(t->stats.chunks, 4000 / 150);
    ck_assert_uint_le(t->stats.chunks, 4000 / 50 + 1);
    ck_assert_uint_eq(t->stats.bytes, 4000);
    fx_finish(fx);

    /* a gap below the timer's resolution: several slices leave per tick, so the spacing
     * holds on average (~100 slices 200 us apart: ~20 ms, not ~100 ticks of 1 ms) */
    fx = source_fx(6400);
    t = fx_toxic(fx, "slicer", DOWN, "avg=64 delay_us=200");
    c = client_open(fx);
    WAIT(fx, peer_ended(c));
    ck_assert_uint_eq(c->rx, 6400);
    ck_assert_uint_eq(c->rx_bad, 0);
    ck_assert_uint_eq(t->stats.chunks, 100);
    double took = ms_between(c->rx_first_ns, c->rx_last_ns);
    ck_assert_msg(took >= 15 && took <= 90, "100 slices 200 us apart took %.1f ms", took);
    fx_finish(fx);

    /* no delay, below the timer's resolution: the bytes are exact all the same */
    const char *params[] = {"avg=1000 delay_us=0", "avg=200 variation=199 delay_us=100"};
    for (int i = 0; i < 2; i++) {
        fx = source_fx(200000);
        t = fx_toxic(fx, "slicer", DOWN, params[i]);
        c = client_open(fx);
        WAIT(fx, peer_ended(c));
        ck_assert(c->eof);
        ck_assert_uint_eq(c->rx, 200000);
        ck_assert_uint_eq(c->rx_bad, 0);
        ck_assert_uint_ge(t->stats.chunks, 200);
        fx_finish(fx);
    }
}
END_TEST

/* ------------------------------------------------------------ limit_data ---- */

START_TEST(limit_data_downstream)
{
    fx_t *fx = source_fx(100000);
    fl_toxic_t *t = fx_toxic(fx, "limit_data", DOWN, "bytes=10000");
    peer_t *c = client_open(fx);
    WAIT(fx, peer_ended(c));
    ck_assert_msg(c->eof, "expected a clean close, got %s", uv_err_name(c->err));
    ck_assert_uint_eq(c->rx, 10000);
    ck_assert_uint_eq(c->rx_bad, 0);
    WAIT(fx, fx->link.stats.active == 0);
    WAIT(fx, peer_ended(fx->ups[0]));
    ck_assert_uint_eq(t->stats.closes, 1);
    ck_assert_uint_eq(fx->link.stats.bytes[FL_DIR_DOWN], 10000);
    fx_finish(fx);

    /* exactly at the limit: everything passes, then the close */
    fx = source_fx(5000);
    t = fx_toxic(fx, "limit_data", DOWN, "bytes=5000");
    c = client_open(fx);
    WAIT(fx, peer_ended(c));
    ck_assert(c->eof);
    ck_assert_uint_eq(c->rx, 5000);
    ck_assert_uint_eq(c->rx_bad, 0);
    ck_assert_uint_eq(t->stats.closes, 1);
    ck_assert_uint_eq(t->stats.dropped, 0);
    fx_finish(fx);
}
END_TEST

START_TEST(limit_data_upstream)
{
    fx_t *fx = sink_fx();
    fl_toxic_t *t = fx_toxic(fx, "limit_data", UP, "bytes=1234");
    peer_t *c = client_open(fx);
    peer_t *u = fx->ups[0];
    peer_send(c, 50000);
    WAIT(fx, peer_ended(u));
    ck_assert_msg(u->eof, "expected a clean close, got %s", uv_err_name(u->err));
    ck_assert_uint_eq(u->rx, 1234);
    ck_assert_uint_eq(u->rx_bad, 0);
    WAIT(fx, peer_ended(c));
    WAIT(fx, fx->link.stats.active == 0);
    ck_assert_uint_eq(t->stats.closes, 1);
    ck_assert_uint_gt(t->stats.dropped, 0);
    ck_assert_uint_le(t->stats.dropped, 50000 - 1234);
    ck_assert_uint_eq(fx->link.stats.bytes[FL_DIR_UP], 1234);
    fx_finish(fx);
}
END_TEST

START_TEST(limit_data_then_slower_toxics)
{
    /* the close follows the bytes through the toxics after limit_data: they all arrive */
    static const struct {
        const char *type, *params;
        double min_ms; /* how late the close is, at least */
    } after[] = {
        {"latency", "ms=100", 99},
        {"bandwidth", "kbps=160", 39},           /* 1000 B at 20 000 B/s, the first 200 at once */
        {"slicer", "avg=100 delay_us=2000", 17}, /* 10 slices 2 ms apart */
        {"slow_close", "ms=100", 99},
    };
    for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
        fx_t *fx = source_fx(100000);
        fl_toxic_t *t = fx_toxic(fx, "limit_data", DOWN, "bytes=1000");
        fx_toxic(fx, after[i].type, DOWN, after[i].params);
        peer_t *c = client_open(fx);
        WAIT(fx, peer_ended(c));
        ck_assert_msg(c->eof && c->rx == 1000, "then %s: %llu bytes, eof %d, err %s", after[i].type,
                      (unsigned long long)c->rx, c->eof, uv_err_name(c->err));
        ck_assert_uint_eq(c->rx_bad, 0);
        ck_assert_double_ge(ms_between(c->connect_ns, c->eof_ns), after[i].min_ms);
        WAIT(fx, fx->link.stats.active == 0);
        ck_assert_uint_eq(t->stats.closes, 1);
        ck_assert_uint_eq(fx->link.stats.resets, 0);
        fx_finish(fx);
    }
}
END_TEST

START_TEST(limit_data_zero_closes_at_once)
{
    fx_t *fx = echo_fx();
    fl_toxic_t *t = fx_toxic(fx, "limit_data", DOWN, "bytes=0");
    peer_t *c = client_new(fx);
    WAIT_MS(fx, peer_ended(c), 1000);
    ck_assert_uint_eq(c->rx, 0);
    ck_assert_uint_eq(t->stats.closes, 1);
    WAIT(fx, fx->link.stats.active == 0);
    fx_run_for(fx, 50);
    ck_assert_int_eq(fx->nups, 0); /* the upstream was never dialled */
    fx_finish(fx);
}
END_TEST

/* ------------------------------------------------------------ timeout ---- */

/* A graceful close waits for queued writes; a peer that never reads must not keep the
 * connection for ever: after the link's drain limit it is reset. */
START_TEST(graceful_close_of_a_reader_that_never_reads_is_bounded)
{
    fx_t *fx = fx_new();
    fx->up_source_bytes = 64 * MB; /* far more than the kernel's buffers take */
    fx_upstream(fx, UP_SOURCE);
    fx->link.drain_limit_ns = 300000000ull;
    fx_link(fx);
    peer_t *c = client_new_to(fx, fx->link.listen_port, 1); /* never reads */
    WAIT(fx, c->connected);
    fx_run_for(fx, 200); /* the link's writes to c back up */
    fl_toxic_t *t = fx_toxic(fx, "timeout", UP, "ms=50");
    uint64_t t0 = uv_hrtime();
    WAIT(fx, fx->link.stats.active == 0);
    double ms = ms_between(t0, uv_hrtime());
    ck_assert_uint_eq(t->stats.closes, 1);
    ck_assert_uint_eq(fx->link.stats.resets, 1);
    ck_assert_msg(ms > 300 && ms < 2000, "reset after %.0f ms", ms);
    fx_finish(fx);
}
END_TEST

START_TEST(timeout_zero_holds_until_removed)
{
    fx_t *fx = sink_fx();
    fl_toxic_t *t = fx_toxic(fx, "timeout", UP, "ms=0");
    peer_t *c = client_open(fx);
    peer_t *u = fx->ups[0];
    c->fin_when_sent = 1;
    peer_send(c, 10000);
    fx_run_for(fx, 300);
    ck_assert_uint_eq(u->rx, 0);
    ck_assert(!u->eof); /* the EOF is held too */
    ck_assert(!peer_ended(c));
    ck_assert_uint_eq(t->stats.bytes, 10000);
    ck_assert_uint_eq(t->stats.dropped, 0);
    ck_assert_uint_eq(t->stats.closes, 0);
    uint64_t t0 = uv_hrtime();
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, t->name), 0);
    WAIT(fx, u->eof);
    ck_assert_double_lt(ms_between(t0, u->eof_ns), 100);
    ck_assert_uint_eq(u->rx, 10000);
    ck_assert_uint_eq(u->rx_bad, 0);
    WAIT(fx, peer_ended(c));
    ck_assert(c->eof);
    ck_assert_str_eq(c->text, "got 10000 bad 0");
    fx_finish(fx);
}
END_TEST

START_TEST(timeout_zero_holds_a_bounded_amount)
{
    fx_t *fx = sink_fx();
    fl_toxic_t *t = fx_toxic(fx, "timeout", UP, "ms=0");
    peer_t *c = client_open(fx);
    peer_t *u = fx->ups[0];
    c->fin_when_sent = 1;
    peer_send(c, 16 * MB); /* more than the kernel's buffers take */
    fx_run_for(fx, 300);
    ck_assert_uint_eq(u->rx, 0);
    ck_assert_msg(t->stats.bytes <= HIGH_WATER_BOUND, "the blackhole holds %llu bytes",
                  (unsigned long long)t->stats.bytes);
    ck_assert_msg(c->tx_done < 16 * MB, "the sender felt no backpressure (%llu bytes written)",
                  (unsigned long long)c->tx_done);
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, t->name), 0);
    WAIT(fx, u->eof);
    ck_assert_uint_eq(u->rx, 16 * MB);
    ck_assert_uint_eq(u->rx_bad, 0);
    WAIT(fx, c->eof);
    ck_assert_str_eq(c->text, "got 16777216 bad 0");
    fx_finish(fx);
}
END_TEST

START_TEST(timeout_closes_after_ms)
{
    fx_t *fx = echo_fx();
    fl_toxic_t *t = fx_toxic(fx, "timeout", DOWN, "ms=200");
    peer_t *c = client_open(fx);
    peer_send(c, 100);
    WAIT(fx, peer_ended(c));
    ck_assert_msg(c->eof, "expected a clean close, got %s", uv_err_name(c->err));
    ck_assert_about(ms_between(c->connect_ns, c->eof_ns), 200);
    ck_assert_uint_eq(c->rx, 0);            /* nothing passed downstream */
    ck_assert_uint_eq(fx->ups[0]->rx, 100); /* upstream was not affected */
    WAIT(fx, peer_ended(fx->ups[0]));
    WAIT(fx, fx->link.stats.active == 0);
    ck_assert_uint_eq(t->stats.closes, 1);
    ck_assert_uint_eq(t->stats.bytes, 100);
    fx_finish(fx);
}
END_TEST

START_TEST(timeout_both_ways_closes_once)
{
    fx_t *fx = echo_fx();
    fl_toxic_t *t = fx_toxic(fx, "timeout", BOTH, "ms=150");
    peer_t *c = client_open(fx);
    peer_send(c, 100);
    WAIT(fx, peer_ended(c) && peer_ended(fx->ups[0]));
    ck_assert(c->eof);
    ck_assert_about(ms_between(c->connect_ns, c->eof_ns), 150);
    ck_assert_uint_eq(c->rx, 0);
    ck_assert_uint_eq(fx->ups[0]->rx, 0);
    WAIT(fx, fx->link.stats.active == 0);
    fx_run_for(fx, 50);
    ck_assert_uint_eq(t->stats.connections, 1);
    ck_assert_uint_eq(t->stats.closes, 1); /* one connection closed, once */
    fx_finish(fx);
}
END_TEST

/* ------------------------------------------------------------ reset_peer ---- */

START_TEST(reset_peer_after_ms)
{
    fx_t *fx = echo_fx();
    fl_toxic_t *t = fx_toxic(fx, "reset_peer", DOWN, "ms=200");
    peer_t *c = client_open(fx);
    peer_t *u = fx->ups[0];
    echo_round_trip(fx, c, 100); /* works until then */
    WAIT(fx, peer_ended(c) && peer_ended(u));
    ck_assert_int_eq(c->err, UV_ECONNRESET);
    ck_assert_int_eq(u->err, UV_ECONNRESET);
    ck_assert_about(ms_between(c->connect_ns, c->err_ns), 200);
    ck_assert_uint_eq(t->stats.resets, 1);
    ck_assert_uint_eq(fx->link.stats.resets, 1);
    ck_assert_uint_eq(fx->link.stats.active, 0);
    fx_finish(fx);
}
END_TEST

START_TEST(reset_peer_at_once)
{
    fx_t *fx = echo_fx();
    fl_toxic_t *t = fx_toxic(fx, "reset_peer", DOWN, "ms=0");
    peer_t *c = client_new(fx);
    WAIT_MS(fx, peer_ended(c), 1000);
    ck_assert(peer_was_reset(c));
    ck_assert_uint_eq(t->stats.resets, 1);
    fx_run_for(fx, 50);
    ck_assert_int_eq(fx->nups, 0);
    fl_link_heal(&fx->link);

    /* added to an open connection: ms counts from then */
    c = client_open(fx);
    peer_t *u = fx->ups[0];
    fx_run_for(fx, 100);
    uint64_t t0 = uv_hrtime();
    t = fx_toxic(fx, "reset_peer", DOWN, "ms=100");
    WAIT(fx, peer_ended(c) && peer_ended(u));
    ck_assert_int_eq(c->err, UV_ECONNRESET);
    ck_assert_about(ms_between(t0, c->err_ns), 100);
    ck_assert_uint_eq(t->stats.resets, 1);
    ck_assert_uint_eq(fx->link.stats.resets, 2);
    fx_finish(fx);
}
END_TEST

/* ------------------------------------------------------------ slow_close ---- */

START_TEST(slow_close_delays_the_eof_only)
{
    fx_t *fx = source_fx(1000);
    fl_toxic_t *t = fx_toxic(fx, "slow_close", DOWN, "ms=300");
    peer_t *c = client_open(fx);
    WAIT(fx, peer_ended(c));
    ck_assert(c->eof);
    ck_assert_uint_eq(c->rx, 1000);
    ck_assert_uint_eq(c->rx_bad, 0);
    ck_assert_double_lt(ms_between(c->connect_ns, c->rx_last_ns), 100); /* data on time */
    ck_assert_about(ms_between(c->rx_last_ns, c->eof_ns), 300);
    ck_assert_uint_eq(t->stats.chunks, 1);
    fx_finish(fx);

    /* removed while the EOF waits: it passes at once */
    fx = source_fx(1000);
    t = fx_toxic(fx, "slow_close", DOWN, "ms=10000");
    c = client_open(fx);
    WAIT(fx, c->rx == 1000);
    fx_run_for(fx, 100);
    ck_assert(!c->eof);
    uint64_t t0 = uv_hrtime();
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, t->name), 0);
    WAIT(fx, c->eof);
    ck_assert_double_lt(ms_between(t0, c->eof_ns), 100);
    fx_finish(fx);
}
END_TEST

/* ------------------------------------------------------------ refuse ---- */

START_TEST(refuse_resets_new_connections_only)
{
    fx_t *fx = echo_fx();
    peer_t *open = client_open(fx);
    echo_round_trip(fx, open, 100);
    fl_toxic_t *t = fx_toxic(fx, "refuse", DOWN, NULL);
    for (int i = 0; i < 2; i++) {
        peer_t *c = client_new(fx);
        WAIT(fx, peer_ended(c));
        ck_assert_msg(peer_was_reset(c), "connect %s read %s eof %d",
                      uv_err_name(c->connect_status), uv_err_name(c->err), c->eof);
        ck_assert_uint_eq(c->rx, 0);
    }
    ck_assert_uint_eq(t->stats.refused, 2);
    ck_assert_uint_eq(fx->link.stats.refused, 2);
    ck_assert_int_eq(fx->nups, 1);                            /* the upstream never saw them */
    ck_assert_double_lt(echo_round_trip(fx, open, 100), 100); /* the open one is untouched */
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, "refuse_downstream"), 0);
    peer_t *after = client_open(fx);
    echo_round_trip(fx, after, 100);
    ck_assert_uint_eq(fx->link.stats.refused, 2);
    fx_finish(fx);
}
END_TEST

/* ------------------------------------------------------------ directions ---- */

START_TEST(directions_are_honoured)
{
    static const struct {
        int dirs;
        int up_late, down_late;
    } cases[] = {{UP, 1, 0}, {DOWN, 0, 1}, {BOTH, 1, 1}};
    fx_t *fx = echo_fx();
    for (int i = 0; i < 3; i++) {
        fl_toxic_t *t = fx_toxic(fx, "latency", cases[i].dirs, "ms=150");
        peer_t *c = client_open(fx);
        peer_t *u = fx->ups[fx->nups - 1];
        uint64_t t0 = uv_hrtime();
        echo_round_trip(fx, c, 10);
        double up = ms_between(t0, u->rx_last_ns), down = ms_between(u->rx_last_ns, c->rx_last_ns);
        if (cases[i].up_late)
            ck_assert_about(up, 150);
        else
            ck_assert_double_lt(up, 50);
        if (cases[i].down_late)
            ck_assert_about(down, 150);
        else
            ck_assert_double_lt(down, 50);
        ck_assert_uint_eq(t->stats.connections, 1);
        ck_assert_uint_eq(t->stats.bytes, cases[i].dirs == BOTH ? 20 : 10);
        peer_close(c);
        WAIT(fx, fx->link.stats.active == 0);
        fl_link_heal(&fx->link);
    }

    /* a blackhole both ways: nothing either way until healed */
    fx_toxic(fx, "timeout", BOTH, "ms=0");
    peer_t *c = client_open(fx);
    peer_t *u = fx->ups[fx->nups - 1];
    peer_send(c, 1000);
    fx_run_for(fx, 100);
    ck_assert_uint_eq(u->rx, 0);
    fl_link_heal(&fx->link);
    WAIT(fx, c->rx == 1000);
    ck_assert_uint_eq(c->rx_bad, 0);
    fx_finish(fx);
}
END_TEST

static Suite *toxics_suite(void)
{
    Suite *s = suite_create("toxics");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, latency_delays_the_round_trip);
    tcase_add_test(tc, latency_jitter_keeps_order);
    tcase_add_test(tc, latency_removal_flushes);
    tcase_add_test(tc, bandwidth_limits_the_rate);
    tcase_add_test(tc, bandwidth_rate_holds_on_a_busy_loop);
    tcase_add_test(tc, slicer_many_small_reads);
    tcase_add_test(tc, limit_data_downstream);
    tcase_add_test(tc, limit_data_upstream);
    tcase_add_test(tc, limit_data_then_slower_toxics);
    tcase_add_test(tc, limit_data_zero_closes_at_once);
    tcase_add_test(tc, timeout_zero_holds_until_removed);
    tcase_add_test(tc, timeout_zero_holds_a_bounded_amount);
    tcase_add_test(tc, timeout_closes_after_ms);
    tcase_add_test(tc, timeout_both_ways_closes_once);
    tcase_add_test(tc, reset_peer_after_ms);
    tcase_add_test(tc, reset_peer_at_once);
    tcase_add_test(tc, slow_close_delays_the_eof_only);
    tcase_add_test(tc, refuse_resets_new_connections_only);
    tcase_add_test(tc, directions_are_honoured);
    tcase_add_test(tc, graceful_close_of_a_reader_that_never_reads_is_bounded);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the harness does: a peer gone mid-write is an error code */
    SRunner *sr = srunner_create(toxics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
