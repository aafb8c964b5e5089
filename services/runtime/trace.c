/* Spans, sampling and the batching OTLP/HTTP exporter (trace.h).
 *
 * Each export is one POST through lib/httpc on the loop (a host name is first resolved with
 * uv_getaddrinfo, on libuv's thread pool); nothing here ever waits. The exporter once used
 * libcurl's multi interface: libcurl and the TLS, Kerberos and LDAP libraries it loads made
 * up 7-9 MiB of every idle service's 10-12 MiB (bench/RESULTS.md), for plain http:// POSTs
 * to a collector on the same machine. */
#include "services/runtime/trace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "lib/backoff.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/hostport.h"
#include "lib/http.h"
#include "lib/httpc.h"
#include "lib/rng.h"

/* ---- configuration ---------------------------------------------------------------- */

static const char *env_get(fl_getenv_fn get, void *arg, const char *name)
{
    const char *v = get ? get(name, arg) : getenv(name);
    return v && *v ? v : NULL;
}

static void warn(const char *name, const char *value, const char *why)
{
    fprintf(stderr, "otel: ignoring %s=%s (%s)\n", name, value, why);
}

/* A non-negative integer variable (ms or a count); max bounds it. */
static uint64_t env_uint(fl_getenv_fn get, void *arg, const char *name, uint64_t dflt, uint64_t max)
{
    const char *v = env_get(get, arg, name);
    if (!v)
        return dflt;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || n > max) {
        warn(name, v, "not a whole number in range");
        return dflt;
    }
    return n;
}

static int add_attr(fl_attr_t **a, size_t *n, const char *key, size_t klen, const char *val,
                    size_t vlen)
{
    fl_attr_t *grown = realloc(*a, (*n + 1) * sizeof **a);
    if (!grown)
        return FL_ENOMEM;
    *a = grown;
    fl_attr_t *x = &grown[*n];
    x->key = strndup(key, klen);
    x->type = FL_ATTR_STRING;
    x->v.s = strndup(val, vlen);
    if (!x->key || !x->v.s) {
        free(x->key);
        free(x->v.s);
        return FL_ENOMEM;
    }
    (*n)++;
    return 0;
}

static int unhex1(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into out (n + 1 bytes); false on a bad escape. */
static bool pct_decode(const char *s, size_t n, char *out, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 1 < n ? unhex1(s[i + 1]) : -1;
        int lo = i + 2 < n ? unhex1(s[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return false;
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    *outlen = o;
    return true;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* OTEL_RESOURCE_ATTRIBUTES: k=v pairs separated by ',', values percent-encoded. */
static int parse_resource(const char *v, fl_attr_t **a, size_t *n)
{
    size_t len = strlen(v);
    char *val = malloc(len + 1);
    if (!val)
        return FL_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i <= len && rc == 0;) {
        const char *comma = memchr(v + i, ',', len - i);
        size_t end = comma ? (size_t)(comma - v) : len;
        const char *m = v + i;
        size_t mlen = end - i;
        i = end + 1;
        trim(&m, &mlen);
        if (!mlen)
            continue;
        const char *eq = memchr(m, '=', mlen);
        const char *k = m;
        size_t klen = eq ? (size_t)(eq - m) : 0, vlen;
        trim(&k, &klen);
        const char *vs = eq ? eq + 1 : NULL;
        size_t vslen = eq ? mlen - (size_t)(eq - m) - 1 : 0;
        if (vs)
            trim(&vs, &vslen);
        if (!eq || !klen || !pct_decode(vs, vslen, val, &vlen)) {
            rc = FL_EMALFORMED;
            break;
        }
        rc = add_attr(a, n, k, klen, val, vlen);
    }
    free(val);
    return rc;
}

static void free_attrs(fl_attr_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fl_attr_free(&a[i]);
    free(a);
}

static int sampler_from_env(fl_trace_config_t *c, fl_getenv_fn get, void *arg)
{
    static const struct {
        const char *name;
        fl_sampler_t s;
    } names[] = {
        {"always_on", FL_SAMPLER_ALWAYS_ON},
        {"always_off", FL_SAMPLER_ALWAYS_OFF},
        {"traceidratio", FL_SAMPLER_TRACEIDRATIO},
        {"parentbased_always_on", FL_SAMPLER_PARENT_ALWAYS_ON},
        {"parentbased_always_off", FL_SAMPLER_PARENT_ALWAYS_OFF},
        {"parentbased_traceidratio", FL_SAMPLER_PARENT_TRACEIDRATIO},
    };
    c->sampler = FL_SAMPLER_PARENT_ALWAYS_ON;
    c->ratio = 1.0;
    const char *v = env_get(get, arg, "OTEL_TRACES_SAMPLER");
    if (v) {
        size_t i = 0;
        while (i < sizeof names / sizeof names[0] && strcasecmp(v, names[i].name) != 0)
            i++;
        if (i < sizeof names / sizeof names[0])
            c->sampler = names[i].s;
        else
            warn("OTEL_TRACES_SAMPLER", v, "unknown sampler; parentbased_always_on used");
    }
    const char *r = env_get(get, arg, "OTEL_TRACES_SAMPLER_ARG");
    if (r &&
        (c->sampler == FL_SAMPLER_TRACEIDRATIO || c->sampler == FL_SAMPLER_PARENT_TRACEIDRATIO)) {
        char *end;
        double d = strtod(r, &end);
        if (*end || !(d >= 0.0 && d <= 1.0))
            warn("OTEL_TRACES_SAMPLER_ARG", r, "not a ratio between 0 and 1");
        else
            c->ratio = d;
    }
    return 0;
}

static int endpoint_from_env(fl_trace_config_t *c, fl_getenv_fn get, void *arg)
{
    const char *full = env_get(get, arg, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    const char *base = env_get(get, arg, "OTEL_EXPORTER_OTLP_ENDPOINT");
    fl_buf_t b = FL_BUF_INIT;
    int rc;
    if (full)
        rc = fl_buf_puts(&b, full);
    else if (base) {
        size_t n = strlen(base);
        rc = fl_buf_printf(&b, "%s%sv1/traces", base, n && base[n - 1] == '/' ? "" : "/");
    } else
        rc = fl_buf_puts(&b, "http://localhost:4318/v1/traces");
    if (rc < 0) {
        fl_buf_free(&b);
        return rc;
    }
    c->endpoint = b.data;
    return 0;
}

int fl_trace_config_from_env(fl_trace_config_t *c, fl_getenv_fn get, void *arg)
{
    memset(c, 0, sizeof *c);
    const char *dis = env_get(get, arg, "OTEL_SDK_DISABLED");
    c->disabled = dis && strcasecmp(dis, "true") == 0;
    int rc = endpoint_from_env(c, get, arg);
    if (rc < 0)
        goto fail;
    sampler_from_env(c, get, arg);
    c->schedule_delay_ms = env_uint(get, arg, "OTEL_BSP_SCHEDULE_DELAY", 5000, 86400000);
    c->export_timeout_ms = env_uint(get, arg, "OTEL_BSP_EXPORT_TIMEOUT", 30000, 86400000);
    uint64_t req = env_uint(get, arg, "OTEL_EXPORTER_OTLP_TIMEOUT", 10000, 86400000);
    c->request_timeout_ms = env_uint(get, arg, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", req, 86400000);
    c->max_queue = env_uint(get, arg, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1u << 24);
    c->max_batch = env_uint(get, arg, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1u << 24);
    if (c->max_queue == 0)
        c->max_queue = 1;
    if (c->max_batch == 0 || c->max_batch > c->max_queue)
        c->max_batch = c->max_queue; /* the specification: must not exceed the queue size */
    c->retry_min_ms = 100;
    c->retry_max_ms = 5000;
    c->max_attrs = 128;

    /* Resource: OTEL_SERVICE_NAME wins over service.name from OTEL_RESOURCE_ATTRIBUTES. */
    fl_attr_t *env_attrs = NULL;
    size_t nenv = 0;
    const char *ra = env_get(get, arg, "OTEL_RESOURCE_ATTRIBUTES");
    if (ra && (rc = parse_resource(ra, &env_attrs, &nenv)) < 0) {
        free_attrs(env_attrs, nenv);
        env_attrs = NULL;
        nenv = 0;
        if (rc == FL_ENOMEM)
            goto fail;
        warn("OTEL_RESOURCE_ATTRIBUTES", ra, "not key=value pairs with percent-encoded values");
    }
    const char *svc = env_get(get, arg, "OTEL_SERVICE_NAME");
    for (size_t i = 0; !svc && i < nenv; i++)
        if (strcmp(env_attrs[i].key, "service.name") == 0)
            svc = env_attrs[i].v.s;
    if (!svc)
        svc = "unknown_service";
    rc = add_attr(&c->resource, &c->nresource, "service.name", 12, svc, strlen(svc));
    for (size_t i = 0; rc == 0 && i < nenv; i++)
        if (strcmp(env_attrs[i].key, "service.name") != 0)
            rc = add_attr(&c->resource, &c->nresource, env_attrs[i].key, strlen(env_attrs[i].key),
                          env_attrs[i].v.s, strlen(env_attrs[i].v.s));
    if (rc == 0)
        rc = add_attr(&c->resource, &c->nresource, "telemetry.sdk.name", 18, "faultline", 9);
    free_attrs(env_attrs, nenv);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    fl_trace_config_free(c);
    return rc;
}

void fl_trace_config_free(fl_trace_config_t *c)
{
    free(c->endpoint);
    free_attrs(c->resource, c->nresource);
    c->endpoint = NULL;
    c->resource = NULL;
    c->nresource = 0;
}

/* ---- tracer ------------------------------------------------------------------------ */

/* Where batches go, from the endpoint URL "http://HOST[:PORT][/PATH]". */
typedef struct {
    bool ok;      /* false: the URL is not one this exporter can reach; batches are dropped */
    bool literal; /* host is an IP address (or was "localhost"): no lookup needed */
    char host[256];
    int port;
    char *target; /* "/v1/traces" */
} endpoint_t;

struct fl_tracer {
    uv_loop_t *loop;
    fl_trace_config_t cfg;
    fl_rng_t rng;
    fl_tracer_stats_t st;
    fl_span_data_t *head, *tail; /* the queue of ended spans */

    endpoint_t ep;
    bool closed;            /* close_all has run */
    uv_timer_t batch_timer; /* the next export: schedule_delay, or 0 when a batch is full */
    uv_timer_t retry_timer; /* the next attempt of the batch in flight */

    /* the batch in flight (at most one) */
    fl_httpc_req_t *req;  /* its POST, while one is out */
    uv_getaddrinfo_t gai; /* its host's lookup, while resolving */
    bool resolving;
    fl_buf_t body;
    size_t batch_n;
    bool batch_pending; /* encoded, between attempts or sending */
    uint64_t batch_deadline;
    fl_backoff_t backoff;
    uint64_t retry_after_ms; /* from the last answer's Retry-After, 0 when none */

    bool shutting_down;
    uv_timer_t shutdown_timer;
    int closing; /* handles whose close callback is still due */
    void (*shutdown_cb)(void *arg);
    void *shutdown_arg;
};

struct fl_span {
    fl_tracer_t *t;
    fl_tracectx_t ctx;
    fl_span_data_t *d; /* NULL: not recording */
};

static uint64_t now_unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void random_id(fl_rng_t *rng, uint8_t *id, size_t n)
{
    do { /* an all-zero id is invalid; 2^-64 at most, so this loops once */
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = fl_rng_next(rng);
            memcpy(id + i, &r, n - i < 8 ? n - i : 8);
        }
    } while (fl_trace_id_is_zero(id, n));
}

/* traceidratio: the trace id's last 8 bytes (random in W3C level 2 ids) against the ratio,
 * so every service makes the same choice for one trace. */
static bool ratio_sampled(const uint8_t trace_id[16], double ratio)
{
    if (ratio >= 1.0)
        return true;
    uint64_t x = 0;
    for (int i = 8; i < 16; i++)
        x = x << 8 | trace_id[i];
    return (double)(x >> 11) < ratio * (double)(1ull << 53);
}

static bool should_sample(const fl_trace_config_t *c, const fl_tracectx_t *parent,
                          const uint8_t trace_id[16])
{
    if (c->disabled)
        return false;
    switch (c->sampler) {
    case FL_SAMPLER_ALWAYS_ON:
        return true;
    case FL_SAMPLER_ALWAYS_OFF:
        return false;
    case FL_SAMPLER_TRACEIDRATIO:
        return ratio_sampled(trace_id, c->ratio);
    case FL_SAMPLER_PARENT_ALWAYS_ON:
        return parent ? (parent->flags & FL_TRACE_FLAG_SAMPLED) : true;
    case FL_SAMPLER_PARENT_ALWAYS_OFF:
        return parent ? (parent->flags & FL_TRACE_FLAG_SAMPLED) : false;
    case FL_SAMPLER_PARENT_TRACEIDRATIO:
        return parent ? (parent->flags & FL_TRACE_FLAG_SAMPLED) : ratio_sampled(trace_id, c->ratio);
    }
    return false;
}

static void export_next(fl_tracer_t *t);
static void arm_batch_timer(fl_tracer_t *t);
static void maybe_finish_shutdown(fl_tracer_t *t);

static int copy_config(fl_trace_config_t *dst, const fl_trace_config_t *src)
{
    *dst = *src;
    dst->endpoint = strdup(src->endpoint ? src->endpoint : "http://localhost:4318/v1/traces");
    dst->resource = NULL;
    dst->nresource = 0;
    if (!dst->endpoint)
        return FL_ENOMEM;
    for (size_t i = 0; i < src->nresource; i++) {
        const fl_attr_t *a = &src->resource[i];
        const char *v = a->type == FL_ATTR_STRING && a->v.s ? a->v.s : "";
        if (add_attr(&dst->resource, &dst->nresource, a->key, strlen(a->key), v, strlen(v)) < 0)
            return FL_ENOMEM;
    }
    if (dst->max_queue == 0)
        dst->max_queue = 1;
    if (dst->max_batch == 0 || dst->max_batch > dst->max_queue)
        dst->max_batch = dst->max_queue;
    if (dst->max_attrs == 0)
        dst->max_attrs = 128;
    return 0;
}

/* ---- batches ------------------------------------------------------------------------- */

static uint64_t loop_ms(fl_tracer_t *t)
{
    uv_update_time(t->loop);
    return uv_now(t->loop);
}

static void batch_done(fl_tracer_t *t, bool ok)
{
    if (ok)
        t->st.exported += t->batch_n;
    else
        t->st.failed += t->batch_n;
    t->batch_pending = false;
    t->batch_n = 0;
    fl_buf_reset(&t->body);
    if (t->shutting_down) {
        if (t->head)
            export_next(t);
        else
            maybe_finish_shutdown(t);
        return;
    }
    if (t->st.queued >= t->cfg.max_batch)
        export_next(t);
    else
        arm_batch_timer(t);
}

/* Parses "http://HOST[:PORT][/PATH]" (the port defaults to 80, the path to "/"). */
static int parse_endpoint(endpoint_t *ep, const char *url)
{
    memset(ep, 0, sizeof *ep);
    if (strncasecmp(url, "http://", 7) != 0)
        return FL_ESYNTAX;
    const char *hp = url + 7, *slash = strchr(hp, '/');
    size_t n = slash ? (size_t)(slash - hp) : strlen(hp);
    char buf[300];
    if (n == 0 || n + 4 > sizeof buf || memchr(hp, '?', n) || memchr(hp, '@', n))
        return FL_ESYNTAX;
    memcpy(buf, hp, n);
    buf[n] = '\0';
    /* no port: the last ':' is not after the host (a bare name, IPv4, or "[v6]") */
    const char *colon = strrchr(buf, ':');
    if (!colon || (buf[0] == '[' && colon < strchr(buf, ']')))
        strcat(buf, ":80");
    if (fl_hostport_parse(buf, 0, ep->host, sizeof ep->host, &ep->port) != 0)
        return FL_ESYNTAX;
    if (strcmp(ep->host, "localhost") == 0)
        strcpy(ep->host, "127.0.0.1");
    struct sockaddr_in6 sa;
    ep->literal = uv_ip4_addr(ep->host, ep->port, (struct sockaddr_in *)&sa) == 0 ||
                  uv_ip6_addr(ep->host, ep->port, &sa) == 0;
    ep->target = strdup(slash ? slash : "/");
    if (!ep->target)
        return FL_ENOMEM;
    ep->ok = true;
    return 0;
}

static void transfer_done(fl_tracer_t *t, int status, int error);

/* The delay-seconds form of Retry-After (dates are ignored), at most an hour. */
static uint64_t retry_after_ms(const fl_httpc_result_t *res)
{
    uint64_t secs;
    if (fl_http_header_u64(res->headers, res->nheaders, "retry-after", &secs) != 0 || secs > 3600)
        return 0;
    return secs * 1000;
}

static void on_posted(void *arg, const fl_httpc_result_t *res)
{
    fl_tracer_t *t = arg;
    t->req = NULL;
    /* ExportTraceServiceResponse: partial success is not acted on, so the body is not read */
    t->retry_after_ms = res->error ? 0 : retry_after_ms(res);
    transfer_done(t, res->status, res->error);
}

static int post_to(fl_tracer_t *t, const char *ip)
{
    fl_httpc_opts_t o = {
        .method = "POST",
        .host = ip,
        .port = t->ep.port,
        .target = t->ep.target,
        .headers = "Content-Type: application/x-protobuf\r\n",
        .body = t->body.data,
        .body_len = t->body.len,
        .timeout_ns = t->cfg.request_timeout_ms * 1000000ull,
        .max_body = 1u << 20,
    };
    return fl_httpc_request(t->loop, &o, on_posted, t, &t->req);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    fl_tracer_t *t = req->data;
    t->resolving = false;
    char ip[64] = "";
    if (status == 0 && ai)
        uv_ip_name(ai->ai_addr, ip, sizeof ip);
    uv_freeaddrinfo(ai);
    if (t->closed) { /* cancelled (or too late) at shutdown */
        t->closing--;
        maybe_finish_shutdown(t);
        return;
    }
    if (!ip[0] || post_to(t, ip) < 0)
        transfer_done(t, 0, status ? status : FL_EIO);
}

/* One POST of the batch in t->body; its answer comes to transfer_done. */
static int send_batch(fl_tracer_t *t)
{
    if (!t->ep.ok)
        return FL_EINVAL;
    t->retry_after_ms = 0;
    t->st.requests++;
    if (t->ep.literal)
        return post_to(t, t->ep.host);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    t->gai.data = t;
    if (uv_getaddrinfo(t->loop, &t->gai, on_resolved, t->ep.host, NULL, &hints) != 0)
        return FL_EIO;
    t->resolving = true;
    return 0;
}

static void retry_fired(uv_timer_t *h)
{
    fl_tracer_t *t = h->data;
    if (send_batch(t) < 0)
        batch_done(t, false);
}

/* OTLP/HTTP: 429, 502, 503 and 504 are retryable, and so is not reaching the collector. */
static bool retryable(int status, int error)
{
    if (error)
        return true;
    return status == 429 || status == 502 || status == 503 || status == 504;
}

static void transfer_done(fl_tracer_t *t, int status, int error)
{
    if (!error && status >= 200 && status < 300) {
        batch_done(t, true);
        return;
    }
    uint64_t now = loop_ms(t);
    uint64_t wait = fl_backoff_next(&t->backoff);
    if (t->retry_after_ms > wait)
        wait = t->retry_after_ms;
    if (!retryable(status, error) || now + wait >= t->batch_deadline) {
        batch_done(t, false);
        return;
    }
    t->st.retries++;
    uv_timer_start(&t->retry_timer, retry_fired, wait, 0);
}

/* Takes up to max_batch spans off the queue, encodes them, and sends them. */
static void export_next(fl_tracer_t *t)
{
    if (t->batch_pending || !t->head)
        return;
    fl_span_data_t *batch[t->cfg.max_batch < 4096 ? t->cfg.max_batch : 4096];
    size_t n = 0, cap = sizeof batch / sizeof batch[0];
    while (t->head && n < cap) {
        batch[n++] = t->head;
        t->head = t->head->next;
    }
    if (!t->head)
        t->tail = NULL;
    t->st.queued -= n;
    fl_buf_reset(&t->body);
    int rc = fl_otlp_encode(&t->body, t->cfg.resource, t->cfg.nresource, "faultline", FL_VERSION,
                            batch, n);
    for (size_t i = 0; i < n; i++)
        fl_span_data_free(batch[i]);
    t->batch_n = n;
    t->batch_pending = true;
    fl_backoff_reset(&t->backoff);
    t->batch_deadline = loop_ms(t) + t->cfg.export_timeout_ms;
    if (rc < 0 || send_batch(t) < 0)
        batch_done(t, false);
}

static void batch_timer_fired(uv_timer_t *h)
{
    fl_tracer_t *t = h->data;
    export_next(t);
}

static void arm_batch_timer(fl_tracer_t *t)
{
    if (t->head && !t->batch_pending && !uv_is_active((uv_handle_t *)&t->batch_timer))
        uv_timer_start(&t->batch_timer, batch_timer_fired, t->cfg.schedule_delay_ms, 0);
}

int fl_tracer_new(uv_loop_t *loop, const fl_trace_config_t *cfg, fl_tracer_t **out)
{
    fl_tracer_t *t = calloc(1, sizeof *t);
    if (!t)
        return FL_ENOMEM;
    t->loop = loop;
    int rc = copy_config(&t->cfg, cfg);
    if (rc < 0)
        goto fail;
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != sizeof seed)
        seed = now_unix_ns() ^ (uint64_t)(uintptr_t)t; /* ids need to be unique, not secret */
    fl_rng_seed(&t->rng, seed);
    fl_backoff_init(&t->backoff, t->cfg.retry_min_ms, t->cfg.retry_max_ms);
    rc = parse_endpoint(&t->ep, t->cfg.endpoint);
    if (rc == FL_ENOMEM)
        goto fail;
    if (rc < 0 && !t->cfg.disabled)
        fprintf(stderr,
                "otel: endpoint '%s' is not an http://HOST[:PORT][/PATH] URL; spans are "
                "dropped (and counted as failed)\n",
                t->cfg.endpoint);
    uv_timer_t *timers[] = {&t->batch_timer, &t->retry_timer, &t->shutdown_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = t;
    }
    *out = t;
    return 0;
fail:
    free(t->ep.target);
    fl_trace_config_free(&t->cfg);
    free(t);
    return rc;
}

void fl_tracer_stats(const fl_tracer_t *t, fl_tracer_stats_t *out)
{
    *out = t->st;
}

void fl_tracer_flush(fl_tracer_t *t)
{
    uv_timer_stop(&t->batch_timer);
    export_next(t);
}

static void timer_closed(uv_handle_t *h)
{
    fl_tracer_t *t = h->data;
    t->closing--;
    maybe_finish_shutdown(t);
}

/* Once the queue is empty and nothing is in flight (or time is up): close everything. */
static void close_all(fl_tracer_t *t)
{
    t->closed = true;
    if (t->req) {
        fl_httpc_cancel(t->req);
        t->req = NULL;
    }
    if (t->resolving) { /* its callback still runs (with UV_EAI_CANCELED if not too late) */
        t->closing++;
        uv_cancel((uv_req_t *)&t->gai);
    }
    if (t->batch_pending) {
        t->st.failed += t->batch_n;
        t->batch_pending = false;
    }
    for (fl_span_data_t *d = t->head, *next; d; d = next) {
        next = d->next;
        t->st.failed++;
        fl_span_data_free(d);
    }
    t->head = t->tail = NULL;
    t->st.queued = 0;
    uv_timer_t *timers[] = {&t->batch_timer, &t->retry_timer, &t->shutdown_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        t->closing++;
        uv_close((uv_handle_t *)timers[i], timer_closed);
    }
}

static void maybe_finish_shutdown(fl_tracer_t *t)
{
    if (!t->shutting_down)
        return;
    if (!t->closed) {
        if (!t->head && !t->batch_pending)
            close_all(t);
        return;
    }
    if (t->closing == 0) {
        void (*cb)(void *) = t->shutdown_cb;
        void *arg = t->shutdown_arg;
        fl_trace_config_free(&t->cfg);
        fl_buf_free(&t->body);
        free(t->ep.target);
        free(t);
        if (cb)
            cb(arg);
    }
}

static void shutdown_timeout(uv_timer_t *h)
{
    fl_tracer_t *t = h->data;
    if (!t->closed)
        close_all(t);
}

void fl_tracer_shutdown(fl_tracer_t *t, uint64_t timeout_ms, void (*cb)(void *arg), void *arg)
{
    if (t->shutting_down)
        return;
    t->shutting_down = true;
    t->shutdown_cb = cb;
    t->shutdown_arg = arg;
    uv_timer_stop(&t->batch_timer);
    uv_timer_start(&t->shutdown_timer, shutdown_timeout, timeout_ms, 0);
    if (t->batch_pending && uv_is_active((uv_handle_t *)&t->retry_timer)) {
        uv_timer_stop(&t->retry_timer); /* waiting to retry: try again at once */
        retry_fired(&t->retry_timer);
        return;
    }
    export_next(t);
    maybe_finish_shutdown(t);
}

/* ---- spans ---------------------------------------------------------------------------- */

fl_span_t *fl_span_start(fl_tracer_t *t, const char *name, int kind, const fl_tracectx_t *parent)
{
    static fl_span_t oom_span; /* zero context, never recording: what an OOM gets */
    fl_span_t *s = calloc(1, sizeof *s);
    if (!s)
        return &oom_span;
    s->t = t;
    t->st.started++;
    if (parent && fl_trace_id_is_zero(parent->trace_id, 16))
        parent = NULL;
    if (parent) {
        memcpy(s->ctx.trace_id, parent->trace_id, 16);
        memcpy(s->ctx.tracestate, parent->tracestate, sizeof s->ctx.tracestate);
    } else
        random_id(&t->rng, s->ctx.trace_id, 16);
    random_id(&t->rng, s->ctx.span_id, 8);
    bool sampled = should_sample(&t->cfg, parent, s->ctx.trace_id);
    if (t->cfg.disabled) /* no SDK: pass the caller's decision on unchanged */
        s->ctx.flags = parent ? parent->flags : 0;
    else
        s->ctx.flags = sampled ? FL_TRACE_FLAG_SAMPLED : 0;
    if (!sampled || t->shutting_down)
        return s;
    fl_span_data_t *d = calloc(1, sizeof *d);
    if (!d || !(d->name = strdup(name ? name : ""))) {
        free(d);
        return s;
    }
    memcpy(d->trace_id, s->ctx.trace_id, 16);
    memcpy(d->span_id, s->ctx.span_id, 8);
    if (parent) {
        d->has_parent = true;
        d->parent_remote = parent->remote;
        memcpy(d->parent_span_id, parent->span_id, 8);
        if (parent->tracestate[0])
            d->trace_state = strdup(parent->tracestate);
    }
    d->trace_flags = s->ctx.flags;
    d->kind = kind;
    d->start_ns = now_unix_ns();
    s->d = d;
    return s;
}

const fl_tracectx_t *fl_span_context(const fl_span_t *s)
{
    return &s->ctx;
}

bool fl_span_is_recording(const fl_span_t *s)
{
    return s->d != NULL;
}

/* The attribute slot for key: the existing one (freed, to be overwritten) or a new one;
 * NULL when the span is full (counted) or out of memory. */
static fl_attr_t *attr_slot(fl_span_t *s, const char *key)
{
    fl_span_data_t *d = s->d;
    if (!d || !key)
        return NULL;
    for (size_t i = 0; i < d->nattrs; i++)
        if (strcmp(d->attrs[i].key, key) == 0) {
            if (d->attrs[i].type == FL_ATTR_STRING)
                free(d->attrs[i].v.s);
            d->attrs[i].v.s = NULL;
            return &d->attrs[i];
        }
    if (d->nattrs >= s->t->cfg.max_attrs) {
        d->dropped_attrs++;
        return NULL;
    }
    if (d->nattrs == d->cap_attrs) {
        size_t cap = d->cap_attrs ? d->cap_attrs * 2 : 8;
        fl_attr_t *a = realloc(d->attrs, cap * sizeof *a);
        if (!a)
            return NULL;
        d->attrs = a;
        d->cap_attrs = cap;
    }
    fl_attr_t *a = &d->attrs[d->nattrs];
    if (!(a->key = strdup(key)))
        return NULL;
    a->type = FL_ATTR_BOOL;
    d->nattrs++;
    return a;
}

void fl_span_set_str(fl_span_t *s, const char *key, const char *value)
{
    fl_attr_t *a = attr_slot(s, key);
    if (a) {
        a->type = FL_ATTR_STRING;
        a->v.s = strdup(value ? value : "");
    }
}

void fl_span_set_int(fl_span_t *s, const char *key, int64_t value)
{
    fl_attr_t *a = attr_slot(s, key);
    if (a) {
        a->type = FL_ATTR_INT;
        a->v.i = value;
    }
}

void fl_span_set_bool(fl_span_t *s, const char *key, bool value)
{
    fl_attr_t *a = attr_slot(s, key);
    if (a) {
        a->type = FL_ATTR_BOOL;
        a->v.b = value;
    }
}

void fl_span_set_double(fl_span_t *s, const char *key, double value)
{
    fl_attr_t *a = attr_slot(s, key);
    if (a) {
        a->type = FL_ATTR_DOUBLE;
        a->v.d = value;
    }
}

void fl_span_set_resend_count(fl_span_t *s, int64_t n)
{
    if (n > 0)
        fl_span_set_int(s, "http.request.resend_count", n);
}

void fl_span_add_event(fl_span_t *s, const char *name)
{
    fl_span_data_t *d = s->d;
    if (!d)
        return;
    if (d->nevents >= 128) {
        d->dropped_events++;
        return;
    }
    if (d->nevents == d->cap_events) {
        size_t cap = d->cap_events ? d->cap_events * 2 : 4;
        fl_span_event_t *e = realloc(d->events, cap * sizeof *e);
        if (!e)
            return;
        d->events = e;
        d->cap_events = cap;
    }
    char *copy = strdup(name ? name : "");
    if (copy)
        d->events[d->nevents++] = (fl_span_event_t){copy, now_unix_ns()};
}

void fl_span_set_status(fl_span_t *s, int code, const char *message)
{
    fl_span_data_t *d = s->d;
    if (!d)
        return;
    d->status_code = code;
    free(d->status_message);
    /* the specification: a description only goes with ERROR */
    d->status_message = code == FL_STATUS_ERROR && message ? strdup(message) : NULL;
}

void fl_span_end(fl_span_t *s)
{
    if (!s || !s->t)
        return; /* the OOM span */
    fl_tracer_t *t = s->t;
    fl_span_data_t *d = s->d;
    free(s);
    if (!d)
        return;
    d->end_ns = now_unix_ns();
    t->st.recorded++;
    if (t->shutting_down || t->st.queued >= t->cfg.max_queue) {
        t->st.queue_full++;
        fl_span_data_free(d);
        return;
    }
    d->next = NULL;
    if (t->tail)
        t->tail->next = d;
    else
        t->head = d;
    t->tail = d;
    t->st.queued++;
    if (t->st.queued >= t->cfg.max_batch && !t->batch_pending) {
        uv_timer_stop(&t->batch_timer); /* a full batch leaves now (from the loop) */
        uv_timer_start(&t->batch_timer, batch_timer_fired, 0, 0);
    } else
        arm_batch_timer(t);
}
