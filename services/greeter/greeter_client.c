/* greeter-client: the seed's greeter client (SayHello "World" with a 1 s deadline, print the
 * greeting) in C on services/runtime, with what the tests and interop runs need:
 *
 *   greeter-client [options] [ADDR]      ADDR: host:port (default $GREETER_ADDR, else
 *                                        127.0.0.1:50051, the seed's)
 *     --name NAME          the name to greet (World)
 *     --name-size N        a name of N 'x' bytes instead (large messages)
 *     -n, --calls N        calls to make (1)
 *     -c, --concurrency C  calls in flight at once, all on the backend's one connection (1)
 *     --interval-ms MS     start a call every MS ms instead (one after another in time)
 *     --timeout DUR        each call's deadline: 1s, 250ms, 100us... (1s; 0: none)
 *     --meta NAME=VALUE    request metadata (repeatable), e.g. x-delay-ms=500
 *     --method PATH        call PATH instead of /hello.Greeter/SayHello (same request)
 *     --health SERVICE     call grpc.health.v1.Health/Check for SERVICE instead
 *     --max-recv N, --max-send N   message limits (4 MiB)
 *     --expect CODE        exit 0 only if every call ends with CODE (OK by default)
 *     -q, --quiet          no line per call, only the summary
 *
 * One line per call: "call 1: OK 'Hello World' (0.4 ms)", or "call 1: DEADLINE_EXCEEDED:
 * deadline exceeded ... (100.3 ms)"; metadata the server sent back is shown as meta[k]=v.
 * Last, "summary: calls=N OK=N ... connections=K": K is how many HTTP/2 connections were
 * opened. Exit status: 0 as expected, 1 otherwise, 2 bad usage. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "health.pb-c.h"
#include "hello.pb-c.h"
#include "lib/buf.h"
#include "lib/dur.h"
#include "lib/err.h"
#include "services/runtime/grpc_client.h"

typedef struct {
    uv_loop_t *loop;
    fl_grpc_channel_t *ch;
    fl_grpc_backend_t *be;
    uv_timer_t ticker;
    const char *method;
    const char *health;
    char *name;
    fl_buf_t meta;
    uint64_t timeout_ns;
    long calls, concurrency, interval_ms;
    long started, finished;
    int expect;
    int quiet;
    long counts[17];
    long unexpected;
    size_t max_inflight;
    uint64_t conns;
} client_t;

static void start_one(client_t *cl);

static void print_meta(const fl_grpc_result_t *res)
{
    for (size_t off = 0; off < res->meta_len;) {
        const char *n = res->meta + off;
        const char *v = n + strlen(n) + 1;
        if (strncmp(n, "x-", 2) == 0)
            printf(" meta[%s]=%s", n, v);
        off = (size_t)(v + strlen(v) + 1 - res->meta);
    }
}

static void print_ok(client_t *cl, long seq, const fl_grpc_result_t *res)
{
    if (cl->health) {
        Grpc__Health__V1__HealthCheckResponse *r =
            grpc__health__v1__health_check_response__unpack(NULL, res->msg_len, res->msg);
        printf("call %ld: OK status=%d", seq, r ? (int)r->status : -1);
        if (r)
            grpc__health__v1__health_check_response__free_unpacked(r, NULL);
        return;
    }
    Hello__HelloReply *r = hello__hello_reply__unpack(NULL, res->msg_len, res->msg);
    if (!r) {
        printf("call %ld: OK (an answer that is not a HelloReply)", seq);
        return;
    }
    size_t n = strlen(r->message);
    if (n > 60)
        printf("call %ld: OK '%.20s...' (%zu bytes)", seq, r->message, n);
    else
        printf("call %ld: OK '%s'", seq, r->message);
    hello__hello_reply__free_unpacked(r, NULL);
}

typedef struct {
    client_t *cl;
    long seq;
} pending_t;

static void on_done(void *arg, const fl_grpc_result_t *res)
{
    pending_t *p = arg;
    client_t *cl = p->cl;
    cl->finished++;
    cl->counts[res->code >= 0 && res->code <= 16 ? res->code : 2]++;
    if (res->code != cl->expect)
        cl->unexpected++;
    if (!cl->quiet) {
        if (res->code == FL_GRPC_OK)
            print_ok(cl, p->seq, res);
        else
            printf("call %ld: %s: %s", p->seq, fl_grpc_code_name(res->code), res->message);
        print_meta(res);
        if (res->transparent_retries)
            printf(" retries=%d", res->transparent_retries);
        printf(" (%.1f ms)\n", (double)res->elapsed_ns / 1e6);
    }
    free(p);
    if (cl->interval_ms == 0 && cl->started < cl->calls)
        start_one(cl);
    if (cl->finished == cl->calls) {
        cl->conns = fl_grpc_backend_connections(cl->be);
        uv_close((uv_handle_t *)&cl->ticker, NULL);
        fl_grpc_channel_close(cl->ch, NULL, NULL);
    }
}

static void start_one(client_t *cl)
{
    pending_t *p = malloc(sizeof *p);
    if (!p) {
        fprintf(stderr, "greeter-client: out of memory\n");
        exit(1);
    }
    p->cl = cl;
    p->seq = ++cl->started;
    fl_grpc_call_opts_t o = {.path = cl->method,
                             .timeout_ns = cl->timeout_ns,
                             .meta = cl->meta.data,
                             .meta_len = cl->meta.len};
    int rc;
    if (cl->health) {
        Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        req.service = (char *)cl->health;
        rc = fl_grpc_call_start_pb(cl->be, &o, &req.base, on_done, p, NULL);
    } else {
        Hello__HelloRequest req = HELLO__HELLO_REQUEST__INIT;
        req.name = cl->name;
        rc = fl_grpc_call_start_pb(cl->be, &o, &req.base, on_done, p, NULL);
    }
    if (rc) {
        fprintf(stderr, "greeter-client: cannot start a call: %s\n", fl_strerror(rc));
        exit(1);
    }
    size_t inflight = fl_grpc_backend_inflight(cl->be);
    if (inflight > cl->max_inflight)
        cl->max_inflight = inflight;
}

static void on_tick(uv_timer_t *t)
{
    client_t *cl = t->data;
    if (cl->started < cl->calls)
        start_one(cl);
    if (cl->started == cl->calls)
        uv_timer_stop(t);
}

static void usage(void)
{
    fprintf(stderr, "usage: greeter-client [--name NAME | --name-size N] [-n CALLS] [-c "
                    "CONCURRENCY] [--interval-ms MS] [--timeout DUR] [--meta NAME=VALUE]... "
                    "[--method PATH | --health SERVICE] [--max-recv N] [--max-send N] "
                    "[--expect CODE] [-q] [ADDR]\n");
    exit(2);
}

static long number(const char *opt, const char *s, long min, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max) {
        fprintf(stderr, "greeter-client: %s: want an integer in %ld..%ld, not '%s'\n", opt, min,
                max, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"name", required_argument, NULL, 'N'},
                                         {"name-size", required_argument, NULL, 'S'},
                                         {"calls", required_argument, NULL, 'n'},
                                         {"concurrency", required_argument, NULL, 'c'},
                                         {"interval-ms", required_argument, NULL, 'i'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"meta", required_argument, NULL, 'm'},
                                         {"method", required_argument, NULL, 'M'},
                                         {"health", required_argument, NULL, 'H'},
                                         {"max-recv", required_argument, NULL, 'r'},
                                         {"max-send", required_argument, NULL, 's'},
                                         {"expect", required_argument, NULL, 'e'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {NULL, 0, NULL, 0}};
    client_t cl;
    uv_loop_t loop;
    fl_grpc_channel_opts_t copts = {0};
    memset(&cl, 0, sizeof cl);
    cl.method = "/hello.Greeter/SayHello";
    cl.name = strdup("World");
    cl.timeout_ns = 1000000000ULL;
    cl.calls = cl.concurrency = 1;
    int c;
    while ((c = getopt_long(argc, argv, "n:c:q", opts, NULL)) != -1) {
        switch (c) {
        case 'N':
            free(cl.name);
            cl.name = strdup(optarg);
            break;
        case 'S': {
            long n = number("--name-size", optarg, 0, 64L << 20);
            free(cl.name);
            cl.name = malloc((size_t)n + 1);
            if (cl.name) {
                memset(cl.name, 'x', (size_t)n);
                cl.name[n] = '\0';
            }
            break;
        }
        case 'n':
            cl.calls = number("--calls", optarg, 1, 100000000);
            break;
        case 'c':
            cl.concurrency = number("--concurrency", optarg, 1, 100000);
            break;
        case 'i':
            cl.interval_ms = number("--interval-ms", optarg, 1, 3600000);
            break;
        case 't':
            if (strcmp(optarg, "0") == 0)
                cl.timeout_ns = 0;
            else if (fl_dur_parse(optarg, &cl.timeout_ns)) {
                fprintf(stderr, "greeter-client: --timeout: not a duration: '%s'\n", optarg);
                return 2;
            }
            break;
        case 'm': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "greeter-client: --meta: want NAME=VALUE, not '%s'\n", optarg);
                return 2;
            }
            fl_buf_append(&cl.meta, optarg, (size_t)(eq - optarg));
            fl_buf_append(&cl.meta, "", 1);
            fl_buf_append(&cl.meta, eq + 1, strlen(eq + 1) + 1);
            break;
        }
        case 'M':
            cl.method = optarg;
            break;
        case 'H':
            cl.health = optarg;
            cl.method = "/grpc.health.v1.Health/Check";
            break;
        case 'r':
            copts.max_recv = (size_t)number("--max-recv", optarg, 1, 1L << 30);
            break;
        case 's':
            copts.max_send = (size_t)number("--max-send", optarg, 1, 1L << 30);
            break;
        case 'e':
            cl.expect = fl_grpc_code_parse_name(optarg);
            if (cl.expect < 0) {
                fprintf(stderr, "greeter-client: --expect: not a status code: '%s'\n", optarg);
                return 2;
            }
            break;
        case 'q':
            cl.quiet = 1;
            break;
        default:
            usage();
        }
    }
    if (optind + 1 < argc || !cl.name)
        usage();
    const char *addr = optind < argc ? argv[optind] : getenv("GREETER_ADDR");
    if (!addr || !*addr)
        addr = "127.0.0.1:50051";
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    uv_loop_init(&loop);
    cl.loop = &loop;
    fl_grpc_channel_new(&loop, &copts, &cl.ch);
    if (fl_grpc_channel_add(cl.ch, addr, &cl.be)) {
        fprintf(stderr, "greeter-client: bad address '%s': want IP:PORT\n", addr);
        return 2;
    }
    uv_timer_init(&loop, &cl.ticker);
    cl.ticker.data = &cl;
    if (cl.interval_ms) {
        uv_timer_start(&cl.ticker, on_tick, 0, (uint64_t)cl.interval_ms);
    } else {
        for (long i = 0; i < cl.concurrency && i < cl.calls; i++)
            start_one(&cl);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    printf("summary: calls=%ld", cl.finished);
    for (int i = 0; i <= 16; i++)
        if (cl.counts[i])
            printf(" %s=%ld", fl_grpc_code_name(i), cl.counts[i]);
    printf(" connections=%llu max_inflight=%zu\n", (unsigned long long)cl.conns, cl.max_inflight);
    int rc = uv_loop_close(&loop);
    free(cl.name);
    fl_buf_free(&cl.meta);
    if (rc) {
        fprintf(stderr, "greeter-client: handles left open at exit\n");
        return 1;
    }
    return cl.unexpected ? 1 : 0;
}
