/* Test fixture shared by the link and toxics suites: one real libuv loop, a link (harness/link.h)
 * listening on 127.0.0.1 port 0, an upstream server written here with libuv (echo, sink that
 * answers "got N bad B" on EOF, source that sends N bytes then FIN, or idle), and libuv clients
 * in the same loop. Every byte a peer sends is taken from one deterministic pseudo-random
 * stream (pat_byte(offset)), and every peer checks what it receives against that stream from
 * offset 0, so "byte-exact, in order" is one field (rx_bad). Every wait is bounded by a
 * watchdog timer that fails the test; fx_finish closes everything and asserts that the loop
 * closes cleanly, so a leaked handle fails the test. */
#ifndef FL_TEST_LINKFX_H
#define FL_TEST_LINKFX_H

#include <check.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "harness/link.h"
#include "harness/toxic.h"
#include "lib/err.h"
#include "lib/rng.h"

#define FX_WAIT_MS 8000     /* the watchdog for an ordinary wait */
#define FX_IO_CHUNK 65536   /* what a peer reads or writes at once */
#define FX_TX_WINDOW 262144 /* a sender keeps at most this much queued in libuv */

enum { UP_ECHO, UP_SINK, UP_SOURCE, UP_IDLE };

typedef struct fx fx_t;
typedef struct peer peer_t;

struct peer {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_shutdown_t sreq;
    fx_t *fx;
    peer_t *next; /* every peer of the fixture, newest first */
    int is_client;
    int mode; /* UP_*: what an upstream peer does */
    int id;   /* clients: order of creation; upstream peers: order of accept */
    int connected, connect_status;
    uint64_t connect_ns; /* when the connect callback ran */
    /* receiving */
    int no_read; /* do not read until peer_read_start */
    int reading;
    uint64_t rx;     /* bytes received */
    uint64_t rx_bad; /* 0, or 1 + the offset of the first byte that did not match the stream */
    int reads;       /* read callbacks with data */
    size_t max_read; /* largest single read */
    char text[256];  /* the first bytes received, NUL-terminated */
    int eof, err;    /* got EOF; the first read error (UV_ECONNRESET...) */
    uint64_t rx_first_ns, rx_last_ns, eof_ns, err_ns;
    /* sending: the stream from offset 0 */
    uint64_t tx_total;  /* bytes asked for so far */
    uint64_t tx_queued; /* handed to libuv */
    uint64_t tx_done;   /* write callbacks with status 0 */
    int writes;         /* write requests in flight */
    int write_err;
    int fin_when_sent; /* shut down once tx_total is written */
    int shut_sent, shut_done, shut_status;
    int closing, closed;
};

struct fx {
    uv_loop_t loop;
    fl_rng_t rng;
    fl_link_t link;
    int no_splice; /* fx_link: forward through the scratch buffer, never splice(2) */
    int link_open, link_closed, link_close_called;
    uv_tcp_t up; /* the upstream listener */
    int up_port, up_closed;
    int up_mode;
    uint64_t up_source_bytes; /* UP_SOURCE: how much each accepted connection sends */
    int up_no_read;           /* upstream peers do not read until told */
    peer_t *ups[256];         /* upstream peers in accept order */
    int nups;
    int nclients;
    peer_t *peers;
    uv_timer_t watchdog;
    int expired;
    uv_timer_t ticker;
    int ticked;
};

static inline uint64_t pat_word(uint64_t i)
{
    uint64_t z = i * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The byte at offset off of the one stream every peer sends. */
static inline unsigned char pat_byte(uint64_t off)
{
    return (unsigned char)(pat_word(off >> 3) >> ((off & 7) * 8));
}

static inline void pat_fill(char *buf, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)pat_byte(off + i);
}

static inline double ms_between(uint64_t a_ns, uint64_t b_ns)
{
    return ((double)b_ns - (double)a_ns) / 1e6;
}

/* ------------------------------------------------------------ waiting ---- */

static inline void fx_watchdog_cb(uv_timer_t *t)
{
    fx_t *fx = t->data;
    fx->expired = 1;
}

static inline void fx_ticker_cb(uv_timer_t *t)
{
    fx_t *fx = t->data;
    fx->ticked = 1;
}

static inline void fx_wait_begin(fx_t *fx, int ms)
{
    fx->expired = 0;
    uv_timer_start(&fx->watchdog, fx_watchdog_cb, (uint64_t)ms, 0);
}

static inline void fx_wait_end(fx_t *fx)
{
    uv_timer_stop(&fx->watchdog);
}

/* Runs the loop until cond holds; fails the test if it does not within ms. */
#define WAIT_MS(fx, cond, ms)                                                                      \
    do {                                                                                           \
        fx_wait_begin((fx), (ms));                                                                 \
        while (!(cond) && !(fx)->expired)                                                          \
            uv_run(&(fx)->loop, UV_RUN_ONCE);                                                      \
        fx_wait_end(fx);                                                                           \
        ck_assert_msg((cond), "timed out after %d ms waiting for %s", (int)(ms), #cond);           \
    } while (0)
#define WAIT(fx, cond) WAIT_MS(fx, cond, FX_WAIT_MS)

/* Runs the loop for ms, whatever happens. */
static inline void fx_run_for(fx_t *fx, int ms)
{
    fx->ticked = 0;
    uv_timer_start(&fx->ticker, fx_ticker_cb, (uint64_t)ms, 0);
    while (!fx->ticked)
        uv_run(&fx->loop, UV_RUN_ONCE);
}

/* ------------------------------------------------------------ peers ---- */

typedef struct {
    uv_write_t req;
    peer_t *p;
    size_t len;
    char data[];
} fx_wreq_t;

static inline void peer_pump(peer_t *p);
static inline void peer_shutdown(peer_t *p);

static inline void peer_closed_cb(uv_handle_t *h)
{
    peer_t *p = h->data;
    p->closed = 1;
}

static inline void peer_close(peer_t *p)
{
    if (p->closing)
        return;
    p->closing = 1;
    uv_close((uv_handle_t *)&p->tcp, peer_closed_cb);
}

/* Closes with SO_LINGER 0: the other end sees a reset. */
static inline void peer_reset(peer_t *p)
{
    if (p->closing)
        return;
    p->closing = 1;
    if (uv_tcp_close_reset(&p->tcp, peer_closed_cb) != 0)
        uv_close((uv_handle_t *)&p->tcp, peer_closed_cb);
}

static inline void peer_write_cb(uv_write_t *req, int status)
{
    fx_wreq_t *w = (fx_wreq_t *)req;
    peer_t *p = w->p;
    p->writes--;
    if (status == 0)
        p->tx_done += w->len;
    else if (!p->write_err)
        p->write_err = status;
    free(w);
    if (status == 0 && !p->closing)
        peer_pump(p);
}

/* Queues len bytes of data (taken over: w was allocated by fx_wreq_new). */
static inline void peer_write_req(peer_t *p, fx_wreq_t *w)
{
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    w->p = p;
    int rc = uv_write(&w->req, (uv_stream_t *)&p->tcp, &b, 1, peer_write_cb);
    if (rc != 0) {
        if (!p->write_err)
            p->write_err = rc;
        free(w);
        return;
    }
    p->writes++;
}

static inline fx_wreq_t *fx_wreq_new(size_t len)
{
    fx_wreq_t *w = malloc(sizeof *w + len);
    ck_assert_ptr_nonnull(w);
    w->len = len;
    return w;
}

/* Writes the stream up to tx_total, keeping at most FX_TX_WINDOW queued in libuv. */
static inline void peer_pump(peer_t *p)
{
    while (!p->closing && !p->write_err && p->tx_queued < p->tx_total &&
           uv_stream_get_write_queue_size((uv_stream_t *)&p->tcp) < FX_TX_WINDOW) {
        uint64_t n = p->tx_total - p->tx_queued;
        if (n > FX_IO_CHUNK)
            n = FX_IO_CHUNK;
        fx_wreq_t *w = fx_wreq_new((size_t)n);
        pat_fill(w->data, p->tx_queued, (size_t)n);
        p->tx_queued += n;
        peer_write_req(p, w);
    }
    if (p->fin_when_sent && p->tx_queued == p->tx_total)
        peer_shutdown(p);
}

/* Sends the next n bytes of the stream. */
static inline void peer_send(peer_t *p, uint64_t n)
{
    p->tx_total += n;
    peer_pump(p);
}

static inline void peer_shutdown_cb(uv_shutdown_t *req, int status)
{
    peer_t *p = req->data;
    p->shut_done = 1;
    p->shut_status = status;
}

/* Sends FIN once everything queued is written. */
static inline void peer_shutdown(peer_t *p)
{
    if (p->shut_sent || p->closing)
        return;
    p->shut_sent = 1;
    p->sreq.data = p;
    int rc = uv_shutdown(&p->sreq, (uv_stream_t *)&p->tcp, peer_shutdown_cb);
    if (rc != 0) {
        p->shut_done = 1;
        p->shut_status = rc;
    }
}

static inline void peer_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    fx_wreq_t *w = fx_wreq_new(FX_IO_CHUNK);
    *buf = uv_buf_init(w->data, FX_IO_CHUNK);
}

static inline void peer_got(peer_t *p, const char *data, size_t n)
{
    uint64_t now = uv_hrtime();
    if (!p->rx_first_ns)
        p->rx_first_ns = now;
    p->rx_last_ns = now;
    for (size_t i = 0; i < n && !p->rx_bad; i++)
        if ((unsigned char)data[i] != pat_byte(p->rx + i))
            p->rx_bad = p->rx + i + 1;
    if (p->rx < sizeof p->text - 1) {
        size_t k = sizeof p->text - 1 - (size_t)p->rx;
        memcpy(p->text + p->rx, data, n < k ? n : k);
    }
    p->rx += n;
    p->reads++;
    if (n > p->max_read)
        p->max_read = n;
}

static inline void peer_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    peer_t *p = s->data;
    fx_wreq_t *w = buf->base ? (fx_wreq_t *)(void *)(buf->base - offsetof(fx_wreq_t, data)) : NULL;
    if (n > 0) {
        peer_got(p, buf->base, (size_t)n);
        if (!p->is_client && p->mode == UP_ECHO) {
            w->len = (size_t)n;
            peer_write_req(p, w);
        } else {
            free(w);
        }
        return;
    }
    free(w);
    if (n == 0)
        return;
    uv_read_stop(s);
    p->reading = 0;
    if (n != UV_EOF) {
        if (!p->err) {
            p->err = (int)n;
            p->err_ns = uv_hrtime();
        }
        return;
    }
    p->eof = 1;
    p->eof_ns = uv_hrtime();
    if (p->is_client)
        return;
    if (p->mode == UP_SINK) { /* the answer that proves the half-closed way still works */
        char msg[96];
        int len = snprintf(msg, sizeof msg, "got %llu bad %llu", (unsigned long long)p->rx,
                           (unsigned long long)p->rx_bad);
        fx_wreq_t *r = fx_wreq_new((size_t)len);
        memcpy(r->data, msg, (size_t)len);
        peer_write_req(p, r);
    }
    if (p->mode == UP_ECHO || p->mode == UP_SINK)
        peer_shutdown(p);
}

static inline void peer_read_start(peer_t *p)
{
    if (p->reading || p->closing || p->eof || p->err)
        return;
    if (uv_read_start((uv_stream_t *)&p->tcp, peer_alloc_cb, peer_read_cb) == 0)
        p->reading = 1;
}

static inline peer_t *peer_new(fx_t *fx, int is_client)
{
    peer_t *p = calloc(1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    p->fx = fx;
    p->is_client = is_client;
    ck_assert_int_eq(uv_tcp_init(&fx->loop, &p->tcp), 0);
    p->tcp.data = p;
    p->next = fx->peers;
    fx->peers = p;
    return p;
}

/* A reset seen by a client, whichever call saw it first. */
static inline int peer_was_reset(const peer_t *p)
{
    return p->err == UV_ECONNRESET || p->connect_status == UV_ECONNRESET ||
           p->write_err == UV_ECONNRESET;
}

/* The connection is over for this peer: EOF, an error, or a failed connect. */
static inline int peer_ended(const peer_t *p)
{
    return p->eof || p->err || p->connect_status < 0;
}

/* ------------------------------------------------------------ clients ---- */

static inline void client_connect_cb(uv_connect_t *req, int status)
{
    peer_t *p = req->data;
    p->connect_status = status;
    p->connect_ns = uv_hrtime();
    if (status != 0)
        return;
    p->connected = 1;
    if (!p->no_read)
        peer_read_start(p);
    peer_pump(p);
}

/* A client of port on 127.0.0.1, reading (unless no_read) once connected. */
static inline peer_t *client_new_to(fx_t *fx, int port, int no_read)
{
    peer_t *p = peer_new(fx, 1);
    p->id = fx->nclients++;
    p->no_read = no_read;
    struct sockaddr_in sa;
    ck_assert_int_eq(uv_ip4_addr("127.0.0.1", port, &sa), 0);
    p->creq.data = p;
    ck_assert_int_eq(
        uv_tcp_connect(&p->creq, &p->tcp, (const struct sockaddr *)&sa, client_connect_cb), 0);
    return p;
}

static inline peer_t *client_new(fx_t *fx)
{
    return client_new_to(fx, fx->link.listen_port, 0);
}

/* A client through the link, connected (and, if the link reaches the upstream, accepted
 * there: ups[id] is its other end). */
static inline peer_t *client_open(fx_t *fx)
{
    int before = fx->nups;
    peer_t *p = client_new(fx);
    WAIT(fx, p->connect_status != 0 || p->connected);
    ck_assert_int_eq(p->connect_status, 0);
    WAIT(fx, fx->nups > before);
    return p;
}

/* Sends n bytes and waits until the upstream echo brought them all back; returns the round
 * trip in ms. */
static inline double echo_round_trip(fx_t *fx, peer_t *p, uint64_t n)
{
    uint64_t want = p->rx + n, t0 = uv_hrtime();
    peer_send(p, n);
    WAIT(fx, p->rx >= want || peer_ended(p));
    ck_assert_uint_eq(p->rx, want);
    ck_assert_uint_eq(p->rx_bad, 0);
    return ms_between(t0, p->rx_last_ns);
}

/* ------------------------------------------------------------ upstream ---- */

static inline void up_connection_cb(uv_stream_t *server, int status)
{
    fx_t *fx = server->data;
    if (status < 0)
        return;
    peer_t *p = peer_new(fx, 0);
    p->mode = fx->up_mode;
    p->no_read = fx->up_no_read;
    ck_assert_int_eq(uv_accept(server, (uv_stream_t *)&p->tcp), 0);
    p->connected = 1;
    p->connect_ns = uv_hrtime();
    ck_assert_int_lt(fx->nups, 256);
    p->id = fx->nups;
    fx->ups[fx->nups++] = p;
    if (!p->no_read)
        peer_read_start(p);
    if (p->mode == UP_SOURCE) {
        p->fin_when_sent = 1;
        peer_send(p, fx->up_source_bytes);
    }
}

static inline void up_closed_cb(uv_handle_t *h)
{
    fx_t *fx = h->data;
    fx->up_closed = 1;
}

/* Starts the upstream server on 127.0.0.1, port 0. */
static inline void fx_upstream(fx_t *fx, int mode)
{
    fx->up_mode = mode;
    struct sockaddr_in sa;
    ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
    ck_assert_int_eq(uv_tcp_bind(&fx->up, (const struct sockaddr *)&sa, 0), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&fx->up, 128, up_connection_cb), 0);
    struct sockaddr_storage bound;
    int len = sizeof bound;
    ck_assert_int_eq(uv_tcp_getsockname(&fx->up, (struct sockaddr *)&bound, &len), 0);
    fx->up_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

/* A port on 127.0.0.1 where nothing listens (bound, never listened on, then released). */
static inline int fx_dead_port(fx_t *fx)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa;
    ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* ------------------------------------------------------------ the link ---- */

static inline void fx_link_closed_cb(fl_link_t *l)
{
    fx_t *fx = l->data;
    fx->link_closed++;
}

/* Starts closing the link (fx_finish waits for it). */
static inline void fx_close_link(fx_t *fx)
{
    fx->link_close_called = 1;
    fl_link_close(&fx->link, fx_link_closed_cb);
}

/* Opens fx->link on 127.0.0.1:0 forwarding to the upstream. */
static inline void fx_link(fx_t *fx)
{
    fx->link.data = fx;
    fx->link.no_splice = fx->no_splice;
    fx->link_open = 1;
    ck_assert_int_eq(
        fl_link_open(&fx->loop, &fx->link, "127.0.0.1", 0, "127.0.0.1", fx->up_port, &fx->rng), 0);
    ck_assert_int_gt(fx->link.listen_port, 0);
}

/* Adds a toxic with parameters given as "name=value ..." (NULL: none; toxicity= and first=
 * set those fields of the spec); fails the test on an error. */
static inline fl_toxic_t *fx_toxic_on(fl_link_t *l, const char *type, int dirs, const char *params)
{
    fl_toxic_spec_t spec;
    fl_toxic_spec_init(&spec, type);
    spec.dirs = dirs;
    char names[FL_LINK_MAX_TOXIC_PARAMS][32];
    const char *s = params ? params : "";
    while (*s) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        ck_assert_int_lt(spec.nparams, FL_LINK_MAX_TOXIC_PARAMS);
        size_t k = strcspn(s, "=");
        ck_assert_uint_lt(k, sizeof names[0]);
        memcpy(names[spec.nparams], s, k);
        names[spec.nparams][k] = '\0';
        char *end;
        double v = strtod(s + k + 1, &end);
        ck_assert_msg(end > s + k + 1, "bad test parameters '%s'", params);
        s = end;
        if (strcmp(names[spec.nparams], "toxicity") == 0) {
            spec.toxicity = v;
        } else if (strcmp(names[spec.nparams], "first") == 0) {
            spec.first = (long)v;
        } else {
            spec.pname[spec.nparams] = names[spec.nparams];
            spec.pvalue[spec.nparams++] = v;
        }
    }
    fl_toxic_t *t = NULL;
    char err[256] = "";
    int rc = fl_link_add_toxic(l, &spec, &t, err, sizeof err);
    ck_assert_msg(rc == 0, "adding %s %s: %s", type, params ? params : "", err);
    ck_assert_ptr_nonnull(t);
    return t;
}
#define fx_toxic(fx, type, dirs, params) fx_toxic_on(&(fx)->link, type, dirs, params)
#define UP (1 << FL_DIR_UP)
#define DOWN (1 << FL_DIR_DOWN)
#define BOTH FL_DIRS_BOTH

/* The link's own socket towards the upstream (found by its peer's port), or -1. */
typedef struct {
    int port, fd;
} fx_find_t;

static inline void fx_find_cb(uv_handle_t *h, void *arg)
{
    fx_find_t *f = arg;
    if (h->type != UV_TCP || uv_is_closing(h))
        return;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername((uv_tcp_t *)h, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ntohs(((struct sockaddr_in *)&ss)->sin_port) == f->port)
        uv_fileno(h, &f->fd);
}

static inline int fx_link_upstream_fd(fx_t *fx)
{
    fx_find_t f = {fx->up_port, -1};
    uv_walk(&fx->loop, fx_find_cb, &f);
    return f.fd;
}

/* ------------------------------------------------------------ life ---- */

static inline fx_t *fx_new(void)
{
    fx_t *fx = calloc(1, sizeof *fx);
    ck_assert_ptr_nonnull(fx);
    ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
    fl_rng_seed(&fx->rng, 42);
    uv_timer_init(&fx->loop, &fx->watchdog);
    uv_timer_init(&fx->loop, &fx->ticker);
    fx->watchdog.data = fx->ticker.data = fx;
    uv_tcp_init(&fx->loop, &fx->up);
    fx->up.data = fx;
    return fx;
}

static inline int fx_all_closed(fx_t *fx)
{
    for (peer_t *p = fx->peers; p; p = p->next)
        if (!p->closed)
            return 0;
    return (!fx->link_open || fx->link_closed) && fx->up_closed;
}

static inline void fx_handle_close_cb(uv_handle_t *h)
{
    (void)h;
}

/* Closes the link (if open), every peer and the upstream listener, then the loop: a handle
 * left open anywhere fails here. */
static inline void fx_finish(fx_t *fx)
{
    if (fx->link_open && !fx->link_close_called)
        fx_close_link(fx);
    for (peer_t *p = fx->peers; p; p = p->next)
        peer_close(p);
    uv_close((uv_handle_t *)&fx->up, up_closed_cb);
    WAIT(fx, fx_all_closed(fx));
    ck_assert_int_le(fx->link_closed, 1);
    uv_close((uv_handle_t *)&fx->watchdog, fx_handle_close_cb);
    uv_close((uv_handle_t *)&fx->ticker, fx_handle_close_cb);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
    while (fx->peers) {
        peer_t *p = fx->peers;
        fx->peers = p->next;
        free(p);
    }
    free(fx);
}

#endif
