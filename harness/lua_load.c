/* Load in scenarios: t:load{...} (workload.h's open-loop generator) and its handle
 * (:wait, :stop, :stats, :results), and the single calls t:http{...} and t:grpc{...} (a load
 * of one request each, so they share its connections code, error kinds and target choice).
 * Requests come from a Lua table or from a Lua function called from the loop for each
 * request; an error in that function ends the scenario as the same error in the scenario
 * itself would (fl_sc_abort), naming the user's line. Every load is stopped when the
 * scenario's verdict is in and closed at teardown, whatever happened. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/luax.h"
#include "harness/scenario.h"
#include "harness/workload.h"
#include "lib/buf.h"
#include "lib/dur.h"
#include "lib/err.h"

#define LOAD_MT "faultline.load"
#define DEFAULT_CONCURRENCY 64
#define MAX_CONCURRENCY 10000
#define MAX_RATE 1e6
#define DEFAULT_TIMEOUT_NS (5ull * 1000000000)
#define MAX_KEEP_BODY (1u << 20) /* of each kept answer */

typedef struct {
    uint64_t i;
    int status;
    char error[32]; /* "" when ok */
    char *body;
    size_t body_len;
    char *message;
    uint64_t latency_ns;
} kept_t;

typedef struct fl_sc_workload workload_t;

typedef struct entry {
    workload_t *w;
    fl_load_t *ld;
    struct entry *next; /* single calls: the list of those in flight */
    int fn_ref;         /* the request function, or LUA_NOREF */
    fl_load_proto_t proto;
    fl_load_msg_t *first; /* the function's request 1, asked for at t:load */
    char name[128], where[256];
    size_t series; /* in res->series; SIZE_MAX: none */
    int keep, done, single, bounded;
    kept_t *kept;
    size_t nkept, capkept;
    fl_buf_t headers; /* single HTTP calls: the answer's headers, "name\0value\0"... */
} entry_t;

struct fl_sc_workload {
    fl_scenario_t *sc;
    entry_t **loads; /* by handle index */
    size_t nloads;
    entry_t *calls; /* single calls in flight */
    size_t open;    /* loads not closed yet */
    size_t rr;      /* single calls rotate over the instances of a service */
    int closing;
    void (*closed)(fl_scenario_t *sc);
};

typedef struct {
    fl_engine_t *e;
    unsigned gen;
    size_t idx;
} load_box_t;

static fl_engine_t *engine_of(lua_State *L)
{
    return *(fl_engine_t **)lua_getextraspace(L);
}

static workload_t *workload_of(fl_scenario_t *sc)
{
    if (!sc->workload) {
        sc->workload = calloc(1, sizeof(workload_t));
        if (sc->workload)
            sc->workload->sc = sc;
    }
    return sc->workload;
}

static void free_entry(lua_State *L, entry_t *en)
{
    if (en->fn_ref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, en->fn_ref);
    fl_load_msg_unref(en->first);
    for (size_t i = 0; i < en->nkept; i++) {
        free(en->kept[i].body);
        free(en->kept[i].message);
    }
    free(en->kept);
    fl_buf_free(&en->headers);
    free(en);
}

/* ------------------------------------------------------------ targets (`to`) ---- */

static int inst_up(void *arg)
{
    return ((fl_instance_t *)arg)->state == FL_INST_UP;
}

static void add_target(lua_State *L, fl_buf_t *tg, fl_instance_t *inst)
{
    fl_load_target_t t = {.port = inst->port, .up = inst_up, .up_arg = inst};
    snprintf(t.host, sizeof t.host, "%s", inst->host);
    if (fl_buf_append(tg, &t, sizeof t))
        luaL_error(L, "out of memory");
}

/* One element of `to` at idx: a service name, an instance name or an instance handle. */
static void add_to(lua_State *L, fl_scenario_t *sc, int idx, const char *what, fl_buf_t *tg)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *name = lua_tostring(L, idx);
        size_t n = 0;
        for (size_t i = 0; i < sc->ninst; i++)
            if (strcmp(sc->inst[i].service, name) == 0) {
                add_target(L, tg, &sc->inst[i]);
                n++;
            }
        if (n)
            return;
        for (size_t i = 0; i < sc->ninst; i++)
            if (strcmp(sc->inst[i].name, name) == 0) {
                add_target(L, tg, &sc->inst[i]);
                return;
            }
        const char **names = calloc((size_t)sc->e->topo.nservices + sc->ninst + 1, sizeof *names);
        size_t k = 0;
        for (int s = 0; names && s < sc->e->topo.nservices; s++)
            names[k++] = sc->e->topo.services[s].name;
        for (size_t i = 0; names && i < sc->ninst; i++)
            names[k++] = sc->inst[i].name;
        const char *sug = names ? fl_lua_suggest(name, names) : NULL;
        char hint[160] = "";
        if (sug)
            snprintf(hint, sizeof hint, " (did you mean '%s'?)", sug);
        free(names);
        fl_lua_usage(L, "bad %s: no service or instance named '%s'%s", what, name, hint);
    }
    add_target(L, tg, fl_sc_check_inst(L, idx, what));
}

/* `to` at idx: one of the above or a list of them. Returns the targets (malloc'd) and their
 * count; desc gets a label ("gateway", "users-1,users-2"). */
static fl_load_target_t *check_to(lua_State *L, fl_scenario_t *sc, int idx, const char *what,
                                  size_t *n, char *desc, size_t desclen)
{
    fl_buf_t tg = FL_BUF_INIT;
    idx = lua_absindex(L, idx);
    if (lua_isnil(L, idx))
        fl_lua_usage(L, "%s is missing (a service, an instance, or a list of them)", what);
    if (lua_type(L, idx) == LUA_TTABLE && !luaL_testudata(L, idx, "faultline.instance")) {
        lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
        if (len == 0)
            fl_lua_usage(L, "bad %s: 'to' is an empty list", what);
        desc[0] = '\0';
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, idx, i);
            add_to(L, sc, -1, what, &tg);
            size_t dl = strlen(desc);
            snprintf(desc + dl, desclen - dl, "%s%s", i > 1 ? "," : "",
                     luaL_tolstring(L, -1, NULL));
            lua_pop(L, 2);
        }
    } else {
        add_to(L, sc, idx, what, &tg);
        snprintf(desc, desclen, "%s", luaL_tolstring(L, idx, NULL));
        lua_pop(L, 1);
    }
    *n = tg.len / sizeof(fl_load_target_t);
    return (fl_load_target_t *)tg.data;
}

/* ------------------------------------------------------------ requests ---- */

static const char *const http_keys[] = {"method", "path", "body", "headers", "ok", NULL};
static const char *const grpc_keys[] = {"grpc", "message", "metadata", "ok", NULL};
static const char *const request_keys[] = {"method", "path",    "body",     "headers", "ok",
                                           "grpc",   "message", "metadata", NULL};

static int bad(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* A string field of the request at idx (absent: def). */
static int opt_str(lua_State *L, int idx, const char *key, const char *def, const char **out,
                   size_t *len, char *err, size_t errlen)
{
    lua_getfield(L, idx, key);
    if (lua_isnil(L, -1)) {
        *out = def;
        if (len)
            *len = def ? strlen(def) : 0;
        return 0; /* the nil stays on the stack: callers pop one per field */
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        return bad(err, errlen, "request %s: expected a string, got %s", key,
                   fl_lua_typename(L, -1));
    *out = lua_tolstring(L, -1, len);
    return 0;
}

/* A table of name = value (strings or numbers) at field key into b: "Name: value\r\n" lines
 * (HTTP) or "name\0value\0" pairs (gRPC metadata, names lower-cased). */
static int name_values(lua_State *L, int idx, const char *key, int grpc, fl_buf_t *b, char *err,
                       size_t errlen)
{
    lua_getfield(L, idx, key);
    if (lua_isnil(L, -1))
        return 0;
    if (!lua_istable(L, -1))
        return bad(err, errlen, "request %s: expected a table like { [\"x-id\"] = \"1\" }, got %s",
                   key, fl_lua_typename(L, -1));
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING || !fl_load_is_token(lua_tostring(L, -2))) {
            lua_pop(L, 2);
            return bad(err, errlen,
                       "request %s: names must be header names (letters, digits, "
                       "'-'), got %s",
                       key, lua_type(L, -2) == LUA_TSTRING ? "a bad name" : "a non-string key");
        }
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
            const char *k = lua_tostring(L, -2);
            int r = bad(err, errlen, "request %s '%s': expected a string, got %s", key, k,
                        fl_lua_typename(L, -1));
            lua_pop(L, 2);
            return r;
        }
        const char *k = lua_tostring(L, -2);
        size_t vlen;
        lua_pushvalue(L, -1); /* tostring on a copy: a number key stays a number for lua_next */
        const char *v = lua_tolstring(L, -1, &vlen);
        if (strpbrk(v, "\r\n") || strlen(v) != vlen) {
            lua_pop(L, 3);
            return bad(err, errlen, "request %s '%s': a value cannot hold CR, LF or NUL", key, k);
        }
        if (grpc) {
            for (const char *p = k; *p; p++) {
                char ch = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
                fl_buf_append(b, &ch, 1);
            }
            fl_buf_append(b, "", 1);
            fl_buf_append(b, v, vlen + 1);
        } else {
            fl_buf_printf(b, "%s: %s\r\n", k, v);
        }
        lua_pop(L, 2);
    }
    return 0;
}

static int ok_list(lua_State *L, int idx, int *ok, size_t max, size_t *n, char *err, size_t errlen)
{
    lua_getfield(L, idx, "ok");
    *n = 0;
    if (lua_isnil(L, -1))
        return 0;
    if (!lua_istable(L, -1) || lua_rawlen(L, -1) == 0)
        return bad(err, errlen, "request ok: expected a list of statuses like { 200, 201 }, got %s",
                   fl_lua_typename(L, -1));
    size_t len = lua_rawlen(L, -1);
    for (size_t i = 1; i <= len && *n < max; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i);
        int isint = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        lua_pop(L, 1);
        if (!isint || v < 0 || v > 999)
            return bad(err, errlen, "request ok: item %zu is not a status (0..999)", i);
        ok[(*n)++] = (int)v;
    }
    return 0;
}

/* The request table at idx as a ready message; 0, or -1 with err set (nothing raised). */
static int request_from_lua(lua_State *L, int idx, fl_load_msg_t **out, char *err, size_t errlen)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        return bad(err, errlen,
                   "expected a request table like { method = \"GET\", path = \"/\" } or "
                   "{ grpc = \"/pkg.Svc/Method\", message = bytes }, got %s",
                   fl_lua_typename(L, idx));
    int top = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int known = 0;
        for (size_t i = 0; k && request_keys[i] && !known; i++)
            known = strcmp(k, request_keys[i]) == 0;
        if (!known) {
            const char *sug = k ? fl_lua_suggest(k, request_keys) : NULL;
            int r =
                k ? (sug ? bad(err, errlen, "unknown request key '%s' (did you mean '%s'?)", k, sug)
                         : bad(err, errlen,
                               "unknown request key '%s' (known: method, path, body, "
                               "headers, ok; for gRPC: grpc, message, metadata, ok)",
                               k))
                  : bad(err, errlen, "request keys must be names, got %s", fl_lua_typename(L, -1));
            lua_settop(L, top);
            return r;
        }
    }
    lua_getfield(L, idx, "grpc");
    int grpc = !lua_isnil(L, -1);
    lua_pop(L, 1);
    const char *const *other = grpc ? http_keys : grpc_keys;
    for (size_t i = 0; other[i]; i++) {
        if (strcmp(other[i], "ok") == 0)
            continue;
        lua_getfield(L, idx, other[i]);
        int present = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (present)
            return bad(err, errlen, "request key '%s' does not go with %s", other[i],
                       grpc ? "a gRPC request (grpc =)" : "an HTTP request (use grpc = for gRPC)");
    }
    fl_load_req_t req = {.proto = grpc ? FL_LOAD_GRPC : FL_LOAD_HTTP};
    fl_buf_t extra = FL_BUF_INIT;
    int ok[32];
    int rc = -1;
    if (ok_list(L, idx, ok, 32, &req.nok, err, errlen))
        goto done;
    req.ok = ok;
    if (grpc) {
        if (opt_str(L, idx, "grpc", NULL, &req.grpc, NULL, err, errlen) ||
            opt_str(L, idx, "message", "", (const char **)&req.body, &req.body_len, err, errlen) ||
            name_values(L, idx, "metadata", 1, &extra, err, errlen))
            goto done;
        if (req.grpc[0] != '/' || !strchr(req.grpc + 1, '/') || strpbrk(req.grpc, " \r\n")) {
            bad(err, errlen,
                "request grpc: expected a method path like \"/shop.Users/GetUser\", "
                "got \"%s\"",
                req.grpc);
            goto done;
        }
        req.meta = extra.data;
        req.meta_len = extra.len;
    } else {
        if (opt_str(L, idx, "method", "GET", &req.method, NULL, err, errlen) ||
            opt_str(L, idx, "path", "/", &req.path, NULL, err, errlen) ||
            opt_str(L, idx, "body", NULL, (const char **)&req.body, &req.body_len, err, errlen) ||
            name_values(L, idx, "headers", 0, &extra, err, errlen))
            goto done;
        req.headers = extra.data;
    }
    int r = fl_load_msg_new(&req, out);
    if (r == FL_EINVAL)
        bad(err, errlen,
            "request method \"%s\" or path \"%s\" is not valid HTTP (a method is a "
            "word, a path starts with '/' and has no spaces)",
            req.method, req.path);
    else if (r)
        bad(err, errlen, "%s", fl_strerror(r));
    else
        rc = 0;
done:
    fl_buf_free(&extra);
    lua_settop(L, top);
    return rc;
}

/* ------------------------------------------------------------ load callbacks ---- */

static int msgh(lua_State *L)
{
    const char *m, *w;
    if (fl_lua_error_kind(L, 1, &m, &w))
        return 1;
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : luaL_tolstring(L, 1, NULL), 1);
    return 1;
}

/* "file.lua:12: message" → where "file.lua:12", or def. */
static void where_of(const char *msg, const char *def, char *out, size_t n)
{
    const char *p = msg ? strstr(msg, ".lua:") : NULL;
    if (p) {
        const char *q = p + 5;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q > p + 5 && *q == ':') {
            snprintf(out, n, "%.*s", (int)(q - msg), msg);
            return;
        }
    }
    snprintf(out, n, "%s", def);
}

static void abort_with(entry_t *en, fl_verdict_t v, const char *where, const char *msg,
                       const char *tb)
{
    fl_scenario_t *sc = en->w->sc;
    fl_load_stop(en->ld);
    fl_sc_abort(sc, v, where, msg, tb);
}

/* The request function raised (the error object, or its traceback string, is on top). */
static void function_failed(entry_t *en, lua_State *L, uint64_t i)
{
    const char *m = NULL, *w = NULL;
    const char *kind = fl_lua_error_kind(L, -1, &m, &w);
    char msg[1024], where[256];
    if (kind) {
        snprintf(msg, sizeof msg, "%s (in the request function of t:load at %s, request %llu)",
                 m ? m : "error", en->where, (unsigned long long)i + 1);
        fl_verdict_t v = strcmp(kind, FL_LUA_USAGE_MT) == 0 ? FL_VERDICT_USAGE : FL_VERDICT_FAIL;
        abort_with(en, v, w && *w ? w : en->where, msg, NULL);
        return;
    }
    const char *tb = lua_tostring(L, -1);
    char first[512];
    snprintf(first, sizeof first, "%s", tb ? tb : "error");
    char *nl = strchr(first, '\n');
    if (nl)
        *nl = '\0';
    snprintf(msg, sizeof msg, "%s (in the request function of t:load at %s, request %llu)", first,
             en->where, (unsigned long long)i + 1);
    where_of(first, en->where, where, sizeof where);
    abort_with(en, FL_VERDICT_ERROR, where, msg, tb);
}

/* Calls the request function for request i (0-based) on L; 0 and the message, or -1 with
 * the scenario aborted. */
static int call_request_fn(entry_t *en, lua_State *L, uint64_t i, fl_load_msg_t **out)
{
    int top = lua_gettop(L);
    lua_pushcfunction(L, msgh);
    lua_rawgeti(L, LUA_REGISTRYINDEX, en->fn_ref);
    lua_pushinteger(L, (lua_Integer)i + 1);
    if (lua_pcall(L, 1, 1, top + 1) != LUA_OK) {
        function_failed(en, L, i);
        lua_settop(L, top);
        return -1;
    }
    char err[600], msg[900];
    int rc = 0;
    if (!lua_istable(L, -1)) {
        snprintf(msg, sizeof msg,
                 "t:load request function returned %s for request %llu: expected a request "
                 "table like { method = \"GET\", path = \"/\" }",
                 fl_lua_typename(L, -1), (unsigned long long)i + 1);
        rc = -1;
    } else if (request_from_lua(L, -1, out, err, sizeof err)) {
        snprintf(msg, sizeof msg, "t:load request function, request %llu: %s",
                 (unsigned long long)i + 1, err);
        rc = -1;
    } else if (i > 0 && fl_load_msg_proto(*out) != en->proto) {
        snprintf(msg, sizeof msg,
                 "t:load request function: request %llu is %s but request 1 was %s (one load "
                 "speaks one protocol)",
                 (unsigned long long)i + 1, en->proto == FL_LOAD_HTTP ? "gRPC" : "HTTP",
                 en->proto == FL_LOAD_HTTP ? "HTTP" : "gRPC");
        fl_load_msg_unref(*out);
        *out = NULL;
        rc = -1;
    }
    lua_settop(L, top);
    if (rc)
        abort_with(en, FL_VERDICT_USAGE, en->where, msg, NULL);
    return rc;
}

static int next_request(void *arg, uint64_t i, fl_load_msg_t **out)
{
    entry_t *en = arg;
    if (en->first) {
        *out = en->first;
        en->first = NULL;
        return 0;
    }
    fl_scenario_t *sc = en->w->sc;
    if (sc->phase != SC_RUNNING)
        return -1;
    return call_request_fn(en, sc->e->L, i, out);
}

static void on_result(void *arg, const fl_load_result_t *r)
{
    entry_t *en = arg;
    if (!en->keep || r->kind == FL_LOAD_CANCELLED)
        return;
    if (en->nkept == en->capkept) {
        size_t cap = en->capkept ? en->capkept * 2 : 64;
        kept_t *k = realloc(en->kept, cap * sizeof *k);
        if (!k)
            return;
        en->kept = k;
        en->capkept = cap;
    }
    kept_t *k = &en->kept[en->nkept];
    memset(k, 0, sizeof *k);
    k->i = r->i;
    k->status = r->status;
    if (r->error)
        snprintf(k->error, sizeof k->error, "%s", r->error);
    size_t blen = r->body_len > MAX_KEEP_BODY ? MAX_KEEP_BODY : r->body_len;
    k->body = malloc(blen + 1);
    k->message = strdup(r->message ? r->message : "");
    if (!k->body || !k->message) {
        free(k->body);
        free(k->message);
        return;
    }
    if (blen)
        memcpy(k->body, r->body, blen);
    k->body[blen] = '\0';
    k->body_len = blen;
    k->latency_ns = r->latency_ns;
    for (size_t h = 0; en->single && h < r->nheaders; h++) {
        const fl_http_header_t *hd = &r->headers[h];
        for (size_t c = 0; c < hd->name_len; c++) {
            char ch = hd->name[c];
            ch = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            fl_buf_append(&en->headers, &ch, 1);
        }
        fl_buf_append(&en->headers, "", 1);
        fl_buf_append(&en->headers, hd->value, hd->value_len);
        fl_buf_append(&en->headers, "", 1);
    }
    en->nkept++;
}

static void on_sample(void *arg, const fl_sample_t *s)
{
    entry_t *en = arg;
    fl_scenario_result_t *res = en->w->sc->res;
    if (en->series < res->nseries)
        fl_series_push(&res->series[en->series], s);
}

/* "1200 sent, 1195 ok, 5 failed (refused 5), p50 1.2ms p99 4ms max 10ms, 200.0/s" */
static void summary(entry_t *en, char *out, size_t n)
{
    fl_load_stats_t st;
    fl_load_stats(en->ld, &st);
    fl_buf_t b = FL_BUF_INIT;
    fl_buf_printf(&b, "%llu sent, %llu ok, %llu failed", (unsigned long long)st.sent,
                  (unsigned long long)st.ok, (unsigned long long)st.errors);
    const char *sep = " (";
    char name[32];
    for (int k = 1; k < FL_LOAD_NKINDS; k++) {
        if (k == FL_LOAD_STATUS || k == FL_LOAD_CANCELLED || !st.by_kind[k])
            continue;
        fl_load_kind_name((fl_load_kind_t)k, 0, en->proto, name, sizeof name);
        fl_buf_printf(&b, "%s%s %llu", sep, name, (unsigned long long)st.by_kind[k]);
        sep = ", ";
    }
    int nst = en->proto == FL_LOAD_GRPC ? 17 : 1000;
    const uint64_t *counts = en->proto == FL_LOAD_GRPC ? st.grpc_code : st.http_status;
    for (int s = 0; s < nst; s++) {
        if (!counts[s])
            continue;
        fl_load_kind_name(FL_LOAD_STATUS, s, en->proto, name, sizeof name);
        fl_buf_printf(&b, "%s%s %llu", sep, name, (unsigned long long)counts[s]);
        sep = ", ";
    }
    if (sep[0] == ',')
        fl_buf_puts(&b, ")");
    if (st.cancelled || st.unsent)
        fl_buf_printf(&b, ", %llu cancelled, %llu never sent", (unsigned long long)st.cancelled,
                      (unsigned long long)st.unsent);
    char p50[32], p99[32], max[32];
    fl_dur_format(fl_hdr_quantile(st.latency, 0.5), p50, sizeof p50);
    fl_dur_format(fl_hdr_quantile(st.latency, 0.99), p99, sizeof p99);
    fl_dur_format(st.latency->total ? st.latency->max : 0, max, sizeof max);
    fl_buf_printf(&b, "; p50 %s, p99 %s, max %s; %.1f/s", p50, p99, max, st.rate);
    snprintf(out, n, "%s", b.data ? b.data : "");
    fl_buf_free(&b);
}

static void on_done(void *arg)
{
    entry_t *en = arg;
    en->done = 1;
    fl_scenario_t *sc = en->w->sc;
    if (!en->single) {
        char text[1024];
        summary(en, text, sizeof text);
        fl_timeline_add(&sc->tl, FL_EV_NOTE, 1, en->name, en->where, "load ended: %s", text);
    }
    fl_sc_wake(sc, en);
}

/* ------------------------------------------------------------ starting ---- */

typedef struct {
    fl_load_proto_t proto;
    double rate;
    uint64_t duration_ns, count, timeout_ns;
    unsigned concurrency;
    fl_load_target_t *targets;
    size_t ntargets;
    fl_load_msg_t *msg; /* a table request; NULL with a function */
    int want_headers;
} start_t;

/* Starts en's load; s's targets and message are released. 0 or an FL_E code. */
static int start_entry(fl_scenario_t *sc, entry_t *en, start_t *s)
{
    workload_t *w = en->w;
    fl_load_opts_t o = {
        .proto = s->proto,
        .targets = s->targets,
        .ntargets = s->ntargets,
        .rate = s->rate,
        .duration_ns = s->duration_ns,
        .count = s->count,
        .concurrency = s->concurrency,
        .timeout_ns = s->timeout_ns,
        .next = en->fn_ref != LUA_NOREF ? next_request : NULL,
        .next_arg = en,
        .msg = s->msg,
        .on_result = en->keep ? on_result : NULL,
        .want_headers = s->want_headers,
        .on_done = on_done,
        .arg = en,
        .on_sample = en->series != SIZE_MAX ? on_sample : NULL,
        .base_ns = sc->start_ns,
    };
    int rc = fl_load_start(sc->e->run->loop, &o, &en->ld);
    free(s->targets);
    fl_load_msg_unref(s->msg);
    if (!rc)
        w->open++;
    return rc;
}

static double check_number(lua_State *L, int idx, const char *what)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        fl_lua_usage(L, "bad %s: expected a number, got %s", what, fl_lua_typename(L, idx));
    return lua_tonumber(L, idx);
}

static uint64_t opt_timeout(lua_State *L, int idx, const char *what)
{
    lua_getfield(L, idx, "timeout");
    uint64_t t = fl_lua_opt_dur(L, -1, what, DEFAULT_TIMEOUT_NS);
    lua_pop(L, 1);
    if (t == 0)
        fl_lua_usage(L, "bad %s: must be more than 0", what);
    return t;
}

/* A series name no other load of the scenario has (cut to 100 bytes, so that " #k" fits). */
static size_t new_series(fl_scenario_t *sc, const char *name, char *out, size_t n)
{
    fl_scenario_result_t *res = sc->res;
    snprintf(out, n, "%.100s", name);
    for (int k = 2;; k++) {
        size_t i = 0;
        while (i < res->nseries && strcmp(res->series[i].name, out) != 0)
            i++;
        if (i == res->nseries)
            break;
        snprintf(out, n, "%.100s #%d", name, k);
    }
    fl_series_t *s = fl_timeline_series(res, out);
    return s ? (size_t)(s - res->series) : SIZE_MAX;
}

static void push_handle(lua_State *L, fl_scenario_t *sc, size_t idx)
{
    load_box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->e = sc->e;
    b->gen = sc->e->gen;
    b->idx = idx;
    luaL_setmetatable(L, LOAD_MT);
}

/* C.load(t, opts) */
static int c_load(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    luaL_checkstack(L, 24, "t:load");
    if (!lua_istable(L, 2))
        fl_lua_usage(L,
                     "bad t:load argument: expected a table like { to = \"gateway\", rate = "
                     "100, duration = \"5s\", request = { path = \"/\" } }, got %s",
                     fl_lua_typename(L, 2));
    static const char *const keys[] = {"to",      "rate", "duration", "request", "concurrency",
                                       "timeout", "name", "keep",     NULL};
    fl_lua_check_keys(L, 2, "t:load option", keys);
    start_t s = {0};
    lua_getfield(L, 2, "rate");
    if (lua_isnil(L, -1))
        fl_lua_usage(L, "t:load: missing 'rate' (requests per second)");
    s.rate = check_number(L, -1, "t:load rate");
    if (!(s.rate > 0) || s.rate > MAX_RATE)
        fl_lua_usage(L, "bad t:load rate: %g requests/s (want more than 0 and at most %g)", s.rate,
                     MAX_RATE);
    lua_getfield(L, 2, "duration");
    s.duration_ns = fl_lua_opt_dur(L, -1, "t:load duration", 0);
    if (!lua_isnil(L, -1) && s.duration_ns == 0)
        fl_lua_usage(L, "bad t:load duration: must be more than 0 (leave it out to run until "
                        "load:stop())");
    lua_getfield(L, 2, "concurrency");
    s.concurrency = DEFAULT_CONCURRENCY;
    if (!lua_isnil(L, -1)) {
        int isint = 0;
        lua_Integer c = lua_tointegerx(L, -1, &isint);
        if (!isint || c < 1 || c > MAX_CONCURRENCY)
            fl_lua_usage(L, "bad t:load concurrency: expected a whole number from 1 to %d, got %s",
                         MAX_CONCURRENCY, luaL_tolstring(L, -1, NULL));
        s.concurrency = (unsigned)c;
    }
    s.timeout_ns = opt_timeout(L, 2, "t:load timeout");
    lua_getfield(L, 2, "name");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        fl_lua_usage(L, "bad t:load name: expected a string, got %s", fl_lua_typename(L, -1));
    lua_getfield(L, 2, "keep");
    int keep = lua_toboolean(L, -1);
    lua_getfield(L, 2, "request");
    int req = lua_gettop(L);
    if (lua_isnil(L, req))
        fl_lua_usage(L, "t:load: missing 'request' (a table like { path = \"/\" }, or a "
                        "function(i) returning one)");
    if (!lua_istable(L, req) && !lua_isfunction(L, req))
        fl_lua_usage(L,
                     "bad t:load request: expected a table or a function(i) returning one, "
                     "got %s",
                     fl_lua_typename(L, req));
    char desc[256];
    lua_getfield(L, 2, "to");
    size_t nt = 0;
    fl_load_target_t *targets = check_to(L, sc, -1, "t:load to", &nt, desc, sizeof desc);
    lua_pop(L, 1);

    workload_t *w = workload_of(sc);
    entry_t *en = calloc(1, sizeof *en);
    entry_t **loads = w ? realloc(w->loads, (w->nloads + 1) * sizeof *loads) : NULL;
    if (!en || !loads) {
        free(en);
        free(targets);
        return luaL_error(L, "out of memory");
    }
    w->loads = loads;
    w->loads[w->nloads++] = en; /* from here on, teardown frees it */
    en->w = w;
    en->fn_ref = LUA_NOREF;
    en->keep = keep;
    en->bounded = s.duration_ns != 0;
    en->series = SIZE_MAX;
    fl_sc_where(L, sc, en->where, sizeof en->where);
    lua_getfield(L, 2, "name");
    const char *name = lua_isnil(L, -1) ? desc : lua_tostring(L, -1);
    char sname[128];
    en->series = new_series(sc, name, sname, sizeof sname);
    snprintf(en->name, sizeof en->name, "%s", sname);
    lua_pop(L, 1);
    s.targets = targets;
    s.ntargets = nt;
    char err[600];
    if (lua_istable(L, req)) {
        if (request_from_lua(L, req, &s.msg, err, sizeof err)) {
            free(targets);
            return fl_lua_usage(L, "bad t:load request: %s", err);
        }
        s.proto = fl_load_msg_proto(s.msg);
    } else {
        lua_pushvalue(L, req);
        en->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        /* request 1 now, so a broken function is reported right here */
        fl_load_msg_t *first = NULL;
        int top = lua_gettop(L);
        lua_pushvalue(L, req);
        lua_pushinteger(L, 1);
        s.targets = NULL; /* an error in the function goes on up as it is: no leak */
        free(targets);
        lua_call(L, 1, 1);
        if (!lua_istable(L, -1)) {
            return fl_lua_usage(L,
                                "t:load request function returned %s for request 1: expected a "
                                "request table like { method = \"GET\", path = \"/\" }",
                                fl_lua_typename(L, -1));
        }
        if (request_from_lua(L, -1, &first, err, sizeof err))
            return fl_lua_usage(L, "t:load request function, request 1: %s", err);
        lua_settop(L, top);
        en->first = first;
        en->proto = s.proto = fl_load_msg_proto(first);
        lua_getfield(L, 2, "to"); /* again: the list was freed before the call */
        s.targets = check_to(L, sc, -1, "t:load to", &s.ntargets, desc, sizeof desc);
        lua_pop(L, 1);
    }
    en->proto = s.proto;
    char dur[32] = "until stopped";
    if (s.duration_ns) {
        strcpy(dur, "for ");
        fl_dur_format(s.duration_ns, dur + 4, sizeof dur - 4);
    }
    int rc = start_entry(sc, en, &s);
    if (rc)
        return luaL_error(L, "t:load: cannot start the load: %s", fl_strerror(rc));
    fl_timeline_add(&sc->tl, FL_EV_NOTE, 1, en->name, en->where,
                    "load started: %s %g/s %s to %s (concurrency %u)",
                    s.proto == FL_LOAD_GRPC ? "gRPC" : "HTTP", s.rate, dur, desc, s.concurrency);
    push_handle(L, sc, w->nloads - 1);
    return 1;
}

/* ------------------------------------------------------------ the handle ---- */

static entry_t *check_load(lua_State *L, int idx, const char *what)
{
    load_box_t *b = luaL_testudata(L, idx, LOAD_MT);
    if (!b)
        fl_lua_usage(L, "%s: expected a load (from t:load), got %s (call it as load:%s())", what,
                     fl_lua_typename(L, idx), what + 5);
    fl_engine_t *e = engine_of(L);
    if (!e->cur || e->gen != b->gen || !e->cur->workload || b->idx >= e->cur->workload->nloads)
        fl_lua_usage(L, "%s: this load belongs to a scenario that has ended", what);
    return e->cur->workload->loads[b->idx];
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, uint64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

static void push_stats(lua_State *L, entry_t *en)
{
    fl_load_stats_t st;
    fl_load_stats(en->ld, &st);
    lua_createtable(L, 0, 20);
    set_int(L, "sent", st.sent);
    set_int(L, "ok", st.ok);
    set_int(L, "failed", st.errors);
    lua_newtable(L);
    char name[32];
    for (int k = 1; k < FL_LOAD_NKINDS; k++) {
        if (k == FL_LOAD_STATUS || k == FL_LOAD_CANCELLED || !st.by_kind[k])
            continue;
        fl_load_kind_name((fl_load_kind_t)k, 0, en->proto, name, sizeof name);
        set_int(L, name, st.by_kind[k]);
    }
    int nst = en->proto == FL_LOAD_GRPC ? 17 : 1000;
    const uint64_t *counts = en->proto == FL_LOAD_GRPC ? st.grpc_code : st.http_status;
    for (int s = 0; s < nst; s++)
        if (counts[s]) {
            fl_load_kind_name(FL_LOAD_STATUS, s, en->proto, name, sizeof name);
            set_int(L, name, counts[s]);
        }
    lua_setfield(L, -2, "errors");
    uint64_t ended = st.ok + st.errors;
    set_num(L, "error_rate", ended ? (double)st.errors / (double)ended : 0);
    const fl_hdr_t *h = st.latency;
    set_num(L, "p50", fl_hdr_quantile(h, 0.5) / 1e9);
    set_num(L, "p90", fl_hdr_quantile(h, 0.9) / 1e9);
    set_num(L, "p99", fl_hdr_quantile(h, 0.99) / 1e9);
    set_num(L, "p999", fl_hdr_quantile(h, 0.999) / 1e9);
    set_num(L, "max", h->total ? h->max / 1e9 : 0);
    set_num(L, "min", h->total ? h->min / 1e9 : 0);
    set_num(L, "mean", fl_hdr_mean(h) / 1e9);
    set_num(L, "rate", st.rate);
    set_num(L, "elapsed", st.elapsed);
    set_int(L, "inflight", st.inflight);
    set_int(L, "queued", st.queued);
    set_int(L, "cancelled", st.cancelled);
    set_int(L, "unsent", st.unsent);
    lua_pushboolean(L, st.running);
    lua_setfield(L, -2, "running");
    lua_pushstring(L, en->name);
    lua_setfield(L, -2, "name");
}

static int k_wait(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    push_stats(L, check_load(L, 1, "load:wait"));
    return 1;
}

static int load_wait(lua_State *L)
{
    entry_t *en = check_load(L, 1, "load:wait");
    if (en->done)
        return k_wait(L, LUA_OK, 0);
    if (!en->bounded)
        fl_lua_usage(L,
                     "load:wait: the load '%s' has no duration, so it never ends by itself "
                     "(give t:load a duration, or call load:stop())",
                     en->name);
    return fl_sc_wait_external(L, en->w->sc, en, k_wait, 0);
}

static int load_stop(lua_State *L)
{
    entry_t *en = check_load(L, 1, "load:stop");
    if (!en->done) {
        char where[256];
        fl_sc_where(L, en->w->sc, where, sizeof where);
        fl_timeline_add(&en->w->sc->tl, FL_EV_NOTE, 1, en->name, where, "load stopped");
    }
    fl_load_stop(en->ld);
    push_stats(L, en);
    return 1;
}

static int load_stats(lua_State *L)
{
    push_stats(L, check_load(L, 1, "load:stats"));
    return 1;
}

static int cmp_kept(const void *a, const void *b)
{
    const kept_t *x = a, *y = b;
    return x->i < y->i ? -1 : x->i > y->i;
}

static void push_kept(lua_State *L, const kept_t *k, fl_load_proto_t proto)
{
    lua_createtable(L, 0, 6);
    set_int(L, "i", k->i + 1);
    if (k->status >= 0) {
        lua_pushinteger(L, k->status);
        lua_setfield(L, -2, proto == FL_LOAD_GRPC ? "code" : "status");
    }
    lua_pushlstring(L, k->body, k->body_len);
    lua_setfield(L, -2, "body");
    if (k->error[0]) {
        lua_pushstring(L, k->error);
        lua_setfield(L, -2, "error");
    }
    if (k->message[0]) {
        lua_pushstring(L, k->message);
        lua_setfield(L, -2, "message");
    }
    set_num(L, "latency", k->latency_ns / 1e9);
}

static int load_results(lua_State *L)
{
    entry_t *en = check_load(L, 1, "load:results");
    if (!en->keep)
        fl_lua_usage(L,
                     "load:results: the load '%s' keeps no results (start it with keep = "
                     "true)",
                     en->name);
    qsort(en->kept, en->nkept, sizeof *en->kept, cmp_kept);
    lua_createtable(L, (int)en->nkept, 0);
    for (size_t i = 0; i < en->nkept; i++) {
        push_kept(L, &en->kept[i], en->proto);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static const luaL_Reg load_methods[] = {
    {"wait", load_wait},       {"stop", load_stop}, {"stats", load_stats},
    {"results", load_results}, {NULL, NULL},
};

static int load_index(lua_State *L)
{
    const char *key = lua_tostring(L, 2);
    for (const luaL_Reg *m = load_methods; key && m->name; m++)
        if (strcmp(m->name, key) == 0) {
            lua_pushcfunction(L, m->func);
            return 1;
        }
    static const char *const names[] = {"wait", "stop", "stats", "results", NULL};
    const char *sug = key ? fl_lua_suggest(key, names) : NULL;
    if (sug)
        return fl_lua_usage(L, "a load has no method '%s' (did you mean '%s'?)", key, sug);
    return fl_lua_usage(L, "a load has no method '%s' (methods: wait, stop, stats, results)",
                        key ? key : luaL_typename(L, 2));
}

static int load_tostring(lua_State *L)
{
    load_box_t *b = luaL_checkudata(L, 1, LOAD_MT);
    fl_engine_t *e = b->e;
    if (e->cur && e->gen == b->gen && e->cur->workload && b->idx < e->cur->workload->nloads)
        lua_pushfstring(L, "load(%s)", e->cur->workload->loads[b->idx]->name);
    else
        lua_pushliteral(L, "load(ended)");
    return 1;
}

/* ------------------------------------------------------------ single calls ---- */

static void single_closed(void *arg);

static void unlink_call(workload_t *w, entry_t *en)
{
    for (entry_t **p = &w->calls; *p; p = &(*p)->next)
        if (*p == en) {
            *p = en->next;
            return;
        }
}

/* After t:http / t:grpc: the answer as a table. */
static int k_single(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    entry_t *en = (entry_t *)ctx;
    workload_t *w = en->w;
    lua_createtable(L, 0, 6);
    if (en->nkept) {
        const kept_t *k = &en->kept[0];
        if (en->proto == FL_LOAD_GRPC) {
            /* no answer: what a gRPC client reports for it */
            int code = k->status >= 0 ? k->status : strcmp(k->error, "timeout") == 0 ? 4 : 14;
            lua_pushinteger(L, code);
            lua_setfield(L, -2, "code");
            lua_pushstring(L, k->message);
            lua_setfield(L, -2, "message");
            lua_pushlstring(L, k->body, k->body_len);
            lua_setfield(L, -2, "body");
            if (k->error[0]) {
                lua_pushstring(L, k->error);
                lua_setfield(L, -2, "error");
            }
        } else if (k->status >= 0) {
            lua_pushinteger(L, k->status);
            lua_setfield(L, -2, "status");
            lua_pushlstring(L, k->body, k->body_len);
            lua_setfield(L, -2, "body");
            lua_newtable(L);
            const char *p = en->headers.data, *end = p + en->headers.len;
            while (p && p < end) {
                const char *v = p + strlen(p) + 1;
                lua_pushstring(L, v);
                lua_setfield(L, -2, p);
                p = v + strlen(v) + 1;
            }
            lua_setfield(L, -2, "headers");
        } else {
            lua_pushstring(L, k->error);
            lua_setfield(L, -2, "error");
            lua_pushstring(L, k->message);
            lua_setfield(L, -2, "message");
        }
        set_num(L, "latency", k->latency_ns / 1e9);
    } else {
        lua_pushliteral(L, "cancelled");
        lua_setfield(L, -2, "error");
    }
    unlink_call(w, en);
    fl_load_close(en->ld, single_closed, en);
    return 1;
}

static void single_closed(void *arg)
{
    entry_t *en = arg;
    workload_t *w = en->w;
    fl_scenario_t *sc = w->sc;
    free_entry(sc->e->L, en);
    w->open--;
    if (w->closing && w->open == 0) {
        void (*cb)(fl_scenario_t *) = w->closed;
        free(w->loads);
        free(w);
        sc->workload = NULL;
        cb(sc);
    }
}

/* One instance of `to`: the next one up (round-robin over calls), else the first. */
static fl_load_target_t *pick_one(lua_State *L, fl_scenario_t *sc, int idx, const char *what,
                                  size_t *rr, char *desc, size_t desclen)
{
    size_t n = 0;
    fl_load_target_t *t = check_to(L, sc, idx, what, &n, desc, desclen);
    size_t pick = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (*rr + k) % n;
        if (t[i].up && t[i].up(t[i].up_arg)) {
            pick = i;
            break;
        }
    }
    (*rr)++;
    t[0] = t[pick];
    return t;
}

static int single(lua_State *L, fl_load_proto_t proto)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    const char *what = proto == FL_LOAD_GRPC ? "t:grpc" : "t:http";
    if (!lua_istable(L, 2))
        fl_lua_usage(L, "bad %s argument: expected a table like %s, got %s", what,
                     proto == FL_LOAD_GRPC
                         ? "{ to = \"users\", method = \"/shop.Users/GetUser\", message = bytes }"
                         : "{ to = \"gateway\", path = \"/healthz\" }",
                     fl_lua_typename(L, 2));
    static const char *const hkeys[] = {"to",      "method",  "path", "body",
                                        "headers", "timeout", "ok",   NULL};
    static const char *const gkeys[] = {"to", "method", "message", "metadata", "timeout", NULL};
    char opt[32];
    snprintf(opt, sizeof opt, "%s option", what);
    fl_lua_check_keys(L, 2, opt, proto == FL_LOAD_GRPC ? gkeys : hkeys);
    uint64_t timeout =
        opt_timeout(L, 2, proto == FL_LOAD_GRPC ? "t:grpc timeout" : "t:http timeout");
    /* the request table: t:grpc's method is the load's grpc */
    lua_newtable(L);
    int req = lua_gettop(L);
    const char *const *keys = proto == FL_LOAD_GRPC ? gkeys : hkeys;
    for (size_t i = 1; keys[i]; i++) {
        if (strcmp(keys[i], "timeout") == 0)
            continue;
        lua_getfield(L, 2, keys[i]);
        const char *k = proto == FL_LOAD_GRPC && strcmp(keys[i], "method") == 0 ? "grpc" : keys[i];
        lua_setfield(L, req, k);
    }
    if (proto == FL_LOAD_GRPC) {
        lua_getfield(L, req, "grpc");
        if (lua_isnil(L, -1))
            fl_lua_usage(L, "t:grpc: missing 'method' (like \"/shop.Users/GetUser\")");
        lua_pop(L, 1);
    }
    char err[600], desc[256];
    fl_load_msg_t *msg = NULL;
    if (request_from_lua(L, req, &msg, err, sizeof err)) {
        /* name the caller's keys: method, not grpc */
        const char *e = strncmp(err, "request ", 8) == 0 ? err + 8 : err;
        if (strncmp(e, "grpc:", 5) == 0)
            fl_lua_usage(L, "bad %s method:%s", what, e + 5);
        fl_lua_usage(L, "bad %s %s", what, e);
    }
    workload_t *w = workload_of(sc);
    if (!w) {
        fl_load_msg_unref(msg);
        return luaL_error(L, "out of memory");
    }
    lua_getfield(L, 2, "to");
    fl_load_target_t *t = pick_one(L, sc, -1, what, &w->rr, desc, sizeof desc);
    entry_t *en = calloc(1, sizeof *en);
    if (!en) {
        free(t);
        free(en);
        fl_load_msg_unref(msg);
        return luaL_error(L, "out of memory");
    }
    en->w = w;
    en->fn_ref = LUA_NOREF;
    en->keep = 1;
    en->single = 1;
    en->bounded = 1;
    en->proto = proto;
    en->series = SIZE_MAX;
    fl_sc_where(L, sc, en->where, sizeof en->where);
    start_t s = {.proto = proto,
                 .rate = 1,
                 .count = 1,
                 .timeout_ns = timeout,
                 .concurrency = 1,
                 .targets = t,
                 .ntargets = 1,
                 .msg = msg,
                 .want_headers = 1};
    int rc = start_entry(sc, en, &s);
    if (rc) {
        free_entry(sc->e->L, en);
        return luaL_error(L, "%s: cannot start the call: %s", what, fl_strerror(rc));
    }
    en->next = w->calls;
    w->calls = en; /* from here on, teardown closes it */
    return fl_sc_wait_external(L, sc, en, k_single, (lua_KContext)en);
}

static int c_http(lua_State *L)
{
    return single(L, FL_LOAD_HTTP);
}

static int c_grpc(lua_State *L)
{
    return single(L, FL_LOAD_GRPC);
}

/* ------------------------------------------------------------ teardown ---- */

void fl_sc_workload_stop(fl_scenario_t *sc)
{
    workload_t *w = sc->workload;
    if (!w)
        return;
    for (size_t i = 0; i < w->nloads; i++)
        if (w->loads[i]->ld)
            fl_load_stop(w->loads[i]->ld);
    for (entry_t *en = w->calls; en; en = en->next)
        fl_load_stop(en->ld);
}

static void load_closed(void *arg)
{
    entry_t *en = arg;
    workload_t *w = en->w;
    en->ld = NULL;
    single_closed(en);
    (void)w;
}

void fl_sc_workload_close(fl_scenario_t *sc, void (*cb)(fl_scenario_t *sc))
{
    workload_t *w = sc->workload;
    if (!w || w->open == 0) {
        if (w) {
            for (size_t i = 0; i < w->nloads; i++)
                free_entry(sc->e->L, w->loads[i]);
            free(w->loads);
            free(w);
            sc->workload = NULL;
        }
        cb(sc);
        return;
    }
    w->closing = 1;
    w->closed = cb;
    /* loads that never started (an error at t:load) count for nothing: free them now */
    size_t n = w->nloads;
    entry_t **loads = w->loads;
    w->loads = NULL;
    w->nloads = 0;
    entry_t *calls = w->calls;
    w->calls = NULL;
    size_t closing = 0;
    for (size_t i = 0; i < n; i++)
        closing += loads[i]->ld != NULL;
    for (entry_t *en = calls; en; en = en->next)
        closing++;
    (void)closing;
    for (size_t i = 0; i < n; i++) {
        if (loads[i]->ld)
            fl_load_close(loads[i]->ld, load_closed, loads[i]);
        else
            free_entry(sc->e->L, loads[i]);
    }
    free(loads);
    for (entry_t *en = calls, *next; en; en = next) {
        next = en->next;
        fl_load_close(en->ld, load_closed, en);
    }
}

/* ------------------------------------------------------------ registration ---- */

void fl_sc_workload_register(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"load", c_load},
        {"http", c_http},
        {"grpc", c_grpc},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
    fl_sc_pb_push(L);
    lua_setfield(L, -2, "pb");
    if (luaL_newmetatable(L, LOAD_MT)) {
        lua_pushcfunction(L, load_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, load_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, LOAD_MT);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}
