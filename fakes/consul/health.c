/* The /v1/health, /v1/catalog and /v1/status endpoints: the shared catalog as any agent serves
 * it (from the stale view when that fault is on). Health and catalog answers about a service
 * go through cfg.rewrite, so each node is told its own way to every instance (its link). Every
 * blocking read has an index function next to its renderer: the index is what blocking
 * queries compare, and it is the same one Consul uses (a service's own index for service
 * queries, the table index otherwise). Lists come sorted as Consul's memdb iterates them: by
 * node, then ID. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/consul/internal.h"
#include "lib/err.h"

/* ------------------------------------------------------------ helpers ---- */

static int cmp_svc(const void *a, const void *b)
{
    const svc_t *x = *(const svc_t *const *)a, *y = *(const svc_t *const *)b;
    int c = strcmp(x->node, y->node);
    return c ? c : strcmp(x->id, y->id);
}

static int cmp_check(const void *a, const void *b)
{
    const check_t *x = *(const check_t *const *)a, *y = *(const check_t *const *)b;
    int c = strcmp(x->node, y->node);
    return c ? c : strcmp(x->id, y->id);
}

static int cmp_node(const void *a, const void *b)
{
    return strcmp((*(const node_t *const *)a)->name, (*(const node_t *const *)b)->name);
}

/* A sorted copy of the records of v that keep() accepts; NULL on FL_ENOMEM. */
static void **select_sorted(const vec_t *v, int (*keep)(const void *rec, const void *arg),
                            const void *arg, int (*cmp)(const void *, const void *), size_t *n)
{
    void **out = malloc((v->n + 1) * sizeof *out);
    *n = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (!keep || keep(v->v[i], arg))
            out[(*n)++] = v->v[i];
    qsort(out, *n, sizeof *out, cmp);
    return out;
}

static const node_t *node_of(const state_t *st, const char *name)
{
    long i = find_node(st, name);
    return i >= 0 ? st->nodes.v[i] : NULL;
}

/* The address and port node should be told for service instance s. */
static void address_for(const fl_consul_t *c, const char *asker, const node_t *n, const svc_t *s,
                        char *addr, size_t len, int *port)
{
    const char *a = *s->address ? s->address : n->address;
    *port = s->port;
    snprintf(addr, len, "%s", s->address);
    consul_rewrite(c, asker, a, s->port, addr, len, port);
}

static int missing_name(ctx_t *x, const char *what)
{
    if (*x->arg)
        return 0;
    reply_text(x, 400, "Missing %s", what);
    return 1;
}

/* ?passing, ?passing=true...: 0/1, or -1 after answering 400. */
static int passing_param(ctx_t *x)
{
    char v[16];
    int b;
    if (q_get(x, "passing", v, sizeof v) != 0)
        return 0;
    if (!*v)
        return 1;
    if (go_parse_bool(v, &b) < 0) {
        reply_text(x, 400, "Invalid value for ?passing");
        return -1;
    }
    return b;
}

typedef struct {
    const char *name;
    char **tags;
    size_t ntags;
} svc_filter_t;

static int keep_svc(const void *rec, const void *arg)
{
    const svc_t *s = rec;
    const svc_filter_t *f = arg;
    return strcmp(s->name, f->name) == 0 && svc_tags_match(s, f->tags, f->ntags);
}

/* The tags of ?tag=a&tag=b as a vector borrowed from arr. */
static char **tag_vector(json_t *arr, size_t *n)
{
    *n = arr ? json_array_size(arr) : 0;
    char **v = calloc(*n + 1, sizeof *v);
    for (size_t i = 0; v && i < *n; i++)
        v[i] = (char *)json_string_value(json_array_get(arr, i));
    return v;
}

/* ------------------------------------------------------------ health ---- */

static json_t *checks_of(const state_t *st, const svc_t *s)
{
    json_t *out = json_array();
    size_t n = 0;
    const check_t **v = malloc((st->checks.n + 1) * sizeof *v);
    for (size_t i = 0; v && i < st->checks.n; i++) {
        const check_t *k = st->checks.v[i];
        if (strcmp(k->node, s->node) == 0 && (!*k->service_id || strcmp(k->service_id, s->id) == 0))
            v[n++] = k;
    }
    if (v)
        qsort(v, n, sizeof *v, cmp_check);
    for (size_t i = 0; v && out && i < n; i++)
        json_array_append_new(out, r_check(st, v[i]));
    free(v);
    return v ? out : (json_decref(out), NULL);
}

/* The instances a health query about service lists (on a known node, passing if asked, with
 * every tag), sorted as Consul lists them; NULL on FL_ENOMEM. */
static const svc_t **health_select(const state_t *st, const char *service, int passing,
                                   json_t *tags, size_t *n)
{
    svc_filter_t f = {service, NULL, 0};
    f.tags = tag_vector(tags, &f.ntags);
    size_t m = 0;
    void **v = f.tags ? select_sorted(&st->svcs, keep_svc, &f, cmp_svc, &m) : NULL;
    *n = 0;
    for (size_t i = 0; v && i < m; i++) {
        const svc_t *s = v[i];
        if (node_of(st, s->node) && (!passing || svc_passing(st, s)))
            v[(*n)++] = v[i];
    }
    free(f.tags);
    return (const svc_t **)v;
}

json_t *health_entries(fl_consul_t *c, const state_t *st, const char *asker, const char *service,
                       int passing, json_t *tags)
{
    size_t n;
    const svc_t **v = health_select(st, service, passing, tags, &n);
    json_t *out = v ? json_array() : NULL;
    for (size_t i = 0; out && i < n; i++) {
        const svc_t *s = v[i];
        const node_t *node = node_of(st, s->node);
        char addr[256];
        int port;
        address_for(c, asker, node, s, addr, sizeof addr, &port);
        json_array_append_new(out,
                              json_pack("{s:o, s:o, s:o}", "Node", r_node(c, node), "Service",
                                        r_node_service(s, addr, port), "Checks", checks_of(st, s)));
    }
    free(v);
    return out;
}

int health_service_index(ctx_t *x, uint64_t *idx)
{
    if (missing_name(x, "service name") || passing_param(x) < 0)
        return -1;
    *idx = service_wake_index(x->st, x->arg);
    return 0;
}

/* ------------------------------------------------------------ what was served ---- */

static void served_free(served_t *r)
{
    for (size_t i = 0; i < r->nids; i++) {
        free(r->ids[i]);
        free(r->nodes[i]);
    }
    free(r->ids);
    free(r->nodes);
    r->ids = r->nodes = NULL;
    r->nids = 0;
}

static served_t *served_slot(fl_consul_t *c, const char *node, const char *service)
{
    for (size_t i = 0; i < c->nserved; i++)
        if (strcmp(c->served[i].node, node) == 0 && strcmp(c->served[i].service, service) == 0)
            return &c->served[i];
    served_t *v = realloc(c->served, (c->nserved + 1) * sizeof *v);
    if (!v)
        return NULL;
    c->served = v;
    served_t *r = &v[c->nserved];
    memset(r, 0, sizeof *r);
    r->node = strdup(node);
    r->service = strdup(service);
    if (!r->node || !r->service) {
        free(r->node);
        free(r->service);
        return NULL;
    }
    c->nserved++;
    return r;
}

void served_record(ctx_t *x, int passing, const svc_t *const *v, size_t n)
{
    served_t *r = served_slot(x->c, x->a->node, x->arg);
    char **ids = calloc(n + 1, sizeof *ids), **nodes = calloc(n + 1, sizeof *nodes);
    int oom = !r || !ids || !nodes;
    for (size_t i = 0; !oom && i < n; i++) {
        ids[i] = strdup(v[i]->id);
        nodes[i] = strdup(v[i]->node);
        oom = !ids[i] || !nodes[i];
    }
    if (oom) {
        for (size_t i = 0; ids && nodes && i < n; i++) {
            free(ids[i]);
            free(nodes[i]);
        }
        free(ids);
        free(nodes);
        return;
    }
    served_free(r);
    r->ids = ids;
    r->nodes = nodes;
    r->nids = n;
    r->index = x->index ? x->index : x->st->index;
    r->at_ns = uv_hrtime();
    r->answers++;
    r->passing = passing;
}

void served_clear(fl_consul_t *c)
{
    for (size_t i = 0; i < c->nserved; i++) {
        served_free(&c->served[i]);
        free(c->served[i].node);
        free(c->served[i].service);
    }
    free(c->served);
    c->served = NULL;
    c->nserved = 0;
}

int fl_consul_last_served(const fl_consul_t *c, const char *node, const char *service,
                          fl_consul_served_t *out)
{
    for (size_t i = 0; c && i < c->nserved; i++) {
        const served_t *r = &c->served[i];
        if (strcmp(r->node, node) != 0 || strcmp(r->service, service) != 0)
            continue;
        out->index = r->index;
        out->at_ns = r->at_ns;
        out->answers = r->answers;
        out->passing = r->passing;
        out->ids = (const char *const *)r->ids;
        out->nodes = (const char *const *)r->nodes;
        out->nids = r->nids;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ the answer cache ---- */

void health_cache_clear(fl_consul_t *c)
{
    for (size_t i = 0; i < HCACHE_SLOTS; i++) {
        hcache_t *h = &c->hcache[i];
        free(h->key);
        free(h->rewrites);
        fl_buf_free(&h->body);
        memset(h, 0, sizeof *h);
    }
}

/* What an answer depends on besides the state: who asks, what, and how. */
static void cache_key(ctx_t *x, int passing, json_t *tags, fl_buf_t *key)
{
    fl_buf_printf(key, "%s\n%s\n%d\n%d", x->a->node, x->arg, passing, q_has(x, "pretty"));
    for (size_t i = 0; i < json_array_size(tags); i++)
        fl_buf_printf(key, "\n%s", json_string_value(json_array_get(tags, i)));
}

/* Where the asker is told each instance is: rewrites may change without a catalog write. */
static void cache_rewrites(ctx_t *x, fl_buf_t *out)
{
    fl_buf_puts(out, "");
    for (size_t i = 0; i < x->st->svcs.n; i++) {
        const svc_t *s = x->st->svcs.v[i];
        const node_t *node = strcmp(s->name, x->arg) == 0 ? node_of(x->st, s->node) : NULL;
        if (!node)
            continue;
        char addr[256];
        int port;
        address_for(x->c, x->a->node, node, s, addr, sizeof addr, &port);
        fl_buf_printf(out, "%s:%d;", addr, port);
    }
}

static hcache_t *cache_find(ctx_t *x, const fl_buf_t *key, const fl_buf_t *rewrites)
{
    for (size_t i = 0; i < HCACHE_SLOTS; i++) {
        hcache_t *h = &x->c->hcache[i];
        if (h->key && h->index == x->st->index && strcmp(h->key, key->data) == 0 &&
            strcmp(h->rewrites, rewrites->data) == 0)
            return h;
    }
    return NULL;
}

static void cache_store(ctx_t *x, fl_buf_t *key, fl_buf_t *rewrites)
{
    hcache_t *h = &x->c->hcache[x->c->hcache_next++ % HCACHE_SLOTS];
    free(h->key);
    free(h->rewrites);
    fl_buf_reset(&h->body);
    h->index = x->st->index;
    h->key = key->data;
    h->rewrites = rewrites->data;
    *key = (fl_buf_t)FL_BUF_INIT;
    *rewrites = (fl_buf_t)FL_BUF_INIT;
    if (fl_buf_append(&h->body, x->body.data, x->body.len)) {
        free(h->key);
        h->key = NULL;
    }
}

void health_service(ctx_t *x)
{
    int passing = passing_param(x);
    if (missing_name(x, "service name") || passing < 0)
        return;
    json_t *tags = q_all(x, "tag");
    fl_buf_t key = FL_BUF_INIT, rewrites = FL_BUF_INIT;
    x->index = service_index(x->st, x->arg);
    cache_key(x, passing, tags, &key);
    cache_rewrites(x, &rewrites);
    hcache_t *h = key.data && rewrites.data ? cache_find(x, &key, &rewrites) : NULL;
    if (h) {
        reply_empty(x);
        x->ctype = "application/json";
        fl_buf_append(&x->body, h->body.data, h->body.len);
    } else {
        reply_json(x, 200,
                   tags ? health_entries(x->c, x->st, x->a->node, x->arg, passing, tags) : NULL);
        if (x->status == 200 && key.data && rewrites.data)
            cache_store(x, &key, &rewrites);
    }
    if (x->ex && x->status == 200 && tags) { /* served over HTTP: what the asker now knows */
        size_t n;
        const svc_t **v = health_select(x->st, x->arg, passing, tags, &n);
        if (v)
            served_record(x, passing, v, n);
        free(v);
    }
    fl_buf_free(&key);
    fl_buf_free(&rewrites);
    json_decref(tags);
}

/* Replies with the checks keep() accepts, sorted by node and ID. */
static void reply_checks(ctx_t *x, int (*keep)(const void *, const void *), const void *arg)
{
    size_t n;
    void **v = select_sorted(&x->st->checks, keep, arg, cmp_check, &n);
    json_t *out = v ? json_array() : NULL;
    for (size_t i = 0; out && i < n; i++)
        json_array_append_new(out, r_check(x->st, v[i]));
    free(v);
    reply_json(x, 200, out);
}

static int keep_service_check(const void *rec, const void *arg)
{
    return strcmp(((const check_t *)rec)->service_name, arg) == 0;
}

int health_checks_index(ctx_t *x, uint64_t *idx)
{
    if (missing_name(x, "service name"))
        return -1;
    *idx = service_wake_index(x->st, x->arg);
    return 0;
}

void health_checks(ctx_t *x)
{
    if (missing_name(x, "service name"))
        return;
    x->index = service_index(x->st, x->arg);
    reply_checks(x, keep_service_check, x->arg);
}

int checks_table_index(ctx_t *x, uint64_t *idx)
{
    int state_route = strcmp(x->route->path, "/v1/health/state/") == 0;
    if (missing_name(x, state_route ? "check state" : "node name"))
        return -1;
    *idx = x->st->checks_index;
    return 0;
}

static int keep_state(const void *rec, const void *arg)
{
    const char *state = arg;
    return strcmp(state, "any") == 0 ||
           strcmp(status_name(((const check_t *)rec)->status), state) == 0;
}

void health_state(ctx_t *x)
{
    if (missing_name(x, "check state"))
        return;
    x->index = x->st->checks_index;
    reply_checks(x, keep_state, x->arg);
}

static int keep_node_check(const void *rec, const void *arg)
{
    return strcmp(((const check_t *)rec)->node, arg) == 0;
}

void health_node(ctx_t *x)
{
    if (missing_name(x, "node name"))
        return;
    x->index = x->st->checks_index;
    reply_checks(x, keep_node_check, x->arg);
}

/* ------------------------------------------------------------ catalog ---- */

int catalog_services_index(ctx_t *x, uint64_t *idx)
{
    *idx = x->st->services_index;
    return 0;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The union of the tags of every instance of name, sorted. */
static json_t *service_tags(const state_t *st, const char *name)
{
    size_t total = 0, n = 0;
    for (size_t i = 0; i < st->svcs.n; i++)
        if (strcmp(((svc_t *)st->svcs.v[i])->name, name) == 0)
            total += ((svc_t *)st->svcs.v[i])->ntags;
    const char **tags = malloc((total + 1) * sizeof *tags);
    json_t *out = tags ? json_array() : NULL;
    for (size_t i = 0; out && i < st->svcs.n; i++) {
        const svc_t *s = st->svcs.v[i];
        if (strcmp(s->name, name) == 0)
            for (size_t j = 0; j < s->ntags; j++)
                tags[n++] = s->tags[j];
    }
    if (out)
        qsort(tags, n, sizeof *tags, cmp_cstr);
    for (size_t i = 0; out && i < n; i++)
        if (i == 0 || strcmp(tags[i], tags[i - 1]) != 0)
            json_array_append_new(out, json_string(tags[i]));
    free(tags);
    return out;
}

void catalog_services(ctx_t *x)
{
    const state_t *st = x->st;
    size_t n = 0;
    const char **names = malloc((st->svcs.n + 1) * sizeof *names);
    json_t *out = names ? json_object() : NULL;
    for (size_t i = 0; out && i < st->svcs.n; i++)
        names[n++] = ((svc_t *)st->svcs.v[i])->name;
    if (out)
        qsort(names, n, sizeof *names, cmp_cstr);
    for (size_t i = 0; out && i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            json_object_set_new(out, names[i], service_tags(st, names[i]));
    free(names);
    x->index = st->services_index;
    reply_json(x, 200, out);
}

int catalog_service_index(ctx_t *x, uint64_t *idx)
{
    if (missing_name(x, "service name"))
        return -1;
    *idx = service_wake_index(x->st, x->arg);
    return 0;
}

void catalog_service(ctx_t *x)
{
    if (missing_name(x, "service name"))
        return;
    json_t *tags = q_all(x, "tag");
    svc_filter_t f = {x->arg, NULL, 0};
    f.tags = tag_vector(tags, &f.ntags);
    size_t n;
    void **v = f.tags ? select_sorted(&x->st->svcs, keep_svc, &f, cmp_svc, &n) : NULL;
    json_t *out = v ? json_array() : NULL;
    for (size_t i = 0; out && i < n; i++) {
        const svc_t *s = v[i];
        const node_t *node = node_of(x->st, s->node);
        if (!node)
            continue;
        char addr[256];
        int port;
        address_for(x->c, x->a->node, node, s, addr, sizeof addr, &port);
        json_array_append_new(out, r_service_node(x->c, node, s, addr, port));
    }
    free(v);
    free(f.tags);
    json_decref(tags);
    x->index = service_index(x->st, x->arg);
    reply_json(x, 200, out);
}

int catalog_nodes_index(ctx_t *x, uint64_t *idx)
{
    *idx = x->st->nodes_index;
    return 0;
}

void catalog_nodes(ctx_t *x)
{
    size_t n;
    void **v = select_sorted(&x->st->nodes, NULL, NULL, cmp_node, &n);
    json_t *out = v ? json_array() : NULL;
    for (size_t i = 0; out && i < n; i++)
        json_array_append_new(out, r_node(x->c, v[i]));
    free(v);
    x->index = x->st->nodes_index;
    reply_json(x, 200, out);
}

int catalog_node_index(ctx_t *x, uint64_t *idx)
{
    if (missing_name(x, "node name"))
        return -1;
    *idx = x->st->nodes_index > x->st->services_index ? x->st->nodes_index : x->st->services_index;
    return 0;
}

static int keep_node_svc(const void *rec, const void *arg)
{
    return strcmp(((const svc_t *)rec)->node, arg) == 0;
}

void catalog_node(ctx_t *x)
{
    uint64_t idx;
    if (catalog_node_index(x, &idx) < 0)
        return;
    x->index = idx;
    const node_t *node = node_of(x->st, x->arg);
    if (!node) {
        reply_json(x, 200, json_null());
        return;
    }
    size_t n;
    void **v = select_sorted(&x->st->svcs, keep_node_svc, x->arg, cmp_svc, &n);
    json_t *svcs = v ? json_object() : NULL;
    for (size_t i = 0; svcs && i < n; i++) {
        const svc_t *s = v[i];
        json_object_set_new(svcs, s->id, r_node_service(s, s->address, s->port));
    }
    free(v);
    reply_json(x, 200,
               svcs ? json_pack("{s:o, s:o}", "Node", r_node(x->c, node), "Services", svcs) : NULL);
}

void catalog_datacenters(ctx_t *x)
{
    reply_json(x, 200, json_pack("[s]", x->c->dc));
}

/* ------------------------------------------------------------ catalog writes ---- */

typedef struct {
    const char *node, *address, *dc, *id;
    const json_t *service, *check, *checks;
    int skip_node_update;
} regreq_t;

static svc_t *catalog_service_rec(godec_t *d, const char *node, const json_t *o)
{
    const char *id = "", *name = "", *addr = "", *kind = "";
    long long port = 0;
    json_t *tags = NULL, *meta = NULL;
    go_string(d, o, "ID", &id);
    go_string(d, o, "Service", &name);
    go_string(d, o, "Address", &addr);
    go_string(d, o, "Kind", &kind);
    go_int(d, o, "Port", &port);
    go_strings(d, o, "Tags", &tags);
    go_strmap(d, o, "Meta", &meta);
    svc_t *s = svc_new();
    size_t nt = tags ? json_array_size(tags) : 0;
    if (s) {
        s->node = strdup(node);
        s->id = strdup(*id ? id : name);
        s->name = strdup(name);
        s->address = strdup(addr);
        s->kind = strdup(kind);
        s->port = (int)port;
        s->meta = meta && json_object_size(meta) ? json_incref(meta) : NULL;
        s->tags = calloc(nt + 1, sizeof *s->tags);
        for (size_t i = 0; s->tags && i < nt; i++) {
            const char *t = json_string_value(json_array_get(tags, i));
            s->tags[s->ntags++] = strdup(t ? t : "");
        }
    }
    json_decref(tags);
    json_decref(meta);
    return s;
}

static check_t *catalog_check_rec(godec_t *d, const char *node, const json_t *o)
{
    const char *cnode = node, *id = "", *name = "", *status = "", *notes = "", *output = "",
               *sid = "", *sname = "";
    go_string(d, o, "Node", &cnode);
    go_string(d, o, "CheckID", &id);
    go_string(d, o, "Name", &name);
    go_string(d, o, "Status", &status);
    go_string(d, o, "Notes", &notes);
    go_string(d, o, "Output", &output);
    go_string(d, o, "ServiceID", &sid);
    go_string(d, o, "ServiceName", &sname);
    check_t *k = check_new();
    if (!k)
        return NULL;
    k->node = strdup(*cnode ? cnode : node);
    k->id = strdup(*id ? id : name);
    k->name = strdup(name);
    k->notes = strdup(notes);
    k->output = strdup(output);
    k->service_id = strdup(sid);
    k->service_name = strdup(sname);
    k->status = *status ? status_parse(status) : ST_CRITICAL;
    k->def = checkdef_new();
    const json_t *def = NULL;
    go_object(d, o, "Definition", "structs.HealthCheckDefinition", &def);
    if (k->def && def) {
        const char *http = NULL, *tcp = NULL;
        long long v = 0;
        go_string(d, def, "HTTP", &http);
        go_string(d, def, "TCP", &tcp);
        k->def->http = xstrdup(http);
        k->def->tcp = xstrdup(tcp);
        if (go_duration_field(d, def, "Interval", &v) == 0 && v > 0)
            k->def->interval = (uint64_t)v;
        v = 0;
        if (go_duration_field(d, def, "Timeout", &v) == 0 && v > 0)
            k->def->timeout = (uint64_t)v;
    }
    return k;
}

static int complete_check(const check_t *k)
{
    return k->node && k->id && k->name && k->notes && k->output && k->service_id &&
           k->service_name && k->def;
}

/* Catalog.Register's validation: NULL or the reason (a 500 in Consul). */
static const char *register_invalid(const regreq_t *r, const svc_t *s, check_t **checks, size_t n,
                                    const state_t *st, char *buf, size_t len)
{
    if (!*r->node)
        return "Must provide node";
    if (!*r->address && !r->skip_node_update)
        return "Must provide address if SkipNodeUpdate is not set";
    if (s && *s->id && !*s->name)
        return "Must provide service name with ID";
    if (s && (strcmp(s->address, "0.0.0.0") == 0 || strcmp(s->address, "::") == 0))
        return "Invalid service address";
    for (size_t i = 0; i < n; i++) {
        if (strcmp(checks[i]->node, r->node) != 0) {
            snprintf(buf, len, "check node \"%s\" does not match node \"%s\"", checks[i]->node,
                     r->node);
            return buf;
        }
        if (checks[i]->status < 0)
            return "failed inserting check: Invalid health check status";
        if (*checks[i]->service_id && !(s && strcmp(s->id, checks[i]->service_id) == 0) &&
            find_svc(st, r->node, checks[i]->service_id) < 0) {
            snprintf(buf, len,
                     "failed inserting check on node \"%s\": Missing service registration",
                     r->node);
            return buf;
        }
    }
    return NULL;
}

/* Fills in a check's service name from its service, as the state store does. */
static int name_check_service(const state_t *st, const svc_t *s, check_t *k)
{
    const char *name = "";
    if (*k->service_id) {
        long i = find_svc(st, k->node, k->service_id);
        if (s && strcmp(s->id, k->service_id) == 0)
            name = s->name;
        else if (i >= 0)
            name = ((svc_t *)st->svcs.v[i])->name;
    }
    free(k->service_name);
    return (k->service_name = strdup(name)) ? 0 : FL_ENOMEM;
}

static int apply_register(fl_consul_t *c, const regreq_t *r, svc_t *s, check_t **checks, size_t n)
{
    uint64_t idx = cat_begin(c);
    int rc = 0;
    long ni = find_node(c->live, r->node);
    if (!r->skip_node_update || ni < 0) {
        node_t *node = node_new(r->node, r->address);
        if (node && ni >= 0)
            node->agent = ((node_t *)c->live->nodes.v[ni])->agent;
        rc = node ? cat_put_node(c, idx, node) : FL_ENOMEM;
    }
    for (size_t i = 0; !rc && i < n; i++)
        rc = name_check_service(c->live, s, checks[i]);
    if (!rc && s)
        rc = cat_put_svc(c, idx, rec_ref(s));
    for (size_t i = 0; !rc && i < n; i++)
        rc = cat_put_check(c, idx, rec_ref(checks[i]));
    cat_end(c);
    return rc;
}

static void parse_regreq(godec_t *d, const json_t *body, regreq_t *r)
{
    go_string(d, body, "Node", &r->node);
    go_string(d, body, "Address", &r->address);
    go_string(d, body, "Datacenter", &r->dc);
    go_string(d, body, "ID", &r->id);
    go_bool(d, body, "SkipNodeUpdate", &r->skip_node_update);
    go_object(d, body, "Service", "structs.NodeService", &r->service);
    go_object(d, body, "Check", "structs.HealthCheck", &r->check);
    r->checks = go_field(body, "Checks");
    if (r->checks && !json_is_array(r->checks))
        r->checks = NULL;
}

void catalog_register(ctx_t *x)
{
    json_t *body = decode_body(x, "structs.RegisterRequest");
    if (!body)
        return;
    godec_t d = {FL_BUF_INIT, "RegisterRequest"};
    regreq_t r = {"", "", "", "", NULL, NULL, NULL, 0};
    parse_regreq(&d, body, &r);
    svc_t *s = r.service ? catalog_service_rec(&d, r.node, r.service) : NULL;
    check_t *checks[65];
    size_t n = 0;
    int oom = r.service && (!s || !s->node || !s->id || !s->name || !s->address || !s->kind);
    if (r.check)
        checks[n++] = catalog_check_rec(&d, r.node, r.check);
    for (size_t i = 0; r.checks && i < json_array_size(r.checks) && n < 65; i++)
        if (json_is_object(json_array_get(r.checks, i)))
            checks[n++] = catalog_check_rec(&d, r.node, json_array_get(r.checks, i));
    for (size_t i = 0; i < n; i++)
        oom |= !checks[i] || !complete_check(checks[i]);
    char buf[512];
    const char *why;
    if (oom)
        reply_text(x, 500, "out of memory");
    else if (d.err.len)
        reply_text(x, 400, "Request decode failed: %s", d.err.data);
    else if (*r.dc && strcmp(r.dc, x->c->dc) != 0)
        reply_text(x, 500, "No path to datacenter");
    else if ((why = register_invalid(&r, s, checks, n, x->c->live, buf, sizeof buf)))
        reply_text(x, 500, "%s", why);
    else if (apply_register(x->c, &r, s, checks, n))
        reply_text(x, 500, "out of memory");
    else
        reply_bool(x, 1);
    rec_unref(s);
    for (size_t i = 0; i < n; i++)
        rec_unref(checks[i]);
    fl_buf_free(&d.err);
    json_decref(body);
}

void catalog_deregister(ctx_t *x)
{
    json_t *body = decode_body(x, "structs.DeregisterRequest");
    if (!body)
        return;
    godec_t d = {FL_BUF_INIT, "DeregisterRequest"};
    const char *node = "", *sid = "", *cid = "", *dc = "";
    go_string(&d, body, "Node", &node);
    go_string(&d, body, "ServiceID", &sid);
    go_string(&d, body, "CheckID", &cid);
    go_string(&d, body, "Datacenter", &dc);
    fl_consul_t *c = x->c;
    if (d.err.len) {
        reply_text(x, 400, "Request decode failed: %s", d.err.data);
    } else if (*dc && strcmp(dc, c->dc) != 0) {
        reply_text(x, 500, "No path to datacenter");
    } else if (!*node) {
        reply_text(x, 500, "Must provide node");
    } else {
        int agent_node = agent_named(c, node) != NULL;
        uint64_t idx = cat_begin(c);
        if (*sid)
            cat_del_svc(c, idx, node, sid);
        if (*cid)
            cat_del_check(c, idx, node, cid);
        if (!*sid && !*cid && !agent_node) /* an agent's own node stays: the agent is alive */
            cat_del_node(c, idx, node);
        cat_end(c);
        if (*sid)
            runners_stop_service(c, node, sid);
        if (*cid)
            runner_stop(c, node, cid);
        reply_bool(x, 1);
    }
    fl_buf_free(&d.err);
    json_decref(body);
}

/* ------------------------------------------------------------ status ---- */

static const char *leader_host(const fl_consul_t *c)
{
    return c->agents ? c->agents->host : "127.0.0.1";
}

void status_leader(ctx_t *x)
{
    char addr[300];
    snprintf(addr, sizeof addr, "%s:8300", leader_host(x->c));
    reply_json(x, 200, json_string(addr));
}

void status_peers(ctx_t *x)
{
    char addr[300];
    snprintf(addr, sizeof addr, "%s:8300", leader_host(x->c));
    reply_json(x, 200, json_pack("[s]", addr));
}
