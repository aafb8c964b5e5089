/* The fake Consul's public face (consul.h): creating the catalog and its agents, closing it
 * all down, the faults, and what the harness reads. An agent is a node in the catalog from the
 * start, with the serfHealth check Consul's servers give every member ("Agent alive and
 * reachable"). Closing stops the servers (which aborts every pending request), the check
 * runners and the flaps, and frees the catalog once the last handle has closed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/consul/internal.h"
#include "lib/err.h"

/* ------------------------------------------------------------ shared helpers ---- */

void consul_event(fl_consul_t *c, const char *node, const char *fmt, ...)
{
    if (!c->cfg.on_event)
        return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    c->cfg.on_event(c->cfg.event_arg, node ? node : "", text);
}

void consul_rewrite(const fl_consul_t *c, const char *node, const char *addr, int port,
                    char *out_addr, size_t out_len, int *out_port)
{
    char buf[256] = "";
    int p = port;
    if (!c->cfg.rewrite ||
        !c->cfg.rewrite(c->cfg.rewrite_arg, node, addr, port, buf, sizeof buf, &p))
        return;
    snprintf(out_addr, out_len, "%s", buf);
    *out_port = p;
}

void consul_uuid(fl_consul_t *c, char out[37])
{
    unsigned char b[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t v = fl_rng_next(&c->rng);
        memcpy(b + i, &v, 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

void consul_handle_closed(uv_handle_t *h)
{
    fl_consul_t *c = h->data;
    c->handles--;
    consul_maybe_closed(c);
}

void consul_maybe_closed(fl_consul_t *c)
{
    if (!c->closing || c->handles)
        return;
    fl_consul_agent_t *next;
    for (fl_consul_agent_t *a = c->agents; a; a = next) {
        next = a->next;
        free(a->node);
        free(a->host);
        free(a);
    }
    history_clear(c);
    health_cache_clear(c);
    served_clear(c);
    state_free(c->live);
    void (*cb)(void *) = c->close_cb;
    void *arg = c->close_arg;
    free(c);
    if (cb)
        cb(arg);
}

/* ------------------------------------------------------------ lifecycle ---- */

int fl_consul_new(uv_loop_t *loop, const fl_consul_config_t *cfg, fl_consul_t **out)
{
    static const fl_consul_config_t none;
    if (!loop || !out)
        return FL_EINVAL;
    if (!cfg)
        cfg = &none;
    const char *dc = cfg->datacenter ? cfg->datacenter : "dc1";
    if (!*dc || strlen(dc) >= sizeof((fl_consul_t *)0)->dc)
        return FL_EINVAL;
    fl_consul_t *c = calloc(1, sizeof *c);
    if (!c || !(c->live = state_new())) {
        free(c);
        return FL_ENOMEM;
    }
    c->loop = loop;
    c->cfg = *cfg;
    snprintf(c->dc, sizeof c->dc, "%s", dc);
    fl_rng_seed(&c->rng, cfg->seed);
    c->live->index = 1; /* Raft's first entry is its configuration: no user data has index 1 */
    uv_timer_init(loop, &c->wake);
    uv_timer_init(loop, &c->stale_timer);
    c->wake.data = c->stale_timer.data = c;
    c->handles = 2;
    *out = c;
    return 0;
}

/* The agent's node and its serfHealth check, as one write. */
static int register_node(fl_consul_t *c, const char *name, const char *host)
{
    node_t *n = node_new(name, host);
    check_t *k = check_new();
    if (!n || !k)
        goto fail;
    n->agent = 1;
    free(n->id);
    if (!(n->id = malloc(37)))
        goto fail;
    consul_uuid(c, n->id);
    k->node = strdup(name);
    k->id = strdup(SERF_CHECK_ID);
    k->name = strdup("Serf Health Status");
    k->notes = strdup("");
    k->output = strdup("Agent alive and reachable");
    k->service_id = strdup("");
    k->service_name = strdup("");
    k->def = checkdef_new();
    k->status = ST_PASSING;
    if (!k->node || !k->id || !k->name || !k->notes || !k->output || !k->service_id ||
        !k->service_name || !k->def || !(k->def->type = strdup("")))
        goto fail;
    uint64_t idx = cat_begin(c);
    int rc = cat_put_node(c, idx, n);
    if (!rc)
        rc = cat_put_check(c, idx, k);
    else
        rec_unref(k);
    cat_end(c);
    return rc;
fail:
    rec_unref(n);
    rec_unref(k);
    return FL_ENOMEM;
}

int fl_consul_add_agent(fl_consul_t *c, const char *node, const char *host, int port,
                        fl_consul_agent_t **out)
{
    if (!c || !node || !*node || port < 0 || port > 65535 || c->closing)
        return FL_EINVAL;
    if (!host)
        host = "127.0.0.1";
    if (agent_named(c, node))
        return FL_EEXISTS;
    fl_consul_agent_t *a = calloc(1, sizeof *a);
    if (!a || !(a->node = strdup(node)) || !(a->host = strdup(host))) {
        if (a)
            free(a->node);
        free(a);
        return FL_ENOMEM;
    }
    a->c = c;
    a->port = port;
    int rc = c->down ? 0 : agent_listen(a);
    if (!rc)
        rc = register_node(c, node, host);
    if (rc) {
        agent_stop(a);
        free(a->node);
        free(a->host);
        free(a);
        return rc;
    }
    fl_consul_agent_t **tail = &c->agents;
    while (*tail)
        tail = &(*tail)->next;
    *tail = a;
    if (out)
        *out = a;
    return 0;
}

int fl_consul_agent_port(const fl_consul_agent_t *a)
{
    return a ? a->port : FL_EINVAL;
}

const char *fl_consul_agent_node(const fl_consul_agent_t *a)
{
    return a ? a->node : NULL;
}

void fl_consul_close(fl_consul_t *c, void (*cb)(void *arg), void *arg)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->close_cb = cb;
    c->close_arg = arg;
    for (fl_consul_agent_t *a = c->agents; a; a = a->next)
        agent_stop(a);
    runners_close(c);
    flaps_close(c);
    uv_close((uv_handle_t *)&c->wake, consul_handle_closed);
    uv_close((uv_handle_t *)&c->stale_timer, consul_handle_closed);
}

/* ------------------------------------------------------------ faults ---- */

int fl_consul_set_down(fl_consul_t *c, int down)
{
    if (!c || c->closing)
        return FL_ESTATE;
    down = !!down;
    if (down == c->down)
        return 0;
    if (down) {
        for (fl_consul_agent_t *a = c->agents; a; a = a->next)
            agent_stop(a);
        c->down = 1;
        consul_event(c, "", "down: agents refuse connections");
        return 0;
    }
    int rc = 0;
    for (fl_consul_agent_t *a = c->agents; a; a = a->next)
        if (!a->httpd) {
            int r = agent_listen(a);
            rc = rc ? rc : r;
        }
    c->down = rc != 0;
    consul_event(c, "", rc ? "up failed: %s" : "up: agents listen again%s",
                 rc ? fl_strerror(rc) : "");
    return rc;
}

void fl_consul_set_latency(fl_consul_t *c, uint64_t ns)
{
    char d[40];
    c->latency_ns = ns;
    go_duration_string((long long)ns, d);
    consul_event(c, "", "latency %s", d);
}

/* Runs the writes held while frozen, oldest first. */
static void replay_held(fl_consul_t *c)
{
    req_t *r = c->held;
    while (r && r->next)
        r = r->next;
    while (r) {
        req_t *prev = r->prev;
        fl_httpd_exchange_t *ex = r->ex;
        fl_consul_agent_t *a = r->a;
        req_release(r);
        if (ex)
            ctx_run(c, a, ex);
        r = prev;
    }
}

void fl_consul_set_frozen(fl_consul_t *c, int frozen)
{
    frozen = !!frozen;
    if (frozen == c->frozen || c->closing)
        return;
    c->frozen = frozen;
    consul_event(c, "",
                 frozen ? "frozen: blocking queries hang, writes wait"
                        : "thawed: held writes run, blocking queries move");
    if (frozen)
        return;
    replay_held(c);
    runners_resync(c);
    blocking_thaw(c);
}

void fl_consul_set_stale(fl_consul_t *c, uint64_t ns)
{
    char d[40];
    c->stale_ns = ns;
    go_duration_string((long long)ns, d);
    consul_event(c, "", ns ? "stale: answers describe the catalog %s ago" : "stale: off%s",
                 ns ? d : "");
    if (c->closing)
        return;
    blocking_update_stale_timer(c);
    blocking_kick(c);
}

int fl_consul_flap(fl_consul_t *c, const char *service, uint64_t period_ns)
{
    if (!c || !service || !*service || c->closing)
        return FL_EINVAL;
    int rc = flap_set(c, service, period_ns);
    char d[40];
    go_duration_string((long long)period_ns, d);
    if (!rc)
        consul_event(c, "", period_ns ? "flap %s every %s" : "flap %s stopped%s", service,
                     period_ns ? d : "");
    return rc;
}

/* ------------------------------------------------------------ reading ---- */

static int cmp_svc(const void *a, const void *b)
{
    const svc_t *x = *(const svc_t *const *)a, *y = *(const svc_t *const *)b;
    int c = strcmp(x->node, y->node);
    return c ? c : strcmp(x->id, y->id);
}

/* The passing (all: every registered) instances of service, sorted by node and ID; field 0:
 * IDs, 1: nodes. */
static size_t select_svcs(fl_consul_t *c, const char *service, const char **out, size_t max,
                          int field, int all)
{
    const state_t *st = c->live;
    const svc_t **v = malloc((st->svcs.n + 1) * sizeof *v);
    size_t n = 0, count = 0;
    if (!v)
        return 0;
    for (size_t i = 0; i < st->svcs.n; i++) {
        const svc_t *s = st->svcs.v[i];
        if (strcmp(s->name, service) == 0 && (all || svc_passing(st, s)))
            v[n++] = s;
    }
    qsort(v, n, sizeof *v, cmp_svc);
    for (size_t i = 0; i < n; i++, count++)
        if (count < max)
            out[count] = field ? v[i]->node : v[i]->id;
    free(v);
    return count;
}

size_t fl_consul_passing(fl_consul_t *c, const char *service, const char **ids, size_t max)
{
    return select_svcs(c, service, ids, max, 0, 0);
}

size_t fl_consul_passing_nodes(fl_consul_t *c, const char *service, const char **nodes, size_t max)
{
    return select_svcs(c, service, nodes, max, 1, 0);
}

size_t fl_consul_registered_nodes(fl_consul_t *c, const char *service, const char **nodes,
                                  size_t max)
{
    return select_svcs(c, service, nodes, max, 1, 1);
}

char *fl_consul_view(fl_consul_t *c, const char *node, const char *service)
{
    json_t *tags = json_array();
    json_t *j = tags ? health_entries(c, cat_view(c), node, service, 1, tags) : NULL;
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    json_decref(tags);
    return text;
}

uint64_t fl_consul_index(const fl_consul_t *c)
{
    return c->live->index;
}
