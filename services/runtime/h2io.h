/* One HTTP/2 connection on a libuv TCP handle: bytes read go into nghttp2, bytes nghttp2
 * produces go out in as few writes as possible. Shared by grpc_server and grpc_client;
 * internal to services/runtime (services use grpc_server.h and grpc_client.h).
 *
 * Output is batched: while the owner is inside a read callback (nghttp2 calling back into
 * it), fl_h2io_flush only notes that output is due, and the read callback flushes once at
 * its end, so the answers to every request in one read leave in one write.
 *
 * Output is bounded: once 1 MiB waits for the socket, nghttp2 keeps the rest in its queue
 * and the connection stops reading from the peer until the output has drained (a peer that
 * never reads its answers stops being read). */
#ifndef FL_H2IO_H
#define FL_H2IO_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <uv.h>

#include "lib/buf.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct fl_h2io fl_h2io_t;

typedef struct {
    /* The peer closed, the socket failed (err < 0, a libuv code or UV_EOF), or nghttp2 found
     * the peer's bytes broken (err is an nghttp2 code): the owner should close. */
    void (*on_error)(fl_h2io_t *io, int err);
    /* nghttp2 wants neither to read nor to write any more and nothing is left to send (both
     * sides are done after a GOAWAY): the owner should close. */
    void (*on_done)(fl_h2io_t *io);
    /* The handle is closed: the owner may free the memory holding io. */
    void (*on_closed)(fl_h2io_t *io);
} fl_h2io_hooks_t;

struct fl_h2io {
    uv_tcp_t tcp;
    nghttp2_session *session;
    const fl_h2io_hooks_t *hooks;
    char *rbuf; /* shared by the owner's connections: reads are handled before the next */
    size_t rbuf_len;
    fl_buf_t pending; /* produced by nghttp2, not yet handed to libuv */
    fl_buf_t writing; /* the bytes of the write in flight */
    uv_write_t wreq;
    int write_active;
    int in_recv; /* inside nghttp2 (mem_recv or mem_send): closing waits */
    int closing;
    int reading;
    int paused; /* reading stopped by back-pressure */
};

/* Initialises io's TCP handle on loop (the owner then connects or accepts on io->tcp). */
int fl_h2io_init(fl_h2io_t *io, uv_loop_t *loop, const fl_h2io_hooks_t *hooks, char *rbuf,
                 size_t rbuf_len);
/* Starts reading into nghttp2 (the session must be set). 0 or a libuv code. */
int fl_h2io_start(fl_h2io_t *io);
/* Sends what nghttp2 has to send (deferred inside a read callback). */
void fl_h2io_flush(fl_h2io_t *io);
/* Closes the handle and deletes the session; hooks->on_closed follows. Idempotent. */
void fl_h2io_close(fl_h2io_t *io);

#endif
