/* users: the shop's user service (shop.proto: shop.Users/CreateUser and GetUser) on
 * services/runtime, following faultline's wiring contract. Users live in memory, each
 * instance its own (ids "users-1.1", "users-1.2": unique across instances, found only by the
 * instance that made them — another answers NOT_FOUND; a shared store comes with the shop's
 * SQLite services). It serves
 * grpc.health.v1 ("", "shop.Users"), registers in Consul with a gRPC check when
 * CONSUL_HTTP_ADDR is set, makes a SERVER span per call (child of the caller's traceparent),
 * and logs one line per call ("users[users-1]: CreateUser users-1.3 ok"). SIGTERM: deregister,
 * finish calls in flight (GOAWAY), exit 0.
 *
 * FAULTLINE_BUG=ignore-deadline: grpc-timeout is not enforced; no-deregister: stays in
 * Consul after stopping. USERS_DELAY_MS=N answers every call N ms late (uneven latency for
 * the balancing suite, per instance through its env). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"
#include "services/runtime/grpc_server.h"
#include "services/runtime/grpc_status.h"
#include "services/runtime/svc.h"
#include "shop.pb-c.h"

#define MAX_USERS 100000
#define GRACE_MS 5000

typedef struct {
    char *id, *name, *email;
} user_t;

typedef struct {
    fl_svc_t svc;
    fl_grpc_server_t *server;
    user_t *users;
    size_t nusers, cap;
    long delay_ms;
} users_t;

static void end_span(fl_span_t *sp, int code, const char *message)
{
    fl_span_set_int(sp, "rpc.grpc.status_code", code);
    if (code != FL_GRPC_OK)
        fl_span_set_status(sp, FL_STATUS_ERROR, message);
    fl_span_end(sp);
}

static void fail(users_t *u, fl_grpc_srv_call_t *call, fl_span_t *sp, const char *what, int code,
                 const char *message)
{
    fl_svc_say(&u->svc, "%s %s", what, fl_grpc_code_name(code));
    fl_grpc_srv_fail(call, code, message);
    end_span(sp, code, message);
}

static void reply_user(users_t *u, fl_grpc_srv_call_t *call, fl_span_t *sp, const char *what,
                       const user_t *usr)
{
    Shop__User out = SHOP__USER__INIT;
    out.id = usr->id;
    out.name = usr->name;
    out.email = usr->email;
    fl_svc_say(&u->svc, "%s %s ok", what, usr->id);
    fl_grpc_srv_reply_pb(call, &out.base);
    end_span(sp, FL_GRPC_OK, "");
}

static void create_user(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg)
{
    users_t *u = arg;
    fl_span_t *sp = fl_svc_server_span(&u->svc, call, "shop.Users", "CreateUser");
    Shop__CreateUserRequest *in = shop__create_user_request__unpack(NULL, len, req);
    if (!in) {
        fail(u, call, sp, "CreateUser", FL_GRPC_INTERNAL, "grpc: error unmarshalling request");
        return;
    }
    const char *bad = !in->name[0] || strlen(in->name) > 100 ? "name must be 1 to 100 characters"
                      : !strchr(in->email, '@')              ? "email must contain @"
                      : u->nusers == MAX_USERS               ? NULL
                                                             : "";
    if (!bad || *bad) {
        fail(u, call, sp, "CreateUser", bad ? FL_GRPC_INVALID_ARGUMENT : FL_GRPC_RESOURCE_EXHAUSTED,
             bad ? bad : "too many users");
        shop__create_user_request__free_unpacked(in, NULL);
        return;
    }
    if (u->nusers == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 64;
        user_t *v = realloc(u->users, cap * sizeof *v);
        if (!v) {
            fail(u, call, sp, "CreateUser", FL_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            shop__create_user_request__free_unpacked(in, NULL);
            return;
        }
        u->users = v;
        u->cap = cap;
    }
    char id[32];
    snprintf(id, sizeof id, "%.20s.%zu", u->svc.instance, u->nusers + 1);
    user_t *usr = &u->users[u->nusers];
    usr->id = strdup(id);
    usr->name = strdup(in->name);
    usr->email = strdup(in->email);
    shop__create_user_request__free_unpacked(in, NULL);
    if (!usr->id || !usr->name || !usr->email) {
        free(usr->id);
        free(usr->name);
        free(usr->email);
        fail(u, call, sp, "CreateUser", FL_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    u->nusers++;
    reply_user(u, call, sp, "CreateUser", usr);
}

static void get_user(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg)
{
    users_t *u = arg;
    fl_span_t *sp = fl_svc_server_span(&u->svc, call, "shop.Users", "GetUser");
    Shop__GetUserRequest *in = shop__get_user_request__unpack(NULL, len, req);
    if (!in) {
        fail(u, call, sp, "GetUser", FL_GRPC_INTERNAL, "grpc: error unmarshalling request");
        return;
    }
    for (size_t i = 0; i < u->nusers; i++) {
        if (strcmp(u->users[i].id, in->id) == 0) {
            shop__get_user_request__free_unpacked(in, NULL);
            reply_user(u, call, sp, "GetUser", &u->users[i]);
            return;
        }
    }
    char msg[160];
    snprintf(msg, sizeof msg, "no user %.100s", in->id);
    shop__get_user_request__free_unpacked(in, NULL);
    fail(u, call, sp, "GetUser", FL_GRPC_NOT_FOUND, msg);
}

/* USERS_DELAY_MS: every call answered that much later. */
typedef struct {
    uv_timer_t timer;
    users_t *u;
    fl_grpc_srv_call_t *call;
    fl_grpc_handler_t handler;
    uint8_t *req;
    size_t len;
    int cancelled;
} delayed_t;

static void delayed_freed(uv_handle_t *h)
{
    delayed_t *d = h->data;
    free(d->req);
    free(d);
}

static void on_delayed(uv_timer_t *t)
{
    delayed_t *d = t->data;
    if (!d->cancelled)
        d->handler(d->call, d->req, d->len, d->u);
    uv_close((uv_handle_t *)t, delayed_freed);
}

static void on_delayed_cancel(fl_grpc_srv_call_t *call, int code, void *arg)
{
    delayed_t *d = arg;
    (void)call;
    (void)code;
    d->cancelled = 1;
}

static void maybe_delay(users_t *u, fl_grpc_srv_call_t *call, const uint8_t *req, size_t len,
                        fl_grpc_handler_t handler)
{
    delayed_t *d = u->delay_ms ? calloc(1, sizeof *d) : NULL;
    if (d)
        d->req = malloc(len ? len : 1);
    if (!d || !d->req) {
        free(d);
        handler(call, req, len, u);
        return;
    }
    memcpy(d->req, req, len);
    d->len = len;
    d->u = u;
    d->call = call;
    d->handler = handler;
    uv_timer_init(&u->svc.loop, &d->timer);
    d->timer.data = d;
    fl_grpc_srv_call_on_cancel(call, on_delayed_cancel, d);
    uv_timer_start(&d->timer, on_delayed, (uint64_t)u->delay_ms, 0);
}

static void create_user_h(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg)
{
    maybe_delay(arg, call, req, len, create_user);
}

static void get_user_h(fl_grpc_srv_call_t *call, const uint8_t *req, size_t len, void *arg)
{
    maybe_delay(arg, call, req, len, get_user);
}

static void server_log(void *arg, const char *line)
{
    users_t *u = arg;
    fl_svc_say(&u->svc, "%s", line);
}

static void server_down(fl_grpc_server_t *srv, void *arg)
{
    users_t *u = arg;
    (void)srv;
    fl_svc_stopped(&u->svc);
}

static void on_stop(fl_svc_t *s, void *arg)
{
    users_t *u = arg;
    (void)s;
    fl_grpc_server_shutdown(u->server, GRACE_MS, server_down, u);
}

int main(void)
{
    static users_t u;
    int rc = fl_svc_init(&u.svc, "users", 50061);
    if (rc)
        return rc;
    const char *delay = getenv("USERS_DELAY_MS");
    char *end;
    u.delay_ms = delay && *delay ? strtol(delay, &end, 10) : 0;
    if (delay && *delay && (*end || u.delay_ms < 0 || u.delay_ms > 600000)) {
        fl_svc_complain(&u.svc, "bad USERS_DELAY_MS '%s': want 0..600000", delay);
        return 2;
    }
    fl_grpc_server_config_t cfg = {
        .ignore_deadline = fl_svc_bug(&u.svc, "ignore-deadline"), .log = server_log, .log_arg = &u};
    rc = fl_grpc_server_start(&u.svc.loop, u.svc.bind, u.svc.port, &cfg, &u.server);
    if (rc) {
        fl_svc_complain(&u.svc, "cannot listen on %s:%d: %s", u.svc.bind, u.svc.port,
                        fl_strerror(rc));
        return 1;
    }
    fl_grpc_server_add(u.server, "/shop.Users/CreateUser", create_user_h, &u);
    fl_grpc_server_add(u.server, "/shop.Users/GetUser", get_user_h, &u);
    fl_grpc_server_set_health(u.server, "shop.Users", 1);
    fl_svc_say(&u.svc, strchr(u.svc.bind, ':') ? "listening on [%s]:%d" : "listening on %s:%d",
               u.svc.bind, fl_grpc_server_port(u.server));
    fl_svc_register(&u.svc, fl_grpc_server_port(u.server), "grpc");
    rc = fl_svc_run(&u.svc, on_stop, &u);
    for (size_t i = 0; i < u.nusers; i++) {
        free(u.users[i].id);
        free(u.users[i].name);
        free(u.users[i].email);
    }
    free(u.users);
    return rc;
}
