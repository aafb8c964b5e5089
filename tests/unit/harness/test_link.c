/* Unit tests for harness/link.c, the proxy core, on a real loop and real TCP sockets on
 * 127.0.0.1 (fixture in linkfx.h): byte-exact forwarding both ways (several MB of pseudo-random
 * data checked byte by byte), half-close propagated each way, a refused or unparseable
 * upstream, fl_link_set_upstream, bounded memory when the client never reads (the bytes read
 * and not written, measured from the kernel's queues, stay under the high-water mark),
 * dropping connections with and without a reset, many connections ended in every order,
 * closing the link with connections open (and after a failed open), a toxic added to an open
 * connection, spec validation and its messages, removal, `first` (new and open connections,
 * also one budget shared between links), toxicity 0/½/1, default names, and a write error
 * raised while a toxic is passing data on (ASan: no use after free). Every wait is bounded by
 * a watchdog; every test ends with uv_loop_close() == 0, so a leaked handle fails. */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "harness/link.h"
#include "lib/err.h"
#include "linkfx.h"

#define MB (1024 * 1024)
#define HIGH_WATER_BOUND (512 * 1024) /* link.c: 256 KiB high water + one 64 KiB read, doubled */

static int toxic_count(fl_link_t *l)
{
    int n = 0;
    for (fl_toxic_t *t = l->toxics; t; t = t->next)
        n++;
    return n;
}

/* ------------------------------------------------------------ forwarding ---- */

START_TEST(echo_both_ways_byte_exact)
{
    fx_t *fx = fx_new();
    fx->no_splice = _i; /* _i 0: splice(2); 1: read and write */
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    peer_t *c = client_open(fx);
    c->fin_when_sent = 1;
    peer_send(c, 8 * MB);
    WAIT(fx, peer_ended(c));
    ck_assert_int_eq(c->err, 0);
    ck_assert(c->eof);
    ck_assert_uint_eq(fx->ups[0]->rx, 8 * MB);
    ck_assert_uint_eq(fx->ups[0]->rx_bad, 0);
    ck_assert_uint_eq(c->rx, 8 * MB);
    ck_assert_uint_eq(c->rx_bad, 0);
    ck_assert_uint_eq(fx->link.stats.bytes[FL_DIR_UP], 8 * MB);
    ck_assert_uint_eq(fx->link.stats.bytes[FL_DIR_DOWN], 8 * MB);
    /* the path under test carried them (splice: all but what found the destination full) */
    if (_i)
        ck_assert_uint_eq(fx->link.stats.spliced, 0);
    else
        ck_assert_uint_gt(fx->link.stats.spliced, 8 * MB);
    WAIT(fx, fx->link.stats.active == 0); /* both ways shut: the link closes it */
    ck_assert_uint_eq(fx->link.stats.accepted, 1);
    ck_assert_uint_eq(fx->link.stats.resets, 0);
    fx_finish(fx);
}
END_TEST

START_TEST(each_way_alone_byte_exact)
{
    /* downstream only: the upstream sends 6 MB then FIN */
    fx_t *fx = fx_new();
    fx->no_splice = _i;
    fx->up_source_bytes = 6 * MB;
    fx_upstream(fx, UP_SOURCE);
    fx_link(fx);
    peer_t *c = client_open(fx);
    WAIT(fx, peer_ended(c));
    ck_assert(c->eof);
    ck_assert_uint_eq(c->rx, 6 * MB);
    ck_assert_uint_eq(c->rx_bad, 0);
    ck_assert_uint_eq(fx->link.stats.bytes[FL_DIR_DOWN], 6 * MB);
    ck_assert_uint_eq(fx->link.stats.bytes[FL_DIR_UP], 0);
    fx_finish(fx);

    /* upstream only: the client sends 6 MB then FIN; the sink answers what it counted */
    fx = fx_new();
    fx->no_splice = _i;
    fx_upstream(fx, UP_SINK);
    fx_link(fx);
    c = client_open(fx);
    c->fin_when_sent = 1;
    peer_send(c, 6 * MB);
    WAIT(fx, peer_ended(c));
    ck_assert(c->eof);
    ck_assert_str_eq(c->text, "got 6291456 bad 0");
    ck_assert_uint_eq(fx->ups[0]->rx, 6 * MB);
    ck_assert_uint_eq(fx->ups[0]->rx_bad, 0);
    ck_assert_uint_eq(fx->link.stats.bytes[FL_DIR_UP], 6 * MB);
    fx_finish(fx);
}
END_TEST

START_TEST(half_close_from_client)
{
    fx_t *fx = fx_new();
    fx->no_splice = _i; /* _i 0: splice(2); 1: read and write */
    fx_upstream(fx, UP_SINK);
    fx_link(fx);
    peer_t *c = client_open(fx);
    peer_t *u = fx->ups[0];
    c->fin_when_sent = 1;
    peer_send(c, 1000);
    WAIT(fx, u->eof);
    ck_assert_uint_eq(u->rx, 1000);
    ck_assert_int_eq(u->err, 0);
    ck_assert_int_eq(fx->link.stats.active, 1); /* half-closed, still open */
    /* the upstream answers after the client's FIN, then closes its side */
    WAIT(fx, peer_ended(c));
    ck_assert(c->eof);
    ck_assert_int_eq(c->err, 0);
    ck_assert_str_eq(c->text, "got 1000 bad 0");
    WAIT(fx, fx->link.stats.active == 0);
    ck_assert_uint_eq(fx->link.stats.resets, 0);
    fx_finish(fx);
}
END_TEST

START_TEST(half_close_from_upstream)
{
    fx_t *fx = fx_new();
    fx->no_splice = _i; /* _i 0: splice(2); 1: read and write */
    fx->up_source_bytes = 100000;
    fx_upstream(fx, UP_SOURCE);
    fx_link(fx);
    peer_t *c = client_open(fx);
    peer_t *u = fx->ups[0];
    WAIT(fx, c->eof);
    ck_assert_uint_eq(c->rx, 100000);
    ck_assert_uint_eq(c->rx_bad, 0);
    ck_assert_int_eq(fx->link.stats.active, 1);
    /* the client still talks to an upstream that has sent its FIN */
    peer_send(c, 5000);
    WAIT(fx, u->rx == 5000);
    ck_assert_uint_eq(u->rx_bad, 0);
    ck_assert(!u->eof);
    peer_shutdown(c);
    WAIT(fx, u->eof);
    WAIT(fx, fx->link.stats.active == 0);
    ck_assert_uint_eq(fx->link.stats.resets, 0);
    fx_finish(fx);
}
END_TEST

START_TEST(upstream_refused)
{
    fx_t *fx = fx_new();
    fx->up_port = fx_dead_port(fx);
    fx_link(fx);
    peer_t *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = client_new(fx);
    for (int i = 0; i < 3; i++) {
        WAIT(fx, peer_ended(c[i]));
        ck_assert_msg(peer_was_reset(c[i]), "client %d: connect %d, read %d, eof %d", i,
                      c[i]->connect_status, c[i]->err, c[i]->eof);
        ck_assert_uint_eq(c[i]->rx, 0);
    }
    WAIT(fx, fx->link.stats.upstream_failed == 3);
    ck_assert_uint_eq(fx->link.stats.accepted, 3);
    ck_assert_uint_eq(fx->link.stats.active, 0);
    ck_assert_uint_eq(fx->link.stats.resets, 3);
    fx_finish(fx);
}
END_TEST

START_TEST(set_upstream_for_new_connections)
{
    fx_t *fx = fx_new();
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    peer_t *old = client_open(fx);
    fl_link_set_upstream(&fx->link, "127.0.0.1", fx_dead_port(fx));
    echo_round_trip(fx, old, 100); /* an open connection keeps its upstream */
    peer_t *n = client_new(fx);
    WAIT(fx, peer_ended(n));
    ck_assert(peer_was_reset(n));
    ck_assert_uint_eq(fx->link.stats.upstream_failed, 1);
    fl_link_set_upstream(&fx->link, "no such host", fx->up_port); /* not an address */
    n = client_new(fx);
    WAIT(fx, peer_ended(n));
    ck_assert(peer_was_reset(n));
    ck_assert_uint_eq(fx->link.stats.upstream_failed, 2);
    fl_link_set_upstream(&fx->link, "127.0.0.1", fx->up_port);
    echo_round_trip(fx, client_open(fx), 100);
    fx_finish(fx);
}
END_TEST

/* ------------------------------------------------------------ backpressure ---- */

static int sock_ioctl(int fd, unsigned long req)
{
    int n = -1;
    ck_assert_int_eq(ioctl(fd, req, &n), 0);
    return n;
}

/* Bytes the link has read from the upstream and not yet written to the client, from the
 * kernel's queues: what the upstream's kernel accepted, less what it has not sent yet, less
 * what waits unread in the link's socket, less what the link wrote. */
static int64_t link_holds(fx_t *fx, peer_t *u)
{
    int ufd = -1;
    ck_assert_int_eq(uv_fileno((uv_handle_t *)&u->tcp, &ufd), 0);
    int lfd = fx_link_upstream_fd(fx);
    ck_assert_int_ge(lfd, 0);
    uint64_t accepted = u->tx_queued - uv_stream_get_write_queue_size((uv_stream_t *)&u->tcp);
    uint64_t read =
        accepted - (uint64_t)sock_ioctl(ufd, SIOCOUTQNSD) - (uint64_t)sock_ioctl(lfd, SIOCINQ);
    return (int64_t)read - (int64_t)fx->link.stats.bytes[FL_DIR_DOWN];
}

START_TEST(backpressure_bounds_memory)
{
    const uint64_t total = 50ull * MB;
    fx_t *fx = fx_new();
    fx->no_splice = _i; /* _i 0: splice(2); 1: read and write */
    fx->up_source_bytes = total;
    fx_upstream(fx, UP_SOURCE);
    fx_link(fx);
    peer_t *c = client_new_to(fx, fx->link.listen_port, 1); /* never reads, for now */
    WAIT(fx, c->connected && fx->nups == 1);
    peer_t *u = fx->ups[0];
    /* wait until the upstream can write no more */
    uint64_t last = 0;
    int still = 0;
    for (int i = 0; i < 100 && still < 4; i++) {
        fx_run_for(fx, 50);
        uint64_t now = u->tx_queued - uv_stream_get_write_queue_size((uv_stream_t *)&u->tcp);
        still = now == last ? still + 1 : 0;
        last = now;
    }
    ck_assert_msg(still >= 4, "the upstream never stopped (%llu bytes written)",
                  (unsigned long long)last);
    ck_assert_uint_lt(last, total);
    int64_t held = link_holds(fx, u);
    ck_assert_msg(held >= 0 && held <= HIGH_WATER_BOUND,
                  "the link holds %lld bytes read and not written (upstream wrote %llu, link "
                  "forwarded %llu)",
                  (long long)held, (unsigned long long)last,
                  (unsigned long long)fx->link.stats.bytes[FL_DIR_DOWN]);
    /* the reader wakes up: everything arrives, exact, and the stream ends */
    peer_read_start(c);
    WAIT_MS(fx, peer_ended(c), 30000);
    ck_assert(c->eof);
    ck_assert_uint_eq(c->rx, total);
    ck_assert_uint_eq(c->rx_bad, 0);
    ck_assert_uint_eq(fx->link.stats.bytes[FL_DIR_DOWN], total);
    fx_finish(fx);
}
END_TEST

/* ------------------------------------------------------------ dropping, closing ---- */

static void drop_connections(int reset)
{
    fx_t *fx = fx_new();
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    peer_t *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = client_open(fx);
        echo_round_trip(fx, c[i], 100);
    }
    fl_link_drop_connections(&fx->link, reset);
    ck_assert_uint_eq(fx->link.stats.active, 0);
    for (int i = 0; i < 3; i++) {
        peer_t *u = fx->ups[i];
        WAIT(fx, peer_ended(c[i]) && peer_ended(u));
        if (reset) {
            ck_assert_int_eq(c[i]->err, UV_ECONNRESET);
            ck_assert_int_eq(u->err, UV_ECONNRESET);
        } else {
            ck_assert_msg(c[i]->eof && !c[i]->err, "client %d: err %s", i, uv_err_name(c[i]->err));
            ck_assert_msg(u->eof && !u->err, "upstream %d: err %s", i, uv_err_name(u->err));
        }
    }
    ck_assert_uint_eq(fx->link.stats.resets, reset ? 3 : 0);
    /* still listening: a new connection works */
    peer_t *n = client_open(fx);
    echo_round_trip(fx, n, 1000);
    WAIT(fx,
         fx->link.open_refs == 3); /* the listener, the sweep timer and the one connection left */
    fx_finish(fx);
}

START_TEST(drop_connections_closes)
{
    drop_connections(0);
}
END_TEST

START_TEST(drop_connections_resets)
{
    drop_connections(1);
}
END_TEST

/* How connection i ends. */
enum {
    END_CLIENT_CLOSE,
    END_CLIENT_RESET,
    END_CLIENT_HALF_CLOSE,
    END_UP_CLOSE,
    END_UP_RESET,
    END_UP_HALF_CLOSE,
    END_BOTH_CLOSE,
    END_CLIENT_CLOSE_MID_TRANSFER,
    END_UP_RESET_MID_TRANSFER,
    END_KINDS
};

START_TEST(many_connections_every_order)
{
    enum { N = 4 * END_KINDS };
    fx_t *fx = fx_new();
    fx->no_splice = _i; /* _i 0: splice(2); 1: read and write */
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    fx_toxic(fx, "latency", DOWN, "ms=1"); /* stages and timers on every connection, too */
    peer_t *c[N];
    for (int i = 0; i < N; i++)
        c[i] = client_new(fx);
    WAIT(fx, fx->nups == N);
    for (int i = 0; i < N; i++)
        peer_send(c[i], 100 + (uint64_t)i); /* the length tells the upstream peers apart */
    for (int i = 0; i < N; i++)
        WAIT(fx, c[i]->rx == 100 + (uint64_t)i);
    peer_t *u[N];
    for (int i = 0; i < N; i++) {
        u[i] = NULL;
        for (int k = 0; k < N; k++)
            if (fx->ups[k]->rx == 100 + (uint64_t)i)
                u[i] = fx->ups[k];
        ck_assert_ptr_nonnull(u[i]);
    }
    for (int i = 0; i < N; i++) {
        switch (i % END_KINDS) {
        case END_CLIENT_CLOSE:
            peer_close(c[i]);
            break;
        case END_CLIENT_RESET:
            peer_reset(c[i]);
            break;
        case END_CLIENT_HALF_CLOSE:
            peer_shutdown(c[i]); /* the echo closes its side in turn */
            break;
        case END_UP_CLOSE:
            peer_close(u[i]);
            break;
        case END_UP_RESET:
            peer_reset(u[i]);
            break;
        case END_UP_HALF_CLOSE:
            peer_shutdown(u[i]);
            break;
        case END_BOTH_CLOSE:
            peer_close(u[i]);
            peer_close(c[i]);
            break;
        case END_CLIENT_CLOSE_MID_TRANSFER:
            peer_send(c[i], 2 * MB);
            peer_close(c[i]);
            break;
        case END_UP_RESET_MID_TRANSFER:
            peer_send(c[i], 2 * MB);
            fx_run_for(fx, 1);
            peer_reset(u[i]);
            break;
        }
        if (i % 3 == 0)
            fx_run_for(fx, 1); /* some together in one loop turn, some apart */
    }
    /* clients not closed by the test close once their connection has ended */
    for (int i = 0; i < N; i++) {
        WAIT(fx, c[i]->closing || peer_ended(c[i]));
        peer_close(c[i]);
    }
    WAIT(fx, fx->link.stats.active == 0);
    for (int k = 0; k < fx->nups; k++) {
        WAIT(fx, fx->ups[k]->closing || peer_ended(fx->ups[k]));
        peer_close(fx->ups[k]);
    }
    /* connections that never reached the upstream: opened and closed at once, or reset */
    for (int i = 0; i < 8; i++) {
        peer_t *p = client_new(fx);
        WAIT(fx, p->connected || p->connect_status);
        if (i % 2)
            peer_reset(p);
        else
            peer_close(p);
    }
    WAIT(fx, fx->link.stats.accepted == N + 8 && fx->link.stats.active == 0);
    WAIT(fx, fx->link.open_refs == 2); /* every connection's memory and timers are gone */
    fx_finish(fx);
}
END_TEST

static void other_link_closed(fl_link_t *l)
{
    *(int *)l->data += 1;
}

START_TEST(close_with_connections_open)
{
    fx_t *fx = fx_new();
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    fx_toxic(fx, "timeout", UP, "ms=0");       /* holds what the clients send */
    fx_toxic(fx, "latency", DOWN, "ms=10000"); /* a timer pending on every connection */
    peer_t *c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = client_open(fx);
        peer_send(c[i], 300000);
    }
    peer_t *late = client_new(fx); /* accepted, maybe still connecting upstream */
    WAIT(fx, fx->link.stats.accepted == 5);
    fx_close_link(fx);
    WAIT(fx, fx->link_closed == 1);
    ck_assert_uint_eq(fx->link.stats.active, 0);
    ck_assert_ptr_null(fx->link.toxics);
    ck_assert_ptr_null(fx->link.conns);
    for (int i = 0; i < 4; i++) {
        WAIT(fx, peer_ended(c[i]) && peer_ended(fx->ups[i]));
        ck_assert_uint_eq(fx->ups[i]->rx, 0);
        ck_assert_uint_eq(c[i]->rx, 0);
    }
    WAIT(fx, peer_ended(late));
    /* nothing listens any more */
    peer_t *refused = client_new(fx);
    WAIT(fx, peer_ended(refused));
    ck_assert_int_eq(refused->connect_status, UV_ECONNREFUSED);

    /* a link that failed to open closes all the same */
    fl_link_t other;
    int closed = 0;
    memset(&other, 0, sizeof other);
    other.data = &closed;
    ck_assert_int_eq(fl_link_open(&fx->loop, &other, "127.0.0.1", fx->up_port, "127.0.0.1",
                                  fx->up_port, &fx->rng),
                     UV_EADDRINUSE);
    fl_link_close(&other, other_link_closed);
    WAIT(fx, closed == 1);
    fx_finish(fx);
}
END_TEST

/* ------------------------------------------------------------ toxics on a link ---- */

START_TEST(toxic_added_to_open_connection)
{
    fx_t *fx = fx_new();
    fx->no_splice = _i; /* _i 0: splice(2); 1: read and write */
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    peer_t *c = client_open(fx);
    double before = echo_round_trip(fx, c, 100);
    ck_assert_double_lt(before, 100);
    ck_assert_uint_eq(fx->link.stats.spliced, _i ? 0 : 200); /* both ways straight through */
    fl_toxic_t *t = fx_toxic(fx, "latency", DOWN, "ms=200");
    ck_assert_uint_eq(t->stats.connections, 1);
    double with = echo_round_trip(fx, c, 100);
    ck_assert_double_ge(with, 199);
    ck_assert_double_lt(with, 400);
    ck_assert_uint_eq(t->stats.bytes, 100);
    ck_assert_uint_eq(fx->link.stats.spliced, _i ? 0 : 300); /* up still spliced, down not */
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, t->name), 0);
    double after = echo_round_trip(fx, c, 100);
    ck_assert_double_lt(after, 100);
    ck_assert_uint_eq(fx->link.stats.spliced, _i ? 0 : 500); /* spliced again both ways */
    fx_finish(fx);
}
END_TEST

/* A stream in full flow, forwarded straight through (spliced, or in the copy loop), meets a
 * blackhole added to the open connection: from then on the link forwards nothing; healed,
 * the stream ends complete and exact. The fast path must be left the moment a toxic applies. */
START_TEST(blackhole_stops_a_stream_in_flow)
{
    const uint64_t total = 64ull * MB;
    fx_t *fx = fx_new();
    fx->no_splice = _i;
    fx->up_source_bytes = total;
    fx_upstream(fx, UP_SOURCE);
    fx_link(fx);
    peer_t *c = client_open(fx);
    WAIT(fx, c->rx >= 4 * MB);
    ck_assert_uint_lt(c->rx, total);
    uint64_t spliced = fx->link.stats.spliced;
    if (!_i)
        ck_assert_uint_gt(spliced, 0);
    fl_toxic_t *t = fx_toxic(fx, "timeout", DOWN, "ms=0");
    fx_run_for(fx, 100); /* a write queued before the toxic completes */
    uint64_t fwd = fx->link.stats.bytes[FL_DIR_DOWN];
    fx_run_for(fx, 300);
    ck_assert_uint_eq(fx->link.stats.bytes[FL_DIR_DOWN], fwd); /* the link forwards nothing */
    WAIT(fx, c->rx == fwd); /* what was forwarded before arrives, and nothing else */
    fx_run_for(fx, 100);
    ck_assert_uint_eq(c->rx, fwd);
    uint64_t rx = c->rx;
    ck_assert_uint_gt(t->stats.bytes, 0);                                /* it holds what arrives */
    ck_assert_uint_le(fx->link.stats.spliced - spliced, 2 * 256 * 1024); /* one splice at most */
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, t->name), 0);
    WAIT_MS(fx, peer_ended(c), 30000);
    ck_assert(c->eof);
    ck_assert_uint_eq(c->rx, total);
    ck_assert_uint_eq(c->rx_bad, 0);
    ck_assert_uint_eq(fx->link.stats.bytes[FL_DIR_DOWN], total);
    if (!_i)
        ck_assert_uint_gt(fx->link.stats.spliced, rx); /* back on the fast path once healed */
    fx_finish(fx);
}
END_TEST

/* One kernel pipe serves every spliced connection of a link, so it must be empty whenever
 * the link turns to another connection. Here a connection's destination fails between the
 * splice in and the splice out (the upstream closed; the client keeps sending into it): the
 * connection is reset, and the next connection must carry exactly its own bytes. */
START_TEST(failed_write_leaves_nothing_behind)
{
    fx_t *fx = fx_new();
    fx->no_splice = _i;
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    peer_t *c1 = client_open(fx);
    peer_close(fx->ups[0]); /* FIN: the link half-closes towards the client */
    WAIT(fx, c1->eof);
    peer_send(c1, 8 * MB); /* into a closed socket: the link's writes fail (EPIPE) */
    WAIT(fx, fx->link.stats.active == 0);
    ck_assert_uint_eq(fx->link.stats.resets, 1);
    WAIT(fx, peer_ended(c1) || c1->write_err);
    peer_close(c1);
    peer_t *c2 = client_open(fx);
    c2->fin_when_sent = 1;
    peer_send(c2, 1 * MB);
    WAIT(fx, peer_ended(c2));
    ck_assert_uint_eq(fx->ups[1]->rx, 1 * MB);
    ck_assert_uint_eq(fx->ups[1]->rx_bad, 0);
    ck_assert_uint_eq(c2->rx, 1 * MB);
    ck_assert_uint_eq(c2->rx_bad, 0);
    fx_finish(fx);
}
END_TEST

/* Adds spec expecting FL_EINVAL with a message containing want. */
static void add_bad(fl_link_t *l, const fl_toxic_spec_t *spec, const char *want)
{
    char err[256] = "";
    fl_toxic_t *t = NULL;
    int before = toxic_count(l);
    int rc = fl_link_add_toxic(l, spec, &t, err, sizeof err);
    ck_assert_msg(rc == FL_EINVAL, "%s: rc %d", want, rc);
    ck_assert_msg(strstr(err, want), "message '%s' does not contain '%s'", err, want);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(toxic_count(l), before);
}

static fl_toxic_spec_t spec1(const char *type, const char *pname, double v)
{
    fl_toxic_spec_t s;
    fl_toxic_spec_init(&s, type);
    if (pname) {
        s.pname[0] = pname;
        s.pvalue[0] = v;
        s.nparams = 1;
    }
    return s;
}

START_TEST(add_toxic_validation)
{
    fx_t *fx = fx_new();
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    fl_link_t *l = &fx->link;
    fl_toxic_spec_t s;

    s = spec1("latencyy", "ms", 1);
    add_bad(l, &s, "unknown toxic 'latencyy' (did you mean 'latency'?)");
    s = spec1("nosuchthing", NULL, 0);
    add_bad(l, &s, "unknown toxic 'nosuchthing'");
    s = spec1("latency", "ms", 1);
    s.pname[1] = "jiter";
    s.pvalue[1] = 1;
    s.nparams = 2;
    add_bad(l, &s, "latency has no parameter 'jiter' (its parameters: ms, jitter)");
    s = spec1("refuse", "ms", 1);
    add_bad(l, &s, "refuse has no parameter 'ms' (its parameters: none)");
    s = spec1("latency", "ms", -1);
    add_bad(l, &s, "latency: ms must be from 0 to 3600000, got -1");
    s = spec1("bandwidth", "kbps", 0);
    add_bad(l, &s, "bandwidth: kbps must be from 1 to");
    s = spec1("slicer", "avg", NAN);
    add_bad(l, &s, "slicer: avg must be from 1 to");
    s = spec1("latency", "ms", INFINITY);
    add_bad(l, &s, "latency: ms must be from 0 to 3600000, got inf");
    s = spec1("bandwidth", NULL, 0);
    add_bad(l, &s, "bandwidth needs kbps");
    s = spec1("latency", "jitter", 5);
    add_bad(l, &s, "latency needs ms");
    s = spec1("limit_data", NULL, 0);
    add_bad(l, &s, "limit_data needs bytes");
    s = spec1("latency", "ms", 1);
    s.toxicity = 1.5;
    add_bad(l, &s, "latency: toxicity must be from 0 to 1, got 1.5");
    s.toxicity = -0.1;
    add_bad(l, &s, "latency: toxicity must be from 0 to 1, got -0.1");
    s.toxicity = NAN;
    add_bad(l, &s, "toxicity must be from 0 to 1");
    s = spec1("latency", "ms", 1);
    s.first = -2;
    add_bad(l, &s, "latency: first must be 0 or more, got -2");
    s = spec1("latency", "ms", 1);
    s.dirs = 4;
    add_bad(l, &s, "latency: bad direction");
    s = spec1("latency", "ms", 1);
    s.name = "";
    add_bad(l, &s, "latency: bad toxic name");
    char longname[100];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    s.name = longname;
    add_bad(l, &s, "latency: bad toxic name");

    /* duplicate names, whatever the type */
    s = spec1("latency", "ms", 1);
    s.name = "slow";
    char err[256] = "";
    ck_assert_int_eq(fl_link_add_toxic(l, &s, NULL, err, sizeof err), 0);
    s = spec1("bandwidth", "kbps", 100);
    s.name = "slow";
    add_bad(l, &s, "a toxic named 'slow' is already on 127.0.0.1:");

    /* the limits themselves are fine */
    s = spec1("latency", "ms", 3600000);
    s.toxicity = 0;
    s.first = 0;
    ck_assert_int_eq(fl_link_add_toxic(l, &s, NULL, err, sizeof err), 0);
    ck_assert_int_eq(toxic_count(l), 2);
    fx_finish(fx);
}
END_TEST

START_TEST(remove_unknown_toxic)
{
    fx_t *fx = fx_new();
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, "nope"), FL_ENOTFOUND);
    fl_toxic_t *a = fx_toxic(fx, "latency", DOWN, "ms=1");
    fx_toxic(fx, "slicer", UP, "avg=10");
    ck_assert_ptr_eq(fl_link_find_toxic(&fx->link, "latency_downstream"), a);
    ck_assert_ptr_null(fl_link_find_toxic(&fx->link, "latency"));
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, "latency_downstream"), 0);
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, "latency_downstream"), FL_ENOTFOUND);
    ck_assert_ptr_null(fl_link_find_toxic(&fx->link, "latency_downstream"));
    fl_link_heal(&fx->link);
    ck_assert_ptr_null(fx->link.toxics);
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, "slicer_upstream"), FL_ENOTFOUND);
    fx_finish(fx);
}
END_TEST

START_TEST(default_names)
{
    fx_t *fx = fx_new();
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    ck_assert_str_eq(fx_toxic(fx, "latency", 0, "ms=1")->name, "latency_downstream");
    ck_assert_str_eq(fx_toxic(fx, "latency", DOWN, "ms=1")->name, "latency_downstream_2");
    ck_assert_str_eq(fx_toxic(fx, "latency", DOWN, "ms=1")->name, "latency_downstream_3");
    ck_assert_str_eq(fx_toxic(fx, "latency", UP, "ms=1")->name, "latency_upstream");
    ck_assert_str_eq(fx_toxic(fx, "latency", BOTH, "ms=1")->name, "latency_both");
    ck_assert_str_eq(fx_toxic(fx, "slicer", DOWN, "avg=5")->name, "slicer_downstream");
    ck_assert_int_eq(fl_link_remove_toxic(&fx->link, "latency_downstream"), 0);
    ck_assert_str_eq(fx_toxic(fx, "latency", DOWN, "ms=1")->name, "latency_downstream");
    ck_assert_str_eq(fx_toxic(fx, "latency", DOWN, "ms=1")->name, "latency_downstream_4");
    fl_toxic_t *t = fx_toxic(fx, "latency", 0, "ms=1");
    ck_assert_int_eq(t->dirs, DOWN); /* the default direction */
    ck_assert_int_eq(fx_toxic(fx, "latency", UP, "ms=1")->dirs, UP);
    ck_assert_int_eq(fl_dirs_parse("upstream"), UP);
    ck_assert_int_eq(fl_dirs_parse("downstream"), DOWN);
    ck_assert_int_eq(fl_dirs_parse("both"), BOTH);
    ck_assert_int_eq(fl_dirs_parse("sideways"), 0);
    ck_assert_str_eq(fl_dirs_name(BOTH), "both");
    ck_assert_str_eq(fl_dir_name(FL_DIR_UP), "upstream");
    fx_finish(fx);
}
END_TEST

/* Opens a client; returns 1 when it was reset before any data, 0 when it echoes. */
static int was_reset(fx_t *fx, fl_link_t *l)
{
    peer_t *c = client_new_to(fx, l->listen_port, 0);
    WAIT(fx, c->connected || c->connect_status);
    uint64_t want = c->rx + 10;
    peer_send(c, 10);
    WAIT(fx, c->rx >= want || peer_ended(c));
    int reset = peer_was_reset(c);
    ck_assert_msg(reset || c->rx == want, "client neither reset nor answered");
    peer_close(c);
    WAIT(fx, l->stats.active == 0); /* gone before the next toxic is added */
    return reset;
}

START_TEST(first_counts_connections)
{
    fx_t *fx = fx_new();
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    fl_toxic_t *t = fx_toxic(fx, "reset_peer", DOWN, "ms=0 first=2");
    ck_assert_int_eq(was_reset(fx, &fx->link), 1);
    ck_assert_int_eq(was_reset(fx, &fx->link), 1);
    ck_assert_int_eq(was_reset(fx, &fx->link), 0);
    ck_assert_int_eq(was_reset(fx, &fx->link), 0);
    ck_assert_uint_eq(t->stats.connections, 2);
    ck_assert_uint_eq(t->stats.resets, 2);
    ck_assert_uint_eq(fx->link.stats.resets, 2);
    fl_link_heal(&fx->link);

    /* added to open connections: the oldest count first */
    peer_t *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = client_open(fx);
    t = fx_toxic(fx, "latency", DOWN, "ms=300 first=2");
    ck_assert_uint_eq(t->stats.connections, 2);
    ck_assert_double_ge(echo_round_trip(fx, c[0], 10), 299);
    ck_assert_double_ge(echo_round_trip(fx, c[1], 10), 299);
    ck_assert_double_lt(echo_round_trip(fx, c[2], 10), 150);
    ck_assert_double_lt(echo_round_trip(fx, client_open(fx), 10), 150); /* budget spent */
    fx_finish(fx);
}
END_TEST

static fl_toxic_t *add_shared(fl_link_t *l, const char *type, const char *pname, double v,
                              long first, long *budget)
{
    fl_toxic_spec_t s = spec1(type, pname, v);
    s.first = first;
    s.shared = budget;
    fl_toxic_t *t = NULL;
    char err[256] = "";
    ck_assert_msg(fl_link_add_toxic(l, &s, &t, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_eq(t->shared, budget);
    return t;
}

/* A client through link l, connected to the upstream. */
static peer_t *open_on(fx_t *fx, fl_link_t *l)
{
    int before = fx->nups;
    peer_t *c = client_new_to(fx, l->listen_port, 0);
    WAIT(fx, c->connected && fx->nups > before);
    return c;
}

START_TEST(first_shared_between_links)
{
    fx_t *fx = fx_new();
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    fl_link_t *a = &fx->link, *b = calloc(1, sizeof *b);
    int b_closed = 0;
    b->data = &b_closed;
    ck_assert_int_eq(fl_link_open(&fx->loop, b, "127.0.0.1", 0, "127.0.0.1", fx->up_port, &fx->rng),
                     0);
    /* new connections: two in all, whichever link they come through */
    long budget = 0;
    fl_toxic_t *ta = add_shared(a, "reset_peer", "ms", 0, 2, &budget);
    fl_toxic_t *tb = add_shared(b, "reset_peer", "ms", 0, 2, &budget);
    ck_assert_int_eq(was_reset(fx, a), 1);
    ck_assert_int_eq(was_reset(fx, b), 1);
    ck_assert_int_eq(was_reset(fx, a), 0);
    ck_assert_int_eq(was_reset(fx, b), 0);
    ck_assert_int_eq(budget, 2);
    ck_assert_uint_eq(ta->stats.resets + tb->stats.resets, 2);
    ck_assert_uint_eq(ta->stats.connections, 1);
    ck_assert_uint_eq(tb->stats.connections, 1);
    fl_link_heal(a);
    fl_link_heal(b);

    /* connections already open count against the shared budget too */
    peer_t *a1 = open_on(fx, a), *a2 = open_on(fx, a), *b1 = open_on(fx, b);
    long budget2 = 0;
    ta = add_shared(a, "latency", "ms", 300, 2, &budget2);
    tb = add_shared(b, "latency", "ms", 300, 2, &budget2);
    ck_assert_int_eq(budget2, 2);
    ck_assert_uint_eq(ta->stats.connections, 2);
    ck_assert_uint_eq(tb->stats.connections, 0);
    ck_assert_double_ge(echo_round_trip(fx, a1, 10), 299);
    ck_assert_double_ge(echo_round_trip(fx, a2, 10), 299);
    ck_assert_double_lt(echo_round_trip(fx, b1, 10), 150);

    fl_link_close(b, other_link_closed);
    WAIT(fx, b_closed == 1);
    free(b);
    fx_finish(fx);
}
END_TEST

START_TEST(toxicity_zero_never_one_always)
{
    fx_t *fx = fx_new();
    fx_upstream(fx, UP_ECHO);
    fx_link(fx);
    fl_toxic_t *t = fx_toxic(fx, "reset_peer", DOWN, "ms=0 toxicity=0");
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(was_reset(fx, &fx->link), 0);
    ck_assert_uint_eq(t->stats.connections, 0);
    ck_assert_uint_eq(t->stats.resets, 0);
    fl_link_heal(&fx->link);
    t = fx_toxic(fx, "reset_peer", DOWN, "ms=0 toxicity=1");
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(was_reset(fx, &fx->link), 1);
    ck_assert_uint_eq(t->stats.connections, 10);
    ck_assert_uint_eq(t->stats.resets, 10);
    fl_link_heal(&fx->link);
    /* in between: some, drawn once per connection from the seeded generator */
    t = fx_toxic(fx, "reset_peer", DOWN, "ms=0 toxicity=0.5");
    int n = 0;
    for (int i = 0; i < 20; i++)
        n += was_reset(fx, &fx->link);
    ck_assert_int_gt(n, 2);
    ck_assert_int_lt(n, 18);
    ck_assert_uint_eq(t->stats.connections, (uint64_t)n);
    fx_finish(fx);
}
END_TEST

/* A toxic passes data on and the write to the destination fails at once (the peer has just
 * reset): the connection ends inside the toxic's call, which must not touch freed memory
 * afterwards (ASan) and must leave the link consistent. */
START_TEST(write_error_inside_a_toxic)
{
    static const struct {
        const char *type, *params;
    } cases[] = {
        {"latency", "ms=0"},
        {"limit_data", "bytes=1000000"},
        {"slicer", "avg=100000"},
        {"bandwidth", "kbps=1000000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_t *fx = fx_new();
        fx_upstream(fx, UP_SINK);
        fx_link(fx);
        fl_toxic_t *t = fx_toxic(fx, cases[i].type, DOWN, cases[i].params);
        peer_t *c = client_open(fx);
        peer_t *u = fx->ups[0];
        fx_run_for(fx, 20); /* the link has connected and reads both ways */
        /* in one turn: data for the client reaches the link, then the client's RST */
        char buf[1000];
        pat_fill(buf, 0, sizeof buf);
        uv_buf_t b = uv_buf_init(buf, sizeof buf);
        ck_assert_int_eq(uv_try_write((uv_stream_t *)&u->tcp, &b, 1), (int)sizeof buf);
        peer_reset(c);
        WAIT(fx, fx->link.stats.active == 0);
        ck_assert_uint_eq(fx->link.stats.resets, 1);
        ck_assert_uint_eq(t->stats.connections, 1);
        WAIT(fx, peer_ended(u));
        WAIT(fx, fx->link.open_refs == 2);
        fx_finish(fx);
    }
}
END_TEST

static Suite *link_suite(void)
{
    Suite *s = suite_create("link");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, echo_both_ways_byte_exact, 0, 2);
    tcase_add_loop_test(tc, each_way_alone_byte_exact, 0, 2);
    tcase_add_loop_test(tc, half_close_from_client, 0, 2);
    tcase_add_loop_test(tc, half_close_from_upstream, 0, 2);
    tcase_add_test(tc, upstream_refused);
    tcase_add_test(tc, set_upstream_for_new_connections);
    tcase_add_loop_test(tc, backpressure_bounds_memory, 0, 2);
    tcase_add_test(tc, drop_connections_closes);
    tcase_add_test(tc, drop_connections_resets);
    tcase_add_loop_test(tc, many_connections_every_order, 0, 2);
    tcase_add_test(tc, close_with_connections_open);
    tcase_add_loop_test(tc, toxic_added_to_open_connection, 0, 2);
    tcase_add_loop_test(tc, blackhole_stops_a_stream_in_flow, 0, 2);
    tcase_add_loop_test(tc, failed_write_leaves_nothing_behind, 0, 2);
    tcase_add_test(tc, add_toxic_validation);
    tcase_add_test(tc, remove_unknown_toxic);
    tcase_add_test(tc, default_names);
    tcase_add_test(tc, first_counts_connections);
    tcase_add_test(tc, first_shared_between_links);
    tcase_add_test(tc, toxicity_zero_never_one_always);
    tcase_add_test(tc, write_error_inside_a_toxic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the harness does: a peer gone mid-write is an error code */
    SRunner *sr = srunner_create(link_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
