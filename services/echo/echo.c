/* echo-svc: the smallest service that follows faultline's wiring contract, so the harness
 * can test spawning, readiness, logs, signals, links, load and discovery against something
 * simple. It listens on $BIND:$PORT (default 127.0.0.1:8080) and answers:
 *   GET /healthz          200 "ok" (500 "unhealthy" while /unhealthy is on)
 *   /unhealthy?on=1|0     turns that failure on or off, so a scenario can fail the Consul
 *                         check without killing the process
 *   /delay?ms=N           the echo below, N ms later (0..3600000)
 *   /status?code=N        the echo below with status N (200..599)
 *   /exit?code=N          no answer: the process exits at once with code N (0..255)
 *   anything else         200 {"instance","service","method","path","body"} as JSON
 * ECHO_STARTUP_DELAY_MS=N waits N ms before listening. When CONSUL_HTTP_ADDR is set (and
 * ECHO_REGISTER is not "0"), once listening it registers itself with that agent as real
 * services do: ID $INSTANCE_ID, name $SERVICE_NAME, tags from ECHO_TAGS (a comma list), and
 * an HTTP check on /healthz every ECHO_CHECK_INTERVAL (1s); a failed registration is retried
 * after 100 ms, doubling up to 2 s, until it succeeds. On SIGTERM or SIGINT it deregisters
 * (waiting 1 s at most), unless FAULTLINE_BUG contains "no-deregister", a defect on purpose
 * for the suites to catch. Every notable event is one line on stdout ("echo[users-1]:
 * listening on 127.0.0.1:8080"), errors one line on stderr. SIGTERM and SIGINT close
 * everything and exit 0; a bad variable exits 2, a failed listen 1. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/dur.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/httpd.h"
#include "services/runtime/consul.h"

#define MAX_DELAY_MS 3600000L
#define DEREGISTER_TIMEOUT_MS 1000
#define MS 1000000ULL /* nanoseconds */

/* Registration with the local Consul agent (services/runtime/consul.h). */
typedef struct {
    int enabled;
    const char *addr; /* CONSUL_HTTP_ADDR as given */
    const char *tags;
    const char *check_interval;
    int no_deregister; /* FAULTLINE_BUG=no-deregister */
    fl_cc_t *cc;
} consul_t;

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
    consul_t consul;
    int unhealthy;
    int stopping;
    int exit_code;
} echo_t;

/* A /delay answer waiting for its timer. */
typedef struct {
    uv_timer_t timer;
    echo_t *echo;
    fl_httpd_exchange_t *ex;
} delay_t;

/* One line per notable event on stdout, errors on stderr: "echo[instance]: text". */
#define say(x, ...) fl_log_line(stdout, "echo", (x)->instance, __VA_ARGS__)

#define complain(x, ...) fl_log_line(stderr, "echo", (x)->instance, __VA_ARGS__)

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

static void set_unhealthy(echo_t *e, fl_httpd_exchange_t *ex)
{
    long on;
    if (param_long(ex, "on", 0, 1, &on)) {
        respond_text(ex, 400, "on must be 1 or 0\n");
        return;
    }
    e->unhealthy = (int)on;
    say(e, "/healthz now answers %s, as %s asked", on ? "500" : "200", fl_httpd_exchange_peer(ex));
    respond_text(ex, 200, on ? "unhealthy\n" : "healthy\n");
}

static void handle(fl_httpd_exchange_t *ex, void *arg)
{
    echo_t *e = arg;
    const char *path = fl_httpd_path(ex);
    long code;
    if (strcmp(path, "/healthz") == 0) {
        if (e->unhealthy)
            fl_httpd_respond(ex, 500, NULL, "text/plain", "unhealthy", 9);
        else
            fl_httpd_respond(ex, 200, NULL, "text/plain", "ok", 2);
    } else if (strcmp(path, "/unhealthy") == 0) {
        set_unhealthy(e, ex);
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

/* ------------------------------------------------------------ consul ---- */

static void consul_log(void *arg, int error, const char *line)
{
    echo_t *e = arg;
    if (error)
        complain(e, "%s", line);
    else
        say(e, "%s", line);
}

static void start_registration(echo_t *e)
{
    consul_t *c = &e->consul;
    char check[160];
    int port = fl_httpd_port(e->httpd);
    if (strchr(e->bind, ':')) /* IPv6 */
        snprintf(check, sizeof check, "http://[%s]:%d/healthz", e->bind, port);
    else
        snprintf(check, sizeof check, "http://%s:%d/healthz", e->bind, port);
    fl_cc_config_t cfg = {c->addr, consul_log, e};
    fl_cc_service_t svc = {e->instance, e->service, e->bind,           port, c->tags,
                           "http",      check,      c->check_interval, "1m"};
    int rc = fl_cc_new(e->loop, &cfg, &c->cc);
    if (!rc && (rc = fl_cc_register(c->cc, &svc)) == FL_EINVAL)
        complain(e, "cannot register: SERVICE_NAME, INSTANCE_ID, BIND and ECHO_TAGS must be "
                    "UTF-8");
    else if (rc)
        complain(e, "cannot register: %s", fl_strerror(rc));
}

static void left_consul(void *arg)
{
    echo_t *e = arg;
    fl_cc_close(e->consul.cc, NULL, NULL);
    e->consul.cc = NULL;
}

/* Stopping: no more registration attempts, and the registration (or an attempt that may have
 * reached the agent) is undone, in 1 s at most. */
static void leave_consul(echo_t *e)
{
    if (e->consul.cc)
        fl_cc_deregister(e->consul.cc, e->consul.no_deregister, DEREGISTER_TIMEOUT_MS, left_consul,
                         e);
}

/* ------------------------------------------------------------ lifecycle ---- */

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
    if (e->consul.enabled)
        leave_consul(e);
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
        complain(e, "cannot listen on %s:%d: %s", e->bind, e->port, fl_strerror(rc));
        e->exit_code = 1;
        e->httpd = NULL;
        stop(e, "listen failure");
        return;
    }
    if (strchr(e->bind, ':')) /* IPv6 */
        say(e, "listening on [%s]:%d", e->bind, fl_httpd_port(e->httpd));
    else
        say(e, "listening on %s:%d", e->bind, fl_httpd_port(e->httpd));
    if (e->consul.enabled)
        start_registration(e);
}

static void on_startup_timer(uv_timer_t *timer)
{
    echo_t *e = timer->data;
    uv_close((uv_handle_t *)timer, NULL);
    listen_now(e);
}

/* ------------------------------------------------------------ configuration ---- */

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* CONSUL_HTTP_ADDR: "IP:PORT", "localhost:PORT", with or without "http://" (checked as
 * the Consul client will take it, before anything starts). */
static int check_consul_addr(const char *addr)
{
    uv_loop_t loop;
    fl_cc_t *cc;
    fl_cc_config_t cfg = {addr, NULL, NULL};
    if (uv_loop_init(&loop))
        return FL_ENOMEM;
    int rc = fl_cc_new(&loop, &cfg, &cc);
    if (!rc)
        fl_cc_close(cc, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}

/* Reads the Consul part of the environment; a message on stderr and FL_E* on a mistake. */
static int configure_consul(echo_t *e)
{
    consul_t *c = &e->consul;
    const char *addr = getenv("CONSUL_HTTP_ADDR");
    const char *bug = getenv("FAULTLINE_BUG");
    uint64_t ns;
    if (!addr || !*addr || strcmp(env_or("ECHO_REGISTER", "1"), "0") == 0)
        return 0;
    if (check_consul_addr(addr)) {
        complain(e, "bad CONSUL_HTTP_ADDR '%s': want IP:PORT", addr);
        return FL_ESYNTAX;
    }
    c->addr = addr;
    c->check_interval = env_or("ECHO_CHECK_INTERVAL", "1s");
    if (fl_dur_parse(c->check_interval, &ns) || ns == 0) {
        complain(e, "bad ECHO_CHECK_INTERVAL '%s': want a duration such as 1s or 500ms",
                 c->check_interval);
        return FL_ESYNTAX;
    }
    c->tags = getenv("ECHO_TAGS");
    c->no_deregister = bug && strstr(bug, "no-deregister");
    c->enabled = 1;
    return 0;
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
        complain(&e, "bad PORT '%s': want an integer in 0..65535", env_or("PORT", ""));
        return 2;
    }
    e.port = (int)v;
    if (parse_long(env_or("ECHO_STARTUP_DELAY_MS", "0"), 0, MAX_DELAY_MS, &v)) {
        complain(&e, "bad ECHO_STARTUP_DELAY_MS '%s': want 0..%ld",
                 env_or("ECHO_STARTUP_DELAY_MS", ""), MAX_DELAY_MS);
        return 2;
    }
    e.startup_delay_ms = v;
    if (configure_consul(&e))
        return 2;

    if (uv_loop_init(&loop)) {
        complain(&e, "cannot create the event loop");
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
        complain(&e, "handles left open at exit: %s", uv_strerror(rc));
        return 1;
    }
    return e.exit_code;
}
