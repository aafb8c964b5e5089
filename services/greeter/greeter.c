/* greeter: the seed's gRPC greeter (hello.proto: /hello.Greeter/SayHello answers
 * "Hello " + name) on services/runtime, following faultline's wiring contract: it listens on
 * $BIND:$PORT (default 127.0.0.1:50051, the seed's port), names itself by SERVICE_NAME and
 * INSTANCE_ID, serves grpc.health.v1.Health/Check ("", "hello.Greeter": SERVING), and prints
 * one line per notable event ("greeter[greeter-1]: listening on 127.0.0.1:50051"). SIGTERM
 * or SIGINT: graceful shutdown (GOAWAY, calls in flight finish within GREETER_GRACE_MS,
 * default 10000), then exit 0. A bad variable exits 2, a failed listen 1.
 *
 * Request metadata that tests use to shape an answer (ignored by ordinary clients):
 *   x-delay-ms: N        answer N ms later (0..600000), so deadlines can pass (logged:
 *                        "delaying the answer to 127.0.0.1:40312 by N ms")
 *   x-fail-code: CODE    fail with that status (a name such as NOT_FOUND, or a number)
 *   x-fail-message: T    ... and that message (percent-decoded: "%C3%A9" is "é")
 *   x-echo: V            V comes back as the header x-echo and the trailer x-echo-trailer
 * FAULTLINE_BUG=ignore-deadline: grpc-timeout is not enforced (a defect on purpose, for the
 * suites to catch): a late answer is still sent. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "hello.pb-c.h"
#include "lib/err.h"
#include "lib/log.h"
#include "services/runtime/grpc_server.h"

#define MAX_DELAY_MS 600000L

typedef struct {
    uv_loop_t *loop;
    const char *service;
    const char *instance;
    const char *bind;
    int port;
    long grace_ms;
    int ignore_deadline;
    fl_grpc_server_t *server;
    uv_signal_t sigterm, sigint;
    int stopping;
} greeter_t;

/* An answer waiting for its x-delay-ms. */
typedef struct {
    uv_timer_t timer;
    greeter_t *g;
    fl_grpc_srv_call_t *call;
    char *name;
    size_t name_len;
} delay_t;

#define say(g, ...) fl_log_line(stdout, "greeter", (g)->instance, __VA_ARGS__)
#define complain(g, ...) fl_log_line(stderr, "greeter", (g)->instance, __VA_ARGS__)

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    if (!s || !*s)
        return FL_ESYNTAX;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno)
        return FL_ESYNTAX;
    if (v < min || v > max)
        return FL_ERANGE;
    *out = v;
    return 0;
}

/* "Hello " + name, as the seed's server answers. */
static void answer(fl_grpc_srv_call_t *call, const char *name, size_t len)
{
    char *text = malloc(len + 7);
    if (!text) {
        fl_grpc_srv_fail(call, FL_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    memcpy(text, "Hello ", 6);
    memcpy(text + 6, name, len);
    text[len + 6] = '\0';
    Hello__HelloReply reply = HELLO__HELLO_REPLY__INIT;
    reply.message = text;
    fl_grpc_srv_reply_pb(call, &reply.base);
    free(text);
}

static void free_delay(uv_handle_t *h)
{
    delay_t *d = h->data;
    free(d->name);
    free(d);
}

static void on_delay(uv_timer_t *t)
{
    delay_t *d = t->data;
    answer(d->call, d->name, d->name_len);
    uv_close((uv_handle_t *)t, free_delay);
}

static void on_delay_cancel(fl_grpc_srv_call_t *call, int code, void *arg)
{
    delay_t *d = arg;
    say(d->g, "delayed answer dropped: %s", fl_grpc_code_name(code));
    uv_close((uv_handle_t *)&d->timer, free_delay);
}

static void say_hello(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg)
{
    greeter_t *g = arg;
    Hello__HelloRequest *in = hello__hello_request__unpack(NULL, len, req);
    if (!in) {
        fl_grpc_srv_fail(call, FL_GRPC_INTERNAL, "grpc: error unmarshalling request");
        return;
    }
    const char *echo = fl_grpc_srv_call_header(call, "x-echo");
    if (echo) {
        fl_grpc_srv_add_metadata(call, 0, "x-echo", echo);
        fl_grpc_srv_add_metadata(call, 1, "x-echo-trailer", echo);
    }
    const char *fail = fl_grpc_srv_call_header(call, "x-fail-code");
    const char *delay = fl_grpc_srv_call_header(call, "x-delay-ms");
    long ms = 0;
    if (fail) {
        int code = fl_grpc_code_parse_name(fail);
        const char *msg = fl_grpc_srv_call_header(call, "x-fail-message");
        char text[1024] = "";
        if (msg) /* percent-decoded, as grpc-message is: metadata values are ASCII */
            fl_grpc_message_decode(msg, strlen(msg), text, sizeof text);
        if (code < 0)
            fl_grpc_srv_fail(call, FL_GRPC_INVALID_ARGUMENT, "x-fail-code: not a status code");
        else
            fl_grpc_srv_fail(call, code == 0 ? FL_GRPC_UNKNOWN : code, text);
    } else if (delay && parse_long(delay, 0, MAX_DELAY_MS, &ms)) {
        fl_grpc_srv_fail(call, FL_GRPC_INVALID_ARGUMENT, "x-delay-ms: want 0..600000");
    } else if (ms > 0) {
        delay_t *d = calloc(1, sizeof *d);
        size_t n = strlen(in->name);
        if (!d || !(d->name = malloc(n + 1))) {
            free(d);
            fl_grpc_srv_fail(call, FL_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        } else {
            memcpy(d->name, in->name, n + 1);
            d->name_len = n;
            d->call = call;
            d->g = g;
            uv_timer_init(g->loop, &d->timer);
            d->timer.data = d;
            fl_grpc_srv_call_on_cancel(call, on_delay_cancel, d);
            say(g, "delaying the answer to %s by %ld ms", fl_grpc_srv_call_peer(call), ms);
            uv_timer_start(&d->timer, on_delay, (uint64_t)ms, 0);
        }
    } else {
        answer(call, in->name, strlen(in->name));
    }
    hello__hello_request__free_unpacked(in, NULL);
}

static void log_event(void *arg, const char *line)
{
    say((greeter_t *)arg, "%s", line);
}

static void on_stopped(fl_grpc_server_t *s, void *arg)
{
    say((greeter_t *)arg, "stopped");
}

static void on_signal(uv_signal_t *sig, int signum)
{
    greeter_t *g = sig->data;
    if (g->stopping)
        return;
    g->stopping = 1;
    say(g, "stopping on %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    uv_close((uv_handle_t *)&g->sigterm, NULL);
    uv_close((uv_handle_t *)&g->sigint, NULL);
    fl_grpc_server_shutdown(g->server, (uint64_t)g->grace_ms, on_stopped, g);
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

int main(void)
{
    uv_loop_t loop;
    greeter_t g;
    long v;

    setvbuf(stdout, NULL, _IOLBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);

    memset(&g, 0, sizeof g);
    g.loop = &loop;
    g.service = env_or("SERVICE_NAME", "greeter");
    g.instance = env_or("INSTANCE_ID", g.service);
    g.bind = env_or("BIND", "127.0.0.1");
    if (parse_long(env_or("PORT", "50051"), 0, 65535, &v)) {
        complain(&g, "bad PORT '%s': want an integer in 0..65535", env_or("PORT", ""));
        return 2;
    }
    g.port = (int)v;
    if (parse_long(env_or("GREETER_GRACE_MS", "10000"), 0, 3600000, &g.grace_ms)) {
        complain(&g, "bad GREETER_GRACE_MS '%s': want 0..3600000", env_or("GREETER_GRACE_MS", ""));
        return 2;
    }
    const char *bug = getenv("FAULTLINE_BUG");
    g.ignore_deadline = bug && strstr(bug, "ignore-deadline");

    if (uv_loop_init(&loop)) {
        complain(&g, "cannot create the event loop");
        return 1;
    }
    say(&g, "starting as %s (pid %d)", g.service, (int)getpid());
    if (g.ignore_deadline)
        say(&g, "FAULTLINE_BUG=ignore-deadline: grpc-timeout is not enforced");
    fl_grpc_server_config_t cfg = {
        .ignore_deadline = g.ignore_deadline, .log = log_event, .log_arg = &g};
    int rc = fl_grpc_server_start(&loop, g.bind, g.port, &cfg, &g.server);
    if (!rc)
        rc = fl_grpc_server_add(g.server, "/hello.Greeter/SayHello", say_hello, &g);
    if (rc) {
        complain(&g, "cannot listen on %s:%d: %s", g.bind, g.port, fl_strerror(rc));
        if (g.server)
            fl_grpc_server_shutdown(g.server, 0, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    uv_signal_init(&loop, &g.sigterm);
    uv_signal_init(&loop, &g.sigint);
    g.sigterm.data = g.sigint.data = &g;
    uv_signal_start(&g.sigterm, on_signal, SIGTERM);
    uv_signal_start(&g.sigint, on_signal, SIGINT);
    if (strchr(g.bind, ':'))
        say(&g, "listening on [%s]:%d", g.bind, fl_grpc_server_port(g.server));
    else
        say(&g, "listening on %s:%d", g.bind, fl_grpc_server_port(g.server));

    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    if (rc) {
        complain(&g, "handles left open at exit: %s", uv_strerror(rc));
        return 1;
    }
    return 0;
}
