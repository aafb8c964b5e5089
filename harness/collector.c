/* The trace collector in scenarios: one OTLP/HTTP receiver per scenario on the harness
 * address 127.X.0.4, handed to every instance as OTEL_EXPORTER_OTLP_ENDPOINT. POST
 * /v1/traces takes protobuf or JSON, gzip or not; each accepted span goes on the timeline
 * (the scenario result's spans, which reports draw) and into the trace store: an index of
 * those spans by trace id and by service. Also the Lua side: C.traces behind t:traces. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "harness/luax.h"
#include "harness/otlp_decode.h"
#include "harness/scenario.h"
#include "lib/err.h"
#include "lib/httpd.h"

/* The harness address the collector listens on: 127.X.0.4 (.3 is the fake broker). */
#define COLLECTOR_HOST_INDEX 4
#define MAX_BODY (8u << 20)      /* as sent, compressed or not */
#define MAX_INFLATED (32u << 20) /* a gzip body, inflated */
#define MAX_REQ_SPANS 16384      /* spans in one request */
#define MAX_SPAN_ATTRS 32        /* attributes kept per span */
#define MAX_STORED_SPANS 200000  /* per scenario: past this, spans are rejected */

typedef struct {
    char id[33];
    size_t *spans; /* indices into the scenario result's spans */
    size_t n, cap;
} trace_t;

typedef struct {
    char *name;
    size_t *traces; /* trace indices, each once */
    size_t n, cap;
} svc_t;

struct fl_collector {
    fl_scenario_t *sc;
    fl_httpd_t *httpd;
    char host[32];
    int64_t start_unix_ns; /* the scenario's start on the wall clock */
    trace_t *traces;
    size_t ntraces, captraces;
    size_t *slots; /* open addressing on the trace id: trace index + 1, 0 when empty */
    size_t nslots;
    svc_t *svcs;
    size_t nsvcs;
    void (*closed)(fl_scenario_t *sc);
};

/* ------------------------------------------------------------ store ---- */

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * size);
    if (!np)
        return FL_ENOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

static uint64_t hash_id(const char *id)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *id; id++)
        h = (h ^ (uint8_t)*id) * 0x100000001b3ull;
    return h;
}

static int rehash(fl_collector_t *c)
{
    size_t n = c->nslots ? c->nslots * 2 : 256;
    size_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return FL_ENOMEM;
    for (size_t t = 0; t < c->ntraces; t++) {
        size_t k = hash_id(c->traces[t].id) & (n - 1);
        while (slots[k])
            k = (k + 1) & (n - 1);
        slots[k] = t + 1;
    }
    free(c->slots);
    c->slots = slots;
    c->nslots = n;
    return 0;
}

/* The trace with id, added empty when new; NULL on FL_ENOMEM. */
static trace_t *trace_get(fl_collector_t *c, const char *id, size_t *index)
{
    if ((c->ntraces + 1) * 2 > c->nslots && rehash(c))
        return NULL;
    size_t k = hash_id(id) & (c->nslots - 1);
    for (; c->slots[k]; k = (k + 1) & (c->nslots - 1))
        if (strcmp(c->traces[c->slots[k] - 1].id, id) == 0) {
            *index = c->slots[k] - 1;
            return &c->traces[*index];
        }
    if (grow((void **)&c->traces, &c->captraces, c->ntraces + 1, sizeof *c->traces))
        return NULL;
    trace_t *t = &c->traces[c->ntraces];
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    c->slots[k] = c->ntraces + 1;
    *index = c->ntraces++;
    return t;
}

static svc_t *svc_find(fl_collector_t *c, const char *name)
{
    for (size_t i = 0; i < c->nsvcs; i++)
        if (strcmp(c->svcs[i].name, name) == 0)
            return &c->svcs[i];
    return NULL;
}

static int svc_add_trace(fl_collector_t *c, const char *name, size_t trace)
{
    svc_t *s = svc_find(c, name);
    if (!s) {
        svc_t *ns = realloc(c->svcs, (c->nsvcs + 1) * sizeof *ns);
        if (!ns)
            return FL_ENOMEM;
        c->svcs = ns;
        s = &c->svcs[c->nsvcs];
        memset(s, 0, sizeof *s);
        if (!(s->name = strdup(name)))
            return FL_ENOMEM;
        c->nsvcs++;
    }
    for (size_t i = s->n; i-- > 0 && i + 8 >= s->n;) /* recent traces: the usual repeat */
        if (s->traces[i] == trace)
            return 0;
    for (size_t i = 0; i + 8 < s->n; i++)
        if (s->traces[i] == trace)
            return 0;
    if (grow((void **)&s->traces, &s->cap, s->n + 1, sizeof *s->traces))
        return FL_ENOMEM;
    s->traces[s->n++] = trace;
    return 0;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static char *dup_str(fl_otlp_str_t s)
{
    char *d = malloc(s.n + 1);
    if (d) {
        if (s.n) /* an absent field is {NULL, 0} */
            memcpy(d, s.p, s.n);
        d[s.n] = '\0';
    }
    return d;
}

static char *attr_text(const fl_otlp_attr_t *a)
{
    char num[64];
    switch (a->type) {
    case FL_OTLP_V_STRING:
        return dup_str(a->s);
    case FL_OTLP_V_BOOL:
        return strdup(a->i ? "true" : "false");
    case FL_OTLP_V_INT:
        snprintf(num, sizeof num, "%lld", (long long)a->i);
        return strdup(num);
    case FL_OTLP_V_DOUBLE:
        snprintf(num, sizeof num, "%.17g", a->d);
        return strdup(num);
    default:
        return strdup("");
    }
}

static uint64_t relative(const fl_collector_t *c, uint64_t unix_ns)
{
    return (int64_t)unix_ns > c->start_unix_ns ? (uint64_t)((int64_t)unix_ns - c->start_unix_ns)
                                               : 0;
}

/* One decoded span onto the timeline and into the index. */
static int store_span(fl_collector_t *c, const fl_otlp_out_t *out, const fl_otlp_span_t *os)
{
    fl_scenario_result_t *res = c->sc->res;
    fl_span_t s = {.kind = os->kind, .status = os->status};
    fl_attr_t attrs[MAX_SPAN_ATTRS];
    size_t nattrs = 0;
    int rc = FL_ENOMEM;
    hex(os->trace_id, 16, s.trace_id);
    hex(os->span_id, 8, s.span_id);
    if (os->has_parent)
        hex(os->parent_id, 8, s.parent_id);
    s.service = dup_str(os->service);
    s.instance = dup_str(os->instance);
    s.name = dup_str(os->name);
    s.status_message = dup_str(os->status_message);
    s.start_ns = relative(c, os->start_unix_ns);
    s.duration_ns = os->end_unix_ns > os->start_unix_ns ? os->end_unix_ns - os->start_unix_ns : 0;
    for (size_t i = 0; i < os->nattrs && nattrs < MAX_SPAN_ATTRS; i++) {
        const fl_otlp_attr_t *a = &out->attrs[os->attr0 + i];
        attrs[nattrs].key = dup_str(a->key);
        attrs[nattrs].value = attr_text(a);
        nattrs++;
        if (!attrs[nattrs - 1].key || !attrs[nattrs - 1].value)
            goto fail;
        const char *k = attrs[nattrs - 1].key;
        size_t kl = strlen(k);
        if (a->type == FL_OTLP_V_INT && a->i > 0 && a->i < 1000 &&
            (strcmp(k, "attempt") == 0 || (kl > 8 && strcmp(k + kl - 8, ".attempt") == 0)))
            s.attempt = (unsigned)a->i;
    }
    s.attrs = attrs;
    s.nattrs = nattrs;
    if (!s.service || !s.instance || !s.name || !s.status_message)
        goto fail;
    size_t ti, idx = res->nspans;
    trace_t *t = trace_get(c, s.trace_id, &ti);
    if (!t || grow((void **)&t->spans, &t->cap, t->n + 1, sizeof *t->spans) ||
        fl_timeline_span(res, &s) || svc_add_trace(c, s.service, ti))
        goto fail;
    t->spans[t->n++] = idx;
    rc = 0;
fail:
    free(s.service);
    free(s.instance);
    free(s.name);
    free(s.status_message);
    for (size_t i = 0; i < nattrs; i++) {
        free(attrs[i].key);
        free(attrs[i].value);
    }
    return rc;
}

/* ------------------------------------------------------------ receiver ---- */

/* Inflates a gzip (or zlib) body into *out; 0, FL_EMALFORMED, FL_ETOOBIG or FL_ENOMEM. */
static int gunzip(const char *in, size_t len, char **out, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 32 + MAX_WBITS) != Z_OK)
        return FL_ENOMEM;
    size_t cap = len * 4 + 1024, n = 0;
    char *buf = NULL;
    int rc = 0, zr = Z_OK;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    while (zr != Z_STREAM_END) {
        if (cap > MAX_INFLATED)
            cap = MAX_INFLATED;
        char *nb = realloc(buf, cap);
        if (!nb) {
            rc = FL_ENOMEM;
            goto fail;
        }
        buf = nb;
        z.next_out = (Bytef *)buf + n;
        z.avail_out = (uInt)(cap - n);
        zr = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = FL_EMALFORMED;
            goto fail;
        }
        if (z.avail_out > 0) { /* it wanted input and there is none: truncated */
            rc = FL_EMALFORMED;
            goto fail;
        }
        if (cap >= MAX_INFLATED) {
            rc = FL_ETOOBIG;
            goto fail;
        }
        cap *= 2;
    }
    inflateEnd(&z);
    *out = buf;
    *outlen = n;
    return 0;
fail:
    inflateEnd(&z);
    free(buf);
    return rc;
}

/* "application/json; charset=utf-8" is application/json. */
static int media_is(const char *value, const char *type)
{
    size_t n = strlen(type);
    if (!value)
        return 0;
    while (*value == ' ')
        value++;
    return strncasecmp(value, type, n) == 0 &&
           (value[n] == '\0' || value[n] == ';' || value[n] == ' ');
}

static void refuse(fl_collector_t *c, fl_httpd_exchange_t *ex, int status, int json,
                   const char *reason)
{
    fl_timeline_add(&c->sc->tl, FL_EV_NOTE, 1, "collector", NULL, "%d from %s: %s", status,
                    fl_httpd_exchange_peer(ex), reason);
    /* a google.rpc.Status: code 3 (INVALID_ARGUMENT), message */
    if (json) {
        char body[512];
        json_t *m = json_string(reason);
        char *q = m ? json_dumps(m, JSON_ENCODE_ANY) : NULL;
        json_decref(m);
        int w = snprintf(body, sizeof body, "{\"code\":3,\"message\":%s}", q ? q : "\"\"");
        free(q);
        fl_httpd_respond(ex, status, NULL, "application/json", body,
                         w > 0 && (size_t)w < sizeof body ? (size_t)w : 0);
        return;
    }
    uint8_t body[256];
    size_t n = strlen(reason) > 200 ? 200 : strlen(reason);
    body[0] = 0x08;
    body[1] = 3;
    body[2] = 0x12;
    body[3] = (uint8_t)(n > 127 ? 127 : n);
    memcpy(body + 4, reason, body[3]);
    fl_httpd_respond(ex, status, NULL, "application/x-protobuf", body, 4u + body[3]);
}

static void handle(fl_httpd_exchange_t *ex, void *arg)
{
    fl_collector_t *c = arg;
    const char *ctype = fl_httpd_header(ex, "Content-Type");
    int json = media_is(ctype, "application/json");
    if (strcmp(fl_httpd_path(ex), "/v1/traces") != 0) {
        fl_httpd_respond(ex, 404, NULL, "text/plain", "not found: only /v1/traces here\n", 32);
        return;
    }
    if (strcmp(fl_httpd_method(ex), "POST") != 0) {
        fl_httpd_respond(ex, 405, "Allow: POST\r\n", "text/plain", "POST only\n", 10);
        return;
    }
    if (!json && !media_is(ctype, "application/x-protobuf")) {
        refuse(c, ex, 415, 0, "Content-Type must be application/x-protobuf or application/json");
        return;
    }
    size_t len;
    const char *body = fl_httpd_body(ex, &len);
    char *inflated = NULL;
    const char *enc = fl_httpd_header(ex, "Content-Encoding");
    if (enc && media_is(enc, "gzip")) {
        int rc = gunzip(body, len, &inflated, &len);
        if (rc) {
            refuse(c, ex,
                   rc == FL_ETOOBIG  ? 413
                   : rc == FL_ENOMEM ? 500
                                     : 400,
                   json,
                   rc == FL_ETOOBIG  ? "gzip body inflates past 32 MiB"
                   : rc == FL_ENOMEM ? "out of memory"
                                     : "bad gzip body");
            return;
        }
        body = inflated;
    } else if (enc && !media_is(enc, "identity")) {
        refuse(c, ex, 415, json, "Content-Encoding must be gzip or identity");
        return;
    }
    size_t maxspans = len / 8 + 1 < MAX_REQ_SPANS ? len / 8 + 1 : MAX_REQ_SPANS;
    size_t maxattrs = maxspans * 8;
    fl_otlp_out_t out = {.maxspans = maxspans, .maxattrs = maxattrs};
    out.spans = malloc(maxspans * sizeof *out.spans);
    out.attrs = malloc(maxattrs * sizeof *out.attrs);
    void *keep = NULL;
    int rc = FL_ENOMEM;
    if (out.spans && out.attrs)
        rc =
            json ? fl_otlp_decode_json(body, len, &out, &keep) : fl_otlp_decode_pb(body, len, &out);
    if (rc) {
        refuse(c, ex, rc == FL_ENOMEM ? 500 : 400, json,
               rc == FL_ENOMEM ? "out of memory"
               : out.reason    ? out.reason
                               : "malformed");
        goto done;
    }
    size_t rejected = out.rejected;
    const char *why = out.reason;
    for (size_t i = 0; i < out.nspans; i++) {
        if (c->sc->res->nspans >= MAX_STORED_SPANS) {
            rejected += out.nspans - i;
            why = "the scenario's trace store is full";
            break;
        }
        if (store_span(c, &out, &out.spans[i])) {
            rejected++;
            why = "out of memory";
        }
    }
    if (rejected)
        fl_timeline_add(&c->sc->tl, FL_EV_NOTE, 1, "collector", NULL,
                        "rejected %zu of %zu spans from %s: %s", rejected,
                        out.nspans + out.rejected, fl_httpd_exchange_peer(ex), why ? why : "");
    char reply[512];
    size_t n =
        json ? fl_otlp_response_json(rejected, rejected ? why : NULL, reply, sizeof reply)
             : fl_otlp_response_pb(rejected, rejected ? why : NULL, (uint8_t *)reply, sizeof reply);
    fl_httpd_respond(ex, 200, NULL, json ? "application/json" : "application/x-protobuf", reply, n);
done:
    if (keep)
        fl_otlp_json_free(keep);
    free(out.spans);
    free(out.attrs);
    free(inflated);
}

int fl_sc_collector_open(fl_scenario_t *sc)
{
    if (sc->ninst == 0)
        return 0;
    fl_collector_t *c = calloc(1, sizeof *c);
    if (!c)
        return FL_ENOMEM;
    c->sc = sc;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    c->start_unix_ns =
        (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - (int64_t)(uv_hrtime() - sc->start_ns);
    fl_addr_harness(&sc->e->run->addr, COLLECTOR_HOST_INDEX, c->host, sizeof c->host);
    fl_httpd_config_t cfg = {.handler = handle, .arg = c, .max_body = MAX_BODY};
    int rc = fl_httpd_start(sc->e->run->loop, c->host, 0, &cfg, &c->httpd);
    sc->collector = c; /* closed with the rest, even when it failed to listen */
    return rc;
}

void fl_sc_collector_endpoint(fl_scenario_t *sc, char *out, size_t n)
{
    out[0] = '\0';
    if (sc->collector && sc->collector->httpd && fl_httpd_port(sc->collector->httpd) > 0)
        snprintf(out, n, "http://%s:%d", sc->collector->host, fl_httpd_port(sc->collector->httpd));
}

static void free_collector(fl_collector_t *c)
{
    for (size_t i = 0; i < c->ntraces; i++)
        free(c->traces[i].spans);
    free(c->traces);
    free(c->slots);
    for (size_t i = 0; i < c->nsvcs; i++) {
        free(c->svcs[i].name);
        free(c->svcs[i].traces);
    }
    free(c->svcs);
    free(c);
}

static void httpd_closed(fl_httpd_t *h, void *arg)
{
    (void)h;
    fl_collector_t *c = arg;
    fl_scenario_t *sc = c->sc;
    void (*cb)(fl_scenario_t *) = c->closed;
    free_collector(c);
    sc->collector = NULL;
    cb(sc);
}

void fl_sc_collector_close(fl_scenario_t *sc, void (*cb)(fl_scenario_t *sc))
{
    fl_collector_t *c = sc->collector;
    if (!c || !c->httpd) {
        if (c)
            free_collector(c);
        sc->collector = NULL;
        cb(sc);
        return;
    }
    c->closed = cb;
    if (fl_httpd_close(c->httpd, httpd_closed, c) != 0) {
        /* already closing: cannot happen, one close per scenario */
        free_collector(c);
        sc->collector = NULL;
        cb(sc);
    }
}

size_t fl_sc_collector_ntraces(fl_scenario_t *sc)
{
    return sc->collector ? sc->collector->ntraces : 0;
}

const char *fl_sc_collector_trace(fl_scenario_t *sc, size_t i, const size_t **spans, size_t *n)
{
    const trace_t *t = &sc->collector->traces[i];
    *spans = t->spans;
    *n = t->n;
    return t->id;
}

/* ------------------------------------------------------------ Lua ---- */

static void push_span(lua_State *L, const fl_span_t *s)
{
    lua_createtable(L, 0, 12);
    lua_pushstring(L, s->trace_id);
    lua_setfield(L, -2, "trace_id");
    lua_pushstring(L, s->span_id);
    lua_setfield(L, -2, "span_id");
    if (s->parent_id[0]) {
        lua_pushstring(L, s->parent_id);
        lua_setfield(L, -2, "parent_id");
    }
    lua_pushstring(L, s->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, fl_span_kind_name(s->kind));
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, s->service);
    lua_setfield(L, -2, "service");
    lua_pushstring(L, s->instance);
    lua_setfield(L, -2, "instance");
    lua_pushnumber(L, s->start_ns / 1e9);
    lua_setfield(L, -2, "start");
    lua_pushnumber(L, s->duration_ns / 1e9);
    lua_setfield(L, -2, "duration");
    lua_pushstring(L, fl_span_status_name(s->status));
    lua_setfield(L, -2, "status");
    lua_pushstring(L, s->status_message);
    lua_setfield(L, -2, "status_message");
    lua_createtable(L, 0, (int)s->nattrs);
    for (size_t i = 0; i < s->nattrs; i++) {
        lua_pushstring(L, s->attrs[i].value);
        lua_setfield(L, -2, s->attrs[i].key);
    }
    lua_setfield(L, -2, "attributes");
}

static int trace_matches(const fl_collector_t *c, const trace_t *t, const char *service,
                         const char *name, uint64_t since_ns)
{
    for (size_t i = 0; i < t->n; i++) {
        const fl_span_t *s = &c->sc->res->spans[t->spans[i]];
        if ((!service || strcmp(s->service, service) == 0) &&
            (!name || strcmp(s->name, name) == 0) && s->start_ns >= since_ns)
            return 1;
    }
    return 0;
}

static void push_trace(lua_State *L, const fl_collector_t *c, const trace_t *t)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, t->id);
    lua_setfield(L, -2, "trace_id");
    lua_createtable(L, (int)t->n, 0);
    for (size_t i = 0; i < t->n; i++) {
        push_span(L, &c->sc->res->spans[t->spans[i]]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "spans");
}

/* C.traces(t, service|nil, name|nil, since_seconds) → the traces with a span of that service
 * and name starting at or after since, each { trace_id, spans = flat list }, in arrival
 * order of their first span. The arguments are checked by the prelude. */
static int c_traces(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    const char *service = luaL_optstring(L, 2, NULL), *name = luaL_optstring(L, 3, NULL);
    double since = luaL_optnumber(L, 4, 0);
    uint64_t since_ns = since > 0 ? (uint64_t)(since * 1e9) : 0;
    fl_collector_t *c = sc->collector;
    if (service && !fl_topology_find(&sc->e->topo, service) && !(c && svc_find(c, service))) {
        const char *names[FL_MAX_SERVICES + 1] = {NULL};
        for (int i = 0; i < sc->e->topo.nservices && i < FL_MAX_SERVICES; i++)
            names[i] = sc->e->topo.services[i].name;
        const char *sug = fl_lua_suggest(service, names);
        fl_lua_usage(L, "t:traces: no service named '%s' in this topology%s%s%s", service,
                     sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
    }
    lua_newtable(L);
    if (!c)
        return 1;
    lua_Integer k = 0;
    if (service) {
        svc_t *s = svc_find(c, service);
        for (size_t i = 0; s && i < s->n; i++) {
            const trace_t *t = &c->traces[s->traces[i]];
            if (!trace_matches(c, t, service, name, since_ns))
                continue;
            push_trace(L, c, t);
            lua_rawseti(L, -2, ++k);
        }
        return 1;
    }
    for (size_t i = 0; i < c->ntraces; i++) {
        if (!trace_matches(c, &c->traces[i], NULL, name, since_ns))
            continue;
        push_trace(L, c, &c->traces[i]);
        lua_rawseti(L, -2, ++k);
    }
    return 1;
}

/* C.collector(t) → the endpoint URL handed to instances */
static int c_collector(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    char url[96];
    fl_sc_collector_endpoint(sc, url, sizeof url);
    lua_pushstring(L, url);
    return 1;
}

void fl_sc_collector_register(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"traces", c_traces},
        {"collector", c_collector},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
}
