/* tcpbench: the raw TCP ends of the link benchmark (bench/links.sh). Plain sockets and one
 * epoll loop, no project code, so that what it measures is the path between its two ends
 * (a direct connection, or one through a faultline link) and not itself.
 *
 *   tcpbench sink LISTEN          accept; read each connection to EOF, reply "<bytes>\n"
 *   tcpbench hold LISTEN          accept and keep connections; echo whatever arrives
 *   tcpbench stream ADDR BYTES    send BYTES, half-close, wait for the count; print GB/s
 *   tcpbench idle ADDR N          open N connections, ping each once (through a hold
 *                                 server), print "ready N SECONDS", keep them until SIGTERM
 *   tcpbench freeport             print a TCP port on 127.0.0.1 that was free just now
 *
 * LISTEN and ADDR are IPv4 HOST:PORT. The servers print "listening PORT" once they accept
 * (so PORT may be 0), and run until SIGTERM or SIGINT. Exit status: 0 ok, 1 failure,
 * 2 usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_BUF (1024 * 1024)
#define IDLE_BATCH 128
#define PING_TIMEOUT_MS 10000

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int fail(const char *what)
{
    fprintf(stderr, "tcpbench: %s: %s\n", what, strerror(errno));
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: tcpbench sink LISTEN | hold LISTEN | stream ADDR BYTES |"
                    " idle ADDR N | freeport\n");
    return 2;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parses "A.B.C.D:PORT" (or ":PORT" / "PORT" for 127.0.0.1). */
static int parse_addr(const char *s, struct sockaddr_in *sa)
{
    char host[64] = "127.0.0.1";
    const char *colon = strrchr(s, ':');
    const char *port = s;
    if (colon) {
        size_t n = (size_t)(colon - s);
        if (n >= sizeof host)
            return -1;
        if (n > 0) {
            memcpy(host, s, n);
            host[n] = '\0';
        }
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || p < 0 || p > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)p);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Many connections need many descriptors: take whatever the hard limit allows. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------ servers ---- */

typedef struct {
    int fd;
    uint64_t bytes;
} peer_t;

static void peer_close(int ep, peer_t *p)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    free(p);
}

/* Reads what is there. sink: count it, and at EOF reply with the count and close. hold:
 * echo it back (pings are a byte or so: one write always takes them). */
static void peer_readable(int ep, peer_t *p, int hold, char *buf)
{
    for (;;) {
        ssize_t n = read(p->fd, buf, IO_BUF);
        if (n > 0) {
            p->bytes += (uint64_t)n;
            if (hold && write(p->fd, buf, (size_t)n) != n) {
                peer_close(ep, p);
                return;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n == 0 && !hold) {
            char line[32];
            int len = snprintf(line, sizeof line, "%" PRIu64 "\n", p->bytes);
            int fl = fcntl(p->fd, F_GETFL);
            fcntl(p->fd, F_SETFL, fl & ~O_NONBLOCK); /* a few bytes: never blocks for long */
            if (write(p->fd, line, (size_t)len) != len)
                fprintf(stderr, "tcpbench: reply: %s\n", strerror(errno));
        }
        peer_close(ep, p);
        return;
    }
}

static int serve(const char *listen_addr, int hold)
{
    struct sockaddr_in sa;
    if (parse_addr(listen_addr, &sa) != 0) {
        fprintf(stderr, "tcpbench: bad listen address '%s' (expected A.B.C.D:PORT)\n", listen_addr);
        return 2;
    }
    raise_nofile();
    install_signals();
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0)
        return fail("bind");
    if (listen(ls, 4096) != 0)
        return fail("listen");
    socklen_t len = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &len);
    printf("listening %d\n", ntohs(sa.sin_port));
    fflush(stdout);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    char *buf = malloc(IO_BUF);
    if (!buf)
        return fail("malloc");
    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, 500);
        for (int i = 0; i < n; i++) {
            peer_t *p = evs[i].data.ptr;
            if (p) {
                peer_readable(ep, p, hold, buf);
                continue;
            }
            int fd;
            while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                peer_t *np = calloc(1, sizeof *np);
                if (!np) {
                    close(fd);
                    continue;
                }
                np->fd = fd;
                struct epoll_event pev = {.events = EPOLLIN, .data.ptr = np};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &pev);
            }
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "tcpbench: accept: %s\n", strerror(errno));
        }
    }
    free(buf);
    close(ep);
    close(ls);
    return 0; /* the peers' sockets close with the process */
}

/* ------------------------------------------------------------ clients ---- */

static int dial(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int stream(const char *addr, const char *bytes_s)
{
    struct sockaddr_in sa;
    char *end;
    unsigned long long total = strtoull(bytes_s, &end, 10);
    if (parse_addr(addr, &sa) != 0) {
        fprintf(stderr, "tcpbench: bad address '%s' (expected A.B.C.D:PORT)\n", addr);
        return 2;
    }
    if (*bytes_s == '\0' || *end != '\0' || total == 0) {
        fprintf(stderr, "tcpbench: bad byte count '%s' (expected a positive integer)\n", bytes_s);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int rc = 1, fd = -1;
    char *buf = malloc(IO_BUF);
    if (!buf) {
        fail("malloc");
        goto out;
    }
    memset(buf, 'x', IO_BUF);
    double t0 = now_s();
    if ((fd = dial(&sa)) < 0) {
        fail("connect");
        goto out;
    }
    unsigned long long sent = 0;
    while (sent < total) {
        size_t chunk = total - sent < IO_BUF ? (size_t)(total - sent) : IO_BUF;
        ssize_t n = write(fd, buf, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fail("write");
            goto out;
        }
        sent += (unsigned long long)n;
    }
    shutdown(fd, SHUT_WR);
    char reply[64];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail("read the count");
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == sizeof reply - 1)
            break;
    }
    double secs = now_s() - t0;
    reply[got] = '\0';
    unsigned long long counted = strtoull(reply, NULL, 10);
    if (counted != total) {
        fprintf(stderr, "tcpbench: sent %llu bytes but the sink counted %llu\n", total, counted);
        goto out;
    }
    printf("bytes=%llu seconds=%.6f gbps=%.3f\n", total, secs, (double)total / secs / 1e9);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* Waits for the echo of one byte on fd. */
static int ping_reply(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char c;
    if (poll(&pfd, 1, PING_TIMEOUT_MS) != 1)
        return -1;
    return read(fd, &c, 1) == 1 ? 0 : -1;
}

static int idle(const char *addr, const char *n_s)
{
    struct sockaddr_in sa;
    char *end;
    long want = strtol(n_s, &end, 10);
    if (parse_addr(addr, &sa) != 0) {
        fprintf(stderr, "tcpbench: bad address '%s' (expected A.B.C.D:PORT)\n", addr);
        return 2;
    }
    if (*n_s == '\0' || *end != '\0' || want <= 0) {
        fprintf(stderr, "tcpbench: bad connection count '%s' (expected a positive integer)\n", n_s);
        return 2;
    }
    raise_nofile();
    install_signals();
    int rc = 1;
    long open = 0;
    int *fds = calloc((size_t)want, sizeof *fds);
    if (!fds) {
        fail("calloc");
        goto out;
    }
    double t0 = now_s();
    /* In batches: each connection is known to reach the far end (through the proxy's own
     * upstream connection) before the next batch starts, and no accept queue overflows. */
    for (long i = 0; i < want; i += IDLE_BATCH) {
        long batch_end = i + IDLE_BATCH < want ? i + IDLE_BATCH : want;
        for (long k = i; k < batch_end; k++) {
            if ((fds[k] = dial(&sa)) < 0) {
                fprintf(stderr, "tcpbench: connection %ld of %ld: %s\n", k + 1, want,
                        strerror(errno));
                goto out;
            }
            open = k + 1;
            if (write(fds[k], "p", 1) != 1) {
                fail("ping");
                goto out;
            }
        }
        for (long k = i; k < batch_end; k++)
            if (ping_reply(fds[k]) != 0) {
                fprintf(stderr, "tcpbench: connection %ld of %ld: no echo within %d ms\n", k + 1,
                        want, PING_TIMEOUT_MS);
                goto out;
            }
    }
    printf("ready %ld %.3f\n", want, now_s() - t0);
    fflush(stdout);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old); /* no signal lost between the test and the wait */
    while (!stop)
        sigsuspend(&old);
    rc = 0;
out:
    for (long k = 0; k < open; k++)
        close(fds[k]);
    free(fds);
    return rc;
}

static int freeport(void)
{
    struct sockaddr_in sa;
    parse_addr("127.0.0.1:0", &sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        return fail("freeport");
    printf("%d\n", ntohs(sa.sin_port));
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "sink") == 0)
        return serve(argv[2], 0);
    if (argc == 3 && strcmp(argv[1], "hold") == 0)
        return serve(argv[2], 1);
    if (argc == 4 && strcmp(argv[1], "stream") == 0)
        return stream(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "idle") == 0)
        return idle(argv[2], argv[3]);
    if (argc == 2 && strcmp(argv[1], "freeport") == 0)
        return freeport();
    return usage();
}
