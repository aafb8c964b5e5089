/* Fuzzes a whole fake broker (fakes/amqp) with the bytes of one client connection: for each
 * input, a fresh broker on a loop of its own listens on 127.0.0.1, a client connects, sends a
 * valid handshake (protocol header, start-ok, tune-ok, open) and then the input, and reads
 * whatever the broker answers. The input is done once the broker has read every byte of it
 * (or closed the connection); then the client resets the connection and the broker is
 * closed, which must free everything (LeakSanitizer checks) and leave no handle behind. A
 * broker that stops reading, or takes more than a few seconds over one input, is reported as
 * a hang (abort). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "fakes/amqp/amqp.h"
#include "fakes/amqp/codec.h"
#include "fakes/amqp/internal.h" /* the connection's socket, to see that it was read */
#include "lib/buf.h"

#define DEADLINE_MS 5000

static void fail(const char *what)
{
    fprintf(stderr, "amqp conn fuzz: %s\n", what);
    abort();
}

static void on_closed(void *arg)
{
    *(int *)arg = 1;
}

/* The handshake every input follows: what a client that did everything right has sent. */
static void handshake(fl_buf_t *b)
{
    fl_buf_t resp = FL_BUF_INIT;
    fl_buf_append(b, fl_amqp_protocol_header, 8);
    fl_buf_append(&resp, "\0guest\0guest", 12);
    fl_amqp_method_frame(b, 0, 10, 11, NULL, (size_t)0, "PLAIN", resp.data, resp.len, "en_US");
    fl_amqp_method_frame(b, 0, 10, 31, 2047, (uint32_t)131072, 0);
    fl_amqp_method_frame(b, 0, 10, 40, "/", "", 0);
    fl_buf_free(&resp);
}

/* Reads and drops what the broker sent, so its writes never block. Returns 1 at EOF. */
static int drain(int fd)
{
    char sink[65536];
    for (;;) {
        ssize_t n = read(fd, sink, sizeof sink);
        if (n > 0)
            continue;
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
}

/* Bytes of the broker's side of the connection not yet read by it. */
static int unread(broker_t *b)
{
    uv_os_fd_t fd;
    int n = 0;
    if (!b->conns || uv_fileno((uv_handle_t *)&b->conns->tcp, &fd) != 0)
        return 0;
    if (!b->conns->reading)
        return -1; /* not reading: counts as unread until it resumes */
    ioctl(fd, FIONREAD, &n);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uv_loop_t loop;
    static int loop_ready;
    if (!loop_ready) {
        if (uv_loop_init(&loop) != 0)
            abort();
        loop_ready = 1;
    }
    fl_amqp_config_t cfg = {.seed = 1};
    fl_amqp_t *b;
    if (fl_amqp_new(&loop, &cfg, &b) != 0 || fl_amqp_listen(b, "127.0.0.1", 0) != 0)
        fail("cannot start a broker");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail("socket");
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", fl_amqp_port(b), &sa);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
        fail("connect");
    fl_buf_t in = FL_BUF_INIT;
    handshake(&in);
    fl_buf_append(&in, data, size);
    uint64_t deadline = uv_hrtime() + DEADLINE_MS * 1000000ull;
    size_t sent = 0;
    int eof = 0, idle = 0, accepted = 0;
    while (!eof) {
        if (uv_hrtime() > deadline)
            fail("the broker did not read its input in time");
        uv_run(&loop, UV_RUN_NOWAIT);
        broker_t *br = (broker_t *)b;
        accepted |= br->conns != NULL;
        if (sent < in.len) {
            ssize_t n = send(fd, in.data + sent, in.len - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN &&
                     errno != EINTR)
                break; /* the broker closed the connection: the rest is not read */
        }
        eof = drain(fd);
        int outq = 0;
        ioctl(fd, TIOCOUTQ, &outq);
        /* done once every byte sat in the broker's socket and it read them all, twice in a
         * row (a read callback may still be on its way) */
        if (sent == in.len && outq == 0 && br->conns && unread(br) == 0) {
            if (++idle >= 2)
                break;
        } else if (accepted && !br->conns) {
            break; /* the broker dropped the connection */
        } else {
            idle = 0;
            struct pollfd p = {fd, POLLIN | (sent < in.len ? POLLOUT : 0), 0};
            poll(&p, 1, 0);
        }
    }
    /* a reset, not a close: no TIME_WAIT left behind per input */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    int closed = 0;
    fl_amqp_close(b, on_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!closed)
        fail("the broker did not close");
    fl_buf_free(&in);
    return 0;
}
