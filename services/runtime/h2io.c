/* One HTTP/2 connection on libuv (h2io.h). */
#include "services/runtime/h2io.h"

#include "lib/err.h"

/* Output waiting for the socket (produced by nghttp2, not yet written) above which the
 * connection stops reading: a peer that does not read what it asks for stops being read,
 * and what nghttp2 has still to send waits in its own queue (where its flood limits apply)
 * instead of in ours. Reading resumes once the output is below half of it. */
#define OUT_HIGH (1u << 20)

static size_t out_waiting(const fl_h2io_t *io)
{
    return io->pending.len + io->writing.len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* Back-pressure: stops reading while too much output waits, resumes when it has drained. */
static void pace_reading(fl_h2io_t *io)
{
    if (io->closing)
        return;
    if (io->reading && out_waiting(io) >= OUT_HIGH) {
        uv_read_stop((uv_stream_t *)&io->tcp);
        io->reading = 0;
        io->paused = 1;
    } else if (io->paused && out_waiting(io) < OUT_HIGH / 2) {
        if (uv_read_start((uv_stream_t *)&io->tcp, on_alloc, on_read) == 0) {
            io->reading = 1;
            io->paused = 0;
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    fl_h2io_t *io = container_of((uv_tcp_t *)h, fl_h2io_t, tcp);
    buf->base = io->rbuf;
    buf->len = io->rbuf_len;
}

static void on_write(uv_write_t *req, int status)
{
    fl_h2io_t *io = container_of(req, fl_h2io_t, wreq);
    io->write_active = 0;
    fl_buf_reset(&io->writing);
    if (io->closing)
        return;
    if (status < 0) {
        io->hooks->on_error(io, status);
        return;
    }
    fl_h2io_flush(io);
}

/* Hands the pending bytes to the socket: at once when it takes them all, else in one
 * uv_write that owns them until its callback. */
static int write_pending(fl_h2io_t *io)
{
    if (io->write_active || io->pending.len == 0)
        return 0;
    uv_buf_t b = uv_buf_init(io->pending.data, (unsigned)io->pending.len);
    int n = uv_try_write((uv_stream_t *)&io->tcp, &b, 1);
    if (n < 0 && n != UV_EAGAIN)
        return n;
    if (n > 0)
        fl_buf_consume(&io->pending, (size_t)n);
    if (io->pending.len == 0)
        return 0;
    fl_buf_t t = io->writing; /* swap: the write owns what is pending now */
    io->writing = io->pending;
    io->pending = t;
    fl_buf_reset(&io->pending);
    b = uv_buf_init(io->writing.data, (unsigned)io->writing.len);
    int rc = uv_write(&io->wreq, (uv_stream_t *)&io->tcp, &b, 1, on_write);
    if (rc)
        return rc;
    io->write_active = 1;
    return 0;
}

static void teardown(fl_h2io_t *io);

/* Moves what nghttp2 has to send into io->pending, up to OUT_HIGH waiting. Returns 1 when it
 * stopped at that limit, 0 when nghttp2 had nothing more, or a negative code. */
static int produce(fl_h2io_t *io)
{
    /* mem_send calls back into the owner (a stream closes when its last frame goes), which
     * may close io: the session is deleted only once mem_send has returned */
    io->in_recv = 1;
    int rc = 0;
    for (;;) {
        const uint8_t *data;
        if (out_waiting(io) >= OUT_HIGH) { /* the rest waits in nghttp2 */
            rc = 1;
            break;
        }
        ssize_t n = nghttp2_session_mem_send(io->session, &data);
        if (n < 0)
            rc = (int)n;
        if (n <= 0 || io->closing)
            break;
        if (fl_buf_append(&io->pending, data, (size_t)n)) {
            rc = FL_ENOMEM;
            break;
        }
    }
    io->in_recv = 0;
    return rc;
}

void fl_h2io_flush(fl_h2io_t *io)
{
    if (io->closing || !io->session || io->in_recv)
        return;
    int more;
    do { /* again while the socket takes everything at once and nghttp2 has more */
        more = produce(io);
        if (io->closing) {
            teardown(io);
            return;
        }
        if (more < 0) {
            io->hooks->on_error(io, more);
            return;
        }
        int rc = write_pending(io);
        if (rc) {
            io->hooks->on_error(io, rc);
            return;
        }
    } while (more && !io->write_active);
    pace_reading(io);
    if (!io->write_active && io->pending.len == 0 && !nghttp2_session_want_read(io->session) &&
        !nghttp2_session_want_write(io->session))
        io->hooks->on_done(io);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    fl_h2io_t *io = container_of((uv_tcp_t *)s, fl_h2io_t, tcp);
    if (nread == 0 || io->closing)
        return;
    if (nread < 0) {
        io->hooks->on_error(io, (int)nread);
        return;
    }
    io->in_recv = 1;
    ssize_t rc = nghttp2_session_mem_recv(io->session, (const uint8_t *)buf->base, (size_t)nread);
    io->in_recv = 0;
    if (io->closing) {
        teardown(io);
        return;
    }
    if (rc < 0) {
        /* nghttp2 may have queued a GOAWAY saying why: send it before closing */
        fl_h2io_flush(io);
        if (!io->closing)
            io->hooks->on_error(io, (int)rc);
        return;
    }
    fl_h2io_flush(io);
}

int fl_h2io_init(fl_h2io_t *io, uv_loop_t *loop, const fl_h2io_hooks_t *hooks, char *rbuf,
                 size_t rbuf_len)
{
    io->hooks = hooks;
    io->rbuf = rbuf;
    io->rbuf_len = rbuf_len;
    io->session = NULL;
    io->write_active = io->in_recv = io->closing = io->reading = io->paused = 0;
    io->pending = (fl_buf_t)FL_BUF_INIT;
    io->writing = (fl_buf_t)FL_BUF_INIT;
    return uv_tcp_init(loop, &io->tcp);
}

int fl_h2io_start(fl_h2io_t *io)
{
    uv_tcp_nodelay(&io->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&io->tcp, on_alloc, on_read);
    if (!rc)
        io->reading = 1;
    return rc;
}

static void on_closed(uv_handle_t *h)
{
    fl_h2io_t *io = container_of((uv_tcp_t *)h, fl_h2io_t, tcp);
    fl_buf_free(&io->pending);
    fl_buf_free(&io->writing);
    io->hooks->on_closed(io);
}

/* Deletes the session and closes the handle: never from inside nghttp2 (mem_recv calling
 * back into the owner), so a close asked for there happens when mem_recv has returned. */
static void teardown(fl_h2io_t *io)
{
    if (io->session) {
        nghttp2_session_del(io->session);
        io->session = NULL;
    }
    uv_close((uv_handle_t *)&io->tcp, on_closed);
}

void fl_h2io_close(fl_h2io_t *io)
{
    if (io->closing)
        return;
    io->closing = 1;
    if (!io->in_recv)
        teardown(io);
}
