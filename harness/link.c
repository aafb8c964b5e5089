/* Links (link.h) and the stage machinery toxics run on (toxic.h).
 *
 * A connection owns two sockets and two pipes. Each pipe reads its source into chunks,
 * pushes them through its stages, and writes what comes out to its destination: with
 * uv_try_write first (no request, no copy) and a queued write for the rest. A pipe with no
 * stages skips the chunks: it splice(2)s from socket to socket (straight_through below). The pipe
 * counts inflight bytes (read, not yet written) and stops reading above HIGH_WATER, resuming below
 * LOW_WATER. EOF travels down the same chain and becomes a shutdown of the destination once
 * everything before it is written; when both directions are shut, the connection closes.
 * A connection's memory is freed when its last handle (two sockets, stage timers) closes. */
#include "harness/link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/suggest.h"

#define READ_CHUNK (64 * 1024)    /* below malloc's mmap threshold: no syscall per chunk */
#define SCRATCH_SIZE (256 * 1024) /* fewer, larger reads when nothing is held */
/* The kernel may give the splice pipe less. Like SCRATCH_SIZE, it bounds what one read can
 * add above HIGH_WATER. */
#define SPLICE_PIPE_SIZE (256 * 1024)
#define SPLICE_ROUNDS 16 /* pipefuls moved per poll, at most */
#define HIGH_WATER (256 * 1024)
#define LOW_WATER (64 * 1024)

typedef struct fl_pipe {
    conn_t *conn;
    fl_dir_t dir;
    uv_tcp_t *src, *dst;
    fl_stage_t *head;
    size_t inflight;
    int reading, paused;
    int splicing;      /* alloc_cb chose splice: the UV_ENOBUFS that follows is ours */
    int src_eof;       /* the source sent FIN */
    int eof_at_sink;   /* the EOF came out of the last stage */
    int shutdown_sent; /* uv_shutdown issued on dst */
    int shut;          /* ...and completed */
    size_t writes;     /* queued writes not completed */
    uv_shutdown_t sreq;
} fl_pipe_t;

struct conn {
    fl_link_t *link;
    conn_t *next, *prev;
    uv_tcp_t client, server;
    uv_connect_t creq;
    fl_pipe_t pipe[2];
    uint64_t id;
    int connected;
    int closing;
    int draining; /* graceful close: shutting both ways, then close */
    uint64_t drain_since;
    int refs; /* handles whose close callback has not run */
};

typedef struct {
    uv_write_t req;
    fl_pipe_t *pipe;
    fl_chunk_t *chunk;
} wreq_t;

const char *fl_dir_name(fl_dir_t d)
{
    return d == FL_DIR_UP ? "upstream" : "downstream";
}

int fl_dirs_parse(const char *s)
{
    if (strcmp(s, "upstream") == 0)
        return 1 << FL_DIR_UP;
    if (strcmp(s, "downstream") == 0)
        return 1 << FL_DIR_DOWN;
    if (strcmp(s, "both") == 0)
        return FL_DIRS_BOTH;
    return 0;
}

const char *fl_dirs_name(int dirs)
{
    return dirs == FL_DIRS_BOTH ? "both" : dirs == (1 << FL_DIR_UP) ? "upstream" : "downstream";
}

/* ------------------------------------------------------------ chunks ---- */

static fl_chunk_t *chunk_new(size_t cap)
{
    fl_chunk_t *c = malloc(sizeof *c + cap);
    if (c) {
        c->next = NULL;
        c->len = c->off = 0;
        c->t_ns = 0;
    }
    return c;
}

void fl_chunk_free(fl_chunk_t *c)
{
    free(c);
}

fl_chunk_t *fl_chunk_split(fl_chunk_t *c, size_t n)
{
    size_t left = c->len - c->off;
    if (n > left)
        n = left;
    fl_chunk_t *head = chunk_new(n);
    if (!head)
        return NULL;
    memcpy(head->data, c->data + c->off, n);
    head->len = n;
    head->t_ns = c->t_ns;
    c->off += n;
    return head;
}

void fl_chunk_queue_push(fl_chunk_queue_t *q, fl_chunk_t *c)
{
    c->next = NULL;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    q->bytes += c->len - c->off;
}

fl_chunk_t *fl_chunk_queue_pop(fl_chunk_queue_t *q)
{
    fl_chunk_t *c = q->head;
    if (!c)
        return NULL;
    q->head = c->next;
    if (!q->head)
        q->tail = NULL;
    q->bytes -= c->len - c->off;
    c->next = NULL;
    return c;
}

/* ------------------------------------------------------------ closing ---- */

static void conn_unref(conn_t *c);
static void conn_close(conn_t *c, int reset);

static void link_unref(fl_link_t *l)
{
    if (--l->open_refs > 0 || !l->closing)
        return;
    free(l->scratch);
    l->scratch = NULL;
    if (l->splice_state == 1) {
        close(l->splice_pipe[0]);
        close(l->splice_pipe[1]);
    }
    l->splice_state = 0;
    if (l->close_cb)
        l->close_cb(l);
}

static void conn_unref(conn_t *c)
{
    if (--c->refs > 0)
        return;
    fl_link_t *l = c->link;
    free(c);
    link_unref(l);
}

static void handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void stage_timer_closed(uv_handle_t *h)
{
    fl_stage_t *s = h->data;
    conn_t *c = s->pipe->conn;
    free(s);
    conn_unref(c);
}

/* The stage's timer handle holds a reference on the connection until it has closed. */
static void stage_timer_init(fl_stage_t *s)
{
    if (s->timer_inited)
        return;
    uv_timer_init(s->pipe->conn->link->loop, &s->timer);
    s->timer.data = s;
    s->timer_inited = 1;
    s->pipe->conn->refs++;
}

/* Detaches a stage; it is freed when its timer handle has closed, never here: the toxic
 * whose call ended the connection (a write error while it emitted) may still be running
 * with s, or a stage after it, in hand. Whatever it still held is discarded: the connection
 * is going, or the toxic flushed it already. */
static void stage_destroy(fl_stage_t *s)
{
    s->removed = 1;
    fl_chunk_t *ch;
    while ((ch = fl_chunk_queue_pop(&s->held)))
        fl_chunk_free(ch);
    stage_timer_init(s);
    uv_timer_stop(&s->timer);
    if (!uv_is_closing((uv_handle_t *)&s->timer))
        uv_close((uv_handle_t *)&s->timer, stage_timer_closed);
}

static void conn_close(conn_t *c, int reset)
{
    if (c->closing)
        return;
    c->closing = 1;
    fl_link_t *l = c->link;
    l->stats.active--;
    if (reset)
        l->stats.resets++;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    for (int d = 0; d < 2; d++) {
        fl_stage_t *s = c->pipe[d].head;
        c->pipe[d].head = NULL;
        while (s) {
            fl_stage_t *next = s->next;
            stage_destroy(s);
            s = next;
        }
    }
    uv_tcp_t *h[2] = {&c->client, &c->server};
    for (int i = 0; i < 2; i++) {
        if (uv_is_closing((uv_handle_t *)h[i]))
            continue;
        if (!reset || (i == 1 && !c->connected) || uv_tcp_close_reset(h[i], handle_closed) != 0)
            uv_close((uv_handle_t *)h[i], handle_closed);
    }
}

static void maybe_finish(conn_t *c)
{
    if (c->closing)
        return;
    if (c->pipe[0].shut && c->pipe[1].shut)
        conn_close(c, 0);
}

/* ------------------------------------------------------------ the sink ---- */

static void read_start(fl_pipe_t *p);

static void inflight_sub(fl_pipe_t *p, size_t n)
{
    p->inflight -= n;
    if (p->paused && p->inflight < LOW_WATER && !p->conn->closing) {
        p->paused = 0;
        read_start(p);
    }
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    fl_pipe_t *p = req->data;
    conn_t *c = p->conn;
    if (c->closing)
        return;
    p->shut = 1;
    if (status < 0 && status != UV_ENOTCONN) {
        conn_close(c, 1);
        return;
    }
    maybe_finish(c);
}

static void sink_shutdown(fl_pipe_t *p)
{
    if (p->shutdown_sent || p->conn->closing)
        return;
    p->shutdown_sent = 1;
    p->sreq.data = p;
    if (uv_shutdown(&p->sreq, (uv_stream_t *)p->dst, shutdown_cb) != 0) {
        p->shut = 1;
        maybe_finish(p->conn);
    }
}

static void write_cb(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    fl_pipe_t *p = w->pipe;
    size_t n = w->chunk->len - w->chunk->off;
    fl_chunk_free(w->chunk);
    free(w);
    p->writes--;
    if (p->conn->closing)
        return;
    if (status < 0) {
        conn_close(p->conn, 1);
        return;
    }
    p->conn->link->stats.bytes[p->dir] += n;
    inflight_sub(p, n);
    if (p->eof_at_sink && p->writes == 0)
        sink_shutdown(p);
}

static void sink_write(fl_pipe_t *p, fl_chunk_t *ch)
{
    conn_t *c = p->conn;
    size_t left = ch->len - ch->off;
    if (c->closing || left == 0 || p->shutdown_sent) { /* nothing is written after the FIN */
        fl_chunk_free(ch);
        if (!c->closing)
            inflight_sub(p, left);
        return;
    }
    if (p->writes == 0) { /* nothing queued: try to write it right now */
        uv_buf_t b = uv_buf_init(ch->data + ch->off, (unsigned)left);
        int n = uv_try_write((uv_stream_t *)p->dst, &b, 1);
        if (n > 0) {
            ch->off += (size_t)n;
            c->link->stats.bytes[p->dir] += (uint64_t)n;
            inflight_sub(p, (size_t)n);
            if ((size_t)n == left) {
                fl_chunk_free(ch);
                return;
            }
            left -= (size_t)n;
        } else if (n < 0 && n != UV_EAGAIN) {
            fl_chunk_free(ch);
            conn_close(c, 1);
            return;
        }
    }
    wreq_t *w = malloc(sizeof *w);
    if (!w) {
        fl_chunk_free(ch);
        conn_close(c, 1);
        return;
    }
    w->pipe = p;
    w->chunk = ch;
    uv_buf_t b = uv_buf_init(ch->data + ch->off, (unsigned)left);
    if (uv_write(&w->req, (uv_stream_t *)p->dst, &b, 1, write_cb) != 0) {
        free(w);
        fl_chunk_free(ch);
        conn_close(c, 1);
        return;
    }
    p->writes++;
}

static void sink_eof(fl_pipe_t *p)
{
    p->eof_at_sink = 1;
    if (p->writes == 0)
        sink_shutdown(p);
}

/* ------------------------------------------------------------ stages ---- */

static void stage_data(fl_stage_t *s, fl_chunk_t *ch)
{
    if (!s) {
        return;
    }
    if (s->toxic->type->data)
        s->toxic->type->data(s, ch);
    else
        fl_stage_emit(s, ch);
}

static void stage_eof(fl_stage_t *s)
{
    s->got_eof = 1;
    if (s->toxic->type->eof)
        s->toxic->type->eof(s);
    else
        fl_stage_emit_eof(s);
}

void fl_stage_emit(fl_stage_t *s, fl_chunk_t *ch)
{
    if (s->removed) { /* the connection ended during this toxic's call */
        fl_chunk_free(ch);
        return;
    }
    if (s->next)
        stage_data(s->next, ch);
    else
        sink_write(s->pipe, ch);
}

void fl_stage_emit_eof(fl_stage_t *s)
{
    if (s->eof_out || s->removed)
        return;
    s->eof_out = 1;
    if (s->next)
        stage_eof(s->next);
    else
        sink_eof(s->pipe);
}

void fl_stage_hold(fl_stage_t *s, fl_chunk_t *c)
{
    s->toxic->stats.bytes += c->len - c->off;
    int was_empty = s->held.head == NULL;
    fl_chunk_queue_push(&s->held, c);
    if (was_empty)
        s->toxic->type->timer(s);
}

void fl_stage_eof_after_held(fl_stage_t *s)
{
    if (!s->held.head)
        fl_stage_emit_eof(s);
}

fl_chunk_t *fl_stage_take(fl_stage_t *s, size_t max)
{
    fl_chunk_t *c = s->held.head;
    if (!c)
        return NULL;
    if (c->len - c->off <= max)
        return fl_chunk_queue_pop(&s->held);
    fl_chunk_t *head = fl_chunk_split(c, max);
    if (head)
        s->held.bytes -= max;
    return head;
}

void fl_stage_drop(fl_stage_t *s, fl_chunk_t *ch)
{
    size_t n = ch->len - ch->off;
    s->toxic->stats.dropped += n;
    fl_chunk_free(ch);
    if (!s->pipe->conn->closing)
        inflight_sub(s->pipe, n);
}

static void stage_timer_cb(uv_timer_t *t)
{
    fl_stage_t *s = t->data;
    if (!s->removed && !s->pipe->conn->closing && s->toxic->type->timer)
        s->toxic->type->timer(s);
}

void fl_stage_timer_start(fl_stage_t *s, uint64_t ns)
{
    if (s->removed)
        return;
    stage_timer_init(s);
    uv_timer_start(&s->timer, stage_timer_cb, (ns + 999999) / 1000000, 0);
}

void fl_stage_timer_stop(fl_stage_t *s)
{
    if (s->timer_inited)
        uv_timer_stop(&s->timer);
}

void fl_stage_reset(fl_stage_t *s)
{
    if (s->removed)
        return;
    s->toxic->stats.resets++;
    conn_close(s->pipe->conn, 1);
}

/* A graceful close asked for by stage s: both sources stop being read; the EOF leaves s
 * behind what s already passed on, so the stages after it deliver that first; the other way
 * is shut at once (what it still holds is dropped). Once both ways are shut, conn closes. */
/* A graceful close waits for the queued bytes to be written: a peer that never reads would
 * keep it open for ever. The sweep resets such connections once drain_limit_ns has passed. */
static void sweep_cb(uv_timer_t *t)
{
    fl_link_t *l = t->data;
    uint64_t now = uv_hrtime();
    int draining = 0;
    for (conn_t *c = l->conns, *next; c; c = next) {
        next = c->next; /* conn_close unlinks c */
        if (!c->draining)
            continue;
        if (now - c->drain_since > l->drain_limit_ns)
            conn_close(c, 1);
        else
            draining = 1;
    }
    if (!draining)
        uv_timer_stop(t);
}

static void conn_drain(conn_t *c, fl_stage_t *s)
{
    fl_link_t *l = c->link;
    c->draining = 1;
    c->drain_since = uv_hrtime();
    if (!uv_is_active((uv_handle_t *)&l->sweep) && !l->closing) {
        uint64_t ms = l->drain_limit_ns / 4000000 + 1;
        uv_timer_start(&l->sweep, sweep_cb, ms, ms);
    }
    for (int d = 0; d < 2; d++) {
        uv_read_stop((uv_stream_t *)c->pipe[d].src);
        c->pipe[d].reading = 0;
    }
    if (!c->connected) {
        conn_close(c, 0);
        return;
    }
    sink_shutdown(&c->pipe[s->pipe->dir == FL_DIR_UP ? FL_DIR_DOWN : FL_DIR_UP]);
    fl_stage_emit_eof(s);
}

void fl_stage_close(fl_stage_t *s)
{
    conn_t *c = s->pipe->conn;
    if (s->removed || c->closing || c->draining) /* counted once, by the toxic that closed */
        return;
    s->toxic->stats.closes++;
    conn_drain(c, s);
}

double fl_stage_random(fl_stage_t *s)
{
    return fl_rng_double(s->pipe->conn->link->rng);
}

uint64_t fl_stage_now_ns(fl_stage_t *s)
{
    (void)s;
    return uv_hrtime();
}

/* ------------------------------------------------------------ reading ---- */

static fl_pipe_t *pipe_of(conn_t *c, const void *src)
{
    return src == (const void *)&c->client ? &c->pipe[FL_DIR_UP] : &c->pipe[FL_DIR_DOWN];
}

/* A pipe with no stages and no queued write forwards what it reads at once, and copies into a
 * chunk only what the destination does not take now. On Linux it moves the bytes with
 * splice(2), socket → the link's pipe → socket, so they are never copied through user space
 * (zero-copy: half the CPU per byte of read + write); elsewhere, or when the link has no pipe,
 * it reads into the link's scratch buffer and writes from there. Either way the pipe or the
 * buffer is empty again before read_cb returns, so one serves every connection of the link.
 * The moment a toxic joins the pipe (or a write is queued) it leaves this path: alloc_cb
 * decides before every read. */
static int straight_through(const fl_pipe_t *p)
{
    return !p->head && p->writes == 0 && !p->shutdown_sent;
}

#ifdef __linux__
/* The link's pipe for splice, made on first use; 0 when the link cannot splice. */
static int splice_ready(fl_link_t *l)
{
    if (l->splice_state == 0) {
        l->splice_state = -1;
        if (!l->no_splice && pipe2(l->splice_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
            int size = fcntl(l->splice_pipe[1], F_SETPIPE_SZ, SPLICE_PIPE_SIZE);
            if (size <= 0) /* kept its default size */
                size = fcntl(l->splice_pipe[1], F_GETPIPE_SZ);
            l->splice_size = size > 0 ? (size_t)size : 65536;
            l->splice_state = 1;
        }
    }
    return l->splice_state == 1;
}

/* Closes the link's kernel pipe: its connections copy through the scratch buffer from now on. */
static void splice_give_up(fl_link_t *l)
{
    close(l->splice_pipe[0]);
    close(l->splice_pipe[1]);
    l->splice_state = -1;
}

/* Empties the link's pipe of n bytes nobody will write: the next connection must find it
 * empty. Gives up splicing on this link if the pipe misbehaves. */
static void splice_discard(fl_link_t *l, size_t n)
{
    char sink[4096];
    while (n > 0) {
        ssize_t r = read(l->splice_pipe[0], sink, n < sizeof sink ? n : sizeof sink);
        if (r <= 0 && errno != EINTR) {
            splice_give_up(l);
            return;
        }
        if (r > 0)
            n -= (size_t)r;
    }
}

static int stream_fd(uv_tcp_t *t)
{
    uv_os_fd_t fd = -1;
    uv_fileno((uv_handle_t *)t, &fd);
    return fd;
}

static void source_eof(fl_pipe_t *p);
static void forward_chunk(fl_pipe_t *p, fl_chunk_t *ch);

/* Moves one pipeful from the source to the destination; what the destination does not take
 * now goes into a chunk, the ordinary way (a queued write). Returns the bytes moved in, 0
 * when done for now (EAGAIN, EOF, the destination full, or the connection ended). */
static size_t splice_once(fl_pipe_t *p)
{
    conn_t *c = p->conn;
    fl_link_t *l = c->link;
    ssize_t n;
    do
        n = splice(stream_fd(p->src), NULL, l->splice_pipe[1], NULL, SPLICE_PIPE_SIZE,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        source_eof(p);
        return 0;
    }
    if (n < 0 && (errno == EINVAL || errno == ENOSYS)) { /* a sandbox without splice */
        splice_give_up(l); /* the bytes wait in the socket; the next read copies them */
        return 0;
    }
    if (n < 0) {
        if (errno != EAGAIN)
            conn_close(c, 1); /* a reset (or any error) on one side resets the other */
        return 0;
    }
    size_t done = 0;
    int err = 0;
    while (done < (size_t)n && !err) {
        ssize_t w = splice(l->splice_pipe[0], NULL, stream_fd(p->dst), NULL, (size_t)n - done,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (w > 0)
            done += (size_t)w;
        else if (w == 0 || errno != EINTR)
            err = w == 0 ? EPIPE : errno;
    }
    l->stats.bytes[p->dir] += done;
    l->stats.spliced += done;
    size_t left = (size_t)n - done;
    if (left == 0)
        return (size_t)n;
    if (err != EAGAIN) { /* the destination is gone */
        splice_discard(l, left);
        conn_close(c, 1);
        return 0;
    }
    fl_chunk_t *ch = chunk_new(left);
    size_t got = 0;
    while (ch && got < left) {
        ssize_t r = read(l->splice_pipe[0], ch->data + got, left - got);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || errno != EINTR)
            break;
    }
    if (!ch || got < left) {
        fl_chunk_free(ch);
        splice_discard(l, left - got);
        conn_close(c, 1);
        return 0;
    }
    ch->len = left;
    forward_chunk(p, ch);
    return 0;
}

/* The source is readable and the pipe straight through. Like libuv's own reads, goes on
 * while the source fills whole pipefuls (up to SPLICE_ROUNDS), saving a poll per pipeful of
 * a bulk stream. */
static void splice_forward(fl_pipe_t *p)
{
    for (int i = 0; i < SPLICE_ROUNDS; i++)
        if (splice_once(p) < p->conn->link->splice_size || !straight_through(p) || p->conn->closing)
            return;
}
#else
static int splice_ready(fl_link_t *l)
{
    (void)l;
    return 0;
}

static void splice_forward(fl_pipe_t *p)
{
    (void)p;
}
#endif

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = h->data;
    fl_link_t *l = c->link;
    fl_pipe_t *p = pipe_of(c, h);
    p->splicing = straight_through(p) && splice_ready(l);
    if (p->splicing) { /* a zero-length buffer: libuv calls read_cb(UV_ENOBUFS), reads nothing */
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    if (straight_through(p)) {
        if (!l->scratch)
            l->scratch = malloc(SCRATCH_SIZE);
        if (l->scratch) {
            *buf = uv_buf_init(l->scratch, SCRATCH_SIZE);
            return;
        }
    }
    fl_chunk_t *ch = chunk_new(READ_CHUNK);
    *buf = ch ? uv_buf_init(ch->data, READ_CHUNK) : uv_buf_init(NULL, 0);
}

static fl_chunk_t *chunk_of(const uv_buf_t *buf)
{
    return buf->base ? (fl_chunk_t *)(void *)(buf->base - offsetof(fl_chunk_t, data)) : NULL;
}

/* Writes n bytes of the scratch buffer now; returns the chunk holding what is left (NULL with
 * *left 0 when all went, NULL with *left n on FL_ENOMEM), or closes the connection. */
static fl_chunk_t *scratch_write(fl_pipe_t *p, const char *data, size_t n, size_t *left)
{
    conn_t *c = p->conn;
    size_t done = 0;
    if (straight_through(p)) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
        int w = uv_try_write((uv_stream_t *)p->dst, &b, 1);
        if (w < 0 && w != UV_EAGAIN) {
            conn_close(c, 1);
            *left = 0;
            return NULL;
        }
        if (w > 0) {
            done = (size_t)w;
            c->link->stats.bytes[p->dir] += (uint64_t)w;
        }
    }
    *left = n - done;
    if (*left == 0)
        return NULL;
    fl_chunk_t *ch = chunk_new(*left);
    if (ch)
        memcpy(ch->data, data + done, *left);
    return ch;
}

/* The source sent FIN: it travels down the stages behind every byte read before it. */
static void source_eof(fl_pipe_t *p)
{
    uv_read_stop((uv_stream_t *)p->src);
    p->reading = 0;
    p->src_eof = 1;
    if (p->head)
        stage_eof(p->head);
    else
        sink_eof(p);
}

/* Counts a chunk just read (ch->len bytes) as in flight, stops reading above the high-water
 * mark, and passes the chunk into the stages (or to the destination). */
static void forward_chunk(fl_pipe_t *p, fl_chunk_t *ch)
{
    ch->t_ns = uv_hrtime();
    p->inflight += ch->len;
    if (p->inflight >= HIGH_WATER && p->reading) {
        uv_read_stop((uv_stream_t *)p->src);
        p->reading = 0;
        p->paused = 1;
    }
    if (p->head)
        stage_data(p->head, ch);
    else
        sink_write(p, ch);
}

static void read_cb(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = stream->data;
    fl_pipe_t *p = pipe_of(c, stream);
    if (n == UV_ENOBUFS && p->splicing) {
        p->splicing = 0;
        if (!c->closing)
            splice_forward(p);
        return;
    }
    int scratch = buf->base && buf->base == c->link->scratch;
    fl_chunk_t *ch = scratch ? NULL : chunk_of(buf);
    if (n <= 0 || c->closing) {
        fl_chunk_free(ch);
        if (n == UV_EOF && !c->closing)
            source_eof(p);
        else if (n < 0 && !c->closing)
            conn_close(c, 1); /* a reset (or any error) on one side resets the other */
        return;
    }
    if (scratch) {
        size_t left;
        ch = scratch_write(p, buf->base, (size_t)n, &left);
        if (!ch) {
            if (left > 0)
                conn_close(c, 1);
            return;
        }
        n = (ssize_t)left;
    } else if ((size_t)n < READ_CHUNK / 2) { /* held chunks should not pin 64 KiB each */
        fl_chunk_t *small = realloc(ch, sizeof *ch + (size_t)n);
        if (small)
            ch = small;
    }
    ch->len = (size_t)n;
    forward_chunk(p, ch);
}

static void read_start(fl_pipe_t *p)
{
    if (p->reading || p->src_eof || p->conn->closing || p->conn->draining)
        return;
    if (uv_read_start((uv_stream_t *)p->src, alloc_cb, read_cb) == 0)
        p->reading = 1;
}

/* ------------------------------------------------------------ toxics on connections ---- */

/* Does t apply to a connection being considered now? Draws once per connection. */
static int toxic_draw(fl_toxic_t *t, fl_rng_t *rng)
{
    long *considered = t->shared ? t->shared : &t->considered;
    if (t->first >= 0 && *considered >= t->first)
        return 0;
    (*considered)++;
    if (t->toxicity < 1.0 && fl_rng_double(rng) >= t->toxicity)
        return 0;
    t->stats.connections++;
    return 1;
}

static fl_stage_t *stage_new(fl_toxic_t *t, fl_pipe_t *p)
{
    fl_stage_t *s = calloc(1, sizeof *s + t->type->state_size);
    if (!s)
        return NULL;
    s->toxic = t;
    s->pipe = p;
    return s;
}

static void pipe_append(fl_pipe_t *p, fl_stage_t *s)
{
    fl_stage_t **at = &p->head;
    while (*at)
        at = &(*at)->next;
    *at = s;
}

/* Adds toxic t to an open connection if the draw says so. */
static void conn_apply(conn_t *c, fl_toxic_t *t)
{
    if (t->type->accept || !toxic_draw(t, c->link->rng))
        return;
    for (int d = 0; d < 2; d++) {
        if (!(t->dirs & (1 << d)))
            continue;
        fl_stage_t *s = stage_new(t, &c->pipe[d]);
        if (!s) {
            conn_close(c, 1);
            return;
        }
        pipe_append(&c->pipe[d], s);
        if (t->type->start)
            t->type->start(s);
        if (c->closing)
            return;
    }
}

static void pipe_remove_toxic(fl_pipe_t *p, fl_toxic_t *t)
{
    for (fl_stage_t **at = &p->head; *at; at = &(*at)->next) {
        fl_stage_t *s = *at;
        if (s->toxic != t)
            continue;
        fl_stage_timer_stop(s);
        if (t->type->flush) {
            t->type->flush(s); /* emits into s->next, still linked */
        } else {
            fl_chunk_t *ch;
            while (!p->conn->closing && (ch = fl_chunk_queue_pop(&s->held)))
                fl_stage_emit(s, ch);
            if (!p->conn->closing && s->got_eof)
                fl_stage_emit_eof(s);
        }
        if (p->conn->closing) /* flushing can end the connection (a write error) */
            return;
        *at = s->next;
        stage_destroy(s);
        return;
    }
}

/* ------------------------------------------------------------ accepting ---- */

static void connected_cb(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        c->link->stats.upstream_failed++;
        conn_close(c, 1); /* the client sees a reset, as it would from a refused connect */
        return;
    }
    c->connected = 1;
    uv_tcp_nodelay(&c->server, 1);
    read_start(&c->pipe[FL_DIR_UP]);
    read_start(&c->pipe[FL_DIR_DOWN]);
}

static int refused_at_accept(fl_link_t *l)
{
    for (fl_toxic_t *t = l->toxics; t; t = t->next)
        if (t->type->accept && toxic_draw(t, l->rng) && t->type->accept(t)) {
            t->stats.refused++;
            return 1;
        }
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    fl_link_t *l = server->data;
    if (status < 0 || l->closing)
        return;
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->link = l;
    c->id = ++l->next_conn_id;
    uv_tcp_init(l->loop, &c->client);
    uv_tcp_init(l->loop, &c->server);
    c->client.data = c->server.data = c->creq.data = c;
    c->refs = 2;
    l->open_refs++;
    l->stats.active++;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    for (int d = 0; d < 2; d++) {
        c->pipe[d].conn = c;
        c->pipe[d].dir = (fl_dir_t)d;
    }
    c->pipe[FL_DIR_UP].src = c->pipe[FL_DIR_DOWN].dst = &c->client;
    c->pipe[FL_DIR_UP].dst = c->pipe[FL_DIR_DOWN].src = &c->server;
    if (uv_accept(server, (uv_stream_t *)&c->client) != 0) {
        conn_close(c, 0);
        return;
    }
    l->stats.accepted++;
    if (refused_at_accept(l)) {
        l->stats.refused++;
        conn_close(c, 1);
        return;
    }
    uv_tcp_nodelay(&c->client, 1);
    for (fl_toxic_t *t = l->toxics; t && !c->closing; t = t->next)
        conn_apply(c, t);
    if (c->closing)
        return;
    struct sockaddr_storage sa;
    if (uv_ip4_addr(l->up_host, l->up_port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(l->up_host, l->up_port, (struct sockaddr_in6 *)&sa) != 0) {
        l->stats.upstream_failed++;
        conn_close(c, 1);
        return;
    }
    if (uv_tcp_connect(&c->creq, &c->server, (struct sockaddr *)&sa, connected_cb) != 0) {
        l->stats.upstream_failed++;
        conn_close(c, 1);
    }
}

/* ------------------------------------------------------------ the link ---- */

int fl_link_open(uv_loop_t *loop, fl_link_t *l, const char *listen_host, int listen_port,
                 const char *up_host, int up_port, fl_rng_t *rng)
{
    l->loop = loop;
    l->rng = rng;
    uv_tcp_init(loop, &l->listener); /* first: fl_link_close must always be able to close it */
    uv_timer_init(loop, &l->sweep);
    l->listener.data = l->sweep.data = l;
    l->open_refs = 2;
    if (!l->drain_limit_ns)
        l->drain_limit_ns = 5000000000ull;
    snprintf(l->listen_host, sizeof l->listen_host, "%s", listen_host);
    fl_link_set_upstream(l, up_host, up_port);
    struct sockaddr_storage sa;
    int rc = uv_ip4_addr(listen_host, listen_port, (struct sockaddr_in *)&sa);
    if (rc)
        rc = uv_ip6_addr(listen_host, listen_port, (struct sockaddr_in6 *)&sa);
    if (rc)
        return rc;
    rc = uv_tcp_bind(&l->listener, (struct sockaddr *)&sa, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&l->listener, 1024, on_connection);
    if (rc)
        return rc; /* the caller closes the link as usual */
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&l->listener, (struct sockaddr *)&bound, &len);
    l->listen_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    if (!l->name[0])
        snprintf(l->name, sizeof l->name, "%s:%d", l->listen_host, l->listen_port);
    return 0;
}

void fl_link_set_upstream(fl_link_t *l, const char *up_host, int up_port)
{
    snprintf(l->up_host, sizeof l->up_host, "%s", up_host);
    l->up_port = up_port;
}

void fl_toxic_spec_init(fl_toxic_spec_t *spec, const char *type)
{
    memset(spec, 0, sizeof *spec);
    spec->type = type;
    spec->toxicity = 1.0;
    spec->first = -1;
}

static int param_index(const fl_toxic_type_t *type, const char *name)
{
    for (int i = 0; i < FL_TOXIC_MAX_PARAMS && type->params[i].name; i++)
        if (strcmp(type->params[i].name, name) == 0)
            return i;
    return -1;
}

static int spec_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int spec_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return FL_EINVAL;
}

static int validate(fl_link_t *l, const fl_toxic_spec_t *spec, const fl_toxic_type_t **typep,
                    double *p, char *name, size_t namelen, char *err, size_t errlen)
{
    const fl_toxic_type_t *type = fl_toxic_type_find(spec->type);
    if (!type) {
        const char *names[32] = {NULL};
        for (size_t i = 0; fl_toxic_types[i] && i < 31; i++)
            names[i] = fl_toxic_types[i]->name;
        const char *sug = fl_suggest(spec->type, names);
        if (sug)
            return spec_error(err, errlen, "unknown toxic '%s' (did you mean '%s'?)", spec->type,
                              sug);
        return spec_error(err, errlen, "unknown toxic '%s'", spec->type);
    }
    if (!(spec->toxicity >= 0 && spec->toxicity <= 1))
        return spec_error(err, errlen, "%s: toxicity must be from 0 to 1, got %g", type->name,
                          spec->toxicity);
    if (spec->first < -1)
        return spec_error(err, errlen, "%s: first must be 0 or more, got %ld", type->name,
                          spec->first);
    if (spec->dirs & ~FL_DIRS_BOTH)
        return spec_error(err, errlen, "%s: bad direction", type->name);
    int given[FL_TOXIC_MAX_PARAMS] = {0};
    for (int i = 0; i < spec->nparams; i++) {
        int k = param_index(type, spec->pname[i]);
        if (k < 0) {
            char known[160] = "";
            for (int j = 0; j < FL_TOXIC_MAX_PARAMS && type->params[j].name; j++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", j ? ", " : "",
                         type->params[j].name);
            return spec_error(err, errlen, "%s has no parameter '%s' (its parameters: %s)",
                              type->name, spec->pname[i], known[0] ? known : "none");
        }
        const fl_toxic_param_t *pd = &type->params[k];
        double v = spec->pvalue[i];
        if (!(v >= pd->min && v <= pd->max))
            return spec_error(err, errlen, "%s: %s must be from %.15g to %.15g, got %.15g",
                              type->name, pd->name, pd->min, pd->max, v);
        p[k] = v;
        given[k] = 1;
    }
    for (int k = 0; k < FL_TOXIC_MAX_PARAMS && type->params[k].name; k++) {
        if (given[k])
            continue;
        if (type->params[k].required)
            return spec_error(err, errlen, "%s needs %s (%s)", type->name, type->params[k].name,
                              type->params[k].doc);
        p[k] = type->params[k].def;
    }
    int dirs = spec->dirs ? spec->dirs : 1 << FL_DIR_DOWN;
    if (spec->name) {
        if (!spec->name[0] || strlen(spec->name) >= namelen)
            return spec_error(err, errlen, "%s: bad toxic name", type->name);
        if (fl_link_find_toxic(l, spec->name))
            return spec_error(err, errlen, "a toxic named '%s' is already on %s", spec->name,
                              l->name);
        snprintf(name, namelen, "%s", spec->name);
    } else {
        snprintf(name, namelen, "%s_%s", type->name, fl_dirs_name(dirs));
        for (int n = 2; fl_link_find_toxic(l, name); n++)
            snprintf(name, namelen, "%s_%s_%d", type->name, fl_dirs_name(dirs), n);
    }
    *typep = type;
    return 0;
}

int fl_link_add_toxic(fl_link_t *l, const fl_toxic_spec_t *spec, fl_toxic_t **out, char *err,
                      size_t errlen)
{
    const fl_toxic_type_t *type = NULL;
    double p[FL_TOXIC_MAX_PARAMS] = {0};
    char name[64];
    int rc = validate(l, spec, &type, p, name, sizeof name, err, errlen);
    if (rc)
        return rc;
    fl_toxic_t *t = calloc(1, sizeof *t);
    if (!t)
        return FL_ENOMEM;
    t->type = type;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dirs = spec->dirs ? spec->dirs : 1 << FL_DIR_DOWN;
    t->toxicity = spec->toxicity;
    t->first = spec->first;
    t->shared = spec->shared; /* before it applies to the open connections below */
    memcpy(t->p, p, sizeof p);
    t->link = l;
    t->added_ns = uv_hrtime();
    fl_toxic_t **at = &l->toxics;
    while (*at)
        at = &(*at)->next;
    *at = t;
    /* oldest connections first, so `first` counts them in the order they were opened */
    conn_t *last = l->conns;
    while (last && last->next)
        last = last->next;
    for (conn_t *c = last; c;) {
        conn_t *prev = c->prev;
        if (!c->closing)
            conn_apply(c, t);
        c = prev;
    }
    if (out)
        *out = t;
    return 0;
}

fl_toxic_t *fl_link_find_toxic(fl_link_t *l, const char *name)
{
    for (fl_toxic_t *t = l->toxics; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

int fl_link_remove_toxic(fl_link_t *l, const char *name)
{
    fl_toxic_t **at = &l->toxics;
    while (*at && strcmp((*at)->name, name) != 0)
        at = &(*at)->next;
    fl_toxic_t *t = *at;
    if (!t)
        return FL_ENOTFOUND;
    *at = t->next;
    for (conn_t *c = l->conns; c;) {
        conn_t *next = c->next; /* flushing may close c (unlinking it) */
        for (int d = 0; d < 2 && !c->closing; d++)
            pipe_remove_toxic(&c->pipe[d], t);
        c = next;
    }
    free(t);
    return 0;
}

void fl_link_heal(fl_link_t *l)
{
    while (l->toxics)
        fl_link_remove_toxic(l, l->toxics->name);
}

void fl_link_drop_connections(fl_link_t *l, int reset)
{
    while (l->conns)
        conn_close(l->conns, reset);
}

static void listener_closed(uv_handle_t *h)
{
    link_unref(h->data);
}

void fl_link_close(fl_link_t *l, void (*cb)(fl_link_t *l))
{
    if (l->closing && l->close_cb)
        return;
    l->close_cb = cb;
    l->closing = 1;
    fl_link_drop_connections(l, 0); /* destroys every stage... */
    while (l->toxics) {             /* ...so the toxics can go */
        fl_toxic_t *t = l->toxics;
        l->toxics = t->next;
        free(t);
    }
    if (l->open_refs == 0) {
        if (cb)
            cb(l);
        return;
    }
    if (!uv_is_closing((uv_handle_t *)&l->sweep))
        uv_close((uv_handle_t *)&l->sweep, listener_closed);
    if (!uv_is_closing((uv_handle_t *)&l->listener))
        uv_close((uv_handle_t *)&l->listener, listener_closed);
}
