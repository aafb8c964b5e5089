/* consulbench: the load tools of the fake Consul benchmark (bench/consul.sh). Plain sockets,
 * one epoll loop, a minimal HTTP/1.1 client and server, no project code, so that what it
 * measures is the fake and not a client library.
 *
 *   consulbench watch AGENTS SERVICE N ROUNDS
 *       N blocking watchers, GET /v1/health/service/SERVICE?index=I&wait=60s, spread over the
 *       agents round robin, each on its own connection. Per round: once they have all been
 *       parked for 300 ms (none may answer early), one registration of SERVICE's instance on
 *       the first agent (the same instance each round, on a new port); the time from that
 *       registration's 200 to the last watcher's answer is the figure. Prints one line per
 *       round (with the share of that time the tool spent waiting in epoll_wait: well above 0,
 *       the tool kept up with what arrived) and a summary line.
 *   consulbench checks AGENTS SERVICE N
 *       N HTTP servers in this process (N listening ports on 127.0.0.1, each answering any
 *       request with 200 "ok"); each registers an instance of SERVICE with an HTTP check
 *       (Interval 10s) on its agent (round robin) as soon as it listens. A blocking watcher on
 *       /v1/health/service/SERVICE?passing follows the count; the figure is the time from the
 *       first listen to the answer that lists all N as passing.
 *   consulbench floor BYTES
 *       The machine's floor for the watch figure: a bare epoll server on 127.0.0.1 (it prints
 *       "floor http://HOST:PORT") that parks every GET with index=, and on a PUT answers it
 *       200 and then writes one prepared BYTES-byte answer to each parked connection in a
 *       plain loop (one write(2) each), printing how long that loop took. `watch` against it
 *       measures what no single-threaded server can beat, the same way it measures the fake.
 *       Runs until SIGTERM.
 *
 * AGENTS is a comma-separated list of IPv4 HOST:PORT. Every wait is bounded (10 s). Exit
 * status: 0 measured (the figures are judged by the script), 1 failure, 2 usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_AGENTS 256
#define SETTLE_S 0.3
#define ROUND_TIMEOUT_S 10.0

enum { K_WATCH, K_WRITE, K_LISTEN, K_SERVE };

typedef struct {
    int fd, kind, id;
    int busy; /* a request is out (client), or a request is being read (server) */
    char *in; /* bytes read so far */
    size_t len, cap;
    size_t head; /* length of the response head once seen, else 0 */
    long clen;   /* its Content-Length, -1 until seen */
    int status;
    int eof;                  /* the peer closed after what was read */
    unsigned long long index; /* X-Consul-Index */
    double sent, done;
} conn_t;

static struct sockaddr_in agents[MAX_AGENTS];
static int nagents;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(stderr, "usage: consulbench watch AGENTS SERVICE N ROUNDS | checks AGENTS SERVICE N |"
                    " floor BYTES\n"
                    "  AGENTS: HOST:PORT[,HOST:PORT...]\n");
    return 2;
}

static int fail(const char *what)
{
    fprintf(stderr, "consulbench: %s: %s\n", what, errno ? strerror(errno) : "failed");
    return 1;
}

static int parse_addr(const char *s, size_t n, struct sockaddr_in *sa)
{
    char buf[64];
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *colon = strrchr(buf, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p <= 0 || p > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)p);
    return inet_pton(AF_INET, buf, &sa->sin_addr) == 1 ? 0 : -1;
}

static int parse_agents(const char *s)
{
    while (*s && nagents < MAX_AGENTS) {
        size_t n = strcspn(s, ",");
        if (parse_addr(s, n, &agents[nagents++]) < 0)
            return -1;
        s += n + (s[n] == ',');
    }
    return nagents ? 0 : -1;
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

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ------------------------------------------------------------ connections ---- */

static conn_t *conn_new(int fd, int kind, int id)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->kind = kind;
    c->id = id;
    c->clen = -1;
    return c;
}

static void conn_free(int ep, conn_t *c)
{
    if (!c)
        return;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c);
}

static conn_t *dial(int ep, const struct sockaddr_in *sa, int kind, int id)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        return NULL;
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0 || set_nonblock(fd) < 0) {
        close(fd);
        return NULL;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_t *c = conn_new(fd, kind, id);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        free(c);
        close(fd);
        return NULL;
    }
    return c;
}

/* Writes all of buf (small: a request or an answer), waiting for room if need be. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 1000);
        } else {
            return -1;
        }
    }
    return 0;
}

static int send_request(conn_t *c, const char *method, const char *target, const char *body)
{
    char req[2048];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: consul\r\nUser-Agent: consulbench\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, target, blen, body ? body : "");
    if (n < 0 || (size_t)n >= sizeof req)
        return -1;
    c->len = c->head = 0;
    c->clen = -1;
    c->status = 0;
    c->busy = 1;
    c->sent = now_s();
    return write_all(c->fd, req, (size_t)n);
}

static int header_value(const char *head, size_t hlen, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = head; p < head + hlen;) {
        const char *eol = memmem(p, (size_t)(head + hlen - p), "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)(eol - v), v);
            return 0;
        }
        p = eol + 2;
    }
    return -1;
}

/* Reads what is there. Returns 1 when a complete response (client) or request head (server)
 * is in c->in (c->eof says whether the peer closed after it), 0 for more to come, -1 on EOF
 * before that, or an error. */
static int conn_read(conn_t *c)
{
    int eof = 0;
    for (;;) {
        if (c->cap - c->len < 65536) {
            size_t cap = c->cap ? c->cap * 2 : 131072;
            char *in = realloc(c->in, cap);
            if (!in)
                return -1;
            c->in = in;
            c->cap = cap;
        }
        ssize_t n = read(c->fd, c->in + c->len, c->cap - c->len - 1);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            eof = 1;
        else if (errno != EAGAIN)
            return -1;
        break;
    }
    c->in[c->len] = '\0';
    c->eof = eof;
    if (!c->head) {
        char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
        if (!end)
            return eof ? -1 : 0;
        c->head = (size_t)(end - c->in) + 4;
        if (c->kind == K_SERVE)
            return 1;
        char v[64];
        c->status = atoi(c->in + 9);
        c->clen = header_value(c->in, c->head, "Content-Length", v, sizeof v) == 0 ? atol(v) : 0;
        if (header_value(c->in, c->head, "X-Consul-Index", v, sizeof v) == 0)
            c->index = strtoull(v, NULL, 10);
    }
    if (c->len >= c->head + (size_t)c->clen)
        return 1;
    return eof ? -1 : 0;
}

/* One request on a fresh connection, waited for (10 s at most); c keeps the response. */
static conn_t *request_sync(const struct sockaddr_in *sa, const char *method, const char *target,
                            const char *body)
{
    int ep = epoll_create1(0);
    conn_t *c = ep >= 0 ? dial(ep, sa, K_WRITE, 0) : NULL;
    int rc = c ? send_request(c, method, target, body) : -1;
    double end = now_s() + ROUND_TIMEOUT_S;
    while (rc == 0 && now_s() < end) {
        struct epoll_event ev;
        if (epoll_wait(ep, &ev, 1, 100) == 1 && (rc = conn_read(c)) != 0)
            break;
    }
    if (c) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (ep >= 0)
        close(ep);
    if (rc != 1) {
        if (c)
            free(c->in);
        free(c);
        return NULL;
    }
    return c;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t count_of(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* ------------------------------------------------------------ watch ---- */

static int watch(const char *service, int n, int rounds)
{
    int ep = epoll_create1(0);
    conn_t **w = calloc((size_t)n, sizeof *w);
    double *lat = calloc((size_t)n, sizeof *lat), *last = calloc((size_t)rounds, sizeof *last);
    struct epoll_event *evs = calloc(1024, sizeof *evs);
    if (ep < 0 || !w || !lat || !last || !evs)
        return fail("setup");
    for (int i = 0; i < n; i++)
        if (!(w[i] = dial(ep, &agents[i % nagents], K_WATCH, i)))
            return fail("connecting a watcher");
    conn_t *reg = dial(ep, &agents[0], K_WRITE, -1);
    if (!reg)
        return fail("connecting the registrar");
    printf("watch: %d watchers on %d agent%s, service %s\n", n, nagents, nagents == 1 ? "" : "s",
           service);
    int failures = 0;
    size_t answer = 0; /* bytes of a watcher's answer, head and body */
    for (int r = 0; r < rounds; r++) {
        char target[512], body[512];
        snprintf(target, sizeof target, "/v1/health/service/%s", service);
        conn_t *q = request_sync(&agents[0], "GET", target, NULL);
        if (!q || q->status != 200)
            return fail("reading the index");
        unsigned long long idx = q->index;
        free(q->in);
        free(q);
        snprintf(target, sizeof target, "/v1/health/service/%s?index=%llu&wait=60s", service, idx);
        for (int i = 0; i < n; i++)
            if (send_request(w[i], "GET", target, NULL) < 0)
                return fail("sending a watch");
        int early = 0, answered = 0, errors = 0;
        double settle_end = now_s() + SETTLE_S;
        while (now_s() < settle_end) {
            int k = epoll_wait(ep, evs, 1024, 10);
            for (int e = 0; e < k; e++) {
                conn_t *c = evs[e].data.ptr;
                if (conn_read(c) != 0) {
                    early++;
                    c->busy = 0;
                }
            }
        }
        /* the same instance each round, on another port: every answer has the same size */
        snprintf(body, sizeof body,
                 "{\"Name\":\"%s\",\"ID\":\"%s-bench\",\"Address\":\"127.0.0.1\",\"Port\":%d}",
                 service, service, 20000 + r);
        double put = now_s(), ok = 0;
        if (send_request(reg, "PUT", "/v1/agent/service/register", body) < 0)
            return fail("sending the registration");
        double end = put + ROUND_TIMEOUT_S, idle = 0;
        while ((answered + early + errors < n || reg->busy) && now_s() < end) {
            double before = now_s();
            int k = epoll_wait(ep, evs, 1024, 100);
            if (ok) /* waiting for answers after the 200 */
                idle += now_s() - before;
            for (int e = 0; e < k; e++) {
                conn_t *c = evs[e].data.ptr;
                int rc = c->busy ? conn_read(c) : -1;
                double t = now_s();
                if (rc == 0)
                    continue;
                c->busy = 0;
                if (c == reg) {
                    if (rc < 0 || c->status != 200)
                        return fail("the registration failed");
                    ok = t;
                } else if (rc < 0 || c->status != 200 || c->index <= idx) {
                    errors++;
                } else {
                    c->done = t;
                    answer = c->len;
                    answered++;
                }
            }
        }
        if (!ok)
            return fail("no answer to the registration");
        int m = 0;
        double max = 0, max_put = 0;
        for (int i = 0; i < n; i++) {
            if (w[i]->busy || !w[i]->done)
                continue;
            double d = w[i]->done - ok;
            lat[m++] = d < 0 ? 0 : d;
            if (d > max)
                max = d;
            if (w[i]->done - put > max_put)
                max_put = w[i]->done - put;
            w[i]->done = 0;
        }
        qsort(lat, (size_t)m, sizeof *lat, cmp_double);
        last[r] = max;
        int missing = n - answered - early - errors;
        printf("round %d: %d woken; registration 200 after %.3f ms; last watcher +%.3f ms after "
               "the 200 (+%.3f ms after the PUT was sent); median +%.3f ms, p99 +%.3f ms; "
               "tool idle %.0f %%; %d early, %d errors, %d not woken\n",
               r + 1, answered, (ok - put) * 1e3, max * 1e3, max_put * 1e3,
               m ? lat[m / 2] * 1e3 : 0, m ? lat[(m * 99) / 100] * 1e3 : 0,
               max > 0 ? 100 * idle / max : 0, early, errors, missing);
        if (early || errors || missing)
            failures++;
        if (missing) /* still parked: they would answer in a later round; stop here */
            return 1;
    }
    qsort(last, (size_t)rounds, sizeof *last, cmp_double);
    printf("watch summary: watchers=%d agents=%d rounds=%d last_after_200_ms_median=%.3f "
           "last_after_200_ms_max=%.3f answer_bytes=%zu failures=%d\n",
           n, nagents, rounds, last[rounds / 2] * 1e3, last[rounds - 1] * 1e3, answer, failures);
    for (int i = 0; i < n; i++)
        conn_free(ep, w[i]);
    conn_free(ep, reg);
    free(w);
    free(lat);
    free(last);
    free(evs);
    close(ep);
    return failures ? 1 : 0;
}

/* ------------------------------------------------------------ checks ---- */

static int listen_any(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t sl = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0 || set_nonblock(fd) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static int checks(const char *service, int n)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                             "2\r\n\r\nok";
    int ep = epoll_create1(0);
    double *listened = calloc((size_t)n, sizeof *listened),
           *probed = calloc((size_t)n, sizeof *probed),
           *registered = calloc((size_t)n, sizeof *registered);
    conn_t **reg = calloc((size_t)n, sizeof *reg);
    struct epoll_event *evs = calloc(1024, sizeof *evs);
    if (ep < 0 || !listened || !probed || !registered || !reg || !evs)
        return fail("setup");
    char target[512];
    snprintf(target, sizeof target, "/v1/health/service/%s?passing", service);
    conn_t *q = request_sync(&agents[0], "GET", target, NULL);
    if (!q || q->status != 200)
        return fail("reading the index");
    unsigned long long idx = q->index;
    free(q->in);
    free(q);
    conn_t *watcher = dial(ep, &agents[0], K_WATCH, -1);
    if (!watcher)
        return fail("connecting the watcher");
    snprintf(target, sizeof target, "/v1/health/service/%s?passing&index=%llu&wait=60s", service,
             idx);
    if (send_request(watcher, "GET", target, NULL) < 0)
        return fail("sending the watch");
    /* each server listens, then registers itself */
    for (int i = 0; i < n; i++) {
        int port, fd = listen_any(&port);
        listened[i] = now_s();
        conn_t *l = fd >= 0 ? conn_new(fd, K_LISTEN, i) : NULL;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
        if (!l || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            return fail("listening");
        char body[512];
        snprintf(body, sizeof body,
                 "{\"Name\":\"%s\",\"ID\":\"%s-%d\",\"Address\":\"127.0.0.1\",\"Port\":%d,"
                 "\"Check\":{\"HTTP\":\"http://127.0.0.1:%d/health\",\"Interval\":\"10s\","
                 "\"Timeout\":\"1s\"}}",
                 service, service, i, port, port);
        if (!(reg[i] = dial(ep, &agents[i % nagents], K_WRITE, i)) ||
            send_request(reg[i], "PUT", "/v1/agent/service/register", body) < 0)
            return fail("registering");
    }
    double all = 0, end = now_s() + ROUND_TIMEOUT_S;
    size_t passing = 0;
    int regs = 0, wakeups = 0;
    while (!all && now_s() < end) {
        int k = epoll_wait(ep, evs, 1024, 100);
        for (int e = 0; e < k; e++) {
            conn_t *c = evs[e].data.ptr;
            if (c->kind == K_LISTEN) {
                int fd;
                while ((fd = accept(c->fd, NULL, NULL)) >= 0) {
                    conn_t *s = conn_new(fd, K_SERVE, c->id);
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
                    if (!s || set_nonblock(fd) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                        return fail("accepting");
                }
                continue;
            }
            int rc = conn_read(c);
            double t = now_s();
            if (c->kind == K_SERVE) {
                if (rc == 1) { /* a probe: answer, and be ready for the next on this connection */
                    if (!probed[c->id])
                        probed[c->id] = t;
                    c->len = c->head = 0;
                    if (write_all(c->fd, ok, sizeof ok - 1) < 0 || c->eof)
                        rc = -1;
                }
                if (rc < 0)
                    conn_free(ep, c);
                continue;
            }
            if (rc == 0)
                continue;
            if (c == watcher) {
                if (rc < 0 || c->status != 200)
                    return fail("the watch failed");
                wakeups++;
                passing = count_of(c->in + c->head, "\"Checks\":");
                if (passing >= (size_t)n) {
                    all = t;
                } else {
                    snprintf(target, sizeof target,
                             "/v1/health/service/%s?passing&index=%llu&wait=60s", service,
                             c->index);
                    if (send_request(c, "GET", target, NULL) < 0)
                        return fail("sending the watch");
                }
                continue;
            }
            if (rc < 0 || c->status != 200)
                return fail("a registration failed");
            registered[c->id] = t;
            regs++;
            reg[c->id] = NULL;
            conn_free(ep, c);
        }
    }
    if (!all) {
        fprintf(stderr, "consulbench: only %zu of %d passing after %.0f s (%d registered)\n",
                passing, n, ROUND_TIMEOUT_S, regs);
        return 1;
    }
    double first = listened[0], lastl = listened[n - 1], lastreg = 0;
    for (int i = 0; i < n; i++) {
        if (registered[i] > lastreg)
            lastreg = registered[i];
        probed[i] = probed[i] ? probed[i] - listened[i] : -1;
    }
    qsort(probed, (size_t)n, sizeof *probed, cmp_double);
    printf("checks: %d instances (HTTP checks, Interval 10s) on %d agent%s; all listening %.3f ms "
           "after the first; all registered %.3f ms after the first listen; first probe after "
           "listen: median %.3f ms, max %.3f ms; %d watch answers\n",
           n, nagents, nagents == 1 ? "" : "s", (lastl - first) * 1e3, (lastreg - first) * 1e3,
           probed[n / 2] * 1e3, probed[n - 1] * 1e3, wakeups);
    printf("checks summary: instances=%d first_listen_to_all_passing_ms=%.3f "
           "last_listen_to_all_passing_ms=%.3f\n",
           n, (all - first) * 1e3, (all - lastl) * 1e3);
    return 0;
}

/* ------------------------------------------------------------ floor ---- */

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

/* The answer every parked watcher gets: a 200 with an X-Consul-Index, bytes long in all. */
static int floor_answer(char *out, size_t bytes, unsigned long long idx)
{
    char head[256];
    size_t body = bytes, hl = 0;
    for (int i = 0; i < 3; i++) { /* the head's length depends on the body's digits */
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nX-Consul-Index: %llu\r\n\r\n",
                         body, idx);
        hl = (size_t)n;
        if (hl + 2 > bytes)
            return -1;
        body = bytes - hl;
    }
    memcpy(out, head, hl);
    memset(out + hl, ' ', body);
    out[hl] = '[';
    out[bytes - 1] = ']';
    return 0;
}

/* One complete request at the start of c->in: its length, or 0 when not all there yet. */
static size_t whole_request(conn_t *c)
{
    char *end = memmem(c->in, c->len, "\r\n\r\n", 4), v[32];
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->in) + 4;
    long clen = header_value(c->in, head, "Content-Length", v, sizeof v) == 0 ? atol(v) : 0;
    return c->len >= head + (size_t)clen ? head + (size_t)clen : 0;
}

/* The fake's bare minimum: an epoll server on 127.0.0.1 that parks every GET with index=, and
 * on each PUT answers it, then writes one prepared answer to every parked connection in a
 * plain loop. `watch` measures it exactly as it measures the fake. Runs until SIGTERM. */
static int floor_server(size_t bytes)
{
    static const char put_ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 4\r\n\r\ntrue";
    int port, l = -1, ep = epoll_create1(0), np = 0, rounds = 0;
    unsigned long long idx = 1;
    char *answer = malloc(bytes);
    conn_t **parked = calloc(100000, sizeof *parked), *lc = NULL;
    struct epoll_event *evs = calloc(1024, sizeof *evs);
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (ep < 0 || !answer || !parked || !evs || floor_answer(answer, bytes, idx) < 0 ||
        (l = listen_any(&port)) < 0 || !(lc = conn_new(l, K_LISTEN, 0)))
        return fail("setup");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = lc};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, l, &lev) < 0)
        return fail("setup");
    printf("floor http://127.0.0.1:%d\n", port);
    fflush(stdout);
    while (!stopping) {
        int k = epoll_wait(ep, evs, 1024, 100);
        for (int e = 0; e < k; e++) {
            conn_t *c = evs[e].data.ptr;
            if (c == lc) {
                int fd, one = 1;
                while ((fd = accept(l, NULL, NULL)) >= 0) {
                    conn_t *s = conn_new(fd, K_SERVE, 0);
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (!s || set_nonblock(fd) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                        return fail("accepting");
                }
                continue;
            }
            int eof = 0;
            for (;;) {
                if (c->cap - c->len < 4096) {
                    size_t cap = c->cap ? c->cap * 2 : 8192;
                    char *in = realloc(c->in, cap);
                    if (!in)
                        return fail("reading");
                    c->in = in;
                    c->cap = cap;
                }
                ssize_t n = read(c->fd, c->in + c->len, c->cap - c->len - 1);
                if (n > 0)
                    c->len += (size_t)n;
                else if (n < 0 && errno == EINTR)
                    continue;
                else {
                    eof = n == 0 || errno != EAGAIN;
                    break;
                }
            }
            size_t rl;
            while (!eof && (rl = whole_request(c))) {
                if (strncmp(c->in, "PUT ", 4) == 0) {
                    if (write_all(c->fd, put_ok, sizeof put_ok - 1) < 0)
                        eof = 1;
                    floor_answer(answer, bytes, ++idx);
                    double t0 = now_s();
                    for (int i = 0; i < np; i++)
                        write_all(parked[i]->fd, answer, bytes);
                    printf("floor round %d: %d answers written in %.3f ms\n", ++rounds, np,
                           (now_s() - t0) * 1e3);
                    np = 0;
                } else if (memmem(c->in, strcspn(c->in, "\r"), "index=", 6) && np < 100000) {
                    parked[np++] = c;
                } else if (write_all(c->fd, answer, bytes) < 0) {
                    eof = 1;
                }
                memmove(c->in, c->in + rl, c->len - rl);
                c->len -= rl;
            }
            if (eof) {
                for (int i = 0; i < np; i++)
                    if (parked[i] == c)
                        parked[i--] = parked[--np];
                conn_free(ep, c);
            }
        }
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    if (argc == 3 && strcmp(argv[1], "floor") == 0) {
        long bytes = atol(argv[2]);
        if (bytes < 128 || bytes > 1 << 20)
            return usage();
        return floor_server((size_t)bytes);
    }
    if (argc < 5 || parse_agents(argv[2]) < 0)
        return usage();
    int n = atoi(argv[4]);
    if (n < 1 || n > 100000)
        return usage();
    if (strcmp(argv[1], "watch") == 0 && argc == 6 && atoi(argv[5]) > 0)
        return watch(argv[3], n, atoi(argv[5]));
    if (strcmp(argv[1], "checks") == 0 && argc == 5)
        return checks(argv[3], n);
    return usage();
}
