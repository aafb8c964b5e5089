/* The generic checks of a scenario (issue 8): requests per instance counted from the
 * collector's SERVER spans (t:distribution, t:expect_balanced), the shape of the traces a
 * service roots (t:expect_traces), and every client's view of a service as the fake Consul
 * last served it (t:expect_discovery). The judging is pure (checks.h); the Lua side here
 * gathers the evidence and words the verdict, and prelude.lua waits, re-checks and records. */
#include "harness/checks.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakes/consul/consul.h"
#include "harness/luax.h"
#include "harness/scenario.h"
#include "lib/buf.h"

/* ------------------------------------------------------------ balance ---- */

void fl_balance_judge(const uint64_t *counts, size_t n, double tolerance, fl_balance_t *out)
{
    memset(out, 0, sizeof *out);
    out->max_dev = 1;
    for (size_t i = 0; i < n; i++)
        out->total += counts[i];
    if (n == 0 || out->total == 0)
        return;
    out->share = (double)out->total / (double)n;
    out->max_dev = 0;
    for (size_t i = 0; i < n; i++) {
        double dev = fabs((double)counts[i] - out->share) / out->share;
        if (dev > out->max_dev) {
            out->max_dev = dev;
            out->worst = i;
        }
    }
    out->ok = out->max_dev <= tolerance + 1e-12;
}

/* ------------------------------------------------------------ traces ---- */

int fl_span_resend(const fl_span_t *s)
{
    for (size_t i = 0; i < s->nattrs; i++)
        if (strcmp(s->attrs[i].key, "http.request.resend_count") == 0) {
            long v = strtol(s->attrs[i].value, NULL, 10);
            return v > 0 && v < 1000 ? (int)v : 0;
        }
    return s->attempt > 1 ? (int)s->attempt - 1 : 0;
}

static void describe(const fl_span_t *s, char *out, size_t n)
{
    snprintf(out, n, "span %s (%s %s '%s' on %s)", s->span_id, s->service,
             fl_span_kind_name(s->kind), s->name, *s->instance ? s->instance : "?");
}

static long parent_of(const fl_span_t *const *spans, size_t n, const fl_span_t *s)
{
    if (!s->parent_id[0])
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(spans[i]->span_id, s->parent_id) == 0 && spans[i] != s)
            return (long)i;
    return -1;
}

static int is_entry(const fl_span_t *s)
{
    return s->kind == FL_SPAN_SERVER || s->kind == FL_SPAN_CONSUMER;
}

/* Connected: one root, no orphan. Fills out->problem and returns 0 when not. */
static int judge_shape(const fl_span_t *const *spans, size_t n, fl_trace_verdict_t *out)
{
    size_t nroots = 0, root = 0;
    for (size_t i = 0; i < n; i++) {
        if (parent_of(spans, n, spans[i]) >= 0)
            continue;
        /* the root: a span without parent first, else the earliest without one here */
        if (nroots == 0 || (spans[i]->parent_id[0] == '\0' && spans[root]->parent_id[0]) ||
            (!spans[i]->parent_id[0] == !spans[root]->parent_id[0] &&
             spans[i]->start_ns < spans[root]->start_ns))
            root = i;
        nroots++;
    }
    char d[200];
    if (n == 0) {
        snprintf(out->problem, sizeof out->problem, "it has no span");
        return 0;
    }
    if (nroots == 0) { /* every span has a parent here: a cycle */
        describe(spans[0], d, sizeof d);
        snprintf(out->problem, sizeof out->problem, "its spans' parents form a cycle (%s)", d);
        return 0;
    }
    for (size_t i = 0; i < n; i++) { /* orphans first: they name what is missing */
        const fl_span_t *s = spans[i];
        if (i == root || !s->parent_id[0] || parent_of(spans, n, s) >= 0)
            continue;
        describe(s, d, sizeof d);
        snprintf(out->problem, sizeof out->problem,
                 "%s has parent %s, which is not in the trace (%zu spans, %zu roots)", d,
                 s->parent_id, n, nroots);
        return 0;
    }
    if (nroots > 1) {
        char d2[200];
        describe(spans[root], d, sizeof d);
        for (size_t i = 0; i < n; i++)
            if (i != root && parent_of(spans, n, spans[i]) < 0) {
                describe(spans[i], d2, sizeof d2);
                break;
            }
        snprintf(out->problem, sizeof out->problem, "%zu roots: %s and %s", nroots, d, d2);
        return 0;
    }
    const fl_span_t *r = spans[root];
    describe(r, d, sizeof d);
    if (!is_entry(r) && (r->kind == FL_SPAN_CLIENT || r->kind == FL_SPAN_PRODUCER)) {
        snprintf(out->problem, sizeof out->problem,
                 "it starts with %s: a call made without its caller's trace context (was the "
                 "traceparent dropped?)",
                 d);
        return 0;
    }
    if (r->parent_id[0] && !is_entry(r)) {
        snprintf(out->problem, sizeof out->problem,
                 "%s has parent %s, which is not in the trace (%zu spans)", d, r->parent_id, n);
        return 0;
    }
    return 1;
}

static int cmp_call(const void *a, const void *b)
{
    const fl_span_t *x = *(const fl_span_t *const *)a, *y = *(const fl_span_t *const *)b;
    int c = strcmp(x->parent_id, y->parent_id);
    if (!c)
        c = strcmp(x->name, y->name);
    if (!c)
        c = x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
    return c;
}

/* The CLIENT spans grouped into calls; the most attempts of one into out->attempts. Fills
 * out->problem and returns 0 when a call made more than max_attempts (0: any number). */
static int judge_attempts(const fl_span_t *const *spans, size_t n, int max_attempts,
                          fl_trace_verdict_t *out)
{
    const fl_span_t **v = malloc((n + 1) * sizeof *v);
    size_t m = 0;
    if (!v) {
        snprintf(out->problem, sizeof out->problem, "out of memory");
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (spans[i]->kind == FL_SPAN_CLIENT)
            v[m++] = spans[i];
    qsort(v, m, sizeof *v, cmp_call);
    int ok = 1;
    for (size_t i = 0; i < m;) {
        size_t j = i + 1;
        int most = fl_span_resend(v[i]) + 1;
        while (j < m && fl_span_resend(v[j]) > 0 && strcmp(v[j]->parent_id, v[i]->parent_id) == 0 &&
               strcmp(v[j]->name, v[i]->name) == 0) {
            if (fl_span_resend(v[j]) + 1 > most)
                most = fl_span_resend(v[j]) + 1;
            j++;
        }
        int attempts = (int)(j - i) > most ? (int)(j - i) : most;
        if (attempts > out->attempts)
            out->attempts = attempts;
        if (ok && max_attempts > 0 && attempts > max_attempts) {
            fl_buf_t b = FL_BUF_INIT;
            fl_buf_printf(&b, "a call to '%s' from %s made %d attempts (at most %d allowed): spans",
                          v[i]->name, *v[i]->instance ? v[i]->instance : v[i]->service, attempts,
                          max_attempts);
            for (size_t k = i; k < j && k < i + 6; k++)
                fl_buf_printf(&b, " %s", v[k]->span_id);
            if (j - i > 6)
                fl_buf_puts(&b, " ...");
            snprintf(out->problem, sizeof out->problem, "%s", b.data ? b.data : "?");
            fl_buf_free(&b);
            ok = 0;
        }
        i = j;
    }
    free(v);
    return ok;
}

void fl_trace_judge(const fl_span_t *const *spans, size_t n, int complete, int max_attempts,
                    fl_trace_verdict_t *out)
{
    memset(out, 0, sizeof *out);
    out->ok = 1;
    if (complete && !judge_shape(spans, n, out)) {
        out->ok = 0;
        fl_trace_verdict_t tmp;
        memset(&tmp, 0, sizeof tmp);
        judge_attempts(spans, n, 0, &tmp);
        out->attempts = tmp.attempts;
        return;
    }
    out->ok = judge_attempts(spans, n, max_attempts, out);
}

/* ------------------------------------------------------------ evidence ---- */

static uint64_t since_arg(lua_State *L, fl_scenario_t *sc, int idx)
{
    if (lua_isnoneornil(L, idx))
        return sc->body_ns;
    double s = luaL_checknumber(L, idx);
    return s > 0 ? (uint64_t)(s * 1e9) : 0;
}

static uint64_t now_ns(fl_scenario_t *sc)
{
    return uv_hrtime() - sc->start_ns;
}

/* The value of NAME in an instance's environment, or NULL. */
static const char *env_of(const fl_instance_t *inst, const char *name)
{
    size_t n = strlen(name);
    for (char **kv = inst->env; kv && *kv; kv++)
        if (strncmp(*kv, name, n) == 0 && (*kv)[n] == '=')
            return *kv + n + 1;
    return NULL;
}

/* A usage error when the service's instances export no spans (OTEL_SDK_DISABLED=true, or the
 * always_off sampler): counting its spans would be a silent zero. */
static void check_tracing(lua_State *L, fl_scenario_t *sc, const char *service, const char *what)
{
    for (size_t i = 0; i < sc->ninst; i++) {
        const fl_instance_t *inst = &sc->inst[i];
        if (strcmp(inst->service, service) != 0)
            continue;
        const char *dis = env_of(inst, "OTEL_SDK_DISABLED");
        const char *sampler = env_of(inst, "OTEL_TRACES_SAMPLER");
        if (dis && strcasecmp(dis, "true") == 0)
            fl_lua_usage(L,
                         "%s: tracing is off for %s (OTEL_SDK_DISABLED=true in its environment): "
                         "it exports no spans, so there is nothing to count; remove that "
                         "variable from the topology",
                         what, service);
        if (sampler && strcasecmp(sampler, "always_off") == 0)
            fl_lua_usage(L,
                         "%s: tracing is off for %s (OTEL_TRACES_SAMPLER=always_off in its "
                         "environment): it exports no spans, so there is nothing to count",
                         what, service);
    }
}

/* Whether inst was up from since to now; if not, why not, into why. */
static int up_for_window(fl_scenario_t *sc, const fl_instance_t *inst, uint64_t since, char *why,
                         size_t n)
{
    const fl_scenario_result_t *res = sc->res;
    fl_proc_state_t at_since = FL_PS_DOWN;
    for (size_t i = 0; i < res->nevents; i++) {
        const fl_event_t *ev = &res->events[i];
        if (ev->kind != FL_EV_PROCESS || ev->state == FL_PS_NONE ||
            strcmp(ev->subject, inst->name) != 0)
            continue;
        if (ev->t_ns <= since) {
            at_since = ev->state;
            continue;
        }
        if (ev->state != FL_PS_UP || at_since != FL_PS_UP) {
            snprintf(why, n, "%s at %.2fs", fl_proc_state_name(ev->state), ev->t_ns / 1e9);
            if (at_since != FL_PS_UP && ev->state == FL_PS_STARTING)
                snprintf(why, n, "started at %.2fs", ev->t_ns / 1e9);
            return 0;
        }
    }
    if (at_since != FL_PS_UP) {
        snprintf(why, n, "%s at %.2fs", fl_proc_state_name(at_since), since / 1e9);
        return 0;
    }
    if (inst->state != FL_INST_UP) {
        snprintf(why, n, "%s now", fl_inst_state_name(inst->state));
        return 0;
    }
    return 1;
}

/* Requests served per instance of service since `since`: its SERVER spans, by
 * service.instance.id. Spans naming no instance of the topology count under "?". */
static void count_served(fl_scenario_t *sc, const char *service, uint64_t since, uint64_t *counts,
                         uint64_t *unknown)
{
    const fl_scenario_result_t *res = sc->res;
    *unknown = 0;
    for (size_t i = 0; i < res->nspans; i++) {
        const fl_span_t *s = &res->spans[i];
        if (s->kind != FL_SPAN_SERVER || s->start_ns < since || strcmp(s->service, service) != 0)
            continue;
        size_t k = 0;
        while (k < sc->ninst && strcmp(sc->inst[k].name, s->instance) != 0)
            k++;
        if (k < sc->ninst)
            counts[k]++;
        else
            (*unknown)++;
    }
}

/* C.distribution(t, service, [since]) → { [instance] = n } (every instance of the service,
 * 0 included; "?" for spans naming no instance), and { [instance] = true | "why not up" } for
 * the window since..now. */
static int c_distribution(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_service_t *svc = fl_sc_check_service(L, sc->e, 2, "t:distribution");
    check_tracing(L, sc, svc->name, "t:distribution");
    uint64_t since = since_arg(L, sc, 3);
    uint64_t *counts = calloc(sc->ninst + 1, sizeof *counts), unknown;
    if (!counts)
        return luaL_error(L, "out of memory");
    count_served(sc, svc->name, since, counts, &unknown);
    lua_newtable(L);
    lua_newtable(L);
    for (size_t i = 0; i < sc->ninst; i++) {
        if (strcmp(sc->inst[i].service, svc->name) != 0)
            continue;
        lua_pushinteger(L, (lua_Integer)counts[i]);
        lua_setfield(L, -3, sc->inst[i].name);
        char why[96];
        if (up_for_window(sc, &sc->inst[i], since, why, sizeof why))
            lua_pushboolean(L, 1);
        else
            lua_pushstring(L, why);
        lua_setfield(L, -2, sc->inst[i].name);
    }
    if (unknown) {
        lua_pushinteger(L, (lua_Integer)unknown);
        lua_setfield(L, -3, "?");
    }
    free(counts);
    return 2;
}

/* C.balance(t, service, tolerance, [since]) → ok, message: the instances up for the whole
 * window, compared with the even share (fl_balance_judge). */
static int c_balance(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_service_t *svc = fl_sc_check_service(L, sc->e, 2, "t:expect_balanced");
    check_tracing(L, sc, svc->name, "t:expect_balanced");
    double tol = luaL_checknumber(L, 3);
    uint64_t since = since_arg(L, sc, 4), now = now_ns(sc);
    uint64_t *counts = calloc(sc->ninst + 1, sizeof *counts), unknown;
    uint64_t *cmp = calloc(sc->ninst + 1, sizeof *cmp);
    size_t *which = calloc(sc->ninst + 1, sizeof *which), n = 0;
    fl_buf_t b = FL_BUF_INIT, out = FL_BUF_INIT;
    if (!counts || !cmp || !which) {
        free(counts);
        free(cmp);
        free(which);
        return luaL_error(L, "out of memory");
    }
    count_served(sc, svc->name, since, counts, &unknown);
    for (size_t i = 0; i < sc->ninst; i++) {
        char why[96];
        if (strcmp(sc->inst[i].service, svc->name) != 0)
            continue;
        if (up_for_window(sc, &sc->inst[i], since, why, sizeof why)) {
            cmp[n] = counts[i];
            which[n++] = i;
        } else {
            fl_buf_printf(&b, "%s%s %llu (%s)", b.len ? ", " : "", sc->inst[i].name,
                          (unsigned long long)counts[i], why);
        }
    }
    fl_balance_t v;
    fl_balance_judge(cmp, n, tol, &v);
    fl_buf_printf(&out, "%s %sbalanced within %g%%: ", svc->name, v.ok ? "" : "not ", tol * 100);
    if (n == 0)
        fl_buf_printf(&out, "no instance of %s was up for the whole window", svc->name);
    else if (v.total == 0)
        fl_buf_printf(&out,
                      "no request served (no SERVER span of %s arrived: is it exporting to "
                      "the collector?)",
                      svc->name);
    else {
        for (size_t k = 0; k < n; k++)
            fl_buf_printf(&out, "%s%s %llu", k ? ", " : "", sc->inst[which[k]].name,
                          (unsigned long long)cmp[k]);
        fl_buf_printf(&out, " (expected %.1f each; max deviation %.1f%% at %s)", v.share,
                      v.max_dev * 100, sc->inst[which[v.worst]].name);
    }
    fl_buf_printf(&out, "; window %.2fs to %.2fs", since / 1e9, now / 1e9);
    if (b.len)
        fl_buf_printf(&out, "; not compared: %s", b.data);
    if (unknown)
        fl_buf_printf(&out, "; %llu spans name no instance of %s", (unsigned long long)unknown,
                      svc->name);
    lua_pushboolean(L, v.ok);
    lua_pushstring(L, out.data ? out.data : "out of memory");
    fl_buf_free(&b);
    fl_buf_free(&out);
    free(counts);
    free(cmp);
    free(which);
    return 2;
}

/* C.trace_check(t, root, complete, max_attempts, [since], [until]) → ok, checked, message:
 * every trace the collector holds whose root is a span of service root that started in
 * [since, until) — until: when the check was called, so a trace begun since has no say —
 * judged by fl_trace_judge; the message names the first bad trace. */
static int c_trace_check(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_service_t *svc = fl_sc_check_service(L, sc->e, 2, "t:expect_traces root");
    check_tracing(L, sc, svc->name, "t:expect_traces");
    int complete = lua_toboolean(L, 3);
    int max_attempts = (int)luaL_optinteger(L, 4, 0);
    uint64_t since = since_arg(L, sc, 5);
    uint64_t until = lua_isnoneornil(L, 6) ? UINT64_MAX : (uint64_t)(luaL_checknumber(L, 6) * 1e9);
    size_t ntraces = fl_sc_collector_ntraces(sc), checked = 0, bad = 0, most = 0;
    const fl_span_t **v = NULL;
    size_t cap = 0;
    fl_buf_t first = FL_BUF_INIT;
    fl_trace_verdict_t verdict;
    for (size_t t = 0; t < ntraces; t++) {
        const size_t *idx;
        size_t n;
        const char *id = fl_sc_collector_trace(sc, t, &idx, &n);
        if (n + 1 > cap) {
            const fl_span_t **nv = realloc(v, (n + 1) * sizeof *nv);
            if (!nv) {
                free(v);
                fl_buf_free(&first);
                return luaL_error(L, "out of memory");
            }
            v = nv;
            cap = n + 1;
        }
        int rooted = 0;
        for (size_t i = 0; i < n; i++)
            v[i] = &sc->res->spans[idx[i]];
        for (size_t i = 0; i < n && !rooted; i++) /* a root of that service, in the window */
            rooted = strcmp(v[i]->service, svc->name) == 0 && v[i]->start_ns >= since &&
                     v[i]->start_ns < until && parent_of(v, n, v[i]) < 0;
        if (!rooted)
            continue;
        checked++;
        fl_trace_judge(v, n, complete, max_attempts, &verdict);
        if ((size_t)verdict.attempts > most)
            most = (size_t)verdict.attempts;
        if (verdict.ok)
            continue;
        if (bad++ == 0)
            fl_buf_printf(&first, "trace %s: %s", id, verdict.problem);
    }
    free(v);
    fl_buf_t out = FL_BUF_INIT;
    if (checked == 0)
        fl_buf_printf(&out,
                      "no trace rooted at %s (none of its spans arrived: is it exporting to "
                      "the collector, and soon enough? see OTEL_BSP_SCHEDULE_DELAY)",
                      svc->name);
    else if (bad)
        fl_buf_printf(&out, "%zu of %zu traces rooted at %s are bad; %s", bad, checked, svc->name,
                      first.data ? first.data : "?");
    else
        fl_buf_printf(&out, "%zu traces rooted at %s%s%s (at most %zu attempts per call)", checked,
                      svc->name, complete ? " are connected" : " checked",
                      max_attempts > 0 ? " and within the attempt limit" : "", most);
    uint64_t now = now_ns(sc);
    fl_buf_printf(&out, "; traces begun %.2fs to %.2fs, judged at %.2fs", since / 1e9,
                  (until < now ? until : now) / 1e9, now / 1e9);
    lua_pushboolean(L, checked > 0 && bad == 0);
    lua_pushinteger(L, (lua_Integer)checked);
    lua_pushstring(L, out.data ? out.data : "out of memory");
    fl_buf_free(&out);
    fl_buf_free(&first);
    return 3;
}

/* ------------------------------------------------------------ discovery ---- */

static int needs(const fl_service_t *s, const char *service)
{
    for (char **n = s->needs; n && *n; n++)
        if (strcmp(*n, service) == 0)
            return 1;
    return 0;
}

static int in_list(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

/* The ids of list v (n of them) as "{a, b}" into b. */
static void put_set(fl_buf_t *b, const char *const *v, size_t n)
{
    fl_buf_puts(b, "{");
    for (size_t i = 0; i < n; i++)
        fl_buf_printf(b, "%s%s", i ? ", " : "", v[i]);
    fl_buf_puts(b, "}");
}

/* C.discovery(t, service) → ok, message, never (a usage message when a running client never
 * asked Consul about service, else nil): for each running client (an instance of a service
 * that needs service), whether the last answer the fake Consul served it about service lists
 * exactly the instances of service that are up and pass their checks; and that no instance
 * that stopped on its own (it had the chance to deregister) is still registered. */
static int c_discovery(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_service_t *svc = fl_sc_check_service(L, sc->e, 2, "t:expect_discovery");
    if (!sc->consul)
        fl_lua_usage(L,
                     "t:expect_discovery needs the fake Consul (topology consul = \"fake\", the "
                     "default)%s: it reads what the fake's agents answered each client",
                     sc->e->topo.consul == FL_CONSUL_REAL ? ": this topology uses a real one"
                     : sc->e->topo.consul == FL_CONSUL_NONE
                         ? ": this topology has none, so clients are wired statically (<NEED>_ADDR)"
                         : "");
    int nclients = 0;
    for (int i = 0; i < sc->e->topo.nservices; i++)
        nclients += needs(&sc->e->topo.services[i], svc->name);
    if (!nclients)
        fl_lua_usage(L, "t:expect_discovery: no service needs '%s', so nobody discovers it",
                     svc->name);
    /* expected: instances of svc up now and passing in the catalog */
    const char *passing[FL_MAX_REPLICAS * 4], *registered[FL_MAX_REPLICAS * 4];
    size_t max = sizeof passing / sizeof passing[0];
    size_t np = fl_consul_passing(sc->consul, svc->name, passing, max);
    size_t nr = fl_consul_registered_nodes(sc->consul, svc->name, registered, max);
    np = np > max ? max : np;
    nr = nr > max ? max : nr;
    const char **want = calloc(sc->ninst + 1, sizeof *want);
    if (!want)
        return luaL_error(L, "out of memory");
    size_t nwant = 0;
    for (size_t i = 0; i < sc->ninst; i++)
        if (strcmp(sc->inst[i].service, svc->name) == 0 && sc->inst[i].state == FL_INST_UP &&
            in_list(passing, np, sc->inst[i].name))
            want[nwant++] = sc->inst[i].name;
    fl_buf_t out = FL_BUF_INIT, skipped = FL_BUF_INIT, never = FL_BUF_INIT;
    int ok = 1, judged = 0;
    uint64_t now = now_ns(sc);
    for (size_t i = 0; i < sc->ninst && ok; i++) {
        fl_instance_t *c = &sc->inst[i];
        if (!needs(fl_topology_find(&sc->e->topo, c->service), svc->name))
            continue;
        if (c->state != FL_INST_UP) {
            fl_buf_printf(&skipped, "%s%s (%s)", skipped.len ? ", " : "", c->name,
                          fl_inst_state_name(c->state));
            continue;
        }
        fl_consul_served_t seen;
        if (!fl_consul_last_served(sc->consul, c->name, svc->name, &seen)) {
            /* it may not have asked yet; if it never does, it is wired statically */
            ok = 0;
            char var[96];
            snprintf(var, sizeof var, "%s_ADDR", svc->name);
            for (char *p = var; *p; p++)
                *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
            fl_buf_printf(&never,
                          "t:expect_discovery: %s needs %s but never asked its Consul agent "
                          "about it: it is wired statically (%s), so it has no view to check",
                          c->name, svc->name, var);
            fl_buf_printf(&out, "%s never asked Consul about %s", c->name, svc->name);
            continue;
        }
        judged++;
        /* the instances listed, by their node: each registers through its own agent, whose
         * node is the instance's name */
        int same = seen.nids == nwant;
        for (size_t k = 0; same && k < seen.nids; k++)
            same = in_list(want, nwant, seen.nodes[k]);
        if (same)
            continue;
        ok = 0;
        fl_buf_printf(&out, "%s's view of %s is ", c->name, svc->name);
        put_set(&out, seen.nodes, seen.nids);
        fl_buf_puts(&out, ", expected ");
        put_set(&out, want, nwant);
        fl_buf_printf(&out,
                      " (the instances up and passing; last answer index %llu at %.2fs, "
                      "%llu answers so far)",
                      (unsigned long long)seen.index, (seen.at_ns - sc->start_ns) / 1e9,
                      (unsigned long long)seen.answers);
    }
    /* a clean exit had the chance to deregister: no registration may stay behind */
    for (size_t i = 0; i < sc->ninst && ok; i++) {
        fl_instance_t *s = &sc->inst[i];
        if (strcmp(s->service, svc->name) != 0 || s->state != FL_INST_DOWN || !s->exited ||
            s->term_signal || !in_list(registered, nr, s->name))
            continue;
        ok = 0;
        fl_buf_printf(&out,
                      "%s stopped (it exited with code %lld) but is still registered in Consul "
                      "(%s): it did not deregister, so clients kept it until its check failed",
                      s->name, (long long)s->exit_status,
                      in_list(passing, np, s->name) ? "passing" : "critical");
    }
    if (ok) {
        fl_buf_printf(&out, "every client's view of %s is ", svc->name);
        put_set(&out, want, nwant);
        fl_buf_printf(&out, " (%d client%s)", judged, judged == 1 ? "" : "s");
    }
    if (skipped.len)
        fl_buf_printf(&out, "; not judged: %s", skipped.data);
    fl_buf_printf(&out, "; at %.2fs", now / 1e9);
    lua_pushboolean(L, ok);
    lua_pushstring(L, out.data ? out.data : "out of memory");
    if (never.len)
        lua_pushstring(L, never.data);
    else
        lua_pushnil(L);
    fl_buf_free(&out);
    fl_buf_free(&skipped);
    fl_buf_free(&never);
    free(want);
    return 3;
}

void fl_sc_checks_register(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"distribution", c_distribution}, {"balance", c_balance}, {"trace_check", c_trace_check},
        {"discovery", c_discovery},       {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
}
