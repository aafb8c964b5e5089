/* Registration, deregistration and blocking watches against the instance's Consul agent; see
 * consul.h. Every request is one lib/httpc exchange; failures back off on a timer. */
#include "services/runtime/consul.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/backoff.h"
#include "lib/buf.h"
#include "lib/dur.h"
#include "lib/err.h"
#include "lib/hostport.h"
#include "lib/http.h"
#include "lib/httpc.h"

#define MS 1000000ull
#define REGISTER_TIMEOUT_MS 2000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define QUERY_SLACK_MS 2000
#define QUERY_MIN_GAP_MS 10 /* between two answers of one watch, as Consul's docs advise */
#define MAX_BODY (4u << 20)
#define MAX_ADDRS 256

struct fl_cc_watch {
    fl_cc_t *cc;
    char *service, *wait;
    uint64_t wait_ns, index, started;
    fl_httpc_req_t *req;
    uv_timer_t timer;
    fl_backoff_t backoff;
    fl_cc_watch_fn fn;
    void *arg;
    fl_cc_watch_t *next;
};

struct fl_cc {
    uv_loop_t *loop;
    fl_cc_config_t cfg;
    char addr[96], host[64];
    int port;
    char *body, *id; /* the registration, and its service ID */
    fl_httpc_req_t *reg;
    uv_timer_t retry;
    fl_backoff_t backoff;
    int registered, deregistering, closing, handles;
    fl_cc_watch_t *watches;
    void (*done_cb)(void *);
    void *done_arg;
};

static void say(fl_cc_t *cc, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(fl_cc_t *cc, int error, const char *fmt, ...)
{
    if (!cc->cfg.log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    cc->cfg.log(cc->cfg.log_arg, error, line);
}

int fl_cc_new(uv_loop_t *loop, const fl_cc_config_t *cfg, fl_cc_t **out)
{
    char host[64];
    int port;
    const char *hp = cfg->addr && strncmp(cfg->addr, "http://", 7) == 0 ? cfg->addr + 7 : cfg->addr;
    if (!hp || strlen(cfg->addr) >= sizeof((fl_cc_t *)0)->addr ||
        fl_hostport_parse(hp, 0, host, sizeof host, &port) != 0)
        return FL_ESYNTAX;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return FL_ESYNTAX;
    fl_cc_t *cc = calloc(1, sizeof *cc);
    if (!cc)
        return FL_ENOMEM;
    cc->loop = loop;
    cc->cfg = *cfg;
    snprintf(cc->addr, sizeof cc->addr, "%s", cfg->addr);
    snprintf(cc->host, sizeof cc->host, "%s", host);
    cc->port = port;
    uv_timer_init(loop, &cc->retry);
    cc->retry.data = cc;
    cc->handles = 1;
    *out = cc;
    return 0;
}

static void release(fl_cc_t *cc);

/* ---- registration ---- */

/* The tags in a comma-separated list, blanks around each trimmed, empty ones skipped. */
static json_t *tags_json(const char *list)
{
    json_t *tags = json_array();
    for (const char *s = list; tags && s && *s;) {
        size_t n = strcspn(s, ",");
        const char *start = s, *end = s + n;
        s = *end ? end + 1 : end;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > start)
            json_array_append_new(tags, json_stringn(start, (size_t)(end - start)));
    }
    return tags;
}

static json_t *check_json(const fl_cc_service_t *s)
{
    const char *key = strcmp(s->check, "http") == 0   ? "HTTP"
                      : strcmp(s->check, "tcp") == 0  ? "TCP"
                      : strcmp(s->check, "grpc") == 0 ? "GRPC"
                                                      : NULL;
    if (!key || !s->check_target)
        return NULL;
    json_t *c = json_pack("{s:s, s:s, s:s}", key, s->check_target, "Interval",
                          s->interval ? s->interval : "1s", "Timeout", "1s");
    if (c && s->deregister_after)
        json_object_set_new(c, "DeregisterCriticalServiceAfter", json_string(s->deregister_after));
    return c;
}

static void send_registration(fl_cc_t *cc);

static void on_retry(uv_timer_t *t)
{
    send_registration(t->data);
}

static void on_registered(void *arg, const fl_httpc_result_t *res)
{
    fl_cc_t *cc = arg;
    cc->reg = NULL;
    if (!res->error && res->status == 200) {
        cc->registered = 1;
        say(cc, 0, "registered with consul at %s as %s", cc->addr, cc->id);
        return;
    }
    char why[160];
    fl_httpc_describe(res, why, sizeof why);
    uint64_t ms = fl_backoff_next(&cc->backoff);
    char delay[32];
    fl_dur_format(ms * MS, delay, sizeof delay);
    say(cc, 1, "registration failed: %s (retrying in %s)", why, delay);
    uv_timer_start(&cc->retry, on_retry, ms, 0);
}

static void send_registration(fl_cc_t *cc)
{
    if (cc->closing || cc->deregistering)
        return;
    fl_httpc_opts_t o = {.method = "PUT",
                         .host = cc->host,
                         .port = cc->port,
                         .target = "/v1/agent/service/register",
                         .headers = "Content-Type: application/json\r\n",
                         .body = cc->body,
                         .body_len = strlen(cc->body),
                         .timeout_ns = REGISTER_TIMEOUT_MS * MS};
    if (fl_httpc_request(cc->loop, &o, on_registered, cc, &cc->reg) != 0)
        uv_timer_start(&cc->retry, on_retry, fl_backoff_next(&cc->backoff), 0);
}

int fl_cc_register(fl_cc_t *cc, const fl_cc_service_t *s)
{
    if (cc->body || !s->id || !s->name || !s->address || !s->check)
        return FL_EINVAL;
    json_t *check = check_json(s);
    if (!check)
        return FL_EINVAL;
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:i, s:o, s:o}", "ID", s->id, "Name", s->name, "Address",
                  s->address, "Port", s->port, "Tags", tags_json(s->tags), "Check", check);
    cc->body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    cc->id = strdup(s->id);
    if (!cc->body || !cc->id) {
        free(cc->body);
        free(cc->id);
        cc->body = cc->id = NULL;
        return doc ? FL_ENOMEM : FL_EINVAL;
    }
    fl_backoff_init(&cc->backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    send_registration(cc);
    return 0;
}

int fl_cc_registered(const fl_cc_t *cc)
{
    return cc->registered;
}

typedef struct {
    fl_cc_t *cc;
    void (*cb)(void *);
    void *arg;
} dereg_t;

static void on_deregistered(void *arg, const fl_httpc_result_t *res)
{
    dereg_t *d = arg;
    char why[160];
    if (!res->error && res->status == 200) {
        d->cc->registered = 0;
        say(d->cc, 0, "deregistered from consul");
    } else {
        fl_httpc_describe(res, why, sizeof why);
        say(d->cc, 1, "deregistration failed: %s", why);
    }
    fl_cc_t *cc = d->cc;
    if (d->cb)
        d->cb(d->arg);
    free(d);
    release(cc);
}

void fl_cc_deregister(fl_cc_t *cc, int skip, uint64_t timeout_ms, void (*cb)(void *arg), void *arg)
{
    int maybe = cc->registered || cc->reg;
    cc->deregistering = 1;
    uv_timer_stop(&cc->retry);
    if (cc->reg) {
        fl_httpc_cancel(cc->reg);
        cc->reg = NULL;
    }
    if (!maybe || skip) {
        if (maybe)
            say(cc, 0, "not deregistering from consul (FAULTLINE_BUG=no-deregister)");
        if (cb)
            cb(arg);
        return;
    }
    fl_buf_t target = FL_BUF_INIT;
    dereg_t *d = malloc(sizeof *d);
    int rc = d ? fl_buf_puts(&target, "/v1/agent/service/deregister/") : FL_ENOMEM;
    if (!rc)
        rc = fl_buf_append_escaped(&target, cc->id);
    if (!rc) {
        *d = (dereg_t){cc, cb, arg};
        fl_httpc_opts_t o = {.method = "PUT",
                             .host = cc->host,
                             .port = cc->port,
                             .target = target.data,
                             .timeout_ns = timeout_ms * MS};
        rc = fl_httpc_request(cc->loop, &o, on_deregistered, d, NULL);
        if (!rc)
            cc->handles++; /* cc stays until the answer */
    }
    fl_buf_free(&target);
    if (rc) {
        free(d);
        say(cc, 1, "deregistration failed: %s", fl_strerror(rc));
        if (cb)
            cb(arg);
    }
}

/* ---- watches ---- */

static void query(fl_cc_watch_t *w);

static void on_query_timer(uv_timer_t *t)
{
    query(t->data);
}

static void query_failed(fl_cc_watch_t *w, const char *why)
{
    uint64_t ms = fl_backoff_next(&w->backoff);
    char delay[32];
    fl_dur_format(ms * MS, delay, sizeof delay);
    say(w->cc, 1, "consul query for %s failed: %s (retrying in %s)", w->service, why, delay);
    uv_timer_start(&w->timer, on_query_timer, ms, 0);
}

/* The "ip:port" of each entry of a health answer (Service.Address, else Node.Address), once
 * each, into addrs (strings in store). Returns the count, or -1 for an answer that is not a
 * JSON array. */
static int answer_addrs(const char *body, size_t len, char store[][64], const char **addrs)
{
    json_t *doc = json_loadb(body, len, 0, NULL), *entry;
    size_t i;
    int n = 0;
    if (!json_is_array(doc)) {
        json_decref(doc);
        return -1;
    }
    json_array_foreach(doc, i, entry)
    {
        json_t *svc = json_object_get(entry, "Service");
        const char *host = json_string_value(json_object_get(svc, "Address"));
        json_int_t port = json_integer_value(json_object_get(svc, "Port"));
        if (!host || !*host)
            host = json_string_value(json_object_get(json_object_get(entry, "Node"), "Address"));
        if (!host || port < 1 || port > 65535 || n == MAX_ADDRS)
            continue;
        snprintf(store[n], 64, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, (int)port);
        int dup = 0;
        for (int j = 0; j < n && !dup; j++)
            dup = strcmp(store[j], store[n]) == 0;
        if (!dup) {
            addrs[n] = store[n];
            n++;
        }
    }
    json_decref(doc);
    return n;
}

static void on_health(void *arg, const fl_httpc_result_t *res)
{
    fl_cc_watch_t *w = arg;
    char why[160];
    uint64_t index;
    w->req = NULL;
    if (res->error || res->status != 200) {
        fl_httpc_describe(res, why, sizeof why);
        query_failed(w, why);
        return;
    }
    if (fl_http_header_u64(res->headers, res->nheaders, "X-Consul-Index", &index)) {
        query_failed(w, "no valid X-Consul-Index in the answer");
        return;
    }
    static char store[MAX_ADDRS][64];
    const char *addrs[MAX_ADDRS];
    int n = answer_addrs(res->body, res->body_len, store, addrs);
    if (n < 0) {
        query_failed(w, "the answer is not a JSON array");
        return;
    }
    /* an index that goes backwards starts over; the index waited on is never 0 */
    w->index = index < w->index ? 0 : (index ? index : 1);
    fl_backoff_reset(&w->backoff);
    w->fn(w->arg, addrs, (size_t)n, index);
    uint64_t since = uv_now(w->cc->loop) - w->started;
    uv_timer_start(&w->timer, on_query_timer,
                   since < QUERY_MIN_GAP_MS ? QUERY_MIN_GAP_MS - since : 0, 0);
}

static void query(fl_cc_watch_t *w)
{
    fl_cc_t *cc = w->cc;
    if (cc->closing)
        return;
    fl_buf_t target = FL_BUF_INIT;
    int rc = fl_buf_puts(&target, "/v1/health/service/");
    if (!rc)
        rc = fl_buf_append_escaped(&target, w->service);
    if (!rc)
        rc = fl_buf_printf(&target, "?passing&index=%llu&wait=%s", (unsigned long long)w->index,
                           w->wait);
    if (!rc) {
        fl_httpc_opts_t o = {.host = cc->host,
                             .port = cc->port,
                             .target = target.data,
                             .timeout_ns = w->wait_ns + w->wait_ns / 16 + QUERY_SLACK_MS * MS,
                             .max_body = MAX_BODY};
        w->started = uv_now(cc->loop);
        rc = fl_httpc_request(cc->loop, &o, on_health, w, &w->req);
    }
    fl_buf_free(&target);
    if (rc)
        query_failed(w, fl_strerror(rc));
}

/* Consul's wait: a number and a unit of ms, s, m or h ("5m"). */
static int wait_ns(const char *s, uint64_t *ns)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return -1;
    uint64_t unit = strcmp(end, "ms") == 0  ? MS
                    : strcmp(end, "s") == 0 ? 1000 * MS
                    : strcmp(end, "m") == 0 ? 60000 * MS
                    : strcmp(end, "h") == 0 ? 3600000 * MS
                                            : 0;
    if (!unit || v > 24 * 3600000ull)
        return -1;
    *ns = v * unit;
    return 0;
}

int fl_cc_watch(fl_cc_t *cc, const char *service, const char *wait, fl_cc_watch_fn fn, void *arg,
                fl_cc_watch_t **out)
{
    fl_cc_watch_t *w = calloc(1, sizeof *w);
    if (!w)
        return FL_ENOMEM;
    w->cc = cc;
    w->service = strdup(service);
    w->wait = strdup(wait ? wait : "5m");
    if (!w->service || !w->wait || wait_ns(w->wait, &w->wait_ns)) {
        int rc = w->service && w->wait ? FL_EINVAL : FL_ENOMEM;
        free(w->service);
        free(w->wait);
        free(w);
        return rc;
    }
    w->fn = fn;
    w->arg = arg;
    fl_backoff_init(&w->backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    uv_timer_init(cc->loop, &w->timer);
    w->timer.data = w;
    cc->handles++;
    w->next = cc->watches;
    cc->watches = w;
    if (out)
        *out = w;
    query(w);
    return 0;
}

/* ---- closing ---- */

/* Drops one of what keeps cc alive (its timers, a deregistration in flight); the last one
 * frees it once it is closing. */
static void release(fl_cc_t *cc)
{
    if (--cc->handles > 0 || !cc->closing)
        return;
    void (*cb)(void *) = cc->done_cb;
    void *arg = cc->done_arg;
    free(cc->body);
    free(cc->id);
    free(cc);
    if (cb)
        cb(arg);
}

static void retry_closed(uv_handle_t *h)
{
    release(h->data);
}

static void watch_closed(uv_handle_t *h)
{
    fl_cc_watch_t *w = h->data;
    fl_cc_t *cc = w->cc;
    free(w->service);
    free(w->wait);
    free(w);
    release(cc);
}

void fl_cc_close(fl_cc_t *cc, void (*cb)(void *arg), void *arg)
{
    cc->closing = 1;
    cc->done_cb = cb;
    cc->done_arg = arg;
    if (cc->reg) {
        fl_httpc_cancel(cc->reg);
        cc->reg = NULL;
    }
    for (fl_cc_watch_t *w = cc->watches, *next; w; w = next) {
        next = w->next;
        if (w->req)
            fl_httpc_cancel(w->req);
        uv_close((uv_handle_t *)&w->timer, watch_closed);
    }
    cc->watches = NULL;
    uv_close((uv_handle_t *)&cc->retry, retry_closed);
}
