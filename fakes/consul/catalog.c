/* The catalog: Consul's state store in miniature. Records never change once they are in a
 * state (a write puts a new record in place of the old), so that a snapshot only copies
 * pointers. Every write first pushes a snapshot of the live state into a bounded history,
 * which is what stale answers are read from, then takes the next raft index. Besides the
 * records, a state keeps the indexes blocking queries compare against: one per table (nodes,
 * services, checks, KV), one per service name (bumped by anything that changes that service's
 * health answer, as Consul's "service.<name>" index) and the last service extinction. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakes/consul/internal.h"
#include "lib/err.h"

/* ------------------------------------------------------------ records ---- */

void *rec_ref(void *p)
{
    if (p)
        ((rec_t *)p)->refs++;
    return p;
}

void rec_unref(void *p)
{
    rec_t *r = p;
    if (r && --r->refs == 0)
        r->destroy(r);
}

char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *strdup_max(const char *s, size_t max)
{
    size_t n = strlen(s);
    n = n < max ? n : max;
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

int vec_push(vec_t *v, void *p)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void **n = realloc(v->v, cap * sizeof *n);
        if (!n)
            return FL_ENOMEM;
        v->v = n;
        v->cap = cap;
    }
    v->v[v->n++] = p;
    return 0;
}

void vec_remove(vec_t *v, size_t i)
{
    rec_unref(v->v[i]);
    memmove(&v->v[i], &v->v[i + 1], (v->n - i - 1) * sizeof v->v[0]);
    v->n--;
}

static void node_destroy(rec_t *r)
{
    node_t *n = (node_t *)r;
    free(n->name);
    free(n->address);
    free(n->id);
    free(n);
}

node_t *node_new(const char *name, const char *address)
{
    node_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->rec = (rec_t){1, node_destroy};
    n->name = strdup(name);
    n->address = strdup(address ? address : "");
    n->id = strdup("");
    if (!n->name || !n->address || !n->id) {
        node_destroy(&n->rec);
        return NULL;
    }
    return n;
}

static void svc_destroy(rec_t *r)
{
    svc_t *s = (svc_t *)r;
    free(s->node);
    free(s->id);
    free(s->name);
    free(s->address);
    free(s->kind);
    for (size_t i = 0; i < s->ntags; i++)
        free(s->tags[i]);
    free(s->tags);
    json_decref(s->meta);
    free(s);
}

svc_t *svc_new(void)
{
    svc_t *s = calloc(1, sizeof *s);
    if (s) {
        s->rec = (rec_t){1, svc_destroy};
        s->weight_passing = 1;
        s->weight_warning = 1;
    }
    return s;
}

static void checkdef_destroy(rec_t *r)
{
    checkdef_t *d = (checkdef_t *)r;
    free(d->http);
    free(d->method);
    free(d->body);
    free(d->tcp);
    free(d->grpc);
    free(d->udp);
    free(d->tls_server_name);
    free(d->type);
    json_decref(d->header);
    free(d);
}

checkdef_t *checkdef_new(void)
{
    checkdef_t *d = calloc(1, sizeof *d);
    if (d)
        d->rec = (rec_t){1, checkdef_destroy};
    return d;
}

static void check_destroy(rec_t *r)
{
    check_t *k = (check_t *)r;
    free(k->node);
    free(k->id);
    free(k->name);
    free(k->notes);
    free(k->output);
    free(k->service_id);
    free(k->service_name);
    rec_unref(k->def);
    free(k);
}

check_t *check_new(void)
{
    check_t *k = calloc(1, sizeof *k);
    if (k)
        k->rec = (rec_t){1, check_destroy};
    return k;
}

check_t *check_copy(const check_t *o)
{
    check_t *k = check_new();
    if (!k)
        return NULL;
    *k = *o;
    k->rec.refs = 1;
    k->node = xstrdup(o->node);
    k->id = xstrdup(o->id);
    k->name = xstrdup(o->name);
    k->notes = xstrdup(o->notes);
    k->output = xstrdup(o->output);
    k->service_id = xstrdup(o->service_id);
    k->service_name = xstrdup(o->service_name);
    k->def = rec_ref(o->def);
    if (!k->node || !k->id || !k->name || !k->notes || !k->output || !k->service_id ||
        !k->service_name) {
        check_destroy(&k->rec);
        return NULL;
    }
    return k;
}

static void kv_destroy(rec_t *r)
{
    kv_t *e = (kv_t *)r;
    free(e->key);
    free(e->value);
    free(e);
}

kv_t *kv_new(const char *key, const void *value, size_t len)
{
    kv_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->rec = (rec_t){1, kv_destroy};
    e->key = strdup(key);
    if (len) {
        e->value = malloc(len);
        if (e->value)
            memcpy(e->value, value, len);
        e->len = len;
    }
    if (!e->key || (len && !e->value)) {
        kv_destroy(&e->rec);
        return NULL;
    }
    return e;
}

static void mark_destroy(rec_t *r)
{
    mark_t *m = (mark_t *)r;
    free(m->name);
    free(m);
}

mark_t *mark_new(const char *name, uint64_t index)
{
    mark_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->rec = (rec_t){1, mark_destroy};
    m->name = strdup(name);
    m->index = index;
    if (!m->name) {
        free(m);
        return NULL;
    }
    return m;
}

const char *status_name(int st)
{
    return st == ST_PASSING ? "passing" : st == ST_WARNING ? "warning" : "critical";
}

int status_parse(const char *s)
{
    if (strcmp(s, "passing") == 0)
        return ST_PASSING;
    if (strcmp(s, "warning") == 0)
        return ST_WARNING;
    if (strcmp(s, "critical") == 0)
        return ST_CRITICAL;
    return -1;
}

/* ------------------------------------------------------------ states ---- */

state_t *state_new(void)
{
    state_t *st = calloc(1, sizeof *st);
    if (st)
        st->since = uv_hrtime();
    return st;
}

static vec_t *state_vecs(state_t *st, size_t *n)
{
    *n = 6;
    return &st->nodes; /* nodes, svcs, checks, kv, tombs, svcidx are consecutive */
}

state_t *state_clone(const state_t *o)
{
    state_t *st = malloc(sizeof *st);
    if (!st)
        return NULL;
    *st = *o;
    size_t nv;
    vec_t *v = state_vecs(st, &nv);
    for (size_t i = 0; i < nv; i++)
        v[i] = (vec_t){NULL, 0, 0};
    const vec_t *ov = &o->nodes;
    for (size_t i = 0; i < nv; i++) {
        v[i].v = malloc((ov[i].n ? ov[i].n : 1) * sizeof(void *));
        if (!v[i].v) {
            state_free(st);
            return NULL;
        }
        v[i].cap = ov[i].n ? ov[i].n : 1;
        for (size_t j = 0; j < ov[i].n; j++)
            v[i].v[v[i].n++] = rec_ref(ov[i].v[j]);
    }
    return st;
}

void state_free(state_t *st)
{
    if (!st)
        return;
    size_t nv;
    vec_t *v = state_vecs(st, &nv);
    for (size_t i = 0; i < nv; i++) {
        for (size_t j = 0; j < v[i].n; j++)
            rec_unref(v[i].v[j]);
        free(v[i].v);
    }
    free(st);
}

/* ------------------------------------------------------------ lookups ---- */

long find_node(const state_t *st, const char *name)
{
    for (size_t i = 0; i < st->nodes.n; i++)
        if (strcmp(((node_t *)st->nodes.v[i])->name, name) == 0)
            return (long)i;
    return -1;
}

long find_svc(const state_t *st, const char *node, const char *id)
{
    for (size_t i = 0; i < st->svcs.n; i++) {
        const svc_t *s = st->svcs.v[i];
        if (strcmp(s->id, id) == 0 && strcmp(s->node, node) == 0)
            return (long)i;
    }
    return -1;
}

long find_check(const state_t *st, const char *node, const char *id)
{
    for (size_t i = 0; i < st->checks.n; i++) {
        const check_t *k = st->checks.v[i];
        if (strcmp(k->id, id) == 0 && strcmp(k->node, node) == 0)
            return (long)i;
    }
    return -1;
}

static long find_mark(const vec_t *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(((mark_t *)v->v[i])->name, name) == 0)
            return (long)i;
    return -1;
}

static int service_exists(const state_t *st, const char *name)
{
    for (size_t i = 0; i < st->svcs.n; i++)
        if (strcmp(((svc_t *)st->svcs.v[i])->name, name) == 0)
            return 1;
    return 0;
}

static uint64_t max3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t m = a > b ? a : b;
    return m > c ? m : c;
}

uint64_t service_index(const state_t *st, const char *name)
{
    long i = find_mark(&st->svcidx, name);
    if (i >= 0 && service_exists(st, name))
        return ((mark_t *)st->svcidx.v[i])->index;
    if (st->extinction_index)
        return st->extinction_index;
    return max3(st->nodes_index, st->services_index, st->checks_index);
}

uint64_t service_wake_index(const state_t *st, const char *name)
{
    long i = find_mark(&st->svcidx, name);
    return i >= 0 ? ((mark_t *)st->svcidx.v[i])->index : 0;
}

int svc_passing(const state_t *st, const svc_t *s)
{
    for (size_t i = 0; i < st->checks.n; i++) {
        const check_t *k = st->checks.v[i];
        if (strcmp(k->node, s->node) != 0)
            continue;
        if (*k->service_id && strcmp(k->service_id, s->id) != 0)
            continue;
        if (k->status != ST_PASSING)
            return 0;
    }
    return 1;
}

int svc_tags_match(const svc_t *s, char **tags, size_t ntags)
{
    for (size_t i = 0; i < ntags; i++) {
        size_t j;
        for (j = 0; j < s->ntags; j++)
            if (strcasecmp(s->tags[j], tags[i]) == 0)
                break;
        if (j == s->ntags)
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ history ---- */

static void history_push(fl_consul_t *c, state_t *st)
{
    if (!st)
        return; /* out of memory: stale answers lose this step, nothing worse */
    if (c->hist_len == HISTORY_MAX) {
        state_free(c->hist[c->hist_start]);
        c->hist_start = (c->hist_start + 1) % HISTORY_MAX;
        c->hist_len--;
    }
    c->hist[(c->hist_start + c->hist_len) % HISTORY_MAX] = st;
    c->hist_len++;
}

void history_clear(fl_consul_t *c)
{
    for (size_t i = 0; i < c->hist_len; i++)
        state_free(c->hist[(c->hist_start + i) % HISTORY_MAX]);
    c->hist_len = 0;
}

static state_t *history_at(const fl_consul_t *c, size_t i)
{
    return c->hist[(c->hist_start + i) % HISTORY_MAX];
}

/* The position of the state current at time t: hist_len for the live one. */
static size_t view_pos(const fl_consul_t *c, uint64_t t)
{
    if (c->live->since <= t)
        return c->hist_len;
    for (size_t i = c->hist_len; i-- > 0;)
        if (history_at(c, i)->since <= t)
            return i;
    return c->hist_len ? 0 : c->hist_len; /* older than what is kept: the oldest kept */
}

const state_t *cat_view(const fl_consul_t *c)
{
    if (!c->stale_ns)
        return c->live;
    uint64_t now = uv_hrtime();
    uint64_t t = now > c->stale_ns ? now - c->stale_ns : 0;
    size_t pos = view_pos(c, t);
    return pos == c->hist_len ? c->live : history_at(c, pos);
}

uint64_t cat_view_next_change(const fl_consul_t *c)
{
    if (!c->stale_ns)
        return 0;
    uint64_t now = uv_hrtime();
    uint64_t t = now > c->stale_ns ? now - c->stale_ns : 0;
    size_t pos = view_pos(c, t);
    if (pos == c->hist_len)
        return 0;
    const state_t *next = pos + 1 == c->hist_len ? c->live : history_at(c, pos + 1);
    return next->since + c->stale_ns;
}

/* ------------------------------------------------------------ writes ---- */

uint64_t cat_begin(fl_consul_t *c)
{
    history_push(c, state_clone(c->live));
    c->live->index++;
    c->live->since = uv_hrtime();
    return c->live->index;
}

void cat_end(fl_consul_t *c)
{
    blocking_kick(c);
}

/* Records that service `name` changed at idx (its mark stays after its last instance goes, so
 * that a query about it wakes when it comes back). */
static int touch_service(state_t *st, const char *name, uint64_t idx)
{
    long i = find_mark(&st->svcidx, name);
    if (!service_exists(st, name))
        st->extinction_index = idx;
    mark_t *m = mark_new(name, idx);
    if (!m)
        return FL_ENOMEM;
    if (i >= 0) {
        rec_unref(st->svcidx.v[i]);
        st->svcidx.v[i] = m;
        return 0;
    }
    if (vec_push(&st->svcidx, m)) {
        rec_unref(m);
        return FL_ENOMEM;
    }
    return 0;
}

/* A node-level change alters the health of every service on the node. */
static int touch_node_services(state_t *st, const char *node, uint64_t idx)
{
    int rc = 0;
    for (size_t i = 0; i < st->svcs.n; i++) {
        const svc_t *s = st->svcs.v[i];
        if (strcmp(s->node, node) == 0 && touch_service(st, s->name, idx))
            rc = FL_ENOMEM;
    }
    return rc;
}

/* Puts rec at position i (replacing) or at the end (i < 0). Takes rec. */
static int put_at(vec_t *v, long i, void *rec)
{
    if (i >= 0) {
        rec_unref(v->v[i]);
        v->v[i] = rec;
        return 0;
    }
    if (vec_push(v, rec)) {
        rec_unref(rec);
        return FL_ENOMEM;
    }
    return 0;
}

int cat_put_node(fl_consul_t *c, uint64_t idx, node_t *n)
{
    state_t *st = c->live;
    long i = find_node(st, n->name);
    n->create_index = n->modify_index = idx;
    if (i >= 0) {
        node_t *old = st->nodes.v[i];
        if (strcmp(old->address, n->address) == 0 && old->agent == n->agent) {
            rec_unref(n);
            return 0;
        }
        n->create_index = old->create_index;
        if (!*n->id)
            free(n->id), n->id = strdup(old->id);
    }
    char *name = strdup(n->name);
    if (!name) {
        rec_unref(n);
        return FL_ENOMEM;
    }
    int rc = put_at(&st->nodes, i, n);
    st->nodes_index = idx;
    if (!rc)
        rc = touch_node_services(st, name, idx);
    free(name);
    return rc;
}

int cat_put_svc(fl_consul_t *c, uint64_t idx, svc_t *s)
{
    state_t *st = c->live;
    long i = find_svc(st, s->node, s->id);
    char *old_name = NULL;
    s->create_index = s->modify_index = idx;
    if (i >= 0) {
        const svc_t *old = st->svcs.v[i];
        s->create_index = old->create_index;
        if (strcmp(old->name, s->name) != 0 && !(old_name = strdup(old->name))) {
            rec_unref(s);
            return FL_ENOMEM;
        }
    }
    const char *name = s->name;
    int rc = put_at(&st->svcs, i, s);
    st->services_index = idx;
    if (rc) {
        free(old_name);
        return rc;
    }
    rc = touch_service(st, name, idx);
    if (old_name && touch_service(st, old_name, idx))
        rc = FL_ENOMEM;
    free(old_name);
    return rc;
}

/* Removes the checks of (node, service_id), or every check of node when service_id is NULL. */
static int remove_checks(state_t *st, const char *node, const char *service_id)
{
    int removed = 0;
    for (size_t i = st->checks.n; i-- > 0;) {
        const check_t *k = st->checks.v[i];
        if (strcmp(k->node, node) != 0)
            continue;
        if (service_id && strcmp(k->service_id, service_id) != 0)
            continue;
        vec_remove(&st->checks, i);
        removed = 1;
    }
    return removed;
}

void cat_del_svc(fl_consul_t *c, uint64_t idx, const char *node, const char *id)
{
    state_t *st = c->live;
    long i = find_svc(st, node, id);
    if (i < 0)
        return;
    svc_t *s = rec_ref(st->svcs.v[i]);
    vec_remove(&st->svcs, (size_t)i);
    if (remove_checks(st, node, s->id))
        st->checks_index = idx;
    st->services_index = idx;
    touch_service(st, s->name, idx);
    rec_unref(s);
}

int cat_put_check(fl_consul_t *c, uint64_t idx, check_t *k)
{
    state_t *st = c->live;
    long i = find_check(st, k->node, k->id);
    k->create_index = k->modify_index = idx;
    if (i >= 0)
        k->create_index = ((check_t *)st->checks.v[i])->create_index;
    rec_ref(k);
    int rc = put_at(&st->checks, i, k);
    st->checks_index = idx;
    if (!rc)
        rc = *k->service_name ? touch_service(st, k->service_name, idx)
                              : touch_node_services(st, k->node, idx);
    rec_unref(k);
    return rc;
}

void cat_del_check(fl_consul_t *c, uint64_t idx, const char *node, const char *id)
{
    state_t *st = c->live;
    long i = find_check(st, node, id);
    if (i < 0)
        return;
    check_t *k = rec_ref(st->checks.v[i]);
    vec_remove(&st->checks, (size_t)i);
    st->checks_index = idx;
    if (*k->service_name)
        touch_service(st, k->service_name, idx);
    else
        touch_node_services(st, k->node, idx);
    rec_unref(k);
}

void cat_del_node(fl_consul_t *c, uint64_t idx, const char *node)
{
    state_t *st = c->live;
    for (size_t i = st->svcs.n; i-- > 0;) {
        const svc_t *s = st->svcs.v[i];
        if (strcmp(s->node, node) == 0)
            cat_del_svc(c, idx, node, s->id);
    }
    if (remove_checks(st, node, NULL))
        st->checks_index = idx;
    long i = find_node(st, node);
    if (i >= 0) {
        vec_remove(&st->nodes, (size_t)i);
        st->nodes_index = idx;
    }
}

void cat_bump_kv(fl_consul_t *c, uint64_t idx)
{
    c->live->kv_index = idx;
}

/* Keeps timeline lines short: check outputs can be whole response bodies. */
static void clip(const char *s, char *out, size_t n)
{
    size_t len = strcspn(s, "\r\n");
    if (len >= n - 4) {
        memcpy(out, s, n - 4);
        strcpy(out + n - 4, "...");
    } else {
        memcpy(out, s, len);
        out[len] = '\0';
    }
}

int cat_set_check(fl_consul_t *c, const char *node, const char *id, int status, const char *output)
{
    state_t *st = c->live;
    long i = find_check(st, node, id);
    if (i < 0)
        return 0;
    const check_t *old = st->checks.v[i];
    if (old->status == status && strcmp(old->output, output) == 0)
        return 0;
    check_t *k = check_copy(old);
    char *out = strdup(output);
    if (!k || !out) {
        rec_unref(k);
        free(out);
        return FL_ENOMEM;
    }
    free(k->output);
    k->output = out;
    if (old->status == status) { /* output only: not a write, as with Consul's lazy sync */
        put_at(&st->checks, i, k);
        return 0;
    }
    int from = old->status;
    uint64_t idx = cat_begin(c);
    k->status = status;
    k->modify_index = idx;
    rec_ref(k);
    put_at(&st->checks, i, k);
    st->checks_index = idx;
    if (*k->service_name)
        touch_service(st, k->service_name, idx);
    else
        touch_node_services(st, k->node, idx);
    cat_end(c);
    char clipped[200];
    clip(output, clipped, sizeof clipped);
    consul_event(c, node, "check %s %s -> %s%s%s", id, status_name(from), status_name(status),
                 *clipped ? ": " : "", clipped);
    rec_unref(k);
    return 1;
}
