/* echo-svc: the smallest service that follows faultline's wiring contract, so the harness
 * can test spawning, readiness, logs, signals, links and load against something simple. It
 * listens on $BIND:$PORT (default 127.0.0.1:8080) and answers:
 *   GET /healthz          200 "ok"
 *   /delay?ms=N           the echo below, N ms later (0..3600000)
 *   /status?code=N        the echo below with status N (200..599)
 *   /exit?code=N          no answer: the process exits at once with code N (0..255)
 *   anything else         200 {"instance","service","method","path","body"} as JSON
 * ECHO_STARTUP_DELAY_MS=N waits N ms before listening. Every notable event is one line on
 * stdout ("echo[users-1]: listening on 127.0.0.1:8080"), errors one line on stderr. SIGTERM
 * and SIGINT close everything and exit 0; a bad PORT or delay exits 2, a failed listen 1. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "lib/err.h"
#include "lib/httpd.h"

#define MAX_DELAY_MS 3600000L

typedef struct {
    uv_loop_t *loop;
    const char *service;
    const char *instance;
    const char *bind;
    int port;
    long startup_delay_ms;
    fl_httpd_t *httpd;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t startup;
    int stopping;
    int exit_code;
} echo_t;

/* A /delay answer waiting for its timer. */
typedef struct {
    uv_timer_t timer;
    echo_t *echo;
    fl_httpd_exchange_t *ex;
} delay_t;

static void say(const echo_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const echo_t *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("echo[%s]: ", e->instance);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

/* Parses a whole decimal string within [min, max]. */
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

static int param_long(fl_httpd_exchange_t *ex, const char *name, long min, long max, long *out)
{
    char buf[32];
    int rc = fl_httpd_query_param(ex, name, buf, sizeof buf);
    if (rc < 0)
        return rc;
    return parse_long(buf, min, max, out);
}

static void respond_text(fl_httpd_exchange_t *ex, int status, const char *text)
{
    fl_httpd_respond(ex, status, NULL, "text/plain", text, strlen(text));
}

static void respond_echo(echo_t *e, fl_httpd_exchange_t *ex, int status)
{
    size_t len;
    const char *body = fl_httpd_body(ex, &len);
    json_t *jbody = json_stringn(body, len); /* NULL when the body is not UTF-8 */
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:o}", "instance", e->instance, "service",
                            e->service, "method", fl_httpd_method(ex), "path", fl_httpd_path(ex),
                            "body", jbody ? jbody : json_null());
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (text)
        fl_httpd_respond(ex, status, NULL, "application/json", text, strlen(text));
    else
        respond_text(ex, 500, "out of memory\n");
    free(text);
    json_decref(doc);
}

static void free_delay(uv_handle_t *handle)
{
    free(handle->data);
}

static void on_delay(uv_timer_t *timer)
{
    delay_t *d = timer->data;
    fl_httpd_exchange_t *ex = d->ex;
    d->ex = NULL;
    uv_close((uv_handle_t *)&d->timer, free_delay);
    respond_echo(d->echo, ex, 200);
}

/* The client of a /delay request went away (or the server is closing). */
static void on_abort(fl_httpd_exchange_t *ex, void *arg)
{
    delay_t *d = fl_httpd_exchange_data(ex);
    if (!d)
        return;
    d->ex = NULL;
    uv_close((uv_handle_t *)&d->timer, free_delay);
}

static void start_delay(echo_t *e, fl_httpd_exchange_t *ex)
{
    long ms;
    if (param_long(ex, "ms", 0, MAX_DELAY_MS, &ms)) {
        respond_text(ex, 400, "ms must be an integer in 0..3600000\n");
        return;
    }
    delay_t *d = calloc(1, sizeof *d);
    if (!d) {
        respond_text(ex, 500, "out of memory\n");
        return;
    }
    d->echo = e;
    d->ex = ex;
    uv_timer_init(e->loop, &d->timer);
    d->timer.data = d;
    fl_httpd_exchange_set_data(ex, d);
    uv_timer_start(&d->timer, on_delay, (uint64_t)ms, 0);
}

static void handle(fl_httpd_exchange_t *ex, void *arg)
{
    echo_t *e = arg;
    const char *path = fl_httpd_path(ex);
    long code;
    if (strcmp(path, "/healthz") == 0) {
        fl_httpd_respond(ex, 200, NULL, "text/plain", "ok", 2);
    } else if (strcmp(path, "/delay") == 0) {
        start_delay(e, ex);
    } else if (strcmp(path, "/status") == 0) {
        if (param_long(ex, "code", 200, 599, &code))
            respond_text(ex, 400, "code must be an integer in 200..599\n");
        else
            respond_echo(e, ex, (int)code);
    } else if (strcmp(path, "/exit") == 0) {
        if (param_long(ex, "code", 0, 255, &code)) {
            respond_text(ex, 400, "code must be an integer in 0..255\n");
            return;
        }
        say(e, "exiting with code %ld as %s asked", code, fl_httpd_exchange_peer(ex));
        exit((int)code);
    } else {
        respond_echo(e, ex, 200);
    }
}

static void on_httpd_closed(fl_httpd_t *h, void *arg)
{
    echo_t *e = arg;
    say(e, "stopped");
}

static void stop(echo_t *e, const char *why)
{
    if (e->stopping)
        return;
    e->stopping = 1;
    say(e, "stopping on %s", why);
    uv_close((uv_handle_t *)&e->sigterm, NULL);
    uv_close((uv_handle_t *)&e->sigint, NULL);
    if (!uv_is_closing((uv_handle_t *)&e->startup))
        uv_close((uv_handle_t *)&e->startup, NULL);
    if (e->httpd)
        fl_httpd_close(e->httpd, on_httpd_closed, e);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    stop(sig->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void listen_now(echo_t *e)
{
    fl_httpd_config_t cfg = {.handler = handle, .on_abort = on_abort, .arg = e};
    int rc = fl_httpd_start(e->loop, e->bind, e->port, &cfg, &e->httpd);
    if (rc) {
        fprintf(stderr, "echo[%s]: cannot listen on %s:%d: %s\n", e->instance, e->bind, e->port,
                fl_strerror(rc));
        e->exit_code = 1;
        e->httpd = NULL;
        stop(e, "listen failure");
        return;
    }
    if (strchr(e->bind, ':')) /* IPv6 */
        say(e, "listening on [%s]:%d", e->bind, fl_httpd_port(e->httpd));
    else
        say(e, "listening on %s:%d", e->bind, fl_httpd_port(e->httpd));
}

static void on_startup_timer(uv_timer_t *timer)
{
    echo_t *e = timer->data;
    uv_close((uv_handle_t *)timer, NULL);
    listen_now(e);
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

int main(void)
{
    uv_loop_t loop;
    echo_t e;
    long v;

    setvbuf(stdout, NULL, _IOLBF, 0); /* logs reach a pipe line by line */
    setvbuf(stderr, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an error code, not a death */

    memset(&e, 0, sizeof e);
    e.loop = &loop;
    e.service = env_or("SERVICE_NAME", "echo");
    e.instance = env_or("INSTANCE_ID", e.service);
    e.bind = env_or("BIND", "127.0.0.1");
    if (parse_long(env_or("PORT", "8080"), 0, 65535, &v)) {
        fprintf(stderr, "echo[%s]: bad PORT '%s': want an integer in 0..65535\n", e.instance,
                env_or("PORT", ""));
        return 2;
    }
    e.port = (int)v;
    if (parse_long(env_or("ECHO_STARTUP_DELAY_MS", "0"), 0, MAX_DELAY_MS, &v)) {
        fprintf(stderr, "echo[%s]: bad ECHO_STARTUP_DELAY_MS '%s': want 0..%ld\n", e.instance,
                env_or("ECHO_STARTUP_DELAY_MS", ""), MAX_DELAY_MS);
        return 2;
    }
    e.startup_delay_ms = v;

    if (uv_loop_init(&loop)) {
        fprintf(stderr, "echo[%s]: cannot create the event loop\n", e.instance);
        return 1;
    }
    uv_signal_init(&loop, &e.sigterm);
    uv_signal_init(&loop, &e.sigint);
    uv_timer_init(&loop, &e.startup);
    e.sigterm.data = e.sigint.data = e.startup.data = &e;
    uv_signal_start(&e.sigterm, on_signal, SIGTERM);
    uv_signal_start(&e.sigint, on_signal, SIGINT);

    say(&e, "starting as %s (pid %d)", e.service, (int)getpid());
    if (e.startup_delay_ms) {
        say(&e, "waiting %ld ms before listening", e.startup_delay_ms);
        uv_timer_start(&e.startup, on_startup_timer, (uint64_t)e.startup_delay_ms, 0);
    } else {
        uv_close((uv_handle_t *)&e.startup, NULL);
        listen_now(&e);
    }

    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    if (rc) {
        fprintf(stderr, "echo[%s]: handles left open at exit: %s\n", e.instance, uv_strerror(rc));
        return 1;
    }
    return e.exit_code;
}
