/* Blocking queries, as Consul runs them: ?index=N&wait=D on a read holds the answer until the
 * index that read would answer with moves past N, or until the wait is over (D is a Go
 * duration; missing or not positive means 5 minutes, at most 10 minutes, and Consul adds a
 * random wait/16 of jitter, here from the seeded generator). index=0 never blocks; an index
 * ahead of the catalog waits, as in Consul. A parked query is a req_t on the waiters list,
 * with its deadline as its timer. Every write kicks a re-evaluation of all of them on the next
 * loop iteration (one pass for a burst of writes); each compares only an index, and only
 * those that move are rendered. While frozen, nothing parked is answered, not even at its
 * deadline; the thaw answers those whose wait ran out. With stale answers the view moves on
 * by itself as time passes, so a timer kicks a pass when it next does. A query served without
 * a socket (fl_consul_serve) never parks: it is answered at once, as at its deadline.
 *
 * Many waiters usually ask the same thing (every replica of a client watching one service
 * through its agent), so a pass groups them by agent, route, path and query (index and wait
 * aside, which decide only whether to answer): each group's index is evaluated and its answer
 * rendered and formatted once, and every waiter of the group that moved gets those same bytes
 * (lib/httpd writes them straight to its socket). Under the latency fault every waiter is
 * evaluated on its own, as answers are then held one by one. */
#include <stdlib.h>
#include <string.h>

#include "fakes/consul/internal.h"
#include "lib/err.h"

#define DEFAULT_WAIT_NS (5 * 60 * 1000000000ull)
#define MAX_WAIT_NS (10 * 60 * 1000000000ull)
#define JITTER_FRACTION 16

/* Parses ?wait and ?index; answers 400 as Consul does and returns -1 when they are bad. */
static int parse_wait(ctx_t *x, uint64_t *min_index, uint64_t *wait_ns)
{
    char buf[128];
    *min_index = 0;
    *wait_ns = 0;
    if (q_get(x, "wait", buf, sizeof buf) == 0 && *buf) {
        long long ns;
        if (go_parse_duration(buf, &ns, NULL) < 0) {
            reply_text(x, 400, "Invalid wait time");
            return -1;
        }
        *wait_ns = ns > 0 ? (uint64_t)ns : 0;
    }
    if (q_get(x, "index", buf, sizeof buf) == 0 && *buf) {
        unsigned long long idx;
        if (go_parse_uint(buf, &idx, NULL) < 0) {
            reply_text(x, 400, "Invalid index");
            return -1;
        }
        *min_index = idx;
    }
    return 0;
}

static uint64_t wait_with_jitter(fl_consul_t *c, uint64_t wait)
{
    if (wait == 0)
        wait = DEFAULT_WAIT_NS;
    if (wait > MAX_WAIT_NS)
        wait = MAX_WAIT_NS;
    if (wait / JITTER_FRACTION)
        wait += fl_rng_below(&c->rng, wait / JITTER_FRACTION);
    return wait;
}

static void answer(ctx_t *x)
{
    x->route->handle(x);
    ctx_send(x);
}

static void on_deadline(uv_timer_t *t);

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static int is_param(const char *pair, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len >= n && strncmp(pair, name, n) == 0 && (len == n || pair[n] == '=');
}

/* The share key of a parked query: its path as sent, and its query without index and wait
 * (only literally spelt ones are left out; any other spelling keeps the waiter apart, which
 * costs a render, never a wrong answer). NULL on FL_ENOMEM: the waiter is then evaluated on
 * its own. */
static char *share_key(fl_httpd_exchange_t *ex)
{
    const char *path = fl_httpd_path(ex), *q = fl_httpd_query(ex);
    size_t plen = strlen(path), qlen = strlen(q);
    char *key = malloc(plen + qlen + 2), *k = key;
    if (!key)
        return NULL;
    memcpy(k, path, plen);
    k += plen;
    *k++ = '?';
    while (*q) {
        size_t n = strcspn(q, "&");
        if (!is_param(q, n, "index") && !is_param(q, n, "wait")) {
            memcpy(k, q, n);
            k += n;
            *k++ = '&';
        }
        q += n + (q[n] == '&');
    }
    *k = '\0';
    return key;
}

static void park(ctx_t *x, uint64_t min_index, uint64_t wait)
{
    fl_consul_t *c = x->c;
    req_t *r = req_new(c, x->a, x->ex, REQ_WAIT);
    if (!r) {
        answer(x); /* cannot wait: answer now, which Consul allows (a spurious wake-up) */
        return;
    }
    r->route = x->route;
    r->min_index = min_index;
    r->share_key = share_key(x->ex);
    if (r->share_key) {
        uint64_t h = 0xcbf29ce484222325ull;
        h = fnv1a(h, &r->a, sizeof r->a);
        h = fnv1a(h, &r->route, sizeof r->route);
        r->share_hash = fnv1a(h, r->share_key, strlen(r->share_key));
    }
    req_link(&c->waiters, r);
    uint64_t ms = (wait_with_jitter(c, wait) + 999999) / 1000000;
    uv_timer_start(&r->timer, on_deadline, ms, 0);
}

void blocking_run(ctx_t *x)
{
    uint64_t min_index, wait, idx;
    if (parse_wait(x, &min_index, &wait) < 0 || check_dc(x) < 0 || x->route->index(x, &idx) < 0) {
        ctx_send(x);
        return;
    }
    if (min_index == 0 || idx > min_index || !x->ex) /* synchronous: answers as at the deadline */
        answer(x);
    else
        park(x, min_index, wait);
}

/* Sets x up to evaluate parked query r again against st. Returns 0, or -1 when r's exchange
 * is gone or x cannot be set up (x needs no freeing then). */
static int reopen(ctx_t *x, fl_consul_t *c, req_t *r, const state_t *st)
{
    if (!r->ex)
        return -1;
    if (ctx_init(x, c, r->a, r->ex) < 0) {
        ctx_free(x);
        return -1;
    }
    x->route = r->route;
    x->st = st;
    size_t plen = strlen(x->route->path);
    memmove(x->arg, x->arg + plen, strlen(x->arg + plen) + 1);
    return 0;
}

/* Looks at one parked query again; answers it when its index moved or its wait is over. */
static void evaluate(fl_consul_t *c, req_t *r, const state_t *st, int force)
{
    ctx_t x;
    uint64_t idx = 0;
    if (reopen(&x, c, r, st) < 0)
        return;
    if (x.route->index(&x, &idx) < 0)
        ctx_send(&x);
    else if (force || idx > r->min_index)
        answer(&x);
    ctx_free(&x);
}

static void on_deadline(uv_timer_t *t)
{
    req_t *r = t->data;
    fl_consul_t *c = r->c;
    if (c->frozen) {
        r->expired = 1;
        return;
    }
    evaluate(c, r, cat_view(c), 1);
}

/* Waiters of one pass asking the same thing (same agent, route and share key). */
typedef struct {
    const req_t *first; /* whose agent, route and key the group has; NULL: a free slot */
    int alone;          /* its index answered an error: each waiter is evaluated on its own */
    uint64_t idx;
    fl_httpd_prepared_t *answer; /* rendered once one waiter needed it */
} group_t;

typedef struct {
    group_t *v;
    size_t mask;
} groups_t;

static int same_question(const req_t *a, const req_t *b)
{
    return a->share_hash == b->share_hash && a->a == b->a && a->route == b->route &&
           strcmp(a->share_key, b->share_key) == 0;
}

/* r's group (open addressing; the table has room for every waiter), evaluated on first use;
 * NULL when r is to be evaluated on its own. */
static group_t *group_of(fl_consul_t *c, groups_t *gs, req_t *r, const state_t *st)
{
    if (!r->share_key || !r->ex)
        return NULL;
    size_t i = (size_t)r->share_hash & gs->mask;
    while (gs->v[i].first && !same_question(gs->v[i].first, r))
        i = (i + 1) & gs->mask;
    group_t *g = &gs->v[i];
    if (!g->first) {
        ctx_t x;
        g->first = r;
        g->alone = reopen(&x, c, r, st) < 0;
        if (!g->alone) {
            g->alone = x.route->index(&x, &g->idx) < 0;
            ctx_free(&x);
        }
    }
    return g->alone ? NULL : g;
}

/* Renders the group's answer through r's request (any member's gives the same bytes). */
static int render(fl_consul_t *c, group_t *g, req_t *r, const state_t *st)
{
    ctx_t x;
    if (reopen(&x, c, r, st) < 0)
        return -1;
    x.route->handle(&x);
    ctx_finish(&x);
    int rc =
        fl_httpd_prepare(x.status, x.headers.data, x.ctype, x.body.data, x.body.len, &g->answer);
    ctx_free(&x);
    return rc;
}

/* Answers every waiter whose index moved (or whose wait ended while frozen), from one view.
 * Those sharing an answer are collected first and answered in one batch: every write, then
 * letting go of their timers and exchanges. */
static void wake_pass(fl_consul_t *c)
{
    const state_t *st = cat_view(c);
    groups_t gs = {NULL, 0};
    size_t n = c->nwaiters, cap = 16, k = 0, seen = 0;
    while (cap < 2 * n)
        cap *= 2;
    req_t **rs = NULL;
    fl_httpd_exchange_t **exs = NULL;
    const fl_httpd_prepared_t **ps = NULL;
    if (!c->latency_ns && n > 1) {
        gs.v = calloc(cap, sizeof *gs.v);
        rs = malloc(n * sizeof *rs);
        exs = malloc(n * sizeof *exs);
        ps = malloc(n * sizeof *ps);
        if (!gs.v || !rs || !exs || !ps) {
            free(gs.v);
            gs.v = NULL;
        }
        gs.mask = cap - 1;
    }
    req_t *next;
    for (req_t *r = c->waiters; r; r = next) {
        next = r->next;
        __builtin_prefetch(next); /* fetched while r is looked at */
        /* (beyond n, the tables might be too small: such a waiter goes on its own) */
        group_t *g = gs.v && ++seen <= n ? group_of(c, &gs, r, st) : NULL;
        if (!g) {
            evaluate(c, r, st, r->expired);
            continue;
        }
        if (!r->expired && g->idx <= r->min_index)
            continue;
        if (!g->answer && render(c, g, r, st) < 0) {
            evaluate(c, r, st, 1); /* out of memory: on its own */
            continue;
        }
        rs[k] = r;
        exs[k] = req_detach(r);
        ps[k++] = g->answer;
    }
    fl_httpd_respond_prepared_batch(exs, ps, k);
    for (size_t i = 0; i < k; i++)
        req_release(rs[i]);
    for (size_t i = 0; gs.v && i <= gs.mask; i++)
        fl_httpd_prepared_free(gs.v[i].answer);
    free(gs.v);
    free(rs);
    free(exs);
    free(ps);
    blocking_update_stale_timer(c);
}

static void on_wake(uv_timer_t *t)
{
    fl_consul_t *c = t->data;
    c->wake_pending = 0;
    if (!c->frozen)
        wake_pass(c);
}

void blocking_kick(fl_consul_t *c)
{
    if (c->closing || c->wake_pending)
        return;
    c->wake_pending = 1;
    uv_timer_start(&c->wake, on_wake, 0, 0);
}

void blocking_thaw(fl_consul_t *c)
{
    wake_pass(c);
}

static void on_stale_move(uv_timer_t *t)
{
    blocking_kick(t->data);
}

void blocking_update_stale_timer(fl_consul_t *c)
{
    if (c->closing)
        return;
    uint64_t next = cat_view_next_change(c);
    if (!next) {
        uv_timer_stop(&c->stale_timer);
        return;
    }
    uint64_t now = uv_hrtime();
    uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
    uv_timer_start(&c->stale_timer, on_stale_move, ms + 1, 0);
}
